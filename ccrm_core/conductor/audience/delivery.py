"""Exporting a platform-ready audience: the role check, the files (full, and with an activation
the adds and removes beside it), the activation's history and the audit row, all or nothing.

Marketers and analysts get hashed files; an admin may ask for clear text (the hashed columns
then hold the normalised values, which both platforms accept and hash themselves). CSV files go
through foundation.csv_export, so a clear-text Google phone '+18005550100' is written
'+18005550100 with a leading `'` (strip it before uploading); hashed files are unaffected.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from ccrm_core.conductor.audience.activations import (
    ActivationSync,
    check_activation_name,
    plan_activation,
    record_run,
    sync_paths,
)
from ccrm_core.conductor.audience.destinations import (
    DestinationAudience,
    as_frame,
    build_destination_audience,
    upload_table,
)
from ccrm_core.conductor.audience.destinations import (
    destination as check_destination,
)
from ccrm_core.foundation import audit, csv_export, store
from ccrm_core.foundation.access import User

DESTINATION_SUFFIXES = csv_export.CSV_SUFFIXES  # platforms take CSV uploads


@dataclass
class DestinationExport:
    """One export to a destination: the audience (people, exclusions), the full file's rows
    (`table`, Arrow; `rows`, its pandas view), and with an activation the sync (holdout, adds,
    removes, counts)."""

    audience: DestinationAudience
    table: pa.Table
    sync: ActivationSync | None
    clear_text: bool

    @functools.cached_property
    def rows(self) -> pd.DataFrame:
        return as_frame(self.table)

    @property
    def sent(self) -> int:
        """People in the file (eligible people minus the holdout)."""
        return self.sync.sent if self.sync else len(self.audience.people)


def check_destination_path(path: str | Path) -> Path:
    """`path` as a Path when a destination file may be written there (.csv or .csv.gz in an
    existing, writable folder); raises csv_export.ExportFileError (a ValueError)."""
    return csv_export.check_output_path(path, DESTINATION_SUFFIXES)


def export_destination(
    con: duckdb.DuckDBPyConnection,
    user: User | None,
    scheme: str,
    segment: str,
    destination: str,
    *,
    activation: str | None = None,
    holdout: float | None = None,
    clear_text: bool = False,
    via: str = "app",
    out: str | Path | None = None,
) -> DestinationExport:
    """The audience of a segment for `destination` ('google_ads' or 'meta') for a user who may
    export, recorded in the audit log; with `activation`, the export is a run of that named
    activation (created when new, with `holdout`, a share 0 .. 0.5) and also yields the adds and
    removes since its previous run.

    With `out`, the files are written: `out`, and with an activation its `.adds` and `.removes`
    siblings (activations.sync_paths). A bad `out` is refused before anything is read (no audit
    row); a failed write is recorded as 'failed' and leaves no file; 'ok' is recorded, in the
    same transaction as the activation's run and members, only once every file is in place, and
    the files are removed again when that transaction fails."""
    if out is not None:
        out = check_destination_path(out)
    check_destination(destination)
    if activation is not None:
        activation = check_activation_name(activation)
    action = "export_clear_text" if clear_text else "export_audience"
    target = f"segment {segment} ({scheme}) to {destination}"
    if activation:
        target += f" as activation {activation}"
    started = audit.require(con, user, "export_audience", target, via)
    if clear_text:
        started = audit.require(con, user, "export_clear_text", target, via)
    audience = build_destination_audience(con, scheme, segment, destination)
    sync = stored = None
    if activation:
        sync, rows, stored = plan_activation(
            con, audience, activation, holdout, clear_text=clear_text
        )
    else:
        rows = upload_table(audience.table, audience.destination, hashed=not clear_text)
    export = DestinationExport(audience, rows, sync, clear_text)
    written = _write_files(con, user, export, out, action, target, via, started)
    try:
        if sync is None:
            audit.record(con, user, action, target, rows.num_rows, via=via, started_at=started)
        else:
            _record_activation(con, user, export, stored, action, target, via, started)
    except BaseException:
        for path in written:  # an export that is not recorded does not happen
            path.unlink(missing_ok=True)
        raise
    return export


def _write_files(con, user, export, out, action, target, via, started) -> list[Path]:
    """Write the full file (and the adds and removes files) when `out` is given; a failure is
    audited as 'failed', the files already written are removed, and the error raised."""
    if out is None:
        return []
    dest = export.audience.destination
    # hashed columns hold SHA-256 hex digests made by our SQL: nothing there can start a formula
    hashed = () if export.clear_text else dest.hashed
    files = [(out, export.table, hashed)]
    if export.sync is not None:
        adds, removes = sync_paths(out)
        files += [
            (adds, export.sync.adds_table, hashed),
            (removes, export.sync.removes_table, (dest.email_column, dest.phone_column)),
        ]
    written: list[Path] = []
    try:
        for path, frame, digests in files:
            if (
                frame is not export.table
                and frame.num_rows == export.table.num_rows
                and (frame.schema == export.table.schema and frame.equals(export.table))
            ):
                # a first export's adds are the full file: the same rows give the same bytes
                written.append(csv_export.write_file(path, _copier(written[0])))
                continue
            written.append(csv_export.write_csv(frame, path, digest_columns=digests))
    except csv_export.ExportFileError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        audit.record(
            con, user, action, target, 0, via=via, status="failed", detail=str(exc),
            started_at=started,
        )  # fmt: skip
        raise
    return written


def _copier(source: Path):
    def copy(fh) -> None:
        with source.open("rb") as src:
            shutil.copyfileobj(src, fh, 1 << 20)

    return copy


def _record_activation(con, user, export, stored, action, target, via, started) -> None:
    """The audit row and the activation's run and members in one transaction."""
    cur = con.cursor()
    try:
        with store.transaction(cur):
            audit_id = audit.record_in_transaction(
                cur, user, action, target, export.table.num_rows, via=via, started_at=started
            )
            actor = user.label if user else "anonymous"
            record_run(cur, export.audience, export.sync, stored, actor, audit_id)
    except duckdb.Error as exc:
        raise audit.AuditUnavailable(
            f"cannot record the export ({str(exc).splitlines()[0][:160]}); the database is "
            "open read-only (CCRM_READ_ONLY=1?), so exports are off. Open it read-write to do "
            "this."
        ) from exc
    finally:
        cur.close()
