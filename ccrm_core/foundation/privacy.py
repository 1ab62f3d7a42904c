"""PII masking and hashing, shared by every page and export.

Masks keep just enough to recognise a record without exposing it:
email 'jane.doe@example.com' -> 'j***@example.com'; phone '+14155550123' -> '***-***-0123';
name 'Jane' -> 'J***'. Hashes are SHA-256 hex of the normalised value, the format ad platforms
(Google Customer Match, Meta custom audiences) accept.
"""

from __future__ import annotations

import hashlib
import re

import pandas as pd

PII_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "address_line",
    "city",  # part of the address: masked with it (first letter kept, like a name)
    "postal_code",
    "birth_date",
)


def _missing(value) -> bool:
    """None, NaN, pandas NA (pandas 3 fills missing strings with NaN) or an empty string."""
    if value is None:
        return True
    if isinstance(value, str):
        return value == ""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # arrays and other non-scalars are not missing values
        return False


def _blank(value):
    """What a missing value is shown as: '' stays '', every other kind of missing is None."""
    return value if isinstance(value, str) else None


def mask_email(email: str | None) -> str | None:
    if _missing(email):
        return _blank(email)
    local, sep, domain = str(email).partition("@")
    if not sep:
        return (local[:1] + "***") if local else "***"
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str | None) -> str | None:
    if _missing(phone):
        return _blank(phone)
    digits = [c for c in str(phone) if c.isdigit()]
    return "***-***-" + "".join(digits[-4:]) if len(digits) >= 4 else "***"


def mask_name(name: str | None) -> str | None:
    if _missing(name):
        return _blank(name)
    return str(name)[:1] + "***"


def mask_full_name(name: str | None) -> str | None:
    """'Jane van Doe' -> 'J*** v*** D***': every word masked like mask_name."""
    if _missing(name):
        return _blank(name)
    return " ".join(mask_name(word) for word in str(name).split()) or "***"


# An e-mail address, and a run of 7+ digits with the separators phone numbers are written with.
_EMAIL_IN_TEXT = re.compile(r"[^\s@'\"<>(),;:]+@[^\s@'\"<>(),;:]+\.[A-Za-z]{2,}")
_PHONE_IN_TEXT = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d")
_DATE_IN_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")


def mask_text(text: str | None) -> str | None:
    """Free text (an error message, a note) with e-mail addresses and phone numbers in it
    masked: 'bad jane.doe@example.com' -> 'bad j***@example.com'. Names cannot be found in
    free text, so messages must not quote name or address values (ingest shortens them)."""
    if _missing(text):
        return _blank(text)

    def phone(m: re.Match) -> str:
        found = m.group(0)
        if sum(c.isdigit() for c in found) < 7 or _DATE_IN_TEXT.match(found):
            return found  # short numbers, dates and timestamps are not phone numbers
        return mask_phone(found)

    return _PHONE_IN_TEXT.sub(phone, _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)), text))


def mask_value(column: str, value):
    """Mask one value by its column name; non-PII columns pass through."""
    if _missing(value):
        return _blank(value)
    if column == "name":
        return mask_full_name(value)
    if column == "email":
        return mask_email(value)
    if column == "phone":
        return mask_phone(value)
    if column in ("first_name", "last_name", "city"):
        return mask_name(value)
    if column in ("address_line", "postal_code", "birth_date"):
        return "***"
    return value


def mask_frame(frame, columns=PII_COLUMNS):
    """A copy of a DataFrame with its PII columns masked."""
    out = frame.copy()
    for col in columns:
        if col in out.columns:
            out[col] = [mask_value(col, v) for v in out[col]]
    return out


def sha256_hex(value: str | None) -> str | None:
    """SHA-256 of an already normalised value (lower-cased email, E.164 phone)."""
    if _missing(value):
        return None
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
