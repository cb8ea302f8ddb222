"""Parameters of ``kind: topic``."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from simulator.calls import NAME_PATTERN
from simulator.components.queue.params import BrokerParams


class TopicParams(BrokerParams):
    """Parameters of ``kind: topic``.

    Parameters
    ----------
    subscriptions
        Names of the subscriptions; a consumer reads one as ``source: topic.subscription``.
    capacity
        Messages each subscription holds at most (waiting, delayed or in flight). A publish
        needs room in every subscription: the slowest subscriber sets the pace of producers.
        Omitted: unbounded.
    overflow
        What a publish does when a subscription is full: ``reject`` (status ``rejected``, no
        subscription gets a copy) or ``block`` (wait for room in all of them, FIFO).
    max_block
        With ``block``: give up after waiting this long (status ``rejected``).
    publish_time
        Time the broker takes to answer a publish once the copies are stored, seconds.
    """

    kind: Literal["topic"] = "topic"
    subscriptions: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_subscriptions(self) -> Self:
        dup = sorted({s for s in self.subscriptions if self.subscriptions.count(s) > 1})
        if dup:
            raise ValueError(f"subscriptions must be distinct; repeated: {', '.join(dup)}")
        return self

    def diagram_lines(self) -> list[str]:
        return [f"{len(self.subscriptions)} subscriptions"]
