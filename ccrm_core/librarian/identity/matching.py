"""Matching: standardised records -> clusters of records that are one person.

Deterministic links (shared email key; shared phone and last name), Splink scoring of the blocked
pairs across deterministic clusters (trained without labels on large sets), and connected
components of every accepted link. Also `resolve_records` (any record set -> customer ids) and the
customer id helpers. The method is described in the package docstring
(`ccrm_core.librarian.identity`).
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
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ccrm_core.librarian.identity.model import (
    BLOCKING_RULES,
    COMPARISON_NAMES,
    COMPARISONS,
    DEFAULT_MIN_TRAIN_RECORDS,
    DEFAULT_PAIR_FLOOR,
    DEFAULT_THRESHOLD,
    DETERMINISTIC_RECALL,
    EM_BLOCKING_RULES,
    EM_MAX_PAIRS,
    NICKNAMES,
    SEED,
    U_MAX_PAIRS,
    U_MIN_COUNT_PER_LEVEL,
    UNTRAINED_PRIOR,
)
from ccrm_core.librarian.standardise import standardise_records


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
    uid) into persons. See the package docstring for the method."""
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

    records = _record_table(std, cluster, det, accepted)
    pairs = _all_pairs(det, prob)
    timings["cluster"] = time.perf_counter() - t1
    return Resolution(records, pairs, model, prior_weight, trained, timings)


def _record_table(
    std: pd.DataFrame, cluster: np.ndarray, det: pd.DataFrame, accepted: pd.DataFrame
) -> pd.DataFrame:
    """One row per record (uid order): source_system, source_id, uid, cluster, and how the record
    joined its cluster (method, match_probability; see the package docstring)."""
    n = len(std)
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
    return records


def _all_pairs(det: pd.DataFrame, prob: pd.DataFrame) -> pd.DataFrame:
    """Deterministic edges (probability 1.0) and scored probabilistic pairs in one frame, with
    every comparison's mw_/gamma_ column (missing ones NULL)."""
    det_pairs = det.assign(match_probability=1.0, match_weight=np.nan)
    pairs = pd.concat([det_pairs, prob], ignore_index=True)
    for name in COMPARISON_NAMES:
        col = f"mw_{name}"
        if col not in pairs.columns:
            pairs[col] = np.nan
        gcol = f"gamma_{name}"
        if gcol not in pairs.columns:
            pairs[gcol] = pd.array([pd.NA] * len(pairs), dtype="Int64")
    return pairs


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
    numbered by each customer's first record), method and match_probability (see package
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
