"""Command center KPIs on a tiny hand-made company (tests/radar_data.py).

Data end 2024-12-31 (the last order). Default view: period 30 days = 2024-12-02..2024-12-31,
previous period 2024-11-02..2024-12-01, active window 365 days. Every expected number below is
worked out by hand from radar_data's rows.
"""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import radar_data

from ccrm_core.foundation import pipeline, store
from ccrm_core.radar import kpis
from ccrm_core.radar.kpis import KpiFilters


@pytest.fixture(scope="module")
def company_path(tmp_path_factory):
    return radar_data.build_company(tmp_path_factory.mktemp("radar") / "radar.duckdb")


@pytest.fixture(scope="module")
def company(company_path):
    con = store.connect_reader(company_path)
    yield con
    con.close()


@pytest.fixture()
def saved_company(company_path, tmp_path):
    """A writable copy of the company with radar_data's saved segments."""
    copy = tmp_path / "saved.duckdb"
    shutil.copy(company_path, copy)
    con = store.connect_writer(copy)
    radar_data.write_saved_segments(con)
    yield con
    con.close()


def tiles(con, **kw) -> dict[str, kpis.KpiTile]:
    return {t.key: t for t in kpis.kpi_tiles(con, KpiFilters(**kw))}


# --- each KPI on hand-made data -----------------------------------------------------------------


def test_active_customers(company):
    t = tiles(company)["active_customers"]
    # ordered in 2024-01-01..2024-12-31: A, B, C; in 2023-12-02..2024-12-01: A, D
    assert (t.value, t.previous) == (3, 2)
    # window 30 days: ordered 2024-12-02..12-31: A, B, C; 2024-11-02..12-01: nobody
    t30 = tiles(company, active_window=30)["active_customers"]
    assert (t30.value, t30.previous) == (3, 0)


def test_new_customers(company):
    t = tiles(company)["new_customers"]
    # B's first order 2024-12-05. The previous period (2024-11-02..12-01) and the active window
    # (365 days) before it need data from 2023-11-03; it starts 2023-11-15: no comparison
    assert (t.value, t.previous) == (1, None)
    assert t.note.startswith("no comparison") and "3 Nov 2023" in t.note
    # with a 30-day window the previous period is covered: nobody's first order is in it
    t30 = tiles(company, active_window=30)["new_customers"]
    assert (t30.value, t30.previous, t30.note) == (1, 0, "")
    # on channel web: B's first order was on web; on store: nobody's first order is in the period
    assert tiles(company, channel="web")["new_customers"].value == 1
    assert tiles(company, channel="store")["new_customers"].value == 0


def test_repeat_rate(company):
    t = tiles(company)["repeat_rate"]
    # buyers A, B, C; B is new -> 2/3; previous period has no buyers -> no rate
    assert t.value == pytest.approx(2 / 3)
    assert t.previous is None
    # store: buyers A (first store order ever on 12-20) and C (bought on store before) -> 1/2
    assert tiles(company, channel="store")["repeat_rate"].value == pytest.approx(0.5)


def test_retention_and_churn(company):
    t = tiles(company)
    # S = active at 12-01 = {A, D}; D lapses 2024-12-14 (365 days after 2023-12-15) -> 1/2
    assert t["retention_rate"].value == pytest.approx(0.5)
    assert t["churn_rate"].value == pytest.approx(0.5)
    # previous: active at 11-01 (365d) needs orders from 2023-11-03; data starts 2023-11-15
    assert t["retention_rate"].previous is None and t["churn_rate"].previous is None
    assert "no comparison" in t["retention_rate"].note
    assert not t["churn_rate"].higher_is_better


def test_revenue_orders_and_aov(company):
    t = tiles(company)
    assert (t["revenue"].value, t["revenue"].previous) == (190, 0)  # 30 + 80 + 20 + 60
    assert (t["orders"].value, t["orders"].previous) == (4, 0)
    assert t["aov"].value == pytest.approx(47.5)
    assert t["aov"].previous is None  # no orders: no average
    web = tiles(company, channel="web")
    assert (web["revenue"].value, web["orders"].value) == (100, 2)


def test_revenue_per_active_customer(company):
    t = tiles(company)["revenue_per_active"]
    assert t.value == pytest.approx(190 / 3)
    assert t.previous == 0


def test_average_lifetime_value(company):
    assert tiles(company)["avg_clv"].value == pytest.approx((300 + 100 + 200 + 10) / 4)
    champions = tiles(company, scheme="rfm_segment", segment="Champions")["avg_clv"]
    assert champions.value == pytest.approx(250)
    assert champions.change is None  # a snapshot


def test_contactable_reach(company):
    t = tiles(company)["contactable_reach"]
    # opt-in now: A (email 03-01), B (email 12-10), C (sms 11-20), E (push 2023-01-01); D out.
    # A snapshot: consents keep only the latest status, so there is no earlier value to compare
    # (counting opt-ins given in the period would be the change of another number)
    assert (t.value, t.previous, t.sparkline) == (4, None, ())
    assert t.delta_text() is None
    assert "80% of 5 customers" in t.help
    assert tiles(company, source_system="crm")["contactable_reach"].value == 2  # C, E


def test_hygiene_score_absent_without_hygiene_stage(company):
    t = tiles(company)["hygiene_score"]
    assert t.value is None and "hygiene" in t.note


def test_segment_filter_restricts_every_additive_kpi(company):
    t = tiles(company, scheme="rfm_segment", segment="Champions")  # A and C
    assert t["revenue"].value == 90  # A 30 + C 60
    assert t["active_customers"].value == 2
    assert t["new_customers"].value == 0


def test_custom_period_matches_the_standard_one(company):
    custom = tiles(company, period="custom", start=date(2024, 12, 2), end=date(2024, 12, 31))
    standard = tiles(company)
    for key in ("revenue", "orders", "active_customers", "repeat_rate", "retention_rate"):
        assert custom[key].value == pytest.approx(standard[key].value), key
    # 12 days: buyers come from orders directly (no stored window of that length)
    twelve = tiles(company, period="custom", start=date(2024, 12, 20), end=date(2024, 12, 31))
    assert twelve["revenue"].value == 90  # A 30 (12-20), C 60 (12-31)
    assert twelve["repeat_rate"].value == pytest.approx(1.0)  # A and C both bought before
    # previous 12 days (12-08..12-19): nobody bought -> no rate; 12-05/06 of B are before
    assert twelve["repeat_rate"].previous is None


def test_a_previous_period_the_data_does_not_cover_shows_no_change(company):
    t = tiles(company, period="365")
    # period 2024-01-02..12-31; previous 2023-01-03..2024-01-01 starts before the data
    for key in ("revenue", "orders", "new_customers", "repeat_rate", "active_customers"):
        assert t[key].previous is None and t[key].delta_text() is None, key
        assert "no comparison: the previous period needs data from" in t[key].note, key
        assert "data starts 15 Nov 2023" in t[key].note, key
    # o1 100, o2 50, o3 30, o4 80, o5 20, o7 60
    assert t["revenue"].value == 340 and "incomplete" not in t["revenue"].note
    # first orders in the period: A (01-10), B (12-05); but knowing a first order needs the
    # active window before the period (from 2023-01-02): the value is kept and marked
    assert t["new_customers"].value == 2
    assert t["new_customers"].note.startswith("incomplete: needs data from 2 Jan 2023")
    assert t["new_customers"].sparkline == ()  # no evaluation date is covered either


def test_a_previous_period_that_starts_on_the_first_day_of_data_compares(company):
    # previous 2023-11-15..12-14 holds o8 (20, 11-15) and o6 (40, 12-01)
    t = tiles(company, period="custom", start=date(2023, 12, 15), end=date(2024, 1, 13))
    assert (t["revenue"].value, t["revenue"].previous) == (
        110,
        60,
    )  # o9 (12-15) 10 + o1 (01-10) 100
    assert t["revenue"].delta_text() == "+50.00 (+83%)"
    # one day earlier, the previous period starts the day before the data
    early = tiles(company, period="custom", start=date(2023, 12, 14), end=date(2024, 1, 12))
    assert early["revenue"].previous is None and early["revenue"].value == 110


def test_sparklines_end_with_the_tile_value(company):
    for t in kpis.kpi_tiles(company, KpiFilters()):
        if t.sparkline:
            assert t.sparkline[-1] == pytest.approx(t.value), t.key


def test_delta_text():
    assert kpis.KpiTile("x", "X", "count", 110, 100).delta_text() == "+10 (+10%)"
    assert kpis.KpiTile("x", "X", "count", 1050, 1000).delta_text() == "+50 (+5.0%)"
    assert kpis.KpiTile("x", "X", "ratio", 0.5, 0.6).delta_text() == "-10.0 pp"
    assert kpis.KpiTile("x", "X", "currency", 2.5e6, 2e6).delta_text() == "+500.0k (+25%)"
    assert kpis.KpiTile("x", "X", "count", 1, None).delta_text() is None


# --- funnel, cohorts, journeys ------------------------------------------------------------------


def test_funnel_counts_and_rates(company):
    f = kpis.funnel_by_segment(company, 30, "rfm_segment").set_index("segment")
    everyone = f.loc["everyone"]
    # reached: A B C D E; engaged: A (visit) B (click) D (open); converted: A B; repeat: A B;
    # loyal (>= 3 orders in this build): A
    assert [everyone[s] for s in kpis.FUNNEL_STAGES] == [5, 3, 2, 2, 1]
    assert everyone["rate_engaged"] == pytest.approx(0.6)
    assert everyone["rate_converted"] == pytest.approx(2 / 3)
    assert everyone["rate_loyal"] == pytest.approx(0.5)
    # RFM segments as of 2024-12-01 (the day before the period), from the orders up to then:
    # A (2 orders, 150, last 06-01), C (1, 40, 2023-12-01), D (2, 30, 2023-12-15). Quintile
    # scores among the three: r = A 4, D 2, C 1; f = A 2, D 2, C 1 -> A Potential loyalist
    # (r >= 4, f = 2), D Hibernating (r = 2, f <= 2), C Lost (r = 1); B and E had no order yet
    assert set(f["membership"]) == {"everyone", "period_start"}
    expected = {
        "Potential loyalist": [1, 1, 1, 1, 1],  # A: visit, ordered 12-20, 3 orders
        "No purchase yet": [2, 1, 1, 1, 0],  # B (click, ordered 12-05, 2 orders) and E
        "Hibernating": [1, 1, 0, 0, 0],  # D: opened, no order
        "Lost": [1, 0, 0, 0, 0],  # C: an sms send only; C's 12-31 order follows no engagement
    }
    for segment, counts in expected.items():
        assert [f.loc[segment][s] for s in kpis.FUNNEL_STAGES] == counts, segment
    # today's stand-in segment 'Champions' (A and C) is not what the funnel splits by
    assert "Champions" not in f.index
    # a period of 10 days uses the stored 30-day funnel
    assert kpis.funnel_period(10) == 30


def test_funnel_of_an_unknown_scheme_is_everyone_alone_and_an_empty_funnel_stays_empty(company):
    f = kpis.funnel_by_segment(company, 30, "no_such_scheme")
    assert f["segment"].tolist() == ["everyone"]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE mart_funnel (period_days INTEGER, scheme VARCHAR, segment VARCHAR, "
        "customers BIGINT, reached BIGINT, engaged BIGINT, converted BIGINT, repeat BIGINT, "
        "loyal BIGINT, membership VARCHAR)"
    )
    assert kpis.funnel_by_segment(con, 30, "rfm_segment").empty  # no row of NaN named everyone


def test_funnel_stages_are_nested_on_every_row(company):
    f = kpis.funnel_by_segment(company, 365, "rfm_segment")
    counts = f[list(kpis.FUNNEL_STAGES)].to_numpy()
    assert (np.diff(counts, axis=1) <= 0).all()


def test_cohort_retention_counts(company):
    c = kpis.cohort_retention(company)
    jan = c[c["cohort_month"] == pd.Timestamp("2024-01-01")].set_index("months_since")
    assert list(jan.index) == [0, 5, 11]  # A: Jan, Jun, Dec
    assert (jan["active_customers"] == 1).all() and (jan["retention"] == 1.0).all()
    nov = c[c["cohort_month"] == pd.Timestamp("2023-11-01")].set_index("months_since")
    assert list(nov.index) == [0, 1]  # D: Nov and Dec 2023
    assert c.groupby("cohort_month")["cohort_customers"].first().sum() == 4  # A B C D


def test_journeys_from_events(company):
    paths = kpis.first_purchase_paths(company)
    got = {tuple(p): n for p, n in zip(paths["path"], paths["conversions"], strict=True)}
    # B: email send, email click, web visit (collapsed to email, web), 4 days; D: display, 5
    # days; A and C: no tracked touch before their first order: counted apart, not as a path
    assert got == {("email", "web"): 1, ("display",): 1}
    assert paths["share"].tolist() == [0.5, 0.5]  # of the first purchases with a touch
    assert set(paths["source"]) == {"mart_journeys"}
    assert kpis.first_purchase_summary(company) == {"customers": 4, "tracked": 2, "untracked": 2}
    champions = kpis.first_purchase_summary(company, "rfm_segment", "Champions")  # A, C
    assert champions == {"customers": 2, "tracked": 0, "untracked": 2}
    lengths = kpis.path_length_distribution(company)
    assert dict(zip(lengths["path_length"], lengths["customers"], strict=True)) == {1: 1, 2: 1}
    ttc = kpis.time_to_convert_distribution(company)
    assert dict(zip(ttc["days_to_convert"], ttc["customers"], strict=True)) == {4: 1, 5: 1}


def test_journeys_to_a_first_purchase_ignore_mart_paths(tmp_path):
    """mart_paths (the paths stage) holds every order with attribution's lookback: the
    first-purchase journeys keep reading the radar_funnel stage's own mart."""
    path = radar_data.build_company(tmp_path / "r.duckdb")
    con = store.connect_writer(path)
    try:
        con.execute(
            "CREATE TABLE mart_paths AS SELECT 'all' AS scheme, 'all' AS segment, "
            "['social', 'email'] AS path, 3.0 AS conversions, 0.0 AS nulls, 10.0 AS value"
        )
        paths = kpis.first_purchase_paths(con)
        assert sorted(map(tuple, paths["path"])) == [("display",), ("email", "web")]
        assert paths["source"].iloc[0] == "mart_journeys"
        assert kpis.path_length_distribution(con)["path_length"].tolist() == [1, 2]
    finally:
        con.close()


# --- filters and URL --------------------------------------------------------------------------


def test_filter_options(company):
    o = kpis.filter_options(company)
    assert (o.data_start, o.data_end) == (date(2023, 11, 15), date(2024, 12, 31))
    assert o.channels == ("store", "web") and o.source_systems == ("crm", "shop")
    assert ("rfm_segment", "Champions") in o.segments


def test_filters_round_trip_through_query_params(company):
    o = kpis.filter_options(company)
    f = KpiFilters(
        period="custom",
        start=date(2024, 6, 1),
        end=date(2024, 6, 30),
        scheme="rfm_segment",
        segment="Champions",
        channel="web",
        source_system="shop",
        active_window=90,
    )
    params = kpis.filters_to_params(f)
    assert params["segment"] == "rfm_segment:Champions"
    back, warnings = kpis.filters_from_params(params, o)
    assert back == f and warnings == []
    assert kpis.filters_to_params(KpiFilters()) == {}


def test_unknown_query_params_fall_back_with_a_warning(company):
    o = kpis.filter_options(company)
    f, warnings = kpis.filters_from_params(
        {"channel": "fax", "period": "12", "segment": "rfm_segment:Nope", "window": "5"}, o
    )
    assert f == KpiFilters()
    assert len(warnings) == 4 and any("fax" in w for w in warnings)


# --- saved rule segments -----------------------------------------------------------------------


def test_a_saved_segment_s_tiles_are_its_members_numbers(saved_company):
    """The members' orders counted with pandas from radar_data's rows, not from any mart."""
    orders = pd.DataFrame(
        radar_data.ORDERS, columns=["order_id", "ts", "system", "customer", "revenue", "channel"]
    )
    orders["day"] = pd.to_datetime(orders["ts"]).dt.date
    clv = pd.DataFrame(radar_data.MART_CUSTOMER, columns=["customer", "rfm", "clv"])
    members = set(clv.loc[clv["clv"].between(50, 250), "customer"])  # the rule: B and C
    mine = orders[orders["customer"].isin(members)]

    def revenue(first, last):
        return mine.loc[mine["day"].between(first, last), "revenue"].sum()

    t = tiles(saved_company, scheme=kpis.SAVED, segment=radar_data.MID_VALUE)
    now, before = (date(2024, 12, 2), date(2024, 12, 31)), (date(2024, 11, 2), date(2024, 12, 1))
    assert (t["revenue"].value, t["revenue"].previous) == (revenue(*now), revenue(*before))
    assert t["revenue"].value == 160  # B 80 + 20, C 60
    assert t["orders"].value == mine["day"].between(*now).sum() == 3
    active = mine.loc[mine["day"].between(date(2024, 1, 1), now[1]), "customer"].nunique()
    assert t["active_customers"].value == active == 2
    assert t["avg_clv"].value == pytest.approx(clv.loc[clv["customer"].isin(members), "clv"].mean())
    # channel web: B's two orders
    web = tiles(saved_company, scheme=kpis.SAVED, segment=radar_data.MID_VALUE, channel="web")
    assert web["revenue"].value == 100


def test_a_saved_segment_with_a_built_in_segment_s_members_has_its_numbers(saved_company):
    con = saved_company  # "High CLV" = A and C = today's Champions
    views = [{}, {"period": "365"}, {"channel": "store", "active_window": 30}]
    views.append({"period": "custom", "start": date(2024, 12, 20), "end": date(2024, 12, 31)})
    for kw in views:
        saved = kpis.kpi_tiles(con, KpiFilters(scheme=kpis.SAVED, segment="High CLV", **kw))
        built = kpis.kpi_tiles(con, KpiFilters(scheme="rfm_segment", segment="Champions", **kw))
        assert saved == built, kw
        for dim in ("channel", "source_system"):
            a = kpis.kpi_drivers(
                con, KpiFilters(scheme=kpis.SAVED, segment="High CLV", **kw), "revenue", dim
            )
            b = kpis.kpi_drivers(
                con, KpiFilters(scheme="rfm_segment", segment="Champions", **kw), "revenue", dim
            )
            assert a.groups.equals(b.groups) and a.now == b.now, (kw, dim)
    for fn in (
        kpis.cohort_retention,
        kpis.first_purchase_paths,
        kpis.path_length_distribution,
        kpis.time_to_convert_distribution,
    ):
        saved = fn(con, kpis.SAVED, "High CLV")
        pd.testing.assert_frame_equal(saved, fn(con, "rfm_segment", "Champions"))
    assert kpis.first_purchase_summary(con, kpis.SAVED, "High CLV") == {
        "customers": 2,
        "tracked": 0,
        "untracked": 2,
    }
    # the funnel: everyone and the saved segment with today's members. A: visit 12-31, ordered
    # 12-20, 3 orders (loyal at 3 in this build); C: an sms send only
    f = kpis.funnel_by_segment(con, 30, kpis.SAVED, "High CLV").set_index("segment")
    assert list(f.index) == ["everyone", "High CLV"]
    assert [f.loc["High CLV"][s] for s in kpis.FUNNEL_STAGES] == [2, 1, 1, 1, 1]
    assert f.loc["High CLV"]["membership"] == "today"


def test_saved_segments_are_filter_choices_that_survive_a_link(saved_company):
    con = saved_company
    names = kpis.saved_segment_names(con)
    assert names == ("High CLV", radar_data.MID_VALUE)
    o = kpis.with_saved_segments(kpis.filter_options(con), names)
    assert o.segments[-2:] == ((kpis.SAVED, "High CLV"), (kpis.SAVED, radar_data.MID_VALUE))
    assert kpis.segment_label(kpis.SAVED, radar_data.MID_VALUE) == f"Saved: {radar_data.MID_VALUE}"
    assert kpis.segment_label("rfm_segment", "Lost") == "RFM segment: Lost"
    f = KpiFilters(scheme=kpis.SAVED, segment=radar_data.MID_VALUE, channel="web")
    params = kpis.filters_to_params(f)
    assert params["segment"] == f"saved:{radar_data.MID_VALUE}"
    assert kpis.filters_from_params(params, o) == (f, [])
    back, warnings = kpis.filters_from_params({"segment": "saved:Deleted one"}, o)
    assert back == KpiFilters() and "no saved segment" in warnings[0]
    # saved segments may overlap: no split by them, and not the funnel's default scheme
    assert kpis.SAVED not in kpis.driver_dimensions(KpiFilters(), o)
    assert kpis.funnel_scheme(KpiFilters(), o) == "rfm_segment"
    assert kpis.command_center(con, f).tiles[0].value is not None


def test_a_redefined_or_broken_saved_segment(saved_company):
    con = saved_company
    high = {"scheme": kpis.SAVED, "segment": "High CLV"}
    assert tiles(con, **high)["revenue"].value == 90  # A 30 + C 60
    radar_data.write_saved_segments(
        con,
        {
            "High CLV": [{"column": "clv", "operator": ">=", "value": 250}],  # A alone now
            "Broken": [{"column": "dropped_column", "operator": "=", "value": "x"}],
        },
    )
    assert tiles(con, **high)["revenue"].value == 30  # not the kept rows of the old rules
    assert "Broken" not in kpis.saved_segment_names(con)


# --- pages must cope with missing marts -------------------------------------------------------


def test_everything_is_empty_before_the_radar_stages(tmp_path):
    con = store.connect_writer(tmp_path / "empty.duckdb")
    try:
        radar_data.write_company(con, with_segments=False)
        view = kpis.command_center(con)
        assert view.tiles == [] and not view.options.ready
        assert view.options.missing == ("customer_kpis",)
        assert kpis.funnel_by_segment(con, 30).empty
        assert kpis.first_purchase_paths(con).empty
        assert kpis.kpi_alerts(con).empty
    finally:
        con.close()


def test_without_mart_customer_there_are_no_segments(tmp_path):
    path = radar_data.build_company(tmp_path / "r.duckdb", with_segments=False)
    con = store.connect_reader(path)
    try:
        assert kpis.filter_options(con).segments == ()
        t = tiles(con)
        assert t["avg_clv"].value is None and t["revenue"].value == 190
        view = kpis.command_center(con)
        assert len(view.tiles) == 12 and not view.funnel.empty
    finally:
        con.close()


# --- forecast and alerts on hand-made series --------------------------------------------------


def _series(seed: int, level: float, n: int = 730) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Poisson counts with trend, weekly and yearly seasonality (multiplicative)."""
    t = np.arange(n)
    mu = (
        level
        * (1 + 0.3 * t / n)
        * (1 + 0.25 * np.sin(2 * np.pi * t / 7))
        * (1 + 0.2 * np.cos(2 * np.pi * (t - 30) / 365.25))
    )
    return pd.date_range("2023-01-01", periods=n), mu


def test_forecast_flags_a_planted_drop_and_spike_and_little_else():
    hits, false = 0, 0
    for seed in range(10):
        dates, mu = _series(seed, level=30)
        mu[400:404] *= 0.4  # 60% drop for 4 days
        mu[600] *= 4  # one day at 4x
        y = np.random.default_rng(seed).poisson(mu).astype(float)
        alerts = kpis.group_alerts(kpis.fit_forecast(dates, y))
        start = pd.to_datetime(alerts["start_date"])
        end = pd.to_datetime(alerts["end_date"])
        on_drop = (start <= dates[403]) & (end >= dates[400])
        on_spike = (start <= dates[600]) & (end >= dates[600])
        hits += int((on_drop & (alerts["direction"] == "drop")).any())
        hits += int((on_spike & (alerts["direction"] == "spike")).any())
        false += int((~(on_drop | on_spike)).sum())
    assert hits == 20
    assert false <= 2  # 10 series x 730 days


def test_forecast_band_and_horizon():
    dates, mu = _series(0, level=50)
    y = np.random.default_rng(0).poisson(mu).astype(float)
    fc = kpis.fit_forecast(dates, y, settings=kpis.ForecastSettings(horizon_days=14))
    assert len(fc) == 730 + 14 and fc["is_forecast"].sum() == 14
    hist = fc[~fc["is_forecast"]]
    # the expected value tracks the true mean within a few percent
    assert np.median(np.abs(hist["expected"] / mu - 1)) < 0.05
    assert ((hist["lower"] <= hist["expected"]) & (hist["expected"] <= hist["upper"])).all()
    # outside the band <=> alert (no sustained runs in a clean series)
    outside = (hist["actual"] > hist["upper"]) | (hist["actual"] < hist["lower"])
    assert (outside == hist["is_alert"]).mean() > 0.99
    assert fc.loc[fc["is_forecast"], "actual"].isna().all()


def test_the_band_drawn_is_the_one_day_rule_and_other_alerts_say_why():
    """Every day outside the band is an alert ('outside band'); every alert inside it is part
    of a sustained move. The planted 4-day drop is mostly inside the 4.5-sd band."""
    reasons = set()
    for seed in range(4):
        dates, mu = _series(seed, level=30)
        mu[400:404] *= 0.4
        y = np.random.default_rng(seed).poisson(mu).astype(float)
        fc = kpis.fit_forecast(dates, y)
        hist = fc[~fc["is_forecast"]].iloc[28:]  # after the burn-in
        outside = (hist["actual"] < hist["lower"]) | (hist["actual"] > hist["upper"])
        assert (hist.loc[outside, "is_alert"]).all()
        assert (hist["reason"].notna() == hist["is_alert"]).all()
        assert (hist.loc[outside, "reason"] == "outside band").all()
        assert (hist.loc[hist["is_alert"] & ~outside, "reason"] == "sustained move").all()
        reasons |= set(hist["reason"].dropna())
    assert reasons == {"outside band", "sustained move"}


def test_the_legend_lists_only_the_alert_kinds_the_series_has():
    dates, mu = _series(3, level=30)
    y = np.random.default_rng(3).poisson(mu).astype(float)
    clean = kpis.fit_forecast(dates, y)
    assert not clean["is_alert"].any()
    names = [t.name for t in kpis.figure_forecast(clean, "Orders").data]
    assert not any(n and n.startswith("alert:") for n in names)
    mu[400:404] *= 0.4
    fc = kpis.fit_forecast(dates, np.random.default_rng(3).poisson(mu).astype(float))
    names = [t.name for t in kpis.figure_forecast(fc, "Orders").data]
    kinds = {n for n in names if n and n.startswith("alert:")}
    expected = {kpis.ALERT_REASONS[r][0] for r in set(fc["reason"].dropna())}
    assert kinds == expected and kinds


def test_an_empty_series_gives_an_empty_forecast():
    fc = kpis.fit_forecast([], [])
    assert fc.empty and list(fc.columns) == list(kpis.FORECAST_COLUMNS)
    assert kpis.group_alerts(fc).empty


def test_alerts_near_a_period_with_their_age():
    alerts = pd.DataFrame(
        {
            "grain": ["day", "week", "day", "day"],
            "start_date": [
                date(2024, 12, 20),
                date(2024, 11, 18),
                date(2024, 11, 25),
                date(2024, 9, 1),
            ],  # fmt: skip
            "end_date": [
                date(2024, 12, 22),
                date(2024, 11, 24),
                date(2024, 11, 27),
                date(2024, 9, 1),
            ],  # fmt: skip
            "message": ["a", "b", "c", "d"],
        }
    )
    # period 2024-12-02..12-31, data end 12-31; near = ended on or after 11-25
    near = kpis.alerts_near_period(
        alerts, date(2024, 12, 2), date(2024, 12, 31), date(2024, 12, 31)
    )
    assert near["message"].tolist() == ["a", "c"]
    assert near["age_days"].tolist() == [9, 34]
    assert kpis.alert_age(9) == "9 days before the data end"
    assert kpis.alert_age(1) == "1 day before the data end"
    assert kpis.alert_age(0) == "on the last day of data"
    # a 7-day period from 11-30: c (ended 11-27) and the weekly b (ended 11-24) are within the
    # 7 days before it, newest first
    week = kpis.alerts_near_period(
        alerts, date(2024, 11, 30), date(2024, 12, 6), date(2024, 12, 31)
    )
    assert week["message"].tolist() == ["c", "b"]
    assert week["age_days"].tolist() == [34, 37]
    assert kpis.alerts_near_period(alerts.iloc[:0], date(2024, 12, 2), date(2024, 12, 31),
                                   date(2024, 12, 31)).empty  # fmt: skip


def test_thin_series_do_not_alert_on_zero_days():
    dates = pd.date_range("2024-01-01", periods=400)
    y = np.random.default_rng(3).poisson(2.0, 400).astype(float)  # many zero days
    assert not kpis.fit_forecast(dates, y)["is_alert"].any()


def test_group_alerts_merges_a_run_and_reports_the_change():
    fc = pd.DataFrame(
        {
            "date": pd.date_range("2024-03-01", periods=6).date,
            "actual": [10.0, 2.0, 3.0, 10.0, 30.0, 10.0],
            "expected": [10.0] * 6,
            "score": [0.0, -5.0, -4.8, 0.1, 6.0, 0.0],
            "is_alert": [False, True, True, False, True, False],
        }
    )
    g = kpis.group_alerts(fc)
    assert g["direction"].tolist() == ["spike", "drop"]  # newest first
    drop = g.iloc[1]
    assert (drop["start_date"], drop["end_date"], drop["points"]) == (
        date(2024, 3, 2),
        date(2024, 3, 3),
        2,
    )
    assert drop["change"] == pytest.approx(-15) and drop["change_pct"] == pytest.approx(-0.75)
    msg = kpis.alert_message("orders", "app", drop)
    assert msg.startswith("Orders (channel app) fell 75% below forecast from 2024-03-02")


def test_kpi_alerts_stage_on_a_built_series(tmp_path):
    """The stage reads mart_daily_kpis and stores forecasts and alerts, newest first."""
    con = store.connect_writer(tmp_path / "a.duckdb")
    try:
        dates, mu = _series(1, level=40, n=400)
        mu[300] *= 5
        y = np.random.default_rng(1).poisson(mu)
        frame = pd.DataFrame(
            {
                "date": dates.date,
                "channel": "web",
                "source_system": "shop",
                "orders": y,
                "revenue": y * 20.0,
                "buyers": y,
                "new_customers": y // 4,
            }
        )
        pipeline.replace_table(con, "mart_daily_kpis", frame)
        ctx = pipeline.BuildContext(as_of=dates[-1].date(), run_id=1)
        assert kpis.kpi_alerts_stage(con, ctx) > 0
        alerts = kpis.kpi_alerts(con)
        spike = alerts[
            (alerts["metric"] == "orders")
            & (alerts["channel"] == "all")
            & (alerts["grain"] == "day")
        ]
        assert spike["start_date"].tolist() == [dates[300]]
        assert list(alerts["end_date"]) == sorted(alerts["end_date"], reverse=True)
        assert kpis.monitored_channels(con) == ["all", "web"]
        assert not kpis.kpi_forecast(con, "revenue", "web", "week").empty
        # a build setting may give the run length as one number
        ctx = pipeline.BuildContext(
            as_of=dates[-1].date(), run_id=2, params={"kpi_alerts": {"sustained_days": 4}}
        )
        assert kpis.kpi_alerts_stage(con, ctx) > 0
    finally:
        con.close()


def test_a_channel_that_sold_briefly_is_too_thin_to_monitor(tmp_path):
    """The threshold is orders per day of the whole history (the series monitored), not of the
    channel's own days: 'popup' sells 10 a day for 10 days of a 100-day history = 1 a day."""
    con = store.connect_writer(tmp_path / "thin.duckdb")
    try:
        dates = pd.date_range("2024-01-01", periods=100)
        web = pd.DataFrame({"date": dates.date, "channel": "web", "orders": 20})
        popup = pd.DataFrame({"date": dates[:10].date, "channel": "popup", "orders": 10})
        frame = pd.concat([web, popup], ignore_index=True).assign(
            source_system="shop", revenue=lambda f: f["orders"] * 10.0, buyers=1, new_customers=0
        )
        pipeline.replace_table(con, "mart_daily_kpis", frame)
        kpis.kpi_alerts_stage(con, pipeline.BuildContext(as_of=dates[-1].date(), run_id=1))
        assert kpis.monitored_channels(con) == ["all", "web"]
    finally:
        con.close()


# --- figures ----------------------------------------------------------------------------------


def test_figures_build_from_core_data(company):
    view = kpis.command_center(company)
    figs = [
        kpis.figure_funnel(view.funnel),
        kpis.figure_funnel_rates(view.funnel),
        kpis.figure_cohort_heatmap(view.cohorts),
        kpis.figure_journey_sankey(view.paths),
        kpis.figure_distribution(view.path_lengths, "path_length", "customers", "t", "x"),
        kpis.figure_forecast(view.forecast, "Revenue"),
    ]
    assert all(isinstance(f, go.Figure) for f in figs)
    sankey = figs[3].data[0]
    assert "Purchase" in sankey.node.label and sum(sankey.link.value) > 0
    # empty inputs give an empty figure with a title, not an exception
    assert "no data" in kpis.figure_cohort_heatmap(pd.DataFrame()).layout.title.text


def test_bench_operation_reports_page_timings(tmp_path):
    """The bench operation runs end to end (timings are reported, never asserted)."""
    from types import SimpleNamespace

    path = radar_data.build_company(tmp_path / "b.duckdb")
    rows, figures = kpis.bench_command_center(SimpleNamespace(db=path))
    assert rows == 5
    assert set(figures) == {
        "uncached_cold_ms",
        "uncached_p50_ms",
        "uncached_max_ms",
        "cached_p50_ms",
    }


def test_first_order_ties_on_time_are_broken_by_order_id(tmp_path):
    """Two first orders at the same second: the first order is the one with the smaller id,
    and its channel, source and revenue all come from that one order."""
    con = store.connect_writer(tmp_path / "tie.duckdb")
    try:
        radar_data.write_company(con)
        con.execute("INSERT INTO src_customers (source_system, source_id) VALUES ('shop', 'F')")
        con.executemany(  # the larger id is stored first
            "INSERT INTO orders (order_id, ts, source_system, source_id, revenue, channel) "
            "VALUES (?, TIMESTAMP '2024-12-10 10:00', ?, 'F', ?, ?)",
            [("oF2", "shop", 7.0, "store"), ("oF1", "shop", 9.0, "web")],
        )
        con.execute(radar_data.CONTRACT_SQL)
        results = pipeline.build(con, stages=["daily_kpis", "customer_kpis"])
        assert [r.status for r in results] == ["ok", "ok"]
        first = con.execute(
            "SELECT first_order_channel, first_order_source, first_order_revenue "
            "FROM mart_customer_kpis WHERE customer_id = 'F'"
        ).fetchall()
        assert first == [("web", "shop", 9.0)]
        new = con.execute(
            "SELECT channel, sum(new_customers) FROM mart_daily_kpis "
            "WHERE date = DATE '2024-12-10' GROUP BY channel ORDER BY channel"
        ).fetchall()
        assert ("web", 1) in new and all(n == 0 for ch, n in new if ch == "store")
    finally:
        con.close()


# --- why a KPI changed: drivers, the same period last year, alert links -----------------------
# Default view: 2024-12-02..12-31. The same period last year: 2023-12-02..12-31, which holds one
# order, o9 (D, web, shop, 10). The period: o4 80 + o5 20 (B, web, shop), o3 30 (A, store,
# shop), o7 60 (C, store, crm): 4 orders, 190.


def test_the_revenue_bridge_adds_up_to_the_change():
    # average order 10 -> 47.5; orders 1 -> 4; change 180
    orders_effect, value_effect = kpis.revenue_bridge(10.0, 1, 190.0, 4)
    assert orders_effect == pytest.approx(3 * (10 + 47.5) / 2)  # 86.25
    assert value_effect == pytest.approx(37.5 * (1 + 4) / 2)  # 93.75
    assert orders_effect + value_effect == 180.0
    # the split is symmetric: going back undoes both effects
    assert kpis.revenue_bridge(190.0, 4, 10.0, 1) == pytest.approx((-86.25, -93.75))
    # same orders: all of the change is order value; no orders before: all of it is orders
    assert kpis.revenue_bridge(60.0, 2, 110.0, 2) == (0.0, 50.0)
    assert kpis.revenue_bridge(0.0, 0, 190.0, 4) == (190.0, 0.0)
    assert kpis.revenue_bridge(50.0, 2, 0.0, 0) == (-50.0, 0.0)


def test_the_same_period_last_year():
    assert kpis.year_earlier(date(2024, 12, 31)) == date(2023, 12, 31)
    assert kpis.year_earlier(date(2024, 2, 29)) == date(2023, 2, 28)
    o = (date(2023, 11, 15), date(2024, 12, 31))
    ago = kpis.comparison_period(KpiFilters(), *o, "year_ago")
    assert (ago.start, ago.end, ago.covered) == (date(2023, 12, 2), date(2023, 12, 31), True)
    prev = kpis.comparison_period(KpiFilters(), *o, "previous")
    assert (prev.start, prev.end, prev.covered) == (date(2024, 11, 2), date(2024, 12, 1), True)
    # new customers read the period and the active window before it: the 30 + 365 days up to
    # 2023-12-31 start on 2022-12-02, before the data
    new = kpis.comparison_period(KpiFilters(), *o, "year_ago", "new_customers")
    assert not new.covered and "needs data from 2 Dec 2022" in new.note()
    assert not kpis.comparison_period(KpiFilters(period="365"), *o, "year_ago").covered


def test_tiles_compare_with_the_same_period_last_year(company):
    t = tiles(company)
    assert t["revenue"].year_ago == 10 and t["revenue"].year_ago_text() == "+180.00 (+1800%)"
    assert t["orders"].year_ago == 1 and t["aov"].year_ago == pytest.approx(10)
    # active customers (365d) on 2023-12-31 need orders from 2023-01-01: not covered
    assert t["active_customers"].year_ago is None and t["new_customers"].year_ago is None
    assert t["contactable_reach"].year_ago_text() is None  # a snapshot
    # a 365-day period a year earlier starts long before the data
    assert tiles(company, period="365")["revenue"].year_ago is None


def _groups(d) -> dict[str, tuple]:
    return {r.group: (r.before, r.now, r.change) for r in d.groups.itertuples()}


def test_revenue_drivers_against_last_year_by_channel_source_and_segment(company):
    by_channel = kpis.kpi_drivers(company, KpiFilters(), "revenue", "channel", "year_ago")
    assert (by_channel.before, by_channel.now, by_channel.change) == (10, 190, 180)
    assert (by_channel.orders_before, by_channel.orders_now) == (1, 4)
    assert by_channel.effects == pytest.approx((86.25, 93.75))
    # web 10 -> 100 (B), store 0 -> 90 (A 30, C 60): a tie, by name
    assert _groups(by_channel) == {"store": (0, 90, 90), "web": (10, 100, 90)}
    assert by_channel.groups["group"].tolist() == ["store", "web"]
    assert by_channel.groups["share_of_change"].tolist() == [0.5, 0.5]
    by_source = kpis.kpi_drivers(company, KpiFilters(), "revenue", "source_system", "year_ago")
    assert by_source.groups["group"].tolist() == ["shop", "crm"]  # +120 (A, B, less D), +60 (C)
    assert _groups(by_source) == {"shop": (10, 130, 120), "crm": (0, 60, 60)}
    # today's segments: Champions A and C, New B, Lost D
    by_segment = kpis.kpi_drivers(company, KpiFilters(), "revenue", "rfm_segment", "year_ago")
    assert _groups(by_segment) == {"New": (0, 100, 100), "Champions": (0, 90, 90),
                                   "Lost": (10, 0, -10)}  # fmt: skip
    assert by_segment.groups["group"].tolist() == ["New", "Champions", "Lost"]
    for d in (by_channel, by_source, by_segment):
        assert d.groups["change"].sum() == d.change
    # orders of store only: 0 -> 2 (A, C)
    store_orders = kpis.kpi_drivers(
        company, KpiFilters(channel="store"), "orders", "channel", "year_ago"
    )
    assert (store_orders.before, store_orders.now, store_orders.effects) == (0, 2, None)


def test_drivers_against_a_period_the_data_does_not_cover(company):
    # new customers against the previous period need data from 2023-11-03 (period + window)
    d = kpis.kpi_drivers(company, KpiFilters(), "new_customers", "channel", "previous")
    assert d.before is None and d.change is None and d.effects is None
    assert d.note.startswith("no comparison with the previous period: it needs data from 3 Nov")
    assert _groups(d)["web"][1] == 1  # B's first order, on web
    assert d.groups["change"].isna().all()
    # against the previous 30 days, revenue is covered (no orders then: all of it is orders)
    prev = kpis.kpi_drivers(company, KpiFilters(), "revenue", "channel", "previous")
    assert (prev.before, prev.effects, prev.note) == (0, (190, 0), "")


def test_customers_in_no_segment_are_one_group_and_a_segment_view_has_no_segment_split(
    tmp_path,
):
    con = store.connect_writer(tmp_path / "r.duckdb")
    try:
        radar_data.write_company(con)
        con.execute("DELETE FROM mart_customer WHERE customer_id = 'B'")
        pipeline.build(con, stages=["daily_kpis", "customer_kpis"])
        d = kpis.kpi_drivers(con, KpiFilters(), "revenue", "rfm_segment", "year_ago")
        assert _groups(d) == {kpis.NO_SEGMENT: (0, 100, 100), "Champions": (0, 90, 90),
                              "Lost": (10, 0, -10)}  # fmt: skip
        assert d.groups["change"].sum() == d.change == 180
        options = kpis.filter_options(con)
        assert set(kpis.driver_dimensions(KpiFilters(), options)) == {
            "channel", "source_system", "rfm_segment"}  # fmt: skip
        champions = KpiFilters(scheme="rfm_segment", segment="Champions")
        assert set(kpis.driver_dimensions(champions, options)) == {"channel", "source_system"}
        with pytest.raises(ValueError, match="no split by"):
            kpis.kpi_drivers(con, champions, "revenue", "rfm_segment")
        assert kpis.kpi_drivers(con, champions, "revenue", "channel", "year_ago").change == 90
    finally:
        con.close()


def test_driver_figures_start_at_zero_and_add_up(company):
    d = kpis.kpi_drivers(company, KpiFilters(), "revenue", "rfm_segment", "year_ago")
    bridge = kpis.figure_revenue_bridge(d).data[0]
    assert list(bridge.measure) == ["absolute", "relative", "relative", "total"]
    assert list(bridge.y) == pytest.approx([10, 86.25, 93.75, 190])
    fig = kpis.figure_driver_contributions(d, "Segment")
    assert list(fig.data[0].x) == ["Before", "New", "Champions", "Lost", "Now"]
    assert fig.layout.yaxis.rangemode == "tozero"
    # more groups than shown: the rest is one step, still adding up
    small = kpis.figure_driver_contributions(d, "Segment", top=2).data[0]
    assert list(small.x) == ["Before", "New", "2 others", "Now"]
    assert list(small.y) == pytest.approx([10, 100, 80, 190])
    # no comparison: the period's values by group, bars from zero
    none = kpis.kpi_drivers(company, KpiFilters(), "new_customers", "channel", "previous")
    assert kpis.figure_driver_contributions(none, "Sales channel").data[0].type == "bar"
    assert "no comparison" in kpis.figure_revenue_bridge(none).layout.title.text


def test_an_alert_link_names_one_alert_and_anything_else_names_none():
    alerts = pd.DataFrame(
        {
            "grain": ["day", "week"],
            "metric": ["orders", "revenue"],
            "channel": ["web:eu", "all"],
            "start_date": [date(2024, 12, 27), date(2024, 8, 5)],
            "end_date": [date(2024, 12, 28), date(2024, 8, 11)],
        }
    )
    key = kpis.alert_key(alerts.iloc[0])
    assert key == "day:orders:2024-12-28:web:eu"
    assert kpis.find_alert(alerts, key)["channel"] == "web:eu"
    assert kpis.find_alert(alerts, "week:revenue:2024-08-11:all")["metric"] == "revenue"
    for bad in ("", "day:orders:2024-12-28:web", "x" * 100_000, "a:b:not-a-date:c", "::::"):
        assert kpis.find_alert(alerts, bad) is None
    assert kpis.find_alert(alerts.iloc[:0], key) is None
    # six weeks before and two after (daily); half a year and eight weeks (weekly)
    assert kpis.alert_window(alerts.iloc[0]) == (date(2024, 11, 15), date(2025, 1, 11))
    assert kpis.alert_window(alerts.iloc[1]) == (date(2024, 2, 5), date(2024, 10, 6))


# --- chart hovers through the formatting layer ----------------------------------------------


def test_command_center_chart_hovers_are_formatted(company, monkeypatch):
    from dataclasses import replace

    from hover_checks import hover_problems

    monkeypatch.setenv("CCRM_CURRENCY", "EUR")
    view = kpis.command_center(company)
    paths = pd.DataFrame(
        {"path": [["paid_search", "direct_mail"], ["email"]], "conversions": [3, 1]}
    )
    lengths = pd.DataFrame({"path_length": [1, 2], "customers": [1200, 3]})
    drivers = replace(
        view.drivers,
        groups=view.drivers.groups.assign(
            group=["call_center", "web", "store"][: len(view.drivers.groups)]
        ),
    )
    no_comparison = replace(drivers, before=None)
    forecast = view.forecast
    checks = {
        "funnel": (kpis.figure_funnel(view.funnel), set()),
        "rates": (kpis.figure_funnel_rates(view.funnel), set()),
        "cohorts": (kpis.figure_cohort_heatmap(view.cohorts), set()),
        "sankey": (kpis.figure_journey_sankey(paths), set()),
        "lengths": (
            kpis.figure_distribution(lengths, "path_length", "customers", "Path length", "steps"),
            set(),
        ),
        "revenue trend": (
            kpis.figure_forecast(forecast, "Revenue", unit="currency"),
            set(range(2, 10)),
        ),
        "orders trend": (kpis.figure_forecast(forecast, "Orders"), set()),
        "bridge": (kpis.figure_revenue_bridge(drivers), {0}),
        "contributions": (kpis.figure_driver_contributions(drivers, "Sales channel"), {0}),
        "no comparison": (kpis.figure_driver_contributions(no_comparison, "Sales channel"), {0}),
    }
    for name, (fig, money) in checks.items():
        assert fig.data, name
        assert hover_problems(fig, money) == [], name
    sankey = checks["sankey"][0].data[0]
    assert {"Paid search", "Direct mail", "Purchase"} <= set(sankey.node.label)
    trend = checks["revenue trend"][0]
    assert "€%{y:,.2f}" in trend.data[3].hovertemplate  # actual revenue in the currency
    assert all(len(d) == 10 for d in trend.data[3].customdata)  # '2024-12-31': no time
