"""Segment Explorer page: renders, shows the mart's numbers, widgets change them."""

from __future__ import annotations

import pytest
from conftest import metric_value, page_file
from streamlit.testing.v1 import AppTest

from ccrm_core.foundation import store
from ccrm_core.foundation.rendering import markdown_text
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
    page.number_input(key="rule_val_prob_alive_>=_1").set_value(90).run()  # typed as percent
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
    assert any("Saved High value alive" in s.value for s in page.success)
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


def test_rule_reads_as_a_sentence_and_replacing_asks_first(page):
    page.selectbox(key="rule_col_0").set_value("orders").run()
    page.selectbox(key="rule_op_orders_0").set_value(">=").run()
    page.number_input(key="rule_val_orders_>=_0").set_value(3).run()
    page.selectbox(key="rule_col_1").set_value("days_since_last_purchase").run()
    page.selectbox(key="rule_op_days_since_last_purchase_1").set_value("<=").run()
    page.number_input(key="rule_val_days_since_last_purchase_<=_1").set_value(90).run()
    assert not page.exception
    sentence = "Customers with orders at least 3 and days since last purchase at most 90"
    assert any(m.value == markdown_text(sentence) for m in page.markdown)
    page.text_input(key="rule_name").set_value("Recent repeat").run()
    page.button(key="rule_save").click().run()
    saved = _saved(page.db_path)
    assert saved == [("Recent repeat", sentence)]
    # the same name again asks before replacing
    page.number_input(key="rule_val_orders_>=_0").set_value(5).run()
    page.button(key="rule_save").click().run()
    assert any("saved already" in w.value for w in page.warning)
    assert _saved(page.db_path) == [("Recent repeat", sentence)]
    page.button(key="rule_replace_yes").click().run()
    assert not page.exception
    assert _saved(page.db_path)[0][1].startswith("Customers with orders at least 5")
    actions = _audit(page.db_path)
    assert actions == [("save_segment", "segment Recent repeat")] * 2


def test_saved_segments_rename_and_delete_are_audited(page):
    page.text_input(key="rule_name").set_value("Top alive").run()
    page.button(key="rule_save").click().run()
    page.text_input(key="saved_new_name").set_value("Top still active").run()
    page.button(key="saved_rename").click().run()
    assert not page.exception
    assert [n for n, _ in _saved(page.db_path)] == ["Top still active"]
    page.button(key="saved_delete").click().run()
    page.button(key="saved_delete_yes").click().run()
    assert not page.exception and _saved(page.db_path) == []
    assert [a for a, _ in _audit(page.db_path)] == [
        "save_segment",
        "rename_segment",
        "delete_segment",
    ]
    assert _audit(page.db_path)[1][1] == "segment Top alive -> Top still active"


def test_link_state_and_hostile_values(demo_db_copy, monkeypatch):
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["scheme"] = "value_tier"
    at.query_params["segment"] = "Gold (next 4%)"
    at.run()
    assert not at.exception
    assert at.selectbox(key="scheme").value == "value_tier"
    assert at.selectbox(key="drill_segment").value == "Gold (next 4%)"
    assert any("model fitted" in c.value for c in at.caption)
    bad = AppTest.from_file(PAGE, default_timeout=120)
    bad.query_params["scheme"] = "<script>" + "x" * 5000
    bad.run()
    assert not bad.exception
    assert bad.selectbox(key="scheme").value == "rfm_segment"
    assert any("Link not fully applied" in w.value for w in bad.warning)
    assert all(len(w.value) < 1000 for w in bad.warning)


def _saved(path) -> list[tuple[str, str]]:
    con = store.connect_writer(path)
    try:
        frame = segments.saved_segments(con)
        return list(zip(frame["name"], frame["sentence"], strict=True))
    finally:
        con.close()


def _audit(path) -> list[tuple[str, str]]:
    con = store.connect_writer(path)
    try:
        return con.execute(
            "SELECT action, target FROM audit_log WHERE action LIKE '%segment' ORDER BY audit_id"
        ).fetchall()
    finally:
        con.close()
