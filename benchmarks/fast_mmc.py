"""Fast hand-written SimPy baseline: an M/M/c queue.

The same system as ``baseline_mmc.py`` and ``scenarios/mmc8.yaml``, written as fast as plain
SimPy allows (see ``fast_common.py``): ``servers`` long-lived worker processes pull
customers from one hand FIFO; one process generates the Poisson arrivals; an arrival that
finds a parked worker schedules that worker's wake-up at the end of its service, so every
customer costs two events (its arrival and its service end).

Every customer that completes before ``duration`` is kept (arrival and completion time).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy
from fast_common import CountingEnvironment, Handoff, stream, summary


def run(rate: float, duration: float, seed: int, servers: int = 8,
        mean_service: float = 0.0005, *, warmup: float = 0.0,
        count_events: bool = False) -> dict[str, Any]:
    """Simulate ``duration`` seconds of M/M/``servers``; return the completed customers'
    summary (:func:`fast_common.summary`) and ``events`` (``None`` unless counted).

    Parameters
    ----------
    rate, duration, seed
        Arrivals per second, simulated seconds, seed of the one
        ``numpy.random.Generator(PCG64(seed))``.
    servers, mean_service
        c, and the mean of the exponential service time (seconds).
    warmup
        Customers arriving before this time (seconds) are left out of ``steady_*``.
    count_events
        Count the SimPy events processed (slower; untimed runs only).
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    env = CountingEnvironment() if count_events else simpy.Environment()
    timeout = env.timeout
    next_gap = stream(lambda n: rng.exponential(1.0 / rate, n)).__next__
    next_work = stream(lambda n: rng.exponential(mean_service, n)).__next__
    queue: deque[float] = deque()
    idle: list[Handoff] = []
    starts: list[float] = []
    ends: list[float] = []

    def worker() -> Generator[simpy.Event, Any, None]:
        while True:
            if queue:
                start = queue.popleft()
                yield timeout(next_work())
            else:
                park = Handoff(env)
                idle.append(park)
                start = yield park  # fired when the handed customer's service is done
            starts.append(start)
            ends.append(env.now)

    def clients() -> Generator[simpy.Event, Any, None]:
        while True:
            yield timeout(next_gap())
            if idle:
                idle.pop().fire_after(next_work(), env.now)
            else:
                queue.append(env.now)

    for _ in range(servers):
        env.process(worker())
    env.process(clients())
    env.run(until=duration)
    out: dict[str, Any] = summary(starts, ends, warmup)
    out["events"] = env.events_processed if isinstance(env, CountingEnvironment) else None
    return out
