"""Saved column mappings: stored by name in `column_mappings` (as TOML, with the fingerprint of
the header they were made for), found again for the next file with the same header, exported and
imported as TOML files. Saving needs the right to ingest (admins).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from ccrm_core.foundation import access, store, validation
from ccrm_core.foundation.access import User
from ccrm_core.foundation.ingest.mapping import (
    NAME_MAX,
    ColumnMapping,
    MappingError,
    header_fingerprint,
    mapping_to_toml,
    parse_mapping,
    preset,
    preset_names,
)

TOML_MAX_BYTES = 1 << 20  # a mapping file is small; a larger one is refused unread


def save_mapping(con: duckdb.DuckDBPyConnection, user: User | None, mapping: ColumnMapping) -> None:
    """Store `mapping` under its name (replacing a mapping of that name), for files with its
    header. AccessDenied unless the user may ingest; MappingError for a mapping without header
    or with a bad name."""
    access.require(user, "ingest")
    name = validation.clean_name(mapping.name, "mapping name", NAME_MAX, MappingError)
    if not mapping.header:
        raise MappingError(f"mapping {name!r} has no header; make it from a file")
    definition = mapping_to_toml(mapping)
    parse_mapping(definition, name)  # what is stored reads back
    cur = con.cursor()
    try:
        with store.transaction(cur):
            cur.execute("DELETE FROM column_mappings WHERE name = ?", [name])
            cur.execute(
                "INSERT INTO column_mappings VALUES (?, ?, ?, ?, ?, ?)",
                [
                    name,
                    mapping.table,
                    mapping.fingerprint,
                    definition,
                    datetime.now(),
                    user.label if user else "anonymous",
                ],
            )
    finally:
        cur.close()


def delete_mapping(con: duckdb.DuckDBPyConnection, user: User | None, name: str) -> bool:
    """Forget a saved mapping; True when one was stored under `name`."""
    access.require(user, "ingest")
    cur = con.cursor()
    try:
        with store.transaction(cur):
            found = cur.execute(
                "SELECT count(*) FROM column_mappings WHERE name = ?", [name]
            ).fetchall()[0][0]
            cur.execute("DELETE FROM column_mappings WHERE name = ?", [name])
    finally:
        cur.close()
    return bool(found)


def saved_mappings(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The saved mappings, newest first: name, table_name, saved_at, saved_by."""
    if not store.table_exists(con, "column_mappings"):
        return pd.DataFrame(columns=["name", "table_name", "saved_at", "saved_by"])
    return con.execute(
        "SELECT name, table_name, saved_at, saved_by FROM column_mappings ORDER BY saved_at DESC"
    ).df()


def saved_mapping(con: duckdb.DuckDBPyConnection, name: str) -> ColumnMapping | None:
    """The saved mapping called `name`, or None."""
    if not store.table_exists(con, "column_mappings"):
        return None
    rows = con.execute("SELECT definition FROM column_mappings WHERE name = ?", [name]).fetchall()
    return parse_mapping(rows[0][0], name) if rows else None


def mapping_for_header(con: duckdb.DuckDBPyConnection, header: list[str]) -> ColumnMapping | None:
    """The newest saved mapping made for a file with this header (same names in any order,
    case and spacing), or None."""
    if not store.table_exists(con, "column_mappings"):
        return None
    rows = con.execute(
        "SELECT definition, name FROM column_mappings WHERE fingerprint = ? "
        "ORDER BY saved_at DESC LIMIT 1",
        [header_fingerprint(header)],
    ).fetchall()
    return parse_mapping(rows[0][0], rows[0][1]) if rows else None


def read_mapping_file(path: str | Path) -> ColumnMapping:
    """A mapping from a TOML file; MappingError naming the file for anything wrong."""
    path = Path(path)
    shown = validation.label(path.name)
    try:
        if path.stat().st_size > TOML_MAX_BYTES:
            raise MappingError(f"{shown}: is larger than 1 MB; a mapping file is a few lines")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{shown}: cannot be read ({exc}); check the file") from None
    return parse_mapping(text, shown)


def resolve_mapping(con: duckdb.DuckDBPyConnection | None, name_or_file: str) -> ColumnMapping:
    """`--mapping NAME|FILE.toml`: a .toml file, else a saved mapping, else a preset."""
    if name_or_file.lower().endswith(".toml"):
        return read_mapping_file(name_or_file)
    found = saved_mapping(con, name_or_file) if con is not None else None
    if found is not None:
        return found
    if name_or_file in preset_names():
        return preset(name_or_file)
    saved = [] if con is None else saved_mappings(con)["name"].tolist()
    raise MappingError(
        f"no mapping {validation.quoted(name_or_file)}: not a .toml file, a saved mapping "
        f"({', '.join(saved) or 'none saved'}) or a preset ({', '.join(preset_names())})"
    )
