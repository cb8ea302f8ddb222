"""The ``internals`` block of ``kind: service``: cores, a threading model, steps per operation,
memory and GC pauses (opt-in; without it a service is the simple model of ``workers`` and a
``service_time``). The runtime is :mod:`simulator.components.service.internals`.

An operation's work is a list of steps run in order:

* ``{cpu: 2ms}``: holds a core for the duration (a distribution; divided by the instance's
  ``speed``, multiplied by the request's ``work`` and a ``slow`` fault);
* ``{io: 10ms}``: waits without a core (disk, a socket read, a sleep);
* ``{memory: 4MB}``: from this step on, the request holds this much more memory, until it ends;
* any step of a service's ``calls`` (a call, ``{parallel: [...]}``, ``{call: x,
  probability: p}``, ``{choice: ...}``, ``{reenter: ...}``), with its policies.

The threading model says what a request holds while it runs its steps:

* ``thread_pool`` (Tomcat, a servlet container, a Rails/Gunicorn worker pool): a request takes
  one of ``threads`` threads for its whole life, through its I/O waits and calls; requests that
  find every thread busy wait in the service's ``queue`` (its discipline and limit). The
  threads' CPU steps share the ``cores`` as an OS scheduler time-slices them: egalitarian
  processor sharing, each runnable thread at ``min(1, cores / runnable)`` of a core. So the
  throughput is at most ``threads / (cpu + io)`` (threads) and ``cores / cpu`` (cores).
* ``event_loop`` (Node.js cluster, Netty, nginx, asyncio): one loop per core; an arriving
  request is given to the loops in turn (round robin) and stays on its loop. A CPU step runs
  on its loop to completion, in the order the steps became ready (FIFO, no preemption): while
  it runs, every other request of that loop whose next step is CPU waits. I/O and calls hold
  nothing. Nothing waits for a thread (no queue).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from simulator.calls import AnyStep, Step, step_references
from simulator.distributions import Distribution, Duration

_BYTE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_BYTES = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_bytes(value: object) -> float:
    """Bytes from a number or a string with a unit (``512MB``, ``2GiB``, ``64kB``)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a size in bytes, got {value!r}")
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str) and (m := _BYTES.match(value)) \
            and m.group(2).lower() in _BYTE_UNITS:
        out = float(m.group(1)) * _BYTE_UNITS[m.group(2).lower()]
    else:
        raise ValueError(f"must be a size in bytes: a number or a string such as 512MB, 2GiB "
                         f"(units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), got {value!r}")
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"must be a finite size >= 0, got {value!r}")
    return out


Bytes = Annotated[float, BeforeValidator(parse_bytes)]
"""A size in bytes; accepts numbers and strings with a unit (``4MB``, ``1GiB``)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CpuStep(_Model):
    """Holds a core for ``cpu`` seconds of work (see the module)."""

    cpu: Distribution = Field(description="Time on a core (s), before speed, work and a "
                              "slow fault.")


class IoStep(_Model):
    """Waits ``io`` seconds without a core (a thread pool's thread stays held)."""

    io: Distribution = Field(description="Time waiting without a core (s).")


class MemoryStep(_Model):
    """Holds ``memory`` bytes more from this step until the request ends."""

    memory: Bytes = Field(description="Bytes held from this step until the request ends.")


def _discriminate(value: Any) -> str:
    if isinstance(value, dict):
        return next((key for key in ("cpu", "io", "memory") if key in value), "call")
    tags: dict[type, str] = {CpuStep: "cpu", IoStep: "io", MemoryStep: "memory"}
    return tags.get(type(value), "call")


InternalStep = Annotated[
    Annotated[CpuStep, Tag("cpu")] | Annotated[IoStep, Tag("io")]
    | Annotated[MemoryStep, Tag("memory")] | Annotated[Step, Tag("call")],
    Discriminator(_discriminate),
]
"""One step of an operation: ``{cpu: d}``, ``{io: d}``, ``{memory: bytes}`` or a call step."""


class MemoryLimit(_Model):
    """Memory pressure: what happens while the memory the requests hold is at or above
    ``limit`` (as Envoy's overload manager acts on heap usage, not on reservations)."""

    limit: Bytes = Field(gt=0, description="Memory the requests of one instance may hold "
                         "before the pressure action applies (bytes).")
    on_limit: Literal["refuse", "slow"] = Field(
        "refuse", description="refuse: arrivals are refused (status rejected) while at or "
        "above the limit; slow: CPU steps that start then take `slowdown` times longer "
        "(swapping, GC thrashing).")
    slowdown: float = Field(2.0, gt=1, le=1000, description="Factor on CPU steps started "
                            "at or above the limit (on_limit: slow).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.on_limit != "slow" and "slowdown" in self.model_fields_set:
            raise ValueError("slowdown is ignored by on_limit: refuse; it applies to "
                             "on_limit: slow")
        return self


class GcPauses(_Model):
    """Stop-the-world GC pauses: while one lasts, no CPU step progresses (a step running
    then resumes after it with the work it had left; I/O and calls carry on). A pause starts
    every ``every`` seconds (a schedule, the first at ``every``) or each time the requests
    have allocated ``after_allocated`` bytes since the previous pause (memory steps count)."""

    pause: Duration = Field(gt=0, description="Length of one stop-the-world pause (s).")
    every: Duration | None = Field(None, gt=0, description="Period of schedule-driven "
                                   "pauses (s).")
    after_allocated: Bytes | None = Field(None, gt=0, description="Allocation-driven: a "
                                          "pause each time this many bytes were allocated.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.every is None) == (self.after_allocated is None):
            raise ValueError("gc needs exactly one of every (a schedule) and after_allocated "
                             "(allocation-driven)")
        if self.every is not None and self.pause >= self.every:
            raise ValueError(f"gc pause ({self.pause:g}s) must be shorter than every "
                             f"({self.every:g}s)")
        return self


class Internals(_Model):
    """A service instance's cores, threading model and steps (see the module)."""

    cores: int = Field(1, ge=1, le=4096, description="Cores of one instance.")
    threading: Literal["thread_pool", "event_loop"] = Field(
        "thread_pool", description="thread_pool: a thread is held for the request's life; "
        "event_loop: one loop per core, only CPU steps block it.")
    threads: int | None = Field(None, ge=1, le=1_000_000, description="Threads of a "
                                "thread pool (default 200, Tomcat's maxThreads).")
    steps: dict[str, list[InternalStep]] = Field(
        min_length=1, description="Per operation, its steps in order; '*' applies to "
        "operations not listed.")
    memory: MemoryLimit | None = None
    gc: GcPauses | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.threading == "event_loop" and self.threads is not None:
            raise ValueError("threads is ignored by threading: event_loop (one loop per core); "
                             "it applies to threading: thread_pool")
        return self

    @property
    def thread_count(self) -> int:
        """Threads of one instance (an event loop: one per core)."""
        if self.threading == "event_loop":
            return self.cores
        return 200 if self.threads is None else self.threads

    def call_steps(self) -> Iterator[tuple[str, int, AnyStep]]:
        """(operation, index, step) of every call step."""
        for op, steps in self.steps.items():
            for i, step in enumerate(steps):
                if not isinstance(step, CpuStep | IoStep | MemoryStep):
                    yield op, i, step

    def references(self) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """(key path, component) of every component the call steps name."""
        for op, i, step in self.call_steps():
            prefix = ("internals", "steps", op)
            for path, name in step_references([step], prefix):
                yield (*prefix, i, *path[len(prefix) + 1:]), name
