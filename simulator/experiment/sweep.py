"""Sweeps: a grid of overrides x replications, as one tidy table, cached and resumable.

Every point of the grid (the cartesian product of the values of each swept key path) runs
replications ``0 .. n-1`` with the same seed, so neighbouring points share common random
numbers. Each finished run is stored in a cache keyed by the resolved scenario, the seed, the
replication, the warm-up rule and the code version: a rerun reuses it, and an interrupted sweep
resumes where it stopped.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from simulator.analysis.stats import interval_table
from simulator.errors import Problem, ScenarioError
from simulator.experiment.options import ExperimentOptions
from simulator.experiment.output import manifest, write_folder
from simulator.experiment.replicate import DEFAULT_METRICS
from simulator.experiment.runs import (
    RUN_COLUMNS,
    RunSpec,
    Source,
    check_tables,
    check_warmup,
    concat,
    gather,
    run_all,
    scenario_payload,
)
from simulator.limits import REPLICATIONS, SWEEP_POINTS, check_count
from simulator.yamlfile import load_yaml_value


def override(path: str, value: Any) -> str:
    """Format ``path=value`` for :func:`simulator.scenario.apply_overrides`.

    Strings are passed as written (they are YAML: ``600/s``, ``[1, 2]``); numbers keep their
    type (a float always reads back as a float); anything else is written as JSON.
    """
    if isinstance(value, str):
        return f"{path}={value}"
    if isinstance(value, bool):
        return f"{path}={'true' if value else 'false'}"
    if isinstance(value, float):
        text = repr(value)
        if math.isfinite(value) and "." not in text:
            mantissa, e, exponent = text.partition("e")
            text = f"{mantissa}.0{e}{exponent}"
        return f"{path}={text}"
    return f"{path}={json.dumps(value)}"


def _column_value(value: Any) -> Any:
    """The value in the table: YAML text is parsed (``"2"`` -> 2), other values kept."""
    if isinstance(value, str):
        try:
            return load_yaml_value(value)
        except ValueError:
            return value
    return value


@dataclass
class Sweep:
    """Runs of every point of a grid.

    Attributes
    ----------
    parameters
        The swept key paths, in order; each is a column of :attr:`runs`.
    points
        The value of each parameter at each point, in order.
    runs
        Tidy summaries: one column per parameter, ``seed``, ``replication``, ``warmup``, then
        the summary columns (``scope``, ``name``, ``mean``, ``p99``...); one row per (point,
        replication, workload or component).
    confidence
        Confidence level of :meth:`intervals`.
    computed, reused
        Runs computed now and runs reused from the cache.
    meta
        Manifest of the experiment.
    tables
        Further tables asked for (``tables=`` of :func:`sweep`), by name, with one column per
        parameter, then ``seed``, ``replication``, ``warmup``.
    """

    parameters: list[str]
    points: list[dict[str, Any]]
    runs: pd.DataFrame
    confidence: float = 0.95
    computed: int = 0
    reused: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    scenarios: dict[str, Any] = field(default_factory=dict, repr=False)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def table(self, scope: str = "workload") -> pd.DataFrame:
        """The rows of one scope: with one workload, one row per point x replication."""
        return self.runs[self.runs["scope"] == scope].reset_index(drop=True)

    def steady(self) -> pd.DataFrame:
        """Per point: ``steady``, False when a replication did not reach a steady state (see
        :mod:`simulator.analysis.stability`; the evidence is in ``tables["findings"]``)."""
        frame = pd.DataFrame(self.points, columns=self.parameters)
        findings = self.tables.get("findings")
        if findings is None or findings.empty:
            return frame.assign(steady=True)
        bad = findings.assign(bad=findings["verdict"] == "unstable").groupby(
            self.parameters, sort=False, observed=True, dropna=False)["bad"].any()
        keys = list(frame.itertuples(index=False, name=None))
        frame["steady"] = [not bool(bad.get(k if len(k) > 1 else k[0], False)) for k in keys]
        return frame

    def intervals(self, metrics: Sequence[str] = DEFAULT_METRICS,
                  scope: str = "workload") -> pd.DataFrame:
        """Student-t interval of each metric at each point (long table), with ``steady`` (see
        :meth:`steady`): the interval of a point that never settled describes where its runs
        stopped."""
        table = interval_table(self.table(scope), [*self.parameters, "scope", "name"], metrics,
                               self.confidence)
        return table.merge(self.steady(), on=self.parameters, how="left")

    def write(self, directory: str | Path,
              fmt: Literal["parquet", "csv"] = "parquet") -> Path:
        """Write ``sweep`` (workload rows), ``runs`` (every row), ``intervals`` and manifest."""
        return write_folder(
            directory,
            {"sweep": self.table(), "runs": self.runs, "intervals": self.intervals(),
             **self.tables},
            self.meta, self.scenarios, fmt)


def sweep(
    scenario: Any,
    grid: Mapping[str, Sequence[Any]],
    replications: int = 3,
    *,
    seed: int | None = None,
    warmup: float | str | None = None,
    confidence: float = 0.95,
    overrides: Sequence[str] = (),
    options: ExperimentOptions | None = None,
    tables: Sequence[str] = (),
    **settings: Any,
) -> Sweep:
    """Run every point of a grid of overrides, ``replications`` times each.

    Parameters
    ----------
    scenario
        A path, a validated :class:`~simulator.Scenario`, a dict or a
        :class:`~simulator.experiment.runs.Source`.
    grid
        Values by key path (``{"workloads.users.arrivals.rate": ["400/s", "600/s"]}``);
        strings are YAML, as on the command line.
    replications
        Replications per point.
    seed
        Seed of every run; default the scenario's.
    warmup
        ``None`` (the scenario's), seconds or a duration, a number of requests
        (``"5000 requests"``: the first 5000 created are left out), or ``"auto"`` (MSER-5).
    confidence
        Confidence level of :meth:`Sweep.intervals`.
    overrides
        Overrides applied to every point first.
    options, settings, tables
        As for :func:`~simulator.experiment.replicate` (with a run cache, repeated points are
        reused and an interrupted sweep resumes).
    """
    if replications < 1:
        raise ValueError(f"replications must be >= 1, got {replications}")
    opts = ExperimentOptions.of(options, settings)
    check_count(REPLICATIONS, "replications asked for", replications, opts.force)
    check_count(SWEEP_POINTS, "points of the grid (the product of the numbers of values)",
                math.prod(len(list(v)) for v in grid.values()), opts.force)
    source = Source.of(scenario, overrides, force=opts.force)
    base = source.resolve()
    params = list(grid)
    problems = [Problem(f"{p!r} is also a column of the results; sweep the scenario's seed by "
                        "replications instead" if p in RUN_COLUMNS else
                        f"no values given for {p!r}", p)
                for p in params if p in RUN_COLUMNS or not list(grid[p])]
    if not params:
        problems.append(Problem("nothing to sweep: give --grid key.path=v1,v2,..."))
    if problems:
        raise ScenarioError(source.name, problems)
    rule = check_warmup(warmup, base)
    wanted = check_tables(tables)
    points: list[dict[str, Any]] = []
    specs: list[RunSpec] = []
    tags: list[dict[str, Any]] = []
    scenarios: dict[str, Any] = {}
    listed: list[list[str]] = []
    for combo in itertools.product(*(list(grid[p]) for p in params)):
        extra = [override(p, v) for p, v in zip(params, combo, strict=True)]
        resolved, payload = scenario_payload(source, extra)
        check_warmup(rule, resolved)
        point = {p: _column_value(v) for p, v in zip(params, combo, strict=True)}
        points.append(point)
        scenarios[f"point{len(listed):04d}"] = resolved.model_dump(mode="json", by_alias=True)
        listed.append(extra)
        run_seed = resolved.seed if seed is None else seed
        for r in range(replications):
            specs.append(RunSpec(payload, run_seed, r, rule, wanted))
            tags.append(point)
    store = opts.run_cache()
    with opts.running() as ex:
        outs, stats = run_all(specs, ex, store, opts.progress, desc=f"{base.name} sweep")
        meta = manifest(
            "sweep", source=source.name, overrides=list(source.overrides), grid={
                p: [v if isinstance(v, str | int | float | bool) else json.dumps(v)
                    for v in grid[p]] for p in params},
            points=listed, seed=seed if seed is not None else base.seed,
            replications=list(range(replications)), warmup=rule, confidence=confidence,
            cache=str(opts.cache) if opts.cache is not None else None, runs_computed=stats.computed,
            runs_reused=stats.reused, **ex.describe())
    runs = concat([o["summary"] for o in outs], tags)
    return Sweep(params, points, runs, confidence, stats.computed, stats.reused, meta, scenarios,
                 gather(outs, tags, wanted))
