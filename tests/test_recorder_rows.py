"""The recorder's packed row codes: what goes in comes out, at the bounds of every field."""

from __future__ import annotations

import numpy as np

from simulator.messages import HIT, MISS, STATUS_LABELS, Request
from simulator.metrics.recorder import Recorder


class _Clock:
    """A stand-in for the environment: the recorder reads only ``_now``."""

    def __init__(self) -> None:
        self._now = 0.0


def test_completion_codes_round_trip_at_the_bounds_of_each_field() -> None:
    rec = Recorder(["w"])
    cases = [  # (status, attempts, lookup, stale): every status, large attempt counts
        (status, attempts, lookup, stale)
        for status in range(len(STATUS_LABELS))
        for attempts, lookup, stale in ((1, 0, False), (32_767, MISS, True), (2, HIT, False))]
    for i, (status, attempts, lookup, stale) in enumerate(cases):
        req = Request(rec.created(0, "read", i, float(i)), 0, "read", i, 1.0, float(i))
        req.attempts, req.lookup, req.stale = attempts, lookup, stale
        rec.completed(req, status, i + 0.25)
    table = rec.tables()["requests"]
    assert table["status"].astype(str).tolist() == [STATUS_LABELS[c[0]] for c in cases]
    assert table["attempts"].tolist() == [c[1] for c in cases]
    assert table["cache"].cat.codes.tolist() == [c[2] for c in cases]
    assert table["stale"].tolist() == [c[3] for c in cases]
    np.testing.assert_array_equal(table["latency"], np.full(len(cases), 0.25))


def test_a_maker_records_what_created_and_request_record() -> None:
    """Two workloads: one made by makers (with and without keys), one by ``created``; the
    rows interleave in creation order and an op of a maker never called is no category."""
    clock = _Clock()
    rec = Recorder(["a", "b"])
    keys = iter(range(100, 200))
    make_keyed = rec.maker(0, "read", clock, lambda: next(keys))
    make_keyless = rec.maker(0, "write", clock)
    rec.maker(1, "unused", clock)  # never called
    made = []
    for i in range(6):
        clock._now = i / 8
        if i % 3 == 0:
            made.append(make_keyed())
        elif i % 3 == 1:
            made.append(make_keyless())
        else:
            made.append(Request(rec.created(1, "scan", 7, clock._now), 1, "scan", 7, 1.0,
                                clock._now))
    done = rec.completed_at(clock)
    clock._now = 2.0
    for req in made[::2]:
        done(req, 0)
    assert [r.id for r in made] == list(range(6))
    assert [(r.workload, r.op, r.key, r.work) for r in made[:3]] == [
        (0, "read", 100, 1.0), (0, "write", -1, 1.0), (1, "scan", 7, 1.0)]
    table = rec.tables()["requests"]
    assert table["workload"].astype(str).tolist() == ["a", "a", "b"] * 2
    assert table["op"].astype(str).tolist() == ["read", "write", "scan"] * 2
    assert table["op"].cat.categories.tolist() == ["read", "scan", "write"]
    assert table["key"].tolist() == [100, -1, 7, 101, -1, 7]
    assert table["start"].tolist() == [i / 8 for i in range(6)]
    assert table["status"].astype(str).tolist() == ["ok", "in_flight"] * 3
    np.testing.assert_array_equal(table["end"], [2.0, np.nan] * 3)
