"""Log-bucketed latency histograms with a stated relative error, mergeable by adding counts.

The buckets are those of DDSketch (Masson, Rim and Lee, "DDSketch: a fast and fully-mergeable
quantile sketch with relative-error guarantees", VLDB 2019): with ``gamma = (1 + a) / (1 - a)``
bucket ``i`` holds the values in ``(gamma^(i-1), gamma^i]`` and reports them as
``2 gamma^i / (gamma + 1)``, which is within relative error ``a`` of every value in the bucket.

Quantiles follow :func:`numpy.quantile`'s default (linear interpolation between the order
statistics at ranks ``floor(q (n-1))`` and ``ceil(q (n-1))``), with each order statistic replaced
by its bucket's representative. Each representative is within ``a`` of its order statistic, so
the interpolated value is within relative error ``a`` of the exact (linearly interpolated)
quantile: ``|estimate - exact| <= a * exact``. Values at or below :data:`MIN_VALUE` (zero
latencies) are counted in a zero bucket reported as 0 (exact).

Histograms with the same ``relative_error`` merge exactly: a bucket's count in the merge is the
sum of its counts, so the percentiles of many replications (or of runs split in pieces) keep the
same guarantee. Memory is one dictionary entry per non-empty bucket: about
``log(max / min) / log(gamma)`` buckets (about 1 150 for latencies from 1 µs to 100 s at 1%),
whatever the number of values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

#: Values at or below this (seconds) count as zero.
MIN_VALUE = 1e-12
#: Bucket index of the zero bucket.
ZERO_BUCKET = -(2**31)
#: Default relative error of the reported quantiles.
DEFAULT_RELATIVE_ERROR = 0.01


def gamma_of(relative_error: float) -> float:
    """Bucket growth factor ``(1 + a) / (1 - a)`` for relative error ``a``."""
    if not 0 < relative_error < 1:
        raise ValueError(f"relative_error must be in (0, 1), got {relative_error}")
    return (1 + relative_error) / (1 - relative_error)


def bucket_of(value: float, inv_log_gamma: float) -> int:
    """Index of the bucket holding ``value`` (``ZERO_BUCKET`` at or below :data:`MIN_VALUE`)."""
    if value <= MIN_VALUE:
        return ZERO_BUCKET
    return math.ceil(math.log(value) * inv_log_gamma)


def representatives(buckets: np.ndarray, relative_error: float) -> np.ndarray:
    """The value each bucket reports: ``2 gamma^i / (gamma + 1)``; 0 for the zero bucket."""
    gamma = gamma_of(relative_error)
    b = np.asarray(buckets, dtype=np.int64)
    out = 2.0 * np.exp(np.where(b == ZERO_BUCKET, 0, b) * math.log(gamma)) / (gamma + 1.0)
    return np.where(b == ZERO_BUCKET, 0.0, out)


def bucket_bounds(buckets: np.ndarray, relative_error: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower (exclusive) and upper (inclusive) bound of each bucket, seconds."""
    log_gamma = math.log(gamma_of(relative_error))
    b = np.asarray(buckets, dtype=np.int64)
    zero = b == ZERO_BUCKET
    safe = np.where(zero, 0, b)
    lower = np.where(zero, 0.0, np.exp((safe - 1) * log_gamma))
    upper = np.where(zero, MIN_VALUE, np.exp(safe * log_gamma))
    return lower, upper


class LatencyHistogram:
    """Counts of values per log bucket; exact count, sum, minimum and maximum.

    Parameters
    ----------
    relative_error
        Relative error ``a`` of the quantiles (0.01: within 1% of the exact ones).
    """

    __slots__ = ("counts", "inv_log_gamma", "relative_error")

    def __init__(self, relative_error: float = DEFAULT_RELATIVE_ERROR) -> None:
        self.relative_error = relative_error
        self.inv_log_gamma = 1.0 / math.log(gamma_of(relative_error))
        self.counts: dict[int, int] = {}

    def add(self, value: float) -> None:
        """Count one value (seconds)."""
        i = (math.ceil(math.log(value) * self.inv_log_gamma) if value > MIN_VALUE
             else ZERO_BUCKET)
        counts = self.counts
        counts[i] = counts.get(i, 0) + 1

    def extend(self, values: Iterable[float]) -> None:
        """Count many values."""
        for v in values:
            self.add(v)

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """Add ``other``'s counts to this histogram (same relative error); return self."""
        if other.relative_error != self.relative_error:
            raise ValueError("histograms with different relative errors do not merge")
        counts = self.counts
        for i, c in other.counts.items():
            counts[i] = counts.get(i, 0) + c
        return self

    @property
    def count(self) -> int:
        """Values counted."""
        return sum(self.counts.values())

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(bucket indices in increasing order, their counts)."""
        if not self.counts:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        b = np.fromiter(self.counts.keys(), dtype=np.int64, count=len(self.counts))
        c = np.fromiter(self.counts.values(), dtype=np.int64, count=len(self.counts))
        order = np.argsort(b)
        return b[order], c[order]

    def quantiles(self, qs: Sequence[float]) -> np.ndarray:
        """Quantiles ``qs`` (in [0, 1]), within the relative error of the exact ones."""
        buckets, counts = self.arrays()
        return quantiles_of(buckets, counts, qs, self.relative_error)


def quantiles_of(buckets: np.ndarray, counts: np.ndarray, qs: Sequence[float],
                 relative_error: float) -> np.ndarray:
    """Quantiles of a histogram given as (bucket, count) pairs (buckets in any order, repeated
    buckets added: the pairs of several histograms can be passed together to merge them)."""
    qs_arr = np.asarray(qs, dtype=float)
    buckets = np.asarray(buckets, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    if len(buckets) == 0 or counts.sum() == 0:
        return np.full(qs_arr.shape, np.nan)
    uniq, inverse = np.unique(buckets, return_inverse=True)
    merged = np.bincount(inverse, weights=counts, minlength=len(uniq)).astype(np.int64)
    keep = merged > 0
    uniq, merged = uniq[keep], merged[keep]
    reps = representatives(uniq, relative_error)
    cum = np.cumsum(merged)  # order statistic k (0-based) is in the first bucket with cum > k
    n = int(cum[-1])
    rank = qs_arr * (n - 1)
    lo = np.floor(rank).astype(np.int64)
    hi = np.ceil(rank).astype(np.int64)
    v_lo = reps[np.searchsorted(cum, lo, side="right")]
    v_hi = reps[np.searchsorted(cum, hi, side="right")]
    return v_lo + (rank - lo) * (v_hi - v_lo)
