"""The hygiene checks: the relations they count rows in (one scan each) and every check, with the
SQL that says which rows it applies to and which of those fail.

Checks are listed per table, customer records by dimension; this order is the order results are
reported in. Check SQL is our own text; the only values it takes are the $as_of (DATE),
$stale_days and $silent_days parameters, bound positionally by `_bind`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ccrm_core.foundation import store

DIMENSIONS = ("completeness", "validity", "consistency", "uniqueness", "recency")
ALL_SOURCES = "all"
DEFAULT_STALE_DAYS = 1095
DEFAULT_SILENT_DAYS = 7


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


# The relation of source customer records joined to their standardised and resolved forms.
_CUSTOMER_RECORDS = "customer_records"


def _bind(sql: str, params: dict) -> tuple[str, list]:
    """Replace $name markers with '?' and return the positional values, in order."""
    values: list = []

    def repl(match: re.Match) -> str:
        values.append(params[match.group(1)])
        return "?"

    return re.sub(r"\$([a-z_]+)", repl, sql), values


def _params(ctx_as_of, stale_days: int, silent_days: int) -> dict:
    return {"as_of": ctx_as_of, "stale_days": stale_days, "silent_days": silent_days}


def _blank(col: str) -> str:
    return f"({col} IS NULL OR trim(CAST({col} AS VARCHAR)) = '')"


def _in(col: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{col} IN ({quoted})"


def _customer_completeness_checks() -> list[Check]:
    """src_customers: each contact and profile field that is empty."""
    return [
        Check(
            "src_customers",
            col,
            "completeness",
            "missing",
            _CUSTOMER_RECORDS,
            _blank(col),
            description=f"{col} is empty",
        )
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
        )
    ]


def _customer_validity_checks() -> list[Check]:
    """src_customers: invalid emails, phones, postal codes and dates."""
    return [
        Check(
            "src_customers",
            "email",
            "validity",
            "invalid_email",
            _CUSTOMER_RECORDS,
            "email_status = 'invalid'",
            f"NOT {_blank('email')}",
            "email fails syntax validation (email-validator)",
        ),
        Check(
            "src_customers",
            "phone",
            "validity",
            "invalid_phone",
            _CUSTOMER_RECORDS,
            "phone_status = 'invalid'",
            f"NOT {_blank('phone')}",
            "phone is not a valid number for the record's country",
        ),
        Check(
            "src_customers",
            "postal_code",
            "validity",
            "invalid_postal_code",
            _CUSTOMER_RECORDS,
            "postal_code_status = 'invalid'",
            f"NOT {_blank('postal_code')}",
            "postal code does not fit the country's format",
        ),
        Check(
            "src_customers",
            "birth_date",
            "validity",
            "future_date",
            _CUSTOMER_RECORDS,
            "birth_date > $as_of",
            "birth_date IS NOT NULL",
            "birth date after the data end",
        ),
        Check(
            "src_customers",
            "birth_date",
            "validity",
            "implausible_age",
            _CUSTOMER_RECORDS,
            "birth_date_status = 'invalid' AND birth_date <= $as_of",
            "birth_date IS NOT NULL",
            "birth date implies an age over 120 or under 13",
        ),
        Check(
            "src_customers",
            "created_at",
            "validity",
            "date_out_of_range",
            _CUSTOMER_RECORDS,
            "created_at_status = 'invalid'",
            "created_at IS NOT NULL",
            "created_at before 1990 or after the data end",
        ),
        Check(
            "src_customers",
            "updated_at",
            "validity",
            "date_out_of_range",
            _CUSTOMER_RECORDS,
            "updated_at_status = 'invalid'",
            "updated_at IS NOT NULL",
            "updated_at before 1990 or after the data end",
        ),
    ]


def _customer_consistency_checks() -> list[Check]:
    """src_customers: values not written in the standard form, then values that disagree with
    the resolved customer's golden record."""
    return [
        Check(
            "src_customers",
            "email",
            "consistency",
            "non_standard_syntax",
            _CUSTOMER_RECORDS,
            "NOT email_std_syntax",
            "email_status = 'valid'",
            "valid email not written lower case and trimmed",
        ),
        Check(
            "src_customers",
            "phone",
            "consistency",
            "non_standard_syntax",
            _CUSTOMER_RECORDS,
            "NOT phone_std_syntax",
            "phone_status = 'valid'",
            "valid phone not written in E.164 (+14155550123)",
        ),
        Check(
            "src_customers",
            "first_name",
            "consistency",
            "non_standard_syntax",
            _CUSTOMER_RECORDS,
            "NOT first_name_std_syntax",
            "std_first_name IS NOT NULL",
            "first name not trimmed and capitalised",
        ),
        Check(
            "src_customers",
            "last_name",
            "consistency",
            "non_standard_syntax",
            _CUSTOMER_RECORDS,
            "NOT last_name_std_syntax",
            "std_last_name IS NOT NULL",
            "last name not trimmed and capitalised",
        ),
    ] + [
        Check(
            "src_customers",
            col,
            "consistency",
            "conflicts_with_customer",
            _CUSTOMER_RECORDS,
            f"std_{col} <> golden_{col}",
            f"std_{col} IS NOT NULL AND golden_{col} IS NOT NULL AND customer_records > 1",
            f"{col} differs from the resolved customer's golden value",
        )
        for col in ("email", "phone", "birth_date", "last_name")
    ]


def _customer_uniqueness_checks() -> list[Check]:
    """src_customers: repeated keys and further records of a person already held."""
    return [
        Check(
            "src_customers",
            "*",
            "uniqueness",
            "duplicate_key",
            _CUSTOMER_RECORDS,
            "key_rank > 1",
            description="(source_system, source_id) repeats",
        ),
        Check(
            "src_customers",
            "*",
            "uniqueness",
            "duplicate_person",
            _CUSTOMER_RECORDS,
            "person_rank > 1",
            "customer_id IS NOT NULL",
            "record is a further record of a person already held (identity resolution)",
        ),
    ]


def _customer_recency_checks() -> list[Check]:
    """src_customers: records not updated for too long."""
    return [
        Check(
            "src_customers",
            "updated_at",
            "recency",
            "stale_record",
            _CUSTOMER_RECORDS,
            "date_diff('day', CAST(updated_at AS DATE), $as_of) > $stale_days",
            "updated_at_status = 'valid'",
            "record not updated for longer than the stale-record limit (three years unless set)",
        ),
    ]


def _event_checks() -> list[Check]:
    """events: allowed channels and types, no future events, known records, unique ids."""
    return [
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
    ]


def _order_checks() -> list[Check]:
    """orders: revenue, sales channel, known records, unique ids."""
    return [
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
    ]


def _consent_checks() -> list[Check]:
    """consents: allowed statuses and channels, known records."""
    return [
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
    ]


def _spend_and_campaign_checks() -> list[Check]:
    """spend and campaigns: amounts, media channels, campaign dates."""
    return [
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
    ]


def _source_checks() -> list[Check]:
    """Per source system: a source whose newest event is too old."""
    return [
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


def _build_checks() -> tuple[Check, ...]:
    """Every check, in reporting order: customer records by dimension, then the other tables."""
    return (
        *_customer_completeness_checks(),
        *_customer_validity_checks(),
        *_customer_consistency_checks(),
        *_customer_uniqueness_checks(),
        *_customer_recency_checks(),
        *_event_checks(),
        *_order_checks(),
        *_consent_checks(),
        *_spend_and_campaign_checks(),
        *_source_checks(),
    )


CHECKS: tuple[Check, ...] = _build_checks()
CHECKS_BY_ID: dict[str, Check] = {c.check_id: c for c in CHECKS}
