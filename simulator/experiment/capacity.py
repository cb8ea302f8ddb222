"""Capacity search: the largest load or the smallest resource that meets an SLO, with confidence.

An SLO is a list of conditions on summary metrics of the workloads, such as ``"p99 < 200ms and
error_ratio < 0.1%"``. A point (a value of the searched parameter) meets it at confidence ``c``
when, for every condition and every workload, the one-sided ``c`` confidence bound of the
metric across replications is on the right side of the threshold: for ``p99 < 200ms`` the
upper bound of the mean p99 over replications must be below 200 ms.

The search assumes the SLO is monotone in the parameter: met below a threshold value and missed
above it (``find="max"``, for an arrival rate) or the reverse (``find="min"``, for replicas or a
cache size). It brackets the answer between the ends of the given range and bisects. Every
point runs the same seed and replications (common random numbers), so the curve it bisects is
smooth in the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from simulator.analysis.stats import lower_bound, upper_bound
from simulator.errors import Problem, ScenarioError
from simulator.experiment.options import ExperimentOptions
from simulator.experiment.output import manifest, write_folder
from simulator.experiment.runs import (
    RunSpec,
    Source,
    check_tables,
    check_warmup,
    concat,
    run_all,
    scenario_payload,
)
from simulator.experiment.sweep import override
from simulator.limits import REPLICATIONS, check_count
from simulator.slo import Objective, read_slo


@dataclass(frozen=True)
class Condition(Objective):
    """One condition of an SLO (:class:`simulator.slo.Objective`), decided over replications
    by a one-sided confidence bound."""

    def bound(self, values: np.ndarray, confidence: float | None) -> float:
        """The confidence bound that decides the condition (the mean with no confidence).

        A replication without a value (a p99 with no successful request) fails the condition.
        """
        v = np.asarray(values, dtype=np.float64)
        if len(v) == 0 or not np.all(np.isfinite(v)):
            return math.inf if self.upper else -math.inf
        if confidence is None:
            return float(v.mean())
        return upper_bound(v, confidence) if self.upper else lower_bound(v, confidence)

    def holds(self, bound: float) -> bool:
        """Whether a bound (see :meth:`bound`) meets the condition."""
        return bool(np.isfinite(bound) and self.met_by(bound))


def parse_slo(text: str) -> list[Condition]:
    """Parse ``"p99 < 200ms and error_ratio < 0.1%"`` into conditions.

    Conditions are joined by ``and``, ``,`` or ``;``. Metrics are summary columns (``mean``,
    ``p50``, ``p95``, ``p99``, ``p999``, ``error_ratio``, ``rejection_ratio``,
    ``timeout_ratio``, ``throughput``, ``goodput``, ``utilisation``...; ``errors`` means
    ``error_ratio``). Latencies take time units (a bare number is seconds), ratios a ``%`` or a
    fraction, rates ``/s`` units.

    Raises
    ------
    ScenarioError
        Naming the condition that cannot be read (source ``--slo``).
    """
    objectives, problems = read_slo(text)
    if problems:
        raise ScenarioError("--slo", problems)
    return [Condition(o.metric, o.op, o.threshold, o.text) for o in objectives]


@dataclass
class Capacity:
    """Result of a capacity search.

    Attributes
    ----------
    parameter
        The searched key path.
    find
        ``"max"`` (largest value meeting the SLO) or ``"min"`` (smallest).
    slo
        The conditions.
    confidence
        Confidence of the one-sided bounds (None: point estimates).
    value
        The best value found that meets the SLO, or None if none in the range does.
    failing
        The nearest value tried that misses it (None if the whole range meets it): the answer
        lies between :attr:`value` and :attr:`failing`.
    evaluations
        One row per point tried, in order: the parameter, ``passes``, per condition the
        mean and the deciding bound over replications (worst workload), and ``steady``
        (False when a replication did not reach a steady state: the point then fails the SLO,
        see :mod:`simulator.analysis.stability`); with ``minimize="cost"``, ``cost_mean``
        (the ``cost`` table's total, mean over replications).
    cheapest
        With ``minimize="cost"``: the point tried that meets the SLO at the lowest
        ``cost_mean`` (ties: the first tried), else None. With a cost monotone in the
        parameter it is :attr:`value`; it differs when the cost is not (a target utilisation,
        a scale-down window).
    runs
        Tidy summaries of every run: the parameter column, ``seed``, ``replication``,
        ``warmup``, then the summary columns.
    meta
        Manifest.
    """

    parameter: str
    find: Literal["max", "min"]
    slo: list[Condition]
    confidence: float | None
    value: float | int | None
    failing: float | int | None
    evaluations: pd.DataFrame
    runs: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    scenario: dict[str, Any] = field(default_factory=dict, repr=False)
    cheapest: float | int | None = None

    def write(self, directory: str | Path,
              fmt: Literal["parquet", "csv"] = "parquet") -> Path:
        """Write ``evaluations``, ``runs``, the resolved base scenario and the manifest."""
        return write_folder(directory, {"evaluations": self.evaluations, "runs": self.runs},
                            self.meta, {"scenario": self.scenario}, fmt)


def _current_value(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        key: Any = int(part) if part.isdigit() and isinstance(node, list) else part
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def capacity(
    scenario: Any,
    parameter: str,
    low: float,
    high: float,
    slo: str | Sequence[Condition] | None = None,
    *,
    find: Literal["max", "min"] = "max",
    integer: bool | None = None,
    tolerance: float | None = None,
    replications: int = 5,
    confidence: float | None = 0.95,
    workload: str | None = None,
    seed: int | None = None,
    warmup: float | str | None = None,
    overrides: Sequence[str] = (),
    max_evaluations: int = 40,
    minimize: Literal["cost"] | None = None,
    options: ExperimentOptions | None = None,
    **settings: Any,
) -> Capacity:
    """Search for the largest (or smallest) value of a parameter that meets an SLO.

    Parameters
    ----------
    scenario
        A path, a validated :class:`~simulator.Scenario`, a dict or a
        :class:`~simulator.experiment.runs.Source`.
    parameter
        Key path of the searched value (``workloads.users.arrivals.rate``,
        ``components.api.replicas``...), in the scenario's base units (per second, seconds).
    low, high
        The range searched.
    slo
        Conditions, as text (see :func:`parse_slo`) or parsed; default: the scenario's
        ``slo:``.
    find
        ``"max"``: the SLO holds below some value (a load); ``"min"``: above it (a resource).
    integer
        Search whole numbers; default: when the scenario's current value is an integer.
    tolerance
        Stop when the bracket is this narrow; default 1 for integers, else 1% of the range.
    replications
        Replications per point (at least 2 with a confidence).
    confidence
        Confidence of the one-sided bounds; None compares point estimates (means).
    workload
        The workload whose summary the SLO applies to; default every workload.
    minimize
        ``"cost"``: also record each point's cost (the ``cost`` table's total over the
        measured window; the scenario must state prices or scale) and report the cheapest
        point meeting the SLO (:attr:`Capacity.cheapest`).
    seed, warmup, overrides, options, settings
        As for :func:`~simulator.experiment.replicate`.
    """
    conditions = (parse_slo(slo) if isinstance(slo, str) else None if slo is None
                  else list(slo))
    if find not in ("max", "min"):
        raise ValueError(f"find must be 'max' or 'min', got {find!r}")
    if not low < high:
        raise ValueError(f"low must be below high, got {low} and {high}")
    if minimize not in (None, "cost"):
        raise ValueError(f"minimize must be 'cost' or None, got {minimize!r}")
    if confidence is not None and replications < 2:
        raise ValueError("a confidence bound needs at least 2 replications")
    opts = ExperimentOptions.of(options, settings)
    check_count(REPLICATIONS, "replications asked for", replications, opts.force)
    source = Source.of(scenario, overrides, force=opts.force)
    base = source.resolve()
    if conditions is None:
        if base.slo is None:
            raise ValueError("no SLO to search against: give one (--slo 'p99 < 200ms') or "
                             "state it in the scenario (slo: ...)")
        conditions = parse_slo(base.slo)
    if workload is not None and workload not in base.workloads:
        raise ScenarioError(source.name, [Problem(
            f"no workload {workload!r} (workloads: {', '.join(base.workloads)})", "workloads")])
    if integer is None:
        current = _current_value(source.raw(), parameter)
        integer = isinstance(current, int) and not isinstance(current, bool)
    if integer:
        low, high = math.ceil(low), math.floor(high)
    tol = tolerance if tolerance is not None else (1 if integer else (high - low) / 100)
    seed = base.seed if seed is None else seed
    rule = check_warmup(warmup, base)
    if minimize == "cost" and not any(getattr(p, "autoscaling", None) is not None
                                      or p.cost is not None for p in base.components.values()):
        raise ScenarioError(source.name, [Problem(
            "minimize cost: no component states a price (cost: {per_instance_hour: ...})",
            "components")])
    tables = check_tables(("cost",) if minimize == "cost" else ())
    store = opts.run_cache()
    rows: list[dict[str, Any]] = []
    run_parts: list[pd.DataFrame] = []

    with opts.running() as ex:

        def evaluate(value: float) -> bool:
            v: float | int = int(value) if integer else float(value)
            resolved, payload = scenario_payload(source, [override(parameter, v)])
            check_warmup(rule, resolved)
            specs = [RunSpec(payload, seed, r, rule, tables)
                     for r in range(replications)]
            outs, _ = run_all(specs, ex, store, opts.progress,
                              desc=f"capacity {parameter}={v:g}")
            runs = concat([o["summary"] for o in outs], [{parameter: v}] * len(outs))
            run_parts.append(runs)
            wl = runs[runs["scope"] == "workload"]
            if workload is not None:
                wl = wl[wl["name"] == workload]
            row: dict[str, Any] = {parameter: v, "passes": True}
            for c in conditions:
                means, bounds = [], []
                for _, g in wl.groupby("name", sort=False):
                    vals = g[c.metric].to_numpy(dtype=np.float64)
                    means.append(float(np.mean(vals)) if len(vals) else math.nan)
                    bounds.append(c.bound(vals, confidence))
                worst = max(bounds) if c.upper else min(bounds)
                row[f"{c.metric}_mean"] = max(means) if c.upper else min(means)
                row[f"{c.metric}_bound"] = worst
                row["passes"] = row["passes"] and c.holds(worst)
            # a point that never settled meets no SLO, whatever its survivors' figures say
            findings = pd.concat([o["findings"] for o in outs], ignore_index=True)
            row["steady"] = not (findings["verdict"] == "unstable").any()
            row["passes"] = row["passes"] and row["steady"]
            if minimize == "cost":
                row["cost_mean"] = float(np.mean([
                    float(o["cost"].loc[o["cost"]["component"] == "total", "cost"].iloc[0])
                    for o in outs]))
            rows.append(row)
            return bool(row["passes"])

        good_end, bad_end = (low, high) if find == "max" else (high, low)
        value: float | None
        failing: float | None
        if not evaluate(good_end):
            value, failing = None, good_end
        elif evaluate(bad_end):
            value, failing = bad_end, None
        else:
            value, failing = good_end, bad_end
            while abs(failing - value) > tol and len(rows) < max_evaluations:
                mid = (value + failing) / 2
                if integer:
                    mid = math.floor(mid) if find == "max" else math.ceil(mid)
                    if mid in (value, failing):
                        break
                if evaluate(mid):
                    value = mid
                else:
                    failing = mid
        meta = manifest(
            "capacity", source=source.name, overrides=list(source.overrides),
            parameter=parameter, low=low, high=high, find=find, integer=integer, tolerance=tol,
            slo=[c.text for c in conditions], confidence=confidence, workload=workload,
            seed=seed, replications=list(range(replications)), warmup=rule, value=value,
            failing=failing, **ex.describe())

    def typed(x: float | None) -> float | int | None:
        return None if x is None else (int(x) if integer else float(x))

    evaluations = pd.DataFrame(rows)
    runs = pd.concat(run_parts, ignore_index=True)
    cheapest: float | None = None
    if minimize == "cost":
        passing = evaluations[evaluations["passes"]]
        if len(passing):
            i = int(np.argmin(passing["cost_mean"].to_numpy()))  # ties: the first tried
            cheapest = float(passing[parameter].iloc[i])
    return Capacity(parameter, find, conditions, confidence, typed(value), typed(failing),
                    evaluations, runs, meta, base.model_dump(mode="json", by_alias=True),
                    cheapest=typed(cheapest))
