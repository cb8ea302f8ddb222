"""Group targets of a replicated cache: shards by key hash, or one local tier per calling
instance (``local_to``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simulator.components.base import (
    BuildContext,
    Component,
    Handler,
    Target,
)
from simulator.distributions import Constant
from simulator.messages import Request

if TYPE_CHECKING:
    from simulator.components.cache.cache import Cache


def _reader(obj: object, attr: str) -> Callable[[], float]:
    return lambda: getattr(obj, attr)


def _delay_sampler(ctx: BuildContext, group: str, purpose: str, dist: Any
                   ) -> Callable[[], float] | None:
    """A sampler of ``dist`` shared by the group, or None when it is always zero."""
    if isinstance(dist, Constant) and dist.value + dist.shift == 0:
        return None
    return ctx.sampler(group, purpose, dist)


def _mix(key: int) -> int:
    """A 32-bit hash of an integer key (Fibonacci hashing), to spread keys over shards."""
    return ((key * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> 32


class CacheShards:
    """The instances of a replicated cache as one sharded cluster: a key's instance is a hash of
    the key modulo the number of instances (client-side sharding)."""

    def __init__(self, name: str, members: list[Cache]) -> None:
        self.name = name
        self.members = members
        self._handlers = [m.handle for m in members]
        self._n = len(members)

    @property
    def instances(self) -> list[Component]:
        """Every instance."""
        return list(self.members)

    def handle(self, req: Request, op: str) -> Handler:
        """Send the request to the instance that owns its key."""
        return self._handlers[_mix(req.key) % self._n](req, op)

    def has_versions(self) -> bool:
        """Whether the store behind the caches keeps versions."""
        return self.members[0].has_versions()

    def committed_version(self, key: int) -> int:
        """The store's latest committed version of ``key``."""
        return self.members[0].committed_version(key)

    def peek(self, key: int) -> int | None:
        """The version of ``key`` its instance holds (see :meth:`Cache.peek`)."""
        return self.members[_mix(key) % self._n].peek(key)


class LocalCaches(CacheShards):
    """Per-instance local caches: instance ``i`` of the owner calls cache instance ``i``.

    Callers that are not instances of the owner are spread by key, as :class:`CacheShards`.
    """

    def __init__(self, name: str, members: list[Cache], owner: str) -> None:
        super().__init__(name, members)
        n = len(members)
        self._by_caller = {f"{owner}[{i}]": m for i, m in enumerate(members)} if n > 1 else {
            owner: members[0]}

    def for_caller(self, caller: str) -> Target:
        """The target a call from instance ``caller`` goes to."""
        return self._by_caller.get(caller, self)
