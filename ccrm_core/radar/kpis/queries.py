"""Page queries of the command center beyond the tiles: the funnel by segment, monthly cohort
retention, paths to first purchase and their distributions, and the stored KPI forecasts and
alerts. Each returns a DataFrame (empty when the stage that builds its mart has not run).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.radar.kpis.filters import FilterOptions, KpiFilters, existing_tables, missing_stages
from ccrm_core.radar.kpis.marts import ALL, STANDARD_PERIODS

FUNNEL_STAGES = ("reached", "engaged", "converted", "repeat", "loyal")


def funnel_period(period_days: int) -> int:
    """The stored funnel period for a view: the smallest standard period at least as long."""
    return next((p for p in STANDARD_PERIODS if p >= period_days), STANDARD_PERIODS[-1])


def funnel_scheme(f: KpiFilters, options: FilterOptions) -> str:
    """The scheme whose segments the funnel compares: the filter's, else the first available
    (so "by segment" shows segments even when the view is everyone)."""
    if f.scheme != ALL:
        return f.scheme
    return next((scheme for scheme, _ in options.segments), ALL)


def funnel_by_segment(
    con: duckdb.DuckDBPyConnection, period_days: int, scheme: str = ALL
) -> pd.DataFrame:
    """Funnel counts for everyone and each segment of `scheme` over the last `period_days` days
    (rounded up to a standard period) up to the data end.

    One row per segment: segment, customers, reached, engaged, converted, repeat, loyal, and the
    stage-to-stage rates rate_engaged (= engaged / reached), rate_converted, rate_repeat,
    rate_loyal. Stage definitions: see FUNNEL_SQL (each stage is a subset of the previous).
    """
    if missing_stages(con, ("mart_funnel",)):
        return pd.DataFrame()
    frame = con.execute(
        "SELECT segment, customers, reached, engaged, converted, repeat, loyal FROM mart_funnel "
        "WHERE period_days = ? AND (scheme = ? OR scheme = 'all') "
        "ORDER BY scheme = 'all' DESC, reached DESC",
        [funnel_period(period_days), scheme],
    ).df()
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
    frame = con.execute(
        """
        SELECT cohort_month, months_since, cohort_customers, active_customers,
               active_customers / cohort_customers AS retention
        FROM mart_cohorts
        WHERE scheme = ? AND segment = ? AND cohort_month >= (
            SELECT max(cohort_month) FROM mart_cohorts WHERE scheme = ? AND segment = ?
        ) - to_months(CAST(? AS INTEGER) - 1)
        ORDER BY cohort_month, months_since
        """,
        [scheme, segment, scheme, segment, months],
    ).df()
    return frame


def paths_source(con: duckdb.DuckDBPyConnection) -> str | None:
    """Where journeys come from: the paths stage's `mart_paths` when built, else this module's
    `mart_journeys` (paths to first purchase computed from customer_events by the radar_funnel
    stage), else None. Both have (scheme, segment, path VARCHAR[], conversions, nulls, value)."""
    present = existing_tables(con, ("mart_paths", "mart_journeys"))
    return next((t for t in ("mart_paths", "mart_journeys") if t in present), None)


def first_purchase_paths(
    con: duckdb.DuckDBPyConnection,
    scheme: str = ALL,
    segment: str = ALL,
    top_n: int = 10,
    max_steps: int = 4,
) -> pd.DataFrame:
    """The `top_n` most common paths (last `max_steps` channel steps) to a purchase.

    Columns: path (list of channels, oldest first; empty = no tracked touch), conversions, share
    (of all conversions in the segment), source (the mart read). Reads mart_paths when the paths
    stage built it, else the stage's own journeys from customer_events (see `paths_source`).
    """
    table = paths_source(con)
    if table is None:
        return pd.DataFrame(columns=["path", "conversions", "share", "source"])
    frame = con.execute(
        f"""
        WITH p AS (
            SELECT list_slice(path, -?, -1) AS path, conversions
            FROM {store.quote_ident(table)} WHERE scheme = ? AND segment = ? AND conversions > 0
        )
        SELECT path, sum(conversions) AS conversions,
               sum(conversions) / sum(sum(conversions)) OVER () AS share
        FROM p GROUP BY path ORDER BY conversions DESC, path LIMIT ?
        """,  # noqa: S608 table from paths_source
        [max_steps, scheme, segment, top_n],
    ).df()
    frame["path"] = frame["path"].map(list)
    frame["source"] = table
    return frame


def path_length_distribution(
    con: duckdb.DuckDBPyConnection, scheme: str = ALL, segment: str = ALL
) -> pd.DataFrame:
    """Conversions by path length (channel steps before the purchase), from the same source as
    `first_purchase_paths`. Columns: path_length, conversions."""
    table = paths_source(con)
    if table is None:
        return pd.DataFrame(columns=["path_length", "conversions"])
    return con.execute(
        f"SELECT CAST(len(path) AS INTEGER) AS path_length, sum(conversions) AS conversions "  # noqa: S608 our table
        f"FROM {store.quote_ident(table)} WHERE scheme = ? AND segment = ? "
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
    return con.execute(
        "SELECT days_to_convert, sum(customers) AS customers FROM mart_journey_stats "
        "WHERE scheme = ? AND segment = ? AND days_to_convert IS NOT NULL GROUP BY 1 ORDER BY 1",
        [scheme, segment],
    ).df()


def kpi_forecast(
    con: duckdb.DuckDBPyConnection, metric: str, channel: str = ALL, grain: str = "day"
) -> pd.DataFrame:
    """The stored series, forecast and band for one metric, channel ('all' or a monitored sales
    channel) and grain ('day' or 'week'): date, actual, expected, lower, upper, score, is_alert,
    is_forecast. Empty when the kpi_alerts stage has not run or the channel is not monitored."""
    if missing_stages(con, ("mart_kpi_forecast",)):
        return pd.DataFrame()
    return con.execute(
        "SELECT date, actual, expected, lower, upper, score, is_alert, is_forecast "
        "FROM mart_kpi_forecast WHERE metric = ? AND channel = ? AND grain = ? ORDER BY date",
        [metric, channel, grain],
    ).df()


def monitored_channels(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Channels with a stored forecast ('all' first)."""
    if missing_stages(con, ("mart_kpi_forecast",)):
        return []
    rows = con.execute("SELECT DISTINCT channel FROM mart_kpi_forecast").fetchall()
    return sorted((r[0] for r in rows), key=lambda c: (c != ALL, c))


def kpi_alerts(
    con: duckdb.DuckDBPyConnection, channel: str | None = None, limit: int = 50
) -> pd.DataFrame:
    """Alerts, newest first: grain, metric, channel, start_date, end_date, points, direction,
    actual, expected, change, change_pct, score, message. `channel` None = every series."""
    if missing_stages(con, ("mart_kpi_alerts",)):
        return pd.DataFrame()
    return con.execute(
        "SELECT * FROM mart_kpi_alerts WHERE ? IS NULL OR channel = ? "
        "ORDER BY end_date DESC, score DESC LIMIT ?",
        [channel, channel, limit],
    ).df()
