"""Identity resolution: source records and anonymous ids -> one customer_id per person.

Output contract (other stages and pages read only these):
- `identity_map` (source_system, source_id, anonymous_id, customer_id, method, match_probability):
  one row per source record (anonymous_id NULL) and one per anonymous id seen in `events`
  (source columns NULL; customer_id NULL while the id never logged in).
- `customers`: one golden record per customer (customer_id, the standardised src_customers
  fields, `<field>_source` provenance, source_records, source_systems, first_source).
- views `customer_orders`, `customer_events` (raw rows plus customer_id; anonymous events carry
  the customer of their linked cookie, NULL while unlinked) and `customer_consents`
  (customer_id, channel, status, ts: the latest permission per customer and channel).

Method (reads `std_customers` from the `standardise` stage):
1. Deterministic links: the same valid email (matching key: lower case, '+tag' and Gmail dots
   dropped); the same E.164 phone and last name. Records so linked form "deterministic
   clusters".
2. Probabilistic links (Splink, Fellegi-Sunter on DuckDB) between records of *different*
   deterministic clusters only, over a handful of blocking rules. Parameters are trained without
   labels (u by random sampling, m by expectation maximisation on two blocking rules, the prior
   from the deterministic links) when there are at least `min_train_records` records; smaller
   sets use the built-in default parameters. A pair links when its match probability is at
   least the threshold (`identity.threshold`, default 0.95).
3. Customers are the connected components of all links. `identity_map.method` says how a record
   joined its customer: 'email', 'phone_last_name', 'probabilistic', or 'single_record';
   match_probability is 1.0 for deterministic links and single records, else the best
   probability among the record's accepted probabilistic links.
4. Anonymous ids: an id that logged in (`login` event carrying both ids) belongs to the customer
   it logged in as most often (ties: the latest login); method 'login'. Others: 'anonymous'.
5. Stable ids: a customer keeps the customer_id of the previous build's customer that gives it the
   most records (each old id goes to the new customer holding most of its records), so a
   customer whose records did not change keeps its id, and one that only gained new records too.
   New customers get new ids above the highest ever issued (`identity_runs.id_high_water`).

Survivorship of the golden record, per field: the most recent valid value (record `updated_at`,
latest first), ties and undated records by the most complete record (most non-null fields),
then source_system, source_id. The address (address_line, city, region, postal_code, country)
survives as one block from one record so lines and codes never mix. `created_at` is the
earliest, `updated_at` the latest of the records. `<field>_source` names the source system that
gave each field.

Pairwise predictions above `identity.pair_floor` (default 0.01) are kept in `identity_pairs`,
with each comparison's match weight, so the page can re-cluster at any threshold and explain a
match without re-running the model.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext, replace_table
from ccrm_core.librarian.standardise import standardise_records

DEFAULT_THRESHOLD = 0.95
DEFAULT_PAIR_FLOOR = 0.01
DEFAULT_MIN_TRAIN_RECORDS = 2000
# Bounds that keep training time flat as data grows (pairs sampled for u, pairs for each EM).
U_MAX_PAIRS = 5e5
U_MIN_COUNT_PER_LEVEL = 100  # stop sampling early once every level was seen this often
EM_MAX_PAIRS = 1e6
# Share of all true duplicate pairs the deterministic rules are assumed to find; sets the prior.
DETERMINISTIC_RECALL = 0.7
SEED = 42
# Prior match probability of two random records when there is too little data to train: low on
# purpose, so small record sets link only on strong evidence (names alone never suffice).
UNTRAINED_PRIOR = 1e-4

METHODS = ("email", "phone_last_name", "probabilistic", "single_record", "login", "anonymous")

# Nicknames -> canonical first name (lower case). Used only to compare first names.
NICKNAMES: dict[str, str] = {
    nick: name
    for name, nicks in {
        "robert": "bob bobby rob robbie bert",
        "william": "bill billy will willie liam",
        "richard": "rick ricky dick rich richie",
        "james": "jim jimmy jamie",
        "john": "jack johnny jon",
        "joseph": "joe joey",
        "michael": "mike mikey mick",
        "thomas": "tom tommy",
        "charles": "charlie chuck chas",
        "christopher": "chris kit",
        "daniel": "dan danny",
        "matthew": "matt matty",
        "anthony": "tony",
        "andrew": "andy drew",
        "edward": "ed eddie ted ned",
        "david": "dave davy",
        "joshua": "josh",
        "benjamin": "ben benny",
        "samuel": "sam sammy",
        "alexander": "alex al",
        "nicholas": "nick nicky",
        "jonathan": "jon jonny",
        "timothy": "tim timmy",
        "patrick": "pat paddy",
        "peter": "pete",
        "gregory": "greg",
        "kenneth": "ken kenny",
        "ronald": "ron ronnie",
        "donald": "don donnie",
        "lawrence": "larry",
        "gerald": "gerry jerry",
        "raymond": "ray",
        "frederick": "fred freddie",
        "elizabeth": "liz beth betty lizzie eliza libby",
        "margaret": "maggie meg peggy",
        "katherine": "kate katie kathy kat",
        "catherine": "cathy cate",
        "jennifer": "jen jenny",
        "patricia": "pat patty trish",
        "susan": "sue susie",
        "deborah": "deb debbie",
        "rebecca": "becky becca",
        "victoria": "vicky tori",
        "christine": "chris chrissy",
        "jessica": "jess jessie",
        "abigail": "abby",
        "samantha": "sam sammie",
        "alexandra": "alex lexi",
        "barbara": "barb babs",
        "dorothy": "dot dottie",
        "kimberly": "kim",
        "pamela": "pam",
        "cynthia": "cindy",
        "amanda": "mandy",
        "melissa": "mel missy",
        "stephanie": "steph",
        "nancy": "nan",
        "theresa": "tess terri",
        "steven": "steve stevie stephen",
        "christina": "tina chrissy",
        "jacqueline": "jackie",
        "theodore": "theo teddy",
        "zachary": "zach zack",
        "nathaniel": "nate nat",
        "douglas": "doug",
        "jeffrey": "jeff",
        "jacob": "jake",
        "gabriel": "gabe",
        "vincent": "vince vinny",
        "leonard": "len lenny",
        "eleanor": "nora elle",
        "judith": "judy",
        "frances": "fran frankie",
        "francis": "frank",
        "josephine": "josie jo",
        "kathleen": "kathy kat",
        "harold": "harry hal",
        "walter": "walt",
        "philip": "phil",
        "russell": "russ",
        "eugene": "gene",
        "isabella": "bella izzy",
        "olivia": "liv livvy",
        "madison": "maddie",
        "virginia": "ginny",
        "albert": "al bert",
        "johannes": "hannes",
        "gwendolyn": "gwen",
        "debra": "debbie deb",
        "alastair": "ali",
        "callum": "cal",
    }.items()
    for nick in nicks.split()
}

# --- the comparison model -------------------------------------------------------------------
# Each comparison: (name, levels). A level: (label, sql_condition, default m, default u).
# The first level of each is the NULL level. Default m/u are used as-is for small inputs and as
# starting values for training; they are deliberately conservative.
COMPARISONS: tuple[tuple[str, tuple[tuple[str, str, float | None, float | None], ...]], ...] = (
    (
        "first_name",
        (
            ("missing", "first_name_l IS NULL OR first_name_r IS NULL", None, None),
            ("exact", "first_name_l = first_name_r", 0.80, 0.010),
            ("nickname", "first_name_canon_l = first_name_canon_r", 0.05, 0.0005),
            (
                "similar (JW >= 0.9)",
                "jaro_winkler_similarity(first_name_l, first_name_r) >= 0.9",
                0.10,
                0.005,
            ),
            ("different", "ELSE", 0.05, 0.9845),
        ),
    ),
    (
        "last_name",
        (
            ("missing", "last_name_l IS NULL OR last_name_r IS NULL", None, None),
            ("exact", "last_name_l = last_name_r", 0.85, 0.005),
            (
                "similar (JW >= 0.9)",
                "jaro_winkler_similarity(last_name_l, last_name_r) >= 0.9",
                0.10,
                0.005,
            ),
            ("different", "ELSE", 0.05, 0.99),
        ),
    ),
    (
        "birth_date",
        (
            ("missing", "birth_date_l IS NULL OR birth_date_r IS NULL", None, None),
            ("exact", "birth_date_l = birth_date_r", 0.90, 0.0005),
            ("one typo", "damerau_levenshtein(birth_date_l, birth_date_r) <= 1", 0.05, 0.01),
            ("different", "ELSE", 0.05, 0.9895),
        ),
    ),
    (
        # Only exact agreement counts: user names are built from names, so "same user name at
        # another provider" or "similar address" mostly repeats the name evidence (measured:
        # every false merge on generated data came from such levels).
        "email",
        (
            ("missing", "email_key_l IS NULL OR email_key_r IS NULL", None, None),
            ("exact", "email_key_l = email_key_r", 0.70, 0.0001),
            ("different", "ELSE", 0.30, 0.9999),
        ),
    ),
    (
        "phone",
        (
            ("missing", "phone_l IS NULL OR phone_r IS NULL", None, None),
            ("exact", "phone_l = phone_r", 0.70, 0.0001),
            ("one digit off", "damerau_levenshtein(phone_l, phone_r) <= 1", 0.05, 0.0005),
            ("different", "ELSE", 0.25, 0.9994),
        ),
    ),
    (
        "address",
        (
            (
                "missing",
                "(address_line_l IS NULL OR address_line_r IS NULL) "
                "AND (postal_code_l IS NULL OR postal_code_r IS NULL)",
                None,
                None,
            ),
            (
                "same line and postal code",
                "address_line_l = address_line_r AND postal_code_l = postal_code_r",
                0.60,
                0.0005,
            ),
            (
                "similar line (JW >= 0.9)",
                "jaro_winkler_similarity(address_line_l, address_line_r) >= 0.9",
                0.10,
                0.001,
            ),
            ("same postal code", "postal_code_l = postal_code_r", 0.05, 0.005),
            ("same city", "city_l = city_r", 0.05, 0.05),
            ("different", "ELSE", 0.20, 0.9435),
        ),
    ),
)
COMPARISON_NAMES = tuple(name for name, _ in COMPARISONS)

# Pairs Splink scores: each blocking rule also requires the two records to be in different
# deterministic clusters (pairs inside one are linked already).
BLOCKING_RULES = (
    "l.first_name_canon = r.first_name_canon AND l.last_name = r.last_name",
    "l.last_name = r.last_name AND l.birth_date = r.birth_date",
    "l.first_name_canon = r.first_name_canon AND l.birth_date = r.birth_date",
    "l.phone = r.phone",
    "l.postal_code = r.postal_code AND l.address_line = r.address_line",
)
# EM runs on blocks where most pairs are true matches (shared email key; shared phone), which
# keeps the "match" class of EM anchored on real duplicates; each block estimates the m values
# of every comparison except its own.
EM_BLOCKING_RULES = ("l.email_key = r.email_key", "l.phone = r.phone")

RECORD_COLUMNS = tuple(store.TABLES["src_customers"].column_names)


@dataclass
class Resolution:
    """What the matcher found for one record set (records in `records` order, uid = row)."""

    records: pd.DataFrame  # source_system, source_id, uid, cluster, method, match_probability
    pairs: pd.DataFrame  # uid_l, uid_r, method, match_probability, match_weight, mw_<comparison>
    model: pd.DataFrame  # comparison, level, label, m_probability, u_probability, match_weight
    prior_weight: float
    trained: bool
    seconds: dict = field(default_factory=dict)


# --- matching ---------------------------------------------------------------------------------


def _splink_settings(term_frequencies: bool) -> dict:
    """Splink settings; term-frequency adjustments only when the record set is large enough
    for name frequencies to mean something (in five records every name looks common)."""
    comparisons = []
    for name, levels in COMPARISONS:
        out_levels = []
        for label, sql, m, u in levels:
            level: dict = {"sql_condition": sql, "label_for_charts": label}
            if label == "missing":
                level["is_null_level"] = True
            else:
                level["m_probability"] = m
                level["u_probability"] = u
            if term_frequencies and label == "exact" and name in ("first_name", "last_name"):
                # Common names agree by chance more often: term-frequency adjustment.
                level["tf_adjustment_column"] = name
                level["tf_adjustment_weight"] = 1.0
            out_levels.append(level)
        comparisons.append({"output_column_name": name, "comparison_levels": out_levels})
    rules = [f"{rule} AND l.det_cluster <> r.det_cluster" for rule in BLOCKING_RULES]
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "uid",
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": rules,
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": True,
        "additional_columns_to_retain": [],
        "em_convergence": 0.001,
        "max_iterations": 20,
    }


def _match_frame(std: pd.DataFrame, det_cluster: np.ndarray) -> pd.DataFrame:
    """The columns Splink compares, from standardised records (lower case for comparing)."""

    def lower(col: str) -> pd.Series:
        return (
            std[col]
            .astype(object)
            .where(std[col].notna(), None)
            .map(lambda v: v.lower() if isinstance(v, str) else None)
        )

    first = lower("first_name")
    email_key = std["email_key"].astype(object).where(std["email_key"].notna(), None)
    birth = pd.to_datetime(std["birth_date"], errors="coerce")
    return pd.DataFrame(
        {
            "uid": np.arange(len(std), dtype=np.int64),
            "det_cluster": det_cluster.astype(np.int64),
            "first_name": first,
            "first_name_canon": first.map(lambda v: NICKNAMES.get(v, v) if v else None),
            "last_name": lower("last_name"),
            "birth_date": birth.dt.strftime("%Y-%m-%d").astype(object).where(birth.notna(), None),
            "email_key": email_key,
            "phone": std["phone"].astype(object).where(std["phone"].notna(), None),
            "address_line": lower("address_line"),
            "postal_code": std["postal_code"]
            .astype(object)
            .where(std["postal_code"].notna(), None),
            "city": lower("city"),
        }
    )


def _deterministic_edges(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Star edges (each record -> the first record of its group) for the deterministic rules,
    over the registered `match_records` relation."""
    return con.execute(
        """
        WITH email AS (
            SELECT uid, min(uid) OVER (PARTITION BY email_key) AS root
            FROM match_records WHERE email_key IS NOT NULL
        ),
        phone AS (
            SELECT uid, min(uid) OVER (PARTITION BY phone, last_name) AS root
            FROM match_records WHERE phone IS NOT NULL AND last_name IS NOT NULL
        )
        SELECT root AS uid_l, uid AS uid_r, 'email' AS method FROM email WHERE uid <> root
        UNION ALL
        SELECT root, uid, 'phone_last_name' FROM phone WHERE uid <> root
        """
    ).df()


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected-component label per node 0..n-1, labels numbered by each component's
    smallest node (so the labelling does not depend on edge order)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix(
        (np.ones(len(left), dtype=np.int8), (left.astype(np.int64), right.astype(np.int64))),
        shape=(n, n),
    )
    _, labels = connected_components(graph, directed=False)
    # Relabel to the smallest member uid: stable whatever order scipy numbers components.
    smallest = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(n, dtype=np.int64))
    return smallest[labels]


def _model_table(linker, trained: bool) -> tuple[pd.DataFrame, float]:
    rows = []
    settings = linker._settings_obj
    for comparison in settings.comparisons:
        for level in comparison.comparison_levels:
            if level.is_null_level:
                continue
            m, u = level.m_probability, level.u_probability
            weight = math.log2(m / u) if m and u else None
            rows.append(
                {
                    "comparison": comparison.output_column_name,
                    "level": level.comparison_vector_value,
                    "label": level.label_for_charts,
                    "m_probability": m,
                    "u_probability": u,
                    "match_weight": weight,
                    "trained": trained,
                }
            )
    prior = settings._probability_two_random_records_match
    return pd.DataFrame(rows), math.log2(prior / (1 - prior))


def _train(linker, n_records: int, deterministic_pairs: int) -> None:
    """Unsupervised training: prior from deterministic links, u by sampling, m by EM."""
    total_pairs = n_records * (n_records - 1) / 2
    prior = min(0.5, max(deterministic_pairs / DETERMINISTIC_RECALL / total_pairs, 1e-9))
    linker._settings_obj._probability_two_random_records_match = prior
    linker.training.estimate_u_using_random_sampling(
        max_pairs=min(U_MAX_PAIRS, total_pairs),
        seed=SEED,
        min_count_per_level=U_MIN_COUNT_PER_LEVEL,
    )
    for rule in EM_BLOCKING_RULES:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule,
            estimate_without_term_frequencies=True,
            max_pairs=EM_MAX_PAIRS,
        )


def resolve_standardised(
    std: pd.DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    pair_floor: float = DEFAULT_PAIR_FLOOR,
    min_train_records: int = DEFAULT_MIN_TRAIN_RECORDS,
    threads: int | None = None,
) -> Resolution:
    """Cluster standardised records (output of `standardise.standardise_records`, row order =
    uid) into persons. See the module docstring for the method."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    n = len(std)
    work = duckdb.connect()
    if threads:
        work.execute(f"SET threads = {int(threads)}")
    try:
        base = _match_frame(std, np.arange(n))
        work.register("match_records", base)
        det = _deterministic_edges(work)
        det_cluster = _components(n, det["uid_l"].to_numpy(), det["uid_r"].to_numpy())
        base["det_cluster"] = det_cluster
        work.unregister("match_records")
        timings["deterministic"] = time.perf_counter() - t0

        prob, model, prior_weight, trained = _probabilistic_pairs(
            work, base, len(det), pair_floor, min_train_records, timings
        )
    finally:
        work.close()

    t1 = time.perf_counter()
    accepted = prob[prob["match_probability"] >= threshold]
    left = np.concatenate([det["uid_l"].to_numpy(), accepted["uid_l"].to_numpy()])
    right = np.concatenate([det["uid_r"].to_numpy(), accepted["uid_r"].to_numpy()])
    cluster = _components(n, left, right)

    records = pd.DataFrame(
        {
            "source_system": std["source_system"].to_numpy(),
            "source_id": std["source_id"].to_numpy(),
            "uid": np.arange(n, dtype=np.int64),
            "cluster": cluster,
        }
    )
    size = np.bincount(cluster, minlength=n)[cluster] if n else np.zeros(0, dtype=np.int64)
    det_nodes = {
        m: set(det.loc[det["method"] == m, "uid_l"]) | set(det.loc[det["method"] == m, "uid_r"])
        for m in ("email", "phone_last_name")
    }
    best_p = (
        pd.concat(
            [
                accepted[["uid_l", "match_probability"]].rename(columns={"uid_l": "uid"}),
                accepted[["uid_r", "match_probability"]].rename(columns={"uid_r": "uid"}),
            ]
        )
        .groupby("uid")["match_probability"]
        .max()
    )
    method = np.where(size == 1, "single_record", "probabilistic").astype(object)
    uids = records["uid"]
    method[uids.isin(det_nodes["phone_last_name"]).to_numpy() & (size > 1)] = "phone_last_name"
    method[uids.isin(det_nodes["email"]).to_numpy() & (size > 1)] = "email"
    records["method"] = method
    prob_p = uids.map(best_p).to_numpy(dtype=float)
    records["match_probability"] = np.where(method == "probabilistic", prob_p, 1.0)

    det_pairs = det.assign(match_probability=1.0, match_weight=np.nan)
    pairs = pd.concat([det_pairs, prob], ignore_index=True)
    for name in COMPARISON_NAMES:
        col = f"mw_{name}"
        if col not in pairs.columns:
            pairs[col] = np.nan
        gcol = f"gamma_{name}"
        if gcol not in pairs.columns:
            pairs[gcol] = pd.array([pd.NA] * len(pairs), dtype="Int64")
    timings["cluster"] = time.perf_counter() - t1
    return Resolution(records, pairs, model, prior_weight, trained, timings)


def _probabilistic_pairs(
    work: duckdb.DuckDBPyConnection,
    base: pd.DataFrame,
    deterministic_pairs: int,
    pair_floor: float,
    min_train_records: int,
    timings: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, float, bool]:
    """Splink scores of the blocked pairs across deterministic clusters, above `pair_floor`."""
    from splink import DuckDBAPI, Linker

    empty = pd.DataFrame(
        {
            "uid_l": pd.Series(dtype=np.int64),
            "uid_r": pd.Series(dtype=np.int64),
            "method": pd.Series(dtype=object),
            "match_probability": pd.Series(dtype=float),
            "match_weight": pd.Series(dtype=float),
        }
    )
    t0 = time.perf_counter()
    db_api = DuckDBAPI(connection=work)
    records = db_api.register(base, table_name="ccrm_match_records")
    trained = len(base) >= min_train_records
    # EM warnings about comparison levels absent from a sample are expected here and would
    # only clutter `ccrm build` output; real errors still raise.
    linker = Linker(records, _splink_settings(trained), log_level=logging.ERROR)
    if trained:
        # Training on one thread: DuckDB's seeded sampling (u) repeats only single-threaded, and
        # the EM's sums over pairs add up in thread order; either made two builds of the same
        # data train different models. Training works on bounded samples, so this costs little.
        threads = work.execute("SELECT current_setting('threads')").fetchall()[0][0]
        work.execute("SET threads = 1")
        try:
            _train(linker, len(base), deterministic_pairs)
        finally:
            work.execute(f"SET threads = {int(threads)}")
    else:
        linker._settings_obj._probability_two_random_records_match = UNTRAINED_PRIOR
    timings["train"] = time.perf_counter() - t0
    model, prior_weight = _model_table(linker, trained)
    if len(base) < 2:
        return empty, model, prior_weight, trained

    t1 = time.perf_counter()
    predictions = linker.inference.predict(
        threshold_match_probability=pair_floor, warning_mode="never"
    )
    gamma_cols = ", ".join(f"gamma_{c}" for c in COMPARISON_NAMES)
    columns = [c.strip('"') for c in predictions.columns_escaped]
    weight_cols = ", ".join(_weight_sql(c, columns) + f" AS mw_{c}" for c in COMPARISON_NAMES)
    prob = work.execute(
        f"""
        SELECT uid_l, uid_r, 'probabilistic' AS method, match_probability, match_weight,
               {weight_cols}, {gamma_cols}
        FROM {predictions.physical_name}
        ORDER BY uid_l, uid_r
        """  # noqa: S608 - Splink's own table name and our comparison names
    ).df()
    timings["predict"] = time.perf_counter() - t1
    if prob.empty:
        return empty, model, prior_weight, trained
    return prob, model, prior_weight, trained


def _weight_sql(comparison: str, columns: list[str]) -> str:
    """Match weight (log2 Bayes factor) of one comparison, term-frequency adjustment included
    when the model used one."""
    if f"mw_tf_adj_{comparison}" in columns:
        return f"(mw_{comparison} + coalesce(mw_tf_adj_{comparison}, 0.0))"
    return f"mw_{comparison}"


# --- public API -------------------------------------------------------------------------------


def resolve_records(
    records: pd.DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    as_of: date | None = None,
    min_train_records: int = DEFAULT_MIN_TRAIN_RECORDS,
) -> pd.DataFrame:
    """Resolve any set of source records into persons.

    `records` has src_customers columns; any of email, phone and the address fields may be
    missing entirely; without source_system/source_id the row number is the id. Returns one row
    per input record, in input order: source_system, source_id, customer_id ('C' + 9 digits,
    numbered by each customer's first record), method and match_probability (see module
    docstring). `as_of` bounds valid dates (default: today).
    """
    frame = records.reset_index(drop=True).copy()
    if "source_system" not in frame.columns:
        frame["source_system"] = "input"
    if "source_id" not in frame.columns:
        frame["source_id"] = [str(i) for i in range(len(frame))]
    std = standardise_records(frame, as_of or date.today())
    result = resolve_standardised(std, threshold, min_train_records=min_train_records)
    out = result.records
    ids = _new_ids(out["cluster"], start=1)
    return pd.DataFrame(
        {
            "source_system": out["source_system"],
            "source_id": out["source_id"],
            "customer_id": ids,
            "method": out["method"],
            "match_probability": out["match_probability"],
        }
    )


def format_customer_id(number: int) -> str:
    return f"C{number:09d}"


def _new_ids(cluster: pd.Series, start: int) -> pd.Series:
    """Sequential ids for clusters in order of their first record."""
    order = pd.Series(pd.unique(cluster))
    numbers = pd.Series(np.arange(start, start + len(order)), index=order.to_numpy())
    return cluster.map(numbers).map(format_customer_id)


def assign_stable_ids(
    records: pd.DataFrame, previous: pd.DataFrame, high_water: int = 0
) -> tuple[pd.Series, int]:
    """customer_id per record, keeping the previous build's ids where clusters carry on.

    `records`: source_system, source_id, cluster (rows in uid order). `previous`: source_system,
    source_id, customer_id of the last build (may be empty). Each old id goes to the new cluster
    that holds most of its records (ties: the cluster with the smallest first record); a cluster
    inheriting several old ids keeps the one with most of its records (ties: the smaller id).
    Clusters without an heir id get new ids numbered above `high_water` and every id in
    `previous`. Returns (ids, new high-water number).
    """
    prev = previous.dropna(subset=["customer_id"])
    merged = records[["source_system", "source_id", "cluster"]].merge(
        prev[["source_system", "source_id", "customer_id"]],
        on=["source_system", "source_id"],
        how="left",
    )
    overlap = (
        merged.dropna(subset=["customer_id"])
        .groupby(["cluster", "customer_id"], as_index=False)
        .size()
        .rename(columns={"size": "n"})
    )
    heirs = overlap.sort_values(["customer_id", "n", "cluster"], ascending=[True, False, True])
    heirs = heirs.drop_duplicates("customer_id")
    chosen = heirs.sort_values(["cluster", "n", "customer_id"], ascending=[True, False, True])
    chosen = chosen.drop_duplicates("cluster").set_index("cluster")["customer_id"]

    numbers = [
        int(x[1:]) for x in prev["customer_id"].astype(str) if x[:1] == "C" and x[1:].isdigit()
    ]
    top = max([high_water, *numbers]) if numbers else high_water
    clusters = pd.Series(pd.unique(records["cluster"]))
    fresh = clusters[~clusters.isin(chosen.index)]
    fresh_ids = pd.Series(
        [format_customer_id(top + 1 + i) for i in range(len(fresh))], index=fresh.to_numpy()
    )
    mapping = pd.concat([chosen, fresh_ids])
    return records["cluster"].map(mapping), top + len(fresh)


# --- the build stage --------------------------------------------------------------------------

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
    SELECT m.customer_id, s.*,
           row_number() OVER (
               PARTITION BY m.customer_id
               ORDER BY s.updated_at DESC NULLS LAST, ({completeness}) DESC,
                        s.source_system, s.source_id) AS rk
    FROM std_customers s
    JOIN identity_records m USING (source_system, source_id)
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


def identity_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Resolve `std_customers` into customers; writes identity_map, customers, identity_pairs,
    identity_model, appends identity_runs, and (re)creates the customer views.

    Settings (`ctx.param("identity", ...)`): threshold (0.95), pair_floor (0.01),
    min_train_records (2000), threads (DuckDB threads for matching; default all).
    """
    t0 = time.perf_counter()
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
    std = con.execute("SELECT * FROM std_customers ORDER BY source_system, source_id").df()
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
    )

    con.execute(IDENTITY_RUNS_SQL)
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
    records = result.records
    ids, high_water = assign_stable_ids(records, previous, high_water)
    records = records.assign(customer_id=ids.astype("str"))  # text also when there are none
    kept = int(
        records["customer_id"]
        .isin(set(previous["customer_id"]))
        .groupby(records["customer_id"])
        .first()
        .sum()
    )

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
    replace_table(con, "identity_model", result.model)
    con.execute(CUSTOMER_VIEWS_SQL)
    con.execute("DROP TABLE identity_records")

    customers = con.execute("SELECT count(*) FROM customers").fetchall()[0][0]
    pairs = result.pairs
    prob = pairs[pairs["method"] == "probabilistic"]
    con.execute(
        "INSERT INTO identity_runs VALUES (?, current_timestamp, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ctx.run_id,
            len(records),
            customers,
            threshold,
            pair_floor,
            result.prior_weight,
            result.trained,
            int((pairs["method"] != "probabilistic").sum()),
            len(prob),
            int((prob["match_probability"] >= threshold).sum()),
            kept,
            int(high_water),
            time.perf_counter() - t0,
        ],
    )
    return con.execute("SELECT count(*) FROM identity_map").fetchall()[0][0]


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


# --- reading results (pages) ------------------------------------------------------------------


def is_resolved(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this method's identity stage has run (its tables exist)."""
    return all(
        store.table_exists(con, t) for t in ("identity_map", "identity_pairs", "identity_runs")
    )


def latest_run(con: duckdb.DuckDBPyConnection) -> dict:
    """The latest identity_runs row as a dict."""
    frame = con.execute("SELECT * FROM identity_runs ORDER BY run_id DESC LIMIT 1").df()
    return frame.iloc[0].to_dict()


def summary(con: duckdb.DuckDBPyConnection) -> dict:
    """Identity panel figures of the current build.

    records, customers (golden records), duplicate_rate (1 - customers / records),
    anonymous_ids, anonymous_linked (ids linked by login), by_method (DataFrame: method, records,
    share of source records or of anonymous ids), cluster_sizes (DataFrame: records_per_customer,
    customers), by_source (DataFrame: source_system, records, customers, duplicates_within,
    shared_with_other_sources).
    """
    records, customers = con.execute(
        "SELECT (SELECT count(*) FROM identity_map WHERE anonymous_id IS NULL), "
        "(SELECT count(*) FROM customers)"
    ).fetchall()[0]
    by_method = con.execute(
        """
        SELECT method, count(*) AS records,
               count(*) / sum(count(*)) OVER (PARTITION BY anonymous_id IS NULL) AS share
        FROM identity_map GROUP BY method, anonymous_id IS NULL ORDER BY records DESC
        """
    ).df()
    anon = by_method[by_method["method"].isin(["login", "anonymous"])]
    cluster_sizes = con.execute(
        "SELECT source_records AS records_per_customer, count(*) AS customers "
        "FROM customers GROUP BY 1 ORDER BY 1"
    ).df()
    by_source = con.execute(
        """
        WITH m AS (SELECT source_system, customer_id FROM identity_map WHERE anonymous_id IS NULL),
        spread AS (SELECT customer_id, count(DISTINCT source_system) AS systems
                   FROM m GROUP BY customer_id)
        SELECT m.source_system, count(*) AS records,
               count(DISTINCT m.customer_id) AS customers,
               count(*) - count(DISTINCT m.customer_id) AS duplicates_within,
               count(*) FILTER (WHERE s.systems > 1) AS shared_with_other_sources
        FROM m JOIN spread s USING (customer_id)
        GROUP BY m.source_system ORDER BY m.source_system
        """
    ).df()
    return {
        "records": int(records),
        "customers": int(customers),
        "duplicate_rate": (1.0 - customers / records) if records else 0.0,
        "anonymous_ids": int(anon["records"].sum()),
        "anonymous_linked": int(anon.loc[anon["method"] == "login", "records"].sum()),
        "by_method": by_method,
        "cluster_sizes": cluster_sizes,
        "by_source": by_source,
    }


class _UnionFind:
    def __init__(self, parent: np.ndarray):
        self.parent = parent

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root


def threshold_curve(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Customers there would be at each match threshold, from the stored pairwise predictions
    (no re-run): one row per distinct stored probability p (descending), `customers` = number of
    customers when every pair with match_probability >= p links (deterministic links always do).
    The first row (threshold 1.0 + tiny) is the deterministic-only count."""
    run = latest_run(con)
    n = int(run["records"])
    pairs = con.execute("SELECT uid_l, uid_r, method, match_probability FROM identity_pairs").df()
    det = pairs[pairs["method"] != "probabilistic"]
    labels = _components(n, det["uid_l"].to_numpy(), det["uid_r"].to_numpy())
    customers = int(len(np.unique(labels))) if n else 0
    prob = pairs[pairs["method"] == "probabilistic"].sort_values(
        "match_probability", ascending=False, kind="stable"
    )
    uf = _UnionFind(np.arange(n, dtype=np.int64))
    parent = uf.parent
    # Start from the deterministic components: every node points at its component's label.
    parent[:] = labels
    thresholds = [1.0 + 1e-9]
    counts = [customers]
    left = labels[prob["uid_l"].to_numpy()] if len(prob) else np.zeros(0, dtype=np.int64)
    right = labels[prob["uid_r"].to_numpy()] if len(prob) else np.zeros(0, dtype=np.int64)
    probs = prob["match_probability"].to_numpy()
    for i in range(len(probs)):
        a, b = uf.find(int(left[i])), uf.find(int(right[i]))
        if a != b:
            parent[max(a, b)] = min(a, b)
            customers -= 1
        if i + 1 == len(probs) or probs[i + 1] != probs[i]:
            thresholds.append(float(probs[i]))
            counts.append(customers)
    return pd.DataFrame({"threshold": thresholds, "customers": counts})


def customers_at_threshold(curve: pd.DataFrame, threshold: float) -> int:
    """Customers at `threshold` read off `threshold_curve` (pairs with p >= threshold link)."""
    reached = curve[curve["threshold"] >= threshold]
    return int(reached["customers"].iloc[-1]) if len(reached) else int(curve["customers"].iloc[0])


def matched_pairs(
    con: duckdb.DuckDBPyConnection, min_probability: float, limit: int = 200
) -> pd.DataFrame:
    """Probabilistic pairs at or above `min_probability`, weakest first (the ones worth a look):
    uid_l, uid_r, source_system_l, source_id_l, source_system_r, source_id_r,
    match_probability, match_weight."""
    return con.execute(
        """
        SELECT uid_l, uid_r, source_system_l, source_id_l, source_system_r, source_id_r,
               match_probability, match_weight
        FROM identity_pairs
        WHERE method = 'probabilistic' AND match_probability >= ?
        ORDER BY match_probability, uid_l, uid_r
        LIMIT ?
        """,
        [float(min_probability), int(limit)],
    ).df()


def pair_explanation(con: duckdb.DuckDBPyConnection, uid_l: int, uid_r: int) -> pd.DataFrame:
    """Why a pair matched: one row per waterfall step, the prior first, then each comparison:
    step, level (the comparison level's label), match_weight (log2 Bayes factor; the steps sum
    to the pair's match weight, and p = 2^w / (1 + 2^w))."""
    gamma_cols = ", ".join(f"gamma_{c}" for c in COMPARISON_NAMES)
    weight_cols = ", ".join(f"mw_{c}" for c in COMPARISON_NAMES)
    row = con.execute(
        f"SELECT match_weight, {weight_cols}, {gamma_cols} FROM identity_pairs "  # noqa: S608
        "WHERE uid_l = ? AND uid_r = ? AND method = 'probabilistic'",
        [int(uid_l), int(uid_r)],
    ).df()
    if row.empty:
        raise KeyError(f"no probabilistic pair ({uid_l}, {uid_r}) in identity_pairs")
    pair = row.iloc[0]
    model = con.execute("SELECT comparison, level, label FROM identity_model").df()
    labels = {(r.comparison, int(r.level)): r.label for r in model.itertuples()}
    comparison_total = sum(float(pair[f"mw_{c}"]) for c in COMPARISON_NAMES)
    steps = [
        {
            "step": "prior",
            "level": "two random records",
            "match_weight": float(pair["match_weight"]) - comparison_total,
        }
    ]
    for c in COMPARISON_NAMES:
        gamma = pair[f"gamma_{c}"]
        level = "missing" if pd.isna(gamma) or int(gamma) == -1 else labels.get((c, int(gamma)))
        steps.append({"step": c, "level": level, "match_weight": float(pair[f"mw_{c}"])})
    return pd.DataFrame(steps)


def pair_records(con: duckdb.DuckDBPyConnection, uid_l: int, uid_r: int) -> pd.DataFrame:
    """The two standardised records of a stored pair (side 'left'/'right' + std columns)."""
    return con.execute(
        """
        WITH p AS (SELECT * FROM identity_pairs WHERE uid_l = ? AND uid_r = ? LIMIT 1)
        SELECT 'left' AS side, s.* FROM p JOIN std_customers s
          ON s.source_system = p.source_system_l AND s.source_id = p.source_id_l
        UNION ALL
        SELECT 'right', s.* FROM p JOIN std_customers s
          ON s.source_system = p.source_system_r AND s.source_id = p.source_id_r
        ORDER BY side
        """,
        [int(uid_l), int(uid_r)],
    ).df()


def figure_match_waterfall(steps: pd.DataFrame) -> go.Figure:
    """Waterfall of match weights: prior, each comparison, and the total (bits of evidence)."""
    total = float(steps["match_weight"].sum())
    probability = 2**total / (1 + 2**total)
    fig = go.Figure(
        go.Waterfall(
            x=[*steps["step"], "match weight"],
            y=[*steps["match_weight"], total],
            measure=[*(["relative"] * len(steps)), "total"],
            text=[*(f"{w:+.1f}" for w in steps["match_weight"]), f"{total:.1f}"],
            hovertext=[*steps["level"].fillna(""), f"match probability {probability:.4f}"],
            hovertemplate="%{x}: %{y:+.2f}<br>%{hovertext}<extra></extra>",
            increasing=dict(marker_color="#2da44e"),
            decreasing=dict(marker_color="#cf222e"),
            totals=dict(marker_color="#0969da"),
        )
    )
    fig.update_layout(
        height=340,
        margin=dict(l=10, r=10, t=30, b=30),
        yaxis_title="match weight (log2 Bayes factor)",
        title=f"match probability {probability:.4f}",
    )
    return fig


def figure_threshold_curve(curve: pd.DataFrame, threshold: float) -> go.Figure:
    """Customers as a function of the match threshold, with the chosen threshold marked."""
    shown = curve[curve["threshold"] <= 1.0]
    fig = go.Figure(
        go.Scatter(
            x=shown["threshold"],
            y=shown["customers"],
            mode="lines",
            line_shape="hv",
            hovertemplate="threshold %{x:.3f}: %{y:,} customers<extra></extra>",
        )
    )
    fig.add_vline(x=threshold, line_dash="dash", line_color="#cf222e")
    fig.update_layout(
        height=260,
        margin=dict(l=10, r=10, t=10, b=30),
        xaxis_title="match threshold (probability)",
        yaxis_title="customers",
    )
    return fig


def figure_cluster_sizes(cluster_sizes: pd.DataFrame) -> go.Figure:
    """Bar chart: customers by number of source records."""
    fig = go.Figure(
        go.Bar(
            x=cluster_sizes["records_per_customer"].astype(str),
            y=cluster_sizes["customers"],
            hovertemplate="%{x} records: %{y:,} customers<extra></extra>",
        )
    )
    fig.update_layout(
        height=260,
        margin=dict(l=10, r=10, t=10, b=30),
        xaxis_title="source records per customer",
        yaxis_title="customers",
    )
    return fig


# --- benchmark --------------------------------------------------------------------------------


def _bench_stage(ctx, stage: str) -> tuple[int, dict]:
    """Run one build stage on a copy of the bench database; (source records, figures)."""
    import shutil

    from ccrm_core.foundation import pipeline, store

    work = ctx.fresh_db(f"bench_{stage}")
    shutil.copy(ctx.db, work)
    con = store.connect_writer(work)
    try:
        result = pipeline.build(con, [stage])[0]
        if result.status != "ok":
            raise RuntimeError(f"{stage} failed: {result.error}")
        records = con.execute("SELECT count(*) FROM src_customers").fetchall()[0][0]
        figures: dict = {"stage_s": round(result.seconds, 2)}
        if stage == "identity" and store.table_exists(con, "ground_truth_identity"):
            tp, predicted, actual = con.execute(
                """
                WITH j AS (SELECT m.customer_id, g.person_id FROM identity_map m
                           JOIN ground_truth_identity g USING (source_system, source_id)),
                b AS (SELECT count(*) n FROM j GROUP BY customer_id, person_id),
                c AS (SELECT count(*) n FROM j GROUP BY customer_id),
                p AS (SELECT count(*) n FROM j GROUP BY person_id)
                SELECT (SELECT sum(n*(n-1)/2) FROM b), (SELECT sum(n*(n-1)/2) FROM c),
                       (SELECT sum(n*(n-1)/2) FROM p)
                """
            ).fetchall()[0]
            figures["precision"] = round(tp / predicted, 4) if predicted else None
            figures["recall"] = round(tp / actual, 4) if actual else None
            run = latest_run(con)
            figures["customers"] = int(run["customers"])
            figures["probabilistic_pairs"] = int(run["probabilistic_pairs"])
    finally:
        con.close()
    return int(records), figures


def bench_identity(ctx) -> tuple[int, dict]:
    """`ccrm bench` operation: the identity stage on the built database (figures: precision,
    recall against ground truth, customers, stored pairs)."""
    return _bench_stage(ctx, "identity")


def bench_standardise(ctx) -> tuple[int, dict]:
    """`ccrm bench` operation: the standardise stage on the built database."""
    return _bench_stage(ctx, "standardise")


def bench_hygiene(ctx) -> tuple[int, dict]:
    """`ccrm bench` operation: the hygiene stage on the built database."""
    return _bench_stage(ctx, "hygiene")
