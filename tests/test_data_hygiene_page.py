"""Data Hygiene page through AppTest: renders on an empty database with the stage to run, shows
the scores and identity figures on the demo company, and the threshold slider moves the
customer count (from stored pairwise predictions)."""

from __future__ import annotations

import pytest
import streamlit as st
from conftest import page_file
from streamlit.testing.v1 import AppTest

from ccrm_core.foundation import store
from ccrm_core.librarian import identity

PAGE = page_file("data_hygiene")


@pytest.fixture(autouse=True)
def _fresh_cache():
    # db.cached keys on the data version; clear so one database's answers never serve another.
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def _metric(at: AppTest, label: str) -> str:
    for m in at.metric:
        if m.label == label:
            return m.value
    raise AssertionError(f"no metric {label!r}: {[m.label for m in at.metric]}")


def test_page_names_the_stages_to_run_on_an_empty_database(tmp_path, monkeypatch):
    path = tmp_path / "empty.duckdb"
    store.connect_writer(path).close()
    monkeypatch.setenv("CCRM_DB", str(path))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    infos = " ".join(i.value for i in at.info)
    assert "`hygiene`" in infos and "`identity`" in infos


def test_page_on_demo_company_and_threshold_slider(demo_db_copy, monkeypatch):
    # Expected numbers first: the app then holds the file open read-write in this process.
    con = store.connect_reader(demo_db_copy)
    try:
        customers = con.execute("SELECT count(*) FROM customers").fetchall()[0][0]
        curve = identity.threshold_curve(con)
        floor = float(identity.latest_run(con)["pair_floor"])
    finally:
        con.close()
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    overall = float(_metric(at, "Overall"))
    assert 0 < overall <= 100
    assert _metric(at, "Customers") == f"{customers:,}"
    assert _metric(at, "Customers at this threshold") == f"{customers:,}"
    # Lowering the threshold to the stored floor links every stored pair: fewer customers,
    # exactly as the curve read off the stored predictions says.
    at.slider(key="identity_threshold").set_value(round(floor, 3)).run()
    assert not at.exception, [e.value for e in at.exception]
    expected = identity.customers_at_threshold(curve, round(floor, 3))
    assert expected < customers
    assert _metric(at, "Customers at this threshold") == f"{expected:,}"
    # The why-matched waterfall and the drill-down render.
    assert at.selectbox(key="pair").value is not None
    assert at.selectbox(key="hygiene_check").value is not None
