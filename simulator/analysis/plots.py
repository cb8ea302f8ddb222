"""Plots of one run. matplotlib is imported on first use only.

In a notebook: ``results.plot.latency_cdf()``; from the CLI: ``simulator run --plots`` writes
PNGs with :func:`write_plots`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results import Results


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(7, 4))
    return ax


class PlotAccessor:
    """Plots of one :class:`~simulator.results.Results`; each returns its matplotlib Axes."""

    def __init__(self, results: Results) -> None:
        self._r = results

    def latency_cdf(self, ax: Axes | None = None, by: str = "workload") -> Axes:
        """Empirical CDF of end-to-end latency of successful requests (log time axis)."""
        ax = _axes(ax)
        req = self._r.measured_requests()
        req = req[req["status"] == "ok"]
        for name, grp in req.groupby(by, observed=True):
            x = np.sort(grp["latency"].to_numpy() * 1e3)
            if len(x) == 0:
                continue
            y = np.arange(1, len(x) + 1) / len(x)
            ax.plot(x, y, label=str(name))
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("fraction of requests ≤ latency")
        ax.set_title(f"{self._r.scenario.name}: latency CDF")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(title=by)
        return ax

    def latency_over_time(
        self, ax: Axes | None = None, window: float | None = None,
        quantiles: tuple[float, ...] = (0.5, 0.95, 0.99),
    ) -> Axes:
        """Latency percentiles of successful requests per time window (by creation time)."""
        ax = _axes(ax)
        r = self._r
        window = window or r.scenario.metrics.interval
        req = r.requests[r.requests["status"] == "ok"]
        bins = np.floor(req["start"].to_numpy() / window) * window
        g = req.assign(t=bins).groupby("t")["latency"]
        for q in quantiles:
            series = g.quantile(q) * 1e3
            ax.plot(series.index, series.to_numpy(), label=f"p{q * 100:g}")
        _shade_warmup(ax, r)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"{r.scenario.name}: latency percentiles per {window:g}s")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        return ax

    def throughput_over_time(self, ax: Axes | None = None, window: float | None = None) -> Axes:
        """Completed requests per second by status, per time window (by completion time)."""
        ax = _axes(ax)
        r = self._r
        window = window or r.scenario.metrics.interval
        req = r.requests.dropna(subset=["end"])
        bins = np.floor(req["end"].to_numpy() / window) * window
        counts = req.assign(t=bins).groupby(["t", "status"], observed=True).size().unstack(
            fill_value=0) / window
        for status in counts.columns:
            ax.plot(counts.index, counts[status].to_numpy(), label=str(status))
        _shade_warmup(ax, r)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("requests per second")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{r.scenario.name}: throughput by status")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        return ax

    def backend_share(self, ax: Axes | None = None) -> Axes:
        """Share of requests each balancer sent to each backend (measured window)."""
        ax = _axes(ax)
        share = self._r.backend_share()
        labels = [f"{b}\n({lb})" if share["balancer"].nunique() > 1 else str(b)
                  for lb, b in zip(share["balancer"], share["backend"], strict=True)]
        ax.bar(range(len(share)), share["share"].to_numpy() * 100)
        ax.set_xticks(range(len(share)), labels, rotation=45, ha="right")
        ax.set_ylabel("share of requests (%)")
        ax.set_title(f"{self._r.scenario.name}: per-backend share")
        ax.grid(True, axis="y", alpha=0.3)
        return ax


def _shade_warmup(ax: Any, r: Results) -> None:
    if r.scenario.warmup > 0:
        ax.axvspan(0, r.scenario.warmup, color="grey", alpha=0.15, label="warm-up")


def write_plots(results: Results, directory: str | Path) -> list[Path]:
    """Write the standard plots of a run as PNG files; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    names = ["latency_cdf", "latency_over_time", "throughput_over_time"]
    if not results.backend_share().empty:
        names.append("backend_share")
    for name in names:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        getattr(results.plot, name)(ax=ax)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


__all__ = ["PlotAccessor", "write_plots"]
