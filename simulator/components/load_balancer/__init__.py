"""``kind: load_balancer``: spreads calls over its backends' instances by a strategy
(:mod:`~simulator.components.load_balancer.strategies`), with health checks, outlier ejection
and a panic threshold (:mod:`~simulator.components.load_balancer.balancer`)."""

from simulator.components.load_balancer.params import LoadBalancerParams
from simulator.kind import DerivedTable, Kind

_TABLES = "simulator.components.load_balancer.tables"

KIND = Kind(
    name="load_balancer",
    params=LoadBalancerParams,
    component="simulator.components.load_balancer.balancer:LoadBalancer",
    faults=frozenset({"crash"}),
    derived=(DerivedTable("backend_share", f"{_TABLES}:backend_share", "per-backend share",
                          format=f"{_TABLES}:format_backend_share", always=True),),
)
