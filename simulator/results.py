"""Results of one run: tidy pandas tables, the scenario, the seed, and summaries."""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from simulator import registry
from simulator.analysis.summary import summarize
from simulator.metrics.schema import TABLES as CORE_TABLES
from simulator.metrics.streaming import (
    STREAMING_TABLES,
    StreamingUnavailableError,
    latency_quantiles,
    summarize_streaming,
    window_detail,
)
from simulator.outdir import replacing

if TYPE_CHECKING:
    from simulator.analysis.plots import PlotAccessor
    from simulator.scenario import Scenario



def table_names() -> list[str]:
    """The raw tables of every run: the core ones, then those the kinds declare."""
    return [*CORE_TABLES, *registry.raw_tables()]


def derived_table_names() -> list[str]:
    """The derived tables (computed from the raw ones over the measured window): what
    ``Results.write`` saves beside the raw tables (those declared ``always``, the others when
    not empty) and what experiments can collect."""
    return list(registry.derived_tables())


def schemas() -> dict[str, dict[str, tuple[str, str]]]:
    """``{table: {column: (dtype, doc)}}`` of every raw table (streaming ones included)."""
    declared = {name: t.schema() for name, t in registry.raw_tables().items()}
    return {**CORE_TABLES, **declared, **STREAMING_TABLES}


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
        ``requests``, ``spans``, ``samples``, ``events`` (see :mod:`simulator.metrics.schema`)
        and the tables the kinds declare; each is also an attribute (``results.spans``).

    Every derived table the kinds declare is a method of the same name
    (``results.<name>()``), and :meth:`derived` computes any of them by name.
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
        of the exact ones from a streaming run's histograms. Each row states what it covers:
        ``covers`` (the status the quantiles are over, or ``completed``), ``requests`` (how
        many) and ``share`` (of the group's requests created in the window, unfinished ones
        included), so that the requests a latency leaves out are never hidden.
        """
        covers = "completed" if status is None else status
        if self.streaming:
            out = latency_quantiles(self.latency_histogram, qs,
                                    self.scenario.metrics.latency_error, by, status)
            stats = self.request_stats
            label = stats["status"].astype(str)
            chosen = label != "in_flight" if status is None else label == status
            counts = self._covered(stats.assign(n=stats["count"]), chosen, by)
        else:
            r = self.measured_requests()
            label = r["status"].astype(str)
            chosen = (label != "in_flight") & r["status"].notna() if status is None \
                else label == status
            counts = self._covered(r.assign(n=1), chosen, by)
            r = r[chosen]
            names = [f"q{q:g}" for q in qs]
            if not by:
                vals = np.quantile(r["latency"].to_numpy(), qs) if len(r) \
                    else [np.nan] * len(qs)
                out = pd.DataFrame([dict(zip(names, map(float, vals), strict=True))],
                                   columns=names)
            else:
                out = r.groupby(by, observed=True)["latency"].quantile(np.asarray(qs)).unstack()
                out.columns = names
                out = out.reset_index()
        if by:
            keys = [tuple(map(str, k)) for k in out[by].itertuples(index=False)]
            got = [counts.get(k, (0, 0)) for k in keys]
        else:
            got = [counts.get((), (0, 0))]
        n = np.array([g[0] for g in got], dtype=np.int64)
        total = np.array([g[1] for g in got], dtype=float)
        at = len(by) if by else 0
        out.insert(at, "covers", covers)
        out.insert(at + 1, "requests", n)
        out.insert(at + 2, "share", np.divide(n, total, out=np.full(len(n), np.nan),
                                              where=total > 0))
        return out

    @staticmethod
    def _covered(rows: pd.DataFrame, chosen: pd.Series, by: list[str] | None
                 ) -> dict[tuple[str, ...], tuple[int, int]]:
        """``{group key (strings): (requests chosen, requests in all)}`` over column ``n``."""
        rows = rows.assign(chosen=rows["n"].where(chosen.to_numpy(), 0))
        if not by:
            return {(): (int(rows["chosen"].sum()), int(rows["n"].sum()))}
        keyed = rows.assign(**{c: rows[c].astype(str) for c in by})
        g = keyed.groupby(by, observed=True)[["chosen", "n"]].sum()
        return {(k if isinstance(k, tuple) else (k,)): (int(a), int(b))
                for k, a, b in zip(g.index, g["chosen"], g["n"], strict=True)}

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

    def _table(self, name: str) -> pd.DataFrame:
        if name not in self.tables:  # results assembled before the table existed
            return _empty(name)
        return self.tables[name]

    def derived(self, name: str) -> pd.DataFrame:
        """The derived table ``name`` (see :func:`derived_table_names`) of this run."""
        try:
            table = registry.derived_tables()[name]
        except KeyError:
            raise KeyError(f"no derived table {name!r}; there are: "
                           f"{', '.join(derived_table_names())}") from None
        return table.table(self)

    def __getattr__(self, name: str) -> Any:
        """A raw table (``results.<table>``) or derived table (``results.<name>()``) that a
        registered kind declares."""
        if name.startswith("_"):
            raise AttributeError(name)
        if name in registry.raw_tables():
            return self._table(name)
        if name in registry.derived_tables():
            return functools.partial(self.derived, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *registry.raw_tables(), *derived_table_names()})

    @property
    def window(self) -> tuple[float, float]:
        """The measured window ``(warmup, duration)``; with ``warmup: auto``, the warm-up MSER-5
        chooses on the latencies of the requests created before ``duration``; with
        ``warmup: N requests``, the creation time of the request of index N (from 0, over all
        workloads, in order of creation).

        Raises
        ------
        ScenarioError
            With ``N requests`` when the run created no more than N requests before its
            duration (nothing would be left to measure).
        """
        warmup = self.scenario.warmup
        if warmup == "auto":
            return self._auto_warmup, self.scenario.duration
        if isinstance(warmup, float | int):
            return warmup, self.scenario.duration
        return self._request_warmup, self.scenario.duration

    @cached_property
    def _request_warmup(self) -> float:
        from simulator.errors import Problem, ScenarioError

        n = self.scenario.warmup.requests  # type: ignore[union-attr]
        if self.streaming:
            raise StreamingUnavailableError(f"warmup: {n} requests (the requests table)")
        start = self.requests["start"].to_numpy()
        start = np.sort(start[start < self.scenario.duration], kind="stable")
        if n >= len(start):
            raise ScenarioError(f"scenario {self.scenario.name!r}", [Problem(
                f"{n} requests, but the run created only {len(start)} before its duration "
                f"({self.scenario.duration:g}s): nothing left to measure", "warmup")])
        return float(start[n])

    @cached_property
    def _auto_warmup(self) -> float:
        from simulator.analysis.stats import mser_warmup

        req = self.requests
        inside = (req["start"] < self.scenario.duration).to_numpy()
        return mser_warmup(req["start"].to_numpy()[inside], req["latency"].to_numpy()[inside])

    def measured_over(self, start: float, end: float) -> Results:
        """The same run measured over ``[start, end)`` instead of its own window: every
        derived table of the view covers that stretch (a streaming run cannot: its counters
        were taken over its own window)."""
        if not 0 <= start < end:
            raise ValueError(f"a measured window needs 0 <= start < end, got [{start}, {end})")
        scenario = self.scenario.model_copy(update={"warmup": float(start),
                                                    "duration": float(end)})
        return dataclasses.replace(self, scenario=scenario)

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
            self.check_streamed_window()
            return summarize_streaming(self.request_stats, self.latency_histogram,
                                       self.scenario.metrics.latency_error, t1 - t0)
        return summarize(self.requests, self.spans, self.samples, t0, t1)

    def check_streamed_window(self) -> None:
        """Raise if this run streamed a window other than :attr:`window` (kinds' tables call
        it before using the streamed counters).

        A streaming run counted the window it ran with; another cannot be applied later."""
        events = self.events
        ran = events[events["event"].astype(str) == "streamed_window"]
        if len(ran) and str(ran["detail"].iloc[0]) != window_detail(*self.window):
            raise StreamingUnavailableError("a measured window other than the run's own")

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
        scenario = parse_scenario(manifest["scenario"], force=True)  # it has run: no limits
        names = table_names()
        if scenario.metrics.requests == "streaming":
            names = [n for n in names if n != "requests"] + list(STREAMING_TABLES)
        required = {*CORE_TABLES, *STREAMING_TABLES}
        tables = {name: _read_table(source / name, name, required=name in required)
                  for name in names}
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
        with replacing(target) as tmp:
            streamed = self.streaming
            for name in dict.fromkeys([*table_names(), *self.tables]):
                if not (streamed and name == "requests"):
                    _write_table(self._table(name), tmp / name, fmt)
            for stem, declared in registry.derived_tables().items():
                try:
                    table = declared.table(self)
                except StreamingUnavailableError:
                    continue  # it needs the requests table, which a streaming run does not keep
                if declared.always or not table.empty:
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
        return target


def _write_table(df: pd.DataFrame, stem: Path, fmt: str) -> None:
    if fmt == "parquet":
        df.to_parquet(stem.with_suffix(".parquet"), index=False)
    else:
        df.to_csv(stem.with_suffix(".csv"), index=False)


def _empty(name: str) -> pd.DataFrame:
    """Table ``name`` with its columns and no row."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, (d, _) in schemas()[name].items()})


def _read_table(stem: Path, name: str, required: bool = True) -> pd.DataFrame:
    """Read one table written by :func:`_write_table`, restoring the schema's dtypes.

    A table that is not ``required`` and was not written comes back empty, with its columns.
    """
    schema = schemas()
    parquet, csv = stem.with_suffix(".parquet"), stem.with_suffix(".csv")
    if parquet.is_file():
        df = pd.read_parquet(parquet)
    elif csv.is_file():
        df = pd.read_csv(csv)
    elif not required:
        df = _empty(name)
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

