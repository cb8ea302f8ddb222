"""Hand-written SimPy baseline: P2C balancer -> services -> per-service LRU cache -> sharded DB.

Reference implementation that the ``simulator`` framework is benchmarked against, written
the way a competent SimPy user would write it (see ``baseline_p2c.py`` for the conventions:
generator processes, one :class:`simpy.Resource` per server pool, numpy variates drawn in
batches). It is neither slowed down nor micro-optimised.

Model
-----
* Clients: one Poisson arrival process with rate ``rate`` (requests per second); each
  request reads one key drawn from a finite Zipf(``zipf_s``) law over ``keys`` keys
  (key 0 the most popular), by inverse CDF on batches of uniforms.
* Balancer: power of two choices over ``services`` services (two distinct candidates
  drawn uniformly, fewer outstanding requests wins, random tie-break).
* Services: a :class:`simpy.Resource` of ``workers`` per service, exponential service time
  with mean ``mean_service``. After its local work the worker looks the key up in the
  service's own LRU cache (``cache_size`` keys, an :class:`collections.OrderedDict`; a
  lookup takes no simulated time). On a miss it reads the key from the database and then
  puts it in the cache (evicting the least recently used key when full); concurrent misses
  of one key each read the database (no coalescing), and a put of a key already there
  (loaded meanwhile by another miss) makes it the most recently used. The worker is held
  during the database read (a thread-per-request server).
* Database: ``shards`` shards, the key's shard is ``hash(key) % shards``, i.e. ``key %
  shards`` (Python hashes an int to itself); each shard is a :class:`simpy.Resource` of
  ``connections`` with an exponential query time of mean ``mean_query``. (The framework's
  ``scheme: mod`` hashes with md5 instead: other keys share a shard, with no measurable
  effect on latency; see ``benchmarks/README.md``.)

The latency (arrival to completion) of every request that completes before ``duration`` is
stored. Requests still in flight at ``duration`` are not counted.

Run ``python benchmarks/baseline_cachedb.py --help`` for a small command-line driver.
"""

from __future__ import annotations

import argparse
import time
from collections import OrderedDict
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
    hit_ratio: float
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


def zipf_cdf(keys: int, s: float) -> np.ndarray:
    """CDF of the finite Zipf law P(k) ∝ (k + 1)^-s over ``keys`` keys."""
    cdf = np.cumsum(np.arange(1, keys + 1, dtype=float) ** -s)
    return cdf / cdf[-1]


def run(
    rate: float,
    duration: float,
    seed: int,
    services: int = 8,
    workers: int = 4,
    mean_service: float = 0.0005,
    cache_size: int = 1000,
    keys: int = 100_000,
    zipf_s: float = 0.9,
    shards: int = 4,
    connections: int = 4,
    mean_query: float = 0.001,
    *,
    count_events: bool = True,
) -> Result:
    """Simulate the system for ``duration`` simulated seconds.

    Parameters
    ----------
    rate : float
        Poisson arrival rate, requests per second.
    duration : float
        Simulated seconds.
    seed : int
        Seed of the ``numpy.random.Generator(PCG64(seed))`` used for all randomness.
    services, workers, mean_service
        Services behind the balancer, workers per service, mean service time (seconds).
    cache_size, keys, zipf_s
        LRU capacity per service (keys), number of keys, Zipf exponent.
    shards, connections, mean_query
        Database shards, connections per shard, mean query time (seconds).
    count_events : bool, default True
        Run on a :class:`CountingEnvironment` and report the SimPy events processed;
        otherwise a plain :class:`simpy.Environment` (the path to time), ``events`` None.

    Returns
    -------
    Result
        Completed requests, their mean and p99 latency (seconds), the cache hit ratio over
        all lookups, and the events processed (``None`` unless ``count_events``).
    """
    if services < 2:
        raise ValueError("power of two choices needs at least 2 services")
    rng = np.random.Generator(np.random.PCG64(seed))
    env = CountingEnvironment() if count_events else simpy.Environment()

    servers = [simpy.Resource(env, capacity=workers) for _ in range(services)]
    outstanding = [0] * services
    caches: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(services)]
    db = [simpy.Resource(env, capacity=connections) for _ in range(shards)]
    latencies: list[float] = []
    lookups = [0, 0]  # hits, misses

    cdf = zipf_cdf(keys, zipf_s)
    key_draws = _batched(lambda n: np.searchsorted(cdf, rng.random(n), side="right"))
    interarrivals = _batched(lambda n: rng.exponential(1.0 / rate, n))
    service_times = _batched(lambda n: rng.exponential(mean_service, n))
    query_times = _batched(lambda n: rng.exponential(mean_query, n))
    candidates = _pairs(rng, services)

    def request(env: simpy.Environment, key: int) -> Generator[simpy.Event, Any, None]:
        start = env.now
        a, b = next(candidates)
        chosen = b if outstanding[b] < outstanding[a] else a  # random order: fair tie-break
        outstanding[chosen] += 1
        with servers[chosen].request() as req:
            yield req
            yield env.timeout(next(service_times))
            cache = caches[chosen]
            if key in cache:
                cache.move_to_end(key)
                lookups[0] += 1
            else:
                lookups[1] += 1
                with db[hash(key) % shards].request() as conn:
                    yield conn
                    yield env.timeout(next(query_times))
                if key in cache:  # loaded meanwhile by a concurrent miss: a put is a use
                    cache.move_to_end(key)
                else:
                    cache[key] = None
                    if len(cache) > cache_size:
                        cache.popitem(last=False)
        outstanding[chosen] -= 1
        latencies.append(env.now - start)

    def clients(env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        while True:
            yield env.timeout(next(interarrivals))
            env.process(request(env, next(key_draws)))

    env.process(clients(env))
    env.run(until=duration)

    events = env.events_processed if isinstance(env, CountingEnvironment) else None
    if latencies:
        arr = np.asarray(latencies)
        mean, p99 = float(arr.mean()), float(np.percentile(arr, 99))
    else:
        mean = p99 = float("nan")
    total = lookups[0] + lookups[1]
    return Result(requests=len(latencies), mean_latency=mean, p99_latency=p99,
                  hit_ratio=lookups[0] / total if total else float("nan"), events=events)


def main(argv: list[str] | None = None) -> None:
    """Command-line driver: count events once, then time ``--repeat`` uncounted runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=20_000.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=2.0, help="simulated seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    counted = run(args.rate, args.duration, args.seed, count_events=True)
    rps = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = run(args.rate, args.duration, args.seed, count_events=False)
        rps.append(res["requests"] / (time.perf_counter() - t0))
    events = counted["events"]
    assert events is not None
    print(f"rate={args.rate:g}/s  {counted}")
    print(f"events/request={events / counted['requests']:.3f}")
    print(f"requests/s (wall) median={float(np.median(rps)):,.0f}  runs={[round(r) for r in rps]}")


if __name__ == "__main__":
    main()
