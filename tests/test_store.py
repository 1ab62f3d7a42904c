"""The store: schema creation, versions and migrations, and the open functions."""

from __future__ import annotations

import threading
import time

import duckdb
import pytest

from ccrm_core.foundation import store


def test_writer_creates_every_contract_table_with_its_columns(tmp_path):
    con = store.connect_writer(tmp_path / "x.duckdb")
    for table in store.TABLES.values():
        cols = con.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [table.name],
        ).fetchall()
        assert [c[0] for c in cols] == table.column_names
        for name, dtype, nullable in cols:
            spec = table.column(name)
            assert dtype == spec.type, (table.name, name)
            # required columns are NOT NULL in the database itself
            assert (nullable == "NO") == spec.required, (table.name, name)
    assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == (
        store.SCHEMA_VERSION
    )


def test_not_null_is_enforced_by_the_database(tmp_path):
    con = store.connect_writer(tmp_path / "x.duckdb")
    with pytest.raises(duckdb.ConstraintException):
        con.execute(
            "INSERT INTO orders (order_id, ts, source_system, source_id) VALUES ('o1', now(), 'ec', '1')"
        )
    with pytest.raises(duckdb.ConstraintException):
        # an event must name a known record or an anonymous id
        con.execute(
            "INSERT INTO events (event_id, ts, channel, event_type) VALUES ('e', now(), 'web', 'visit')"
        )


def test_migrate_is_idempotent_and_applies_new_versions(tmp_path, monkeypatch):
    path = tmp_path / "x.duckdb"
    con = store.connect_writer(path)
    con.execute("INSERT INTO campaigns VALUES ('c1', 'Spring', 'email', '10% off', NULL, NULL)")
    con.close()
    nxt = store.SCHEMA_VERSION + 1
    monkeypatch.setattr(store, "SCHEMA_VERSION", nxt)
    monkeypatch.setattr(
        store,
        "MIGRATIONS",
        {**store.MIGRATIONS, nxt: "ALTER TABLE campaigns ADD COLUMN budget DOUBLE"},
    )
    con = store.connect_writer(path)
    assert con.execute("SELECT max(version), count(*) FROM schema_version").fetchone() == (nxt, nxt)
    assert con.execute("SELECT name, budget FROM campaigns").fetchall() == [("Spring", None)]
    assert store.migrate(con) == nxt  # nothing left to apply
    assert con.execute("SELECT count(*) FROM schema_version").fetchone()[0] == nxt


def test_a_newer_database_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "x.duckdb"
    store.connect_writer(path).close()
    monkeypatch.setattr(store, "SCHEMA_VERSION", 0)
    with pytest.raises(RuntimeError, match="newer than this ccrm"):
        store.connect_writer(path)


def test_reader_refuses_a_missing_file_with_a_clear_message(tmp_path):
    with pytest.raises(store.DatabaseMissingError, match="does not exist; create it"):
        store.connect_reader(tmp_path / "nope.duckdb")


def test_summary_counts_rows_and_dates(tmp_path):
    con = store.connect_writer(tmp_path / "x.duckdb")
    con.execute(
        "INSERT INTO orders VALUES ('o1', '2025-01-02 10:00', 'ec', '1', 10, 'web', 'home'),"
        "('o2', '2025-03-04 11:00', 'ec', '2', 5, 'app', 'home')"
    )
    rows = {r["table"]: r for r in store.table_summary(con)}
    assert rows["orders"]["rows"] == 2
    assert str(rows["orders"]["first"]) == "2025-01-02 10:00:00"
    assert str(rows["orders"]["last"]) == "2025-03-04 11:00:00"
    assert rows["events"]["rows"] == 0


def test_data_version_changes_with_builds_and_ingests(tmp_path):
    con = store.connect_writer(tmp_path / "x.duckdb")
    v0 = store.data_version(con)
    con.execute("INSERT INTO pipeline_runs VALUES (1, 'identity', now(), now(), 1, 'ok', NULL)")
    v1 = store.data_version(con)
    con.execute(
        "INSERT INTO ingest_log VALUES (1, 'a.csv', 'orders', now(), now(), 1, 1, 0, 'loaded', '')"
    )
    v2 = store.data_version(con)
    assert len({v0, v1, v2}) == 3


def test_a_commit_waits_for_reads_and_new_reads_wait_for_a_commit(tmp_path):
    """The commit gate: a commit starts only when no read is in progress, and a read asked for
    while a commit waits or runs starts after it (DuckDB shows a commit half applied)."""
    con = store.connect_writer(tmp_path / "x.duckdb")
    order: list[str] = []
    reading = threading.Event()
    release = threading.Event()

    def reader() -> None:
        with store.reading():
            order.append("read 1 starts")
            reading.set()
            release.wait(5)
            order.append("read 1 ends")

    def writer() -> None:
        cur = con.cursor()
        with store.transaction(cur):
            cur.execute("INSERT INTO schema_version VALUES (99, current_timestamp)")
            order.append("commit asked")
        order.append("committed")

    def late_reader() -> None:
        with store.reading():
            order.append("read 2 starts")

    threads = [threading.Thread(target=reader)]
    threads[0].start()
    reading.wait(5)
    threads.append(threading.Thread(target=writer))
    threads[1].start()
    while "commit asked" not in order:
        time.sleep(0.01)
    time.sleep(0.1)  # the commit is waiting for read 1 now
    threads.append(threading.Thread(target=late_reader))
    threads[2].start()
    time.sleep(0.1)
    assert order == ["read 1 starts", "commit asked"]  # neither the commit nor read 2 went on
    release.set()
    for t in threads:
        t.join(5)
    assert order == ["read 1 starts", "commit asked", "read 1 ends", "committed", "read 2 starts"]
    assert con.execute("SELECT count(*) FROM schema_version WHERE version = 99").fetchall() == [
        (1,)
    ]


def test_a_commit_inside_a_read_is_refused_not_deadlocked(tmp_path):
    con = store.connect_writer(tmp_path / "x.duckdb")
    with store.reading(), store.reading():  # reads nest
        with pytest.raises(RuntimeError, match="outside it"):
            with store.transaction(con):
                con.execute("INSERT INTO schema_version VALUES (99, current_timestamp)")
    # rolled back, and the gate is free again
    with store.transaction(con):
        con.execute("INSERT INTO schema_version VALUES (98, current_timestamp)")
    versions = con.execute("SELECT version FROM schema_version WHERE version > 90").fetchall()
    assert versions == [(98,)]


def test_a_failing_transaction_rolls_back_everything(tmp_path):
    con = store.connect_writer(tmp_path / "x.duckdb")
    with pytest.raises(duckdb.ConstraintException):
        with store.transaction(con):
            con.execute("INSERT INTO schema_version VALUES (97, current_timestamp)")
            con.execute("INSERT INTO schema_version VALUES (NULL, NULL)")
    assert con.execute("SELECT count(*) FROM schema_version WHERE version = 97").fetchall() == [
        (0,)
    ]
