"""The identity build stage: resolves `std_customers` and writes identity_map, customers,
identity_pairs, identity_model, identity_runs and the customer views (the output contract, stable
ids and survivorship are described in the package docstring, `ccrm_core.librarian.identity`).
"""

from __future__ import annotations

import time

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext, replace_table
from ccrm_core.librarian.identity.matching import (
    Resolution,
    assign_stable_ids,
    resolve_standardised,
)
from ccrm_core.librarian.identity.model import (
    COMPARISON_NAMES,
    DEFAULT_MIN_TRAIN_RECORDS,
    DEFAULT_PAIR_FLOOR,
    DEFAULT_THRESHOLD,
)
from ccrm_core.librarian.identity.overrides import overrides_for_build

CUSTOMER_VIEWS_SQL = """
CREATE OR REPLACE VIEW customer_orders AS
SELECT o.*, m.customer_id
FROM orders o JOIN identity_map m
  ON m.source_system = o.source_system AND m.source_id = o.source_id;

CREATE OR REPLACE VIEW customer_events AS
SELECT e.*, coalesce(k.customer_id, a.customer_id) AS customer_id
FROM events e
LEFT JOIN identity_map k
  ON k.source_system = e.source_system AND k.source_id = e.source_id
LEFT JOIN identity_map a
  ON e.source_id IS NULL AND a.anonymous_id = e.anonymous_id;

CREATE OR REPLACE VIEW customer_consents AS
SELECT customer_id, channel, status, ts
FROM (
    SELECT m.customer_id, c.channel, c.status, c.ts,
           row_number() OVER (PARTITION BY m.customer_id, c.channel
                              ORDER BY c.ts DESC, c.status DESC) AS rn
    FROM consents c JOIN identity_map m
      ON m.source_system = c.source_system AND m.source_id = c.source_id
) WHERE rn = 1;
"""

IDENTITY_MAP_SQL = """
CREATE OR REPLACE TABLE identity_map AS
WITH logins AS (
    SELECT e.anonymous_id, r.customer_id, count(*) AS logins, max(e.ts) AS last_login
    FROM events e
    JOIN identity_records r ON r.source_system = e.source_system AND r.source_id = e.source_id
    WHERE e.event_type = 'login' AND e.anonymous_id IS NOT NULL
    GROUP BY ALL
),
linked AS (
    SELECT anonymous_id, customer_id FROM (
        SELECT *, row_number() OVER (PARTITION BY anonymous_id
                                     ORDER BY logins DESC, last_login DESC, customer_id) AS rn
        FROM logins
    ) WHERE rn = 1
),
anonymous AS (
    SELECT DISTINCT anonymous_id FROM events WHERE anonymous_id IS NOT NULL
)
SELECT source_system, source_id, NULL::VARCHAR AS anonymous_id, customer_id, method,
       match_probability
FROM identity_records
UNION ALL
SELECT NULL::VARCHAR, NULL::VARCHAR, a.anonymous_id, l.customer_id,
       CASE WHEN l.customer_id IS NULL THEN 'anonymous' ELSE 'login' END,
       CASE WHEN l.customer_id IS NULL THEN NULL ELSE 1.0 END
FROM anonymous a LEFT JOIN linked l USING (anonymous_id)
"""

_FIELDS = ("first_name", "last_name", "email", "phone", "birth_date")
_ADDRESS = ("address_line", "city", "region", "postal_code", "country")


def _customers_sql() -> str:
    completeness = " + ".join(f"CAST(s.{c} IS NOT NULL AS INTEGER)" for c in (*_FIELDS, *_ADDRESS))
    field_sql = ",\n    ".join(
        f"arg_min({c}, rk) FILTER (WHERE {c} IS NOT NULL) AS {c}, "
        f"arg_min(source_system, rk) FILTER (WHERE {c} IS NOT NULL) AS {c}_source"
        for c in _FIELDS
    )
    address_has = " OR ".join(f"{c} IS NOT NULL" for c in ("address_line", "postal_code", "city"))
    address_struct = ", ".join(f"{c} := {c}" for c in _ADDRESS)
    address_cols = ", ".join(f"address.{c} AS {c}" for c in _ADDRESS)
    address_sources = ", ".join(
        f"CASE WHEN address.{c} IS NOT NULL THEN address_source END AS {c}_source" for c in _ADDRESS
    )
    return f"""
CREATE OR REPLACE TABLE customers AS
WITH r AS (
    SELECT m.customer_id, m.source_system, m.source_id,
           s.* EXCLUDE (source_system, source_id),
           row_number() OVER (
               PARTITION BY m.customer_id
               ORDER BY s.updated_at DESC NULLS LAST, ({completeness}) DESC,
                        m.source_system, m.source_id) AS rk
    FROM identity_records m
    -- a record known only from orders or events has no fields: a customer with its key only
    LEFT JOIN std_customers s USING (source_system, source_id)
),
g AS (
    SELECT customer_id,
    {field_sql},
    arg_min(struct_pack({address_struct}), rk) FILTER (WHERE {address_has}) AS address,
    arg_min(source_system, rk) FILTER (WHERE {address_has}) AS address_source,
    min(created_at) AS created_at,
    max(updated_at) AS updated_at,
    count(*) AS source_records,
    list(DISTINCT source_system ORDER BY source_system) AS source_systems,
    arg_min(source_system, row(coalesce(created_at, TIMESTAMP '9999-12-31'), rk)) AS first_source
    FROM r GROUP BY customer_id
)
SELECT customer_id, first_name, last_name, email, phone, {address_cols}, birth_date,
       created_at, updated_at,
       first_name_source, last_name_source, email_source, phone_source, {address_sources},
       birth_date_source, source_records, source_systems, first_source
FROM g
ORDER BY customer_id
"""  # noqa: S608 - our own column names


IDENTITY_RUNS_SQL = """
CREATE TABLE IF NOT EXISTS identity_runs (
    run_id          BIGINT NOT NULL,
    built_at        TIMESTAMP NOT NULL,
    records         BIGINT NOT NULL,   -- source records resolved
    customers       BIGINT NOT NULL,
    threshold       DOUBLE NOT NULL,   -- match probability at or above which a pair links
    pair_floor      DOUBLE NOT NULL,   -- pairs below this probability are not stored
    prior_weight    DOUBLE,            -- log2 odds that two random records match
    trained         BOOLEAN,
    deterministic_pairs BIGINT,
    probabilistic_pairs BIGINT,        -- stored pairs (above the floor)
    accepted_pairs  BIGINT,            -- probabilistic pairs at or above the threshold
    ids_kept        BIGINT,            -- customers that kept an id from the previous build
    id_high_water   BIGINT NOT NULL,   -- highest customer_id number ever issued
    seconds         DOUBLE
)
"""
# Columns added since identity_runs was first written (older databases gain them on the next
# build): how the model adapted to the fields present, and the steward's overrides.
IDENTITY_RUNS_ADDED = (
    ("blocking_rules", "VARCHAR"),  # the rules that chose the pairs to score, '; '-separated
    ("training_blocks", "VARCHAR"),  # the blocks EM trained on, '; '-separated
    ("training_notes", "VARCHAR"),  # one line each: what was not trained, which field would help
    ("overrides_applied", "BIGINT"),  # manual links and splits in force this build
    ("overrides_skipped", "BIGINT"),  # decisions about records gone, or links refused by a split
)


def identity_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Resolve `std_customers` into customers; writes identity_map, customers, identity_pairs,
    identity_model, appends identity_runs, and (re)creates the customer views.

    Settings (`ctx.param("identity", ...)`): threshold (0.95), pair_floor (0.01),
    min_train_records (2000), threads (DuckDB threads for matching; default all),
    link_only_systems (comma-separated source systems that hold one record per person, e.g. a
    new purchased list: their records are linked to other systems' records, never to each
    other). A steward's overrides (`identity_overrides`) are applied on every build.
    """
    t0 = time.perf_counter()
    threshold, pair_floor = _checked_settings(con, ctx)
    std = con.execute("SELECT * FROM std_customers ORDER BY source_system, source_id").df()
    overrides, gone = overrides_for_build(con, std[["source_system", "source_id"]])
    result = resolve_standardised(
        std,
        threshold=threshold,
        pair_floor=pair_floor,
        min_train_records=int(
            ctx.param("identity", "min_train_records", DEFAULT_MIN_TRAIN_RECORDS)
        ),
        # matching runs on its own connection: as many threads as the build's unless set
        threads=ctx.param("identity", "threads", None)
        or con.execute("SELECT current_setting('threads')").fetchall()[0][0],
        link_groups=_link_groups(std, ctx.param("identity", "link_only_systems", "")),
        overrides=overrides,
    )
    records, kept, high_water = _stable_customer_ids(
        con, _with_records_known_only_from_activity(con, result.records)
    )
    _write_tables(con, result, records)
    applied = len(overrides) - len(result.refused_links)
    _record_run(
        con, ctx, result, len(records), threshold, pair_floor, kept, high_water, t0,
        (applied, gone + len(result.refused_links)),
    )  # fmt: skip
    return con.execute("SELECT count(*) FROM identity_map").fetchall()[0][0]


# Keys that orders or events carry but no customer record has: a shop export loaded without
# its customer file, or a customer file that missed some buyers.
ACTIVITY_ONLY_KEYS_SQL = """
SELECT source_system, source_id FROM (
    SELECT source_system, source_id FROM orders
    UNION SELECT source_system, source_id FROM events
) k
WHERE source_system IS NOT NULL AND source_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM std_customers s
                  WHERE s.source_system = k.source_system AND s.source_id = k.source_id)
ORDER BY source_system, source_id
"""


def _with_records_known_only_from_activity(
    con: duckdb.DuckDBPyConnection, records: pd.DataFrame
) -> pd.DataFrame:
    """The resolved records plus one record per (source_system, source_id) that orders or events
    carry without a customer record: each is a customer of its own (nothing to match it on),
    method 'no_customer_record', so its orders and events still belong to a customer."""
    keys = con.execute(ACTIVITY_ONLY_KEYS_SQL).df()
    if keys.empty:
        return records
    first = len(records)  # uids and clusters of resolved records are below this
    uids = np.arange(first, first + len(keys), dtype=np.int64)
    extra = pd.DataFrame(
        {
            "source_system": keys["source_system"].to_numpy(),
            "source_id": keys["source_id"].to_numpy(),
            "uid": uids,
            "cluster": uids,
            "method": "no_customer_record",
            "match_probability": 1.0,
        }
    )
    return pd.concat(
        [records, extra.astype({"cluster": records["cluster"].dtype})], ignore_index=True
    )


def _link_groups(std: pd.DataFrame, systems: object) -> np.ndarray:
    """Per record, its link group: 1, 2, ... for the records of each link-only system (never
    linked to each other), 0 for every other record."""
    names = [s.strip() for s in str(systems or "").split(",") if s.strip()]
    groups = np.zeros(len(std), dtype=np.int64)
    for i, name in enumerate(sorted(set(names)), start=1):
        groups[(std["source_system"] == name).to_numpy()] = i
    return groups


def _checked_settings(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> tuple[float, float]:
    """(threshold, pair_floor) from the build settings, once `std_customers` is known to exist;
    raises naming what to run or fix otherwise."""
    if not store.table_exists(con, "std_customers"):
        raise RuntimeError(
            "table std_customers is missing: run the `standardise` stage first "
            "(`ccrm build --stage standardise --stage identity`)"
        )
    threshold = float(ctx.param("identity", "threshold", DEFAULT_THRESHOLD))
    pair_floor = float(ctx.param("identity", "pair_floor", DEFAULT_PAIR_FLOOR))
    if not 0.0 < pair_floor <= threshold <= 1.0:
        raise ValueError(
            f"identity settings: need 0 < pair_floor ({pair_floor}) <= threshold ({threshold}) "
            "<= 1; fix the values passed to `ccrm build`"
        )
    return threshold, pair_floor


def _stable_customer_ids(
    con: duckdb.DuckDBPyConnection, records: pd.DataFrame
) -> tuple[pd.DataFrame, int, int]:
    """The resolved records with their customer_id, kept from the previous build where clusters
    carry on (creates identity_runs if missing, for the high-water number): (records, customers
    that kept an id, new high-water number)."""
    con.execute(IDENTITY_RUNS_SQL)
    for column, sql_type in IDENTITY_RUNS_ADDED:
        con.execute(f"ALTER TABLE identity_runs ADD COLUMN IF NOT EXISTS {column} {sql_type}")
    high_water = con.execute(
        "SELECT coalesce(max(id_high_water), 0) FROM identity_runs"
    ).fetchall()[0][0]
    if store.table_exists(con, "identity_map"):
        previous = con.execute(
            "SELECT source_system, source_id, customer_id FROM identity_map "
            "WHERE source_id IS NOT NULL"
        ).df()
    else:
        previous = pd.DataFrame(columns=["source_system", "source_id", "customer_id"])
    ids, high_water = assign_stable_ids(records, previous, high_water)
    records = records.assign(customer_id=ids.astype("str"))  # text also when there are none
    kept = int(
        records["customer_id"]
        .isin(set(previous["customer_id"]))
        .groupby(records["customer_id"])
        .first()
        .sum()
    )
    return records, kept, high_water


def _write_tables(
    con: duckdb.DuckDBPyConnection, result: Resolution, records: pd.DataFrame
) -> None:
    """identity_map, customers, identity_pairs, identity_model and the customer views, through
    a working `identity_records` table dropped at the end."""
    replace_table(
        con,
        "identity_records",
        records[
            ["source_system", "source_id", "uid", "customer_id", "method", "match_probability"]
        ],
    )
    con.execute(IDENTITY_MAP_SQL)
    con.execute(_customers_sql())
    _write_pairs(con, result, records)
    _write_clusters(con, result, records)
    replace_table(con, "identity_model", result.model)
    con.execute(CUSTOMER_VIEWS_SQL)
    con.execute("DROP TABLE identity_records")


def _record_run(
    con: duckdb.DuckDBPyConnection,
    ctx: BuildContext,
    result: Resolution,
    records: int,
    threshold: float,
    pair_floor: float,
    kept: int,
    high_water: int,
    started: float,
    overrides: tuple[int, int],
) -> None:
    """Append this build's row to identity_runs (`started`: the stage's perf_counter start;
    `overrides`: applied, skipped)."""
    customers = con.execute("SELECT count(*) FROM customers").fetchall()[0][0]
    pairs = result.pairs
    prob = pairs[pairs["method"] == "probabilistic"]
    report = result.report
    row = {
        "run_id": ctx.run_id,
        "records": records,
        "customers": customers,
        "threshold": threshold,
        "pair_floor": pair_floor,
        "prior_weight": result.prior_weight,
        "trained": result.trained,
        "deterministic_pairs": int(pairs["method"].isin(["email", "phone_last_name"]).sum()),
        "probabilistic_pairs": len(prob),
        "accepted_pairs": int((prob["match_probability"] >= threshold).sum()),
        "ids_kept": kept,
        "id_high_water": int(high_water),
        "seconds": time.perf_counter() - started,
        "blocking_rules": "; ".join(report.blocking_rules),
        "training_blocks": "; ".join(report.training_blocks),
        "training_notes": "\n".join(report.notes),
        "overrides_applied": overrides[0],
        "overrides_skipped": overrides[1],
    }
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    con.execute(
        f"INSERT INTO identity_runs (built_at, {names}) VALUES (current_timestamp, {marks})",  # noqa: S608 - our column names
        list(row.values()),
    )


def _write_pairs(con: duckdb.DuckDBPyConnection, result: Resolution, records: pd.DataFrame):
    pairs = result.pairs
    keys = records.set_index("uid")
    out = pd.DataFrame(
        {
            "uid_l": pairs["uid_l"].astype(np.int64),
            "uid_r": pairs["uid_r"].astype(np.int64),
            "source_system_l": keys["source_system"].reindex(pairs["uid_l"]).to_numpy(),
            "source_id_l": keys["source_id"].reindex(pairs["uid_l"]).to_numpy(),
            "source_system_r": keys["source_system"].reindex(pairs["uid_r"]).to_numpy(),
            "source_id_r": keys["source_id"].reindex(pairs["uid_r"]).to_numpy(),
            "method": pairs["method"].astype(object),
            "match_probability": pairs["match_probability"].astype(float),
            "match_weight": pairs["match_weight"].astype(float),
        }
    )
    for name in COMPARISON_NAMES:
        out[f"mw_{name}"] = pairs[f"mw_{name}"].astype(float).to_numpy()
        out[f"gamma_{name}"] = pd.array(pairs[f"gamma_{name}"], dtype="Int64")
    replace_table(con, "identity_pairs", out)


def _write_clusters(con: duckdb.DuckDBPyConnection, result: Resolution, records: pd.DataFrame):
    """identity_clusters: one row per customer of 2+ records with its graph figures (see
    `clusters`): records, links, density, weakest_link and that link's two records."""
    figures = result.clusters
    ids = records.set_index("uid")["customer_id"]
    keys = records.set_index("uid")[["source_system", "source_id"]]
    left = keys.reindex(figures["weakest_uid_l"]).reset_index(drop=True)
    right = keys.reindex(figures["weakest_uid_r"]).reset_index(drop=True)
    out = pd.DataFrame(
        {
            "customer_id": ids.reindex(figures["cluster"]).to_numpy().astype(object),
            "records": figures["size"].astype(np.int64).to_numpy(),
            "links": figures["links"].astype(np.int64).to_numpy(),
            "density": figures["density"].astype(float).to_numpy(),
            "weakest_link": figures["weakest_link"].astype(float).to_numpy(),
            "weakest_uid_l": figures["weakest_uid_l"].astype(np.int64).to_numpy(),
            "weakest_uid_r": figures["weakest_uid_r"].astype(np.int64).to_numpy(),
            "weakest_source_system_l": left["source_system"].to_numpy().astype(object),
            "weakest_source_id_l": left["source_id"].to_numpy().astype(object),
            "weakest_source_system_r": right["source_system"].to_numpy().astype(object),
            "weakest_source_id_r": right["source_id"].to_numpy().astype(object),
        }
    ).sort_values("customer_id", ignore_index=True)
    replace_table(con, "identity_clusters", out)
