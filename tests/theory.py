"""Closed-form queueing and caching results used to derive expected values in the tests.

Everything here is independent of the simulator: the tests compare simulator output with these
formulas and never with numbers copied from earlier simulator runs.

Conventions
-----------
Rates are per unit time and times are in the same unit (``lam`` arrival rate, ``mu`` service
rate of one server). Probabilities ``p`` of quantile functions lie in ``(0, 1)``. Functions that
describe a queue return a ``dict`` of floats whose keys are documented in each docstring. Invalid
parameters (for example an unstable queue) raise ``ValueError``.

References
----------
Kleinrock, *Queueing Systems Vol. 1* (1975); Harchol-Balter, *Performance Modeling and Design of
Computer Systems* (2013); Mitzenmacher, "The power of two choices in randomized load balancing",
IEEE TPDS 12(10), 2001; Che, Tung and Wang, IEEE JSAC 20(7), 2002; Gelenbe, "A unified approach
to the evaluation of a class of replacement algorithms", IEEE Trans. Computers 22(6), 1973;
Fofack, Nain, Neglia and Towsley, "Analysis of TTL-based cache networks", 2012.
"""

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from scipy import linalg, optimize, stats

__all__ = [
    "che_characteristic_time",
    "che_lru_hit_ratio",
    "consistent_hash_cv",
    "erlang_b",
    "erlang_c",
    "fifo_characteristic_time",
    "fifo_random_hit_ratio_approx",
    "fifo_random_hit_ratio_exact",
    "fifo_random_occupancy_exact",
    "hypoexponential_quantile",
    "hypoexponential_sf",
    "lfu_static_hit_ratio",
    "lognormal_params",
    "mg1_pk",
    "mg1_priority",
    "mg1_processor_sharing",
    "mm1",
    "mm1_abandonment",
    "mm1_response_quantile",
    "mm1_wait_quantile",
    "mm1k",
    "mmc",
    "mmc_response_quantile",
    "mmc_response_sf",
    "mmc_wait_quantile",
    "power_of_d_limit",
    "power_of_d_limit_details",
    "power_of_d_limit_response_quantile",
    "power_of_d_limit_tails",
    "random_split",
    "retry_multiplier",
    "round_robin",
    "round_robin_response_quantile",
    "round_robin_sigma",
    "round_robin_wait_quantile",
    "tandem_mm1",
    "tandem_mm1_quantile",
    "ttl_nonreset_hit_ratio",
    "ttl_reset_hit_ratio",
    "zipf_probs",
]

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite positive number, got {value!r}")


def _check_probability(p: float) -> None:
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie strictly between 0 and 1, got {p!r}")


def _check_stable(rho: float) -> None:
    if not rho < 1.0:
        raise ValueError(f"queue is unstable: utilisation {rho!r} >= 1")


def _invert_sf(sf: Callable[[float], float], p: float, scale: float) -> float:
    """Return the ``p`` quantile ``t`` of a continuous distribution on ``[0, inf)``.

    Parameters
    ----------
    sf : callable
        Survival function ``P(X > t)``, continuous and non-increasing, with ``sf(0) > 1 - p``.
    p : float
        Probability in ``(0, 1)``.
    scale : float
        A positive time scale of the distribution (for example its mean), used to bracket the
        root and set the tolerance.

    Returns
    -------
    float
        The smallest ``t`` with ``sf(t) = 1 - p`` (to within ``1e-13 * scale``).
    """
    target = 1.0 - p
    hi = scale
    while sf(hi) > target:
        hi *= 2.0
        if hi > 1e300:
            raise ValueError("could not bracket the quantile")
    root = optimize.brentq(
        lambda t: sf(t) - target, 0.0, hi, xtol=1e-13 * scale, rtol=4 * np.finfo(float).eps
    )
    return float(root)


def _as_popularity(p: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("popularities must be a non-empty 1-D sequence")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("popularities must be finite and non-negative")
    total = float(arr.sum())
    if total <= 0:
        raise ValueError("popularities must not all be zero")
    return arr / total


# --------------------------------------------------------------------------------------------
# M/M/1
# --------------------------------------------------------------------------------------------


def mm1(lam: float, mu: float) -> dict[str, float]:
    """Stationary M/M/1 FCFS metrics.

    Parameters
    ----------
    lam : float
        Arrival rate.
    mu : float
        Service rate; requires ``lam < mu``.

    Returns
    -------
    dict of str to float
        ``mean_response_time`` = 1/(mu - lam), ``mean_wait`` = rho/(mu - lam),
        ``L`` = rho/(1 - rho) (time-average number in system), ``Lq`` = rho^2/(1 - rho)
        (time-average number waiting), ``p_wait`` = P(Wq > 0) = rho, ``utilisation`` = rho.
    """
    _check_positive(lam=lam, mu=mu)
    rho = lam / mu
    _check_stable(rho)
    return {
        "mean_response_time": 1.0 / (mu - lam),
        "mean_wait": rho / (mu - lam),
        "L": rho / (1.0 - rho),
        "Lq": rho * rho / (1.0 - rho),
        "p_wait": rho,
        "utilisation": rho,
    }


def mm1_response_quantile(lam: float, mu: float, p: float) -> float:
    """Quantile of the M/M/1 FCFS response (sojourn) time, which is Exp(mu - lam).

    Parameters
    ----------
    lam, mu : float
        Arrival and service rates, ``lam < mu``.
    p : float
        Probability in ``(0, 1)``.

    Returns
    -------
    float
        ``-ln(1 - p) / (mu - lam)``.
    """
    _check_positive(lam=lam, mu=mu)
    _check_stable(lam / mu)
    _check_probability(p)
    return -math.log1p(-p) / (mu - lam)


def mm1_wait_quantile(lam: float, mu: float, p: float) -> float:
    """Quantile of the M/M/1 FCFS waiting time in queue.

    ``P(Wq > t) = rho exp(-(mu - lam) t)``, with an atom ``1 - rho`` at zero.

    Parameters
    ----------
    lam, mu : float
        Arrival and service rates, ``lam < mu``.
    p : float
        Probability in ``(0, 1)``.

    Returns
    -------
    float
        0 when ``p <= 1 - rho``, else ``ln(rho / (1 - p)) / (mu - lam)``.
    """
    _check_positive(lam=lam, mu=mu)
    rho = lam / mu
    _check_stable(rho)
    _check_probability(p)
    if p <= 1.0 - rho:
        return 0.0
    return math.log(rho / (1.0 - p)) / (mu - lam)


# --------------------------------------------------------------------------------------------
# M/M/c
# --------------------------------------------------------------------------------------------


def erlang_b(c: int, a: float) -> float:
    """Erlang B blocking probability of an M/M/c/c loss system.

    Computed by the stable recursion ``B_0 = 1``, ``B_k = a B_{k-1} / (k + a B_{k-1})``.

    Parameters
    ----------
    c : int
        Number of servers, ``c >= 1``.
    a : float
        Offered load ``lam / mu`` in Erlangs, ``a > 0``.

    Returns
    -------
    float
        Probability that an arrival finds all ``c`` servers busy.
    """
    if int(c) != c or c < 1:
        raise ValueError(f"c must be a positive integer, got {c!r}")
    _check_positive(a=a)
    b = 1.0
    for k in range(1, int(c) + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Erlang C probability of waiting in an M/M/c FCFS queue.

    Parameters
    ----------
    c : int
        Number of servers, ``c >= 1``.
    a : float
        Offered load ``lam / mu``, requires ``a < c``.

    Returns
    -------
    float
        ``C = B / (1 - rho (1 - B))`` with ``B = erlang_b(c, a)`` and ``rho = a / c``.
    """
    b = erlang_b(c, a)
    rho = a / c
    _check_stable(rho)
    return b / (1.0 - rho * (1.0 - b))


def mmc(lam: float, mu: float, c: int) -> dict[str, float]:
    """Stationary M/M/c FCFS metrics (single shared queue).

    Parameters
    ----------
    lam : float
        Arrival rate.
    mu : float
        Service rate of one server.
    c : int
        Number of servers; requires ``lam < c mu``.

    Returns
    -------
    dict of str to float
        ``p_wait`` (Erlang C), ``mean_wait`` = C/(c mu - lam), ``mean_response_time`` =
        mean_wait + 1/mu, ``Lq`` = lam mean_wait, ``L`` = lam mean_response_time,
        ``utilisation`` = lam/(c mu) (per server).
    """
    _check_positive(lam=lam, mu=mu)
    a = lam / mu
    p_wait = erlang_c(c, a)
    mean_wait = p_wait / (c * mu - lam)
    mean_response = mean_wait + 1.0 / mu
    return {
        "p_wait": p_wait,
        "mean_wait": mean_wait,
        "mean_response_time": mean_response,
        "Lq": lam * mean_wait,
        "L": lam * mean_response,
        "utilisation": a / c,
    }


def _exp_difference_quotient(x: float, y: float, t: float) -> float:
    """Return ``(exp(-x t) - exp(-y t)) / (y - x)`` for ``x, y > 0``, ``t >= 0``, stably.

    The expression is symmetric in ``x`` and ``y`` and tends to ``t exp(-x t)`` as ``y -> x``.
    """
    lo, hi = min(x, y), max(x, y)
    z = (hi - lo) * t
    phi = 1.0 if z == 0.0 else -math.expm1(-z) / z
    return t * math.exp(-lo * t) * phi


def mmc_response_sf(lam: float, mu: float, c: int, t: float) -> float:
    """Survival function ``P(T > t)`` of the M/M/c FCFS response time.

    ``T = S + W`` with ``S ~ Exp(mu)`` and ``W = 0`` w.p. ``1 - C``, ``Exp(theta)`` w.p. ``C``,
    ``theta = c mu - lam``:
    ``P(T > t) = (1 - C) e^{-mu t} + C (theta e^{-mu t} - mu e^{-theta t}) / (theta - mu)``,
    evaluated in a form that is exact in the limit ``theta -> mu`` (where the second term is
    ``C e^{-mu t} (1 + mu t)``).

    Parameters
    ----------
    lam, mu : float
        Arrival rate and per-server service rate.
    c : int
        Number of servers, ``lam < c mu``.
    t : float
        Time, ``t >= 0``.

    Returns
    -------
    float
        ``P(T > t)``.
    """
    _check_positive(lam=lam, mu=mu)
    if t < 0:
        return 1.0
    cw = erlang_c(c, lam / mu)
    theta = c * mu - lam
    # (theta e^{-mu t} - mu e^{-theta t}) / (theta - mu)
    #   = e^{-mu t} + mu (e^{-mu t} - e^{-theta t}) / (theta - mu)
    waited = math.exp(-mu * t) + mu * _exp_difference_quotient(mu, theta, t)
    return (1.0 - cw) * math.exp(-mu * t) + cw * waited


def mmc_response_quantile(lam: float, mu: float, c: int, p: float) -> float:
    """Quantile of the M/M/c FCFS response time.

    Solves ``mmc_response_sf(lam, mu, c, t) = 1 - p`` numerically (Brent's method).

    Parameters
    ----------
    lam, mu : float
        Arrival rate and per-server service rate.
    c : int
        Number of servers, ``lam < c mu``.
    p : float
        Probability in ``(0, 1)``.

    Returns
    -------
    float
        The ``p`` quantile of the response time.
    """
    _check_probability(p)
    scale = mmc(lam, mu, c)["mean_response_time"]
    return _invert_sf(lambda t: mmc_response_sf(lam, mu, c, t), p, scale)


def mmc_wait_quantile(lam: float, mu: float, c: int, p: float) -> float:
    """Quantile of the M/M/c FCFS waiting time in queue.

    ``P(Wq > t) = C exp(-(c mu - lam) t)``.

    Parameters
    ----------
    lam, mu : float
        Arrival rate and per-server service rate.
    c : int
        Number of servers, ``lam < c mu``.
    p : float
        Probability in ``(0, 1)``.

    Returns
    -------
    float
        0 when ``p <= 1 - C``, else ``ln(C / (1 - p)) / (c mu - lam)``.
    """
    _check_positive(lam=lam, mu=mu)
    _check_probability(p)
    cw = erlang_c(c, lam / mu)
    if p <= 1.0 - cw:
        return 0.0
    return math.log(cw / (1.0 - p)) / (c * mu - lam)


# --------------------------------------------------------------------------------------------
# M/G/1 and M/M/1/K
# --------------------------------------------------------------------------------------------


def mg1_pk(lam: float, mean_s: float, cv: float) -> dict[str, float]:
    """M/G/1 FCFS means from the Pollaczek-Khinchine formula.

    Parameters
    ----------
    lam : float
        Arrival rate.
    mean_s : float
        Mean service time; requires ``rho = lam mean_s < 1``.
    cv : float
        Coefficient of variation of the service time (0 deterministic, 1 exponential).

    Returns
    -------
    dict of str to float
        ``mean_wait`` = rho mean_s (1 + cv^2) / (2 (1 - rho)), ``mean_response_time`` =
        mean_wait + mean_s, ``Lq`` = lam mean_wait, ``L`` = lam mean_response_time,
        ``p_wait`` = rho, ``utilisation`` = rho.
    """
    _check_positive(lam=lam, mean_s=mean_s)
    if not (math.isfinite(cv) and cv >= 0):
        raise ValueError(f"cv must be finite and non-negative, got {cv!r}")
    rho = lam * mean_s
    _check_stable(rho)
    mean_wait = rho * mean_s * (1.0 + cv * cv) / (2.0 * (1.0 - rho))
    mean_response = mean_wait + mean_s
    return {
        "mean_wait": mean_wait,
        "mean_response_time": mean_response,
        "Lq": lam * mean_wait,
        "L": lam * mean_response,
        "p_wait": rho,
        "utilisation": rho,
    }


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """Parameters of the lognormal distribution with a given mean and coefficient of variation.

    Parameters
    ----------
    mean : float
        Mean, ``> 0``.
    cv : float
        Coefficient of variation, ``> 0``.

    Returns
    -------
    tuple of float
        ``(mu_ln, sigma)`` with ``sigma^2 = ln(1 + cv^2)`` and ``mu_ln = ln(mean) - sigma^2/2``.
    """
    _check_positive(mean=mean, cv=cv)
    sigma2 = math.log1p(cv * cv)
    return math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2)


def mm1k(lam: float, mu: float, K: int) -> dict[str, float]:  # noqa: N803
    """Stationary M/M/1/K metrics (arrivals finding K in the system are lost).

    ``K`` counts every request in the system including the one in service, so there are
    ``K - 1`` waiting places. ``p_n = (1 - rho) rho^n / (1 - rho^(K+1))`` (uniform when
    ``rho = 1``); any ``rho > 0`` is allowed.

    Parameters
    ----------
    lam, mu : float
        Arrival and service rates.
    K : int
        System capacity, ``K >= 1``.

    Returns
    -------
    dict of str to float
        ``p_block`` = p_K (PASTA), ``throughput`` = lam (1 - p_K), ``L`` = sum n p_n,
        ``Lq`` = L - (1 - p_0), ``mean_response_time_accepted`` = L / throughput,
        ``mean_wait_accepted`` = Lq / throughput, ``p_wait_accepted`` (an accepted arrival finds
        the server busy), ``utilisation`` = 1 - p_0.
    """
    _check_positive(lam=lam, mu=mu)
    if int(K) != K or K < 1:
        raise ValueError(f"K must be a positive integer, got {K!r}")
    rho = lam / mu
    n = np.arange(int(K) + 1, dtype=np.float64)
    # weights rho^(n - ref), with ref chosen so that no weight overflows
    ref = float(K) if rho > 1.0 else 0.0
    weights = np.exp((n - ref) * math.log(rho))
    probs = weights / weights.sum()
    p0, pk = float(probs[0]), float(probs[-1])
    mean_n = float(np.dot(n, probs))
    lq = mean_n - (1.0 - p0)
    throughput = lam * (1.0 - pk)
    return {
        "p_block": pk,
        "throughput": throughput,
        "L": mean_n,
        "Lq": lq,
        "mean_response_time_accepted": mean_n / throughput,
        "mean_wait_accepted": lq / throughput,
        "p_wait_accepted": (1.0 - p0 - pk) / (1.0 - pk),
        "utilisation": 1.0 - p0,
    }


# --------------------------------------------------------------------------------------------
# tandem (Jackson) networks
# --------------------------------------------------------------------------------------------


def tandem_mm1(lam: float, mus: Sequence[float]) -> dict[str, float]:
    """Tandem of M/M/1 FCFS stations fed by a Poisson stream (Jackson network).

    Parameters
    ----------
    lam : float
        External arrival rate (every request visits every station once, in order).
    mus : sequence of float
        Service rate of each station; requires ``lam < min(mus)``.

    Returns
    -------
    dict of str to float
        ``mean_sojourn_station{i}`` = 1/(mu_i - lam) for ``i = 1..len(mus)``,
        ``utilisation_station{i}`` = lam/mu_i, ``mean_end_to_end`` (sum of the station means)
        and ``L_network`` = lam * mean_end_to_end (Little).
    """
    if len(mus) == 0:
        raise ValueError("need at least one station")
    out: dict[str, float] = {}
    total = 0.0
    for i, mu in enumerate(mus, start=1):
        station = mm1(lam, mu)
        out[f"mean_sojourn_station{i}"] = station["mean_response_time"]
        out[f"utilisation_station{i}"] = station["utilisation"]
        total += station["mean_response_time"]
    out["mean_end_to_end"] = total
    out["L_network"] = lam * total
    return out


def mx_m1(lam: float, mu: float, ex: float, ex2: float) -> dict[str, float]:
    """M^X/M/1 FCFS: Poisson batches at rate ``lam`` of X customers each, one exponential server.

    A batch is served as one M/G/1 "super-customer" of service time the sum of X exponentials
    (E[S] = E[X]/mu, E[S^2] = (E[X] + E[X^2]) / mu^2), so the first of a batch waits the
    Pollaczek-Khinchine time ``lam E[S^2] / (2 (1 - rho))``; a customer taken at random has on
    average ``(E[X^2] - E[X]) / (2 E[X])`` of its batch ahead of it (the length-biased position).

    Parameters
    ----------
    lam : float
        Batch arrival rate.
    mu : float
        Service rate of one customer.
    ex, ex2 : float
        First and second moments of the batch size X (>= 1).

    Returns
    -------
    dict of str to float
        ``utilisation`` rho = lam E[X] / mu, ``mean_response_time`` of a customer,
        ``L`` = rho / (1 - rho) * (E[X^2] + E[X]) / (2 E[X]) (equal to lam E[X] times the
        response time, Little), ``mean_wait``.
    """
    _check_positive(lam=lam, mu=mu, ex=ex, ex2=ex2)
    if ex < 1 or ex2 < ex * ex:
        raise ValueError("batch moments must satisfy E[X] >= 1 and E[X^2] >= E[X]^2")
    rho = lam * ex / mu
    _check_stable(rho)
    first = lam * (ex + ex2) / mu ** 2 / (2 * (1 - rho))
    ahead = (ex2 - ex) / (2 * ex) / mu
    wait = first + ahead
    return {"utilisation": rho, "mean_wait": wait, "mean_response_time": wait + 1 / mu,
            "L": rho / (1 - rho) * (ex2 + ex) / (2 * ex)}


def jackson_open(external: Sequence[float], mus: Sequence[float],
                 routing: Sequence[Sequence[float]]) -> dict[str, float]:
    """Open Jackson network of single-server FCFS exponential stations (product form).

    Parameters
    ----------
    external : sequence of float
        Poisson arrival rate from outside into each station.
    mus : sequence of float
        Service rate of each station.
    routing : matrix
        ``routing[i][j]``: probability that a request leaving station ``i`` goes to station
        ``j`` next (feedback allowed); ``1 - sum(routing[i])`` leaves the network.

    Returns
    -------
    dict of str to float
        Per station ``i = 1..n``: ``arrival_rate_station{i}`` (the traffic equations
        ``lambda = external + lambda P``), ``utilisation_station{i}`` = lambda_i / mu_i,
        ``L_station{i}`` = rho_i / (1 - rho_i) (each station an M/M/1 in the product form),
        ``visits_station{i}`` = lambda_i / sum(external); ``L_network`` and
        ``mean_response_time`` = L_network / sum(external) (Little), the mean time from entry
        to exit.
    """
    ext = np.asarray(external, dtype=np.float64)
    mu = np.asarray(mus, dtype=np.float64)
    p = np.asarray(routing, dtype=np.float64)
    n = len(mu)
    if ext.shape != (n,) or p.shape != (n, n):
        raise ValueError("external, mus and routing must describe the same stations")
    _check_positive(total_external=float(ext.sum()), **{f"mu{i}": float(m)
                                                         for i, m in enumerate(mu, 1)})
    if np.any(p < 0) or np.any(p.sum(axis=1) > 1 + 1e-12):
        raise ValueError("routing rows must be probabilities summing to at most 1")
    lam = linalg.solve(np.eye(n) - p.T, ext)
    rho = lam / mu
    for r in rho:
        _check_stable(float(r))
    out: dict[str, float] = {}
    total_l = 0.0
    for i in range(n):
        station_l = float(rho[i] / (1 - rho[i]))
        out[f"arrival_rate_station{i + 1}"] = float(lam[i])
        out[f"utilisation_station{i + 1}"] = float(rho[i])
        out[f"L_station{i + 1}"] = station_l
        out[f"visits_station{i + 1}"] = float(lam[i] / ext.sum())
        total_l += station_l
    out["L_network"] = total_l
    out["mean_response_time"] = total_l / float(ext.sum())
    return out


def _hypoexponential_generator(rates: FloatArray) -> FloatArray:
    k = rates.size
    gen = np.zeros((k, k))
    gen[np.arange(k), np.arange(k)] = -rates
    gen[np.arange(k - 1), np.arange(1, k)] = rates[:-1]
    return gen


def _as_rates(rates: Sequence[float] | npt.ArrayLike) -> FloatArray:
    arr = np.atleast_1d(np.asarray(rates, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("rates must be a non-empty 1-D sequence")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError("rates must be finite and positive")
    return arr


def hypoexponential_sf(rates: Sequence[float] | npt.ArrayLike, t: float) -> float:
    """Survival function of a sum of independent exponentials (hypoexponential distribution).

    Computed as ``alpha expm(S t) 1`` for the phase-type generator ``S`` of the phases in
    series, so equal or nearly equal rates need no special treatment.

    Parameters
    ----------
    rates : sequence of float
        Rates of the exponential phases (any order; repeats allowed).
    t : float
        Time.

    Returns
    -------
    float
        ``P(X_1 + ... + X_k > t)``.
    """
    arr = _as_rates(rates)
    if t <= 0:
        return 1.0
    gen = _hypoexponential_generator(arr)
    row = linalg.expm(gen * t)[0]
    return float(min(1.0, max(0.0, row.sum())))


def hypoexponential_quantile(rates: Sequence[float] | npt.ArrayLike, p: float) -> float:
    """Quantile of a sum of independent exponentials with the given rates.

    Parameters
    ----------
    rates : sequence of float
        Rates of the exponential phases (repeats allowed).
    p : float
        Probability in ``(0, 1)``.

    Returns
    -------
    float
        ``t`` with ``hypoexponential_sf(rates, t) = 1 - p``.
    """
    arr = _as_rates(rates)
    _check_probability(p)
    gen = _hypoexponential_generator(arr)

    def sf(t: float) -> float:
        return float(linalg.expm(gen * t)[0].sum())

    return _invert_sf(sf, p, float(np.sum(1.0 / arr)))


def tandem_mm1_quantile(lam: float, mus: Sequence[float], p: float) -> float:
    """Quantile of the end-to-end sojourn time through a tandem of M/M/1 stations.

    By Burke's and Reich's theorems the per-station sojourns of one request are independent
    Exp(mu_i - lam), so the end-to-end sojourn is hypoexponential.

    Parameters
    ----------
    lam : float
        External arrival rate.
    mus : sequence of float
        Station service rates, all ``> lam``.
    p : float
        Probability in ``(0, 1)``.

    Returns
    -------
    float
        The ``p`` quantile of the end-to-end sojourn time.
    """
    _check_positive(lam=lam)
    for mu in mus:
        _check_positive(mu=mu)
        _check_stable(lam / mu)
    return hypoexponential_quantile([mu - lam for mu in mus], p)


# --------------------------------------------------------------------------------------------
# load balancing
# --------------------------------------------------------------------------------------------


def random_split(n: int, lam_total: float, mu: float) -> dict[str, float]:
    """Uniform random routing of a Poisson stream to ``n`` M/M/1 FCFS servers.

    Poisson splitting makes every server an independent M/M/1 queue with arrival rate
    ``lam_total / n``.

    Parameters
    ----------
    n : int
        Number of servers.
    lam_total : float
        Total arrival rate.
    mu : float
        Service rate of each server.

    Returns
    -------
    dict of str to float
        The keys of :func:`mm1` for one server plus ``mean_queue_len_seen_on_join`` (number in
        system found by an arrival at its server = L by PASTA), ``response_p50``,
        ``response_p95``, ``response_p99`` and ``wait_p99``.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    lam = lam_total / n
    out = mm1(lam, mu)
    out["mean_queue_len_seen_on_join"] = out["L"]
    for q in (50, 95, 99):
        out[f"response_p{q}"] = mm1_response_quantile(lam, mu, q / 100)
    out["wait_p99"] = mm1_wait_quantile(lam, mu, 0.99)
    return out


def round_robin_sigma(n: int, lam_total: float, mu: float) -> float:
    """GI/M/1 root for strict round-robin routing to ``n`` exponential servers.

    Each server receives every ``n``-th arrival of a Poisson(``lam_total``) stream, so its
    interarrival times are Erlang(``n``, ``lam_total``) and the server is an E_n/M/1 queue.
    ``sigma`` is the root in ``(0, 1)`` of
    ``sigma = (lam_total / (lam_total + mu (1 - sigma)))^n``.

    Parameters
    ----------
    n : int
        Number of servers.
    lam_total : float
        Total arrival rate; requires ``lam_total < n mu``.
    mu : float
        Service rate of each server.

    Returns
    -------
    float
        ``sigma``: the probability that an arrival waits, and the parameter of the geometric
        number of requests it finds at its server.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    _check_positive(lam_total=lam_total, mu=mu)
    _check_stable(lam_total / (n * mu))

    def f(sigma: float) -> float:
        # Laplace transform of Erlang(n, lam_total) at mu (1 - sigma), minus sigma
        return math.exp(-n * math.log1p(mu * (1.0 - sigma) / lam_total)) - sigma

    # f is convex with f(0) > 0, f(1) = 0 and f'(1) > 0: exactly one root in (0, 1), and f < 0
    # between that root and 1.
    eps = 0.5
    while f(1.0 - eps) >= 0.0:
        eps /= 2.0
        if eps < 1e-15:
            raise ValueError("could not bracket the round-robin root (load too close to 1)")
    return float(optimize.brentq(f, 0.0, 1.0 - eps, xtol=1e-15, rtol=4 * np.finfo(float).eps))


def round_robin_response_quantile(n: int, lam_total: float, mu: float, p: float) -> float:
    """Quantile of the response time under round-robin routing, ``T ~ Exp(mu (1 - sigma))``.

    Parameters
    ----------
    n : int
        Number of servers.
    lam_total : float
        Total arrival rate.
    mu : float
        Service rate of each server.
    p : float
        Probability in ``(0, 1)``.

    Returns
    -------
    float
        ``-ln(1 - p) / (mu (1 - sigma))``.
    """
    _check_probability(p)
    sigma = round_robin_sigma(n, lam_total, mu)
    return -math.log1p(-p) / (mu * (1.0 - sigma))


def round_robin_wait_quantile(n: int, lam_total: float, mu: float, p: float) -> float:
    """Quantile of the waiting time under round-robin routing.

    ``P(W > t) = sigma exp(-mu (1 - sigma) t)``.

    Parameters
    ----------
    n : int
        Number of servers.
    lam_total : float
        Total arrival rate.
    mu : float
        Service rate of each server.
    p : float
        Probability in ``(0, 1)``.

    Returns
    -------
    float
        0 when ``p <= 1 - sigma``, else ``ln(sigma / (1 - p)) / (mu (1 - sigma))``.
    """
    _check_probability(p)
    sigma = round_robin_sigma(n, lam_total, mu)
    if p <= 1.0 - sigma:
        return 0.0
    return math.log(sigma / (1.0 - p)) / (mu * (1.0 - sigma))


def round_robin(n: int, lam_total: float, mu: float) -> dict[str, float]:
    """Strict round-robin routing of a Poisson stream to ``n`` M/M/1 FCFS servers (E_n/M/1).

    Parameters
    ----------
    n : int
        Number of servers.
    lam_total : float
        Total arrival rate; requires ``lam_total < n mu``.
    mu : float
        Service rate of each server.

    Returns
    -------
    dict of str to float
        ``sigma``, ``mean_response_time`` = 1/(mu (1 - sigma)), ``mean_wait`` =
        sigma/(mu (1 - sigma)), ``p_wait`` = sigma, ``mean_queue_len_seen_on_join`` =
        sigma/(1 - sigma), ``utilisation`` = lam_total/(n mu), ``response_p50``,
        ``response_p95``, ``response_p99`` and ``wait_p99``.
    """
    sigma = round_robin_sigma(n, lam_total, mu)
    rate = mu * (1.0 - sigma)
    out = {
        "sigma": sigma,
        "mean_response_time": 1.0 / rate,
        "mean_wait": sigma / rate,
        "p_wait": sigma,
        "mean_queue_len_seen_on_join": sigma / (1.0 - sigma),
        "utilisation": lam_total / (n * mu),
    }
    for q in (50, 95, 99):
        out[f"response_p{q}"] = -math.log1p(-q / 100) / rate
    out["wait_p99"] = round_robin_wait_quantile(n, lam_total, mu, 0.99)
    return out


def power_of_d_limit_tails(
    lam_per_server: float, d: int, mu: float = 1.0, tol: float = 1e-300
) -> FloatArray:
    """Tail fractions ``s_i`` of the power-of-d (supermarket) model in the limit ``N -> inf``.

    ``s_i`` is the fraction of servers with at least ``i`` requests:
    ``s_i = rho^((d^i - 1) / (d - 1))`` (``rho^i`` for ``d = 1``), ``rho = lam_per_server / mu``.

    Parameters
    ----------
    lam_per_server : float
        Arrival rate per server, ``< mu``.
    d : int
        Number of servers sampled per arrival (the shortest is joined), ``d >= 1``.
    mu : float, optional
        Service rate of each server.
    tol : float, optional
        Terms are generated until ``s_i < tol``.

    Returns
    -------
    numpy.ndarray
        ``[s_1, s_2, ...]`` (``s_0 = 1`` is not included).
    """
    if int(d) != d or d < 1:
        raise ValueError(f"d must be a positive integer, got {d!r}")
    _check_positive(lam_per_server=lam_per_server, mu=mu)
    rho = lam_per_server / mu
    _check_stable(rho)
    log_rho = math.log(rho)
    tails: list[float] = []
    i = 1
    while True:
        exponent = float(i) if d == 1 else (float(d) ** i - 1.0) / (d - 1.0)
        s = math.exp(exponent * log_rho)
        if s < tol or i > 10_000_000:
            break
        tails.append(s)
        i += 1
    return np.asarray(tails, dtype=np.float64)


def power_of_d_limit(lam_per_server: float, d: int, mu: float = 1.0) -> float:
    """Mean response time of the power-of-d (supermarket) model in the limit ``N -> inf``.

    Mitzenmacher (2001), Vvedenskaya, Dobrushin and Karpelevich (1996):
    ``E[T] = (1 / lam) sum_{i >= 1} s_i`` with ``s_i = rho^((d^i - 1) / (d - 1))``.
    ``d`` candidates are sampled per arrival and the arrival joins the one with the fewest
    requests; at finite ``N`` the mean is larger.

    Parameters
    ----------
    lam_per_server : float
        Arrival rate per server, ``< mu``.
    d : int
        Number of choices, ``d >= 1`` (``d = 1`` is M/M/1).
    mu : float, optional
        Service rate of each server.

    Returns
    -------
    float
        Mean response time.
    """
    tails = power_of_d_limit_tails(lam_per_server, d, mu)
    return float(tails.sum()) / lam_per_server


def _power_of_d_join_probs(lam_per_server: float, d: int, mu: float) -> FloatArray:
    """Probabilities that the joined queue holds exactly ``i = 0, 1, ...`` requests."""
    tails = np.concatenate(([1.0], power_of_d_limit_tails(lam_per_server, d, mu), [0.0]))
    powered = tails**d
    probs: FloatArray = powered[:-1] - powered[1:]
    return probs


def power_of_d_limit_details(lam_per_server: float, d: int, mu: float = 1.0) -> dict[str, float]:
    """Metrics of the power-of-d model in the limit ``N -> inf``.

    The joined queue has exactly ``i`` requests w.p. ``s_i^d - s_{i+1}^d`` and the response
    time is then Erlang(``i + 1``, ``mu``).

    Parameters
    ----------
    lam_per_server : float
        Arrival rate per server, ``< mu``.
    d : int
        Number of choices, ``d >= 1``.
    mu : float, optional
        Service rate of each server.

    Returns
    -------
    dict of str to float
        ``mean_response_time``, ``mean_wait``, ``p_wait`` = rho^d,
        ``mean_queue_len_seen_on_join`` = sum_{i >= 1} s_i^d, ``L_per_server`` = sum s_i,
        ``utilisation`` = rho, ``response_p50``, ``response_p95``, ``response_p99``.
    """
    tails = power_of_d_limit_tails(lam_per_server, d, mu)
    seen = float(np.sum(tails**d))
    mean_response = float(tails.sum()) / lam_per_server
    out = {
        "mean_response_time": mean_response,
        "mean_wait": mean_response - 1.0 / mu,
        "p_wait": (lam_per_server / mu) ** d,
        "mean_queue_len_seen_on_join": seen,
        "L_per_server": float(tails.sum()),
        "utilisation": lam_per_server / mu,
    }
    for q in (50, 95, 99):
        out[f"response_p{q}"] = power_of_d_limit_response_quantile(lam_per_server, d, q / 100, mu)
    return out


def power_of_d_limit_response_quantile(
    lam_per_server: float, d: int, p: float, mu: float = 1.0
) -> float:
    """Response-time quantile of the power-of-d model in the limit ``N -> inf``.

    ``P(T > t) = sum_i (s_i^d - s_{i+1}^d) P(Erlang(i + 1, mu) > t)``.

    Parameters
    ----------
    lam_per_server : float
        Arrival rate per server, ``< mu``.
    d : int
        Number of choices, ``d >= 1``.
    p : float
        Probability in ``(0, 1)``.
    mu : float, optional
        Service rate of each server.

    Returns
    -------
    float
        The ``p`` quantile of the response time.
    """
    _check_probability(p)
    probs = _power_of_d_join_probs(lam_per_server, d, mu)
    shapes = np.arange(1, probs.size + 1, dtype=np.float64)

    def sf(t: float) -> float:
        return float(np.dot(probs, stats.gamma.sf(t, shapes, scale=1.0 / mu)))

    return _invert_sf(sf, p, power_of_d_limit(lam_per_server, d, mu))


# --------------------------------------------------------------------------------------------
# caches
# --------------------------------------------------------------------------------------------


def zipf_probs(n: int, s: float) -> FloatArray:
    """Zipf popularity law ``p_i = i^-s / sum_j j^-s``, ``i = 1..n``.

    Parameters
    ----------
    n : int
        Number of objects.
    s : float
        Exponent ``>= 0`` (0 is uniform).

    Returns
    -------
    numpy.ndarray
        ``p_1 >= p_2 >= ... >= p_n``, summing to 1.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    weights = np.arange(1, int(n) + 1, dtype=np.float64) ** (-float(s))
    probs: FloatArray = weights / weights.sum()
    return probs


def _solve_increasing(func: Callable[[float], float], target: float, start: float) -> float:
    """Root of ``func(t) = target`` for increasing ``func`` with ``func(start) <= target``."""
    lo, hi = start, 2.0 * start
    while func(hi) < target:
        lo, hi = hi, 2.0 * hi
        if hi > 1e300:
            raise ValueError("could not bracket the characteristic time")
    root = optimize.brentq(
        lambda t: func(t) - target, lo, hi, xtol=1e-12 * lo, rtol=4 * np.finfo(float).eps
    )
    return float(root)


def _cache_size(size: float, p: FloatArray) -> tuple[float, int]:
    if not (math.isfinite(size) and size >= 0):
        raise ValueError(f"cache size must be finite and non-negative, got {size!r}")
    return float(size), int(np.count_nonzero(p))


def che_characteristic_time(p: npt.ArrayLike, C: float) -> float:  # noqa: N803
    """Che's characteristic time of an LRU cache under the independent reference model.

    Root ``t_C`` of ``sum_i (1 - exp(-p_i t_C)) = C``, in units of requests.

    Parameters
    ----------
    p : array_like
        Object popularities (normalised internally).
    C : float
        Cache size in objects, ``0 < C < number of objects with p_i > 0``.

    Returns
    -------
    float
        ``t_C`` (``inf`` if the cache holds every requested object, 0 if ``C = 0``).
    """
    probs = _as_popularity(p)
    size, m = _cache_size(C, probs)
    if size == 0:
        return 0.0
    if size >= m:
        return math.inf
    # sum (1 - e^{-p t}) <= t, so the root is at least C
    return _solve_increasing(lambda t: float(-np.expm1(-probs * t).sum()), size, size)


def che_lru_hit_ratio(p: npt.ArrayLike, C: float) -> float:  # noqa: N803
    """LRU hit ratio under the independent reference model by Che's approximation.

    ``h = sum_i p_i (1 - exp(-p_i t_C))`` with ``t_C`` from :func:`che_characteristic_time`.

    Parameters
    ----------
    p : array_like
        Object popularities (normalised internally).
    C : float
        Cache size in objects.

    Returns
    -------
    float
        Aggregate hit ratio (1 if the cache holds every object).
    """
    probs = _as_popularity(p)
    t_c = che_characteristic_time(probs, C)
    if math.isinf(t_c):
        return 1.0
    return float(np.dot(probs, -np.expm1(-probs * t_c)))


def fifo_characteristic_time(p: npt.ArrayLike, C: float) -> float:  # noqa: N803
    """Characteristic time of a FIFO/RANDOM cache: root ``T`` of ``sum p_i T/(1 + p_i T) = C``.

    Parameters
    ----------
    p : array_like
        Object popularities (normalised internally).
    C : float
        Cache size in objects.

    Returns
    -------
    float
        ``T`` in units of requests (``inf`` if the cache holds every requested object).
    """
    probs = _as_popularity(p)
    size, m = _cache_size(C, probs)
    if size == 0:
        return 0.0
    if size >= m:
        return math.inf
    return _solve_increasing(lambda t: float(np.sum(probs * t / (1.0 + probs * t))), size, size)


def fifo_random_hit_ratio_approx(p: npt.ArrayLike, C: float) -> float:  # noqa: N803
    """FIFO/RANDOM hit ratio by the characteristic-time approximation.

    ``h = sum_i p_i * p_i T / (1 + p_i T)`` with ``T`` from :func:`fifo_characteristic_time`.

    Parameters
    ----------
    p : array_like
        Object popularities (normalised internally).
    C : float
        Cache size in objects.

    Returns
    -------
    float
        Approximate aggregate hit ratio.
    """
    probs = _as_popularity(p)
    t = fifo_characteristic_time(probs, C)
    if math.isinf(t):
        return 1.0
    return float(np.dot(probs, probs * t / (1.0 + probs * t)))


def _bernoulli_convolve(pmf: FloatArray, q: float, q_bar: float) -> FloatArray:
    """Add one Bernoulli(``q``) to a (truncated) pmf; ``q_bar = 1 - q``."""
    out = pmf * q_bar
    out[1:] += pmf[:-1] * q
    return out


def fifo_random_occupancy_exact(p: npt.ArrayLike, C: int) -> FloatArray:  # noqa: N803
    """Exact probability that each object is cached by a RANDOM (or FIFO) cache under IRM.

    RANDOM replacement has the product-form stationary law ``pi(S) ~ prod_{j in S} p_j`` over
    sets ``S`` of ``C`` objects (Gelenbe 1973), so
    ``P(i cached) = p_i e_{C-1}(p without i) / e_C(p)``, ``e_k`` the elementary symmetric
    polynomials; FIFO has the same hit ratio.

    The ``e_k`` are not formed directly (they under/overflow). With ``x_j = T p_j``, ``T`` the
    FIFO characteristic time, ``pi(S)`` is the law of independent Bernoulli(``x_j/(1+x_j)``)
    indicators conditioned on their sum being ``C``; the Poisson-binomial probabilities of the
    sums over the objects before and after ``i`` (truncated at ``C``) are convolutions of
    probability vectors with non-negative terms only, so no cancellation occurs. Suffix vectors
    are checkpointed every ``sqrt(n)`` objects: ``O(n C)`` time, ``O(sqrt(n) C)`` memory.

    Parameters
    ----------
    p : array_like
        Object popularities (normalised internally).
    C : int
        Cache size in objects.

    Returns
    -------
    numpy.ndarray
        ``P(i cached)`` for every object; the entries sum to ``min(C, #{p_i > 0})``.
    """
    probs = _as_popularity(p)
    if int(C) != C or C < 0:
        raise ValueError(f"C must be a non-negative integer, got {C!r}")
    size = int(C)
    positive = probs > 0
    m = int(np.count_nonzero(positive))
    occupancy = np.zeros_like(probs)
    if size == 0:
        return occupancy
    if size >= m:
        occupancy[positive] = 1.0
        return occupancy

    x = probs[positive] * fifo_characteristic_time(probs, size)
    q = x / (1.0 + x)
    q_bar = 1.0 / (1.0 + x)
    unit = np.zeros(size + 1)
    unit[0] = 1.0

    block = max(1, math.isqrt(m))
    n_blocks = -(-m // block)
    # checkpoints[b] = pmf of the sum over objects b*block .. m-1 (checkpoints[n_blocks]: empty)
    checkpoints = np.empty((n_blocks + 1, size + 1))
    checkpoints[n_blocks] = unit
    suffix = unit
    for i in range(m - 1, -1, -1):
        suffix = _bernoulli_convolve(suffix, q[i], q_bar[i])
        if i % block == 0:
            checkpoints[i // block] = suffix

    without = np.empty(m)  # P(sum over all objects but i = C - 1)
    prefix = unit
    suffixes = np.empty((block, size + 1))
    for b in range(n_blocks):
        lo, hi = b * block, min((b + 1) * block, m)
        suffix = checkpoints[b + 1]
        for i in range(hi - 1, lo - 1, -1):
            suffixes[i - lo] = suffix  # sum over objects i+1 .. m-1
            suffix = _bernoulli_convolve(suffix, q[i], q_bar[i])
        for i in range(lo, hi):
            without[i] = float(np.dot(prefix[:size], suffixes[i - lo][size - 1 :: -1]))
            prefix = _bernoulli_convolve(prefix, q[i], q_bar[i])
    p_full = prefix[size]  # P(sum over all objects = C)
    occupancy[positive] = q * without / p_full
    return occupancy


def fifo_random_hit_ratio_exact(p: npt.ArrayLike, C: int) -> float:  # noqa: N803
    """Exact FIFO/RANDOM hit ratio under IRM (Gelenbe's product form).

    Parameters
    ----------
    p : array_like
        Object popularities (normalised internally).
    C : int
        Cache size in objects.

    Returns
    -------
    float
        ``sum_i p_i P(i cached)`` with ``P(i cached)`` from :func:`fifo_random_occupancy_exact`.
    """
    probs = _as_popularity(p)
    return float(np.dot(probs, fifo_random_occupancy_exact(probs, C)))


def lfu_static_hit_ratio(p: npt.ArrayLike, C: int) -> float:  # noqa: N803
    """Hit ratio of perfect LFU (equivalently a static cache of the ``C`` most popular objects).

    Parameters
    ----------
    p : array_like
        Object popularities (normalised internally).
    C : int
        Cache size in objects.

    Returns
    -------
    float
        Sum of the ``C`` largest popularities.
    """
    probs = _as_popularity(p)
    if int(C) != C or C < 0:
        raise ValueError(f"C must be a non-negative integer, got {C!r}")
    if C == 0:
        return 0.0
    return float(np.sort(probs)[::-1][: int(C)].sum())


def ttl_nonreset_hit_ratio(lam_i: npt.ArrayLike, T: float) -> FloatArray:  # noqa: N803
    """Per-object hit ratio of a non-resetting TTL cache (expiry ``T`` after insertion).

    Poisson requests at rate ``lam_i``; a miss inserts the object for ``T``, and hits do not
    extend it: ``h = lam T / (1 + lam T)``. By PASTA this is also the fraction of time the
    object is cached.

    Parameters
    ----------
    lam_i : array_like
        Request rate(s) of the object(s).
    T : float
        Time to live.

    Returns
    -------
    numpy.ndarray
        Hit ratio(s), same shape as ``lam_i`` (0-d for a scalar).
    """
    rate = np.asarray(lam_i, dtype=np.float64)
    return np.asarray(rate * T / (1.0 + rate * T), dtype=np.float64)



def ttl_nonreset_fetch_hit_ratio(lam_i: npt.ArrayLike, T: float, d: float) -> FloatArray:  # noqa: N803
    """Per-object hit ratio of a non-resetting TTL cache whose fills take ``d`` seconds.

    Poisson requests at rate ``lam_i``; a miss starts one fetch (requests arriving while it is
    in flight wait for it and are misses too: request coalescing); the object is inserted when
    the fetch returns, for ``T``. A renewal cycle is the fetch, the TTL and the wait for the
    next request: mean ``d + T + 1/lam``, with ``lam T`` hits among ``1 + lam d + lam T``
    requests (renewal-reward), so ``h = lam T / (1 + lam (d + T))``. ``d = 0`` is
    :func:`ttl_nonreset_hit_ratio`.
    """
    lam = np.asarray(lam_i, dtype=float)
    return lam * T / (1.0 + lam * (d + T))


def ttl_reset_hit_ratio(lam_i: npt.ArrayLike, T: float) -> FloatArray:  # noqa: N803
    """Per-object hit ratio of a TTL cache whose expiry is reset on every request.

    ``h = 1 - exp(-lam T)`` (the previous request was less than ``T`` ago); this is also the
    fraction of time the object is cached.

    Parameters
    ----------
    lam_i : array_like
        Request rate(s) of the object(s).
    T : float
        Time to live.

    Returns
    -------
    numpy.ndarray
        Hit ratio(s), same shape as ``lam_i`` (0-d for a scalar).
    """
    rate = np.asarray(lam_i, dtype=np.float64)
    return np.asarray(-np.expm1(-rate * T), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# retries and consistent hashing
# --------------------------------------------------------------------------------------------


def retry_multiplier(p: float, r: int) -> float:
    """Mean number of attempts per request with up to ``r`` retries and failure probability p.

    Parameters
    ----------
    p : float
        Probability that an attempt fails, ``0 <= p <= 1``.
    r : int
        Maximum number of retries, ``r >= 0``.

    Returns
    -------
    float
        ``(1 - p^(r + 1)) / (1 - p)`` (``r + 1`` when ``p = 1``), summed as
        ``1 + p + ... + p^r`` so that ``p`` near 1 is exact.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p!r}")
    if int(r) != r or r < 0:
        raise ValueError(f"r must be a non-negative integer, got {r!r}")
    return float(sum(p**k for k in range(int(r) + 1)))


def consistent_hash_cv(nodes: int, vnodes: int, keys: int | None = None) -> float:
    """RMS coefficient of variation of per-node load on a random consistent-hash ring.

    Each node's share of the ring is Beta(V, (N - 1) V), giving ``E[CV^2] = (N - 1)/(N V + 1)``
    (population standard deviation, ddof = 0); sampling ``keys`` keys adds ``(N - 1)/keys``.

    Parameters
    ----------
    nodes : int
        Number of nodes ``N``.
    vnodes : int
        Virtual nodes (tokens) per node ``V``.
    keys : int, optional
        Number of keys placed; omitted means the ring shares themselves.

    Returns
    -------
    float
        ``sqrt((N - 1)/(N V + 1) + (N - 1)/keys)``.
    """
    if nodes < 1 or vnodes < 1:
        raise ValueError("nodes and vnodes must be positive")
    cv2 = (nodes - 1) / (nodes * vnodes + 1)
    if keys is not None:
        cv2 += (nodes - 1) / keys
    return math.sqrt(cv2)


# --------------------------------------------------------------------------------------------
# priorities, processor sharing, abandonment
# --------------------------------------------------------------------------------------------


def mg1_priority(lams: Sequence[float], mean_s: Sequence[float], second_s: Sequence[float],
                 preemptive: bool) -> list[float]:
    """Mean response time of each class of an M/G/1 queue with strict priorities.

    Class 0 is the most important. ``sigma_k = rho_0 + ... + rho_k`` and
    ``R_k = sum_{i <= k} lam_i E[S_i^2] / 2``.

    Non-preemptive (head of line; Cobham 1954): ``T_k = E[S_k] + R_K / ((1 - sigma_{k-1})
    (1 - sigma_k))`` with ``R_K`` over every class. Preemptive resume (Kleinrock 1976, vol. 2,
    section 3.7): ``T_k = E[S_k] / (1 - sigma_{k-1}) + R_k / ((1 - sigma_{k-1})(1 -
    sigma_k))``: a class sees only the classes above it and itself.

    Parameters
    ----------
    lams, mean_s, second_s : sequences of float
        Per class, the Poisson arrival rate, E[S] and E[S^2].
    preemptive : bool
        Preemptive resume rather than non-preemptive.
    """
    if not (len(lams) == len(mean_s) == len(second_s)) or not lams:
        raise ValueError("one rate, mean and second moment per class")
    for lam, m, m2 in zip(lams, mean_s, second_s, strict=True):
        _check_positive(lam=lam, mean=m, second=m2)
        if m2 < m * m:
            raise ValueError("E[S^2] must be at least E[S]^2")
    rhos = [lam * m for lam, m in zip(lams, mean_s, strict=True)]
    _check_stable(sum(rhos))
    out = []
    for k in range(len(lams)):
        above = sum(rhos[:k])
        upto = above + rhos[k]
        r = sum(lams[i] * second_s[i] / 2.0 for i in range(len(lams) if not preemptive
                                                             else k + 1))
        wait = r / ((1.0 - above) * (1.0 - upto))
        out.append((mean_s[k] / (1.0 - above) if preemptive else mean_s[k]) + wait)
    return out


def mg1_processor_sharing(rho: float, x: float) -> float:
    """Mean response time of a request of size ``x`` in an M/G/1 processor-sharing queue.

    ``E[T | x] = x / (1 - rho)`` whatever the size distribution (Kleinrock 1967; Harchol-Balter
    2013, chapter 22): the slowdown is the same for every size.
    """
    _check_positive(x=x)
    _check_stable(rho)
    return x / (1.0 - rho)


def mm1_abandonment(lam: float, mu: float, theta: float, tol: float = 1e-15
                    ) -> dict[str, float]:
    """M/M/1+M (Palm's queue with impatience, Erlang-A with one server).

    Requests wait for the server for at most an Exp(``theta``) patience and leave when it runs
    out. The number in system is a birth-death process with birth rate ``lam`` and death rate
    ``mu + (n - 1) theta`` in state ``n >= 1``, so ``pi_n = pi_0 prod_{k=1}^{n} lam / (mu +
    (k - 1) theta)``; stable for every load when ``theta > 0``.

    Returns
    -------
    dict of str to float
        ``p_abandon`` = 1 - mu (1 - pi_0) / lam (the share of arrivals that renege),
        ``L`` (time-average number in system), ``Lq`` (waiting), ``utilisation`` =
        1 - pi_0.
    """
    _check_positive(lam=lam, mu=mu, theta=theta)
    terms = [1.0]
    total = 1.0
    n = 0
    while True:
        n += 1
        nxt = terms[-1] * lam / (mu + (n - 1) * theta)
        terms.append(nxt)
        total += nxt
        # past the mode the ratio of successive terms r = lam / (mu + n theta) only falls, so
        # the tail is at most nxt r / (1 - r): stop when that bound is negligible
        ratio = lam / (mu + n * theta)
        if ratio < 1.0 and nxt * ratio / (1.0 - ratio) < tol * total:
            break
    p = np.array(terms) / sum(terms)
    ns = np.arange(len(p))
    busy = 1.0 - float(p[0])
    return {
        "p_abandon": 1.0 - mu * busy / lam,
        "L": float((ns * p).sum()),
        "Lq": float((np.maximum(ns - 1, 0) * p).sum()),
        "utilisation": busy,
    }
