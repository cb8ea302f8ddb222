"""Binding a call edge: the target's handler wrapped in the edge's resilience policies.

``bind_call`` returns a function ``(request, op) -> handler generator``. Without policies it is
the target's own ``handle`` (no extra generator frame); each policy adds one wrapper. A timeout
or a hedge runs the attempt in its own Process, because there the concurrency is real: the
caller stops waiting while the callee goes on.

Retries and hedges with ``avoid_previous_hosts`` (the default) on an edge to a balancer share
one set of the backends the call's attempts and copies used: before each attempt (on each
hedged copy) the wrapper sets ``request.avoid_hosts = (balancer group, that set)``, and the
balancer picks among the other backends, records its pick in the set and clears the
attribute. Edges without these policies, or to anything but a balancer, never set it.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Callable, Generator
from typing import Any, cast

import numpy as np
from simpy import AnyOf, Event, Timeout

from simulator.breaker import STATE_CODES, CircuitBreaker
from simulator.calls import CallSpec
from simulator.components.base import BuildContext, Handler, Target
from simulator.components.links import linked
from simulator.links import resolve_link
from simulator.messages import (
    ERROR,
    FALLBACK,
    OK,
    REJECTED,
    SHORT_CIRCUITED,
    TIMEOUT,
    Request,
    Status,
)
from simulator.policies import (
    BreakerPolicy,
    BulkheadPolicy,
    FallbackPolicy,
    HedgePolicy,
    RateLimitPolicy,
    RetryBudget,
    RetryPolicy,
)
from simulator.ratelimit import GlobalLimiter
from simulator.rng import batched
from simulator.tasks import started
from simulator.throttling import AdaptiveThrottle, adaptive_throttle

Bound = Callable[[Request, str], Handler]


def bind_call(
    call: CallSpec, target: Target, ctx: BuildContext, owner: tuple[str, str],
    count_attempts: bool = False, resolve: Callable[[str], Target] | None = None,
    from_request: bool = False,
) -> Bound:
    """Return the handler of one call edge.

    Parameters
    ----------
    call
        The edge's specification.
    target
        What it calls.
    ctx
        Build context (environment, streams, recorder).
    owner
        (component or workload, instance) making the call; policy state is per owner instance.
        A target with a ``for_caller(instance)`` method is replaced by what it returns for the
        calling instance.
    count_attempts
        Whether retries on this edge count in ``request.attempts`` (the client's edge).
    resolve
        Resolves other names the policies use (a fallback's queue).
    from_request
        The call starts in the request's region (a workload's edge) rather than in the
        calling instance's (``ctx.placement[owner[1]]``). With regions, the edge pays the link
        latency from there to the callee instance's region, innermost (each attempt pays it);
        see :mod:`simulator.components.network`.
    """
    route = getattr(target, "for_caller", None)
    if route is not None:  # per-instance targets (local caches): instance i calls instance i
        target = route(owner[1])
    scope = f"{owner[1]}->{target.name}"
    handle: Bound = target.handle
    if ctx.regions is not None:
        src = None if from_request else ctx.placement.get(owner[1])
        handle = ctx.regions.reach(target, src, handle)
    link = resolve_link(call.network, ctx.network)
    if link is not None:  # the edge's own link, outside a region link: both are paid
        n = ctx.linked_edges.get(scope, 0)
        ctx.linked_edges[scope] = n + 1
        handle = linked(handle, link, ctx, scope if n == 0 else f"{scope}#{n}")
    fixed_op = call.op
    bound: Bound = handle if fixed_op is None else (lambda req, op: handle(req, fixed_op))
    pair = frozenset((owner[0], target.name))
    if pair in ctx.partitionable:
        bound = _partition(bound, pair, ctx)
    hosts = _host_picker(target)
    if call.hedge is not None:
        bound = _hedge(bound, call.hedge, ctx, scope,
                       hosts if call.hedge.avoid_previous_hosts else None, call.timeout)
    if call.timeout is not None:
        bound = _timeout(bound, call.timeout, ctx)
    if call.bulkhead is not None:
        bound = _bulkhead(bound, call.bulkhead, ctx)
    if call.rate_limit is not None:
        bound = _rate_limit(bound, call.rate_limit, ctx, owner, call, target.name)
    if call.adaptive_throttle is not None:  # per attempt: retries are requests too
        throttle = AdaptiveThrottle(call.adaptive_throttle,
                                    ctx.streams.batched(scope, "adaptive_throttle",
                                                        lambda rng, k: rng.random(k)))
        env = ctx.env
        bound = adaptive_throttle(bound, throttle, lambda: env._now)
    if call.breaker is not None:
        bound = _breaker(bound, call.breaker, ctx, owner, target.name)
    if call.retry is not None:
        bound = _retry(bound, call.retry, ctx, scope, count_attempts,
                       hosts if call.retry.avoid_previous_hosts else None)
    if call.fallback is not None:
        queue = source = None
        if call.fallback.queue is not None or call.fallback.cache is not None:
            if resolve is None:
                raise ValueError("a fallback queue or cache needs a resolver")
            if call.fallback.queue is not None:
                queue = resolve(call.fallback.queue)
            if call.fallback.cache is not None:
                source = resolve(call.fallback.cache)
                local = getattr(source, "for_caller", None)
                if local is not None:  # a local cache: the calling instance's own
                    source = local(owner[1])
                if not hasattr(source, "peek"):
                    raise ValueError(f"fallback cache {call.fallback.cache!r} is not a cache")
        bound = _fallback(bound, call.fallback, ctx, queue, source)
    return bound


def _host_picker(target: Target) -> str | None:
    """The group of ``target`` when it or its instances pick a backend per request (a
    replicated component's random spread, balancers: ``picks_hosts``), else None: only they
    can avoid the hosts a call already used."""
    if getattr(target, "picks_hosts", False):
        return str(target.name)
    instances = target.instances
    if instances and all(getattr(i, "picks_hosts", False) for i in instances):
        return instances[0].group
    return None


def _partition(inner: Bound, pair: frozenset[str], ctx: BuildContext) -> Bound:
    """Each attempt crossing a partitioned link fails at once, or hangs if it is a black hole."""
    env = ctx.env
    partitioned = ctx.partitioned

    def call(req: Request, op: str) -> Handler:
        black_hole = partitioned.get(pair)
        if black_hole is None:
            return (yield from inner(req, op))
        if black_hole:
            yield Event(env)  # never answered
        return ERROR

    return call


def _timeout(inner: Bound, timeout: float, ctx: BuildContext) -> Bound:
    env = ctx.env

    def call(req: Request, op: str) -> Handler:
        timer = Timeout(env, timeout)  # before the attempt's own events, as with a Process
        attempt = started(env, inner(req, op))
        yield AnyOf(env, (attempt, timer))
        if attempt.triggered:
            return cast(int, attempt.value)
        return TIMEOUT

    return call


def with_deadline(inner: Bound, deadline: float, ctx: BuildContext) -> Bound:
    """``inner`` bounded by an overall ``deadline`` (seconds, from the call): the caller gets
    ``timeout`` when it passes, whatever retries were still to come (a gRPC deadline; the
    request carries the same instant downstream in ``Request.deadline``)."""
    return _timeout(inner, deadline, ctx)


def _hedge(inner: Bound, policy: HedgePolicy, ctx: BuildContext, scope: str,
           hosts: str | None, timeout: float | None = None) -> Bound:
    """Hedge ``inner``; with ``hosts`` (the balancer group called), every copy carries the
    call's set of used backends, the retry's when a retry avoiding them runs this attempt.
    With the edge's ``timeout`` (which bounds the hedged attempt), no copy is sent once it has
    expired: the caller has given up and nobody would wait for the reply."""
    env = ctx.env
    observed: list[float] = []
    cache = {"n": -1, "delay": math.inf}

    def delay() -> float:
        if policy.delay is not None:
            return policy.delay
        n = len(observed)
        if n < policy.min_samples:
            return math.inf
        if n >= 2 * cache["n"] or cache["n"] < 0:  # re-estimate as the sample doubles
            cache["delay"] = float(np.percentile(np.asarray(observed), float(policy.percentile
                                                                              or 50.0)))
            cache["n"] = n
        return cache["delay"]

    def call(req: Request, op: str) -> Handler:
        t0 = env._now
        avoid: tuple[str, set[int]] | None = None
        if hosts is not None:
            avoid = req.avoid_hosts  # the retry's, when one avoiding them runs this attempt
            if avoid is None or avoid[0] != hosts:
                avoid = (hosts, set())  # this call's own
        sent = [_copy(req, avoid)]
        copies = [env.process(inner(sent[0], op))]
        wait = delay()
        while True:
            pending = [c for c in copies if not c.triggered]
            if not pending:
                break
            hedge_left = (len(copies) <= policy.max_hedges and math.isfinite(wait)
                          and (timeout is None or env._now + wait < t0 + timeout))
            # (at t0 + timeout exactly the timeout, scheduled first, has already given up)
            timer = Timeout(env, wait) if hedge_left else None
            yield AnyOf(env, pending if timer is None else [*pending, timer])
            if any(c.triggered and c.value == OK for c in copies):
                if policy.cancel:
                    for twin, c in zip(sent, copies, strict=True):
                        twin.cancelled = not c.triggered
                if policy.delay is None:
                    observed.append(env._now - t0)
                return OK
            if timer is not None and timer.triggered:
                sent.append(_copy(req, avoid))  # no success yet: hedge
                copies.append(env.process(inner(sent[-1], op)))
        return cast(int, copies[-1].value)  # every copy failed: the last failure stands

    return call


def _copy(req: Request, avoid: tuple[str, set[int]] | None) -> Request:
    """A hedged copy of ``req`` carrying the set of backends to avoid (None: balanced afresh)."""
    twin = req.copy()
    twin.avoid_hosts = avoid
    return twin


def _bulkhead(inner: Bound, policy: BulkheadPolicy, ctx: BuildContext) -> Bound:
    env = ctx.env
    state = {"in_flight": 0}
    waiting: deque[Event] = deque()

    def call(req: Request, op: str) -> Handler:
        if state["in_flight"] >= policy.max_concurrent_calls:
            if policy.max_wait <= 0:
                return REJECTED
            permit = Event(env)
            waiting.append(permit)
            yield AnyOf(env, (permit, Timeout(env, policy.max_wait)))
            if not permit.triggered:
                waiting.remove(permit)
                return REJECTED
        else:
            state["in_flight"] += 1
        try:
            status = yield from inner(req, op)
        finally:
            if waiting:
                waiting.popleft().succeed()  # hand the slot over
            else:
                state["in_flight"] -= 1
        return status

    return call


def _rate_limit(inner: Bound, policy: RateLimitPolicy, ctx: BuildContext,
                owner: tuple[str, str], call: CallSpec, target: str) -> Bound:
    """The edge's rate limit (:mod:`simulator.ratelimit`): rejected at once, or let through
    after the limiter's wait (a leaky bucket's queue, held by the caller)."""
    env = ctx.env
    if policy.algorithm == "token_bucket" and policy.scope == "instance":
        return _token_bucket(inner, float(policy.rate or 0), policy.burst, ctx)
    if policy.scope != "instance":
        # global: every calling instance of this edge (this call of this component) shares
        # one; target: every caller of the target with this same limit does
        key = (("rate_limit", owner[0], target, str(id(call))) if policy.scope == "global"
               else ("rate_limit", target, policy.model_dump_json()))
        shared = ctx.shared.get(key)
        if shared is None:
            shared = ctx.shared[key] = GlobalLimiter(policy)
        admit: Callable[[float], float | None] = functools.partial(
            shared.admit, who=f"{owner[0]}/{owner[1]}")
    else:
        admit = policy.meter().admit

    def limited(req: Request, op: str) -> Handler:
        wait = admit(env._now)
        if wait is None:
            return REJECTED
        if wait > 0:
            yield Timeout(env, wait)
        return (yield from inner(req, op))

    return limited


def _token_bucket(inner: Bound, rate: float, burst: int, ctx: BuildContext) -> Bound:
    """The per-instance token bucket, kept apart so its arithmetic (and every table of the
    scenarios that use it) stays exactly what it was."""
    env = ctx.env
    bucket = {"tokens": float(burst), "at": 0.0}

    def call(req: Request, op: str) -> Handler:
        now = env._now
        tokens = min(burst, bucket["tokens"] + (now - bucket["at"]) * rate)
        bucket["at"] = now
        if tokens < 1.0:
            bucket["tokens"] = tokens
            return REJECTED
        bucket["tokens"] = tokens - 1.0
        return (yield from inner(req, op))

    return call


def _breaker(
    inner: Bound, policy: BreakerPolicy, ctx: BuildContext, owner: tuple[str, str], target: str
) -> Bound:
    env = ctx.env
    rec = ctx.recorder
    failures = {int(getattr(Status, s.upper())) for s in policy.record_statuses}

    def note(at: float, old: str, new: str) -> None:
        rec.event(at, owner[0], owner[1], "breaker", f"{target}: {old}->{new}")

    breaker = CircuitBreaker(policy, note)
    rec.add_gauge(owner[0], owner[1], "breaker_state", target,
                  lambda: STATE_CODES[breaker.state_at(env._now)])

    def call(req: Request, op: str) -> Handler:
        t0 = env._now
        if not breaker.allow(t0):
            return SHORT_CIRCUITED
        status = yield from inner(req, op)
        breaker.record(env._now, status in failures, env._now - t0)
        return status

    return call


class _Budget:
    """Finagle's retry budget over a sliding ``ttl``."""

    def __init__(self, policy: RetryBudget) -> None:
        self.p = policy
        self.requests: deque[float] = deque()
        self.retries: deque[float] = deque()

    def deposit(self, now: float) -> None:
        self.requests.append(now)

    def withdraw(self, now: float) -> bool:
        horizon = now - self.p.ttl
        for q in (self.requests, self.retries):
            while q and q[0] <= horizon:
                q.popleft()
        allowed = self.p.min_retries_per_second * self.p.ttl + self.p.ratio * len(self.requests)
        if len(self.retries) + 1 > allowed:
            return False
        self.retries.append(now)
        return True


def _retry(
    inner: Bound, policy: RetryPolicy, ctx: BuildContext, scope: str, count_attempts: bool,
    hosts: str | None = None,
) -> Bound:
    """Retry ``inner``; with ``hosts`` (the balancer group called), each attempt carries the
    set of backends the call's earlier attempts used (``request.avoid_hosts``)."""
    env = ctx.env
    retry_on = {int(getattr(Status, s.upper())) for s in policy.retry_on}
    uniform = batched(ctx.generator(scope, "retry_jitter"), lambda rng, k: rng.random(k))
    budget = _Budget(policy.budget) if policy.budget is not None else None
    cap = policy.cap

    def sleep(attempt: int, previous: float) -> float:
        if policy.backoff == "decorrelated":
            return min(cap, policy.base + uniform() * (max(previous, policy.base) * 3
                                                       - policy.base))
        if policy.backoff == "constant":
            b = min(cap, policy.base)
        else:
            b = min(cap, policy.base * policy.multiplier ** (attempt - 1))
        if policy.jitter == "full":
            return uniform() * b
        if policy.jitter == "equal":
            return b / 2 + uniform() * b / 2
        return b

    def call(req: Request, op: str) -> Handler:
        if budget is not None:
            budget.deposit(env._now)
        attempt = 1
        previous = 0.0
        avoid: tuple[str, set[int]] | None = (hosts, set()) if hosts is not None else None
        while True:
            if avoid is None:
                status = yield from inner(req, op)
            else:
                req.avoid_hosts = avoid
                status = yield from inner(req, op)
                if req.avoid_hosts is avoid:  # the attempt never reached the balancer
                    req.avoid_hosts = None
            if status == OK or status not in retry_on or attempt >= policy.attempts:
                return status
            if budget is not None and not budget.withdraw(env._now):
                return status
            previous = sleep(attempt, previous)
            if previous > 0:
                yield Timeout(env, previous)
            attempt += 1
            if count_attempts:
                req.attempts += 1

    return call


def _fallback(inner: Bound, policy: FallbackPolicy, ctx: BuildContext,
              queue: Target | None, source: Any = None) -> Bound:
    env = ctx.env

    def call(req: Request, op: str) -> Generator[Event, Any, int]:
        status = yield from inner(req, op)
        if status == OK:
            return OK
        if source is not None:
            version = source.peek(req.key)
            if version is None:
                return status  # nothing to serve: the failure stands
            req.version = version
            if version < source.committed_version(req.key):
                req.stale = True
        if queue is not None:
            queued = yield from queue.handle(req, op)
            if queued != OK:
                return status  # the queue refused it too: the failure stands
        if policy.latency > 0:
            yield Timeout(env, policy.latency)
        return FALLBACK

    return call
