"""Fitting a named distribution to measured samples: what ``simulator fit`` prints.

Each candidate is fitted by maximum likelihood with its location at zero (durations start at
0): exponential (mean), log-normal (``mu``, ``sigma`` of the log), gamma (``mean``, ``cv``),
Weibull (``shape``, ``scale``), normal (``mean``, ``sd``). Candidates are ranked by AIC (2k -
2 log L); the goodness of each fit is reported as the Kolmogorov-Smirnov distance D between
the samples and the fitted distribution, its p-value, and the data's and the fit's p50 and
p99. The p-value is optimistic, since the parameters were estimated from the same samples
(Lilliefors): read D and the quantiles, not the p-value alone. Every fit is written as the
distribution block of the scenario format, which validates as it is printed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: The distributions ``fit`` tries, in the order they are listed when AIC ties.
CANDIDATES = ("exponential", "lognormal", "gamma", "weibull", "normal")


@dataclass(frozen=True)
class Fit:
    """One fitted distribution.

    Attributes
    ----------
    dist
        Its name in the scenario format.
    block
        The distribution block (``{"dist": "lognormal", "mu": ..., "sigma": ...}``), seconds.
    aic
        Akaike's information criterion (lower is better).
    ks_distance, ks_pvalue
        Kolmogorov-Smirnov distance from the samples and its (optimistic) p-value.
    p50, p99
        The fitted distribution's median and 99th percentile, seconds.
    """

    dist: str
    block: dict[str, Any]
    aic: float
    ks_distance: float
    ks_pvalue: float
    p50: float
    p99: float


def _frozen(dist: str, x: np.ndarray) -> tuple[Any, dict[str, Any], int]:
    """The fitted scipy distribution, its scenario block and its number of parameters."""
    from scipy import stats

    if dist == "exponential":
        mean = float(x.mean())
        return stats.expon(scale=mean), {"dist": "exponential", "mean": mean}, 1
    if dist == "lognormal":
        logs = np.log(x)
        mu, sigma = float(logs.mean()), float(logs.std())
        return (stats.lognorm(sigma, scale=math.exp(mu)),
                {"dist": "lognormal", "mu": mu, "sigma": sigma}, 2)
    if dist == "gamma":
        shape, _, scale = stats.gamma.fit(x, floc=0)
        return (stats.gamma(shape, scale=scale),
                {"dist": "gamma", "mean": float(shape * scale), "cv": float(shape ** -0.5)}, 2)
    if dist == "weibull":
        shape, _, scale = stats.weibull_min.fit(x, floc=0)
        return (stats.weibull_min(shape, scale=scale),
                {"dist": "weibull", "shape": float(shape), "scale": float(scale)}, 2)
    if dist == "normal":
        mean, sd = float(x.mean()), float(x.std())
        return stats.norm(mean, sd), {"dist": "normal", "mean": mean, "sd": sd}, 2
    raise ValueError(f"unknown distribution {dist!r}; expected one of {', '.join(CANDIDATES)}")


def fit_one(samples: Sequence[float] | np.ndarray, dist: str) -> Fit:
    """Fit ``dist`` (one of :data:`CANDIDATES`) to ``samples`` (seconds, positive)."""
    from scipy import stats

    x = _checked(samples)
    frozen, block, k = _frozen(dist, x)
    loglik = float(np.sum(frozen.logpdf(x)))
    ks = stats.kstest(x, frozen.cdf)
    return Fit(dist, block, 2 * k - 2 * loglik if math.isfinite(loglik) else math.inf,
               float(ks.statistic), float(ks.pvalue), float(frozen.ppf(0.5)),
               float(frozen.ppf(0.99)))


def fit(samples: Sequence[float] | np.ndarray,
        candidates: Sequence[str] = CANDIDATES) -> list[Fit]:
    """Fit every candidate to ``samples`` (seconds); best (lowest AIC) first."""
    fits = [fit_one(samples, d) for d in candidates]
    return sorted(fits, key=lambda f: (f.aic, candidates.index(f.dist)))


def _checked(samples: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(samples, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 10:
        raise ValueError(f"{len(x)} samples: a fit needs at least 10")
    if not np.isfinite(x).all() or (x <= 0).any():
        raise ValueError("samples must be positive finite durations (a zero or negative "
                         "latency is a measurement error; drop those rows)")
    if np.ptp(x) == 0:
        raise ValueError(f"every sample is {x[0]:g}: use a constant, not a fitted distribution")
    return x


#: Units a samples file may be in, with their factor to seconds.
UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def read_samples(path: str | Path, column: str | None = None, unit: str = "s") -> np.ndarray:
    """Samples from a CSV or Parquet file (one column, or ``column``), in seconds.

    A CSV without a header (one number per line) is read as one unnamed column.
    """
    source = Path(path)
    if not source.is_file():
        raise ValueError(f"{source}: no such file")
    if source.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(source)
    else:
        frame = pd.read_csv(source)
        if len(frame.columns) == 1 and _is_number(str(frame.columns[0])):
            frame = pd.read_csv(source, header=None, names=["value"])
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    if column is None:
        if len(numeric) != 1:
            raise ValueError(f"{source}: {len(numeric)} numeric columns "
                             f"({', '.join(map(str, numeric)) or 'none'}); name one with "
                             "--column")
        column = str(numeric[0])
    elif column not in frame.columns:
        raise ValueError(f"{source}: no column {column!r} (columns: "
                         f"{', '.join(map(str, frame.columns))})")
    elif column not in numeric:
        raise ValueError(f"{source}: column {column!r} is not numeric")
    return frame[column].to_numpy(dtype=float) * UNITS[unit]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _round(block: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in block.items()}


def fit_report(samples: np.ndarray, key: str | None = None,
               candidates: Sequence[str] = CANDIDATES, source: str = "",
               fmt: Callable[[float], str] = lambda v: f"{v * 1e3:.3g}") -> str:
    """The text ``simulator fit`` prints: a table of the fits (best first) as YAML comments,
    then the best fit's block (under ``key`` if given), ready to paste into a scenario."""
    import yaml

    fits = fit(samples, candidates)
    x = _checked(samples)
    data50, data99 = (float(v) for v in np.quantile(x, [0.5, 0.99]))
    lines = [f"# {len(x):,} samples{f' from {source}' if source else ''}: p50 {fmt(data50)} ms, "
             f"p99 {fmt(data99)} ms, mean {fmt(float(x.mean()))} ms",
             "# fits by maximum likelihood, best (lowest AIC) first; KS D: largest gap between "
             "the CDFs",
             f"# {'dist':<12} {'AIC':>11} {'KS D':>7} {'KS p':>9} {'p50 ms':>8} {'p99 ms':>8}"]
    for f in fits:
        lines.append(f"# {f.dist:<12} {f.aic:>11.5g} {f.ks_distance:>7.4f} {f.ks_pvalue:>9.2g} "
                     f"{fmt(f.p50):>8} {fmt(f.p99):>8}")
    best = fits[0]
    lines.append("# (the KS p-value is optimistic: the parameters come from the same samples)")
    block = _round(best.block)
    lines.append(yaml.safe_dump({key: block} if key else block, default_flow_style=None
                                if key else True, sort_keys=False, width=100).rstrip())
    return "\n".join(lines) + "\n"


__all__ = ["CANDIDATES", "UNITS", "Fit", "fit", "fit_one", "fit_report", "read_samples"]
