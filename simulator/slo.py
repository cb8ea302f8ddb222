"""Service-level objectives: ``"p99 < 200ms and error_ratio < 0.1%"`` read into conditions.

A scenario may state its SLO (``slo:``); ``simulator capacity`` searches against it (or an
``--slo`` given on the command line), ``simulator run`` says whether the run met it, and the
dashboard draws its thresholds. Reading the text needs no numpy or pandas: it is validated
with the scenario.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from simulator.errors import Problem
from simulator.units import parse_duration, parse_rate

LATENCY_METRICS = ("mean", "p50", "p95", "p99", "p999")
RATIO_METRICS = ("error_ratio", "rejection_ratio", "timeout_ratio", "utilisation")
RATE_METRICS = ("throughput", "goodput")
COUNT_METRICS = ("count", "completed", "in_flight")
ALIASES = {
    "errors": "error_ratio", "error_rate": "error_ratio", "error": "error_ratio",
    "rejections": "rejection_ratio", "rejected": "rejection_ratio",
    "timeouts": "timeout_ratio", "latency": "mean", "mean_latency": "mean",
}
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*(\S.*?)\s*$")
_OPS = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}


@dataclass(frozen=True)
class Objective:
    """One condition of an SLO: ``metric op threshold`` (threshold in seconds, a fraction, per
    second, or a count: the summary's units)."""

    metric: str
    op: Literal["<", "<=", ">", ">="]
    threshold: float
    text: str

    @property
    def upper(self) -> bool:
        """Whether the metric must stay below the threshold."""
        return self.op in ("<", "<=")

    def met_by(self, value: float) -> bool:
        """Whether one value (a run's summary figure) meets the condition; a missing value
        (NaN: a p99 with no successful request) does not."""
        return value == value and bool(_OPS[self.op](float(value), self.threshold))


def read_slo(text: str) -> tuple[list[Objective], list[Problem]]:
    """Read ``"p99 < 200ms and errors < 0.1%"`` into objectives, and the problems found.

    Conditions are joined by ``and``, ``,`` or ``;``. Metrics are summary columns (``mean``,
    ``p50``, ``p95``, ``p99``, ``p999``, ``error_ratio``, ``rejection_ratio``,
    ``timeout_ratio``, ``throughput``, ``goodput``, ``utilisation``...; ``errors`` means
    ``error_ratio``). Latencies take time units (a bare number is seconds), ratios a ``%`` or a
    fraction, rates ``/s`` units.
    """
    objectives: list[Objective] = []
    problems: list[Problem] = []
    parts = [p for p in re.split(r"\s+and\s+|,|;|&&", text.strip()) if p.strip()]
    if not parts:
        problems.append(Problem("empty SLO; expected for example 'p99 < 200ms and errors < 0.1%'"))
    for part in parts:
        m = _CONDITION.match(part)
        if not m:
            problems.append(Problem(f"cannot read {part.strip()!r}: expected 'metric < value' "
                                    "such as 'p99 < 200ms'"))
            continue
        raw_metric, op, raw_value = m.groups()
        metric = ALIASES.get(raw_metric, raw_metric)
        known = (*LATENCY_METRICS, *RATIO_METRICS, *RATE_METRICS, *COUNT_METRICS)
        if metric not in known:
            problems.append(Problem(f"unknown metric {raw_metric!r} in {part.strip()!r}; "
                                    f"expected one of {', '.join(known)} (or errors)"))
            continue
        try:
            value = _threshold(metric, raw_value)
        except ValueError as exc:
            problems.append(Problem(f"bad value in {part.strip()!r}: {exc}"))
            continue
        if value != value or value in (float("inf"), float("-inf")):
            problems.append(Problem(f"bad value in {part.strip()!r}: not a finite number"))
            continue
        objectives.append(Objective(metric, op, value, part.strip()))  # type: ignore[arg-type]
    return objectives, problems


def _threshold(metric: str, raw: str) -> float:
    raw = raw.strip()
    if raw.endswith("%"):
        if metric not in RATIO_METRICS:
            raise ValueError(f"a percentage fits a ratio, not {metric}")
        return float(raw[:-1]) / 100.0
    if metric in LATENCY_METRICS:
        return parse_duration(raw)
    if metric in RATE_METRICS:
        return parse_rate(raw)
    return float(raw)


__all__ = [
    "ALIASES",
    "COUNT_METRICS",
    "LATENCY_METRICS",
    "RATE_METRICS",
    "RATIO_METRICS",
    "Objective",
    "read_slo",
]
