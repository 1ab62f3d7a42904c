"""Reconciliation by media and segment: the split of the media mix model's incremental revenue
across segments by hand, its identities on the demo company, recovery of the planted
per-segment media revenue, the Attribution page's table and the Budget Simulator's focus."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import page_file
from streamlit.testing.v1 import AppTest

from ccrm_core.conductor import attribution, budget
from ccrm_core.foundation import pipeline, store

# Two segments a, b; channels email and sms (addressable, attributed) and tv (top-down only).
# Attributed revenue: a-email 300, b-email 100, a-sms 0, b-sms 100 -> overall a 300, b 200.
SEGMENT_ATTRIBUTION = pd.DataFrame(
    {
        "scheme": ["all", "all", "tier", "tier", "tier", "tier"],
        "segment": ["all", "all", "a", "b", "a", "b"],
        "channel": ["email", "sms", "email", "email", "sms", "sms"],
        "conversions": [4.0, 1.0, 3.0, 1.0, 0.0, 1.0],
        "value": [400.0, 100.0, 300.0, 100.0, 0.0, 100.0],
    }
)
TOP_DOWN = pd.DataFrame(
    {
        "channel": ["email", "sms", "tv"],
        "contribution": [200.0, 80.0, 1000.0],
        "contribution_low": [100.0, 40.0, 800.0],
        "contribution_high": [300.0, 120.0, 1200.0],
    }
)


def _hand_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    overall = SEGMENT_ATTRIBUTION[SEGMENT_ATTRIBUTION["scheme"] == "all"]
    rec = attribution.reconcile(overall, TOP_DOWN, revenue_per_conversion=50.0)
    return attribution.segment_split(SEGMENT_ATTRIBUTION, rec), rec


def test_split_by_hand():
    split, _ = _hand_split()
    assert split.columns.tolist() == attribution.SEGMENT_SPLIT_COLUMNS
    assert set(split["scheme"]) == {"tier"}  # scheme 'all' is the per-channel table itself
    cell = split.set_index(["segment", "channel"])
    # email: 200 x 300/400 and 200 x 100/400; factor 200/400
    assert cell.loc[("a", "email"), "incremental_revenue"] == 150.0
    assert cell.loc[("b", "email"), "incremental_revenue"] == 50.0
    assert cell.loc[("a", "email"), "incremental_revenue_low"] == 75.0
    assert cell.loc[("b", "email"), "incremental_revenue_high"] == 75.0
    assert cell.loc[("a", "email"), "calibration_factor"] == 0.5
    # sms: segment a has no attributed sms revenue, so it gets none of sms's 80
    assert cell.loc[("a", "sms"), "incremental_revenue"] == 0.0
    assert cell.loc[("b", "sms"), "incremental_revenue"] == 80.0
    assert cell.loc[("a", "sms"), "split_basis"] == "attributed"
    # tv: no touches, split by overall attributed share 300/500 and 200/500
    assert cell.loc[("a", "tv"), "split_basis"] == "overall"
    assert cell.loc[("a", "tv"), "incremental_revenue"] == pytest.approx(600.0)
    assert cell.loc[("b", "tv"), "incremental_revenue"] == pytest.approx(400.0)
    assert cell.loc[("a", "tv"), "incremental_revenue_low"] == pytest.approx(480.0)
    assert cell.loc[("b", "tv"), "incremental_revenue_high"] == pytest.approx(480.0)
    assert np.isnan(cell.loc[("a", "tv"), "calibration_factor"])
    assert cell.loc[("a", "tv"), "attributed_revenue"] == 0.0
    # per channel the segments add up to the media mix model's total (and interval ends)
    sums = split.groupby("channel")[
        ["incremental_revenue", "incremental_revenue_low", "incremental_revenue_high"]
    ].sum()
    expected = TOP_DOWN.set_index("channel").set_axis(sums.columns, axis=1)
    pd.testing.assert_frame_equal(sums, expected, check_names=False)
    # deterministic: same input, bit-identical output
    pd.testing.assert_frame_equal(split, _hand_split()[0])


def test_table_and_heatmap_by_hand():
    split, _ = _hand_split()
    table = attribution.segment_split_table(split)
    assert table.columns.tolist() == [
        "Segment",
        "TV *",
        "Email",
        "SMS",
        "All media",
        "Attributed revenue",
        "Calibration factor",
    ]
    row = table.set_index("Segment")
    assert row.loc["a"].tolist() == pytest.approx([600.0, 150.0, 0.0, 750.0, 300.0, 0.5])
    # b: (50 + 80) incremental over (100 + 100) attributed on the channels seen both ways
    assert row.loc["b"].tolist() == pytest.approx([400.0, 50.0, 80.0, 530.0, 200.0, 0.65])
    assert attribution.segment_split_money_columns(table) == table.columns[1:-1].tolist()
    fig = attribution.chart_segment_split(split)
    heat = fig.data[0]
    assert list(heat.x) == ["TV *", "Email", "SMS"] and list(heat.y) == ["a", "b"]
    np.testing.assert_allclose(np.asarray(heat.z), [[600, 150, 0], [400, 50, 80]])
    assert heat.text[0][0] == "600"  # money through the formatting layer (no currency set)


# --- the demo company -------------------------------------------------------------------------


def test_stage_split_adds_up_on_the_demo(demo_con):
    rec = attribution.load_reconciliation(demo_con).set_index("channel")
    schemes = attribution.segment_split_schemes(demo_con)
    assert {"rfm_segment", "value_tier", "needs_segment"} <= set(schemes)
    calibrated = demo_con.execute(
        "SELECT scheme, segment, channel, calibrated_revenue FROM mart_calibrated_attribution"
    ).df()
    for scheme in schemes:
        split = attribution.load_segment_split(demo_con, scheme)
        sums = split.groupby("channel")[["incremental_revenue", "incremental_revenue_low"]].sum()
        top_down = rec.loc[sums.index]
        np.testing.assert_allclose(sums["incremental_revenue"], top_down["incremental_revenue"])
        np.testing.assert_allclose(
            sums["incremental_revenue_low"], top_down["incremental_revenue_low"]
        )
        assert set(split.loc[~split["addressable"], "split_basis"]) == {"overall"}  # tv, print
        # where attribution credits the channel the cell is the calibrated attribution
        both = split[split["split_basis"] == "attributed"].merge(
            calibrated, on=["scheme", "segment", "channel"]
        )
        np.testing.assert_allclose(both["incremental_revenue"], both["calibrated_revenue"])


def test_recovers_the_planted_media_revenue_by_needs_segment(demo_con):
    """The generator plants which channel drove each media order (ground_truth_media_orders);
    needs segments differ in channel preference by design. Per addressable channel the split's
    segment shares must be close to the true shares of the channel's media revenue, and closer
    than one flat split by overall share. (Value tiers and RFM cells have no planted channel
    preference, so there the flat split is as good; only the identities above are checked.)"""
    truth = demo_con.execute(
        "SELECT CAST(c.needs_segment AS VARCHAR) AS segment, g.channel, sum(o.revenue) AS rev "
        "FROM ground_truth_media_orders g JOIN orders o USING (order_id) "
        "JOIN identity_map m ON m.source_system = o.source_system AND m.source_id = o.source_id "
        "JOIN mart_customer c ON c.customer_id = m.customer_id GROUP BY ALL"
    ).df()
    truth["true_share"] = truth["rev"] / truth.groupby("channel")["rev"].transform("sum")
    split = attribution.load_segment_split(demo_con, "needs_segment")
    flat = split[split["channel"] == "tv"][["segment", "segment_share"]]
    frame = (
        split[split["split_basis"] == "attributed"]
        .merge(truth, on=["segment", "channel"], how="left")
        .fillna({"true_share": 0.0})
        .merge(flat.rename(columns={"segment_share": "flat_share"}), on="segment")
    )
    frame["err"] = (frame["segment_share"] - frame["true_share"]).abs()
    frame["flat_err"] = (frame["flat_share"] - frame["true_share"]).abs()
    distance = frame.groupby("channel")[["err", "flat_err"]].sum() / 2  # total variation
    assert len(distance) >= 8
    assert (distance["err"] < 0.12).all(), distance
    assert distance["err"].mean() < 0.08, distance
    assert (distance["err"] < distance["flat_err"]).all(), distance


# --- the Attribution page ---------------------------------------------------------------------


def _split_table(at: AppTest) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "All media" in d.value.columns)


def test_attribution_page_shows_the_split_and_a_scheme_changes_it(demo_db_copy, monkeypatch):
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    at = AppTest.from_file(page_file("attribution"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    picker = at.selectbox(key="split_scheme")
    assert "Value tier" in picker.options  # the scheme as users call it
    assert any("incremental(segment, channel)" in c.value.replace("\\", "") for c in at.caption)
    picker.set_value("value_tier").run()
    assert not at.exception, at.exception
    tiers = _split_table(at)
    assert "Platinum (top 1%)" in set(tiers["Segment"])
    assert {"TV *", "Print *", "Email", "Direct mail"} <= set(tiers.columns)
    assert not any("_" in str(c) for c in tiers.columns)  # users' words, not column names
    at.selectbox(key="split_scheme").set_value("needs_segment").run()
    assert not at.exception, at.exception
    needs = _split_table(at)
    assert set(needs["Segment"]).isdisjoint(tiers["Segment"])
    # both schemes split the same media totals
    assert needs["All media"].sum() == pytest.approx(tiers["All media"].sum())


# --- the Budget Simulator's segment focus -------------------------------------------------------


def _curves() -> pd.DataFrame:
    return budget.validate_curves(
        pd.DataFrame(
            {
                "channel": ["email", "sms", "tv"],
                "addressable": [True, True, False],
                "adstock_decay": 0.0,
                "half_saturation": [100.0, 200.0, 300.0],
                "hill_slope": 1.0,
                "beta": [1000.0, 1500.0, 2500.0],
                "beta_low": [800.0, 1200.0, 2000.0],
                "beta_high": [1300.0, 1950.0, 3250.0],
                "current_daily_spend": [80.0, 150.0, 250.0],
                "revenue_per_conversion": [40.0, 50.0, 80.0],
                "calibration_factor": 1.0,
            }
        )
    )


@pytest.fixture()
def con(tmp_path):
    c = store.connect_writer(tmp_path / "focus.duckdb")
    yield c
    c.close()


def test_budget_focus_uses_the_segment_split(con):
    options = budget.segment_share_options(con)
    assert not options["available"] and "reconcile" in options["note"]
    split, _ = _hand_split()
    pipeline.replace_table(con, "mart_segment_reconciliation", split.assign(model="markov_1"))
    options = budget.segment_share_options(con)
    assert options["available"] and options["schemes"] == {"tier": ["a", "b"]}
    shares = budget.segment_revenue_shares(con, "tier", ["a"]).set_index("channel")
    # a's share: email 150/200, sms 0/80, tv 600/1000 (overall share)
    assert shares["share"].to_dict() == pytest.approx({"email": 0.75, "sms": 0.0, "tv": 0.6})
    assert shares.loc["tv", "split_basis"] == "overall"
    curves = _curves()
    focus_a = budget.apply_segment_shares(curves, shares.reset_index())
    assert focus_a.set_index("channel")["beta"].tolist() == pytest.approx([750.0, 0.0, 1500.0])
    # revenue is linear in beta: the segments' plans add up to the whole
    plan = budget.current_plan(curves)
    focus_b = budget.apply_segment_shares(curves, budget.segment_revenue_shares(con, "tier", ["b"]))
    whole = budget.predict(curves, plan).revenue
    parts = budget.predict(focus_a, plan).revenue + budget.predict(focus_b, plan).revenue
    assert parts == pytest.approx(whole)
    everyone = budget.apply_segment_shares(curves, budget.segment_revenue_shares(con, "tier"))
    assert everyone["beta"].tolist() == pytest.approx(curves["beta"].tolist())
    with pytest.raises(budget.BudgetError, match="scheme 'rfm_segment' is unknown"):
        budget.segment_revenue_shares(con, "rfm_segment")
    with pytest.raises(budget.BudgetError, match="segment 'c' is not in scheme"):
        budget.segment_revenue_shares(con, "tier", ["c"])
