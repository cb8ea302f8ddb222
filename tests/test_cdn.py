"""The CDN component: edge hit ratios against TTL theory, origin offload, routing by region,
exact latencies with and without the CDN, edge crashes, the summary and the scenario.

Expected values come from ``tests/theory.py`` (TTL caches under Poisson requests: Jung,
Berger and Balakrishnan; Fofack et al.) or are derived by hand from the scenario (constant
latencies); never from earlier runs. The reference case ``TTL-zipf0.8-T1`` run through a CDN
edge, at the published horizon and tolerances, is marked slow.

Every scenario has a ``regions`` block with constant one-way latencies (``LINK``, ``LOCAL``),
so latencies are exact: a request pays the link between its client's region and its edge's
each way, and a miss the link between the edge's region and the origin's each way.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simulator
from tests.conftest import run

try:
    import theory as th
    import validation_support as vs
    from test_validation_cache import REFERENCE_TTL_CASES, TTLCase, run_seeds
except ModuleNotFoundError:  # pragma: no cover - e.g. pytest --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import theory as th
    import validation_support as vs
    from test_validation_cache import REFERENCE_TTL_CASES, TTLCase, run_seeds

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "cdn.yaml"


# --------------------------------------------------------------------------------------------
# regions: constant one-way latencies, so every latency below is exact

#: one-way latency between two regions, seconds (symmetric); LOCAL within a region
LINK = {("us-east", "eu-west"): 0.040, ("us-east", "ap-south"): 0.100,
        ("us-east", "sa-east"): 0.060, ("eu-west", "ap-south"): 0.070,
        ("eu-west", "sa-east"): 0.090, ("ap-south", "sa-east"): 0.150}
LOCAL = 0.001
NAMES = ["us-east", "eu-west", "ap-south", "sa-east"]


def link(a: str, b: str) -> float:
    """One-way latency from ``a`` to ``b`` as the regions block below says."""
    return LOCAL if a == b else LINK.get((a, b), LINK.get((b, a), np.nan))


def regions_block() -> dict[str, Any]:
    latency: dict[str, dict[str, float]] = {}
    for (a, b), v in LINK.items():
        latency.setdefault(a, {})[b] = v
    return {"names": NAMES, "latency": latency, "local": LOCAL}


def users(rate: float, target: str, n: int = 500, s: float = 0.8,
          process: str = "poisson", region: str | None = None) -> dict[str, Any]:
    """A workload of ``rate`` requests/s over Zipf(s) of ``n`` assets; its clients are in
    ``region`` (none: requests carry no region)."""
    w: dict[str, Any] = {"arrivals": {"process": process, "rate": rate},
                         "keys": {"popularity": "zipf", "n": n, "s": s}, "target": target}
    if region is not None:
        w["regions"] = {region: 1.0}
    return w


def run_cdn(spec: dict[str, Any], seed: int = 1) -> simulator.Results:
    """Run ``spec`` with the test regions."""
    return run({"regions": regions_block(), **spec}, seed=seed)


def edge_rows(r: simulator.Results) -> Any:
    t = r.cdn_summary()
    return t[t["edge"] != "all"].set_index("region")


def edge_of(r: simulator.Results) -> dict[int, str]:
    """The edge instance that served each request (from the spans)."""
    sp = r.spans[r.spans["component"] == "cdn"]
    return dict(zip(sp["request_id"], sp["instance"].astype(str), strict=True))


# --------------------------------------------------------------------------------------------
# hit ratio against TTL theory


@pytest.mark.parametrize("mode,formula", [("after_write", th.ttl_nonreset_hit_ratio),
                                          ("after_access", th.ttl_reset_hit_ratio)])
def test_each_edge_hit_ratio_matches_the_ttl_formula(mode: str, formula: Any) -> None:
    """Two edges, each with its own region's users' Poisson rate over Zipf(0.8) of 500 assets,
    TTL 0.5 s: each edge's hit ratio is sum_i p_i h(lambda_i) with its own lambda_i = rate p_i,
    and its mean occupancy sum_i h_i (PASTA). 600 s, 135k requests; tolerance: four binomial
    standard errors of each edge's ratio (3.7% for the quieter edge). The origin is unplaced
    (no link to it) and takes no time: the formula assumes fetches are instant (a fetch taking
    D seconds leaves its asset missing for D more; with 80 ms of link, eu-west's ratio falls
    about 5% below the formula)."""
    rates = {"us-east": 150.0, "eu-west": 75.0}
    r = run_cdn({
        "duration": 600, "warmup": 60, "metrics": {"spans": False, "interval": 60},
        "workloads": {f"w-{reg}": users(rate, "cdn", region=reg) for reg, rate in rates.items()},
        "components": {"cdn": {"kind": "cdn", "edges": list(rates), "origin": "web",
                               "ttl": 0.5, "ttl_mode": mode},
                       "web": {"kind": "service", "workers": 100}},
    })
    rows = edge_rows(r)
    p = th.zipf_probs(500, 0.8)
    for reg, rate in rates.items():
        h = formula(rate * p, 0.5)
        want = float(np.dot(p, h))
        tol = 4 * np.sqrt((1 - want) / (want * rate * 540))  # relative, 540 s measured
        assert tol < 0.04
        row = rows.loc[reg]
        assert row["hit_ratio"] == pytest.approx(want, rel=tol), reg
        assert row["mean_entries"] == pytest.approx(float(h.sum()), rel=tol), reg
    # the busier edge keeps more of the same assets fresh
    assert rows.loc["us-east", "hit_ratio"] > rows.loc["eu-west", "hit_ratio"]


def test_asset_classes_expire_on_their_own_ttl() -> None:
    """Keys 0-9 live 5 s, keys 10-99 0.1 s, the rest 1 s (the default): the hit ratio is the
    TTL formula applied key by key with each key's own TTL."""
    n, s, rate = 500, 0.8, 200.0
    r = run_cdn({
        "duration": 600, "warmup": 60, "metrics": {"spans": False, "interval": 60},
        "workloads": {"w": users(rate, "cdn", n, s, region="eu-west")},
        "components": {"cdn": {"kind": "cdn", "edges": ["eu-west"], "origin": "web", "ttl": 1.0,
                               "assets": [{"name": "shell", "keys": [0, 9], "ttl": 5},
                                          {"name": "api", "keys": [10, 99], "ttl": "100ms"}]},
                       "web": {"kind": "service", "workers": 100}},  # instant fetches
    })
    p = th.zipf_probs(n, s)
    ttl = np.ones(n)
    ttl[:10], ttl[10:100] = 5.0, 0.1
    h = rate * p * ttl / (1.0 + rate * p * ttl)  # th.ttl_nonreset_hit_ratio, key by key
    assert np.allclose(h[:10], th.ttl_nonreset_hit_ratio(rate * p[:10], 5.0))
    row = edge_rows(r).loc["eu-west"]
    assert row["hit_ratio"] == pytest.approx(float(np.dot(p, h)), rel=0.02)
    assert row["mean_entries"] == pytest.approx(float(h.sum()), rel=0.02)
    # and the classes differ as their TTLs do: per key, from the requests table
    req = r.measured_requests()
    for key in (0, 10):
        mine = req[req["key"] == key]
        sd = np.sqrt(h[key] * (1 - h[key]) / len(mine))  # binomial
        assert (mine["cache"] == "hit").mean() == pytest.approx(float(h[key]), abs=4 * sd), key


class CdnTTLCase(TTLCase):
    """A reference TTL case with a one-edge CDN in place of the cache, in a one-region
    scenario (no link latency: the case is about hit ratios).

    The component is named ``cache`` so that the case's own measurement (the gauges
    ``hits_total``, ``misses_total`` and ``entries_time_total`` of ``cache``) reads the edge.
    """

    def scenario(self) -> simulator.Scenario:
        sc = super().scenario()
        data = sc.model_dump(mode="json")
        cache = data["components"]["cache"]
        data["regions"] = {"names": ["here"]}
        data["components"]["cache"] = {"kind": "cdn", "edges": ["here"], "origin": "store",
                                       "ttl": cache["ttl"], "ttl_mode": cache["ttl_mode"]}
        return simulator.parse_scenario(data)


@pytest.mark.slow
@pytest.mark.parametrize("case", REFERENCE_TTL_CASES, ids=lambda c: c.id)
def test_reference_ttl_case_through_a_cdn_edge(case: TTLCase) -> None:
    """TTL-zipf0.8-T1 as published (11000 s at 100/s, 10% warm-up, 5 seeds, its caps), at
    ``vs.SCALE`` of its horizon with the caps widened to match (see validation_support)."""
    cdn_case = CdnTTLCase(f"CDN-{case.id}", case.mode, case.n, case.s, case.rate, case.ttl,
                          case.horizon, case.caps)
    assert cdn_case.scenario().components["cache"].kind == "cdn"
    est = run_seeds(cdn_case)
    vs.assert_matches_theory(cdn_case.id, est, cdn_case.expected, cdn_case.caps)


# --------------------------------------------------------------------------------------------
# routing, latency, offload


def test_requests_go_to_the_edge_of_their_region() -> None:
    r = run_cdn({
        "duration": 5, "drain": 1,
        "workloads": {"us": users(20, "cdn", region="us-east"),
                      "eu": users(20, "cdn", region="eu-west"),
                      "sa": users(20, "cdn", region="sa-east"),  # no edge there: default
                      "none": users(20, "cdn")},                 # no region: default
        "components": {"cdn": {"kind": "cdn", "edges": ["us-east", "eu-west", "ap-south"],
                               "default_edge": "eu-west", "origin": "web", "ttl": 60},
                       "web": {"kind": "service", "region": "us-east"}},
    })
    served = edge_of(r)
    req = r.requests
    expected = {"us": "cdn[0]", "eu": "cdn[1]", "sa": "cdn[1]", "none": "cdn[1]"}
    for workload, edge in expected.items():
        ids = req.loc[req["workload"] == workload, "request_id"]
        assert len(ids) > 50 and {served[i] for i in ids} == {edge}, workload
    rows = edge_rows(r)
    assert rows.loc["ap-south", "requests"] == 0
    assert list(rows.index) == ["us-east", "eu-west", "ap-south"]


def test_first_edge_is_the_default() -> None:
    r = run_cdn({"duration": 2, "drain": 1, "workloads": {"w": users(20, "cdn", region="ap-south")},
                 "components": {"cdn": {"kind": "cdn", "edges": ["eu-west", "us-east"],
                                        "origin": "web", "ttl": 1},
                                "web": {"kind": "service"}}})
    assert set(edge_of(r).values()) == {"cdn[0]"}


LATENCY = {"hit": 0.010, "origin": 0.005}
ORIGIN = "us-east"
#: client region -> the edge region serving it (sa-east has no edge: the default, us-east)
SERVED_BY = {"us-east": "us-east", "eu-west": "eu-west", "sa-east": "us-east"}


def latency_run(bypass: bool = False, **extra: Any) -> simulator.Results:
    """Users in us-east, eu-west and sa-east; edges in us-east and eu-west; the origin (5 ms)
    in us-east; constant links (``LINK``, ``LOCAL``)."""
    return run_cdn({
        "duration": 20, "drain": 1,
        "workloads": {reg: users(60, "cdn", n=50, region=reg) for reg in SERVED_BY},
        "components": {
            "cdn": {"kind": "cdn", "origin": "web", "ttl": 2, "bypass": bypass,
                    "edges": ["us-east", {"region": "eu-west"}], "default_edge": "us-east",
                    "hit_latency": LATENCY["hit"], **extra},
            "web": {"kind": "service", "workers": 1000, "service_time": LATENCY["origin"],
                    "region": ORIGIN}},
    })


def expected_latency(client: str, outcome: str) -> float:
    """End-to-end latency of a request from ``client``: one draw of each link each way."""
    edge = SERVED_BY[client]
    if outcome == "direct":  # user -> origin, no edge
        return 2 * link(client, ORIGIN) + LATENCY["origin"]
    hit = 2 * link(client, edge) + LATENCY["hit"]
    return hit if outcome == "hit" else hit + 2 * link(edge, ORIGIN) + LATENCY["origin"]


def test_latency_of_a_hit_a_miss_and_without_the_cdn() -> None:
    """Constant latencies: a hit pays the link between the user's region and the edge's each
    way and hit_latency; a miss adds the link between the edge's region and the origin's each
    way and the origin's time; without the CDN a request pays the link between the user's
    region and the origin's and the origin's time. sa-east users, with no edge of their own,
    pay the link to the default edge (us-east)."""
    r = latency_run()
    req = r.requests
    assert (req["status"] == "ok").all()
    served = edge_of(r)
    for client, edge in SERVED_BY.items():
        mine = req[req["workload"] == client]
        assert (mine["region"] == client).all()
        assert {served[i] for i in mine["request_id"]} == {
            f"cdn[{['us-east', 'eu-west'].index(edge)}]"}
        hit, miss = mine[mine["cache"] == "hit"], mine[mine["cache"] == "miss"]
        assert len(hit) > 100 and len(miss) > 50, client
        assert np.allclose(hit["latency"], expected_latency(client, "hit")), client
        assert np.allclose(miss["latency"], expected_latency(client, "miss")), client
    # e.g. eu-west: hit 2 + 10 ms, miss 12 + 80 + 5 ms; sa-east: hit 120 + 10 ms
    assert expected_latency("eu-west", "miss") == pytest.approx(0.097)
    assert expected_latency("sa-east", "hit") == pytest.approx(0.130)
    direct = latency_run(bypass=True)
    d = direct.requests
    assert (d["cache"] == "").all() and (d["status"] == "ok").all()
    for client in SERVED_BY:
        mine = d[d["workload"] == client]
        assert np.allclose(mine["latency"], expected_latency(client, "direct")), client
    rows = edge_rows(direct)
    assert (rows["origin_offload"] == 0).all()
    assert (rows["bypassed"] == rows["requests"]).all() and (rows["requests"] > 0).all()


@pytest.mark.parametrize("bypass", [False, True])
def test_a_placed_caller_is_served_from_its_own_region(bypass: bool) -> None:
    """A service in sa-east (no edge there) calling the CDN for clients without a region: its
    calls go to the default edge (us-east) over sa-east's link, or, bypassed, straight to the
    origin (us-east) over the same link; the service takes no time."""
    r = run_cdn({
        "duration": 10, "drain": 1,
        "workloads": {"w": users(40, "app", n=20)},
        "components": {
            "app": {"kind": "service", "region": "sa-east", "service_time": 0, "workers": 100,
                    "calls": {"*": ["cdn"]}},
            "cdn": {"kind": "cdn", "origin": "web", "ttl": 60, "edges": ["eu-west", "us-east"],
                    "default_edge": "us-east", "hit_latency": LATENCY["hit"],
                    "bypass": bypass},
            "web": {"kind": "service", "workers": 100, "service_time": LATENCY["origin"],
                    "region": ORIGIN}},
    })
    req = r.requests
    assert (req["status"] == "ok").all() and req["region"].astype(str).eq("").all()
    assert set(edge_of(r).values()) == {"cdn[1]"}
    to_us = 2 * link("sa-east", "us-east")
    if bypass:
        assert np.allclose(req["latency"], to_us + LATENCY["origin"])
    else:
        hits, misses = req[req["cache"] == "hit"], req[req["cache"] == "miss"]
        assert len(hits) > 100 and len(misses) == 20
        assert np.allclose(hits["latency"], to_us + LATENCY["hit"])
        assert np.allclose(misses["latency"], to_us + LATENCY["hit"] + 2 * LOCAL
                           + LATENCY["origin"])


def test_latency_by_client_region() -> None:
    """``cdn_latency`` groups users by their own region (the requests' ``region`` column),
    sa-east included though it has no edge; requests without a region count in the region of
    the edge that served them."""
    r = run_cdn({
        "duration": 10, "drain": 1,
        "workloads": {**{reg: users(40, "cdn", n=50, region=reg) for reg in SERVED_BY},
                      "none": users(40, "cdn", n=50)},
        "components": {
            "cdn": {"kind": "cdn", "origin": "web", "ttl": 2, "edges": ["us-east", "eu-west"],
                    "default_edge": "us-east", "hit_latency": LATENCY["hit"]},
            "web": {"kind": "service", "workers": 1000, "service_time": LATENCY["origin"],
                    "region": ORIGIN}},
    })
    table = r.cdn_latency().set_index("region")
    req = r.measured_requests()
    assert set(table.index) == set(SERVED_BY)
    assert table["requests"].sum() == len(req)
    for client in SERVED_BY:
        mine = req[req["workload"].isin([client, "none"] if client == "us-east" else [client])]
        assert table.loc[client, "requests"] == len(mine), client
        assert table.loc[client, "latency_p95"] == pytest.approx(
            float(np.quantile(mine["latency"], 0.95))), client
    # sa-east users pay 120 ms of links on every request: their fastest is a hit
    assert table.loc["sa-east", "latency_p50"] >= expected_latency("sa-east", "hit") - 1e-12
    assert table.loc["eu-west", "latency_p50"] < expected_latency("sa-east", "hit")


def test_origin_timeout_covers_the_network_round_trip() -> None:
    """The origin call's timeout (50 ms) fires on eu-west's 80 ms round trip to the origin
    alone; us-east's and sa-east's fetches (via the us-east edge: 2 + 5 ms) make it."""
    req = latency_run(origin={"to": "web", "timeout": "50ms"}).requests
    miss = req[req["cache"] == "miss"]
    eu = miss[miss["workload"] == "eu-west"]
    assert (eu["status"] == "timeout").all() and len(eu) > 0
    assert np.allclose(eu["latency"], 2 * LOCAL + LATENCY["hit"] + 0.050)
    others = miss[miss["workload"] != "eu-west"]
    assert (others["status"] == "ok").all() and len(others) > 0


def test_origin_offload_is_what_the_origin_did_not_see() -> None:
    """Requests the origin served = edge fetches (coalesced misses share one) + bypassed."""
    r = run_cdn({
        "duration": 30, "drain": 5, "metrics": {"interval": 1},
        "workloads": {"w": users(300, "cdn", n=2000, s=1.0, region="ap-south")},
        "components": {"cdn": {"kind": "cdn", "edges": ["ap-south"], "origin": "web",
                               "capacity": 200, "ttl": 1, "coalesce": True},
                       "web": {"kind": "service", "workers": 100, "region": "us-east",
                               "service_time": {"dist": "exponential", "mean": "50ms"}}},
    })
    row = r.cdn_summary().set_index("edge").loc["all"]
    origin_spans = int((r.spans["component"] == "web").sum())
    assert row["origin_fetches"] == origin_spans
    assert row["requests"] == len(r.requests) == row["hits"] + row["misses"]
    assert row["coalesced"] > 0 and row["origin_fetches"] == row["misses"] - row["coalesced"]
    assert row["origin_offload"] == pytest.approx(1 - origin_spans / len(r.requests))
    # the workload's view agrees: every request is a hit or a miss at the edge
    assert (r.requests["cache"] != "").all()


def test_an_origin_shield_is_a_cache_between_the_edges_and_the_origin() -> None:
    """Two edges in front of a shield (a ``cache``) in front of the origin, long TTLs, request
    collapsing: each edge fetches each of the 5 assets once, and the origin serves each once
    (the shield answers the second edge). The shield sits with the origin, so an edge's fetch
    pays the link to the origin's region whether the shield has the asset or not."""
    r = run_cdn({
        "duration": 5, "drain": 1,
        "workloads": {"us": users(20, "cdn", n=5, region="us-east"),
                      "eu": users(20, "cdn", n=5, region="eu-west")},
        "components": {"cdn": {"kind": "cdn", "edges": ["us-east", "eu-west"], "origin": "shield",
                               "ttl": 60, "coalesce": True},
                       "shield": {"kind": "cache", "backing": "web", "policy": "ttl", "ttl": 60,
                                  "coalesce": True, "region": "us-east"},
                       "web": {"kind": "service", "service_time": "5ms", "workers": 10,
                               "region": "us-east"}},
    })
    req = r.requests
    assert req.groupby("workload", observed=True)["key"].nunique().eq(5).all()
    assert int((r.spans["component"] == "web").sum()) == 5
    rows = edge_rows(r)
    assert (rows["origin_fetches"] == 5).all()
    shield = r.cache_summary().set_index("name").loc["shield"]
    assert shield["reads"] == 10 and shield["loads"] == 5
    # eu-west's misses pay 2 ms to their edge and the 80 ms round trip to the shield (plus,
    # if the shield misses too, 2 ms to the origin and its 5 ms), except those coalesced
    # with a fetch already on its way, which wait less
    eu_miss = req.loc[(req["workload"] == "eu") & (req["cache"] == "miss"), "latency"]
    far = 2 * link("eu-west", "us-east")
    assert len(eu_miss) >= 5
    assert eu_miss.max() >= 2 * LOCAL + far - 1e-12
    assert eu_miss.max() <= 4 * LOCAL + far + 0.005 + 1e-12


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(capacity=st.one_of(st.none(), st.integers(1, 30)),
       ttl=st.floats(0.01, 5.0), coalesce=st.booleans(), crash_at=st.floats(0.5, 3.5),
       failover=st.sampled_from(["fail", "origin"]), bypass=st.booleans())
def test_every_request_is_accounted_for(capacity: int | None, ttl: float, coalesce: bool,
                                        crash_at: float, failover: str, bypass: bool) -> None:
    """Whatever the settings and crashes: routed = hits + misses + bypassed + failed on
    arrival, the origin sees fetches + bypassed, every request ends. The links are free, so
    that no request is on its way to an edge or the origin as the measured window (and the
    gauges' last sample) ends: the table counts at the edges."""
    free = {"names": ["us-east", "eu-west", "sa-east"], "latency": {
        "us-east": {"eu-west": 0, "sa-east": 0}, "eu-west": {"sa-east": 0}}}
    r = run({
        "duration": 5, "drain": 3, "metrics": {"interval": 1}, "regions": free,
        "workloads": {"w": {**users(80, "cdn", n=40, s=1.0),
                            "regions": {"us-east": 1, "eu-west": 1, "sa-east": 1}}},
        "components": {"cdn": {"kind": "cdn", "edges": ["us-east", "eu-west"], "origin": "web",
                               "capacity": capacity, "ttl": ttl, "coalesce": coalesce,
                               "hit_latency": "1ms", "on_edge_down": failover,
                               "bypass": bypass},
                       "web": {"kind": "service", "workers": 50, "region": "us-east",
                               "service_time": {"dist": "exponential", "mean": "20ms"}}},
        "faults": [{"at": crash_at, "duration": 1, "kind": "crash", "target": "cdn"}],
    })
    row = r.cdn_summary().set_index("edge").loc["all"]
    req = r.requests
    assert (req["status"] != "in_flight").all()
    assert row["requests"] == len(req)
    failed_on_arrival = int(((req["status"] == "error") & (req["cache"] == "")).sum())
    assert row["requests"] == row["hits"] + row["misses"] + row["bypassed"] + failed_on_arrival
    assert row["origin_fetches"] == int((r.spans["component"] == "web").sum())
    if failover == "origin" or bypass:
        assert failed_on_arrival == 0
    if bypass:
        assert row["bypassed"] == len(req)


# --------------------------------------------------------------------------------------------
# edge crashes


def crash_run(on_edge_down: str, fault: dict[str, Any] | None = None) -> simulator.Results:
    """us-east and eu-west users (20/s each, 5 assets), one edge each, the origin in us-east
    (5 ms); eu-west's edge is down from 4.03 s to 6.03 s."""
    return run_cdn({
        "duration": 10, "drain": 1,
        "workloads": {"us": users(20, "cdn", n=5, process="constant", region="us-east"),
                      "eu": users(20, "cdn", n=5, process="constant", region="eu-west")},
        "components": {"cdn": {"kind": "cdn", "edges": ["us-east", "eu-west"], "origin": "web",
                               "ttl": 60, "hit_latency": "10ms",
                               "on_edge_down": on_edge_down},
                       "web": {"kind": "service", "workers": 100, "service_time": "5ms",
                               "region": "us-east"}},
        "faults": [fault or {"at": 4.03, "duration": 2, "kind": "crash", "target": "cdn[1]"}],
    })


def test_a_crashed_edge_fails_its_regions_requests() -> None:
    req = crash_run("fail").requests
    during = req[(req["start"] > 4.03) & (req["start"] < 6.03)]
    eu, us = during[during["workload"] == "eu"], during[during["workload"] == "us"]
    assert len(eu) == 40 and (eu["status"] == "error").all()
    assert (us["status"] == "ok").all() and (us["cache"] == "hit").all()
    after = req[(req["start"] > 6.03) & (req["workload"] == "eu")].sort_values("start")
    first = after.drop_duplicates("key")  # recovered empty: each asset's first request misses
    assert (first["cache"] == "miss").all() and len(first) == 5


@pytest.mark.parametrize("fault", [
    None, {"at": 4.03, "duration": 2, "kind": "region_outage", "region": "eu-west"}],
    ids=["crash", "region-outage"])
def test_a_crashed_edge_sends_its_users_to_the_origin(fault: dict[str, Any] | None) -> None:
    """eu-west's users go straight to the origin: the link eu-west <-> us-east each way and
    the origin, nothing of the edge (a region outage crashes the edge placed there)."""
    r = crash_run("origin", fault)
    req = r.requests
    assert (req["status"] == "ok").all()
    during = req[(req["start"] > 4.03) & (req["start"] < 6.03) & (req["workload"] == "eu")]
    assert len(during) == 40 and (during["cache"] == "").all()
    assert np.allclose(during["latency"], 2 * link("eu-west", "us-east") + 0.005)
    hits = req[(req["workload"] == "eu") & (req["cache"] == "hit")]
    assert np.allclose(hits["latency"], 2 * LOCAL + 0.010)
    row = edge_rows(r).loc["eu-west"]
    assert row["bypassed"] == 40 and row["failed"] == 0


# --------------------------------------------------------------------------------------------
# the table, the CLI and the scenario


def test_summary_latency_by_edge_and_region() -> None:
    r = crash_run("origin")
    table = r.cdn_summary()
    assert list(table["edge"]) == ["cdn[0]", "cdn[1]", "all"]
    rows = table.set_index("edge")
    req = r.measured_requests()
    served = edge_of(r)
    lat = req.assign(edge=req["request_id"].map(served))
    for edge in ("cdn[0]", "cdn[1]"):
        mine = lat.loc[lat["edge"] == edge, "latency"].to_numpy()
        assert rows.loc[edge, "latency_p50"] == pytest.approx(float(np.quantile(mine, 0.5)))
        assert rows.loc[edge, "latency_p99"] == pytest.approx(float(np.quantile(mine, 0.99)))
    by_region = r.cdn_latency().set_index("region")
    assert by_region.loc["us-east", "requests"] == rows.loc["cdn[0]", "requests"]
    assert rows.loc["all", "requests"] == rows.loc["cdn[0]", "requests"] + rows.loc[
        "cdn[1]", "requests"]


def test_no_cdn_no_table() -> None:
    r = run({"duration": 1, "workloads": {"w": users(10, "web")},
             "components": {"web": {"kind": "service"}}})
    assert r.cdn_summary().empty and r.cdn_latency().empty


def test_a_cdn_needs_the_regions_of_its_edges() -> None:
    spec = {"duration": 1, "workloads": {"w": users(10, "cdn")},
            "components": {"cdn": {"kind": "cdn", "edges": ["us-east"], "origin": "web",
                                   "ttl": 1},
                           "web": {"kind": "service"}}}
    with pytest.raises(simulator.ScenarioError, match="no regions block"):
        simulator.parse_scenario(spec)
    with pytest.raises(simulator.ScenarioError, match=r"regions\.latency"):
        simulator.parse_scenario({**spec, "regions": {"names": ["us-east"]}, "components": {
            **spec["components"], "cdn": {**spec["components"]["cdn"],
                                          "origin_latency": "80ms"}}})


def test_run_prints_the_cdn_table(capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main

    assert main(["run", str(SCENARIO), "--set", "duration=12s", "--set", "warmup=4s"]) == 0
    out = capsys.readouterr().out
    assert "CDN edges" in out
    header = next(line for line in out.splitlines() if "origin_offload" in line)
    for column in ("hit_ratio", "origin_fetches", "latency_p50_ms", "latency_p99_ms"):
        assert column in header
    assert "CDN latency by client region" in out


def test_the_scenario_with_and_without_the_cdn() -> None:
    """Same requests: without the CDN the origin takes every request and each user pays the
    link to the origin's region each way; with it most requests are hits at the user's own
    edge (the scenario as written: a 30 s warm-up fills the edges past a 50% hit ratio)."""
    with_cdn = simulator.simulate(simulator.load_scenario(SCENARIO))
    without = simulator.simulate(simulator.load_scenario(
        SCENARIO, ["components.cdn.bypass=true"]))
    a = with_cdn.cdn_summary().set_index("edge").loc["all"]
    b = without.cdn_summary().set_index("edge").loc["all"]
    n = len(with_cdn.measured_requests())
    assert len(without.measured_requests()) == n > 0  # the same requests
    # the edges count a request as it arrives (with the CDN) or is sent to the origin
    # (without): they differ only by the few on their way (~6 at 1,000/s) as the window opens
    # and closes
    assert a["requests"] == pytest.approx(n, abs=60) and b["requests"] == pytest.approx(n, abs=60)
    assert a["hit_ratio"] > 0.5 and a["origin_offload"] > 0.5
    assert b["origin_offload"] == 0
    sc = with_cdn.scenario
    origin = sc.components["web"].region
    assert isinstance(origin, str)
    lat_a = with_cdn.cdn_latency().set_index("region")
    lat_b = without.cdn_latency().set_index("region")
    edges = {e.region for e in sc.components["cdn"].edges}  # type: ignore[attr-defined]
    for region in sc.regions.names:  # type: ignore[union-attr]
        if region == origin:
            continue
        rtt = 2 * sc.regions.mean(region, origin)  # type: ignore[union-attr]
        # without: every request crosses to the origin and back
        assert lat_b.loc[region, "latency_p50"] > rtt, region
        if region in edges:  # with: the median user is a hit at their own edge
            assert lat_a.loc[region, "latency_p50"] < rtt, region


@pytest.mark.parametrize("keep", [None, 5.0])
def test_stale_if_error_at_the_edge(keep: float | None) -> None:
    """An edge keeps expired assets for ``stale_if_error`` and serves them while the origin
    fails; the same run without it fails those requests."""
    from tests.test_resilience import _expected_stale_if_error

    cdn: dict[str, Any] = {"kind": "cdn", "edges": ["eu-west"], "origin": "web",
                           "capacity": 10, "ttl": 2.0}
    if keep is not None:
        cdn["stale_if_error"] = keep
    r = simulator.simulate(simulator.parse_scenario({
        "duration": 30, "drain": 5, "regions": {"names": ["eu-west"]},
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 1},
                            "keys": {"popularity": "uniform", "n": 1}, "target": "cdn"}},
        "components": {"cdn": cdn, "web": {"kind": "service", "service_time": 0.0}},
        "faults": [{"at": 3.5, "duration": 16, "kind": "error", "target": "web",
                    "probability": 1.0}],
    }), seed=1)
    req = r.requests.sort_values("start")
    expected = _expected_stale_if_error(req["start"].tolist(), 2.0, keep or 0.0, (3.5, 19.5))
    assert req["status"].astype(str).tolist() == expected
    assert ("fallback" in expected) == (keep is not None)
