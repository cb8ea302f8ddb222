"""The caching patterns of the seed document, one small strategy object each: how a miss
fills the cache and what a write does.

``cache_aside``: the application reads the store on a miss and sets the key itself (a round
trip of ``hit_latency``, overwriting); a write goes to the store, then deletes the key.
``read_through``: the cache loads a missing key itself (keeping an entry filled meanwhile); a
write goes through the cache to the store and invalidates the key. ``write_through``: as
read-through, but a write updates the entry with the version the store committed.
``write_behind``: as read-through, but a write is acknowledged once queued, and a background
flusher hands the writes to the store (:mod:`.write_behind`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator.messages import OK, Request

if TYPE_CHECKING:
    from simulator.components.base import Handler
    from simulator.components.cache.serving import CacheServing

WritePath = Callable[["CacheServing", Request, str, float], "Handler"]


def _write_around(cache: CacheServing, req: Request, op: str, arrival: float) -> Handler:
    """Cache-aside: the store first, then delete the key (a round trip)."""
    epoch, hop = cache._epoch, cache._hit_delay
    status = yield from cache._call(req, "write")
    if cache._epoch != epoch:
        return cache._fail(req, op, arrival)
    if status == OK:
        if hop is not None:  # the del round trip
            yield from cache._sleep(hop())
            if cache._epoch != epoch:
                return cache._fail(req, op, arrival)
        cache._invalidate(req.key)
    cache._span(req, op, arrival, status)
    return status


def _write_to_store(cache: CacheServing, req: Request, op: str, arrival: float,
                    update: bool) -> Handler:
    """Through the cache to the store; then update the entry (``update``) or invalidate it."""
    epoch, hop, key = cache._epoch, cache._hit_delay, req.key
    if hop is not None:  # the write's hop to the cache
        yield from cache._sleep(hop())
        if cache._epoch != epoch:
            return cache._fail(req, op, arrival)
    req.version = -1
    status = yield from cache._call(req, "write")
    if cache._epoch != epoch:
        return cache._fail(req, op, arrival)
    if status == OK:
        if update:
            version = req.version if req.version >= 0 else cache.committed_version(key)
            cache._fill(key, version, None, overwrite=True)
            req.version = version
        else:
            cache._invalidate(key)
    cache._span(req, op, arrival, status)
    return status


def _write_invalidating(cache: CacheServing, req: Request, op: str, arrival: float
                        ) -> Handler:
    """Read-through: the store, then invalidate the key."""
    return (yield from _write_to_store(cache, req, op, arrival, update=False))


def _write_updating(cache: CacheServing, req: Request, op: str, arrival: float) -> Handler:
    """Write-through: the store, then the entry takes the committed version."""
    return (yield from _write_to_store(cache, req, op, arrival, update=True))


def _write_queued(cache: CacheServing, req: Request, op: str, arrival: float) -> Handler:
    """Write-behind: acknowledged once queued for the flusher."""
    epoch, hop = cache._epoch, cache._hit_delay
    if hop is not None:  # the write's hop to the cache
        yield from cache._sleep(hop())
        if cache._epoch != epoch:
            return cache._fail(req, op, arrival)
    cache._write_back(req, req.key)
    cache._span(req, op, arrival, OK)
    return OK


@dataclass(frozen=True)
class Pattern:
    """What a caching pattern decides.

    Attributes
    ----------
    name
        The ``pattern`` setting.
    caller_sets
        A miss's fill is the caller's own set (a round trip, overwriting whatever an
        overlapping load put there), not the cache's load.
    write
        The write path: ``write(cache, request, op, arrival)``, a handler.
    flushes
        Writes wait in a queue that a background flusher hands to the store.
    """

    name: str
    caller_sets: bool
    write: WritePath
    flushes: bool = False


PATTERNS = {p.name: p for p in (
    Pattern("cache_aside", caller_sets=True, write=_write_around),
    Pattern("read_through", caller_sets=False, write=_write_invalidating),
    Pattern("write_through", caller_sets=False, write=_write_updating),
    Pattern("write_behind", caller_sets=False, write=_write_queued, flushes=True),
)}
