"""Autoscaling (Kubernetes HPA semantics) and cost: the declarations (no SimPy, no pandas).

``params.py`` is the ``autoscaling:`` block; ``hpa.py`` the controller's arithmetic;
``controller.py`` the SimPy process that samples the instances every sync period and starts,
provisions and drains them through the :class:`~simulator.components.base.Scalable`
capability; ``tables.py`` the derived tables (``replicas``, ``cost``). The raw tables are
declared here and recorded whatever the kinds (every run has them, empty without autoscaling).
"""

from __future__ import annotations

from simulator.kind import Column, DerivedTable, RawTable

#: The instance states an autoscaled instance goes through, in order.
STATES = ("provisioning", "ready", "draining", "stopped")
#: Why a sync ended where it did (the HPA's ``ScalingLimited`` reasons).
REASONS = ("DesiredWithinRange", "ScaleUpLimit", "ScaleDownLimit", "TooManyReplicas",
           "TooFewReplicas", "FailedGetMetrics", "Activated", "CooledDown")
#: Metric types, by index (``-1``... ``none``: no metric gave the proposal).
METRICS = ("utilization", "concurrency", "rps", "queue_length", "latency", "none")

INSTANCE_STATES = RawTable("instance_states", "every state change of an autoscaled instance", (
    Column("time", "float64", "when (s)"),
    Column("component", "category", "the autoscaled component", labels="names"),
    Column("instance", "category", "the instance", labels="names"),
    Column("state", "category", "provisioning (billed, not serving), ready (in service), "
           "draining (finishing what it holds), stopped", labels=STATES),
))

SCALING_EVENTS = RawTable("scaling_events", "every sync of an autoscaler that changed the "
                          "replica count", (
    Column("time", "float64", "when (s)"),
    Column("component", "category", "the autoscaled component", labels="names"),
    Column("from_replicas", "int32", "replicas before (the last desired count)"),
    Column("to_replicas", "int32", "replicas after"),
    Column("proposal", "int32", "the largest recommendation of the metrics"),
    Column("stabilized", "int32", "after the stabilisation windows"),
    Column("reason", "category", "why the count ended there: the HPA's ScalingLimited reason; "
           "Activated / CooledDown: KEDA's scale from / to zero", labels=REASONS),
    Column("metric", "category", "the metric that gave the proposal", labels=METRICS),
    Column("value", "float64", "its value (utilisation: percent; queue_length: messages per "
           "current replica; latency: the percentile, s; others: per instance)"),
))

RAW_TABLES = (INSTANCE_STATES, SCALING_EVENTS)

_HERE = "simulator.autoscaling.tables"
DERIVED = (
    DerivedTable("replicas", f"{_HERE}:replicas",
                 "replicas of autoscaled components (after each change, whole run)",
                 applies=f"{_HERE}:has_autoscaling"),
    DerivedTable("cost", f"{_HERE}:cost",
                 "cost over the measured window (instance-seconds x price per hour / 3600, "
                 "plus requests x price per million)",
                 format=f"{_HERE}:format_cost", applies=f"{_HERE}:has_cost"),
)
