"""CSV: read once, typed, by DuckDB into a TEMP staging table; DuckDB's store_rejects entries
become rejects with the file's physical line numbers (`_CsvLines` maps them, only when something
is reported). A pass over the bytes first (`shape`) bounds the file's size and picks the DuckDB
reader that reads it exactly, so that every line is loaded or rejected and counted.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np

from ccrm_core.foundation import store
from ccrm_core.foundation.ingest.checks import _csv_header, _match_columns, _open_bytes
from ccrm_core.foundation.ingest.names import SizeLimit
from ccrm_core.foundation.ingest.report import (
    _EXPECTED,
    REJECTS_RECORDED,
    IngestError,
    IngestReport,
    Reject,
)
from ccrm_core.foundation.ingest.shape import LINE_LIMIT, _Shape, _shape
from ccrm_core.foundation.ingest.source import (
    _REJECT_SCANS,
    _REJECTS,
    _STAGE,
    _drop_scratch,
    _Source,
)

_REJECTS_LIMIT = 5_000_000  # reject entries DuckDB may record for one file before we give up
_TOO_LONG = "LINE SIZE OVER MAXIMUM"  # DuckDB's error type for a record over max_line_size


def _stage_csv(
    cur: duckdb.DuckDBPyConnection,
    path: Path,
    compression: str,
    shown: str,
    spec: store.Table,
    report: IngestReport,
    rejects: list[Reject],
    limit: SizeLimit,
) -> _Source:
    """Read the CSV once, typed, into a TEMP table (file order; rowid = ordinal among the rows
    that parsed) and turn DuckDB's store_rejects entries into rejects with physical lines.

    The staging table is created outside the load transaction so that its rowids are plain
    ordinals; it holds only the file's rows and is dropped afterwards."""
    names = _csv_header(path, compression, shown)
    positions = _match_columns(names, spec, shown, report, "csv")
    shape = _shape(path, compression, shown, limit)
    _read_csv(cur, path, compression, names, positions, spec, shape.parallel)
    n_rows = cur.execute(f"SELECT count(*) FROM {_STAGE}").fetchone()[0]  # noqa: S608
    bad_lines = cur.execute(f"SELECT DISTINCT line FROM {_REJECTS} ORDER BY line").fetchnumpy()[  # noqa: S608
        "line"
    ]
    n_entries, encoding_line, long_line = cur.execute(
        f"SELECT count(*), min(line) FILTER (WHERE error_type = 'INVALID ENCODING'), "  # noqa: S608
        f"min(line) FILTER (WHERE error_type = '{_TOO_LONG}') FROM {_REJECTS}"
    ).fetchone()
    records = n_rows + len(bad_lines)
    lines = _CsvLines(path, compression, bad_lines.astype(np.int64), records, shape)
    source = _Source(f"(SELECT rowid AS _row, * FROM {_STAGE})", {}, "line", n_rows, lines)  # noqa: S608
    report.rows_read = records
    if encoding_line is not None:
        line = lines.for_duckdb_lines([encoding_line])[encoding_line]
        raise IngestError(
            f"{shown}: line {line}: invalid UTF-8 (the file is not UTF-8 encoded); "
            "save it as 'CSV UTF-8' and ingest again"
        )
    if n_entries >= _REJECTS_LIMIT:
        raise IngestError(
            f"{shown}: over {_REJECTS_LIMIT:,} unreadable values; is this the right file for "
            f"table {spec.name}?"
        )
    if long_line is not None and shape.quoted:
        _check_skipped_record(lines, long_line, shown, report)
    report.rows_rejected = len(bad_lines)
    if len(bad_lines):
        entries = cur.execute(
            f"SELECT line, column_idx, column_name, error_type, csv_line, error_message "  # noqa: S608
            f"FROM {_REJECTS} ORDER BY line, column_idx LIMIT {REJECTS_RECORDED}"
        ).fetchall()
        physical = lines.for_duckdb_lines(sorted({e[0] for e in entries}))
        for line, idx, col, etype, csv_line, message in entries:
            rejects.append(
                report.located(
                    _csv_reject(physical[line], idx, col, etype, csv_line, message, names, spec)
                )
            )
    return source


def _read_csv(
    cur: duckdb.DuckDBPyConnection,
    path: Path,
    compression: str,
    names: list[str],
    positions: dict[str, int],
    spec: store.Table,
    parallel: bool,
) -> None:
    """DuckDB's typed read of the file into the staging table, bad records into its rejects
    table; `parallel` picks the reader (see `shape`)."""
    by_position = {i: c for c, i in positions.items()}
    read_names = [by_position.get(i, f"_extra_{i + 1}") for i in range(len(names))]
    # whole-number columns are read as DOUBLE: DuckDB's cast would round '1.5' to 2 silently;
    # the rules then reject fractions and the insert casts the rest exactly
    types = [
        ("DOUBLE" if spec.column(n).type == "BIGINT" else spec.column(n).type)
        if n in positions
        else "VARCHAR"
        for n in read_names
    ]
    columns = "{" + ", ".join(f"'{n}': '{t}'" for n, t in zip(read_names, types, strict=True)) + "}"
    select = ", ".join(
        store.quote_ident(c.name)
        if c.name in positions
        else f"CAST(NULL AS {c.type}) AS {store.quote_ident(c.name)}"
        for c in spec.columns
    )
    _drop_scratch(cur)
    cur.execute(
        f"CREATE TEMP TABLE {_STAGE} AS SELECT {select} FROM read_csv(?, header = true, "  # noqa: S608
        f"delim = ',', quote = '\"', escape = '\"', auto_detect = false, "
        f"compression = '{compression}', columns = {columns}, store_rejects = true, "
        f"rejects_table = '{_REJECTS}', rejects_scan = '{_REJECT_SCANS}', "
        f"rejects_limit = {_REJECTS_LIMIT}, max_line_size = {LINE_LIMIT}, "
        f"parallel = {str(parallel).lower()})",
        [str(path)],
    )


def _check_skipped_record(
    lines: _CsvLines, duckdb_line: int, shown: str, report: IngestReport
) -> None:
    """After skipping a record longer than the line limit, DuckDB resumes at the next line
    break; inside a long quoted field (measured: from about 35 MB) that break is part of the
    field, and the field's inner lines would load as records. Refuse the file unless DuckDB read
    as many records as the file holds."""
    held = lines.file_records()
    if held != lines.records:
        line = lines.for_duckdb_lines([duckdb_line])[duckdb_line]
        read, report.rows_read = lines.records, held
        raise IngestError(
            f"{shown}: line {line}: a quoted field longer than {LINE_LIMIT >> 20} MB spans many "
            f"lines, and the reader cannot skip it safely (it read {read:,} records where the "
            f"file holds {held:,}); nothing was loaded. Shorten or remove that field"
        )


def _csv_reject(
    line: int,
    column_idx: int | None,
    column: str | None,
    error_type: str,
    csv_line: str | None,
    message: str | None,
    names: list[str],
    spec: store.Table,
) -> Reject:
    """A DuckDB store_rejects entry in our words."""
    if column and column.startswith("_extra_"):
        column = names[int(column[len("_extra_") :]) - 1].strip()
    if error_type == "CAST":
        value = _field(csv_line, column_idx) if csv_line else None
        if value is None and message:
            found = re.search(r'Could not convert string "(.*)" to', message)
            value = found.group(1) if found else None
        typ = spec.column(column).type if column in spec.column_names else "VARCHAR"
        return Reject(line, column, value, f"not {_EXPECTED.get(typ, typ)}")
    reason = {
        "MISSING COLUMNS": "the row has fewer fields than the header",
        "TOO MANY COLUMNS": "the row has more fields than the header",
        "UNQUOTED VALUE": "badly quoted field (a quote inside an unquoted value)",
        _TOO_LONG: f"the line is longer than {LINE_LIMIT >> 20} MB",
    }.get(error_type, (message or error_type).splitlines()[0][:200])
    if error_type == "TOO MANY COLUMNS":
        column = None
    return Reject(line, column, None, reason)


def _field(csv_line: str, column_idx: int | None) -> str | None:
    """Field `column_idx` (1-based) of the record DuckDB quotes in a reject entry."""
    if not column_idx:
        return None
    try:
        record = next(csv.reader(io.StringIO(csv_line.lstrip("\r\n"))), [])
    except csv.Error:
        return None
    return record[column_idx - 1] if 0 < column_idx <= len(record) else None


class _CsvLines:
    """Physical line numbers for what DuckDB reports.

    DuckDB numbers a rejected record by the lines before it, not counting line breaks inside
    quoted fields; staged rows only have their ordinal. When the file has one line per record
    (the line breaks counted by the pass over its bytes match the records) both map by
    arithmetic; otherwise a csv-module scan maps them exactly. The scan runs only when something
    is reported."""

    def __init__(
        self, path: Path, compression: str, reject_lines: np.ndarray, records: int, shape: _Shape
    ):
        self.path = path
        self.compression = compression
        self.reject_lines = reject_lines  # sorted distinct DuckDB lines of rejected records
        self.records = records  # records DuckDB read (staged + rejected), header excluded
        self.shape = shape

    def simple(self) -> bool:
        return self.shape.newlines == self.records + (1 if self.shape.ends_with_newline else 0)

    def for_rows(self, rows: list[int]) -> dict[int, int]:
        """Staged row ordinal (0-based, among rows that parsed) -> physical line."""
        if not rows:
            return {}
        if self.simple():
            k = np.asarray(sorted(set(rows)), dtype=np.int64)
            record = k + 1  # 1-based record index, pushed past every rejected record before it
            rejected = self.reject_lines - 1
            while True:
                moved = k + 1 + np.searchsorted(rejected, record, side="right")
                if np.array_equal(moved, record):
                    break
                record = moved
            return dict(zip(k.tolist(), (record + 1).tolist(), strict=True))
        return self._scan(set(rows), set())[0]

    def for_duckdb_lines(self, lines: list[int]) -> dict[int, int]:
        """DuckDB's line of a rejected record -> physical line."""
        if not lines or self.simple():
            return {line: line for line in lines}
        found = self._scan(set(), set(lines))[1]
        return {line: found.get(line, line) for line in lines}

    def file_records(self) -> int:
        """The records in the file as the csv module reads them (header and blank lines left
        out, as DuckDB leaves them out)."""
        with self._reader() as reader:
            return sum(1 for record in reader if record)

    @contextmanager
    def _reader(self) -> Iterator:
        """A csv reader over the file, past its header."""
        # a field may be as long as the file: the size limit bounds it, not the csv module
        csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
        with _open_bytes(self.path, self.compression) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
            reader = csv.reader(text)
            next(reader, None)  # header
            yield reader

    def _scan(self, rows: set[int], lines: set[int]) -> tuple[dict[int, int], dict[int, int]]:
        rejected = set(self.reject_lines.tolist())
        by_row: dict[int, int] = {}
        by_line: dict[int, int] = {}
        with self._reader() as reader:
            previous_end = reader.line_num
            embedded = 0  # line breaks inside quoted fields so far
            ordinal = 0
            for record in reader:
                start = previous_end + 1
                spanned = reader.line_num - previous_end
                previous_end = reader.line_num
                if not record:  # a blank line: counted by DuckDB, not a record
                    continue
                duck_line = start - embedded
                embedded += spanned - 1
                if duck_line in rejected:
                    if duck_line in lines:
                        by_line[duck_line] = start
                    continue
                if ordinal in rows:
                    by_row[ordinal] = start
                ordinal += 1
                if len(by_row) == len(rows) and len(by_line) == len(lines):
                    break
        return by_row, by_line
