"""The CDN component: edge hit ratios against TTL theory, origin offload, routing by region,
exact latencies with and without the CDN, edge crashes, the summary and the scenario.

Expected values come from ``tests/theory.py`` (TTL caches under Poisson requests: Jung,
Berger and Balakrishnan; Fofack et al.) or are derived by hand from the scenario (constant
latencies); never from earlier runs. The reference case ``TTL-zipf0.8-T1`` run through a CDN
edge, at the published horizon and tolerances, is marked slow.

Requests carry a region only once the scenario has regions; here a test-only kind
(``regional``) sets ``request.region`` and forwards, standing in for the client's region.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simpy import Timeout

import simulator
from simulator import registry
from simulator.analysis.cdn import cdn_latency
from simulator.components.base import BuildContext, Component, ComponentParams, Handler, Target
from simulator.messages import Request
from simulator.scenario import scenario_model
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
# a stand-in for the client's region


class RegionalParams(ComponentParams):
    """Sets ``request.region`` to ``region`` and forwards the request to ``to``, taking no
    time; with ``links`` (``"a->b": seconds``), calls the target through
    :class:`FakeNetwork` as a scenario with regions would."""

    kind: Literal["regional"] = "regional"
    region: str
    to: str
    links: dict[str, float] | None = None


class FakeNetwork:
    """The part of the regions network a CDN relies on: ``hop(handler, src, dst)`` wraps an
    instance's handler so that a call from ``src`` (None: the request's region) to ``dst``
    first waits the link's latency (0 within a region)."""

    def __init__(self, env: Any, links: dict[str, float]) -> None:
        self.env = env
        self.links = links
        self.crossed: list[tuple[str, str]] = []

    def hop(self, handle: Callable[[Request, str], Handler], src: str | None,
            dst: str) -> Callable[[Request, str], Handler]:
        def call(req: Request, op: str) -> Handler:
            a = src if src is not None else req.region
            assert a is not None
            self.crossed.append((a, dst))
            yield Timeout(self.env, self.links.get(f"{a}->{dst}", 0.0))
            return (yield from handle(req, op))

        return call


class Regional(Component):
    Params = RegionalParams
    kind: ClassVar[str] = "regional"

    def __init__(self, group: str, index: int, params: RegionalParams,
                 ctx: BuildContext) -> None:
        super().__init__(group, index, params, ctx)
        self._target: Target | None = None

    def wire(self, resolve: Callable[[str], Target]) -> None:
        target = resolve(self.params.to)
        if self.params.links is not None:
            self.network = FakeNetwork(self.env, self.params.links)
            target = target.from_region(None, self.network)  # type: ignore[attr-defined]
        self._target = target

    def handle(self, req: Request, op: str) -> Handler:
        assert self._target is not None
        req.region = self.params.region
        return (yield from self._target.handle(req, op))


@pytest.fixture
def regional_kind() -> Iterator[None]:
    """Register ``kind: regional`` for one test."""
    registry.kinds()
    registry._KINDS["regional"] = Regional
    scenario_model.cache_clear()
    try:
        yield
    finally:
        del registry._KINDS["regional"]
        scenario_model.cache_clear()


def users(rate: float, target: str, n: int = 500, s: float = 0.8,
          process: str = "poisson") -> dict[str, Any]:
    return {"arrivals": {"process": process, "rate": rate},
            "keys": {"popularity": "zipf", "n": n, "s": s}, "target": target}


def regions(names: list[str]) -> dict[str, Any]:
    """One ``regional`` front per region, forwarding to ``cdn``."""
    return {f"from-{r}": {"kind": "regional", "region": r, "to": "cdn"} for r in names}


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
def test_each_edge_hit_ratio_matches_the_ttl_formula(regional_kind: None, mode: str,
                                                     formula: Any) -> None:
    """Two edges, each with its own users' Poisson rate over Zipf(0.8) of 500 assets, TTL
    0.5 s: each edge's hit ratio is sum_i p_i h(lambda_i) with its own lambda_i = rate p_i,
    and its mean occupancy sum_i h_i (PASTA). 600 s, 135k requests; tolerance: four binomial
    standard errors of each edge's ratio (3.7% for the quieter edge)."""
    rates = {"us-east": 150.0, "eu-west": 75.0}
    r = run({
        "duration": 600, "warmup": 60, "metrics": {"spans": False, "interval": 60},
        "workloads": {f"w-{reg}": users(rate, f"from-{reg}") for reg, rate in rates.items()},
        "components": {**regions(list(rates)),
                       "cdn": {"kind": "cdn", "edges": list(rates), "origin": "web",
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
    r = run({
        "duration": 600, "warmup": 60, "metrics": {"spans": False, "interval": 60},
        "workloads": {"w": users(rate, "cdn", n, s)},
        "components": {"cdn": {"kind": "cdn", "edges": ["here"], "origin": "web", "ttl": 1.0,
                               "assets": [{"name": "shell", "keys": [0, 9], "ttl": 5},
                                          {"name": "api", "keys": [10, 99], "ttl": "100ms"}]},
                       "web": {"kind": "service", "workers": 100}},
    })
    p = th.zipf_probs(n, s)
    ttl = np.ones(n)
    ttl[:10], ttl[10:100] = 5.0, 0.1
    h = rate * p * ttl / (1.0 + rate * p * ttl)  # th.ttl_nonreset_hit_ratio, key by key
    assert np.allclose(h[:10], th.ttl_nonreset_hit_ratio(rate * p[:10], 5.0))
    row = edge_rows(r).loc["here"]
    assert row["hit_ratio"] == pytest.approx(float(np.dot(p, h)), rel=0.02)
    assert row["mean_entries"] == pytest.approx(float(h.sum()), rel=0.02)
    # and the classes differ as their TTLs do: per key, from the requests table
    req = r.measured_requests()
    for key in (0, 10):
        mine = req[req["key"] == key]
        sd = np.sqrt(h[key] * (1 - h[key]) / len(mine))  # binomial
        assert (mine["cache"] == "hit").mean() == pytest.approx(float(h[key]), abs=4 * sd), key


class CdnTTLCase(TTLCase):
    """A reference TTL case with a one-edge CDN in place of the cache.

    The component is named ``cache`` so that the case's own measurement (the gauges
    ``hits_total``, ``misses_total`` and ``entries_time_total`` of ``cache``) reads the edge.
    """

    def scenario(self) -> simulator.Scenario:
        sc = super().scenario()
        data = sc.model_dump(mode="json")
        cache = data["components"]["cache"]
        data["components"]["cache"] = {"kind": "cdn", "edges": ["edge"], "origin": "store",
                                       "ttl": cache["ttl"], "ttl_mode": cache["ttl_mode"]}
        return simulator.parse_scenario(data)


@pytest.mark.slow
@pytest.mark.parametrize("case", REFERENCE_TTL_CASES, ids=lambda c: c.id)
def test_reference_ttl_case_through_a_cdn_edge(case: TTLCase) -> None:
    """TTL-zipf0.8-T1 as published (11000 s at 100/s, 10% warm-up, 5 seeds, its caps)."""
    cdn_case = CdnTTLCase(f"CDN-{case.id}", case.mode, case.n, case.s, case.rate, case.ttl,
                          case.horizon, case.caps)
    assert cdn_case.scenario().components["cache"].kind == "cdn"
    est = run_seeds(cdn_case)
    vs.assert_matches_theory(cdn_case.id, est, cdn_case.expected, cdn_case.caps)


# --------------------------------------------------------------------------------------------
# routing, latency, offload


def test_requests_go_to_the_edge_of_their_region(regional_kind: None) -> None:
    r = run({
        "duration": 5,
        "workloads": {"us": users(20, "from-us-east"), "eu": users(20, "from-eu-west"),
                      "sa": users(20, "from-sa-east"),  # no edge there: default
                      "none": users(20, "cdn")},          # no region: default
        "components": {**regions(["us-east", "eu-west", "sa-east"]),
                       "cdn": {"kind": "cdn", "edges": ["us-east", "eu-west", "ap-south"],
                               "default_edge": "eu-west", "origin": "web", "ttl": 60},
                       "web": {"kind": "service"}},
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
    r = run({"duration": 2, "workloads": {"w": users(20, "cdn")},
             "components": {"cdn": {"kind": "cdn", "edges": ["a", "b"], "origin": "web",
                                    "ttl": 1},
                            "web": {"kind": "service"}}})
    assert set(edge_of(r).values()) == {"cdn[0]"}


def test_users_pay_the_link_to_the_edge_that_serves_them(regional_kind: None) -> None:
    """The regions contract: a call to the CDN asks it for its view from the caller's region
    (``from_region``), and each edge is reached over ``network.hop`` to its own region. Users
    in sa-east have no edge and go to the default (eu-west), paying that link; eu-west users
    pay nothing."""
    links = {"sa-east->eu-west": 0.120, "eu-west->eu-west": 0.0}
    front = {f"from-{r}": {"kind": "regional", "region": r, "to": "cdn", "links": links}
             for r in ("eu-west", "sa-east")}
    r = run({
        "duration": 5, "drain": 1,
        "workloads": {"eu": users(20, "from-eu-west", n=5), "sa": users(20, "from-sa-east", n=5)},
        "components": {**front,
                       "cdn": {"kind": "cdn", "edges": ["us-east", "eu-west"],
                               "default_edge": "eu-west", "origin": "web", "ttl": 60,
                               "hit_latency": "10ms"},
                       "web": {"kind": "service", "service_time": "5ms", "workers": 100}},
    })
    req = r.requests
    hits = req[req["cache"] == "hit"]
    sa, eu = hits[hits["workload"] == "sa"], hits[hits["workload"] == "eu"]
    assert len(sa) > 20 and len(eu) > 20
    assert np.allclose(eu["latency"], 0.010)
    assert np.allclose(sa["latency"], 0.120 + 0.010)
    assert set(edge_of(r).values()) == {"cdn[1]"}


def test_latency_by_client_region_uses_the_requests_region_column(regional_kind: None
                                                                  ) -> None:
    """With a ``region`` column (scenarios with regions), latency is grouped by the client's
    region, and requests without one by their edge's."""
    r = crash_run("origin")
    req = r.requests.copy()
    clients = {"us": "us-east", "eu": "sa-east"}  # as if eu's users were in sa-east
    req["region"] = [clients[str(w)] for w in req["workload"]]
    blank = req.index[req["workload"] == "eu"][:10]
    req.loc[blank, "region"] = ""
    table = cdn_latency(r.events, req, r.spans, *r.window).set_index("region")
    measured = req[(req["start"] >= r.window[0]) & (req["start"] < r.window[1])]
    sa = measured[(measured["region"] == "sa-east")]
    assert table.loc["sa-east", "requests"] == len(sa)
    assert table.loc["sa-east", "latency_p95"] == pytest.approx(
        float(np.quantile(sa["latency"], 0.95)))
    assert table.loc["eu-west", "requests"] == 10  # no region: their edge's
    assert set(table.index) == {"us-east", "sa-east", "eu-west"}
    assert table["requests"].sum() == len(measured)


LATENCY = {"hit": 0.010, "us-east": 0.002, "eu-west": 0.080, "origin": 0.005}


def latency_run(bypass: bool = False, **extra: Any) -> simulator.Results:
    return run({
        "duration": 20, "drain": 1,
        "workloads": {"w": users(100, "cdn", n=50)},
        "components": {
            "cdn": {"kind": "cdn", "origin": "web", "ttl": 2, "bypass": bypass,
                    "edges": ["us-east", {"region": "eu-west",
                                          "origin_latency": LATENCY["eu-west"]}],
                    "origin_latency": LATENCY["us-east"], "default_edge": "eu-west",
                    "hit_latency": LATENCY["hit"], **extra},
            "web": {"kind": "service", "workers": 1000, "service_time": LATENCY["origin"]}},
    })


def test_latency_of_a_hit_a_miss_and_without_the_cdn() -> None:
    """Constant latencies: a hit takes hit_latency; a miss adds the edge's own origin round
    trip and the origin's time; without the CDN a request takes that round trip and the
    origin's time."""
    req = latency_run().requests
    assert (req["status"] == "ok").all()
    hit, miss = req[req["cache"] == "hit"], req[req["cache"] == "miss"]
    assert len(hit) > 100 and len(miss) > 100
    assert np.allclose(hit["latency"], LATENCY["hit"])
    assert np.allclose(miss["latency"], LATENCY["hit"] + LATENCY["eu-west"] + LATENCY["origin"])
    direct = latency_run(bypass=True)
    d = direct.requests
    assert (d["cache"] == "").all() and (d["status"] == "ok").all()
    assert np.allclose(d["latency"], LATENCY["eu-west"] + LATENCY["origin"])
    row = edge_rows(direct).loc["eu-west"]
    assert row["origin_offload"] == 0 and row["bypassed"] == row["requests"] > 0


def test_origin_timeout_covers_the_network_round_trip() -> None:
    """The origin call's timeout (50 ms) fires on the 80 ms round trip of eu-west alone."""
    req = latency_run(origin={"to": "web", "timeout": "50ms"}).requests
    miss = req[req["cache"] == "miss"]
    assert (miss["status"] == "timeout").all() and len(miss) > 0
    assert np.allclose(miss["latency"], LATENCY["hit"] + 0.050)


def test_origin_offload_is_what_the_origin_did_not_see() -> None:
    """Requests the origin served = edge fetches (coalesced misses share one) + bypassed."""
    r = run({
        "duration": 30, "drain": 5, "metrics": {"interval": 1},
        "workloads": {"w": users(300, "cdn", n=2000, s=1.0)},
        "components": {"cdn": {"kind": "cdn", "edges": ["a"], "origin": "web",
                               "capacity": 200, "ttl": 1, "coalesce": True},
                       "web": {"kind": "service", "workers": 100,
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


def test_an_origin_shield_is_a_cache_between_the_edges_and_the_origin(regional_kind: None
                                                                       ) -> None:
    """Two edges in front of a shield (a ``cache``) in front of the origin, long TTLs, request
    collapsing: each edge fetches each of the 5 assets once, and the origin serves each once
    (the shield answers the second edge)."""
    r = run({
        "duration": 5, "drain": 1,
        "workloads": {"us": users(20, "from-us-east", n=5), "eu": users(20, "from-eu-west", n=5)},
        "components": {**regions(["us-east", "eu-west"]),
                       "cdn": {"kind": "cdn", "edges": ["us-east", "eu-west"], "origin": "shield",
                               "ttl": 60, "coalesce": True},
                       "shield": {"kind": "cache", "backing": "web", "policy": "ttl", "ttl": 60,
                                  "coalesce": True},
                       "web": {"kind": "service", "service_time": "5ms", "workers": 10}},
    })
    req = r.requests
    assert req.groupby("workload", observed=True)["key"].nunique().eq(5).all()
    assert int((r.spans["component"] == "web").sum()) == 5
    rows = edge_rows(r)
    assert (rows["origin_fetches"] == 5).all()
    shield = r.cache_summary().set_index("name").loc["shield"]
    assert shield["reads"] == 10 and shield["loads"] == 5


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(capacity=st.one_of(st.none(), st.integers(1, 30)),
       ttl=st.floats(0.01, 5.0), coalesce=st.booleans(), crash_at=st.floats(0.5, 3.5),
       failover=st.sampled_from(["fail", "origin"]))
def test_every_request_is_accounted_for(capacity: int | None, ttl: float, coalesce: bool,
                                        crash_at: float, failover: str) -> None:
    """Whatever the settings and crashes: routed = hits + misses + bypassed + failed on
    arrival, the origin sees fetches + bypassed, every request ends."""
    r = run({
        "duration": 5, "drain": 3, "metrics": {"interval": 1},
        "workloads": {"w": users(80, "cdn", n=40, s=1.0)},
        "components": {"cdn": {"kind": "cdn", "edges": ["a", "b"], "origin": "web",
                               "capacity": capacity, "ttl": ttl, "coalesce": coalesce,
                               "hit_latency": "1ms", "on_edge_down": failover},
                       "web": {"kind": "service", "workers": 50,
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
    if failover == "origin":
        assert failed_on_arrival == 0


# --------------------------------------------------------------------------------------------
# edge crashes


def crash_run(on_edge_down: str) -> simulator.Results:
    return run({
        "duration": 10, "drain": 1,
        "workloads": {"us": users(20, "from-us-east", n=5, process="constant"),
                      "eu": users(20, "from-eu-west", n=5, process="constant")},
        "components": {**regions(["us-east", "eu-west"]),
                       "cdn": {"kind": "cdn", "edges": ["us-east", "eu-west"], "origin": "web",
                               "ttl": 60, "hit_latency": "10ms", "origin_latency": "30ms",
                               "on_edge_down": on_edge_down},
                       "web": {"kind": "service", "workers": 100, "service_time": "5ms"}},
        "faults": [{"at": 4.03, "duration": 2, "kind": "crash", "target": "cdn[1]"}],
    })


def test_a_crashed_edge_fails_its_regions_requests(regional_kind: None) -> None:
    req = crash_run("fail").requests
    during = req[(req["start"] > 4.03) & (req["start"] < 6.03)]
    eu, us = during[during["workload"] == "eu"], during[during["workload"] == "us"]
    assert len(eu) == 40 and (eu["status"] == "error").all()
    assert (us["status"] == "ok").all() and (us["cache"] == "hit").all()
    after = req[(req["start"] > 6.03) & (req["workload"] == "eu")].sort_values("start")
    first = after.drop_duplicates("key")  # recovered empty: each asset's first request misses
    assert (first["cache"] == "miss").all() and len(first) == 5


def test_a_crashed_edge_sends_its_users_to_the_origin(regional_kind: None) -> None:
    r = crash_run("origin")
    req = r.requests
    assert (req["status"] == "ok").all()
    during = req[(req["start"] > 4.03) & (req["start"] < 6.03) & (req["workload"] == "eu")]
    assert len(during) == 40 and (during["cache"] == "").all()
    assert np.allclose(during["latency"], 0.030 + 0.005)  # user -> origin and the origin
    row = edge_rows(r).loc["eu-west"]
    assert row["bypassed"] == 40 and row["failed"] == 0


# --------------------------------------------------------------------------------------------
# the table, the CLI and the scenario


def test_summary_latency_by_edge_and_region(regional_kind: None) -> None:
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


def test_run_prints_the_cdn_table(capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main

    assert main(["run", str(SCENARIO), "--set", "duration=12s", "--set", "warmup=4s"]) == 0
    out = capsys.readouterr().out
    assert "CDN edges" in out
    header = next(line for line in out.splitlines() if "origin_offload" in line)
    for column in ("hit_ratio", "origin_fetches", "latency_p50_ms", "latency_p99_ms"):
        assert column in header


def test_the_scenario_with_and_without_the_cdn() -> None:
    """Same requests: without the CDN the origin takes every request and the median user
    pays the edge's round trip to the origin; with it most requests are hits."""
    short = ["duration=20s", "warmup=5s"]
    with_cdn = simulator.simulate(simulator.load_scenario(SCENARIO, short))
    without = simulator.simulate(simulator.load_scenario(
        SCENARIO, [*short, "components.cdn.bypass=true"]))
    a = with_cdn.cdn_summary().set_index("edge").loc["all"]
    b = without.cdn_summary().set_index("edge").loc["all"]
    assert a["requests"] == b["requests"] > 0
    assert a["hit_ratio"] > 0.5 and a["origin_offload"] > 0.5
    assert b["origin_offload"] == 0
    sc = with_cdn.scenario.components["cdn"]
    rtt = sc.edges[1].origin_latency.mean  # type: ignore[attr-defined]
    assert b["latency_p50"] > rtt > a["latency_p50"]


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
        "duration": 30, "drain": 5,
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
