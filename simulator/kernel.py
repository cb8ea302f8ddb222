"""The SimPy internals the simulator relies on, in one place.

SimPy's public API puts a property call, a check or a Process in the way of the few operations
a request does many times. The simulator reads a few private attributes of SimPy 4.1 instead;
they are the same in every 4.1 release (pyproject pins ``simpy>=4.1,<4.2``), :func:`check`
verifies them, and the test suite runs it, so moving to a new SimPy starts here.

What is relied on, and why:

``Environment._now``
    The clock, a plain float attribute. ``Environment.now`` is a property returning it, a
    function call per read; components read ``env._now`` directly on their hot paths (a hop
    reads the clock at arrival, start and end). :func:`now` is the same read for other code.
``Event._ok``, ``Event._value``
    A processed event's outcome and value. ``Event.ok`` and ``Event.value`` are properties
    that first check that the event was triggered, which a callback of the event knows
    already. :class:`Driver` reads them for every event a task waits for, as
    ``Process._resume`` does.
``Event.callbacks`` (public)
    The callbacks run when the event is processed; ``None`` once it has been. Appending to it
    is how a task (and a component's timer) waits for an event without a Process.

``Environment._queue``, ``Environment._eid``
    The event heap and the counter of scheduled events, as ``Environment.schedule`` pushes
    ``(time, priority, id, event)``; :class:`Timer` pushes its entry itself, one Python call
    fewer per timer than ``Timeout`` (whose ``__init__`` calls ``schedule``).

Failures a task handles are marked with the public ``Event.defused``, so that
``Environment.step`` does not raise them again.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from heapq import heappush
from importlib.metadata import version
from itertools import count
from typing import Any

import simpy
from simpy import Environment, Event, Timeout
from simpy.events import NORMAL

#: The SimPy releases these internals are checked against (``simpy>=4.1,<4.2``).
SUPPORTED = ((4, 1), (4, 2))


def now(env: Environment) -> float:
    """The simulated time of ``env``, seconds (``env.now`` without the property call)."""
    return env._now


def check() -> None:
    """Raise RuntimeError unless the installed SimPy has the internals this module names."""
    found = tuple(int(p) for p in version("simpy").split(".")[:2])
    low, high = SUPPORTED
    if not low <= found < high:
        raise RuntimeError(f"simpy {version('simpy')} is outside the tested range "
                           f">={low[0]}.{low[1]},<{high[0]}.{high[1]} (simulator.kernel)")
    env = simpy.Environment(initial_time=2.5)
    ok, failed = env.event().succeed("v"), env.event()
    failed.fail(ValueError("x"))
    failed.defused = True
    env.run()
    problems = []
    if getattr(env, "_now", None) != 2.5:
        problems.append("Environment._now")
    if getattr(ok, "_ok", None) is not True or getattr(ok, "_value", None) != "v":
        problems.append("Event._ok / Event._value")
    if ok.callbacks is not None:
        problems.append("Event.callbacks is None once processed")
    if not isinstance(getattr(env, "_eid", None), count) or not isinstance(
            getattr(env, "_queue", None), list):
        problems.append("Environment._queue / Environment._eid")
    if problems:
        raise RuntimeError("simpy " + version("simpy") + " changed: " + ", ".join(problems))


class Timer(Timeout):
    """``Timeout(env, delay)`` without its call overhead: the same attributes and the same
    heap entry, pushed here (what ``Environment.schedule`` does), so the run's event order
    is the same; for the timers of a request's hops, created once or more per request."""

    def __init__(self, env: Environment, delay: float) -> None:
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        self.env = env
        self.callbacks = []
        self._value = None
        self._delay = delay
        self._ok = True
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), self))


class Driver:
    """Runs a generator of SimPy events from the callbacks of the events it yields, as
    ``Process._resume`` does, without a Process; started at once by the constructor.

    A failed event is thrown into the generator as a copy (as SimPy does); an exception the
    generator does not handle propagates out of ``Environment.run``.

    Parameters
    ----------
    generator
        What to run.
    on_end
        Called with the generator's return value when it ends.
    """

    __slots__ = ("_gen", "_on_end")

    def __init__(self, generator: Generator[Event, Any, Any],
                 on_end: Callable[[Any], object] | None = None) -> None:
        self._gen = generator
        self._on_end = on_end
        self._advance(generator.send, None)

    def _resume(self, event: Event) -> None:
        if not event._ok:
            self._advance(self._gen.throw, _handled(event))
            return
        # the common resume, _advance's loop inlined: one Python call fewer per wait
        try:
            nxt = self._gen.send(event._value)
        except StopIteration as stop:
            if self._on_end is not None:
                self._on_end(stop.value)
            return
        callbacks = nxt.callbacks
        if callbacks is not None:
            callbacks.append(self._resume)
        elif nxt._ok:
            self._advance(self._gen.send, nxt._value)
        else:
            self._advance(self._gen.throw, _handled(nxt))

    def _advance(self, step: Any, value: Any) -> None:
        gen = self._gen
        while True:
            try:
                event = step(value)
            except StopIteration as stop:
                if self._on_end is not None:
                    self._on_end(stop.value)
                return
            callbacks = event.callbacks
            if callbacks is not None:  # not yet processed: resume when it is
                callbacks.append(self._resume)
                return
            # already processed: go on at once with its outcome, as Process does
            if event._ok:
                step, value = gen.send, event._value
            else:
                step, value = gen.throw, _handled(event)


class FirstOf(Event):
    """Processed when the first of ``events`` is, with value None (or its failure): SimPy's
    ``AnyOf`` without the condition's bookkeeping, for a race run on a hot path. (No module
    uses it now: its one user, the service's hops racing their instance's crash, registers
    what it waits on instead, see ``components.service.service.cut_short``;
    ``tests/test_tasks.py`` keeps it equivalent to ``AnyOf``.)

    It is triggered exactly when ``AnyOf`` would be (from the first event's callbacks, at
    normal priority), and its own first callback, as ``AnyOf``'s, takes its callback off the
    events that have not fired, so a run's event order and tables are the same as with
    ``AnyOf``; what it saves is the ``ConditionValue`` and the counting of a Condition, about
    a microsecond a hop. Its value is None: read the winning event's own value.
    """

    __slots__ = ("_events",)

    def __init__(self, env: Environment, events: tuple[Event, ...]) -> None:
        super().__init__(env)
        self._events = events
        for event in events:
            if event.callbacks is None:  # processed already: it is the first
                self._first(event)
            else:
                event.callbacks.append(self._first)
        self.callbacks.append(self._forget)

    def _first(self, event: Event) -> None:
        if self._value is not simpy.events.PENDING:
            return
        if event._ok:
            self.succeed()
        else:
            event.defused = True
            self.fail(event._value)

    def _forget(self, _event: Event) -> None:
        first = self._first
        for event in self._events:
            callbacks = event.callbacks
            if callbacks and first in callbacks:
                callbacks.remove(first)


def _handled(event: Event) -> BaseException:
    """Mark a failed event handled; return the copy of its exception to throw in (the
    original as its cause)."""
    event.defused = True
    cause = event._value
    exc = type(cause)(*cause.args)
    exc.__cause__ = cause
    return exc
