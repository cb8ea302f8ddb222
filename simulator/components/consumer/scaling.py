"""What makes a consumer instance :class:`~simulator.components.base.Scalable`: starting and
stopping its workers, telling a drain when it processes nothing, abandoning what is left when
the grace period ends, and what the autoscaler reads (its counters and its source's messages).

Modelling assumptions: a consumer leaving service (a Kubernetes pod sent SIGTERM) stops
receiving at once (its long polls are withdrawn) and finishes the messages it is processing;
those still in progress when ``termination_grace_period`` ends are abandoned as a crash
abandons them: they stay in flight until their visibility timeout brings them back. A stopped
instance started again gets fresh workers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import simpy

    from simulator.components.queue.backlog import Backlog, Receiver


class ScalableConsumer:
    """Mixin of :class:`~simulator.components.consumer.consumer.Consumer` (its state is the
    consumer's: ``busy``, the integrals, the epoch its workers compare)."""

    #: False while an autoscaled instance is stopped or draining
    in_service: bool = True
    _on_idle: Callable[[], None] | None = None
    # the consumer's own state, declared for the type checker
    env: simpy.Environment
    up: bool
    busy: int
    concurrency: int
    processed_total: int
    failed_total: int
    _busy_area: float
    _epoch: int
    _track: bool
    _backlog: Backlog | None
    _receiver: Receiver | None

    if TYPE_CHECKING:  # (the consumer's; never defined here: no shadowing)
        def start(self) -> None: ...

        def crash(self, black_hole: bool) -> None: ...

    def prepare_scaling(self) -> None:
        """Deliveries in progress are tracked, so that a drain's end can abandon them."""
        self._track = True

    def set_in_service(self, serving: bool) -> None:
        """Start fresh workers (True), or stop receiving (False): waiting workers leave at
        once, busy ones when their message is done (:meth:`leaving`)."""
        if serving == self.in_service:
            return
        self.in_service = serving
        if serving:
            if self.up:
                self.start()
            return
        if self._backlog is not None and self._receiver is not None:  # (unwired: at build)
            self._backlog.cancel(self._receiver)
        if not self.busy:
            self._epoch += 1  # no worker of this service period may resume (a reconnect wait)

    def leaving(self) -> None:
        """A worker stops between messages (the instance is out of service); the last one
        busy to stop ends a drain."""
        if not self.busy:
            self._epoch += 1
            callback, self._on_idle = self._on_idle, None
            if callback is not None:
                callback()

    def held(self) -> int:
        """Messages being processed."""
        return self.busy

    def on_idle(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` when the instance next processes nothing."""
        self._on_idle = callback

    def stop_now(self) -> None:
        """Abandon what is still processed as a crash does; the instance is then empty and up."""
        self.crash(False)
        self.up = True

    def scaling_reading(self) -> tuple[float, float, float, float]:
        """(busy worker-seconds, workers, messages processed, message-seconds held)."""
        now = self.env.now
        busy = self._busy_area + self.busy * now
        return (busy, float(self.concurrency), float(self.processed_total + self.failed_total),
                busy)

    def scaling_queue(self) -> tuple[int, int, int]:
        """The source's messages now: (visible, in flight, delayed before a retry)."""
        b = self._backlog
        assert b is not None
        return b.ready, b.in_flight, b.delayed
