"""KPI alerts recover the anomalies the generator plants.

Ground truth: `ground_truth_anomalies(kind, channel, start_date, end_date, magnitude)`: a ~60%
revenue drop on one sales channel for 4 days, and one day with ~4x new customers. An anomaly is
flagged when an alert on its metric (revenue / new customers) and channel ('all' for the spike)
overlaps its dates. Target: at least 80% flagged, at most one false alert (an alert overlapping
no planted anomaly) per 90 days of history.

At the demo size (3,000 customers) the app channel takes ~4 orders a day, so a 4-day drop is
within Poisson noise and a 4x day of ~3 new customers is not beyond a 4.5-sd band. Recall is
measured on a 40,000-customer company (about 55 orders a day on the channel; at 20,000 the
drop is found in 7 of 10 seeds' revenue series); the false-alert budget is checked on both.
Measured over seeds 3, 5, 7, 11, 13 at 40,000: 10 of 10 anomalies flagged, false alerts per
730 days 0, 0, 0, 3, 6.
"""

from __future__ import annotations

import pandas as pd
import pytest

from ccrm_core.foundation import pipeline, store
from ccrm_core.radar import kpis
from ccrm_core.synthetic import sample

RECOVERY_CUSTOMERS = 40_000
RECOVERY_DAYS = 730
RECOVERY_SEED = 11
STAGES = ["standardise", "identity", "daily_kpis", "kpi_alerts"]


def _overlaps(alert, truth) -> bool:
    return pd.Timestamp(alert.start_date) <= pd.Timestamp(truth.end_date) and pd.Timestamp(
        alert.end_date
    ) >= pd.Timestamp(truth.start_date)


def recovery(con) -> tuple[int, int, int, int]:
    """(planted, flagged, false alerts, days of history)."""
    truth = con.execute("SELECT * FROM ground_truth_anomalies").df()
    alerts = kpis.kpi_alerts(con, limit=10_000)
    flagged = 0
    for t in truth.itertuples():
        metric = "revenue" if t.kind == "revenue_drop" else "new_customers"
        channel = t.channel if isinstance(t.channel, str) else kpis.ALL
        flagged += any(
            _overlaps(a, t) and a.metric == metric and a.channel == channel
            for a in alerts.itertuples()
        )
    false = sum(not any(_overlaps(a, t) for t in truth.itertuples()) for a in alerts.itertuples())
    days = con.execute("SELECT date_diff('day', min(date), max(date)) + 1 FROM mart_daily_kpis")
    return len(truth), flagged, false, days.fetchone()[0]


@pytest.fixture(scope="module")
def large_company(tmp_path_factory):
    path = tmp_path_factory.mktemp("alerts") / "company.duckdb"
    con = store.connect_writer(path)
    sample.write_sample(con, sample.generate(RECOVERY_CUSTOMERS, RECOVERY_DAYS, RECOVERY_SEED))
    results = pipeline.build(con, stages=STAGES)
    assert all(r.status == "ok" for r in results), results
    yield con
    con.close()


def test_planted_anomalies_are_flagged_with_few_false_alerts(large_company):
    planted, flagged, false, days = recovery(large_company)
    assert planted == 2
    assert flagged / planted >= 0.8, kpis.kpi_alerts(large_company)["message"].tolist()
    assert false <= days / 90, kpis.kpi_alerts(large_company)["message"].tolist()


def test_the_drop_alert_says_what_moved_and_by_how_much(large_company):
    truth = large_company.execute(
        "SELECT * FROM ground_truth_anomalies WHERE kind = 'revenue_drop'"
    ).df()
    t = next(truth.itertuples())
    alerts = kpis.kpi_alerts(large_company, channel=t.channel)
    drop = alerts[(alerts["metric"] == "revenue") & (alerts["grain"] == "day")]
    drop = drop[[_overlaps(a, t) for a in drop.itertuples()]].iloc[0]
    assert drop["direction"] == "drop"
    # planted: ~60% of the channel's revenue removed on those days
    assert -0.8 < drop["change_pct"] < -0.35
    assert drop["message"].startswith(f"Revenue (channel {t.channel}) fell")


def test_false_alerts_on_the_demo_company(demo_con):
    """The demo company (3,000 customers) stays within the false-alert budget."""
    _, _, false, days = recovery(demo_con)
    assert false <= days / 90
