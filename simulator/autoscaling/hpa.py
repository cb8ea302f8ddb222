"""The HorizontalPodAutoscaler's arithmetic, free of SimPy (tested step by step).

It follows the controller in ``kubernetes/kubernetes`` ``pkg/controller/podautoscaler``:
``replica_calculator.go`` (the per-metric recommendation, the tolerance, pods not ready yet)
and ``horizontal.go`` (the largest recommendation over the metrics, the stabilisation windows,
the behaviour's rate limits, ``min``/``max``). Metric values are taken as the HPA takes them,
in integer milli-units (utilisation in integer percent), so ``ceil`` sees what Kubernetes
would and no float noise flips a count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from simulator.autoscaling.params import (
    Autoscaling,
    ScaleDownRules,
    ScaleUpRules,
    ScalingMetric,
)


def milli(value: float) -> int:
    """A quantity in milli-units, rounded up as ``resource.Quantity.MilliValue`` does (after
    discarding float noise below a millionth of a milli-unit)."""
    return math.ceil(round(value * 1000.0, 6))


@dataclass(frozen=True)
class Sample:
    """One metric over the last sync period: the value of every ready instance (milli-units:
    for utilisation the busy milli-workers, with ``capacity`` the milli-workers of each) and
    how many instances are still provisioning (the HPA's pending pods)."""

    values: tuple[int, ...]
    pending: int = 0
    capacity: tuple[int, ...] = ()
    ready: int = 0  # (an Object metric's one value: the ready instances it is applied to)


@dataclass(frozen=True)
class Decision:
    """One sync: the count before and after, why, and the metric that set the proposal."""

    current: int
    desired: int
    proposal: int
    stabilized: int
    reason: str
    metric: int  # index of the metric that gave the proposal (-1: none)
    value: float  # its current value (utilisation percent, else the average per instance)


def utilization_replicas(current: int, s: Sample, target_percent: float,
                         tolerance: float) -> tuple[int, float]:
    """``GetResourceReplicas``: (recommendation, current utilisation in percent)."""
    ready = len(s.values)
    util = (sum(s.values) * 100) // sum(s.capacity)
    ratio = util / target_percent
    if not (s.pending and ratio > 1.0):
        if abs(1.0 - ratio) <= tolerance:
            return current, util
        return math.ceil(ratio * ready), util
    # a scale-up with instances still starting: count them as idle (0 % of their request)
    per = s.capacity[0] if s.capacity else 0
    new_ratio = ((sum(s.values) * 100) // (sum(s.capacity) + s.pending * per)) / target_percent
    if abs(1.0 - new_ratio) <= tolerance or new_ratio < 1.0:
        return current, util
    proposal = math.ceil(new_ratio * (ready + s.pending))
    if proposal < current:  # the extra instances would turn it into a scale-down
        return current, util
    return proposal, util


def average_value_replicas(current: int, s: Sample, target_milli: int,
                           tolerance: float) -> tuple[int, float]:
    """``calcPlainMetricReplicas`` (a Pods metric, ``AverageValue``): (recommendation,
    current average per instance, in the metric's units)."""
    ready = len(s.values)
    average = sum(s.values) // ready
    ratio = average / target_milli
    if not (s.pending and ratio > 1.0):
        if abs(1.0 - ratio) <= tolerance:
            return current, average / 1000.0
        return math.ceil(ratio * ready), average / 1000.0
    new_ratio = (sum(s.values) // (ready + s.pending)) / target_milli
    if abs(1.0 - new_ratio) <= tolerance or new_ratio < 1.0:
        return current, average / 1000.0
    return math.ceil(new_ratio * (ready + s.pending)), average / 1000.0


def queue_messages(metric: ScalingMetric, visible: int, in_flight: int, delayed: int) -> int:
    """The messages a ``queue_length`` metric counts: the visible ones, plus those in flight
    (``scale_on_in_flight``) and those delayed before a retry (``scale_on_delayed``)."""
    return (visible + (in_flight if metric.scale_on_in_flight else 0)
            + (delayed if metric.scale_on_delayed else 0))


def external_average_replicas(current: int, s: Sample, target_milli: int,
                              tolerance: float) -> tuple[int, float]:
    """``GetExternalPerPodMetricReplicas`` (an External metric, ``AverageValue``, as KEDA's
    scalers feed it): ``s.values`` holds the one external value (the queue's messages, in
    milli-units); (recommendation, the value per current replica). The ratio is over the
    current count (``status.replicas``), not the ready instances; no pending-pod correction."""
    usage = sum(s.values)
    ratio = usage / (target_milli * current)
    per = math.ceil(usage / current) / 1000.0
    if abs(1.0 - ratio) <= tolerance:
        return current, per
    return math.ceil(usage / target_milli), per


def object_value_replicas(current: int, s: Sample, target_milli: int,
                          tolerance: float) -> tuple[int, float]:
    """``GetObjectMetricReplicas`` with a ``Value`` target (``getUsageRatioReplicaCount``):
    ``s.values`` holds the one value (milli-units); (recommendation, the value)."""
    usage = sum(s.values)
    ratio = usage / target_milli
    if abs(1.0 - ratio) <= tolerance:
        return current, usage / 1000.0
    return math.ceil(ratio * s.ready), usage / 1000.0


@dataclass
class Hpa:
    """The state one HPA keeps between syncs: past recommendations and scale events.

    Parameters
    ----------
    spec
        The validated ``autoscaling`` block.
    """

    spec: Autoscaling
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[tuple[float, int]] = field(default_factory=list)
    down_events: list[tuple[float, int]] = field(default_factory=list)

    def decide(self, now: float, current: int, samples: list[Sample | None]) -> Decision:
        """One sync at ``now`` with ``current`` replicas (the last desired count) and one
        sample per metric of the spec (None: no ready instance has a value yet)."""
        spec = self.spec
        if current > spec.max_replicas or current < spec.min_replicas:
            desired = min(max(current, spec.min_replicas), spec.max_replicas)
            reason = "TooManyReplicas" if current > spec.max_replicas else "TooFewReplicas"
            self._store(now, current, desired)
            return Decision(current, desired, desired, desired, reason, -1, math.nan)
        proposal, which, value = -1, -1, math.nan
        for i, (metric, s) in enumerate(zip(spec.metrics, samples, strict=True)):
            if s is None or not s.values:
                continue
            if metric.type == "utilization":
                assert metric.average_utilization is not None
                n, v = utilization_replicas(current, s, metric.average_utilization,
                                            spec.tolerance)
            elif metric.type == "latency":
                n, v = object_value_replicas(current, s, milli(metric.target), spec.tolerance)
            elif metric.type == "queue_length":
                n, v = external_average_replicas(current, s, milli(metric.target),
                                                 spec.tolerance)
            else:
                n, v = average_value_replicas(current, s, milli(metric.target), spec.tolerance)
            if n > proposal:
                proposal, which, value = n, i, v
        if proposal < 0:  # no metric at all: the HPA cannot compute and leaves the count
            return Decision(current, current, current, current, "FailedGetMetrics", -1,
                            math.nan)
        stabilized = self._stabilize(now, current, proposal)
        desired, reason = self._limit(now, current, stabilized)
        self._store(now, current, desired)
        return Decision(current, desired, proposal, stabilized, reason, which, value)

    def _stabilize(self, now: float, current: int, proposal: int) -> int:
        """``stabilizeRecommendationWithBehaviors``: the current count moved no further than
        the lowest recommendation of the scale-up window and the highest of the scale-down
        window (this one included); then this recommendation is remembered."""
        b = self.spec.behavior
        up_cut = now - b.scale_up.stabilization_window_seconds
        down_cut = now - b.scale_down.stabilization_window_seconds
        up, down = proposal, proposal
        for at, rec in self.recommendations:
            if at > up_cut:
                up = min(up, rec)
            if at > down_cut:
                down = max(down, rec)
        keep = min(up_cut, down_cut)  # older than both windows: never read again
        self.recommendations = [(at, r) for at, r in self.recommendations if at > keep]
        self.recommendations.append((now, proposal))
        return min(max(current, up), down)

    def _limit(self, now: float, current: int, desired: int) -> tuple[int, str]:
        """``convertDesiredReplicasWithBehaviorRate``: the policies' limit, then min/max."""
        spec = self.spec
        if desired > current:
            limit = max(_up_limit(now, current, self.up_events, self.down_events,
                                  spec.behavior.scale_up), current)
            if spec.max_replicas > limit:
                ceiling, reason = limit, "ScaleUpLimit"
            else:
                ceiling, reason = spec.max_replicas, "TooManyReplicas"
            if desired > ceiling:
                return ceiling, reason
        elif desired < current:
            limit = min(_down_limit(now, current, self.up_events, self.down_events,
                                    spec.behavior.scale_down), current)
            if spec.min_replicas < limit:
                floor, reason = limit, "ScaleDownLimit"
            else:
                floor, reason = spec.min_replicas, "TooFewReplicas"
            if desired < floor:
                return floor, reason
        return desired, "DesiredWithinRange"

    def _store(self, now: float, old: int, new: int) -> None:
        if new > old:
            self.up_events.append((now, new - old))
        elif new < old:
            self.down_events.append((now, old - new))


def _changed(period: float, now: float, events: list[tuple[float, int]]) -> int:
    """``getReplicasChangePerPeriod``: the change of the events strictly within the period."""
    return sum(n for at, n in events if at > now - period)


def _up_limit(now: float, current: int, ups: list[tuple[float, int]],
              downs: list[tuple[float, int]], rules: ScaleUpRules) -> int:
    """``calculateScaleUpLimitWithScalingRules``."""
    if rules.select_policy == "Disabled":
        return current
    pick = min if rules.select_policy == "Min" else max
    result: int | None = None
    for p in rules.policies:
        start = current - _changed(p.period_seconds, now, ups) + _changed(p.period_seconds,
                                                                          now, downs)
        proposed = (start + p.value if p.type == "Pods"
                    else math.ceil(start * (1 + p.value / 100)))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def _down_limit(now: float, current: int, ups: list[tuple[float, int]],
                downs: list[tuple[float, int]], rules: ScaleDownRules) -> int:
    """``calculateScaleDownLimitWithBehaviors`` (``Min`` picks the smallest change, which
    for a scale-down is the largest count)."""
    if rules.select_policy == "Disabled":
        return current
    pick = max if rules.select_policy == "Min" else min
    result: int | None = None
    for p in rules.policies:
        start = current - _changed(p.period_seconds, now, ups) + _changed(p.period_seconds,
                                                                          now, downs)
        proposed = (start - p.value if p.type == "Pods"
                    else int(start * (1 - p.value / 100)))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result
