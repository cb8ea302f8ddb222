"""Exceptions for bugs and bad scenarios.

Modelled failures (a timeout, a rejection) are never exceptions: they are values in the results.
These exceptions are for input the simulator cannot run and for internal errors.
"""

from __future__ import annotations

from dataclasses import dataclass


class SimulatorError(Exception):
    """Base class of every error the simulator raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario.

    Parameters
    ----------
    message
        What was expected, in words a user understands.
    path
        Key path inside the scenario, dotted (``components.api.workers``); empty for the file.
    line
        1-based line in the file, or None when unknown (for example a ``--set`` override).
    """

    message: str
    path: str = ""
    line: int | None = None


class ScenarioError(SimulatorError):
    """A scenario that cannot be run: unreadable, malformed, invalid or inconsistent.

    Carries the file and every problem found, each with its line and key path, so that the CLI
    can print ``file:line: key.path: message`` lines and exit with code 2.
    """

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        """Return one ``file:line: path: message`` line per problem."""
        lines = []
        for p in self.problems:
            where = self.source if p.line is None else f"{self.source}:{p.line}"
            lines.append(f"{where}: {p.path}: {p.message}" if p.path else f"{where}: {p.message}")
        return "\n".join(lines)


class ScenarioWarning(UserWarning):
    """A scenario that runs, but with something in it that probably does not do what its
    author meant (a fault that starts after the arrivals end). ``str()`` is the located line
    ``file:line: path: message``; the CLI prints it prefixed with ``warning:``.

    Parameters
    ----------
    source
        The file (or description) the scenario came from.
    problem
        What, and where.
    """

    def __init__(self, source: str, problem: Problem) -> None:
        self.source = source
        self.problem = problem
        super().__init__(ScenarioError(source, [problem]).render())


class TopologyError(SimulatorError):
    """A topology that cannot be built from an otherwise valid scenario (an internal mismatch)."""
