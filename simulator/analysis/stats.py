"""Statistics across replications: Student-t intervals, paired differences, MSER-5 warm-up.

Every function here is pure: it reads numbers or tables and returns numbers or tables. A
replication contributes one value per metric (its mean latency, its p99, its error ratio...), and
intervals are taken across replications, whose values are independent and, by the central limit
theorem, close to normal when each run is long enough. Percentiles are treated like means: the
p99 of each replication is one observation.

Comparisons use common random numbers: replication ``r`` of every variant draws the same random
requests, so the per-replication differences vary much less than the values themselves and the
paired interval (:func:`paired_interval`) is narrower than the unpaired one
(:func:`welch_interval`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]

#: Summary metrics for which a larger value is better (every other metric: smaller is better).
HIGHER_IS_BETTER = frozenset({"throughput", "goodput", "completed", "count"})

#: Columns of :func:`interval_table` after the grouping columns.
INTERVAL_COLUMNS = ["metric", "n", "mean", "sd", "half_width", "low", "high",
                    "relative_half_width"]


@dataclass(frozen=True)
class Interval:
    """A two-sided Student-t confidence interval ``mean ± half_width``.

    Attributes
    ----------
    mean
        Sample mean of the (finite) values.
    half_width
        Half the width of the interval; NaN with fewer than two values, 0 when they are equal.
    n
        Number of values used.
    sd
        Sample standard deviation (``ddof=1``).
    confidence
        Confidence level, for example 0.95.
    """

    mean: float
    half_width: float
    n: int
    sd: float
    confidence: float

    @property
    def low(self) -> float:
        """Lower end of the interval."""
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        """Upper end of the interval."""
        return self.mean + self.half_width

    @property
    def relative_half_width(self) -> float:
        """``half_width / |mean|`` (infinite when the mean is 0 and the width is not)."""
        if self.half_width == 0:
            return 0.0
        return self.half_width / abs(self.mean) if self.mean != 0 else math.inf

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies inside the closed interval."""
        return bool(self.low <= value <= self.high)


def _finite(values: npt.ArrayLike) -> FloatArray:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def t_quantile(confidence: float, df: float, two_sided: bool = True) -> float:
    """Student-t critical value for ``confidence`` with ``df`` degrees of freedom.

    Parameters
    ----------
    confidence
        Confidence level in ``(0, 1)``.
    df
        Degrees of freedom, ``> 0``.
    two_sided
        The ``1 - (1 - confidence) / 2`` quantile if true, else the ``confidence`` quantile.
    """
    _check_confidence(confidence)
    from scipy.special import stdtrit  # scipy.special loads far faster than scipy.stats

    p = 1.0 - (1.0 - confidence) / 2.0 if two_sided else confidence
    return float(stdtrit(df, p))


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def t_interval(values: npt.ArrayLike, confidence: float = 0.95) -> Interval:
    """Student-t interval for the mean of independent, roughly normal values.

    Non-finite values (a p99 of a replication with no successful request) are left out and ``n``
    says how many were used.

    Parameters
    ----------
    values
        One value per replication.
    confidence
        Confidence level.

    Returns
    -------
    Interval
        ``mean ± t_{n-1} sd / sqrt(n)``; NaN mean and width with no value, NaN width with one.
    """
    _check_confidence(confidence)
    v = _finite(values)
    n = len(v)
    if n == 0:
        return Interval(math.nan, math.nan, 0, math.nan, confidence)
    mean = float(v.mean())
    if n == 1:
        return Interval(mean, math.nan, 1, math.nan, confidence)
    sd = float(v.std(ddof=1))
    return Interval(mean, t_quantile(confidence, n - 1) * sd / math.sqrt(n), n, sd, confidence)


def upper_bound(values: npt.ArrayLike, confidence: float = 0.95) -> float:
    """One-sided upper confidence bound of the mean: ``mean + t_{n-1}(c) sd / sqrt(n)``.

    The true mean is below it with probability ``confidence``. NaN with fewer than two values.
    """
    _check_confidence(confidence)
    v = _finite(values)
    if len(v) < 2:
        return math.nan
    return float(v.mean() + t_quantile(confidence, len(v) - 1, two_sided=False)
                 * v.std(ddof=1) / math.sqrt(len(v)))


def lower_bound(values: npt.ArrayLike, confidence: float = 0.95) -> float:
    """One-sided lower confidence bound of the mean (see :func:`upper_bound`)."""
    v = _finite(values)
    return -upper_bound(-v, confidence) if len(v) >= 2 else math.nan


def paired_interval(a: npt.ArrayLike, b: npt.ArrayLike, confidence: float = 0.95) -> Interval:
    """Interval for the mean of ``a - b``, pairing ``a[i]`` with ``b[i]``.

    Use it when ``a[i]`` and ``b[i]`` come from the same replication (common random numbers).
    Pairs where either value is not finite are left out.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired samples must have the same length, got {len(x)} and {len(y)}")
    ok = np.isfinite(x) & np.isfinite(y)
    return t_interval(x[ok] - y[ok], confidence)


def welch_interval(a: npt.ArrayLike, b: npt.ArrayLike, confidence: float = 0.95) -> Interval:
    """Unpaired (Welch) interval for ``mean(a) - mean(b)`` of two independent samples.

    ``sd`` of the result is the standard error of the difference times ``sqrt(n)`` with ``n =
    min(len(a), len(b))``, so that the attribute keeps the meaning "spread of one observation";
    the half width uses the Welch-Satterthwaite degrees of freedom.
    """
    _check_confidence(confidence)
    x, y = _finite(a), _finite(b)
    n = min(len(x), len(y))
    if n < 2:
        mean = float(x.mean() - y.mean()) if n else math.nan
        return Interval(mean, math.nan, n, math.nan, confidence)
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    mean = float(x.mean() - y.mean())
    if se == 0:
        return Interval(mean, 0.0, n, 0.0, confidence)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    return Interval(mean, t_quantile(confidence, df) * se, n, se * math.sqrt(n), confidence)


def replications_needed(interval: Interval, target: float) -> int:
    """Replications expected to bring the relative half width down to ``target``.

    Uses ``n * (rhw / target) ** 2`` (the half width shrinks as ``1 / sqrt(n)``), at least
    ``interval.n``. Infinite-width intervals (fewer than two values) ask for one more.
    """
    if target <= 0:
        raise ValueError(f"target relative half width must be > 0, got {target!r}")
    rhw = interval.relative_half_width
    if math.isnan(rhw) or math.isinf(rhw):
        return interval.n + 1
    return max(interval.n, math.ceil(interval.n * (rhw / target) ** 2))


# --------------------------------------------------------------------------------------------
# MSER-5


def mser_statistic(batch_means: npt.ArrayLike) -> FloatArray:
    """MSER statistic for every truncation point ``d = 0 .. k-1`` of ``k`` batch means.

    ``MSER(d) = sum_{j >= d} (Z_j - mean(Z_d..))^2 / (k - d)^2`` (White, 1997): the squared
    standard error of the mean of what is left after deleting the first ``d`` batches.
    """
    z = np.asarray(batch_means, dtype=np.float64)
    k = len(z)
    if k == 0:
        return np.empty(0)
    s1 = np.cumsum(z[::-1])[::-1]  # sum of z[d:]
    s2 = np.cumsum((z * z)[::-1])[::-1]
    m = k - np.arange(k, dtype=np.float64)  # k - d
    ss = np.maximum(s2 - s1 * s1 / m, 0.0)
    return ss / (m * m)


def mser_truncation(values: npt.ArrayLike, batch_size: int = 5) -> int:
    """Number of leading observations to delete as warm-up, by MSER-``batch_size`` (MSER-5).

    The series is cut into batches of ``batch_size`` consecutive observations (a last, partial
    batch is dropped), and the truncation point ``d`` that minimises :func:`mser_statistic`
    over the first half of the batches is chosen (a minimum in the second half means the run is
    too short to tell, and the search is limited to the first half as is customary).

    Parameters
    ----------
    values
        Observations in time order (for example the latency of each request by arrival).
    batch_size
        Observations per batch; 5 is MSER-5.

    Returns
    -------
    int
        ``d * batch_size``: how many observations to delete (0 when there are too few).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    v = np.asarray(values, dtype=np.float64).ravel()
    k = len(v) // batch_size
    if k < 4:
        return 0
    z = v[: k * batch_size].reshape(k, batch_size).mean(axis=1)
    stat = mser_statistic(z)[: k // 2 + 1]
    return int(np.argmin(stat)) * batch_size


def mser_warmup(times: npt.ArrayLike, values: npt.ArrayLike, batch_size: int = 5) -> float:
    """Warm-up length (a time) chosen by MSER on an observation series.

    Parameters
    ----------
    times
        Time of each observation (a request's start), non-decreasing.
    values
        The observations (a request's latency), same length.
    batch_size
        Observations per batch (5: MSER-5).

    Returns
    -------
    float
        0 when nothing is deleted, else the time of the first kept observation, so that the
        window ``[warmup, ...)`` keeps exactly the observations MSER keeps.
    """
    t = np.asarray(times, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    if t.shape != v.shape:
        raise ValueError("times and values must have the same length")
    ok = np.isfinite(v) & np.isfinite(t)
    t, v = t[ok], v[ok]
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    d = mser_truncation(v, batch_size)
    return float(t[d]) if d > 0 else 0.0


# --------------------------------------------------------------------------------------------
# tables


def interval_table(
    runs: pd.DataFrame,
    by: Sequence[str],
    metrics: Sequence[str],
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Student-t interval of each metric across the replications of each group.

    Parameters
    ----------
    runs
        One row per replication (and per group), with the metrics as columns.
    by
        Grouping columns (a variant, swept parameters, ``scope``, ``name``...); groups keep the
        order of their first appearance.
    metrics
        Metric columns.
    confidence
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per group and metric: ``*by``, ``metric``, ``n``, ``mean``, ``sd``,
        ``half_width``, ``low``, ``high``, ``relative_half_width``.
    """
    rows = []
    groups = runs.groupby(list(by), sort=False, observed=True, dropna=False) if by else [
        ((), runs)]
    for key, grp in groups:
        key = key if isinstance(key, tuple) else (key,)
        for metric in metrics:
            iv = t_interval(grp[metric].to_numpy(dtype=np.float64), confidence)
            rows.append((*key, metric, iv.n, iv.mean, iv.sd, iv.half_width, iv.low, iv.high,
                         iv.relative_half_width))
    return pd.DataFrame(rows, columns=[*by, *INTERVAL_COLUMNS])


def paired_table(
    runs: pd.DataFrame,
    variant: str,
    baseline: str,
    metrics: Sequence[str],
    pair_on: Sequence[str] = ("seed", "replication"),
    by: Sequence[str] = (),
    confidence: float = 0.95,
    unstable: Collection[str] = (),
) -> pd.DataFrame:
    """Each variant's interval and its paired difference from ``baseline``, ranked per metric.

    Parameters
    ----------
    runs
        One row per (variant, replication[, group]) with the metrics as columns.
    variant
        Column naming the variant.
    baseline
        The variant the others are compared with.
    metrics
        Metric columns. Smaller is better except for :data:`HIGHER_IS_BETTER`.
    pair_on
        Columns that identify a replication: rows with equal values are paired.
    by
        Further grouping columns (``scope``, ``name``): a comparison per group.
    confidence
        Confidence level of every interval.
    unstable
        Variants that did not reach a steady state in some replication: they keep their
        intervals but get no rank (``<NA>``, listed last) and no significance claim, and when
        the baseline is one of them no difference is significant.

    Returns
    -------
    pandas.DataFrame
        One row per (group, metric, variant), best first within each (group, metric):
        ``*by``, ``metric``, ``rank`` (1 = best mean; ``<NA>`` when unstable), ``variant``,
        ``steady``, ``n``, ``mean``, ``low``, ``high``, ``diff`` (mean of variant - baseline
        over paired replications), ``diff_low``, ``diff_high``, ``significant`` (the
        difference interval excludes 0, both runs steady).
    """
    if baseline not in {str(v) for v in runs[variant]}:
        raise ValueError(f"baseline {baseline!r} is not one of the variants "
                         f"({', '.join(map(str, pd.unique(runs[variant])))})")
    order = [str(v) for v in pd.unique(runs[variant])]
    columns = [*by, "metric", "rank", variant, "steady", "n", "mean", "low", "high", "diff",
               "diff_low", "diff_high", "significant"]
    shaky = {str(v) for v in unstable}
    rows: list[dict[str, object]] = []
    groups = runs.groupby(list(by), sort=False, observed=True) if by else [((), runs)]
    for key, grp in groups:
        key = key if isinstance(key, tuple) else (key,)
        wide: dict[str, pd.DataFrame] = {
            str(v): g.set_index(list(pair_on)) for v, g in grp.groupby(variant, sort=False)}
        base = wide.get(baseline)
        for metric in metrics:
            block: list[dict[str, object]] = []
            for v in order:
                if v not in wide:
                    continue
                iv = t_interval(wide[v][metric].to_numpy(dtype=np.float64), confidence)
                if base is None:
                    d = Interval(math.nan, math.nan, 0, math.nan, confidence)
                else:
                    joined = wide[v][[metric]].join(
                        base[[metric]].rename(columns={metric: "_base"}), how="inner")
                    d = paired_interval(joined[metric], joined["_base"], confidence)
                steady = v not in shaky
                block.append({
                    **dict(zip(by, key, strict=True)), "metric": metric, "rank": pd.NA,
                    variant: v, "steady": steady, "n": iv.n, "mean": iv.mean, "low": iv.low,
                    "high": iv.high, "diff": d.mean, "diff_low": d.low, "diff_high": d.high,
                    "significant": bool(steady and baseline not in shaky and d.n > 1
                                        and (d.low > 0 or d.high < 0)),
                })
            sign = -1.0 if metric in HIGHER_IS_BETTER else 1.0
            means = sign * np.array([r["mean"] if r["steady"] else np.nan for r in block],
                                    dtype=np.float64)
            means[~np.array([r["steady"] for r in block], dtype=bool)] = np.inf
            ranked = np.argsort(np.where(np.isnan(means), np.nextafter(np.inf, 0), means),
                                kind="stable")
            rank = 1
            for i in ranked:
                if block[i]["steady"]:
                    block[i]["rank"] = rank
                    rank += 1
                rows.append(block[i])
    out = pd.DataFrame(rows, columns=columns)
    out["rank"] = out["rank"].astype("Int64")
    return out
