"""Parameters of queues (and, through :class:`BrokerParams`, of topics)."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from simulator.components.params import ComponentParams
from simulator.distributions import Constant, Distribution, Duration


class BrokerParams(ComponentParams):
    """Parameters shared by queues and topics (see :class:`QueueParams`)."""

    accepts_messages: ClassVar[bool] = True

    capacity: int | None = Field(None, ge=1, le=10**9)
    overflow: Literal["reject", "block"] = "reject"
    max_block: Duration | None = Field(None, gt=0)
    publish_time: Distribution = Field(default_factory=lambda: Constant(value=0.0))

    @model_validator(mode="after")
    def _check_broker(self) -> Self:
        if self.replicas != 1:
            raise ValueError(f"replicas must be 1: a {self.kind} is one logical broker "
                             "(partitions are not modelled)")
        if self.capacity is None and self.overflow == "block":
            raise ValueError("overflow: block needs a capacity (without one nothing ever "
                             "overflows)")
        if self.max_block is not None and self.overflow != "block":
            raise ValueError("max_block applies only with overflow: block")
        return self


class QueueParams(BrokerParams):
    """Parameters of ``kind: queue``.

    Parameters
    ----------
    capacity
        Messages the queue holds at most: waiting, delayed before a retry, or in flight (not
        yet acknowledged). Omitted: unbounded. Dead letters moved in from another queue are
        always accepted, even beyond it.
    overflow
        What a publish to a full queue does: ``reject`` (the producer gets status
        ``rejected`` at once; RabbitMQ's ``reject-publish``) or ``block`` (the producer waits
        for room, in FIFO order; Kafka's ``max.block.ms``).
    max_block
        With ``block``: a producer that has waited this long gives up (status ``rejected``).
        Omitted: it waits as long as it takes.
    publish_time
        Time the broker takes to answer a publish once the message is stored (persistence,
        replication), seconds; the message can be received meanwhile.
    """

    kind: Literal["queue"] = "queue"

    def diagram_lines(self) -> list[str]:
        if self.capacity is None:
            return ["unbounded"]
        return [f"capacity {self.capacity:,} ({self.overflow})"]
