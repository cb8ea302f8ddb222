"""The command line: ``simulator run | validate | diagram | schema | kinds | plot | replicate |
compare | sweep | capacity``.

A thin user of the library. Bad scenarios print ``file:line: key.path: message`` lines on
stderr and exit with code 2; nothing is written on a failed run. Scenario warnings print as
``warning: file:line: key.path: message`` on stderr, once each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulator.analysis.terminal import fit
from simulator.errors import ScenarioError, ScenarioWarning, TopologyError
from simulator.outdir import out_problem, report_problem

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 too; keep its usage line short
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``simulator`` command."""
    from simulator.experiment.cli import add_commands, add_force

    parser = _Parser(prog="simulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a scenario, print its summary, write its tables")
    run.add_argument("file", help="scenario YAML file")
    run.add_argument("--seed", type=int, default=None, help="seed (default: the scenario's)")
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY.PATH=VALUE", help="override a scenario value (repeatable)")
    run.add_argument("--warmup", default=None, metavar="DURATION|'N requests'|auto",
                     help="warm-up to discard: a duration, a number of requests ('5000 "
                          "requests': the first 5000 created), or 'auto' (MSER-5); default the "
                          "scenario's (the same as --set warmup=...)")
    run.add_argument("--out", type=Path, default=None, help="directory to write tables to")
    run.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    run.add_argument("--plots", action="store_true", help="also write PNG plots (needs --out)")
    add_force(run)
    run.add_argument("--report", nargs="?", const="", default=None, type=str, metavar="FILE",
                     help="write a self-contained HTML report (default FILE: OUT/report.html "
                          "with --out, else NAME-report.html here)")

    val = sub.add_parser("validate", help="check scenario files without running them")
    val.add_argument("files", nargs="+")
    add_force(val)
    val.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY.PATH=VALUE")

    dia = sub.add_parser("diagram", help="draw a scenario's topology (PNG, SVG or PDF)")
    dia.add_argument("file", help="scenario YAML file")
    dia.add_argument("-o", "--out", type=Path, default=None,
                     help="picture to write (.png, .svg, .pdf; default NAME-topology.png here)")
    dia.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY.PATH=VALUE", help="override a scenario value (repeatable)")

    sub.add_parser("schema", help="print the JSON Schema of the scenario format")
    kinds = sub.add_parser("kinds", help="list component kinds with their parameters and "
                           "defaults; name kinds to expand every nested setting")
    kinds.add_argument("kinds", nargs="*", metavar="KIND",
                       help="kinds to describe in full: nested settings (health_check.interval"
                            "...) and the options of every call step")

    fit_ = sub.add_parser("fit", help="fit a distribution to measured samples and print its "
                          "scenario block")
    fit_.add_argument("file", help="CSV or Parquet file of samples (one number per row)")
    fit_.add_argument("--column", default=None, help="column to read (default: the only "
                      "numeric one)")
    fit_.add_argument("--unit", choices=["s", "ms", "us", "ns"], default="s",
                      help="unit of the samples (default s)")
    fit_.add_argument("--dist", action="append", default=None, metavar="NAME",
                      help="candidate (repeatable; default exponential, lognormal, gamma, "
                           "weibull, normal)")
    fit_.add_argument("--key", default=None,
                      help="key to print the block under (e.g. the timing it describes); "
                           "default: the bare block")

    plot = sub.add_parser("plot", help="write the plots (and a report) of a results directory")
    plot.add_argument("directory", type=Path,
                      help="written by `run --out` (or by compare / sweep --out)")
    plot.add_argument("--out", type=Path, default=None,
                      help="where the PNGs go (default: DIRECTORY/plots)")
    plot.add_argument("--report", nargs="?", const="", default=None, type=str, metavar="FILE",
                      help="also write the HTML report of a run (default "
                           "DIRECTORY/report.html)")
    add_commands(sub)
    return parser


class _Stdout:
    """Standard output that outlives its reader: once the pipe is broken (``| head``), what is
    printed goes nowhere and the command carries on, so its files are still written and its
    exit code still says whether they were."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return int(self.stream.write(text))
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.gone = True
        with contextlib.suppress(OSError, ValueError):  # (a captured stream has no fd)
            # the interpreter's last flush then writes what is left to nowhere, quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


#: Thread-count variables of the BLAS and OpenMP libraries numpy may load, set to 1 unless the
#: user set them. A run is one thread; parallel runs are processes, one per core, where a
#: BLAS pool per process would oversubscribe the cores. OpenBLAS starts one thread per core
#: when numpy is imported, about 0.05-0.1 s of CPU in a short run, for no work.
SINGLE_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    for var in SINGLE_THREAD_VARS:
        os.environ.setdefault(var, "1")
    args = build_parser().parse_args(argv)
    out = sys.stdout = _Stdout(sys.stdout)
    try:
        return _warned(args)
    finally:
        out.flush()
        sys.stdout = out.stream


def _warned(args: argparse.Namespace) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("default", ScenarioWarning)
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], *rest: Any,
                 **kw: Any) -> None:
            if issubclass(category, ScenarioWarning) or category.__module__.startswith(
                    "simulator."):  # our own warnings: one line each
                print(f"warning: {message}", file=sys.stderr)
            else:
                shown(message, category, *rest, **kw)

        warnings.showwarning = show
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    try:
        return int(_COMMANDS[args.command](args))
    except ScenarioError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_BAD_INPUT
    except TopologyError as exc:
        print(_locate(getattr(args, "file", ""), str(exc)), file=sys.stderr)
        return EXIT_BAD_INPUT


def _locate(file: str, message: str) -> str:
    """Prefix a ``key.path: message`` with ``file:line`` where the key path is found."""
    from simulator.yamlfile import load_yaml_file

    head, sep, _ = message.partition(": ")
    line = None
    if sep and " " not in head:
        try:
            _, smap = load_yaml_file(file)
        except ScenarioError:
            pass
        else:
            path = tuple(int(p) if p.isdigit() else p for p in head.split("."))
            line = smap.line_of(path)
    return f"{file}:{line}: {message}" if line is not None else f"{file}: {message}"


def _run(args: argparse.Namespace) -> int:
    from simulator.engine import simulate
    from simulator.scenario import load_scenario

    if args.plots and args.out is None:
        print("simulator run: --plots needs --out DIR", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.seed is not None and not 0 <= args.seed < 2**63:
        print(f"simulator run: --seed must be between 0 and 2**63 - 1, got {args.seed}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.out is not None and (problem := out_problem(args.out)):
        print(f"simulator run: --out {args.out}: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.report and (problem := report_problem(Path(args.report))):
        print(f"simulator run: --report {args.report}: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    warmup = [] if args.warmup is None else [f"warmup={args.warmup}"]
    scenario = load_scenario(args.file, [*args.overrides, *warmup], force=args.force)
    progress = None
    if sys.stderr.isatty():  # a line that updates itself is for people, not for logs
        from simulator.progress import RunProgress

        progress = RunProgress(scenario.metrics.requests == "streaming", sys.stderr)
    results = simulate(scenario, seed=args.seed, progress=progress)
    n = results.request_count()  # streaming runs: those created in the measured window
    given = "" if isinstance(scenario.warmup, float) else f": {scenario.warmup}"
    print(fit(f"{scenario.name}: {n} requests in {scenario.duration:g}s simulated "
              f"(seed {results.seed}, warm-up {results.window[0]:g}s{given}) "
              f"in {results.wall_seconds:.2f}s wall time"))
    if (note := scenario.spans_note()) is not None:
        print(fit(note))
    findings = print_verdict(results)
    _print_slo(results, findings)
    print_tables(results, {"findings": findings})  # the steady-state checks, computed once
    if args.out is not None:
        try:
            path = results.write(args.out, fmt=args.format, plots=args.plots)
        except OSError as exc:
            print(f"simulator run: --out {args.out}: cannot write: {exc.strerror or exc}",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"\ntables written to {path}/")
    if args.report is not None:
        default = (args.out / "report.html" if args.out is not None
                   else Path(f"{_file_name(scenario.name)}-report.html"))
        return _write_report(results, Path(args.report) if args.report else default, "run")
    return 0


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "scenario"


def _write_report(results: Any, path: Path, command: str) -> int:
    from simulator.analysis.report import write_report

    if problem := report_problem(path):
        print(f"simulator {command}: --report {path}: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        write_report(results, path)
    except OSError as exc:
        print(f"simulator {command}: --report {path}: cannot write: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"report written to {path}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from simulator.analysis.plots import plot_directory
    from simulator.results import Results

    directory: Path = args.directory
    if not (directory / "manifest.json").is_file():
        print(f"simulator plot: {directory}: not a results directory (no manifest.json); "
              "write one with `simulator run FILE --out DIR`", file=sys.stderr)
        return EXIT_BAD_INPUT
    run = "scenario" in json.loads((directory / "manifest.json").read_text())
    if args.report is not None and not run:
        print(f"simulator plot: --report: {directory} holds an experiment; reports are made "
              "for a single run", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = args.out if args.out is not None else directory / "plots"
    try:
        results = Results.read(directory) if run else None
        paths = plot_directory(directory, out, results=results)
    except (FileNotFoundError, ValueError) as exc:
        print(f"simulator plot: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"simulator plot: --out {out}: cannot write: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in paths:
        print(path)
    if args.report is not None and results is not None:
        return _write_report(results, Path(args.report) if args.report
                             else directory / "report.html", "plot")
    return 0


def print_verdict(results: Any) -> Any:
    """Say first, before any figure, which parts of the run did not reach a steady state;
    return the ``findings`` table that says it."""
    from simulator.analysis.stability import verdict, warnings

    findings = results.derived("findings")
    said = verdict(findings)
    if said == "steady":
        return findings
    print(fit(f"\nWARNING: this run did not reach a steady state ({said}); its averages and "
              "percentiles describe where the run stopped, not the system:"))
    for line in warnings(findings):
        print(fit(f"  {line}"))
    return findings


def _print_slo(results: Any, findings: Any) -> None:
    """Whether the run met the scenario's SLO, one line per workload (nothing without one)."""
    if results.scenario.slo is None:
        return
    from simulator.analysis.objectives import slo_lines, slo_table
    from simulator.analysis.stability import verdict

    print()
    for line in slo_lines(slo_table(results), verdict(findings) == "steady"):
        print(fit(line))


def print_tables(results: Any, computed: dict[str, Any] | None = None) -> None:
    """Print every derived table the run has, each under its title (the summary first);
    ``computed`` holds tables already computed, by name."""
    from simulator import registry
    from simulator.metrics.streaming import StreamingUnavailableError

    for declared in registry.derived_tables().values():
        if not declared.available(results):
            continue
        try:
            table = (computed[declared.name] if computed and declared.name in computed
                     else declared.table(results))
        except StreamingUnavailableError:
            if declared.applies is not None:  # it applies, but needs one row per request
                print(fit(f"\n{declared.title}: not available with metrics.requests: "
                      "streaming (it needs one row per request)"))
            continue
        text = declared.text(table) if not table.empty else ""
        if text:
            print(fit(f"\n{declared.title}") if declared.title else "")
            print(fit(text))


def _validate(args: argparse.Namespace) -> int:
    from simulator.scenario import load_scenario

    failed = 0
    for file in args.files:
        try:
            scenario = load_scenario(file, args.overrides, force=args.force)
        except ScenarioError as exc:
            print(exc.render(), file=sys.stderr)
            failed += 1
        else:
            print(f"{file}: ok ({scenario.name}: {len(scenario.components)} components, "
                  f"{len(scenario.workloads)} workloads)")
    return EXIT_BAD_INPUT if failed else 0


def _diagram(args: argparse.Namespace) -> int:
    from simulator.analysis.diagram import FORMATS, diagram
    from simulator.scenario import load_scenario

    out = args.out
    if out is not None and out.suffix.lower().lstrip(".") not in FORMATS:
        print(f"simulator diagram: --out {out}: give a name ending in .png, .svg or .pdf",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    scenario = load_scenario(args.file, args.overrides)
    path = out if out is not None else Path(f"{_file_name(scenario.name)}-topology.png")
    try:
        diagram(scenario, path)
    except OSError as exc:
        print(f"simulator diagram: {path}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"diagram written to {path}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from simulator.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _kinds(args: argparse.Namespace) -> int:
    from simulator.describe import describe_kinds
    from simulator.registry import kinds

    unknown = [k for k in args.kinds if k not in kinds()]
    if unknown:
        print(f"simulator kinds: unknown kind {unknown[0]!r} (kinds: {', '.join(kinds())})",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    print(fit(describe_kinds(args.kinds)), end="")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from simulator.analysis.fitting import CANDIDATES, fit_report, read_samples

    unknown = [d for d in args.dist or () if d not in CANDIDATES]
    if unknown:
        print(f"simulator fit: unknown --dist {unknown[0]!r}; expected one of "
              f"{', '.join(CANDIDATES)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        samples = read_samples(args.file, args.column, args.unit)
        text = fit_report(samples, args.key, args.dist or CANDIDATES, source=args.file)
    except (ValueError, OSError) as exc:
        print(f"simulator fit: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(text, end="")
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from simulator.experiment.cli import run_command

    return run_command(args)


_COMMANDS = {"run": _run, "validate": _validate, "diagram": _diagram, "schema": _schema,
             "kinds": _kinds, "plot": _plot, "fit": _fit,
             "replicate": _experiment, "compare": _experiment, "sweep": _experiment,
             "capacity": _experiment}
