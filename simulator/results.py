"""Results of one run: tidy pandas tables, the scenario, the seed, and summaries."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from simulator.analysis.diagnostics import breaker_summary, fault_recovery
from simulator.analysis.summary import backend_share, queue_summary, summarize
from simulator.metrics.streaming import (
    StreamingUnavailableError,
    cache_workload_rows,
    latency_quantiles,
    summarize_streaming,
    window_detail,
)

if TYPE_CHECKING:
    from simulator.analysis.plots import PlotAccessor
    from simulator.scenario import Scenario

TABLE_NAMES = ("requests", "spans", "samples", "events", "messages", "commands", "projections")
#: Tables computed from those over the measured window, each by the ``Results`` method of the
#: same name: what ``write`` saves beside the raw tables (``summary`` and ``backend_share``
#: always, the others when the run has what they describe) and what experiments can collect.
DERIVED_TABLES = ("summary", "backend_share", "queue_summary", "cache_summary", "cdn_summary",
                  "cdn_latency", "shard_summary", "replication_summary", "reshards",
                  "failovers", "region_summary", "breakers", "recovery",
                  "event_sourcing_summary", "projection_summary", "rebuilds")


@dataclass
class Results:
    """The tables of one run.

    Attributes
    ----------
    scenario
        The scenario that ran.
    seed, replication
        What the random streams were derived from.
    tables
        ``requests``, ``spans``, ``samples``, ``events`` and ``messages`` (see
        :mod:`simulator.metrics.schema`).
    wall_seconds
        Wall-clock time the run took (informational; never part of the tables).
    """

    scenario: Scenario
    seed: int
    replication: int
    tables: dict[str, pd.DataFrame]
    wall_seconds: float = field(default=0.0, compare=False)

    @property
    def streaming(self) -> bool:
        """Whether requests were streamed into counters and histograms (no requests table)."""
        return self.scenario.metrics.requests == "streaming"

    @property
    def requests(self) -> pd.DataFrame:
        """One row per client request, end to end (not kept by streaming runs)."""
        if self.streaming:
            raise StreamingUnavailableError("the requests table")
        return self.tables["requests"]

    @property
    def request_stats(self) -> pd.DataFrame:
        """Streaming runs: counts and totals per workload, operation and status."""
        if not self.streaming:
            raise ValueError("request_stats exists only with metrics.requests: streaming "
                             "(this run has the requests table)")
        return self.tables["request_stats"]

    @property
    def latency_histogram(self) -> pd.DataFrame:
        """Streaming runs: log-bucketed latency counts per workload, operation and status."""
        if not self.streaming:
            raise ValueError("latency_histogram exists only with metrics.requests: streaming "
                             "(this run has the requests table)")
        return self.tables["latency_histogram"]

    def request_count(self) -> int:
        """Requests in the requests table; for a streaming run, those created in the window."""
        if self.streaming:
            return int(self.tables["request_stats"]["count"].sum())
        return len(self.tables["requests"])

    def latency_quantiles(self, qs: list[float], by: list[str] | None = None,
                          status: str | None = "ok") -> pd.DataFrame:
        """Latency quantiles of the measured window (columns ``q0.99``...), per ``by`` group.

        Exact (``numpy.quantile``) from the requests table; within ``metrics.latency_error``
        of the exact ones from a streaming run's histograms.
        """
        if self.streaming:
            return latency_quantiles(self.latency_histogram, qs,
                                     self.scenario.metrics.latency_error, by, status)
        r = self.measured_requests()
        r = r[r["status"].notna()] if status is None else r[r["status"].astype(str) == status]
        r = r[r["status"].astype(str) != "in_flight"]
        names = [f"q{q:g}" for q in qs]
        if not by:
            vals = np.quantile(r["latency"].to_numpy(), qs) if len(r) else [np.nan] * len(qs)
            return pd.DataFrame([dict(zip(names, map(float, vals), strict=True))],
                                columns=names)
        out = r.groupby(by, observed=True)["latency"].quantile(np.asarray(qs)).unstack()
        out.columns = names
        return out.reset_index()

    @property
    def spans(self) -> pd.DataFrame:
        """One row per hop at a component that does work."""
        return self.tables["spans"]

    @property
    def samples(self) -> pd.DataFrame:
        """Gauges sampled every ``metrics.interval``."""
        return self.tables["samples"]

    @property
    def events(self) -> pd.DataFrame:
        """State changes."""
        return self.tables["events"]

    @property
    def messages(self) -> pd.DataFrame:
        """One row per message stored in a queue or topic subscription (or refused)."""
        return self._table("messages")

    @property
    def commands(self) -> pd.DataFrame:
        """One row per load-decide-append attempt of an event store."""
        return self._table("commands")

    @property
    def projections(self) -> pd.DataFrame:
        """One row per event applied by a read model (live or replayed by a rebuild)."""
        return self._table("projections")

    def _table(self, name: str) -> pd.DataFrame:
        if name not in self.tables:  # results assembled before the table existed
            from simulator.metrics.schema import TABLES

            return pd.DataFrame({c: pd.Series(dtype=d) for c, (d, _) in
                                 TABLES[name].items()})
        return self.tables[name]

    @property
    def window(self) -> tuple[float, float]:
        """The measured window ``(warmup, duration)``; with ``warmup: auto``, the warm-up MSER-5
        chooses on the latencies of the requests created before ``duration``."""
        warmup = self.scenario.warmup
        if warmup == "auto":
            return self._auto_warmup, self.scenario.duration
        return warmup, self.scenario.duration

    @cached_property
    def _auto_warmup(self) -> float:
        from simulator.analysis.stats import mser_warmup

        req = self.requests
        inside = (req["start"] < self.scenario.duration).to_numpy()
        return mser_warmup(req["start"].to_numpy()[inside], req["latency"].to_numpy()[inside])

    def measured_requests(self) -> pd.DataFrame:
        """Requests created inside the measured window."""
        t0, t1 = self.window
        r = self.requests
        return r[(r["start"] >= t0) & (r["start"] < t1)]

    def summary(self) -> pd.DataFrame:
        """Per workload and per component: counts, throughput, latency percentiles, ratios.

        Latencies are in seconds, over successful requests in the measured window.
        """
        t0, t1 = self.window
        if self.streaming:
            self._check_streamed_window()
            return summarize_streaming(self.request_stats, self.latency_histogram,
                                       self.scenario.metrics.latency_error, t1 - t0)
        return summarize(self.requests, self.spans, self.samples, t0, t1)

    def _check_streamed_window(self) -> None:
        """A streaming run counted the window it ran with; another cannot be applied later."""
        events = self.events
        ran = events[events["event"].astype(str) == "streamed_window"]
        if len(ran) and str(ran["detail"].iloc[0]) != window_detail(*self.window):
            raise StreamingUnavailableError("a measured window other than the run's own")

    def backend_share(self) -> pd.DataFrame:
        """Share of requests each balancer sent to each backend in the measured window."""
        t0, t1 = self.window
        return backend_share(self.samples, t0, t1)

    def queue_summary(self) -> pd.DataFrame:
        """Per queue and topic subscription: messages published, acknowledged, dead-lettered,
        still there; redeliveries; end-to-end time; depth, oldest age and lag (seconds)."""
        t0, t1 = self.window
        return queue_summary(self.messages, self.samples, t0, t1)

    def cache_summary(self) -> pd.DataFrame:
        """Per cache and per workload: hit ratio, misses, coalesced loads, evictions, stale
        reads, mean entries over the measured window (see
        :func:`simulator.analysis.data.cache_summary`); empty without caches."""
        from simulator.analysis.data import cache_summary

        t0, t1 = self.window
        if self.streaming:
            self._check_streamed_window()
            from simulator.metrics.schema import TABLES

            empty = pd.DataFrame({c: pd.Series(dtype=d) for c, (d, _) in
                                  TABLES["requests"].items()})
            table = cache_summary(self.samples, empty, t0, t1)
            rows = cache_workload_rows(self.request_stats)
            if table.empty and not rows:
                return table
            return pd.concat([table, pd.DataFrame(rows, columns=table.columns)],
                             ignore_index=True) if rows else table
        return cache_summary(self.samples, self.requests, t0, t1)

    def cdn_summary(self) -> pd.DataFrame:
        """Per CDN edge (and per CDN, edge ``all``): requests, hit ratio, origin fetches and
        offload, user latency over the measured window (see
        :func:`simulator.analysis.cdn.cdn_summary`); empty without a CDN."""
        from simulator.analysis.cdn import cdn_summary

        t0, t1 = self.window
        return cdn_summary(self.samples, self.events, self.requests, self.spans, t0, t1)

    def cdn_latency(self) -> pd.DataFrame:
        """Latency users of each region saw through each CDN (see
        :func:`simulator.analysis.cdn.cdn_latency`); empty without a CDN or spans."""
        from simulator.analysis.cdn import cdn_latency

        t0, t1 = self.window
        return cdn_latency(self.events, self.requests, self.spans, t0, t1)

    def shard_summary(self) -> pd.DataFrame:
        """Per database shard: reads, writes, share of the database's requests, skew (max over
        mean) and the hottest shard, over the measured window (see
        :func:`simulator.analysis.data.shard_summary`); empty without databases."""
        from simulator.analysis.data import shard_summary

        t0, t1 = self.window
        return shard_summary(self.samples, t0, t1)

    def replication_summary(self) -> pd.DataFrame:
        """Per database: stale-read ratio, replica lag percentiles (seconds), connection-pool
        wait and timeouts over the measured window (see
        :func:`simulator.analysis.data.replication_summary`); empty without databases."""
        from simulator.analysis.data import replication_summary

        t0, t1 = self.window
        return replication_summary(self.samples, self.spans, t0, t1)

    def reshards(self) -> pd.DataFrame:
        """Each reshard of the run: shard counts and the fraction of keys moved."""
        from simulator.analysis.data import reshard_summary

        return reshard_summary(self.events)

    def failovers(self) -> pd.DataFrame:
        """Each database failover of the run: shard, node crashed and promoted, times, write
        unavailability, lost writes (see :func:`simulator.analysis.data.failover_summary`)."""
        from simulator.analysis.data import failover_summary

        return failover_summary(self.events)

    def region_summary(self) -> pd.DataFrame:
        """Per client region: requests, success ratio, latency percentiles (seconds) and geo
        failovers, over the measured window and during each region fault (see
        :func:`simulator.analysis.regions.region_summary`); empty without client regions."""
        from simulator.analysis.regions import region_summary

        t0, t1 = self.window
        return region_summary(self.requests, self.events, self.scenario.faults, t0, t1)

    def breakers(self) -> pd.DataFrame:
        """Time each circuit breaker spent closed, open and half-open, and its openings."""
        t0, t1 = self.window
        return breaker_summary(self.events, t0, t1)

    def recovery(self) -> pd.DataFrame:
        """Recovery time after each fault ends (``recovered`` False: it stayed degraded)."""
        t0, t1 = self.window
        return fault_recovery(self.requests, self.scenario.faults, t0, t1)

    def event_sourcing_summary(self) -> pd.DataFrame:
        """Per event store: commands, conflicts and conflict ratio, retries, failures, rebuild
        (load) time percentiles, events replayed, snapshots (see
        :func:`simulator.analysis.event_sourcing.command_summary`); empty without one."""
        from simulator.analysis.event_sourcing import command_summary

        t0, t1 = self.window
        return command_summary(self.commands, t0, t1)

    def projection_summary(self) -> pd.DataFrame:
        """Per read model: events applied, projection lag percentiles, stale-read ratio,
        events behind (see :func:`simulator.analysis.event_sourcing.projection_summary`);
        empty without one."""
        from simulator.analysis.event_sourcing import projection_summary

        t0, t1 = self.window
        return projection_summary(self.projections, self.samples, t0, t1)

    def rebuilds(self) -> pd.DataFrame:
        """Each projection rebuild of the run: start, end, duration, events replayed."""
        from simulator.analysis.event_sourcing import rebuild_summary

        return rebuild_summary(self.events, self.projections)

    @classmethod
    def read(cls, directory: str | Path) -> Results:
        """Read the results of a run written by :meth:`write` (parquet or csv tables).

        Raises
        ------
        FileNotFoundError
            When ``directory`` holds no ``manifest.json`` or misses a table.
        simulator.errors.ScenarioError
            When the scenario in the manifest is not valid (for this version of the code).
        """
        from simulator.scenario import parse_scenario

        source = Path(directory)
        manifest_path = source / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{source}: no manifest.json (not a results directory "
                                    "written by `simulator run --out`)")
        manifest = json.loads(manifest_path.read_text())
        if "scenario" not in manifest:
            kind = manifest.get("kind", "unknown")
            raise FileNotFoundError(f"{source}: holds the results of an experiment ({kind}), "
                                    "not of one run")
        scenario = parse_scenario(manifest["scenario"])
        if scenario.metrics.requests == "streaming":
            from simulator.metrics.streaming import STREAMING_TABLES

            names = [n for n in dict.fromkeys([*TABLE_NAMES, *_schema_tables()])
                     if n != "requests"]
            tables = {name: _read_table(source / name, name, required=name in _REQUIRED_TABLES
                                        and name != "requests") for name in names}
            for name in STREAMING_TABLES:
                tables[name] = _read_table(source / name, name)
        else:
            tables = {name: _read_table(source / name, name,
                                        required=name in _REQUIRED_TABLES)
                      for name in dict.fromkeys([*TABLE_NAMES, *_schema_tables()])}
        return cls(scenario, int(manifest.get("seed", scenario.seed)),
                   int(manifest.get("replication", 0)), tables)

    @cached_property
    def plot(self) -> PlotAccessor:
        """Plots of this run (``results.plot.latency_cdf()``...); matplotlib loads on first use."""
        from simulator.analysis.plots import PlotAccessor

        return PlotAccessor(self)

    def write(
        self, directory: str | Path, fmt: Literal["parquet", "csv"] = "parquet",
        plots: bool = False,
    ) -> Path:
        """Write every table, the summary and the resolved scenario (and plots) to ``directory``.

        The directory is written whole or not at all: files go to a temporary sibling that
        replaces ``directory`` only once everything is written.
        """
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            streamed = self.streaming
            for name in dict.fromkeys([*TABLE_NAMES, *self.tables]):
                if not (streamed and name == "requests"):
                    _write_table(self._table(name), tmp / name, fmt)
            for stem in DERIVED_TABLES:
                try:
                    table = getattr(self, stem)()
                except StreamingUnavailableError:
                    continue  # it needs the requests table, which a streaming run does not keep
                if stem in ("summary", "backend_share") or not table.empty:
                    _write_table(table, tmp / stem, fmt)
            manifest = {
                "scenario": self.scenario.model_dump(mode="json", by_alias=True),
                "seed": self.seed,
                "replication": self.replication,
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
            if plots:
                from simulator.analysis.plots import write_plots

                write_plots(self, tmp / "plots")
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
                os.replace(target, old / "x")
                os.replace(tmp, target)
                shutil.rmtree(old)
            else:
                os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target


def _write_table(df: pd.DataFrame, stem: Path, fmt: str) -> None:
    if fmt == "parquet":
        df.to_parquet(stem.with_suffix(".parquet"), index=False)
    else:
        df.to_csv(stem.with_suffix(".csv"), index=False)


#: Tables every results directory has (later tables read as empty when absent).
_REQUIRED_TABLES = ("requests", "spans", "samples", "events")


def _schema_tables() -> list[str]:
    from simulator.metrics.schema import TABLES

    return list(TABLES)


def _read_table(stem: Path, name: str, required: bool = True) -> pd.DataFrame:
    """Read one table written by :func:`_write_table`, restoring the schema's dtypes.

    A table that is not ``required`` and was not written comes back empty, with its columns.
    """
    from simulator.metrics.schema import TABLES as SCHEMA
    from simulator.metrics.streaming import STREAMING_TABLES

    schema = {**SCHEMA, **STREAMING_TABLES}
    parquet, csv = stem.with_suffix(".parquet"), stem.with_suffix(".csv")
    if parquet.is_file():
        df = pd.read_parquet(parquet)
    elif csv.is_file():
        df = pd.read_csv(csv)
    elif not required:
        df = pd.DataFrame({c: pd.Series(dtype=d) for c, (d, _) in schema[name].items()})
    else:
        raise FileNotFoundError(f"{stem.parent}: no {name}.parquet or {name}.csv")
    for col, (dtype, _) in schema.get(name, {}).items():
        if col not in df or str(df[col].dtype) == dtype:
            continue
        if dtype in ("category", "object"):  # csv: empty strings come back as NaN
            text = df[col].astype(object).where(df[col].notna(), "")
            df[col] = text.astype(str).astype("category") if dtype == "category" else text
        else:
            df[col] = df[col].astype(dtype)  # type: ignore[call-overload]
    return df

