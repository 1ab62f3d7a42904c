"""Customer 360: search on hand-made typos and formats, the profile, the timeline."""

from __future__ import annotations

import pytest
from c360_data import load_handmade

from ccrm_core.foundation import store
from ccrm_core.librarian import customer360 as c360
from ccrm_core.librarian.customer360 import keys


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    """Read-only by convention: every test here only reads."""
    c = store.connect_writer(tmp_path_factory.mktemp("c360") / "c360.duckdb")
    load_handmade(c)
    yield c
    c.close()


def top(con, query: str, n: int = 1) -> list[str]:
    return c360.search(con, query)["customer_id"].head(n).tolist()


# --- query parsing ---------------------------------------------------------------------------


def test_parse_query_reads_each_kind():
    q = c360.parse_query("+1 (415) 555-0100")
    assert q.phone == "4155550100" and not q.words and not q.email
    assert c360.parse_query("4155550100").phone == "4155550100"
    assert c360.parse_query("555-0100").phone == "5550100"
    q = c360.parse_query("Jon.Smith@Example.com")
    assert q.email == "jon.smith@example.com" and q.words == ("jon", "smith")
    q = c360.parse_query("  José  O'Brien ")
    assert q.words == ("jose", "obrien") and not q.ident and not q.phone
    assert c360.parse_query("E-1001").ident == "e1001"
    assert c360.parse_query("") == c360.SearchQuery(text="")


def test_normalisers_agree_between_python_and_sql(con):
    for raw in ["José Álvarez", "Mary O'Brien", "  SMITH-jones "]:
        sql = con.execute(f"SELECT {keys._sql_text('?')}", [raw]).fetchone()[0]
        assert sql == c360.normalise_text(raw)
    assert (
        con.execute(f"SELECT {keys._sql_phone_key('?')}", ["+1 (415) 555-0100"]).fetchone()[0]
        == c360.phone_digits("+1 (415) 555-0100")[::-1]
    )


def test_prefix_codes_agree_between_python_and_sql(con):
    for key in ["c000001234", "john.smith@example.com", "0010555514", "ab", "é-x"]:
        sql = con.execute(f"SELECT {keys._sql_code('$k')}", {"k": key}).fetchone()[0]
        low, high = c360.prefix_code(key)
        assert sql == low and (high == low if len(key) >= 8 else high > low)
        # every key that starts with a prefix has its code inside the prefix's range
        lo3, hi3 = c360.prefix_code(key[:2])
        assert lo3 <= sql <= hi3
    assert c360.prefix_code("ab") == (0x6162 << 48, (0x6162 << 48) + (1 << 48) - 1)


# --- search ------------------------------------------------------------------------------------


def test_typo_name_finds_john_smith_with_hand_computed_score(con):
    res = c360.search(con, "jon smth")
    # Jaro-Winkler by hand: jon~john = 0.9167 + 2*0.1*(1-0.9167) = 0.9333;
    # smth~smith = 0.9333 + 2*0.1*(1-0.9333) = 0.9467; the mean is 0.94.
    john = res[res["customer_id"] == "C1"].iloc[0]
    assert john["score"] == pytest.approx(0.94, abs=1e-3)
    assert john["matched_field"] == "name" and john["name"] == "John Smith"
    # Jon Smyth is one edit away (smth -> smyth) against John Smith's two: it may rank first,
    # but both rank above the one-word matches Joan Smart and Johanna Schmidt
    assert set(res["customer_id"].head(2)) == {"C1", "C3"}
    assert res.index[res["customer_id"] == "C2"][0] > 1


def test_transposition_typo_ranks_the_intended_customer_first(con):
    assert top(con, "jhon smith") == ["C1"]
    assert top(con, "smith john") == ["C1"]  # word order does not matter


def test_phone_in_any_format_finds_the_same_person(con):
    for query in ["+1 (415) 555-0100", "4155550100", "415.555.0100", "(415) 5550100"]:
        res = c360.search(con, query)
        assert res["customer_id"].iloc[0] == "C1", query
        assert res["matched_field"].iloc[0] == "phone"
        assert res["score"].iloc[0] == 1.0


def test_phone_suffix_and_one_typo(con):
    res = c360.search(con, "555-0100")
    assert res["customer_id"].tolist() == ["C1"]
    assert res["score"].iloc[0] == pytest.approx(0.6 + 0.04 * 7)
    typo = c360.search(con, "415 556 0100")  # one wrong digit in the middle
    assert typo["customer_id"].tolist() == ["C1"] and typo["score"].iloc[0] == 0.85
    assert top(con, "+34 912 345 678") == ["C5"]


def test_email_exact_and_with_a_typo(con):
    exact = c360.search(con, "JOAN.SMART@example.com")
    assert exact["customer_id"].iloc[0] == "C2" and exact["score"].iloc[0] == 1.0
    typo = c360.search(con, "john.smiht@example.com")
    assert typo["customer_id"].iloc[0] == "C1"
    assert typo["matched_field"].iloc[0] == "email"
    assert typo["matched_value"].iloc[0] == "john.smith@example.com"
    # a typo among the first characters: found through the reversed local part
    first = c360.search(con, "jhon.smith@example.com")
    assert first["customer_id"].iloc[0] == "C1" and first["matched_field"].iloc[0] == "email"


def test_source_record_values_are_searchable(con):
    # "Johnny" and jsmith@ exist only on the loyalty record merged into C1
    assert top(con, "johnny") == ["C1"]
    assert top(con, "jsmith@example.com") == ["C1"]


def test_accents_and_apostrophes(con):
    assert top(con, "jose alvarez") == ["C5"]
    assert top(con, "Álvarez") == ["C5"]
    assert top(con, "O'Brien") == ["C6"]
    assert top(con, "obrien") == ["C6"]


def test_ids_customer_source_and_anonymous(con):
    res = c360.search(con, "E-1001")
    assert res.iloc[0][["customer_id", "matched_field", "matched_value"]].tolist() == [
        "C1",
        "source_id",
        "ecommerce:E-1001",
    ]
    assert top(con, "l2003") == ["C1"]
    anon = c360.search(con, "cookie-abc")
    assert anon.iloc[0]["customer_id"] == "C1" and anon.iloc[0]["matched_field"] == "anonymous_id"
    # prefix: 0.8 + 0.2 * len("cookieabc") / len("cookieabc123")
    assert anon.iloc[0]["score"] == pytest.approx(0.8 + 0.2 * 9 / 12, abs=1e-4)


def test_prefix_while_typing_and_limit(con):
    assert top(con, "smi") == ["C1"]  # smi -> smith
    res = c360.search(con, "jo", limit=3)
    assert len(res) == 3
    assert res["score"].is_monotonic_decreasing


def test_no_match_and_no_index(con, tmp_path):
    assert c360.search(con, "zzzzqqq").empty
    assert c360.search(con, "   ").empty
    bare = store.connect_writer(tmp_path / "bare.duckdb")
    try:
        res = bare.execute("SELECT 1").fetchone()
        assert res == (1,)
        assert c360.search(bare, "john").empty
        assert list(c360.search(bare, "john").columns) == c360.RESULT_COLUMNS
    finally:
        bare.close()


def test_results_are_masked_unless_revealed(con):
    res = c360.search(con, "john.smith@example.com")
    masked = c360.mask_results(res)
    assert masked["email"].iloc[0] == "j***@example.com"
    assert masked["matched_value"].iloc[0] == "j***@example.com"
    assert masked["phone"].iloc[0] == "***-***-0100"
    assert masked["name"].iloc[0] == "J*** S***"
    assert c360.mask_results(res, reveal=True)["email"].iloc[0] == "john.smith@example.com"


# --- profile -----------------------------------------------------------------------------------


def test_profile_of_a_hand_made_customer(con):
    p = c360.profile(con, "C1")
    assert p.name == "John Smith"
    golden = p.golden.set_index("field")
    assert golden.loc["email", "value"] == "john.smith@example.com"
    assert golden.loc["email", "source"] == "ecommerce"  # first_source until <field>_source exists
    assert sorted(p.sources["source_id"]) == ["E-1001", "L-2003"]
    assert p.sources.set_index("source_id").loc["L-2003", "match_probability"] == 0.97
    ids = p.identifiers.set_index("anonymous_id")
    assert ids.loc["cookie-abc123", "events"] == 2  # the login and the later anonymous visit
    assert dict(zip(p.consents["channel"], p.consents["status"], strict=True)) == {
        "email": "opt_in",
        "sms": "opt_out",
    }
    fatigue = p.fatigue.set_index("channel")
    # sends up to 2025-03-30: email 03-01 and 03-28 (7 days = 03-24..03-30), sms 03-25
    assert fatigue.loc["email", ["touches_7d", "touches_30d"]].tolist() == [1, 2]
    assert fatigue.loc["sms", ["touches_7d", "touches_30d"]].tolist() == [1, 1]
    assert fatigue.loc["push", "touches_30d"] == 0
    assert p.percentiles["revenue"] == 1.0  # 200.00 is the most of the six customers
    assert p.value is None and "value" in p.missing and "propensity" in p.missing


def test_profile_unknown_id_is_none(con):
    assert c360.profile(con, "NOPE") is None


def test_profile_masking(con):
    p = c360.mask_profile(c360.profile(con, "C1"))
    golden = p.golden.set_index("field")["value"]
    assert golden["email"] == "j***@example.com" and golden["phone"] == "***-***-0100"
    assert set(p.sources["email"]) == {"j***@example.com"}
    # names and addresses are masked too; only an audited reveal shows them
    assert p.name == "J*** S***"
    assert golden["first_name"] == "J***" and golden["last_name"] == "S***"
    assert c360.mask_profile(c360.profile(con, "C1"), reveal=True).name == "John Smith"


def test_profile_url():
    assert c360.profile_url("C 1") == "/customer_360?customer_id=C%201"


# --- timeline ----------------------------------------------------------------------------------


def test_timeline_filters_and_pages(con):
    tl = c360.timeline(con, "C1", page_size=3)
    # C1: 6 events of its own records and cookie + 2 orders
    assert tl.total == 8 and tl.pages == 3
    assert tl.rows["ref_id"].tolist() == ["ev6", "ev5", "o2"]  # newest first
    assert tl.channels == ["app", "email", "sms", "web"]
    assert tl.types == ["login", "open", "order", "send", "visit"]
    last = c360.timeline(con, "C1", page=3, page_size=3)
    assert last.rows["ref_id"].tolist() == ["ev1", "o1"]
    assert c360.timeline(con, "C1", page=99, page_size=3).page == 3
    emails = c360.timeline(con, "C1", channels=["email"])
    assert sorted(emails.rows["ref_id"]) == ["ev1", "ev2", "ev6"]
    orders = c360.timeline(con, "C1", types=["order"])
    assert orders.rows["value"].tolist() == [80.0, 120.0]
    both = c360.timeline(con, "C1", channels=["email"], types=["send"])
    assert both.total == 2
    assert len(tl.chart) == 8
    assert c360.chart_timeline(tl.chart).data  # one trace per event type


def test_timeline_without_the_stage(tmp_path):
    bare = store.connect_writer(tmp_path / "bare.duckdb")
    try:
        tl = c360.timeline(bare, "C1")
        assert tl.total == 0 and tl.rows.empty
    finally:
        bare.close()


def test_gauge_handles_missing_value():
    fig = c360.chart_gauge(None, "Churn risk", good_high=False)
    assert "not built" in fig.data[0].title.text


def test_names_in_any_script_are_searchable(tmp_path):
    from c360_data import AS_OF

    from ccrm_core.foundation.pipeline import BuildContext

    c = store.connect_writer(tmp_path / "scripts.duckdb")
    load_handmade(c)
    people = [("K-4001", "Мария", "Иванова", "C7"), ("K-4002", "李", "小龙", "C8")]
    for source_id, first, last, cid in people:
        c.execute(
            "INSERT INTO src_customers (source_system, source_id, first_name, last_name) "
            "VALUES ('call_center', ?, ?, ?)",
            [source_id, first, last],
        )
        c.execute(
            "INSERT INTO identity_map VALUES ('call_center', ?, NULL, ?, 'source_record', 1.0)",
            [source_id, cid],
        )
        c.execute(
            "INSERT INTO customers (customer_id, first_name, last_name, first_source) "
            "VALUES (?, ?, ?, 'call_center')",
            [cid, first, last],
        )
    c360.search_index_stage(c, BuildContext(as_of=AS_OF, run_id=2))
    assert top(c, "мария иванова") == ["C7"]
    assert top(c, "Мария Ивановa") == ["C7"]  # a Latin 'a' typed at the end: one typo
    assert top(c, "李 小龙") == ["C8"]
    assert top(c, "John Smith") == ["C1"]  # Latin names unaffected
    c.close()
