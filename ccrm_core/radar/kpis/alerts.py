"""Stage kpi_alerts: forecasts of daily and weekly revenue, orders and new customers (all
channels and each busy sales channel) with their prediction bands (`mart_kpi_forecast`), and
the out-of-band points merged into alerts with a one-line message (`mart_kpi_alerts`).

The forecast model itself is in `forecast`; money is in currency units, dates are days (daily
grain) or Mondays (weekly grain).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.foundation.pipeline import BuildContext, replace_table
from ccrm_core.radar.kpis.forecast import ForecastSettings, fit_forecast
from ccrm_core.radar.kpis.marts import ALL
from ccrm_core.radar.kpis.tiles import format_value

METRICS = {
    "revenue": ("Revenue", "currency"),
    "orders": ("Orders", "count"),
    "new_customers": ("New customers", "count"),
}


def group_alerts(forecast: pd.DataFrame, grain: str = "day") -> pd.DataFrame:
    """Merge out-of-band points of one series moving the same way into one alert (daily points
    at most two quiet days apart, weekly points in consecutive weeks).

    Returns start_date, end_date, points, direction ('drop' or 'spike'), actual and expected
    (sums over the alert's points), change (= actual - expected), change_pct, score (largest
    |score| of its points). Newest first.
    """
    cols = [
        "start_date",
        "end_date",
        "points",
        "direction",
        "actual",
        "expected",
        "change",
        "change_pct",
        "score",
    ]
    f = forecast[forecast["is_alert"]].copy()
    if f.empty:
        return pd.DataFrame(columns=cols)
    step = 1 if grain == "day" else 7
    f["direction"] = np.where(f["score"] < 0, "drop", "spike")
    dates = pd.to_datetime(f["date"])
    # days of one move may straddle a quiet day or two (daily grain): keep them together
    max_gap = 3 * step if grain == "day" else step
    new_group = (dates.diff().dt.days > max_gap) | (f["direction"] != f["direction"].shift())
    f["group"] = new_group.cumsum()
    g = f.groupby("group").agg(
        start_date=("date", "min"),
        end_date=("date", "max"),
        points=("date", "size"),
        direction=("direction", "first"),
        actual=("actual", "sum"),
        expected=("expected", "sum"),
        score=("score", lambda x: float(np.max(np.abs(x)))),
    )
    if grain == "week":
        g["end_date"] = g["end_date"] + timedelta(days=6)
    g["change"] = g["actual"] - g["expected"]
    g["change_pct"] = np.where(g["expected"] > 0, g["change"] / g["expected"], np.nan)
    return g[cols].sort_values("end_date", ascending=False).reset_index(drop=True)


def _series_to_monitor(con: duckdb.DuckDBPyConnection, min_daily_orders: float) -> list[str]:
    """'all' plus every sales channel with at least `min_daily_orders` orders a day on average
    (thinner series are mostly noise and would raise false alerts)."""
    # per day of the whole history, not of the channel's own days: the series monitored is the
    # whole history (days without orders count as 0), so a channel that sold for a month is thin
    rows = con.execute(
        "SELECT channel, sum(orders) / (SELECT greatest(1, date_diff('day', min(date), "
        "max(date)) + 1) FROM mart_daily_kpis) FROM mart_daily_kpis GROUP BY channel "
        "ORDER BY channel"
    ).fetchall()
    return [ALL] + [c for c, per_day in rows if per_day >= min_daily_orders]


def _daily_series(con: duckdb.DuckDBPyConnection, channel: str) -> pd.DataFrame:
    frame = con.execute(
        "SELECT date, sum(revenue) AS revenue, sum(orders) AS orders, "
        "sum(new_customers) AS new_customers FROM mart_daily_kpis "
        "WHERE channel = ? OR ? = 'all' GROUP BY date ORDER BY date",
        [channel, channel],
    ).df()
    return frame


def _complete_days(frame: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    idx = pd.date_range(start, end, freq="D")
    out = frame.assign(date=pd.to_datetime(frame["date"])).set_index("date").reindex(idx)
    return out.fillna(0.0).rename_axis("date").reset_index()


def _weekly(frame: pd.DataFrame) -> pd.DataFrame:
    """Sum complete Monday-to-Sunday weeks; the date is the Monday."""
    f = frame.copy()
    f["week"] = f["date"] - pd.to_timedelta(f["date"].dt.day_of_week, unit="D")
    g = f.groupby("week").agg(
        days=("date", "size"),
        revenue=("revenue", "sum"),
        orders=("orders", "sum"),
        new_customers=("new_customers", "sum"),
    )
    g = g[g["days"] == 7].drop(columns="days")
    return g.rename_axis("date").reset_index()


def alert_message(metric: str, channel: str, row: Mapping) -> str:
    """One line saying what moved, where, when and by how much."""
    label, unit = METRICS[metric]
    where = "all channels" if channel == ALL else f"channel {channel}"
    actual, expected = row["actual"], row["expected"]
    if row["direction"] == "drop":
        how = f"fell {1 - actual / expected:.0%} below forecast" if expected > 0 else "fell"
    elif expected > 0 and actual >= 2 * expected:
        how = f"rose to {actual / expected:.1f}x forecast"
    elif expected > 0:
        how = f"rose {actual / expected - 1:.0%} above forecast"
    else:
        how = "rose from an expected zero"
    when = (
        f"on {row['start_date']}"
        if row["start_date"] == row["end_date"]
        else f"from {row['start_date']} to {row['end_date']}"
    )
    return (
        f"{label} ({where}) {how} {when}: "
        f"{format_value(actual, unit)} vs {format_value(expected, unit)} expected"
    )


def revenue_with_orders(revenue: pd.DataFrame, orders: pd.DataFrame, grain: str) -> int:
    """Flag revenue where orders moved and revenue moved with them (in place; returns the
    points newly flagged).

    Revenue is orders x order value, and order values are noisy, so a revenue band is wide: a
    60% revenue drop from lost orders can stay inside it for days while the orders series is far
    outside its own. For each run of order alerts, the revenue points of the same dates are
    flagged when revenue over the run moved the same way by at least half the orders' relative
    move (then "what moved" is revenue, through orders)."""
    added = 0
    for run in group_alerts(orders, grain).itertuples():
        if not run.expected:
            continue
        days = (
            pd.to_datetime(revenue["date"]).between(
                pd.Timestamp(run.start_date), pd.Timestamp(run.end_date)
            )
            & ~revenue["is_forecast"]
        )
        rev_actual = revenue.loc[days, "actual"].sum()
        rev_expected = revenue.loc[days, "expected"].sum()
        if not rev_expected:
            continue
        rev_change = rev_actual / rev_expected - 1
        order_change = run.actual / run.expected - 1
        if (
            np.sign(rev_change) == np.sign(order_change)
            and abs(rev_change) >= abs(order_change) / 2
        ):
            # the run's own days only (group_alerts' weekly end date is the week's last day)
            same = days & pd.Series(
                pd.to_datetime(revenue["date"]).isin(
                    pd.to_datetime(orders.loc[orders["is_alert"], "date"])
                ),
                index=revenue.index,
            )
            new = same & ~revenue["is_alert"]
            added += int(new.sum())
            revenue.loc[same, "is_alert"] = True
            if "reason" in revenue:
                revenue.loc[new, "reason"] = "moved with orders"
    return added


EMPTY_FORECAST_SQL = """
CREATE OR REPLACE TABLE mart_kpi_forecast (
    grain VARCHAR, metric VARCHAR, channel VARCHAR, date DATE, actual DOUBLE, expected DOUBLE,
    lower DOUBLE, upper DOUBLE, score DOUBLE, is_alert BOOLEAN, is_forecast BOOLEAN,
    reason VARCHAR
)
"""

EMPTY_ALERTS_SQL = """
CREATE OR REPLACE TABLE mart_kpi_alerts (
    grain VARCHAR, metric VARCHAR, channel VARCHAR, start_date DATE, end_date DATE,
    points BIGINT, direction VARCHAR, actual DOUBLE, expected DOUBLE, change DOUBLE,
    change_pct DOUBLE, score DOUBLE, message VARCHAR
)
"""


def _settings(ctx: BuildContext) -> ForecastSettings:
    """The forecast settings of this build: each default unless `--param kpi_alerts.NAME` set
    it; a tuple setting (sustained_days) takes one number or several."""
    defaults = ForecastSettings()
    values = {}
    for name, default in vars(defaults).items():
        value = ctx.param("kpi_alerts", name, default)
        if isinstance(default, tuple):
            items = value if isinstance(value, list | tuple) else str(value).split(",")
            values[name] = tuple(int(v) for v in items)
        else:
            values[name] = type(default)(value)
    return ForecastSettings(**values)


def kpi_alerts_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Fit forecasts to daily and weekly revenue, orders and new customers (all channels and
    each sales channel) and store them (mart_kpi_forecast) with their alerts (mart_kpi_alerts)."""
    settings = _settings(ctx)
    min_orders = float(ctx.param("kpi_alerts", "min_daily_orders", 3.0))
    bounds = con.execute("SELECT min(date), max(date) FROM mart_daily_kpis").fetchone()
    forecasts, alerts = [], []
    if bounds[0] is not None:
        start, end = bounds[0], min(bounds[1], ctx.as_of)
        for channel in _series_to_monitor(con, min_orders):
            daily = _complete_days(_daily_series(con, channel), start, end)
            for grain, frame in (("day", daily), ("week", _weekly(daily))):
                if frame.empty:
                    continue
                aov = frame["revenue"].sum() / max(frame["orders"].sum(), 1.0)
                fcs = {
                    metric: fit_forecast(
                        frame["date"],
                        frame[metric],
                        grain,
                        settings,
                        aov if metric == "revenue" else 1.0,
                    )
                    for metric in METRICS
                }
                revenue_with_orders(fcs["revenue"], fcs["orders"], grain)
                for metric, fc in fcs.items():
                    forecasts.append(fc.assign(grain=grain, metric=metric, channel=channel))
                    al = group_alerts(fc, grain)
                    if not al.empty:
                        al["message"] = [
                            alert_message(metric, channel, r) for r in al.to_dict("records")
                        ]
                        alerts.append(al.assign(grain=grain, metric=metric, channel=channel))
    if forecasts:
        cols = ["grain", "metric", "channel", "date", "actual", "expected", "lower", "upper"]
        cols += ["score", "is_alert", "is_forecast", "reason"]
        replace_table(con, "mart_kpi_forecast", pd.concat(forecasts, ignore_index=True)[cols])
    else:
        con.execute(EMPTY_FORECAST_SQL)
    if alerts:
        cols = ["grain", "metric", "channel", "start_date", "end_date", "points", "direction"]
        cols += ["actual", "expected", "change", "change_pct", "score", "message"]
        frame = pd.concat(alerts, ignore_index=True)[cols]
        frame = frame.sort_values(["end_date", "score"], ascending=[False, False])
        replace_table(con, "mart_kpi_alerts", frame.reset_index(drop=True))
    else:
        con.execute(EMPTY_ALERTS_SQL)
    return sum(len(f) for f in forecasts)
