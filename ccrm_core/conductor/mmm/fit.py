"""Fitting the media mix model: `fit_mmm` (point estimate and moving-block bootstrap) and the
fitted `MMMResult` (per-day contributions, per-channel ROI and marginal ROI with 90% intervals,
fit diagnostics). Currency units per day unless said otherwise.

Lift tests calibrate the fit: with `lift_tests`, the model is fitted once on the data alone (the
uncalibrated fit, kept in `MMMResult.uncalibrated`), the daily noise sd sigma is read from its
residuals, and the model is fitted again with each test as a Gaussian likelihood term

    loss = sum_t w_t (y_t - yhat_t)^2 / sigma^2 + sum_k ((sum_{t in [s_k, e_k]} beta_c h_c,t
           - lift_k) / se_k)^2 + ridge penalty

where c is the test's channel and the sum over the window is the channel's modelled
contribution on the window's days (carry-in from spend before the window included, carry-over
after it not). Every bootstrap replicate redraws each lift from N(lift_k, se_k^2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ccrm_core.conductor.mmm.problem import _Problem
from ccrm_core.conductor.mmm.transforms import baseline_design, geometric_adstock, marginal_response
from ccrm_core.foundation import store

CURRENT_SPEND_DAYS = 28
LIFT_TEST_COLUMNS = [
    "test_id",
    "channel",
    "start_date",
    "end_date",
    "measured_lift",
    "standard_error",
    "used",
    "note",
    "fitted_lift_uncalibrated",
    "fitted_lift",
    "fitted_lift_low",
    "fitted_lift_high",
]


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
    # the fit on the data alone when lift tests calibrated this one (None: no test was used)
    uncalibrated: MMMResult | None = None
    lift_tests: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=LIFT_TEST_COLUMNS)
    )

    @property
    def residuals(self) -> np.ndarray:
        return self.revenue - self.fitted

    @property
    def calibrated(self) -> bool:
        return self.uncalibrated is not None

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
    lift_tests: pd.DataFrame | None = None,
) -> MMMResult:
    """Fit the model on daily revenue (currency/day) and spend (days x channels, currency/day).

    `lift_tests` (test_id, channel, start_date, end_date, lift, standard_error: incremental
    revenue over the window's days, currency) calibrate the fit (see the module docstring); a
    test whose channel has no spend, whose window misses the data or whose standard error is
    not positive is listed in `MMMResult.lift_tests` with used = False and the reason.

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
            lift_tests,
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
    lift_tests,
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
    channels = list(spend.columns)
    result = _result(problem, params, dates, channels, y, x, base)
    if n_bootstrap > 0:
        result.draws = _bootstrap(problem, params, result, base, n_bootstrap, block_days, seed)
    tests = _lift_windows(lift_tests, dates, channels)
    used = tests[tests["used"]]
    if used.empty:
        result.lift_tests = _lift_table(tests, result, None, None)
        return result
    # sigma: the daily noise sd of the fit on the data alone (scaled units, dof-corrected)
    _, resid, _ = problem.solve(problem.columns(params)[0])
    dof = max(len(y) - base.shape[1] - 4 * x.shape[1], 1)
    sigma = float(np.sqrt(resid @ resid / dof))
    days = np.stack(used["days"].to_list())
    channel_index = used["channel"].map({c: i for i, c in enumerate(channels)}).to_numpy()
    lift = used["lift"].to_numpy(float)
    se = used["standard_error"].to_numpy(float)
    problem.set_lift_tests(days, channel_index, lift, se, sigma)
    calibrated_params = problem.refine(problem.grid_search(params))
    calibrated = _result(problem, calibrated_params, dates, channels, y, x, base)
    calibrated.uncalibrated = result
    lift_draws = None
    if n_bootstrap > 0:
        calibrated.draws, lift_draws = _bootstrap(
            problem,
            calibrated_params,
            calibrated,
            base,
            n_bootstrap,
            block_days,
            seed,
            lift=(days, channel_index, lift, se),
        )
    problem.set_lift_values(lift)
    calibrated.lift_tests = _lift_table(tests, calibrated, result, lift_draws)
    return calibrated


def _result(problem, params, dates, channels, y, x, base) -> MMMResult:
    beta, contrib, fitted, baseline = _result_from_params(problem, params, y, base)
    p = params.reshape(-1, 3)
    return MMMResult(
        dates=dates,
        channels=channels,
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


def _lift_windows(
    lift_tests: pd.DataFrame | None, dates: pd.DatetimeIndex, channels: list[str]
) -> pd.DataFrame:
    """The lift tests with their day mask over `dates` and whether (and why not) each is used;
    in test_id order so that the fit does not depend on the order rows were given."""
    cols = ["test_id", "channel", "start_date", "end_date", "lift", "standard_error"]
    if lift_tests is None or lift_tests.empty:
        return pd.DataFrame(columns=[*cols, "days", "used", "note"]).astype({"used": bool})
    tests = lift_tests[cols].sort_values("test_id", kind="stable").reset_index(drop=True)
    first, last = pd.Timestamp(dates[0]), pd.Timestamp(dates[-1])
    masks, used, notes = [], [], []
    for t in tests.itertuples():
        start, end = pd.Timestamp(t.start_date), pd.Timestamp(t.end_date)
        mask = ((dates >= start) & (dates <= end)).astype(float)
        if t.channel not in channels:
            note = "no spend on this channel in the data"
        elif end < start:
            note = "ends before it starts"
        elif start < first or end > last:
            note = f"window outside the modelled days {first.date()} to {last.date()}"
        elif not (np.isfinite(t.standard_error) and t.standard_error > 0):
            note = "standard error must be positive"
        elif not np.isfinite(t.lift):
            note = "lift is not a number"
        else:
            note = ""
        masks.append(mask)
        used.append(note == "")
        notes.append(note)
    return tests.assign(days=masks, used=used, note=notes)


def _window_sum(result: MMMResult, channel: str, days: np.ndarray) -> float:
    return float(days @ result.contributions[:, result.channels.index(channel)])


def _lift_table(
    tests: pd.DataFrame,
    result: MMMResult,
    uncalibrated: MMMResult | None,
    lift_draws: np.ndarray | None,
) -> pd.DataFrame:
    """Per test: measured and modelled lift (the channel's contribution over the window) before
    and after calibration, with the 90% bootstrap interval of the calibrated one."""
    rows = []
    for k, t in enumerate(tests.itertuples()):
        known = t.channel in result.channels and t.days.any()
        fitted = _window_sum(result, t.channel, t.days) if known else np.nan
        before = (
            _window_sum(uncalibrated, t.channel, t.days)
            if known and uncalibrated is not None
            else fitted
        )
        low = high = fitted
        if lift_draws is not None and t.used:
            column = int(tests["used"].iloc[: k + 1].sum()) - 1
            low, high = np.quantile(lift_draws[:, column], [0.05, 0.95])
        rows.append(
            [
                str(t.test_id),
                str(t.channel),
                pd.Timestamp(t.start_date).date(),
                pd.Timestamp(t.end_date).date(),
                float(t.lift),
                float(t.standard_error),
                bool(t.used),
                t.note,
                before,
                fitted,
                float(low),
                float(high),
            ]
        )
    return pd.DataFrame(rows, columns=LIFT_TEST_COLUMNS)


def _bootstrap(
    problem: _Problem,
    params: np.ndarray,
    result: MMMResult,
    base: np.ndarray,
    n_bootstrap: int,
    block_days: int,
    seed: int,
    lift: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
):
    """Moving-block bootstrap of days; every replicate refitted from the point estimate.

    With `lift` (days, channel index, lift, standard error), each replicate also redraws the
    measured lifts from N(lift, se^2) and the result is (draws, modelled lift per replicate and
    test); without, the draws alone."""
    rng = np.random.default_rng(seed)
    lift_rng = np.random.default_rng([seed, 1])  # its own stream: day draws match uncalibrated
    fitted_lift = np.zeros((n_bootstrap, 0 if lift is None else len(lift[1])))
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
        if lift is not None:
            problem.set_lift_values(lift[2] + lift[3] * lift_rng.standard_normal(len(lift[2])))
        p_star = problem.refine(params, maxiter=60)
        h, _ = problem.columns(p_star)
        beta_scaled, _, _ = problem.solve(h)
        beta = beta_scaled * problem.y_scale
        contrib = h * beta
        pr = p_star.reshape(-1, 3)
        k = problem.half_saturation(p_star) * problem.x_scale
        contribution = contrib.sum(axis=0)
        if lift is not None:
            fitted_lift[b] = np.einsum("kt,tk->k", lift[0], contrib[:, lift[1]])
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
    draws = pd.DataFrame(
        rows,
        columns=["replicate", "channel", "beta", "contribution", "share", "roi", "marginal_roi"],
    )
    return draws if lift is None else (draws, fitted_lift)
