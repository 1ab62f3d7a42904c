"""Segment Explorer: exports to Google Ads and Meta, activations and bids on the page."""

from __future__ import annotations

import pytest
from conftest import metric_value, page_file
from streamlit.testing.v1 import AppTest

from ccrm_core.conductor import audience
from ccrm_core.foundation import store

PAGE = page_file("segment_explorer")


@pytest.fixture()
def page(demo_db_copy, monkeypatch):
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    at.db_path = demo_db_copy
    return at


def _read(path, fn, *args):
    con = store.connect_writer(path)  # the app in this process holds it read-write
    try:
        return fn(con, *args)
    finally:
        con.close()


def _planted_names(con) -> list[str]:
    return [
        name
        for (name,) in con.execute(
            "SELECT name FROM activations WHERE created_by = 'ccrm sample' "
            "ORDER BY activation_id DESC"
        ).fetchall()
    ]


def test_meta_export_with_activation_and_history(page):
    segment = page.selectbox(key="drill_segment").value
    page.radio(key="export_destination").set_value("meta").run()
    assert not page.exception, page.exception
    want = _read(page.db_path, audience.build_destination_audience, "rfm_segment", segment, "meta")
    assert metric_value(page, "People who can be sent") == f"{len(want.people):,}"
    assert metric_value(page, "Left out") == f"{want.excluded:,}"
    page.text_input(key="activation_name").input("Spring push").run()
    page.slider(key="activation_holdout").set_value(10).run()
    page.button(key="destination_prepare").click().run()
    assert not page.exception, page.exception
    assert any("Export 1 of activation Spring push" in s.value for s in page.success)
    history = _read(page.db_path, audience.activation_history, "Spring push")
    assert list(history["run"]) == [1] and history["held_out"].iloc[0] > 0
    assert history["sent"].iloc[0] + history["held_out"].iloc[0] == len(want.people)
    # the bids tab lists the activation and prices every segment
    frames = [d.value for d in page.dataframe]
    listed = next(f for f in frames if "holdout_share" in f.columns)
    # newest first, then the demo's planted activations (ccrm sample, stage sample_activations)
    assert list(listed["activation"]) == ["Spring push", *_read(page.db_path, _planted_names)]
    bids = next(f for f in frames if "bid_multiplier" in f.columns)
    expected = _read(page.db_path, audience.segment_bids, "rfm_segment")
    assert list(bids["segment"]) == list(expected["segment"])
    assert list(bids["bid_multiplier"]) == list(expected["bid_multiplier"])
    assert (bids["reach_meta"] <= bids["customers"]).all()


def test_changing_the_destination_changes_who_can_be_sent(page):
    page.radio(key="export_destination").set_value("google_ads").run()
    google = metric_value(page, "People who can be sent")
    segment = page.selectbox(key="drill_segment").value
    want = _read(
        page.db_path, audience.build_destination_audience, "rfm_segment", segment, "google_ads"
    )
    assert google == f"{len(want.people):,}"
    page.radio(key="export_destination").set_value("generic").run()
    assert not page.exception
    assert "Exportable" in [m.label for m in page.metric]
