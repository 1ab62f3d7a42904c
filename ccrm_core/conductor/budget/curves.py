"""Response curves of the budget module: loading and checking them, and the curve maths.

`mart_response_curves` (written by the `mmm` stage) holds one row per media channel; its curve
is per DAY: at a steady daily spend x the channel adds c * beta * h(x / (1 - theta)) revenue per
day, h(a) = a^s / (a^s + K^s) (see the package docstring for the symbols). `_steady` and `_path`
turn a plan of WEEKLY spend per channel into weekly revenue factors (steady state, or week by
week from the adstock at the end of the data) that the what-if and the optimizer share.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.conductor.mmm import RESPONSE_CURVE_COLUMNS
from ccrm_core.foundation import store

CURVES_TABLE = "mart_response_curves"
# The columns of mart_response_curves, as the mmm stage writes them (the contract is mmm's).
CURVE_COLUMNS = tuple(RESPONSE_CURVE_COLUMNS)
# Columns without which no curve can be evaluated; the others get documented defaults.
REQUIRED_CURVE_COLUMNS = (
    "channel",
    "adstock_decay",
    "half_saturation",
    "hill_slope",
    "beta",
    "current_daily_spend",
)
DAYS_PER_WEEK = 7
Z90 = 1.6448536269514722  # normal quantile for a two-sided 90% interval


class BudgetError(ValueError):
    """A request the budget module cannot honour; the message says what and what to do."""


def load_curves(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """The response curves, one row per media channel; None when the `mmm` stage has not run.

    Raises BudgetError naming the column when the table lacks a required column or holds a value
    no curve can have (see `validate_curves`).
    """
    if not store.table_exists(con, CURVES_TABLE):
        return None
    frame = con.execute(f"SELECT * FROM {store.quote_ident(CURVES_TABLE)}").df()  # noqa: S608 contract name
    return validate_curves(frame)


def validate_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """A clean copy of the curves, sorted by channel, with defaults for optional columns.

    Defaults: beta_low/beta_high = beta (no interval), last_adstock = the steady state of the
    current spend, calibration_factor = 1, addressable = channel in store.ADDRESSABLE_CHANNELS,
    revenue_per_conversion = NaN (conversions unavailable). Raises BudgetError naming the channel,
    column and value for anything no curve can have (theta outside [0, 1), K <= 0, s <= 0,
    negative beta or spend, duplicate channels).
    """
    missing = [c for c in REQUIRED_CURVE_COLUMNS if c not in curves.columns]
    if missing:
        raise BudgetError(
            f"{CURVES_TABLE} lacks column(s) {', '.join(missing)}; rebuild with `ccrm build "
            "--stages mmm` (the budget simulator needs the MMM's response curves)"
        )
    out = curves.copy()
    out["channel"] = out["channel"].astype(str)
    dupes = out["channel"][out["channel"].duplicated()].unique().tolist()
    if dupes:
        raise BudgetError(f"{CURVES_TABLE} has more than one row for channel(s) {dupes}")
    for col in REQUIRED_CURVE_COLUMNS[1:]:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    for col in ("beta_low", "beta_high"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float) if col in out else np.nan
        out[col] = out[col].fillna(out["beta"])
    if "calibration_factor" not in out:
        out["calibration_factor"] = 1.0
    out["calibration_factor"] = pd.to_numeric(out["calibration_factor"], errors="coerce")
    out["calibration_factor"] = out["calibration_factor"].fillna(1.0).astype(float)
    if "addressable" not in out:
        out["addressable"] = out["channel"].isin(store.ADDRESSABLE_CHANNELS)
    out["addressable"] = out["addressable"].fillna(False).astype(bool)
    if "revenue_per_conversion" not in out:
        out["revenue_per_conversion"] = np.nan
    out["revenue_per_conversion"] = pd.to_numeric(
        out["revenue_per_conversion"], errors="coerce"
    ).astype(float)
    steady = out["current_daily_spend"] / (1.0 - out["adstock_decay"].clip(upper=0.999999))
    if "last_adstock" not in out:
        out["last_adstock"] = np.nan
    out["last_adstock"] = pd.to_numeric(out["last_adstock"], errors="coerce").astype(float)
    out["last_adstock"] = out["last_adstock"].fillna(steady)

    checks = (
        ("adstock_decay", lambda v: (v >= 0) & (v < 1), "must be in [0, 1)"),
        ("half_saturation", lambda v: v > 0, "must be > 0"),
        ("hill_slope", lambda v: v > 0, "must be > 0"),
        ("beta", lambda v: v >= 0, "must be >= 0"),
        ("beta_low", lambda v: v >= 0, "must be >= 0"),
        ("beta_high", lambda v: v >= 0, "must be >= 0"),
        ("current_daily_spend", lambda v: v >= 0, "must be >= 0"),
        ("last_adstock", lambda v: v >= 0, "must be >= 0"),
        ("calibration_factor", lambda v: v >= 0, "must be >= 0"),
    )
    for col, ok, rule in checks:
        bad = out[~ok(out[col]).fillna(False).astype(bool)]
        if not bad.empty:
            row = bad.iloc[0]
            raise BudgetError(
                f"{CURVES_TABLE}: channel {row['channel']!r} has {col} = {row[col]}, which "
                f"{rule}; rebuild the `mmm` stage or fix its settings"
            )
    # keep the interval around the estimate even if the MMM wrote it the other way round
    lo = np.minimum(out["beta_low"], out["beta_high"])
    hi = np.maximum(out["beta_low"], out["beta_high"])
    out["beta_low"] = np.minimum(lo, out["beta"])
    out["beta_high"] = np.maximum(hi, out["beta"])
    return out.sort_values("channel", kind="stable").reset_index(drop=True)


def synthetic_curves(channels: int = 12, seed: int = 0) -> pd.DataFrame:
    """Made-up but plausible response curves (benchmarks and tests; not estimates of anything).

    Channel names come from store.MEDIA_CHANNELS, then media_11, media_12, ...; daily spend
    between 50 and 2,000, decay 0-0.7, Hill slope 0.7-2.5, current spend near half saturation.
    """
    rng = np.random.default_rng(seed)
    names = list(store.MEDIA_CHANNELS[:channels]) + [
        f"media_{i + 1}" for i in range(len(store.MEDIA_CHANNELS), channels)
    ]
    spend = rng.uniform(50, 2000, channels)
    theta = rng.uniform(0.0, 0.7, channels)
    K = spend / (1 - theta) * rng.uniform(0.5, 2.0, channels)
    beta = spend * rng.uniform(2.0, 8.0, channels)
    frame = pd.DataFrame(
        {
            "channel": names,
            "addressable": [n in store.ADDRESSABLE_CHANNELS for n in names],
            "adstock_decay": theta,
            "half_saturation": K,
            "hill_slope": rng.uniform(0.7, 2.5, channels),
            "beta": beta,
            "beta_low": beta * rng.uniform(0.6, 0.9, channels),
            "beta_high": beta * rng.uniform(1.1, 1.5, channels),
            "current_daily_spend": spend,
            "last_adstock": spend / (1 - theta) * rng.uniform(0.7, 1.3, channels),
            "revenue_per_conversion": rng.uniform(40, 150, channels),
            "calibration_factor": 1.0,
        }
    )
    return validate_curves(frame)


def current_plan(curves: pd.DataFrame) -> dict[str, float]:
    """The current plan: mean daily spend of the last 28 days x 7, per channel (spend per week)."""
    return {
        ch: float(v) * DAYS_PER_WEEK
        for ch, v in zip(curves["channel"], curves["current_daily_spend"], strict=True)
    }


@dataclass(frozen=True)
class _Params:
    """The curves as numpy arrays in channel order (so hot loops touch no pandas)."""

    channel: tuple[str, ...]
    theta: np.ndarray
    K: np.ndarray
    s: np.ndarray
    beta: np.ndarray  # calibrated: c * beta, revenue per day
    beta_low: np.ndarray
    beta_high: np.ndarray
    rpc: np.ndarray
    last_adstock: np.ndarray
    current: np.ndarray  # weekly spend
    addressable: np.ndarray

    def index(self, channel: str) -> int:
        return self.channel.index(channel)


def _params(curves: pd.DataFrame) -> _Params:
    c = curves["calibration_factor"].to_numpy(float)
    return _Params(
        channel=tuple(curves["channel"]),
        theta=curves["adstock_decay"].to_numpy(float),
        K=curves["half_saturation"].to_numpy(float),
        s=curves["hill_slope"].to_numpy(float),
        beta=c * curves["beta"].to_numpy(float),
        beta_low=c * curves["beta_low"].to_numpy(float),
        beta_high=c * curves["beta_high"].to_numpy(float),
        rpc=curves["revenue_per_conversion"].to_numpy(float),
        last_adstock=curves["last_adstock"].to_numpy(float),
        current=curves["current_daily_spend"].to_numpy(float) * DAYS_PER_WEEK,
        addressable=curves["addressable"].to_numpy(bool),
    )


def _select(p: _Params, idx: np.ndarray | list[int]) -> _Params:
    """The curves of some channels only (positions `idx` in p's channel order)."""
    return _Params(
        channel=tuple(p.channel[i] for i in idx),
        theta=p.theta[idx],
        K=p.K[idx],
        s=p.s[idx],
        beta=p.beta[idx],
        beta_low=p.beta_low[idx],
        beta_high=p.beta_high[idx],
        rpc=p.rpc[idx],
        last_adstock=p.last_adstock[idx],
        current=p.current[idx],
        addressable=p.addressable[idx],
    )


def _hill(a: np.ndarray, K: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """h(a) = a^s/(a^s+K^s) and its derivative dh/da = s/a * h * (1-h), written in forms that
    stay finite for tiny and huge a (the floor keeps dh/da finite at a = 0 when s < 1)."""
    safe = np.maximum(a, K * 1e-12)
    h = 1.0 / (1.0 + np.exp(s * (np.log(K) - np.log(safe))))
    return np.where(a > 0, h, 0.0), s / safe * h * (1.0 - h)


def _steady(p: _Params, weekly: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Steady-state weekly revenue factor and its derivative per channel.

    Returns (g, dg) with revenue/week = beta * g and d revenue/week / d weekly spend = beta * dg,
    so the point estimate and both interval ends share one curve evaluation.
    """
    one_minus = 1.0 - p.theta
    a = weekly / DAYS_PER_WEEK / one_minus
    h, dh = _hill(a, p.K, p.s)
    return DAYS_PER_WEEK * h, dh / one_minus


def _path(p: _Params, weekly: np.ndarray, weeks: int) -> tuple[np.ndarray, np.ndarray]:
    """Day-by-day adstock from the end of the data under a steady plan.

    Returns (g, dg) of shape (weeks, channels): revenue in week k = beta * g[k], and
    d revenue_k / d weekly spend = beta * dg[k]. Adstock on day d (1-based):
    a_d = theta^d * last_adstock + x * (1 - theta^d) / (1 - theta).
    """
    days = np.arange(1, weeks * DAYS_PER_WEEK + 1, dtype=float)[:, None]
    decay = p.theta[None, :] ** days
    ramp = (1.0 - decay) / (1.0 - p.theta[None, :])
    a = decay * p.last_adstock[None, :] + (weekly / DAYS_PER_WEEK)[None, :] * ramp
    h, dh = _hill(a, p.K[None, :], p.s[None, :])
    g = h.reshape(weeks, DAYS_PER_WEEK, -1).sum(axis=1)
    dg = (dh * ramp / DAYS_PER_WEEK).reshape(weeks, DAYS_PER_WEEK, -1).sum(axis=1)
    return g, dg
