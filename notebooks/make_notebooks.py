"""Write the notebooks that are generated from code: ``python notebooks/make_notebooks.py``.

Each notebook is a list of cells here, written with nbformat. Edit the cells here, not the
``.ipynb`` files, and run ``make notebooks``: it runs this script, then ``execute_notebooks.py``,
which executes every notebook and stores its outputs (the test suite checks that they are fresh,
and executes every notebook with ``SIMULATOR_NOTEBOOK_SHORT=1``). A notebook whose cells are
unchanged is left as it is, outputs included. ``quickstart.ipynb`` is kept by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
from pathlib import Path
import os

import matplotlib.pyplot as plt
import pandas as pd

import simulator
from simulator.analysis.plots import comparison_chart, latency_cdf_overlay

plt.rcParams["figure.dpi"] = 80  # figures are stored in the notebook: keep them small
# the suite runs notebooks with short durations; by default this runs the files as written
ROOT = Path.cwd() if (Path.cwd() / "scenarios").exists() else Path.cwd().parent
SHORT = os.environ.get("SIMULATOR_NOTEBOOK_SHORT") == "1"
'''

LOAD_BALANCING = [
    new_markdown_cell('''\
# Load balancing on a heterogeneous fleet

Eight `api` instances of three hardware generations sit behind one load balancer: two new
machines twice as fast as the baseline, four baseline machines and two old ones at half speed
(`speed: [2, 2, 1, 1, 1, 1, 0.5, 0.5]`). Each serves one request at a time, 10 ms of work on
average at speed 1, so the fleet can serve about 900 requests/s; the clients send 720/s (80%).

Which strategy should the balancer use? The scenario is `scenarios/lb_strategies.yaml`.'''),
    new_code_cell(SETUP + '''
PATH = ROOT / "scenarios" / "lb_strategies.yaml"
overrides = ["duration=20s", "warmup=4s"] if SHORT else []
base = simulator.load_scenario(PATH, overrides)
speeds = base.components["api"].speed
print(base.description)
print("speeds:", speeds)'''),
    new_markdown_cell('''\
## One run of each strategy

Every run uses the same seed, so every strategy sees exactly the same requests (arrival times
and amounts of work): the differences below come from the routing alone.
`weighted_round_robin` is given the machines' speeds as weights: it knows the fleet, the others
learn from what they see.'''),
    new_code_cell('''\
STRATEGIES = {
    "round_robin": ["components.lb.strategy=round_robin"],
    "random": ["components.lb.strategy=random"],
    "weighted_round_robin": ["components.lb.strategy=weighted_round_robin",
                             f"components.lb.weights={list(speeds)}"],
    "least_connections": ["components.lb.strategy=least_connections"],
    "power_of_two": ["components.lb.strategy=power_of_two"],
    "peak_ewma": ["components.lb.strategy=peak_ewma"],
}
runs = {name: simulator.simulate(simulator.load_scenario(PATH, [*overrides, *extra]))
        for name, extra in STRATEGIES.items()}

rows = {name: r.summary().set_index("name").loc["users"] for name, r in runs.items()}
table = pd.DataFrame(rows).T[["throughput", "mean", "p50", "p99", "p999", "in_flight"]]
table = table.astype(float)
table[["mean", "p50", "p99", "p999"]] *= 1e3  # milliseconds
table.sort_values("p99").round(1)'''),
    new_markdown_cell('''\
Round robin and random send every machine an eighth of the traffic: 90 requests/s to the old
machines, which can serve only 50/s. Their queues grow without bound for as long as the run
lasts (requests still queued at the end are `in_flight`), and the tail is made of those queues.
The latency CDFs show it: the blind strategies have a long flat step where a slice of the
requests waited in a slow machine's queue. The right-hand plot (1 - CDF, log scale) spreads out
the tail.'''),
    new_code_cell('''\
fig, (left, right) = plt.subplots(1, 2, figsize=(14, 4.5))
latency_cdf_overlay(runs, ax=left)
latency_cdf_overlay(runs, ax=right, complementary=True)
left.get_legend().remove()
fig.tight_layout()'''),
    new_markdown_cell('''\
## Where the requests went

The share of requests each backend received (measured window), next to its share of the fleet's
capacity. Strategies that look at outstanding requests (least connections, power of two choices,
peak EWMA) discover the speeds by themselves.'''),
    new_code_cell('''\
shares = pd.DataFrame({name: r.backend_share().set_index("backend")["share"]
                       for name, r in runs.items()})
shares.insert(0, "capacity", pd.Series(speeds, index=shares.index) / sum(speeds))
ax = (shares * 100).plot.bar(figsize=(12, 4), width=0.85)
ax.set_ylabel("share of requests (%)")
ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
(shares * 100).round(1)'''),
    new_code_cell('''\
fig, axes = plt.subplots(1, 2, figsize=(15, 4))
runs["round_robin"].plot.latency_over_time(ax=axes[0])
runs["power_of_two"].plot.backend_share_over_time(ax=axes[1])
fig.tight_layout()'''),
    new_markdown_cell('''\
Left: under round robin the p95 and p99 keep growing for as long as the run lasts, because the
slow machines' queues never drain (the median is served by the machines that keep up). Right:
power of two choices settles on its shares within a second and keeps them.

## Is the difference real? Replications with confidence intervals

One run is one sample. `simulator.experiment.compare` runs each strategy several times with
independent seeds (the same seeds for every strategy: common random numbers) and reports each
strategy's mean with a Student-t confidence interval, and its difference from a baseline paired
replication by replication, which is much narrower than comparing the intervals.'''),
    new_code_cell('''\
from simulator.experiment import compare

cmp = compare(PATH, STRATEGIES, replications=3 if SHORT else 10, overrides=overrides,
              baseline="power_of_two", executor="serial" if SHORT else "processes",
              progress=False)
cmp.table(["p99", "mean"]).round(4)'''),
    new_code_cell('''\
ranked = cmp.table(["p99"])
adaptive = ranked[~ranked["variant"].isin(["round_robin", "random"])]
fig, (left, right) = plt.subplots(1, 2, figsize=(15, 3.8))
comparison_chart(cmp, "p99", ax=left)
comparison_chart(adaptive, "p99", ax=right, difference=True, baseline="power_of_two",
                 confidence=cmp.confidence)
fig.tight_layout()'''),
    new_markdown_cell('''\
The left chart is on a log scale: the blind strategies are orders of magnitude worse. The right
chart leaves them out and shows each remaining strategy's p99 minus power of two's, paired by
replication: red intervals exclude zero (the difference is significant at the 95% level).'''),
    new_code_cell('''\
p99 = cmp.table(["p99"]).set_index("variant")
steady = p99[p99["steady"].astype(bool)].sort_values("mean")
best, wrr = steady.index[0], p99.loc["weighted_round_robin"]
unsteady = p99.index[~p99["steady"].astype(bool)]
print(f"Lowest p99: {best}, {steady['mean'].iloc[0] * 1e3:.0f} ms, against "
      f"{p99.loc['power_of_two', 'mean'] * 1e3:.0f} ms for power of two choices and "
      f"{wrr['mean'] * 1e3:.0f} ms for weighted round robin, which knows the speeds.")
if len(unsteady):
    print(f"Never steady: {', '.join(unsteady)}, whose p99 ({p99.loc[unsteady, 'mean'].min():.0f}"
          " s or more) only measures how long the run lasted.")'''),
    new_markdown_cell('''\
## Conclusion

On a fleet of unequal machines, a balancer that ignores the machines overloads the slow ones:
round robin and random never reach a steady state, whatever their median looks like. Telling
the balancer the speeds (weighted round robin) fixes the average shares but not the tail,
because it cannot see that a machine has drawn a few long requests in a row. The strategies
that look at each backend's outstanding requests learn the speeds by themselves and react to
the queues as well; the sentences above, computed from the replications, say which wins here
and by how much.

Try: lower the load (`workloads.users.arrivals.rate=500/s`): the blind strategies still send
the old machines 62.5/s for 50/s of capacity, while at 350/s (43.75/s each) they cope; or give
the balancer three independent views (`components.lb.replicas=3`) and watch least connections
lose some of its edge, because each view sees only its own requests.'''),
]

RESILIENCE = [
    new_markdown_cell('''\
# Resilience: a retry storm and its cures

A metastable failure: the system is healthy, a short trigger pushes it over the edge, and it
stays broken after the trigger has gone. Here (`scenarios/retry_storm.yaml`) an api serves 100
requests/s (4 workers, 40 ms each) and normally gets 70/s. Clients time out after 200 ms and
retry up to 3 times. At t = 30 s a 5-second spike doubles the load: the queue grows, waits pass
the timeout, every timed-out request comes back as more attempts, and the api — which still does
the work of every attempt it accepted — sees 280 requests/s long after the spike has ended.'''),
    new_code_cell(SETUP + '''
PATH = ROOT / "scenarios" / "retry_storm.yaml"
overrides = ["duration=60s"] if SHORT else []
RETRY = "workloads.clients.target.retry"
CURES = {
    "retries (as written)": [],
    "no retries": [f"{RETRY}.attempts=1"],
    "exponential backoff, full jitter": [
        f"{RETRY}={{attempts: 4, backoff: exponential, base: 100ms, jitter: full, "
        "retry_on: [timeout, error]}"],
    "retry budget 10%": [f"{RETRY}.budget={{ratio: 0.1, min_retries_per_second: 1}}"],
    "circuit breaker": [
        "workloads.clients.target.breaker={failure_rate_threshold: 50, "
        "minimum_number_of_calls: 20, sliding_window_size: 50, wait_duration_in_open_state: 2s}"],
    "bounded queue (load shedding)": ["components.api.queue_limit=20"],
}
runs = {name: simulator.simulate(simulator.load_scenario(PATH, [*overrides, *extra]))
        for name, extra in CURES.items()}

rows = {name: r.summary().set_index("name").loc["clients"] for name, r in runs.items()}
table = pd.DataFrame(rows).T[["goodput", "p50", "p99", "error_ratio", "timeout_ratio",
                              "attempts"]].astype(float)
table[["p50", "p99"]] *= 1e3  # milliseconds
table.round(3)'''),
    new_markdown_cell('''\
## Goodput over time

Successful requests per second (green), all completions (pale blue), failures (red) and the
clients' own arrivals (dashed), with the spike shaded. As written, goodput collapses to zero at
the spike and never comes back. Backoff with jitter spreads the retries out but does not reduce
their number, so it does not help. Removing retries, a retry budget (retries may add at most 10%
to the load), a circuit breaker (fail fast while the api is drowning) or a bounded queue (reject
early instead of queueing work that will time out anyway) all recover within seconds.

Near the end of the run (t ≈ 115 s) a burst of arrivals — the same in every variant, which all
see the same requests — pushes waits past the timeout again. Without retries a few requests time
out; with the budget the retries it still allows make the episode worse; the breaker and the
bounded queue absorb it. At 70% utilisation with a 200 ms timeout (five mean service times), the
system lives close to the edge.'''),
    new_code_cell('''\
fig, axes = plt.subplots(3, 2, figsize=(15, 11), sharey=True)
for ax, (name, r) in zip(axes.flat, runs.items(), strict=False):
    r.plot.goodput_over_time(ax=ax)
    ax.set_title(name)
    ax.get_legend().remove()
axes.flat[0].set_ylim(0, 1.05 * max(ax.dataLim.ymax for ax in axes.flat))  # shared y axis
fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="upper center", ncol=6)
fig.tight_layout(rect=(0, 0, 1, 0.96))'''),
    new_markdown_cell('''\
## What the api really sees

The clients send 70 requests/s throughout (140/s during the spike). The api's arrivals include
every retry: during the storm they settle near 4 x 70 = 280/s, almost three times its capacity.
With a retry budget they return to 70/s as soon as the backlog has drained.'''),
    new_code_cell('''\
fig, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True, sharey=True)
for ax, name in zip(axes, ("retries (as written)", "retry budget 10%"), strict=True):
    runs[name].plot.load_over_time(ax=ax)
    ax.set_title(f"arrivals per second at the api: {name}")
fig.tight_layout()'''),
    new_markdown_cell('''\
## Recovery

`results.recovery()` measures, for each fault, how long after its end the system was healthy
again: the first stretch of 5 seconds in which the success ratio is back to at least 95% of its
value before the fault and the p99 at most twice its value before it. "Not recovered" means it
stayed degraded until the end of the run.'''),
    new_code_cell('''\
recovery = pd.concat([r.recovery().assign(variant=name) for name, r in runs.items()])
recovery.set_index("variant")[["fault", "start", "end", "recovered", "recovery_time"]]'''),
    new_markdown_cell('''\
## The breaker at work

The breaker on the clients' calls opens when half of the last 50 calls have failed (after at
least 20 calls), fails calls fast for 2 seconds, then lets a few probes through (half-open) and
closes again if they succeed. Its timeline, with the spike hatched, and the time it spent in
each state over the measured window:'''),
    new_code_cell('''\
breaker = runs["circuit breaker"]
breaker.plot.breaker_timeline()
breaker.breakers()'''),
    new_code_cell('''\
rec = recovery.set_index("variant")
never = rec.index[~rec["recovered"].astype(bool)]
times = rec["recovery_time"].dropna().sort_values()
print("Never recovered: " + (", ".join(
    f"{v} (goodput {table.loc[v, 'goodput']:.0f}/s, {table.loc[v, 'attempts']:.1f} attempts "
    "per request)" for v in never) or "none") + ".")
print("Recovered: " + ", ".join(
    f"{v} in {t:.0f} s ({table.loc[v, 'attempts']:.2f} attempts per request)"
    for v, t in times.items()) + ".")'''),
    new_markdown_cell('''\
## Conclusion

The storm outlives its trigger because the retries feed it: every timed-out attempt comes back
as more work for an api that is already past its capacity. What ends it is fewer attempts, not
later ones: each cure that recovered keeps the attempts per request close to one, while
exponential backoff with jitter makes as many attempts as plain retries, only spread out, and
stays broken with them. Of the cures, those that also turn work away early (failing fast at the
breaker, rejecting at a bounded queue) recover soonest: the sentences above give the times.

Try: a longer spike (`faults.0.duration=15s`), a budget of 20% (`...retry.budget.ratio=0.2`), a
longer client timeout (`workloads.clients.target.timeout=1s`), or `simulator run
scenarios/retry_storm.yaml --report` for all of this in one HTML file.'''),
]

CACHING = [
    new_markdown_cell('''\
# Caching: hit ratio against cache size, and cache-aside in a running system

First an LRU cache in isolation: one closed-loop user reads keys drawn from a Zipf(0.8)
popularity over 10,000 keys, through a cache whose backing store is a `service` that takes no
time (so nothing but the replacement policy matters), for several cache sizes. The measured hit
ratio is set beside Che's approximation, which for independent requests with popularities
`p_i` is `h = sum_i p_i (1 - exp(-p_i t_C))`, where the characteristic time `t_C` solves
`sum_i (1 - exp(-p_i t_C)) = C`.'''),
    new_code_cell(SETUP + '''
import numpy as np
from scipy.optimize import brentq


def zipf_probs(n, s):
    """p_i proportional to i^-s, i = 1..n."""
    w = np.arange(1, n + 1, dtype=float) ** -s
    return w / w.sum()


def che_lru_hit_ratio(p, capacity):
    """Che's approximation of the LRU hit ratio for popularities p."""
    if capacity >= len(p):
        return 1.0
    t_c = brentq(lambda t: -np.expm1(-p * t).sum() - capacity, capacity, 1e15)
    return float(p @ -np.expm1(-p * t_c))


# a check with a closed form: under uniform popularity LRU holds any C of the N keys, h = C / N
print("uniform popularity, 3 entries for 10 keys:",
      round(che_lru_hit_ratio(np.full(10, 0.1), 3), 6))'''),
    new_code_cell('''\
N, S = 10_000, 0.8
GAP = 0.01                                   # seconds between the user's requests
MEASURED = 20_000 if SHORT else 200_000      # requests measured per cache size
CAPACITIES = [10, 20, 50, 100, 200, 500, 1000, 2000]


def lru_scenario(capacity):
    warm = max(10 * capacity, 5_000)         # requests to fill the cache before measuring
    return simulator.parse_scenario({
        "name": f"lru-{capacity}",
        "duration": (warm + MEASURED) * GAP,
        "warmup": warm * GAP,
        "metrics": {"spans": False, "interval": 1.0},
        "workloads": {"user": {
            "arrivals": {"process": "closed", "users": 1, "think_time": GAP},
            "keys": {"popularity": "zipf", "n": N, "s": S},
            "target": "cache"}},
        "components": {
            "cache": {"kind": "cache", "backing": "store", "policy": "lru",
                      "capacity": capacity},
            "store": {"kind": "service", "workers": 1000},   # no service time: instant
        },
    })


p = zipf_probs(N, S)
rows = []
for capacity in CAPACITIES:
    r = simulator.simulate(lru_scenario(capacity))
    measured = r.cache_summary().set_index("name").loc["cache", "hit_ratio"]
    rows.append({"capacity": capacity, "simulated": measured,
                 "che": che_lru_hit_ratio(p, capacity)})
sweep = pd.DataFrame(rows).set_index("capacity")
sweep["difference"] = sweep["simulated"] - sweep["che"]
sweep.round(4)'''),
    new_code_cell('''\
sizes = np.unique(np.geomspace(5, 5000, 60).astype(int))
fig, ax = plt.subplots(figsize=(8, 4.5))
ax.plot(sizes, [che_lru_hit_ratio(p, c) for c in sizes], label="Che's approximation")
ax.plot(sweep.index, sweep["simulated"], "o", label="simulated LRU")
ax.set_xscale("log")
ax.set_xlabel("cache size (entries)")
ax.set_ylabel("hit ratio")
ax.set_title(f"LRU under Zipf({S}) over {N:,} keys")
ax.grid(True, which="both", alpha=0.3)
ax.legend();'''),
    new_markdown_cell('''\
Che's approximation is known to be very accurate for LRU under independent requests, and the
points sit on the curve:'''),
    new_code_cell('''\
worst = sweep["difference"].abs().idxmax()
print(f"The largest gap between simulation and Che's approximation is "
      f"{sweep.loc[worst, 'difference'] * 100:+.2f} percentage points (at {worst} entries, "
      f"{sweep.loc[worst, 'difference'] / sweep.loc[worst, 'che']:+.1%} relative).")
small, large = sweep.loc[200, "simulated"], sweep.loc[2000, "simulated"]
print(f"A cache of 2% of the keys (200 entries) catches {small:.0%} of the reads; ten times "
      f"as many entries catch {large:.0%}, {large / small:.1f} times as many.")'''),
    new_markdown_cell('''\
With s = 0.8 the popularity tail is heavy: the first entries hold the most popular keys and
each further entry holds a less popular one, so every entry is worth less than the one before.

## Cache-aside in a running system

`scenarios/cache_aside.yaml`: a user service in front of a cache (Zipf(0.9) over 100,000 users,
10,000 entries, LRU, 60 s TTL) and a database whose reads go to a follower with 50 ms of
replication lag. The cache summary has one row for the cache (from its counters) and one for
the workload (what the requests saw), with the stale reads the lag causes.'''),
    new_code_cell('''\
PATH = ROOT / "scenarios" / "cache_aside.yaml"
overrides = ["duration=20s", "warmup=5s"] if SHORT else []
aside = simulator.simulate(simulator.load_scenario(PATH, overrides))
cache = aside.cache_summary().set_index(["scope", "name"])[
    ["reads", "hits", "misses", "hit_ratio", "loads", "evictions", "stale_reads",
     "stale_read_ratio", "mean_entries"]]
cache.round(4)'''),
    new_code_cell('''\
fig, ax = plt.subplots(figsize=(10, 4))
aside.plot.hit_ratio_over_time(ax=ax);'''),
    new_code_cell('''\
row = cache.loc[("cache", "user-cache")]
zipf = zipf_probs(100_000, 0.9)
che = che_lru_hit_ratio(zipf, 10_000)
print(f"Measured hit ratio {row['hit_ratio']:.1%}, "
      f"{'below' if row['hit_ratio'] < che else 'above'} the {che:.1%} of Che's approximation "
      "for Zipf(0.9) over 100,000 keys and 10,000 entries, which ignores the TTL and the "
      f"writes' deletions. Stale reads: {row['stale_read_ratio']:.1%} of all reads.")'''),
    new_markdown_cell('''\
## Conclusion

For independent requests, the hit ratio of an LRU cache can be predicted before anything is
built: Che's approximation matches the simulated cache to a fraction of a percentage point, and
under Zipf popularity it shows the diminishing return of size (ten times the entries buy far
less than ten times the hits). In the running system the hit ratio climbs during the warm-up
(shaded) as the cache fills and then holds, a little under what the approximation gives for
the replacement policy alone, because expiry and the writes' deletions remove entries LRU
would have kept. A cache in front of a lagging follower also caches the follower's stale
versions: a miss just after a write can load the old version and keep it until the TTL or the
next write removes it.

Try `components.user-cache.capacity=40000`, `components.user-cache.policy=lfu`, or reads at
the leader (`components.users-db.replication.reads=leader`) to remove most stale reads.'''),
]

SHARDING_REPLICATION = [
    new_markdown_cell('''\
# Sharding and replication

Two databases from the scenario library. `scenarios/sharding.yaml`: four shards behind an api,
growing to five at 60 s (a `reshard` event), with three ways of mapping keys to shards.
`scenarios/read_replicas.yaml`: a leader and two followers with asynchronous replication,
where reads from a follower that has not caught up return old versions.'''),
    new_code_cell(SETUP + '''
SHARDING = ROOT / "scenarios" / "sharding.yaml"
# short runs move the reshard to 12 s so that both shard maps are seen
shard_overrides = ["duration=20s", "warmup=4s", "faults.0.at=12s"] if SHORT else []
base = simulator.load_scenario(SHARDING, shard_overrides)
print(base.description)'''),
    new_markdown_cell('''\
## Share of requests per shard, before and after the reshard

`Results.shard_summary()` covers the whole measured window; `Results.measured_over(t0, t1)`
measures the same run over another stretch, here before and after the reshard.
Consistent hashing (150 virtual nodes per shard) keeps the shares near even; the new shard
takes about a fifth.'''),
    new_code_cell('''\
ch = simulator.simulate(base)
at = float(ch.reshards()["time"].iloc[0])
t0, t1 = ch.window
before = ch.measured_over(t0, at).shard_summary().set_index("shard")
after = ch.measured_over(at, t1).shard_summary().set_index("shard")
pd.DataFrame({"share before": before["share"], "share after": after["share"],
              "requests (whole window)": ch.shard_summary().set_index("shard")["requests"]}
             ).round(3)'''),
    new_markdown_cell('''\
## The three schemes

Every scheme sees the same requests. `skew` is the busiest shard's requests over the mean
(1 is even); `moved_ratio` the fraction of the key space that changed shard at the reshard.'''),
    new_code_cell('''\
SCHEMES = {
    "consistent_hash": [],
    "mod": ["components.db.shards.scheme=mod"],
    "range": ["components.db.shards.scheme=range", "components.db.shards.key_space=100000"],
}
schemes = {"consistent_hash": ch}
schemes.update({name: simulator.simulate(simulator.load_scenario(SHARDING,
                                                                 [*shard_overrides, *extra]))
                for name, extra in SCHEMES.items() if name != "consistent_hash"})
shares = pd.DataFrame({name: r.shard_summary().set_index("shard")["share"]
                       for name, r in schemes.items()})
ax = (shares * 100).plot.bar(figsize=(9, 3.5))
ax.set_ylabel("share of requests (%)")
moves = pd.DataFrame({name: {"skew": r.shard_summary()["skew"].iloc[0],
                             "moved_ratio": r.reshards()["moved_ratio"].iloc[0],
                             "moved_to_new_ratio": r.reshards()["moved_to_new_ratio"].iloc[0]}
                      for name, r in schemes.items()}).T
moves.round(3)'''),
    new_markdown_cell('''\
Mod N spreads the load as evenly as consistent hashing but moves most of the keys when a fifth
shard joins (a key stays only if its hash gives the same remainder modulo 4 and 5: one in five);
consistent hashing moves about the new shard's share, all of it to the new shard. Range
partitioning over popularity ranks puts the hottest keys on the first shard: a hot spot.

## Staleness against replication lag

In `read_replicas.yaml` reads go round robin to the two followers. The mean of the replication
lag (lognormal, cv 1) is varied with `--set`-style overrides; the stale-read ratio is counted
on every read against the leader's committed version. Two measures of replication are shown:
`write_lag_mean` is the time from a write's commit on the leader to its apply on a follower
(followers apply in order, so a write can wait for an earlier one and this is at least its own
draw of the lag), and `behind_mean`, `behind_p99` how far behind a follower is at each sample
(the age of its oldest write not yet applied: 0 when caught up, otherwise often longer than one
write's lag).'''),
    new_code_cell('''\
REPLICAS = ROOT / "scenarios" / "read_replicas.yaml"
replica_overrides = ["duration=20s", "warmup=5s"] if SHORT else []
LAGS = ["5ms", "20ms", "50ms", "80ms", "150ms", "300ms"]
rows = {}
for lag in LAGS:
    r = simulator.simulate(simulator.load_scenario(
        REPLICAS, [*replica_overrides, f"components.db.replication.lag.mean={lag}"]))
    rows[lag] = r.replication_summary().set_index("component").loc["db"]
staleness = pd.DataFrame(rows).T[["reads", "stale_reads", "stale_read_ratio",
                                   "write_lag_mean", "behind_mean", "behind_p99"]].astype(float)
staleness.index.name = "lag (mean)"
staleness.round(4)'''),
    new_code_cell('''\
lag_ms = [float(lag.removesuffix("ms")) for lag in LAGS]
fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(lag_ms, staleness["stale_read_ratio"] * 100, "o-")
ax.set_xlabel("mean replication lag (ms)")
ax.set_ylabel("stale reads (%)")
ax.set_title("Reads from followers: staleness grows with the lag")
ax.grid(True, alpha=0.3);'''),
    new_code_cell('''\
print(f"Adding a fifth shard moved {moves.loc['consistent_hash', 'moved_ratio']:.0%} of the keys "
      f"with consistent hashing and {moves.loc['mod', 'moved_ratio']:.0%} with mod N; the "
      f"busiest shard got {moves.loc['range', 'skew']:.1f} times the mean load with range "
      f"partitioning over popularity ranks, {moves.loc['consistent_hash', 'skew']:.2f} with "
      "consistent hashing.")
first, last = staleness["stale_read_ratio"].iloc[[0, -1]]
print(f"Stale reads from the followers: {first:.1%} at a mean lag of {LAGS[0]}, {last:.1%} at "
      f"{LAGS[-1]}: {lag_ms[-1] / lag_ms[0]:.0f} times the lag, {last / first:.0f} times the "
      "stale reads.")'''),
    new_markdown_cell('''\
## Conclusion

Consistent hashing is the scheme to grow with: its load is as even as mod N's and a new shard
takes only its own share of the keys, where mod N re-homes most of them and range partitioning
over a skewed key space makes a hot shard. For replication, the stale-read ratio rises with
the lag but less than in proportion (the numbers above): a read is stale only if its key was
written within the lag, and the most written keys are stale almost always once the lag exceeds
the gap between their writes, so a longer lag adds stale reads mainly on colder keys. Followers
that lag a few milliseconds already serve some stale reads; a workload that must see its own
writes needs a read policy for it, not a faster network.

Try `components.db.replication.reads=read_your_writes` (the profile workload no longer reads its
own old writes) or the quorum variant (`simulator compare scenarios/read_replicas.yaml`).'''),
]

GLOBAL_DISTRIBUTION = [
    new_markdown_cell('''\
# Global distribution: regions, geo-routing, a CDN, event sourcing and CQRS

Four questions an engineer asks before going multi-region, each answered in simulated time:

1. When a whole region goes down, what latency do its users pay once geo-routing fails them
   over, and how many requests fail before the health checks notice?
2. Should each region read from its local follower or from the leader across the ocean?
3. What does a CDN buy users far from the origin: the median, the tail, the origin's load?
4. With event sourcing and a CQRS read model, how stale is the read side, and how many
   projectors does it take to keep up?

The scenarios are `scenarios/multi_region.yaml`, `scenarios/cdn.yaml` and
`scenarios/event_sourcing.yaml`.'''),
    new_code_cell(SETUP + '''
MULTI = ROOT / "scenarios" / "multi_region.yaml"
ES = ROOT / "scenarios" / "event_sourcing.yaml"
short = ["duration=60s", "faults=[{kind: region_outage, region: eu-west, at: 20s, "
         "duration: 20s}]"] if SHORT else []
multi = simulator.load_scenario(MULTI, short)
print(multi.description)
run = simulator.simulate(multi)
regions = run.region_summary()
table = regions.set_index(["window", "region"])[["requests", "ok_ratio", "p50", "p99",
                                                "failovers"]]
table[["p50", "p99"]] *= 1e3  # milliseconds
table.round(3)'''),
    new_markdown_cell('''\
During the eu-west outage its users are sent to us-east, one transatlantic round trip away:
their median latency jumps from a few milliseconds to about twice the 38 ms one-way link. The
few percent of failed requests are those sent in the seconds before two failed health probes
marked the region down. Users in the other regions see nothing.

The latency of eu-west users over time shows the failover and the failback:'''),
    new_code_cell('''\
req = run.requests
eu = req[(req["region"] == "eu-west") & (req["status"] == "ok")]
per_second = eu.groupby(eu["start"].astype(int))["latency"].median() * 1e3
fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(per_second.index, per_second.values)
faults = run.events[run.events["component"] == "regions"]
for t in faults["time"]:
    ax.axvline(t, color="grey", ls=":", lw=1)
ax.set_xlabel("time (s)")
ax.set_ylabel("median latency of eu-west users (ms)")
ax.set_title("A region outage, seen from the region's users")
ax.grid(True, alpha=0.3);'''),
    new_markdown_cell('''\
## Read from the local follower, or from the leader?

Each region's API reads from the database node in its own region (`reads: nearest`): fast, but
a follower sees a write only after the replication lag plus the link from us-east, so some reads
are stale. Reading from the leader (`reads: leader`) is never stale but crosses the ocean. Both
runs see the same requests (same seed); staleness is measured per read against the leader's
committed version.'''),
    new_code_cell('''\
rows, served = {}, {}
for how in ["nearest", "leader"]:
    r = simulator.simulate(simulator.load_scenario(
        MULTI, [*short, f"components.db.replication.reads={how}"]))
    req = r.requests
    t0, t1 = r.window
    served[how] = req[(req["op"] == "read") & (req["status"] == "ok") & (req["start"] >= t0)]
    by_region = served[how].groupby("region", observed=True)
    rows[how] = pd.DataFrame({"p50_ms": by_region["latency"].median() * 1e3,
                              "p99_ms": by_region["latency"].quantile(0.99) * 1e3,
                              "stale_ratio": by_region["stale"].mean()})
reads = pd.concat(rows, axis=1)
reads.round(3)'''),
    new_markdown_cell('''\
Users far from the leader pay for consistency with a transatlantic (or longer) round trip on
every read; local followers answer in milliseconds and are stale on a few percent of reads.
When are they stale? Below, for each region, the share of its stale reads made while a fault
involved the region (or in the 5 s after it, while its follower catches up), beside the share
of the measured time those windows cover:'''),
    new_code_cell('''\
from simulator.analysis.plots import fault_windows

stale = served["nearest"][served["nearest"]["stale"].astype(bool)]
when = {}
for region, group in stale.groupby("region", observed=True):
    windows = [(a, b + 5) for a, b, label in fault_windows(run) if region in label]
    during = pd.Series(False, index=group.index)
    for a, b in windows:
        during |= group["start"].between(a, b)
    when[region] = {"stale reads": len(group), "share during its faults": during.mean(),
                    "share of the time": sum(min(b, t1) - max(a, t0) for a, b in windows)
                    / (t1 - t0)}
pd.DataFrame(when).T.round(3)'''),
    new_markdown_cell('''\
ap-south's follower is cut off from the leader by the partition and falls behind until the link
returns: its stale reads crowd into that window. eu-west's users are served by us-east while
their region is down, so they read no stale data then; their few stale reads are the ordinary
replication lag plus the transatlantic link, spread over the run.'''),
    new_markdown_cell('''\
## A CDN in front of the origin

`scenarios/cdn.yaml` puts an edge cache in three of four regions in front of an origin in
us-east (users in sa-east have no edge and are served by the us-east one). The same requests
run with the CDN and without it (`bypass: true`: every request goes to the origin).'''),
    new_code_cell('''\
CDN = ROOT / "scenarios" / "cdn.yaml"
cdn_short = ["duration=40s", "warmup=20s"] if SHORT else []
rows = {}
for label, extra in {"with CDN": [], "without CDN": ["components.cdn.bypass=true"]}.items():
    r = simulator.simulate(simulator.load_scenario(CDN, [*cdn_short, *extra]))
    s = r.summary()
    s = s[s["scope"] == "workload"].set_index("name")
    rows[(label, "p50_ms")] = s["p50"] * 1e3
    rows[(label, "p99_ms")] = s["p99"] * 1e3
    if label == "with CDN":
        edges = r.cdn_summary()
cdn = pd.DataFrame(rows).rename_axis("users")
cdn.round(1)'''),
    new_code_cell('''\
edges[["edge", "region", "requests", "hit_ratio", "origin_offload"]].round(3)'''),
    new_markdown_cell('''\
The CDN buys the median (a hit is answered in the user's own region) and the origin's load
(it sees only the misses); the tail barely moves, because with a CDN the slowest requests are
the misses, which pay the edge's round trip to the origin on top. Users in a region without an
edge pay the link to the nearest one: the CDN helps them much less.'''),
    new_markdown_cell('''\
## Event sourcing and CQRS: how many projectors?

Commands append events to per-order logs (optimistic concurrency: a concurrent append to the
same order conflicts and is retried); a queue carries the events to projectors that update the
read model the order pages are served from. The projection lag is the time from the commit to
the event being visible on the read side; a read is stale when the store already holds a newer
version of that order at that instant (measured, not assumed).'''),
    new_code_cell('''\
es_short = ["duration=20s", "faults=[]"] if SHORT else ["faults=[]"]
rows = {}
for n in [1, 2, 4]:
    r = simulator.simulate(simulator.load_scenario(ES, [*es_short,
                                                      f"components.projector.concurrency={n}"]))
    p = r.projection_summary().iloc[0]
    rows[2 * n] = {"lag_p50_ms": p["lag_p50"] * 1e3, "lag_p99_ms": p["lag_p99"] * 1e3,
                   "stale_read_ratio": p["stale_read_ratio"]}
projectors = pd.DataFrame(rows).T.rename_axis("projector workers")
projectors.round(4)'''),
    new_markdown_cell('''\
Each event takes 4 ms to apply on average, so the 300 events/s keep 1.2 workers busy: with
two workers the projector is 60% busy and queueing adds to the lag; with four, the lag is
about the apply time itself, and more workers change nothing. The reads that are still stale
are those of hot orders updated within the last few milliseconds: to go further, apply faster,
or let a user read their own writes from the write side.

Snapshots bound the cost of loading an aggregate, and with it the window in which a concurrent
append can conflict:'''),
    new_code_cell('''\
rows = {}
for every in ["50", "null"]:
    r = simulator.simulate(simulator.load_scenario(ES, [*es_short,
                                                      f"components.orders.snapshot_every={every}"]))
    e = r.event_sourcing_summary().iloc[0]
    rows["every 50 events" if every == "50" else "no snapshots"] = {
        "conflict_ratio": e["conflict_ratio"], "rebuild_p99_ms": e["rebuild_p99"] * 1e3,
        "rebuild_max_ms": e["rebuild_max"] * 1e3}
snapshots = pd.DataFrame(rows).T
snapshots.round(4)'''),
    new_code_cell('''\
eu = table.xs("eu-west", level="region")
outage = next(w for w in eu.index if w.startswith("during region_outage"))
far = reads["leader"]["p50_ms"].idxmax()
gain = cdn[("without CDN", "p50_ms")] / cdn[("with CDN", "p50_ms")]
lag = projectors["lag_p99_ms"]
enough = lag.index[lag <= 1.05 * lag.min()][0]
print(f"Failover: eu-west's median went from {eu.loc['measured', 'p50']:.0f} ms to "
      f"{eu.loc[outage, 'p50']:.0f} ms during its outage; {1 - eu.loc[outage, 'ok_ratio']:.1%} of "
      "its requests failed.")
print(f"Reads: from the leader, {far}'s median read takes "
      f"{reads.loc[far, ('leader', 'p50_ms')]:.0f} ms against "
      f"{reads.loc[far, ('nearest', 'p50_ms')]:.0f} ms locally, which is stale on "
      f"{reads.loc[far, ('nearest', 'stale_ratio')]:.1%} of reads.")
print(f"CDN: the median falls {gain.min():.1f} to {gain.max():.0f} times, the p99 by at most "
      f"{(1 - cdn[('with CDN', 'p99_ms')] / cdn[('without CDN', 'p99_ms')]).max():.0%}; the origin "
      f"serves {1 - edges.set_index('edge').loc['all', 'origin_offload']:.0%} of the requests.")
print(f"Projection: {enough} workers bring the p99 lag to within 5% of its lowest "
      f"({lag.min():.0f} ms); snapshots every 50 events cut conflicts from "
      f"{snapshots.loc['no snapshots', 'conflict_ratio']:.0%} to "
      f"{snapshots.loc['every 50 events', 'conflict_ratio']:.0%}.")'''),
    new_markdown_cell('''\
## Conclusion

Going multi-region buys locality, and each mechanism that keeps it has a price the numbers above
put a size on. Geo-routing turns a region's outage into a detour, paid in round trips by that
region's users and in the requests sent before the health checks noticed. Local followers keep
reads fast and pay in stale reads, which crowd into the times a follower is cut off from the
leader; reading from the leader pays the ocean on every read. A CDN buys the median and the
origin's load but not the tail, which its misses still set. And an event-sourced read model
keeps up once its projectors have idle workers: beyond that, more projectors change nothing,
while snapshots shorten the window in which concurrent appends conflict.'''),
]

ELASTICITY = [
    new_markdown_cell("""\
# Elasticity and overload control

Three questions engineers ask before a traffic peak, each answered by one shipped scenario:

1. **How many instances, at what cost?** `scenarios/autoscaling.yaml`: a compressed day with a
   spike, served by a fixed fleet, an over-provisioned one and the Kubernetes HPA.
2. **What keeps goodput up when load doubles?** `scenarios/overload.yaml`: a 2x spike against one
   service, met by FIFO, CoDel, adaptive LIFO, adaptive concurrency limits (Netflix AIMD, Envoy)
   and client-side throttling.
3. **Can critical traffic keep its SLO?** `scenarios/priorities.yaml`: checkout and batch work
   share an api that a batch spike overloads, with and without priority classes.

Latencies are over successful requests only; goodput (answers within the SLO per second) and
the error ratios say what those leave out."""),
    new_code_cell(SETUP + """
def variants(stem, extra=()):
    path = ROOT / "scenarios" / f"{stem}.yaml"
    base = simulator.load_scenario(path)
    return {name: simulator.simulate(simulator.load_scenario(path, [*ov, *extra]))
            for name, ov in base.variants.items()}

def row(r, workload):
    s = r.summary().set_index("name").loc[workload]
    return {"p99 ms": 1e3 * s["p99"], "goodput /s": s["goodput"],
            "errors %": 100 * s["error_ratio"]}

scaling = variants("autoscaling", ["duration=480s"] if SHORT else [])
table = pd.DataFrame({name: {**row(r, "users"),
                             "cost": r.cost().set_index("component").loc["total", "cost"],
                             "SLO met": bool(r.scenario.objectives()) and all(
                                 o.met_by(r.summary().set_index("name").loc["users", o.metric])
                                 for o in r.scenario.objectives())}
                      for name, r in scaling.items()}).T
table"""),
    new_markdown_cell("""\
## The autoscaler's trajectory

The HPA syncs every 15 s: desired = ceil(current x utilisation / target), within a tolerance of
10%, with new instances provisioning for 20 s and scale-down held for 2 minutes. The `replicas`
table is each change with its reason; the dashboard puts the fleet beside the load."""),
    new_code_cell("""\
auto = scaling["autoscaled"]
columns = ["time", "desired", "provisioning", "ready", "draining"]
print(auto.replicas()[columns].to_string(index=False))
auto.plot.dashboard();"""),
    new_markdown_cell("""\
## A 2x spike: six ways to meet it

The api serves 100 requests/s and gets 70/s; a 20-second spike doubles that. Clients give up
after 200 ms. Goodput below counts the answers that arrived in time, per second, during the
spike (30 s to 50 s)."""),
    new_code_cell("""\
overload = variants("overload")

def goodput_in(r, t0, t1, slo=0.2):
    q = r.requests
    ok = (q["status"] == "ok") & (q["latency"] <= slo) & (q["start"] >= t0) & (q["start"] < t1)
    return ok.sum() / (t1 - t0)

spike = pd.DataFrame({name: {"goodput in spike /s": goodput_in(r, 30, 50),
                             "goodput after /s": goodput_in(r, 50, 80), **row(r, "clients")}
                      for name, r in overload.items()}).T.sort_values("goodput in spike /s")
spike.round(2)"""),
    new_code_cell("""\
fig, axes = plt.subplots(1, 3, figsize=(16, 4), sharey=True)
for ax, name in zip(axes, ("fifo", "codel", "aimd"), strict=True):
    overload[name].plot.goodput_over_time(ax=ax)
    ax.set_title(name)
fig.tight_layout()"""),
    new_markdown_cell("""\
## Critical traffic under a batch spike

Checkout (priority 0) and batch work (priority 2, 1 s deadline) share an api; a 15 s spike
triples the batch load. With head-of-line priority the api serves checkout first; with FIFO
every request waits behind the batch backlog. The SLO is checkout p99 under 100 ms."""),
    new_code_cell("""\
prio = variants("priorities")
pd.DataFrame({name: {**{f"checkout {k}": v for k, v in row(r, "checkout").items()},
                     **{f"batch {k}": v for k, v in row(r, "batch").items()}}
              for name, r in prio.items()}).T.round(2)"""),
    new_code_cell("""\
best = spike.index[-1]
cheapest = table[table["SLO met"].astype(bool)]["cost"].astype(float)
print(f"Sizing: {', '.join(cheapest.index)} met the SLO; the cheapest was {cheapest.idxmin()} "
      f"at {cheapest.min():.3f} against {table['cost'].astype(float).max():.3f} for the most "
      "expensive fleet." if len(cheapest) else "Sizing: no fleet met the SLO.")
print(f"Overload: FIFO answered {spike.loc['fifo', 'goodput in spike /s']:.1f} requests/s in "
      f"time during the spike; {best} answered {spike.loc[best, 'goodput in spike /s']:.1f}/s.")
ck = {n: 1e3 * r.summary().set_index("name").loc["checkout", "p99"] for n, r in prio.items()}
print(f"Priorities: checkout p99 {ck['priority']:.0f} ms with priority classes, "
      f"{ck['fifo']:.0f} ms with FIFO (SLO 100 ms).")"""),
    new_markdown_cell("""\
## Conclusion

An autoscaler that follows utilisation with headroom meets the same SLO as a fleet sized for the
spike at a fraction of its cost, while the fleet sized for the average misses it (the lines
above give the costs). Under overload the queue discipline decides the outcome more than
capacity does: FIFO spends the spike serving requests whose clients have already given up, so
goodput collapses, while dropping old work (CoDel), serving the newest first (adaptive LIFO) or
limiting concurrency (AIMD, Envoy) keeps most of the capacity answering clients still waiting.
Priority classes protect critical traffic from a spike of less important work that FIFO would
make it wait behind.

Try: `simulator compare scenarios/overload.yaml --metric goodput` for intervals over
replications, `simulator capacity scenarios/autoscaling.yaml ... --minimize cost` for the
cheapest target utilisation, or a larger spike (`--set faults.0.factor=3`)."""),
]

INTERNALS = [
    new_markdown_cell("""\
# Service internals: an event loop against a thread pool

Most of the time a service is "workers and a service-time draw". When the question is about
how the server runs its work (an async Node.js or Netty API against a Tomcat-style thread
pool, a pool sized below the connections it needs, a GC pause), the `internals:` block models
the instance itself: `cores`, a threading model, and each operation's work as steps (`cpu`
holds a core, `io` waits without one, a call waits for a downstream component).

`scenarios/async_vs_threads.yaml`: an api with 4 cores serves `browse` (600/s: 1 ms of CPU, a
20 ms database call, 1 ms of CPU) and `report` (20/s: 40 ms of CPU). The CPU load is half the
cores in every variant; only the threading model changes."""),
    new_code_cell(SETUP + """
PATH = ROOT / "scenarios" / "async_vs_threads.yaml"
overrides = ["duration=15s", "warmup=2s"] if SHORT else []
base = simulator.load_scenario(PATH)
runs = {name: simulator.simulate(simulator.load_scenario(PATH, [*overrides, *ov]))
        for name, ov in base.variants.items()}

def workload_row(r, name):
    s = r.summary().set_index("name").loc[name]
    return {"p50 ms": 1e3 * s["p50"], "p99 ms": 1e3 * s["p99"], "goodput /s": s["goodput"],
            "errors %": 100 * s["error_ratio"]}

table = pd.concat({name: pd.DataFrame({w: workload_row(r, w) for w in ("browse", "report")}).T
                   for name, r in runs.items()})
table.round(2)"""),
    new_markdown_cell("""\
## Why the event loop's light endpoint suffers

On an event loop a CPU step runs to completion: a browse step that becomes ready while a 40 ms
report runs on its loop waits for all of it. The thread pool's OS time-slices runnable threads,
so the 1 ms step shares a core for a moment instead. The latency distributions of browse, side
by side:"""),
    new_code_cell("""\
latency_cdf_overlay({name: r for name, r in runs.items() if name != "small_pool"},
                    workload="browse");"""),
    new_markdown_cell("""\
## The small pool's bound

A thread is held through the database call, so 8 threads serve at most threads / (cpu + io) =
8 / 22 ms = 364 requests/s, whatever the cores: the pool, not the CPU, is the bottleneck. The
`threads_busy` gauge sits at 8 while the cores are mostly idle."""),
    new_code_cell("""\
small = runs["small_pool"]
s = small.samples
api = s[s["component"] == "api"]
gauges = api.pivot_table(index="time", columns="metric", values="value", aggfunc="sum")
fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 5), sharex=True)
gauges[[c for c in ("threads_busy", "busy", "ready_queue") if c in gauges]].plot(
    ax=top, drawstyle="steps-post")
top.set_title("small_pool: threads in use (of 8), busy cores (of 4), ready queue")
gauges[["queue_length"]].plot(ax=bottom, drawstyle="steps-post", legend=False)
bottom.set_title("requests waiting for a thread (the queue limit is 1,000)")
bottom.set_xlabel("time (s)")
fig.tight_layout()"""),
    new_code_cell("""\
served = {n: r.summary().set_index("name").loc["api", "goodput"] for n, r in runs.items()}
bound = 8 / 0.022
p99 = table["p99 ms"]
print(f"Browse p99: {p99.loc[('event_loop', 'browse')]:.0f} ms on event loops, "
      f"{p99.loc[('thread_pool', 'browse')]:.0f} ms on the 200-thread pool.")
print(f"The 8-thread pool served {served['small_pool']:.0f} requests/s against its bound of "
      f"{bound:.0f}/s ({served['small_pool'] / bound:.0%}), where the large pool served "
      f"{served['thread_pool']:.0f}/s; "
      f"{table.loc[('small_pool', 'browse'), 'errors %']:.0f}% of browse requests were "
      "refused.")"""),
    new_markdown_cell("""\
## Conclusion

With the same cores and the same CPU load, the threading model decides the light endpoint's
tail: an event loop makes every request on a loop wait behind a CPU-heavy one, while a thread
pool time-slices and keeps the tail near the request's own work (the first line above). A
thread pool has a bound of its own, threads / (CPU + I/O time a request holds a thread), that
no amount of CPU lifts: the small pool served close to its bound and refused the rest (the
second line). Move CPU-heavy work off an event loop, and size a thread pool from the time a
request holds a thread, not from the cores.

Try: `--set components.api.internals.cores=8` on the event loop, a GC pause
(`components.api.internals.gc={pause: 50ms, every: 2s}`), or `simulator compare
scenarios/async_vs_threads.yaml` for paired intervals over replications."""),
]

NOTEBOOKS = {
    "load_balancing.ipynb": LOAD_BALANCING,
    "resilience.ipynb": RESILIENCE,
    "caching.ipynb": CACHING,
    "sharding_replication.ipynb": SHARDING_REPLICATION,
    "global_distribution.ipynb": GLOBAL_DISTRIBUTION,
    "elasticity_and_overload.ipynb": ELASTICITY,
    "service_internals.ipynb": INTERNALS,
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` (no outputs)."""
    nb = new_notebook(cells=NOTEBOOKS[name])
    for i, cell in enumerate(nb.cells):
        cell.id = f"{Path(name).stem}-{i:02d}"  # stable ids: regenerating changes nothing
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def sources(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """The cells' types and sources, in order."""
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def main(argv: list[str]) -> int:
    """Write every notebook (or those named on the command line)."""
    for name in argv or list(NOTEBOOKS):
        nb = build(name)
        nbformat.validate(nb)
        path = HERE / name
        if path.exists() and sources(nbformat.read(path, as_version=4)) == sources(nb):
            print(f"unchanged {path}")  # keep its stored outputs
            continue
        nbformat.write(nb, path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
