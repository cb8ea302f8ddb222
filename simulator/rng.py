"""Random streams: one numpy Generator per (seed, replication, scope, purpose).

A component asks for its own stream per purpose (``"service_time"``, ``"choice"``...). Streams
are derived with ``SeedSequence(seed, spawn_key=(replication, h(scope), h(purpose)))`` where ``h``
is a stable hash (blake2b), so adding a component or a purpose never changes the draws of
another, and the same seed gives the same numbers on every machine and executor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from itertools import chain
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where variates are drawn: validating needs none
    import numpy as np


#: How many numbers a batched stream draws from numpy at once.
BLOCK = 4096


def stable_hash(text: str) -> int:
    """Return a 64-bit hash of ``text`` that is the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def make_generator(seed: int, replication: int, scope: str, purpose: str) -> np.random.Generator:
    """Return the generator of one (seed, replication, scope, purpose)."""
    import numpy as np

    seq = np.random.SeedSequence(
        seed, spawn_key=(replication, stable_hash(scope), stable_hash(purpose))
    )
    return np.random.Generator(np.random.PCG64(seq))


class Streams:
    """Factory of the random streams of one run.

    Parameters
    ----------
    seed
        The run's seed.
    replication
        Index of the replication; replications of one seed are independent.
    """

    def __init__(self, seed: int, replication: int = 0) -> None:
        self.seed = seed
        self.replication = replication

    def generator(self, scope: str, purpose: str) -> np.random.Generator:
        """Return the generator of ``scope`` (a component or workload name) and ``purpose``."""
        return make_generator(self.seed, self.replication, scope, purpose)

    def batched(
        self, scope: str, purpose: str, block: Callable[[np.random.Generator, int], np.ndarray]
    ) -> Callable[[], float]:
        """Return a zero-argument function handing out floats drawn ``BLOCK`` at a time.

        The generator is made at the first draw (when the first block is drawn, so later draws
        pay nothing for it): a stream is a pure function of (seed, replication, scope,
        purpose), so making it late changes no value, and the many streams never drawn from
        (the fault draws of instances no fault touches) cost nothing.
        """
        return batched(lambda: self.generator(scope, purpose), block)


def batched(
    rng: np.random.Generator | Callable[[], np.random.Generator],
    block: Callable[[np.random.Generator, int], np.ndarray],
) -> Callable[[], float]:
    """Return a function that hands out one Python float per call from blocks of draws.

    Drawing from numpy one number at a time costs about a microsecond; handing out floats from a
    pre-drawn block costs a few tens of nanoseconds. ``rng`` may be a function that makes the
    generator: it is then called when the first block is drawn.
    """
    def blocks() -> Iterator[list[float]]:
        # each block drawn when the last one runs out, as a draw asks for its first value
        gen = rng() if callable(rng) else rng
        while True:
            yield block(gen, BLOCK).tolist()

    # a draw is one C call (the chain's __next__), no Python frame: the generator above
    # resumes once per block only
    return chain.from_iterable(blocks()).__next__
