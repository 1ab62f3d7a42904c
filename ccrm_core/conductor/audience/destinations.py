"""Platform-ready audiences: a segment's people for Google Ads Customer Match or a Meta Custom
Audience, with every linked, consented identifier, written and hashed the way each platform
documents (ccrm_core.conductor.audience.normalise).

Who is left out, with the first reason that applies (one person, one reason):
1. "opted out of ad_user_data" / "opted out of ad_personalization": any of the person's source
   records carries an opt-out for the purpose (`ad_consents`; opt-out wins across records);
2. "no ad_user_data consent (EEA, UK or Switzerland)" / "no ad_personalization consent (...)":
   the person lives in AD_CONSENT_REGION (the golden record's or any linked record's country is
   there, or no country is known at all) and no record holds an opt-in for ad_user_data / no
   record holds opt-ins for both purposes. There, only the emails and phones of records holding
   both opt-ins are sent (a record merged in without consent never leaks its identifiers).
   Google's EU user consent policy asks for both purposes for the EEA, the UK and Switzerland,
   so the region is the EEA (EU member states, Iceland, Liechtenstein, Norway) plus GB and CH;
3. "opted out of <channel>": the destination's media channel (paid_search for Google Ads,
   social for Meta) is opted out on any linked record in `consents`. A person with no row for
   the channel is not left out: for ad platforms the ad purposes above are the permission;
4. the contact policy's frequency caps for that channel, when the policy caps it
   (conductor/contact_policy.toml; none by default for paid_search and social);
5. "no email or phone to match".

Every email and phone of every record linked to the person (`std_customers`: valid addresses,
E.164 phones) is sent, one per row: a person with two emails and one phone gets two rows, the
phone on the first. Names, city, region, postal code, country and birth year come from the
golden record (`customers`) and repeat on every row. The summary counts people, not rows.

Everything per person and per identifier runs in DuckDB, set-wise: the consent facts, the
normalising (normalise_sql: SQL for ASCII values, the Python reference of `normalise` for the
rest), the file's rows and the SHA-256 hashes. Audiences travel as Arrow tables; the pandas
views (`people`, `upload_rows`) are made only when asked for.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ccrm_core.conductor.audience.channel import (
    _exclusion_counts,
    _policy_suppressions,
)
from ccrm_core.conductor.audience.normalise_sql import birth_year_sql, python_rules, rule_sql
from ccrm_core.foundation import store
from ccrm_core.radar import segments

# European Economic Area: the 27 EU member states, Iceland, Liechtenstein and Norway.
EEA_COUNTRIES = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE "
    "IS LI NO".split()
)
# Where an ad platform needs a recorded opt-in for both ad purposes: Google's EU user consent
# policy covers the EEA, the United Kingdom and Switzerland.
AD_CONSENT_REGION = EEA_COUNTRIES | {"GB", "CH"}
REGION_LABEL = "EEA, UK or Switzerland"


@dataclass(frozen=True)
class Destination:
    """An ad platform an audience can be sent to."""

    name: str  # google_ads, meta
    label: str  # in users' words
    channel: str  # the media channel whose consent and caps apply
    columns: tuple[str, ...]  # the upload file's columns, in order
    hashed: tuple[str, ...]  # columns sent as SHA-256 (the rest in clear)
    email_column: str
    phone_column: str


GOOGLE_ADS = Destination(
    "google_ads",
    "Google Ads Customer Match",
    "paid_search",
    ("Email", "Phone", "First Name", "Last Name", "Country", "Zip"),
    ("Email", "Phone", "First Name", "Last Name"),
    "Email",
    "Phone",
)
META = Destination(
    "meta",
    "Meta Custom Audience",
    "social",
    (
        "EMAIL", "PHONE", "FN", "LN", "ZIP", "CT", "ST", "COUNTRY", "DOBY", "GEN", "EXTERN_ID",
        "VALUE",
    ),
    ("EMAIL", "PHONE", "FN", "LN", "ZIP", "CT", "ST", "COUNTRY", "DOBY", "GEN"),
    "EMAIL",
    "PHONE",
)  # fmt: skip
DESTINATIONS: dict[str, Destination] = {d.name: d for d in (GOOGLE_ADS, META)}

# How each destination writes an email and a phone before hashing (normalise_sql.RULES).
_EMAIL_RULE = {"google_ads": "google_email", "meta": "meta_email"}
_PHONE_RULE = {"google_ads": "google_phone", "meta": "meta_phone"}
# The destination's person-level columns: SQL over the golden record `g`, its upper-cased
# country `country` and the member's 12-month CLV `g.clv` (VALUE: never missing or negative, in
# cents, rounded half to even as pandas rounds).
_PERSON_SQL = {
    "google_ads": {
        "First Name": rule_sql("google_first_name", "g.first_name"),
        "Last Name": rule_sql("google_last_name", "g.last_name"),
        "Country": rule_sql("google_country", "country"),
        "Zip": rule_sql("google_zip", "g.postal_code", "country"),
    },
    "meta": {
        "FN": rule_sql("meta_name", "g.first_name"),
        "LN": rule_sql("meta_name", "g.last_name"),
        "ZIP": rule_sql("meta_zip", "g.postal_code", "country"),
        "CT": rule_sql("meta_city", "g.city"),
        "ST": rule_sql("meta_state", "g.region"),
        "COUNTRY": rule_sql("meta_country", "country"),
        "DOBY": birth_year_sql("g.birth_date"),
        "GEN": "CAST(NULL AS VARCHAR)",  # the data contract holds no gender
        "EXTERN_ID": "g.customer_id",
        "VALUE": "round_even(CASE WHEN g.clv IS NULL OR isnan(g.clv) THEN 0.0 "
        "ELSE greatest(CAST(g.clv AS DOUBLE), 0.0) END * 100.0, 0) / 100.0",
    },
}


@dataclass
class DestinationAudience:
    """A segment's audience for one destination.

    `people`: one row per person who may be sent (customer_id, value = 12-month CLV, emails and
    phones = lists of normalised values, and the destination's person-level columns, normalised,
    in clear). `exclusions`: reason, customers (largest first). `members`: segment size."""

    destination: Destination
    scheme: str
    segment: str
    members: int
    table: pa.Table  # `people` as Arrow: what the export works from
    exclusions: pd.DataFrame

    @property
    def excluded(self) -> int:
        return int(self.exclusions["customers"].sum()) if len(self.exclusions) else 0

    @functools.cached_property
    def people(self) -> pd.DataFrame:
        frame = self.table.drop_columns(["emails", "phones"]).to_pandas()
        frame.insert(1, "emails", self.table.column("emails").to_pylist())
        frame.insert(2, "phones", self.table.column("phones").to_pylist())
        return frame


def destination(name: str) -> Destination:
    """The Destination called `name`; ValueError naming the choices otherwise."""
    if name not in DESTINATIONS:
        raise ValueError(
            f"unknown destination {name!r}; choose one of generic, {', '.join(DESTINATIONS)}"
        )
    return DESTINATIONS[name]


def _require_inputs(con: duckdb.DuckDBPyConnection) -> None:
    for table, stage in (("mart_customer", "segments"), ("std_customers", "standardise")):
        if not store.table_exists(con, table):
            raise ValueError(f"{table} does not exist yet; run `ccrm build` ({stage} stage)")


_PEOPLE_SQL = """
WITH members AS (SELECT customer_id, clv FROM mart_customer WHERE {cond}),
records AS (
    SELECT i.customer_id, i.source_system, i.source_id
    FROM identity_map i JOIN members m USING (customer_id)
    WHERE i.source_id IS NOT NULL
),
record_ad AS (  -- per source record: its ad-purpose consents (one row per purpose at most)
    SELECT r.customer_id, r.source_system, r.source_id,
           coalesce(bool_or(a.purpose = 'ad_user_data' AND a.status = 'opt_in'), false)
               AS user_data_in,
           coalesce(bool_or(a.purpose = 'ad_personalization' AND a.status = 'opt_in'), false)
               AS personalization_in,
           coalesce(bool_or(a.purpose = 'ad_user_data' AND a.status = 'opt_out'), false)
               AS user_data_out,
           coalesce(bool_or(a.purpose = 'ad_personalization' AND a.status = 'opt_out'), false)
               AS personalization_out
    FROM records r LEFT JOIN ad_consents a USING (source_system, source_id)
    GROUP BY ALL
),
record_contacts AS (  -- per source record: its email and phone as the destination writes them
    SELECT x.*, s.country,
           CASE WHEN s.email_status = 'valid' THEN {email} END AS email,
           CASE WHEN s.phone_status = 'valid' THEN {phone} END AS phone
    FROM record_ad x LEFT JOIN std_customers s USING (source_system, source_id)
),
contacts AS (
    SELECT customer_id,
           list(email) AS emails,
           list(phone) AS phones,
           list(email) FILTER (WHERE user_data_in AND personalization_in) AS consented_emails,
           list(phone) FILTER (WHERE user_data_in AND personalization_in) AS consented_phones,
           bool_or(list_contains(?::VARCHAR[], upper(trim(country)))) AS record_in_region,
           bool_or(trim(country) <> '') AS record_country_known,
           bool_or(user_data_out) AS user_data_out,
           bool_or(personalization_out) AS personalization_out,
           bool_or(user_data_in) AS user_data_in,
           bool_or(user_data_in AND personalization_in) AS both_in
    FROM record_contacts
    GROUP BY customer_id
),
channel_out AS (
    SELECT r.customer_id, bool_or(c.status = 'opt_out') AS channel_out
    FROM records r JOIN consents c USING (source_system, source_id)
    WHERE c.channel = ?
    GROUP BY r.customer_id
),
facts AS (
    SELECT m.customer_id, m.clv, g.first_name, g.last_name, g.city, g.region, g.postal_code,
           g.birth_date, upper(trim(g.country)) AS country,
           coalesce(k.record_in_region, false) AS record_in_region,
           coalesce(k.record_country_known, false) AS record_country_known,
           k.emails, k.phones, k.consented_emails, k.consented_phones,
           coalesce(k.user_data_out, false) AS user_data_out,
           coalesce(k.personalization_out, false) AS personalization_out,
           coalesce(k.user_data_in, false) AS user_data_in,
           coalesce(k.both_in, false) AS both_in,
           coalesce(o.channel_out, false) AS channel_out
    FROM members m
    LEFT JOIN customers g USING (customer_id)
    LEFT JOIN contacts k USING (customer_id)
    LEFT JOIN channel_out o USING (customer_id)
),
placed AS (  -- in_consent_region: a known country in the region, or no country known at all
    SELECT *,
           coalesce(list_contains(?::VARCHAR[], country), false) OR record_in_region
           OR (coalesce(country, '') = '' AND NOT record_country_known) AS in_region
    FROM facts
)
-- list_distinct drops NULLs (values the destination cannot use); the lists are sorted
SELECT g.customer_id, g.in_region, g.user_data_out, g.personalization_out, g.user_data_in,
       g.both_in, g.channel_out,
       list_sort(list_distinct(coalesce(
           CASE WHEN g.in_region THEN g.consented_emails ELSE g.emails END, []))) AS emails,
       list_sort(list_distinct(coalesce(
           CASE WHEN g.in_region THEN g.consented_phones ELSE g.phones END, []))) AS phones,
       {person}
FROM placed g
ORDER BY g.customer_id
"""
_FACT_COLUMNS = [
    "customer_id", "in_region", "user_data_out", "personalization_out", "user_data_in",
    "both_in", "channel_out",
]  # fmt: skip


def _member_facts(
    con: duckdb.DuckDBPyConnection, cond: str, params: list, dest: Destination
) -> pa.Table:
    """One row per customer of mart_customer matching `cond` (our SQL from
    segments.segment_condition; values in `params`), by customer_id: whether they are in the
    consent region, their ad-purpose and channel consents, the emails and phones that may be
    sent (every distinct normalised value of their consented records in the region, of all their
    records elsewhere; sorted) and the destination's person-level columns, normalised."""
    person = ",\n       ".join(
        f"{sql} AS {store.quote_ident(name)}" for name, sql in _PERSON_SQL[dest.name].items()
    )
    query = _PEOPLE_SQL.format(
        cond=cond,
        email=rule_sql(_EMAIL_RULE[dest.name], "s.email"),
        phone=rule_sql(_PHONE_RULE[dest.name], "s.phone"),
        person=person,
    )
    region = sorted(AD_CONSENT_REGION)
    cur = con.cursor()  # the Python rules are registered on a cursor of our own
    try:
        with python_rules(cur):
            return cur.sql(  # noqa: S608 - cond is segments SQL; values are parameters
                query, params=[*params, region, dest.channel, region]
            ).to_arrow_table()
    finally:
        cur.close()


def in_consent_region(facts: pd.DataFrame) -> np.ndarray:
    """Per person: True when an ad platform needs a recorded opt-in (AD_CONSENT_REGION): the
    golden country or any record's country is in the region, or no country is known at all.
    (`country`: the golden record's, `record_countries`: its records'; the export computes the
    same in SQL.)"""
    golden = facts["country"].astype(object)
    records = facts["record_countries"]
    out = np.empty(len(facts), dtype=bool)
    for i, (country, others) in enumerate(zip(golden, records, strict=True)):
        known = [c for c in [country, *list(others)] if isinstance(c, str) and c]
        out[i] = not known or any(c in AD_CONSENT_REGION for c in known)
    return out


def ad_consent_reasons(facts: pd.DataFrame, channel: str) -> pd.Series:
    """The consent reason per person (None = may be sent), rules 1-3 of the module docstring.
    `facts`: in_region, user_data_out, personalization_out, user_data_in, both_in and
    channel_out per person (booleans)."""
    region = facts["in_region"].to_numpy(bool)
    checks = (
        (facts["user_data_out"].to_numpy(bool), "opted out of ad_user_data"),
        (facts["personalization_out"].to_numpy(bool), "opted out of ad_personalization"),
        (
            region & ~facts["user_data_in"].to_numpy(bool),
            f"no ad_user_data consent ({REGION_LABEL})",
        ),
        (  # no record holding both opt-ins, whose identifiers could be sent
            region & ~facts["both_in"].to_numpy(bool),
            f"no ad_personalization consent ({REGION_LABEL})",
        ),
        (facts["channel_out"].to_numpy(bool), f"opted out of {channel}"),
    )
    reason = np.full(len(facts), None, dtype=object)
    decided = np.zeros(len(facts), dtype=bool)
    for mask, text in checks:  # the first reason that applies wins
        hit = mask & ~decided
        reason[hit] = text
        decided |= hit
    return pd.Series(reason, index=facts.index, dtype=object)


def _build(
    con: duckdb.DuckDBPyConnection, dest: Destination, cond: str, params: list
) -> tuple[pa.Table, pd.Series, int]:
    """(people who may be sent, the exclusion reason of everyone else, members)."""
    facts = _member_facts(con, cond, params, dest)
    flags = facts.select(_FACT_COLUMNS).to_pandas()
    reason = ad_consent_reasons(flags, dest.channel)
    open_ = reason.isna()
    reason[open_] = _policy_suppressions(con, dest.channel, flags.loc[open_, "customer_id"])
    count = pc.add(pc.list_value_length(facts["emails"]), pc.list_value_length(facts["phones"]))
    reachable = count.to_numpy() > 0
    reason[reason.isna() & ~reachable] = "no email or phone to match"
    keep = reason.isna().to_numpy()
    people = facts.filter(pa.array(keep)).select(
        ["customer_id", "emails", "phones", *_PERSON_SQL[dest.name]]
    )
    return people, reason[~keep], len(facts)


def build_destination_audience(
    con: duckdb.DuckDBPyConnection, scheme: str, segment: str, destination_name: str
) -> DestinationAudience:
    """The audience of one segment for one destination (see the module docstring)."""
    dest = destination(destination_name)
    _require_inputs(con)
    cond, params = segments.segment_condition(con, scheme, segment)
    people, excluded, members = _build(con, dest, cond, params)
    return DestinationAudience(dest, scheme, segment, members, people, _exclusion_counts(excluded))


def _sha256_sql(value: str) -> str:
    """normalise.sha256_hex in SQL: None for a missing or empty value."""
    return f"CASE WHEN {value} <> '' THEN sha256({value}) END"


def _people_table(people: pd.DataFrame | pa.Table, dest: Destination) -> pa.Table:
    """`people` (DestinationAudience.table, or its pandas view) as Arrow."""
    if isinstance(people, pa.Table):
        return people
    text = pa.list_(pa.string())
    columns = {
        "customer_id": pa.array(people["customer_id"].astype(object), pa.string()),
        "emails": pa.array([list(v) for v in people["emails"]], text),
        "phones": pa.array([list(v) for v in people["phones"]], text),
    }
    for name in _PERSON_SQL[dest.name]:
        values = people[name].astype(object).where(people[name].notna(), None)
        kind = pa.float64() if name == "VALUE" else pa.string()
        columns[name] = pa.array(list(values), kind)
    return pa.table(columns)


def upload_table(
    people: pd.DataFrame | pa.Table, dest: Destination, *, hashed: bool = True, keys: bool = False
) -> pa.Table:
    """The upload file as Arrow: one row per email or phone (a person's n-th email and n-th
    phone share row n; person-level columns repeat), in `dest.columns` order. Hashed columns
    hold SHA-256 of the normalised values; `hashed=False` (admins) leaves them normalised, in
    clear. `keys` adds email_key and phone_key (the SHA-256 of the row's email and phone)."""
    table = _people_table(people, dest)
    table = table.append_column("person", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    row_value = {dest.email_column: "email", dest.phone_column: "phone"}
    columns = []
    for column in dest.columns:
        value = row_value.get(column, store.quote_ident(column))
        if hashed and column in dest.hashed:
            value = _sha256_sql(value)
        columns.append(f"{value} AS {store.quote_ident(column)}")
    if keys:
        columns += [f"{_sha256_sql('email')} AS email_key", f"{_sha256_sql('phone')} AS phone_key"]
    query = f"""
        WITH rows AS (
            SELECT *, unnest(range(1, greatest(len(emails), len(phones), 1) + 1)) AS n
            FROM people
        )
        SELECT {", ".join(columns)}
        FROM (SELECT *, emails[n] AS email, phones[n] AS phone FROM rows)
        ORDER BY person, n
    """  # noqa: S608 - column names are the destination's, from our own code
    with duckdb.connect() as local:  # in memory: the rows need nothing from the database
        local.register("people", table)
        return local.sql(query).to_arrow_table()


def as_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table of a destination file as pandas: text as object columns (None where
    missing), numbers as they are."""
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        values = column.to_numpy(zero_copy_only=False)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            values = pd.Series(values, dtype=object)
        columns[name] = values
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))


def upload_rows(people: pd.DataFrame, dest: Destination, *, hashed: bool = True) -> pd.DataFrame:
    """`upload_table` as pandas (text columns hold None where missing)."""
    return as_frame(upload_table(people, dest, hashed=hashed))


def removal_rows(
    email_keys: list[str], phone_keys: list[str], extern_ids: list[str], dest: Destination
) -> pd.DataFrame:
    """A removal file: one row per hashed email or phone to take out of the platform's list
    (other columns empty; Meta's EXTERN_ID names the person)."""
    n_email = len(email_keys)
    frame = pd.DataFrame(index=range(n_email + len(phone_keys)), columns=list(dest.columns))
    frame = frame.astype(object)
    frame[dest.email_column] = [*email_keys, *([None] * len(phone_keys))]
    frame[dest.phone_column] = [*([None] * n_email), *phone_keys]
    if "EXTERN_ID" in frame.columns:
        frame["EXTERN_ID"] = extern_ids
    return frame


def destination_reach(con: duckdb.DuckDBPyConnection, scheme: str) -> pd.DataFrame:
    """Per segment of `scheme`: people who may be sent to each destination (segment,
    reach_<destination>), computed once over the whole base (or once per saved segment)."""
    _require_inputs(con)
    names = segments.segment_names(con, scheme)
    out = pd.DataFrame({"segment": pd.Series(names, dtype=object)})  # object even when empty
    for dest in DESTINATIONS.values():
        if scheme == segments.SAVED_SCHEME:
            counts = {}
            for name in names:
                cond, params = segments.segment_condition(con, scheme, name)
                counts[name] = len(_build(con, dest, cond, params)[0])
        else:
            people, _, _ = _build(con, dest, "TRUE", [])
            col = store.quote_ident(scheme)
            member_of = con.execute(
                f"SELECT customer_id, {col} AS segment FROM mart_customer"  # noqa: S608
            ).df()
            sent = member_of[member_of["customer_id"].isin(people["customer_id"].to_pandas())]
            counts = sent.groupby("segment").size().to_dict()
        out[f"reach_{dest.name}"] = [int(counts.get(n, 0)) for n in names]
    return out
