"""Identity resolution: source records and anonymous ids -> one customer_id per person.

Output contract (other stages and pages read only these):
- `identity_map` (source_system, source_id, anonymous_id, customer_id, method, match_probability):
  one row per source record (anonymous_id NULL) and one per anonymous id (source columns NULL).
- `customers`: one golden record per customer (src_customers columns with customer_id first).
- views `customer_orders`, `customer_events` (raw rows plus customer_id; anonymous events carry
  the customer of their linked cookie, NULL while unlinked) and `customer_consents`
  (customer_id, channel, status, ts: the latest permission per customer and channel).

Baseline method until probabilistic matching lands: every source record is its own customer,
and an anonymous id belongs to the record it logged in as (`login` events).
"""

from __future__ import annotations

import duckdb

from ccrm_core.pipeline import BuildContext

CUSTOMER_VIEWS_SQL = """
CREATE OR REPLACE VIEW customer_orders AS
SELECT o.*, m.customer_id
FROM orders o JOIN identity_map m
  ON m.source_system = o.source_system AND m.source_id = o.source_id;

CREATE OR REPLACE VIEW customer_events AS
SELECT e.*, coalesce(k.customer_id, a.customer_id) AS customer_id
FROM events e
LEFT JOIN identity_map k
  ON k.source_system = e.source_system AND k.source_id = e.source_id
LEFT JOIN identity_map a
  ON e.source_id IS NULL AND a.anonymous_id = e.anonymous_id;

CREATE OR REPLACE VIEW customer_consents AS
SELECT customer_id, channel, status, ts
FROM (
    SELECT m.customer_id, c.channel, c.status, c.ts,
           row_number() OVER (PARTITION BY m.customer_id, c.channel
                              ORDER BY c.ts DESC, c.status DESC) AS rn
    FROM consents c JOIN identity_map m
      ON m.source_system = c.source_system AND m.source_id = c.source_id
) WHERE rn = 1;
"""


def identity_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    con.execute(
        """
        CREATE OR REPLACE TABLE identity_map AS
        WITH records AS (
            SELECT source_system, source_id,
                   'C' || lpad(CAST(row_number() OVER (ORDER BY source_system, source_id) AS VARCHAR),
                               9, '0') AS customer_id
            FROM src_customers
        ),
        logins AS (
            SELECT anonymous_id, arg_max(source_system, ts) AS source_system,
                   arg_max(source_id, ts) AS source_id
            FROM events
            WHERE event_type = 'login' AND anonymous_id IS NOT NULL AND source_id IS NOT NULL
            GROUP BY anonymous_id
        )
        SELECT source_system, source_id, NULL::VARCHAR AS anonymous_id, customer_id,
               'source_record' AS method, 1.0 AS match_probability
        FROM records
        UNION ALL
        SELECT NULL, NULL, l.anonymous_id, r.customer_id, 'login', 1.0
        FROM logins l JOIN records r USING (source_system, source_id)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE customers AS
        SELECT m.customer_id, s.* EXCLUDE (source_system, source_id),
               s.source_system AS first_source
        FROM src_customers s JOIN identity_map m USING (source_system, source_id)
        """
    )
    con.execute(CUSTOMER_VIEWS_SQL)
    return con.execute("SELECT count(*) FROM identity_map").fetchone()[0]
