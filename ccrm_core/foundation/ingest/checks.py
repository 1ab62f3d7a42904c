"""File checks that refuse a whole file before any row is read: what kind of file it is (CSV,
gzipped CSV, Parquet; spreadsheets, zips and UTF-16 refused), the CSV header, and matching the
header's columns to the table's contract.
"""

from __future__ import annotations

import csv
import gzip
import zipfile
import zlib
from pathlib import Path

from ccrm_core.foundation import store
from ccrm_core.foundation.ingest.report import IngestError, IngestReport, shown_value

_HEADER_MAX_BYTES = 1 << 20


def _sniff(path: Path, shown: str) -> tuple[str, str]:
    """('csv', 'none' | 'gzip') or ('parquet', ''); refuses what is not a loadable file."""
    try:
        if not path.exists():
            raise IngestError(f"{shown}: file not found; check the path and the file name")
        if path.is_dir():
            raise IngestError(f"{shown}: is a folder, not a file; pass the files inside it")
        with path.open("rb") as fh:
            head = fh.read(8)
    except PermissionError as exc:
        raise IngestError(
            f"{shown}: cannot be read (permission denied); check its permissions"
        ) from exc
    except OSError as exc:
        raise IngestError(
            f"{shown}: cannot be read ({exc.strerror or exc}); check the file"
        ) from exc
    compression = "none"
    if head.startswith(b"\x1f\x8b"):
        compression = "gzip"
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(8)
        except (OSError, EOFError, zlib.error) as exc:
            raise IngestError(
                f"{shown}: is not a valid gzip file ({exc}); compress it again or send it unzipped"
            ) from exc
    if not head.strip():
        raise IngestError(f"{shown}: the file is empty; export the data again")
    if head.startswith(b"PAR1"):
        if compression == "gzip":
            raise IngestError(f"{shown}: is a gzipped Parquet file; unzip it first")
        return "parquet", ""
    if head.startswith(b"PK\x03\x04"):
        if compression == "none" and _is_xlsx(path):
            raise IngestError(
                f"{shown}: is a spreadsheet (xlsx), not CSV; export it as CSV (UTF-8)"
            )
        raise IngestError(f"{shown}: is a zip archive; unzip it and ingest the CSV files inside")
    if head.startswith(bytes.fromhex("d0cf11e0a1b11ae1")):
        raise IngestError(f"{shown}: is a spreadsheet (xls), not CSV; export it as CSV (UTF-8)")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise IngestError(f"{shown}: is UTF-16 encoded; save it as 'CSV UTF-8' (comma-separated)")
    return "csv", compression


def _is_xlsx(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.startswith("xl/") or n == "[Content_Types].xml" for n in zf.namelist())
    except zipfile.BadZipFile:
        return True  # a damaged zip renamed to .csv is most likely a spreadsheet too


def _open_bytes(path: Path, compression: str):
    return gzip.open(path, "rb") if compression == "gzip" else path.open("rb")


def _csv_header(path: Path, compression: str, shown: str) -> list[str]:
    """The header fields (as written), refusing files that are not comma-separated UTF-8 CSV."""
    with _open_bytes(path, compression) as fh:
        chunk = fh.read(_HEADER_MAX_BYTES)
    if not chunk.strip():
        raise IngestError(f"{shown}: the file is empty; export the data again")
    end = chunk.find(b"\n")
    if end < 0 and len(chunk) == _HEADER_MAX_BYTES:
        raise IngestError(f"{shown}: no line break in the first MB; is this a CSV file?")
    raw = (chunk if end < 0 else chunk[:end]).rstrip(b"\r")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{shown}: line 1, byte {exc.start + 1}: invalid UTF-8 (not a UTF-8 file); "
            "save it as 'CSV UTF-8'"
        ) from exc
    if not text.strip():
        raise IngestError(f"{shown}: line 1 is empty; the first line must be the column header")
    names = next(csv.reader([text]))
    if len(names) == 1:
        counts = {d: text.count(d) for d in (";", "\t", "|")}
        delim = max(counts, key=counts.get)
        if counts[delim]:
            label = "tab" if delim == "\t" else repr(delim)
            raise IngestError(
                f"{shown}: looks like {label}-delimited (the header reads as one column "
                f"{shown_value(None, text)}); save it as comma-separated CSV"
            )
    return names


def _match_columns(
    names: list[str], spec: store.Table, shown: str, report: IngestReport, kind: str
) -> dict[str, int]:
    """Contract column -> position in the file; refuses missing required and repeated columns,
    warns about ignored extra and absent optional columns."""
    normal = [n.strip().lower() for n in names] if kind == "csv" else [n.lower() for n in names]
    seen: dict[str, int] = {}
    for i, n in enumerate(normal):
        if n and n in seen:
            raise IngestError(
                f"{shown}: column {n!r} appears twice in the header (columns {seen[n] + 1} and "
                f"{i + 1}); keep one"
            )
        seen[n] = i
    wanted = spec.column_names
    missing = [c for c in spec.required_columns if c not in seen]
    if missing:
        has = ", ".join(n or "(blank)" for n in names[:15]) + (" …" if len(names) > 15 else "")
        raise IngestError(
            f"{shown}: missing required column(s) {', '.join(missing)} for table {spec.name} "
            f"(the header has: {has}); rename the columns, or pass --table if the table is wrong"
        )
    extra = [
        names[i].strip() or f"(blank, column {i + 1})"
        for i, n in enumerate(normal)
        if n not in wanted
    ]
    if extra:
        report.warnings.append(
            f"ignored {len(extra)} column(s) not in the {spec.name} contract: "
            + ", ".join(extra[:15])
            + (" …" if len(extra) > 15 else "")
        )
    absent = [c for c in wanted if c not in seen]
    if absent:
        report.warnings.append(f"optional column(s) absent, loaded as empty: {', '.join(absent)}")
    return {c: seen[c] for c in wanted if c in seen}
