"""What makes a service instance :class:`~simulator.components.base.Scalable`: leaving and
entering the endpoints, telling a drain when it holds nothing, failing what is left when the
grace period ends, and the counters the autoscaler reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import simpy


class ScalableService:
    """Mixin of :class:`~simulator.components.service.service.Service` (its state is the
    service's: ``in_system``, the integrals, the fault state)."""

    _on_idle: Callable[[], None] | None = None
    # the service's own state, declared for the type checker
    env: simpy.Environment
    up: bool
    in_service: bool
    in_system: int
    busy: int
    workers: int
    served_total: int
    rejected_total: int
    failed_total: int
    _crashable: bool
    _busy_area: float
    _system_area: float

    if TYPE_CHECKING:  # (FaultState's and the service's; never defined here: no shadowing)
        def _update_faulted(self) -> None: ...

        def crash(self, black_hole: bool) -> None: ...

    def prepare_scaling(self) -> None:
        """Requests in service race the crash event, so a drain's end can fail them."""
        self._crashable = True

    def set_in_service(self, serving: bool) -> None:
        """Enter or leave the endpoints (arrivals meanwhile are refused)."""
        self.in_service = serving
        self._update_faulted()

    def held(self) -> int:
        """Requests waiting or holding a worker."""
        return self.in_system

    def on_idle(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` when the instance next holds nothing."""
        self._on_idle = callback

    def _idle(self) -> None:
        callback, self._on_idle = self._on_idle, None
        if callback is not None:
            callback()

    def stop_now(self) -> None:
        """What is still held fails as a crash fails it; the slot is then empty and up."""
        self.crash(False)
        self.up = True
        self._update_faulted()

    def scaling_reading(self) -> tuple[float, float, float, float]:
        """(busy worker-seconds, workers, completed requests, request-seconds held)."""
        now = self.env.now
        return (self._busy_area + self.busy * now, float(self.workers),
                float(self.served_total + self.rejected_total + self.failed_total),
                self._system_area + self.in_system * now)
