"""Ingest: validated, atomic, idempotent loading of CSV / CSV.gz / Parquet into the raw tables.

Every refused input must leave the database exactly as it was (row count and a checksum of every
raw table), get a one-line message naming the file (and line, column, value where relevant), and
be recorded in ingest_log.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import zipfile
from datetime import date, datetime
from pathlib import Path
from unittest import mock

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ccrm
from hypothesis import given, settings
from hypothesis import strategies as st

from ccrm_core.foundation import ingest, store
from ccrm_core.foundation.ingest import IngestError, Reject

ORDERS_HEADER = "order_id,ts,source_system,source_id,revenue,channel,category"
ORDERS_OK = (
    f"{ORDERS_HEADER}\n"
    "o1,2024-01-01 10:00:00,shop,c1,10.5,web,shoes\n"
    "o2,2024-01-02T11:30:00,shop,c2,20,store,\n"
    "o3,2024-01-03 09:15:00,crm,c3,-5.25,,bags\n"
)
ORDERS_OK_ROWS = [
    ("o1", datetime(2024, 1, 1, 10, 0), "shop", "c1", 10.5, "web", "shoes"),
    ("o2", datetime(2024, 1, 2, 11, 30), "shop", "c2", 20.0, "store", None),
    ("o3", datetime(2024, 1, 3, 9, 15), "crm", "c3", -5.25, None, "bags"),
]


@pytest.fixture()
def con(tmp_path):
    c = store.connect_writer(tmp_path / "t.duckdb")
    yield c
    c.close()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def state(con) -> dict[str, tuple[int, int]]:
    """Row count and order-independent checksum of every raw table."""
    out = {}
    for name in store.RAW_TABLES:
        q = store.quote_ident(name)
        out[name] = con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {q} t").fetchone()
    return out


def rows(con, table: str, order: str) -> list[tuple]:
    return con.execute(f"SELECT * FROM {store.quote_ident(table)} ORDER BY {order}").fetchall()


def log(con) -> list[tuple]:
    return con.execute(
        "SELECT ingest_id, file_name, table_name, rows_read, rows_loaded, rows_rejected, status "
        "FROM ingest_log ORDER BY ingest_id"
    ).fetchall()


def rejects(con, ingest_id: int) -> list[tuple]:
    return con.execute(
        "SELECT file_name, table_name, line, column_name, value, reason FROM ingest_rejects "
        "WHERE ingest_id = ? ORDER BY line, column_name",
        [ingest_id],
    ).fetchall()


# ---------------------------------------------------------------------------------------------
# Happy paths


def test_csv_loads_exact_values_and_logs(con, tmp_path):
    f = write(tmp_path / "orders.csv", ORDERS_OK)
    [r] = ingest.ingest_files(con, [f])
    assert (r.status, r.table, r.rows_read, r.rows_loaded, r.rows_replaced, r.rows_rejected) == (
        "loaded",
        "orders",
        3,
        3,
        0,
        0,
    )
    assert r.warnings == [] and r.rejects == []
    assert rows(con, "orders", "order_id") == ORDERS_OK_ROWS
    assert log(con) == [(1, str(f), "orders", 3, 3, 0, "loaded")]
    assert r.ingest_id == 1


def test_csv_gz_loads_exact_values(con, tmp_path):
    text = (
        "event_id,ts,channel,event_type,source_system,source_id,anonymous_id,campaign_id,value\n"
        "e1,2024-03-01 08:00:00,email,send,crm,c1,,cmp1,\n"
        "e2,2024-03-01T08:05:00,web,visit,,,a9,,12.5\n"
        'e3,2024-03-01 08:06:00,web,visit,,,"a\n10",,1\n'  # lines 4-5
        "e4,2024-03-01 08:07:00,web,visit,,,a11,,twelve\n"  # line 6
    )
    f = tmp_path / "events.csv.gz"
    f.write_bytes(gzip.compress(text.encode()))
    [r] = ingest.ingest_files(con, [f], max_reject_rate=0.5)
    assert (r.status, r.table, r.rows_loaded, r.rows_rejected) == ("loaded", "events", 3, 1)
    assert r.rejects == [Reject(6, "value", "twelve", "not a number")]
    con.execute("DELETE FROM events WHERE event_id = 'e3'")
    assert rows(con, "events", "event_id") == [
        ("e1", datetime(2024, 3, 1, 8, 0), "email", "send", "crm", "c1", None, "cmp1", None),
        ("e2", datetime(2024, 3, 1, 8, 5), "web", "visit", None, None, "a9", None, 12.5),
    ]


def test_gzip_is_recognised_from_bytes_not_name(con, tmp_path):
    f = tmp_path / "orders.csv"  # gzipped, but named .csv
    f.write_bytes(gzip.compress(ORDERS_OK.encode()))
    [r] = ingest.ingest_files(con, [f])
    assert r.status == "loaded", r.message
    assert rows(con, "orders", "order_id") == ORDERS_OK_ROWS


def test_parquet_loads_exact_values(con, tmp_path):
    f = tmp_path / "spend.parquet"
    pq.write_table(
        pa.table(
            {
                "date": pa.array([date(2024, 1, 1), date(2024, 1, 1), date(2024, 1, 2)]),
                "channel": ["tv", "email", "tv"],
                "campaign_id": [None, "cmp1", None],
                "spend": [1000.0, 25.5, 900.0],
                "impressions": pa.array([50000, None, 42000], type=pa.int64()),
            }
        ),
        f,
    )
    [r] = ingest.ingest_files(con, [f])
    assert (r.status, r.table, r.rows_read, r.rows_loaded) == ("loaded", "spend", 3, 3)
    assert rows(con, "spend", "date, channel") == [
        (date(2024, 1, 1), "email", "cmp1", 25.5, None),
        (date(2024, 1, 1), "tv", None, 1000.0, 50000),
        (date(2024, 1, 2), "tv", None, 900.0, 42000),
    ]


def test_parquet_lossless_type_conversions(con, tmp_path):
    """Integer ids into text, ns and tz-aware timestamps, numeric strings into DOUBLE, whole
    floats into BIGINT, midnight timestamps into DATE: what pandas typically writes."""
    orders = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {
                "order_id": pa.array([101, 102], type=pa.int64()),
                # Berlin wall time 14:00 and 15:00 (UTC+2 in May) are 12:00 and 13:00 UTC
                "ts": pa.array(
                    pd.to_datetime(["2024-05-01 14:00", "2024-05-02 15:00"]).tz_localize(
                        "Europe/Berlin"
                    ),
                    type=pa.timestamp("ns", tz="Europe/Berlin"),
                ),
                "source_system": ["shop", "shop"],
                "source_id": pa.array([7, 8], type=pa.int32()),
                "revenue": ["12.5", "3"],
            }
        ),
        orders,
    )
    spend = tmp_path / "spend.parquet"
    pq.write_table(
        pa.table(
            {
                "date": pa.array(
                    [datetime(2024, 1, 1), datetime(2024, 1, 2)], type=pa.timestamp("ns")
                ),
                "channel": ["tv", "tv"],
                "spend": pa.array([10, 20], type=pa.int32()),
                "impressions": [100.0, None],
            }
        ),
        spend,
    )
    reports = ingest.ingest_files(con, [orders, spend])
    assert [r.status for r in reports] == ["loaded", "loaded"], [r.message for r in reports]
    assert rows(con, "orders", "order_id") == [
        ("101", datetime(2024, 5, 1, 12, 0), "shop", "7", 12.5, None, None),
        ("102", datetime(2024, 5, 2, 13, 0), "shop", "8", 3.0, None, None),
    ]
    assert rows(con, "spend", "date") == [
        (date(2024, 1, 1), "tv", None, 10.0, 100),
        (date(2024, 1, 2), "tv", None, 20.0, None),
    ]
    assert any("campaign_id" in w for w in reports[1].warnings)  # absent optional column


def test_extra_columns_warned_and_ignored_absent_optional_loaded_empty(con, tmp_path):
    f = write(
        tmp_path / "orders.csv",
        "Order_ID, ts ,source_system,source_id,revenue,coupon,note\n"
        "o1,2024-01-01 10:00:00,shop,c1,10.5,SAVE10,hello\n",
    )
    [r] = ingest.ingest_files(con, [f])
    assert r.status == "loaded", r.message
    assert r.warnings == [
        "ignored 2 column(s) not in the orders contract: coupon, note",
        "optional column(s) absent, loaded as empty: channel, category",
    ]
    assert rows(con, "orders", "order_id") == [
        ("o1", datetime(2024, 1, 1, 10, 0), "shop", "c1", 10.5, None, None)
    ]


# ---------------------------------------------------------------------------------------------
# Rejected rows


def test_rejected_rows_have_physical_line_column_value_and_reason(con, tmp_path):
    # line 3-4: a quoted value with a line break; line 5 blank: both shift later line numbers
    text = (
        f"{ORDERS_HEADER}\n"  # 1
        "o1,2024-01-01 10:00:00,shop,c1,10.5,web,shoes\n"  # 2
        'o2,2024-01-02 10:00:00,shop,c2,1,web,"two\nlines"\n'  # 3-4
        "\n"  # 5
        "o3,2024-13-45 10:00:00,shop,c3,1,web,x\n"  # 6 bad timestamp
        "o4,2024-01-04 10:00:00,shop,c4,1.234,5,web,x\n"  # 7 too many fields
        "o5,2024-01-05 10:00:00,shop,,7,web,x\n"  # 8 missing required source_id
        "o6,2024-01-06 10:00:00,shop,c6,12 EUR,web,x\n"  # 9 bad number
        "o7,2024-01-07 10:00:00,   ,c7,inf,web,x\n"  # 10 blank required + non-finite
        "o8,2024-01-08 10:00:00,shop,c8,8,web,x\n"  # 11
    )
    f = write(tmp_path / "orders.csv", text)
    [r] = ingest.ingest_files(con, [f], max_reject_rate=0.9)
    assert (r.status, r.rows_read, r.rows_loaded, r.rows_rejected) == ("loaded", 8, 3, 5)
    assert [x[0] for x in rows(con, "orders", "order_id")] == ["o1", "o2", "o8"]
    assert rejects(con, r.ingest_id) == [
        (str(f), "orders", 6, "ts", "2024-13-45 10:00:00", "not a timestamp YYYY-MM-DD HH:MM:SS"),
        (str(f), "orders", 7, None, None, "the row has more fields than the header"),
        (str(f), "orders", 8, "source_id", None, "required value missing"),
        (str(f), "orders", 9, "revenue", "12 EUR", "not a number"),
        (str(f), "orders", 10, "revenue", "inf", "not a finite number"),
        (str(f), "orders", 10, "source_system", "   ", "required value missing"),
    ]
    assert r.rejects[0] == Reject(
        6, "ts", "2024-13-45 10:00:00", "not a timestamp YYYY-MM-DD HH:MM:SS"
    )
    assert "5 of 8 rows rejected" in r.warnings[0] and "line 6, column ts" in r.warnings[0]
    # the page shows them through rejected_rows, paged
    page = ingest.rejected_rows(con, r.ingest_id, limit=2, offset=1)
    page = page.astype(object).where(page.notna(), None)
    assert page.to_dict("records") == [
        {
            "line": 7,
            "column_name": None,
            "value": None,
            "reason": "the row has more fields than the header",
        },
        {"line": 8, "column_name": "source_id", "value": None, "reason": "required value missing"},
    ]
    # no scratch tables are left behind in the database
    assert con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '%ccrm_ingest%'"
    ).fetchone() == (0,)


def test_reject_lines_in_a_large_file_read_in_parallel(con, tmp_path):
    """Hundreds of thousands of rows: DuckDB reads them in parallel; line numbers stay exact."""
    bad = {1_234: "ts", 77_777: "value", 250_001: "ts"}
    lines = [
        "event_id,ts,channel,event_type,source_system,source_id,anonymous_id,campaign_id,value"
    ]
    for i in range(300_000):
        ts = "yesterday" if bad.get(i) == "ts" else "2024-01-01 00:00:00"
        value = "n/a" if bad.get(i) == "value" else str(i % 97)
        lines.append(f"e{i},{ts},web,visit,,,a{i},,{value}")
    f = write(tmp_path / "events_big.csv", "\n".join(lines) + "\n")
    [r] = ingest.ingest_files(con, [f])
    assert (r.status, r.rows_loaded, r.rows_rejected) == ("loaded", 299_997, 3), r.message
    got = [(x[2], x[3], x[4]) for x in rejects(con, r.ingest_id)]
    assert got == [
        (1_236, "ts", "yesterday"),
        (77_779, "value", "n/a"),
        (250_003, "ts", "yesterday"),
    ]
    # the rows after the rejects landed with the right values (row i has value i % 97)
    assert con.execute(
        "SELECT count(*) FROM events WHERE value <> CAST(substr(event_id, 2) AS BIGINT) % 97"
    ).fetchone() == (0,)


def test_required_null_and_row_rules(con, tmp_path):
    consents = write(
        tmp_path / "consents.csv",
        "source_system,source_id,channel,status,ts\n"
        "crm,c1,email,opt_in,2024-01-01 00:00:00\n"
        "crm,c2,email,yes,2024-01-01 00:00:00\n"  # line 3: not opt_in/opt_out
        "crm,c3,,opt_out,2024-01-01 00:00:00\n",  # line 4: channel missing
    )
    events = write(
        tmp_path / "events.csv",
        "event_id,ts,channel,event_type,source_id,anonymous_id\n"
        "e1,2024-01-01 00:00:00,web,visit,,a1\n"
        "e2,2024-01-01 00:00:00,web,visit,,\n",  # line 3: nobody
    )
    spend = write(
        tmp_path / "spend.csv",
        "date,channel,spend,impressions\n"
        "2024-01-01,tv,10,2.0\n"
        "2024-01-02,tv,10,1.5\n"  # line 3: fraction of an impression
        "2024-01-03,tv,10,many\n",  # line 4
    )
    r1, r2, r3 = ingest.ingest_files(con, [consents, events, spend], max_reject_rate=1.0)
    assert (r1.status, r1.rows_loaded, r1.rows_rejected) == ("loaded", 1, 2)
    assert [(x[2], x[3], x[4], x[5]) for x in rejects(con, r1.ingest_id)] == [
        (3, "status", "yes", "must be opt_in or opt_out"),
        (4, "channel", None, "required value missing"),
    ]
    assert (r2.status, r2.rows_loaded, r2.rows_rejected) == ("loaded", 1, 1)
    assert [(x[2], x[3]) for x in rejects(con, r2.ingest_id)] == [(3, "anonymous_id")]
    assert "neither source_id nor anonymous_id" in rejects(con, r2.ingest_id)[0][5]
    assert [(x[2], x[3], x[4], x[5]) for x in rejects(con, r3.ingest_id)] == [
        (3, "impressions", "1.5", "not a whole number"),
        (4, "impressions", "many", "not a whole number"),
    ]
    assert rows(con, "spend", "date") == [(date(2024, 1, 1), "tv", None, 10.0, 2)]


def test_reject_rate_threshold_refuses_whole_file(con, tmp_path):
    body = "".join(f"o{i},2024-01-01 00:00:00,shop,c{i},{i},web,x\n" for i in range(1, 50))
    f = write(tmp_path / "orders.csv", f"{ORDERS_HEADER}\n{body}o50,someday,shop,c50,1,web,x\n")
    before = state(con)
    [r] = ingest.ingest_files(con, [f])  # 1 of 50 = 2% > 1%
    assert r.status == "refused"
    assert r.message == (
        f"{f}: 1 of 50 rows rejected (2%), above the 1% limit; first: line 51, column ts, "
        "value 'someday' (not a timestamp YYYY-MM-DD HH:MM:SS). Fix the file (all rejects are in "
        "ingest_rejects) or raise the limit (--max-reject-rate)"
    )
    assert state(con) == before
    assert log(con) == [(1, str(f), "orders", 50, 0, 1, "refused")]
    assert [x[2:5] for x in rejects(con, 1)] == [(51, "ts", "someday")]
    [r] = ingest.ingest_files(con, [f], max_reject_rate=0.02)  # exactly at the limit: loads
    assert (r.status, r.rows_loaded, r.rows_rejected) == ("loaded", 49, 1)


def test_pii_values_are_shortened_in_messages_but_kept_in_ingest_rejects(con, tmp_path):
    f = write(
        tmp_path / "src_customers.csv",
        "source_system,source_id,first_name,email,birth_date\n"
        "crm,1,Ann,ann@example.com,1980-02-03\n"
        "crm,2,Bob,bob@example.com,03/02/1980\n",
    )
    [r] = ingest.ingest_files(con, [f])
    assert r.status == "refused"
    assert "value '***'" in r.message and "03/02/1980" not in r.message
    assert r.rejects == [Reject(3, "birth_date", "***", "not a date YYYY-MM-DD")]
    assert rejects(con, r.ingest_id)[0][4] == "03/02/1980"


# ---------------------------------------------------------------------------------------------
# Refused files: one line, nothing changed, logged


def _xlsx(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
    return path


BAD_INPUTS = {
    "empty": (lambda p: p.write_bytes(b""), "orders.csv: the file is empty"),
    "blank": (lambda p: p.write_text("\n \n"), "orders.csv: the file is empty"),
    "header only": (
        lambda p: p.write_text(ORDERS_HEADER + "\n"),
        "orders.csv: has a header but no data rows",
    ),
    "semicolons": (
        lambda p: p.write_text(ORDERS_HEADER.replace(",", ";") + "\no1;2024-01-01;s;c;1;web;x\n"),
        "orders.csv: looks like ';'-delimited",
    ),
    "tabs": (
        lambda p: p.write_text(
            ORDERS_HEADER.replace(",", "\t") + "\no1\t2024-01-01\ts\tc\t1\tw\tx\n"
        ),
        "orders.csv: looks like tab-delimited",
    ),
    "missing required": (
        lambda p: p.write_text("order_id,ts,source_id\no1,2024-01-01,c1\n"),
        "orders.csv: missing required column(s) source_system, revenue for table orders",
    ),
    "repeated column": (
        lambda p: p.write_text(ORDERS_HEADER + ",revenue\n"),
        "orders.csv: column 'revenue' appears twice in the header (columns 5 and 8)",
    ),
    "invalid utf8 in data": (
        lambda p: p.write_bytes(
            (ORDERS_OK + "o4,2024-01-04 00:00:00,shop,c4,1,web,caf").encode() + b"\xe9\n"
        ),
        "orders.csv: line 5: invalid UTF-8",
    ),
    "invalid utf8 in header": (
        lambda p: p.write_bytes(b"order_id,ts,source_system,source_id,revenue,cat\xe9gorie\n"),
        "orders.csv: line 1, byte 48: invalid UTF-8",
    ),
    "duplicate keys": (
        lambda p: p.write_text(ORDERS_OK + "o2,2024-02-02 00:00:00,shop,c9,9,web,x\n"),
        "orders.csv: duplicate key order_id='o2' on lines 3 and 5",
    ),
    "xlsx renamed": (lambda p: _xlsx(p), "orders.csv: is a spreadsheet (xlsx), not CSV"),
    "xls renamed": (
        lambda p: p.write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 504),
        "orders.csv: is a spreadsheet (xls), not CSV; export it as CSV",
    ),
    "utf16": (
        lambda p: p.write_bytes(ORDERS_OK.encode("utf-16")),
        "orders.csv: is UTF-16 encoded",
    ),
    "folder": (lambda p: p.mkdir(), "orders.csv: is a folder, not a file"),
    "not there": (lambda p: None, "orders.csv: file not found"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_in_one_line_and_changes_nothing(con, tmp_path, case):
    seed = write(tmp_path / "seed_orders.csv", ORDERS_OK)
    assert ingest.ingest_files(con, [seed], table="orders")[0].status == "loaded"
    before = state(con)
    make, expected = BAD_INPUTS[case]
    folder = tmp_path / "in"
    folder.mkdir()
    f = folder / "orders.csv"
    make(f)
    [r] = ingest.ingest_files(con, [f], source_names=["orders.csv"])
    assert r.status == "refused"
    assert r.message.startswith(expected), r.message
    assert "\n" not in r.message
    assert (r.rows_loaded, r.rows_replaced) == (0, 0)
    assert state(con) == before
    assert log(con)[-1][1:] == ("orders.csv", "orders", r.rows_read, 0, r.rows_rejected, "refused")


def test_parquet_duplicate_keys_name_rows(con, tmp_path):
    f = tmp_path / "orders.parquet"
    pd.DataFrame(
        {
            "order_id": ["a", "b", "a"],
            "ts": pd.to_datetime(["2024-01-01"] * 3),
            "source_system": "s",
            "source_id": "c",
            "revenue": [1.0, 2.0, 3.0],
        }
    ).to_parquet(f)
    before = state(con)
    [r] = ingest.ingest_files(con, [f])
    assert r.message.startswith(f"{f}: duplicate key order_id='a' on rows 1 and 3;")
    assert state(con) == before


def _orders_parquet(path: Path, ids: list, revenue: list[float]) -> Path:
    pd.DataFrame(
        {
            "order_id": ids,
            "ts": pd.to_datetime(["2024-01-01"] * len(ids)),
            "source_system": "s",
            "source_id": "c",
            "revenue": revenue,
        }
    ).to_parquet(path)
    return path


def test_parquet_rows_breaking_a_rule_are_rejected_by_row_and_the_rest_loaded(con, tmp_path):
    """A clean Parquet file goes straight into the table; one with bad rows is staged so each
    reject names its row, and only the good rows load."""
    f = _orders_parquet(
        tmp_path / "orders.parquet", ["a", "  ", "c", "d"], [1.0, 2.0, float("inf"), 4.0]
    )
    [r] = ingest.ingest_files(con, [f], max_reject_rate=0.5)
    assert (r.status, r.rows_read, r.rows_loaded, r.rows_rejected) == ("loaded", 4, 2, 2)
    assert rejects(con, r.ingest_id) == [
        (str(f), "orders", 2, "order_id", "  ", "required value missing"),
        (str(f), "orders", 3, "revenue", "inf", "not a finite number"),
    ]
    assert [x[0] for x in rows(con, "orders", "order_id")] == ["a", "d"]


def test_parquet_reloaded_into_a_filled_table_replaces_rows_by_key(con, tmp_path):
    first = _orders_parquet(tmp_path / "orders_1.parquet", ["a", "b"], [1.0, 2.0])
    second = _orders_parquet(tmp_path / "orders_2.parquet", ["b", "c"], [20.0, 30.0])
    [r1, r2, r3] = ingest.ingest_files(con, [first, second, second])
    assert [(r.rows_loaded, r.rows_replaced) for r in (r1, r2, r3)] == [(2, 0), (2, 1), (2, 2)]
    assert [(x[0], x[4]) for x in rows(con, "orders", "order_id")] == [
        ("a", 1.0),
        ("b", 20.0),
        ("c", 30.0),
    ]


def test_parquet_rewritten_during_its_load_is_refused(con, tmp_path, monkeypatch):
    """The file is read in place, so a file replaced between the checks and the insert (an
    export still writing) must not load rows that were never checked."""
    f = _orders_parquet(tmp_path / "orders.parquet", ["a", "b"], [1.0, 2.0])
    real = ingest.run._validate

    def validate_then_rewrite(*args, **kwargs):
        out = real(*args, **kwargs)
        _orders_parquet(f, ["a", "a", "  "], [1.0, 2.0, 3.0])  # unchecked: repeats and blanks
        return out

    monkeypatch.setattr(ingest.run, "_validate", validate_then_rewrite)
    before = state(con)
    [r] = ingest.ingest_files(con, [f])
    assert r.status == "refused"
    assert "changed while it was being loaded; nothing was changed" in r.message
    assert state(con) == before


@pytest.mark.parametrize(
    "column, values, expected",
    [
        (
            "revenue",
            pa.array(["12.5", "abc"]),
            "column revenue has type VARCHAR, expected DOUBLE; row 2 value 'abc' does not convert",
        ),
        (
            "ts",
            pa.array([1704067200, 1704153600], type=pa.int64()),
            "column ts has type BIGINT, expected TIMESTAMP (a timestamp YYYY-MM-DD HH:MM:SS)",
        ),
        (
            "revenue",
            pa.array([True, False]),
            "column revenue has type BOOLEAN, expected DOUBLE",
        ),
    ],
)
def test_parquet_with_wrong_column_types_is_refused(con, tmp_path, column, values, expected):
    data = {
        "order_id": ["o1", "o2"],
        "ts": pa.array([datetime(2024, 1, 1), datetime(2024, 1, 2)]),
        "source_system": ["s", "s"],
        "source_id": ["c1", "c2"],
        "revenue": [1.0, 2.0],
    }
    data[column] = values
    f = tmp_path / "orders.parquet"
    pq.write_table(pa.table(data), f)
    before = state(con)
    [r] = ingest.ingest_files(con, [f])
    assert r.status == "refused"
    assert r.message.startswith(f"{f}: {expected}"), r.message
    assert state(con) == before


def test_damaged_parquet_is_refused(con, tmp_path):
    f = tmp_path / "orders.parquet"
    f.write_bytes(b"PAR1" + b"\0" * 100)
    [r] = ingest.ingest_files(con, [f])
    assert r.status == "refused" and "cannot be read as Parquet" in r.message


def test_failure_during_load_rolls_back(con, tmp_path, monkeypatch):
    """An error after the delete and insert (here: writing the log) must undo both."""
    assert ingest.ingest_files(con, [write(tmp_path / "orders.csv", ORDERS_OK)])[0].ok
    before = state(con)
    changed = write(tmp_path / "orders_2.csv", ORDERS_OK.replace("10.5", "99"))
    real_log = ingest.load._log

    def failing_log(cur, report, rejects, started, status):
        if status == "loaded":
            raise duckdb.IOException("disk full (simulated)")
        return real_log(cur, report, rejects, started, status)

    monkeypatch.setattr(ingest.load, "_log", failing_log)
    [r] = ingest.ingest_files(con, [changed])
    assert r.status == "refused" and "disk full (simulated)" in r.message
    assert state(con) == before
    assert log(con)[-1][-1] == "refused"


# ---------------------------------------------------------------------------------------------
# Upsert and idempotence


def test_reingesting_the_same_file_is_idempotent(con, tmp_path):
    f = write(tmp_path / "orders.csv", ORDERS_OK)
    ingest.ingest_files(con, [f])
    once = state(con)
    [r] = ingest.ingest_files(con, [f])
    assert (r.status, r.rows_loaded, r.rows_replaced) == ("loaded", 3, 3)
    assert state(con) == once
    assert rows(con, "orders", "order_id") == ORDERS_OK_ROWS


def test_upsert_replaces_changed_rows_and_keeps_others(con, tmp_path):
    ingest.ingest_files(con, [write(tmp_path / "orders.csv", ORDERS_OK)])
    update = write(
        tmp_path / "orders_update.csv",
        f"{ORDERS_HEADER}\n"
        "o2,2024-01-02 11:30:00,shop,c2,25,store,refund\n"  # changed
        "o4,2024-01-04 00:00:00,shop,c4,4,web,new\n",  # new
    )
    [r] = ingest.ingest_files(con, [update])
    assert (r.rows_loaded, r.rows_replaced) == (2, 1)
    assert (
        r.message
        == f"{update}: loaded 2 rows into orders; 1 replaced stored rows with the same key"
    )
    assert rows(con, "orders", "order_id") == [
        ORDERS_OK_ROWS[0],
        ("o2", datetime(2024, 1, 2, 11, 30), "shop", "c2", 25.0, "store", "refund"),
        ORDERS_OK_ROWS[2],
        ("o4", datetime(2024, 1, 4), "shop", "c4", 4.0, "web", "new"),
    ]


def test_upsert_key_with_null_part_matches_null(con, tmp_path):
    """spend's key (date, channel, campaign_id) has a nullable part: NULL matches NULL."""
    first = write(
        tmp_path / "spend.csv",
        "date,channel,campaign_id,spend\n2024-01-01,tv,,100\n2024-01-01,email,c1,5\n",
    )
    second = write(
        tmp_path / "spend_fix.csv",
        "date,channel,campaign_id,spend\n2024-01-01,tv,,120\n2024-01-01,email,c2,6\n",
    )
    ingest.ingest_files(con, [first])
    [r] = ingest.ingest_files(con, [second])
    assert (r.rows_loaded, r.rows_replaced) == (2, 1)
    assert rows(con, "spend", "channel, campaign_id") == [
        (date(2024, 1, 1), "email", "c1", 5.0, None),
        (date(2024, 1, 1), "email", "c2", 6.0, None),
        (date(2024, 1, 1), "tv", None, 120.0, None),
    ]
    # and two NULL campaign_ids for the same day and channel are a duplicate key
    dup = write(
        tmp_path / "spend_dup.csv",
        "date,channel,campaign_id,spend\n2024-01-01,tv,,1\n2024-01-01,tv,,2\n",
    )
    [r] = ingest.ingest_files(con, [dup])
    assert r.status == "refused"
    assert (
        "duplicate key date='2024-01-01', channel='tv', campaign_id=empty on lines 2 and 3"
        in r.message
    )


def test_rejected_row_does_not_touch_the_stored_row(con, tmp_path):
    ingest.ingest_files(con, [write(tmp_path / "orders.csv", ORDERS_OK)])
    bad = write(
        tmp_path / "orders_bad.csv",
        f"{ORDERS_HEADER}\no1,2024-01-01 10:00:00,shop,c1,oops,web,shoes\n"
        "o9,2024-01-09 00:00:00,shop,c9,9,web,x\n",
    )
    [r] = ingest.ingest_files(con, [bad], max_reject_rate=0.5)
    assert (r.rows_loaded, r.rows_replaced, r.rows_rejected) == (1, 0, 1)
    assert rows(con, "orders", "order_id")[0] == ORDERS_OK_ROWS[0]


# ---------------------------------------------------------------------------------------------
# Table from file name, API details


@pytest.mark.parametrize(
    "name, table",
    [
        ("events.csv.gz", "events"),
        ("orders_2024.parquet", "orders"),
        ("ORDERS-jan.csv", "orders"),
        ("src_customers.csv", "src_customers"),
        ("customers_crm.csv", "src_customers"),
        ("spend2024.csv", "spend"),
        ("/data/in/consents.csv", "consents"),
    ],
)
def test_table_is_inferred_from_the_file_name(name, table):
    assert ingest.infer_table(name) == table


@pytest.mark.parametrize("name", ["ordership.csv", "data.csv", "my_orders.csv"])
def test_unknown_file_name_asks_for_table(con, tmp_path, name):
    f = write(tmp_path / name, ORDERS_OK)
    [r] = ingest.ingest_files(con, [f])
    assert r.status == "refused" and r.table is None
    assert r.message.startswith(f"{name}: cannot tell the table from the file name")
    assert "pass --table" in r.message
    assert ingest.ingest_files(con, [f], table="orders")[0].status == "loaded"


def test_source_names_name_the_file_and_the_table(con, tmp_path):
    upload = write(tmp_path / "tmp8f3a2.upload", ORDERS_OK)
    [r] = ingest.ingest_files(con, [upload], source_names=["orders_march.csv"])
    assert (r.status, r.table, r.file) == ("loaded", "orders", "orders_march.csv")
    assert log(con)[0][1] == "orders_march.csv"


def test_bad_arguments_raise(con, tmp_path):
    with pytest.raises(IngestError, match="unknown table 'order'; choose from"):
        ingest.ingest_files(con, [tmp_path / "x.csv"], table="order")
    with pytest.raises(IngestError, match="max_reject_rate must be between 0 and 1"):
        ingest.ingest_files(con, [tmp_path / "x.csv"], max_reject_rate=5)


def test_each_file_is_its_own_unit_and_progress_reaches_one(con, tmp_path):
    good = write(tmp_path / "orders.csv", ORDERS_OK)
    bad = write(tmp_path / "events.csv", "event_id;ts\n")
    calls = []
    reports = ingest.ingest_files(con, [good, bad], progress=lambda f, m: calls.append((f, m)))
    assert [r.status for r in reports] == ["loaded", "refused"]
    assert [r.ingest_id for r in reports] == [1, 2]
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (3,)
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] == 0.0
    assert calls[-1][1] == "done: 1 of 2 files loaded"
    history = ingest.ingest_history(con)
    assert history[["ingest_id", "file_name", "table_name", "rows_loaded", "status"]].to_dict(
        "records"
    ) == [
        {
            "ingest_id": 2,
            "file_name": str(bad),
            "table_name": "events",
            "rows_loaded": 0,
            "status": "refused",
        },
        {
            "ingest_id": 1,
            "file_name": str(good),
            "table_name": "orders",
            "rows_loaded": 3,
            "status": "loaded",
        },
    ]
    assert history["message"].tolist() == [r.message for r in reversed(reports)]


# ---------------------------------------------------------------------------------------------
# Files that would be lost, hang or never end: every line loaded or rejected, counted


@pytest.mark.parametrize("how", ["a 32 MB line", "a 40 MB NUL line in a .gz"])
def test_a_line_longer_than_the_readers_buffer_is_rejected_and_counted(con, tmp_path, how):
    """DuckDB's parallel reader dropped a record longer than its buffer with no reject entry
    (lines of 3 to 28 MB were rejected): not loaded, not rejected, not counted."""
    gz = how.endswith(".gz")
    long = "\0" * (40 << 20) if gz else "x" * (32 << 20)
    text = (
        f"{ORDERS_HEADER}\n"
        "o1,2024-01-01 10:00:00,shop,c1,1,web,x\n"
        f"o2,2024-01-02 10:00:00,shop,c2,2,web,{long}\n"
        "o3,2024-01-03 10:00:00,shop,c3,3,web,x\n"
    )
    f = tmp_path / ("orders.csv.gz" if gz else "orders.csv")
    f.write_bytes(gzip.compress(text.encode(), 1) if gz else text.encode())
    [r] = ingest.ingest_files(con, [f], max_reject_rate=0.5)
    assert (r.status, r.rows_read, r.rows_loaded, r.rows_rejected) == ("loaded", 3, 2, 1)
    assert rejects(con, r.ingest_id) == [
        (str(f), "orders", 3, None, None, "the line is longer than 2 MB")
    ]
    assert [x[0] for x in rows(con, "orders", "order_id")] == ["o1", "o3"]


@pytest.mark.parametrize("megabytes", [40, 72])
def test_a_long_quoted_field_never_loads_its_inner_lines_as_rows(con, tmp_path, megabytes):
    """A quoted field spanning lines that look like orders: the parallel reader cut a 40 MB one
    up and loaded its inner lines as 750,000 orders; the single-threaded one, after skipping a
    72 MB one as too long, resumed inside it. The file loads without that record, or is refused
    whole; an inner line never becomes a row."""
    line = "x{},2024-01-01 10:00:00,shop,c1,1,web,x\n"
    inner = "".join(line.format(i) for i in range((megabytes << 20) // len(line.format(10**6))))
    f = tmp_path / "orders.csv"
    f.write_text(
        f"{ORDERS_HEADER}\n"
        "o1,2024-01-01 10:00:00,shop,c1,1,web,x\n"
        f'o2,2024-01-02 10:00:00,shop,c2,2,web,"{inner}"\n'
        "o3,2024-01-03 10:00:00,shop,c3,3,web,x\n"
    )
    [r] = ingest.ingest_files(con, [f], max_reject_rate=0.5)
    stored = [x[0] for x in rows(con, "orders", "order_id")]
    assert r.rows_read == 3, r.message
    if r.status == "loaded":
        assert stored == ["o1", "o3"] and r.rows_rejected == 1, r.message
    else:
        assert stored == [], r.message
        assert r.message.startswith(
            f"{f}: line 3: a quoted field longer than 2 MB spans many lines, and the reader "
            "cannot skip it safely (it read "
        ), r.message
        assert r.message.endswith(
            " records where the file holds 3); nothing was loaded. Shorten or remove that field"
        )


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(st.integers(0, 25), min_size=1, max_size=20),
    st.booleans(),
    st.integers(1, 30),
    st.booleans(),
)
def test_the_pass_over_the_bytes_finds_long_lines_across_chunks(lengths, last_break, chunk, q):
    """The pass before DuckDB reads (ingest.shape) in small chunks: a line of LINE_LIMIT bytes
    or more is found wherever the chunks cut it; line breaks and quotes are counted."""
    from ccrm_core.foundation.ingest import shape

    data = b"\n".join(b'"' * q + b"y" * n for n in lengths) + (b"\n" if last_break else b"")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.csv"
        path.write_bytes(data)
        with mock.patch.object(shape, "LINE_LIMIT", 10), mock.patch.object(shape, "_CHUNK", chunk):
            found = shape._shape(path, "none", "x.csv", ingest.ingest_limit())
    assert found.newlines == data.count(b"\n")
    assert found.ends_with_newline == last_break
    assert found.quoted == q
    assert found.long_line == any(len(line) >= 10 for line in data.split(b"\n"))
    assert found.parallel == (not q and not found.long_line)


def test_parquet_columns_differing_only_in_case_are_refused(con, tmp_path):
    """DuckDB renames a repeated Parquet column ('Revenue' -> 'Revenue_1'), which loaded one of
    them silently; a CSV with a repeated column was refused. Both are refused, naming both."""
    before = state(con)
    for names, shown in (
        (["revenue", "Revenue"], "(columns 5 'revenue' and 6 'Revenue')"),
        (["revenue", "revenue"], "(columns 5 and 6)"),
    ):
        f = tmp_path / "orders.parquet"
        arrays = [pa.array(v) for v in (["o1"], [datetime(2024, 1, 1)], ["s"], ["c1"], [1.0])]
        columns = ["order_id", "ts", "source_system", "source_id", names[0]]
        pq.write_table(
            pa.Table.from_arrays([*arrays, pa.array([2.0])], names=[*columns, names[1]]), f
        )
        [r] = ingest.ingest_files(con, [f])
        assert r.status == "refused"
        assert r.message == f"{f}: column 'revenue' appears twice in the file {shown}; keep one"
    assert state(con) == before


def _gzip_bomb(path: Path) -> Path:
    """A gzip file of 1 MB that unpacks to 1 GiB: a header, then zeros (64 members of 16 MiB
    each, which gzip readers read one after the other)."""
    member = gzip.compress(b"0" * (16 << 20), 9)
    path.write_bytes(gzip.compress(f"{ORDERS_HEADER}\n".encode()) + member * 64)
    return path


def test_gzip_expanding_past_the_upload_limit_is_refused_unread(con, tmp_path, monkeypatch):
    """CCRM_MAX_UPLOAD_MB bounds an upload once unzipped too: a bomb stops at the first chunk
    (16 MB unpacked, not 1 GiB), and nothing is loaded."""
    monkeypatch.setenv("CCRM_MAX_UPLOAD_MB", "0.1")
    bomb = _gzip_bomb(tmp_path / "bomb.gz")
    body = ORDERS_OK + "".join(f"x{i},2024-01-01 00:00:00,s,c,1,web,\n" for i in range(30_000))
    small = tmp_path / "small.gz"
    small.write_bytes(gzip.compress(body.encode()))
    plain = write(tmp_path / "plain.csv", body)
    assert small.stat().st_size < 0.1 * 2**20  # the upload itself is under the limit
    before = state(con)
    reports = ingest.ingest_files(
        con,
        [bomb, small, plain],
        table="orders",
        size_limit=ingest.upload_limit(),
        source_names=["orders.csv.gz", "orders_small.csv.gz", "orders.csv"],
    )
    advice = (
        "above the upload limit of 0.1 MB (CCRM_MAX_UPLOAD_MB); split the file, or stop the app "
        "and load it with `ccrm ingest`"
    )
    size = f"{len(body) / 2**20:,.1f} MB"
    assert [(r.status, r.message) for r in reports] == [
        ("refused", f"orders.csv.gz: unzips to at least 16.0 MB, {advice}"),
        ("refused", f"orders_small.csv.gz: unzips to at least {size}, {advice}"),
        ("refused", f"orders.csv: is {size}, {advice}"),
    ]
    assert state(con) == before
    assert [x[-1] for x in log(con)] == ["refused"] * 3


def test_ccrm_ingest_has_its_own_larger_size_limit(tmp_path):
    """`ccrm ingest` bounds files by CCRM_MAX_INGEST_MB (default 10,240 MB once unzipped)."""
    bomb = _gzip_bomb(tmp_path / "orders.csv.gz")
    db = tmp_path / "t.duckdb"
    env = {**os.environ, "CCRM_MAX_INGEST_MB": "0.05"}
    proc = ccrm("ingest", str(bomb), "--db", str(db), env=env, timeout=600)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == (
        f"error: {bomb}: unzips to at least 16.0 MB, above the ingest limit of 0.05 MB "
        "(CCRM_MAX_INGEST_MB); split the file, or raise CCRM_MAX_INGEST_MB\n"
    )
    assert ingest.ingest_limit().mb == ingest.MAX_INGEST_MB == 10_240
    proc = ccrm(
        "ingest",
        str(bomb),
        "--db",
        str(tmp_path / "new.duckdb"),
        env={**env, "CCRM_MAX_INGEST_MB": "lots"},
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: CCRM_MAX_INGEST_MB is 'lots'; set it to a number")
    assert not (tmp_path / "new.duckdb").exists()  # refused before the database was opened


NOT_A_FILE = "not a regular file; save the data to a file and ingest that"


def test_paths_that_are_not_regular_files_are_refused_without_opening_them(tmp_path):
    fifo = tmp_path / "orders.csv"
    os.mkfifo(fifo)
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "events.csv"))
    try:
        for path, what in (
            (fifo, f"is a named pipe (FIFO), {NOT_A_FILE}"),
            (tmp_path / "events.csv", f"is a socket, {NOT_A_FILE}"),
            (Path("/dev/null"), f"is a character device, {NOT_A_FILE}"),
            (tmp_path, "is a folder, not a file; pass the files inside it"),
            (tmp_path / "none.csv", "file not found; check the path and the file name"),
        ):
            with pytest.raises(IngestError) as caught:
                ingest.check_regular_file(path)
            assert str(caught.value) == f"{path}: {what}"
    finally:
        listening.close()


API_CHILD = textwrap.dedent(
    """
    import sys
    from ccrm_core.foundation import ingest, store
    con = store.connect_writer(sys.argv[1])
    [report] = ingest.ingest_files(con, [sys.argv[2]])
    print(report.status)
    print(report.message)
    """
)


@pytest.mark.parametrize("via", ["ccrm ingest", "ingest_files"])
def test_a_named_pipe_is_refused_at_once(tmp_path, via):
    """Opening a FIFO waits for a writer: `ccrm ingest` blocked forever holding the database's
    write lock. Run in a child process, so that the test cannot hang."""
    fifo = tmp_path / "orders.csv"
    os.mkfifo(fifo)
    db = tmp_path / "t.duckdb"
    message = f"{fifo}: is a named pipe (FIFO), {NOT_A_FILE}"
    if via == "ccrm ingest":
        proc = ccrm("ingest", str(fifo), "--db", str(db), timeout=300)
        assert (proc.returncode, proc.stderr) == (2, f"error: {message}\n")
        assert not db.exists()  # refused before the database was opened
    else:
        proc = subprocess.run(
            [sys.executable, "-c", API_CHILD, str(db), str(fifo)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.stdout.splitlines() == ["refused", message], proc.stderr


# ---------------------------------------------------------------------------------------------
# Atomicity: concurrent readers and a killed writer


def _events_csv(path: Path, n: int, start: int, value: int) -> Path:
    duckdb.sql(
        f"""COPY (SELECT 'e' || i AS event_id, TIMESTAMP '2024-01-01' + to_seconds(i) AS ts,
                  'web' AS channel, 'visit' AS event_type, NULL AS source_system,
                  NULL AS source_id, 'a' || (i % 1000) AS anonymous_id, NULL AS campaign_id,
                  {value} AS value
                FROM range({start}, {start + n}) t(i))
            TO '{path}' (HEADER, DELIMITER ',')"""
    )
    return path


def test_readers_see_the_table_before_or_after_a_load(con, tmp_path):
    """Readers in the load's process read through store.reading(), as the app does. Without
    optimistic writes DuckDB applies the whole insert inside COMMIT, where (1.5 and 2.0) other
    connections see it row group by row group: without the gate this test fails every run."""
    con.execute("SET enable_optimistic_write = false")
    ingest.ingest_files(con, [_events_csv(tmp_path / "events_a.csv", 1000, 0, 1)])
    before = state(con)["events"]
    big = _events_csv(tmp_path / "events_b.csv", 300_000, 500, 2)
    seen = set()
    worker = threading.Thread(target=ingest.ingest_files, args=(con, [big]))
    reader = con.cursor()
    worker.start()
    while worker.is_alive():
        with store.reading():
            got = reader.execute("SELECT count(*), coalesce(sum(hash(t)), 0) FROM events t")
            seen.add(got.fetchall()[0])
    worker.join()
    after = state(con)["events"]
    assert after[0] == 300_500 and after != before
    assert seen <= {before, after}


KILL_CHILD = textwrap.dedent(
    """
    import sys
    from ccrm_core.foundation import ingest, store
    con = store.connect_writer(sys.argv[1])
    print("ready", flush=True)
    ingest.ingest_files(con, [sys.argv[2]])
    print("done", flush=True)
    """
)


def test_killed_ingest_leaves_before_or_after(tmp_path):
    """SIGKILL a process in the middle of loading 300k rows (which replace 500 stored ones) at
    random moments: the database must reopen holding exactly the old or the new rows."""
    base = tmp_path / "base.duckdb"
    c = store.connect_writer(base)
    ingest.ingest_files(c, [_events_csv(tmp_path / "events_a.csv", 1000, 0, 1)])
    before = state(c)
    c.close()
    big = _events_csv(tmp_path / "events_b.csv", 300_000, 500, 2)
    finished = tmp_path / "finished.duckdb"
    shutil.copy(base, finished)
    c = store.connect_writer(finished)
    [r] = ingest.ingest_files(c, [big])
    after, seconds = state(c), r.seconds
    c.close()
    assert after != before and after["events"][0] == 300_500
    rng = random.Random(20240101)
    outcomes = []
    for attempt in range(3):
        db = tmp_path / f"kill{attempt}.duckdb"
        shutil.copy(base, db)
        child = subprocess.Popen(
            [sys.executable, "-c", KILL_CHILD, str(db), str(big)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert child.stdout.readline().strip() == "ready"
        # one moment early in each third of the load, so at least one lands before the commit
        threading.Event().wait(rng.uniform(0.05 + attempt * 0.3, 0.3 + attempt * 0.3) * seconds)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        c = store.connect_writer(db)
        got = state(c)
        logged = c.execute("SELECT count(*) FROM ingest_log WHERE status = 'loaded'").fetchone()[0]
        c.close()
        assert got in (before, after), f"attempt {attempt}: half-loaded state {got}"
        assert logged == (2 if got == after else 1)  # the log commits with the data
        outcomes.append((child.returncode, got == after))
    assert any(code == -signal.SIGKILL for code, _ in outcomes), outcomes


def test_generator_csv_round_trips_exactly(tmp_path):
    """`ccrm sample --csv` writes the format ingest reads: loading its files gives back exactly
    the tables the generator wrote (row count and checksum per raw table)."""
    from ccrm_core.synthetic import sample

    data = sample.generate(200, 60, 5)
    direct = store.connect_writer(tmp_path / "direct.duckdb")
    sample.write_sample(direct, data)
    files = sample.write_csv(data, tmp_path / "csv")
    loaded = store.connect_writer(tmp_path / "loaded.duckdb")
    reports = ingest.ingest_files(loaded, files)
    assert [(r.status, r.rows_rejected) for r in reports] == [("loaded", 0)] * len(files)
    assert state(loaded) == state(direct)
    assert all(n > 0 for n, _ in state(loaded).values())
    direct.close()
    loaded.close()
