"""Standardisation: clean copies of the contact fields of `src_customers`, raw values untouched.

Output table `std_customers`, one row per source record (source_system, source_id), holding:
- `first_name`, `last_name`, `city`, `region`, `address_line`: trimmed, inner whitespace collapsed,
  names and places capitalised (see `normalise_name`), region codes upper case; blank -> NULL.
- `email`: lower-cased and syntax-checked with `email-validator` (no network); NULL when missing or
  invalid. `email_key` is the matching key: the email with a `+tag` removed and, for Gmail, the
  dots of the local part removed (Gmail ignores both), so `J.Doe+x@gmail.com` and
  `jdoe@gmail.com` share a key.
- `phone`: E.164 (`+14155550123`), parsed with `phonenumbers` using the record's country (the
  configured default country when missing); NULL when missing or not a valid number.
- `postal_code`: normalised per country (US `02134` / `02134-1234`, GB and CA upper case with
  one space before the inward code, 5-digit countries zero-padded); NULL when invalid.
- `country`: ISO 3166-1 alpha-2, upper case.
- `birth_date`, `created_at`, `updated_at`: kept when in range, else NULL (see `date_status`).
- `<field>_status` for email, phone, postal_code, birth_date, created_at, updated_at:
  'valid', 'invalid' or 'missing'; and `<field>_std_syntax` (TRUE when the raw value was already
  written in the standard form) for names, email and phone: the hygiene stage reads these.

Grain: one row per src_customers row. Standardising runs once per distinct raw value, so
repeated values cost nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from ccrm_core.foundation.pipeline import BuildContext, replace_table

DEFAULT_COUNTRY = "US"
# Birth dates outside [as_of - 120 years, as_of - 13 years] are impossible for a customer.
MAX_AGE_YEARS = 120
MIN_AGE_YEARS = 13
# Record timestamps before this day predate any CRM we ingest; after as_of + 1 day are future.
EARLIEST_RECORD_DATE = date(1990, 1, 1)

VALID, INVALID, MISSING = "valid", "invalid", "missing"

_SPACES = re.compile(r"\s+")
_WORD_SPLIT = re.compile(r"[\s\-']+")
_GMAIL_DOMAINS = ("gmail.com", "googlemail.com")

# Postal formats per country: (clean-up, validity pattern on the cleaned value).
_POSTAL_PATTERNS: dict[str, re.Pattern] = {
    "US": re.compile(r"^\d{5}(-\d{4})?$"),
    "GB": re.compile(r"^[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}$"),
    "CA": re.compile(r"^[A-Z]\d[A-Z] \d[A-Z]\d$"),
    "DE": re.compile(r"^\d{5}$"),
    "FR": re.compile(r"^\d{5}$"),
    "ES": re.compile(r"^\d{5}$"),
    "IT": re.compile(r"^\d{5}$"),
    "NL": re.compile(r"^\d{4} [A-Z]{2}$"),
    "AU": re.compile(r"^\d{4}$"),
}
_FIVE_DIGIT_COUNTRIES = ("US", "DE", "FR", "ES", "IT")


def _blank_to_none(value) -> str | None:
    if value is None or (isinstance(value, float) and value != value):  # NaN
        return None
    text = _SPACES.sub(" ", str(value)).strip()
    return text or None


def normalise_name(value: str | None) -> str | None:
    """Trim, collapse whitespace and capitalise a personal or place name; blank -> None.

    Values already capitalised word by word keep their case ('McDonald', 'DeLuca'); all upper,
    all lower or oddly cased values are title-cased: 'o'BRIEN ' -> "O'Brien",
    'mary  ann' -> 'Mary Ann', 'ANNE-MARIE' -> 'Anne-Marie'.
    """
    text = _blank_to_none(value)
    if text is None:
        return None
    words = [w for w in _WORD_SPLIT.split(text) if w]
    well_cased = (
        not (text.isupper() and len(text) > 1)
        and all(w[0].isupper() or not w[0].isalpha() for w in words)
        and all(not w[1:].isupper() or len(w) < 3 for w in words)
    )
    return text if well_cased else text.title()


def normalise_region(value: str | None) -> str | None:
    """Region codes of up to 3 characters upper case ('il' -> 'IL'); longer names as names."""
    text = _blank_to_none(value)
    if text is None:
        return None
    return text.upper() if len(text) <= 3 else normalise_name(text)


def normalise_text(value: str | None) -> str | None:
    """Trim and collapse whitespace (address lines keep their case); blank -> None."""
    return _blank_to_none(value)


def normalise_email(value: str | None) -> str | None:
    """Lower-cased email when its syntax is valid (email-validator, no DNS lookup), else None."""
    text = _blank_to_none(value)
    if text is None:
        return None
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.normalized.lower()


def email_match_key(email: str | None) -> str | None:
    """Matching key of a valid, lower-cased email: '+tag' dropped; Gmail local-part dots dropped."""
    if email is None:
        return None
    local, _, domain = email.partition("@")
    local = local.split("+", 1)[0]
    if domain in _GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def to_e164(value: str | None, country: str | None = None) -> str | None:
    """The phone number in E.164 ('+14155550123') when valid for its country, else None.

    `country` (ISO alpha-2) decides how a national number without '+' is read; None uses
    DEFAULT_COUNTRY.
    """
    text = _blank_to_none(value)
    if text is None:
        return None
    region = (country or DEFAULT_COUNTRY).upper()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_postal(value: str | None, country: str | None = None) -> str | None:
    """Postal code in the country's standard form, or None when it is not valid for the country.

    Countries without a known pattern keep the upper-cased, trimmed value.
    """
    text = _blank_to_none(value)
    if text is None:
        return None
    code = (country or DEFAULT_COUNTRY).upper()
    cleaned = text.upper()
    if code in _FIVE_DIGIT_COUNTRIES:
        cleaned = cleaned.replace(" ", "")
        head, sep, tail = cleaned.partition("-")
        if head.isdigit() and len(head) < 5:
            # Spreadsheets drop leading zeros of numeric-looking codes (02134 -> 2134).
            head = head.zfill(5)
        cleaned = head + (sep + tail if code == "US" and tail else "")
    elif code in ("GB", "CA", "NL"):
        compact = cleaned.replace(" ", "")
        inward = 2 if code == "NL" else 3
        cleaned = f"{compact[:-inward]} {compact[-inward:]}" if len(compact) > inward else compact
    pattern = _POSTAL_PATTERNS.get(code)
    if pattern is None:
        return cleaned
    return cleaned if pattern.match(cleaned) else None


def normalise_country(value: str | None) -> str | None:
    text = _blank_to_none(value)
    return text.upper() if text else None


def date_status(value, low: date, high: date) -> str:
    """'missing', 'valid' (low <= value <= high) or 'invalid' for a date or timestamp."""
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return MISSING
    day = value.date() if isinstance(value, datetime) else value
    return VALID if low <= day <= high else INVALID


_NOT_PHONE_CHARS = re.compile(r"[^\d+]")


def _phone_lookup_key(value) -> str | None:
    if not isinstance(value, str):
        return None
    if any(c.isalpha() for c in value):
        return value
    return _NOT_PHONE_CHARS.sub("", value) or value


def _map_unique(values: Iterable, fn: Callable) -> list:
    """fn over the distinct values only (raw columns repeat a lot), mapped back in order."""
    cache: dict = {}
    out = []
    for v in values:
        key = v if not (isinstance(v, float) and v != v) else None
        if key not in cache:
            cache[key] = fn(key)
        out.append(cache[key])
    return out


def _map_unique_pairs(left: Iterable, right: Iterable, fn: Callable) -> list:
    cache: dict = {}
    out = []
    for a, b in zip(left, right, strict=True):
        a = None if isinstance(a, float) and a != a else a
        b = None if isinstance(b, float) and b != b else b
        key = (a, b)
        if key not in cache:
            cache[key] = fn(a, b)
        out.append(cache[key])
    return out


def _status(raw: pd.Series, std: pd.Series) -> pd.Series:
    raw_missing = raw.map(_blank_to_none).isna()
    out = pd.Series(INVALID, index=raw.index, dtype=object)
    out[std.notna()] = VALID
    out[raw_missing] = MISSING
    return out


def standardise_records(raw: pd.DataFrame, as_of: date, default_country: str = DEFAULT_COUNTRY):
    """Standardised copy of source records (src_customers columns; any contact column may be
    absent). Returns one row per input row, in input order, with the columns described in the
    module docstring. `as_of` is the day the data ends: the upper bound of valid dates."""
    frame = raw.reset_index(drop=True)
    n = len(frame)

    def col(name: str) -> pd.Series:
        if name in frame.columns:
            return frame[name].astype(object).where(frame[name].notna(), None)
        return pd.Series([None] * n, dtype=object)

    out = pd.DataFrame(
        {"source_system": col("source_system"), "source_id": col("source_id").astype(str)}
    )
    country = pd.Series(_map_unique(col("country"), normalise_country), dtype=object)
    region_for_parsing = country.fillna(default_country.upper())
    for name in ("first_name", "last_name", "city", "region"):
        raw_values = col(name)
        fn = normalise_region if name == "region" else normalise_name
        out[name] = pd.Series(_map_unique(raw_values, fn), dtype=object)
        if name in ("first_name", "last_name"):
            out[f"{name}_std_syntax"] = (raw_values == out[name]) | out[name].isna()
    out["address_line"] = pd.Series(_map_unique(col("address_line"), normalise_text), dtype=object)

    raw_email = col("email")
    # Validate each distinct trimmed lower-cased address once (case never changes validity).
    email_lookup = raw_email.map(lambda v: v.strip().lower() if isinstance(v, str) else None)
    out["email"] = pd.Series(_map_unique(email_lookup, normalise_email), dtype=object)
    out["email_key"] = pd.Series(_map_unique(out["email"], email_match_key), dtype=object)
    out["email_status"] = _status(raw_email, out["email"])
    out["email_std_syntax"] = (raw_email == out["email"]) | out["email"].isna()

    raw_phone = col("phone")
    # Parse each distinct number once: '(415) 555-0123' and '415.555.0123' share the key
    # '4155550123' (values with letters, e.g. vanity numbers or 'ext', keep their own key).
    phone_lookup = raw_phone.map(_phone_lookup_key)
    out["phone"] = pd.Series(
        _map_unique_pairs(phone_lookup, region_for_parsing, to_e164), dtype=object
    )
    out["phone_status"] = _status(raw_phone, out["phone"])
    out["phone_std_syntax"] = (raw_phone == out["phone"]) | out["phone"].isna()

    raw_postal = col("postal_code")
    out["postal_code"] = pd.Series(
        _map_unique_pairs(raw_postal, region_for_parsing, normalise_postal), dtype=object
    )
    out["postal_code_status"] = _status(raw_postal.astype(object), out["postal_code"])
    out["country"] = country

    birth_low = date(as_of.year - MAX_AGE_YEARS, as_of.month, min(as_of.day, 28))
    birth_high = date(as_of.year - MIN_AGE_YEARS, as_of.month, min(as_of.day, 28))
    record_high = date.fromordinal(as_of.toordinal() + 1)
    for name, low, high in (
        ("birth_date", birth_low, birth_high),
        ("created_at", EARLIEST_RECORD_DATE, record_high),
        ("updated_at", EARLIEST_RECORD_DATE, record_high),
    ):
        values = pd.to_datetime(col(name), errors="coerce")
        days = values.dt.normalize()
        in_range = (days >= pd.Timestamp(low)) & (days <= pd.Timestamp(high))
        status = pd.Series(np.where(in_range, VALID, INVALID), dtype=object)
        status[values.isna().to_numpy()] = MISSING
        kept = values.where(status == VALID)
        out[name] = kept.dt.date if name == "birth_date" else kept
        out[f"{name}_status"] = status
    return out


STD_COLUMNS_SQL = """
SELECT source_system, source_id, first_name, last_name, email, phone, address_line, city,
       region, postal_code, country, birth_date, created_at, updated_at
FROM src_customers
"""


def standardise_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Build `std_customers` from `src_customers` (raw values are never overwritten).

    Setting: `standardise.default_country` (ISO alpha-2, default 'US') reads phone numbers and
    postal codes of records without a country.
    """
    raw = con.execute(STD_COLUMNS_SQL).df()
    default_country = str(ctx.param("standardise", "default_country", DEFAULT_COUNTRY))
    std = standardise_records(raw, ctx.as_of, default_country)
    std["birth_date"] = pd.to_datetime(std["birth_date"]).astype("datetime64[us]")
    rows = replace_table(con, "std_customers", std)
    con.execute(
        "CREATE OR REPLACE TABLE std_customers AS SELECT * REPLACE "
        "(CAST(birth_date AS DATE) AS birth_date, CAST(created_at AS TIMESTAMP) AS created_at, "
        "CAST(updated_at AS TIMESTAMP) AS updated_at) FROM std_customers"
    )
    return rows
