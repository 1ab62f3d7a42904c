"""The atomic load and the ingest log: the upsert (delete replaced keys, insert, log) in one
transaction, the log entry of a refused file, and readers of `ingest_log` and `ingest_rejects`
for the pages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import duckdb
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.foundation.ingest.report import (
    REJECTS_RECORDED,
    IngestReport,
    Outcome,
    Reject,
)


def _load(
    cur: duckdb.DuckDBPyConnection,
    clean: str,
    params: dict,
    spec: store.Table,
    report: IngestReport,
    rejects: list[Reject],
    shown: str,
    started: datetime,
    unchanged: Callable[[], None] | None = None,
    on_outcome: Outcome | None = None,
) -> None:
    """Delete stored rows whose key the file brings, insert the file's rows and log, in one
    transaction on this cursor (rolled back if `unchanged` finds the file was rewritten)."""
    target = store.quote_ident(spec.name)
    cols = ", ".join(store.quote_ident(c) for c in spec.column_names)
    match = _same_key(spec)
    with store.transaction(cur):
        stored = cur.execute(f"SELECT EXISTS (SELECT 1 FROM {target})").fetchone()[0]  # noqa: S608
        replaced = 0
        if stored:
            replaced = cur.execute(
                f"DELETE FROM {target} t WHERE EXISTS (SELECT 1 FROM {clean} s WHERE {match})",  # noqa: S608
                params,
            ).fetchone()[0]
        loaded = cur.execute(
            f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {clean}",  # noqa: S608
            params,
        ).fetchone()[0]
        report.rows_loaded, report.rows_replaced = loaded, replaced
        parts = [f"loaded {loaded:,} rows into {spec.name}"]
        if replaced:
            parts.append(f"{replaced:,} replaced stored rows with the same key")
        if report.rows_rejected:
            parts.append(f"{report.rows_rejected:,} rows rejected (see ingest_rejects)")
        parts += report.skipped_text()  # skipped rows are stated in the log, never silently lost
        report.message = f"{shown}: " + "; ".join(parts)
        if unchanged is not None:
            unchanged()
        report.ingest_id = _log(cur, report, rejects, started, "loaded")
        if on_outcome is not None:
            on_outcome(cur, report)


def _same_key(spec: store.Table) -> str:
    """SQL: file row `s` and stored row `t` have the same natural key (NULL equals NULL in an
    optional key column, as spend's campaign_id)."""
    return " AND ".join(
        f"s.{store.quote_ident(k)} = t.{store.quote_ident(k)}"
        if spec.column(k).required
        else f"s.{store.quote_ident(k)} IS NOT DISTINCT FROM t.{store.quote_ident(k)}"
        for k in spec.key
    )


def _count_upsert(
    cur: duckdb.DuckDBPyConnection, clean: str, params: dict, spec: store.Table
) -> tuple[int, int]:
    """(stored rows the load of `clean` would replace, rows of `clean` it would add with a key
    not yet stored), counted the way `_load` matches keys; writes nothing."""
    target = store.quote_ident(spec.name)
    total = cur.execute(f"SELECT count(*) FROM {clean} s", params).fetchone()[0]  # noqa: S608
    if not cur.execute(f"SELECT EXISTS (SELECT 1 FROM {target})").fetchone()[0]:  # noqa: S608
        return 0, total
    match = _same_key(spec)
    replaced, matched = cur.execute(
        f"SELECT (SELECT count(*) FROM {target} t WHERE EXISTS "  # noqa: S608
        f"(SELECT 1 FROM {clean} s WHERE {match})), "
        f"(SELECT count(*) FROM {clean} s WHERE EXISTS (SELECT 1 FROM {target} t WHERE {match}))",
        params,
    ).fetchone()
    return replaced, total - matched


def _log(
    cur: duckdb.DuckDBPyConnection,
    report: IngestReport,
    rejects: list[Reject],
    started: datetime,
    status: str,
) -> int:
    """Append to ingest_log and ingest_rejects (full values) inside the caller's transaction."""
    ingest_id = cur.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM ingest_log").fetchone()[0]
    cur.execute(
        "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ingest_id,
            report.file,
            report.table or "(unknown)",
            started,
            datetime.now(),
            report.rows_read,
            report.rows_loaded,
            report.rows_rejected,
            status,
            report.message,
        ],
    )
    if rejects:
        frame = pd.DataFrame(
            {
                "line": pd.array([r.line for r in rejects[:REJECTS_RECORDED]], dtype="Int64"),
                "column_name": pd.array(
                    [r.column for r in rejects[:REJECTS_RECORDED]], dtype="string"
                ),
                "value": pd.array([r.value for r in rejects[:REJECTS_RECORDED]], dtype="string"),
                "reason": pd.array([r.reason for r in rejects[:REJECTS_RECORDED]], dtype="string"),
            }
        )
        cur.register("_ccrm_ingest_rejects_frame", frame)
        try:
            cur.execute(
                "INSERT INTO ingest_rejects SELECT ?, ?, ?, line, column_name, value, reason "
                "FROM _ccrm_ingest_rejects_frame",
                [ingest_id, report.file, report.table or "(unknown)"],
            )
        finally:
            cur.unregister("_ccrm_ingest_rejects_frame")
    return ingest_id


def _record_refusal(
    con: duckdb.DuckDBPyConnection,
    report: IngestReport,
    rejects: list[Reject],
    started: datetime,
    on_outcome: Outcome | None = None,
) -> int | None:
    """Log a refused file (after its rollback) in a transaction of its own; None if the
    database cannot be written (the report still says why the file was refused)."""
    cur = con.cursor()
    try:
        with store.transaction(cur):
            ingest_id = _log(cur, report, rejects, started, "refused")
            if on_outcome is not None:
                on_outcome(cur, report)
            return ingest_id
    except duckdb.Error:
        return None
    finally:
        cur.close()


def ingest_history(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every ingest attempt, newest first: ingest_id, file_name, table_name, started_at,
    ended_at, rows_read, rows_loaded, rows_rejected, status ('loaded' / 'refused'), message."""
    return con.execute(
        "SELECT ingest_id, file_name, table_name, started_at, ended_at, rows_read, rows_loaded, "
        "rows_rejected, status, message FROM ingest_log ORDER BY ingest_id DESC"
    ).df()


def rejected_value_count(con: duckdb.DuckDBPyConnection, ingest_id: int) -> int:
    """How many rejected values one ingest recorded (a row with two bad values counts twice)."""
    return con.execute(
        "SELECT count(*) FROM ingest_rejects WHERE ingest_id = ?", [ingest_id]
    ).fetchall()[0][0]


def rejected_rows(
    con: duckdb.DuckDBPyConnection, ingest_id: int, limit: int | None = None, offset: int = 0
) -> pd.DataFrame:
    """The recorded rejects of one ingest, in file order: line (CSV line, Parquet row number),
    column_name, value (full value: mask PII before showing it), reason. One row per rejected
    value, so a row with two bad values appears twice; at most REJECTS_RECORDED per file."""
    return con.execute(
        "SELECT line, column_name, value, reason FROM ingest_rejects WHERE ingest_id = ? "
        "ORDER BY line NULLS FIRST, column_name NULLS FIRST LIMIT ? OFFSET ?",
        [ingest_id, limit if limit is not None else 2**62, offset],
    ).df()
