"""What makes a service instance :class:`~simulator.components.base.Scalable`: leaving and
entering the endpoints, telling a drain when it holds nothing, failing what is left when the
grace period ends, and the counters the autoscaler reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING


class ScalableService:
    """Mixin of :class:`~simulator.components.service.service.Service` (its state is the
    service's: ``in_system``, the integrals, the fault state)."""

    _on_idle: Callable[[], None] | None = None

    if TYPE_CHECKING:
        from simulator.components.service.service import Service as _S

        in_service: bool
        in_system: int

    def prepare_scaling(self: _S) -> None:
        # requests in service race the crash event, so a drain's end can fail them
        self._crashable = True

    def set_in_service(self: _S, serving: bool) -> None:
        self.in_service = serving
        self._update_faulted()

    def held(self: _S) -> int:
        return self.in_system

    def on_idle(self, callback: Callable[[], None] | None) -> None:
        self._on_idle = callback

    def _idle(self) -> None:
        callback, self._on_idle = self._on_idle, None
        if callback is not None:
            callback()

    def stop_now(self: _S) -> None:
        # what is still held fails as a crash fails it; the slot is then empty and up again
        self.crash(False)
        self.up = True
        self._update_faulted()

    def scaling_reading(self: _S) -> tuple[float, float, float, float]:
        now = self.env._now
        return (self._busy_area + self.busy * now, float(self.workers),
                float(self.served_total + self.rejected_total + self.failed_total),
                self._system_area + self.in_system * now)
