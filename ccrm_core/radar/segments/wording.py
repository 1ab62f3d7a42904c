"""Rules in marketers' words: the label, unit and scale of each field a rule may use, the
operators as words, and a saved rule read back as one sentence ("Customers with orders at
least 3 and days since last purchase at most 90").

Rules are stored in the mart's own terms (column names, probabilities as 0..1); percentages are
typed and shown as 0..100 (a user types 80 for 80 %, stored as 0.8). Plain text only: callers
escape before markdown (ccrm_core.foundation.rendering).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RuleField:
    """How a rule field reads: `label` (marketers' words), `unit` ('days', 'currency', '%' or
    ''), `percent` (stored as a 0..1 share, typed and shown as 0..100)."""

    label: str
    unit: str = ""
    percent: bool = False


RULE_FIELDS: dict[str, RuleField] = {
    "days_since_last_purchase": RuleField("days since last purchase", "days"),
    "orders": RuleField("orders"),
    "clv": RuleField("lifetime value (12 months)", "currency"),
    "prob_alive": RuleField("probability still active (%)", "%", percent=True),
    "value_tier": RuleField("value tier"),
    "rfm_segment": RuleField("RFM segment"),
    "needs_segment": RuleField("needs segment"),
    "revenue": RuleField("revenue (all time)", "currency"),
    "expected_purchases_12m": RuleField("expected purchases (12 months)"),
    "days_since_last_event": RuleField("days since last interaction", "days"),
    "events": RuleField("interactions"),
    "click_rate": RuleField("click rate (%)", "%", percent=True),
    "tenure_weeks": RuleField("weeks as a customer", "weeks"),
    "first_order_date": RuleField("first purchase date"),
    "last_order_date": RuleField("last purchase date"),
    "top_channel": RuleField("most used channel"),
    "top_category": RuleField("favourite category"),
    "monetary_value": RuleField("average repeat order value", "currency"),
}

OPERATOR_WORDS: dict[str, dict[str, str]] = {
    "number": {
        "=": "equal to",
        "!=": "not equal to",
        ">": "more than",
        ">=": "at least",
        "<": "less than",
        "<=": "at most",
        "between": "between",
        "is null": "unknown",
        "is not null": "known",
    },
    "text": {
        "=": "is",
        "!=": "is not",
        "in": "is one of",
        "not in": "is none of",
        "contains": "contains",
        "is null": "unknown",
        "is not null": "known",
    },
    "date": {
        "=": "on",
        ">": "after",
        ">=": "on or after",
        "<": "before",
        "<=": "on or before",
        "between": "between",
        "is null": "unknown",
        "is not null": "known",
    },
}
MATCH_WORDS = {"all": "all conditions (AND)", "any": "any condition (OR)"}


def field_of(column: str) -> RuleField:
    """The wording of a rule column; columns without one read as their name in words."""
    return RULE_FIELDS.get(column) or RuleField(column.replace("_", " "))


def field_label(column: str) -> str:
    return field_of(column).label


def operator_words(kind: str, operator: str) -> str:
    return OPERATOR_WORDS.get(kind, {}).get(operator, operator)


def typed_value(column: str, stored: Any) -> Any:
    """A stored value as the user types it (a probability 0.8 -> 80)."""
    if field_of(column).percent and isinstance(stored, int | float) and stored is not True:
        return round(float(stored) * 100, 6)
    return stored


def stored_value(column: str, typed: Any) -> Any:
    """A typed value as stored (80 % -> 0.8 for a probability; others unchanged)."""
    if isinstance(typed, list | tuple):
        return type(typed)(stored_value(column, v) for v in typed)
    if field_of(column).percent and isinstance(typed, int | float) and typed is not True:
        return round(float(typed) / 100, 8)
    return typed


def _number(column: str, value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    shown = typed_value(column, value)
    text = f"{shown:,.0f}" if float(shown).is_integer() else f"{shown:,.2f}".rstrip("0")
    field = field_of(column)
    if field.percent:
        return f"{text} %"
    return text


def rule_phrase(column: str, operator: str, value: Any, kind: str = "number") -> str:
    """One condition in words: 'orders at least 3', 'value tier is one of Gold, Platinum'."""
    # the unit follows the number ('at least 80 %'), so the label drops its '(%)'
    words = f"{field_label(column).removesuffix(' (%)')} {operator_words(kind, operator)}"
    if operator in ("is null", "is not null"):
        return words
    if operator == "between" and isinstance(value, list | tuple) and len(value) == 2:
        return f"{words} {_number(column, value[0])} and {_number(column, value[1])}"
    if isinstance(value, list | tuple):
        return f"{words} {', '.join(_number(column, v) for v in value)}"
    return f"{words} {_number(column, value)}"


def rule_sentence(
    rules: Sequence[Any], match: str = "all", kinds: dict[str, str] | None = None
) -> str:
    """A rule set as one sentence: 'Customers with orders at least 3 and days since last
    purchase at most 90' (' or ' for match='any'). `rules`: dicts, Rules or (column, operator,
    value) tuples; `kinds`: column -> 'number'/'text'/'date' (numbers when not given)."""
    kinds = kinds or {}
    phrases = []
    for raw in rules:
        if isinstance(raw, dict):
            column, operator, value = raw["column"], raw["operator"], raw.get("value")
        elif hasattr(raw, "column"):
            column, operator, value = raw.column, raw.operator, raw.value
        else:
            column, operator, value = (*raw, None)[:3]
        kind = kinds.get(column) or ("text" if isinstance(value, str) else "number")
        phrases.append(rule_phrase(column, operator, value, kind))
    if not phrases:
        return "All customers"
    return "Customers with " + (" and " if match == "all" else " or ").join(phrases)
