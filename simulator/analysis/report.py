"""A self-contained HTML report of one run: the topology, summary tables, plots, diagnostics and
the scenario.

One file with nothing to fetch: plots are PNGs embedded as base64 ``data:`` URIs and the style
sheet is inline, so the report can be mailed, attached to a ticket or opened offline.

>>> from simulator.analysis.report import write_report
>>> write_report(results, "report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime
import html
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simulator.analysis.diagnostics import (
    AFTER_ARRIVALS,
    ARRIVALS_ENDED,
    NOT_RECOVERED,
    RUN_ENDED,
)

if TYPE_CHECKING:
    from simulator.results import Results

#: Plots shown in the report's own Dashboard section (before the other plots).
DASHBOARD_PLOTS = ("dashboard", "latency_heatmap")
_LATENCY_COLUMNS = ("mean", "p50", "p95", "p99", "p999")
_RATIO_COLUMNS = ("error_ratio", "rejection_ratio", "timeout_ratio", "fallback_ratio",
                  "utilisation", "share", "conflict_ratio", "failed_ratio", "stale_read_ratio")

STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #212121; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em;
                                   margin-top: 1.6em; }
.meta { color: #616161; margin-top: 0; }
table { border-collapse: collapse; margin: 0; font-size: 0.9em; }
.table-wrap { overflow-x: auto; max-width: 100%; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f5f5f5; } td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #616161; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.note { color: #616161; font-size: 0.9em; }
ul.findings li { margin: 0.2em 0; }
.warning { border-left: 4px solid #c62828; background: #fdecea; padding: 0.4em 1em; }
nav a { margin-right: 1em; }
"""


def _fmt_ms(v: Any) -> str:
    return "-" if pd.isna(v) else f"{v * 1e3:.3f}"


def _fmt_pct(v: Any) -> str:
    return "-" if pd.isna(v) else f"{v:.2%}"


def _fmt_num(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, float | np.floating):
        return "-" if np.isnan(v) else f"{v:.4g}"
    return str(v)


def table_html(df: pd.DataFrame, drop_empty: Sequence[str] = ()) -> str:
    """Render a table as HTML: latencies in ms (column renamed ``*_ms``), ratios in %.

    Parameters
    ----------
    df
        The table (a summary, per-backend shares, breaker or recovery table...).
    drop_empty
        Columns left out when they are zero or missing in every row (they say nothing).
    """
    if df.empty:
        return '<p class="note">(none)</p>'
    out = df.copy()
    for col in drop_empty:
        if col in out and out[col].fillna(0).eq(0).all():
            out = out.drop(columns=col)
    formatters: dict[str, Callable[[Any], str]] = {}
    renames = {}
    for col in out.columns:
        if col in _LATENCY_COLUMNS or col in ("baseline_p99",):
            renames[col] = f"{col}_ms"
            formatters[f"{col}_ms"] = _fmt_ms
        elif col in _RATIO_COLUMNS or col.endswith("_ok_ratio"):
            formatters[col] = _fmt_pct
        else:
            formatters[col] = _fmt_num
    out = out.rename(columns=renames)
    body = out.to_html(index=False, border=0, formatters=formatters, escape=True, na_rep="-")
    return f'<div class="table-wrap">{body}</div>'  # a wide table scrolls in its box


def frame_html(df: pd.DataFrame) -> str:
    """Render a table already formatted for people (every cell a string) as HTML."""
    if df.empty:
        return '<p class="note">(none)</p>'
    body = df.to_html(index=False, border=0, escape=True, na_rep="-")
    return f'<div class="table-wrap">{body}</div>'


def _prune(value: Any) -> Any:
    """Drop null and empty entries of a scenario dump (they mean "not set")."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, "", {}, [])}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def scenario_yaml(results: Results, full: bool = False) -> str:
    """The scenario that ran, as YAML (resolved: overrides applied, units in seconds).

    Without ``full``, settings that are not set (null or empty) are left out.
    """
    return scenario_yaml_of(results.scenario, full)


def scenario_yaml_of(scenario: Any, full: bool = False) -> str:
    """A resolved scenario as YAML (what :func:`scenario_yaml` prints for a run's)."""
    import yaml

    data = scenario.model_dump(mode="json", by_alias=True)
    return str(yaml.safe_dump(data if full else _prune(data), sort_keys=False,
                              allow_unicode=True, width=100))


def findings(results: Results) -> list[str]:
    """Plain-language remarks on a run: things a reader should not miss."""
    notes = []
    r = results
    summary = r.summary()
    work = summary[summary["scope"] == "workload"]
    in_flight, created = int(work["in_flight"].sum()), int(work["count"].sum())
    if in_flight > 0.005 * created:  # a few requests are always cut off by the end
        notes.append(f"{in_flight} requests of the measured window were still in flight when "
                     f"the run ended ({in_flight / max(created, 1):.1%}): the system did not "
                     "keep up, or the run ended too early to see them finish.")
    for row in _rows(summary[summary["scope"] == "workload"]):
        if pd.notna(row["error_ratio"]) and row["error_ratio"] > 0.01:
            notes.append(f"workload {row['name']}: {row['error_ratio']:.1%} of completed "
                         "requests failed.")
        if pd.notna(row["attempts"]) and row["attempts"] > 1.05:
            notes.append(f"workload {row['name']}: {row['attempts']:.2f} attempts per request "
                         "(retry amplification).")
    for row in _rows(summary[(summary["scope"] == "component")
                             & (summary["utilisation"] > 0.9)]):
        notes.append(f"component {row['name']} is {row['utilisation']:.0%} busy: near "
                     "saturation, queues and latency grow quickly with more load.")
    if r.scenario.faults and r.streaming:
        notes.append("fault recovery times need one row per request: not available with "
                     "metrics.requests: streaming.")
    elif r.scenario.faults:
        for row in _rows(r.recovery()):
            if row["recovered"]:
                notes.append(f"fault {row['fault']}: recovered {row['recovery_time']:.3g}s "
                             "after it ended.")
            elif row["outcome"] == NOT_RECOVERED:
                notes.append(f"fault {row['fault']}: the system did not recover before the "
                             "end of the run (metastable failure?).")
            elif row["outcome"] in (RUN_ENDED, ARRIVALS_ENDED):
                notes.append(f"fault {row['fault']}: {row['outcome']} (arrivals end at "
                             f"{r.scenario.duration:g}s): recovery not measured.")
            elif row["outcome"] == AFTER_ARRIVALS:
                notes.append(f"fault {row['fault']}: starts at {row['start']:g}s, after "
                             f"arrivals end at {r.scenario.duration:g}s: it acts on the drain "
                             "only; recovery not measured.")
    for row in _rows(r.breakers()):
        notes.append(f"breaker {row['instance']} → {row['target']}: opened {row['openings']} "
                     f"times, open {row['open_s']:.1f}s of the measured window.")
    return notes


def _verdict(results: Results) -> list[str]:
    """A warning box when the run did not reach a steady state, naming the evidence."""
    from simulator.analysis.stability import verdict, warnings

    table = results.derived("findings")
    said = verdict(table)
    if said == "steady":
        return []
    esc = html.escape
    lines = "".join(f"<li>{esc(line)}</li>" for line in warnings(table))
    return [f'<div class="warning"><p><strong>This run did not reach a steady state '
            f"({esc(said)})</strong>: its averages and percentiles describe where the run "
            f"stopped, not the system.</p><ul>{lines}</ul></div>"]


def _slo(results: Results) -> list[str]:
    """Whether the run met the scenario's SLO (nothing without one)."""
    if results.scenario.slo is None:
        return []
    from simulator.analysis.objectives import slo_lines, slo_table
    from simulator.analysis.stability import verdict

    lines = slo_lines(slo_table(results), verdict(results.derived("findings")) == "steady")
    return ['<ul class="findings">' + "".join(f"<li>{html.escape(x)}</li>" for x in lines)
            + "</ul>"]


def _sections(results: Results, section: str) -> list[str]:
    """HTML of every derived table of ``section`` the run has (one ``<h3>`` each), in the
    order the kinds declare them (the untitled summary has a section of its own)."""
    from simulator import registry
    from simulator.metrics.streaming import StreamingUnavailableError

    parts = []
    for declared in registry.derived_tables().values():
        if declared.section != section or not declared.title:
            continue
        if not declared.available(results):
            continue
        try:
            table = declared.table(results)
        except StreamingUnavailableError:
            continue  # said in the findings where it matters
        if not table.empty:
            title = declared.title[:1].upper() + declared.title[1:]
            parts.append(f"<h3>{html.escape(title)}</h3>")
            shown = declared.display(table)  # what the terminal prints, units and all
            parts.append(table_html(table) if shown is None else frame_html(shown))
    return parts


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in df.to_dict("records")]


def embed_png(png: bytes, alt: str) -> str:
    """An ``<img>`` holding ``png`` as a ``data:`` URI (nothing to fetch)."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def report_html(results: Results, plots: Sequence[str] | None = None,
                title: str | None = None) -> str:
    """The report of a run as one HTML document (a string).

    Parameters
    ----------
    results
        The run.
    plots
        Plots to include (default: every plot the run has data for).
    title
        Page title (default: the scenario's name).
    """
    from simulator import registry
    from simulator.analysis.diagram import png as topology_png
    from simulator.analysis.plots import render
    from simulator.analysis.tables import coverage_lines

    captions = registry.plots()

    r = results
    s = r.scenario
    title = title or s.name
    esc = html.escape
    names = list(plots) if plots is not None else r.plot.available()
    board = [n for n in DASHBOARD_PLOTS if n in names]
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        from importlib.metadata import version

        code = f"simulator {version('simulator')}"
    except Exception:  # an uninstalled checkout still gets its report
        code = "simulator"
    meta = (f"{r.request_count():,} requests in {s.duration:g}s simulated "
            f"(warm-up {r.window[0]:g}s; seed {r.seed}, replication {r.replication})"
            + (f", {r.wall_seconds:.2f}s wall time" if r.wall_seconds else "")
            + f" &middot; {esc(code)} &middot; {created}")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}: simulation report</title>", f"<style>{STYLE}</style>",
        "</head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if s.description:
        parts.append(f"<p>{esc(s.description)}</p>")
    parts.append(f'<p class="meta">{meta}</p>')
    parts.append('<nav><a href="#topology">Topology</a><a href="#summary">Summary</a>'
                 '<a href="#diagnostics">Diagnostics</a>'
                 + ('<a href="#dashboard">Dashboard</a>' if board else "")
                 + '<a href="#plots">Plots</a>'
                 '<a href="#scenario">Scenario</a></nav>')

    parts.append('<h2 id="topology">Topology</h2>')
    parts.append(f'<figure>{embed_png(topology_png(s), "topology")}<figcaption>What the scenario '
                 "describes, drawn from it: workloads, components (kind, instances), regions, "
                 "and the calls with their operations and policies.</figcaption></figure>")

    parts.append('<h2 id="summary">Summary</h2>')
    parts.append('<p class="note">Per workload (end to end) and per component (each hop), '
                 f"over requests created in the measured window [{r.window[0]:g}s, "
                 f"{s.duration:g}s). Latencies in milliseconds over successful requests "
                 "only (what they leave out is listed below the table); ratios over completed "
                 "requests; throughput and goodput in requests per second.</p>")
    parts += _verdict(r)
    parts += _slo(r)
    summary = r.summary()
    parts.append(table_html(summary, drop_empty=("rejection_ratio", "timeout_ratio",
                                                 "fallback_ratio", "in_flight")))
    parts.append('<ul class="coverage">' + "".join(
        f"<li>{esc(line)}</li>" for line in coverage_lines(summary)) + "</ul>")
    parts += _sections(r, "tables")

    parts.append('<h2 id="diagnostics">Diagnostics</h2>')
    notes = findings(r)
    if notes:
        parts.append('<ul class="findings">'
                     + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    else:
        parts.append('<p class="note">Nothing remarkable: no failures, retries, saturation, '
                     "faults or breaker openings.</p>")
    parts += _sections(r, "diagnostics")
    events = r.events[r.events["event"] != "end"]
    if len(events):
        counts = events.groupby(["component", "event"], observed=True).size().rename(
            "count").reset_index()
        parts.append("<h3>Events</h3>")
        parts.append(table_html(counts))

    def figure_html(name: str) -> str:
        caption = captions[name].caption if name in captions else name.replace("_", " ")
        return (f"<figure>{embed_png(render(r, name), name)}<figcaption>{esc(caption)}"
                "</figcaption></figure>")

    if board:
        parts.append('<h2 id="dashboard">Dashboard</h2>')
        parts += [figure_html(name) for name in board]
    parts.append('<h2 id="plots">Plots</h2>')
    parts += [figure_html(name) for name in names if name not in board]

    parts.append('<h2 id="scenario">Scenario</h2>')
    parts.append('<p class="note">As it ran: overrides applied, times in seconds and rates per '
                 "second; unset settings left out.</p>")
    parts.append(f"<pre>{esc(scenario_yaml(r))}</pre>")
    parts.append("<details><summary>Every setting, defaults included</summary>"
                 f"<pre>{esc(scenario_yaml(r, full=True))}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(results: Results, path: str | Path, plots: Sequence[str] | None = None,
                 title: str | None = None) -> Path:
    """Write the HTML report of a run to ``path`` (whole or not at all); return the path.

    Parameters
    ----------
    results
        The run.
    path
        The HTML file; its directory is created if needed.
    plots, title
        As for :func:`report_html`.
    """
    return write_html(report_html(results, plots, title), path)


def write_html(text: str, path: str | Path) -> Path:
    """Write an HTML document to ``path`` atomically (a temporary file, then a rename), its
    directory created if needed; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


__all__ = ["STYLE", "embed_png", "findings", "frame_html", "report_html", "scenario_yaml",
           "scenario_yaml_of", "table_html", "write_html", "write_report"]
