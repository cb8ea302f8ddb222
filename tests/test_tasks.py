"""Callback-driven tasks (``simulator.tasks``) behave as SimPy Processes do for their callers.

Each property is checked against the same generator run as a ``simpy.Process``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.tasks import Join, Task, started


def _trace(env: simpy.Environment, log: list[tuple[float, str]], name: str,
           delays: list[float]) -> Generator[simpy.Event, Any, str]:
    for d in delays:
        log.append((env.now, f"{name} waits {d}"))
        got = yield env.timeout(d, value=d)
        assert got == d
    log.append((env.now, f"{name} ends"))
    return name


def _run(use_task: bool, plans: list[list[float]]) -> list[tuple[float, str]]:
    env = simpy.Environment()
    log: list[tuple[float, str]] = []

    def arrivals() -> Generator[simpy.Event, Any, None]:
        # as Client._open: with tasks, the next arrival is scheduled before the request starts
        yield env.timeout(0.5)
        for i, plan in enumerate(plans):
            gen = _trace(env, log, f"r{i}", plan)
            last = i == len(plans) - 1
            if use_task:
                nxt = None if last else env.timeout(0.5)
                Task(gen)
            else:
                env.process(gen)
                nxt = None if last else env.timeout(0.5)
            if nxt is None:
                return
            yield nxt

    env.process(arrivals())
    env.run()
    return log


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.7]), max_size=4),
                min_size=1, max_size=6))
def test_a_task_sees_what_a_process_sees(plans: list[list[float]]) -> None:
    """Same waits, same values, same instants, and the same order, zero delays and ties
    included, when the next arrival is scheduled before the task starts (a Process starts
    only after the current step, so its first events come after the next arrival's)."""
    assert _run(True, plans) == _run(False, plans)


def test_a_failed_event_is_thrown_into_the_generator_as_a_copy() -> None:
    env = simpy.Environment()
    boom = env.event()
    caught: list[BaseException] = []

    def gen() -> Generator[simpy.Event, Any, None]:
        try:
            yield boom
        except KeyError as exc:
            caught.append(exc)
        yield env.timeout(1)

    Task(gen())
    boom.fail(KeyError("k"))
    env.run()
    assert len(caught) == 1 and caught[0] is not boom.value
    assert caught[0].__cause__ is boom.value and boom.defused
    assert env.now == 1


def test_an_already_processed_event_resumes_at_once() -> None:
    env = simpy.Environment()
    done = env.timeout(1, value="x")
    seen: list[tuple[float, object]] = []

    def late() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(2)
        seen.append((env.now, (yield done)))  # processed at 1: no wait

    Task(late())
    env.run()
    assert seen == [(2, "x")]


def test_an_unhandled_exception_stops_the_run() -> None:
    env = simpy.Environment()

    def bad() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(1)
        raise RuntimeError("bug")

    Task(bad())
    with pytest.raises(RuntimeError, match="bug"):
        env.run()


def test_join_waits_for_the_slowest_and_keeps_the_order() -> None:
    env = simpy.Environment()

    def branch(d: float, value: int) -> Generator[simpy.Event, Any, int]:
        if d:
            yield env.timeout(d)
        return value

    out: list[tuple[float, list[int]]] = []

    def parent() -> Generator[simpy.Event, Any, None]:
        values = yield Join(env, [branch(3, 1), branch(1, 2), branch(0, 3)]).event
        out.append((env.now, values))
        values = yield Join(env, [branch(0, 4), branch(0, 5)]).event  # all synchronous
        out.append((env.now, values))
        values = yield Join(env, []).event
        out.append((env.now, values))

    env.process(parent())
    env.run()
    assert out == [(3, [1, 2, 3]), (3, [4, 5]), (3, [])]


def test_started_matches_a_process_in_a_race() -> None:
    def race(use_started: bool, work: float) -> tuple[float, bool]:
        env = simpy.Environment()
        result: list[tuple[float, bool]] = []

        def attempt() -> Generator[simpy.Event, Any, str]:
            yield env.timeout(work)
            return "ok"

        def caller() -> Generator[simpy.Event, Any, None]:
            timer = env.timeout(1.0)
            call = started(env, attempt()) if use_started else env.process(attempt())
            yield simpy.AnyOf(env, (call, timer))
            result.append((env.now, call.triggered and call.value == "ok"))

        env.process(caller())
        env.run()
        return result[0]

    for work in (0.5, 1.0, 1.5):
        assert race(True, work) == race(False, work)


def test_the_simpy_internals_the_kernel_relies_on_are_there() -> None:
    from simulator import kernel

    kernel.check()  # raises, naming what changed, on a SimPy without them


@given(st.lists(st.tuples(st.floats(0, 5), st.floats(0, 5), st.booleans()), min_size=1,
                max_size=12))
def test_first_of_resumes_as_any_of_does(races: list[tuple[float, float, bool]]) -> None:
    """FirstOf in place of AnyOf: every racer resumes at the same time and in the same order,
    whether the timeout or the shared "crash" event wins (the engine relies on it for
    identical tables)."""
    from simulator.kernel import FirstOf

    def trace(race: type) -> list[tuple[float, int]]:
        env = simpy.Environment()
        crash = env.event()
        seen: list[tuple[float, int]] = []

        def racer(i: int, start: float, work: float) -> Any:
            yield env.timeout(start)
            yield race(env, (env.timeout(work), crash))
            seen.append((env.now, i))

        for i, (start, work, _) in enumerate(races):
            env.process(racer(i, start, work))
        crash_at = min(s + w for s, w, _ in races) if races[0][2] else 2.5

        def crasher() -> Any:
            yield env.timeout(crash_at)
            crash.succeed()

        env.process(crasher())
        env.run()
        return seen

    assert trace(FirstOf) == trace(simpy.AnyOf)
