"""Request tasks: a generator driven by event callbacks, without a SimPy Process.

A :class:`simpy.Process` costs two events of its own: the ``Initialize`` event that starts it
and the event of its end, scheduled and processed even when nobody waits for it. Each open-loop
request is a generator nobody waits for (the client records its outcome itself), so a
:class:`Task` runs it from the arrival instant, synchronously, and resumes it from the
callbacks of the events it yields, as ``Process._resume`` does, without either event: 2 SimPy
events fewer per request. :class:`Join` runs the branches of a parallel step the same way and
triggers one event when the last branch ends (instead of a Process per branch and an
``AllOf``: 4 events fewer for two branches); :func:`started` gives a call raced against a timer
an end event without the ``Initialize`` one.

Semantics kept: a failed event the generator waits for is thrown into it (as a copy, as SimPy
does); an exception the generator does not handle propagates out of ``Environment.run`` (a
simulator bug, as with a failed Process nobody waits for). Not supported, because no request
needs them: interrupting the task, waiting for its end, ``env.active_process``. The resuming
itself reads SimPy internals, so it lives in :class:`simulator.kernel.Driver`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from simpy import Environment, Event

from simulator.kernel import Driver


class Task(Driver):
    """Drives one generator of events; started at once by the constructor.

    Parameters
    ----------
    generator
        What to run.
    on_end
        Called with the generator's return value when it ends.
    """

    __slots__ = ()


class Join:
    """Runs generators concurrently; :attr:`event` succeeds, with the list of their return
    values in order, when the last one ends.

    The generators start at once, in order, each running until its first wait.
    """

    __slots__ = ("_left", "event", "values")

    def __init__(self, env: Environment, generators: Sequence[Generator[Event, Any, Any]]
                 ) -> None:
        self.event = Event(env)
        self.values: list[Any] = [None] * len(generators)
        self._left = len(generators)
        if not generators:
            self.event.succeed(self.values)
        for i, gen in enumerate(generators):
            Task(gen, self._ender(i))

    def _ender(self, i: int) -> Callable[[Any], None]:
        def end(value: Any) -> None:
            self.values[i] = value
            self._left -= 1
            if not self._left:
                self.event.succeed(self.values)

        return end


def started(env: Environment, generator: Generator[Event, Any, Any]) -> Event:
    """Start ``generator`` now; return an event that succeeds with its return value.

    Like ``env.process(generator)`` for a caller that only waits for the end (``AnyOf`` with
    a timer), without the ``Initialize`` event: the generator runs until its first wait at once.
    """
    end = Event(env)
    Task(generator, end.succeed)
    return end
