"""A load balancer: spreads requests over backends with a named strategy, from its own view."""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
from collections.abc import Callable, Iterable
from typing import Any, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from simulator.components.base import (
    BuildContext,
    Component,
    ComponentParams,
    Handler,
    KeyPath,
    Target,
)
from simulator.distributions import Duration
from simulator.messages import Request
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
]


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
        which no real balancer sees; for comparison only).
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
    """

    kind: Literal["load_balancer"] = "load_balancer"
    strategy: Strategy = "round_robin"
    backends: list[str] = Field(min_length=1)
    weights: list[float] | None = None
    choice_count: int = Field(2, ge=2)
    decay_time: Duration = Field(10.0, gt=0)
    vnodes: int = Field(150, ge=1, le=100_000)

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


@register("load_balancer")
class LoadBalancer(Component):
    """One balancer instance with its own view of the backends.

    The view is what a real balancer knows: the requests it has outstanding to each backend and
    the latencies it observed. Several balancer instances (``replicas``) each keep their own view,
    so herding shows up as it does in real fleets.

    Gauges per backend (``label`` is the backend instance): ``outstanding`` and ``routed_total``.
    Records no spans: balancing takes no simulated time.
    """

    Params = LoadBalancerParams

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

    def wire(self, resolve: Callable[[str], Target]) -> None:
        p = self.params
        for name in p.backends:
            self.backends.extend(resolve(name).instances)
        n = len(self.backends)
        if p.weights is not None and len(p.weights) != n:
            raise ValueError(f"weights has {len(p.weights)} values for {n} backend instances")
        self._handlers = [b.handle for b in self.backends]
        self.outstanding = [0] * n
        self.routed = [0] * n
        self._weights = np.asarray(p.weights if p.weights is not None else [1.0] * n, float)
        self._ewma = [0.0] * n
        self._ewma_at = [0.0] * n
        self._pick = getattr(self, f"_pick_{p.strategy}")()
        if p.strategy in ("peak_ewma", "least_response_time"):
            self.handle = self._handle_timed  # type: ignore[method-assign]

    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        for i, b in enumerate(self.backends):
            yield "outstanding", b.name, functools.partial(self.outstanding.__getitem__, i)
            yield "routed_total", b.name, functools.partial(self.routed.__getitem__, i)

    # ---- serving ------------------------------------------------------------------------
    def handle(self, req: Request, op: str) -> Handler:
        i = self._pick(req)
        out = self.outstanding
        out[i] += 1
        self.routed[i] += 1
        status = yield from self._handlers[i](req, op)
        out[i] -= 1
        return status

    def _handle_timed(self, req: Request, op: str) -> Handler:
        i = self._pick(req)
        out = self.outstanding
        out[i] += 1
        self.routed[i] += 1
        t0 = self.env._now
        status = yield from self._handlers[i](req, op)
        out[i] -= 1
        self._observe(i, self.env._now - t0)
        return status

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

    # ---- strategies: each returns a pick(request) -> backend index function -------------
    def _ints(self, high: int) -> Callable[[], float]:
        return batched(self._rng, lambda rng, k: rng.integers(0, high, k))

    def _pick_round_robin(self) -> Callable[[Request], int]:
        n = len(self.backends)
        state = [int(self._rng.integers(0, n))]

        def pick(req: Request) -> int:
            i = state[0]
            state[0] = i + 1 if i + 1 < n else 0
            return i

        return pick

    def _pick_weighted_round_robin(self) -> Callable[[Request], int]:
        weights = self._weights.tolist()
        total = sum(weights)
        current = [0.0] * len(weights)

        def pick(req: Request) -> int:
            best = 0
            for i, w in enumerate(weights):
                current[i] += w
                if current[i] > current[best]:
                    best = i
            current[best] -= total
            return best

        return pick

    def _pick_random(self) -> Callable[[Request], int]:
        draw = self._ints(len(self.backends))
        return lambda req: int(draw())

    def _pick_weighted_random(self) -> Callable[[Request], int]:
        p = self._weights / self._weights.sum()
        n = len(p)
        draw = batched(self._rng, lambda rng, k: rng.choice(n, size=k, p=p))
        return lambda req: int(draw())

    def _pick_least_connections(self) -> Callable[[Request], int]:
        return self._argmin_by(lambda: self.outstanding)

    def _pick_join_shortest_queue(self) -> Callable[[Request], int]:
        backends = self.backends
        if not all(hasattr(b, "in_system") for b in backends):
            raise ValueError("join_shortest_queue needs backends that report in_system")
        return self._argmin_by(lambda: [b.in_system for b in backends])  # type: ignore[attr-defined]

    def _argmin_by(self, values: Callable[[], list[Any]]) -> Callable[[Request], int]:
        tie = batched(self._rng, lambda rng, k: rng.random(k))

        def pick(req: Request) -> int:
            v = values()
            m = min(v)
            ties = [i for i, x in enumerate(v) if x == m]
            return ties[0] if len(ties) == 1 else ties[int(tie() * len(ties))]

        return pick

    def _pick_power_of_two(self) -> Callable[[Request], int]:
        n = len(self.backends)
        if n == 1:
            return lambda req: 0
        pair = self._ints(n * (n - 1))
        out = self.outstanding

        def pick(req: Request) -> int:
            i, j = divmod(int(pair()), n - 1)
            if j >= i:
                j += 1
            return i if out[i] <= out[j] else j

        return pick

    def _distinct(self, d: int) -> Callable[[], list[int]]:
        n = len(self.backends)
        d = min(d, n)

        rows: list[list[int]] = []
        rng = self._rng

        def draw() -> list[int]:
            if not rows:
                block = rng.permuted(np.tile(np.arange(n), (1024, 1)), axis=1)[:, :d]
                rows.extend(block.tolist()[::-1])
            return rows.pop()

        return draw

    def _pick_power_of_d(self) -> Callable[[Request], int]:
        if self.params.choice_count == 2:
            return self._pick_power_of_two()
        draw = self._distinct(self.params.choice_count)
        out = self.outstanding

        def pick(req: Request) -> int:
            cands = draw()
            best = cands[0]
            for c in cands[1:]:
                if out[c] < out[best]:
                    best = c
            return best

        return pick

    def _pick_peak_ewma(self) -> Callable[[Request], int]:
        n = len(self.backends)
        if n == 1:
            return lambda req: 0
        pair = self._ints(n * (n - 1))
        out, ewma = self.outstanding, self._ewma

        def pick(req: Request) -> int:
            i, j = divmod(int(pair()), n - 1)
            if j >= i:
                j += 1
            return i if ewma[i] * (out[i] + 1) <= ewma[j] * (out[j] + 1) else j

        return pick

    def _pick_least_response_time(self) -> Callable[[Request], int]:
        out, ewma = self.outstanding, self._ewma
        return self._argmin_by(lambda: [e * (o + 1) for e, o in zip(ewma, out, strict=True)])

    def _pick_consistent_hash(self) -> Callable[[Request], int]:
        tokens, owners = hash_ring([b.name for b in self.backends], self.params.vnodes)
        cache: dict[int, int] = {}
        n = len(tokens)

        def pick(req: Request) -> int:
            key = req.key
            i = cache.get(key) if key >= 0 else None
            if i is None:
                # requests without a key hash their id, so they spread like random
                name = f"key-{key}" if key >= 0 else f"request-{req.id}"
                pos = bisect.bisect_left(tokens, hash64(name))
                i = owners[pos if pos < n else 0]
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
