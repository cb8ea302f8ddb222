"""How much each trick of the fast M/M/c baseline is worth: three ways to write M/M/8 workers.

``python benchmarks/fast_variants.py`` runs M/M/8 at utilisation 0.9 (14 400/s, Exp(0.5 ms),
34.75 s, about 500 000 customers, seed 1) three ways, the same draws and the same customers
every time, and prints the median in-process CPU time over ``--repeat`` interleaved rounds:

* ``store``: worker processes pulling from a :class:`simpy.Store` (``put`` by the arrival
  process, ``get`` by a worker: 4 events per customer);
* ``hand FIFO + succeed``: a ``deque`` and parked workers woken by ``Event.succeed``, then a
  ``Timeout`` for the service (public API only: 2 events per customer plus 1 when a worker
  was idle);
* ``fast (Handoff)``: ``fast_mmc.py``, the parked worker's event scheduled at the end of its
  service (2 events per customer).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

import fast_mmc
import numpy as np
import simpy
from fast_common import stream, summary


def _setup(rate: float, seed: int, mean: float
           ) -> tuple[simpy.Environment, Callable[[], float], Callable[[], float], list[float],
                      list[float]]:
    """What every variant starts from: an environment, the inter-arrival and service draws (in
    that order from one generator, as ``fast_mmc`` draws them), and the lists of start and end
    times."""
    rng = np.random.Generator(np.random.PCG64(seed))
    gap = stream(lambda n: rng.exponential(1.0 / rate, n)).__next__
    work = stream(lambda n: rng.exponential(mean, n)).__next__
    return simpy.Environment(), gap, work, [], []


def store_run(rate: float, duration: float, seed: int, servers: int = 8, mean: float = 0.0005
              ) -> dict[str, Any]:
    """M/M/c with Store-based workers."""
    env, gap, work, starts, ends = _setup(rate, seed, mean)
    store: simpy.Store = simpy.Store(env)
    timeout = env.timeout
    def worker() -> Generator[simpy.Event, Any, None]:
        get = store.get
        while True:
            start = yield get()
            yield timeout(work())
            starts.append(start)
            ends.append(env.now)
    def clients() -> Generator[simpy.Event, Any, None]:
        put = store.put
        while True:
            yield timeout(gap())
            put(env.now)
    for _ in range(servers):
        env.process(worker())
    env.process(clients())
    env.run(until=duration)
    return summary(starts, ends, 0.0)

def succeed_run(rate: float, duration: float, seed: int, servers: int = 8, mean: float = 0.0005
                ) -> dict[str, Any]:
    """M/M/c with a hand FIFO and workers woken by ``succeed`` (public API only)."""
    env, gap, work, starts, ends = _setup(rate, seed, mean)
    queue: deque[float] = deque()
    idle: list[simpy.Event] = []
    timeout, event = env.timeout, env.event
    def worker() -> Generator[simpy.Event, Any, None]:
        while True:
            if queue:
                start = queue.popleft()
            else:
                ev = event()
                idle.append(ev)
                start = yield ev
            yield timeout(work())
            starts.append(start)
            ends.append(env.now)
    def clients() -> Generator[simpy.Event, Any, None]:
        while True:
            yield timeout(gap())
            if idle:
                idle.pop().succeed(env.now)
            else:
                queue.append(env.now)
    for _ in range(servers):
        env.process(worker())
    env.process(clients())
    env.run(until=duration)
    return summary(starts, ends, 0.0)


def main(argv: list[str] | None = None) -> None:
    """Interleaved rounds of the three variants; print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=34.75)
    args = parser.parse_args(argv)
    cases = {"store": store_run, "hand FIFO + succeed": succeed_run,
             "fast (Handoff)": lambda r, d, s: fast_mmc.run(r, d, s, 8)}
    load0 = os.getloadavg()[0]
    times: dict[str, list[float]] = {k: [] for k in cases}
    res: dict[str, dict[str, Any]] = {}
    for r in range(args.repeat):
        names = list(cases)[r % 3:] + list(cases)[:r % 3]
        for k in names:
            t = time.process_time()
            res[k] = cases[k](14_400.0, args.duration, 1)
            times[k].append(time.process_time() - t)
    for k in cases:
        print(f"{k:22s} {statistics.median(times[k]):.3f} s CPU  {res[k]['requests']} customers  "
              f"mean {res[k]['mean_latency'] * 1e3:.4f} ms")
    print(f"load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
