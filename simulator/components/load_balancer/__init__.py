"""``kind: load_balancer``: spreads calls over its backends' instances by a strategy
(:mod:`~simulator.components.load_balancer.strategies`), with health checks, outlier ejection
and a panic threshold (:mod:`~simulator.components.load_balancer.balancer`)."""

from simulator.components.load_balancer.params import LoadBalancerParams
from simulator.kind import DerivedTable, Kind, Plot

_TABLES = "simulator.components.load_balancer.tables"
_PLOTS = "simulator.components.load_balancer.plots"

KIND = Kind(
    name="load_balancer",
    params=LoadBalancerParams,
    component="simulator.components.load_balancer.balancer:LoadBalancer",
    shape="hexagon",
    colour="#ede7f6",
    faults=frozenset({"crash"}),
    derived=(DerivedTable("backend_share", f"{_TABLES}:backend_share", "per-backend share",
                          format=f"{_TABLES}:format_backend_share", always=True),),
    plots=(
        Plot("backend_share", f"{_PLOTS}:backend_share",
             "Share of requests each balancer sent to each backend (measured window).",
             applies=f"{_PLOTS}:has_shares", size=(8, 4.5)),
        Plot("backend_share_over_time", f"{_PLOTS}:backend_share_over_time",
             "Share of requests per backend over time.", applies=f"{_PLOTS}:has_routing"),
    ),
)
