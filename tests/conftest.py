"""Shared test helpers."""

from __future__ import annotations

from typing import Any

import pytest

import simulator


def run(spec: dict[str, Any], seed: int = 1, **overrides: Any) -> simulator.Results:
    """Validate a scenario given as a dict and run it once."""
    return simulator.simulate(simulator.parse_scenario({**spec, **overrides}), seed=seed)


@pytest.fixture
def simulate_dict() -> Any:
    """The :func:`run` helper as a fixture."""
    return run
