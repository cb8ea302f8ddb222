"""Message queues and consumers: answer at once, capacity and backpressure, concurrency,
acknowledgement, visibility timeout and redelivery, retries with backoff, dead letters, crashes;
and the accounting property: a message is never lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simulator
from simulator.cli import main
from simulator.messages import MESSAGE_STATUS_LABELS
from tests.conftest import run

ROOT = Path(__file__).resolve().parents[1]


def pipeline(consumer: dict[str, Any] | None = None, queue: dict[str, Any] | None = None,
             arrivals: dict[str, Any] | None = None, duration: float = 5.0, drain: float = 100,
             target: str = "orders", faults: list[dict[str, Any]] | None = None,
             interval: float = 1.0, **components: Any) -> simulator.Results:
    """workload -> orders (queue) <- worker (consumer) -> components given."""
    return run({
        "duration": duration, "drain": drain,
        "workloads": {"w": {"arrivals": arrivals or {"process": "constant", "rate": 1},
                            "target": target}},
        "components": {
            "orders": {"kind": "queue", **(queue or {})},
            "worker": {"kind": "consumer", "source": "orders", **(consumer or {})},
            **components,
        },
        "faults": faults or [],
        "metrics": {"interval": interval},
    })


def final(r: simulator.Results, metric: str, component: str = "orders", label: str = ""
          ) -> float:
    s = r.samples
    s = s[(s["metric"] == metric) & (s["component"] == component) & (s["label"] == label)]
    return float(s.sort_values("time")["value"].iloc[-1])


def at(r: simulator.Results, metric: str, t: float, component: str = "orders") -> float:
    s = r.samples
    row = s[(s["metric"] == metric) & (s["component"] == component) & (s["time"] == t)]
    return float(row["value"].iloc[0])


def statuses(r: simulator.Results, queue: str = "orders") -> list[str]:
    m = r.messages
    return m[m["queue"] == queue]["status"].astype(str).tolist()


# ---- producing -----------------------------------------------------------------------------

def test_producer_answers_at_once_while_the_consumer_works() -> None:
    # one message a second (t = 1, 2, 3, 4) through an api; the consumer needs 2 s for each
    r = run({
        "duration": 5, "drain": 100,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 1}, "target": "api"}},
        "components": {
            "api": {"kind": "service", "service_time": 0.01, "calls": {"*": ["orders"]}},
            "orders": {"kind": "queue"},
            "worker": {"kind": "consumer", "source": "orders", "service_time": 2.0},
        },
    })
    assert np.allclose(r.requests["latency"], 0.01)  # the api's own time, nothing more
    m = r.messages
    assert m["status"].astype(str).tolist() == ["acked"] * 4
    assert np.allclose(m["enqueued"], [1.01, 2.01, 3.01, 4.01])
    assert np.allclose(m["first_delivered"], [1.01, 3.01, 5.01, 7.01])  # one at a time
    assert np.allclose(m["finished"], [3.01, 5.01, 7.01, 9.01])
    assert (m["attempts"] == 1).all()
    assert (m["request_id"] == r.requests["request_id"]).all()
    # at t = 4: message 1 in flight (enqueued 2.01), message 2 waiting
    assert at(r, "depth", 4.0) == 1 and at(r, "in_flight", 4.0) == 1
    assert at(r, "lag", 4.0) == 2
    assert at(r, "oldest_age", 4.0) == pytest.approx(4.0 - 2.01)
    assert final(r, "published_total") == 4 and final(r, "acked_total") == 4
    q = r.queue_summary().set_index("queue").loc["orders"]
    assert q["published"] == 4 and q["acked"] == 4 and q["queued"] == q["in_flight"] == 0
    assert q["e2e_mean"] == pytest.approx(np.mean([2, 3, 4, 5]))
    assert q["lag_max"] == 3  # at t = 5: messages 1 (in flight), 2 and 3 (waiting)


def test_a_full_queue_rejects_the_overflow() -> None:
    # 5 publishes 1 ms apart into room for 2 (one in flight + one waiting counts as 2)
    r = pipeline({"service_time": 10.0}, {"capacity": 2},
                 arrivals={"process": "constant", "rate": 1000}, duration=0.0055)
    assert r.requests["status"].astype(str).tolist() == ["ok"] * 2 + ["rejected"] * 3
    assert statuses(r) == ["acked"] * 2 + ["rejected"] * 3
    assert final(r, "rejected_total") == 3
    q = r.queue_summary().set_index("queue").loc["orders"]
    assert q["published"] == 2 and q["rejected"] == 3


def test_block_makes_producers_wait_for_room_in_arrival_order() -> None:
    # room for 1; the consumer takes 1 s per message; publishes at 1, 2, 3 ms
    r = pipeline({"service_time": 1.0}, {"capacity": 1, "overflow": "block"},
                 arrivals={"process": "constant", "rate": 1000}, duration=0.0035)
    assert (r.requests["status"] == "ok").all()
    assert np.allclose(r.requests["latency"], [0.0, 1.0, 2.0], atol=2e-3)
    m = r.messages
    assert m.sort_values("enqueued")["request_id"].tolist() == [0, 1, 2]  # FIFO admission
    assert np.allclose(m["enqueued"], [0.001, 1.001, 2.001])


def test_max_block_gives_up_with_rejected() -> None:
    r = pipeline({"service_time": 1.0},
                 {"capacity": 1, "overflow": "block", "max_block": 0.5},
                 arrivals={"process": "constant", "rate": 1000}, duration=0.0035)
    assert r.requests["status"].astype(str).tolist() == ["ok", "rejected", "rejected"]
    assert np.allclose(r.requests["latency"], [0.0, 0.5, 0.5])


# ---- consuming ------------------------------------------------------------------------------

@pytest.mark.parametrize(("concurrency", "starts"), [(3, [0.001, 0.002, 0.003]),
                                                    (1, [0.001, 1.001, 2.001])])
def test_concurrency_is_messages_in_progress_at_once(concurrency: int,
                                                     starts: list[float]) -> None:
    r = pipeline({"service_time": 1.0, "concurrency": concurrency},
                 arrivals={"process": "constant", "rate": 1000}, duration=0.0035)
    assert np.allclose(r.messages["first_delivered"], starts)
    spans = r.spans[r.spans["component"] == "worker"]
    assert np.allclose(spans["end"] - spans["start"], 1.0)


def test_failures_are_retried_with_exponential_backoff_then_dead_lettered() -> None:
    # payment always fails; 3 deliveries, 1 s then 2 s apart, then the dead-letter queue
    r = pipeline({"calls": ["payment"], "max_attempts": 3, "dead_letter": "dlq",
                  "backoff": {"type": "exponential", "delay": 1.0, "multiplier": 2}},
                 arrivals={"process": "constant", "rate": 1}, duration=1.5,
                 faults=[{"at": 0, "kind": "error", "target": "payment", "probability": 1}],
                 payment={"kind": "service"}, dlq={"kind": "queue"})
    spans = r.spans[r.spans["component"] == "worker"]
    assert np.allclose(spans["start"], [1.0, 2.0, 4.0])
    assert (spans["status"] == "error").all()
    m = r.messages.set_index("queue")
    assert m.loc["orders", "status"] == "dead_lettered"
    assert m.loc["orders", "attempts"] == 3 and m.loc["orders", "finished"] == 4.0
    # the dead letter is a new message in dlq, carrying the same request
    assert m.loc["dlq", "status"] == "queued" and m.loc["dlq", "enqueued"] == 4.0
    assert m.loc["dlq", "request_id"] == m.loc["orders", "request_id"]
    assert final(r, "dead_lettered_total") == 1 and final(r, "redelivered_total") == 2
    assert final(r, "failed_total", "worker") == 3


def test_constant_backoff_and_an_internal_dead_letter_count() -> None:
    r = pipeline({"calls": ["payment"], "max_attempts": 4,
                  "backoff": {"type": "constant", "delay": 0.5}},
                 arrivals={"process": "constant", "rate": 1}, duration=1.5,
                 faults=[{"at": 0, "kind": "error", "target": "payment", "probability": 1}],
                 payment={"kind": "service"})
    spans = r.spans[r.spans["component"] == "worker"]
    assert np.allclose(spans["start"], [1.0, 1.5, 2.0, 2.5])
    assert statuses(r) == ["dead_lettered"]
    assert set(r.messages["queue"]) == {"orders"}  # no dead-letter queue: counted only


def test_a_message_waiting_out_its_backoff_is_delayed_not_in_the_depth() -> None:
    # one message at t = 1; payment fails it at once; it waits 10 s before its second delivery
    r = pipeline({"calls": ["payment"], "max_attempts": 2,
                  "backoff": {"type": "constant", "delay": 10.0}},
                 arrivals={"process": "constant", "rate": 1}, duration=1.5, interval=0.5,
                 faults=[{"at": 0, "kind": "error", "target": "payment", "probability": 1}],
                 payment={"kind": "service"})
    for t in np.arange(1.5, 11.0, 0.5):
        assert (at(r, "delayed", t), at(r, "depth", t), at(r, "in_flight", t)) == (1, 0, 0)
        assert at(r, "lag", t) == 1
    assert at(r, "delayed", 11.5) == 0 and statuses(r) == ["dead_lettered"]
    q = r.measured_over(2.0, 10.0).queue_summary().set_index("queue").loc["orders"]
    assert (q["delayed_mean"], q["delayed_max"], q["depth_mean"], q["depth_max"]) == (1, 1, 0, 0)
    assert q["lag_max"] == 1


def test_success_after_a_retry_is_acknowledged() -> None:
    # payment fails until t = 1.5; the retry at 2.0 succeeds
    r = pipeline({"calls": ["payment"], "backoff": {"type": "constant", "delay": 1.0}},
                 arrivals={"process": "constant", "rate": 1}, duration=1.5,
                 faults=[{"at": 0, "duration": 1.5, "kind": "error", "target": "payment",
                          "probability": 1}],
                 payment={"kind": "service", "service_time": 0.1})
    m = r.messages.iloc[0]
    assert m["status"] == "acked" and m["attempts"] == 2
    assert m["finished"] == pytest.approx(2.1)


def test_visibility_timeout_redelivers_while_the_first_delivery_still_runs() -> None:
    # processing takes 3 s but the message is invisible for only 1 s: it is delivered again at
    # 2 s (a duplicate, on the second worker); at 3 s it is visible again with no idle worker;
    # at 4 s the first worker's ack is stale (ignored) and its next receive finds the message
    # at its limit of 2 deliveries: dead-lettered. The second worker's ack at 5 s is stale too.
    r = pipeline({"service_time": 3.0, "concurrency": 2, "visibility_timeout": 1.0,
                  "max_attempts": 2},
                 arrivals={"process": "constant", "rate": 1}, duration=1.5)
    spans = r.spans[r.spans["component"] == "worker"]
    assert np.allclose(spans["start"], [1.0, 2.0]) and (spans["status"] == "ok").all()
    m = r.messages.iloc[0]
    assert m["status"] == "dead_lettered" and m["attempts"] == 2 and m["finished"] == 4.0
    assert final(r, "expired_total") == 2 and final(r, "stale_acks_total") == 2
    assert final(r, "processed_total", "worker") == 2  # the work was done twice, for nothing


def test_a_near_zero_visibility_timeout_redelivers_once_per_timeout_with_crashes_armed() -> None:
    # One message at 1 s, three workers busy 0.5 s each, visible again 1e-10 s after each
    # delivery, at most 3 deliveries; a crash before the message (0.2-0.3 s) makes the
    # consumer track what each worker holds. Each delivery must wait out its own timeout:
    # worker 1 at 1 s, worker 2 at 1 + 1e-10 s, worker 3 at 1 + 2e-10 s; at 1 + 3e-10 s it is
    # visible again with every worker busy. At 1.5 s worker 1's ack is stale and its next
    # receive finds the message at its limit: dead-lettered. (It used to be redelivered
    # again within the same expiry, inside its 1e-9 s rounding tolerance, and workers read
    # the receipt when they resumed, so two of them held receipt 3: KeyError (0, 3) when the
    # second finished.)
    r = pipeline({"service_time": 0.5, "concurrency": 3, "visibility_timeout": 1e-10,
                  "max_attempts": 3},
                 arrivals={"process": "constant", "rate": 1}, duration=1.5,
                 faults=[{"at": 0.2, "kind": "crash", "target": "worker", "duration": 0.1}])
    spans = r.spans[r.spans["component"] == "worker"].sort_values("start")
    assert np.allclose(spans["start"], [1.0, 1.0 + 1e-10, 1.0 + 2e-10], rtol=0, atol=1e-12)
    assert spans["start"].is_unique and (spans["status"] == "ok").all()
    m = r.messages.iloc[0]
    assert m["status"] == "dead_lettered" and m["attempts"] == 3 and m["finished"] == 1.5
    assert final(r, "expired_total") == 3 and final(r, "stale_acks_total") == 3
    assert final(r, "processed_total", "worker") == 3


def test_a_long_enough_visibility_timeout_gives_one_delivery() -> None:
    r = pipeline({"service_time": 3.0, "concurrency": 2, "visibility_timeout": 5.0},
                 arrivals={"process": "constant", "rate": 1}, duration=1.5)
    assert statuses(r) == ["acked"] and r.messages["attempts"].tolist() == [1]
    assert final(r, "expired_total") == 0


def test_the_latest_receipt_still_acknowledges_until_the_message_is_received_again() -> None:
    # visible again at 2 s, but the only worker is busy until 2.5 s: its ack still counts (SQS)
    r = pipeline({"service_time": 1.5, "visibility_timeout": 1.0},
                 arrivals={"process": "constant", "rate": 1}, duration=1.5)
    m = r.messages.iloc[0]
    assert m["status"] == "acked" and m["attempts"] == 1 and m["finished"] == 2.5
    assert final(r, "expired_total") == 1 and final(r, "stale_acks_total") == 0
    assert final(r, "lag") == 0 and final(r, "depth") == 0


def test_a_crashed_consumer_s_message_comes_back_after_the_visibility_timeout() -> None:
    # worker[0] takes the message at 1 s and crashes at 1.5 s; at 6 s the message is visible
    # again and worker[1] processes it
    r = pipeline({"replicas": 2, "service_time": 2.0, "visibility_timeout": 5.0},
                 arrivals={"process": "constant", "rate": 1}, duration=1.5,
                 faults=[{"at": 1.5, "kind": "crash", "target": "worker[0]"}])
    spans = r.spans[r.spans["component"] == "worker"].sort_values("start")
    assert spans["instance"].astype(str).tolist() == ["worker[0]", "worker[1]"]
    assert spans["status"].astype(str).tolist() == ["error", "ok"]
    assert np.allclose(spans["start"], [1.0, 6.0]) and np.allclose(spans["end"], [1.5, 8.0])
    m = r.messages.iloc[0]
    assert m["status"] == "acked" and m["attempts"] == 2 and m["finished"] == 8.0


def test_a_crashed_consumer_stops_pulling_and_restarts_empty() -> None:
    # the only consumer is down from 0.5 s to 3.5 s: messages published at 1, 2, 3 s wait
    r = pipeline({"service_time": 0.1, "concurrency": 2},
                 arrivals={"process": "constant", "rate": 1}, duration=3.5,
                 faults=[{"at": 0.5, "duration": 3.0, "kind": "crash", "target": "worker"}],
                 interval=0.5)
    m = r.messages
    assert (m["status"] == "acked").all()
    assert np.allclose(m["first_delivered"], [3.5, 3.5, 3.6])  # 2 workers again after restart
    assert at(r, "depth", 2.5) == 2 and at(r, "oldest_age", 2.5) == 1.5


def test_a_partition_loses_acknowledgements_and_receives() -> None:
    # worker and queue are cut apart from 1.5 s to 4.5 s. Message 0 (received at 1 s) is
    # processed by 3 s but its ack is lost; the worker reconnects at 5 s (it retries every 1 s)
    # and takes message 1; message 0 is visible again at 6 s (timeout 5 s) and redone by 9 s.
    r = pipeline({"service_time": 2.0, "visibility_timeout": 5.0},
                 arrivals={"process": "constant", "rate": 1}, duration=2.5,
                 faults=[{"at": 1.5, "duration": 3.0, "kind": "partition",
                          "between": ["worker", "orders"]}])
    m = r.messages
    assert (m["status"] == "acked").all()
    assert m["attempts"].tolist() == [2, 1]
    assert np.allclose(m["first_delivered"], [1.0, 5.0])
    assert np.allclose(m["finished"], [9.0, 7.0])
    assert final(r, "expired_total") == 1


def test_at_most_once_acknowledges_on_receive_and_loses_failed_work() -> None:
    r = pipeline({"calls": ["payment"], "ack": "on_receive"},
                 arrivals={"process": "constant", "rate": 1}, duration=2.5,
                 faults=[{"at": 0, "kind": "error", "target": "payment", "probability": 1}],
                 payment={"kind": "service"})
    m = r.messages
    assert (m["status"] == "acked").all() and (m["attempts"] == 1).all()
    assert (m["finished"] == m["first_delivered"]).all()
    assert final(r, "failed_total", "worker") == 2 and final(r, "redelivered_total") == 0


def test_compensation_runs_after_a_failed_step_only() -> None:
    # reserve, then pay: payment fails from t = 1.5; the failed delivery releases the stock
    r = pipeline({"calls": [{"to": "inventory", "op": "reserve"}, "payment"],
                  "on_failure": [{"to": "inventory", "op": "release"}], "max_attempts": 1},
                 arrivals={"process": "constant", "rate": 1}, duration=2.5,
                 faults=[{"at": 1.5, "kind": "error", "target": "payment", "probability": 1}],
                 inventory={"kind": "service", "service_time": 0.01},
                 payment={"kind": "service", "service_time": 0.01})
    inv = r.spans[r.spans["component"] == "inventory"].sort_values("arrival")
    assert inv["op"].astype(str).tolist() == ["reserve", "reserve", "release"]
    assert statuses(r) == ["acked", "dead_lettered"]


def test_calls_ask_for_the_published_operation_unless_they_name_one() -> None:
    r = run({
        "duration": 1.5, "drain": 10,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 1}, "target": "api",
                            "mix": {"create": 1}}},
        "components": {
            "api": {"kind": "service", "calls": {"create": [{"to": "orders", "op": "ship"}]}},
            "orders": {"kind": "queue"},
            "worker": {"kind": "consumer", "source": "orders",
                       "calls": ["warehouse", {"to": "mailer", "op": "notify"}]},
            "warehouse": {"kind": "service"},
            "mailer": {"kind": "service"},
        },
    })
    ops = r.spans.set_index("component")["op"].astype(str)
    assert ops["warehouse"] == "ship" and ops["mailer"] == "notify" and ops["worker"] == "ship"


def test_consumer_calls_take_their_policies() -> None:
    # a 0.5 s timeout on a 2 s call: every delivery times out, then the message dead-letters
    r = pipeline({"calls": [{"to": "slow", "timeout": 0.5}], "max_attempts": 2,
                  "backoff": {"type": "constant", "delay": 0}},
                 arrivals={"process": "constant", "rate": 1}, duration=1.5,
                 slow={"kind": "service", "service_time": 2.0, "workers": 10})
    spans = r.spans[r.spans["component"] == "worker"]
    assert spans["status"].astype(str).tolist() == ["timeout", "timeout"]
    assert np.allclose(spans["start"], [1.0, 1.5])
    assert statuses(r) == ["dead_lettered"]


def test_consumer_utilisation_is_in_the_summary() -> None:
    # one worker busy 0.5 s of every second
    r = pipeline({"service_time": 0.5}, arrivals={"process": "constant", "rate": 1},
                 duration=10, drain=0)
    row = r.summary().set_index("name").loc["worker"]
    assert row["utilisation"] == pytest.approx(0.45, abs=0.06)
    assert row["p50"] == pytest.approx(0.5)


# ---- validation ------------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "duration": 1,
    "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 1}, "target": "orders"}},
    "components": {
        "orders": {"kind": "queue"},
        "events": {"kind": "topic", "subscriptions": ["email", "audit"]},
        "svc": {"kind": "service"},
        "worker": {"kind": "consumer", "source": "orders"},
    },
}


def problems(**changes: Any) -> list[str]:
    spec: dict[str, Any] = {**BASE, "components": {**BASE["components"]}}
    for key, value in changes.items():
        if key == "target":
            spec["workloads"] = {"w": {**BASE["workloads"]["w"], "target": value}}
        elif value is None:
            spec["components"].pop(key)
        else:
            spec["components"][key] = value
    with pytest.raises(simulator.ScenarioError) as exc:
        simulator.parse_scenario(spec)
    return [f"{p.path}: {p.message}" for p in exc.value.problems]


@pytest.mark.parametrize(("changes", "expected"), [
    ({"target": "worker"}, "workloads.w.target: 'worker' is a consumer, which takes no calls"),
    ({"svc": {"kind": "service", "calls": {"*": ["worker"]}}},
     "components.svc.calls.*.0: 'worker' is a consumer, which takes no calls"),
    ({"worker": {"kind": "consumer", "source": "svc"}},
     "components.worker.source: must be a queue or a topic.subscription; 'svc' is a service"),
    ({"worker": {"kind": "consumer", "source": "events"}},
     "components.worker.source: 'events' is a topic: name one of its subscriptions, as "
     "events.email"),
    ({"worker": {"kind": "consumer", "source": "events.emial"}},
     "components.worker.source: topic 'events' has no subscription 'emial'; did you mean "
     "'email'?"),
    ({"worker": {"kind": "consumer", "source": "orders.email"}},
     "components.worker.source: 'orders' is a queue: it has no subscription 'email'"),
    ({"worker": {"kind": "consumer", "source": "ordrs"}},
     "components.worker.source: unknown component 'ordrs'; did you mean 'orders'?"),
    ({"worker": {"kind": "consumer", "source": "orders", "dead_letter": "svc"}},
     "components.worker.dead_letter: must be a queue; 'svc' is a service"),
    ({"worker": {"kind": "consumer", "source": "orders", "dead_letter": "orders"}},
     "components.worker.dead_letter: must differ from the source"),
    ({"worker": {"kind": "consumer", "source": "orders", "calls": ["worker2"]},
      "worker2": {"kind": "consumer", "source": "orders"}},
     "components.worker.calls.0: 'worker2' is a consumer, which takes no calls"),
    ({"orders": {"kind": "queue", "replicas": 2}},
     "components.orders.replicas: replicas must be 1: a queue is one logical broker"),
    ({"orders": {"kind": "queue", "overflow": "block"}},
     "components.orders.overflow: overflow: block needs a capacity"),
    ({"orders": {"kind": "queue", "capacity": 3, "max_block": "1s"}},
     "components.orders.max_block: max_block applies only with overflow: block"),
    ({"events": {"kind": "topic", "subscriptions": ["a", "a"]}},
     "components.events.subscriptions: subscriptions must be distinct; repeated: a"),
    ({"events": {"kind": "topic", "subscriptions": ["a.b"]}},
     "components.events.subscriptions.0: string should match pattern"),
    ({"worker": {"kind": "consumer", "source": "orders", "visibility_timeout": 0}},
     "components.worker.visibility_timeout: input should be greater than 0"),
    ({"worker": {"kind": "consumer", "source": "orders", "backoff": {"typ": "constant"}}},
     "components.worker.backoff.typ: unknown key 'typ'; did you mean 'type'?"),
])
def test_bad_queue_scenarios_say_what_is_wrong(changes: dict[str, Any], expected: str) -> None:
    found = problems(**changes)
    assert any(p.startswith(expected) for p in found), found


def test_queues_take_no_crash_faults() -> None:
    spec = {**BASE, "faults": [{"at": 0.5, "kind": "crash", "target": "orders"}]}
    with pytest.raises(simulator.ScenarioError, match="a queue does not support crash faults"):
        simulator.parse_scenario(spec)


# ---- the scenario and the command line --------------------------------------------------------

def test_order_pipeline_shows_retries_dead_letters_and_lag() -> None:
    r = simulator.simulate(simulator.load_scenario(ROOT / "scenarios" / "order_pipeline.yaml"))
    summary = r.summary().set_index("name")
    assert summary.loc["shoppers", "p99"] < 0.05  # the api answers at once
    q = r.queue_summary().set_index("queue")
    orders = q.loc["orders"]
    assert orders["redelivered"] > 100 and orders["dead_lettered"] > 50
    assert orders["acked"] > 0.8 * orders["published"]
    assert orders["queued"] == orders["in_flight"] == 0
    assert orders["lag_max"] > 50 and orders["oldest_age_max"] > 5  # the worker crash
    assert orders["e2e_p99"] > orders["e2e_p50"] > 0
    m = r.messages
    dead = m[(m["queue"] == "orders") & (m["status"] == "dead_lettered")]
    parked = m[m["queue"] == "orders-dlq"]
    assert sorted(dead["request_id"]) == sorted(parked["request_id"])
    inventory = r.spans[r.spans["component"] == "inventory"]["op"].astype(str)
    assert (inventory == "release").sum() > 0  # compensations ran
    assert not r.breakers().empty


@pytest.mark.parametrize("name", ["order_pipeline", "pubsub_fanout"])
def test_queue_scenarios_are_deterministic(name: str) -> None:
    s = simulator.load_scenario(ROOT / "scenarios" / f"{name}.yaml", ["duration=30s"])
    a, b = simulator.simulate(s), simulator.simulate(s)
    for table in ("messages", "spans", "samples"):
        pd.testing.assert_frame_equal(a.tables[table], b.tables[table], check_exact=True)
    c = simulator.simulate(s, seed=99)
    assert not a.messages["finished"].equals(c.messages["finished"])


def test_cli_prints_queues_only_when_there_are_some(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "scenarios" / "order_pipeline.yaml"
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "queues (e2e" in out and "orders-dlq" in out and "dead_lettered" in out
    messages = pd.read_parquet(tmp_path / "o" / "messages.parquet")
    assert {"message_id", "queue", "request_id", "status"} <= set(messages.columns)
    assert (tmp_path / "o" / "queue_summary.parquet").is_file()
    assert main(["run", str(ROOT / "scenarios" / "quickstart.yaml"), "--set", "duration=2s",
                 "--set", "warmup=0s"]) == 0
    assert "queues" not in capsys.readouterr().out


# ---- the property: no message is ever lost ------------------------------------------------

@st.composite
def queue_systems(draw: st.DrawFn) -> dict[str, Any]:
    """A workload publishing to a queue or a topic; consumers that fail, time out, crash and
    are cut off from the broker."""
    use_topic = draw(st.booleans())
    capacity = draw(st.one_of(st.none(), st.integers(1, 15)))
    broker: dict[str, Any] = {"kind": "topic", "subscriptions": ["a", "b"]} if use_topic \
        else {"kind": "queue"}
    if capacity is not None:
        broker["capacity"] = capacity
        broker["overflow"] = draw(st.sampled_from(["reject", "block"]))
        if broker["overflow"] == "block" and draw(st.booleans()):
            broker["max_block"] = draw(st.floats(0.01, 0.5))
    sources = ["bus.a", "bus.b"] if use_topic else ["bus", "bus"]
    components: dict[str, Any] = {
        "bus": broker,
        "dlq": {"kind": "queue"},
        "flaky": {"kind": "service", "workers": draw(st.integers(1, 4)),
                  "service_time": {"dist": "exponential",
                                   "mean": draw(st.floats(0.005, 0.1))}},
    }
    faults: list[dict[str, Any]] = [
        {"at": 0, "kind": "error", "target": "flaky", "probability": draw(st.floats(0.05, 0.9))}]
    duration = draw(st.floats(0.5, 2.0))
    dead_letter = draw(st.booleans())
    for i, source in enumerate(sources[: draw(st.integers(1, 2))]):
        replicas = draw(st.integers(1, 2))
        consumer: dict[str, Any] = {
            "kind": "consumer", "source": source, "replicas": replicas,
            "concurrency": draw(st.integers(1, 3)),
            "service_time": {"dist": "exponential", "mean": draw(st.floats(0.001, 0.05))},
            "calls": [{"to": "flaky", **({"timeout": draw(st.floats(0.01, 0.2))}
                                        if draw(st.booleans()) else {})}],
            "ack": draw(st.sampled_from(["on_success", "on_success", "on_receive"])),
            # near-zero timeouts too: redeliveries while every earlier delivery still runs
            "visibility_timeout": draw(st.one_of(st.floats(0.01, 0.5),
                                                 st.sampled_from([1e-12, 1e-9, 1e-6]))),
            "max_attempts": draw(st.integers(1, 4)),
            "backoff": {"type": draw(st.sampled_from(["constant", "exponential"])),
                        "delay": draw(st.floats(0, 0.2)),
                        "jitter": draw(st.sampled_from(["none", "full", "equal"]))},
        }
        if dead_letter:
            consumer["dead_letter"] = "dlq"
        if consumer["ack"] == "on_receive":  # never in flight nor failed: these are refused
            for key in ("visibility_timeout", "backoff"):
                consumer.pop(key, None)
        components[f"c{i}"] = consumer
        for _ in range(draw(st.integers(0, 3))):
            target = f"c{i}[{draw(st.integers(0, replicas - 1))}]" if replicas > 1 else f"c{i}"
            crash: dict[str, Any] = {"at": draw(st.floats(0, 0.99 * duration)), "kind": "crash",
                                     "target": target}
            if draw(st.booleans()):
                crash["duration"] = draw(st.floats(0.01, 1.0))
            faults.append(crash)
        if draw(st.integers(0, 3)) == 0:  # sometimes cut the consumer off from the broker
            faults.append({"at": draw(st.floats(0, 0.99 * duration)), "kind": "partition",
                           "duration": draw(st.floats(0.01, 1.0)), "between": [f"c{i}", "bus"]})
            consumer["reconnect_interval"] = draw(st.floats(0.01, 0.3))
    return {
        "duration": duration, "drain": draw(st.sampled_from([0, 0.3, 100])),
        "workloads": {"w": {"arrivals": {"process": "poisson",
                                         "rate": draw(st.floats(5, 200))},
                            "target": "bus"}},
        "components": components, "faults": faults, "metrics": {"interval": 0.25},
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=queue_systems(), seed=st.integers(0, 2**32))
def test_no_message_is_ever_lost(spec: dict[str, Any], seed: int) -> None:
    r = simulator.simulate(simulator.parse_scenario(spec), seed=seed)
    req, m = r.requests, r.messages
    bus = spec["components"]["bus"]
    names = [f"bus.{s}" for s in bus["subscriptions"]] if bus["kind"] == "topic" else ["bus"]
    ok = set(req.loc[req["status"] == "ok", "request_id"])
    refused = set(req.loc[req["status"] == "rejected", "request_id"])
    assert ok | refused | set(req.loc[req["status"] == "in_flight", "request_id"]) \
        == set(req["request_id"])  # a publish is accepted, refused, or still blocked
    for name in names:
        rows = m[m["queue"] == name]
        status = rows["status"].astype(str)
        # every accepted publish is exactly one message here; every refused one a rejected row
        assert sorted(rows.loc[status != "rejected", "request_id"]) == sorted(ok)
        assert set(rows.loc[status == "rejected", "request_id"]) == refused
        # ...and each message is acked, dead-lettered, or still queued or in flight
        assert set(status) <= {"acked", "dead_lettered", "queued", "in_flight", "rejected"}
        finished = status.isin(["acked", "dead_lettered", "rejected"])
        assert rows.loc[finished, "finished"].notna().all()
        assert rows.loc[~finished, "finished"].isna().all()
        assert ((rows["attempts"] > 0) == rows["first_delivered"].notna()).all()
        consumers = {c: p for c, p in spec["components"].items()
                     if p["kind"] == "consumer" and p["source"] == name}
        if consumers:
            limit = max(p["max_attempts"] for p in consumers.values())
            assert (rows["attempts"] <= limit).all()
        else:
            assert (rows["attempts"] == 0).all()
        if consumers and all(p["ack"] == "on_success" for p in consumers.values()):
            # at-least-once: an acknowledgement is the end of a successful processing
            sp = r.spans[r.spans["component"].isin(list(consumers)) & (r.spans["status"] == "ok")]
            done = set(zip(sp["request_id"], sp["end"], strict=True))
            acked = rows[status == "acked"]
            assert all((rid, t) in done for rid, t in zip(acked["request_id"], acked["finished"],
                                                         strict=True))
        # the gauges agree with the table at the end
        label = name.partition(".")[2]

        def end(metric: str, label: str = label) -> float:
            return final(r, metric, "bus", label)

        assert end("published_total") == (status != "rejected").sum()
        assert end("acked_total") == (status == "acked").sum()
        assert end("dead_lettered_total") == (status == "dead_lettered").sum()
        assert end("rejected_total") == (status == "rejected").sum()
        assert end("in_flight") == (status == "in_flight").sum()
        assert end("depth") + end("delayed") == (status == "queued").sum()
        assert end("lag") == status.isin(["queued", "in_flight"]).sum()
        assert end("redelivered_total") == (rows["attempts"] - 1).clip(lower=0).sum()
        # the summary counts each status under the table's own name (messages enqueued in
        # the measured window: a producer blocked past the arrivals publishes in the drain)
        q = r.queue_summary().set_index("queue").loc[name]
        t0, t1 = r.window
        inside = status[(rows["enqueued"] >= t0) & (rows["enqueued"] < t1)]
        for label in MESSAGE_STATUS_LABELS:
            assert q[label] == (inside == label).sum(), label
        assert q["published"] == q[["acked", "dead_lettered", "queued", "in_flight"]].sum()
    # every dead letter is in dlq, once, if the consumers have one
    dead = m[m["queue"].isin(names) & (m["status"] == "dead_lettered")]
    parked = m.loc[m["queue"] == "dlq", "request_id"]
    uses_dlq = "dead_letter" in spec["components"]["c0"]
    assert sorted(parked) == (sorted(dead["request_id"]) if uses_dlq else [])
    for c in ("c0", "c1"):
        if c in spec["components"]:
            s = r.samples
            busy = s[(s["component"] == c) & (s["metric"] == "busy")]["value"]
            assert (busy >= 0).all()


def test_a_run_with_an_unbounded_queue_reads_back_from_disk(tmp_path: Any) -> None:
    """The manifest holds the scenario with every default filled in; it must validate again."""
    scenario = simulator.load_scenario("scenarios/order_pipeline.yaml",
                                       overrides=["duration=5s", "warmup=1s", "faults=[]"])
    res = simulator.simulate(scenario, seed=2)
    back = simulator.Results.read(res.write(tmp_path / "run"))
    assert back.scenario == res.scenario
    assert back.requests.equals(res.requests)
