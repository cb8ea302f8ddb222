"""Independent replications of one scenario, with Student-t intervals.

Replication ``r`` runs ``simulate(scenario, seed, replication=r)``: independent random streams
for every ``r``. Optionally, replications are added until a metric's relative half width is
small enough (sequential stopping).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from simulator.analysis.stability import unstable_in
from simulator.analysis.stats import Interval, interval_table, replications_needed, t_interval
from simulator.experiment.options import ExperimentOptions
from simulator.experiment.output import manifest, write_folder
from simulator.experiment.runs import (
    RunSpec,
    Source,
    check_tables,
    check_warmup,
    gather,
    run_all,
    scenario_payload,
)
from simulator.limits import REPLICATIONS, check_count
from simulator.scenario import Scenario

#: Metrics reported by default (columns of the summary table).
DEFAULT_METRICS = ("mean", "p50", "p95", "p99", "error_ratio", "throughput")


@dataclass
class Replications:
    """Replications of one scenario.

    Attributes
    ----------
    scenario
        The resolved scenario.
    runs
        The summary of every replication, tidy: ``seed``, ``replication``, ``warmup`` (start of
        the measured window used), then the summary columns (``scope``, ``name``, ``mean``,
        ``p99``...), one row per (replication, workload or component).
    confidence
        Confidence level of the intervals.
    meta
        Manifest of the experiment (seeds, versions...).
    tables
        Further tables asked for (``tables=`` of :func:`replicate`), by name, each with the
        rows of every replication after ``seed``, ``replication``, ``warmup``.
    """

    scenario: Scenario
    runs: pd.DataFrame
    confidence: float = 0.95
    meta: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def replications(self) -> int:
        """Number of replications run."""
        return int(self.runs["replication"].nunique())

    @property
    def unstable(self) -> list[int]:
        """Replications that did not reach a steady state (see
        :mod:`simulator.analysis.stability`; the evidence is in ``tables["findings"]``)."""
        return sorted(int(r) for r in unstable_in(self.tables.get("findings"), "replication"))

    def intervals(self, metrics: Sequence[str] = DEFAULT_METRICS,
                  scope: str | None = None) -> pd.DataFrame:
        """Student-t interval of each metric per workload and component (long table)."""
        runs = self.runs if scope is None else self.runs[self.runs["scope"] == scope]
        return interval_table(runs, ["scope", "name"], metrics, self.confidence)

    def interval(self, metric: str = "mean", name: str | None = None,
                 scope: str = "workload") -> Interval:
        """The interval of one metric of one workload (default: the first) or component."""
        rows = self.runs[self.runs["scope"] == scope]
        name = name if name is not None else str(rows["name"].iloc[0])
        return t_interval(rows.loc[rows["name"] == name, metric].to_numpy(dtype=float),
                          self.confidence)

    def write(self, directory: str | Path,
              fmt: Literal["parquet", "csv"] = "parquet") -> Path:
        """Write ``runs``, ``intervals``, the resolved scenario and the manifest."""
        return write_folder(
            directory, {"runs": self.runs, "intervals": self.intervals(), **self.tables}, self.meta,
            {"scenario": self.scenario.model_dump(mode="json", by_alias=True)}, fmt)


def replicate(
    scenario: Any,
    replications: int = 10,
    *,
    seed: int | None = None,
    warmup: float | str | None = None,
    confidence: float = 0.95,
    target_relative_half_width: float | None = None,
    precision_metric: str = "mean",
    max_replications: int = 100,
    overrides: Sequence[str] = (),
    options: ExperimentOptions | None = None,
    tables: Sequence[str] = (),
    **settings: Any,
) -> Replications:
    """Run independent replications of a scenario.

    Parameters
    ----------
    scenario
        A path, a validated :class:`~simulator.Scenario`, a dict or a
        :class:`~simulator.experiment.runs.Source`.
    replications
        Replications to run (the first batch, with sequential stopping); at least 2 for an
        interval.
    seed
        Seed of every replication; default the scenario's.
    warmup
        ``None``: the scenario's warm-up; seconds or a duration (``"10s"``); a number of
        requests (``"5000 requests"``: per replication, the window starts at the creation of
        the request of index 5000); ``"auto"``: MSER-5 per replication on the latency of
        requests in arrival order.
    confidence
        Confidence level of the intervals.
    target_relative_half_width
        If given, keep adding replications until the interval of ``precision_metric`` of every
        workload has a half width at most this fraction of its mean, or ``max_replications``.
    precision_metric
        Metric the stopping rule watches.
    max_replications
        Upper limit with sequential stopping.
    overrides
        ``key.path=value`` overrides applied first.
    options
        Where and how the runs execute (:class:`~simulator.experiment.ExperimentOptions`:
        executor, workers, scheduler, run cache, progress); results never depend on it.
    **settings
        The same options as keywords (``executor="serial"``), instead of ``options``.
    tables
        Further tables to collect from every run besides the summary: any of
        :func:`~simulator.experiment.runs.run_tables` (``cache_summary``, ``region_summary``,
        ``requests``...).

    Returns
    -------
    Replications
        The per-replication summaries and their intervals.
    """
    if replications < 1:
        raise ValueError(f"replications must be >= 1, got {replications}")
    opts = ExperimentOptions.of(options, settings)
    check_count(REPLICATIONS, "replications asked for", replications, opts.force)
    if target_relative_half_width is not None:
        check_count(REPLICATIONS, "replications allowed (--max-replications)",
                    max_replications, opts.force)
    source = Source.of(scenario, overrides, force=opts.force)
    resolved, payload = scenario_payload(source)
    seed = resolved.seed if seed is None else seed
    rule = check_warmup(warmup, resolved)
    wanted = check_tables(tables)
    store = opts.run_cache()
    n, done = replications, 0
    outputs: list[dict[str, pd.DataFrame]] = []
    parts: list[pd.DataFrame] = []
    stop = "replications"
    with opts.running() as ex:
        while True:
            specs = [RunSpec(payload, seed, r, rule, wanted) for r in range(done, n)]
            outs, _ = run_all(specs, ex, store, opts.progress, desc=f"{resolved.name} replications")
            parts += [o["summary"] for o in outs]
            outputs += outs
            done = n
            if target_relative_half_width is None:
                break
            runs = pd.concat(parts, ignore_index=True)
            wl = runs[runs["scope"] == "workload"]
            ivs = [t_interval(g[precision_metric].to_numpy(dtype=float), confidence)
                   for _, g in wl.groupby("name", sort=False)]
            if all(iv.relative_half_width <= target_relative_half_width for iv in ivs):
                stop = "precision reached"
                break
            if n >= max_replications:
                stop = "max_replications reached"
                break
            need = max(replications_needed(iv, target_relative_half_width) for iv in ivs)
            n = min(max_replications, max(n + 1, min(need, 2 * n)))
        meta = manifest(
            "replicate", source=source.name, overrides=list(source.overrides), seed=seed,
            replications=list(range(done)), warmup=rule, confidence=confidence,
            target_relative_half_width=target_relative_half_width,
            precision_metric=precision_metric, stopped_by=stop, **ex.describe())
    runs = pd.concat(parts, ignore_index=True)
    if math.isnan(runs["replication"].max()):  # pragma: no cover - replications >= 1
        raise RuntimeError("no replication ran")
    return Replications(resolved, runs, confidence, meta,
                        gather(outputs, [{}] * len(outputs), wanted))
