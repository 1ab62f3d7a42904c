"""ccrm_core.radar.segments and ccrm_core.conductor.audience on a small hand-made world with planted groups."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from ccrm_core.conductor import audience
from ccrm_core.foundation import privacy, store
from ccrm_core.foundation.pipeline import BuildContext
from ccrm_core.radar import segments, value

AS_OF = date(2024, 12, 31)
# four planted groups: (engagement channel, sales channel, category, basket size)
GROUPS = {
    "g_email": ("email", "store", "garden", 40.0),
    "g_web": ("web", "web", "electronics", 150.0),
    "g_sms": ("sms", "app", "fashion", 60.0),
    "g_call": ("call_center", "call_center", "home", 90.0),
}
PER_GROUP = 60


def _world() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    customers, orders, events, consents, truth = [], [], [], [], []
    start = datetime(2023, 1, 1)
    n_order = n_event = 0
    for g, (channel, sales, category, basket) in GROUPS.items():
        for i in range(PER_GROUP):
            cid = f"{g}_{i:03d}"
            truth.append((cid, g))
            created = start + timedelta(days=int(rng.integers(0, 300)))
            customers.append(
                (
                    cid,
                    f"Name{i}",
                    f"Family{i}",
                    f"  {cid.upper()}@Example.COM " if i % 10 else None,  # 10% without email
                    f"+1415555{i:04d}" if i % 3 else "(415) 555-0000",  # 1/3 not E.164
                    "Springfield",
                    created,
                    created,
                )
            )
            for _ in range(int(rng.integers(1, 7))):
                n_order += 1
                ts = created + timedelta(days=int(rng.integers(0, (AS_OF - created.date()).days)))
                cat = category if rng.random() < 0.85 else "other"
                ch = sales if rng.random() < 0.85 else "web"
                orders.append((f"O{n_order}", ts, cid, float(rng.gamma(5.0, basket / 5)), ch, cat))
            for _ in range(int(rng.integers(8, 25))):
                n_event += 1
                ts = created + timedelta(hours=int(rng.integers(0, 24 * 600)))
                ch = channel if rng.random() < 0.8 else str(rng.choice(["web", "display"]))
                etype = {"web": "visit", "call_center": "call"}.get(ch, "click")
                events.append((f"E{n_event}", ts, ch, etype, cid))
            # consents: email for everyone (20% opt_out), sms for half (the rest unrecorded)
            consents.append((cid, "email", "opt_out" if i % 5 == 0 else "opt_in", created))
            if i % 2 == 0:
                consents.append((cid, "sms", "opt_in" if i % 4 == 0 else "opt_out", created))
    for i in range(8):  # never active
        customers.append((f"idle_{i}", "Idle", "Person", None, None, None, start, start))
    return {
        "customers": pd.DataFrame(
            customers,
            columns=[
                "customer_id",
                "first_name",
                "last_name",
                "email",
                "phone",
                "city",
                "created_at",
                "updated_at",
            ],
        ),
        "orders": pd.DataFrame(
            orders, columns=["order_id", "ts", "customer_id", "revenue", "channel", "category"]
        ),
        "events": pd.DataFrame(
            events, columns=["event_id", "ts", "channel", "event_type", "customer_id"]
        ),
        "consents": pd.DataFrame(consents, columns=["customer_id", "channel", "status", "ts"]),
        "truth": pd.DataFrame(truth, columns=["customer_id", "group"]),
    }


def _load(con, world: dict[str, pd.DataFrame]) -> None:
    """The identity contract's tables and views, 1 source record = 1 customer."""
    w = world
    con.register("w_customers", w["customers"])
    con.register("w_orders", w["orders"])
    con.register("w_events", w["events"])
    con.register("w_consents", w["consents"])
    con.execute(
        "INSERT INTO orders SELECT order_id, ts, 'shop', customer_id, revenue, channel, category "
        "FROM w_orders"
    )
    con.execute(
        "INSERT INTO events SELECT event_id, ts, channel, event_type, 'shop', customer_id, NULL, "
        "NULL, NULL FROM w_events"
    )
    con.execute(
        "INSERT INTO consents SELECT 'shop', customer_id, channel, status, ts FROM w_consents"
    )
    con.execute("CREATE TABLE customers AS SELECT * FROM w_customers")
    con.execute(
        "CREATE TABLE identity_map AS SELECT 'shop' AS source_system, customer_id AS source_id, "
        "NULL AS anonymous_id, customer_id FROM w_customers"
    )
    con.execute(
        """
        CREATE VIEW customer_orders AS
        SELECT o.*, m.customer_id FROM orders o JOIN identity_map m
          ON m.source_system = o.source_system AND m.source_id = o.source_id;
        CREATE VIEW customer_events AS
        SELECT e.*, m.customer_id FROM events e LEFT JOIN identity_map m
          ON m.source_system = e.source_system AND m.source_id = e.source_id;
        CREATE VIEW customer_consents AS
        SELECT m.customer_id, c.channel, c.status, c.ts FROM consents c JOIN identity_map m
          ON m.source_system = c.source_system AND m.source_id = c.source_id;
        """
    )
    for name in ("w_customers", "w_orders", "w_events", "w_consents"):
        con.unregister(name)


def _build(con) -> None:
    ctx = BuildContext(as_of=AS_OF, run_id=1)
    value.value_stage(con, ctx)
    segments.segments_stage(con, ctx)


@pytest.fixture(scope="module")
def world():
    return _world()


@pytest.fixture(scope="module")
def built(tmp_path_factory, world):
    """The world loaded and built once per module (copy it before writing)."""
    path = tmp_path_factory.mktemp("world") / "world.duckdb"
    c = store.connect_writer(path)
    _load(c, world)
    _build(c)
    c.execute("CHECKPOINT")
    c.close()
    return path


@pytest.fixture()
def con(tmp_path, built):
    target = tmp_path / "world.duckdb"
    shutil.copy(built, target)
    c = store.connect_writer(target)
    yield c
    c.close()


def test_mart_customer_has_the_contract_columns_and_one_row_per_customer(con, world):
    cols = [r[0] for r in con.execute("DESCRIBE mart_customer").fetchall()]
    assert cols[: len(segments.MART_COLUMNS)] == list(segments.MART_COLUMNS)
    n, distinct = con.execute(
        "SELECT count(*), count(DISTINCT customer_id) FROM mart_customer"
    ).fetchone()
    assert n == distinct == len(world["customers"])
    idle = con.execute(
        "SELECT orders, revenue, rfm_segment, value_tier, needs_segment, clv FROM mart_customer "
        "WHERE customer_id = 'idle_0'"
    ).fetchone()
    assert idle == (0, 0.0, segments.NO_PURCHASE, segments.NO_PURCHASE, segments.NO_ACTIVITY, None)


def test_mart_values_agree_with_the_rfm_summary(con, world):
    tx = world["orders"].rename(columns={"revenue": "revenue"})
    want = value.rfm_summary(tx, AS_OF).set_index("customer_id")
    got = con.execute(
        "SELECT customer_id, orders, revenue, frequency, recency, T, monetary_value "
        "FROM mart_customer WHERE orders > 0"
    ).df()
    got = got.set_index("customer_id").loc[want.index]
    for col in ("orders", "revenue", "frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(got[col], want[col], rtol=1e-12)
    alive = con.execute("SELECT min(prob_alive), max(prob_alive) FROM mart_customer").fetchone()
    assert 0 < alive[0] <= alive[1] <= 1


def test_needs_segments_recover_the_planted_groups(con, world):
    got = con.execute(
        "SELECT customer_id, needs_segment FROM mart_customer WHERE needs_segment <> ?",
        [segments.NO_ACTIVITY],
    ).df()
    merged = got.merge(world["truth"], on="customer_id")
    assert len(merged) == len(world["truth"])
    assert adjusted_rand_score(merged["group"], merged["needs_segment"]) >= 0.9
    # names say what distinguishes each group
    by_group = merged.groupby("group")["needs_segment"].agg(lambda s: s.mode().iloc[0])
    assert "Email" in by_group["g_email"] or "Garden" in by_group["g_email"]
    assert "Phone" in by_group["g_call"] or "phone" in by_group["g_call"]
    k = con.execute("SELECT k FROM needs_segment_model WHERE chosen").fetchone()[0]
    assert 4 <= k <= 6


def test_needs_segment_labels_are_stable_across_rebuilds(con):
    before = con.execute("SELECT customer_id, needs_segment FROM mart_customer").df()
    _build(con)
    after = con.execute("SELECT customer_id, needs_segment FROM mart_customer").df()
    pd.testing.assert_frame_equal(before, after)


def test_needs_segment_names_survive_a_data_change(con):
    """Drop 15% of the orders and rebuild: clusters move a little, names are carried over."""
    before = con.execute("SELECT customer_id, needs_segment FROM mart_customer").df()
    con.execute("DELETE FROM orders WHERE hash(order_id) % 100 < 15")
    _build(con)
    after = con.execute("SELECT customer_id, needs_segment FROM mart_customer").df()
    merged = before.merge(after, on="customer_id", suffixes=("_before", "_after"))
    same = (merged["needs_segment_before"] == merged["needs_segment_after"]).mean()
    assert same >= 0.9


def test_fit_needs_segments_is_independent_of_row_order():
    rng = np.random.default_rng(0)
    centres = np.eye(4) * 4
    x = np.vstack([rng.normal(c, 1.0, (80, 4)) for c in centres])
    frame = pd.DataFrame(x, columns=["share_email", "share_web", "cat_toys", "cat_home"])
    ids = pd.Series([f"C{i:03d}" for i in range(len(frame))])
    labels, model = segments.fit_needs_segments(frame, ids, seed=0)
    perm = rng.permutation(len(frame))
    labels2, _ = segments.fit_needs_segments(frame.iloc[perm], ids.iloc[perm], seed=0)
    a = pd.Series(labels, index=ids)
    b = pd.Series(labels2, index=ids.iloc[perm].to_numpy())
    assert (a == b.loc[a.index]).all()
    truth = np.repeat(np.arange(4), 80)
    assert adjusted_rand_score(truth, labels) >= 0.97  # the clouds overlap a little
    assert model.k == 4 and len(set(labels)) == 4
    assert sorted(model.centroids.index) == sorted(set(labels))


def test_value_tiers_cut_at_the_stated_shares():
    clv = pd.Series(np.arange(200, 0, -1, dtype=float))  # 200 buyers, best first
    tiers = segments.value_tiers(pd.concat([clv, pd.Series([np.nan])], ignore_index=True))
    counts = pd.Series(tiers).value_counts()
    assert counts["Platinum (top 1%)"] == 2
    assert counts["Gold (next 4%)"] == 8
    assert counts["Silver (next 15%)"] == 30
    assert counts["Bronze (rest)"] == 160
    assert tiers[-1] == segments.NO_PURCHASE
    assert tiers[0] == "Platinum (top 1%)" and tiers[2] == "Gold (next 4%)"


def test_rule_segments_count_save_and_list(con):
    rules = [
        segments.Rule("orders", ">=", 3),
        segments.Rule("needs_segment", "!=", segments.NO_ACTIVITY),
    ]
    counts = segments.rule_counts(con, rules)
    want = con.execute(
        "SELECT count(*) FROM mart_customer WHERE orders >= 3 AND needs_segment <> ?",
        [segments.NO_ACTIVITY],
    ).fetchone()[0]
    assert counts["customers"] == want > 0
    assert segments.save_segment(con, "Repeat buyers", rules) == want
    saved = segments.saved_segments(con)
    assert list(saved["name"]) == ["Repeat buyers"]
    members = segments.segment_members(con, "saved", "Repeat buyers")
    assert len(members) == want
    first_created = con.execute("SELECT created_at FROM saved_segments").fetchall()[0][0]
    # saving again under the same name replaces it and keeps the day it was first created
    segments.save_segment(con, "Repeat buyers", [{"column": "orders", "operator": ">", "value": 4}])
    assert len(segments.saved_segments(con)) == 1
    [(created, updated)] = con.execute(
        "SELECT created_at, updated_at FROM saved_segments"
    ).fetchall()
    assert created == first_created < updated
    profile = segments.segment_profile(con, "saved")
    want5 = con.execute("SELECT count(*) FROM mart_customer WHERE orders > 4").fetchone()[0]
    assert profile.loc[0, "customers"] == want5
    assert segments.delete_segment(con, "Repeat buyers")
    assert segments.saved_segments(con).empty


def test_saved_segments_survive_a_rebuild(con):
    segments.save_segment(con, "Big spenders", [segments.Rule("revenue", ">", 300)])
    _build(con)
    assert list(segments.saved_segments(con)["name"]) == ["Big spenders"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (segments.Rule("orders; DROP TABLE mart_customer", ">", 1), "not in mart_customer"),
        (segments.Rule("orders", "LIKE", "1"), "does not apply"),
        (segments.Rule("orders", ">", "three"), "not a number"),
        (segments.Rule("rfm_segment", ">", "x"), "does not apply"),
        (segments.Rule("orders", "between", [1]), "two values"),
        (segments.Rule("last_order_date", ">", "yesterday-ish"), "not a date"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(con, rule, message):
    with pytest.raises(segments.RuleError, match=message):
        segments.rule_counts(con, [rule])
    assert segments.mart_ready(con)  # nothing was executed


def test_rule_values_are_parameters_not_sql(con):
    evil = segments.Rule("rfm_segment", "=", "x' OR '1'='1")
    assert segments.rule_counts(con, [evil])["customers"] == 0
    contains = segments.Rule("needs_segment", "contains", "%")
    assert segments.rule_counts(con, [contains])["customers"] == 0  # % is a plain character


def test_rule_operators(con):
    total = con.execute("SELECT count(*) FROM mart_customer").fetchone()[0]
    cases = [
        (segments.Rule("orders", "between", [2, 3]), "orders BETWEEN 2 AND 3"),
        (
            segments.Rule("rfm_segment", "in", ["Champions", "Loyal"]),
            "rfm_segment IN ('Champions', 'Loyal')",
        ),
        (segments.Rule("clv", "is null"), "clv IS NULL"),
        (
            segments.Rule("last_order_date", ">=", "2024-06-01"),
            "last_order_date >= DATE '2024-06-01'",
        ),
    ]
    for rule, sql in cases:
        want = con.execute(f"SELECT count(*) FROM mart_customer WHERE {sql}").fetchone()[0]
        assert segments.rule_counts(con, [rule])["customers"] == want, sql
    anyof = segments.rule_counts(
        con, [segments.Rule("orders", ">", 100), segments.Rule("orders", ">=", 0)], match="any"
    )
    assert anyof["customers"] == total


def test_segment_profile_adds_up_and_overlap_matches(con):
    profile = segments.segment_profile(con, "rfm_segment")
    base = segments.base_totals(con)
    assert profile["customers"].sum() == base["customers"]
    assert profile["revenue"].sum() == pytest.approx(base["revenue"])
    assert profile["share"].sum() == pytest.approx(1.0)
    overlap = segments.segment_overlap(con, "rfm_segment", "value_tier")
    assert overlap["customers"].sum() == base["customers"]
    champions = overlap[overlap["segment_a"] == profile.loc[0, "segment"]]
    assert champions["share_of_a"].sum() == pytest.approx(1.0)


def test_segment_mix_index_against_the_base(con):
    mix = segments.segment_mix(con, "needs_segment", "category")
    garden = mix[mix["item"] == "garden"]
    top = garden.sort_values("share").iloc[-1]
    assert top["share"] > 0.6 and top["index"] > 250  # the garden group buys garden ~85%
    assert top["base_share"] == pytest.approx(garden["base_share"].iloc[0])


def test_drill_down_masks_pii_and_links_to_customer_360(con):
    seg = segments.segment_names(con, "needs_segment")[0]
    table = segments.segment_customers(con, "needs_segment", seg, limit=5)
    assert len(table) == 5
    assert table["clv"].is_monotonic_decreasing
    assert all(pd.isna(e) or "***@" in e for e in table["email"])
    assert all(n.endswith("***") for n in table["last_name"])
    assert table["link"].iloc[0] == f"/customer_360?customer_id={table['customer_id'].iloc[0]}"


def test_audience_export_excludes_opted_out_and_unconsented(con, world):
    consents = world["consents"]
    for channel in audience.consentable_channels(con):
        for scheme in segments.SCHEMES:
            for seg in segments.segment_names(con, scheme):
                export = audience.build_audience(con, scheme, seg, channel)
                ids = set(export.audience["customer_id"])
                ok = consents[(consents["channel"] == channel) & (consents["status"] == "opt_in")]
                assert ids <= set(ok["customer_id"]), (scheme, seg, channel)
                assert export.members == len(ids) + export.excluded


def test_audience_export_hashes_and_reasons(con, world):
    export = audience.build_audience(con, "needs_segment", "No activity yet", "email")
    assert export.audience.empty  # idle customers have no consent at all
    assert dict(zip(export.exclusions["reason"], export.exclusions["customers"], strict=True)) == {
        "no consent recorded for email": 8
    }
    seg = segments.segment_names(con, "needs_segment")[0]
    export = audience.build_audience(con, "needs_segment", seg, "email")
    members = set(segments.segment_members(con, "needs_segment", seg)["customer_id"])
    c = world["customers"].set_index("customer_id")
    reasons = dict(zip(export.exclusions["reason"], export.exclusions["customers"], strict=True))
    consents = world["consents"].query("channel == 'email'").set_index("customer_id")["status"]
    opted_out = sum(consents.get(m) == "opt_out" for m in members)
    assert reasons.get("opted out of email", 0) == opted_out
    no_email = sum(consents.get(m) == "opt_in" and c.loc[m, "email"] is None for m in members)
    assert reasons.get("no email", 0) == no_email
    row = export.audience.iloc[0]
    email = c.loc[row["customer_id"], "email"].strip().lower()
    assert row["email_sha256"] == privacy.sha256_hex(email)
    phone = c.loc[row["customer_id"], "phone"]
    assert row["phone_sha256"] == (privacy.sha256_hex(phone) if phone.startswith("+") else None)


def test_resolve_segment_and_write(con, tmp_path):
    scheme, seg = audience.resolve_segment(con, "Bronze (rest)")
    assert scheme == "value_tier"
    with pytest.raises(ValueError, match="no segment named"):
        audience.resolve_segment(con, "Nope")
    export = audience.build_audience(con, scheme, seg, "email")
    path = audience.write_audience(export.audience, tmp_path / "a.csv")
    back = pd.read_csv(path)
    assert list(back.columns) == audience.AUDIENCE_COLUMNS and len(back) == len(export.audience)
    with pytest.raises(ValueError, match="csv"):
        audience.write_audience(export.audience, tmp_path / "a.xlsx")


def test_rule_sentence_percent_and_derived_days(con):
    rules = [("orders", ">=", 3), ("days_since_last_purchase", "<=", 90)]
    assert segments.rule_sentence(rules, "all") == (
        "Customers with orders at least 3 and days since last purchase at most 90"
    )
    assert segments.stored_value("prob_alive", 80) == 0.8
    assert segments.typed_value("prob_alive", 0.8) == 80
    assert segments.rule_sentence([("prob_alive", ">=", 0.8)], "any") == (
        "Customers with probability still active at least 80 %"
    )
    end = segments.data_end_day(con)
    want = con.execute(
        "SELECT count(*) FROM mart_customer WHERE orders >= 3 "
        "AND date_diff('day', CAST(last_order_date AS DATE), CAST(? AS DATE)) <= 90",
        [end],
    ).fetchall()[0][0]
    assert segments.rule_counts(con, rules)["customers"] == want


def test_saved_segment_replace_rename_delete_and_overlap(con):
    segments.save_segment(con, "Repeat", [("orders", ">=", 2)])
    with pytest.raises(segments.SegmentExists):
        segments.save_segment(con, "Repeat", [("orders", ">=", 3)], replace=False)
    assert segments.rename_segment(con, "Repeat", "Repeat buyers") == "Repeat buyers"
    overlap = segments.segment_overlap(con, "saved", "value_tier")
    assert set(overlap["segment_a"]) == {"Repeat buyers"}
    assert overlap["share_of_a"].sum() == pytest.approx(1.0)
    assert segments.delete_segment(con, "Repeat buyers")
    assert segments.saved_segments(con).empty
