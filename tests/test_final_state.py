"""The database's ``final_state`` table: acknowledged writes = surviving + lost, from tables.

Every check reads the run's tables only (``final_state``, ``spans``, ``requests``, ``samples``,
the ``failovers`` table): the acknowledged writes of each key are counted from the shard's
``ok`` write spans, the surviving ones are those the node leading at the end holds, the lost
ones the final-state table's count, which must agree with the failover events and the
``lost_writes_total`` gauge.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import simulator
from tests.conftest import run


@st.composite
def databases(draw: st.DrawFn) -> dict[str, Any]:
    """Sharded, replicated databases (async, sync or quorum writes; ordered or not; with or
    without failover) under random leader, follower and whole-shard crashes."""
    followers = draw(st.integers(1, 3))
    shards = draw(st.integers(1, 3))
    failover = draw(st.sampled_from([True, True, True, False]))
    writes = draw(st.sampled_from(["async", "async", "sync", "quorum"]))
    rep: dict[str, Any] = {
        "followers": followers, "writes": writes,
        "lag": {"dist": "exponential", "mean": draw(st.floats(0.01, 0.3))},
        # quorum writes with failover need ordered apply (validated)
        "ordered": True if writes == "quorum" and failover else draw(st.booleans()),
        "reads": draw(st.sampled_from(["leader", "round_robin", "quorum"])),
    }
    if writes == "quorum":
        rep["write_quorum"] = draw(st.integers(1, followers + 1))
    if rep["reads"] == "quorum":
        rep["read_quorum"] = draw(st.integers(1, followers + 1))
    if failover:
        rep["failover"] = {"detection": draw(st.floats(0.0, 0.5)),
                           "promotion": draw(st.floats(0.0, 0.3))}
    duration = draw(st.floats(1.0, 3.0))
    write = draw(st.sampled_from([0.3, 0.7, 1.0]))
    mix = {"write": write, "read": 1 - write} if write < 1 else {"write": 1.0}
    faults: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1 if failover else 0, 3))):
        target = f"db[{draw(st.integers(0, shards - 1))}]" if shards > 1 else "db"
        fault: dict[str, Any] = {"kind": "crash", "target": target,
                                 "at": draw(st.floats(0.0, 0.95 * duration))}
        # the first a leader's: the failover (and its losses) is what the table is for
        node = "leader" if i == 0 else draw(st.sampled_from(["leader", "follower", "shard"]))
        if node == "leader":
            fault["node"] = "leader"
        elif node == "follower":
            fault["node"] = f"follower{draw(st.integers(1, followers))}"
        if draw(st.booleans()):
            fault["duration"] = draw(st.floats(0.01, 1.0))
        faults.append(fault)
    db: dict[str, Any] = {"kind": "database", "service_time": draw(st.floats(0.0005, 0.005)),
                          "pool": {"size": 1000}, "replication": rep}
    if shards > 1:
        db["shards"] = {"count": shards}
    return {
        "duration": duration, "drain": draw(st.sampled_from([0, 0.5, 5])),
        "workloads": {"w": {"arrivals": {"process": "poisson",
                                         "rate": draw(st.floats(50, 400))},
                            "keys": {"popularity": "uniform", "n": draw(st.integers(1, 30))},
                            "mix": mix,
                            "target": "db"}},
        "components": {"db": db}, "faults": faults, "metrics": {"interval": 0.25},
    }


def shard_index(instance: pd.Series) -> pd.Series:
    """``db[2]`` -> 2; an unsharded ``db`` -> 0."""
    return instance.astype(str).str.extract(r"\[(\d+)\]$")[0].fillna("0").astype(int)


def acknowledged_from_spans(r: simulator.Results) -> pd.Series:
    """Writes answered ``ok`` by each shard, per (shard, key), from the spans and requests."""
    sp = r.spans
    sp = sp[(sp["component"] == "db") & (sp["op"] == "write") & (sp["status"] == "ok")]
    keys = r.requests.set_index("request_id")["key"]
    ok = pd.DataFrame({"shard": shard_index(sp["instance"]).to_numpy(),
                       "key": keys.loc[sp["request_id"]].to_numpy()})
    return ok.groupby(["shard", "key"]).size()


def final_gauge(r: simulator.Results, metric: str) -> pd.Series:
    s = r.samples
    s = s[s["metric"] == metric]
    last = s[s["time"] == s["time"].max()]
    return pd.Series(last["value"].to_numpy(), index=shard_index(last["instance"]).to_numpy())


#: async replication, a leader crash longer than detection + promotion: writes are lost
LOSING = {
    "duration": 6, "drain": 2,
    "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 300},
                        "keys": {"popularity": "uniform", "n": 20},
                        "mix": {"read": 0.5, "write": 0.5}, "target": "db"}},
    "components": {"db": {"kind": "database", "service_time": 0.001, "pool": {"size": 1000},
                          "shards": {"count": 2},
                          "replication": {"followers": 2, "writes": "async", "ordered": False,
                                          "lag": {"dist": "exponential", "mean": 0.05},
                                          "failover": {"detection": 0.5, "promotion": 0.25}}}},
    "faults": [{"kind": "crash", "target": "db[0]", "node": "leader", "at": 3, "duration": 1}],
    "metrics": {"interval": 0.25},
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=databases(), seed=st.integers(0, 2**32))
@example(spec=LOSING, seed=1)
def test_acknowledged_writes_are_surviving_plus_lost(spec: dict[str, Any], seed: int) -> None:
    r = simulator.simulate(simulator.parse_scenario(spec), seed=seed)
    fs = r.final_state
    event(f"failovers: {min(len(r.failovers()), 2)}")
    event(f"lost: {fs['lost_writes'].sum() > 0}, discarded: {fs['discarded_writes'].sum() > 0}")
    rep = spec["components"]["db"]["replication"]
    nodes = rep["followers"] + 1
    # one row per key written at a shard and node; exactly one node leads each shard
    assert (fs.groupby(["shard", "key"]).size() == nodes).all()
    assert (fs.groupby(["shard", "key"])["leading"].sum() == 1).all()
    assert fs.groupby("shard")["node"].apply(
        lambda n: n[fs.loc[n.index, "leading"]].nunique()).eq(1).all()  # the same leader per key
    lead = fs[fs["leading"]].set_index(["shard", "key"])
    # acknowledged (the spans) = surviving on the final leader + counted lost, per key
    acked = acknowledged_from_spans(r).reindex(lead.index, fill_value=0)
    assert set(acknowledged_from_spans(r).index) <= set(lead.index)
    assert (lead["acknowledged_writes"] == acked).all()
    # (the leader holds the writes it committed that no failover voided: less the failed
    # ones it kept and those still waiting for their replicas, those are the acknowledged)
    surviving = (lead["held_writes"] - (lead["unacknowledged_writes"] - lead["discarded_writes"])
                 - lead["in_flight_writes"])
    assert (acked == surviving + lead["lost_writes"]).all()
    # every committed write is held by the final leader or was voided by a failover
    assert (lead["held_writes"] + lead["lost_writes"] + lead["discarded_writes"]
            == lead["committed_writes"]).all()
    # a write still waiting for its replicas is a request in flight at the end
    req = r.requests
    waiting = req[(req["op"] == "write") & (req["status"] == "in_flight")].groupby("key").size()
    by_key = lead.groupby(level="key")["in_flight_writes"].sum()
    assert (by_key <= waiting.reindex(by_key.index, fill_value=0)).all()
    assert (lead["in_flight_writes"] >= 0).all()
    assert (lead["discarded_writes"] <= lead["unacknowledged_writes"]).all()
    # versions: the leader holds the committed one; a version counts the writes held when
    # they are applied in order (an unordered follower promoted may hold v3 without v2)
    assert (lead["applied_version"] == lead["committed_version"]).all()
    voided = (lead["lost_writes"] + lead["discarded_writes"]) > 0
    if rep["ordered"]:
        assert (lead["committed_version"] == lead["held_writes"]).all()
    else:
        assert (lead.loc[~voided, "committed_version"] == lead.loc[~voided, "held_writes"]).all()
        assert (lead["committed_version"] >= lead["held_writes"]).all()
    # followers hold no more than the leader, and no newer version
    fol = fs[~fs["leading"]].merge(lead[["held_writes"]].reset_index(), on=["shard", "key"],
                                   suffixes=("", "_leader"))
    assert (fol["held_writes"] <= fol["held_writes_leader"]).all()
    assert (fol["applied_version"] <= fol["committed_version"]).all()
    # the final-state table agrees with the failover events and the lost-write gauges
    per_shard = lead.groupby(level="shard")[["lost_writes", "discarded_writes"]].sum()
    fo = r.failovers()
    if "failover" not in rep:
        assert fo.empty and (per_shard.to_numpy() == 0).all()
    else:
        events = fo.assign(shard=shard_index(fo["shard"])).groupby("shard")[
            ["lost_writes", "discarded_writes"]].sum()
        for col in ("lost_writes", "discarded_writes"):
            assert per_shard[col].sum() == events[col].sum()
            gauge = final_gauge(r, f"{col}_total")
            assert (per_shard[col].reindex(gauge.index, fill_value=0) == gauge).all()
            assert (events[col].reindex(per_shard.index, fill_value=0) == per_shard[col]).all()
    # what the replication mode promises
    if rep["writes"] == "async":  # acknowledged at the commit
        assert (lead["unacknowledged_writes"] == 0).all()
        assert (lead["in_flight_writes"] == 0).all()
    followers_crash = any(f.get("node", "").startswith("follower") for f in spec["faults"])
    if rep["writes"] == "sync" or (rep["writes"] == "quorum" and rep.get("write_quorum", 1) > 1
                                   and not followers_crash):
        # every acknowledged write is on every follower (sync), or on a quorum whose most
        # advanced member is promoted (ordered; unless it is down: elections need no quorum)
        assert (lead["lost_writes"] == 0).all()


def test_final_state_has_a_row_per_written_key_and_node_and_none_without_writes() -> None:
    # two followers, one shard, keys 0..4 written at 100/s for 2 s: every key is written
    base = {"duration": 2, "drain": 1,
            "workloads": {"w": {"arrivals": {"process": "constant", "rate": 100},
                                "keys": {"popularity": "uniform", "n": 5},
                                "mix": {"write": 1.0}, "target": "db"}},
            "components": {"db": {"kind": "database", "service_time": 0.001,
                                  "replication": {"followers": 2, "lag": 0.01}}}}
    r = run(base)
    fs = r.final_state
    assert sorted(set(fs["key"])) == [0, 1, 2, 3, 4] and len(fs) == 15
    assert fs["committed_writes"].groupby(fs["key"]).first().sum() == len(r.requests)
    # no faults, a drain of 1 s after a lag of 10 ms: every node holds every write
    assert (fs["held_writes"] == fs["committed_writes"]).all()
    assert (fs["applied_version"] == fs["committed_version"]).all()
    assert fs["leading"].sum() == 5 and (fs.loc[fs["leading"], "node"] == 0).all()
    reads = run({**base, "workloads": {"w": {**base["workloads"]["w"],
                                             "mix": {"read": 1.0}}}})
    assert reads.final_state.empty
    assert list(reads.final_state.columns) == list(fs.columns)
