"""Media transforms, per day: geometric adstock, Hill saturation, the steady-spend response
curve and its slope (marginal ROI), and the baseline design (trend, day of week, yearly terms).

At a steady daily spend x the adstock settles at x / (1 - theta), so the response curve the
budget simulator reads is revenue/day = beta * h(x / (1 - theta)) (currency units per day).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import lfilter


def geometric_adstock(spend: np.ndarray, decay: float) -> np.ndarray:
    """a_t = spend_t + decay * a_{t-1}, a_{-1} = 0 (same units as spend, per day)."""
    return lfilter([1.0], [1.0, -decay], np.asarray(spend, dtype=float))


def hill(adstock: np.ndarray, half_saturation: float, slope: float) -> np.ndarray:
    """a^s / (a^s + K^s): 0 at no spend, 1/2 at a = K, tends to 1 (dimensionless)."""
    a = np.maximum(np.asarray(adstock, dtype=float), 0.0)
    u = np.power(a / half_saturation, slope)
    return u / (1.0 + u)


def response(
    daily_spend: np.ndarray | float,
    beta: float,
    decay: float,
    half_saturation: float,
    slope: float,
    calibration_factor: float = 1.0,
) -> np.ndarray:
    """Incremental revenue per day at a steady daily spend (the mart_response_curves formula)."""
    return (
        calibration_factor
        * beta
        * hill(np.asarray(daily_spend) / (1 - decay), half_saturation, slope)
    )


def marginal_response(
    daily_spend: np.ndarray | float, beta: float, decay: float, half_saturation: float, slope: float
) -> np.ndarray:
    """d(revenue/day) / d(spend/day) at a steady daily spend: the marginal ROI."""
    a = np.maximum(np.asarray(daily_spend, dtype=float) / (1 - decay), 1e-12)
    u = np.power(a / half_saturation, slope)
    return beta * slope * u / (a * (1 + u) ** 2) / (1 - decay)


def baseline_design(
    dates: pd.DatetimeIndex, trend_degree: int = 2, yearly_order: int = 3
) -> pd.DataFrame:
    """Baseline regressors per day: intercept, trend^1..degree (time scaled to [0, 1]),
    day-of-week dummies (Monday is the reference) and yearly Fourier pairs."""
    n = len(dates)
    t = np.arange(n) / max(n - 1, 1)
    cols: dict[str, np.ndarray] = {"intercept": np.ones(n)}
    for d in range(1, trend_degree + 1):
        cols[f"trend_{d}"] = t**d
    dow = dates.day_of_week.to_numpy()
    for d in range(1, 7):
        cols[f"dow_{d}"] = (dow == d).astype(float)
    day_of_year = dates.day_of_year.to_numpy() / 365.25
    for k in range(1, yearly_order + 1):
        cols[f"year_sin_{k}"] = np.sin(2 * np.pi * k * day_of_year)
        cols[f"year_cos_{k}"] = np.cos(2 * np.pi * k * day_of_year)
    return pd.DataFrame(cols, index=dates)
