"""Media mix model: daily revenue on spend per channel (top-down, all media incl. tv and print).

Model (one row per day t, one term per media channel c):

    revenue_t = baseline_t + sum_c beta_c * h_c(a_c,t) + e_t
    a_c,t     = spend_c,t + theta_c * a_c,t-1            geometric adstock (theta in [0, 0.95])
    h(a)      = a^s / (a^s + K^s)                        Hill saturation (K in adstocked daily
                                                          spend, currency units; s = slope)
    baseline  = intercept + trend (polynomial in time) + day-of-week dummies
                + yearly Fourier terms (sin/cos, `yearly_order` pairs) + optional controls

beta_c is the most incremental revenue per day the channel can bring (at saturation).
At a steady daily spend x the adstock settles at x / (1 - theta), so the response curve the
budget simulator reads is revenue/day = beta * h(x / (1 - theta)).

Fitting: for given (theta, K, s) the model is linear; the baseline coefficients are free and the
media betas non-negative, solved exactly by projecting out the baseline (Frisch-Waugh) and
non-negative least squares. The nonlinear parameters are found by a coordinate search over a grid
per channel, then refined jointly with L-BFGS-B using the exact gradient of the profiled residual
sum of squares (variable projection). Uncertainty: moving-block bootstrap of days (blocks of
`block_days` consecutive days drawn with replacement, used as day weights in the loss while the
adstock runs over the full series), each replicate refitted from the point estimate; 90%
intervals are the 5th and 95th percentiles. ROI = incremental revenue / spend over the data; marginal ROI = the
slope of the response curve at the current daily spend (mean of the last 28 days).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy.optimize import minimize, nnls
from scipy.signal import lfilter
from threadpoolctl import threadpool_limits

from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext, replace_table

MAX_DECAY = 0.95
SLOPE_BOUNDS = (0.5, 3.0)
HALF_SATURATION_BOUNDS = (np.log(0.2), np.log(5.0))  # log m, K = m x steady adstock at mean spend
DECAY_GRID = (0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9)
HALF_SATURATION_GRID = (0.3, 0.6, 1.0, 1.7, 3.0)  # x steady-state adstock at mean spend
SLOPE_GRID = (0.8, 1.3, 2.0, 3.0)
CURRENT_SPEND_DAYS = 28

RESPONSE_CURVE_COLUMNS = [
    "channel",
    "addressable",
    "adstock_decay",
    "half_saturation",
    "hill_slope",
    "beta",
    "beta_low",
    "beta_high",
    "current_daily_spend",
    "last_adstock",
    "revenue_per_conversion",
    "roi",
    "roi_low",
    "roi_high",
    "marginal_roi",
    "calibration_factor",
]


# ---------------------------------------------------------------------------------------------
# Transforms


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


# ---------------------------------------------------------------------------------------------
# The profiled least-squares problem


class _Problem:
    """RSS of the model as a function of the nonlinear media parameters (scaled units).

    y is divided by its mean, spend per channel by its mean over days with spend, so one set of
    bounds and grids fits every dataset. Parameter vector: per channel (decay, log m, slope).
    """

    def __init__(self, y: np.ndarray, spend: np.ndarray, base: np.ndarray, ridge: float = 0.0):
        self.y_scale = float(np.mean(np.abs(y))) or 1.0
        pos = np.where(spend > 0, spend, np.nan)
        self.x_scale = np.nan_to_num(np.nanmean(pos, axis=0), nan=1.0)
        self.x_scale[self.x_scale <= 0] = 1.0
        self.x = spend / self.x_scale
        self.base = base
        self.sw = np.ones(len(y))  # sqrt of day weights (a block bootstrap reweights days)
        self.q, _ = np.linalg.qr(base)
        self.n_days, self.n_channels = self.x.shape
        self.ridge = ridge
        self.mean_x = np.array(
            [
                max(self.x[:, c][self.x[:, c] > 0].mean(), 1e-9)
                if (self.x[:, c] > 0).any()
                else 1.0
                for c in range(self.n_channels)
            ]
        )
        self.set_target(y)

    def set_target(self, y: np.ndarray) -> None:
        self.y = y / self.y_scale
        self.my = self._project(self.sw * self.y)

    def set_weights(self, weights: np.ndarray) -> None:
        """Weight days in the loss (how many times a block bootstrap drew each day). Adstock
        still runs over the full, ordered series, so carryover stays intact."""
        self.sw = np.sqrt(np.asarray(weights, dtype=float))
        self.q, _ = np.linalg.qr(self.sw[:, None] * self.base)
        self.my = self._project(self.sw * self.y)

    def _project(self, v: np.ndarray) -> np.ndarray:
        return v - self.q @ (self.q.T @ v)

    def bounds(self) -> list[tuple[float, float]]:
        out = []
        for _ in range(self.n_channels):
            out += [(0.0, MAX_DECAY), HALF_SATURATION_BOUNDS, SLOPE_BOUNDS]
        return out

    def half_saturation(self, params: np.ndarray) -> np.ndarray:
        """K per channel in scaled adstock units: m x mean spend / (1 - decay)."""
        p = params.reshape(-1, 3)
        return np.exp(p[:, 1]) * self.mean_x / (1 - p[:, 0])

    def columns(self, params: np.ndarray, grad: bool = False):
        """Hill columns H (days x channels) and, with grad, their derivatives per parameter.

        Parameters per channel: decay theta, log m, slope s, with K = m * steady-state adstock
        at mean spend; bounding m keeps the half-saturation inside the range the data spans (a
        curve saturated on every day would be indistinguishable from the intercept)."""
        p = params.reshape(-1, 3)
        h = np.empty_like(self.x)
        d = np.empty((3,) + self.x.shape) if grad else None
        for c in range(self.n_channels):
            theta, logm, s = p[c]
            a = np.maximum(lfilter([1.0], [1.0, -theta], self.x[:, c]), 0.0)
            k = np.exp(logm) * self.mean_x[c] / (1 - theta)
            ratio = a / k
            u = np.power(ratio, s)
            h[:, c] = u / (1 + u)
            if grad:
                dh_du = 1.0 / (1 + u) ** 2
                shifted = np.concatenate([[0.0], a[:-1]])
                da_dtheta = lfilter([1.0], [1.0, -theta], shifted)
                # ratio = a (1 - theta) / (m mean_x): d ratio / d theta
                dratio = (da_dtheta * (1 - theta) - a) / (np.exp(logm) * self.mean_x[c])
                with np.errstate(divide="ignore", invalid="ignore"):
                    du_dratio = np.where(ratio > 0, s * u / ratio, 0.0)
                    log_ratio = np.where(ratio > 0, np.log(np.where(ratio > 0, ratio, 1)), 0.0)
                d[0, :, c] = dh_du * du_dratio * dratio
                d[1, :, c] = dh_du * (-s * u)
                d[2, :, c] = dh_du * u * log_ratio
        return h, d

    def solve(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Non-negative media betas for fixed columns: (beta, residual, rss)."""
        mh = self._project(self.sw[:, None] * h)
        if self.ridge > 0:
            aug = np.vstack([mh, np.sqrt(self.ridge) * np.eye(self.n_channels)])
            beta, _ = nnls(aug, np.concatenate([self.my, np.zeros(self.n_channels)]))
        else:
            beta, _ = nnls(mh, self.my, maxiter=50 * self.n_channels)
        resid = self.my - mh @ beta
        return beta, resid, float(resid @ resid + self.ridge * beta @ beta)

    def objective(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        h, d = self.columns(params, grad=True)
        beta, resid, rss = self.solve(h)
        # envelope theorem: d rss / d param = -2 beta_c r' dh_c/dparam (r is orthogonal to
        # the baseline, so the projection drops out)
        g = -2.0 * np.einsum("t,ktc->ck", resid * self.sw, d) * beta[:, None]
        return rss, g.ravel()

    def grid_search(self, params: np.ndarray, sweeps: int = 3) -> np.ndarray:
        """Coordinate search: per channel, every grid point with the other channels fixed."""
        params = params.copy().reshape(-1, 3)
        h, _ = self.columns(params.ravel())
        best_rss = self.solve(h)[2]
        for _ in range(sweeps):
            improved = False
            for c in range(self.n_channels):
                for theta in DECAY_GRID:
                    a = np.maximum(lfilter([1.0], [1.0, -theta], self.x[:, c]), 0.0)
                    steady = self.mean_x[c] / (1 - theta)
                    for m in HALF_SATURATION_GRID:
                        ratio = a / (m * steady)
                        for s in SLOPE_GRID:
                            u = np.power(ratio, s)
                            h[:, c] = u / (1 + u)
                            rss = self.solve(h)[2]
                            if rss < best_rss - 1e-12:
                                best_rss = rss
                                params[c] = (theta, np.log(m), s)
                                improved = True
                h[:, c] = self.columns(params.ravel())[0][:, c]
            if not improved:
                break
        return params.ravel()

    def refine(self, params: np.ndarray, maxiter: int = 200) -> np.ndarray:
        lo, hi = np.array(self.bounds()).T
        start = np.clip(params, lo, hi)
        res = minimize(
            self.objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=self.bounds(),
            options={"maxiter": maxiter},
        )
        best = res.x if res.fun <= self.objective(start)[0] else start
        return best


# ---------------------------------------------------------------------------------------------
# Fit


@dataclass
class MMMResult:
    """A fitted media mix model. Currency units per day unless said otherwise."""

    dates: pd.DatetimeIndex
    channels: list[str]
    revenue: np.ndarray
    spend: np.ndarray  # days x channels
    decay: np.ndarray
    half_saturation: np.ndarray  # adstocked daily spend, currency units
    slope: np.ndarray
    beta: np.ndarray  # max incremental revenue per day
    fitted: np.ndarray
    baseline: np.ndarray
    contributions: np.ndarray  # days x channels, incremental revenue per day
    draws: pd.DataFrame = field(default_factory=pd.DataFrame)  # bootstrap: replicate, channel, ...

    @property
    def residuals(self) -> np.ndarray:
        return self.revenue - self.fitted

    def adstock(self) -> np.ndarray:
        return np.column_stack(
            [geometric_adstock(self.spend[:, c], self.decay[c]) for c in range(len(self.channels))]
        )

    def current_daily_spend(self, days: int = CURRENT_SPEND_DAYS) -> np.ndarray:
        return self.spend[-days:].mean(axis=0)

    def diagnostics(self) -> dict[str, float]:
        """R^2, MAPE (days with revenue > 0), residual standard deviation, Durbin-Watson."""
        y, r = self.revenue, self.residuals
        ss_tot = float(((y - y.mean()) ** 2).sum())
        pos = y > 0
        return {
            "r2": 1 - float(r @ r) / ss_tot if ss_tot > 0 else float("nan"),
            "mape": float(np.mean(np.abs(r[pos]) / y[pos])) if pos.any() else float("nan"),
            "residual_sd": float(r.std(ddof=1)),
            "durbin_watson": float(np.sum(np.diff(r) ** 2) / (r @ r))
            if r @ r > 0
            else float("nan"),
            "days": float(len(y)),
            "channels": float(len(self.channels)),
            "bootstrap_replicates": float(self.draws["replicate"].nunique())
            if len(self.draws)
            else 0.0,
        }

    def channel_summary(self) -> pd.DataFrame:
        """Per channel: spend, contribution, share of media contribution, ROI, marginal ROI,
        with 90% bootstrap intervals (columns *_low, *_high)."""
        total_spend = self.spend.sum(axis=0)
        contribution = self.contributions.sum(axis=0)
        current = self.current_daily_spend()
        mroi = np.array(
            [
                marginal_response(
                    current[c], self.beta[c], self.decay[c], self.half_saturation[c], self.slope[c]
                )
                for c in range(len(self.channels))
            ]
        )
        out = pd.DataFrame(
            {
                "channel": self.channels,
                "addressable": [c in store.ADDRESSABLE_CHANNELS for c in self.channels],
                "spend": total_spend,
                "contribution": contribution,
                "share": contribution / contribution.sum() if contribution.sum() > 0 else 0.0,
                "roi": np.divide(
                    contribution,
                    total_spend,
                    where=total_spend > 0,
                    out=np.zeros_like(contribution),
                ),
                "marginal_roi": mroi,
            }
        )
        for col in ("contribution", "share", "roi", "marginal_roi", "beta"):
            if len(self.draws):
                q = self.draws.groupby("channel")[col].quantile([0.05, 0.95]).unstack()
                out[f"{col}_low"] = out["channel"].map(q[0.05])
                out[f"{col}_high"] = out["channel"].map(q[0.95])
            else:
                base = out[col] if col in out else pd.Series(self.beta)
                out[f"{col}_low"] = base.to_numpy()
                out[f"{col}_high"] = base.to_numpy()
        return out


def _result_from_params(
    problem: _Problem, params: np.ndarray, y: np.ndarray, base: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(beta in currency/day, contributions days x channels, fitted, baseline) for params."""
    h, _ = problem.columns(params)
    beta_scaled, _, _ = problem.solve(h)
    contrib = h * beta_scaled * problem.y_scale
    rest = y - contrib.sum(axis=1)
    gamma, *_ = np.linalg.lstsq(base, rest, rcond=None)
    baseline = base @ gamma
    return beta_scaled * problem.y_scale, contrib, baseline + contrib.sum(axis=1), baseline


def _block_resample(resid: np.ndarray, block: int, rng: np.random.Generator) -> np.ndarray:
    n = len(resid)
    block = max(1, min(block, n))
    starts = rng.integers(0, n - block + 1, size=int(np.ceil(n / block)))
    idx = (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]
    return resid[idx]


def fit_mmm(
    dates: pd.DatetimeIndex,
    revenue: np.ndarray,
    spend: pd.DataFrame,
    controls: pd.DataFrame | None = None,
    n_bootstrap: int = 100,
    block_days: int = 28,
    trend_degree: int = 2,
    yearly_order: int = 3,
    ridge: float = 1.0,
    seed: int = 0,
) -> MMMResult:
    """Fit the model on daily revenue (currency/day) and spend (days x channels, currency/day).

    `controls` (days x k) join the baseline with free coefficients. `ridge` penalises the media
    betas (in units of mean daily revenue; the baseline is not penalised): a channel whose
    adstocked, saturated spend is nearly constant is indistinguishable from the intercept, and
    the penalty hands that level to the baseline instead of inventing media revenue.
    Deterministic for a seed.
    """
    # the fit is thousands of tiny BLAS calls; threads cost more than they give (measured 5x)
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(
            dates,
            revenue,
            spend,
            controls,
            n_bootstrap,
            block_days,
            trend_degree,
            yearly_order,
            ridge,
            seed,
        )


def _fit(
    dates,
    revenue,
    spend,
    controls,
    n_bootstrap,
    block_days,
    trend_degree,
    yearly_order,
    ridge,
    seed,
) -> MMMResult:
    dates = pd.DatetimeIndex(dates)
    y = np.asarray(revenue, dtype=float)
    x = spend.to_numpy(dtype=float)
    if len(y) != len(x) or len(y) != len(dates):
        raise ValueError(
            f"revenue ({len(y)} days), spend ({len(x)} days) and dates ({len(dates)}) differ"
        )
    if len(y) < 56:
        raise ValueError(f"the media mix model needs at least 56 days of data, got {len(y)}")
    base_frame = baseline_design(dates, trend_degree, yearly_order)
    if controls is not None and len(controls.columns):
        base_frame = pd.concat([base_frame, controls.set_axis(dates).astype(float)], axis=1)
        base_frame = base_frame.loc[:, base_frame.abs().sum() > 0]
    base = base_frame.to_numpy()
    problem = _Problem(y, x, base, ridge)
    start = np.column_stack([np.full(x.shape[1], 0.3), np.zeros(x.shape[1]), np.ones(x.shape[1])])
    params = problem.refine(problem.grid_search(start.ravel()))
    beta, contrib, fitted, baseline = _result_from_params(problem, params, y, base)
    p = params.reshape(-1, 3)
    result = MMMResult(
        dates=dates,
        channels=list(spend.columns),
        revenue=y,
        spend=x,
        decay=p[:, 0].copy(),
        half_saturation=problem.half_saturation(params) * problem.x_scale,
        slope=p[:, 2].copy(),
        beta=beta,
        fitted=fitted,
        baseline=baseline,
        contributions=contrib,
    )
    if n_bootstrap > 0:
        result.draws = _bootstrap(problem, params, result, base, n_bootstrap, block_days, seed)
    return result


def _bootstrap(
    problem: _Problem,
    params: np.ndarray,
    result: MMMResult,
    base: np.ndarray,
    n_bootstrap: int,
    block_days: int,
    seed: int,
) -> pd.DataFrame:
    """Moving-block bootstrap of days; every replicate refitted from the point estimate."""
    rng = np.random.default_rng(seed)
    total_spend = result.spend.sum(axis=0)
    current = result.current_daily_spend()
    rows = []
    n = len(result.revenue)
    block = max(1, min(block_days, n))
    for b in range(n_bootstrap):
        # moving-block bootstrap of days: draw blocks of consecutive days with replacement and
        # weight each day by how often it was drawn (keeps weekly/monthly dependence, and the
        # spread reflects misfit as well as noise)
        starts = rng.integers(0, n - block + 1, size=int(np.ceil(n / block)))
        drawn = (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]
        problem.set_weights(np.bincount(drawn, minlength=n))
        p_star = problem.refine(params, maxiter=60)
        h, _ = problem.columns(p_star)
        beta_scaled, _, _ = problem.solve(h)
        beta = beta_scaled * problem.y_scale
        contrib = h * beta
        pr = p_star.reshape(-1, 3)
        k = problem.half_saturation(p_star) * problem.x_scale
        contribution = contrib.sum(axis=0)
        for c, channel in enumerate(result.channels):
            rows.append(
                (
                    b,
                    channel,
                    beta[c],
                    contribution[c],
                    contribution[c] / contribution.sum() if contribution.sum() > 0 else 0.0,
                    contribution[c] / total_spend[c] if total_spend[c] > 0 else 0.0,
                    float(marginal_response(current[c], beta[c], pr[c, 0], k[c], pr[c, 2])),
                )
            )
    problem.set_weights(np.ones(n))
    return pd.DataFrame(
        rows,
        columns=["replicate", "channel", "beta", "contribution", "share", "roi", "marginal_roi"],
    )


# ---------------------------------------------------------------------------------------------
# Build stage


def load_inputs(
    con: duckdb.DuckDBPyConnection, as_of: date | None = None, experiment_window_days: int = 30
) -> tuple[pd.DatetimeIndex, np.ndarray, pd.DataFrame, float, pd.DataFrame]:
    """Daily inputs over the days that have spend: (dates, revenue per day, spend per day and
    channel, revenue per order, controls). Revenue is every order's revenue (identified or
    not); days without orders or without a channel's spend count as 0. Channels that never
    spent are dropped. Controls: per experiment, the treated customers whose test window
    (`experiment_window_days` after assignment) covers the day — a known marketing push that
    is not in the spend table and would otherwise be credited to whichever channel was on air."""
    spend = con.execute(
        f"SELECT date, channel, {store.exact_sum('spend')} AS spend FROM spend "  # noqa: S608 our SQL
        "WHERE spend > 0 GROUP BY ALL ORDER BY date, channel"
    ).df()
    if spend.empty:
        raise ValueError(
            "the media mix model needs spend: the spend table is empty; ingest spend.csv "
            "(date, channel, spend) first"
        )
    first, last = pd.Timestamp(spend["date"].min()), pd.Timestamp(spend["date"].max())
    if as_of is not None:
        last = min(last, pd.Timestamp(as_of))
    dates = pd.date_range(first, last, freq="D")
    wide = (
        spend.assign(date=pd.to_datetime(spend["date"]))
        .pivot_table(index="date", columns="channel", values="spend", aggfunc="sum")
        .reindex(dates, fill_value=0.0)
        .fillna(0.0)
    )
    order = [c for c in store.MEDIA_CHANNELS if c in wide.columns]
    wide = wide[order + sorted(set(wide.columns) - set(order))]
    wide = wide.loc[:, wide.sum() > 0]
    orders = con.execute(
        f"SELECT CAST(ts AS DATE) AS date, {store.exact_sum('revenue')} AS revenue, "  # noqa: S608 our SQL
        "count(*) AS orders FROM orders WHERE ts >= ? AND ts < ? GROUP BY ALL ORDER BY date",
        [first, last + pd.Timedelta(days=1)],
    ).df()
    daily = orders.assign(date=pd.to_datetime(orders["date"])).set_index("date")
    revenue = daily["revenue"].reindex(dates, fill_value=0.0).to_numpy(float)
    per_order = float(daily["revenue"].sum() / daily["orders"].sum()) if len(daily) else 0.0
    return (
        dates,
        revenue,
        wide.reset_index(drop=True),
        per_order,
        _experiment_controls(con, dates, experiment_window_days),
    )


def _experiment_controls(
    con: duckdb.DuckDBPyConnection, dates: pd.DatetimeIndex, window_days: int
) -> pd.DataFrame:
    """Per experiment: treated customers inside their test window on each day (days x k)."""
    treated = con.execute(
        "SELECT experiment_id, CAST(assigned_at AS DATE) AS date, count(*) AS treated "
        "FROM experiments WHERE lower(arm) = 'treatment' GROUP BY ALL"
    ).df()
    out = pd.DataFrame(index=dates)
    for exp_id, group in treated.groupby("experiment_id", sort=True):
        daily = (
            group.assign(date=pd.to_datetime(group["date"]))
            .set_index("date")["treated"]
            .reindex(dates, fill_value=0)
            .to_numpy(float)
        )
        active = np.convolve(daily, np.ones(window_days))[: len(dates)]
        if active.any():
            out[f"experiment_{exp_id}"] = active / active.max()
    return out.reset_index(drop=True)


def response_curves(result: MMMResult, revenue_per_conversion: float) -> pd.DataFrame:
    """The mart_response_curves contract, one row per media channel (see BRIEF/README):
    revenue/day at steady daily spend x = calibration_factor * beta * h(x / (1 - decay))."""
    summary = result.channel_summary()
    adstock = result.adstock()
    return pd.DataFrame(
        {
            "channel": result.channels,
            "addressable": [c in store.ADDRESSABLE_CHANNELS for c in result.channels],
            "adstock_decay": result.decay,
            "half_saturation": result.half_saturation,
            "hill_slope": result.slope,
            "beta": result.beta,
            "beta_low": summary["beta_low"].to_numpy(),
            "beta_high": summary["beta_high"].to_numpy(),
            "current_daily_spend": result.current_daily_spend(),
            "last_adstock": adstock[-1],
            "revenue_per_conversion": revenue_per_conversion,
            "roi": summary["roi"].to_numpy(),
            "roi_low": summary["roi_low"].to_numpy(),
            "roi_high": summary["roi_high"].to_numpy(),
            "marginal_roi": summary["marginal_roi"].to_numpy(),
            "calibration_factor": 1.0,
        }
    )[RESPONSE_CURVE_COLUMNS]


def _write_empty_marts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE mart_mmm_contributions "
        "(date DATE, component VARCHAR, contribution DOUBLE)"
    )
    con.execute(
        "CREATE OR REPLACE TABLE mart_mmm_fit "
        "(date DATE, actual DOUBLE, fitted DOUBLE, residual DOUBLE)"
    )
    summary_cols = ["spend", "contribution", "share", "roi", "marginal_roi"] + [
        f"{c}_{side}"
        for c in ("contribution", "share", "roi", "marginal_roi", "beta")
        for side in ("low", "high")
    ]
    con.execute(
        "CREATE OR REPLACE TABLE mart_mmm_channels (channel VARCHAR, addressable BOOLEAN, "
        + ", ".join(f"{c} DOUBLE" for c in summary_cols)
        + ")"
    )
    con.execute("CREATE OR REPLACE TABLE mart_mmm_diagnostics (metric VARCHAR, value DOUBLE)")
    types = {"channel": "VARCHAR", "addressable": "BOOLEAN"}
    con.execute(
        "CREATE OR REPLACE TABLE mart_response_curves ("
        + ", ".join(f"{c} {types.get(c, 'DOUBLE')}" for c in RESPONSE_CURVE_COLUMNS)
        + ")"
    )


def mmm_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Build stage `mmm`: fit on daily revenue and spend; writes
    mart_mmm_contributions(date, component, contribution) — component 'baseline' or a channel,
    currency/day; mart_mmm_fit(date, actual, fitted, residual); mart_mmm_channels (per channel
    spend, contribution, share, roi, marginal_roi with 90% intervals); mart_mmm_diagnostics
    (metric, value); mart_response_curves (the budget simulator's contract)."""
    window = int(ctx.param("reconcile", "experiment_window_days", 30))
    has_spend = con.execute("SELECT count(*) FROM spend WHERE spend > 0").fetchall()[0][0] > 0
    if not has_spend:
        # nothing to model yet (e.g. a database with customers only): empty marts, so the
        # pages say what to load and later stages still run
        _write_empty_marts(con)
        return 0
    dates, revenue, spend, per_order, controls = load_inputs(con, ctx.as_of, window)
    yearly = int(ctx.param("mmm", "yearly_order", 3 if len(dates) >= 365 else 0))
    result = fit_mmm(
        dates,
        revenue,
        spend,
        controls=controls,
        n_bootstrap=int(ctx.param("mmm", "bootstrap", 100)),
        block_days=int(ctx.param("mmm", "block_days", 28)),
        trend_degree=int(ctx.param("mmm", "trend_degree", 2)),
        yearly_order=yearly,
        ridge=float(ctx.param("mmm", "ridge", 1.0)),
        seed=int(ctx.param("mmm", "seed", 0)),
    )
    contributions = pd.DataFrame(result.contributions, columns=result.channels)
    contributions.insert(0, "baseline", result.baseline)
    contributions["date"] = dates.date
    long = contributions.melt(id_vars="date", var_name="component", value_name="contribution")
    replace_table(con, "mart_mmm_contributions", long)
    replace_table(
        con,
        "mart_mmm_fit",
        pd.DataFrame(
            {
                "date": dates.date,
                "actual": result.revenue,
                "fitted": result.fitted,
                "residual": result.residuals,
            }
        ),
    )
    replace_table(con, "mart_mmm_channels", result.channel_summary())
    replace_table(
        con,
        "mart_mmm_diagnostics",
        pd.DataFrame(list(result.diagnostics().items()), columns=["metric", "value"]),
    )
    return replace_table(con, "mart_response_curves", response_curves(result, per_order))


# ---------------------------------------------------------------------------------------------
# Readers and charts for pages


def _read(con: duckdb.DuckDBPyConnection, table: str, order: str = "") -> pd.DataFrame | None:
    if not store.table_exists(con, table):
        return None
    frame = con.execute(f"SELECT * FROM {store.quote_ident(table)} {order}").df()  # noqa: S608
    return frame if len(frame) else None  # an empty mart (no spend yet) reads as not built


def load_contributions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """mart_mmm_contributions (date, component, contribution); None before the mmm stage."""
    return _read(con, "mart_mmm_contributions", "ORDER BY date, component")


def load_fit(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    return _read(con, "mart_mmm_fit", "ORDER BY date")


def load_channels(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    return _read(con, "mart_mmm_channels", "ORDER BY contribution DESC")


def load_diagnostics(con: duckdb.DuckDBPyConnection) -> dict[str, float] | None:
    frame = _read(con, "mart_mmm_diagnostics")
    return None if frame is None else dict(zip(frame["metric"], frame["value"], strict=True))


def load_response_curves(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    return _read(con, "mart_response_curves", "ORDER BY channel")


def chart_contributions(contributions: pd.DataFrame, freq: str = "W") -> go.Figure:
    """Stacked area: revenue per period by component (baseline at the bottom, then channels)."""
    from ccrm_core.conductor.attribution import CHANNEL_COLOURS

    frame = contributions.assign(date=pd.to_datetime(contributions["date"]))
    wide = (
        frame.pivot_table(index="date", columns="component", values="contribution", aggfunc="sum")
        .resample(freq)
        .sum()
    )
    fig = go.Figure()
    order = ["baseline"] + [c for c in wide.columns if c != "baseline"]
    for comp in order:
        if comp not in wide:
            continue
        fig.add_scatter(
            x=wide.index,
            y=wide[comp],
            name=comp,
            stackgroup="one",
            mode="lines",
            line=dict(width=0.5, color=CHANNEL_COLOURS.get(comp)),
        )
    fig.update_layout(
        height=400,
        margin=dict(l=10, r=10, t=30, b=10),
        yaxis_title=f"revenue per {'week' if freq == 'W' else 'period'}",
        legend=dict(orientation="h", y=-0.15),
    )
    return fig


def chart_roi(channels: pd.DataFrame, measure: str = "roi") -> go.Figure:
    """ROI (or marginal ROI) per channel with its 90% bootstrap interval as error bars."""
    part = channels.sort_values(measure)
    fig = go.Figure(
        go.Bar(
            x=part[measure],
            y=part["channel"],
            orientation="h",
            error_x=dict(
                type="data",
                symmetric=False,
                array=(part[f"{measure}_high"] - part[measure]).clip(lower=0),
                arrayminus=(part[measure] - part[f"{measure}_low"]).clip(lower=0),
            ),
            marker_color=["#1f77b4" if a else "#d62728" for a in part["addressable"]],
            hovertemplate="%{y}: %{x:.2f} revenue per unit spend<extra></extra>",
        )
    )
    fig.add_vline(x=1.0, line_dash="dot", line_color="#888")
    fig.update_layout(
        height=max(240, 30 * len(part) + 60),
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis_title="ROI (revenue per unit spend)" if measure == "roi" else "marginal ROI",
    )
    return fig


def chart_fit(fit: pd.DataFrame) -> go.Figure:
    """Actual vs fitted daily revenue, and residuals on a second row."""
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.05
    )
    fig.add_scatter(
        x=fit["date"],
        y=fit["actual"],
        name="actual",
        mode="lines",
        line=dict(color="#888", width=1),
        row=1,
        col=1,
    )
    fig.add_scatter(
        x=fit["date"],
        y=fit["fitted"],
        name="fitted",
        mode="lines",
        line=dict(color="#1f77b4", width=1.5),
        row=1,
        col=1,
    )
    fig.add_scatter(
        x=fit["date"],
        y=fit["residual"],
        name="residual",
        mode="lines",
        line=dict(color="#d62728", width=1),
        row=2,
        col=1,
    )
    fig.update_layout(
        height=420, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.12)
    )
    fig.update_yaxes(title_text="revenue/day", row=1, col=1)
    fig.update_yaxes(title_text="residual", row=2, col=1)
    return fig


def bench_mmm_fit(ctx) -> int:
    """Bench: the mmm stage's fit on the built database at the scale (two years daily, 10
    channels, 100 bootstrap replicates). Returns days x channels fitted."""
    con = store.connect_reader(ctx.db)
    try:
        dates, revenue, spend, _, controls = load_inputs(con)
    finally:
        con.close()
    fit_mmm(dates, revenue, spend, controls=controls, n_bootstrap=100)
    return len(dates) * spend.shape[1]
