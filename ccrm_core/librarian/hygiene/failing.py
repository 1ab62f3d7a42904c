"""The rows that fail a hygiene check: for the page (a sample), as PII-masked CSV, and as an
audited download."""

from __future__ import annotations

import duckdb
import pandas as pd

from ccrm_core.foundation import audit, csv_export, pipeline, privacy, store
from ccrm_core.foundation.access import User
from ccrm_core.librarian.hygiene.checks import (
    CHECKS_BY_ID,
    DEFAULT_SILENT_DAYS,
    DEFAULT_STALE_DAYS,
    RELATIONS,
    _bind,
    _params,
)


def failing_rows(
    con: duckdb.DuckDBPyConnection,
    check_id: str,
    as_of=None,
    limit: int | None = None,
    stale_days: int = DEFAULT_STALE_DAYS,
    silent_days: int = DEFAULT_SILENT_DAYS,
) -> pd.DataFrame:
    """The rows that fail one check (raw columns of its table, plus customer_id for customer
    records), `limit` rows or all; `as_of` defaults to the data end. Raises KeyError naming the
    known checks for an unknown id."""
    if check_id not in CHECKS_BY_ID:
        raise KeyError(f"unknown hygiene check {check_id!r}; known: {', '.join(CHECKS_BY_ID)}")
    check = CHECKS_BY_ID[check_id]
    if as_of is None:
        as_of = pipeline.data_end_date(con)
    base = store.TABLES.get(check.table)
    if check.relation == "sources":
        cols = "source_system, last_event, days_since_last_event"
    elif base is not None:
        cols = ", ".join(store.quote_ident(c) for c in base.column_names)
    else:
        cols = "*"
    if check.relation == "customer_records":
        cols += ", customer_id"
    sql = (
        f"WITH rel AS ({RELATIONS[check.relation]}) SELECT {cols} FROM rel "  # noqa: S608
        f"WHERE ({check.applies}) AND ({check.failed})"
    )
    sql, values = _bind(sql, _params(as_of, stale_days, silent_days))
    order = [c for c in ("source_system", "source_id", "event_id", "order_id") if c in cols]
    if order:
        sql += " ORDER BY " + ", ".join(order)
    if limit is not None:
        sql += " LIMIT ?"
        values.append(int(limit))
    return con.execute(sql, values).df()


def failing_rows_csv(con: duckdb.DuckDBPyConnection, check_id: str) -> bytes:
    """Every failing row of a check as UTF-8 CSV, PII masked (shared privacy masks), formula
    cells neutralised (csv_export)."""
    return csv_export.csv_bytes(_masked_failing_rows(con, check_id))


def download_failing_rows(
    con: duckdb.DuckDBPyConnection, user: User | None, check_id: str
) -> bytes:
    """`failing_rows_csv` for a user who may download it (analyst, admin), recorded in the
    audit log."""
    target = f"check {check_id}"
    started = audit.require(con, user, "download_failing_rows", target, "app")
    rows = _masked_failing_rows(con, check_id)
    data = csv_export.csv_bytes(rows)  # the file exists before the audit row says 'ok'
    audit.record(con, user, "download_failing_rows", target, len(rows), started_at=started)
    return data


def _masked_failing_rows(con: duckdb.DuckDBPyConnection, check_id: str) -> pd.DataFrame:
    return privacy.mask_frame(failing_rows(con, check_id))
