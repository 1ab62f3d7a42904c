"""A tiny hand-made company for the command center tests, with every KPI worked out
by hand in tests/test_kpis.py.

Identity is laid down directly in the contract's shape (one customer per source record, ids =
source ids) so these tests exercise only the KPI stages, whatever identity method is current.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ccrm_core.foundation import pipeline, store

CUSTOMERS = [  # source_system, source_id (= customer_id)
    ("shop", "A"),
    ("shop", "B"),
    ("crm", "C"),
    ("shop", "D"),
    ("crm", "E"),
]

ORDERS = [  # order_id, ts, source_system, source_id, revenue, channel
    ("o1", "2024-01-10 10:00", "shop", "A", 100.0, "web"),
    ("o2", "2024-06-01 10:00", "shop", "A", 50.0, "web"),
    ("o3", "2024-12-20 10:00", "shop", "A", 30.0, "store"),
    ("o4", "2024-12-05 10:00", "shop", "B", 80.0, "web"),
    ("o5", "2024-12-06 10:00", "shop", "B", 20.0, "web"),
    ("o6", "2023-12-01 10:00", "crm", "C", 40.0, "store"),
    ("o7", "2024-12-31 10:00", "crm", "C", 60.0, "store"),  # the last order: the data end
    ("o8", "2023-11-15 10:00", "shop", "D", 20.0, "web"),
    ("o9", "2023-12-15 10:00", "shop", "D", 10.0, "web"),
]

EVENTS = [  # event_id, ts, channel, event_type, source_system, source_id, anonymous_id
    ("e1", "2024-12-31 09:00", "web", "visit", "shop", "A", None),
    ("e2", "2024-12-15 09:00", "email", "send", "shop", "A", None),
    ("e3", "2024-08-01 09:00", "email", "send", "shop", "B", None),  # beyond 90-day lookback
    ("e4", "2024-12-01 09:00", "email", "send", "shop", "B", None),
    ("e5", "2024-12-04 09:00", "email", "click", "shop", "B", None),
    ("e6", "2024-12-04 13:00", "web", "visit", "shop", "B", None),
    ("e7", "2024-12-24 09:00", "sms", "send", "crm", "C", None),
    ("e8", "2023-11-10 09:00", "display", "impression", "shop", "D", None),
    ("e9", "2024-12-10 09:00", "email", "open", "shop", "D", None),
    ("e10", "2024-12-20 09:00", "display", "impression", "crm", "E", None),
    ("e11", "2024-12-30 09:00", "web", "visit", None, None, "anon-1"),  # never logged in
]

CONSENTS = [  # source_system, source_id, channel, status, ts
    ("shop", "A", "email", "opt_in", "2024-03-01"),
    ("shop", "A", "sms", "opt_out", "2024-05-01"),
    ("shop", "B", "email", "opt_in", "2024-12-10"),
    ("crm", "E", "push", "opt_in", "2023-01-01"),
    ("shop", "D", "email", "opt_out", "2024-01-01"),
    ("crm", "C", "sms", "opt_in", "2024-11-20"),
]

MART_CUSTOMER = [  # customer_id, rfm_segment, clv
    ("A", "Champions", 300.0),
    ("B", "New", 100.0),
    ("C", "Champions", 200.0),
    ("D", "Lost", 10.0),
]

CONTRACT_SQL = """
CREATE OR REPLACE TABLE identity_map AS
SELECT source_system, source_id, CAST(NULL AS VARCHAR) AS anonymous_id, source_id AS customer_id,
       'single_record' AS method, 1.0 AS match_probability
FROM src_customers;
CREATE OR REPLACE TABLE customers AS
SELECT source_id AS customer_id, * EXCLUDE (source_system, source_id),
       source_system AS first_source
FROM src_customers;
CREATE OR REPLACE VIEW customer_orders AS
SELECT o.*, m.customer_id FROM orders o JOIN identity_map m
  ON m.source_system = o.source_system AND m.source_id = o.source_id;
CREATE OR REPLACE VIEW customer_events AS
SELECT e.*, k.customer_id FROM events e LEFT JOIN identity_map k
  ON k.source_system = e.source_system AND k.source_id = e.source_id;
CREATE OR REPLACE VIEW customer_consents AS
SELECT m.customer_id, c.channel, c.status, c.ts FROM consents c JOIN identity_map m
  ON m.source_system = c.source_system AND m.source_id = c.source_id;
"""

RADAR_STAGES = ["daily_kpis", "customer_kpis", "radar_funnel", "kpi_alerts"]


def write_company(con: duckdb.DuckDBPyConnection, with_segments: bool = True) -> None:
    """Raw rows, the identity contract and (optionally) a stand-in mart_customer."""
    con.executemany(
        "INSERT INTO src_customers (source_system, source_id, created_at) "
        "VALUES (?, ?, TIMESTAMP '2023-01-01')",
        CUSTOMERS,
    )
    con.executemany(
        "INSERT INTO orders (order_id, ts, source_system, source_id, revenue, channel) "
        "VALUES (?, CAST(? AS TIMESTAMP), ?, ?, ?, ?)",
        ORDERS,
    )
    con.executemany(
        "INSERT INTO events (event_id, ts, channel, event_type, source_system, source_id, "
        "anonymous_id) VALUES (?, CAST(? AS TIMESTAMP), ?, ?, ?, ?, ?)",
        EVENTS,
    )
    con.executemany(
        "INSERT INTO consents VALUES (?, ?, ?, ?, CAST(? AS TIMESTAMP))",
        CONSENTS,
    )
    con.execute(CONTRACT_SQL)
    if with_segments:
        con.execute(
            "CREATE OR REPLACE TABLE mart_customer "
            "(customer_id VARCHAR, rfm_segment VARCHAR, clv DOUBLE)"
        )
        con.executemany("INSERT INTO mart_customer VALUES (?, ?, ?)", MART_CUSTOMER)


def build_company(path: Path, with_segments: bool = True) -> Path:
    """A database file with the tiny company and every radar mart built."""
    con = store.connect_writer(path)
    try:
        write_company(con, with_segments)
        results = pipeline.build(
            con, stages=RADAR_STAGES, params={"radar_funnel": {"loyal_min_orders": 3}}
        )
        failed = [r for r in results if r.status != "ok"]
        assert not failed, failed
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


# Saved rule segments over the stand-in mart_customer (clv: A 300, B 100, C 200, D 10):
# "Mid value: B & C / ü" is B and C; "High CLV" is A and C (today's 'Champions').
MID_VALUE = 'Mid value: B & C / "ü"'
SAVED_SEGMENTS = {
    MID_VALUE: [{"column": "clv", "operator": "between", "value": [50, 250]}],
    "High CLV": [{"column": "clv", "operator": ">=", "value": 150}],
}


def write_saved_segments(con: duckdb.DuckDBPyConnection, segments: dict | None = None) -> None:
    """Saved rule segments written as the Segment Explorer stores them (save_segment itself
    counts revenue and prob_alive, which the stand-in mart_customer does not have)."""
    import json

    from ccrm_core.radar.segments.rules import SAVED_SEGMENTS_DDL

    con.execute(SAVED_SEGMENTS_DDL)
    for name, rules in (segments or SAVED_SEGMENTS).items():
        con.execute("DELETE FROM saved_segments WHERE name = ?", [name])
        con.execute(
            "INSERT INTO saved_segments VALUES (?, ?, NULL, now(), now())",
            [name, json.dumps({"match": "all", "rules": rules})],
        )
