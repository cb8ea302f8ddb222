"""Publish/subscribe: a topic copies every message to each of its subscriptions.

Each subscription is a backlog of its own (:class:`~simulator.components.queue.Backlog`), with
the same acknowledgement, visibility-timeout, redelivery and dead-letter semantics as a queue,
so every subscriber group consumes every message at its own pace: a slow or crashed subscriber
builds up its own lag and leaves the others alone (SNS fanning out to SQS queues, or Kafka
consumer groups reading one topic).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from simulator.components.base import (
    BuildContext,
)
from simulator.components.queue.backlog import Backlog
from simulator.components.queue.broker import Broker
from simulator.components.topic.params import TopicParams


class Topic(Broker):
    """A topic with several subscriptions; publishing stores one copy in each.

    Modelling assumptions: the copies are stored at the same instant, atomically (all or none
    when a subscription is full); each subscription then behaves exactly like a queue.

    Records one span per publish and, in the ``messages`` table, one row per copy with
    ``queue`` = ``topic.subscription``. Gauges: per subscription (``label`` = its name) the
    same as a queue's (``depth``, ``delayed``, ``in_flight``, ``lag``, ``oldest_age``,
    ``published_total``, ``acked_total``, ``dead_lettered_total``, ``redelivered_total``,
    ``expired_total``, ``rejected_total``, ``stale_acks_total``); ``blocked`` (label "").
    """

    Params = TopicParams

    def __init__(self, group: str, index: int, params: TopicParams, ctx: BuildContext) -> None:
        super().__init__(group, index, params, ctx,
                         [f"{group}.{s}" for s in params.subscriptions])
        self.subscriptions: dict[str, Backlog] = dict(
            zip(params.subscriptions, self.backlogs, strict=True))

    def subscription(self, name: str) -> Backlog:
        """The backlog of subscription ``name``."""
        return self.subscriptions[name]

    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        for name, backlog in self.subscriptions.items():
            yield from backlog.gauges(name)
        yield "blocked", "", lambda: self.blocked
