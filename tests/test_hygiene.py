"""Hygiene checks on hand-made tables, the score formula, history across builds, drill-down,
and recovery of the planted defect rates on the generated demo company."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from ccrm_core.foundation import pipeline, store
from ccrm_core.librarian import hygiene

AS_OF = date(2024, 12, 31)

# Five records, each defect placed by hand (see the expected counts in test_check_counts).
CUSTOMERS = [
    # id, first, last, email, phone, postal, birth_date, created_at, updated_at
    ("r1", "Ann", "Lee", "ann@example.com", "+14155550101", "02134", date(1980, 1, 1),
     datetime(2020, 1, 1), datetime(2024, 6, 1)),
    ("r2", None, "  ", "Bad@@x", "123", "ABCDE", date(2030, 1, 1), datetime(2018, 1, 1),
     datetime(2019, 1, 1)),
    ("r3", "bob", "Ray", "Bob@Example.com", "(415) 555-0102", "02139", date(1850, 1, 1),
     datetime(2020, 1, 1), datetime(2024, 1, 1)),
    ("r4", "Ann", "Lee", "ann@example.com", None, "02134", date(1981, 1, 1),
     datetime(2021, 1, 1), datetime(2024, 1, 1)),
    ("r5", "Cy", "Po", None, None, "02140", date(1990, 1, 1), datetime(2020, 1, 1),
     datetime(2024, 1, 1)),
]  # fmt: skip


def _make_db(path):
    con = store.connect_writer(path)
    frame = pd.DataFrame(
        CUSTOMERS,
        columns=[
            "source_id", "first_name", "last_name", "email", "phone", "postal_code",
            "birth_date", "created_at", "updated_at",
        ],
    )  # fmt: skip
    frame["source_system"] = ["ecommerce", "ecommerce", "ecommerce", "loyalty", "loyalty"]
    frame["country"] = "US"
    frame["city"] = "Boston"
    frame["address_line"] = "1 Main St"
    con.register("f", frame)
    con.execute("INSERT INTO src_customers BY NAME SELECT * FROM f")
    con.unregister("f")
    con.execute(
        """
        INSERT INTO events (event_id, ts, channel, event_type, source_system, source_id) VALUES
          ('e1', TIMESTAMP '2024-12-31 10:00', 'email', 'open', 'ecommerce', 'r1'),
          ('e2', TIMESTAMP '2024-12-30 10:00', 'fax', 'poke', 'ecommerce', 'r1'),
          ('e3', TIMESTAMP '2024-12-30 10:00', 'web', 'visit', 'ecommerce', 'nobody'),
          ('e3', TIMESTAMP '2024-12-30 11:00', 'web', 'visit', 'ecommerce', 'r3'),
          ('e4', TIMESTAMP '2024-11-01 10:00', 'sms', 'send', 'loyalty', 'r4')
        """
    )
    con.execute(
        """
        INSERT INTO orders VALUES
          ('o1', TIMESTAMP '2024-12-01', 'ecommerce', 'r1', 10.0, 'web', 'x'),
          ('o2', TIMESTAMP '2024-12-02', 'ecommerce', 'ghost', -5.0, 'fax', 'x')
        """
    )
    return con


def _built(path):
    con = _make_db(path)
    results = pipeline.build(con, ["standardise", "identity", "hygiene"])
    assert [r.status for r in results] == ["ok", "ok", "ok"], results
    return con


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Built once for the read-only tests of this module."""
    con = _built(tmp_path_factory.mktemp("hygiene") / "hygiene.duckdb")
    yield con
    con.close()


@pytest.fixture()
def tiny_rw(tmp_path):
    con = _built(tmp_path / "hygiene.duckdb")
    yield con
    con.close()


def _latest(con) -> pd.DataFrame:
    return hygiene.checks_for_run(con, hygiene.runs(con)[-1])


def _count(checks: pd.DataFrame, check_id: str, source: str = hygiene.ALL_SOURCES):
    row = checks[(checks["check_id"] == check_id) & (checks["source_system"] == source)]
    assert len(row) == 1, f"{check_id}/{source}: {len(row)} rows"
    return int(row["failed_rows"].iloc[0]), int(row["total_rows"].iloc[0])


@pytest.mark.parametrize(
    "check_id, expected",
    [
        ("src_customers.first_name.missing", (1, 5)),  # r2 NULL
        ("src_customers.last_name.missing", (1, 5)),  # r2 blank
        ("src_customers.email.missing", (1, 5)),  # r5
        ("src_customers.email.invalid_email", (1, 4)),  # r2 of the 4 non-empty
        ("src_customers.phone.missing", (2, 5)),  # r4, r5
        ("src_customers.phone.invalid_phone", (1, 3)),  # r2 '123'
        ("src_customers.postal_code.invalid_postal_code", (1, 5)),  # r2 'ABCDE'
        ("src_customers.birth_date.future_date", (1, 5)),  # r2 2030
        ("src_customers.birth_date.implausible_age", (1, 5)),  # r3 1850
        ("src_customers.email.non_standard_syntax", (1, 3)),  # r3 of r1, r3, r4 (valid)
        ("src_customers.phone.non_standard_syntax", (1, 2)),  # r3 of r1, r3 (valid)
        ("src_customers.first_name.non_standard_syntax", (1, 4)),  # 'bob'
        # r1 and r4 are one customer (same email); the golden birth date is r1's (updated
        # later), so r4's 1981 conflicts.
        ("src_customers.birth_date.conflicts_with_customer", (1, 2)),
        ("src_customers.*.duplicate_person", (1, 5)),  # r4, created after r1
        ("src_customers.*.duplicate_key", (0, 5)),
        ("src_customers.updated_at.stale_record", (1, 5)),  # r2, 2019 < as_of - 1095 days
        ("events.channel.invalid_channel", (1, 5)),
        ("events.event_type.invalid_event_type", (1, 5)),
        ("events.source_id.unknown_record", (1, 5)),
        ("events.event_id.duplicate_key", (1, 5)),
        ("orders.revenue.negative_revenue", (1, 2)),
        ("orders.channel.invalid_channel", (1, 2)),
        ("orders.source_id.unknown_record", (1, 2)),
        ("events.ts.source_silent", (1, 2)),  # loyalty's last event is 60 days old
    ],
)
def test_check_counts(tiny, check_id, expected):
    assert _count(_latest(tiny), check_id) == expected


def test_per_source_rows_add_up(tiny):
    checks = _latest(tiny)
    assert _count(checks, "src_customers.phone.missing", "loyalty") == (2, 2)
    assert _count(checks, "src_customers.phone.missing", "ecommerce") == (0, 3)
    assert _count(checks, "events.ts.source_silent", "loyalty") == (1, 1)


def test_score_formula_by_hand():
    checks = pd.DataFrame(
        {
            "check_id": ["a", "b", "c", "a", "b", "c"],
            "dimension": ["validity", "validity", "recency"] * 2,
            "source_system": ["all"] * 3 + ["s1"] * 3,
            "score": [90.0, 70.0, 100.0, 50.0, None, 100.0],
        }
    )
    s = hygiene.score_checks(checks)
    assert s["by_dimension"] == {"validity": 80.0, "recency": 100.0}
    assert s["overall"] == pytest.approx(90.0)
    # s1: validity 50 (b has no rows), recency 100 -> 75.
    assert s["by_source"] == {"s1": pytest.approx(75.0)}


def test_scores_match_stored_checks_and_keep_history(tiny_rw):
    tiny = tiny_rw
    first = hygiene.latest_scores(tiny)
    assert first["previous"] is None
    checks = _latest(tiny)
    pooled = checks[(checks["source_system"] == "all") & checks["score"].notna()]
    validity = pooled[pooled["dimension"] == "validity"]["score"].mean()
    assert first["by_dimension"]["validity"] == pytest.approx(validity)
    # A second build fixes r2's email: history keeps both runs and the change shows.
    tiny.execute("UPDATE src_customers SET email = 'r2@example.com' WHERE source_id = 'r2'")
    assert all(r.status == "ok" for r in pipeline.build(tiny, ["standardise", "identity",
                                                               "hygiene"]))  # fmt: skip
    assert len(hygiene.runs(tiny)) == 2
    second = hygiene.latest_scores(tiny)
    assert second["previous"]["run_id"] == first["run_id"]
    assert second["by_dimension"]["validity"] > first["by_dimension"]["validity"]
    table = hygiene.check_table(_latest(tiny), hygiene.checks_for_run(tiny, first["run_id"]))
    row = table.set_index("check_id").loc["src_customers.email.invalid_email"]
    assert row["failed_rows"] == 0 and row["change"] == pytest.approx(25.0)  # 75 -> 100
    trend = hygiene.score_trend(tiny)
    assert sorted(trend["run_id"].unique()) == hygiene.runs(tiny)


def test_failing_rows_and_csv(tiny):
    rows = hygiene.failing_rows(tiny, "src_customers.phone.missing")
    assert sorted(rows["source_id"]) == ["r4", "r5"]
    assert "customer_id" in rows.columns
    assert len(hygiene.failing_rows(tiny, "src_customers.phone.missing", limit=1)) == 1
    events = hygiene.failing_rows(tiny, "events.channel.invalid_channel")
    assert events["event_id"].tolist() == ["e2"]
    csv = hygiene.failing_rows_csv(tiny, "src_customers.email.non_standard_syntax").decode()
    assert "r3" in csv and "Bob@Example.com" not in csv and "B***@Example.com" in csv
    with pytest.raises(KeyError, match="unknown hygiene check"):
        hygiene.failing_rows(tiny, "nope")


def test_field_scores_and_figures(tiny):
    checks = _latest(tiny)
    fields = hygiene.field_scores(checks)
    phone = fields.set_index(["table_name", "column_name"]).loc[("src_customers", "phone")]
    # phone checks: missing 60, invalid 66.7, non-standard 50, conflicts 100 (r1 only: r4, the
    # other record of its customer, has no phone).
    assert phone["score"] == pytest.approx((60 + 100 * 2 / 3 + 50 + 100) / 4)
    fig = hygiene.figure_field_heatmap(fields)
    assert "src_customers" in fig.data[0].y
    assert len(hygiene.figure_score_trend(hygiene.score_trend(tiny)).data) >= 2


def test_hygiene_stage_explains_missing_identity(tmp_path):
    con = store.connect_writer(tmp_path / "bare.duckdb")
    results = pipeline.build(con, ["hygiene"])
    assert results[0].status == "failed" and "identity" in results[0].error
    con.close()


# --- recovery on the generated demo company ---------------------------------------------------

# Planted defect (ground_truth_defects) -> the check that measures it.
DEFECT_CHECKS = {
    ("first_name", "missing"): "src_customers.first_name.missing",
    ("last_name", "missing"): "src_customers.last_name.missing",
    ("email", "missing"): "src_customers.email.missing",
    ("email", "malformed"): "src_customers.email.invalid_email",
    ("phone", "missing"): "src_customers.phone.missing",
    ("phone", "impossible"): "src_customers.phone.invalid_phone",
    ("postal_code", "missing"): "src_customers.postal_code.missing",
    ("birth_date", "future"): "src_customers.birth_date.future_date",
    ("birth_date", "before_1900"): "src_customers.birth_date.implausible_age",
    ("updated_at", "stale"): "src_customers.updated_at.stale_record",
}


def test_planted_defect_rates_recovered(demo_con):
    planted = demo_con.execute("SELECT * FROM ground_truth_defects").df()
    checks = _latest(demo_con)
    assert len(planted) >= len(DEFECT_CHECKS)
    for row in planted.itertuples():
        check_id = DEFECT_CHECKS[(row.column_name, row.defect)]
        failed, total = _count(checks, check_id)
        measured = failed / total
        assert abs(measured - row.planted_rate) <= 0.005, (
            f"{check_id}: measured {measured:.4f}, planted {row.planted_rate:.4f}"
        )
