"""Parameters of ``kind: load_balancer``: strategy, weights, health checks, outlier detection."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.components.params import ComponentParams, KeyPath
from simulator.distributions import Duration, weights_problem
from simulator.settings import is_set

Strategy = Literal[
    "round_robin",
    "weighted_round_robin",
    "random",
    "weighted_random",
    "least_connections",
    "weighted_least_connections",
    "shortest_expected_delay",
    "power_of_two",
    "power_of_d",
    "peak_ewma",
    "least_response_time",
    "consistent_hash",
    "join_shortest_queue",
    "geo",
]


#: Strategies that use ``weights``.
WEIGHTED = frozenset({"weighted_round_robin", "weighted_random", "weighted_least_connections",
                      "shortest_expected_delay"})

#: Settings that only some strategies read: setting one for another strategy is an error.
USED_BY: dict[str, frozenset[str]] = {
    "weights": WEIGHTED,
    "choice_count": frozenset({"power_of_d"}),
    "replacement": frozenset({"power_of_two", "power_of_d"}),
    "decay_time": frozenset({"peak_ewma", "least_response_time", "geo"}),
    "vnodes": frozenset({"consistent_hash"}),
    "geo_by": frozenset({"geo"}),
}


class HealthCheck(BaseModel):
    """Active health checks, as Envoy's.

    Every ``interval`` the balancer probes each backend; ``unhealthy_threshold`` failed probes in
    a row mark it unhealthy (no traffic), ``healthy_threshold`` passed probes in a row mark it
    healthy again. A probe fails when the backend is crashed or partitioned from the balancer.
    Probes are instantaneous and cost the backend nothing. ``interval`` is at least 1 ms
    (Envoy's default is 5 s; real balancers probe every second or slower): every probe is an
    event of the run, so a nanosecond interval meant a billion events per backend and simulated
    second, and one below the clock's resolution (``5e-324s``) never let time advance.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    interval: Duration = Field(5.0, ge=0.001)
    unhealthy_threshold: int = Field(2, ge=1)
    healthy_threshold: int = Field(1, ge=1)


class OutlierDetection(BaseModel):
    """Passive outlier ejection, as Envoy's ``consecutive_5xx`` detector.

    ``consecutive_errors`` failed replies in a row (``error``, ``timeout`` or ``rejected``) eject
    the backend for ``base_ejection_time`` x the number of times it has been ejected; at most
    ``max_ejection_percent`` of the backends are ejected at once (at least one may be).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    consecutive_errors: int = Field(5, ge=1)
    base_ejection_time: Duration = Field(30.0, gt=0)
    max_ejection_percent: float = Field(10.0, ge=0, le=100)


class LoadBalancerParams(ComponentParams):
    """Parameters of ``kind: load_balancer``.

    Parameters
    ----------
    strategy
        ``round_robin`` (strict cyclic order from a random start); ``weighted_round_robin``
        (smooth weighted round robin, as nginx); ``random``; ``weighted_random``;
        ``least_connections`` (fewest outstanding requests from this balancer, ties broken at
        random); ``weighted_least_connections`` (LVS wlc: fewest outstanding per unit weight,
        n_i / w_i); ``shortest_expected_delay`` (LVS sed: lowest (n_i + 1) / w_i, the weight
        standing for the backend's service rate); ``power_of_two`` / ``power_of_d``
        (``choice_count`` candidates drawn uniformly, distinct unless ``replacement``, the one
        with fewest outstanding requests wins, ties to the first drawn, which is random; Envoy's
        LEAST_REQUEST); ``peak_ewma`` (Finagle: two distinct random
        candidates, lower peak-EWMA latency x (outstanding + 1) wins); ``least_response_time``
        (lowest EWMA latency x (outstanding + 1) over all backends); ``consistent_hash`` (ring of
        ``vnodes`` virtual nodes per backend, md5 of the request key; Envoy's RING_HASH);
        ``join_shortest_queue`` (textbook JSQ: the true number of requests at each backend,
        which no real balancer sees; for comparison only); ``geo`` (geo-routing: the request
        goes to the region chosen by ``geo_by`` for its client's region, the first that has an
        available backend — failing over to the next when a region's backends are all
        unhealthy or ejected — and round robin within it; every backend must be placed in a
        region).
    geo_by
        How ``geo`` ranks regions for clients of a region: ``nearest`` (mean round trip of the
        scenario's latency matrix, the client's own region first when ``local`` is zero; ties
        in backend order; Route 53 geoproximity) or ``latency`` (lowest EWMA, over
        ``decay_time``, of the reply times this balancer measured for that client region and
        backend region, on successful replies; before the first, the mean round trip, so each
        region is tried; regions not in use are not probed again; Route 53 latency-based
        routing).
    backends
        Names of the components to balance over; a replicated component adds all its instances.
    weights
        One weight per backend instance, in order; default all 1. Only the strategies in
        :data:`WEIGHTED` use them (anything else refuses them). Speed-aware strategies: the
        weighted ones see speed through the weights the operator sets; ``least_connections``,
        ``power_of_*``, ``peak_ewma``, ``least_response_time`` and ``join_shortest_queue`` see
        it indirectly (a slow backend holds its requests longer); ``round_robin``, ``random``,
        ``consistent_hash`` and ``geo`` do not see it at all.
    choice_count
        Candidates drawn per request by ``power_of_d`` (``power_of_two``: 2).
    replacement
        ``power_of_two`` / ``power_of_d`` draw their candidates with replacement (one backend
        may be drawn twice); default False (distinct candidates, as Envoy).
    decay_time
        Time constant of the latency EWMA (``peak_ewma``, ``least_response_time``), seconds.
    vnodes
        Virtual nodes per backend on the consistent-hash ring.
    health_check
        Active health checking (Envoy): probe every backend every ``interval``.
    outlier_detection
        Passive outlier ejection (Envoy): eject a backend after consecutive failures.
    healthy_panic_threshold
        Percent (Envoy's default 50): when fewer backends than this are available, balance over
        all of them as if all were healthy, rather than overload the few that are left.
    """

    kind: Literal["load_balancer"] = "load_balancer"
    strategy: Strategy = "round_robin"
    backends: list[str] = Field(min_length=1)
    weights: list[float] | None = None
    choice_count: int = Field(2, ge=2)
    replacement: bool = False
    decay_time: Duration = Field(10.0, gt=0)
    vnodes: int = Field(150, ge=1, le=100_000)
    health_check: HealthCheck | None = None
    outlier_detection: OutlierDetection | None = None
    healthy_panic_threshold: float = Field(50.0, ge=0, le=100)
    geo_by: Literal["nearest", "latency"] = "nearest"

    def diagram_lines(self) -> list[str]:
        lines = [self.strategy.replace("_", " ")]
        if self.health_check is not None:
            lines.append("health checks")
        if self.outlier_detection is not None:
            lines.append("outlier ejection")
        return lines

    @model_validator(mode="after")
    def _check(self) -> Self:
        for name, used_by in USED_BY.items():
            # A value equal to the default changes nothing: a scenario dumped with every field
            # spelled out (and `--set weights=null`) stays valid.
            default = type(self).model_fields[name].default
            if (name in self.model_fields_set and getattr(self, name) != default
                    and self.strategy not in used_by):
                raise ValueError(
                    f"{name} is ignored by strategy {self.strategy}; it applies to "
                    + ", ".join(sorted(used_by)))
        if (self.health_check is None and self.outlier_detection is None
                and is_set(self, "healthy_panic_threshold")):
            raise ValueError("healthy_panic_threshold is ignored without health_check or "
                             "outlier_detection (every backend counts as available)")
        if self.weights is not None and any(w <= 0 for w in self.weights):
            raise ValueError("weights must be > 0")
        if self.weights is not None and (problem := weights_problem(self.weights, "weights")):
            raise ValueError(problem)
        if self.strategy == "power_of_two" and self.choice_count != 2:
            raise ValueError("power_of_two draws 2 candidates; use power_of_d for choice_count")
        return self

    def ring_tokens(self, components: dict[str, ComponentParams]) -> int:
        """``consistent_hash``: each balancer instance hashes ``vnodes`` tokens for every
        backend instance."""
        if self.strategy != "consistent_hash":
            return 0
        backends = sum(components[b].instance_count if b in components else 1
                       for b in self.backends)
        return self.instance_count * backends * self.vnodes

    def references(self) -> Iterable[tuple[KeyPath, str]]:
        for i, b in enumerate(self.backends):
            yield ("backends", i), b

    def cross_check(self, components: dict[str, ComponentParams]) -> Iterable[tuple[KeyPath, str]]:
        n = sum(components[b].instance_count for b in self.backends)
        if self.weights is not None and len(self.weights) != n:
            yield ("weights",), (
                f"expected one weight per backend instance ({n}), got {len(self.weights)}"
            )
        if self.strategy == "geo":
            for i, b in enumerate(self.backends):
                if components[b].region is None:
                    yield ("backends", i), (f"strategy geo needs every backend placed in a "
                                            f"region; give {b!r} a region")
