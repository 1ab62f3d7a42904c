"""Attribution page: renders, and switching model or segment changes the numbers."""

from __future__ import annotations

import pytest
from conftest import metric_value, page_file
from streamlit.testing.v1 import AppTest

PAGE = page_file("attribution")


@pytest.fixture()
def page(demo_db_copy, monkeypatch):
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_renders_every_section(page):
    assert metric_value(page, "R²")
    assert page.selectbox(key="model").value == "markov_1"
    summary = " ".join(m.value for m in page.markdown)
    assert "seen only top-down" in summary  # tv and print
    # the per-channel reconciliation names channels and views in words
    recon = next(d.value for d in page.dataframe if "calibration_factor" in d.value.columns)
    assert {"Paid search", "Direct mail"} <= set(recon["channel"])
    assert set(recon["view"]) == {"both views", "media mix model only"}


def test_the_orders_left_out_of_attribution_are_shown(page, demo_db):
    from ccrm_core.conductor import journeys
    from ccrm_core.foundation import store

    con = store.connect_reader(demo_db)  # the page holds its copy open: read the original
    try:
        row = journeys.segments(con).iloc[0]  # scheme 'all' comes first
    finally:
        con.close()
    converting, untracked = int(row["conversions"]), int(row["untracked"])
    assert untracked > 0
    assert metric_value(page, "Orders without a tracked touch") == f"{untracked:,}"
    # attributed + untracked = every converting journey
    assert metric_value(page, "Attributed conversions") == f"{converting - untracked:,}"
    captions = " ".join(c.value for c in page.caption)
    assert f"Of {converting:,} converting journeys" in captions
    assert "model fitted" in captions and "Data to" in captions


def test_switching_model_changes_numbers(page):
    before = page.dataframe[0].value.set_index("Channel")["Conversions"]
    page.selectbox(key="model").set_value("first_touch").run()
    assert not page.exception
    after = page.dataframe[0].value.set_index("Channel")["Conversions"]
    assert not before.sort_index().round(3).equals(after.sort_index().round(3))


def test_switching_segment_changes_numbers(page):
    schemes = page.selectbox(key="scheme").options
    if len(schemes) < 2:
        pytest.skip("mart_customer is not built: only scheme 'all'")
    before = metric_value(page, "Attributed conversions")
    page.selectbox(key="scheme").set_value(schemes[1]).run()
    assert not page.exception
    assert metric_value(page, "Attributed conversions") != before


def test_renders_before_any_build(tmp_path, monkeypatch):
    from ccrm_core.foundation import store

    store.connect_writer(tmp_path / "empty.duckdb").close()
    monkeypatch.setenv("CCRM_DB", str(tmp_path / "empty.duckdb"))
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    assert any("build stage" in i.value for i in at.info)


# --- the view in the URL ----------------------------------------------------------------------


def _open(query: dict) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _link_warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if w.value.startswith("Link not fully applied")]


def _param(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def test_a_link_opens_the_scheme_segment_and_model(demo_db, demo_db_copy, monkeypatch):
    from ccrm_core.conductor import attribution, journeys
    from ccrm_core.foundation import store

    con = store.connect_reader(demo_db)  # the page holds its copy open: read the original
    try:
        segments = journeys.segments(con)
        scheme = segments["scheme"].iloc[-1]  # a segment scheme when mart_customer is built
        segment = segments.loc[segments["scheme"] == scheme, "segment"].iloc[-1]
        expected = attribution.load_attribution(con, scheme, segment)
    finally:
        con.close()
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    at = _open({"scheme": scheme, "segment": segment, "model": "first_touch"})
    assert _link_warnings(at) == []
    assert at.selectbox(key="scheme").value == scheme
    assert at.selectbox(key="segment").value == segment
    assert at.selectbox(key="model").value == "first_touch"
    shown = at.dataframe[0].value.set_index("Channel")["Conversions"].sort_index()
    first_touch = expected[expected["model"] == "first_touch"].set_index("channel")
    assert shown.round(6).tolist() == first_touch["conversions"].sort_index().round(6).tolist()


def test_changing_the_model_or_scheme_updates_the_link(demo_db_copy, monkeypatch):
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    at = _open({})
    assert "model" not in at.query_params  # defaults stay out of the link
    at.selectbox(key="model").set_value("linear").run()
    assert _param(at, "model") == "linear"
    at.selectbox(key="model").set_value("markov_1").run()
    assert "model" not in at.query_params
    if len(at.selectbox(key="scheme").options) > 1:
        at.selectbox(key="scheme").select_index(1).run()
        assert not at.exception
        scheme = at.selectbox(key="scheme").value
        assert scheme != "all" and _param(at, "scheme") == scheme


def test_a_bad_link_falls_back_to_the_defaults_with_a_note(demo_db_copy, monkeypatch):
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    at = _open({"model": "<script>x</script>", "scheme": "nope", "segment": "x" * 100_000})
    warnings = _link_warnings(at)
    assert len(warnings) == 3 and all(len(w) < 400 for w in warnings)
    assert any("model" in w and "markov" in w for w in warnings)
    assert at.selectbox(key="model").value == "markov_1"
    assert at.selectbox(key="scheme").value == at.selectbox(key="scheme").options[0]
    assert not any(k in at.query_params for k in ("model", "scheme", "segment"))
