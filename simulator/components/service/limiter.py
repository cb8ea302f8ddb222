"""The runtime of a service's ``admission`` block (:mod:`~simulator.components.service.admission`).

:func:`admitting` wraps an instance's ``handle``: an arrival the policy refuses ends at once
with status ``rejected`` (counted in the instance's ``rejected_total`` and ``shed_total``,
with a span), the others go through the instance's usual handling. Without an ``admission``
block nothing is wrapped, so the hot path and the tables are those of a service without it.

An instance that is down (crashed), stopped or draining meets arrivals as it would without the
block (refused or black-holed), and its limiter keeps its state across the outage.

The limit algorithms are plain classes, free of SimPy, so their arithmetic can be checked by
hand: ``sample(now, rtt, in_flight, dropped)`` takes one answered request and ``advance(now)``
runs the timed recalculations due by ``now`` (Envoy's windows; nothing for the Netflix
limits). The windows are evaluated lazily, at the next arrival or answer, which gives the
limit every admission decision would see from a timer, without scheduling events; a change
found that way is recorded at the instant it was due.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from simpy import Event

from simulator.components.service.admission import (
    AdaptiveConcurrency,
    Admission,
    AimdLimit,
    Gradient2Limit,
    ShedAdmission,
    VegasLimit,
    by_priority,
)
from simulator.messages import (
    DROPPED,
    EXPIRED,
    FALLBACK,
    OK,
    REJECTED,
    RENEGED,
    TIMEOUT,
    Request,
)

if TYPE_CHECKING:
    from simulator.components.service.service import Service

#: statuses of an answered request that a limit counts as a drop (Netflix's ``onDropped``)
DROPS = frozenset({TIMEOUT, DROPPED, EXPIRED, RENEGED, REJECTED})
#: statuses that are a successful sample (``onSuccess``); every other status is ignored
SUCCESSES = frozenset({OK, FALLBACK})


def _log10(limit: float) -> int:
    """Netflix's ``Log10RootFunction``: the integer part of log10 of the limit, at least 1."""
    return max(1, int(math.log10(max(1, int(limit)))))


def _percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: the ceil(pct/100 n)-th smallest value."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


class Algorithm:
    """A concurrency limit: ``limit`` (requests in flight), changed by what it samples."""

    def __init__(self, initial: int) -> None:
        self.limit = initial
        #: ``changed(t)``: called when the limit changes, with the instant it changed
        self.changed: Callable[[float], None] = lambda t: None

    def _set(self, t: float, limit: int) -> None:
        if limit != self.limit:
            self.limit = limit
            self.changed(t)

    def advance(self, now: float) -> None:
        """Run the timed recalculations due by ``now`` (none by default)."""

    def sample(self, now: float, rtt: float, in_flight: int, dropped: bool) -> None:
        """One answered request: round-trip time ``rtt`` (s), ``in_flight`` when admitted."""
        raise NotImplementedError


class Aimd(Algorithm):
    """Netflix ``AIMDLimit``."""

    def __init__(self, spec: AimdLimit) -> None:
        super().__init__(spec.initial_limit)
        self.spec = spec

    def sample(self, now: float, rtt: float, in_flight: int, dropped: bool) -> None:
        s = self.spec
        limit = self.limit
        if dropped or rtt > s.timeout:
            limit = int(limit * s.backoff_ratio)
        elif in_flight * 2 >= limit:
            limit += s.increase
        else:
            return  # application-limited: the limit stays
        self._set(now, min(s.max_limit, max(s.min_limit, limit)))


class Vegas(Algorithm):
    """Netflix ``VegasLimit`` (the estimate is a float; the limit its integer part)."""

    def __init__(self, spec: VegasLimit, uniform: Callable[[], float]) -> None:
        super().__init__(spec.initial_limit)
        self.spec = spec
        self.estimate = float(spec.initial_limit)
        self.rtt_noload = 0.0
        self.uniform = uniform
        self.probe_count = 0
        self.probe_jitter = 0.5 + 0.5 * uniform()

    def sample(self, now: float, rtt: float, in_flight: int, dropped: bool) -> None:
        if rtt <= 0:  # the library requires rtt > 0; a zero-time answer carries no delay
            return
        s = self.spec
        self.probe_count += 1
        if self.probe_jitter * s.probe_multiplier * self.estimate <= self.probe_count:
            self.probe_jitter = 0.5 + 0.5 * self.uniform()
            self.probe_count = 0
            self.rtt_noload = rtt  # probe: take this sample as the new no-load RTT
            return
        if self.rtt_noload == 0 or rtt < self.rtt_noload:
            self.rtt_noload = rtt
            return
        est = self.estimate
        size = _log10(est)
        queue = math.ceil(est * (1 - self.rtt_noload / rtt))
        if dropped:
            new = est - size
        elif in_flight * 2 < est:
            return  # application-limited: no upward drift
        else:
            alpha = 3 * size if s.alpha is None else s.alpha
            beta = 6 * size if s.beta is None else s.beta
            if queue <= size:
                new = est + beta
            elif queue < alpha:
                new = est + size
            elif queue > beta:
                new = est - size
            else:
                return
        new = max(1.0, min(float(s.max_limit), new))
        self.estimate = (1 - s.smoothing) * est + s.smoothing * new
        self._set(now, int(self.estimate))


class Gradient2(Algorithm):
    """Netflix ``Gradient2Limit`` (the estimate is a float; the limit its integer part)."""

    WARMUP = 10  # samples averaged plainly before the exponential average starts

    def __init__(self, spec: Gradient2Limit) -> None:
        super().__init__(spec.initial_limit)
        self.spec = spec
        self.estimate = float(spec.initial_limit)
        self.long_rtt = 0.0
        self._count = 0
        self._factor = 2 / (spec.long_window + 1)

    def sample(self, now: float, rtt: float, in_flight: int, dropped: bool) -> None:
        s = self.spec
        if self._count < self.WARMUP:
            self._count += 1
            self.long_rtt += (rtt - self.long_rtt) / self._count
        else:
            self.long_rtt = self.long_rtt * (1 - self._factor) + rtt * self._factor
        short = rtt
        if short > 0 and self.long_rtt / short > 2:  # back to normal after long overload
            self.long_rtt *= 0.9
        if in_flight < self.estimate / 2:
            return  # application-limited
        gradient = 1.0 if short <= 0 else max(0.5, min(1.0, self.long_rtt / short))
        est = self.estimate
        new = est * gradient + s.queue_size
        new = est * (1 - s.smoothing) + new * s.smoothing
        self.estimate = max(float(s.min_limit), min(float(s.max_limit), new))
        self._set(now, int(self.estimate))


class EnvoyGradient(Algorithm):
    """Envoy's adaptive concurrency gradient controller (timed windows, evaluated lazily)."""

    def __init__(self, spec: AdaptiveConcurrency, uniform: Callable[[], float]) -> None:
        calc = spec.min_rtt_calc
        super().__init__(calc.min_concurrency)
        self.spec = spec
        self.uniform = uniform
        self.min_rtt = math.nan
        self.measuring = True  # the filter starts by measuring minRTT
        self.deferred = calc.min_concurrency  # the limit to restore once minRTT is measured
        self.calc_samples: list[float] = []
        self.window: list[float] = []
        self.next_update = math.inf
        self.next_min_rtt = math.inf
        self.at_min = 0  # consecutive updates that ended at min_concurrency

    def _measure(self, t: float) -> None:
        self.measuring = True
        self.deferred = self.limit
        self.calc_samples = []
        self.window = []
        self.next_update = self.next_min_rtt = math.inf
        self._set(t, self.spec.min_rtt_calc.min_concurrency)

    def advance(self, now: float) -> None:
        interval = self.spec.concurrency_update_interval
        while not self.measuring and min(self.next_update, self.next_min_rtt) <= now:
            if self.next_min_rtt <= self.next_update:
                self._measure(self.next_min_rtt)
            else:
                t = self.next_update
                self.next_update = t + interval
                self._update(t)

    def _update(self, t: float) -> None:
        if not self.window:
            return  # nothing answered in the window: the limit stays
        spec, calc = self.spec, self.spec.min_rtt_calc
        rtt = _percentile(self.window, spec.sample_aggregate_percentile)
        self.window = []
        ideal = self.min_rtt * (1 + calc.buffer)
        gradient = 2.0 if rtt <= 0 else max(0.5, min(2.0, ideal / rtt))
        scaled = gradient * self.limit
        new = int(scaled + math.sqrt(scaled))
        self._set(t, max(calc.min_concurrency, min(spec.max_concurrency_limit, new)))
        self.at_min = self.at_min + 1 if self.limit == calc.min_concurrency else 0
        if self.at_min >= 5:
            self.at_min = 0
            self._measure(t)

    def sample(self, now: float, rtt: float, in_flight: int, dropped: bool) -> None:
        if dropped:
            return  # latency samples are taken from successful answers only
        if not self.measuring:
            self.window.append(rtt)
            return
        calc = self.spec.min_rtt_calc
        self.calc_samples.append(rtt)
        if len(self.calc_samples) >= calc.request_count:
            self.min_rtt = _percentile(self.calc_samples, self.spec.sample_aggregate_percentile)
            self.measuring = False
            self.calc_samples = []
            self.next_min_rtt = now + calc.interval * (1 + calc.jitter * self.uniform())
            self.next_update = now + self.spec.concurrency_update_interval
            self._set(now, self.deferred)


def algorithm(spec: Admission, uniform: Callable[[], float]) -> Algorithm | None:
    """The limit algorithm of an admission block (None for ``shed``)."""
    if isinstance(spec, AimdLimit):
        return Aimd(spec)
    if isinstance(spec, VegasLimit):
        return Vegas(spec, uniform)
    if isinstance(spec, Gradient2Limit):
        return Gradient2(spec)
    if isinstance(spec, AdaptiveConcurrency):
        return EnvoyGradient(spec, uniform)
    return None


class Shedder:
    """Load shedding by queue time and utilisation (``policy: shed``) at one instance."""

    def __init__(self, svc: Service, spec: ShedAdmission) -> None:
        self.svc = svc
        self.spec = spec
        self.utilization = 0.0  # of the last completed window (none yet: nothing shed)

    def start(self) -> None:
        """Measure utilisation window by window (only when a threshold needs it)."""
        if self.spec.max_utilization is not None:
            self.svc.env.process(self._windows())

    def _windows(self) -> Generator[Event, Any, None]:
        svc, window = self.svc, self.spec.window
        env = svc.env
        last, k = 0.0, 0
        while True:
            k += 1
            yield env.timeout(k * window - env.now)  # multiples of window, no drift
            area = svc._busy_area + svc.busy * env.now
            self.utilization = (area - last) / (svc.workers * window)
            last = area

    def refuses(self, now: float, req: Request) -> bool:
        """Whether an arrival of ``req`` at ``now`` is shed."""
        svc, spec = self.svc, self.spec
        if spec.max_queue_time is not None and svc.busy >= svc.workers:
            oldest = svc._queue.oldest()
            if oldest is not None and now - oldest > by_priority(spec.max_queue_time,
                                                                 req.priority):
                return True
        return spec.max_utilization is not None and self.utilization > by_priority(
            spec.max_utilization, req.priority)


Handle = Callable[[Request, str], Generator[Event, Any, int]]


def _uniform(svc: Service) -> Callable[[], float]:
    """Uniform draws on [0, 1) from the instance's own ``admission`` stream, made at its first
    draw (Vegas's probe jitter, Envoy's minRTT jitter)."""
    made: list[Any] = []

    def draw() -> float:
        if not made:
            made.append(svc.ctx.generator(svc.name, "admission"))
        return float(made[0].random())

    return draw


def admitting(svc: Service, inner: Handle, spec: Admission) -> Handle:
    """``inner`` behind the admission policy ``spec`` of instance ``svc``."""
    env = svc.env

    def refuse(req: Request, op: str, now: float) -> int:
        svc.shed_total += 1
        return svc._reject(req, op, now)

    if isinstance(spec, ShedAdmission):
        shedder = Shedder(svc, spec)
        svc.admission_start = shedder.start

        def shed(req: Request, op: str) -> Generator[Event, Any, int]:
            now = env._now
            if svc.up and svc.in_service and shedder.refuses(now, req):
                return refuse(req, op, now)
            return (yield from inner(req, op))

        return shed

    algo = algorithm(spec, _uniform(svc))
    assert algo is not None
    svc.limit_algorithm = algo
    table = svc.ctx.recorder.table("concurrency_limits")
    instance = table.code("instance", svc.name)
    component = svc._code

    def record(t: float) -> None:
        table.append(t, component, instance, algo.limit, svc.in_flight)

    algo.changed = record
    record(0.0)

    # what the hop pays per request: the timed recalculations only for a limit that has them,
    # and one look-up for whether (and how) an answer is a sample
    timed = type(algo).advance is not Algorithm.advance
    advance, sample = algo.advance, algo.sample
    dropped = {**dict.fromkeys(SUCCESSES, False), **dict.fromkeys(DROPS, True)}.get

    def limited(req: Request, op: str) -> Generator[Event, Any, int]:
        if not (svc.up and svc.in_service):
            # down, stopped or draining: refused or black-holed as without admission (no
            # limiter runs in a process that is not serving; a black-holed request, never
            # answered, must not hold a place in the limit after recovery)
            return (yield from inner(req, op))
        now = env._now
        if timed:
            advance(now)
        if svc.in_flight >= algo.limit:
            return refuse(req, op, now)
        svc.in_flight = admitted_with = svc.in_flight + 1
        status = yield from inner(req, op)
        end = env._now
        if timed:
            advance(end)
        svc.in_flight -= 1
        drop = dropped(status)
        if drop is not None:
            sample(end, end - now, admitted_with, drop)
        return status

    return limited
