"""The cache component: policies, TTLs, patterns, versions and staleness, stampede protection,
tiers, faults, and the tables.

Quick tests; the long runs against theory are in ``test_validation_cache.py``. Expected values
are derived from the scenario by hand (exact latencies, exact sequences of hits and misses) or
from ``tests/theory.py``; never from earlier runs of the simulator.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pytest
from simpy import Timeout

import simulator
from simulator import registry
from simulator.components.base import BuildContext, Component, ComponentParams, Handler
from simulator.components.cache.eviction import make_policy
from simulator.messages import OK, Request
from tests.conftest import run

try:
    import theory as th
except ModuleNotFoundError:  # pragma: no cover - e.g. pytest --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import theory as th


# --------------------------------------------------------------------------------------------
# a versioned store for these tests (the contract a cache expects of its backing)


class StoreParams(ComponentParams):
    """A key-value store with a version per key; ``latency`` per operation (seconds)."""

    kind: Literal["versioned_store"] = "versioned_store"
    latency: float = 0.0
    write_latency: float | None = None


class VersionedStore(Component):
    """A read returns the version committed when it started (an MVCC snapshot), after
    ``latency``; a write commits version + 1 at its end, after ``write_latency``."""

    Params = StoreParams
    kind: ClassVar[str] = "versioned_store"

    def __init__(self, group: str, index: int, params: StoreParams, ctx: BuildContext) -> None:
        super().__init__(group, index, params, ctx)
        self.versions: dict[int, int] = {}
        self.reads_total = 0
        self.writes_total = 0
        self.write_log: list[tuple[float, int, int]] = []  # (time, key, version)

    def committed_version(self, key: int) -> int:
        return self.versions.get(key, 0)

    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        yield "reads_total", "", lambda: self.reads_total
        yield "writes_total", "", lambda: self.writes_total

    def handle(self, req: Request, op: str) -> Handler:
        p = self.params
        write = op == "write"
        delay = p.write_latency if write and p.write_latency is not None else p.latency
        snapshot = self.versions.get(req.key, 0)
        if delay:
            yield Timeout(self.env, delay)
        if write:
            v = self.versions.get(req.key, 0) + 1
            self.versions[req.key] = v
            self.writes_total += 1
            self.write_log.append((self.env.now, req.key, v))
            req.version = v
        else:
            self.reads_total += 1
            req.version = snapshot
        return OK


@pytest.fixture
def store_kind() -> Iterator[None]:
    """Register ``kind: versioned_store`` for one test."""
    registry.register("versioned_store")(VersionedStore)
    try:
        yield
    finally:
        registry.unregister("versioned_store")


def gauge(r: simulator.Results, metric: str, component: str = "cache") -> float:
    """Final value of a gauge summed over a component's instances."""
    s = r.samples[(r.samples["metric"] == metric) & (r.samples["component"] == component)]
    last = s["time"].max()
    return float(s.loc[s["time"] == last, "value"].sum())


def keyed(rate: float, n: int, mix: dict[str, float] | None = None, target: Any = "cache",
          process: str = "constant", popularity: str = "uniform") -> dict[str, Any]:
    return {"arrivals": {"process": process, "rate": rate},
            "keys": {"popularity": popularity, "n": n},
            "mix": mix or {"read": 1.0}, "target": target}


# --------------------------------------------------------------------------------------------
# eviction policies against plain reference implementations


def reference_hits(policy: str, keys: list[int], capacity: int) -> list[bool]:
    """Hits of a naive cache (lists and counters, O(n) per step) on a key sequence."""
    order: list[int] = []  # eviction order: first = next victim (LRU / FIFO)
    count: dict[int, int] = {}
    history: dict[int, int] = {}
    last_use: dict[int, int] = {}
    out = []
    for t, k in enumerate(keys):
        history[k] = history.get(k, 0) + 1
        if k in order or (policy.startswith("lfu") and k in count):
            out.append(True)
            if policy == "lru":
                order.remove(k)
                order.append(k)
            if policy.startswith("lfu"):
                count[k] += 1
                last_use[k] = t
            continue
        out.append(False)
        if policy in ("lru", "fifo"):
            if len(order) >= capacity:
                order.pop(0)
            order.append(k)
        else:
            c = history[k] if policy == "lfu_all" else 1
            if len(count) >= capacity:
                # least count, then least recently used among equals
                victim = min(count, key=lambda x: (count[x], last_use[x]))
                if policy == "lfu_all" and c <= count[victim]:
                    continue  # not admitted
                del count[victim]
            count[k] = c
            last_use[k] = t
    return out


@pytest.mark.parametrize("policy", ["lru", "fifo", "lfu", "lfu_all"])
def test_policy_matches_a_naive_implementation(policy: str) -> None:
    rng = random.Random(7)
    for capacity in (1, 3, 8):
        keys = [min(int(rng.paretovariate(0.8)), 40) for _ in range(3000)]
        name, counts = ("lfu", "all_keys") if policy == "lfu_all" else (policy, "in_cache")
        impl = make_policy(name, counts)
        hits = []
        for k in keys:
            if k in impl.entries:
                hits.append(True)
                if impl.touch is not None:
                    impl.touch(k)
                continue
            hits.append(False)
            if impl.on_miss is not None:
                impl.on_miss(k)
            if len(impl.entries) >= capacity:
                if not impl.admit(k):
                    continue
                impl.evict()
            impl.insert(k, 0)
        assert hits == reference_hits(policy, keys, capacity), (policy, capacity)


def test_random_eviction_keeps_a_consistent_uniform_victim_set() -> None:
    draws = iter(np.random.default_rng(3).random(100_000).tolist())
    impl = make_policy("random", uniform=lambda: next(draws))
    victims: dict[int, int] = {}
    for k in range(20_000):
        if len(impl.entries) >= 10:
            v = impl.evict()
            victims[v] = victims.get(v, 0) + 1
        impl.insert(k, k)
        if k % 7 == 0 and k in impl.entries:
            impl.remove(k)
        assert len(impl.entries) <= 10
    # an entry's age at eviction is geometric under random replacement: no position is favoured
    assert set(impl.entries) == set(impl._keys)  # type: ignore[union-attr]
    assert all(impl._keys[i] == k for k, i in impl._pos.items())  # type: ignore[union-attr]


def test_lfu_removals_keep_the_minimum_right() -> None:
    impl = make_policy("lfu")
    for k in range(5):
        impl.insert(k, 0)
    for _ in range(3):
        impl.touch(0)  # type: ignore[misc]
    impl.touch(1)  # type: ignore[misc]
    impl.remove(2)
    impl.remove(3)
    impl.remove(4)  # the count-1 bucket is gone: the minimum is now 2 (key 1)
    assert impl.evict() == 1
    assert impl.evict() == 0


# --------------------------------------------------------------------------------------------
# hit ratios under IRM: quick checks (the long ones are in test_validation_cache.py)


def irm(policy: str, capacity: int, n: int, s: float, requests: int, warm: int,
        **cache: Any) -> float:
    """Hit ratio over ``requests`` IRM reads after ``warm`` warm-up reads (closed loop: one
    user, 1 ms apart, zero latency, so the cache sees i.i.d. Zipf keys)."""
    r = run({
        "duration": (warm + requests) * 1e-3, "warmup": warm * 1e-3,
        "metrics": {"spans": False, "interval": warm * 1e-3},
        "workloads": {"c": {"arrivals": {"process": "closed", "users": 1, "think_time": 0.001},
                            "keys": {"popularity": "zipf", "n": n, "s": s}, "target": "cache"}},
        "components": {"cache": {"kind": "cache", "backing": "db", "policy": policy,
                                 "capacity": capacity, **cache},
                       "db": {"kind": "service", "workers": 100}},
    })
    row = r.cache_summary().set_index("name").loc["cache"]
    assert row["reads"] == pytest.approx(requests, abs=2)
    return float(row["hit_ratio"])


@pytest.mark.parametrize("policy,expected", [
    ("lru", lambda p, c: th.che_lru_hit_ratio(p, c)),
    ("fifo", lambda p, c: th.fifo_random_hit_ratio_exact(p, c)),
    ("random", lambda p, c: th.fifo_random_hit_ratio_exact(p, c)),
    ("lfu", lambda p, c: th.lfu_static_hit_ratio(p, c)),
])
def test_irm_hit_ratio_quick(policy: str, expected: Any) -> None:
    extra = {"lfu_counts": "all_keys"} if policy == "lfu" else {}
    h = irm(policy, 50, 1000, 0.9, 100_000, 20_000, **extra)
    want = expected(th.zipf_probs(1000, 0.9), 50)
    # ~100k requests: 4 binomial standard errors of h are about 2.5% of h here
    assert h == pytest.approx(want, rel=0.03), (policy, h, want)


def test_in_cache_lfu_is_worse_than_perfect_lfu() -> None:
    perfect = irm("lfu", 50, 1000, 0.9, 50_000, 10_000, lfu_counts="all_keys")
    in_cache = irm("lfu", 50, 1000, 0.9, 50_000, 10_000)
    assert in_cache < perfect - 0.02


# --------------------------------------------------------------------------------------------
# TTL


def one_key(ttl_mode: str, times: int = 12) -> list[str]:
    """One key read every 0.4 s (first at 0.4 s) by a cache with a 1 s TTL."""
    r = run({
        "duration": 0.4 * times + 0.1,
        "workloads": {"w": keyed(2.5, 1)},
        "components": {"cache": {"kind": "cache", "backing": "db", "policy": "ttl", "ttl": 1.0,
                                 "ttl_mode": ttl_mode},
                       "db": {"kind": "service"}},
    })
    return r.requests["cache"].astype(str).tolist()


def test_ttl_after_write_expires_from_insertion() -> None:
    # filled at 0.4 -> expires 1.4: hits at 0.8 and 1.2, miss at 1.6 (filled again), ...
    assert one_key("after_write") == ["miss", "hit", "hit"] * 4


def test_ttl_after_access_is_reset_by_every_hit() -> None:
    assert one_key("after_access") == ["miss"] + ["hit"] * 11


def test_expired_entries_free_their_slot_and_leave_at_their_expiry() -> None:
    # keys 0..9 in turn every 0.1 s, TTL 0.35 s: each key is cached 0.35 s out of every 1 s
    r = run({
        "duration": 50, "warmup": 10, "metrics": {"interval": 1.0},
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 10},
                            "keys": {"popularity": "sequential", "n": 10}, "target": "cache"}},
        "components": {"cache": {"kind": "cache", "backing": "db", "policy": "ttl", "ttl": 0.35},
                       "db": {"kind": "service"}},
    })
    row = r.cache_summary().set_index("name").loc["cache"]
    assert row["hit_ratio"] == 0
    assert row["mean_entries"] == pytest.approx(10 * 0.35, rel=1e-6)


def test_ttl_hit_ratio_quick() -> None:
    """Per-key Poisson requests (rate 200/s over Zipf(0.8) of 500 keys), TTL 0.5 s."""
    lam = 200.0 * th.zipf_probs(500, 0.8)
    for mode, formula in (("after_write", th.ttl_nonreset_hit_ratio),
                          ("after_access", th.ttl_reset_hit_ratio)):
        r = run({
            "duration": 600, "warmup": 60, "metrics": {"spans": False, "interval": 60},
            "workloads": {"c": {"arrivals": {"process": "poisson", "rate": 200},
                                "keys": {"popularity": "zipf", "n": 500, "s": 0.8},
                                "target": "cache"}},
            "components": {"cache": {"kind": "cache", "backing": "db", "policy": "ttl",
                                     "ttl": 0.5, "ttl_mode": mode},
                           "db": {"kind": "service", "workers": 100}},
        })
        row = r.cache_summary().set_index("name").loc["cache"]
        h = formula(lam, 0.5)
        want = float(np.dot(lam / lam.sum(), h))
        assert row["hit_ratio"] == pytest.approx(want, rel=0.02), mode
        # occupancy: a key is cached a fraction h_i of the time (PASTA)
        assert row["mean_entries"] == pytest.approx(float(h.sum()), rel=0.02), mode


# --------------------------------------------------------------------------------------------
# patterns: exact latencies and what reaches the store


def pattern_run(pattern: str, mix: dict[str, float], **cache: Any) -> simulator.Results:
    return run({
        "duration": 5, "drain": 5,
        "workloads": {"w": keyed(2, 1, mix)},
        "components": {"cache": {"kind": "cache", "backing": "db", "pattern": pattern,
                                 "capacity": 10, "hit_latency": 0.001, "miss_latency": 0.002,
                                 **cache},
                       "db": {"kind": "service", "workers": 10, "service_time": 0.1}},
    })


@pytest.mark.parametrize("pattern,miss", [
    ("cache_aside", 0.002 + 0.1 + 0.001),   # get (miss), store read, set
    ("read_through", 0.002 + 0.1),           # lookup, the cache loads
    ("write_through", 0.002 + 0.1),
    ("write_behind", 0.002 + 0.1),
])
def test_read_latency_of_each_pattern(pattern: str, miss: float) -> None:
    req = pattern_run(pattern, {"read": 1.0}).requests
    assert req["cache"].astype(str).tolist() == ["miss"] + ["hit"] * (len(req) - 1)
    assert req["latency"].iloc[0] == pytest.approx(miss)
    assert np.allclose(req["latency"].iloc[1:], 0.001)


@pytest.mark.parametrize("pattern,write,then", [
    ("cache_aside", 0.1 + 0.001, "miss"),     # store write, del round trip; key gone
    ("read_through", 0.001 + 0.1, "miss"),    # hop, store write; key invalidated
    ("write_through", 0.001 + 0.1, "hit"),    # hop, store write; cache updated
    ("write_behind", 0.001, "hit"),           # acknowledged by the cache
])
def test_write_latency_and_effect_of_each_pattern(pattern: str, write: float,
                                                  then: str) -> None:
    r = run({
        "duration": 3.1, "drain": 5,
        "workloads": {
            "reads": {"arrivals": {"process": "constant", "rate": 1}, "target": "cache",
                      "keys": {"popularity": "uniform", "n": 1}},
            "writes": {"arrivals": {"process": "constant", "rate": 0.4}, "target": "cache",
                       "keys": {"popularity": "uniform", "n": 1}, "mix": {"write": 1}},
        },
        "components": {"cache": {"kind": "cache", "backing": "db", "pattern": pattern,
                                 "capacity": 10, "hit_latency": 0.001, "miss_latency": 0.002},
                       "db": {"kind": "service", "workers": 10, "service_time": 0.1}},
    })
    req = r.requests.sort_values("start")
    reads = req[req["op"] == "read"]  # at 1, 2, 3 s; the write at 2.5 s is done by 2.61 s
    writes = req[req["op"] == "write"]
    assert writes["latency"].to_numpy() == pytest.approx([write])
    assert reads["cache"].astype(str).tolist() == ["miss", "hit", then]


@pytest.mark.parametrize("batch,rounds", [(30, 5), (10, None)])
def test_write_behind_coalesces_writes_per_key_and_flushes_in_batches(
        batch: int, rounds: int | None) -> None:
    # 100 writes a second over 25 keys in turn; the store takes 1 ms per write
    r = run({
        "duration": 10, "drain": 5, "metrics": {"interval": 0.5},
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 100},
                            "keys": {"popularity": "sequential", "n": 25},
                            "mix": {"write": 1}, "target": "cache"}},
        "components": {"cache": {"kind": "cache", "backing": "db", "pattern": "write_behind",
                                 "capacity": 100, "flush_interval": 2.0, "flush_batch": batch},
                       "db": {"kind": "service", "workers": 100, "service_time": 0.001}},
    })
    writes = len(r.requests)
    assert gauge(r, "writes_total") == writes == 999
    assert gauge(r, "flushed_writes_total") == writes  # none lost, all flushed by the end
    assert gauge(r, "pending_writes") == 0
    store = gauge(r, "served_total", "db")
    assert gauge(r, "flush_writes_total") == store
    if rounds is not None:
        # rounds at 2, 4.001, 6.002, 8.003, 10.004 s, each writing the 25 keys once
        assert store == 25 * rounds
    else:
        # 10 waiting keys start a round at once, and the 10 writes take 1 ms: no coalescing
        assert store == writes
        busy = r.samples[(r.samples["component"] == "db") & (r.samples["metric"] == "busy")]
        assert busy["value"].max() <= batch


def test_write_behind_loses_exactly_the_unflushed_writes_when_it_crashes(store_kind: None
                                                                         ) -> None:
    # writes to distinct keys, 6.5 a second; flush rounds at 1, 2, 3, 4, 5 s (store latency 0);
    # the crash at 5.5 s loses the writes acknowledged after the 5 s round began
    r = run({
        "duration": 8, "drain": 2, "metrics": {"interval": 0.25},
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 6.5},
                            "keys": {"popularity": "sequential", "n": 1000},
                            "mix": {"write": 1}, "target": "cache"}},
        "components": {"cache": {"kind": "cache", "backing": "db", "pattern": "write_behind",
                                 "capacity": 1000, "flush_interval": 1.0},
                       "db": {"kind": "versioned_store"}},
        "faults": [{"at": 5.5, "duration": 0.5, "kind": "crash", "target": "cache"}],
    })
    req = r.requests
    ok = req[req["status"] == "ok"]
    unflushed = ok[(ok["start"] > 5.0) & (ok["start"] < 5.5)]
    assert len(unflushed) == 3  # 5.077, 5.231, 5.385
    assert gauge(r, "lost_writes_total") == len(unflushed)
    store_writes = gauge(r, "writes_total", "db")
    assert store_writes + len(unflushed) == len(ok)  # every other acknowledged write arrived
    assert gauge(r, "pending_writes") == 0
    assert (req.loc[(req["start"] >= 5.5) & (req["start"] < 6.0), "status"] == "error").all()
    events = r.events[r.events["event"] == "lost_writes"]
    assert events["detail"].tolist() == ["3 unflushed writes of 3 keys"]
    assert events["time"].tolist() == [5.5]


# --------------------------------------------------------------------------------------------
# versions and staleness


def test_stale_reads_are_measured_against_the_store(store_kind: None) -> None:
    # reads of key 0 every second from 1 s; the store is written directly at 2.3 s and 4.6 s;
    # TTL 2.2 s (after write): filled with v0 at 1 s, expires at 3.2 s: the read at 2 s is a
    # fresh hit, at 3 s a stale hit (v1 committed), at 4 s a miss (loads v1), at 5 s a stale
    # hit (v2 committed).
    r = run({
        "duration": 5.5,
        "workloads": {
            "reads": {"arrivals": {"process": "constant", "rate": 1}, "target": "cache",
                      "keys": {"popularity": "uniform", "n": 1}},
            "writer": {"arrivals": {"process": "closed", "users": 1, "think_time": 2.3},
                       "target": "db", "keys": {"popularity": "uniform", "n": 1},
                       "mix": {"write": 1}},
        },
        "components": {"cache": {"kind": "cache", "backing": "db", "capacity": 10,
                                 "ttl": 2.2},
                       "db": {"kind": "versioned_store"}},
    })
    reads = r.requests[r.requests["workload"] == "reads"].sort_values("start")
    assert reads["cache"].astype(str).tolist() == ["miss", "hit", "hit", "miss", "hit"]
    assert reads["stale"].tolist() == [False, False, True, False, True]
    row = r.cache_summary().set_index("name").loc["cache"]
    assert row["stale_reads"] == 2 and row["stale_read_ratio"] == pytest.approx(0.4)


def test_write_through_keeps_a_single_cache_fresh(store_kind: None) -> None:
    r = run({
        "duration": 60,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 50}, "target": "cache",
                            "keys": {"popularity": "zipf", "n": 50, "s": 1.0},
                            "mix": {"read": 0.8, "write": 0.2}}},
        "components": {"cache": {"kind": "cache", "backing": "db", "pattern": "write_through",
                                 "capacity": 20, "hit_latency": 0.001},
                       "db": {"kind": "versioned_store", "latency": 0.005}},
    })
    row = r.cache_summary().set_index("name").loc["cache"]
    assert row["writes"] > 100 and row["hits"] > 100
    # no hit is ever stale; a miss can be, when a write commits while its store read (which
    # sees the version committed when it started) is in progress
    stale = r.requests[r.requests["stale"]]
    assert (stale["cache"] == "miss").all()
    assert row["stale_reads"] == len(stale) < 0.01 * row["reads"]


def test_cache_aside_race_puts_an_old_version_back(store_kind: None) -> None:
    # A read misses at 1 s; its store read (0.5 s, snapshot at 1.001 s) returns v0 at 1.501 s.
    # Meanwhile a write commits v1 at 1.2 s and deletes the key at 1.201 s; the read's set then
    # stores v0 at 1.502 s: the read and the next hit are stale, until the next write deletes
    # the key (commit 2.401 s). Writer: one user, 1.1 s think time; writes commit at 1.2,
    # 2.401, 3.602 s. Reads at 3 s and 4 s snapshot the latest version and stay fresh.
    r = run({
        "duration": 4.5, "drain": 1,
        "workloads": {
            "reads": {"arrivals": {"process": "constant", "rate": 1}, "target": "cache",
                      "keys": {"popularity": "uniform", "n": 1}},
            "writer": {"arrivals": {"process": "closed", "users": 1, "think_time": 1.1},
                       "target": "cache", "keys": {"popularity": "uniform", "n": 1},
                       "mix": {"write": 1}},
        },
        "components": {"cache": {"kind": "cache", "backing": "db", "pattern": "cache_aside",
                                 "capacity": 10, "hit_latency": 0.001, "ttl": 60},
                       "db": {"kind": "versioned_store", "latency": 0.5, "write_latency": 0.1}},
    })
    reads = r.requests[r.requests["workload"] == "reads"].sort_values("start")
    assert reads["cache"].astype(str).tolist() == ["miss", "hit", "miss", "miss"]
    assert reads["stale"].tolist() == [True, True, False, False]
    assert gauge(r, "invalidations_total") == 2  # at 2.402 s and 3.603 s (1.201 s: absent)


def test_versions_flow_through_tiers(store_kind: None) -> None:
    # local (TTL 1 s) -> shared (no TTL, write-through from the app's writes) -> store
    r = run({
        "duration": 120, "warmup": 10,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 200}, "target": "api",
                            "keys": {"popularity": "zipf", "n": 100, "s": 1.0},
                            "mix": {"read": 0.9, "write": 0.1}}},
        "components": {
            "api": {"kind": "service", "replicas": 2, "workers": 100,
                    "calls": {"*": ["local"]}},
            "local": {"kind": "cache", "replicas": 2, "local_to": "api", "backing": "shared",
                      "capacity": 50, "ttl": 1.0},
            "shared": {"kind": "cache", "backing": "db", "pattern": "write_through",
                       "capacity": 1000},
            "db": {"kind": "versioned_store", "latency": 0.002},
        },
    })
    s = r.cache_summary().set_index("name")
    # a write through one instance's local cache leaves the other's copy stale until its TTL
    assert s.loc["local", "stale_reads"] > 0
    assert s.loc["shared", "stale_reads"] == 0  # write-through: the shared tier is fresh
    # the shared tier sees only the local tier's misses
    assert s.loc["shared", "reads"] == s.loc["local", "misses"]


# --------------------------------------------------------------------------------------------
# tiers and sharding


def test_local_cache_instance_i_serves_app_instance_i() -> None:
    r = run({
        "duration": 20, "warmup": 0,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 300}, "target": "lb",
                            "keys": {"popularity": "zipf", "n": 1000, "s": 0.9}}},
        "components": {
            "lb": {"kind": "load_balancer", "strategy": "consistent_hash", "backends": ["api"]},
            "api": {"kind": "service", "replicas": 3, "workers": 50, "calls": {"read": ["local"]}},
            "local": {"kind": "cache", "replicas": 3, "local_to": "api", "backing": "db",
                      "capacity": 100},
            "db": {"kind": "service", "workers": 100},
        },
    })
    sp = r.spans
    api = sp[sp["component"] == "api"].set_index("request_id")["instance"].astype(str)
    local = sp[sp["component"] == "local"].set_index("request_id")["instance"].astype(str)
    assert len(local) == len(api) == len(r.requests)
    assert (api.str.replace("api", "local") == local.loc[api.index]).all()
    # key affinity at the balancer + local caches: every key lives in one local cache
    keys = r.requests.set_index("request_id")["key"]
    assert local.groupby(keys.loc[local.index]).nunique().max() == 1


def test_a_replicated_cache_is_sharded_by_key() -> None:
    r = run({
        "duration": 10,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 300}, "target": "cache",
                            "keys": {"popularity": "uniform", "n": 500}}},
        "components": {"cache": {"kind": "cache", "replicas": 4, "backing": "db",
                                 "capacity": 1000},
                       "db": {"kind": "service", "workers": 100}},
    })
    sp = r.spans[r.spans["component"] == "cache"]
    keys = r.requests.set_index("request_id")["key"].loc[sp["request_id"]].to_numpy()
    owners = sp.assign(key=keys).groupby("key")["instance"].nunique()
    assert owners.max() == 1
    share = sp["instance"].astype(str).value_counts(normalize=True)
    assert len(share) == 4 and share.min() > 0.15  # four shards, roughly even
    # each key is loaded once: misses = distinct keys requested
    assert gauge(r, "misses_total") == r.requests["key"].nunique()


# --------------------------------------------------------------------------------------------
# stampedes: coalescing and early expiration


def stampede(coalesce: bool) -> tuple[simulator.Results, float, float]:
    """2000 reads/s over 50 hot keys (Zipf 1.2), a store that takes 100 ms per read, a flush
    at 10 s. Returns the run and the store reads in [9, 10) s and in [10, 11) s."""
    r = run({
        "duration": 12, "warmup": 2, "metrics": {"interval": 0.5},
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 2000}, "target": "cache",
                            "keys": {"popularity": "zipf", "n": 50, "s": 1.2}}},
        "components": {"cache": {"kind": "cache", "backing": "db", "capacity": 100,
                                 "miss_latency": 0.0005, "coalesce": coalesce},
                       "db": {"kind": "service", "workers": 1000, "service_time": 0.1}},
        "faults": [{"at": 10, "kind": "flush", "target": "cache"}],
    })
    loads = r.samples[(r.samples["metric"] == "loads_total")].set_index("time")["value"]
    return r, loads[10.0] - loads[9.0], loads[11.0] - loads[10.0]


def test_coalescing_cuts_store_load_in_a_stampede_after_a_flush() -> None:
    r_off, quiet_off, storm_off = stampede(coalesce=False)
    r_on, quiet_on, storm_on = stampede(coalesce=True)
    assert quiet_off == quiet_on == 0  # every key cached before the flush
    req = r_off.requests
    after = req[(req["start"] >= 10) & (req["start"] < 11)]
    first = after.groupby("key")["start"].transform("min")
    # without coalescing, a read misses (and loads) until its key's first load has filled the
    # cache: 0.5 ms lookup + 100 ms store read after the key's first read since the flush
    assert storm_off == int((after["start"] < first + 0.1005).sum())
    # with it, one load per key read after the flush
    after_on = r_on.requests[(r_on.requests["start"] >= 10) & (r_on.requests["start"] < 11)]
    assert storm_on == after_on["key"].nunique() <= 50
    assert storm_off > 4 * storm_on
    print(f"store reads in the second after the flush: {storm_off:.0f} without coalescing, "
          f"{storm_on:.0f} with it; coalesced reads {gauge(r_on, 'coalesced_total'):.0f}")
    assert "flush starts" in r_on.events["detail"].tolist()


def test_early_expiration_spreads_refreshes_before_the_expiry() -> None:
    def loads_per_refresh(early: dict[str, Any] | None, coalesce: bool = False) -> float:
        """One key read 500 times a second, TTL 1 s, a store read of 50 ms: store reads per
        burst (reads more than 0.2 s apart start a new burst)."""
        r = run({
            "duration": 200, "warmup": 5, "metrics": {"spans": True},
            "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 500},
                                "target": "cache", "keys": {"popularity": "uniform", "n": 1}}},
            "components": {"cache": {"kind": "cache", "backing": "db", "capacity": 10,
                                     "ttl": 1.0, "early_expiration": early,
                                     "coalesce": coalesce},
                           "db": {"kind": "service", "workers": 1000, "service_time": 0.05}},
        })
        t = np.sort(r.spans.loc[r.spans["component"] == "db", "arrival"].to_numpy())
        bursts = 1 + int((np.diff(t) > 0.2).sum())
        return len(t) / bursts

    plain = loads_per_refresh(None)
    xfetch = loads_per_refresh({"beta": 1.0})
    both = loads_per_refresh({"beta": 1.0}, coalesce=True)
    # without it, every read in the 50 ms reload after an expiry misses: 25 loads on average
    assert plain == pytest.approx(25, rel=0.15)
    # with it, the first early refresh comes when the integrated trigger intensity
    # 500/s * exp(-(e - t) / 50 ms) reaches an Exp(1) draw; during its 50 ms reload more reads
    # trigger, (e - 1) times as many on average: 1 + (e - 1) = e loads per refresh. The extra
    # count is Poisson given an Exp(1) intensity: sd 2.2 per refresh, 0.16 over the ~190
    # refreshes of the run, so 4 standard errors are 23% of e
    assert xfetch == pytest.approx(np.e, rel=0.25)
    # with coalescing too, reads skip the early refresh while one is in flight: one load
    assert both == 1.0


# --------------------------------------------------------------------------------------------
# faults


def test_crash_empties_the_cache_and_refuses_until_it_recovers() -> None:
    r = run({
        "duration": 6, "drain": 1,
        "workloads": {"w": keyed(10, 5)},
        "components": {"cache": {"kind": "cache", "backing": "db", "capacity": 10,
                                 "hit_latency": 0.001},
                       "db": {"kind": "service", "service_time": 0.01, "workers": 10}},
        "faults": [{"at": 3.05, "duration": 1, "kind": "crash", "target": "cache"}],
    })
    req = r.requests
    during = req[(req["start"] > 3.05) & (req["start"] < 4.05)]
    assert (during["status"] == "error").all() and len(during) == 10
    after = req[req["start"] > 4.05].sort_values("start")
    assert (after["status"] == "ok").all()
    first = after.drop_duplicates("key")  # recovered empty: each key's first read misses
    assert (first["cache"] == "miss").all() and (after.loc[~after.index.isin(first.index),
                                                           "cache"] == "hit").all()


def test_crash_fails_the_loads_it_holds() -> None:
    r = run({
        "duration": 2, "drain": 2,
        "workloads": {"w": keyed(10, 1000, process="constant")},
        "components": {"cache": {"kind": "cache", "backing": "db", "capacity": 10,
                                 "coalesce": True},
                       "db": {"kind": "service", "service_time": 0.5, "workers": 100}},
        "faults": [{"at": 1.0, "duration": 0.5, "kind": "crash", "target": "cache"}],
    })
    req = r.requests
    held = req[(req["start"] > 0.5) & (req["start"] < 1.0)]
    assert (held["status"] == "error").all() and np.allclose(held["end"], 1.0)


def test_flush_and_crash_faults_are_validated() -> None:
    base = {"duration": 10,
            "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 1}, "target": "c"}},
            "components": {"c": {"kind": "cache", "backing": "db", "capacity": 10},
                           "db": {"kind": "service"}}}
    with pytest.raises(simulator.ScenarioError, match="does not support flush"):
        simulator.parse_scenario({**base, "faults": [{"at": 1, "kind": "flush",
                                                      "target": "db"}]})
    with pytest.raises(simulator.ScenarioError, match="instantaneous"):
        simulator.parse_scenario({**base, "faults": [{"at": 1, "kind": "flush", "target": "c",
                                                      "duration": 1}]})
    with pytest.raises(simulator.ScenarioError, match="does not support slow"):
        simulator.parse_scenario({**base, "faults": [{"at": 1, "kind": "slow", "target": "c",
                                                      "factor": 2}]})


# --------------------------------------------------------------------------------------------
# parameters


@pytest.mark.parametrize("cache,message", [
    ({"policy": "lru"}, "capacity: policy lru needs a capacity"),
    ({"policy": "ttl"}, "policy ttl needs a ttl"),
    ({"policy": "ttl", "ttl": 1, "capacity": 5}, "policy ttl has no capacity"),
    ({"capacity": 5, "early_expiration": {"beta": 1}}, "early_expiration needs a ttl"),
    ({"capacity": 5, "lfu_counts": "all_keys"}, "lfu_counts applies only to policy lfu"),
    ({"capacity": 5, "flush_interval": "1s"}, "flush_interval applies only to pattern"),
    ({"capacity": 5, "backing": {"to": "db", "op": "get"}}, "the cache chooses the operation"),
    ({"capacity": 5, "local_to": "apy"}, "unknown component 'apy'; did you mean 'api'"),
    ({"capacity": 5, "local_to": "api"}, "replicas must be 3, got 1"),
    ({"capacity": 5, "policy": "lru2"}, "policy"),
    ({"capacity": 0}, "capacity"),
])
def test_bad_parameters_are_reported(cache: dict[str, Any], message: str) -> None:
    spec = {"duration": 10,
            "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 1}, "target": "api"}},
            "components": {"api": {"kind": "service", "replicas": 3, "calls": {"*": ["c"]}},
                           "c": {"kind": "cache", "backing": "db", **cache},
                           "db": {"kind": "service"}}}
    with pytest.raises(simulator.ScenarioError) as err:
        simulator.parse_scenario(spec)
    text = str(err.value)
    assert message in text and "components.c" in text, text


def test_backing_calls_carry_policies() -> None:
    # a store that always times out at the call edge: every miss fails, hits never see it
    r = run({
        "duration": 5, "drain": 2,
        "workloads": {"w": keyed(10, 1)},
        "components": {"cache": {"kind": "cache", "backing": {"to": "db", "timeout": 0.05},
                                 "capacity": 10},
                       "db": {"kind": "service", "service_time": 0.2}},
    })
    assert (r.requests["status"] == "timeout").all()
    assert np.allclose(r.requests["latency"], 0.05)


# --------------------------------------------------------------------------------------------
# tables and output


def test_windows_and_summary_agree() -> None:
    from simulator.analysis.data import cache_windows

    r = run({
        "duration": 30, "warmup": 10, "metrics": {"interval": 1.0},
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 500}, "target": "cache",
                            "keys": {"popularity": "zipf", "n": 2000, "s": 0.9}}},
        "components": {"cache": {"kind": "cache", "backing": "db", "capacity": 100},
                       "db": {"kind": "service", "workers": 100}},
    })
    w = cache_windows(r.samples)
    inside = w[(w["start"] >= 10) & (w["end"] <= 30)]
    row = r.cache_summary().set_index("name").loc["cache"]
    assert inside["reads"].sum() == row["reads"]
    assert inside["hits"].sum() / inside["reads"].sum() == pytest.approx(row["hit_ratio"])
    # the hit_ratio gauge is the same per-interval ratio
    g = r.samples[r.samples["metric"] == "hit_ratio"].set_index("time")["value"]
    assert np.allclose(g.loc[inside["end"]].to_numpy(), inside["hit_ratio"].to_numpy())
    # the workload row is what the requests say
    wl = r.cache_summary().set_index("name").loc["w"]
    req = r.measured_requests()
    assert wl["hit_ratio"] == pytest.approx((req["cache"] == "hit").mean())


def test_cli_prints_the_cache_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(
        "duration: 10s\nwarmup: 2s\n"
        "workloads:\n  w: {arrivals: {process: poisson, rate: 100/s}, target: cache,\n"
        "      keys: {popularity: zipf, n: 1000, s: 0.9}}\n"
        "components:\n  cache: {kind: cache, backing: db, capacity: 100}\n"
        "  db: {kind: service, workers: 10, service_time: 1ms}\n")
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "caches (measured window" in out and "hit_ratio" in out
    assert (tmp_path / "o" / "cache_summary.csv").is_file()


def test_same_seed_same_tables() -> None:
    spec = {
        "duration": 20,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 200}, "target": "cache",
                            "keys": {"popularity": "zipf", "n": 500, "s": 0.8},
                            "mix": {"read": 0.9, "write": 0.1}}},
        "components": {"cache": {"kind": "cache", "backing": "db", "policy": "random",
                                 "capacity": 50, "ttl": 2.0, "early_expiration": {"beta": 2},
                                 "hit_latency": {"dist": "exponential", "mean": 0.001}},
                       "db": {"kind": "service", "workers": 10, "service_time": 0.005}},
    }
    a, b = run(spec, seed=3), run(spec, seed=3)
    for name in ("requests", "samples"):
        assert a.tables[name].equals(b.tables[name]), name
    assert not a.requests.equals(run(spec, seed=4).requests)


def test_ttl_hit_ratio_with_fetch_time_matches_renewal_reward() -> None:
    """Fills that take d seconds (coalesced) lower a non-resetting TTL cache's hit ratio to
    lam T / (1 + lam (d + T)); the instant-fill formula is clearly off for the hot keys."""
    n, s, rate, ttl, d = 200, 0.8, 2000.0, 0.5, 0.05
    r = run({
        "duration": 65, "warmup": 5,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": rate},
                            "keys": {"popularity": "zipf", "n": n, "s": s}, "target": "c"}},
        "components": {
            "c": {"kind": "cache", "backing": "origin", "policy": "ttl", "ttl": ttl,
                  "coalesce": True},
            "origin": {"kind": "service", "workers": 1000, "service_time": d},
        },
    }, seed=3)
    req = r.measured_requests()
    hit = (req["cache"] == "hit").to_numpy()
    lam = rate * th.zipf_probs(n, s)
    expected = th.ttl_nonreset_fetch_hit_ratio(lam, ttl, d)
    instant = th.ttl_nonreset_hit_ratio(lam, ttl)
    # aggregate: requests of key i are a share p_i of the total
    p = th.zipf_probs(n, s)
    agg, agg_instant = float(np.sum(p * expected)), float(np.sum(p * instant))
    measured = float(hit.mean())
    # ~120k requests; hits are correlated within a cycle, so allow 5x the binomial error
    tol = 5 * np.sqrt(agg * (1 - agg) / len(hit))
    assert abs(measured - agg) < tol
    assert abs(agg_instant - agg) > 4 * tol  # the fetch time matters at this scale
    keys = req["key"].to_numpy()
    for k in range(5):  # the hottest keys, where d is a tenth of the gap between cycles
        mine = hit[keys == k]
        se = np.sqrt(expected[k] * (1 - expected[k]) / len(mine))
        assert abs(mine.mean() - expected[k]) < 5 * se + 0.005
        assert abs(instant[k] - expected[k]) > 5 * se + 0.005
