"""The group target of a database: routes each request to the shard holding its key,
holds the committed version of every key, and applies reshards."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from simulator.components.base import (
    BuildContext,
    Component,
    Handler,
)
from simulator.components.database.params import MAX_KEYS_HASHED, DatabaseParams, ShardSpec
from simulator.components.database.sharding import ShardMap, key_hashes
from simulator.messages import Request

if TYPE_CHECKING:
    from simulator.components.database.shard import Database


# --------------------------------------------------------------------------------------------
# the cluster: what a reference to the database calls


class DatabaseCluster:
    """All shards of a database; routes each request to the shard holding its key.

    Holds the store's committed versions (one per key, whichever shard holds it) and the
    read-your-writes sessions. ``committed_version(key)`` is what a cache in front uses to
    measure its own staleness.

    Parameters
    ----------
    name
        The component's name.
    members
        Its shard instances, in order.
    ctx
        Build context.
    """

    def __init__(self, name: str, members: list[Database], ctx: BuildContext) -> None:
        self.name = name
        self.members = list(members)
        self.ctx = ctx
        self.params: DatabaseParams = members[0].params
        self.committed: dict[int, int] = {}
        self.sessions: dict[int, dict[int, int]] = {}
        spec = self.params.shards or ShardSpec()
        self.spec = spec
        self.map = ShardMap(spec.scheme, spec.count, spec.vnodes, self._boundaries(
            spec.count, spec.boundaries))
        self._route: dict[int, int] = {}
        self._spread = ctx.streams.batched(name, "keyless_shard", lambda rng, k: rng.random(k))
        for m in self.members:
            self._adopt(m)
        self._refresh()

    def _boundaries(self, count: int, given: list[int] | None) -> list[int] | None:
        if self.spec.scheme != "range":
            return None
        if given is not None:
            return list(given)
        assert self.spec.key_space is not None  # validated
        return ShardMap.equal_ranges(count, self.spec.key_space)

    def _adopt(self, member: Database) -> None:
        member.cluster = self
        member._committed = self.committed
        member._sessions = self.sessions

    def _refresh(self) -> None:
        n = self.map.count
        self._handlers = [m.handle for m in self.members[:n]]
        for i, m in enumerate(self.members):
            m.active = i < n

    @property
    def instances(self) -> list[Component]:
        """Every shard instance (including shards provisioned for a later reshard)."""
        return list(self.members)

    def committed_version(self, key: int) -> int:
        """The latest committed version of ``key`` (0 if never written)."""
        return self.committed.get(key, 0)

    def shard_of(self, key: int) -> int:
        """Index of the shard holding ``key`` now."""
        i = self._route.get(key)
        if i is None:
            i = self._route[key] = self.map.shard_of(key)
        return i

    def handle(self, req: Request, op: str) -> Handler:
        """Send the request to the shard holding its key (keyless: a random shard)."""
        return self._handlers[self._shard(req)](req, op)

    def _shard(self, req: Request) -> int:
        key = req.key
        if key >= 0:
            i = self._route.get(key)
            if i is None:
                i = self._route[key] = self.map.shard_of(key)
        else:
            i = int(self._spread() * len(self._handlers))
        return i

    def from_region(self, src: str | None, network: Any) -> _RegionalCluster:
        """The database as called from region ``src`` (None: the request's region): each
        shard charges the link to the node that serves the request."""
        return _RegionalCluster(self, src)

    # ---- resharding ---------------------------------------------------------------------
    def provision(self, count: int) -> list[Database]:
        """Create shard instances up to ``count`` (before the run); return the new ones."""
        new = []
        cls = type(self.members[0])
        for i in range(len(self.members), count):
            member = cls(self.name, i, self.params, self.ctx)
            self._adopt(member)
            self.members.append(member)
            new.append(member)
        self._refresh()
        return new

    def reshard(self, count: int, boundaries: list[int] | None, key_space: int | None) -> None:
        """Change the shard map to ``count`` shards now and record the keys moved.

        The moved fraction is measured over the key space ``0 .. key_space-1`` (an even stride
        of at most :data:`MAX_KEYS_HASHED` keys beyond that) and over the keys seen so far.
        """
        if count > len(self.members):
            raise ValueError(f"{self.name}: {count} shards were not provisioned")
        old = self.map
        new = ShardMap(old.scheme, count, old.vnodes, self._boundaries(count, boundaries))
        space = self.spec.key_space if self.spec.key_space is not None else key_space
        fields: dict[str, str] = {"from": str(old.count), "to": str(count),
                                  "scheme": old.scheme}
        if space:
            if space > MAX_KEYS_HASHED:
                keys = np.unique(np.linspace(0, space - 1, MAX_KEYS_HASHED).astype(np.int64))
            else:
                keys = np.arange(space, dtype=np.int64)
            fields["keys"] = str(space)
            fields.update(_moved(old, new, keys))
        seen = np.fromiter(self._route, dtype=np.int64, count=len(self._route))
        fields["seen_keys"] = str(len(seen))
        fields.update({f"seen_{k}": v for k, v in _moved(old, new, seen).items()})
        # migrate: a moved key's new shard holds its latest committed version on every node
        if self.committed:
            written = np.fromiter(self.committed, dtype=np.int64, count=len(self.committed))
            before, after = old.shards_of(written), new.shards_of(written)
            for key, shard in zip(written[before != after].tolist(),
                                  after[before != after].tolist(), strict=True):
                version = self.committed[key]
                for f in self.members[shard].nodes:
                    if f.applied.get(key, 0) < version:
                        f.applied[key] = version
        self.map = new
        self._route.clear()
        self._refresh()
        detail = " ".join(f"{k}={v}" for k, v in fields.items())
        self.ctx.recorder.event(self.ctx.env.now, self.name, self.name, "reshard", detail)


class _RegionalCluster:
    """What a caller in one region calls: the cluster's routing, the caller's region passed on."""

    def __init__(self, cluster: DatabaseCluster, src: str | None) -> None:
        self.name = cluster.name
        self.cluster = cluster
        self.src = src

    @property
    def instances(self) -> list[Component]:
        return self.cluster.instances

    def handle(self, req: Request, op: str) -> Handler:
        cluster = self.cluster
        member = cluster.members[cluster._shard(req)]
        src = self.src if self.src is not None else req.region
        return member.handle(req, op, src)


def _moved(old: ShardMap, new: ShardMap, keys: np.ndarray) -> dict[str, str]:
    """Fraction of ``keys`` whose shard changes, and of those, the fraction sent to new shards."""
    if len(keys) == 0:
        return {"moved_ratio": "nan", "moved_to_new_ratio": "nan"}
    hashes = None if old.scheme == "range" else key_hashes(keys)
    a, b = old.shards_of(keys, hashes), new.shards_of(keys, hashes)
    moved = a != b
    n_moved = int(moved.sum())
    to_new = float((b[moved] >= old.count).mean()) if n_moved else math.nan
    return {"moved_ratio": f"{n_moved / len(keys):.6f}", "moved_to_new_ratio": f"{to_new:.6f}"}


