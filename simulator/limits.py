"""The work budget: every limit on the work a scenario or an experiment may ask for.

Each limit is refused up front, before the expensive work it bounds (parsing, building the
topology, running), with a message that names the limit, gives the estimate and the limit, and
says how to get under it. Hard limits guard the simulator itself (a file or an alias
expansion too big to parse, a run too long to finish) and cannot be lifted; soft limits guard
the machine (memory, build time) and ``--force`` (``force=True`` in the library) lets a user
knowingly go beyond them.

How the estimates were set (measured on the 2-core development machine; the README's
"Limits" lists the limits for users):

- ``table_memory``: peak RSS of the quickstart at 20,000 requests/s with 40 api replicas grew
  from 162 MB to 316 MB between 10^5 and 10^6 requests without spans (171 bytes a request) and
  from 180 MB to 492 MB with spans (347 bytes a request, about 3 spans a request: 58 bytes a
  span). The estimate is requests x 171 bytes, plus 58 bytes a request when spans are on.
- ``key_memory``: tracemalloc of 2x10^5 inserted keys: 137 bytes a key in an LRU entry store,
  242 in an LFU one (used for every cache entry), 116 bytes a plain ``dict[int, int]`` entry
  (a database's routing, committed and applied versions); a Zipf key space holds its CDF,
  24 bytes a key at the peak of building it (the ranks, the weights and their cumulative sum).
- ``instances``: building and running 10,000 service instances for 0.01 s took 5.2 s and
  about 12.5 KB each.
- ``ring_tokens``: an md5 ring of 10^6 tokens took 20 s to build (20 us a token).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Bytes of one request in table mode (requests table, its pandas copy): measured, see above.
REQUEST_ROW_BYTES = 171
#: Bytes of one span row (one hop of one request), measured as above.
SPAN_ROW_BYTES = 58
#: Bytes of one cache entry (LFU entry store, the larger of the measured policies).
CACHE_ENTRY_BYTES = 250
#: Bytes of one per-key ``dict`` entry (int key, int value).
KEY_ENTRY_BYTES = 116
#: Bytes a Zipf key space needs per key while its CDF is built.
ZIPF_KEY_BYTES = 24

FORCE_HINT = "or pass --force (force=True) to run it anyway"


@dataclass(frozen=True)
class Limit:
    """One named limit.

    Parameters
    ----------
    name
        How messages and the documentation name it (``instances``, ``table_memory``).
    limit
        The largest estimate accepted.
    unit
        What the estimate counts (``bytes`` are printed in MB/GB).
    advice
        How to get under it.
    soft
        Whether ``--force`` may lift it.
    """

    name: str
    limit: float
    unit: str
    advice: str
    soft: bool = True

    def exceeded(self, estimate: float, force: bool = False) -> bool:
        """Whether ``estimate`` is refused (never, for a soft limit, with ``force``)."""
        if force and self.soft:
            return False
        return not estimate <= self.limit  # a NaN estimate is refused too

    def amount(self, value: float) -> str:
        """``value`` in this limit's unit, for people."""
        if self.unit == "bytes":
            return (f"{value / 2**30:.3g} GiB" if value >= 2**30
                    else f"{value / 2**20:.3g} MiB")
        return f"{value:,.0f} {self.unit}" if value < 1e7 else f"{value:.3g} {self.unit}"

    def message(self, what: str, estimate: float) -> str:
        """``what`` (what the estimate counts), the estimate, the limit it exceeds, and how to
        get under it: ``"instances the run would build: 100,000 instances, over the instances
        limit of 20,000 instances; fewer replicas...; or pass --force ..."``."""
        text = (f"{what}: {self.amount(estimate)}, over the {self.name} limit of "
                f"{self.amount(self.limit)}; {self.advice}")
        return f"{text}; {FORCE_HINT}" if self.soft else text


# --- hard: the parser and the validator ----------------------------------------------------

FILE_SIZE = Limit("file_size", 1 << 20, "bytes", "scenario files are hand-written YAML "
                  "(the largest shipped one is 5 kB); generate fewer components, or use "
                  "replicas", soft=False)
YAML_NODES = Limit("yaml_nodes", 200_000, "values", "is it an alias bomb? every use of an "
                   "alias counts its whole value", soft=False)
YAML_DEPTH = Limit("yaml_depth", 64, "levels", "flatten the nesting", soft=False)
COMPONENTS = Limit("components", 10_000, "components", "model identical components as one "
                   "with replicas", soft=False)
REQUESTS = Limit("requests", 200_000_000, "requests", "lower the rates or the duration, or "
                 "give closed-loop users a think time", soft=False)
SAMPLES = Limit("samples", 20_000_000, "samples", "raise metrics.interval or shorten the run",
                soft=False)

# --- soft: memory and build time -------------------------------------------------------------

INSTANCES = Limit("instances", 20_000, "instances", "fewer replicas, shards, followers or "
                  "consumer concurrency (a few instances with more workers each behave alike)")
RING_TOKENS = Limit("ring_tokens", 1_000_000, "tokens", "fewer vnodes (150 spread keys within "
                    "a few percent) or fewer shards or backends")
KEY_MEMORY = Limit("key_memory", 1 << 30, "bytes", "fewer keys (a Zipf key space's tail "
                   "beyond the cache barely matters), smaller cache capacities")
TABLE_MEMORY = Limit("table_memory", 4 << 30, "bytes", "record metrics: {requests: streaming} "
                     "(counters and histograms, flat memory), or lower the rates or the "
                     "duration")
SWEEP_POINTS = Limit("sweep_points", 10_000, "points", "fewer values per --grid/--vary key, "
                     "or sweep in stages (a coarse grid, then a fine one where it matters)")
REPLICATIONS = Limit("replications", 10_000, "replications", "a few dozen replications give "
                     "intervals within a few percent; replicate --target-rhw adds them until "
                     "a precision is reached")

#: Every limit, by name (the documentation's table is checked against it).
LIMITS = {lim.name: lim for lim in (FILE_SIZE, YAML_NODES, YAML_DEPTH, COMPONENTS, REQUESTS,
                                    SAMPLES, INSTANCES, RING_TOKENS, KEY_MEMORY, TABLE_MEMORY,
                                    SWEEP_POINTS, REPLICATIONS)}


def check_count(limit: Limit, what: str, count: float, force: bool = False) -> None:
    """Raise ``ValueError`` with the limit's message when ``count`` exceeds it (the
    experiments' own limits; the CLI turns it into exit status 2)."""
    if limit.exceeded(count, force):
        raise ValueError(limit.message(what, count))
