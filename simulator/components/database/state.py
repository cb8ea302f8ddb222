"""What the concerns of a database shard share: its state, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simulator.components.base import (
    Component,
    FaultState,
)
from simulator.components.database.node import _Acks, _Node
from simulator.components.database.params import ReadRouting

if TYPE_CHECKING:
    from simulator.components.database.cluster import DatabaseCluster
    from simulator.components.database.failover import _Failover


#: positions in a shard's per-key tally of writes (``ShardState._key_writes``): committed on
#: its leader, acknowledged to the client, committed but failed to the client, voided by a
#: failover after being acknowledged (lost) or not (discarded)
COMMITTED, ACKNOWLEDGED, UNACKNOWLEDGED, LOST, DISCARDED = range(5)


class ShardState(FaultState, Component):
    """The state of one shard that its concerns share (set up by
    :class:`~simulator.components.database.shard.Database`): nodes, routing, replication and
    failover settings, counters. The concerns are mixins over it: serving
    (:mod:`.serving`), replication (:mod:`.replication`), faults and failover
    (:mod:`.failover`)."""

    cluster: DatabaseCluster
    leader: _Node
    followers: list[_Node]
    nodes: list[_Node]
    _by_label: dict[str, _Node]
    _acquire_timeout: float | None
    _max_waiting: float
    _write_ops: frozenset[str]
    _service_times: Any
    _draws: dict[str, Callable[[], float]]
    _reads: ReadRouting
    _read_quorum: int
    _ordered: bool
    _lags: list[Callable[[], float]]
    _lag_of: dict[_Node, Callable[[], float]]
    _net: Any
    _links: list[Callable[[], float] | None]
    _nearest: dict[str, list[_Node]]
    _link_of: dict[tuple[_Node, _Node], Callable[[], float] | None]
    _remote_followers: bool
    _uniform: Any
    _rr: int
    _committed: dict[int, int]
    _key_writes: dict[int, list[int]]
    _sessions: dict[int, dict[int, int]]
    active: bool
    reads_total: int
    writes_total: int
    reads_ok_total: int
    stale_reads_total: int
    served_total: int
    failed_total: int
    rejected_total: int
    _rec: Any
    _code: int
    _shard_index: int
    _replicated: Callable[..., int]
    _seq: int
    _leader_down: bool
    _nodes_down: int
    _failover: Any
    _failing_over: _Failover | None
    failovers_total: int
    lost_writes_total: int
    discarded_writes_total: int
    _acks_needed: int
    _detect: Callable[[], float]
    _promote: Callable[[], float]

    # ---- what one concern asks of another (implemented by the mixins) ------------------
    def _replicate(self, key: int, version: int) -> _Acks | None:
        """Ship a committed write to the followers (:mod:`.replication`)."""
        raise NotImplementedError

    def _apply(self, node: _Node, item: list[Any], _: Any = None) -> None:
        """A follower applies one write (:mod:`.replication`)."""
        raise NotImplementedError

    def _lag_for(self, f: _Node) -> Callable[[], float]:
        """The lag sampler of follower ``f`` (:mod:`.replication`)."""
        raise NotImplementedError

    def _link_for(self, leader: _Node, f: _Node) -> Callable[[], float] | None:
        """The region link from ``leader`` to ``f``, if any (:mod:`.replication`)."""
        raise NotImplementedError

    def _cut_off(self, node: _Node) -> bool:
        """Whether ``node`` is cut off by a region partition (:mod:`.failover`)."""
        raise NotImplementedError
