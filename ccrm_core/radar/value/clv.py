"""Predictions from fitted BG/NBD and Gamma-Gamma models, per customer: P(alive), expected
repeat purchases in the next t time units, expected spend per purchase and discounted lifetime
value (currency units; the formula is in the package docstring).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import hyp2f1

from ccrm_core.radar.value.fits import BGNBDFit, GammaGammaFit
from ccrm_core.radar.value.rfm import DAYS_PER_MONTH, _unit_days

# ---------------------------------------------------------------------------------------------
# BG/NBD: purchases and P(alive)


def _distinct_pairs(x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (x, T) pairs and each row's index into them (hash grouping, no sort)."""
    codes = pd.DataFrame({"x": x, "T": T}).groupby(["x", "T"], sort=False).ngroup().to_numpy()
    first = np.empty(codes.max() + 1 if len(codes) else 0, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    return x[first], T[first], codes


def _hyp2f1_term(fit: BGNBDFit, ux: np.ndarray, uT: np.ndarray, t: float) -> np.ndarray:
    """1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t)). It does not
    depend on t_x, so callers evaluate it once per distinct (x, T) pair."""
    r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
    z = t / (alpha + uT + t)
    log_pow = (r + ux) * (np.log(alpha + uT) - np.log(alpha + uT + t))
    return 1.0 - np.exp(log_pow) * hyp2f1(r + ux, b + ux, a + b + ux - 1, z)


def _away_from_one(fit: BGNBDFit) -> BGNBDFit:
    """The closed forms divide by (a - 1), a removable singularity: step just past a = 1."""
    if abs(fit.a - 1.0) >= 1e-6:
        return fit
    return BGNBDFit(fit.r, fit.alpha, fit.a + 1e-5, fit.b, fit.log_likelihood, fit.n_customers)


def _log_dropout_odds(fit: BGNBDFit, x, recency, T) -> np.ndarray:
    """log of [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x); -inf for x = 0."""
    x = np.asarray(x, dtype=float)
    xs = np.where(x > 0, x, 1.0)
    val = (
        np.log(fit.a)
        - np.log(fit.b + xs - 1)
        + (fit.r + x)
        * (np.log(fit.alpha + np.asarray(T)) - np.log(fit.alpha + np.asarray(recency)))
    )
    return np.where(x > 0, val, -np.inf)


def probability_alive(fit: BGNBDFit, frequency, recency, T) -> np.ndarray:
    """P(still active at T | x, t_x, T) per customer: 1 / (1 + [x>0] a/(b+x-1) ((a+T)/(a+t_x))^(r+x))."""
    return np.exp(-np.logaddexp(0.0, _log_dropout_odds(fit, frequency, recency, T)))


def expected_purchases(fit: BGNBDFit, t: float, frequency, recency, T) -> np.ndarray:
    """Expected repeat purchases per customer in the next `t` time units (after T):
    (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(...)] x P(alive)."""
    x = np.asarray(frequency, dtype=float)
    T_ = np.asarray(T, dtype=float)
    if t <= 0 or len(x) == 0:
        return np.zeros_like(x)
    fit = _away_from_one(fit)
    ux, uT, codes = _distinct_pairs(x, T_)
    per_pair = (fit.a + fit.b + ux - 1) / (fit.a - 1) * _hyp2f1_term(fit, ux, uT, t)
    return per_pair[codes] * probability_alive(fit, x, recency, T_)


def expected_purchases_new(fit: BGNBDFit, t: float) -> float:
    """Expected purchases in (0, t] of a customer just acquired (the population curve E[X(t)])."""
    r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
    z = t / (alpha + t)
    return float(
        (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))
    )


# ---------------------------------------------------------------------------------------------
# Gamma-Gamma spend and lifetime value


def expected_spend(fit: GammaGammaFit, frequency, monetary_value) -> np.ndarray:
    """Expected spend per future purchase (currency units) per customer:
    p (v + x m) / (p x + q - 1); customers without repeats get the population mean v p/(q-1)."""
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary_value, dtype=float)
    m = np.where(x > 0, m, 0.0)
    return fit.p * (fit.v + x * m) / (fit.p * x + fit.q - 1)


def customer_lifetime_value(
    bgnbd: BGNBDFit,
    gamma_gamma: GammaGammaFit,
    summary: pd.DataFrame,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
    time_unit: str = "W",
) -> np.ndarray:
    """Discounted lifetime value (currency units) per customer over `months` months:
    sum_k (E[Y(t_k)] - E[Y(t_{k-1})]) E[M] / (1+d)^k with t_k = k months in `time_unit`."""
    if months < 1:
        raise ValueError(f"months must be at least 1 (got {months})")
    if monthly_discount_rate < 0:
        raise ValueError(f"monthly_discount_rate must be >= 0 (got {monthly_discount_rate})")
    unit = _unit_days(time_unit)
    x = summary["frequency"].to_numpy(dtype=float)
    T = summary["T"].to_numpy(dtype=float)
    if len(x) == 0:
        return np.zeros(0)
    spend = expected_spend(gamma_gamma, x, summary["monetary_value"])
    # E[Y(t)] = lead(x) * term(x, T, t) * P(alive | x, t_x, T): the discounted sum over months
    # only involves (x, T), so it runs once per distinct pair, then scales by P(alive).
    fit = _away_from_one(bgnbd)
    ux, uT, codes = _distinct_pairs(x, T)
    lead = (fit.a + fit.b + ux - 1) / (fit.a - 1)
    discounted = np.zeros(len(ux))
    previous = np.zeros(len(ux))
    for k in range(1, months + 1):
        cumulative = lead * _hyp2f1_term(fit, ux, uT, k * DAYS_PER_MONTH / unit)
        discounted += (cumulative - previous) / (1 + monthly_discount_rate) ** k
        previous = cumulative
    alive = probability_alive(fit, x, summary["recency"].to_numpy(dtype=float), T)
    return discounted[codes] * alive * spend
