"""Data hygiene: checks per table and field in five dimensions, kept per build, and a 0-100 score.

Dimensions and what fails a row:
- completeness: the field is NULL or blank.
- validity: the value is not valid (email syntax, phone number for its country, postal code for
  its country, dates in range, channel / event_type / status in the allowed sets, amounts >= 0).
- consistency: the raw value is not written in the standard form (email lower case, phone in
  E.164, names trimmed and capitalised); a record disagrees with its resolved customer's golden
  value (conflicting values across sources); a row points at a source record that does not
  exist.
- uniqueness: a natural key repeats; a source record is a duplicate of a person already held
  (every record of a resolved customer except its earliest one).
- recency: a record's `updated_at` is older than `hygiene.stale_days` (default 1095, three years) before the
  data end; a source system's newest event is older than `hygiene.silent_days` (default 7).

Scores (all 0-100, higher is cleaner):
    check score      s_c = 100 * (1 - failed_rows_c / total_rows_c)   (checks with rows only)
    dimension score  S_d = mean of s_c over the checks of dimension d
    overall score    S   = mean of S_d over the dimensions that have checks
    source score         the same overall formula over the rows of one source system
Each check counts equally inside its dimension and each dimension equally in the overall score,
so a rare but serious problem (a broken key) is not drowned by many clean fields.

`hygiene_checks` keeps every build (grain: run x check x source_system, with 'all' rows for the
whole table), so scores can be compared across builds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd
import plotly.graph_objects as go

from ccrm_core.foundation import audit, pipeline, privacy, store
from ccrm_core.foundation.access import User
from ccrm_core.foundation.pipeline import BuildContext

DIMENSIONS = ("completeness", "validity", "consistency", "uniqueness", "recency")
ALL_SOURCES = "all"
DEFAULT_STALE_DAYS = 1095
DEFAULT_SILENT_DAYS = 7

HYGIENE_CHECKS_SQL = """
CREATE TABLE IF NOT EXISTS hygiene_checks (
    run_id        BIGINT NOT NULL,     -- pipeline run (pipeline_runs.run_id)
    checked_at    TIMESTAMP NOT NULL,
    check_id      VARCHAR NOT NULL,    -- table.column.check
    table_name    VARCHAR NOT NULL,
    column_name   VARCHAR NOT NULL,    -- '*' for checks on the whole row
    dimension     VARCHAR NOT NULL,    -- completeness, validity, consistency, uniqueness, recency
    check_name    VARCHAR NOT NULL,
    source_system VARCHAR NOT NULL,    -- a source system, '(none)', or 'all' for every row
    failed_rows   BIGINT NOT NULL,
    total_rows    BIGINT NOT NULL,
    score         DOUBLE,              -- 100 * (1 - failed_rows / total_rows); NULL without rows
    description   VARCHAR
)
"""


@dataclass(frozen=True)
class Check:
    """One hygiene check: rows of `relation` where `applies` holds are counted; those where
    `failed` also holds fail. Both are SQL over the relation's columns (our own text only)."""

    table: str
    column: str
    dimension: str
    name: str
    relation: str
    failed: str
    applies: str = "TRUE"
    description: str = ""

    @property
    def check_id(self) -> str:
        return f"{self.table}.{self.column}.{self.name}"


# Relations the checks count rows in. Each has a `source_system` column (NULL where the table
# has none). Parameters: $as_of (DATE), $stale_days, $silent_days.
RELATIONS: dict[str, str] = {
    "customer_records": """
        SELECT s.*,
               d.first_name AS std_first_name, d.last_name AS std_last_name,
               d.email AS std_email, d.phone AS std_phone, d.postal_code AS std_postal_code,
               d.email_status, d.phone_status, d.postal_code_status, d.birth_date_status,
               d.created_at_status, d.updated_at_status, d.first_name_std_syntax,
               d.last_name_std_syntax, d.email_std_syntax, d.phone_std_syntax,
               d.birth_date AS std_birth_date,
               m.customer_id,
               c.first_name AS golden_first_name, c.last_name AS golden_last_name,
               c.email AS golden_email, c.phone AS golden_phone,
               c.birth_date AS golden_birth_date, c.source_records AS customer_records,
               count(*) OVER (PARTITION BY s.source_system, s.source_id) AS key_count,
               row_number() OVER (PARTITION BY s.source_system, s.source_id) AS key_rank,
               row_number() OVER (PARTITION BY m.customer_id
                                  ORDER BY s.created_at NULLS LAST, s.source_system, s.source_id)
                   AS person_rank
        FROM src_customers s
        LEFT JOIN std_customers d USING (source_system, source_id)
        LEFT JOIN (SELECT source_system, source_id, customer_id FROM identity_map
                   WHERE anonymous_id IS NULL) m USING (source_system, source_id)
        LEFT JOIN customers c ON c.customer_id = m.customer_id
    """,
    "events": """
        SELECT e.*, k.source_id IS NOT NULL AS record_known,
               count(*) OVER (PARTITION BY e.event_id) AS key_count,
               row_number() OVER (PARTITION BY e.event_id) AS key_rank
        FROM events e
        LEFT JOIN (SELECT DISTINCT source_system, source_id FROM src_customers) k
          ON k.source_system = e.source_system AND k.source_id = e.source_id
    """,
    "orders": """
        SELECT o.*, k.source_id IS NOT NULL AS record_known,
               count(*) OVER (PARTITION BY o.order_id) AS key_count,
               row_number() OVER (PARTITION BY o.order_id) AS key_rank
        FROM orders o
        LEFT JOIN (SELECT DISTINCT source_system, source_id FROM src_customers) k
          ON k.source_system = o.source_system AND k.source_id = o.source_id
    """,
    "consents": """
        SELECT c.*, k.source_id IS NOT NULL AS record_known
        FROM consents c
        LEFT JOIN (SELECT DISTINCT source_system, source_id FROM src_customers) k
          ON k.source_system = c.source_system AND k.source_id = c.source_id
    """,
    "spend": "SELECT NULL::VARCHAR AS source_system, * FROM spend",
    "campaigns": "SELECT NULL::VARCHAR AS source_system, * FROM campaigns",
    "sources": """
        SELECT source_system, max(ts) AS last_event,
               date_diff('day', CAST(max(ts) AS DATE), $as_of) AS days_since_last_event
        FROM events WHERE source_system IS NOT NULL GROUP BY source_system
    """,
}


def _blank(col: str) -> str:
    return f"({col} IS NULL OR trim(CAST({col} AS VARCHAR)) = '')"


def _in(col: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{col} IN ({quoted})"


def _build_checks() -> tuple[Check, ...]:
    cr = "customer_records"
    checks: list[Check] = []
    for col in (
        "first_name",
        "last_name",
        "email",
        "phone",
        "address_line",
        "city",
        "postal_code",
        "country",
        "birth_date",
    ):
        checks.append(
            Check(
                "src_customers",
                col,
                "completeness",
                "missing",
                cr,
                _blank(col),
                description=f"{col} is empty",
            )
        )
    checks += [
        Check(
            "src_customers",
            "email",
            "validity",
            "invalid_email",
            cr,
            "email_status = 'invalid'",
            f"NOT {_blank('email')}",
            "email fails syntax validation (email-validator)",
        ),
        Check(
            "src_customers",
            "phone",
            "validity",
            "invalid_phone",
            cr,
            "phone_status = 'invalid'",
            f"NOT {_blank('phone')}",
            "phone is not a valid number for the record's country",
        ),
        Check(
            "src_customers",
            "postal_code",
            "validity",
            "invalid_postal_code",
            cr,
            "postal_code_status = 'invalid'",
            f"NOT {_blank('postal_code')}",
            "postal code does not fit the country's format",
        ),
        Check(
            "src_customers",
            "birth_date",
            "validity",
            "future_date",
            cr,
            "birth_date > $as_of",
            "birth_date IS NOT NULL",
            "birth date after the data end",
        ),
        Check(
            "src_customers",
            "birth_date",
            "validity",
            "implausible_age",
            cr,
            "birth_date_status = 'invalid' AND birth_date <= $as_of",
            "birth_date IS NOT NULL",
            "birth date implies an age over 120 or under 13",
        ),
        Check(
            "src_customers",
            "created_at",
            "validity",
            "date_out_of_range",
            cr,
            "created_at_status = 'invalid'",
            "created_at IS NOT NULL",
            "created_at before 1990 or after the data end",
        ),
        Check(
            "src_customers",
            "updated_at",
            "validity",
            "date_out_of_range",
            cr,
            "updated_at_status = 'invalid'",
            "updated_at IS NOT NULL",
            "updated_at before 1990 or after the data end",
        ),
        Check(
            "src_customers",
            "email",
            "consistency",
            "non_standard_syntax",
            cr,
            "NOT email_std_syntax",
            "email_status = 'valid'",
            "valid email not written lower case and trimmed",
        ),
        Check(
            "src_customers",
            "phone",
            "consistency",
            "non_standard_syntax",
            cr,
            "NOT phone_std_syntax",
            "phone_status = 'valid'",
            "valid phone not written in E.164 (+14155550123)",
        ),
        Check(
            "src_customers",
            "first_name",
            "consistency",
            "non_standard_syntax",
            cr,
            "NOT first_name_std_syntax",
            "std_first_name IS NOT NULL",
            "first name not trimmed and capitalised",
        ),
        Check(
            "src_customers",
            "last_name",
            "consistency",
            "non_standard_syntax",
            cr,
            "NOT last_name_std_syntax",
            "std_last_name IS NOT NULL",
            "last name not trimmed and capitalised",
        ),
    ]
    for col in ("email", "phone", "birth_date", "last_name"):
        checks.append(
            Check(
                "src_customers",
                col,
                "consistency",
                "conflicts_with_customer",
                cr,
                f"std_{col} <> golden_{col}",
                f"std_{col} IS NOT NULL AND golden_{col} IS NOT NULL AND customer_records > 1",
                f"{col} differs from the resolved customer's golden value",
            )
        )
    checks += [
        Check(
            "src_customers",
            "*",
            "uniqueness",
            "duplicate_key",
            cr,
            "key_rank > 1",
            description="(source_system, source_id) repeats",
        ),
        Check(
            "src_customers",
            "*",
            "uniqueness",
            "duplicate_person",
            cr,
            "person_rank > 1",
            "customer_id IS NOT NULL",
            "record is a further record of a person already held (identity resolution)",
        ),
        Check(
            "src_customers",
            "updated_at",
            "recency",
            "stale_record",
            cr,
            "date_diff('day', CAST(updated_at AS DATE), $as_of) > $stale_days",
            "updated_at_status = 'valid'",
            "record not updated for more than hygiene.stale_days days",
        ),
        # events
        Check(
            "events",
            "channel",
            "validity",
            "invalid_channel",
            "events",
            f"NOT {_in('channel', store.EVENT_CHANNELS)}",
            description="channel outside the allowed event channels",
        ),
        Check(
            "events",
            "event_type",
            "validity",
            "invalid_event_type",
            "events",
            f"NOT {_in('event_type', store.EVENT_TYPES)}",
            description="event_type outside the allowed types",
        ),
        Check(
            "events",
            "ts",
            "validity",
            "future_timestamp",
            "events",
            "CAST(ts AS DATE) > $as_of",
            description="event after the data end",
        ),
        Check(
            "events",
            "source_id",
            "consistency",
            "unknown_record",
            "events",
            "NOT record_known",
            "source_id IS NOT NULL",
            "event names a source record that is not in src_customers",
        ),
        Check(
            "events",
            "event_id",
            "uniqueness",
            "duplicate_key",
            "events",
            "key_rank > 1",
            description="event_id repeats",
        ),
        # orders
        Check(
            "orders",
            "revenue",
            "validity",
            "negative_revenue",
            "orders",
            "revenue < 0",
            description="revenue below zero",
        ),
        Check(
            "orders",
            "channel",
            "validity",
            "invalid_channel",
            "orders",
            f"NOT {_in('channel', store.ORDER_CHANNELS)}",
            "channel IS NOT NULL",
            "sales channel outside the allowed set",
        ),
        Check(
            "orders",
            "channel",
            "completeness",
            "missing",
            "orders",
            _blank("channel"),
            description="channel is empty",
        ),
        Check(
            "orders",
            "source_id",
            "consistency",
            "unknown_record",
            "orders",
            "NOT record_known",
            description="order names a source record not in src_customers",
        ),
        Check(
            "orders",
            "order_id",
            "uniqueness",
            "duplicate_key",
            "orders",
            "key_rank > 1",
            description="order_id repeats",
        ),
        # consents
        Check(
            "consents",
            "status",
            "validity",
            "invalid_status",
            "consents",
            f"NOT {_in('status', store.CONSENT_STATUSES)}",
            description="status is not opt_in / opt_out",
        ),
        Check(
            "consents",
            "channel",
            "validity",
            "invalid_channel",
            "consents",
            f"NOT {_in('channel', store.ADDRESSABLE_CHANNELS)}",
            description="consent for a channel that is not addressable",
        ),
        Check(
            "consents",
            "source_id",
            "consistency",
            "unknown_record",
            "consents",
            "NOT record_known",
            description="consent for a source record not in src_customers",
        ),
        # spend and campaigns
        Check(
            "spend",
            "spend",
            "validity",
            "negative_spend",
            "spend",
            "spend < 0",
            description="spend below zero",
        ),
        Check(
            "spend",
            "channel",
            "validity",
            "invalid_channel",
            "spend",
            f"NOT {_in('channel', store.MEDIA_CHANNELS)}",
            description="channel outside the media channels",
        ),
        Check(
            "campaigns",
            "end_date",
            "consistency",
            "ends_before_start",
            "campaigns",
            "end_date < start_date",
            "end_date IS NOT NULL AND start_date IS NOT NULL",
            "campaign ends before it starts",
        ),
        # per source system
        Check(
            "events",
            "ts",
            "recency",
            "source_silent",
            "sources",
            "days_since_last_event > $silent_days",
            description="the source system's newest event is older than hygiene.silent_days",
        ),
    ]
    return tuple(checks)


CHECKS: tuple[Check, ...] = _build_checks()
CHECKS_BY_ID: dict[str, Check] = {c.check_id: c for c in CHECKS}


def _bind(sql: str, params: dict) -> tuple[str, list]:
    """Replace $name markers with '?' and return the positional values, in order."""
    values: list = []

    def repl(match: re.Match) -> str:
        values.append(params[match.group(1)])
        return "?"

    return re.sub(r"\$([a-z_]+)", repl, sql), values


def _params(ctx_as_of, stale_days: int, silent_days: int) -> dict:
    return {"as_of": ctx_as_of, "stale_days": stale_days, "silent_days": silent_days}


def _relation_ready(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    needs = {"customer_records": ("std_customers", "identity_map", "customers")}
    return all(store.table_exists(con, t) for t in needs.get(relation, ()))


def run_checks(
    con: duckdb.DuckDBPyConnection,
    as_of,
    stale_days: int = DEFAULT_STALE_DAYS,
    silent_days: int = DEFAULT_SILENT_DAYS,
) -> pd.DataFrame:
    """Evaluate every check; one row per check x source_system plus an 'all' row per check:
    check_id, table_name, column_name, dimension, check_name, source_system, failed_rows,
    total_rows, score, description. One scan per relation."""
    params = _params(as_of, stale_days, silent_days)
    frames = []
    for relation in RELATIONS:
        checks = [c for c in CHECKS if c.relation == relation]
        if not checks:
            continue
        if not _relation_ready(con, relation):
            raise RuntimeError(
                f"hygiene: relation {relation} needs the standardise and identity stages; run "
                "`ccrm build` (or `--stage standardise --stage identity --stage hygiene`)"
            )
        aggregates = []
        for i, c in enumerate(checks):
            aggregates.append(f"count(*) FILTER (WHERE ({c.applies})) AS t{i}")
            aggregates.append(f"count(*) FILTER (WHERE ({c.applies}) AND ({c.failed})) AS f{i}")
        sql = (
            f"WITH rel AS ({RELATIONS[relation]}) "  # noqa: S608 - check SQL is our own code
            f"SELECT coalesce(source_system, '(none)') AS source_system, {', '.join(aggregates)} "
            "FROM rel GROUP BY 1"
        )
        sql, values = _bind(sql, params)
        counts = con.execute(sql, values).df()
        for i, c in enumerate(checks):
            part = pd.DataFrame(
                {
                    "source_system": counts["source_system"],
                    "failed_rows": counts[f"f{i}"].astype("int64"),
                    "total_rows": counts[f"t{i}"].astype("int64"),
                }
            )
            total = pd.DataFrame(
                {
                    "source_system": [ALL_SOURCES],
                    "failed_rows": [int(part["failed_rows"].sum())],
                    "total_rows": [int(part["total_rows"].sum())],
                }
            )
            part = pd.concat([part, total], ignore_index=True)
            part = part.assign(
                check_id=c.check_id,
                table_name=c.table,
                column_name=c.column,
                dimension=c.dimension,
                check_name=c.name,
                description=c.description,
            )
            frames.append(part)
    out = pd.concat(frames, ignore_index=True)
    out["score"] = [
        100.0 * (1.0 - f / t) if t else None
        for f, t in zip(out["failed_rows"], out["total_rows"], strict=True)
    ]
    cols = [
        "check_id",
        "table_name",
        "column_name",
        "dimension",
        "check_name",
        "source_system",
        "failed_rows",
        "total_rows",
        "score",
        "description",
    ]
    return out[cols]


def hygiene_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Run every check and append the results to `hygiene_checks` under this run_id (the table
    is created if missing and never dropped, so scores keep their history across builds).

    Settings: hygiene.stale_days (1095), hygiene.silent_days (7)."""
    results = run_checks(
        con,
        ctx.as_of,
        int(ctx.param("hygiene", "stale_days", DEFAULT_STALE_DAYS)),
        int(ctx.param("hygiene", "silent_days", DEFAULT_SILENT_DAYS)),
    )
    con.execute(HYGIENE_CHECKS_SQL)
    con.execute("DELETE FROM hygiene_checks WHERE run_id = ?", [ctx.run_id])
    results.insert(0, "checked_at", datetime.now())
    results.insert(0, "run_id", ctx.run_id)
    con.register("_hygiene_results", results)
    try:
        con.execute("INSERT INTO hygiene_checks BY NAME SELECT * FROM _hygiene_results")
    finally:
        con.unregister("_hygiene_results")
    return len(results)


# --- reading scores ---------------------------------------------------------------------------


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
    """Scores from check rows of one run (the formula in the module docstring):
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


def failing_rows(
    con: duckdb.DuckDBPyConnection,
    check_id: str,
    as_of=None,
    limit: int | None = None,
    stale_days: int = DEFAULT_STALE_DAYS,
    silent_days: int = DEFAULT_SILENT_DAYS,
) -> pd.DataFrame:
    """The rows that fail one check (raw columns of its table, plus customer_id for customer
    records), `limit` rows or all; `as_of` defaults to the data end. Raises KeyError naming the
    known checks for an unknown id."""
    if check_id not in CHECKS_BY_ID:
        raise KeyError(f"unknown hygiene check {check_id!r}; known: {', '.join(CHECKS_BY_ID)}")
    check = CHECKS_BY_ID[check_id]
    if as_of is None:
        as_of = pipeline.data_end_date(con)
    base = store.TABLES.get(check.table)
    if check.relation == "sources":
        cols = "source_system, last_event, days_since_last_event"
    elif base is not None:
        cols = ", ".join(store.quote_ident(c) for c in base.column_names)
    else:
        cols = "*"
    if check.relation == "customer_records":
        cols += ", customer_id"
    sql = (
        f"WITH rel AS ({RELATIONS[check.relation]}) SELECT {cols} FROM rel "  # noqa: S608
        f"WHERE ({check.applies}) AND ({check.failed})"
    )
    sql, values = _bind(sql, _params(as_of, stale_days, silent_days))
    order = [c for c in ("source_system", "source_id", "event_id", "order_id") if c in cols]
    if order:
        sql += " ORDER BY " + ", ".join(order)
    if limit is not None:
        sql += " LIMIT ?"
        values.append(int(limit))
    return con.execute(sql, values).df()


# --- figures ----------------------------------------------------------------------------------


def figure_field_heatmap(fields: pd.DataFrame) -> go.Figure:
    """Table x field heatmap of the mean check score (0-100; red low, green high)."""
    grid = fields.pivot(index="table_name", columns="column_name", values="score")
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=list(grid.columns),
            y=list(grid.index),
            zmin=0,
            zmax=100,
            colorscale="RdYlGn",
            text=[[("" if pd.isna(v) else f"{v:.1f}") for v in row] for row in grid.to_numpy()],
            texttemplate="%{text}",
            hovertemplate="%{y}.%{x}: %{z:.1f}<extra></extra>",
            colorbar=dict(title="score"),
        )
    )
    fig.update_layout(
        height=160 + 45 * len(grid.index),
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(tickangle=-30, side="bottom"),
    )
    return fig


def figure_score_trend(trend: pd.DataFrame) -> go.Figure:
    """Score per build (x: run id) for the overall score and each dimension."""
    fig = go.Figure()
    for series, rows in trend.groupby("series", sort=False):
        fig.add_trace(
            go.Scatter(
                x=rows["run_id"],
                y=rows["score"],
                mode="lines+markers",
                name=series,
                line=dict(width=4 if series == "overall" else 1.5),
            )
        )
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=10, b=30),
        xaxis_title="build (run id)",
        yaxis_title="score (0-100)",
        xaxis=dict(tickmode="linear", dtick=1),
    )
    return fig


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


def failing_rows_csv(con: duckdb.DuckDBPyConnection, check_id: str) -> bytes:
    """Every failing row of a check as UTF-8 CSV, PII masked (shared privacy masks)."""
    return _masked_failing_rows(con, check_id).to_csv(index=False).encode("utf-8")


def download_failing_rows(
    con: duckdb.DuckDBPyConnection, user: User | None, check_id: str
) -> bytes:
    """`failing_rows_csv` for a user who may download it (analyst, admin), recorded in the
    audit log."""
    target = f"check {check_id}"
    started = audit.require(con, user, "download_failing_rows", target, "app")
    rows = _masked_failing_rows(con, check_id)
    audit.record(con, user, "download_failing_rows", target, len(rows), started_at=started)
    return rows.to_csv(index=False).encode("utf-8")


def _masked_failing_rows(con: duckdb.DuckDBPyConnection, check_id: str) -> pd.DataFrame:
    return privacy.mask_frame(failing_rows(con, check_id))
