"""Conductor: budget what-if, optimizer, forecast and scenarios over the MMM's response curves.

Units and grain (read this before using the numbers)
- A *plan* maps media channel -> spend per WEEK (currency units). Inside, a week's spend is spread
  evenly over its 7 days: daily spend x = w / 7.
- The response curves (table `mart_response_curves`, written by the `mmm` stage) are per DAY: at a
  steady daily spend x a channel adds incremental revenue per day
      c * beta * h(x / (1 - theta)),   h(a) = a^s / (a^s + K^s)
  with theta the geometric adstock decay, K the half saturation (adstocked daily spend), s the
  Hill slope, beta the most revenue per day the channel can add and c the calibration factor from
  the MMM/attribution reconciliation (1.0 without one).
- Outcomes are per WEEK: revenue = 7 x revenue per day; conversions = revenue / the channel's
  revenue per conversion; profit = incremental revenue - spend (before product margins);
  ROI = incremental revenue / spend; marginal ROI = revenue added by the next currency unit.
- Steady state (the default of `predict`, and what `optimize` maximises) is the weekly outcome
  once the adstock has settled at the plan's level. `forecast` (and `predict(..., weeks=N)`)
  instead follows the adstock day by day from its state at the end of the data (`last_adstock`):
  a_d = x + theta * a_(d-1), so the carryover of recent spend decays into the first weeks.
- Interval: the MMM's 90% interval of beta (beta_low, beta_high) is carried through the curve
  (the response is linear in beta; the shape parameters theta, K, s are held at their
  estimates), per channel. Totals combine the channel half-widths in quadrature, which assumes the
  channels' errors are independent (narrower than adding them, wider than a fully
  anti-correlated posterior).

Every function takes the curves as a DataFrame (`load_curves(con)`), so the maths is plain numpy
and testable without a database. Scenarios are stored in the table `budget_scenarios`.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy.optimize import minimize

from ccrm_core.conductor.mmm import RESPONSE_CURVE_COLUMNS
from ccrm_core.foundation import store, validation

CURVES_TABLE = "mart_response_curves"
SCENARIOS_TABLE = "budget_scenarios"
OBJECTIVES = ("revenue", "conversions", "profit")
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
SCENARIO_NAME_MAX = 60
# attribution model used for segment focus unless one is chosen (first one present wins)
ATTRIBUTION_PREFERENCE = ("markov_1", "markov", "shapley", "markov_2", "linear")
MAX_COMPARED_SCENARIOS = 4
Z90 = 1.6448536269514722  # normal quantile for a two-sided 90% interval


class BudgetError(ValueError):
    """A request the budget module cannot honour; the message says what and what to do."""


class InfeasibleBudgetError(BudgetError):
    """The total budget, bounds, locks or target ROI contradict each other."""


class ScenarioNameError(BudgetError):
    """A scenario name that cannot be stored (empty, too long, control characters)."""


# ---------------------------------------------------------------------------------------------
# Curves


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


# ---------------------------------------------------------------------------------------------
# Plans and predictions


def plan_vector(
    curves: pd.DataFrame | _Params, plan: Mapping[str, float] | pd.Series
) -> np.ndarray:
    """A plan (channel -> weekly spend) as an array in the curves' channel order.

    Raises BudgetError for channels the curves do not know, channels the plan leaves out, and
    negative or non-numeric spend.
    """
    p = curves if isinstance(curves, _Params) else _params(curves)
    plan = dict(plan)
    unknown = sorted(set(plan) - set(p.channel))
    if unknown:
        raise BudgetError(
            f"plan names channel(s) {', '.join(unknown)} that have no response curve; "
            f"known channels: {', '.join(p.channel)}"
        )
    missing = [ch for ch in p.channel if ch not in plan]
    if missing:
        raise BudgetError(
            f"plan leaves out channel(s) {', '.join(missing)}; give every channel a weekly spend "
            "(0 for none)"
        )
    out = np.empty(len(p.channel))
    for i, ch in enumerate(p.channel):
        try:
            value = float(plan[ch])
        except (TypeError, ValueError) as exc:
            raise BudgetError(f"plan: spend for {ch} is {plan[ch]!r}, not a number") from exc
        if not math.isfinite(value) or value < 0:
            raise BudgetError(
                f"plan: spend for {ch} is {value}; weekly spend must be a number >= 0"
            )
        out[i] = value
    return out


def align_plan(
    curves: pd.DataFrame, plan: Mapping[str, float]
) -> tuple[dict[str, float], list[str]]:
    """A stored plan made to fit the current curves: channels without a curve are dropped and
    channels the plan lacks get 0; returns (plan, notes saying what was changed)."""
    channels = list(curves["channel"])
    notes = []
    dropped = sorted(set(plan) - set(channels))
    if dropped:
        notes.append(f"dropped channel(s) without a response curve: {', '.join(dropped)}")
    added = [ch for ch in channels if ch not in plan]
    if added:
        notes.append(f"set to 0 (not in the plan): {', '.join(added)}")
    return {ch: float(plan.get(ch, 0.0)) for ch in channels}, notes


def _total_interval(point: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """Total interval from per-channel ones, half-widths combined in quadrature (independence)."""
    total = float(point.sum())
    return (
        total - float(np.sqrt(np.sum((point - low) ** 2))),
        total + float(np.sqrt(np.sum((high - point) ** 2))),
    )


@dataclass(frozen=True)
class Prediction:
    """Expected outcome of a plan, per week (steady state, or the mean of the next `weeks`).

    `channels` has one row per channel: channel, spend, revenue, revenue_low, revenue_high,
    conversions, conversions_low, conversions_high, roi, marginal_roi (all per week; roi and
    marginal_roi are revenue per currency unit).
    """

    channels: pd.DataFrame
    spend: float
    revenue: float
    revenue_low: float
    revenue_high: float
    conversions: float
    conversions_low: float
    conversions_high: float
    weeks: int | None = None

    @property
    def roi(self) -> float:
        return self.revenue / self.spend if self.spend > 0 else float("nan")

    @property
    def profit(self) -> float:
        return self.revenue - self.spend

    def value(self, objective: str) -> float:
        """The objective's value: revenue, conversions or profit per week."""
        _check_objective(objective)
        return {"revenue": self.revenue, "conversions": self.conversions, "profit": self.profit}[
            objective
        ]


def predict(
    curves: pd.DataFrame,
    plan: Mapping[str, float] | pd.Series,
    *,
    weeks: int | None = None,
) -> Prediction:
    """Expected incremental revenue and conversions per week of a plan, with a 90% interval.

    `plan`: channel -> spend per week, every channel of the curves. With `weeks=None` the outcome
    is the steady state (adstock settled at the plan's level); with `weeks=N` it is the mean week
    of the next N weeks starting from the adstock state at the end of the data, so the carryover
    of recent spend is included. Revenue is calibrated (x calibration_factor).
    """
    p = _params(curves)
    w = plan_vector(p, plan)
    if weeks is None:
        g, dg = _steady(p, w)
    else:
        if int(weeks) < 1:
            raise BudgetError(f"weeks must be at least 1 (got {weeks})")
        gp, dgp = _path(p, w, int(weeks))
        g, dg = gp.mean(axis=0), dgp.mean(axis=0)
    revenue, low, high = p.beta * g, p.beta_low * g, p.beta_high * g
    with np.errstate(divide="ignore", invalid="ignore"):
        per_conv = np.where(p.rpc > 0, 1.0 / p.rpc, np.nan)
        roi = np.where(w > 0, revenue / w, np.nan)
    conv, conv_low, conv_high = revenue * per_conv, low * per_conv, high * per_conv
    frame = pd.DataFrame(
        {
            "channel": list(p.channel),
            "spend": w,
            "revenue": revenue,
            "revenue_low": low,
            "revenue_high": high,
            "conversions": conv,
            "conversions_low": conv_low,
            "conversions_high": conv_high,
            "roi": roi,
            "marginal_roi": p.beta * dg,
        }
    )
    rev_lo, rev_hi = _total_interval(revenue, low, high)
    known = np.isfinite(conv)
    conv_lo, conv_hi = _total_interval(conv[known], conv_low[known], conv_high[known])
    return Prediction(
        channels=frame,
        spend=float(w.sum()),
        revenue=float(revenue.sum()),
        revenue_low=rev_lo,
        revenue_high=rev_hi,
        conversions=float(conv[known].sum()) if known.any() else float("nan"),
        conversions_low=conv_lo if known.any() else float("nan"),
        conversions_high=conv_hi if known.any() else float("nan"),
        weeks=weeks,
    )


def forecast(
    curves: pd.DataFrame,
    plan: Mapping[str, float] | pd.Series,
    weeks: int,
    start: date | None = None,
) -> pd.DataFrame:
    """Incremental revenue of the next `weeks` weeks if the plan starts the day after the data.

    One row per week and channel: week (1 = the first week), week_start (when `start`, the first
    day of the plan, is given), channel, spend, revenue, revenue_low, revenue_high, conversions
    (per week). The adstock starts from its state at the end of the data (last_adstock), so a
    channel whose spend is cut keeps earning for a while and a new one ramps up.
    """
    if int(weeks) < 1:
        raise BudgetError(f"weeks must be at least 1 (got {weeks})")
    p = _params(curves)
    w = plan_vector(p, plan)
    g, _ = _path(p, w, int(weeks))
    n_weeks, n_ch = g.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        per_conv = np.where(p.rpc > 0, 1.0 / p.rpc, np.nan)
    week = np.repeat(np.arange(1, n_weeks + 1), n_ch)
    frame = pd.DataFrame(
        {
            "week": week,
            "channel": np.tile(np.array(p.channel, dtype=object), n_weeks),
            "spend": np.tile(w, n_weeks),
            "revenue": (g * p.beta).ravel(),
            "revenue_low": (g * p.beta_low).ravel(),
            "revenue_high": (g * p.beta_high).ravel(),
            "conversions": (g * p.beta * per_conv).ravel(),
        }
    )
    if start is not None:
        frame.insert(1, "week_start", [start + timedelta(days=7 * (int(k) - 1)) for k in week])
    return frame


def forecast_totals(forecast_frame: pd.DataFrame) -> pd.DataFrame:
    """Per week of a forecast: spend, revenue and its 90% interval (channels in quadrature)."""
    rows = []
    keys = ["week", "week_start"] if "week_start" in forecast_frame else ["week"]
    for key, grp in forecast_frame.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        lo, hi = _total_interval(
            grp["revenue"].to_numpy(), grp["revenue_low"].to_numpy(), grp["revenue_high"].to_numpy()
        )
        rows.append(
            dict(zip(keys, key, strict=True))
            | {
                "spend": grp["spend"].sum(),
                "revenue": grp["revenue"].sum(),
                "revenue_low": lo,
                "revenue_high": hi,
            }
        )
    return pd.DataFrame(rows)


def waterfall(
    curves: pd.DataFrame,
    current: Mapping[str, float],
    proposed: Mapping[str, float],
    objective: str = "revenue",
) -> pd.DataFrame:
    """The change of the objective (per week, steady state) from `current` to `proposed`, by
    channel. Channels add up exactly (the response is separable by channel): one row per channel
    with channel, current, proposed, change, sorted by the size of the change."""
    _check_objective(objective)
    now, new = predict(curves, current), predict(curves, proposed)
    col = {"revenue": "revenue", "conversions": "conversions", "profit": "revenue"}[objective]
    a = now.channels[col].to_numpy()
    b = new.channels[col].to_numpy()
    if objective == "profit":
        a, b = a - now.channels["spend"].to_numpy(), b - new.channels["spend"].to_numpy()
    frame = pd.DataFrame(
        {"channel": now.channels["channel"], "current": a, "proposed": b, "change": b - a}
    )
    order = frame["change"].abs().sort_values(ascending=False, kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def plan_table(curves: pd.DataFrame, plan: Mapping[str, float]) -> pd.DataFrame:
    """The plan as an exportable table, one row per channel (all money per week):
    channel, weekly_spend, daily_spend, share, revenue, revenue_low, revenue_high, conversions,
    roi, marginal_roi."""
    pred = predict(curves, plan)
    frame = pred.channels.rename(columns={"spend": "weekly_spend"})
    frame.insert(2, "daily_spend", frame["weekly_spend"] / DAYS_PER_WEEK)
    total = frame["weekly_spend"].sum()
    frame.insert(3, "share", frame["weekly_spend"] / total if total > 0 else 0.0)
    return frame[
        [
            "channel",
            "weekly_spend",
            "daily_spend",
            "share",
            "revenue",
            "revenue_low",
            "revenue_high",
            "conversions",
            "roi",
            "marginal_roi",
        ]
    ]


def plan_csv(curves: pd.DataFrame, plan: Mapping[str, float]) -> str:
    """The plan as CSV text (see `plan_table` for the columns; money per week)."""
    buffer = io.StringIO()
    plan_table(curves, plan).to_csv(buffer, index=False, float_format="%.4f")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Optimizer


@dataclass(frozen=True)
class Bound:
    """Limits on one channel's weekly spend: absolute (`min`, `max`, currency per week) and/or as
    a share of its current weekly spend (`min_share`, `max_share`, e.g. 0.5 and 2.0). Where both
    kinds are given the tighter one applies. A channel with no current spend gets max 0 from a
    share limit: give it an absolute `max` to let the optimizer fund it."""

    min: float | None = None
    max: float | None = None
    min_share: float | None = None
    max_share: float | None = None

    def limits(self, current: float) -> tuple[float, float]:
        lo, hi = 0.0, math.inf
        if self.min is not None:
            lo = max(lo, float(self.min))
        if self.min_share is not None:
            lo = max(lo, float(self.min_share) * current)
        if self.max is not None:
            hi = min(hi, float(self.max))
        if self.max_share is not None:
            hi = min(hi, float(self.max_share) * current)
        return lo, hi


BoundSpec = Bound | tuple[float | None, float | None] | Mapping[str, float | None]


def _as_bound(channel: str, spec: BoundSpec) -> Bound:
    if isinstance(spec, Bound):
        bound = spec
    elif isinstance(spec, Mapping):
        extra = set(spec) - {"min", "max", "min_share", "max_share"}
        if extra:
            raise BudgetError(
                f"bounds for {channel}: unknown key(s) {sorted(extra)}; use min, max (weekly "
                "spend) or min_share, max_share (share of current spend)"
            )
        bound = Bound(**spec)
    elif isinstance(spec, tuple | list) and len(spec) == 2:
        bound = Bound(min=spec[0], max=spec[1])
    else:
        raise BudgetError(f"bounds for {channel}: {spec!r} is not (min, max), a dict or a Bound")
    for name in ("min", "max", "min_share", "max_share"):
        v = getattr(bound, name)
        if v is not None and (not isinstance(v, int | float) or not v >= 0 or math.isnan(v)):
            raise BudgetError(f"bounds for {channel}: {name} = {v!r}; it must be a number >= 0")
    return bound


def resolve_bounds(
    curves: pd.DataFrame,
    bounds: Mapping[str, BoundSpec] | None = None,
    locked: Mapping[str, float] | Iterable[str] | None = None,
) -> pd.DataFrame:
    """Per channel weekly spend limits after bounds and locks: channel, current, min, max, locked.

    `bounds` maps channel -> Bound, (min, max) in weekly spend, or a dict of Bound's fields; the
    key "*" applies to every channel without its own entry. `locked` is a list of channels held at
    their current spend, or channel -> weekly spend. Raises BudgetError naming the channel for
    unknown channels, min > max, and a lock outside its channel's own bounds.
    """
    p = _params(curves)
    bounds = dict(bounds or {})
    default = _as_bound("*", bounds.pop("*")) if "*" in bounds else Bound()
    unknown = sorted(set(bounds) - set(p.channel))
    if unknown:
        raise BudgetError(
            f"bounds name channel(s) {', '.join(unknown)} that have no response curve; "
            f"known channels: {', '.join(p.channel)}"
        )
    if locked is None:
        locked = {}
    elif not isinstance(locked, Mapping):
        locked = {ch: p.current[p.index(ch)] if ch in p.channel else 0.0 for ch in locked}
    unknown = sorted(set(locked) - set(p.channel))
    if unknown:
        raise BudgetError(
            f"locked channel(s) {', '.join(unknown)} have no response curve; "
            f"known channels: {', '.join(p.channel)}"
        )
    rows = []
    for i, ch in enumerate(p.channel):
        lo, hi = _as_bound(ch, bounds.get(ch, default)).limits(p.current[i])
        if lo > hi:
            raise InfeasibleBudgetError(
                f"bounds for {ch}: minimum {lo:,.2f} is above maximum {hi:,.2f} per week; "
                "lower the minimum or raise the maximum"
            )
        is_locked = ch in locked
        if is_locked:
            value = float(locked[ch])
            if not math.isfinite(value) or value < 0:
                raise BudgetError(f"locked spend for {ch} is {value}; it must be a number >= 0")
            if ch in bounds and not (lo - 1e-9 <= value <= hi + 1e-9):
                raise InfeasibleBudgetError(
                    f"{ch} is locked at {value:,.2f} per week but its bounds allow "
                    f"{lo:,.2f} to {hi:,.2f}; unlock it or widen its bounds"
                )
            lo = hi = value
        rows.append(
            {"channel": ch, "current": p.current[i], "min": lo, "max": hi, "locked": is_locked}
        )
    return pd.DataFrame(rows)


def _check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise BudgetError(
            f"objective {objective!r} is unknown; choose from {', '.join(OBJECTIVES)}"
        )


def _list_amounts(frame: pd.DataFrame, col: str) -> str:
    shown = frame[frame[col] > 0]
    if shown.empty:
        return "none"
    return ", ".join(f"{r.channel} {getattr(r, col):,.0f}" for r in shown.itertuples())


@dataclass(frozen=True)
class OptimizationResult:
    """An optimized plan (channel -> weekly spend) and how it was found.

    `value`/`start_value`: the objective per week (steady state) at the plan and at the start
    (the current plan projected onto the constraints); `limits`: resolve_bounds' table plus
    columns plan, marginal_roi, at_min, at_max; `lagrange`: the marginal objective per currency
    unit shared by the unbound channels (NaN when no budget constraint binds).
    """

    plan: dict[str, float]
    start: dict[str, float]
    objective: str
    value: float
    start_value: float
    limits: pd.DataFrame
    converged: bool
    message: str
    iterations: int
    lagrange: float = float("nan")
    notes: list[str] = field(default_factory=list)


def _objective_weights(p: _Params, objective: str) -> np.ndarray:
    """Objective value per currency unit of revenue for each channel."""
    if objective == "conversions":
        bad = [ch for ch, r in zip(p.channel, p.rpc, strict=True) if not (r > 0)]
        if bad:
            raise BudgetError(
                f"objective conversions needs revenue_per_conversion > 0 for every channel; "
                f"missing for {', '.join(bad)} in {CURVES_TABLE} (rebuild the `mmm` stage, or "
                "optimize revenue)"
            )
        return 1.0 / p.rpc
    return np.ones(len(p.channel))


def _project_to_budget(x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, target: float) -> np.ndarray:
    """Scale a start point so that clip(t * x0, lo, hi) sums to `target` (bisection on t).

    Channels at 0 get a small seed so that the scaling can move them too."""
    seed = x0 + max(float(x0.mean()), 1.0) * 1e-3
    total = lambda t: float(np.clip(t * seed, lo, hi).sum())  # noqa: E731
    t_lo, t_hi = 0.0, 1.0
    while total(t_hi) < target and t_hi < 1e15:
        t_hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (t_lo + t_hi)
        if total(mid) < target:
            t_lo = mid
        else:
            t_hi = mid
    return np.clip(t_hi * seed, lo, hi)


def optimize(
    curves: pd.DataFrame,
    total_budget: float | None = None,
    bounds: Mapping[str, BoundSpec] | None = None,
    locked: Mapping[str, float] | Iterable[str] | None = None,
    objective: str = "revenue",
    target_roi: float | None = None,
    start: Mapping[str, float] | None = None,
) -> OptimizationResult:
    """The weekly plan that maximises the objective (steady state) under the constraints.

    - objective "revenue" or "conversions": the whole `total_budget` (per week) is spent;
      "profit" (incremental revenue - spend): `total_budget` is a cap, since a currency unit
      that returns less than itself is better not spent; with no total, only the bounds limit it.
    - `target_roi`: instead of a fixed total, spend as much as keeps the plan's ROI (incremental
      revenue / spend, all channels) at or above the target; `total_budget` then acts as a cap.
    - `bounds` and `locked`: see `resolve_bounds`.
    Solved with SLSQP on analytic gradients, starting from `start` (default: the current plan)
    projected onto the constraints. Raises InfeasibleBudgetError naming the conflict when the
    budget, bounds, locks and target ROI cannot all hold.
    """
    _check_objective(objective)
    p = _params(curves)
    limits = resolve_bounds(curves, bounds, locked)
    weights = _objective_weights(p, objective)
    lo_all, hi_all = limits["min"].to_numpy(float), limits["max"].to_numpy(float)
    is_locked = limits["locked"].to_numpy(bool)
    free = ~is_locked & (hi_all > lo_all)
    fixed = ~free  # locked, or pinned by min == max
    fixed_spend = float(lo_all[fixed].sum())
    min_free, max_free = float(lo_all[free].sum()), float(hi_all[free].sum())
    profit_like = objective == "profit" or target_roi is not None
    notes: list[str] = []

    if total_budget is not None:
        total_budget = float(total_budget)
        if not math.isfinite(total_budget) or total_budget < 0:
            raise BudgetError(f"total budget is {total_budget}; it must be a number >= 0 per week")
        locked_spend = float(lo_all[is_locked].sum())
        if locked_spend > total_budget * (1 + 1e-12) + 1e-9:
            raise InfeasibleBudgetError(
                f"locked spend {locked_spend:,.0f} per week "
                f"({_list_amounts(limits[limits['locked']], 'min')}) exceeds the total budget "
                f"{total_budget:,.0f}; raise the budget or unlock a channel"
            )
        if fixed_spend + min_free > total_budget * (1 + 1e-12) + 1e-9:
            raise InfeasibleBudgetError(
                f"the total budget {total_budget:,.0f} per week is below the sum of the channel "
                f"minimums {fixed_spend + min_free:,.0f} (locked or pinned: "
                f"{_list_amounts(limits[fixed], 'min')}; minimums: "
                f"{_list_amounts(limits[free], 'min')}); lower the minimums or raise the budget"
            )
        if not profit_like and fixed_spend + max_free < total_budget * (1 - 1e-12) - 1e-9:
            raise InfeasibleBudgetError(
                f"the total budget {total_budget:,.0f} per week is above the sum of the channel "
                f"maximums {fixed_spend + max_free:,.0f} (locked or pinned: "
                f"{_list_amounts(limits[fixed], 'min')}; maximums: "
                f"{_list_amounts(limits[free], 'max')}); raise the maximums, unlock channels or "
                "lower the budget"
            )
    elif not profit_like:
        raise BudgetError(
            f"objective {objective} needs a total budget (or a target ROI); give total_budget"
        )
    if target_roi is not None:
        target_roi = float(target_roi)
        if not math.isfinite(target_roi) or target_roi <= 0:
            raise BudgetError(f"target ROI is {target_roi}; it must be a number > 0")

    x_fixed = np.where(fixed, lo_all, 0.0)
    start_plan = plan_vector(p, start) if start is not None else p.current.copy()
    idx = np.flatnonzero(free)
    lo, hi = lo_all[idx], hi_all[idx]
    budget_free = None if total_budget is None else total_budget - fixed_spend
    if budget_free is not None:
        # no free channel can take more than what is left once the others have their minimums
        hi = np.minimum(hi, budget_free - (min_free - lo))
    if not profit_like and budget_free is not None:
        x0 = _project_to_budget(start_plan[idx], lo, hi, budget_free)
    else:
        x0 = np.clip(start_plan[idx], lo, hi)
        if budget_free is not None and x0.sum() > budget_free:
            x0 = _project_to_budget(start_plan[idx], lo, hi, budget_free)

    fixed_g, _ = _steady(p, x_fixed)
    fixed_revenue = float((p.beta * fixed_g)[fixed].sum())
    fixed_value = float((weights * p.beta * fixed_g)[fixed].sum())
    beta, wts = p.beta[idx], weights[idx]
    sub = _Params(
        channel=tuple(p.channel[i] for i in idx),
        theta=p.theta[idx],
        K=p.K[idx],
        s=p.s[idx],
        beta=beta,
        beta_low=p.beta_low[idx],
        beta_high=p.beta_high[idx],
        rpc=p.rpc[idx],
        last_adstock=p.last_adstock[idx],
        current=p.current[idx],
        addressable=p.addressable[idx],
    )
    spend_cost = 1.0 if objective == "profit" else 0.0

    def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        g, dg = _steady(sub, x)
        value = fixed_value + float(np.sum(wts * beta * g)) - spend_cost * (x.sum() + fixed_spend)
        return value, wts * beta * dg - spend_cost

    def full_value(x: np.ndarray) -> float:
        return value_and_grad(x)[0]

    start_value = full_value(x0)
    if len(idx) == 0:
        plan = x_fixed
        result_plan = dict(zip(p.channel, map(float, plan), strict=True))
        return OptimizationResult(
            plan=result_plan,
            start=result_plan,
            objective=objective,
            value=start_value,
            start_value=start_value,
            limits=_limits_table(p, limits, x_fixed),
            converged=True,
            message="every channel is locked or pinned by its bounds",
            iterations=0,
            notes=notes,
        )

    # Scale variables and objective to order 1: SLSQP's tolerances are absolute.
    unit = max(
        float(budget_free or 0.0), float(x0.sum()), float(hi[np.isfinite(hi)].sum() or 0), 1.0
    )
    unit = max(unit / len(idx), 1e-9)
    fscale = max(abs(start_value), float(np.sum(wts * beta)) * DAYS_PER_WEEK * 1e-3, 1e-9)

    def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = value_and_grad(u * unit)
        return -v / fscale, -g * unit / fscale

    constraints = []
    if budget_free is not None:
        ones = np.ones(len(idx))
        if profit_like:
            constraints.append(
                {
                    "type": "ineq",
                    "fun": lambda u: (budget_free - u.sum() * unit) / unit,
                    "jac": lambda u: -ones,
                }
            )
        else:
            constraints.append(
                {
                    "type": "eq",
                    "fun": lambda u: (u.sum() * unit - budget_free) / unit,
                    "jac": lambda u: ones,
                }
            )
    if target_roi is not None:

        def roi_gap(u: np.ndarray) -> float:
            x = u * unit
            g, _ = _steady(sub, x)
            revenue = fixed_revenue + float(np.sum(beta * g))
            return (revenue - target_roi * (x.sum() + fixed_spend)) / (unit * len(idx))

        def roi_gap_jac(u: np.ndarray) -> np.ndarray:
            _, dg = _steady(sub, u * unit)
            return (beta * dg - target_roi) / len(idx)

        constraints.append({"type": "ineq", "fun": roi_gap, "jac": roi_gap_jac})

    scipy_bounds = [
        (l_ / unit, h_ / unit if math.isfinite(h_) else None) for l_, h_ in zip(lo, hi, strict=True)
    ]
    starts = [x0]
    if np.any(sub.s > 1.0):
        # S-shaped curves are flat near zero, so from the current plan SLSQP may never fund a
        # channel it starts without; a second start at each channel's half-saturation spend
        # (scaled to the budget) guards against that local optimum. The better plan wins.
        anchor = DAYS_PER_WEEK * sub.K * (1.0 - sub.theta)
        if budget_free is not None and (not profit_like or anchor.sum() > budget_free):
            starts.append(_project_to_budget(anchor, lo, hi, budget_free))
        else:
            starts.append(np.clip(anchor, lo, hi))

    def meets_constraints(x: np.ndarray) -> bool:
        ok = True
        if budget_free is not None:
            gap = x.sum() - budget_free
            tol = 1e-6 * max(budget_free, 1.0)
            ok = gap <= tol if profit_like else abs(gap) <= tol
        if target_roi is not None:
            ok = ok and roi_gap(x / unit) >= -1e-6 * max(float(np.sum(beta)), 1.0) / len(idx)
        return ok

    best = None
    for start_x in starts:
        res = minimize(
            fun,
            start_x / unit,
            jac=True,
            method="SLSQP",
            bounds=scipy_bounds,
            constraints=constraints,
            options={"ftol": 1e-12, "maxiter": 1000},
        )
        x = np.clip(res.x * unit, lo, hi)
        if budget_free is not None and not profit_like:
            x = _rebalance(x, lo, hi, budget_free)
        candidate = (meets_constraints(x), full_value(x), x, res)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    feasible, value, x, res = best
    plan_vec = x_fixed.copy()
    plan_vec[idx] = x

    if target_roi is not None:
        g, _ = _steady(sub, x)
        revenue = fixed_revenue + float(np.sum(beta * g))
        spend = float(x.sum()) + fixed_spend
        roi = revenue / spend if spend > 0 else float("inf")
        if spend <= 1e-9 * unit * len(idx):
            raise InfeasibleBudgetError(
                f"target ROI {target_roi:.2f} cannot be reached: no plan with spend above zero "
                f"returns that much (the best ROI any channel reaches on its curve is "
                f"{_best_roi(sub):.2f}); lower the target ROI"
            )
        if roi < target_roi * (1 - 1e-6):
            raise InfeasibleBudgetError(
                f"target ROI {target_roi:.2f} cannot be reached: the best plan found returns "
                f"{roi:.2f} on {spend:,.0f} per week, and the minimums and locks force "
                f"{fixed_spend + float(lo.sum()):,.0f} of spend "
                f"({_list_amounts(limits[limits['min'] > 0], 'min')}); lower the target ROI or "
                "the minimums"
            )
        notes.append(f"ROI of the plan: {roi:.3f} (target {target_roi:.3f})")
    if not feasible:
        raise BudgetError(
            f"the optimizer could not meet the budget ({res.message}); the plan it reached spends "
            f"{x.sum() + fixed_spend:,.0f} per week. Try wider bounds or another start"
        )
    if value < start_value - 1e-9 * max(abs(start_value), 1.0):
        # SLSQP only ever improves on a feasible start; keep the start if it did not
        notes.append("the optimizer did not improve on the starting plan; kept the start")
        x = x0
        plan_vec[idx] = x
        value = start_value
    _, grad = value_and_grad(x)
    interior = (x > lo + 1e-6 * unit) & (x < hi - 1e-6 * unit)
    lagrange = float(np.median(grad[interior])) if interior.any() else float("nan")
    result_plan = dict(zip(p.channel, map(float, plan_vec), strict=True))
    start_vec = x_fixed.copy()
    start_vec[idx] = x0
    return OptimizationResult(
        plan=result_plan,
        start=dict(zip(p.channel, map(float, start_vec), strict=True)),
        objective=objective,
        value=float(value),
        start_value=float(start_value),
        limits=_limits_table(p, limits, plan_vec),
        converged=bool(res.success),
        message=str(res.message),
        iterations=int(res.nit),
        lagrange=lagrange,
        notes=notes,
    )


def _best_roi(p: _Params) -> float:
    """The highest steady-state ROI (revenue / spend) any channel reaches, on a log grid of
    weekly spend from 1e-4 to 1e3 times its half saturation."""
    best = 0.0
    for i in range(len(p.channel)):
        scale = p.K[i] * DAYS_PER_WEEK * (1 - p.theta[i])
        w = scale * np.logspace(-4, 3, 400)
        one = _Params(*(v[i : i + 1] if isinstance(v, np.ndarray) else v for v in _fields(p)))
        g, _ = _steady(one, w)
        best = max(best, float(np.max(p.beta[i] * g / w)))
    return best


def _rebalance(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, target: float) -> np.ndarray:
    """Spread the rounding gap left by clipping over channels with room, so the plan sums
    exactly to the budget (the gap is at most the solver's tolerance)."""
    for _ in range(5):
        gap = target - x.sum()
        if abs(gap) <= 1e-12 * max(target, 1.0):
            break
        room = (hi - x) if gap > 0 else (x - lo)
        room = np.where(np.isfinite(room), room, abs(gap))
        if room.sum() <= 0:
            break
        x = np.clip(x + np.sign(gap) * room / room.sum() * min(abs(gap), room.sum()), lo, hi)
    return x


def _limits_table(p: _Params, limits: pd.DataFrame, vec: np.ndarray) -> pd.DataFrame:
    """resolve_bounds' table plus the plan, its marginal ROI and which limits bind."""
    table = limits.copy()
    table["plan"] = vec
    _, dg = _steady(p, vec)
    table["marginal_roi"] = p.beta * dg
    tol = 1e-6 * max(float(vec.sum()), 1.0)
    table["at_min"] = ~table["locked"] & (vec <= table["min"] + tol)
    table["at_max"] = ~table["locked"] & (vec >= table["max"] - tol)
    return table


# ---------------------------------------------------------------------------------------------
# Benchmarks (`ccrm bench --only budget_whatif budget_optimize`; synthetic 12-channel curves)


def _percentiles_ms(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000.0
    return {
        "median_ms": round(float(np.median(ms)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def bench_whatif(ctx: object, evaluations: int = 300) -> tuple[int, dict]:
    """Time what-if evaluations of random 12-channel plans: `predict` alone, and everything the
    page recomputes when a slider moves (two predictions, waterfall, two 13-week forecasts, CSV,
    and the three figures). Returns (evaluations, {predict_*, page_*} in milliseconds)."""
    import time

    curves = synthetic_curves(12, seed=42)
    current = current_plan(curves)
    rng = np.random.default_rng(0)
    plans = [
        {ch: v * f for (ch, v), f in zip(current.items(), rng.uniform(0.3, 2.0, 12), strict=True)}
        for _ in range(evaluations)
    ]
    predict(curves, plans[0])  # warm numpy/pandas code paths once
    t_predict, t_page = [], []
    for plan in plans:
        t0 = time.perf_counter()
        predict(curves, plan)
        t_predict.append(time.perf_counter() - t0)
    for plan in plans[: max(evaluations // 10, 10)]:
        t0 = time.perf_counter()
        predict(curves, current)
        predict(curves, plan)
        fall = waterfall(curves, current, plan)
        series = {
            "current": forecast_totals(forecast(curves, current, 13)),
            "proposed": forecast_totals(forecast(curves, plan, 13)),
        }
        plan_csv(curves, plan)
        figure_response_curves(curves, current, plan)
        figure_waterfall(fall)
        figure_forecast(series)
        t_page.append(time.perf_counter() - t0)
    figures = {f"predict_{k}": v for k, v in _percentiles_ms(t_predict).items()}
    figures |= {f"page_{k}": v for k, v in _percentiles_ms(t_page).items()}
    return evaluations, figures


def bench_optimize(ctx: object, runs: int = 20) -> tuple[int, dict]:
    """Time `optimize` on 12 synthetic channels: random totals (0.5-1.5x current) within 30-300%
    of current spend, revenue objective. Returns (runs, {median/p95/max ms, mean gain %})."""
    import time

    curves = synthetic_curves(12, seed=42)
    total = sum(current_plan(curves).values())
    rng = np.random.default_rng(1)
    seconds, gains = [], []
    for factor in rng.uniform(0.5, 1.5, runs):
        t0 = time.perf_counter()
        result = optimize(
            curves, total * factor, bounds={"*": {"min_share": 0.3, "max_share": 3.0}}
        )
        seconds.append(time.perf_counter() - t0)
        gains.append(result.value / result.start_value - 1.0)
    figures = _percentiles_ms(seconds) | {"mean_gain_pct": round(100 * float(np.mean(gains)), 2)}
    return runs, figures


# ---------------------------------------------------------------------------------------------
# Segment focus


def segment_focus_options(con: duckdb.DuckDBPyConnection) -> dict:
    """What the segment focus can offer: {"available": bool, "note": str, "schemes": {scheme:
    [segments]}, "models": [attribution models]}.

    Needs `mart_attribution` (segment-level attribution, stage `attribution`) and `mart_customer`
    (CLV and segment columns, stage `value`); a scheme is offered when it is a column of
    mart_customer and has rows in mart_attribution.
    """
    missing = [t for t in ("mart_attribution", "mart_customer") if not store.table_exists(con, t)]
    if missing:
        return {
            "available": False,
            "note": f"needs {' and '.join(missing)}: run the `attribution` and `value` build "
            "stages",
            "schemes": {},
            "models": [],
        }
    customer_cols = set(
        con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'mart_customer'"
        )
        .df()["column_name"]
        .tolist()
    )
    if "clv" not in customer_cols:
        return {
            "available": False,
            "note": "mart_customer has no clv column: run the `value` build stage",
            "schemes": {},
            "models": [],
        }
    rows = con.execute(
        "SELECT DISTINCT scheme, segment FROM mart_attribution "
        "WHERE scheme <> 'all' AND segment IS NOT NULL ORDER BY scheme, segment"
    ).fetchall()
    schemes: dict[str, list[str]] = {}
    for scheme, segment in rows:
        if scheme in customer_cols:
            schemes.setdefault(scheme, []).append(str(segment))
    models = [
        r[0]
        for r in con.execute("SELECT DISTINCT model FROM mart_attribution ORDER BY 1").fetchall()
    ]
    if not schemes:
        return {
            "available": False,
            "note": "mart_attribution has no segment-level rows for a segment column of "
            "mart_customer: rebuild the `attribution` stage",
            "schemes": {},
            "models": models,
        }
    return {"available": True, "note": "", "schemes": schemes, "models": models}


def segment_value_weights(
    con: duckdb.DuckDBPyConnection,
    scheme: str,
    segments: Iterable[str] | None = None,
    model: str | None = None,
) -> pd.DataFrame:
    """Per addressable channel, how much customer lifetime value its conversions bring.

    For channel c with attributed conversions n(c, g) in segment g (mart_attribution, one
    attribution `model`) and mean CLV v(g) of the segment's customers (mart_customer):
        V(c) = sum over focus segments g of n(c, g) * v(g)  /  sum over all g of n(c, g)
        weight(c) = V(c) / V(all addressable channels pooled)
    so weight > 1 means the channel converts more (focus-segment) lifetime value per conversion
    than the average addressable channel. With no `segments` every segment is in focus.
    Returns channel, conversions, focus_conversions, clv_per_conversion, weight.
    `scheme` must be one of segment_focus_options' schemes (it names a mart_customer column).
    """
    options = segment_focus_options(con)
    if not options["available"]:
        raise BudgetError(f"segment focus is unavailable: {options['note']}")
    if scheme not in options["schemes"]:
        raise BudgetError(
            f"segment scheme {scheme!r} is unknown; choose from {', '.join(options['schemes'])}"
        )
    models = options["models"]
    if model is None:
        model = next((m for m in ATTRIBUTION_PREFERENCE if m in models), models[0])
    elif model not in models:
        raise BudgetError(
            f"attribution model {model!r} is unknown; choose from {', '.join(models)}"
        )
    # scheme is checked against mart_customer's own column names above, never raw user text
    clv = con.execute(
        f"SELECT CAST({store.quote_ident(scheme)} AS VARCHAR) AS segment, avg(clv) AS clv "  # noqa: S608
        "FROM mart_customer GROUP BY 1"
    ).df()
    attributed = con.execute(
        "SELECT channel, CAST(segment AS VARCHAR) AS segment, sum(conversions) AS conversions "
        "FROM mart_attribution WHERE scheme = ? AND model = ? GROUP BY 1, 2",
        [scheme, model],
    ).df()
    frame = attributed.merge(clv, on="segment", how="left")
    frame["clv"] = frame["clv"].fillna(0.0)
    focus = set(options["schemes"][scheme] if segments is None else map(str, segments))
    frame["in_focus"] = frame["segment"].isin(focus)
    frame["focus_value"] = np.where(frame["in_focus"], frame["conversions"] * frame["clv"], 0.0)
    frame["focus_conversions"] = np.where(frame["in_focus"], frame["conversions"], 0.0)
    per = frame.groupby("channel", as_index=False)[
        ["conversions", "focus_conversions", "focus_value"]
    ].sum()
    per = per[per["channel"].isin(store.ADDRESSABLE_CHANNELS) & (per["conversions"] > 0)]
    pooled = per["focus_value"].sum() / per["conversions"].sum() if len(per) else 0.0
    per["clv_per_conversion"] = per["focus_value"] / per["conversions"]
    per["weight"] = per["clv_per_conversion"] / pooled if pooled > 0 else 1.0
    return per[
        ["channel", "conversions", "focus_conversions", "clv_per_conversion", "weight"]
    ].reset_index(drop=True)


def apply_value_weights(curves: pd.DataFrame, weights: pd.DataFrame) -> pd.DataFrame:
    """Curves whose addressable channels' revenue counts at their lifetime-value weight.

    beta, beta_low and beta_high of each addressable channel in `weights` are multiplied by its
    weight (column value_weight); channels without a weight (aggregate media such as tv and print,
    which attribution cannot see per segment, or addressable channels without attributed
    conversions) keep weight 1. The objective then reads as value-weighted revenue.
    """
    out = curves.copy()
    w = dict(zip(weights["channel"], weights["weight"], strict=True))
    out["value_weight"] = [
        float(w.get(ch, 1.0)) if addressable else 1.0
        for ch, addressable in zip(out["channel"], out["addressable"], strict=True)
    ]
    for col in ("beta", "beta_low", "beta_high"):
        out[col] = out[col] * out["value_weight"]
    return out


# ---------------------------------------------------------------------------------------------
# Scenarios


SCENARIOS_DDL = f"""
CREATE TABLE IF NOT EXISTS {SCENARIOS_TABLE} (
    name          VARCHAR NOT NULL,   -- user text, stored as data (parameterised)
    channel       VARCHAR NOT NULL,
    weekly_spend  DOUBLE NOT NULL,    -- currency units per week
    objective     VARCHAR,
    total_budget  DOUBLE,             -- per week, as set when saved
    settings      VARCHAR,            -- JSON: constraints, segment focus, ...
    saved_at      TIMESTAMP NOT NULL
)
"""


def validate_scenario_name(name: str) -> str:
    """The name trimmed of surrounding spaces; ScenarioNameError when it is empty, longer than
    SCENARIO_NAME_MAX characters, or holds control or invisible formatting characters (the
    shared rule of `validation.clean_name`)."""
    return validation.clean_name(
        name, "scenario name", SCENARIO_NAME_MAX, ScenarioNameError, example="Q3 shift to search"
    )


def save_scenario(
    con: duckdb.DuckDBPyConnection,
    name: str,
    plan: Mapping[str, float],
    *,
    objective: str | None = None,
    total_budget: float | None = None,
    settings: Mapping | None = None,
) -> str:
    """Store a plan under a name (replacing a scenario of the same name) in one transaction;
    returns the cleaned name. Plans are weekly spend per channel."""
    clean = validate_scenario_name(name)
    rows = []
    for ch, v in plan.items():
        value = float(v)
        if not math.isfinite(value) or value < 0:
            raise BudgetError(f"scenario {clean!r}: spend for {ch} is {v!r}; it must be >= 0")
        rows.append(value)
    if not rows:
        raise BudgetError(f"scenario {clean!r} has no channels; nothing to save")
    settings_json = json.dumps(dict(settings or {}), sort_keys=True, default=str)
    with store.transaction(con):
        con.execute(SCENARIOS_DDL)
        con.execute(f"DELETE FROM {SCENARIOS_TABLE} WHERE name = ?", [clean])  # noqa: S608
        con.executemany(
            f"INSERT INTO {SCENARIOS_TABLE} VALUES (?, ?, ?, ?, ?, ?, current_timestamp)",  # noqa: S608
            [
                [clean, str(ch), value, objective, total_budget, settings_json]
                for ch, value in zip(plan, rows, strict=True)
            ],
        )
    return clean


def list_scenarios(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Saved scenarios, newest first: name, channels, weekly_spend (total), objective,
    total_budget, saved_at. Empty when none was saved yet."""
    if not store.table_exists(con, SCENARIOS_TABLE):
        return pd.DataFrame(
            columns=["name", "channels", "weekly_spend", "objective", "total_budget", "saved_at"]
        )
    return con.execute(
        f"""
        SELECT name, count(*) AS channels, sum(weekly_spend) AS weekly_spend,
               any_value(objective) AS objective, any_value(total_budget) AS total_budget,
               max(saved_at) AS saved_at
        FROM {SCENARIOS_TABLE} GROUP BY name ORDER BY saved_at DESC, name
        """  # noqa: S608 our table name
    ).df()


@dataclass(frozen=True)
class Scenario:
    name: str
    plan: dict[str, float]  # weekly spend per channel
    objective: str | None
    total_budget: float | None
    settings: dict
    saved_at: object


def load_scenario(con: duckdb.DuckDBPyConnection, name: str) -> Scenario:
    """A saved scenario by name; BudgetError naming the saved ones when there is none."""
    rows = []
    if store.table_exists(con, SCENARIOS_TABLE):
        rows = con.execute(
            f"SELECT channel, weekly_spend, objective, total_budget, settings, saved_at "  # noqa: S608
            f"FROM {SCENARIOS_TABLE} WHERE name = ? ORDER BY channel",
            [name],
        ).fetchall()
    if not rows:
        saved = list_scenarios(con)["name"].tolist()
        raise BudgetError(
            f"no saved scenario named {validation.quoted(name)}; "
            f"saved: {', '.join(saved) if saved else 'none'}"
        )
    _, _, objective, total, settings, saved_at = rows[0]
    return Scenario(
        name=name,
        plan={r[0]: float(r[1]) for r in rows},
        objective=objective,
        total_budget=None if total is None or pd.isna(total) else float(total),
        settings=json.loads(settings) if settings else {},
        saved_at=saved_at,
    )


def delete_scenario(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Delete a saved scenario; returns the rows removed (0 when there was none)."""
    if not store.table_exists(con, SCENARIOS_TABLE):
        return 0
    with store.transaction(con):
        removed = con.execute(
            f"DELETE FROM {SCENARIOS_TABLE} WHERE name = ?",  # noqa: S608 our table name
            [name],
        ).fetchall()[0][0]
    return int(removed)


def compare_plans(curves: pd.DataFrame, plans: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Side by side comparison of named plans (at most MAX_COMPARED_SCENARIOS + 2 columns).

    One row per measure (weekly spend per channel, then spend, revenue with its 90% interval,
    conversions, ROI and profit, all per week in steady state), one column per plan.
    """
    columns = {}
    for label, plan in plans.items():
        aligned, _ = align_plan(curves, plan)
        pred = predict(curves, aligned)
        col = {f"spend: {ch}": v for ch, v in aligned.items()}
        col |= {
            "total spend": pred.spend,
            "revenue": pred.revenue,
            "revenue low (90%)": pred.revenue_low,
            "revenue high (90%)": pred.revenue_high,
            "conversions": pred.conversions,
            "ROI": pred.roi,
            "profit": pred.profit,
        }
        columns[label] = col
    frame = pd.DataFrame(columns)
    frame.index.name = "measure"
    return frame.reset_index()


# ---------------------------------------------------------------------------------------------
# Figures (data in, go.Figure out)

CURRENT_COLOUR = "#8c959f"
PROPOSED_COLOUR = "#0969da"
UP_COLOUR, DOWN_COLOUR = "#2da44e", "#cf222e"


def figure_response_curves(
    curves: pd.DataFrame,
    current: Mapping[str, float],
    proposed: Mapping[str, float],
    columns: int = 4,
) -> go.Figure:
    """One panel per channel: steady-state weekly revenue against weekly spend (with the 90%
    band), the current and proposed points, and the marginal ROI at both in the panel title."""
    p = _params(curves)
    cur, new = plan_vector(p, current), plan_vector(p, proposed)
    _, dcur = _steady(p, cur)
    _, dnew = _steady(p, new)
    n = len(p.channel)
    rows = max(1, math.ceil(n / columns))
    titles = [
        f"{ch}<br><sup>mROI {p.beta[i] * dcur[i]:.2f} → {p.beta[i] * dnew[i]:.2f}</sup>"
        for i, ch in enumerate(p.channel)
    ]
    # The grid is laid out by hand (plain dicts, one Figure call): make_subplots plus add_trace
    # and update_annotations made this figure most of a page refresh's time.
    hgap, vgap = 0.2 / columns, 0.3 / rows
    width, height = (1 - (columns - 1) * hgap) / columns, (1 - (rows - 1) * vgap) / rows
    layout: dict = {"annotations": []}
    for i in range(n):
        r, c = divmod(i, columns)
        x0, y1 = c * (width + hgap), 1 - r * (height + vgap)
        suffix = str(i + 1) if i else ""
        layout[f"xaxis{suffix}"] = {"domain": [x0, x0 + width], "anchor": f"y{suffix}"}
        layout[f"yaxis{suffix}"] = {"domain": [y1 - height, y1], "anchor": f"x{suffix}"}
        layout["annotations"].append(
            {
                "text": titles[i],
                "x": x0 + width / 2,
                "y": y1,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 12},
            }
        )
    traces: list[dict] = []
    for i in range(n):
        axes = {"xaxis": f"x{i + 1 if i else ''}", "yaxis": f"y{i + 1 if i else ''}"}
        # wide enough to show the saturation even for a channel with little or no spend
        half_weekly = DAYS_PER_WEEK * p.K[i] * (1.0 - p.theta[i])
        top = max(2.0 * max(cur[i], new[i], p.current[i]), 3.0 * half_weekly, 1.0)
        xs = np.linspace(0.0, top, 80)
        one = _Params(*(v[i : i + 1] if isinstance(v, np.ndarray) else v for v in _fields(p)))
        g, _ = _steady(one, xs)
        show = i == 0
        traces.append(
            axes
            | {
                "type": "scatter",
                "x": np.concatenate([xs, xs[::-1]]),
                "y": np.concatenate([p.beta_high[i] * g, (p.beta_low[i] * g)[::-1]]),
                "fill": "toself",
                "fillcolor": "rgba(9,105,218,0.12)",
                "line": {"width": 0},
                "hoverinfo": "skip",
                "name": "90% interval",
                "legendgroup": "band",
                "showlegend": show,
            }
        )
        traces.append(
            axes
            | {
                "type": "scatter",
                "x": xs,
                "y": p.beta[i] * g,
                "line": {"color": PROPOSED_COLOUR, "width": 2},
                "name": "response",
                "legendgroup": "curve",
                "showlegend": show,
                "hovertemplate": "spend %{x:,.0f}/wk<br>revenue %{y:,.0f}/wk<extra></extra>",
            }
        )
        for label, vec, deriv, colour, symbol in (
            ("current", cur, dcur, CURRENT_COLOUR, "circle"),
            ("proposed", new, dnew, PROPOSED_COLOUR, "diamond"),
        ):
            g_pt, _ = _steady(one, np.array([vec[i]]))
            traces.append(
                axes
                | {
                    "type": "scatter",
                    "x": [vec[i]],
                    "y": [p.beta[i] * g_pt[0]],
                    "mode": "markers",
                    "marker": {
                        "color": colour,
                        "size": 11,
                        "symbol": symbol,
                        "line": {"width": 1},
                    },
                    "name": label,
                    "legendgroup": label,
                    "showlegend": show,
                    "customdata": [[p.beta[i] * deriv[i]]],
                    "hovertemplate": label
                    + ": spend %{x:,.0f}/wk<br>revenue %{y:,.0f}/wk<br>"
                    + "marginal ROI %{customdata[0]:.2f}<extra></extra>",
                }
            )
    top_margin, bottom_margin, fig_height = 90, 30, 260 * rows + 60
    plot_height = fig_height - top_margin - bottom_margin
    layout |= {
        "height": fig_height,
        "margin": {"l": 10, "r": 10, "t": top_margin, "b": bottom_margin},
        # above the first row's two-line panel titles (about 40 px)
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1 + 45 / plot_height, "x": 0},
    }
    return go.Figure({"data": traces, "layout": layout})


def _fields(p: _Params) -> list:
    return [getattr(p, f) for f in p.__dataclass_fields__]


def figure_waterfall(frame: pd.DataFrame, label: str = "revenue per week") -> go.Figure:
    """Waterfall from the current total to the proposed one, one step per channel (`waterfall`)."""
    start, end = frame["current"].sum(), frame["proposed"].sum()
    steps = frame[frame["change"].abs() > 1e-9 * max(abs(start), 1.0)]
    fig = go.Figure(
        go.Waterfall(
            x=["current", *steps["channel"], "proposed"],
            measure=["absolute", *["relative"] * len(steps), "total"],
            y=[start, *steps["change"], end],
            increasing=dict(marker_color=UP_COLOUR),
            decreasing=dict(marker_color=DOWN_COLOUR),
            totals=dict(marker_color=PROPOSED_COLOUR),
            connector=dict(line=dict(color="#d0d7de")),
            hovertemplate="%{x}: %{y:,.0f}<extra></extra>",
        )
    )
    low = min(start, end, (start + steps["change"].cumsum()).min() if len(steps) else start)
    high = max(start, end, (start + steps["change"].cumsum()).max() if len(steps) else start)
    pad = max((high - low) * 0.3, abs(high) * 0.01, 1e-9)
    fig.update_layout(
        height=360,
        margin=dict(l=10, r=10, t=10, b=30),
        yaxis=dict(title=label, range=[max(low - pad, 0.0) if low >= 0 else low - pad, high + pad]),
        showlegend=False,
    )
    return fig


def figure_forecast(series: Mapping[str, pd.DataFrame]) -> go.Figure:
    """Weekly revenue of each plan's forecast (`forecast_totals` frames); the 90% band is drawn
    for the last plan only (overlapping bands hide the lines they surround)."""
    fig = go.Figure()
    colours = [CURRENT_COLOUR, PROPOSED_COLOUR, "#bf8700", "#8250df", "#1a7f37", "#cf222e"]
    for k, (label, frame) in enumerate(series.items()):
        colour = colours[k % len(colours)]
        x = frame["week_start"] if "week_start" in frame else frame["week"]
        if k == len(series) - 1:
            fig.add_trace(
                go.Scatter(
                    x=list(x) + list(x)[::-1],
                    y=list(frame["revenue_high"]) + list(frame["revenue_low"])[::-1],
                    fill="toself",
                    fillcolor=_rgba(colour, 0.12),
                    line=dict(width=0),
                    hoverinfo="skip",
                    name=f"{label}: 90% interval",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=frame["revenue"],
                name=label,
                mode="lines+markers",
                line=dict(color=colour, width=2),
                hovertemplate=label + ": %{y:,.0f}<extra></extra>",
            )
        )
    fig.update_layout(
        height=360,
        margin=dict(l=10, r=10, t=40, b=30),
        yaxis_title="incremental revenue per week",
        xaxis_title="week starting" if any("week_start" in f for f in series.values()) else "week",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        hovermode="x unified",
    )
    return fig


def figure_allocation(plans: Mapping[str, Mapping[str, float]]) -> go.Figure:
    """Grouped bars of weekly spend per channel, one bar group per channel, one colour per plan."""
    fig = go.Figure()
    colours = [CURRENT_COLOUR, PROPOSED_COLOUR, "#bf8700", "#8250df", "#1a7f37", "#cf222e"]
    for k, (label, plan) in enumerate(plans.items()):
        fig.add_trace(
            go.Bar(
                x=list(plan),
                y=list(plan.values()),
                name=label,
                marker_color=colours[k % len(colours)],
                hovertemplate=label + " %{x}: %{y:,.0f}/wk<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        height=320,
        margin=dict(l=10, r=10, t=10, b=30),
        yaxis_title="spend per week",
        legend=dict(orientation="h", y=1.1, x=0),
    )
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def slider_ceiling(value: float) -> float:
    """A round upper end for a spend slider: the next 1, 2, 2.5 or 5 x 10^k at or above value."""
    if not value > 0:
        return 100.0
    exp = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * exp >= value * (1 - 1e-12):
            return m * exp
    return 10.0 * exp
