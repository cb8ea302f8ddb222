"""Each fault kind does what it says, exactly when it says."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import simulator
from tests.conftest import run


def system(faults: list[dict[str, Any]], rate: float = 20, duration: float = 30,
           call: dict[str, Any] | None = None, **api: Any) -> simulator.Results:
    return run({
        "duration": duration, "drain": 50,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": rate},
                            "target": call or "api"}},
        "components": {
            "api": {"kind": "service", "workers": 4, "service_time": 0.01,
                    "calls": {"read": ["db"]}, **api},
            "db": {"kind": "service", "workers": 8, "service_time": 0.02},
            "other": {"kind": "service", "service_time": 0.001},
        },
        "faults": faults,
    })


def during(r: simulator.Results, a: float, b: float) -> Any:
    req = r.requests
    return req[(req["start"] >= a) & (req["start"] < b)]


def test_crash_refuses_new_requests_then_recovers() -> None:
    r = system([{"at": 10, "duration": 5, "kind": "crash", "target": "db"}])
    assert (during(r, 10.001, 14.99)["status"] == "error").all()
    assert (during(r, 0, 9.9)["status"] == "ok").all()
    assert (during(r, 15.1, 30)["status"] == "ok").all()
    assert np.allclose(during(r, 10.001, 14.99)["latency"], 0.01)  # api work, then refused
    kinds = r.events[r.events["event"] == "fault"]["detail"].tolist()
    assert kinds == ["crash starts", "crash ends"]


def test_crash_fails_the_requests_it_holds_at_that_instant() -> None:
    # one worker, 2.5 s per request, one arrival a second: at 9.5 s one request is in service
    # and several wait; all of them fail at exactly 9.5 s
    r = run({
        "duration": 10, "drain": 50,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 1}, "target": "db"}},
        "components": {"db": {"kind": "service", "workers": 1, "service_time": 2.5}},
        "faults": [{"at": 9.5, "duration": 1, "kind": "crash", "target": "db"}],
    })
    req = r.requests.set_index("request_id")
    failed = req[req["status"] == "error"]
    assert len(failed) >= 2
    assert np.allclose(failed["end"], 9.5)
    assert (req.loc[req["end"] < 9.5, "status"] == "ok").all()


@pytest.mark.parametrize("hold_worker", [True, False])
def test_crash_while_awaiting_calls_counts_the_request_failed_only(hold_worker: bool) -> None:
    # api works 10 ms then waits 20 ms for db; a crash of api at 10 s fails the requests
    # awaiting db. Released early (hold_worker false) or not, each arrival ends in exactly one
    # of served, rejected, failed, cancelled: as many as api's spans, and failed = error spans
    r = system([{"at": 10, "duration": 5, "kind": "crash", "target": "api"}], rate=200,
               hold_worker=hold_worker)
    spans = r.spans[r.spans["component"] == "api"]
    s = r.samples
    last = s[(s["time"] == s["time"].max()) & (s["component"] == "api")].set_index("metric")
    parts = ["served_total", "rejected_total", "failed_total", "cancelled_total"]
    assert last.loc[parts, "value"].sum() == len(spans)
    assert last.loc["failed_total", "value"] == (spans["status"] == "error").sum()
    held = spans[(spans["status"] == "error") & spans["start"].notna()]
    assert len(held) > 0 and np.allclose(held["end"], 10)  # (about 6 await db at any instant)


def test_black_hole_hangs_until_the_callers_timeout() -> None:
    r = system([{"at": 10, "duration": 5, "kind": "crash", "target": "api",
                 "mode": "black_hole"}], call={"to": "api", "timeout": 0.5})
    hit = during(r, 10.001, 14.99)
    assert (hit["status"] == "timeout").all()
    assert np.allclose(hit["latency"], 0.5)


def test_slow_multiplies_service_time() -> None:
    r = system([{"at": 10, "duration": 5, "kind": "slow", "target": "db", "factor": 10}],
               rate=2)
    assert np.allclose(during(r, 10.001, 14.99)["latency"], 0.01 + 0.2)
    assert np.allclose(during(r, 16, 30)["latency"], 0.03)


def test_error_probability() -> None:
    r = system([{"at": 0, "kind": "error", "target": "api", "probability": 0.3}], rate=200,
               duration=50)
    share = (r.requests["status"] == "error").mean()
    assert abs(share - 0.3) < 4 * np.sqrt(0.3 * 0.7 / len(r.requests))


def test_added_latency() -> None:
    r = system([{"at": 5, "duration": 5, "kind": "latency", "target": "db", "added": "100ms"}],
               rate=2)
    assert np.allclose(during(r, 5.001, 9.99)["latency"], 0.13)


def test_partition_fails_exactly_the_calls_that_cross_it() -> None:
    r = run({
        "duration": 30, "drain": 10,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 20}, "target": "api"}},
        "components": {
            "api": {"kind": "service", "workers": 4, "service_time": 0.001,
                    "calls": {"read": ["db", "cache"]}},
            "db": {"kind": "service", "workers": 8, "service_time": 0.001},
            "cache": {"kind": "service", "workers": 8, "service_time": 0.001},
        },
        "faults": [{"at": 10, "duration": 5, "kind": "partition", "between": ["api", "db"]}],
    })
    hit = during(r, 10.001, 14.99)
    assert (hit["status"] == "error").all()
    spans = r.spans[(r.spans["arrival"] > 10.01) & (r.spans["arrival"] < 14.99)]
    assert set(spans["component"].astype(str)) == {"api"}  # nothing reached db, nor cache after
    assert (during(r, 15.1, 30)["status"] == "ok").all()


def test_spike_multiplies_the_arrival_rate() -> None:
    r = system([{"at": 10, "duration": 10, "kind": "spike", "workload": "w", "factor": 4}],
               rate=50, duration=40)
    n_spike, n_before = len(during(r, 10, 20)), len(during(r, 0, 10))
    assert abs(n_spike - 2000) < 4 * np.sqrt(2000)
    assert abs(n_before - 500) < 4 * np.sqrt(500)


def test_one_instance_of_a_group() -> None:
    r = run({
        "duration": 20, "drain": 10,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 40}, "target": "lb"}},
        "components": {
            "lb": {"kind": "load_balancer", "strategy": "round_robin", "backends": ["api"]},
            "api": {"kind": "service", "replicas": 4, "workers": 2, "service_time": 0.01},
        },
        "faults": [{"at": 5, "duration": 10, "kind": "crash", "target": "api[2]"}],
    })
    hit = during(r, 5.001, 14.99)
    assert (hit["status"] == "error").mean() == pytest.approx(0.25, abs=0.05)
    failed = r.spans[r.spans["status"] == "error"]["instance"].astype(str)
    assert set(failed) == {"api[2]"}


def test_crash_fails_requests_in_service_in_the_order_they_started_and_only_once() -> None:
    # four workers, 2.5 s each, one arrival a second: at the crash (3.5 s) three requests are in
    # service (nothing waits). They fail at 3.5 s, their spans in the order they started (the
    # order racing each against the crash would wake them); their timers, still due at 4.5 s
    # and later, must wake nobody: after recovery (4.5 s) every request is served in exactly
    # 2.5 s and no worker is handed back twice
    r = run({
        "duration": 12, "drain": 50,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 1}, "target": "db"}},
        "components": {"db": {"kind": "service", "workers": 4, "service_time": 2.5}},
        "faults": [{"at": 3.5, "duration": 1, "kind": "crash", "target": "db"}],
        "metrics": {"interval": 0.25},
    })
    spans = r.spans
    failed = spans[(spans["status"] == "error") & spans["start"].notna()]
    assert len(failed) == 3
    assert np.allclose(failed["end"], 3.5)
    assert failed["start"].is_monotonic_increasing
    after = spans[spans["arrival"] > 4.5]
    assert len(after) >= 7 and (after["status"] == "ok").all()
    assert np.allclose(after["end"] - after["start"], 2.5)
    busy = r.samples[r.samples["metric"] == "busy"]["value"]
    assert busy.min() >= 0 and busy.max() <= 3


def test_a_request_delayed_on_its_way_in_meets_the_crash_it_arrives_in() -> None:
    # 1 s of added latency from 1 s, one request every 0.25 s, a crash from 5 s to 7 s: the
    # requests sent from 4 s on reach the instance while it is down and are refused then
    # (sent + 1 s), as one sent then would be; none is served by the crashed instance
    r = run({
        "duration": 10, "drain": 20,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 4}, "target": "db"}},
        "components": {"db": {"kind": "service", "workers": 2, "service_time": 0.1}},
        "faults": [{"at": 1, "duration": 8, "kind": "latency", "target": "db", "added": 1.0},
                   {"at": 5, "duration": 2, "kind": "crash", "target": "db"}],
    })
    # (a span's arrival is when the request reached the instance, its latency passed, or,
    # refused, when it was sent)
    spans = r.spans
    failed = spans[spans["status"] == "error"]
    on_the_way = failed[(failed["arrival"] >= 4.0) & (failed["arrival"] < 5.0)]
    assert len(on_the_way) == 4
    assert np.allclose(on_the_way["end"], on_the_way["arrival"] + 1.0)
    served = spans[spans["status"] == "ok"]
    assert not ((served["start"] >= 5.0) & (served["start"] < 7.0)).any()
    assert len(served[(served["start"] >= 4.0) & (served["start"] < 5.0)]) == 4  # sent at 3.x
