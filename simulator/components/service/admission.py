"""The ``admission`` block of ``kind: service``: which arrivals an instance refuses at once.

One model per policy, chosen by ``policy`` (a pydantic discriminated union); the runtime is in
:mod:`simulator.components.service.limiter`. Without the block an instance admits every
arrival (its queue's ``limit`` aside), exactly as before.

Every refusal ends the request with status ``rejected``, as a full queue does: the server said
"overloaded, not accepted" (HTTP 503/429, gRPC UNAVAILABLE), so a caller's
``adaptive_throttle`` counts it as a rejection by default (``reject_on: [rejected]``) and a
``retry_on: [rejected]`` may retry it. The instance counts them apart in ``shed_total``.

Policies
--------
``shed``
    Load shedding on arrival, by the age of the oldest waiting request (``max_queue_time``)
    and/or by the instance's utilisation over the last completed ``window``
    (``max_utilization``). Each threshold is one number for every priority class or a list
    indexed by ``Request.priority`` (0 the most important; classes past the end take the last
    entry); a list must not increase, so the least important classes are shed first.
``aimd``, ``vegas``, ``gradient2``
    Adaptive concurrency limits with the semantics of Netflix's concurrency-limits library
    (``AIMDLimit``, ``VegasLimit``, ``Gradient2Limit``): a limit on the requests in flight at
    one instance (admitted and not yet answered: waiting, in service or awaiting downstream
    calls); an arrival that finds ``in_flight >= limit`` is refused. Each answered request is
    one sample (its round-trip time at the instance, arrival to answer, and the in-flight count
    when it was admitted, itself included), and the limit is updated at every sample.
``adaptive_concurrency``
    Envoy's adaptive concurrency filter (gradient controller): the limit is recomputed every
    ``concurrency_update_interval`` from the sampled latencies against a periodically measured
    ideal latency (minRTT).

What a sample says (every limit policy): ``ok`` and ``fallback`` are successes;
``timeout``, ``dropped``, ``expired``, ``reneged`` and ``rejected`` (a downstream refusal) are
drops (the library's ``onDropped``: the AIMD and Vegas limits back off); any other status is
ignored (``onIgnore``: no sample).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.distributions import Duration
from simulator.settings import refuse_ignored

_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def by_priority(values: float | list[float], priority: int) -> float:
    """The threshold of class ``priority`` (a list's last entry for classes past its end)."""
    if isinstance(values, list):
        return values[min(priority, len(values) - 1)]
    return values


def _check_classes(name: str, values: float | list[float] | None) -> None:
    if isinstance(values, list):
        if not values:
            raise ValueError(f"{name} is an empty list: give one value, or one per priority "
                             "class")
        if any(b > a for a, b in pairwise(values)):
            raise ValueError(f"{name} must not increase from class to class (class 0 is "
                             "the most important: less important classes are shed first)")


class ShedAdmission(BaseModel):
    """Load shedding on arrival (the SRE book's "load shedding"; Envoy's overload manager).

    Parameters
    ----------
    max_queue_time
        An arrival that finds every worker busy is refused when the oldest request still
        waiting at the instance has already waited longer than this (seconds): the observed
        head-of-line wait of a FIFO queue. One value, or one per priority class.
    max_utilization
        An arrival is refused when the instance's utilisation (busy workers / workers, averaged
        over the last completed ``window``) is above this. One value in (0, 1], or one per
        priority class (1 never sheds the class).
    window
        Length of the utilisation windows (seconds): consecutive windows from time 0; during
        the first window nothing is shed by utilisation.
    """

    model_config = _CONFIG

    policy: Literal["shed"] = "shed"
    max_queue_time: Duration | list[Duration] | None = None
    max_utilization: float | list[float] | None = None
    window: Duration = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.max_queue_time is None and self.max_utilization is None:
            raise ValueError("policy shed needs max_queue_time or max_utilization (or both)")
        refuse_ignored(self, [("window", self.max_utilization is not None,
                               "without max_utilization (it is the utilisation's window)")])
        _check_classes("max_queue_time", self.max_queue_time)
        _check_classes("max_utilization", self.max_utilization)
        times = self.max_queue_time if isinstance(self.max_queue_time, list) else [
            self.max_queue_time] if self.max_queue_time is not None else []
        if any(t < 0 for t in times):
            raise ValueError("max_queue_time must be >= 0")
        utils = self.max_utilization if isinstance(self.max_utilization, list) else [
            self.max_utilization] if self.max_utilization is not None else []
        if any(not 0 < u <= 1 for u in utils):
            raise ValueError("max_utilization must be in (0, 1]")
        return self


class _Limit(BaseModel):
    model_config = _CONFIG

    initial_limit: int = Field(20, ge=1, description="Limit at the start (requests in "
                               "flight at one instance).")
    max_limit: int = Field(200, ge=1, description="Highest the limit may go.")

    def lowest(self) -> int:
        """The floor of the limit."""
        return 1

    @model_validator(mode="after")
    def _check_bounds(self) -> Self:
        if not self.lowest() <= self.initial_limit <= self.max_limit:
            raise ValueError(f"initial_limit ({self.initial_limit}) must be between the lowest "
                             f"limit ({self.lowest()}) and max_limit ({self.max_limit})")
        return self


class AimdLimit(_Limit):
    """Loss-based AIMD (Netflix ``AIMDLimit``): +``increase`` per sample while no drop and the
    instance uses at least half its limit; times ``backoff_ratio`` (rounded down) on a drop or
    a round-trip time above ``timeout``; kept within [``min_limit``, ``max_limit``].
    """

    policy: Literal["aimd"] = "aimd"
    min_limit: int = Field(20, ge=1, description="Lowest the limit may go.")
    backoff_ratio: float = Field(0.9, ge=0.5, lt=1, description="Multiplier on a drop "
                                 "(Netflix: [0.5, 1)).")
    increase: int = Field(1, ge=1, description="Added per successful sample.")
    timeout: Duration = Field(5.0, gt=0, description="A round-trip time above this counts "
                              "as a drop.")

    def lowest(self) -> int:
        return self.min_limit


class VegasLimit(_Limit):
    """Delay-based TCP Vegas (Netflix ``VegasLimit``).

    The estimated queue is ``ceil(limit x (1 - rtt_noload / rtt))``, ``rtt_noload`` the lowest
    round-trip time seen (re-probed every about ``probe_multiplier x limit`` samples, with a
    uniform jitter in [0.5, 1)). Unless a drop (limit - log10 limit) or the instance uses under
    half its limit (unchanged): a queue at most ``log10 limit`` adds ``beta``, under ``alpha``
    adds ``log10 limit``, over ``beta`` removes ``log10 limit``; then ``smoothing`` blends the
    new limit with the old. ``log10 limit`` is an integer, at least 1.
    """

    policy: Literal["vegas"] = "vegas"
    max_limit: int = Field(1000, ge=1, description="Highest the limit may go.")
    alpha: int | None = Field(None, ge=0, description="Queue below which the limit grows "
                              "(omitted: 3 log10 limit).")
    beta: int | None = Field(None, ge=0, description="Queue above which the limit shrinks "
                             "(omitted: 6 log10 limit).")
    smoothing: float = Field(1.0, gt=0, le=1, description="Weight of the new estimate.")
    probe_multiplier: int = Field(30, ge=1, description="Samples (times the limit) between "
                                  "probes of the no-load RTT.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.alpha is not None and self.beta is not None and self.alpha > self.beta:
            raise ValueError(f"alpha ({self.alpha}) must not exceed beta ({self.beta})")
        return self


class Gradient2Limit(_Limit):
    """Gradient of latency (Netflix ``Gradient2Limit``).

    ``gradient = max(0.5, min(1, long_rtt / short_rtt))`` with ``short_rtt`` the latest sample
    and ``long_rtt`` an exponential average over ``long_window`` samples (plain mean of the
    first 10), cut by 10% whenever it is over twice ``short_rtt``; unless the instance uses
    under half its limit, ``limit = (1 - smoothing) limit + smoothing (gradient limit +
    queue_size)``, within [``min_limit``, ``max_limit``]. Drops do not enter the formula.
    """

    policy: Literal["gradient2"] = "gradient2"
    min_limit: int = Field(20, ge=1, description="Lowest the limit may go.")
    smoothing: float = Field(0.2, gt=0, le=1, description="Weight of the new estimate.")
    queue_size: float = Field(4.0, ge=0, description="Queueing allowed on top of the "
                              "gradient's limit.")
    long_window: int = Field(600, ge=1, description="Samples of the long-term average RTT.")

    def lowest(self) -> int:
        return self.min_limit


class MinRttCalc(BaseModel):
    """Envoy's ``min_rtt_calc_params``: how the ideal latency is measured."""

    model_config = _CONFIG

    interval: Duration = Field(60.0, gt=0, description="Time between minRTT measurements.")
    request_count: int = Field(50, ge=1, description="Samples aggregated into one minRTT.")
    jitter: float = Field(0.15, ge=0, le=1, description="The next measurement starts "
                          "interval x (1 + U jitter) after the last, U uniform on [0, 1).")
    min_concurrency: int = Field(3, ge=1, description="The limit while minRTT is measured "
                                 "(and its floor).")
    buffer: float = Field(0.25, ge=0, description="Share of minRTT added to it as tolerance.")


class AdaptiveConcurrency(BaseModel):
    """Envoy's adaptive concurrency filter, gradient controller.

    The instance starts measuring minRTT: the limit is ``min_concurrency`` until
    ``request_count`` requests have been answered; minRTT is their
    ``sample_aggregate_percentile`` (nearest rank), and the limit goes back to what it was.
    Then every ``concurrency_update_interval`` the latencies answered in that interval give
    ``sample_rtt`` (the same percentile; no samples: no change) and ``gradient = max(0.5,
    min(2, minRTT (1 + buffer) / sample_rtt))``; the new limit is ``g = gradient x limit``
    plus a headroom of ``sqrt(g)``, rounded down, within [``min_concurrency``,
    ``max_concurrency_limit``]. minRTT is measured again ``interval`` (plus jitter) after the
    last measurement ended, or at once when the limit has been at ``min_concurrency`` for 5
    consecutive updates.
    """

    model_config = _CONFIG

    policy: Literal["adaptive_concurrency"] = "adaptive_concurrency"
    concurrency_update_interval: Duration = Field(0.1, gt=0, description="Time between "
                                                  "recalculations of the limit.")
    max_concurrency_limit: int = Field(1000, ge=1, description="Highest the limit may go.")
    sample_aggregate_percentile: float = Field(50.0, gt=0, le=100, description="Percentile "
                                               "summarising a window's latencies.")
    min_rtt_calc: MinRttCalc = Field(default_factory=MinRttCalc)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.min_rtt_calc.min_concurrency > self.max_concurrency_limit:
            raise ValueError(f"min_rtt_calc.min_concurrency ({self.min_rtt_calc.min_concurrency})"
                             f" is above max_concurrency_limit ({self.max_concurrency_limit})")
        return self


Admission = Annotated[
    ShedAdmission | AimdLimit | VegasLimit | Gradient2Limit | AdaptiveConcurrency,
    Field(discriminator="policy"),
]
"""A service's ``admission`` block."""
