"""Fast hand-written SimPy baseline: P2C balancer -> services with LRU caches -> sharded DB.

The same system as ``baseline_cachedb.py`` and ``scenarios/cachedb.yaml``, written as fast
as plain SimPy allows (see ``fast_common.py`` for the tricks: worker processes pulling from a
hand FIFO, one event per wait and none for wake-ups, batched draws).

Model
-----
* Clients: one Poisson arrival process at ``rate`` requests per second; each request reads
  one key drawn from a finite Zipf law, P(key k) ∝ (k + 1)^-``zipf_s`` over ``keys`` keys.
* Balancer: power of two choices over ``services`` services: two distinct services drawn
  uniformly, the one with fewer outstanding requests (queued or in service) wins, ties to
  the first drawn (the framework's rule).
* Service: ``workers`` long-lived worker processes sharing one FIFO; exponential work with
  mean ``mean_service``; then a lookup in the service's own LRU cache of ``cache_size``
  keys (an :class:`collections.OrderedDict`; no time). On a miss the worker, still held,
  reads the key from its database shard: ``md5("key-k")`` (first 8 bytes, big-endian)
  mod ``shards``, exactly the framework's ``scheme: mod``; each shard has ``connections``
  connections handed out FIFO, exponential query time with mean ``mean_query``. The key is
  then cached (a put of a key loaded meanwhile by another miss refreshes its recency, as
  the framework's cache does).

Every request that completes before ``duration`` is kept (arrival and completion time).
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict, deque
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy
from fast_common import CountingEnvironment, Handoff, pairs, stream, summary


@functools.lru_cache(maxsize=2)
def zipf_cdf(keys: int, s: float) -> np.ndarray:
    """CDF of the finite Zipf law P(k) ∝ (k + 1)^-s over ``keys`` keys (built once per
    process, as the framework builds its own)."""
    cdf = np.cumsum(np.arange(1, keys + 1, dtype=float) ** -s)
    return cdf / cdf[-1]


@functools.lru_cache(maxsize=2)
def shard_table(keys: int, shards: int) -> list[int]:
    """Shard of every key: md5("key-k"), first 8 bytes big-endian, mod ``shards`` (built
    once per process, as the framework caches its key hashes)."""
    return [int.from_bytes(hashlib.md5(f"key-{k}".encode()).digest()[:8], "big") % shards
            for k in range(keys)]


def run(rate: float, duration: float, seed: int, services: int = 8, workers: int = 4,
        mean_service: float = 0.0005, cache_size: int = 1000, keys: int = 100_000,
        zipf_s: float = 0.9, shards: int = 4, connections: int = 4, mean_query: float = 0.001,
        *, warmup: float = 0.0, count_events: bool = False) -> dict[str, Any]:
    """Simulate ``duration`` seconds; return the summary of the completed requests.

    Parameters
    ----------
    rate, duration, seed
        Arrivals per second, simulated seconds, seed of the one
        ``numpy.random.Generator(PCG64(seed))``.
    services, workers, mean_service
        Services behind the balancer, workers per service, mean work (seconds).
    cache_size, keys, zipf_s
        LRU capacity per service (keys), number of keys, Zipf exponent.
    shards, connections, mean_query
        Database shards, connections per shard, mean query time (seconds).
    warmup
        Requests arriving before this time (seconds) are left out of the ``steady_*``
        figures (both models start with empty caches).
    count_events
        Count the SimPy events processed (slower; untimed runs only).

    Returns
    -------
    dict
        :func:`fast_common.summary` plus ``hit_ratio`` and ``steady_hit_ratio`` (hits per
        completed request) and ``events`` (``None`` unless counted).
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    env = CountingEnvironment() if count_events else simpy.Environment()
    timeout = env.timeout
    cdf = zipf_cdf(keys, zipf_s)
    next_key = stream(lambda n: np.searchsorted(cdf, rng.random(n), side="right")).__next__
    next_gap = stream(lambda n: rng.exponential(1.0 / rate, n)).__next__
    next_work = stream(lambda n: rng.exponential(mean_service, n)).__next__
    next_query = stream(lambda n: rng.exponential(mean_query, n)).__next__
    next_pair = pairs(rng, services).__next__
    shard_of = shard_table(keys, shards)

    queues: list[deque[tuple[int, float]]] = [deque() for _ in range(services)]
    parked: list[list[Handoff]] = [[] for _ in range(services)]
    outstanding = [0] * services
    free = [connections] * shards
    conn_waiters: list[deque[Handoff]] = [deque() for _ in range(shards)]
    starts: list[float] = []
    ends: list[float] = []
    hit_starts: list[float] = []

    def worker(s: int) -> Generator[simpy.Event, Any, None]:
        queue, idle, cache = queues[s], parked[s], caches[s]
        while True:
            if queue:
                key, start = queue.popleft()
                yield timeout(next_work())
            else:
                park = Handoff(env)
                idle.append(park)
                key, start = yield park  # fired when the handed request's work is done
            if key in cache:
                cache.move_to_end(key)
                hit_starts.append(start)
            else:
                shard = shard_of[key]
                if free[shard]:
                    free[shard] -= 1
                    yield timeout(next_query())
                else:
                    wait = Handoff(env)
                    conn_waiters[shard].append(wait)
                    yield wait  # fired when the handed connection's query is done
                waiters = conn_waiters[shard]
                if waiters:  # hand the connection on: the waiter's query starts now
                    waiters.popleft().fire_after(next_query())
                else:
                    free[shard] += 1
                if key in cache:  # loaded meanwhile by a concurrent miss: a put is a use
                    cache.move_to_end(key)
                else:
                    cache[key] = None
                    if len(cache) > cache_size:
                        cache.popitem(last=False)
            outstanding[s] -= 1
            starts.append(start)
            ends.append(env.now)

    def clients() -> Generator[simpy.Event, Any, None]:
        while True:
            yield timeout(next_gap())
            a, b = next_pair()
            s = b if outstanding[b] < outstanding[a] else a
            outstanding[s] += 1
            idle = parked[s]
            if idle:
                idle.pop().fire_after(next_work(), (next_key(), env.now))
            else:
                queues[s].append((next_key(), env.now))

    caches: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(services)]
    for s in range(services):
        for _ in range(workers):
            env.process(worker(s))
    env.process(clients())
    env.run(until=duration)

    out: dict[str, Any] = summary(starts, ends, warmup)
    hits = np.asarray(hit_starts)
    out["hit_ratio"] = len(hits) / out["requests"] if out["requests"] else float("nan")
    out["steady_hit_ratio"] = (int((hits >= warmup).sum()) / out["steady_requests"]
                               if out["steady_requests"] else float("nan"))
    out["events"] = env.events_processed if isinstance(env, CountingEnvironment) else None
    return out
