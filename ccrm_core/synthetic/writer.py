"""Writing a generated company: into a migrated database (raw tables replaced, ground-truth
tables recreated, one ingest_log row per raw table, all in one transaction) or as the CSV files
`ccrm ingest` reads. Every column is cast to the data contract's type (store.TABLES) or the
ground truth's (GROUND_TRUTH_TABLES) on the way out.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from ccrm_core.foundation import store
from ccrm_core.synthetic.ground_truth import GROUND_TRUTH_TABLES


def _select_sql(table: str, view: str) -> str:
    """SELECT that casts a registered frame to the contract's (or ground truth's) types."""
    if table in store.TABLES:
        cols = [(c.name, c.type) for c in store.TABLES[table].columns]
    else:
        cols = list(GROUND_TRUTH_TABLES[table])
    exprs = ", ".join(
        f"CAST({store.quote_ident(c)} AS {t}) AS {store.quote_ident(c)}" for c, t in cols
    )
    return f"SELECT {exprs} FROM {store.quote_ident(view)}"  # noqa: S608 - contract names only


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list:
    """Execute and fetch fully (duckdb 2.x: an unfetched result blocks the connection)."""
    return con.execute(sql, params or []).fetchall()


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def write_sample(con: duckdb.DuckDBPyConnection, data: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Replace the raw tables with the generated ones and (re)create the ground-truth tables,
    all in one transaction; returns rows written per table.

    The database must already be migrated (store.connect_writer does that). Raw tables are
    emptied and filled with INSERT ... SELECT (casts to the contract types); ground-truth tables
    are CREATE OR REPLACE. One ingest_log row per raw table records the load, so
    store.data_version changes and cached pages refresh. Call outside an open transaction.
    """
    missing = [t for t in store.RAW_TABLES if t not in data]
    if missing:
        raise ValueError(
            f"sample data lacks raw tables {', '.join(missing)}; pass generate()'s output"
        )
    written: dict[str, int] = {}
    params = {}
    if "ground_truth_sample" in data:
        params = dict(
            zip(
                data["ground_truth_sample"]["parameter"],
                data["ground_truth_sample"]["value"],
                strict=True,
            )
        )
    label = "ccrm sample --customers {} --days {} --seed {}".format(
        params.get("customers", "?"), params.get("days", "?"), params.get("seed", "?")
    )
    with store.transaction(con):
        next_id = _run(con, "SELECT coalesce(max(ingest_id), 0) + 1 FROM ingest_log")[0][0]
        for i, table in enumerate(store.RAW_TABLES):
            view = f"_ccrm_sample_{table}"
            started = datetime.now()
            con.register(view, _arrow(data[table]))
            try:
                _run(con, f"DELETE FROM {store.quote_ident(table)}")  # noqa: S608
                cols = ", ".join(store.quote_ident(c) for c in store.TABLES[table].column_names)
                _run(
                    con,
                    f"INSERT INTO {store.quote_ident(table)} ({cols}) {_select_sql(table, view)}",
                )  # noqa: S608
            finally:
                con.unregister(view)
            rows = len(data[table])
            written[table] = rows
            _run(
                con,
                "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, 0, 'loaded', ?)",
                [
                    next_id + i,
                    label,
                    table,
                    started,
                    datetime.now(),
                    rows,
                    rows,
                    "synthetic sample; replaced previous rows",
                ],
            )
        for table in GROUND_TRUTH_TABLES:
            if table not in data:
                continue
            view = f"_ccrm_sample_{table}"
            con.register(view, _arrow(data[table]))
            try:
                _run(
                    con,
                    f"CREATE OR REPLACE TABLE {store.quote_ident(table)} AS {_select_sql(table, view)}",
                )
            finally:
                con.unregister(view)
            written[table] = len(data[table])
    return written


def write_csv(data: dict[str, pd.DataFrame], directory: str | os.PathLike) -> list[Path]:
    """Write the raw tables as `<table>.csv` (UTF-8, comma, header row, ISO dates
    'YYYY-MM-DD' and timestamps 'YYYY-MM-DD HH:MM:SS', empty field = NULL), the format
    `ccrm ingest` reads. Each file is written to a temporary name and renamed into place.

    Values are written verbatim, with no formula neutralising (foundation.csv_export): these
    files are ingest input, not a spreadsheet export, and must load back exactly as generated."""
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    paths = []
    try:
        for table in store.RAW_TABLES:
            view = f"_ccrm_sample_{table}"
            con.register(view, _arrow(data[table]))
            path = out_dir / f"{table}.csv"
            tmp = out_dir / f".{table}.csv.tmp"
            # The path is ours (directory argument + contract table name); quote it as a literal.
            literal = "'" + str(tmp).replace("'", "''") + "'"
            _run(
                con,
                f"COPY ({_select_sql(table, view)}) TO {literal} "
                "(FORMAT csv, HEADER true, DELIMITER ',', DATEFORMAT '%Y-%m-%d', "
                "TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S')",
            )
            con.unregister(view)
            os.replace(tmp, path)
            paths.append(path)
    finally:
        con.close()
    return paths
