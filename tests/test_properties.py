"""Property tests over random small topologies: nothing lost, nothing counted twice.

A topology is a chain of services (each may call later ones), optionally behind a balancer, a
cache in front of a database or of a leaf service, a sharded and replicated database, call
policies (timeout, retry, breaker, hedge, rate limit, bulkhead, fallback) on any edge, and
crash faults on the timeline. Every generated scenario is valid: settings a mode ignores are
not drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simulator

STRATEGIES = ["round_robin", "weighted_round_robin", "random", "weighted_random",
              "least_connections", "power_of_two", "peak_ewma", "least_response_time",
              "consistent_hash", "join_shortest_queue"]
#: Final statuses of a request (simulator/metrics/schema.py), and the unfinished one.
FINAL = {"ok", "error", "rejected", "timeout", "short_circuited", "dropped", "fallback",
         "cancelled", "conflict"}
RETRYABLE = ["error", "timeout", "rejected", "short_circuited", "dropped"]

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow])


def small(draw: st.DrawFn, lo: float, hi: float) -> float:
    """A float in [lo, hi], rounded so that generated scenarios read well when they fail."""
    return round(draw(st.floats(lo, hi)), 4)


@st.composite
def rate_limits(draw: st.DrawFn) -> dict[str, Any]:
    """A rate limit of any algorithm and scope (the leaky bucket delays: waits held by the
    caller, which faults may interrupt)."""
    algorithm = draw(st.sampled_from(["token_bucket", "leaky_bucket", "fixed_window",
                                      "sliding_window_log", "sliding_window_counter"]))
    if algorithm == "token_bucket":
        limit: dict[str, Any] = {"rate": small(draw, 5.0, 200.0),
                                 "burst": draw(st.integers(1, 5))}
    elif algorithm == "leaky_bucket":
        limit = {"rate": small(draw, 5.0, 200.0), "capacity": draw(st.integers(0, 5)),
                 "max_wait": draw(st.sampled_from([None, 0.02]))}
    else:
        limit = {"limit": draw(st.integers(1, 20)), "window": small(draw, 0.01, 1.0)}
    scope = draw(st.sampled_from(["instance", "global", "target"]))
    if scope != "instance":
        limit |= {"scope": scope, "sync_interval": draw(st.sampled_from([0.0, 0.05]))}
    return {"algorithm": algorithm, **limit}


@st.composite
def retries(draw: st.DrawFn) -> dict[str, Any]:
    """A retry policy, with only the settings its backoff uses."""
    backoff = draw(st.sampled_from(["constant", "exponential", "decorrelated"]))
    policy: dict[str, Any] = {"attempts": draw(st.integers(1, 4)), "backoff": backoff,
                              "base": small(draw, 0.0, 0.02),
                              "retry_on": draw(st.lists(st.sampled_from(RETRYABLE), min_size=1,
                                                        max_size=3, unique=True))}
    if backoff == "exponential":
        policy["multiplier"] = small(draw, 1.0, 3.0)
    if backoff != "decorrelated":
        policy["jitter"] = draw(st.sampled_from(["none", "full", "equal"]))
    if draw(st.booleans()):
        policy["max_backoff"] = small(draw, 0.0, 0.05)
    if draw(st.booleans()):
        policy["budget"] = {"ratio": small(draw, 0.0, 1.0),
                            "min_retries_per_second": small(draw, 0.0, 20.0)}
    policy["avoid_previous_hosts"] = draw(st.booleans())
    return policy


@st.composite
def breakers(draw: st.DrawFn) -> dict[str, Any]:
    """A circuit breaker that can open within a short run."""
    policy: dict[str, Any] = {
        "failure_rate_threshold": small(draw, 1.0, 100.0),
        "sliding_window_type": draw(st.sampled_from(["count_based", "time_based"])),
        "sliding_window_size": draw(st.integers(1, 20)),
        "minimum_number_of_calls": draw(st.integers(1, 10)),
        "wait_duration_in_open_state": small(draw, 0.01, 0.5),
        "permitted_number_of_calls_in_half_open_state": draw(st.integers(1, 5)),
        "max_wait_duration_in_half_open_state": draw(st.sampled_from([0.0, 0.1])),
    }
    if draw(st.booleans()):
        policy["slow_call_rate_threshold"] = small(draw, 1.0, 100.0)
        policy["slow_call_duration_threshold"] = small(draw, 0.001, 0.1)
    if draw(st.booleans()):
        policy["consecutive_failures"] = draw(st.integers(1, 5))
    return policy


@st.composite
def hedges(draw: st.DrawFn) -> dict[str, Any]:
    """A hedge after a fixed delay or after an observed percentile."""
    policy: dict[str, Any] = {"max_hedges": draw(st.integers(1, 2)), "cancel": draw(st.booleans()),
                              "avoid_previous_hosts": draw(st.booleans())}
    if draw(st.booleans()):
        policy["delay"] = small(draw, 0.0, 0.05)
    else:
        policy["percentile"] = small(draw, 50.0, 99.0)
        policy["min_samples"] = draw(st.integers(1, 20))
    return policy


@st.composite
def calls(draw: st.DrawFn, to: str, cache: str | None = None, op: bool = True) -> Any:
    """A call to ``to``: a bare name, or a call with some policies."""
    if draw(st.booleans()):
        return to
    call: dict[str, Any] = {"to": to}
    if op and draw(st.integers(0, 3)) == 0:
        call["op"] = draw(st.sampled_from(["read", "write"]))
    if draw(st.booleans()):
        call["timeout"] = small(draw, 0.002, 0.2)
    if draw(st.booleans()):
        call["retry"] = draw(retries())
    if draw(st.integers(0, 2)) == 0:
        call["breaker"] = draw(breakers())
    if draw(st.integers(0, 2)) == 0:
        call["hedge"] = draw(hedges())
    if draw(st.integers(0, 3)) == 0:
        call["rate_limit"] = draw(rate_limits())
    if draw(st.integers(0, 3)) == 0:
        call["bulkhead"] = {"max_concurrent_calls": draw(st.integers(1, 4)),
                            "max_wait": draw(st.sampled_from([0.0, 0.01]))}
    if draw(st.integers(0, 3)) == 0:
        if cache is not None and draw(st.booleans()):
            call["fallback"] = {"kind": "stale", "cache": cache}
        else:
            call["fallback"] = {"kind": "static", "latency": small(draw, 0.0, 0.01)}
    return call


@st.composite
def databases(draw: st.DrawFn) -> dict[str, Any]:
    """A database, perhaps sharded, perhaps replicated with failover."""
    mean = small(draw, 0.0005, 0.01)
    db: dict[str, Any] = {"kind": "database", "service_time": {"dist": "exponential", "mean": mean},
                          "pool": {"size": draw(st.integers(1, 4)),
                                   "acquire_timeout": draw(st.sampled_from([None, 0.01, 0.1, 30])),
                                   "max_waiting": draw(st.one_of(st.none(), st.integers(0, 5)))}}
    if draw(st.booleans()):
        scheme = draw(st.sampled_from(["mod", "consistent_hash", "range"]))
        count = draw(st.integers(1, 3))
        db["shards"] = {"count": count, "scheme": scheme}
        if scheme == "consistent_hash":
            db["shards"]["vnodes"] = draw(st.integers(1, 50))
        if scheme == "range":
            db["shards"]["key_space"] = 50
    if draw(st.booleans()):
        followers = draw(st.integers(0, 2))
        reads = ["leader", "quorum", "nearest"]
        if followers:
            reads += ["round_robin", "random", "least_loaded", "read_your_writes"]
        rep: dict[str, Any] = {"followers": followers, "reads": draw(st.sampled_from(reads)),
                               "writes": draw(st.sampled_from(["async", "sync", "quorum"])),
                               "ordered": draw(st.booleans()),
                               "lag": {"dist": "exponential", "mean": small(draw, 0.0001, 0.05)}}
        if rep["reads"] == "quorum":
            rep["read_quorum"] = draw(st.integers(1, followers + 1))
        if rep["writes"] == "quorum":
            rep["write_quorum"] = draw(st.integers(1, followers + 1))
        if followers and draw(st.booleans()):
            if rep["writes"] == "quorum":
                rep["ordered"] = True
            rep["failover"] = {"detection": small(draw, 0.01, 0.3),
                               "promotion": small(draw, 0.0, 0.1)}
        db["replication"] = rep
    return db


@st.composite
def caches(draw: st.DrawFn, backing: str) -> dict[str, Any]:
    """A cache in front of ``backing``, with only the settings its pattern and policy use."""
    pattern = draw(st.sampled_from(["cache_aside", "read_through", "write_through",
                                    "write_behind"]))
    policy = draw(st.sampled_from(["lru", "lfu", "fifo", "random", "ttl"]))
    cache: dict[str, Any] = {"kind": "cache", "backing": draw(calls(backing, op=False)),
                             "pattern": pattern, "policy": policy,
                             "replicas": draw(st.integers(1, 2)),
                             "hit_latency": small(draw, 0.0, 0.002),
                             "coalesce": draw(st.booleans())}
    ttl = policy == "ttl" or draw(st.booleans())
    if policy != "ttl":
        cache["capacity"] = draw(st.integers(1, 30))
    if policy == "lfu":
        cache["lfu_counts"] = draw(st.sampled_from(["in_cache", "all_keys"]))
    if ttl:
        cache["ttl"] = small(draw, 0.01, 1.0)
        cache["ttl_mode"] = draw(st.sampled_from(["after_write", "after_access"]))
        if draw(st.booleans()):
            cache["stale_if_error"] = small(draw, 0.01, 1.0)
        if draw(st.booleans()):
            cache["early_expiration"] = {"beta": small(draw, 0.5, 2.0)}
    if pattern == "write_behind":
        cache["flush_interval"] = small(draw, 0.01, 0.5)
        cache["flush_batch"] = draw(st.integers(1, 10))
    return cache


@st.composite
def topologies(draw: st.DrawFn) -> dict[str, Any]:
    """A random acyclic system: workloads -> (balancer) -> services calling later services,
    and perhaps a cache and a database at the bottom, policies on edges, crashes in time."""
    n = draw(st.integers(1, 4))
    has_db, has_cache = draw(st.booleans()), draw(st.booleans())
    bottom = (["cache"] if has_cache else []) + (["db"] if has_db else [])
    cache_name = "cache" if has_cache else None
    components: dict[str, Any] = {}
    for i in range(n):
        later = [f"s{j}" for j in range(i + 1, n)] + bottom
        steps: list[Any] = []
        if later:
            for _ in range(draw(st.integers(0, 2))):
                if draw(st.booleans()):
                    steps.append(draw(calls(draw(st.sampled_from(later)), cache_name)))
                else:
                    branches = draw(st.lists(st.sampled_from(later), min_size=1, max_size=3))
                    steps.append({"parallel": [draw(calls(b, cache_name)) for b in branches]})
        replicas = draw(st.integers(1, 3))
        components[f"s{i}"] = {
            "kind": "service",
            "replicas": replicas,
            "workers": draw(st.integers(1, 3)),
            "queue_limit": draw(st.one_of(st.none(), st.integers(0, 4))),
            "queue_discipline": draw(st.sampled_from(["fifo", "lifo"])),
            "hold_worker": draw(st.booleans()) if steps else True,  # (refused without calls)
            "service_time": {"dist": draw(st.sampled_from(["exponential", "gamma"])),
                             "mean": small(draw, 0.001, 0.05)},
            "speed": [small(draw, 0.5, 2.0) for _ in range(replicas)],
            "calls": {"*": steps} if steps else {},
        }
        if components[f"s{i}"]["service_time"]["dist"] == "gamma":
            components[f"s{i}"]["service_time"]["cv"] = small(draw, 0.2, 3.0)
    if has_cache:
        if not has_db:
            components["origin"] = {"kind": "service", "workers": draw(st.integers(1, 4)),
                                    "service_time": {"dist": "exponential",
                                                     "mean": small(draw, 0.001, 0.02)}}
        components["cache"] = draw(caches("db" if has_db else "origin"))
    if has_db:
        components["db"] = draw(databases())
    entry = "s0"
    if draw(st.booleans()):
        components["lb"] = {"kind": "load_balancer", "strategy": draw(st.sampled_from(STRATEGIES)),
                            "backends": ["s0"], "replicas": draw(st.integers(1, 2))}
        entry = "lb"
    workloads: dict[str, Any] = {}
    for w in range(draw(st.integers(1, 2))):
        if draw(st.booleans()):
            arrivals: dict[str, Any] = {"process": "poisson", "rate": small(draw, 5, 150)}
        else:
            arrivals = {"process": "closed", "users": draw(st.integers(1, 10)),
                        "think_time": {"dist": "exponential", "mean": 0.05}}
        workloads[f"w{w}"] = {"arrivals": arrivals, "target": draw(calls(entry, cache_name,
                                                                         op=False)),
                              "keys": {"popularity": "zipf", "n": 50, "s": 1.0},
                              "mix": {"read": 0.7, "write": 0.3}}
    duration = small(draw, 0.5, 2.0)
    spec: dict[str, Any] = {"duration": duration, "drain": draw(st.sampled_from([0, 1000])),
                            "workloads": workloads, "components": components,
                            "metrics": {"interval": 0.5}}
    faults = [draw(crashes(components, duration)) for _ in range(draw(st.integers(0, 2)))]
    if faults:
        spec["faults"] = faults
    return spec


@st.composite
def crashes(draw: st.DrawFn, components: dict[str, Any], duration: float) -> dict[str, Any]:
    """A crash of a whole component or of one instance (or node), inside the run."""
    name = draw(st.sampled_from(sorted(c for c in components if c != "lb")))
    if "db" in components and draw(st.booleans()):
        name = "db"  # (the database has the most ways to crash: shards, leader, followers)
    comp = components[name]
    count = comp.get("shards", {}).get("count", 1) if comp["kind"] == "database" else \
        comp.get("replicas", 1)
    target = name
    if count > 1 and draw(st.booleans()):
        target = f"{name}[{draw(st.integers(0, count - 1))}]"
    fault: dict[str, Any] = {"at": round(draw(st.floats(0, duration * 0.9)), 4), "kind": "crash",
                             "target": target, "mode": draw(st.sampled_from(["refuse",
                                                                             "black_hole"]))}
    if draw(st.integers(0, 3)):
        fault["duration"] = small(draw, 0.01, 0.5)
    followers = comp.get("replication", {}).get("followers", 0)
    if comp["kind"] == "database" and followers and draw(st.booleans()):
        fault["node"] = draw(st.sampled_from(
            ["leader", *(f"follower{j}" for j in range(1, followers + 1))]))
    return fault


def final(samples: pd.DataFrame, metric: str) -> pd.Series:
    """Last value of ``metric`` per instance (summed over labels)."""
    s = samples[samples["metric"] == metric]
    last = s[s["time"] == s["time"].max()]
    return last.groupby("instance", observed=True)["value"].sum()


def kind_instances(r: simulator.Results, spec: dict[str, Any], kind: str) -> list[str]:
    """Instances (as the samples name them) of the components of ``kind``."""
    names = {c for c, p in spec["components"].items() if p["kind"] == kind}
    inst = r.samples.loc[r.samples["component"].isin(names), "instance"]
    return sorted(inst.astype(str).unique())


def check_requests(spec: dict[str, Any], req: pd.DataFrame) -> pd.Series:
    """One row per request with one final status, or in flight; latency and attempts sound."""
    assert np.array_equal(req["request_id"].to_numpy(), np.arange(len(req)))
    status = req["status"].astype(str)
    assert status.isin(FINAL | {"in_flight"}).all(), set(status) - FINAL
    in_flight = status == "in_flight"
    assert (in_flight == req["end"].isna()).all()
    assert req.loc[in_flight, "latency"].isna().all()
    done = req.loc[~in_flight]
    assert np.allclose(done["latency"], done["end"] - done["start"], rtol=0, atol=1e-9)
    assert (done["latency"] >= 0).all()
    assert (req["attempts"] >= 1).all()
    if spec["drain"] and not black_holes(spec):
        assert not in_flight.any(), req.loc[in_flight].head()
    return in_flight


def black_holes(spec: dict[str, Any]) -> bool:
    """Whether a fault may hold a request forever (a black hole never answers)."""
    return any(f.get("mode") == "black_hole" for f in spec.get("faults", []))


def check_spans(spec: dict[str, Any], req: pd.DataFrame, spans: pd.DataFrame) -> None:
    """Hops happen inside their request's lifetime; an ok request was answered by its target."""
    background = spans["request_id"] < 0  # a write-behind cache's flushes serve no request
    if background.any():
        assert any(c.get("pattern") == "write_behind" for c in spec["components"].values())
    spans = spans[~background]
    joined = spans.merge(req[["request_id", "start", "end"]], on="request_id",
                         suffixes=("", "_req"))
    assert len(joined) == len(spans)
    assert (joined["arrival"] >= joined["start_req"] - 1e-12).all()
    # (a hop may outlive its request, and even start after it: a callee whose caller timed
    # out is not told, and makes its own calls)
    ok = joined["status"] == "ok"
    started = ok & joined["start"].notna()
    assert (joined.loc[started, "start"] >= joined.loc[started, "arrival"]).all()
    assert (joined.loc[started, "end"] >= joined.loc[started, "start"]).all()
    assert (joined.loc[ok, "end"] >= joined.loc[ok, "arrival"]).all()
    # an ok hop has a start, except a database's quorum read (asked of every node at once)
    quorum = {c for c, p in spec["components"].items()
              if p.get("replication", {}).get("reads") == "quorum"}
    assert joined.loc[ok & ~started, "component"].isin(quorum).all()
    entry = "lb" if "lb" in spec["components"] else "s0"
    if entry == "s0":  # (the balancer records no spans of its own)
        answered = set(spans.loc[(spans["component"] == "s0") & (spans["status"] == "ok"),
                                 "request_id"])
        ok_ids = set(req.loc[req["status"] == "ok", "request_id"])
        assert ok_ids <= answered, sorted(ok_ids - answered)[:5]


def check_conservation(spec: dict[str, Any], r: simulator.Results) -> None:
    """Each span at an instance is counted once by that instance's *_total gauges."""
    per_instance = r.spans.groupby("instance", observed=True).size()
    exact = spec["drain"] and not black_holes(spec)

    def compare(instance: str, counted: float) -> None:
        recorded = int(per_instance.get(instance, 0))
        if exact:
            assert recorded == counted, (instance, recorded, counted)
        else:
            assert recorded <= counted, (instance, recorded, counted)

    samples = r.samples
    services = kind_instances(r, spec, "service")
    handled = pd.Series(dtype=float)
    for metric in ("served_total", "rejected_total", "failed_total", "cancelled_total"):
        handled = handled.add(final(samples, metric), fill_value=0)
    for instance in services:
        compare(instance, handled.get(instance, 0.0))
    arrived = final(samples, "reads_total").add(final(samples, "writes_total"), fill_value=0)
    for instance in kind_instances(r, spec, "database"):
        compare(instance, arrived.get(instance, 0.0))
    # a cache's read is a hit or a miss, its write a write; a crash fails it once more
    answered = final(samples, "hits_total").add(final(samples, "misses_total"), fill_value=0).add(
        final(samples, "writes_total"), fill_value=0)
    failed = final(samples, "failed_total")
    for instance in kind_instances(r, spec, "cache"):
        recorded = int(per_instance.get(instance, 0))
        if exact:
            assert answered.get(instance, 0) <= recorded, instance
        assert recorded <= answered.get(instance, 0) + failed.get(instance, 0), instance

    # a balancer routes each request it receives once to s0, s0's only caller
    routed = samples[(samples["metric"] == "routed_total")
                     & (samples["time"] == samples["time"].max())]
    if len(routed) and exact:
        assert final(samples, "outstanding").sum() == 0
        by_backend = routed.groupby("label", observed=True)["value"].sum()
        for backend, count in by_backend.items():
            compare(str(backend), count)


@PROPERTY_SETTINGS
@given(spec=topologies(), seed=st.integers(0, 2**32))
def test_no_request_lost_or_counted_twice(spec: dict[str, Any], seed: int) -> None:
    scenario = simulator.parse_scenario(spec)
    r = simulator.simulate(scenario, seed=seed)
    check_requests(spec, r.requests)
    check_spans(spec, r.requests, r.spans)
    check_conservation(spec, r)


@settings(PROPERTY_SETTINGS, max_examples=15)
@given(spec=topologies(), seed=st.integers(0, 2**32))
def test_same_seed_same_tables(spec: dict[str, Any], seed: int) -> None:
    scenario = simulator.parse_scenario(spec)
    a, b = simulator.simulate(scenario, seed=seed), simulator.simulate(scenario, seed=seed)
    for table in ("requests", "spans", "samples", "events"):
        assert getattr(a, table).equals(getattr(b, table)), table


def test_generated_scenarios_are_varied() -> None:
    """The generator reaches every feature it is meant to (a check on the strategy itself)."""
    seen: set[str] = set()

    @settings(max_examples=150, derandomize=True, deadline=None, database=None)
    @given(spec=topologies())
    def collect(spec: dict[str, Any]) -> None:
        simulator.parse_scenario(spec)  # every generated scenario is valid
        text = repr(spec)
        for feature in ("'timeout'", "'retry'", "'breaker'", "'hedge'", "'rate_limit'",
                        "'bulkhead'", "'fallback'", "'cache'", "'database'", "'crash'",
                        "'replication'", "'shards'", "'load_balancer'", "black_hole",
                        "'failover'", "'node'", "'stale'"):
            if feature in text:
                seen.add(feature)

    collect()
    assert len(seen) == 17, " ".join(sorted(seen))
