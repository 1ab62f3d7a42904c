"""The `mmm` build stage: daily inputs from the database (revenue, spend per channel,
experiment controls, lift tests), the fit, and the marts it writes (contributions, fit, channels
with ROI before and after lift-test calibration, the lift tests used, diagnostics, and
`mart_response_curves`, the budget simulator's contract); plus the `mmm_fit` benchmark.

The experiments table does not feed the calibration: its tests randomise customers to an offer
(a treatment that is not in the spend table, and already a control in the baseline), so their
readout is no measure of a media channel's spend contribution. Lift tests come from the
`lift_tests` table only.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.conductor.mmm.fit import LIFT_TEST_COLUMNS, MMMResult, fit_mmm
from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext, replace_table

RESPONSE_CURVE_COLUMNS = [
    "channel",
    "addressable",
    "adstock_decay",
    "half_saturation",
    "hill_slope",
    "beta",
    "beta_low",
    "beta_high",
    "current_daily_spend",
    "last_adstock",
    "revenue_per_conversion",
    "roi",
    "roi_low",
    "roi_high",
    "marginal_roi",
    "calibration_factor",
]


def load_inputs(
    con: duckdb.DuckDBPyConnection, as_of: date | None = None, experiment_window_days: int = 30
) -> tuple[pd.DatetimeIndex, np.ndarray, pd.DataFrame, float, pd.DataFrame]:
    """Daily inputs over the days that have spend: (dates, revenue per day, spend per day and
    channel, revenue per order, controls). Revenue is every order's revenue (identified or
    not); days without orders or without a channel's spend count as 0. Channels that never
    spent are dropped. Controls: per experiment, the treated customers whose test window
    (`experiment_window_days` after assignment) covers the day — a known marketing push that
    is not in the spend table and would otherwise be credited to whichever channel was on air;
    likewise per activation, the people sent whose window covers the day (see
    `_activation_controls`)."""
    spend = con.execute(
        f"SELECT date, channel, {store.exact_sum('spend')} AS spend FROM spend "  # noqa: S608 our SQL
        "WHERE spend > 0 GROUP BY ALL ORDER BY date, channel"
    ).df()
    if spend.empty:
        raise ValueError(
            "the media mix model needs spend: the spend table is empty; ingest spend.csv "
            "(date, channel, spend) first"
        )
    first, last = pd.Timestamp(spend["date"].min()), pd.Timestamp(spend["date"].max())
    if as_of is not None:
        last = min(last, pd.Timestamp(as_of))
    dates = pd.date_range(first, last, freq="D")
    wide = (
        spend.assign(date=pd.to_datetime(spend["date"]))
        .pivot_table(index="date", columns="channel", values="spend", aggfunc="sum")
        .reindex(dates, fill_value=0.0)
        .fillna(0.0)
    )
    order = [c for c in store.MEDIA_CHANNELS if c in wide.columns]
    wide = wide[order + sorted(set(wide.columns) - set(order))]
    wide = wide.loc[:, wide.sum() > 0]
    orders = con.execute(
        f"SELECT CAST(ts AS DATE) AS date, {store.exact_sum('revenue')} AS revenue, "  # noqa: S608 our SQL
        "count(*) AS orders FROM orders WHERE ts >= ? AND ts < ? GROUP BY ALL ORDER BY date",
        [first, last + pd.Timedelta(days=1)],
    ).df()
    daily = orders.assign(date=pd.to_datetime(orders["date"])).set_index("date")
    revenue = daily["revenue"].reindex(dates, fill_value=0.0).to_numpy(float)
    per_order = float(daily["revenue"].sum() / daily["orders"].sum()) if len(daily) else 0.0
    return (
        dates,
        revenue,
        wide.reset_index(drop=True),
        per_order,
        pd.concat(
            [
                _experiment_controls(con, dates, experiment_window_days),
                _activation_controls(con, dates, experiment_window_days),
            ],
            axis=1,
        ),
    )


def load_lift_tests(con: duckdb.DuckDBPyConnection, revenue_per_conversion: float) -> pd.DataFrame:
    """The lift_tests table in test_id order, as incremental revenue over each window
    (currency): a test measured in conversions is converted at the revenue per order; without
    orders to price them, such tests keep NaN and are listed as not used."""
    tests = con.execute(
        "SELECT test_id, channel, start_date, end_date, metric, lift, standard_error "
        "FROM lift_tests ORDER BY test_id"
    ).df()
    price = np.where(
        tests["metric"] == "conversions",
        revenue_per_conversion if revenue_per_conversion > 0 else np.nan,
        1.0,
    )
    return tests.assign(
        lift=tests["lift"].to_numpy(float) * price,
        standard_error=tests["standard_error"].to_numpy(float) * price,
    )


def channels_mart(result: MMMResult) -> pd.DataFrame:
    """mart_mmm_channels: the channel summary (calibrated when lift tests were used) beside the
    fit on the data alone (contribution, share, roi `_uncalibrated` with `_low`/`_high`), and
    the number of lift tests used per channel."""
    out = result.channel_summary()
    before = (
        (result.uncalibrated if result.calibrated else result)
        .channel_summary()
        .set_index("channel")
    )
    for col in ("contribution", "share", "roi"):
        for suffix in ("", "_low", "_high"):
            out[f"{col}_uncalibrated{suffix}"] = out["channel"].map(before[f"{col}{suffix}"])
    used = result.lift_tests[result.lift_tests["used"].astype(bool)]
    out["lift_tests"] = out["channel"].map(used.groupby("channel").size()).fillna(0).astype(int)
    return out


def _experiment_controls(
    con: duckdb.DuckDBPyConnection, dates: pd.DatetimeIndex, window_days: int
) -> pd.DataFrame:
    """Per experiment: treated customers inside their test window on each day (days x k)."""
    treated = con.execute(
        "SELECT experiment_id, CAST(assigned_at AS DATE) AS date, count(*) AS treated "
        "FROM experiments WHERE lower(arm) = 'treatment' GROUP BY ALL"
    ).df()
    out = pd.DataFrame(index=dates)
    for exp_id, group in treated.groupby("experiment_id", sort=True):
        active = _in_window(group["date"], group["treated"], dates, window_days)
        if active.any():
            out[f"experiment_{exp_id}"] = active / active.max()
    return out.reset_index(drop=True)


def _in_window(
    day: pd.Series, people: pd.Series, dates: pd.DatetimeIndex, window_days: int
) -> np.ndarray:
    """Per day of `dates`: the people who started on a `day` in the `window_days` up to it."""
    daily = (
        pd.Series(people.to_numpy(float), index=pd.to_datetime(day))
        .groupby(level=0)
        .sum()
        .reindex(dates, fill_value=0.0)
        .to_numpy(float)
    )
    return np.convolve(daily, np.ones(window_days))[: len(dates)]


def _activation_controls(
    con: duckdb.DuckDBPyConnection, dates: pd.DatetimeIndex, window_days: int
) -> pd.DataFrame:
    """Activations (segments sent to ad platforms; each one's first export): the people sent
    whose window (`window_days` after their export) covers the day, all activations together in
    one column scaled to 0..1 (days x 0 or 1). Like an experiment, an activation is a known push
    that the spend table does not show; without it the model would credit its orders to
    whichever channel was on air. One column, not one per activation: activations exported on
    the same day would give identical columns that no fit can tell apart."""
    out = pd.DataFrame(index=dates)
    if not all(store.table_exists(con, t) for t in ("activations", "activation_runs")):
        return out.reset_index(drop=True)
    sent = con.execute(
        "SELECT CAST(r.exported_at AS DATE) AS date, sum(r.sent) AS sent "
        "FROM activation_runs r JOIN activations a USING (activation_id) "
        "WHERE r.run = 1 AND r.sent > 0 GROUP BY ALL ORDER BY date"
    ).df()
    active = _in_window(sent["date"], sent["sent"], dates, window_days)
    if active.any():
        out["activations"] = active / active.max()
    return out.reset_index(drop=True)


def response_curves(result: MMMResult, revenue_per_conversion: float) -> pd.DataFrame:
    """The mart_response_curves contract, one row per media channel (see BRIEF/README):
    revenue/day at steady daily spend x = calibration_factor * beta * h(x / (1 - decay))."""
    summary = result.channel_summary()
    adstock = result.adstock()
    return pd.DataFrame(
        {
            "channel": result.channels,
            "addressable": [c in store.ADDRESSABLE_CHANNELS for c in result.channels],
            "adstock_decay": result.decay,
            "half_saturation": result.half_saturation,
            "hill_slope": result.slope,
            "beta": result.beta,
            "beta_low": summary["beta_low"].to_numpy(),
            "beta_high": summary["beta_high"].to_numpy(),
            "current_daily_spend": result.current_daily_spend(),
            "last_adstock": adstock[-1],
            "revenue_per_conversion": revenue_per_conversion,
            "roi": summary["roi"].to_numpy(),
            "roi_low": summary["roi_low"].to_numpy(),
            "roi_high": summary["roi_high"].to_numpy(),
            "marginal_roi": summary["marginal_roi"].to_numpy(),
            "calibration_factor": 1.0,
        }
    )[RESPONSE_CURVE_COLUMNS]


def _write_empty_marts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE mart_mmm_contributions "
        "(date DATE, component VARCHAR, contribution DOUBLE)"
    )
    con.execute(
        "CREATE OR REPLACE TABLE mart_mmm_fit "
        "(date DATE, actual DOUBLE, fitted DOUBLE, residual DOUBLE)"
    )
    summary_cols = ["spend", "contribution", "share", "roi", "marginal_roi"] + [
        f"{c}_{side}"
        for c in ("contribution", "share", "roi", "marginal_roi", "beta")
        for side in ("low", "high")
    ]
    summary_cols += [
        f"{c}_uncalibrated{suffix}"
        for c in ("contribution", "share", "roi")
        for suffix in ("", "_low", "_high")
    ]
    con.execute(
        "CREATE OR REPLACE TABLE mart_mmm_channels (channel VARCHAR, addressable BOOLEAN, "
        + ", ".join(f"{c} DOUBLE" for c in summary_cols)
        + ", lift_tests BIGINT)"
    )
    lift_types = {"start_date": "DATE", "end_date": "DATE", "used": "BOOLEAN"}
    lift_types |= {"test_id": "VARCHAR", "channel": "VARCHAR", "note": "VARCHAR"}
    con.execute(
        "CREATE OR REPLACE TABLE mart_mmm_lift_tests ("
        + ", ".join(f"{c} {lift_types.get(c, 'DOUBLE')}" for c in LIFT_TEST_COLUMNS)
        + ")"
    )
    con.execute("CREATE OR REPLACE TABLE mart_mmm_diagnostics (metric VARCHAR, value DOUBLE)")
    types = {"channel": "VARCHAR", "addressable": "BOOLEAN"}
    con.execute(
        "CREATE OR REPLACE TABLE mart_response_curves ("
        + ", ".join(f"{c} {types.get(c, 'DOUBLE')}" for c in RESPONSE_CURVE_COLUMNS)
        + ")"
    )


def mmm_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Build stage `mmm`: fit on daily revenue and spend; writes
    mart_mmm_contributions(date, component, contribution) — component 'baseline' or a channel,
    currency/day; mart_mmm_fit(date, actual, fitted, residual); mart_mmm_channels (per channel
    spend, contribution, share, roi, marginal_roi with 90% intervals); mart_mmm_diagnostics
    (metric, value); mart_response_curves (the budget simulator's contract).

    Lift tests in `lift_tests` calibrate the fit (see `fit`); mart_mmm_channels then also holds
    the fit on the data alone (`*_uncalibrated` columns) and mart_mmm_lift_tests lists every
    test with its measured and modelled lift and whether it was used. The response curves are
    the calibrated ones."""
    window = int(ctx.param("reconcile", "experiment_window_days", 30))
    has_spend, has_orders = con.execute(
        "SELECT EXISTS (SELECT 1 FROM spend WHERE spend > 0), EXISTS (SELECT 1 FROM orders)"
    ).fetchall()[0]
    if not (has_spend and has_orders):
        # nothing to model yet (customers only; spend without the revenue it should explain):
        # empty marts, so the pages say what to load and later stages still run
        _write_empty_marts(con)
        return 0
    dates, revenue, spend, per_order, controls = load_inputs(con, ctx.as_of, window)
    yearly = int(ctx.param("mmm", "yearly_order", 3 if len(dates) >= 365 else 0))
    result = fit_mmm(
        dates,
        revenue,
        spend,
        controls=controls,
        n_bootstrap=int(ctx.param("mmm", "bootstrap", 100)),
        block_days=int(ctx.param("mmm", "block_days", 28)),
        trend_degree=int(ctx.param("mmm", "trend_degree", 2)),
        yearly_order=yearly,
        ridge=float(ctx.param("mmm", "ridge", 1.0)),
        seed=int(ctx.param("mmm", "seed", 0)),
        lift_tests=load_lift_tests(con, per_order),
    )
    contributions = pd.DataFrame(result.contributions, columns=result.channels)
    contributions.insert(0, "baseline", result.baseline)
    contributions["date"] = dates.date
    long = contributions.melt(id_vars="date", var_name="component", value_name="contribution")
    replace_table(con, "mart_mmm_contributions", long)
    replace_table(
        con,
        "mart_mmm_fit",
        pd.DataFrame(
            {
                "date": dates.date,
                "actual": result.revenue,
                "fitted": result.fitted,
                "residual": result.residuals,
            }
        ),
    )
    replace_table(con, "mart_mmm_channels", channels_mart(result))
    replace_table(con, "mart_mmm_lift_tests", result.lift_tests)
    replace_table(
        con,
        "mart_mmm_diagnostics",
        pd.DataFrame(list(result.diagnostics().items()), columns=["metric", "value"]),
    )
    return replace_table(con, "mart_response_curves", response_curves(result, per_order))


# ---------------------------------------------------------------------------------------------
# Benchmark (ccrm bench: mmm_fit)


def bench_mmm_fit(ctx) -> int:
    """Bench: the mmm stage's fit on the built database at the scale (two years daily, 10
    channels, 100 bootstrap replicates, calibrated by the lift tests the database holds: the
    generated company has one). Returns days x channels fitted."""
    con = store.connect_reader(ctx.db)
    try:
        dates, revenue, spend, per_order, controls = load_inputs(con)
        lift_tests = load_lift_tests(con, per_order)
    finally:
        con.close()
    fit_mmm(dates, revenue, spend, controls=controls, n_bootstrap=100, lift_tests=lift_tests)
    return len(dates) * spend.shape[1]
