"""A database: shards, a leader and followers per shard, a connection pool per node, versions.

A ``kind: database`` component is a set of **shards** (instances ``db[0] .. db[n-1]``); a
reference to ``db`` routes each request to the shard holding its key (hash mod N, consistent
hashing with virtual nodes, or key ranges), not at random. Each shard is a **leader** and
``replication.followers`` **followers**; every node has its own **connection pool**. The store
keeps a **version per key**: every read reports the version it returned and whether that was
older than the latest committed one at that instant, so staleness is measured, not assumed.

Modelling assumptions (each stated where it is used):

- A node runs at most ``pool.size`` queries at once, one per connection, each taking its
  service time regardless of the others (no contention beyond the pool). Requests wait for a
  connection in FIFO order; one that has waited ``pool.acquire_timeout`` gives up with status
  ``timeout`` (as HikariCP's ``connectionTimeout``); with ``pool.max_waiting`` set, an arrival
  that finds that many waiting is refused at once with status ``rejected``. The pool belongs to
  the node and is shared by every caller, as a pgbouncer in front of each server.
- A write runs on the shard's leader, commits at the end of its service time (the key's version
  is bumped then) and is shipped to each follower, which applies it ``lag`` later, drawn
  independently per write and follower from ``replication.lag`` (network plus apply time; the
  WARS model of Probabilistically Bounded Staleness). A follower keeps the newest version it
  has applied of each key. With ``replication.ordered`` writes are applied in commit order,
  write ``i`` at ``max(applied_{i-1}, committed_i + lag_i)``. Applying costs the follower no
  connection; writes reaching a crashed shard are applied when it recovers.
- ``writes: sync`` holds the leader's connection until every follower has applied the write;
  ``writes: quorum`` until ``write_quorum`` of the ``followers + 1`` nodes have it, the leader
  counting as one (Dynamo's W; ``write_quorum: 1`` is asynchronous, ``followers + 1`` is
  synchronous). The write's latency is then the k-th reply.
- Reads go to the leader, to a follower (``round_robin``, ``random``, ``least_loaded``: fewest
  requests waiting or in service at the node), or with ``read_your_writes``: a session is the
  **request's workload and key** — a read of key k by workload w goes to the next follower in
  round-robin order unless that follower has not applied w's last write of k, in which case it
  goes to the leader; the check is repeated when the follower answers, so a write by the same
  session committed meanwhile also redirects the read to the leader. ``reads: quorum`` asks all
  ``followers + 1`` nodes and answers with the newest version among the first ``read_quorum``
  replies (its latency is the k-th order statistic of the nodes' latencies; the slower replies
  still load their nodes).
- A read returns the version of the key held by the node that serves it, at the instant it
  finishes; it is **stale** when that is older than the leader's committed version at the same
  instant. Keys never written have version 0. Requests without a key (``key = -1``) are spread
  over the shards at random and carry no version.
- Resharding (a ``reshard`` event on the timeline) changes the shard map at once; keys that move
  take their latest committed version with them (an instantaneous, consistent migration: the new
  shard's followers hold it too). Requests already at a shard finish there.
- **Node crashes** (``crash`` with ``node: leader`` — the node leading then — or
  ``node: followerN``; a region outage crashes the nodes placed in the region): the node fails
  what it holds and refuses (or black-holes) what reaches it. A read meant for a crashed
  follower goes to the next follower up (the leader if none): drivers' server selection skips a
  member their monitor sees down (detection assumed immediate for reads). A crashed follower
  holds the writes shipped to it and applies them all when it is back (no replay time). While
  the leader is down, writes and leader reads fail and followers hold what it had shipped
  them but they had not applied yet (it never reaches them if another node is promoted).
- **Failover** (``replication.failover``): ``detection`` after the leader's crash (a leader back
  sooner keeps leading) the follower up with the fewest writes not applied (lowest index on
  ties) is chosen and leads ``promotion`` later. Writes of the old leader it had not applied
  are gone: **lost** if they had been acknowledged (``async``; under ``quorum`` only a write
  short of its quorum can be missing, so none is lost with ``ordered`` apply), **discarded** if
  the client got an error; each such key's committed version becomes the new leader's, other
  followers are rewound to it and keep the writes it has. The old leader rejoins as a follower
  holding the new leader's data and catches up when it is back. Once declared dead it is fenced
  (it leads again only if no follower is up to promote). A whole-shard crash never fails over.

Records per shard one span per request (``start`` = connection acquired; ``NaN`` for quorum
reads, whose waits are per node). Gauges per shard: ``reads_total``, ``writes_total`` (requests
arriving), ``reads_ok_total``, ``stale_reads_total``, ``served_total``, ``failed_total``,
``rejected_total``, ``pool_timeouts_total``, ``pool_acquired_total``, ``pool_wait_time_total``
(seconds waited by requests that got a connection), ``workers`` (connections over all nodes),
``busy``, ``queue_length``, ``in_system`` and their integrals ``busy_time_total``,
``queue_time_total``, ``system_time_total`` (so utilisation is exact), ``shard_active`` (1 while
the shard map includes the shard); per node (label ``leader``, ``follower1``...):
``node_reads_total``; per follower: ``replica_lag`` (seconds since the oldest committed write
it has not applied, 0 when caught up) and ``replication_backlog`` (writes not yet applied).
With ``failover``: ``leader_index`` (0 = the node built as ``leader``, N = ``followerN``),
``failovers_total``, ``lost_writes_total``, ``discarded_writes_total``, per node ``node_up``,
and ``replica_lag``/``replication_backlog`` for every node (the leader's are 0).
Events: ``reshard`` (see :func:`simulator.analysis.data.reshard_summary`), ``failover``
(:func:`simulator.analysis.data.failover_summary`).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import Annotated, Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator
from simpy import AnyOf, Event, Timeout

from simulator.components.base import (
    BuildContext,
    Component,
    ComponentParams,
    FaultState,
    Handler,
    KeyPath,
)
from simulator.components.load_balancer import hash64, hash_ring
from simulator.distributions import Constant, Distribution, Duration, Exponential
from simulator.messages import CANCELLED, ERROR, OK, REJECTED, TIMEOUT, Request
from simulator.registry import register

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

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(1, ge=1, le=10_000)
    scheme: Scheme = "consistent_hash"
    vnodes: int = Field(150, ge=1, le=100_000)
    boundaries: list[int] | None = None
    key_space: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
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

    model_config = ConfigDict(extra="forbid", frozen=True)

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

    model_config = ConfigDict(extra="forbid", frozen=True)

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

    model_config = ConfigDict(extra="forbid", frozen=True)

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


class _Node:
    """One server of a shard (leader or follower): its pool and, for a follower, its log.

    ``label`` and ``index`` name the node as built (``leader`` = 0, ``followerN`` = N); after a
    failover the node leading may be ``follower2``.
    """

    __slots__ = ("abandoned", "acquired", "applied", "backlog", "black_hole", "busy",
                 "busy_area", "crash_event", "down", "epoch", "held", "in_system", "index",
                 "inflight", "label", "last_due", "pool_wait", "queue", "queue_area", "reads",
                 "region", "size", "system_area", "timeouts", "waiting")

    def __init__(self, label: str, size: int, region: str | None, env: Any, index: int = 0
                 ) -> None:
        self.label = label
        self.index = index
        # a node crash (``crash`` with ``node``, or its region's outage): what it holds fails
        self.down = False
        self.black_hole = False
        self.epoch = 0
        self.crash_event = Event(env)
        self.region = region
        self.size = size
        self.busy = 0
        self.waiting = 0
        self.in_system = 0
        self.queue: deque[Event] = deque()
        self.abandoned: set[Event] = set()
        self.busy_area = 0.0
        self.queue_area = 0.0
        self.system_area = 0.0
        self.acquired = 0
        self.pool_wait = 0.0
        self.timeouts = 0
        self.reads = 0
        self.applied: dict[int, int] = {}
        # replication: writes in commit order as [committed_at, done?, seq, key, version,
        # acks] (done: applied, or void after a failover); unapplied count
        self.inflight: deque[list[Any]] = deque()
        self.backlog = 0
        self.last_due = 0.0
        self.held: list[list[Any]] = []  # arrived while it could not apply them

    def take(self, now: float) -> None:
        """Take a free connection at ``now`` (the caller has checked ``busy < size``)."""
        self.busy += 1
        self.in_system += 1
        self.system_area -= now
        self.acquired += 1
        self.busy_area -= now

    def lag(self, now: float) -> float:
        """Seconds since the oldest committed write not yet applied here (0 if none)."""
        inflight = self.inflight
        while inflight and inflight[0][1]:
            inflight.popleft()
        return now - inflight[0][0] if inflight else 0.0


class _Acks:
    """Replies awaited by one write: the event fires when ``need`` followers have applied it."""

    __slots__ = ("event", "got", "need")

    def __init__(self, need: int, event: Event) -> None:
        self.need = need
        self.got = 0
        self.event = event


class _QuorumRead:
    """The replies of one quorum read: done after ``k`` successes or too many failures."""

    __slots__ = ("best", "event", "failed", "k", "n", "ok", "status")

    def __init__(self, k: int, n: int, event: Event) -> None:
        self.k, self.n, self.event = k, n, event
        self.ok = 0
        self.failed = 0
        self.best = 0
        self.status = OK

    def reply(self, proc: Any) -> None:
        if self.event.triggered:
            return
        status, version = proc.value
        if status == OK:
            self.ok += 1
            self.best = max(self.best, version)
            if self.ok == self.k:
                self.event.succeed()
        else:
            self.failed += 1
            self.status = status
            if self.failed > self.n - self.k:
                self.event.succeed()


# --------------------------------------------------------------------------------------------
# the shard


@register("database")
class Database(FaultState, Component):
    """One shard of a database: a leader and its followers, each with a connection pool.

    See the module documentation for the model, what it records and its assumptions.
    Faults: ``crash`` takes the whole shard down (every node): requests it holds fail at once,
    new ones are refused or black-holed, replication pauses; it recovers with its data.
    ``crash`` with ``node`` takes one node down (the leader may fail over).
    ``slow`` multiplies service times, ``error`` fails arriving requests with a probability,
    ``latency`` delays arriving requests; ``reshard`` (on the component) changes the shard map.
    """

    Params = DatabaseParams
    supported_faults = frozenset({"crash", "slow", "error", "latency", "reshard"})
    cluster: DatabaseCluster

    def __init__(self, group: str, index: int, params: DatabaseParams, ctx: BuildContext
                 ) -> None:
        super().__init__(group, index, params, ctx)
        if params.shards is not None:
            self.name = f"{group}[{index}]"
        rep = params.replication
        size = params.pool.size
        env = ctx.env
        self.leader = _Node("leader", size, self.region, env)
        self.followers = [_Node(f"follower{j + 1}", size,
                                rep.regions[j] if rep is not None and rep.regions else self.region,
                                env, j + 1)
                          for j in range(rep.followers if rep is not None else 0)]
        self.nodes = [self.leader, *self.followers]
        self._by_label = {nd.label: nd for nd in self.nodes}
        self._acquire_timeout = params.pool.acquire_timeout
        self._max_waiting = (math.inf if params.pool.max_waiting is None
                             else params.pool.max_waiting)
        self._write_ops = frozenset(params.write_ops)
        st = params.service_time
        self._service_times = dict(st) if isinstance(st, dict) else {"*": st}
        self._draws: dict[str, Callable[[], float]] = {}
        self._reads: ReadRouting = rep.reads if rep is not None else "leader"
        n = len(self.nodes)
        if rep is None or rep.writes == "async":
            self._acks_needed = 0
        elif rep.writes == "sync":
            self._acks_needed = n - 1
        else:
            self._acks_needed = int(rep.write_quorum or 1) - 1
        self._read_quorum = int(rep.read_quorum or 1) if rep is not None else 1
        self._ordered = rep is not None and rep.ordered
        self._lags = ([ctx.sampler(self.name, f"replication_lag:{j + 1}", rep.lag)
                       for j in range(len(self.followers))] if rep is not None else [])
        self._lag_of = dict(zip(self.followers, self._lags, strict=True))
        # regions: the link from the leader's region to each follower in another region
        self._net = ctx.regions
        self._links: list[Callable[[], float] | None] = [None] * len(self.followers)
        self._nearest: dict[str, list[_Node]] = {}
        if self._net is not None and rep is not None:
            for j, f in enumerate(self.followers):
                d = (self._net.spec.link(self.region, f.region)
                     if self.region is not None and f.region is not None
                     and f.region != self.region else None)
                if d is not None:
                    self._links[j] = ctx.sampler(self.name, f"replication_link:{j + 1}", d)
        self._link_of: dict[tuple[_Node, _Node], Callable[[], float] | None] = {
            (self.leader, f): link for f, link in zip(self.followers, self._links, strict=True)}
        self._remote_followers = any(
            f.region != self.region for f in self.followers) and self._net is not None
        if self._remote_followers:
            assert self._net is not None
            self._net.listeners.append(self._release_held)
        pick_rng = ctx.generator(self.name, "read_choice")
        self._uniform = ctx.streams.batched(self.name, "read_choice_uniform",
                                            lambda rng, k: rng.random(k))
        self._rr = int(pick_rng.integers(0, max(1, len(self.followers))))
        # shared with the cluster (set by DatabaseCluster)
        self._committed: dict[int, int] = {}
        self._sessions: dict[int, dict[int, int]] = {}
        self.active = True
        # counters
        self.reads_total = 0
        self.writes_total = 0
        self.reads_ok_total = 0
        self.stale_reads_total = 0
        self.served_total = 0
        self.failed_total = 0
        self.rejected_total = 0
        rec = ctx.recorder
        self._rec = rec if ctx.record_spans else None
        self._code = rec.instance_code(group, self.name)
        # faults
        self._init_fault_state(ctx, self.name)
        # node crashes and failover
        self._seq = 0  # writes shipped by this shard (a log position)
        self._leader_down = False
        self._nodes_down = 0
        self._failover = rep.failover if rep is not None else None
        self._failing_over: _Failover | None = None
        self.failovers_total = 0
        self.lost_writes_total = 0
        self.discarded_writes_total = 0
        if self._failover is not None:
            self._detect = ctx.sampler(self.name, "failover_detection", self._failover.detection)
            self._promote = ctx.sampler(self.name, "failover_promotion", self._failover.promotion)

    @classmethod
    def group_target(cls, name: str, members: list[Component], ctx: BuildContext
                     ) -> DatabaseCluster:
        """A reference to a database routes each request to the shard holding its key."""
        return DatabaseCluster(name, [m for m in members if isinstance(m, Database)], ctx)

    # ---- lifecycle ----------------------------------------------------------------------
    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        env = self.env
        nodes = self.nodes

        def total(attr: str) -> Callable[[], float]:
            return lambda: sum(getattr(nd, attr) for nd in nodes)

        def integral(area: str, count: str) -> Callable[[], float]:
            return lambda: sum(getattr(nd, area) + getattr(nd, count) * env._now
                               for nd in nodes)

        yield "workers", "", lambda: self.params.pool.size * len(nodes)
        yield "busy", "", total("busy")
        yield "queue_length", "", total("waiting")
        yield "in_system", "", total("in_system")
        yield "busy_time_total", "", integral("busy_area", "busy")
        yield "queue_time_total", "", integral("queue_area", "waiting")
        yield "system_time_total", "", integral("system_area", "in_system")
        yield "reads_total", "", lambda: self.reads_total
        yield "writes_total", "", lambda: self.writes_total
        yield "reads_ok_total", "", lambda: self.reads_ok_total
        yield "stale_reads_total", "", lambda: self.stale_reads_total
        yield "served_total", "", lambda: self.served_total
        yield "failed_total", "", lambda: self.failed_total
        yield "rejected_total", "", lambda: self.rejected_total
        yield "pool_timeouts_total", "", total("timeouts")
        yield "pool_acquired_total", "", total("acquired")
        yield "pool_wait_time_total", "", total("pool_wait")
        yield "shard_active", "", lambda: 1.0 if self.active else 0.0
        for nd in nodes:
            yield "node_reads_total", nd.label, functools.partial(getattr, nd, "reads")
        # with failover any node may follow (the leader's own log is empty: lag 0)
        for nd in (self.nodes if self._failover is not None else self.followers):
            yield "replica_lag", nd.label, functools.partial(_lag_now, nd, env)
            yield "replication_backlog", nd.label, functools.partial(_backlog, nd)
        if self._failover is not None:
            yield "leader_index", "", lambda: float(self.leader.index)
            yield "failovers_total", "", lambda: self.failovers_total
            yield "lost_writes_total", "", lambda: self.lost_writes_total
            yield "discarded_writes_total", "", lambda: self.discarded_writes_total
            for nd in nodes:
                yield "node_up", nd.label, functools.partial(_node_up, nd)

    # ---- serving ------------------------------------------------------------------------
    def _draw(self, op: str, write: bool) -> Callable[[], float]:
        draw = self._draws.get(op)
        if draw is None:
            st = self._service_times
            cls_entry = "write" if write else "read"
            chosen = op if op in st else cls_entry if cls_entry in st else "*"
            draw = self.ctx.sampler(self.group, f"service_time:{chosen}", st[chosen])
            self._draws[op] = draw
        return draw

    def handle(self, req: Request, op: str, src: str | None = None) -> Handler:
        """Serve ``req``; ``src`` is the caller's region when the scenario has regions (the
        cluster's regional view passes it): the request then travels to the node serving it."""
        if src is None:
            return self._serve(req, op, None)
        return self._remote(req, op, src)

    def _remote(self, req: Request, op: str, src: str) -> Handler:
        """The request comes from region ``src``: pick the node, cross the link to its region."""
        net = self._net
        assert net is not None
        mode = self._reads
        chosen: _Node | None = None
        node = self.leader
        if op not in self._write_ops and mode not in ("leader", "quorum"):
            chosen = node = self._nearest_node(src) if mode == "nearest" else self._choose(req)
        if node.region is None:
            return self._serve(req, op, chosen)
        out, back, pair = net.link(src, node.region)
        if node is not self.leader and node.region in net.down:
            return net.cross(self._node_down, req, op, out, back, pair)
        if chosen is None:
            return net.cross(self._serve_any, req, op, out, back, pair)
        return net.cross(functools.partial(self._serve_at, chosen), req, op, out, back, pair)

    def _serve_any(self, req: Request, op: str) -> Handler:
        return self._serve(req, op, None)

    def _serve_at(self, node: _Node, req: Request, op: str) -> Handler:
        return self._serve(req, op, node)

    def _node_down(self, req: Request, op: str) -> Handler:
        """A follower whose region is down refuses the read."""
        if op in self._write_ops:
            self.writes_total += 1
        else:
            self.reads_total += 1
        return self._end(req, op, self.env._now, math.nan, ERROR)
        yield  # pragma: no cover

    def _nearest_node(self, src: str) -> _Node:
        """The node nearest to ``src`` whose region is up (the leader on ties)."""
        net = self._net
        assert net is not None
        ranked = self._nearest.get(src)
        if ranked is None:
            ranked = self._nearest[src] = sorted([self.leader, *self.followers], key=lambda n: (
                0.0 if n.region is None else net.mean(src, n.region)))  # stable: leader first
        if net.down or self._nodes_down:
            return next((n for n in ranked if n.region not in net.down and not n.down),
                        self.leader)
        return ranked[0]

    def _serve(self, req: Request, op: str, node: _Node | None) -> Handler:
        env = self.env
        arrival = env._now
        write = op in self._write_ops
        if write:
            self.writes_total += 1
        else:
            self.reads_total += 1
        draw = self._draws.get(op) or self._draw(op, write)
        work = draw() * req.work
        if self._faulted:
            if not (yield from self._meet_faults()):
                return self._end(req, op, arrival, math.nan, ERROR)
            arrival = env._now
            work *= self._slow_factor
        if write:
            return (yield from self._write(req, op, arrival, work))
        if node is not None:  # chosen by _remote before the request crossed the link
            return (yield from self._read(node, req, op, arrival, work))
        mode = self._reads
        if mode == "leader" or mode == "nearest":
            return (yield from self._read(self.leader, req, op, arrival, work))
        if mode == "quorum":
            return (yield from self._quorum_read(req, op, arrival, work, draw))
        return (yield from self._read(self._choose(req), req, op, arrival, work))

    def _choose(self, req: Request) -> _Node:
        followers = self.followers
        mode = self._reads
        if mode == "random":
            node = followers[int(self._uniform() * len(followers))]
            return self._next_up(node) if node.down else node
        if mode == "least_loaded":
            if self._nodes_down:
                followers = [f for f in followers if not f.down] or [self.leader]
            loads = [f.in_system for f in followers]
            m = min(loads)
            ties = [f for f, x in zip(followers, loads, strict=True) if x == m]
            return ties[0] if len(ties) == 1 else ties[int(self._uniform() * len(ties))]
        node = followers[self._rr % len(followers)]
        self._rr += 1
        if node.down:
            node = self._next_up(node)
        if mode == "read_your_writes" and self._behind(node, req):
            return self.leader
        return node

    def _next_up(self, node: _Node) -> _Node:
        """A read meant for a crashed follower goes to the next follower up, in round-robin
        order, or to the leader if none is (the driver's server selection skips a member its
        monitor sees down, as MongoDB's ``secondaryPreferred`` or a health-checked pool)."""
        followers = self.followers
        i = followers.index(node)
        n = len(followers)
        return next((followers[(i + d) % n] for d in range(1, n)
                     if not followers[(i + d) % n].down), self.leader)

    def _behind(self, node: _Node, req: Request) -> bool:
        """Whether ``node`` lacks the last write of the request's session (workload, key)."""
        key = req.key
        if key < 0:
            return False
        session = self._sessions.get(req.workload)
        return session is not None and session.get(key, 0) > node.applied.get(key, 0)

    def _acquire(self, node: _Node, req: Request, arrival: float
                 ) -> Generator[Event, Any, tuple[int, float]]:
        """Get a connection at ``node``: (``OK``, start) or (failure status, NaN)."""
        if node.down:  # a crashed node refuses, or never answers
            if node.black_hole:
                yield Event(self.env)
            return ERROR, math.nan
        if node.busy < node.size:
            node.take(arrival)
            return OK, arrival
        if node.waiting >= self._max_waiting:
            self.rejected_total += 1
            return REJECTED, math.nan
        env = self.env
        epoch = node.epoch
        ev = Event(env)
        node.queue.append(ev)
        node.waiting += 1
        node.queue_area -= arrival
        node.in_system += 1
        node.system_area -= arrival
        timeout = self._acquire_timeout
        if timeout is None and not self._crashable:
            yield ev
        else:
            waits = [ev]
            if timeout is not None:
                waits.append(Timeout(env, timeout))
            if self._crashable:
                waits.append(node.crash_event)
            yield AnyOf(env, waits)
        if node.epoch != epoch:
            return ERROR, math.nan  # crashed meanwhile: the crash closed the books
        now = env._now
        node.queue_area += now
        if not ev.triggered:  # gave up waiting
            node.abandoned.add(ev)
            node.waiting -= 1
            node.in_system -= 1
            node.system_area += now
            node.timeouts += 1
            return TIMEOUT, math.nan
        node.acquired += 1
        node.pool_wait += now - arrival
        node.busy_area -= now
        if req.cancelled:  # a hedged copy nobody waits for any more
            self._release(node)
            return CANCELLED, now
        return OK, now

    def _release(self, node: _Node) -> None:
        now = self.env._now
        node.busy_area += now
        node.system_area += now
        node.in_system -= 1
        queue = node.queue
        while queue:
            ev = queue.popleft()
            if ev in node.abandoned:
                node.abandoned.discard(ev)
                continue
            node.waiting -= 1
            ev.succeed()  # the connection passes to the next waiter
            return
        node.busy -= 1

    def _work(self, node: _Node, work: float) -> Generator[Event, Any, bool]:
        """Hold a connection of ``node`` for ``work`` seconds; False if the node (or the whole
        shard) crashed meanwhile."""
        if self._crashable:
            epoch = node.epoch
            yield AnyOf(self.env, (Timeout(self.env, work), node.crash_event))
            return node.epoch == epoch
        yield Timeout(self.env, work)
        return True

    def _read(self, node: _Node, req: Request, op: str, arrival: float, work: float
              ) -> Handler:
        if node.busy < node.size and not self._crashable:  # the common case, inlined
            node.take(arrival)
            start = arrival
            yield Timeout(self.env, work)
        else:
            status, start = yield from self._acquire(node, req, arrival)
            if status != OK:
                return self._end(req, op, arrival, start, status)
            if not (yield from self._work(node, work)):
                return self._end(req, op, arrival, start, ERROR)
        key = req.key
        if key >= 0:
            committed = self._committed.get(key, 0)
            version = committed if node is self.leader else node.applied.get(key, 0)
            if version < committed and self._reads == "read_your_writes" and self._behind(
                    node, req):
                # the session wrote the key while this read waited: ask the leader instead
                self._release(node)
                node = self.leader
                status, _ = yield from self._acquire(node, req, self.env._now)
                if status != OK:
                    return self._end(req, op, arrival, start, status)
                if not (yield from self._work(node, work)):
                    return self._end(req, op, arrival, start, ERROR)
                version = committed = self._committed.get(key, 0)
            req.version = version
            if version < committed:
                req.stale = True
                self.stale_reads_total += 1
        node.reads += 1
        self.reads_ok_total += 1
        self._release(node)
        return self._end(req, op, arrival, start, OK)

    def _write(self, req: Request, op: str, arrival: float, work: float) -> Handler:
        leader = self.leader
        if leader.busy < leader.size and not self._crashable:  # the common case, inlined
            leader.take(arrival)
            start = arrival
            yield Timeout(self.env, work)
        else:
            status, start = yield from self._acquire(leader, req, arrival)
            if status != OK:
                return self._end(req, op, arrival, start, status)
            if not (yield from self._work(leader, work)):
                return self._end(req, op, arrival, start, ERROR)
        key = req.key
        version = 0
        if key >= 0:
            version = self._committed.get(key, 0) + 1
            self._committed[key] = version
            req.version = version
            if self._reads == "read_your_writes":
                session = self._sessions.get(req.workload)
                if session is None:
                    session = self._sessions[req.workload] = {}
                session[key] = version
        if self.followers:
            acks = self._replicate(key, version)
            if acks is not None:
                if self._crashable:
                    epoch = leader.epoch
                    yield AnyOf(self.env, (acks.event, leader.crash_event))
                    if leader.epoch != epoch:  # the leader crashed before enough acks
                        return self._end(req, op, arrival, start, ERROR)
                else:
                    yield acks.event
        self._release(leader)
        return self._end(req, op, arrival, start, OK)

    def _quorum_read(self, req: Request, op: str, arrival: float, work: float,
                     draw: Callable[[], float]) -> Handler:
        env = self.env
        epoch = self._epoch
        nodes = self.nodes
        quorum = _QuorumRead(self._read_quorum, len(nodes), Event(env))
        for i, node in enumerate(nodes):
            w = work if i == 0 else draw() * req.work * self._slow_factor
            proc = env.process(self._replica_read(node, req, arrival, w))
            proc.callbacks.append(quorum.reply)
        if self._crashable:
            yield AnyOf(env, (quorum.event, self._crash_event))
            if self._epoch != epoch:
                return self._end(req, op, arrival, math.nan, ERROR)
        else:
            yield quorum.event
        if quorum.ok < quorum.k:
            return self._end(req, op, arrival, math.nan, quorum.status)
        key = req.key
        if key >= 0:
            req.version = quorum.best
            if quorum.best < self._committed.get(key, 0):
                req.stale = True
                self.stale_reads_total += 1
        self.reads_ok_total += 1
        return self._end(req, op, arrival, math.nan, OK)

    def _replica_read(self, node: _Node, req: Request, arrival: float, work: float
                      ) -> Generator[Event, Any, tuple[int, int]]:
        """One node's part of a quorum read: (status, version it holds when it answers)."""
        status, _ = yield from self._acquire(node, req, arrival)
        if status != OK:
            return status, 0
        if not (yield from self._work(node, work)):
            return ERROR, 0
        key = req.key
        version = 0
        if key >= 0:
            version = (self._committed.get(key, 0) if node is self.leader
                       else node.applied.get(key, 0))
        node.reads += 1
        self._release(node)
        return OK, version

    def _end(self, req: Request, op: str, arrival: float, start: float, status: int) -> int:
        if status == OK:
            self.served_total += 1
        elif status in (ERROR, TIMEOUT):
            self.failed_total += 1
        rec = self._rec
        if rec is not None:
            rec.span_id.append(req.id)
            rec.span_instance.append(self._code)
            rec.span_op.append(op)
            rec.span_arrival.append(arrival)
            rec.span_start.append(start)
            rec.span_end.append(self.env._now)
            rec.span_status.append(status)
        return status

    # ---- replication --------------------------------------------------------------------
    def _replicate(self, key: int, version: int) -> _Acks | None:
        """Ship a write just committed to every follower; return what a quorum waits for.

        Each follower applies it after its own draw of the lag: one timer per write and
        follower, no Process. Unordered (the default), each write is applied at its own
        ``committed + lag``; ordered, at ``max(previous apply, committed + lag)``.
        """
        env = self.env
        now = env._now
        need = self._acks_needed
        acks = _Acks(need, Event(env)) if need else None
        ordered = self._ordered
        apply = self._apply
        self._seq = seq = self._seq + 1
        for f, lag, link in zip(self.followers, self._lags, self._links, strict=True):
            item = [now, False, seq, key, version, acks]
            f.inflight.append(item)
            f.backlog += 1
            delay = lag() if link is None else lag() + link()
            if ordered:
                due = max(f.last_due, now + delay)
                f.last_due = due
                delay = due - now
            Timeout(env, delay).callbacks.append(functools.partial(apply, f, item))
        return acks

    def _apply(self, node: _Node, item: list[Any], _: Any = None) -> None:
        """A follower applies one write (held back while the shard, the leader or the follower
        is down, or while the follower's region is down or cut off from the leader's)."""
        if item[1]:
            return  # voided by a failover: the new leader never had it
        if (not self.up or self._leader_down or node.down
                or (self._remote_followers and self._cut_off(node))):
            node.held.append(item)
            return
        item[1] = True
        key, version, acks = item[3], item[4], item[5]
        node.backlog -= 1
        applied = node.applied
        if key >= 0 and applied.get(key, 0) < version:
            applied[key] = version
        inflight = node.inflight
        while inflight and inflight[0][1]:
            inflight.popleft()
        if acks is not None:
            acks.got += 1
            if acks.got == acks.need and not acks.event.triggered:
                acks.event.succeed()

    # ---- faults -------------------------------------------------------------------------
    def prepare_faults(self, kinds: set[str]) -> None:
        self._crashable = "crash" in kinds

    def crash(self, black_hole: bool) -> None:
        for nd in self.nodes:
            self._close(nd)
        self._go_down(black_hole)

    def _close(self, nd: _Node) -> None:
        """A node crashes: close its books and fail every request it holds."""
        now = self.env._now
        nd.busy_area += nd.busy * now
        nd.queue_area += nd.waiting * now
        nd.system_area += nd.in_system * now
        nd.busy = nd.waiting = nd.in_system = 0
        waiting = list(nd.queue)
        nd.queue.clear()
        nd.abandoned.clear()
        nd.epoch += 1
        for ev in waiting:
            if not ev.triggered:
                ev.succeed()
        crashed, nd.crash_event = nd.crash_event, Event(self.env)
        crashed.succeed()

    def recover(self) -> None:
        self.up = True
        self._release_held()
        self._update_faulted()
        if self._failing_over is not None:
            self._failing_over.wake()

    def _release_held(self) -> None:
        """Apply the writes held back, in order (those still cut off are held again)."""
        for f in self.followers:
            held, f.held = f.held, []
            for item in held:
                self._apply(f, item)

    def _cut_off(self, node: _Node) -> bool:
        net = self._net
        assert net is not None
        return node.region in net.down or net.cut(self.leader.region, node.region)

    # ---- node crashes and failover ------------------------------------------------------
    def placed_in(self, region: str) -> bool:
        return any(nd.region == region for nd in self.nodes)

    def crash_region(self, region: str, black_hole: bool) -> None:
        """A region outage crashes the shard's nodes placed there: the whole shard if they all
        are, else only those (a leader among them may then fail over)."""
        hit = [nd for nd in self.nodes if nd.region == region]
        if len(hit) == len(self.nodes):
            self.crash(black_hole)
            return
        hit.sort(key=lambda nd: nd is self.leader)  # followers first: no promotion to them
        for nd in hit:
            self._crash_node(nd, black_hole)

    def recover_region(self, region: str) -> None:
        hit = [nd for nd in self.nodes if nd.region == region]
        if len(hit) == len(self.nodes):
            self.recover()
            return
        for nd in hit:
            self._recover_node(nd)

    def crash_node(self, node: str, black_hole: bool) -> str:
        nd = self.leader if node == "leader" else self._by_label[node]
        self._crash_node(nd, black_hole)
        return nd.label

    def recover_node(self, node: str) -> None:
        self._recover_node(self._by_label[node])

    def _crash_node(self, nd: _Node, black_hole: bool) -> None:
        if nd.down:
            return
        nd.down = True
        nd.black_hole = black_hole
        self._nodes_down += 1
        self._close(nd)
        if nd is self.leader:
            self._leader_down = True
            if self._failover is not None and self._failing_over is None:
                self._failing_over = _Failover(self, nd)
                self.env.process(self._failing_over.run())

    def _recover_node(self, nd: _Node) -> None:
        if not nd.down:
            return
        fo = self._failing_over
        if fo is not None and nd is fo.old and fo.detected:
            fo.old_back = True  # declared dead: fenced, it rejoins as a follower once promoted
            fo.wake()
            return
        nd.down = False
        self._nodes_down -= 1
        if nd is self.leader:
            self._leader_down = False
            if fo is not None:
                fo.cancelled = True  # back before it was declared dead: it keeps leading
                self._failing_over = None
        elif fo is not None:
            fo.wake()
        self._release_held()  # the node catches up from the leader's log

    def _elect(self, fo: _Failover) -> _Node | None:
        """The follower to promote: up, with the fewest writes not yet applied (the highest
        applied position when applying in order), the lowest index on ties; the old leader if
        it is back and no follower is up."""
        if not self.up:
            return None
        up = [f for f in self.followers if not f.down]
        if up:
            return min(up, key=lambda f: (f.backlog, f.index))
        return fo.old if fo.old_back else None

    def _promote_node(self, fo: _Failover, new: _Node) -> None:
        """``new`` becomes the leader now; writes it lacks are lost; the old leader follows."""
        now = self.env._now
        old = fo.old
        lost = discarded = 0
        if new is not old:
            missing = [it for it in new.inflight if not it[1]]
            gone = {it[2] for it in missing}
            committed = self._committed
            for it in missing:
                it[1] = True
                acks = it[5]
                if acks is None or acks.event.triggered:
                    lost += 1  # acknowledged to the client, now gone
                else:
                    discarded += 1  # the client got an error: never acknowledged
                key = it[3]
                if key >= 0:  # the key's committed version is what the new leader holds
                    have = new.applied.get(key, 0)
                    if committed.get(key, 0) > have:
                        committed[key] = have
                        for session in self._sessions.values():
                            if session.get(key, 0) > have:
                                session[key] = have
            new.inflight.clear()
            new.held = []
            new.backlog = 0
            for f in self.followers:
                if f is new:
                    continue
                for it in f.inflight:  # the other followers follow the new leader's log
                    if not it[1] and it[2] in gone:
                        it[1] = True
                        f.backlog -= 1
                f.held = [it for it in f.held if not it[1]]
                for it in missing:  # and are rewound where they got ahead of it
                    key = it[3]
                    if key >= 0 and f.applied.get(key, 0) > committed.get(key, 0):
                        f.applied[key] = committed.get(key, 0)
            # the old leader rejoins as a follower, rewound to the new leader's data
            old.applied = dict(committed)
            old.inflight.clear()
            old.held = []
            old.backlog = 0
            old.last_due = now
            self.leader = new
            self.followers = [nd for nd in self.nodes if nd is not new]
            self._lags = [self._lag_for(f) for f in self.followers]
            self._links = [self._link_for(new, f) for f in self.followers]
            self._nearest.clear()
        if fo.old_back:
            old.down = False
            self._nodes_down -= 1
        self._leader_down = False
        self._failing_over = None
        self.failovers_total += 1
        self.lost_writes_total += lost
        self.discarded_writes_total += discarded
        self.ctx.recorder.event(
            now, self.group, self.name, "failover",
            f"crashed={old.label} promoted={new.label} crashed_at={fo.crashed_at:.9g} "
            f"detected_at={fo.detected_at:.9g} promoted_at={now:.9g} "
            f"duration={now - fo.crashed_at:.9g} lost_writes={lost} "
            f"discarded_writes={discarded}")
        self._release_held()

    def _lag_for(self, f: _Node) -> Callable[[], float]:
        lag = self._lag_of.get(f)
        if lag is None:
            rep = self.params.replication
            assert rep is not None
            lag = self._lag_of[f] = self.ctx.sampler(self.name, f"replication_lag:{f.index}",
                                                     rep.lag)
        return lag

    def _link_for(self, leader: _Node, f: _Node) -> Callable[[], float] | None:
        pair = (leader, f)
        if pair not in self._link_of:
            net = self._net
            d = (net.spec.link(leader.region, f.region)
                 if net is not None and leader.region is not None and f.region is not None
                 and f.region != leader.region else None)
            self._link_of[pair] = None if d is None else self.ctx.sampler(
                self.name, f"replication_link:{leader.index}->{f.index}", d)
        return self._link_of[pair]

    def prepare_reshard(self, shards: int) -> list[Component]:
        return list(self.cluster.provision(shards))

    def reshard(self, event: Any, key_space: int | None) -> None:
        self.cluster.reshard(event.shards, getattr(event, "boundaries", None), key_space)


class _Failover:
    """One failover of a shard: detection, election, promotion (a Process: rare)."""

    def __init__(self, db: Database, old: _Node) -> None:
        self.db = db
        self.old = old
        self.crashed_at = db.env.now
        self.detected_at = math.nan
        self.detected = False
        self.cancelled = False
        self.old_back = False  # the old leader came back after it was declared dead
        self._waiting: Event | None = None

    def wake(self) -> None:
        """A node came back: a failover waiting for a candidate looks again."""
        if self._waiting is not None and not self._waiting.triggered:
            self._waiting.succeed()

    def run(self) -> Generator[Event, Any, None]:
        db, env = self.db, self.db.env
        yield Timeout(env, db._detect())
        if self.cancelled:
            return
        self.detected = True
        self.detected_at = env.now
        while True:
            new = db._elect(self)
            while new is None:  # no follower up: wait for a node to come back
                self._waiting = Event(env)
                yield self._waiting
                new = db._elect(self)
            if new is not self.old:
                yield Timeout(env, db._promote())
            if (not new.down or new is self.old) and db.up:
                break
        db._promote_node(self, new)


def _lag_now(node: _Node, env: Any) -> float:
    return node.lag(env._now)


def _backlog(node: _Node) -> float:
    return float(node.backlog)


def _node_up(node: _Node) -> float:
    return 0.0 if node.down else 1.0


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
                for f in self.members[shard].followers:
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


__all__ = ["Database", "DatabaseCluster", "DatabaseParams", "ShardMap", "key_hashes"]
