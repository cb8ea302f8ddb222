"""Self-contained HTML reports of experiments: a comparison of variants, a sweep of a grid.

Like the run report (:mod:`simulator.analysis.report`), each is one file with nothing to fetch
(charts embedded as PNG ``data:`` URIs, the style sheet inline), written whole or not at all.

A comparison report holds what ``simulator compare`` prints, and the evidence behind it: the
variants and their overrides, the stability verdict of every variant (a variant that did not
reach a steady state is shown, never ranked), the ranked table with each variant's interval
and its paired difference from the baseline, one sentence per difference, the charts of the
means and of the paired differences (charts whose every value is zero are not drawn: the
report says so), and the baseline's resolved scenario. A sweep report holds the intervals at
every point with their steady flags, latency against the swept value, and the findings.

>>> from simulator.analysis.experiment_report import write_experiment_report
>>> write_experiment_report(comparison, "compare.html")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from simulator.analysis.formatting import difference_sentences, label, ranked_rows, sweep_rows
from simulator.analysis.report import STYLE, embed_png, table_html, write_html

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.experiment import Comparison, Sweep

#: Metrics a comparison report shows, charts included, when the caller names none.
REPORT_METRICS = ("mean", "p99", "error_ratio", "goodput")


def _png(draw: Callable[[Axes], Any]) -> bytes | None:
    """A chart drawn by ``draw(ax)`` as PNG bytes; None when ``draw`` finds nothing to draw."""
    from simulator.analysis.plots.files import figure

    try:
        fig = figure(draw)
    except ValueError:  # no rows for this metric
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _page(title: str, meta: str, body: list[str]) -> str:
    esc = html.escape
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>", f"<style>{STYLE}</style>", "</head><body>",
        f"<h1>{esc(title)}</h1>", f'<p class="meta">{esc(meta)} &middot; {created}</p>',
        *body, "</body></html>"])


def _findings(findings: pd.DataFrame | None, tag: str | Sequence[str]) -> list[str]:
    """The stability evidence: every check that failed, or a line saying none did."""
    if findings is None or findings.empty:
        return ['<p class="note">No stability checks were recorded.</p>']
    bad = findings[findings["verdict"] == "unstable"]
    if bad.empty:
        return ['<p class="note">Every replication of every point reached a steady state '
                "(no trend in queues, backlogs or latency over the measured window).</p>"]
    tags = [tag] if isinstance(tag, str) else list(tag)
    cols = [c for c in (*tags, "replication", "instance", "evidence") if c in bad]
    return ['<div class="warning"><p><strong>Not every run reached a steady state.</strong> '
            "Figures of the runs below describe where they stopped, not the system; a "
            "comparison does not rank them.</p></div>", table_html(bad[cols])]


def _ranked(table: pd.DataFrame, baseline: str, confidence: float) -> list[str]:
    """One table per (workload, metric): rank, variant, mean and interval, paired difference."""
    parts = []
    for (name, key), block in table.groupby(["name", "metric"], sort=False):
        metric = str(key)
        rows = ranked_rows(block, metric, baseline, confidence)
        parts.append(f"<h3>{html.escape(str(name))}: {html.escape(label(metric))}</h3>")
        parts.append(table_html(pd.DataFrame(rows)))
    return parts


def comparison_html(cmp: Comparison, metrics: Sequence[str] = REPORT_METRICS) -> str:
    """The report of a comparison as one HTML document (see the module's description)."""
    from simulator.analysis.plots.experiment import comparison_chart, has_values
    from simulator.analysis.report import scenario_yaml_of

    esc = html.escape
    base = cmp.baseline
    scenario = cmp.scenarios[base]
    reps = int(cmp.runs["replication"].nunique())
    table = cmp.table(list(metrics))
    meta = (f"{len(cmp.variants)} variants x {reps} replications, seed {cmp.meta.get('seed')}, "
            f"common random numbers; {cmp.confidence:.0%} confidence intervals; differences "
            f"from {base}, paired by replication")
    body = []
    if scenario.description:
        body.append(f"<p>{esc(scenario.description)}</p>")
    body.append('<nav><a href="#variants">Variants</a><a href="#stability">Stability</a>'
                '<a href="#ranking">Ranking</a><a href="#charts">Charts</a>'
                '<a href="#scenario">Scenario</a></nav>')
    body.append('<h2 id="variants">Variants</h2>')
    variants = pd.DataFrame([{"variant": name + (" (baseline)" if name == base else ""),
                              "overrides": "; ".join(ov) or "(the scenario as written)"}
                             for name, ov in cmp.variants.items()])
    body.append(table_html(variants))
    body.append('<h2 id="stability">Stability</h2>')
    body += _findings(cmp.tables.get("findings"), "variant")
    body.append('<h2 id="ranking">Ranking</h2>')
    body.append('<p class="note">Per workload and metric, best first. Latencies in '
                "milliseconds over successful requests, ratios in percent of completed "
                "requests, goodput in successful requests per second. A difference is "
                "significant when its paired interval excludes zero.</p>")
    sentences = difference_sentences(table, base, cmp.unstable, cmp.confidence)
    if base in cmp.unstable:
        sentences = [f"The baseline {base} did not reach a steady state: no variant is "
                     "compared with it."]
    body.append('<ul class="findings">' + "".join(f"<li>{esc(s)}</li>" for s in sentences)
                + "</ul>")
    body += _ranked(table, base, cmp.confidence)
    body.append('<h2 id="charts">Charts</h2>')
    for metric in metrics:
        rows = table[table["metric"] == metric]
        if rows.empty or not has_values(rows):
            body.append(f'<p class="note">{esc(metric)}: zero for every variant, not '
                        "drawn.</p>")
            continue
        for difference in (False, True):
            if difference and not has_values(rows[["diff", "diff_low", "diff_high"]]):
                body.append(f'<p class="note">{esc(metric)}: every paired difference is '
                            "exactly zero (the variants did not change it), not drawn.</p>")
                continue

            def draw(ax: Axes, m: str = metric, d: bool = difference) -> Any:
                return comparison_chart(cmp, m, ax, difference=d)

            png = _png(draw)
            if png is not None:
                what = "paired difference from the baseline" if difference else "mean"
                body.append(f"<figure>{embed_png(png, f'{metric} {what}')}<figcaption>"
                            f"{esc(metric)}: {what} with its confidence interval."
                            "</figcaption></figure>")
    body.append('<h2 id="scenario">Scenario</h2>')
    body.append(f'<p class="note">The baseline ({esc(base)}) as it ran: overrides applied, '
                "times in seconds; each variant changes it as listed above.</p>")
    body.append(f"<pre>{esc(scenario_yaml_of(scenario))}</pre>")
    return _page(f"{scenario.name}: comparison", meta, body)


def sweep_html(result: Sweep, metrics: Sequence[str] = ("mean", "p99", "error_ratio")) -> str:
    """The report of a sweep as one HTML document (see the module's description)."""
    from simulator.analysis.plots.experiment import latency_vs_load

    reps = int(result.runs["replication"].nunique())
    scenario = next(iter(result.scenarios.values()), None)
    name = str(scenario["name"]) if isinstance(scenario, dict) else "sweep"
    iv = result.intervals(list(metrics))
    wide = sweep_rows(iv, result.parameters)
    meta = (f"{len(result.points)} points x {reps} replications over "
            f"{', '.join(result.parameters)}; {result.confidence:.0%} confidence intervals")
    body = ['<nav><a href="#points">Points</a><a href="#charts">Charts</a>'
            '<a href="#stability">Stability</a><a href="#scenario">Scenario</a></nav>',
            '<h2 id="points">Points</h2>',
            '<p class="note">Mean over replications ± the half width of its interval. '
            "Latencies in milliseconds over successful requests, ratios in percent. A point "
            "marked steady NO had a replication that never settled.</p>",
            table_html(pd.DataFrame(wide)), '<h2 id="charts">Charts</h2>']
    png = _png(lambda ax: latency_vs_load(result, metrics=("p50", "p99"), ax=ax))
    if png is not None:
        body.append(f"<figure>{embed_png(png, 'latency against the swept value')}"
                    "<figcaption>Latency against the swept value, with confidence bands."
                    "</figcaption></figure>")
    else:
        body.append('<p class="note">No latency chart: the swept values are not '
                    "numbers.</p>")
    body.append('<h2 id="stability">Stability</h2>')
    body += _findings(result.tables.get("findings"), result.parameters)
    if isinstance(scenario, dict):
        import yaml

        from simulator.analysis.report import _prune

        body.append('<h2 id="scenario">Scenario</h2>')
        body.append('<p class="note">The first point as it ran (times in seconds); each point '
                    "changes the swept keys as listed above.</p>")
        body.append("<pre>" + html.escape(yaml.safe_dump(_prune(scenario), sort_keys=False,
                                                         allow_unicode=True, width=100))
                    + "</pre>")
    return _page(f"{name}: sweep", meta, body)


def write_experiment_report(result: Comparison | Sweep, path: str | Path) -> Path:
    """Write the HTML report of a comparison or a sweep to ``path`` (whole or not at all)."""
    # duck-typed: the experiments sit above this layer (only a Comparison has a baseline)
    text = (comparison_html(cast("Comparison", result)) if hasattr(result, "baseline")
            else sweep_html(cast("Sweep", result)))
    return write_html(text, path)


__all__ = ["REPORT_METRICS", "comparison_html", "sweep_html", "write_experiment_report"]
