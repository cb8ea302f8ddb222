"""Clients: the runtime of a workload, creating requests and recording their outcomes.

Not a component kind: workloads are declared in the scenario's ``workloads`` block. Each
request's operation, key and work are drawn at creation from the workload's own streams
(purposes ``ops``, ``keys``, ``work``), and arrival times from ``arrivals``, so that variants of
a design receive identical requests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from simpy import Event, Timeout

from simulator.components.base import BuildContext, Handler, Target
from simulator.components.edge import bind_call, with_deadline
from simulator.errors import TopologyError
from simulator.kernel import Timer
from simulator.messages import Request
from simulator.rng import batched
from simulator.tasks import Task
from simulator.tracefile import digest_of, rows
from simulator.workloads import (
    BatchSize,
    Closed,
    ConstantRate,
    Curve,
    OnOff,
    Poisson,
    Schedule,
    Sinusoid,
    Trace,
    Workload,
)


class Client:
    """The clients of one workload.

    Parameters
    ----------
    name
        Workload name.
    index
        Workload index (its code in the ``requests`` table).
    spec
        Validated workload.
    ctx
        Build context.
    stop_at
        No request is created at or after this time.
    spikes
        Load spikes as (start, end, factor): the arrival rate is multiplied meanwhile.
    """

    def __init__(
        self, name: str, index: int, spec: Workload, ctx: BuildContext, stop_at: float,
        spikes: list[tuple[float, float, float]] | None = None,
    ) -> None:
        self.name = name
        self.index = index
        self.spec = spec
        self.env = ctx.env
        self.ctx = ctx
        self.stop_at = stop_at
        self.spikes = spikes or []
        self._created = ctx.recorder.created  # a row per request, or streaming counters
        # the region column of the requests table (not kept in streaming mode)
        self._region_codes = ctx.recorder.req_region if ctx.recorder.stream is None else None
        self._completed = ctx.recorder.completed
        gen = ctx.generator
        self._key: Callable[[], Any] = (
            spec.keys.sampler(gen(name, "keys")) if spec.keys is not None else (lambda: -1)
        )
        ops = list(spec.mix)
        if len(ops) == 1:
            only = ops[0]
            self._op: Callable[[], str] = lambda: only
        else:
            w = np.array([spec.mix[o] for o in ops], dtype=float)
            pick = batched(gen(name, "ops"), lambda rng, k: rng.choice(len(ops), k, p=w / w.sum()))
            self._op = lambda: ops[int(pick())]
        # a trace may give each request its operation and key: the row just read does
        self._row: tuple[str | None, int | None] = (None, None)
        if isinstance(spec.arrivals, Trace):
            if spec.arrivals.op_column is not None:
                self._op = lambda: self._row[0] or ""
            if spec.arrivals.key_column is not None:
                self._key = lambda: self._row[1]
        self._work: Callable[[], float] = (
            spec.work.sampler(gen(name, "work")) if spec.work is not None else (lambda: 1.0)
        )
        # the common workload, without a call per request: one operation, unit work
        from_trace = isinstance(spec.arrivals, Trace) and spec.arrivals.op_column is not None
        self._only_op = ops[0] if len(ops) == 1 and not from_trace else None
        self._unit_work = spec.work is None
        self._target: Callable[[Request, str], Handler] | None = None
        # what a request carries downstream: priority class, deadline, patience, baulking
        self._limits = bool(spec.priority or spec.priority_by_op or spec.deadline is not None
                            or spec.patience is not None or spec.baulk_at is not None)
        self._patience: Callable[[], float] | None = (
            spec.patience.sampler(gen(name, "patience")) if spec.patience is not None else None)
        # client regions: drawn per request from the workload's own stream (purpose "region")
        self._regions = ctx.regions is not None
        self._region: Callable[[], tuple[str | None, int]] = lambda: (None, 0)
        if self._regions and spec.regions:
            names = list(spec.regions)
            codes = [ctx.recorder.region_code(r) for r in names]
            if len(names) == 1:
                home = (names[0], codes[0])
                self._region = lambda: home
            else:
                p = np.array([spec.regions[r] for r in names], dtype=float)
                p /= p.sum()
                draw = batched(gen(name, "region"), lambda rng, k: rng.choice(len(names), k, p=p))

                def region() -> tuple[str | None, int]:
                    i = int(draw())
                    return names[i], codes[i]

                self._region = region

    def wire(self, resolve: Callable[[str], Target]) -> None:
        """Resolve the workload's target and bind its call policies."""
        target = resolve(self.spec.target.to)
        self._target = bind_call(self.spec.target, target, self.ctx, (self.name, self.name),
                                 resolve=resolve,
                                 count_attempts=True, from_request=True)
        if self.spec.deadline is not None:  # the client gives up at the deadline, retries and all
            self._target = with_deadline(self._target, self.spec.deadline, self.ctx)

    def start(self) -> None:
        """Start generating requests."""
        arrivals = self.spec.arrivals
        if isinstance(arrivals, Closed):
            think = arrivals.think_time.sampler(self.ctx.generator(self.name, "think_time"))
            for _ in range(arrivals.users):
                self.env.process(self._user(think))
        elif self.spec.batch is not None:
            self.env.process(self._open(_in_batches(self._arrival_times(arrivals),
                                                    self._batch_sizes(self.spec.batch))))
        else:
            self.env.process(self._open(self._arrival_times(arrivals)))

    def _batch_sizes(self, batch: BatchSize) -> Callable[[], int]:
        """Sizes of successive batches, from the workload's own stream (purpose ``batch``)."""
        if batch.size is not None:
            size = batch.size
            return lambda: size
        p = 1.0 / float(batch.mean or 1.0)
        draw = self.ctx.streams.batched(self.name, "batch",
                                        lambda rng, k: rng.geometric(p, k).astype(float))
        return lambda: int(draw())

    def _replay(self, trace: Trace) -> Iterator[float]:
        """The trace's arrival times, read row by row; each row's operation and key are kept
        for the request created at that time (the next one :meth:`_new` makes)."""
        path = Path(trace.file)
        where = f"workloads.{self.name}.arrivals.file"
        try:
            digest = digest_of(path)
        except OSError as exc:
            raise TopologyError(f"{where}: cannot read the trace {trace.file}: "
                                f"{exc.strerror or exc}") from None
        if digest != trace.digest:
            raise TopologyError(f"{where}: the trace {trace.file} changed since the scenario "
                                "was loaded (its SHA-256 differs); load the scenario again")
        for t, op, key in rows(path, trace.column, trace.unit, trace.op_column,
                               trace.key_column, trace.origin):
            self._row = (op, key)
            yield t

    # ---- request life cycle -------------------------------------------------------------
    def _new(self) -> Request:
        now = self.env._now
        op = self._only_op if self._only_op is not None else self._op()
        key = self._key()
        rid = self._created(self.index, op, key, now)
        req = Request(rid, self.index, op, key, 1.0 if self._unit_work else self._work(), now)
        if self._limits:
            spec = self.spec
            req.priority = spec.priority_by_op.get(op, spec.priority)
            if spec.deadline is not None:
                req.deadline = now + spec.deadline
            if self._patience is not None:
                req.patience = self._patience()
            if spec.baulk_at is not None:
                req.baulk_at = spec.baulk_at
        if self._regions:
            req.region, code = self._region()
            if self._region_codes is not None:
                self._region_codes.append(code)
        return req

    def _maker(self) -> Callable[[], Request]:
        """:meth:`_new`, or for the common workload (one operation, unit work, no limits, no
        regions) an equivalent closure over locals: the same draws in the same order, without
        the attribute lookups and branches of the general case (a request's creation is on
        the hot path, once per request)."""
        only = self._only_op
        if only is None or not self._unit_work or self._limits or self._regions:
            return self._new
        keyless = self.spec.keys is None and not isinstance(self.spec.arrivals, Trace)
        return self.ctx.recorder.maker(self.index, only, self.env,
                                       None if keyless else self._key)

    def _done(self, req: Request, status: int) -> None:
        self._completed(req, status, self.env._now)

    def _open(self, times: Iterator[float]) -> Generator[Event, Any, None]:
        env = self.env
        stop = self.stop_at
        new = self._maker()
        done = self.ctx.recorder.completed_at(env)  # (req, status), at the task's end
        assert self._target is not None
        target = self._target

        t = next(times, math.inf)
        if t >= stop:
            return
        yield Timeout(env, t - env._now)
        while True:
            req = new()
            # The next arrival is scheduled before the request starts, as it was when each
            # request was a Process (started by an event processed after this step), so that
            # events at equal times keep their order.
            t = next(times, math.inf)
            arrival = Timer(env, t - env._now) if t < stop else None
            # no Process per request (two SimPy events fewer), and no generator of the
            # client's own around the target's: the outcome is recorded from the task's end,
            # at the same instant, so every resume passes through one frame fewer
            Task(target(req, req.op), partial(done, req))
            if arrival is None:
                return
            yield arrival

    def _user(self, think: Callable[[], float]) -> Generator[Event, Any, None]:
        env = self.env
        stop = self.stop_at
        assert self._target is not None
        target = self._target
        new = self._maker()
        while True:
            yield Timeout(env, think())
            if env._now >= stop:
                return
            req = new()
            status = yield from target(req, req.op)
            self._done(req, status)

    # ---- arrival processes: iterators of absolute arrival times --------------------------
    def _arrival_times(self, arrivals: Any) -> Iterator[float]:
        rng = self.ctx.generator(self.name, "arrivals")
        unit = batched(rng, lambda r, k: r.exponential(1.0, k))  # Exp(1) "work" to consume
        if isinstance(arrivals, Trace):
            return self._replay(arrivals)
        if isinstance(arrivals, Poisson) and not self.spikes:
            return _poisson(unit, arrivals.rate)
        if isinstance(arrivals, ConstantRate):
            return _constant(1.0 / arrivals.rate)
        if isinstance(arrivals, Sinusoid | Curve):
            keep = self.ctx.streams.batched(self.name, "thinning", lambda r, k: r.random(k))
            rate, peak = _rate_function(arrivals)
            spikes = self.spikes
            bound = peak * math.prod(max(1.0, f) for _, _, f in spikes)

            def intensity(t: float) -> float:
                return rate(t) * math.prod(f for a, b, f in spikes if a <= t < b)

            return _thinned(unit, keep, intensity, bound, self.stop_at)
        segments: Iterator[tuple[float, float]]
        if isinstance(arrivals, Poisson):
            segments = iter([(float("inf"), arrivals.rate)])
        elif isinstance(arrivals, Schedule):
            steps = [(s.at, s.rate) for s in arrivals.steps]
            segments = _schedule_segments(steps)
        elif isinstance(arrivals, OnOff):
            on = arrivals.on.sampler(self.ctx.generator(self.name, "on"))
            off = arrivals.off.sampler(self.ctx.generator(self.name, "off"))
            segments = _on_off_segments(arrivals.rate, on, off)
        else:
            raise TypeError(f"unsupported arrival process {arrivals!r}")
        return _piecewise(unit, _with_spikes(segments, self.spikes))


def _rate_function(arrivals: Sinusoid | Curve) -> tuple[Callable[[float], float], float]:
    """The intensity of a time-varying process (arrivals per second at time t) and its peak."""
    if isinstance(arrivals, Sinusoid):
        mean, swing = arrivals.rate, arrivals.amplitude
        omega, peak_at = 2 * math.pi / arrivals.period, arrivals.peak_at

        def sinusoid(t: float) -> float:
            return max(0.0, mean * (1 + swing * math.cos(omega * (t - peak_at))))

        return sinusoid, mean * (1 + swing)
    ats = [p.at for p in arrivals.points]
    rates = [p.rate for p in arrivals.points]

    def curve(t: float) -> float:
        return float(np.interp(t, ats, rates))

    return curve, max(rates)


def _thinned(unit: Callable[[], float], keep: Callable[[], float],
             rate: Callable[[float], float], bound: float, until: float) -> Iterator[float]:
    """Arrival times before ``until`` of a Poisson process of intensity ``rate(t) <= bound``
    by thinning: a homogeneous process at ``bound``, each point kept with probability
    rate(t) / bound (so a curve that falls to 0 for good ends the arrivals, not the run)."""
    mean = 1.0 / bound
    t = 0.0
    while True:
        t += unit() * mean
        if t >= until:
            return
        if keep() * bound < rate(t):
            yield t


def _poisson(unit: Callable[[], float], rate: float) -> Iterator[float]:
    mean = 1.0 / rate
    t = 0.0
    while True:
        t += unit() * mean
        yield t


def _constant(gap: float) -> Iterator[float]:
    k = 1
    while True:
        yield k * gap
        k += 1


def _schedule_segments(steps: list[tuple[float, float]]) -> Iterator[tuple[float, float]]:
    for (at, rate), nxt in zip(steps, [*steps[1:], (float("inf"), 0.0)], strict=True):
        yield nxt[0] - at, rate


def _on_off_segments(
    rate: float, on: Callable[[], float], off: Callable[[], float]
) -> Iterator[tuple[float, float]]:
    while True:
        yield on(), rate
        yield off(), 0.0


def _in_batches(times: Iterator[float], sizes: Callable[[], int]) -> Iterator[float]:
    """Each arrival time repeated as many times as its batch has requests (drawn per
    arrival): the requests of a batch are created at the same instant, one after another."""
    for t in times:
        for _ in range(sizes()):
            yield t


def _with_spikes(
    segments: Iterator[tuple[float, float]], spikes: list[tuple[float, float, float]]
) -> Iterator[tuple[float, float]]:
    """Split rate segments at spike boundaries and multiply the rate inside spikes."""
    cuts = sorted({x for a, b, _ in spikes for x in (a, b) if math.isfinite(x)})
    t = 0.0
    for length, rate in segments:
        end = t + length
        while t < end:
            nxt = min([c for c in cuts if c > t] + [end])
            factor = math.prod(f for a, b, f in spikes if a <= t < b)
            yield nxt - t, rate * factor
            t = nxt


def _piecewise(
    unit: Callable[[], float], segments: Iterator[tuple[float, float]]
) -> Iterator[float]:
    """Arrival times of a Poisson process whose rate is constant on consecutive segments.

    Each gap is an Exp(1) amount of "rate x time" consumed across segments, which is exact for
    a piecewise-constant intensity (time change of a unit Poisson process).
    """
    seg_start = 0.0
    seg_len, rate = next(segments)
    t = 0.0
    need = unit()
    while True:
        seg_end = seg_start + seg_len
        if rate > 0 and t + need / rate < seg_end:
            t += need / rate
            yield t
            need = unit()
            continue
        if rate > 0:
            need -= (seg_end - t) * rate
        if seg_end == float("inf"):
            return
        t = seg_start = seg_end
        seg_len, rate = next(segments)
