"""The synthetic company: determinism, the data contract, and planted truth measured back from the
data itself (defect rates, identity, consent, buy-till-you-die, media, experiment, anomalies)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from scipy.special import hyp2f1

from ccrm_core.foundation import store
from ccrm_core.synthetic import sample

N = 3000
SEED = 11
END = sample.DEFAULT_END_DATE


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    return sample.generate(N, 730, SEED)


@pytest.fixture(scope="module")
def big() -> dict[str, pd.DataFrame]:
    """A larger company where daily rates are not swamped by noise."""
    return sample.generate(12000, 730, 3)


@pytest.fixture(scope="module")
def con(data):
    c = duckdb.connect()
    for name, frame in data.items():
        c.register(name, frame)
    yield c
    c.close()


def q(con, sql: str, params=None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


# --- determinism and contract -----------------------------------------------------------------


def test_same_seed_gives_identical_frames_and_other_seed_differs():
    a = sample.generate(400, 400, 5)
    b = sample.generate(400, 400, 5)
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)
    c = sample.generate(400, 400, 6)
    assert not a["orders"]["revenue"].equals(c["orders"]["revenue"])
    assert not a["src_customers"]["email"].equals(c["src_customers"]["email"])


def test_raw_frames_follow_the_contract(data, con):
    for name, table in store.TABLES.items():
        frame = data[name]
        assert list(frame.columns) == table.column_names, name
        assert len(frame) > 0, name
        casts = ", ".join(f"CAST({c.name} AS {c.type})" for c in table.columns)
        assert q(con, f"SELECT count(*) FROM (SELECT {casts} FROM {name})")[0][0] == len(frame)
        for column in table.required_columns:
            assert frame[column].notna().all(), f"{name}.{column} has NULLs"
        key = ", ".join(table.key)
        distinct = q(con, f"SELECT count(*) FROM (SELECT DISTINCT {key} FROM {name})")[0][0]
        assert distinct == len(frame), f"{name} repeats its key ({key})"
    # vocabularies
    assert set(data["events"]["channel"].dropna()) <= set(store.EVENT_CHANNELS)
    assert set(data["events"]["event_type"].dropna()) <= set(store.EVENT_TYPES)
    assert set(data["orders"]["channel"]) == set(store.ORDER_CHANNELS)
    assert set(data["spend"]["channel"]) == set(store.MEDIA_CHANNELS)
    assert set(data["consents"]["status"]) == set(store.CONSENT_STATUSES)
    assert set(data["src_customers"]["source_system"]) == set(sample.SYSTEMS)
    ids = data["src_customers"]["source_id"]
    assert ids.str.fullmatch(r"(EC|LY|CC)\d{8}").all()
    assert data["orders"]["order_id"].str.fullmatch(r"O\d{9}").all()
    assert data["events"]["event_id"].str.fullmatch(r"E\d{10}").all()
    anon = data["events"]["anonymous_id"].dropna()
    assert anon.str.fullmatch(r"(ck|dv)_[0-9a-f]{16}").all()
    # data window
    for name in ("orders", "events"):
        ts = data[name]["ts"]
        assert ts.min() >= pd.Timestamp(END - timedelta(days=729)), name
        assert ts.max() < pd.Timestamp(END + timedelta(days=1)), name


def test_ground_truth_tables_have_their_declared_columns(data):
    for name, columns in sample.GROUND_TRUTH_TABLES.items():
        assert list(data[name].columns) == [c for c, _ in columns], name


# --- planted defects measured from the data -----------------------------------------------------

POSTAL = {
    "US": r"\d{5}",
    "DE": r"\d{5}",
    "FR": r"\d{5}",
    "GB": r"[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}",
    "CA": r"[A-Z]\d[A-Z] \d[A-Z]\d",
}


def _email_ok(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _phone_ok(value: str, country: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(value, country))
    except phonenumbers.NumberParseException:
        return False


def _measured_defects(src: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    """Every defect measured from the values alone (validators, dates), as row masks."""
    email_ok = np.array([_email_ok(e) if isinstance(e, str) else True for e in src["email"]])
    phone_ok = np.array(
        [
            _phone_ok(p, c) if isinstance(p, str) else True
            for p, c in zip(src["phone"], src["country"], strict=True)
        ]
    )
    stale = pd.Timestamp(END.replace(year=END.year - sample.STALE_YEARS))
    return {
        ("first_name", "missing"): src["first_name"].isna().to_numpy(),
        ("last_name", "missing"): src["last_name"].isna().to_numpy(),
        ("email", "missing"): src["email"].isna().to_numpy(),
        ("email", "malformed"): ~email_ok,
        ("phone", "missing"): src["phone"].isna().to_numpy(),
        ("phone", "impossible"): ~phone_ok,
        ("postal_code", "missing"): src["postal_code"].isna().to_numpy(),
        ("birth_date", "future"): (src["birth_date"] > pd.Timestamp(END)).to_numpy(),
        ("birth_date", "before_1900"): (src["birth_date"] < pd.Timestamp("1900-01-01")).to_numpy(),
        ("updated_at", "stale"): (src["updated_at"] < stale).to_numpy(),
    }


def test_planted_defect_rates_are_measured_back_row_by_row(data):
    src = data["src_customers"]
    planted = data["ground_truth_defects"].set_index(["column_name", "defect"])
    rows = data["ground_truth_defect_rows"]
    measured = _measured_defects(src)
    assert set(measured) == set(planted.index)
    key = src["source_system"].astype(str) + ":" + src["source_id"]
    for (column, defect), mask in measured.items():
        truth = planted.loc[(column, defect)]
        rate = dict(((c, d), r) for c, d, _, r in sample.DEFECT_RATES)[(column, defect)]
        assert truth["total_rows"] == len(src)
        assert mask.sum() == truth["planted_rows"] == round(rate * len(src)), (column, defect)
        assert abs(mask.mean() - rate) <= 0.005
        planted_rows = rows[(rows["column_name"] == column) & (rows["defect"] == defect)]
        planted_keys = set(
            planted_rows["source_system"].astype(str) + ":" + planted_rows["source_id"]
        )
        assert set(key[mask]) == planted_keys, (column, defect)
    # Non-planted values are valid: postal codes by country, timestamps ordered.
    postal = src.dropna(subset=["postal_code"])
    for country, pattern in POSTAL.items():
        values = postal.loc[postal["country"] == country, "postal_code"]
        assert len(values) > 0 and values.str.fullmatch(pattern).all(), country
    assert (src["updated_at"] >= src["created_at"]).all()
    assert set(src["country"]) == {"US", "GB", "DE", "FR", "CA"}
    assert (src["country"] == "US").mean() > 0.7


def test_defects_of_one_column_never_overlap(data):
    rows = data["ground_truth_defect_rows"]
    per_column = rows.groupby(["column_name", "source_system", "source_id"], observed=True).size()
    assert (per_column == 1).all()
    names = rows[rows["column_name"].isin(["first_name", "last_name"])]
    assert not names.duplicated(["source_system", "source_id"]).any()


# --- identity -----------------------------------------------------------------------------------


def _norm_email(value) -> str | None:
    if not isinstance(value, str) or not _email_ok(value):
        return None
    local, domain = value.lower().split("@")
    return local.replace(".", "") + "@" + domain


def _phone_key(value, country) -> str | None:
    if not isinstance(value, str) or not _phone_ok(value, country):
        return None
    n = phonenumbers.parse(value, country)
    return f"{n.country_code}:{n.national_number}"


def test_identity_truth_and_duplicate_rate(data):
    src = data["src_customers"]
    ident = data["ground_truth_identity"]
    persons = data["ground_truth_persons"]
    merged = src.merge(ident, on=["source_system", "source_id"], how="left", validate="1:1")
    assert merged["person_id"].notna().all()
    assert len(ident) == len(src) and ident["person_id"].nunique() == N
    assert persons["person_id"].tolist() == list(range(1, N + 1))
    records = ident.groupby("person_id").size()
    assert (records == persons.set_index("person_id")["records"]).all()
    # Expected share of persons with 2+ records from the planted membership probabilities.
    p = sample.SYSTEM_MEMBERSHIP
    single = sum(p[:, i] * np.prod(np.delete(1 - p, i, axis=1), axis=1) for i in range(3))
    single = single + np.prod(1 - p, axis=1)  # nobody -> one forced system
    expected = 1 - (sample.PERSONA_SHARES * single).sum() * (
        1 - sample.WITHIN_SYSTEM_DUPLICATE_RATE
    )
    share = (records > 1).mean()
    assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / N)
    # Second records inside one system exist at about the planted rate.
    within = (
        ident.merge(src[["source_system", "source_id"]])
        .groupby(["person_id", "source_system"], observed=True)
        .size()
    )
    assert abs((within > 1).sum() / N - sample.WITHIN_SYSTEM_DUPLICATE_RATE) < 0.012


def test_every_duplicate_keeps_two_identity_signals_and_persons_never_collide(data):
    src = data["src_customers"].merge(
        data["ground_truth_identity"], on=["source_system", "source_id"]
    )
    prim = data["ground_truth_persons"][["person_id", "primary_source_system", "primary_source_id"]]
    src["email_key"] = [_norm_email(e) for e in src["email"]]
    src["phone_key"] = [_phone_key(p, c) for p, c in zip(src["phone"], src["country"], strict=True)]
    is_primary = (
        src.merge(
            prim,
            left_on=["person_id", "source_system", "source_id"],
            right_on=["person_id", "primary_source_system", "primary_source_id"],
            how="left",
        )["primary_source_id"]
        .notna()
        .to_numpy()
    )
    assert is_primary.sum() == N
    head = src[is_primary].set_index("person_id")
    dups = src[~is_primary]
    h = head.loc[dups["person_id"]].reset_index(drop=True)
    d = dups.reset_index(drop=True)
    same_email = d["email_key"].notna() & (d["email_key"] == h["email_key"])
    same_phone = d["phone_key"].notna() & (d["phone_key"] == h["phone_key"])
    same_name = d["first_name"].notna() & (d["first_name"] == h["first_name"])
    same_name &= d["last_name"].notna() & (d["last_name"] == h["last_name"])
    same_place = (d["birth_date"] == h["birth_date"]) | (
        d["postal_code"].notna() & (d["postal_code"] == h["postal_code"])
    )
    kept = same_email.astype(int) + same_phone.astype(int) + (same_name & same_place).astype(int)
    assert len(d) > 500
    assert (kept >= 2).all(), d[kept < 2][["source_id", "first_name", "email", "phone"]]
    # Variations are really there.
    assert (~same_email & d["email_key"].notna() & h["email_key"].notna()).sum() == 0
    assert (d["email"].notna() & h["email"].notna() & (d["email"] != h["email"])).mean() > 0.2
    assert (d["phone"].notna() & h["phone"].notna() & (d["phone"] != h["phone"])).mean() > 0.3
    assert (d["first_name"].notna() & (d["first_name"] != h["first_name"])).mean() > 0.05
    variations = data["ground_truth_variations"].set_index("variation")["rate"]
    assert 0.07 < variations["moved_address"] < 0.13
    # Different persons never share an email (modulo case and dots) or a phone number.
    per_email = src.dropna(subset=["email_key"]).groupby("email_key")["person_id"].nunique()
    per_phone = src.dropna(subset=["phone_key"]).groupby("phone_key")["person_id"].nunique()
    assert per_email.max() == 1 and per_phone.max() == 1
    # Name + birth date is shared by different persons only by rare chance.
    heads = src[is_primary]
    per_name_dob = heads.groupby(["first_name", "last_name", "birth_date"]).size()
    assert (per_name_dob > 1).sum() <= 0.001 * N
    assert heads["birth_date"].value_counts().max() <= 5


def test_anonymous_ids_log_in_with_both_ids(data, con):
    logins = data["events"][data["events"]["event_type"] == "login"]
    assert len(logins) > 0
    assert logins["anonymous_id"].notna().all() and logins["source_id"].notna().all()
    assert (logins["channel"] == "web").all()
    # Every linked anonymous id logs in as a record of its own person; prospects never log in.
    wrong, linked, never = q(
        con,
        """
        WITH l AS (
            SELECT e.anonymous_id, g.person_id
            FROM events e JOIN ground_truth_identity g USING (source_system, source_id)
            WHERE e.event_type = 'login'
        )
        SELECT count(*) FILTER (WHERE l.person_id IS DISTINCT FROM a.person_id),
               count(*) FILTER (WHERE a.person_id IS NOT NULL),
               (SELECT count(*) FROM ground_truth_anonymous WHERE person_id IS NULL)
        FROM ground_truth_anonymous a LEFT JOIN l USING (anonymous_id)
        """,
    )[0]
    assert wrong == 0 and linked > 1000 and never > 200
    # Anonymous visits come before the login; other anonymous events carry no record.
    before = q(
        con,
        """
        SELECT count(*) FILTER (WHERE e.ts > l.ts), count(*)
        FROM events e JOIN (SELECT anonymous_id, ts FROM events WHERE event_type = 'login') l
          USING (anonymous_id)
        WHERE e.event_type <> 'login'
        """,
    )[0]
    assert before[0] == 0 and before[1] > 1000
    anon_only = data["events"][data["events"]["source_id"].isna()]
    assert anon_only["anonymous_id"].notna().all()
    assert set(anon_only["channel"]) <= {"web", "paid_search", "display", "social"}
    assert set(data["events"]["anonymous_id"].dropna()) <= set(
        data["ground_truth_anonymous"]["anonymous_id"]
    )


# --- events, consent ----------------------------------------------------------------------------


def test_touch_rules(data, con):
    events = data["events"]
    assert not events["channel"].isin(["tv", "print"]).any()
    assert {"tv", "print"} <= set(data["spend"]["channel"])
    touches = events[events["event_type"].isin(["send", "open", "click", "impression", "call"])]
    assert touches["campaign_id"].notna().all()
    # A touch's campaign belongs to its channel and runs that day (opens and clicks may come
    # up to two days after the send).
    bad = q(
        con,
        """
        SELECT count(*) FROM events e JOIN campaigns c USING (campaign_id)
        WHERE e.channel <> c.channel
           OR CAST(e.ts AS DATE) < c.start_date
           OR date_diff('day', c.end_date, CAST(e.ts AS DATE))
              > CASE WHEN e.event_type IN ('open', 'click') THEN 2 ELSE 0 END
        """,
    )[0][0]
    assert bad == 0
    # Sends never after the person's opt-out on that channel (any of their records).
    late = q(
        con,
        """
        WITH outs AS (
            SELECT g.person_id, c.channel, min(c.ts) AS ts
            FROM consents c JOIN ground_truth_identity g USING (source_system, source_id)
            WHERE c.status = 'opt_out' GROUP BY ALL
        )
        SELECT count(*) FILTER (WHERE e.ts >= o.ts), count(*)
        FROM events e JOIN ground_truth_identity g USING (source_system, source_id)
        JOIN outs o ON o.person_id = g.person_id AND o.channel = e.channel
        WHERE e.event_type = 'send'
        """,
    )[0]
    assert late[0] == 0 and late[1] > 100
    per_person = len(events) / N
    assert 20 <= per_person <= 32


def test_consent_truth_is_latest_per_person(data, con):
    assert len(data["consents"]) == len(data["src_customers"]) * len(sample.CONSENT_CHANNELS)
    mismatch, total = q(
        con,
        """
        WITH latest AS (
            SELECT g.person_id, c.channel,
                   arg_max(c.status, (c.ts, c.status)) AS status
            FROM consents c JOIN ground_truth_identity g USING (source_system, source_id)
            GROUP BY ALL
        )
        SELECT count(*) FILTER (WHERE l.status <> t.status), count(*)
        FROM ground_truth_consent t JOIN latest l USING (person_id, channel)
        """,
    )[0]
    assert total == N * len(sample.CONSENT_CHANNELS) and mismatch == 0
    truth = data["ground_truth_consent"]
    rates = (
        truth.assign(out=truth["status"] == "opt_out")
        .groupby("channel", observed=True)["out"]
        .mean()
    )
    for channel, rate in sample.OPT_OUT_RATE.items():
        assert abs(rates[channel] - rate) < 4 * np.sqrt(rate * (1 - rate) / N), channel
    # Opted-out persons with several records often keep an older opt-in on another record.
    mixed = q(
        con,
        """
        SELECT count(*) FROM (
            SELECT g.person_id, c.channel FROM consents c
            JOIN ground_truth_identity g USING (source_system, source_id)
            GROUP BY ALL HAVING count(DISTINCT c.status) = 2)
        """,
    )[0][0]
    assert mixed > 100


# --- buy till you die, spend --------------------------------------------------------------------


def _bgnbd_expected_repeats(t_weeks: np.ndarray, r, alpha, a, b) -> np.ndarray:
    """E[X(t)] of BG/NBD (Fader, Hardie & Lee 2005, eq. 9)."""
    z = t_weeks / (alpha + t_weeks)
    return (
        (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t_weeks)) ** r * hyp2f1(r, b, a + b - 1, z))
    )


def test_btyd_counts_and_spend_match_planted_parameters(big):
    data = big
    persons = data["ground_truth_persons"]
    p = sample.BTYD_PARAMS
    truth = dict(
        zip(data["ground_truth_btyd"]["parameter"], data["ground_truth_btyd"]["value"], strict=True)
    )
    assert truth == {k: float(v) for k, v in p.items()}
    m = persons["acquired_in_window"] & (persons["acquisition_source"] != "spike")
    window_end = pd.Timestamp(END + timedelta(days=1))
    t_weeks = (
        (window_end - persons.loc[m, "acquired_at"]).dt.total_seconds() / 86400 / 7
    ).to_numpy()
    repeats = persons.loc[m, "btyd_orders"].to_numpy() - 1
    expected = _bgnbd_expected_repeats(t_weeks, p["r"], p["alpha"], p["a"], p["b"]).mean()
    se = repeats.std() / np.sqrt(repeats.size)
    assert abs(repeats.mean() - expected) < max(4 * se, 0.05 * expected), (repeats.mean(), expected)
    assert (persons.loc[m, "btyd_orders"] >= 1).all()  # the acquisition is a purchase
    # Orders per person in the orders table = BTYD + media + experiment + activation orders.
    orders = data["orders"].merge(data["ground_truth_identity"], on=["source_system", "source_id"])
    per_person = orders.groupby("person_id").size().reindex(persons["person_id"], fill_value=0)
    causes = ["btyd_orders", "media_orders", "experiment_orders", "activation_orders"]
    planted = persons[causes].sum(axis=1)
    assert (per_person.to_numpy() == planted.to_numpy()).all()
    # Gamma-Gamma: average order value p*v/(q-1) = $75.
    aov = p["p"] * p["v"] / (p["q"] - 1)
    assert abs(data["orders"]["revenue"].mean() / aov - 1) < 0.06
    # Seasonality of organic orders: weekends (compared within each week, so the growth trend
    # cancels) and November-December (against the neighbouring months) sell more per day.
    organic = data["orders"][
        ~data["orders"]["order_id"].isin(data["ground_truth_media_orders"]["order_id"])
    ]
    day = organic["ts"].dt.floor("D")
    daily = organic.groupby(day)["revenue"].sum()
    weeks = pd.DataFrame(
        {
            "r": daily.to_numpy(),
            "weekend": daily.index.day_of_week >= 5,
            "week": daily.index.to_period("W"),
        }
    ).pivot_table(index="week", columns="weekend", values="r")
    assert (weeks[True] / weeks[False]).mean() > 1.08
    month = daily.index.month
    assert daily[month.isin([11, 12])].mean() > 1.05 * daily[month.isin([9, 10, 1, 2])].mean()


def test_media_truth_is_realised_in_orders(data, con):
    channels = data["ground_truth_channels"].set_index("channel")
    contributions = data["ground_truth_contributions"]
    assert list(channels.index) == list(store.MEDIA_CHANNELS)
    per_channel = contributions.groupby("channel", observed=True)["contribution"].sum()
    assert np.allclose(per_channel[channels.index], channels["true_contribution"], atol=0.01)
    assert len(contributions) == 730 * 10
    spend = data["spend"].groupby("channel", observed=True)["spend"].sum()
    assert np.allclose(spend[channels.index], channels["total_spend"], atol=0.01)
    assert np.allclose(
        channels["true_roi"], channels["true_contribution"] / channels["total_spend"]
    )
    assert abs(channels["true_share"].sum() - 1) < 1e-9
    share = channels["true_contribution"].sum() / data["orders"]["revenue"].sum()
    assert 0.28 <= share <= 0.42, share
    assert (channels["true_roi"] < 1).sum() >= 2 and (channels["true_roi"] > 3).sum() >= 2
    assert not channels.loc[["tv", "print"], "addressable"].any()
    assert (
        channels.loc[["tv", "print"], "adstock_decay"].min()
        > channels.loc[list(store.ADDRESSABLE_CHANNELS), "adstock_decay"].max()
    )
    # Every day of contribution matches realised order revenue on that day (orders carry the
    # revenue; total order revenue per day is at least the media contribution of that day).
    daily = q(
        con,
        """
        SELECT count(*) FROM (SELECT date, sum(contribution) AS c FROM ground_truth_contributions
                              GROUP BY date) m
        JOIN (SELECT CAST(ts AS DATE) AS date, sum(revenue) AS r FROM orders GROUP BY 1) o
          USING (date)
        WHERE m.c > o.r + 0.01
        """,
    )[0][0]
    assert daily == 0
    # Spend varies strongly and independently: on/off flights, weak correlation across channels.
    wide = data["spend"].pivot_table(index="date", columns="channel", values="spend", observed=True)
    assert ((wide == 0).mean() > 0.1).sum() >= 6
    corr = wide.corr().to_numpy()[np.triu_indices(10, 1)]
    assert np.abs(corr).max() < 0.5
    # Spend rows carry the campaign running that day on that channel.
    bad = q(
        con,
        """
        SELECT count(*) FROM spend s LEFT JOIN campaigns c USING (campaign_id)
        WHERE c.channel IS DISTINCT FROM s.channel OR s.date NOT BETWEEN c.start_date AND c.end_date
        """,
    )[0][0]
    assert bad == 0
    per_channel_campaigns = data["campaigns"].groupby("channel").size()
    assert per_channel_campaigns.between(3, 7).all()  # email also has the A/B test's campaign


def test_media_orders_are_the_contributions_and_follow_a_touch(data, con):
    media = data["ground_truth_media_orders"]
    assert media["order_id"].is_unique and media["order_id"].isin(data["orders"]["order_id"]).all()
    # Contributions per day and channel are exactly the revenue of the media-driven orders.
    diff = q(
        con,
        """
        WITH realised AS (
            SELECT CAST(o.ts AS DATE) AS date, m.channel, sum(o.revenue) AS revenue
            FROM ground_truth_media_orders m JOIN orders o USING (order_id) GROUP BY ALL
        )
        SELECT max(abs(c.contribution - coalesce(r.revenue, 0)))
        FROM ground_truth_contributions c LEFT JOIN realised r USING (date, channel)
        """,
    )[0][0]
    assert diff < 0.005
    # Each addressable media order (not an acquisition) has a touch on its channel by the same
    # person 1-14 days before (a little less at the very start of the window).
    missing, total = q(
        con,
        """
        WITH mo AS (
            SELECT o.order_id, o.ts, m.channel, g.person_id
            FROM ground_truth_media_orders m JOIN orders o USING (order_id)
            JOIN ground_truth_identity g USING (source_system, source_id)
            WHERE NOT m.acquisition AND m.channel NOT IN ('tv', 'print')
        ),
        touch AS (
            SELECT DISTINCT mo.order_id FROM mo
            JOIN ground_truth_identity g ON g.person_id = mo.person_id
            JOIN events e ON e.source_system = g.source_system AND e.source_id = g.source_id
            WHERE e.channel = mo.channel AND e.ts < mo.ts
              AND e.ts >= mo.ts - INTERVAL 14 DAY - INTERVAL 1 MINUTE
              AND e.event_type IN ('send', 'click', 'impression', 'call')
        )
        SELECT count(*) FILTER (WHERE touch.order_id IS NULL), count(*)
        FROM mo LEFT JOIN touch USING (order_id)
        """,
    )[0]
    assert total > 1000 and missing == 0
    # Media acquisitions: the person's first order, on search/display/social/tv/print.
    acq = media[media["acquisition"]]
    assert len(acq) > 10 and set(acq["channel"]) <= {
        "paid_search",
        "display",
        "social",
        "tv",
        "print",
    }
    channels = data["ground_truth_channels"].set_index("channel")["acquisitions"]
    assert channels.sum() == len(acq)


# --- personas ---------------------------------------------------------------------------------


def test_personas_are_separable_from_behaviour(data, con):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    ev = con.execute(
        """
        SELECT g.person_id, e.channel, count(*) AS n FROM events e
        JOIN ground_truth_identity g USING (source_system, source_id)
        WHERE e.event_type NOT IN ('login', 'unsubscribe') GROUP BY ALL
        """
    ).df()
    od = con.execute(
        """
        SELECT g.person_id, o.category, count(*) AS n FROM orders o
        JOIN ground_truth_identity g USING (source_system, source_id) GROUP BY ALL
        """
    ).df()
    persons = data["ground_truth_persons"].set_index("person_id")
    ch = ev.pivot_table(
        index="person_id", columns="channel", values="n", fill_value=0, observed=True
    )
    cat = od.pivot_table(
        index="person_id", columns="category", values="n", fill_value=0, observed=True
    )
    ch = ch.reindex(persons.index, fill_value=0)
    cat = cat.reindex(persons.index, fill_value=0)
    tenure = (pd.Timestamp(END) - persons["acquired_at"]).dt.days.clip(upper=730) / 365
    features = pd.concat(
        [
            ch.div(ch.sum(axis=1).clip(lower=1), axis=0),
            cat.div(cat.sum(axis=1).clip(lower=1), axis=0),
            np.log1p(ch.sum(axis=1)).rename("events"),
            tenure.rename("tenure"),
        ],
        axis=1,
    )
    labels = KMeans(5, n_init=10, random_state=0).fit_predict(
        StandardScaler().fit_transform(features)
    )
    assert adjusted_rand_score(persons["persona"], labels) >= 0.6


# --- experiment and anomalies -------------------------------------------------------------------


def test_experiment_lift_is_planted_and_realised(data, con):
    exp = data["experiments"]
    truth = data["ground_truth_experiment"].iloc[0]
    assert (exp["experiment_id"] == "EXP001").all()
    assert abs(len(exp) / N - sample.EXPERIMENT_SHARE) < 0.01
    assert (exp["arm"] == "treatment").sum() == (exp["arm"] == "control").sum()
    assigned = exp["assigned_at"].iloc[0]
    assert (exp["assigned_at"] == assigned).all()
    assert (
        pd.Timestamp(END) - assigned.normalize()
    ).days == 89  # 90 days before the end, inclusive
    # Assignments are primary records.
    prim = set(data["ground_truth_persons"]["primary_source_id"])
    assert exp["source_id"].isin(prim).all()
    rates = dict(
        q(
            con,
            """
            WITH a AS (SELECT e.arm, g.person_id, e.assigned_at FROM experiments e
                       JOIN ground_truth_identity g USING (source_system, source_id)),
            conv AS (SELECT DISTINCT a.person_id FROM a
                     JOIN ground_truth_identity g ON g.person_id = a.person_id
                     JOIN orders o ON o.source_system = g.source_system AND o.source_id = g.source_id
                     WHERE o.ts > a.assigned_at AND o.ts <= a.assigned_at + INTERVAL 30 DAY)
            SELECT a.arm, avg(CASE WHEN conv.person_id IS NULL THEN 0 ELSE 1 END)
            FROM a LEFT JOIN conv USING (person_id) GROUP BY 1
            """,
        )
    )
    assert rates["control"] == pytest.approx(truth["control_rate"])
    assert rates["treatment"] == pytest.approx(truth["treatment_rate"])
    assert truth["true_lift"] == pytest.approx(truth["treatment_rate"] - truth["control_rate"])
    assert truth["window_days"] == 30 and truth["true_lift"] > 0.01


def test_anomalies_are_planted_where_promised(big):
    data = big
    con = duckdb.connect()
    for name in ("orders", "ground_truth_identity"):
        con.register(name, data[name])
    anomalies = data["ground_truth_anomalies"].set_index("kind")
    start = pd.Timestamp(END - timedelta(days=729))
    last_year = pd.Timestamp(END - timedelta(days=364))
    for kind in ("revenue_drop", "new_customer_spike"):
        row = anomalies.loc[kind]
        assert row["start_date"] >= last_year and row["start_date"] >= start + pd.Timedelta(days=90)
    drop = anomalies.loc["revenue_drop"]
    assert drop["channel"] == "app" and (drop["end_date"] - drop["start_date"]).days == 3
    assert drop["magnitude"] == pytest.approx(0.6, abs=0.05)
    app = data["orders"][data["orders"]["channel"] == "app"]
    daily = app.groupby(app["ts"].dt.floor("D"))["revenue"].sum()
    window = daily[drop["start_date"] : drop["end_date"]].mean()
    before = daily[
        drop["start_date"] - pd.Timedelta(days=28) : drop["start_date"] - pd.Timedelta(days=1)
    ]
    assert window < 0.65 * before.median()
    spike = anomalies.loc["new_customer_spike"]
    assert pd.isna(spike["channel"]) and spike["start_date"] == spike["end_date"]
    first = q(
        con,
        """
        SELECT CAST(min(o.ts) AS DATE) AS d FROM orders o
        JOIN ground_truth_identity g USING (source_system, source_id) GROUP BY g.person_id
        """,
    )
    new = pd.Series([r[0] for r in first]).value_counts()
    on_day = new.get(spike["start_date"].date(), 0)
    prior = [new.get((spike["start_date"] - pd.Timedelta(days=k)).date(), 0) for k in range(1, 29)]
    assert on_day / np.median(prior) == pytest.approx(spike["magnitude"])
    assert 3.0 <= spike["magnitude"] <= 5.5


def test_short_and_tiny_companies_still_generate():
    for customers, days in ((10, 30), (60, 90)):
        data = sample.generate(customers, days, 1)
        assert data["ground_truth_persons"]["person_id"].size == customers
        assert len(data["spend"]) == days * 10
        assert data["orders"]["ts"].min() >= pd.Timestamp(END - timedelta(days=days - 1))
    with pytest.raises(ValueError, match="customers must be at least"):
        sample.generate(5, 730, 1)
    with pytest.raises(ValueError, match="days must be at least"):
        sample.generate(100, 10, 1)


# --- writing --------------------------------------------------------------------------------------


def test_write_sample_replaces_raw_tables_and_writes_truth(tmp_path):
    data = sample.generate(300, 400, 2)
    con = store.connect_writer(tmp_path / "s.duckdb")
    try:
        sample.write_sample(con, data)
        version = store.data_version(con)
        written = sample.write_sample(con, data)  # again: replaced, not appended
        assert store.data_version(con) != version
        for table in store.RAW_TABLES:
            assert con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] == len(data[table])
            assert written[table] == len(data[table])
        for table, columns in sample.GROUND_TRUTH_TABLES.items():
            described = con.execute(f"DESCRIBE {table}").fetchall()
            assert [(r[0], r[1]) for r in described] == list(columns), table
            assert con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] == len(data[table])
        assert (
            con.execute(
                "SELECT count(*) FROM ground_truth_anonymous WHERE person_id IS NULL"
            ).fetchall()[0][0]
            == data["ground_truth_anonymous"]["person_id"].isna().sum()
        )
        revenue = con.execute("SELECT sum(revenue) FROM orders").fetchall()[0][0]
        assert revenue == pytest.approx(data["orders"]["revenue"].sum())
    finally:
        con.close()


def test_write_sample_is_all_or_nothing(tmp_path):
    data = sample.generate(200, 400, 2)
    con = store.connect_writer(tmp_path / "s.duckdb")
    try:
        sample.write_sample(con, data)
        broken = dict(data)
        broken["experiments"] = data["experiments"].assign(arm=None)  # NOT NULL violation
        with pytest.raises(duckdb.Error):
            sample.write_sample(con, broken)
        assert con.execute("SELECT count(*) FROM orders").fetchall()[0][0] == len(data["orders"])
        assert con.execute("SELECT count(*) FROM experiments").fetchall()[0][0] == len(
            data["experiments"]
        )
    finally:
        con.close()


def test_write_csv_round_trip(tmp_path):
    data = sample.generate(300, 400, 2)
    paths = sample.write_csv(data, tmp_path / "csv")
    assert sorted(p.name for p in paths) == sorted(f"{t}.csv" for t in store.RAW_TABLES)
    con = duckdb.connect()
    for table in store.RAW_TABLES:
        path = tmp_path / "csv" / f"{table}.csv"
        types = {c.name: c.type for c in store.TABLES[table].columns}
        got = con.execute(
            "SELECT * FROM read_csv(?, header = true, delim = ',', columns = ?)",
            [str(path), types],
        ).df()
        assert len(got) == len(data[table]), table
        assert list(got.columns) == store.TABLES[table].column_names
        for column in store.TABLES[table].column_names:
            assert got[column].isna().sum() == data[table][column].isna().sum(), (table, column)
    header = (tmp_path / "csv" / "src_customers.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == ",".join(store.TABLES["src_customers"].column_names)
    first_order = (tmp_path / "csv" / "orders.csv").read_text(encoding="utf-8").splitlines()[1]
    assert re.match(r"O\d{9},\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,", first_order)
    spend_row = (tmp_path / "csv" / "spend.csv").read_text(encoding="utf-8").splitlines()[1]
    assert re.match(r"\d{4}-\d\d-\d\d,", spend_row)


def test_build_sample_db_writes_database_and_csv(tmp_path):
    steps = []
    written = sample.build_sample_db(
        tmp_path / "db.duckdb",
        150,
        365,
        9,
        progress=lambda s, i, k: steps.append(s),
        csv_dir=tmp_path / "csv",
    )
    assert steps[0] == "persons" and "writing database" in steps
    con = store.connect_reader(tmp_path / "db.duckdb")
    try:
        assert con.execute("SELECT count(*) FROM events").fetchall()[0][0] == written["events"]
        params = dict(con.execute("SELECT * FROM ground_truth_sample").fetchall())
        assert params["customers"] == "150" and params["seed"] == "9"
        assert params["end_date"] == date(2026, 6, 30).isoformat()
    finally:
        con.close()
    assert (tmp_path / "csv" / "events.csv").exists()


def test_committed_sample_data_is_current(tmp_path):
    """sample_data/ is exactly what the generator writes for 2,000 persons, 730 days, seed 42
    (regenerate with the command in sample_data/README.md after changing the generator)."""
    committed = Path(__file__).resolve().parents[1] / "sample_data"
    sample.write_csv(sample.generate(2000, 730, 42), tmp_path)
    for table in store.RAW_TABLES:
        fresh = (tmp_path / f"{table}.csv").read_bytes()
        assert (committed / f"{table}.csv").read_bytes() == fresh, (
            f"sample_data/{table}.csv is stale"
        )
    assert sum(p.stat().st_size for p in committed.glob("*.csv")) < 10_000_000
