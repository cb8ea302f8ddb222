"""Scenarios: the YAML format, validated once at the edge into typed models.

``load_scenario(path, overrides)`` reads a file safely, applies ``--set``-style overrides,
validates everything with pydantic (unknown keys are errors), checks references and cycles
between components, and raises :class:`~simulator.errors.ScenarioError` naming the file, line
and key path of every problem. Component parameters are validated by each kind's own ``Params``
model, found through the registry.
"""

from simulator.scenario.load import load_scenario, loads_scenario, parse_scenario
from simulator.scenario.model import Metrics, Scenario, json_schema, scenario_model
from simulator.scenario.overrides import apply_overrides

__all__ = ["Metrics", "Scenario", "apply_overrides", "json_schema", "load_scenario",
           "loads_scenario", "parse_scenario", "scenario_model"]
