"""Test and learn (issue 19 §3, §4): the activation readout against its holdout, recovered from
planted truth (the demo company and 100 simulated segments at scale S), checked by hand on a
small case; the power calculator against the closed form and a textbook value; the tab on the
Attribution page."""

from __future__ import annotations

import datetime as dt
import math
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import page_file
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from streamlit.testing.v1 import AppTest

from ccrm_core.conductor import audience
from ccrm_core.foundation import formatting, store

START = datetime(2026, 3, 2, 9, 0, 0)


def _activation_db(
    activations: list[tuple[str, float]],
    members: pd.DataFrame,
    orders: pd.DataFrame,
    exported_at: datetime = START,
) -> duckdb.DuckDBPyConnection:
    """In-memory database with the activation tables (migration 4) and customer_orders.
    activations: (name, holdout share); members: activation_id, customer_id, held_out;
    orders: customer_id, ts, revenue."""
    con = duckdb.connect()
    con.execute(store.MIGRATIONS[4])
    con.execute(
        "CREATE TABLE customer_orders (order_id VARCHAR, customer_id VARCHAR, ts TIMESTAMP, "
        "revenue DOUBLE)"
    )
    for i, (name, share) in enumerate(activations, start=1):
        con.execute(
            "INSERT INTO activations VALUES (?, ?, 'rfm_segment', ?, ?, ?, ?, 'test')",
            [i, name, f"Segment {i}", "meta" if i % 2 else "google_ads", share, exported_at],
        )
        part = members[members["activation_id"] == i]
        held = int(part["held_out"].sum())
        con.execute(
            "INSERT INTO activation_runs VALUES (?, 1, ?, 'test', ?, ?, ?, 0, ?, 0, NULL)",
            [i, exported_at, len(part), len(part) - held, held, len(part) - held],
        )
    con.register("m", members.assign(run=1))
    con.execute(
        "INSERT INTO activation_members SELECT activation_id, run, customer_id, held_out, "
        "NULL, NULL FROM m"
    )
    con.register("o", orders.assign(order_id=[f"O{i}" for i in range(len(orders))]))
    con.execute("INSERT INTO customer_orders SELECT order_id, customer_id, ts, revenue FROM o")
    return con


# -- hand-computed small case ------------------------------------------------------------------


def test_small_case_matches_the_formulas_by_hand():
    ids = [f"C{i:02d}" for i in range(20)]
    held = [False] * 10 + [True] * 10
    members = pd.DataFrame({"activation_id": 1, "customer_id": ids, "held_out": held})
    day = timedelta(days=1)
    # treated: C00..C04 buy (C00 twice), control: C10, C11 buy; plus orders the window excludes
    orders = pd.DataFrame(
        [
            ("C00", START + 1 * day, 50.0),
            ("C00", START + 2 * day, 30.0),
            ("C01", START + 3 * day, 20.0),
            ("C02", START + 5 * day, 40.0),
            ("C03", START + 10 * day, 10.0),
            ("C04", START + 30 * day, 60.0),  # the window's last instant: in
            ("C10", START + 4 * day, 25.0),
            ("C11", START + 8 * day, 35.0),
            ("C05", START - day, 99.0),  # before the export: out
            ("C12", START + 31 * day, 99.0),  # after the window: out
            ("C13", START, 99.0),  # at the export instant: out (strictly after)
        ],
        columns=["customer_id", "ts", "revenue"],
    )
    con = _activation_db([("Spring push", 0.5)], members, orders)
    row = audience.activation_readout(con, days=30, as_of=START + 60 * day).iloc[0]
    assert (row["treated"], row["control"]) == (10, 10)
    assert (row["treated_converters"], row["control_converters"]) == (5, 2)
    p_t, p_c = 0.5, 0.2
    assert row["lift"] == pytest.approx(0.3, abs=1e-12)
    assert row["relative_lift"] == pytest.approx(1.5)
    se = math.sqrt(p_t * (1 - p_t) / 10 + p_c * (1 - p_c) / 10)
    z975 = stats.norm.ppf(0.975)
    assert row["ci_low"] == pytest.approx(0.3 - z975 * se, abs=1e-12)
    assert row["ci_high"] == pytest.approx(0.3 + z975 * se, abs=1e-12)
    pooled = 7 / 20
    z = 0.3 / math.sqrt(pooled * (1 - pooled) * (1 / 10 + 1 / 10))
    assert row["p_value"] == pytest.approx(2 * (1 - stats.norm.cdf(z)), abs=1e-12)
    # the same as statsmodels
    low, high = confint_proportions_2indep(5, 10, 2, 10, method="wald", compare="diff")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), abs=1e-12)
    assert row["p_value"] == pytest.approx(proportions_ztest([5, 2], [10, 10])[1], abs=1e-12)
    # revenue per person (zeros for people without an order) and Welch's interval
    rev_t = np.array([80, 20, 40, 10, 60, 0, 0, 0, 0, 0], float)
    rev_c = np.array([25, 35, 0, 0, 0, 0, 0, 0, 0, 0], float)
    diff = rev_t.mean() - rev_c.mean()
    assert row["treated_revenue_per_person"] == pytest.approx(21.0)
    assert row["control_revenue_per_person"] == pytest.approx(6.0)
    assert row["incremental_revenue_per_person"] == pytest.approx(diff)
    welch = stats.ttest_ind(rev_t, rev_c, equal_var=False)
    ci = welch.confidence_interval(0.95)
    assert row["revenue_p_value"] == pytest.approx(welch.pvalue, rel=1e-9)
    assert row["incremental_revenue_per_person_low"] == pytest.approx(ci.low, rel=1e-9)
    assert row["incremental_revenue_per_person_high"] == pytest.approx(ci.high, rel=1e-9)
    assert row["incremental_revenue"] == pytest.approx(diff * 10)
    assert row["extra_orders"] == pytest.approx((6 / 10 - 2 / 10) * 10)
    assert bool(row["window_complete"]) and row["days_observed"] == 30 and row["note"] == ""
    # a window past the data is cut at the data's last day and flagged
    cut = audience.activation_readout(con, days=30, as_of=(START + 6 * day).date()).iloc[0]
    assert not cut["window_complete"] and cut["days_observed"] == 6  # 6 days 15 hours
    assert cut["treated_converters"] == 3 and "6 of 30 days" in cut["note"]
    # same data, same output, bit for bit
    again = audience.activation_readout(con, days=30, as_of=START + 60 * day)
    pd.testing.assert_frame_equal(
        again, audience.activation_readout(con, days=30, as_of=START + 60 * day), check_exact=True
    )


def test_no_holdout_says_so_and_has_no_lift():
    members = pd.DataFrame({"activation_id": 1, "customer_id": ["A", "B"], "held_out": False})
    orders = pd.DataFrame({"customer_id": ["A"], "ts": [START + timedelta(days=2)], "revenue": 9.0})
    con = _activation_db([("All in", 0.0)], members, orders)
    row = audience.activation_readout(con, as_of=START + timedelta(days=40)).iloc[0]
    assert row["control"] == 0 and row["treated_conversion"] == 0.5
    assert np.isnan(row["lift"]) and np.isnan(row["p_value"]) and np.isnan(row["ci_low"])
    assert row["note"].startswith("No holdout")
    assert audience.readout_summary(audience.activation_readout(con), "segment").empty
    with pytest.raises(ValueError, match="at least 1"):
        audience.activation_readout(con, days=0)


# -- 100 seeds at scale S ----------------------------------------------------------------------

SEGMENT_S = 4_000  # a segment of a 20,000-customer company (ccrm bench --scale S)


def _simulate(seeds: int = 100, size: int = SEGMENT_S, holdout: float = 0.2, uplift: float = 0.05):
    """`seeds` activations, one per seed, vectorised: members with a heterogeneous baseline
    chance of ordering in the 30 days (Beta(2, 14), mean 12.5%), held out by the app's own hash;
    each sent member makes one extra order with probability `uplift`. Returns the members,
    orders and the truth per activation (sent members' conversion with minus without the
    planted orders; planted revenue per sent member)."""
    frames, order_frames, truth = [], [], []
    for seed in range(seeds):
        rng = np.random.default_rng([seed, 19])
        ids = np.array([f"S{seed:03d}-{i:05d}" for i in range(size)], dtype=object)
        held = audience.is_held_out(f"activation {seed}", ids, holdout)
        base = rng.random(size) < rng.beta(2, 14, size)
        extra = ~held & (rng.random(size) < uplift)
        spend = rng.gamma(2.0, 40.0, size)
        noise = rng.random(size) < 0.3  # orders outside the window (before, after)
        t_base = rng.uniform(0.01, 29.99, size)
        t_extra = rng.uniform(0.01, 29.99, size)
        rows = [
            (ids[base], t_base[base], spend[base]),
            (ids[extra], t_extra[extra], np.round(rng.gamma(2.0, 30.0, size)[extra], 2)),
            (ids[noise], rng.choice([-5.0, 35.0], size)[noise], spend[noise]),
        ]
        for who, t, revenue in rows:
            order_frames.append(
                pd.DataFrame(
                    {
                        "customer_id": who,
                        "ts": pd.Timestamp(START) + pd.to_timedelta(np.round(t * 86400), "s"),
                        "revenue": revenue,
                    }
                )
            )
        frames.append(
            pd.DataFrame({"activation_id": seed + 1, "customer_id": ids, "held_out": held})
        )
        sent = ~held
        with_ = (base | extra)[sent].mean()
        truth.append(
            {
                "true_lift": with_ - base[sent].mean(),
                "true_revenue": rows[1][2].sum() / sent.sum(),
            }
        )
    names = [(f"activation {s}", holdout) for s in range(seeds)]
    con = _activation_db(names, pd.concat(frames), pd.concat(order_frames))
    return con, pd.DataFrame(truth)


def test_planted_lift_is_inside_the_interval_in_at_least_90_of_100_seeds():
    con, truth = _simulate()
    readout = audience.activation_readout(con, days=30, as_of=START + timedelta(days=60))
    readout = readout.set_index(readout["activation"].str.split().str[1].astype(int)).sort_index()
    assert len(readout) == 100 and (readout["control"] > 0.15 * SEGMENT_S).all()
    lift_in = (readout["ci_low"] <= truth["true_lift"]) & (truth["true_lift"] <= readout["ci_high"])
    revenue_in = (readout["incremental_revenue_per_person_low"] <= truth["true_revenue"]) & (
        truth["true_revenue"] <= readout["incremental_revenue_per_person_high"]
    )
    assert lift_in.sum() >= 90, lift_in.sum()
    assert revenue_in.sum() >= 90, revenue_in.sum()
    # the effect is there: most tests find it, and the mean estimate is near the truth
    assert (readout["p_value"] < 0.05).mean() > 0.8
    assert abs(readout["lift"].mean() - truth["true_lift"].mean()) < 0.005
    # by destination: the treated-weighted combination of the activations
    summary = audience.readout_summary(readout, "destination").set_index("destination")
    meta = readout[readout["destination"] == "meta"]
    expected = (meta["lift"] * meta["treated"]).sum() / meta["treated"].sum()
    assert summary.loc["meta", "lift"] == pytest.approx(expected)
    assert summary.loc["meta", "ci_low"] < expected < summary.loc["meta", "ci_high"]


# -- the generated company ---------------------------------------------------------------------


def test_planted_activations_are_recovered_on_the_demo(demo_con):
    truth = demo_con.execute("SELECT * FROM ground_truth_activation ORDER BY activation").df()
    assert len(truth) == 2
    days = int(truth["window_days"].iloc[0])
    readout = audience.activation_readout(demo_con, days=days).set_index("activation")
    for _, t in truth.iterrows():
        row = readout.loc[t["activation"]]
        assert bool(row["window_complete"])
        # identity resolution keeps the members (one customer per person here)
        assert abs(row["treated"] - t["treated"]) <= 2 and abs(row["control"] - t["control"]) <= 2
        assert row["ci_low"] <= t["true_lift"] <= row["ci_high"], (row["lift"], t["true_lift"])
        low, high = row[
            ["incremental_revenue_per_person_low", "incremental_revenue_per_person_high"]
        ]
        assert low <= t["true_incremental_revenue_per_person"] <= high
    strong = readout.loc["Deal hunters win-back on Meta"]
    assert strong["p_value"] < 0.01 and strong["lift"] > 0
    outcomes = audience.segment_activation_outcomes(demo_con, days=days)
    assert set(outcomes["activation"]) == set(truth["activation"]) and outcomes["latest"].all()


def test_command_center_outcomes_are_the_readout_of_the_period(demo_con):
    """The closed loop beside the KPI tiles: the activations sent in the period, with the
    readout's own lift and incremental revenue as of the period's last day."""
    truth = demo_con.execute("SELECT * FROM ground_truth_activation ORDER BY activation").df()
    sent = pd.Timestamp(truth["exported_at"].iloc[0]).date()
    last = sent + dt.timedelta(days=40)
    tiles, note = audience.period_outcomes(demo_con, sent - dt.timedelta(days=5), last)
    assert [t.label for t in tiles] == sorted(truth["activation"])  # same export day: by name
    assert "in this period" in note
    readout = audience.activation_readout(
        demo_con, 30, dt.datetime.combine(last, dt.time.max)
    ).set_index("activation")
    for tile in tiles:
        row = readout.loc[tile.label]
        assert tile.value == f"{100 * row['lift']:+.1f} pts"
        assert formatting.money(row["incremental_revenue"], sign=True, whole=True) in tile.delta
        assert f"to {int(row['treated']):,} people, {int(row['control']):,} held out" in (
            tile.caption
        )
    # one segment only, and a period before any export
    [one] = audience.period_outcomes(demo_con, sent, last, scheme="saved", segment="Deal hunters")[
        0
    ]
    assert one.label == "Deal hunters win-back on Meta"
    tiles, note = audience.period_outcomes(demo_con, sent + dt.timedelta(days=1), last)
    assert tiles == [] and f"sent on {formatting.date_text(sent)}" in note


def test_an_export_changes_the_readouts_cache_key():
    """The pages cache the readouts by data version and `exports_version`: an export (which
    does not change the data version) must change the latter."""
    members = pd.DataFrame({"activation_id": 1, "customer_id": ["A", "B"], "held_out": [0, 1]})
    con = _activation_db([("First", 0.5)], members.astype({"held_out": bool}), pd.DataFrame(
        {"customer_id": ["A"], "ts": [START + timedelta(days=1)], "revenue": [10.0]}
    ))  # fmt: skip
    before = audience.exports_version(con)
    con.execute(
        "INSERT INTO activation_runs VALUES (1, 2, ?, 'test', 2, 1, 1, 0, 0, 0, NULL)",
        [START + timedelta(days=3)],
    )
    assert audience.exports_version(con) != before
    assert audience.exports_version(duckdb.connect()) == "none"


# -- power calculator --------------------------------------------------------------------------


def _closed_form_lift(n, p0, h, alpha=0.05, power=0.8):
    """Fixed point of d = (z_a + z_b) sqrt(p1 q1 / n_t + p0 q0 / n_c), p1 = p0 + d."""
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    d = 0.01
    for _ in range(200):
        d = z * math.sqrt((p0 + d) * (1 - p0 - d) / ((1 - h) * n) + p0 * (1 - p0) / (h * n))
    return d


def test_power_textbook_683_per_group():
    # p0 = 10%, p1 = 15%, alpha 5% two-sided, power 80%, equal groups: 683 per group
    # (unpooled normal approximation: (1.96 + 0.8416)^2 (0.09 + 0.1275) / 0.05^2 = 682.8)
    assert (
        audience.detectable_lift(2 * 683, 0.10, 0.5)
        <= 0.05
        < audience.detectable_lift(2 * 682, 0.10, 0.5)
    )
    # the smallest holdout reaching the power: with p1 q1 > p0 q0 a bit less than half will do
    # (unequal groups), and it detects exactly 5 points
    share = audience.holdout_share_needed(2 * 683, 0.10, 0.05)
    assert 0.35 < share < 0.5
    assert audience.detectable_lift(2 * 683, 0.10, share) == pytest.approx(0.05, rel=1e-9)


@pytest.mark.parametrize(
    ("n", "p0", "h"), [(4000, 0.125, 0.2), (50_000, 0.03, 0.1), (800, 0.4, 0.3)]
)
def test_power_matches_the_closed_form_both_ways(n, p0, h):
    d = audience.detectable_lift(n, p0, h)
    assert d == pytest.approx(_closed_form_lift(n, p0, h), rel=1e-9)
    assert audience.holdout_share_needed(n, p0, d) == pytest.approx(h, rel=1e-6)
    # a larger lift needs a smaller holdout; stricter settings need a larger one
    assert audience.holdout_share_needed(n, p0, 1.2 * d) < h
    assert audience.detectable_lift(n, p0, h, alpha=0.01, power=0.9) > d


def test_power_refuses_impossible_inputs_and_says_what_is_possible():
    smallest = audience.detectable_lift(1000, 0.05, 0.5)
    with pytest.raises(
        ValueError,
        match=f"smallest detectable lift at a 50% holdout is {smallest * 100:.2f} points",
    ):
        audience.holdout_share_needed(1000, 0.05, 0.005)
    with pytest.raises(ValueError, match="baseline conversion"):
        audience.holdout_share_needed(1000, 0.0, 0.01)
    with pytest.raises(ValueError, match="above 0"):
        audience.holdout_share_needed(1000, 0.05, -0.01)
    with pytest.raises(ValueError, match="at most 50%"):
        audience.detectable_lift(1000, 0.05, 0.6)
    with pytest.raises(ValueError, match="at least 4 people"):
        audience.detectable_lift(2, 0.05, 0.2)


# -- the page ----------------------------------------------------------------------------------


@pytest.fixture()
def page(demo_db_copy, monkeypatch):
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    at = AppTest.from_file(page_file("attribution"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def _readout_frame(at) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "activation" in d.value.columns)


def test_test_and_learn_tab_shows_the_planted_activation(page):
    frame = _readout_frame(page)
    assert "Deal hunters win-back on Meta" in set(frame["activation"])
    assert "Meta Custom Audience" in set(frame["destination"])  # in users' words
    before = frame.set_index("activation")["lift"]
    page.number_input(key="tl_days").set_value(10).run()
    assert not page.exception
    after = _readout_frame(page).set_index("activation")["lift"]
    assert not before.round(6).equals(after.round(6))
    # power calculator: defaults from the chosen activation, output = the core function
    size = page.number_input(key="tl_size").value
    baseline = page.number_input(key="tl_baseline").value
    page.number_input(key="tl_lift").set_value(10.0).run()
    share = audience.holdout_share_needed(size, baseline / 100, 0.10)
    shown = next(m.value for m in page.metric if m.label == "Holdout share needed")
    assert shown == f"{share:.1%}"
    page.radio(key="tl_mode").set_value("Smallest detectable lift").run()
    page.number_input(key="tl_holdout").set_value(30.0).run()
    lift = audience.detectable_lift(size, baseline / 100, 0.30)
    shown = next(m.value for m in page.metric if m.label == "Smallest detectable lift")
    assert shown == f"{lift * 100:.2f} points"
    assert any("d = " in latex.value for latex in page.latex)
    # too small a lift for the segment: the page says what is possible
    page.radio(key="tl_mode").set_value("Holdout share needed").run()
    page.number_input(key="tl_lift").set_value(0.01).run()
    assert any("smallest detectable lift" in w.value for w in page.warning)
