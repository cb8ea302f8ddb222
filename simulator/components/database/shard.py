"""One shard of a database (a leader and its followers): set-up, gauges and resharding;
serving, replication and failover are the mixins it combines."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

from simulator.components.base import (
    BuildContext,
    Component,
)
from simulator.components.database.cluster import DatabaseCluster
from simulator.components.database.failover import ShardFaults, _Failover
from simulator.components.database.node import _Node
from simulator.components.database.params import DatabaseParams, ReadRouting
from simulator.components.database.replication import ShardReplication
from simulator.components.database.serving import ShardServing
from simulator.components.database.state import (
    ACKNOWLEDGED,
    COMMITTED,
    DISCARDED,
    LOST,
    UNACKNOWLEDGED,
)


class Database(ShardServing, ShardReplication, ShardFaults):
    """One shard of a database: a leader and its followers, each with a connection pool.

    See the module documentation for the model, what it records and its assumptions.
    Faults: ``crash`` takes the whole shard down (every node): requests it holds fail at once,
    new ones are refused or black-holed, replication pauses; it recovers with its data.
    ``crash`` with ``node`` takes one node down (the leader may fail over).
    ``slow`` multiplies service times, ``error`` fails arriving requests with a probability,
    ``latency`` delays arriving requests; ``reshard`` (on the component) changes the shard map.
    """

    Params = DatabaseParams

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
        self._shard_index = index
        self._replicated = rec.table("replicated_writes").append  # one row per write applied
        #: per key written here: [committed, acknowledged, unacknowledged, lost, discarded]
        #: writes (``state.COMMITTED``...), for the ``final_state`` table
        self._key_writes: dict[int, list[int]] = {}
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
            yield "replica_behind", nd.label, functools.partial(_behind_now, nd, env)
            yield "replication_backlog", nd.label, functools.partial(_backlog, nd)
        if self._failover is not None:
            yield "leader_index", "", lambda: float(self.leader.index)
            yield "failovers_total", "", lambda: self.failovers_total
            yield "lost_writes_total", "", lambda: self.lost_writes_total
            yield "discarded_writes_total", "", lambda: self.discarded_writes_total
            for nd in nodes:
                yield "node_up", nd.label, functools.partial(_node_up, nd)

    def finish(self) -> None:
        """One ``final_state`` row per key written at this shard and node: the version and the
        writes the node holds, and the key's committed version and write tally."""
        append = self.ctx.recorder.table("final_state").append
        committed = self._committed
        leader = self.leader
        for key in sorted(self._key_writes):
            tally = self._key_writes[key]
            version = committed.get(key, 0)
            for nd in self.nodes:
                append(self._code, self._shard_index, key, nd.index, nd is leader,
                       nd.applied.get(key, 0), nd.writes.get(key, 0), version,
                       tally[COMMITTED], tally[ACKNOWLEDGED], tally[UNACKNOWLEDGED],
                       tally[COMMITTED] - tally[ACKNOWLEDGED] - tally[UNACKNOWLEDGED],
                       tally[LOST], tally[DISCARDED])

    def prepare_reshard(self, shards: int) -> list[Component]:
        return list(self.cluster.provision(shards))

    def reshard(self, event: Any, key_space: int | None) -> None:
        self.cluster.reshard(event.shards, getattr(event, "boundaries", None), key_space)




def _behind_now(node: _Node, env: Any) -> float:
    return node.behind(env._now)


def _backlog(node: _Node) -> float:
    return float(node.backlog)


def _node_up(node: _Node) -> float:
    return 0.0 if node.down else 1.0
