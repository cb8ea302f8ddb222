"""Compiling a list of steps (:mod:`simulator.calls`) into the plan a component runs.

A plan is a list whose items are bound calls (run in sequence) or lists of bound calls (a
parallel fan-out, joined). Probabilistic steps compile to one bound call each:

- ``{call: x, probability: p}``: one uniform draw per visit; below ``p`` the call is made,
  else the step answers ``ok`` at once (no event).
- ``{choice: [...]}``: one uniform draw per visit picks a branch by cumulative weight; the
  branch's steps run in sequence, the first failure ending it.
- ``{reenter: x, probability: q, max_reentries: n}``: as a probabilistic call, except that a
  request already re-entering through this step ``n`` times (visits in progress) skips it.

The draws come from streams shared by the instances of a group (scope: the group; purpose:
``route:`` and the step's key path), so the n-th request routed by a step gets the n-th draw
whichever instance serves it, and the counts of re-entries are shared the same way
(``BuildContext.shared``).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Generator
from typing import Any

from simpy import Environment, Event

from simulator.calls import AnyStep, CallSpec, ChoiceSpec, MaybeSpec, ParallelSpec, ReenterSpec
from simulator.components.base import BuildContext, Handler
from simulator.messages import OK, Request
from simulator.tasks import Join

Bound = Callable[[Request, str], Handler]
Plan = list[Bound | list[Bound]]


def compile_plan(steps: list[AnyStep], bind: Callable[[CallSpec], Bound], ctx: BuildContext,
                 group: str, path: str) -> Plan:
    """Bind ``steps`` (written at key path ``path`` of component ``group``) into a plan."""
    plan: Plan = []
    for i, step in enumerate(steps):
        where = f"{path}.{i}"
        if isinstance(step, ParallelSpec):
            plan.append([bind(c) for c in step.parallel])
        elif isinstance(step, MaybeSpec):
            plan.append(_maybe(bind(step.call), step.probability,
                               ctx.shared_uniform(group, f"route:{where}")))
        elif isinstance(step, ChoiceSpec):
            branches = [sequence(compile_plan(b.steps, bind, ctx, group,
                                              f"{where}.choice.{j}.steps"), ctx.env)
                        for j, b in enumerate(step.choice)]
            total = sum(b.weight for b in step.choice)
            edges = [w / total for w in itertools.accumulate(b.weight for b in step.choice)]
            plan.append(_choice(branches, edges, ctx.shared_uniform(group, f"route:{where}")))
        elif isinstance(step, ReenterSpec):
            depth: dict[int, int] = ctx.shared.setdefault(("reenter", group, where), {})
            plan.append(_reenter(bind(step.reenter), step.probability, step.max_reentries,
                                 ctx.shared_uniform(group, f"route:{where}"), depth))
        else:
            plan.append(bind(step))
    return plan


def run_plan(env: Environment, req: Request, op: str, plan: Plan
             ) -> Generator[Event, Any, int]:
    """Run ``plan`` in sequence; the first step that fails ends it with its status."""
    for step in plan:
        if not isinstance(step, list):
            status = yield from step(req, op)
        else:  # branches run concurrently; the step ends with the slowest
            statuses: list[int] = yield Join(env, [call(req, op) for call in step]).event
            status = next((s for s in statuses if s != OK), OK)
        if status != OK:
            return status
    return OK


def sequence(plan: Plan, env: Environment) -> Bound:
    """``plan`` as one bound call."""

    def call(req: Request, op: str) -> Handler:
        return (yield from run_plan(env, req, op, plan))

    return call


def _nothing() -> Handler:
    return OK
    yield  # pragma: no cover  (a generator that ends at once)


def _maybe(inner: Bound, probability: float, uniform: Callable[[], float]) -> Bound:
    def call(req: Request, op: str) -> Handler:
        if uniform() < probability:
            return inner(req, op)
        return _nothing()

    return call


def _choice(branches: list[Bound], edges: list[float], uniform: Callable[[], float]) -> Bound:
    last = len(branches) - 1

    def call(req: Request, op: str) -> Handler:
        i = min(bisect.bisect_right(edges, uniform()), last)
        return branches[i](req, op)

    return call


def _reenter(inner: Bound, probability: float, most: int, uniform: Callable[[], float],
             depth: dict[int, int]) -> Bound:
    def call(req: Request, op: str) -> Handler:
        u = uniform()  # drawn on every visit, so the stream does not depend on the bound
        n = depth.get(req.id, 0)
        if u >= probability or n >= most:
            return OK
        depth[req.id] = n + 1
        status = yield from inner(req, op)
        if n:
            depth[req.id] = n
        else:
            del depth[req.id]
        return status

    return call
