"""Plots of ``kind: queue`` (and topic subscriptions): depth and consumer lag over time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.analysis.plots.style import (
    QUEUE_ACKED,
    QUEUE_DEPTH,
    QUEUE_LAG,
    QUEUE_PUBLISHED,
    NoDataError,
    _axes,
    _colors,
    _has_metric,
    _legend_outside,
    _queue_series,
    _time_axis,
    shade_windows,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results import Results


def has_queues(r: Results) -> bool:
    """Whether the run has queue gauges."""
    return _has_metric(r, QUEUE_DEPTH, QUEUE_LAG, QUEUE_PUBLISHED)


def queue_over_time(r: Results, ax: Axes | None = None) -> Axes:
    """Depth of each queue (messages waiting) and its consumer lag, over time.

    Read from the queues' gauges, summed over a queue's instances: ``depth``, and ``lag``
    (messages stored: published, not yet acknowledged or dead-lettered) or, without it,
    ``published_total - acked_total``. A topic's subscriptions are drawn separately
    (``topic.subscription``).
    """
    if not _has_metric(r, QUEUE_DEPTH, QUEUE_LAG, QUEUE_PUBLISHED):
        raise NoDataError(f"{r.scenario.name}: no queue gauges in this run "
                          f"({QUEUE_DEPTH}, {QUEUE_LAG}, {QUEUE_PUBLISHED})")
    ax = _axes(ax)
    series = {m: _queue_series(r.samples, m)
              for m in (QUEUE_DEPTH, QUEUE_LAG, QUEUE_PUBLISHED, QUEUE_ACKED)}
    if not series[QUEUE_LAG] and series[QUEUE_PUBLISHED]:
        series[QUEUE_LAG] = {
            q: p - series[QUEUE_ACKED].get(q, p * 0).reindex(p.index, fill_value=0.0)
            for q, p in series[QUEUE_PUBLISHED].items()}
    queues = sorted({*series[QUEUE_DEPTH], *series[QUEUE_LAG]})
    for q, color in zip(queues, _colors(len(queues)), strict=True):
        # lag >= depth; drawn wide and pale underneath so that both show where they agree
        if q in series[QUEUE_LAG]:
            lag = series[QUEUE_LAG][q]
            ax.plot(lag.index, lag.to_numpy(), color=color, ls="--", lw=2.5, alpha=0.5,
                    label=f"{q} lag")
        if q in series[QUEUE_DEPTH]:
            d = series[QUEUE_DEPTH][q]
            ax.plot(d.index, d.to_numpy(), color=color, lw=1.2, label=f"{q} depth")
    shade_windows(ax, r)
    _time_axis(ax, r, "queue depth (waiting) and lag (not yet acknowledged)", "messages")
    ax.set_ylim(bottom=0)
    _legend_outside(ax, fontsize="small")
    return ax
