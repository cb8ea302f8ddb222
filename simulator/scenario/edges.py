"""Checks on every call edge of a scenario: their network links.

The edges are found by walking the validated models (workloads and every kind's parameters)
for :class:`~simulator.calls.CallSpec` values, so no kind is named and a new kind's calls are
checked as soon as it holds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from simulator.calls import CallSpec
from simulator.components.params import KeyPath
from simulator.distributions import _Dist
from simulator.errors import Problem
from simulator.links import link_problems
from simulator.scenario.model import Scenario
from simulator.scenario.problems import _is_overridden
from simulator.yamlfile import SourceMap


def calls_in(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, CallSpec]]:
    """Yield (key path, call) of every call held in ``value`` (written at ``path``)."""
    if isinstance(value, CallSpec):
        yield path, value
    elif isinstance(value, _Dist):
        return
    elif isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            yield from calls_in(getattr(value, name), (*path, info.alias or name))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from calls_in(item, (*path, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from calls_in(item, (*path, key))


def scenario_calls(scenario: Scenario) -> Iterator[tuple[KeyPath, CallSpec]]:
    """Every call edge of the scenario with its key path."""
    for wname, w in scenario.workloads.items():
        yield from calls_in(w.target, ("workloads", wname, "target"))
    for cname, params in scenario.components.items():
        yield from calls_in(params, ("components", cname))


def check_edges(scenario: Scenario, smap: SourceMap, overridden: set[KeyPath]
                ) -> Iterator[Problem]:
    """Unknown network profiles, and lossy edges without a timeout."""
    network = scenario.network
    if network is not None and network.default is not None and (
            problem := network.unknown(network.default)):
        at: KeyPath = ("network", "default")
        yield Problem(problem, "network.default",
                      None if _is_overridden(at, overridden) else smap.line_of(at))
        return
    for path, call in scenario_calls(scenario):
        for rel, message in link_problems(call.network, call.timeout is not None,
                                          scenario.network):
            where = (*path, *rel)
            line = None if _is_overridden(where, overridden) else smap.line_of(where)
            yield Problem(message, ".".join(str(p) for p in where), line)
