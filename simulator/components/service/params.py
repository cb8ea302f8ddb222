"""Parameters of ``kind: service``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from simulator.autoscaling.params import Autoscaling
from simulator.calls import Step, step_references
from simulator.components.params import ComponentParams, KeyPath
from simulator.components.service.admission import Admission, ShedAdmission
from simulator.components.service.internals_params import Internals
from simulator.components.service.queueing import (
    FifoQueue,
    LifoQueue,
    ProcessorSharing,
    QueueSpec,
)
from simulator.distributions import Constant, Distribution
from simulator.settings import refuse_ignored
from simulator.units import format_duration


class ServiceParams(ComponentParams):
    """Parameters of ``kind: service``.

    Parameters
    ----------
    workers
        Requests one instance serves at once (threads, event-loop slots).
    queue_limit
        Requests allowed to wait for a worker at one instance; an arrival that finds the queue
        full is rejected at once (status ``rejected``). Omitted: unbounded. A queue limit of
        ``K - workers`` gives the M/M/c/K model. Shorthand for ``queue: {limit: ...}``.
    queue_discipline
        ``fifo`` or ``lifo`` (newest waiting request served first). Shorthand for
        ``queue: {discipline: ...}``.
    queue
        The queue discipline and its settings (:mod:`simulator.components.service.queueing`):
        ``{discipline: fifo | lifo | priority | codel | adaptive_lifo | processor_sharing,
        limit: ...}``. Omitted: ``queue_discipline`` and ``queue_limit``.
    service_time
        Distribution of the time a worker spends on one request (seconds).
    service_time_by_op
        Per-operation service-time distributions, overriding ``service_time``.
    speed
        Speed factor of each instance (one number for all, or one per replica); service time
        is divided by it, so ``2`` serves twice as fast.
    hold_worker
        Whether a worker stays busy while the request's downstream calls are in progress
        (thread-per-request servers: true; asynchronous servers and pipelines: false).
    calls
        Per operation, the steps taken after the local work, in sequence: a call to a
        component, or ``{parallel: [...]}``. The key ``"*"`` applies to operations not listed.
    on_failure
        Per operation, compensating steps run when a step of ``calls`` fails (a saga's
        compensation: release the stock when the payment fails). Their outcome is recorded in
        their own spans; the request keeps the status of the failed step.
    admission
        Which arrivals an instance refuses at once, status ``rejected``
        (:mod:`simulator.components.service.admission`): ``{policy: shed, max_queue_time,
        max_utilization, window}`` (load shedding, by priority class), or an adaptive
        concurrency limit on the requests in flight at one instance, ``{policy: aimd | vegas |
        gradient2 | adaptive_concurrency, ...}`` (Netflix concurrency-limits; Envoy's adaptive
        concurrency filter). Omitted: every arrival is admitted.
    autoscaling
        An autoscaler for the instances (:class:`~simulator.autoscaling.params.Autoscaling`,
        the Kubernetes HPA's semantics); ``replicas`` is then the count at the start.
    internals
        Opt-in step-based model (:mod:`~simulator.components.service.internals_params`):
        cores, a threading model (thread pool or event loop), per-operation steps (cpu, io,
        memory, calls), memory pressure and GC pauses. It replaces ``workers``,
        ``service_time``, ``calls`` and ``hold_worker``.
    """

    kind: Literal["service"] = "service"
    workers: int = Field(1, ge=1, le=1_000_000)
    queue_limit: int | None = Field(None, ge=0)
    queue_discipline: Literal["fifo", "lifo"] = "fifo"
    queue: QueueSpec | None = None
    service_time: Distribution = Field(default_factory=lambda: Constant(value=0.0))
    service_time_by_op: dict[str, Distribution] = Field(default_factory=dict)
    speed: float | list[float] = 1.0
    hold_worker: bool = True
    calls: dict[str, list[Step]] = Field(default_factory=dict)
    on_failure: dict[str, list[Step]] = Field(default_factory=dict)
    admission: Admission | None = None
    autoscaling: Autoscaling | None = None
    internals: Internals | None = None

    reference_labels: ClassVar[dict[str, str]] = {'on_failure': 'on failure'}

    def diagram_lines(self) -> list[str]:
        if self.internals is not None:
            n = self.internals
            model = ("event loop" if n.threading == "event_loop"
                     else f"{n.thread_count} threads")
            return [f"{n.cores} core{'s' if n.cores != 1 else ''}, {model}"]
        plural = "s" if self.workers != 1 else ""
        lines = [f"{self.workers} worker{plural}, {format_duration(self.service_time.mean)} mean"]
        if isinstance(self.speed, list):
            lines.append(f"speeds {min(self.speed):g} to {max(self.speed):g}")
        if self.autoscaling is not None:
            lines.append(f"autoscaled to {self.autoscaling.max_replicas}")
        extras = []
        discipline = self.queue_spec().discipline
        if discipline != "fifo":
            extras.append(discipline.replace("_", " ") + " queue")
        if self.admission is not None:
            extras.append(f"admission: {self.admission.policy}")
        if extras:
            lines.append(", ".join(extras))
        return lines

    @model_validator(mode="after")
    def _check(self) -> Self:
        speeds = self.speed if isinstance(self.speed, list) else [self.speed]
        if isinstance(self.speed, list) and len(self.speed) != self.instance_count:
            raise ValueError(
                f"speed lists {len(self.speed)} values but replicas is {self.instance_count}"
                + (" (autoscaling.max_replicas)" if self.autoscaling is not None else "")
            )
        if self.autoscaling is not None and self.replicas > self.autoscaling.max_replicas:
            raise ValueError(f"replicas ({self.replicas}) is above autoscaling.max_replicas "
                             f"({self.autoscaling.max_replicas})")
        if self.autoscaling is not None and self.autoscaling.reads_queue:
            raise ValueError("autoscaling: a queue_length metric reads a consumer's source; "
                             "a service has none (scale it on utilization, rps or concurrency)")
        if any(s <= 0 for s in speeds):
            raise ValueError("speed must be > 0")
        refuse_ignored(self, [("hold_worker", bool(self.calls),
                               "by a service without calls (a worker is free once the local "
                               "work is done); it applies to a service with calls")])
        if self.queue is not None:
            refuse_ignored(self, [
                (name, False, f"when a queue block is given; write queue.{short} instead")
                for name, short in (("queue_limit", "limit"), ("queue_discipline", "discipline"))])
            if isinstance(self.queue, ProcessorSharing):
                refuse_ignored(self, [("hold_worker", False,
                                       "by processor sharing (a request leaves the shared "
                                       "capacity when its local work is done)")])
                if isinstance(self.admission, ShedAdmission) and \
                        self.admission.max_queue_time is not None:
                    raise ValueError("admission.max_queue_time: nothing waits under processor "
                                     "sharing; shed by max_utilization or use a concurrency "
                                     "limit")
        if self.internals is not None:
            self._check_internals(self.internals)
        for op in self.on_failure:
            if not (op in self.calls or "*" in self.calls or (op == "*" and self.calls)):
                raise ValueError(f"on_failure: operation {op!r} makes no calls, so there is no "
                                 "failed step to compensate; list its steps in calls")
        return self

    def _check_internals(self, internals: Internals) -> None:
        why = "by internals (its steps and cores replace it)"
        refuse_ignored(self, [(name, False, why) for name in (
            "workers", "service_time", "service_time_by_op", "calls", "on_failure",
            "hold_worker")])
        if internals.threading == "event_loop":
            refuse_ignored(self, [(name, False, "by internals.threading: event_loop (nothing "
                                   "waits for a thread); it applies to a thread_pool")
                                  for name in ("queue", "queue_limit", "queue_discipline")])
        spec = self.queue_spec()
        if isinstance(spec, ProcessorSharing) or getattr(spec, "preemptive", False):
            raise ValueError("queue: processor sharing and preemptive priority do not apply "
                             "to internals (the cores are shared by the thread pool itself)")

    def references(self) -> Iterable[tuple[KeyPath, str]]:
        for block in ("calls", "on_failure"):
            for op, steps in getattr(self, block).items():
                yield from step_references(steps, (block, op))
        if self.internals is not None:
            yield from self.internals.references()

    def queue_spec(self) -> QueueSpec:
        """The queue block, or the one ``queue_discipline`` and ``queue_limit`` stand for."""
        if self.queue is not None:
            return self.queue
        if self.queue_discipline == "lifo":
            return LifoQueue(limit=self.queue_limit)
        return FifoQueue(limit=self.queue_limit)

    def speed_of(self, index: int) -> float:
        """Speed factor of replica ``index``."""
        return self.speed[index] if isinstance(self.speed, list) else self.speed
