"""Customer journeys: the ordered addressable touches before each order (and those that led to
none), aggregated into `mart_paths` for attribution.

Grain of `mart_paths`: one row per (scheme, segment, path) with
`path` VARCHAR[] (channels in touch order), `conversions` (journeys ending in an order),
`nulls` (journeys without one) and `value` (revenue of those orders, currency units).
Scheme 'all' / segment 'all' holds everyone; further schemes are the segment columns of
`mart_customer` (rfm_segment, value_tier, needs_segment: the customer's segment at build time).

Definitions
- A touch is an addressable-channel event that shows engagement, per channel (`TOUCH_TYPES`):
  opens and clicks of email and push, clicks of sms, clicks and visits from paid search, display
  and social, calls of the call center, and sends of direct mail (mail has no open or click to
  observe). Impressions, bare digital sends, logins and unsubscribes are not touches; several
  touch events of one customer, channel, campaign and day count once. Anonymous
  touches count once their cookie is linked to a customer (the `customer_events` view).
- A converting journey: the touches of a customer in the `lookback_days` before an order and
  after the previous order (a touch belongs to the first order at or after it). An order with no
  such touch is a journey with an empty path (kept, so totals match orders; not attributable).
- A non-converting journey: touches not followed by an order within `lookback_days`, cut into
  windows of `lookback_days` counted from the previous order (or the epoch). Windows that end
  after the data end are still open (the customer may yet buy) and are left out.
- Paths keep the last `max_touches` touches (default 20).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext
from ccrm_core.radar.segments import available_schemes

TOUCH_TYPES: dict[str, tuple[str, ...]] = {
    "email": ("open", "click"),
    "push": ("open", "click"),
    "sms": ("click",),
    "direct_mail": ("send",),
    "paid_search": ("click", "visit"),
    "display": ("click", "visit"),
    "social": ("click", "visit"),
    "call_center": ("call",),
}


def _touch_filter(touch_types: dict[str, tuple[str, ...]]) -> tuple[str, list]:
    """A WHERE fragment (parameterised) selecting touches of the given channel/types."""
    clauses, params = [], []
    for channel, types in sorted(touch_types.items()):
        if channel not in store.ADDRESSABLE_CHANNELS:
            raise ValueError(
                f"paths.touch_types names channel {channel!r}, which is not addressable; "
                f"choose from {', '.join(store.ADDRESSABLE_CHANNELS)}"
            )
        if not types:
            continue
        clauses.append(f"(channel = ? AND event_type IN ({', '.join('?' * len(types))}))")
        params += [channel, *types]
    if not clauses:
        raise ValueError("paths.touch_types selects no touch; name at least one channel and type")
    return "(" + " OR ".join(clauses) + ")", params


JOURNEYS_SQL = """
CREATE OR REPLACE TEMP TABLE _journeys AS
WITH touches AS (
    -- one touch per customer, channel, campaign and day: an email opened then clicked is one
    -- interaction, not two
    SELECT customer_id, min(ts) AS ts, channel, 0 AS kind, NULL::VARCHAR AS order_id,
           NULL::DOUBLE AS revenue
    FROM customer_events
    WHERE customer_id IS NOT NULL AND ts <= ? AND {touch_filter}
    GROUP BY customer_id, channel, coalesce(campaign_id, ''), CAST(ts AS DATE)
),
orders AS (
    SELECT customer_id, ts, NULL::VARCHAR AS channel, 1 AS kind, order_id, revenue
    FROM customer_orders
    WHERE customer_id IS NOT NULL AND ts <= ?
),
seq AS (SELECT * FROM touches UNION ALL SELECT * FROM orders),
marked AS (
    SELECT *,
        first_value(CASE WHEN kind = 1 THEN ts END IGNORE NULLS) OVER nxt AS next_order_ts,
        first_value(order_id IGNORE NULLS) OVER nxt AS next_order_id,
        last_value(CASE WHEN kind = 1 THEN ts END IGNORE NULLS) OVER prv AS prev_order_ts
    FROM seq
    WINDOW nxt AS (PARTITION BY customer_id ORDER BY ts, kind, order_id
                   ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING),
           prv AS (PARTITION BY customer_id ORDER BY ts, kind, order_id
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
assigned AS (
    SELECT customer_id, ts, channel,
        CASE WHEN next_order_ts IS NOT NULL
                  AND date_diff('second', ts, next_order_ts) <= ? * 86400
             THEN next_order_id END AS order_id,
        prev_order_ts
    FROM marked WHERE kind = 0
),
journey_touches AS (
    SELECT customer_id, ts, channel, order_id,
        CASE WHEN order_id IS NOT NULL THEN 'o:' || order_id
             ELSE 'n:' || customer_id || ':' || coalesce(CAST(prev_order_ts AS VARCHAR), '-')
                  || ':' || CAST(floor(date_diff('second',
                                 coalesce(prev_order_ts, TIMESTAMP '1970-01-01'), ts)
                               / (? * 86400.0)) AS VARCHAR)
        END AS journey_id,
        CASE WHEN order_id IS NULL THEN
            coalesce(prev_order_ts, TIMESTAMP '1970-01-01') + to_days(CAST(
                (floor(date_diff('second', coalesce(prev_order_ts, TIMESTAMP '1970-01-01'), ts)
                       / (? * 86400.0)) + 1) * ? AS INTEGER))
        END AS window_end
    FROM assigned
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY journey_id ORDER BY ts DESC, channel) AS back
    FROM journey_touches
    WHERE order_id IS NOT NULL OR window_end <= ?
),
paths AS (
    SELECT journey_id, any_value(customer_id) AS customer_id, any_value(order_id) AS order_id,
           list(channel ORDER BY ts, channel) AS path
    FROM ranked WHERE back <= ?
    GROUP BY journey_id
)
SELECT o.customer_id, coalesce(p.path, []::VARCHAR[]) AS path, 1 AS conversions, 0 AS nulls,
       o.revenue AS value
FROM orders o LEFT JOIN paths p ON p.order_id = o.order_id
UNION ALL
SELECT customer_id, path, 0, 1, 0.0 FROM paths WHERE order_id IS NULL
"""


def build_journeys(
    con: duckdb.DuckDBPyConnection,
    as_of,
    lookback_days: int = 30,
    max_touches: int = 20,
    touch_types: dict[str, tuple[str, ...]] | None = None,
) -> int:
    """Write temp table `_journeys` (customer_id, path, conversions, nulls, value), one row per
    journey; returns the number of journeys. `as_of` is the last day of data (a date)."""
    if lookback_days < 1:
        raise ValueError(f"paths.lookback_days must be >= 1 day, got {lookback_days}")
    touch_filter, touch_params = _touch_filter(touch_types or TOUCH_TYPES)
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)  # as_of is a date: include the whole day
    sql = JOURNEYS_SQL.replace("{touch_filter}", touch_filter)
    con.execute(
        sql,
        [
            end,
            *touch_params,
            end,
            lookback_days,
            lookback_days,
            lookback_days,
            lookback_days,
            end,
            max_touches,
        ],
    )
    return con.execute("SELECT count(*) FROM _journeys").fetchall()[0][0]


def paths_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Build stage `paths`: mart_paths per scheme and segment (see module docstring)."""
    build_journeys(
        con,
        ctx.as_of,
        lookback_days=int(ctx.param("paths", "lookback_days", 30)),
        max_touches=int(ctx.param("paths", "max_touches", 20)),
        touch_types=ctx.param("paths", "touch_types", None),
    )
    parts = [
        "SELECT 'all' AS scheme, 'all' AS segment, path, conversions, nulls, value FROM _journeys"
    ]
    for scheme in available_schemes(con):
        col = store.quote_ident(scheme)
        segment = f"coalesce(CAST(m.{col} AS VARCHAR), 'unknown')"
        parts.append(
            f"SELECT '{scheme}', {segment}, j.path, j.conversions, j.nulls, j.value "  # noqa: S608 our names
            "FROM _journeys j JOIN mart_customer m USING (customer_id)"
        )
    union = " UNION ALL ".join(parts)
    sql = (
        "CREATE OR REPLACE TABLE mart_paths AS SELECT scheme, segment, path, "  # noqa: S608 our names
        "sum(conversions)::BIGINT AS conversions, sum(nulls)::BIGINT AS nulls, "
        f"{store.exact_sum('value')} AS value FROM ({union}) GROUP BY scheme, segment, path "
        "ORDER BY scheme, segment, conversions DESC, path"
    )
    con.execute(sql)
    con.execute("DROP TABLE IF EXISTS _journeys")
    return con.execute("SELECT count(*) FROM mart_paths").fetchall()[0][0]


# ---------------------------------------------------------------------------------------------
# Readers for pages


def segments(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Schemes and segments present in mart_paths, with their journeys: DataFrame(scheme,
    segment, conversions, nulls, untracked, value, untracked_value). `conversions` counts every
    converting journey (one per order); `untracked` those of them with no touch (an empty path,
    not attributable: no model can credit a channel), `value` and `untracked_value` their
    revenue (currency units)."""
    columns = ["scheme", "segment", "conversions", "nulls", "untracked", "value"]
    if not store.table_exists(con, "mart_paths"):
        return pd.DataFrame(columns=[*columns, "untracked_value"])
    return con.execute(
        "SELECT scheme, segment, sum(conversions) AS conversions, sum(nulls) AS nulls, "  # noqa: S608 our SQL
        "coalesce(sum(conversions) FILTER (WHERE len(path) = 0), 0) AS untracked, "
        f"{store.exact_sum('value')} AS value, "
        f"{store.exact_sum('CASE WHEN len(path) = 0 THEN value ELSE 0 END')} AS untracked_value "
        "FROM mart_paths GROUP BY scheme, segment "
        "ORDER BY scheme <> 'all', scheme, segment"
    ).df()


def load_paths(con: duckdb.DuckDBPyConnection, scheme: str = "all", segment: str = "all"):
    """The aggregated journeys of one segment (mart_paths rows)."""
    return con.execute(
        "SELECT path, conversions, nulls, value FROM mart_paths WHERE scheme = ? AND segment = ?",
        [scheme, segment],
    ).df()


def top_paths(
    con: duckdb.DuckDBPyConnection, scheme: str = "all", segment: str = "all", limit: int = 15
) -> pd.DataFrame:
    """The most frequent converting paths: DataFrame(path as 'a > b' text, touches,
    conversions, nulls, conversion_rate, value)."""
    return con.execute(
        """
        SELECT array_to_string(path, ' > ') AS path, len(path) AS touches, conversions, nulls,
               conversions / nullif(conversions + nulls, 0) AS conversion_rate, value
        FROM mart_paths
        WHERE scheme = ? AND segment = ? AND len(path) > 0
        ORDER BY conversions DESC, nulls DESC, path LIMIT ?
        """,
        [scheme, segment, limit],
    ).df()
