"""Segment Explorer page: renders, shows the mart's numbers, widgets change them."""

from __future__ import annotations

import pytest
from conftest import metric_value, page_file
from streamlit.testing.v1 import AppTest

from ccrm_core.foundation import store
from ccrm_core.radar import segments

PAGE = page_file("segment_explorer")


@pytest.fixture()
def page(demo_db_copy, monkeypatch):
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    at.db_path = demo_db_copy
    return at


def _count(path, sql: str, params=None) -> int:
    con = store.connect_writer(path)  # the app in this process holds it read-write
    try:
        return con.execute(sql, params or []).fetchall()[0][0]
    finally:
        con.close()


def test_renders_the_mart_numbers(page):
    customers = _count(page.db_path, "SELECT count(*) FROM mart_customer")
    buyers = _count(page.db_path, "SELECT count(*) FROM mart_customer WHERE orders > 0")
    assert metric_value(page, "Customers") == f"{customers:,}"
    assert metric_value(page, "Buyers") == f"{buyers:,}"
    profile = page.dataframe[0].value
    assert profile["Customers"].sum() == customers
    # the drill-down starts on the largest RFM segment
    largest = profile.iloc[0]
    assert metric_value(page, "Customers in segment") == f"{int(largest['Customers']):,}"
    # the rule builder's default: top two value tiers still likely alive
    want = _count(
        page.db_path,
        "SELECT count(*) FROM mart_customer WHERE value_tier IN "
        "('Gold (next 4%)', 'Platinum (top 1%)') AND prob_alive >= 0.5",
    )
    assert metric_value(page, "Matching customers") == f"{want:,}"
    assert metric_value(page, "Relative error").endswith("%")


def test_changing_the_scheme_changes_the_profile(page):
    before = list(page.dataframe[0].value["Segment"])
    page.selectbox(key="scheme").set_value("needs_segment").run()
    assert not page.exception
    after = list(page.dataframe[0].value["Segment"])
    assert before != after and 4 <= len(after) <= 7
    assert any("distinguishes" in s.value for s in page.subheader)


def test_changing_a_rule_changes_the_live_count(page):
    before = metric_value(page, "Matching customers")
    page.number_input(key="rule_val_prob_alive_>=_1").set_value(0.9).run()
    assert not page.exception
    after = metric_value(page, "Matching customers")
    want = _count(
        page.db_path,
        "SELECT count(*) FROM mart_customer WHERE value_tier IN "
        "('Gold (next 4%)', 'Platinum (top 1%)') AND prob_alive >= 0.9",
    )
    assert after == f"{want:,}" and after != before


def test_export_shows_exclusions_before_download(page):
    page.selectbox(key="export_channel").set_value("sms").run()
    members = int(metric_value(page, "Members").replace(",", ""))
    exported = int(metric_value(page, "Exportable").replace(",", ""))
    excluded = int(metric_value(page, "Excluded").replace(",", ""))
    assert members == exported + excluded and excluded > 0
    reasons = page.dataframe[2].value
    assert reasons["Customers"].sum() == excluded
    assert any("opted out of sms" in r for r in reasons["Excluded because"])


def test_saving_a_rule_segment_adds_the_saved_scheme(page):
    page.text_input(key="rule_name").set_value("High value alive").run()
    page.button(key="rule_save").click().run()
    assert not page.exception
    assert any("Saved 'High value alive'" in s.value for s in page.success)
    page.selectbox(key="scheme").set_value(segments.SAVED_SCHEME).run()
    assert not page.exception
    assert list(page.dataframe[0].value["Segment"]) == ["High value alive"]


def test_renders_before_any_build(tmp_path, monkeypatch):
    store.connect_writer(tmp_path / "empty.duckdb").close()
    monkeypatch.setenv("CCRM_DB", str(tmp_path / "empty.duckdb"))
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    assert any("build stage" in i.value for i in at.info)
