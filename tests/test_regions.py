"""Regions: link latency on cross-region calls, region partitions and outages, geo-routing with
failover, cross-region replication, and runs without regions left as they were."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import simpy
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import simulator
from simulator.cli import main
from simulator.components.base import BuildContext
from simulator.components.edge import bind_call
from simulator.distributions import LogNormal
from simulator.metrics.recorder import Recorder
from simulator.registry import raw_tables
from simulator.rng import BLOCK, Streams
from simulator.topology import build_topology
from tests.conftest import run

ROOT = Path(__file__).resolve().parents[1]
US_EU = {"dist": "lognormal", "p50": 0.040, "p99": 0.060}
EU_US = {"dist": "lognormal", "p50": 0.030, "p99": 0.050}


def two_regions(**latency: Any) -> dict[str, Any]:
    return {"names": ["us-east", "eu-west"], "latency": latency or {"us-east": {"eu-west": 0.04}}}


def service(region: str | list[str] | None = None, t: float = 0.01, **extra: Any
            ) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": "service", "workers": 100, "service_time": t, **extra}
    if region is not None:
        spec["region"] = region
    return spec


def draws(seed: int, link: str, dist: Any, n: int) -> np.ndarray:
    """The first ``n`` draws of a link's stream, drawn as the run draws them (in blocks)."""
    rng = Streams(seed, 0).generator("regions", f"latency:{link}")
    return dist.sample(rng, BLOCK)[:n]


# ---- link latency --------------------------------------------------------------------------

def test_cross_region_call_pays_exactly_the_sampled_one_way_draws() -> None:
    """A call from eu-west to us-east pays one draw of eu-west -> us-east going and one of
    us-east -> eu-west coming back (asymmetric: both directions given), nothing else."""
    spec = {
        "duration": 10, "regions": two_regions(**{"us-east": {"eu-west": US_EU},
                                                  "eu-west": {"us-east": EU_US}}),
        "workloads": {"eu": {"arrivals": {"process": "constant", "rate": 2},
                             "regions": {"eu-west": 1}, "target": "api"}},
        "components": {"api": service("us-east")},
    }
    r = run(spec, seed=3).requests
    n = len(r)
    assert n == 19
    out = draws(3, "eu-west->us-east", LogNormal(p50=0.030, p99=0.050), n)
    back = draws(3, "us-east->eu-west", LogNormal(p50=0.040, p99=0.060), n)
    np.testing.assert_allclose(r["latency"].to_numpy(), out + 0.01 + back, rtol=0, atol=1e-12)
    assert (r["region"] == "eu-west").all()
    assert np.ptp(out) > 0.001  # the draws vary: a constant would not pin the streams


def test_same_region_pays_local_and_unplaced_targets_pay_nothing() -> None:
    spec = {
        "duration": 5, "regions": {**two_regions(), "local": 0.002},
        "workloads": {
            "near": {"arrivals": {"process": "constant", "rate": 2}, "regions": {"us-east": 1},
                     "target": "api"},
            "anywhere": {"arrivals": {"process": "constant", "rate": 2},
                         "regions": {"eu-west": 1}, "target": "cdn"},
            "nowhere": {"arrivals": {"process": "constant", "rate": 2}, "target": "api"},
        },
        "components": {"api": service("us-east"), "cdn": service(None)},
    }
    r = run(spec).requests
    lat = r.groupby("workload", observed=True)["latency"]
    assert np.allclose(lat.min(), lat.max())
    assert lat.min()["near"] == pytest.approx(0.014, abs=1e-12)   # 2 ms each way
    assert lat.min()["anywhere"] == pytest.approx(0.010, abs=1e-12)  # everywhere: no link
    assert lat.min()["nowhere"] == pytest.approx(0.010, abs=1e-12)   # client everywhere
    assert set(r.loc[r["workload"] == "nowhere", "region"]) == {""}


def test_calls_are_charged_from_the_calling_instance_region() -> None:
    """Client (us) -> global balancer -> api in eu -> db in us: the balancer hop is charged from
    the request's region (us -> eu), the api's call from the api's region (eu -> us)."""
    spec = {
        "duration": 5, "regions": two_regions(),
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 2},
                            "regions": {"us-east": 1}, "target": "lb"}},
        "components": {
            "lb": {"kind": "load_balancer", "backends": ["api"]},
            "api": service("eu-west", calls={"*": ["db"]}),
            "db": service("us-east", t=0.005),
        },
    }
    r = run(spec).requests
    assert np.allclose(r["latency"], 4 * 0.04 + 0.01 + 0.005, rtol=0, atol=1e-12)


def test_a_placed_balancer_proxies_from_its_region_and_probes_fail_across_a_partition(
) -> None:
    """eu-west client -> balancer in us-east -> api in eu-west: two crossings each way. While
    us-east | eu-west is partitioned the balancer's probes fail: the backend goes unhealthy."""
    spec = {
        "duration": 10, "drain": 1, "regions": two_regions(),
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 5},
                            "regions": {"eu-west": 1}, "target": "lb"}},
        "components": {
            "lb": {"kind": "load_balancer", "region": "us-east", "backends": ["api"],
                   "health_check": {"interval": 1.0, "unhealthy_threshold": 2}},
            "api": service("eu-west"),
        },
        "faults": [{"kind": "region_partition", "between": ["us-east", "eu-west"],
                    "at": 4.5, "duration": 2.0}],
    }
    res = run(spec)
    r = res.requests
    ok = r["status"] == "ok"
    assert np.allclose(r.loc[ok, "latency"], 4 * 0.04 + 0.01)
    assert not ok[(r["start"] > 4.5) & (r["start"] < 6.5)].any()
    ev = res.events
    health = ev[ev["event"].isin(["unhealthy", "healthy"])]
    assert list(zip(health["time"], health["event"], strict=True)) == [
        (6.0, "unhealthy"), (7.0, "healthy")]


def test_a_group_spread_over_regions_charges_each_instance_its_own_link() -> None:
    spec = {
        "duration": 20, "regions": two_regions(),
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 10},
                            "regions": {"us-east": 1}, "target": "api"}},
        "components": {"api": service(["us-east", "eu-west"], replicas=2)},
    }
    res = run(spec)
    r, spans = res.requests, res.spans
    served = spans.set_index("request_id")["instance"].astype(str)
    lat = r.set_index("request_id")["latency"]
    assert np.allclose(lat[served == "api[0]"], 0.01)
    assert np.allclose(lat[served == "api[1]"], 0.09)
    assert 0.35 < (served == "api[1]").mean() < 0.65


def test_client_regions_follow_the_workload_spread() -> None:
    spec = {
        "duration": 50, "drain": 1, "regions": two_regions(),
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 400},
                            "regions": {"us-east": 3, "eu-west": 1}, "target": "api"}},
        "components": {"api": service("us-east", t=0.0)},
    }
    r = run(spec).requests
    share = float((r["region"] == "eu-west").mean())
    n = len(r)
    assert abs(share - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n)
    eu = r["region"] == "eu-west"
    assert np.allclose(r.loc[eu, "latency"], 0.08) and np.allclose(r.loc[~eu, "latency"], 0)


# ---- partitions ----------------------------------------------------------------------------

def partition_spec(mode: str) -> dict[str, Any]:
    timeout = {"timeout": 0.5} if mode == "black_hole" else {}
    return {
        "duration": 8, "drain": 2,
        "regions": two_regions(),
        "workloads": {
            "us_to_us": {"arrivals": {"process": "constant", "rate": 10},
                         "regions": {"us-east": 1}, "target": {"to": "api_us", **timeout}},
            "eu_to_us": {"arrivals": {"process": "constant", "rate": 10},
                         "regions": {"eu-west": 1}, "target": {"to": "api_us", **timeout}},
            "eu_to_eu": {"arrivals": {"process": "constant", "rate": 10},
                         "regions": {"eu-west": 1}, "target": {"to": "api_eu", **timeout}},
        },
        "components": {"api_us": service("us-east"), "api_eu": service("eu-west")},
        "faults": [{"kind": "region_partition", "between": ["us-east", "eu-west"],
                    "at": 2.025, "duration": 2.0, "mode": mode}],
    }


@pytest.mark.parametrize("mode", ["refuse", "black_hole"])
def test_a_partition_fails_exactly_the_calls_that_cross_it(mode: str) -> None:
    """A call fails when the partition holds as it leaves (start) or as its reply comes back
    (start + 40 ms + 10 ms); calls within a region never fail."""
    r = run(partition_spec(mode)).requests
    start = r["start"].to_numpy()
    crosses = (r["workload"] == "eu_to_us").to_numpy()
    cut = ((start >= 2.025) & (start < 4.025)) | ((start + 0.05 >= 2.025)
                                                  & (start + 0.05 < 4.025))
    failed = (r["status"] != "ok").to_numpy()
    np.testing.assert_array_equal(failed, crosses & cut)
    assert (crosses & cut).sum() == 21  # 1.98 .. 4.00: the first one loses its reply
    expected = "error" if mode == "refuse" else "timeout"
    assert set(r.loc[failed, "status"].astype(str)) == {expected}
    if mode == "refuse":  # refused at once when sent into the partition
        sent_cut = crosses & (start >= 2.025) & (start < 4.025)
        assert np.allclose(r.loc[sent_cut, "latency"], 0)
    ok = ~failed
    assert np.allclose(r.loc[ok & crosses, "latency"], 0.09)
    assert np.allclose(r.loc[ok & ~crosses, "latency"], 0.01)


@settings(max_examples=15, deadline=None)
@given(at=st.floats(0.3, 3.0), length=st.floats(0.05, 2.0))
def test_partition_property_only_crossing_calls_fail(at: float, length: float) -> None:
    spec = partition_spec("refuse")
    spec["duration"], spec["drain"] = 4, 1
    spec["faults"] = [{**spec["faults"][0], "at": at, "duration": length}]
    r = run(spec).requests
    within = r["workload"] != "eu_to_us"
    assert (r.loc[within, "status"] == "ok").all()
    start = r["start"].to_numpy()
    crosses = ~within.to_numpy()

    def holds(t: np.ndarray) -> np.ndarray:
        return (t >= at) & (t < at + length)

    edge = np.isclose(start, at) | np.isclose(start, at + length) | np.isclose(
        start + 0.05, at) | np.isclose(start + 0.05, at + length)
    expect = crosses & (holds(start) | holds(start + 0.05))
    failed = (r["status"] != "ok").to_numpy()
    np.testing.assert_array_equal(failed[~edge], expect[~edge])


# ---- outage and geo-routing ----------------------------------------------------------------

def geo_spec(geo_by: str = "nearest") -> dict[str, Any]:
    return {
        "duration": 30, "drain": 1,
        "regions": {"names": ["us-east", "eu-west", "ap-south"],
                    "latency": {"us-east": {"eu-west": 0.040, "ap-south": 0.100},
                                "eu-west": {"ap-south": 0.060}}},
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 60},
                            "regions": {"us-east": 1, "eu-west": 1, "ap-south": 1},
                            "target": "geo"}},
        "components": {
            "geo": {"kind": "load_balancer", "strategy": "geo", "geo_by": geo_by,
                    "backends": ["api_us", "api_eu", "api_ap"],
                    "health_check": {"interval": 1.0, "unhealthy_threshold": 2},
                    "healthy_panic_threshold": 0},
            "api_us": service("us-east", replicas=2),
            "api_eu": service("eu-west", replicas=2),
            "api_ap": service("ap-south", replicas=2),
        },
        "faults": [{"kind": "region_outage", "region": "eu-west", "at": 10.5,
                    "duration": 10.0}],
    }


def test_region_outage_fails_clients_over_to_the_nearest_healthy_region() -> None:
    res = run(geo_spec())
    r = res.requests
    eu = r[r["region"] == "eu-west"]
    before = eu[eu["start"] < 10.5]
    during = eu[(eu["start"] >= 12.5) & (eu["start"] < 20.5)]  # after two failed probes
    after = eu[eu["start"] >= 21.5]
    assert (before["status"] == "ok").all() and np.allclose(before["latency"], 0.01)
    # failed over to us-east (40 ms away), not ap-south (60 ms): 2 x 40 ms + 10 ms
    assert (during["status"] == "ok").all() and np.allclose(during["latency"], 0.09)
    assert (after["status"] == "ok").all() and np.allclose(after["latency"], 0.01)
    # until the health checks notice, eu-west requests are refused by the crashed region
    gap = eu[(eu["start"] >= 10.5) & (eu["start"] < 12.0)]
    assert (gap["status"] == "error").all()
    others = r[r["region"] != "eu-west"]
    assert (others["status"] == "ok").all() and np.allclose(others["latency"], 0.01)
    ev = res.events
    moves = ev[ev["event"].isin(["failover", "failback"])]
    assert list(moves["event"]) == ["failover", "failback"]
    assert list(moves["detail"]) == ["eu-west clients: eu-west -> us-east",
                                     "eu-west clients: us-east -> eu-west"]
    # every eu-west instance crashed and recovered with the region
    crashed = ev[(ev["event"] == "fault") & (ev["detail"] == "crash starts")]
    assert sorted(crashed["instance"].astype(str)) == ["api_eu[0]", "api_eu[1]"]


def test_region_summary_shows_what_failed_over_clients_pay() -> None:
    res = run(geo_spec())
    table = res.region_summary()
    assert set(table["window"]) == {"measured", "during region_outage eu-west"}
    during = table[table["window"] != "measured"].set_index("region")
    assert during.loc["eu-west", "failovers"] == 1
    assert during.loc["eu-west", "p50"] == pytest.approx(0.09)
    assert during.loc["us-east", "p99"] == pytest.approx(0.01)
    measured = table[table["window"] == "measured"].set_index("region")
    r = res.requests
    eu = r[(r["region"] == "eu-west") & (r["start"] < 30)]
    assert measured.loc["eu-west", "ok_ratio"] == pytest.approx((eu["status"] == "ok").mean())


def test_latency_based_geo_routing_measures_and_prefers_the_faster_region() -> None:
    """ap-south clients: us-east is nearer (50 ms) but its service takes 100 ms; eu-west is
    60 ms away and serves in 10 ms. ``nearest`` stays with us-east (200 ms); ``latency`` learns
    that eu-west answers in 130 ms."""
    spec = geo_spec()
    spec["regions"]["latency"] = {"us-east": {"eu-west": 0.040, "ap-south": 0.050},
                                  "eu-west": {"ap-south": 0.060}}
    spec["components"].pop("api_ap")
    spec["components"]["geo"]["backends"] = ["api_us", "api_eu"]
    spec["components"]["api_us"]["service_time"] = 0.1
    spec["faults"] = []
    spec["workloads"]["w"]["regions"] = {"ap-south": 1}
    late = {}
    for by in ("nearest", "latency"):
        spec["components"]["geo"]["geo_by"] = by
        r = run(spec).requests
        late[by] = r.loc[r["start"] > 5, "latency"]
    assert np.allclose(late["nearest"], 0.2)
    assert np.allclose(late["latency"], 0.13)


# ---- cross-region replication --------------------------------------------------------------

def replication_spec(**faults: Any) -> dict[str, Any]:
    return {
        "duration": 10, "drain": 1,
        "regions": two_regions(),
        "workloads": {
            "writer": {"arrivals": {"process": "constant", "rate": 1}, "keys":
                       {"popularity": "uniform", "n": 1}, "mix": {"write": 1},
                       "regions": {"us-east": 1}, "target": "db"},
            "reader": {"arrivals": {"process": "constant", "rate": 100}, "keys":
                       {"popularity": "uniform", "n": 1}, "regions": {"eu-west": 1},
                       "target": "db"},
        },
        "components": {"db": {
            "kind": "database", "region": "us-east",
            "service_time": {"read": 0.001, "write": 0.0015},
            "replication": {"followers": 1, "regions": ["eu-west"], "lag": 0.010,
                            "reads": "nearest"}}},
        **faults,
    }


def test_a_follower_in_another_region_gets_writes_after_lag_plus_link() -> None:
    """Writes commit at t + 1.5 ms and reach the eu-west follower 10 ms + 40 ms later: a read
    completing in between is stale. Reads at 10 ms steps complete at a + 1 ms, so five reads
    after each write are stale (one without the link)."""
    r = run(replication_spec()).requests
    reads = r[r["workload"] == "reader"]
    assert np.allclose(reads["latency"], 0.001)  # served by the local follower
    writes = r[r["workload"] == "writer"]
    assert np.allclose(writes["latency"], 0.0015)  # the leader is local to the writer
    assert int(reads["stale"].sum()) == 5 * len(writes)


def test_replication_is_held_while_a_partition_cuts_the_follower_off() -> None:
    spec = replication_spec(faults=[{"kind": "region_partition",
                                     "between": ["us-east", "eu-west"], "at": 3.5,
                                     "duration": 3.0}])
    r = run(spec).requests
    reads = r[r["workload"] == "reader"]
    assert (reads["status"] == "ok").all()  # the reads never cross the partition
    # writes at 1, 2, 3, 7, 8, 9: five stale reads each; writes at 4, 5, 6 reach the follower
    # when the partition heals at 6.5: reads completing in (4.0015, 6.5) are stale
    start = reads["start"].to_numpy()
    held = int(((start + 0.001 > 4.0015) & (start + 0.001 < 6.5)).sum())
    assert held == 249
    assert int(reads["stale"].sum()) == 6 * 5 + held


def test_nearest_reads_go_to_the_leader_while_the_follower_region_is_down() -> None:
    """eu-west is down 3.5 s - 6.5 s (nothing but the follower is placed there): eu-west
    clients' reads cross to the leader (40 ms each way) and are never stale; the writes of
    4, 5 and 6 s reach the follower when the region comes back, so later reads are fresh."""
    spec = replication_spec(faults=[{"kind": "region_outage", "region": "eu-west",
                                     "at": 3.5, "duration": 3.0}])
    r = run(spec).requests
    reads = r[r["workload"] == "reader"]
    start = reads["start"].to_numpy()
    during = (start > 3.505) & (start < 6.495)
    outside = (start < 3.495) | (start > 6.505)
    assert (reads["status"] == "ok").all()
    assert np.allclose(reads["latency"][during], 0.081)
    assert np.allclose(reads["latency"][outside], 0.001)
    assert not reads["stale"][during].any()
    assert int(reads["stale"][outside].sum()) == 6 * 5


def test_a_write_from_another_region_crosses_to_the_leader() -> None:
    spec = replication_spec()
    spec["workloads"]["writer"]["regions"] = {"eu-west": 1}
    r = run(spec).requests
    writes = r[r["workload"] == "writer"]
    assert np.allclose(writes["latency"], 0.0815)


# ---- without regions ----------------------------------------------------------------------

BASE = {
    "duration": 10, "warmup": 1,
    "workloads": {"web": {"arrivals": {"process": "poisson", "rate": 200},
                          "keys": {"popularity": "zipf", "n": 500, "s": 0.9},
                          "mix": {"read": 0.8, "write": 0.2}, "target": "lb"}},
    "components": {
        "lb": {"kind": "load_balancer", "strategy": "power_of_two", "backends": ["api"]},
        "api": {"kind": "service", "replicas": 3, "workers": 2,
                "service_time": {"dist": "exponential", "mean": 0.004},
                "calls": {"*": ["db"]}},
        "db": {"kind": "database", "replication": {"followers": 1, "reads": "round_robin"}},
    },
}


def test_one_region_without_link_latency_changes_nothing() -> None:
    """Placing everything in one region with no local latency gives the tables of the run
    without regions (no draws consumed, no events added), region column aside."""
    plain = run(BASE)
    spec = copy.deepcopy(BASE)
    spec["regions"] = {"names": ["here"]}
    for c in spec["components"].values():
        c["region"] = "here"
    spec["workloads"]["web"]["regions"] = {"here": 1}
    placed = run(spec)
    a = plain.requests.drop(columns="region")
    b = placed.requests.drop(columns="region")
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(plain.spans, placed.spans)
    assert set(placed.requests["region"]) == {"here"}
    assert set(plain.requests["region"]) == {""}
    assert plain.region_summary().empty


def test_without_regions_an_edge_is_the_target_handle_itself() -> None:
    scenario = simulator.parse_scenario(BASE)
    ctx = BuildContext(simpy.Environment(), Streams(1),
                       Recorder(["web"], tables=raw_tables().values()), False)
    topo = build_topology(scenario, ctx)
    assert ctx.regions is None
    target = topo.resolve("db")
    bound = bind_call(scenario.components["api"].calls["*"][0], target, ctx, ("api", "api[0]"))
    assert bound == target.handle


def test_scenario_shows_failover_and_partition_figures() -> None:
    res = simulator.simulate(simulator.load_scenario(ROOT / "scenarios" / "multi_region.yaml"))
    table = res.region_summary().set_index(["window", "region"])
    outage = "during region_outage eu-west"
    partition = "during region_partition us-east | ap-south"
    # eu-west clients fail over to us-east and pay the transatlantic round trip meanwhile
    assert table.loc[(outage, "eu-west"), "p50"] > 0.07
    assert table.loc[("measured", "eu-west"), "p50"] < 0.02
    assert table.loc[(outage, "eu-west"), "failovers"] == 1
    # the partition fails only ap-south's writes (they cross to the leader in us-east)
    assert table.loc[(partition, "us-east"), "ok_ratio"] == 1.0
    assert table.loc[(partition, "eu-west"), "ok_ratio"] == 1.0
    assert 0.8 < table.loc[(partition, "ap-south"), "ok_ratio"] < 0.97
    r = res.requests
    failed = r[(r["status"] != "ok") & (r["start"] >= 65) & (r["start"] < 75)]
    assert set(failed["region"]) == {"ap-south"} and set(failed["op"]) == {"write"}


def test_run_prints_the_client_region_table(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    spec = geo_spec()
    spec["duration"] = 25
    path = tmp_path / "geo.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    table = out[out.index("client regions"):]
    assert "during region_outage eu-west" in table
    row = next(line for line in table.splitlines()
               if line.strip().startswith("during region_outage eu-west  eu-west"))
    assert row.split()[-1] == "1"  # one failover
