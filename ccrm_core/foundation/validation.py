"""Checks for text that users type or send: one way to refuse a bad name and to quote user text
in a message.

User text is always data: it travels to SQL as a parameter, never as SQL. What is checked here
is what a person reads back later — a saved segment or scenario name, an uploaded file's name —
and what a message quotes: both must stay one readable line, so control characters (escape
sequences, line breaks, NUL) and invisible formatting characters (e.g. U+202E, which reverses
the text after it) are refused in names and escaped in messages. Letters of any script, digits,
punctuation, symbols and emoji are fine.
"""

from __future__ import annotations

import unicodedata

from ccrm_core.foundation.rendering import shortened

# Unicode categories refused in names: control (Cc), format (Cf: bidi overrides, zero-width
# characters), surrogate (Cs), private use (Co), unassigned (Cn), line and paragraph separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def clean_name(
    text: object,
    what: str,
    max_len: int,
    error: type[Exception] = ValueError,
    example: str | None = None,
) -> str:
    """`text` trimmed of surrounding spaces, as a name to store and show.

    Raises `error` with a one-line message starting with `what` (e.g. "scenario name") when the
    text is not a string, is empty, is longer than `max_len` characters, or holds a control or
    invisible formatting character (the message names its code point and 1-based position).
    `example` is offered in the message for an empty name.
    """
    if not isinstance(text, str):
        raise error(f"{what} must be text, got {type(text).__name__}")
    clean = text.strip()
    if not clean:
        hint = f" such as {example!r}" if example else ""
        raise error(f"{what} is empty; type a name{hint}")
    if len(clean) > max_len:
        raise error(f"{what} is {len(clean):,} characters long; use at most {max_len}")
    for pos, ch in enumerate(clean, start=1):
        if unicodedata.category(ch) in REFUSED_CATEGORIES:
            raise error(
                f"{what} has a control or invisible character (U+{ord(ch):04X}) at position "
                f"{pos}; use letters, digits, spaces and punctuation"
            )
    return clean


def quoted(text: object, limit: int = 60) -> str:
    """User text quoted for a one-line message: a Python string literal (control, line-break
    and invisible characters escaped, e.g. '\\x1b'), cut to `limit` characters with '…'."""
    return repr(shortened(text, limit))


def label(text: object, limit: int = 80) -> str:
    """User text as the subject of a message (e.g. a file name before a colon): unchanged when
    it is printable and at most `limit` characters, else `quoted`."""
    value = str(text)
    if value.isprintable() and len(value) <= limit:
        return value
    return quoted(value, limit)
