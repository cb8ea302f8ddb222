"""Probability distributions of durations and sizes, as scenario models that sample in batches.

Every distribution is a pydantic model selected by its ``dist`` key. A bare number or duration
(``5ms``) is shorthand for a constant. Times accept units; bare numbers are seconds. Every model
knows its analytic ``mean`` (where one exists) and samples vectors with ``sample(rng, n)``;
``sampler(rng)`` returns a fast zero-argument function built on batched draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from simulator.rng import batched
from simulator.units import DURATION_PATTERN, parse_duration

if TYPE_CHECKING:  # numpy is imported where variates are drawn: validating needs none
    import numpy as np

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(json_schema_extra={"anyOf": [{"type": "number"}, {"type": "string",
                                                             "pattern": DURATION_PATTERN}]}),
]
"""A duration in seconds; accepts numbers (seconds) and strings with a unit (``250ms``)."""

_Z99 = 2.3263478740408408  # standard normal quantile at 0.99


def weights_problem(weights: Iterable[float], what: str) -> str | None:
    """Why ``weights`` cannot be normalised into probabilities (None when they can).

    Each weight is finite (the models refuse infinity and NaN), so what is left to check is
    that none is negative, that not all are zero, and that their sum is finite: weights near
    the largest float (``1e308, 1.7e308``) sum to infinity, which would normalise every
    probability to zero. Only the ratios of weights matter, so the fix is to scale them down.
    """
    values = list(weights)
    if any(w < 0 for w in values) or sum(values) <= 0:
        return f"{what} must be >= 0 and not all zero"
    if not math.isfinite(total := sum(values)):
        return (f"{what} sum to {total:g}, past the largest float (1.8e308); scale them down "
                "(only their ratios matter)")
    return None


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    shift: Duration = Field(0.0, ge=0, description="Constant added to every draw (a floor).")

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raise NotImplementedError

    def _mean(self) -> float:
        raise NotImplementedError

    @property
    def mean(self) -> float:
        """Analytic mean (``inf`` where it does not exist)."""
        return self._mean() + self.shift

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Return ``n`` independent draws."""
        x = self._draw(rng, n)
        return x + self.shift if self.shift else x

    def sampler(self, rng: np.random.Generator) -> Callable[[], float]:
        """Return a zero-argument function returning one draw per call (batched underneath)."""
        return batched(rng, self.sample)


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

    @property
    def log_params(self) -> tuple[float, float]:
        """Return (mu, sigma) of the underlying normal."""
        if self.mean_ is not None and self.cv is not None:
            s2 = math.log1p(self.cv**2)
            return math.log(self.mean_) - s2 / 2, math.sqrt(s2)
        if self.p50 is not None and self.p99 is not None:
            return math.log(self.p50), (math.log(self.p99) - math.log(self.p50)) / _Z99
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


class Weibull(_Dist):
    """Weibull with ``shape`` k and ``scale`` λ: P(X > x) = exp(-(x/λ)^k)."""

    dist: Literal["weibull"] = "weibull"
    shape: float = Field(gt=0)
    scale: Duration = Field(gt=0)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.weibull(self.shape, n) * self.scale

    def _mean(self) -> float:
        return self.scale * math.gamma(1 + 1 / self.shape)


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


class MixtureComponent(BaseModel):
    """One weighted branch of a mixture."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    weight: float = Field(gt=0)
    of: Distribution


class Mixture(_Dist):
    """With probability proportional to ``weight``, a draw from branch ``of``."""

    dist: Literal["mixture"] = "mixture"
    components: list[MixtureComponent] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (problem := weights_problem((c.weight for c in self.components),
                                       "components' weights")) is not None:
            raise ValueError(problem)
        return self

    def _probs(self) -> np.ndarray:
        import numpy as np

        w = np.array([c.weight for c in self.components])
        return w / w.sum()

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        import numpy as np

        which = rng.choice(len(self.components), size=n, p=self._probs())
        out = np.empty(n)
        for i, c in enumerate(self.components):
            mask = which == i
            out[mask] = c.of.sample(rng, int(mask.sum()))
        return out

    def _mean(self) -> float:
        return float(sum(p * c.of.mean for p, c in zip(self._probs(), self.components,
                                                          strict=True)))


def _coerce(value: Any) -> Any:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    return value


Distribution = Annotated[
    Constant | Exponential | Uniform | Normal | LogNormal | Gamma | Pareto | Weibull | Empirical
    | Mixture,
    Field(discriminator="dist"),
    BeforeValidator(_coerce),
]
"""A distribution: ``{dist: exponential, mean: 5ms}``; a bare ``5ms`` means a constant."""

MixtureComponent.model_rebuild()
Mixture.model_rebuild()
