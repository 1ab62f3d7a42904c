"""Shared fixtures: one generated, fully built demo database for the whole test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ccrm_core import pipeline, store

DEMO_CUSTOMERS = 3000
DEMO_DAYS = 730
DEMO_SEED = 7


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """Path of a database with a generated company (3,000 customers, 730 days, seed 7), built by
    every pipeline stage. Read-only by convention: copy it (`demo_db_copy`) before writing."""
    from ccrm_core import sample

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
