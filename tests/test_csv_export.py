"""Every CSV the app and the CLI write for people neutralises formula cells (exact bytes per
writer), and an audience export's audit row tells what happened to its file (through the CLI
on the demo database)."""

from __future__ import annotations

import errno
import gzip
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ccrm_core import cli
from ccrm_core.conductor import audience, budget
from ccrm_core.foundation import audit, csv_export, store
from ccrm_core.foundation.access import User
from ccrm_core.librarian import hygiene

HOSTILE = ["=1+1", "+1", "-cmd", "@SUM(A1)", "\tx", "\rx"]
# Text keeps a leading quote; a bare carriage return is quoted so that it cannot split the row.
NEUTRALISED = ["'=1+1", "'+1", "'-cmd", "'@SUM(A1)", "'\tx", '"\'\rx"']


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": [*HOSTILE, "-12", "ok", None],
            "amount": [-12.5, -1.0, 0.0, 2.25, 3.0, 4.0, 5.0, 6.0, np.nan],
            "count": [-3, -2, -1, 0, 1, 2, 3, 4, 5],
        }
    )


FRAME_CSV = (
    b"text,amount,count\r\n"
    b"'=1+1,-12.5,-3\r\n"
    b"'+1,-1.0,-2\r\n"
    b"'-cmd,0.0,-1\r\n"
    b"'@SUM(A1),2.25,0\r\n"
    b"'\tx,3.0,1\r\n"
    b'"\'\rx",4.0,2\r\n'
    b"'-12,5.0,3\r\n"  # "-12" in a text column is text: neutralised
    b"ok,6.0,4\r\n"
    b",,5\r\n"
)


def test_csv_bytes_neutralises_text_and_keeps_numbers():
    assert csv_export.csv_bytes(_frame()) == FRAME_CSV
    assert csv_export.csv_text(_frame()) == FRAME_CSV.decode()
    # a number inside a text column stays a number; header cells are cells too
    mixed = pd.DataFrame({"=name": pd.Series([-7.5, "-7.5"], dtype=object)})
    assert csv_export.csv_bytes(mixed) == b"'=name\r\n-7.5\r\n'-7.5\r\n"


def test_write_csv_is_gzip_by_suffix_and_refuses_other_names(tmp_path):
    plain = csv_export.write_csv(_frame(), tmp_path / "rows.csv")
    assert plain.read_bytes() == FRAME_CSV
    packed = csv_export.write_csv(_frame(), tmp_path / "rows.CSV.gz")
    assert gzip.decompress(packed.read_bytes()) == FRAME_CSV
    with pytest.raises(csv_export.ExportFileError, match=r"rows\.xlsx: use a file name ending"):
        csv_export.write_csv(_frame(), tmp_path / "rows.xlsx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.CSV.gz", "rows.csv"]


def _hostile_text() -> list:
    """Every ASCII character alone, first and last in a cell, the hostile cells, quotes,
    delimiters, line breaks, non-ASCII and empty or missing cells."""
    ascii_ = [chr(i) for i in range(1, 128)]
    return [
        *ascii_, *(c + "x" for c in ascii_), *("x" + c for c in ascii_), *HOSTILE, "-12",
        "+14155550123", "a,b", 'say "hi"', "a\r\nb", "=\u0301", "\u2028x", "é", "'", "", None,
    ]  # fmt: skip


def test_arrow_tables_are_written_byte_for_byte_as_their_dataframes(tmp_path):
    # the DuckDB writer of large exports neutralises and quotes exactly as the pandas one
    text = _hostile_text()
    frame = pd.DataFrame(
        {
            "=text": pd.Series(text, dtype=object),
            "other": pd.Series(text[::-1], dtype=object),
            "amount": np.linspace(-1e6, 1e6, len(text)).round(2),
            "count": np.arange(len(text)) - 5,
            "flag": np.arange(len(text)) % 2 == 0,
            "nothing": pd.Series([None] * len(text), dtype=object),
        }
    )
    frame.loc[3, "amount"] = np.nan
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert csv_export.csv_bytes(table) == csv_export.csv_bytes(frame)
    assert csv_export.csv_bytes(table.slice(0, 0)) == csv_export.csv_bytes(frame.iloc[:0])
    single = pd.DataFrame({"x": pd.Series(["a", None, "", "=b"], dtype=object)})
    table = pa.Table.from_pandas(single, preserve_index=False)
    assert (
        csv_export.csv_bytes(table)
        == csv_export.csv_bytes(single)
        == b'x\r\na\r\n""\r\n""\r\n\'=b\r\n'
    )
    written = csv_export.write_csv(pa.Table.from_pandas(frame), tmp_path / "rows.csv.gz")
    assert gzip.decompress(written.read_bytes()) == csv_export.csv_bytes(frame)


def test_digest_columns_are_written_as_they_are_and_others_still_neutralised():
    table = pa.table({"key": ["ab" * 32, None], "name": ["=cmd|' /C calc'!A0", "+1"]})
    assert csv_export.csv_bytes(table) == csv_export.csv_bytes(table.to_pandas())
    got = csv_export.table_csv_chunks(table, digest_columns=["key"])
    assert (
        b"".join(got) == ("key,name\r\n" + "ab" * 32 + ",'=cmd|' /C calc'!A0\r\n,'+1\r\n").encode()
    )
    with pytest.raises(ValueError, match="digest columns not in the table"):
        csv_export.table_csv_chunks(table, digest_columns=["Email"])


def _audience() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["=1+1", "+1", "-cmd", "@SUM(A1)", "\tx", "\rx"],
            "email_sha256": ["a" * 64] * 6,
            "phone_sha256": [None] * 6,
            "phone": ["+14155550123", None, None, None, None, None],
        }
    )


AUDIENCE_CSV = (
    "customer_id,email_sha256,phone_sha256,phone\r\n"
    + "".join(
        f"{cell},{'a' * 64},,{phone}\r\n"
        for cell, phone in zip(NEUTRALISED, ["'+14155550123", "", "", "", "", ""], strict=True)
    )
).encode()


def test_audience_writers_neutralise_formulas(tmp_path):
    assert audience.audience_csv(_audience()) == AUDIENCE_CSV
    assert audience.write_audience(_audience(), tmp_path / "a.csv").read_bytes() == AUDIENCE_CSV
    packed = audience.write_audience(_audience(), tmp_path / "a.csv.gz")
    assert gzip.decompress(packed.read_bytes()) == AUDIENCE_CSV
    # Parquet is not a spreadsheet: values exactly as they are
    parquet = audience.write_audience(_audience(), tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), _audience(), check_dtype=False)


def test_failing_rows_csv_neutralises_formulas(tmp_path):
    con = store.connect_writer(tmp_path / "rows.duckdb")
    try:
        con.execute(
            "INSERT INTO events (event_id, ts, channel, event_type, source_system, source_id, "
            "anonymous_id, campaign_id, value) VALUES "
            "(?, TIMESTAMP '2024-12-30 10:00', ?, ?, ?, ?, ?, '-12', -12.5), "
            "('e2', TIMESTAMP '2024-12-31 10:00', 'email', 'open', 'ecommerce', 'r1', "
            "NULL, NULL, 3)",
            HOSTILE,
        )
        want = (
            "event_id,ts,channel,event_type,source_system,source_id,anonymous_id,campaign_id,"
            "value\r\n" + ",".join([NEUTRALISED[0], "2024-12-30 10:00:00", *NEUTRALISED[1:]])
        ) + ",'-12,-12.5\r\n"
        check = "events.channel.invalid_channel"  # '+1' is no channel; 'email' is
        assert hygiene.failing_rows_csv(con, check) == want.encode()
        admin = User(email="admin@example.com", name="Admin", role="admin")
        assert hygiene.download_failing_rows(con, admin, check) == want.encode()
    finally:
        con.close()


def test_plan_csv_neutralises_channel_names():
    half = np.array([100.0, 200.0, 300.0, 400.0, 500.0, 600.0])
    beta = np.array([1000.0, 1500.0, 2500.0, 1800.0, 3000.0, 1000.0])
    curves = budget.validate_curves(
        pd.DataFrame(
            {
                "channel": HOSTILE,
                "addressable": True,
                "adstock_decay": 0.0,
                "half_saturation": half,
                "hill_slope": 1.0,
                "beta": beta,
                "beta_low": beta * 0.8,
                "beta_high": beta * 1.3,
                "current_daily_spend": [80.0, 150.0, 250.0, 300.0, 400.0, 50.0],
                "revenue_per_conversion": 40.0,
                "calibration_factor": 1.0,
            }
        )
    )
    plan = budget.current_plan(curves)
    table = budget.plan_table(curves, plan)
    shown = dict(zip(HOSTILE, NEUTRALISED, strict=True))
    want = ",".join(table.columns) + "\r\n"
    for row in table.itertuples(index=False):
        want += ",".join([shown[row[0]], *(f"{v:.4f}" for v in row[1:])]) + "\r\n"
    assert budget.plan_csv(curves, plan) == want
    assert "'+1,1050.0000,150.0000," in want  # the channel at 150 a day, by hand


# ---------------------------------------------------------------------------------------------
# audit truth: `ccrm export audience`


def _export(db, out, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable, "-m", "ccrm_core.cli", "export", "audience", "--db", str(db),
            "--segment", "Champions", "--channel", "email", "--out", str(out), *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip


def _files(folder) -> list[str]:
    """The files in `folder` other than the demo database's own."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("demo.duckdb"))


def _audit_rows(db) -> list[tuple]:
    con = store.connect_reader(db)
    try:
        return con.execute(
            "SELECT action, via, status, rows, detail FROM audit_log ORDER BY audit_id"
        ).fetchall()
    finally:
        con.close()


def test_cli_export_refuses_a_bad_out_before_exporting(demo_db_copy, tmp_path):
    before = _audit_rows(demo_db_copy)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me\n")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    cases = {
        tmp_path / "audience.xlsx": "audience.xlsx: use a file name ending in .csv, .csv.gz",
        a_file / "audience.csv": "notes.txt is a file, not a folder; choose a file in a folder",
        folder: "folder.csv is a folder; choose a file name inside it",
        tmp_path / "missing" / "a.csv": "missing does not exist; create it or choose another",
    }
    for out, reason in cases.items():
        proc = _export(demo_db_copy, out)
        assert proc.returncode == 2, (out, proc.stderr)
        assert proc.stderr.startswith("error: ") and reason in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stdout == ""
    # nothing was exported, so nothing is recorded; no file appeared anywhere
    assert _audit_rows(demo_db_copy) == before
    assert _files(tmp_path) == ["folder.csv", "notes.txt"]
    assert list(folder.iterdir()) == [] and a_file.read_text() == "keep me\n"


def test_cli_export_records_ok_with_the_rows_written(demo_db_copy, tmp_path):
    before = _audit_rows(demo_db_copy)
    out = tmp_path / "champions.csv"
    proc = _export(demo_db_copy, out, "--clear-text")
    assert proc.returncode == 0, proc.stderr
    written = pd.read_csv(out, dtype=str)
    after = _audit_rows(demo_db_copy)
    assert after[: len(before)] == before
    assert after[len(before) :] == [("export_clear_text", "cli", "ok", len(written), None)]
    assert len(written) > 0 and f"{len(written):,} exported to {out}" in proc.stdout
    # clear-text E.164 phones are text starting with '+': written with the leading quote
    phones = written["phone"].dropna()
    assert len(phones) > 0 and phones.str.match(r"^'\+[1-9][0-9]{6,14}$").all()
    assert _files(tmp_path) == ["champions.csv"]  # no temporary file left behind


def test_cli_export_records_a_failed_write(demo_db_copy, tmp_path, monkeypatch, capsys):
    """A write that fails after the checks (here the disk fills up) is recorded as 'failed'
    with the reason, leaves no file and exits 2 with one line."""

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(csv_export.os, "fsync", disk_full)
    before = _audit_rows(demo_db_copy)
    out = tmp_path / "champions.csv.gz"
    argv = ["export", "audience", "--db", str(demo_db_copy), "--segment", "Champions"]
    code = cli.main([*argv, "--channel", "email", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    reason = f"could not write {out} (No space left on device); nothing was written"
    assert err.startswith(f"error: {reason}") and err.count("\n") == 1, err
    after = _audit_rows(demo_db_copy)
    assert after[: len(before)] == before and len(after) == len(before) + 1
    action, via, status, rows, detail = after[-1]
    assert (action, via, status, rows) == ("export_audience", "cli", "failed", 0)
    assert detail.startswith(reason)
    assert _files(tmp_path) == []


def test_export_is_undone_when_its_audit_row_cannot_be_written(demo_db_copy, tmp_path):
    """An export that cannot be recorded does not happen: the file is removed again."""
    con = store.connect_writer(demo_db_copy)
    try:
        scheme, segment = audience.resolve_segment(con, "Champions")
        con.execute("DROP TABLE audit_log")  # the 'ok' row can no longer be written
        admin = User(email="admin@example.com", name="Admin", role="admin")
        with pytest.raises(audit.AuditUnavailable):
            audience.export_audience(
                con, admin, scheme, segment, "email", out=tmp_path / "a.csv", via="cli"
            )
    finally:
        con.close()
    assert _files(tmp_path) == []
