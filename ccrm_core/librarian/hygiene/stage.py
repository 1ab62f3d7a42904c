"""The hygiene build stage: evaluates every check (one scan per relation) and appends the results
to `hygiene_checks` (grain: run x check x source_system, plus an 'all' row per check)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext
from ccrm_core.librarian.hygiene.checks import (
    ALL_SOURCES,
    CHECKS,
    DEFAULT_SILENT_DAYS,
    DEFAULT_STALE_DAYS,
    RELATIONS,
    Check,
    _bind,
    _params,
)

HYGIENE_CHECKS_SQL = """
CREATE TABLE IF NOT EXISTS hygiene_checks (
    run_id        BIGINT NOT NULL,     -- pipeline run (pipeline_runs.run_id)
    checked_at    TIMESTAMP NOT NULL,
    check_id      VARCHAR NOT NULL,    -- table.column.check
    table_name    VARCHAR NOT NULL,
    column_name   VARCHAR NOT NULL,    -- '*' for checks on the whole row
    dimension     VARCHAR NOT NULL,    -- completeness, validity, consistency, uniqueness, recency
    check_name    VARCHAR NOT NULL,
    source_system VARCHAR NOT NULL,    -- a source system, '(none)', or 'all' for every row
    failed_rows   BIGINT NOT NULL,
    total_rows    BIGINT NOT NULL,
    score         DOUBLE,              -- 100 * (1 - failed_rows / total_rows); NULL without rows
    description   VARCHAR
)
"""


def _relation_ready(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    needs = {"customer_records": ("std_customers", "identity_map", "customers")}
    return all(store.table_exists(con, t) for t in needs.get(relation, ()))


def run_checks(
    con: duckdb.DuckDBPyConnection,
    as_of,
    stale_days: int = DEFAULT_STALE_DAYS,
    silent_days: int = DEFAULT_SILENT_DAYS,
) -> pd.DataFrame:
    """Evaluate every check; one row per check x source_system plus an 'all' row per check:
    check_id, table_name, column_name, dimension, check_name, source_system, failed_rows,
    total_rows, score, description. One scan per relation."""
    params = _params(as_of, stale_days, silent_days)
    frames = []
    for relation in RELATIONS:
        checks = [c for c in CHECKS if c.relation == relation]
        if not checks:
            continue
        if not _relation_ready(con, relation):
            raise RuntimeError(
                f"hygiene: relation {relation} needs the standardise and identity stages; run "
                "`ccrm build` (or `--stage standardise --stage identity --stage hygiene`)"
            )
        frames += _relation_results(con, relation, checks, params)
    out = pd.concat(frames, ignore_index=True)
    out["score"] = [
        100.0 * (1.0 - f / t) if t else None
        for f, t in zip(out["failed_rows"], out["total_rows"], strict=True)
    ]
    cols = [
        "check_id",
        "table_name",
        "column_name",
        "dimension",
        "check_name",
        "source_system",
        "failed_rows",
        "total_rows",
        "score",
        "description",
    ]
    return out[cols]


def _relation_results(
    con: duckdb.DuckDBPyConnection, relation: str, checks: list[Check], params: dict
) -> list[pd.DataFrame]:
    """The checks of one relation in one scan: per check, failed and total rows per
    source_system plus the 'all' row, with the check's identity columns."""
    aggregates = []
    for i, c in enumerate(checks):
        aggregates.append(f"count(*) FILTER (WHERE ({c.applies})) AS t{i}")
        aggregates.append(f"count(*) FILTER (WHERE ({c.applies}) AND ({c.failed})) AS f{i}")
    sql = (
        f"WITH rel AS ({RELATIONS[relation]}) "  # noqa: S608 - check SQL is our own code
        f"SELECT coalesce(source_system, '(none)') AS source_system, {', '.join(aggregates)} "
        "FROM rel GROUP BY 1"
    )
    sql, values = _bind(sql, params)
    counts = con.execute(sql, values).df()
    frames = []
    for i, c in enumerate(checks):
        part = pd.DataFrame(
            {
                "source_system": counts["source_system"],
                "failed_rows": counts[f"f{i}"].astype("int64"),
                "total_rows": counts[f"t{i}"].astype("int64"),
            }
        )
        total = pd.DataFrame(
            {
                "source_system": [ALL_SOURCES],
                "failed_rows": [int(part["failed_rows"].sum())],
                "total_rows": [int(part["total_rows"].sum())],
            }
        )
        part = pd.concat([part, total], ignore_index=True)
        part = part.assign(
            check_id=c.check_id,
            table_name=c.table,
            column_name=c.column,
            dimension=c.dimension,
            check_name=c.name,
            description=c.description,
        )
        frames.append(part)
    return frames


def hygiene_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Run every check and append the results to `hygiene_checks` under this run_id (the table
    is created if missing and never dropped, so scores keep their history across builds).

    Settings: hygiene.stale_days (1095), hygiene.silent_days (7)."""
    results = run_checks(
        con,
        ctx.as_of,
        int(ctx.param("hygiene", "stale_days", DEFAULT_STALE_DAYS)),
        int(ctx.param("hygiene", "silent_days", DEFAULT_SILENT_DAYS)),
    )
    con.execute(HYGIENE_CHECKS_SQL)
    con.execute("DELETE FROM hygiene_checks WHERE run_id = ?", [ctx.run_id])
    results.insert(0, "checked_at", datetime.now())
    results.insert(0, "run_id", ctx.run_id)
    con.register("_hygiene_results", results)
    try:
        con.execute("INSERT INTO hygiene_checks BY NAME SELECT * FROM _hygiene_results")
    finally:
        con.unregister("_hygiene_results")
    return len(results)
