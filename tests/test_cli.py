"""The `ccrm` command line: help everywhere, one-line errors and exit codes on bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import _free_port, ccrm

from ccrm_core import cli
from ccrm_core.foundation import store

COMMANDS = ["sample", "ingest", "build", "app", "bench"]


run = ccrm  # the command line in a child process


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    proc = run(command, "--help")
    assert proc.returncode == 0
    assert f"usage: ccrm {command}" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample", "--customers", "5"], "--customers must be at least 10 (got 5)"),
        (["sample", "--days", "3"], "--days must be at least 30 (got 3)"),
        (["ingest", "no/such/file.csv"], "file not found: no/such/file.csv"),
        (
            ["ingest", "x.csv", "--max-reject-rate", "2"],
            "--max-reject-rate must be between 0 and 1",
        ),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(args, message, tmp_path):
    if args[0] == "ingest" and args[1] == "x.csv":
        (tmp_path / "x.csv").write_text("a\n1\n")
        args = ["ingest", str(tmp_path / "x.csv"), *args[2:]]
    proc = run(*args, "--db", str(tmp_path / "t.duckdb"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"error: {message}\n" or proc.stderr.startswith(f"error: {message}")
    assert proc.stderr.count("\n") == 1


def test_sample_refuses_to_overwrite_without_replace(tmp_path):
    db = tmp_path / "t.duckdb"
    store.connect_writer(db).close()
    assert cli.main(["sample", "--customers", "10", "--db", str(db)]) == 2


def test_build_refuses_unknown_stages_and_bad_settings(tmp_path, capsys):
    db = str(tmp_path / "t.duckdb")
    assert cli.main(["build", "--db", db, "--stage", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown stage nope; choose from: ")
    assert cli.main(["build", "--db", db, "--param", "mmm.bootstrap"]) == 2
    assert "is not STAGE.NAME=VALUE" in capsys.readouterr().err
    assert cli.main(["build", "--db", db, "--param", "nope.x=1"]) == 2
    assert "unknown stage nope" in capsys.readouterr().err
    assert cli.main(["build", "--db", db, "--param", "mmm.bootstrapp=5"]) == 2
    assert capsys.readouterr().err == (
        "error: --param 'mmm.bootstrapp=5': stage mmm has no setting bootstrapp; its settings "
        "are: ridge, bootstrap, block_days, seed, trend_degree, yearly_order\n"
    )
    assert cli.main(["build", "--db", db, "--param", "daily_kpis.x=1"]) == 2
    assert "stage daily_kpis has no setting x; it has no settings" in capsys.readouterr().err


def test_every_setting_a_stage_reads_is_listed():
    from ccrm_core.foundation import pipeline

    ctx = pipeline.BuildContext(as_of=None, run_id=1, params={"mmm": {"bootstrap": 5}})
    assert ctx.param("mmm", "bootstrap", 0) == 5
    assert ctx.param("mmm", "ridge", 1.0) == 1.0
    with pytest.raises(KeyError, match="stage mmm reads setting 'bootstrapp'"):
        ctx.param("mmm", "bootstrapp", 0)


def test_stage_settings_are_parsed_with_types():
    from ccrm_core.foundation import pipeline

    assert pipeline.parse_params(
        ["identity.threshold=0.9", "paths.lookback_days=14", "mmm.bootstrap=50", "value.months=6"]
    ) == {
        "identity": {"threshold": 0.9},
        "paths": {"lookback_days": 14},
        "mmm": {"bootstrap": 50},
        "value": {"months": 6},
    }
    assert pipeline.parse_params(["nba.policy_path=/tmp/p.toml"]) == {
        "nba": {"policy_path": "/tmp/p.toml"}
    }


def test_busy_database_is_reported_not_traced(tmp_path):
    db = tmp_path / "t.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "time.sleep(60)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        proc = run("build", "--db", str(db))
        assert proc.returncode == 3
        assert proc.stderr.startswith(f"error: database {db} is in use by another process")
        assert proc.stderr.count("\n") == 1
    finally:
        holder.kill()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_app_refuses_to_serve_every_interface_without_login(tmp_path):
    port = _free_port()
    proc = ccrm(
        "app", "--address", "0.0.0.0", "--port", str(port), "--db", str(tmp_path / "x.duckdb"),
        env={**os.environ, "HOME": str(tmp_path)},  # no ~/.streamlit/secrets.toml either
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --address 0.0.0.0: no login is configured")
    assert proc.stderr.count("\n") == 1
    assert not _listening(port)


def test_app_stops_on_sigterm_and_releases_the_database(tmp_path):
    db = tmp_path / "app.duckdb"
    store.connect_writer(db).close()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ccrm_core.cli", "app", "--db", str(db), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # waits for the server as long as the process lives (a slow machine starts it late)
        while not _listening(port):
            assert proc.poll() is None, "ccrm app exited before serving"
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not _listening(port)
    store.connect_writer(db).close()  # nothing holds the database any more


def _unusable_databases(tmp_path) -> dict:
    """name -> path of a database file ccrm must refuse to use."""
    good = tmp_path / "good.duckdb"
    con = store.connect_writer(good)
    con.execute("INSERT INTO spend VALUES ('2024-01-01', 'tv', NULL, 10.0, 5)")
    con.execute("CHECKPOINT")
    con.close()
    data = good.read_bytes()
    paths = {}
    for name, content in {
        "garbage": bytes(range(256)) * 64,
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "header only": data[:12288],
    }.items():
        paths[name] = tmp_path / f"{name.replace(' ', '_')}.duckdb"
        paths[name].write_bytes(content)
    paths["folder"] = tmp_path / "folder.duckdb"
    paths["folder"].mkdir()
    newer = tmp_path / "newer.duckdb"
    con = store.connect_writer(newer)
    con.execute("INSERT INTO schema_version VALUES (999, now())")
    con.execute("CHECKPOINT")
    con.close()
    paths["newer schema"] = newer
    return paths


def test_unusable_databases_get_one_line_and_stay_untouched(tmp_path):
    csv = tmp_path / "spend.csv"
    csv.write_text("date,channel,campaign_id,spend,impressions\n2024-02-01,tv,,10,5\n")
    for name, db in _unusable_databases(tmp_path).items():
        before = db.read_bytes() if db.is_file() else None
        for args in (["ingest", str(csv)], ["build"], ["export", "audience"]):
            extra = ["--segment", "x", "--channel", "email", "--out", str(tmp_path / "a.csv")]
            proc = run(*args, "--db", str(db), *(extra if args[0] == "export" else []))
            assert proc.returncode == 2, (name, args, proc.stderr[-500:])
            assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, (
                name,
                args,
                proc.stderr[-500:],
            )
            assert "Traceback" not in proc.stderr
            assert (db.read_bytes() if db.is_file() else None) == before, (name, args)
            assert not Path(f"{db}.wal").exists(), (name, args)
    newer = run("build", "--db", str(tmp_path / "newer.duckdb"))
    assert "schema version 999 is newer than this ccrm" in newer.stderr
    folder = run("build", "--db", str(tmp_path / "folder.duckdb"))
    assert "is a folder, not a file" in folder.stderr
