"""SimPy events per request, pinned: the engine's cost per request cannot creep up unnoticed.

Events are counted as ``make bench`` counts them (``benchmarks/run.py:counting_steps`` wraps
``simpy.core.Environment.step``) on short runs of the benchmark scenarios (M/M/4, and the
balancer -> service -> local LRU cache -> sharded database path). For a fixed scenario and
seed the count is deterministic, so it is pinned exactly.

Updating: an engine change that deliberately adds or removes events (a new timer per request,
a Process instead of a Task, ...) changes these counts. Run this file, check that the new
count is the one the change intends (the M/M/c identity below says where each event goes),
put the new numbers in ``PINNED`` and say why in the commit message, with the events per
request before and after (``make bench`` prints them as events/req).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import simulator

ROOT = Path(__file__).resolve().parents[1]

#: scenario -> (overrides, SimPy events, requests generated), seed 1
PINNED = {
    "mmc": (["duration=1s"], 13565, 5560),
    "cachedb": (["duration=0.5s"], 27815, 8014),
}


def bench_run() -> ModuleType:
    module = sys.modules.get("bench_run")
    if module is None:
        spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return module


def count(name: str, overrides: list[str]) -> tuple[int, simulator.Results]:
    scenario = simulator.load_scenario(ROOT / "benchmarks" / "scenarios" / f"{name}.yaml",
                                       overrides)
    with bench_run().counting_steps() as events:
        results = simulator.simulate(scenario, seed=1)
    return events[0], results


@pytest.mark.parametrize("name", sorted(PINNED))
def test_events_per_request_are_pinned(name: str) -> None:
    overrides, events, requests = PINNED[name]
    counted, results = count(name, overrides)
    assert (counted, len(results.requests)) == (events, requests)


def test_an_mmc_request_costs_two_events_plus_one_if_it_waits() -> None:
    """Arrival timer and service timer per request, a wake-up event only for those that queue;
    the rest is the run's fixed cost (metrics sampler, end of run)."""
    counted, results = count("mmc", [*PINNED["mmc"][0], "metrics.spans=true"])
    assert counted == PINNED["mmc"][1]  # spans are rows, not events
    spans = results.spans
    waited = int((spans["start"] > spans["arrival"]).sum())
    fixed = counted - 2 * len(results.requests) - waited
    assert 0 <= fixed <= 5
