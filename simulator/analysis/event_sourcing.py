"""Event sourcing and CQRS from the tables: conflicts and rebuild costs, projection lag,
staleness of the read side, projection rebuilds.

Computed from the ``commands`` and ``projections`` tables and the gauges an ``event_store``
and a ``read_model`` record (see :mod:`simulator.components.event_store` and
:mod:`simulator.components.read_model`); nothing here simulates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.analysis.summary import window_delta

COMMAND_COLUMNS = [
    "store", "commands", "attempts", "committed", "conflicts", "conflict_ratio", "retries",
    "failed", "failed_ratio", "crashed", "rebuild_mean", "rebuild_p50", "rebuild_p99",
    "rebuild_max", "replayed_mean", "replayed_max", "snapshots",
]
PROJECTION_COLUMNS = [
    "read_model", "applied", "lag_mean", "lag_p50", "lag_p95", "lag_p99", "lag_max",
    "reads", "stale_reads", "stale_read_ratio", "rejected_reads", "behind_mean", "behind_max",
    "duplicates", "gaps", "replayed",
]
REBUILD_COLUMNS = ["read_model", "start", "end", "duration", "replayed"]


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.quantile(x, q)) if len(x) else np.nan


def command_summary(commands: pd.DataFrame, t0: float, t1: float) -> pd.DataFrame:
    """Per event store, the commands whose first attempt started in ``[t0, t1)``.

    Returns
    -------
    pandas.DataFrame
        ``commands`` (first attempts), ``attempts`` (load-decide-append attempts, retries
        included), ``committed``, ``conflicts`` (attempts refused by the version check) and
        ``conflict_ratio`` (over attempts), ``retries``, ``failed`` (commands that ran out of
        retries: status ``conflict``) and ``failed_ratio`` (over commands), ``crashed``
        (attempts cut short by a crash of the store); the rebuild time of the aggregate at
        each load (``rebuild_*``, seconds: ``loaded - start``) and the events it replayed
        (``replayed_mean``, ``replayed_max``); ``snapshots`` written.
        Empty without event stores.
    """
    # a command's attempts count with it: those of commands whose first attempt started in
    # the window (a request retried at the edge is several commands, each from attempt 1)
    c = commands.sort_values(["request_id", "start"], kind="stable")
    nth = (c["attempt"] == 1).astype("int64").groupby(
        [c["store"].astype(str), c["request_id"]]).cumsum()
    began = c.groupby([c["store"].astype(str), c["request_id"], nth])["start"].transform("min")
    c = c[(began >= t0) & (began < t1)]
    stores = (list(commands["store"].cat.categories)
              if isinstance(commands["store"].dtype, pd.CategoricalDtype)
              else list(dict.fromkeys(commands["store"].astype(str))))
    stores = [s for s in stores if (commands["store"] == s).any()]
    rows = []
    for name in stores:
        g = c[c["store"] == name]
        outcome = g["outcome"].astype(str)
        attempts = len(g)
        first = int((g["attempt"] == 1).sum())
        conflicts = int(outcome.isin(["retried", "conflict"]).sum())
        failed = int((outcome == "conflict").sum())
        rebuild = (g["loaded"] - g["start"]).to_numpy()
        replayed = g["replayed"].to_numpy()
        rows.append({
            "store": str(name), "commands": first, "attempts": attempts,
            "committed": int((outcome == "committed").sum()), "conflicts": conflicts,
            "conflict_ratio": conflicts / attempts if attempts else np.nan,
            "retries": int((outcome == "retried").sum()), "failed": failed,
            "failed_ratio": failed / first if first else np.nan,
            "crashed": int((outcome == "crashed").sum()),
            "rebuild_mean": float(rebuild.mean()) if len(rebuild) else np.nan,
            "rebuild_p50": _pct(rebuild, 0.5), "rebuild_p99": _pct(rebuild, 0.99),
            "rebuild_max": float(rebuild.max()) if len(rebuild) else np.nan,
            "replayed_mean": float(replayed.mean()) if len(replayed) else np.nan,
            "replayed_max": int(replayed.max()) if len(replayed) else 0,
            "snapshots": int(g["snapshot"].sum()),
        })
    return pd.DataFrame(rows, columns=COMMAND_COLUMNS)


def _read_models(samples: pd.DataFrame) -> list[str]:
    """Read models are recognised by their ``rebuilding`` gauge."""
    s = samples.loc[samples["metric"] == "rebuilding", "component"].astype(str)
    return list(dict.fromkeys(s))


def projection_summary(projections: pd.DataFrame, samples: pd.DataFrame, t0: float, t1: float
                       ) -> pd.DataFrame:
    """Per read model: projection lag of the events committed in ``[t0, t1)`` and applied
    live, and the read side's staleness over the window.

    Returns
    -------
    pandas.DataFrame
        ``applied`` (live), projection lag ``lag_*`` (seconds from commit to application);
        ``reads`` (answered), ``stale_reads`` and ``stale_read_ratio`` (reads that returned an
        older version than the store's committed one at that instant), ``rejected_reads``
        (full queue, or refused during a rebuild); ``behind_mean`` and ``behind_max``
        (events committed and not yet reflected, over the window's samples);
        ``duplicates`` and ``gaps`` (events applied out of sequence); ``replayed`` (events
        applied by rebuilds in the window). Events committed in the window and never applied
        are not in the lag figures: ``behind`` shows them. Empty without read models.
    """
    names = _read_models(samples)
    if not names:
        return pd.DataFrame(columns=PROJECTION_COLUMNS)
    totals = {}
    for metric in ("reads_ok_total", "stale_reads_total", "rejected_total", "duplicates_total",
                   "gaps_total"):
        d = window_delta(samples, metric, t0, t1)
        totals[metric] = d.groupby(d["component"].astype(str))["delta"].sum() if len(d) \
            else pd.Series(dtype=float)
    behind = samples[(samples["metric"] == "behind") & (samples["time"] >= t0 - 1e-9)
                     & (samples["time"] <= t1 + 1e-9)]
    model = projections["read_model"].astype(str)
    rows = []
    for name in names:
        p = projections[model == name]
        live = p[~p["replay"] & (p["committed"] >= t0) & (p["committed"] < t1)]
        lag = (live["applied"] - live["committed"]).to_numpy()
        replayed = p[p["replay"] & (p["applied"] >= t0) & (p["applied"] <= t1)]
        reads = float(totals["reads_ok_total"].get(name, 0.0))
        stale = float(totals["stale_reads_total"].get(name, 0.0))
        b = behind.loc[behind["component"].astype(str) == name, "value"]
        rows.append({
            "read_model": name, "applied": len(live),
            "lag_mean": float(lag.mean()) if len(lag) else np.nan,
            "lag_p50": _pct(lag, 0.5), "lag_p95": _pct(lag, 0.95), "lag_p99": _pct(lag, 0.99),
            "lag_max": float(lag.max()) if len(lag) else np.nan,
            "reads": int(reads), "stale_reads": int(stale),
            "stale_read_ratio": stale / reads if reads else np.nan,
            "rejected_reads": int(totals["rejected_total"].get(name, 0.0)),
            "behind_mean": float(b.mean()) if len(b) else np.nan,
            "behind_max": float(b.max()) if len(b) else np.nan,
            "duplicates": int(totals["duplicates_total"].get(name, 0.0)),
            "gaps": int(totals["gaps_total"].get(name, 0.0)),
            "replayed": len(replayed),
        })
    return pd.DataFrame(rows, columns=PROJECTION_COLUMNS)


def rebuild_summary(events: pd.DataFrame, projections: pd.DataFrame) -> pd.DataFrame:
    """Each projection rebuild: ``start``, ``end`` (NaN if it had not caught up by the end of
    the run, or was superseded by another rebuild), ``duration`` (seconds) and the events it
    ``replayed``."""
    e = events[events["event"].astype(str) == "rebuild"].sort_values("time", kind="stable")
    rows = []
    open_: dict[str, dict[str, object]] = {}
    replay = projections[projections["replay"]]
    for t, comp, detail in zip(e["time"], e["component"].astype(str), e["detail"],
                               strict=True):
        if str(detail) == "start":
            if comp in open_:
                row = open_.pop(comp)  # superseded before it finished
                row["until"] = float(t)
                rows.append(row)
            open_[comp] = {"read_model": comp, "start": float(t), "end": np.nan,
                           "duration": np.nan, "replayed": 0}
        elif comp in open_:
            row = open_.pop(comp)
            row["end"] = float(t)
            row["duration"] = float(t) - float(row["start"])  # type: ignore[arg-type]
            rows.append(row)
    rows.extend(open_.values())
    for row in rows:
        end = row["end"] if not pd.isna(row["end"]) else row.pop("until", np.inf)  # type: ignore[call-overload]
        r = replay[(replay["read_model"].astype(str) == row["read_model"])
                   & (replay["applied"] >= row["start"]) & (replay["applied"] <= end)]
        row["replayed"] = len(r)
    out = pd.DataFrame(rows, columns=REBUILD_COLUMNS)
    return out.sort_values("start", kind="stable").reset_index(drop=True)
