"""What makes a service instance :class:`~simulator.components.base.Scalable`: leaving and
entering the endpoints, telling a drain when it holds nothing, failing what is left when the
grace period ends, the counters the autoscaler reads, and a cold start (a new instance slow
at first)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy

#: a cold start's linear ramp is applied in this many equal steps
RAMP_STEPS = 20


class ScalableService:
    """Mixin of :class:`~simulator.components.service.service.Service` (its state is the
    service's: ``in_system``, the integrals, the fault state)."""

    _on_idle: Callable[[], None] | None = None
    _warm_token = 0  # bumped to end a cold start's ramp early
    _full_inv_speed: float | None = None  # 1 / speed at full speed (set by a first cold start)
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
    _inv_speed: float

    if TYPE_CHECKING:  # (FaultState's and the service's; never defined here: no shadowing)
        def _update_faulted(self) -> None: ...

        def crash(self, black_hole: bool) -> None: ...

    def prepare_scaling(self) -> None:
        """Requests in service register with the instance as under a crash fault, so a
        drain's end can fail them."""
        self._crashable = True

    def set_in_service(self, serving: bool) -> None:
        """Enter or leave the endpoints (arrivals meanwhile are refused)."""
        self.in_service = serving
        if not serving and self._full_inv_speed is not None:  # a ramp in progress ends
            self._warm_token += 1
            self._inv_speed = self._full_inv_speed
        self._update_faulted()

    def cold_start(self, initial_speed: float, ramp: float) -> None:
        """Serve at ``initial_speed`` x the instance's speed now, rising linearly to its full
        speed over ``ramp`` seconds: :data:`RAMP_STEPS` steps of ``ramp / RAMP_STEPS``, each
        at the speed of its midpoint. A request's work is set by the speed when it arrives
        (the service draws it then)."""
        if self._full_inv_speed is None:
            self._full_inv_speed = self._inv_speed
        self._warm_token += 1
        self.env.process(self._ramp(initial_speed, ramp, self._warm_token))

    def _ramp(self, initial: float, ramp: float, token: int
              ) -> Generator[simpy.Event, Any, None]:
        full = self._full_inv_speed
        assert full is not None
        for k in range(RAMP_STEPS):
            self._inv_speed = full / (initial + (1.0 - initial) * (k + 0.5) / RAMP_STEPS)
            yield simpy.Timeout(self.env, ramp / RAMP_STEPS)
            if self._warm_token != token:
                return
        self._inv_speed = full

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
