"""What a database holds, as numbers tests can compare: per table, its rows and a content checksum.

Used by the hostile-input and crash-safety tests to show that nothing changed, or that a
database holds exactly one known state. The checksum is the sum of a hash of every row, so it
does not depend on row order. Every value counts to the last bit (builds are reproducible: two
runs of the same command on the same data give identical tables); only wall-clock columns
(VOLATILE_COLUMNS: when a stage or ingest started and ended, how long it took) are left out.
"""

from __future__ import annotations

import duckdb

# Wall-clock columns of the log and diagnostics tables (pipeline_runs, ingest_log, identity_runs,
# hygiene_checks). Raw tables never use these names.
VOLATILE_COLUMNS = frozenset(
    {"started_at", "ended_at", "checked_at", "built_at", "seconds", "applied_at"}
)

Fingerprint = dict[str, tuple[int, int]]


def table_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Base tables of the main schema, sorted."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows]


def table_fingerprint(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    """(rows, checksum) of one table; reading every row also makes DuckDB verify the checksums
    of the blocks it reads."""
    columns = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    parts = []
    for (name,) in columns:
        if name in VOLATILE_COLUMNS:
            continue
        parts.append('"' + name.replace('"', '""') + '"')
    digest = f"sum(hash({', '.join(parts)}))" if parts else "0"
    ident = '"' + table.replace('"', '""') + '"'
    rows, checksum = con.execute(f"SELECT count(*), coalesce({digest}, 0) FROM {ident}").fetchall()[
        0
    ]
    return int(rows), int(checksum)


def fingerprint(con: duckdb.DuckDBPyConnection, skip: tuple[str, ...] = ()) -> Fingerprint:
    """table -> (rows, checksum) for every base table except `skip`."""
    return {t: table_fingerprint(con, t) for t in table_names(con) if t not in skip}


def differences(a: Fingerprint, b: Fingerprint) -> list[str]:
    """Tables whose presence, rows or checksum differ, as readable lines (empty when equal)."""
    out = []
    for t in sorted(set(a) | set(b)):
        if a.get(t) != b.get(t):
            out.append(f"{t}: {a.get(t, 'missing')} vs {b.get(t, 'missing')}")
    return out
