"""Page queries of the command center beyond the tiles: the funnel by segment, monthly cohort
retention, paths to first purchase and their distributions, and the stored KPI forecasts and
alerts (with the ones near a period and their age, and the link name of each, so a trend can
open on one). Each returns a DataFrame (empty when the stage that builds its mart has not run).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import duckdb
import pandas as pd

from ccrm_core.foundation import provenance
from ccrm_core.radar.kpis.filters import FilterOptions, KpiFilters, existing_tables, missing_stages
from ccrm_core.radar.kpis.marts import ALL, STANDARD_PERIODS
from ccrm_core.radar.kpis.saved import SAVED, segment_tables

FUNNEL_STAGES = ("reached", "engaged", "converted", "repeat", "loyal")


def funnel_period(period_days: int) -> int:
    """The stored funnel period for a view: the smallest standard period at least as long."""
    return next((p for p in STANDARD_PERIODS if p >= period_days), STANDARD_PERIODS[-1])


def funnel_scheme(f: KpiFilters, options: FilterOptions) -> str:
    """The scheme whose segments the funnel compares: the filter's, else the first built-in
    scheme available (so "by segment" shows segments even when the view is everyone)."""
    if f.scheme != ALL:
        return f.scheme
    return next((scheme for scheme, _ in options.segments if scheme != SAVED), ALL)


def funnel_by_segment(
    con: duckdb.DuckDBPyConnection, period_days: int, scheme: str = ALL, segment: str | None = None
) -> pd.DataFrame:
    """Funnel counts for everyone and each segment of `scheme` over the last `period_days` days
    (rounded up to a standard period) up to the data end. For scheme 'saved', everyone and the
    saved segment `segment` (saved segments may overlap: one at a time).

    One row per segment: segment, customers, reached, engaged, converted, repeat, loyal,
    membership ('period_start': the customer's segment on the day before the period, so an
    outcome of the period cannot decide the segment; 'today': today's segment), and the
    stage-to-stage rates rate_engaged (= engaged / reached), rate_converted, rate_repeat,
    rate_loyal. Stage definitions: see FUNNEL_SQL (each stage is a subset of the previous).
    Empty when the stage has not run or has no row for the period.
    """
    if missing_stages(con, ("mart_funnel",)):
        return pd.DataFrame()
    with segment_tables(con, scheme, segment) as table:
        frame = con.execute(
            "SELECT segment, customers, reached, engaged, converted, repeat, loyal, membership "  # noqa: S608 our names
            f"FROM {table('mart_funnel')} WHERE period_days = ? "
            "AND (scheme = ? OR scheme = 'all') ORDER BY scheme = 'all' DESC, reached DESC, segment",
            [funnel_period(period_days), scheme],
        ).df()
    if frame.empty:
        return frame
    if scheme != ALL:
        frame.loc[0, "segment"] = "everyone"
    for prev, cur in zip(FUNNEL_STAGES, FUNNEL_STAGES[1:], strict=False):
        frame[f"rate_{cur}"] = (frame[cur] / frame[prev].where(frame[prev] > 0)).astype(float)
    return frame


def cohort_retention(
    con: duckdb.DuckDBPyConnection, scheme: str = ALL, segment: str = ALL, months: int = 24
) -> pd.DataFrame:
    """Monthly cohort retention for the last `months` acquisition cohorts of a segment.

    One row per cohort_month x months_since: cohort_customers, active_customers and retention
    (= active / cohort customers, 1.0 in month 0).
    """
    if missing_stages(con, ("mart_cohorts",)):
        return pd.DataFrame()
    with segment_tables(con, scheme, segment) as table:
        cohorts = table("mart_cohorts")
        frame = con.execute(
            f"""
            SELECT cohort_month, months_since, cohort_customers, active_customers,
                   active_customers / cohort_customers AS retention
            FROM {cohorts}
            WHERE scheme = ? AND segment = ? AND cohort_month >= (
                SELECT max(cohort_month) FROM {cohorts} WHERE scheme = ? AND segment = ?
            ) - to_months(CAST(? AS INTEGER) - 1)
            ORDER BY cohort_month, months_since
            """,  # noqa: S608 our names
            [scheme, segment, scheme, segment, months],
        ).df()
    return frame


def paths_source(con: duckdb.DuckDBPyConnection) -> str | None:
    """Where the journeys to a first purchase come from: `mart_journeys` (built by the
    radar_funnel stage from customer_events), or None before that stage ran. (The paths stage's
    `mart_paths` holds every order with its own lookback: attribution's journeys, not these.)"""
    return "mart_journeys" if existing_tables(con, ("mart_journeys",)) else None


def first_purchase_summary(
    con: duckdb.DuckDBPyConnection, scheme: str = ALL, segment: str = ALL
) -> dict[str, int]:
    """First purchases of a segment's customers: {'customers': every customer with a first
    order, 'tracked': those with at least one tracked touch in the lookback before it,
    'untracked': those without one}. All zero before the radar_funnel stage ran."""
    if paths_source(con) is None:
        return {"customers": 0, "tracked": 0, "untracked": 0}
    with segment_tables(con, scheme, segment) as table:
        total, untracked = con.execute(
            "SELECT coalesce(sum(conversions), 0), coalesce(sum(conversions) FILTER "  # noqa: S608 our names
            f"(WHERE len(path) = 0), 0) FROM {table('mart_journeys')} "
            "WHERE scheme = ? AND segment = ?",
            [scheme, segment],
        ).fetchone()
    total, untracked = int(total), int(untracked)
    return {"customers": total, "tracked": total - untracked, "untracked": untracked}


def first_purchase_paths(
    con: duckdb.DuckDBPyConnection,
    scheme: str = ALL,
    segment: str = ALL,
    top_n: int = 10,
    max_steps: int = 4,
) -> pd.DataFrame:
    """The `top_n` most common paths (last `max_steps` channel steps) to a customer's first
    purchase, among customers with a tracked touch in the lookback before it (those without one
    are counted by `first_purchase_summary`, not here: there is no path to show).

    Columns: path (list of channels, oldest first), conversions (customers: one first purchase
    each), share (of the segment's first purchases with a tracked touch), source (the mart read).
    """
    table = paths_source(con)
    if table is None:
        return pd.DataFrame(columns=["path", "conversions", "share", "source"])
    with segment_tables(con, scheme, segment) as tables:
        frame = con.execute(
            f"""
            WITH p AS (
                SELECT list_slice(path, -?, -1) AS path, conversions
                FROM {tables("mart_journeys")}
                WHERE scheme = ? AND segment = ? AND conversions > 0 AND len(path) > 0
            )
            SELECT path, sum(conversions) AS conversions,
                   sum(conversions) / sum(sum(conversions)) OVER () AS share
            FROM p GROUP BY path ORDER BY conversions DESC, path LIMIT ?
            """,  # noqa: S608 our names
            [max_steps, scheme, segment, top_n],
        ).df()
    frame["path"] = frame["path"].map(list)
    frame["source"] = table
    return frame


def path_length_distribution(
    con: duckdb.DuckDBPyConnection, scheme: str = ALL, segment: str = ALL
) -> pd.DataFrame:
    """Customers by the length of their path to a first purchase (channel steps, repeats in a
    row collapsed), those with a tracked touch only. Columns: path_length, customers."""
    if paths_source(con) is None:
        return pd.DataFrame(columns=["path_length", "customers"])
    with segment_tables(con, scheme, segment) as table:
        return con.execute(
            "SELECT CAST(len(path) AS INTEGER) AS path_length, sum(conversions) AS customers "  # noqa: S608 our names
            f"FROM {table('mart_journeys')} WHERE scheme = ? AND segment = ? AND len(path) > 0 "
            "GROUP BY 1 ORDER BY 1",
            [scheme, segment],
        ).df()


def time_to_convert_distribution(
    con: duckdb.DuckDBPyConnection, scheme: str = ALL, segment: str = ALL
) -> pd.DataFrame:
    """New customers by days from their first tracked touch (within the lookback) to their
    first order. Columns: days_to_convert, customers (customers with no touch left out)."""
    if missing_stages(con, ("mart_journey_stats",)):
        return pd.DataFrame(columns=["days_to_convert", "customers"])
    with segment_tables(con, scheme, segment) as table:
        return con.execute(
            "SELECT days_to_convert, sum(customers) AS customers "  # noqa: S608 our names
            f"FROM {table('mart_journey_stats')} WHERE scheme = ? AND segment = ? "
            "AND days_to_convert IS NOT NULL GROUP BY 1 ORDER BY 1",
            [scheme, segment],
        ).df()


def kpi_forecast(
    con: duckdb.DuckDBPyConnection, metric: str, channel: str = ALL, grain: str = "day"
) -> pd.DataFrame:
    """The stored series, forecast and band for one metric, channel ('all' or a monitored sales
    channel) and grain ('day' or 'week'): date, actual, expected, lower, upper, score, is_alert,
    is_forecast, reason (why a point is an alert, see `fit_forecast`). Empty when the kpi_alerts stage has not run or the channel is not monitored."""
    if missing_stages(con, ("mart_kpi_forecast",)):
        return pd.DataFrame()
    return con.execute(
        "SELECT date, actual, expected, lower, upper, score, is_alert, is_forecast, reason "
        "FROM mart_kpi_forecast WHERE metric = ? AND channel = ? AND grain = ? ORDER BY date",
        [metric, channel, grain],
    ).df()


def forecast_fit(con: duckdb.DuckDBPyConnection) -> provenance.ModelFit:
    """When the KPI forecasts were fitted (stage kpi_alerts) and the last day of history they
    read."""
    data_end = None
    if not missing_stages(con, ("mart_kpi_forecast",)):
        data_end = con.execute(
            "SELECT max(date) FROM mart_kpi_forecast WHERE NOT is_forecast"
        ).fetchall()[0][0]
    return provenance.model_fit(con, "kpi_alerts", data_end)


def monitored_channels(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Channels with a stored forecast ('all' first)."""
    if missing_stages(con, ("mart_kpi_forecast",)):
        return []
    rows = con.execute("SELECT DISTINCT channel FROM mart_kpi_forecast").fetchall()
    return sorted((r[0] for r in rows), key=lambda c: (c != ALL, c))


def kpi_alerts(
    con: duckdb.DuckDBPyConnection, channel: str | None = None, limit: int | None = 50
) -> pd.DataFrame:
    """Alerts, newest first: grain, metric, channel, start_date, end_date, points, direction,
    actual, expected, change, change_pct, score, message. `channel` None = every series;
    `limit` None = all of them."""
    if missing_stages(con, ("mart_kpi_alerts",)):
        return pd.DataFrame()
    return con.execute(
        "SELECT * FROM mart_kpi_alerts WHERE ? IS NULL OR channel = ? "
        "ORDER BY end_date DESC, score DESC LIMIT ?",
        [channel, channel, limit if limit is not None else 2**62],
    ).df()


ALERT_NEAR_DAYS = 7  # alerts that ended this many days before a period still show with it
GRAIN_LABELS = {"day": "daily", "week": "weekly"}


def alerts_near_period(
    alerts: pd.DataFrame, first: date, last: date, data_end: date, near_days: int = ALERT_NEAR_DAYS
) -> pd.DataFrame:
    """The `alerts` (as `kpi_alerts` returns them) that overlap the period `first`..`last` or
    ended in the `near_days` days before it, newest first, with `age_days` (days from the
    alert's last day to the data end `data_end`, 0 = it runs to the last day of data)."""
    if alerts is None or alerts.empty:
        return pd.DataFrame(columns=[*(alerts.columns if alerts is not None else []), "age_days"])
    start = pd.to_datetime(alerts["start_date"])
    end = pd.to_datetime(alerts["end_date"])
    near = (end >= pd.Timestamp(first - timedelta(days=near_days))) & (start <= pd.Timestamp(last))
    out = alerts[near].copy()
    out["age_days"] = (pd.Timestamp(data_end) - end[near]).dt.days.clip(lower=0).astype(int)
    return out.sort_values("age_days", kind="stable").reset_index(drop=True)


def alert_age(age_days: int) -> str:
    """'on the last day of data', '1 day before the data end', '12 days before the data end'."""
    if age_days <= 0:
        return "on the last day of data"
    return f"{age_days:,} day{'s' if age_days != 1 else ''} before the data end"


def alert_key(alert: Mapping) -> str:
    """The link name of one alert (a row of `kpi_alerts`): 'grain:metric:last day:channel'
    (the channel last, so a channel name with ':' in it stays whole)."""
    end = pd.Timestamp(alert["end_date"]).date().isoformat()
    return f"{alert['grain']}:{alert['metric']}:{end}:{alert['channel']}"


def find_alert(alerts: pd.DataFrame | None, key: str | None) -> dict | None:
    """The alert of `alerts` whose `alert_key` is `key` (a row as a dict); None when there is
    no such alert (an old link, a link from another database, any other text)."""
    if alerts is None or alerts.empty or not key:
        return None
    grain, metric, rest = (key.split(":", 2) + ["", ""])[:3]
    end_text, _, channel = rest.partition(":")
    try:
        end = date.fromisoformat(end_text)
    except ValueError:
        return None
    hit = alerts[
        (alerts["grain"] == grain)
        & (alerts["metric"] == metric)
        & (alerts["channel"] == channel)
        & (pd.to_datetime(alerts["end_date"]).dt.date == end)
    ]
    return None if hit.empty else hit.iloc[0].to_dict()


def alert_window(alert: Mapping) -> tuple[date, date]:
    """The days a trend zoomed on `alert` shows: its own days with context on both sides
    (six weeks before and two after on the daily grain, half a year and two months weekly)."""
    before, after = (42, 14) if alert["grain"] == "day" else (182, 56)
    start = pd.Timestamp(alert["start_date"]).date()
    end = pd.Timestamp(alert["end_date"]).date()
    return start - timedelta(days=before), end + timedelta(days=after)
