"""Simulation (tests and benchmarks): BG/NBD purchases and Gamma-Gamma spends from known
parameters (durations in time units, spend in currency units)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_bgnbd(
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T,
    seed: int = 0,
    holdout: float = 0.0,
) -> pd.DataFrame:
    """Simulate n customers from a BG/NBD process observed for T time units after their first
    purchase (scalar or per-customer array). Returns customer_id, frequency, recency, T, and
    holdout_purchases (repeat purchases in (T, T + holdout]; 0 when holdout is 0)."""
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    end = T + holdout
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    t = np.zeros(n)
    recency = np.zeros(n)
    freq = np.zeros(n, dtype=np.int64)
    later = np.zeros(n, dtype=np.int64)
    # everyone is alive after the first purchase; after each REPEAT purchase a customer drops
    # out with probability p (the likelihood's (1-p)^x term)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        t[idx] += rng.exponential(1.0 / lam[idx])
        bought = t[idx] <= end[idx]
        buyers = idx[bought]
        in_cal = t[buyers] <= T[buyers]
        cal_buyers = buyers[in_cal]
        freq[cal_buyers] += 1
        recency[cal_buyers] = t[cal_buyers]
        later[buyers[~in_cal]] += 1
        active[idx[~bought]] = False
        active[buyers] = rng.random(len(buyers)) >= p[buyers]
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "frequency": freq,
            "recency": recency,
            "T": T,
            "holdout_purchases": later,
        }
    )


def simulate_gamma_gamma(frequency, p: float, q: float, v: float, seed: int = 0) -> np.ndarray:
    """Mean spend of each customer's repeat purchases under Gamma-Gamma(p, q, v); 0 for x = 0.
    nu ~ Gamma(q, rate v); the sum of x spends ~ Gamma(p x, rate nu)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(q, 1.0 / v, len(x))
    shape = np.where(x > 0, p * x, 1.0)
    total = rng.gamma(shape, 1.0 / nu)
    return np.where(x > 0, total / np.where(x > 0, x, 1.0), 0.0)
