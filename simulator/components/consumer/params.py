"""Parameters of ``kind: consumer``: its source, concurrency, acknowledgement, retries."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.autoscaling.params import Autoscaling
from simulator.calls import NAME_PATTERN, Step, step_references
from simulator.components.params import ComponentParams, KeyPath
from simulator.components.queue.params import QueueParams
from simulator.components.topic.params import TopicParams
from simulator.distributions import Constant, Distribution, Duration
from simulator.settings import refuse_ignored

SOURCE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)?$"



class Backoff(BaseModel):
    """Delay before a message whose delivery failed becomes visible again (BullMQ's ``backoff``).

    Parameters
    ----------
    type
        ``constant`` (always ``delay``) or ``exponential`` (``delay`` x ``multiplier``^(n-1)
        after the n-th failed delivery: 2 s, 4 s, 8 s... for the defaults of BullMQ's
        ``{type: exponential, delay: 2000}``).
    delay
        The first (or every) delay, seconds.
    multiplier
        Growth factor of exponential backoff.
    max_delay
        Cap on any one delay, seconds (omitted: none).
    jitter
        ``none``; ``full`` (uniform in [0, delay]); ``equal`` (delay/2 + uniform in
        [0, delay/2]).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["constant", "exponential"] = "exponential"
    delay: Duration = Field(1.0, ge=0)
    multiplier: float = Field(2.0, ge=1)
    max_delay: Duration | None = Field(None, ge=0)
    jitter: Literal["none", "full", "equal"] = "none"

    @model_validator(mode="after")
    def _check(self) -> Self:
        refuse_ignored(self, [("multiplier", self.type == "exponential",
                               "by type constant; it applies to type exponential")])
        return self


class ConsumerParams(ComponentParams):
    """Parameters of ``kind: consumer``.

    Parameters
    ----------
    source
        Where messages come from: a queue's name, or ``topic.subscription``.
    replicas
        Consumer instances (processes); each has its own workers and crashes on its own.
    concurrency
        Messages one instance processes at once (BullMQ ``concurrency``): its workers.
    service_time
        Local work per message before the calls, seconds (scaled by the request's ``work``).
    calls
        Steps made for each message after the local work, in sequence, as a service's
        ``calls`` for one operation: a call (with its policies: timeout, retry, breaker...) or
        ``{parallel: [...]}``. The first failed step fails the delivery. A call without ``op``
        asks for the operation the message was published with.
    on_failure
        Compensating steps run, every one whatever its outcome, when a step of ``calls``
        fails (release the stock when the payment fails); the delivery still fails.
    ack
        ``on_success`` (at-least-once: acknowledge after the calls succeed; a failure or a
        crash brings the message back) or ``on_receive`` (at-most-once: acknowledge at
        delivery; a failed or interrupted processing loses the work, never the accounting).
    visibility_timeout
        A delivered message not acknowledged within this long becomes visible again and is
        redelivered, even if its first delivery is still being processed (SQS semantics).
    max_attempts
        Deliveries of one message in all, the first included (BullMQ ``attempts``, SQS
        ``maxReceiveCount``); then it is dead-lettered.
    backoff
        Delay before a failed message is delivered again.
    dead_letter
        Queue that receives messages after ``max_attempts`` (a new message there, with the
        same request id). Omitted: they are counted and marked ``dead_lettered`` only.
    reconnect_interval
        While a ``partition`` fault separates the consumer from its source, each worker tries
        to reconnect this often, seconds (at least 1 ms: each try is an event of the run).
    autoscaling
        An autoscaler for the instances (:class:`~simulator.autoscaling.params.Autoscaling`:
        the HPA's semantics, with KEDA's ``queue_length`` metric on the source and, with
        ``min_replicas: 0``, its scale to and from zero); ``replicas`` is the count at the
        start. A consumer scaled in stops receiving and finishes its messages
        (:mod:`~simulator.components.consumer.scaling`).
    """

    kind: Literal["consumer"] = "consumer"
    pulled_from: ClassVar[tuple[str, ...]] = ("source",)
    reference_labels: ClassVar[dict[str, str]] = {"dead_letter": "dead letters",
                                                  "on_failure": "on failure"}
    refuses_calls: ClassVar[str | None] = (
        "is a consumer, which takes no calls: it pulls messages from its source")
    source: str = Field(pattern=SOURCE_PATTERN)
    concurrency: int = Field(1, ge=1, le=100_000)
    service_time: Distribution = Field(default_factory=lambda: Constant(value=0.0))
    calls: list[Step] = Field(default_factory=list)
    on_failure: list[Step] = Field(default_factory=list)
    ack: Literal["on_success", "on_receive"] = "on_success"
    visibility_timeout: Duration = Field(30.0, gt=0)
    max_attempts: int = Field(3, ge=1, le=1000)
    backoff: Backoff = Field(default_factory=Backoff)
    dead_letter: str | None = Field(None, pattern=NAME_PATTERN)
    reconnect_interval: Duration = Field(1.0, ge=0.001)
    autoscaling: Autoscaling | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        # (max_attempts and dead_letter still apply: a message another consumer of the same
        # source failed may come to this one, which dead-letters it when it has had them all)
        why = ("with ack on_receive (a message is acknowledged at delivery, never in flight nor "
               "failed); it applies to ack on_success")
        refuse_ignored(self, [(name, self.ack == "on_success", why)
                              for name in ("visibility_timeout", "backoff")])
        if self.autoscaling is not None and self.replicas > self.autoscaling.max_replicas:
            raise ValueError(f"replicas ({self.replicas}) is above autoscaling.max_replicas "
                             f"({self.autoscaling.max_replicas})")
        if self.autoscaling is not None and self.autoscaling.cold_start is not None:
            raise ValueError("autoscaling.cold_start: a consumer starts at full speed (a cold "
                             "start applies to services)")
        if self.on_failure and not self.calls:
            raise ValueError("on_failure: the consumer makes no calls, so there is no failed "
                             "step to compensate; list its steps in calls")
        return self

    @property
    def source_component(self) -> str:
        """The queue or topic named by ``source``."""
        return self.source.partition(".")[0]

    def instances(self) -> int:
        """Each replica and its ``concurrency`` long-lived worker processes."""
        return self.instance_count * (1 + self.concurrency)

    def diagram_lines(self) -> list[str]:
        lines = [f"concurrency {self.concurrency}", f"max attempts {self.max_attempts}"]
        if self.ack != "on_success":
            lines.append(f"ack {self.ack.replace('_', ' ')}")
        return lines

    def references(self) -> Iterable[tuple[KeyPath, str]]:
        yield ("source",), self.source_component
        if self.dead_letter is not None:
            yield ("dead_letter",), self.dead_letter
        for block in ("calls", "on_failure"):
            yield from step_references(getattr(self, block), (block,))

    def cross_check(self, components: dict[str, ComponentParams]) -> Iterable[tuple[KeyPath, str]]:
        name, _, sub = self.source.partition(".")
        src = components[name]
        if isinstance(src, TopicParams):
            if not sub:
                yield ("source",), (f"{name!r} is a topic: name one of its subscriptions, "
                                    f"as {name}.{src.subscriptions[0]}")
            elif sub not in src.subscriptions:
                close = difflib.get_close_matches(sub, src.subscriptions, n=1, cutoff=0.6)
                yield ("source",), (f"topic {name!r} has no subscription {sub!r}"
                                    + (f"; did you mean {close[0]!r}?" if close else "")
                                    + f" (subscriptions: {', '.join(src.subscriptions)})")
        elif isinstance(src, QueueParams):
            if sub:
                yield ("source",), f"{name!r} is a queue: it has no subscription {sub!r}"
        elif src.refuses_calls is None:  # (a consumer as source is reported as a reference)
            yield ("source",), (f"must be a queue or a topic.subscription; {name!r} is a "
                                f"{src.kind}")
        if self.dead_letter is not None:
            dlq = components[self.dead_letter]
            if not isinstance(dlq, QueueParams):
                if dlq.refuses_calls is None:
                    yield ("dead_letter",), (f"must be a queue; {self.dead_letter!r} is a "
                                             f"{dlq.kind}")
            elif self.dead_letter == self.source:
                yield ("dead_letter",), ("must differ from the source (dead letters would be "
                                         "delivered again)")
        for block in ("calls", "on_failure"):
            for rel, ref in step_references(getattr(self, block), (block,)):
                # an unconditional publish back to the source feeds the consumer forever:
                # every message it takes makes another (a probabilistic step ends, as a
                # Jackson network's feedback does)
                if ref == name and not {"call", "choice", "fallback"} & set(map(str, rel)):
                    yield rel, (f"publishes to its own source {name!r} on every message: each "
                                "message it takes would make another, without end; publish "
                                "elsewhere, or make it probabilistic ({call: ..., "
                                "probability: p})")
