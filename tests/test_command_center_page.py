"""Command center page: renders, filters change the tiles, the URL restores the view,
and it copes with a database where the marts are not built yet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import radar_data
import streamlit as st
from conftest import metric_value, page_file
from streamlit.testing.v1 import AppTest

from ccrm_core.foundation import store

PAGE = page_file("command_center")


def _open(path: Path, monkeypatch, query: dict | None = None) -> AppTest:
    # cached results are keyed on the data version, which two small test databases can share
    st.cache_data.clear()
    monkeypatch.setenv("CCRM_DB", str(path))
    at = AppTest.from_file(PAGE, default_timeout=60)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="module")
def company_db(tmp_path_factory) -> Path:
    return radar_data.build_company(tmp_path_factory.mktemp("ccpage") / "radar.duckdb")


def test_renders_every_tile_with_the_hand_computed_numbers(company_db, monkeypatch):
    at = _open(company_db, monkeypatch)
    assert len(at.metric) == 12  # the KPI tiles (no activation in the last 30 days)
    assert metric_value(at, "Revenue") == "190.00"
    assert metric_value(at, "Orders") == "4"
    assert metric_value(at, "Active (365d)") == "3"
    assert metric_value(at, "Repeat rate") == "66.7%"
    revenue = next(m for m in at.metric if m.label == "Revenue")
    assert revenue.delta == "+190.00"  # from nothing in the previous 30 days


def test_a_filter_change_changes_the_tiles_and_the_url(company_db, monkeypatch):
    at = _open(company_db, monkeypatch)
    at.selectbox(key="cc_channel").set_value("web").run()
    assert not at.exception
    assert metric_value(at, "Revenue") == "100.00"  # B's two web orders
    assert at.query_params["channel"] == ["web"] or at.query_params["channel"] == "web"
    at.selectbox(key="cc_window").set_value(30).run()
    # ordered on web in 2024-12-02..12-31: only B (A's web orders are from January and June)
    assert metric_value(at, "Active (30d)") == "1"
    assert at.query_params["window"] in (["30"], "30")
    at.selectbox(key="cc_channel").set_value("all").run()
    assert metric_value(at, "Active (30d)") == "3"  # A, B, C
    assert "channel" not in at.query_params  # back to the default: left out of the link


def test_query_params_restore_the_filters(company_db, monkeypatch):
    at = _open(
        company_db,
        monkeypatch,
        {
            "period": "custom",
            "start": "2024-12-20",
            "end": "2024-12-31",
            "segment": "rfm_segment:Champions",
            "channel": "store",
        },
    )
    assert at.segmented_control(key="cc_period").value == "custom"
    assert at.selectbox(key="cc_segment").value == "rfm_segment:Champions"
    assert at.selectbox(key="cc_channel").value == "store"
    assert metric_value(at, "Revenue") == "90.00"  # A 30 (12-20) + C 60 (12-31), both Champions
    assert not [w for w in at.warning if "Link" in w.value]


@pytest.fixture()
def saved_db(company_db, tmp_path) -> Path:
    """A copy of the company with radar_data's saved segments."""
    copy = tmp_path / "saved.duckdb"
    copy.write_bytes(company_db.read_bytes())
    con = store.connect_writer(copy)
    try:
        radar_data.write_saved_segments(con)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return copy


def test_a_saved_segment_filters_the_tiles_and_lives_in_the_url(saved_db, monkeypatch):
    mid = f"saved:{radar_data.MID_VALUE}"  # B and C; a name with ':', '&', '/', quotes, ü
    at = _open(saved_db, monkeypatch)
    box = at.selectbox(key="cc_segment")
    assert f"Saved: {radar_data.MID_VALUE}" in box.options
    assert "RFM segment: Champions" in box.options  # scheme names in words, not column names
    box.set_value(mid).run()
    assert not at.exception
    assert metric_value(at, "Revenue") == "160.00"  # B 80 + 20, C 60
    assert at.query_params["segment"] in ([mid], mid)
    # the link reopens the view; a link to a deleted saved segment shows everyone and says so
    again = _open(saved_db, monkeypatch, {"segment": mid})
    assert again.selectbox(key="cc_segment").value == mid
    assert metric_value(again, "Revenue") == "160.00"
    gone = _open(saved_db, monkeypatch, {"segment": "saved:Deleted since"})
    assert any("no saved segment" in w.value for w in gone.warning)
    assert metric_value(gone, "Revenue") == "190.00"


def test_a_bad_link_warns_and_shows_the_default_view(company_db, monkeypatch):
    at = _open(company_db, monkeypatch, {"channel": "fax"})
    assert any("fax" in w.value for w in at.warning)
    assert metric_value(at, "Revenue") == "190.00"


def test_sections_switch_with_the_trend_controls(company_db, monkeypatch):
    at = _open(company_db, monkeypatch)
    at.segmented_control(key="cc_metric").set_value("orders").run()
    assert not at.exception
    assert at.query_params["metric"] in (["orders"], "orders")


def test_renders_before_any_build(tmp_path, monkeypatch):
    con = store.connect_writer(tmp_path / "raw.duckdb")
    try:
        radar_data.write_company(con, with_segments=False)
    finally:
        con.close()
    at = _open(tmp_path / "raw.duckdb", monkeypatch)
    assert any("customer_kpis" in i.value for i in at.info)
    assert not at.metric


def test_renders_without_segments_hygiene_or_paths(tmp_path, monkeypatch):
    path = radar_data.build_company(tmp_path / "r.duckdb", with_segments=False)
    at = _open(path, monkeypatch)
    assert metric_value(at, "Avg CLV") == "–"
    assert at.selectbox(key="cc_segment").options == ["Everyone"]


def test_renders_on_the_demo_company_with_every_mart(demo_db_copy, monkeypatch):
    """With segments, hygiene and mart_paths built."""
    at = _open(demo_db_copy, monkeypatch)
    assert len(at.metric) == 12  # the KPI tiles (no activation in the last 30 days)
    for label in ("Avg CLV", "Hygiene", "Reach", "Revenue"):
        assert metric_value(at, label) != "–", label
    assert len(at.selectbox(key="cc_segment").options) > 1
    # the planted activations were sent 45 days before the end: not in the last 30 days
    assert "Deal hunters win-back on Meta" not in {m.label for m in at.metric}
    assert any("No activation was sent in this period" in c.value for c in at.caption)
    before = metric_value(at, "Revenue")
    at.segmented_control(key="cc_period").set_value("365").run()
    assert not at.exception
    assert metric_value(at, "Revenue") != before
    assert at.query_params["period"] in (["365"], "365")
    # ... but in the last 365: each with its measured lift beside the KPI tiles
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Deal hunters win-back on Meta"].endswith(" pts")
    assert tiles["Busy professionals on Google Ads"].endswith(" pts")


def test_the_breakdown_names_sales_channels_in_words(demo_db_copy, monkeypatch):
    at = _open(demo_db_copy, monkeypatch, {"why": "revenue"})
    channels = _drivers_table(at)["Sales channel"].tolist()
    assert "Call center" in channels and "call_center" not in channels


def test_a_365_day_view_shows_no_change_the_data_cannot_support(company_db, monkeypatch):
    """The data starts 2023-11-15: the previous 365 days (from 2023-01-03) are not covered, so
    no tile shows a change and each says why, on the tile."""
    at = _open(company_db, monkeypatch, {"period": "365"})
    for label in ("Revenue", "Orders", "New cust.", "Repeat rate", "Active (365d)", "Reach"):
        metric = next(m for m in at.metric if m.label == label)
        assert not metric.delta, label
    assert metric_value(at, "Revenue") == "340.00"
    captions = [c.value for c in at.caption]
    assert any(c.startswith("No comparison: the previous period needs data from") for c in captions)
    assert any(c.startswith("Incomplete: needs data from 2 Jan 2023") for c in captions)
    # a note several tiles share is said once, naming them
    shared = [c for c in captions if c.startswith("No comparison: the previous period needs")]
    assert len(shared) == 1 and "Revenue, Orders" in shared[0]


def _alert_table(at: AppTest):
    return next(d for d in at.dataframe if (d.key or "").startswith("cc_alert_table"))


def _with_alerts(path: Path, rows: list[tuple]) -> None:
    con = store.connect_writer(path)
    try:
        con.execute("DELETE FROM mart_kpi_alerts")
        con.executemany(
            "INSERT INTO mart_kpi_alerts (grain, metric, channel, start_date, end_date, points, "
            "direction, actual, expected, change, change_pct, score, message) "
            "VALUES (?, 'orders', 'all', ?, ?, 1, 'drop', 1, 4, -3, -0.75, 5, ?)",
            rows,
        )
    finally:
        con.close()


def test_the_alert_banner_shows_the_period_s_alerts_with_their_age(
    company_db, tmp_path, monkeypatch
):
    path = tmp_path / "alerts.duckdb"
    path.write_bytes(company_db.read_bytes())
    _with_alerts(
        path,
        [
            ("day", "2024-12-28", "2024-12-28", "Orders fell on 28 Dec"),
            ("week", "2024-08-05", "2024-08-11", "Orders fell in August"),
        ],
    )
    at = _open(path, monkeypatch)  # last 30 days: 2024-12-02..12-31
    banner = next(w.value for w in at.warning if "alert" in w.value)
    assert "1 alert in this period" in banner
    assert "daily series, ended 3 days before the data end" in banner
    assert "Orders fell on 28 Dec" in banner and "August" not in banner
    assert "2 alerts in the history" in banner
    assert "dayly" not in banner
    # the alert table says how old each alert is
    table = _alert_table(at).value
    assert table["age"].tolist() == [3, 142] and table["grain"].tolist() == ["daily", "weekly"]


def test_without_an_alert_near_the_period_the_latest_is_named_with_its_age(
    company_db, tmp_path, monkeypatch
):
    path = tmp_path / "old.duckdb"
    path.write_bytes(company_db.read_bytes())
    _with_alerts(path, [("week", "2024-08-05", "2024-08-11", "Orders fell in August")])
    at = _open(path, monkeypatch)
    assert not [w for w in at.warning if "alert" in w.value]
    assert any(
        "No alert in this period" in c.value and "142 days before the data end" in c.value
        for c in at.caption
    )


def _section(at: AppTest, name: str) -> str:
    """Open one section (only the open one runs) and return its captions."""
    at.session_state["cc_section"] = name
    at.run()
    assert not at.exception
    return " ".join(c.value for c in at.caption)


def test_tabs_say_what_their_numbers_mean(company_db, monkeypatch):
    at = _open(company_db, monkeypatch)
    # the forecast says which data it read and when it was fitted (the first section is open)
    assert "Data to 31 Dec 2024 · model fitted" in " ".join(c.value for c in at.caption)
    captions = _section(at, "Journeys")
    # journeys: first purchases of A, B, C, D; B and D had a tracked touch before
    assert "**4 customers** made a first purchase: **2** with a tracked touch" in captions
    assert "**2** (50%) without one" in captions
    assert "model fitted" not in captions  # the trend's section did not run
    # the funnel's RFM segments are those of the day before the period
    assert "segment on the day before the period" in _section(at, "Funnel")


def test_showing_an_alert_opens_the_trend_section(company_db, tmp_path, monkeypatch):
    path = tmp_path / "alerts.duckdb"
    path.write_bytes(company_db.read_bytes())
    _with_alerts(path, [("week", "2024-12-16", "2024-12-22", "Orders fell before Christmas")])
    at = _open(path, monkeypatch)
    _section(at, "Cohorts")
    at.button(key="cc_show_alert").click().run()
    assert not at.exception
    assert at.session_state["cc_section"] == "Trends & alerts"
    assert any("Showing the alert" in i.value for i in at.info)


# --- why a KPI changed, the same period last year, alerts that open the trend ------------------


def _drivers_table(at: AppTest):
    return next(d.value for d in at.dataframe if "share_of_change" in d.value.columns)


def _sql_revenue_by_segment(path: Path, first: str, last: str) -> dict[str, float]:
    """Revenue per today's RFM segment straight from the orders (not from any mart)."""
    con = store.connect_reader(path)  # a copy: the app process holds the page's file open
    try:
        rows = con.execute(
            "SELECT m.rfm_segment, sum(o.revenue) FROM customer_orders o "
            "JOIN mart_customer m USING (customer_id) "
            "WHERE CAST(o.ts AS DATE) BETWEEN CAST(? AS DATE) AND CAST(? AS DATE) GROUP BY 1",
            [first, last],
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def test_the_breakdown_panel_matches_the_orders(company_db, tmp_path, monkeypatch):
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(company_db.read_bytes())
    now = _sql_revenue_by_segment(copy, "2024-12-02", "2024-12-31")
    before = _sql_revenue_by_segment(copy, "2023-12-02", "2023-12-31")
    at = _open(company_db, monkeypatch, {"vs": "year_ago", "by": "rfm_segment"})
    assert at.segmented_control(key="cc_vs").value == "year_ago"
    assert at.selectbox(key="cc_by").value == "rfm_segment"
    table = _drivers_table(at).set_index("Segment: RFM segment")
    for segment in set(now) | set(before):
        row = table.loc[segment]
        assert row["now"] == now.get(segment, 0), segment
        assert row["before"] == before.get(segment, 0), segment
        assert row["change"] == now.get(segment, 0) - before.get(segment, 0), segment
    assert table["change"].sum() == sum(now.values()) - sum(before.values()) == 180
    assert list(table.index) == ["New", "Champions", "Lost"]  # +100, +90, -10
    text = " ".join(m.value for m in at.markdown)
    # orders 1 -> 4, average order 10 -> 47.50: (4 - 1) x 28.75 and 37.5 x 2.5
    assert "Orders effect **+86.25** (1 → 4 orders)" in text
    assert "order-value effect **+93.75** (average order 10.00 → 47.50)" in text
    assert "Moved most: **New** (+100.00, 56% of the change)" in text
    # the waterfall starts from last year's revenue and ends on this period's
    bridge = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if "Revenue: the same period" in json.dumps(json.loads(c.proto.spec)["layout"]["title"])
    )
    assert bridge["data"][0]["y"] == [10.0, 86.25, 93.75, 190.0]
    # a change of split goes into the link; back to the default leaves it out
    at.selectbox(key="cc_by").set_value("source_system").run()
    assert not at.exception
    assert at.query_params["by"] in (["source_system"], "source_system")
    assert _drivers_table(at)["Source system"].tolist() == ["shop", "crm"]
    at.segmented_control(key="cc_vs").set_value("previous").run()
    assert "vs" not in at.query_params
    assert "Orders effect **+190.00** (0 → 4 orders)" in " ".join(m.value for m in at.markdown)


def test_the_breakdown_says_when_the_data_cannot_compare(company_db, monkeypatch):
    at = _open(company_db, monkeypatch, {"why": "new_customers"})
    captions = [c.value for c in at.caption]
    assert "No comparison with the previous period: it needs data from 3 Nov 2023" in " ".join(
        captions
    )
    assert _drivers_table(at)["now"].tolist() == [1]  # B, on web


def test_tiles_show_the_change_against_last_year(company_db, monkeypatch):
    at = _open(company_db, monkeypatch)
    captions = [c.value for c in at.caption]
    assert "vs last year: +180.00 (+1800%)" in captions  # revenue 10 -> 190
    assert "vs last year: +3 (+300%)" in captions  # orders 1 -> 4


def test_a_bad_breakdown_link_warns_and_shows_the_default(company_db, monkeypatch):
    at = _open(
        company_db,
        monkeypatch,
        {"why": "<b>x</b>", "by": "x" * 100_000, "vs": "decade", "metric": "profit"},
    )
    warnings = [w.value for w in at.warning if w.value.startswith("Link not fully applied")]
    assert len(warnings) == 4 and all(len(w) < 400 for w in warnings)
    assert at.selectbox(key="cc_by").value == "channel"
    assert at.segmented_control(key="cc_why").value == "revenue"
    assert not any(k in at.query_params for k in ("why", "by", "vs", "metric"))


def test_an_alert_opens_the_trend_on_its_series_and_days(company_db, tmp_path, monkeypatch):
    path = tmp_path / "alerts.duckdb"
    path.write_bytes(company_db.read_bytes())
    _with_alerts(
        path,
        [
            ("day", "2024-12-27", "2024-12-28", "Orders fell at the end of December"),
            ("week", "2024-08-05", "2024-08-11", "Orders fell in August"),
        ],
    )
    at = _open(path, monkeypatch)
    assert at.segmented_control(key="cc_metric").value == "revenue"
    at.button(key="cc_show_alert").click().run()  # the banner's newest alert
    assert not at.exception
    assert at.segmented_control(key="cc_metric").value == "orders"
    assert at.query_params["alert"] in (["day:orders:2024-12-28:all"], "day:orders:2024-12-28:all")
    assert any("Showing the alert" in i.value and "end of December" in i.value for i in at.info)
    spec = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if "the alert (shaded)" in c.proto.spec
    )
    # six weeks before the alert to two weeks after it
    assert [x[:10] for x in spec["layout"]["xaxis"]["range"]] == ["2024-11-15", "2025-01-11"]
    # the link opens the same view; another KPI drops the alert from the link
    again = _open(path, monkeypatch, {"alert": "week:orders:2024-08-11:all"})
    assert again.segmented_control(key="cc_grain").value == "week"
    assert again.segmented_control(key="cc_metric").value == "orders"
    assert any("Orders fell in August" in i.value for i in again.info)
    again.segmented_control(key="cc_metric").set_value("revenue").run()
    assert "alert" not in again.query_params
    assert not any("Showing the alert" in i.value for i in again.info)
    # and the button puts the whole trend back
    at.button(key="cc_clear_alert").click().run()
    assert (
        "alert" not in at.query_params and at.segmented_control(key="cc_metric").value == "orders"
    )


def test_a_bad_alert_link_warns_and_shows_the_whole_trend(company_db, monkeypatch):
    for bad in ("day:orders:2024-12-28:all", "[x](http://evil.example)", "x" * 100_000):
        at = _open(company_db, monkeypatch, {"alert": bad})
        [warning] = [w.value for w in at.warning if w.value.startswith("Link not fully applied")]
        assert "not an alert of this data" in warning and len(warning) < 400
        assert "alert" not in at.query_params
