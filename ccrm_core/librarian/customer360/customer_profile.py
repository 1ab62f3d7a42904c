"""The profile of one customer: the golden record with the source of each field, linked
source records and anonymous ids, consents, contact fatigue, and (once their stages have run)
value, segments, propensity and next best action; masking for display.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb
import pandas as pd

from ccrm_core.foundation import privacy, store

GOLDEN_FIELDS = tuple(store.TABLES["src_customers"].column_names[2:])
VALUE_COLUMNS = (
    "orders",
    "revenue",
    "first_order_date",
    "last_order_date",
    "recency",
    "frequency",
    "T",
    "monetary_value",
    "r_score",
    "f_score",
    "m_score",
    "expected_purchases_12m",
    "prob_alive",
    "clv",
)
SEGMENT_COLUMNS = ("rfm_segment", "value_tier", "needs_segment")


@dataclass
class CustomerProfile:
    """Everything the page shows about one customer (plain data, picklable for caching).

    `golden`: field, value, source (which source system gave the value; NULL when unknown).
    `sources`: the source records linked to the customer, with match method and probability.
    `identifiers`: anonymous ids (cookies, devices) with first/last seen and events.
    `consents`: channel, status, ts (latest per channel); `fatigue`: touches per channel in the
    last 7 and 30 days (up to `as_of`) against the contact policy's caps.
    `value`, `segments`, `propensity`, `nba`: None until their build stages have run.
    """

    customer_id: str
    name: str
    as_of: date | None
    golden: pd.DataFrame
    sources: pd.DataFrame
    identifiers: pd.DataFrame
    consents: pd.DataFrame
    fatigue: pd.DataFrame
    value: dict | None = None
    segments: dict | None = None
    propensity: dict | None = None
    models: pd.DataFrame | None = None
    nba: dict | None = None
    # share of customers (0..1) at or below this customer: 'revenue' (all time), 'clv' (value)
    percentiles: dict = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # build stages whose outputs are absent


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]


def _one_row(con: duckdb.DuckDBPyConnection, table: str, customer_id: str) -> dict | None:
    """The row of `table` for one customer as plain Python values (lists stay lists)."""
    cur = con.execute(
        f"SELECT * FROM {store.quote_ident(table)} WHERE customer_id = ? LIMIT 1",  # noqa: S608 our table
        [customer_id],
    )
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def data_as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    """The day the data ends, as stored by the customer_timeline stage (None before it ran)."""
    if not store.table_exists(con, "customer360_meta"):
        return None
    row = con.execute("SELECT max(as_of) FROM customer360_meta").fetchone()
    return row[0] if row else None


def revenue_percentile(con: duckdb.DuckDBPyConnection, customer_id: str) -> float | None:
    """Share of customers (0..1) whose all-time revenue is at most this customer's."""
    if not store.table_exists(con, "search_customers"):
        return None
    row = con.execute(
        """
        SELECT count(*) FILTER (WHERE revenue <= (SELECT max(revenue) FROM search_customers
                                                  WHERE customer_id = ?)) / count(*)
        FROM search_customers
        """,
        [customer_id],
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def touches(
    con: duckdb.DuckDBPyConnection, customer_id: str, as_of: date, event_types: list[str]
) -> pd.DataFrame:
    """Contacts per channel: channel, touches_7d, touches_30d (events of `event_types` in the
    7 and 30 days up to and including `as_of`). Needs the customer_timeline stage."""
    return con.execute(
        """
        SELECT channel,
               count(*) FILTER (WHERE ts >= CAST(? AS DATE) - INTERVAL 6 DAY) AS touches_7d,
               count(*) AS touches_30d
        FROM customer_timeline
        WHERE customer_id = ? AND kind = 'event' AND event_type IN (SELECT unnest(?::VARCHAR[]))
          AND ts >= CAST(? AS DATE) - INTERVAL 29 DAY AND ts < CAST(? AS DATE) + INTERVAL 1 DAY
        GROUP BY channel ORDER BY channel
        """,
        [as_of, customer_id, list(event_types), as_of, as_of],
    ).df()


# The build stages whose outputs the profile shows, and the table each writes (display order).
_STAGE_TABLES = (
    ("customer_timeline", "customer_timeline"),
    ("value", "mart_customer"),
    ("propensity", "mart_propensity"),
    ("nba", "mart_nba"),
)


def profile(con: duckdb.DuckDBPyConnection, customer_id: str) -> CustomerProfile | None:
    """The 360 view of one customer, or None when the id is unknown (see CustomerProfile)."""
    if not store.table_exists(con, "customers"):
        return None
    golden_row = _one_row(con, "customers", customer_id)
    if golden_row is None:
        return None
    built = {stage: store.table_exists(con, table) for stage, table in _STAGE_TABLES}
    as_of = data_as_of(con)
    mart_row = _one_row(con, "mart_customer", customer_id) if built["value"] else None
    value = segments = None
    if mart_row is not None:
        value = {k: mart_row[k] for k in VALUE_COLUMNS if k in mart_row}
        segments = {k: mart_row[k] for k in SEGMENT_COLUMNS if k in mart_row}
    return CustomerProfile(
        customer_id=customer_id,
        name=_full_name(golden_row) or customer_id,
        as_of=as_of,
        golden=_golden_fields(golden_row),
        sources=_source_records(con, customer_id),
        identifiers=_anonymous_ids(con, customer_id, with_activity=built["customer_timeline"]),
        consents=_consents(con, customer_id),
        fatigue=_fatigue(con, customer_id, as_of),
        value=value,
        segments=segments,
        propensity=_one_row(con, "mart_propensity", customer_id) if built["propensity"] else None,
        models=_propensity_models(con) if built["propensity"] else None,
        nba=_one_row(con, "mart_nba", customer_id) if built["nba"] else None,
        percentiles=_percentiles(con, customer_id, value),
        missing=[stage for stage, done in built.items() if not done],
    )


def _golden_fields(golden_row: dict) -> pd.DataFrame:
    """field, value (as text), source of each golden record field."""
    first_source = golden_row.get("first_source")
    return pd.DataFrame(
        [
            {
                "field": f,
                # as text: the fields mix strings, dates and timestamps
                "value": None if golden_row.get(f) is None else str(golden_row[f]),
                "source": golden_row.get(f"{f}_source", first_source),
            }
            for f in GOLDEN_FIELDS
            if f in golden_row
        ]
    )


def _full_name(golden_row: dict) -> str:
    """First and last name of the golden record ('' when both are missing)."""
    return " ".join(
        str(golden_row[f]) for f in ("first_name", "last_name") if golden_row.get(f)
    ).strip()


def _source_records(con: duckdb.DuckDBPyConnection, customer_id: str) -> pd.DataFrame:
    """The source records linked to the customer, with match method and probability."""
    return con.execute(
        """
        SELECT s.source_system, s.source_id, s.first_name, s.last_name, s.email, s.phone,
               s.city, s.postal_code, s.updated_at, m.method, m.match_probability
        FROM identity_map m JOIN src_customers s USING (source_system, source_id)
        WHERE m.customer_id = ? ORDER BY s.source_system, s.source_id
        """,
        [customer_id],
    ).df()


def _anonymous_ids(
    con: duckdb.DuckDBPyConnection, customer_id: str, with_activity: bool
) -> pd.DataFrame:
    """The customer's anonymous ids with match method and probability; with_activity (the
    customer_timeline stage has run) adds first_seen, last_seen and events, most recent first."""
    if not with_activity:
        return con.execute(
            "SELECT anonymous_id, method, match_probability FROM identity_map "
            "WHERE customer_id = ? AND anonymous_id IS NOT NULL ORDER BY anonymous_id",
            [customer_id],
        ).df()
    return con.execute(
        """
        WITH ids AS (
            SELECT anonymous_id, method, match_probability FROM identity_map
            WHERE customer_id = ? AND anonymous_id IS NOT NULL
        ),
        seen AS (
            SELECT detail AS anonymous_id, min(ts) AS first_seen, max(ts) AS last_seen,
                   count(*) AS events
            FROM customer_timeline
            WHERE customer_id = ? AND kind = 'event' AND detail IS NOT NULL
            GROUP BY detail
        )
        SELECT ids.anonymous_id, ids.method, ids.match_probability,
               seen.first_seen, seen.last_seen, coalesce(seen.events, 0) AS events
        FROM ids LEFT JOIN seen USING (anonymous_id)
        ORDER BY seen.last_seen DESC NULLS LAST, ids.anonymous_id
        """,
        [customer_id, customer_id],
    ).df()


def _consents(con: duckdb.DuckDBPyConnection, customer_id: str) -> pd.DataFrame:
    """channel, status, ts of the customer's consents."""
    return con.execute(
        "SELECT channel, status, ts FROM customer_consents WHERE customer_id = ? ORDER BY channel",
        [customer_id],
    ).df()


def _fatigue(con: duckdb.DuckDBPyConnection, customer_id: str, as_of: date | None) -> pd.DataFrame:
    """Touches per channel in the last 7 and 30 days (up to as_of) against the contact policy's
    caps; no touches counted before the customer_timeline stage has stored as_of."""
    from ccrm_core.conductor import decisioning

    policy = decisioning.load_policy()
    return decisioning.fatigue_frame(
        touches(con, customer_id, as_of, list(policy.touch_event_types))
        if as_of is not None
        else pd.DataFrame(columns=["channel", "touches_7d", "touches_30d"]),
        policy,
    )


def _propensity_models(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """The propensity models (one row per target), None before they are stored."""
    if not store.table_exists(con, "propensity_model"):
        return None
    return con.execute("SELECT * FROM propensity_model ORDER BY target").df()


def _percentiles(con: duckdb.DuckDBPyConnection, customer_id: str, value: dict | None) -> dict:
    """Share of customers (0..1) at or below this customer: 'revenue' (all time) once the
    search index exists, 'clv' once the customer has a lifetime value."""
    percentiles: dict = {}
    revenue_share = revenue_percentile(con, customer_id)
    if revenue_share is not None:
        percentiles["revenue"] = revenue_share
    if value is not None and value.get("clv") is not None:
        percentiles["clv"] = con.execute(
            "SELECT count(*) FILTER (WHERE clv <= ?) / count(*) FROM mart_customer",
            [value["clv"]],
        ).fetchone()[0]
    return percentiles


def mask_profile(p: CustomerProfile, reveal: bool = False) -> CustomerProfile:
    """A copy of a profile for display: name, email, phone, address and birth date masked
    everywhere (privacy.PII_COLUMNS) unless reveal (only after ccrm_core.foundation.audit.reveal_customer
    has checked the role and recorded it)."""
    if reveal:
        return p
    golden = p.golden.copy()
    golden["value"] = [
        privacy.mask_value(f, v) if f in privacy.PII_COLUMNS else v
        for f, v in zip(golden["field"], golden["value"], strict=True)
    ]
    sources = privacy.mask_frame(p.sources)
    return CustomerProfile(
        **{
            **p.__dict__,
            "name": privacy.mask_full_name(p.name),
            "golden": golden,
            "sources": sources,
        }
    )
