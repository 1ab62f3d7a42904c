"""Paths: journeys built by hand on a tiny database."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ccrm_core.foundation import pipeline, store
from ccrm_core.librarian import identity
from ccrm_core.radar import segments

DAY0 = datetime(2024, 1, 1, 9, 0)


def _d(day: int) -> datetime:
    return DAY0 + timedelta(days=day)


@pytest.fixture()
def tiny_con(tmp_path):
    con = store.connect_writer(tmp_path / "tiny.duckdb")
    con.execute(
        "INSERT INTO src_customers (source_system, source_id, first_name, email) VALUES "
        "('crm', '1', 'Ann', 'ann@example.com'), ('crm', '2', 'Bob', 'bob@example.org')"
    )
    events = [
        # customer 1: two touches then an order on day 10
        ("e1", _d(1), "email", "open", "crm", "1", None),
        ("e2", _d(2), "email", "send", "crm", "1", None),  # a bare send is not a touch
        ("e3", _d(5), "paid_search", "click", "crm", "1", None),
        ("e4", _d(6), "display", "impression", "crm", "1", None),  # nor an impression
        # sms 43 days before the next order: outside a 30-day window -> a null journey
        ("e5", _d(12), "sms", "click", "crm", "1", None),
        ("e6", _d(50), "display", "click", "crm", "1", None),
        # customer 2: anonymous social click, linked by a later login
        ("e7", _d(3), "social", "click", None, None, "ck1"),
        ("e8", _d(4), "web", "login", "crm", "2", "ck1"),
        ("e9", _d(6), "direct_mail", "send", "crm", "2", None),
        # a push open one day before the data end: its window is still open -> left out
        ("e10", _d(89), "push", "open", "crm", "2", None),
        # an unlinked cookie never reaches a customer
        ("e11", _d(7), "display", "click", None, None, "ck2"),
    ]
    con.executemany(
        "INSERT INTO events (event_id, ts, channel, event_type, source_system, source_id, "
        "anonymous_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        events,
    )
    con.executemany(
        "INSERT INTO orders (order_id, ts, source_system, source_id, revenue, channel) "
        "VALUES (?, ?, ?, ?, ?, 'web')",
        [
            ("o1", _d(10), "crm", "1", 100.0),
            ("o2", _d(55), "crm", "1", 50.0),
            ("o3", _d(8), "crm", "2", 70.0),
        ],
    )
    con.execute(
        "CREATE TABLE identity_map AS SELECT * FROM (VALUES "
        "('crm', '1', NULL, 'C1', 'source_record', 1.0), "
        "('crm', '2', NULL, 'C2', 'source_record', 1.0), "
        "(NULL, NULL, 'ck1', 'C2', 'login', 1.0)) "
        "t(source_system, source_id, anonymous_id, customer_id, method, match_probability)"
    )
    con.execute(identity.CUSTOMER_VIEWS_SQL)
    yield con
    con.close()


def _paths(con, scheme="all", segment="all") -> dict[tuple, tuple]:
    rows = con.execute(
        "SELECT path, conversions, nulls, value FROM mart_paths WHERE scheme = ? AND segment = ?",
        [scheme, segment],
    ).fetchall()
    return {tuple(r[0]): (r[1], r[2], r[3]) for r in rows}


# The identity contract is written by hand (identity resolution owns how it is resolved): paths reads only
# identity_map through the customer views.
STAGES = ["paths"]


def _build(con, params=None):
    results = pipeline.build(con, stages=STAGES, params=params)
    assert [r.status for r in results] == ["ok"] * len(STAGES), results


def test_paths_by_hand(tiny_con):
    _build(tiny_con)
    assert _paths(tiny_con) == {
        ("email", "paid_search"): (1, 0, 100.0),
        ("display",): (1, 0, 50.0),
        ("social", "direct_mail"): (1, 0, 70.0),
        ("sms",): (0, 1, 0.0),
    }


def test_lookback_window_is_a_setting(tiny_con):
    _build(tiny_con, {"paths": {"lookback_days": 60}})
    assert _paths(tiny_con) == {
        ("email", "paid_search"): (1, 0, 100.0),
        ("sms", "display"): (1, 0, 50.0),
        ("social", "direct_mail"): (1, 0, 70.0),
    }


def test_short_lookback_leaves_orders_without_touches(tiny_con):
    _build(tiny_con, {"paths": {"lookback_days": 3}})
    paths = _paths(tiny_con)
    # o1 and o2 have their nearest touch 5 days before; o3 keeps only the mail sent 2 days before
    assert paths[()] == (2, 0, 150.0)
    assert paths[("direct_mail",)] == (1, 0, 70.0)


def test_segments_count_the_orders_no_model_can_attribute(tiny_con):
    """Converting journeys with an empty path are counted apart: attribution credits only the
    others, so the page can say what the attributed total leaves out."""
    from ccrm_core.conductor import attribution, journeys

    _build(tiny_con, {"paths": {"lookback_days": 3}})
    row = journeys.segments(tiny_con).set_index(["scheme", "segment"]).loc[("all", "all")]
    # o1 and o2 (150) have no touch in 3 days; o3 (70) has the mail sent 2 days before
    # every other touch is more than 3 days before an order: five null journeys (e1, e3, e5,
    # e6 of customer 1 and the social click of customer 2; the late push window is still open)
    assert (row["conversions"], row["untracked"], row["nulls"]) == (3, 2, 5)
    assert (row["value"], row["untracked_value"]) == (220.0, 150.0)
    results = pipeline.build(tiny_con, stages=["attribution"])
    assert results[-1].status == "ok", results
    credited = attribution.load_attribution(tiny_con).groupby("model")["conversions"].sum()
    assert credited.round(9).eq(row["conversions"] - row["untracked"]).all()


def test_segments_from_mart_customer(tiny_con):
    _build(tiny_con)
    ids = {"1": "C1", "2": "C2"}
    tiny_con.execute(
        "CREATE TABLE mart_customer AS SELECT * FROM (VALUES (?, 'Champions', 'high', 'deal'), "
        "(?, 'At risk', 'low', 'deal')) t(customer_id, rfm_segment, value_tier, needs_segment)",
        [ids["1"], ids["2"]],
    )
    _build(tiny_con)
    assert segments.available_schemes(tiny_con) == ["rfm_segment", "value_tier", "needs_segment"]
    assert _paths(tiny_con, "rfm_segment", "At risk") == {("social", "direct_mail"): (1, 0, 70.0)}
    assert set(_paths(tiny_con, "value_tier", "high")) == {
        ("email", "paid_search"),
        ("display",),
        ("sms",),
    }
    # both customers share the needs segment: it holds every journey
    assert _paths(tiny_con, "needs_segment", "deal") == _paths(tiny_con)


def test_unknown_touch_channel_is_refused(tiny_con):
    results = pipeline.build(
        tiny_con, stages=STAGES, params={"paths": {"touch_types": {"tv": ["x"]}}}
    )
    assert results[-1].status == "failed" and "not addressable" in results[-1].error
