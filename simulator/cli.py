"""The command line: ``simulator run | validate | schema | kinds | plot | replicate | compare |
sweep | capacity``.

A thin user of the library. Bad scenarios print ``file:line: key.path: message`` lines on
stderr and exit with code 2; nothing is written on a failed run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from simulator.errors import ScenarioError, TopologyError

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(_COMMANDS[args.command](args))
    except ScenarioError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_BAD_INPUT
    except TopologyError as exc:
        print(_locate(getattr(args, "file", ""), str(exc)), file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `simulator run x.yaml | head`: the reader has gone, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


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
    if args.out is not None and (problem := _out_problem(args.out)):
        print(f"simulator run: --out {args.out}: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.report and (problem := _report_problem(Path(args.report))):
        print(f"simulator run: --report {args.report}: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    scenario = load_scenario(args.file, args.overrides)
    results = simulate(scenario, seed=args.seed)
    n = results.request_count()  # streaming runs: those created in the measured window
    print(f"{scenario.name}: {n} requests in {scenario.duration:g}s simulated "
          f"(seed {results.seed}, warm-up {results.window[0]:g}s) "
          f"in {results.wall_seconds:.2f}s wall time")
    print()
    print(format_summary(results.summary()))
    share = results.backend_share()
    if not share.empty:
        print()
        print("per-backend share")
        print(share.to_string(index=False, formatters={"share": "{:.1%}".format}))
    queues = results.queue_summary()
    if not queues.empty:
        print("\nqueues (e2e: enqueue to acknowledgement; times in seconds)")
        print(format_queue_summary(queues))
    caches = results.cache_summary()
    if not caches.empty:
        print("\ncaches (measured window; workload rows: the first cache on each request's path)")
        print(format_cache_summary(caches))
    _print_data_tier(results)
    if scenario.regions is not None:
        from simulator.analysis.regions import format_region_summary

        regions = results.region_summary()
        if not regions.empty:
            print("\nclient regions (latency of successful requests; failovers by geo "
                  "balancers)")
            print(format_region_summary(regions))
    _print_cdn(results)
    _print_event_sourcing(results)
    breakers = results.breakers()
    if not breakers.empty:
        print("\ncircuit breakers (seconds in each state over the measured window)")
        print(breakers.to_string(index=False, float_format="{:.1f}".format))
    if scenario.faults and results.streaming:
        print("\nfaults and recovery: not available with metrics.requests: streaming "
              "(recovery needs one row per request)")
    elif scenario.faults:
        recovery = results.recovery()
        print("\nfaults and recovery (recovery_time after the fault ends, seconds)")
        print(recovery.to_string(index=False, float_format="{:.3g}".format,
                                 formatters={"recovered": lambda v: "yes" if v else
                                             "did not recover"}))
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
    if args.report is not None and "scenario" not in json.loads(
            (directory / "manifest.json").read_text()):
        print(f"simulator plot: --report: {directory} holds an experiment; reports are made "
              "for a single run", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = args.out if args.out is not None else directory / "plots"
    try:
        paths = plot_directory(directory, out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"simulator plot: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"simulator plot: --out {out}: cannot write: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in paths:
        print(path)
    if args.report is not None:
        try:
            results = Results.read(directory)
        except FileNotFoundError as exc:
            print(f"simulator plot: --report: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        return _write_report(results, Path(args.report) if args.report
                             else directory / "report.html", "plot")
    return 0


def _out_problem(out: Path) -> str | None:
    """Why ``out`` must not be used as an output directory (it is replaced whole), or None."""
    if not out.exists():
        return None
    if not out.is_dir():
        return "exists and is not a directory; refusing to replace it"
    if any(out.iterdir()) and not (out / "manifest.json").is_file():
        return ("is a non-empty directory that holds no previous results (no manifest.json); "
                "refusing to replace it, choose a new directory")
    return None


def format_summary(summary: pd.DataFrame) -> str:
    """Render a summary table for a terminal: latencies in ms, ratios in %.

    Columns that say nothing in this run (a ratio that is zero everywhere, attempts that are
    all 1) are left out of the printout; the tables written to disk keep every column.
    """
    df = summary.copy()
    for col in ("rejection_ratio", "timeout_ratio", "fallback_ratio", "stale_ratio"):
        if col in df and df[col].fillna(0).eq(0).all():
            df = df.drop(columns=col)
    if df["attempts"].fillna(1).eq(1).all():
        df = df.drop(columns="attempts")
    for col in ("mean", "p50", "p95", "p99", "p999"):
        df[col] = df[col] * 1e3
    df = df.rename(columns={c: f"{c}_ms" for c in ("mean", "p50", "p95", "p99", "p999")})
    fmt: dict[str, Callable[[Any], str]] = {}
    for c in ("error_ratio", "rejection_ratio", "timeout_ratio", "fallback_ratio",
              "utilisation", "stale_ratio"):
        fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.2%}"
    fmt["attempts"] = lambda v: "-" if pd.isna(v) else f"{v:.2f}"
    for c in ("throughput", "goodput"):
        fmt[c] = "{:.1f}".format
    for c in ("mean", "p50", "p95", "p99", "p999"):
        fmt[f"{c}_ms"] = lambda v: "-" if pd.isna(v) else f"{v:.3f}"
    return df.to_string(index=False, na_rep="-", formatters=fmt)


def format_queue_summary(queues: pd.DataFrame) -> str:
    """Render a queue summary for a terminal: counts as integers, times to 3 digits."""
    fmt: dict[str, Callable[[Any], str]] = {}
    for c in queues.columns:
        if c.startswith(("e2e_", "oldest_age", "depth_mean")):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.3g}"
        elif c in ("depth_max", "lag_max", "lag_end"):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.0f}"
    return queues.to_string(index=False, na_rep="-", formatters=fmt)


def _print_data_tier(results: Any) -> None:
    """Print the per-shard load, replication and resharding tables of a run with databases."""
    shards = results.shard_summary()
    if not shards.empty:
        print("\nper-shard load (measured window; skew = busiest shard / mean shard)")
        print(shards.to_string(index=False, formatters={
            "share": "{:.1%}".format, "skew": "{:.3f}".format,
            "hottest": lambda v: "hottest" if v else ""}))
    replication = results.replication_summary()
    if not replication.empty:
        print("\ndatabases: staleness, replica lag and pool waits (times in ms)")
        df = replication.copy()
        for c in ("lag_mean", "lag_p50", "lag_p95", "lag_p99", "lag_max", "pool_wait_mean",
                  "pool_wait_p99"):
            df[c] = df[c] * 1e3
        fmt: dict[str, Callable[[Any], str]] = {
            c: (lambda v: "-" if pd.isna(v) else f"{v:.2%}")
            for c in ("stale_read_ratio", "pool_timeout_ratio")}
        print(df.to_string(index=False, na_rep="-", formatters=fmt,
                           float_format="{:.3g}".format))
    failovers = results.failovers()
    if not failovers.empty:
        print("\ndatabase failovers (write_unavailability: seconds from the leader's crash to "
              "the promotion; lost_writes: acknowledged, gone)")
        print(failovers.to_string(index=False, float_format="{:.3f}".format))
    reshards = results.reshards()
    if not reshards.empty:
        print("\nresharding (moved: fraction of the key space whose shard changed)")
        print(reshards.to_string(index=False, na_rep="-", formatters={
            c: "{:.2%}".format for c in ("moved_ratio", "moved_to_new_ratio",
                                         "seen_moved_ratio")}))


def _print_cdn(results: Any) -> None:
    """Print the per-edge table of a run with a CDN (and latency by client region)."""
    edges = results.cdn_summary()
    if edges.empty:
        return
    print("\nCDN edges (measured window; offload = 1 - origin fetches / requests; latency: "
          "users' end to end, ms)")
    print(format_cdn_summary(edges))
    regions = results.cdn_latency()
    req = results.requests
    if not regions.empty and "region" in req.columns and (req["region"].astype(str) != "").any():
        print("\nCDN latency by client region (ms)")
        print(format_cdn_summary(regions))


def format_cdn_summary(table: pd.DataFrame) -> str:
    """Render a CDN table for a terminal: ratios in %, latencies in ms, counts as integers."""
    df = table.copy()
    for col in ("coalesced", "bypassed", "failed"):
        if col in df and df[col].fillna(0).eq(0).all():
            df = df.drop(columns=col)
    fmt: dict[str, Callable[[Any], str]] = {}
    for c in df.columns:
        if c.endswith(("_ratio", "_offload")):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.2%}"
        elif c.startswith("latency_"):
            df[c] = df[c] * 1e3
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.3g}"
        elif c == "mean_entries":
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.1f}"
    df = df.rename(columns={c: f"{c}_ms" for c in df.columns if c.startswith("latency_")})
    fmt = {(f"{c}_ms" if c.startswith("latency_") else c): f for c, f in fmt.items()}
    return df.to_string(index=False, na_rep="-", formatters=fmt)


def _print_event_sourcing(results: Any) -> None:
    """Print the event stores' conflicts and rebuild costs, and the read models' lag and
    staleness, of a run that has them."""
    stores = results.event_sourcing_summary()
    if not stores.empty:
        print("\nevent stores (measured window; rebuild = aggregate load time, in ms)")
        df = stores.copy()
        for c in ("rebuild_mean", "rebuild_p50", "rebuild_p99", "rebuild_max"):
            df[c] = df[c] * 1e3
        fmt: dict[str, Callable[[Any], str]] = {
            c: (lambda v: "-" if pd.isna(v) else f"{v:.2%}")
            for c in ("conflict_ratio", "failed_ratio")}
        print(df.to_string(index=False, na_rep="-", float_format="{:.3g}".format,
                           formatters=fmt))
    models = results.projection_summary()
    if not models.empty:
        print("\nread models (measured window; projection lag = commit to applied, in ms)")
        df = models.copy()
        for c in ("lag_mean", "lag_p50", "lag_p95", "lag_p99", "lag_max"):
            df[c] = df[c] * 1e3
        print(df.to_string(index=False, na_rep="-", float_format="{:.3g}".format, formatters={
            "stale_read_ratio": lambda v: "-" if pd.isna(v) else f"{v:.2%}"}))
    rebuilds = results.rebuilds()
    if not rebuilds.empty:
        print("\nprojection rebuilds (seconds; end '-': not caught up by the end of the run)")
        print(rebuilds.to_string(index=False, na_rep="-", float_format="{:.3g}".format))


def format_cache_summary(caches: pd.DataFrame) -> str:
    """Render a cache summary for a terminal: ratios in %, counts as integers."""
    df = caches.copy()
    for col in ("coalesced", "evictions", "expirations", "writes", "lost_writes"):
        if df[col].fillna(0).eq(0).all():
            df = df.drop(columns=col)
    fmt: dict[str, Callable[[Any], str]] = {}
    for c in df.columns:
        if c.endswith("_ratio"):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.2%}"
        elif c == "mean_entries":
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.1f}"
        elif c not in ("scope", "name"):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.0f}"
    return df.to_string(index=False, na_rep="-", formatters=fmt)


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
        width = min(max(len(t) for _, t, _ in rows), 44)
        for name, text, default in rows:
            lines = textwrap.wrap(text, width) or [""]
            print(f"    {name:<20} {lines[0]:<{width}}  {default}")
            for more in lines[1:]:
                print(f"    {'':<20}   {more}")
        print()
    return 0


def type_text(tp: Any, metadata: Sequence[Any] = ()) -> str:
    """Describe a parameter's type in words (``duration``, ``one of: fifo, lifo``...)."""
    from pydantic import BaseModel, BeforeValidator

    from simulator.units import parse_duration, parse_rate

    funcs = [m.func for m in metadata if isinstance(m, BeforeValidator)]
    bounds = _bounds(metadata)
    if parse_duration in funcs:
        return _join("duration", bounds)
    if parse_rate in funcs:
        return _join("rate", bounds)
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *more = typing.get_args(tp)
        return _join(type_text(inner, more), bounds)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(members) < len(typing.get_args(tp))
        models = [typing.get_args(m)[0] if typing.get_origin(m) is typing.Annotated else m
                  for m in members]
        text = _family(models) or " or ".join(type_text(m) for m in members)
        return _join(text + (", optional" if optional else ""), bounds)
    if origin is Literal:
        return "one of: " + ", ".join(str(a) for a in typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp)
        return _join("list of " + _plural(type_text(item)), bounds)
    if origin is dict:
        _, value = typing.get_args(tp)
        return _join(f"mapping of name to {type_text(value)}", bounds)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _family([tp]) or tp.__name__
    names = {int: "integer", float: "number", str: "name", bool: "true/false"}
    return _join(names.get(tp, getattr(tp, "__name__", str(tp))), bounds)


def _family(models: list[Any]) -> str | None:
    """Name a union of scenario models by what they are (every distribution has ``dist``...)."""
    from pydantic import BaseModel

    if not models or not all(isinstance(m, type) and issubclass(m, BaseModel) for m in models):
        return None
    for key, name in (("dist", "distribution"), ("popularity", "key popularity"),
                      ("process", "arrival process")):
        if all(key in m.model_fields for m in models):
            return name
    names = {m.__name__ for m in models}
    if names == {"CallSpec", "ParallelSpec"}:
        return "step (a call or {parallel: [calls]})"
    if names == {"CallSpec"}:
        return "call (a name or {to, op})"
    return None


def _plural(text: str) -> str:
    head, sep, rest = text.partition(" ")
    if head in ("name", "number", "integer", "distribution", "duration", "rate", "step", "call"):
        return head + "s" + sep + rest
    return text


def _bounds(metadata: Sequence[Any]) -> str:
    signs = {"Ge": ">=", "Gt": ">", "Le": "<=", "Lt": "<"}
    parts = []
    for m in metadata:
        name = type(m).__name__
        if name in signs:
            value = getattr(m, name.lower())
            parts.append(f"{signs[name]} {value:g}" if isinstance(value, float)
                         else f"{signs[name]} {value}")
        elif name == "MinLen":
            parts.append(f"at least {m.min_length}")
    return ", ".join(parts)


def _join(text: str, bounds: str) -> str:
    if not bounds:
        return text
    if text.endswith(", optional"):
        return _join(text.removesuffix(", optional"), bounds) + ", optional"
    return f"{text}, {bounds}" if bounds.startswith("at") else f"{text} {bounds}"


def default_text(value: Any, type_desc: str = "") -> str:
    """Render a default value as it would be written in a scenario."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        if getattr(value, "dist", None) == "constant":
            value = value.value  # type: ignore[attr-defined]
        else:
            return json.dumps(value.model_dump(mode="json", by_alias=True,
                                               exclude_defaults=True))
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        unit = "s" if type_desc.startswith(("duration", "distribution")) else ""
        return f"{value:g}{unit}"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _experiment(args: argparse.Namespace) -> int:
    from simulator.experiment.cli import run_command

    return run_command(args)


_COMMANDS = {"run": _run, "validate": _validate, "schema": _schema, "kinds": _kinds,
             "plot": _plot,
             "replicate": _experiment, "compare": _experiment, "sweep": _experiment,
             "capacity": _experiment}
