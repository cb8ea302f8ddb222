"""Derived tables of autoscaling and cost: ``replicas`` (the count over time per autoscaled
component) and ``cost`` (instance-seconds, instance-hours, cost, cost per million successful
requests, per component, over the measured window)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from simulator.analysis.formatting import shown

if TYPE_CHECKING:
    from simulator.results import Results

_BILLED = ("provisioning", "ready", "draining")


def has_autoscaling(results: Results) -> bool:
    """Whether some component has an ``autoscaling`` block."""
    return any(getattr(p, "autoscaling", None) is not None
               for p in results.scenario.components.values())


def has_cost(results: Results) -> bool:
    """Whether some component states a price or scales."""
    return has_autoscaling(results) or any(
        p.cost is not None for p in results.scenario.components.values())


def replicas(results: Results) -> pd.DataFrame:
    """After every change (and at time 0), per autoscaled component: how many instances
    are ``ready``, ``provisioning``, ``draining``, and ``desired`` (the autoscaler's count)."""
    states = results.tables["instance_states"]
    events = results.tables["scaling_events"]
    rows = []
    for name, group in states.groupby("component", observed=True, sort=False):
        now: dict[str, str] = {}
        desired = int((group["time"] == 0.0).sum())  # the initial replicas, ready at 0
        ev = events[events["component"] == name]
        changes = dict(zip(ev["time"], ev["to_replicas"], strict=True))
        for t, at in group.groupby("time", sort=True):
            for inst, state in zip(at["instance"], at["state"], strict=True):
                now[str(inst)] = str(state)
            desired = int(changes.get(t, desired))
            counts = pd.Series(list(now.values())).value_counts()
            rows.append({"time": t, "component": str(name), "desired": desired,
                         **{s: int(counts.get(s, 0)) for s in _BILLED}})
    cols = ["time", "component", "desired", *_BILLED]
    return pd.DataFrame(rows, columns=cols).sort_values(["component", "time"],
                                                        kind="stable", ignore_index=True)


def instance_seconds(results: Results, t0: float, t1: float) -> dict[str, float]:
    """Billed instance-seconds within ``[t0, t1]`` per component: each autoscaled instance
    from the state that starts its bill (provisioning, or ready at time 0) to ``stopped``;
    a component without autoscaling has all its instances for the whole window."""
    out: dict[str, float] = {}
    states = results.tables["instance_states"]
    for name, params in results.scenario.components.items():
        if getattr(params, "autoscaling", None) is None:
            out[name] = params.instance_count * (t1 - t0)
            continue
        total = 0.0
        mine = states[states["component"] == name]
        for _, rows in mine.groupby("instance", observed=True, sort=False):
            start: float | None = None
            for t, state in zip(rows["time"], rows["state"], strict=True):
                billed = state in _BILLED
                if billed and start is None:
                    start = float(t)
                elif not billed and start is not None:
                    total += max(0.0, min(float(t), t1) - max(start, t0))
                    start = None
            if start is not None:
                total += max(0.0, t1 - max(start, t0))
        out[name] = total
    return out


def cost(results: Results) -> pd.DataFrame:
    """Per component and in total, over the measured window: ``instance_seconds``,
    ``instance_hours``, ``price_per_hour``, ``requests`` (spans at the component, when a
    request price is given), ``cost`` (= instance_seconds x price_per_hour / 3600 +
    requests x price_per_million_requests / 1e6) and ``cost_per_million_ok`` (cost per
    million successful workload requests of the window)."""
    from simulator.analysis.tables import coverage

    if not has_cost(results):
        return pd.DataFrame()
    t0, t1 = results.window
    secs = instance_seconds(results, t0, t1)
    summary = results.summary()
    ok = sum(coverage(r)["ok"] for r in summary[summary["scope"] == "workload"]
             .to_dict("records"))
    spans = results.tables.get("spans")
    rows = []
    for name, params in results.scenario.components.items():
        price = params.cost.per_instance_hour if params.cost is not None else 0.0
        per_m = params.cost.per_million_requests if params.cost is not None else 0.0
        requests = np.nan
        if per_m and spans is not None and len(spans):
            at = spans[(spans["component"] == name) & (spans["arrival"] >= t0)
                       & (spans["arrival"] < t1)]
            requests = float(len(at))
        total = secs[name] * price / 3600.0 + (requests * per_m / 1e6 if per_m else 0.0)
        rows.append({"component": name, "instance_seconds": secs[name],
                     "instance_hours": secs[name] / 3600.0, "price_per_hour": price,
                     "requests": requests, "price_per_million_requests": per_m,
                     "cost": total})
    df = pd.DataFrame(rows)
    total_row = {"component": "total", "instance_seconds": df["instance_seconds"].sum(),
                 "instance_hours": df["instance_hours"].sum(), "price_per_hour": np.nan,
                 "requests": np.nan, "price_per_million_requests": np.nan,
                 "cost": df["cost"].sum()}
    df = pd.concat([df, pd.DataFrame([total_row])], ignore_index=True)
    df["cost_per_million_ok"] = df["cost"] / ok * 1e6 if ok else np.nan
    return df


def format_cost(table: pd.DataFrame) -> pd.DataFrame:
    """Hours to 3 decimals, money to 4."""
    df = table.drop(columns=[c for c in ("requests", "price_per_million_requests")
                             if table[c].fillna(0).eq(0).all()])
    return shown(df, na_rep="-", float_format="{:.4g}".format)
