"""The scenario model: metrics settings, the Scenario and its per-kind union of component
parameters and timeline events (rebuilt when a kind registers), and its JSON Schema."""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    create_model,
    field_validator,
    model_validator,
)

from simulator import registry
from simulator.components.params import ComponentParams
from simulator.distributions import Duration
from simulator.faults import (
    GENERIC_FAULTS,
    Fault,
    SpikeFault,
)
from simulator.limits import REQUESTS, SAMPLES
from simulator.links import NetworkSpec
from simulator.regions import RegionsSpec
from simulator.slo import Objective, read_slo
from simulator.units import parse_duration, parse_request_count
from simulator.workloads import Closed, ConstantRate, OnOff, Trace, Workload

#: Runs estimated to create more requests than this are refused up front.
MAX_REQUESTS = int(REQUESTS.limit)
#: Runs whose gauge sampling would record more than this many (instance, time) pairs are refused.
MAX_SAMPLES = int(SAMPLES.limit)


#: ``metrics.spans: auto`` records spans up to this many expected requests (none above).
SPANS_AUTO_MAX_REQUESTS = 500_000


class Metrics(BaseModel):
    """What to record.

    Parameters
    ----------
    interval
        Period of gauge sampling (queue lengths, utilisation...), seconds.
    spans
        Record one row per hop (``true``), none (``false``), or ``auto``: on when the run is
        expected to create at most :data:`SPANS_AUTO_MAX_REQUESTS` (500,000) requests, never
        with streaming requests. Spans are traces for interactive runs (every shipped scenario
        records them); above that size a run's memory would be mostly spans (46-49 bytes a
        hop at the peak against 52 a request for the requests table, ``make bench-memory``),
        so a longer run records them only when asked (``spans: true``).
    requests
        ``table``: one row per request (the ``requests`` table). ``streaming``: counters and
        log-bucketed latency histograms per workload, operation and status, for the requests
        created in the measured window, so memory stays flat however long the run
        (:mod:`simulator.metrics.streaming`: what is exact, what is approximate, what is not
        available).
    latency_error
        Relative error of the streaming latency percentiles (0.01: within 1% of the exact).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    interval: Duration = Field(1.0, gt=0)
    spans: bool | Literal["auto"] = "auto"
    requests: Literal["table", "streaming"] = "table"
    latency_error: float = Field(0.01, gt=0, le=0.5)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.requests == "streaming" and self.spans is True:
            raise ValueError("spans: per-hop rows grow with the run, which streaming requests "
                             "are meant to avoid; set spans: false (or auto)")
        return self


@dataclass(frozen=True)
class RequestWarmup:
    """A warm-up given as a number of requests (``warmup: 5000 requests``): the measured window
    starts when the request of index ``requests`` (from 0, over all workloads, in order of
    creation) is created, so the first ``requests`` requests are left out (with any created
    at that same instant counted in). Resolved after the run, from the requests table."""

    requests: int

    def __str__(self) -> str:
        return f"{self.requests} requests"


def _parse_warmup(value: Any) -> float | str | RequestWarmup:
    if value == "auto" or isinstance(value, RequestWarmup):
        return value
    count = parse_request_count(value)
    if count is not None:
        return RequestWarmup(count)
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        if str(exc).startswith("must be a finite"):  # a duration, but not a finite one
            raise
        raise ValueError(f"expected a duration such as 250ms or 2s, a number of requests such "
                         f"as '5000 requests', or auto (MSER-5), got {value!r}") from None
    if seconds < 0:
        raise ValueError(f"must be at least 0, got {seconds:g}s")
    return seconds


def _dump_warmup(value: float | str | RequestWarmup) -> float | str:
    return str(value) if isinstance(value, RequestWarmup) else value


class Scenario(BaseModel):
    """A whole scenario.

    Parameters
    ----------
    name
        Short name of the scenario.
    description
        What it models, for people.
    seed
        Default seed; ``simulate(..., seed=)`` and ``--seed`` override it.
    duration
        Arrivals are generated during ``[0, duration)``, seconds.
    warmup
        Requests created before ``warmup`` are excluded from summaries, seconds; ``auto``:
        chosen after the run by MSER-5 on the latencies of the requests in order of arrival;
        ``N requests`` (``5000 requests``, ``5k requests``): the window starts at the creation
        of the request of index N over all workloads, so the first N are excluded (see
        :class:`RequestWarmup`). ``Results.window`` gives the time used. The last two need the
        requests table (not ``metrics.requests: streaming``).
    drain
        Extra simulated time after ``duration`` for requests in flight to finish, seconds.
        Requests still unfinished then are reported with status ``in_flight``.
    workloads
        Client populations by name (at most 10,000: the recorder packs a request's workload
        and operation codes into one integer).
    components
        Components by name; each has a ``kind`` and that kind's parameters.
    metrics
        Recording settings.
    faults
        Faults on the timeline (see :mod:`simulator.faults`).
    regions
        Regions, the latency between them, and where components and clients are (see
        :mod:`simulator.regions`). Omitted: one place, no network latency.
    network
        Link profiles of call edges (latency and message loss) and the default profile of
        every edge (see :mod:`simulator.links`). Omitted: edges cost nothing unless they give
        their own ``network``.
    variants
        Named alternatives for ``simulator compare``: each is a list of ``key.path=value``
        overrides applied to this scenario (an empty list is the scenario as written).
    slo
        The service-level objective the system is meant to meet, as conditions on each
        workload's summary: ``"p99 < 200ms and error_ratio < 0.1%"`` (see
        :mod:`simulator.slo`). ``simulator run`` says whether the run met it, ``capacity``
        searches against it when no ``--slo`` is given, the dashboard draws its thresholds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = "scenario"
    description: str = ""
    seed: int = Field(1, ge=0, lt=2**63)
    duration: Duration = Field(gt=0)
    warmup: Annotated[float | Literal["auto"] | RequestWarmup, BeforeValidator(_parse_warmup),
                      PlainSerializer(_dump_warmup),
                      Field(json_schema_extra={"anyOf": [{"type": "number", "minimum": 0},
                                                         {"type": "string"}]})] = 0.0
    drain: Duration = Field(0.0, ge=0)
    workloads: dict[str, Workload] = Field(min_length=1, max_length=10_000)
    components: dict[str, ComponentParams] = Field(min_length=1)
    metrics: Metrics = Metrics()
    faults: list[Fault] = Field(default_factory=list)
    regions: RegionsSpec | None = None
    network: NetworkSpec | None = None
    variants: dict[str, list[str]] = Field(default_factory=dict)
    slo: str | None = None

    @field_validator("slo")
    @classmethod
    def _check_slo(cls, text: str | None) -> str | None:
        if text is not None and (problems := read_slo(text)[1]):
            raise ValueError("; ".join(p.message for p in problems))
        return text

    def objectives(self) -> list[Objective]:
        """The conditions of :attr:`slo` (none without one)."""
        return read_slo(self.slo)[0] if self.slo is not None else []

    @model_validator(mode="after")
    def _check_times(self) -> Self:
        if self.warmup == "auto" or isinstance(self.warmup, RequestWarmup):
            if self.metrics.requests == "streaming":
                what = ("auto (MSER-5)" if self.warmup == "auto"
                        else f"{self.warmup} (resolved from the requests created)")
                raise ValueError(f"warmup: {what} needs the requests table; a streaming "
                                 "run counts from a fixed warm-up: give a duration")
            if isinstance(self.warmup, RequestWarmup):
                expected = self.expected_requests()
                # an estimate (a Poisson run's mean): the margin keeps a plausible count in
                if self.warmup.requests >= 1.5 * expected + 10:
                    raise ValueError(
                        f"warmup ({self.warmup}) is more than the run is expected to "
                        f"create (about {expected:,.0f} requests): nothing would be left to "
                        "measure; give fewer, a duration, or auto")
        elif self.warmup >= self.duration:
            raise ValueError(
                f"warmup ({self.warmup:g}s) must be shorter than duration ({self.duration:g}s)"
            )
        return self

    @model_validator(mode="after")
    def _check_latency_metrics(self) -> Self:
        for name, params in self.components.items():
            scaling = getattr(params, "autoscaling", None)
            if (scaling is not None and any(m.type == "latency" for m in scaling.metrics)
                    and not self.record_spans()):
                raise ValueError(f"components.{name}.autoscaling: a latency metric reads the "
                                 "component's spans, which this run does not record; set "
                                 "metrics.spans: true")
        return self

    @property
    def warmup_time(self) -> float:
        """The fixed warm-up in seconds (0 with ``auto`` or a number of requests, decided after
        the run)."""
        return self.warmup if isinstance(self.warmup, float) else 0.0

    def expected_requests(self) -> float:
        """Upper estimate of the requests this scenario creates in one run."""
        total = 0.0
        for name, w in self.workloads.items():
            if isinstance(w.arrivals, Trace):  # one request per row, at most
                total += w.arrivals.rows
                continue
            if isinstance(w.arrivals, Closed):
                # self-limiting: at most one request per user per millisecond of think time
                rate = w.arrivals.users / max(w.arrivals.think_time.mean, 1e-3)
            else:
                rate = w.arrivals.mean_rate()
                if math.isnan(rate) and isinstance(w.arrivals, OnOff):
                    rate = w.arrivals.rate  # heavy-tailed periods: bound by the on rate
                if not isinstance(w.arrivals, ConstantRate):  # spikes multiply the others
                    rate *= self.spike_factor(name)
            if w.batch is not None:
                rate *= w.batch.mean_size
            total += rate * self.duration
        return total

    def spike_factor(self, workload: str) -> float:
        """Time-average over the run of the factor ``spike`` faults multiply ``workload``'s
        arrival rate by (overlapping spikes multiply, as the clients apply them); 1 without
        spikes. A spike of factor 10^9 for 5 s must count in the requests a run creates."""
        spikes = [(f.at, min(f.end, self.duration), f.factor) for f in self.faults
                  if isinstance(f, SpikeFault) and f.workload == workload
                  and f.at < self.duration]
        if not spikes:
            return 1.0
        cuts = sorted({0.0, self.duration, *(x for a, b, _ in spikes for x in (a, b))})
        weighted = sum((hi - lo) * math.prod(f for a, b, f in spikes if a <= lo < b)
                       for lo, hi in itertools.pairwise(cuts))
        return weighted / self.duration

    def spans_note(self) -> str | None:
        """What ``simulator run`` says when ``spans: auto`` left the spans out (else None)."""
        if (self.metrics.spans != "auto" or self.metrics.requests != "table"
                or self.record_spans()):
            return None
        return (f"spans: off (metrics.spans: auto records them up to "
                f"{SPANS_AUTO_MAX_REQUESTS:,} expected requests; this run expects "
                f"{self.expected_requests():,.0f}); metrics.spans: true records them")

    def record_spans(self) -> bool:
        """Whether per-hop spans are recorded in a run of this scenario."""
        if self.metrics.spans == "auto":
            return (self.metrics.requests == "table"
                    and self.expected_requests() <= SPANS_AUTO_MAX_REQUESTS)
        return bool(self.metrics.spans)


def scenario_model() -> type[Scenario]:
    """Return the validating Scenario model, with a member per registered component kind.

    Built once per :func:`simulator.registry.generation`: a kind registered later (a plug-in)
    gets a new model."""
    return _model_for(registry.generation())


@functools.cache
def _model_for(generation: int) -> type[Scenario]:
    members = tuple(k.params for k in registry.kinds().values())
    faults = (*GENERIC_FAULTS, *registry.timeline_events())
    fault_union = Annotated[Union[faults], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007
    union = Annotated[Union[members], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007
    model: type[Scenario] = create_model(
        "Scenario",
        __base__=Scenario,
        __doc__=Scenario.__doc__,
        components=(dict[str, union], Field(min_length=1)),
        faults=(list[fault_union], Field(default_factory=list)),
    )
    return model


def json_schema() -> dict[str, Any]:
    """Return the JSON Schema of the scenario format (for editors)."""
    schema = scenario_model().model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "simulator scenario"
    return schema


# --------------------------------------------------------------------------------------------
# loading
