"""What-if of the budget module: a plan's expected outcome, forecast, waterfall and export.

A plan maps media channel -> spend per WEEK (currency units). `predict` gives the weekly outcome
in steady state (or the mean of the next N weeks), `forecast` week by week from the adstock at
the end of the data; intervals are the MMM's 90% interval of beta, channel half-widths combined
in quadrature for totals. Revenue is incremental revenue, calibrated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from ccrm_core.conductor.budget.curves import (
    DAYS_PER_WEEK,
    BudgetError,
    _Params,
    _params,
    _path,
    _steady,
)
from ccrm_core.foundation import csv_export

OBJECTIVES = ("revenue", "conversions", "profit")


def _check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise BudgetError(
            f"objective {objective!r} is unknown; choose from {', '.join(OBJECTIVES)}"
        )


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
    """The plan as CSV text (see `plan_table` for the columns; money per week; formula cells
    neutralised by csv_export)."""
    return csv_export.csv_text(plan_table(curves, plan), float_format="%.4f")
