"""Shared fixtures: one generated, fully built demo database for the whole test session."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from ccrm_core.foundation import pipeline, store

ROOT = Path(__file__).resolve().parent.parent
DEMO_CUSTOMERS = 3000
DEMO_DAYS = 730
DEMO_SEED = 7


def ccrm(*args: str, env: dict | None = None, timeout: float = 900):
    """Run the `ccrm` command line in a child process (the way a user does); returns the
    CompletedProcess with stdout and stderr as text."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "ccrm_core.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def page_file(stem: str) -> str:
    """The path of an app page (app_pages/<stem>.py) for AppTest.from_file."""
    return str(ROOT / "app_pages" / f"{stem}.py")


def metric_value(at, label: str) -> str:
    """The shown value of the st.metric labelled `label` in an AppTest run."""
    return next(m.value for m in at.metric if m.label == label)


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """Path of a database with a generated company (3,000 customers, 730 days, seed 7), built by
    every pipeline stage. Read-only by convention: copy it (`demo_db_copy`) before writing."""
    from ccrm_core.synthetic import sample

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    con = store.connect_writer(path)
    try:
        sample.write_sample(con, sample.generate(DEMO_CUSTOMERS, DEMO_DAYS, DEMO_SEED))
        results = pipeline.build(con)
        failed = [r for r in results if r.status != "ok"]
        assert not failed, f"demo build failed: {failed}"
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


@pytest.fixture()
def demo_db_copy(demo_db, tmp_path) -> Path:
    """A private writable copy of the demo database."""
    target = tmp_path / "demo.duckdb"
    shutil.copy(demo_db, target)
    return target


@pytest.fixture()
def demo_con(demo_db):
    """A connection to the shared demo database (do not write)."""
    con = store.connect_writer(demo_db)
    yield con
    con.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerURL(str):
    """The base URL of a test server (a plain string), with the server's process id."""

    pid: int


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far (user + system, from /proc): a test can tell a
    server that is still working from one that is stuck, however slow the machine is."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


# A server that has used no CPU for this long while not answering is taken for stuck.
STALL_SECONDS = 120


@contextlib.contextmanager
def streamlit_server(
    db: Path,
    log_path: Path,
    cwd: Path | None = None,
    env: dict | None = None,
    port: int | None = None,
):
    """`streamlit run app.py` headless on a loopback port over the database `db`; waits until
    /_stcore/health says ok (for as long as the server keeps working towards it), yields the
    base URL (a ServerURL, with the process id) and stops the server afterwards."""
    import subprocess
    import sys
    import time
    import urllib.request

    root = Path(__file__).resolve().parent.parent
    port = port or _free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", str(root / "app.py"),
                "--server.port", str(port), "--server.address", "127.0.0.1",
                "--server.headless", "true", "--browser.gatherUsageStats", "false",
                "--server.fileWatcherType", "none",
            ],
            cwd=cwd or root,
            env={**os.environ, "CCRM_DB": str(db), "PYTHONPATH": str(root), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = ServerURL(f"http://127.0.0.1:{port}")
        base.pid = proc.pid
        try:
            busy, idle_since = cpu_seconds(proc.pid), time.monotonic()
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as resp:
                        if resp.read().decode().strip() == "ok":
                            break
                except OSError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited before serving; see {log_path}")
                now_busy = cpu_seconds(proc.pid)
                if now_busy > busy:
                    busy, idle_since = now_busy, time.monotonic()
                elif time.monotonic() - idle_since > STALL_SECONDS:
                    raise RuntimeError(f"streamlit stopped starting up; see {log_path}")
                time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def app_server(demo_db, tmp_path_factory):
    """The app over a private copy of the demo database, for the whole session.

    Yields (base_url, db_path).
    """
    work = tmp_path_factory.mktemp("app")
    db = work / "app.duckdb"
    shutil.copy(demo_db, db)
    with streamlit_server(db, work / "streamlit.log") as base:
        yield base, db


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def require_chromium() -> str:
    """Debian's chromium (never Playwright's own download); fails the test when it is missing."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test`, which installs it")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (never Playwright's own browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_ARGS)
        yield b
        b.close()
