"""Shared test helpers."""

from __future__ import annotations

from typing import Any

import pytest

import simulator


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that read the CLI's output look for whole sentences; the CLI fits its text to the
    terminal (simulator/analysis/terminal.py), so give it a wide one (child processes inherit
    it). tests/test_terminal.py sets its own width to check the fitting."""
    monkeypatch.setenv("COLUMNS", "400")


def run(spec: dict[str, Any], seed: int = 1, **overrides: Any) -> simulator.Results:
    """Validate a scenario given as a dict and run it once."""
    return simulator.simulate(simulator.parse_scenario({**spec, **overrides}), seed=seed)


@pytest.fixture
def simulate_dict() -> Any:
    """The :func:`run` helper as a fixture."""
    return run
