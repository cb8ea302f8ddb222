"""Brokers: what queues and topics share (admission with backpressure, then storage in
backlogs), and the queue itself."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from simpy import AnyOf, Event, Timeout

from simulator.components.base import (
    BuildContext,
    Component,
    Handler,
)
from simulator.components.queue.backlog import Backlog, Gate
from simulator.components.queue.params import BrokerParams, QueueParams
from simulator.distributions import Constant
from simulator.messages import OK, REJECTED, Request


class Broker(Component):
    """What queues and topics share: admission with backpressure, then storage in backlogs.

    Records one span per publish (``start`` is when the message was admitted, NaN if it was
    rejected), so the broker appears in the summary with its publish rate and rejection ratio,
    and time spent blocked shows in its latency.
    """

    def __init__(self, group: str, index: int, params: BrokerParams, ctx: BuildContext,
                 names: list[str]) -> None:
        super().__init__(group, index, params, ctx)
        self.backlogs = [Backlog(n, ctx.env, ctx.recorder) for n in names]
        self._gate = Gate(self.backlogs, params.capacity) if params.capacity is not None else None
        self._block = params.overflow == "block"
        self._max_block = params.max_block
        pt = params.publish_time
        self._publish_time: Callable[[], float] | None = (
            None if isinstance(pt, Constant) and pt.value + pt.shift == 0
            else ctx.sampler(group, "publish_time", pt))
        rec = ctx.recorder
        self._rec = rec if ctx.record_spans else None
        self._code = rec.instance_code(group, self.name)

    def handle(self, req: Request, op: str) -> Handler:
        """Store a message for ``req`` in every backlog and answer ``ok``, or ``rejected``."""
        env = self.env
        arrival = env._now
        gate = self._gate
        if gate is not None and (gate.waiters or not gate.room()):
            if not self._block:
                return self._refuse(req, op, arrival)
            permit = Event(env)
            gate.waiters.append(permit)
            if self._max_block is None:
                yield permit
            else:
                yield AnyOf(env, (permit, Timeout(env, self._max_block)))
                if not permit.triggered:
                    gate.waiters.remove(permit)
                    return self._refuse(req, op, arrival)
            gate.unreserve()
        start = env._now
        for b in self.backlogs:
            b.put(req, op)
        if self._publish_time is not None:
            yield Timeout(env, self._publish_time())
        self._span(req, op, arrival, start, OK)
        return OK

    @property
    def blocked(self) -> int:
        """Producers waiting for room now."""
        return len(self._gate.waiters) if self._gate is not None else 0

    def _refuse(self, req: Request, op: str, arrival: float) -> int:
        for b in self.backlogs:
            b.reject(req)
        self._span(req, op, arrival, float("nan"), REJECTED)
        return REJECTED

    def _span(self, req: Request, op: str, arrival: float, start: float, status: int) -> None:
        if self._rec is not None:
            self._rec.span(req.id, self._code, op, arrival, start, self.env._now, status)


class Queue(Broker):
    """A named message queue: producers enqueue and get an answer at once; consumers pull.

    Modelling assumptions: one logical queue (no partitions); FIFO delivery of visible messages
    to consumers in the order they asked; a message that becomes visible again joins the back
    (standard queues do not keep order on redelivery); the broker itself never fails.

    Records one span per publish and one row per message in the ``messages`` table. Gauges
    (``label`` ""): ``depth`` (visible messages waiting), ``delayed`` (waiting out a retry
    backoff), ``in_flight`` (delivered, not acknowledged), ``lag`` (published and not yet
    acknowledged or dead-lettered: the sum of the three), ``oldest_age`` (seconds since the
    oldest of those was enqueued), ``blocked`` (producers waiting for room) and the cumulative
    ``published_total``, ``acked_total``, ``dead_lettered_total``, ``redelivered_total``
    (deliveries after the first), ``expired_total`` (visibility timeouts that ran out),
    ``rejected_total`` (publishes refused) and ``stale_acks_total`` (outcomes of superseded
    deliveries, ignored).
    """

    Params = QueueParams

    def __init__(self, group: str, index: int, params: QueueParams, ctx: BuildContext) -> None:
        super().__init__(group, index, params, ctx, [group])
        self.backlog = self.backlogs[0]

    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        yield from self.backlog.gauges("")
        yield "blocked", "", lambda: self.blocked
