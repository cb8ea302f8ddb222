"""The command line: ``simulator run | validate | schema | kinds``.

A thin user of the library. Bad scenarios print ``file:line: key.path: message`` lines on
stderr and exit with code 2; nothing is written on a failed run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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

    val = sub.add_parser("validate", help="check scenario files without running them")
    val.add_argument("files", nargs="+")
    val.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY.PATH=VALUE")

    sub.add_parser("schema", help="print the JSON Schema of the scenario format")
    sub.add_parser("kinds", help="list component kinds with their parameters and defaults")
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
        print(f"{getattr(args, 'file', '')}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _run(args: argparse.Namespace) -> int:
    from simulator.engine import simulate
    from simulator.scenario import load_scenario

    if args.plots and args.out is None:
        print("simulator run: --plots needs --out DIR", file=sys.stderr)
        return EXIT_BAD_INPUT
    scenario = load_scenario(args.file, args.overrides)
    results = simulate(scenario, seed=args.seed)
    n = len(results.requests)
    print(f"{scenario.name}: {n} requests in {scenario.duration:g}s simulated "
          f"(seed {results.seed}, warm-up {scenario.warmup:g}s) "
          f"in {results.wall_seconds:.2f}s wall time")
    print()
    print(format_summary(results.summary()))
    share = results.backend_share()
    if not share.empty:
        print()
        print("per-backend share")
        print(share.to_string(index=False, formatters={"share": "{:.1%}".format}))
    if args.out is not None:
        path = results.write(args.out, fmt=args.format, plots=args.plots)
        print(f"\ntables written to {path}/")
    return 0


def format_summary(summary: pd.DataFrame) -> str:
    """Render a summary table for a terminal: latencies in ms, ratios in %."""
    df = summary.copy()
    for col in ("mean", "p50", "p95", "p99", "p999"):
        df[col] = df[col] * 1e3
    df = df.rename(columns={c: f"{c}_ms" for c in ("mean", "p50", "p95", "p99", "p999")})
    pct = {c: (lambda v: "-" if pd.isna(v) else f"{v:.2%}")
           for c in ("error_ratio", "rejection_ratio", "timeout_ratio", "utilisation")}
    num = {c: "{:.1f}".format for c in ("throughput", "goodput")}
    ms = {f"{c}_ms": (lambda v: "-" if pd.isna(v) else f"{v:.3f}")
          for c in ("mean", "p50", "p95", "p99", "p999")}
    return df.to_string(index=False, na_rep="-", formatters={**pct, **num, **ms})


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

    for kind, cls in kinds().items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{kind}: {doc}")
        for name, f in cls.Params.model_fields.items():
            if name == "kind":
                continue
            if f.default is not PydanticUndefined:
                default = repr(f.default)
            elif f.default_factory is not None:
                default = repr(f.default_factory())  # type: ignore[call-arg]
            else:
                default = "(required)"
            print(f"    {f.alias or name:<20} {_type_name(f.annotation):<28} {default}")
        print()
    return 0


def _type_name(tp: Any) -> str:
    text = getattr(tp, "__name__", None) if isinstance(tp, type) else None
    text = text or str(tp)
    for noise in ("typing.", "simulator.calls.", "simulator.distributions.", "Annotated["):
        text = text.replace(noise, "")
    if ("dist" in text.lower() and "Union" in text) or "Constant |" in text:
        return "distribution"
    return text if len(text) <= 28 else text[:25] + "..."


_COMMANDS = {"run": _run, "validate": _validate, "schema": _schema, "kinds": _kinds}
