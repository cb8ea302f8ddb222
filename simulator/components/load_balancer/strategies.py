"""Backend selection strategies of the load balancer: one builder per strategy, each
returning the balancer's two closures over its state, ``pick(request) -> backend index`` and
``among(request, allowed) -> backend index``, and the name -> builder table
:data:`STRATEGIES` the balancer looks its strategy up in.

A pick costs O(1) or O(log n) in the number n of backends (``benchmarks/fleet_size.py``):
the least-loaded rules keep the available backends bucketed by load
(:class:`~simulator.components.load_balancer.index.LeastIndex`, updated when a request is
sent or finishes and when availability changes, never rebuilt per pick), consistent hash
bisects one slice of a sorted ring
(:func:`~simulator.components.load_balancer.index.ring_lookup`), and ``allowed`` is a view
that leaves out the used backends without copying the fleet
(:class:`~simulator.components.load_balancer.index.Excluding`). Two rules still look at
every backend: ``join_shortest_queue`` (it reads the backends' own queues, which change
without the balancer knowing) and the exclusion path of ``weighted_random``.

With every backend available a pick keeps the draws of the full fleet; otherwise it chooses
among ``lb._avail`` (what health checks and outlier ejection leave). ``among`` chooses within
``allowed``, a non-empty part of ``lb._avail`` in its order (ascending): the available backends
that no earlier attempt or hedged copy of the call used (see ``avoid_previous_hosts``).
It applies the same rule to fewer candidates: round robin skips the others, random and
power of two draw among the rest, least-loaded rules compare the rest, consistent hash
walks on along the ring.
"""
from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from simulator.components.hashing import hash64, hash_ring
from simulator.components.load_balancer.index import (
    Excluding,
    LeastIndex,
    SmoothWeighted,
    ring_lookup,
    shift,
)
from simulator.messages import Request
from simulator.rng import batched

if TYPE_CHECKING:
    from simulator.components.load_balancer.balancer import LoadBalancer

Pick = Callable[[Request], int]
Among = Callable[[Request, Excluding], int]
Strategy = tuple[Pick, Among]


def _ints(lb: LoadBalancer, high: int) -> Callable[[], float]:
    return batched(lb._rng, lambda rng, k: rng.integers(0, high, k))

def pick_round_robin(lb: LoadBalancer) -> Strategy:
    n = len(lb.backends)
    state = [int(lb._rng.integers(0, n))]

    def pick(req: Request) -> int:
        avail = lb._avail
        i = state[0] % len(avail)
        state[0] = i + 1
        return avail[i]

    def among(req: Request, allowed: Excluding) -> int:
        avail = lb._avail
        k = len(avail)
        used = allowed.used
        i = state[0] % k
        while avail[i % k] in used:  # skip the backends already used
            i += 1
        state[0] = i % k + 1
        return avail[i % k]

    return pick, among

def pick_weighted_round_robin(lb: LoadBalancer) -> Strategy:
    """Smooth weighted round robin, as nginx (:class:`SmoothWeighted`: the scan's choices in
    O(K + log n) for K distinct weights)."""
    wrr = SmoothWeighted(lb._weights.tolist())
    seen = [-1]  # availability version wrr holds

    def pick(req: Request) -> int:
        if seen[0] != lb._version:
            wrr.reset(lb._avail)
            seen[0] = lb._version
        return wrr.pick()

    def among(req: Request, allowed: Excluding) -> int:
        if seen[0] != lb._version:
            wrr.reset(lb._avail)
            seen[0] = lb._version
        return wrr.pick(allowed.used)

    return pick, among

def pick_random(lb: LoadBalancer) -> Strategy:
    draw = _ints(lb, len(lb.backends))
    uniform = lb._uniform

    def pick(req: Request) -> int:
        if lb._full:
            return int(draw())
        avail = lb._avail
        return avail[int(uniform() * len(avail))]

    def among(req: Request, allowed: Excluding) -> int:
        return allowed[int(uniform() * len(allowed))]

    return pick, among

def pick_weighted_random(lb: LoadBalancer) -> Strategy:
    p = lb._weights / lb._weights.sum()
    n = len(p)
    draw = batched(lb._rng, lambda rng, k: rng.choice(n, size=k, p=p))
    uniform = lb._uniform
    cache: dict[str, Any] = {"version": -1}

    def pick(req: Request) -> int:
        if lb._full:
            return int(draw())
        if cache["version"] != lb._version:
            cum = np.cumsum(lb._weights[lb._avail])
            cache.update(version=lb._version, cum=(cum / cum[-1]).tolist())
        return lb._avail[bisect.bisect_right(cache["cum"], uniform())]

    def among(req: Request, allowed: Excluding) -> int:
        # O(n), on retries only: a cumulative sum over the rest, as the rounding of the
        # chosen point depends on every weight before it
        rest = list(allowed)
        cum = np.cumsum(lb._weights[rest])
        return rest[int(np.searchsorted(cum, uniform() * cum[-1], side="right"))]

    return pick, among

def pick_least_connections(lb: LoadBalancer) -> Strategy:
    out = lb.outstanding
    return _argmin_by(lb, out.__getitem__)

def pick_weighted_least_connections(lb: LoadBalancer) -> Strategy:
    """LVS ``wlc``: fewest outstanding requests per unit of weight, ``n_i / w_i``; ties at random.

    An idle backend (``n_i = 0``) ties with every other idle one whatever its weight: WLC only
    looks at speed once backends are busy (compare :func:`pick_shortest_expected_delay`).
    """
    out = lb.outstanding
    weights = lb._weights.tolist()
    return _argmin_by(lb, lambda i: out[i] / weights[i])

def pick_shortest_expected_delay(lb: LoadBalancer) -> Strategy:
    """LVS ``sed``: the lowest expected delay ``(n_i + 1) / w_i`` of the new request, the weight
    standing for the backend's service rate (set ``weights`` to the relative speeds); ties at
    random. Unlike WLC it prefers an idle fast backend to an idle slow one.
    """
    out = lb.outstanding
    weights = lb._weights.tolist()
    return _argmin_by(lb, lambda i: (out[i] + 1) / weights[i])

def pick_join_shortest_queue(lb: LoadBalancer) -> Strategy:
    backends = lb.backends
    if not all(hasattr(b, "in_system") for b in backends):
        raise ValueError("join_shortest_queue needs backends that report in_system")
    # the backends' queues change without the balancer seeing it: scan them all
    return _argmin_by(lb, lambda i: backends[i].in_system,  # type: ignore[attr-defined]
                      indexed=False)

def _argmin_by(lb: LoadBalancer, value: Callable[[int], float], *,
               indexed: bool = True) -> Strategy:
    """The available backend of least ``value``; ties at random, one uniform draw among them
    in backend order (none when there is one).

    ``indexed``: ``value(i)`` changes only when the balancer calls ``lb._moved(i)`` (sent,
    finished, latency observed), so a :class:`LeastIndex` answers in O(log n); otherwise
    every available backend is scanned per pick.
    """
    tie = lb._uniform
    if not indexed:
        def scan(req: Request, avail: Sequence[int]) -> int:
            values = [value(i) for i in avail]
            m = min(values)
            ties = [i for i, x in zip(avail, values, strict=True) if x == m]
            return ties[0] if len(ties) == 1 else ties[int(tie() * len(ties))]

        return (lambda req: scan(req, lb._avail)), scan

    index = LeastIndex(value)
    seen = [-1]  # availability version the index holds
    lb._moved = index.update

    def fresh() -> None:
        if seen[0] != lb._version:
            index.reset(lb._avail)
            seen[0] = lb._version

    def pick(req: Request) -> int:
        fresh()
        ties, skip = index.least()
        k = len(ties) - len(skip)
        j = 0 if k == 1 else int(tie() * k)
        return ties[shift(j, skip)] if skip else ties[j]

    def among(req: Request, allowed: Excluding) -> int:
        fresh()
        bucket, skip = index.least_excluding(allowed.used)
        k = len(bucket) - len(skip)
        return bucket[shift(0 if k == 1 else int(tie() * k), skip)]

    return pick, among

def _pair(lb: LoadBalancer) -> tuple[Callable[[], tuple[int, int]],
                                      Callable[[Sequence[int]], tuple[int, int]]]:
    """Two distinct available backends, uniformly at random; two distinct ones of a list."""
    n = len(lb.backends)
    draw = _ints(lb, n * (n - 1))
    uniform = lb._uniform

    def pair() -> tuple[int, int]:
        if lb._full:
            i, j = divmod(int(draw()), n - 1)
            return i, j + (j >= i)
        return pair_of(lb._avail)

    def pair_of(avail: Sequence[int]) -> tuple[int, int]:
        k = len(avail)
        if k == 1:
            return avail[0], avail[0]
        a = int(uniform() * k)
        b = int(uniform() * (k - 1))
        return avail[a], avail[b + (b >= a)]

    return pair, pair_of

def _single(lb: LoadBalancer) -> Strategy:
    return (lambda req: 0), (lambda req, allowed: allowed[0])

def pick_power_of_two(lb: LoadBalancer) -> Strategy:
    if lb.params.replacement:
        return pick_power_of_d_with_replacement(lb)
    if len(lb.backends) == 1:
        return _single(lb)
    pair, pair_of = _pair(lb)
    out = lb.outstanding

    def pick(req: Request) -> int:
        i, j = pair()
        return i if out[i] <= out[j] else j

    def among(req: Request, allowed: Excluding) -> int:
        i, j = pair_of(allowed)
        return i if out[i] <= out[j] else j

    return pick, among

def _fewest(out: list[int], cands: list[int]) -> int:
    """The candidate with the fewest outstanding requests (the first drawn on a tie)."""
    best = cands[0]
    for c in cands[1:]:
        if out[c] < out[best]:
            best = c
    return best


def pick_power_of_d_with_replacement(lb: LoadBalancer) -> Strategy:
    """``choice_count`` candidates drawn independently and uniformly (one backend may be drawn
    more than once, so fewer than d distinct ones are compared); fewest outstanding wins, ties
    to the first drawn."""
    d = lb.params.choice_count
    n = len(lb.backends)
    draw = batched(lb._rng, lambda rng, k: rng.integers(0, n, k))
    uniform = lb._uniform
    out = lb.outstanding

    def pick(req: Request) -> int:
        if lb._full:
            cands = [int(draw()) for _ in range(d)]
        else:
            avail = lb._avail
            cands = [avail[int(uniform() * len(avail))] for _ in range(d)]
        return _fewest(out, cands)

    def among(req: Request, allowed: Excluding) -> int:
        return _fewest(out, [allowed[int(uniform() * len(allowed))] for _ in range(d)])

    return pick, among

def pick_power_of_d(lb: LoadBalancer) -> Strategy:
    if lb.params.replacement:
        return pick_power_of_d_with_replacement(lb)
    if lb.params.choice_count == 2:
        return pick_power_of_two(lb)
    n = len(lb.backends)
    d = lb.params.choice_count
    k = min(d, n)
    rows: list[list[int]] = []
    rng = lb._rng
    out = lb.outstanding
    # the j-th candidate of a row is uniform over the n - j backends not drawn yet
    highs = np.arange(n, n - k, -1)

    def drawn(avail: Sequence[int]) -> list[int]:
        k = min(d, len(avail))
        return [avail[int(x)] for x in rng.choice(len(avail), k, replace=False)]

    def candidates() -> list[int]:
        if not lb._full:
            return drawn(lb._avail)
        if not rows:
            block = rng.integers(0, highs, size=(1024, k)).tolist()
            rows.extend(_distinct(r) for r in reversed(block))
        return rows.pop()

    def pick(req: Request) -> int:
        return _fewest(out, candidates())

    def among(req: Request, allowed: Excluding) -> int:
        return _fewest(out, drawn(allowed))

    return pick, among

def _distinct(offsets: list[int]) -> list[int]:
    """Distinct backends from the draws of a Fisher-Yates shuffle's first steps: step j
    swaps position j with position j + ``offsets[j]`` of the identity permutation, which a
    dict of the few displaced positions stands for (O(d), not O(n))."""
    moved: dict[int, int] = {}
    picked = []
    for j, r in enumerate(offsets):
        t = j + r
        picked.append(moved.get(t, t))
        moved[t] = moved.get(j, j)
    return picked


def pick_peak_ewma(lb: LoadBalancer) -> Strategy:
    if len(lb.backends) == 1:
        return _single(lb)
    pair, pair_of = _pair(lb)
    out, ewma = lb.outstanding, lb._ewma

    def cheaper(i: int, j: int) -> int:
        return i if ewma[i] * (out[i] + 1) <= ewma[j] * (out[j] + 1) else j

    def pick(req: Request) -> int:
        return cheaper(*pair())

    def among(req: Request, allowed: Excluding) -> int:
        return cheaper(*pair_of(allowed))

    return pick, among

def pick_least_response_time(lb: LoadBalancer) -> Strategy:
    out, ewma = lb.outstanding, lb._ewma
    return _argmin_by(lb, lambda i: ewma[i] * (out[i] + 1))

def pick_geo(lb: LoadBalancer) -> Strategy:
    net = lb.ctx.regions
    if net is None:
        raise ValueError("strategy geo needs the scenario's regions block")
    members: dict[str, list[int]] = {}
    for i, b in enumerate(lb.backends):
        if b.region is None:
            raise ValueError(f"strategy geo: backend {b.name} has no region")
        members.setdefault(b.region, []).append(i)
    lb._backend_region = [str(b.region) for b in lb.backends]
    regions = list(members)  # in backend order: ties keep it

    def ranked(src: str | None) -> list[str]:
        src = src if src is not None else lb.region
        if src is None:
            return regions
        return sorted(regions, key=lambda r: net.mean(src, r) + net.mean(r, src))

    orders: dict[str | None, list[str]] = {s: ranked(s) for s in [None, *net.names]}
    by_latency = lb.params.geo_by == "latency"
    # measured reply time per (client region, backend region): [ewma, time of the last
    # sample]; before the first sample, the network round trip alone (an optimistic
    # estimate, so that each region is tried once), marked by a negative time
    lb._geo_ewma = {
        (s, r): [net.mean(s, r) + net.mean(r, s) if s is not None else 0.0, -1.0]
        for s in orders for r in regions}
    turn = dict.fromkeys(regions, 0)
    last: dict[str | None, str] = {}
    cache: dict[str, Any] = {"version": -1, "up": members}

    def current_up() -> dict[str, list[int]]:
        """Available backends per region, ascending (rebuilt when availability changes)."""
        if cache["version"] != lb._version:
            member = lb._in_avail
            cache["up"] = {r: [i for i in m if member[i]] for r, m in members.items()}
            cache["version"] = lb._version
        up: dict[str, list[int]] = cache["up"]
        return up

    def pick(req: Request) -> int:
        up = current_up()
        src = req.region
        order = orders[src]
        if by_latency:
            ewma = lb._geo_ewma
            live = [r for r in order if up[r]] or order
            region = min(live, key=lambda r: ewma[(src, r)][0])
        else:
            region = next((r for r in order if up[r]), order[0])
        before = last.get(src)
        if before != region:
            last[src] = region
            if before is not None:
                lb._note_route(src, before, region, not up[before], order[0])
        return next_in(region, up[region] or members[region])

    def next_in(region: str, cands: list[int]) -> int:
        k = turn[region]
        turn[region] = k + 1
        return cands[k % len(cands)]

    def among(req: Request, allowed: Excluding) -> int:
        # the same choice of region among those with an allowed backend (no route event: a
        # retry's detour is not a change of route), then round robin within it over the
        # region's available backends minus the used ones
        up = current_up()
        gone: dict[str, list[int]] = {}
        for u in allowed.used:
            gone.setdefault(lb._backend_region[u], []).append(u)
        src = req.region
        live = [r for r in orders[src] if len(up[r]) > len(gone.get(r, ()))]
        if by_latency:
            ewma = lb._geo_ewma
            region = min(live, key=lambda r: ewma[(src, r)][0])
        else:
            region = live[0]
        cands = up[region]
        skip = sorted(bisect.bisect_left(cands, u) for u in gone.get(region, ()))
        k = turn[region]
        turn[region] = k + 1
        return cands[shift(k % (len(cands) - len(skip)), skip)]

    return pick, among

def pick_consistent_hash(lb: LoadBalancer) -> Strategy:
    tokens, owners = hash_ring([b.name for b in lb.backends], lb.params.vnodes)
    point = ring_lookup(tokens)  # bisect_left(tokens, h), within one slice of the ring
    cache: dict[int, int] = {}
    n = len(tokens)
    seen = {"version": 0}

    def pick(req: Request) -> int:
        key = req.key
        if seen["version"] != lb._version:
            cache.clear()
            seen["version"] = lb._version
        i = cache.get(key) if key >= 0 else None
        if i is None:
            # requests without a key hash their id, so they spread like random
            name = f"key-{key}" if key >= 0 else f"request-{req.id}"
            pos = point(hash64(name))
            i = owners[pos % n]
            if not lb._full:  # walk clockwise to the first available owner, as Envoy
                member = lb._in_avail
                step = 0
                while not member[i] and step < n:
                    step += 1
                    i = owners[(pos + step) % n]
            if key >= 0:
                cache[key] = i
        return i

    def among(req: Request, allowed: Excluding) -> int:
        # walk clockwise from the key's point to the first allowed owner (Envoy's ring hash
        # on a retry that rejects the previous hosts)
        key = req.key
        name = f"key-{key}" if key >= 0 else f"request-{req.id}"
        pos = point(hash64(name))
        member, used = lb._in_avail, allowed.used
        step = 0
        while not member[i := owners[(pos + step) % n]] or i in used:
            step += 1
        return i

    return pick, among


#: Strategy name -> builder of its ``(pick, among)`` functions.
STRATEGIES: dict[str, Callable[[LoadBalancer], Strategy]] = {
    "round_robin": pick_round_robin,
    "weighted_round_robin": pick_weighted_round_robin,
    "random": pick_random,
    "weighted_random": pick_weighted_random,
    "least_connections": pick_least_connections,
    "weighted_least_connections": pick_weighted_least_connections,
    "shortest_expected_delay": pick_shortest_expected_delay,
    "join_shortest_queue": pick_join_shortest_queue,
    "power_of_two": pick_power_of_two,
    "power_of_d": pick_power_of_d,
    "peak_ewma": pick_peak_ewma,
    "least_response_time": pick_least_response_time,
    "geo": pick_geo,
    "consistent_hash": pick_consistent_hash,
}
