"""Hostile input: every free-text input is data.

One shared list of hostile texts (SQL injection, 100k-character strings, control characters,
bidi overrides, non-Latin scripts and emoji, path traversal) goes through each place a user can
type or send text: Customer 360 search, the segment rule builder, saved segment names, budget
scenario names, uploaded file names. For each: no unhandled exception, every table still there
with the same rows and checksum (tests/db_state.py), and where the text is refused a one-line,
printable message that names the problem. Names that are fine are stored and read back exactly.

Then uploads over the size limit; values outside the world the app models (dates in year 1 or
9999, amounts of 1e308), rejected row by row with line, column and reason, after which a full
build succeeds; and a property-based test that feeds generated malformed CSV files to ingest:
never an exception, never a partial load.
"""

from __future__ import annotations

import csv
import itertools
import re
import shutil
import tempfile
import unicodedata
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from db_state import differences, fingerprint
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from ccrm_core.conductor import budget
from ccrm_core.foundation import ingest, store, validation
from ccrm_core.librarian import customer360
from ccrm_core.radar import segments

LONG = "x" * 100_000
HOSTILE: list[str] = [
    "'; DROP TABLE customers; --",
    '" OR 1=1 --',
    "Robert'); DROP TABLE src_customers;--",
    "1; DELETE FROM mart_customer WHERE 1=1",
    "' UNION SELECT email FROM customers --",
    "%",
    "_",
    "\\",
    LONG,
    "a@" + "b" * 100_000,
    "9" * 100_000,
    "\x00",
    "name\x00with nul",
    "\x1b[31mred\x1b[0m",
    "two\r\nlines",
    "\r\n",
    "right\u202eto left",
    "zero\u200bwidth",
    "李小龙",
    "Мария",
    "محمد",
    "Zoë O'Brien-Ñúñez",
    "😀🎉 party",
    "../../etc/passwd.csv",
    "..\\..\\windows\\system32.csv",
    "   ",
]


def is_clean_message(message: str) -> bool:
    """One printable line that does not echo a 100k-character input: what the UI and the CLI
    can show as is (a message may list choices, e.g. every mart_customer column)."""
    return message.isprintable() and 0 < len(message) <= 2_000


def refused_character(text: str) -> str | None:
    """The first character a name may not hold (hand-written rule: control, format, surrogate,
    private-use, unassigned, line/paragraph separator), or None."""
    for ch in text.strip():
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            return ch
    return None


def expected_name_problem(text: str, max_len: int) -> str | None:
    """What a name check must say about `text`, or None when the name is fine."""
    clean = text.strip()
    if not clean:
        return "is empty"
    if len(clean) > max_len:
        return f"is {len(clean):,} characters long; use at most {max_len}"
    ch = refused_character(clean)
    if ch is not None:
        return f"control or invisible character (U+{ord(ch):04X})"
    return None


@pytest.fixture(scope="module")
def hostile_con(demo_db, tmp_path_factory):
    """A private copy of the built demo database for this module (writes stay here)."""
    path = tmp_path_factory.mktemp("hostile") / "hostile.duckdb"
    shutil.copy(demo_db, path)
    con = store.connect_writer(path)
    yield con
    con.close()


# ---------------------------------------------------------------------------------------------
# Customer 360 search


def test_search_treats_hostile_text_as_data(hostile_con):
    con = hostile_con
    before = fingerprint(con)
    problems = []
    for text in HOSTILE:
        try:
            found = customer360.search(con, text)
        except Exception as exc:  # noqa: BLE001 - any exception is the failure being tested
            problems.append(f"{validation.quoted(text)}: {type(exc).__name__}: {exc}")
            continue
        if list(found.columns) != customer360.RESULT_COLUMNS or len(found) > 20:
            problems.append(f"{validation.quoted(text)}: unexpected result shape {found.shape}")
    assert not problems, problems
    assert differences(before, fingerprint(con)) == []
    # the index still answers: a real customer's email finds that customer first
    cid, email = con.execute(
        "SELECT customer_id, email FROM customers WHERE email IS NOT NULL ORDER BY customer_id "
        "LIMIT 1"
    ).fetchall()[0]
    assert customer360.search(con, email)["customer_id"].iloc[0] == cid


# ---------------------------------------------------------------------------------------------
# Segment rule builder and saved segment names


def test_rule_builder_treats_hostile_values_as_parameters(hostile_con):
    con = hostile_con
    before = fingerprint(con)
    segment_values = con.execute("SELECT rfm_segment FROM mart_customer").df()["rfm_segment"]
    problems = []
    for text in HOSTILE:
        blank = text.strip() == ""
        for rule, expected in (
            (("rfm_segment", "=", text), 0),  # no segment has a hostile name
            (("rfm_segment", "in", [text, "also not a segment"]), 0),
            # hand count: the text as a plain substring, case-insensitive
            (
                ("rfm_segment", "contains", text),
                int(segment_values.str.lower().str.contains(text.lower(), regex=False).sum()),
            ),
        ):
            try:
                got = segments.rule_counts(con, [rule])["customers"]
            except segments.RuleError as exc:
                if not (blank and "a value is missing" in str(exc)):
                    problems.append(f"{rule[1]} {validation.quoted(text)}: refused: {exc}")
                continue
            if blank or got != expected:
                problems.append(f"{rule[1]} {validation.quoted(text)}: {got} customers")
        # a number column: refused as not a (finite) number, with a clean message
        with pytest.raises(segments.RuleError) as caught:
            segments.rule_counts(con, [("orders", ">", text)])
        message = str(caught.value)
        if not is_clean_message(message) or not (
            "not a number" in message or "not a finite number" in message or "missing" in message
        ):
            problems.append(f"orders > {validation.quoted(text)}: message {message!r}")
        # as a column, an operator or the match mode: refused, never run as SQL
        for rule, match, want in (
            ((text, "=", "x"), "all", "is not in mart_customer"),
            (("orders", text, 1), "all", "does not apply to a number column"),
            (("orders", ">", 1), text, "match must be 'all' or 'any'"),
        ):
            with pytest.raises(segments.RuleError) as caught:
                segments.rule_counts(con, [rule], match)
            message = str(caught.value)
            if want not in message or not is_clean_message(message):
                problems.append(f"{validation.quoted(text)} as {want}: message {message!r}")
    assert not problems, problems
    assert differences(before, fingerprint(con)) == []


def test_segment_names_are_stored_as_data_or_refused_clearly(hostile_con):
    con = hostile_con
    before = fingerprint(con, skip=("saved_segments",))
    buyers = con.execute("SELECT count(*) FROM mart_customer WHERE orders > 1").fetchall()[0][0]
    problems = []
    for text in HOSTILE:
        want = expected_name_problem(text, segments.SEGMENT_NAME_MAX)
        try:
            n = segments.save_segment(con, text, [("orders", ">", 1)])
        except segments.RuleError as exc:
            if want is None or want not in str(exc) or not is_clean_message(str(exc)):
                problems.append(f"{validation.quoted(text)}: refused with {str(exc)!r}")
            continue
        if want is not None:
            problems.append(f"{validation.quoted(text)}: saved, expected refusal ({want})")
            continue
        name = text.strip()
        saved = segments.saved_segments(con)
        members = segments.segment_members(con, segments.SAVED_SCHEME, name)
        if n != buyers or name not in set(saved["name"]) or len(members) != buyers:
            problems.append(f"{validation.quoted(text)}: saved as {list(saved['name'])}")
        assert segments.delete_segment(con, name)
    assert not problems, problems
    assert segments.saved_segments(con).empty
    assert differences(before, fingerprint(con, skip=("saved_segments",))) == []
    # a name nobody saved is reported with an escaped, shortened quote
    with pytest.raises(segments.RuleError) as caught:
        segments.segment_members(con, segments.SAVED_SCHEME, "\x1b[31m" + LONG)
    assert is_clean_message(str(caught.value)) and "\\x1b[31m" in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Budget scenario names


def test_scenario_names_are_stored_as_data_or_refused_clearly(hostile_con):
    con = hostile_con
    before = fingerprint(con, skip=(budget.SCENARIOS_TABLE,))
    plan = {"email": 120.5, "tv": 3000.0}
    problems = []
    for text in HOSTILE:
        want = expected_name_problem(text, budget.SCENARIO_NAME_MAX)
        try:
            name = budget.save_scenario(con, text, plan)
        except budget.ScenarioNameError as exc:
            if want is None or want not in str(exc) or not is_clean_message(str(exc)):
                problems.append(f"{validation.quoted(text)}: refused with {str(exc)!r}")
            continue
        if want is not None:
            problems.append(f"{validation.quoted(text)}: saved, expected refusal ({want})")
            continue
        loaded = budget.load_scenario(con, name)
        if name != text.strip() or loaded.plan != plan:
            problems.append(f"{validation.quoted(text)}: read back {loaded.name!r} {loaded.plan}")
        assert budget.delete_scenario(con, name) == len(plan)
    assert not problems, problems
    assert budget.list_scenarios(con).empty
    assert differences(before, fingerprint(con, skip=(budget.SCENARIOS_TABLE,))) == []
    with pytest.raises(budget.BudgetError) as caught:
        budget.load_scenario(con, "two\r\nlines" + LONG)
    assert is_clean_message(str(caught.value))


# ---------------------------------------------------------------------------------------------
# Uploaded file names


def test_upload_file_names_are_data(hostile_con, tmp_path):
    """Each hostile text as an upload's name, bare and as `campaigns_<text>.csv`: the table is
    inferred only from a clean name, a refused name says why, and re-loading the same campaigns
    changes no table (the upsert is idempotent)."""
    con = hostile_con
    upload = tmp_path / "upload-7f3a.tmp"
    con.execute(f"COPY campaigns TO '{upload}' (HEADER, DELIMITER ',')")
    logged_before = con.execute("SELECT count(*) FROM ingest_log").fetchall()[0][0]
    before = fingerprint(con, skip=("ingest_log", "ingest_rejects"))
    names = HOSTILE + [f"campaigns_{t}.csv" for t in HOSTILE] + ["../../campaigns.csv"]
    problems = []
    for name in names:
        base = name.replace("\\", "/").split("/")[-1]
        want = "has no file name" if base.strip() in ("", ".", "..") else None
        want = want or expected_name_problem(base, ingest.FILE_NAME_MAX)
        if want is None and len(base.strip().encode("utf-8")) > ingest.FILE_NAME_MAX:
            want = "bytes long in UTF-8"
        try:
            table = ingest.infer_table(name)
        except ingest.IngestError as exc:
            table = None
            if not is_clean_message(str(exc)) or "cannot tell the table" not in str(exc):
                problems.append(f"infer_table {validation.quoted(name)}: {str(exc)!r}")
        [report] = ingest.ingest_files(con, [upload], source_names=[name])
        if not is_clean_message(report.message) or not report.file.isprintable():
            problems.append(f"{validation.quoted(name)}: message {report.message!r}")
        if want is not None:
            ok = report.status == "refused" and want in report.message
        elif table == "campaigns":
            ok = report.status == "loaded" and report.rows_loaded == before["campaigns"][0]
        else:
            ok = report.status == "refused" and "cannot tell the table" in report.message
        if not ok:
            problems.append(f"{validation.quoted(name)}: {report.status}: {report.message}")
    assert not problems, problems
    assert differences(before, fingerprint(con, skip=("ingest_log", "ingest_rejects"))) == []
    logged = con.execute(
        "SELECT file_name, message FROM ingest_log WHERE ingest_id > ?", [logged_before]
    ).fetchall()
    assert len(logged) == len(names)
    assert all(f.isprintable() and is_clean_message(m) for f, m in logged)


def test_upload_file_name_keeps_uploads_in_our_folder():
    assert ingest.upload_file_name("../../etc/passwd.csv") == "passwd.csv"
    assert ingest.upload_file_name("C:\\Users\\me\\orders 2024.csv") == "orders 2024.csv"
    assert ingest.upload_file_name("  李小龙_orders.csv ") == "李小龙_orders.csv"
    for name, message in (
        ("..", "has no file name"),
        ("data/", "has no file name"),
        ("orders\x00.csv", "(U+0000) at position 7"),
        ("\u202evsc.exe", "(U+202E) at position 1"),
        ("o" * 256 + ".csv", "260 characters long; use at most 255"),
        ("李" * 100 + ".csv", "304 bytes long in UTF-8"),
    ):
        with pytest.raises(ingest.IngestError, match=re.escape(message)):
            ingest.upload_file_name(name)


# ---------------------------------------------------------------------------------------------
# Upload size limit


def test_upload_size_limit(monkeypatch):
    monkeypatch.delenv("CCRM_MAX_UPLOAD_MB", raising=False)
    assert ingest.max_upload_mb() == 200
    monkeypatch.setenv("CCRM_MAX_UPLOAD_MB", "0.5")
    limit = ingest.max_upload_mb()
    assert limit == 0.5
    ingest.check_upload_size("orders.csv", 512 * 1024, limit)  # exactly the limit: accepted
    with pytest.raises(ingest.IngestError) as caught:
        ingest.check_upload_size("orders.csv", 512 * 1024 + 1, limit)
    assert str(caught.value) == (
        "orders.csv: is 0.5 MB, above the upload limit of 0.5 MB (CCRM_MAX_UPLOAD_MB); split the "
        "file, or stop the app and load it with `ccrm ingest`"
    )
    with pytest.raises(ingest.IngestError, match=r"is 300.0 MB, above the upload limit of 200 MB"):
        ingest.check_upload_size("\x1b[2Jevents.csv", 300 * 2**20, 200)
    for bad in ("abc", "-5", "0", "inf", "nan"):
        monkeypatch.setenv("CCRM_MAX_UPLOAD_MB", bad)
        with pytest.raises(ingest.IngestError, match="set it to a number of megabytes above 0"):
            ingest.max_upload_mb()


# ---------------------------------------------------------------------------------------------
# Values outside the world the app models: rejected at ingest, row by row, for CSV and Parquet


def _a_year_on(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


LAST_DAY = _a_year_on(date.today())  # the default date window ends a year from today
DATES = (
    f"outside the accepted dates 1970-01-01 .. {LAST_DAY}, set by CCRM_EARLIEST_DATE and "
    "CCRM_LATEST_DATE"
)
BIRTH_DATES = "outside the accepted birth dates 1800-01-01 .. 2199-12-31"
AMOUNTS = "outside the accepted amounts -1,000,000,000 .. 1,000,000,000 per row"
COUNTS = "outside the accepted counts 0 .. 1,000,000,000,000 per row"
# one good row per table; '{i}' makes the key of row i
GOOD_ROWS = {
    "src_customers": {
        "source_system": "crm",
        "source_id": "C{i}",
        "first_name": "Ann",
        "birth_date": "1990-01-01",
        "created_at": "2024-01-01 00:00:00",
        "updated_at": "2024-01-02 00:00:00",
    },
    "events": {
        "event_id": "E{i}",
        "ts": "2024-03-01 08:00:00",
        "channel": "email",
        "event_type": "send",
        "source_system": "crm",
        "source_id": "C1",
        "value": "1.5",
    },
    "orders": {
        "order_id": "O{i}",
        "ts": "2024-01-01 10:00:00",
        "source_system": "shop",
        "source_id": "c1",
        "revenue": "10.5",
    },
    "spend": {"date": "2024-01-0{i}", "channel": "tv", "spend": "100.0", "impressions": "1000"},
    "consents": {
        "source_system": "crm",
        "source_id": "C{i}",
        "channel": "email",
        "status": "opt_in",
        "ts": "2024-01-01 00:00:00",
    },
    "ad_consents": {
        "source_system": "crm",
        "source_id": "C{i}",
        "purpose": "ad_user_data",
        "status": "opt_in",
        "ts": "2024-01-01 00:00:00",
    },
    "lift_tests": {
        "test_id": "L{i}",
        "channel": "tv",
        "start_date": "2024-01-01",
        "end_date": "2024-01-28",
        "metric": "revenue",
        "lift": "1500.0",
        "standard_error": "300.0",
    },
    "campaigns": {
        "campaign_id": "K{i}",
        "name": "Spring",
        "channel": "email",
        "start_date": "2024-01-01",
        "end_date": "2024-02-01",
    },
    "experiments": {
        "experiment_id": "X1",
        "source_system": "crm",
        "source_id": "C{i}",
        "arm": "control",
        "assigned_at": "2024-01-01 09:00:00",
    },
}
# (table, column, value written, value as ingest_rejects records it, reason)
OUT_OF_RANGE = [
    ("orders", "ts", "0001-01-01 00:00:00", "0001-01-01 00:00:00", DATES),
    ("orders", "ts", "9999-12-31 23:59:59", "9999-12-31 23:59:59", DATES),
    ("orders", "ts", "1969-12-31 23:59:59", "1969-12-31 23:59:59", DATES),
    ("orders", "ts", f"{LAST_DAY + timedelta(days=1)} 00:00:00", None, DATES),
    ("orders", "revenue", "1e308", "1e+308", AMOUNTS),
    ("orders", "revenue", "-1000000000.5", "-1000000000.5", AMOUNTS),
    ("events", "ts", "9999-12-31 00:00:00", "9999-12-31 00:00:00", DATES),
    ("events", "value", "-1e308", "-1e+308", AMOUNTS),
    ("spend", "date", "0001-01-01", "0001-01-01", DATES),
    ("spend", "spend", "1e12", "1000000000000.0", AMOUNTS),
    ("spend", "impressions", "-1", "-1", COUNTS),  # read as DOUBLE from CSV, shown as written
    ("spend", "impressions", "10000000000000", "10000000000000", COUNTS),
    ("consents", "ts", "0001-01-01 00:00:00", "0001-01-01 00:00:00", DATES),
    ("ad_consents", "ts", "9999-12-31 00:00:00", "9999-12-31 00:00:00", DATES),
    ("lift_tests", "end_date", "9999-12-31", "9999-12-31", DATES),
    ("lift_tests", "lift", "1e308", "1e+308", AMOUNTS),
    ("campaigns", "start_date", "9999-12-31", "9999-12-31", DATES),
    ("campaigns", "end_date", "1900-01-01", "1900-01-01", DATES),
    ("experiments", "assigned_at", "9999-12-31 23:59:59", "9999-12-31 23:59:59", DATES),
    ("src_customers", "birth_date", "0001-01-01", "0001-01-01", BIRTH_DATES),
    ("src_customers", "birth_date", "9999-12-31", "9999-12-31", BIRTH_DATES),
    ("src_customers", "created_at", "1900-01-01 00:00:00", "1900-01-01 00:00:00", DATES),
    ("src_customers", "updated_at", "9999-12-31 00:00:00", "9999-12-31 00:00:00", DATES),
]


def _rows(table: str, values: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(columns, rows as text): row i is the good row of `table` with key i and `values[i]`."""
    columns = list(GOOD_ROWS[table])
    rows = [
        [{**GOOD_ROWS[table], **change}[c].format(i=i + 1) for c in columns]
        for i, change in enumerate(values)
    ]
    return columns, rows


def _write(path: Path, table: str, columns: list[str], rows: list[list[str]]) -> Path:
    """The rows as CSV, or as Parquet with the contract's own column types."""
    if path.suffix == ".csv":
        path.write_text("\n".join(",".join(r) for r in [columns, *rows]) + "\n")
        return path
    spec = store.TABLES[table]
    parse = {
        "TIMESTAMP": (datetime.fromisoformat, pa.timestamp("us")),
        "DATE": (date.fromisoformat, pa.date32()),
        "DOUBLE": (float, pa.float64()),
        "BIGINT": (int, pa.int64()),
        "VARCHAR": (str, pa.string()),
    }
    arrays = []
    for k, c in enumerate(columns):
        convert, kind = parse[spec.column(c).type]
        arrays.append(pa.array([convert(r[k]) for r in rows], type=kind))
    pq.write_table(pa.Table.from_arrays(arrays, names=columns), path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("table, column, value, recorded, reason", OUT_OF_RANGE)
def test_values_outside_the_contract_are_rejected_with_line_column_and_reason(
    tmp_path, suffix, table, column, value, recorded, reason
):
    """A file of good rows and one value outside its column's valid range (store.TABLES): that
    row is rejected with its line (CSV) or row (Parquet), column, value and reason; the good rows
    load exactly."""
    columns, rows = _rows(table, [{}, {column: value}, {}])
    path = _write(tmp_path / f"{table}{suffix}", table, columns, rows)
    con = store.connect_writer(tmp_path / "t.duckdb")
    [report] = ingest.ingest_files(con, [path], max_reject_rate=0.5)
    stored = con.execute(
        f"SELECT count(*) FROM {store.quote_ident(table)}"  # noqa: S608
    ).fetchall()
    logged = con.execute("SELECT line, column_name, value, reason FROM ingest_rejects").fetchall()
    con.close()
    where = 3 if suffix == ".csv" else 2  # the header is line 1; Parquet rows count from 1
    assert (report.status, report.rows_read, report.rows_loaded, report.rows_rejected) == (
        "loaded",
        3,
        2,
        1,
    ), report.message
    assert stored == [(2,)]
    assert logged == [(where, column, recorded or value, reason)]


def test_values_on_the_edges_of_the_ranges_load_exactly(tmp_path):
    first, last = date(1970, 1, 1), LAST_DAY
    con = store.connect_writer(tmp_path / "t.duckdb")
    cases = {
        "orders": [
            {"ts": f"{first} 00:00:00", "revenue": "1000000000"},
            {"ts": f"{last} 23:59:59.999999", "revenue": "-1000000000"},
        ],
        "spend": [
            {"date": str(first), "spend": "1e9", "impressions": "0"},
            {"date": str(last), "spend": "-1e9", "impressions": "1000000000000"},
        ],
        "src_customers": [{"birth_date": "1800-01-01"}, {"birth_date": "2199-12-31"}],
    }
    for table, values in cases.items():
        columns, rows = _rows(table, values)
        [report] = ingest.ingest_files(
            con, [_write(tmp_path / f"{table}.csv", table, columns, rows)]
        )
        assert (report.status, report.rows_loaded, report.rows_rejected) == ("loaded", 2, 0)
    assert con.execute("SELECT ts, revenue FROM orders ORDER BY order_id").fetchall() == [
        (datetime(1970, 1, 1), 1e9),
        (datetime.combine(last, datetime.max.time()), -1e9),
    ]
    assert con.execute("SELECT date, spend, impressions FROM spend ORDER BY date").fetchall() == [
        (first, 1e9, 0),
        (last, -1e9, 10**12),
    ]
    assert con.execute("SELECT birth_date FROM src_customers ORDER BY 1").fetchall() == [
        (date(1800, 1, 1),),
        (date(2199, 12, 31),),
    ]
    con.close()


def test_the_date_window_follows_its_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CCRM_EARLIEST_DATE", "2024-01-01")
    monkeypatch.setenv("CCRM_LATEST_DATE", "2024-06-30")
    times = ["2023-12-31 23:59:59", "2024-01-01 00:00:00", "2024-06-30 23:59:59", "2024-07-01"]
    columns, rows = _rows("orders", [{"ts": t} for t in times])
    con = store.connect_writer(tmp_path / "t.duckdb")
    path = _write(tmp_path / "orders.csv", "orders", columns, rows)
    [report] = ingest.ingest_files(con, [path], max_reject_rate=0.5)
    window = (
        "outside the accepted dates 2024-01-01 .. 2024-06-30, set by CCRM_EARLIEST_DATE and "
        "CCRM_LATEST_DATE"
    )
    assert con.execute("SELECT line, value, reason FROM ingest_rejects").fetchall() == [
        (2, "2023-12-31 23:59:59", window),
        (5, "2024-07-01 00:00:00", window),
    ]
    assert con.execute("SELECT order_id FROM orders ORDER BY 1").fetchall() == [("O2",), ("O3",)]
    assert report.rows_loaded == 2
    # a setting that is not a date, or an empty window, stops ingest before any file is read
    for variable, raw, message in (
        ("CCRM_LATEST_DATE", "next year", "CCRM_LATEST_DATE is 'next year'; set it to a date"),
        ("CCRM_LATEST_DATE", "2024/06/30", "CCRM_LATEST_DATE is '2024/06/30'; set it to a date"),
        ("CCRM_EARLIEST_DATE", "2024-02-30", "CCRM_EARLIEST_DATE is '2024-02-30'; set it to"),
        (
            "CCRM_EARLIEST_DATE",
            "2025-01-01",
            "CCRM_EARLIEST_DATE (2025-01-01) is after CCRM_LATEST_DATE (2024-06-30)",
        ),
    ):
        monkeypatch.setenv(variable, raw)
        with pytest.raises(ingest.IngestError, match=re.escape(message)):
            ingest.ingest_files(con, [path])
        monkeypatch.setenv("CCRM_EARLIEST_DATE", "2024-01-01")
        monkeypatch.setenv("CCRM_LATEST_DATE", "2024-06-30")
    assert con.execute("SELECT count(*) FROM ingest_log").fetchall() == [(1,)]
    con.close()


# one hostile row per kind of value, appended to the generator's files: (table, row values)
HOSTILE_ROWS = {
    "orders": [
        {"ts": "0001-01-01 00:00:00"},  # a 740,000-day series in kpi_alerts (about 20 GB)
        {"ts": "9999-12-31 23:59:59"},  # 'year 10000 is out of range' in standardise
        {"revenue": "1e308"},  # OverflowError in value
    ],
    "events": [{"ts": "0001-01-01 00:00:00"}, {"value": "1e308"}],
    "spend": [{"date": "9999-12-31"}, {"spend": "-1e308"}, {"impressions": "1e15"}],
    "consents": [{"ts": "9999-12-31 00:00:00"}],
    "ad_consents": [{"ts": "0001-01-01 00:00:00"}],
    "lift_tests": [{"end_date": "9999-12-31"}],  # the company has one test: 1 of 2 rejected
    "campaigns": [{"start_date": "0001-01-01"}],
    "experiments": [{"assigned_at": "9999-12-31 23:59:59"}],
    "src_customers": [{"birth_date": "9999-12-31"}, {"created_at": "0001-01-01 00:00:00"}],
}


def test_hostile_values_are_rejected_and_the_build_then_succeeds(tmp_path):
    """The generator's CSV files with values from outside the modelled world appended: each such
    row is rejected with its line, every generated row loads, and a full build over the result
    finishes with every stage ok (loaded, the year-1 order alone made the build use ~20 GB)."""
    from ccrm_core.foundation import pipeline
    from ccrm_core.synthetic import sample

    data = sample.generate(200, 60, 5)
    files = sample.write_csv(data, tmp_path / "csv")
    expected = {}
    for path in files:
        table = path.stem
        with path.open(newline="") as fh:
            columns, first = list(itertools.islice(csv.reader(fh), 2))
        lines = path.read_bytes().count(b"\n")
        with path.open("a", newline="") as fh:
            out = csv.writer(fh, lineterminator="\n")
            for k, change in enumerate(HOSTILE_ROWS[table]):
                row = {**dict(zip(columns, first, strict=True)), **change}
                for key in store.TABLES[table].key:  # a key of its own: replaces no generated row
                    # (a purpose comes from a fixed list: the copied one stays)
                    if store.TABLES[table].column(key).type == "VARCHAR" and key != "purpose":
                        row[key] = f"HOSTILE{k}"
                out.writerow([row[c] for c in columns])
                expected.setdefault(table, []).append((lines + 1 + k, next(iter(change))))
    con = store.connect_writer(tmp_path / "t.duckdb")
    reports = ingest.ingest_files(con, files, max_reject_rate=0.5)
    for report in reports:
        assert report.status == "loaded", report.message
        assert report.rows_loaded == len(data[report.table]), report.table
        got = con.execute(
            "SELECT line, column_name FROM ingest_rejects WHERE ingest_id = ? ORDER BY line",
            [report.ingest_id],
        ).fetchall()
        assert got == expected[report.table], report.table
    results = pipeline.build(con)
    con.close()
    assert [(r.stage, r.status) for r in results if r.status != "ok"] == []


# ---------------------------------------------------------------------------------------------
# Malformed CSV files (property-based)

ORDER_COLUMNS = ["order_id", "ts", "source_system", "source_id", "revenue", "channel", "category"]
STORED = [  # rows in the table before each example; o2 and o4 can be replaced by a file
    ("o1", "2024-01-01 10:00:00", "shop", "c1", "10.5", "web", "shoes"),
    ("o2", "2024-01-02 11:00:00", "shop", "c2", "20.0", "store", ""),
    ("o4", "2024-01-04 12:00:00", "crm", "c4", "7.25", "", "bags"),
]

text_value = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
good_row = st.fixed_dictionaries(
    {
        "ts": st.datetimes(  # inside the default date window, 1970-01-01 .. a year from today
            min_value=pd.Timestamp("1970-01-01").to_pydatetime(),
            max_value=pd.Timestamp("2026-06-30").to_pydatetime(),
        ).map(lambda d: d.replace(microsecond=0).isoformat(sep=" ")),
        "source_system": st.builds(str.__add__, st.sampled_from(["crm", "shop", "Ω"]), text_value),
        "source_id": st.from_regex(r"[A-Za-z0-9]{1,10}", fullmatch=True),
        "revenue": st.floats(-1e6, 1e6, allow_nan=False).map(repr),
        "channel": st.one_of(st.just(""), text_value),
        "category": st.one_of(st.just(""), text_value, st.just("y" * 50_000)),  # huge field
    }
)
# ways to break one row, each of which ingest must reject (and only that row)
BREAKS = {
    "revenue not a number": lambda r: {**r, "revenue": "12,50 EUR"},
    "revenue not finite": lambda r: {**r, "revenue": "inf"},
    "ts not a timestamp": lambda r: {**r, "ts": "yesterday"},
    "ts outside the date window": lambda r: {**r, "ts": "9999-12-31 23:59:59"},
    "revenue outside the accepted amounts": lambda r: {**r, "revenue": "-1e308"},
    "required value blank": lambda r: {**r, "source_system": "   "},
    "required value missing": lambda r: {**r, "ts": ""},
}


def _csv_field(value: str, quote_all: bool) -> str:
    """RFC 4180: quote a field holding a comma, quote or line break (a lone CR is a line break
    to CSV readers), doubling quotes inside."""
    if quote_all or any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def order_files(draw):
    """(file bytes, expectation): expectation is ('exact', valid rows, rejected count) when the
    file's meaning is known row by row, else ('refuse', None, None) or ('any', None, None)."""
    n_good = draw(st.integers(1, 12))
    ids = draw(
        st.lists(
            st.sampled_from([f"o{i}" for i in range(1, 40)]),
            min_size=n_good + 6,
            max_size=n_good + 6,
            unique=True,
        )
    )
    rows = [{"order_id": i, **draw(good_row)} for i in ids[:n_good]]
    broken = []
    for order_id in ids[n_good : n_good + draw(st.integers(0, 4))]:
        how = draw(st.sampled_from(sorted(BREAKS) + ["too many fields", "too few fields"]))
        row = {"order_id": order_id, **draw(good_row)}
        broken.append((how, BREAKS[how](row) if how in BREAKS else row))
    order = draw(st.permutations(list(range(len(rows) + len(broken)))))
    quote_all = draw(st.booleans())
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(ORDER_COLUMNS)]
    everything = [("good", r) for r in rows] + broken
    for k in order:
        how, row = everything[k]
        values = [row[c] for c in ORDER_COLUMNS]
        if how == "too many fields":
            values.append("surplus")
        elif how == "too few fields":
            values = values[:-2]
        lines.append(",".join(_csv_field(v, quote_all) for v in values))
    data = (newline.join(lines) + newline).encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data  # a byte-order mark, as Excel writes
    mutation = draw(
        st.sampled_from(
            ["none"] * 6 + ["truncate", "random bytes", "delimiter", "latin-1 row", "garbage"]
        )
    )
    if mutation == "none":
        return data, ("exact", rows, len(broken))
    if mutation == "truncate":
        return data[: draw(st.integers(0, len(data)))], ("any", None, None)
    if mutation == "random bytes":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=40)) + data[at:], ("any", None, None)
    if mutation == "delimiter":
        sep = draw(st.sampled_from([b";", b"\t", b"|"]))
        return data.replace(b",", sep), ("refuse", None, None)
    if mutation == "latin-1 row":
        # one row in another encoding: not UTF-8, so the whole file is refused
        bad = "x,2024-01-01 00:00:00,shop,Zoë,1.0,,café\n".encode("latin-1")
        return data + bad, ("refuse", None, None)
    return draw(st.binary(min_size=0, max_size=400)), ("any", None, None)


def _as_table_rows(rows: list[dict]) -> set[tuple]:
    """Rows as DuckDB types them (the same casts ingest's reader applies; '' is NULL)."""
    frame = pd.DataFrame(rows, columns=ORDER_COLUMNS)  # noqa: F841 - read by DuckDB below
    return set(
        duckdb.sql(
            "SELECT order_id, CAST(ts AS TIMESTAMP), source_system, source_id, "
            "CAST(revenue AS DOUBLE), NULLIF(channel, ''), NULLIF(category, '') FROM frame"
        ).fetchall()
    )


STORED_ROWS = _as_table_rows([dict(zip(ORDER_COLUMNS, r, strict=True)) for r in STORED])


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(order_files())
@example((b"\x00", ("any", None, None)))  # a header of one NUL: named escaped, not raw
def test_malformed_csv_never_raises_and_never_loads_partly(example):
    data, (kind, good, n_broken) = example
    con = store.connect_writer(":memory:")
    try:
        con.executemany(
            "INSERT INTO orders VALUES (?, CAST(? AS TIMESTAMP), ?, ?, CAST(? AS DOUBLE), "
            "NULLIF(?, ''), NULLIF(?, ''))",
            [list(r) for r in STORED],
        )
        assert set(con.execute("SELECT * FROM orders").fetchall()) == STORED_ROWS
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "orders_upload.csv"
            path.write_bytes(data)
            [report] = ingest.ingest_files(con, [path], max_reject_rate=1.0)
        after = set(con.execute("SELECT * FROM orders").fetchall())
        logged = con.execute(
            "SELECT status, rows_read, rows_loaded, rows_rejected FROM ingest_log"
        ).fetchall()
    finally:
        con.close()
    assert is_clean_message(report.message), report.message
    assert logged == [(report.status, report.rows_read, report.rows_loaded, report.rows_rejected)]
    event(f"{kind} file: {report.status}")
    if report.status == "refused":
        assert kind != "exact", report.message
        assert after == STORED_ROWS and report.rows_loaded == 0  # nothing changed
        return
    assert kind != "refuse", f"loaded a file that must be refused: {report.message}"
    # loaded: the stored rows the file did not mention, plus exactly the rows it loaded
    assert report.rows_loaded + report.rows_rejected == report.rows_read
    assert len(after) == len(STORED_ROWS) - report.rows_replaced + report.rows_loaded
    kept = {r for r in STORED_ROWS if r in after}
    assert len(kept) == len(STORED_ROWS) - report.rows_replaced
    if kind == "exact":
        stored = {r[0]: r for r in STORED_ROWS}
        stored.update({r[0]: r for r in _as_table_rows(good)})
        assert after == set(stored.values())
        assert (report.rows_loaded, report.rows_rejected) == (len(good), n_broken)
