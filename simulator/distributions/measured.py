"""Distributions given by measurements: observed values (``empirical``) and a histogram of
bucket counts (``histogram``, as Prometheus exports one)."""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.distributions.base import Duration, _Dist, weights_problem

if TYPE_CHECKING:
    import numpy as np


class Empirical(_Dist):
    """Resamples a list of observed values (with optional weights), as from a trace."""

    dist: Literal["empirical"] = "empirical"
    values: list[Duration] = Field(min_length=1)
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if any(v < 0 for v in self.values):
            raise ValueError("values must be >= 0")
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError("weights must have as many entries as values")
            if (problem := weights_problem(self.weights, "weights")) is not None:
                raise ValueError(problem)
        return self

    def _mean_is_cheap(self) -> bool:
        return False

    def _overflow(self) -> str | None:
        # the mean in plain floats (the weights' sum is finite: checked before)
        weights = self.weights or [1.0] * len(self.values)
        total = sum(weights)
        mean = sum(v * (w / total) for v, w in zip(self.values, weights, strict=True))
        if math.isfinite(mean + self.shift):
            return None
        return "values overflow: their mean is past the largest float (1.8e308 s)"

    def _probs(self) -> np.ndarray | None:
        import numpy as np

        if self.weights is None:
            return None
        w = np.asarray(self.weights, dtype=float)
        return w / w.sum()

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        import numpy as np

        return rng.choice(np.asarray(self.values, dtype=float), size=n, p=self._probs())

    def _mean(self) -> float:
        import numpy as np

        p = self._probs()
        v = np.asarray(self.values, dtype=float)
        return float(v.mean() if p is None else (v * p).sum())


class HistogramBucket(BaseModel):
    """One bucket of a histogram: its upper bound ``le`` and a count of observations."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    le: Duration = Field(gt=0, description="Upper bound of the bucket (inclusive), seconds.")
    count: float = Field(ge=0, description="Observations: at most le (cumulative) or in this "
                         "bucket only (cumulative: false).")


def _drop_inf_bucket(data: Any) -> Any:
    """Accept Prometheus's last bucket ``le: +Inf`` when it adds no observation: the
    distribution has no upper bound to spread such observations over."""
    if not isinstance(data, dict) or not isinstance(data.get("buckets"), list):
        return data
    buckets = list(data["buckets"])
    if buckets and isinstance(last := buckets[-1], dict) and str(last.get("le")).lower() in (
            "+inf", "inf"):
        cumulative = data.get("cumulative", True)
        previous = buckets[-2].get("count") if len(buckets) > 1 and isinstance(
            buckets[-2], dict) else 0
        extra = last.get("count", 0) - (previous if cumulative else 0)
        if isinstance(extra, int | float) and extra != 0:
            raise ValueError(
                f"the +Inf bucket holds {extra:g} observations above the last finite bound: "
                "a histogram gives them no upper bound to be drawn from; add a finite bucket "
                "that holds them (the largest value observed)")
        data = {**data, "buckets": buckets[:-1]}
    return data


class Histogram(_Dist):
    """Draws from a histogram of bucket counts, as Prometheus exports a latency histogram.

    ``buckets`` are ``{le, count}`` pairs in increasing ``le`` (seconds or a duration). With
    ``cumulative: true`` (Prometheus's ``_bucket`` series) each count is the number of
    observations at most ``le``; with ``false``, the number in that bucket only. A draw picks a
    bucket with probability proportional to its observations and a value uniformly within it,
    from the previous bound (``min`` for the first bucket, default 0) to its ``le``: the linear
    interpolation Prometheus's ``histogram_quantile`` assumes, so the distribution's
    quantiles are the ones ``histogram_quantile`` computes from the same counts. A trailing
    ``le: +Inf`` bucket is accepted when it adds no observation.
    """

    dist: Literal["histogram"] = "histogram"
    buckets: list[HistogramBucket] = Field(min_length=1)
    cumulative: bool = True
    min: Duration = Field(0.0, ge=0, description="Lower bound of the first bucket, seconds.")

    @model_validator(mode="before")
    @classmethod
    def _inf(cls, data: Any) -> Any:
        return _drop_inf_bucket(data)

    @model_validator(mode="after")
    def _check(self) -> Self:
        bounds = [self.min, *(b.le for b in self.buckets)]
        if any(hi <= lo for lo, hi in itertools.pairwise(bounds)):
            raise ValueError("bucket bounds (le) must increase, and the first be above min")
        counts = [b.count for b in self.buckets]
        if self.cumulative and any(b < a for a, b in itertools.pairwise(counts)):
            raise ValueError("cumulative counts must not decrease (give cumulative: false for "
                             "per-bucket counts)")
        if (problem := weights_problem(self.bucket_counts(), "bucket counts")) is not None:
            raise ValueError(problem)
        return self

    def bucket_counts(self) -> list[float]:
        """Observations in each bucket (not cumulative)."""
        counts = [b.count for b in self.buckets]
        if not self.cumulative:
            return counts
        return [c - p for p, c in zip([0.0, *counts[:-1]], counts, strict=True)]

    def _edges(self) -> tuple[list[float], list[float]]:
        lows = [self.min, *(b.le for b in self.buckets[:-1])]
        return lows, [b.le for b in self.buckets]

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        import numpy as np

        counts = np.asarray(self.bucket_counts(), dtype=float)
        lows, highs = (np.asarray(e, dtype=float) for e in self._edges())
        which = rng.choice(len(counts), size=n, p=counts / counts.sum())
        return lows[which] + rng.random(n) * (highs[which] - lows[which])

    def _mean(self) -> float:
        counts = self.bucket_counts()
        lows, highs = self._edges()
        total = sum(counts)
        return sum(c * (lo + hi) / 2 for c, lo, hi in zip(counts, lows, highs, strict=True)
                   ) / total

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0 < q < 1) as ``histogram_quantile`` computes it: linear
        interpolation within the bucket where the cumulative fraction reaches ``q``."""
        counts = self.bucket_counts()
        lows, highs = self._edges()
        rank, seen = q * sum(counts), 0.0
        for c, lo, hi in zip(counts, lows, highs, strict=True):
            if c > 0 and seen + c >= rank:
                return lo + (hi - lo) * (rank - seen) / c
            seen += c
        return highs[-1]
