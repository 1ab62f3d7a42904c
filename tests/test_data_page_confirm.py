"""The Data page's confirm steps and what it shows of uploads: a load that would replace loaded
rows says how many and waits for "Replace N rows" (Cancel changes nothing), Rebuild waits for
"Rebuild now", the upload box states the size limit, and rejected values are shown as the file
held them to admins (audited) and masked for others. A small hand-made database: cheap."""

from __future__ import annotations

import pytest
from conftest import page_file
from streamlit.testing.v1 import AppTest

from ccrm_core.foundation import access, ingest, store

PAGE = page_file("data")
CAMPAIGNS = "campaign_id,name,channel\n"


def _campaigns(ids: list[str], name: str = "Spring") -> bytes:
    return (CAMPAIGNS + "".join(f"{i},{name} {i},email\n" for i in ids)).encode()


@pytest.fixture()
def small_db(tmp_path, monkeypatch):
    """Three campaigns loaded (C1, C2, C3), nothing built."""
    path = tmp_path / "small.duckdb"
    csv = tmp_path / "campaigns.csv"
    csv.write_bytes(_campaigns(["C1", "C2", "C3"]))
    con = store.connect_writer(path)
    try:
        [report] = ingest.ingest_files(con, [csv])
        assert report.ok, report.message
    finally:
        con.close()
    monkeypatch.setenv("CCRM_DB", str(path))
    return path


def _query(path, sql: str) -> list[tuple]:
    con = store.connect_writer(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _texts(elements) -> str:
    return " ".join(str(e.value) for e in elements).replace("\\", "")


def test_replacements_count_stored_rows_replaced_and_new_rows_without_writing(small_db, tmp_path):
    upload = tmp_path / "campaigns_2.csv"
    upload.write_bytes(_campaigns(["C2", "C3", "C4"], "Summer"))
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,ts,source_system,source_id,revenue\no1,2024-01-01,web,c1,5\n")
    con = store.connect_writer(small_db)
    try:
        counted, new_table = ingest.replacements(con, [upload, orders])
        assert (counted.table, counted.replaced, counted.added, counted.refused) == (
            "campaigns",
            2,
            1,
            "",
        )
        assert counted.sentence() == (
            f"{upload} replaces 2 existing rows of campaigns (and adds 1 new)."
        )
        # a table holding no rows: nothing replaced, the file is not read to count it
        assert (new_table.table, new_table.replaced, new_table.added) == ("orders", 0, None)
        refused = tmp_path / "campaigns_bad.csv"
        refused.write_text("campaign_id,name\nC1,x\n")  # required column channel missing
        [why] = ingest.replacements(con, [refused])
        assert why.replaced == 0 and "channel" in why.refused
        # nothing was written: same rows, same values, no ingest logged
        assert con.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 3
        assert (
            con.execute("SELECT count(*) FROM campaigns WHERE name LIKE 'Summer%'").fetchone()[0]
            == 0
        )
        assert con.execute("SELECT count(*) FROM ingest_log").fetchone()[0] == 1
    finally:
        con.close()


def test_an_upload_that_replaces_rows_asks_first_and_cancel_changes_nothing(small_db):
    at = _page()
    at.file_uploader[0].set_value(
        [("campaigns_2.csv", _campaigns(["C2", "C3", "C4"], "Summer"), "text/csv")]
    )
    at.run()
    _button(at, "Load files").click().run()
    assert not at.exception, at.exception
    assert "campaigns_2.csv replaces 2 existing rows of campaigns (and adds 1 new)." in _texts(
        at.warning
    )
    assert _query(small_db, "SELECT count(*) FROM campaigns") == [(3,)]
    _button(at, "Cancel").click().run()
    assert "Upload cancelled: nothing was loaded." in _texts(at.info)
    assert not [b for b in at.button if b.label == "Replace 2 rows"]
    assert _query(small_db, "SELECT count(*) FROM campaigns WHERE name LIKE 'Summer%'") == [(0,)]

    _button(at, "Load files").click().run()
    _button(at, "Replace 2 rows").click().run()
    assert not at.exception, at.exception
    assert "3 rows loaded (2 replaced)" in _texts(at.success)
    assert _query(small_db, "SELECT count(*) FROM campaigns") == [(4,)]
    assert _query(small_db, "SELECT count(*) FROM campaigns WHERE name LIKE 'Summer%'") == [(3,)]


def test_an_upload_that_only_adds_rows_loads_at_once(small_db):
    at = _page()
    at.file_uploader[0].set_value([("campaigns_3.csv", _campaigns(["C7", "C8"]), "text/csv")])
    at.run()
    _button(at, "Load files").click().run()
    assert not at.exception, at.exception
    assert "2 rows loaded (0 replaced)" in _texts(at.success)
    assert not [b for b in at.button if b.label.startswith("Replace")]
    assert _query(small_db, "SELECT count(*) FROM campaigns") == [(5,)]


def test_rebuild_asks_first_and_cancel_builds_nothing(small_db):
    at = _page()
    next(s for s in at.selectbox if s.label == "Stages").select("standardise").run()
    _button(at, "Rebuild").click().run()
    assert not at.exception, at.exception
    assert "Rebuild the stage standardise: standardised copies of contact fields" in _texts(
        at.warning
    )
    assert _query(small_db, "SELECT count(*) FROM pipeline_runs") == [(0,)]
    _button(at, "Cancel").click().run()
    assert "Rebuild cancelled: nothing was built." in _texts(at.info)
    assert not [b for b in at.button if b.label == "Rebuild now"]
    assert _query(small_db, "SELECT count(*) FROM pipeline_runs") == [(0,)]

    _button(at, "Rebuild").click().run()
    _button(at, "Rebuild now").click().run()
    assert not at.exception, at.exception
    assert _query(small_db, "SELECT stage, status FROM pipeline_runs") == [("standardise", "ok")]


def test_the_upload_box_states_the_app_limit(small_db, monkeypatch):
    monkeypatch.setenv("CCRM_MAX_UPLOAD_MB", "0.5")
    at = _page()
    assert "up to 0.5 MB each" in _texts(at.caption)
    assert at.file_uploader[0].proto.max_upload_size_mb == 1  # the widget's own check
    monkeypatch.delenv("CCRM_MAX_UPLOAD_MB")
    assert "up to 200 MB each" in _texts(_page().caption)  # server.maxUploadSize


@pytest.fixture()
def rejected_birth_date(small_db, tmp_path):
    csv = tmp_path / "src_customers.csv"
    csv.write_text(
        "source_system,source_id,first_name,birth_date\n"
        "web,U1,Ann,1990-01-01\nweb,U2,Zed,31/12/1990\n"
    )
    con = store.connect_writer(small_db)
    try:
        [report] = ingest.ingest_files(con, [csv], max_reject_rate=1.0)
    finally:
        con.close()
    assert report.rows_rejected == 1
    return small_db


def _rejects(at: AppTest):
    return next(d.value for d in at.dataframe if "reason" in d.value.columns)


def test_admins_see_the_rejected_value_and_the_reveal_is_audited(rejected_birth_date):
    at = _page()
    assert _rejects(at)["value"].tolist() == ["31/12/1990"]
    assert "personal data included" in _texts(at.caption)
    log = _query(rejected_birth_date, "SELECT action, target, rows FROM audit_log")
    assert ("reveal_pii", "rejected values of ingest 2", 1) in log


def test_roles_that_may_not_reveal_see_rejected_personal_values_masked(
    rejected_birth_date, monkeypatch
):
    allowed = access.allowed
    monkeypatch.setattr(
        access, "allowed", lambda user, action: action != "reveal_pii" and allowed(user, action)
    )
    at = _page()
    assert _rejects(at)["value"].tolist() == ["***"]
    assert "masked for your role" in _texts(at.caption)
    assert _query(
        rejected_birth_date, "SELECT count(*) FROM audit_log WHERE action = 'reveal_pii'"
    ) == [(0,)]
