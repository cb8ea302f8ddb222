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
import types
import typing
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from simulator import registry
from simulator.components.base import ComponentParams, KeyPath
from simulator.distributions import Duration
from simulator.errors import Problem, ScenarioError
from simulator.workloads import Closed, Workload
from simulator.yamlfile import SourceMap, load_yaml_file, load_yaml_text

#: Runs estimated to create more requests than this are refused up front.
MAX_REQUESTS = 200_000_000


class Metrics(BaseModel):
    """What to record.

    Parameters
    ----------
    interval
        Period of gauge sampling (queue lengths, utilisation...), seconds.
    spans
        Record one row per hop (``true``), none (``false``), or ``auto``: on when the run is
        expected to create at most 2 million requests.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: Duration = Field(1.0, gt=0)
    spans: bool | Literal["auto"] = "auto"


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
        Requests created before ``warmup`` are excluded from summaries, seconds.
    drain
        Extra simulated time after ``duration`` for requests in flight to finish, seconds.
        Requests still unfinished then are reported with status ``in_flight``.
    workloads
        Client populations by name.
    components
        Components by name; each has a ``kind`` and that kind's parameters.
    metrics
        Recording settings.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "scenario"
    description: str = ""
    seed: int = Field(1, ge=0, lt=2**63)
    duration: Duration = Field(gt=0)
    warmup: Duration = Field(0.0, ge=0)
    drain: Duration = Field(0.0, ge=0)
    workloads: dict[str, Workload] = Field(min_length=1)
    components: dict[str, ComponentParams] = Field(min_length=1)
    metrics: Metrics = Metrics()

    @model_validator(mode="after")
    def _check_times(self) -> Self:
        if self.warmup >= self.duration:
            raise ValueError(
                f"warmup ({self.warmup:g}s) must be shorter than duration ({self.duration:g}s)"
            )
        return self

    def expected_requests(self) -> float:
        """Upper estimate of the requests this scenario creates in one run."""
        total = 0.0
        for w in self.workloads.values():
            if isinstance(w.arrivals, Closed):
                # self-limiting: at most one request per user per millisecond of think time
                rate = w.arrivals.users / max(w.arrivals.think_time.mean, 1e-3)
            else:
                rate = w.arrivals.mean_rate()
            total += rate * self.duration
        return total

    def record_spans(self) -> bool:
        """Whether per-hop spans are recorded in a run of this scenario."""
        if self.metrics.spans == "auto":
            return self.expected_requests() <= 2_000_000
        return bool(self.metrics.spans)


@functools.cache
def scenario_model() -> type[Scenario]:
    """Return the validating Scenario model, with a member per registered component kind."""
    members = tuple(cls.Params for cls in registry.kinds().values())
    union = Annotated[Union[members], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007
    model: type[Scenario] = create_model(  # type: ignore[call-overload]
        "Scenario",
        __base__=Scenario,
        __doc__=Scenario.__doc__,
        components=(dict[str, union], Field(min_length=1)),  # type: ignore[valid-type]
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
    problems += _check_size(scenario, smap)
    if problems:
        raise ScenarioError(smap.source, problems)
    return scenario


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
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ScenarioError(
                source, [Problem(f"bad --set {text!r}: value is not valid YAML ({exc})", key)]
            ) from None
        parts: list[str | int] = [int(p) if p.isdigit() else p for p in key.split(".")]
        if any(p == "" for p in parts):
            raise ScenarioError(source, [Problem(f"bad --set {text!r}: empty key in path", key)])
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            here = ".".join(str(p) for p in parts[: i + 1])
            if (isinstance(node, dict) and part in node) or (isinstance(node, list) and isinstance(part, int) and part < len(node)):
                node = node[part]
            else:
                options = list(node) if isinstance(node, dict) else []
                raise ScenarioError(
                    source,
                    [Problem(f"bad --set {text!r}: no key {here!r} in the scenario"
                             + _did_you_mean(str(part), options), key)],
                )
        last = parts[-1]
        if isinstance(node, dict) or (isinstance(node, list) and isinstance(last, int) and last < len(node)):
            node[last] = value
        else:
            raise ScenarioError(
                source, [Problem(f"bad --set {text!r}: cannot set a key inside a value", key)]
            )
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
    node = data
    for item in loc:
        if (isinstance(node, dict) and item in node) or (isinstance(node, list) and isinstance(item, int) and item < len(node)):
            path.append(item)
            node = node[item]
        elif isinstance(node, dict | list):
            continue  # a union tag or a validator marker, not a key
        else:
            path.append(item)
            node = None
    return tuple(path)


def _fields_at(model: Any, loc: tuple[str | int, ...]) -> list[str] | None:
    """Return the field names (aliases) of the model at ``loc``, following pydantic's locations."""
    tp: Any = model
    for item in loc:
        tp = _unwrap(tp, item)
        if tp is None:
            return None
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            f = _field_named(tp, item)
            if f is not None:
                tp = f
                continue
        origin = typing.get_origin(tp)
        if origin is dict:
            tp = typing.get_args(tp)[1]
        elif origin is list:
            tp = typing.get_args(tp)[0]
        else:
            return None
    tp = _unwrap(tp, None)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return None


def _field_named(model: type[BaseModel], item: Any) -> Any:
    for n, f in model.model_fields.items():
        if item in (n, f.alias):
            return f.annotation
    return None


def _unwrap(tp: Any, tag: Any) -> Any:
    """Strip Annotated/Optional; pick a union member by its discriminator tag when given."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            chosen = None
            for m in members:
                inner = typing.get_args(m)[0] if typing.get_origin(m) is Annotated else m
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    for f in inner.model_fields.values():
                        if typing.get_origin(f.annotation) is Literal and tag in typing.get_args(
                            f.annotation
                        ):
                            chosen = inner
                    tags = [
                        md.tag for md in getattr(m, "__metadata__", ()) if hasattr(md, "tag")
                    ]
                    if tag in tags:
                        chosen = inner
            if chosen is None and len(members) >= 1:
                models = [m for m in members if isinstance(_strip(m), type)]
                chosen = _strip(models[0]) if len(models) == 1 else None
            if chosen is None:
                return tp if tag is None else None
            return chosen
        else:
            return tp


def _strip(tp: Any) -> Any:
    return typing.get_args(tp)[0] if typing.get_origin(tp) is Annotated else tp


def _problem(
    err: Any, data: Any, smap: SourceMap, overridden: set[KeyPath], model: Any
) -> Problem:
    loc = tuple(err["loc"])
    path = _data_path(loc, data)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        fields = _fields_at(model, loc[:-1]) or []
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
        message = msg
    line = None if _is_overridden(path, overridden) else smap.line_of(path)
    if line is None:
        message += " (from --set)" if _is_overridden(path, overridden) else ""
    return Problem(message, ".".join(str(p) for p in path), line)


def _is_overridden(path: KeyPath, overridden: set[KeyPath]) -> bool:
    return any(path[: len(o)] == o for o in overridden)


# --------------------------------------------------------------------------------------------
# references


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
        if w.target.to not in names:
            yield Problem(
                f"unknown component {w.target.to!r}" + _did_you_mean(w.target.to, names),
                fmt(path), where(path))
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
    n = scenario.expected_requests()
    if math.isfinite(n) and n <= MAX_REQUESTS:
        return []
    estimate = "unbounded" if not math.isfinite(n) else f"about {n:.3g}"
    return [Problem(
        f"this run would create {estimate} requests (limit {MAX_REQUESTS:.0e}); lower the "
        "rates or the duration, or give closed-loop users a think time",
        "workloads", smap.line_of(("workloads",)))]
