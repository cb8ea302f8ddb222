"""Probability distributions of durations and sizes, as scenario models that sample in batches.

Every distribution is a pydantic model selected by its ``dist`` key. A bare number or duration
(``5ms``) is shorthand for a constant. Times accept units; bare numbers are seconds. Every model
knows its analytic ``mean`` (where one exists) and samples vectors with ``sample(rng, n)``;
``sampler(rng)`` returns a fast zero-argument function built on batched draws.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

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
_LOG_MAX = math.log(sys.float_info.max)  # exp() of more than this overflows
_MAX_CV = math.sqrt(sys.float_info.max)  # cv² of more than this overflows


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

    def _overflow(self) -> str | None:
        """Why the given parameters overflow, in their own terms (None: they do not)."""
        return None

    def _mean_is_cheap(self) -> bool:
        """Whether validation may compute the mean (false where it needs numpy, which
        validation does not import: those kinds check themselves in ``_overflow``)."""
        return True

    def _infinite_mean(self) -> bool:
        """Whether an infinite mean is what the parameters say (a heavy tail), not overflow."""
        return False

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

    def _overflow(self) -> str | None:
        # the mean is exp(mu + sigma²/2): past the largest float when that exponent is
        if self.cv is not None and self.cv > _MAX_CV:
            return (f"cv {self.cv:g} overflows: sigma² = log(1 + cv²) needs cv² below the "
                    f"largest float (cv at most {_MAX_CV:.3g})")
        mu, sigma = self.log_params
        if mu + sigma**2 / 2 <= _LOG_MAX:
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

    def _overflow(self) -> str | None:
        # shape 1/cv² and scale mean·cv² must both be positive finite numbers
        cv2 = self.cv**2 if self.cv <= _MAX_CV else math.inf
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

    def _mean_is_cheap(self) -> bool:
        return False  # each branch is a Distribution, checked on its own

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

    def _infinite_mean(self) -> bool:
        return any(c.of._infinite_mean() for c in self.components)


def _coerce(value: Any) -> Any:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    return value


def _no_overflow(dist: _Dist) -> _Dist:
    """Refuse a distribution whose parameters, each finite, overflow together.

    The mean (or a parameter derived from the given ones, such as a log-normal's sigma from
    its cv) can be past the largest float; this says so, with the reason, rather than leaving
    an OverflowError or infinite draws to the middle of a run. Checked after the model's own
    checks (it is a validator of :data:`Distribution`), so their messages come first.
    """
    reason = dist._overflow()
    if reason is None and dist._mean_is_cheap():
        try:
            mean = dist.mean
        except OverflowError:
            mean = math.inf
        if not (math.isfinite(mean) or dist._infinite_mean()):
            reason = (f"the parameters of this {dist.dist} distribution overflow: its mean "  # type: ignore[attr-defined]
                      "is past the largest float (1.8e308 s)")
    if reason is not None:
        raise ValueError(reason)
    return dist


Distribution = Annotated[
    Constant | Exponential | Uniform | Normal | LogNormal | Gamma | Pareto | Weibull | Empirical
    | Mixture,
    Field(discriminator="dist"),
    BeforeValidator(_coerce),
    AfterValidator(_no_overflow),
]
"""A distribution: ``{dist: exponential, mean: 5ms}``; a bare ``5ms`` means a constant."""

MixtureComponent.model_rebuild()
Mixture.model_rebuild()
