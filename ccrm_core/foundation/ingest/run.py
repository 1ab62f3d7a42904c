"""Running an ingest: `ingest_files` / `ingest_file`, one file at a time under a process-wide
lock, each file checked, read, validated and loaded as one unit (see the package docstring).
"""

from __future__ import annotations

import csv
import dataclasses
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import duckdb

from ccrm_core.foundation import inputs, store, validation
from ccrm_core.foundation.ingest.checks import _sniff
from ccrm_core.foundation.ingest.csv_source import _stage_csv
from ccrm_core.foundation.ingest.load import _count_upsert, _load, _record_refusal
from ccrm_core.foundation.ingest.mapping import SKIP_SUMMARY, ColumnMapping
from ccrm_core.foundation.ingest.names import (
    FILE_NAME_MAX,
    SizeLimit,
    infer_table,
    ingest_limit,
    upload_file_name,
)
from ccrm_core.foundation.ingest.parquet_source import _parquet_source
from ccrm_core.foundation.ingest.report import (
    REJECTS_IN_REPORT,
    IngestError,
    IngestReport,
    Outcome,
    Progress,
    Reject,
    Replacement,
    masked_value,
)
from ccrm_core.foundation.ingest.rules import _validate
from ccrm_core.foundation.ingest.source import _drop_scratch
from ccrm_core.foundation.ingest.transform import Mapped, write_mapped

_LOCK = threading.Lock()  # one ingest at a time per process: ingest ids and upserts never race


def _check_request(paths, table, source_names, mappings) -> None:
    """The arguments `ingest_files` and `replacements` share: a known table, one source name
    and one mapping per file (when given)."""
    if table is not None and table not in store.TABLES:
        raise IngestError(f"unknown table {table!r}; choose from: {', '.join(store.TABLES)}")
    if source_names is not None and len(source_names) != len(paths):
        raise IngestError(
            f"source_names has {len(source_names)} names for {len(paths)} files; pass one each"
        )
    if mappings is not None and len(mappings) != len(paths):
        raise IngestError(f"mappings has {len(mappings)} for {len(paths)} files; pass one each")


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[str | Path],
    table: str | None = None,
    max_reject_rate: float = 0.01,
    progress: Progress | None = None,
    source_names: Sequence[str] | None = None,
    on_outcome: Outcome | None = None,
    size_limit: SizeLimit | None = None,
    mappings: Sequence[ColumnMapping | None] | None = None,
) -> list[IngestReport]:
    """Load files into raw tables, each file in its own transaction; one report per file.

    `table`: the raw table for every file; None infers it from each file name (`infer_table`).
    `max_reject_rate`: fraction of rows (0..1) that may be rejected before the file is refused.
    `progress(fraction, message)`: fraction 0..1 over all files, for a progress bar.
    `source_names`: names to show and to infer tables from instead of the paths (the app passes
    the user's upload names; the files themselves are temporary copies).
    `on_outcome(cursor, report)`: runs inside the transaction that commits a file's outcome (its
    rows or its refusal, with the ingest_log entry), so what it writes commits with them.
    `size_limit`: the most bytes a file may hold once unzipped (`names.upload_limit()` for app
    uploads); None is `names.ingest_limit()`, the larger limit of `ccrm ingest`.
    `mappings`: per file, a column mapping (`ingest.mapping`) applied before the file is
    checked and loaded (its table is the mapping's), or None for a file in the contract's form.
    A refused file never raises: its report says why (status 'refused'). Raises IngestError only
    for a wrong argument (unknown table, bad rate, names not matching paths) or setting (size
    limit, date window).
    """
    limit = ingest_limit() if size_limit is None else size_limit
    try:
        store.date_window()  # a bad setting stops before any file, not once per file
    except ValueError as exc:
        raise IngestError(str(exc)) from None
    _check_request(paths, table, source_names, mappings)
    if not 0.0 <= max_reject_rate <= 1.0:
        raise IngestError(f"max_reject_rate must be between 0 and 1, got {max_reject_rate}")
    reports = []
    total = len(paths)
    with _LOCK:
        for index, path in enumerate(paths):
            name = source_names[index] if source_names is not None else None
            mapping = mappings[index] if mappings is not None else None

            def step(fraction: float, message: str, index: int = index) -> None:
                if progress:
                    progress(min(1.0, (index + fraction) / max(total, 1)), message)

            reports.append(
                _ingest_one(
                    con, Path(path), table, max_reject_rate, step, name, on_outcome, limit, mapping
                )
            )
    if progress:
        progress(1.0, f"done: {sum(r.ok for r in reports)} of {total} files loaded")
    return reports


def replacements(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[str | Path],
    table: str | None = None,
    max_reject_rate: float = 0.01,
    source_names: Sequence[str] | None = None,
    size_limit: SizeLimit | None = None,
    mappings: Sequence[ColumnMapping | None] | None = None,
) -> list[Replacement]:
    """What `ingest_files` with the same arguments would do to the stored rows, one Replacement
    per file, without writing anything: each file goes through the same mapping, checks and row
    rules, then its keys are matched against the stored rows as the load matches them (each
    file against what is stored now, not against the files before it). A file the load would
    refuse has `refused` set and counts nothing; a file for a table holding no rows is not read
    (replaced 0, added None). Raises IngestError as `ingest_files` does."""
    limit = ingest_limit() if size_limit is None else size_limit
    _check_request(paths, table, source_names, mappings)
    out = []
    loaded = inputs.loaded_inputs(con)
    with _LOCK:
        for index, path in enumerate(paths):
            name = source_names[index] if source_names is not None else str(path)
            mapping = mappings[index] if mappings is not None else None
            try:
                target = mapping.table if mapping is not None else table or infer_table(name)
            except IngestError:
                target = None  # the dry run below refuses the file, as the load would
            if target in store.TABLES and target not in loaded:
                # nothing stored, nothing replaced: the file is not read twice to say so
                out.append(Replacement(validation.label(name, FILE_NAME_MAX), target, 0, None))
                continue
            report = _ingest_one(
                con,
                Path(path),
                table,
                max_reject_rate,
                lambda fraction, message: None,
                source_names[index] if source_names is not None else None,
                None,
                limit,
                mapping,
                dry_run=True,
            )
            refused = "" if report.status == "checked" else report.message
            out.append(
                Replacement(
                    report.file,
                    report.table,
                    0 if refused else report.rows_replaced,
                    0 if refused else report.rows_loaded,
                    refused,
                )
            )
    return out


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    table: str | None = None,
    max_reject_rate: float = 0.01,
    progress: Progress | None = None,
    source_name: str | None = None,
) -> IngestReport:
    """One file; see `ingest_files`."""
    names = [source_name] if source_name is not None else None
    return ingest_files(con, [path], table, max_reject_rate, progress, names)[0]


def _ingest_one(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str | None,
    max_reject_rate: float,
    step: Callable[[float, str], None],
    source_name: str | None,
    on_outcome: Outcome | None,
    limit: SizeLimit,
    mapping: ColumnMapping | None = None,
    dry_run: bool = False,
) -> IngestReport:
    """Check, read, validate and load one file; `dry_run` stops before the load and counts
    instead (status 'checked', rows_replaced and rows_loaded as the load would give them) and
    records nothing, not even a refusal."""
    name = str(path) if source_name is None else source_name
    shown = validation.label(name, FILE_NAME_MAX)  # one printable line in messages and the log
    started = datetime.now()
    t0 = time.perf_counter()
    report = IngestReport(file=shown, table=table, path=str(path))
    rejects: list[Reject] = []
    cur = con.cursor()
    scratch = None
    try:
        step(0.0, f"checking {shown}")
        if source_name is not None:
            upload_file_name(source_name)  # a name to show and log: no control characters
        report.table = mapping.table if mapping is not None else table or infer_table(name)
        spec = store.TABLES[report.table]
        if mapping is not None:
            scratch = tempfile.TemporaryDirectory(prefix="ccrm-mapped-")
            path, limit = _apply_mapping(path, mapping, Path(scratch.name), shown, limit, report)
            step(0.03, f"mapped {shown} with {mapping.name}")
        kind, compression = _sniff(path, shown)
        step(0.05, f"reading {shown}")
        if kind == "csv":
            source = _stage_csv(cur, path, compression, shown, spec, report, rejects, limit)
        else:
            limit.check(shown, path.stat().st_size)
            source = _parquet_source(cur, path, shown, spec, report)
        step(0.5, f"checking rows of {shown}")
        clean, params = _validate(cur, source, shown, spec, report, rejects, max_reject_rate)
        if dry_run:
            report.rows_replaced, report.rows_loaded = _count_upsert(cur, clean, params, spec)
            report.status = "checked"
            return report
        step(0.7, f"writing {shown} into {spec.name}")
        report.status = "loaded"  # as on_outcome sees it; a failure below makes it 'refused'
        _load(
            cur, clean, params, spec, report, rejects, shown, started, source.unchanged, on_outcome
        )
    except IngestError as exc:
        report.status = "refused"
        report.message = str(exc)
    except (duckdb.Error, OSError, EOFError, zlib.error, csv.Error) as exc:
        # the reader or the database failed (damaged gzip, disk full, ...): nothing was committed
        report.status = "refused"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        report.message = f"{shown}: could not be loaded ({first[:200]}); nothing was changed"
    finally:
        _drop_scratch(cur)
        cur.close()
        if scratch is not None:
            scratch.cleanup()
    report.rejects = [
        Reject(r.line, r.column, masked_value(r.column, r.value), r.reason)
        for r in rejects[:REJECTS_IN_REPORT]
    ]
    if dry_run:
        return report
    if report.status == "refused":
        report.rows_loaded = 0
        report.rows_replaced = 0
        report.ingest_id = _record_refusal(con, report, rejects, started, on_outcome)
    report.seconds = time.perf_counter() - t0
    step(0.99, f"{shown}: {report.status}")  # 1.0 is the final "done" of ingest_files
    return report


def _apply_mapping(
    path: Path,
    mapping: ColumnMapping,
    folder: Path,
    shown: str,
    limit: SizeLimit,
    report: IngestReport,
) -> tuple[Path, SizeLimit]:
    """Write the contract file of a mapped file (each row on its original line) into `folder`;
    returns it and the size limit to check it against. The file as given was checked against
    `limit`; converted values may be longer (a date 3/4/24 becomes 2024-04-03 00:00:00)."""
    out = folder / "mapped.csv"
    done: Mapped = write_mapped(path, mapping, out, shown, limit)
    report.source_columns = mapping.source_columns()
    if done.folded:
        report.warnings.append(
            f"{done.folded:,} row(s) repeating a {mapping.one_row_per} already read were folded "
            "into its first row (e.g. further line items of one order)"
        )
    report.skipped = dict(done.skipped_by_reason)
    if done.skipped:
        lines = ", ".join(str(n) for n in done.skipped_lines)
        report.warnings.append(f"{done.skipped:,} summary row(s) skipped (lines {lines})")
    for reason, count in done.skipped_by_reason.items():
        if reason == SKIP_SUMMARY:
            continue
        lines = done.skipped_reason_lines.get(reason, [])
        more = ", …" if count > len(lines) else ""
        report.warnings.append(
            f"{count:,} row{'s' if count != 1 else ''} skipped: {reason} "
            f"(lines {', '.join(str(n) for n in lines)}{more})"
        )
    report.warnings.extend(done.notes[:5])
    if done.title_lines:
        report.warnings.append(
            f"{len(done.title_lines)} line(s) above the header skipped (a report title: lines "
            f"{', '.join(str(n) for n in done.title_lines)})"
        )
    return out, dataclasses.replace(limit, mb=limit.mb * 4)
