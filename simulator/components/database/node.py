"""A database node (leader or follower) with its connection pool, write acknowledgements
and quorum reads in progress."""

from __future__ import annotations

from collections import deque
from typing import Any

from simpy import Event

from simulator.messages import OK


class _Node:
    """One server of a shard (leader or follower): its pool and, for a follower, its log.

    ``label`` and ``index`` name the node as built (``leader`` = 0, ``followerN`` = N); after a
    failover the node leading may be ``follower2``.
    """

    __slots__ = ("abandoned", "acquired", "applied", "backlog", "black_hole", "busy",
                 "busy_area", "crash_event", "down", "epoch", "held", "in_system", "index",
                 "inflight", "label", "last_due", "pool_wait", "queue", "queue_area", "reads",
                 "region", "size", "system_area", "timeouts", "waiting", "writes")

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
        #: the version of each key it holds (a leader's: the last it committed)
        self.applied: dict[int, int] = {}
        #: how many writes of each key it holds: committed here as leader or applied as a
        #: follower, less those a failover voided (for the ``final_state`` table)
        self.writes: dict[int, int] = {}
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

    def behind(self, now: float) -> float:
        """How far behind the node is at ``now``: seconds since the oldest committed write not
        yet applied here (0 if none)."""
        inflight = self.inflight
        while inflight and inflight[0][1]:
            inflight.popleft()
        return now - inflight[0][0] if inflight else 0.0


class _Acks:
    """Replies awaited by one write: the event fires when ``need`` followers have applied it;
    ``acknowledged`` once the client got ``ok`` (a failover voiding the write then loses it)."""

    __slots__ = ("acknowledged", "event", "got", "need")

    def __init__(self, need: int, event: Event) -> None:
        self.need = need
        self.got = 0
        self.event = event
        self.acknowledged = False


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
