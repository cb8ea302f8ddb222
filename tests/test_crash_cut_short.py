"""A crash fails every request a service instance holds at that instant, exactly once, in
every serving mode (``service.cut_short``: hops register what they wait on instead of racing
the crash event).

Random scenarios over the modes that register a wait (plain workers, preemptive priority,
processor sharing, a thread pool's and an event loop's internals), with or without downstream
calls, the worker held or not, and one or two crashes. Whatever the draws, at the crashed
instance: nothing that arrived before a crash ends after it (no hop survives it), every span
that ends at the crash instant without finishing is ``error``, every request has one span
(nothing is failed twice, nothing answered after failing), the ``failed_total`` gauge counts
the error spans, arrivals during the crash are refused at once, and the instance is empty at
the end; also for one of two instances behind a caller that hedges (copies cancelled when
their turn comes, the other instance answering).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from tests.conftest import run

MODES = ["fifo", "preemptive", "processor_sharing", "thread_pool", "event_loop"]


def scenario(mode: str, calls: bool, hold: bool, crashes: list[tuple[float, float]],
             rate: float, hedged: bool = False) -> dict[str, Any]:
    api: dict[str, Any] = {"kind": "service", "workers": 2,
                           "service_time": {"dist": "exponential", "mean": 0.05}}
    if mode == "preemptive":
        api["queue"] = {"discipline": "priority", "preemptive": True}
    elif mode == "processor_sharing":
        api["queue"] = {"discipline": "processor_sharing"}
    elif mode in ("thread_pool", "event_loop"):
        steps: list[Any] = [{"cpu": {"dist": "exponential", "mean": 0.03}}, {"io": "20ms"}]
        if calls:
            steps.append("db")
        steps.append({"cpu": "5ms"})
        internals: dict[str, Any] = {"cores": 2, "threading": mode, "steps": {"*": steps},
                                     "gc": {"every": "150ms", "pause": "10ms"}}
        if mode == "thread_pool":
            internals["threads"] = 4
        api = {"kind": "service", "internals": internals}
    if calls and "internals" not in api:
        api["calls"] = {"*": ["db"]}
        if mode != "processor_sharing":  # (it holds no worker: the option is refused)
            api["hold_worker"] = hold
    components: dict[str, Any] = {
        "api": api, "db": {"kind": "service", "workers": 4,
                           "service_time": {"dist": "exponential", "mean": 0.04}}}
    target = "api"
    if hedged:  # two instances behind a front that hedges; only the first crashes
        api["replicas"] = 2
        components["front"] = {"kind": "service", "workers": 1000, "service_time": 0.0001,
                               "calls": {"*": [{"to": "api", "hedge": {"delay": 0.03,
                                                                       "cancel": True}}]}}
        target = "front"
    return {
        "duration": 3, "drain": 20,
        "workloads": {
            "high": {"arrivals": {"process": "poisson", "rate": rate / 3}, "target": target,
                     "priority": 0},
            "low": {"arrivals": {"process": "poisson", "rate": rate}, "target": target,
                    "priority": 1},
        },
        "components": components,
        "faults": [{"at": at, "duration": d, "kind": "crash",
                    "target": "api[0]" if hedged else "api"} for at, d in crashes],
        "metrics": {"interval": 0.05},
    }


@st.composite
def crash_times(draw: st.DrawFn) -> list[tuple[float, float]]:
    first = draw(st.floats(0.2, 1.2))
    d1 = draw(st.floats(0.05, 0.5))
    out = [(first, d1)]
    if draw(st.booleans()):
        out.append((first + d1 + draw(st.floats(0.05, 0.8)), draw(st.floats(0.05, 0.5))))
    return out


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(mode=st.sampled_from(MODES), calls=st.booleans(), hold=st.booleans(),
       crashes=crash_times(), rate=st.floats(10, 80), seed=st.integers(1, 1000),
       hedged=st.booleans())
def test_a_crash_fails_what_the_instance_holds_once_at_that_instant(
        mode: str, calls: bool, hold: bool, crashes: list[tuple[float, float]], rate: float,
        seed: int, hedged: bool) -> None:
    r = run(scenario(mode, calls, hold, crashes, rate, hedged), seed=seed)
    crashed = "api[0]" if hedged else "api"
    spans = r.spans[r.spans["instance"].astype(str) == crashed]
    status = spans["status"].astype(str)
    # one span per request: nothing failed twice, nothing answered after it failed
    assert not spans["request_id"].duplicated().any()
    assert set(r.requests["status"].astype(str)) <= {"ok", "error"}
    assert set(status) <= {"ok", "error", "cancelled"}
    held_total = 0
    for at, d in crashes:
        before = spans["arrival"] < at
        # no hop survives the crash: whatever arrived before it has ended by then
        assert (spans.loc[before, "end"] <= at).all()
        held = before & (spans["end"] == at)
        assert (status[held] == "error").all()
        held_total += int(held.sum())
        during = (spans["arrival"] > at) & (spans["arrival"] < at + d)
        assert (status[during] == "error").all()  # refused at once
        assert np.array_equal(spans.loc[during, "end"], spans.loc[during, "arrival"])
    target(float(held_total))  # steer the draws towards crashes that find much in service
    s = r.samples[r.samples["instance"].astype(str) == crashed]
    last = s[s["time"] == s["time"].max()].set_index("metric")["value"]
    assert last["failed_total"] == (status == "error").sum()
    assert last["busy"] == 0 and last["in_system"] == 0 and last["queue_length"] == 0
    assert (s.loc[s["metric"] == "busy", "value"] >= 0).all()
    assert (s.loc[s["metric"] == "busy", "value"] <= 2).all()


def test_processor_sharing_below_its_capacity_fails_at_the_crash() -> None:
    # two workers shared, one request every 0.4 s doing 0.3 s: one request at a time, so the
    # shared processor's queue (its len()) is 0 when the crash at 1.0 s finds the request of
    # 0.8 s in service. It fails then, not at its own end (1.1 s), and the busy count, closed
    # by the crash, must not go below 0 when that request would have left.
    r = run({"duration": 3, "drain": 5,
             "workloads": {"w": {"arrivals": {"process": "constant", "rate": 2.5},
                                 "target": "api"}},
             "components": {"api": {"kind": "service", "workers": 2, "service_time": 0.3,
                                    "queue": {"discipline": "processor_sharing"}}},
             "faults": [{"at": 1.0, "duration": 0.5, "kind": "crash", "target": "api"}],
             "metrics": {"interval": 0.05}})
    spans = r.spans.set_index("arrival")
    assert spans.loc[0.8, "status"] == "error" and spans.loc[0.8, "end"] == 1.0
    assert (spans.loc[spans.index < 0.75, "status"] == "ok").all()
    busy = r.samples[r.samples["metric"] == "busy"]["value"]
    assert busy.min() == 0 and busy.max() == 1


def test_a_drain_cut_short_by_its_grace_period_fails_what_is_in_service_then() -> None:
    from tests.test_autoscaling import DRAIN, _run

    # 3 -> 1 replicas at 15 s, 0.5 s of grace, 2 s requests: what a drained instance took in
    # its last 2 s before the drain (arrivals in (13.5, 15]) is still in service at 15.5 s and
    # fails then, once; what it took before that has finished; nothing of it ends later
    r = _run(DRAIN, "components.api.autoscaling.termination_grace_period=0.5s")
    states = r.tables["instance_states"]
    stopped = states[states["state"] == "stopped"]
    assert sorted(stopped["instance"].astype(str)) == ["api[1]", "api[2]"]
    assert (stopped["time"] == 15.5).all()
    for inst in ("api[1]", "api[2]"):
        spans = r.spans[r.spans["instance"].astype(str) == inst]
        assert spans["request_id"].is_unique and (spans["end"] <= 15.5).all()
        held = (spans["arrival"] > 13.5) & (spans["arrival"] <= 15.0)
        assert held.sum() > 0
        assert (spans.loc[held, "status"] == "error").all()
        assert (spans.loc[held, "end"] == 15.5).all()
        assert (spans.loc[~held, "status"] == "ok").all()
