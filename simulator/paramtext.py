"""Parameters described in words, for ``simulator kinds``: types (``duration``, ``one of:
fifo, lifo``...), defaults, and one row per setting of a union of models told apart by one
literal field (a service's ``queue.discipline``...)."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal


def _tagged_members(tp: Any) -> tuple[str, list[Any]] | None:
    """(tag, models) when ``tp`` is a union of models told apart by one literal field."""
    return _tagged_models([typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated
                           else a for a in _union_members(tp)])


def _tagged_models(args: list[Any]) -> tuple[str, list[Any]] | None:
    """(tag, models) when ``args`` are models told apart by one literal field."""
    from pydantic import BaseModel

    if len(args) < 2 or not all(isinstance(m, type) and issubclass(m, BaseModel)
                                for m in args):
        return None
    for key in args[0].model_fields:
        if all(key in m.model_fields and typing.get_origin(m.model_fields[key].annotation)
               is Literal for m in args):
            return key, args
    return None


def _union_members(tp: Any) -> list[Any]:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        out = []
        for a in typing.get_args(tp):
            if a is not type(None):
                out.extend(_union_members(a) or [a])
        return out
    return []


def member_rows(name: str, tp: Any) -> list[tuple[str, str, str]]:
    """One row per setting of the members of a tagged union (``name.setting``), saying
    which members take it."""
    from pydantic_core import PydanticUndefined

    tagged = _tagged_members(tp)
    if tagged is None:
        return []
    key, models = tagged
    if key in dict(_FAMILIES):  # a family with a name of its own (distributions...)
        return []
    tags = [typing.get_args(m.model_fields[key].annotation)[0] for m in models]
    rows: list[tuple[str, str, str]] = [
        (f"{name}.{key}", "one of: " + ", ".join(str(t) for t in tags), "required")]
    seen: dict[str, list[str]] = {}
    fields: dict[str, Any] = {}
    for tag, m in zip(tags, models, strict=True):
        for fname, f in m.model_fields.items():
            if fname != key:
                seen.setdefault(fname, []).append(str(tag))
                fields.setdefault(fname, f)
    for fname, used in seen.items():
        f = fields[fname]
        text = type_text(f.annotation, f.metadata)
        if len(used) < len(models):
            text += f" ({', '.join(used)})"
        default = ("default " + default_text(f.default, text)
                   if f.default is not PydanticUndefined else "required")
        rows.append((f"{name}.{f.alias or fname}", text, default))
    return rows


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
    if origin is list:
        (item,) = typing.get_args(tp)
        return _join("list of " + _plural(type_text(item)), bounds)
    if origin is dict:
        _, value = typing.get_args(tp)
        return _join(f"mapping of name to {type_text(value)}", bounds)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _family([tp]) or tp.__name__
    names = {int: "integer", float: "number", str: "name", bool: "true/false"}
    return _join(names.get(tp, getattr(tp, "__name__", str(tp))), bounds)


#: tags of the union families named by what they are (every distribution has ``dist``...)
_FAMILIES = (("dist", "distribution"), ("popularity", "key popularity"),
             ("process", "arrival process"))


def _family(models: list[Any]) -> str | None:
    """Name a union of scenario models by what they are (every distribution has ``dist``...)."""
    from pydantic import BaseModel

    if not models or not all(isinstance(m, type) and issubclass(m, BaseModel) for m in models):
        return None
    for key, name in _FAMILIES:
        if all(key in m.model_fields for m in models):
            return name
    tagged = _tagged_models(models)
    if tagged is not None:
        return f"{{{tagged[0]}: ...}} (below)"
    names = {m.__name__ for m in models}
    if names == {"CallSpec", "ParallelSpec"}:
        return "step (a call or {parallel: [calls]})"
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
    return json.dumps(value)
