"""Statistics across replications (``simulator.analysis.stats``): pure functions on numbers.

Intervals are checked against scipy and against their own definition (coverage over many
independent normal samples); MSER-5 against a brute-force evaluation of its statistic and on
series with a known initial transient; the tables for their shape, ranking and pairing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from simulator.analysis.stats import (
    Interval,
    interval_table,
    lower_bound,
    mser_statistic,
    mser_truncation,
    mser_warmup,
    paired_interval,
    paired_table,
    replications_needed,
    t_interval,
    t_quantile,
    upper_bound,
    welch_interval,
)


def test_t_interval_matches_scipy() -> None:
    x = np.array([0.021, 0.019, 0.024, 0.020, 0.018, 0.023])
    iv = t_interval(x, 0.95)
    low, high = st.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=st.sem(x))
    assert iv.n == 6
    assert iv.mean == pytest.approx(x.mean())
    assert iv.sd == pytest.approx(x.std(ddof=1))
    assert iv.low == pytest.approx(low)
    assert iv.high == pytest.approx(high)
    assert iv.relative_half_width == pytest.approx(iv.half_width / x.mean())
    assert iv.covers(x.mean()) and not iv.covers(high + 1e-9)


@pytest.mark.parametrize(("confidence", "df", "expected"),
                         [(0.95, 4, 2.776445), (0.90, 9, 1.833113), (0.99, 2, 9.924843)])
def test_t_quantile_textbook_values(confidence: float, df: int, expected: float) -> None:
    assert t_quantile(confidence, df) == pytest.approx(expected, abs=1e-6)
    assert t_quantile(confidence, df, two_sided=False) == pytest.approx(
        st.t.ppf(confidence, df))


def test_t_interval_edge_cases() -> None:
    empty = t_interval([])
    assert empty.n == 0 and math.isnan(empty.mean) and math.isnan(empty.half_width)
    one = t_interval([3.0])
    assert one.n == 1 and one.mean == 3.0 and math.isnan(one.half_width)
    same = t_interval([2.0, 2.0, 2.0])
    assert same.half_width == 0.0 and same.relative_half_width == 0.0
    # a replication without a value (p99 of no request) is left out, and n says so
    gap = t_interval([1.0, np.nan, 3.0])
    assert gap.n == 2 and gap.mean == 2.0
    with pytest.raises(ValueError, match="confidence"):
        t_interval([1.0, 2.0], confidence=1.0)


def test_t_interval_covers_the_mean_of_normal_samples_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(20240601)
    samples = rng.normal(5.0, 2.0, size=(4000, 5))  # 4000 experiments of 5 replications
    covered = np.mean([t_interval(row).covers(5.0) for row in samples])
    # binomial sd of the coverage over 4000 experiments: 0.0034
    assert 0.94 <= covered <= 0.96
    # a normal-quantile interval (1.96) would under-cover badly with 5 values
    z_hw = 1.96 * samples.std(axis=1, ddof=1) / math.sqrt(5)
    z_cover = np.mean(np.abs(samples.mean(axis=1) - 5.0) <= z_hw)
    assert z_cover < 0.90


def test_one_sided_bounds_cover_90_percent_each() -> None:
    rng = np.random.default_rng(7)
    samples = rng.normal(1.0, 3.0, size=(3000, 6))
    upper = np.mean([upper_bound(row, 0.9) >= 1.0 for row in samples])
    lower = np.mean([lower_bound(row, 0.9) <= 1.0 for row in samples])
    # binomial sd over 3000 experiments: 0.0055
    assert 0.88 <= upper <= 0.92
    assert 0.88 <= lower <= 0.92
    assert math.isnan(upper_bound([1.0])) and math.isnan(lower_bound([]))


def test_paired_interval_is_the_interval_of_differences() -> None:
    a = np.array([10.0, 12.0, 9.0, 15.0, 11.0])
    b = np.array([9.5, 11.2, 8.9, 14.1, 10.0])
    iv = paired_interval(a, b)
    ref = t_interval(a - b)
    assert (iv.mean, iv.half_width, iv.n) == pytest.approx((ref.mean, ref.half_width, ref.n))
    # pairs with a missing value are dropped together
    iv2 = paired_interval([1.0, np.nan, 3.0], [0.5, 1.0, 2.0])
    assert iv2.n == 2 and iv2.mean == pytest.approx(0.75)
    with pytest.raises(ValueError, match="same length"):
        paired_interval([1.0, 2.0], [1.0])


def test_welch_interval_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 2, 8), rng.normal(9, 4, 12)
    iv = welch_interval(a, b, 0.95)
    ci = st.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert iv.low == pytest.approx(ci.low)
    assert iv.high == pytest.approx(ci.high)


def test_pairing_removes_shared_noise() -> None:
    rng = np.random.default_rng(11)
    shared = rng.normal(0, 5, 10)  # what common random numbers make both variants see
    a = 100 + shared + rng.normal(0, 0.5, 10)
    b = 98 + shared + rng.normal(0, 0.5, 10)
    paired, unpaired = paired_interval(a, b), welch_interval(a, b)
    assert paired.half_width < unpaired.half_width / 4
    assert paired.low > 0  # the 2-unit difference is visible only when paired
    assert unpaired.low < 0


def test_replications_needed_scales_with_the_square_of_the_precision() -> None:
    iv = Interval(mean=10.0, half_width=1.0, n=10, sd=1.4, confidence=0.95)  # 10% rhw
    assert replications_needed(iv, 0.05) == 40
    assert replications_needed(iv, 0.2) == 10  # never fewer than already run
    assert replications_needed(Interval(1.0, math.nan, 1, math.nan, 0.95), 0.1) == 2
    with pytest.raises(ValueError):
        replications_needed(iv, 0)


# --------------------------------------------------------------------------------------------
# MSER-5


def test_mser_statistic_matches_its_definition() -> None:
    z = np.random.default_rng(5).normal(size=40)
    brute = [np.sum((z[d:] - z[d:].mean()) ** 2) / (len(z) - d) ** 2 for d in range(len(z))]
    assert np.allclose(mser_statistic(z), brute)


def test_mser_cuts_an_initial_transient() -> None:
    rng = np.random.default_rng(8)
    n = 20_000
    t = np.arange(n)
    series = 1.0 + 20.0 * np.exp(-t / 500.0) + rng.exponential(1.0, n) - 1.0
    cut = mser_truncation(series)
    assert cut % 5 == 0
    # the bias 20 exp(-t/500) falls below the noise of the remaining mean near t = 2500-3500
    assert 1500 <= cut <= 5000
    kept = series[cut:].mean()
    assert abs(kept - 1.0) < 0.05 < abs(series.mean() - 1.0)


def test_mser_keeps_a_stationary_series() -> None:
    series = np.random.default_rng(9).exponential(1.0, 20_000)
    assert mser_truncation(series) < 2_000  # at most a few percent, by chance
    assert mser_truncation([1.0, 2.0, 3.0]) == 0  # too short to tell


def test_mser_warmup_returns_the_start_of_the_kept_window() -> None:
    rng = np.random.default_rng(10)
    times = np.sort(rng.uniform(0, 100, 10_000))
    values = 1.0 + 30.0 * np.exp(-times / 5.0) + rng.normal(0, 0.3, len(times))
    values[::97] = np.nan  # requests still in flight are ignored
    w = mser_warmup(times, values)
    kept_from = int(np.searchsorted(times[np.isfinite(values)], w))
    assert 10.0 < w < 50.0
    assert kept_from == mser_truncation(values[np.isfinite(values)])
    assert mser_warmup(times, np.ones_like(times)) == 0.0


# --------------------------------------------------------------------------------------------
# tables


def _runs() -> pd.DataFrame:
    rows = []
    for rep in range(4):
        noise = [0.0, 1.0, -1.0, 0.5][rep]
        for variant, base in (("b", 10.0), ("a", 12.0), ("c", 10.5)):
            rows.append({"variant": variant, "seed": 1, "replication": rep, "name": "w",
                         "p99": base + noise + 0.01 * rep * (variant == "c"),
                         "throughput": 100.0 - base + noise})
    return pd.DataFrame(rows)


def test_interval_table_has_one_row_per_group_and_metric() -> None:
    table = interval_table(_runs(), ["variant"], ["p99", "throughput"])
    assert list(table["variant"]) == ["b", "b", "a", "a", "c", "c"]  # order of appearance
    assert list(table.columns[:3]) == ["variant", "metric", "n"]
    row = table[(table["variant"] == "a") & (table["metric"] == "p99")].iloc[0]
    ref = t_interval(_runs().query("variant == 'a'")["p99"])
    assert row["mean"] == pytest.approx(ref.mean) and row["high"] == pytest.approx(ref.high)


def test_paired_table_ranks_and_pairs_against_the_baseline() -> None:
    table = paired_table(_runs(), "variant", "b", ["p99", "throughput"], by=["name"])
    p99 = table[table["metric"] == "p99"]
    assert list(p99["variant"]) == ["b", "c", "a"]  # smaller p99 is better
    assert list(p99["rank"]) == [1, 2, 3]
    a = p99[p99["variant"] == "a"].iloc[0]
    # the shared noise cancels: a - b is exactly 2 in every replication
    assert (a["diff"], a["diff_low"], a["diff_high"]) == pytest.approx((2.0, 2.0, 2.0))
    assert a["significant"]
    base = p99[p99["variant"] == "b"].iloc[0]
    assert base["diff"] == 0 and not base["significant"]
    thr = table[table["metric"] == "throughput"]
    assert list(thr["variant"]) == ["b", "c", "a"]  # larger throughput is better
    with pytest.raises(ValueError, match="baseline 'z'"):
        paired_table(_runs(), "variant", "z", ["p99"])
