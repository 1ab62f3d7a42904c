"""What a mapped file would load, before it loads: the whole file goes through the same mapping,
checks and rules into a scratch in-memory database, so the rows shown and the rejects predicted
are exactly what the real load will give (except which stored rows it would replace).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ccrm_core.foundation import privacy, store
from ccrm_core.foundation.ingest.mapping import ColumnMapping
from ccrm_core.foundation.ingest.names import SizeLimit
from ccrm_core.foundation.ingest.report import IngestReport
from ccrm_core.foundation.ingest.run import ingest_files


@dataclass
class MappingPreview:
    """A trial load of a mapped file: its report, the first rows as they would load (PII
    masked, as every page shows them), the rejected values counted by column and reason (with
    the first line of each), and whether the real load would refuse the file."""

    report: IngestReport
    rows: pd.DataFrame
    rejects: pd.DataFrame
    refused: bool
    reason: str


def preview_mapping(
    path: str | Path,
    mapping: ColumnMapping,
    shown: str,
    size_limit: SizeLimit,
    max_reject_rate: float = 0.01,
    rows: int = 20,
) -> MappingPreview:
    """Load `path` through `mapping` into a scratch database and report what would happen."""
    con = duckdb.connect(":memory:")
    try:
        store.migrate(con)
        [report] = ingest_files(
            con,
            [Path(path)],
            max_reject_rate=1.0,  # see every reject; the real limit is applied below
            source_names=[shown],
            size_limit=size_limit,
            mappings=[mapping],
        )
        table = store.quote_ident(mapping.table)
        loaded = con.execute(f"SELECT * FROM {table} LIMIT ?", [rows]).df()  # noqa: S608
        rejects = con.execute(
            "SELECT column_name AS column, reason, count(*) AS values, min(line) AS first_line "
            "FROM ingest_rejects GROUP BY ALL ORDER BY values DESC, first_line"
        ).df()
    finally:
        con.close()
    refused, reason = report.status != "loaded", report.message
    if not refused and report.rows_read:
        rate = report.rows_rejected / report.rows_read
        if rate > max_reject_rate:
            refused = True
            reason = (
                f"{report.rows_rejected:,} of {report.rows_read:,} rows would be rejected "
                f"({rate:.1%}), above the {max_reject_rate:.1%} limit"
            )
    return MappingPreview(report, privacy.mask_frame(loaded), rejects, refused, reason)
