"""RFM summary (one row per customer) and RFM quintile scores with named segments.

Purchases count at most once per day; frequency (repeat purchase days), recency and T are in
time units (weeks of 7 days by default), monetary_value in currency units: see the package
docstring for the conventions.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.foundation import store

TIME_UNIT_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}
DAYS_PER_MONTH = 365.25 / 12

RFM_SEGMENTS: tuple[tuple[str, str], ...] = (
    # (name, rule in r/f/m quintile scores; the first rule that matches wins)
    ("Champions", "r >= 4 and f >= 4"),
    ("Loyal", "r >= 3 and f >= 3"),
    ("Cannot lose them", "r <= 1 and f >= 4 and m >= 4"),
    ("At risk", "r <= 2 and f >= 3"),
    ("Potential loyalist", "r >= 4 and f = 2"),
    ("New customers", "r = 5 and f = 1"),
    ("Promising", "r = 4 and f = 1"),
    ("Need attention", "r = 3 and f = 2"),
    ("About to sleep", "r = 3 and f = 1"),
    ("Hibernating", "r = 2 and f <= 2"),
    ("Lost", "r = 1 and f <= 2"),
)
RFM_SEGMENT_ORDER = tuple(name for name, _ in RFM_SEGMENTS)


# ---------------------------------------------------------------------------------------------
# RFM summary


def _unit_days(time_unit: str) -> float:
    try:
        return TIME_UNIT_DAYS[time_unit]
    except KeyError:
        raise ValueError(
            f"time_unit {time_unit!r} is not supported; use one of {', '.join(TIME_UNIT_DAYS)}"
        ) from None


def rfm_summary(
    transactions: pd.DataFrame,
    observation_end: date | str | pd.Timestamp,
    time_unit: str = "W",
    customer_id_col: str = "customer_id",
    datetime_col: str = "ts",
    monetary_col: str = "revenue",
) -> pd.DataFrame:
    """One row per customer (grain: customer) from transactions (customer_id, ts, revenue).

    Returns customer_id, orders, revenue, first_order_date, last_order_date, frequency, recency,
    T, monetary_value (see the module docstring; durations in `time_unit`, "W" = 7 days).
    Transactions after `observation_end` (a day, inclusive) are ignored.
    """
    missing = [c for c in (customer_id_col, datetime_col, monetary_col) if c not in transactions]
    if missing:
        raise ValueError(
            f"transactions lack column(s) {', '.join(missing)}; "
            f"expected {customer_id_col}, {datetime_col}, {monetary_col}"
        )
    unit = _unit_days(time_unit)
    end = pd.Timestamp(observation_end).normalize()
    tx = pd.DataFrame(
        {
            "customer_id": transactions[customer_id_col].to_numpy(),
            "day": pd.to_datetime(transactions[datetime_col]).dt.normalize().to_numpy(),
            "revenue": transactions[monetary_col].astype(float).to_numpy(),
            "orders": 1,
        }
    )
    tx = tx[tx["day"] <= end]
    days = tx.groupby(["customer_id", "day"], as_index=False)[["revenue", "orders"]].sum()
    days = days.sort_values(["customer_id", "day"], kind="stable")
    first = days.groupby("customer_id", sort=True).agg(
        orders=("orders", "sum"),
        revenue=("revenue", "sum"),
        first_order_date=("day", "min"),
        last_order_date=("day", "max"),
        purchase_days=("day", "size"),
        first_day_revenue=("revenue", "first"),
    )
    out = pd.DataFrame(index=first.index)
    out["orders"] = first["orders"].astype("int64")
    out["revenue"] = first["revenue"]
    out["first_order_date"] = first["first_order_date"].dt.date
    out["last_order_date"] = first["last_order_date"].dt.date
    out["frequency"] = (first["purchase_days"] - 1).astype("int64")
    out["recency"] = (first["last_order_date"] - first["first_order_date"]).dt.days / unit
    out["T"] = (end - first["first_order_date"]).dt.days / unit
    repeat_revenue = first["revenue"] - first["first_day_revenue"]
    out["monetary_value"] = np.where(
        out["frequency"] > 0, repeat_revenue / out["frequency"].clip(lower=1), 0.0
    )
    return out.reset_index()


RFM_SUMMARY_SQL = f"""
WITH days AS (
    SELECT customer_id, CAST(ts AS DATE) AS day, {store.exact_sum("revenue")} AS revenue, count(*) AS orders
    FROM customer_orders
    WHERE CAST(ts AS DATE) <= CAST(? AS DATE)
    GROUP BY customer_id, CAST(ts AS DATE)
)
SELECT customer_id,
       CAST(sum(orders) AS BIGINT) AS orders,
       {store.exact_sum("revenue")} AS revenue,
       min(day) AS first_order_date,
       max(day) AS last_order_date,
       CAST(count(*) - 1 AS BIGINT) AS frequency,
       date_diff('day', min(day), max(day)) / CAST(? AS DOUBLE) AS recency,
       date_diff('day', min(day), CAST(? AS DATE)) / CAST(? AS DOUBLE) AS "T",
       CASE WHEN count(*) > 1
            THEN ({store.exact_sum("revenue")} - arg_min(revenue, day)) / (count(*) - 1)
            ELSE 0.0 END AS monetary_value
FROM days
GROUP BY customer_id
ORDER BY customer_id
"""  # noqa: S608 our SQL; sums from store.exact_sum


def rfm_summary_sql(
    con: duckdb.DuckDBPyConnection, observation_end: date, time_unit: str = "W"
) -> pd.DataFrame:
    """`rfm_summary` computed by DuckDB over the `customer_orders` view (same columns, same
    numbers; the pipeline uses this one because it scales)."""
    unit = _unit_days(time_unit)
    frame = con.execute(RFM_SUMMARY_SQL, [observation_end, unit, observation_end, unit]).df()
    for col in ("first_order_date", "last_order_date"):
        frame[col] = pd.to_datetime(frame[col]).dt.date
    return frame


# ---------------------------------------------------------------------------------------------
# RFM quintile scores and named segments


def quintile_score(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Score 1-5: 1 + floor(5 x share of customers strictly worse). Ties share one score, so the
    many customers tied at the bottom (e.g. one order) all score 1."""
    ranked = values if higher_is_better else -values
    worse = ranked.rank(method="min") - 1  # customers strictly worse
    score = 1 + np.floor(5 * worse / max(len(values), 1))
    return score.clip(1, 5).astype("int64")


def rfm_scores(summary: pd.DataFrame) -> pd.DataFrame:
    """r_score (later last purchase is better), f_score (more orders), m_score (more revenue),
    each 1-5 per customer, and rfm_segment from RFM_SEGMENTS."""
    last = pd.to_datetime(summary["last_order_date"]).astype("int64")
    out = pd.DataFrame(index=summary.index)
    out["r_score"] = quintile_score(last, higher_is_better=True)
    out["f_score"] = quintile_score(summary["orders"].astype(float))
    out["m_score"] = quintile_score(summary["revenue"].astype(float))
    out["rfm_segment"] = rfm_segment_names(out["r_score"], out["f_score"], out["m_score"])
    return out


def rfm_segment_names(r: pd.Series, f: pd.Series, m: pd.Series) -> np.ndarray:
    """Named RFM segment per customer from quintile scores (first matching rule wins)."""
    r, f, m = np.asarray(r), np.asarray(f), np.asarray(m)
    conditions = [
        (r >= 4) & (f >= 4),
        (r >= 3) & (f >= 3),
        (r <= 1) & (f >= 4) & (m >= 4),
        (r <= 2) & (f >= 3),
        (r >= 4) & (f == 2),
        (r == 5) & (f == 1),
        (r == 4) & (f == 1),
        (r == 3) & (f == 2),
        (r == 3) & (f == 1),
        (r == 2) & (f <= 2),
        (r == 1) & (f <= 2),
    ]
    return np.select(conditions, list(RFM_SEGMENT_ORDER), default="Unscored")
