"""Media mix model: transforms by hand, recovery of planted adstock + Hill effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ccrm_core.conductor import mmm


def test_geometric_adstock_by_hand():
    # a_t = x_t + 0.5 a_{t-1}: 10, 5, 2.5 + 4 = 6.5, 3.25
    assert mmm.geometric_adstock([10, 0, 4, 0], 0.5) == pytest.approx([10, 5, 6.5, 3.25])


def test_hill_by_hand():
    # K = 2, s = 2: a = 2 -> 1/2; a = 4 -> 16 / (16 + 4) = 0.8; a = 0 -> 0
    assert mmm.hill(np.array([0.0, 2.0, 4.0]), 2.0, 2.0) == pytest.approx([0, 0.5, 0.8])


def test_response_and_marginal_response_agree():
    """The response curve formula of mart_response_curves and its derivative (finite diff)."""
    args = dict(beta=1000.0, decay=0.4, half_saturation=500.0, slope=1.7)
    x = 240.0
    # steady adstock 240 / 0.6 = 400; h = 400^1.7 / (400^1.7 + 500^1.7)
    u = (400 / 500) ** 1.7
    assert mmm.response(x, **args) == pytest.approx(1000 * u / (1 + u))
    slope = (mmm.response(x + 1e-3, **args) - mmm.response(x - 1e-3, **args)) / 2e-3
    assert mmm.marginal_response(x, **args) == pytest.approx(slope, rel=1e-5)


def simulate(days: int = 730, n_channels: int = 6, noise: float = 1200.0, seed: int = 3):
    """Daily revenue = trend + weekly + yearly baseline + planted adstock/Hill effects + noise."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-01", periods=days)
    decay = rng.uniform(0.1, 0.8, n_channels)
    slope = rng.uniform(1.0, 2.5, n_channels)
    mean_spend = rng.uniform(300, 3000, n_channels)
    spend = np.zeros((days, n_channels))
    for c in range(n_channels):
        on = (rng.random(days // 7 + 1) < 0.7).repeat(7)[:days]  # weekly flighting
        spend[:, c] = on * mean_spend[c] * rng.lognormal(0, 0.5, days)
    half = mean_spend / (1 - decay) * rng.uniform(0.5, 1.5, n_channels)
    beta = rng.uniform(800, 4000, n_channels)
    contrib = np.column_stack(
        [
            beta[c] * mmm.hill(mmm.geometric_adstock(spend[:, c], decay[c]), half[c], slope[c])
            for c in range(n_channels)
        ]
    )
    t = np.arange(days) / days
    baseline = (
        20000
        + 5000 * t
        + 1500 * np.sin(2 * np.pi * dates.day_of_year / 365.25)
        + 900 * (dates.day_of_week >= 5)
    )
    revenue = baseline + contrib.sum(axis=1) + rng.normal(0, noise, days)
    names = [f"ch{c}" for c in range(n_channels)]
    truth = pd.DataFrame(
        {
            "channel": names,
            "true_roi": contrib.sum(axis=0) / spend.sum(axis=0),
            "true_share": contrib.sum(axis=0) / contrib.sum(),
            "decay": decay,
        }
    )
    return dates, revenue, pd.DataFrame(spend, columns=names), truth


def test_recovers_planted_roi_and_shares():
    dates, revenue, spend, truth = simulate()
    result = mmm.fit_mmm(dates, revenue, spend, n_bootstrap=60, seed=1)
    summary = result.channel_summary().merge(truth, on="channel")
    covered = (summary["roi_low"] <= summary["true_roi"]) & (
        summary["true_roi"] <= summary["roi_high"]
    )
    assert covered.mean() >= 0.8, summary[["channel", "roi", "roi_low", "roi_high", "true_roi"]]
    assert (summary["share"] - summary["true_share"]).abs().max() < 0.05
    diag = result.diagnostics()
    assert diag["r2"] > 0.7 and diag["mape"] < 0.06
    # the fit decomposes revenue exactly: baseline + contributions = fitted
    assert result.fitted == pytest.approx(result.baseline + result.contributions.sum(axis=1))


def test_channel_without_effect_gets_little_credit():
    dates, revenue, spend, truth = simulate(n_channels=4, seed=5)
    rng = np.random.default_rng(9)
    spend["dud"] = (rng.random(len(dates)) < 0.5) * rng.uniform(500, 1500, len(dates))
    result = mmm.fit_mmm(dates, revenue, spend, n_bootstrap=30)
    summary = result.channel_summary().set_index("channel")
    assert summary.loc["dud", "share"] < 0.05
    assert summary.loc["dud", "roi_low"] <= 0.05


def test_too_short_series_is_refused():
    dates, revenue, spend, _ = simulate(days=40, n_channels=2)
    with pytest.raises(ValueError, match="at least 56 days"):
        mmm.fit_mmm(dates, revenue, spend, n_bootstrap=0)


# Recovery on the synthetic company: 50,000 customers give daily revenue with enough signal
# (3,000 do not: media revenue per channel is a few hundred a day against ~900 of noise).
RECOVERY_CUSTOMERS = 50_000


def record_planted_activations(con, data: dict) -> None:
    """The generated company's planted activations as first exports, as the build stage
    `sample_activations` records them (the model reads each export's day and the people sent):
    the model treats them as known pushes, like experiments."""
    for i, row in enumerate(data["ground_truth_activation"].itertuples(), start=1):
        con.execute(
            "INSERT INTO activations VALUES (?, ?, ?, ?, ?, ?, ?, 'test')",
            [i, row.activation, row.scheme, row.segment, row.destination, row.holdout_share,
             row.exported_at],
        )  # fmt: skip
        con.execute(
            "INSERT INTO activation_runs VALUES (?, 1, ?, 'test', ?, ?, ?, 0, ?, 0, NULL)",
            [i, row.exported_at, row.members, row.treated, row.control, row.treated],
        )


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    sample = pytest.importorskip("ccrm_core.synthetic.sample")
    from ccrm_core.foundation import store

    data = sample.generate(RECOVERY_CUSTOMERS, 730, 7)
    con = store.connect_writer(tmp_path_factory.mktemp("mmm") / "mmm.duckdb")
    # only the tables the model reads, straight from generate()
    for table in ("spend", "orders", "experiments"):
        cols = ", ".join(store.TABLES[table].column_names)
        con.register("_frame", data[table])
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _frame")
        con.unregister("_frame")
    record_planted_activations(con, data)
    yield con, data
    con.close()


def test_recovery_on_generated_company(generated):
    con, data = generated
    dates, revenue, spend, per_order, controls = mmm.load_inputs(con)
    result = mmm.fit_mmm(dates, revenue, spend, controls=controls, n_bootstrap=100, seed=0)
    truth = data["ground_truth_channels"][["channel", "true_roi", "true_share"]]
    summary = result.channel_summary().merge(truth, on="channel")
    assert len(summary) == 10
    covered = (summary["roi_low"] <= summary["true_roi"]) & (
        summary["true_roi"] <= summary["roi_high"]
    )
    report = summary[["channel", "roi", "roi_low", "roi_high", "true_roi", "share", "true_share"]]
    assert covered.mean() >= 0.8, report
    assert (summary["share"] - summary["true_share"]).abs().max() < 0.05, report
    curves = mmm.response_curves(result, per_order)
    assert list(curves.columns) == mmm.RESPONSE_CURVE_COLUMNS
    assert set(curves.loc[~curves["addressable"], "channel"]) == {"tv", "print"}


def test_mmm_chart_hovers_are_formatted(monkeypatch):
    """Hand-made marts: money in the currency, dates without a time, channels in words."""
    from hover_checks import hover_problems

    monkeypatch.setenv("CCRM_CURRENCY", "EUR")
    days = pd.date_range("2024-01-01", periods=14, freq="D")
    contributions = pd.DataFrame(
        {
            "date": np.repeat(days, 2),
            "component": ["baseline", "paid_search"] * len(days),
            "contribution": np.arange(2 * len(days), dtype=float) * 1234.5,
        }
    )
    channels = pd.DataFrame(
        {
            "channel": ["paid_search", "direct_mail"],
            "addressable": [True, True],
            **{
                f"{m}{end}": [1.5 + d, 0.8 + d]
                for m in ("roi", "marginal_roi", "roi_uncalibrated")
                for end, d in (("", 0.0), ("_low", -0.3), ("_high", 0.4))
            },
        }
    )
    fit = pd.DataFrame(
        {"date": days, "actual": 1000.0, "fitted": 990.0, "residual": 10.0}, index=range(14)
    )
    checks = {
        "contributions": (mmm.chart_contributions(contributions), {0, 1}),
        "roi": (mmm.chart_roi(channels), set()),
        "marginal roi": (mmm.chart_roi(channels, "marginal_roi"), set()),
        "calibration": (mmm.chart_roi_calibration(channels), set()),
        "fit": (mmm.chart_fit(fit), {0, 1, 2}),
    }
    for name, (fig, money) in checks.items():
        assert fig.data, name
        assert hover_problems(fig, money) == [], name
    stack = checks["contributions"][0]
    assert [t.name for t in stack.data] == ["Baseline", "Paid search"]
    assert stack.data[0].customdata[0] == "2024-01-01"  # the Monday of the week to Sunday 7 Jan
    assert list(checks["roi"][0].data[0].y) == ["Direct mail", "Paid search"]
