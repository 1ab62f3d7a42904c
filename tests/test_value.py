"""ccrm_core.radar.value: RFM summary, scores, BG/NBD and Gamma-Gamma fits, predictions, CLV."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.special import beta as beta_fn
from scipy.special import gamma as gamma_fn

from ccrm_core.radar import value

# A hand-computed example (observation end 2024-03-11, weeks of 7 days):
# A: 01-01 (10 + 5, one purchase day), 01-15 (20), 02-12 (30)
#    -> frequency 2, recency 42 d = 6 w, T 70 d = 10 w, monetary (20 + 30) / 2 = 25
# B: 03-04 (40) -> frequency 0, recency 0, T 1 w, monetary 0
# C: 02-26 (10); 03-12 (99) is after the end and ignored -> frequency 0, T 2 w
# D: 01-08 (12), 03-11 (18, the end day counts) -> frequency 1, recency 9 w, T 9 w, monetary 18
TRANSACTIONS = pd.DataFrame(
    [
        ("A", "2024-01-01 09:00", 10.0),
        ("A", "2024-01-01 17:30", 5.0),
        ("A", "2024-01-15 12:00", 20.0),
        ("A", "2024-02-12 08:00", 30.0),
        ("B", "2024-03-04 10:00", 40.0),
        ("C", "2024-02-26 10:00", 10.0),
        ("C", "2024-03-12 10:00", 99.0),
        ("D", "2024-01-08 10:00", 12.0),
        ("D", "2024-03-11 23:59", 18.0),
    ],
    columns=["customer_id", "ts", "revenue"],
)
TRANSACTIONS["ts"] = pd.to_datetime(TRANSACTIONS["ts"])
END = date(2024, 3, 11)
EXPECTED = pd.DataFrame(
    {
        "customer_id": ["A", "B", "C", "D"],
        "orders": [4, 1, 1, 2],
        "revenue": [65.0, 40.0, 10.0, 30.0],
        "frequency": [2, 0, 0, 1],
        "recency": [6.0, 0.0, 0.0, 9.0],
        "T": [10.0, 1.0, 2.0, 9.0],
        "monetary_value": [25.0, 0.0, 0.0, 18.0],
    }
)


def test_rfm_summary_on_a_hand_computed_example():
    got = value.rfm_summary(TRANSACTIONS, END)
    pd.testing.assert_frame_equal(
        got[EXPECTED.columns].reset_index(drop=True), EXPECTED, check_dtype=False
    )
    assert list(got["first_order_date"]) == [
        date(2024, 1, 1),
        date(2024, 3, 4),
        date(2024, 2, 26),
        date(2024, 1, 8),
    ]
    assert list(got["last_order_date"])[0] == date(2024, 2, 12)


def test_rfm_summary_in_days():
    got = value.rfm_summary(TRANSACTIONS, END, time_unit="D").set_index("customer_id")
    assert got.loc["A", "recency"] == 42 and got.loc["A", "T"] == 70


def _customer_orders_db(transactions: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("tx", transactions)
    con.execute("CREATE TABLE customer_orders AS SELECT customer_id, ts, revenue FROM tx")
    return con


def test_sql_summary_equals_pandas_summary():
    con = _customer_orders_db(TRANSACTIONS)
    sql = value.rfm_summary_sql(con, END)
    pd.testing.assert_frame_equal(
        sql[EXPECTED.columns].reset_index(drop=True), EXPECTED, check_dtype=False
    )


def test_sql_summary_equals_pandas_summary_on_random_data():
    rng = np.random.default_rng(5)
    n = 4000
    tx = pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in rng.integers(0, 700, n)],
            "ts": pd.Timestamp("2023-01-01")
            + pd.to_timedelta(rng.integers(0, 400 * 24 * 60, n), unit="min"),
            "revenue": rng.gamma(2.0, 20.0, n).round(2),
        }
    )
    end = date(2024, 1, 20)  # some orders fall after the end
    con = _customer_orders_db(tx)
    sql = value.rfm_summary_sql(con, end).sort_values("customer_id").reset_index(drop=True)
    pan = value.rfm_summary(tx, end).sort_values("customer_id").reset_index(drop=True)
    cols = ["customer_id", "orders", "frequency", "first_order_date", "last_order_date"]
    pd.testing.assert_frame_equal(sql[cols], pan[cols], check_dtype=False)
    for col in ("revenue", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(sql[col], pan[col], rtol=1e-12, atol=1e-9)


def test_quintile_scores_share_ties_and_span_one_to_five():
    s = pd.Series([1, 1, 1, 1, 2, 3, 4, 5, 6, 7])
    # strictly worse: 0,0,0,0,4,5,6,7,8,9 -> 1 + floor(5 * worse / 10)
    assert list(value.quintile_score(s)) == [1, 1, 1, 1, 3, 3, 4, 4, 5, 5]
    assert list(value.quintile_score(s, higher_is_better=False))[-1] == 1


def test_rfm_segment_names():
    r = pd.Series([5, 5, 3, 1, 1, 2, 5, 4, 3, 3, 2, 1])
    f = pd.Series([5, 3, 4, 5, 3, 4, 2, 1, 2, 1, 1, 1])
    m = pd.Series([5, 3, 3, 5, 2, 1, 2, 1, 1, 1, 1, 1])
    assert list(value.rfm_segment_names(r, f, m)) == [
        "Champions",
        "Loyal",
        "Loyal",
        "Cannot lose them",
        "At risk",
        "At risk",
        "Potential loyalist",
        "Promising",
        "Need attention",
        "About to sleep",
        "Hibernating",
        "Lost",
    ]


def test_every_score_combination_gets_a_named_segment():
    grid = np.array([(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)])
    names = value.rfm_segment_names(grid[:, 0], grid[:, 1], grid[:, 2])
    assert set(names) <= set(value.RFM_SEGMENT_ORDER)


def _direct_bgnbd_loglik(r, alpha, a, b, x, tx, T):
    """The BG/NBD likelihood written out plainly (no log-space tricks), for small numbers."""
    total = 0.0
    for xi, txi, Ti in zip(x, tx, T, strict=True):
        term = (
            beta_fn(a, b + xi)
            / beta_fn(a, b)
            * gamma_fn(r + xi)
            * alpha**r
            / gamma_fn(r)
            / (alpha + Ti) ** (r + xi)
        )
        if xi > 0:
            term += (
                beta_fn(a + 1, b + xi - 1)
                / beta_fn(a, b)
                * gamma_fn(r + xi)
                * alpha**r
                / gamma_fn(r)
                / (alpha + txi) ** (r + xi)
            )
        total += np.log(term)
    return total


def test_bgnbd_log_likelihood_matches_the_plain_formula():
    x, tx, T = [0, 1, 2, 5, 3], [0.0, 3.0, 10.5, 30.0, 4.0], [8.0, 20.0, 30.0, 31.0, 52.0]
    params = {"r": 0.8, "alpha": 5.0, "a": 0.9, "b": 3.0}
    got = value.bgnbd_log_likelihood(params, x, tx, T)
    want = _direct_bgnbd_loglik(0.8, 5.0, 0.9, 3.0, x, tx, T)
    assert got == pytest.approx(want, rel=1e-10)


def test_bgnbd_log_likelihood_is_finite_for_heavy_buyers():
    # 400 repeats: plain Gamma functions overflow, the log-space form must not
    got = value.bgnbd_log_likelihood(
        {"r": 0.5, "alpha": 2.0, "a": 0.7, "b": 2.0}, [400, 0], [100.0, 0.0], [104.0, 104.0]
    )
    assert np.isfinite(got)


TRUE_BG = {"r": 0.8, "alpha": 6.0, "a": 0.9, "b": 4.0}
TRUE_GG = {"p": 6.0, "q": 4.0, "v": 15.0}


@pytest.fixture(scope="module")
def simulated():
    """20,000 customers from known parameters, acquired uniformly over two years."""
    rng = np.random.default_rng(11)
    T = rng.uniform(4, 104, 20_000)
    sim = value.simulate_bgnbd(20_000, **TRUE_BG, T=T, seed=12)
    sim["monetary_value"] = value.simulate_gamma_gamma(sim["frequency"], **TRUE_GG, seed=13)
    return sim


def test_fit_bgnbd_recovers_parameters_within_three_standard_errors(simulated):
    fit = value.fit_bgnbd(simulated)
    assert fit.converged
    for name, true in TRUE_BG.items():
        got, se = getattr(fit, name), fit.std_errors[name]
        assert 0 < se < 0.15 * true, (name, se)  # the test has power: errors are small
        assert abs(got - true) < 3 * se, (name, got, true, se)
    # the optimum is a maximum: the true parameters fit the sample no better
    truth = value.bgnbd_log_likelihood(
        TRUE_BG, simulated["frequency"], simulated["recency"], simulated["T"]
    )
    assert fit.log_likelihood >= truth


def test_fit_gamma_gamma_recovers_parameters_within_three_standard_errors(simulated):
    fit = value.fit_gamma_gamma(simulated)
    assert fit.converged
    assert fit.n_customers == int((simulated["frequency"] > 0).sum())
    for name, true in TRUE_GG.items():
        got, se = getattr(fit, name), fit.std_errors[name]
        assert 0 < se < 0.15 * true, (name, se)
        assert abs(got - true) < 3 * se, (name, got, true, se)


def test_fit_with_weights_equals_fit_on_repeated_rows():
    base = value.simulate_bgnbd(600, **TRUE_BG, T=52.0, seed=3)
    repeated = pd.concat([base, base], ignore_index=True)
    a = value.fit_bgnbd(repeated)
    b = value.fit_bgnbd(base, weights=np.full(len(base), 2.0))
    assert a.r == pytest.approx(b.r, rel=1e-6) and a.b == pytest.approx(b.b, rel=1e-6)


def test_probability_alive_formula():
    fit = value.BGNBDFit(r=0.8, alpha=6.0, a=0.9, b=4.0, log_likelihood=0.0, n_customers=0)
    pa = value.probability_alive(fit, [0, 2], [0.0, 10.0], [30.0, 30.0])
    assert pa[0] == 1.0  # no repeat purchase: the model has no dropout evidence
    odds = 0.9 / (4.0 + 2 - 1) * ((6.0 + 30.0) / (6.0 + 10.0)) ** (0.8 + 2)
    assert pa[1] == pytest.approx(1 / (1 + odds), rel=1e-12)


def test_expected_purchases_match_a_simulated_holdout():
    """Conditional expectations with the TRUE parameters against what simulated customers do
    in the next 52 weeks; 20,000 customers make the mean's sampling error ~1%."""
    sim = value.simulate_bgnbd(20_000, **TRUE_BG, T=52.0, seed=21, holdout=52.0)
    fit = value.BGNBDFit(**TRUE_BG, log_likelihood=0.0, n_customers=0)
    predicted = value.expected_purchases(fit, 52.0, sim["frequency"], sim["recency"], sim["T"])
    actual = sim["holdout_purchases"]
    assert predicted.mean() == pytest.approx(actual.mean(), rel=0.04)
    # and per calibration frequency (the holdout check's buckets)
    for x in (0, 1, 3):
        sel = (sim["frequency"] == x).to_numpy()
        assert predicted[sel].mean() == pytest.approx(actual[sel].mean(), rel=0.1, abs=0.03)


def test_expected_spend_and_clv():
    gg = value.GammaGammaFit(p=6.0, q=4.0, v=15.0, log_likelihood=0.0, n_customers=0)
    spend = value.expected_spend(gg, [0, 2], [0.0, 40.0])
    assert spend[0] == pytest.approx(15.0 * 6.0 / 3.0)  # population mean v p / (q - 1)
    assert spend[1] == pytest.approx(6.0 * (15.0 + 2 * 40.0) / (6.0 * 2 + 4.0 - 1))
    bg = value.BGNBDFit(**TRUE_BG, log_likelihood=0.0, n_customers=0)
    summary = pd.DataFrame(
        {
            "frequency": [0, 2],
            "recency": [0.0, 20.0],
            "T": [30.0, 30.0],
            "monetary_value": spend * 0 + [0.0, 40.0],
        }
    )
    # one month without discounting = expected purchases in one month x expected spend
    month_weeks = value.DAYS_PER_MONTH / 7
    one = value.customer_lifetime_value(bg, gg, summary, months=1, monthly_discount_rate=0.0)
    ep = value.expected_purchases(
        bg, month_weeks, summary["frequency"], summary["recency"], summary["T"]
    )
    np.testing.assert_allclose(one, ep * spend, rtol=1e-10)
    # twelve months discounted at 1% = the sum of the discounted monthly increments
    twelve = value.customer_lifetime_value(bg, gg, summary, months=12, monthly_discount_rate=0.01)
    cum = [
        value.expected_purchases(bg, k * month_weeks, [0, 2], [0.0, 20.0], [30.0, 30.0])
        for k in range(0, 13)
    ]
    want = sum((cum[k] - cum[k - 1]) / 1.01**k for k in range(1, 13)) * spend
    np.testing.assert_allclose(twelve, want, rtol=1e-10)
    undiscounted = value.customer_lifetime_value(bg, gg, summary, 12, 0.0)
    assert np.all(twelve < undiscounted)


def test_holdout_check_buckets_and_error():
    cal = pd.DataFrame(
        {"frequency": [0, 0, 1, 9], "recency": [0, 0, 5, 40.0], "T": [10, 20, 30, 50.0]}
    )
    fit = value.BGNBDFit(**TRUE_BG, log_likelihood=0.0, n_customers=0)
    table, metrics = value.holdout_check(cal, pd.Series([0, 1, 2, 4]), 26.0, fit, max_bucket=7)
    assert list(table["calibration_frequency"]) == [0, 1, 7]
    assert list(table["customers"]) == [2, 1, 1]
    assert list(table["actual_purchases"]) == [0.5, 2.0, 4.0]
    assert metrics["actual_total"] == 7.0
    assert metrics["relative_error"] == pytest.approx((metrics["predicted_total"] - 7.0) / 7.0)
