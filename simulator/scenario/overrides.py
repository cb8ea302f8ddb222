"""``--set key.path=value`` overrides, applied to the raw data before validation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simulator.components.params import KeyPath
from simulator.errors import Problem, ScenarioError
from simulator.scenario.model import scenario_model
from simulator.scenario.problems import _did_you_mean, _fields_for
from simulator.yamlfile import load_yaml_value


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
