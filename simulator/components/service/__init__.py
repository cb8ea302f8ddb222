"""``kind: service``: instances with workers, a bounded queue with a chosen discipline,
service-time distributions and downstream calls in sequence or in parallel (see
:mod:`simulator.components.service.service`)."""

from simulator.components.service.params import ServiceParams
from simulator.kind import Kind, Plot

_INTERNALS_PLOTS = "simulator.components.service.internals_plots"

KIND = Kind(
    name="service",
    params=ServiceParams,
    backlog=("in_system",),
    component="simulator.components.service.service:Service",
    shape="round",
    colour="#e3f2fd",
    faults=frozenset({"crash", "slow", "error", "latency"}),
    plots=(Plot("service_internals", f"{_INTERNALS_PLOTS}:service_internals",
                "Services with internals: CPU steps waiting for a core, busy cores, threads "
                "busy and memory held.", applies=f"{_INTERNALS_PLOTS}:has_internals"),),
)
