"""The pipeline runner: order, bookkeeping, failure isolation, and the daily KPI stage."""

from __future__ import annotations

import pytest

from ccrm_core.foundation import pipeline, store


def _load_tiny(con) -> None:
    con.execute(
        """
        INSERT INTO src_customers (source_system, source_id, first_name, last_name, email)
        VALUES ('ecommerce', 'E1', 'Ann', 'Lee', 'ann@example.com'),
               ('ecommerce', 'E2', 'Bob', 'Ray', 'bob@example.com'),
               ('loyalty', 'L1', 'Cy', 'Moe', 'cy@example.com');
        INSERT INTO orders VALUES
            ('o1', '2025-01-01 09:00', 'ecommerce', 'E1', 10.0, 'web', 'home'),
            ('o2', '2025-01-01 12:00', 'ecommerce', 'E1', 20.0, 'web', 'home'),
            ('o3', '2025-01-01 13:00', 'ecommerce', 'E2', 5.0, 'app', 'beauty'),
            ('o4', '2025-01-02 10:00', 'ecommerce', 'E2', 7.5, 'web', 'beauty'),
            ('o5', '2025-01-02 11:00', 'loyalty', 'L1', 30.0, 'store', 'outdoor');
        """
    )


BASE = ["standardise", "identity", "daily_kpis"]


@pytest.fixture()
def con(tmp_path):
    c = store.connect_writer(tmp_path / "p.duckdb")
    _load_tiny(c)
    yield c
    c.close()


def test_daily_kpis_by_hand(con):
    results = pipeline.build(con, stages=BASE)
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    rows = con.execute(
        "SELECT CAST(date AS VARCHAR), channel, source_system, orders, revenue, buyers, new_customers "
        "FROM mart_daily_kpis ORDER BY ALL"
    ).fetchall()
    assert rows == [
        # day 1: Ann bought twice on web (1 buyer, new), Bob once on app (new)
        ("2025-01-01", "app", "ecommerce", 1, 5.0, 1, 1),
        ("2025-01-01", "web", "ecommerce", 2, 30.0, 1, 1),
        # day 2: Bob again on web (not new), Cy in store (new)
        ("2025-01-02", "store", "loyalty", 1, 30.0, 1, 1),
        ("2025-01-02", "web", "ecommerce", 1, 7.5, 1, 0),
    ]


def test_runs_are_recorded(con):
    pipeline.build(con, stages=BASE)
    pipeline.build(con, stages=["daily_kpis"])
    runs = con.execute(
        "SELECT run_id, stage, status, rows FROM pipeline_runs ORDER BY run_id, stage"
    ).fetchall()
    assert runs == [
        (1, "daily_kpis", "ok", 4),
        (1, "identity", "ok", 3),
        (1, "standardise", "ok", 3),
        (2, "daily_kpis", "ok", 4),
    ]
    last = pipeline.last_build(con)
    assert last["stage"].tolist() == ["daily_kpis"] and last["seconds"].iloc[0] >= 0


def test_a_failing_stage_keeps_every_previous_output(con, monkeypatch):
    pipeline.build(con, stages=BASE)
    before = con.execute("SELECT * FROM mart_daily_kpis ORDER BY ALL").fetchall()
    before_map = con.execute("SELECT * FROM identity_map ORDER BY ALL").fetchall()

    def broken(cur, ctx):
        # writes half its output, then fails: the runner must roll the half back
        cur.execute("CREATE OR REPLACE TABLE mart_daily_kpis AS SELECT 1 AS broken")
        raise ValueError("boom in the middle")

    class BrokenStage(pipeline.Stage):
        def function(self):
            return broken

    stages = tuple(
        BrokenStage(s.name, s.target, s.description) if s.name == "daily_kpis" else s
        for s in pipeline.STAGES
    )
    monkeypatch.setattr(pipeline, "STAGES", stages)
    con.execute("INSERT INTO src_customers (source_system, source_id) VALUES ('loyalty', 'L2')")
    results = pipeline.build(con)
    status = {r.stage: r.status for r in results}
    order = pipeline.stage_names()
    broken_at = order.index("daily_kpis")
    assert all(status[name] == "ok" for name in order[:broken_at])
    assert status["daily_kpis"] == "failed"
    assert all(status[name] == "skipped" for name in order[broken_at + 1 :])
    assert "boom in the middle" in next(r.error for r in results if r.stage == "daily_kpis")
    assert con.execute("SELECT * FROM mart_daily_kpis ORDER BY ALL").fetchall() == before
    # identity ran fine and committed its new record
    assert len(con.execute("SELECT * FROM identity_map").fetchall()) == len(before_map) + 1
    recorded = con.execute(
        "SELECT status, error FROM pipeline_runs WHERE stage = 'daily_kpis' ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    assert recorded[0] == "failed" and "boom" in recorded[1]


def test_unknown_stage_is_refused(con):
    with pytest.raises(pipeline.UnknownStageError, match="unknown stage nope; choose from"):
        pipeline.build(con, stages=["nope"])


def test_build_needed(con):
    assert pipeline.build_needed(con)
    pipeline.build(con)
    assert not pipeline.build_needed(con)
    con.execute(
        "INSERT INTO ingest_log VALUES (9, 'a.csv', 'orders', now(), now() + INTERVAL 1 MINUTE, "
        "1, 1, 0, 'loaded', '')"
    )
    assert pipeline.build_needed(con)
    assert set(pipeline.stale_stages(con).values()) == {"data was loaded after it last ran"}


def test_a_build_that_stopped_halfway_is_not_up_to_date(con):
    pipeline.build(con)
    assert not pipeline.build_needed(con)
    # a build that ran its first stages only (what a kill leaves): later stages read old outputs
    pipeline.build(con, stages=BASE)
    stale = pipeline.stale_stages(con)
    assert "standardise" not in stale and "identity" not in stale and "daily_kpis" not in stale
    assert stale["hygiene"] == "an earlier stage ran again after it"
    assert stale["nba"] == "an earlier stage ran again after it"
    pipeline.build(con)
    assert not pipeline.build_needed(con)
    # the last stage alone is fine: nothing after it reads its outputs
    pipeline.build(con, stages=["nba"])
    assert pipeline.stale_stages(con) == {}


def test_a_failed_stage_makes_the_build_needed(con, monkeypatch):
    pipeline.build(con)

    def broken(cur, ctx):
        raise ValueError("boom")

    class BrokenStage(pipeline.Stage):
        def function(self):
            return broken

    good = pipeline.STAGES
    monkeypatch.setattr(
        pipeline,
        "STAGES",
        tuple(
            BrokenStage(s.name, s.target, s.description) if s.name == "value" else s for s in good
        ),
    )
    pipeline.build(con)
    stale = pipeline.stale_stages(con)
    assert stale["value"] == "its last run failed"
    assert stale["segments"] == "its last run skipped"
    assert "identity" not in stale  # it ran fine after everything before it
    monkeypatch.setattr(pipeline, "STAGES", good)
    pipeline.build(con)
    assert not pipeline.build_needed(con)


def test_every_stage_builds_on_an_empty_database_with_typed_outputs(tmp_path):
    """A new database (nothing ingested yet) builds; tables of ids and names are text even
    with no rows (a DuckDB NULL- or DOUBLE-typed customer_id broke the search index)."""
    con = store.connect_writer(tmp_path / "empty.duckdb")
    results = pipeline.build(con)
    assert [(r.stage, r.status) for r in results] == [(s.name, "ok") for s in pipeline.STAGES]
    types = dict(
        con.execute(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE column_name IN ('customer_id', 'email', 'first_name')"
            "  AND table_name IN ('customers', 'identity_map', 'std_customers')"
        ).fetchall()
    )
    assert types == {
        "customers.customer_id": "VARCHAR",
        "customers.email": "VARCHAR",
        "customers.first_name": "VARCHAR",
        "identity_map.customer_id": "VARCHAR",
        "std_customers.email": "VARCHAR",
        "std_customers.first_name": "VARCHAR",
    }
    con.close()
