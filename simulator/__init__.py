"""simulator: a discrete-event simulator of distributed-system architectures.

Describe a system in a YAML scenario, run it, and read latency, throughput and failure tables::

    import simulator
    scenario = simulator.load_scenario("scenarios/quickstart.yaml")
    results = simulator.simulate(scenario, seed=1)
    results.summary()
"""

from simulator.engine import simulate
from simulator.errors import ScenarioError, SimulatorError, TopologyError
from simulator.messages import Status
from simulator.registry import kinds, register
from simulator.results import Results
from simulator.scenario import Scenario, json_schema, load_scenario, loads_scenario, parse_scenario

__all__ = [
    "Results",
    "Scenario",
    "ScenarioError",
    "SimulatorError",
    "Status",
    "TopologyError",
    "json_schema",
    "kinds",
    "load_scenario",
    "loads_scenario",
    "parse_scenario",
    "register",
    "simulate",
]

__version__ = "0.1.0"
