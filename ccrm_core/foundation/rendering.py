"""Text that did not come from the code, made safe to show: one way to put data values, names
users typed, URL parameters and file names into markdown, into Plotly figures and into messages.

Streamlit renders markdown in far more places than `st.markdown`: captions, alerts (`st.info`,
`st.warning`, `st.error`, `st.success`), headers, `st.metric` labels, values and deltas, the
labels of widgets, radio and segmented-control options, tab and expander labels, progress text,
toasts and every `help` tooltip. There a value such as `[Sign in again](http://host)` would be a
link in the app's own warning box and `![x](http://host/i.png)` would fetch an outside image.
`markdown_text` makes the value show literally there. Selectbox and multiselect options,
dataframe cells and headers, `st.text` and `st.code` show text as it is: pass the raw value to
those (escaping it there would show the backslashes).

Plotly renders a subset of HTML in every text it draws (titles, axis and tick labels, legend
entries, hover text, annotations, Sankey and treemap labels): `<a href>`, `<b>`, `<br>`,
`<span style>`, ... `plotly_text` makes a value show literally there. Figure builders pass data
into a hover template only through `%{...}` variables (trace name, customdata), never by string
concatenation, so a value cannot add template fields either.
"""

from __future__ import annotations

import re
import string
import unicodedata

# Line and paragraph breaks and other control characters would let a value end the line it is
# quoted in and start a markdown block (heading, list, quote, table) of its own.
_BREAKING = frozenset({"Cc", "Zl", "Zp"})

# Streamlit turns bare URLs and e-mail addresses into links after markdown escapes are resolved
# (GFM autolink literals: `www.`, `http://`, `https://`, `name@host.tld`), so backslashes do not
# stop them; an invisible WORD JOINER (U+2060) after the scheme and before `@` does.
_AUTOLINK_START = re.compile(r"(https?|www)(?=[:.])", re.IGNORECASE)
WORD_JOINER = "\u2060"
_ASCII_PUNCTUATION = frozenset(string.punctuation)


def shortened(value: object, limit: int = 80) -> str:
    """`value` as text of at most `limit` characters: cut with '…' when longer, so a message
    never echoes a 100,000-character input."""
    text = str(value)
    if len(text) <= limit:
        return text
    return text[: max(1, limit - 1)] + "…"


def markdown_text(value: object, limit: int | None = None) -> str:
    """`value` escaped so that Streamlit's markdown shows it literally, as plain inline text.

    Every ASCII punctuation character gets a backslash (CommonMark lets any of them be escaped,
    and each one can open some markdown, GFM or Streamlit construct: `[`, `!`, `*`, `` ` ``, `$`
    math, `:red[...]` colours and `:emoji:` codes, `<`, `&` entities, `|` tables, `1.` lists);
    line breaks and control characters become spaces; bare URLs and e-mail addresses are kept
    from turning into links (see WORD_JOINER). With `limit`, the text is `shortened` first
    (cutting after escaping could split an escape in two). Never put the result inside a code
    span (backticks): escapes are not read there.
    """
    text = "" if value is None else str(value)
    if limit is not None:
        text = shortened(text, limit)
    text = "".join(" " if unicodedata.category(ch) in _BREAKING else ch for ch in text)
    text = _AUTOLINK_START.sub(lambda m: m.group(0) + WORD_JOINER, text)
    text = text.replace("@", WORD_JOINER + "@")
    return "".join("\\" + ch if ch in _ASCII_PUNCTUATION else ch for ch in text)


def plotly_text(value: object) -> str:
    """`value` with `&`, `<` and `>` HTML-escaped, so Plotly shows it literally in a figure
    (title, axis, tick or legend label, hover text, annotation, node or treemap label)."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
