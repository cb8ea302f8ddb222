"""Autoscaling (Kubernetes HPA semantics) and cost.

The trajectories are computed by hand from the algorithm of ``kubernetes/kubernetes``
``pkg/controller/podautoscaler`` (replica_calculator.go, horizontal.go); each expected step
says how it follows. Inputs are constant (fixed service times, evenly spaced arrivals, a
``slow`` fault as a scripted load step) so the metric values are exact up to the integer
percent the HPA truncates to; the steps are chosen where that truncation cannot change a count.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import simulator
from simulator.autoscaling.hpa import Hpa, Sample, queue_messages
from simulator.autoscaling.params import Autoscaling, ScalingMetric


def _spec(**kw: object) -> Autoscaling:
    base: dict[str, object] = {"max_replicas": 10, "metrics": [{"type": "rps",
                                                                "average_value": 10}]}
    base.update(kw)
    return Autoscaling.model_validate(base)


def _rps(*per_instance: float, pending: int = 0) -> list[Sample | None]:
    return [Sample(tuple(round(v * 1000) for v in per_instance), pending)]


# ---- the arithmetic alone ---------------------------------------------------------------
def test_tolerance_keeps_the_count_and_ceil_sets_it() -> None:
    hpa = Hpa(_spec())
    # mean 10.9 / target 10 = 1.09: within the 0.1 tolerance, unchanged
    assert hpa.decide(15, 2, _rps(10.9, 10.9)).desired == 2
    # mean 11.5 -> ratio 1.15 -> ceil(1.15 x 2) = ceil(2.3) = 3
    assert hpa.decide(30, 2, _rps(11.5, 11.5)).desired == 3


def test_pending_instances_count_as_idle_on_a_scale_up() -> None:
    hpa = Hpa(_spec())
    # 2 ready at 15 rps, 2 provisioning: ratio 1.5 > 1, so the pending ones count as 0:
    # new ratio (30 / 4) / 10 = 0.75 < 1 -> no change (it would reverse the direction)
    assert hpa.decide(15, 4, _rps(15, 15, pending=2)).desired == 4
    # 2 ready at 30 rps, 1 pending: new ratio (60 / 3) / 10 = 2 -> ceil(2 x 3) = 6
    assert hpa.decide(30, 3, _rps(30, 30, pending=1)).desired == 6


def test_scale_up_policies_limit_change_per_period_and_select_policy() -> None:
    up = {"policies": [{"type": "Pods", "value": 2, "period_seconds": 60},
                       {"type": "Percent", "value": 50, "period_seconds": 60}]}
    hpa = Hpa(_spec(behavior={"scale_up": up}))
    # proposal ceil(4 x 40 / 10) = 16; Max of (4 + 2, ceil(4 x 1.5) = 6) = 6
    d = hpa.decide(15, 4, _rps(40, 40, 40, 40))
    assert (d.proposal, d.desired, d.reason) == (16, 6, "ScaleUpLimit")
    # 15 s later the +2 of t=15 is within the 60 s period: period start 6 - 2 = 4, so the
    # limit is still 6: unchanged
    assert hpa.decide(30, 6, _rps(*[40] * 6)).desired == 6
    # at t=75 the event of t=15 is not within (75 - 60, 75]: start 6 -> Max(8, 9) = 9
    assert hpa.decide(75, 6, _rps(*[40] * 6)).desired == 9
    hpa = Hpa(_spec(behavior={"scale_up": {**up, "select_policy": "Min"}}))
    # Min of (4 + 2, 6) at 4 replicas is 6 too; at 10 replicas (max 20): Min(12, 15) = 12
    hpa.spec = _spec(max_replicas=20, behavior={"scale_up": {**up, "select_policy": "Min"}})
    assert hpa.decide(15, 10, _rps(*[40] * 10)).desired == 12
    hpa = Hpa(_spec(behavior={"scale_up": {**up, "select_policy": "Disabled"}}))
    assert hpa.decide(15, 4, _rps(40, 40, 40, 40)).desired == 4


def test_scale_down_stabilization_takes_the_highest_recent_recommendation() -> None:
    down = {"stabilization_window_seconds": 45,
            "policies": [{"type": "Pods", "value": 1, "period_seconds": 15}]}
    hpa = Hpa(_spec(behavior={"scale_down": down}))
    # t=15: 4 at 10 rps -> 4 (tolerance); recommendations [(15, 4)]
    assert hpa.decide(15, 4, _rps(10, 10, 10, 10)).desired == 4
    # t=30: 4 at 2.5 -> proposal ceil(0.25 x 4) = 1; window (-15, 30] holds 4 -> stays 4
    d = hpa.decide(30, 4, _rps(2.5, 2.5, 2.5, 2.5))
    assert (d.proposal, d.stabilized, d.desired) == (1, 4, 4)
    # t=45: window (0, 45] holds 4 (t=15) -> 4
    assert hpa.decide(45, 4, _rps(2.5, 2.5, 2.5, 2.5)).desired == 4
    # t=60: window (15, 60]: the 4 of t=15 is out (strictly after the cut-off), the others
    # are 1 -> stabilised 1; Pods 1 per 15 s: 4 - 1 = 3, "ScaleDownLimit"
    d = hpa.decide(60, 4, _rps(2.5, 2.5, 2.5, 2.5))
    assert (d.stabilized, d.desired, d.reason) == (1, 3, "ScaleDownLimit")
    # t=75: the -1 of t=60 is not within (60, 75]: 3 - 1 = 2
    assert hpa.decide(75, 3, _rps(10 / 3, 10 / 3, 10 / 3)).desired == 2
    # percent scale-down truncates: 7 x (1 - 0.5) = 3.5 -> 3
    hpa = Hpa(_spec(behavior={"scale_down": {
        "stabilization_window_seconds": 0,
        "policies": [{"type": "Percent", "value": 50, "period_seconds": 15}]}}))
    assert hpa.decide(15, 7, _rps(*[1] * 7)).desired == 3


def test_scale_up_window_delays_and_scale_down_select_policy() -> None:
    hpa = Hpa(_spec(min_replicas=2, behavior={
        "scale_up": {"stabilization_window_seconds": 30},
        "scale_down": {"stabilization_window_seconds": 0}}))
    # t=15: proposal ceil(0.5 x 2) = 1, clamped to min 2; t=30: proposal 4, but the lowest
    # recommendation of (0, 30] is t=15's 1: stays 2; t=50: (20, 50] holds only 4s -> 4
    assert hpa.decide(15, 2, _rps(5, 5)).desired == 2
    assert hpa.decide(30, 2, _rps(20, 20)).desired == 2
    assert hpa.decide(50, 2, _rps(20, 20)).desired == 4
    down = {"stabilization_window_seconds": 0,
            "policies": [{"type": "Pods", "value": 1, "period_seconds": 15},
                         {"type": "Percent", "value": 50, "period_seconds": 15}]}
    # 10 at 1 rps -> proposal 1; Max (the larger change): min(10 - 1, int(10 x 0.5)) = 5;
    # Min: max(9, 5) = 9; Disabled: 10
    for policy, expected in (("Max", 5), ("Min", 9), ("Disabled", 10)):
        hpa = Hpa(_spec(behavior={"scale_down": {**down, "select_policy": policy}}))
        assert hpa.decide(15, 10, _rps(*[1] * 10)).desired == expected, policy


def test_min_and_max_clamp() -> None:
    hpa = Hpa(_spec(min_replicas=2, max_replicas=5))
    assert hpa.decide(15, 1, _rps(1)).desired == 2  # below min: TooFewReplicas at once
    d = hpa.decide(30, 4, _rps(100, 100, 100, 100))
    assert (d.desired, d.reason) == (5, "TooManyReplicas")  # Pods 4 would allow 8


# ---- the whole loop in a run ------------------------------------------------------------
SCENARIO = """
name: autoscale
seed: 1
duration: 300s
warmup: 0s
workloads:
  users:
    arrivals: {process: constant, rate: 20/s}
    target: lb
components:
  lb: {kind: load_balancer, strategy: round_robin, backends: [api],
       cost: {per_instance_hour: 0.05}}
  api:
    kind: service
    replicas: 1
    workers: 8
    service_time: {dist: constant, value: 50ms}
    cost: {per_instance_hour: 0.36}
    autoscaling:
      min_replicas: 1
      max_replicas: 6
      metrics: [{type: utilization, average_utilization: 25}]
      provisioning_delay: 10s
      behavior:
        scale_up: {policies: [{type: Pods, value: 1, period_seconds: 30s}]}
        scale_down: {stabilization_window_seconds: 60s}
faults:
  - {kind: slow, target: api, at: 59.7s, duration: 90s, factor: 6}
"""


def _run(text: str, *overrides: str) -> simulator.Results:
    return simulator.simulate(simulator.loads_scenario(text, list(overrides)))


def test_replica_trajectory_equals_the_hand_computation() -> None:
    r = _run(SCENARIO)
    ev = r.tables["scaling_events"]
    got = list(zip(ev["time"], ev["from_replicas"], ev["to_replicas"], ev["reason"].astype(str),
                   strict=True))
    # Load: 20 req/s x 50 ms = 1 busy worker; from 59.7 s to 149.7 s the slow fault makes it
    # 300 ms: 6 busy workers (the ramp ends by 60.0 s and starts at 149.7 s).
    # t=15..60: 1 of 8 workers = 12 % (truncated) -> ratio 0.48 -> ceil(0.48) = 1: none.
    # t=75: window [60, 75]: 6 of 8 = 75 % -> ratio 3 -> proposal 3; Pods 1 per 30 s ->
    #       1 -> 2, ScaleUpLimit. api[1] provisions 10 s: ready at 85.
    # t=90: api[0] [75, 90] 6 x 10 s + 3 x 5 s = 75 worker-s -> 5 workers; api[1] [85, 90]
    #       3 workers: (5 + 3) / 16 = 50 % -> ratio 2 -> proposal 4, but the +1 of t=75 is
    #       within (60, 90]: limit 1 + 1 = 2 -> unchanged (no event).
    # t=105: the event of t=75 is not within (75, 105]: limit 3. Window [90, 105]: 6 / 16 =
    #       37 % -> ratio 1.48 -> ceil(2.96) = 3 -> 2 -> 3, DesiredWithinRange.
    # t=120..150: 6 / 24 = 25 % (t=150: ~24 %, the ramp) -> ratio ~1: tolerance, 3 stays.
    # t=165: [150, 165] 1 / 24 = 4 % -> ratio 0.16 -> ceil(0.48) = 1; the 60 s window
    #       (105, 165] holds 3s -> 3. Likewise t=180, 195 (window still holds t=150's 3).
    # t=210: window (150, 210] holds only 1s -> 1; Percent 100 per 15 s allows 0, min 1 ->
    #       3 -> 1, DesiredWithinRange. Then 1 worker / 8 = 12 % -> stays 1 to the end.
    assert got == [(75.0, 1, 2, "ScaleUpLimit"), (105.0, 2, 3, "DesiredWithinRange"),
                   (210.0, 3, 1, "DesiredWithinRange")]
    reps = r.derived("replicas")
    ready = dict(zip(reps["time"], reps["ready"], strict=False))
    assert ready[85.0] == 2 and ready[115.0] == 3  # provisioning delay: 10 s after 75, 105


def test_cost_is_instance_seconds_times_price_exactly() -> None:
    r = _run(SCENARIO)
    states = r.tables["instance_states"]
    stopped = dict(zip(states[states["state"] == "stopped"]["instance"].astype(str),
                       states[states["state"] == "stopped"]["time"], strict=True))
    # api[0] the whole 300 s; api[1] from its provisioning at 75 s to its stop (its last
    # request done, within one service time of 210 s); api[2] from 105 s: idle at 210 s
    assert stopped["api[2]"] == 210.0 and 210.0 <= stopped["api[1]"] <= 210.05
    api_seconds = 300.0 + (stopped["api[1]"] - 75.0) + (210.0 - 105.0)
    c = r.derived("cost").set_index("component")
    assert c.loc["api", "instance_seconds"] == api_seconds
    assert c.loc["lb", "instance_seconds"] == 300.0
    assert c.loc["api", "cost"] == api_seconds * 0.36 / 3600.0
    assert c.loc["lb", "cost"] == 300.0 * 0.05 / 3600.0
    assert c.loc["total", "cost"] == c.loc["api", "cost"] + c.loc["lb", "cost"]
    ok = int((r.requests["status"] == "ok").sum())
    assert c.loc["total", "cost_per_million_ok"] == c.loc["total", "cost"] / ok * 1e6
    # a request price adds requests reaching the component (its spans) x price / 1e6
    r = _run(SCENARIO, "components.api.cost.per_million_requests=2.0")
    c2 = r.derived("cost").set_index("component")
    n = int((r.spans["component"] == "api").sum())
    assert c2.loc["api", "requests"] == n > 5000
    assert c2.loc["api", "cost"] == pytest.approx(api_seconds * 0.36 / 3600.0 + n * 2.0 / 1e6,
                                                  rel=1e-12)


DRAIN = """
name: drain
seed: 3
duration: 60s
drain: 30s
warmup: 0s
workloads:
  users:
    arrivals: {process: constant, rate: 10/s}
    target: api
components:
  api:
    kind: service
    replicas: 3
    workers: 25
    service_time: {dist: constant, value: 2s}
    autoscaling:
      min_replicas: 1
      max_replicas: 3
      metrics: [{type: rps, average_value: 10}]
      termination_grace_period: 5s
      behavior: {scale_down: {stabilization_window_seconds: 0}}
"""


@pytest.mark.parametrize("grace", [5.0, 0.5])
def test_scale_in_loses_no_request(grace: float) -> None:
    r = _run(DRAIN, f"components.api.autoscaling.termination_grace_period={grace}s")
    ev = r.tables["scaling_events"]
    # t=15: about 3.3 completions/s per instance -> ratio 0.33 -> 3 -> 1 at once (no
    # stabilisation); one instance of 25 workers holds the 10/s x 2 s = 20 in service
    assert list(ev["to_replicas"]) == [1]
    req = r.requests
    # every request ends in exactly one final status, none left in flight after the drain
    assert req["request_id"].is_unique
    assert (req["status"] != "in_flight").all()
    failed = int((req["status"] != "ok").sum())
    if grace >= 2.0:  # longer than any request: the drain finishes everything it holds
        assert failed == 0
    else:  # each drained instance held requests in service for 2 s: those fail at 0.5 s
        spans = r.spans
        assert failed > 0
        assert failed == int((spans["status"] == "error").sum())
    # and the requests of a drained instance after its drain began went elsewhere
    states = r.tables["instance_states"]
    for inst in states["instance"].astype(str).unique():
        if inst == "api[0]":
            continue
        drained = states[(states["instance"] == inst) & (states["state"] == "draining")]
        if len(drained):
            t = float(drained["time"].iloc[0])
            late = r.spans[(r.spans["instance"] == inst) & (r.spans["arrival"] > t)]
            assert late.empty
    assert math.isfinite(float(r.derived("cost")["instance_seconds"].sum()))


def test_bad_autoscaling_block_is_a_located_error() -> None:
    with pytest.raises(simulator.ScenarioError, match="min_replicas"):
        simulator.loads_scenario(SCENARIO, ["components.api.autoscaling.min_replicas=9"])
    bad = SCENARIO.replace("average_utilization: 25", "average_value: 25")
    with pytest.raises(simulator.ScenarioError, match="average_utilization"):
        simulator.loads_scenario(bad)


# ---- consumers on their queue (KEDA's queue scalers) --------------------------------------
def test_queue_length_counts_in_flight_and_delayed_as_chosen() -> None:
    metric = {"type": "queue_length", "average_value": 5}
    default = ScalingMetric.model_validate(metric)  # SQS's scaler: visible + in flight
    assert queue_messages(default, 7, 3, 2) == 10
    assert queue_messages(ScalingMetric.model_validate(
        {**metric, "scale_on_in_flight": False, "scale_on_delayed": True}), 7, 3, 2) == 9


def test_external_average_value_is_over_the_current_count() -> None:
    hpa = Hpa(_spec(metrics=[{"type": "queue_length", "average_value": 50}]))
    # 122 messages / (50 x 1) = 2.44 -> ceil(122 / 50) = 3
    assert hpa.decide(15, 1, [Sample((122_000,))]).desired == 3
    # 160 / (50 x 3) = 1.07: within the tolerance, whatever the ready count
    assert hpa.decide(30, 3, [Sample((160_000,), pending=2)]).desired == 3


QUEUED = """
name: keda
seed: 2
duration: 150s
warmup: 0s
drain: 0s
workloads:
  producer:
    arrivals: {process: constant, rate: 10/s}
    target: jobs
components:
  jobs: {kind: queue}
  worker:
    kind: consumer
    source: jobs
    replicas: 1
    concurrency: 4
    service_time: {dist: constant, value: 200ms}
    cost: {per_instance_hour: 0.10}
    autoscaling:
      min_replicas: 1
      max_replicas: 8
      metrics: [{type: queue_length, average_value: 50}]
      behavior: {scale_down: {stabilization_window_seconds: 60s}}
faults:
  - {kind: slow, target: worker, at: 30s, duration: 30s, factor: 10}
"""


def test_consumer_trajectory_on_queue_length_equals_the_hand_computation() -> None:
    r = _run(QUEUED)
    ev = r.tables["scaling_events"]
    got = list(zip(ev["time"], ev["from_replicas"], ev["to_replicas"], ev["metric"].astype(str),
                   strict=True))
    # Messages every 0.1 s; an instance is 4 workers of 0.2 s (20/s): the lag (visible + in
    # flight) is the ~2 in service: ceil(2 / 50) = 1, no change at 15 s and 30 s.
    # From 30 s the slow fault makes a message 2 s: an instance does 4 / 2 = 2/s.
    # t=45: 150 arrived in (30, 45]; each of 4 workers finished 7 (at 32, 34, ..., 44):
    #       lag 150 - 28 = 122 (+-2 at the edges) -> ceil(122 / 50) = 3 (range (100, 150]);
    #       the default scale-up limit is max(1 + 4, 2) = 5: 1 -> 3.
    # t=60: 300 arrived; the first 4 workers finished 14 each (56), the 8 started at 45
    #       finished 7 each (56): lag 300 - 112 = 188 -> ratio 188 / 150 = 1.25 -> ceil(3.76)
    #       = 4 (range (150, 200]). Then 0.2 s again: 16 workers clear it by ~64 s.
    # t=75..105: lag ~2 -> 1, held at 4 by the 60 s scale-down window while it holds t=60's 4;
    # t=120: the window (60, 120] holds only 1s: 4 -> 1 (Percent 100 % allows 0, min 1).
    assert got == [(45.0, 1, 3, "queue_length"), (60.0, 3, 4, "queue_length"),
                   (120.0, 4, 1, "queue_length")]
    assert 100 < float(ev["value"].iloc[0]) <= 150  # 122 per current replica (one)
    # a drained consumer finished what it held: every message acknowledged or still queued
    m = r.messages
    assert set(m["status"].astype(str)) <= {"acked", "queued", "in_flight"}
    assert int((m["attempts"] > 1).sum()) == 0  # nothing abandoned, nothing redelivered
    # billed: worker[0] 150 s, worker[1..2] from 45 s, worker[3] from 60 s, all to ~120 s
    c = r.derived("cost").set_index("component")
    assert 150 + 2 * 75 + 60 <= c.loc["worker", "instance_seconds"] <= 150 + 2 * 75.3 + 60.3


ZERO = """
name: keda-zero
seed: 4
duration: 150s
warmup: 0s
drain: 0s
workloads:
  producer:
    arrivals: {process: schedule, steps: [{at: 0s, rate: 0/s}, {at: 100s, rate: 5/s}]}
    target: jobs
components:
  jobs: {kind: queue}
  worker:
    kind: consumer
    source: jobs
    replicas: 1
    concurrency: 4
    service_time: {dist: constant, value: 200ms}
    autoscaling:
      min_replicas: 0
      max_replicas: 4
      metrics: [{type: queue_length, average_value: 50}]
      cooldown_period: 30s
      provisioning_delay: 5s
"""


def test_consumer_scales_to_zero_after_the_cooldown_and_back_on_activation() -> None:
    r = _run(ZERO)
    ev = r.tables["scaling_events"]
    got = list(zip(ev["time"], ev["from_replicas"], ev["to_replicas"], ev["reason"].astype(str),
                   strict=True))
    # no message before 100 s: inactive since time 0 -> at t=30 (30 s >= cooldown) 1 -> 0.
    # Poisson 5/s from 100 s: some message by 105 s (P(none) = e^-25): 0 -> 1, ready at 110;
    # then 5/s on 20/s of workers: the lag stays far below 50 -> 1 to the end.
    assert got == [(30.0, 1, 0, "CooledDown"), (105.0, 0, 1, "Activated")]
    states = r.tables["instance_states"]
    w = states[states["instance"].astype(str) == "worker[0]"]
    assert list(zip(w["time"], w["state"].astype(str), strict=True)) == [
        (0.0, "ready"), (30.0, "draining"), (30.0, "stopped"), (105.0, "provisioning"),
        (110.0, "ready")]
    # the messages of 100..110 s waited for the new instance; none was lost
    m = r.messages
    assert float(m["first_delivered"].min()) >= 110.0
    assert (m["status"].astype(str) != "dead_lettered").all()
    # an activation threshold above the ~250 messages of 100..150 s keeps it at zero
    r = _run(ZERO, "components.worker.autoscaling.metrics.0.activation_queue_length=1000")
    assert list(r.tables["scaling_events"]["to_replicas"]) == [0]


def test_queue_length_is_a_consumers_metric() -> None:
    bad = SCENARIO.replace("metrics: [{type: utilization, average_utilization: 25}]",
                           "metrics: [{type: queue_length, average_value: 5}]")
    with pytest.raises(simulator.ScenarioError, match="queue_length"):
        simulator.loads_scenario(bad)
    with pytest.raises(simulator.ScenarioError, match="min_replicas 0"):
        simulator.loads_scenario(SCENARIO, ["components.api.autoscaling.min_replicas=0"])
    for key in ("cooldown_period=60s", "metrics.0.activation_queue_length=5"):
        with pytest.raises(simulator.ScenarioError, match="with min_replicas above 0"):
            simulator.loads_scenario(QUEUED, [f"components.worker.autoscaling.{key}"])
    with pytest.raises(simulator.ScenarioError, match="cold_start"):
        simulator.loads_scenario(QUEUED.replace(
            "      min_replicas: 1\n",
            "      min_replicas: 1\n      cold_start: {initial_speed: 0.5, ramp: 10s}\n", 1))


# ---- a latency percentile, scheduled bounds, a cold start ---------------------------------
LATENCY = """
name: latency
seed: 5
duration: 50s
warmup: 0s
workloads:
  users:
    arrivals: {process: constant, rate: 10/s}
    target: api
components:
  api:
    kind: service
    replicas: 1
    workers: 8
    service_time: {dist: constant, value: 50ms}
    autoscaling:
      max_replicas: 10
      metrics: [{type: latency, percentile: 95, value: 20ms}]
metrics: {spans: true}
"""


def test_latency_metric_is_an_object_value_and_runs_away_when_latency_is_not_load() -> None:
    r = _run(LATENCY)
    ev = r.tables["scaling_events"]
    got = list(zip(ev["time"], ev["to_replicas"], ev["reason"].astype(str), strict=True))
    # Never a queue (10/s x 50 ms = 0.5 busy of 8 workers): every span is 50 ms, whatever
    # the count. Value 50 / target 20 = 2.5 -> ceil(2.5 x ready):
    # t=15: ceil(2.5 x 1) = 3 (limit max(1 + 4, 2 x 1) = 5); t=30: ceil(2.5 x 3) = 8, limit
    # max(3 + 4, 6) = 7 -> 7, ScaleUpLimit; t=45: ceil(17.5) = 18 -> max_replicas 10.
    assert got == [(15.0, 3, "DesiredWithinRange"), (30.0, 7, "ScaleUpLimit"),
                   (45.0, 10, "TooManyReplicas")]
    assert list(ev["value"]) == [0.05, 0.05, 0.05]
    # a target above the latency by more than the tolerance: ceil(50 / 60) = 1, no change
    r = _run(LATENCY, "components.api.autoscaling.metrics.0.value=60ms")
    assert r.tables["scaling_events"].empty


COLD = """
name: cold
seed: 6
duration: 60s
warmup: 0s
workloads:
  users:
    arrivals: {process: constant, rate: 20/s}
    target: api
components:
  api:
    kind: service
    replicas: 1
    workers: 16
    service_time: {dist: constant, value: 100ms}
    autoscaling:
      min_replicas: 1
      max_replicas: 3
      schedule: [{at: 30s, min_replicas: 2, max_replicas: 2}, {at: 45s, min_replicas: 1,
                                                                 max_replicas: 1}]
      cold_start: {initial_speed: 0.5, ramp: 10s}
      behavior: {scale_down: {stabilization_window_seconds: 0}}
metrics: {spans: true}
"""


def test_schedule_sets_the_bounds_and_a_new_instance_starts_slow() -> None:
    r = _run(COLD)
    ev = r.tables["scaling_events"]
    # no metric: the count moves only into the bounds, at the first sync at or after each
    # scheduled time (syncs at 15, 30, 45, 60 s)
    assert list(zip(ev["time"], ev["from_replicas"], ev["to_replicas"], strict=True)) == [
        (30.0, 1, 2), (45.0, 2, 1)]
    spans = r.spans
    new = spans[spans["instance"].astype(str) == "api[1]"]
    assert len(new) > 50
    # api[1] ready at 30 s: a request arriving in step k of 20 (0.5 s each) takes
    # 100 ms / (0.5 + 0.5 (k + 0.5) / 20); from 40 s, 100 ms
    k = np.floor((new["arrival"] - 30.0) / 0.5)
    on_edge = np.abs((new["arrival"] - 30.0) / 0.5 - np.round((new["arrival"] - 30.0) / 0.5))
    speed = np.where(k < 20, 0.5 + 0.5 * (k + 0.5) / 20, 1.0)
    keep = on_edge > 1e-6  # (an arrival at a step's boundary may see either step)
    assert keep.sum() > 50
    np.testing.assert_allclose((new["end"] - new["start"])[keep], (0.1 / speed)[keep],
                               rtol=1e-9)
    assert (new["start"] == new["arrival"]).all()  # 16 workers: never a wait


def test_bad_latency_and_schedule_blocks_are_located_errors() -> None:
    with pytest.raises(simulator.ScenarioError, match="spans"):
        simulator.loads_scenario(LATENCY, ["metrics.spans=false"])
    with pytest.raises(simulator.ScenarioError, match="value"):
        simulator.loads_scenario(LATENCY.replace("value: 20ms", "average_value: 20"))
    with pytest.raises(simulator.ScenarioError, match="schedule"):
        simulator.loads_scenario(COLD.replace("max_replicas: 2}", "max_replicas: 5}"))
    with pytest.raises(simulator.ScenarioError, match="percentile"):
        simulator.loads_scenario(SCENARIO.replace("average_utilization: 25}",
                                                  "average_utilization: 25, percentile: 99}"))
