"""Running one simulation: build the topology, run simulated time, collect the tables."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import simpy

from simulator import registry
from simulator.autoscaling.controller import start_autoscalers
from simulator.components.base import BuildContext
from simulator.metrics.recorder import Recorder
from simulator.metrics.streaming import RequestStream, window_detail
from simulator.rng import Streams
from simulator.scenario import Scenario
from simulator.timeline import start_faults
from simulator.topology import build_topology

if TYPE_CHECKING:
    from simulator.results import Results

#: a run that reports progress stops this many times on its way to the end
PROGRESS_STEPS = 200


def simulate(scenario: Scenario, seed: int | None = None, replication: int = 0,
             progress: Callable[[float, float, tuple[int, int]], None] | None = None
             ) -> Results:
    """Run ``scenario`` once and return its result tables.

    Parameters
    ----------
    scenario
        A validated scenario (see :func:`simulator.load_scenario`).
    seed
        Seed of the run; default: the scenario's ``seed``.
    replication
        Replication index; runs with the same seed and different replications are independent.
    progress
        Called as ``progress(now, end, (requests created, bytes held))`` at
        :data:`PROGRESS_STEPS` evenly spaced simulated times (seconds) and at the end. Stopping
        the clock there changes nothing: each stop is an event of its own, taken before the
        events due at that time, which then run in their order (the tables are identical).

    Returns
    -------
    Results
        The tables of the run. Same scenario, seed and replication give identical tables.
    """
    # The tables are pandas frames, but nothing before them needs pandas: importing it here,
    # before the clock starts, keeps `import simulator.engine` (and the component modules,
    # `simulator kinds`) free of it and its import out of ``wall_seconds``.
    from simulator.results import Results

    seed = scenario.seed if seed is None else seed
    wall0 = time.perf_counter()
    env = simpy.Environment()
    metrics = scenario.metrics
    stream = (RequestStream(list(scenario.workloads), scenario.warmup_time, scenario.duration,
                            metrics.latency_error)
              if metrics.requests == "streaming" else None)
    recorder = Recorder(list(scenario.workloads), stream, registry.raw_tables().values())
    if stream is not None:
        recorder.event(0.0, "run", "run", "streamed_window",
                       window_detail(scenario.warmup_time, scenario.duration))
    ctx = BuildContext(env, Streams(seed, replication), recorder, scenario.record_spans(),
                       request_limits=any(w.deadline is not None or w.patience is not None
                                          or w.baulk_at is not None
                                          for w in scenario.workloads.values()))
    with _collector_paused():
        topology = build_topology(scenario, ctx)
    for component in topology.components:
        component.start()
    for client in topology.clients:
        client.start()
    start_faults(scenario, topology.groups, ctx)
    start_autoscalers(scenario, topology.groups, ctx)
    end = scenario.duration + scenario.drain
    env.process(_sample(env, recorder, scenario.metrics.interval, end))
    if progress is None:
        env.run(until=end)
    else:
        for k in range(1, PROGRESS_STEPS + 1):
            env.run(until=end if k == PROGRESS_STEPS else end * k / PROGRESS_STEPS)
            progress(env.now, end, recorder.footprint())
    recorder.sample(end)
    for component in topology.components:
        component.finish()
    recorder.event(end, "run", "run", "end", "")
    return Results(
        scenario=scenario,
        seed=seed,
        replication=replication,
        tables=_tables(recorder),
        wall_seconds=time.perf_counter() - wall0,
    )


def _sample(
    env: simpy.Environment, recorder: Recorder, interval: float, end: float
) -> Generator[simpy.Event, Any, None]:
    k = 0
    while True:
        recorder.sample(env.now)
        k += 1
        at = k * interval  # multiples of the interval, free of accumulated rounding
        if at >= end:
            return
        yield env.timeout(at - env.now)


def _tables(recorder: Recorder) -> dict[str, Any]:
    with _collector_paused():
        return recorder.tables()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Switch Python's cyclic garbage collector off while building the topology or the tables.

    Both create many objects that all stay alive, so the collector's passes over them (each
    full pass walks every tracked object) find nothing to free: on a fleet of 17,790 instances
    they were 45% of a run's CPU time (4.4 -> 2.2 s). The run itself keeps the collector, for
    the short-lived requests and events. Nothing simulated depends on when garbage is collected.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()

