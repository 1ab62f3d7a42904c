"""The rules of `normalise` as DuckDB SQL expressions, so that a whole audience is normalised and
hashed set-wise instead of one value at a time in Python.

A value made only of ASCII characters is normalised in SQL. Any other value goes to the Python
function of `normalise` (the reference), registered on the cursor as a DuckDB Python function and
called once per distinct value: beyond ASCII, lower case, letters and white space depend on the
Unicode version and on special cases (final sigma, the dotted capital I, compatibility forms
that NFC folds), and the reference decides. Within ASCII the two engines agree by construction:
white space is exactly what Python's `str.isspace` and `\\s` take (tab, line feed, vertical tab,
form feed, carriage return, the separators 0x1c-0x1f and the space), letters are a-z / A-Z and
digits 0-9. tests/test_audience_normalise.py checks every rule against the reference on every
ASCII character and on hostile and non-ASCII values.

Usage: inside `with python_rules(cursor):`, put `rule_sql("google_email", "s.email")` (or
`rule_sql("meta_zip", "g.postal_code", "country")`) into the cursor's queries; the result is
NULL where the reference returns None. SHA-256 is DuckDB's `sha256`, the lower-case hex digest
of the UTF-8 bytes, as `normalise.sha256_hex`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import duckdb

from ccrm_core.conductor.audience import normalise

try:  # duckdb >= 1.4
    from duckdb.sqltypes import VARCHAR
except ImportError:  # pragma: no cover - older duckdb
    from duckdb.typing import VARCHAR

# ASCII white space as Python sees it (str.strip, str.split and `\s` in a str pattern), as the
# body of an RE2 character class
_SPACE = "".join(f"\\x{{{ord(c):02x}}}" for c in map(chr, range(128)) if c.isspace())
_PUNCTUATION = _SPACE + "()./\\-"  # normalise._PHONE_PUNCTUATION
_GMAIL = ", ".join(f"'{d}'" for d in normalise._GMAIL_DOMAINS)


def _let(value: str, body: str) -> str:
    """`body` with `v` bound to `value`, computed once."""
    return f"list_transform([{value}], lambda v: {body})[1]"


def _stripped(x: str) -> str:
    """normalise._text: no white space at either end; NULL when nothing is left."""
    return f"nullif(regexp_replace({x}, '^[{_SPACE}]+|[{_SPACE}]+$', '', 'g'), '')"


def _email(x: str) -> str:
    return _let(
        f"lower(regexp_replace({x}, '[{_SPACE}]', '', 'g'))",
        "CASE WHEN regexp_full_match(v, '[^@]+@[^@]+[.][^@]+') THEN v END",
    )


def _international_digits(x: str) -> str:
    digits = _let(
        f"regexp_replace({x}, '[{_PUNCTUATION}]', '', 'g')",
        "CASE WHEN prefix(v, '+') THEN v[2:] WHEN prefix(v, '00') THEN v[3:] END",
    )
    return _let(
        digits,
        "CASE WHEN regexp_full_match(v, '[0-9]+') "
        "AND regexp_full_match(ltrim(v, '0'), '[1-9][0-9]{6,14}') THEN ltrim(v, '0') END",
    )


def _country(x: str) -> str:
    return _let(_stripped(x), "CASE WHEN regexp_full_match(v, '[A-Za-z]{2}') THEN upper(v) END")


def _letters(x: str) -> str:
    return f"nullif(regexp_replace(lower({x}), '[^a-z]', '', 'g'), '')"


def _us_zip(text: str) -> str:
    return _let(
        f"regexp_replace({text}, '[^0-9]', '', 'g')", "CASE WHEN length(v) >= 5 THEN v[:5] END"
    )


def _google_email(x: str) -> str:
    return _let(
        _email(x),
        f"CASE WHEN split_part(v, '@', 2) IN ({_GMAIL}) THEN "
        "nullif(replace(split_part(v, '@', 1), '.', ''), '') || '@' || split_part(v, '@', 2) "
        "ELSE v END",
    )


def _google_last_name(x: str) -> str:
    kept = f"regexp_replace(lower({_stripped(x)}), '[^a-z0-9{_SPACE}]', '', 'g')"
    return f"nullif(trim(regexp_replace({kept}, '[{_SPACE}]+', ' ', 'g'), ' '), '')"


def _google_zip(x: str, country: str) -> str:
    return _let(
        _stripped(x),
        f"CASE WHEN {_country(country)} = 'US' THEN {_us_zip('v')} "
        f"ELSE regexp_replace(upper(v), '[{_SPACE}]+', ' ', 'g') END",
    )


def _meta_zip(x: str, country: str) -> str:
    word, space = f"[^{_SPACE}]+", f"[{_SPACE}]+"
    return _let(
        f"lower({_stripped(x)})",
        f"CASE WHEN {_country(country)} = 'US' THEN {_us_zip('v')} "
        f"WHEN {_country(country)} = 'GB' AND regexp_full_match(v, '{word}{space}{word}') THEN "
        f"regexp_extract(v, '^({word})', 1) || regexp_extract(v, '({word})$', 1)[1] "
        f"ELSE nullif(split_part(regexp_replace(v, '[{_SPACE}]', '', 'g'), '-', 1), '') END",
    )


# name: (the Python reference, its SQL for ASCII values)
RULES: dict[str, tuple[Callable[..., str | None], Callable[..., str]]] = {
    "google_email": (normalise.google_email, _google_email),
    "google_phone": (normalise.google_phone, lambda x: f"'+' || {_international_digits(x)}"),
    "google_first_name": (
        normalise.google_first_name,
        lambda x: f"regexp_replace(lower({_stripped(x)}), '[{_SPACE}]+', ' ', 'g')",
    ),
    "google_last_name": (normalise.google_last_name, _google_last_name),
    "google_country": (normalise.google_country, _country),
    "google_zip": (normalise.google_zip, _google_zip),
    "meta_email": (normalise.meta_email, _email),
    "meta_phone": (normalise.meta_phone, _international_digits),
    "meta_name": (normalise.meta_name, _letters),
    "meta_city": (normalise.meta_city, _letters),
    "meta_state": (normalise.meta_state, _letters),
    "meta_country": (normalise.meta_country, lambda x: f"lower({_country(x)})"),
    "meta_zip": (normalise.meta_zip, _meta_zip),
}


def _udf_name(rule: str) -> str:
    return f"ccrm_normalise_{rule}"


def rule_sql(rule: str, value: str, *extra: str) -> str:
    """SQL for `normalise.<rule>(value, *extra)` over the SQL expressions `value` (and `extra`,
    e.g. the country for a zip code): SQL for ASCII values, the Python reference for any other
    (inside `python_rules`). NULL where the reference returns None."""
    _, sql = RULES[rule]
    ascii_only = " AND ".join(f"coalesce(strlen({e}) = length({e}), true)" for e in (value, *extra))
    return (
        f"(CASE WHEN {value} IS NULL THEN NULL WHEN {ascii_only} THEN {sql(value, *extra)} "
        f"ELSE {_udf_name(rule)}({', '.join((value, *extra))}) END)"
    )


def birth_year_sql(value: str) -> str:
    """SQL for `normalise.meta_birth_year` of a DATE or TIMESTAMP expression: 'YYYY'."""
    return f"lpad(CAST(year({value}) AS VARCHAR), 4, '0')"


def _cached(fn: Callable[..., str | None], arity: int) -> Callable[..., str | None]:
    """`fn` computing each distinct argument tuple once, with a fixed number of parameters (DuckDB
    reads the signature)."""
    cache: dict[tuple, str | None] = {}

    def call(*args: object) -> str | None:
        if args not in cache:
            cache[args] = fn(*args)
        return cache[args]

    if arity == 1:
        return lambda value: call(value)
    return lambda value, country: call(value, country)


@contextlib.contextmanager
def python_rules(cur: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Register the Python reference of every rule on `cur` (a cursor of one's own) for the
    non-ASCII values of `rule_sql`, each distinct value computed once; removed on exit."""
    registered = []
    try:
        for rule, (fn, sql) in RULES.items():
            arity = sql.__code__.co_argcount
            cur.create_function(
                _udf_name(rule), _cached(fn, arity), [VARCHAR] * arity, VARCHAR,
                null_handling="special",
            )  # fmt: skip
            registered.append(rule)
        yield cur
    finally:
        for rule in registered:
            cur.remove_function(_udf_name(rule))
