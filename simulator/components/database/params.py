"""Parameters of ``kind: database``: shards, replication (writes, reads, lag, failover),
the connection pool, per-operation service times; and the ``reshard`` timeline event."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from simulator.components.params import ComponentParams, KeyPath
from simulator.distributions import Constant, Distribution, Duration, Exponential
from simulator.kind import TimelineEvent
from simulator.limits import KEY_ENTRY_BYTES
from simulator.settings import refuse_ignored

Scheme = Literal["mod", "consistent_hash", "range"]
ReadRouting = Literal["leader", "round_robin", "random", "least_loaded", "read_your_writes",
                      "quorum", "nearest"]
WriteMode = Literal["async", "sync", "quorum"]

#: Keys hashed at most to estimate the fraction moved by a reshard (an even stride beyond).
MAX_KEYS_HASHED = 1_000_000


# --------------------------------------------------------------------------------------------
# parameters


class ShardSpec(BaseModel):
    """How keys are spread over shards.

    Parameters
    ----------
    count
        Number of shards (instances ``name[0] .. name[count-1]``).
    scheme
        ``mod``: shard = md5(``"key-{k}"``) mod ``count`` (the seed's ``hash % shards.length``);
        ``consistent_hash``: ring of ``vnodes`` tokens per shard, md5(``"node-{i}#{v}"``) for
        shard ``i`` (the naming of reference case CHASH-N10-V150), a key owned by the first
        token at or after md5(``"key-{k}"``); ``range``: shard ``i`` holds the keys in
        ``[boundaries[i-1], boundaries[i])`` (popularity ranks, so the hottest keys share the
        first range, as sequential ids do).
    vnodes
        Virtual nodes per shard (``consistent_hash``).
    boundaries
        ``count - 1`` increasing split keys (``range``).
    key_space
        Number of keys; ``range`` without ``boundaries`` splits ``0 .. key_space-1`` into equal
        ranges (also after a reshard).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    count: int = Field(1, ge=1, le=10_000)
    scheme: Scheme = "consistent_hash"
    vnodes: int = Field(150, ge=1, le=100_000)
    boundaries: list[int] | None = None
    key_space: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        refuse_ignored(self, [("vnodes", self.scheme == "consistent_hash",
                               f"by scheme {self.scheme}; it applies to scheme consistent_hash")])
        if self.scheme != "range":
            if self.boundaries is not None:
                raise ValueError(f"boundaries apply to scheme range, not {self.scheme}")
            return self
        if self.boundaries is None:
            if self.key_space is None:
                raise ValueError("scheme range needs boundaries or key_space")
            if self.key_space < self.count:
                raise ValueError(f"key_space ({self.key_space}) is smaller than count")
        else:
            problem = boundaries_problem(self.boundaries, self.count)
            if problem:
                raise ValueError(problem)
        return self


def boundaries_problem(boundaries: list[int], count: int) -> str | None:
    """Why ``boundaries`` cannot split keys into ``count`` ranges, or None."""
    if len(boundaries) != count - 1:
        return f"boundaries needs count - 1 = {count - 1} split keys, got {len(boundaries)}"
    if any(b <= 0 for b in boundaries) or any(b >= c for b, c in itertools.pairwise(boundaries)):
        return "boundaries must be positive and strictly increasing"
    return None


class FailoverSpec(BaseModel):
    """Automatic failover: a follower is promoted when the leader has crashed.

    Parameters
    ----------
    detection
        Seconds from the leader's crash until it is declared dead (Patroni: the leader key's
        ``ttl`` running out, checked every ``loop_wait``; RDS Multi-AZ: its health monitor).
        A leader back within this time keeps leading and nothing is promoted.
    promotion
        Seconds from then until the chosen follower accepts writes (``pg_ctl promote``, DNS or
        proxy switch-over). Both are drawn per failover from their own streams.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    detection: Distribution
    promotion: Distribution = Field(default_factory=lambda: Constant(value=0.0))


class ReplicationSpec(BaseModel):
    """A leader and followers in every shard.

    Parameters
    ----------
    followers
        Followers per shard.
    lag
        Replication delay of one write to one follower (network plus apply), seconds, drawn
        independently per write and follower (the WARS model of Bailis et al.,
        "Probabilistically Bounded Staleness", VLDB 2012).
    ordered
        Apply writes in commit order (one apply thread: a slow write holds up those behind
        it, so the observed lag is the running maximum); default: each write becomes visible
        at its own ``committed + lag``.
    reads
        Where reads go: ``leader``, ``round_robin`` / ``random`` / ``least_loaded`` over the
        followers, ``read_your_writes`` (followers, unless the chosen one lacks the session's
        last write of the key: then the leader; the session is the request's workload and key)
        or ``quorum`` (all nodes; answer with the newest of the first ``read_quorum`` replies)
        or ``nearest`` (with regions: the node, leader or follower, with the lowest mean latency
        from the caller's region whose region is not down, the leader on ties; without
        regions, the leader).
    regions
        With the scenario's regions: the region of each follower (one per follower; default:
        the shard's own). A write reaches a follower in another region after its ``lag`` draw
        plus a draw of the one-way link latency from the leader's region (its own stream), and
        is held while a region partition cuts that link or the follower's region is down. A
        read served by a node in another region than the caller pays that link both ways.
    writes
        ``async`` (acknowledged at the leader's commit), ``sync`` (once every follower has
        applied it) or ``quorum`` (once ``write_quorum`` nodes have it, the leader counting).
    write_quorum
        Nodes, leader included, that must hold a write before it is acknowledged, from 1 to
        ``followers + 1``; required by ``writes: quorum`` and used only there.
    read_quorum
        Replies a quorum read waits for, from 1 to ``followers + 1``; required by
        ``reads: quorum`` and used only there.
    failover
        Promote a follower when the leader crashes (omitted: writes wait for the leader to
        come back); see :class:`FailoverSpec` and the module documentation.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    followers: int = Field(1, ge=0, le=1000)
    lag: Distribution = Field(default_factory=lambda: Exponential(mean_=0.01))
    ordered: bool = False
    reads: ReadRouting = "leader"
    writes: WriteMode = "async"
    write_quorum: int | None = Field(None, ge=1)
    read_quorum: int | None = Field(None, ge=1)
    regions: list[str] | None = None
    failover: FailoverSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        n = self.followers + 1
        if self.failover is not None:
            if self.followers == 0:
                raise ValueError("failover needs at least one follower to promote")
            if self.writes == "quorum" and not self.ordered:
                raise ValueError("failover with writes: quorum needs ordered: true (a quorum "
                                 "only keeps acknowledged writes across a failover when "
                                 "followers apply the log in commit order)")
        if self.regions is not None and len(self.regions) != self.followers:
            raise ValueError(f"regions lists {len(self.regions)} regions for "
                             f"{self.followers} followers; give one per follower")
        if self.reads not in ("leader", "quorum", "nearest") and self.followers == 0:
            raise ValueError(f"reads {self.reads} needs at least one follower")
        for mode, field, value in (("reads", "read_quorum", self.read_quorum),
                                   ("writes", "write_quorum", self.write_quorum)):
            if getattr(self, mode) == "quorum" and value is None:
                raise ValueError(f"{mode}: quorum needs {field}")
            # (a quorum size with another mode is not refused: a scenario's variants switch
            # the mode and leave the size behind, and each variant is checked on the others)
            if value is not None and value > n:
                raise ValueError(f"{field} ({value}) exceeds the {n} nodes of a shard "
                                 f"(followers + 1)")
        return self


class PoolSpec(BaseModel):
    """The connection pool of each node.

    Parameters
    ----------
    size
        Connections: queries a node runs at once.
    acquire_timeout
        A request waiting this long for a connection fails with status ``timeout`` (HikariCP's
        ``connectionTimeout``, default 30 s); ``null``: wait forever.
    max_waiting
        Requests allowed to wait; an arrival finding this many waiting is ``rejected`` at once.
        Omitted: unbounded.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    size: int = Field(10, ge=1, le=1_000_000)
    acquire_timeout: Duration | None = Field(30.0, gt=0)
    max_waiting: int | None = Field(None, ge=0)


def _service_time_shape(value: Any) -> str:
    if isinstance(value, dict) and "dist" not in value:
        return "per_op"
    return "one"


ServiceTimes = Annotated[
    Annotated[Distribution, Tag("one")] | Annotated[dict[str, Distribution], Tag("per_op")],
    Discriminator(_service_time_shape),
]
"""One distribution for every operation, or ``{read: 2ms, write: 8ms, "*": ...}``."""


class DatabaseParams(ComponentParams):
    """Parameters of ``kind: database``.

    Parameters
    ----------
    replicas
        Set from ``shards.count`` (a database's instances are its shards); leave it out.
    shards
        Sharding (omitted: one shard, instance named after the component).
    replication
        Followers, their lag, and the read and write paths (omitted: a lone leader).
    pool
        Connection pool of each node.
    service_time
        Time one query holds a connection (seconds, times the request's ``work``): one
        distribution, or one per operation — ``{read: 2ms, write: 8ms}``; an operation not
        listed takes the ``write`` entry if it is a write, else ``read``, else ``"*"``.
    write_ops
        Operations that write (the others read).
    """

    kind: Literal["database"] = "database"
    shards: ShardSpec | None = None
    replication: ReplicationSpec | None = None
    pool: PoolSpec = PoolSpec()
    service_time: ServiceTimes = Field(default_factory=lambda: Constant(value=0.001))
    write_ops: list[str] = Field(default_factory=lambda: ["write", "update", "insert",
                                                          "delete"])

    def diagram_lines(self) -> list[str]:
        lines = []
        if self.shards is not None:
            lines.append(f"{self.shards.count} shards ({self.shards.scheme.replace('_', ' ')})")
        rep = self.replication
        if rep is not None:
            plural = "s" if rep.followers != 1 else ""
            lines.append(f"{rep.followers} follower{plural}, reads {rep.reads.replace('_', ' ')}")
            lines.append(f"writes {rep.writes}" + (", failover" if rep.failover else ""))
        lines.append(f"pool {self.pool.size}")
        return lines

    @model_validator(mode="before")
    @classmethod
    def _replicas_are_shards(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        shards = data.get("shards")
        count = shards.get("count", 1) if isinstance(shards, dict) else getattr(
            shards, "count", 1)
        if not isinstance(count, int) or isinstance(count, bool):
            return data  # the shards model reports it
        if "replicas" in data and data["replicas"] != count:
            raise ValueError("replicas: a database's instances are its shards; set "
                             "shards.count (and replication.followers for copies)")
        return {**data, "replicas": count}

    @model_validator(mode="after")
    def _check(self) -> Self:
        st = self.service_time
        if isinstance(st, dict) and "*" not in st and not {"read", "write"} <= set(st):
            raise ValueError('service_time per operation needs "*" or both read and write, so '
                             "that every operation has one")
        return self

    def regions_used(self) -> Iterable[tuple[KeyPath, str]]:
        yield from super().regions_used()
        if self.replication is not None and self.replication.regions is not None:
            for i, name in enumerate(self.replication.regions):
                yield ("replication", "regions", i), name

    def instances(self) -> int:
        """Every node of every shard (leader and followers)."""
        followers = self.replication.followers if self.replication is not None else 0
        return self.replicas * (1 + followers)

    def ring_tokens(self, components: dict[str, ComponentParams]) -> int:
        """The shard map's md5 ring (``consistent_hash``): ``vnodes`` tokens a shard."""
        shards = self.shards
        return shards.count * shards.vnodes if shards and shards.scheme == "consistent_hash" \
            else 0

    def key_state_bytes(self, keys: int) -> float:
        """Per key: its shard (routing memo), its committed version, and its applied version
        on each follower, one ``dict`` entry each."""
        followers = self.replication.followers if self.replication is not None else 0
        return keys * KEY_ENTRY_BYTES * (2 + followers)

    def check_fault(self, fault: Any) -> Iterable[tuple[str, str]]:
        node = getattr(fault, "node", None)
        if node is not None:
            n = self.replication.followers if self.replication is not None else 0
            names = ["leader", *(f"follower{j}" for j in range(1, n + 1))]
            if node not in names:
                yield "node", (f"unknown node {node!r}: a shard of this database has "
                               + ", ".join(names))
        if fault.kind != "reshard":
            return
        if self.shards is None:
            yield "target", "resharding needs a shards block on the database"
            return
        boundaries = getattr(fault, "boundaries", None)
        if self.shards.scheme != "range":
            if boundaries is not None:
                yield "boundaries", f"boundaries apply to scheme range, not {self.shards.scheme}"
        elif boundaries is None:
            if self.shards.key_space is None:
                yield "boundaries", ("a range-sharded database without key_space needs the new "
                                     "boundaries")
            elif self.shards.key_space < fault.shards:
                yield "shards", f"more shards than keys (key_space {self.shards.key_space})"
        else:
            problem = boundaries_problem(boundaries, fault.shards)
            if problem:
                yield "boundaries", problem


# --------------------------------------------------------------------------------------------
# shard maps


class ReshardEvent(TimelineEvent):
    """The target database's shard map changes ``at`` a time to ``shards`` shards (adding or
    removing shards); the fraction of keys that move is recorded as a ``reshard`` event.
    Instantaneous: it has no duration. ``boundaries`` gives the new split keys of a
    range-sharded database."""

    kind: Literal["reshard"] = "reshard"
    target: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    shards: int = Field(ge=1, le=10_000)
    boundaries: list[int] | None = None

    def grows_to(self) -> int | None:
        """The database has (at least) ``shards`` shard instances once it has happened."""
        return self.shards

    def prepare(self, instances: list[Any], timeline: Any) -> list[Any]:
        """Provision the shards the new map needs (before the run, as instances)."""
        return list(instances[0].prepare_reshard(self.shards))

    def fire(self, instances: list[Any], timeline: Any) -> None:
        """Change the shard map now; the keys moved are measured over the key space."""
        instances[0].reshard(self, timeline.key_space)
