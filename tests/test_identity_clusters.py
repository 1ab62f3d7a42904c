"""Explainable clusters and a steward's overrides: constrained clustering and graph figures by
hand, decisions stored, audited and applied on every rebuild with stable ids, the command line
and the Data Hygiene page."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
import streamlit as st
from conftest import page_file
from streamlit.testing.v1 import AppTest
from test_identity import _build, _tiny_db, records_frame

from ccrm_core import cli
from ccrm_core.foundation import access, store
from ccrm_core.foundation.access import AccessDenied, User
from ccrm_core.librarian import identity
from ccrm_core.librarian.identity import clusters

ADMIN = User(email="steward@example.com", name="Steward", role="admin")
ANALYST = User(email="analyst@example.com", name="Analyst", role="analyst")
MARKETER = User(email="marketer@example.com", name="Marketer", role="marketer")


def _links(rows: list[tuple[int, int, float, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["uid_l", "uid_r", "match_probability", "rank"])
    return frame.astype({"uid_l": np.int64, "uid_r": np.int64})


def _pairs(rows: list[tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["uid_l", "uid_r"], dtype=np.int64)


NO_SPLITS = _pairs([])


# --- clustering with constraints, by hand -------------------------------------------------------


def test_a_split_drops_the_weakest_link_of_the_chain():
    # 0 -.99- 1 -.96- 2 -.999- 3, and 4 = 5 by email
    links = _links([(0, 1, 0.99, 1), (1, 2, 0.96, 1), (2, 3, 0.999, 1), (4, 5, 1.0, 2)])
    labels, kept, refused = clusters.cluster_with_overrides(6, links, NO_SPLITS)
    assert list(labels) == [0, 0, 0, 0, 4, 4]
    labels, kept, refused = clusters.cluster_with_overrides(6, links, _pairs([(0, 3)]))
    assert list(labels) == [0, 0, 2, 2, 4, 4]
    assert (1, 2) not in set(zip(kept["uid_l"], kept["uid_r"], strict=True))
    assert refused == []


def test_manual_links_come_first_and_one_that_breaks_a_split_is_refused():
    links = _links([(0, 1, 1.0, 3), (1, 2, 1.0, 3), (2, 3, 0.97, 1)])
    labels, _, refused = clusters.cluster_with_overrides(4, links, _pairs([(0, 2)]))
    assert list(labels) == [0, 0, 2, 2]
    assert refused == [(1, 2)]


def test_link_groups_make_linking_one_to_one_strongest_first():
    # records 0 and 1 are one deduplicated set, 2 another: 2 takes its better match (1)
    links = _links([(0, 2, 0.97, 1), (1, 2, 0.99, 1)])
    groups = np.array([1, 1, 2])
    labels, kept, _ = clusters.cluster_with_overrides(3, links, NO_SPLITS, groups)
    assert list(labels) == [0, 1, 1]
    assert len(kept) == 1 and kept.iloc[0]["uid_l"] == 1


def test_cluster_figures_by_hand():
    # cluster 0: chain 0 -.99- 1 -.96- 2 (0-2 not linked); 3 alone;
    # cluster 4: records 4, 5, 6 share an email (star links 4-5, 4-6; 5-6 shares the key too)
    records = pd.DataFrame(
        {
            "uid": np.arange(7, dtype=np.int64),
            "link_group": np.zeros(7, dtype=np.int64),
            "email_key": [None, None, None, None, "a@x.com", "a@x.com", "a@x.com"],
            "phone": [None] * 7,
            "last_name": ["doe"] * 7,
        }
    )
    kept = _links([(0, 1, 0.99, 1), (1, 2, 0.96, 1), (4, 5, 1.0, 2), (4, 6, 1.0, 2)])
    labels = clusters.components(7, kept["uid_l"].to_numpy(), kept["uid_r"].to_numpy())
    con = duckdb.connect()
    try:
        figures = clusters.cluster_figures(con, records, labels, kept, NO_SPLITS)
    finally:
        con.close()
    by = figures.set_index("cluster")
    assert list(by.index) == [0, 4]  # single records have no figures
    assert by.loc[0, "size"] == 3 and by.loc[0, "links"] == 2
    assert by.loc[0, "density"] == pytest.approx(2 / 3)
    assert by.loc[0, "weakest_link"] == 0.96
    assert (by.loc[0, "weakest_uid_l"], by.loc[0, "weakest_uid_r"]) == (1, 2)
    assert by.loc[4, "links"] == 3 and by.loc[4, "density"] == 1.0
    assert by.loc[4, "weakest_link"] == 1.0


# --- decisions through the build ------------------------------------------------------------------


@pytest.fixture()
def tiny(tmp_path):
    con = _tiny_db(tmp_path / "tiny.duckdb", records_frame())
    _build(con)
    yield con
    con.close()


def _ids(con) -> dict[str, str]:
    return dict(
        con.execute(
            "SELECT source_id, customer_id FROM identity_map WHERE source_id IS NOT NULL"
        ).fetchall()
    )


def _methods(con) -> dict[str, str]:
    return dict(
        con.execute(
            "SELECT source_id, method FROM identity_map WHERE source_id IS NOT NULL"
        ).fetchall()
    )


def _run(con) -> dict:
    return identity.latest_run(con)


def test_split_link_and_clear_apply_on_rebuild_with_stable_ids(tiny):
    before = _ids(tiny)
    assert before["L2"] == before["E3"]  # the two Alice Walker records, probabilistic
    alice = before["L2"]

    identity.record_override(
        tiny, ADMIN, "split", ("loyalty", "L2"), ("ecommerce", "E3"), note="two Alices"
    )
    assert identity.current_overrides(tiny)["decision"].tolist() == ["split"]
    _build(tiny)
    split = _ids(tiny)
    assert split["L2"] != split["E3"]
    assert alice in (split["L2"], split["E3"])  # one part keeps the id ...
    issued = max(int(v[1:]) for v in before.values())
    new_id = ({split["L2"], split["E3"]} - {alice}).pop()
    assert new_id == identity.format_customer_id(issued + 1)  # ... the other gets a new one
    assert {k: v for k, v in split.items() if k not in ("L2", "E3")} == {
        k: v for k, v in before.items() if k not in ("L2", "E3")
    }
    assert _run(tiny)["overrides_applied"] == 1

    # the other Alice (C2, different birth date and address) is the same person after all
    identity.record_override(tiny, ANALYST, "link", ("call_center", "C2"), ("loyalty", "L2"))
    _build(tiny)
    linked = _ids(tiny)
    assert linked["C2"] == linked["L2"] != linked["E3"]
    assert _methods(tiny)["C2"] == "manual"
    assert _run(tiny)["overrides_applied"] == 2

    # undo the split: the matcher's link comes back, the manual link stays
    identity.record_override(tiny, ADMIN, "clear", ("ecommerce", "E3"), ("loyalty", "L2"))
    _build(tiny)
    cleared = _ids(tiny)
    assert cleared["E3"] == cleared["L2"] == cleared["C2"]
    assert cleared["E3"] == linked["C2"]  # the id that held most of these records stays
    assert identity.current_overrides(tiny)["decision"].tolist() == ["link"]
    figures = tiny.execute(
        "SELECT records, weakest_link FROM identity_clusters WHERE customer_id = ?",
        [cleared["E3"]],
    ).fetchall()
    assert figures[0][0] == 3 and 0.95 <= figures[0][1] < 1.0

    audit_rows = tiny.execute(
        "SELECT actor, action, target, status FROM audit_log "
        "WHERE action = 'override_identity' ORDER BY audit_id"
    ).fetchall()
    assert audit_rows == [
        ("steward@example.com", "override_identity",
         "split ecommerce:E3 + loyalty:L2", "ok"),
        ("analyst@example.com", "override_identity",
         "link call_center:C2 + loyalty:L2", "ok"),
        ("steward@example.com", "override_identity",
         "clear ecommerce:E3 + loyalty:L2", "ok"),
    ]  # fmt: skip


def test_decisions_are_checked_and_refusals_audited(tiny):
    with pytest.raises(AccessDenied):
        identity.record_override(tiny, MARKETER, "split", ("loyalty", "L2"), ("ecommerce", "E3"))
    refused = tiny.execute(
        "SELECT status FROM audit_log WHERE action = 'override_identity'"
    ).fetchall()
    assert refused == [("refused",)]
    with pytest.raises(ValueError, match="no customer record loyalty:L99"):
        identity.record_override(tiny, ADMIN, "split", ("loyalty", "L99"), ("ecommerce", "E3"))
    with pytest.raises(ValueError, match="two different records"):
        identity.record_override(tiny, ADMIN, "link", ("loyalty", "L2"), ("loyalty", "L2"))
    with pytest.raises(ValueError, match="choose one of"):
        identity.record_override(tiny, ADMIN, "merge", ("loyalty", "L2"), ("ecommerce", "E3"))
    assert identity.current_overrides(tiny).empty
    assert access.allowed(ANALYST, "override_identity")
    assert not access.allowed(User("exec@example.com", "E", "executive"), "override_identity")


def test_a_decision_about_a_removed_record_is_skipped(tiny):
    identity.record_override(tiny, ADMIN, "split", ("loyalty", "L2"), ("ecommerce", "E3"))
    tiny.execute("DELETE FROM src_customers WHERE source_id = 'E3'")
    _build(tiny)
    run = _run(tiny)
    assert (run["overrides_applied"], run["overrides_skipped"]) == (0, 1)


def test_riskiest_clusters_order_and_records(tiny):
    risky = identity.riskiest_clusters(tiny)
    # jane (email), bob (phone + last name), alice (probabilistic): alice is the one to review
    assert len(risky) == 3
    ids = _ids(tiny)
    assert risky.iloc[0]["customer_id"] == ids["L2"]
    assert risky.iloc[0]["weakest_link"] < 1.0
    assert {risky.iloc[0]["weakest_source_id_l"], risky.iloc[0]["weakest_source_id_r"]} == {
        "L2",
        "E3",
    }
    assert (risky.iloc[1:]["weakest_link"] == 1.0).all()
    assert (risky["density"] == 1.0).all()
    members = identity.customer_records(tiny, ids["L2"])
    assert sorted(members["source_id"]) == ["E3", "L2"]


def test_training_notes_of_a_small_record_set(tiny):
    notes = identity.training_notes(_run(tiny))
    assert any("not trained: fewer than 2,000 records" in n for n in notes)


# --- command line ----------------------------------------------------------------------------------


def test_cli_records_and_lists_decisions(tmp_path, capsys):
    db = tmp_path / "tiny.duckdb"
    con = _tiny_db(db, records_frame())
    _build(con)
    con.close()
    code = cli.main(
        ["identity", "override", "split", "loyalty:L2", "ecommerce:E3", "--db", str(db),
         "--note", "two people", "--as", "steward@example.com"]
    )  # fmt: skip
    assert code == 0
    assert "applied at the next" in capsys.readouterr().out
    assert cli.main(["identity", "overrides", "--db", str(db)]) == 0
    listing = capsys.readouterr().out
    assert "split  ecommerce:E3 + loyalty:L2  steward@example.com" in listing
    assert "(two people)" in listing
    assert cli.main(["identity", "override", "link", "L2", "ecommerce:E3", "--db", str(db)]) == 2
    assert "SOURCE_SYSTEM:SOURCE_ID" in capsys.readouterr().err
    con = store.connect_writer(db)
    try:
        _build(con)
        ids = _ids(con)
        assert ids["L2"] != ids["E3"]
        assert con.execute(
            "SELECT via, status FROM audit_log WHERE action = 'override_identity'"
        ).fetchall() == [("cli", "ok")]
    finally:
        con.close()


# --- the Data Hygiene page -------------------------------------------------------------------------


def test_page_lists_clusters_and_saves_a_decision(tmp_path, monkeypatch):
    db = tmp_path / "tiny.duckdb"
    con = _tiny_db(db, records_frame())
    _build(con)
    ids = _ids(con)
    con.close()
    st.cache_data.clear()
    monkeypatch.setenv("CCRM_DB", str(db))
    at = AppTest.from_file(page_file("data_hygiene"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="review_customer").value == ids["L2"]  # riskiest first
    tables = [df.value for df in at.dataframe]
    review = next(t for t in tables if "weakest_link" in t.columns)
    assert review["customer_id"].tolist()[0] == ids["L2"] and len(review) == 3
    members = next(t for t in tables if "method" in t.columns and "source_id" in t.columns)
    assert sorted(members["source_id"]) == ["E3", "L2"]
    assert "Alice" not in " ".join(str(t) for t in tables)  # names masked
    assert at.text_input(key="override_first").value in ("ecommerce:E3", "loyalty:L2")
    at.text_input(key="override_first").set_value("ecommerce:E3")
    at.text_input(key="override_second").set_value("loyalty:L2")
    at.text_input(key="override_note").set_value("<b>two</b> people")
    at.button(key="override_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("saved" in s.value for s in at.success), [e.value for e in at.error]
    # the decision in force is listed (the app holds the database open: read what it shows)
    decisions = at.dataframe[-1].value
    assert decisions[["source_id_l", "source_id_r", "note"]].values.tolist() == [
        ["E3", "L2", "<b>two</b> people"]  # stored as typed, shown as data, never as markup
    ]
    assert decisions["decision"].tolist() == ["Different people (force apart)"]
