"""The database: shard maps, resharding, connection pools, versions, replication and quorums.

Expected values come from closed forms (order statistics, M/M/c, M/M/1/K, staleness under
independent replication delays) or from reference case CHASH-N10-V150, never from this
simulator's own output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simpy
from scipy import stats

import simulator
from simulator.components.base import BuildContext
from simulator.components.database.cluster import DatabaseCluster
from simulator.components.database.sharding import ShardMap, key_hashes
from simulator.messages import Request
from simulator.metrics.recorder import Recorder
from simulator.registry import raw_tables
from simulator.rng import Streams
from simulator.topology import Topology, build_topology
from tests.conftest import run
from tests.theory import mm1k, mmc

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "data" / "reference" / "cases.json"


def chash_case() -> dict[str, Any]:
    cases = {c["id"]: c for c in json.loads(CASES.read_text())}
    return cases["CHASH-N10-V150"]  # type: ignore[no-any-return]


def db_spec(db: dict[str, Any], rate: float = 200, duration: float = 30, keys: int = 1000,
            mix: dict[str, float] | None = None, popularity: str = "uniform",
            **extra: Any) -> dict[str, Any]:
    keyspec: dict[str, Any] = {"popularity": popularity, "n": keys}
    if popularity == "zipf":
        keyspec["s"] = 1.0
    return {"duration": duration, "drain": 5,
            "workloads": {"w": {"arrivals": {"process": "poisson", "rate": rate},
                                "keys": keyspec, "mix": mix or {"read": 1.0},
                                "target": "db"}},
            "components": {"db": {"kind": "database", **db}}, **extra}


# --------------------------------------------------------------------------------------------
# shard maps against reference case CHASH-N10-V150


def test_consistent_hash_ring_reproduces_the_reference_counts_exactly() -> None:
    case = chash_case()
    det = case["expected"]["deterministic_md5_scheme"]
    keys = np.arange(case["params"]["keys"])
    before = ShardMap("consistent_hash", 10, 150).shards_of(keys)
    counts = np.bincount(before, minlength=10)
    assert counts.tolist() == det["counts"]
    assert counts.std() / counts.mean() == pytest.approx(det["cv_ddof0"], abs=5e-5)
    assert counts.max() / counts.mean() == pytest.approx(det["max_over_mean"], abs=5e-4)
    after = ShardMap("consistent_hash", 11, 150).shards_of(keys)
    moved = before != after
    assert moved.mean() == pytest.approx(det["moved_fraction_add_11th"], abs=5e-5)
    assert (after[moved] == 10).all()  # every moved key moves to the new node


def test_mod_n_moves_n_over_n_plus_one() -> None:
    case = chash_case()
    keys = np.arange(case["params"]["keys"])
    moved = (ShardMap("mod", 10).shards_of(keys) != ShardMap("mod", 11).shards_of(keys)).mean()
    assert moved == pytest.approx(case["expected"]["modN_moved_fraction_10_to_11_theory"],
                                  abs=0.002)
    few = np.arange(200_000)
    for n in (2, 4, 7):  # other points: N/(N+1), binomial sd < 0.0011 on 200k keys
        m = (ShardMap("mod", n).shards_of(few) != ShardMap("mod", n + 1).shards_of(few)).mean()
        assert m == pytest.approx(n / (n + 1), abs=0.005), n


def test_random_rings_match_the_beta_law_of_shares() -> None:
    """An ensemble of rings (node names salted): E[CV^2] = (N-1)/(NV+1) + (N-1)/keys and a new
    node takes 1/(N+1) of the keys on average (share ~ Beta(V, NV))."""
    n, v, n_keys, rings = 8, 50, 100_000, 120
    keys = np.arange(n_keys)
    hashes = key_hashes(keys)
    cv2, moved = [], []
    for r in range(rings):
        names = [f"ring{r}-node-{i}" for i in range(n + 1)]
        a = ShardMap("consistent_hash", n, v, names=names[:n]).shards_of(keys, hashes)
        b = ShardMap("consistent_hash", n + 1, v, names=names).shards_of(keys, hashes)
        counts = np.bincount(a, minlength=n)
        cv2.append((counts.std() / counts.mean()) ** 2)
        changed = a != b
        assert (b[changed] == n).all()
        moved.append(changed.mean())
    expected_cv2 = (n - 1) / (n * v + 1) + (n - 1) / n_keys
    se = np.std(cv2, ddof=1) / math.sqrt(rings)
    assert abs(np.mean(cv2) - expected_cv2) < 4 * se
    a_, b_ = v, n * v  # new node's share ~ Beta(V, NV)
    sd = math.sqrt(a_ * b_ / ((a_ + b_) ** 2 * (a_ + b_ + 1)))
    assert abs(np.mean(moved) - 1 / (n + 1)) < 4 * sd / math.sqrt(rings)


def test_equal_ranges_and_their_resharding() -> None:
    assert ShardMap.equal_ranges(4, 100_000) == [25_000, 50_000, 75_000]
    m = ShardMap("range", 4, boundaries=[10, 20, 30])
    assert [m.shard_of(k) for k in (0, 9, 10, 29, 30, 10**9)] == [0, 0, 1, 2, 3, 3]
    keys = np.arange(100_000)
    old = ShardMap("range", 4, boundaries=ShardMap.equal_ranges(4, 100_000))
    new = ShardMap("range", 5, boundaries=ShardMap.equal_ranges(5, 100_000))
    # [20k,25k) 0->1, [40k,50k) 1->2, [60k,75k) 2->3, [80k,100k) 3->4: 50% of the keys move
    assert (old.shards_of(keys) != new.shards_of(keys)).mean() == 0.5


# --------------------------------------------------------------------------------------------
# per-shard load and resharding in a run


def test_per_shard_share_follows_the_reference_ring() -> None:
    case = chash_case()
    counts = np.array(case["expected"]["deterministic_md5_scheme"]["counts"])
    r = run(db_spec({"shards": {"count": 10, "scheme": "consistent_hash", "vnodes": 150}},
                    rate=2000, duration=30, keys=1_000_000))
    shards = r.shard_summary().set_index("shard")
    share = shards.loc[[f"db[{i}]" for i in range(10)], "share"].to_numpy()
    p = counts / counts.sum()
    n = shards["requests"].sum()
    assert np.all(np.abs(share - p) < 4 * np.sqrt(p * (1 - p) / n))
    hottest = shards.index[shards["hottest"]].tolist()
    assert len(hottest) == 1
    assert shards["skew"].iloc[0] == pytest.approx(shards["requests"].max()
                                                    / shards["requests"].mean())


@pytest.mark.parametrize("scheme", ["consistent_hash", "mod"])
def test_adding_a_shard_moves_the_reference_fraction_and_reroutes_moved_keys(scheme: str
                                                                            ) -> None:
    case = chash_case()
    r = run(db_spec({"shards": {"count": 10, "scheme": scheme}}, rate=1000, duration=20,
                    keys=1_000_000, faults=[{"at": 10, "kind": "reshard", "target": "db",
                                              "shards": 11}]))
    event = r.reshards().iloc[0]
    assert (event["from_shards"], event["to_shards"], event["keys"]) == (10, 11, 1_000_000)
    if scheme == "consistent_hash":
        expected = case["expected"]["deterministic_md5_scheme"]["moved_fraction_add_11th"]
        assert event["moved_ratio"] == pytest.approx(expected, abs=5e-5)
        assert event["moved_to_new_ratio"] == 1.0
    else:
        assert event["moved_ratio"] == pytest.approx(10 / 11, abs=0.002)
    # the requests themselves go where the new map says
    req = r.requests.set_index("request_id")
    spans = r.spans.set_index("request_id")
    after = req[req["start"] > 10.0]
    served_by = spans.loc[after.index, "instance"].astype(str).to_numpy()
    old = ShardMap(scheme, 10).shards_of(after["key"].to_numpy())
    new = ShardMap(scheme, 11).shards_of(after["key"].to_numpy())
    assert (served_by == np.array([f"db[{s}]" for s in new])).all()
    if scheme == "consistent_hash":
        assert (new[old != new] == 10).all()
    before = req[req["start"] < 10.0]
    assert (spans.loc[before.index, "instance"].astype(str) != "db[10]").all()
    shards = r.shard_summary()
    assert len(shards) == 11 and shards["requests"].min() > 0


def test_removing_a_shard_moves_only_its_keys() -> None:
    keys = np.arange(50_000)
    a = ShardMap("consistent_hash", 5).shards_of(keys)
    b = ShardMap("consistent_hash", 4).shards_of(keys)
    assert ((a != b) == (a == 4)).all()
    r = run(db_spec({"shards": {"count": 5}}, keys=50_000, duration=4,
                    faults=[{"at": 2, "kind": "reshard", "target": "db", "shards": 4}]))
    event = r.reshards().iloc[0]
    assert event["moved_ratio"] == pytest.approx((a == 4).mean(), abs=1e-6)
    assert event["moved_to_new_ratio"] == 0.0 or math.isnan(event["moved_to_new_ratio"])


def test_range_sharding_concentrates_zipf_keys_on_the_first_shard() -> None:
    n, s = 1000, 1.0
    r = run(db_spec({"shards": {"count": 4, "scheme": "range", "key_space": n}}, rate=2000,
                    duration=20, keys=n, popularity="zipf"))
    shards = r.shard_summary().set_index("shard")
    w = np.arange(1, n + 1, dtype=float) ** -s
    p = np.add.reduceat(w / w.sum(), [0, 250, 500, 750])  # mass of each equal range
    share = shards.loc[[f"db[{i}]" for i in range(4)], "share"].to_numpy()
    total = shards["requests"].sum()
    assert np.all(np.abs(share - p) < 4 * np.sqrt(p * (1 - p) / total))
    assert shards.loc["db[0]", "hottest"] and shards["skew"].iloc[0] > 2


def test_a_crashed_shard_fails_exactly_its_keys() -> None:
    r = run(db_spec({"shards": {"count": 4}}, rate=400, duration=15, keys=1000,
                    faults=[{"at": 5, "duration": 5, "kind": "crash", "target": "db[2]"}]))
    req = r.requests
    shard = ShardMap("consistent_hash", 4).shards_of(req["key"].to_numpy())
    start = req["start"].to_numpy()
    inside = (start > 5.0) & (start < 10.0)
    held = (start > 4.998) & (start <= 5.0)  # in service (1 ms) when it crashed: failed too
    ok = (req["status"] == "ok").to_numpy()
    assert not ok[(inside | held) & (shard == 2)].any()
    assert ok[~((inside | held) & (shard == 2))].all()
    assert (inside & (shard == 2)).sum() > 100


# --------------------------------------------------------------------------------------------
# connection pool


def test_pool_waits_follow_erlang_c() -> None:
    """M/M/2 at 75%: five seeds; one run's mean wait has a relative sd of about 5% and its mean
    response time about 3%, so the five-seed means are held to about 4 standard errors."""
    lam, mu, c = 150.0, 100.0, 2
    theory = mmc(lam, mu, c)
    waits, responses, util = [], [], []
    for seed in range(1, 6):
        r = run(db_spec({"pool": {"size": c, "acquire_timeout": None},
                         "service_time": {"dist": "exponential", "mean": 1 / mu}},
                        rate=lam, duration=300, warmup=20), seed=seed)
        waits.append(r.replication_summary().iloc[0]["pool_wait_mean"])
        responses.append(r.measured_requests()["latency"].mean())
        util.append(r.summary().set_index("name").loc["db", "utilisation"])
    assert np.mean(waits) == pytest.approx(theory["mean_wait"], rel=0.09)
    assert np.mean(responses) == pytest.approx(theory["mean_response_time"], rel=0.05)
    assert np.mean(util) == pytest.approx(theory["utilisation"], rel=0.02)


def test_full_wait_queue_rejects_as_mm1k() -> None:
    lam, mu, k = 90.0, 100.0, 5
    r = run(db_spec({"pool": {"size": 1, "max_waiting": k - 1, "acquire_timeout": None},
                     "service_time": {"dist": "exponential", "mean": 1 / mu}},
                    rate=lam, duration=300, warmup=20))
    req = r.measured_requests()
    blocked = (req["status"] == "rejected").mean()
    assert blocked == pytest.approx(mm1k(lam, mu, k)["p_block"], abs=0.02)


def test_acquire_timeout_fails_with_timeout_at_the_deadline() -> None:
    # one connection, 1 s per query, arrivals at 0.1, 0.2, 0.3 s, acquire timeout 1.5 s:
    # the first runs 0.1-1.1, the second waits and runs 1.1-2.1, the third would wait 1.8 s
    spec = db_spec({"pool": {"size": 1, "acquire_timeout": "1.5s"}, "service_time": "1s"},
                   duration=0.35)
    spec["workloads"]["w"]["arrivals"] = {"process": "constant", "rate": 10}
    req = run(spec).requests
    assert req["status"].tolist() == ["ok", "ok", "timeout"]
    assert np.allclose(req["latency"], [1.0, 1.9, 1.5])
    spec["components"]["db"]["pool"] = {"size": 1, "max_waiting": 1}
    req = run(spec).requests
    assert req["status"].tolist() == ["ok", "ok", "rejected"]
    assert req["latency"].iloc[2] == 0.0


def test_writes_take_the_write_service_time() -> None:
    r = run(db_spec({"service_time": {"read": "2ms", "write": "8ms"}, "pool": {"size": 64}},
                    mix={"read": 0.5, "write": 0.5}, rate=100, duration=10))
    lat = r.requests.groupby("op", observed=True)["latency"].agg(["min", "max"])
    assert np.allclose(lat.loc["read"], 0.002) and np.allclose(lat.loc["write"], 0.008)


# --------------------------------------------------------------------------------------------
# versions and the cache contract


def build(spec: dict[str, Any]) -> tuple[simpy.Environment, Topology]:
    scenario = simulator.parse_scenario(spec)
    env = simpy.Environment()
    recorder = Recorder(list(scenario.workloads), tables=raw_tables().values())
    ctx = BuildContext(env, Streams(1), recorder, True)
    topo = build_topology(scenario, ctx)
    for c in topo.components:
        c.start()
    return env, topo


def request(env: simpy.Environment, workload: int, op: str, key: int) -> Request:
    return Request(0, workload, op, key, 1.0, env.now)


def at(env: simpy.Environment, t: float, target: Any, req: Request, out: list[Any]
       ) -> Generator[simpy.Event, Any, None]:
    yield env.timeout(t)
    status = yield from target.handle(req, req.op)
    out.append((req.op, req.workload, env.now, status, req.version, req.stale))


def two_workloads(replication: dict[str, Any], read: str = "1ms") -> dict[str, Any]:
    spec = db_spec({"replication": {"followers": 1, "lag": "10ms", **replication},
                    "service_time": {"read": read, "write": "1ms"}})
    spec["workloads"]["other"] = dict(spec["workloads"]["w"])
    return spec


def test_reads_report_versions_and_staleness_against_the_leader() -> None:
    env, topo = build(two_workloads({"reads": "round_robin"}))
    db = topo.resolve("db")
    assert isinstance(db, DatabaseCluster)
    out: list[Any] = []
    write = request(env, 0, "write", 7)
    env.process(at(env, 0.0, db, write, out))
    env.process(at(env, 0.002, db, request(env, 0, "read", 7), out))  # follower, before apply
    env.process(at(env, 0.020, db, request(env, 0, "read", 7), out))  # after apply (0.011)
    env.process(at(env, 0.030, db, request(env, 0, "read", 8), out))  # never written
    env.run(until=1)
    assert out == [("write", 0, 0.001, 0, 1, False), ("read", 0, 0.003, 0, 0, True),
                   ("read", 0, 0.021, 0, 1, False), ("read", 0, 0.031, 0, 0, False)]
    assert db.committed_version(7) == 1 and db.committed_version(8) == 0


def test_read_your_writes_is_per_workload_and_key() -> None:
    env, topo = build(two_workloads({"reads": "read_your_writes"}))
    db = topo.resolve("db")
    out: list[Any] = []
    env.process(at(env, 0.0, db, request(env, 0, "write", 7), out))
    env.process(at(env, 0.002, db, request(env, 0, "read", 7), out))  # own write: leader
    env.process(at(env, 0.002, db, request(env, 1, "read", 7), out))  # another session
    env.run(until=1)
    assert out[1:] == [("read", 0, 0.003, 0, 1, False), ("read", 1, 0.003, 0, 0, True)]
    # a session's write committed while its read waits at a follower redirects the read
    env, topo = build(two_workloads({"reads": "read_your_writes"}, read="2ms"))
    db = topo.resolve("db")
    out = []
    env.process(at(env, 0.0, db, request(env, 0, "write", 7), out))      # commits at 1 ms
    env.process(at(env, 0.0005, db, request(env, 0, "read", 7), out))    # follower until 2.5
    env.run(until=1)
    assert out[1] == ("read", 0, pytest.approx(0.0045), 0, 1, False)
    leader = topo.groups["db"][0].leader  # type: ignore[attr-defined]
    assert leader.reads == 1


# --------------------------------------------------------------------------------------------
# replication: staleness, lag, quorums


def staleness(lag: Any, write_share: float, reads: str = "round_robin", duration: float = 100,
              ordered: bool = False, seed: int = 1) -> simulator.Results:
    return run(db_spec({"service_time": "0.5ms", "pool": {"size": 20},
                        "replication": {"followers": 1, "lag": lag, "reads": reads,
                                        "ordered": ordered}},
                       rate=500, keys=10, duration=duration, warmup=5,
                       mix={"read": 1 - write_share, "write": write_share}), seed=seed)


@pytest.mark.parametrize(("lag", "write_share"), [
    ("20ms", 0.1), ("100ms", 0.1), ("20ms", 0.3), ({"dist": "exponential", "mean": "50ms"}, 0.2),
])
def test_stale_read_ratio_matches_independent_replication_delays(lag: Any, write_share: float
                                                                 ) -> None:
    """Writes to a key are Poisson (rate w); a follower read is stale when the latest write is
    younger than its delay L: P = E[1 - exp(-w L)] (constant L; wm/(1+wm) for Exp(m))."""
    w = 500 * write_share / 10
    if isinstance(lag, str):
        expected = 1 - math.exp(-w * float(lag.removesuffix("ms")) / 1e3)
    else:
        expected = w * 0.05 / (1 + w * 0.05)
    r = staleness(lag, write_share)
    ratio = r.replication_summary().iloc[0]["stale_read_ratio"]
    assert ratio == pytest.approx(expected, abs=0.015)
    reads = r.measured_requests().query("op == 'read'")
    assert reads["stale"].mean() == pytest.approx(ratio, abs=0.002)  # same facts, two tables


def test_staleness_rises_with_lag_and_write_load_and_vanishes_with_read_your_writes() -> None:
    grid = {(lag, ws): staleness(lag, ws, duration=30).replication_summary().iloc[0]
            ["stale_read_ratio"] for lag in ("10ms", "50ms", "200ms") for ws in (0.05, 0.2)}
    for ws in (0.05, 0.2):
        assert grid[("10ms", ws)] < grid[("50ms", ws)] < grid[("200ms", ws)]
    for lag in ("10ms", "50ms", "200ms"):
        assert grid[(lag, 0.05)] < grid[(lag, 0.2)]
    for reads in ("leader", "read_your_writes"):
        r = staleness("200ms", 0.2, reads=reads, duration=30)
        assert r.replication_summary().iloc[0]["stale_read_ratio"] == 0.0
        assert not r.requests["stale"].any()
    nodes = r.samples.query("metric == 'node_reads_total'").groupby("label")["value"].last()
    assert nodes["follower1"] > 0 and nodes["leader"] > 0  # reads still use the follower


def test_ordered_apply_is_staler_than_independent_delays() -> None:
    lag = {"dist": "exponential", "mean": "50ms"}
    free = staleness(lag, 0.2, duration=30).replication_summary().iloc[0]
    ordered = staleness(lag, 0.2, duration=30, ordered=True).replication_summary().iloc[0]
    assert ordered["stale_read_ratio"] > free["stale_read_ratio"] + 0.05
    # the oldest unapplied write is the first whose own delay has not elapsed, either way
    assert ordered["behind_mean"] == pytest.approx(free["behind_mean"])
    # but in order a write also waits for the earlier ones: it takes longer to be applied
    assert free["write_lag_mean"] == pytest.approx(0.05, rel=0.05)
    assert ordered["write_lag_mean"] > 1.5 * free["write_lag_mean"]


def test_replica_behind_gauge_is_the_age_of_the_oldest_unapplied_write() -> None:
    """Constant delay L, Poisson writes at rate w: the oldest write of the last L seconds is
    U after (now - L), U ~ Exp(w) if U < L; E[lag] = L - (1 - exp(-w L)) / w."""
    lag, w = 0.1, 20.0
    r = run(db_spec({"replication": {"followers": 2, "lag": "100ms"}}, rate=w, duration=300,
                    warmup=10, mix={"write": 1.0}, metrics={"interval": 0.05}))
    rep = r.replication_summary().iloc[0]
    assert rep["behind_mean"] == pytest.approx(lag - (1 - math.exp(-w * lag)) / w, rel=0.05)
    assert rep["behind_max"] <= lag + 1e-9
    assert rep["behind_p50"] < rep["behind_p95"] <= rep["behind_p99"] <= rep["behind_max"]
    # the write lag is another measure: every write reaches each follower exactly the
    # constant delay after its commit, while the gauge above averages well below it
    assert rep["write_lag_mean"] == pytest.approx(lag)
    assert rep["write_lag_max"] == pytest.approx(lag)
    assert rep["behind_mean"] < 0.6 * lag
    w = r.replicated_writes
    assert np.allclose(w["applied"] - w["committed"], lag)
    per_follower = w["follower"].value_counts()
    assert sorted(per_follower.index) == [1, 2] and per_follower[1] == per_follower[2]
    # the 5 s drain lets every write committed reach both followers: one row each
    assert per_follower[1] == (r.requests["status"] == "ok").sum()


def order_statistic_cdf(n: int, j: int, cdf: Callable[[np.ndarray], np.ndarray]
                        ) -> Callable[[np.ndarray], np.ndarray]:
    """CDF of the j-th smallest of n i.i.d. draws: I_F(t)(j, n - j + 1)."""
    return lambda t: stats.beta.cdf(cdf(t), j, n - j + 1)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_quorum_write_latency_is_the_kth_reply(k: int) -> None:
    """Leader plus 4 followers, delays Exp(2 ms): a write acknowledged by k of the 5 nodes (the
    leader counting) waits for the (k-1)-th of 4 follower delays after its 1 ms commit."""
    m, f = 0.002, 4
    r = run(db_spec({"service_time": "1ms", "pool": {"size": 50},
                     "replication": {"followers": f, "lag": {"dist": "exponential", "mean": m},
                                     "writes": "quorum", "write_quorum": k}},
                    rate=200, duration=100, mix={"write": 1.0}))
    wait = r.requests["latency"].to_numpy() - 0.001
    mean = sum(m / (f - i) for i in range(k - 1))
    assert abs(wait.mean() - mean) < 4 * wait.std() / math.sqrt(len(wait))
    cdf = order_statistic_cdf(f, k - 1, lambda t: 1 - np.exp(-np.maximum(t, 0) / m))
    assert stats.kstest(wait, cdf).pvalue > 1e-3


def test_sync_writes_wait_for_every_follower_and_async_for_none() -> None:
    def waits(mode: str) -> np.ndarray:
        r = run(db_spec({"service_time": "1ms", "pool": {"size": 50},
                         "replication": {"followers": 3, "lag": {"dist": "exponential",
                                                                  "mean": 0.002},
                                         "writes": mode}},
                        rate=200, duration=50, mix={"write": 1.0}))
        return r.requests["latency"].to_numpy() - 0.001

    assert np.allclose(waits("async"), 0.0, atol=1e-12)
    sync = waits("sync")
    expected = 0.002 * (1 / 3 + 1 / 2 + 1)  # max of 3 exponentials
    assert abs(sync.mean() - expected) < 4 * sync.std() / math.sqrt(len(sync))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_quorum_read_latency_is_the_kth_order_statistic(k: int) -> None:
    """5 nodes serve each quorum read in independent Exp(5 ms) times (no queueing): the read
    answers at the k-th reply, whose mean is sum_{i<k} m/(5-i)."""
    m, n = 0.005, 5
    r = run(db_spec({"service_time": {"dist": "exponential", "mean": m}, "pool": {"size": 50},
                     "replication": {"followers": n - 1, "reads": "quorum",
                                     "read_quorum": k}},
                    rate=100, duration=100))
    lat = r.requests["latency"].to_numpy()
    mean = sum(m / (n - i) for i in range(k))
    assert abs(lat.mean() - mean) < 4 * lat.std() / math.sqrt(len(lat))
    cdf = order_statistic_cdf(n, k, lambda t: 1 - np.exp(-np.maximum(t, 0) / m))
    assert stats.kstest(lat, cdf).pvalue > 1e-3
    nodes = r.samples.query("metric == 'node_reads_total'").groupby("label")["value"].last()
    assert (nodes == nodes.iloc[0]).all()  # every node answers every read


def test_read_routings_spread_reads_over_followers() -> None:
    for reads in ("round_robin", "random", "least_loaded"):
        r = run(db_spec({"replication": {"followers": 3, "reads": reads}}, duration=20))
        nodes = r.samples.query("metric == 'node_reads_total'").groupby("label")["value"].last()
        assert nodes["leader"] == 0
        followers = nodes.drop("leader")
        assert followers.min() > 0.25 * followers.sum(), reads
        if reads == "round_robin":
            assert followers.max() - followers.min() <= 1


# --------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(("db", "faults", "path", "message"), [
    ({"replicas": 3, "shards": {"count": 4}}, [], "components.db.replicas", "shards.count"),
    ({"replication": {"followers": 0, "reads": "round_robin"}}, [],
     "components.db.replication.reads", "needs at least one follower"),
    ({"replication": {"followers": 2, "writes": "quorum", "write_quorum": 4}}, [],
     "components.db.replication.write_quorum", "exceeds the 3 nodes"),
    ({"replication": {"followers": 2, "writes": "quorum"}}, [],
     "components.db.replication.writes", "writes: quorum needs write_quorum"),
    ({"shards": {"count": 2, "scheme": "range"}}, [], "components.db.shards.scheme",
     "boundaries or key_space"),
    ({"shards": {"count": 3, "scheme": "range", "boundaries": [5]}}, [],
     "components.db.shards.boundaries", "count - 1 = 2"),
    ({"service_time": {"read": "2ms"}}, [], "components.db.service_time",
     '"*" or both read and write'),
    ({}, [{"at": 1, "kind": "reshard", "target": "db", "shards": 2}], "faults.0.target",
     "needs a shards block"),
    ({"shards": {"count": 2}}, [{"at": 1, "kind": "reshard", "target": "db", "shards": 3,
                                 "boundaries": [1, 2]}], "faults.0.boundaries", "scheme range"),
    ({"shards": {"count": 2}}, [{"at": 1, "kind": "crash", "target": "db[2]"}],
     "faults.0.target", "does not exist"),
])
def test_bad_database_input_is_reported_at_its_key(db: dict[str, Any], faults: list[Any],
                                                   path: str, message: str) -> None:
    with pytest.raises(simulator.ScenarioError) as err:
        simulator.parse_scenario(db_spec(db, faults=faults))
    assert any(p.path == path and message in p.message for p in err.value.problems), \
        err.value.problems


def test_a_shard_added_by_a_reshard_can_be_faulted() -> None:
    spec = db_spec({"shards": {"count": 2}}, duration=4, faults=[
        {"at": 1, "kind": "reshard", "target": "db", "shards": 3},
        {"at": 2, "duration": 1, "kind": "crash", "target": "db[2]"}])
    r = run(spec)
    req = r.requests
    shard = ShardMap("consistent_hash", 3).shards_of(req["key"].to_numpy())
    start = req["start"].to_numpy()
    down = (start > 1.998) & (start < 3.0) & (shard == 2)  # arriving, or held at the crash
    status = req["status"].to_numpy()
    assert down.sum() > 20 and (status[down] == "error").all()
    assert (status[~down] == "ok").all()


# --------------------------------------------------------------------------------------------
# the data-tier scenarios


def scenario(name: str, *overrides: str) -> simulator.Scenario:
    return simulator.load_scenario(ROOT / "scenarios" / f"{name}.yaml",
                                   [*overrides, "variants={}"])


@pytest.mark.parametrize(("scheme", "moved", "tol"), [
    ("consistent_hash", 0.2, 0.05), ("mod", 0.8, 0.005), ("range", 0.5, 0.0)])
def test_sharding_scenario_reports_moved_keys_and_shard_load(scheme: str, moved: float,
                                                            tol: float) -> None:
    extra = ["components.db.shards.key_space=100000"] if scheme == "range" else []
    r = simulator.simulate(scenario("sharding", "duration=20s", "warmup=2s",
                                    "faults.0.at=10s", f"components.db.shards.scheme={scheme}",
                                    *extra))
    event = r.reshards().iloc[0]
    assert abs(event["moved_ratio"] - moved) <= tol + 1e-12
    if scheme == "consistent_hash":
        assert event["moved_to_new_ratio"] == 1.0
    shards = r.shard_summary()
    assert len(shards) == 5 and shards["share"].sum() == pytest.approx(1.0)
    if scheme == "range":
        assert shards.set_index("shard").loc["db[0]", "hottest"]


def test_read_replicas_scenario_measures_staleness_by_routing() -> None:
    base = scenario("read_replicas", "duration=20s", "warmup=2s")
    stale = {}
    for reads in ("leader", "round_robin", "read_your_writes"):
        r = simulator.simulate(base.model_copy(update={}), seed=3) if reads == "round_robin" \
            else simulator.simulate(scenario("read_replicas", "duration=20s", "warmup=2s",
                                             f"components.db.replication.reads={reads}"),
                                    seed=3)
        reads_only = r.measured_requests().query("op == 'read'")
        stale[reads] = reads_only.groupby("workload", observed=True)["stale"].mean()
        rep = r.replication_summary().iloc[0]
        assert rep["behind_p99"] > 0 and rep["write_lag_p99"] > 0 and rep["pool_wait_mean"] >= 0
    assert (stale["leader"] == 0).all()
    assert (stale["round_robin"] > 0.05).all()
    assert stale["read_your_writes"]["profile"] == 0.0  # its own writes: never stale
    assert stale["read_your_writes"]["browse"] > 0.05  # other people's writes: no promise


@pytest.mark.slow
def test_stale_ratio_under_zipf_keys_and_lognormal_lag() -> None:
    """Zipf keys (n = 200, s = 1), writes at W = 100/s, two followers read at random, lag
    lognormal (mean 40 ms, cv 1.5): P(stale) = sum_k p_k E[1 - exp(-W p_k L)], the expectation
    over L by quadrature; five seeds."""
    n, s, write_rate, read_rate = 200, 1.0, 100.0, 900.0
    mean, cv = 0.04, 1.5
    sigma = math.sqrt(math.log1p(cv**2))
    lag = stats.lognorm(s=sigma, scale=mean / math.sqrt(1 + cv**2))
    p = np.arange(1, n + 1, dtype=float) ** -s
    p /= p.sum()
    expected = sum(pk * lag.expect(lambda x, wk=write_rate * pk: 1 - math.exp(-wk * x))
                   for pk in p)
    ratios = []
    for seed in range(1, 6):
        r = run(db_spec({"service_time": "0.2ms", "pool": {"size": 50},
                         "replication": {"followers": 2, "reads": "random",
                                         "lag": {"dist": "lognormal", "mean": mean, "cv": cv}}},
                        rate=write_rate + read_rate, duration=200, warmup=10, keys=n,
                        popularity="zipf",
                        mix={"read": read_rate / 1000, "write": write_rate / 1000}), seed=seed)
        ratios.append(r.replication_summary().iloc[0]["stale_read_ratio"])
    se = np.std(ratios, ddof=1) / math.sqrt(len(ratios))
    assert abs(np.mean(ratios) - expected) < max(4 * se, 0.005), (ratios, expected)


def test_run_prints_the_data_tier_tables(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    from simulator.cli import main

    args = ["run", str(ROOT / "scenarios" / "sharding.yaml"), "--set", "duration=6s",
            "--set", "warmup=1s", "--set", "faults.0.at=3s",
            "--set", "components.db.replication={followers: 1, reads: random}",
            "--out", str(tmp_path / "out")]
    assert main(args) == 0
    out = capsys.readouterr().out
    for heading in ("per-shard load", "databases: staleness, replication (write_lag",
                    "behind_p99",
                    "resharding", "stale_ratio"):
        assert heading in out
    back = simulator.Results.read(tmp_path / "out")
    assert back.reshards().iloc[0]["to_shards"] == 5
    assert (tmp_path / "out" / "shard_summary.parquet").is_file()
    assert (tmp_path / "out" / "replicated_writes.parquet").is_file()
    assert back.replication_summary().iloc[0]["write_lag_mean"] > 0  # from the table read back
