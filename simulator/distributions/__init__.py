"""Probability distributions of durations and sizes, as scenario models that sample in batches.

Every distribution is a pydantic model selected by its ``dist`` key. A bare number or duration
(``5ms``) is shorthand for a constant. Times accept units; bare numbers are seconds. Every model
knows its analytic ``mean`` (where one exists) and samples vectors with ``sample(rng, n)``;
``sampler(rng)`` returns a fast zero-argument function built on batched draws.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from simulator.distributions.base import Duration, _Dist, weights_problem
from simulator.distributions.measured import Empirical, Histogram
from simulator.distributions.parametric import (
    Constant,
    Exponential,
    Gamma,
    LogNormal,
    Normal,
    Pareto,
    Uniform,
    Weibull,
)

if TYPE_CHECKING:
    import numpy as np


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
    | Histogram | Mixture,
    Field(discriminator="dist"),
    BeforeValidator(_coerce),
    AfterValidator(_no_overflow),
]
"""A distribution: ``{dist: exponential, mean: 5ms}``; a bare ``5ms`` means a constant."""

MixtureComponent.model_rebuild()
Mixture.model_rebuild()


__all__ = ["Constant", "Distribution", "Duration", "Empirical", "Exponential", "Gamma",
           "Histogram", "LogNormal", "Mixture", "MixtureComponent", "Normal", "Pareto",
           "Uniform", "Weibull", "weights_problem"]
