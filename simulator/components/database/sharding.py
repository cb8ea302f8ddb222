"""Shard maps: which shard holds a key (``mod``, ``consistent_hash`` md5 ring, ``range``)."""

from __future__ import annotations

import bisect
import functools

import numpy as np

from simulator.components.database.params import Scheme
from simulator.components.hashing import hash64, hash_ring


@functools.lru_cache(maxsize=4)
def _prefix_hashes(n: int) -> np.ndarray:
    return np.fromiter((hash64(f"key-{k}") for k in range(n)), dtype=np.uint64, count=n)


def key_hashes(keys: np.ndarray) -> np.ndarray:
    """md5 hashes (first 8 bytes, big-endian) of ``"key-{k}"`` for each key, as uint64."""
    keys = np.asarray(keys, dtype=np.int64)
    if len(keys) and keys[0] == 0 and keys[-1] == len(keys) - 1 and (
            len(keys) == 1 or bool(np.all(np.diff(keys) == 1))):
        return _prefix_hashes(len(keys))
    return np.fromiter((hash64(f"key-{k}") for k in keys.tolist()), dtype=np.uint64,
                       count=len(keys))


class ShardMap:
    """Which shard holds a key, for one scheme and shard count.

    Parameters
    ----------
    scheme
        ``mod``, ``consistent_hash`` or ``range`` (see :class:`ShardSpec`).
    count
        Number of shards.
    vnodes
        Tokens per shard on the ring (``consistent_hash``).
    boundaries
        ``count - 1`` split keys (``range``).
    names
        Ring node names (default ``node-0 .. node-{count-1}``).
    """

    def __init__(self, scheme: Scheme, count: int, vnodes: int = 150,
                 boundaries: list[int] | None = None, names: list[str] | None = None) -> None:
        self.scheme = scheme
        self.count = count
        self.vnodes = vnodes
        self.boundaries = list(boundaries or [])
        if scheme == "range" and len(self.boundaries) != count - 1:
            raise ValueError(f"{count} ranges need {count - 1} boundaries")
        self._tokens: list[int] = []
        self._owners: list[int] = []
        if scheme == "consistent_hash":
            self.names = names or [f"node-{i}" for i in range(count)]
            self._tokens, self._owners = hash_ring(self.names, vnodes)

    @classmethod
    def equal_ranges(cls, count: int, key_space: int) -> list[int]:
        """Boundaries splitting ``0 .. key_space-1`` into ``count`` ranges of equal size."""
        return [i * key_space // count for i in range(1, count)]

    def shard_of(self, key: int) -> int:
        """Shard of one key."""
        if self.scheme == "range":
            return bisect.bisect_right(self.boundaries, key)
        h = hash64(f"key-{key}")
        if self.scheme == "mod":
            return h % self.count
        return self._owners[bisect.bisect_left(self._tokens, h) % len(self._tokens)]

    def shards_of(self, keys: np.ndarray, hashes: np.ndarray | None = None) -> np.ndarray:
        """Shards of many keys (``hashes``: their :func:`key_hashes`, if already known)."""
        keys = np.asarray(keys, dtype=np.int64)
        if self.scheme == "range":
            return np.searchsorted(np.asarray(self.boundaries, dtype=np.int64), keys,
                                   side="right")
        h = key_hashes(keys) if hashes is None else hashes
        if self.scheme == "mod":
            return (h % np.uint64(self.count)).astype(np.int64)
        tokens = np.asarray(self._tokens, dtype=np.uint64)
        pos = np.searchsorted(tokens, h, side="left") % len(tokens)
        return np.asarray(self._owners, dtype=np.int64)[pos]


# --------------------------------------------------------------------------------------------
# nodes
