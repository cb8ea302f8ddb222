"""Exact stationary analysis of state-dependent routing to heterogeneous exponential servers.

A Poisson stream (rate ``lam``) is routed on arrival to one of N single-server FCFS queues with
service rates ``mu_i``; the routing probabilities depend on the vector ``n`` of numbers in
system (what a lone balancer with zero network latency sees as "outstanding"). The process is
a continuous-time Markov chain on ``n``; truncated at a cap per queue (an arrival routed to a
full queue is lost) and solved for its stationary distribution, it gives the mean number in
system and, by Little's law, the mean response time. The truncation is checked: the stationary
mass of the states at the cap is returned, and callers assert it negligible.

Independent of the simulator: plain numpy/scipy, no shared code.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
#: Routing rule: states (S, N) -> probabilities (S, N) of sending the next arrival to each queue.
Rule = Callable[[IntArray, FloatArray], FloatArray]


def argmin_ties_uniform(values: FloatArray) -> FloatArray:
    """Probability matrix of the row-wise argmin, ties split evenly."""
    low = values.min(axis=1, keepdims=True)
    ties = (values == low).astype(np.float64)
    return ties / ties.sum(axis=1, keepdims=True)


def shortest_expected_delay(n: IntArray, mu: FloatArray) -> FloatArray:
    """SED: argmin (n_i + 1) / mu_i."""
    return argmin_ties_uniform((n + 1) / mu)


def weighted_least_connections(n: IntArray, mu: FloatArray) -> FloatArray:
    """WLC: argmin n_i / mu_i."""
    return argmin_ties_uniform(n / mu)


def power_of_two(replacement: bool) -> Rule:
    """Two candidates drawn uniformly (independently, or distinct); fewer in system wins, ties
    to the first drawn."""

    def rule(n: IntArray, mu: FloatArray) -> FloatArray:
        k = n.shape[1]
        pairs = [(a, b) for a in range(k) for b in range(k) if replacement or a != b]
        p = np.zeros(n.shape)
        rows = np.arange(n.shape[0])
        for a, b in pairs:
            winner = np.where(n[:, a] <= n[:, b], a, b)
            p[rows, winner] += 1.0 / len(pairs)
        return p

    return rule


@dataclass(frozen=True)
class Solution:
    """Stationary figures of the truncated chain."""

    mean_response_time: float
    #: Share of the accepted arrivals each queue receives.
    share: FloatArray
    #: Stationary probability of the states where some queue is at the cap.
    boundary_mass: float


def solve(lam: float, mu: Sequence[float], rule: Rule, caps: Sequence[int],
          max_iterations: int = 20_000) -> Solution:
    """Stationary solution of the routing chain truncated at ``caps[i]`` customers in queue i
    (give faster queues more room: the rules keep n_i roughly proportional to mu_i)."""
    rates = np.asarray(mu, dtype=np.float64)
    k = len(rates)
    cap = np.asarray(caps, dtype=np.int64)
    shape = tuple(int(c) + 1 for c in cap)
    n = np.indices(shape).reshape(k, -1).T.astype(np.int64)
    size = n.shape[0]
    strides = np.array([int(np.prod(shape[i + 1:])) for i in range(k)])
    n_at_cap = n == cap
    route = rule(n, rates)
    rows, cols, vals = [], [], []
    for i in range(k):
        up = ~n_at_cap[:, i]
        rows.append(np.flatnonzero(up))
        cols.append(np.flatnonzero(up) + strides[i])
        vals.append(lam * route[up, i])
        down = n[:, i] > 0
        rows.append(np.flatnonzero(down))
        cols.append(np.flatnonzero(down) - strides[i])
        vals.append(np.full(int(down.sum()), rates[i]))
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    q = sparse.csr_matrix((v, (r, c)), shape=(size, size))
    q = q - sparse.diags(np.asarray(q.sum(axis=1)).ravel())
    # pi Q = 0, sum(pi) = 1: power iteration of the uniformised chain P = I + Q / rate
    # (aperiodic: every state keeps a self-loop), until the balance equations hold to 1e-12
    pt = (sparse.identity(size, format="csr") + q / (1.01 * float(-q.diagonal().min()))).T.tocsr()
    pi = np.full(size, 1.0 / size)
    for _ in range(max_iterations):
        for _ in range(50):
            pi = pt @ pi
        if np.abs(q.T @ pi).sum() < 1e-12:
            break
    else:
        raise RuntimeError("routing chain did not converge")
    pi /= pi.sum()
    accepted = lam * np.array([(pi * route[:, i] * ~n_at_cap[:, i]).sum() for i in range(k)])
    mean_in_system = float((pi * n.sum(axis=1)).sum())
    return Solution(
        mean_response_time=mean_in_system / float(accepted.sum()),
        share=accepted / accepted.sum(),
        boundary_mass=float(pi[n_at_cap.any(axis=1)].sum()),
    )
