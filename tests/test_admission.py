"""A service's ``admission`` block: load shedding and adaptive concurrency limits.

The limit algorithms are checked sample by sample against trajectories worked out by hand
from the formulas of Netflix's concurrency-limits (AIMD, Vegas, Gradient2) and Envoy's
gradient controller; the service's use of them with constant arrivals and service times,
where which request is refused follows by hand.
"""

from __future__ import annotations

from typing import Any

import pytest

import simulator
from simulator.components.service.admission import (
    AdaptiveConcurrency,
    AimdLimit,
    Gradient2Limit,
    VegasLimit,
)
from simulator.components.service.limiter import Aimd, EnvoyGradient, Gradient2, Vegas


def scenario(admission: dict[str, Any] | None, *, rate: float = 100.0, service_time: Any = 0.037,
             workers: int = 1, duration: float = 0.305, process: str = "constant",
             workloads: dict[str, Any] | None = None, **extra: Any) -> simulator.Scenario:
    api: dict[str, Any] = {"kind": "service", "workers": workers, "service_time": service_time,
                           **extra}
    if admission is not None:
        api["admission"] = admission
    return simulator.parse_scenario({
        "duration": duration, "warmup": 0, "drain": 5,
        "workloads": workloads or {"w": {"arrivals": {"process": process, "rate": rate},
                                         "target": "api"}},
        "components": {"api": api},
    })


def rejected_ids(r: simulator.Results) -> list[int]:
    req = r.requests
    return [int(i) for i in req.index[req["status"] == "rejected"]]


# ---- the algorithms, sample by sample ----------------------------------------------------------

def test_aimd_adds_while_busy_and_multiplies_down_on_drops() -> None:
    a = Aimd(AimdLimit(initial_limit=10, min_limit=5, max_limit=12, backoff_ratio=0.9,
                       timeout=1.0))
    steps = [((0.1, 5, False), 11),   # 2 x 5 >= 10: +1
             ((0.1, 6, False), 12),
             ((0.1, 6, False), 12),   # capped at max_limit
             ((0.1, 2, False), 12),   # 2 x 2 < 12: application-limited, unchanged
             ((2.0, 6, False), 10),   # rtt above timeout: int(12 x 0.9)
             ((0.1, 6, True), 9),     # a drop: int(10 x 0.9)
             ((0.1, 6, True), 8), ((0.1, 6, True), 7), ((0.1, 6, True), 6),
             ((0.1, 6, True), 5),
             ((0.1, 6, True), 5)]     # int(4.5) = 4, floored at min_limit
    for (rtt, in_flight, dropped), want in steps:
        a.sample(0.0, rtt, in_flight, dropped)
        assert a.limit == want


def test_vegas_follows_the_estimated_queue() -> None:
    v = Vegas(VegasLimit(initial_limit=10, probe_multiplier=1000), lambda: 0.0)
    # log10(limit) is 1 for limits under 100: threshold 1, alpha 3, beta 6
    steps = [((0.1, 10, False), 10),   # first sample: the no-load RTT
             ((0.1, 10, False), 16),   # queue ceil(10 x 0) = 0 <= 1: + beta
             ((0.2, 16, False), 15),   # queue ceil(16 x 0.5) = 8 > 6: - log10
             ((0.2, 2, False), 15),    # 2 x 2 < 15: application-limited
             ((0.11, 15, True), 14),   # a drop: - log10
             ((0.12, 14, False), 14),  # queue ceil(14 x 1/6) = 3: between alpha and beta
             ((0.105, 14, False), 20)]  # queue ceil(14 x 0.0476) = 1 <= 1: + beta
    for (rtt, in_flight, dropped), want in steps:
        v.sample(0.0, rtt, in_flight, dropped)
        assert v.limit == want


def test_gradient2_blends_the_gradient_limit() -> None:
    g = Gradient2(Gradient2Limit(initial_limit=20, min_limit=1, max_limit=100))
    g.sample(0.0, 0.1, 20, False)  # long 0.1, gradient 1: 0.8 x 20 + 0.2 x 24 = 20.8
    assert g.estimate == pytest.approx(20.8) and g.limit == 20
    g.sample(0.0, 0.2, 20, False)  # long 0.15, gradient 0.75: 0.8 x 20.8 + 0.2 x 19.6
    assert g.estimate == pytest.approx(20.56) and g.limit == 20
    g.sample(0.0, 0.05, 5, False)  # long 0.35/3 over twice short: cut by 10%; app-limited
    assert g.long_rtt == pytest.approx(0.35 / 3 * 0.9)
    assert g.estimate == pytest.approx(20.56)


def test_envoy_gradient_measures_min_rtt_then_updates_per_window() -> None:
    spec = AdaptiveConcurrency(concurrency_update_interval=1.0, min_rtt_calc={
        "interval": 100.0, "request_count": 2, "jitter": 0.0, "min_concurrency": 3,
        "buffer": 0.25})
    e = EnvoyGradient(spec, lambda: 0.0)
    changes: list[tuple[float, int]] = []
    e.changed = lambda t: changes.append((t, e.limit))
    assert e.limit == 3 and e.measuring
    e.sample(0.5, 0.1, 1, False)
    e.sample(0.6, 0.1, 1, False)  # minRTT = 0.1; next update at 1.6
    assert not e.measuring and e.min_rtt == 0.1 and e.next_update == pytest.approx(1.6)
    e.sample(1.0, 0.1, 1, False)
    e.sample(1.2, 0.1, 1, False)
    e.advance(1.7)  # gradient 0.125 / 0.1 = 1.25: int(3.75 + sqrt(3.75)) = 5, at 1.6
    assert e.limit == 5 and changes == [(pytest.approx(1.6), 5)]
    e.sample(2.0, 0.25, 1, False)
    e.advance(2.6)  # gradient 0.125 / 0.25 = 0.5: int(2.5 + sqrt(2.5)) = 4
    assert e.limit == 4
    e.advance(3.6)  # nothing answered in the window: no change
    assert e.limit == 4 and len(changes) == 2
    e.advance(100.6)  # minRTT measured again 100 s after the last measurement ended
    assert e.measuring and e.limit == 3 and e.deferred == 4


def test_envoy_gradient_remeasures_after_five_updates_at_the_minimum() -> None:
    spec = AdaptiveConcurrency(concurrency_update_interval=1.0, min_rtt_calc={
        "interval": 1000.0, "request_count": 1, "jitter": 0.0, "min_concurrency": 3})
    e = EnvoyGradient(spec, lambda: 0.0)
    e.sample(0.0, 0.1, 1, False)
    for k in range(5):  # latencies 10x minRTT: gradient 0.5, int(1.5 + 1.22) = 2 -> floor 3
        assert not e.measuring
        e.sample(k + 0.5, 1.0, 1, False)
        e.advance(k + 1.0)
        assert e.limit == 3
    assert e.measuring


def test_aimd_increase_is_the_additive_step() -> None:
    a = Aimd(AimdLimit(initial_limit=20, increase=3))
    a.sample(0.0, 0.1, 10, False)
    assert a.limit == 23


def test_vegas_explicit_alpha_beta_and_smoothing() -> None:
    v = Vegas(VegasLimit(initial_limit=10, alpha=2, beta=4, smoothing=0.5,
                         probe_multiplier=1000), lambda: 0.0)
    v.sample(0.0, 0.1, 10, False)  # the no-load RTT
    v.sample(0.0, 0.1, 10, False)  # queue 0: + beta = 14, blended half-way: 12
    assert v.estimate == 12 and v.limit == 12
    v.sample(0.0, 0.2, 12, False)  # queue ceil(12 x 0.5) = 6 > beta 4: 11, blended: 11.5
    assert v.estimate == 11.5 and v.limit == 11


def test_vegas_probes_the_no_load_rtt_every_probe_multiplier_x_limit_samples() -> None:
    # jitter 0.5 (the draw is 0): a probe once 0.5 x 1 x 10 <= samples counted, the 5th
    v = Vegas(VegasLimit(initial_limit=10, probe_multiplier=1), lambda: 0.0)
    for rtt in (0.1, 0.2, 0.2, 0.2):
        v.sample(0.0, rtt, 1, False)  # one in flight: application-limited, no change
    assert v.rtt_noload == 0.1
    v.sample(0.0, 0.3, 1, False)
    assert v.rtt_noload == 0.3 and v.probe_count == 0 and v.limit == 10


@pytest.mark.parametrize(("long_window", "want"),
                         [(1, 20.0), (600, 20 * (0.1 + 0.1 * 2 / 601) / 0.2)])
def test_gradient2_long_window_and_queue_size(long_window: int, want: float) -> None:
    # ten warm-up samples of 100 ms (plain mean), then one of 200 ms: the long RTT moves by
    # 2 / (long_window + 1) of the difference; smoothing 1 and queue_size 0 make the new
    # limit gradient x limit exactly (long_window 1: long = short, gradient 1)
    g = Gradient2(Gradient2Limit(initial_limit=20, min_limit=1, smoothing=1.0, queue_size=0,
                                 long_window=long_window))
    for _ in range(10):
        g.sample(0.0, 0.1, 20, False)
    assert g.estimate == pytest.approx(20.0)
    g.sample(0.0, 0.2, 20, False)
    factor = 2 / (long_window + 1)
    assert g.long_rtt == pytest.approx(0.1 * (1 - factor) + 0.2 * factor)
    assert g.estimate == pytest.approx(20 * min(1.0, max(0.5, g.long_rtt / 0.2)))
    assert g.estimate == pytest.approx(want, rel=1e-3)


def test_envoy_percentile_jitter_and_max_limit() -> None:
    spec = AdaptiveConcurrency(concurrency_update_interval=1.0, max_concurrency_limit=4,
                               sample_aggregate_percentile=90, min_rtt_calc={
                                   "interval": 100.0, "request_count": 4, "jitter": 0.5})
    e = EnvoyGradient(spec, lambda: 0.5)
    for rtt in (0.3, 0.1, 0.4, 0.2):
        e.sample(10.0, rtt, 1, False)
    assert e.min_rtt == 0.4  # nearest rank: the ceil(0.9 x 4) = 4th smallest
    assert e.next_min_rtt == pytest.approx(10 + 100 * (1 + 0.5 * 0.5))
    e.sample(10.5, 0.1, 1, False)
    e.advance(11.0)  # gradient 2: int(6 + sqrt(6)) = 8, capped at 4
    assert e.limit == 4


# ---- the service: which arrivals are refused ---------------------------------------------------

def test_shedding_by_queue_time_refuses_exactly_the_arrivals_behind_an_old_head() -> None:
    # one worker, 37 ms per request, an arrival every 10 ms (from 10 ms), max_queue_time
    # 25 ms: request k is refused when the oldest waiting request has waited over 25 ms.
    # By hand: r0 served at once; r1..r4 join (oldest age 0..20 ms); r5 finds r2 (joined at
    # 30 ms) 30 ms old, and so on until r4 starts at 158 ms and the queue is empty; r15..r17
    # join, r18 finds r15 30 ms old; r26..r28 join after r17 starts at 269 ms; r29 is refused.
    r = simulator.simulate(scenario({"policy": "shed", "max_queue_time": "25ms"}))
    assert len(r.requests) == 30
    assert rejected_ids(r) == [*range(5, 15), *range(18, 26), 29]
    assert set(r.requests["status"]) <= {"ok", "rejected"}


@pytest.mark.parametrize(("priority", "shed"), [(0, []), (1, [*range(5, 15), *range(18, 26), 29]),
                                              (7, [*range(5, 15), *range(18, 26), 29])])
def test_queue_time_thresholds_by_class(priority: int, shed: list[int]) -> None:
    # the run above, with max_queue_time [1s, 25ms]: class 0 waits up to 1 s (none of these
    # waits), class 1 and every class past the list's end are shed as above
    r = simulator.simulate(scenario(
        {"policy": "shed", "max_queue_time": ["1s", "25ms"]}, workloads={
            "w": {"arrivals": {"process": "constant", "rate": 100}, "target": "api",
                  "priority": priority}}))
    assert rejected_ids(r) == shed


def test_shedding_by_utilization_drops_the_least_important_class_first() -> None:
    # one worker, 15 ms per request; class 0 and class 1 at 50/s each (offered 150%);
    # max_utilization [1.0, 0.5] by class, windows of 1 s: the first window sheds nothing and
    # is busy throughout (1.0 > 0.5), after which class 0 alone keeps it at least 75% busy,
    # so every class-1 arrival from 1 s on is shed and no class-0 one ever is.
    arrivals = {"process": "constant", "rate": 50}
    r = simulator.simulate(scenario(
        {"policy": "shed", "max_utilization": [1.0, 0.5], "window": "1s"}, service_time=0.015,
        duration=4.0, workloads={
            "gold": {"arrivals": arrivals, "target": "api", "priority": 0},
            "bulk": {"arrivals": arrivals, "target": "api", "priority": 1}}))
    req = r.requests
    gold, bulk = req[req["workload"] == "gold"], req[req["workload"] == "bulk"]
    assert (gold["status"] == "ok").all()
    assert ((bulk["status"] == "rejected") == (bulk["start"] >= 1.0)).all()
    assert (bulk["start"] >= 1.0).sum() > 100


def test_a_fixed_limit_refuses_every_third_arrival() -> None:
    # limit 2 (min = max = initial), 4 workers, 25 ms each, an arrival every 10 ms: arrival k
    # finds k-1 and k-2 in flight (k-3 left 5 ms earlier) exactly when both were admitted,
    # so the pattern admit, admit, refuse repeats.
    r = simulator.simulate(scenario(
        {"policy": "aimd", "initial_limit": 2, "min_limit": 2, "max_limit": 2},
        service_time=0.025, workers=4, duration=1.0))
    n = len(r.requests)
    assert n >= 99  # one every 10 ms from 10 ms, over 1 s
    assert rejected_ids(r) == list(range(2, n, 3))
    limits = r.tables["concurrency_limits"]
    assert list(limits["limit"]) == [2]  # the value at time 0, never changed


def test_aimd_limit_trajectory_with_constant_service() -> None:
    # one worker, 10 ms per request, an arrival every 20 ms: each answer takes 10 ms with one
    # in flight. initial 1: 2 x 1 >= 1 -> 2, 2 x 1 >= 2 -> 3, then 2 x 1 < 3: stays at 3.
    r = simulator.simulate(scenario(
        {"policy": "aimd", "initial_limit": 1, "min_limit": 1, "max_limit": 10},
        rate=50, service_time=0.010, duration=1.0))
    t = r.tables["concurrency_limits"]
    assert list(t["limit"]) == [1, 2, 3]
    assert list(t["time"]) == pytest.approx([0.0, 0.03, 0.05])  # the first two answers
    assert list(t["instance"]) == ["api"] * 3 and list(t["in_flight"]) == [0, 0, 0]
    # a timeout below the service time makes every answer a drop: 3 -> 2 -> 1, floored at 1
    r = simulator.simulate(scenario(
        {"policy": "aimd", "initial_limit": 3, "min_limit": 1, "max_limit": 10,
         "timeout": "5ms"}, rate=50, service_time=0.010, duration=1.0))
    assert list(r.tables["concurrency_limits"]["limit"]) == [3, 2, 1]
    assert (r.requests["status"] == "ok").all()  # one in flight at a time: never refused


POLICIES = [
    {"policy": "shed", "max_queue_time": "30ms"},
    {"policy": "shed", "max_utilization": [0.95, 0.8], "window": "500ms"},
    {"policy": "aimd", "initial_limit": 4, "min_limit": 1, "timeout": "80ms"},
    {"policy": "vegas", "initial_limit": 4},
    {"policy": "gradient2", "initial_limit": 4, "min_limit": 2},
    {"policy": "adaptive_concurrency", "min_rtt_calc": {"request_count": 20, "interval": "5s"}},
]


@pytest.mark.parametrize("admission", POLICIES, ids=lambda a: a["policy"])
def test_every_request_ends_once_and_every_refusal_is_counted(admission: dict[str, Any]) -> None:
    # Poisson overload (150% of two workers) with a client timeout: every request reaches one
    # final status, the api's span of it says the same, and the refusals are its shed_total.
    s = scenario(admission, rate=300, process="poisson", workers=2,
                 service_time={"dist": "exponential", "mean": "10ms"}, duration=10.0)
    r = simulator.simulate(s)
    req, spans = r.requests, r.tables["spans"]
    assert len(req) > 2500
    assert "in_flight" not in set(req["status"])
    assert spans["request_id"].is_unique and len(spans) == len(req)
    assert (spans.set_index("request_id")["status"].loc[req.index].astype(str).to_numpy()
            == req["status"].astype(str).to_numpy()).all()
    samples = r.samples
    shed = samples[samples["metric"] == "shed_total"]["value"].iloc[-1]
    assert shed == (req["status"] == "rejected").sum() > 0
    limits = r.tables["concurrency_limits"]
    if admission["policy"] != "shed":
        assert (limits["limit"] >= 1).all() and limits["time"].is_monotonic_increasing
        # a lowered limit evicts nobody, but admission never exceeds the highest limit so far
        assert (limits["in_flight"] <= limits["limit"].cummax()).all()
    else:
        assert limits.empty


def test_without_admission_nothing_changes() -> None:
    r = simulator.simulate(scenario(None))
    assert r.tables["concurrency_limits"].empty
    assert not {"shed_total", "concurrency_limit", "in_flight"} & set(r.samples["metric"])


@pytest.mark.parametrize(("admission", "message"), [
    ({"policy": "aimd", "initial_limit": 2, "min_limit": 5}, "initial_limit (2) must be"),
    ({"policy": "aimd", "backoff_ratio": 1.0}, "backoff_ratio"),
    ({"policy": "shed"}, "needs max_queue_time or max_utilization"),
    ({"policy": "shed", "max_utilization": [0.5, 0.9]}, "must not increase"),
    ({"policy": "shed", "max_utilization": 1.5}, "max_utilization must be in (0, 1]"),
    ({"policy": "vegas", "alpha": 7, "beta": 3}, "alpha (7) must not exceed beta (3)"),
    ({"policy": "token_bucket"}, "policy"),
    ({"policy": "shed", "max_queue_time": 0.1, "window": 2}, "window is ignored without"),
])
def test_bad_admission_parameters_are_located(admission: dict[str, Any], message: str) -> None:
    with pytest.raises(simulator.ScenarioError) as err:
        scenario(admission)
    text = str(err.value)
    assert "components.api.admission" in text and message in text, text


def test_queue_time_shedding_is_refused_under_processor_sharing() -> None:
    with pytest.raises(simulator.ScenarioError, match="nothing waits under processor sharing"):
        scenario({"policy": "shed", "max_queue_time": "10ms"},
                 queue={"discipline": "processor_sharing"})


def test_the_limit_plot_draws_the_recorded_steps() -> None:
    r = simulator.simulate(scenario(
        {"policy": "aimd", "initial_limit": 1, "min_limit": 1, "max_limit": 10},
        rate=50, service_time=0.010, duration=1.0))
    assert "concurrency_limit_over_time" in r.plot.available()
    ax = r.plot.concurrency_limit_over_time()
    steps = ax.lines[0]
    assert list(steps.get_ydata()) == [1, 2, 3, 3]  # the table's values, held to the end
    assert not simulator.simulate(scenario(None)).plot.available().count(
        "concurrency_limit_over_time")


def test_a_black_holed_outage_leaves_no_request_holding_the_limit() -> None:
    # a 1 s black-hole crash at 2 s: arrivals meanwhile are never answered (the client's
    # timeout ends them), but they never entered the limiter, so after recovery the api
    # admits again exactly as before the crash
    s = simulator.parse_scenario({
        "duration": 6, "warmup": 0, "drain": 1,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 50},
                            "target": {"to": "api", "timeout": "100ms"}}},
        "components": {"api": {"kind": "service", "service_time": 0.01, "admission": {
            "policy": "aimd", "initial_limit": 3, "min_limit": 3, "max_limit": 3}}},
        "faults": [{"at": 2, "duration": 1, "kind": "crash", "target": "api",
                    "mode": "black_hole"}],
    })
    req = simulator.simulate(s).requests
    down = (req["start"] >= 2) & (req["start"] < 3)
    assert (req.loc[down, "status"] == "timeout").all() and down.sum() >= 49
    assert (req.loc[~down, "status"] == "ok").all()
