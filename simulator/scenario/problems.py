"""Turning pydantic's errors into located problems: the key path in the data, the line in the
file, and a message that says what was expected (with a did-you-mean)."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
)

from simulator.components.params import KeyPath
from simulator.errors import Problem
from simulator.yamlfile import SourceMap


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
        members: list[Any] = []
        for a in typing.get_args(tp):
            a = _strip(a)
            if typing.get_origin(a) in (Union, types.UnionType):  # an optional tagged union
                members.extend(_strip(b) for b in typing.get_args(a))
            elif a is not type(None):
                members.append(a)
        members = [m for m in members if m is not type(None)]
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
