"""simulator: a discrete-event simulator of distributed-system architectures.

Describe a system in a YAML scenario, run it, and read latency, throughput and failure tables::

    import simulator
    scenario = simulator.load_scenario("scenarios/quickstart.yaml")
    results = simulator.simulate(scenario, seed=1)
    results.summary()

Names are imported on first use (PEP 562), so ``import simulator`` (or ``simulator.units``,
``simulator.scenario``) loads neither SimPy nor pandas until a run needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.analysis.diagram import diagram
    from simulator.engine import simulate
    from simulator.errors import ScenarioError, ScenarioWarning, SimulatorError, TopologyError
    from simulator.kind import Kind
    from simulator.messages import Status
    from simulator.registry import kinds, register
    from simulator.results import Results
    from simulator.scenario import (
        Scenario,
        json_schema,
        load_scenario,
        loads_scenario,
        parse_scenario,
    )

#: Where each public name lives.
_PUBLIC = {
    "Kind": "simulator.kind",
    "Results": "simulator.results",
    "Scenario": "simulator.scenario",
    "ScenarioError": "simulator.errors",
    "ScenarioWarning": "simulator.errors",
    "SimulatorError": "simulator.errors",
    "Status": "simulator.messages",
    "TopologyError": "simulator.errors",
    "diagram": "simulator.analysis.diagram",
    "json_schema": "simulator.scenario",
    "kinds": "simulator.registry",
    "load_scenario": "simulator.scenario",
    "loads_scenario": "simulator.scenario",
    "parse_scenario": "simulator.scenario",
    "register": "simulator.registry",
    "simulate": "simulator.engine",
}

__all__ = [
    "Kind",
    "Results",
    "Scenario",
    "ScenarioError",
    "ScenarioWarning",
    "SimulatorError",
    "Status",
    "TopologyError",
    "diagram",
    "json_schema",
    "kinds",
    "load_scenario",
    "loads_scenario",
    "parse_scenario",
    "register",
    "simulate",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:  # a subpackage (``simulator.experiment``) reached as an attribute
        try:
            return importlib.import_module(f"simulator.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module 'simulator' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
