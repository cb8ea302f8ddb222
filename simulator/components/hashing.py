"""Stable hashing shared by the balancer (consistent hash) and the database (shard maps):
md5, so that placements are the same on every machine and in every process."""

from __future__ import annotations

import hashlib


def hash64(text: str) -> int:
    """First 8 bytes of the md5 of ``text``, big-endian (stable across machines)."""
    return int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "big")


def hash_ring(nodes: list[str], vnodes: int) -> tuple[list[int], list[int]]:
    """Return the sorted ring tokens and the node index owning each.

    Token names are ``"{node}#{v}"``; a key belongs to the first token at or after its hash,
    wrapping around.
    """
    pairs = sorted((hash64(f"{node}#{v}"), i) for i, node in enumerate(nodes)
                   for v in range(vnodes))
    return [t for t, _ in pairs], [i for _, i in pairs]
