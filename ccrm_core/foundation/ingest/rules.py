"""Row rules shared by both formats (required values, finite and whole numbers, values inside the
contract's valid ranges, consent status, events with a person) and the validation pass: rejected
rows, the reject-rate limit and duplicate keys inside the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import duckdb

from ccrm_core.foundation import store
from ccrm_core.foundation.ingest.report import (
    REJECTS_RECORDED,
    IngestError,
    IngestReport,
    Reject,
    shown_value,
)
from ccrm_core.foundation.ingest.source import _BAD, _Source


@dataclass(frozen=True)
class _Rule:
    """A row rule as SQL over the source alias `s` (our identifiers only).

    `bad` is the exact condition; `suspect` a cheaper one that is true whenever `bad` is (it
    avoids trimming every string on the fast path; rows it flags are re-checked with `bad`)."""

    column: str
    reason: str
    bad: str
    value: str  # SQL of the value to record
    suspect: str = ""

    @property
    def cheap(self) -> str:
        return self.suspect or self.bad


def _rules(spec: store.Table) -> list[_Rule]:
    """Types are enforced by the reader; these are the row rules on top (no vocabularies except
    consent status, which later stages rely on)."""
    rules = []
    for col in spec.columns:
        q = f"s.{store.quote_ident(col.name)}"
        text = f"CAST({q} AS VARCHAR)"
        if col.type == "BIGINT":  # read as DOUBLE from CSV: show a whole -1 as -1, not -1.0
            whole = f"CASE WHEN {q} = round({q}) THEN CAST(TRY_CAST({q} AS BIGINT) AS VARCHAR) END"
            text = f"coalesce({whole}, {text})"
        if col.required and col.type == "VARCHAR":
            # empty fields already read as NULL; a blank one ('  ') is missing too
            rules.append(
                _Rule(
                    col.name,
                    "required value missing",
                    f"{q} IS NULL OR trim({q}, ' \t\r\n') = ''",
                    text,
                    f"{q} IS NULL OR {q} < '!'",
                )
            )
        elif col.required:
            rules.append(_Rule(col.name, "required value missing", f"{q} IS NULL", text))
        if col.type == "DOUBLE":
            rules.append(_Rule(col.name, "not a finite number", f"NOT isfinite({q})", text))
        if col.type == "BIGINT":
            rules.append(_Rule(col.name, "not a whole number", f"{q} <> round({q})", text))
        outside = _outside(col, q)
        if outside is not None:
            rules.append(_Rule(col.name, outside[1], outside[0], text))
    if spec.name in ("consents", "ad_consents"):
        allowed = ", ".join(f"'{s}'" for s in store.CONSENT_STATUSES)
        reason = f"must be {' or '.join(store.CONSENT_STATUSES)}"
        rules.append(_Rule("status", reason, f"s.status NOT IN ({allowed})", "s.status"))
    if spec.name == "ad_consents":
        allowed = ", ".join(f"'{s}'" for s in store.AD_CONSENT_PURPOSES)
        reason = f"must be {' or '.join(store.AD_CONSENT_PURPOSES)}"
        rules.append(_Rule("purpose", reason, f"s.purpose NOT IN ({allowed})", "s.purpose"))
    if spec.name == "lift_tests":
        allowed = ", ".join(f"'{m}'" for m in store.LIFT_TEST_METRICS)
        reason = f"must be {' or '.join(store.LIFT_TEST_METRICS)}"
        rules.append(_Rule("metric", reason, f"s.metric NOT IN ({allowed})", "s.metric"))
        rules.append(
            _Rule(
                "standard_error",
                "must be greater than 0",
                "s.standard_error <= 0",
                "CAST(s.standard_error AS VARCHAR)",
            )
        )
        rules.append(
            _Rule(
                "end_date",
                "before start_date: a test ends on or after its first day",
                "s.end_date < s.start_date",
                "CAST(s.end_date AS VARCHAR)",
            )
        )
    if spec.name == "events":
        rules.append(
            _Rule(
                "anonymous_id",
                "neither source_id nor anonymous_id: an event needs a known or an anonymous person",
                "s.source_id IS NULL AND s.anonymous_id IS NULL",
                "CAST(NULL AS VARCHAR)",
            )
        )
    return rules


def _outside(col: store.Column, q: str) -> tuple[str, str] | None:
    """(SQL true for a value outside the column's valid range, the reason) or None.

    The bounds are our own typed values (dates from the contract or parsed from the date-window
    settings, numbers from the contract), written as SQL literals."""
    valid = store.valid_range(col)
    if valid is None:
        return None
    if col.type == "DATE":
        sql = f"{q} < DATE '{valid.low}' OR {q} > DATE '{valid.high}'"
    elif col.type == "TIMESTAMP":
        after = valid.high + timedelta(days=1)  # the last day counts until its end
        sql = f"{q} < TIMESTAMP '{valid.low}' OR {q} >= TIMESTAMP '{after}'"
    else:
        sql = f"{q} < {float(valid.low)!r} OR {q} > {float(valid.high)!r}"
        if col.type == "DOUBLE":  # a non-finite number has its own reason
            sql = f"isfinite({q}) AND ({sql})"
    return sql, valid.reason


def _any(conditions: Iterable[str]) -> str:
    """OR of conditions; NULL counts as not true, as in WHERE and FILTER."""
    return " OR ".join(f"({c})" for c in conditions) or "false"


def _key_distinct(spec: store.Table) -> str:
    """count(DISTINCT key) over alias s; a row struct compares NULL parts as equal."""
    cols = [f"s.{store.quote_ident(k)}" for k in spec.key]
    return cols[0] if len(cols) == 1 else f"row({', '.join(cols)})"


def _validate(
    cur: duckdb.DuckDBPyConnection,
    source: _Source,
    shown: str,
    spec: store.Table,
    report: IngestReport,
    rejects: list[Reject],
    max_reject_rate: float,
) -> tuple[str, dict]:
    """Reject rows that break a rule, refuse on rate or duplicate keys; returns the SQL of the
    clean rows (alias-free subquery with `_row` and the contract columns) and its parameters."""
    if report.rows_read == 0:
        what = "a header but no data rows" if source.unit == "line" else "no rows"
        raise IngestError(f"{shown}: has {what}; nothing to load")
    rules = _rules(spec)
    params = source.params
    key = _key_distinct(spec)
    n_rows, n_suspect, n_keys = cur.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {_any(r.cheap for r in rules)}), "  # noqa: S608
        f"count(DISTINCT {key}) FROM {source.sql} s",
        params,
    ).fetchone()
    if source.stage is not None and (n_suspect or n_keys != n_rows):
        source = source.stage()  # rows to report: scan a staged copy from here on
        params = source.params
    clean = source.sql
    n_bad = 0
    if n_suspect:
        bad = _any(r.bad for r in rules)
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {_BAD} AS SELECT _row FROM {source.sql} s WHERE {bad}",  # noqa: S608
            params,
        )
        n_bad = cur.execute(f"SELECT count(*) FROM {_BAD}").fetchone()[0]  # noqa: S608
    if n_bad:
        branches = " UNION ALL ".join(
            f"SELECT _row, {i} AS rule, {r.value} AS value FROM {source.sql} s WHERE {r.bad}"  # noqa: S608
            for i, r in enumerate(rules)
        )
        found = cur.execute(
            f"SELECT _row, rule, value FROM ({branches}) ORDER BY _row, rule "  # noqa: S608
            f"LIMIT {REJECTS_RECORDED}",
            params,
        ).fetchall()
        where = source.positions(r[0] for r in found)
        rejects.extend(
            report.located(Reject(where[r], rules[i].column, v, rules[i].reason))
            for r, i, v in found
        )
        rejects.sort(key=lambda x: x.line if x.line is not None else 0)
        clean = f"(SELECT * FROM {source.sql} WHERE _row NOT IN (SELECT _row FROM {_BAD}))"  # noqa: S608
        n_keys = cur.execute(f"SELECT count(DISTINCT {key}) FROM {clean} s", params).fetchone()[0]  # noqa: S608
    report.rows_rejected += n_bad
    if len(rejects) >= REJECTS_RECORDED:
        report.warnings.append(f"only the first {REJECTS_RECORDED:,} rejected values are recorded")
    if report.rows_rejected:
        rate = report.rows_rejected / report.rows_read
        share = f"{report.rows_rejected:,} of {report.rows_read:,} rows rejected ({_pct(rate)})"
        first = f"first: {_describe(rejects[0], source.unit)}" if rejects else "see ingest_rejects"
        if rate > max_reject_rate:
            raise IngestError(
                f"{shown}: {share}, above the {_pct(max_reject_rate)} limit; {first}. Fix the "
                "file (all rejects are in ingest_rejects) or raise the limit (--max-reject-rate)"
            )
        report.warnings.append(f"{share}, not loaded; {first}")
    if n_rows - n_bad != n_keys:
        _refuse_duplicate(cur, clean, params, source, shown, spec)
    return clean, params


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.3g}%"


def _describe(reject: Reject, unit: str) -> str:
    """'line 7, column ts, value 'x' (reason)' with PII shortened."""
    value = "" if reject.value is None else f", value {shown_value(reject.column, reject.value)}"
    return f"{unit} {reject.line}, column {reject.column or '-'}{value} ({reject.reason})"


def _refuse_duplicate(
    cur, clean: str, params: dict, source: _Source, shown: str, spec: store.Table
):
    keys = ", ".join(store.quote_ident(k) for k in spec.key)
    row = cur.execute(
        f"SELECT {keys}, list(_row ORDER BY _row)[1:2], count(*) FROM {clean} "  # noqa: S608
        f"GROUP BY ALL HAVING count(*) > 1 ORDER BY min(_row) LIMIT 1",
        params,
    ).fetchone()
    values, (first, second), count = row[: len(spec.key)], row[-2], row[-1]
    where = source.positions([first, second])
    key = ", ".join(f"{k}={shown_value(k, v)}" for k, v in zip(spec.key, values, strict=True))
    more = f", {count} times in all" if count > 2 else ""
    raise IngestError(
        f"{shown}: duplicate key {key} on {source.unit}s {where[first]} and {where[second]}"
        f"{more}; each key may appear once per file — remove or merge the repeats"
    )
