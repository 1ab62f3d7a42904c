"""File checks that refuse a whole file before any row is read: a regular file (not a folder, a
named pipe or a device, which would block or never end), what kind of file it is (CSV, gzipped
CSV, Parquet; spreadsheets, zips and UTF-16 refused), the CSV header, and matching the header's
columns to the table's contract.
"""

from __future__ import annotations

import csv
import gzip
import stat
import zipfile
import zlib
from pathlib import Path

from ccrm_core.foundation import store, validation
from ccrm_core.foundation.ingest.report import IngestError, IngestReport, shown_value

_HEADER_MAX_BYTES = 1 << 20


# what a path that is not a regular file is, in the user's words (stat.S_IFMT -> words)
_NOT_REGULAR = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def check_regular_file(path: str | Path, shown: str | None = None) -> None:
    """Refuse, without opening it, a path that is not a regular file (or a link to one): opening a
    named pipe waits for a writer forever, and a device never ends. IngestError naming the file
    (`shown`, else the path) and what it is; a folder, a missing file too."""
    path = Path(path)
    shown = str(path) if shown is None else shown
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise IngestError(f"{shown}: file not found; check the path and the file name") from None
    except OSError as exc:
        raise _unreadable(shown, exc) from exc
    if stat.S_ISDIR(mode):
        raise IngestError(f"{shown}: is a folder, not a file; pass the files inside it")
    if not stat.S_ISREG(mode):
        what = _NOT_REGULAR.get(stat.S_IFMT(mode), "not a regular file")
        raise IngestError(
            f"{shown}: is {what}, not a regular file; save the data to a file and ingest that"
        )


def _unreadable(shown: str, exc: OSError) -> IngestError:
    if isinstance(exc, PermissionError):
        return IngestError(f"{shown}: cannot be read (permission denied); check its permissions")
    return IngestError(f"{shown}: cannot be read ({exc.strerror or exc}); check the file")


def _sniff(path: Path, shown: str) -> tuple[str, str]:
    """('csv', 'none' | 'gzip') or ('parquet', ''); refuses what is not a loadable file."""
    check_regular_file(path, shown)
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise _unreadable(shown, exc) from exc
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
            # names match in any case, so 'revenue' and 'Revenue' are the same column twice
            where = "in the header" if kind == "csv" else "in the file"
            a, b = seen[n], i
            columns = f"{a + 1} and {b + 1}"
            if names[a].strip() != names[b].strip():
                columns = (
                    f"{a + 1} {validation.quoted(names[a].strip())} and "
                    f"{b + 1} {validation.quoted(names[b].strip())}"
                )
            raise IngestError(
                f"{shown}: column {validation.quoted(n)} appears twice {where} (columns "
                f"{columns}); keep one"
            )
        seen[n] = i
    wanted = spec.column_names
    missing = [c for c in spec.required_columns if c not in seen]
    if missing:
        has = ", ".join(validation.label(n, 40) if n else "(blank)" for n in names[:15]) + (
            " …" if len(names) > 15 else ""
        )
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
