"""Calibration from measurements: a histogram input reproduces its histogram's quantiles, and
``simulator fit`` recovers the parameters of a known distribution from its samples.

Tolerances are fixed before the runs from the sampling error of the estimates: with n draws,
a sample quantile at q has a standard error of sqrt(q(1-q)/n) / f(x_q), and the MLE of a
log-normal's mu and sigma have standard errors sigma / sqrt(n) and sigma / sqrt(2n); each
check allows about four standard errors.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from simulator.analysis.fitting import fit, fit_one, read_samples
from simulator.cli import main
from simulator.distributions import Distribution, Histogram

DIST: TypeAdapter[Distribution] = TypeAdapter(Distribution)

#: A latency histogram as Prometheus exports it: cumulative counts per upper bound.
PROM = {"dist": "histogram", "buckets": [
    {"le": "5ms", "count": 120}, {"le": "10ms", "count": 480}, {"le": "25ms", "count": 900},
    {"le": "50ms", "count": 990}, {"le": "100ms", "count": 1000}, {"le": "+Inf", "count": 1000}]}


def test_a_histogram_reproduces_its_quantiles_and_its_mean() -> None:
    h = DIST.validate_python(PROM)
    assert isinstance(h, Histogram)
    assert h.bucket_counts() == [120, 360, 420, 90, 10]
    # histogram_quantile by hand: the 0.5 quantile lies in (10ms, 25ms], (500-480)/420 of it in
    assert h.quantile(0.5) == pytest.approx(0.010 + 0.015 * 20 / 420)
    assert h.quantile(0.12) == pytest.approx(0.005)
    assert h.mean == pytest.approx((120 * 2.5 + 360 * 7.5 + 420 * 17.5 + 90 * 37.5
                                    + 10 * 75) / 1000 * 1e-3)
    n = 400_000
    x = h.sample(np.random.default_rng(11), n)
    assert x.min() >= 0 and x.max() <= 0.1
    for q in (0.05, 0.12, 0.3, 0.5, 0.9, 0.99):
        target = h.quantile(q)
        # density at the quantile: a bucket's share over its width (the lower of the two
        # buckets' at a bound, where the density jumps)
        density = min(c / 1000 / (hi - lo) for lo, hi, c in zip(
            [0, .005, .01, .025, .05], [.005, .01, .025, .05, .1], h.bucket_counts(),
            strict=True) if lo - 1e-12 <= target <= hi + 1e-12)
        se = math.sqrt(q * (1 - q) / n) / density
        assert abs(np.quantile(x, q) - target) < 4 * se + 1e-12, q
    assert abs(x.mean() - h.mean) < 4 * x.std() / math.sqrt(n)


def test_per_bucket_counts_mean_the_same_histogram() -> None:
    per = {"dist": "histogram", "cumulative": False, "buckets": [
        {"le": 0.005, "count": 120}, {"le": 0.01, "count": 360}, {"le": 0.025, "count": 420},
        {"le": 0.05, "count": 90}, {"le": 0.1, "count": 10}]}
    a, b = DIST.validate_python(PROM), DIST.validate_python(per)
    assert a.bucket_counts() == b.bucket_counts()  # type: ignore[union-attr]
    assert a.mean == pytest.approx(b.mean)


@pytest.mark.parametrize(("change", "message"), [
    ({"buckets": [{"le": "10ms", "count": 5}, {"le": "5ms", "count": 9}]}, "must increase"),
    ({"buckets": [{"le": "5ms", "count": 9}, {"le": "10ms", "count": 5}]}, "must not decrease"),
    ({"buckets": [{"le": "5ms", "count": 9}, {"le": "+Inf", "count": 12}]}, "+Inf bucket holds 3"),
    ({"buckets": [{"le": "5ms", "count": 0}]}, "bucket counts"),
    ({"buckets": []}, "at least 1"),
])
def test_a_bad_histogram_is_refused_with_the_reason(change: dict[str, object],
                                                   message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("+", r"\+")):
        DIST.validate_python({"dist": "histogram", **change})


def test_a_fit_of_lognormal_samples_recovers_its_parameters() -> None:
    mu, sigma, n = -4.0, 0.6, 20_000
    x = np.random.default_rng(5).lognormal(mu, sigma, n)
    best = fit(x)[0]
    assert best.dist == "lognormal"
    assert abs(best.block["mu"] - mu) < 4 * sigma / math.sqrt(n)
    assert abs(best.block["sigma"] - sigma) < 4 * sigma / math.sqrt(2 * n)
    assert best.ks_distance < 1.36 / math.sqrt(n) * 1.5  # well inside the KS 5% band
    wrong = fit_one(x, "exponential")
    assert wrong.ks_distance > 10 * best.ks_distance


def test_a_fit_of_gamma_samples_recovers_mean_and_cv() -> None:
    mean, cv, n = 0.02, 0.5, 20_000
    shape = 1 / cv**2
    x = np.random.default_rng(6).gamma(shape, mean / shape, n)
    got = fit_one(x, "gamma")
    assert abs(got.block["mean"] - mean) < 4 * mean * cv / math.sqrt(n)
    assert abs(got.block["cv"] - cv) < 0.02  # the shape's MLE: se about 1.1% of cv at n=20k


def test_simulator_fit_prints_a_block_that_validates(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    x = np.random.default_rng(7).lognormal(-5, 0.4, 5_000)
    path = tmp_path / "latency.parquet"
    pd.DataFrame({"host": ["a"] * len(x), "latency_ms": x * 1e3}).to_parquet(path)
    assert main(["fit", str(path), "--unit", "ms", "--key", "service_time"]) == 0
    out = capsys.readouterr().out
    block = yaml.safe_load(out)["service_time"]
    dist = DIST.validate_python(block)
    assert dist.mean == pytest.approx(math.exp(-5 + 0.4**2 / 2), rel=0.03)


def test_samples_are_read_from_a_headerless_csv(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("0.5\n1.5\n2.5\n")
    assert read_samples(path).tolist() == [0.5, 1.5, 2.5]


@pytest.mark.parametrize(("text", "args", "message"), [
    ("a,b\n1,2\n3,4\n", [], "2 numeric columns"),
    ("x\n1\n2\n", ["--column", "y"], "no column 'y'"),
    ("x\n1\n2\n", [], "at least 10"),
    ("x\n" + "\n".join(["0", "-1"] * 10) + "\n", [], "positive finite"),
    ("x\n" + "\n".join(["1"] * 20) + "\n", [], "use a constant"),
])
def test_bad_samples_are_refused_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             text: str, args: list[str], message: str) -> None:
    path = tmp_path / "s.csv"
    path.write_text(text)
    assert main(["fit", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
