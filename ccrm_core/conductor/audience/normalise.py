"""How each ad platform wants a person's identifiers written before SHA-256 hashing.

A platform matches an upload by hashing its own users' identifiers the same way, so one
character of difference (a capital letter, a `+`, a dot in a Gmail address) is a lost match.
Each function takes one raw value and returns the normalised text, or None when the value cannot
be used (empty, not an email, a phone without its country code).

Google Ads Customer Match (Google Ads API `UserIdentifier` / `OfflineUserAddressInfo`, and the
Customer Match and enhanced-conversions "normalize and hash" guides):
- email: trim, lower-case; for gmail.com and googlemail.com remove every `.` before the `@`;
- phone: E.164, `+` then country code and number, no spaces or punctuation;
- first name: lower-case, no spaces before or after, runs of spaces inside kept as one;
- last name: the same, and no punctuation;
- country: ISO 3166-1 alpha-2, upper-case, not hashed; zip: not hashed (US: the 5 digits).

Meta Custom Audiences (Marketing API "Hashing and normalizing data" for customer lists; the
Business SDK's `CustomAudience.normalize_key`):
- EMAIL: trim, lower-case; PHONE: digits only with the country code, no `+`, no leading zeros;
- FN, LN, CT: lower-case letters only (no spaces, punctuation or digits; accented letters kept,
  UTF-8); ST: the same (a US state is its 2-letter code); COUNTRY: 2 lower-case letters;
- ZIP: lower-case, no spaces, the part before a `-`; US the first 5 digits; UK area, district and
  sector (the outward code and the first character of the inward code: 'SW1A 1AA' -> 'sw1a1');
- DOBY: the 4-digit year of birth; GEN: 'f' or 'm'.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")
_GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


def sha256_hex(value: str | None) -> str | None:
    """SHA-256 (lower-case hex) of the UTF-8 bytes of an already normalised value."""
    if value is None or value == "":
        return None
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _text(value: object) -> str | None:
    """A stripped string, or None for missing values (None, NaN, empty)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = unicodedata.normalize("NFC", str(value)).strip()
    return text or None


def _email(value: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    text = re.sub(r"\s+", "", text).lower()
    return text if _EMAIL.match(text) else None


def _international_digits(value: object) -> str | None:
    """The digits of a phone number written with its country code ('+' or '00' first), without
    leading zeros; None when the number has no country code or is not 7-15 digits."""
    text = _text(value)
    if text is None:
        return None
    text = _PHONE_PUNCTUATION.sub("", text)
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    else:
        return None  # a national number: its country code is unknown here
    if not text.isdigit():
        return None
    text = text.lstrip("0")
    return text if _E164.match("+" + text) else None


def _country(value: object) -> str | None:
    text = _text(value)
    return text.upper() if text and _COUNTRY.match(text) else None


def _letters(value: object) -> str | None:
    """Lower-case letters only (any script), everything else dropped."""
    text = _text(value)
    if text is None:
        return None
    kept = "".join(ch for ch in text.lower() if ch.isalpha())
    return kept or None


# -- Google Ads Customer Match ------------------------------------------------------------------


def google_email(value: object) -> str | None:
    """' Test.User@Gmail.com ' -> 'testuser@gmail.com'; 'Jane.Doe@Example.com' ->
    'jane.doe@example.com' (dots are removed for Gmail and Googlemail only)."""
    email = _email(value)
    if email is None:
        return None
    local, _, domain = email.rpartition("@")
    if domain in _GMAIL_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}" if local else None


def google_phone(value: object) -> str | None:
    """'+1 (800) 555-0100' -> '+18005550100' (E.164 with '+')."""
    digits = _international_digits(value)
    return "+" + digits if digits else None


def google_first_name(value: object) -> str | None:
    """' Mary  Ann ' -> 'mary ann'."""
    text = _text(value)
    return re.sub(r"\s+", " ", text.lower()) if text else None


def google_last_name(value: object) -> str | None:
    """Punctuation removed, runs of spaces inside kept as one: "O'Brien-Smith" ->
    'obriensmith', ' Van  Dyke ' -> 'van dyke'."""
    text = _text(value)
    if text is None:
        return None
    kept = "".join(ch for ch in text.lower() if ch.isalnum() or ch.isspace())
    kept = re.sub(r"\s+", " ", kept).strip()
    return kept or None


def google_country(value: object) -> str | None:
    """'us' -> 'US' (ISO 3166-1 alpha-2, sent in clear)."""
    return _country(value)


def google_zip(value: object, country: object = None) -> str | None:
    """Postal code in clear: US '94043-1351' -> '94043'; elsewhere trimmed and upper-cased
    ('sw1a 1aa' -> 'SW1A 1AA')."""
    text = _text(value)
    if text is None:
        return None
    if _country(country) == "US":
        digits = re.sub(r"\D", "", text)
        return digits[:5] if len(digits) >= 5 else None
    return re.sub(r"\s+", " ", text.upper())


# -- Meta Custom Audiences ----------------------------------------------------------------------


def meta_email(value: object) -> str | None:
    """' John_Smith@Gmail.com ' -> 'john_smith@gmail.com' (Gmail dots kept)."""
    return _email(value)


def meta_phone(value: object) -> str | None:
    """'+1 (616) 954-1234' -> '16169541234' (digits with the country code, no '+')."""
    return _international_digits(value)


def meta_name(value: object) -> str | None:
    """FN and LN: "Mary-Ann" -> 'maryann', 'José' -> 'josé'."""
    return _letters(value)


def meta_city(value: object) -> str | None:
    """CT: 'Menlo Park' -> 'menlopark'."""
    return _letters(value)


def meta_state(value: object) -> str | None:
    """ST: 'CA' -> 'ca'; a region name outside the US: 'Auvergne-Rhône-Alpes' ->
    'auvergnerhônealpes'."""
    return _letters(value)


def meta_country(value: object) -> str | None:
    """COUNTRY: 'US' -> 'us'."""
    country = _country(value)
    return country.lower() if country else None


def meta_zip(value: object, country: object = None) -> str | None:
    """ZIP: US '94025-1234' -> '94025'; UK 'SW1A 1AA' -> 'sw1a1'; elsewhere 'T3A 9J4' ->
    't3a9j4'."""
    text = _text(value)
    if text is None:
        return None
    code = _country(country)
    if code == "US":
        digits = re.sub(r"\D", "", text)
        return digits[:5] if len(digits) >= 5 else None
    if code == "GB":
        parts = text.lower().split()
        if len(parts) == 2 and parts[1]:
            return parts[0] + parts[1][0]
    compact = re.sub(r"\s+", "", text.lower()).split("-")[0]
    return compact or None


def meta_birth_year(value: object) -> str | None:
    """DOBY: a date (or 'YYYY-MM-DD' text) -> 'YYYY'."""
    if value is None:
        return None
    if isinstance(value, date):
        return f"{value.year:04d}"
    text = _text(value)
    if text is None:
        return None
    match = re.match(r"^(\d{4})", text)
    return match.group(1) if match else None


def meta_gender(value: object) -> str | None:
    """GEN: 'Female' / 'F' -> 'f', 'male' -> 'm'; anything else None."""
    text = _text(value)
    if text is None:
        return None
    first = text.lower()[0]
    return first if first in ("f", "m") else None
