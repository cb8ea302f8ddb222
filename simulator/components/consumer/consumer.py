"""Consumers: worker pools that pull messages from a queue or a topic subscription.

A consumer is the ``Worker`` of a job queue (BullMQ) or the poller of an SQS queue: each
instance runs ``concurrency`` long-lived workers, and each worker loops: receive a message
(waiting if there is none), do the local work, make the calls, then acknowledge the message or
report the failure. Failed messages come back after a backoff; after ``max_attempts`` deliveries
they go to the dead-letter queue. Nothing calls a consumer.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import Any, cast

from simpy import AllOf, Event, Timeout

from simulator.calls import CallSpec
from simulator.components.base import (
    BuildContext,
    Component,
    Target,
)
from simulator.components.consumer.params import ConsumerParams
from simulator.components.consumer.scaling import ScalableConsumer
from simulator.components.edge import Bound, bind_call
from simulator.components.queue.backlog import Backlog, Delivery, Receiver
from simulator.components.queue.broker import Queue
from simulator.components.steps import Plan, compile_plan
from simulator.components.topic.topic import Topic
from simulator.distributions import Constant
from simulator.messages import ERROR, OK, Request

_Plan = Plan


class Consumer(ScalableConsumer, Component):
    """One consumer instance: ``concurrency`` workers pulling from one queue or subscription.

    Modelling assumptions: workers long-poll (a receive waits until a message is visible, at no
    cost); the local work takes ``service_time`` x the request's ``work`` (x a ``slow``
    fault's factor); the calls run as a service's steps do, on behalf of the request that
    published the message (their spans carry its id). Only ``ok`` acknowledges a message;
    any other status (``fallback`` included) fails the delivery. With ``ack: on_receive`` the
    message is acknowledged at delivery and failures are only counted.

    Records one span per delivery processed (``arrival`` = ``start`` = delivery, ``end`` =
    outcome), so a consumer appears in the summary with its processing rate, error ratio,
    processing time and utilisation. Gauges: ``workers`` (the concurrency), ``busy``
    (messages being processed), ``busy_time_total`` (its integral), ``processed_total``,
    ``failed_total`` (deliveries that failed, or were abandoned by a crash).

    Faults: ``crash`` stops the instance at once: its workers stop receiving, and the messages
    they were processing stay in flight until their visibility timeout brings them back (the
    calls already made carry on; their outcome is ignored); the instance restarts with fresh
    workers when the fault ends. ``slow`` multiplies the local work. A ``partition`` between
    the consumer and its source loses what crosses it: a message received meanwhile stays in
    flight until its visibility timeout, an acknowledgement or failure report is lost (so the
    message comes back), and idle workers retry every ``reconnect_interval``. (Dead-lettering is
    the broker's job and crosses no partition.)
    """

    Params = ConsumerParams

    def __init__(self, group: str, index: int, params: ConsumerParams,
                 ctx: BuildContext) -> None:
        super().__init__(group, index, params, ctx)
        self.concurrency = params.concurrency
        st = params.service_time
        self._draw: Callable[[], float] | None = (
            None if isinstance(st, Constant) and st.value + st.shift == 0
            else ctx.sampler(group, "service_time", st))
        self._ack_on_receive = params.ack == "on_receive"
        self._max_attempts = params.max_attempts
        self._backoff = params.backoff
        self._uniform = ctx.streams.batched(self.name, "backoff", lambda rng, k: rng.random(k))
        self._plan: _Plan = []
        self._compensation: _Plan = []
        self._backlog: Backlog | None = None
        self._dead_letter: Backlog | None = None
        self._receiver: Receiver | None = None
        self.busy = 0
        self._busy_area = 0.0
        self.processed_total = 0
        self.failed_total = 0
        rec = ctx.recorder
        self._rec = rec if ctx.record_spans else None
        self._code = rec.instance_code(group, self.name)
        # faults
        self.up = True
        self._epoch = 0
        self._track = False
        #: what each worker is processing, by delivery (message, receipt): a crash fails them
        self._active: dict[Delivery, tuple[Request, str, float]] = {}
        self._slow = 1.0
        self._cut: frozenset[str] | None = None  # (consumer, source) if a partition may cut it

    # ---- wiring -------------------------------------------------------------------------
    def wire(self, resolve: Callable[[str], Target]) -> None:
        p = cast(ConsumerParams, self.params)
        name, _, sub = p.source.partition(".")
        source = resolve(name)
        if isinstance(source, Topic):
            self._backlog = source.subscription(sub)
        elif isinstance(source, Queue):
            self._backlog = source.backlog
        else:
            raise ValueError(f"source {p.source!r} is not a queue or a topic subscription")
        if p.dead_letter is not None:
            dlq = resolve(p.dead_letter)
            if not isinstance(dlq, Queue):
                raise ValueError(f"dead_letter {p.dead_letter!r} is not a queue")
            self._dead_letter = dlq.backlog
        pair = frozenset((self.group, name))
        self._cut = pair if pair in self.ctx.partitionable else None
        self._receiver = Receiver(p.visibility_timeout, p.max_attempts, self._ack_on_receive,
                                  self._dead_letter)

        def bind(c: CallSpec) -> Bound:
            return bind_call(c, resolve(c.to), self.ctx, (self.group, self.name),
                             resolve=resolve)

        self._plan = compile_plan(p.calls, bind, self.ctx, self.group, "calls")
        self._compensation = compile_plan(p.on_failure, bind, self.ctx, self.group,
                                          "on_failure")

    def start(self) -> None:
        for _ in range(self.concurrency):
            self.env.process(self._worker(self._epoch))

    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        env = self.env
        yield "workers", "", lambda: self.concurrency
        yield "busy", "", lambda: self.busy
        yield "busy_time_total", "", lambda: self._busy_area + self.busy * env.now
        yield "processed_total", "", lambda: self.processed_total
        yield "failed_total", "", lambda: self.failed_total

    # ---- the workers --------------------------------------------------------------------
    def _worker(self, epoch: int) -> Generator[Event, Any, None]:
        """One worker slot: receive, process, acknowledge or fail; forever (until a crash)."""
        env = self.env
        backlog = self._backlog
        receiver = self._receiver
        assert backlog is not None and receiver is not None
        draw = self._draw
        plan = self._plan
        ack_on_receive = self._ack_on_receive
        cut, partitioned = self._cut, self.ctx.partitioned
        while True:
            if not self.in_service:  # autoscaled out: stop between messages
                self.leaving()
                return
            if cut is not None and cut in partitioned:
                yield Timeout(env, cast(ConsumerParams, self.params).reconnect_interval)
                if self._epoch != epoch:
                    return
                continue
            delivery: Delivery | None = backlog.take(receiver)
            if delivery is None:
                delivery = yield backlog.wait(receiver)
                if delivery is None:
                    return  # the wait was withdrawn: this instance crashed
            if self._epoch != epoch:
                return  # crashed as the message arrived: it returns after the visibility timeout
            if cut is not None and cut in partitioned:
                continue  # the reply to the receive was lost: in flight until its timeout
            # the receipt is the delivery's own (the message may have been delivered again,
            # to another worker, before this one resumed)
            msg, receipt = delivery
            req, op = msg.req, msg.op
            start = env._now
            self.busy += 1
            self._busy_area -= start
            if self._track:  # keyed by the delivery: nothing else can remove its entry
                self._active[delivery] = (req, op, start)
            if draw is not None:
                yield Timeout(env, draw() * req.work * self._slow)
            status = (yield from self._run(req, op, plan)) if plan else OK
            if self._epoch != epoch:
                return  # the crash has closed this delivery; the message is still in flight
            if self._track:
                del self._active[delivery]
            now = env._now
            self.busy -= 1
            self._busy_area += now
            self._span(req, op, start, now, status)
            # the outcome is reported unless acknowledged at receipt or cut off by a partition
            report = not ack_on_receive and (cut is None or cut not in partitioned)
            if status == OK:
                self.processed_total += 1
                if report:
                    backlog.ack(msg, receipt)
            else:
                self.failed_total += 1
                if report:
                    backlog.fail(msg, receipt, self._retry_delay(receipt), self._dead_letter)

    def _retry_delay(self, attempts: int) -> float | None:
        """Delay before delivery ``attempts + 1``, or None when the attempts are used up."""
        if attempts >= self._max_attempts:
            return None
        b = self._backoff
        d = b.delay if b.type == "constant" else b.delay * b.multiplier ** (attempts - 1)
        if b.max_delay is not None:
            d = min(d, b.max_delay)
        if b.jitter == "full":
            return self._uniform() * d
        if b.jitter == "equal":
            return d / 2 + self._uniform() * d / 2
        return d

    def _run(self, req: Request, op: str, plan: _Plan) -> Generator[Event, Any, int]:
        env = self.env
        for step in plan:
            if not isinstance(step, list):
                status = yield from step(req, op)
            else:
                procs = [env.process(call(req, op)) for call in step]
                yield AllOf(env, procs)
                status = next((s for s in (cast(int, p.value) for p in procs) if s != OK), OK)
            if status != OK:
                for comp in self._compensation:  # every compensation, whatever its outcome
                    if not isinstance(comp, list):
                        yield from comp(req, op)
                    else:
                        yield AllOf(env, [env.process(call(req, op)) for call in comp])
                return status
        return OK

    def _span(self, req: Request, op: str, start: float, end: float, status: int) -> None:
        if self._rec is not None:
            self._rec.span(req.id, self._code, op, start, start, end, status)

    # ---- faults -------------------------------------------------------------------------
    def prepare_faults(self, kinds: set[str]) -> None:
        self._track = "crash" in kinds

    def crash(self, black_hole: bool) -> None:
        now = self.env._now
        self.up = False
        self._epoch += 1
        self._busy_area += self.busy * now
        self.busy = 0
        for req, op, start in self._active.values():
            self.failed_total += 1
            self._span(req, op, start, now, ERROR)
        self._active.clear()
        assert self._backlog is not None and self._receiver is not None
        self._backlog.cancel(self._receiver)

    def recover(self) -> None:
        if not self.up:
            self.up = True
            self.start()

    def set_fault(self, kind: str, value: Any) -> None:
        if kind != "slow":
            raise ValueError(f"unsupported fault {kind!r}")
        self._slow = 1.0 if value is None else float(value)
