"""Customer KPIs for the executive command center (Radar): marts, tiles, funnel, cohorts,
journeys, forecasts and alerts.

Everything the home page shows is read from small marts that the pipeline builds, so a page
computation is a handful of aggregates over day- or segment-grain tables, never a scan of orders.

Marts (all dates are calendar days, money is in currency units):

- `mart_daily_kpis` (contract, stage `daily_kpis`): one row per day x sales channel x source
  system with orders, revenue, buyers (distinct customers who ordered that day) and
  new_customers (customers whose first order ever falls on that day, counted on the channel and
  source system of that first order).
- `mart_kpi_segments` (stage `customer_kpis`): customer_id, scheme, segment. Every customer is in
  scheme 'all' / segment 'all'; when `mart_customer` exists, also in one segment per scheme
  (`rfm_segment`, `value_tier`, `needs_segment`). Segments are today's membership: a segment's
  history is the history of the customers who are in it now.
- `mart_customer_kpis` (stage `customer_kpis`): one row per customer: first/last order, lifetime
  orders and revenue, last event and last engagement (open, click, visit) day, and consent reach
  (contactable = current opt-in on at least one channel, contactable_since = earliest of those
  opt-ins).
- `mart_kpi_daily` (stage `customer_kpis`): mart_daily_kpis by segment: one row per day x scheme x
  segment x sales channel x source system: orders, revenue, new_customers (additive).
- `mart_kpi_activity` (stage `customer_kpis`): active-spell changes per window_days x scheme x
  segment x channel x source_system x day ('all' rows included: distinct counts do not add up).
  A customer is *active on day d with window W* when they ordered (in the slice) on a day in
  [d - W + 1, d]. `started` counts spells that begin on the day (first order in the slice, or a
  return after a gap of at least W days; `first_in_slice` counts the first kind), `lapsed` counts
  spells that end on the day (W days after the last order of the spell). Active customers on day
  d = cumulative started - cumulative lapsed. With W equal to a period length this also gives the
  distinct buyers of any period of that length.
- `mart_kpi_order_days` (stage `customer_kpis`): distinct (date, channel, source_system,
  customer_id) of orders, sorted by date: distinct buyers of custom periods.
- `mart_kpi_reach` (stage `customer_kpis`): newly contactable customers per day x scheme x
  segment x source_system (by contactable_since), and `mart_kpi_base` the customers per scheme x
  segment x source_system.
- `mart_funnel`, `mart_cohorts`, `mart_journeys`, `mart_journey_stats` (stage `radar_funnel`).
- `mart_kpi_forecast`, `mart_kpi_alerts` (stage `kpi_alerts`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from threadpoolctl import threadpool_limits

from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext, replace_table
from ccrm_core.radar import segments

ALL = "all"
SEGMENT_SCHEMES = tuple(segments.SCHEMES)
STANDARD_PERIODS = (7, 30, 90, 365)  # days; the page's period choices besides custom
ACTIVE_WINDOWS = (30, 90, 180, 365)  # days; choices for "active customers"
DEFAULT_ACTIVE_WINDOW = 365
# Event types (written out in the SQL below): engagement = open, click, visit; a journey touch =
# impression, send, open, click, visit, call.
LOYAL_MIN_ORDERS = 4
JOURNEY_LOOKBACK_DAYS = 90

# ---------------------------------------------------------------------------------------------
# Stage daily_kpis (contract)

DAILY_KPIS_SQL = f"""
CREATE OR REPLACE TABLE mart_daily_kpis AS
WITH o AS (
    SELECT customer_id, CAST(ts AS DATE) AS date, coalesce(channel, 'unknown') AS channel,
           source_system, revenue, order_id, ts
    FROM customer_orders
),
first_orders AS (
    -- the first order by time, then id: one order even when two share a timestamp
    SELECT customer_id, arg_min(date, row(ts, order_id)) AS date,
           arg_min(channel, row(ts, order_id)) AS channel,
           arg_min(source_system, row(ts, order_id)) AS source_system
    FROM o GROUP BY customer_id
),
daily AS (
    SELECT date, channel, source_system, count(*) AS orders, {store.exact_sum("revenue")} AS revenue,
           count(DISTINCT customer_id) AS buyers
    FROM o GROUP BY ALL
),
new AS (
    SELECT date, channel, source_system, count(*) AS new_customers
    FROM first_orders GROUP BY ALL
)
SELECT d.date, d.channel, d.source_system, d.orders, d.revenue, d.buyers,
       coalesce(n.new_customers, 0) AS new_customers
FROM daily d LEFT JOIN new n USING (date, channel, source_system)
ORDER BY d.date, d.channel, d.source_system
"""  # noqa: S608 our SQL; sums from store.exact_sum


def daily_kpis_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    con.execute(DAILY_KPIS_SQL)
    return con.execute("SELECT count(*) FROM mart_daily_kpis").fetchone()[0]


# ---------------------------------------------------------------------------------------------
# Stage customer_kpis: per-customer facts, segment membership, daily and activity marts


def _build_segments(con: duckdb.DuckDBPyConnection) -> None:
    parts = ["SELECT DISTINCT customer_id, 'all' AS scheme, 'all' AS segment FROM customers"]
    for scheme in segments.available_schemes(con):
        col = store.quote_ident(scheme)
        parts.append(
            f"SELECT customer_id, '{scheme}', CAST({col} AS VARCHAR) FROM mart_customer "  # noqa: S608 scheme from SEGMENT_SCHEMES
            f"WHERE {col} IS NOT NULL"
        )
    con.execute(
        "CREATE OR REPLACE TABLE mart_kpi_segments AS "
        + " UNION ALL ".join(parts)
        + " ORDER BY customer_id"
    )


CUSTOMER_KPIS_SQL = f"""
CREATE OR REPLACE TABLE mart_customer_kpis AS
WITH o AS (
    SELECT customer_id, min(ts) AS first_order_ts,
           -- the first order by time, then id: one order even when two share a timestamp
           arg_min(coalesce(channel, 'unknown'), row(ts, order_id)) AS first_order_channel,
           arg_min(source_system, row(ts, order_id)) AS first_order_source,
           arg_min(revenue, row(ts, order_id)) AS first_order_revenue,
           CAST(max(ts) AS DATE) AS last_order_date,
           count(*) AS orders, {store.exact_sum("revenue")} AS revenue
    FROM customer_orders GROUP BY customer_id
),
e AS (
    SELECT customer_id, CAST(max(ts) AS DATE) AS last_event_date,
           CAST(max(ts) FILTER (WHERE event_type IN ('open', 'click', 'visit')) AS DATE)
               AS last_engaged_date
    FROM customer_events WHERE customer_id IS NOT NULL GROUP BY customer_id
),
c AS (
    SELECT customer_id, CAST(min(ts) AS DATE) AS contactable_since,
           count(*) AS contactable_channels
    FROM customer_consents WHERE status = 'opt_in' GROUP BY customer_id
)
SELECT cu.customer_id,
       CAST(o.first_order_ts AS DATE) AS first_order_date, o.first_order_ts,
       o.first_order_channel, o.first_order_source, o.first_order_revenue, o.last_order_date,
       coalesce(o.orders, 0) AS orders, coalesce(o.revenue, 0.0) AS revenue,
       e.last_event_date, e.last_engaged_date,
       c.contactable_since IS NOT NULL AS contactable, c.contactable_since,
       coalesce(c.contactable_channels, 0) AS contactable_channels
FROM (SELECT DISTINCT customer_id FROM customers) cu
LEFT JOIN o USING (customer_id)
LEFT JOIN e USING (customer_id)
LEFT JOIN c USING (customer_id)
ORDER BY cu.customer_id
"""  # noqa: S608 our SQL; sums from store.exact_sum

KPI_DAILY_SQL = f"""
CREATE OR REPLACE TABLE mart_kpi_daily AS
WITH o AS (
    SELECT customer_id, CAST(ts AS DATE) AS date, coalesce(channel, 'unknown') AS channel,
           source_system, count(*) AS orders,
           {store.exact_sum("revenue")} AS revenue
    FROM customer_orders GROUP BY ALL
),
firsts AS (
    SELECT customer_id, CAST(first_order_ts AS DATE) AS date, first_order_channel AS channel,
           first_order_source AS source_system, 1 AS new_customers
    FROM mart_customer_kpis WHERE first_order_ts IS NOT NULL
),
facts AS (
    SELECT customer_id, date, channel, source_system, sum(orders) AS orders,
           {store.exact_sum("revenue")} AS revenue, sum(new_customers) AS new_customers
    FROM (
        SELECT customer_id, date, channel, source_system, orders, revenue, 0 AS new_customers
        FROM o
        UNION ALL
        SELECT customer_id, date, channel, source_system, 0, 0.0, new_customers FROM firsts
    ) GROUP BY ALL
)
SELECT s.scheme, s.segment, f.channel, f.source_system, f.date,
       sum(f.orders)::BIGINT AS orders, {store.exact_sum("f.revenue")} AS revenue,
       sum(f.new_customers)::BIGINT AS new_customers
FROM facts f JOIN mart_kpi_segments s USING (customer_id)
GROUP BY ALL
ORDER BY s.scheme, s.segment, f.channel, f.source_system, f.date
"""  # noqa: S608 our SQL; sums from store.exact_sum

# Spells: an order day starts a spell when it is the first in its slice or comes W or more days
# after the previous one; the spell lapses W days after an order day with no order in the next
# W days. Slices are the four combinations of (channel or all) x (source system or all).
KPI_ACTIVITY_SQL = """
CREATE OR REPLACE TABLE mart_kpi_activity AS
WITH od AS (
    SELECT DISTINCT customer_id, CAST(ts AS DATE) AS d, coalesce(channel, 'unknown') AS channel,
           source_system
    FROM customer_orders
),
sliced AS (
    SELECT customer_id, d, channel, source_system FROM od
    UNION ALL SELECT DISTINCT customer_id, d, channel, 'all' FROM od
    UNION ALL SELECT DISTINCT customer_id, d, 'all', source_system FROM od
    UNION ALL SELECT DISTINCT customer_id, d, 'all', 'all' FROM od
),
gaps AS (
    SELECT customer_id, d, channel, source_system,
           d - lag(d) OVER w AS prev_gap, lead(d) OVER w - d AS next_gap
    FROM sliced
    WINDOW w AS (PARTITION BY customer_id, channel, source_system ORDER BY d)
),
windows AS (SELECT unnest(?::INTEGER[]) AS window_days),
changes AS (
    SELECT g.customer_id, w.window_days, g.channel, g.source_system, g.d AS date,
           1 AS started, CAST(g.prev_gap IS NULL AS INTEGER) AS first_in_slice, 0 AS lapsed
    FROM gaps g, windows w
    WHERE g.prev_gap IS NULL OR g.prev_gap >= w.window_days
    UNION ALL
    SELECT g.customer_id, w.window_days, g.channel, g.source_system,
           g.d + w.window_days AS date, 0, 0, 1
    FROM gaps g, windows w
    WHERE (g.next_gap IS NULL OR g.next_gap >= w.window_days)
      AND g.d + w.window_days <= ?
)
SELECT c.window_days, s.scheme, s.segment, c.channel, c.source_system, c.date,
       sum(c.started)::BIGINT AS started, sum(c.first_in_slice)::BIGINT AS first_in_slice,
       sum(c.lapsed)::BIGINT AS lapsed
FROM changes c JOIN mart_kpi_segments s USING (customer_id)
GROUP BY ALL
ORDER BY c.window_days, s.scheme, s.segment, c.channel, c.source_system, c.date
"""

# Distinct buyers of custom periods (the standard lengths come from the activity mart).
ORDER_DAYS_SQL = """
CREATE OR REPLACE TABLE mart_kpi_order_days AS
SELECT DISTINCT CAST(ts AS DATE) AS date, coalesce(channel, 'unknown') AS channel, source_system,
       customer_id
FROM customer_orders
ORDER BY date
"""

KPI_REACH_SQL = """
CREATE OR REPLACE TABLE mart_kpi_reach AS
WITH src AS (
    SELECT DISTINCT customer_id, source_system FROM identity_map WHERE source_system IS NOT NULL
    UNION ALL
    SELECT DISTINCT customer_id, 'all' FROM customers
)
SELECT s.scheme, s.segment, src.source_system, k.contactable_since AS date,
       count(*)::BIGINT AS newly_contactable
FROM mart_customer_kpis k
JOIN src USING (customer_id)
JOIN mart_kpi_segments s USING (customer_id)
WHERE k.contactable
GROUP BY ALL
ORDER BY s.scheme, s.segment, src.source_system, date;

CREATE OR REPLACE TABLE mart_kpi_base AS
WITH src AS (
    SELECT DISTINCT customer_id, source_system FROM identity_map WHERE source_system IS NOT NULL
    UNION ALL
    SELECT DISTINCT customer_id, 'all' FROM customers
)
SELECT s.scheme, s.segment, src.source_system, count(*)::BIGINT AS customers,
       count(*) FILTER (WHERE k.contactable)::BIGINT AS contactable
FROM mart_customer_kpis k
JOIN src USING (customer_id)
JOIN mart_kpi_segments s USING (customer_id)
GROUP BY ALL
ORDER BY s.scheme, s.segment, src.source_system;
"""


def activity_windows(ctx: BuildContext | None = None) -> list[int]:
    """Windows (days) the activity mart holds: the active-customer choices and the standard
    period lengths (so distinct buyers of every standard period come from the same mart)."""
    extra = ctx.param("customer_kpis", "active_windows", ()) if ctx else ()
    return sorted(set(ACTIVE_WINDOWS) | set(STANDARD_PERIODS) | {int(w) for w in extra})


def customer_kpis_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Build mart_kpi_segments, mart_customer_kpis, mart_kpi_daily, mart_kpi_activity,
    mart_kpi_reach and mart_kpi_base (see the module docstring for grains)."""
    _build_segments(con)
    con.execute(CUSTOMER_KPIS_SQL)
    con.execute(KPI_DAILY_SQL)
    con.execute(KPI_ACTIVITY_SQL, [activity_windows(ctx), ctx.as_of])
    con.execute(ORDER_DAYS_SQL)
    con.execute(KPI_REACH_SQL)
    # the tiles' calendar: first .. last order day (not a later event day, which would put a day
    # without orders into the current period and show a drop that is not there)
    con.execute(
        "CREATE OR REPLACE TABLE mart_kpi_meta AS SELECT CAST(min(ts) AS DATE) AS data_start, "
        "least(CAST(max(ts) AS DATE), CAST(? AS DATE)) AS data_end FROM customer_orders",
        [ctx.as_of],
    )
    return con.execute("SELECT count(*) FROM mart_customer_kpis").fetchone()[0]


# ---------------------------------------------------------------------------------------------
# Stage radar_funnel: funnel by segment, monthly cohorts, journeys to first purchase

# Funnel stages over the last `period_days` days up to the data end (each a subset of the one
# before it, so stage-to-stage rates are true conversion rates):
#   reached   = known customers with at least one event of any type in the period
#   engaged   = reached and opened, clicked or visited in the period
#   converted = engaged and ordered in the period
#   repeat    = converted and at least 2 orders in their lifetime (as of the data end)
#   loyal     = repeat and at least `loyal_min_orders` lifetime orders (default 4)
FUNNEL_SQL = """
CREATE OR REPLACE TABLE mart_funnel AS
WITH p AS (SELECT unnest(?::INTEGER[]) AS period_days),
k AS (
    SELECT s.scheme, s.segment, k.last_event_date, k.last_engaged_date, k.last_order_date,
           k.orders
    FROM mart_customer_kpis k JOIN mart_kpi_segments s USING (customer_id)
),
flags AS (
    SELECT p.period_days, k.scheme, k.segment, k.orders,
           coalesce(k.last_event_date > CAST(? AS DATE) - p.period_days, false) AS reached,
           coalesce(k.last_engaged_date > CAST(? AS DATE) - p.period_days, false) AS engaged,
           coalesce(k.last_order_date > CAST(? AS DATE) - p.period_days, false) AS ordered
    FROM k, p
)
SELECT period_days, scheme, segment, count(*)::BIGINT AS customers,
       count(*) FILTER (WHERE reached)::BIGINT AS reached,
       count(*) FILTER (WHERE reached AND engaged)::BIGINT AS engaged,
       count(*) FILTER (WHERE reached AND engaged AND ordered)::BIGINT AS converted,
       count(*) FILTER (WHERE reached AND engaged AND ordered AND orders >= 2)::BIGINT AS repeat,
       count(*) FILTER (WHERE reached AND engaged AND ordered AND orders >= 2
                          AND orders >= ?)::BIGINT AS loyal
FROM flags
GROUP BY ALL
ORDER BY period_days, scheme, segment
"""

# Cohort = calendar month of a customer's first order; a customer counts as retained in month m
# of their cohort when they ordered in that calendar month (month 0 is every member).
COHORTS_SQL = """
CREATE OR REPLACE TABLE mart_cohorts AS
WITH m AS (
    SELECT DISTINCT customer_id, CAST(date_trunc('month', ts) AS DATE) AS month
    FROM customer_orders
),
f AS (SELECT customer_id, min(month) AS cohort_month FROM m GROUP BY customer_id),
x AS (
    SELECT f.customer_id, f.cohort_month, date_diff('month', f.cohort_month, m.month) AS months_since
    FROM m JOIN f USING (customer_id)
),
g AS (
    SELECT s.scheme, s.segment, x.cohort_month, x.months_since,
           count(*)::BIGINT AS active_customers
    FROM x JOIN mart_kpi_segments s USING (customer_id)
    GROUP BY ALL
)
SELECT scheme, segment, cohort_month, CAST(months_since AS INTEGER) AS months_since,
       max(active_customers) FILTER (WHERE months_since = 0)
           OVER (PARTITION BY scheme, segment, cohort_month) AS cohort_customers,
       active_customers
FROM g
ORDER BY scheme, segment, cohort_month, months_since
"""

# A journey is the sequence of channels a customer touched (impression, send, open, click,
# visit, call) in the `lookback` days before their first order, repeats of the same channel in a
# row collapsed into one step; customers with no tracked touch have the empty path.
JOURNEYS_SQL = """
CREATE OR REPLACE TEMP TABLE _journeys AS
WITH f AS (
    SELECT customer_id, first_order_ts, first_order_revenue
    FROM mart_customer_kpis WHERE first_order_ts IS NOT NULL
),
t AS (
    SELECT e.customer_id, e.ts, e.event_id, e.channel
    FROM customer_events e JOIN f USING (customer_id)
    WHERE e.event_type IN ('impression', 'send', 'open', 'click', 'visit', 'call')
      AND e.ts < f.first_order_ts
      AND e.ts >= f.first_order_ts - to_days(CAST(? AS INTEGER))
),
steps AS (
    SELECT customer_id, ts, event_id, channel,
           channel IS DISTINCT FROM lag(channel) OVER (
               PARTITION BY customer_id ORDER BY ts, event_id) AS new_step
    FROM t
),
p AS (
    SELECT customer_id, list(channel ORDER BY ts, event_id) FILTER (WHERE new_step) AS path,
           min(ts) AS first_touch
    FROM steps GROUP BY customer_id
)
SELECT f.customer_id, coalesce(p.path, CAST([] AS VARCHAR[])) AS path,
       f.first_order_revenue AS value,
       date_diff('day', p.first_touch, f.first_order_ts) AS days_to_convert
FROM f LEFT JOIN p USING (customer_id)
"""

JOURNEY_MARTS_SQL = f"""
CREATE OR REPLACE TABLE mart_journeys AS
SELECT s.scheme, s.segment, j.path, CAST(count(*) AS DOUBLE) AS conversions,
       CAST(0 AS DOUBLE) AS nulls, {store.exact_sum("j.value")} AS value
FROM _journeys j JOIN mart_kpi_segments s USING (customer_id)
GROUP BY ALL
ORDER BY s.scheme, s.segment, conversions DESC;

CREATE OR REPLACE TABLE mart_journey_stats AS
SELECT s.scheme, s.segment, CAST(len(j.path) AS INTEGER) AS path_length,
       CAST(j.days_to_convert AS INTEGER) AS days_to_convert, count(*)::BIGINT AS customers
FROM _journeys j JOIN mart_kpi_segments s USING (customer_id)
GROUP BY ALL
ORDER BY s.scheme, s.segment, path_length, days_to_convert;

DROP TABLE _journeys;
"""  # noqa: S608 our SQL; sums from store.exact_sum


def radar_funnel_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Build mart_funnel, mart_cohorts, mart_journeys and mart_journey_stats."""
    loyal = int(ctx.param("radar_funnel", "loyal_min_orders", LOYAL_MIN_ORDERS))
    lookback = int(ctx.param("radar_funnel", "journey_lookback_days", JOURNEY_LOOKBACK_DAYS))
    as_of = ctx.as_of
    con.execute(FUNNEL_SQL, [list(STANDARD_PERIODS), as_of, as_of, as_of, loyal])
    con.execute(COHORTS_SQL)
    con.execute(JOURNEYS_SQL, [lookback])
    con.execute(JOURNEY_MARTS_SQL)
    return con.execute(
        "SELECT (SELECT count(*) FROM mart_funnel) + (SELECT count(*) FROM mart_cohorts) "
        "+ (SELECT count(*) FROM mart_journeys)"
    ).fetchone()[0]


# ---------------------------------------------------------------------------------------------
# Stage kpi_alerts: forecasts with prediction bands, and the points outside them
#
# Model: a robust harmonic regression fitted with statsmodels RLM (Huber) on the square root of
# the series (square root steadies the variance of counts and sums of orders): intercept, a
# piecewise-linear trend (a hinge every `knot_days`), weekly Fourier terms (daily grain) and
# yearly Fourier terms (when the history spans 400+ days). This is the Fourier-terms regression
# of a SARIMAX/Prophet-style forecast without ARMA errors, and it is fitted robustly so that the
# anomalies it hunts barely move the fit (a maximum-likelihood state-space fit would absorb a
# 4-day drop into its level). The band is expected +/- z robust standard deviations (MAD of the
# residuals) on the square-root scale; beyond the data end the trend is held flat.
# A 730-day series fits in a few milliseconds.

METRICS = {
    "revenue": ("Revenue", "currency"),
    "orders": ("Orders", "count"),
    "new_customers": ("New customers", "count"),
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
    A point is an alert when its score is beyond z, or when it is part of a run of
    `sustained_days` days whose total (each day capped at its band) is beyond z.

    Returns one row per date plus the forecast horizon: date, actual (NaN in the horizon),
    expected, lower, upper, score (signed normal score of the point's tail probability),
    is_alert, is_forecast.
    """
    # statsmodels is slow to import: only where a model is fitted, and only the parts we use
    from statsmodels.robust.norms import HuberT
    from statsmodels.robust.robust_linear_model import RLM

    s = settings or ForecastSettings()
    d = pd.to_datetime(pd.Series(dates)).reset_index(drop=True)
    y = np.asarray(values, dtype=float)
    step = 1 if grain == "day" else 7
    horizon = s.horizon_days // step
    t = ((d - d.iloc[0]).dt.days).to_numpy(dtype=float)
    t_last = float(t[-1]) if len(t) else 0.0
    t_all = np.concatenate([t, t_last + step * np.arange(1, horizon + 1)])
    dates_all = pd.concat(
        [d, pd.Series(d.iloc[-1] + pd.to_timedelta(step * np.arange(1, horizon + 1), "D"))],
        ignore_index=True,
    )
    X = _design(t_all, t_last, grain, s, span=t_last)
    n = len(y)
    y = np.clip(y, 0, None)
    unit = max(unit_size, 1e-9)
    expected = np.full(len(t_all), np.nan)
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
    # quasi-Poisson: in units of unit * dispersion the series is Poisson-like
    scale = unit * dispersion
    k, mu = y / scale, expected[:n] / scale
    p = float(_norm_sf(s.z))
    lower, upper = _poisson_band(expected / scale, p)
    score = np.full(len(t_all), np.nan)
    score[:n] = _tail_score(k, mu)
    alert = np.abs(score) > s.z
    if grain == "day" and np.isfinite(dispersion):
        # sustained moves: k consecutive days whose total is beyond the band of a k-day total
        # (a 4-day drop of 2.5 sd a day is 5 sd over the 4 days). Each day is capped at its own
        # band first, so one huge day cannot make a run on its own.
        capped = np.clip(k, lower[:n], upper[:n])
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
    burn = t_all < s.burn_in_days
    return pd.DataFrame(
        {
            "date": dates_all.dt.date,
            "actual": np.concatenate([y, np.full(horizon, np.nan)]),
            "expected": expected,
            "lower": lower * scale,
            "upper": upper * scale,
            "score": score,
            "is_alert": alert & ~burn & np.isfinite(score),
            "is_forecast": np.arange(len(t_all)) >= n,
        }
    )


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
    rows = con.execute(
        "SELECT channel, sum(orders) / greatest(1, date_diff('day', min(date), max(date)) + 1) "
        "FROM mart_daily_kpis GROUP BY channel ORDER BY channel"
    ).fetchall()
    # the spread covers the whole history, not just the channel's own days
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
        f"{_format_value(actual, unit)} vs {_format_value(expected, unit)} expected"
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
            added += int((same & ~revenue["is_alert"]).sum())
            revenue.loc[same, "is_alert"] = True
    return added


EMPTY_FORECAST_SQL = """
CREATE OR REPLACE TABLE mart_kpi_forecast (
    grain VARCHAR, metric VARCHAR, channel VARCHAR, date DATE, actual DOUBLE, expected DOUBLE,
    lower DOUBLE, upper DOUBLE, score DOUBLE, is_alert BOOLEAN, is_forecast BOOLEAN
)
"""

EMPTY_ALERTS_SQL = """
CREATE OR REPLACE TABLE mart_kpi_alerts (
    grain VARCHAR, metric VARCHAR, channel VARCHAR, start_date DATE, end_date DATE,
    points BIGINT, direction VARCHAR, actual DOUBLE, expected DOUBLE, change DOUBLE,
    change_pct DOUBLE, score DOUBLE, message VARCHAR
)
"""


def kpi_alerts_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Fit forecasts to daily and weekly revenue, orders and new customers (all channels and
    each sales channel) and store them (mart_kpi_forecast) with their alerts (mart_kpi_alerts)."""
    defaults = ForecastSettings()
    settings = ForecastSettings(
        **{
            name: type(getattr(defaults, name))(ctx.param("kpi_alerts", name, value))
            for name, value in vars(defaults).items()
        }
    )
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
        cols += ["score", "is_alert", "is_forecast"]
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


# ---------------------------------------------------------------------------------------------
# Reading: which marts exist, filter options, filters <-> URL query parameters

STAGE_OF_MART = {
    "mart_kpi_meta": "customer_kpis",
    "mart_kpi_daily": "customer_kpis",
    "mart_kpi_activity": "customer_kpis",
    "mart_kpi_reach": "customer_kpis",
    "mart_kpi_base": "customer_kpis",
    "mart_kpi_order_days": "customer_kpis",
    "mart_funnel": "radar_funnel",
    "mart_cohorts": "radar_funnel",
    "mart_journeys": "radar_funnel",
    "mart_journey_stats": "radar_funnel",
    "mart_kpi_forecast": "kpi_alerts",
    "mart_kpi_alerts": "kpi_alerts",
}


def existing_tables(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> set[str]:
    """Which of `names` exist as tables or views (one catalog query, not one per name)."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_name IN (SELECT unnest(?::VARCHAR[]))",
        [list(names)],
    ).fetchall()
    return {r[0] for r in rows}


def missing_stages(con: duckdb.DuckDBPyConnection, marts: tuple[str, ...]) -> list[str]:
    """Build stages to run so that `marts` exist (empty when all exist)."""
    present = existing_tables(con, marts)
    return list(dict.fromkeys(STAGE_OF_MART[m] for m in marts if m not in present))


_TILE_MARTS = (
    "mart_kpi_meta",
    "mart_kpi_daily",
    "mart_kpi_activity",
    "mart_kpi_base",
    "mart_kpi_order_days",
    "mart_kpi_reach",
)


@dataclass(frozen=True)
class FilterOptions:
    """What the filters may choose from in this database."""

    data_start: date | None
    data_end: date | None
    channels: tuple[str, ...] = ()
    source_systems: tuple[str, ...] = ()
    segments: tuple[tuple[str, str], ...] = ()  # (scheme, segment), without ('all', 'all')
    missing: tuple[str, ...] = ()  # stages to run before the tiles can show

    @property
    def ready(self) -> bool:
        return not self.missing and self.data_end is not None


def filter_options(con: duckdb.DuckDBPyConnection) -> FilterOptions:
    """Channels, source systems, segments and the data's date range, from the marts."""
    missing = tuple(missing_stages(con, _TILE_MARTS))
    if missing:
        return FilterOptions(None, None, missing=missing)
    start, end = con.execute("SELECT data_start, data_end FROM mart_kpi_meta").fetchone()
    if start is None:
        end = None  # no orders yet: nothing to show
    dims = con.execute(
        "SELECT DISTINCT channel, source_system FROM mart_kpi_daily WHERE scheme = 'all'"
    ).fetchall()
    segments = con.execute(
        "SELECT DISTINCT scheme, segment FROM mart_kpi_base WHERE scheme <> 'all' "
        "ORDER BY scheme, segment"
    ).fetchall()
    order = {s: i for i, s in enumerate(SEGMENT_SCHEMES)}
    segments.sort(key=lambda r: (order.get(r[0], 99), r[0], r[1]))
    return FilterOptions(
        data_start=start,
        data_end=end,
        channels=tuple(sorted({c for c, _ in dims})),
        source_systems=tuple(sorted({s for _, s in dims})),
        segments=tuple((a, b) for a, b in segments),
    )


@dataclass(frozen=True)
class KpiFilters:
    """The command center's view: a period and a slice of customers.

    `period` is '7', '30', '90', '365' (days up to the data end) or 'custom' (`start`..`end`,
    inclusive). `scheme`/`segment` pick today's members of a segment ('all'/'all' = everyone);
    `channel` is a sales channel, `source_system` the system that took the order;
    `active_window` (days) defines an active customer.
    """

    period: str = "30"
    start: date | None = None
    end: date | None = None
    scheme: str = ALL
    segment: str = ALL
    channel: str = ALL
    source_system: str = ALL
    active_window: int = DEFAULT_ACTIVE_WINDOW

    def bounds(self, data_start: date, data_end: date) -> tuple[date, date, int]:
        """(first day, last day, days) of the current period, clamped to the data."""
        if self.period == "custom" and self.start and self.end:
            start, end = sorted((self.start, self.end))
            end = min(max(end, data_start), data_end)
            start = min(max(start, data_start), end)
        else:
            days = int(self.period) if str(self.period).isdigit() else 30
            end = data_end
            start = end - timedelta(days=days - 1)
        return start, end, (end - start).days + 1


def filters_to_params(f: KpiFilters) -> dict[str, str]:
    """URL query parameters for a view (defaults left out, so links stay short)."""
    d = KpiFilters()
    out: dict[str, str] = {}
    if f.period != d.period:
        out["period"] = f.period
    if f.period == "custom":
        if f.start:
            out["start"] = f.start.isoformat()
        if f.end:
            out["end"] = f.end.isoformat()
    if (f.scheme, f.segment) != (ALL, ALL):
        out["segment"] = f"{f.scheme}:{f.segment}"
    if f.channel != ALL:
        out["channel"] = f.channel
    if f.source_system != ALL:
        out["source"] = f.source_system
    if f.active_window != d.active_window:
        out["window"] = str(f.active_window)
    return out


def _parse_date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def filters_from_params(
    params: Mapping[str, str], options: FilterOptions
) -> tuple[KpiFilters, list[str]]:
    """A view from URL query parameters; unknown values fall back to the default and are named
    in the returned warnings (a link from another database must not break the page)."""
    warnings: list[str] = []
    kw: dict = {}
    period = params.get("period")
    if period:
        if period in {str(p) for p in STANDARD_PERIODS}:
            kw["period"] = period
        elif period == "custom":
            start, end = _parse_date(params.get("start")), _parse_date(params.get("end"))
            if start and end:
                kw.update(period="custom", start=start, end=end)
            else:
                warnings.append(
                    "period=custom needs start and end as YYYY-MM-DD "
                    f"(got start={params.get('start')!r}, end={params.get('end')!r}); "
                    "showing the last 30 days"
                )
        else:
            warnings.append(f"period={period!r} is not one of 7, 30, 90, 365, custom; using 30")
    segment = params.get("segment")
    if segment:
        scheme, _, name = segment.partition(":")
        if (scheme, name) in options.segments:
            kw.update(scheme=scheme, segment=name)
        else:
            warnings.append(f"segment={segment!r} is not in this data; showing all customers")
    for key, attr, choices in (
        ("channel", "channel", options.channels),
        ("source", "source_system", options.source_systems),
    ):
        value = params.get(key)
        if value and value != ALL:
            if value in choices:
                kw[attr] = value
            else:
                warnings.append(f"{key}={value!r} is not in this data; showing all")
    window = params.get("window")
    if window:
        if window in {str(w) for w in ACTIVE_WINDOWS}:
            kw["active_window"] = int(window)
        else:
            warnings.append(
                f"window={window!r} is not one of {', '.join(map(str, ACTIVE_WINDOWS))}; "
                f"using {DEFAULT_ACTIVE_WINDOW}"
            )
    return KpiFilters(**kw), warnings


# ---------------------------------------------------------------------------------------------
# Tiles


def _format_value(value: float | None, unit: str, compact: bool = False) -> str:
    """Display of a KPI value: counts and money with k/M (from 1,000 when `compact`), ratios as
    percent, scores with one decimal."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "score":
        return f"{value:.1f}"
    a = abs(value)
    if a >= 1e6:
        text = f"{value / 1e6:.2f}M"
    elif a >= 1e4:
        text = f"{value / 1e3:.1f}k"
    elif a >= 1e3 and compact:
        text = f"{value / 1e3:.1f}k"
    elif unit == "currency" and a < 1000:
        text = f"{value:,.2f}"
    else:
        text = f"{value:,.0f}"
    return text


format_value = _format_value


@dataclass(frozen=True)
class KpiTile:
    """One KPI for the current view: value, value in the previous period of equal length and a
    sparkline (the KPI evaluated at evenly spaced past dates, oldest first)."""

    key: str
    label: str
    unit: str  # count, currency, ratio (0..1), score (0..100)
    value: float | None
    previous: float | None = None
    sparkline: tuple[float, ...] = ()
    help: str = ""
    higher_is_better: bool = True
    note: str = ""  # why a value is missing, or what the tile ignores

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def change_pct(self) -> float | None:
        if self.change is None or not self.previous:
            return None
        return self.change / abs(self.previous)

    def delta_text(self) -> str | None:
        """'+1,234 (+5.0%)', or '+1.2 pp' for ratios; None when there is nothing to compare."""
        c = self.change
        if c is None or not math.isfinite(c):
            return None
        if self.unit == "ratio":
            return f"{c * 100:+.1f} pp"
        if self.unit == "score":
            return f"{c:+.1f}"
        sign = "+" if c >= 0 else "-"
        text = sign + _format_value(abs(c), self.unit, compact=True)
        pct = self.change_pct
        if pct is not None:  # whole percent from 10% on, so the tile's delta stays short
            text += f" ({pct:+.0%})" if abs(pct) >= 0.1 else f" ({pct:+.1%})"
        return text

    @property
    def display(self) -> str:
        return _format_value(self.value, self.unit)


def _slice_where(f: KpiFilters) -> tuple[str, list]:
    """WHERE clause for mart_kpi_daily's additive rows (base grain: no 'all' rows)."""
    return (
        "scheme = ? AND segment = ? AND (channel = ? OR ? = 'all') "
        "AND (source_system = ? OR ? = 'all')",
        [f.scheme, f.segment, f.channel, f.channel, f.source_system, f.source_system],
    )


class _Cum:
    """Cumulative sums of daily series over data_start..data_end for O(1) window sums."""

    def __init__(self, data_start: date, days: int):
        self.start = data_start
        self.days = days

    def index(self, d: date) -> int:
        return (d - self.start).days

    def at(self, cum: np.ndarray, d: date) -> float:
        """Cumulative value through day d (0 before the data starts)."""
        i = self.index(d)
        if i < 0:
            return 0.0
        return float(cum[min(i, len(cum) - 1)])

    def window(self, cum: np.ndarray, end: date, days: int) -> float:
        """Sum over the `days` days ending on `end` (inclusive)."""
        return self.at(cum, end) - self.at(cum, end - timedelta(days=days))


def _daily_arrays(
    con: duckdb.DuckDBPyConnection, f: KpiFilters, data_start: date, days: int
) -> dict[str, np.ndarray]:
    where, params = _slice_where(f)
    rows = con.execute(
        "SELECT date, sum(orders), sum(revenue), sum(new_customers) FROM mart_kpi_daily "  # noqa: S608 our where
        f"WHERE {where} GROUP BY date",
        params,
    ).fetchall()
    out = {k: np.zeros(days) for k in ("orders", "revenue", "new_customers")}
    for d, orders, revenue, new in rows:
        i = (d - data_start).days
        if 0 <= i < days:
            out["orders"][i] = orders
            out["revenue"][i] = revenue
            out["new_customers"][i] = new
    return {k: np.cumsum(v) for k, v in out.items()}


def _activity_arrays(
    con: duckdb.DuckDBPyConnection, f: KpiFilters, windows: list[int], data_start: date, days: int
) -> dict[int, dict[str, np.ndarray]]:
    """Per window: cumulative started, first_in_slice, lapsed, and the active count per day."""
    rows = con.execute(
        "SELECT window_days, date, started, first_in_slice, lapsed FROM mart_kpi_activity "
        "WHERE window_days IN (SELECT unnest(?::INTEGER[])) AND scheme = ? AND segment = ? "
        "AND channel = ? AND source_system = ?",
        [windows, f.scheme, f.segment, f.channel, f.source_system],
    ).fetchall()
    arrays = {w: {k: np.zeros(days) for k in ("started", "first", "lapsed")} for w in set(windows)}
    for w, d, started, first, lapsed in rows:
        i = (d - data_start).days
        if 0 <= i < days:
            a = arrays[w]
            a["started"][i] += started
            a["first"][i] += first
            a["lapsed"][i] += lapsed
    out = {}
    for w, a in arrays.items():
        c = {k: np.cumsum(v) for k, v in a.items()}
        c["active"] = c["started"] - c["lapsed"]  # a level, not a cumulative sum
        out[w] = c
    return out


def _buyers_direct(con: duckdb.DuckDBPyConnection, f: KpiFilters, start: date, end: date) -> int:
    """Distinct customers with an order in [start, end] in the slice (custom periods only: the
    standard period lengths come from mart_kpi_activity). Reads mart_kpi_order_days, which is
    sorted by date, so only the period's row groups are scanned."""
    where = (
        "d.date BETWEEN ? AND ? AND (d.channel = ? OR ? = 'all') "
        "AND (d.source_system = ? OR ? = 'all')"
    )
    params = [start, end, f.channel, f.channel, f.source_system, f.source_system]
    if f.scheme == ALL:
        sql = f"SELECT count(DISTINCT d.customer_id) FROM mart_kpi_order_days d WHERE {where}"  # noqa: S608 our SQL
    else:
        sql = (
            "SELECT count(DISTINCT d.customer_id) FROM mart_kpi_order_days d "  # noqa: S608 our SQL
            f"WHERE {where} AND d.customer_id IN "
            "(SELECT customer_id FROM mart_kpi_segments WHERE scheme = ? AND segment = ?)"
        )
        params += [f.scheme, f.segment]
    return con.execute(sql, params).fetchone()[0]


def _average_clv(con: duckdb.DuckDBPyConnection, f: KpiFilters) -> float | None:
    has_clv = con.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'mart_customer' AND table_schema = 'main' AND column_name = 'clv'"
    ).fetchone()[0]
    if not has_clv:
        return None
    if f.scheme == ALL:
        row = con.execute("SELECT avg(clv) FROM mart_customer").fetchone()
    else:
        row = con.execute(
            "SELECT avg(m.clv) FROM mart_customer m JOIN mart_kpi_segments s USING (customer_id) "
            "WHERE s.scheme = ? AND s.segment = ?",
            [f.scheme, f.segment],
        ).fetchone()
    return float(row[0]) if row[0] is not None else None


def hygiene_score(con: duckdb.DuckDBPyConnection) -> tuple[float | None, float | None]:
    """(latest, previous build's) overall data hygiene score, 0..100, from
    `hygiene.latest_scores`; (None, None) before the hygiene stage has run."""
    from ccrm_core.librarian import hygiene

    if not store.table_exists(con, "hygiene_checks"):
        return None, None
    scores = hygiene.latest_scores(con)
    if not isinstance(scores, Mapping) or scores.get("overall") is None:
        return None, None
    previous = scores.get("previous")
    prev = previous.get("overall") if isinstance(previous, Mapping) else None
    return float(scores["overall"]), (float(prev) if prev is not None else None)


def _spark_dates(end: date, period_days: int, earliest: date, points: int = 28) -> list[date]:
    """Evenly spaced evaluation dates over the last four periods, oldest first."""
    step = max(1, math.ceil(4 * period_days / points))
    out = [end - timedelta(days=step * k) for k in range(points)]
    return [d for d in reversed(out) if d >= earliest]


def _calendar(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """(first, last) order day of the tiles' calendar; None before customer_kpis ran."""
    if missing_stages(con, _TILE_MARTS):
        return None
    start, end = con.execute("SELECT data_start, data_end FROM mart_kpi_meta").fetchone()
    return None if start is None else (start, end)


def kpi_tiles(con: duckdb.DuckDBPyConnection, f: KpiFilters) -> list[KpiTile]:
    """Every KPI tile for the view `f` (see README "KPI definitions"). Empty list when the
    customer_kpis stage has not run."""
    calendar = _calendar(con)
    if calendar is None:
        return []
    data_start, data_end = calendar
    start, end, p = f.bounds(data_start, data_end)
    prev_end = start - timedelta(days=1)
    days = (data_end - data_start).days + 1
    cal = _Cum(data_start, days)
    w = f.active_window
    windows = [w] + ([p] if p in activity_windows() and p != w else [])
    daily = _daily_arrays(con, f, data_start, days)
    act = _activity_arrays(con, f, windows, data_start, days)
    aw = act[w]
    full_window = data_start + timedelta(days=p - 1)  # first end date with a whole period
    spark_sum = _spark_dates(end, p, full_window)
    spark_level = _spark_dates(end, p, data_start)

    def window_sum(key: str, d: date) -> float:
        return cal.window(daily[key], d, p)

    def active(d: date, window: int = w) -> float:
        return cal.at(act[window]["active"], d)

    def ratio(a: float, b: float) -> float | None:
        return a / b if b else None

    def aov(d: date):
        return ratio(window_sum("revenue", d), window_sum("orders", d))

    def rev_per_active(d: date):
        return ratio(window_sum("revenue", d), active(d))

    def lapsed(d: date) -> float:
        return cal.window(aw["lapsed"], d, p)

    def retention(d: date):
        base = active(d - timedelta(days=p))
        return None if not base else 1.0 - lapsed(d) / base

    def churn(d: date):
        base = active(d - timedelta(days=p))
        return None if not base else lapsed(d) / base

    def repeat(d: date):
        if p in act:
            buyers = active(d, p)
        elif d in (end, prev_end):
            buyers = _buyers_direct(con, f, d - timedelta(days=p - 1), d)
        else:
            return None
        firsts = cal.window(aw["first"], d, p)
        return None if not buyers else 1.0 - firsts / buyers

    def series(fn, dates) -> tuple[float, ...]:
        vals = [fn(d) for d in dates]
        return tuple(float(v) for v in vals if v is not None)

    tiles = [
        KpiTile(
            "active_customers",
            f"Active ({w}d)",
            "count",
            active(end),
            active(prev_end),
            series(active, spark_level),
            f"Active customers: customers with an order in the {w} days up to the period end "
            f"(sales channel/source filters apply). Previous: at {prev_end}.",
        ),
        KpiTile(
            "new_customers",
            "New cust.",
            "count",
            window_sum("new_customers", end),
            window_sum("new_customers", prev_end),
            series(lambda d: window_sum("new_customers", d), spark_sum),
            "New customers: customers whose first order ever falls in the period (on the "
            "filtered channel and "
            "source system of that first order).",
        ),
        KpiTile(
            "repeat_rate",
            "Repeat rate",
            "ratio",
            repeat(end),
            repeat(prev_end),
            series(repeat, spark_sum) if p in act else (),
            "Share of the period's buyers who had bought (in the filtered channel/source) "
            "before the period.",
        ),
        KpiTile(
            "retention_rate",
            "Retention",
            "ratio",
            retention(end),
            retention(prev_end),
            series(retention, spark_sum),
            f"(E - N) / S: customers active ({w}d) at the period start who are still active at "
            "its end; E active at end, N spells started in the period, S active at start.",
        ),
        KpiTile(
            "churn_rate",
            "Churn",
            "ratio",
            churn(end),
            churn(prev_end),
            series(churn, spark_sum),
            f"1 - retention: customers whose last order became older than {w} days during the "
            "period, over those active at its start.",
            higher_is_better=False,
        ),
        KpiTile(
            "revenue",
            "Revenue",
            "currency",
            window_sum("revenue", end),
            window_sum("revenue", prev_end),
            series(lambda d: window_sum("revenue", d), spark_sum),
            "Order revenue in the period (currency units, net of discounts).",
        ),
        KpiTile(
            "orders",
            "Orders",
            "count",
            window_sum("orders", end),
            window_sum("orders", prev_end),
            series(lambda d: window_sum("orders", d), spark_sum),
            "Orders placed in the period.",
        ),
        KpiTile(
            "aov",
            "Avg order",
            "currency",
            aov(end),
            aov(prev_end),
            series(aov, spark_sum),
            "Average order value: revenue / orders in the period.",
        ),
        KpiTile(
            "revenue_per_active",
            "Rev / active",
            "currency",
            rev_per_active(end),
            rev_per_active(prev_end),
            series(rev_per_active, spark_sum),
            f"Revenue per active customer: revenue in the period / active customers ({w}d) at "
            "its end.",
        ),
    ]
    clv = _average_clv(con, f)
    tiles.append(
        KpiTile(
            "avg_clv",
            "Avg CLV",
            "currency",
            clv,
            help="Average lifetime value: mean predicted CLV (mart_customer.clv) of the segment "
            "today; a snapshot, so no change. Channel and source filters do not apply.",
            note="" if clv is not None else "run the value stage to see CLV",
        )
    )
    tiles.append(_reach_tile(con, f, end, prev_end, spark_level, cal, days))
    score, previous_score = hygiene_score(con)
    tiles.append(
        KpiTile(
            "hygiene_score",
            "Hygiene",
            "score",
            score,
            previous_score,
            help="Data hygiene score: overall data quality (0-100) of the latest hygiene checks; "
            "the change "
            "is against the previous build, not the previous period.",
            note="" if score is not None else "run the hygiene stage to see it",
        )
    )
    return tiles


def _reach_tile(con, f: KpiFilters, end, prev_end, spark_dates, cal: _Cum, days) -> KpiTile:
    rows = con.execute(
        "SELECT date, newly_contactable FROM mart_kpi_reach WHERE scheme = ? AND segment = ? "
        "AND source_system = ?",
        [f.scheme, f.segment, f.source_system],
    ).fetchall()
    base = con.execute(
        "SELECT customers FROM mart_kpi_base WHERE scheme = ? AND segment = ? "
        "AND source_system = ?",
        [f.scheme, f.segment, f.source_system],
    ).fetchone()
    daily = np.zeros(days)
    before = 0.0
    for d, n in rows:
        i = cal.index(d)
        if i < 0:
            before += n  # consent given before the first order or event on record
        else:
            daily[min(i, days - 1)] += n
    cum = np.cumsum(daily) + before
    customers = base[0] if base else 0
    now = cal.at(cum, end) + (before if cal.index(end) < 0 else 0)
    share = f" ({now / customers:.0%} of {customers:,} customers)" if customers else ""
    return KpiTile(
        "contactable_reach",
        "Reach",
        "count",
        now,
        cal.at(cum, prev_end) + (before if cal.index(prev_end) < 0 else 0),
        tuple(cal.at(cum, d) for d in spark_dates),
        "Contactable reach: customers whose current consent is opt-in on at least one channel"
        + share
        + ". "
        "Change counts opt-ins still current that were given in the period (consents keep only "
        "the latest status). Sales-channel filter does not apply.",
    )


# ---------------------------------------------------------------------------------------------
# Funnel, cohorts, journeys, trends: read functions

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


@dataclass
class CommandCenterView:
    """Everything the command center page shows for one view (for benches and tests)."""

    filters: KpiFilters
    options: FilterOptions
    tiles: list[KpiTile] = field(default_factory=list)
    funnel: pd.DataFrame | None = None
    cohorts: pd.DataFrame | None = None
    paths: pd.DataFrame | None = None
    path_lengths: pd.DataFrame | None = None
    time_to_convert: pd.DataFrame | None = None
    forecast: pd.DataFrame | None = None
    alerts: pd.DataFrame | None = None


def command_center(
    con: duckdb.DuckDBPyConnection,
    filters: KpiFilters | None = None,
    metric: str = "revenue",
    grain: str = "day",
) -> CommandCenterView:
    """The whole page's data for a view, the same calls the page makes (one per section)."""
    f = filters or KpiFilters()
    opts = filter_options(con)
    view = CommandCenterView(f, opts)
    if not opts.ready:
        return view
    _, _, p = f.bounds(opts.data_start, opts.data_end)
    trend_channel = f.channel if f.channel in monitored_channels(con) else ALL
    view.tiles = kpi_tiles(con, f)
    view.funnel = funnel_by_segment(con, p, funnel_scheme(f, opts))
    view.cohorts = cohort_retention(con, f.scheme, f.segment)
    view.paths = first_purchase_paths(con, f.scheme, f.segment)
    view.path_lengths = path_length_distribution(con, f.scheme, f.segment)
    view.time_to_convert = time_to_convert_distribution(con, f.scheme, f.segment)
    view.forecast = kpi_forecast(con, metric, trend_channel, grain)
    view.alerts = kpi_alerts(con)
    return view


# ---------------------------------------------------------------------------------------------
# Figures (data in, go.Figure out)

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=320, template="plotly_white")
_ALERT_COLOUR = "#d62728"
_BAND_COLOUR = "rgba(31, 119, 180, 0.15)"


def figure_funnel(funnel: pd.DataFrame, segment: str | None = None) -> go.Figure:
    """Funnel for one row of `funnel_by_segment` (the first row when `segment` is None), each
    stage labelled with its count and its rate from the stage before."""
    fig = go.Figure()
    if funnel is None or funnel.empty:
        return fig.update_layout(title="Funnel: no data", **_LAYOUT)
    row = funnel.iloc[0] if segment is None else funnel[funnel["segment"] == segment].iloc[0]
    counts = [int(row[s]) for s in FUNNEL_STAGES]
    text = [f"{counts[0]:,}"] + [
        f"{c:,} ({c / p:.0%})" if p else f"{c:,}" for p, c in zip(counts, counts[1:], strict=False)
    ]
    fig.add_trace(
        go.Funnel(
            y=[s.capitalize() for s in FUNNEL_STAGES],
            x=counts,
            text=text,
            textinfo="text",
            marker=dict(color="#1f77b4"),
            hovertemplate="%{y}: %{x:,} customers, %{percentPrevious:.0%} of the stage before"
            "<extra></extra>",
        )
    )
    title = f"Funnel: {row['segment']} (% of the stage before)"
    return fig.update_layout(title=title, **_LAYOUT)


def figure_funnel_rates(funnel: pd.DataFrame) -> go.Figure:
    """Heatmap of stage-to-stage conversion rates, one row per segment."""
    fig = go.Figure()
    if funnel is None or funnel.empty:
        return fig.update_layout(title="Stage-to-stage rates: no data", **_LAYOUT)
    stages = FUNNEL_STAGES[1:]
    z = funnel[[f"rate_{s}" for s in stages]].to_numpy(dtype=float)
    labels = [
        f"{s} ({int(n):,})" for s, n in zip(funnel["segment"], funnel["reached"], strict=True)
    ]
    fig.add_trace(
        go.Heatmap(
            z=z,
            x=[f"{a} → {b}" for a, b in zip(FUNNEL_STAGES, stages, strict=False)],
            y=labels,
            text=[[("–" if not math.isfinite(v) else f"{v:.0%}") for v in r] for r in z],
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            showscale=False,
            hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    return fig.update_layout(
        title="Stage-to-stage rates by segment (reached in brackets)", **_LAYOUT
    )


def figure_cohort_heatmap(cohorts: pd.DataFrame) -> go.Figure:
    """Cohort retention heatmap: acquisition month (rows, newest at the bottom) x months since
    first purchase (columns, from 1), cell = share of the cohort that ordered that month."""
    fig = go.Figure()
    if cohorts is None or cohorts.empty:
        return fig.update_layout(title="Cohort retention: no data", **_LAYOUT)
    c = cohorts[cohorts["months_since"] >= 1]
    grid = c.pivot(index="cohort_month", columns="months_since", values="retention")
    sizes = cohorts[cohorts["months_since"] == 0].set_index("cohort_month")["cohort_customers"]
    grid = grid.reindex(sizes.index)
    ylabels = [f"{pd.Timestamp(m):%Y-%m} ({int(n):,})" for m, n in sizes.items()]
    z = grid.to_numpy(dtype=float)
    fig.add_trace(
        go.Heatmap(
            z=z,
            x=[int(x) for x in grid.columns],
            y=ylabels,
            text=[["" if not math.isfinite(v) else f"{v:.0%}" for v in r] for r in z],
            texttemplate="%{text}",
            textfont=dict(size=9),
            colorscale="Blues",
            zmin=0,
            showscale=False,
            hovertemplate="cohort %{y}<br>month %{x}: %{z:.1%} ordered<extra></extra>",
        )
    )
    fig.update_xaxes(title="months since first purchase", dtick=1)
    fig.update_yaxes(autorange="reversed", title=None)
    layout = {**_LAYOUT, "height": max(320, 18 * len(ylabels) + 90)}
    return fig.update_layout(title="Monthly cohort retention (cohort size)", **layout)


def figure_journey_sankey(paths: pd.DataFrame) -> go.Figure:
    """Sankey of the most common paths to purchase, aligned on the purchase (rightmost column);
    columns are steps before the purchase, link width = conversions."""
    fig = go.Figure()
    if paths is None or paths.empty:
        return fig.update_layout(title="Journeys: no data", **_LAYOUT)
    steps = max(1, max(len(p) for p in paths["path"]))
    nodes: dict[tuple[int, str], int] = {}

    def node(pos: int, label: str) -> int:
        return nodes.setdefault((pos, label), len(nodes))

    links: dict[tuple[int, int], float] = {}
    for path, n in zip(paths["path"], paths["conversions"], strict=True):
        chain = list(path) or ["(no tracked touch)"]
        ids = [node(len(chain) - i, ch) for i, ch in enumerate(chain)] + [node(0, "Purchase")]
        for a, b in zip(ids, ids[1:], strict=False):
            links[(a, b)] = links.get((a, b), 0.0) + float(n)
    labels = [k[1] for k in nodes]
    xs = [0.01 + 0.98 * (steps - k[0]) / steps for k in nodes]
    ys = [0.0] * len(nodes)
    for pos in {k[0] for k in nodes}:
        members = [i for k, i in nodes.items() if k[0] == pos]
        for j, i in enumerate(members):
            ys[i] = 0.05 + 0.9 * (j + 0.5) / len(members)
    fig.add_trace(
        go.Sankey(
            arrangement="snap",
            node=dict(label=labels, x=xs, y=ys, pad=12, thickness=14),
            link=dict(
                source=[a for a, _ in links],
                target=[b for _, b in links],
                value=list(links.values()),
                hovertemplate="%{source.label} → %{target.label}: %{value:,.0f}<extra></extra>",
            ),
        )
    )
    title = f"Top {len(paths)} paths to first purchase (from {paths['source'].iloc[0]})"
    return fig.update_layout(title=title, **_LAYOUT)


def figure_distribution(frame: pd.DataFrame, x: str, y: str, title: str, x_title: str) -> go.Figure:
    """Bar chart of a distribution (path lengths, days to convert)."""
    fig = go.Figure()
    if frame is None or frame.empty:
        return fig.update_layout(title=f"{title}: no data", **_LAYOUT)
    fig.add_trace(go.Bar(x=frame[x], y=frame[y], marker_color="#1f77b4"))
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title="customers")
    return fig.update_layout(title=title, bargap=0.1, **_LAYOUT)


def figure_forecast(forecast: pd.DataFrame, title: str, show_days: int | None = None) -> go.Figure:
    """Actual series, forecast, prediction band, alerts (red) and the forecast horizon.
    `show_days` zooms the x axis on the last days of history (plus the horizon); the whole
    series stays one double-click away."""
    fig = go.Figure()
    if forecast is None or forecast.empty:
        return fig.update_layout(title=f"{title}: no data", **_LAYOUT)
    f = forecast
    fig.add_trace(
        go.Scatter(
            x=f["date"], y=f["upper"], line=dict(width=0), hoverinfo="skip", showlegend=False
        )
    )
    fig.add_trace(
        go.Scatter(
            x=f["date"],
            y=f["lower"],
            line=dict(width=0),
            fill="tonexty",
            fillcolor=_BAND_COLOUR,
            name="prediction band",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=f["date"],
            y=f["expected"],
            line=dict(color="#1f77b4", dash="dot", width=1),
            name="forecast",
        )
    )
    hist = f[~f["is_forecast"]]
    fig.add_trace(
        go.Scatter(
            x=hist["date"], y=hist["actual"], line=dict(color="#333333", width=1), name="actual"
        )
    )
    alerts = hist[hist["is_alert"]]
    fig.add_trace(
        go.Scatter(
            x=alerts["date"],
            y=alerts["actual"],
            mode="markers",
            marker=dict(color=_ALERT_COLOUR, size=8),
            name="alert",
        )
    )
    if f["is_forecast"].any():
        fig.add_vrect(
            x0=f.loc[f["is_forecast"], "date"].min(),
            x1=f["date"].max(),
            fillcolor="rgba(0,0,0,0.04)",
            line_width=0,
        )
    if show_days and not hist.empty:
        last = pd.Timestamp(hist["date"].max())
        fig.update_xaxes(range=[last - pd.Timedelta(days=show_days), pd.Timestamp(f["date"].max())])
    fig.update_layout(title=title, legend=dict(orientation="h", y=-0.15), **_LAYOUT)
    return fig


# ---------------------------------------------------------------------------------------------
# Bench (`ccrm bench --only command_center`)


def _page_calls(f: KpiFilters, view: CommandCenterView) -> list:
    """The cached results one page run reads (one st.cache_data entry each)."""
    return [
        view.options,
        view.tiles,
        view.alerts,
        view.forecast,
        view.funnel,
        view.cohorts,
        view.paths,
        view.path_lengths,
        view.time_to_convert,
        ["all"],  # monitored_channels
    ]


def bench_command_center(ctx) -> tuple[int, dict]:
    """Full uncached page computations for several views (first one on a cold connection),
    then the cached rerun: per cached call, the data-version query the cache key needs plus
    unpickling the stored result (what st.cache_data does on a hit).
    Figures: uncached_cold_ms, uncached_p50_ms, uncached_max_ms, cached_p50_ms."""
    import pickle
    import statistics
    import time

    con = store.connect_reader(ctx.db)
    try:
        opts = filter_options(con)
        seg = opts.segments[0] if opts.segments else (ALL, ALL)
        views = [
            KpiFilters(),
            KpiFilters(period="7"),
            KpiFilters(period="365", channel=opts.channels[0] if opts.channels else ALL),
            KpiFilters(period="90", scheme=seg[0], segment=seg[1], active_window=90),
            KpiFilters(
                period="custom",
                start=opts.data_end - timedelta(days=44),
                end=opts.data_end - timedelta(days=5),
            ),
        ]
        uncached, blobs = [], []
        for f in views:
            t0 = time.perf_counter()
            view = command_center(con, f)
            uncached.append((time.perf_counter() - t0) * 1000)
            blobs.append([pickle.dumps(r) for r in _page_calls(f, view)])
        cached = []
        for _ in range(5):
            for page in blobs:
                t0 = time.perf_counter()
                for blob in page:
                    store.data_version(con)
                    pickle.loads(blob)
                cached.append((time.perf_counter() - t0) * 1000)
        customers = con.execute("SELECT count(*) FROM mart_customer_kpis").fetchone()[0]
    finally:
        con.close()
    return customers, {
        "uncached_cold_ms": round(uncached[0], 1),
        "uncached_p50_ms": round(statistics.median(uncached[1:]), 1),
        "uncached_max_ms": round(max(uncached[1:]), 1),
        "cached_p50_ms": round(statistics.median(cached), 2),
    }
