"""Key popularity: which key each request touches.

Keys are integers ``0 .. n-1`` ranked by popularity: key 0 is the most popular. Caches, shards
and consistent-hash balancers see these keys, so hit ratios and hot spots emerge from the
workload instead of being knobs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from simulator.limits import ZIPF_KEY_BYTES
from simulator.rng import batched

if TYPE_CHECKING:  # numpy is imported where variates are drawn: validating needs none
    import numpy as np


class _Keys(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    n: int = Field(ge=1, le=100_000_000, description="Number of distinct keys.")

    def probabilities(self) -> np.ndarray:
        """Return the probability of each key, key 0 first."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Return ``size`` independent keys."""
        raise NotImplementedError

    def sampler(self, rng: np.random.Generator) -> Callable[[], int]:
        """Return a zero-argument function returning one key per call (batched underneath)."""
        return batched(rng, self.sample)  # type: ignore[return-value]

    def memory_bytes(self) -> float:
        """Bytes a run holds for the key space itself (none: keys are drawn arithmetically)."""
        return 0.0


class UniformKeys(_Keys):
    """Every key equally likely."""

    popularity: Literal["uniform"] = "uniform"

    def probabilities(self) -> np.ndarray:
        import numpy as np

        return np.full(self.n, 1.0 / self.n)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.integers(0, self.n, size)


class ZipfKeys(_Keys):
    """Finite Zipf: P(key i) ∝ (i + 1)^-s over ``n`` keys (``s`` = 0 is uniform)."""

    popularity: Literal["zipf"] = "zipf"
    s: float = Field(ge=0, le=10, description="Skew exponent (often 0.6-1.2).")

    def probabilities(self) -> np.ndarray:
        import numpy as np

        w = np.arange(1, self.n + 1, dtype=float) ** -self.s
        return w / w.sum()

    def memory_bytes(self) -> float:
        """The cumulative distribution over the ``n`` keys that sampling bisects (and the
        arrays it is built from)."""
        return float(self.n * ZIPF_KEY_BYTES)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        import numpy as np

        cdf = _zipf_cdf(self.n, self.s)
        return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), self.n - 1)


class HotspotKeys(_Keys):
    """A ``hot_fraction`` of the keys receives ``hot_share`` of the requests, uniformly inside."""

    popularity: Literal["hotspot"] = "hotspot"
    hot_fraction: float = Field(0.1, gt=0, lt=1)
    hot_share: float = Field(0.9, gt=0, lt=1)

    def _hot(self) -> int:
        return max(1, round(self.n * self.hot_fraction))

    def probabilities(self) -> np.ndarray:
        import numpy as np

        hot = self._hot()
        p = np.full(self.n, (1 - self.hot_share) / max(1, self.n - hot))
        p[:hot] = self.hot_share / hot
        return p / p.sum()

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        import numpy as np

        hot = self._hot()
        is_hot = rng.random(size) < self.hot_share
        cold = rng.integers(hot, self.n, size) if self.n > hot else rng.integers(0, hot, size)
        return np.where(is_hot, rng.integers(0, hot, size), cold)


class SequentialKeys(_Keys):
    """Keys 0, 1, 2, ... n-1, 0, 1, ... in turn (a scan)."""

    popularity: Literal["sequential"] = "sequential"

    def probabilities(self) -> np.ndarray:
        import numpy as np

        return np.full(self.n, 1.0 / self.n)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raise NotImplementedError("sequential keys are not random")

    def sampler(self, rng: np.random.Generator) -> Callable[[], int]:
        state = {"next": 0}
        n = self.n

        def draw() -> int:
            k = state["next"]
            state["next"] = (k + 1) % n
            return k

        return draw


_CDF_CACHE: dict[tuple[int, float], np.ndarray] = {}


def _zipf_cdf(n: int, s: float) -> np.ndarray:
    import numpy as np

    key = (n, s)
    cdf = _CDF_CACHE.get(key)
    if cdf is None:
        w = np.arange(1, n + 1, dtype=float) ** -s
        cdf = np.cumsum(w)
        cdf /= cdf[-1]
        _CDF_CACHE.clear()  # keep at most one large table alive
        _CDF_CACHE[key] = cdf
    return cdf


KeySpace = Annotated[
    UniformKeys | ZipfKeys | HotspotKeys | SequentialKeys, Field(discriminator="popularity")
]
"""Key popularity of a workload: ``{popularity: zipf, n: 100000, s: 0.9}``."""
