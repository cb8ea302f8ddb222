"""Workload models: how requests arrive, what they ask for, and where they go.

Open-loop workloads generate arrivals regardless of how the system copes (Poisson, constant
rate, on/off bursts, a rate schedule); closed-loop workloads have a fixed number of users who
each wait for their reply and think before the next request.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from simulator.calls import Call
from simulator.distributions import Constant, Distribution, Duration, weights_problem
from simulator.keys import KeySpace
from simulator.units import RATE_PATTERN, parse_rate

Rate = Annotated[
    float,
    BeforeValidator(parse_rate),
    Field(json_schema_extra={"anyOf": [{"type": "number"}, {"type": "string",
                                                             "pattern": RATE_PATTERN}]}),
]
"""A rate per second; accepts numbers (per second) and strings (``800/s``, ``5k/s``)."""


class _Arrivals(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Poisson(_Arrivals):
    """Poisson arrivals: independent exponential gaps with mean 1/rate."""

    process: Literal["poisson"] = "poisson"
    rate: Rate = Field(gt=0, description="Mean arrivals per second.")

    def mean_rate(self) -> float:
        """Long-run arrivals per second."""
        return self.rate


class ConstantRate(_Arrivals):
    """Evenly spaced arrivals, one every 1/rate seconds."""

    process: Literal["constant"] = "constant"
    rate: Rate = Field(gt=0, description="Arrivals per second.")

    def mean_rate(self) -> float:
        """Long-run arrivals per second."""
        return self.rate


class OnOff(_Arrivals):
    """Bursts: Poisson at ``rate`` during on periods, nothing during off periods.

    On and off period lengths are distributions (a bare duration means a fixed length); the
    workload starts with an on period.
    """

    process: Literal["on_off"] = "on_off"
    rate: Rate = Field(gt=0, description="Arrivals per second while on.")
    on: Distribution = Field(description="Length of an on period.")
    off: Distribution = Field(description="Length of an off period.")

    def mean_rate(self) -> float:
        """Long-run arrivals per second."""
        on, off = self.on.mean, self.off.mean
        return self.rate * on / (on + off) if on + off > 0 else self.rate


class RateStep(BaseModel):
    """From ``at`` on, arrivals come at ``rate`` (until the next step)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    at: Duration = Field(ge=0)
    rate: Rate = Field(ge=0)


class Schedule(_Arrivals):
    """Poisson arrivals whose rate changes over time, piecewise constant (a step, a spike).

    ``steps`` must start at 0s and be in increasing time order; the last rate holds to the end.
    """

    process: Literal["schedule"] = "schedule"
    steps: list[RateStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.steps[0].at != 0:
            raise ValueError("the first step must be at 0s")
        ats = [s.at for s in self.steps]
        if any(b <= a for a, b in itertools.pairwise(ats)):
            raise ValueError("steps must be in strictly increasing order of 'at'")
        if all(s.rate == 0 for s in self.steps):
            raise ValueError("at least one step must have a rate above 0")
        return self

    def mean_rate(self) -> float:
        """Highest rate of the schedule (used for run-size estimates)."""
        return max(s.rate for s in self.steps)


class Sinusoid(_Arrivals):
    """Poisson arrivals whose rate follows a sinusoid (a daily cycle):
    ``rate * (1 + amplitude * cos(2 pi (t - peak_at) / period))``.

    Generated exactly by thinning (Lewis and Shedler): candidates at the peak rate, each kept
    with probability rate(t) / peak rate (purpose ``thinning``).
    """

    process: Literal["sinusoid"] = "sinusoid"
    rate: Rate = Field(gt=0, description="Mean arrivals per second over a period.")
    amplitude: float = Field(ge=0, le=1, description="Swing as a fraction of the mean rate.")
    period: Duration = Field(86400.0, gt=0, description="Length of one cycle (default 1 day).")
    peak_at: Duration = Field(0.0, ge=0, description="Time of a peak.")

    def mean_rate(self) -> float:
        """Peak rate (used for run-size estimates)."""
        return self.rate * (1 + self.amplitude)


class RatePoint(BaseModel):
    """The rate at time ``at`` (a point of a rate curve)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    at: Duration = Field(ge=0)
    rate: Rate = Field(ge=0)


class Curve(_Arrivals):
    """Poisson arrivals whose rate is linear between the given points (a measured rate curve;
    the last rate holds after the last point). Generated exactly by thinning, as
    :class:`Sinusoid`. ``points`` start at 0s, in increasing time order.

    Parameters
    ----------
    points
        ``{at, rate}`` points (at least two).
    file
        Instead of ``points``: a CSV file of ``at,rate`` rows (a header row is allowed; units
        as in the scenario, ``10m``, ``400/s``), relative to the scenario file. It is read
        when the scenario is loaded and its rows become ``points`` (``points.N`` in a message
        is the N-th data row, from 0), so the resolved scenario, and the run cache, hold the
        curve itself.
    """

    process: Literal["curve"] = "curve"
    points: list[RatePoint] = Field(default_factory=list)
    file: str | None = Field(None, description="CSV of at,rate rows (read at load).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if len(self.points) < 2:
            raise ValueError("a curve needs at least two points" + (
                f" (file {self.file!r} was not read: load the scenario with "
                "simulator.load_scenario or parse_scenario)" if self.file and not self.points
                else ""))
        if self.points[0].at != 0:
            raise ValueError("the first point must be at 0s")
        if any(b.at <= a.at for a, b in itertools.pairwise(self.points)):
            raise ValueError("points must be in strictly increasing order of 'at'")
        if all(p.rate == 0 for p in self.points):
            raise ValueError("at least one point must have a rate above 0")
        return self

    def mean_rate(self) -> float:
        """Highest rate of the curve (used for run-size estimates)."""
        return max(p.rate for p in self.points)


class Trace(_Arrivals):
    """Arrivals replayed from a recorded trace: a CSV file of timestamps with a header row, or
    a Parquet file (see :mod:`simulator.tracefile`). Replayed exactly: one request per row at
    its time (arrivals after ``duration`` are not replayed), streamed row by row.

    Parameters
    ----------
    file
        The CSV or Parquet (``.parquet``, ``.pq``) file, relative to the scenario file (to the
        working directory for a scenario given as text or a dict); resolved to an absolute
        path when the scenario is loaded.
    column
        The column of arrival times (default: the first).
    unit
        Unit of the times: ``s``, ``ms``, ``us`` or ``ns``.
    origin
        ``first``: the first row's time is time 0 of the run; ``zero``: times as they are.
    op_column, key_column
        Columns giving each request's operation and key (an integer), instead of the
        workload's ``mix`` and ``keys``.
    rows, first, last, digest
        Filled in when the scenario is loaded (the rows checked, the first and last arrival
        in seconds, the file's SHA-256): the resolved scenario, a run's manifest and the run
        cache name the trace by its content, and a run refuses a file that changed since.
    """

    process: Literal["trace"] = "trace"
    file: str = Field(min_length=1)
    column: str | None = None
    unit: Literal["s", "ms", "us", "ns"] = "s"
    origin: Literal["first", "zero"] = "first"
    op_column: str | None = None
    key_column: str | None = None
    rows: int = Field(0, ge=0)
    first: float = Field(0.0, ge=0)
    last: float = Field(0.0, ge=0)
    digest: str = ""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.digest:
            raise ValueError(f"the trace {self.file!r} was not read: load the scenario with "
                             "simulator.load_scenario or parse_scenario")
        return self

    def mean_rate(self) -> float:
        """Arrivals per second over the trace's span (used for run-size estimates)."""
        span = self.last - self.first
        return self.rows / span if span > 0 else float(self.rows)


class Closed(_Arrivals):
    """Closed loop: ``users`` users, each sends a request, waits for the reply, then thinks."""

    process: Literal["closed"] = "closed"
    users: int = Field(ge=1, le=1_000_000)
    think_time: Distribution = Field(
        default_factory=lambda: Constant(value=0.0),
        description="Pause between a reply and the next request.",
    )

    def mean_rate(self) -> float:
        """Upper bound of arrivals per second (zero response time)."""
        think = self.think_time.mean
        return self.users / think if think > 0 else float("inf")


class BatchSize(BaseModel):
    """How many requests one arrival brings (batch, or bulk, arrivals: M^X/G/c).

    ``{size: 4}`` (or a bare ``4``): always that many. ``{dist: geometric, mean: 2.5}``: P(k) =
    (1 - p)^(k - 1) p for k >= 1 with p = 1/mean (memoryless sizes, the M^X/M/1 textbook
    case). The requests of a batch are created at the same instant, one after the other, and
    each is drawn as any request is (operation, key, work); the size is drawn from the
    workload's own stream (purpose ``batch``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    dist: Literal["constant", "geometric"] = "constant"
    size: int | None = Field(None, ge=1, le=100_000, description="Requests per arrival.")
    mean: float | None = Field(None, ge=1, le=100_000, description="Mean requests per arrival.")

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, data: object) -> object:
        return {"size": data} if isinstance(data, int) and not isinstance(data, bool) else data

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.dist == "constant" and (self.size is None or self.mean is not None):
            raise ValueError("a constant batch takes size (and no mean)")
        if self.dist == "geometric" and (self.mean is None or self.size is not None):
            raise ValueError("a geometric batch takes mean (and no size)")
        return self

    @property
    def mean_size(self) -> float:
        """Mean requests per arrival."""
        return float(self.size if self.size is not None else self.mean or 1.0)


Arrivals = Annotated[
    Poisson | ConstantRate | OnOff | Schedule | Sinusoid | Curve | Trace | Closed,
    Field(discriminator="process")
]


class Workload(BaseModel):
    """One population of clients.

    Parameters
    ----------
    arrivals
        The arrival process (``process: poisson | constant | on_off | schedule | sinusoid |
        curve | closed``).
    target
        Where requests go: a component name or ``{to: name, op: ...}``.
    keys
        Key popularity (``{popularity: zipf, n: 100000, s: 0.9}``); none means key -1.
    mix
        Operation mix: operation name -> weight (normalised). Default: all ``read``.
    work
        Size multiplier of each request, applied to every service time it incurs; drawn at
        creation so that variants of a design see the same requests. Default 1.
    regions
        Where the clients are: region -> weight (normalised); each request draws its client's
        region at creation (``Request.region``). Needs the scenario's ``regions`` block.
        Omitted: clients everywhere (their edge crosses no link).
    priority
        Priority class of its requests, carried on every downstream call (a criticality, as
        Envoy's priority levels and Ciw's classes count it: 0 is the most important, larger
        numbers less). Only a service with ``queue: {discipline: priority}`` acts on it.
    priority_by_op
        Per-operation priority classes, overriding ``priority``.
    deadline
        Time budget of each request from its creation (seconds). As with a gRPC deadline, the
        client stops waiting when it passes (status ``timeout``, retries included), and it
        propagates with the request: a service drops work whose deadline has passed when its
        turn comes (status ``expired``), so late work is not done for nobody.
    patience
        Distribution of how long a request waits for a worker in one service queue before it
        leaves (reneging; status ``reneged``). Drawn once per request at creation from the
        workload's own stream (purpose ``patience``). Omitted: requests wait forever.
    baulk_at
        A request that finds at least this many requests waiting at a service does not join
        (baulking; status ``baulked``). Omitted: always joins.
    batch
        Requests per arrival of an open-loop process (:class:`BatchSize`); omitted: one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    arrivals: Arrivals
    target: Call
    keys: KeySpace | None = None
    mix: dict[str, float] = Field(default_factory=lambda: {"read": 1.0})
    work: Distribution | None = None
    regions: dict[str, float] | None = None
    priority: int = Field(0, ge=0, le=1000)
    priority_by_op: dict[str, Annotated[int, Field(ge=0, le=1000)]] = Field(default_factory=dict)
    deadline: Duration | None = Field(None, gt=0)
    patience: Distribution | None = None
    baulk_at: int | None = Field(None, ge=0)
    batch: BatchSize | None = None

    @model_validator(mode="after")
    def _check_mix(self) -> Self:
        if self.batch is not None and isinstance(self.arrivals, Closed):
            raise ValueError("batch: a closed-loop user sends one request at a time; batches "
                             "need an open-loop arrival process")
        if self.batch is not None and isinstance(self.arrivals, Trace):
            raise ValueError("batch: a trace replays each recorded arrival as it is; a batch "
                             "would multiply them (record one row per request)")
        if self.regions is not None and (problem := weights_problem(
                self.regions.values(), "regions weights")) is not None:
            raise ValueError(problem)
        if not self.mix:
            raise ValueError("mix must name at least one operation")
        unknown = sorted(set(self.priority_by_op) - set(self.mix))
        if unknown:
            raise ValueError(f"priority_by_op names operations not in mix: {unknown}")
        if (problem := weights_problem(self.mix.values(), "mix weights")) is not None:
            raise ValueError(problem)
        return self
