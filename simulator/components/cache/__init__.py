"""A cache in front of a backing store: eviction policies, TTLs, the caching patterns of the
seed document, stampede protection, tiers, and measured staleness.

Patterns (``pattern``), as the seed document describes them:

``cache_aside``
    The application does the work; this component models the application's cache logic as it
    would run it. A read looks the key up (``hit_latency`` if found, ``miss_latency`` if not);
    on a miss the application reads the backing store, then stores the value in the cache with
    a ``set`` round trip (``hit_latency``) and answers: miss latency = ``miss_latency`` +
    store read + ``hit_latency``. The value is in the cache when the ``set`` round trip ends.
    A write goes to the store, then deletes the key (a ``del`` round trip, ``hit_latency``);
    the key is gone when that round trip ends. A read that loaded an old version may put it
    back after a concurrent write deleted the key: the classic cache-aside race, measured.
``read_through``
    Reads go to the cache, which loads a missing key from the store itself and answers: miss
    latency = ``miss_latency`` + store read. Writes pass through the cache to the store
    (``hit_latency`` + store write) and the key is invalidated when the store has committed.
``write_through``
    Reads as ``read_through``; a write goes through the cache to the store and, once committed,
    the cache holds the new version (write-allocate): ``hit_latency`` + store write.
``write_behind``
    Reads as ``read_through``; a write updates the cache and is answered after
    ``hit_latency``; the store gets it later. A flush round starts ``flush_interval`` after the
    previous one ended, or as soon as ``flush_batch`` keys are waiting, and writes the keys
    waiting when it starts, oldest first, in batches of ``flush_batch``: one store ``write``
    call per key (writes to the same key since its last flush are coalesced into one), the
    calls of a batch concurrently, batch after batch; writes arriving meanwhile wait for the
    next round. Writes not yet handed to the store when the cache crashes
    are lost, and counted (``lost_writes_total``, and an event).

Versions: the store keeps a committed version per key and sets ``request.version`` on the reads
it serves; a cache keeps the version it was filled with. Every read the cache answers is checked
against the truth, the backing's ``committed_version(key)`` at that instant: an older version is
a stale read (``request.stale``, ``stale_reads_total``). A backing without versions (a plain
``service``) is treated as version 0 for every key: nothing is ever stale.

Modelling assumptions: a cache instance is a pure delay with unlimited concurrency (no queue,
no workers); capacity is counted in entries (all of the same size); a write-behind cache holds
the newest value of the keys it has not yet flushed, with version ``committed + 1`` (the
version the store will have after the flush), and a read that misses on such a key (evicted
meanwhile) loads the store's older value, as real write-behind caches do.
"""

from simulator.components.cache.params import CacheParams, FlushEvent
from simulator.kind import DerivedTable, Kind, Plot

_TABLES = "simulator.components.cache.tables"
_PLOTS = "simulator.components.cache.plots"

KIND = Kind(
    name="cache",
    params=CacheParams,
    backlog=("pending_writes",),
    component="simulator.components.cache.cache:Cache",
    shape="box",
    colour="#fff3e0",
    faults=frozenset({"crash"}),
    events=(FlushEvent,),
    derived=(DerivedTable(
        "cache_summary", f"{_TABLES}:cache_summary",
        "caches (measured window; workload rows: the first cache on each request's path)",
        format=f"{_TABLES}:format_cache_summary"),),
    spans_regions=False,  # shards and local tiers are routed without regard to regions
    plots=(Plot("hit_ratio_over_time", f"{_PLOTS}:hit_ratio_over_time",
                "Cache hit ratio per time window.", applies=f"{_PLOTS}:has_cache_results"),),
)
