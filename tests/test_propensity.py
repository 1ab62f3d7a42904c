"""Propensity stage: features as of a cutoff (no look-ahead), out-of-time AUC on planted data."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext, replace_table
from ccrm_core.radar import propensity

TIMELINE_COLUMNS = ["customer_id", "ts", "kind", "channel", "event_type", "value"]


def _write(con, customers: pd.DataFrame, rows: list[tuple]) -> None:
    replace_table(con, "customers", customers)
    frame = pd.DataFrame(rows, columns=TIMELINE_COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"])
    replace_table(con, "customer_timeline", frame)


def test_features_use_only_rows_before_the_cutoff(tmp_path):
    con = store.connect_writer(tmp_path / "f.duckdb")
    try:
        _write(
            con,
            pd.DataFrame(
                {
                    "customer_id": ["A", "B", "Z"],
                    "created_at": pd.to_datetime(["2024-01-01", "2024-12-01", "2025-06-01"]),
                }
            ),
            [
                ("A", "2025-01-01 10:00", "order", "web", "order", 30.0),
                ("A", "2025-02-20 10:00", "order", "web", "order", 50.0),
                ("A", "2025-02-25 10:00", "event", "web", "visit", None),
                ("A", "2025-03-05 10:00", "order", "web", "order", 999.0),  # after the cutoff
                ("B", "2025-02-01 10:00", "event", "email", "click", None),
                ("B", "2025-04-15 10:00", "order", "web", "order", 10.0),  # after the window
            ],
        )
        f = propensity.features_as_of(con, date(2025, 3, 1), 30).set_index("customer_id")
        assert list(f.index) == ["A", "B"]  # Z did not exist yet at the cutoff
        a = f.loc["A"]
        assert (a["orders_total"], a["revenue_total"], a["avg_order_value"]) == (2, 80.0, 40.0)
        assert a["days_since_last_order"] == 9  # 2025-02-20 10:00 -> 2025-03-01 00:00
        assert a["days_since_first_order"] == 59
        assert a["tenure_days"] == 425  # created 2024-01-01
        assert (a["orders_30d"], a["visits_30d"]) == (1, 1)
        assert a["orders_in_window"] == 1  # the 999.00 order, label only
        b = f.loc["B"]
        assert b["orders_total"] == 0 and b["clicks_30d"] == 1 and b["orders_in_window"] == 0
        assert pd.isna(b["days_since_last_order"])
    finally:
        con.close()


def _planted(n: int, as_of: date, seed: int = 3) -> tuple[pd.DataFrame, list[tuple], dict]:
    """Customers with a known daily purchase rate: active (1/12), occasional (1/90) and
    gone (1/25 until a dropout day 120-300 days before the end, then nothing)."""
    rng = np.random.default_rng(seed)
    start = as_of - timedelta(days=500)
    kinds = rng.choice(["active", "occasional", "gone"], size=n, p=[0.35, 0.35, 0.3])
    rows, truth = [], {}
    for i, kind in enumerate(kinds):
        cid = f"P{i:05d}"
        truth[cid] = kind
        rate = {"active": 1 / 12, "occasional": 1 / 90, "gone": 1 / 25}[kind]
        alive_days = 500 if kind != "gone" else 500 - int(rng.integers(120, 300))
        for day in np.nonzero(rng.random(alive_days) < rate)[0]:
            ts = datetime.combine(start + timedelta(days=int(day)), datetime.min.time())
            rows.append((cid, ts + timedelta(hours=12), "order", "web", "order", 40.0))
        for day in np.nonzero(rng.random(alive_days) < 3 * rate)[0]:
            ts = datetime.combine(start + timedelta(days=int(day)), datetime.min.time())
            rows.append((cid, ts + timedelta(hours=9), "event", "web", "visit", None))
    customers = pd.DataFrame(
        {"customer_id": list(truth), "created_at": pd.Timestamp(start)},
    )
    return customers, rows, truth


def test_out_of_time_auc_on_planted_buyers(tmp_path):
    as_of = date(2025, 3, 30)
    customers, rows, truth = _planted(1500, as_of)
    con = store.connect_writer(tmp_path / "p.duckdb")
    try:
        _write(con, customers, rows)
        written = propensity.propensity_stage(con, BuildContext(as_of=as_of, run_id=1))
        assert written == 1500
        models = propensity.model_summary(con).set_index("target")
        end = as_of + timedelta(days=1)
        buy = models.loc["buy"]
        assert pd.Timestamp(buy["train_cutoff"]).date() == end - timedelta(days=60)
        assert pd.Timestamp(buy["holdout_cutoff"]).date() == end - timedelta(days=30)
        # the planted rates separate future buyers well: the Bayes AUC here is about 0.85
        assert buy["holdout_auc"] >= 0.75
        churn = models.loc["churn"]
        assert pd.Timestamp(churn["holdout_cutoff"]).date() == end - timedelta(days=90)
        assert churn["holdout_auc"] >= 0.75
        scores = con.execute("SELECT * FROM mart_propensity").df().set_index("customer_id")
        scores["kind"] = pd.Series(truth)
        by_kind = scores.groupby("kind")[["p_buy_30d", "churn_risk"]].mean()
        # true 30-day purchase probability: active 1-exp(-30/12)=0.92, occasional 0.28, gone 0
        assert by_kind.loc["active", "p_buy_30d"] > 0.7
        assert by_kind.loc["gone", "p_buy_30d"] < 0.15
        assert (
            by_kind.loc["active", "p_buy_30d"]
            > by_kind.loc["occasional", "p_buy_30d"]
            > by_kind.loc["gone", "p_buy_30d"]
        )
        assert by_kind.loc["gone", "churn_risk"] > 0.8 > by_kind.loc["active", "churn_risk"]
    finally:
        con.close()


def test_too_little_history_gives_null_scores_not_a_failure(tmp_path):
    con = store.connect_writer(tmp_path / "s.duckdb")
    try:
        _write(
            con,
            pd.DataFrame({"customer_id": ["A"], "created_at": pd.to_datetime(["2025-01-01"])}),
            [("A", "2025-03-01 10:00", "order", "web", "order", 30.0)],
        )
        assert propensity.propensity_stage(con, BuildContext(as_of=date(2025, 3, 30), run_id=1))
        row = con.execute("SELECT p_buy_30d, churn_risk FROM mart_propensity").fetchone()
        assert row == (None, None)
        aucs = con.execute("SELECT holdout_auc FROM propensity_model").fetchall()
        assert aucs == [(None,), (None,)]
    finally:
        con.close()


@pytest.mark.parametrize("target", propensity.TARGETS, ids=lambda t: t.name)
def test_targets_are_documented(target):
    assert target.name in propensity.__doc__ and str(target.horizon_days) in propensity.__doc__
