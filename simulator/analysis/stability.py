"""Did the run reach a steady state? Verdicts per instance, per queue and per workload.

A summary of a run that never settled (a queue that grows for the whole measured window, a
response time that keeps rising, most requests still in flight at the end) describes the
moment the run stopped, not the system. These checks look at the measured window
``[warmup, duration)`` of one run's tables and say which parts did not settle, with the
evidence. Nothing here simulates.

Checks
------
utilisation
    Busy fraction of each instance's workers over the window (exact, from the
    ``busy_time_total`` integral). At or above :data:`SATURATED` the instance is ``saturated``:
    it has no spare capacity, and any extra load only queues.
backlog_trend
    Each gauge a kind declares as its backlog (``Kind.backlog``: requests in the system of a
    service or database shard, messages stored in a queue, events a read model is behind) is
    cut into :data:`BATCHES` consecutive batches of samples; the batch means get a one-sided
    Mann-Kendall trend test, with the exact null distribution (no normal approximation).
    Batch means of a stationary backlog are close to independent once a batch is long against
    the queue's relaxation time; a near-critical queue over a short window may then be
    flagged, which is the right answer: the window is too short for its averages to mean
    anything. A significant trend whose growth over the window (Sen's slope x window) is at
    least one item makes the series ``unstable``.
latency_trend
    The same test on the median response time of the requests created in each of
    :data:`BATCHES` equal slices of the window, an unfinished request counting as infinitely
    slow; ``unstable`` when significant and the last slice's median is at least
    :data:`LATENCY_GROWTH` times the first's.
unfinished
    Requests created in the window, more than a tenth of the window before its end, that never
    finished (the drain included): a system that keeps up finishes them, unless its response
    times are a tenth of the window, which is then too short. ``unstable`` when more than ten
    and more than :data:`UNFINISHED` of the workload's requests. With ``metrics.requests:
    streaming`` only the count of every unfinished request is known, and that is used.

False alarms: the trend tests of one run share a family-wise false-alarm rate of
:data:`FALSE_ALARM` (Bonferroni), for stationary arrivals; a workload whose arrival rate
itself rises over the window is, correctly, not in a steady state either.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from simulator.results import Results

#: Family-wise false-alarm rate of one run's trend tests.
FALSE_ALARM = 0.001
#: Batches of a trend test.
BATCHES = 10
#: Utilisation from which an instance counts as saturated.
SATURATED = 0.98
#: Share of a workload's requests that may stay unfinished (see ``unfinished``).
UNFINISHED = 0.001
#: Growth of the median response time, last slice over first, that makes a trend material.
LATENCY_GROWTH = 1.5

COLUMNS = ["scope", "component", "instance", "check", "verdict", "value", "p_value",
           "evidence"]
#: Verdicts, best first.
VERDICTS = ("steady", "saturated", "unstable")


def worst(verdicts: Sequence[str]) -> str:
    """The worst of some verdicts (``steady`` when there are none)."""
    return max(verdicts, key=VERDICTS.index, default="steady")


@functools.cache
def _inversions(n: int) -> np.ndarray:
    """Number of permutations of ``n`` items with each number of inversions (Mahonian)."""
    counts = np.array([1.0])
    for k in range(2, n + 1):
        nxt = np.zeros(len(counts) + k - 1)
        for shift in range(k):
            nxt[shift:shift + len(counts)] += counts
        counts = nxt
    return counts


def mann_kendall(values: np.ndarray) -> tuple[float, float]:
    """One-sided Mann-Kendall test for an upward trend.

    Returns
    -------
    (S, p)
        ``S``, the number of increasing pairs minus decreasing ones, and the exact
        probability of an ``S`` at least as large when the order is random (ties count as
        neither, which makes ``p`` conservative).
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    diff = np.sign(v[None, :] - v[:, None])
    s = float(np.triu(diff, 1).sum())
    pairs = n * (n - 1) // 2
    # S = pairs - 2 * inversions for a permutation: S >= s  <=>  inversions <= (pairs - s) / 2
    counts = _inversions(n)
    most = math.floor((pairs - s) / 2 + 1e-9)
    p = float(counts[:most + 1].sum() / counts.sum()) if most >= 0 else 0.0
    return s, p


def sen_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Median of the pairwise slopes (Theil-Sen), per unit of ``x``."""
    i, j = np.triu_indices(len(x), 1)
    dx = x[j] - x[i]
    ok = dx > 0
    return float(np.median((y[j] - y[i])[ok] / dx[ok])) if ok.any() else 0.0


def _batches(n: int) -> int:
    """Batches for ``n`` samples: at most :data:`BATCHES`, at least two samples each."""
    return min(BATCHES, n // 2)


def _row(scope: str, component: str, instance: str, check: str, verdict: str, value: float,
         p_value: float, evidence: str) -> dict[str, object]:
    return {"scope": scope, "component": component, "instance": instance, "check": check,
            "verdict": verdict, "value": value, "p_value": p_value, "evidence": evidence}


def _utilisation(samples: pd.DataFrame, t0: float, t1: float) -> list[dict[str, object]]:
    from simulator.analysis.summary import window_delta

    busy = window_delta(samples, "busy_time_total", t0, t1)
    if busy.empty:
        return []
    workers = samples[samples["metric"] == "workers"].groupby(
        ["component", "instance"], observed=True)["value"].max()
    rows = []
    for c, i, delta, a, b in zip(busy["component"], busy["instance"], busy["delta"],
                                 busy["t0"], busy["t1"], strict=True):
        capacity = workers.get((c, i), np.nan) * (b - a)
        if not capacity > 0:
            continue
        u = float(delta / capacity)
        verdict = "saturated" if u >= SATURATED else "steady"
        rows.append(_row("instance", str(c), str(i), "utilisation", verdict, u, np.nan,
                         f"busy {u:.1%} of the measured window"))
    return rows


def _backlog_series(samples: pd.DataFrame, gauges: dict[str, tuple[str, ...]], t0: float,
                    t1: float) -> list[tuple[str, str, str, pd.DataFrame]]:
    """(component, instance, metric[label], samples) of every declared backlog gauge."""
    inside = samples[(samples["time"] >= t0 - 1e-9) & (samples["time"] <= t1 + 1e-9)]
    out = []
    wanted = {m for ms in gauges.values() for m in ms}
    inside = inside[inside["metric"].isin(wanted)]
    for (c, i, m, label), g in inside.groupby(["component", "instance", "metric", "label"],
                                              observed=True, sort=True):
        if str(m) not in gauges.get(str(c), ()):
            continue
        name = f"{m}[{label}]" if str(label) else str(m)
        out.append((str(c), str(i), name, g.sort_values("time")))
    return out


def _latency_series(requests: pd.DataFrame, t0: float, t1: float
                    ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per workload: creation times and response times (unfinished: +inf) in the window."""
    req = requests[(requests["start"] >= t0) & (requests["start"] < t1)]
    out = []
    for name, g in req.groupby("workload", observed=True, sort=False):
        latency = g["latency"].to_numpy(dtype=np.float64)
        latency = np.where(np.isnan(latency), np.inf, latency)
        out.append((str(name), g["start"].to_numpy(dtype=np.float64), latency))
    return out


def steady_state(results: Results) -> pd.DataFrame:
    """Every check of :mod:`this module <simulator.analysis.stability>` on one run.

    Returns
    -------
    pandas.DataFrame
        One row per check and instance (``scope`` ``instance``) or workload (``scope``
        ``workload``, ``component`` the workload's name): ``check``, ``verdict`` (``steady``,
        ``saturated`` or ``unstable``), ``value`` (utilisation; growth over the window in the
        gauge's unit; median response time growth as a ratio; unfinished requests as a ratio
        of those created), ``p_value`` of the trend tests and ``evidence`` in words.
    """
    from simulator import registry

    t0, t1 = results.window
    samples = results.samples
    gauges = {name: registry.kind(c.kind).backlog
              for name, c in results.scenario.components.items()}
    rows = _utilisation(samples, t0, t1)
    series = _backlog_series(samples, gauges, t0, t1)
    latencies = [] if results.streaming else _latency_series(results.requests, t0, t1)
    tests = sum(_batches(len(g)) >= 3 for *_, g in series) + sum(
        1 for _, start, _ in latencies if _batches(len(start)) >= 3)
    alpha = FALSE_ALARM / max(tests, 1)
    for c, i, name, g in series:
        k = _batches(len(g))
        if k < 3:
            continue
        parts = np.array_split(np.arange(len(g)), k)
        t = g["time"].to_numpy(dtype=np.float64)
        v = g["value"].to_numpy(dtype=np.float64)
        means = np.array([v[p].mean() for p in parts])
        mids = np.array([t[p].mean() for p in parts])
        _, p = mann_kendall(means)
        growth = sen_slope(mids, means) * (t1 - t0)
        unstable = p < alpha and growth >= 1.0
        rows.append(_row(
            "instance", c, i, "backlog_trend", "unstable" if unstable else "steady", growth, p,
            f"{name} grew by {growth:.4g} over the window ({means[0]:.4g} -> {means[-1]:.4g} "
            f"in batch means), trend p = {p:.2g}"))
    for workload, start, latency in latencies:
        k = _batches(len(start))
        if k < 3:
            continue
        edges = np.linspace(t0, t1, k + 1)
        which = np.clip(np.searchsorted(edges, start, side="right") - 1, 0, k - 1)
        medians = np.array([np.median(latency[which == b]) if (which == b).any() else np.nan
                            for b in range(k)])
        medians = medians[~np.isnan(medians)]
        if len(medians) < 3:
            continue
        _, p = mann_kendall(np.nan_to_num(medians, posinf=np.finfo(float).max))
        ratio = _growth(medians[0], medians[-1])
        unstable = p < alpha and ratio >= LATENCY_GROWTH
        rows.append(_row(
            "workload", workload, workload, "latency_trend",
            "unstable" if unstable else "steady", ratio, p,
            f"median response time {_ms(medians[0])} in the first slice of the window, "
            f"{_ms(medians[-1])} in the last, trend p = {p:.2g}"))
    rows += _unfinished(results, t0, t1)
    return pd.DataFrame(rows, columns=COLUMNS)


def _growth(first: float, last: float) -> float:
    """``last / first``: 1 when equal (both unfinished included), inf from zero."""
    if first == last:
        return 1.0
    return float(last / first) if first > 0 else np.inf


def _ms(seconds: float) -> str:
    return "unfinished" if not np.isfinite(seconds) else f"{seconds * 1e3:.4g} ms"


def _unfinished(results: Results, t0: float, t1: float) -> list[dict[str, object]]:
    rows = []
    early = t1 - (t1 - t0) / BATCHES
    if results.streaming:  # only counts: every unfinished request of the window
        summary = results.summary()
        work = summary[summary["scope"] == "workload"]
        counted = [(str(n), int(c), int(f)) for n, c, f in
                   zip(work["name"], work["count"], work["in_flight"], strict=True)]
        what = "unfinished at the end of the run"
    else:
        req = results.requests
        req = req[(req["start"] >= t0) & (req["start"] < t1)]
        old = req[(req["start"] < early) & (req["status"].astype(str) == "in_flight")]
        per = old.groupby("workload", observed=False, sort=False).size()
        counted = [(str(w), int(n), int(per.get(w, 0)))
                   for w, n in req.groupby("workload", observed=False, sort=False).size().items()]
        what = f"created before {early:g}s and never finished"
    for workload, count, stuck in counted:
        if count == 0:
            continue
        unstable = stuck > max(10, UNFINISHED * count)
        rows.append(_row(
            "workload", workload, workload, "unfinished", "unstable" if unstable else "steady",
            stuck / count, np.nan, f"{stuck} of {count} requests ({stuck / count:.1%}) {what}"))
    return rows


def unstable_in(findings: pd.DataFrame | None, column: str) -> set[str]:
    """Values of ``column`` (a tag of many runs' findings: ``variant``, ``replication``) of
    the runs with at least one ``unstable`` check."""
    if findings is None or findings.empty:
        return set()
    return set(findings.loc[findings["verdict"] == "unstable", column].astype(str))


def verdict(findings: pd.DataFrame) -> str:
    """The run's verdict: the worst of its checks."""
    return worst(list(findings["verdict"].astype(str)))


def warnings(findings: pd.DataFrame, limit: int = 6) -> list[str]:
    """One line per part of the run that did not settle, worst first, naming the evidence.

    At most ``limit`` lines per verdict; the rest are counted.
    """
    lines: list[str] = []
    for level in ("unstable", "saturated"):
        bad = findings[findings["verdict"] == level]
        if bad.empty:
            continue
        named = np.where(bad["scope"] == "workload", "workload " + bad["instance"],
                         bad["instance"])
        by_instance = bad.assign(named=named).groupby("named", sort=False)["evidence"].agg(
            "; ".join)
        for instance, evidence in list(by_instance.items())[:limit]:
            lines.append(f"{level}: {instance}: {evidence}")
        if len(by_instance) > limit:
            lines.append(f"{level}: and {len(by_instance) - limit} more (see the findings "
                         "table)")
    return lines


def format_findings(findings: pd.DataFrame) -> str:
    """The checks that did not pass, for a terminal (all of them are in the written table)."""
    bad = findings[findings["verdict"] != "steady"]
    if bad.empty:
        return ""
    return bad[["instance", "check", "verdict", "evidence"]].to_string(index=False)
