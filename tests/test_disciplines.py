"""Queue disciplines, priorities and client patience with constant inputs: exact expectations.

Constant arrivals (request ``k`` arrives at ``(k + 1) / rate``) and constant service times make
every instant computable by hand; each test states the arithmetic. The closed-form checks
against queueing theory are in ``tests/test_validation_disciplines.py``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simulator
from simulator.errors import ScenarioError
from tests.conftest import run


def one(svc: dict[str, Any], rate: float, duration: float, **workload: Any) -> Any:
    """One constant-rate workload into one service ``svc``."""
    return run({
        "duration": duration, "drain": 100,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": rate},
                            "target": "svc", **workload}},
        "components": {"svc": {"kind": "service", **svc}},
    })


def served_order(r: Any, component: str = "svc") -> list[int]:
    sp = r.spans[(r.spans["component"] == component) & (r.spans["status"] == "ok")]
    return [int(i) for i in sp.sort_values("start")["request_id"]]


def statuses(r: Any) -> list[str]:
    return r.requests.sort_values("request_id")["status"].astype(str).tolist()


# ---- adaptive LIFO ------------------------------------------------------------------------


@pytest.mark.parametrize(("standing_after", "order"), [
    # arrivals at 10..50 ms, 1 s each: the queue is non-empty from 20 ms on. At 1.01 s it has
    # been so for 0.99 s: >= 0.5 -> newest first (4, 3, 2, 1) ...
    (0.5, [0, 4, 3, 2, 1]),
    # ... < 2 -> oldest (1); at 2.01 s 1.99 < 2 -> oldest (2); at 3.01 s 2.99 >= 2 -> newest
    (2.0, [0, 1, 2, 4, 3]),
])
def test_adaptive_lifo_serves_the_newest_only_under_a_standing_queue(
        standing_after: float, order: list[int]) -> None:
    r = one({"service_time": 1.0, "queue": {"discipline": "adaptive_lifo",
                                            "standing_after": standing_after}}, 100, 0.055)
    assert served_order(r) == order


# ---- processor sharing --------------------------------------------------------------------


def test_processor_sharing_splits_the_worker_between_requests_present() -> None:
    # requests at 0.5 s and 1.0 s, 1 s of work each. At 1.0 s the first has 0.5 s left; both
    # progress at 1/2, so it ends at 2.0 s (latency 1.5); the second then has 0.5 s left, alone
    # at full speed: ends at 2.5 s (latency 1.5)
    r = one({"service_time": 1.0, "queue": {"discipline": "processor_sharing"}}, 2, 1.1)
    assert np.allclose(r.requests.sort_values("request_id")["latency"], [1.5, 1.5])


def test_processor_sharing_with_workers_caps_each_request_at_one_worker() -> None:
    # 2 workers, 3 requests at 10, 20, 30 ms needing 1 s: the first two run at full speed
    # until 30 ms; then 3 share 2 workers (rate 2/3 each). Request 0 has 0.98 left, 1 has
    # 0.99 and 2 has 1: request 0 ends after 0.98 * 1.5 = 1.47 s, at 1.50 s.
    r = one({"workers": 2, "service_time": 1.0, "queue": {"discipline": "processor_sharing"}},
            100, 0.035)
    end = (r.requests["start"] + r.requests["latency"]).to_numpy()
    t0 = 0.03 + 0.98 * 1.5
    # then 1 has 0.01 left x 1 (two requests, two workers: full speed) and 2 has 0.02 left
    assert end == pytest.approx([t0, t0 + 0.01, t0 + 0.02])


def test_processor_sharing_rejects_beyond_its_limit() -> None:
    r = one({"service_time": 1.0, "queue": {"discipline": "processor_sharing", "limit": 2}},
            100, 0.035)
    assert statuses(r) == ["ok", "ok", "rejected"]


# ---- priorities ---------------------------------------------------------------------------


def _two_classes(preemptive: bool) -> Any:
    # low-priority requests at 10, 20, 30 ms; one high-priority request at 25 ms; 1 s each
    return run({
        "duration": 0.035, "drain": 100,
        "workloads": {
            "lo": {"arrivals": {"process": "constant", "rate": 100}, "target": "svc",
                   "priority": 1},
            "hi": {"arrivals": {"process": "constant", "rate": 40}, "target": "svc",
                   "priority": 0}},
        "components": {"svc": {"kind": "service", "service_time": 1.0, "queue": {
            "discipline": "priority", "preemptive": preemptive}}},
    })


def test_non_preemptive_priority_serves_the_important_class_first_without_interrupting() -> None:
    r = _two_classes(preemptive=False)
    req = r.requests.set_index("request_id")
    # ids by creation: lo 0 (10 ms), lo 1 (20 ms), hi 2 (25 ms), lo 3 (30 ms)
    assert served_order(r) == [0, 2, 1, 3]
    assert req["latency"].to_dict() == pytest.approx({0: 1.0, 1: 2.99, 2: 1.985, 3: 3.98})


def test_preemptive_resume_interrupts_and_resumes_with_the_work_left() -> None:
    r = _two_classes(preemptive=True)
    req = r.requests.set_index("request_id")
    # hi (25 ms) takes the worker from lo 0, which has 0.985 s left and resumes at 1.025 s at
    # the head of its class (before lo 1): it ends at 2.01 s
    assert req["latency"].to_dict() == pytest.approx({0: 2.0, 1: 2.99, 2: 1.0, 3: 3.98})
    # utilisation is exact across the preemption: 4 s of work, busy from 10 ms to 4.01 s
    last = r.samples[(r.samples["metric"] == "busy_time_total")]["value"].iloc[-1]
    assert last == pytest.approx(4.0)


def test_priority_is_carried_downstream() -> None:
    # the front service passes requests straight on; the back one orders them by class
    r = run({
        "duration": 0.035, "drain": 100,
        "workloads": {
            "lo": {"arrivals": {"process": "constant", "rate": 100}, "target": "front",
                   "priority": 3},
            "hi": {"arrivals": {"process": "constant", "rate": 40}, "target": "front",
                   "priority_by_op": {"read": 1}}},
        "components": {
            "front": {"kind": "service", "workers": 10, "calls": {"read": ["back"]}},
            "back": {"kind": "service", "service_time": 1.0,
                     "queue": {"discipline": "priority"}}},
    })
    assert served_order(r, "back") == [0, 2, 1, 3]


# ---- CoDel --------------------------------------------------------------------------------


def test_codel_first_drop_is_where_rfc_8289_puts_it() -> None:
    # service 1 ms, arrivals every 0.8 ms (request k at 0.8 (k+1) ms) into one worker, FIFO:
    # request k starts at 0.8 + k ms and has waited 0.2 k ms. target 4.9 ms: the first sojourn
    # at or above it is request 25's (5.0 ms, at 25.8 ms), so first_above_time = 25.8 + 100.5
    # ms = 126.3 ms; the first dequeue at or after it is at 126.8 ms (request 126): dropped;
    # request 127 is served at once, and the next drop is due interval / sqrt(1) later.
    r = one({"service_time": 0.001, "queue": {"discipline": "codel", "target": 0.0049,
                                              "interval": 0.1005}}, 1250, 0.2)
    sp = r.spans.set_index("request_id")
    dropped = sp.index[sp["status"] == "dropped"]
    assert dropped[0] == 126
    assert sp.loc[126, "end"] == pytest.approx(0.1268)
    assert sp.loc[127, "start"] == pytest.approx(0.1268)
    second = dropped[1]
    # the first dequeue at or after 126.8 + 100.5 = 227.3 ms, past the end of arrivals: the
    # drops come from the backlog; it must not be before then
    assert sp.loc[second, "end"] >= 0.1268 + 0.1005 - 1e-12
    assert statuses(r).count("dropped") == len(dropped)


def test_codel_under_persistent_overload_holds_the_delay_and_sheds_the_excess() -> None:
    # 10% overload (1100/s into a 1000/s worker), 60 s. Without CoDel the wait would grow by
    # 0.0909 s per second (5.5 s at the end). CoDel must keep every served request's wait
    # within target + interval (after a 10 s start), while the worker never idles, so the
    # share dropped is the excess, 1 - 1000/1100, up to the requests left at the end
    # (counted in, at most one per millisecond of the final wait).
    target, interval = 0.005, 0.1
    r = one({"service_time": 0.001, "queue": {"discipline": "codel"}}, 1100, 60.0)
    sp = r.spans
    ok = sp[(sp["status"] == "ok") & (sp["arrival"] > 10)]
    wait = (ok["start"] - ok["arrival"]).to_numpy()
    assert wait.max() <= target + interval
    assert wait.min() < target  # it does go back below target (leaves its dropping state)
    n = len(sp)
    dropped = int((sp["status"] == "dropped").sum())
    assert abs(dropped / n - (1 - 1000 / 1100)) <= (target + interval) * 1000 / n
    assert set(sp["status"].astype(str)) == {"ok", "dropped"}


# ---- deadlines, reneging, baulking -------------------------------------------------------


def test_deadline_propagates_and_expired_work_is_dropped_at_dequeue() -> None:
    # arrivals at 10, 20, 30 ms, deadline 1.5 s, back-end 1 s per request on one worker.
    # 0 is served by 1.01 s; 1 starts at 1.01 (before its deadline 1.52) and ends at 2.01,
    # but the client gives up at 1.52 (timeout); 2 reaches the head at 2.01, past its deadline
    # 1.53: dropped there (expired), and its client had given up at 1.53.
    r = run({
        "duration": 0.035, "drain": 100,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 100},
                            "target": "front", "deadline": 1.5}},
        "components": {
            "front": {"kind": "service", "workers": 10, "calls": {"read": ["back"]}},
            "back": {"kind": "service", "service_time": 1.0}},
    })
    assert statuses(r) == ["ok", "timeout", "timeout"]
    assert np.allclose(r.requests.sort_values("request_id")["latency"], [1.0, 1.5, 1.5])
    back = r.spans[r.spans["component"] == "back"].set_index("request_id")
    assert back["status"].astype(str).to_dict() == {0: "ok", 1: "ok", 2: "expired"}
    assert back.loc[2, "end"] == pytest.approx(2.01)
    expired = r.samples[(r.samples["metric"] == "expired_total")
                        & (r.samples["component"] == "back")]["value"].iloc[-1]
    assert expired == 1


def test_reneging_leaves_after_the_patience() -> None:
    # arrivals at 10, 20, 30 ms, 1 s each, patience 0.5 s: 1 and 2 leave at 0.52 and 0.53 s
    r = one({"service_time": 1.0}, 100, 0.035, patience=0.5)
    assert statuses(r) == ["ok", "reneged", "reneged"]
    assert np.allclose(r.requests.sort_values("request_id")["latency"], [1.0, 0.5, 0.5])
    # the worker's next request after 0 found nobody: busy exactly 1 s in all
    last = r.samples[(r.samples["metric"] == "busy_time_total")]["value"].iloc[-1]
    assert last == pytest.approx(1.0)


def test_baulking_does_not_join_a_long_queue() -> None:
    # five arrivals 10 ms apart, 1 s each, baulk_at 2: 0 served, 1 and 2 wait, 3 and 4 find
    # two waiting and leave at once
    r = one({"service_time": 1.0}, 100, 0.055, baulk_at=2)
    assert statuses(r) == ["ok", "ok", "ok", "baulked", "baulked"]
    assert r.requests.set_index("request_id").loc[[3, 4], "latency"].eq(0).all()


def test_new_gauges_appear_only_where_requests_can_leave_unserved() -> None:
    plain = one({"service_time": 0.1}, 1, 3.0)
    limited = one({"service_time": 0.1}, 1, 3.0, patience=1.0)
    assert "reneged_total" not in set(plain.samples["metric"])
    assert {"dropped_total", "expired_total", "reneged_total", "baulked_total"} <= set(
        limited.samples["metric"])


# ---- the queue block ----------------------------------------------------------------------


def test_queue_block_is_the_shorthands_written_out() -> None:
    short = one({"service_time": 1.0, "queue_discipline": "lifo", "queue_limit": 2}, 100,
                0.045)
    block = one({"service_time": 1.0, "queue": {"discipline": "lifo", "limit": 2}}, 100,
                0.045)
    # arrivals at 10..40 ms: 0 served, 1 and 2 wait (the limit), 3 is rejected; newest first
    assert served_order(short) == served_order(block) == [0, 2, 1]
    assert statuses(short) == statuses(block) == ["ok", "ok", "ok", "rejected"]


@pytest.mark.parametrize("extra", [{"queue_limit": 3}, {"queue_discipline": "lifo"}])
def test_queue_block_refuses_the_shorthands_beside_it(extra: dict[str, Any]) -> None:
    with pytest.raises(ScenarioError, match="queue"):
        simulator.parse_scenario({
            "duration": 1, "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 1},
                                               "target": "svc"}},
            "components": {"svc": {"kind": "service", "queue": {"discipline": "fifo"},
                                   **extra}}})


# ---- every request accounted for, every integral exact ------------------------------------

_DISCIPLINES = st.sampled_from([
    {"discipline": "fifo"}, {"discipline": "lifo"}, {"discipline": "priority"},
    {"discipline": "priority", "preemptive": True}, {"discipline": "codel", "target": 0.05,
                                                     "interval": 0.2},
    {"discipline": "adaptive_lifo", "standing_after": 0.3},
    {"discipline": "processor_sharing"}])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queue=_DISCIPLINES, workers=st.integers(1, 3), limit=st.none() | st.integers(0, 5),
       patience=st.none() | st.floats(0.05, 2.0), baulk=st.none() | st.integers(0, 4),
       deadline=st.none() | st.floats(0.2, 3.0), seed=st.integers(0, 2**16))
def test_every_request_ends_once_and_the_integrals_match_the_spans(
        queue: dict[str, Any], workers: int, limit: int | None, patience: float | None,
        baulk: int | None, deadline: float | None, seed: int) -> None:
    workloads: dict[str, Any] = {}
    for name, prio in (("a", 0), ("b", 1)):
        w: dict[str, Any] = {"arrivals": {"process": "poisson", "rate": 3.0}, "target": "svc",
                             "priority": prio}
        if patience is not None:
            w["patience"] = {"dist": "exponential", "mean": patience}
        if baulk is not None:
            w["baulk_at"] = baulk
        if deadline is not None:
            w["deadline"] = deadline
        workloads[name] = w
    r = run({"duration": 20, "drain": 200, "metrics": {"spans": True, "interval": 1.0},
             "workloads": workloads,
             "components": {"svc": {"kind": "service", "workers": workers,
                                    "service_time": {"dist": "exponential", "mean": 0.5},
                                    "queue": {**queue, "limit": limit}}}}, seed=seed)
    req, sp = r.requests, r.spans
    assert (req["status"] != "in_flight").all()
    assert sp["request_id"].is_unique and len(sp) == len(req)
    last = r.samples.groupby("metric")["value"].last()
    assert last["in_system"] == last["busy"] == last["queue_length"] == 0
    # every request that entered (not refused at the door) spent end - arrival in the system
    entered = ~sp["status"].isin(["rejected", "baulked"]) & ~(
        (sp["status"] == "expired") & sp["start"].isna() & (sp["end"] == sp["arrival"]))
    in_system = float((sp["end"] - sp["arrival"])[entered].sum())
    assert last["system_time_total"] == pytest.approx(in_system, rel=1e-9, abs=1e-9)
    served = sp["status"] == "ok"
    if queue["discipline"] != "processor_sharing" and not queue.get("preemptive"):
        waited = float((sp["start"] - sp["arrival"])[served].sum())
        left = sp["status"].isin(["reneged", "dropped", "expired"]) & entered
        waited += float((sp["end"] - sp["arrival"])[left].sum())
        assert last["queue_time_total"] == pytest.approx(waited, rel=1e-9, abs=1e-9)
        work = float((sp["end"] - sp["start"])[served].sum())
        assert last["busy_time_total"] == pytest.approx(work, rel=1e-9, abs=1e-9)
    counted = {s: int((sp["status"] == s).sum()) for s in ("reneged", "baulked", "dropped",
                                                            "expired")}
    for status, n in counted.items():
        assert last[f"{status}_total"] == n
    assert math.isfinite(float(last["busy_time_total"]))
