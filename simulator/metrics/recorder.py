"""The recorder: columnar buffers that components append raw facts to during a run.

Numbers go to ``array.array`` buffers (the column's own width, appended at list speed); a
request's operation to an integer code; a span's operation to a list of interned names (the
hot paths append it inline). Nothing here computes a statistic: tables are assembled once, at
the end, by :meth:`Recorder.tables`.

Memory (``make bench-memory``): no per-request Python object outlives its request. When the
tables are built, a column whose buffer already has the table's dtype (ids, keys, times) *is*
that buffer (a numpy view, no copy, and the frame is built with ``copy=False`` so pandas does
not stack same-dtype columns into a new block either); every other buffer is emptied as soon as
its column exists, so the peak is about the buffers plus the narrow columns, not buffers plus
a whole second copy of the tables.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

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
        # request creation, indexed by request id. The workload and the operation share one
        # packed code (``op << 16 | workload``, the op a code into ``_ops`` in order of first
        # use): one append fewer per request, 4 bytes instead of 6
        self.req_workload_op = array("i")
        self._ops: dict[str, int] = {}  # op name -> code, in order of first use
        self.req_key = array("q")
        self.req_start = array("d")
        self.req_region = array("h")  # codes into ``regions``; recorded only with regions
        self.regions: list[str] = [""]
        # request completion: id, end time and one packed code of the small columns
        # (``attempts << 7 | stale << 6 | lookup << 4 | status``, see :func:`_outcome`): three
        # appends per request instead of six, 20 bytes instead of 21
        self.done_id = array("q")
        self.done_end = array("d")
        self.done_code = array("i")
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
        self._assembled = False
        self._finished: Callable[[Any], Callable[[Request, int], None]]
        if stream is None:
            self.created, self.completed = self._row_writers()
        else:
            self.created = lambda workload, op, key, now: stream.created_at(workload, op, now)
            self.completed = stream.completed

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

    def _row_writers(self) -> tuple[Callable[[int, str, int, float], int],
                                    Callable[[Request, int, float], None]]:
        """The two halves of a request's row, as closures over the buffers' appends (the
        hot path: one call per request created, one per request completed)."""
        add_workload_op, add_key = self.req_workload_op.append, self.req_key.append
        starts = self.req_start
        add_start, ops = starts.append, self._ops

        def created(workload: int, op: str, key: int, now: float) -> int:
            rid = len(starts)
            try:  # a plain dict: its lookup is the interpreter's fast path
                add_workload_op(ops[op] << 16 | workload)
            except KeyError:
                add_workload_op(ops.setdefault(op, len(ops)) << 16 | workload)
            add_key(key)
            add_start(now)
            return rid

        add_id, add_end, add_code = self.done_id.append, self.done_end.append, self.done_code.append

        def completed(req: Request, status: int, now: float) -> None:
            add_id(req.id)
            add_end(now)
            # shifts and ors are cheaper than an append (a call) per column
            add_code(req.attempts << 7 | req.stale << 6 | req.lookup << 4 | status)

        def finished(clock: Any) -> Callable[[Request, int], None]:
            def completed_now(req: Request, status: int) -> None:
                add_id(req.id)
                add_end(clock._now)
                add_code(req.attempts << 7 | req.stale << 6 | req.lookup << 4 | status)
            return completed_now

        self._finished = finished
        return created, completed

    def maker(self, workload: int, op: str, clock: Any,
              key: Callable[[], int] | None = None) -> Callable[[], Request]:
        """``make()``: a new request of ``workload`` and ``op`` with unit work, created now
        (``clock._now``, simulated seconds) with the key ``key()`` draws (-1 when ``key`` is
        None), its creation recorded: what ``created`` then ``Request(...)`` do, in one call
        (a workload's common case, once per request; the packed workload and op code is
        computed here, once)."""
        if self.stream is not None:
            created = self.created

            def counted() -> Request:
                now, k = clock._now, -1 if key is None else key()
                return Request(created(workload, op, k, now), workload, op, k, 1.0, now)

            return counted
        ops = self._ops
        code = ops.setdefault(op, len(ops)) << 16 | workload
        add_workload_op, add_key = self.req_workload_op.append, self.req_key.append
        starts = self.req_start
        add_start = starts.append
        if key is None:

            def keyless() -> Request:
                now, rid = clock._now, len(starts)
                add_workload_op(code)
                add_key(-1)
                add_start(now)
                return Request(rid, workload, op, -1, 1.0, now)

            return keyless
        draw = key

        def keyed() -> Request:
            now, rid, k = clock._now, len(starts), draw()
            add_workload_op(code)
            add_key(k)
            add_start(now)
            return Request(rid, workload, op, k, 1.0, now)

        return keyed

    def completed_at(self, clock: Any) -> Callable[[Request, int], None]:
        """``completed(request, status, clock._now)`` as one call of two arguments: what a
        task's end calls (one Python frame per request fewer than a wrapper reading the
        clock). ``clock`` is the run's environment (its ``_now``: simulated seconds)."""
        stream = self.stream
        if stream is None:
            return self._finished(clock)
        return lambda req, status: stream.completed(req, status, clock._now)

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
        """Assemble the tables (once, after the run: the buffers become the tables' columns
        or are emptied, so nothing more can be recorded).

        In streaming mode ``requests`` is replaced by ``request_stats`` and
        ``latency_histogram`` (:mod:`simulator.metrics.streaming`).
        """
        if self._assembled:
            raise RuntimeError("the tables of a run are assembled once (simulator bug)")
        self._assembled = True
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
        ids = _view(self.done_id, np.int64)
        seen = np.zeros(n, dtype=bool)  # 1 byte a request, where np.unique would sort a copy
        seen[ids] = True
        if int(np.count_nonzero(seen)) != len(ids):
            raise AssertionError("a request completed twice (simulator bug)")
        del seen
        end = _scatter(np.full(n, np.nan), ids, self.done_end)
        status, attempts, lookup, stale = _outcome(n, ids, self.done_code)
        del ids
        del self.done_id[:]
        start = _view(self.req_start, np.float64)
        workload, op = self._workload_op()
        region = (_categorical(self.req_region, np.int16, self.regions)
                  if len(self.req_region) == n
                  else _categorical(np.zeros(n, dtype=np.int8), np.int8, self.regions))
        columns = (  # in the schema's order, which names them
            np.arange(n, dtype=np.int64),
            workload,
            op,
            _view(self.req_key, np.int64),
            start,
            end,
            end - start,
            _status(status),
            attempts,
            pd.Categorical.from_codes(lookup, categories=pd.Index(LOOKUP_LABELS)),
            stale,
            region,
        )
        # copy=False: the columns are the buffers (views) or new arrays, kept as they are
        return pd.DataFrame(dict(zip(TABLES["requests"], columns, strict=True)), copy=False)

    def _workload_op(self) -> tuple[pd.Categorical[str], pd.Categorical[str]]:
        """The workload and op columns, from the packed codes (the buffer is emptied)."""
        packed = _view(self.req_workload_op, np.int32)
        workload = _categorical(packed & 0xFFFF, np.int16, self.workloads)
        op = _sorted_categorical(packed >> 16, list(self._ops))
        del packed
        del self.req_workload_op[:]
        return workload, op

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

        comps = [c for c, _ in self.instances]
        insts = [i for _, i in self.instances]
        comp_cats = list(dict.fromkeys(comps))
        comp_of_code = np.array([comp_cats.index(c) for c in comps],
                                dtype=_code_dtype(len(comp_cats)))
        codes = _view(self.span_instance, np.int32)
        component = pd.Categorical.from_codes(
            comp_of_code[codes] if len(codes) else codes.astype(comp_of_code.dtype),
            categories=pd.Index(comp_cats))
        instance = pd.Categorical.from_codes(
            codes.astype(_code_dtype(len(insts))), categories=pd.Index(unique(insts)))
        del codes
        del self.span_instance[:]
        # as pd.Categorical(names) would make it (sorted categories), without an object
        # array of every name: the codes are read straight off the list, which is then freed
        names = sorted(set(self.span_op))
        where = {name: k for k, name in enumerate(names)}
        op = pd.Categorical.from_codes(
            np.fromiter(map(where.__getitem__, self.span_op), dtype=_code_dtype(len(names)),
                        count=len(self.span_op)),
            categories=pd.Index(names))
        self.span_op.clear()
        return pd.DataFrame({
            "request_id": _view(self.span_id, np.int64),
            "component": component,
            "instance": instance,
            "op": op,
            "arrival": _view(self.span_arrival, np.float64),
            "start": _view(self.span_start, np.float64),
            "end": _view(self.span_end, np.float64),
            "status": _status(_view(self.span_status, np.int8)),
        }, copy=False)

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

    return pd.Categorical.from_codes(codes.astype(np.int8, copy=False),
                                     categories=pd.Index(STATUS_LABELS))


def _code_dtype(categories: int) -> type[np.signedinteger]:
    """The narrowest codes pandas keeps for ``categories`` categories (it casts to it)."""
    return np.int8 if categories < 2**7 else np.int16 if categories < 2**15 else np.int32


def _view(buffer: array[Any], dtype: type[np.generic]) -> np.ndarray:
    """The buffer as a numpy array without a copy (it then can no longer grow)."""
    return np.frombuffer(buffer, dtype=dtype) if len(buffer) else np.empty(0, dtype)


def _scatter(out: np.ndarray, ids: np.ndarray, buffer: array[Any]) -> np.ndarray:
    """``out[ids] = buffer``, then empty the buffer: its memory is freed column by column."""
    if len(ids):
        out[ids] = np.frombuffer(buffer, dtype=np.dtype(buffer.typecode))
    del buffer[:]
    return out


def _outcome(n: int, ids: np.ndarray, buffer: array[Any]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Status, attempts, lookup and stale by request id, unpacked from the completion codes
    (``attempts << 7 | stale << 6 | lookup << 4 | status``); a request never completed has
    the in-flight defaults (``in_flight``, 1 attempt, no lookup, not stale). The buffer is
    emptied."""
    status = np.full(n, IN_FLIGHT, dtype=np.int8)
    attempts = np.ones(n, dtype=np.int16)
    lookup = np.zeros(n, dtype=np.int8)
    stale = np.zeros(n, dtype=bool)
    if len(ids):
        code = np.frombuffer(buffer, dtype=np.int32)
        status[ids] = code & 0xF
        lookup[ids] = (code >> 4) & 0x3
        stale[ids] = (code >> 6) & 0x1
        attempts[ids] = code >> 7
        del code
    del buffer[:]
    return status, attempts, lookup, stale


def _categorical(codes: array[Any] | np.ndarray, dtype: type[np.generic],
                 categories: list[str]) -> pd.Categorical[str]:
    """Codes into ``categories`` (in that order) as a categorical; an ``array`` buffer of
    codes is emptied once the categorical holds its own (narrower) copy."""
    import pandas as pd

    values = _view(codes, dtype) if isinstance(codes, array) else codes
    out = pd.Categorical.from_codes(values.astype(_code_dtype(len(categories))),
                                    categories=pd.Index(categories))
    del values
    if isinstance(codes, array):
        del codes[:]
    return out


def _sorted_categorical(codes: np.ndarray, names: list[str]) -> pd.Categorical[str]:
    """Codes into ``names`` (codes in order of registration) as ``pd.Categorical`` of the
    names would be: the names used, sorted."""
    import pandas as pd

    # the names no request used (a workload that made none) are no category
    used = np.bincount(codes, minlength=len(names)) > 0 if len(codes) else np.zeros(
        len(names), dtype=bool)
    cats = sorted(name for name, u in zip(names, used.tolist(), strict=True) if u)
    rank = np.array([cats.index(name) if u else -1 for name, u in
                     zip(names, used.tolist(), strict=True)], dtype=_code_dtype(len(cats)))
    return pd.Categorical.from_codes(rank[codes] if len(codes) else rank[:0],
                                     categories=pd.Index(cats))


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
