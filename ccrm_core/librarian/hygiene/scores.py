"""Reading hygiene scores kept per build: runs, check rows, the scores (formula in the package
docstring), score trend, field heatmap data and the check table of the Data Hygiene page.
Scores are 0-100, higher is cleaner."""

from __future__ import annotations

import duckdb
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.librarian.hygiene.checks import ALL_SOURCES, DIMENSIONS


def has_checks(con: duckdb.DuckDBPyConnection) -> bool:
    if not store.table_exists(con, "hygiene_checks"):
        return False
    return bool(con.execute("SELECT count(*) FROM hygiene_checks").fetchall()[0][0])


def runs(con: duckdb.DuckDBPyConnection) -> list[int]:
    """run_ids with hygiene results, oldest first."""
    if not store.table_exists(con, "hygiene_checks"):
        return []
    return [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT run_id FROM hygiene_checks ORDER BY run_id"
        ).fetchall()
    ]


def score_checks(checks: pd.DataFrame) -> dict:
    """Scores from check rows of one run (the formula in the package docstring):
    dict(overall, by_dimension {dimension: score}, by_source {source_system: score})."""
    pooled = checks[(checks["source_system"] == ALL_SOURCES) & checks["score"].notna()]
    by_dimension = pooled.groupby("dimension")["score"].mean()
    by_dimension = {d: float(by_dimension[d]) for d in DIMENSIONS if d in by_dimension.index}
    overall = sum(by_dimension.values()) / len(by_dimension) if by_dimension else None
    by_source = {}
    per_source = checks[
        ~checks["source_system"].isin([ALL_SOURCES, "(none)"]) & checks["score"].notna()
    ]
    for source, rows in per_source.groupby("source_system"):
        dims = rows.groupby("dimension")["score"].mean()
        by_source[source] = float(dims.mean())
    return {"overall": overall, "by_dimension": by_dimension, "by_source": by_source}


def checks_for_run(con: duckdb.DuckDBPyConnection, run_id: int) -> pd.DataFrame:
    return con.execute(
        "SELECT * FROM hygiene_checks WHERE run_id = ? ORDER BY check_id, source_system",
        [run_id],
    ).df()


def latest_scores(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The scores of the latest build with hygiene results, and of the one before:
    dict(run_id, checked_at, overall, by_dimension, by_source, previous) where `previous` is the
    same dict (without `previous`) for the build before, or None. None without any results."""
    ids = runs(con)
    if not ids:
        return None

    def one(run_id: int) -> dict:
        checks = checks_for_run(con, run_id)
        out = score_checks(checks)
        out["run_id"] = run_id
        out["checked_at"] = checks["checked_at"].max()
        return out

    latest = one(ids[-1])
    latest["previous"] = one(ids[-2]) if len(ids) > 1 else None
    return latest


def score_trend(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per build and score: run_id, checked_at, series ('overall' or a dimension),
    score."""
    rows = []
    for run_id in runs(con):
        checks = checks_for_run(con, run_id)
        s = score_checks(checks)
        when = checks["checked_at"].max()
        rows.append(
            {"run_id": run_id, "checked_at": when, "series": "overall", "score": s["overall"]}
        )
        for dim, value in s["by_dimension"].items():
            rows.append({"run_id": run_id, "checked_at": when, "series": dim, "score": value})
    return pd.DataFrame(rows, columns=["run_id", "checked_at", "series", "score"])


def field_scores(checks: pd.DataFrame) -> pd.DataFrame:
    """Heatmap data: mean check score per table x field (all sources): table_name, column_name,
    score, checks."""
    pooled = checks[(checks["source_system"] == ALL_SOURCES) & checks["score"].notna()]
    return (
        pooled.groupby(["table_name", "column_name"], as_index=False)
        .agg(score=("score", "mean"), checks=("check_id", "count"))
        .sort_values(["table_name", "column_name"])
        .reset_index(drop=True)
    )


def check_table(checks: pd.DataFrame, previous: pd.DataFrame | None = None) -> pd.DataFrame:
    """The checks of one run over all sources, worst first, with the score change since the
    previous run: check_id, table_name, column_name, dimension, check_name, failed_rows,
    total_rows, score, change (points), description."""
    pooled = checks[checks["source_system"] == ALL_SOURCES].copy()
    if previous is not None and not previous.empty:
        before = previous[previous["source_system"] == ALL_SOURCES].set_index("check_id")["score"]
        pooled["change"] = pooled["score"] - pooled["check_id"].map(before)
    else:
        pooled["change"] = float("nan")
    cols = [
        "check_id",
        "table_name",
        "column_name",
        "dimension",
        "check_name",
        "failed_rows",
        "total_rows",
        "score",
        "change",
        "description",
    ]
    return pooled.sort_values(["score", "check_id"], na_position="last")[cols].reset_index(
        drop=True
    )
