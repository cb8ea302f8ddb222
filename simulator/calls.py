"""Call edges: how a workload or a service calls a downstream component.

A call names its target and, optionally, the operation to ask for. A service's ``calls`` block
maps each operation to a list of steps run in sequence; a step is one call or a ``parallel``
fan-out whose latency is that of the slowest branch. Resilience policies (timeouts, retries,
breakers...) attach to these edges.
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


def _step_discriminator(value: Any) -> str:
    if isinstance(value, dict):
        return "parallel" if "parallel" in value else "call"
    return "parallel" if isinstance(value, ParallelSpec) else "call"


Step = Annotated[
    Annotated[CallSpec, Tag("call")] | Annotated[ParallelSpec, Tag("parallel")],
    Discriminator(_step_discriminator),
    BeforeValidator(_coerce_call),
]
"""One step of a service's work for an operation: a call, or ``{parallel: [a, b]}``."""


def step_references(steps: list[CallSpec | ParallelSpec], prefix: tuple[str | int, ...]
                    ) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield (key path, component name) of every component named by ``steps`` (written at key
    path ``prefix``): each call's target and its fallback's queue or cache. A call written as
    a bare name is its own step, so its target's path is the step's."""
    for i, step in enumerate(steps):
        if isinstance(step, ParallelSpec):
            for j, call in enumerate(step.parallel):
                for rel, name in call.references():
                    yield (*prefix, i, "parallel", j, *_inside(rel)), name
        else:
            for rel, name in step.references():
                yield (*prefix, i, *_inside(rel)), name


def _inside(rel: tuple[str, ...]) -> tuple[str, ...]:
    """Key path of a name inside a call written as a step (a bare name is the step itself)."""
    return () if rel == ("to",) else rel


def step_calls(step: CallSpec | ParallelSpec) -> list[CallSpec]:
    """Return the calls a step makes."""
    return list(step.parallel) if isinstance(step, ParallelSpec) else [step]
