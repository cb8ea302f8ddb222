"""Message queues: capacity and backpressure, acknowledgement, visibility timeouts, redelivery,
dead letters.

A producer calls a queue like any component (``calls: {create: [orders]}``); the queue stores a
message carrying the request and answers at once, so the producer's latency does not include the
processing. Consumers (:mod:`simulator.components.consumer`) pull messages, process them, and
acknowledge or fail each one. The semantics are those of SQS (visibility timeout, receive count,
redrive to a dead-letter queue) with BullMQ's job options (attempts, backoff):

* a received message is *in flight* and invisible for the receiver's visibility timeout; if it is
  not acknowledged by then it becomes visible again and is redelivered, even if the first
  delivery is still being processed (duplicates are real);
* only the latest delivery of a message counts: an acknowledgement from a delivery that has been
  superseded by a redelivery is ignored (SQS's latest receipt handle, BullMQ's job lock) and
  counted in ``stale_acks_total``;
* a failed delivery makes the message visible again after a backoff, or dead-letters it once it
  has been delivered ``max_attempts`` times; a message whose receive count has reached the limit
  (its last delivery timed out) is dead-lettered when it would next be received.

A message is never lost: at any instant it is queued (waiting, or delayed before a retry), in
flight, acknowledged or dead-lettered, and its row in the ``messages`` table says which.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import cast

import simpy
from simpy import Event, Timeout

from simulator.messages import MessageStatus, Request
from simulator.metrics.recorder import Recorder

NAN = float("nan")
# codes written to the messages table
_QUEUED = int(MessageStatus.QUEUED)
_IN_FLIGHT = int(MessageStatus.IN_FLIGHT)
_ACKED = int(MessageStatus.ACKED)
_DEAD = int(MessageStatus.DEAD_LETTERED)
_REJECTED = int(MessageStatus.REJECTED)

# states of a message inside a backlog (final states compare >= ACKED)
READY, DELAYED, IN_FLIGHT, ACKED, DEAD = range(5)


class Message:
    """One message in one backlog.

    Attributes
    ----------
    id
        Row of the message in the ``messages`` table.
    req
        The request that published it; consumers make their calls on its behalf, so their spans
        carry its id.
    op
        Operation the queue was called with; a consumer's calls use it unless they name one.
    enqueued_at
        When the queue accepted it (seconds).
    state
        ``READY``, ``DELAYED``, ``IN_FLIGHT``, ``ACKED`` or ``DEAD``.
    attempts
        Deliveries so far; the current delivery's receipt is this number.
    holder
        The receiver whose visibility timeout runs on the message while it is in flight.
    """

    __slots__ = ("attempts", "enqueued_at", "holder", "id", "op", "req", "state")

    def __init__(self, id: int, req: Request, op: str, enqueued_at: float) -> None:
        self.id = id
        self.req = req
        self.op = op
        self.enqueued_at = enqueued_at
        self.state = READY
        self.attempts = 0
        self.holder: Receiver | None = None


Delivery = tuple[Message, int]
"""One delivery of a message: the message and its receipt (the delivery's number)."""


class Receiver:
    """How one consumer instance receives from a backlog.

    Parameters
    ----------
    visibility_timeout
        A delivered message not acknowledged within this long becomes visible again (seconds).
    max_attempts
        Deliveries a message may have in all; a message already delivered this many times is
        dead-lettered instead of being delivered again.
    ack_on_receive
        Acknowledge at delivery (at-most-once) instead of after processing (at-least-once).
    dead_letter
        Where dead letters go (None: they are only counted and marked ``dead_lettered``).

    The receiver also keeps the visibility deadlines of the messages it holds in flight, in
    delivery order, which is deadline order since its timeout is constant: one armed timer
    (for the earliest) serves them all, instead of one timer per delivery.
    """

    __slots__ = ("ack_on_receive", "armed", "dead_letter", "max_attempts", "pending",
                 "visibility_timeout")

    def __init__(self, visibility_timeout: float, max_attempts: int, ack_on_receive: bool,
                 dead_letter: Backlog | None) -> None:
        self.visibility_timeout = visibility_timeout
        self.max_attempts = max_attempts
        self.ack_on_receive = ack_on_receive
        self.dead_letter = dead_letter
        #: messages in flight from this receiver -> (visibility deadline, receipt)
        self.pending: OrderedDict[Message, tuple[float, int]] = OrderedDict()
        self.armed = False


class Backlog:
    """The messages of one queue, or of one subscription of a topic.

    Parameters
    ----------
    name
        Name in the ``messages`` table: the queue's name, or ``topic.subscription``.
    env
        The simulation environment.
    recorder
        Where message rows are written.

    Delivery is FIFO among visible messages; a message that becomes visible again (after a
    visibility timeout or a retry backoff) joins the back. Receivers waiting for a message are
    served in the order they started waiting. Timers are plain SimPy timeouts with a callback,
    not Processes: one per receiver for visibility deadlines (see :class:`Receiver`), one per
    retry backoff; a timer whose delivery has since been superseded does nothing when it fires.
    """

    def __init__(self, name: str, env: simpy.Environment, recorder: Recorder) -> None:
        self.name = name
        self.env = env
        rows = recorder.table("messages")
        self._rows = rows
        self._code = rows.code("queue", name)
        # columns updated in place as a message moves (its row is current at the end)
        self._status = rows.column("status")
        self._first = rows.column("first_delivered")
        self._finished = rows.column("finished")
        self._attempts = rows.column("attempts")
        self._ready: deque[Message] = deque()  # may hold finished messages, skipped when popped
        self._live: deque[Message] = deque()  # in order of arrival; finished ones pruned lazily
        self._waiters: deque[tuple[Event, Receiver]] = deque()
        self.ready = 0
        self.delayed = 0
        self.in_flight = 0
        self.reserved = 0  # room promised to producers woken from a blocked publish
        #: called whenever a message is acknowledged or dead-lettered (room was freed)
        self.on_free: Callable[[], None] | None = None
        self.published_total = 0
        self.acked_total = 0
        self.dead_lettered_total = 0
        self.redelivered_total = 0
        self.expired_total = 0
        self.rejected_total = 0
        self.stale_acks_total = 0

    @property
    def stored(self) -> int:
        """Messages held and not yet finished: waiting, delayed or in flight (the lag)."""
        return self.ready + self.delayed + self.in_flight

    # ---- producer side ------------------------------------------------------------------
    def put(self, req: Request, op: str) -> Message:
        """Store a new message for ``req`` (no capacity check: admission is the caller's)."""
        now = self.env._now
        msg = Message(self._new_row(req.id, now, _QUEUED), req, op, now)
        self.published_total += 1
        self._live.append(msg)
        self._make_ready(msg)
        return msg

    def _new_row(self, request_id: int, now: float, status: int) -> int:
        """Add the message's row (its id is its row index)."""
        return self._rows.append(len(self._status), self._code, request_id, now, NAN, NAN, 0,
                                 status)

    def reject(self, req: Request) -> None:
        """Record a publish refused because the backlog was full."""
        now = self.env._now
        i = self._new_row(req.id, now, _REJECTED)
        self._finished[i] = now
        self.rejected_total += 1

    # ---- consumer side ------------------------------------------------------------------
    def take(self, receiver: Receiver) -> Delivery | None:
        """Deliver the next visible message to ``receiver`` now: ``(message, receipt)``, or
        None if there is none.

        Messages that have exhausted their attempts are dead-lettered on the way.
        """
        ready = self._ready
        while self.ready:
            msg = ready.popleft()
            if msg.state != READY:
                continue  # acknowledged by its latest receipt while visible again
            self.ready -= 1
            if self._deliver(msg, receiver):
                return msg, msg.attempts
        return None

    def wait(self, receiver: Receiver) -> Event:
        """Return an event that succeeds with the next delivery to ``receiver``, ``(message,
        receipt)``: the receipt is fixed at delivery, since the message may be delivered again
        before the receiver resumes.

        It succeeds with None if the wait is cancelled (:meth:`cancel`).
        """
        ev = Event(self.env)
        self._waiters.append((ev, receiver))
        return ev

    def cancel(self, receiver: Receiver) -> None:
        """Withdraw every wait of ``receiver`` (its consumer crashed); they succeed with None."""
        keep: deque[tuple[Event, Receiver]] = deque()
        for ev, r in self._waiters:
            if r is receiver:
                ev.succeed(None)
            else:
                keep.append((ev, r))
        self._waiters = keep

    def ack(self, msg: Message, receipt: int) -> bool:
        """Acknowledge delivery number ``receipt`` of ``msg``; False if it no longer counts."""
        state = msg.state
        if state >= ACKED or msg.attempts != receipt:
            self.stale_acks_total += 1
            return False
        if state == IN_FLIGHT:
            self.in_flight -= 1
            self._unhold(msg)
        elif state == READY:  # visible again but not yet received: the receipt is still latest
            self.ready -= 1
        else:
            self.delayed -= 1
        self._finish(msg, ACKED)
        return True

    def fail(self, msg: Message, receipt: int, delay: float | None,
             dead_letter: Backlog | None) -> None:
        """Delivery ``receipt`` of ``msg`` failed: make it visible again after ``delay``
        seconds, or dead-letter it (``delay`` None) into ``dead_letter``."""
        if msg.state != IN_FLIGHT or msg.attempts != receipt:
            self.stale_acks_total += 1
            return
        self.in_flight -= 1
        self._unhold(msg)
        if delay is None:
            self._dead(msg, dead_letter)
        elif delay <= 0:
            self._make_ready(msg)
        else:
            msg.state = DELAYED
            self.delayed += 1
            self._status[msg.id] = _QUEUED
            timer = Timeout(self.env, delay, (msg, receipt))
            timer.callbacks.append(self._undelay)

    # ---- gauges -------------------------------------------------------------------------
    def oldest_age(self) -> float:
        """Age of the oldest message not yet acknowledged or dead-lettered (0 if none)."""
        live = self._live
        while live and live[0].state >= ACKED:
            live.popleft()
        return self.env._now - live[0].enqueued_at if live else 0.0

    def gauges(self, label: str) -> Iterable[tuple[str, str, Callable[[], float]]]:
        """The backlog's gauges, each with ``label`` (a topic's subscription, else "")."""
        yield "depth", label, lambda: self.ready
        yield "delayed", label, lambda: self.delayed
        yield "in_flight", label, lambda: self.in_flight
        yield "lag", label, lambda: self.stored
        yield "oldest_age", label, self.oldest_age
        yield "published_total", label, lambda: self.published_total
        yield "acked_total", label, lambda: self.acked_total
        yield "dead_lettered_total", label, lambda: self.dead_lettered_total
        yield "redelivered_total", label, lambda: self.redelivered_total
        yield "expired_total", label, lambda: self.expired_total
        yield "rejected_total", label, lambda: self.rejected_total
        yield "stale_acks_total", label, lambda: self.stale_acks_total

    # ---- internals ----------------------------------------------------------------------
    def _make_ready(self, msg: Message) -> None:
        """Make ``msg`` visible: hand it to the first waiting receiver, or queue it."""
        waiters = self._waiters
        if waiters:
            ev, receiver = waiters[0]
            if self._deliver(msg, receiver):
                waiters.popleft()
                ev.succeed((msg, msg.attempts))
            return  # delivered, or dead-lettered (the receiver keeps waiting)
        msg.state = READY
        self.ready += 1
        self._status[msg.id] = _QUEUED
        self._ready.append(msg)

    def _deliver(self, msg: Message, receiver: Receiver) -> bool:
        """Deliver ``msg`` (not counted in any state) to ``receiver``; False if dead-lettered."""
        if msg.attempts >= receiver.max_attempts:
            self._dead(msg, receiver.dead_letter)
            return False
        i = msg.id
        msg.attempts += 1
        self._attempts[i] = msg.attempts
        if msg.attempts == 1:
            self._first[i] = self.env._now
        else:
            self.redelivered_total += 1
        if receiver.ack_on_receive:
            self._finish(msg, ACKED)
            return True
        msg.state = IN_FLIGHT
        self.in_flight += 1
        self._status[i] = _IN_FLIGHT
        msg.holder = receiver
        vt = receiver.visibility_timeout
        receiver.pending[msg] = (self.env._now + vt, msg.attempts)
        if not receiver.armed:
            receiver.armed = True
            Timeout(self.env, vt, receiver).callbacks.append(self._expire)
        return True

    @staticmethod
    def _unhold(msg: Message) -> None:
        holder = msg.holder
        if holder is not None:
            del holder.pending[msg]
            msg.holder = None

    def _expire(self, timer: Event) -> None:
        """Make visible again every message of the receiver whose deadline has passed."""
        receiver = cast(Receiver, timer.value)
        pending = receiver.pending
        now = self.env._now
        # only deliveries made before this expiry: one made by it (a redelivery to a waiting
        # worker of this receiver) waits out its own timeout, even one inside the tolerance
        for _ in range(len(pending)):
            msg, (deadline, receipt) = next(iter(pending.items()))
            if deadline > now + 1e-9:
                Timeout(self.env, deadline - now, receiver).callbacks.append(self._expire)
                return
            del pending[msg]
            msg.holder = None
            if msg.state == IN_FLIGHT and msg.attempts == receipt:
                self.in_flight -= 1
                self.expired_total += 1
                self._make_ready(msg)
        if pending:  # what this expiry delivered
            deadline = next(iter(pending.values()))[0]
            Timeout(self.env, max(deadline - now, 0.0), receiver).callbacks.append(self._expire)
            return
        receiver.armed = False

    def _undelay(self, timer: Event) -> None:
        msg, receipt = cast(tuple[Message, int], timer.value)
        if msg.state == DELAYED and msg.attempts == receipt:
            self.delayed -= 1
            self._make_ready(msg)

    def _finish(self, msg: Message, state: int) -> None:
        msg.state = state
        self._status[msg.id] = _ACKED if state == ACKED else _DEAD
        self._finished[msg.id] = self.env._now
        if state == ACKED:
            self.acked_total += 1
        else:
            self.dead_lettered_total += 1
        if self.on_free is not None:
            self.on_free()

    def _dead(self, msg: Message, sink: Backlog | None) -> None:
        self._finish(msg, DEAD)
        if sink is not None:
            sink.put(msg.req, msg.op)  # a dead-letter queue always accepts


class Gate:
    """Admission to bounded backlogs: a publish needs room in every one of them.

    Producers blocked on a full backlog wait in FIFO order; when room frees up, the first is
    woken with the room reserved for it, so a newcomer cannot overtake it.
    """

    def __init__(self, backlogs: list[Backlog], capacity: int) -> None:
        self.backlogs = backlogs
        self.capacity = capacity
        self.waiters: deque[Event] = deque()
        for b in backlogs:
            b.on_free = self._on_free

    def room(self) -> bool:
        """Whether every backlog can take one more message now."""
        cap = self.capacity
        return all(b.stored + b.reserved < cap for b in self.backlogs)

    def unreserve(self) -> None:
        """Release the room reserved for a woken producer (it is about to publish)."""
        for b in self.backlogs:
            b.reserved -= 1

    def _on_free(self) -> None:
        while self.waiters and self.room():
            for b in self.backlogs:
                b.reserved += 1
            self.waiters.popleft().succeed()
