"""The DuckDB store: the data contract, schema versions, and the two ways to open the database.

Concurrency model (see README, "Working while the app is open"):
- DuckDB lets one process open a file read-write, or many processes read-only, never both.
- The app keeps one connection per process and takes a cursor per query; writes the app makes
  (upload, rebuild, saved segments) run in transactions on that same connection.
- DuckDB (measured on 1.5.6 and 2.0.0) lets the other connections of a process see a commit's
  rows while the commit is being applied, even from a snapshot taken before it: a reader counted
  the inserted rows of a load before its deletes (tests/test_store.py). So every write commits
  through `transaction()`, which holds the process's commit gate alone, and every read the app
  makes holds it shared (`reading()`): a reader sees the data before or after a commit, never
  half of one.
- A command-line writer (`ccrm ingest`, `ccrm build`) started while another process holds the
  file fails at once with `DatabaseBusyError`, naming the file and what to do; nothing is changed.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

import duckdb


class _CommitGate:
    """Reads share the gate, a commit holds it alone; a waiting commit goes before new reads (so
    a stream of page reads cannot starve a load). Reads nest on one thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._committing = False
        self._commits_waiting = 0
        self._local = threading.local()

    def _depth(self) -> int:
        return getattr(self._local, "depth", 0)

    @contextmanager
    def reading(self) -> Iterator[None]:
        depth = self._depth()
        if depth == 0:
            with self._cond:
                while self._committing or self._commits_waiting:
                    self._cond.wait()
                self._readers += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._cond:
                    self._readers -= 1
                    self._cond.notify_all()

    @contextmanager
    def committing(self) -> Iterator[None]:
        if self._depth():
            raise RuntimeError(
                "a commit inside store.reading() would wait for itself; run the write outside it"
            )
        with self._cond:
            self._commits_waiting += 1
            try:
                while self._committing or self._readers:
                    self._cond.wait()
            finally:
                self._commits_waiting -= 1
            self._committing = True
        try:
            yield
        finally:
            with self._cond:
                self._committing = False
                self._cond.notify_all()


_GATE = _CommitGate()


def reading() -> contextlib.AbstractContextManager[None]:
    """Hold while reading on a connection that a writer in this process may commit to: the read
    then sees the data before or after each commit, never a commit half applied."""
    return _GATE.reading()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT on `con`, the COMMIT through the commit gate; any exception (a
    KeyboardInterrupt too) rolls back and propagates. The one way this project writes."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        with _GATE.committing():
            con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # DuckDB already rolled back after the failing statement or COMMIT
        raise


DEFAULT_DB = "data/ccrm.duckdb"
SCHEMA_VERSION = 6


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type
    required: bool = False  # must be present in every file and never null
    valid: str | None = None  # the range its values must lie in: a key of VALID_RANGES


# The world the app models. A value outside it is rejected at ingest with its line and reason:
# a date in year 1 or 9999 made later stages build a series of 740,000 days or overflow, and an
# amount of 1e308 overflowed every sum of money (exact_sum adds DECIMAL(38, 12)).
VALID_RANGES = {
    # when something happened or is planned (events, orders, spend, consents, campaigns,
    # experiments, record times): the date window, CCRM_EARLIEST_DATE .. CCRM_LATEST_DATE
    "activity": "dates",
    # a person's birth date: wide on purpose, so that impossible ages (over 120, under 13, in the
    # future) still load and the hygiene stage counts them instead of ingest dropping the record
    "birth": "birth dates",
    "money": "amounts",  # currency units per row: order revenue, spend, event value
    "count": "counts",  # impressions per row
}
EARLIEST_DATE = date(1970, 1, 1)  # default start of the date window ($CCRM_EARLIEST_DATE)
LATEST_DATE_YEARS_AHEAD = 1  # default end of the window: today plus this ($CCRM_LATEST_DATE)
BIRTH_DATES = (date(1800, 1, 1), date(2199, 12, 31))
MONEY_LIMIT = 1e9  # |amount| per row, currency units
COUNT_LIMIT = 1e12  # impressions per row


@dataclass(frozen=True)
class ValidRange:
    """The values a column accepts, inclusive (dates, or numbers), and how a reject explains it."""

    low: date | float
    high: date | float
    reason: str  # e.g. 'outside the accepted amounts -1,000,000,000 .. 1,000,000,000 per row'


def date_window(today: date | None = None) -> tuple[date, date]:
    """The first and last day (inclusive) of activity ccrm accepts: $CCRM_EARLIEST_DATE (default
    1970-01-01) to $CCRM_LATEST_DATE (default one year after today), each YYYY-MM-DD. ValueError
    naming the variable when one is not a date or the window is empty."""
    today = today or date.today()
    try:
        a_year_on = today.replace(year=today.year + LATEST_DATE_YEARS_AHEAD)
    except ValueError:  # 29 February
        a_year_on = today.replace(year=today.year + LATEST_DATE_YEARS_AHEAD, day=28)
    first = _date_setting("CCRM_EARLIEST_DATE", EARLIEST_DATE)
    last = _date_setting("CCRM_LATEST_DATE", a_year_on)
    if first > last:
        raise ValueError(
            f"CCRM_EARLIEST_DATE ({first}) is after CCRM_LATEST_DATE ({last}); set a window whose "
            "first day comes before its last"
        )
    return first, last


def _date_setting(variable: str, default: date) -> date:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        shown = repr(raw[:40]) + ("…" if len(raw) > 40 else "")
        raise ValueError(
            f"{variable} is {shown}; set it to a date YYYY-MM-DD (default {default}), or unset it"
        ) from None


def valid_range(column: Column, today: date | None = None) -> ValidRange | None:
    """The range `column`'s values must lie in (see VALID_RANGES), None when any value goes.
    ValueError for a date-window setting that is not a date (see `date_window`)."""
    if column.valid is None:
        return None
    what = VALID_RANGES[column.valid]
    if column.valid == "activity":
        low, high = date_window(today)
        how = ", set by CCRM_EARLIEST_DATE and CCRM_LATEST_DATE"
    elif column.valid == "birth":
        (low, high), how = BIRTH_DATES, ""
    elif column.valid == "money":
        low, high, how = -MONEY_LIMIT, MONEY_LIMIT, " per row"
    else:
        low, high, how = 0.0, COUNT_LIMIT, " per row"
    shown = f"{low} .. {high}" if isinstance(low, date) else f"{low:,.0f} .. {high:,.0f}"
    return ValidRange(low, high, f"outside the accepted {what} {shown}{how}")


@dataclass(frozen=True)
class Table:
    """A raw table of the data contract.

    `key` is the natural key: ingest refuses a file that repeats a key and replaces stored rows
    whose key it brings again (last file wins), which makes re-ingesting a file idempotent.
    `time_column` is the column that dates a row (for "what is loaded" summaries).
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    time_column: str | None = None
    description: str = ""
    optional_groups: tuple[tuple[str, ...], ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _cols(*specs: str) -> tuple[Column, ...]:
    """'name TYPE', 'name TYPE!' (required), each optionally followed by its valid range (a key
    of VALID_RANGES), into Columns."""
    out = []
    for spec in specs:
        name, typ, *valid = spec.split()
        out.append(Column(name, typ.rstrip("!"), typ.endswith("!"), *valid))
    return tuple(out)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "src_customers",
            _cols(
                "source_system VARCHAR!",
                "source_id VARCHAR!",
                "first_name VARCHAR",
                "last_name VARCHAR",
                "email VARCHAR",
                "phone VARCHAR",
                "address_line VARCHAR",
                "city VARCHAR",
                "region VARCHAR",
                "postal_code VARCHAR",
                "country VARCHAR",
                "birth_date DATE birth",
                "created_at TIMESTAMP activity",
                "updated_at TIMESTAMP activity",
            ),
            key=("source_system", "source_id"),
            time_column="updated_at",
            description="One record per source-system record; duplicates across systems are normal.",
        ),
        Table(
            "events",
            _cols(
                "event_id VARCHAR!",
                "ts TIMESTAMP! activity",
                "channel VARCHAR!",
                "event_type VARCHAR!",
                "source_system VARCHAR",
                "source_id VARCHAR",
                "anonymous_id VARCHAR",
                "campaign_id VARCHAR",
                "value DOUBLE money",
            ),
            key=("event_id",),
            time_column="ts",
            description="One interaction (send, open, click, visit, login, ...), known or anonymous.",
        ),
        Table(
            "orders",
            _cols(
                "order_id VARCHAR!",
                "ts TIMESTAMP! activity",
                "source_system VARCHAR!",
                "source_id VARCHAR!",
                "revenue DOUBLE! money",
                "channel VARCHAR",
                "category VARCHAR",
            ),
            key=("order_id",),
            time_column="ts",
            description="One purchase.",
        ),
        Table(
            "spend",
            _cols(
                "date DATE! activity",
                "channel VARCHAR!",
                "campaign_id VARCHAR",
                "spend DOUBLE! money",
                "impressions BIGINT count",
            ),
            key=("date", "channel", "campaign_id"),
            time_column="date",
            description="Media spend per day and channel (and campaign where known).",
        ),
        Table(
            "consents",
            _cols(
                "source_system VARCHAR!",
                "source_id VARCHAR!",
                "channel VARCHAR!",
                "status VARCHAR!",
                "ts TIMESTAMP! activity",
            ),
            key=("source_system", "source_id", "channel"),
            time_column="ts",
            description="Latest permission per source record and channel (opt_in / opt_out).",
        ),
        Table(
            "campaigns",
            _cols(
                "campaign_id VARCHAR!",
                "name VARCHAR!",
                "channel VARCHAR!",
                "offer VARCHAR",
                "start_date DATE activity",
                "end_date DATE activity",
            ),
            key=("campaign_id",),
            time_column="start_date",
            description="Campaign metadata.",
        ),
        Table(
            "experiments",
            _cols(
                "experiment_id VARCHAR!",
                "source_system VARCHAR!",
                "source_id VARCHAR!",
                "arm VARCHAR!",
                "assigned_at TIMESTAMP! activity",
            ),
            key=("experiment_id", "source_system", "source_id"),
            time_column="assigned_at",
            description="Test-and-learn assignments (control / treatment).",
        ),
        Table(
            "ad_consents",
            _cols(
                "source_system VARCHAR!",
                "source_id VARCHAR!",
                "purpose VARCHAR!",
                "status VARCHAR!",
                "ts TIMESTAMP! activity",
            ),
            key=("source_system", "source_id", "purpose"),
            time_column="ts",
            description="Latest advertising consent per source record and purpose "
            "(ad_user_data, ad_personalization: opt_in / opt_out).",
        ),
        Table(
            "lift_tests",
            _cols(
                "test_id VARCHAR!",
                "channel VARCHAR!",
                "start_date DATE! activity",
                "end_date DATE! activity",
                "metric VARCHAR!",
                "lift DOUBLE! money",
                "standard_error DOUBLE! money",
            ),
            key=("test_id",),
            time_column="end_date",
            description="Lift test readouts: a media channel's measured incremental revenue or "
            "conversions over the test's days (first to last, inclusive) and its standard error.",
        ),
    )
}

RAW_TABLES = tuple(TABLES)

# Allowed vocabularies (validity checks and generator share these).
ADDRESSABLE_CHANNELS = (
    "email",
    "direct_mail",
    "sms",
    "push",
    "paid_search",
    "display",
    "social",
    "call_center",
)
AGGREGATE_CHANNELS = ("tv", "print")
MEDIA_CHANNELS = ADDRESSABLE_CHANNELS + AGGREGATE_CHANNELS
EVENT_CHANNELS = ADDRESSABLE_CHANNELS + ("web",)
EVENT_TYPES = ("impression", "send", "open", "click", "visit", "call", "login", "unsubscribe")
ORDER_CHANNELS = ("web", "app", "store", "call_center")
CONSENT_STATUSES = ("opt_in", "opt_out")
# Advertising consent purposes (Google's consent mode and EU user consent policy names): sending
# a person's data to an ad platform, and using it to personalise ads. Kept apart from `consents`,
# whose rows are contact channels that reach counts, caps and decisions read.
AD_CONSENT_PURPOSES = ("ad_user_data", "ad_personalization")
# What a lift test measured: incremental revenue (currency) or conversions (orders).
LIFT_TEST_METRICS = ("revenue", "conversions")

# Migrations: version -> SQL that brings the schema from version-1 to version.
# Version 1 is the whole of schema.sql. A new version appends an entry; never edit an old one.
MIGRATIONS: dict[int, str] = {
    # 2: who revealed, exported, ingested or rebuilt what, when, and how many rows.
    2: """
    CREATE TABLE IF NOT EXISTS audit_log (
        audit_id    BIGINT NOT NULL,    -- 1, 2, ... in the order actions finished
        started_at  TIMESTAMP NOT NULL, -- when the action began (local time)
        ended_at    TIMESTAMP NOT NULL, -- when it finished
        actor       VARCHAR NOT NULL,   -- e-mail of the signed-in user, or <account>@localhost
        role        VARCHAR NOT NULL,   -- executive, marketer, analyst or admin
        via         VARCHAR NOT NULL,   -- 'app' or 'cli'
        action      VARCHAR NOT NULL,   -- reveal_pii, export_audience, export_clear_text,
                                        -- download_failing_rows, ingest, rebuild
        target      VARCHAR,            -- what: customer id, segment/channel, file, stages
        rows        BIGINT,             -- how many rows were shown, exported, loaded or built
        status      VARCHAR NOT NULL,   -- 'ok', 'refused' or 'failed'
        detail      VARCHAR             -- a short note (never PII)
    );
    """,
    # 3: a data steward's identity decisions: two source records are (or are not) one person.
    3: """
    CREATE TABLE IF NOT EXISTS identity_overrides (
        override_id     BIGINT NOT NULL,   -- 1, 2, ... in the order decisions were made
        decided_at      TIMESTAMP NOT NULL,
        actor           VARCHAR NOT NULL,  -- who decided (as in audit_log)
        decision        VARCHAR NOT NULL,  -- 'link', 'split' or 'clear' (back to the matcher)
        source_system_l VARCHAR NOT NULL,  -- the pair, in (source_system, source_id) order
        source_id_l     VARCHAR NOT NULL,
        source_system_r VARCHAR NOT NULL,
        source_id_r     VARCHAR NOT NULL,
        note            VARCHAR            -- why, in the steward's words
    );
    """,
    # 4: advertising consent purposes (a raw table of the data contract, see TABLES), and named
    # activations (segment x destination) with every export's members, for mirror sync.
    4: """
    CREATE TABLE IF NOT EXISTS ad_consents (
        source_system  VARCHAR NOT NULL,
        source_id      VARCHAR NOT NULL,
        purpose        VARCHAR NOT NULL,   -- ad_user_data or ad_personalization
        status         VARCHAR NOT NULL,   -- opt_in or opt_out
        ts             TIMESTAMP NOT NULL
    );
    CREATE TABLE IF NOT EXISTS activations (
        activation_id  BIGINT NOT NULL,    -- 1, 2, ... in the order activations were created
        name           VARCHAR NOT NULL,   -- unique, as the user typed it
        scheme         VARCHAR NOT NULL,   -- segment scheme (rfm_segment, value_tier, ..., saved)
        segment        VARCHAR NOT NULL,
        destination    VARCHAR NOT NULL,   -- google_ads or meta
        holdout_share  DOUBLE NOT NULL,    -- 0 .. 0.5 of eligible persons withheld
        created_at     TIMESTAMP NOT NULL,
        created_by     VARCHAR NOT NULL    -- actor, as in audit_log
    );
    CREATE TABLE IF NOT EXISTS activation_runs (
        activation_id  BIGINT NOT NULL,
        run            BIGINT NOT NULL,    -- 1, 2, ... per activation
        exported_at    TIMESTAMP NOT NULL,
        actor          VARCHAR NOT NULL,
        members        BIGINT NOT NULL,    -- segment members at export time
        sent           BIGINT NOT NULL,    -- persons in the file
        held_out       BIGINT NOT NULL,    -- eligible persons withheld (holdout)
        excluded       BIGINT NOT NULL,    -- members left out (consent, caps, no identifier)
        added          BIGINT NOT NULL,    -- persons sent now but not in the previous run
        removed        BIGINT NOT NULL,    -- persons sent in the previous run but not now
        audit_id       BIGINT              -- the export's audit_log row
    );
    CREATE TABLE IF NOT EXISTS activation_members (
        activation_id  BIGINT NOT NULL,
        run            BIGINT NOT NULL,
        customer_id    VARCHAR NOT NULL,
        held_out       BOOLEAN NOT NULL,   -- withheld from the file (holdout)
        email_keys     VARCHAR[],          -- SHA-256 of each email as the destination hashes it
        phone_keys     VARCHAR[]           -- SHA-256 of each phone as the destination hashes it
    );
    """,
    # 5: saved column mappings (how an exported file's columns fill a raw table), by name, found
    # again for the next file with the same header.
    5: """
    CREATE TABLE IF NOT EXISTS column_mappings (
        name         VARCHAR NOT NULL,   -- unique, as the user typed it
        table_name   VARCHAR NOT NULL,   -- the raw table it loads
        fingerprint  VARCHAR NOT NULL,   -- SHA-256 of the header it was made for
        definition   VARCHAR NOT NULL,   -- the mapping as TOML (ingest.mapping)
        saved_at     TIMESTAMP NOT NULL,
        saved_by     VARCHAR NOT NULL    -- actor, as in audit_log
    );
    """,
    # 6: lift test readouts (a raw table of the data contract, see TABLES) that calibrate the
    # media mix model.
    6: """
    CREATE TABLE IF NOT EXISTS lift_tests (
        test_id         VARCHAR NOT NULL,
        channel         VARCHAR NOT NULL,  -- media channel, as in spend
        start_date      DATE NOT NULL,     -- first day of the test
        end_date        DATE NOT NULL,     -- last day of the test (inclusive)
        metric          VARCHAR NOT NULL,  -- revenue (currency) or conversions (orders)
        lift            DOUBLE NOT NULL,   -- measured incremental revenue or conversions
        standard_error  DOUBLE NOT NULL    -- of the lift, same units
    );
    """,
}


class DatabaseBusyError(RuntimeError):
    """Another process holds the database file open for writing."""


class DatabaseMissingError(RuntimeError):
    """The database file does not exist yet."""


class DatabaseUnusableError(RuntimeError):
    """The database path is not a database this ccrm can use (a folder, a damaged, truncated or
    foreign file, or a newer schema); nothing was changed."""


def database_path(path: str | os.PathLike | None = None) -> Path:
    """The database file to use: the argument, else $CCRM_DB, else data/ccrm.duckdb."""
    return Path(path or os.environ.get("CCRM_DB") or DEFAULT_DB)


def _schema_sql() -> str:
    return (
        resources.files("ccrm_core.foundation").joinpath("schema.sql").read_text(encoding="utf-8")
    )


def _busy_message(db: Path, exc: Exception) -> str:
    return (
        f"database {db} is in use by another process ({str(exc).splitlines()[0][:160]}). "
        "Wait for it to finish, or stop the app and retry; the app's Data page can ingest and "
        "rebuild while it runs."
    )


# duckdb 2.x keeps a result open until it is fetched to the end, and then refuses register() on
# that connection: everything here fetches with fetchall(), never fetchone().


def _open(db: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    if db.exists() and not db.is_file():
        raise DatabaseUnusableError(
            f"database {db} is a folder, not a file; choose a .duckdb file (--db or CCRM_DB)"
        )
    try:
        con = duckdb.connect(str(db), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DatabaseBusyError(_busy_message(db, exc)) from exc
        raise DatabaseUnusableError(_unusable_message(db, exc)) from exc
    except duckdb.Error as exc:
        raise DatabaseUnusableError(_unusable_message(db, exc)) from exc
    if not db.is_file():  # ":memory:", or a file DuckDB has not written yet
        return con
    # DuckDB opens a file cut short as long as its metadata survived, and would write new data
    # after the hole: the blocks in use must all fit in the file. (Not total_blocks: a checkpoint
    # cuts free blocks off the end of the file and still counts them.)
    block_size, blocks = con.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size()"
    ).fetchall()[0]
    expected = DUCKDB_HEADER_BYTES + int(block_size) * int(blocks)
    if db.stat().st_size < expected:
        con.close()
        raise DatabaseUnusableError(
            _unusable_message(db, f"{db.stat().st_size:,} bytes where its blocks need {expected:,}")
        )
    return con


# A DuckDB file starts with a main header and two database headers of 4 KiB each.
DUCKDB_HEADER_BYTES = 3 * 4096


def _unusable_message(db: Path, exc: Exception | str) -> str:
    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return (
        f"cannot open database {db} ({reason}): it is damaged, truncated or not a DuckDB "
        "database; restore it from a backup or choose another file (--db or CCRM_DB)"
    )


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Create the raw schema if missing and apply pending migrations; returns the version."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP)"
    )
    current = con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] or 0
    if current > SCHEMA_VERSION:
        raise DatabaseUnusableError(
            f"database schema version {current} is newer than this ccrm ({SCHEMA_VERSION}); "
            "upgrade ccrm"
        )
    if current == SCHEMA_VERSION:
        return current
    with transaction(con):
        if current < 1:
            con.execute(_schema_sql())
            con.execute("INSERT INTO schema_version VALUES (1, current_timestamp)")
        for version in range(max(current, 1) + 1, SCHEMA_VERSION + 1):
            con.execute(MIGRATIONS[version])
            con.execute("INSERT INTO schema_version VALUES (?, current_timestamp)", [version])
    return SCHEMA_VERSION


def connect_writer(path: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """Open the database read-write (creating it and its schema if needed).

    For writers (ingest, build, sample) and for the app's own process-wide connection.
    Raises DatabaseBusyError with a clear message when another process holds the file.
    """
    db = database_path(path)
    db.parent.mkdir(parents=True, exist_ok=True)
    con = _open(db, read_only=False)
    try:
        migrate(con)
    except BaseException:
        con.close()
        raise
    return con


def connect_reader(path: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """Open an existing database read-only (many processes may do this at once)."""
    db = database_path(path)
    if not db.exists():
        raise DatabaseMissingError(
            f"database {db} does not exist; create it with `ccrm sample` or `ccrm ingest`"
        )
    return _open(db, read_only=True)


def connect_app(path: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """The app's one connection per process: read-write so the app can ingest, rebuild and save
    segments and scenarios in transactions; read-only when CCRM_READ_ONLY=1 or the file is not
    writable (the pages that write then say so)."""
    db = database_path(path)
    if os.environ.get("CCRM_READ_ONLY") == "1" or (db.exists() and not os.access(db, os.W_OK)):
        return connect_reader(db)
    return connect_writer(db)


def is_read_only(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the connection cannot change the database file (opened read-only). A write
    probe would not tell: DuckDB allows TEMP tables on a read-only connection."""
    rows = con.execute(
        "SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return bool(rows and rows[0][0])


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
        "AND table_schema = 'main'",
        [name],
    ).fetchall()
    return bool(rows[0][0])


def quote_ident(name: str) -> str:
    """Quote an identifier that comes from our own contract (never from user text)."""
    return '"' + name.replace('"', '""') + '"'


def exact_sum(expr: str) -> str:
    """SQL for the sum of a DOUBLE expression (money, credit, weights) that is the same whatever
    order the rows arrive in.

    A parallel `sum` over DOUBLE adds rows in the order threads finish, so two builds of the same
    data could differ in the last bits. Each term is rounded to 12 decimals (a DECIMAL(38, 12),
    well below a cent and exact for any amount ingest accepts) and added as an exact integer;
    only the total is turned back into a DOUBLE. `expr` is our own SQL, never user text."""
    return f"CAST(sum(CAST({expr} AS DECIMAL(38, 12))) AS DOUBLE)"


def exact_avg(expr: str) -> str:
    """SQL for the mean of a DOUBLE expression, independent of row order (see `exact_sum`)."""
    return f"({exact_sum(expr)} / count({expr}))"


def table_summary(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per raw table: rows, first and last date of its time column."""
    out = []
    for t in TABLES.values():
        tc = quote_ident(t.time_column) if t.time_column else "NULL"
        sql = (
            f"SELECT count(*), CAST(min({tc}) AS TIMESTAMP), CAST(max({tc}) AS TIMESTAMP) "  # noqa: S608 contract names
            f"FROM {quote_ident(t.name)}"
        )
        rows, first, last = con.execute(sql).fetchall()[0]
        out.append(
            {"table": t.name, "rows": rows, "first": first, "last": last, "about": t.description}
        )
    return out


def data_version(con: duckdb.DuckDBPyConnection) -> str:
    """A token that changes whenever an ingest or a build stage commits; cache keys use it."""
    ingest, build = con.execute(
        "SELECT (SELECT coalesce(max(ingest_id), 0) FROM ingest_log), "
        "(SELECT coalesce(max(run_id), 0) || ':' || count(*) FROM pipeline_runs)"
    ).fetchall()[0]
    return f"{ingest}/{build}"
