"""The `value` build stage, its calibration/holdout check, and the `value_fit` benchmark.

The stage stores one row per buying customer in `customer_value` (RFM summary in weeks, scores,
predictions and lifetime value in currency units), the fitted parameters in `value_model` and
a calibration/holdout check (mean repeat purchases per customer, per calibration frequency
bucket) in `value_holdout`.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext, replace_table
from ccrm_core.radar.value.clv import (
    customer_lifetime_value,
    expected_purchases,
    expected_spend,
    probability_alive,
)
from ccrm_core.radar.value.fits import BGNBDFit, fit_bgnbd, fit_gamma_gamma
from ccrm_core.radar.value.rfm import rfm_scores, rfm_summary_sql

MODEL_COLUMNS = [
    "model",
    "fitted_on",
    "parameter",
    "value",
    "std_error",
    "log_likelihood",
    "customers",
]
HOLDOUT_COLUMNS = [
    "calibration_frequency",
    "customers",
    "predicted_purchases",
    "actual_purchases",
]

# ---------------------------------------------------------------------------------------------
# Calibration / holdout check


def holdout_check(
    transactions_summary_cal: pd.DataFrame,
    holdout_purchases: pd.Series,
    holdout_units: float,
    fit: BGNBDFit | None = None,
    max_bucket: int = 7,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Predicted vs actual repeat purchases in a holdout period.

    `transactions_summary_cal`: RFM summary at the calibration end; `holdout_purchases`: actual
    repeat purchase days per customer in the holdout (aligned on its rows); `holdout_units`:
    holdout length in time units. Returns one row per calibration frequency bucket (0..max_bucket,
    the last meaning "or more") with customers, mean predicted and mean actual purchases, and a
    dict of totals: predicted, actual, relative_error, mae (per customer)."""
    cal = transactions_summary_cal
    fit = fit or fit_bgnbd(cal)
    predicted = expected_purchases(fit, holdout_units, cal["frequency"], cal["recency"], cal["T"])
    actual = np.asarray(holdout_purchases, dtype=float)
    bucket = np.minimum(cal["frequency"].to_numpy(), max_bucket)
    frame = pd.DataFrame({"bucket": bucket, "predicted": predicted, "actual": actual})
    by = frame.groupby("bucket").agg(
        customers=("predicted", "size"),
        predicted_purchases=("predicted", "mean"),
        actual_purchases=("actual", "mean"),
    )
    by = by.reset_index().rename(columns={"bucket": "calibration_frequency"})
    total_pred, total_act = float(predicted.sum()), float(actual.sum())
    metrics = {
        "predicted_total": total_pred,
        "actual_total": total_act,
        "relative_error": (total_pred - total_act) / total_act if total_act else float("nan"),
        "mae_per_customer": float(np.mean(np.abs(predicted - actual))),
        "holdout_units": float(holdout_units),
        "customers": float(len(cal)),
    }
    return by, metrics


# ---------------------------------------------------------------------------------------------
# The `value` build stage


def _model_rows(kind: str, fitted_on: str, fit, names: list[str]) -> list[dict]:
    return [
        {
            "model": kind,
            "fitted_on": fitted_on,
            "parameter": name,
            "value": float(getattr(fit, name)),
            "std_error": fit.std_errors.get(name),
            "log_likelihood": fit.log_likelihood,
            "customers": fit.n_customers,
        }
        for name in names
    ]


def _enough_to_fit(summary: pd.DataFrame) -> bool:
    """At least 10 customers, 3 of them with repeat purchases."""
    return len(summary) >= 10 and (summary["frequency"] > 0).sum() >= 3


def _customer_value(
    summary: pd.DataFrame, months: int, rate: float
) -> tuple[pd.DataFrame, list[dict]]:
    """The `customer_value` rows (summary, scores, predictions, clv) and the fits' model rows."""
    frame = summary.copy()
    scores = rfm_scores(summary)
    frame = pd.concat([frame, scores], axis=1)
    model_rows: list[dict] = []
    if _enough_to_fit(summary):
        bg = fit_bgnbd(summary)
        gg = fit_gamma_gamma(summary)
        x, tx, T = summary["frequency"], summary["recency"], summary["T"]
        frame["expected_purchases_12m"] = expected_purchases(bg, 365.25 / 7, x, tx, T)
        frame["prob_alive"] = probability_alive(bg, x, tx, T)
        frame["expected_spend"] = expected_spend(gg, x, summary["monetary_value"])
        frame["clv"] = customer_lifetime_value(bg, gg, summary, months, rate, "W")
        model_rows += _model_rows("bgnbd", "all", bg, ["r", "alpha", "a", "b"])
        model_rows += _model_rows("gamma_gamma", "all", gg, ["p", "q", "v"])
    else:  # too little data to fit: keep the summary, leave the model columns empty
        for col in ("expected_purchases_12m", "prob_alive", "expected_spend", "clv"):
            frame[col] = np.nan
    return frame, model_rows


def _holdout_purchases(
    con: duckdb.DuckDBPyConnection, cal: pd.DataFrame, cal_end: date, as_of: date
) -> pd.Series:
    """Purchase days per calibration customer in (cal_end, as_of], aligned on `cal`'s rows."""
    actual = con.execute(
        """
        SELECT customer_id, count(DISTINCT CAST(ts AS DATE)) AS purchases
        FROM customer_orders
        WHERE CAST(ts AS DATE) > CAST(? AS DATE) AND CAST(ts AS DATE) <= CAST(? AS DATE)
        GROUP BY customer_id
        """,
        [cal_end, as_of],
    ).df()
    return cal[["customer_id"]].merge(actual, on="customer_id", how="left")["purchases"].fillna(0)


def _holdout_fit(
    con: duckdb.DuckDBPyConnection, as_of: date, holdout_weeks: int
) -> tuple[pd.DataFrame, list[dict]]:
    """Fit on the data up to `holdout_weeks` before `as_of` and check it on the weeks after:
    the `value_holdout` rows and the model rows (calibration fit and holdout metrics); empty
    when the calibration data is too little to fit."""
    holdout = pd.DataFrame(columns=HOLDOUT_COLUMNS)
    model_rows: list[dict] = []
    cal_end = as_of - timedelta(weeks=holdout_weeks)
    cal = rfm_summary_sql(con, cal_end, "W")
    if _enough_to_fit(cal):
        purchases = _holdout_purchases(con, cal, cal_end, as_of)
        cal_fit = fit_bgnbd(cal)
        holdout, metrics = holdout_check(cal, purchases, holdout_weeks, cal_fit)
        model_rows += _model_rows("bgnbd", "calibration", cal_fit, ["r", "alpha", "a", "b"])
        model_rows += [
            {
                "model": "holdout",
                "fitted_on": "calibration",
                "parameter": name,
                "value": value,
                "std_error": None,
                "log_likelihood": None,
                "customers": len(cal),
            }
            for name, value in metrics.items()
        ]
    return holdout, model_rows


def _model_table(model_rows: list[dict]) -> pd.DataFrame:
    """The `value_model` table, numeric columns as floats (None -> NaN)."""
    model = pd.DataFrame(model_rows, columns=MODEL_COLUMNS)
    model["value"] = model["value"].astype(float)
    model["std_error"] = model["std_error"].astype(float)
    model["log_likelihood"] = model["log_likelihood"].astype(float)
    return model


def _holdout_table(holdout: pd.DataFrame) -> pd.DataFrame:
    """The `value_holdout` table with fixed column types (also when empty)."""
    return holdout.astype(
        {
            "calibration_frequency": "int64",
            "customers": "int64",
            "predicted_purchases": float,
            "actual_purchases": float,
        }
    )


def value_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Fit BG/NBD + Gamma-Gamma on every buying customer and store per-customer value.

    Writes `customer_value` (one row per customer with an order: RFM summary in weeks, scores,
    rfm_segment, expected_purchases_12m, prob_alive, expected_spend, clv), `value_model` (model,
    fitted_on, parameter, value, std_error, log_likelihood, customers) and `value_holdout`
    (calibration_frequency, customers, predicted_purchases, actual_purchases) from a fit on the
    data up to `holdout_weeks` before the end.

    Settings (ctx.params["value"]): months (12), monthly_discount_rate (0.01), holdout_weeks (26).
    """
    months = int(ctx.param("value", "months", 12))
    rate = float(ctx.param("value", "monthly_discount_rate", 0.01))
    holdout_weeks = int(ctx.param("value", "holdout_weeks", 26))
    summary = rfm_summary_sql(con, ctx.as_of, "W")
    frame, model_rows = _customer_value(summary, months, rate)
    replace_table(con, "customer_value", frame)
    holdout, holdout_rows = _holdout_fit(con, ctx.as_of, holdout_weeks)
    replace_table(con, "value_model", _model_table(model_rows + holdout_rows))
    replace_table(con, "value_holdout", _holdout_table(holdout))
    return len(frame)


# ---------------------------------------------------------------------------------------------
# Benchmark (ccrm bench: value_fit)


def bench_value_fit(ctx) -> tuple[int, dict]:
    """Fit BG/NBD and Gamma-Gamma on the built database's customer summary (customers).
    Figures: fit_s (both fits, without reading), bgnbd_s, gamma_gamma_s and the estimates."""
    con = store.connect_reader(ctx.db)
    try:
        summary = con.execute(
            "SELECT frequency, recency, T, monetary_value FROM customer_value"
        ).df()
    finally:
        con.close()
    t0 = time.perf_counter()
    bg = fit_bgnbd(summary)
    t1 = time.perf_counter()
    gg = fit_gamma_gamma(summary)
    t2 = time.perf_counter()
    figures = {
        "fit_s": round(t2 - t0, 3),
        "bgnbd_s": round(t1 - t0, 3),
        "gamma_gamma_s": round(t2 - t1, 3),
        **{k: round(v, 4) for k, v in {**bg.params, **gg.params}.items()},
    }
    return len(summary), figures
