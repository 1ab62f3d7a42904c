"""Fitting the media mix model: `fit_mmm` (point estimate and moving-block bootstrap) and the
fitted `MMMResult` (per-day contributions, per-channel ROI and marginal ROI with 90% intervals,
fit diagnostics). Currency units per day unless said otherwise.
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
