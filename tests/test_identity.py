"""Identity resolution: hand-made records with known persons, stable ids, the stage's outputs."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from ccrm_core.foundation import pipeline, store
from ccrm_core.librarian import identity
from ccrm_core.librarian.identity import matching

AS_OF = date(2024, 12, 31)

# Persons: jane (E1, L1 share an email), bob (C1, E2 share phone + last name), alice (L2, E3 agree
# on name, birth date and address only: probabilistic), alice2 (C2: same name, other birth date
# and address: a different person), solo (E4).
RECORDS = [
    # source_system, source_id, first, last, email, phone, address, postal, dob, updated_at, person
    ("ecommerce", "E1", "Jane", "Doe", "jane.doe@example.com", "(415) 555-0101", "1 Main St",
     "94103", date(1980, 1, 1), datetime(2024, 1, 1), "jane"),
    ("loyalty", "L1", "JANE", "DOE", "Jane.Doe@Example.com", None, "2 Oak Ave", "94110",
     date(1980, 1, 1), datetime(2024, 6, 1), "jane"),
    ("call_center", "C1", "Bob", "Smith", None, "415-555-0202", "5 Pine St", "94103",
     date(1975, 5, 5), datetime(2023, 1, 1), "bob"),
    ("ecommerce", "E2", "Robert", "Smith", "bob@other.com", "+14155550202", None, None,
     None, datetime(2022, 1, 1), "bob"),
    ("loyalty", "L2", "Alice", "Walker", None, None, "9 Elm St", "10001", date(1990, 2, 2),
     datetime(2023, 3, 3), "alice"),
    ("ecommerce", "E3", "Alice", "Walker", "alice.w@mail.com", None, "9 Elm St", "10001",
     date(1990, 2, 2), datetime(2023, 4, 4), "alice"),
    ("call_center", "C2", "Alice", "Walker", None, "312-555-0303", "77 Lake Rd", "60601",
     date(1960, 1, 1), datetime(2023, 5, 5), "alice2"),
    ("ecommerce", "E4", "Solo", "Person", "solo@example.com", None, "3 Hill Rd", "30301",
     date(1970, 7, 7), datetime(2020, 1, 1), "solo"),
]  # fmt: skip
COLUMNS = [
    "source_system", "source_id", "first_name", "last_name", "email", "phone", "address_line",
    "postal_code", "birth_date", "updated_at", "person",
]  # fmt: skip


def records_frame() -> pd.DataFrame:
    frame = pd.DataFrame(RECORDS, columns=COLUMNS)
    frame["country"] = "US"
    frame["city"] = "Springfield"
    frame["created_at"] = datetime(2019, 1, 1)
    return frame


def same_person_groups(resolved: pd.DataFrame, truth: pd.Series) -> bool:
    """True when customer_id partitions the records exactly as `truth` does."""
    pairs = pd.DataFrame({"c": resolved["customer_id"].to_numpy(), "t": truth.to_numpy()})
    return (pairs.groupby("c")["t"].nunique() == 1).all() and (
        pairs.groupby("t")["c"].nunique() == 1
    ).all()


def test_resolve_records_finds_each_person():
    frame = records_frame()
    out = identity.resolve_records(frame.drop(columns="person"), as_of=AS_OF)
    assert len(out) == len(frame)
    assert list(out["source_id"]) == list(frame["source_id"])  # input order kept
    assert same_person_groups(out, frame["person"])
    by_id = out.set_index("source_id")
    assert by_id.loc["E1", "method"] == "email" and by_id.loc["L1", "method"] == "email"
    assert by_id.loc["C1", "method"] == "phone_last_name"
    assert by_id.loc["L2", "method"] == "probabilistic"
    assert by_id.loc["L2", "match_probability"] > 0.95
    assert by_id.loc["C2", "method"] == "single_record"
    assert by_id.loc["E4", "match_probability"] == 1.0
    # Ids numbered by first record: E1 (row 0) is C000000001.
    assert by_id.loc["E1", "customer_id"] == "C000000001"


def test_resolve_records_without_contact_columns():
    frame = records_frame()[["first_name", "last_name", "birth_date", "person"]]
    out = identity.resolve_records(frame.drop(columns="person"), as_of=AS_OF)
    assert list(out["source_id"]) == [str(i) for i in range(len(frame))]
    assert (out["source_system"] == "input").all()
    # Without email, phone or address, only name + birth date agree: jane's two records
    # (exact name, same birth date) link, the two Alice Walkers with different birth dates do not.
    by_row = out["customer_id"].to_numpy()
    assert by_row[0] == by_row[1]
    assert by_row[4] == by_row[5]
    assert by_row[6] != by_row[4]


def test_raising_the_threshold_never_merges_more():
    frame = records_frame().drop(columns="person")
    loose = identity.resolve_records(frame, threshold=0.5, as_of=AS_OF)["customer_id"].nunique()
    strict = identity.resolve_records(frame, threshold=0.999999999, as_of=AS_OF)
    assert strict["customer_id"].nunique() >= loose
    # Deterministic links hold at any threshold: jane and bob stay linked.
    by_id = strict.set_index("source_id")["customer_id"]
    assert by_id["E1"] == by_id["L1"] and by_id["C1"] == by_id["E2"]


def test_components_labels_by_smallest_member():
    labels = matching._components(6, np.array([4, 1]), np.array([2, 5]))
    assert list(labels) == [0, 1, 2, 3, 2, 1]


def test_assign_stable_ids_rules():
    prev = pd.DataFrame(
        {
            "source_system": ["s"] * 6,
            "source_id": ["a", "b", "c", "d", "e", "f"],
            "customer_id": ["C000000001", "C000000001", "C000000002", "C000000003",
                            "C000000003", "C000000004"],
        }
    )  # fmt: skip
    # New clustering: a,b unchanged (cluster 0); c gains new record g (cluster 2);
    # d and e split (d alone 3, e with f 4 -> C3 goes to the cluster with more of its
    # records: tie 1 vs 1 -> smallest cluster 3; cluster 4 also inherits C4 from f);
    # h is new (cluster 7).
    records = pd.DataFrame(
        {
            "source_system": ["s"] * 8,
            "source_id": ["a", "b", "c", "d", "e", "f", "g", "h"],
            "cluster": [0, 0, 2, 3, 4, 4, 2, 7],
        }
    )
    ids, high = identity.assign_stable_ids(records, prev, high_water=10)
    assert list(ids) == [
        "C000000001", "C000000001", "C000000002", "C000000003", "C000000004", "C000000004",
        "C000000002", "C000000011",
    ]  # fmt: skip
    assert high == 11


def test_assign_stable_ids_merge_keeps_larger_customer():
    prev = pd.DataFrame(
        {
            "source_system": ["s"] * 3,
            "source_id": ["a", "b", "c"],
            "customer_id": ["C000000005", "C000000002", "C000000002"],
        }
    )
    records = pd.DataFrame(
        {"source_system": ["s"] * 3, "source_id": ["a", "b", "c"], "cluster": [0, 0, 0]}
    )
    ids, high = identity.assign_stable_ids(records, prev)
    assert set(ids) == {"C000000002"}  # two of its records against one
    assert high == 5  # nothing new issued; the high-water mark covers retired C000000005


# --- the stage on a tiny database ----------------------------------------------------------


def _tiny_db(path, records: pd.DataFrame):
    con = store.connect_writer(path)
    con.register("recs", records.drop(columns="person"))
    con.execute("INSERT INTO src_customers BY NAME SELECT * FROM recs")
    con.unregister("recs")
    events = pd.DataFrame(
        {
            "event_id": ["v1", "v2", "v3", "v4", "v5", "v6"],
            "ts": pd.to_datetime(
                ["2024-12-01", "2024-12-02", "2024-12-03", "2024-12-04", "2024-12-05", "2024-12-06"]
            ),  # fmt: skip
            "channel": ["web"] * 6,
            "event_type": ["login", "login", "login", "visit", "visit", "visit"],
            "source_system": ["ecommerce", "loyalty", "call_center", None, None, None],
            "source_id": ["E1", "L1", "C1", None, None, None],
            # a1 logs in twice as jane (E1, L1) and once as bob: jane's. a2 never logs in.
            "anonymous_id": ["a1", "a1", "a1", "a1", "a2", "a2"],
        }
    )
    con.register("ev", events)
    con.execute("INSERT INTO events BY NAME SELECT * FROM ev")
    con.unregister("ev")
    con.execute(
        "INSERT INTO orders VALUES ('o1', TIMESTAMP '2024-11-01', 'ecommerce', 'E1', 10.0, "
        "'web', 'x'), ('o2', TIMESTAMP '2024-11-02', 'loyalty', 'L1', 20.0, 'store', 'x')"
    )
    con.execute(
        "INSERT INTO consents VALUES ('ecommerce', 'E1', 'email', 'opt_in', "
        "TIMESTAMP '2024-01-01'), ('loyalty', 'L1', 'email', 'opt_out', TIMESTAMP '2024-02-01')"
    )
    return con


def _build(con):
    results = pipeline.build(con, ["standardise", "identity", "hygiene"])
    assert [r.status for r in results] == ["ok", "ok", "ok"], results
    return results


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Built once for the read-only tests of this module."""
    con = _tiny_db(tmp_path_factory.mktemp("identity") / "tiny.duckdb", records_frame())
    _build(con)
    yield con
    con.close()


@pytest.fixture()
def tiny_rw(tmp_path):
    con = _tiny_db(tmp_path / "tiny.duckdb", records_frame())
    _build(con)
    yield con
    con.close()


def _ids(con) -> dict[str, str]:
    rows = con.execute(
        "SELECT source_id, customer_id FROM identity_map WHERE anonymous_id IS NULL"
    ).fetchall()
    return dict(rows)


def test_identity_map_contract_and_anonymous_links(tiny):
    cols = [r[0] for r in tiny.execute("DESCRIBE identity_map").fetchall()]
    assert cols == [
        "source_system", "source_id", "anonymous_id", "customer_id", "method",
        "match_probability",
    ]  # fmt: skip
    ids = _ids(tiny)
    assert len(ids) == 8 and len(set(ids.values())) == 5
    anon = dict(
        tiny.execute(
            "SELECT anonymous_id, customer_id FROM identity_map WHERE anonymous_id IS NOT NULL"
        ).fetchall()
    )
    assert anon == {"a1": ids["E1"], "a2": None}
    methods = dict(
        tiny.execute(
            "SELECT anonymous_id, method FROM identity_map WHERE anonymous_id IS NOT NULL"
        ).fetchall()
    )
    assert methods == {"a1": "login", "a2": "anonymous"}


def test_customer_views(tiny):
    ids = _ids(tiny)
    orders = tiny.execute("SELECT DISTINCT customer_id FROM customer_orders").fetchall()
    assert orders == [(ids["E1"],)]  # E1 and L1 are one customer
    visits = dict(
        tiny.execute(
            "SELECT event_id, customer_id FROM customer_events WHERE event_type = 'visit'"
        ).fetchall()
    )
    assert visits == {"v4": ids["E1"], "v5": None, "v6": None}
    consent = tiny.execute("SELECT customer_id, channel, status FROM customer_consents").fetchall()
    assert consent == [(ids["E1"], "email", "opt_out")]  # the latest of the two records


def test_golden_record_survivorship_and_provenance(tiny):
    ids = _ids(tiny)
    jane = tiny.execute("SELECT * FROM customers WHERE customer_id = ?", [ids["E1"]]).df().iloc[0]
    # L1 is the most recent record: its standardised name and address survive...
    assert jane["first_name"] == "Jane" and jane["first_name_source"] == "loyalty"
    assert jane["address_line"] == "2 Oak Ave" and jane["postal_code"] == "94110"
    assert jane["address_line_source"] == "loyalty" and jane["city_source"] == "loyalty"
    # ... but L1 has no phone: the most recent valid phone is E1's, in E.164.
    assert jane["phone"] == "+14155550101" and jane["phone_source"] == "ecommerce"
    assert jane["email"] == "jane.doe@example.com"
    assert jane["source_records"] == 2
    assert list(jane["source_systems"]) == ["ecommerce", "loyalty"]
    bob = tiny.execute("SELECT * FROM customers WHERE customer_id = ?", [ids["C1"]]).df().iloc[0]
    # C1 (2023) is more recent than E2 (2022); E2 alone has an email.
    assert bob["first_name"] == "Bob" and bob["email"] == "bob@other.com"
    assert bob["birth_date"] == pd.Timestamp("1975-05-05")
    assert tiny.execute("SELECT count(*) FROM customers").fetchall()[0][0] == 5


def test_stable_ids_when_records_arrive(tiny_rw):
    tiny = tiny_rw
    before = _ids(tiny)
    tiny.execute(
        "INSERT INTO src_customers (source_system, source_id, first_name, last_name, email, "
        "country, updated_at) VALUES "
        "('loyalty', 'L9', 'Jane', 'Doe', 'JANE.DOE@example.com', 'US', TIMESTAMP '2024-07-01'),"
        "('loyalty', 'L10', 'New', 'Comer', 'new@example.com', 'US', TIMESTAMP '2024-07-01')"
    )
    _build(tiny)
    after = _ids(tiny)
    assert all(after[k] == v for k, v in before.items())  # every old id kept
    assert after["L9"] == before["E1"]  # joined jane
    issued = max(int(v[1:]) for v in before.values())
    assert after["L10"] == identity.format_customer_id(issued + 1)
    runs = tiny.execute("SELECT records, customers, ids_kept FROM identity_runs ORDER BY run_id")
    assert runs.fetchall()[-1] == (10, 6, 5)


def test_threshold_curve_and_waterfall(tiny):
    curve = identity.threshold_curve(tiny)
    # Deterministic links only: jane (2), bob (2), and four single records = 6 customers.
    assert curve["customers"].iloc[0] == 6
    assert identity.customers_at_threshold(curve, 0.95) == 5
    assert identity.customers_at_threshold(curve, 1.0) == 6
    assert curve["customers"].is_monotonic_decreasing
    pairs = identity.matched_pairs(tiny, 0.95)
    assert len(pairs) == 1
    pair = pairs.iloc[0]
    assert {pair["source_id_l"], pair["source_id_r"]} == {"L2", "E3"}
    steps = identity.pair_explanation(tiny, pair["uid_l"], pair["uid_r"])
    assert steps["step"].tolist() == ["prior", *identity.COMPARISON_NAMES]
    assert steps["match_weight"].sum() == pytest.approx(pair["match_weight"], abs=1e-9)
    levels = steps.set_index("step")["level"]
    assert levels["first_name"] == "exact" and levels["birth_date"] == "exact"
    assert levels["phone"] == "missing"
    # Prior of the untrained model: log2(1e-4 / (1 - 1e-4)).
    assert steps["match_weight"].iloc[0] == pytest.approx(np.log2(1e-4 / (1 - 1e-4)), abs=1e-6)
    fig = identity.figure_match_waterfall(steps)
    assert fig.data[0].y[-1] == pytest.approx(pair["match_weight"])
    recs = identity.pair_records(tiny, pair["uid_l"], pair["uid_r"])
    assert sorted(recs["source_id"]) == ["E3", "L2"]


def test_summary(tiny):
    s = identity.summary(tiny)
    assert s["records"] == 8 and s["customers"] == 5
    assert s["duplicate_rate"] == pytest.approx(1 - 5 / 8)
    assert s["anonymous_ids"] == 2 and s["anonymous_linked"] == 1
    methods = s["by_method"].set_index("method")["records"].to_dict()
    assert methods == {
        "email": 2, "phone_last_name": 2, "probabilistic": 2, "single_record": 2, "login": 1,
        "anonymous": 1,
    }  # fmt: skip
    assert s["cluster_sizes"].set_index("records_per_customer")["customers"].to_dict() == {
        1: 2,
        2: 3,
    }
    by_source = s["by_source"].set_index("source_system")
    # ecommerce: E1 (jane, with loyalty), E2 (bob, with call_center), E3 (alice, with loyalty),
    # E4 alone: 4 records, 4 customers, 3 shared with other sources.
    assert by_source.loc["ecommerce"].to_dict() == {
        "records": 4,
        "customers": 4,
        "duplicates_within": 0,
        "shared_with_other_sources": 3,
    }


def test_stage_refuses_without_standardised_records(tmp_path):
    con = store.connect_writer(tmp_path / "empty.duckdb")
    results = pipeline.build(con, ["identity"])
    assert results[0].status == "failed"
    assert "standardise" in results[0].error
    con.close()


# --- recovery on the generated demo company ----------------------------------------------------


def test_identity_recovery_on_demo(demo_con):
    """Pairwise precision >= 0.98 and recall >= 0.95 against the planted persons; every planted
    login link found (the anonymous id maps to the customer holding its person's records)."""
    tp, predicted, actual = demo_con.execute(
        """
        WITH j AS (
            SELECT m.customer_id, g.person_id FROM identity_map m
            JOIN ground_truth_identity g USING (source_system, source_id)
        ),
        both_ AS (SELECT count(*) AS n FROM j GROUP BY customer_id, person_id),
        by_c AS (SELECT count(*) AS n FROM j GROUP BY customer_id),
        by_p AS (SELECT count(*) AS n FROM j GROUP BY person_id)
        SELECT (SELECT sum(n * (n - 1) / 2) FROM both_), (SELECT sum(n * (n - 1) / 2) FROM by_c),
               (SELECT sum(n * (n - 1) / 2) FROM by_p)
        """
    ).fetchall()[0]
    assert actual > 500  # the demo plants many duplicates
    assert tp / predicted >= 0.98, f"precision {tp / predicted:.4f}"
    assert tp / actual >= 0.95, f"recall {tp / actual:.4f}"
    planted, found, wrong = demo_con.execute(
        """
        WITH person_customer AS (
            SELECT DISTINCT g.person_id, m.customer_id FROM identity_map m
            JOIN ground_truth_identity g USING (source_system, source_id)
        )
        SELECT count(*),
               count(*) FILTER (WHERE pc.customer_id IS NOT NULL),
               (SELECT count(*) FROM ground_truth_anonymous a2 JOIN identity_map m2
                  USING (anonymous_id) WHERE a2.person_id IS NULL AND m2.customer_id IS NOT NULL)
        FROM ground_truth_anonymous a
        JOIN identity_map m USING (anonymous_id)
        LEFT JOIN person_customer pc
          ON pc.person_id = a.person_id AND pc.customer_id = m.customer_id
        WHERE a.person_id IS NOT NULL
        """
    ).fetchall()[0]
    assert planted > 100
    assert found == planted
    assert wrong == 0  # never-logged-in visitors stay anonymous
