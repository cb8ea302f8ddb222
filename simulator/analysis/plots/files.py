"""Figures and files: one plot rendered to bytes, every plot of a run written as PNGs, and
the plots of a results directory."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.analysis.plots.experiment import comparison_chart, has_values, latency_vs_load
from simulator.analysis.plots.style import LATENCY_METRICS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from simulator.results import Results


def figure(draw: Callable[[Axes], Any], size: tuple[float, float] = (10, 4.5)) -> Figure:
    """A figure outside pyplot (no global state, nothing shown): ``draw(ax)`` fills it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    draw(fig.subplots())
    fig.tight_layout()
    return fig


def _size(results: Results, name: str) -> tuple[float, float]:
    from simulator import registry

    return registry.plots()[name].figure_size(results)


def render(results: Results, name: str, fmt: str = "png", dpi: int = 110) -> bytes:
    """One plot of a run (a :class:`PlotAccessor` method name) as image bytes."""
    import io

    fig = figure(lambda ax: getattr(results.plot, name)(ax=ax), _size(results, name))
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    return buf.getvalue()


def write_plots(results: Results, directory: str | Path,
                names: Sequence[str] | None = None) -> list[Path]:
    """Write the plots of a run as PNG files; return their paths.

    Parameters
    ----------
    results
        The run.
    directory
        Created if needed; files are named after the plots (``latency_cdf.png``...).
    names
        Plots to write (default: every plot this run has data for, see
        :meth:`PlotAccessor.available`).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names if names is not None else results.plot.available():
        path = out / f"{name}.png"
        path.write_bytes(render(results, name))
        paths.append(path)
    return paths


def _read_any(directory: Path, stem: str) -> pd.DataFrame | None:
    for suffix, read in ((".parquet", pd.read_parquet), (".csv", pd.read_csv)):
        path = directory / f"{stem}{suffix}"
        if path.is_file():
            return read(path)
    return None


def _draw_on(draw: Callable[..., Any], ax: Axes) -> None:
    draw(ax=ax)


def plot_directory(directory: str | Path, out: str | Path | None = None, *,
                   results: Results | None = None) -> list[Path]:
    """Write the plots of a results directory as PNGs; return their paths.

    Parameters
    ----------
    directory
        Written by ``simulator run --out`` (a run: every plot it has data for), or by
        ``compare --out`` (:func:`comparison_chart` of each metric, means and paired
        differences) or ``sweep --out`` (:func:`latency_vs_load` of the latency percentiles,
        and of the error ratio and throughput).
    out
        Where the PNGs go (default: ``directory/plots``).
    results
        For a run's directory: the run, ``Results.read(directory)`` (read by the caller:
        the analysis layer sits below :mod:`simulator.results`). Not used for experiments.

    Raises
    ------
    FileNotFoundError
        ``directory`` is not a results directory.
    ValueError
        It holds an experiment with nothing to plot, or a run and ``results`` is None.
    """
    import json

    source = Path(directory)
    target = Path(out) if out is not None else source / "plots"
    manifest_path = source / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{source}: no manifest.json (not a results directory)")
    manifest = json.loads(manifest_path.read_text())
    if "scenario" in manifest:
        if results is None:
            raise ValueError(f"{source} holds a run: pass it as results=Results.read(directory)")
        return write_plots(results, target)
    drawings = _experiment_drawings(source, manifest)
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw, size in drawings:
        path = target / f"{name}.png"
        figure(functools.partial(_draw_on, draw), size).savefig(path, dpi=110)
        paths.append(path)
    return paths


def _experiment_drawings(source: Path, manifest: dict[str, Any],
                         ) -> list[tuple[str, Callable[..., Any], tuple[float, float]]]:
    """``(file stem, draw(ax=...), figure size)`` of each plot of an experiment's directory:
    a comparison's charts (means, then differences) per metric, a sweep's curves."""
    kind = manifest.get("kind")
    confidence = manifest.get("confidence")
    drawings: list[tuple[str, Callable[..., Any], tuple[float, float]]] = []
    if kind == "compare":
        table = _read_any(source, "comparison")
        if table is None:
            raise FileNotFoundError(f"{source}: no comparison table")
        n = table["variant"].nunique()
        for metric in pd.unique(table["metric"]):
            if not has_values(table[table["metric"] == metric]):
                continue  # every variant at exactly 0 (no errors anywhere): nothing to see
            size = (9.0, 1.4 + 0.5 * n)
            drawings.append((f"comparison_{metric}", functools.partial(
                comparison_chart, table, str(metric), confidence=confidence), size))
            drawings.append((f"comparison_{metric}_difference", functools.partial(
                comparison_chart, table, str(metric), difference=True,
                baseline=manifest.get("baseline"), confidence=confidence), size))
    elif kind == "sweep":
        table = _read_any(source, "intervals")
        if table is None:
            raise FileNotFoundError(f"{source}: no intervals table")
        available = set(table["metric"])
        groups = [[m for m in ("p50", "p95", "p99") if m in available],
                  *([m] for m in ("error_ratio", "throughput") if m in available)]
        for metrics in filter(None, groups):
            name = "latency" if metrics[0] in LATENCY_METRICS else metrics[0]
            drawings.append((f"sweep_{name}", functools.partial(
                latency_vs_load, table, metrics=metrics, confidence=confidence), (10, 4.5)))
    if not drawings:
        raise ValueError(f"{source}: nothing to plot for a {kind or 'unknown'} experiment "
                         "(plots are made for runs, comparisons and sweeps)")
    return drawings
