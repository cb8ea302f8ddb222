"""Experiments: replications, comparisons, sweeps and capacity searches over executors.

Every experiment turns a scenario into many runs (:class:`~simulator.experiment.runs.RunSpec`:
scenario, seed, replication), sends them to an executor (processes on all cores by default,
serial, or Dask), and gathers their summaries into tidy tables tagged with ``seed``,
``replication`` and the variant or swept parameters. Statistics come from
:mod:`simulator.analysis.stats`.

>>> from simulator.experiment import compare, vary
>>> cmp = compare("scenarios/lb_strategies.yaml",
...               vary({"components.lb.strategy": ["least_connections", "power_of_two"]}))
>>> cmp.table(["p99"])  # doctest: +SKIP
"""

from simulator.experiment.cache import RunCache
from simulator.experiment.capacity import Capacity, Condition, capacity, parse_slo
from simulator.experiment.compare import Comparison, compare, vary
from simulator.experiment.executors import (
    EXECUTORS,
    DaskExecutor,
    Executor,
    ExecutorError,
    ProcessExecutor,
    SerialExecutor,
    make_executor,
)
from simulator.experiment.options import ExperimentOptions
from simulator.experiment.replicate import DEFAULT_METRICS, Replications, replicate
from simulator.experiment.runs import RunSpec, Source, code_version, execute
from simulator.experiment.sweep import Sweep, sweep

__all__ = [
    "DEFAULT_METRICS",
    "EXECUTORS",
    "Capacity",
    "Comparison",
    "Condition",
    "DaskExecutor",
    "Executor",
    "ExecutorError",
    "ExperimentOptions",
    "ProcessExecutor",
    "Replications",
    "RunCache",
    "RunSpec",
    "SerialExecutor",
    "Source",
    "Sweep",
    "capacity",
    "code_version",
    "compare",
    "execute",
    "make_executor",
    "parse_slo",
    "replicate",
    "sweep",
    "vary",
]
