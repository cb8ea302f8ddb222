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

Names are imported on first use (PEP 562), as in :mod:`simulator`: the ``simulator`` command
adds the experiment subcommands to its parser (``simulator.experiment.cli``) on every start,
and that must not load pandas and every experiment module for ``simulator validate``.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Where each public name lives.
_PUBLIC = {
    "RunCache": "cache",
    "Capacity": "capacity",
    "Condition": "capacity",
    "capacity": "capacity",
    "parse_slo": "capacity",
    "Comparison": "compare",
    "compare": "compare",
    "vary": "compare",
    "EXECUTORS": "executors",
    "DaskExecutor": "executors",
    "Executor": "executors",
    "ExecutorError": "executors",
    "ProcessExecutor": "executors",
    "SerialExecutor": "executors",
    "make_executor": "executors",
    "ExperimentOptions": "options",
    "DEFAULT_METRICS": "replicate",
    "Replications": "replicate",
    "replicate": "replicate",
    "RunSpec": "runs",
    "Source": "runs",
    "code_version": "runs",
    "execute": "runs",
    "Sweep": "sweep",
    "sweep": "sweep",
}

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


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:  # a submodule (``simulator.experiment.runs``) reached as an attribute
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


class _Package(types.ModuleType):
    """This package, whose functions win over their submodules of the same name.

    The import system binds a submodule to its package's attribute when it first imports it;
    four submodules are named after the function they export (``compare``, ``replicate``,
    ``sweep``, ``capacity``), and ``simulator.experiment.compare`` must stay the function, as
    it was when this file imported every submodule eagerly.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _PUBLIC.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
