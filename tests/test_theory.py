"""Check the closed-form formulas in ``theory.py``.

Two kinds of test:

* every analytic value published in ``tests/data/reference/cases.json`` is re-derived from the
  case's parameters and compared within the rounding of the published number;
* identities that must hold for any parameters (Little's law, special cases that coincide,
  brute-force enumeration on small instances).
"""

import itertools
import json
import math
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

try:
    import hedging as hg
    import theory as th
except ModuleNotFoundError:  # pragma: no cover - e.g. pytest --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import hedging as hg
    import theory as th

CASES_PATH = Path(__file__).resolve().parent / "data" / "reference" / "cases.json"

Case = dict[str, Any]


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    """Load the reference cases keyed by id (vendored: a missing file fails, never skips)."""
    with CASES_PATH.open(encoding="utf-8") as fh:
        return {case["id"]: case for case in json.load(fh)}


def published_tolerance(published: float) -> float:
    """Absolute tolerance for comparing an exact value with a published, rounded number.

    The reference values are rounded to 4 significant digits, with trailing zeros dropped (5.0
    stands for 5.000); a value published with more digits is held to those. The tolerance is 2
    units of the last significant digit (at most 0.2% relative).
    """
    exponent = Decimal(repr(float(published))).as_tuple().exponent
    assert isinstance(exponent, int), f"not a finite number: {published!r}"
    last_digit = 10.0**exponent
    fourth_digit = 10.0 ** (math.floor(math.log10(abs(published))) - 3) if published else 0.0
    return 2.0 * min(last_digit, fourth_digit) * (1.0 + 1e-9)


def assert_matches_published(derived: dict[str, float], published: dict[str, Any]) -> None:
    """Assert that every derived value matches the published value of the same key."""
    assert derived, "nothing derived"
    failures = []
    for key, value in derived.items():
        assert key in published, f"derived key {key!r} is not in the reference case"
        expected = float(published[key])
        if not abs(value - expected) <= published_tolerance(expected):
            failures.append(f"{key}: derived {value:.6g}, published {expected:.6g}")
    assert not failures, "; ".join(failures)


# --------------------------------------------------------------------------------------------
# derivations of each reference case from its parameters
# --------------------------------------------------------------------------------------------


def derive_mm1(case: Case) -> dict[str, float]:
    lam, mu = case["params"]["lambda"], case["params"]["mu"]
    m = th.mm1(lam, mu)
    return {
        "mean_response_time": m["mean_response_time"],
        "mean_wait": m["mean_wait"],
        "L_time_avg_in_system": m["L"],
        "Lq_time_avg_waiting": m["Lq"],
        "P_wait_gt_0": m["p_wait"],
        "utilisation": m["utilisation"],
        "response_p50": th.mm1_response_quantile(lam, mu, 0.50),
        "response_p95": th.mm1_response_quantile(lam, mu, 0.95),
        "response_p99": th.mm1_response_quantile(lam, mu, 0.99),
        "wait_p99": th.mm1_wait_quantile(lam, mu, 0.99),
    }


def derive_mmc(case: Case) -> dict[str, float]:
    params = case["params"]
    lam, mu, c = params["lambda"], params["mu_per_server"], params["servers"]
    m = th.mmc(lam, mu, c)
    return {
        "P_wait_gt_0_erlangC": m["p_wait"],
        "mean_wait": m["mean_wait"],
        "mean_response_time": m["mean_response_time"],
        "Lq_time_avg_waiting": m["Lq"],
        "L_time_avg_in_system": m["L"],
        "utilisation_per_server": m["utilisation"],
        "response_p50": th.mmc_response_quantile(lam, mu, c, 0.50),
        "response_p95": th.mmc_response_quantile(lam, mu, c, 0.95),
        "response_p99": th.mmc_response_quantile(lam, mu, c, 0.99),
        "wait_p99": th.mmc_wait_quantile(lam, mu, c, 0.99),
    }


def derive_mg1(case: Case) -> dict[str, float]:
    params = case["params"]
    if params["service"] == "deterministic":
        mean_s, cv = params["value"], 0.0
    else:
        mean_s, cv = params["mean"], params["cv"]
    m = th.mg1_pk(params["lambda"], mean_s, cv)
    out = {
        "mean_wait_PK": m["mean_wait"],
        "mean_response_time": m["mean_response_time"],
        "Lq_time_avg_waiting": m["Lq"],
        "L_time_avg_in_system": m["L"],
        "P_wait_gt_0": m["p_wait"],
        "utilisation": m["utilisation"],
    }
    if params["service"] == "lognormal":
        mu_ln, sigma = th.lognormal_params(mean_s, cv)
        out["lognormal_mu"], out["lognormal_sigma"] = mu_ln, sigma
    return out


def derive_mm1k(case: Case) -> dict[str, float]:
    params = case["params"]
    m = th.mm1k(params["lambda"], params["mu"], params["K_max_in_system"])
    return {
        "P_block": m["p_block"],
        "throughput": m["throughput"],
        "L_time_avg_in_system": m["L"],
        "mean_response_time_accepted": m["mean_response_time_accepted"],
        "utilisation": m["utilisation"],
        "Lq_time_avg_waiting": m["Lq"],
    }


def derive_tandem(case: Case) -> dict[str, float]:
    params = case["params"]
    lam = params["lambda"]
    mus = [station["mu"] for station in params["stations"]]
    m = th.tandem_mm1(lam, mus)
    out = {
        "mean_end_to_end_sojourn": m["mean_end_to_end"],
        "L_time_avg_in_network": m["L_network"],
        **{f"mean_sojourn_station{i}": m[f"mean_sojourn_station{i}"] for i in (1, 2, 3)},
    }
    for q in (50, 95, 99):
        out[f"end_to_end_p{q}"] = th.tandem_mm1_quantile(lam, mus, q / 100)
    return out


def derive_lb_random(case: Case) -> dict[str, float]:
    params = case["params"]
    m = th.random_split(params["servers"], params["lambda_total"], params["mu_per_server"])
    keys = ["mean_response_time", "response_p50", "response_p95", "response_p99"]
    return {
        **{key: m[key] for key in keys},
        "P_wait_gt_0": m["p_wait"],
        "mean_queue_len_seen_on_join": m["mean_queue_len_seen_on_join"],
    }


def derive_lb_round_robin(case: Case) -> dict[str, float]:
    params = case["params"]
    n, lam, mu = params["servers"], params["lambda_total"], params["mu_per_server"]
    m = th.round_robin(n, lam, mu)
    keys = ["mean_response_time", "mean_wait", "mean_queue_len_seen_on_join"]
    return {
        "sigma_GI_M_1_root": th.round_robin_sigma(n, lam, mu),
        "P_wait_gt_0": m["p_wait"],
        **{key: m[key] for key in keys},
        **{
            f"response_p{q}": th.round_robin_response_quantile(n, lam, mu, q / 100)
            for q in (50, 95, 99)
        },
    }


def derive_cache(case: Case) -> dict[str, float]:
    params = case["params"]
    p = th.zipf_probs(params["n_items"], params["zipf_alpha"])
    size = params["cache_size"]
    return {
        "LRU_hit_ratio_che": th.che_lru_hit_ratio(p, size),
        "che_characteristic_time_requests": th.che_characteristic_time(p, size),
        "FIFO_RANDOM_hit_ratio_approx": th.fifo_random_hit_ratio_approx(p, size),
        "fifo_characteristic_time_requests": th.fifo_characteristic_time(p, size),
        "LFU_perfect_static_topC_hit_ratio": th.lfu_static_hit_ratio(p, size),
        "FIFO_RANDOM_hit_ratio_exact": th.fifo_random_hit_ratio_exact(p, size),
    }


def derive_ttl(case: Case) -> dict[str, float]:
    params = case["params"]
    p = th.zipf_probs(params["n_items"], params["zipf_alpha"])
    lam_i = params["lambda_total_per_s"] * p
    out: dict[str, float] = {}
    for name, func in (("nonreset", th.ttl_nonreset_hit_ratio), ("reset", th.ttl_reset_hit_ratio)):
        h = func(lam_i, params["ttl_s"])
        out[f"{name}_aggregate_hit_ratio"] = float(np.dot(p, h))
        # occupancy of object i equals its hit ratio (PASTA), so the mean count is sum h_i
        out[f"{name}_mean_objects_cached"] = float(h.sum())
        for rank in (1, 10, 100, 1000):
            out[f"{name}_hit_ratio_rank{rank}"] = float(h[rank - 1])
    return out


def derive_chash(case: Case) -> dict[str, float]:
    params = case["params"]
    n, v, keys = params["nodes"], params["vnodes_per_node"], params["keys"]
    return {
        "cv_rms_ensemble_theory": th.consistent_hash_cv(n, v, keys),
        "moved_fraction_add_11th_expected": 1.0 / (n + 1),
        "modN_moved_fraction_10_to_11_theory": n / (n + 1),
        "modN_cv_theory_multinomial": math.sqrt((n - 1) / keys),
    }


def derive_retry(case: Case) -> dict[str, float]:
    params = case["params"]
    return {
        f"p{p}_r{r}": th.retry_multiplier(p, r)
        for p, r in itertools.product(params["p"], params["r"])
    }


def derive_po2_limit(case: Case) -> dict[str, float]:
    params = case["params"]
    lam, mu = params["per_server_load"] * params["mu_per_server"], params["mu_per_server"]
    d = 2
    m = th.power_of_d_limit_details(lam, d, mu)
    keys = [
        "mean_response_time",
        "response_p50",
        "response_p95",
        "response_p99",
        "mean_queue_len_seen_on_join",
    ]
    out = {key: m[key] for key in keys}
    out["P_wait_gt_0"] = m["p_wait"]
    assert out["mean_response_time"] == pytest.approx(th.power_of_d_limit(lam, d, mu), rel=1e-12)
    return out


def po2_limit_published(case: Case) -> dict[str, Any]:
    limit = dict(case["expected_N_infinity_limit"])
    del limit["s_i_fraction_queues_ge_i"]
    return limit


# case id -> (derivation, which published values it reproduces, keys known not to be derivable)
Derivation = Callable[[Case], dict[str, float]]
def derive_hedge(case: Case) -> dict[str, float]:
    """HEDGE-A from the exact order statistic H = min(X1, d + X2) (``tests/hedging.py``)."""
    d = case["params"]["hedge_after_ms"] * hg.MS
    plain = hg.hedge_a_sf
    hedged = hg.hedged_sf(plain, d)
    out = {"hedge_delay_d_ms_p95": hg.quantile_of(plain, 0.95, 10.0) / hg.MS,
           "extra_requests_fraction": plain(d)}
    for name, sf, kinks in (("no_hedge", plain, (5 * hg.MS,)),
                            ("hedge", hedged, (5 * hg.MS, d, d + 5 * hg.MS))):
        out[f"{name}_mean_ms"] = hg.mean_of(sf, kinks) / hg.MS
        for label, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)):
            out[f"{name}_{label}_ms"] = hg.quantile_of(sf, p, 10.0) / hg.MS
    return out


DERIVATIONS: dict[str, tuple[Derivation, Callable[[Case], dict[str, Any]], set[str]]] = {
    "MM1-rho0.5": (derive_mm1, lambda c: c["expected"], set()),
    "MM1-rho0.8": (derive_mm1, lambda c: c["expected"], set()),
    "MMc-c4-rho0.8": (derive_mmc, lambda c: c["expected"], set()),
    "MD1-rho0.5": (derive_mg1, lambda c: c["expected"], set()),
    "MG1-lognormal-cv0.5-rho0.8": (
        derive_mg1,
        lambda c: {
            **c["expected"],
            **{k: c["params"][k] for k in ("lognormal_mu", "lognormal_sigma")},
        },
        set(),
    ),
    "MM1K-K10-rho0.9": (derive_mm1k, lambda c: c["expected"], set()),
    "JACKSON-tandem3": (derive_tandem, lambda c: c["expected"], set()),
    "LB-random-N10": (derive_lb_random, lambda c: c["expected"], set()),
    "LB-roundrobin-N10": (derive_lb_round_robin, lambda c: c["expected"], set()),
    # the finite-N expected values are simulation results; the N -> inf limit is analytic
    "LB-po2-N10": (derive_po2_limit, po2_limit_published, set()),
    "CACHE-zipf0.8-C100": (derive_cache, lambda c: c["expected"], {"FIFO_RANDOM_exact_method"}),
    "TTL-zipf0.8-T1": (derive_ttl, lambda c: c["expected"], set()),
    "CHASH-N10-V150": (
        derive_chash,
        lambda c: c["expected"],
        {
            # simulated ensemble statistics and properties of one particular md5 ring
            "cv_formula",
            "cv_ensemble_mean_sim",
            "cv_ensemble_90pct_range",
            "max_over_mean_ensemble_mean",
            "max_over_mean_ensemble_p95",
            "moved_fraction_90pct_range",
            "deterministic_md5_scheme",
            "modN_moved_fraction_md5_scheme",
            "modN_cv_md5_scheme",
        },
    ),
    "RETRY-multiplier": (derive_retry, lambda c: c["expected"], set()),
    "HEDGE-A-no-queueing": (derive_hedge, lambda c: c["expected"], set()),
}
NOT_DERIVED: set[str] = set()


def test_every_reference_case_is_accounted_for(cases: dict[str, Case]) -> None:
    unknown = set(cases) - set(DERIVATIONS) - NOT_DERIVED
    assert not unknown, f"reference cases without a derivation: {sorted(unknown)}"


@pytest.mark.parametrize("case_id", sorted(DERIVATIONS))
def test_reference_case(cases: dict[str, Case], case_id: str) -> None:
    assert case_id in cases, f"{case_id} is not in {CASES_PATH}"
    derive, published_of, not_derivable = DERIVATIONS[case_id]
    case = cases[case_id]
    published = published_of(case)
    derived = derive(case)
    assert_matches_published(derived, published)
    uncovered = set(published) - set(derived) - not_derivable
    assert not uncovered, f"published values not checked: {sorted(uncovered)}"


def test_po2_limit_tail_fractions(cases: dict[str, Case]) -> None:
    case = cases["LB-po2-N10"]
    published = case["expected_N_infinity_limit"]["s_i_fraction_queues_ge_i"]
    tails = th.power_of_d_limit_tails(case["params"]["per_server_load"], 2)
    derived = {str(i): float(tails[i - 1]) for i in range(1, len(published) + 1)}
    assert_matches_published(derived, published)


@pytest.mark.parametrize(
    ("lam", "d", "published"),
    # limit values listed in the notes of case LB-po2-N10 of cases.json
    [
        (0.5, 2, 1.2657),
        (0.7, 2, 1.6145),
        (0.8, 2, 1.9474),
        (0.9, 2, 2.6141),
        (0.99, 2, 5.4320),
        (0.9, 3, 2.0279),
    ],
)
def test_po2_limit_values_from_notes(lam: float, d: int, published: float) -> None:
    assert th.power_of_d_limit(lam, d) == pytest.approx(published, abs=1e-4)


def test_published_tolerance() -> None:
    assert published_tolerance(1.386) == pytest.approx(0.002)
    assert published_tolerance(5.0) == pytest.approx(0.002)
    assert published_tolerance(0.124) == pytest.approx(0.0002)
    assert published_tolerance(5.4320) == pytest.approx(0.002)
    assert published_tolerance(0.13384) == pytest.approx(0.00002)
    assert published_tolerance(1.545e-06) == pytest.approx(2e-9)


# --------------------------------------------------------------------------------------------
# identities
# --------------------------------------------------------------------------------------------

QUANTILES = (0.1, 0.5, 0.9, 0.95, 0.99, 0.999)


@pytest.mark.parametrize(
    ("lam", "mu"), [(0.1, 1.0), (0.5, 1.0), (0.8, 1.0), (9.9, 10.0), (3.0, 7.0)]
)
def test_mm1_identities(lam: float, mu: float) -> None:
    m = th.mm1(lam, mu)
    assert m["L"] == pytest.approx(lam * m["mean_response_time"], rel=1e-12)
    assert m["Lq"] == pytest.approx(lam * m["mean_wait"], rel=1e-12)
    assert m["mean_response_time"] == pytest.approx(m["mean_wait"] + 1 / mu, rel=1e-12)
    for p in QUANTILES:
        t = th.mm1_response_quantile(lam, mu, p)
        assert stats.expon.cdf(t, scale=m["mean_response_time"]) == pytest.approx(p, rel=1e-12)
        w = th.mm1_wait_quantile(lam, mu, p)
        if p <= 1 - m["p_wait"]:
            assert w == 0.0
        else:
            assert m["p_wait"] * math.exp(-(mu - lam) * w) == pytest.approx(1 - p, rel=1e-12)


@pytest.mark.parametrize("rho", [0.01, 0.3, 0.5, 0.9, 0.999])
def test_erlang_c_single_server_is_rho(rho: float) -> None:
    assert th.erlang_c(1, rho) == pytest.approx(rho, rel=1e-12)
    assert th.erlang_b(1, rho) == pytest.approx(rho / (1 + rho), rel=1e-12)


def test_erlang_b_matches_direct_sum() -> None:
    for c, a in [(1, 0.5), (4, 3.2), (10, 7.5), (30, 25.0)]:
        terms = [a**k / math.factorial(k) for k in range(c + 1)]
        assert th.erlang_b(c, a) == pytest.approx(terms[-1] / sum(terms), rel=1e-12)


def test_erlang_c_matches_direct_sum() -> None:
    for c, a in [(2, 1.0), (4, 3.2), (10, 9.0), (50, 45.0)]:
        rho = a / c
        head = sum(a**k / math.factorial(k) for k in range(c))
        tail = a**c / math.factorial(c) / (1 - rho)
        assert th.erlang_c(c, a) == pytest.approx(tail / (head + tail), rel=1e-10)


@pytest.mark.parametrize(("lam", "mu"), [(0.3, 1.0), (0.8, 1.0), (4.0, 5.0)])
def test_mmc_single_server_is_mm1(lam: float, mu: float) -> None:
    assert th.mmc(lam, mu, 1) == pytest.approx(th.mm1(lam, mu), rel=1e-12)
    for p in QUANTILES:
        assert th.mmc_response_quantile(lam, mu, 1, p) == pytest.approx(
            th.mm1_response_quantile(lam, mu, p), rel=1e-9
        )
        assert th.mmc_wait_quantile(lam, mu, 1, p) == pytest.approx(
            th.mm1_wait_quantile(lam, mu, p), rel=1e-12, abs=1e-12
        )


@pytest.mark.parametrize(("lam", "mu", "c"), [(3.2, 1.0, 4), (1.0, 1.0, 2), (7.0, 0.5, 16)])
def test_mmc_identities(lam: float, mu: float, c: int) -> None:
    m = th.mmc(lam, mu, c)
    assert m["L"] == pytest.approx(lam * m["mean_response_time"], rel=1e-12)
    assert m["L"] - m["Lq"] == pytest.approx(lam / mu, rel=1e-12)  # mean number in service
    for p in QUANTILES:
        t = th.mmc_response_quantile(lam, mu, c, p)
        assert th.mmc_response_sf(lam, mu, c, t) == pytest.approx(1 - p, rel=1e-9)


def test_mmc_response_sf_at_and_near_theta_equal_mu() -> None:
    # c = 2, mu = 1, lam = 1: theta = c mu - lam = mu, W | W > 0 ~ Exp(mu), T | wait ~ Erlang(2)
    lam, mu, c = 1.0, 1.0, 2
    cw = th.erlang_c(c, lam / mu)
    for t in (0.0, 0.3, 1.0, 4.0, 20.0):
        expected = (1 - cw) * math.exp(-mu * t) + cw * math.exp(-mu * t) * (1 + mu * t)
        assert th.mmc_response_sf(lam, mu, c, t) == pytest.approx(expected, rel=1e-12)
        for eps in (1e-9, -1e-9, 1e-6, -1e-6):
            near = th.mmc_response_sf(lam + eps, mu, c, t)
            assert near == pytest.approx(th.mmc_response_sf(lam, mu, c, t), rel=1e-5)
    # mean from the quantile function equals the closed-form mean (integral of the sf)
    grid = np.linspace(0, 60, 60001)
    sf = np.array([th.mmc_response_sf(lam, mu, c, float(t)) for t in grid])
    integral = float(np.sum((sf[1:] + sf[:-1]) / 2) * (grid[1] - grid[0]))
    assert integral == pytest.approx(th.mmc(lam, mu, c)["mean_response_time"], rel=1e-6)


def test_mg1_exponential_service_is_mm1() -> None:
    for lam in (0.2, 0.5, 0.9):
        mg1 = th.mg1_pk(lam, 1.0, 1.0)
        mm1 = th.mm1(lam, 1.0)
        for key in ("mean_wait", "mean_response_time", "Lq", "L", "p_wait", "utilisation"):
            assert mg1[key] == pytest.approx(mm1[key], rel=1e-12)
    md1 = th.mg1_pk(0.7, 1.0 / 7.0, 0.0)  # rho = 0.1
    assert md1["L"] == pytest.approx(0.7 * md1["mean_response_time"], rel=1e-12)


def test_lognormal_params_reproduce_mean_and_cv() -> None:
    for mean, cv in [(1.0, 0.5), (3.0, 2.0), (0.2, 0.1)]:
        mu_ln, sigma = th.lognormal_params(mean, cv)
        dist = stats.lognorm(s=sigma, scale=math.exp(mu_ln))
        assert dist.mean() == pytest.approx(mean, rel=1e-12)
        assert dist.std() / dist.mean() == pytest.approx(cv, rel=1e-12)


@pytest.mark.parametrize(
    ("lam", "mu", "k"), [(0.9, 1.0, 10), (1.0, 1.0, 5), (2.0, 1.0, 3), (50.0, 1.0, 800)]
)
def test_mm1k_identities(lam: float, mu: float, k: int) -> None:
    m = th.mm1k(lam, mu, k)
    assert m["L"] == pytest.approx(m["throughput"] * m["mean_response_time_accepted"], rel=1e-12)
    assert m["Lq"] == pytest.approx(m["throughput"] * m["mean_wait_accepted"], rel=1e-12)
    assert m["utilisation"] == pytest.approx(m["throughput"] / mu, rel=1e-12)  # flow balance
    if lam == mu:
        assert m["p_block"] == pytest.approx(1 / (k + 1), rel=1e-12)
        assert m["L"] == pytest.approx(k / 2, rel=1e-12)
    assert 0 <= m["p_block"] <= 1
    assert math.isfinite(m["L"])


def test_mm1k_large_buffer_is_mm1() -> None:
    m, ref = th.mm1k(0.5, 1.0, 200), th.mm1(0.5, 1.0)
    assert m["p_block"] < 1e-60
    assert m["L"] == pytest.approx(ref["L"], rel=1e-12)
    assert m["Lq"] == pytest.approx(ref["Lq"], rel=1e-12)
    assert m["mean_response_time_accepted"] == pytest.approx(ref["mean_response_time"], rel=1e-12)
    assert m["p_wait_accepted"] == pytest.approx(ref["p_wait"], rel=1e-12)


def test_mm1k_single_place_is_erlang_b() -> None:
    m = th.mm1k(0.7, 1.3, 1)
    assert m["p_block"] == pytest.approx(th.erlang_b(1, 0.7 / 1.3), rel=1e-12)
    assert m["Lq"] == pytest.approx(0.0, abs=1e-15)


def test_tandem_of_one_station_is_mm1() -> None:
    lam, mu = 0.6, 1.0
    m = th.tandem_mm1(lam, [mu])
    assert m["mean_end_to_end"] == pytest.approx(th.mm1(lam, mu)["mean_response_time"], rel=1e-12)
    assert m["L_network"] == pytest.approx(th.mm1(lam, mu)["L"], rel=1e-12)
    for p in QUANTILES:
        assert th.tandem_mm1_quantile(lam, [mu], p) == pytest.approx(
            th.mm1_response_quantile(lam, mu, p), rel=1e-9
        )


def test_tandem_little() -> None:
    lam, mus = 1.0, [2.0, 1.5, 1.25]
    m = th.tandem_mm1(lam, mus)
    assert m["L_network"] == pytest.approx(sum(th.mm1(lam, mu)["L"] for mu in mus), rel=1e-12)


@pytest.mark.parametrize("k", [2, 3, 7])
def test_hypoexponential_equal_rates_is_erlang(k: int) -> None:
    rate = 0.7
    for p in QUANTILES:
        expected = stats.gamma.ppf(p, k, scale=1 / rate)
        assert th.hypoexponential_quantile([rate] * k, p) == pytest.approx(expected, rel=1e-9)


def test_hypoexponential_distinct_rates_closed_form() -> None:
    rates = [1.0, 0.5, 0.25]

    def sf(t: float) -> float:
        # P(sum > t) = sum_i e^{-r_i t} prod_{j != i} r_j / (r_j - r_i)
        total = 0.0
        for i, ri in enumerate(rates):
            coef = math.prod(rj / (rj - ri) for j, rj in enumerate(rates) if j != i)
            total += coef * math.exp(-ri * t)
        return total

    for p in QUANTILES:
        t = th.hypoexponential_quantile(rates, p)
        assert sf(t) == pytest.approx(1 - p, rel=1e-9)
        assert th.hypoexponential_sf(rates, t) == pytest.approx(1 - p, rel=1e-9)


def test_hypoexponential_nearly_equal_rates_is_continuous() -> None:
    base = th.hypoexponential_quantile([1.0, 1.0, 2.0], 0.95)
    near = th.hypoexponential_quantile([1.0, 1.0 + 1e-9, 2.0], 0.95)
    assert near == pytest.approx(base, rel=1e-7)


@pytest.mark.parametrize(("lam", "mu"), [(0.3, 1.0), (0.9, 1.0), (2.0, 3.0)])
def test_round_robin_single_server_is_mm1(lam: float, mu: float) -> None:
    rr, ref = th.round_robin(1, lam, mu), th.mm1(lam, mu)
    assert rr["sigma"] == pytest.approx(lam / mu, rel=1e-10)
    for key in ("mean_response_time", "mean_wait", "p_wait", "utilisation"):
        assert rr[key] == pytest.approx(ref[key], rel=1e-10)
    assert rr["mean_queue_len_seen_on_join"] == pytest.approx(ref["L"], rel=1e-10)
    assert rr["response_p95"] == pytest.approx(th.mm1_response_quantile(lam, mu, 0.95), rel=1e-10)
    assert rr["wait_p99"] == pytest.approx(th.mm1_wait_quantile(lam, mu, 0.99), rel=1e-10)


@pytest.mark.parametrize(("n", "load"), [(2, 0.5), (10, 0.9), (10, 0.99), (100, 0.95), (3, 0.1)])
def test_round_robin_sigma_solves_its_equation(n: int, load: float) -> None:
    mu = 1.0
    lam_total = n * load * mu
    sigma = th.round_robin_sigma(n, lam_total, mu)
    assert 0 < sigma < 1
    assert sigma == pytest.approx((lam_total / (lam_total + mu * (1 - sigma))) ** n, rel=1e-12)
    # more regular arrivals than Poisson: waits less than the M/M/1 with the same load
    assert sigma < load
    rr = th.round_robin(n, lam_total, mu)
    assert rr["mean_response_time"] < th.random_split(n, lam_total, mu)["mean_response_time"]


def test_random_split_is_mm1_per_server() -> None:
    m, ref = th.random_split(10, 9.0, 1.0), th.mm1(0.9, 1.0)
    for key, value in ref.items():
        assert m[key] == pytest.approx(value, rel=1e-12)
    assert m["mean_queue_len_seen_on_join"] == pytest.approx(ref["L"], rel=1e-12)


@pytest.mark.parametrize("lam", [0.3, 0.9])
def test_power_of_one_choice_is_mm1(lam: float) -> None:
    details, ref = th.power_of_d_limit_details(lam, 1), th.mm1(lam, 1.0)
    assert th.power_of_d_limit(lam, 1) == pytest.approx(ref["mean_response_time"], rel=1e-10)
    assert details["p_wait"] == pytest.approx(ref["p_wait"], rel=1e-12)
    assert details["response_p95"] == pytest.approx(
        th.mm1_response_quantile(lam, 1.0, 0.95), rel=1e-8
    )


def test_power_of_d_consistency() -> None:
    lam, mu = 1.6, 2.0  # rho = 0.8, time unit changed by mu
    for d in (2, 3):
        m = th.power_of_d_limit_details(lam, d, mu)
        assert m["mean_response_time"] == pytest.approx(
            (1 + m["mean_queue_len_seen_on_join"]) / mu, rel=1e-10
        )
        assert m["L_per_server"] == pytest.approx(lam * m["mean_response_time"], rel=1e-12)
        assert m["mean_response_time"] == pytest.approx(th.power_of_d_limit(0.8, d) / mu, rel=1e-12)
    assert th.power_of_d_limit(0.9, 3) < th.power_of_d_limit(0.9, 2) < th.power_of_d_limit(0.9, 1)


def test_zipf_probs() -> None:
    p = th.zipf_probs(1000, 0.8)
    assert p.sum() == pytest.approx(1.0, rel=1e-12)
    assert np.all(np.diff(p) < 0)
    assert p[0] / p[9] == pytest.approx(10**0.8, rel=1e-12)
    assert np.allclose(th.zipf_probs(5, 0.0), 0.2)


def test_caches_holding_everything_always_hit() -> None:
    p = th.zipf_probs(50, 0.9)
    assert th.che_lru_hit_ratio(p, 50) == 1.0
    assert th.fifo_random_hit_ratio_approx(p, 50) == 1.0
    assert th.fifo_random_hit_ratio_exact(p, 50) == pytest.approx(1.0, rel=1e-12)
    assert th.lfu_static_hit_ratio(p, 50) == pytest.approx(1.0, rel=1e-12)
    assert th.fifo_random_hit_ratio_exact(p, 0) == 0.0


def test_uniform_popularity_hit_ratio_is_c_over_n() -> None:
    p = np.full(200, 1 / 200)
    for func in (
        th.che_lru_hit_ratio,
        th.fifo_random_hit_ratio_approx,
        th.fifo_random_hit_ratio_exact,
        th.lfu_static_hit_ratio,
    ):
        assert func(p, 30) == pytest.approx(30 / 200, rel=1e-9)


def test_characteristic_times_solve_their_equations() -> None:
    p = th.zipf_probs(2000, 0.7)
    t_c = th.che_characteristic_time(p, 50)
    assert float(np.sum(1 - np.exp(-p * t_c))) == pytest.approx(50, rel=1e-10)
    t_f = th.fifo_characteristic_time(p, 50)
    assert float(np.sum(p * t_f / (1 + p * t_f))) == pytest.approx(50, rel=1e-10)


def brute_force_random_cache(p: np.ndarray, size: int) -> np.ndarray:
    """P(i cached) from the product form by enumerating every set of ``size`` objects."""
    occupancy = np.zeros(p.size)
    total = 0.0
    for subset in itertools.combinations(range(p.size), size):
        weight = float(np.prod(p[list(subset)]))
        total += weight
        occupancy[list(subset)] += weight
    return occupancy / total


@pytest.mark.parametrize(
    ("n", "alpha", "size"), [(8, 0.8, 3), (10, 1.5, 1), (9, 0.0, 4), (12, 2.5, 6)]
)
def test_fifo_random_exact_matches_enumeration(n: int, alpha: float, size: int) -> None:
    p = th.zipf_probs(n, alpha)
    expected = brute_force_random_cache(p, size)
    assert np.allclose(th.fifo_random_occupancy_exact(p, size), expected, rtol=1e-10, atol=1e-14)
    assert th.fifo_random_hit_ratio_exact(p, size) == pytest.approx(float(p @ expected), rel=1e-10)


def test_fifo_random_exact_occupancy_sums_to_cache_size() -> None:
    p = th.zipf_probs(3000, 1.1)
    for size in (1, 25, 300):
        occ = th.fifo_random_occupancy_exact(p, size)
        assert occ.sum() == pytest.approx(size, rel=1e-10)
        assert np.all((occ >= 0) & (occ <= 1 + 1e-12))
        assert np.all(np.diff(occ) <= 1e-12)  # more popular objects are cached more often


def test_fifo_random_exact_ignores_unrequested_objects() -> None:
    p = np.array([0.4, 0.0, 0.3, 0.2, 0.0, 0.1])
    occ = th.fifo_random_occupancy_exact(p, 2)
    assert occ[1] == 0.0
    assert occ[4] == 0.0
    assert np.allclose(occ[p > 0], brute_force_random_cache(p[p > 0], 2), rtol=1e-10)


def test_hit_ratio_ordering() -> None:
    # perfect LFU is optimal under IRM, and LRU beats FIFO/RANDOM
    p = th.zipf_probs(5000, 0.8)
    lfu = th.lfu_static_hit_ratio(p, 100)
    lru = th.che_lru_hit_ratio(p, 100)
    fifo = th.fifo_random_hit_ratio_exact(p, 100)
    assert lfu > lru > fifo > 100 / 5000


def test_ttl_hit_ratios() -> None:
    lam = np.array([0.0, 0.1, 1.0, 10.0])
    assert np.allclose(th.ttl_nonreset_hit_ratio(lam, 2.0), lam * 2 / (1 + lam * 2))
    assert np.allclose(th.ttl_reset_hit_ratio(lam, 2.0), 1 - np.exp(-lam * 2))
    # resetting on hits keeps objects longer
    assert np.all(th.ttl_reset_hit_ratio(lam, 2.0) >= th.ttl_nonreset_hit_ratio(lam, 2.0))
    assert float(th.ttl_nonreset_hit_ratio(1.0, 1.0)) == pytest.approx(0.5)


def test_retry_multiplier() -> None:
    for r in range(6):
        assert th.retry_multiplier(1.0, r) == r + 1
        assert th.retry_multiplier(0.0, r) == 1.0
        for p in (0.1, 0.5, 0.9, 0.999999):
            assert th.retry_multiplier(p, r) == pytest.approx(
                (1 - p ** (r + 1)) / (1 - p), rel=1e-8
            )


def test_consistent_hash_cv_single_node_is_zero() -> None:
    assert th.consistent_hash_cv(1, 100) == 0.0
    assert th.consistent_hash_cv(10, 150) == pytest.approx(math.sqrt(9 / 1501), rel=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda: th.mm1(1.0, 1.0),
        lambda: th.mmc(4.0, 1.0, 4),
        lambda: th.mg1_pk(1.0, 1.0, 0.5),
        lambda: th.mm1_response_quantile(0.5, 1.0, 1.0),
        lambda: th.round_robin_sigma(4, 4.0, 1.0),
        lambda: th.power_of_d_limit(1.2, 2),
        lambda: th.tandem_mm1(1.0, [2.0, 1.0]),
        lambda: th.erlang_b(0, 1.0),
        lambda: th.retry_multiplier(1.5, 1),
    ],
)
def test_invalid_parameters_raise(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


def test_fifo_exact_value_from_notes() -> None:
    # notes of case CACHE-zipf0.8-C100: exact product form 0.13384, approximation 0.16% low
    p = th.zipf_probs(10_000, 0.8)
    exact = th.fifo_random_hit_ratio_exact(p, 100)
    approx = th.fifo_random_hit_ratio_approx(p, 100)
    assert exact == pytest.approx(0.13384, abs=2e-5)
    assert (approx - exact) / exact == pytest.approx(-0.0016, abs=0.0002)
