"""Customer KPIs over the marts the pipeline builds.

`mart_daily_kpis` grain: one row per day x sales channel x source system, with
orders, revenue (currency units), buyers (distinct customers who ordered that day) and
new_customers (customers whose first order ever falls on that day, counted on the channel and
source system of that first order).
"""

from __future__ import annotations

import duckdb

from ccrm_core.pipeline import BuildContext

DAILY_KPIS_SQL = """
CREATE OR REPLACE TABLE mart_daily_kpis AS
WITH o AS (
    SELECT customer_id, CAST(ts AS DATE) AS date, coalesce(channel, 'unknown') AS channel,
           source_system, revenue, order_id, ts
    FROM customer_orders
),
first_orders AS (
    SELECT customer_id, arg_min(date, ts) AS date, arg_min(channel, ts) AS channel,
           arg_min(source_system, ts) AS source_system
    FROM o GROUP BY customer_id
),
daily AS (
    SELECT date, channel, source_system, count(*) AS orders, sum(revenue) AS revenue,
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
"""


def daily_kpis_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    con.execute(DAILY_KPIS_SQL)
    return con.execute("SELECT count(*) FROM mart_daily_kpis").fetchone()[0]
