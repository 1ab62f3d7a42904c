"""Behaviour features per customer (SQL, scales to millions of customers): event and
engagement counts, click rate, tenure, channel mix, sales-channel mix and category mix, the
inputs of the needs segments and behaviour columns of mart_customer.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import pandas as pd

from ccrm_core.foundation import store

ENGAGEMENT_TYPES = ("open", "click", "visit", "call", "login")
MAX_CATEGORIES = 12  # category share columns kept in mart_customer (the rest count as "other")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "none"


def top_categories(con: duckdb.DuckDBPyConnection, limit: int = MAX_CATEGORIES) -> list[str]:
    """The most frequent order categories (by orders), at most `limit`."""
    rows = con.execute(
        "SELECT category FROM customer_orders WHERE category IS NOT NULL "
        "GROUP BY category ORDER BY count(*) DESC, category LIMIT ?",
        [limit],
    ).fetchall()
    return [r[0] for r in rows]


def behaviour_features(con: duckdb.DuckDBPyConnection, as_of) -> pd.DataFrame:
    """Per customer (every customer_id in `customers`, ordered by it), behaviour up to `as_of`:

    - events, engagements (opens, clicks, visits, calls, logins), click_rate (clicks per send or
      impression), events_per_week (engagements per week of tenure), tenure_weeks (weeks from
      first seen: record created, first event or first order), days_since_last_event;
    - share_<channel>: share of the customer's events (touches and responses) on each event
      channel (0 without events): the channel mix a customer lives in;
    - order_share_<channel>: share of orders per sales channel (NULL without orders);
    - cat_<category>: share of orders per category, top MAX_CATEGORIES categories (NULL without
      orders); top_channel (most engaged event channel), top_category (most ordered category).
    """
    ev_cols, ev_params = _channel_share_columns()
    od_cols, od_params = _order_mix_columns(con)
    sql = _behaviour_sql(ev_cols, od_cols)
    frame = con.execute(sql, [as_of, *ev_params, *od_params, as_of, as_of, as_of]).df()
    frame["tenure_weeks"] = frame["tenure_weeks"].fillna(0.0)
    frame["events_per_week"] = frame["engagements"] / frame["tenure_weeks"].clip(lower=1.0)
    return frame


# A feature column: (column name, SQL aggregate with one ? for its channel or category).
_Column = tuple[str, str]


def _channel_share_columns() -> tuple[list[_Column], list[Any]]:
    """share_<channel> per event channel (aggregates over the per-channel rows), and their
    parameters in order."""
    ev_cols: list[_Column] = []  # (column, SQL expression over the per-channel rows)
    ev_params: list[Any] = []
    for ch in store.EVENT_CHANNELS:
        ev_cols.append(
            (
                f"share_{_slug(ch)}",
                "coalesce(sum(CASE WHEN channel = ? THEN events END) / nullif(sum(events), 0), 0)",
            )
        )
        ev_params.append(ch)
    return ev_cols, ev_params


def _order_mix_columns(con: duckdb.DuckDBPyConnection) -> tuple[list[_Column], list[Any]]:
    """order_share_<channel> per sales channel and cat_<category> per top category (aggregates
    over the customer's orders), and their parameters in order."""
    od_cols: list[_Column] = []
    od_params: list[Any] = []
    for ch in store.ORDER_CHANNELS:
        od_cols.append(
            (f"order_share_{_slug(ch)}", "avg(CASE WHEN channel = ? THEN 1.0 ELSE 0.0 END)")
        )
        od_params.append(ch)
    used: set[str] = set()
    for cat in top_categories(con):
        col = f"cat_{_slug(cat)}"
        while col in used:
            col += "_x"
        used.add(col)
        od_cols.append((col, "avg(CASE WHEN category = ? THEN 1.0 ELSE 0.0 END)"))
        od_params.append(cat)
    return od_cols, od_params


def _select_list(cols: list[_Column]) -> str:
    return "".join(f", {expr} AS {store.quote_ident(col)}" for col, expr in cols)


def _behaviour_sql(ev_cols: list[_Column], od_cols: list[_Column]) -> str:
    """The behaviour_features statement. Parameters: as_of, the event columns' parameters, the
    order columns' parameters, then as_of three times."""
    engagement_list = ", ".join(f"'{t}'" for t in ENGAGEMENT_TYPES)  # our constants
    sql = f"""
        WITH per_channel AS (
            SELECT customer_id, channel,
                   count(*) AS events,
                   count(*) FILTER (WHERE event_type IN ({engagement_list})) AS engagements,
                   count(*) FILTER (WHERE event_type = 'click') AS clicks,
                   count(*) FILTER (WHERE event_type IN ('send', 'impression')) AS reached,
                   min(ts) AS first_ts, max(ts) AS last_ts
            FROM customer_events
            WHERE customer_id IS NOT NULL AND CAST(ts AS DATE) <= CAST(? AS DATE)
            GROUP BY customer_id, channel
        ),
        ev AS (
            SELECT customer_id, sum(events) AS events, sum(engagements) AS engagements,
                   sum(clicks) AS clicks, sum(reached) AS reached,
                   min(first_ts) AS first_event, max(last_ts) AS last_event,
                   -- ties broken by name: a plain arg_max/mode picks whichever row a thread
                   -- saw first, so two builds of the same data could disagree
                   CASE WHEN sum(engagements) > 0 THEN arg_max(channel, row(engagements, channel))
                   END AS top_channel
                   {_select_list(ev_cols)}
            FROM per_channel GROUP BY customer_id
        ),
        od AS (
            SELECT customer_id, min(ts) AS first_order_ts,
                   mode(category ORDER BY category) AS top_category
                   {_select_list(od_cols)}
            FROM customer_orders
            WHERE CAST(ts AS DATE) <= CAST(? AS DATE)
            GROUP BY customer_id
        ),
        c AS (
            SELECT customer_id, min(created_at) AS created_at FROM customers GROUP BY customer_id
        )
        SELECT c.customer_id,
               CAST(coalesce(ev.events, 0) AS BIGINT) AS events,
               CAST(coalesce(ev.engagements, 0) AS BIGINT) AS engagements,
               coalesce(ev.clicks / nullif(ev.reached, 0), 0) AS click_rate,
               greatest(date_diff('day',
                   CAST(least(c.created_at, ev.first_event, od.first_order_ts) AS DATE),
                   CAST(? AS DATE)), 0) / 7.0 AS tenure_weeks,
               date_diff('day', CAST(ev.last_event AS DATE), CAST(? AS DATE))
                   AS days_since_last_event,
               ev.top_channel, od.top_category
               {"".join(f", coalesce(ev.{store.quote_ident(c_)}, 0) AS {store.quote_ident(c_)}" for c_, _ in ev_cols)}
               {"".join(f", od.{store.quote_ident(c_)}" for c_, _ in od_cols)}
        FROM c
        LEFT JOIN ev ON ev.customer_id = c.customer_id
        LEFT JOIN od ON od.customer_id = c.customer_id
        ORDER BY c.customer_id
    """  # noqa: S608 - identifiers come from our vocabularies and slugs; values are parameters
    return sql
