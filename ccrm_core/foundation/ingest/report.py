"""What an ingest reports: IngestError (a refused file), Reject (one rejected value),
IngestReport (the outcome of one file), the progress and outcome callbacks, and how values are
shown in messages and reports (PII columns masked, long values cut).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from ccrm_core.foundation import inputs, privacy

PII_COLUMNS = frozenset(privacy.PII_COLUMNS)  # values masked in messages and reports
REJECTS_RECORDED = 100_000  # rejected values written to ingest_rejects per file, at most
REJECTS_IN_REPORT = 20  # rejected values carried in IngestReport.rejects
_EXPECTED = {
    "TIMESTAMP": "a timestamp YYYY-MM-DD HH:MM:SS",
    "DATE": "a date YYYY-MM-DD",
    "DOUBLE": "a number",
    "BIGINT": "a whole number",
    "VARCHAR": "text",
}

Progress = Callable[[float, str], None]


class IngestError(ValueError):
    """A file was refused. The message is one line naming the file and, where relevant, the line,
    column and value, and what to do."""


@dataclass(frozen=True)
class Reject:
    """One rejected value: physical line (CSV) or row number (Parquet), column, value, reason.
    In reports the value of a PII column is masked (ccrm_core.foundation.privacy)."""

    line: int | None
    column: str | None
    value: str | None
    reason: str


@dataclass
class IngestReport:
    """The outcome of one file.

    rows_read: data rows in the file; rows_loaded: rows inserted; rows_replaced: stored rows whose
    key the file brought again (deleted, then inserted anew); rows_rejected: rows left out.
    skipped: rows a column mapping skipped, by reason ('cancellation', 'CustomerID empty',
    'summary row'); they are not rows read, so they never count against the reject limit.
    """

    file: str  # the name shown to the user (the upload's name, else the path)
    table: str | None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_replaced: int = 0
    rows_rejected: int = 0
    status: str = "refused"  # 'loaded' or 'refused'
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)  # first REJECTS_IN_REPORT, PII shortened
    ingest_id: int | None = None
    seconds: float = 0.0
    path: str = ""
    # a file loaded through a column mapping: contract column -> where it came from in the file
    source_columns: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def skipped_text(self) -> list[str]:
        """One sentence per skip reason: '12 rows skipped: cancellation'."""
        return [f"{n:,} row{'s' if n != 1 else ''} skipped: {r}" for r, n in self.skipped.items()]

    @property
    def ok(self) -> bool:
        return self.status == "loaded"

    def located(self, reject: Reject) -> Reject:
        """`reject`, for a mapped file with the file's own column(s) named in its reason."""
        origin = self.source_columns.get(reject.column) if reject.column else None
        if origin is None:
            return reject
        return Reject(
            reject.line, reject.column, reject.value, f"{reject.reason} (in your file: {origin})"
        )


@dataclass
class Replacement:
    """What loading one file would do to its table, counted before it loads: `replaced` stored
    rows have a key the file brings again (the file's version replaces them), `added` rows bring
    a key not yet stored (None: not counted, the table holds no rows so every row is new).
    `refused`: the load would refuse the file (why), nothing would change."""

    file: str
    table: str | None
    replaced: int = 0
    added: int | None = 0
    refused: str = ""

    def sentence(self) -> str:
        """'orders_2025.csv replaces 2 existing rows of orders (and adds 1 new).' (plain text)"""
        what = inputs.INPUT_LABELS.get(
            self.table or "", (self.table or "its table").replace("_", " ")
        )
        rows = "row" if self.replaced == 1 else "rows"
        added = f" (and adds {self.added:,} new)" if self.added is not None else ""
        return f"{self.file} replaces {self.replaced:,} existing {rows} of {what}{added}."


# what a caller writes in the transaction that commits a file's outcome (the audit row)
Outcome = Callable[[duckdb.DuckDBPyConnection, IngestReport], None]


def masked_value(column: str | None, value: object) -> str | None:
    """A value as reports show it: PII columns masked the way every page masks them
    (ccrm_core.foundation.privacy), long values cut to 60 characters. ingest_rejects keeps the full value."""
    if value is None:
        return None
    text = str(privacy.mask_value(column, value) if column in PII_COLUMNS else value)
    if len(text) > 60:
        text = text[:57] + "…"
    return text


def shown_value(column: str | None, value: object) -> str:
    """A value as one-line messages quote it (masked, quoted, line breaks escaped)."""
    text = masked_value(column, value)
    return "empty" if text is None else repr(text)
