"""Where validated rows come from (`_Source`, returned by the CSV and Parquet readers) and the
TEMP scratch tables one ingest uses on its cursor (dropped after every file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from ccrm_core.foundation.ingest.csv_source import _CsvLines

_STAGE = "_ccrm_ingest_stage"
_BAD = "_ccrm_ingest_bad_rows"
_REJECTS = "_ccrm_ingest_csv_rejects"
_REJECT_SCANS = "_ccrm_ingest_csv_scans"


@dataclass
class _Source:
    """Where validated rows come from: SQL yielding `_row` plus every contract column."""

    sql: str
    params: dict
    unit: str  # 'line' (CSV) or 'row' (Parquet)
    n_rows: int = 0  # rows in the source (valid-typed rows for CSV)
    lines: _CsvLines | None = None  # CSV only: row ordinal -> physical line
    # a file read in place (Parquet): copies it into a temporary table for the repeated scans
    # that finding rejected rows and duplicate keys takes; a clean file is never copied
    stage: Callable[[], _Source] | None = None
    # a file read in place: raises IngestError when it changed after it was checked
    unchanged: Callable[[], None] | None = None

    def positions(self, rows: Iterable[int]) -> dict[int, int]:
        """Source `_row` -> line (CSV) or 1-based row number (Parquet)."""
        rows = list(rows)
        if self.lines is not None:
            return self.lines.for_rows(rows)
        return {r: r + 1 for r in rows}


def _drop_scratch(cur: duckdb.DuckDBPyConnection) -> None:
    for name in (_STAGE, _BAD, _REJECTS, _REJECT_SCANS):
        try:
            cur.execute(f"DROP TABLE IF EXISTS temp.{name}")
        except duckdb.Error:
            pass  # an aborted cursor drops its temp tables when it closes anyway
