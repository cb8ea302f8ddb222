"""What flows through the simulated system: requests and their final statuses."""

from __future__ import annotations

import math
from enum import IntEnum


class Status(IntEnum):
    """Final status of a request or of one hop.

    Modelled failures are values, never exceptions. ``IN_FLIGHT`` marks requests still
    unfinished when the run ends, so that every generated request is accounted for.
    ``FALLBACK`` is a degraded answer given by a fallback policy after a failure;
    ``CANCELLED`` a hedged copy withdrawn because another copy answered first;
    ``CONFLICT`` a command whose optimistic-concurrency append kept losing to concurrent
    appends to the same aggregate until its retries ran out (an event store's version check).
    Queue disciplines and client patience (``components/service/disciplines.py``) add
    ``DROPPED`` (a CoDel queue dropped it at dequeue), ``EXPIRED`` (its deadline had passed when
    its turn came: gRPC's DEADLINE_EXCEEDED seen by the server), ``RENEGED`` (it left the queue
    when its patience ran out) and ``BAULKED`` (it did not join a queue that was too long).
    ``REJECTED`` is a refusal at once: a full queue or pool, a service's ``admission`` policy
    (load shedding, an adaptive concurrency limit: ``components/service/limiter.py``), or a
    caller's ``rate_limit`` without a token.
    ``THROTTLED`` is a request the caller itself refused to send: client-side adaptive
    throttling (:mod:`simulator.throttling`) rejected it locally, before any backend saw it.
    A message lost on a network link (:mod:`simulator.links`) has no status of its own: the
    caller hears nothing and its timeout answers ``TIMEOUT``, as it would in a real client.
    """

    OK = 0
    ERROR = 1
    REJECTED = 2
    TIMEOUT = 3
    SHORT_CIRCUITED = 4
    DROPPED = 5
    IN_FLIGHT = 6
    FALLBACK = 7
    CANCELLED = 8
    CONFLICT = 9
    EXPIRED = 10
    RENEGED = 11
    BAULKED = 12
    THROTTLED = 13

    @property
    def label(self) -> str:
        """Lower-case name used in tables (``ok``, ``rejected``...)."""
        return self.name.lower()


# Plain ints for the hot path: comparing ints is cheaper than enum attribute lookups.
OK = int(Status.OK)
ERROR = int(Status.ERROR)
REJECTED = int(Status.REJECTED)
TIMEOUT = int(Status.TIMEOUT)
SHORT_CIRCUITED = int(Status.SHORT_CIRCUITED)
DROPPED = int(Status.DROPPED)
IN_FLIGHT = int(Status.IN_FLIGHT)
FALLBACK = int(Status.FALLBACK)
CANCELLED = int(Status.CANCELLED)
CONFLICT = int(Status.CONFLICT)
EXPIRED = int(Status.EXPIRED)
RENEGED = int(Status.RENEGED)
BAULKED = int(Status.BAULKED)
THROTTLED = int(Status.THROTTLED)

STATUS_LABELS = [s.label for s in Status]


class MessageStatus(IntEnum):
    """Where a message of a queue or topic subscription is (``messages.status``).

    ``QUEUED`` (waiting to be received, or delayed before a retry) and ``IN_FLIGHT`` (received,
    not yet acknowledged) are where a message can still be when the run ends; ``ACKED`` and
    ``DEAD_LETTERED`` are final; ``REJECTED`` marks a publish refused by a full queue (the
    message was never stored).
    """

    QUEUED = 0
    IN_FLIGHT = 1
    ACKED = 2
    DEAD_LETTERED = 3
    REJECTED = 4

    @property
    def label(self) -> str:
        """Lower-case name used in tables (``acked``, ``dead_lettered``...)."""
        return self.name.lower()


MESSAGE_STATUS_LABELS = [s.label for s in MessageStatus]

# how an event store's load-decide-append attempt ended (commands.outcome)
COMMITTED, RETRIED, CONFLICTED, CRASHED = 0, 1, 2, 3
COMMAND_OUTCOMES = ["committed", "retried", "conflict", "crashed"]

# what the first cache on a request's path answered (requests.cache)
NO_CACHE, HIT, MISS = 0, 1, 2
CACHE_LABELS = ["", "hit", "miss"]
LOOKUP_LABELS = CACHE_LABELS  # (the name generic modules use)


class Request:
    """One client request as it travels through the system.

    The key, operation and work are drawn when the request is created, from the workload's own
    streams, so that two variants of a design see exactly the same requests (common random
    numbers).

    Attributes
    ----------
    id
        Sequence number within the run, from 0.
    workload
        Index of the workload that created it.
    op
        Operation name (``read``, ``write``...).
    key
        Key touched, ``0 .. n-1`` by popularity rank (-1 when the workload has no keys).
    work
        Size multiplier applied to every service time the request incurs (1.0 by default).
    created_at
        Simulated time of creation (seconds).
    attempts
        Number of attempts made so far (1 without retries).
    cancelled
        Set on a hedged copy whose caller no longer waits for it; a service that has not yet
        started working on it drops it instead.
    lookup
        What the first cache on the request's path answered: 0 none consulted, ``HIT`` or
        ``MISS`` (the ``cache`` column of the requests table).
    stale
        Whether any read on the request's path returned a version older than the latest
        committed one at that instant (measured, never assumed).
    region
        Region the request's client is in (``None`` when the scenario has no regions).
    version
        Version of the key returned by the last read on the path (-1: none yet); a cache fills
        itself with the version its backing store returned.
    avoid_hosts
        ``None``, or (balancer group, indices of its backends) that a retry or hedge policy
        with ``avoid_previous_hosts`` hands to the balancer it calls: the balancer picks among
        the other backends, adds its pick to the set and clears this attribute (so the backend's
        own calls do not see it). See :mod:`simulator.components.edge`.
    priority
        Priority class from the workload (``Workload.priority``), 0 the most important; every
        downstream call carries it, as a criticality header would.
    deadline
        Absolute simulated time by which the answer is needed (``inf``: none), from the
        workload's ``deadline``; downstream calls carry it, as gRPC propagates deadlines, and a
        service drops work whose deadline has passed when its turn comes (status ``expired``).
    patience
        Longest time the request waits in any one service queue before it leaves (reneging,
        status ``reneged``); ``inf``: waits forever.
    baulk_at
        Queue length at which the request does not join a service queue (status
        ``baulked``); ``inf``: always joins.
    """

    __slots__ = ("attempts", "avoid_hosts", "baulk_at", "cancelled", "created_at", "deadline",
                 "id", "key", "lookup", "op", "patience", "priority", "region", "stale",
                 "version", "work", "workload")

    def __init__(
        self, id: int, workload: int, op: str, key: int, work: float, created_at: float
    ) -> None:
        self.id = id
        self.workload = workload
        self.op = op
        self.key = key
        self.work = work
        self.created_at = created_at
        self.attempts = 1
        self.cancelled = False
        self.lookup = 0
        self.stale = False
        self.version = -1
        self.region: str | None = None
        self.avoid_hosts: tuple[str, set[int]] | None = None
        self.priority = 0
        self.deadline = math.inf
        self.patience = math.inf
        self.baulk_at = math.inf

    def copy(self) -> Request:
        """A copy with its own cancellation flag (a hedged duplicate of this request)."""
        twin = Request(self.id, self.workload, self.op, self.key, self.work, self.created_at)
        twin.attempts = self.attempts
        twin.lookup, twin.stale, twin.version = self.lookup, self.stale, self.version
        twin.region = self.region
        twin.priority, twin.deadline = self.priority, self.deadline
        twin.patience, twin.baulk_at = self.patience, self.baulk_at
        return twin
