"""The command line: ``simulator run | validate | schema | kinds | plot | replicate | compare |
sweep | capacity``.

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
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulator.errors import ScenarioError, ScenarioWarning, TopologyError
from simulator.outdir import out_problem
from simulator.paramtext import default_text, member_rows, type_text

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 too; keep its usage line short
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``simulator`` command."""
    parser = _Parser(prog="simulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a scenario, print its summary, write its tables")
    run.add_argument("file", help="scenario YAML file")
    run.add_argument("--seed", type=int, default=None, help="seed (default: the scenario's)")
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY.PATH=VALUE", help="override a scenario value (repeatable)")
    run.add_argument("--out", type=Path, default=None, help="directory to write tables to")
    run.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    run.add_argument("--plots", action="store_true", help="also write PNG plots (needs --out)")
    run.add_argument("--report", nargs="?", const="", default=None, type=str, metavar="FILE",
                     help="write a self-contained HTML report (default FILE: OUT/report.html "
                          "with --out, else NAME-report.html here)")

    val = sub.add_parser("validate", help="check scenario files without running them")
    val.add_argument("files", nargs="+")
    val.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY.PATH=VALUE")

    sub.add_parser("schema", help="print the JSON Schema of the scenario format")
    sub.add_parser("kinds", help="list component kinds with their parameters and defaults")

    plot = sub.add_parser("plot", help="write the plots (and a report) of a results directory")
    plot.add_argument("directory", type=Path,
                      help="written by `run --out` (or by compare / sweep --out)")
    plot.add_argument("--out", type=Path, default=None,
                      help="where the PNGs go (default: DIRECTORY/plots)")
    plot.add_argument("--report", nargs="?", const="", default=None, type=str, metavar="FILE",
                      help="also write the HTML report of a run (default "
                           "DIRECTORY/report.html)")
    from simulator.experiment.cli import add_commands

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
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
    if args.report and (problem := _report_problem(Path(args.report))):
        print(f"simulator run: --report {args.report}: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    scenario = load_scenario(args.file, args.overrides)
    results = simulate(scenario, seed=args.seed)
    n = results.request_count()  # streaming runs: those created in the measured window
    given = "" if isinstance(scenario.warmup, float) else f": {scenario.warmup}"
    print(f"{scenario.name}: {n} requests in {scenario.duration:g}s simulated "
          f"(seed {results.seed}, warm-up {results.window[0]:g}s{given}) "
          f"in {results.wall_seconds:.2f}s wall time")
    print_verdict(results)
    print_tables(results)
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


def _report_problem(path: Path) -> str | None:
    """Why an HTML report cannot be written to ``path``, or None."""
    if path.is_dir():
        return "is a directory; give a file name (report.html)"
    if path.suffix.lower() not in (".html", ".htm"):
        return "the report is an HTML file: give a name ending in .html"
    return None


def _write_report(results: Any, path: Path, command: str) -> int:
    from simulator.analysis.report import write_report

    if problem := _report_problem(path):
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


def print_verdict(results: Any) -> None:
    """Say first, before any figure, which parts of the run did not reach a steady state."""
    from simulator.analysis.stability import verdict, warnings

    findings = results.derived("findings")
    said = verdict(findings)
    if said == "steady":
        return
    print(f"\nWARNING: this run did not reach a steady state ({said}); its averages and "
          "percentiles describe where the run stopped, not the system:")
    for line in warnings(findings):
        print(f"  {line}")


def print_tables(results: Any) -> None:
    """Print every derived table the run has, each under its title (the summary first)."""
    from simulator import registry
    from simulator.metrics.streaming import StreamingUnavailableError

    for declared in registry.derived_tables().values():
        if not declared.available(results):
            continue
        try:
            table = declared.table(results)
        except StreamingUnavailableError:
            if declared.applies is not None:  # it applies, but needs one row per request
                print(f"\n{declared.title}: not available with metrics.requests: streaming "
                      "(it needs one row per request)")
            continue
        text = declared.text(table) if not table.empty else ""
        if text:
            print(f"\n{declared.title}" if declared.title else "")
            print(text)


def _validate(args: argparse.Namespace) -> int:
    from simulator.scenario import load_scenario

    failed = 0
    for file in args.files:
        try:
            scenario = load_scenario(file, args.overrides)
        except ScenarioError as exc:
            print(exc.render(), file=sys.stderr)
            failed += 1
        else:
            print(f"{file}: ok ({scenario.name}: {len(scenario.components)} components, "
                  f"{len(scenario.workloads)} workloads)")
    return EXIT_BAD_INPUT if failed else 0


def _schema(args: argparse.Namespace) -> int:
    from simulator.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _kinds(args: argparse.Namespace) -> int:
    from pydantic_core import PydanticUndefined

    from simulator.registry import kinds

    for kind, declared in kinds().items():
        doc = declared.summary or (declared.component_class().__doc__ or "").strip(
            ).splitlines()[0]
        print(f"{kind}: {doc}")
        rows = []
        for name, f in declared.params.model_fields.items():
            if name == "kind":
                continue
            text = type_text(f.annotation, f.metadata)
            if f.default is not PydanticUndefined:
                default = "default " + default_text(f.default, text)
            elif f.default_factory is not None:
                default = "default " + default_text(f.default_factory(), text)  # type: ignore[call-arg]
            else:
                default = "required"
            rows.append((f.alias or name, text, default))
            rows.extend(member_rows(f.alias or name, f.annotation))
        width = min(max(len(t) for _, t, _ in rows), 44)
        for name, text, default in rows:
            lines = textwrap.wrap(text, width) or [""]
            print(f"    {name:<20} {lines[0]:<{width}}  {default}")
            for more in lines[1:]:
                print(f"    {'':<20}   {more}")
        print()
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from simulator.experiment.cli import run_command

    return run_command(args)


_COMMANDS = {"run": _run, "validate": _validate, "schema": _schema, "kinds": _kinds,
             "plot": _plot,
             "replicate": _experiment, "compare": _experiment, "sweep": _experiment,
             "capacity": _experiment}
