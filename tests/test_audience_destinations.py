"""Google Ads and Meta audiences, bids and activations on a hand-made world whose every answer is
worked out by hand below.

People (customer id: country, records, ad consents, what happens):
P01 US  two records (jane.doe@gmail.com +14155550101; jane@work.example), both ad opt-ins: sent
P02 US  bob@example.com +14155550102, no ad-consent rows (not needed outside the region): sent
P03 DE  ad_user_data opt-in only: "no ad_personalization consent"
P04 FR  both opt-ins, no CLV: sent, VALUE 0
P05 US  ad_user_data opt-in on one record, opt-out on the other: "opted out of ad_user_data"
P06 GB  no ad-consent rows: "no ad_user_data consent"
P07 US  golden record, but a linked record in Norway, no rows: "no ad_user_data consent"
P08 US  both opt-ins but only an invalid email: "no email or phone to match"
P09 US  opted out of social: sent to Google, "opted out of social" for Meta
P10 CH  both opt-ins: sent
P11 US  three social impressions in the last 7 days: over a social cap of 2 when one is set
P12 --  no country anywhere, no rows: "no ad_user_data consent" (unknown counts as the region)
P13 US  in segment Lost, CLV 0
P14 DE  two records: one with both opt-ins (p14@example.de), one without (p14.old@example.de):
        sent, with the consented record's email only
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime

import pandas as pd
import pytest

from ccrm_core.conductor import audience
from ccrm_core.foundation import access, audit, store
from ccrm_core.foundation.access import User


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# customer, record system, record id, email, email_status, phone, phone_status, record country
RECORDS = [
    ("P01", "shop", "1", "jane.doe@gmail.com", "valid", "+14155550101", "valid", "US"),
    ("P01", "crm", "1", "jane@work.example", "valid", None, "missing", "US"),
    ("P02", "shop", "2", "bob@example.com", "valid", "+14155550102", "valid", "US"),
    ("P03", "shop", "3", "p3@example.de", "valid", "+4915112345678", "valid", "DE"),
    ("P04", "shop", "4", "p4@example.fr", "valid", "+33612345678", "valid", "FR"),
    ("P05", "shop", "5", "p5@example.com", "valid", None, "missing", "US"),
    ("P05", "crm", "5", "p5b@example.com", "valid", None, "missing", "US"),
    ("P06", "shop", "6", "p6@example.co.uk", "valid", None, "missing", "GB"),
    ("P07", "shop", "7", "p7@example.com", "valid", None, "missing", "US"),
    ("P07", "crm", "7", "p7@example.no", "valid", None, "missing", "NO"),
    ("P08", "shop", "8", "not-an-email", "invalid", None, "missing", "US"),
    ("P09", "shop", "9", "p9@example.com", "valid", None, "missing", "US"),
    ("P10", "shop", "10", "p10@example.ch", "valid", None, "missing", "CH"),
    ("P11", "shop", "11", "p11@example.com", "valid", None, "missing", "US"),
    ("P12", "shop", "12", "p12@example.com", "valid", None, "missing", None),
    ("P13", "shop", "13", "p13@example.com", "valid", None, "missing", "US"),
    ("P14", "shop", "14", "p14@example.de", "valid", None, "missing", "DE"),
    ("P14", "crm", "14", "p14.old@example.de", "valid", None, "missing", "DE"),
]
# customer: first, last, city, region, postal code, country, birth date, segment, clv
GOLDEN = {
    "P01": ("Jane", "Doe", "San Francisco", "CA", "94105-1234", "US", date(1980, 5, 17)),
    "P02": ("Bob", "Stone", "Austin", "TX", "78701", "US", None),
    "P03": ("Jonas", "Maier", "Berlin", "Berlin", "10115", "DE", None),
    "P04": ("Léa", "Martin", "Lyon", "Auvergne-Rhône-Alpes", "69001", "FR", None),
    "P05": ("Pat", "Lee", "Reno", "NV", "89501", "US", None),
    "P06": ("Amy", "Hill", "London", "England", "SW1A 1AA", "GB", None),
    "P07": ("Ola", "Berg", "Denver", "CO", "80202", "US", None),
    "P08": ("Max", "Cole", "Miami", "FL", "33101", "US", None),
    "P09": ("Sam", "Reed", "Boston", "MA", "02108", "US", None),
    "P10": ("Urs", "Keller", "Zurich", "ZH", "8001", "CH", None),
    "P11": ("Kim", "Park", "Seattle", "WA", "98101", "US", None),
    "P12": ("Ann", "Gray", None, None, None, None, None),
    "P13": ("Tom", "Fox", "Dallas", "TX", "75201", "US", None),
    "P14": ("Eva", "Braun", "Munich", "Bavaria", "80331", "DE", None),
}
SEGMENT_CLV = {
    "P01": ("Champions", 100.0), "P02": ("Champions", 50.0), "P03": ("Champions", 10.0),
    "P04": ("Champions", None), "P05": ("Champions", 20.0), "P06": ("Champions", 30.0),
    "P07": ("Champions", 40.0), "P08": ("Champions", 60.0), "P09": ("Champions", 70.0),
    "P10": ("Champions", 80.0), "P11": ("Champions", 90.0), "P12": ("Champions", 5.0),
    "P13": ("Lost", 0.0), "P14": ("Champions", 15.0),
}  # fmt: skip
BOTH = ("ad_user_data", "ad_personalization")
AD_CONSENTS = [  # system, id, purpose, status
    *[("shop", "1", p, "opt_in") for p in BOTH],
    ("shop", "3", "ad_user_data", "opt_in"),
    *[("shop", "4", p, "opt_in") for p in BOTH],
    ("shop", "5", "ad_user_data", "opt_in"),
    ("shop", "5", "ad_personalization", "opt_in"),
    ("crm", "5", "ad_user_data", "opt_out"),
    *[("shop", "8", p, "opt_in") for p in BOTH],
    *[("shop", "10", p, "opt_in") for p in BOTH],
    *[("shop", "14", p, "opt_in") for p in BOTH],
]
SENT_GOOGLE = ["P01", "P02", "P04", "P09", "P10", "P11", "P14"]
REGION = "EEA, UK or Switzerland"
EXCLUDED = {
    f"no ad_user_data consent ({REGION})": 3,  # P06, P07, P12
    f"no ad_personalization consent ({REGION})": 1,  # P03
    "opted out of ad_user_data": 1,  # P05
    "no email or phone to match": 1,  # P08
}


def _load(con) -> None:
    con.execute(
        "CREATE TABLE mart_customer (customer_id VARCHAR, rfm_segment VARCHAR, "
        "value_tier VARCHAR, needs_segment VARCHAR, clv DOUBLE)"
    )
    for cid, (seg, clv) in SEGMENT_CLV.items():
        con.execute("INSERT INTO mart_customer VALUES (?, ?, 'x', 'y', ?)", [cid, seg, clv])
    con.execute(
        "CREATE TABLE identity_map (source_system VARCHAR, source_id VARCHAR, "
        "anonymous_id VARCHAR, customer_id VARCHAR)"
    )
    con.execute(
        "CREATE TABLE std_customers (source_system VARCHAR, source_id VARCHAR, email VARCHAR, "
        "email_status VARCHAR, phone VARCHAR, phone_status VARCHAR, country VARCHAR)"
    )
    for cid, system, sid, email, e_status, phone, p_status, country in RECORDS:
        con.execute("INSERT INTO identity_map VALUES (?, ?, NULL, ?)", [system, sid, cid])
        con.execute(
            "INSERT INTO std_customers VALUES (?, ?, ?, ?, ?, ?, ?)",
            [system, sid, email, e_status, phone, p_status, country],
        )
    con.execute(
        "CREATE TABLE customers (customer_id VARCHAR, first_name VARCHAR, last_name VARCHAR, "
        "city VARCHAR, region VARCHAR, postal_code VARCHAR, country VARCHAR, birth_date DATE)"
    )
    for cid, row in GOLDEN.items():
        con.execute("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [cid, *row])
    for system, sid, purpose, status in AD_CONSENTS:
        con.execute(
            "INSERT INTO ad_consents VALUES (?, ?, ?, ?, TIMESTAMP '2024-06-01')",
            [system, sid, purpose, status],
        )
    con.execute(
        "INSERT INTO consents VALUES ('shop', '9', 'social', 'opt_out', TIMESTAMP '2024-06-01')"
    )
    for i, day in enumerate((26, 28, 30)):  # three social touches in the last 7 days
        con.execute(
            "INSERT INTO events VALUES (?, ?, 'social', 'impression', 'shop', '11', NULL, NULL, "
            "NULL)",
            [f"e{i}", datetime(2024, 12, day, 12)],
        )
    con.execute(
        "INSERT INTO orders VALUES ('o1', TIMESTAMP '2024-12-31 10:00', 'shop', '1', 10.0, "
        "'web', 'x')"
    )
    con.execute(
        "CREATE VIEW customer_events AS SELECT e.*, m.customer_id FROM events e JOIN "
        "identity_map m ON m.source_system = e.source_system AND m.source_id = e.source_id"
    )


@pytest.fixture()
def con(tmp_path):
    c = store.connect_writer(tmp_path / "world.duckdb")
    _load(c)
    yield c
    c.close()


@pytest.fixture()
def social_cap(tmp_path, monkeypatch):
    """A contact policy that caps social at 2 contacts in 7 days, impressions counting."""
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[rules]\ntouch_event_types = ["send", "call", "impression"]\n'
        "[channels.social]\nenabled = true\ncap_7d = 2\ncap_30d = 10\ncost = 0.01\n"
        "response_weight = 1.0\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("CCRM_CONTACT_POLICY", str(policy))


def user(role: str) -> User:
    return User(email=f"{role}@example.com", name=role.title(), role=role)


def exclusions(built) -> dict[str, int]:
    return dict(zip(built.exclusions["reason"], built.exclusions["customers"], strict=True))


def test_google_audience_consent_region_and_identifiers(con):
    built = audience.build_destination_audience(con, "rfm_segment", "Champions", "google_ads")
    assert built.members == 13
    assert list(built.people["customer_id"]) == SENT_GOOGLE
    assert exclusions(built) == EXCLUDED
    assert built.excluded + len(built.people) == built.members
    p01 = built.people.iloc[0]
    # every linked email and phone, written as Google asks (Gmail dots removed), sorted
    assert p01["emails"] == ["jane@work.example", "janedoe@gmail.com"]
    assert p01["phones"] == ["+14155550101"]
    p14 = built.people.set_index("customer_id").loc["P14"]
    assert p14["emails"] == ["p14@example.de"]  # the unconsented record's email stays home


def test_google_file_rows_columns_and_hashes(con):
    built = audience.build_destination_audience(con, "rfm_segment", "Champions", "google_ads")
    rows = audience.upload_rows(built.people, built.destination)
    assert list(rows.columns) == ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"]
    assert len(rows) == 8  # P01 has two emails: two rows; everyone else one
    first, second = rows.iloc[0], rows.iloc[1]
    assert first["Email"] == sha("jane@work.example")
    assert first["Phone"] == sha("+14155550101")
    assert second["Email"] == sha("janedoe@gmail.com") and second["Phone"] is None
    assert first["First Name"] == sha("jane") and first["Last Name"] == sha("doe")
    assert (first["Country"], first["Zip"]) == ("US", "94105")  # in clear, US 5 digits
    clear = audience.upload_rows(built.people, built.destination, hashed=False)
    assert (
        clear.iloc[0]["Email"] == "jane@work.example" and clear.iloc[0]["Phone"] == "+14155550101"
    )
    assert clear.iloc[0]["First Name"] == "jane"


def test_meta_file_keys_value_and_channel_opt_out(con):
    built = audience.build_destination_audience(con, "rfm_segment", "Champions", "meta")
    sent = [c for c in SENT_GOOGLE if c != "P09"]
    assert list(built.people["customer_id"]) == sent
    assert exclusions(built) == {**EXCLUDED, "opted out of social": 1}
    rows = audience.upload_rows(built.people, built.destination)
    assert list(rows.columns) == [
        "EMAIL", "PHONE", "FN", "LN", "ZIP", "CT", "ST", "COUNTRY", "DOBY", "GEN", "EXTERN_ID",
        "VALUE",
    ]  # fmt: skip
    p01 = rows[rows["EXTERN_ID"] == "P01"]
    assert list(p01["EMAIL"]) == [sha("jane.doe@gmail.com"), sha("jane@work.example")]
    assert p01.iloc[0]["PHONE"] == sha("14155550101")  # digits, no '+'
    row = p01.iloc[0]
    assert (row["FN"], row["LN"], row["CT"], row["ST"]) == (
        sha("jane"), sha("doe"), sha("sanfrancisco"), sha("ca"),
    )  # fmt: skip
    assert (row["ZIP"], row["COUNTRY"], row["DOBY"]) == (sha("94105"), sha("us"), sha("1980"))
    assert row["GEN"] is None and row["VALUE"] == 100.0
    p04 = rows[rows["EXTERN_ID"] == "P04"].iloc[0]
    assert p04["VALUE"] == 0.0  # no CLV: 0, never negative or missing
    assert p04["FN"] == sha("léa") and p04["ST"] == sha("auvergnerhônealpes")


def test_caps_of_the_destination_channel_apply(con, social_cap):
    meta = audience.build_destination_audience(con, "rfm_segment", "Champions", "meta")
    assert "P11" not in set(meta.people["customer_id"])
    assert exclusions(meta)["over the social frequency cap (2 contacts in 7 days)"] == 1
    google = audience.build_destination_audience(con, "rfm_segment", "Champions", "google_ads")
    assert "P11" in set(google.people["customer_id"])  # paid_search has no cap


def test_bids_by_hand(con):
    bids = audience.segment_bids(con, "rfm_segment")
    # Champions: (100+50+10+0+20+30+40+60+70+80+90+5+15) / 13 = 570 / 13 = 43.846...
    # everyone: 570 / 14 = 40.714...; multiplier 43.846 / 40.714 = 1.0769 -> 1.08
    # Lost: 0 / 40.714 = 0 -> the lower bound 0.5
    champions = bids.set_index("segment").loc["Champions"]
    assert champions["customers"] == 13
    assert champions["value_per_person"] == pytest.approx(43.85)
    assert champions["bid_multiplier"] == 1.08 and champions["bid_adjustment_pct"] == 8
    lost = bids.set_index("segment").loc["Lost"]
    assert (lost["value_per_person"], lost["bid_multiplier"], lost["bid_adjustment_pct"]) == (
        0.0, 0.5, -50,
    )  # fmt: skip
    assert list(bids.columns) == audience.BID_COLUMNS
    assert list(audience.bid_multiplier([10.0, 100.0, 1.0], 10.0)) == [1.0, 3.0, 0.5]
    assert list(audience.bid_multiplier([5.0], 0.0)) == [1.0]
    with pytest.raises(ValueError, match="bounds"):
        audience.bid_multiplier([1.0], 1.0, lower=0.0)


def test_reach_per_destination(con):
    reach = audience.destination_reach(con, "rfm_segment").set_index("segment")
    assert reach.loc["Champions", "reach_google_ads"] == 7
    assert reach.loc["Champions", "reach_meta"] == 6
    assert reach.loc["Lost", "reach_google_ads"] == 1  # P13, US, no rows needed


def _export(con, who="marketer", **kwargs):
    return audience.export_destination(
        con, user(who), "rfm_segment", "Champions", "google_ads", via="cli", **kwargs
    )


def test_three_exports_mirror_adds_and_removes(con, tmp_path):
    out = tmp_path / "champs.csv"
    first = _export(con, activation="Champions on Google", out=out)
    assert (first.sync.run, first.sync.added, first.sync.removed) == (1, 7, 0)
    adds_path, removes_path = audience.sync_paths(out)
    assert adds_path.name == "champs.adds.csv" and removes_path.name == "champs.removes.csv"
    assert len(pd.read_csv(adds_path)) == 8 and len(pd.read_csv(removes_path)) == 0
    assert adds_path.read_bytes() == out.read_bytes()  # a first export adds the whole file
    # P02 leaves the segment, P13 joins it, P04 withdraws ad_personalization
    con.execute("UPDATE mart_customer SET rfm_segment = 'Lost' WHERE customer_id = 'P02'")
    con.execute("UPDATE mart_customer SET rfm_segment = 'Champions' WHERE customer_id = 'P13'")
    con.execute(
        "UPDATE ad_consents SET status = 'opt_out' WHERE source_id = '4' "
        "AND purpose = 'ad_personalization'"
    )
    second = _export(con, activation="Champions on Google", out=out)
    assert (second.sync.run, second.sync.added, second.sync.removed) == (2, 1, 2)
    assert list(second.sync.adds["Email"]) == [sha("p13@example.com")]
    removes = pd.read_csv(removes_path, dtype=str, keep_default_na=False)
    assert sorted(x for x in removes["Email"] if x) == sorted(
        [sha("bob@example.com"), sha("p4@example.fr")]
    )
    assert sorted(x for x in removes["Phone"] if x) == sorted(
        [sha("+14155550102"), sha("+33612345678")]
    )
    assert len(removes) == 4  # one identifier per row
    # P01 gets a third email on a new record, P02 comes back
    con.execute("INSERT INTO identity_map VALUES ('web', '1', NULL, 'P01')")
    con.execute(
        "INSERT INTO std_customers VALUES ('web', '1', 'jane.new@example.com', 'valid', NULL, "
        "'missing', 'US')"
    )
    con.execute("UPDATE mart_customer SET rfm_segment = 'Champions' WHERE customer_id = 'P02'")
    third = _export(con, activation="Champions on Google", out=out)
    assert (third.sync.run, third.sync.added, third.sync.removed) == (3, 1, 0)
    assert sorted(third.sync.adds["Email"]) == sorted(
        [sha("jane.new@example.com"), sha("bob@example.com")]
    )
    assert third.sync.removes.empty
    full = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(full) == len(third.rows) == 9
    history = audience.activation_history(con, "Champions on Google")
    assert list(history["run"]) == [3, 2, 1]
    assert list(history["added"]) == [1, 1, 7] and list(history["removed"]) == [0, 2, 0]
    assert list(history["sent"]) == [7, 6, 7]  # 7; 7 - P02 - P04 + P13; 6 + P02
    listed = audience.list_activations(con)
    assert listed.iloc[0]["exports"] == 3 and listed.iloc[0]["destination"] == "google_ads"
    log = con.execute("SELECT action, status, rows FROM audit_log ORDER BY audit_id").fetchall()
    assert log == [("export_audience", "ok", 8), ("export_audience", "ok", 7)] + [
        ("export_audience", "ok", 9)
    ]


def _held(name: str, ids, share: float) -> set[str]:
    """The holdout worked out independently: SHA-256 of '<name>\\x1f<id>', first 8 bytes."""
    out = set()
    for cid in ids:
        digest = hashlib.sha256(f"{name}\x1f{cid}".encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 < share:
            out.add(cid)
    return out


def test_holdout_is_stable_recorded_and_never_sent(con):
    want = _held("Half", SENT_GOOGLE, 0.5)
    assert 0 < len(want) < len(SENT_GOOGLE)  # the test means something
    first = _export(con, activation="Half", holdout=audience.parse_holdout("50%"))
    assert first.sync.held_out == len(want)
    sent_ids = set(SENT_GOOGLE) - want
    assert first.sent == len(sent_ids)
    held_emails = {
        sha(audience.normalise.google_email(r[3]))
        for r in RECORDS
        if r[0] in want and r[4] == "valid"
    }
    assert not set(first.rows["Email"].dropna()) & held_emails  # held out: not in the file
    members = audience.activation_members(con, "Half", 1)
    assert set(members.loc[members["held_out"], "customer_id"]) == want
    second = _export(con, activation="Half")  # the share is the activation's
    assert set(audience.activation_members(con, "Half", 2).query("held_out")["customer_id"]) == (
        want
    )
    assert (second.sync.added, second.sync.removed) == (0, 0)
    with pytest.raises(ValueError, match="holds out 50%"):
        _export(con, activation="Half", holdout=0.1)
    with pytest.raises(ValueError, match="sends segment Champions"):
        audience.export_destination(
            con, user("marketer"), "rfm_segment", "Lost", "google_ads", activation="Half"
        )


def test_the_first_exports_split_is_kept_even_against_the_hash(con):
    """A person the first export held out (or sent) stays so, whatever the hash says: the demo's
    planted activations were split before customer ids existed."""
    _export(con, activation="Half", holdout=0.5)
    first = audience.activation_members(con, "Half", 1).set_index("customer_id")["held_out"]
    flipped = first.index[0]
    con.execute(
        "UPDATE activation_members SET held_out = NOT held_out WHERE run = 1 AND customer_id = ?",
        [flipped],
    )
    _export(con, activation="Half")
    second = audience.activation_members(con, "Half", 2).set_index("customer_id")["held_out"]
    assert bool(second[flipped]) != bool(first[flipped])  # the recorded choice, not the hash's
    others = first.index.drop(flipped)
    assert (second[others] == first[others]).all()


def test_parse_holdout():
    assert audience.parse_holdout("10%") == pytest.approx(0.1)
    assert audience.parse_holdout("0.1") == pytest.approx(0.1)
    assert audience.parse_holdout("25") == pytest.approx(0.25)
    assert audience.parse_holdout(None) == 0.0
    for bad in ("60%", "-5%", "ten", "nan"):
        with pytest.raises(ValueError):
            audience.parse_holdout(bad)


def test_roles_clear_text_and_audit(con, tmp_path):
    with pytest.raises(access.AccessDenied):
        _export(con, who="executive")
    with pytest.raises(access.AccessDenied):
        _export(con, who="marketer", clear_text=True)
    hashed = _export(con, who="analyst", out=tmp_path / "g.csv")
    assert hashed.rows["Email"].dropna().str.fullmatch(r"[0-9a-f]{64}").all()
    clear = _export(con, who="admin", clear_text=True, out=tmp_path / "clear.csv")
    assert "janedoe@gmail.com" in set(clear.rows["Email"])
    text = (tmp_path / "clear.csv").read_text(encoding="utf-8")
    assert "'+14155550101" in text  # csv_export neutralises a leading '+' in a text cell
    log = con.execute("SELECT role, action, status FROM audit_log ORDER BY audit_id").fetchall()
    assert log == [
        ("executive", "export_audience", "refused"),
        ("marketer", "export_clear_text", "refused"),
        ("analyst", "export_audience", "ok"),
        ("admin", "export_clear_text", "ok"),
    ]


def test_a_failed_write_leaves_no_file_and_is_audited(con, tmp_path, monkeypatch):
    out = tmp_path / "x.csv"
    real = audience.delivery.csv_export.write_csv
    calls = []

    def flaky(frame, path, **kwargs):
        calls.append(path)
        if len(calls) == 3:  # the removes file
            raise audience.delivery.csv_export.ExportFileError("disk full")
        return real(frame, path, **kwargs)

    monkeypatch.setattr(audience.delivery.csv_export, "write_csv", flaky)
    with pytest.raises(ValueError, match="disk full"):
        _export(con, activation="Flaky", out=out)
    assert not list(tmp_path.glob("x*.csv"))
    assert audience.find_activation(con, "Flaky") is None  # nothing remembered
    assert con.execute("SELECT status FROM audit_log").fetchall() == [("failed",)]


def test_bad_inputs_are_refused_before_anything_is_read(con, tmp_path):
    with pytest.raises(ValueError, match="use a file name ending in"):
        _export(con, out=tmp_path / "a.parquet")
    with pytest.raises(ValueError, match="unknown destination"):
        audience.export_destination(con, user("admin"), "rfm_segment", "Champions", "tiktok")
    with pytest.raises(ValueError, match="at most 80"):
        _export(con, activation="x" * 81)
    assert con.execute("SELECT count(*) FROM audit_log").fetchall()[0][0] == 0
    assert audit.AUDITED_ACTIONS[:2] == ("reveal_pii", "export_audience")


def test_ingest_accepts_ad_consents_and_rejects_unknown_purposes(tmp_path):
    from ccrm_core.foundation import ingest

    path = tmp_path / "ad_consents.csv"
    path.write_text(
        "source_system,source_id,purpose,status,ts\n"
        "shop,1,ad_user_data,opt_in,2024-06-01 10:00:00\n"
        "shop,1,ad_personalization,opt_out,2024-06-02 10:00:00\n"
        "shop,2,email,opt_in,2024-06-01 10:00:00\n"
        "shop,3,ad_user_data,maybe,2024-06-01 10:00:00\n",
        encoding="utf-8",
    )
    con = store.connect_writer(tmp_path / "ingest.duckdb")
    try:
        [report] = ingest.ingest_files(con, [path], max_reject_rate=1.0)
        assert (report.table, report.rows_loaded, report.rows_rejected) == ("ad_consents", 2, 2)
        reasons = con.execute(
            "SELECT line, column_name, reason FROM ingest_rejects ORDER BY line"
        ).fetchall()
        assert reasons == [
            (4, "purpose", "must be ad_user_data or ad_personalization"),
            (5, "status", "must be opt_in or opt_out"),
        ]
        assert con.execute("SELECT count(*) FROM consents").fetchall() == [(0,)]
    finally:
        con.close()


def test_holdout_position_in_sql_equals_python():
    import duckdb

    ids = [f"C{i:09d}" for i in range(2000)] + ["", "é", "=1"]
    con = duckdb.connect()
    sql = audience.activations.holdout_position_sql("?", "unnest(?::VARCHAR[])")
    got = [row[0] for row in con.execute(f"SELECT {sql}", ["Champions on Meta", ids]).fetchall()]
    assert got == list(audience.holdout_position("Champions on Meta", ids))
    con.close()
