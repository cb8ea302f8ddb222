"""Lean tables: the recorder's buffers become the tables' columns without a second copy, the
rows are exactly those recorded, no request object outlives its request, and ``spans: auto``
follows its stated rule (issue 15, item 5).

The memory bound is checked with :mod:`tracemalloc` (allocations are counted, not timed), on
synthetic rows written straight into a :class:`~simulator.metrics.recorder.Recorder`.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import numpy as np
import pandas as pd
import pytest

import simulator
from simulator.messages import Request
from simulator.metrics import recorder as recorder_module
from simulator.metrics.recorder import Recorder
from simulator.scenario.model import SPANS_AUTO_MAX_REQUESTS


def _record(n: int, spans: bool = True) -> Recorder:
    """``n`` requests with ops cycling write, read, scan; every third one left in flight,
    the others completed in reverse order of creation; one span each (when ``spans``)."""
    rec = Recorder(["web", "batch"])
    code = rec.instance_code("api", "api[0]")
    ops = ("write", "read", "scan")
    reqs = [Request(rec.created(i % 2, ops[i % 3], 10 * i, float(i)), i % 2, ops[i % 3],
                    10 * i, 1.0, float(i)) for i in range(n)]
    for req in reversed(reqs):
        if req.id % 3 == 2:
            continue
        req.attempts = 1 + req.id % 2
        req.lookup = req.id % 3
        req.stale = req.id % 4 == 0
        rec.completed(req, req.id % 2, req.id + 0.5)  # ok for even ids, error for odd
        if spans:
            rec.span(req.id, code, req.op, float(req.id), float(req.id), req.id + 0.5,
                     req.id % 2)
    return rec


def test_tables_hold_exactly_the_rows_recorded() -> None:
    tables = _record(6).tables()
    req = tables["requests"]
    assert req["request_id"].tolist() == [0, 1, 2, 3, 4, 5]
    assert req["workload"].astype(str).tolist() == ["web", "batch"] * 3
    assert req["op"].astype(str).tolist() == ["write", "read", "scan"] * 2
    # categories sorted, as pd.Categorical of the names makes them
    assert req["op"].cat.categories.tolist() == ["read", "scan", "write"]
    pd.testing.assert_series_equal(
        req["op"], pd.Series(pd.Categorical(["write", "read", "scan"] * 2), name="op"))
    assert req["key"].tolist() == [0, 10, 20, 30, 40, 50]
    assert req["start"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    np.testing.assert_array_equal(req["end"], [0.5, 1.5, np.nan, 3.5, 4.5, np.nan])
    np.testing.assert_array_equal(req["latency"], [0.5, 0.5, np.nan, 0.5, 0.5, np.nan])
    assert req["status"].astype(str).tolist() == ["ok", "error", "in_flight", "error", "ok",
                                                  "in_flight"]
    assert req["attempts"].tolist() == [1, 2, 1, 2, 1, 1]
    assert req["cache"].cat.codes.tolist() == [0, 1, 0, 0, 1, 0]
    assert req["stale"].tolist() == [True, False, False, False, True, False]
    assert {c: str(t) for c, t in req.dtypes.items()} == {
        "request_id": "int64", "workload": "category", "op": "category", "key": "int64",
        "start": "float64", "end": "float64", "latency": "float64", "status": "category",
        "attempts": "int16", "cache": "category", "stale": "bool", "region": "category"}
    spans = tables["spans"]
    assert spans["request_id"].tolist() == [4, 3, 1, 0]  # in order of completion
    assert spans["op"].astype(str).tolist() == ["read", "write", "read", "write"]
    assert spans["op"].cat.categories.tolist() == ["read", "write"]
    assert spans["instance"].astype(str).tolist() == ["api[0]"] * 4
    assert spans["component"].astype(str).tolist() == ["api"] * 4
    assert spans["end"].tolist() == [4.5, 3.5, 1.5, 0.5]


def test_columns_are_the_buffers_and_the_rest_are_emptied() -> None:
    rec = _record(300)
    tables = rec.tables()
    # same dtype: the column is a view of the buffer, no copy
    assert np.shares_memory(tables["requests"]["start"].to_numpy(),
                            np.frombuffer(rec.req_start, dtype=np.float64))
    assert np.shares_memory(tables["spans"]["arrival"].to_numpy(),
                            np.frombuffer(rec.span_arrival, dtype=np.float64))
    # other buffers: emptied once their (narrower) column exists
    for buf in (rec.done_id, rec.done_end, rec.done_code, rec.req_workload_op,
                rec.span_instance, rec.span_op):
        assert len(buf) == 0
    with pytest.raises(RuntimeError, match="assembled once"):
        rec.tables()


def test_a_request_completed_twice_is_a_bug() -> None:
    rec = Recorder(["web"])
    req = Request(rec.created(0, "read", 1, 0.0), 0, "read", 1, 1.0, 0.0)
    rec.completed(req, 0, 1.0)
    rec.completed(req, 0, 2.0)
    with pytest.raises(AssertionError, match="completed twice"):
        rec.tables()


def test_building_the_tables_adds_little_memory() -> None:
    """The requests table holds 48 bytes a row, the spans 36; building both from buffers of
    40 + 45 bytes a row allocates only the columns that are not views: request ids, end,
    latency (8 each) and the 1- and 2-byte codes, about 35 bytes a request with one span.
    Copying every column, as the tables used to be built, takes 84 or more."""
    n = 100_000
    rec = _record(n)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tables = rec.tables()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(tables["requests"]) == n
    assert (peak - before) / n <= 40.0


def test_no_request_object_outlives_its_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the tables are built, the live Request objects are the requests still in flight."""
    counts: list[int] = []
    original = recorder_module.Recorder.tables

    def counted(self: Recorder) -> Any:
        gc.collect()  # count what is reachable (kept alive), not garbage awaiting a pass
        counts.append(sum(isinstance(o, Request) for o in gc.get_objects()))
        return original(self)

    monkeypatch.setattr(recorder_module.Recorder, "tables", counted)
    scenario = simulator.loads_scenario("""
name: live-requests
duration: 2s
workloads:
  w: {arrivals: {process: poisson, rate: 2000/s}, target: lb}
components:
  lb: {kind: load_balancer, strategy: power_of_two, backends: [api]}
  api: {kind: service, replicas: 2, workers: 2, service_time: {dist: exponential, mean: 1ms}}
""")
    results = simulator.simulate(scenario, seed=1)
    in_flight = int((results.requests["status"] == "in_flight").sum())
    assert len(results.requests) > 3000 and in_flight > 0
    assert counts == [in_flight]


def _constant(count: float, **metrics: Any) -> simulator.Scenario:
    text = f"""
name: spans-auto
duration: {count / 1000!r}s
workloads:
  w: {{arrivals: {{process: constant, rate: 1000/s}}, target: api}}
components:
  api: {{kind: service, workers: 1, service_time: {{dist: constant, value: 0.1ms}}}}
"""
    if metrics:
        text += "metrics: {" + ", ".join(f"{k}: {v}" for k, v in metrics.items()) + "}\n"
    return simulator.loads_scenario(text)


def test_spans_auto_records_up_to_half_a_million_requests() -> None:
    assert SPANS_AUTO_MAX_REQUESTS == 500_000
    at = _constant(500_000)
    assert at.expected_requests() == pytest.approx(500_000)
    assert at.record_spans() and at.spans_note() is None
    above = _constant(600_000)
    assert not above.record_spans()
    assert above.spans_note() == (
        "spans: off (metrics.spans: auto records them up to 500,000 expected requests; this "
        "run expects 600,000); metrics.spans: true records them")
    asked = _constant(600_000, spans="true")
    assert asked.record_spans() and asked.spans_note() is None
    assert _constant(600_000, spans="false").spans_note() is None
    assert _constant(600_000, requests="streaming").spans_note() is None
