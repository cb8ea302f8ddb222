"""The experiment commands of the CLI: ``replicate``, ``compare``, ``sweep``, ``capacity``.

Registered by :func:`simulator.cli.build_parser`; each prints a table for people and, with
``--out DIR``, writes the tables, the resolved scenarios and a manifest (seeds, versions).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported by the commands that print tables, not by the parser
    import pandas as pd

from simulator.analysis.formatting import (
    difference_sentences,
    fmt,
    interval_text,
    label,
    ranked_rows,
    sweep_rows,
)
from simulator.analysis.terminal import fit
from simulator.experiment.executors import ExecutorError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130



def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _confidence(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a level such as 0.95, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def split_values(text: str) -> list[str]:
    """Split ``a,b,[1, 2],{x: 1}`` on the commas outside brackets, braces and quotes."""
    out: list[str] = []
    cur: list[str] = []
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def _path_values(items: list[str], flag: str) -> dict[str, list[str]]:
    from simulator.errors import Problem, ScenarioError

    grid: dict[str, list[str]] = {}
    problems = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        vals = split_values(values) if sep else []
        if not key or not sep or not values.strip() or any(v == "" for v in vals):
            problems.append(Problem(f"bad {flag} {item!r}: expected key.path=v1,v2,...", flag))
        elif key in grid:
            problems.append(Problem(f"bad {flag} {item!r}: {key!r} given twice", flag))
        else:
            grid[key] = vals
    if problems:
        raise ScenarioError(flag, problems)
    return grid


def _common(p: argparse.ArgumentParser, replications: int, collects: bool = True) -> None:
    p.add_argument("file", help="scenario YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY.PATH=VALUE", help="override a scenario value (repeatable)")
    p.add_argument("--replications", "-n", type=_positive_int, default=replications,
                   help=f"replications (independent seeds) per point (default {replications})")
    p.add_argument("--seed", type=int, default=None, help="seed (default: the scenario's)")
    p.add_argument("--warmup", default=None, metavar="DURATION|'N requests'|auto",
                   help="warm-up to discard: a duration, a number of requests ('5000 requests':"
                        " the first 5000 created), or 'auto' (MSER-5); default the scenario's")
    p.add_argument("--confidence", type=_confidence, default=0.95,
                   help="confidence level (default 0.95)")
    p.add_argument("--executor", choices=["processes", "serial", "dask"], default="processes",
                   help="where runs execute (default: processes on all cores)")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="processes or local Dask workers (default: all cores)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler address (default: a local cluster)")
    p.add_argument("--out", type=Path, default=None, help="folder for tables and manifest")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help="reuse finished runs from this folder (and add new ones)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar")
    add_force(p)
    if collects:
        p.add_argument("--table", dest="tables", action="append", default=[], metavar="NAME",
                       help="also collect this table from every run and write it with --out "
                            "(repeatable): cache_summary, region_summary, requests...")


def add_force(p: argparse.ArgumentParser) -> None:
    """``--force``: go beyond the soft limits of :mod:`simulator.limits`, knowingly."""
    p.add_argument("--force", action="store_true",
                   help="accept work over the soft limits (instances, ring tokens, per-key and "
                        "table memory, sweep points, replications); the hard ones still apply")


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report", nargs="?", const="", default=None, type=str, metavar="FILE",
                   help="write a self-contained HTML report (default FILE: OUT/report.html "
                        "with --out, else NAME-COMMAND-report.html here)")


def _report_path(args: argparse.Namespace) -> Path:
    if args.report:
        return Path(args.report)
    if args.out is not None:
        return Path(args.out) / "report.html"
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(args.file).stem)
    return Path(f"{stem}-{args.command}-report.html")


def add_commands(sub: Any) -> None:
    """Add ``replicate``, ``compare``, ``sweep`` and ``capacity`` to the CLI's subparsers."""
    rep = sub.add_parser("replicate", help="independent replications with confidence intervals")
    _common(rep, 10)
    rep.add_argument("--metric", action="append", default=None,
                     help="metric to report (repeatable; default mean, p50, p95, p99, ...)")
    rep.add_argument("--target-rhw", type=float, default=None, metavar="FRACTION",
                     help="add replications until the relative half width of the first "
                          "--metric (default mean) is at most this (e.g. 0.05)")
    rep.add_argument("--max-replications", type=_positive_int, default=100)

    cmp = sub.add_parser("compare", help="compare variants with common random numbers")
    _common(cmp, 5)
    cmp.add_argument("--vary", action="append", default=[], metavar="KEY.PATH=V1,V2,...",
                     help="variants from values of a key path (repeatable: the product); "
                          "default: the scenario's variants: block")
    cmp.add_argument("--baseline", default=None,
                     help="variant the others are compared with (default: the first)")
    cmp.add_argument("--metric", action="append", default=None,
                     help="metric to compare (repeatable; default mean, p50, p95, p99, ...)")
    _add_report(cmp)

    swp = sub.add_parser("sweep", help="run a grid of overrides x replications, cached")
    _common(swp, 3)
    swp.add_argument("--grid", action="append", default=[], metavar="KEY.PATH=V1,V2,...",
                     help="values of a key path (repeatable: the grid is the product)")
    swp.add_argument("--metric", action="append", default=None,
                     help="metric to print (repeatable; default mean, p99, error_ratio)")
    swp.set_defaults(cache=None)
    _add_report(swp)
    swp.add_argument("--no-cache", action="store_true",
                     help="neither read nor write the run cache (default .simulator-cache)")

    cap = sub.add_parser("capacity", help="largest load or smallest resource meeting an SLO")
    _common(cap, 5, collects=False)
    cap.add_argument("--param", required=True, metavar="KEY.PATH",
                     help="the value searched, e.g. workloads.users.arrivals.rate")
    cap.add_argument("--low", required=True, help="lower end of the range (base units)")
    cap.add_argument("--high", required=True, help="upper end of the range (base units)")
    cap.add_argument("--slo", default=None,
                     help="conditions, e.g. 'p99 < 200ms and error_ratio < 0.1%%' (default: "
                          "the scenario's slo:)")
    cap.add_argument("--find", choices=["max", "min"], default="max",
                     help="max: the SLO holds below the value (a load); min: above it "
                          "(replicas, a cache size). Default max")
    cap.add_argument("--tolerance", type=float, default=None,
                     help="stop when the bracket is this narrow (default 1%% of the range, "
                          "or 1 for whole numbers)")
    cap.add_argument("--workload", default=None, help="workload the SLO is about (default all)")
    cap.add_argument("--minimize", choices=["cost"], default=None,
                     help="cost: each point's cost too, and the cheapest meeting the SLO")


def run_command(args: argparse.Namespace) -> int:
    """Run one experiment command; return the exit code."""
    from simulator.outdir import out_problem, report_problem

    name = args.command
    if args.seed is not None and not 0 <= args.seed < 2**63:
        return _fail(name, f"--seed must be between 0 and 2**63 - 1, got {args.seed}")
    if args.out is not None and (problem := out_problem(args.out)):
        return _fail(name, f"--out {args.out}: {problem}")
    report = _report_path(args) if getattr(args, "report", None) is not None else None
    if report is not None and (problem := report_problem(report)):
        return _fail(name, f"--report {report}: {problem}")
    if args.executor != "dask" and args.scheduler:
        return _fail(name, "--scheduler needs --executor dask")
    handler: Callable[[argparse.Namespace], Any] = _HANDLERS[name]
    try:
        result = handler(args)
    except KeyboardInterrupt:
        cache = getattr(args, "cache", None)
        note = f"; finished runs are in {cache}: rerun to resume" if cache else ""
        print(f"\nsimulator {name}: interrupted{note}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, ExecutorError) as exc:
        return _fail(name, str(exc))
    if args.out is not None:
        try:
            path = result.write(args.out, fmt=args.format)
        except OSError as exc:
            return _fail(name, f"--out {args.out}: cannot write: {exc.strerror or exc}")
        say(f"\ntables written to {path}/")
    if report is not None:
        from simulator.analysis.experiment_report import write_experiment_report

        try:
            write_experiment_report(result, report)
        except OSError as exc:
            return _fail(name, f"--report {report}: cannot write: {exc.strerror or exc}")
        say(f"report written to {report}")
    return 0


def say(text: object = "") -> None:
    """Print to stdout, fitted to the terminal's width (tables split between columns)."""
    print(fit(str(text)))


def _fail(name: str, message: str) -> int:
    print(f"simulator {name}: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _options(args: argparse.Namespace) -> dict[str, Any]:
    from simulator.experiment.options import ExperimentOptions

    running = ExperimentOptions(executor=args.executor, workers=args.workers,
                                scheduler=args.scheduler, cache=args.cache,
                                progress=args.progress, force=args.force)
    return {
        "seed": args.seed, "warmup": args.warmup, "confidence": args.confidence,
        "overrides": args.overrides, "options": running,
        **({"tables": args.tables} if hasattr(args, "tables") else {}),
    }


def _metrics(args: argparse.Namespace, default: tuple[str, ...]) -> list[str]:
    from simulator.analysis.summary import SUMMARY_COLUMNS

    metrics = args.metric or list(default)
    numeric = [c for c in SUMMARY_COLUMNS if c not in ("scope", "name")]
    unknown = [m for m in metrics if m not in numeric]
    if unknown:
        raise ValueError(f"unknown --metric {', '.join(unknown)}; expected one of "
                         f"{', '.join(numeric)}")
    return metrics


# --------------------------------------------------------------------------------------------
# commands


def _replicate(args: argparse.Namespace) -> Any:
    import pandas as pd

    from simulator.experiment.replicate import DEFAULT_METRICS, replicate

    metrics = _metrics(args, DEFAULT_METRICS)
    reps = replicate(
        args.file, args.replications, target_relative_half_width=args.target_rhw,
        precision_metric=metrics[0], max_replications=args.max_replications, **_options(args))
    say(f"{reps.scenario.name}: {reps.replications} replications (seed "
          f"{reps.meta['seed']}, warm-up {_warmup_text(reps.runs)}), "
          f"{reps.confidence:.0%} confidence intervals"
          + (f"; stopped: {reps.meta['stopped_by']}" if args.target_rhw else ""))
    if reps.unstable:
        say(f"\nWARNING: {len(reps.unstable)} of {reps.replications} replications did not "
              "reach a steady state: the intervals describe where the runs stopped, not the "
              "system")
        _print_unstable(reps.tables["findings"])
    table = reps.intervals(metrics)
    rows = []
    for _, r in table.iterrows():
        rows.append({"scope": r["scope"], "name": r["name"], "metric": label(r["metric"]),
                     "mean": fmt(r["metric"], r["mean"]),
                     "ci": interval_text(r["metric"], r["low"], r["high"]),
                     "±%": "-" if not math.isfinite(r["relative_half_width"])
                     else f"{100 * r['relative_half_width']:.1f}"})
    say()
    say(pd.DataFrame(rows).to_string(index=False))
    return reps


def _warmup_text(runs: pd.DataFrame) -> str:
    w = runs["warmup"]
    if w.nunique() == 1:
        return f"{w.iloc[0]:g}s"
    return f"auto, {w.min():.3g}s to {w.max():.3g}s"


def _compare(args: argparse.Namespace) -> Any:
    import pandas as pd

    from simulator.experiment.compare import compare, vary
    from simulator.experiment.replicate import DEFAULT_METRICS

    metrics = _metrics(args, DEFAULT_METRICS)
    variants = vary(_path_values(args.vary, "--vary"), args.force) if args.vary else None
    cmp = compare(args.file, variants, args.replications, baseline=args.baseline,
                  **_options(args))
    base = cmp.baseline
    scenario = next(iter(cmp.scenarios.values()))
    say(f"{scenario.name}: {len(cmp.variants)} variants x {args.replications} replications "
          f"(seed {cmp.meta['seed']}, warm-up {_warmup_text(cmp.runs)}), common random "
          f"numbers; {cmp.confidence:.0%} confidence intervals; differences vs {base}, paired "
          "by replication (* = significant)")
    if "baseline_note" in cmp.meta:
        say(cmp.meta["baseline_note"] + f": {base}")
    table = cmp.table(metrics)
    if cmp.unstable:
        say(f"\nWARNING: {', '.join(cmp.unstable)} did not reach a steady state in some "
              "replication (see the findings table): shown, not ranked, no significance claim")
        _print_unstable(cmp.tables["findings"])
    for (name, key), block in table.groupby(["name", "metric"], sort=False):
        metric = str(key)
        rows = ranked_rows(block, metric, base, cmp.confidence, terse=True)
        say(f"\n{name}: {label(metric)}")
        say(pd.DataFrame(rows).to_string(index=False))
    say()
    if cmp.unstable:
        shown = [base] if base in cmp.unstable else [v for v in cmp.unstable if v != base]
        say(f"not compared with {base}: {', '.join(shown)} (no steady state)")
    for line in difference_sentences(table, base, cmp.unstable, cmp.confidence):
        say(line)
    return cmp


def _print_unstable(findings: pd.DataFrame, limit: int = 8) -> None:
    """The evidence of instability: the worst checks, one line each."""
    bad = findings[findings["verdict"] == "unstable"]
    tag = "variant" if "variant" in bad else None
    for _, r in bad.head(limit).iterrows():
        where = f"{r[tag]} " if tag else ""
        say(f"  {where}replication {r['replication']}: {r['instance']}: {r['evidence']}")
    if len(bad) > limit:
        say(f"  and {len(bad) - limit} more")


def _sweep(args: argparse.Namespace) -> Any:
    import pandas as pd

    from simulator.experiment.sweep import sweep

    metrics = _metrics(args, ("mean", "p99", "error_ratio"))
    if not args.grid:
        raise ValueError("nothing to sweep: give --grid key.path=v1,v2,...")
    grid = _path_values(args.grid, "--grid")
    if args.no_cache:
        args.cache = None
    elif args.cache is None:
        args.cache = Path(".simulator-cache")
    result = sweep(args.file, grid, args.replications, **_options(args))
    points, reps = len(result.points), args.replications
    say(f"{points} points x {reps} replications = {points * reps} runs: "
          f"{result.computed} run now, {result.reused} reused"
          + (f" (cache {args.cache})" if args.cache else ""))
    iv = result.intervals(metrics)
    wide = sweep_rows(iv, result.parameters)
    say()
    say(pd.DataFrame(wide).to_string(index=False))
    if not result.steady()["steady"].all():
        say("\nsteady NO: a replication of that point did not reach a steady state; its "
              "figures describe where the run stopped (evidence: the findings table)")
    return result


def _number(text: str) -> float:
    from simulator.units import parse_duration, parse_rate

    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    return parse_rate(text) if "/" in text else parse_duration(text)


def _capacity(args: argparse.Namespace) -> Any:
    from simulator.experiment.capacity import capacity

    try:
        low, high = _number(args.low), _number(args.high)
    except ValueError as exc:
        raise ValueError(f"--low/--high: {exc}") from None
    result = capacity(
        args.file, args.param, low, high, args.slo, find=args.find, tolerance=args.tolerance,
        replications=args.replications, workload=args.workload, minimize=args.minimize,
        **_options(args))
    cols = [args.param, "passes", *(["cost_mean"] if args.minimize else [])]
    shown = result.evaluations[cols].copy()
    level = f"{args.confidence:.0%}"
    for c in result.slo:
        side = "upper" if c.upper else "lower"
        shown[f"{c.metric} mean"] = [fmt(c.metric, v) for v in
                                     result.evaluations[f"{c.metric}_mean"]]
        shown[f"{c.metric} {side} {level}"] = [fmt(c.metric, v) for v in
                                              result.evaluations[f"{c.metric}_bound"]]
    shown["passes"] = shown["passes"].map({True: "yes", False: "no"})
    say(shown.to_string(index=False))
    slo = " and ".join(c.text for c in result.slo)
    word = "highest" if args.find == "max" else "lowest"
    say()
    if result.value is None:
        say(f"no {args.param} in [{args.low}, {args.high}] meets {slo} at {level} confidence")
    elif result.failing is None:
        say(f"the whole range meets {slo} at {level} confidence: {word} {args.param} tried "
              f"{result.value:g}; widen the range")
    else:
        say(f"{word} {args.param} meeting {slo} at {level} confidence: {result.value:g} "
              f"({result.failing:g} misses it)")
    if args.minimize and result.cheapest is not None:
        ev = result.evaluations
        cost = float(ev.loc[ev[args.param] == result.cheapest, "cost_mean"].iloc[0])
        say(f"cheapest {args.param} tried meeting {slo}: {result.cheapest:g} "
            f"(mean cost {cost:.4g})")
    return result


_HANDLERS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "replicate": _replicate, "compare": _compare, "sweep": _sweep, "capacity": _capacity,
}
