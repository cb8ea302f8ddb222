"""Stable hashing shared by the balancer (consistent hash) and the database (shard maps):
md5, so that placements are the same on every machine and in every process."""

from __future__ import annotations

import functools
import hashlib


def hash64(text: str) -> int:
    """First 8 bytes of the md5 of ``text``, big-endian (stable across machines)."""
    return int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "big")


def hash_ring(nodes: list[str], vnodes: int) -> tuple[list[int], list[int]]:
    """Return the sorted ring tokens and the node index owning each (shared: do not modify).

    Token names are ``"{node}#{v}"``; a key belongs to the first token at or after its hash,
    wrapping around. Lookups bisect the tokens (O(log(nodes x vnodes))). Rings are cached:
    4096 nodes x 150 vnodes is 614 400 md5 hashes, about a second, which every run of a
    sweep or of replications would otherwise pay again.
    """
    return _ring(tuple(nodes), vnodes)


@functools.lru_cache(maxsize=8)
def _ring(nodes: tuple[str, ...], vnodes: int) -> tuple[list[int], list[int]]:
    pairs = sorted((hash64(f"{node}#{v}"), i) for i, node in enumerate(nodes)
                   for v in range(vnodes))
    return [t for t, _ in pairs], [i for _, i in pairs]
