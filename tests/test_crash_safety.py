"""Crashes lose nothing: `ccrm ingest` and `ccrm build` killed with SIGKILL at
random moments leave a database that opens, passes an integrity check and holds exactly a state
the command passes through when it is not interrupted.

Both commands are sequences of transactions: `ccrm ingest` commits one transaction per file and
`ccrm build` one per stage (README, "Pipeline"). So the states a kill may leave are the state
before the command, the state after each file or stage, and the state after the command; the
test records every one of them by running the same work through the Python API on a copy
(snapshotting after each file / before each stage through the progress callback), checks that an
uninterrupted CLI run ends in the last one, and then demands that every killed run's database
equals one of them exactly: per table, the row count and a content checksum (tests/db_state.py),
ingest_log and pipeline_runs included. The audit log is written by the CLI
around the API calls, so it is checked apart: a killed run's audit rows are a subset of what the
uninterrupted run writes.

Integrity check after a kill: the database opens read-write (DuckDB replays its write-ahead log,
which holds committed transactions only), CHECKPOINT succeeds, it reopens read-only, and every
row of every table is read back (DuckDB verifies each block's checksum as it reads it).

Kill moments are uniform within the measured duration of the uninterrupted command (seeded).
Data: a generated company of 1,000 customers over 365 days, built, into which the raw files of a
second company (seed 12, mostly the same keys) are ingested as upserts, followed by a file of
300,000 new events (so that many kills land inside a load); the build test rebuilds the company
after the upserts.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from db_state import VOLATILE_COLUMNS, Fingerprint, differences, fingerprint

from ccrm_core.foundation import ingest, pipeline, store

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / "test-artifacts" / "crash_safety.json"
KILLS = {"ingest": 12, "build": 10}
SEED = 909
AUDIT = "audit_log"  # compared apart (see the module docstring)
MAX_REJECT_RATE = "0.5"
BULK_EVENTS = 300_000


def _bulk_events(path: Path, n: int) -> Path:
    """`n` anonymous web visits with new keys, as CSV."""
    duckdb.sql(
        f"""COPY (SELECT 'bulk' || i AS event_id, TIMESTAMP '2024-01-01' + to_seconds(i) AS ts,
                  'web' AS channel, 'visit' AS event_type, NULL AS source_system,
                  NULL AS source_id, 'anon' || (i % 5000) AS anonymous_id, NULL AS campaign_id,
                  NULL AS value
                FROM range({n}) t(i)) TO '{path}' (HEADER, DELIMITER ',')"""
    )
    return path


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ccrm_core.cli", *args]


def _run(cmd: list[str]) -> float:
    """Run to completion; returns the wall time in seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return time.perf_counter() - t0


def _kill_after(cmd: list[str], seconds: float) -> int:
    """Start `cmd`, SIGKILL its process group after `seconds` unless it ended; its exit code
    (-9 when killed)."""
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill reaches any child too
    )
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    return proc.returncode


def _copy(source: Path, target: Path) -> Path:
    assert not Path(f"{source}.wal").exists(), "copy only checkpointed databases"
    shutil.copy(source, target)
    return target


def _audit_rows(con) -> set[tuple]:
    """Audit rows without their wall-clock columns (empty when there is no audit log)."""
    if not store.table_exists(con, AUDIT):
        return set()
    columns = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [AUDIT],
        ).fetchall()
        if r[0] not in VOLATILE_COLUMNS
    ]
    return set(con.execute(f"SELECT {', '.join(columns)} FROM {AUDIT}").fetchall())


def _state(path: Path) -> tuple[Fingerprint, set[tuple]]:
    con = store.connect_reader(path)
    try:
        return fingerprint(con, skip=(AUDIT,)), _audit_rows(con)
    finally:
        con.close()


def _integrity_checked_state(path: Path) -> tuple[Fingerprint, set[tuple]]:
    """Open read-write (WAL replay), CHECKPOINT, reopen read-only and read every row."""
    con = store.connect_writer(path)
    try:
        con.execute("CHECKPOINT")
    finally:
        con.close()
    assert not Path(f"{path}.wal").exists() or Path(f"{path}.wal").stat().st_size == 0
    return _state(path)


def _logged_failures(path: Path) -> list[tuple]:
    """Stages that failed and files refused, as the database logged them (a failure the command
    reports itself, e.g. from a broken stage, is not a crash)."""
    con = store.connect_reader(path)
    try:
        return con.execute(
            "SELECT stage, error FROM pipeline_runs WHERE status = 'failed' "
            "UNION ALL SELECT file_name, message FROM ingest_log WHERE status = 'refused'"
        ).fetchall()
    finally:
        con.close()


def _write_artifact(command: str, figures: dict) -> None:
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(ARTIFACT.read_text()) if ARTIFACT.exists() else {}
    data[command] = figures
    ARTIFACT.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="module")
def company(tmp_path_factory) -> dict:
    """A built company (base.duckdb); the raw CSV files of a second one (delta/) plus a bulk
    events file, and the state after each when ingested in that order through the API; the
    database after the company's seven files (ingested.duckdb), where the build test starts."""
    work = tmp_path_factory.mktemp("crash")
    base = work / "base.duckdb"
    _run(_cli("sample", "--customers", "1000", "--days", "365", "--seed", "11", "--db", str(base)))
    delta_db = work / "delta.duckdb"
    delta = work / "delta"
    _run(
        _cli(
            "sample", "--customers", "1000", "--days", "365", "--seed", "12",
            "--db", str(delta_db), "--csv", str(delta),
        )
    )  # fmt: skip
    con = store.connect_writer(base)
    try:
        failed = [r for r in pipeline.build(con) if r.status != "ok"]
        assert not failed, failed[0]
        con.execute("CHECKPOINT")
    finally:
        con.close()
    files = sorted(delta.glob("*.csv"))
    assert len(files) == len(store.RAW_TABLES)
    # one large file last, so that many kills land inside a load transaction
    bulk = _bulk_events(work / "events_bulk.csv", BULK_EVENTS)
    reference = _copy(base, work / "ingest-reference.duckdb")
    con = store.connect_writer(reference)
    try:
        states = [fingerprint(con, skip=(AUDIT,))]
        for path in [*files, bulk]:
            [report] = ingest.ingest_files(con, [path], max_reject_rate=float(MAX_REJECT_RATE))
            assert report.status == "loaded", report.message
            assert report.rows_replaced > 0 or path == bulk, "upserts must replace stored rows"
            states.append(fingerprint(con, skip=(AUDIT,)))
            if path == files[-1]:  # the start of the build test: the company's files only
                con.execute("CHECKPOINT")
                ingested = _copy(reference, work / "ingested.duckdb")
    finally:
        con.close()
    return {
        "work": work,
        "base": base,
        "files": [*files, bulk],
        "ingested": ingested,
        "states": states,
    }


def _kill_many(
    command: str,
    cmd_for: Callable[[Path], list[str]],
    start: Path,
    states: list[Fingerprint],
    work: Path,
) -> dict:
    """Run `command` to completion once (duration, final state), then kill it KILLS[command]
    times; returns what the kills left, and asserts each is a known state."""
    finished = _copy(start, work / f"{command}-finished.duckdb")
    _, audit_before = _state(start)
    duration = _run(cmd_for(finished))
    final, audit_after = _state(finished)
    assert differences(final, states[-1]) == [], "the CLI ends where the API reference ends"
    # every file / stage commits something, so a match names exactly one moment of the run
    assert len({tuple(sorted(s.items())) for s in states}) == len(states), "repeated states"
    rng = random.Random(f"{SEED}-{command}")
    outcomes = []
    for attempt in range(KILLS[command]):
        db = _copy(start, work / f"{command}-kill{attempt}.duckdb")
        at = rng.uniform(0.0, duration)
        code = _kill_after(cmd_for(db), at)
        got, audit = _integrity_checked_state(db)
        matched = next((k for k, s in enumerate(states) if s == got), None)
        if matched is None:
            nearest = min(states, key=lambda s: len(differences(s, got)))
            pytest.fail(
                f"{command} killed after {at:.2f}s (attempt {attempt}) left a state that the "
                f"command never passes through: {differences(nearest, got)[:5]}; "
                f"failures the run logged itself: {_logged_failures(db) or 'none'}"
            )
        # the audit log never records more than the uninterrupted run, nor loses what was there
        assert audit_before <= audit <= audit_before | audit_after, (command, attempt)
        outcomes.append({"at_s": round(at, 3), "exit": code, "state": matched})
        db.unlink()
    figures = {
        "kills": len(outcomes),
        "killed_mid_run": sum(o["exit"] == -signal.SIGKILL for o in outcomes),
        "duration_s": round(duration, 2),
        "states": len(states),
        "landed_before": sum(o["state"] == 0 for o in outcomes),
        "landed_between": sum(0 < o["state"] < len(states) - 1 for o in outcomes),
        "landed_after": sum(o["state"] == len(states) - 1 for o in outcomes),
        "outcomes": outcomes,
    }
    _write_artifact(command, figures)
    print(f"\n{command}: {json.dumps({k: v for k, v in figures.items() if k != 'outcomes'})}")
    assert figures["killed_mid_run"] >= 1, figures  # at least one kill hit a running command
    return figures


def test_killed_ingest_leaves_a_state_between_files(company):
    """`ccrm ingest` of eight files (seven upserts into a built company, then 300,000 new
    events), killed 12 times."""
    files = [str(p) for p in company["files"]]

    def cmd_for(db: Path) -> list[str]:
        return _cli("ingest", *files, "--db", str(db), "--max-reject-rate", MAX_REJECT_RATE)

    figures = _kill_many("ingest", cmd_for, company["base"], company["states"], company["work"])
    assert figures["kills"] == KILLS["ingest"]


def test_killed_build_leaves_a_state_between_stages(company):
    """`ccrm build` over the ingested company (every stage replaces its tables), killed 10
    times; the log of the interrupted run lists exactly the stages whose tables are new."""
    work, start = company["work"], company["ingested"]
    reference = _copy(start, work / "build-reference.duckdb")
    con = store.connect_writer(reference)
    states: list[Fingerprint] = []
    try:
        # progress(stage, i, n) runs before stage i starts, after stage i-1 committed and was
        # recorded; ("done", n, n) after the last
        results = pipeline.build(
            con, progress=lambda stage, i, n: states.append(fingerprint(con, skip=(AUDIT,)))
        )
        failed = [r for r in results if r.status != "ok"]
        assert not failed, failed[0]
    finally:
        con.close()
    assert len(states) == len(pipeline.STAGES) + 1

    def cmd_for(db: Path) -> list[str]:
        return _cli("build", "--db", str(db))

    figures = _kill_many("build", cmd_for, start, states, work)
    assert figures["kills"] == KILLS["build"]
