"""Database node crashes and leader failover: detection + promotion, lost writes, rejoining.

Expected values come from the model's definition applied to the recorded tables (which writes
committed when, with a constant replication lag), never from the simulator's own summaries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simulator
from simulator.analysis.data import failover_summary
from simulator.cli import main
from simulator.components.base import BuildContext
from simulator.components.database.cluster import DatabaseCluster
from simulator.metrics.recorder import Recorder
from simulator.registry import raw_tables
from simulator.rng import Streams
from simulator.timeline import start_faults
from simulator.topology import build_topology
from tests.conftest import run

T_CRASH = 10.0
DETECT, PROMOTE = 2.0, 1.0
LAG = 0.05
SERVICE = 0.001


def spec(replication: dict[str, Any] | None = None, fault: dict[str, Any] | None = None,
         rate: float = 400, keys: int = 50, duration: float = 30,
         mix: dict[str, float] | None = None) -> dict[str, Any]:
    """Writers and leader readers on one shard: a leader and two followers, constant lag."""
    rep = {"followers": 2, "lag": LAG, "reads": "leader",
           "failover": {"detection": DETECT, "promotion": PROMOTE}, **(replication or {})}
    return {
        "duration": duration, "drain": 2,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": rate},
                            "keys": {"popularity": "uniform", "n": keys},
                            "mix": mix or {"read": 0.5, "write": 0.5}, "target": "db"}},
        "components": {"db": {"kind": "database", "service_time": SERVICE,
                              "pool": {"size": 1000}, "replication": rep}},
        "faults": [fault or {"kind": "crash", "target": "db", "node": "leader",
                             "at": T_CRASH, "duration": 10}],
        "metrics": {"interval": 0.25},
    }


def simulate_keeping(data: dict[str, Any], seed: int = 1
                     ) -> tuple[simulator.Results, DatabaseCluster]:
    """Run as :func:`simulator.simulate` does, keeping the database to read its versions."""
    scenario = simulator.parse_scenario(data)
    env = simpy.Environment()
    recorder = Recorder(list(scenario.workloads), tables=raw_tables().values())
    ctx = BuildContext(env, Streams(seed), recorder, True)
    topo = build_topology(scenario, ctx)
    for c in topo.components:
        c.start()
    for client in topo.clients:
        client.start()
    start_faults(scenario, topo.groups, ctx)
    end = scenario.duration + scenario.drain
    env.run(until=end)
    recorder.sample(end)
    db = topo.resolve("db")
    assert isinstance(db, DatabaseCluster)
    return simulator.Results(scenario=scenario, seed=seed, replication=0,
                             tables=recorder.tables(), wall_seconds=0.0), db


def writes(res: simulator.Results) -> pd.DataFrame:
    r = res.requests
    return r[r["op"] == "write"]


def survivors(res: simulator.Results, db: DatabaseCluster, promoted_at: float) -> pd.Series:
    """Per key, how many of the writes committed before the crash the leader still holds.

    A key's version counts its writes; writes committed after the promotion number on from
    what the new leader held, so the survivors are the final version less those writes."""
    w = writes(res)
    ok = w[w["status"] == "ok"]
    post = ok[ok["start"] >= promoted_at].groupby("key").size()
    keys = np.arange(int(res.scenario.workloads["w"].keys.n))  # type: ignore[union-attr]
    final = pd.Series([db.committed_version(int(k)) for k in keys], index=keys)
    return final - post.reindex(keys, fill_value=0)


def ok_before(res: simulator.Results, t: float) -> pd.Series:
    w = writes(res)
    ok = w[(w["status"] == "ok") & (w["end"] < t)]
    keys = np.arange(int(res.scenario.workloads["w"].keys.n))  # type: ignore[union-attr]
    return ok.groupby("key").size().reindex(keys, fill_value=0)


# ---- write unavailability ------------------------------------------------------------------

def test_writes_fail_for_exactly_detection_plus_promotion() -> None:
    res = run(spec())
    fo = res.failovers()
    assert len(fo) == 1
    row = fo.iloc[0]
    assert (row["crashed"], row["promoted"]) == ("leader", "follower1")  # tie: lowest index
    assert row["crashed_at"] == T_CRASH
    assert row["detected_at"] == T_CRASH + DETECT
    assert row["promoted_at"] == T_CRASH + DETECT + PROMOTE
    assert row["write_unavailability"] == DETECT + PROMOTE
    r = res.requests
    gap = (r["start"] > T_CRASH) & (r["start"] < T_CRASH + DETECT + PROMOTE)
    # writes and leader reads are refused at once during the gap, and only then
    assert (r.loc[gap, "status"] == "error").all() and gap.sum() > 1000
    assert np.allclose(r.loc[gap, "latency"], 0.0)
    after = r["start"] >= T_CRASH + DETECT + PROMOTE
    assert (r.loc[after, "status"] == "ok").all()
    before = r["end"] < T_CRASH
    assert (r.loc[before, "status"] == "ok").all()
    # requests in service at the crash fail then
    at_crash = r[(r["start"] <= T_CRASH) & (r["end"] >= T_CRASH) & (r["status"] == "error")]
    assert (at_crash["end"] == T_CRASH).all()


def test_black_holed_writes_are_never_answered_during_the_gap() -> None:
    res = run(spec(fault={"kind": "crash", "target": "db", "node": "leader", "at": T_CRASH,
                          "duration": 10, "mode": "black_hole"}))
    r = res.requests
    gap = (r["start"] > T_CRASH) & (r["start"] < T_CRASH + DETECT + PROMOTE)
    assert gap.sum() > 1000 and (r.loc[gap, "status"] == "in_flight").all()
    assert (r.loc[r["start"] >= T_CRASH + DETECT + PROMOTE, "status"] == "ok").all()


def test_without_failover_writes_wait_for_the_leader_to_come_back() -> None:
    data = spec()
    del data["components"]["db"]["replication"]["failover"]
    res = run(data)
    assert res.failovers().empty
    r = res.requests
    down = (r["start"] > T_CRASH) & (r["start"] < T_CRASH + 10)
    assert (r.loc[down, "status"] == "error").all()
    assert (r.loc[r["start"] >= T_CRASH + 10, "status"] == "ok").all()


def test_a_leader_back_before_detection_keeps_leading() -> None:
    res = run(spec(fault={"kind": "crash", "target": "db", "node": "leader", "at": T_CRASH,
                          "duration": DETECT / 2}))
    assert res.failovers().empty
    s = res.samples
    assert (s.loc[s["metric"] == "leader_index", "value"] == 0).all()


# ---- lost writes ---------------------------------------------------------------------------

def test_async_failover_loses_exactly_the_writes_of_the_last_lag() -> None:
    """With a constant lag L every follower has applied exactly the writes committed before
    crash - L: those committed in the last L seconds are acknowledged and lost."""
    res, db = simulate_keeping(spec())
    w = writes(res)
    ok = w[w["status"] == "ok"]
    expected = int(((ok["end"] > T_CRASH - LAG) & (ok["end"] < T_CRASH)).sum())
    row = res.failovers().iloc[0]
    assert expected > 5
    assert row["lost_writes"] == expected
    assert row["discarded_writes"] == 0
    # the leader's committed version of every key went back to what the new leader held
    kept = survivors(res, db, row["promoted_at"])
    assert (kept == ok_before(res, T_CRASH - LAG)).all()
    s = res.samples
    assert s.loc[s["metric"] == "lost_writes_total", "value"].max() == expected


def test_reads_measure_staleness_against_the_new_leader() -> None:
    """After the promotion, follower reads are stale only for writes committed by the new
    leader in the last L seconds: never because of the lost writes."""
    data = spec(replication={"reads": "round_robin"})
    res = run(data)
    r = res.requests
    promoted = T_CRASH + DETECT + PROMOTE
    gap = r[(r["start"] > T_CRASH) & (r["start"] < promoted)]
    # during the gap the writes fail and the follower reads go on
    assert (gap.loc[gap["op"] == "write", "status"] == "error").all()
    assert (gap.loc[gap["op"] == "read", "status"] == "ok").all()
    reads = r[(r["op"] == "read") & (r["start"] > promoted + 1) & (r["start"] < T_CRASH + 10)]
    w = writes(res)
    ok = w[w["status"] == "ok"]
    for _, rd in reads.head(300).iterrows():
        recent = ok[(ok["key"] == rd["key"]) & (ok["end"] > rd["end"] - LAG)
                    & (ok["end"] <= rd["end"])]
        assert bool(rd["stale"]) == (len(recent) > 0)


@pytest.mark.parametrize("writes_mode", [
    {"writes": "sync"},
    {"writes": "quorum", "write_quorum": 2, "ordered": True,
     "lag": {"dist": "exponential", "mean": 0.05}},
], ids=["sync", "quorum"])
def test_no_acknowledged_write_is_lost_with_sync_or_quorum(writes_mode: dict[str, Any]) -> None:
    res, db = simulate_keeping(spec(replication=writes_mode))
    row = res.failovers().iloc[0]
    assert row["lost_writes"] == 0
    assert row["discarded_writes"] > 0  # committed on the leader, failed to the client
    w = writes(res)
    failed_at_crash = w[(w["status"] == "error") & (w["end"] == T_CRASH)]
    assert row["discarded_writes"] <= len(failed_at_crash)
    # every acknowledged write is on the new leader, and only those: each write the new
    # leader applied had reached a quorum
    kept = survivors(res, db, row["promoted_at"])
    assert (kept == ok_before(res, T_CRASH)).all()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(crash=st.floats(1.0, 6.0), seed=st.integers(1, 10_000),
       mode=st.sampled_from(["async", "quorum"]))
def test_acknowledged_writes_are_kept_or_counted_lost(crash: float, seed: int, mode: str
                                                      ) -> None:
    rep: dict[str, Any] = {"lag": {"dist": "exponential", "mean": 0.05}, "ordered": True,
                           "failover": {"detection": 0.5, "promotion": 0.25}}
    if mode == "quorum":
        rep.update(writes="quorum", write_quorum=2)
    data = spec(replication=rep, rate=300, keys=20, duration=8,
                fault={"kind": "crash", "target": "db", "node": "leader", "at": crash,
                       "duration": 1.0})
    res, db = simulate_keeping(data, seed=seed)
    row = res.failovers().iloc[0]
    kept = survivors(res, db, row["promoted_at"])
    acked = ok_before(res, crash)
    assert int(kept.sum()) + int(row["lost_writes"]) == int(acked.sum())
    assert (kept <= acked).all() if mode == "async" else (kept == acked).all()
    if mode == "quorum":
        assert row["lost_writes"] == 0


# ---- follower crashes and the old leader ---------------------------------------------------

def follower_spec() -> dict[str, Any]:
    data = spec(replication={"reads": "round_robin"},
                fault={"kind": "crash", "target": "db", "node": "follower1", "at": T_CRASH,
                       "duration": 5})
    data["components"]["db"]["service_time"] = {"read": 0.05, "write": SERVICE}
    return data


def test_a_crashed_follower_loses_its_reads_to_the_other_and_catches_up() -> None:
    res = run(follower_spec())
    assert res.failovers().empty
    r = res.requests
    failed = r[r["status"] != "ok"]
    # only the reads in service at follower1 when it crashed fail; later ones are re-routed
    assert len(failed) > 0 and (failed["op"] == "read").all()
    assert (failed["end"] == T_CRASH).all()
    in_service = ((r["op"] == "read") & (r["start"] > T_CRASH - 0.05)
                  & (r["start"] <= T_CRASH)).sum()
    assert len(failed) < in_service  # round robin: about half of them were at follower1
    s = res.samples
    reads1 = s[(s["metric"] == "node_reads_total") & (s["label"] == "follower1")]
    during = reads1[(reads1["time"] > T_CRASH) & (reads1["time"] < T_CRASH + 5)]["value"]
    assert during.nunique() == 1  # no read served while down
    reads2 = s[(s["metric"] == "node_reads_total") & (s["label"] == "follower2")]
    r2 = reads2.set_index("time")["value"]
    # follower2 serves every read meanwhile: 200 reads/s for 4.5 s, about 900
    assert 750 < r2.loc[T_CRASH + 4.75] - r2.loc[T_CRASH + 0.25] < 1050
    lag = s[(s["metric"] == "replica_behind") & (s["label"] == "follower1")].set_index("time")
    # its lag grows with the outage (the oldest write it lacks was committed in the last L
    # before the crash), and falls back under L once it has caught up
    for t in (11.0, 12.0, 14.0, 14.75):
        assert t - T_CRASH < lag.loc[t, "value"] <= t - T_CRASH + LAG
    assert (lag.loc[T_CRASH + 5.25:, "value"] <= LAG).all()
    backlog = s[(s["metric"] == "replication_backlog") & (s["label"] == "follower1")]
    assert backlog[backlog["time"] == 14.75]["value"].iloc[0] > 500


def test_the_old_leader_rejoins_as_a_follower() -> None:
    data = spec(replication={"reads": "round_robin"})
    res = run(data)
    s = res.samples
    leader = s[s["metric"] == "leader_index"].set_index("time")["value"]
    assert (leader.loc[:T_CRASH + 2.75] == 0).all()
    assert (leader.loc[T_CRASH + 3:] == 1).all()  # follower1 leads from the promotion on
    up = s[(s["metric"] == "node_up") & (s["label"] == "leader")].set_index("time")["value"]
    assert up.loc[T_CRASH + 5] == 0 and up.loc[T_CRASH + 10.25] == 1
    # it follows: lag grows from the promotion until it is back at 20 s, then it catches up
    lag = s[(s["metric"] == "replica_behind") & (s["label"] == "leader")].set_index("time")
    assert (lag.loc[:T_CRASH + 3, "value"] == 0).all()
    assert lag.loc[T_CRASH + 9.75, "value"] > 6.5
    assert (lag.loc[T_CRASH + 10.25:, "value"] <= LAG).all()
    # and serves reads in the round robin with follower2
    reads = s[(s["metric"] == "node_reads_total") & (s["label"] == "leader")]
    r0 = reads.set_index("time")["value"]
    assert r0.loc[T_CRASH + 9.75] == r0.loc[T_CRASH + 3.25]
    # 200 reads/s shared by two followers for 7.5 s: about 750
    assert 600 < r0.loc[28.0] - r0.loc[T_CRASH + 10.5] < 900


def test_the_promoted_follower_is_the_most_up_to_date() -> None:
    """follower1 is down from 9 s to 11 s: back before the election (12 s) but without the
    writes of 9-10 s, which only the dead leader had; follower2 lacks only the last L
    seconds. follower2 is promoted (follower1 would lose a second of writes)."""
    data = spec()
    data["faults"].insert(0, {"kind": "crash", "target": "db", "node": "follower1",
                              "at": T_CRASH - 1, "duration": 2})
    res = run(data)
    row = res.failovers().iloc[0]
    assert row["promoted"] == "follower2"
    w = writes(res)
    ok = w[w["status"] == "ok"]
    assert row["lost_writes"] == int(((ok["end"] > T_CRASH - LAG) & (ok["end"] < T_CRASH)).sum())
    s = res.samples
    up = s[(s["metric"] == "node_up") & (s["label"] == "follower1")].set_index("time")["value"]
    assert up.loc[T_CRASH + 1.75] == 1
    backlog = s[(s["metric"] == "replication_backlog") & (s["label"] == "follower1")]
    b = backlog.set_index("time")["value"]
    # follower1 lacked every write of 9-10 s at the election: about 200
    assert 150 < b.loc[T_CRASH + 1.75] < 250
    assert b.loc[T_CRASH + 3.25] < 30  # then follows the new leader: ~10 writes in flight


def test_failover_is_deterministic() -> None:
    data = spec(replication={"reads": "random", "lag": {"dist": "exponential", "mean": 0.05}})
    a, b = run(data, seed=3), run(data, seed=3)
    pd.testing.assert_frame_equal(a.requests, b.requests)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.failovers(), b.failovers())


# ---- regions -------------------------------------------------------------------------------

def regional_spec(region: str, failover: bool = True) -> dict[str, Any]:
    rep: dict[str, Any] = {"followers": 1, "regions": ["eu-west"], "lag": 0.010,
                           "reads": "nearest"}
    if failover:
        rep["failover"] = {"detection": 1, "promotion": 0.5}
    return {
        "duration": 10, "drain": 1,
        "regions": {"names": ["us-east", "eu-west"],
                    "latency": {"us-east": {"eu-west": 0.040}}},
        "workloads": {
            "writer": {"arrivals": {"process": "constant", "rate": 10},
                       "keys": {"popularity": "uniform", "n": 1}, "mix": {"write": 1},
                       "regions": {"eu-west": 1}, "target": "db"}},
        "components": {"db": {"kind": "database", "region": "us-east",
                              "service_time": 0.001, "replication": rep}},
        "faults": [{"kind": "region_outage", "region": region, "at": 3.05, "duration": 4}],
    }


def test_a_region_outage_of_the_leader_promotes_the_follower_elsewhere() -> None:
    res = run(regional_spec("us-east"))
    row = res.failovers().iloc[0]
    assert (row["crashed"], row["promoted"]) == ("leader", "follower1")
    assert row["promoted_at"] == pytest.approx(4.55)
    w = res.requests
    # eu-west writers paid 80 ms round trips to us-east, then write locally in eu-west
    before = w[w["start"] < 3.0]
    after = w[w["start"] > 4.6]
    assert np.allclose(before["latency"], 0.081)
    assert np.allclose(after["latency"], 0.001) and (after["status"] == "ok").all()
    gap = w[(w["start"] > 3.0) & (w["start"] < 4.5)]
    assert (gap["status"] == "error").all()


def test_a_region_outage_of_a_follower_crashes_only_that_follower() -> None:
    res = run(regional_spec("eu-west", failover=False))
    s = res.samples
    w = res.requests
    assert (w["status"] == "ok").all()  # eu-west writers reach the leader in us-east
    assert res.failovers().empty
    lag = s[(s["metric"] == "replica_behind") & (s["label"] == "follower1")].set_index("time")
    assert lag.loc[7.0, "value"] > 3.5 and lag.loc[8.0, "value"] < 0.1


# ---- the scenario --------------------------------------------------------------------------

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "db_failover.yaml"


def test_the_scenario_prints_the_gap_and_the_lost_writes(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SCENARIO), "--set", "duration=60s"]) == 0
    out = capsys.readouterr().out
    table = out.split("database failovers")[1].splitlines()
    row = dict(zip(table[1].split(), table[2].split(), strict=True))
    assert row["write_unavailability"] == "15.000"  # detection 10 s + promotion 5 s
    assert (row["crashed"], row["crashed_at"]) == ("leader", "30.000")
    assert int(row["lost_writes"]) > 0  # with async replication


def test_the_scenario_loses_nothing_with_synchronous_replication() -> None:
    res = simulator.simulate(simulator.load_scenario(
        SCENARIO, ["duration=60s", "components.db.replication.writes=sync"]))
    row = res.failovers().iloc[0]
    assert row["lost_writes"] == 0 and row["discarded_writes"] > 0


def test_a_balancer_failover_event_is_not_a_database_failover() -> None:
    events = pd.DataFrame({
        "time": [5.0, 9.0], "component": ["geo", "db"], "instance": ["geo", "db[1]"],
        "event": ["failover", "failover"],
        "detail": ["eu-west -> us-east",
                   "crashed=leader promoted=follower2 crashed_at=1 detected_at=3 "
                   "promoted_at=4.5 duration=3.5 lost_writes=7 discarded_writes=2"]})
    table = failover_summary(events)
    assert table.to_dict("records") == [{
        "component": "db", "shard": "db[1]", "crashed": "leader", "promoted": "follower2",
        "crashed_at": 1.0, "detected_at": 3.0, "promoted_at": 4.5, "write_unavailability": 3.5,
        "lost_writes": 7, "discarded_writes": 2}]


def test_a_region_outage_of_every_node_is_a_whole_shard_crash_without_failover() -> None:
    data = regional_spec("us-east")
    del data["components"]["db"]["replication"]["regions"]  # every node in us-east
    res = run(data)
    assert res.failovers().empty  # nothing to promote: the shard is down, followers included
    w = res.requests
    down = (w["start"] > 3.05) & (w["start"] < 7.0)
    assert (w.loc[down, "status"] == "error").all()
    assert (w.loc[w["start"] > 7.1, "status"] == "ok").all()
