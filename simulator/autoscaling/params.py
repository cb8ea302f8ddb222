"""The ``autoscaling:`` block of a component (no SimPy: the scenario layer imports this).

Field names are the Kubernetes HorizontalPodAutoscaler's (``autoscaling/v2``) in snake case:
``minReplicas`` -> ``min_replicas``, ``behavior.scaleUp.stabilizationWindowSeconds`` ->
``behavior.scale_up.stabilization_window_seconds``, policies ``{type: Pods|Percent, value,
period_seconds}`` and ``select_policy: Max|Min|Disabled``, with the same defaults.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.distributions import Duration


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


MetricType = Literal["utilization", "concurrency", "rps"]


class ScalingMetric(_Strict):
    """One metric and its per-instance target, averaged over the ready instances.

    ``utilization``: busy workers / workers over the last sync period, target
    ``average_utilization`` in percent (the HPA's Resource metric). ``concurrency``: requests
    in the instance (waiting or holding a worker), time-averaged over the period, target
    ``average_value``. ``rps``: requests completed per second, target ``average_value`` (a Pods
    metric from a request counter).
    """

    type: MetricType
    average_utilization: float | None = Field(None, gt=0, description="Percent (utilization).")
    average_value: float | None = Field(None, gt=0, description="Per instance (others).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.type == "utilization":
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
        return self

    @property
    def target(self) -> float:
        """The target per instance (utilisation as a fraction)."""
        if self.type == "utilization":
            assert self.average_utilization is not None
            return self.average_utilization / 100.0
        assert self.average_value is not None
        return self.average_value


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
    it holds, and what is left after ``termination_grace_period`` fails.
    """

    min_replicas: int = Field(1, ge=1, le=100_000)
    max_replicas: int = Field(ge=1, le=100_000)
    sync_period: Duration = Field(15.0, gt=0, description="Seconds between evaluations.")
    tolerance: float = Field(0.1, ge=0, lt=1)
    metrics: tuple[ScalingMetric, ...] = Field(min_length=1)
    behavior: Behavior = Field(default_factory=Behavior)
    provisioning_delay: Duration = Field(0.0, ge=0, description="Seconds from the decision "
                                                                "to an instance in service.")
    termination_grace_period: Duration = Field(30.0, ge=0, description="Seconds a draining "
                                               "instance may take to finish what it holds.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) is above max_replicas "
                             f"({self.max_replicas})")
        return self
