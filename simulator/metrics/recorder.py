"""The recorder: columnar buffers that components append raw facts to during a run.

Numbers go to ``array.array`` buffers (8 bytes a value, appended at list speed); strings to
lists of interned names. Nothing here computes a statistic: tables are assembled once, at the
end, by :meth:`Recorder.tables`.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import numpy as np
import pandas as pd

from simulator.messages import (
    CACHE_LABELS,
    COMMAND_OUTCOMES,
    IN_FLIGHT,
    MESSAGE_STATUS_LABELS,
    STATUS_LABELS,
    Request,
)
from simulator.metrics.schema import TABLES
from simulator.metrics.streaming import RequestStream

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
    """

    def __init__(self, workloads: list[str], stream: RequestStream | None = None) -> None:
        self.workloads = workloads
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
        self.done_cache = array("b")
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
        # messages of queues and topic subscriptions: one row each, updated in place
        self.msg_queue = array("i")
        self.msg_request = array("q")
        self.msg_enqueued = array("d")
        self.msg_first = array("d")
        self.msg_finished = array("d")
        self.msg_attempts = array("h")
        self.msg_status = array("b")
        self.queues: list[str] = []  # queue names by queue code
        # event sourcing: one row per command attempt, one per event applied by a read model
        self.cmd_store = array("i")
        self.cmd_request = array("q")
        self.cmd_key = array("q")
        self.cmd_attempt = array("h")
        self.cmd_start = array("d")
        self.cmd_replayed = array("i")
        self.cmd_loaded = array("d")
        self.cmd_end = array("d")
        self.cmd_version = array("q")
        self.cmd_outcome = array("b")
        self.cmd_snapshot = array("b")
        self.proj_model = array("i")
        self.proj_request = array("q")
        self.proj_key = array("q")
        self.proj_version = array("q")
        self.proj_committed = array("d")
        self.proj_applied = array("d")
        self.proj_replay = array("b")
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

    def queue_code(self, name: str) -> int:
        """Return the integer code under which the queue ``name`` records its messages."""
        self.queues.append(name)
        return len(self.queues) - 1

    def new_message(self, queue: int, request_id: int, now: float, status: int) -> int:
        """Add a message row (queue code, producing request, time, status); return its id.

        The queue updates ``msg_first``, ``msg_finished``, ``msg_attempts`` and ``msg_status``
        at the returned index as the message moves, so the row is current when the run ends.
        """
        self.msg_queue.append(queue)
        self.msg_request.append(request_id)
        self.msg_enqueued.append(now)
        self.msg_first.append(NAN)
        self.msg_finished.append(NAN)
        self.msg_attempts.append(0)
        self.msg_status.append(status)
        return len(self.msg_status) - 1

    def command(self, store: int, request_id: int, key: int, attempt: int, start: float,
                replayed: int, loaded: float, end: float, version: int, outcome: int,
                snapshot: bool) -> None:
        """Record one load-decide-append attempt of an event store (``store`` is its instance
        code; ``outcome`` indexes :data:`COMMAND_OUTCOMES`)."""
        self.cmd_store.append(store)
        self.cmd_request.append(request_id)
        self.cmd_key.append(key)
        self.cmd_attempt.append(attempt)
        self.cmd_start.append(start)
        self.cmd_replayed.append(replayed)
        self.cmd_loaded.append(loaded)
        self.cmd_end.append(end)
        self.cmd_version.append(version)
        self.cmd_outcome.append(outcome)
        self.cmd_snapshot.append(snapshot)

    def projection(self, model: int, request_id: int, key: int, version: int,
                   committed: float, applied: float, replay: bool) -> None:
        """Record one event applied by a read model (``model`` is its instance code)."""
        self.proj_model.append(model)
        self.proj_request.append(request_id)
        self.proj_key.append(key)
        self.proj_version.append(version)
        self.proj_committed.append(committed)
        self.proj_applied.append(applied)
        self.proj_replay.append(replay)

    def add_gauge(
        self, component: str, instance: str, metric: str, label: str, read: Callable[[], float]
    ) -> None:
        """Sample ``read()`` every interval as ``metric`` of ``instance`` (with ``label``)."""
        self._gauges.append((component, instance, metric, label, read))

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
        self.done_cache.append(req.cache)
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
            "messages": self._messages(),
            "commands": self._commands(),
            "projections": self._projections(),
        }

    def _requests(self) -> pd.DataFrame:
        n = len(self.req_start)
        end = np.full(n, np.nan)
        status = np.full(n, IN_FLIGHT, dtype=np.int8)
        attempts = np.ones(n, dtype=np.int16)
        cache = np.zeros(n, dtype=np.int8)
        stale = np.zeros(n, dtype=bool)
        ids = np.frombuffer(self.done_id, dtype=np.int64) if len(self.done_id) else np.empty(
            0, np.int64)
        if len(np.unique(ids)) != len(ids):
            raise AssertionError("a request completed twice (simulator bug)")
        if len(ids):
            end[ids] = np.frombuffer(self.done_end, dtype=np.float64)
            status[ids] = np.frombuffer(self.done_status, dtype=np.int8)
            attempts[ids] = np.frombuffer(self.done_attempts, dtype=np.int16)
            cache[ids] = np.frombuffer(self.done_cache, dtype=np.int8)
            stale[ids] = np.frombuffer(self.done_stale, dtype=np.int8).astype(bool)
        start = np.array(self.req_start, dtype=np.float64)
        workload_codes = np.array(self.req_workload, dtype=np.int16)
        region_codes = (np.array(self.req_region, dtype=np.int16) if len(self.req_region) == n
                        else np.zeros(n, dtype=np.int16))
        return pd.DataFrame({
            "request_id": np.arange(n, dtype=np.int64),
            "workload": pd.Categorical.from_codes(
                workload_codes, categories=pd.Index(self.workloads)),
            "op": pd.Categorical(self.req_op),
            "key": np.array(self.req_key, dtype=np.int64),
            "start": start,
            "end": end,
            "latency": end - start,
            "status": _status(status),
            "attempts": attempts,
            "cache": pd.Categorical.from_codes(cache, categories=pd.Index(CACHE_LABELS)),
            "stale": stale,
            "region": pd.Categorical.from_codes(region_codes,
                                                categories=pd.Index(self.regions)),
        })

    def _samples(self) -> pd.DataFrame:
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
        codes = np.array(self.span_instance, dtype=np.int32)
        comps = [c for c, _ in self.instances]
        insts = [i for _, i in self.instances]
        comp_cats = list(dict.fromkeys(comps))
        comp_of_code = np.array([comp_cats.index(c) for c in comps], dtype=np.int32)
        return pd.DataFrame({
            "request_id": np.array(self.span_id, dtype=np.int64),
            "component": pd.Categorical.from_codes(
                comp_of_code[codes] if len(codes) else codes, categories=pd.Index(comp_cats)),
            "instance": pd.Categorical.from_codes(codes, categories=pd.Index(_unique(insts))),
            "op": pd.Categorical(self.span_op),
            "arrival": np.array(self.span_arrival, dtype=np.float64),
            "start": np.array(self.span_start, dtype=np.float64),
            "end": np.array(self.span_end, dtype=np.float64),
            "status": _status(np.array(self.span_status, dtype=np.int8)),
        })


    def _messages(self) -> pd.DataFrame:
        n = len(self.msg_status)
        return pd.DataFrame({
            "message_id": np.arange(n, dtype=np.int64),
            "queue": pd.Categorical.from_codes(np.array(self.msg_queue, dtype=np.int32),
                                               categories=pd.Index(_unique(self.queues))),
            "request_id": np.array(self.msg_request, dtype=np.int64),
            "enqueued": np.array(self.msg_enqueued, dtype=np.float64),
            "first_delivered": np.array(self.msg_first, dtype=np.float64),
            "finished": np.array(self.msg_finished, dtype=np.float64),
            "attempts": np.array(self.msg_attempts, dtype=np.int16),
            "status": pd.Categorical.from_codes(
                np.array(self.msg_status, dtype=np.int8),
                categories=pd.Index(MESSAGE_STATUS_LABELS)),
        })


    def _names(self, codes: array[int]) -> pd.Categorical[str]:
        """Instance codes as a categorical of component names."""
        comps = list(dict.fromkeys(c for c, _ in self.instances))
        of_code = np.array([comps.index(c) for c, _ in self.instances], dtype=np.int32)
        idx = np.array(codes, dtype=np.int32)
        return pd.Categorical.from_codes(of_code[idx] if len(idx) else idx,
                                         categories=pd.Index(comps))

    def _commands(self) -> pd.DataFrame:
        return pd.DataFrame({
            "store": self._names(self.cmd_store),
            "request_id": np.array(self.cmd_request, dtype=np.int64),
            "key": np.array(self.cmd_key, dtype=np.int64),
            "attempt": np.array(self.cmd_attempt, dtype=np.int16),
            "start": np.array(self.cmd_start, dtype=np.float64),
            "replayed": np.array(self.cmd_replayed, dtype=np.int32),
            "loaded": np.array(self.cmd_loaded, dtype=np.float64),
            "end": np.array(self.cmd_end, dtype=np.float64),
            "version": np.array(self.cmd_version, dtype=np.int64),
            "outcome": pd.Categorical.from_codes(np.array(self.cmd_outcome, dtype=np.int8),
                                                 categories=pd.Index(COMMAND_OUTCOMES)),
            "snapshot": np.array(self.cmd_snapshot, dtype=np.int8).astype(bool),
        })

    def _projections(self) -> pd.DataFrame:
        return pd.DataFrame({
            "read_model": self._names(self.proj_model),
            "request_id": np.array(self.proj_request, dtype=np.int64),
            "key": np.array(self.proj_key, dtype=np.int64),
            "version": np.array(self.proj_version, dtype=np.int64),
            "committed": np.array(self.proj_committed, dtype=np.float64),
            "applied": np.array(self.proj_applied, dtype=np.float64),
            "replay": np.array(self.proj_replay, dtype=np.int8).astype(bool),
        })


def _unique(names: list[str]) -> list[str]:
    if len(set(names)) != len(names):
        raise ValueError("instance names must be unique")
    return names


def _status(codes: np.ndarray) -> pd.Categorical[str]:
    return pd.Categorical.from_codes(codes.astype(np.int8), categories=pd.Index(STATUS_LABELS))


def _frame(table: str, columns: dict[str, list[object]]) -> pd.DataFrame:
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
