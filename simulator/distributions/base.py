"""The base of every distribution model, the ``Duration`` type and shared checks."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

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

Z99 = 2.3263478740408408  # standard normal quantile at 0.99
LOG_MAX = math.log(sys.float_info.max)  # exp() of more than this overflows
MAX_CV = math.sqrt(sys.float_info.max)  # cv² of more than this overflows


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
