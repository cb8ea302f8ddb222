"""The load balancer: its view of the backends, health checks, outlier ejection and the
watched path that learns from replies; the strategies are in
:mod:`simulator.components.load_balancer.strategies`."""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Generator, Iterable
from typing import Any

import numpy as np
from simpy import Event, Timeout

from simulator.components.base import (
    BuildContext,
    Component,
    Handler,
    Target,
)
from simulator.components.load_balancer.index import Excluding
from simulator.components.load_balancer.params import HealthCheck, LoadBalancerParams
from simulator.components.load_balancer.strategies import STRATEGIES
from simulator.messages import ERROR, OK, REJECTED, TIMEOUT, Request
from simulator.rng import batched


class LoadBalancer(Component):
    """One balancer instance with its own view of the backends.

    The view is what a real balancer knows: the requests it has outstanding to each backend, the
    latencies it observed, its health checks and the failures it saw. Several balancer instances
    (``replicas``) each keep their own view, so herding shows up as it does in real fleets.
    Strategies choose among the available backends (healthy and not ejected); below the panic
    threshold, among all.

    Gauges per backend (``label`` is the backend instance): ``outstanding``, ``routed_total``
    and ``available`` (1 or 0). Events: ``unhealthy``, ``healthy``, ``ejected``, ``returned``;
    with ``geo``, ``failover``, ``failback`` and ``reroute`` (detail: ``"<client region> clients:
    <old> -> <new>"``). With regions, a call to a backend crosses the link from the balancer's
    region, or from the request's when the balancer is placed nowhere (GeoDNS, anycast: the
    client reaches the backend directly); a probe fails across a region partition.
    Records no spans: balancing takes no simulated time. Fault: ``crash`` (the balancer
    refuses or black-holes what it receives).

    A request carrying ``avoid_hosts`` for this balancer's group (a retry or hedge with
    ``avoid_previous_hosts``) goes to an available backend outside that set, chosen by the
    strategy's rule among the rest, or by its usual pick when none is left (Envoy's fallback);
    the pick joins the set.
    """

    Params = LoadBalancerParams
    #: it picks a backend per request, so retries and hedges can avoid hosts already used
    picks_hosts = True
    # set by the geo strategy (strategies.pick_geo)
    _backend_region: list[str]
    _geo_ewma: dict[tuple[str | None, str], list[float]]

    def __init__(
        self, group: str, index: int, params: LoadBalancerParams, ctx: BuildContext
    ) -> None:
        super().__init__(group, index, params, ctx)
        self._rng = ctx.generator(self.name, "choice")
        self.backends: list[Component] = []
        self._handlers: list[Callable[[Request, str], Handler]] = []
        self.outstanding: list[int] = []
        self.routed: list[int] = []
        self._pick: Callable[[Request], int] = lambda req: 0
        self._among: Callable[[Request, Excluding], int] = lambda req, allowed: allowed[0]
        #: set by strategies that index backends by load: called with ``i`` whenever
        #: ``outstanding[i]`` or the latency EWMA of ``i`` changes
        self._moved: Callable[[int], None] | None = None
        self.up = True
        self._black_hole = False

    def wire(self, resolve: Callable[[str], Target]) -> None:
        p = self.params
        for name in p.backends:
            self.backends.extend(resolve(name).instances)
        n = len(self.backends)
        if p.weights is not None and len(p.weights) != n:
            raise ValueError(f"weights has {len(p.weights)} values for {n} backend instances")
        net = self.ctx.regions
        self._handlers = [b.handle if net is None else net.hop(b.handle, self.region, b.region)
                          for b in self.backends]
        self.outstanding = [0] * n
        self.routed = [0] * n
        self._weights = np.asarray(p.weights if p.weights is not None else [1.0] * n, float)
        self._ewma = [0.0] * n
        self._ewma_at = [0.0] * n
        # availability: health-check verdicts and ejections; ``_avail`` lists who may be picked
        self._healthy = [True] * n
        self._ejected_until = [0.0] * n
        self._ejections = [0] * n
        self._errors = [0] * n
        self._probe_fails = [0] * n
        self._probe_passes = [0] * n
        self._avail = list(range(n))
        self._in_avail = [True] * n  # i in _avail, for O(1) membership
        self._full = True
        self._version = 0
        self._uniform = batched(self._rng, lambda rng, k: rng.random(k))
        # autoscaled backends come and go: a balancer sees their group's endpoints at once
        self._member = [bool(getattr(b, "in_service", True)) for b in self.backends]
        for group in dict.fromkeys(b.group for b in self.backends):
            membership = self.ctx.membership.get(group)
            if membership is not None:
                membership.listen(self._membership_changed)
        if not all(self._member):
            self._refresh()
        self._pick, self._among = STRATEGIES[p.strategy](self)
        timed = p.strategy in ("peak_ewma", "least_response_time")
        # what a timed reply teaches: per backend (peak EWMA...), or per client and backend
        # region (geo, successes only)
        self._learn: Callable[[int, Request, int, float], None] = (
            self._learn_geo if p.strategy == "geo" else self._learn_backend)
        if timed or p.strategy == "geo" or p.outlier_detection is not None:
            self.handle = self._handle_watched  # type: ignore[method-assign]

    def start(self) -> None:
        if self.params.health_check is not None:
            self.env.process(self._health_checks(self.params.health_check))

    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        for i, b in enumerate(self.backends):
            yield "outstanding", b.name, functools.partial(self.outstanding.__getitem__, i)
            yield "routed_total", b.name, functools.partial(self.routed.__getitem__, i)
            yield "available", b.name, functools.partial(self._is_available, i)

    # ---- serving ------------------------------------------------------------------------
    def handle(self, req: Request, op: str) -> Handler:
        if not self.up:
            return (yield from self._down())
        i = self._pick(req) if req.avoid_hosts is None else self._pick_avoiding(req)
        out = self.outstanding
        out[i] += 1
        self.routed[i] += 1
        moved = self._moved
        if moved is not None:
            moved(i)
        status = yield from self._handlers[i](req, op)
        out[i] -= 1
        if moved is not None:
            moved(i)
        return status

    def _handle_watched(self, req: Request, op: str) -> Handler:
        """``handle`` for strategies that time replies or detectors that watch failures."""
        if not self.up:
            return (yield from self._down())
        i = self._pick(req) if req.avoid_hosts is None else self._pick_avoiding(req)
        out = self.outstanding
        out[i] += 1
        self.routed[i] += 1
        moved = self._moved
        if moved is not None:
            moved(i)
        t0 = self.env._now
        status = yield from self._handlers[i](req, op)
        out[i] -= 1
        if moved is not None:
            moved(i)
        self._learn(i, req, status, self.env._now - t0)
        if self.params.outlier_detection is not None:
            self._watch(i, status)
        return status

    def _pick_avoiding(self, req: Request) -> int:
        """Pick for a request whose retry or hedge policy avoids the backends its call used."""
        avoid = req.avoid_hosts
        assert avoid is not None
        if avoid[0] != self.group:  # meant for another balancer: ignore it
            return self._pick(req)
        req.avoid_hosts = None  # consumed: the backend's own calls do not see it
        used = avoid[1]
        # the available backends minus the used ones, as a view: no copy of the fleet
        allowed = Excluding(self._avail, self._in_avail, used) if used else None
        i = self._among(req, allowed) if allowed else self._pick(req)
        used.add(i)
        return i

    def _learn_backend(self, i: int, req: Request, status: int, rtt: float) -> None:
        self._observe(i, rtt)

    def _learn_geo(self, i: int, req: Request, status: int, rtt: float) -> None:
        if status == OK:
            self._geo_observe(req.region, self._backend_region[i], rtt)

    def _down(self) -> Handler:
        if self._black_hole:
            yield Event(self.env)  # never answered
        return ERROR

    def _observe(self, i: int, rtt: float) -> None:
        # Finagle's peak EWMA: jump up to a slower observation at once, decay towards faster ones
        now = self.env._now
        cost = self._ewma[i]
        if rtt > cost:
            self._ewma[i] = rtt
        else:
            w = math.exp(-(now - self._ewma_at[i]) / self.params.decay_time)
            self._ewma[i] = cost * w + rtt * (1.0 - w)
        self._ewma_at[i] = now
        if self._moved is not None:
            self._moved(i)

    # ---- availability -------------------------------------------------------------------
    def _is_available(self, i: int) -> float:
        return float(self._member[i] and self._healthy[i]
                     and self._ejected_until[i] <= self.env._now)

    def _refresh(self) -> None:
        n = len(self.backends)
        now = self.env._now
        member = self._member
        hosts = [i for i in range(n) if member[i]] or list(range(n))
        avail = [i for i in hosts if self._healthy[i] and self._ejected_until[i] <= now]
        if len(avail) * 100 < self.params.healthy_panic_threshold * len(hosts) or not avail:
            avail = hosts  # panic: spread over every endpoint rather than crush a few
        self._avail = avail
        in_avail = [False] * n
        for i in avail:
            in_avail[i] = True
        self._in_avail = in_avail
        self._full = len(avail) == n
        self._version += 1

    def _membership_changed(self) -> None:
        """An autoscaled backend entered or left its group's endpoints (Envoy's EDS update): a
        new endpoint starts healthy, as Envoy takes new hosts, and only endpoints are probed
        (panic is over the endpoints)."""
        for i, b in enumerate(self.backends):
            serving = bool(getattr(b, "in_service", True))
            if serving != self._member[i]:
                self._member[i] = serving
                self._healthy[i] = True
                self._probe_fails[i] = self._probe_passes[i] = 0
        self._refresh()

    def _watch(self, i: int, status: int) -> None:
        od = self.params.outlier_detection
        assert od is not None
        if status in (ERROR, TIMEOUT, REJECTED):
            self._errors[i] += 1
        else:
            self._errors[i] = 0
            return
        now = self.env._now
        if self._errors[i] < od.consecutive_errors or self._ejected_until[i] > now:
            return
        n = len(self.backends)
        ejected = sum(1 for t in self._ejected_until if t > now)
        if ejected >= max(1, math.floor(n * od.max_ejection_percent / 100)):
            return
        self._ejections[i] += 1
        self._errors[i] = 0
        length = od.base_ejection_time * self._ejections[i]
        self._ejected_until[i] = now + length
        self._refresh()
        name = self.backends[i].name
        self.ctx.recorder.event(now, self.group, self.name, "ejected", f"{name} for {length:g}s")
        self.env.process(self._return_after(i, length))

    def _return_after(self, i: int, length: float) -> Generator[Event, Any, None]:
        yield Timeout(self.env, length)
        self._refresh()
        self.ctx.recorder.event(self.env._now, self.group, self.name, "returned",
                                self.backends[i].name)

    def _health_checks(self, hc: HealthCheck) -> Generator[Event, Any, None]:
        while True:
            yield Timeout(self.env, hc.interval)
            changed = False
            for i, b in enumerate(self.backends):
                if not self._member[i]:
                    continue  # not an endpoint now: nothing to probe
                ok = (b.healthy() and frozenset((self.group, b.group)) not in self.ctx.partitioned
                      and not (self.ctx.regions is not None
                               and self.ctx.regions.cut(self.region, b.region)))
                if ok:
                    self._probe_passes[i] += 1
                    self._probe_fails[i] = 0
                    flip = not self._healthy[i] and self._probe_passes[i] >= hc.healthy_threshold
                else:
                    self._probe_fails[i] += 1
                    self._probe_passes[i] = 0
                    flip = self._healthy[i] and self._probe_fails[i] >= hc.unhealthy_threshold
                if flip:
                    self._healthy[i] = not self._healthy[i]
                    changed = True
                    self.ctx.recorder.event(self.env._now, self.group, self.name,
                                            "healthy" if self._healthy[i] else "unhealthy",
                                            b.name)
            if changed:
                self._refresh()

    # ---- faults -------------------------------------------------------------------------
    def crash(self, black_hole: bool) -> None:
        self.up = False
        self._black_hole = black_hole

    def recover(self) -> None:
        self.up = True

    # ---- geo routing: what the geo strategy (strategies.pick_geo) learns and records -------
    def _geo_observe(self, src: str | None, region: str, rtt: float) -> None:
        now = self.env._now
        cell = self._geo_ewma[(src, region)]
        if cell[1] < 0:
            cell[0] = rtt  # the first measurement replaces the estimate
        else:
            w = math.exp(-(now - cell[1]) / self.params.decay_time)
            cell[0] = cell[0] * w + rtt * (1.0 - w)
        cell[1] = now

    def _note_route(self, src: str | None, old: str, new: str, old_down: bool,
                    preferred: str) -> None:
        """Record a change of the region serving clients of ``src``: ``failover`` (its region
        lost every available backend), ``failback`` (back to the preferred region) or
        ``reroute`` (measured latencies changed the ranking)."""
        event = "failover" if old_down else "failback" if new == preferred else "reroute"
        self.ctx.recorder.event(self.env._now, self.group, self.name, event,
                                f"{src or 'any'} clients: {old} -> {new}")
