"""The ``queue`` block of ``kind: service``: which waiting request a free worker takes.

One model per discipline, chosen by ``discipline`` (a pydantic discriminated union). The
runtime of each is in :mod:`simulator.components.service.disciplines` (and, for processor
sharing, :mod:`simulator.components.service.sharing`). The older ``queue_discipline`` and
``queue_limit`` keys of a service still work: they mean ``queue: {discipline: fifo|lifo,
limit: ...}``.

Every discipline drops, at dequeue, a request whose deadline (``Request.deadline``, from the
workload's ``deadline``) has passed (status ``expired``), and lets a request leave when its
patience runs out (status ``reneged``) or not join a queue as long as its ``baulk_at``
(status ``baulked``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from simulator.distributions import Duration


class _Queue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    limit: int | None = Field(
        None, ge=0, description="Requests allowed to wait at one instance; an arrival that "
        "finds it full is rejected (status rejected). Omitted: unbounded.")


class FifoQueue(_Queue):
    """First come, first served."""

    discipline: Literal["fifo"] = "fifo"


class LifoQueue(_Queue):
    """Last come, first served (the newest waiting request first), non-preemptive."""

    discipline: Literal["lifo"] = "lifo"


class PriorityQueue(_Queue):
    """Strict priority between classes (``Request.priority``, 0 first), FIFO within a class.

    ``preemptive: false`` (head-of-line priority, Cobham's model): a request in service always
    finishes. ``preemptive: true`` (preemptive resume): an arrival of a more important class
    that finds every worker busy takes the worker of the least important request doing its
    local work (the one that started last among equals), which goes back to the head of its
    class's queue and later resumes with the work it had left. A request waiting for its
    downstream calls while holding a worker is not preempted (it is not using the CPU).
    """

    discipline: Literal["priority"] = "priority"
    preemptive: bool = False


class CoDelQueue(_Queue):
    """Controlled Delay (Nichols and Jacobson; RFC 8289), applied to requests at dequeue.

    A request's sojourn is the time since it joined the queue. Once the sojourn of dequeued
    requests has stayed at or above ``target`` for ``interval`` (and others are waiting), the
    queue enters its dropping state: it drops the request at the head (status ``dropped``) and
    keeps dropping at times spaced ``interval / sqrt(count)`` apart until a sojourn falls
    below ``target``; re-entering soon after leaving resumes the count (RFC 8289 section 5).
    """

    discipline: Literal["codel"] = "codel"
    target: Duration = Field(0.005, gt=0, description="Acceptable standing queue delay "
                             "(RFC 8289: 5 ms).")
    interval: Duration = Field(0.1, gt=0, description="Time the delay must stay above target "
                               "before dropping starts; scales the control law (RFC 8289: "
                               "100 ms).")


class AdaptiveLifoQueue(_Queue):
    """Adaptive LIFO (Facebook, "Fail at scale", 2015): FIFO normally, LIFO under a standing
    queue.

    The queue counts as standing when it has not been empty for ``standing_after`` (the
    interval after which Facebook's CoDel variant calls a queue standing): then a free worker
    takes the newest waiting request, which still has a client waiting for it, rather than the
    oldest, whose client may have given up.
    """

    discipline: Literal["adaptive_lifo"] = "adaptive_lifo"
    standing_after: Duration = Field(0.1, ge=0, description="How long the queue must have "
                                     "been non-empty for LIFO to apply.")


class ProcessorSharing(_Queue):
    """Processor sharing: no request waits; the ``workers`` share their capacity equally.

    With ``n`` requests doing their local work, each progresses at ``min(1, workers / n)``
    times the speed of a worker (egalitarian processor sharing, capped at one worker each:
    a request cannot run on two workers at once). ``limit`` bounds ``n`` (an arrival beyond it
    is rejected). A request leaves the shared capacity when its local work is done, and its
    downstream calls follow (it uses no CPU while it waits for them; ``hold_worker: false``
    is implied). Reneging, baulking and the deadline check at dequeue apply to no request
    (none waits); a request whose deadline has already passed on arrival is dropped
    (``expired``) as with every discipline.
    """

    discipline: Literal["processor_sharing"] = "processor_sharing"


QueueSpec = Annotated[
    FifoQueue | LifoQueue | PriorityQueue | CoDelQueue | AdaptiveLifoQueue | ProcessorSharing,
    Field(discriminator="discipline"),
]
"""A service's ``queue`` block."""
