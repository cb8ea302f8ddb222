"""Scenarios: the YAML format, validated once at the edge into typed models.

``load_scenario(path, overrides)`` reads a file safely, applies ``--set``-style overrides,
validates everything with pydantic (unknown keys are errors), checks references and cycles
between components, and raises :class:`~simulator.errors.ScenarioError` naming the file, line
and key path of every problem. Component parameters are validated by each kind's own ``Params``
model, found through the registry.
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import re
import types
import typing
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from simulator import registry
from simulator.components.params import ComponentParams, KeyPath
from simulator.distributions import Duration
from simulator.errors import Problem, ScenarioError
from simulator.faults import (
    GENERIC_FAULTS,
    Fault,
    PartitionFault,
    RegionOutageFault,
    RegionPartitionFault,
    SpikeFault,
    split_target,
)
from simulator.kind import TimelineEvent
from simulator.regions import RegionsSpec, unknown_region
from simulator.units import parse_duration
from simulator.workloads import Closed, ConstantRate, OnOff, Workload
from simulator.yamlfile import SourceMap, load_yaml_file, load_yaml_text, load_yaml_value

#: Runs estimated to create more requests than this are refused up front.
MAX_REQUESTS = 200_000_000
#: Runs whose gauge sampling would record more than this many (instance, time) pairs are refused.
MAX_SAMPLES = 20_000_000


class Metrics(BaseModel):
    """What to record.

    Parameters
    ----------
    interval
        Period of gauge sampling (queue lengths, utilisation...), seconds.
    spans
        Record one row per hop (``true``), none (``false``), or ``auto``: on when the run is
        expected to create at most 2 million requests (never with streaming requests).
    requests
        ``table``: one row per request (the ``requests`` table). ``streaming``: counters and
        log-bucketed latency histograms per workload, operation and status, for the requests
        created in the measured window, so memory stays flat however long the run
        (:mod:`simulator.metrics.streaming`: what is exact, what is approximate, what is not
        available).
    latency_error
        Relative error of the streaming latency percentiles (0.01: within 1% of the exact).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: Duration = Field(1.0, gt=0)
    spans: bool | Literal["auto"] = "auto"
    requests: Literal["table", "streaming"] = "table"
    latency_error: float = Field(0.01, gt=0, le=0.5)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.requests == "streaming" and self.spans is True:
            raise ValueError("spans: per-hop rows grow with the run, which streaming requests "
                             "are meant to avoid; set spans: false (or auto)")
        return self


def _parse_warmup(value: Any) -> float | str:
    if value == "auto":
        return "auto"
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{exc}, or auto (MSER-5)") from None
    if seconds < 0:
        raise ValueError(f"must be at least 0, got {seconds:g}s")
    return seconds


class Scenario(BaseModel):
    """A whole scenario.

    Parameters
    ----------
    name
        Short name of the scenario.
    description
        What it models, for people.
    seed
        Default seed; ``simulate(..., seed=)`` and ``--seed`` override it.
    duration
        Arrivals are generated during ``[0, duration)``, seconds.
    warmup
        Requests created before ``warmup`` are excluded from summaries, seconds; ``auto``:
        chosen after the run by MSER-5 on the latencies of the requests in order of arrival
        (``Results.window`` gives the value used).
    drain
        Extra simulated time after ``duration`` for requests in flight to finish, seconds.
        Requests still unfinished then are reported with status ``in_flight``.
    workloads
        Client populations by name.
    components
        Components by name; each has a ``kind`` and that kind's parameters.
    metrics
        Recording settings.
    faults
        Faults on the timeline (see :mod:`simulator.faults`).
    regions
        Regions, the latency between them, and where components and clients are (see
        :mod:`simulator.regions`). Omitted: one place, no network latency.
    variants
        Named alternatives for ``simulator compare``: each is a list of ``key.path=value``
        overrides applied to this scenario (an empty list is the scenario as written).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "scenario"
    description: str = ""
    seed: int = Field(1, ge=0, lt=2**63)
    duration: Duration = Field(gt=0)
    warmup: Annotated[float | Literal["auto"], BeforeValidator(_parse_warmup),
                      Field(json_schema_extra={"anyOf": [{"type": "number", "minimum": 0},
                                                         {"type": "string"}]})] = 0.0
    drain: Duration = Field(0.0, ge=0)
    workloads: dict[str, Workload] = Field(min_length=1)
    components: dict[str, ComponentParams] = Field(min_length=1)
    metrics: Metrics = Metrics()
    faults: list[Fault] = Field(default_factory=list)
    regions: RegionsSpec | None = None
    variants: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_times(self) -> Self:
        if self.warmup == "auto":
            if self.metrics.requests == "streaming":
                raise ValueError("warmup: auto (MSER-5) needs the requests table; a streaming "
                                 "run counts from a fixed warm-up: give a duration")
        elif self.warmup >= self.duration:
            raise ValueError(
                f"warmup ({self.warmup:g}s) must be shorter than duration ({self.duration:g}s)"
            )
        return self

    @property
    def warmup_time(self) -> float:
        """The fixed warm-up in seconds (0 with ``auto``, decided after the run)."""
        return 0.0 if self.warmup == "auto" else self.warmup

    def expected_requests(self) -> float:
        """Upper estimate of the requests this scenario creates in one run."""
        total = 0.0
        for w in self.workloads.values():
            if isinstance(w.arrivals, Closed):
                # self-limiting: at most one request per user per millisecond of think time
                rate = w.arrivals.users / max(w.arrivals.think_time.mean, 1e-3)
            else:
                rate = w.arrivals.mean_rate()
                if math.isnan(rate) and isinstance(w.arrivals, OnOff):
                    rate = w.arrivals.rate  # heavy-tailed periods: bound by the on rate
            total += rate * self.duration
        return total

    def record_spans(self) -> bool:
        """Whether per-hop spans are recorded in a run of this scenario."""
        if self.metrics.spans == "auto":
            return (self.metrics.requests == "table"
                    and self.expected_requests() <= 2_000_000)
        return bool(self.metrics.spans)


def scenario_model() -> type[Scenario]:
    """Return the validating Scenario model, with a member per registered component kind.

    Built once per :func:`simulator.registry.generation`: a kind registered later (a plug-in)
    gets a new model."""
    return _model_for(registry.generation())


@functools.cache
def _model_for(generation: int) -> type[Scenario]:
    members = tuple(k.params for k in registry.kinds().values())
    faults = (*GENERIC_FAULTS, *registry.timeline_events())
    fault_union = Annotated[Union[faults], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007
    union = Annotated[Union[members], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007
    model: type[Scenario] = create_model(
        "Scenario",
        __base__=Scenario,
        __doc__=Scenario.__doc__,
        components=(dict[str, union], Field(min_length=1)),
        faults=(list[fault_union], Field(default_factory=list)),
    )
    return model


def json_schema() -> dict[str, Any]:
    """Return the JSON Schema of the scenario format (for editors)."""
    schema = scenario_model().model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "simulator scenario"
    return schema


# --------------------------------------------------------------------------------------------
# loading


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override and validate a scenario file.

    Parameters
    ----------
    path
        The YAML file.
    overrides
        ``key.path=value`` strings (values are YAML), applied before validation.

    Raises
    ------
    ScenarioError
        For every problem, with file, line and key path.
    """
    data, smap = load_yaml_file(path)
    return parse_scenario(data, smap, overrides)


def loads_scenario(text: str, overrides: Sequence[str] = (), source: str = "<string>") -> Scenario:
    """Validate a scenario given as YAML text; see :func:`load_scenario`."""
    data, smap = load_yaml_text(text, source)
    return parse_scenario(data, smap, overrides)


def parse_scenario(
    data: Any, smap: SourceMap | None = None, overrides: Sequence[str] = ()
) -> Scenario:
    """Validate already-parsed scenario data (a dict); see :func:`load_scenario`."""
    smap = smap or SourceMap("<dict>")
    if not isinstance(data, dict):
        raise ScenarioError(
            smap.source,
            [Problem(f"expected a mapping of scenario keys, got {type(data).__name__}", "",
                     smap.line_of(()))],
        )
    data = copy.deepcopy(data)
    overridden = apply_overrides(data, overrides, smap.source)
    model = scenario_model()
    try:
        scenario = model.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(
            smap.source, [_problem(e, data, smap, overridden, model) for e in exc.errors()]
        ) from None
    problems = list(_check_references(scenario, smap, overridden))
    problems += _check_faults(scenario, smap, overridden)
    problems += _check_regions(scenario, smap, overridden)
    problems += _check_size(scenario, smap)
    if not problems and scenario.variants:
        problems += _check_variants(data, smap)
    if problems:
        raise ScenarioError(smap.source, problems)
    return scenario


def _check_variants(data: dict[str, Any], smap: SourceMap) -> list[Problem]:
    """Check that every variant's overrides apply and give a valid scenario.

    A problem is reported at the line of the variant (or of its offending override), with the
    variant's name and, for an invalid result, the key path and message of the inner problem.
    """
    problems: list[Problem] = []
    base = {k: v for k, v in data.items() if k != "variants"}
    for name, overrides in data.get("variants", {}).items():
        where: KeyPath = ("variants", name)
        bad = False
        for i, text in enumerate(overrides):
            try:
                apply_overrides(copy.deepcopy(base), [text], smap.source)
            except ScenarioError as exc:
                bad = True
                path = (*where, i)
                problems += [Problem(p.message.replace("bad --set", "bad override"),
                                     ".".join(map(str, path)), smap.line_of(path))
                             for p in exc.problems]
        if bad:
            continue
        try:
            parse_scenario(base, SourceMap(smap.source), overrides)
        except ScenarioError as exc:
            for p in exc.problems:
                path = where
                for i, text in enumerate(overrides):  # blame the override that set the key
                    key = text.partition("=")[0].strip()
                    if p.path == key or p.path.startswith(key + "."):
                        path = (*where, i)
                problems.append(Problem(
                    f"variant {name!r} gives an invalid scenario: "
                    f"{p.path + ': ' if p.path else ''}{p.message.removesuffix(' (from --set)')}",
                    ".".join(map(str, path)), smap.line_of(path)))
    return problems


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], source: str) -> set[KeyPath]:
    """Apply ``a.b.c=value`` overrides to ``data`` in place; return the paths overridden.

    Values are parsed as YAML (``3``, ``2s``, ``[a, b]``). Every key on the path but the last
    must already exist.
    """
    done: set[KeyPath] = set()
    for text in overrides:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ScenarioError(
                source, [Problem(f"bad --set {text!r}: expected key.path=value", "--set")]
            )
        try:
            value = load_yaml_value(raw) if raw.strip() else ""
        except ValueError as exc:
            raise ScenarioError(
                source, [Problem(f"bad --set {text!r}: value is not valid YAML ({exc})", key)]
            ) from None
        parts: list[str | int] = [int(p) if p.isdigit() else p for p in key.split(".")]
        if any(p == "" for p in parts):
            raise ScenarioError(source, [Problem(f"bad --set {text!r}: empty key in path", key)])
        node: Any = data
        for i, part in enumerate(parts):
            here = ".".join(str(p) for p in parts[: i + 1])
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not isinstance(part, int) or part >= len(node):
                    parent = ".".join(str(p) for p in parts[:i])
                    raise ScenarioError(source, [Problem(
                        f"bad --set {text!r}: {parent!r} is a list of {len(node)} item(s); "
                        f"{part!r} is not one of its indexes (0..{len(node) - 1})", key)])
            elif not isinstance(node, dict):
                raise ScenarioError(source, [Problem(
                    f"bad --set {text!r}: {'.'.join(str(p) for p in parts[:i])!r} is a value, "
                    "not a mapping", key)])
            elif part not in node and not last:
                fields = _fields_for(scenario_model(), data, tuple(parts[:i])) or []
                if part in fields:
                    # an optional block the file leaves out (metrics.requests=streaming on a
                    # scenario without ``metrics:``): --set creates it
                    node[part] = {}
                    node = node[part]
                    continue
                options = [*node, *fields]
                raise ScenarioError(
                    source,
                    [Problem(f"bad --set {text!r}: no key {here!r} in the scenario"
                             + _did_you_mean(str(part), options), key)],
                )
            if last:
                node[part] = value
            else:
                node = node[part]
        done.add(tuple(parts))
    return done


# --------------------------------------------------------------------------------------------
# error messages


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _data_path(loc: tuple[str | int, ...], data: Any) -> KeyPath:
    """Map a pydantic error location onto the key path in the data (dropping union tags)."""
    path: list[str | int] = []
    node: Any = data
    for item in loc:
        if _has(node, item):
            path.append(item)
            node = node[item]
        elif isinstance(node, dict) and any(str(k) == str(item) for k in node):
            key = next(k for k in node if str(k) == str(item))  # pydantic shows keys as text
            path.append(key)
            node = node[key]
        elif isinstance(node, dict | list):
            continue  # a union tag or a validator marker, not a key
        else:
            path.append(item)
            node = None
    return tuple(path)


def _fields_for(model: Any, data: Any, path: KeyPath) -> list[str] | None:
    """Return the keys (aliases) the model accepts at data ``path``, or None if not a mapping.

    Walks the model's types alongside the data, picking each union member by the data's
    discriminator value (``kind: service``, ``dist: lognormal``...).
    """
    tp: Any = model
    node: Any = data
    for item in path:
        tp = _resolve(tp, node)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            tp = _field_named(tp, item)
            if tp is None:
                return None
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        else:
            return None
        node = _child(node, item)
    tp = _resolve(tp, node)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return None


def _has(node: Any, item: Any) -> bool:
    if isinstance(node, dict):
        return item in node
    return isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node)


def _child(node: Any, item: Any) -> Any:
    return node[item] if _has(node, item) else None


def _field_named(model: type[BaseModel], item: Any) -> Any:
    for n, f in model.model_fields.items():
        if item in (n, f.alias):
            return f.annotation
    return None


def _resolve(tp: Any, node: Any) -> Any:
    """Strip Annotated and Optional; pick the union member that ``node`` (the data) selects."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin not in (Union, types.UnionType):
            return tp
        members = [_strip(a) for a in typing.get_args(tp) if a is not type(None)]
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        if isinstance(node, dict):
            for m in models:
                for name, f in m.model_fields.items():
                    key = f.alias or name
                    if (typing.get_origin(f.annotation) is Literal and key in node
                            and node[key] in typing.get_args(f.annotation)):
                        return m
            if len(models) == 1:
                return models[0]
            dicts = [m for m in members if typing.get_origin(m) is dict]
            return dicts[0] if len(dicts) == 1 and not models else None
        if isinstance(node, list):
            lists = [m for m in members if typing.get_origin(m) is list]
            return lists[0] if len(lists) == 1 else None
        return models[0] if len(models) == 1 else None


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _node_at(data: Any, path: KeyPath) -> Any:
    node = data
    for item in path:
        node = _child(node, item)
    return node


def _problem(
    err: Any, data: Any, smap: SourceMap, overridden: set[KeyPath], model: Any
) -> Problem:
    loc = tuple(err["loc"])
    path = _data_path(loc, data)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        fields = _fields_for(model, data, path[:-1]) or []
        message = f"unknown key {path[-1]!r}" + _did_you_mean(str(path[-1]), fields)
        if fields:
            message += f" (allowed: {', '.join(sorted(fields))})"
    elif kind == "union_tag_invalid":
        disc = str(ctx.get("discriminator", "")).strip("'")
        tags = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",")]
        tag = ctx.get("tag")
        path = (*path, disc)
        message = f"unknown {disc} {tag!r}" + _did_you_mean(str(tag), tags)
        message += f" (expected one of: {', '.join(tags)})"
    elif kind == "union_tag_not_found":
        disc = str(ctx.get("discriminator", "")).strip("'")
        message = f"missing required key {disc!r}"
    elif kind == "missing":
        message = f"missing required key {path[-1]!r}" if path else "missing required key"
        if loc and loc[-1] != (path[-1] if path else None):
            message = f"missing required key {loc[-1]!r}"
            path = (*path, loc[-1])
    else:
        msg = str(err["msg"])
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        msg = msg[:1].lower() + msg[1:]
        given = err.get("input")
        if kind not in ("value_error",) and not isinstance(given, dict | list):
            msg += f", got {given!r}"
        if kind == "literal_error" and isinstance(given, str):
            msg += _did_you_mean(given, re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        if kind in ("value_error", "assertion_error"):
            path = _blame_field(msg, data, path, model)
        message = msg
    line = None if _is_overridden(path, overridden) else smap.line_of(path)
    if line is None:
        message += " (from --set)" if _is_overridden(path, overridden) else ""
    return Problem(message, ".".join(str(p) for p in path), line)


def _blame_field(message: str, data: Any, path: KeyPath, model: Any) -> KeyPath:
    """Point a whole-model check at the key its message starts with (``warmup (5s) must...``)."""
    word = re.match(r"[A-Za-z_][A-Za-z0-9_]*", message)
    node = _node_at(data, path)
    if word and isinstance(node, dict) and word.group() in node:
        fields = _fields_for(model, data, path) or []
        if word.group() in fields:
            return (*path, word.group())
    return path


def _is_overridden(path: KeyPath, overridden: set[KeyPath]) -> bool:
    return any(path[: len(o)] == o for o in overridden)


# --------------------------------------------------------------------------------------------
# references


def _keeps_entries(scenario: Scenario, name: str) -> bool:
    return scenario.components[name].keeps_entries


def _check_references(
    scenario: Scenario, smap: SourceMap, overridden: set[KeyPath]
) -> Iterator[Problem]:
    names = set(scenario.components)

    def where(path: KeyPath) -> int | None:
        return None if _is_overridden(path, overridden) else smap.line_of(path)

    def fmt(path: KeyPath) -> str:
        return ".".join(str(p) for p in path)

    for wname, w in scenario.workloads.items():
        path: KeyPath = ("workloads", wname, "target")
        fallback = w.target.fallback
        for field in ("queue", "cache"):
            ref = None if fallback is None else getattr(fallback, field)
            fpath: KeyPath = ("workloads", wname, "target", "fallback", field)
            if ref is not None and ref not in names:
                yield Problem(f"unknown component {ref!r}" + _did_you_mean(ref, names),
                              fmt(fpath), where(fpath))
            elif field == "cache" and ref is not None and not _keeps_entries(scenario, ref):
                yield Problem(f"{ref!r} is not a cache: a stale fallback serves a cache's "
                              "entries", fmt(fpath), where(fpath))
        if w.target.to not in names:
            yield Problem(
                f"unknown component {w.target.to!r}" + _did_you_mean(w.target.to, names),
                fmt(path), where(path))
        elif (refusal := scenario.components[w.target.to].refuses_calls) is not None:
            yield Problem(f"{w.target.to!r} {refusal}", fmt(path), where(path))
    graph: dict[str, list[tuple[str, KeyPath]]] = {}
    for cname, params in scenario.components.items():
        edges = graph.setdefault(cname, [])
        for rel, ref in params.references():
            path = ("components", cname, *rel)
            if ref not in names:
                yield Problem(f"unknown component {ref!r}" + _did_you_mean(ref, names),
                              fmt(path), where(path))
            elif ref == cname:
                yield Problem(f"component {cname!r} refers to itself", fmt(path), where(path))
            elif (refusal := scenario.components[ref].refuses_calls) is not None:
                yield Problem(f"{ref!r} {refusal}", fmt(path), where(path))
            elif rel[-2:] == ("fallback", "cache") and not _keeps_entries(scenario, ref):
                yield Problem(f"{ref!r} is not a cache: a stale fallback serves a cache's "
                              "entries", fmt(path), where(path))
            else:
                edges.append((ref, path))
    cycle = list(_find_cycle(graph, where, fmt))
    yield from cycle
    if cycle or any(ref not in names for p in scenario.components.values()
                    for _, ref in p.references()):
        return
    for cname, params in scenario.components.items():
        for rel, message in params.cross_check(scenario.components):
            path = ("components", cname, *rel)
            yield Problem(message, fmt(path), where(path))


def _check_faults(
    scenario: Scenario, smap: SourceMap, overridden: set[KeyPath]
) -> Iterator[Problem]:
    names = scenario.components

    def problem(i: int, key: str, message: str) -> Problem:
        path: KeyPath = ("faults", i, key)
        line = None if _is_overridden(path, overridden) else smap.line_of(path)
        return Problem(message, ".".join(str(p) for p in path), line)

    grown: dict[str, int] = {}  # an event may provision instances (a reshard's new shards)
    for fault in scenario.faults:
        if isinstance(fault, TimelineEvent) and (count := fault.grows_to()) is not None:
            grown[fault.target] = max(grown.get(fault.target, 0), count)
    for i, fault in enumerate(scenario.faults):
        if fault.at >= scenario.duration + scenario.drain:
            yield problem(i, "at", f"starts at {fault.at:g}s, after the run has ended")
        if isinstance(fault, SpikeFault):
            w = scenario.workloads.get(fault.workload)
            if w is None:
                yield problem(i, "workload", f"unknown workload {fault.workload!r}"
                              + _did_you_mean(fault.workload, scenario.workloads))
            elif isinstance(w.arrivals, Closed | ConstantRate):
                yield problem(i, "workload", f"workload {fault.workload!r} has "
                              f"{w.arrivals.process} arrivals; a spike needs poisson, schedule "
                              "or on_off arrivals")
            continue
        if isinstance(fault, RegionPartitionFault | RegionOutageFault):
            continue  # checked with the regions
        if isinstance(fault, PartitionFault):
            for name in fault.between:
                if name not in names:
                    yield problem(i, "between", f"unknown component {name!r}"
                                  + _did_you_mean(name, names))
            if fault.between[0] == fault.between[1]:
                yield problem(i, "between", "a partition needs two different components")
            continue
        group, index = split_target(fault.target)
        if group not in names:
            yield problem(i, "target", f"unknown component {group!r}"
                          + _did_you_mean(group, names))
            continue
        params = names[group]
        count = max(params.replicas, grown.get(group, 0))
        if index is not None and index >= count:
            yield problem(i, "target", f"{group!r} has {count} replica(s): "
                          f"{fault.target!r} does not exist")
        declared = registry.kind(params.kind)
        supported = declared.faults | {e.model_fields["kind"].default for e in declared.events}
        if not declared.takes(fault.kind):
            yield problem(i, "kind", f"a {params.kind} does not support {fault.kind} faults"
                          + (f" (supported: {', '.join(sorted(supported))})" if supported
                             else ""))
            continue
        for key, message in params.check_fault(fault):
            yield problem(i, key, message)


def _check_regions(
    scenario: Scenario, smap: SourceMap, overridden: set[KeyPath]
) -> Iterator[Problem]:
    """Region names used by placements, client spreads and region faults must be declared."""
    spec = scenario.regions

    def problem(path: KeyPath, message: str) -> Problem:
        line = None if _is_overridden(path, overridden) else smap.line_of(path)
        return Problem(message, ".".join(str(p) for p in path), line)

    if spec is not None:
        for rel, text in spec.problems():
            yield problem(("regions", *rel), text)
    for cname, params in scenario.components.items():
        region = params.region
        if isinstance(region, list) and len(region) != params.replicas:
            yield problem(("components", cname, "region"),
                          f"lists {len(region)} region(s) but there are {params.replicas} "
                          "instances; give one region, or one per instance")
        elif (isinstance(region, list) and len(set(region)) > 1
              and not registry.kind(params.kind).spans_regions):
            yield problem(("components", cname, "region"),
                          f"a {params.kind} cannot spread its instances over regions; "
                          "place it in one region")
    for cname, params in scenario.components.items():
        for rel, name in params.regions_used():
            message = unknown_region(name, spec)
            if message is not None:
                yield problem(("components", cname, *rel), message)
    for wname, w in scenario.workloads.items():
        for name in w.regions or {}:
            message = unknown_region(name, spec)
            if message is not None:
                yield problem(("workloads", wname, "regions", name), message)
    for i, fault in enumerate(scenario.faults):
        if isinstance(fault, RegionOutageFault):
            message = unknown_region(fault.region, spec)
            if message is not None:
                yield problem(("faults", i, "region"), message)
        elif isinstance(fault, RegionPartitionFault):
            for j, name in enumerate(fault.between):
                message = unknown_region(name, spec)
                if message is not None:
                    yield problem(("faults", i, "between", j), message)
            if fault.between[0] == fault.between[1]:
                yield problem(("faults", i, "between"), "a partition needs two different regions")


def _find_cycle(graph: dict[str, list[tuple[str, KeyPath]]], where: Any, fmt: Any
                ) -> Iterator[Problem]:
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> Problem | None:
        color[node] = grey
        stack.append(node)
        for nxt, path in graph.get(node, []):
            if color.get(nxt, black) == grey:
                cycle = [*stack[stack.index(nxt):], nxt]
                return Problem("reference cycle: " + " -> ".join(cycle)
                               + " (requests would loop forever)", fmt(path), where(path))
            if color.get(nxt, black) == white:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for node in graph:
        if color[node] == white:
            found = visit(node)
            if found:
                yield found
                return


def _check_size(scenario: Scenario, smap: SourceMap) -> list[Problem]:
    problems = []
    for key in ("duration", "warmup", "drain"):
        value = getattr(scenario, key)
        if value != "auto" and not math.isfinite(value):
            problems.append(Problem(f"must be a finite duration, got {value}", key,
                                    smap.line_of((key,))))
    if problems:
        return problems
    for name, w in scenario.workloads.items():
        if isinstance(w.arrivals, OnOff):
            cycle = w.arrivals.on.mean + w.arrivals.off.mean
            cycles = scenario.duration / cycle if cycle > 0 else math.inf
            if cycles > MAX_REQUESTS:
                path = ("workloads", name, "arrivals")
                problems.append(Problem(
                    f"on and off periods average {cycle:.3g}s together, about {cycles:.3g} "
                    f"cycles in the run (limit {MAX_REQUESTS:.0e}); lengthen them"
                    if cycle > 0 else "on and off periods both have zero length, so time "
                    "would never advance; lengthen them",
                    ".".join(path), smap.line_of(path)))
    if problems:
        return problems
    n = scenario.expected_requests()
    if not (math.isfinite(n) and n <= MAX_REQUESTS):
        estimate = "unbounded" if not math.isfinite(n) else f"about {n:.3g}"
        problems.append(Problem(
            f"this run would create {estimate} requests (limit {MAX_REQUESTS:.0e}); lower the "
            "rates or the duration, or give closed-loop users a think time",
            "workloads", smap.line_of(("workloads",))))
    ticks = (scenario.duration + scenario.drain) / scenario.metrics.interval
    instances = sum(c.replicas for c in scenario.components.values())
    if ticks * instances > MAX_SAMPLES:
        problems.append(Problem(
            f"gauge sampling would take about {ticks:.3g} samples of each of {instances} "
            f"instance(s), {ticks * instances:.3g} in all (limit {MAX_SAMPLES:.0e}); raise "
            "metrics.interval or shorten the run",
            "metrics.interval", smap.line_of(("metrics", "interval"))))
    return problems
