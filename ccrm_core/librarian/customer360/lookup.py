"""Search: customers closest to a search box text, in one SQL statement over the tables of
the `search_index` stage (see ccrm_core.librarian.customer360.stages).

Search scoring (0..1, higher is closer): per query word, the best similarity to a name word of
the customer (1 exact; Jaro-Winkler; a prefix of length q of a word of length w scores
0.88 + 0.12 q/w); a customer's name score is the mean over the query's words (x 0.8 for words
taken from a typed email), single letters next to a name ("e. brooks") counting as one more
word that scores 1 when a first name of the customer starts with one of them, else 0. Email: 1 exact, else 0.98 x Jaro-Winkler (>= 0.9) among emails
sharing the first 3 characters or the last 3 of the local part (kind `email_rev` holds the
local part reversed), or 0.8 + 0.15 q/w as a prefix. Phone: 1 for the same last 10 digits, a
suffix of q digits 0.6 + 0.04 q, one wrong digit in a full number 0.85. Ids: 1 exact, a prefix
0.8 + 0.2 q/w. Each customer keeps its best hit (ties: the field listed first in
SEARCH_FIELDS); results are ordered by score, then customer id.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ccrm_core.foundation import privacy, store
from ccrm_core.librarian.customer360.keys import SearchQuery, parse_query, prefix_code

PAGE_URL_PATH = "customer_360"
SEARCH_FIELDS = ("name", "email", "phone", "customer_id", "source_id", "anonymous_id")
# Name words whose similarity to a query word is below this are not candidates.
MIN_WORD_SIMILARITY = 0.82
# Candidate name words kept per query word (best first): keeps the posting lists small.
WORDS_PER_QUERY_WORD = 30
# Rows read per sub-lookup before scoring; generous against the result limit.
CANDIDATES = 400

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
),"""  # noqa: S608 - numeric constants from this module
_NAME_HITS_SQL = f"""
name_hits AS (
    SELECT customer_no, 'name' AS field, arg_max(value, row(sim, value)) AS value,
           sum(sim) / len($words) * $name_weight AS score
    FROM name_best GROUP BY customer_no
    ORDER BY score DESC, customer_no LIMIT {CANDIDATES}
)"""  # noqa: S608 - numeric constants from this module
# With initials ("e. brooks"), they count as one more query word: 1 when a first name of the
# customer starts with one of them, else 0.
_NAME_HITS_INITIALS_SQL = f"""
initial_hits AS (
    SELECT DISTINCT customer_no FROM search_keys
    WHERE kind = 'initial' AND code BETWEEN $initial_lo AND $initial_hi
      AND list_contains($initials, key)
),
name_hits AS (
    SELECT b.customer_no, 'name' AS field, arg_max(b.value, row(b.sim, b.value)) AS value,
           (sum(b.sim) + CASE WHEN any_value(h.customer_no) IS NULL THEN 0 ELSE 1 END)
               / (len($words) + 1) * $name_weight AS score
    FROM name_best b LEFT JOIN initial_hits h ON h.customer_no = b.customer_no
    GROUP BY b.customer_no
    ORDER BY score DESC, b.customer_no LIMIT {CANDIDATES}
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
        name_params = {"words": words, "per_word": per_word, "name_weight": weight}
        if q.initials:
            initials = sorted(q.initials)
            name_params.update(
                initials=initials,
                initial_lo=prefix_code(initials[0])[0],
                initial_hi=prefix_code(initials[-1])[1],
            )
            parts.append((_NAME_SQL + _NAME_HITS_INITIALS_SQL, "name_hits", name_params))
        else:
            parts.append((_NAME_SQL + _NAME_HITS_SQL, "name_hits", name_params))
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
    """Search results for display: name, email, phone, city and a matched name/email/phone
    masked unless reveal (only ccrm_core.foundation.audit.reveal_search, for admins, may ask for
    reveal)."""
    if reveal or results.empty:
        return results
    out = privacy.mask_frame(results, columns=("name", *privacy.PII_COLUMNS))
    out["matched_value"] = [
        privacy.mask_value(f, v) if f in ("name", "email", "phone") else v
        for f, v in zip(out["matched_field"], out["matched_value"], strict=True)
    ]
    return out


def profile_url(customer_id: str) -> str:
    """The app-relative deep link that opens one customer on the Customer 360 page."""
    from urllib.parse import quote

    return f"/{PAGE_URL_PATH}?customer_id={quote(str(customer_id))}"


def with_last_order(con: duckdb.DuckDBPyConnection, results: pd.DataFrame) -> pd.DataFrame:
    """Search results with last_order (the day of the customer's latest order; None when none
    or before the value stage), read for the few customers found only."""
    out = results.copy()
    out["last_order"] = None
    if out.empty or not store.table_exists(con, "mart_customer"):
        return out
    found = dict(
        con.execute(
            "SELECT customer_id, CAST(last_order_date AS DATE) FROM mart_customer "
            "WHERE customer_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(out["customer_id"])],
        ).fetchall()
    )
    out["last_order"] = [found.get(c) for c in out["customer_id"]]
    return out


def result_label(row) -> str:
    """How a search result reads in the picker, distinguishable when masked: name · city · last
    order · customer id ('J*** S*** · B*** · last order 2026-05-01 · C000000042')."""
    last = getattr(row, "last_order", None)
    return " · ".join(
        [
            str(row.name or "(no name)"),
            str(row.city or "city unknown"),
            f"last order {last}" if last is not None and not pd.isna(last) else "no order",
            str(row.customer_id),
        ]
    )
