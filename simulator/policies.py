"""Resilience policies on call edges, as a service mesh or a client library applies them.

Every call (a workload's ``target``, each of a service's ``calls``) may carry ``timeout``,
``retry``, ``breaker``, ``hedge``, ``rate_limit``, ``bulkhead`` and ``fallback``. Names follow
Envoy, Finagle and resilience4j where those exist. The policies wrap the call from the outside in:

    fallback( retry( breaker( adaptive_throttle( rate_limit( bulkhead( timeout( hedge( call ))))))))

(``adaptive_throttle``, client-side throttling, lives in :mod:`simulator.throttling`;
``rate_limit``'s five algorithms and its global scope in :mod:`simulator.ratelimit`.)

so a timeout bounds one attempt (Envoy's ``per_try_timeout``), every retry passes the breaker, and
a fallback answers once everything else has failed.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.distributions import Duration
from simulator.ratelimit import RateLimitPolicy as RateLimitPolicy  # re-exported
from simulator.settings import refuse_ignored

RetryableStatus = Literal["error", "timeout", "rejected", "short_circuited", "dropped"]


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RetryBudget(_Policy):
    """Finagle/Envoy-style retry budget: retries may add at most ``ratio`` of the requests.

    Parameters
    ----------
    ratio
        Retries allowed per request over the last ``ttl`` (Finagle ``percentCanRetry``; 0.2 lets
        retries add at most 20% load).
    min_retries_per_second
        Retries always allowed regardless of the ratio (Finagle ``minRetriesPerSec``).
    ttl
        Window over which requests and retries are counted (Finagle ``ttl``).
    """

    ratio: float = Field(0.2, ge=0, le=10)
    min_retries_per_second: float = Field(10.0, ge=0)
    ttl: Duration = Field(10.0, gt=0)


class RetryPolicy(_Policy):
    """Retries with backoff and jitter.

    Parameters
    ----------
    attempts
        Attempts in all, the first included (resilience4j ``maxAttempts``; Envoy
        ``num_retries`` + 1).
    backoff
        ``constant`` (always ``base``), ``exponential`` (``base`` x ``multiplier``^(n-1)) or
        ``decorrelated`` (AWS: uniform between ``base`` and 3 x the previous sleep).
    base
        Base interval (Envoy ``base_interval``, default 25 ms).
    multiplier
        Growth factor of exponential backoff.
    max_backoff
        Cap on any one sleep (Envoy ``max_interval``; default 10 x base).
    jitter
        ``none``; ``full`` (uniform in [0, backoff]); ``equal`` (backoff/2 + uniform in
        [0, backoff/2]). Decorrelated backoff is random by itself and ignores this.
    retry_on
        Statuses that are retried (Envoy ``retry_on``).
    budget
        Optional retry budget; a retry over budget is not made.
    avoid_previous_hosts
        A retry through a ``load_balancer`` goes to a backend instance that no earlier attempt
        (nor hedged copy) of this call used, as Envoy's ``envoy.retry_host_predicates.
        previous_hosts`` predicate does (with ``host_selection_retry_max_attempts`` large
        enough that the exclusion is exact): each strategy chooses among the remaining
        available backends (round robin skips, random and power of two draw among the rest,
        consistent hash walks on along the ring). When every available backend was tried it
        picks as if nothing had been (Envoy's fallback to the last selected host). ``false``:
        each retry is balanced afresh and may land on the host that just failed. A call to a
        replicated component without a balancer spreads at random as kube-proxy does, unaware
        of retries, whatever this says.
    """

    attempts: int = Field(3, ge=1, le=100)
    backoff: Literal["constant", "exponential", "decorrelated"] = "exponential"
    base: Duration = Field(0.025, ge=0)
    multiplier: float = Field(2.0, ge=1)
    max_backoff: Duration | None = Field(None, ge=0)
    jitter: Literal["none", "full", "equal"] = "full"
    retry_on: tuple[RetryableStatus, ...] = ("error", "timeout", "rejected")
    budget: RetryBudget | None = None
    avoid_previous_hosts: bool = Field(
        True, description="Through a load balancer, retry on a backend no earlier attempt "
                          "used (Envoy's previous_hosts retry predicate).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        refuse_ignored(self, [
            ("multiplier", self.backoff == "exponential",
             f"by backoff {self.backoff}; it applies to backoff exponential"),
            ("jitter", self.backoff != "decorrelated",
             "by backoff decorrelated (random by itself); it applies to backoff constant and "
             "exponential"),
        ])
        return self

    @property
    def cap(self) -> float:
        """The largest single sleep."""
        return self.max_backoff if self.max_backoff is not None else 10 * self.base


class BreakerPolicy(_Policy):
    """Circuit breaker (resilience4j semantics, plus the seed's consecutive-failure breaker).

    CLOSED lets calls through and records outcomes; it opens when ``consecutive_failures`` is set
    and reached, or when the sliding window holds at least ``minimum_number_of_calls`` and the
    failure rate or the slow-call rate reaches its threshold. OPEN short-circuits every call
    (status ``short_circuited``) for ``wait_duration_in_open_state``, then HALF_OPEN permits
    ``permitted_number_of_calls_in_half_open_state`` calls: if their failure (or slow) rate
    reaches the threshold it opens again, otherwise it closes. With
    ``max_wait_duration_in_half_open_state`` > 0, a half-open breaker that has not decided by
    then opens again. Every transition is recorded in the events table.
    """

    failure_rate_threshold: float = Field(50.0, gt=0, le=100, description="Percent.")
    slow_call_rate_threshold: float = Field(100.0, gt=0, le=100, description="Percent.")
    slow_call_duration_threshold: Duration = Field(60.0, gt=0)
    sliding_window_type: Literal["count_based", "time_based"] = "count_based"
    # bounded: the window is a deque of at most this many calls (resilience4j's default 100)
    sliding_window_size: int = Field(100, ge=1, le=10_000_000,
                                     description="Calls, or seconds if time based.")
    minimum_number_of_calls: int = Field(100, ge=1, le=10_000_000)
    wait_duration_in_open_state: Duration = Field(60.0, gt=0)
    permitted_number_of_calls_in_half_open_state: int = Field(10, ge=1, le=10_000_000)
    max_wait_duration_in_half_open_state: Duration = Field(0.0, ge=0)
    consecutive_failures: int | None = Field(None, ge=1)
    record_statuses: tuple[RetryableStatus, ...] = Field(
        ("error", "timeout", "rejected", "dropped"), description="Statuses counted as failures.")


class HedgePolicy(_Policy):
    """Hedged requests: if no reply after ``delay``, send another copy; the first reply wins.

    Parameters
    ----------
    delay
        Fixed hedge delay. Give either this or ``percentile``.
    percentile
        Hedge after this percentile of the latencies this edge has observed so far (e.g. 95);
        until ``min_samples`` replies are seen, no hedge is sent.
    max_hedges
        Extra copies at most (each after a further delay).
    cancel
        When a copy succeeds, cancel the others: a copy still waiting for a worker is dropped
        when its turn comes (status ``cancelled``, no work done); work already started finishes.
        Without it every copy runs to the end. Either way every copy sent counts as load.

    avoid_previous_hosts
        Through a ``load_balancer``, each copy goes to a backend instance that no other copy
        (nor an earlier retry attempt, when the retry policy also avoids them) of this call
        used, as hedging to a distinct replica means (Dean & Barroso) and as Envoy's
        ``previous_hosts`` retry predicate does for hedged attempts; when every available
        backend holds a copy, the strategy picks as if none did. ``false``: each copy is
        balanced afresh, so with ``random`` over N backends one copy in N queues behind the
        original on its own instance (with one worker it can never win). A call to a
        replicated component without a balancer spreads at random whatever this says.

    The first successful reply wins (gRPC semantics: a failed copy does not end the call while
    another may still succeed).
    """

    delay: Duration | None = Field(None, ge=0)
    percentile: float | None = Field(None, gt=0, lt=100)
    min_samples: int = Field(100, ge=1)
    max_hedges: int = Field(1, ge=1, le=10)
    cancel: bool = True
    avoid_previous_hosts: bool = Field(
        True, description="Through a load balancer, send each copy to a backend no other copy "
                          "of the call used.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.delay is None) == (self.percentile is None):
            raise ValueError("give exactly one of delay or percentile")
        refuse_ignored(self, [("min_samples", self.percentile is not None,
                               "with a fixed delay; it applies to a percentile hedge")])
        return self


class BulkheadPolicy(_Policy):
    """At most ``max_concurrent_calls`` in flight on this edge; others wait up to ``max_wait``."""

    max_concurrent_calls: int = Field(ge=1)
    max_wait: Duration = Field(0.0, ge=0)


class FallbackPolicy(_Policy):
    """What to answer when the call has failed after every retry.

    ``static``: a canned response after ``latency``. ``enqueue``: hand the work to ``queue``
    (a queue or topic component) for later processing and answer at once, as the seed's payment
    example does; if the queue refuses it too, the original failure stands. ``stale``: answer
    the value of the request's key that ``cache`` still holds, fresh or kept after expiry by its
    ``stale_if_error`` (a client that falls back to its last known value); the answer's version
    is measured against the store like any read, and without an entry the failure stands.
    Whichever kind, the caller gets status ``fallback``: an answer, but not the real one, so it
    counts neither as goodput nor as an error.
    """

    kind: Literal["static", "enqueue", "stale"] = "static"
    latency: Duration = Field(0.0, ge=0)
    queue: str | None = Field(None, description="Queue to hand the work to (kind: enqueue).")
    cache: str | None = Field(None, description="Cache whose entries are served (kind: stale).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.kind == "enqueue") != (self.queue is not None):
            raise ValueError("queue is required with kind enqueue, and only then")
        if (self.kind == "stale") != (self.cache is not None):
            raise ValueError("cache is required with kind stale, and only then")
        return self
