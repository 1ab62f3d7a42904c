"""Same data, same numbers: two builds of the same database give identical tables, to the last
bit, whatever the number of threads and in separate processes.

Parallel sums over DOUBLE, k-means with several threads and models fitted from rows in whatever
order a query returned them all used to make the last digits differ from build to build; every
output table (marts, models, logs less their wall-clock columns) must now be equal.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ccrm
from db_state import differences, fingerprint

from ccrm_core.foundation import store

ROOT = Path(__file__).resolve().parents[1]


def _ccrm(*args: str) -> None:
    proc = ccrm(*args)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.mark.slow
def test_two_builds_with_different_threads_are_identical(tmp_path):
    raw = tmp_path / "raw.duckdb"
    _ccrm("sample", "--customers", "1500", "--days", "365", "--seed", "11", "--db", str(raw))
    states = []
    for threads in (1, 2):
        db = tmp_path / f"threads{threads}.duckdb"
        shutil.copy(raw, db)
        _ccrm("build", "--db", str(db), "--threads", str(threads))
        con = store.connect_reader(db)
        try:
            states.append(fingerprint(con))
        finally:
            con.close()
    one, two = states
    assert "mart_customer" in one and "mart_attribution" in one  # the whole pipeline ran
    con = store.connect_reader(tmp_path / "threads1.duckdb")
    try:  # enough records that identity resolution trains its model (sampling and EM)
        assert con.execute("SELECT bool_and(trained) FROM identity_model").fetchall() == [(True,)]
    finally:
        con.close()
    assert differences(one, two) == []


def test_build_refuses_a_thread_count_below_one(tmp_path):
    proc = ccrm("build", "--db", str(tmp_path / "x.duckdb"), "--threads", "0")
    assert proc.returncode != 0
    assert "'0' is not a whole number of at least 1" in proc.stderr
