"""The recorder: columnar buffers that components append raw facts to during a run.

Numbers go to ``array.array`` buffers (8 bytes a value, appended at list speed); strings to
lists of interned names. Nothing here computes a statistic: tables are assembled once, at the
end, by :meth:`Recorder.tables`.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from simulator.messages import IN_FLIGHT, LOOKUP_LABELS, STATUS_LABELS, Request
from simulator.metrics.buffers import RawBuffer, unique
from simulator.metrics.schema import TABLES
from simulator.metrics.streaming import RequestStream

if TYPE_CHECKING:  # pandas is imported where the tables are assembled, at the end of a run
    import pandas as pd

    from simulator.kind import RawTable

NAN = float("nan")


class Recorder:
    """Buffers of one run.

    Requests are recorded in two halves: creation (``created``) and completion (``completed``);
    a request created but never completed is reported with status ``in_flight``.

    Parameters
    ----------
    workloads
        Workload names by index.
    stream
        When given, requests are folded into its counters and histograms (streaming mode)
        instead of one row each; there is then no ``requests`` table.
    tables
        The raw tables the kinds declare; each run has every one of them (empty if unused).
    """

    def __init__(self, workloads: list[str], stream: RequestStream | None = None,
                 tables: Iterable[RawTable] = ()) -> None:
        self.workloads = workloads
        #: buffers of the raw tables the kinds declare, by name, in declaration order
        self._tables = {t.name: RawBuffer(t) for t in tables}
        self.stream = stream
        #: ``created(workload, op, key, now) -> request id`` and
        #: ``completed(request, status, now)``: the two halves of a request's record.
        self.created: Callable[[int, str, int, float], int]
        self.completed: Callable[[Request, int, float], None]
        if stream is None:
            self.created, self.completed = self._created_row, self._completed_row
        else:
            self.created = lambda workload, op, key, now: stream.created_at(workload, op, now)
            self.completed = stream.completed
        # request creation, indexed by request id
        self.req_workload = array("h")
        self.req_op: list[str] = []
        self.req_key = array("q")
        self.req_start = array("d")
        self.req_region = array("h")  # codes into ``regions``; recorded only with regions
        self.regions: list[str] = [""]
        # request completion
        self.done_id = array("q")
        self.done_end = array("d")
        self.done_status = array("b")
        self.done_attempts = array("h")
        self.done_lookup = array("b")  # requests.<lookup column>: hit, miss or none
        self.done_stale = array("b")
        # spans
        self.span_id = array("q")
        self.span_instance = array("i")
        self.span_op: list[str] = []
        self.span_arrival = array("d")
        self.span_start = array("d")
        self.span_end = array("d")
        self.span_status = array("b")
        self.instances: list[tuple[str, str]] = []  # (component, instance) by instance code
        # samples and events (low volume)
        # samples: one row per gauge and sampling instant, as (time, gauge index, value), so a
        # long run costs 20 bytes per row (the names are looked up once, at assembly)
        self._sample_time = array("d")
        self._sample_gauge = array("i")
        self._sample_value = array("d")
        self.events: dict[str, list[object]] = {c: [] for c in TABLES["events"]}
        self._gauges: list[tuple[str, str, str, str, Callable[[], float]]] = []

    # ---- registration -------------------------------------------------------------------
    def instance_code(self, component: str, instance: str) -> int:
        """Return the integer code under which ``instance`` records spans."""
        self.instances.append((component, instance))
        return len(self.instances) - 1

    def region_code(self, name: str) -> int:
        """Return the integer code of region ``name`` in the ``requests.region`` column."""
        if name not in self.regions:
            self.regions.append(name)
        return self.regions.index(name)

    def table(self, name: str) -> RawBuffer:
        """The buffer of the declared raw table ``name`` (see :class:`~simulator.kind.RawTable`)."""
        return self._tables[name]

    def add_gauge(
        self, component: str, instance: str, metric: str, label: str, read: Callable[[], float]
    ) -> None:
        """Sample ``read()`` every interval as ``metric`` of ``instance`` (with ``label``)."""
        self._gauges.append((component, instance, metric, label, read))

    def footprint(self) -> tuple[int, int]:
        """(requests created so far, bytes held by the run's row buffers so far).

        The bytes are those of the columnar buffers (requests, spans, samples and every
        declared raw table), exactly; names, events and Python objects come on top. What
        a progress line shows; the tables built at the end take about as much again.
        """
        buffers = [v for v in vars(self).values() if isinstance(v, array)]
        buffers += [a for t in self._tables.values() for a in t.columns.values()]
        held = sum(a.itemsize * len(a) for a in buffers)
        created = len(self.req_start) if self.stream is None else self.stream.created_total
        return created, held

    # ---- recording ----------------------------------------------------------------------
    def sample(self, now: float) -> None:
        """Record every gauge at ``now``."""
        times, codes, values = self._sample_time, self._sample_gauge, self._sample_value
        for i, gauge in enumerate(self._gauges):
            times.append(now)
            codes.append(i)
            values.append(float(gauge[4]()))

    def _created_row(self, workload: int, op: str, key: int, now: float) -> int:
        rid = len(self.req_start)
        self.req_workload.append(workload)
        self.req_op.append(op)
        self.req_key.append(key)
        self.req_start.append(now)
        return rid

    def _completed_row(self, req: Request, status: int, now: float) -> None:
        self.done_id.append(req.id)
        self.done_end.append(now)
        self.done_status.append(status)
        self.done_attempts.append(req.attempts)
        self.done_lookup.append(req.lookup)
        self.done_stale.append(req.stale)

    def span(self, request_id: int, instance: int, op: str, arrival: float, start: float,
             end: float, status: int) -> None:
        """Record one hop (components with hot paths may append inline instead)."""
        self.span_id.append(request_id)
        self.span_instance.append(instance)
        self.span_op.append(op)
        self.span_arrival.append(arrival)
        self.span_start.append(start)
        self.span_end.append(end)
        self.span_status.append(status)

    def event(self, now: float, component: str, instance: str, event: str, detail: str = ""
              ) -> None:
        """Record a state change."""
        e = self.events
        e["time"].append(now)
        e["component"].append(component)
        e["instance"].append(instance)
        e["event"].append(event)
        e["detail"].append(detail)

    # ---- assembly -----------------------------------------------------------------------
    def tables(self) -> dict[str, pd.DataFrame]:
        """Assemble the tables (called once, after the run).

        In streaming mode ``requests`` is replaced by ``request_stats`` and
        ``latency_histogram`` (:mod:`simulator.metrics.streaming`).
        """
        head = ({"requests": self._requests()} if self.stream is None
                else self.stream.tables())
        return {
            **head,
            "spans": self._spans(),
            "samples": self._samples(),
            "events": _frame("events", self.events),
            **{name: buf.frame(self._names) for name, buf in self._tables.items()},
        }

    def _requests(self) -> pd.DataFrame:
        import pandas as pd

        n = len(self.req_start)
        end = np.full(n, np.nan)
        status = np.full(n, IN_FLIGHT, dtype=np.int8)
        attempts = np.ones(n, dtype=np.int16)
        lookup = np.zeros(n, dtype=np.int8)
        stale = np.zeros(n, dtype=bool)
        ids = np.frombuffer(self.done_id, dtype=np.int64) if len(self.done_id) else np.empty(
            0, np.int64)
        if len(np.unique(ids)) != len(ids):
            raise AssertionError("a request completed twice (simulator bug)")
        if len(ids):
            end[ids] = np.frombuffer(self.done_end, dtype=np.float64)
            status[ids] = np.frombuffer(self.done_status, dtype=np.int8)
            attempts[ids] = np.frombuffer(self.done_attempts, dtype=np.int16)
            lookup[ids] = np.frombuffer(self.done_lookup, dtype=np.int8)
            stale[ids] = np.frombuffer(self.done_stale, dtype=np.int8).astype(bool)
        start = np.array(self.req_start, dtype=np.float64)
        workload_codes = np.array(self.req_workload, dtype=np.int16)
        region_codes = (np.array(self.req_region, dtype=np.int16) if len(self.req_region) == n
                        else np.zeros(n, dtype=np.int16))
        columns = (  # in the schema's order, which names them
            np.arange(n, dtype=np.int64),
            pd.Categorical.from_codes(workload_codes, categories=pd.Index(self.workloads)),
            pd.Categorical(self.req_op),
            np.array(self.req_key, dtype=np.int64),
            start,
            end,
            end - start,
            _status(status),
            attempts,
            pd.Categorical.from_codes(lookup, categories=pd.Index(LOOKUP_LABELS)),
            stale,
            pd.Categorical.from_codes(region_codes, categories=pd.Index(self.regions)),
        )
        return pd.DataFrame(dict(zip(TABLES["requests"], columns, strict=True)))

    def _samples(self) -> pd.DataFrame:
        import pandas as pd

        codes = np.frombuffer(self._sample_gauge, dtype=np.int32) if len(
            self._sample_gauge) else np.empty(0, np.int32)
        columns: dict[str, object] = {
            "time": np.array(self._sample_time, dtype=np.float64)}
        for j, name in enumerate(("component", "instance", "metric", "label")):
            names = [g[j] for g in self._gauges]
            used = sorted({names[i] for i in np.unique(codes).tolist()})  # as pd.Categorical
            where = {n: k for k, n in enumerate(used)}
            of_gauge = np.array([where.get(n, -1) for n in names], dtype=np.int32)
            columns[name] = pd.Categorical.from_codes(
                of_gauge[codes] if len(codes) else codes, categories=pd.Index(used))
        columns["value"] = np.array(self._sample_value, dtype=np.float64)
        return pd.DataFrame(columns)

    def _spans(self) -> pd.DataFrame:
        import pandas as pd

        codes = np.array(self.span_instance, dtype=np.int32)
        comps = [c for c, _ in self.instances]
        insts = [i for _, i in self.instances]
        comp_cats = list(dict.fromkeys(comps))
        comp_of_code = np.array([comp_cats.index(c) for c in comps], dtype=np.int32)
        return pd.DataFrame({
            "request_id": np.array(self.span_id, dtype=np.int64),
            "component": pd.Categorical.from_codes(
                comp_of_code[codes] if len(codes) else codes, categories=pd.Index(comp_cats)),
            "instance": pd.Categorical.from_codes(codes, categories=pd.Index(unique(insts))),
            "op": pd.Categorical(self.span_op),
            "arrival": np.array(self.span_arrival, dtype=np.float64),
            "start": np.array(self.span_start, dtype=np.float64),
            "end": np.array(self.span_end, dtype=np.float64),
            "status": _status(np.array(self.span_status, dtype=np.int8)),
        })


    def _names(self, codes: np.ndarray) -> pd.Categorical[str]:
        """Instance codes as a categorical of component names."""
        import pandas as pd

        comps = list(dict.fromkeys(c for c, _ in self.instances))
        of_code = np.array([comps.index(c) for c, _ in self.instances], dtype=np.int32)
        idx = np.asarray(codes, dtype=np.int32)
        return pd.Categorical.from_codes(of_code[idx] if len(idx) else idx,
                                         categories=pd.Index(comps))


def _status(codes: np.ndarray) -> pd.Categorical[str]:
    import pandas as pd

    return pd.Categorical.from_codes(codes.astype(np.int8), categories=pd.Index(STATUS_LABELS))


def _frame(table: str, columns: dict[str, list[object]]) -> pd.DataFrame:
    import pandas as pd

    out: dict[str, object] = {}
    for name, (dtype, _) in TABLES[table].items():
        values = columns[name]
        if dtype == "category":
            out[name] = pd.Categorical(values)
        elif dtype == "object":
            out[name] = pd.Series(values, dtype=object)
        else:
            out[name] = np.array(values, dtype=dtype)
    return pd.DataFrame(out)
