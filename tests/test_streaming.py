"""Streaming request metrics: log-bucketed histograms and counters instead of the requests table.

The histogram's guarantee (every quantile within the relative error of numpy's exact, linearly
interpolated one) is checked on arbitrary samples with Hypothesis and on latencies of real runs;
the streaming summary is checked against the table summary of the same run, column by column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import simulator
from simulator.experiment.runs import RunSpec, execute
from simulator.metrics.histogram import LatencyHistogram, quantiles_of
from simulator.metrics.streaming import StreamingUnavailableError, latency_quantiles

ROOT = Path(__file__).resolve().parents[1]
QS = [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]

# A cache in front of a sharded database, with retries and a write mix: every counter of
# request_stats (attempts, cache hits and misses, stale reads) is exercised.
SCENARIO = """
name: streaming-check
duration: 12s
warmup: 2s
workloads:
  users:
    arrivals: {process: poisson, rate: 1500/s}
    keys: {popularity: zipf, n: 2000, s: 1.0}
    mix: {read: 0.9, write: 0.1}
    target: {to: api, timeout: 8ms, retry: {attempts: 2}}
components:
  api:
    kind: service
    replicas: 2
    workers: 8
    queue_limit: 20
    service_time: {dist: lognormal, mean: 2ms, cv: 1.0}
    calls: {"*": [cache]}
  cache:
    kind: cache
    pattern: read_through
    capacity: 300
    ttl: 500ms
    hit_latency: 0.2ms
    backing: db
  db:
    kind: database
    shards: {count: 2, scheme: mod}
    replication: {followers: 1, lag: {dist: exponential, mean: 20ms}, reads: round_robin}
    pool: {size: 4}
    service_time: {dist: exponential, mean: 3ms}
metrics: {interval: 1s}
"""


def _scenario(tmp_path: Path, *overrides: str) -> simulator.Scenario:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    return simulator.load_scenario(path, list(overrides))


def _within(estimate: np.ndarray, exact: np.ndarray, alpha: float) -> None:
    # the guarantee, plus a few ulps of floating-point slack
    assert np.all(np.abs(estimate - exact) <= alpha * np.abs(exact) * (1 + 1e-9) + 1e-15), (
        estimate, exact)


# ---- the histogram --------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(1e-7, 1e4, allow_nan=False), min_size=1, max_size=300),
       alpha=st.sampled_from([0.001, 0.01, 0.05]))
def test_quantiles_are_within_the_relative_error(values: list[float], alpha: float) -> None:
    h = LatencyHistogram(alpha)
    h.extend(values)
    _within(h.quantiles(QS), np.quantile(np.array(values), QS), alpha)


@pytest.mark.parametrize("alpha", [0.005, 0.01, 0.02])
def test_heavy_tailed_sample(alpha: float) -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.lognormal(-6, 1.5, 50_000), rng.pareto(1.2, 5_000) * 1e-3])
    h = LatencyHistogram(alpha)
    h.extend(values.tolist())
    assert h.count == len(values)
    _within(h.quantiles(QS), np.quantile(values, QS), alpha)


def test_zero_latencies_are_exact() -> None:
    values = [0.0] * 60 + [0.5] * 40
    h = LatencyHistogram(0.01)
    h.extend(values)
    qs = [0.0, 0.5, 0.59, 0.595, 0.6, 1.0]
    q = h.quantiles(qs)
    assert q[:3].tolist() == [0.0, 0.0, 0.0]
    _within(q, np.quantile(values, qs), 0.01)


@settings(max_examples=50, deadline=None)
@given(a=st.lists(st.floats(1e-6, 10.0), max_size=100),
       b=st.lists(st.floats(1e-6, 10.0), max_size=100))
def test_merging_equals_counting_everything_in_one(a: list[float], b: list[float]) -> None:
    ha, hb, whole = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    ha.extend(a)
    hb.extend(b)
    whole.extend(a + b)
    # from (bucket, count) pairs concatenated, as the tables of replications are
    ba, ca = ha.arrays()
    bb, cb = hb.arrays()
    if a or b:
        np.testing.assert_array_equal(
            quantiles_of(np.concatenate([ba, bb]), np.concatenate([ca, cb]), QS, 0.01),
            whole.quantiles(QS))
    assert ha.merge(hb).counts == whole.counts


def test_different_errors_do_not_merge() -> None:
    with pytest.raises(ValueError, match="different relative errors"):
        LatencyHistogram(0.01).merge(LatencyHistogram(0.02))


# ---- a streaming run against the table run of the same seed ----------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[simulator.Results, simulator.Results]:
    tmp = tmp_path_factory.mktemp("streaming")
    table = simulator.simulate(_scenario(tmp), seed=5)
    streamed = simulator.simulate(_scenario(tmp, "metrics.requests=streaming",
                                            "metrics.spans=false"), seed=5)
    return table, streamed


def test_streaming_summary_matches_the_table(runs: tuple[simulator.Results, ...]) -> None:
    table, streamed = runs
    exact, approx = table.summary(), streamed.summary()
    exact = exact[exact["scope"] == "workload"].reset_index(drop=True)
    assert len(exact) == len(approx) == 1
    row = exact.iloc[0]
    assert row["count"] > 10_000
    assert row["attempts"] > 1.0 and row["timeout_ratio"] > 0  # retries and timeouts happened
    for col in ("count", "completed", "in_flight", "throughput", "goodput", "error_ratio",
                "rejection_ratio", "timeout_ratio", "fallback_ratio", "attempts", "stale_ratio"):
        assert approx.loc[0, col] == pytest.approx(row[col], rel=1e-12, nan_ok=True), col
    assert approx.loc[0, "mean"] == pytest.approx(row["mean"], rel=1e-9)
    alpha = streamed.scenario.metrics.latency_error
    cols = ["p50", "p95", "p99", "p999"]
    _within(approx.loc[0, cols].to_numpy(float), row[cols].to_numpy(float), alpha)


def test_quantiles_per_operation_and_status(runs: tuple[simulator.Results, ...]) -> None:
    table, streamed = runs
    alpha = streamed.scenario.metrics.latency_error
    for status in ("ok", "timeout"):
        exact = table.latency_quantiles(QS, by=["op"], status=status)
        approx = streamed.latency_quantiles(QS, by=["op"], status=status)
        assert exact["op"].astype(str).tolist() == approx["op"].astype(str).tolist()
        names = [f"q{q:g}" for q in QS]
        _within(approx[names].to_numpy(float), exact[names].to_numpy(float), alpha)


def test_request_stats_count_what_the_table_holds(runs: tuple[simulator.Results, ...]) -> None:
    table, streamed = runs
    req = table.measured_requests()
    expected = req.groupby(["op", "status"], observed=True).agg(
        count=("request_id", "size"), attempts=("attempts", "sum"), stale=("stale", "sum"),
        hits=("cache", lambda c: int((c == "hit").sum())),
        misses=("cache", lambda c: int((c == "miss").sum())))
    stats = streamed.request_stats.assign(op=lambda d: d["op"].astype(str),
                                          status=lambda d: d["status"].astype(str))
    got = stats.set_index(["op", "status"]).sort_index()
    expected.index = expected.index.set_levels(
        [lvl.astype(str) for lvl in expected.index.levels])
    expected = expected.sort_index()
    assert list(got.index) == list(expected.index)
    np.testing.assert_array_equal(got["count"], expected["count"])
    done = got.index.get_level_values("status") != "in_flight"
    np.testing.assert_array_equal(got["attempts_sum"][done], expected["attempts"][done])
    np.testing.assert_array_equal(got["stale"], expected["stale"])
    np.testing.assert_array_equal(got["cache_hits"], expected["hits"])
    np.testing.assert_array_equal(got["cache_misses"], expected["misses"])
    cache = table.cache_summary()
    assert_frame = streamed.cache_summary()
    pd.testing.assert_frame_equal(cache.reset_index(drop=True),
                                  assert_frame.reset_index(drop=True), check_dtype=False)


def test_streaming_runs_are_deterministic(tmp_path: Path) -> None:
    sc = _scenario(tmp_path, "metrics.requests=streaming", "duration=3s", "warmup=0s")
    a, b = simulator.simulate(sc, seed=9), simulator.simulate(sc, seed=9)
    for name in ("request_stats", "latency_histogram", "samples"):
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])


def test_per_request_analyses_give_a_clear_error(runs: tuple[simulator.Results, ...],
                                                 tmp_path: Path) -> None:
    _, streamed = runs
    for ask in (lambda: streamed.requests, streamed.measured_requests, streamed.recovery):
        with pytest.raises(StreamingUnavailableError, match=r"metrics\.requests: streaming"):
            ask()
    assert "latency_cdf" not in streamed.plot.available()
    later = streamed.scenario.model_copy(update={"warmup": 5.0})
    with pytest.raises(StreamingUnavailableError, match="window"):
        simulator.Results(later, streamed.seed, 0, streamed.tables).summary()
    spec = RunSpec(scenario=streamed.scenario.model_dump_json(by_alias=True), seed=1,
                   replication=0, warmup="auto")
    with pytest.raises(StreamingUnavailableError, match="warm-up"):
        execute(spec)


def test_written_and_read_back(runs: tuple[simulator.Results, ...], tmp_path: Path) -> None:
    _, streamed = runs
    back = simulator.Results.read(streamed.write(tmp_path / "out"))
    assert back.streaming
    pd.testing.assert_frame_equal(back.summary(), streamed.summary())


def test_spans_auto_are_off_when_streaming(tmp_path: Path) -> None:
    sc = _scenario(tmp_path, "metrics.requests=streaming", "duration=1s", "warmup=0s")
    assert sc.metrics.spans == "auto" and not sc.record_spans()
    assert simulator.simulate(sc, seed=1).spans.empty


def test_replications_merge_within_the_error(tmp_path: Path) -> None:
    """Histograms of two replications, concatenated as an experiment returns them, give the
    quantiles of the pooled latencies of the same two replications run with tables."""
    table = _scenario(tmp_path, "duration=4s")
    streamed = _scenario(tmp_path, "duration=4s", "metrics.requests=streaming",
                         "metrics.spans=false")
    payload = streamed.model_dump_json(by_alias=True)
    hist = pd.concat([execute(RunSpec(payload, 5, r, tables=("latency_histogram",)))
                      ["latency_histogram"] for r in (0, 1)], ignore_index=True)
    exact = np.concatenate([
        m.loc[m["status"] == "ok", "latency"].to_numpy()
        for m in (simulator.simulate(table, seed=5, replication=r).measured_requests()
                  for r in (0, 1))])
    alpha = streamed.metrics.latency_error
    got = latency_quantiles(hist, QS, alpha).iloc[0].to_numpy(float)
    _within(got, np.quantile(exact, QS), alpha)


def test_set_creates_the_metrics_block_a_file_leaves_out(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    text = SCENARIO.replace("metrics: {interval: 1s}\n", "")
    assert "metrics" not in text
    path.write_text(text)
    sc = simulator.load_scenario(path, ["metrics.requests=streaming"])
    assert sc.metrics.requests == "streaming" and sc.metrics.interval == 1.0
