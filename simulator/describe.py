"""Words for the scenario format: each kind's parameters, their types, bounds and defaults.

``simulator kinds`` prints :func:`describe_kinds`. Without names it lists every kind one level
deep; given kinds, it expands every nested setting (``health_check.interval``,
``autoscaling.behavior.scale_up.policies[].value``) and the options of the call steps a kind's
``calls`` take (timeouts, retries, breakers, hedging), each with its unit and default. Everything
is read from the pydantic models the kinds declare, so it cannot drift from what validation
accepts.
"""

from __future__ import annotations

import json
import textwrap
import types
import typing
from collections.abc import Iterator, Sequence
from typing import Any, Literal

#: column of the type text
_NAME_WIDTH = 20
#: nesting deeper than this is not expanded (the format has no deeper models)
_MAX_DEPTH = 6


def describe_kinds(names: Sequence[str] = ()) -> str:
    """Every kind's parameters (one level), or the named kinds' in full."""
    from simulator.registry import kinds

    out = []
    for kind, declared in kinds().items():
        if names and kind not in names:
            continue
        doc = declared.summary or (declared.component_class().__doc__ or "").strip(
            ).splitlines()[0]
        out.append(f"{kind}: {doc}")
        rows = list(_rows(declared.params, "", expand=bool(names), depth=0, seen={}))
        width = min(max(len(t) for _, t, _ in rows), 44)
        for name, text, default in rows:
            lines = textwrap.wrap(text, width) or [""]
            if len(name) > _NAME_WIDTH:  # a long dotted name gets its own line
                out.append(f"    {name}")
                name = ""
                if not text:  # a heading: nothing more to say on the next line
                    continue
            out.append(f"    {name:<{_NAME_WIDTH}} {lines[0]:<{width}}  {default}".rstrip())
            out.extend(f"    {'':<{_NAME_WIDTH}}   {more}" for more in lines[1:])
        out.append("")
    return "\n".join(out) + "\n"


def _rows(model: Any, prefix: str, expand: bool, depth: int, seen: dict[Any, str]
          ) -> Iterator[tuple[str, str, str]]:
    """(dotted name, type in words, default) of each field of ``model``; with ``expand``, the
    fields of nested models follow their parent's row, each model's once (``seen``: where it
    was listed; a later use refers to it)."""
    from pydantic_core import PydanticUndefined

    for name, f in model.model_fields.items():
        if name == "kind" and not prefix:
            continue
        text = type_text(f.annotation, f.metadata)
        if f.default is not PydanticUndefined:
            default = "default " + default_text(f.default, text)
        elif f.default_factory is not None:
            default = "default " + default_text(f.default_factory(), text)
        else:
            default = "required"
        key = f"{prefix}{f.alias or name}"
        yield key, text, default
        if not expand or depth >= _MAX_DEPTH:
            continue
        for suffix, label, sub in _models_in(f.annotation):
            heading = f"{key}{suffix}" + (f" ({label})" if label else "")
            if sub in seen:
                yield heading, f"the fields of {seen[sub]}", ""
                continue
            seen[sub] = heading
            if label:  # one of several shapes: a heading row, then its fields
                yield heading, "", ""
            yield from _rows(sub, f"{key}{suffix}.", True, depth + 1, seen)


def _models_in(tp: Any, suffix: str = "") -> list[tuple[str, str, Any]]:
    """(key suffix, label, model) of every scenario model reachable in ``tp``: a model itself,
    the members of a union (labelled by their discriminator when they have one), the items of
    lists (``[]``) and the values of mappings (``.*``). Distributions, popularity and arrival
    families are described in words, not expanded."""
    from pydantic import BaseModel

    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(tp)[0], suffix)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        models = [typing.get_args(m)[0] if typing.get_origin(m) is typing.Annotated else m
                  for m in members]
        if _family(models) in ("distribution", "key popularity", "arrival process"):
            return []
        found = [x for m in members for x in _models_in(m, suffix)]
        if len(found) > 1:  # several shapes: say which is which
            return [(s, _label(m) or m.__name__, m) for s, _, m in found]
        return found
    if origin is list or origin is tuple:
        return _models_in(typing.get_args(tp)[0], suffix + "[]")
    if origin is dict:
        return _models_in(typing.get_args(tp)[1], suffix + ".*")
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if _family([tp]) in ("distribution", "key popularity", "arrival process"):
            return []
        return [(suffix, "", tp)]
    return []


def _label(model: Any) -> str:
    """``dist: lognormal`` for a member of a discriminated union, or ``''``."""
    for key in ("kind", "type", "dist", "mode", "scheme", "process", "popularity", "metric"):
        f = model.model_fields.get(key)
        if f is not None and typing.get_origin(f.annotation) is Literal:
            return f"{key}: " + "|".join(str(a) for a in typing.get_args(f.annotation))
    return ""


def type_text(tp: Any, metadata: Sequence[Any] = ()) -> str:
    """Describe a parameter's type in words (``duration``, ``one of: fifo, lifo``...)."""
    from pydantic import BaseModel, BeforeValidator

    from simulator.units import parse_duration, parse_rate

    funcs = [m.func for m in metadata if isinstance(m, BeforeValidator)]
    bounds = _bounds(metadata)
    if parse_duration in funcs:
        return _join("duration", bounds)
    if parse_rate in funcs:
        return _join("rate", bounds)
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *more = typing.get_args(tp)
        return _join(type_text(inner, more), bounds)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(members) < len(typing.get_args(tp))
        models = [typing.get_args(m)[0] if typing.get_origin(m) is typing.Annotated else m
                  for m in members]
        text = _family(models) or " or ".join(type_text(m) for m in members)
        return _join(text + (", optional" if optional else ""), bounds)
    if origin is Literal:
        return "one of: " + ", ".join(str(a) for a in typing.get_args(tp))
    if origin is list or origin is tuple:
        item = typing.get_args(tp)[0]
        return _join("list of " + _plural(type_text(item)), bounds)
    if origin is dict:
        _, value = typing.get_args(tp)
        return _join(f"mapping of name to {type_text(value)}", bounds)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _family([tp]) or tp.__name__
    names = {int: "integer", float: "number", str: "name", bool: "true/false"}
    return _join(names.get(tp, getattr(tp, "__name__", str(tp))), bounds)


def _family(models: list[Any]) -> str | None:
    """Name a union of scenario models by what they are (every distribution has ``dist``...)."""
    from pydantic import BaseModel

    if not models or not all(isinstance(m, type) and issubclass(m, BaseModel) for m in models):
        return None
    for key, name in (("dist", "distribution"), ("popularity", "key popularity"),
                      ("process", "arrival process")):
        if all(key in m.model_fields for m in models):
            return name
    names = {m.__name__ for m in models}
    if {"CallSpec", "ParallelSpec"} <= names:
        return ("step (a call, {parallel: [calls]}, {call, probability}, {choice: [{weight, "
                "steps}]} or {reenter, probability})")
    if names == {"CallSpec"}:
        return "call (a name or {to, op})"
    return None


def _plural(text: str) -> str:
    head, sep, rest = text.partition(" ")
    if head in ("name", "number", "integer", "distribution", "duration", "rate", "step", "call"):
        return head + "s" + sep + rest
    return text


def _bounds(metadata: Sequence[Any]) -> str:
    signs = {"Ge": ">=", "Gt": ">", "Le": "<=", "Lt": "<"}
    parts = []
    for m in metadata:
        name = type(m).__name__
        if name in signs:
            value = getattr(m, name.lower())
            parts.append(f"{signs[name]} {value:g}" if isinstance(value, float)
                         else f"{signs[name]} {value}")
        elif name == "MinLen":
            parts.append(f"at least {m.min_length}")
    return ", ".join(parts)


def _join(text: str, bounds: str) -> str:
    if not bounds:
        return text
    if text.endswith(", optional"):
        return _join(text.removesuffix(", optional"), bounds) + ", optional"
    return f"{text}, {bounds}" if bounds.startswith("at") else f"{text} {bounds}"


def default_text(value: Any, type_desc: str = "") -> str:
    """Render a default value as it would be written in a scenario."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        if getattr(value, "dist", None) == "constant":
            value = value.value  # type: ignore[attr-defined]
        else:
            return json.dumps(value.model_dump(mode="json", by_alias=True,
                                               exclude_defaults=True))
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        unit = "s" if type_desc.startswith(("duration", "distribution")) else ""
        return f"{value:g}{unit}"
    if isinstance(value, str):
        return value
    from pydantic_core import to_jsonable_python

    return json.dumps(to_jsonable_python(value, by_alias=True))


