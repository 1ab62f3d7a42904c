"""Search keys: how text becomes a lookup key, the same rules in Python (queries) and SQL
(index build), the order-preserving prefix code of a key, and what a search box text can mean.

Pure functions (no database): `search_index_stage` writes keys with the SQL twins, `search`
reads a query with the Python ones, so both sides agree (tests compare them).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Normalisation: the same rules in Python (queries) and SQL (index build).


def normalise_text(text: str | None) -> str:
    """Lower-case, accents and apostrophes removed, other non-alphanumerics as single spaces.
    Letters of every script count (Мария, 李小龙, محمد are searchable like Maria)."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    plain = re.sub(r"['’`]", "", plain)
    return re.sub(r"[\W_]+", " ", plain).strip()


def phone_digits(text: str | None) -> str:
    """The digits of a phone number as typed, last 10 kept (national number incl. area code)."""
    return re.sub(r"\D", "", text or "")[-10:]


def id_key(text: str | None) -> str:
    """An identifier as a lookup key: lower-cased letters and digits only."""
    return re.sub(r"[\W_]", "", (text or "").lower())


# SQL twins of the functions above (column expressions over a column named by our own code).
def _sql_text(col: str) -> str:
    return (
        f"trim(regexp_replace(regexp_replace(strip_accents(lower({col})), '[''’`]', '', 'g'), "
        "'[^\\p{L}\\p{N}]+', ' ', 'g'))"
    )


def _sql_id(col: str) -> str:
    return f"regexp_replace(lower({col}), '[^\\p{{L}}\\p{{N}}]', '', 'g')"


def _sql_phone_key(col: str) -> str:
    return f"reverse(right(regexp_replace({col}, '[^0-9]', '', 'g'), 10))"


@dataclass(frozen=True)
class SearchQuery:
    """What a search box text can mean. Empty fields mean 'not this kind of query'."""

    text: str
    words: tuple[str, ...] = ()  # name words (2+ characters)
    initials: tuple[str, ...] = ()  # single letters ("e." in "e. brooks"): first-name initials
    email: str = ""  # lower-cased, when the text holds an '@'
    email_prefix: str = ""  # a single word that may start an email
    phone: str = ""  # the last 10 digits, when the text is mostly digits (4+)
    ident: str = ""  # id key, when the text is one token that may be an id


def parse_query(text: str) -> SearchQuery:
    """Read a search box text: which kinds of lookup it warrants (pure, no database)."""
    raw = (text or "").strip()
    if not raw:
        return SearchQuery(text="")
    email = ""
    words_source = raw
    if "@" in raw:
        email = raw.lower().replace(" ", "")
        # the local part often holds the name ("jon.smith@..."): search it as words too
        words_source = raw.split("@", 1)[0]
    parts = normalise_text(words_source).split()
    words = tuple(w for w in parts if len(w) >= 2 and w.isalpha())
    # a single letter next to a name is an initial; alone it says too little to search on
    initials = tuple(dict.fromkeys(w for w in parts if len(w) == 1 and w.isalpha()))
    if not words or email:
        initials = ()
    compact = re.sub(r"[\s().+\-/]", "", raw)
    digits = re.sub(r"\D", "", raw)
    phone = ""
    if len(digits) >= 4 and compact and len(digits) / len(compact) >= 0.8:
        phone = digits[-10:]
    single = " " not in raw
    ident = id_key(raw) if single and len(id_key(raw)) >= 3 else ""
    email_prefix = raw.lower() if single and not email and len(raw) >= 3 else ""
    return SearchQuery(
        text=raw,
        words=words,
        initials=initials,
        email=email,
        email_prefix=email_prefix,
        phone=phone,
        ident=ident,
    )


# ---------------------------------------------------------------------------------------------
# Prefix codes


def _sql_code(col: str) -> str:
    """SQL twin of `prefix_code`: the first 8 characters of a key as an order-preserving
    UBIGINT (character codes capped at 255).

    An ASCII key (as many bytes as characters) has its characters as its UTF-8 bytes, so its
    code is the hex of its first 8 bytes, zero-padded: one cast instead of eight substrings,
    for the million-row index build. Other keys add up their capped character codes."""
    per_character = " + ".join(
        f"(least(ascii(substr({col}, {i + 1}, 1)), 255)::UBIGINT << {8 * (7 - i)})"
        for i in range(8)
    )
    return (
        f"CASE WHEN strlen({col}) = length({col}) "
        f"THEN ('0x' || rpad(hex(left({col}, 8)), 16, '0'))::UBIGINT ELSE {per_character} END"
    )


def prefix_code(prefix: str) -> tuple[int, int]:
    """[low, high] of the UBIGINT codes (see `_sql_code`) of every key that starts with
    `prefix`; a prefix longer than 8 characters gives the codes of its first 8 (check the rest
    with starts_with)."""
    head = prefix[:8]
    low = sum(min(ord(c), 255) << (8 * (7 - i)) for i, c in enumerate(head))
    return low, low + (1 << (8 * (8 - len(head)))) - 1
