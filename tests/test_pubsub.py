"""Topics: every subscription gets every message and is consumed at its own pace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import simulator
from tests.conftest import run

ROOT = Path(__file__).resolve().parents[1]


def fanout(slow_time: float = 0.5, topic: dict[str, Any] | None = None,
           faults: list[dict[str, Any]] | None = None, rate: float = 4,
           duration: float = 2.1) -> simulator.Results:
    """Publishes at a constant rate to a topic read by a fast, a slow and a third subscriber."""
    return run({
        "duration": duration, "drain": 100,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": rate},
                            "target": "events"}},
        "components": {
            "events": {"kind": "topic", "subscriptions": ["fast", "slow", "mail"],
                       **(topic or {})},
            "fast-reader": {"kind": "consumer", "source": "events.fast", "service_time": 0.01},
            "slow-reader": {"kind": "consumer", "source": "events.slow",
                            "service_time": slow_time},
            "mailer": {"kind": "consumer", "source": "events.mail", "concurrency": 4,
                       "calls": ["smtp"]},
            "smtp": {"kind": "service", "workers": 4, "service_time": 0.05},
        },
        "faults": faults or [],
    })


def rows(r: simulator.Results, queue: str) -> Any:
    m = r.messages
    return m[m["queue"] == queue].reset_index(drop=True)


def test_every_subscription_gets_every_message() -> None:
    r = fanout()
    ids = sorted(r.requests["request_id"])
    assert len(ids) == 8  # 4/s for 2.1 s
    for sub in ("fast", "slow", "mail"):
        m = rows(r, f"events.{sub}")
        assert sorted(m["request_id"]) == ids
        assert (m["status"] == "acked").all() and (m["attempts"] == 1).all()
    assert (r.requests["status"] == "ok").all() and np.allclose(r.requests["latency"], 0)
    spans = r.spans
    assert (spans[spans["component"] == "smtp"]["request_id"].sort_values() == ids).all()


def test_each_subscription_goes_at_its_own_pace() -> None:
    # the slow reader needs 0.5 s a message at 4 messages/s: its lag grows; the fast one's does
    # not, and its timings do not depend on how slow the other reader is
    slow, faster = fanout(slow_time=0.5), fanout(slow_time=0.01)
    fast = rows(slow, "events.fast")
    assert np.allclose(fast["finished"] - fast["enqueued"], 0.01)
    assert fast[["enqueued", "finished"]].equals(rows(faster, "events.fast")[
        ["enqueued", "finished"]])
    lagging = rows(slow, "events.slow")
    assert np.allclose(lagging["finished"] - lagging["enqueued"],
                       [0.5 + k * 0.25 for k in range(8)])  # each waits 0.25 s more
    q = slow.queue_summary().set_index("queue")
    assert q.loc["events.slow", "lag_max"] > q.loc["events.fast", "lag_max"]
    assert q.loc["events.slow", "e2e_p99"] > 10 * q.loc["events.fast", "e2e_p99"]
    lag = slow.samples[(slow.samples["metric"] == "lag") & (slow.samples["time"] == 2.0)]
    by_label = dict(zip(lag["label"].astype(str), lag["value"], strict=True))
    assert by_label["slow"] == 4 and by_label["fast"] == 0  # 7 published, 3 acked by then


def test_a_crashed_subscriber_leaves_the_others_alone() -> None:
    base = fanout()
    crashed = fanout(faults=[{"at": 0.3, "duration": 1.0, "kind": "crash",
                              "target": "mailer"}])
    for sub in ("fast", "slow"):
        assert rows(base, f"events.{sub}").equals(rows(crashed, f"events.{sub}"))
    mail = rows(crashed, "events.mail")
    assert (mail["status"] == "acked").all()
    # messages published while the mailer was down waited for its restart at 1.3 s
    waited = mail[(mail["enqueued"] > 0.3) & (mail["enqueued"] < 1.3)]
    assert len(waited) == 4 and np.allclose(waited["first_delivered"], 1.3)


def test_a_full_subscription_rejects_the_publish_for_all() -> None:
    # room for 2 per subscription; the slow reader holds 2 after the second publish
    r = fanout(topic={"capacity": 2})
    status = r.requests["status"].astype(str).tolist()
    assert status[:2] == ["ok", "ok"] and "rejected" in status
    refused = set(r.requests.loc[r.requests["status"] == "rejected", "request_id"])
    for sub in ("fast", "slow", "mail"):
        m = rows(r, f"events.{sub}")
        assert set(m.loc[m["status"] == "rejected", "request_id"]) == refused
        assert (m.loc[m["status"] != "rejected", "status"] == "acked").all()


def test_a_blocked_publish_waits_for_room_in_every_subscription() -> None:
    r = fanout(topic={"capacity": 1, "overflow": "block"}, rate=10, duration=0.35)
    assert (r.requests["status"] == "ok").all()
    # the slow reader frees its one slot every 0.5 s: publishes are admitted at its pace
    slow = rows(r, "events.slow")
    assert np.allclose(np.diff(slow["enqueued"]), 0.5)
    assert np.allclose(r.requests["latency"].to_numpy()[1:],
                       slow["enqueued"].to_numpy()[1:] - r.requests["start"].to_numpy()[1:])


def test_topic_subscriptions_take_retries_and_dead_letters() -> None:
    r = run({
        "duration": 1.5, "drain": 100,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 1}, "target": "events"}},
        "components": {
            "events": {"kind": "topic", "subscriptions": ["ok", "broken"]},
            "fine": {"kind": "consumer", "source": "events.ok"},
            "failing": {"kind": "consumer", "source": "events.broken", "calls": ["down"],
                        "max_attempts": 2, "backoff": {"type": "constant", "delay": 0.5},
                        "dead_letter": "parked"},
            "down": {"kind": "service"},
            "parked": {"kind": "queue"},
        },
        "faults": [{"at": 0, "kind": "error", "target": "down", "probability": 1}],
    })
    m = r.messages.set_index("queue")
    assert m.loc["events.ok", "status"] == "acked"
    assert m.loc["events.broken", "status"] == "dead_lettered"
    assert m.loc["events.broken", "finished"] == pytest.approx(1.5)
    assert m.loc["parked", "request_id"] == m.loc["events.ok", "request_id"]


def test_pubsub_scenario_shows_each_subscription_at_its_own_pace() -> None:
    r = simulator.simulate(simulator.load_scenario(ROOT / "scenarios" / "pubsub_fanout.yaml"))
    q = r.queue_summary().set_index("queue")
    assert list(q.index) == ["order-events.email", "order-events.analytics",
                             "order-events.shipping"]
    assert (q["published"] == q["published"].iloc[0]).all()  # one copy each
    # under-provisioned, it falls behind
    assert q.loc["order-events.analytics", ["queued", "in_flight"]].sum() > 0
    assert q.loc["order-events.analytics", "lag_end"] > 0
    assert q.loc["order-events.email", "oldest_age_max"] > 10  # crashed for 15 s
    assert q.loc["order-events.email", "redelivered"] > 0  # its in-flight messages came back
    assert (q.loc["order-events.email", ["queued", "in_flight"]] == 0).all()
    assert q.loc["order-events.shipping", "e2e_p99"] < 0.2
    assert q.loc["order-events.shipping", "depth_max"] < 20
