"""A read model: the query side of CQRS, kept up to date by projectors, rebuilt by replay.

The seed's ``OrderReadModel`` / ``OrderProjector`` in simulated time. Projectors are ordinary
consumers (:mod:`.consumer`) pulling the events an event store publishes and calling the read
model with an apply operation; queries are answered from the read model's own state, so they
see each aggregate as of the last event applied to it. Because the read model names its event
store, it can compare what it answers with the truth at that instant: a read is **stale** when
the store has committed a newer version of the aggregate than the one the read model holds.
The time from an event's commit to its application here is the **projection lag**.

A projection rebuild (a ``rebuild`` event on the timeline) drops the read model's state and
replays the store's whole log, from the first event, at the rebuild's ``replay_rate`` (or one
event at a time at the read model's ``apply_time``), following the log as it grows until it
reaches the end; then live projection resumes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable
from typing import Any

from simpy import AnyOf, Event, Timeout

from simulator.components.base import (
    BuildContext,
    Component,
    FaultState,
    Handler,
    Target,
)
from simulator.components.event_store.store import DomainEvent, EventStore
from simulator.components.read_model.params import ReadModelParams
from simulator.components.workers import WorkerPool
from simulator.messages import ERROR, OK, REJECTED, Request

#: Events a rebuild applies per step of simulated time (their effects appear together at the
#: step's end; the step is ``REPLAY_BATCH / replay_rate`` seconds long).
REPLAY_BATCH = 64


class ReadModel(FaultState, Component):
    """The query side: per aggregate, the version of the last event applied.

    Modelling assumptions: applying an event sets the aggregate's row to the event's version
    when that is newer (a redelivered or older event is a no-op: projectors are idempotent by
    version). The row then reflects every version up to that one, so an event overtaken by a
    later one of the same aggregate (concurrent projectors) counts as applied, with its lag,
    when the later one is; an event newer than the next expected one is also counted as a gap
    (the events in between were lost, for example by a failed publish, or are still on their
    way; a real projector would wait or re-read the store). A query answers the version held
    when its read time ends, and is stale when the store's committed version is newer at that
    instant. During a rebuild, applies from projectors are acknowledged and ignored (the
    replay covers every event in the log, including those committed during the rebuild); the
    replay uses no worker (it models a separate catch-up process writing to the same store).

    Records one span per request and, in the ``projections`` table, one row per event
    reflected (live or replayed), with its commit and application times. Gauges: the worker
    pool's (``workers``, ``busy``, ``queue_length``, ``in_system``, ``busy_time_total``...),
    ``behind`` (events committed in the store and not yet reflected here), ``rebuilding`` (1
    during a rebuild), and the cumulative ``applied_total`` (events reflected live),
    ``duplicates_total``, ``gaps_total``, ``ignored_total`` (applies during a rebuild),
    ``replayed_total``, ``projection_lag_time_total`` (sum of the live events' lags),
    ``reads_total``, ``reads_ok_total``, ``stale_reads_total``, ``versions_behind_total``
    (over stale reads), ``rejected_total``, ``failed_total`` (refused or cut short by a
    crash, or applies of requests that are not events of this read model's store). Events:
    ``rebuild`` (start, end with the events replayed).

    Faults: ``crash`` fails the requests held at that instant (an apply cut short applies
    nothing, so its projector's message fails and comes back) and refuses or black-holes new
    ones until it recovers with its state (a durable database); a rebuild in progress starts
    over on recovery. ``slow`` multiplies read and apply times (and a rebuild's per-event cost
    when it has no ``replay_rate``); ``rebuild`` starts a projection rebuild (restarting one in
    progress).
    """

    Params = ReadModelParams

    def __init__(self, group: str, index: int, params: ReadModelParams,
                 ctx: BuildContext) -> None:
        super().__init__(group, index, params, ctx)
        self._pool = WorkerPool(ctx.env, params.workers, params.queue_limit)
        self._read = ctx.sampler(group, "read_time", params.read_time)
        self._apply = ctx.sampler(group, "apply_time", params.apply_time)
        self._replay_draw = ctx.sampler(group, "replay_time", params.apply_time)
        self._apply_ops = frozenset(params.apply_ops)
        self._reject_during_rebuild = params.reads_during_rebuild == "reject"
        self._store: EventStore | None = None
        self.applied: dict[int, int] = {}
        self._applied_sum = 0  # sum of the versions held: events reflected here
        self.rebuilding = False
        self._rebuild_generation = 0
        self._replay_rate: float | None = None
        self.applied_total = 0
        self.duplicates_total = 0
        self.gaps_total = 0
        self.ignored_total = 0
        self.replayed_total = 0
        self.projection_lag_time_total = 0.0
        self.reads_total = 0
        self.reads_ok_total = 0
        self.stale_reads_total = 0
        self.versions_behind_total = 0
        self.rejected_total = 0
        self.failed_total = 0
        rec = ctx.recorder
        self._projections = rec.table("projections")  # one row per event applied
        self._rec = rec if ctx.record_spans else None
        self._code = rec.instance_code(group, self.name)
        self._init_fault_state(ctx, self.name)

    def wire(self, resolve: Callable[[str], Target]) -> None:
        store = resolve(self.params.store)
        if not isinstance(store, EventStore):
            raise ValueError(f"store {self.params.store!r} is not an event_store")
        self._store = store

    def committed_version(self, key: int) -> int:
        """The truth a cache in front of the read model compares with: the store's version."""
        assert self._store is not None
        return self._store.committed_version(key)

    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        yield from self._pool.gauges()
        yield "behind", "", self._behind
        yield "rebuilding", "", lambda: float(self.rebuilding)
        for name in ("applied_total", "duplicates_total", "gaps_total", "ignored_total",
                     "replayed_total", "projection_lag_time_total", "reads_total",
                     "reads_ok_total", "stale_reads_total", "versions_behind_total",
                     "rejected_total", "failed_total"):
            yield name, "", _attr(self, name)

    def _behind(self) -> float:
        assert self._store is not None
        return float(self._store.events_total - self._applied_sum)

    # ---- serving ------------------------------------------------------------------------
    def handle(self, req: Request, op: str) -> Handler:
        env = self.env
        arrival = env._now
        applying = op in self._apply_ops
        if not applying:
            self.reads_total += 1
        if self._faulted and not self.up:
            if self._black_hole:
                yield Event(env)  # never answered: only the caller's timeout ends it
            self.failed_total += 1
            return self._end(req, op, arrival, math.nan, ERROR)
        if not applying and self.rebuilding and self._reject_during_rebuild:
            self.rejected_total += 1
            return self._end(req, op, arrival, math.nan, REJECTED)
        epoch = self._epoch
        pool = self._pool
        status, start = yield from pool.acquire(arrival)
        if status != OK:
            if status == REJECTED:
                self.rejected_total += 1
            else:
                self.failed_total += 1
            return self._end(req, op, arrival, math.nan, status)
        slow = self._slow_factor
        work = self._apply() * slow if applying else self._read() * req.work * slow
        if self._crashable:
            yield AnyOf(env, (Timeout(env, work), self._crash_event))
            if self._epoch != epoch:  # crashed meanwhile: nothing applied or answered
                self.failed_total += 1
                return self._end(req, op, arrival, start, ERROR)
        else:
            yield Timeout(env, work)
        status = self._apply_event(req) if applying else self._answer(req)
        pool.release()
        return self._end(req, op, arrival, start, status)

    def _apply_event(self, req: Request) -> int:
        """Apply the event ``req`` now (at the end of its apply time)."""
        if not isinstance(req, DomainEvent) or req.store is not self._store:
            self.failed_total += 1  # not an event of this read model's store
            return ERROR
        if self.rebuilding:
            self.ignored_total += 1  # the replay covers it
            return OK
        key, version = req.key, req.version
        held = self.applied.get(key, 0)
        if version <= held:
            self.duplicates_total += 1
            return OK
        if version > held + 1:
            self.gaps_total += 1
        self.applied[key] = version
        self._applied_sum += version - held
        now = self.env._now
        # every version up to this one is reflected from now on, including earlier events
        # still on their way (overtaken by this one) or lost: each gets its row and its lag
        store = self._store
        assert store is not None
        positions = store.positions[key]
        committed, requests = store.log_committed, store.log_requests
        record = self._projections.append
        for v in range(held + 1, version + 1):
            i = positions[v - 1]
            self.applied_total += 1
            self.projection_lag_time_total += now - committed[i]
            record(self._code, requests[i], key, v, committed[i], now, False)
        return OK

    def _answer(self, req: Request) -> int:
        """Answer the query ``req`` from the state held now."""
        key = req.key
        self.reads_ok_total += 1
        if key < 0:
            return OK
        assert self._store is not None
        version = self.applied.get(key, 0)
        committed = self._store.committed_version(key)
        req.version = version
        if version < committed:
            req.stale = True
            self.stale_reads_total += 1
            self.versions_behind_total += committed - version
        return OK

    def _end(self, req: Request, op: str, arrival: float, start: float, status: int) -> int:
        if self._rec is not None:
            self._rec.span(req.id, self._code, op, arrival, start, self.env._now, status)
        return status

    # ---- projection rebuild -------------------------------------------------------------
    def rebuild(self, event: Any) -> None:
        """Drop the state now and replay the store's log from its first event (restarting a
        rebuild in progress; while the read model is down, it starts when it recovers)."""
        self._rebuild_generation += 1
        self.rebuilding = True
        self.applied.clear()
        self._applied_sum = 0
        self._replay_rate = getattr(event, "replay_rate", None)
        self.ctx.recorder.event(self.env._now, self.group, self.name, "rebuild", "start")
        if self.up:
            self.env.process(self._replay(self._rebuild_generation, self._replay_rate))

    # ---- faults -------------------------------------------------------------------------
    def prepare_faults(self, kinds: set[str]) -> None:
        self._crashable = "crash" in kinds

    def crash(self, black_hole: bool) -> None:
        self._rebuild_generation += 1  # a replay in progress stops; it resumes on recovery
        self._pool.crash()
        self._go_down(black_hole)

    def recover(self) -> None:
        self.up = True
        self._update_faulted()
        if self.rebuilding:  # the interrupted rebuild job starts over from the first event
            self.applied.clear()
            self._applied_sum = 0
            self.env.process(self._replay(self._rebuild_generation, self._replay_rate))

    def _replay(self, generation: int, rate: float | None) -> Generator[Event, Any, None]:
        env = self.env
        store = self._store
        assert store is not None
        keys, versions, committed = store.log_keys, store.log_versions, store.log_committed
        requests = store.log_requests
        began = env._now
        pos = 0
        while pos < len(keys):  # the log grows meanwhile: follow it to its end
            n = min(REPLAY_BATCH, len(keys) - pos)
            if rate is not None:
                cost = n / rate
            else:
                cost = sum(self._replay_draw() for _ in range(n)) * self._slow_factor
            if cost > 0:
                yield Timeout(env, cost)
            if self._rebuild_generation != generation:
                return  # a newer rebuild took over, or the read model crashed
            now = env._now
            applied = self.applied
            record = self._projections.append
            for i in range(pos, pos + n):
                key, version = keys[i], versions[i]
                held = applied.get(key, 0)
                if version > held:
                    applied[key] = version
                    self._applied_sum += version - held
                record(self._code, requests[i], key, version, committed[i], now, True)
            self.replayed_total += n
            pos += n
        self.rebuilding = False
        self.ctx.recorder.event(env._now, self.group, self.name, "rebuild",
                                f"end: {pos} events replayed in {env._now - began:.6g}s")


def _attr(obj: object, name: str) -> Callable[[], float]:
    return lambda: float(getattr(obj, name))
