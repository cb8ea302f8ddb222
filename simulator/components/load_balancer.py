"""A load balancer: spreads requests over backends with a named strategy, from its own view."""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
from collections.abc import Callable, Generator, Iterable
from typing import Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from simpy import Event, Timeout

from simulator.components.base import (
    BuildContext,
    Component,
    ComponentParams,
    Handler,
    KeyPath,
    Target,
)
from simulator.distributions import Duration
from simulator.messages import ERROR, OK, REJECTED, TIMEOUT, Request
from simulator.registry import register
from simulator.rng import batched

Strategy = Literal[
    "round_robin",
    "weighted_round_robin",
    "random",
    "weighted_random",
    "least_connections",
    "power_of_two",
    "power_of_d",
    "peak_ewma",
    "least_response_time",
    "consistent_hash",
    "join_shortest_queue",
    "geo",
]


class HealthCheck(BaseModel):
    """Active health checks, as Envoy's.

    Every ``interval`` the balancer probes each backend; ``unhealthy_threshold`` failed probes in
    a row mark it unhealthy (no traffic), ``healthy_threshold`` passed probes in a row mark it
    healthy again. A probe fails when the backend is crashed or partitioned from the balancer.
    Probes are instantaneous and cost the backend nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: Duration = Field(5.0, gt=0)
    unhealthy_threshold: int = Field(2, ge=1)
    healthy_threshold: int = Field(1, ge=1)


class OutlierDetection(BaseModel):
    """Passive outlier ejection, as Envoy's ``consecutive_5xx`` detector.

    ``consecutive_errors`` failed replies in a row (``error``, ``timeout`` or ``rejected``) eject
    the backend for ``base_ejection_time`` x the number of times it has been ejected; at most
    ``max_ejection_percent`` of the backends are ejected at once (at least one may be).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    consecutive_errors: int = Field(5, ge=1)
    base_ejection_time: Duration = Field(30.0, gt=0)
    max_ejection_percent: float = Field(10.0, ge=0, le=100)


class LoadBalancerParams(ComponentParams):
    """Parameters of ``kind: load_balancer``.

    Parameters
    ----------
    strategy
        ``round_robin`` (strict cyclic order from a random start); ``weighted_round_robin``
        (smooth weighted round robin, as nginx); ``random``; ``weighted_random``;
        ``least_connections`` (fewest outstanding requests from this balancer, ties broken at
        random); ``power_of_two`` / ``power_of_d`` (``choice_count`` distinct candidates drawn
        uniformly, the one with fewest outstanding requests wins, ties to the first drawn, which
        is random; Envoy's LEAST_REQUEST); ``peak_ewma`` (Finagle: two distinct random
        candidates, lower peak-EWMA latency x (outstanding + 1) wins); ``least_response_time``
        (lowest EWMA latency x (outstanding + 1) over all backends); ``consistent_hash`` (ring of
        ``vnodes`` virtual nodes per backend, md5 of the request key; Envoy's RING_HASH);
        ``join_shortest_queue`` (textbook JSQ: the true number of requests at each backend,
        which no real balancer sees; for comparison only); ``geo`` (geo-routing: the request
        goes to the region chosen by ``geo_by`` for its client's region, the first that has an
        available backend — failing over to the next when a region's backends are all
        unhealthy or ejected — and round robin within it; every backend must be placed in a
        region).
    geo_by
        How ``geo`` ranks regions for clients of a region: ``nearest`` (mean round trip of the
        scenario's latency matrix, the client's own region first when ``local`` is zero; ties
        in backend order; Route 53 geoproximity) or ``latency`` (lowest EWMA, over
        ``decay_time``, of the reply times this balancer measured for that client region and
        backend region, on successful replies; before the first, the mean round trip, so each
        region is tried; regions not in use are not probed again; Route 53 latency-based
        routing).
    backends
        Names of the components to balance over; a replicated component adds all its instances.
    weights
        One weight per backend instance, in order (weighted strategies); default all 1.
    choice_count
        Candidates drawn per request by ``power_of_d`` (``power_of_two``: 2).
    decay_time
        Time constant of the latency EWMA (``peak_ewma``, ``least_response_time``), seconds.
    vnodes
        Virtual nodes per backend on the consistent-hash ring.
    health_check
        Active health checking (Envoy): probe every backend every ``interval``.
    outlier_detection
        Passive outlier ejection (Envoy): eject a backend after consecutive failures.
    healthy_panic_threshold
        Percent (Envoy's default 50): when fewer backends than this are available, balance over
        all of them as if all were healthy, rather than overload the few that are left.
    """

    kind: Literal["load_balancer"] = "load_balancer"
    strategy: Strategy = "round_robin"
    backends: list[str] = Field(min_length=1)
    weights: list[float] | None = None
    choice_count: int = Field(2, ge=2)
    decay_time: Duration = Field(10.0, gt=0)
    vnodes: int = Field(150, ge=1, le=100_000)
    health_check: HealthCheck | None = None
    outlier_detection: OutlierDetection | None = None
    healthy_panic_threshold: float = Field(50.0, ge=0, le=100)
    geo_by: Literal["nearest", "latency"] = "nearest"

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.weights is not None and any(w <= 0 for w in self.weights):
            raise ValueError("weights must be > 0")
        if self.strategy == "power_of_two" and self.choice_count != 2:
            raise ValueError("power_of_two draws 2 candidates; use power_of_d for choice_count")
        return self

    def references(self) -> Iterable[tuple[KeyPath, str]]:
        for i, b in enumerate(self.backends):
            yield ("backends", i), b

    def cross_check(self, components: dict[str, ComponentParams]) -> Iterable[tuple[KeyPath, str]]:
        n = sum(components[b].replicas for b in self.backends)
        if self.weights is not None and len(self.weights) != n:
            yield ("weights",), (
                f"expected one weight per backend instance ({n}), got {len(self.weights)}"
            )
        if self.strategy == "geo":
            for i, b in enumerate(self.backends):
                if components[b].region is None:
                    yield ("backends", i), (f"strategy geo needs every backend placed in a "
                                            f"region; give {b!r} a region")


@register("load_balancer")
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
    """

    Params = LoadBalancerParams
    supported_faults = frozenset({"crash"})

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
        self._full = True
        self._version = 0
        self._uniform = batched(self._rng, lambda rng, k: rng.random(k))
        self._pick = getattr(self, f"_pick_{p.strategy}")()
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
        i = self._pick(req)
        out = self.outstanding
        out[i] += 1
        self.routed[i] += 1
        status = yield from self._handlers[i](req, op)
        out[i] -= 1
        return status

    def _handle_watched(self, req: Request, op: str) -> Handler:
        """``handle`` for strategies that time replies or detectors that watch failures."""
        if not self.up:
            return (yield from self._down())
        i = self._pick(req)
        out = self.outstanding
        out[i] += 1
        self.routed[i] += 1
        t0 = self.env._now
        status = yield from self._handlers[i](req, op)
        out[i] -= 1
        self._learn(i, req, status, self.env._now - t0)
        if self.params.outlier_detection is not None:
            self._watch(i, status)
        return status

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

    # ---- availability -------------------------------------------------------------------
    def _is_available(self, i: int) -> float:
        return float(self._healthy[i] and self._ejected_until[i] <= self.env._now)

    def _refresh(self) -> None:
        n = len(self.backends)
        now = self.env._now
        avail = [i for i in range(n) if self._healthy[i] and self._ejected_until[i] <= now]
        if len(avail) * 100 < self.params.healthy_panic_threshold * n or not avail:
            avail = list(range(n))  # panic: spread over everyone rather than crush a few
        self._avail = avail
        self._full = len(avail) == n
        self._version += 1

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

    # ---- strategies: each returns a pick(request) -> backend index function -------------
    # With every backend available each keeps the draws of the full fleet; otherwise it
    # chooses among ``self._avail``.
    def _ints(self, high: int) -> Callable[[], float]:
        return batched(self._rng, lambda rng, k: rng.integers(0, high, k))

    def _pick_round_robin(self) -> Callable[[Request], int]:
        n = len(self.backends)
        state = [int(self._rng.integers(0, n))]

        def pick(req: Request) -> int:
            avail = self._avail
            i = state[0] % len(avail)
            state[0] = i + 1
            return avail[i]

        return pick

    def _pick_weighted_round_robin(self) -> Callable[[Request], int]:
        weights = self._weights.tolist()
        current = [0.0] * len(weights)

        def pick(req: Request) -> int:
            avail = self._avail
            best = avail[0]
            total = 0.0
            for i in avail:
                w = weights[i]
                total += w
                current[i] += w
                if current[i] > current[best]:
                    best = i
            current[best] -= total
            return best

        return pick

    def _pick_random(self) -> Callable[[Request], int]:
        draw = self._ints(len(self.backends))
        uniform = self._uniform

        def pick(req: Request) -> int:
            if self._full:
                return int(draw())
            avail = self._avail
            return avail[int(uniform() * len(avail))]

        return pick

    def _pick_weighted_random(self) -> Callable[[Request], int]:
        p = self._weights / self._weights.sum()
        n = len(p)
        draw = batched(self._rng, lambda rng, k: rng.choice(n, size=k, p=p))
        uniform = self._uniform
        cache: dict[str, Any] = {"version": -1}

        def pick(req: Request) -> int:
            if self._full:
                return int(draw())
            if cache["version"] != self._version:
                cum = np.cumsum(self._weights[self._avail])
                cache.update(version=self._version, cum=(cum / cum[-1]).tolist())
            return self._avail[bisect.bisect_right(cache["cum"], uniform())]

        return pick

    def _pick_least_connections(self) -> Callable[[Request], int]:
        out = self.outstanding
        return self._argmin_by(out.__getitem__)

    def _pick_join_shortest_queue(self) -> Callable[[Request], int]:
        backends = self.backends
        if not all(hasattr(b, "in_system") for b in backends):
            raise ValueError("join_shortest_queue needs backends that report in_system")
        return self._argmin_by(lambda i: backends[i].in_system)  # type: ignore[attr-defined]

    def _argmin_by(self, value: Callable[[int], float]) -> Callable[[Request], int]:
        tie = self._uniform

        def pick(req: Request) -> int:
            avail = self._avail
            values = [value(i) for i in avail]
            m = min(values)
            ties = [i for i, x in zip(avail, values, strict=True) if x == m]
            return ties[0] if len(ties) == 1 else ties[int(tie() * len(ties))]

        return pick

    def _pair(self) -> Callable[[], tuple[int, int]]:
        """Two distinct available backends, uniformly at random."""
        n = len(self.backends)
        draw = self._ints(n * (n - 1))
        uniform = self._uniform

        def pair() -> tuple[int, int]:
            if self._full:
                i, j = divmod(int(draw()), n - 1)
                return i, j + (j >= i)
            avail = self._avail
            k = len(avail)
            if k == 1:
                return avail[0], avail[0]
            a = int(uniform() * k)
            b = int(uniform() * (k - 1))
            return avail[a], avail[b + (b >= a)]

        return pair

    def _pick_power_of_two(self) -> Callable[[Request], int]:
        if len(self.backends) == 1:
            return lambda req: 0
        pair = self._pair()
        out = self.outstanding

        def pick(req: Request) -> int:
            i, j = pair()
            return i if out[i] <= out[j] else j

        return pick

    def _pick_power_of_d(self) -> Callable[[Request], int]:
        if self.params.choice_count == 2:
            return self._pick_power_of_two()
        n = len(self.backends)
        d = self.params.choice_count
        rows: list[list[int]] = []
        rng = self._rng
        out = self.outstanding

        def candidates() -> list[int]:
            if not self._full:
                avail = self._avail
                k = min(d, len(avail))
                return [avail[int(x)] for x in rng.choice(len(avail), k, replace=False)]
            if not rows:
                block = rng.permuted(np.tile(np.arange(n), (1024, 1)), axis=1)[:, :min(d, n)]
                rows.extend(block.tolist()[::-1])
            return rows.pop()

        def pick(req: Request) -> int:
            cands = candidates()
            best = cands[0]
            for c in cands[1:]:
                if out[c] < out[best]:
                    best = c
            return best

        return pick

    def _pick_peak_ewma(self) -> Callable[[Request], int]:
        if len(self.backends) == 1:
            return lambda req: 0
        pair = self._pair()
        out, ewma = self.outstanding, self._ewma

        def pick(req: Request) -> int:
            i, j = pair()
            return i if ewma[i] * (out[i] + 1) <= ewma[j] * (out[j] + 1) else j

        return pick

    def _pick_least_response_time(self) -> Callable[[Request], int]:
        out, ewma = self.outstanding, self._ewma
        return self._argmin_by(lambda i: ewma[i] * (out[i] + 1))

    def _pick_geo(self) -> Callable[[Request], int]:
        net = self.ctx.regions
        if net is None:
            raise ValueError("strategy geo needs the scenario's regions block")
        members: dict[str, list[int]] = {}
        for i, b in enumerate(self.backends):
            if b.region is None:
                raise ValueError(f"strategy geo: backend {b.name} has no region")
            members.setdefault(b.region, []).append(i)
        self._backend_region = [str(b.region) for b in self.backends]
        regions = list(members)  # in backend order: ties keep it

        def ranked(src: str | None) -> list[str]:
            src = src if src is not None else self.region
            if src is None:
                return regions
            return sorted(regions, key=lambda r: net.mean(src, r) + net.mean(r, src))

        orders: dict[str | None, list[str]] = {s: ranked(s) for s in [None, *net.names]}
        by_latency = self.params.geo_by == "latency"
        # measured reply time per (client region, backend region): [ewma, time of the last
        # sample]; before the first sample, the network round trip alone (an optimistic
        # estimate, so that each region is tried once), marked by a negative time
        self._geo_ewma: dict[tuple[str | None, str], list[float]] = {
            (s, r): [net.mean(s, r) + net.mean(r, s) if s is not None else 0.0, -1.0]
            for s in orders for r in regions}
        turn = dict.fromkeys(regions, 0)
        last: dict[str | None, str] = {}
        cache: dict[str, Any] = {"version": -1, "up": members}

        def pick(req: Request) -> int:
            if cache["version"] != self._version:
                allowed = set(self._avail)
                cache["up"] = {r: [i for i in m if i in allowed] for r, m in members.items()}
                cache["version"] = self._version
            up: dict[str, list[int]] = cache["up"]
            src = req.region
            order = orders[src]
            if by_latency:
                ewma = self._geo_ewma
                live = [r for r in order if up[r]] or order
                region = min(live, key=lambda r: ewma[(src, r)][0])
            else:
                region = next((r for r in order if up[r]), order[0])
            before = last.get(src)
            if before != region:
                last[src] = region
                if before is not None:
                    self._note_route(src, before, region, not up[before], order[0])
            cands = up[region] or members[region]
            k = turn[region]
            turn[region] = k + 1
            return cands[k % len(cands)]

        return pick

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

    def _pick_consistent_hash(self) -> Callable[[Request], int]:
        tokens, owners = hash_ring([b.name for b in self.backends], self.params.vnodes)
        cache: dict[int, int] = {}
        n = len(tokens)
        seen = {"version": 0}

        def pick(req: Request) -> int:
            key = req.key
            if seen["version"] != self._version:
                cache.clear()
                seen["version"] = self._version
            i = cache.get(key) if key >= 0 else None
            if i is None:
                # requests without a key hash their id, so they spread like random
                name = f"key-{key}" if key >= 0 else f"request-{req.id}"
                pos = bisect.bisect_left(tokens, hash64(name))
                i = owners[pos % n]
                if not self._full:  # walk clockwise to the first available owner, as Envoy
                    allowed = set(self._avail)
                    step = 0
                    while i not in allowed and step < n:
                        step += 1
                        i = owners[(pos + step) % n]
                if key >= 0:
                    cache[key] = i
            return i

        return pick


def hash64(text: str) -> int:
    """First 8 bytes of the md5 of ``text``, big-endian (stable across machines)."""
    return int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "big")


def hash_ring(nodes: list[str], vnodes: int) -> tuple[list[int], list[int]]:
    """Return the sorted ring tokens and the node index owning each.

    Token names are ``"{node}#{v}"``; a key belongs to the first token at or after its hash,
    wrapping around.
    """
    pairs = sorted((hash64(f"{node}#{v}"), i) for i, node in enumerate(nodes)
                   for v in range(vnodes))
    return [t for t, _ in pairs], [i for _, i in pairs]
