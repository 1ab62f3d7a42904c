"""The `ccrm` command line: help everywhere, one-line errors and exit codes on bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ccrm_core import cli
from ccrm_core.foundation import store

COMMANDS = ["sample", "ingest", "build", "app", "bench"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ccrm_core.cli", *args], capture_output=True, text=True, timeout=120
    )


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
