"""Customer 360: typo-tolerant search, the profile of one customer, and their timeline.

Build stages (heavy preparation, so page lookups stay in milliseconds at 1,000,000 customers):

- `search_index` writes four tables, each sorted so that DuckDB's zone maps (min/max per row
  group) turn lookups into reads of a few row groups of integers:
  * `search_customers(customer_no, customer_id, name, email, phone, city, source_records,
    orders, revenue)`: the result card (revenue in currency units, all time); customer_no is
    the customer's number in customer_id order, so the lookups below join and group integers.
  * `search_vocab(token_id, token, customers)`: the distinct name words (from the golden record
    and every source record: lower-cased, accents and apostrophes removed) and how many
    customers carry each. Typo tolerance works on this small vocabulary, not on the customers.
  * `search_postings(token_id, customer_no, value)`: which customers carry which name word;
    `value` is the full name of the record it came from.
  * `search_keys(kind, code, key, customer_no, field, value)`: other lookup keys. kind `email`:
    the lower-cased email; `email_rev`: its local part reversed (typos at its start); `phone`:
    the last 10 digits reversed (a prefix lookup is a suffix match: "555-0100" finds
    "+1 (415) 555-0100"); `id`: customer, source and anonymous ids, lower-cased, letters and
    digits only. `code` packs the key's first 8 characters into an order-preserving UBIGINT
    (prefix_code), so a prefix is an integer range. `value` is what is shown as matched.
- `customer_timeline` writes `customer_timeline(customer_id, ts, kind, channel, event_type,
  campaign_id, value, ref_id, source, detail)`: every linked event (kind 'event') and order (kind
  'order', event_type 'order', value = revenue) sorted by customer and time, and
  `customer360_meta(as_of)`, the day the data ends.

Search scoring (0..1, higher is closer): per query word, the best similarity to a name word of
the customer (1 exact; Jaro-Winkler; a prefix of length q of a word of length w scores
0.88 + 0.12 q/w); a customer's name score is the mean over the query's words (x 0.8 for words
taken from a typed email). Email: 1 exact, else 0.98 x Jaro-Winkler (>= 0.9) among emails
sharing the first 3 characters or the last 3 of the local part (kind `email_rev` holds the
local part reversed), or 0.8 + 0.15 q/w as a prefix. Phone: 1 for the same last 10 digits, a
suffix of q digits 0.6 + 0.04 q, one wrong digit in a full number 0.85. Ids: 1 exact, a prefix
0.8 + 0.2 q/w. Each customer keeps its best hit (ties: the field listed first in
SEARCH_FIELDS); results are ordered by score, then customer id.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

import duckdb
import pandas as pd
import plotly.graph_objects as go

from ccrm_core.foundation import privacy, store
from ccrm_core.foundation.pipeline import BuildContext

PAGE_URL_PATH = "customer_360"
SEARCH_FIELDS = ("name", "email", "phone", "customer_id", "source_id", "anonymous_id")
# Name words whose similarity to a query word is below this are not candidates.
MIN_WORD_SIMILARITY = 0.82
# Candidate name words kept per query word (best first): keeps the posting lists small.
WORDS_PER_QUERY_WORD = 30
# Rows read per sub-lookup before scoring; generous against the result limit.
CANDIDATES = 400

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
    words = tuple(w for w in normalise_text(words_source).split() if len(w) >= 2 and w.isalpha())
    compact = re.sub(r"[\s().+\-/]", "", raw)
    digits = re.sub(r"\D", "", raw)
    phone = ""
    if len(digits) >= 4 and compact and len(digits) / len(compact) >= 0.8:
        phone = digits[-10:]
    single = " " not in raw
    ident = id_key(raw) if single and len(id_key(raw)) >= 3 else ""
    email_prefix = raw.lower() if single and not email and len(raw) >= 3 else ""
    return SearchQuery(
        text=raw, words=words, email=email, email_prefix=email_prefix, phone=phone, ident=ident
    )


# ---------------------------------------------------------------------------------------------
# Build stages


def _sql_code(col: str) -> str:
    """SQL twin of `prefix_code`: the first 8 characters of a key as an order-preserving
    UBIGINT (character codes capped at 255)."""
    return " + ".join(
        f"(least(ascii(substr({col}, {i + 1}, 1)), 255)::UBIGINT << {8 * (7 - i)})"
        for i in range(8)
    )


def prefix_code(prefix: str) -> tuple[int, int]:
    """[low, high] of the UBIGINT codes (see `_sql_code`) of every key that starts with
    `prefix`; a prefix longer than 8 characters gives the codes of its first 8 (check the rest
    with starts_with)."""
    head = prefix[:8]
    low = sum(min(ord(c), 255) << (8 * (7 - i)) for i, c in enumerate(head))
    return low, low + (1 << (8 * (8 - len(head)))) - 1


def search_index_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Write search_customers, search_vocab, search_postings and search_keys (see the module
    docstring). Customers are numbered (customer_no) so lookups join and group on integers."""
    name = "coalesce(first_name, '') || ' ' || coalesce(last_name, '')"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE search_customers AS
        SELECT CAST(row_number() OVER (ORDER BY c.customer_id) AS INTEGER) AS customer_no,
               c.customer_id, trim({name}) AS name, c.email, c.phone, c.city,
               coalesce(n.records, 0) AS source_records,
               coalesce(o.orders, 0) AS orders, coalesce(o.revenue, 0) AS revenue
        FROM customers c
        LEFT JOIN (
            SELECT customer_id, count(*) AS records FROM identity_map
            WHERE source_id IS NOT NULL GROUP BY customer_id
        ) n USING (customer_id)
        LEFT JOIN (
            SELECT customer_id, count(*) AS orders, sum(revenue) AS revenue
            FROM customer_orders GROUP BY customer_id
        ) o USING (customer_id)
        ORDER BY customer_no
        """  # noqa: S608 - column expressions from our own code
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _search_all AS
        WITH records AS (
            -- the golden record and every source record of each customer
            SELECT customer_id, first_name, last_name, email, phone FROM customers
            UNION ALL
            SELECT m.customer_id, s.first_name, s.last_name, s.email, s.phone
            FROM src_customers s JOIN identity_map m USING (source_system, source_id)
        ),
        words AS (
            SELECT customer_id, unnest(string_split({_sql_text(name)}, ' ')) AS key,
                   trim({name}) AS value
            FROM records
        ),
        keys AS (
            SELECT 'token' AS kind, key, customer_id, 'name' AS field, value
            FROM words
            UNION ALL
            SELECT 'email', lower(trim(email)), customer_id, 'email', email
            FROM records WHERE email IS NOT NULL
            UNION ALL
            -- the local part reversed: finds an email whose first characters hold the typo
            SELECT 'email_rev', reverse(split_part(lower(trim(email)), '@', 1)), customer_id,
                   'email', email
            FROM records WHERE email IS NOT NULL
            UNION ALL
            SELECT 'phone', {_sql_phone_key("phone")}, customer_id, 'phone', phone
            FROM records WHERE length(regexp_replace(phone, '[^0-9]', '', 'g')) >= 7
            UNION ALL
            SELECT 'id', {_sql_id("customer_id")}, customer_id, 'customer_id', customer_id
            FROM customers
            UNION ALL
            SELECT 'id', {_sql_id("source_id")}, customer_id, 'source_id',
                   source_system || ':' || source_id
            FROM identity_map WHERE source_id IS NOT NULL
            UNION ALL
            SELECT 'id', {_sql_id("anonymous_id")}, customer_id, 'anonymous_id', anonymous_id
            FROM identity_map WHERE anonymous_id IS NOT NULL
        )
        SELECT k.kind, k.key, c.customer_no, k.field, min(k.value) AS value
        FROM keys k JOIN search_customers c USING (customer_id)
        WHERE k.key <> ''
        GROUP BY k.kind, k.key, c.customer_no, k.field
        """  # noqa: S608 - column expressions from our own code
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE search_vocab AS
        SELECT CAST(row_number() OVER (ORDER BY key) AS INTEGER) AS token_id, key AS token,
               count(DISTINCT customer_no) AS customers
        FROM _search_all WHERE kind = 'token'
        GROUP BY key ORDER BY key
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE search_postings AS
        SELECT v.token_id, a.customer_no, min(a.value) AS value
        FROM _search_all a JOIN search_vocab v ON v.token = a.key
        WHERE a.kind = 'token'
        GROUP BY v.token_id, a.customer_no
        ORDER BY v.token_id, a.customer_no
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE search_keys AS
        SELECT kind, {_sql_code("key")} AS code, key, customer_no, field, value
        FROM _search_all WHERE kind <> 'token'
        ORDER BY kind, code, key, customer_no
        """  # noqa: S608 - column expressions from our own code
    )
    con.execute("DROP TABLE _search_all")
    return con.execute(
        "SELECT (SELECT count(*) FROM search_keys) + (SELECT count(*) FROM search_postings)"
    ).fetchone()[0]


def customer_timeline_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Write customer_timeline (events and orders per customer, time-sorted) and its as_of."""
    con.execute(
        """
        CREATE OR REPLACE TABLE customer_timeline AS
        SELECT customer_id, ts, 'event' AS kind, channel, event_type, campaign_id, value,
               event_id AS ref_id, coalesce(source_system, 'anonymous') AS source,
               anonymous_id AS detail
        FROM customer_events WHERE customer_id IS NOT NULL
        UNION ALL
        SELECT customer_id, ts, 'order', coalesce(channel, 'unknown'), 'order', NULL, revenue,
               order_id, source_system, category
        FROM customer_orders
        ORDER BY customer_id, ts, ref_id
        """
    )
    con.execute(
        "CREATE OR REPLACE TABLE customer360_meta AS SELECT CAST(? AS DATE) AS as_of", [ctx.as_of]
    )
    return con.execute("SELECT count(*) FROM customer_timeline").fetchone()[0]


# ---------------------------------------------------------------------------------------------
# Search

RESULT_COLUMNS = [
    "customer_id",
    "name",
    "email",
    "phone",
    "city",
    "matched_field",
    "matched_value",
    "score",
]


def search_ready(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the search_index stage has run (its three tables exist)."""
    return all(
        store.table_exists(con, t)
        for t in ("search_keys", "search_vocab", "search_postings", "search_customers")
    )


# One statement per search, assembled from the fixed fragments below that the query warrants:
# planning and scheduling several small queries costs more than the lookups themselves, and so
# does planning lookups that cannot match. Lookups filter sorted integer columns (token_id;
# kind + the 8-character prefix code), so zone maps skip all but a few row groups and what is
# scanned is cheap integers, not strings; joins and groups run on customer_no. The name-word
# join keeps at most MAX_NAME_WORDS candidate words so that DuckDB turns it into an IN filter on
# the postings scan (dynamic_or_filter_threshold, default 50).
_NAME_SQL = f"""
q AS (SELECT unnest($words::VARCHAR[]) AS word, unnest(range(len($words))) AS i),
scored_words AS (
    SELECT q.i, v.token_id, v.token, v.customers,
           CASE WHEN v.token = q.word THEN 1.0
                ELSE greatest(
                    jaro_winkler_similarity(q.word, v.token),
                    CASE WHEN starts_with(v.token, q.word)
                         THEN 0.88 + 0.12 * length(q.word) / length(v.token) ELSE 0 END)
           END AS sim
    FROM q, search_vocab v
    WHERE length(v.token) BETWEEN length(q.word) - 3 AND length(q.word) + 12
),
words AS (
    SELECT i, token_id, sim FROM scored_words
    WHERE sim >= {MIN_WORD_SIMILARITY}
    QUALIFY row_number() OVER (PARTITION BY i ORDER BY sim DESC, customers DESC, token)
            <= $per_word
),
name_best AS (
    SELECT p.customer_no, w.i, max(w.sim) AS sim, arg_max(p.value, row(w.sim, p.value)) AS value
    FROM search_postings p JOIN words w ON p.token_id = w.token_id
    GROUP BY p.customer_no, w.i
),
name_hits AS (
    SELECT customer_no, 'name' AS field, arg_max(value, row(sim, value)) AS value,
           sum(sim) / len($words) * $name_weight AS score
    FROM name_best GROUP BY customer_no
    ORDER BY score DESC, customer_no LIMIT {CANDIDATES}
)"""  # noqa: S608 - numeric constants from this module
_EMAIL_SQL = """
email_hits AS (
    SELECT customer_no, 'email' AS field, value,
           CASE WHEN key = $email THEN 1.0
                ELSE 0.98 * jaro_winkler_similarity(key, $email) END AS score
    FROM search_keys
    WHERE kind = 'email' AND code BETWEEN $email_lo AND $email_hi
      AND (key = $email OR jaro_winkler_similarity(key, $email) >= 0.9)
    UNION ALL
    SELECT customer_no, 'email' AS field, value,
           0.98 * jaro_winkler_similarity(lower(trim(value)), $email) AS score
    FROM search_keys
    WHERE kind = 'email_rev' AND code BETWEEN $email_rev_lo AND $email_rev_hi
      AND jaro_winkler_similarity(lower(trim(value)), $email) >= 0.9
)"""
_EMAIL_PREFIX_SQL = f"""
email_prefix_hits AS (
    SELECT customer_no, 'email' AS field, value,
           CASE WHEN key = $email_prefix THEN 1.0
                ELSE 0.8 + 0.15 * length($email_prefix) / length(key) END AS score
    FROM (SELECT * FROM search_keys
          WHERE kind = 'email' AND code BETWEEN $email_prefix_lo AND $email_prefix_hi
            AND starts_with(key, $email_prefix)
          LIMIT {CANDIDATES})
)"""  # noqa: S608 - numeric constants from this module
_PHONE_SQL = f"""
phone_hits AS (
    SELECT customer_no, 'phone' AS field, value,
           CASE WHEN key = $phone THEN 1.0 ELSE 0.6 + 0.04 * length($phone) END AS score
    FROM (SELECT * FROM search_keys
          WHERE kind = 'phone' AND code BETWEEN $phone_lo AND $phone_hi
            AND starts_with(key, $phone)
          LIMIT {CANDIDATES})
)"""  # noqa: S608 - numeric constants from this module
_PHONE_TYPO_SQL = """
phone_typo_hits AS (
    -- one wrong digit in a full number: the same last 4 digits, then edit distance 1
    SELECT customer_no, 'phone' AS field, value, 0.85 AS score
    FROM search_keys
    WHERE kind = 'phone' AND code BETWEEN $phone4_lo AND $phone4_hi
      AND key <> $phone AND damerau_levenshtein(key, $phone) <= 1
)"""
_ID_SQL = f"""
id_hits AS (
    SELECT customer_no, field, value,
           CASE WHEN key = $ident THEN 1.0 ELSE 0.8 + 0.2 * length($ident) / length(key) END
               AS score
    FROM (SELECT * FROM search_keys
          WHERE kind = 'id' AND code BETWEEN $ident_lo AND $ident_hi
            AND starts_with(key, $ident)
          LIMIT {CANDIDATES})
)"""  # noqa: S608 - numeric constants from this module
_RANK_SQL = """
keyed AS (
    -- ties on score go to the field listed first in SEARCH_FIELDS (scores have 4 decimals)
    SELECT customer_no, field, value, round(score::DOUBLE, 4) AS score,
           round(score::DOUBLE, 4) - list_position($field_order, field) * 1e-6 AS sort_key
    FROM hits
),
ranked AS (
    -- a GROUP BY, not a window: far cheaper for a few hundred rows
    SELECT customer_no, arg_max(field, sort_key) AS field, arg_max(value, sort_key) AS value,
           max(score) AS score, max(sort_key) AS sort_key
    FROM keyed GROUP BY customer_no
    ORDER BY max(sort_key) DESC, customer_no
    LIMIT $limit
)
SELECT c.customer_id, c.name, c.email, c.phone, c.city,
       r.field AS matched_field, r.value AS matched_value, r.score
FROM ranked r JOIN search_customers c USING (customer_no)
ORDER BY r.sort_key DESC, c.customer_id
"""
# Candidate name words in the join at most (see above), and query words used at most.
MAX_NAME_WORDS = 48
MAX_QUERY_WORDS = 6


def search_statement(q: SearchQuery, limit: int) -> tuple[str, dict]:
    """The SQL (assembled from this module's fixed fragments only) and named parameters that
    search a parsed query (pure)."""
    parts: list[tuple[str, str, dict]] = []  # (CTE text, CTE name, its parameters)
    words = list(q.words[:MAX_QUERY_WORDS])
    if words:
        per_word = max(4, min(WORDS_PER_QUERY_WORD, MAX_NAME_WORDS // len(words)))
        # name words found inside an email address count a little less than a typed name
        weight = 0.8 if q.email else 1.0
        parts.append(
            (_NAME_SQL, "name_hits", {"words": words, "per_word": per_word, "name_weight": weight})
        )
    if q.email:
        lo, hi = prefix_code(q.email[:3])
        rev_lo, rev_hi = prefix_code(q.email.split("@", 1)[0][::-1][:3])
        parts.append(
            (
                _EMAIL_SQL,
                "email_hits",
                {
                    "email": q.email,
                    "email_lo": lo,
                    "email_hi": hi,
                    "email_rev_lo": rev_lo,
                    "email_rev_hi": rev_hi,
                },
            )
        )
    if q.email_prefix:
        lo, hi = prefix_code(q.email_prefix)
        parts.append(
            (
                _EMAIL_PREFIX_SQL,
                "email_prefix_hits",
                {"email_prefix": q.email_prefix, "email_prefix_lo": lo, "email_prefix_hi": hi},
            )
        )
    if q.phone:
        rev = q.phone[::-1]  # keys hold reversed digits: a suffix is a prefix
        lo, hi = prefix_code(rev)
        parts.append((_PHONE_SQL, "phone_hits", {"phone": rev, "phone_lo": lo, "phone_hi": hi}))
        if len(rev) >= 9:
            lo, hi = prefix_code(rev[:4])
            parts.append(
                (
                    _PHONE_TYPO_SQL,
                    "phone_typo_hits",
                    {"phone": rev, "phone4_lo": lo, "phone4_hi": hi},
                )
            )
    if q.ident:
        lo, hi = prefix_code(q.ident)
        parts.append((_ID_SQL, "id_hits", {"ident": q.ident, "ident_lo": lo, "ident_hi": hi}))
    params: dict = {"field_order": list(SEARCH_FIELDS), "limit": int(limit)}
    for _, _, p in parts:
        params.update(p)
    hits = " UNION ALL ".join(f"SELECT * FROM {name}" for _, name, _ in parts)  # noqa: S608 our CTE names
    sql = "WITH " + ",".join(text for text, _, _ in parts) + f",\nhits AS ({hits})," + _RANK_SQL
    return sql, params


def search(con: duckdb.DuckDBPyConnection, query: str, limit: int = 20) -> pd.DataFrame:
    """Customers closest to a search box text, best first (at most `limit` rows).

    Columns: customer_id, name, email, phone, city (the golden record, unmasked: mask before
    display), matched_field (name, email, phone, customer_id, source_id, anonymous_id),
    matched_value, score (0..1, see the module docstring). Needs the `search_index` stage;
    without it the result is empty.
    """
    q = parse_query(query)
    if limit < 1 or not (q.words or q.email or q.email_prefix or q.phone or q.ident):
        return pd.DataFrame(columns=RESULT_COLUMNS)
    sql, params = search_statement(q, limit)
    try:
        cur = con.execute(sql, params)
    except duckdb.CatalogException:
        return pd.DataFrame(columns=RESULT_COLUMNS)  # search_index has not run yet
    return pd.DataFrame(cur.fetchall(), columns=RESULT_COLUMNS)


def mask_results(results: pd.DataFrame, reveal: bool = False) -> pd.DataFrame:
    """Search results for display: name, email, phone and a matched name/email/phone masked
    unless reveal (only ccrm_core.foundation.audit.reveal_search, for admins, may ask for reveal)."""
    if reveal or results.empty:
        return results
    out = privacy.mask_frame(results, columns=("name", "email", "phone"))
    out["matched_value"] = [
        privacy.mask_value(f, v) if f in ("name", "email", "phone") else v
        for f, v in zip(out["matched_field"], out["matched_value"], strict=True)
    ]
    return out


def profile_url(customer_id: str) -> str:
    """The app-relative deep link that opens one customer on the Customer 360 page."""
    from urllib.parse import quote

    return f"/{PAGE_URL_PATH}?customer_id={quote(str(customer_id))}"


# ---------------------------------------------------------------------------------------------
# Profile

# the golden record carries every src_customers field except the record key
GOLDEN_FIELDS = tuple(store.TABLES["src_customers"].column_names[2:])
VALUE_COLUMNS = (
    "orders",
    "revenue",
    "first_order_date",
    "last_order_date",
    "recency",
    "frequency",
    "T",
    "monetary_value",
    "r_score",
    "f_score",
    "m_score",
    "expected_purchases_12m",
    "prob_alive",
    "clv",
)
SEGMENT_COLUMNS = ("rfm_segment", "value_tier", "needs_segment")


@dataclass
class CustomerProfile:
    """Everything the page shows about one customer (plain data, picklable for caching).

    `golden`: field, value, source (which source system gave the value; NULL when unknown).
    `sources`: the source records linked to the customer, with match method and probability.
    `identifiers`: anonymous ids (cookies, devices) with first/last seen and events.
    `consents`: channel, status, ts (latest per channel); `fatigue`: touches per channel in the
    last 7 and 30 days (up to `as_of`) against the contact policy's caps.
    `value`, `segments`, `propensity`, `nba`: None until their build stages have run.
    """

    customer_id: str
    name: str
    as_of: date | None
    golden: pd.DataFrame
    sources: pd.DataFrame
    identifiers: pd.DataFrame
    consents: pd.DataFrame
    fatigue: pd.DataFrame
    value: dict | None = None
    segments: dict | None = None
    propensity: dict | None = None
    models: pd.DataFrame | None = None
    nba: dict | None = None
    # share of customers (0..1) at or below this customer: 'revenue' (all time), 'clv' (value)
    percentiles: dict = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # build stages whose outputs are absent


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]


def _one_row(con: duckdb.DuckDBPyConnection, table: str, customer_id: str) -> dict | None:
    """The row of `table` for one customer as plain Python values (lists stay lists)."""
    cur = con.execute(
        f"SELECT * FROM {store.quote_ident(table)} WHERE customer_id = ? LIMIT 1",  # noqa: S608 our table
        [customer_id],
    )
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def data_as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    """The day the data ends, as stored by the customer_timeline stage (None before it ran)."""
    if not store.table_exists(con, "customer360_meta"):
        return None
    row = con.execute("SELECT max(as_of) FROM customer360_meta").fetchone()
    return row[0] if row else None


def revenue_percentile(con: duckdb.DuckDBPyConnection, customer_id: str) -> float | None:
    """Share of customers (0..1) whose all-time revenue is at most this customer's."""
    if not store.table_exists(con, "search_customers"):
        return None
    row = con.execute(
        """
        SELECT count(*) FILTER (WHERE revenue <= (SELECT max(revenue) FROM search_customers
                                                  WHERE customer_id = ?)) / count(*)
        FROM search_customers
        """,
        [customer_id],
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def touches(
    con: duckdb.DuckDBPyConnection, customer_id: str, as_of: date, event_types: list[str]
) -> pd.DataFrame:
    """Contacts per channel: channel, touches_7d, touches_30d (events of `event_types` in the
    7 and 30 days up to and including `as_of`). Needs the customer_timeline stage."""
    return con.execute(
        """
        SELECT channel,
               count(*) FILTER (WHERE ts >= CAST(? AS DATE) - INTERVAL 6 DAY) AS touches_7d,
               count(*) AS touches_30d
        FROM customer_timeline
        WHERE customer_id = ? AND kind = 'event' AND event_type IN (SELECT unnest(?::VARCHAR[]))
          AND ts >= CAST(? AS DATE) - INTERVAL 29 DAY AND ts < CAST(? AS DATE) + INTERVAL 1 DAY
        GROUP BY channel ORDER BY channel
        """,
        [as_of, customer_id, list(event_types), as_of, as_of],
    ).df()


def profile(con: duckdb.DuckDBPyConnection, customer_id: str) -> CustomerProfile | None:
    """The 360 view of one customer, or None when the id is unknown (see CustomerProfile)."""
    from ccrm_core.conductor import decisioning

    if not store.table_exists(con, "customers"):
        return None
    golden_row = _one_row(con, "customers", customer_id)
    if golden_row is None:
        return None
    missing: list[str] = []
    first_source = golden_row.get("first_source")
    golden = pd.DataFrame(
        [
            {
                "field": f,
                # as text: the fields mix strings, dates and timestamps
                "value": None if golden_row.get(f) is None else str(golden_row[f]),
                "source": golden_row.get(f"{f}_source", first_source),
            }
            for f in GOLDEN_FIELDS
            if f in golden_row
        ]
    )
    name = " ".join(
        str(golden_row[f]) for f in ("first_name", "last_name") if golden_row.get(f)
    ).strip()
    sources = con.execute(
        """
        SELECT s.source_system, s.source_id, s.first_name, s.last_name, s.email, s.phone,
               s.city, s.postal_code, s.updated_at, m.method, m.match_probability
        FROM identity_map m JOIN src_customers s USING (source_system, source_id)
        WHERE m.customer_id = ? ORDER BY s.source_system, s.source_id
        """,
        [customer_id],
    ).df()
    as_of = data_as_of(con)
    if store.table_exists(con, "customer_timeline"):
        identifiers = con.execute(
            """
            WITH ids AS (
                SELECT anonymous_id, method, match_probability FROM identity_map
                WHERE customer_id = ? AND anonymous_id IS NOT NULL
            ),
            seen AS (
                SELECT detail AS anonymous_id, min(ts) AS first_seen, max(ts) AS last_seen,
                       count(*) AS events
                FROM customer_timeline
                WHERE customer_id = ? AND kind = 'event' AND detail IS NOT NULL
                GROUP BY detail
            )
            SELECT ids.anonymous_id, ids.method, ids.match_probability,
                   seen.first_seen, seen.last_seen, coalesce(seen.events, 0) AS events
            FROM ids LEFT JOIN seen USING (anonymous_id)
            ORDER BY seen.last_seen DESC NULLS LAST, ids.anonymous_id
            """,
            [customer_id, customer_id],
        ).df()
    else:
        missing.append("customer_timeline")
        identifiers = con.execute(
            "SELECT anonymous_id, method, match_probability FROM identity_map "
            "WHERE customer_id = ? AND anonymous_id IS NOT NULL ORDER BY anonymous_id",
            [customer_id],
        ).df()
    consents = con.execute(
        "SELECT channel, status, ts FROM customer_consents WHERE customer_id = ? ORDER BY channel",
        [customer_id],
    ).df()
    policy = decisioning.load_policy()
    fatigue = decisioning.fatigue_frame(
        touches(con, customer_id, as_of, list(policy.touch_event_types))
        if as_of is not None
        else pd.DataFrame(columns=["channel", "touches_7d", "touches_30d"]),
        policy,
    )
    value = segments = prop = nba = None
    models = None
    percentiles: dict = {}
    revenue_share = revenue_percentile(con, customer_id)
    if revenue_share is not None:
        percentiles["revenue"] = revenue_share
    if store.table_exists(con, "mart_customer"):
        row = _one_row(con, "mart_customer", customer_id)
        if row is not None:
            value = {k: row[k] for k in VALUE_COLUMNS if k in row}
            segments = {k: row[k] for k in SEGMENT_COLUMNS if k in row}
            if value.get("clv") is not None:
                percentiles["clv"] = con.execute(
                    "SELECT count(*) FILTER (WHERE clv <= ?) / count(*) FROM mart_customer",
                    [value["clv"]],
                ).fetchone()[0]
    else:
        missing.append("value")
    if store.table_exists(con, "mart_propensity"):
        prop = _one_row(con, "mart_propensity", customer_id)
        if store.table_exists(con, "propensity_model"):
            models = con.execute("SELECT * FROM propensity_model ORDER BY target").df()
    else:
        missing.append("propensity")
    if store.table_exists(con, "mart_nba"):
        nba = _one_row(con, "mart_nba", customer_id)
    else:
        missing.append("nba")
    return CustomerProfile(
        customer_id=customer_id,
        name=name or customer_id,
        as_of=as_of,
        golden=golden,
        sources=sources,
        identifiers=identifiers,
        consents=consents,
        fatigue=fatigue,
        value=value,
        segments=segments,
        propensity=prop,
        models=models,
        nba=nba,
        percentiles=percentiles,
        missing=missing,
    )


def mask_profile(p: CustomerProfile, reveal: bool = False) -> CustomerProfile:
    """A copy of a profile for display: name, email, phone, address and birth date masked
    everywhere (privacy.PII_COLUMNS) unless reveal (only after ccrm_core.foundation.audit.reveal_customer
    has checked the role and recorded it)."""
    if reveal:
        return p
    golden = p.golden.copy()
    golden["value"] = [
        privacy.mask_value(f, v) if f in privacy.PII_COLUMNS else v
        for f, v in zip(golden["field"], golden["value"], strict=True)
    ]
    sources = privacy.mask_frame(p.sources)
    return CustomerProfile(
        **{
            **p.__dict__,
            "name": privacy.mask_full_name(p.name),
            "golden": golden,
            "sources": sources,
        }
    )


# ---------------------------------------------------------------------------------------------
# Timeline

TIMELINE_COLUMNS = [
    "ts",
    "kind",
    "channel",
    "event_type",
    "campaign_id",
    "value",
    "source",
    "detail",
    "ref_id",
]
# The chart draws at most this many of the most recent filtered rows (the table pages all).
CHART_ROWS = 5000


@dataclass
class TimelinePage:
    """One page of a customer's timeline (newest first) plus what the filters can offer.

    `rows`: the page; `chart`: up to CHART_ROWS most recent rows under the same filters;
    `total`: rows under the filters; `channels`, `types`: all values present for the customer.
    """

    rows: pd.DataFrame
    chart: pd.DataFrame
    total: int
    page: int
    page_size: int
    channels: list[str]
    types: list[str]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def timeline(
    con: duckdb.DuckDBPyConnection,
    customer_id: str,
    channels: list[str] | tuple[str, ...] | None = None,
    types: list[str] | tuple[str, ...] | None = None,
    page: int = 1,
    page_size: int = 50,
) -> TimelinePage:
    """Events and orders of one customer, newest first, filtered by channel and event type
    (None = all; orders have event_type 'order'). Pages are 1-based. Needs customer_timeline."""
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1 (got {page_size})")
    empty = pd.DataFrame(columns=TIMELINE_COLUMNS)
    if not store.table_exists(con, "customer_timeline"):
        return TimelinePage(empty, empty, 0, 1, page_size, [], [])
    present = con.execute(
        "SELECT list(DISTINCT channel ORDER BY channel), "
        "list(DISTINCT event_type ORDER BY event_type) "
        "FROM customer_timeline WHERE customer_id = ?",
        [customer_id],
    ).fetchone()
    where = (
        "WHERE customer_id = ? AND (?::VARCHAR[] IS NULL OR list_contains(?, channel)) "
        "AND (?::VARCHAR[] IS NULL OR list_contains(?, event_type))"
    )
    ch = list(channels) if channels is not None else None
    ty = list(types) if types is not None else None
    filt = [customer_id, ch, ch, ty, ty]
    total = con.execute(
        f"SELECT count(*) FROM customer_timeline {where}",  # noqa: S608 fixed text
        filt,
    ).fetchone()[0]
    pages = max(1, -(-total // page_size))
    page = min(max(1, int(page)), pages)
    cols = ", ".join(TIMELINE_COLUMNS)
    rows = con.execute(
        f"SELECT {cols} FROM customer_timeline {where} "  # noqa: S608 our columns
        "ORDER BY ts DESC, ref_id LIMIT ? OFFSET ?",
        [*filt, page_size, (page - 1) * page_size],
    ).df()
    chart = con.execute(
        f"SELECT {cols} FROM customer_timeline {where} "  # noqa: S608 our columns
        f"ORDER BY ts DESC, ref_id LIMIT {CHART_ROWS}",
        filt,
    ).df()
    return TimelinePage(
        rows=rows,
        chart=chart,
        total=int(total),
        page=page,
        page_size=page_size,
        channels=list(present[0] or []),
        types=list(present[1] or []),
    )


# ---------------------------------------------------------------------------------------------
# Figures

_KIND_SYMBOLS = {"order": "diamond", "event": "circle"}


def chart_timeline(rows: pd.DataFrame) -> go.Figure:
    """Scatter of a customer's events (circles) and orders (diamonds, sized by revenue) in time,
    one row per channel; hover shows type, campaign and value."""
    fig = go.Figure()
    if rows.empty:
        fig.update_layout(height=200, margin=dict(l=10, r=10, t=10, b=30))
        return fig
    for event_type, part in rows.groupby("event_type", sort=True):
        is_order = event_type == "order"
        size = (
            (8 + 12 * (part["value"].fillna(0) / max(rows["value"].max() or 1, 1))).tolist()
            if is_order
            else 8
        )
        fig.add_trace(
            go.Scatter(
                x=part["ts"],
                y=part["channel"],
                mode="markers",
                name=str(event_type),
                marker=dict(symbol="diamond" if is_order else "circle", size=size, opacity=0.75),
                customdata=part[["campaign_id", "value"]].astype(object).fillna("").values,
                hovertemplate=(
                    "%{x|%Y-%m-%d %H:%M}<br>%{y} · " + str(event_type) + "<br>"
                    "campaign %{customdata[0]}<br>value %{customdata[1]}<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        height=max(220, 40 * rows["channel"].nunique() + 120),
        margin=dict(l=10, r=10, t=10, b=30),
        legend=dict(orientation="h", y=-0.25),
        yaxis=dict(categoryorder="category ascending"),
    )
    return fig


def chart_gauge(
    value: float | None,
    title: str,
    maximum: float = 1.0,
    bands: tuple[float, float] = (0.33, 0.66),
    good_high: bool = True,
    number_format: str = ".0%",
) -> go.Figure:
    """A gauge 0..maximum with three coloured bands (green/amber/red by direction of 'good')."""
    colours = ["#cf222e", "#d4a72c", "#2da44e"]
    if not good_high:
        colours = colours[::-1]
    lo, hi = bands[0] * maximum, bands[1] * maximum
    fig = go.Figure(
        go.Indicator(
            mode="gauge+number",
            value=value if value is not None else 0,
            number=dict(valueformat=number_format),
            title=dict(text=title if value is not None else f"{title} (not built)"),
            gauge=dict(
                axis=dict(
                    range=[0, maximum],
                    tickformat=number_format,
                    tickvals=[0, maximum / 2, maximum],
                ),
                bar=dict(color="#24292f"),
                steps=[
                    dict(range=[0, lo], color=colours[0]),
                    dict(range=[lo, hi], color=colours[1]),
                    dict(range=[hi, maximum], color=colours[2]),
                ],
            ),
        )
    )
    fig.update_layout(height=210, margin=dict(l=35, r=35, t=50, b=10))
    return fig


# ---------------------------------------------------------------------------------------------
# Benchmarks (`ccrm bench`): 200 varied searches, and the timeline of a busy customer

# Query mix of the search benchmark: kind -> how many of the 200.
BENCH_QUERY_MIX = {
    "name": 40,
    "name_typo": 40,
    "name_prefix": 20,
    "phone": 30,
    "email": 20,
    "email_typo": 10,
    "customer_id": 20,
    "source_id": 10,
    "anonymous_id": 10,
}


def _typo(word: str, rng) -> str:
    """One random edit (delete, transpose, substitute) away from `word` (4+ letters)."""
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 1))
    edit = int(rng.integers(0, 3))
    if edit == 0:
        return word[:i] + word[i + 1 :]
    if edit == 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + "aeiouy"[int(rng.integers(0, 6))] + word[i + 1 :]


def _phone_format(e164: str, style: int) -> str:
    digits = re.sub(r"\D", "", e164)
    national = digits[-10:]
    area, mid, last = national[:3], national[3:6], national[6:]
    return [
        e164,
        national,
        f"({area}) {mid}-{last}",
        f"+1 {area}.{mid}.{last}",
        f"{mid}-{last}",
    ][style % 5]


def _bench_query(kind: str, row: tuple, rng) -> str:
    """One benchmark query of `kind` for a customers row (customer_id, first, last, email,
    phone)."""
    cid, first, last, email, phone = row
    if kind == "name":
        return f"{first} {last}"
    if kind == "name_typo":
        return f"{_typo(first.lower(), rng)} {_typo(last.lower(), rng)}"
    if kind == "name_prefix":
        return last[: int(rng.integers(3, 6))]
    if kind == "phone":
        return _phone_format(phone, int(rng.integers(0, 5)))
    if kind == "email":
        return email
    if kind == "email_typo":
        local, domain = email.split("@", 1)
        return _typo(local, rng) + "@" + domain
    return cid


def bench_queries(con: duckdb.DuckDBPyConnection, seed: int = 42) -> list[tuple[str, str, str]]:
    """(query, intended customer_id, kind) for the search benchmark, drawn from the data with
    a fixed seed: exact and typo'd names, name prefixes, phones in five formats, emails exact
    and typo'd, customer, source and anonymous ids (see BENCH_QUERY_MIX)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pool = con.execute(
        """
        SELECT customer_id, first_name, last_name, email, phone FROM customers
        WHERE first_name IS NOT NULL AND last_name IS NOT NULL
        USING SAMPLE reservoir(2000 ROWS) REPEATABLE (42)
        """
    ).fetchall()
    ids = con.execute(
        """
        SELECT customer_id, source_id, anonymous_id FROM identity_map
        WHERE customer_id IS NOT NULL
        USING SAMPLE reservoir(5000 ROWS) REPEATABLE (42)
        """
    ).fetchall()
    out: list[tuple[str, str, str]] = []

    def pick(rows, cond):
        for _ in range(200):
            row = rows[int(rng.integers(0, len(rows)))]
            if cond(row):
                return row
        return None

    for kind, count in BENCH_QUERY_MIX.items():
        for _ in range(count):
            if kind in ("source_id", "anonymous_id"):
                col = 1 if kind == "source_id" else 2
                row = pick(ids, lambda r, c=col: r[c] is not None)
                if row:
                    out.append((row[col], row[0], kind))
                continue
            row = pick(
                pool,
                {
                    "phone": lambda r: r[4] is not None,
                    "email": lambda r: r[3] is not None,
                    "email_typo": lambda r: r[3] is not None,
                }.get(kind, lambda r: True),
            )
            if row is None:
                continue
            query = _bench_query(kind, row, rng)
            out.append((query, row[0], kind))
    return out


def bench_search(ctx) -> tuple[int, dict]:
    """`ccrm bench` operation: 200 varied searches on the built database; figures: p50, p95 and
    max milliseconds per search, and the share of queries whose intended customer is first /
    in the top 5 (a prefix or a common name may rightly rank others first)."""
    import statistics
    import time

    con = store.connect_reader(ctx.db)
    try:
        queries = bench_queries(con)
        for q, _, _ in queries[:5]:  # warm the file cache the way a running app has it
            search(con, q)
        times, top1, top5 = [], 0, 0
        for q, cid, _ in queries:
            t0 = time.perf_counter()
            found = search(con, q, 20)["customer_id"].tolist()
            times.append((time.perf_counter() - t0) * 1000)
            top1 += bool(found) and found[0] == cid
            top5 += cid in found[:5]
    finally:
        con.close()
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]
    figures = {
        "queries": len(queries),
        "p50_ms": statistics.median(times),
        "p95_ms": p95,
        "max_ms": times[-1],
        "top1_share": top1 / len(queries),
        "top5_share": top5 / len(queries),
    }
    print(
        f"search: {len(queries)} queries, p50 {figures['p50_ms']:.1f} ms, p95 {p95:.1f} ms, "
        f"max {times[-1]:.1f} ms; intended customer first {figures['top1_share']:.0%}, "
        f"top 5 {figures['top5_share']:.0%}"
    )
    return len(queries), figures


def bench_timeline(ctx) -> tuple[int, dict]:
    """`ccrm bench` operation: the timeline of the customer whose event count is closest to
    1,000 (first page, a channel filter, and the chart rows), 20 times; figures: events of that
    customer, p50 and p95 milliseconds per timeline call."""
    import statistics
    import time

    con = store.connect_reader(ctx.db)
    try:
        cid, events = con.execute(
            """
            SELECT customer_id, count(*) AS n FROM customer_timeline
            GROUP BY customer_id ORDER BY abs(count(*) - 1000), customer_id LIMIT 1
            """
        ).fetchone()
        channel = con.execute(
            "SELECT channel FROM customer_timeline WHERE customer_id = ? "
            "GROUP BY channel ORDER BY count(*) DESC LIMIT 1",
            [cid],
        ).fetchone()[0]
        times = []
        for i in range(20):
            t0 = time.perf_counter()
            timeline(con, cid, channels=[channel] if i % 2 else None, page=1 + i % 3)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        con.close()
    times.sort()
    figures = {
        "customer_events": events,
        "p50_ms": statistics.median(times),
        "p95_ms": times[18],
    }
    print(
        f"timeline: customer {cid} with {events:,} rows, p50 {figures['p50_ms']:.1f} ms, "
        f"p95 {figures['p95_ms']:.1f} ms"
    )
    return events, figures
