"""The balancer's fleet-size-independent picks choose exactly what a plain O(n) scan chooses.

Each strategy runs twice on the same random stream: as shipped (bucketed least-load index,
exclusion view, ring bisect, ...) and as the straightforward reference below, which looks at
every backend on every pick (the code before ``benchmarks/fleet_size.py`` existed, with the
one intended change: ``power_of_d`` draws its distinct candidates by the first d steps of a
Fisher-Yates shuffle). Hypothesis drives both through the same random sequences of picks,
completions, latency observations, health changes (panic included) and retries that avoid
the hosts already used, and every pick must agree.
"""
from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Generator
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.components.base import BuildContext
from simulator.components.hashing import hash64, hash_ring
from simulator.components.load_balancer import strategies
from simulator.components.load_balancer.balancer import LoadBalancer
from simulator.components.load_balancer.index import (
    Excluding,
    LeastIndex,
    SmoothWeighted,
    ring_lookup,
    shift,
)
from simulator.components.load_balancer.params import LoadBalancerParams
from simulator.components.load_balancer.strategies import _distinct
from simulator.messages import OK, Request
from simulator.rng import Streams, batched

Ref = tuple[Callable[[Request], int], Callable[[Request, list[int]], int]]


# ---- the reference: every pick scans the fleet ----------------------------------------------


def ref_argmin(lb: LoadBalancer, value: Callable[[int], float]) -> Ref:
    def among(req: Request, avail: list[int]) -> int:
        values = [value(i) for i in avail]
        m = min(values)
        ties = [i for i, x in zip(avail, values, strict=True) if x == m]
        return ties[0] if len(ties) == 1 else ties[int(lb._uniform() * len(ties))]
    return (lambda req: among(req, lb._avail)), among


def ref_pair(lb: LoadBalancer, better: Callable[[int, int], int]) -> Ref:
    n = len(lb.backends)
    draw = batched(lb._rng, lambda rng, k: rng.integers(0, n * (n - 1), k))

    def pair_of(avail: list[int]) -> int:
        k = len(avail)
        if k == 1:
            return better(avail[0], avail[0])
        a = int(lb._uniform() * k)
        b = int(lb._uniform() * (k - 1))
        return better(avail[a], avail[b + (b >= a)])

    def pick(req: Request) -> int:
        if lb._full:
            i, j = divmod(int(draw()), n - 1)
            return better(i, j + (j >= i))
        return pair_of(lb._avail)
    return pick, lambda req, allowed: pair_of(allowed)


def fewest(lb: LoadBalancer, cands: list[int]) -> int:
    return min(cands, key=lambda c: lb.outstanding[c])  # min keeps the first of equals


def ref_power_of_d(lb: LoadBalancer) -> Ref:
    n, d = len(lb.backends), lb.params.choice_count
    rows: list[list[int]] = []

    def drawn(avail: list[int]) -> list[int]:
        k = min(d, len(avail))
        return [avail[int(x)] for x in lb._rng.choice(len(avail), k, replace=False)]

    def pick(req: Request) -> int:
        if not lb._full:
            return fewest(lb, drawn(lb._avail))
        if not rows:
            k = min(d, n)
            for offsets in lb._rng.integers(0, np.arange(n, n - k, -1), size=(1024, k)).tolist():
                perm = list(range(n))  # a literal Fisher-Yates, first k steps
                for j, r in enumerate(offsets):
                    perm[j], perm[j + r] = perm[j + r], perm[j]
                rows.append(perm[:k])
            rows.reverse()
        return fewest(lb, rows.pop())
    return pick, lambda req, allowed: fewest(lb, drawn(allowed))


def ref_power_of_d_replacement(lb: LoadBalancer) -> Ref:
    n, d = len(lb.backends), lb.params.choice_count
    draw = batched(lb._rng, lambda rng, k: rng.integers(0, n, k))
    u = lb._uniform

    def pick(req: Request) -> int:
        if lb._full:
            return fewest(lb, [int(draw()) for _ in range(d)])
        return fewest(lb, [lb._avail[int(u() * len(lb._avail))] for _ in range(d)])
    return pick, lambda req, allowed: fewest(lb, [allowed[int(u() * len(allowed))]
                                                  for _ in range(d)])


def ref_round_robin(lb: LoadBalancer) -> Ref:
    state = [int(lb._rng.integers(0, len(lb.backends)))]

    def pick(req: Request) -> int:
        i = state[0] % len(lb._avail)
        state[0] = i + 1
        return lb._avail[i]

    def among(req: Request, allowed: list[int]) -> int:
        avail, k = lb._avail, len(lb._avail)
        i = state[0] % k
        while avail[i % k] not in allowed:
            i += 1
        state[0] = i % k + 1
        return avail[i % k]
    return pick, among


def ref_random(lb: LoadBalancer) -> Ref:
    draw = batched(lb._rng, lambda rng, k: rng.integers(0, len(lb.backends), k))
    u = lb._uniform
    return ((lambda req: int(draw()) if lb._full else lb._avail[int(u() * len(lb._avail))]),
            lambda req, allowed: allowed[int(u() * len(allowed))])


def ref_weighted_random(lb: LoadBalancer) -> Ref:
    p = lb._weights / lb._weights.sum()
    draw = batched(lb._rng, lambda rng, k: rng.choice(len(p), size=k, p=p))

    def among(req: Request, allowed: list[int]) -> int:
        cum = np.cumsum(lb._weights[allowed])
        return allowed[int(np.searchsorted(cum, lb._uniform() * cum[-1], side="right"))]

    def pick(req: Request) -> int:
        if lb._full:
            return int(draw())
        cum = np.cumsum(lb._weights[lb._avail])
        return lb._avail[bisect.bisect_right((cum / cum[-1]).tolist(), lb._uniform())]
    return pick, among


def ref_weighted_round_robin(lb: LoadBalancer) -> Ref:
    weights = lb._weights.tolist()
    current = [0.0] * len(weights)

    def among(req: Request, avail: list[int]) -> int:
        best, total = avail[0], 0.0
        for i in avail:
            total += weights[i]
            current[i] += weights[i]
            if current[i] > current[best]:
                best = i
        current[best] -= total
        return best
    return (lambda req: among(req, lb._avail)), among


def ref_consistent_hash(lb: LoadBalancer) -> Ref:
    tokens, owners = hash_ring([b.name for b in lb.backends], lb.params.vnodes)
    n = len(tokens)

    def walk(req: Request, ok: list[int]) -> int:
        name = f"key-{req.key}" if req.key >= 0 else f"request-{req.id}"
        pos = bisect.bisect_left(tokens, hash64(name))
        step = 0
        while owners[(pos + step) % n] not in ok:
            step += 1
        return owners[(pos + step) % n]
    # without a cache: a key's owner is a function of the key and the available set
    return (lambda req: walk(req, lb._avail)), walk


def ref_geo(lb: LoadBalancer) -> Ref:
    net = lb.ctx.regions
    assert net is not None
    members: dict[str, list[int]] = {}
    for i, b in enumerate(lb.backends):
        members.setdefault(str(b.region), []).append(i)
    order = sorted(members, key=lambda r: net.mean("a", r) + net.mean(r, "a"))
    turn = dict.fromkeys(members, 0)

    def among(req: Request, allowed: list[int]) -> int:
        left = {r: [i for i in m if i in allowed] for r, m in members.items()}
        live = [r for r in order if left[r]] or order
        region = live[0]
        cands = left[region] or members[region]
        k = turn[region]
        turn[region] = k + 1
        return cands[k % len(cands)]
    return (lambda req: among(req, lb._avail)), among


def reference(lb: LoadBalancer) -> Ref:
    out, ewma, w = lb.outstanding, lb._ewma, lb._weights.tolist()
    s = lb.params.strategy
    if s in ("power_of_two", "power_of_d") and lb.params.replacement:
        return ref_power_of_d_replacement(lb)
    table: dict[str, Callable[[], Ref]] = {
        "round_robin": lambda: ref_round_robin(lb),
        "weighted_round_robin": lambda: ref_weighted_round_robin(lb),
        "random": lambda: ref_random(lb),
        "weighted_random": lambda: ref_weighted_random(lb),
        "least_connections": lambda: ref_argmin(lb, out.__getitem__),
        "weighted_least_connections": lambda: ref_argmin(lb, lambda i: out[i] / w[i]),
        "shortest_expected_delay": lambda: ref_argmin(lb, lambda i: (out[i] + 1) / w[i]),
        "join_shortest_queue": lambda: ref_argmin(lb, lambda i: lb.backends[i].in_system),
        "least_response_time": lambda: ref_argmin(lb, lambda i: ewma[i] * (out[i] + 1)),
        "power_of_two": lambda: ref_pair(lb, lambda i, j: i if out[i] <= out[j] else j),
        "power_of_d": lambda: ref_power_of_d(lb),
        "peak_ewma": lambda: ref_pair(lb, lambda i, j: i if ewma[i] * (out[i] + 1)
                                      <= ewma[j] * (out[j] + 1) else j),
        "consistent_hash": lambda: ref_consistent_hash(lb),
        "geo": lambda: ref_geo(lb),
    }
    return table[s]()


# ---- a balancer over fake backends, driven by hand --------------------------------------------


class Backend:
    """A backend whose calls stay in flight until the test finishes them."""

    def __init__(self, i: int, region: str | None) -> None:
        self.name, self.group, self.region, self.index = f"s[{i}]", "s", region, i
        self.in_system = 0
        self.calls: list[int] = []  # shared log of which backend each call reached

    def handle(self, req: Request, op: str) -> Generator[None, None, int]:
        self.calls.append(self.index)
        self.in_system += 1
        yield None
        self.in_system -= 1
        return OK


class Net:
    """Regions r0..r2, r_k at distance k from the clients' region ``a``."""

    names: ClassVar[list[str]] = ["a", "r0", "r1", "r2"]

    def mean(self, a: str, b: str) -> float:
        return abs(self.names.index(a) - self.names.index(b)) * 0.01

    def hop(self, handle: Any, src: str | None, dst: str | None) -> Any:
        return handle


def balancer(params: LoadBalancerParams, n: int, seed: int, ref: bool) -> LoadBalancer:
    net = Net() if params.strategy == "geo" else None
    recorder = SimpleNamespace(event=lambda *args: None)  # geo's route events go nowhere
    ctx = BuildContext(simpy.Environment(), Streams(seed), recorder,  # type: ignore[arg-type]
                       False, regions=net)  # type: ignore[arg-type]
    log: list[int] = []
    backends = [Backend(i, f"r{i % 3}" if net else None) for i in range(n)]
    for b in backends:
        b.calls = log
    lb = LoadBalancer("lb", 0, params, ctx)
    lb.wire(lambda name: SimpleNamespace(instances=backends))  # type: ignore[arg-type,return-value]
    if ref:  # the same stream, fresh, for the reference
        lb._rng = ctx.generator(lb.name, "choice")
        lb._uniform = batched(lb._rng, lambda rng, k: rng.random(k))
        lb._moved = None
        lb._pick, among = reference(lb)
        lb._among = lambda req, allowed: among(req, list(allowed))  # type: ignore[assignment]
    return lb


STRATEGY_PARAMS: list[dict[str, Any]] = [
    {"strategy": s} for s in (
        "round_robin", "weighted_round_robin", "random", "weighted_random", "least_connections",
        "weighted_least_connections", "shortest_expected_delay", "join_shortest_queue",
        "least_response_time", "power_of_two", "peak_ewma", "consistent_hash", "geo")
] + [{"strategy": "power_of_d", "choice_count": 3},
     {"strategy": "power_of_d", "choice_count": 3, "replacement": True},
     {"strategy": "power_of_two", "replacement": True}]

ops = st.lists(st.one_of(
    st.tuples(st.just("pick"), st.integers(-1, 20), st.lists(st.integers(0, 40), max_size=3)),
    st.tuples(st.just("finish"), st.integers(0, 1000), st.floats(0.0, 0.05)),
    st.tuples(st.just("health"), st.integers(0, 40), st.booleans()),
), max_size=120)


@pytest.mark.parametrize("spec", STRATEGY_PARAMS, ids=lambda p: "-".join(map(str, p.values())))
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 24), seed=st.integers(0, 3), steps=ops,
       weights=st.lists(st.sampled_from([0.5, 1.0, 1.0, 2.0, 3.0]), min_size=24, max_size=24))
def test_picks_match_the_scan(spec: dict[str, Any], n: int, seed: int,
                              steps: list[tuple[Any, ...]], weights: list[float]) -> None:
    extra = ({"weights": weights[:n]} if spec["strategy"] in
             ("weighted_round_robin", "weighted_random", "weighted_least_connections",
              "shortest_expected_delay") else {})
    if spec["strategy"] in ("power_of_two", "peak_ewma") and n == 1:
        return  # a single backend: nothing to choose
    params = LoadBalancerParams(backends=["s"], health_check={"interval": 1}, **spec, **extra)
    fast, ref = balancer(params, n, seed, False), balancer(params, n, seed, True)
    flights: list[tuple[Generator[Any, Any, int], Generator[Any, Any, int]]] = []
    ids = 0
    for op in steps:
        if op[0] == "pick":
            ids += 1
            pair = []
            for lb in (fast, ref):
                req = Request(ids, 0, "read", op[1], 1.0, 0.0)
                req.region = "a"
                if op[2]:
                    req.avoid_hosts = ("lb", {u % n for u in op[2]})
                g = lb.handle(req, "read")
                next(g)
                pair.append(g)
            log_f = fast.backends[0].calls  # type: ignore[attr-defined]
            log_r = ref.backends[0].calls  # type: ignore[attr-defined]
            assert log_f[-1] == log_r[-1], (op, log_f, log_r)
            flights.append((pair[0], pair[1]))
        elif op[0] == "finish" and flights:
            pair = flights.pop(op[1] % len(flights))
            for lb, g in zip((fast, ref), pair, strict=True):
                lb.env._now += op[2]  # the reply took this long (the EWMA learns it)
                with pytest.raises(StopIteration):
                    g.send(None)
        elif op[0] == "health":
            for lb in (fast, ref):
                lb._healthy[op[1] % n] = op[2]
                lb._refresh()
    assert fast.outstanding == ref.outstanding


@given(avail=st.sets(st.integers(0, 30), min_size=1).map(sorted),
       used=st.sets(st.integers(0, 30), max_size=5))
def test_excluding_is_the_filtered_list(avail: list[int], used: set[int]) -> None:
    member = [i in avail for i in range(31)]
    view = Excluding(avail, member, used)
    plain = [i for i in avail if i not in used]
    assert len(view) == len(plain)
    assert [view[k] for k in range(len(view))] == plain == list(view)
    assert all((i in view) == (i in plain) for i in range(-1, 32))
    with pytest.raises(IndexError):
        view[len(plain)]


def ties(index: LeastIndex) -> list[int]:
    bucket, skip = index.least()
    return [bucket[shift(k, skip)] for k in range(len(bucket) - len(skip))]


@given(values=st.lists(st.integers(0, 3), min_size=1, max_size=30),
       moves=st.lists(st.tuples(st.integers(0, 29), st.integers(0, 3)), max_size=200))
def test_least_index_heap_stays_small(values: list[int], moves: list[tuple[int, int]]) -> None:
    """Stale values are dropped: the heap never exceeds twice the live buckets plus 16."""
    index = LeastIndex(values.__getitem__)
    index.reset(range(len(values)))
    for i, v in moves:
        i %= len(values)
        values[i] = v + len(values) * i  # many distinct values come and go
        index.update(i)
        m = min(values)
        assert ties(index) == [j for j, x in enumerate(values) if x == m]
        assert len(index._heap) <= 2 * len(index._buckets) + 17


@settings(max_examples=300)
@given(values=st.lists(st.sampled_from([0, 0, 0, 0, 1, 2]), min_size=1, max_size=30),
       members=st.sets(st.integers(0, 29), min_size=1),
       moves=st.lists(st.tuples(st.integers(0, 29), st.sampled_from([0, 0, 0, 1, 2])),
                      max_size=200),
       used=st.sets(st.integers(0, 29), max_size=4))
def test_dense_buckets_give_the_plain_ties(values: list[int], members: set[int],
                                           moves: list[tuple[int, int]], used: set[int]
                                           ) -> None:
    """With low thresholds, buckets turn dense and back as backends move (mostly to value 0,
    as at low load); the ties (and those outside ``used``) are always the scan's."""
    n = len(values)
    members = {i % n for i in members}
    index = LeastIndex(values.__getitem__, dense_min=5, gaps_enter=1, gaps_max=3)
    index.reset(sorted(members))
    went_dense = index._dense_v is not None
    left = frozenset(u % n for u in used)
    for i, v in moves:
        i %= n
        values[i] = v
        index.update(i)
        went_dense |= index._dense_v is not None
        m = min(values[j] for j in members)
        assert ties(index) == [j for j in sorted(members) if values[j] == m]
        if members - left:
            m = min(values[j] for j in members - left)
            bucket, skip = index.least_excluding(left)
            got = [bucket[shift(k, skip)] for k in range(len(bucket) - len(skip))]
            assert got == [j for j in sorted(members - left) if values[j] == m]
    if len(members) >= 5 and len(moves) > 30:
        assert went_dense or all(v == 0 for v in values)


def test_dense_thresholds_are_checked() -> None:
    with pytest.raises(ValueError):
        LeastIndex(int, dense_min=4, gaps_enter=1, gaps_max=3)


@pytest.mark.parametrize("spec", [
    {"strategy": s} for s in ("least_connections", "weighted_least_connections",
                              "shortest_expected_delay", "least_response_time")])
def test_dense_picks_match_the_scan(spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch
                                    ) -> None:
    """The whole balancer with buckets that turn dense at 5 backends."""
    monkeypatch.setattr(strategies, "LeastIndex", functools.partial(
        LeastIndex, dense_min=5, gaps_enter=1, gaps_max=3))
    test_picks_match_the_scan(spec)


@given(data=st.data(), n=st.integers(1, 12))
def test_distinct_is_a_fisher_yates_prefix(data: st.DataObject, n: int) -> None:
    """Every d (up to n): the sparse shuffle gives the literal shuffle's first d entries."""
    offsets = [data.draw(st.integers(0, n - 1 - j)) for j in range(n)]
    perm = list(range(n))
    for j, r in enumerate(offsets):
        perm[j], perm[j + r] = perm[j + r], perm[j]
    for d in range(1, n + 1):
        assert _distinct(offsets[:d]) == perm[:d]


@given(weights=st.lists(st.sampled_from([0.25, 0.5, 1.0, 2.0, 3.0, 4.0]), min_size=1,
                        max_size=12),
       seed=st.integers(0, 2**32 - 1))
def test_smooth_weighted_is_the_scan(weights: list[float], seed: int) -> None:
    """Long runs (ties between weight classes happen), a fifth of the picks leaving out a
    few candidates."""
    rng = np.random.default_rng(seed)
    used = [set(rng.integers(0, 12, int(rng.integers(1, 4))).tolist())
            if rng.random() < 0.2 else set() for _ in range(300)]
    members = list(range(len(weights)))
    fast = SmoothWeighted(weights)
    fast.reset(members)
    current = [0.0] * len(weights)
    for left_out in used:
        left = frozenset(u for u in left_out if u < len(weights))
        cands = [i for i in members if i not in left]
        if not cands:
            continue
        best, total = cands[0], 0.0
        for i in cands:
            total += weights[i]
            current[i] += weights[i]
            if current[i] > current[best]:
                best = i
        current[best] -= total
        assert fast.pick(left) == best


@given(n=st.sampled_from([1, 2, 3, 8, 64]), vnodes=st.integers(1, 200),
       hashes=st.lists(st.integers(0, 2**64 - 1), max_size=50), near=st.integers(-2, 2))
def test_ring_lookup_is_the_full_bisect(n: int, vnodes: int, hashes: list[int],
                                        near: int) -> None:
    tokens, _ = hash_ring([f"b{i}" for i in range(n)], vnodes)
    point = ring_lookup(tokens)
    probes = hashes + [min(max(t + near, 0), 2**64 - 1) for t in tokens[::7]] + [0, 2**64 - 1]
    assert [point(h) for h in probes] == [bisect.bisect_left(tokens, h) for h in probes]
