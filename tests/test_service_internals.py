"""A service's ``internals``: cores, a thread pool or event loops, cpu/io/memory/call steps,
memory pressure and GC pauses, each checked against timings computed by hand (constant
steps and constant arrivals: every number below is exact up to float rounding)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from tests.conftest import run

EXACT = 1e-9


def serve(internals: dict[str, Any], rate: float, duration: float, drain: float = 10,
          faults: list[dict[str, Any]] | None = None, **service: Any) -> Any:
    """Constant arrivals at ``k / rate`` (k = 1, 2, ...) to one instance with ``internals``."""
    return run({
        "duration": duration, "drain": drain,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": rate},
                            "target": "svc"}},
        "components": {"svc": {"kind": "service", "internals": internals, **service},
                       "db": {"kind": "service", "workers": 100, "service_time": 0.04}},
        "faults": faults or [],
        "metrics": {"interval": 0.001},
    })


def gauges(r: Any) -> Any:
    """The service's samples (time, metric, value)."""
    s = r.samples
    return s[s["component"] == "svc"]


def latencies(r: Any) -> list[float]:
    return r.requests.sort_values("start")["latency"].tolist()


def loop(cores: int, steps: list[Any], **more: Any) -> dict[str, Any]:
    return {"cores": cores, "threading": "event_loop", "steps": {"*": steps}, **more}


def pool(cores: int, threads: int, steps: list[Any], **more: Any) -> dict[str, Any]:
    return {"cores": cores, "threading": "thread_pool", "threads": threads,
            "steps": {"*": steps}, **more}


# ---- event loop -----------------------------------------------------------------------------
def test_event_loop_cpu_step_blocks_every_request_of_its_loop() -> None:
    # arrivals at 1, 2, 3 ms on one loop, 10 ms of CPU each: they run one after the other
    r = serve(loop(1, [{"cpu": "10ms"}]), rate=1000, duration=0.0035)
    assert latencies(r) == pytest.approx([0.010, 0.019, 0.028], abs=EXACT)


def test_event_loop_cpu_after_io_waits_for_the_cpu_of_others() -> None:
    # A (1 ms): cpu 1-11, io 11-61, cpu 61-71. B (2 ms): waits for the loop until 11, cpu
    # 11-21, io 21-71, then its second cpu step waits for A's (61-71): 71-81
    r = serve(loop(1, [{"cpu": "10ms"}, {"io": "50ms"}, {"cpu": "10ms"}]), rate=1000,
              duration=0.0025)
    assert latencies(r) == pytest.approx([0.070, 0.079], abs=EXACT)


def test_event_loop_io_step_blocks_no_request() -> None:
    # 40 requests 1 ms apart, each 100 ms of I/O: all overlap, none waits
    r = serve(loop(1, [{"io": "100ms"}]), rate=1000, duration=0.0405)
    assert len(r.requests) == 40
    assert np.allclose(r.requests["latency"], 0.100, atol=EXACT, rtol=0)
    # and a call is I/O too: 1 ms of CPU, then 40 ms downstream, every 2 ms
    r = serve(loop(1, [{"cpu": "1ms"}, "db"]), rate=500, duration=0.0405)
    svc = r.spans[r.spans["component"] == "svc"]
    assert len(svc) == 20 and np.allclose(svc["end"] - svc["arrival"], 0.041, atol=EXACT,
                                           rtol=0)


def test_event_loops_take_requests_in_turn() -> None:
    # two loops: requests 1 and 3 on loop 0, 2 and 4 on loop 1 (arrivals 1 ms apart)
    r = serve(loop(2, [{"cpu": "10ms"}]), rate=1000, duration=0.0045)
    assert latencies(r) == pytest.approx([0.010, 0.010, 0.018, 0.018], abs=EXACT)


# ---- thread pool ----------------------------------------------------------------------------
def test_thread_pool_cores_are_time_sliced() -> None:
    # two threads on one core, 10 ms of CPU each, arrivals at 1 and 2 ms: A runs alone for
    # 1 ms, then both at half speed; A's 9 ms left take 18 ms (ends at 20 ms), B then has
    # 1 ms left at full speed (ends at 21 ms): both 19 ms (an event loop gives 10 and 19)
    r = serve(pool(1, 2, [{"cpu": "10ms"}]), rate=1000, duration=0.0025)
    assert latencies(r) == pytest.approx([0.019, 0.019], abs=EXACT)


def test_thread_pool_holds_a_thread_through_io() -> None:
    # one thread, 1 ms CPU + 50 ms I/O: B (2 ms) waits for A's thread until 52 ms
    r = serve(pool(4, 1, [{"cpu": "1ms"}, {"io": "50ms"}]), rate=1000, duration=0.0025)
    assert latencies(r) == pytest.approx([0.051, 0.101], abs=EXACT)
    spans = r.spans.sort_values("arrival")
    assert spans["start"].tolist() == pytest.approx([0.001, 0.052], abs=EXACT)


@pytest.mark.parametrize(("cores", "threads", "cpu", "io", "bound"), [
    (8, 4, 0.010, 0.040, 4 / 0.050),   # threads bind: threads / (cpu + io) = 80/s
    (1, 10, 0.020, 0.030, 1 / 0.020),  # the core binds: cores / cpu = 50/s
])
def test_thread_pool_throughput_is_bounded_by_threads_and_cores(
        cores: int, threads: int, cpu: float, io: float, bound: float) -> None:
    # offered 200/s for 20 s; counted: completions from 5 s to 20 s. Saturated, each thread
    # (or the core) works back to back, so the count is bound x 15 s up to the requests
    # straddling the edges of the window (at most one per thread at each edge)
    r = serve(pool(cores, threads, [{"cpu": cpu}, {"io": io}]), rate=200, duration=20,
              drain=0)
    ends = r.spans["end"].to_numpy()
    done = int(((ends >= 5) & (ends < 20)).sum())
    assert abs(done - bound * 15) <= threads
    s = gauges(r)
    assert s.loc[s["metric"] == "threads_busy", "value"].max() == threads
    assert s.loc[s["metric"] == "busy", "value"].max() <= min(cores, threads)


def test_thread_pool_queue_limit_rejects_when_every_thread_is_busy() -> None:
    # 2 threads + 3 waiting: of 10 arrivals (1 ms apart, 1 s of I/O each), 5 are served
    r = serve(pool(1, 2, [{"io": "1s"}]), rate=1000, duration=0.0105,
              queue={"discipline": "fifo", "limit": 3})
    status = r.requests["status"].astype(str).tolist()
    assert status.count("ok") == 5 and status.count("rejected") == 5


# ---- gauges ---------------------------------------------------------------------------------
def test_gauges_ready_queue_busy_cores_threads_and_memory() -> None:
    # one loop, arrivals at 1, 2, 3 ms with 10 ms of CPU and 1 MB: at 4 ms one step runs,
    # two are ready, 3 MB are held
    r = serve(loop(1, [{"memory": "1MB"}, {"cpu": "10ms"}]), rate=1000, duration=0.0035)
    s = gauges(r)
    at = s[np.isclose(s["time"], 0.004)].set_index("metric")["value"]
    assert at["ready_queue"] == 2 and at["busy"] == 1 and at["workers"] == 1
    assert at["memory_bytes"] == 3e6 and at["in_system"] == 3
    assert "threads" not in at  # a thread pool's gauge
    end = s[s["time"] == s["time"].max()].set_index("metric")["value"]
    assert end["memory_bytes"] == 0 and end["busy"] == 0
    # busy_time_total is core-seconds: 30 ms of CPU
    assert end["busy_time_total"] == pytest.approx(0.030, abs=EXACT)


# ---- memory and GC --------------------------------------------------------------------------
def test_memory_limit_refuses_arrivals_at_or_above_it() -> None:
    # 10 MB each for 1 s, limit 30 MB: the first three fill it, the next seven are refused
    r = serve(pool(1, 10, [{"memory": "10MB"}, {"io": "1s"}],
                   memory={"limit": "30MB", "on_limit": "refuse"}), rate=1000,
              duration=0.0105)
    status = r.requests.sort_values("start")["status"].astype(str).tolist()
    assert status == ["ok"] * 3 + ["rejected"] * 7


def test_memory_limit_slows_cpu_steps_above_it() -> None:
    # A holds 10 MB (under the 15 MB limit): 10 ms; B brings it to 20 MB: 3 x 10 ms
    r = serve(pool(4, 4, [{"memory": "10MB"}, {"cpu": "10ms"}],
                   memory={"limit": "15MB", "on_limit": "slow", "slowdown": 3}),
              rate=1000, duration=0.0025)
    assert latencies(r) == pytest.approx([0.010, 0.030], abs=EXACT)


@pytest.mark.parametrize("threading", ["event_loop", "thread_pool"])
def test_scheduled_gc_pause_stops_cpu_steps_not_io(threading: str) -> None:
    # pauses of 50 ms starting every 300 ms (0.3, 0.6, ... 2.1 s); arrivals at 1 s and 2 s
    # with 250 ms of CPU: the one at 1 s runs 1.0-1.2, stops 1.2-1.25, ends at 1.3; the one
    # at 2 s runs 2.0-2.1, stops 2.1-2.15, ends at 2.3: both 300 ms. I/O is not stopped.
    gc = {"every": "300ms", "pause": "50ms"}
    spec = {"cores": 1, "threading": threading, "gc": gc}
    r = serve({**spec, "steps": {"*": [{"cpu": "250ms"}]}}, rate=1, duration=2.5, drain=1)
    assert latencies(r) == pytest.approx([0.300, 0.300], abs=EXACT)
    r = serve({**spec, "steps": {"*": [{"io": "250ms"}]}}, rate=1, duration=2.5, drain=1)
    assert latencies(r) == pytest.approx([0.250, 0.250], abs=EXACT)
    s = gauges(r)
    total = s.loc[s["metric"] == "gc_pause_time_total", "value"].max()
    assert total == pytest.approx(0.050 * 11, abs=1e-6)  # pauses at 0.3 ... 3.3 s (run: 3.5 s)


def test_allocation_driven_gc_pauses_after_each_allocated_amount() -> None:
    # 1 MB per request, a 5 ms pause each 3 MB: every third request allocates the third MB
    # and waits out the pause before its 10 ms of CPU (arrivals 20 ms apart: no overlap)
    r = serve(loop(1, [{"memory": "1MB"}, {"cpu": "10ms"}],
                   gc={"after_allocated": "3MB", "pause": "5ms"}), rate=50, duration=0.19)
    assert latencies(r) == pytest.approx([0.010, 0.010, 0.015] * 3, abs=EXACT)


# ---- faults and operations ------------------------------------------------------------------
@pytest.mark.parametrize("threading", ["thread_pool", "event_loop"])
def test_a_crash_fails_what_the_instance_holds_and_it_serves_again_after(threading: str
                                                                         ) -> None:
    spec = {"cores": 1, "threading": threading, "steps": {"*": [{"cpu": "5ms"}, {"io": "20ms"}]}}
    r = serve(spec, rate=50, duration=2,
              faults=[{"at": 0.5, "kind": "crash", "target": "svc", "duration": 0.5}])
    req = r.requests
    failed = req[req["status"] != "ok"]
    # the one in service at 0.5 s and the 25 arrivals while down
    assert len(failed) == 26 and failed["start"].between(0.47, 1.0).all()
    after = req[req["start"] > 1.01]
    assert (after["status"] == "ok").all()
    assert np.allclose(after["latency"], 0.025, atol=EXACT, rtol=0)


def test_steps_per_operation_and_speed() -> None:
    r = run({
        "duration": 0.0105, "drain": 10,
        "workloads": {op: {"arrivals": {"process": "constant", "rate": 100}, "target": "svc",
                           "mix": {op: 1}} for op in ("read", "write")},
        "components": {"svc": {"kind": "service", "speed": 2, "internals": {
            "cores": 4, "steps": {"write": [{"cpu": "10ms"}, {"io": "10ms"}],
                                  "*": [{"cpu": "4ms"}]}}}},
    })
    by_op = r.requests.groupby("op", observed=True)["latency"].first()
    assert by_op["write"] == pytest.approx(0.005 + 0.010, abs=EXACT)  # CPU / speed, I/O not
    assert by_op["read"] == pytest.approx(0.002, abs=EXACT)


def test_the_internals_plot_draws_the_gauges() -> None:
    import matplotlib

    matplotlib.use("Agg")
    r = serve(pool(1, 2, [{"memory": "1MB"}, {"cpu": "10ms"}, {"io": "10ms"}]), rate=300,
              duration=0.5)
    assert "service_internals" in r.plot.available()
    ax = r.plot.service_internals()
    labels = {line.get_label() for line in ax.get_lines()}
    assert {"svc ready queue", "svc busy cores", "svc threads busy"} <= labels


def processor_sharing(arrivals: list[float], work: float, cores: int,
                      pauses: Sequence[tuple[float, float]] = ()) -> list[float]:
    """Sojourn times under egalitarian processor sharing over ``cores`` (each job at
    ``min(1, cores / n)``, none during a pause ``[start, end)``), computed event by event,
    independently of the simulator."""
    left: dict[int, float] = {}
    done: dict[int, float] = {}
    edges = sorted(t for p in pauses for t in p)
    now, i = 0.0, 0
    while i < len(arrivals) or left:
        paused = any(a <= now < b for a, b in pauses)
        rate = min(1.0, cores / len(left)) if left and not paused else 0.0
        finish = now + min(left.values()) / rate if rate else np.inf
        arrive = arrivals[i] if i < len(arrivals) else np.inf
        edge = next((t for t in edges if t > now), np.inf)
        t = min(finish, arrive, edge)
        for j in left:
            left[j] -= (t - now) * rate
        now = t
        for j in [j for j, w in left.items() if w <= 1e-12]:
            del left[j]
            done[j] = now - arrivals[j]
        if arrive <= t:
            left[i] = work
            i += 1
    return [done[j] for j in range(len(arrivals))]


def test_thread_pool_is_processor_sharing_through_its_fast_path() -> None:
    # Poisson arrivals at 80% of 2 cores, 10 ms steps, threads enough for all: the cores
    # switch between their fast path (own timers) and sharing hundreds of times; every
    # latency must be the processor-sharing one
    r = run({"duration": 3, "drain": 10,
             "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 160},
                                 "target": "svc"}},
             "components": {"svc": {"kind": "service", "internals": pool(2, 1000, [
                 {"cpu": "10ms"}])}}})
    req = r.requests.sort_values("start")
    assert len(req) > 300
    expected = processor_sharing(req["start"].tolist(), 0.010, 2)
    assert np.allclose(req["latency"], expected, atol=1e-9, rtol=0)
    assert max(expected) > 0.025  # sharing happened (alone a step takes 10 ms)


def test_a_hedged_copy_answered_elsewhere_is_dropped_when_it_gets_a_thread() -> None:
    # one thread, 100 ms of I/O; the client hedges after 30 ms to the other instance, whose
    # copy waits for its thread behind the first request (arrivals 1 ms apart, 2 instances):
    # requests whose copies end up queued behind an answered one are dropped, not served
    r = run({"duration": 0.0205, "drain": 10,
             "workloads": {"w": {"arrivals": {"process": "constant", "rate": 1000},
                                 "target": {"to": "svc", "hedge": {"delay": 0.03}}}},
             "components": {"svc": {"kind": "service", "replicas": 2,
                                    "internals": pool(1, 1, [{"io": "100ms"}])}}})
    status = r.spans["status"].astype(str)
    assert (status == "cancelled").any()
    cancelled = r.spans[status == "cancelled"]
    assert (cancelled["end"] == cancelled["start"]).all()  # dropped at once, no work done
    assert (r.requests["status"] == "ok").all()


@pytest.mark.parametrize("threading", ["thread_pool", "event_loop"])
def test_counters_stay_consistent_through_crashes_pauses_and_refusals(threading: str) -> None:
    # everything at once, overloaded, on two instances: the gauges stay in range at every
    # sample and the instance is empty once the drain has ended
    internals: dict[str, Any] = {
        "cores": 2, "threading": threading,
        "steps": {"*": [{"memory": "1MB"}, {"cpu": {"dist": "exponential", "mean": 0.004}},
                        {"io": {"dist": "exponential", "mean": 0.01}}, "db",
                        {"cpu": "1ms"}]},
        "memory": {"limit": "20MB", "on_limit": "refuse"},
        "gc": {"every": "200ms", "pause": "20ms"}}
    if threading == "thread_pool":
        internals["threads"] = 6
    spec: dict[str, Any] = {"kind": "service", "replicas": 2, "internals": internals}
    if threading == "thread_pool":
        spec["queue"] = {"discipline": "fifo", "limit": 20}
    r = run({"duration": 4, "drain": 5,
             "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 700},
                                 "target": "svc", "deadline": 0.3}},
             "components": {"svc": spec,
                            "db": {"kind": "service", "workers": 50,
                                   "service_time": {"dist": "exponential", "mean": 0.01}}},
             "faults": [{"at": 1.0, "kind": "crash", "target": "svc[0]", "duration": 0.5},
                        {"at": 2.0, "kind": "slow", "target": "svc[1]", "factor": 2,
                         "duration": 1}],
             "metrics": {"interval": 0.01}})
    s = gauges(r)
    wide = s.pivot_table(index=["time", "instance"], columns="metric", values="value",
                         observed=True)
    assert (wide["busy"] <= 2).all() and (wide["busy"] >= 0).all()
    assert (wide["ready_queue"] >= 0).all() and (wide["memory_bytes"] >= 0).all()
    assert (wide["in_system"] >= 0).all()
    if threading == "thread_pool":
        assert (wide["threads_busy"] <= 6).all() and (wide["queue_length"] <= 20).all()
    for _, one in wide.groupby(level="instance", observed=True):
        area = one["busy_time_total"].to_numpy()
        t = one.index.get_level_values("time").to_numpy()
        assert (np.diff(area) >= -1e-9).all() and (np.diff(area) <= 2 * np.diff(t) + 1e-9).all()
    end = wide.xs(wide.index.get_level_values("time").max(), level="time")
    assert (end[["busy", "ready_queue", "memory_bytes", "in_system"]] == 0).all().all()
    statuses = set(r.requests["status"].astype(str))
    assert {"ok", "rejected", "error"} <= statuses and "in_flight" not in statuses


def test_thread_pool_processor_sharing_stops_for_gc_pauses() -> None:
    # as above, with a 20 ms stop-the-world pause every 100 ms: steps on their own timers
    # and shared ones move into the pause together and share again after it; every latency
    # must be the processor-sharing one with no progress during the pauses
    r = run({"duration": 3, "drain": 10,
             "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 130},
                                 "target": "svc"}},
             "components": {"svc": {"kind": "service", "internals": pool(
                 2, 1000, [{"cpu": "10ms"}], gc={"every": "100ms", "pause": "20ms"})}}})
    req = r.requests.sort_values("start")
    assert len(req) > 300
    pauses = [(0.1 * k, 0.1 * k + 0.02) for k in range(1, 140)]
    expected = processor_sharing(req["start"].tolist(), 0.010, 2, pauses)
    assert np.allclose(req["latency"], expected, atol=1e-9, rtol=0)
    assert max(expected) > 0.035  # sharing and a pause happened to one step
