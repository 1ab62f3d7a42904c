"""Lift tests calibrate the media mix model inside the fit: the likelihood term and its
gradient by hand, tests that cannot be used, the generator's collinear spend and lift test, and
recovery on planted truth where two channels' spend moves together."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from ccrm_core.conductor import budget, mmm
from ccrm_core.conductor.mmm.problem import _Problem
from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext


def _small_problem() -> _Problem:
    rng = np.random.default_rng(0)
    n = 120
    x = rng.lognormal(0, 0.5, (n, 3)) * (rng.random((n, 3)) < 0.7) * 100
    base = np.column_stack([np.ones(n), np.arange(n) / n])
    y = 1000 + x @ np.array([2.0, 1.0, 3.0]) + rng.normal(0, 50, n)
    return _Problem(y, x, base, ridge=1.0)


def test_lift_term_is_a_weighted_residual_of_the_window_contribution():
    """loss = data RSS + ((beta_c sum_window h_c - lift) * sigma / se)^2 + ridge, scaled units."""
    problem = _small_problem()
    params = np.array([0.3, 0.1, 1.2, 0.5, -0.2, 1.5, 0.2, 0.3, 2.0])
    h, _ = problem.columns(params)
    days = np.zeros((1, problem.n_days))
    days[0, 10:40] = 1
    problem.set_lift_tests(days, np.array([2]), np.array([9000.0]), np.array([900.0]), 0.05)
    beta, resid, loss = problem.solve(h)
    modelled = beta[2] * h[10:40, 2].sum() * problem.y_scale
    by_hand = ((modelled - 9000.0) / 900.0 * 0.05) ** 2
    assert loss == pytest.approx(resid @ resid + problem.ridge * beta @ beta + by_hand)


def test_lift_term_gradient_matches_finite_differences():
    problem = _small_problem()
    days = np.zeros((2, problem.n_days))
    days[0, 10:40] = 1
    days[1, 50:90] = 1
    problem.set_lift_tests(
        days, np.array([0, 2]), np.array([5000.0, 9000.0]), np.array([500.0, 900.0]), 0.05
    )
    params = np.array([0.3, 0.1, 1.2, 0.5, -0.2, 1.5, 0.2, 0.3, 2.0])
    _, grad = problem.objective(params)
    step = 1e-6
    numeric = [
        (problem.objective(params + e)[0] - problem.objective(params - e)[0]) / (2 * step)
        for e in np.eye(len(params)) * step
    ]
    assert grad == pytest.approx(numeric, rel=1e-4, abs=1e-7)


def test_unusable_lift_tests_are_listed_with_the_reason():
    from tests.test_mmm import simulate

    dates, revenue, spend, _ = simulate(days=200, n_channels=2, seed=4)
    tests = pd.DataFrame(
        {
            "test_id": ["a", "b", "c"],
            "channel": ["ch0", "tv", "ch1"],
            "start_date": [dates[150], dates[10], dates[190]],
            "end_date": [dates[170], dates[30], dates[190] + pd.Timedelta(days=30)],
            "lift": [1.0, 1.0, 1.0],
            "standard_error": [0.0, 1.0, 1.0],
        }
    )
    result = mmm.fit_mmm(dates, revenue, spend, n_bootstrap=0, lift_tests=tests)
    notes = result.lift_tests.set_index("test_id")["note"]
    assert not result.lift_tests["used"].any() and not result.calibrated
    assert notes["a"] == "standard error must be positive"
    assert notes["b"] == "no spend on this channel in the data"
    assert notes["c"].startswith("window outside the modelled days")


def test_a_lift_test_moves_the_channels_window_contribution_to_the_measurement():
    from tests.test_mmm import simulate

    dates, revenue, spend, _ = simulate(days=365, n_channels=3, seed=8)
    plain = mmm.fit_mmm(dates, revenue, spend, n_bootstrap=0)
    modelled = plain.contributions[100:142, 0].sum()
    tests = pd.DataFrame(
        {
            "test_id": ["geo-1"],
            "channel": ["ch0"],
            "start_date": [dates[100]],
            "end_date": [dates[141]],
            "lift": [1.6 * modelled],
            "standard_error": [0.05 * modelled],
        }
    )
    result = mmm.fit_mmm(dates, revenue, spend, n_bootstrap=20, lift_tests=tests)
    row = result.lift_tests.iloc[0]
    assert result.calibrated and bool(row["used"])
    assert row["fitted_lift_uncalibrated"] == pytest.approx(modelled)
    # pulled from the data's answer to within a few standard errors of the measurement
    assert abs(row["fitted_lift"] - row["measured_lift"]) < 3 * row["standard_error"]
    assert row["fitted_lift_low"] <= row["fitted_lift"] <= row["fitted_lift_high"]
    assert row["fitted_lift"] == pytest.approx(result.contributions[100:142, 0].sum())


def test_generator_lift_test_and_collinear_spend_leave_the_default_data_alone():
    sample = pytest.importorskip("ccrm_core.synthetic.sample")
    default = sample.generate(300, 120, 5)
    without = sample.generate(300, 120, 5, lift_test_channel=None)
    for table in store.RAW_TABLES:
        if table != "lift_tests":
            pd.testing.assert_frame_equal(default[table], without[table])
    assert without["lift_tests"].empty
    [test] = default["lift_tests"].itertuples()
    assert (test.channel, test.metric) == ("paid_search", "revenue") and test.standard_error > 0
    collinear = sample.generate(300, 120, 5, collinear=("paid_search", "social"))
    wide = collinear["spend"].pivot_table(index="date", columns="channel", values="spend")
    assert wide["paid_search"].corr(wide["social"]) > 0.95
    plain = default["spend"].pivot_table(index="date", columns="channel", values="spend")
    assert plain["paid_search"].corr(plain["social"]) < 0.5
    with pytest.raises(ValueError, match="unknown media channel"):
        sample.generate(300, 120, 5, collinear=("paid_search", "radio"))


# Planted collinear spend: social's daily spend follows paid search's (correlation ~0.98), so
# the data alone cannot split their joint revenue; one lift test on paid search can.
COLLINEAR = ("paid_search", "social")


@pytest.fixture(scope="module")
def collinear_company(tmp_path_factory):
    sample = pytest.importorskip("ccrm_core.synthetic.sample")
    data = sample.generate(
        50_000, 730, 7, collinear=COLLINEAR, lift_test_channel=COLLINEAR[0], activations=False
    )
    con = store.connect_writer(tmp_path_factory.mktemp("calibration") / "mmm.duckdb")
    for table in ("spend", "orders", "experiments", "lift_tests"):
        cols = ", ".join(store.TABLES[table].column_names)
        con.register("_frame", data[table])
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _frame")  # noqa: S608
        con.unregister("_frame")
    ctx = BuildContext(as_of=date(2026, 6, 30), run_id=1, params={"mmm": {"bootstrap": 60}})
    mmm.mmm_stage(con, ctx)
    yield con, data
    con.close()


def test_one_lift_test_recovers_both_collinear_channels(collinear_company):
    con, data = collinear_company
    truth = data["ground_truth_channels"].set_index("channel")
    channels = mmm.load_channels(con).set_index("channel").loc[list(COLLINEAR)]
    true_roi, true_share = (
        truth.loc[list(COLLINEAR), "true_roi"],
        truth.loc[list(COLLINEAR), "true_share"],
    )
    report = channels[["roi_uncalibrated", "roi", "roi_low", "roi_high", "share"]].assign(
        true_roi=true_roi, true_share=true_share
    )
    # without the lift test: each collinear channel's ROI is off by more than a third
    before = (channels["roi_uncalibrated"] - true_roi).abs() / true_roi
    assert (before > 1 / 3).all(), report
    # with it: both inside their 90% intervals and their shares within 3 points
    assert ((channels["roi_low"] <= true_roi) & (true_roi <= channels["roi_high"])).all(), report
    assert (channels["share"] - true_share).abs().max() < 0.03, report
    before_share = (channels["share_uncalibrated"] - true_share).abs().max()
    assert before_share > (channels["share"] - true_share).abs().max(), report
    assert channels.loc[COLLINEAR[0], "lift_tests"] == 1


def test_the_lift_tests_used_and_the_budget_curves_are_the_calibrated_fit(collinear_company):
    con, _ = collinear_company
    [row] = mmm.load_lift_tests_used(con).itertuples()
    assert row.used and row.channel == COLLINEAR[0]
    assert abs(row.fitted_lift - row.measured_lift) < 2 * row.standard_error
    assert abs(row.fitted_lift_uncalibrated - row.measured_lift) > 2 * row.standard_error
    # the budget simulator reads mart_response_curves, which hold the calibrated curves
    curves = budget.load_curves(con).set_index("channel")
    channels = mmm.load_channels(con).set_index("channel")
    assert (curves["calibration_factor"] == 1.0).all()
    assert curves["roi"].to_dict() == pytest.approx(channels["roi"].to_dict())
    assert curves.loc[COLLINEAR[0], "roi"] != pytest.approx(
        channels.loc[COLLINEAR[0], "roi_uncalibrated"], rel=0.05
    )


def test_ingest_checks_lift_tests(tmp_path):
    from ccrm_core.foundation import ingest

    path = tmp_path / "lift_tests.csv"
    path.write_text(
        "test_id,channel,start_date,end_date,metric,lift,standard_error\n"
        "L1,tv,2024-01-01,2024-01-28,revenue,1500,300\n"
        "L2,tv,2024-01-01,2024-01-28,clicks,1500,300\n"
        "L3,tv,2024-01-01,2024-01-28,conversions,12,0\n"
        "L4,tv,2024-02-01,2024-01-28,revenue,1500,300\n"
    )
    con = store.connect_writer(tmp_path / "t.duckdb")
    [report] = ingest.ingest_files(con, [path], max_reject_rate=0.9)
    assert (report.table, report.rows_loaded, report.rows_rejected) == ("lift_tests", 1, 3)
    got = con.execute("SELECT line, column_name FROM ingest_rejects ORDER BY line").fetchall()
    assert got == [(3, "metric"), (4, "standard_error"), (5, "end_date")]
    con.close()
