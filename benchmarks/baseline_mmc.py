"""Hand-written SimPy baseline: M/M/c queue.

Reference implementation that the ``simulator`` framework is benchmarked against,
written the way a competent SimPy user would write it (see ``baseline_p2c.py`` for the
conventions).

Model
-----
* Clients: a single Poisson arrival process with rate ``rate`` (requests per second).
* Station: ``servers`` identical servers sharing one FIFO queue, modelled as a single
  :class:`simpy.Resource` of capacity ``servers``; service times are exponential with
  mean ``mean_service`` seconds.

The latency (arrival to completion) of every request that completes before ``duration``
is stored. Requests still in flight at ``duration`` are not counted.

Run ``python benchmarks/baseline_mmc.py --help`` for a small command-line driver.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypedDict

import numpy as np
import simpy
from fast_common import CountingEnvironment  # the shared event counter (instrumentation)

BATCH = 4096
"""Number of random variates drawn from numpy per refill."""


class Result(TypedDict):
    """Summary returned by :func:`run`."""

    requests: int
    mean_latency: float
    p99_latency: float
    events: int | None


def _batched(draw: Callable[[int], np.ndarray], size: int = BATCH) -> Iterator[Any]:
    """Yield values one at a time from arrays produced ``size`` at a time by ``draw``."""
    while True:
        yield from draw(size).tolist()


def _summarise(latencies: list[float], events: int | None) -> Result:
    """Build the :class:`Result` dictionary from the stored latencies."""
    if latencies:
        arr = np.asarray(latencies)
        mean, p99 = float(arr.mean()), float(np.percentile(arr, 99))
    else:
        mean = p99 = float("nan")
    return Result(requests=len(latencies), mean_latency=mean, p99_latency=p99, events=events)


def run(
    rate: float,
    duration: float,
    seed: int,
    servers: int = 4,
    mean_service: float = 0.0005,
    *,
    count_events: bool = True,
) -> Result:
    """Simulate the M/M/c queue for ``duration`` seconds of simulated time.

    Parameters
    ----------
    rate : float
        Poisson arrival rate, in requests per second.
    duration : float
        Simulated time to run for, in seconds.
    seed : int
        Seed of the ``numpy.random.Generator(PCG64(seed))`` used for all randomness.
    servers : int, default 4
        Number of servers ``c`` sharing the FIFO queue.
    mean_service : float, default 0.0005
        Mean of the exponential service time, in seconds.
    count_events : bool, default True
        If true, run on a :class:`CountingEnvironment` and report the number of SimPy
        events processed; if false, run on a plain :class:`simpy.Environment` (the path
        to time) and report ``events`` as ``None``.

    Returns
    -------
    Result
        ``{"requests", "mean_latency", "p99_latency", "events"}``: number of completed
        requests, their mean and 99th-percentile latency in seconds, and the number of
        SimPy events processed (``None`` unless ``count_events``).
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    env = CountingEnvironment() if count_events else simpy.Environment()

    station = simpy.Resource(env, capacity=servers)
    latencies: list[float] = []

    interarrivals = _batched(lambda n: rng.exponential(1.0 / rate, n))
    service_times = _batched(lambda n: rng.exponential(mean_service, n))

    def request(env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        start = env.now
        with station.request() as req:
            yield req
            yield env.timeout(next(service_times))
        latencies.append(env.now - start)

    def clients(env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        while True:
            yield env.timeout(next(interarrivals))
            env.process(request(env))

    env.process(clients(env))
    env.run(until=duration)

    events = env.events_processed if isinstance(env, CountingEnvironment) else None
    return _summarise(latencies, events)


def main(argv: list[str] | None = None) -> None:
    """Command-line driver: count events once, then time ``--repeat`` uncounted runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--utilisation", type=float, default=0.7, help="per-server load")
    parser.add_argument("--duration", type=float, default=2.0, help="simulated seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--mean-service", type=float, default=0.0005)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    rate = args.utilisation * args.servers / args.mean_service
    params = (rate, args.duration, args.seed, args.servers, args.mean_service)
    counted = run(*params, count_events=True)
    rps = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = run(*params, count_events=False)
        rps.append(res["requests"] / (time.perf_counter() - t0))
    events = counted["events"]
    assert events is not None
    print(f"rate={rate:g}/s  {counted}")
    print(f"events/request={events / counted['requests']:.3f}")
    print(f"requests/s (wall) median={float(np.median(rps)):,.0f}  runs={[round(r) for r in rps]}")


if __name__ == "__main__":
    main()
