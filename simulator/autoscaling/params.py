"""The ``autoscaling:`` block of a component (no SimPy: the scenario layer imports this).

Field names are the Kubernetes HorizontalPodAutoscaler's (``autoscaling/v2``) in snake case:
``minReplicas`` -> ``min_replicas``, ``behavior.scaleUp.stabilizationWindowSeconds`` ->
``behavior.scale_up.stabilization_window_seconds``, policies ``{type: Pods|Percent, value,
period_seconds}`` and ``select_policy: Max|Min|Disabled``, with the same defaults.
"""

from __future__ import annotations

import itertools
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.distributions import Duration
from simulator.settings import is_set, refuse_ignored


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ScalingPolicy(_Strict):
    """One limit on the change per period: at most ``value`` instances (``Pods``) or
    ``value`` percent of the count at the start of the period (``Percent``) over the last
    ``period_seconds``."""

    type: Literal["Pods", "Percent"]
    value: int = Field(gt=0, description="Instances (Pods) or percent (Percent) per period.")
    period_seconds: Duration = Field(gt=0, le=1800, description="Length of the period (s).")


class ScaleUpRules(_Strict):
    """``behavior.scale_up``; defaults as the HPA's: no stabilisation, at most 4 instances
    or 100 % per 15 s, whichever allows more."""

    stabilization_window_seconds: Duration = Field(0.0, ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: tuple[ScalingPolicy, ...] = (
        ScalingPolicy(type="Pods", value=4, period_seconds=15.0),
        ScalingPolicy(type="Percent", value=100, period_seconds=15.0))


class ScaleDownRules(_Strict):
    """``behavior.scale_down``; defaults as the HPA's: the highest recommendation of the last
    300 s, down by at most 100 % per 15 s."""

    stabilization_window_seconds: Duration = Field(300.0, ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: tuple[ScalingPolicy, ...] = (
        ScalingPolicy(type="Percent", value=100, period_seconds=15.0),)


class Behavior(_Strict):
    """``behavior``: how fast the count may rise and fall."""

    scale_up: ScaleUpRules = Field(default_factory=ScaleUpRules)
    scale_down: ScaleDownRules = Field(default_factory=ScaleDownRules)


MetricType = Literal["utilization", "concurrency", "rps", "queue_length", "latency"]


class ScalingMetric(_Strict):
    """One metric and its per-instance target, averaged over the ready instances.

    ``utilization``: busy workers / workers over the last sync period, target
    ``average_utilization`` in percent (the HPA's Resource metric). ``concurrency``: requests
    in the instance (waiting or holding a worker), time-averaged over the period, target
    ``average_value``. ``rps``: requests completed per second, target ``average_value`` (a Pods
    metric from a request counter).

    ``queue_length`` (a consumer's only): the messages of its source at the sync, as KEDA's
    queue scalers (``aws-sqs-queue``, ``rabbitmq``) feed the HPA an External metric with an
    ``AverageValue`` target: ``desired = ceil(messages / average_value)`` (KEDA's
    ``queueLength``: the messages one replica handles). Counted: the visible messages, plus
    those in flight (``scale_on_in_flight``, default true, SQS's
    ``ApproximateNumberOfMessagesNotVisible``) and those delayed before a retry
    (``scale_on_delayed``, default false). ``activation_queue_length`` (KEDA's
    ``activationQueueLength``, default 0): with ``min_replicas: 0`` the consumer is scaled
    from zero to one when the count exceeds it, and to zero once it has not for
    ``cooldown_period``.

    ``latency``: the ``percentile`` (default 95) of the component's spans (arrival to end)
    that ended within the last sync period, exactly (no histogram buckets), against ``value``
    seconds, as a latency from Prometheus fed to the HPA as an Object metric with a ``Value``
    target: ``desired = ceil(ready x percentile / value)``. Latency is not proportional to
    the count as a load is (it hardly moves until the instances saturate): the HPA's linear
    rule over- and under-shoots on it, as it does in a cluster. Needs spans; no span in the
    period is no value.
    """

    type: MetricType
    average_utilization: float | None = Field(None, gt=0, description="Percent (utilization).")
    average_value: float | None = Field(None, gt=0, description="Per instance (others).")
    activation_queue_length: float = Field(0.0, ge=0, description="Messages above which a "
                                           "consumer scaled to zero is activated.")
    scale_on_in_flight: bool = True
    scale_on_delayed: bool = False
    percentile: float = Field(95.0, gt=0, lt=100, description="Of a latency metric.")
    value: Duration | None = Field(None, gt=0, description="Target of a latency metric (s).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        refuse_ignored(self, [("percentile", self.type == "latency",
                               f"by a {self.type} metric; it applies to a latency metric")])
        if self.type == "latency":
            if self.value is None:
                raise ValueError("a latency metric needs value (the target percentile, s)")
            for name in ("average_value", "average_utilization"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is ignored by a latency metric; give value")
        elif self.value is not None:
            raise ValueError(f"value is ignored by a {self.type} metric; it is a latency "
                             "metric's target")
        elif self.type == "utilization":
            if self.average_utilization is None:
                raise ValueError("a utilization metric needs average_utilization (percent)")
            if self.average_value is not None:
                raise ValueError("average_value is ignored by a utilization metric; give "
                                 "average_utilization (percent)")
        else:
            if self.average_value is None:
                raise ValueError(f"a {self.type} metric needs average_value (per instance)")
            if self.average_utilization is not None:
                raise ValueError(f"average_utilization is ignored by a {self.type} metric; "
                                 "give average_value")
        refuse_ignored(self, [(name, self.type == "queue_length",
                               f"by a {self.type} metric; it applies to a queue_length metric")
                              for name in ("activation_queue_length", "scale_on_in_flight",
                                           "scale_on_delayed")])
        return self

    @property
    def target(self) -> float:
        """The target per instance (utilisation as a fraction; a latency in seconds)."""
        if self.type == "latency":
            assert self.value is not None
            return self.value
        if self.type == "utilization":
            assert self.average_utilization is not None
            return self.average_utilization / 100.0
        assert self.average_value is not None
        return self.average_value


class ColdStart(_Strict):
    """A new instance starts slow (a JIT warming, caches filling): its speed rises linearly
    from ``initial_speed`` to 1 over ``ramp`` seconds after it is ready (applied in 20 equal
    steps, each at the speed of its midpoint: within (1 - initial_speed) / 40 of the line)."""

    initial_speed: float = Field(gt=0, le=1, description="Speed when ready (1: full).")
    ramp: Duration = Field(gt=0, description="Seconds to full speed.")


class ScheduledBounds(_Strict):
    """From ``at`` on, the autoscaler's bounds are these (a scheduled action of AWS
    Application Auto Scaling, KEDA's cron scaler as bounds): the count moves into them at the
    next sync, the metrics then act within them."""

    at: Duration = Field(ge=0, description="Simulated seconds.")
    min_replicas: int = Field(ge=1, le=100_000)
    max_replicas: int = Field(ge=1, le=100_000)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) is above max_replicas "
                             f"({self.max_replicas})")
        return self


class Autoscaling(_Strict):
    """Parameters of a component's autoscaler (Kubernetes HPA semantics).

    Every ``sync_period`` the controller computes, per metric, ``desired = ceil(ready x
    mean / target)`` over the ready instances (unchanged when ``|mean / target - 1| <=
    tolerance``; instances still provisioning are ignored, and count as idle on a scale-up),
    takes the largest over the metrics, stabilises it (the lowest recommendation of the
    scale-up window, the highest of the scale-down window), limits the change by the
    behaviour's policies, and clamps it to ``[min_replicas, max_replicas]``.

    The topology builds ``max_replicas`` instances; ``replicas`` of them start in service. A new
    instance is in service after ``provisioning_delay`` (scheduling, image pull, start-up,
    readiness). An instance removed stops taking requests at once and drains: it finishes what
    it holds, and what is left after ``termination_grace_period`` fails; ``cold_start`` makes
    a new instance slow at first (services). ``schedule`` changes ``min_replicas`` and
    ``max_replicas`` at given times (scheduled scaling; with no ``metrics`` it is all there is:
    the count follows the bounds).
    """

    min_replicas: int = Field(1, ge=0, le=100_000)
    max_replicas: int = Field(ge=1, le=100_000)
    sync_period: Duration = Field(15.0, ge=0.001, description="Seconds between evaluations "
                                  "(at least 1 ms: each one is an event of the run).")
    tolerance: float = Field(0.1, ge=0, lt=1)
    metrics: tuple[ScalingMetric, ...] = ()
    behavior: Behavior = Field(default_factory=Behavior)
    provisioning_delay: Duration = Field(0.0, ge=0, description="Seconds from the decision "
                                                                "to an instance in service.")
    termination_grace_period: Duration = Field(30.0, ge=0, description="Seconds a draining "
                                               "instance may take to finish what it holds.")
    cooldown_period: Duration = Field(300.0, ge=0, description="Seconds without activity "
                                      "before a consumer with min_replicas 0 is scaled to zero "
                                      "(KEDA's cooldownPeriod).")
    cold_start: ColdStart | None = None
    schedule: tuple[ScheduledBounds, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) is above max_replicas "
                             f"({self.max_replicas})")
        if not self.metrics and not self.schedule:
            raise ValueError("metrics: give at least one metric, or a schedule")
        ats = [b.at for b in self.schedule]
        if any(b <= a for a, b in itertools.pairwise(ats)):
            raise ValueError("schedule: times must be in strictly increasing order of 'at'")
        for b in self.schedule:
            if b.max_replicas > self.max_replicas:
                raise ValueError(f"schedule: max_replicas {b.max_replicas} at {b.at:g}s is "
                                 f"above max_replicas ({self.max_replicas}), the instances "
                                 "built")
        zero = ("with min_replicas above 0 (it governs scaling to and from zero); it applies "
                "with min_replicas 0")
        refuse_ignored(self, [("cooldown_period", self.min_replicas == 0, zero)])
        for m in self.metrics:
            if self.min_replicas and is_set(m, "activation_queue_length"):
                raise ValueError(f"metrics: activation_queue_length is ignored {zero}")
        if self.min_replicas == 0 and not self.reads_queue:
            raise ValueError("min_replicas 0 needs a queue_length metric: only a queue's "
                             "activation (KEDA's) brings a component back from zero")
        return self

    def bounds_at(self, now: float) -> tuple[int, int]:
        """(min_replicas, max_replicas) in force at ``now``."""
        bounds = (self.min_replicas, self.max_replicas)
        for b in self.schedule:
            if b.at <= now:
                bounds = (b.min_replicas, b.max_replicas)
        return bounds

    @property
    def reads_queue(self) -> bool:
        """Whether a metric is ``queue_length`` (the component must have a source)."""
        return any(m.type == "queue_length" for m in self.metrics)
