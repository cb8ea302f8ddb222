"""Distributions given by parameters: constant, exponential, uniform, normal, log-normal,
gamma, Pareto and Weibull."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from simulator.distributions.base import LOG_MAX, MAX_CV, Z99, Duration, _Dist

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np


class Constant(_Dist):
    """Always the same value."""

    dist: Literal["constant"] = "constant"
    value: Duration = Field(ge=0)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        import numpy as np

        return np.full(n, self.value)

    def _mean(self) -> float:
        return self.value

    def sampler(self, rng: np.random.Generator) -> Callable[[], float]:
        v = self.value + self.shift
        return lambda: v


class Exponential(_Dist):
    """Exponential with the given mean (memoryless; cv = 1)."""

    dist: Literal["exponential"] = "exponential"
    mean_: Duration = Field(alias="mean", gt=0)

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              populate_by_name=True)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean_, n)

    def _mean(self) -> float:
        return self.mean_


class Uniform(_Dist):
    """Uniform on [low, high)."""

    dist: Literal["uniform"] = "uniform"
    low: Duration = Field(ge=0)
    high: Duration

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.high <= self.low:
            raise ValueError("high must be greater than low")
        return self

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)

    def _mean(self) -> float:
        return (self.low + self.high) / 2


class Normal(_Dist):
    """Normal with mean and standard deviation; negative draws are clipped to zero."""

    dist: Literal["normal"] = "normal"
    mean_: Duration = Field(alias="mean", ge=0)
    sd: Duration = Field(ge=0)

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              populate_by_name=True)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        import numpy as np

        return np.maximum(rng.normal(self.mean_, self.sd, n), 0.0)

    def _mean(self) -> float:
        if self.sd == 0:
            return self.mean_
        z = self.mean_ / self.sd  # mean of max(X, 0) for X ~ N(m, s)
        phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        cdf = 0.5 * (1 + math.erf(z / math.sqrt(2)))
        return self.mean_ * cdf + self.sd * phi


class LogNormal(_Dist):
    """Log-normal, given by ``mean`` and ``cv``, by ``p50`` and ``p99``, or by ``mu``/``sigma``.

    ``mu`` and ``sigma`` are the mean and standard deviation of the logarithm of the value in
    seconds.
    """

    dist: Literal["lognormal"] = "lognormal"
    mean_: Duration | None = Field(None, alias="mean", gt=0)
    cv: float | None = Field(None, gt=0)
    p50: Duration | None = Field(None, gt=0)
    p99: Duration | None = Field(None, gt=0)
    mu: float | None = None
    sigma: float | None = Field(None, gt=0)

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              populate_by_name=True)

    @model_validator(mode="after")
    def _check(self) -> Self:
        given = {k for k in ("mean_", "cv", "p50", "p99", "mu", "sigma") if getattr(self, k)
                 is not None}
        pairs = [{"mean_", "cv"}, {"p50", "p99"}, {"mu", "sigma"}]
        if given not in pairs:
            raise ValueError("give exactly one of: mean and cv, p50 and p99, or mu and sigma")
        if self.p50 is not None and self.p99 is not None and self.p99 <= self.p50:
            raise ValueError("p99 must be greater than p50")
        return self

    def _overflow(self) -> str | None:
        # the mean is exp(mu + sigma²/2): past the largest float when that exponent is
        if self.cv is not None and self.cv > MAX_CV:
            return (f"cv {self.cv:g} overflows: sigma² = log(1 + cv²) needs cv² below the "
                    f"largest float (cv at most {MAX_CV:.3g})")
        mu, sigma = self.log_params
        if mu + sigma**2 / 2 <= LOG_MAX:
            return None
        if self.p50 is not None and self.p99 is not None:
            return (f"p99 ({self.p99:g}s) is too far above p50 ({self.p50:g}s): sigma = "
                    f"{sigma:.4g} makes the mean exp(mu + sigma²/2) past the largest float "
                    "(1.8e308 s)")
        return (f"mu ({mu:g}) and sigma ({sigma:g}) make the mean exp(mu + sigma²/2) past the "
                "largest float (1.8e308 s)")

    @property
    def log_params(self) -> tuple[float, float]:
        """Return (mu, sigma) of the underlying normal."""
        if self.mean_ is not None and self.cv is not None:
            s2 = math.log1p(self.cv**2)
            return math.log(self.mean_) - s2 / 2, math.sqrt(s2)
        if self.p50 is not None and self.p99 is not None:
            return math.log(self.p50), (math.log(self.p99) - math.log(self.p50)) / Z99
        assert self.mu is not None and self.sigma is not None
        return self.mu, self.sigma

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        mu, sigma = self.log_params
        return rng.lognormal(mu, sigma, n)

    def _mean(self) -> float:
        mu, sigma = self.log_params
        return math.exp(mu + sigma**2 / 2)


class Gamma(_Dist):
    """Gamma given by ``mean`` and ``cv`` (shape = 1/cv², scale = mean·cv²)."""

    dist: Literal["gamma"] = "gamma"
    mean_: Duration = Field(alias="mean", gt=0)
    cv: float = Field(gt=0)

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              populate_by_name=True)

    def _overflow(self) -> str | None:
        # shape 1/cv² and scale mean·cv² must both be positive finite numbers
        cv2 = self.cv**2 if self.cv <= MAX_CV else math.inf
        if not (0 < cv2 < math.inf and math.isfinite(1 / cv2)
                and 0 < self.mean_ * cv2 < math.inf):
            return (f"cv {self.cv:g} is out of range: the gamma's shape 1/cv² and scale "
                    "mean·cv² must be positive numbers below the largest float")
        return None

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        shape = 1 / self.cv**2
        return rng.gamma(shape, self.mean_ / shape, n)

    def _mean(self) -> float:
        return self.mean_


class Pareto(_Dist):
    """Pareto (type I), tail index ``alpha``, minimum ``scale``: P(X > x) = (scale/x)^alpha."""

    dist: Literal["pareto"] = "pareto"
    alpha: float = Field(gt=0)
    scale: Duration = Field(gt=0)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return (rng.pareto(self.alpha, n) + 1.0) * self.scale

    def _mean(self) -> float:
        return math.inf if self.alpha <= 1 else self.alpha * self.scale / (self.alpha - 1)

    def _infinite_mean(self) -> bool:
        return self.alpha <= 1  # the tail is too heavy for a mean


class Weibull(_Dist):
    """Weibull with ``shape`` k and ``scale`` λ: P(X > x) = exp(-(x/λ)^k)."""

    dist: Literal["weibull"] = "weibull"
    shape: float = Field(gt=0)
    scale: Duration = Field(gt=0)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.weibull(self.shape, n) * self.scale

    def _mean(self) -> float:
        return self.scale * math.gamma(1 + 1 / self.shape)

    def _overflow(self) -> str | None:
        try:
            mean = self._mean()
        except OverflowError:
            mean = math.inf
        if math.isfinite(mean):
            return None
        return (f"shape {self.shape:g} is too small for scale {self.scale:g}s: the mean "
                "scale·Γ(1 + 1/shape) is past the largest float (1.8e308 s)")
