"""The audit log, and the actions that must pass through it.

Every PII reveal, export, ingest and rebuild, from the app or the command line, is checked and
recorded here: reveals, ingests and rebuilds by the functions of this module, exports by the
domain functions that make them (conductor.audience.export_audience,
librarian.hygiene.download_failing_rows) through `require` and `record`, and identity overrides
by librarian.identity.record_override through `require` and `record_in_transaction`. Each one
first asks `access.require(user, action)` (a refused attempt is
recorded too, status 'refused', and raises AccessDenied), then does the work, then writes one
`audit_log` row: who (actor e-mail and role), when (started_at, ended_at), via ('app' or
'cli'), what (action and target) and how many rows. Targets and details never hold PII
(customer ids, segment and channel names, file names, stage names).

An action that cannot be recorded (a database opened read-only) does not happen: reveals and
exports are refused with a clear message rather than done unaudited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from ccrm_core.foundation import access, privacy, store
from ccrm_core.foundation.access import User

AUDITED_ACTIONS = (
    "reveal_pii",
    "export_audience",
    "export_clear_text",
    "download_failing_rows",
    "override_identity",
    "save_segment",  # saving (or replacing) a rule segment
    "rename_segment",
    "delete_segment",
    "ingest",
    "rebuild",
)
AUDIT_COLUMNS = [
    "audit_id",
    "started_at",
    "ended_at",
    "actor",
    "role",
    "via",
    "action",
    "target",
    "rows",
    "status",
    "detail",
]


class AuditUnavailable(RuntimeError):
    """The audit row cannot be written (database read-only), so the action is not done."""


def record(
    con: duckdb.DuckDBPyConnection,
    user: User | None,
    action: str,
    target: str | None,
    rows: int | None,
    *,
    via: str = "app",
    status: str = "ok",
    detail: str | None = None,
    started_at: datetime | None = None,
) -> int:
    """Append one audit row in its own transaction; returns its audit_id. `detail` is passed
    through privacy.mask_text so an error message cannot carry an e-mail or phone into the log."""
    cur = con.cursor()
    try:
        with store.transaction(cur):
            return _append(
                cur, user, action, target, rows, via, status, detail, started_at or datetime.now()
            )
    except duckdb.Error as exc:
        raise AuditUnavailable(
            f"cannot write the audit log ({str(exc).splitlines()[0][:160]}); the database is "
            "open read-only (CCRM_READ_ONLY=1?), so reveals, exports, ingests and rebuilds are "
            "off. Open it read-write to do this."
        ) from exc
    finally:
        cur.close()


def _append(
    cur: duckdb.DuckDBPyConnection,
    user: User | None,
    action: str,
    target: str | None,
    rows: int | None,
    via: str,
    status: str,
    detail: str | None,
    started_at: datetime,
) -> int:
    """Insert one audit row in the caller's transaction; returns its audit_id."""
    if action not in AUDITED_ACTIONS:
        raise ValueError(f"unknown audited action {action!r}; one of {', '.join(AUDITED_ACTIONS)}")
    audit_id = cur.execute("SELECT coalesce(max(audit_id), 0) + 1 FROM audit_log").fetchall()[0][0]
    cur.execute(
        "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            audit_id,
            started_at,
            datetime.now(),
            user.label if user else "anonymous",
            user.role if user else "none",
            via,
            action,
            target,
            rows,
            status,
            privacy.mask_text(detail)[:500] if detail else None,
        ],
    )
    return int(audit_id)


def record_in_transaction(
    cur: duckdb.DuckDBPyConnection,
    user: User | None,
    action: str,
    target: str | None,
    rows: int | None,
    *,
    via: str = "app",
    started_at: datetime | None = None,
) -> int:
    """Append one 'ok' audit row inside the caller's open transaction, so a change and its
    audit row commit together (or neither does); returns its audit_id."""
    return _append(cur, user, action, target, rows, via, "ok", None, started_at or datetime.now())


def require(
    con: duckdb.DuckDBPyConnection, user: User | None, action: str, target: str | None, via: str
) -> datetime:
    """access.require, recording a refusal before raising; returns the start time."""
    started = datetime.now()
    try:
        access.require(user, action)
    except access.AccessDenied as exc:
        try:
            record(con, user, action, target, 0, via=via, status="refused", detail=str(exc))
        except AuditUnavailable:
            pass  # a read-only database cannot log the refusal; it is refused all the same
        raise
    return started


def audit_entries(
    con: duckdb.DuckDBPyConnection, user: User | None, limit: int = 500
) -> pd.DataFrame:
    """The latest `limit` audit rows, newest first (AUDIT_COLUMNS); admins only."""
    access.require(user, "view_audit_log")
    if not store.table_exists(con, "audit_log"):
        return pd.DataFrame(columns=AUDIT_COLUMNS)
    return con.execute("SELECT * FROM audit_log ORDER BY audit_id DESC LIMIT ?", [int(limit)]).df()


# ---------------------------------------------------------------------------------------------
# PII reveal


def reveal_customer(
    con: duckdb.DuckDBPyConnection, user: User | None, customer_id: str, rows: int = 1
) -> None:
    """Allow showing one customer's PII unmasked (Customer 360): raises AccessDenied unless the
    user may reveal, and records the reveal."""
    started = require(con, user, "reveal_pii", f"customer {customer_id}", "app")
    record(con, user, "reveal_pii", f"customer {customer_id}", rows, started_at=started)


def reveal_search(
    con: duckdb.DuckDBPyConnection, user: User | None, results: pd.DataFrame
) -> pd.DataFrame:
    """Customer 360 search results unmasked (the query itself is not logged: it may be PII)."""
    target = f"search results ({len(results)} customers)"
    started = require(con, user, "reveal_pii", target, "app")
    record(con, user, "reveal_pii", target, len(results), started_at=started)
    return results


# ---------------------------------------------------------------------------------------------
# ingest and rebuild


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    user: User | None,
    paths: Sequence[str | Path],
    *,
    via: str = "app",
    **kwargs,
):
    """ingest.ingest_files for a user who may ingest; one audit row per file (rows loaded,
    status 'ok' or 'failed' with the refusal reason, PII masked), committed in the same
    transaction as the file's rows and ingest_log entry: no load without its audit row."""
    from ccrm_core.foundation import ingest

    names = kwargs.get("source_names") or [str(p) for p in paths]
    started = require(con, user, "ingest", ", ".join(Path(n).name for n in names)[:300], via)

    def audit_file(cur: duckdb.DuckDBPyConnection, report: ingest.IngestReport) -> None:
        ok = report.status == "loaded"
        _append(
            cur,
            user,
            "ingest",
            f"{Path(report.file).name} -> {report.table or '?'}",
            report.rows_loaded if ok else 0,
            via,
            "ok" if ok else "failed",
            None if ok else report.message,
            started,
        )

    return ingest.ingest_files(con, paths, on_outcome=audit_file, **kwargs)


def build(
    con: duckdb.DuckDBPyConnection,
    user: User | None,
    stages: list[str] | None = None,
    *,
    via: str = "app",
    progress: Callable[[str, int, int], None] | None = None,
    **kwargs,
):
    """pipeline.build for a user who may rebuild; one audit row (rows written by all stages,
    status 'failed' naming the first failed stage)."""
    from ccrm_core.foundation import pipeline

    target = ", ".join(stages) if stages else "all stages"
    started = require(con, user, "rebuild", target, via)
    results = pipeline.build(con, stages=stages, progress=progress, **kwargs)
    failed = [r for r in results if r.status == "failed"]
    record(
        con,
        user,
        "rebuild",
        target,
        sum(r.rows or 0 for r in results),
        via=via,
        status="failed" if failed else "ok",
        detail=f"stage {failed[0].stage} failed: {failed[0].error}" if failed else None,
        started_at=started,
    )
    return results
