"""The autoscaler of one component: a SimPy process that syncs every ``sync_period``.

Each sync reads every ready instance's cumulative counters
(:meth:`~simulator.components.base.Scalable.scaling_reading`), differences them over the time
since the previous reading (since the instance became ready, if later), hands the values to
:class:`~simulator.autoscaling.hpa.Hpa` and applies its decision. Scaling up takes the lowest
stopped instance and provisions it (``provisioning_delay``, billed) before it enters the
group's :class:`~simulator.components.base.Membership`; scaling down cancels instances still
provisioning first (the newest first), then drains ready ones from the highest index: out of
the endpoints at once, stopped when it holds nothing or when ``termination_grace_period``
ends (what it still holds then fails, as a crash fails it).

Modelling assumptions: the metrics pipeline has no delay of its own (the HPA reads a value
averaged over the last sync period); an instance needs a free slot of the ``max_replicas``
built, so a replica asked for while every slot is still draining starts when one stops.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import numpy as np
import simpy

from simulator.autoscaling import METRICS, REASONS, STATES
from simulator.autoscaling.hpa import Decision, Hpa, Sample, milli, queue_messages
from simulator.components.base import BuildContext, Component, Membership, Scalable

if TYPE_CHECKING:
    from simulator.autoscaling.params import Autoscaling, ScalingMetric
    from simulator.scenario import Scenario

_PROVISIONING, _READY, _DRAINING, _STOPPED = range(4)


@runtime_checkable
class ColdStarting(Protocol):
    """A scalable instance that can start slow (a service): ``cold_start``."""

    def cold_start(self, initial_speed: float, ramp: float) -> None:
        """Run at ``initial_speed`` now, rising linearly to full speed over ``ramp`` s."""


@runtime_checkable
class QueueReader(Protocol):
    """A scalable instance with a source (a consumer): what a ``queue_length`` metric reads."""

    def scaling_queue(self) -> tuple[int, int, int]:
        """The source's messages now: (visible, in flight, delayed before a retry)."""


class Autoscaler:
    """The autoscaler of one group (see the module docstring).

    Parameters
    ----------
    group
        The component's name.
    members
        Its built instances (``max_replicas``), the first ``replicas`` in service.
    spec
        The validated ``autoscaling`` block.
    initial
        Replicas in service at time 0.
    ctx
        The build context (its ``membership`` holds the group's).
    """

    def __init__(self, group: str, members: list[Component], spec: Autoscaling, initial: int,
                 ctx: BuildContext) -> None:
        self.group = group
        self.spec = spec
        self.env = ctx.env
        self.members = [cast(Scalable, m) for m in members]
        self.membership: Membership = ctx.membership[group]
        self.hpa = Hpa(spec)
        self._bounds = (-1, -1)  # the bounds the HPA was last given (see _set_bounds)
        self._rec = ctx.recorder
        self._span_codes: frozenset[int] | None = None  # this group's span instance codes
        self._span_cursor = 0  # spans before this index were read by an earlier sync
        self._last_active = 0.0  # KEDA's lastActiveTime (initialCooldownPeriod 0)
        self.state = [_READY if i < initial else _STOPPED for i in range(len(members))]
        self.replicas = initial  # the HPA's currentReplicas: the last desired count
        self.unplaced = 0  # replicas asked for that wait for a slot
        self._since: list[float] = [0.0] * len(members)
        self._last: list[tuple[float, float, float, float]] = [
            m.scaling_reading() for m in self.members]
        self._token = [0] * len(members)  # bumped to cancel a provisioning in progress
        self._states = ctx.recorder.table("instance_states")
        self._events = ctx.recorder.table("scaling_events")
        self._group_code = self._states.code("component", group)
        self._event_group = self._events.code("component", group)
        self._codes = [self._states.code("instance", m.name) for m in members]
        for m in self.members:
            m.prepare_scaling()
        for i in range(initial):
            self._record(i, _READY)

    def start(self) -> None:
        """Start the sync loop (at ``sync_period``, ``2 sync_period``, ...)."""
        self.env.process(self._loop())

    # ---- the sync loop ------------------------------------------------------------------
    def _loop(self) -> Generator[simpy.Event, Any, None]:
        k = 0
        while True:
            k += 1
            at = k * self.spec.sync_period  # multiples, free of accumulated rounding
            yield self.env.timeout(at - self.env.now)
            self.sync()

    def sample(self) -> list[Sample | None]:
        """One :class:`Sample` per metric over the time since the previous reading."""
        now = self.env.now
        busy: list[int] = []
        cap: list[int] = []
        rps: list[int] = []
        conc: list[int] = []
        pending = sum(1 for s in self.state if s == _PROVISIONING)
        for i, m in enumerate(self.members):
            if self.state[i] != _READY:
                continue
            reading = m.scaling_reading()
            dt = now - self._since[i]
            last = self._last[i]
            self._last[i], self._since[i] = reading, now
            if dt <= 0:  # ready this very instant: no window yet, counted as starting
                pending += 1
                continue
            busy.append(milli((reading[0] - last[0]) / dt))
            cap.append(milli(reading[1]))
            rps.append(milli((reading[2] - last[2]) / dt))
            conc.append(milli((reading[3] - last[3]) / dt))
        out: list[Sample | None] = []
        latencies = self._new_latencies() if any(
            m.type == "latency" for m in self.spec.metrics) else None
        for metric in self.spec.metrics:
            if metric.type == "queue_length":
                out.append(Sample((milli(self.queue_length(metric)),), pending))
                continue
            if metric.type == "latency":
                assert latencies is not None
                out.append(Sample((milli(float(np.percentile(latencies, metric.percentile))),),
                                  pending, ready=len(busy)) if len(latencies) and busy else None)
                continue
            values = {"utilization": busy, "rps": rps, "concurrency": conc}[metric.type]
            out.append(Sample(tuple(values), pending, tuple(cap)) if values else None)
        return out

    def _new_latencies(self) -> np.ndarray:
        """Latencies (end - arrival, s) of this group's spans recorded since the last read:
        those that ended within the sync period (spans are appended as they end)."""
        rec = self._rec
        if self._span_codes is None:
            self._span_codes = frozenset(i for i, (group, _) in enumerate(rec.instances)
                                         if group == self.group)
        start, stop = self._span_cursor, len(rec.span_end)
        self._span_cursor = stop
        codes = np.asarray(rec.span_instance[start:stop])
        mine = np.isin(codes, np.fromiter(self._span_codes, dtype=codes.dtype))
        end = np.asarray(rec.span_end[start:stop])[mine]
        return end - np.asarray(rec.span_arrival[start:stop])[mine]

    def queue_length(self, metric: ScalingMetric) -> int:
        """The messages a ``queue_length`` metric counts now (every instance reads the same
        source: the first one's)."""
        reader = self.members[0]
        assert isinstance(reader, QueueReader)
        return queue_messages(metric, *reader.scaling_queue())

    def sync(self) -> None:
        """Evaluate the metrics and apply the HPA's decision (and, with ``min_replicas: 0``,
        KEDA's activation and cooldown around it)."""
        now = self.env.now
        low = self._set_bounds(now)
        if not low and self._keda(now):
            return
        d = self.hpa.decide(now, self.replicas, self.sample())
        self._apply(d)

    def _set_bounds(self, now: float) -> int:
        """Give the HPA the bounds in force at ``now`` (``schedule``); return the minimum.
        The HPA never goes below one: a count of zero is KEDA's (activation, cooldown)."""
        low, high = self.spec.bounds_at(now)
        if (low, high) != self._bounds:
            self._bounds = (low, high)
            self.hpa.spec = self.spec.model_copy(update={"min_replicas": max(1, low),
                                                         "max_replicas": high})
        return low

    def _keda(self, now: float) -> bool:
        """KEDA's scale to and from zero (``scale_handler``'s activity check): active when a
        ``queue_length`` metric exceeds its ``activation_queue_length``; at zero, activity
        scales to one; inactive for ``cooldown_period`` since the last activity, to zero.
        True when it decided (the HPA does not run: it is off at zero)."""
        active, which, value = False, -1, math.nan
        for i, metric in enumerate(self.spec.metrics):
            if metric.type != "queue_length":
                continue
            n = self.queue_length(metric)
            if which < 0 or (n > metric.activation_queue_length and not active):
                which, value = i, float(n)  # the first active one, else the first one
            active = active or n > metric.activation_queue_length
        if active:
            self._last_active = now
        if self.replicas == 0:
            if active:
                self._apply(Decision(0, 1, 1, 1, "Activated", which, value))
            return True
        if not active and now - self._last_active >= self.spec.cooldown_period:
            self._apply(Decision(self.replicas, 0, 0, 0, "CooledDown", which, value))
            return True
        return False

    def _apply(self, d: Decision) -> None:
        now = self.env.now
        if d.desired == d.current:
            return
        self._events.append(now, self._event_group, d.current, d.desired, d.proposal,
                            d.stabilized, REASONS.index(d.reason),
                            METRICS.index(self.spec.metrics[d.metric].type if d.metric >= 0
                                          else "none"), d.value)
        self.replicas = d.desired
        if d.desired > d.current:
            self.unplaced += d.desired - d.current
            self._place()
        else:
            self._remove(d.current - d.desired)

    # ---- starting and stopping instances ------------------------------------------------
    def _place(self) -> None:
        for i, s in enumerate(self.state):
            if not self.unplaced:
                return
            if s == _STOPPED:
                self.unplaced -= 1
                self._record(i, _PROVISIONING)
                self._token[i] += 1
                self.env.process(self._provision(i, self._token[i]))

    def _remove(self, n: int) -> None:
        take = min(n, self.unplaced)
        self.unplaced -= take
        n -= take
        starting = sorted((i for i, s in enumerate(self.state) if s == _PROVISIONING),
                          key=lambda i: (self._since[i], i), reverse=True)
        for i in starting[:n]:
            self._token[i] += 1  # cancels its provisioning
            self._record(i, _STOPPED)
        n -= len(starting[:n])
        ready = [i for i, s in enumerate(self.state) if s == _READY]
        for i in reversed(ready[len(ready) - n:] if n else []):
            self.env.process(self._drain(i))
        if starting:
            self._place()  # a slot freed by a cancellation may serve a replica still unplaced

    def _provision(self, i: int, token: int) -> Generator[simpy.Event, Any, None]:
        self._since[i] = self.env.now  # (orders cancellations: newest first)
        yield self.env.timeout(self.spec.provisioning_delay)
        if self._token[i] != token:
            return
        m = self.members[i]
        self._last[i], self._since[i] = m.scaling_reading(), self.env.now
        self._record(i, _READY)
        m.set_in_service(True)
        self.membership.changed()
        cold = self.spec.cold_start
        if cold is not None and isinstance(m, ColdStarting):
            m.cold_start(cold.initial_speed, cold.ramp)

    def _drain(self, i: int) -> Generator[simpy.Event, Any, None]:
        m = self.members[i]
        self._record(i, _DRAINING)
        m.set_in_service(False)
        self.membership.changed()
        if m.held():
            idle = simpy.Event(self.env)
            m.on_idle(lambda: _succeed(idle))
            yield simpy.AnyOf(self.env, (idle, self.env.timeout(
                self.spec.termination_grace_period)))
            if not idle.triggered:
                m.on_idle(None)
                m.stop_now()
        self._record(i, _STOPPED)
        self._place()

    def _record(self, i: int, state: int) -> None:
        self.state[i] = state
        self._states.append(self.env.now, self._group_code, self._codes[i], state)


def _succeed(event: simpy.Event) -> None:
    event.succeed()


def start_autoscalers(scenario: Scenario, groups: dict[str, list[Component]],
                      ctx: BuildContext) -> list[Autoscaler]:
    """Build and start one autoscaler per component with an ``autoscaling`` block."""
    out = []
    for name, params in scenario.components.items():
        spec = getattr(params, "autoscaling", None)
        if spec is None:
            continue
        scaler = Autoscaler(name, groups[name], spec, params.replicas, ctx)
        scaler.start()
        out.append(scaler)
    return out


__all__ = ["STATES", "Autoscaler", "start_autoscalers"]
