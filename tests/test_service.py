"""Service semantics: workers, queue limit, disciplines, speed, work, sequence and fan-out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.conftest import run


def one(target_spec: dict[str, Any], arrivals: dict[str, Any], duration: float = 10,
        **components: Any) -> Any:
    return run({
        "duration": duration,
        "drain": 100,
        "workloads": {"w": {"arrivals": arrivals, "target": "svc"}},
        "components": {"svc": {"kind": "service", **target_spec}, **components},
    })


def test_sequential_calls_add_and_parallel_calls_take_the_max() -> None:
    comps = {"a": {"kind": "service", "service_time": 1.0},
             "b": {"kind": "service", "service_time": 3.0}}
    seq = one({"service_time": 0.5, "calls": {"read": ["a", "b"]}},
              {"process": "constant", "rate": 0.1}, duration=50, **comps)
    par = one({"service_time": 0.5, "calls": {"read": [{"parallel": ["a", "b"]}]}},
              {"process": "constant", "rate": 0.1}, duration=50, **comps)
    assert np.allclose(seq.requests["latency"], 0.5 + 1.0 + 3.0)
    assert np.allclose(par.requests["latency"], 0.5 + max(1.0, 3.0))


def test_speed_divides_and_work_multiplies_service_time() -> None:
    r = run({
        "duration": 50, "drain": 10,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 0.1}, "target": "svc",
                            "work": 3.0}},
        "components": {"svc": {"kind": "service", "speed": 2.0, "service_time": 1.0}},
    })
    assert np.allclose(r.requests["latency"], 1.0 * 3.0 / 2.0)


def test_queue_limit_rejects_exactly_the_overflow() -> None:
    # a burst of 10 simultaneous-ish arrivals into 1 worker + 3 waiting slots
    r = one({"workers": 1, "queue_limit": 3, "service_time": 10.0},
            {"process": "constant", "rate": 1000}, duration=0.0105)
    status = r.requests["status"].astype(str).tolist()
    assert status.count("ok") == 4 and status.count("rejected") == 6
    assert r.requests.loc[r.requests["status"] == "rejected", "latency"].eq(0).all()


@pytest.mark.parametrize(("discipline", "order"), [("fifo", [0, 1, 2, 3]),
                                                   ("lifo", [0, 3, 2, 1])])
def test_queue_discipline_orders_service(discipline: str, order: list[int]) -> None:
    r = one({"workers": 1, "queue_discipline": discipline, "service_time": 1.0},
            {"process": "constant", "rate": 100}, duration=0.045)
    served = r.spans.sort_values("start")["request_id"].tolist()
    assert served == order


def test_workers_serve_in_parallel() -> None:
    r = one({"workers": 3, "service_time": 1.0}, {"process": "constant", "rate": 1000},
            duration=0.0035)
    # arrivals at 1, 2, 3 ms: all three start at once, none waits
    assert np.allclose(r.spans["start"], r.spans["arrival"])
    assert np.allclose(r.requests["latency"], 1.0)


def test_hold_worker_blocks_while_downstream_runs() -> None:
    comps = {"slow": {"kind": "service", "workers": 10, "service_time": 1.0}}
    held = one({"workers": 1, "service_time": 0.1, "calls": {"read": ["slow"]}},
               {"process": "constant", "rate": 100}, duration=0.025, **comps)
    freed = one({"workers": 1, "service_time": 0.1, "hold_worker": False,
                 "calls": {"read": ["slow"]}},
                {"process": "constant", "rate": 100}, duration=0.025, **comps)
    # arrivals at 10 and 20 ms; holding, the second starts when the first has finished (1.11 s)
    assert held.spans[held.spans["component"] == "svc"]["start"].max() == pytest.approx(1.11)
    assert freed.spans[freed.spans["component"] == "svc"]["start"].max() == pytest.approx(0.11)


def test_failure_of_a_step_stops_the_sequence() -> None:
    comps = {"full": {"kind": "service", "workers": 1, "queue_limit": 0, "service_time": 5.0},
             "after": {"kind": "service", "service_time": 0.0}}
    r = one({"workers": 10, "service_time": 0.0, "calls": {"read": ["full", "after"]}},
            {"process": "constant", "rate": 10}, duration=0.25, **comps)
    assert r.requests["status"].astype(str).tolist() == ["ok", "rejected"]
    assert (r.spans["component"] == "after").sum() == 1


def test_operations_route_to_their_own_calls_and_service_times() -> None:
    r = run({
        "duration": 200, "drain": 10,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 1},
                            "mix": {"read": 0.5, "write": 0.5}, "target": "svc"}},
        "components": {
            "svc": {"kind": "service", "workers": 100, "service_time": 0.01,
                    "service_time_by_op": {"write": 0.02},
                    "calls": {"write": [{"to": "db", "op": "insert"}]}},
            "db": {"kind": "service", "workers": 100, "service_time": 0.5},
        },
    })
    req = r.requests
    assert set(r.spans.loc[r.spans["component"] == "db", "op"].astype(str)) == {"insert"}
    assert np.allclose(req.loc[req["op"] == "read", "latency"], 0.01)
    assert np.allclose(req.loc[req["op"] == "write", "latency"], 0.52)
    assert 0.4 < (req["op"] == "write").mean() < 0.6


def test_utilisation_and_time_integrals_are_exact() -> None:
    # deterministic: one request per second, 0.25 s each -> utilisation 0.25, L = 0.25
    r = one({"workers": 1, "service_time": 0.25}, {"process": "constant", "rate": 1},
            duration=100.5)
    from simulator.analysis.summary import utilisation, window_delta

    assert utilisation(r.samples, 10, 90)["svc"] == pytest.approx(0.25)
    system = window_delta(r.samples, "system_time_total", 10, 90)["delta"].iloc[0]
    assert system / 80 == pytest.approx(0.25)
