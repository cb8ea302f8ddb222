"""Runs as data: where a scenario comes from, what one run is, how it is executed and cached.

A :class:`RunSpec` names one simulation completely and small enough to ship to a worker
process or a Dask worker: the resolved scenario as canonical JSON, the seed, the replication,
the warm-up rule and the tables wanted back. :func:`execute` is the function workers run; it
returns small tables (the summary by default), never whole :class:`~simulator.results.Results`.

:func:`run_all` sends specs to an executor, reusing and filling a
:class:`~simulator.experiment.cache.RunCache` (keyed by the
scenario, the seed, the replication, the warm-up rule and the code version), with a progress bar.
Results come back in the order of the specs whatever the executor, so the tables are identical.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import importlib.util
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simulator.errors import Problem, ScenarioError, ScenarioWarning
from simulator.metrics.streaming import StreamingUnavailableError
from simulator.results import derived_table_names, table_names
from simulator.scenario import Scenario, apply_overrides, parse_scenario
from simulator.scenario.model import RequestWarmup
from simulator.units import parse_request_count
from simulator.yamlfile import SourceMap, load_yaml_file

if TYPE_CHECKING:
    from tqdm import tqdm

    from simulator.experiment.cache import RunCache
    from simulator.experiment.executors import Executor



def run_tables() -> tuple[str, ...]:
    """Tables a run can send back: the summary (default), any table derived over the measured
    window (:func:`simulator.results.derived_table_names`), or raw tables (with
    ``request_stats`` and ``latency_histogram``: streaming runs)."""
    return (*derived_table_names(), *table_names(), "request_stats", "latency_histogram")

#: Columns every returned table starts with.
RUN_COLUMNS = ["seed", "replication", "warmup"]

#: a warm-up rule: the scenario's (None), seconds, ``"auto"`` (MSER-5) or ``"N requests"``
Warmup = float | str | None


@dataclass(eq=False)
class Source:
    """A scenario before variants: its data, where every key came from, and base overrides.

    Build one with :meth:`of`; :meth:`resolve` applies further overrides (a variant, a sweep
    point) and validates, so errors name the file and line as ``load_scenario`` does.

    Attributes
    ----------
    data
        The scenario as parsed from YAML (plain dicts and lists).
    smap
        Lines of the key paths, for error messages.
    overrides
        ``key.path=value`` overrides applied to every resolution (``--set``).
    force
        Accept resolutions over the soft limits of :mod:`simulator.limits`.
    """

    data: dict[str, Any]
    smap: SourceMap
    overrides: tuple[str, ...] = ()
    force: bool = False

    @classmethod
    def of(cls, scenario: Any, overrides: Sequence[str] = (), force: bool = False) -> Source:
        """Make a source of a file path, a validated :class:`Scenario`, a dict or a Source.

        Raises
        ------
        ScenarioError
            When the file cannot be read or the scenario (with ``overrides``) is invalid.
        """
        if isinstance(scenario, Source):
            src = Source(scenario.data, scenario.smap, (*scenario.overrides, *overrides),
                         scenario.force or force)
        elif isinstance(scenario, Scenario):
            src = Source(scenario.model_dump(mode="json", by_alias=True),
                         SourceMap(f"<scenario {scenario.name}>"), tuple(overrides), force)
        elif isinstance(scenario, Mapping):
            src = Source(copy.deepcopy(dict(scenario)), SourceMap("<dict>"), tuple(overrides),
                         force)
        elif isinstance(scenario, str | os.PathLike):
            data, smap = load_yaml_file(Path(scenario))
            if not isinstance(data, dict):
                parse_scenario(data, smap)  # raises the usual error
            src = Source(data, smap, tuple(overrides), force)
        else:
            raise TypeError(f"expected a scenario path, Scenario, dict or Source, "
                            f"got {type(scenario).__name__}")
        src.resolve()
        return src

    @property
    def name(self) -> str:
        """File (or description) the scenario came from."""
        return self.smap.source

    def resolve(self, extra: Sequence[str] = ()) -> Scenario:
        """Validate the scenario with the base overrides and ``extra`` ones applied."""
        return parse_scenario(self.data, self.smap, [*self.overrides, *extra], force=self.force)

    def variants(self) -> dict[str, list[str]]:
        """The ``variants:`` block of the scenario (validated), by name."""
        return dict(self.resolve().variants)

    def raw(self, extra: Sequence[str] = ()) -> dict[str, Any]:
        """The data with every override applied, before validation (``variants`` removed)."""
        data = copy.deepcopy(self.data)
        apply_overrides(data, [*self.overrides, *extra], self.smap.source)
        data.pop("variants", None)
        return data


def scenario_payload(source: Source, extra: Sequence[str] = ()) -> tuple[Scenario, str]:
    """Validate a scenario and return it with the canonical JSON a worker rebuilds it from.

    The JSON is the resolved scenario (units converted, defaults filled in, ``variants``
    removed), so two spellings of one scenario share a cache key. Should a component's
    parameters not survive that round trip, the raw data with overrides applied is sent instead.
    """
    scenario = source.resolve(extra)
    dumped = _dump(scenario)
    text = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    if _dump(_scenario(text)) != dumped:  # pragma: no cover - safety net
        text = json.dumps(source.raw(extra), sort_keys=True, separators=(",", ":"), default=str)
    return scenario, text


def _dump(scenario: Scenario) -> dict[str, Any]:
    data = scenario.model_dump(mode="json", by_alias=True)
    data.pop("variants", None)
    return data


@dataclass(frozen=True)
class RunSpec:
    """One simulation, as shipped to a worker.

    Attributes
    ----------
    scenario
        The scenario as canonical JSON (see :func:`scenario_payload`).
    seed, replication
        The random streams of the run.
    warmup
        ``None``: the scenario's ``warmup``; a number: that many seconds; ``"auto"``: MSER-5 on
        the latency of the requests in order of arrival; ``"N requests"``: from the creation of
        the request of index N (see :class:`simulator.scenario.model.RequestWarmup`).
    tables
        Tables sent back (see :func:`run_tables`).
    """

    scenario: str
    seed: int
    replication: int
    warmup: Warmup = None
    tables: tuple[str, ...] = ("summary",)

    def key(self) -> str:
        """Cache key: a hash of everything the tables depend on, code version included."""
        text = json.dumps([self.scenario, self.seed, self.replication, self.warmup,
                           list(self.tables), code_version()], separators=(",", ":"))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@functools.cache
def code_version() -> str:
    """``simulator`` version plus a hash of its source files (a code edit changes it)."""
    import simulator

    root = Path(simulator.__file__).resolve().parent
    h = hashlib.blake2b(digest_size=8)
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return f"{simulator.__version__}+{h.hexdigest()}"


@functools.lru_cache(maxsize=32)
def _scenario(text: str) -> Scenario:
    """A worker's scenario from its JSON; its warnings were given, and its limits checked
    (``force`` honoured), when the source was read."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScenarioWarning)
        return parse_scenario(json.loads(text), force=True)


def execute(spec: RunSpec) -> dict[str, pd.DataFrame]:
    """Run one simulation and return the tables asked for (what workers run).

    Every table starts with ``seed``, ``replication`` and ``warmup`` (the start of the measured
    window actually used).
    """
    from simulator.analysis.stats import mser_warmup
    from simulator.engine import simulate

    scenario = _scenario(spec.scenario)
    results = simulate(scenario, seed=spec.seed, replication=spec.replication)
    if spec.warmup == "auto":
        if results.streaming:
            raise StreamingUnavailableError("warm-up detection (warmup: auto, MSER-5)")
        req = results.requests
        inside = (req["start"] < scenario.duration).to_numpy()
        t0 = mser_warmup(req["start"].to_numpy()[inside], req["latency"].to_numpy()[inside])
    elif spec.warmup is None:
        t0 = results.window[0]
    elif isinstance(spec.warmup, str):  # N requests (check_warmup wrote it so)
        count = parse_request_count(spec.warmup)
        assert count is not None
        if results.streaming:
            raise StreamingUnavailableError(f"warmup: {spec.warmup} (the requests table)")
        t0 = dataclasses.replace(results, scenario=scenario.model_copy(
            update={"warmup": RequestWarmup(count)})).window[0]
    else:
        t0 = float(spec.warmup)
    if t0 != scenario.warmup:
        results = dataclasses.replace(results, scenario=scenario.model_copy(update={"warmup": t0}))
    out: dict[str, pd.DataFrame] = {}
    for name in spec.tables:
        if name in derived_table_names():
            table = results.derived(name)
        elif name not in results.tables and results.streaming:
            raise StreamingUnavailableError(f"the {name} table")
        else:
            table = results.tables[name]
        table = table.reset_index(drop=True)
        head = pd.DataFrame({"seed": np.full(len(table), spec.seed, dtype=np.int64),
                             "replication": np.full(len(table), spec.replication, dtype=np.int64),
                             "warmup": np.full(len(table), t0, dtype=np.float64)})
        out[name] = pd.concat([head, table], axis=1)
    return out


def check_tables(tables: Sequence[str]) -> tuple[str, ...]:
    """The tables every run sends back: the summary, the steady-state findings, then ``tables``
    (each named once).

    Raises
    ------
    ScenarioError
        When a name is not one of :func:`run_tables`.
    """
    import difflib

    problems = []
    for name in tables:
        if name not in run_tables():
            close = difflib.get_close_matches(name, run_tables(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(Problem(f"unknown table {name!r}{hint} (one of: "
                                    f"{', '.join(run_tables())})", "table"))
    if problems:
        raise ScenarioError("--table", problems)
    return tuple(dict.fromkeys(("summary", "findings", *tables)))


def gather(outs: Sequence[Mapping[str, pd.DataFrame]], tags: Sequence[Mapping[str, Any]],
           tables: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Each table other than the summary over every run, tagged (see :func:`concat`)."""
    return {name: concat([o[name] for o in outs], tags) for name in tables if name != "summary"}


def check_warmup(warmup: Any, scenario: Scenario) -> Warmup:
    """Validate a warm-up rule (``None``, ``"auto"``, seconds, a duration string or a number
    of requests such as ``"5000 requests"``, returned as ``"5000 requests"``)."""
    from simulator.units import parse_duration

    if warmup is None or warmup == "auto":
        return warmup
    if isinstance(warmup, RequestWarmup):
        warmup = str(warmup)
    try:
        count = parse_request_count(warmup)
    except ValueError as exc:
        raise ScenarioError("--warmup", [Problem(str(exc), "warmup")]) from None
    if count is not None:
        if scenario.metrics.requests == "streaming":
            raise ScenarioError("--warmup", [Problem(
                f"{count} requests needs the requests table; a streaming run (metrics.requests: "
                "streaming) counts from a fixed warm-up: give a duration", "warmup")])
        return f"{count} requests"
    try:
        value = parse_duration(warmup)
    except ValueError as exc:
        raise ScenarioError("--warmup", [Problem(
            f"{exc}, a number of requests such as '5000 requests', or 'auto'", "warmup")]
        ) from None
    if not (math.isfinite(value) and 0 <= value < scenario.duration):
        raise ScenarioError("--warmup", [Problem(
            f"must be at least 0 and shorter than duration ({scenario.duration:g}s), "
            f"got {value:g}s", "warmup")])
    return value


# --------------------------------------------------------------------------------------------
# running many


@dataclass
class RunStats:
    """How the runs of an experiment were obtained."""

    computed: int = 0
    reused: int = 0
    keys: list[str] = field(default_factory=list)


def progress_bar(total: int, desc: str, enabled: bool | None) -> tqdm[Any]:
    """A tqdm progress bar; ``enabled=None``: only when interactive (a terminal, a notebook).

    In a notebook with ``ipywidgets`` the bar is a widget; without it, text on stderr.
    """
    from tqdm.std import tqdm as text_bar

    if enabled is None:
        enabled = _interactive()
    options: dict[str, Any] = {"total": total, "desc": desc, "unit": "run",
                               "disable": not enabled, "leave": enabled}
    if enabled and "ipykernel" in sys.modules and importlib.util.find_spec("ipywidgets"):
        from tqdm.notebook import tqdm as widget_bar

        return widget_bar(**options)
    return text_bar(dynamic_ncols=True, **options)


def _interactive() -> bool:
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def run_all(
    specs: Sequence[RunSpec],
    executor: Executor,
    cache: RunCache | None = None,
    progress: bool | None = None,
    desc: str = "runs",
    on_result: Callable[[int, dict[str, pd.DataFrame]], None] | None = None,
) -> tuple[list[dict[str, pd.DataFrame]], RunStats]:
    """Run every spec (each distinct one once), reusing the cache; results in spec order.

    Parameters
    ----------
    specs
        The runs.
    executor
        Where they run (see :mod:`simulator.experiment.executors`).
    cache
        Finished runs are looked up here first and stored here as soon as they finish.
    progress
        Show a progress bar (``None``: when the terminal or notebook is interactive).
    desc
        Label of the progress bar.
    on_result
        Called with (index among the distinct specs still to run, tables) after each run is
        stored (for tests and callers that stream results).
    """
    keys = [s.key() for s in specs]
    found: dict[str, dict[str, pd.DataFrame]] = {}
    todo: dict[str, RunSpec] = {}
    stats = RunStats(keys=keys)
    for key, spec in zip(keys, specs, strict=True):
        if key in found or key in todo:
            continue
        hit = cache.get(key) if cache is not None else None
        if hit is not None and set(spec.tables) <= set(hit):
            found[key] = hit
            stats.reused += 1
        else:
            todo[key] = spec
    pending = list(todo.items())
    with progress_bar(len(found) + len(pending), desc, progress) as bar:
        bar.update(len(found))
        if found:
            bar.set_postfix_str(f"{len(found)} cached", refresh=False)
        for i, tables in executor.map_unordered(execute, [s for _, s in pending]):
            key, spec = pending[i]
            found[key] = tables
            stats.computed += 1
            if cache is not None:
                cache.put(key, tables, spec)
            bar.update(1)
            if on_result is not None:
                on_result(i, tables)
    return [found[k] for k in keys], stats


def concat(parts: Sequence[pd.DataFrame], tags: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Concatenate per-run tables, each preceded by its tag columns (variant, parameters)."""
    frames = []
    for part, tag in zip(parts, tags, strict=True):
        head = pd.DataFrame({k: [v] * len(part) for k, v in tag.items()},
                            index=part.index, dtype=object)
        frames.append(pd.concat([head, part], axis=1))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    for column in tags[0]:
        out[column] = _tidy_column(out[column])
    return out


def _tidy_column(col: pd.Series) -> pd.Series:
    """One dtype per tag column: numbers stay numbers, anything mixed becomes text."""
    values = list(col)
    if all(isinstance(v, bool) for v in values):
        return col.astype(bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return col.astype(np.int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return col.astype(np.float64)
    if all(isinstance(v, str) for v in values):
        return col.astype(str)
    return col.map(lambda v: v if isinstance(v, str) else json.dumps(v)).astype(str)
