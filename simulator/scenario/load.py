"""Loading a scenario: read the YAML safely, apply overrides, validate once, run every check,
and raise one ScenarioError listing every problem with its file, line and key path."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from simulator.components.params import KeyPath
from simulator.errors import Problem, ScenarioError, ScenarioWarning
from simulator.scenario.budget import check_budget, check_shape
from simulator.scenario.checks import (
    _check_faults,
    _check_references,
    _check_regions,
    _check_size,
    _fault_warnings,
)
from simulator.scenario.edges import check_edges
from simulator.scenario.model import Scenario, scenario_model
from simulator.scenario.overrides import apply_overrides
from simulator.scenario.problems import _problem
from simulator.scenario.ratefiles import inline_rate_files
from simulator.scenario.tracefiles import resolve_trace_files
from simulator.yamlfile import SourceMap, load_yaml_file, load_yaml_text


def load_scenario(path: str | Path, overrides: Sequence[str] = (), *,
                  force: bool = False) -> Scenario:
    """Read, override and validate a scenario file.

    Parameters
    ----------
    path
        The YAML file.
    overrides
        ``key.path=value`` strings (values are YAML), applied before validation.
    force
        Accept a scenario over the soft limits of :mod:`simulator.limits` (instances, ring
        tokens, per-key memory, table memory), knowingly; the hard ones still apply.

    Raises
    ------
    ScenarioError
        For every problem, with file, line and key path.
    """
    data, smap = load_yaml_file(path)
    return parse_scenario(data, smap, overrides, force=force)


def loads_scenario(text: str, overrides: Sequence[str] = (), source: str = "<string>", *,
                   force: bool = False) -> Scenario:
    """Validate a scenario given as YAML text; see :func:`load_scenario`."""
    data, smap = load_yaml_text(text, source)
    return parse_scenario(data, smap, overrides, force=force)


def parse_scenario(
    data: Any, smap: SourceMap | None = None, overrides: Sequence[str] = (), *,
    force: bool = False,
) -> Scenario:
    """Validate already-parsed scenario data (a dict); see :func:`load_scenario`.

    A scenario that is valid but probably not what was meant (a fault in the drain, after the
    arrivals end) gives a :class:`~simulator.errors.ScenarioWarning`."""
    smap = smap or SourceMap("<dict>")
    if not isinstance(data, dict):
        raise ScenarioError(
            smap.source,
            [Problem(f"expected a mapping of scenario keys, got {type(data).__name__}", "",
                     smap.line_of(()))],
        )
    if problems := check_shape(data, smap):  # before copying and validating what it bounds
        raise ScenarioError(smap.source, problems)
    data = copy.deepcopy(data)
    overridden = apply_overrides(data, overrides, smap.source)
    if problems := check_shape(data, smap):
        raise ScenarioError(smap.source, problems)
    if problems := inline_rate_files(data, smap) + resolve_trace_files(data, smap):
        raise ScenarioError(smap.source, problems)
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
    problems += check_edges(scenario, smap, overridden)
    if not problems:
        problems += check_budget(scenario, smap, overridden, force)
    if not problems and scenario.variants:
        problems += _check_variants(data, smap, force)
    if problems:
        raise ScenarioError(smap.source, problems)
    for warning in _fault_warnings(scenario, smap, overridden):
        warnings.warn(ScenarioWarning(smap.source, warning), stacklevel=2)
    return scenario


def _check_variants(data: dict[str, Any], smap: SourceMap, force: bool = False
                    ) -> list[Problem]:
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
            with warnings.catch_warnings():  # a variant's warnings are the scenario's
                warnings.simplefilter("ignore", ScenarioWarning)
                parse_scenario(base, SourceMap(smap.source), overrides, force=force)
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
