"""Build stages of the command center's marts (Radar): daily_kpis (the contract mart),
customer_kpis and radar_funnel, their SQL, and the periods and windows the marts are built for.

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
  mart_funnel: one row per period_days x scheme x segment with the stage counts,
  `membership` ('period_start' for RFM segments as of the day before the period, 'today' for
  the other schemes, 'everyone' for scheme 'all') and the build's `loyal_min_orders`.
- `mart_kpi_forecast`, `mart_kpi_alerts` (stage `kpi_alerts`, built in `alerts`).

Saved rule segments are not built into these marts (they change without a build): `saved`
computes a saved segment's rows of the segment marts on demand with the same SELECTs
(`*_SELECT`, `over_segments`), scheme 'saved', segment = the segment's name.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb

from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext
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

KPI_DAILY_SELECT = f"""
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
KPI_DAILY_SQL = "CREATE OR REPLACE TABLE mart_kpi_daily AS" + KPI_DAILY_SELECT

# Spells: an order day starts a spell when it is the first in its slice or comes W or more days
# after the previous one; the spell lapses W days after an order day with no order in the next
# W days. Slices are the four combinations of (channel or all) x (source system or all).
#
# Counted without a row per customer x window x segment (tens of rows per order day, which made
# this the slowest statement of the build): strings are coded as integers (codes in sort order,
# so the mart is ordered by them); customers with the same segments share a `combo`; an order
# day keeps only which windows its gaps reach (`pb`/`nb`: the largest window not above the gap),
# so order days are counted per combo, then per segment, before each window takes its share.
# Parameters: $1 the windows (days), $2 the last day a lapse may fall on.
KPI_ACTIVITY_SELECT = """
WITH od AS (
    SELECT DISTINCT customer_id, CAST(ts AS DATE) AS d, coalesce(channel, 'unknown') AS channel,
           source_system
    FROM customer_orders
),
buyers AS (SELECT DISTINCT customer_id FROM od),
memberships AS (
    SELECT customer_id, s.scheme, s.segment
    FROM buyers
    JOIN mart_kpi_segments s USING (customer_id)
),
seg_codes AS (
    SELECT scheme, segment, row_number() OVER (ORDER BY scheme, segment) AS seg
    FROM (SELECT DISTINCT scheme, segment FROM memberships)
),
members AS (
    SELECT m.customer_id, list(c.seg ORDER BY c.seg) AS segs
    FROM memberships m JOIN seg_codes c
      ON c.scheme IS NOT DISTINCT FROM m.scheme AND c.segment IS NOT DISTINCT FROM m.segment
    GROUP BY m.customer_id
),
combos AS (
    SELECT customer_id, row_number() OVER () AS cid, dense_rank() OVER (ORDER BY segs) AS combo,
           segs
    FROM members
),
combo_segs AS (SELECT combo, unnest(any_value(segs)) AS seg FROM combos GROUP BY combo),
channels AS (
    SELECT channel, row_number() OVER (ORDER BY channel) AS ch
    FROM (SELECT channel FROM od UNION SELECT 'all')
),
sources AS (
    SELECT source_system, row_number() OVER (ORDER BY source_system) AS src
    FROM (SELECT source_system FROM od UNION SELECT 'all')
),
alls AS (
    SELECT (SELECT ch FROM channels WHERE channel = 'all') AS ch,
           (SELECT src FROM sources WHERE source_system = 'all') AS src
),
coded AS (
    SELECT c.cid, c.combo, o.d, ch.ch, so.src
    FROM od o JOIN combos c USING (customer_id)
    JOIN channels ch USING (channel) JOIN sources so USING (source_system)
),
sliced AS (
    SELECT cid, combo, d, ch, src FROM coded
    UNION ALL SELECT DISTINCT c.cid, c.combo, c.d, c.ch, a.src FROM coded c, alls a
    UNION ALL SELECT DISTINCT c.cid, c.combo, c.d, a.ch, c.src FROM coded c, alls a
    UNION ALL SELECT DISTINCT c.cid, c.combo, c.d, a.ch, a.src FROM coded c, alls a
),
gaps AS (
    SELECT combo, d, ch, src, d - lag(d) OVER w AS prev_gap, lead(d) OVER w - d AS next_gap
    FROM sliced
    WINDOW w AS (PARTITION BY cid, ch, src ORDER BY d)
),
buckets AS (
    SELECT combo, d, ch, src,
           prev_gap IS NULL AS first,
           list_max(list_filter($1::INTEGER[], lambda w: w <= prev_gap)) AS pb,
           next_gap IS NULL AS last,
           list_max(list_filter($1::INTEGER[], lambda w: w <= next_gap)) AS nb
    FROM gaps
),
starts AS (
    SELECT s.seg, b.ch, b.src, b.d, b.first, b.pb, sum(b.n) AS n
    FROM (SELECT combo, ch, src, d, first, pb, count(*) AS n FROM buckets GROUP BY ALL) b
    JOIN combo_segs s USING (combo)
    GROUP BY ALL
),
lapses AS (
    SELECT s.seg, b.ch, b.src, b.d, b.last, b.nb, sum(b.n) AS n
    FROM (SELECT combo, ch, src, d, last, nb, count(*) AS n FROM buckets GROUP BY ALL) b
    JOIN combo_segs s USING (combo)
    GROUP BY ALL
),
windows AS (SELECT unnest($1::INTEGER[]) AS window_days),
changes AS (
    SELECT g.seg, w.window_days, g.ch, g.src, g.d AS date, g.n AS started,
           CASE WHEN g.first THEN g.n ELSE 0 END AS first_in_slice, 0 AS lapsed
    FROM starts g, windows w
    WHERE g.first OR g.pb >= w.window_days
    UNION ALL
    SELECT g.seg, w.window_days, g.ch, g.src, g.d + w.window_days AS date, 0, 0, g.n
    FROM lapses g, windows w
    WHERE (g.last OR g.nb >= w.window_days) AND g.d + w.window_days <= $2
),
totals AS (
    SELECT window_days, seg, ch, src, date, sum(started)::BIGINT AS started,
           sum(first_in_slice)::BIGINT AS first_in_slice, sum(lapsed)::BIGINT AS lapsed
    FROM changes
    GROUP BY ALL
)
SELECT t.window_days, s.scheme, s.segment, c.channel, o.source_system, t.date, t.started,
       t.first_in_slice, t.lapsed
FROM totals t JOIN seg_codes s USING (seg) JOIN channels c USING (ch) JOIN sources o USING (src)
ORDER BY t.window_days, t.seg, t.ch, t.src, t.date
"""
KPI_ACTIVITY_SQL = "CREATE OR REPLACE TABLE mart_kpi_activity AS" + KPI_ACTIVITY_SELECT

# Distinct buyers of custom periods (the standard lengths come from the activity mart).
ORDER_DAYS_SQL = """
CREATE OR REPLACE TABLE mart_kpi_order_days AS
SELECT DISTINCT CAST(ts AS DATE) AS date, coalesce(channel, 'unknown') AS channel, source_system,
       customer_id
FROM customer_orders
ORDER BY date
"""

KPI_REACH_SELECT = """
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
ORDER BY s.scheme, s.segment, src.source_system, date
"""

KPI_BASE_SELECT = """
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
ORDER BY s.scheme, s.segment, src.source_system
"""
KPI_REACH_SQL = (
    f"CREATE OR REPLACE TABLE mart_kpi_reach AS {KPI_REACH_SELECT};\n"
    f"CREATE OR REPLACE TABLE mart_kpi_base AS {KPI_BASE_SELECT};\n"
)


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
# Segments (`_funnel_segments`, see `_funnel_membership`): RFM segments as of the day before
# the period (today's RFM segment is decided by the very orders the funnel counts: a customer
# who ordered last week cannot be Lost today), other schemes today's membership.
FUNNEL_SELECT = """
WITH flags AS (
    SELECT m.period_days, m.scheme, m.segment, m.membership, k.orders,
           coalesce(k.last_event_date > CAST(? AS DATE) - m.period_days, false) AS reached,
           coalesce(k.last_engaged_date > CAST(? AS DATE) - m.period_days, false) AS engaged,
           coalesce(k.last_order_date > CAST(? AS DATE) - m.period_days, false) AS ordered
    FROM _funnel_segments m JOIN mart_customer_kpis k USING (customer_id)
)
SELECT period_days, scheme, segment, count(*)::BIGINT AS customers,
       count(*) FILTER (WHERE reached)::BIGINT AS reached,
       count(*) FILTER (WHERE reached AND engaged)::BIGINT AS engaged,
       count(*) FILTER (WHERE reached AND engaged AND ordered)::BIGINT AS converted,
       count(*) FILTER (WHERE reached AND engaged AND ordered AND orders >= 2)::BIGINT AS repeat,
       count(*) FILTER (WHERE reached AND engaged AND ordered AND orders >= 2
                          AND orders >= ?)::BIGINT AS loyal,
       min(membership) AS membership, CAST(? AS INTEGER) AS loyal_min_orders
FROM flags
GROUP BY period_days, scheme, segment
ORDER BY period_days, scheme, segment
"""
FUNNEL_SQL = "CREATE OR REPLACE TABLE mart_funnel AS" + FUNNEL_SELECT

PERIOD_START_SCHEMES = ("rfm_segment",)  # schemes the funnel recomputes as of the period start


def _funnel_membership(con: duckdb.DuckDBPyConnection, as_of, periods) -> None:
    """Temp table _funnel_segments(period_days, customer_id, scheme, segment, membership): per
    funnel period, everyone ('all'), each RFM segment as of the day before the period
    (membership 'period_start', recomputed from the orders up to that day; customers without an
    order by then are 'No purchase yet') and the other schemes' segments today ('today')."""
    import pandas as pd

    from ccrm_core.radar.segments.schemes import NO_PURCHASE
    from ccrm_core.radar.value import rfm_scores, rfm_summary_sql

    recomputed = [s for s in PERIOD_START_SCHEMES if s in segments.available_schemes(con)]
    frames = []
    customers = con.execute(
        "SELECT customer_id FROM mart_kpi_segments WHERE scheme = 'all' ORDER BY customer_id"
    ).df()
    for p in periods:
        if "rfm_segment" in recomputed:
            summary = rfm_summary_sql(con, as_of - timedelta(days=p), "W")
            scored = summary[["customer_id"]].assign(segment=rfm_scores(summary)["rfm_segment"])
            seg = customers.merge(scored, on="customer_id", how="left")
            frames.append(
                seg.assign(
                    period_days=p,
                    scheme="rfm_segment",
                    segment=seg["segment"].fillna(NO_PURCHASE).astype(str),
                    membership="period_start",
                )
            )
    columns = ["period_days", "customer_id", "scheme", "segment", "membership"]
    start = pd.concat(frames, ignore_index=True)[columns] if frames else None
    con.register("_funnel_start", start if start is not None else pd.DataFrame(columns=columns))
    try:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _funnel_segments AS
            SELECT p.period_days, s.customer_id, s.scheme, s.segment,
                   CASE WHEN s.scheme = 'all' THEN 'everyone' ELSE 'today' END AS membership
            FROM mart_kpi_segments s, (SELECT unnest(?::INTEGER[]) AS period_days) p
            WHERE s.scheme NOT IN (SELECT unnest(?::VARCHAR[]))
            UNION ALL
            SELECT CAST(period_days AS INTEGER), CAST(customer_id AS VARCHAR),
                   CAST(scheme AS VARCHAR), CAST(segment AS VARCHAR), CAST(membership AS VARCHAR)
            FROM _funnel_start
            """,
            [list(periods), recomputed or [""]],
        )
    finally:
        con.unregister("_funnel_start")


# Cohort = calendar month of a customer's first order; a customer counts as retained in month m
# of their cohort when they ordered in that calendar month (month 0 is every member).
COHORTS_SELECT = """
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
COHORTS_SQL = "CREATE OR REPLACE TABLE mart_cohorts AS" + COHORTS_SELECT

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

JOURNEYS_BY_SEGMENT_SELECT = f"""
SELECT s.scheme, s.segment, j.path, CAST(count(*) AS DOUBLE) AS conversions,
       CAST(0 AS DOUBLE) AS nulls, {store.exact_sum("j.value")} AS value
FROM _journeys j JOIN mart_kpi_segments s USING (customer_id)
GROUP BY ALL
ORDER BY s.scheme, s.segment, conversions DESC
"""  # noqa: S608 our SQL; sums from store.exact_sum

JOURNEY_STATS_SELECT = """
SELECT s.scheme, s.segment, CAST(len(j.path) AS INTEGER) AS path_length,
       CAST(j.days_to_convert AS INTEGER) AS days_to_convert, count(*)::BIGINT AS customers
FROM _journeys j JOIN mart_kpi_segments s USING (customer_id)
GROUP BY ALL
ORDER BY s.scheme, s.segment, path_length, days_to_convert
"""

JOURNEY_MARTS_SQL = (
    f"CREATE OR REPLACE TABLE mart_journeys AS {JOURNEYS_BY_SEGMENT_SELECT};\n"
    f"CREATE OR REPLACE TABLE mart_journey_stats AS {JOURNEY_STATS_SELECT};\n"
    "DROP TABLE _journeys;\n"
)


def over_segments(select: str, table: str) -> str:
    """One of the *_SELECT statements above with its segment membership read from `table` (a
    table of ours with customer_id, scheme, segment) instead of mart_kpi_segments: the same
    SQL for a segment that is not built into the marts (a saved rule segment, see `saved`)."""
    token = "JOIN mart_kpi_segments s USING (customer_id)"
    if token not in select:
        raise ValueError("not a statement over mart_kpi_segments")
    return select.replace(token, f"JOIN {table} s USING (customer_id)")


def journeys_sql(customers: str | None = None) -> str:
    """JOURNEYS_SQL, for the customers of table `customers` (ours, with a customer_id column)
    only when given: journeys are per customer, so the subset's rows are the same."""
    if customers is None:
        return JOURNEYS_SQL
    scope = "FROM mart_customer_kpis WHERE first_order_ts IS NOT NULL"
    return JOURNEYS_SQL.replace(
        scope,
        f"{scope} AND customer_id IN (SELECT customer_id FROM {customers})",  # noqa: S608 our table name
    )


def radar_funnel_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Build mart_funnel, mart_cohorts, mart_journeys and mart_journey_stats."""
    loyal = int(ctx.param("radar_funnel", "loyal_min_orders", LOYAL_MIN_ORDERS))
    lookback = int(ctx.param("radar_funnel", "journey_lookback_days", JOURNEY_LOOKBACK_DAYS))
    as_of = ctx.as_of
    _funnel_membership(con, as_of, STANDARD_PERIODS)
    con.execute(FUNNEL_SQL, [as_of, as_of, as_of, loyal, loyal])
    con.execute("DROP TABLE _funnel_segments")
    con.execute(COHORTS_SQL)
    con.execute(JOURNEYS_SQL, [lookback])
    con.execute(JOURNEY_MARTS_SQL)
    return con.execute(
        "SELECT (SELECT count(*) FROM mart_funnel) + (SELECT count(*) FROM mart_cohorts) "
        "+ (SELECT count(*) FROM mart_journeys)"
    ).fetchone()[0]
