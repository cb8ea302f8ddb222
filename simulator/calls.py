"""Call edges: how a workload or a service calls a downstream component.

A call names its target and, optionally, the operation to ask for. A service's ``calls`` block
maps each operation to a list of steps run in sequence; a step is one call, a ``parallel``
fan-out whose latency is that of the slowest branch, a call made with a probability, a
weighted ``choice`` of branches (each a list of steps), or a bounded ``reenter`` (feedback).
Resilience policies (timeouts, retries, breakers...) attach to these edges.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

from simulator.distributions import Duration
from simulator.links import EdgeLink
from simulator.policies import (
    BreakerPolicy,
    BulkheadPolicy,
    FallbackPolicy,
    HedgePolicy,
    RateLimitPolicy,
    RetryPolicy,
)
from simulator.throttling import AdaptiveThrottlePolicy

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"


def _coerce_call(value: Any) -> Any:
    if isinstance(value, str):
        return {"to": value}
    return value


class CallSpec(BaseModel):
    """One call to a downstream component, with its resilience policies.

    Parameters
    ----------
    to
        Name of the target component (a replicated component means its whole group).
    op
        Operation to request; by default the operation of the request being served.
    timeout
        Give up on one attempt after this long (status ``timeout``); the callee is not told
        and finishes its work.
    retry, breaker, hedge, rate_limit, bulkhead, fallback
        See :mod:`simulator.policies`. Each calling instance keeps its own policy state (its
        own breaker, budget, bucket, throttle), as a client library does.
    adaptive_throttle
        Client-side adaptive throttling (Google SRE book): see :mod:`simulator.throttling`.
    network
        The edge's network link: a profile name (``same_zone``...) or ``{profile, latency,
        loss}`` (see :mod:`simulator.links`); omitted: the scenario's ``network.default``.
        Each attempt pays it, innermost (a timeout covers it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    to: str = Field(pattern=NAME_PATTERN, description="Name of the target component.")
    op: str | None = Field(None, description="Operation to request (default: the caller's).")
    timeout: Duration | None = Field(None, gt=0)
    retry: RetryPolicy | None = None
    breaker: BreakerPolicy | None = None
    hedge: HedgePolicy | None = None
    rate_limit: RateLimitPolicy | None = None
    adaptive_throttle: AdaptiveThrottlePolicy | None = None
    bulkhead: BulkheadPolicy | None = None
    fallback: FallbackPolicy | None = None
    network: EdgeLink | None = None

    def references(self) -> list[tuple[tuple[str, ...], str]]:
        """(key path inside this call, component name) of every component it names."""
        refs: list[tuple[tuple[str, ...], str]] = [(("to",), self.to)]
        if self.fallback is not None and self.fallback.queue is not None:
            refs.append((("fallback", "queue"), self.fallback.queue))
        if self.fallback is not None and self.fallback.cache is not None:
            refs.append((("fallback", "cache"), self.fallback.cache))
        return refs

    @property
    def has_policies(self) -> bool:
        """Whether any policy wraps this call."""
        return any(getattr(self, f) is not None for f in POLICY_FIELDS)


POLICY_FIELDS = ("timeout", "retry", "breaker", "hedge", "rate_limit", "adaptive_throttle",
                 "bulkhead", "fallback")


Call = Annotated[CallSpec, BeforeValidator(_coerce_call)]
"""A call: ``db`` or ``{to: db, op: write}``."""


class ParallelSpec(BaseModel):
    """Calls made concurrently; the step ends when the slowest branch ends (latency = max)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    parallel: list[Call] = Field(min_length=1)


class MaybeSpec(BaseModel):
    """A call made with probability ``probability`` (else the step is skipped, status ok).

    Each visit draws once from the stream of its component group and step, so the instances of
    a group share it (as service times are shared) and variants see the same routing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    call: Call
    probability: float = Field(ge=0, le=1, description="Chance the call is made.")


class ChoiceBranch(BaseModel):
    """One branch of a weighted choice: its weight and the steps it runs (none: do nothing)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    weight: float = Field(gt=0, description="Relative weight (normalised over the branches).")
    steps: list[Step] = Field(default_factory=list)


class ChoiceSpec(BaseModel):
    """Exactly one of the branches, picked at random with probability weight / total weight;
    its steps run in sequence (the first failure ends it, as in a plain list of steps)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    choice: list[ChoiceBranch] = Field(min_length=1)


class ReenterSpec(BaseModel):
    """Feedback: with probability ``probability`` the request goes (back) to ``reenter``,
    joining its queue as a new visit, as in a Jackson network with feedback.

    This is the only step through which calls may form a cycle (a component may re-enter
    itself). Work stays bounded: a request re-enters through this step at most
    ``max_reentries`` times (counted over the requests's visits now in progress through the
    step, shared by the group's instances); after that the step is skipped. Choose it so that
    ``probability ** max_reentries`` is negligible if the geometric number of visits of the
    theory is meant.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    reenter: Call
    probability: float = Field(ge=0, lt=1, description="Chance of re-entering.")
    max_reentries: int = Field(100, ge=1, le=10_000)


_STEP_KEYS = (("parallel", "parallel"), ("choice", "choice"), ("reenter", "reenter"),
              ("call", "maybe"))
_STEP_TAGS: dict[type, str] = {ParallelSpec: "parallel", ChoiceSpec: "choice",
                               ReenterSpec: "reenter", MaybeSpec: "maybe"}


def _step_discriminator(value: Any) -> str:
    if isinstance(value, dict):
        return next((tag for key, tag in _STEP_KEYS if key in value), "call")
    return _STEP_TAGS.get(type(value), "call")


Step = Annotated[
    Annotated[CallSpec, Tag("call")] | Annotated[ParallelSpec, Tag("parallel")]
    | Annotated[MaybeSpec, Tag("maybe")] | Annotated[ChoiceSpec, Tag("choice")]
    | Annotated[ReenterSpec, Tag("reenter")],
    Discriminator(_step_discriminator),
    BeforeValidator(_coerce_call),
]
"""One step of a service's work for an operation: a call, ``{parallel: [a, b]}``,
``{call: a, probability: p}``, ``{choice: [{weight: w, steps: [...]}, ...]}`` or
``{reenter: a, probability: q}``."""

AnyStep = CallSpec | ParallelSpec | MaybeSpec | ChoiceSpec | ReenterSpec
ChoiceBranch.model_rebuild()


def step_references(steps: list[AnyStep], prefix: tuple[str | int, ...]
                    ) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield (key path, component name) of every component named by ``steps`` (written at key
    path ``prefix``): each call's target and its fallback's queue or cache. A call written as
    a bare name is its own step, so its target's path is the step's. A re-entry's paths pass
    through ``reenter`` (the reference checks let those close a cycle)."""
    for i, step in enumerate(steps):
        if isinstance(step, ParallelSpec):
            for j, call in enumerate(step.parallel):
                for rel, name in call.references():
                    yield (*prefix, i, "parallel", j, *_inside(rel)), name
        elif isinstance(step, ChoiceSpec):
            for j, branch in enumerate(step.choice):
                yield from step_references(branch.steps, (*prefix, i, "choice", j, "steps"))
        elif isinstance(step, MaybeSpec | ReenterSpec):
            key = "call" if isinstance(step, MaybeSpec) else "reenter"
            call = step.call if isinstance(step, MaybeSpec) else step.reenter
            for rel, name in call.references():
                yield (*prefix, i, key, *_inside(rel)), name
        else:
            for rel, name in step.references():
                yield (*prefix, i, *_inside(rel)), name


def _inside(rel: tuple[str, ...]) -> tuple[str, ...]:
    """Key path of a name inside a call written as a step (a bare name is the step itself)."""
    return () if rel == ("to",) else rel


def step_calls(step: AnyStep) -> list[CallSpec]:
    """Return the calls a step may make (a choice's: those of every branch)."""
    if isinstance(step, ParallelSpec):
        return list(step.parallel)
    if isinstance(step, MaybeSpec):
        return [step.call]
    if isinstance(step, ReenterSpec):
        return [step.reenter]
    if isinstance(step, ChoiceSpec):
        return [c for b in step.choice for s in b.steps for c in step_calls(s)]
    return [step]
