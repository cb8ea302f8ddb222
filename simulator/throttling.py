"""Client-side adaptive throttling, as in Google's SRE book ("Handling Overload").

Each calling instance keeps, over a trailing ``window``, the number of ``requests`` its
application attempted on the edge (those it throttled itself included) and the number of
``accepts``: attempts the backend accepted. A new attempt is refused locally, with status
``throttled``, with probability

    max(0, (requests - k * accepts) / (requests + 1))

so while the backend accepts everything nothing is throttled, and once the backend refuses, the
client sends about ``k`` times what the backend accepts and drops the rest itself, at no cost
to the backend.

Modelling choices
-----------------
- What counts as an accept: an attempt whose final status is not one of ``reject_on``
  (default ``rejected``: the backend said "overloaded", as in the book, where ``accepts`` are
  the requests the backend accepted). So a backend rejection is *not* an accept; an error or a
  timeout is, by default (the backend took the request). ``reject_on`` may add ``timeout``,
  ``dropped`` or ``error`` for backends that show overload that way.
- A locally throttled attempt counts as a request but never as an accept, as in the book.
- The policy applies to each attempt (it sits inside ``retry``), so retries are throttled
  too: that is what lets it cut a retry storm. ``throttled`` is not a status ``retry_on`` can
  name, so a throttled attempt is never retried (at once it would face the same probability).
- A request is counted when it is attempted, an accept when its answer arrives; both leave the
  window ``window`` seconds after they were counted (exact sliding window, no buckets).
- The draw uses its own random stream per calling instance and edge
  (``"<instance>-><target>"``, purpose ``adaptive_throttle``), taken only when the
  probability is positive, so a run where nothing is throttled draws nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from simulator.distributions import Duration
from simulator.messages import THROTTLED, Request, Status

if TYPE_CHECKING:  # the kind declarations import the policy models without SimPy
    from simpy import Event

RejectStatus = Literal["error", "rejected", "timeout", "dropped", "expired", "reneged",
                       "baulked"]


class AdaptiveThrottlePolicy(BaseModel):
    """Client-side adaptive throttling (Google SRE book, "Handling Overload").

    Parameters
    ----------
    k
        The multiplier K: the client sends at most about ``k`` x accepts (the book's default
        2; 1.1 throttles aggressively, larger is laxer).
    window
        Trailing window over which requests and accepts are counted (the book: 2 minutes).
    reject_on
        Final statuses of an attempt that mean the backend did not accept it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    k: float = Field(2.0, ge=1, le=100)
    window: Duration = Field(120.0, gt=0)
    reject_on: tuple[RejectStatus, ...] = Field(
        ("rejected",), description="Statuses that mean the backend did not accept the attempt.")


class AdaptiveThrottle:
    """The state of one calling instance's throttle on one edge."""

    def __init__(self, policy: AdaptiveThrottlePolicy, uniform: Callable[[], float]) -> None:
        self.k = policy.k
        self.window = policy.window
        self.rejects = {int(getattr(Status, s.upper())) for s in policy.reject_on}
        self.uniform = uniform
        self.requests: deque[float] = deque()
        self.accepts: deque[float] = deque()

    def _trim(self, now: float) -> None:
        horizon = now - self.window
        for q in (self.requests, self.accepts):
            while q and q[0] <= horizon:
                q.popleft()

    def probability(self, now: float) -> float:
        """The local rejection probability a new attempt at ``now`` would face."""
        self._trim(now)
        r = len(self.requests)
        return max(0.0, (r - self.k * len(self.accepts)) / (r + 1))

    def admit(self, now: float) -> bool:
        """Count an attempt at ``now`` and say whether it may be sent."""
        p = self.probability(now)
        self.requests.append(now)
        return not (p > 0.0 and self.uniform() < p)

    def answered(self, now: float, status: int) -> None:
        """Count the answer to an admitted attempt."""
        if status not in self.rejects:
            self.accepts.append(now)


def adaptive_throttle(
    inner: Callable[[Request, str], Generator[Event, Any, int]],
    throttle: AdaptiveThrottle, now: Callable[[], float],
) -> Callable[[Request, str], Generator[Event, Any, int]]:
    """Wrap one edge's handler in ``throttle``."""

    def call(req: Request, op: str) -> Generator[Event, Any, int]:
        if not throttle.admit(now()):
            return THROTTLED
        status = yield from inner(req, op)
        throttle.answered(now(), status)
        return status

    return call
