"""``kind: service``: instances with workers, a bounded queue with a chosen discipline,
service-time distributions, downstream calls in sequence or in parallel (see
:mod:`simulator.components.service.service`) and admission control: load shedding and
adaptive concurrency limits (:mod:`simulator.components.service.admission`); opt-in
internals: cores, threads or event loops, steps (:mod:`simulator.components.service.internals`)."""

from simulator.components.service.params import ServiceParams
from simulator.kind import Column, Kind, Plot, RawTable

_INTERNALS_PLOTS = "simulator.components.service.internals_plots"

CONCURRENCY_LIMITS = RawTable(
    "concurrency_limits", "One row per change of an instance's adaptive concurrency limit "
    "(admission: aimd, vegas, gradient2, adaptive_concurrency), and its value at time 0.", (
        Column("time", "float64", "When the limit took this value (s)."),
        Column("component", "category", "The service (component).", labels="component"),
        Column("instance", "category", "The instance whose limit it is.", labels="names"),
        Column("limit", "int32", "Requests the instance admits in flight from then on."),
        Column("in_flight", "int32", "Requests in flight at the instance at that instant "
                                     "(admitted, not yet answered)."),
    ))

KIND = Kind(
    name="service",
    params=ServiceParams,
    backlog=("in_system",),
    component="simulator.components.service.service:Service",
    shape="round",
    colour="#e3f2fd",
    faults=frozenset({"crash", "slow", "error", "latency"}),
    tables=(CONCURRENCY_LIMITS,),
    plots=(Plot("concurrency_limit_over_time",
                "simulator.components.service.plots:concurrency_limit_over_time",
                "The adaptive concurrency limit of each instance (steps) and the requests in "
                "flight when it changed (dots).",
                applies="simulator.components.service.plots:has_limits"),
           Plot("service_internals", f"{_INTERNALS_PLOTS}:service_internals",
                "Services with internals: CPU steps waiting for a core, busy cores, threads "
                "busy and memory held.", applies=f"{_INTERNALS_PLOTS}:has_internals")),
)
