"""Applying a column mapping: a file as exported (CSV in any of the usual delimiters, gzipped or
not, or Parquet) becomes a contract CSV file that ingest then checks and loads like any other.

The contract file keeps the original file's line numbers: each row is written on the line where
its record starts in the original file, and the lines between are left blank (DuckDB and the
line mapping of `csv_source` count blank lines but read no record from them). So every reject,
duplicate key and refusal names the line of the file the user has. A row with too few or too
many fields is written with too few or too many, so ingest rejects it with the same reason on the
same line. A Parquet file's row N is written on line N + 1 (as if its header were line 1).

Values are converted column by column with vectorised pandas: dates and timestamps in the
mapping's date order into ISO form (a time zone offset is dropped and the wall time kept, as
ingest does for contract CSV files), amounts with currency signs, thousands separators and
either decimal mark into plain numbers. A value that does not convert is written as it was, so
ingest rejects it with the value the user can find in their file.

Rows are skipped before they are converted, each counted under the first reason that holds:
a summary row, a cancellation, an empty column the mapping needs (see `mapping`). A field summed
per key (`sum_of_product`, e.g. quantity x unit price per invoice) takes a first pass over the
file: the kept rows' products go into a scratch DuckDB table and are summed per key in SQL
(exact to 12 decimals, as every money sum); the key's first row then carries the total.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.foundation.ingest.checks import _open_bytes, _sniff
from ccrm_core.foundation.ingest.mapping import (
    DELIMITERS,
    SKIP_CANCELLATION,
    SKIP_SUMMARY,
    ColumnMapping,
    Field,
    MappingError,
    find_column,
    skip_empty_reason,
)
from ccrm_core.foundation.ingest.names import SizeLimit
from ccrm_core.foundation.ingest.report import IngestError
from ccrm_core.foundation.ingest.shape import _shape

CHUNK_ROWS = 50_000  # records converted at a time
HEADER_SEARCH = 20  # records looked at to find the header (report titles may come first)
_MISSING_WORDS = {"--", "-", "n/a", "N/A"}  # how ad platforms write a value they do not have

_ISO = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y%m%d",
]
_DAY_MONTH = {
    "DMY": ["%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d/%m/%y", "%d.%m.%y"],
    "MDY": ["%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y"],
    "YMD": [],
}
_TIMES = ["", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p"]
_MONTH_NAMES = ["%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y", "%d-%b-%Y", "%b %d %Y"]
# a time zone after a time of day (not the year of '05-01-2024'): dropped, the wall time kept
_ZONE = r"(\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}:?\d{2}|UTC|GMT)$"
# plain numbers that need no cleaning, by decimal mark ('1.5' is 1.5 only where '.' is decimal)
_PLAIN = {".": r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?", ",": r"[+-]?\d+(?:e[+-]?\d+)?"}


def date_formats(date_order: str) -> list[str]:
    """The strptime formats tried for a date in `date_order` (ISO always first)."""
    day_month = [d + t for d in _DAY_MONTH[date_order] for t in _TIMES]
    return _ISO + day_month + _MONTH_NAMES


@dataclass
class FileSample:
    """The first records of a file as text: what a mapping is proposed from and previewed on."""

    kind: str  # 'csv' or 'parquet'
    header: list[str]
    rows: list[list[str]]
    delimiter: str = ","
    header_line: int = 1


Record = tuple[int, int, list[str]]  # first physical line, lines spanned, fields
SKIPPED_LINES_KEPT = 20  # lines named per skip reason


@dataclass
class Mapped:
    """What applying a mapping did to a file: records written, folded into an earlier row
    (one_row_per), skipped as summary rows (`skipped`, `skipped_lines`), and every skipped row
    counted by reason (`skipped_by_reason`: reason -> rows; `skipped_reason_lines`: the first
    lines of each)."""

    records: int = 0
    folded: int = 0
    skipped: int = 0
    skipped_lines: list[int] = field(default_factory=list)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_reason_lines: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    title_lines: list[int] = field(default_factory=list)  # lines above the header (report titles)
    next_line: int = field(default=2, repr=False)  # the contract file's next line to write
    seen: set[str] = field(default_factory=set, repr=False)  # one_row_per values written
    # contract column -> one_row_per key -> the key's total as written (sum_of_product fields)
    totals: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)


# ---------------------------------------------------------------------------------------------
# reading the file as exported


def _csv_records(
    path: Path, compression: str, delimiter: str | None, shown: str
) -> tuple[str, Iterator[tuple[int, int, list[str]]]]:
    """(delimiter, iterator of (first physical line, lines spanned, fields)) over a CSV file;
    blank lines are left out (and counted in the line numbers)."""
    raw = _open_bytes(path, compression)
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
    if delimiter is None:
        delimiter = _detect_delimiter(text, shown)
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # the size limit bounds it
    reader = csv.reader(text, delimiter=delimiter)

    def records() -> Iterator[tuple[int, int, list[str]]]:
        previous = 0
        try:
            for record in reader:
                start, previous = previous + 1, reader.line_num
                if record:
                    yield start, reader.line_num - start + 1, record
        except UnicodeDecodeError:
            raise IngestError(
                f"{shown}: near line {previous + 1}: invalid UTF-8 (the file is not UTF-8 "
                "encoded); save it as 'CSV UTF-8' and load it again"
            ) from None
        finally:
            text.close()

    return delimiter, records()


def _detect_delimiter(text: io.TextIOWrapper, shown: str) -> str:
    """The delimiter most used in the first lines (comma when none is used); rewinds."""
    try:
        head = text.read(1 << 16)
    except UnicodeDecodeError:
        raise IngestError(
            f"{shown}: invalid UTF-8 in the first lines (not a UTF-8 file); save it as "
            "'CSV UTF-8' and load it again"
        ) from None
    text.seek(0)
    lines = [line for line in head.splitlines()[:HEADER_SEARCH] if line.strip()]
    counts = {d: max((line.count(d) for line in lines), default=0) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _find_header(first: list[tuple[int, int, list[str]]]) -> int:
    """Index of the header among the first records: the first with as many fields as the widest
    of them and at least two filled (report titles and date ranges above it are skipped)."""
    widest = max(len(r[2]) for r in first)
    for i, (_, _, fields) in enumerate(first):
        if len(fields) == widest and sum(bool(f.strip()) for f in fields) >= min(2, widest):
            return i
    return 0


def read_sample(
    path: str | Path,
    shown: str,
    limit: SizeLimit,
    rows: int = 200,
    delimiter: str | None = None,
) -> FileSample:
    """The header and first `rows` records of a CSV or Parquet file, as text."""
    path = Path(path)
    kind, compression = _sniff(path, shown)
    if kind == "parquet":
        limit.check(shown, path.stat().st_size)
        header, frames = _parquet_chunks(path, shown, rows)
        frame = next(frames, pd.DataFrame(columns=header))
        return FileSample("parquet", header, frame.head(rows).values.tolist())
    _shape(path, compression, shown, limit)  # the size limit, before anything is parsed
    delimiter, records = _csv_records(path, compression, delimiter, shown)
    with closing(records):
        first = list(islice(records, HEADER_SEARCH + rows))
    if not first:
        raise IngestError(f"{shown}: the file is empty; export the data again")
    at = _find_header(first[:HEADER_SEARCH])
    line, _, header = first[at]
    body = [r[2] for r in first[at + 1 : at + 1 + rows]]
    return FileSample("csv", [h.strip() for h in header], body, delimiter, line)


def _parquet_chunks(
    path: Path, shown: str, batch: int = CHUNK_ROWS
) -> tuple[list[str], Iterator[pd.DataFrame]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else "unreadable"
        raise IngestError(
            f"{shown}: cannot be read as Parquet ({first}); export it again"
        ) from None
    header = list(pf.schema_arrow.names)

    def frames() -> Iterator[pd.DataFrame]:
        for b in pf.iter_batches(batch_size=batch):
            frame = b.to_pandas()
            frame.columns = range(len(header))
            yield frame.apply(_as_text)

    return header, frames()


def _as_text(column: pd.Series) -> pd.Series:
    """A Parquet column as the text a CSV export would hold ('' for missing)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        text = column.dt.strftime("%Y-%m-%d %H:%M:%S")
    else:
        text = column.astype("string")
    return text.fillna("").astype(object)


# ---------------------------------------------------------------------------------------------
# converting values


def parse_dates(values: pd.Series, date_order: str) -> pd.Series:
    """Text -> datetime64 (NaT where no format of `date_order` reads the value)."""
    text = values.str.strip().str.replace(_ZONE, r"\1", regex=True)
    text = text.str.replace("T", " ", n=1, regex=False).str.replace(r"\s+", " ", regex=True)
    text = text.str.replace(r"^(\S+), (\d)", r"\1 \2", regex=True)  # '3/14/2024, 10:05 AM'
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    todo = text.ne("")
    for fmt in date_formats(date_order):
        if not todo.any():
            break
        parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        ok = parsed.notna()
        if ok.any():
            hit = ok[ok].index
            out.loc[hit] = parsed[hit].astype("datetime64[us]")
            todo.loc[hit] = False
    return out


def parse_amounts(values: pd.Series, decimal: str) -> pd.Series:
    """Text -> float (NaN where the text is no amount): currency signs and codes, spaces and
    apostrophes as thousands separators, the other mark than `decimal` as one too, a leading or
    trailing minus or parentheses for a negative amount."""
    text = values.str.strip()
    plain = text.str.fullmatch(_PLAIN[decimal], case=False).fillna(False).astype(bool)
    out = pd.to_numeric(text.where(plain), errors="coerce").astype(float)
    rest = text[~plain & text.ne("")]
    if len(rest):
        core = rest.str.replace(r"[^\d.,()+\-]", "", regex=True)
        shaped = core.str.fullmatch(r"\(?[+-]?[\d.,]*\d[\d.,]*-?\)?").fillna(False).astype(bool)
        negative = core.str.startswith("(") | core.str.contains("-", regex=False)
        digits = core.str.replace(r"[()+\-]", "", regex=True)
        if decimal == ",":
            digits = digits.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        else:
            digits = digits.str.replace(",", "", regex=False)
        number = pd.to_numeric(digits.where(shaped), errors="coerce").astype(float)
        out.loc[rest.index] = number.where(~negative, -number)
    return out


def _format_dates(parsed: pd.Series, date_only: bool) -> pd.Series:
    if date_only:
        return parsed.dt.strftime("%Y-%m-%d")
    if (parsed.dt.microsecond.fillna(0) != 0).any():
        return parsed.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    return parsed.dt.strftime("%Y-%m-%d %H:%M:%S")


def _field_values(f: Field, frame: pd.DataFrame, positions: dict[str, int]) -> pd.Series:
    """One contract column's text for a chunk of records (before type conversion)."""
    if f.constant is not None:
        return pd.Series(f.constant, index=frame.index, dtype=object)
    parts = [frame[positions[s]] for s in f.sources]
    if f.how == "copy":
        out = parts[0]
    elif f.how == "join":
        stripped = [p.str.strip() for p in parts]
        out = stripped[0]
        for p in stripped[1:]:
            out = out.where(p.eq(""), out.where(out.eq(""), out + f.separator) + p)
    else:  # first_filled
        out = parts[0].str.strip()
        for p in parts[1:]:
            out = out.where(out.ne(""), p.str.strip())
    if f.take:
        out = _name_part(out, f.take)
    if f.lower:
        out = out.str.lower()
    if f.whole_number:  # spreadsheets save a numeric id as 17850.0
        out = out.str.replace(r"^\s*([+-]?\d+)\.0*\s*$", r"\1", regex=True)
    if f.values:
        recode = {k.strip().casefold(): v for k, v in f.values}
        mapped = out.str.strip().str.casefold().map(recode)
        out = mapped.where(mapped.notna(), out)
    if f.hashed:
        out = out.str.strip().map(lambda v: _sha256(v) if v else v)
    return out


def _row_product(f: Field, frame: pd.DataFrame, positions: dict[str, int], decimal: str):
    """One row's product of a `sum_of_product` field's two columns, or the value that is no
    number (passed on as written, so ingest rejects it)."""
    a_text, b_text = (frame[positions[s]].fillna("").astype(str) for s in f.sources)
    a, b = parse_amounts(a_text, decimal), parse_amounts(b_text, decimal)
    bad = a_text.where(a.isna(), b_text)
    return (a * b).map(repr).where(a.notna() & b.notna(), bad)


def _sha256(value: str) -> str:
    """The key a `hashed` field writes: 'sha256:' and the first 32 hex digits of the value's
    SHA-256 (128 bits: no two customers' keys meet)."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def _name_part(full: pd.Series, take: str) -> pd.Series:
    """First or last name from a full name: 'Last, First' when there is a comma, else the first
    word is the first name and the rest the last name."""
    text = full.str.strip()
    comma = text.str.contains(",", regex=False)
    before, after = text.str.partition(",")[0].str.strip(), text.str.partition(",")[2].str.strip()
    first_word = text.str.split(n=1).str[0].fillna("")
    rest = text.str.split(n=1).str[1].fillna("")
    if take == "first_name":
        return first_word.where(~comma, after)
    return rest.where(~comma, before)


def convert_chunk(
    mapping: ColumnMapping, frame: pd.DataFrame, positions: dict[str, int]
) -> pd.DataFrame:
    """A chunk of file records (text, columns by position) as contract columns (text in the
    forms ingest reads; '' for missing, a value that does not convert unchanged)."""
    spec = store.TABLES[mapping.table]
    out = {}
    for col in spec.columns:
        f = mapping.columns.get(col.name)
        if f is None:
            continue
        if f.how == "sum_product":  # the row's own product; `write_mapped` puts each key's total
            out[col.name] = _row_product(f, frame, positions, mapping.decimal)
            continue
        values = _field_values(f, frame, positions).fillna("").astype(str)
        if col.type != "VARCHAR":  # '--' is how ad platforms write a metric they do not have
            values = values.where(~values.str.strip().isin(_MISSING_WORDS), "")
        if col.type in ("DATE", "TIMESTAMP"):
            parsed = parse_dates(values, mapping.date_order)
            text = _format_dates(parsed, col.type == "DATE")
            values = text.where(parsed.notna(), values)
        elif col.type in ("DOUBLE", "BIGINT"):
            number = parse_amounts(values, mapping.decimal)
            values = number.map(repr).where(number.notna(), values)
        out[col.name] = values
    return pd.DataFrame(out, index=frame.index)


def resolve_positions(mapping: ColumnMapping, header: list[str], shown: str) -> dict[str, int]:
    """Each file column the mapping reads -> its position in `header`; MappingError naming the
    columns the header lacks."""
    positions, missing = {}, []
    for name in sorted(mapping.file_columns()):
        at = find_column(header, name)
        if at is None:
            missing.append(name)
        else:
            positions[name] = at
    if missing:
        has = ", ".join(header[:15]) + (" …" if len(header) > 15 else "")
        raise MappingError(
            f"{shown}: mapping {mapping.name!r} reads column(s) {', '.join(missing)}, which the "
            f"file lacks (its header has: {has}); choose another mapping or edit this one"
        )
    return positions


# ---------------------------------------------------------------------------------------------
# writing the contract file


def write_mapped(
    path: str | Path, mapping: ColumnMapping, out: Path, shown: str, limit: SizeLimit
) -> Mapped:
    """Apply `mapping` to the file at `path` and write the contract CSV to `out`, each row on
    its original line (see the module notes). IngestError (MappingError) when the file cannot
    be read or lacks a column the mapping reads."""
    path = Path(path)
    kind, compression = _sniff(path, shown)
    if kind == "parquet":
        limit.check(shown, path.stat().st_size)
    else:
        _shape(path, compression, shown, limit)  # the size limit, before anything is parsed
    spec = store.TABLES[mapping.table]
    targets = [c for c in spec.column_names if c in mapping.columns]
    result = Mapped()
    if any(f.how == "sum_product" for f in mapping.columns.values()):
        result.totals = _key_totals(path, kind, compression, mapping, shown)
    header, title_lines, chunks = _record_chunks(path, kind, compression, mapping, shown)
    result.title_lines = title_lines
    with closing(chunks):
        positions = resolve_positions(mapping, header, shown)
        with out.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(targets)
            for chunk in chunks:
                _write_chunk(fh, writer, mapping, chunk, len(header), positions, targets, result)
    return result


def _record_chunks(
    path: Path, kind: str, compression: str, mapping: ColumnMapping, shown: str
) -> tuple[list[str], list[int], Iterator[list[Record]]]:
    """(header, lines above the header, iterator of chunks of records) of a CSV or Parquet
    file; a Parquet file's row N is line N + 1."""
    if kind == "parquet":
        header, frames = _parquet_chunks(path, shown)

        def parquet_chunks() -> Iterator[list[Record]]:
            line = 2
            for frame in frames:
                starts = range(line, line + len(frame))
                line += len(frame)
                yield [(s, 1, r) for s, r in zip(starts, frame.values.tolist(), strict=True)]

        return header, [], parquet_chunks()
    _, records = _csv_records(path, compression, mapping.delimiter, shown)
    first = list(islice(records, HEADER_SEARCH))
    if not first:
        records.close()
        raise IngestError(f"{shown}: the file is empty; export the data again")
    at = _find_header(first)
    header = [h.strip() for h in first[at][2]]

    def csv_chunks() -> Iterator[list[Record]]:
        with closing(records):
            pending = first[at + 1 :]
            for record in records:
                pending.append(record)
                if len(pending) >= CHUNK_ROWS:
                    yield pending
                    pending = []
            if pending:
                yield pending

    return header, [r[0] for r in first[:at]], csv_chunks()


def _as_frame(chunk: list[Record], width: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A chunk's fields as text columns by position (short rows padded) and each row's count."""
    fields = [r[2] for r in chunk]
    counts = np.fromiter((len(f) for f in fields), dtype=np.int64, count=len(fields))
    frame = pd.DataFrame([(f + [""] * width)[:width] for f in fields], dtype=object)
    return frame, counts


def skip_reasons(
    mapping: ColumnMapping, frame: pd.DataFrame, counts: np.ndarray, positions: dict[str, int]
) -> list[tuple[str, np.ndarray]]:
    """(reason, rows skipped for it) for a chunk, each row under the first reason that holds:
    a summary row (first field starts with a `skip_rows_starting` text), a cancellation, an
    empty `skip_rows_where_empty` column. Cancellations and empty columns are looked for only in
    rows with the header's number of fields (a malformed row is rejected as such)."""
    taken = np.zeros(len(frame), dtype=bool)
    out = []

    def add(reason: str, mask: np.ndarray) -> None:
        mask = mask & ~taken
        taken[:] |= mask
        out.append((reason, mask))

    if mapping.skip_rows_starting:
        first = frame[0].str.strip().str.casefold()
        summary = np.zeros(len(frame), dtype=bool)
        for prefix in mapping.skip_rows_starting:
            summary |= first.str.startswith(prefix.strip().casefold()).to_numpy(dtype=bool)
        add(SKIP_SUMMARY, summary)
    whole = counts == frame.shape[1]
    c = mapping.cancellations
    if c is not None:
        cancelled = np.zeros(len(frame), dtype=bool)
        if c.column:
            value = frame[positions[c.column]].str.strip().str.casefold()
            for prefix in c.starting:
                cancelled |= value.str.startswith(prefix.strip().casefold()).to_numpy(dtype=bool)
        for name in c.negative:
            amount = parse_amounts(frame[positions[name]], mapping.decimal)
            cancelled |= (amount < 0).to_numpy(dtype=bool)
        add(SKIP_CANCELLATION, cancelled & whole)
    for name in mapping.skip_rows_where_empty:
        empty = frame[positions[name]].str.strip().isin(["", *_MISSING_WORDS])
        add(skip_empty_reason(name), empty.to_numpy(dtype=bool) & whole)
    return out


def _key_totals(
    path: Path, kind: str, compression: str, mapping: ColumnMapping, shown: str
) -> dict[str, dict[str, str]]:
    """Per `sum_of_product` field, one_row_per key -> the sum of its rows' products as written
    (a number; or the first value that is no number, passed on so ingest rejects the record
    with it). Skipped rows and rows with the wrong number of fields take no part. The sum runs
    in DuckDB over a scratch table of fixed names; file values enter it only as data."""
    fields = {t: f for t, f in mapping.columns.items() if f.how == "sum_product"}
    header, _, chunks = _record_chunks(path, kind, compression, mapping, shown)
    con = duckdb.connect(":memory:")
    try:
        con.execute(
            "CREATE TABLE line_products (target VARCHAR, row_key VARCHAR, product DOUBLE, "
            "not_a_number VARCHAR)"
        )
        with closing(chunks):
            positions = resolve_positions(mapping, header, shown)
            for chunk in chunks:
                frame, counts = _as_frame(chunk, len(header))
                keep = counts == len(header)
                for _, mask in skip_reasons(mapping, frame, counts, positions):
                    keep &= ~mask
                keys = frame[positions[mapping.one_row_per]].str.strip()
                keep &= keys.ne("").to_numpy(dtype=bool)
                for target, f in fields.items():
                    a_text, b_text = (frame[positions[s]][keep] for s in f.sources)
                    a, b = (parse_amounts(t, mapping.decimal) for t in (a_text, b_text))
                    bad = a_text.where(a.isna(), b_text.where(b.isna()))
                    products = pd.DataFrame(
                        {
                            "target": target,
                            "row_key": keys[keep],
                            "product": a * b,
                            "not_a_number": bad,
                        }  # fmt: skip
                    )
                    con.register("chunk_products", products)
                    con.execute("INSERT INTO line_products SELECT * FROM chunk_products")
                    con.unregister("chunk_products")
        rows = con.execute(
            f"SELECT target, row_key, {store.exact_sum('product')} AS total, "  # noqa: S608 our SQL
            "min(not_a_number) AS not_a_number FROM line_products GROUP BY target, row_key"
        ).fetchall()
    finally:
        con.close()
    totals: dict[str, dict[str, str]] = {t: {} for t in fields}
    for target, key, total, not_a_number in rows:
        totals[target][key] = not_a_number if not_a_number is not None else repr(float(total))
    return totals


def _write_chunk(
    fh,
    writer,
    mapping: ColumnMapping,
    chunk: list[Record],
    width: int,
    positions: dict[str, int],
    targets: list[str],
    result: Mapped,
) -> None:
    if not chunk:
        return
    frame, counts = _as_frame(chunk, width)
    keep = np.ones(len(chunk), dtype=bool)
    for reason, mask in skip_reasons(mapping, frame, counts, positions):
        skipped = np.flatnonzero(mask)
        if not len(skipped):
            continue
        result.skipped_by_reason[reason] = result.skipped_by_reason.get(reason, 0) + len(skipped)
        lines = result.skipped_reason_lines.setdefault(reason, [])
        lines.extend(int(chunk[i][0]) for i in skipped[: max(0, SKIPPED_LINES_KEPT - len(lines))])
        if reason == SKIP_SUMMARY:
            result.skipped += len(skipped)
            result.skipped_lines.extend(int(chunk[i][0]) for i in skipped[:20])
        keep &= ~mask
    if mapping.one_row_per:
        seen = result.seen
        keys = frame[positions[mapping.one_row_per]].str.strip()
        repeat = np.zeros(len(chunk), dtype=bool)
        for i in np.flatnonzero(keep & (counts == width)):
            key = keys.iat[i]
            if key and key in seen:
                repeat[i] = True
            elif key:
                seen.add(key)
        result.folded += int(repeat.sum())
        keep &= ~repeat
    converted = convert_chunk(mapping, frame, positions)[targets]
    for target, totals in result.totals.items():
        # a key's first row carries the key's total; a malformed row keeps its own value
        total = frame[positions[mapping.one_row_per]].str.strip().map(totals)
        use = total.notna().to_numpy(dtype=bool) & (counts == width)
        converted[target] = total.where(use, converted[target])
    multiline = np.zeros(len(chunk), dtype=bool)
    for col in targets:
        multiline |= converted[col].str.contains("\n", regex=False).to_numpy()
    rows = converted.values.tolist()
    for i, (start, span, _) in enumerate(chunk):
        if not keep[i]:
            continue
        if start > result.next_line:
            fh.write("\n" * (start - result.next_line))
            result.next_line = start
        if counts[i] < width:  # too few fields: ingest rejects the row on this line, as it would
            writer.writerow(rows[i][:-1])
            written = 1 + sum(str(v).count("\n") for v in rows[i][:-1])
        elif counts[i] > width:  # too many fields: likewise
            writer.writerow([*rows[i], ""])
            written = 1 + sum(str(v).count("\n") for v in rows[i])
        else:
            row = rows[i]
            written = 1 + (sum(v.count("\n") for v in row) if multiline[i] else 0)
            if written > span:
                # a value with line breaks used twice would push the next row past its line
                row = [v.replace("\r\n", " ").replace("\n", " ") for v in row]
                written = 1
                result.notes.append(f"line {start}: line breaks inside values became spaces")
            writer.writerow(row)
        result.next_line += written
        result.records += 1
