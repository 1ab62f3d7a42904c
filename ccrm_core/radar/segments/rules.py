"""Rule segments: structured filters (column, operator, value) on mart_customer columns,
turned into parameterised SQL here (a rule is never SQL text), live counts, and segments saved
by name in table `saved_segments`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from ccrm_core.foundation import audit, provenance, store, validation
from ccrm_core.foundation.access import User
from ccrm_core.radar.segments.wording import rule_sentence

SEGMENT_NAME_MAX = 80  # characters in a saved segment's name

SAVED_SEGMENTS_DDL = """
CREATE TABLE IF NOT EXISTS saved_segments (
    name        VARCHAR NOT NULL,   -- the user's name for the segment (unique)
    definition  VARCHAR NOT NULL,   -- JSON: {"match": "all"|"any", "rules": [{column, operator, value}]}
    customers   BIGINT,             -- members when saved
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
)
"""

NUMERIC_OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "between", "is null", "is not null")
TEXT_OPERATORS = ("=", "!=", "in", "not in", "contains", "is null", "is not null")
DATE_OPERATORS = ("=", ">", ">=", "<", "<=", "between", "is null", "is not null")
_COMPARE = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


class RuleError(ValueError):
    """A rule that cannot be applied; the message names the rule, column, value and the fix."""


class SegmentExists(RuleError):
    """A segment of that name is saved already and replacing it was not asked for."""


# Fields a rule may use that mart_customer holds only in other terms: name -> (kind, SQL over
# mart_customer with one `?`, the day the mart's data ends). Written from this module only.
DERIVED_COLUMNS = {
    "days_since_last_purchase": (
        "number",
        "date_diff('day', CAST(last_order_date AS DATE), CAST(? AS DATE))",
    ),
}


@dataclass(frozen=True)
class Rule:
    """One filter: `column` (a mart_customer column), `operator` (see *_OPERATORS for its
    type), `value` (a number, text or date; a list for in / not in; [low, high] for between)."""

    column: str
    operator: str
    value: Any = None


def rule_columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """mart_customer columns a rule may use -> kind ('number', 'text' or 'date')."""
    if not store.table_exists(con, "mart_customer"):
        return {}
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'mart_customer' AND table_schema = 'main' ORDER BY ordinal_position"
    ).fetchall()
    out = {}
    for name, dtype in rows:
        d = dtype.upper()
        if d in ("VARCHAR", "TEXT") or d.startswith("VARCHAR"):
            out[name] = "text"
        elif d.startswith(("DATE", "TIMESTAMP")):
            out[name] = "date"
        elif d in ("BOOLEAN",):
            continue
        else:
            out[name] = "number"
    if "last_order_date" in out:
        out = {"days_since_last_purchase": "number", **out}
    return out


def data_end_day(con: duckdb.DuckDBPyConnection) -> Any:
    """The day mart_customer's data ends (days since last purchase count to it): the data end
    of the segments build while it is up to date, else the last purchase day in the mart."""
    fit = provenance.model_fit(con, "segments")
    if fit.data_end is not None:
        return fit.data_end
    row = con.execute("SELECT max(CAST(last_order_date AS DATE)) FROM mart_customer").fetchall()
    return row[0][0]


def rule_value_options(con: duckdb.DuckDBPyConnection, column: str, limit: int = 100) -> list:
    """Distinct values of a text column of mart_customer (most common first), for pick lists;
    [] for other columns or when it has more than `limit` distinct values."""
    columns = rule_columns(con)
    if columns.get(column) != "text":
        return []
    col = store.quote_ident(next(c for c in columns if c == column))
    rows = con.execute(
        f"SELECT {col} FROM mart_customer WHERE {col} IS NOT NULL "  # noqa: S608 - checked name
        f"GROUP BY {col} ORDER BY count(*) DESC, {col} LIMIT ?",
        [limit + 1],
    ).fetchall()
    return [] if len(rows) > limit else [r[0] for r in rows]


def operators_for(kind: str) -> tuple[str, ...]:
    return {"number": NUMERIC_OPERATORS, "text": TEXT_OPERATORS, "date": DATE_OPERATORS}[kind]


def _coerce(kind: str, value: Any, where: str) -> Any:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        raise RuleError(f"{where}: a value is missing; type one in")
    if kind == "number":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise RuleError(
                f"{where}: {validation.quoted(value)} is not a number; type a number"
            ) from None
        if not math.isfinite(number):
            raise RuleError(f"{where}: {validation.quoted(value)} is not a finite number")
        return number
    if kind == "date":
        try:
            return pd.Timestamp(value).date()
        except (TypeError, ValueError):
            raise RuleError(
                f"{where}: {validation.quoted(value)} is not a date; use YYYY-MM-DD"
            ) from None
    return str(value)


def _as_rule(raw: Rule | dict | Sequence) -> Rule:
    """A Rule from a Rule, a dict, or a (column, operator, value) tuple (hashable, so pages can
    cache on it)."""
    if isinstance(raw, Rule):
        return raw
    if isinstance(raw, dict):
        return Rule(**raw)
    return Rule(*raw)


def rules_where(
    con: duckdb.DuckDBPyConnection, rules: Sequence[Rule | dict], match: str = "all"
) -> tuple[str, list[Any]]:
    """A parameterised WHERE condition for the rules (joined by AND for match='all', OR for
    'any'); '' matches everyone. Column names are checked against mart_customer and written
    from that list; values always travel as parameters."""
    if match not in ("all", "any"):
        raise RuleError(f"match must be 'all' or 'any' (got {validation.quoted(match)})")
    columns = rule_columns(con)
    parts: list[str] = []
    params: list[Any] = []
    for i, raw in enumerate(rules, start=1):
        rule = _as_rule(raw)
        # column and operator are user text until checked: messages quote them escaped
        where = f"rule {i} ({validation.label(rule.column)} {validation.label(rule.operator)})"
        if rule.column not in columns:
            raise RuleError(
                f"{where}: column {validation.quoted(rule.column)} is not in mart_customer; "
                f"choose one of {', '.join(columns) or '(none: run the segments stage)'}"
            )
        kind = columns[rule.column]
        if rule.operator not in operators_for(kind):
            raise RuleError(
                f"{where}: operator {validation.quoted(rule.operator)} does not apply to a "
                f"{kind} column; use one of {', '.join(operators_for(kind))}"
            )
        if rule.column in DERIVED_COLUMNS:
            col = DERIVED_COLUMNS[rule.column][1]
            params.append(data_end_day(con))  # the expression's own `?` comes first
        else:
            col = store.quote_ident(next(c for c in columns if c == rule.column))
        op = rule.operator
        if op == "is null":
            parts.append(f"{col} IS NULL")
        elif op == "is not null":
            parts.append(f"{col} IS NOT NULL")
        elif op in _COMPARE:
            parts.append(f"{col} {_COMPARE[op]} ?")
            params.append(_coerce(kind, rule.value, where))
        elif op == "between":
            if not isinstance(rule.value, list | tuple) or len(rule.value) != 2:
                raise RuleError(f"{where}: between needs two values [low, high]")
            parts.append(f"{col} BETWEEN ? AND ?")
            params += [_coerce(kind, v, where) for v in rule.value]
        elif op in ("in", "not in"):
            values = rule.value if isinstance(rule.value, list | tuple) else [rule.value]
            values = [_coerce(kind, v, where) for v in values]
            if not values:
                raise RuleError(f"{where}: choose at least one value")
            marks = ", ".join("?" for _ in values)
            parts.append(f"{col} {'NOT IN' if op == 'not in' else 'IN'} ({marks})")
            params += values
        elif op == "contains":
            parts.append(f"contains(lower({col}), lower(?))")
            params.append(_coerce(kind, rule.value, where))
    joiner = " AND " if match == "all" else " OR "
    return (joiner.join(f"({p})" for p in parts), params)


def rule_counts(
    con: duckdb.DuckDBPyConnection, rules: Sequence[Rule | dict], match: str = "all"
) -> dict[str, float]:
    """Live counts for a rule set: customers, share of all customers, revenue, average CLV and
    average probability alive of the matching customers."""
    cond, params = rules_where(con, rules, match)
    where = f"WHERE {cond}" if cond else ""
    customers, revenue, avg_clv, avg_alive, total = con.execute(
        "SELECT count(*), coalesce(sum(revenue), 0), avg(clv), avg(prob_alive), "  # noqa: S608
        f"(SELECT count(*) FROM mart_customer) FROM mart_customer {where}",
        params,
    ).fetchall()[0]
    return {
        "customers": int(customers),
        "share": customers / total if total else 0.0,
        "revenue": float(revenue),
        "avg_clv": float(avg_clv) if avg_clv is not None else float("nan"),
        "avg_prob_alive": float(avg_alive) if avg_alive is not None else float("nan"),
    }


def _definition(rules: Sequence[Rule | dict], match: str) -> str:
    items = [asdict(_as_rule(r)) for r in rules]
    for item in items:  # dates to text so the definition is JSON
        if isinstance(item.get("value"), list | tuple):
            item["value"] = [str(v) if hasattr(v, "isoformat") else v for v in item["value"]]
        elif hasattr(item.get("value"), "isoformat"):
            item["value"] = str(item["value"])
    return json.dumps({"match": match, "rules": items}, sort_keys=True)


def segment_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a segment is saved under `name` (exactly)."""
    if not store.table_exists(con, "saved_segments"):
        return False
    return bool(
        con.execute("SELECT count(*) FROM saved_segments WHERE name = ?", [name]).fetchall()[0][0]
    )


def _audit_start(con, user: User | None, target: str, via: str):
    """Check the role and note the start when a user is given (the app always gives one;
    library callers such as benchmarks may not, and are not audited)."""
    return audit.require(con, user, "save_segment", target, via) if user is not None else None


def _audit_row(con, user: User | None, action: str, target: str, rows, via: str, started):
    if user is not None:
        audit.record_in_transaction(con, user, action, target, rows, via=via, started_at=started)


def save_segment(
    con: duckdb.DuckDBPyConnection,
    name: str,
    rules: Sequence[Rule | dict],
    match: str = "all",
    *,
    user: User | None = None,
    replace: bool = True,
    via: str = "app",
) -> int:
    """Save a rule segment under `name` (replacing one of that name unless replace=False, when
    SegmentExists is raised); returns its current member count. The rules are validated first,
    so a saved segment always applies. With `user`, the role is checked (save_segment) and the
    save is written to the audit log with the segment in the same transaction."""
    name = validation.clean_name(
        name, "segment name", SEGMENT_NAME_MAX, RuleError, example="High-value at risk"
    )
    if not rules:
        raise RuleError(f"segment {validation.quoted(name)} has no rules; add at least one")
    customers = rule_counts(con, rules, match)["customers"]
    exists = segment_exists(con, name)
    if exists and not replace:
        raise SegmentExists(
            f"a segment named {validation.quoted(name)} is saved already; replace it or choose "
            "another name"
        )
    started = _audit_start(con, user, f"segment {name}", via)
    now = datetime.now()
    with store.transaction(con):
        con.execute(SAVED_SEGMENTS_DDL)
        # a segment saved again keeps the day it was first created
        created = con.execute(
            "SELECT min(created_at) FROM saved_segments WHERE name = ?", [name]
        ).fetchall()[0][0]
        con.execute("DELETE FROM saved_segments WHERE name = ?", [name])
        con.execute(
            "INSERT INTO saved_segments VALUES (?, ?, ?, ?, ?)",
            [name, _definition(rules, match), customers, created or now, now],
        )
        _audit_row(con, user, "save_segment", f"segment {name}", customers, via, started)
    return customers


def rename_segment(
    con: duckdb.DuckDBPyConnection,
    name: str,
    new_name: str,
    *,
    user: User | None = None,
    via: str = "app",
) -> str:
    """Rename a saved segment; returns the cleaned new name. Refused (RuleError) when `name` is
    not saved or another segment has `new_name`. Audited with `user` (see save_segment)."""
    new_name = validation.clean_name(
        new_name, "segment name", SEGMENT_NAME_MAX, RuleError, example="High-value at risk"
    )
    if not segment_exists(con, name):
        raise RuleError(f"no saved segment named {validation.quoted(name)}")
    if new_name != name and segment_exists(con, new_name):
        raise SegmentExists(
            f"a segment named {validation.quoted(new_name)} is saved already; choose another name"
        )
    target = f"segment {name} -> {new_name}"
    started = _audit_start(con, user, target, via)
    with store.transaction(con):
        con.execute(
            "UPDATE saved_segments SET name = ?, updated_at = ? WHERE name = ?",
            [new_name, datetime.now(), name],
        )
        _audit_row(con, user, "rename_segment", target, None, via, started)
    return new_name


def delete_segment(
    con: duckdb.DuckDBPyConnection, name: str, *, user: User | None = None, via: str = "app"
) -> bool:
    """Delete a saved segment; returns whether it existed. Audited with `user` (see
    save_segment)."""
    if not segment_exists(con, name):
        return False
    started = _audit_start(con, user, f"segment {name}", via)
    with store.transaction(con):
        removed = con.execute("DELETE FROM saved_segments WHERE name = ?", [name]).fetchall()[0][0]
        _audit_row(con, user, "delete_segment", f"segment {name}", removed, via, started)
    return bool(removed)


def saved_segments(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Saved rule segments: name, match, rules (list of dicts), sentence (the rules in words),
    customers (when saved), updated_at; newest first."""
    if not store.table_exists(con, "saved_segments"):
        return pd.DataFrame(
            columns=["name", "match", "rules", "sentence", "customers", "updated_at"]
        )
    frame = con.execute(
        "SELECT name, definition, customers, updated_at FROM saved_segments "
        "ORDER BY updated_at DESC, name"
    ).df()
    parsed = [json.loads(d) for d in frame["definition"]]
    frame["match"] = [p.get("match", "all") for p in parsed]
    frame["rules"] = [p.get("rules", []) for p in parsed]
    kinds = rule_columns(con)
    frame["sentence"] = [
        rule_sentence(r, m, kinds) for r, m in zip(frame["rules"], frame["match"], strict=True)
    ]
    return frame[["name", "match", "rules", "sentence", "customers", "updated_at"]]


def saved_segment_where(con: duckdb.DuckDBPyConnection, name: str) -> tuple[str, list[Any]]:
    """The WHERE condition of a saved segment (raises RuleError naming it when missing)."""
    saved = saved_segments(con)
    row = saved[saved["name"] == name]
    if row.empty:
        raise RuleError(
            f"no saved segment named {validation.quoted(name)}; "
            f"saved: {', '.join(saved['name']) or '(none)'}"
        )
    return rules_where(con, row["rules"].iloc[0], row["match"].iloc[0])
