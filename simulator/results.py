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

import pandas as pd

from simulator.analysis.diagnostics import breaker_summary, fault_recovery
from simulator.analysis.summary import backend_share, summarize

if TYPE_CHECKING:
    from simulator.analysis.plots import PlotAccessor
    from simulator.scenario import Scenario

TABLE_NAMES = ("requests", "spans", "samples", "events")


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
        ``requests``, ``spans``, ``samples`` and ``events`` (see :mod:`simulator.metrics.schema`).
    wall_seconds
        Wall-clock time the run took (informational; never part of the tables).
    """

    scenario: Scenario
    seed: int
    replication: int
    tables: dict[str, pd.DataFrame]
    wall_seconds: float = field(default=0.0, compare=False)

    @property
    def requests(self) -> pd.DataFrame:
        """One row per client request, end to end."""
        return self.tables["requests"]

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
    def window(self) -> tuple[float, float]:
        """The measured window ``(warmup, duration)``."""
        return self.scenario.warmup, self.scenario.duration

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
        return summarize(self.requests, self.spans, self.samples, t0, t1)

    def backend_share(self) -> pd.DataFrame:
        """Share of requests each balancer sent to each backend in the measured window."""
        t0, t1 = self.window
        return backend_share(self.samples, t0, t1)

    def breakers(self) -> pd.DataFrame:
        """Time each circuit breaker spent closed, open and half-open, and its openings."""
        t0, t1 = self.window
        return breaker_summary(self.events, t0, t1)

    def recovery(self) -> pd.DataFrame:
        """Recovery time after each fault ends (``recovered`` False: it stayed degraded)."""
        t0, t1 = self.window
        return fault_recovery(self.requests, self.scenario.faults, t0, t1)

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
            for name in TABLE_NAMES:
                _write_table(self.tables[name], tmp / name, fmt)
            _write_table(self.summary(), tmp / "summary", fmt)
            _write_table(self.backend_share(), tmp / "backend_share", fmt)
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
