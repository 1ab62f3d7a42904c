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
repeated values cost nothing (pandas.factorize, mapped back with numpy). Speed at a million
customers: phone numbers, the slowest rule, are parsed in forked worker processes, one per core, while the
main process does the rest (it alone touches DuckDB); plain lower-case ASCII emails and plain
North American numbers take exact fast paths (_plain_email_ok, _to_e164_fast) that give what
email-validator / phonenumbers.parse give, everything else goes through those libraries.
Output is identical, row for row, to the one-value-at-a-time rules above.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date, datetime
from multiprocessing import get_context

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


# Plain lower-case ASCII addresses are the ones email-validator (check_deliverability=False,
# default options) returns unchanged: a dot-atom local part; hostname labels of letters, digits
# and inner hyphens, at most 63 characters, no '--' (so no punycode); a TLD ending in a letter;
# at most 254 characters in all; not under a special-use domain (email_validator's
# SPECIAL_USE_DOMAIN_NAMES). Anything else (upper case, quotes, Unicode, odd punctuation...) goes
# through email-validator itself. The tests check both agree.
_ATEXT = r"a-z0-9_!#$%&'*+\-/=?^`{|}~"
_PLAIN_EMAIL = re.compile(
    r"(?=.{1,254}\Z)"
    rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@(?!.*--)"
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z0-9][a-z0-9-]{0,61})?[a-z]"
    r"(?<!\.arpa)(?<!\.invalid)(?<!\.local)(?<!\.localhost)(?<!\.onion)(?<!\.test)\Z"
)


def _plain_email_ok(text: str) -> bool:
    """True when `text` is a plain lower-case ASCII address that email-validator accepts and
    returns unchanged (see _PLAIN_EMAIL)."""
    return _PLAIN_EMAIL.match(text) is not None


def normalise_email(value: str | None) -> str | None:
    """Lower-cased email when its syntax is valid (email-validator, no DNS lookup), else None."""
    text = _blank_to_none(value)
    if text is None:
        return None
    if _plain_email_ok(text):
        return text
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


# North American numbering plan (country code 1): the regions whose national numbers are 10
# digits, the first 2-9, with no national prefix or IDD prefix that could start such a number.
_NANP_DEFAULT_REGIONS = ("US", "CA")
_NANP_FIRST_DIGITS = frozenset("23456789")
# is_valid_number looks a +1 number up region by region, US first (it has no leading digits):
# a number valid for the US is valid; others go through is_valid_number.
_US_FIRST_FOR_CODE_1 = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(1, ())[:1] == ("US",)


def _nanp_national_number(text: str, region: str) -> str | None:
    """The 10-digit national number when phonenumbers.parse(text, region) would read `text`
    as +1 and those digits unchanged: '+1' and 10 ASCII digits (any region), or 10 ASCII digits
    in the US or Canada; the national number never starts with 0 or 1. Else None."""
    if not text.isascii():
        return None
    if len(text) == 12 and text.startswith("+1"):
        national = text[2:]
    elif len(text) == 10 and region in _NANP_DEFAULT_REGIONS:
        national = text
    else:
        return None
    if national.isdigit() and national[0] in _NANP_FIRST_DIGITS:
        return national
    return None


def _type_descs(region: str) -> tuple[tuple[frozenset, re.Pattern], ...] | None:
    """The number descriptions phonenumbers' _number_type_helper tries for `region`, as
    (possible lengths, compiled pattern): the general one first, then every type it checks
    (mobile only when its pattern differs from fixed line, as there). None when absent."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    if meta is None:
        return None
    descs = [meta.general_desc, meta.premium_rate, meta.toll_free, meta.shared_cost, meta.voip]
    descs += [meta.personal_number, meta.pager, meta.uan, meta.voicemail, meta.fixed_line]
    if not meta.same_mobile_and_fixed_line_pattern:
        descs.append(meta.mobile)
    return tuple(
        (frozenset(d.possible_length or ()), re.compile(d.national_number_pattern))
        for d in descs
        if d is not None and d.national_number_pattern
    )


_US_DESCS = _type_descs("US") if _US_FIRST_FOR_CODE_1 else None


def _valid_for_us(national: str) -> bool:
    """phonenumbers.is_valid_number_for_region(+1 national, 'US'): the number matches the US
    general description and one of its types (lengths, then the whole pattern)."""
    general, *types = _US_DESCS
    n = len(national)
    if (general[0] and n not in general[0]) or not general[1].fullmatch(national):
        return False
    return any((not lengths or n in lengths) and p.fullmatch(national) for lengths, p in types)


def _to_e164_fast(value: str | None, country: str | None = None) -> str | None:
    """to_e164, the same result, with parse skipped for plain North American numbers."""
    text = _blank_to_none(value)
    if text is None:
        return None
    national = _nanp_national_number(text, (country or DEFAULT_COUNTRY).upper())
    if national is None:
        return to_e164(text, country)
    if _US_DESCS and _valid_for_us(national):
        # E.164 of +1 and a national number without leading zeros: '+1' then its digits.
        return "+1" + national
    number = phonenumbers.PhoneNumber(country_code=1, national_number=int(national))
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


_ASCII_LETTER = re.compile(r"[A-Za-z]")


def _phone_lookup_key(value) -> str | None:
    if not isinstance(value, str):
        return None
    if value.isascii():
        if _ASCII_LETTER.search(value):  # for ASCII, str.isalpha is exactly A-Z, a-z
            return value
    elif any(c.isalpha() for c in value):
        return value
    return _NOT_PHONE_CHARS.sub("", value) or value


# Distinct values at or above which the slow validations (phonenumbers, the email-validator
# fallback) run in worker processes, one per core; below it the start-up costs more than it saves.
PARALLEL_MIN_VALUES = 20_000
_CHUNKS_PER_WORKER = 4


def _workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _apply_chunk(fn: Callable, args: list[tuple]) -> list:
    return [fn(*a) for a in args]


# Work handed to forked workers: set before the pool forks them, so they inherit it and only
# (token, start, stop) is sent to them (pickling every argument would slow the main process).
_SHARED: dict[int, tuple[Callable, list[tuple]]] = {}


def _apply_shared(token: int, start: int, stop: int) -> list:
    fn, args = _SHARED[token]
    return [fn(*a) for a in args[start:stop]]


class _Pending:
    """[fn(*a) for a in args] started now in worker processes (when there are at least
    `min_parallel` args and more than one core), collected by result(); else run by result()."""

    def __init__(self, fn: Callable, args: list[tuple], min_parallel: int | None = None):
        self.fn, self.args = fn, args
        self.pool: ProcessPoolExecutor | None = None
        self.futures: list = []
        limit = PARALLEL_MIN_VALUES if min_parallel is None else min_parallel
        workers = _workers()
        if workers < 2 or len(args) < max(limit, 2) or threading.active_count() > 1:
            # (other Python threads, as in the app's server, may hold a lock, e.g. the import
            # lock phonenumbers needs for its lazily loaded metadata, that a fork would copy
            # held: the work then runs here)
            return
        try:
            context = get_context("fork")
        except ValueError:  # no fork on this platform
            return
        size = -(-len(args) // (workers * _CHUNKS_PER_WORKER))
        self.token = id(self)
        _SHARED[self.token] = (fn, args)
        # ProcessPoolExecutor forks all its workers at the first submit (fork context).
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        self.futures = [
            self.pool.submit(_apply_shared, self.token, i, i + size)
            for i in range(0, len(args), size)
        ]

    def result(self) -> list:
        if self.pool is None:
            return _apply_chunk(self.fn, self.args)
        try:
            return [value for future in self.futures for value in future.result()]
        except BrokenProcessPool:  # a worker died (killed, out of memory): do it here
            return _apply_chunk(self.fn, self.args)
        finally:
            self.close()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
            _SHARED.pop(self.token, None)


def _apply_all(fn: Callable, args: list[tuple], min_parallel: int | None = None) -> list:
    """[fn(*a) for a in args], in worker processes when there are many (see _Pending)."""
    return _Pending(fn, args, min_parallel).result()


def _codes(values: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct values) of a column: codes index the distinct values, -1 = missing
    (None or NaN)."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    return codes, np.asarray(uniques, dtype=object)


def _take(results: list, codes: np.ndarray, missing) -> np.ndarray:
    """Results per distinct value mapped back to rows (code -1 -> `missing`)."""
    table = np.empty(len(results) + 1, dtype=object)
    table[: len(results)] = results
    table[-1] = missing
    return table[codes]


def _map_unique(values: Iterable, fn: Callable) -> np.ndarray:
    """fn over the distinct values only (raw columns repeat a lot), mapped back in order;
    None and NaN are both passed as None."""
    codes, uniques = _codes(values)
    return _take([fn(u) for u in uniques], codes, fn(None))


def _distinct_pairs(left: Iterable, right: Iterable) -> tuple[np.ndarray, list[tuple]]:
    """(codes, distinct (a, b) pairs) of two columns: codes index the pairs; None/NaN -> None."""
    left_codes, left_uniques = _codes(left)
    right_codes, right_uniques = _codes(right)
    if len(left_codes) != len(right_codes):
        raise ValueError("left and right differ in length")
    # Index 0 is the missing value, so codes + 1 index these (code -1 -> None).
    left_all = np.concatenate([np.array([None], dtype=object), left_uniques])
    right_all = np.concatenate([np.array([None], dtype=object), right_uniques])
    width = len(right_all)
    pair = (left_codes.astype(np.int64) + 1) * width + (right_codes.astype(np.int64) + 1)
    pair_codes, pairs = pd.factorize(pair)
    return pair_codes, [(left_all[p // width], right_all[p % width]) for p in pairs.tolist()]


def _map_unique_pairs(left: Iterable, right: Iterable, fn: Callable) -> np.ndarray:
    """fn(a, b) over the distinct (a, b) pairs only, mapped back in order (None/NaN -> None)."""
    codes, pairs = _distinct_pairs(left, right)
    return _take([fn(a, b) for a, b in pairs], codes, None)


def _is_blank(value) -> bool:
    """_blank_to_none(value) is None: None, NaN or only whitespace (regex \\s and str.strip
    both use Python's Unicode whitespace, so stripping is enough)."""
    if isinstance(value, str):
        return not value.strip()
    return _blank_to_none(value) is None


def _status(raw: pd.Series, std: pd.Series) -> pd.Series:
    raw_missing = pd.Series(_map_unique(raw, _is_blank).astype(bool), index=raw.index)
    out = pd.Series(INVALID, index=raw.index, dtype=object)
    out[std.notna()] = VALID
    out[raw_missing] = MISSING
    return out


def _email_lookup_key(value) -> str | None:
    return value.strip().lower() if isinstance(value, str) else None


def _normalise_emails(lookups: np.ndarray, min_parallel: int | None = None) -> list:
    """normalise_email over distinct lookup keys: plain addresses on the fast path here, the
    rest through email-validator (in worker processes when there are many)."""
    results: list = [None] * len(lookups)
    slow: list[int] = []
    for i, value in enumerate(lookups):
        # A lookup key is stripped already; a plain address has no whitespace to collapse.
        if _plain_email_ok(value):
            results[i] = value
        elif _blank_to_none(value) is not None:
            slow.append(i)
    checked = _apply_all(normalise_email, [(lookups[i],) for i in slow], min_parallel)
    for i, email in zip(slow, checked, strict=True):
        results[i] = email
    return results


def _dates(frame: pd.DataFrame, name: str, col: Callable) -> pd.Series:
    """pd.to_datetime(col(name), errors='coerce'), without the round trip through Python
    objects when the column already holds (tz-naive) datetimes: same values, same unit."""
    if name in frame.columns:
        column = frame[name]
        dtype = column.dtype
        if isinstance(dtype, np.dtype) and dtype.kind == "M" and column.notna().any():
            return pd.Series(column.to_numpy(copy=True), dtype=dtype)
    return pd.to_datetime(col(name), errors="coerce")


def standardise_records(raw: pd.DataFrame, as_of: date, default_country: str = DEFAULT_COUNTRY):
    """Standardised copy of source records (src_customers columns; any contact column may be
    absent). Returns one row per input row, in input order, with the columns described in the
    module docstring. `as_of` is the day the data ends: the upper bound of valid dates."""
    return _standardise(raw, as_of, default_country)


def _standardise(
    raw: pd.DataFrame,
    as_of: date,
    default_country: str = DEFAULT_COUNTRY,
    birth_date_objects: bool = True,
    min_parallel: int | None = None,
) -> pd.DataFrame:
    """standardise_records; `birth_date_objects=False` leaves `birth_date` as datetime64[us]
    (midnight) instead of `datetime.date` objects. Each rule runs once per distinct raw value
    (pandas.factorize, mapped back with numpy); phone numbers, the slowest, are parsed in
    worker processes while this process does the rest (see _Pending, PARALLEL_MIN_VALUES)."""
    frame = raw.reset_index(drop=True)
    n = len(frame)

    def col(name: str) -> pd.Series:
        if name in frame.columns:
            return frame[name].astype(object).where(frame[name].notna(), None)
        return pd.Series([None] * n, dtype=object)

    country = pd.Series(_map_unique(col("country"), normalise_country), dtype=object)
    region_for_parsing = country.fillna(default_country.upper())

    raw_phone = col("phone")
    # Parse each distinct number once: '(415) 555-0123' and '415.555.0123' share the key
    # '4155550123' (values with letters, e.g. vanity numbers or 'ext', keep their own key).
    phone_codes, phone_pairs = _distinct_pairs(
        _map_unique(raw_phone, _phone_lookup_key), region_for_parsing
    )
    phones = _Pending(_to_e164_fast, phone_pairs, min_parallel)
    try:
        out = pd.DataFrame(
            {"source_system": col("source_system"), "source_id": col("source_id").astype(str)}
        )
        for name in ("first_name", "last_name", "city", "region"):
            raw_values = col(name)
            fn = normalise_region if name == "region" else normalise_name
            out[name] = pd.Series(_map_unique(raw_values, fn), dtype=object)
            if name in ("first_name", "last_name"):
                out[f"{name}_std_syntax"] = (raw_values == out[name]) | out[name].isna()
        out["address_line"] = pd.Series(
            _map_unique(col("address_line"), normalise_text), dtype=object
        )

        raw_email = col("email")
        # Validate each distinct trimmed lower-cased address once (case never changes validity).
        lookup_codes, lookups = _codes(_map_unique(raw_email, _email_lookup_key))
        out["email"] = pd.Series(
            _take(_normalise_emails(lookups, min_parallel), lookup_codes, None), dtype=object
        )
        out["email_key"] = pd.Series(_map_unique(out["email"], email_match_key), dtype=object)
        out["email_status"] = _status(raw_email, out["email"])
        out["email_std_syntax"] = (raw_email == out["email"]) | out["email"].isna()

        # Work that does not need the phones, done while the workers parse them.
        raw_postal = col("postal_code")
        postal = pd.Series(
            _map_unique_pairs(raw_postal, region_for_parsing, normalise_postal), dtype=object
        )
        postal_status = _status(raw_postal.astype(object), postal)

        birth_low = date(as_of.year - MAX_AGE_YEARS, as_of.month, min(as_of.day, 28))
        birth_high = date(as_of.year - MIN_AGE_YEARS, as_of.month, min(as_of.day, 28))
        record_high = date.fromordinal(as_of.toordinal() + 1)
        dates = {}
        for name, low, high in (
            ("birth_date", birth_low, birth_high),
            ("created_at", EARLIEST_RECORD_DATE, record_high),
            ("updated_at", EARLIEST_RECORD_DATE, record_high),
        ):
            values = _dates(frame, name, col)
            days = values.dt.normalize()
            in_range = (days >= pd.Timestamp(low)) & (days <= pd.Timestamp(high))
            status = pd.Series(np.where(in_range, VALID, INVALID), dtype=object)
            status[values.isna().to_numpy()] = MISSING
            kept = values.where(status == VALID)
            if name == "birth_date":
                kept = kept.dt.date if birth_date_objects else days.where(status == VALID)
            dates[name] = (kept, status)

        out["phone"] = pd.Series(_take(phones.result(), phone_codes, None), dtype=object)
    finally:
        phones.close()
    out["phone_status"] = _status(raw_phone, out["phone"])
    out["phone_std_syntax"] = (raw_phone == out["phone"]) | out["phone"].isna()
    out["postal_code"] = postal
    out["postal_code_status"] = postal_status
    out["country"] = country
    for name, (kept, status) in dates.items():
        out[name] = kept
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
    std = _standardise(raw, ctx.as_of, default_country, birth_date_objects=False)
    std["birth_date"] = std["birth_date"].astype("datetime64[us]")
    rows = replace_table(con, "std_customers", std)
    con.execute(
        "CREATE OR REPLACE TABLE std_customers AS SELECT * REPLACE "
        "(CAST(birth_date AS DATE) AS birth_date, CAST(created_at AS TIMESTAMP) AS created_at, "
        "CAST(updated_at AS TIMESTAMP) AS updated_at) FROM std_customers"
    )
    return rows
