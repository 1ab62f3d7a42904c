"""The KPI forecast of the kpi_alerts stage: one series (daily or weekly revenue, orders, new
customers) in, its expected values, prediction band and out-of-band points out.

Model: a robust harmonic regression fitted with statsmodels RLM (Huber) on the square root of
the series (square root steadies the variance of counts and sums of orders): intercept, a
piecewise-linear trend (a hinge every `knot_days`), weekly Fourier terms (daily grain) and
yearly Fourier terms (when the history spans 400+ days). This is the Fourier-terms regression
of a SARIMAX/Prophet-style forecast without ARMA errors, and it is fitted robustly so that the
anomalies it hunts barely move the fit (a maximum-likelihood state-space fit would absorb a
4-day drop into its level). The band is expected +/- z robust standard deviations (MAD of the
residuals) on the square-root scale; beyond the data end the trend is held flat.
A 730-day series fits in a few milliseconds.

Why the band is wide (z = 4.5): every build checks about 10,000 points (daily and weekly
revenue, orders and new customers, for all channels and each busy sales channel, over two
years). A 3-sd band would flag about 27 of them by chance in every build; at 4.5 sd a false
alert is a rare event. A single day outside the band is an alert (reason 'outside band'). Moves
that stay inside it are caught by the sum of `sustained_days` days (reason 'sustained move'),
and revenue days by an orders alert on the same days (reason 'moved with orders', see
`alerts.revenue_with_orders`): those alerts lie inside the band, and the chart says why each
point is red.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

FORECAST_COLUMNS = {
    "date": object,
    "actual": float,
    "expected": float,
    "lower": float,
    "upper": float,
    "score": float,
    "is_alert": bool,
    "is_forecast": bool,
    "reason": object,
}


@dataclass(frozen=True)
class ForecastSettings:
    """Settings of the KPI forecast and its alert band."""

    z: float = 4.5  # band half-width, robust standard deviations of the square-root residual
    knot_days: int = 56  # spacing of the trend's hinges (days)
    weekly_harmonics: int = 3  # Fourier pairs for the day-of-week pattern (daily grain)
    yearly_harmonics: int = 3  # Fourier pairs for the seasons (needs 400+ days of history)
    horizon_days: int = 28  # forecast beyond the data end (days)
    burn_in_days: int = 28  # no alerts in the first days of history (the fit is weakest there)
    sustained_days: tuple[int, ...] = (3,)  # also flag runs of k days that move together
    # (a build setting may give one number: `kpi_alerts.sustained_days=4` means (4,))
    run_z: float = 4.5  # threshold for a run's total, in sd of that total


def _design(t: np.ndarray, t_last: float, grain: str, s: ForecastSettings, span: float):
    """Regressors for days-since-start `t`; the trend part is held flat after `t_last`."""
    tt = np.minimum(t, t_last) / 365.25
    cols = [np.ones_like(t), tt]
    knot_days = s.knot_days if grain == "day" else max(s.knot_days, 91)
    for k in np.arange(knot_days, t_last - knot_days / 2, knot_days):
        cols.append(np.maximum(0.0, tt - k / 365.25))
    if grain == "day":
        for j in range(1, s.weekly_harmonics + 1):
            cols += [np.sin(2 * np.pi * j * t / 7), np.cos(2 * np.pi * j * t / 7)]
    if span >= 400:
        for j in range(1, s.yearly_harmonics + (0 if grain == "day" else -1) + 1):
            cols += [np.sin(2 * np.pi * j * t / 365.25), np.cos(2 * np.pi * j * t / 365.25)]
    return np.column_stack(cols)


def fit_forecast(
    dates: pd.Series | pd.DatetimeIndex | list,
    values: np.ndarray | pd.Series | list,
    grain: str = "day",
    settings: ForecastSettings | None = None,
    unit_size: float = 1.0,
) -> pd.DataFrame:
    """Fit the KPI forecast to one series and flag points outside its prediction band.

    `dates` are days (grain 'day') or week starts (grain 'week'), evenly spaced, no gaps;
    `values` are non-negative (counts or currency). `unit_size` is the size of one event of the
    series (1 for counts, the average order value for revenue).

    Noise model: quasi-Poisson. In units of unit_size * dispersion the series is Poisson around
    the expected value; dispersion (>= 1) is estimated from the robust spread of the residuals
    on the square-root scale (Poisson noise there has sd 0.5 * sqrt(unit_size)). Exact Poisson
    tails keep thin series (a few orders a day, zero days) from alerting on every blip.
    Band = the central Poisson interval whose tails each hold the normal tail beyond z.
    A point is an alert when it is outside the band (its score is beyond z), or when it is part
    of a run of `sustained_days` days whose total (each day capped at its band) is beyond
    `run_z`; never in the first `burn_in_days`.

    Returns one row per date plus the forecast horizon: date, actual (NaN in the horizon),
    expected, lower, upper, score (signed normal score of the point's tail probability),
    is_alert, is_forecast, reason (why the point is an alert: 'outside band' or 'sustained
    move'; None when it is not one). An empty series gives an empty frame with these columns.
    """
    s = settings or ForecastSettings()
    if len(values) == 0:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in FORECAST_COLUMNS.items()})
    step = 1 if grain == "day" else 7
    horizon = s.horizon_days // step
    t_all, t_last, dates_all = _forecast_axis(dates, step, horizon)
    y = np.asarray(values, dtype=float)
    X = _design(t_all, t_last, grain, s, span=t_last)
    n = len(y)
    y = np.clip(y, 0, None)
    unit = max(unit_size, 1e-9)
    expected, dispersion = _fit_expected(y, X, unit)
    # quasi-Poisson: in units of unit * dispersion the series is Poisson-like
    scale = unit * dispersion
    k, mu = y / scale, expected[:n] / scale
    p = float(_norm_sf(s.z))
    lower, upper = _poisson_band(expected / scale, p)
    score = np.full(len(t_all), np.nan)
    score[:n] = _tail_score(k, mu)
    # outside the band <=> beyond z, up to the band's whole-unit steps: count both, so the band
    # drawn is exactly the one-day rule (a day outside it is an alert)
    outside = np.zeros(len(t_all), dtype=bool)
    outside[:n] = (k < lower[:n]) | (k > upper[:n])
    alert = (np.abs(score) > s.z) | outside
    if grain == "day" and np.isfinite(dispersion):
        _flag_sustained_moves(alert, score, k, mu, lower[:n], upper[:n], s)
    burn = t_all < s.burn_in_days
    is_alert = alert & ~burn & np.isfinite(score)
    beyond = outside | (np.abs(np.nan_to_num(score)) > s.z)
    reason = np.where(is_alert, np.where(beyond, "outside band", "sustained move"), None)
    return pd.DataFrame(
        {
            "date": dates_all.dt.date,
            "actual": np.concatenate([y, np.full(horizon, np.nan)]),
            "expected": expected,
            "lower": lower * scale,
            "upper": upper * scale,
            "score": score,
            "is_alert": is_alert,
            "is_forecast": np.arange(len(t_all)) >= n,
            "reason": pd.Series(reason, dtype=object),
        }
    )


def _forecast_axis(
    dates: pd.Series | pd.DatetimeIndex | list, step: int, horizon: int
) -> tuple[np.ndarray, float, pd.Series]:
    """(days since the first date for the history and `horizon` steps of `step` days beyond it,
    days since the first date of the last one in the history, the dates of both)."""
    d = pd.to_datetime(pd.Series(dates)).reset_index(drop=True)
    t = ((d - d.iloc[0]).dt.days).to_numpy(dtype=float)
    t_last = float(t[-1]) if len(t) else 0.0
    t_all = np.concatenate([t, t_last + step * np.arange(1, horizon + 1)])
    dates_all = pd.concat(
        [d, pd.Series(d.iloc[-1] + pd.to_timedelta(step * np.arange(1, horizon + 1), "D"))],
        ignore_index=True,
    )
    return t_all, t_last, dates_all


def _fit_expected(y: np.ndarray, X: np.ndarray, unit: float) -> tuple[np.ndarray, float]:
    """(expected value for every row of the design `X`, quasi-Poisson dispersion >= 1) fitted to
    the history `y` (the first len(y) rows); all NaN when the history is too short to fit."""
    # statsmodels is slow to import: only where a model is fitted, and only the parts we use
    from statsmodels.robust.norms import HuberT
    from statsmodels.robust.robust_linear_model import RLM

    n = len(y)
    expected = np.full(len(X), np.nan)
    dispersion = np.nan
    if n >= 3 * X.shape[1]:  # else too short to fit: no band, no alerts
        # mean structure on the log scale (trend x weekly x yearly multiply), robustly
        offset = 0.5 * unit  # keeps zero days finite
        # one BLAS thread: these matrices are tiny, and threads fight over a busy machine
        with threadpool_limits(limits=1):
            fit = RLM(np.log(y + offset), X[:n], M=HuberT()).fit()
        centre = np.sqrt(np.clip(np.exp(X @ fit.params) - offset, 0, None))
        # residuals on the square-root scale, where Poisson noise has sd 0.5 * sqrt(unit)
        resid = np.sqrt(y) - centre[:n]
        shift = float(np.median(resid))  # the log fit's bias (a median, not a mean)
        centre = np.clip(centre + shift, 0, None)
        sigma = 1.4826 * float(np.median(np.abs(resid - shift)))
        expected = centre**2
        dispersion = max(1.0, (sigma / (0.5 * math.sqrt(unit))) ** 2)
    return expected, dispersion


def _flag_sustained_moves(
    alert: np.ndarray,
    score: np.ndarray,
    k: np.ndarray,
    mu: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    s: ForecastSettings,
) -> None:
    """Also flag (in `alert`, in place) the days of runs of `s.sustained_days` days whose total
    is beyond `s.run_z`; `k`, `mu`, `lower`, `upper` are the history's values, expected values
    and band in quasi-Poisson units, `score` every point's score."""
    # sustained moves: k consecutive days whose total is beyond the band of a k-day total
    # (a 4-day drop of 2.5 sd a day is 5 sd over the 4 days). Each day is capped at its own
    # band first, so one huge day cannot make a run on its own.
    n = len(k)
    capped = np.clip(k, lower, upper)
    for days in s.sustained_days:
        if n < days:
            continue
        ones = np.ones(days)
        run = _tail_score(np.convolve(capped, ones, "valid"), np.convolve(mu, ones, "valid"))
        for i in np.flatnonzero(np.abs(run) > s.run_z):
            window = slice(i, i + days)
            # mark the days that clearly move the run's way (a drop never flags a spike day)
            day = score[window]
            alert[window] |= (np.sign(day) == np.sign(run[i])) & (np.abs(day) > 1)


def _norm_sf(z: float) -> float:
    from scipy.stats import norm

    return norm.sf(z)


def _poisson_band(mu: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Central Poisson interval [ppf(p), isf(p)] for means `mu` (NaN where mu is NaN)."""
    from scipy.stats import poisson

    m = np.where(np.isfinite(mu), np.maximum(mu, 0), 0)
    lo = poisson.ppf(p, m)
    hi = poisson.isf(p, m)
    bad = ~np.isfinite(mu)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def _tail_score(k: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Signed normal score of observing `k` when a Poisson mean of `mu` is expected: the
    z whose tail has the same probability as P(X >= k) (k above mu) or P(X <= k) (below).
    Continuous in k (regularised incomplete gamma), so sums and scaled values work too."""
    from scipy.special import gammainc, gammaincc
    from scipy.stats import norm

    k = np.asarray(k, dtype=float)
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-9)
    up = np.where(k > 0, gammainc(np.maximum(k, 1e-12), mu), 1.0)  # P(X >= k)
    down = gammaincc(k + 1.0, mu)  # P(X <= k)
    z_up = norm.isf(np.clip(up, 1e-300, 1.0))
    z_down = norm.isf(np.clip(down, 1e-300, 1.0))
    out = np.where(k >= mu, np.maximum(z_up, 0.0), -np.maximum(z_down, 0.0))
    return np.where(np.isfinite(mu) & np.isfinite(k), out, np.nan)
