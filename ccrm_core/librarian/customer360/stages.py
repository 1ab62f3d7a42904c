"""Customer 360 build stages (heavy preparation, so page lookups stay in milliseconds at
1,000,000 customers):

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
    digits only; `initial`: the first letter of each word of a first name. `code` packs the key's first 8 characters into an order-preserving UBIGINT
    (prefix_code), so a prefix is an integer range. `value` is what is shown as matched.
- `customer_timeline` writes `customer_timeline(customer_id, ts, kind, channel, event_type,
  campaign_id, value, ref_id, source, detail)`: every linked event (kind 'event') and order (kind
  'order', event_type 'order', value = revenue) sorted by customer and time, and
  `customer360_meta(as_of)`, the day the data ends.
"""

from __future__ import annotations

import duckdb

from ccrm_core.foundation.pipeline import BuildContext
from ccrm_core.librarian.customer360.keys import _sql_code, _sql_id, _sql_phone_key, _sql_text

# A record's full name (golden or source record), as SQL over its first_name and last_name.
_FULL_NAME_SQL = "coalesce(first_name, '') || ' ' || coalesce(last_name, '')"


def search_index_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Write search_customers, search_vocab, search_postings and search_keys (see the module
    docstring). Customers are numbered (customer_no) so lookups join and group on integers."""
    _write_search_customers(con)
    _write_all_keys(con)
    _write_name_words(con)
    _write_other_keys(con)
    con.execute("DROP TABLE _search_all")
    return con.execute(
        "SELECT (SELECT count(*) FROM search_keys) + (SELECT count(*) FROM search_postings)"
    ).fetchone()[0]


def _write_search_customers(con: duckdb.DuckDBPyConnection) -> None:
    """search_customers: the result card of each customer, numbered in customer_id order."""
    con.execute(
        f"""
        CREATE OR REPLACE TABLE search_customers AS
        SELECT CAST(row_number() OVER (ORDER BY c.customer_id) AS INTEGER) AS customer_no,
               c.customer_id, trim({_FULL_NAME_SQL}) AS name, c.email, c.phone, c.city,
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


def _write_all_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table _search_all(kind, key, customer_no, field, value): every lookup key of every
    customer, from the golden record and every source record (name words have kind 'token')."""
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
        -- a source record mostly repeats its customer's name and email, and the GROUP BY below
        -- drops repeated keys anyway: building name and email keys once per distinct (customer,
        -- name) and (customer, email) halves those rows and the regular expressions on them
        names AS (SELECT DISTINCT customer_id, first_name, last_name FROM records),
        emails AS (SELECT DISTINCT customer_id, email FROM records WHERE email IS NOT NULL),
        words AS (
            SELECT customer_id, unnest(string_split({_sql_text(_FULL_NAME_SQL)}, ' ')) AS key,
                   trim({_FULL_NAME_SQL}) AS value
            FROM names
        ),
        first_words AS (
            SELECT customer_id, unnest(string_split({_sql_text("first_name")}, ' ')) AS word,
                   trim({_FULL_NAME_SQL}) AS value
            FROM names WHERE first_name IS NOT NULL
        ),
        initials AS (SELECT customer_id, left(word, 1) AS key, value FROM first_words),
        keys AS (
            SELECT 'token' AS kind, key, customer_id, 'name' AS field, value
            FROM words
            UNION ALL
            -- the first letter of each first-name word: "e. brooks" finds Emma Brooks
            SELECT 'initial', key, customer_id, 'name', value FROM initials
            UNION ALL
            SELECT 'email', lower(trim(email)), customer_id, 'email', email FROM emails
            UNION ALL
            -- the local part reversed: finds an email whose first characters hold the typo
            SELECT 'email_rev', reverse(split_part(lower(trim(email)), '@', 1)), customer_id,
                   'email', email
            FROM emails
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


def _write_name_words(con: duckdb.DuckDBPyConnection) -> None:
    """search_vocab (the distinct name words, numbered) and search_postings (which customers
    carry each word), from _search_all."""
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


def _write_other_keys(con: duckdb.DuckDBPyConnection) -> None:
    """search_keys: the email, phone and id keys of _search_all with their prefix codes."""
    con.execute(
        f"""
        CREATE OR REPLACE TABLE search_keys AS
        SELECT kind, {_sql_code("key")} AS code, key, customer_no, field, value
        FROM _search_all WHERE kind <> 'token'
        ORDER BY kind, code, key, customer_no
        """  # noqa: S608 - column expressions from our own code
    )


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
