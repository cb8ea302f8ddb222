"""The data tier from the tables: per-shard load, replication and staleness, resharding,
cache hit ratios and staleness.

Computed from the ``samples`` and ``events`` tables a ``kind: database`` records (see
:mod:`simulator.components.database`); nothing here simulates. Database components are
recognised by their ``shard_active`` gauge, caches (:mod:`simulator.components.cache`) by
their ``entries_time_total`` gauge.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.analysis.summary import window_delta

SHARD_COLUMNS = ["component", "shard", "reads", "writes", "requests", "share", "skew",
                 "hottest"]
REPLICATION_COLUMNS = [
    "component", "shards", "reads", "stale_reads", "stale_read_ratio", "writes",
    "write_lag_mean", "write_lag_p50", "write_lag_p95", "write_lag_p99", "write_lag_max",
    "behind_mean", "behind_p50", "behind_p95", "behind_p99", "behind_max",
    "pool_wait_mean", "pool_wait_p99", "pool_timeouts", "pool_timeout_ratio",
]
FAILOVER_COLUMNS = ["component", "shard", "crashed", "promoted", "crashed_at", "detected_at",
                    "promoted_at", "write_unavailability", "lost_writes", "discarded_writes"]
RESHARD_COLUMNS = ["time", "component", "from_shards", "to_shards", "scheme", "keys",
                   "moved_ratio", "moved_to_new_ratio", "seen_keys", "seen_moved_ratio"]


def _databases(samples: pd.DataFrame) -> pd.DataFrame:
    """The samples of database components only."""
    names = samples.loc[samples["metric"] == "shard_active", "component"].astype(str).unique()
    return samples[samples["component"].astype(str).isin(names)]


def _totals(samples: pd.DataFrame, metric: str, t0: float, t1: float) -> pd.Series:
    """Change of a cumulative gauge over the window, per (component, instance)."""
    d = window_delta(samples, metric, t0, t1)
    if d.empty:
        return pd.Series(dtype=float)
    d["component"] = d["component"].astype(str)
    d["instance"] = d["instance"].astype(str)
    return d.groupby(["component", "instance"])["delta"].sum()


def shard_summary(samples: pd.DataFrame, t0: float, t1: float) -> pd.DataFrame:
    """Requests each shard of each database received over ``[t0, t1]``.

    Parameters
    ----------
    samples
        The ``samples`` table of a run.
    t0, t1
        The window, seconds (the measured window: warm-up to duration).

    Returns
    -------
    pandas.DataFrame
        One row per shard that was in the shard map at some sample of the window:
        ``reads`` and ``writes`` (requests arriving at the shard), ``requests``, ``share`` of
        the database's requests, and per database ``skew`` (the busiest shard's requests over
        the mean of its shards: 1 is perfectly even) and ``hottest`` (True on the busiest).
    """
    db = _databases(samples)
    if db.empty:
        return pd.DataFrame(columns=SHARD_COLUMNS)
    reads = _totals(db, "reads_total", t0, t1)
    writes = _totals(db, "writes_total", t0, t1)
    act = db[(db["metric"] == "shard_active") & (db["time"] >= t0 - 1e-9)
             & (db["time"] <= t1 + 1e-9)]
    active = act.assign(component=act["component"].astype(str),
                        instance=act["instance"].astype(str)).groupby(
        ["component", "instance"])["value"].max()
    rows = []
    for index, on in active.items():
        if on <= 0:
            continue
        component, shard = str(index[0]), str(index[1])  # type: ignore[index]
        r = float(reads.get((component, shard), 0.0))
        w = float(writes.get((component, shard), 0.0))
        rows.append({"component": component, "shard": shard, "reads": int(r),
                     "writes": int(w), "requests": int(r + w)})
    out = pd.DataFrame(rows, columns=SHARD_COLUMNS[:5])
    if out.empty:
        return pd.DataFrame(columns=SHARD_COLUMNS)
    total = out.groupby("component")["requests"].transform("sum")
    out["share"] = np.where(total > 0, out["requests"] / total.where(total > 0, 1), np.nan)
    mean = out.groupby("component")["requests"].transform("mean")
    peak = out.groupby("component")["requests"].transform("max")
    out["skew"] = np.where(mean > 0, peak / mean.where(mean > 0, 1), np.nan)
    first_peak = out.groupby("component")["requests"].transform("idxmax")
    out["hottest"] = (out.index == first_peak) & (peak > 0)
    return out[SHARD_COLUMNS]


def replication_summary(samples: pd.DataFrame, spans: pd.DataFrame, t0: float, t1: float,
                        writes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Staleness, replication lag and connection-pool waits of each database over ``[t0, t1]``.

    Two different measures of replication are given. ``write_lag_*`` is per replicated write:
    from its commit on the leader to its apply on one follower (one value per write and
    follower: the lag actually drawn, plus the region link, the wait for earlier writes when
    ``ordered`` and any time held while a node was down). ``behind_*`` is the follower's state
    sampled at each gauge sample: how long ago the oldest committed write it has not applied
    was committed (0 when caught up). The two differ even in a steady state: ``behind`` is 0
    between writes but, with writes in flight, the age of the oldest of them, which is often
    longer than one write's lag (the longest draws are the last applied); it grows during an
    outage or a backlog while the write lag of writes not yet applied is not known.

    Parameters
    ----------
    samples, spans
        Tables of a run (``spans`` may be empty: then ``pool_wait_p99`` is NaN).
    writes
        Its ``replicated_writes`` table (omitted or empty: ``write_lag_*`` are NaN).
    t0, t1
        The window, seconds.

    Returns
    -------
    pandas.DataFrame
        One row per database: ``shards`` (instances), ``reads`` (successful reads),
        ``stale_reads`` and ``stale_read_ratio`` (reads that returned a version older than
        the committed one), ``writes`` (arriving); ``write_lag_mean``, ``write_lag_p50``,
        ``write_lag_p95``, ``write_lag_p99``, ``write_lag_max`` (seconds, over the writes
        committed in ``[t0, t1)`` and applied by the end of the run, every follower's);
        ``behind_mean``, ``behind_p50``, ``behind_p95``, ``behind_p99``, ``behind_max``
        (seconds, over every follower's ``replica_behind`` samples in ``[t0, t1]``); both NaN
        without followers; ``pool_wait_mean`` (seconds waited for a connection, over the
        requests that got one), ``pool_wait_p99`` (from spans: single-node operations),
        ``pool_timeouts`` and ``pool_timeout_ratio`` (over arriving requests).
    """
    db = _databases(samples)
    if db.empty:
        return pd.DataFrame(columns=REPLICATION_COLUMNS)
    sums = {m: _totals(db, m, t0, t1).groupby(level=0).sum()
            for m in ("reads_ok_total", "stale_reads_total", "reads_total", "writes_total",
                      "pool_wait_time_total", "pool_acquired_total", "pool_timeouts_total")}
    behind = db[(db["metric"] == "replica_behind") & (db["time"] >= t0 - 1e-9)
                & (db["time"] <= t1 + 1e-9)]
    if writes is not None and len(writes):
        w = writes[(writes["committed"] >= t0) & (writes["committed"] < t1)]
        write_lag = pd.Series((w["applied"] - w["committed"]).to_numpy(),
                              index=w["database"].astype(str).to_numpy())
    else:
        write_lag = pd.Series(dtype=float)
    rows = []
    for component in sorted(db["component"].astype(str).unique()):
        def get(metric: str, c: str = component) -> float:
            return float(sums[metric].get(c, 0.0))

        ok, stale = get("reads_ok_total"), get("stale_reads_total")
        arriving = get("reads_total") + get("writes_total")
        acquired = get("pool_acquired_total")
        behinds = behind.loc[behind["component"].astype(str) == component, "value"].to_numpy()
        lags = write_lag[write_lag.index == component].to_numpy()
        wait_p99 = np.nan
        if not spans.empty:
            sp = spans[(spans["component"].astype(str) == component)
                       & (spans["arrival"] >= t0) & (spans["arrival"] < t1)]
            waits = (sp["start"] - sp["arrival"]).dropna().to_numpy()
            if len(waits):
                wait_p99 = float(np.quantile(waits, 0.99))
        instances = db.loc[db["component"].astype(str) == component, "instance"]
        timeouts = get("pool_timeouts_total")
        rows.append({
            "component": component,
            "shards": int(instances.astype(str).nunique()),
            "reads": int(ok),
            "stale_reads": int(stale),
            "stale_read_ratio": stale / ok if ok else np.nan,
            "writes": int(get("writes_total")),
            **_spread("write_lag", lags),
            **_spread("behind", behinds),
            "pool_wait_mean": get("pool_wait_time_total") / acquired if acquired else np.nan,
            "pool_wait_p99": wait_p99,
            "pool_timeouts": int(timeouts),
            "pool_timeout_ratio": timeouts / arriving if arriving else np.nan,
        })
    return pd.DataFrame(rows, columns=REPLICATION_COLUMNS)


def _spread(prefix: str, values: np.ndarray) -> dict[str, float]:
    """``prefix_mean``, ``_p50``, ``_p95``, ``_p99`` and ``_max`` of ``values`` (NaN if none)."""
    if not len(values):
        return {f"{prefix}_{s}": np.nan for s in ("mean", "p50", "p95", "p99", "max")}
    qs = np.quantile(values, [0.5, 0.95, 0.99])
    return {f"{prefix}_mean": float(values.mean()), f"{prefix}_p50": float(qs[0]),
            f"{prefix}_p95": float(qs[1]), f"{prefix}_p99": float(qs[2]),
            f"{prefix}_max": float(values.max())}


def reshard_summary(events: pd.DataFrame) -> pd.DataFrame:
    """The ``reshard`` events of a run, one row each.

    Returns
    -------
    pandas.DataFrame
        ``time``, ``component``, ``from_shards``, ``to_shards``, ``scheme``; ``keys`` (the key
        space measured: the largest ``keys.n`` of the workloads, or the database's
        ``key_space``), ``moved_ratio`` (fraction of those keys whose shard changed),
        ``moved_to_new_ratio`` (of the moved keys, the fraction sent to shards that did not
        exist before: 1 for consistent hashing when adding shards); ``seen_keys`` and
        ``seen_moved_ratio``: the same over the keys requested since the previous reshard.
    """
    ev = events[events["event"] == "reshard"]
    rows = []
    for time, component, detail in zip(ev["time"], ev["component"].astype(str),
                                       ev["detail"].astype(str), strict=True):
        f = dict(part.split("=", 1) for part in detail.split() if "=" in part)
        rows.append({
            "time": float(time), "component": component,
            "from_shards": int(f.get("from", -1)), "to_shards": int(f.get("to", -1)),
            "scheme": f.get("scheme", ""),
            "keys": int(f.get("keys", 0)),
            "moved_ratio": float(f.get("moved_ratio", "nan")),
            "moved_to_new_ratio": float(f.get("moved_to_new_ratio", "nan")),
            "seen_keys": int(f.get("seen_keys", 0)),
            "seen_moved_ratio": float(f.get("seen_moved_ratio", "nan")),
        })
    return pd.DataFrame(rows, columns=RESHARD_COLUMNS)


def failover_summary(events: pd.DataFrame) -> pd.DataFrame:
    """The ``failover`` events of a run (database leader promotions), one row each.

    Returns
    -------
    pandas.DataFrame
        ``component``, ``shard`` (the instance), ``crashed`` and ``promoted`` (node names as
        built: ``leader``, ``follower1``...), ``crashed_at``, ``detected_at``, ``promoted_at``
        (seconds), ``write_unavailability`` (promoted_at - crashed_at: writes fail meanwhile),
        ``lost_writes`` (acknowledged writes the promoted node had not applied: gone) and
        ``discarded_writes`` (committed on the old leader, never acknowledged, not on the new
        one).
    """
    ev = events[events["event"] == "failover"]
    # a geo load balancer's change of region is a ``failover`` event too: not a promotion
    ev = ev[ev["detail"].astype(str).str.contains("promoted=", regex=False)]
    rows = []
    for component, shard, detail in zip(ev["component"].astype(str), ev["instance"].astype(str),
                                        ev["detail"].astype(str), strict=True):
        f = dict(part.split("=", 1) for part in detail.split() if "=" in part)
        rows.append({
            "component": component, "shard": shard,
            "crashed": f.get("crashed", ""), "promoted": f.get("promoted", ""),
            "crashed_at": float(f.get("crashed_at", "nan")),
            "detected_at": float(f.get("detected_at", "nan")),
            "promoted_at": float(f.get("promoted_at", "nan")),
            "write_unavailability": float(f.get("duration", "nan")),
            "lost_writes": int(f.get("lost_writes", 0)),
            "discarded_writes": int(f.get("discarded_writes", 0)),
        })
    return pd.DataFrame(rows, columns=FAILOVER_COLUMNS)


# --------------------------------------------------------------------------------------------
# caches (``kind: cache``, recognised by their ``entries_time_total`` gauge)

CACHE_COLUMNS = ["scope", "name", "reads", "hits", "misses", "hit_ratio", "coalesced", "loads",
                 "evictions", "expirations", "stale_reads", "stale_read_ratio", "mean_entries",
                 "writes", "lost_writes"]
CACHE_WINDOW_COLUMNS = ["cache", "start", "end", "reads", "hits", "hit_ratio", "stale_reads",
                        "stale_read_ratio", "size"]
_CACHE_COUNTERS = {"hits": "hits_total", "misses": "misses_total",
                   "coalesced": "coalesced_total", "loads": "loads_total",
                   "evictions": "evictions_total", "expirations": "expirations_total",
                   "stale_reads": "stale_reads_total", "writes": "writes_total",
                   "lost_writes": "lost_writes_total"}


def _caches(samples: pd.DataFrame) -> pd.DataFrame:
    """The samples of cache components only."""
    names = samples.loc[samples["metric"] == "entries_time_total", "component"].astype(
        str).unique()
    return samples[samples["component"].astype(str).isin(names)]


def cache_summary(samples: pd.DataFrame, requests: pd.DataFrame, t0: float, t1: float
                  ) -> pd.DataFrame:
    """Hit ratio, misses, evictions, coalesced loads and staleness of every cache over
    ``[t0, t1]``, and what the workloads saw.

    Parameters
    ----------
    samples, requests
        Tables of a run.
    t0, t1
        The window, seconds (the measured window: warm-up to duration).

    Returns
    -------
    pandas.DataFrame
        Rows of scope ``cache``, one per cache component (its instances summed), from the
        changes of its cumulative gauges between the samples nearest the window's edges:
        ``reads`` (= ``hits`` + ``misses``), ``hit_ratio``, ``coalesced`` (misses that waited
        for a load in flight), ``loads`` (backing-store reads), ``evictions``, ``expirations``,
        ``stale_reads`` and ``stale_read_ratio`` (reads answered with a version older than the
        committed one, over reads), ``mean_entries`` (time-average number of live entries),
        ``writes``, ``lost_writes`` (write-behind writes lost in a crash). Then rows of scope
        ``workload``, one per workload whose requests consulted a cache, from the requests
        created in the window: ``reads`` (requests a cache answered), ``hits`` and ``misses``
        of the first cache on the path, ``hit_ratio``, ``stale_reads`` (requests that got an
        outdated version anywhere on their path) and ``stale_read_ratio``; other columns NaN.
    """
    rows: list[dict[str, object]] = []
    caches = _caches(samples)
    if not caches.empty:
        sums = {col: _totals(caches, metric, t0, t1).groupby(level=0).sum()
                for col, metric in _CACHE_COUNTERS.items()}
        area = window_delta(caches, "entries_time_total", t0, t1)
        area["component"] = area["component"].astype(str)
        span = (area["t1"] - area["t0"]).where(area["t1"] > area["t0"])
        area["mean"] = area["delta"] / span
        mean_entries = area.groupby("component")["mean"].sum(min_count=1)
        for name in sorted(caches["component"].astype(str).unique()):
            got = {col: float(s.get(name, 0.0)) for col, s in sums.items()}
            reads = got["hits"] + got["misses"]
            rows.append({
                "scope": "cache", "name": name, "reads": int(reads),
                **{col: int(v) for col, v in got.items()},
                "hit_ratio": got["hits"] / reads if reads else np.nan,
                "stale_read_ratio": got["stale_reads"] / reads if reads else np.nan,
                "mean_entries": float(mean_entries.get(name, np.nan)),
            })
    req = requests[(requests["start"] >= t0) & (requests["start"] < t1)]
    answered = req[req["cache"].astype(str) != ""]
    for name, grp in answered.groupby(answered["workload"].astype(str), sort=False):
        label = grp["cache"].astype(str)
        hits, reads = int((label == "hit").sum()), len(grp)
        stale = int(grp["stale"].sum())
        rows.append({"scope": "workload", "name": name, "reads": reads, "hits": hits,
                     "misses": reads - hits, "hit_ratio": hits / reads,
                     "stale_reads": stale, "stale_read_ratio": stale / reads})
    return pd.DataFrame(rows, columns=CACHE_COLUMNS)


def cache_windows(samples: pd.DataFrame) -> pd.DataFrame:
    """Hit ratio and staleness of every cache per sampling interval (its instances summed).

    Returns
    -------
    pandas.DataFrame
        One row per cache and interval ``[start, end)`` between consecutive samples:
        ``reads``, ``hits``, ``hit_ratio`` (NaN without reads), ``stale_reads``,
        ``stale_read_ratio``, and ``size`` (entries at ``end``).
    """
    caches = _caches(samples)
    if caches.empty:
        return pd.DataFrame(columns=CACHE_WINDOW_COLUMNS)
    wanted = ["hits_total", "misses_total", "stale_reads_total", "size"]
    s = caches[caches["metric"].isin(wanted)].assign(
        component=lambda d: d["component"].astype(str), metric=lambda d: d["metric"].astype(str))
    wide = s.pivot_table(index=["component", "time"], columns="metric", values="value",
                         aggfunc="sum").sort_index()
    frames = []
    for name, w in wide.groupby(level=0):
        w = w.droplevel(0)
        d = w[["hits_total", "misses_total", "stale_reads_total"]].diff().iloc[1:]
        reads = d["hits_total"] + d["misses_total"]
        times = w.index.to_numpy()
        frames.append(pd.DataFrame({
            "cache": name, "start": times[:-1], "end": times[1:],
            "reads": reads.to_numpy(), "hits": d["hits_total"].to_numpy(),
            "hit_ratio": (d["hits_total"] / reads.where(reads > 0)).to_numpy(),
            "stale_reads": d["stale_reads_total"].to_numpy(),
            "stale_read_ratio": (d["stale_reads_total"] / reads.where(reads > 0)).to_numpy(),
            "size": w["size"].to_numpy()[1:],
        }))
    return pd.concat(frames, ignore_index=True)[CACHE_WINDOW_COLUMNS]
