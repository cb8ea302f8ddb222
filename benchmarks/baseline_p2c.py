"""Hand-written SimPy baseline: Poisson clients -> power-of-two-choices balancer -> services.

This is the reference implementation that the ``simulator`` framework is benchmarked
against. It is written the way a competent SimPy user would write it: plain generator
processes, one :class:`simpy.Resource` per service, random numbers drawn from numpy in
batches. It is deliberately neither slowed down nor micro-optimised.

Model
-----
* Clients: a single Poisson arrival process with rate ``rate`` (requests per second).
* Balancer: power of two choices. For every request two *distinct* services are drawn
  uniformly at random; the request joins the one with fewer outstanding requests
  (queued + in service), ties broken at random.
* Services: ``services`` independent :class:`simpy.Resource` objects with ``workers``
  capacity each and a FIFO queue; service times are exponential with mean
  ``mean_service`` seconds.

The latency (arrival to completion) of every request that completes before ``duration``
is stored. Requests still in flight at ``duration`` are not counted.

Run ``python benchmarks/baseline_p2c.py --help`` for a small command-line driver.
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


def _pairs(rng: np.random.Generator, n: int, size: int = BATCH) -> Iterator[tuple[int, int]]:
    """Yield ordered pairs of distinct integers drawn uniformly from ``range(n)``."""
    while True:
        first = rng.integers(0, n, size)
        second = rng.integers(0, n - 1, size)
        second += second >= first  # skip ``first``: uniform over the other n - 1
        yield from zip(first.tolist(), second.tolist(), strict=True)


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
    services: int = 8,
    workers: int = 4,
    mean_service: float = 0.0005,
    *,
    count_events: bool = True,
) -> Result:
    """Simulate the P2C system for ``duration`` seconds of simulated time.

    Parameters
    ----------
    rate : float
        Poisson arrival rate of client requests, in requests per second.
    duration : float
        Simulated time to run for, in seconds.
    seed : int
        Seed of the ``numpy.random.Generator(PCG64(seed))`` used for all randomness.
    services : int, default 8
        Number of services behind the balancer (at least 2).
    workers : int, default 4
        Capacity (concurrent requests) of each service.
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
    if services < 2:
        raise ValueError("power of two choices needs at least 2 services")
    rng = np.random.Generator(np.random.PCG64(seed))
    env = CountingEnvironment() if count_events else simpy.Environment()

    resources = [simpy.Resource(env, capacity=workers) for _ in range(services)]
    outstanding = [0] * services
    latencies: list[float] = []

    interarrivals = _batched(lambda n: rng.exponential(1.0 / rate, n))
    service_times = _batched(lambda n: rng.exponential(mean_service, n))
    candidates = _pairs(rng, services)

    def request(env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        start = env.now
        a, b = next(candidates)
        # The pair is in uniformly random order, so taking ``a`` on a tie is an
        # unbiased random tie-break.
        chosen = b if outstanding[b] < outstanding[a] else a
        outstanding[chosen] += 1
        with resources[chosen].request() as req:
            yield req
            yield env.timeout(next(service_times))
        outstanding[chosen] -= 1
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
    parser.add_argument("--utilisation", type=float, default=0.7, help="per-worker load")
    parser.add_argument("--duration", type=float, default=2.0, help="simulated seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--services", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--mean-service", type=float, default=0.0005)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    rate = args.utilisation * args.services * args.workers / args.mean_service
    params = (rate, args.duration, args.seed, args.services, args.workers, args.mean_service)
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
