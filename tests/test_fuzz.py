"""Validation is the contract: a bounded run of the scenario fuzzer (``tests/fuzz_scenarios.py``).

Every mutant of a shipped scenario is either refused with a ScenarioError or runs (shortened)
without an exception and within the time limit. ``make fuzz`` runs the same check on 10,000
mutants; this runs a few hundred, so that the suite stays fast.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import fuzz_scenarios as fz

BASES = fz.bases()
POOL = fz._pool(BASES)
#: Mutants per suite run: most are refused in milliseconds, the ones that run take about a
#: second with their tables, so this stays well under a minute on one core.
EXAMPLES = 60


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_every_mutant_is_refused_cleanly_or_runs(rng: random.Random) -> None:
    mutant = fz.make_mutant(rng, BASES, POOL)
    outcome = fz.check(mutant)
    assert outcome.status in ("refused", "ran", "too_big"), (
        f"{outcome.signature}\n{outcome.detail}\n{mutant.reproducer()}")


@pytest.mark.parametrize("name", [n for n, _ in BASES])
def test_every_shipped_scenario_runs_shortened(name: str) -> None:
    """The fuzzer's starting points are valid, and shortening keeps them valid and small."""
    import yaml

    data = dict(BASES)[name]
    outcome = fz.check(fz.Mutant(name, yaml.safe_dump(data, sort_keys=False)))
    assert outcome.status == "ran", outcome.detail


def test_the_mutations_reach_every_kind_of_outcome() -> None:
    """A fixed sample of mutants is neither all refused nor all accepted: the fuzzer explores
    both sides of the contract (a fuzzer whose every mutant were refused would test nothing).
    About a fifth of the mutants are accepted (the long runs of make fuzz: 20%), so 60 give
    about 12; at least 5 and at most 40 is far from either end."""
    import warnings

    import simulator

    rng = random.Random(7)
    accepted = 0
    for _ in range(60):
        mutant = fz.make_mutant(rng, BASES, POOL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", simulator.ScenarioWarning)
            try:
                simulator.loads_scenario(mutant.text, mutant.overrides)
            except simulator.ScenarioError:
                continue
        accepted += 1
    assert 5 <= accepted <= 40


def test_a_crash_in_a_run_is_reported_as_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.engine

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(simulator.engine, "simulate", broken)
    name, data = BASES[0]
    import yaml

    outcome = fz.check(fz.Mutant(name, yaml.safe_dump(data, sort_keys=False)))
    assert outcome.status == "traceback"
    assert "ZeroDivisionError" in outcome.signature and "planted" in outcome.detail


def test_a_run_past_the_time_limit_is_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.engine

    def slow(*args: Any, **kwargs: Any) -> None:
        end = time.monotonic() + 60
        while time.monotonic() < end:  # busy, as a runaway simulation would be
            pass

    monkeypatch.setattr(simulator.engine, "simulate", slow)
    name, data = BASES[0]
    import yaml

    t0 = time.monotonic()
    outcome = fz.check(fz.Mutant(name, yaml.safe_dump(data, sort_keys=False)),
                       time_limit_s=0.3)
    assert outcome.status == "hang"
    assert time.monotonic() - t0 < 30  # stopped by the limit, not by the end of the loop
