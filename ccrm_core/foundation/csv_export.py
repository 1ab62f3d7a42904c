"""Files the app and the CLI write for people to open: the one CSV writer, and the checked,
all-or-nothing writing of any export file (CSV or Parquet).

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula (tab and carriage
return also start one in some programs), so a customer name, channel or e-mail typed as
`=HYPERLINK(...)` would run on the analyst's machine when the file is opened. Every CSV for a
person therefore goes through `csv_text` / `csv_bytes` / `write_csv`, which prefix such a text
cell (header cells included) with a single quote `'`, as OWASP recommends. Numbers are left as
they are: a value of a numeric column (or a number inside a mixed column), so -12.5 stays
-12.5. Text stays text, even when it reads like a number: "-12" or an E.164 phone
"+14155550123" in a text column is written '-12 / '+14155550123, because whether a text cell is
"only a number" is the spreadsheet's guess, not a fact the file can promise.

Large exports (audiences of hundreds of thousands of people) come as an Arrow table instead of a
DataFrame: the same cells and bytes, each line built by DuckDB set-wise (`table_csv_chunks`) with
the same neutralising rule expressed in SQL.

CSV files that only `ccrm ingest` reads back (the generator's `ccrm sample --csv`, the
benchmark's input files) are data in the ingest format, not exports, and are written verbatim.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ccrm_core.foundation import store, validation

# First characters that make a spreadsheet treat a cell as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_SUFFIXES = (".csv", ".csv.gz")


class ExportFileError(ValueError):
    """An export file that cannot be written: a wrong suffix, a folder that is missing or is a
    file, a target that is a folder, or a write that failed. The message is one line."""


def neutralise_cell(value: object) -> object:
    """`value` with a `'` in front when it is text starting with a formula character; anything
    else (numbers, dates, missing values) unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells and column names cannot start a formula
    (`neutralise_cell`); numeric, boolean, date and duration columns are kept as they are."""
    out = frame.copy()
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        # kinds b, i, u, f, c, m, M: booleans, numbers, durations and timestamps (nullable and
        # time-zone aware ones included) hold no text; anything else may
        if series.dtype.kind not in "biufcmM":
            out.isetitem(position, series.astype(object).map(neutralise_cell))
    out.columns = [neutralise_cell(c) for c in frame.columns]
    return out


def csv_text(frame: pd.DataFrame, *, float_format: str | None = None) -> str:
    """`frame` as CSV text for a person: header row, no index, formula cells neutralised
    (`neutralise_formulas`). `float_format` (e.g. '%.4f') formats float columns.

    Lines end in CRLF, as RFC 4180 has it: Python's csv writer quotes a field holding any
    character of the line ending, so with CRLF a text cell with a bare carriage return is quoted
    too, instead of splitting its row in two for every reader."""
    return neutralise_formulas(frame).to_csv(
        index=False, float_format=float_format, lineterminator="\r\n"
    )


def csv_bytes(frame: pd.DataFrame | pa.Table, *, float_format: str | None = None) -> bytes:
    """`csv_text` encoded as UTF-8 (a download button's data); an Arrow table gives the bytes
    the same DataFrame would (`table_csv_chunks`)."""
    if isinstance(frame, pa.Table):
        return b"".join(table_csv_chunks(frame, float_format=float_format))
    return csv_text(frame, float_format=float_format).encode("utf-8")


def write_csv(
    frame: pd.DataFrame | pa.Table,
    path: str | os.PathLike,
    *,
    float_format: str | None = None,
    digest_columns: Iterable[str] = (),
) -> Path:
    """Write `csv_bytes(frame)` to `path` (.csv, or gzip-compressed .csv.gz), all or nothing
    (`write_file`). Raises ExportFileError with a one-line reason. `digest_columns`: columns of
    an Arrow table that hold only hexadecimal digests or nothing (`table_csv_chunks`)."""
    path = check_output_path(path, CSV_SUFFIXES)
    if isinstance(frame, pa.Table):
        chunks = table_csv_chunks(frame, float_format=float_format, digest_columns=digest_columns)
    else:
        chunks = [csv_bytes(frame, float_format=float_format)]
    if path.name.lower().endswith(".gz"):
        # mtime 0: the same rows give the same bytes
        chunks = [gzip.compress(b"".join(chunks), mtime=0)]

    def write(fh: BinaryIO) -> None:
        for chunk in chunks:
            fh.write(chunk)

    return write_file(path, write)


def table_csv_chunks(
    table: pa.Table, *, float_format: str | None = None, digest_columns: Iterable[str] = ()
) -> list:
    """An Arrow table as the CSV bytes `csv_bytes` writes for the same DataFrame (header row,
    CRLF, formula cells neutralised, quoting as Python's csv writer, missing values empty), in
    pieces whose concatenation is the file. DuckDB builds every line in SQL, so millions of cells
    cost no Python per cell.

    Columns may hold text (neutralised with the rule of `neutralise_cell`), integers, floats
    (written as pandas writes a float64 column: shortest round trip, NaN empty; not
    neutralised), booleans (True / False) or nothing (Arrow's null type). `float_format` is for
    DataFrames only.

    `digest_columns` names text columns whose every cell is a hexadecimal digest (SHA-256 of an
    identifier, made by the caller's own SQL) or missing: such a cell can neither start a
    formula nor hold a delimiter or quote, so it is written as it is, without the per-cell
    checks (a hashed audience file is mostly such cells)."""
    if float_format is not None:
        raise ValueError("float_format applies to DataFrames; format the floats in the table")
    digests = set(digest_columns)
    if digests - set(table.column_names):
        raise ValueError(
            f"digest columns not in the table: {sorted(digests - set(table.column_names))}"
        )
    header = csv_text(pd.DataFrame(columns=list(table.column_names))).encode("utf-8")
    if table.num_rows == 0:
        return [header]
    names = [f"c{i}" for i in range(table.num_columns)]
    kinds = [
        "digest" if name in digests else _cell_kind(kind)
        for name, kind in zip(table.column_names, table.schema.types, strict=True)
    ]
    neutral = ", ".join(
        f"{_neutral_sql(store.quote_ident(n)) if k == 'text' else store.quote_ident(n)} "
        f"AS {store.quote_ident(n)}"
        for n, k in zip(names, kinds, strict=True)
    )
    cells = [_cell_sql(store.quote_ident(n), k) for n, k in zip(names, kinds, strict=True)]
    if len(cells) == 1:  # Python's csv writer quotes a row of one empty cell: not a blank line
        cells = [f"CASE WHEN {cells[0]} = '' THEN '\"\"' ELSE {cells[0]} END"]
    line = "concat(" + ", ',', ".join(cells) + ", chr(13), chr(10))"  # one string per line
    con = duckdb.connect()  # private and in memory: the caller's connection is not touched
    try:
        con.execute("SET preserve_insertion_order = true")  # rows keep the table's order
        con.register("csv_rows", table.rename_columns(names))
        lines = con.sql(
            f"WITH neutral AS (SELECT {neutral} FROM csv_rows) SELECT {line} FROM neutral"  # noqa: S608
        ).to_arrow_table()
    finally:
        con.close()
    return [header, *_string_bytes(lines.column(0))]


def _cell_kind(kind: pa.DataType) -> str:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "text"
    if pa.types.is_floating(kind):
        return "float"
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_null(kind):
        return "empty"
    raise TypeError(f"cannot write a column of type {kind} as CSV; convert it to text first")


def _neutral_sql(cell: str) -> str:
    """SQL for `neutralise_cell` of a text cell: a `'` in front when it starts with a
    FORMULA_START character."""
    starts = " OR ".join(f"prefix({cell}, chr({ord(c)}))" for c in FORMULA_START)
    return f"CASE WHEN {starts} THEN '''' || {cell} ELSE {cell} END"


# Python's csv writer (pandas' writer, QUOTE_MINIMAL) quotes a cell holding the delimiter, the
# quote character or a character of the line ending, doubling the quotes inside.
_QUOTE_WHEN = (",", '"', "\r", "\n")


def _cell_sql(cell: str, kind: str) -> str:
    """SQL for one (neutralised) cell's CSV text; missing values are empty."""
    if kind == "text":
        needs = " OR ".join(f"contains({cell}, chr({ord(c)}))" for c in _QUOTE_WHEN)
        return (
            f"CASE WHEN {cell} IS NULL THEN '' WHEN {needs} "
            f"THEN '\"' || replace({cell}, '\"', '\"\"') || '\"' ELSE {cell} END"
        )
    if kind == "float":
        return f"CASE WHEN {cell} IS NULL OR isnan({cell}) THEN '' ELSE CAST({cell} AS VARCHAR) END"
    if kind == "digest":
        return f"coalesce({cell}, '')"
    if kind == "integer":
        return f"coalesce(CAST({cell} AS VARCHAR), '')"
    if kind == "boolean":
        return f"CASE WHEN {cell} THEN 'True' WHEN NOT {cell} THEN 'False' ELSE '' END"
    return "''"


def _string_bytes(column: pa.ChunkedArray) -> list:
    """The UTF-8 bytes of every value of a text column without nulls, in order, as views of
    Arrow's own buffers (no copy per value)."""
    out = []
    for chunk in column.chunks:
        if len(chunk) == 0:
            continue
        if pa.types.is_large_string(chunk.type):
            width = np.int64
        elif pa.types.is_string(chunk.type):
            width = np.int32
        else:  # e.g. a string view: copy it into the plain layout
            chunk, width = chunk.cast(pa.large_string()), np.int64
        _, offsets, data = chunk.buffers()
        bounds = np.frombuffer(offsets, dtype=width)
        start, end = int(bounds[chunk.offset]), int(bounds[chunk.offset + len(chunk)])
        out.append(memoryview(data)[start:end])
    return out


def check_output_path(path: str | os.PathLike, suffixes: Iterable[str]) -> Path:
    """`path` as a Path when a file may be written there: its name ends with one of `suffixes`
    (any case), its folder exists, is a folder and is writable, and it is not itself a folder.
    Raises ExportFileError naming the path and what to do; checked before any work starts."""
    path = Path(path)
    allowed = tuple(s.lower() for s in suffixes)
    shown = validation.label(path, 200)
    if not path.name.lower().endswith(allowed):
        raise ExportFileError(f"{shown}: use a file name ending in {', '.join(allowed)}")
    folder = path.parent
    if not folder.exists():
        raise ExportFileError(
            f"folder {validation.label(folder, 200)} does not exist; create it or choose "
            "another file"
        )
    if not folder.is_dir():
        raise ExportFileError(
            f"{validation.label(folder, 200)} is a file, not a folder; choose a file in a folder"
        )
    if path.is_dir():
        raise ExportFileError(f"{shown} is a folder; choose a file name inside it")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportFileError(
            f"folder {validation.label(folder, 200)} is not writable; choose another file"
        )
    return path


def write_file(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write` on a new file next to `path`, flush it to disk and rename it to `path`: a
    reader sees the old file or the whole new one, and a failed write (disk full, no
    permission) leaves nothing behind. Raises ExportFileError with the system's reason."""
    path = Path(path)
    part = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with open(part, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, path)
    except OSError as exc:
        raise ExportFileError(
            f"could not write {validation.label(path, 200)} ({exc.strerror or exc}); nothing "
            "was written. Free some disk space or fix the folder's permissions, or choose "
            "another file"
        ) from exc
    finally:
        with contextlib.suppress(OSError):  # cleanup only; the write's own error is raised
            part.unlink(missing_ok=True)
    return path
