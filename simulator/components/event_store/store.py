"""An event store: an append-only log per aggregate, optimistic concurrency, snapshots.

The Event Sourcing pattern of the seed document, in simulated time. State is not stored; each
aggregate (an order) is the sequence of events appended to it, and its version is the number of
those events. A command handler serves a command by the usual three steps:

1. **load**: read the aggregate's latest snapshot and the events after it, and replay them
   (``OrderAggregate.fromEvents``). The cost grows with the events replayed:
   ``load.base + load.per_event x replayed``;
2. **decide**: run the business logic on the rebuilt state (``decide_time``);
3. **append** the new event with *expected version* = the version loaded (``append_time``). The
   store refuses the append if another append to the same aggregate committed since the load
   (the unique ``(aggregate_id, version)`` constraint of the seed's ``events`` table): a
   **conflict**. The handler then reloads and tries again, up to ``conflict_retries`` times,
   after a ``retry_backoff``; a command whose retries are used up fails with status
   ``conflict``.

On commit the event is published to ``publish`` (a queue or topic, with the call's policies), as
the seed's command handler does with its event bus; projectors (:mod:`.read_model`) consume it
from there. With ``snapshot_every: N`` a commit that brings the aggregate to a multiple of N
versions writes a snapshot (``snapshot_time``), so a load replays at most ``N - 1`` events once
the due snapshot is written (a load that starts while it is being written replays the N events
since the previous one plus those committed meanwhile).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Generator, Iterable
from typing import Any, cast

from simpy import AnyOf, Event, Timeout

from simulator.components.base import (
    BuildContext,
    Component,
    FaultState,
    Handler,
    Target,
)
from simulator.components.edge import Bound, bind_call
from simulator.components.event_store.params import EventStoreParams
from simulator.components.workers import WorkerPool
from simulator.distributions import Constant
from simulator.messages import (
    COMMITTED,
    CONFLICT,
    CONFLICTED,
    CRASHED,
    ERROR,
    OK,
    REJECTED,
    RETRIED,
    Request,
)


class DomainEvent(Request):
    """An event appended to an aggregate, as it travels to projectors.

    A copy of the command's request (same id, so projector spans join the command's trace)
    that also carries the event's identity: ``key`` is the aggregate, ``version`` the version
    the event created, ``committed_at`` when the store committed it, and ``store`` the event
    store that holds it.
    """

    __slots__ = ("committed_at", "store")

    def __init__(self, req: Request, version: int, committed_at: float, store: EventStore
                 ) -> None:
        super().__init__(req.id, req.workload, req.op, req.key, req.work, req.created_at)
        self.attempts = req.attempts
        self.region = req.region
        self.version = version
        self.committed_at = committed_at
        self.store = store

    def copy(self) -> DomainEvent:
        """A copy with its own cancellation flag (hedged calls to a projector)."""
        twin = DomainEvent(self, self.version, self.committed_at, self.store)
        twin.lookup, twin.stale = self.lookup, self.stale
        return twin


class EventStore(FaultState, Component):
    """An event store with its command handlers: load, decide, append with a version check.

    Modelling assumptions: the version a load sees is the aggregate's version when the load
    starts (the read's snapshot); the version check and the commit are one atomic step at the
    end of the append, so a command conflicts exactly when another append to the same
    aggregate committed between its load's start and its own commit. A retry holds the worker
    (the handler loops). Costs are constant per event (no caching of loaded aggregates, no
    contention inside the store beyond the workers). Requests without a key (``key`` -1) name
    no aggregate and fail with ``error``. If the publish fails the event stays committed (the
    dual write of the seed's handler: the read side never hears of it; an outbox would avoid
    this) and the command gets the publish's status.

    Records one span per command (``start`` = a worker taken) and, in the ``commands`` table,
    one row per load-decide-append attempt (rebuild time, events replayed, outcome). Gauges:
    the worker pool's (``workers``, ``busy``, ``queue_length``, ``in_system`` and their
    integrals ``busy_time_total``, ``queue_time_total``, ``system_time_total``), ``events``
    (length of the log), ``aggregates``, and the cumulative ``commands_total``,
    ``committed_total``, ``conflicts_total`` (attempts refused by the version check),
    ``retries_total``, ``conflict_failures_total`` (commands failed with ``conflict``),
    ``snapshots_total``, ``replayed_total`` (events replayed by loads), ``load_time_total``,
    ``publish_failures_total``, ``rejected_total``.

    Faults: ``crash`` fails every command the store holds at that instant (waiting, loading,
    deciding or appending: nothing is written; publishing: the event is committed but never
    published, counted in ``publish_failures_total``; writing a snapshot: the snapshot is
    lost), then refuses or black-holes new ones until it recovers, with its log intact;
    ``slow`` multiplies every duration of the command path; ``error`` fails arriving commands
    at once with a probability; ``latency`` delays them before they queue.
    """

    Params = EventStoreParams

    def __init__(self, group: str, index: int, params: EventStoreParams,
                 ctx: BuildContext) -> None:
        super().__init__(group, index, params, ctx)
        self._pool = WorkerPool(ctx.env, params.workers, params.queue_limit)
        self._load_base = params.load.base
        self._per_event = params.load.per_event
        self._decide = _sampler(ctx, group, "decide_time", params.decide_time)
        self._append = ctx.sampler(group, "append_time", params.append_time)
        self._snapshot_every = params.snapshot_every or 0
        self._snapshot_time = ctx.sampler(group, "snapshot_time",
                                          params.snapshot_time or Constant(value=0.001))
        self._retries = params.conflict_retries
        self._backoff = _sampler(ctx, group, "retry_backoff", params.retry_backoff)
        self._query_ops = frozenset(params.query_ops)
        self._publish: Bound | None = None
        #: the committed version of each aggregate, and the version of its latest snapshot
        self.versions: dict[int, int] = {}
        self.snapshots: dict[int, int] = {}
        #: the log, in commit order: aggregate, version, commit time, request of every event
        self.log_keys = array("q")
        self.log_requests = array("q")
        self.log_versions = array("q")
        self.log_committed = array("d")
        #: per aggregate, the log position of each of its events (version v at index v - 1)
        self.positions: dict[int, array[int]] = {}
        self.commands_total = 0
        self.conflicts_total = 0
        self.retries_total = 0
        self.conflict_failures_total = 0
        self.snapshots_total = 0
        self.replayed_total = 0
        self.load_time_total = 0.0
        self.publish_failures_total = 0
        self.rejected_total = 0
        self.failed_total = 0
        rec = ctx.recorder
        self._commands = rec.table("commands")  # one row per load-decide-append attempt
        self._rec = rec if ctx.record_spans else None
        self._code = rec.instance_code(group, self.name)
        self._init_fault_state(ctx, self.name)

    def wire(self, resolve: Callable[[str], Target]) -> None:
        call = self.params.publish
        if call is not None:
            self._publish = bind_call(call, resolve(call.to), self.ctx, (self.group, self.name),
                                      resolve=resolve)

    def committed_version(self, key: int) -> int:
        """The aggregate's committed version now (0 if it has no events)."""
        return self.versions.get(key, 0)

    @property
    def events_total(self) -> int:
        """Events in the log."""
        return len(self.log_keys)

    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        yield from self._pool.gauges()
        yield "events", "", lambda: len(self.log_keys)
        yield "aggregates", "", lambda: len(self.versions)
        for name in ("commands_total", "conflicts_total", "retries_total",
                     "conflict_failures_total", "snapshots_total", "replayed_total",
                     "load_time_total", "publish_failures_total", "rejected_total",
                     "failed_total"):
            yield name, "", _attr(self, name)
        yield "committed_total", "", lambda: len(self.log_keys)

    def handle(self, req: Request, op: str) -> Handler:
        env = self.env
        arrival = env._now
        slow = 1.0
        if self._faulted:
            if not (yield from self._meet_faults()):
                return self._end(req, op, arrival, math.nan, ERROR)
            arrival = env._now
            slow = self._slow_factor
        key = req.key
        if key < 0:
            return self._end(req, op, arrival, math.nan, ERROR)
        epoch = self._epoch
        pool = self._pool
        status, start = yield from pool.acquire(arrival)
        if status != OK:
            if status == REJECTED:
                self.rejected_total += 1
            return self._end(req, op, arrival, math.nan, status)
        if op in self._query_ops:
            seen = self.versions.get(key, 0)
            if not (yield from self._sleep(self._load_cost(key, seen, slow), epoch)):
                return self._end(req, op, arrival, start, ERROR)
            req.version = seen
            if seen < self.versions.get(key, 0):  # a commit landed while the load ran
                req.stale = True
            pool.release()
            return self._end(req, op, arrival, start, OK)
        self.commands_total += 1
        versions = self.versions
        rec = self._commands
        attempt = 0
        while True:
            attempt += 1
            t0 = env._now
            seen = versions.get(key, 0)
            replayed = seen - self.snapshots.get(key, 0)
            alive = yield from self._sleep(self._load_cost(key, seen, slow), epoch)
            loaded = env._now
            if alive:
                work = (self._decide() * req.work + self._append()) * slow
                alive = yield from self._sleep(work, epoch)
            if not alive:  # crashed before the commit: nothing was written
                rec.append(self._code, req.id, key, attempt, t0, replayed, loaded, env._now,
                            seen + 1, CRASHED, False)
                return self._end(req, op, arrival, start, ERROR)
            if versions.get(key, 0) == seen:
                break
            self.conflicts_total += 1
            if attempt > self._retries:
                rec.append(self._code, req.id, key, attempt, t0, replayed, loaded, env._now,
                            seen + 1, CONFLICTED, False)
                self.conflict_failures_total += 1
                pool.release()
                return self._end(req, op, arrival, start, CONFLICT)
            rec.append(self._code, req.id, key, attempt, t0, replayed, loaded, env._now,
                        seen + 1, RETRIED, False)
            self.retries_total += 1
            if not (yield from self._sleep(self._backoff() * slow, epoch)):
                return self._end(req, op, arrival, start, ERROR)
        # commit: the version check passed at this instant
        now = env._now
        version = seen + 1
        versions[key] = version
        positions = self.positions.get(key)
        if positions is None:
            positions = self.positions[key] = array("q")
        positions.append(len(self.log_keys))
        self.log_keys.append(key)
        self.log_requests.append(req.id)
        self.log_versions.append(version)
        self.log_committed.append(now)
        req.version = version
        every = self._snapshot_every
        snapshot = every > 0 and version % every == 0
        rec.append(self._code, req.id, key, attempt, t0, replayed, loaded, now, version,
                    COMMITTED, snapshot)
        status = OK
        if self._publish is not None:
            event = DomainEvent(req, version, now, self)
            if self._crashable:  # the handler may die while it waits for the publish
                proc = env.process(self._publish(event, op))
                yield AnyOf(env, (proc, self._crash_event))
                if self._epoch != epoch:  # committed, never published: the read side misses it
                    self.publish_failures_total += 1
                    return self._end(req, op, arrival, start, ERROR)
                status = cast(int, proc.value)
            else:
                status = yield from self._publish(event, op)
            if status != OK:
                self.publish_failures_total += 1
        if snapshot:
            if not (yield from self._sleep(self._snapshot_time() * slow, epoch)):
                return self._end(req, op, arrival, start, ERROR)
            if self.snapshots.get(key, 0) < version:
                self.snapshots[key] = version
            self.snapshots_total += 1
        pool.release()
        return self._end(req, op, arrival, start, status)

    def _load_cost(self, key: int, seen: int, slow: float) -> float:
        """Time to rebuild the aggregate at version ``seen`` (counted in the gauges)."""
        replayed = seen - self.snapshots.get(key, 0)
        cost = (self._load_base + self._per_event * replayed) * slow
        self.replayed_total += replayed
        self.load_time_total += cost
        return cost

    def _sleep(self, delay: float, epoch: int) -> Generator[Event, Any, bool]:
        """Hold the worker for ``delay`` seconds; False if the store crashed meanwhile."""
        if self._crashable:
            if self._epoch != epoch:
                return False
            yield AnyOf(self.env, (Timeout(self.env, delay), self._crash_event))
            return self._epoch == epoch
        if delay > 0:
            yield Timeout(self.env, delay)
        return True

    # ---- faults -------------------------------------------------------------------------
    def prepare_faults(self, kinds: set[str]) -> None:
        self._crashable = "crash" in kinds

    def crash(self, black_hole: bool) -> None:
        self._pool.crash()
        self._go_down(black_hole)

    def recover(self) -> None:
        self.up = True
        self._update_faulted()

    def _end(self, req: Request, op: str, arrival: float, start: float, status: int) -> int:
        if status == ERROR:
            self.failed_total += 1
        if self._rec is not None:
            self._rec.span(req.id, self._code, op, arrival, start, self.env._now, status)
        return status


def _sampler(ctx: BuildContext, scope: str, purpose: str, dist: Any) -> Callable[[], float]:
    """A sampler of ``dist``; a constant zero costs no stream."""
    if isinstance(dist, Constant) and dist.value + dist.shift == 0:
        return lambda: 0.0
    return ctx.sampler(scope, purpose, dist)


def _attr(obj: object, name: str) -> Callable[[], float]:
    return lambda: float(getattr(obj, name))
