"""A database opened read-only (CCRM_READ_ONLY=1, or a file the app may not write) is detected
as such, and every page that writes turns its writes off with a one-line reason instead of
failing with a traceback."""

from __future__ import annotations

import pytest
from conftest import page_file
from streamlit.testing.v1 import AppTest

from ccrm_core.foundation import store


def test_is_read_only_tells_a_reader_from_a_writer(tmp_path):
    db = tmp_path / "r.duckdb"
    writer = store.connect_writer(db)
    assert store.is_read_only(writer) is False
    assert store.is_read_only(writer.cursor()) is False
    writer.close()
    reader = store.connect_reader(db)
    try:
        # DuckDB lets a read-only connection create TEMP tables: a write probe would say False
        reader.execute("CREATE TEMP TABLE probe (x INTEGER)")
        assert store.is_read_only(reader) is True
        assert store.is_read_only(reader.cursor()) is True
    finally:
        reader.close()


@pytest.fixture()
def read_only_db(demo_db_copy, monkeypatch):
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    monkeypatch.setenv("CCRM_READ_ONLY", "1")
    return demo_db_copy


def _run(stem: str) -> AppTest:
    at = AppTest.from_file(page_file(stem), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_data_page_turns_uploads_and_rebuilds_off(read_only_db):
    at = _run("data")
    assert any(
        "read-only" in w.value and "uploads and rebuilds are off" in w.value for w in at.warning
    )
    assert next(b for b in at.button if b.label == "Rebuild").disabled
    assert next(b for b in at.button if b.label == "Load files").disabled


def test_budget_simulator_turns_scenario_saving_off(read_only_db):
    at = _run("budget_simulator")
    assert at.text_input(key="budget_scenario_name").disabled
    assert at.button(key="budget_save").disabled
    assert any("read-only" in c.value for c in at.caption)
