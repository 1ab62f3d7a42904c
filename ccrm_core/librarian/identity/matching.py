"""Matching: standardised records -> clusters of records that are one person.

Deterministic links (shared email key; shared phone and last name), Splink scoring of the blocked
pairs across deterministic clusters (blocking rules and training chosen for the fields present,
see `training`), manual overrides, and connected components of every accepted link (see
`clusters`). Also `resolve_records` (any record set, or two to link -> customer ids) and the
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

from ccrm_core.librarian.identity import training
from ccrm_core.librarian.identity.clusters import (
    MANUAL_RANK,
    cluster_figures,
    cluster_with_overrides,
    components,
)
from ccrm_core.librarian.identity.model import (
    COMPARISON_NAMES,
    COMPARISONS,
    DEFAULT_MIN_TRAIN_RECORDS,
    DEFAULT_PAIR_FLOOR,
    DEFAULT_THRESHOLD,
    FIXED_LEVELS,
    NICKNAMES,
    UNTRAINED_PRIOR,
)
from ccrm_core.librarian.standardise import standardise_records

_components = components  # the name other modules and tests use


@dataclass
class Resolution:
    """What the matcher found for one record set (records in `records` order, uid = row)."""

    records: pd.DataFrame  # source_system, source_id, uid, cluster, method, match_probability
    pairs: pd.DataFrame  # uid_l, uid_r, method, match_probability, match_weight, mw_<comparison>
    model: pd.DataFrame  # comparison, level, label, m_probability, u_probability, match_weight
    prior_weight: float
    trained: bool
    seconds: dict = field(default_factory=dict)
    # per cluster of 2+ records: cluster, size, links, density, weakest_link, weakest_uid_l/_r
    clusters: pd.DataFrame = field(default_factory=pd.DataFrame)
    report: training.TrainingReport = field(default_factory=training.TrainingReport)
    refused_links: list = field(default_factory=list)  # manual links that would join a split


# --- matching ---------------------------------------------------------------------------------


def _splink_settings(term_frequencies: bool, blocking_rules: list[str]) -> dict:
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
            if (name, label) in FIXED_LEVELS:
                level["fix_m_probability"] = True
                level["fix_u_probability"] = True
            if term_frequencies and label == "exact" and name in ("first_name", "last_name"):
                # Common names agree by chance more often: term-frequency adjustment.
                level["tf_adjustment_column"] = name
                level["tf_adjustment_weight"] = 1.0
            out_levels.append(level)
        comparisons.append({"output_column_name": name, "comparison_levels": out_levels})
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "uid",
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": blocking_rules,
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": True,
        "additional_columns_to_retain": [],
        "em_convergence": 0.001,
        "max_iterations": 20,
    }


def _match_frame(
    std: pd.DataFrame, det_cluster: np.ndarray, link_group: np.ndarray
) -> pd.DataFrame:
    """The columns Splink compares, from standardised records (lower case for comparing).
    `link_group`: records sharing a group > 0 are never linked to each other."""

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
            "link_group": link_group.astype(np.int64),
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
    """Edges of the deterministic rules over the registered `match_records` relation: each
    record -> the first record of its key group it may link to (link groups: a record of
    group g > 0 links only to records outside g), as (uid_l < uid_r, method)."""
    return con.execute(
        """
        WITH keyed AS (
            SELECT uid, link_group, email_key AS k, 'email' AS method FROM match_records
            WHERE email_key IS NOT NULL
            UNION ALL
            SELECT uid, link_group, phone || '|' || last_name, 'phone_last_name'
            FROM match_records WHERE phone IS NOT NULL AND last_name IS NOT NULL
        ),
        firsts AS (
            SELECT method, k, link_group, min(uid) AS first FROM keyed GROUP BY ALL
        ),
        roots AS (
            SELECT x.method, x.uid, min(f.first) AS root
            FROM keyed x JOIN firsts f
              ON f.method = x.method AND f.k = x.k AND f.first <> x.uid
             AND (x.link_group = 0 OR f.link_group = 0 OR f.link_group <> x.link_group)
            GROUP BY ALL
        )
        SELECT DISTINCT least(uid, root) AS uid_l, greatest(uid, root) AS uid_r, method
        FROM roots
        ORDER BY method, uid_l, uid_r
        """
    ).df()


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


def resolve_standardised(
    std: pd.DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    pair_floor: float = DEFAULT_PAIR_FLOOR,
    min_train_records: int = DEFAULT_MIN_TRAIN_RECORDS,
    threads: int | None = None,
    link_groups: np.ndarray | None = None,
    overrides: pd.DataFrame | None = None,
) -> Resolution:
    """Cluster standardised records (output of `standardise.standardise_records`, row order =
    uid) into persons. See the package docstring for the method.

    `link_groups` (per record, default all 0): records sharing a group > 0 are never linked
    directly (link mode; systems known to hold one record per person). `overrides` (uid_l,
    uid_r, decision 'link' or 'split'): a steward's decisions, applied after matching."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    n = len(std)
    groups = np.zeros(n, dtype=np.int64) if link_groups is None else np.asarray(link_groups)
    manual, splits = _split_overrides(overrides)
    work = duckdb.connect()
    if threads:
        work.execute(f"SET threads = {int(threads)}")
    try:
        base = _match_frame(std, np.arange(n), groups)
        work.register("match_records", base)
        det = _deterministic_edges(work)
        base["det_cluster"] = components(n, det["uid_l"].to_numpy(), det["uid_r"].to_numpy())
        work.unregister("match_records")
        timings["deterministic"] = time.perf_counter() - t0

        prob, model, prior_weight, report = _probabilistic_pairs(
            work, base, pair_floor, min_train_records, timings
        )
        t1 = time.perf_counter()
        accepted = prob[prob["match_probability"] >= threshold]
        links = pd.concat(
            [
                det[["uid_l", "uid_r", "method"]].assign(match_probability=1.0, rank=2),
                accepted[["uid_l", "uid_r", "method", "match_probability"]].assign(rank=1),
                manual.assign(method="manual", match_probability=1.0, rank=MANUAL_RANK),
            ],
            ignore_index=True,
        )
        cluster, kept, refused = cluster_with_overrides(n, links, splits, groups)
        figures = cluster_figures(work, base, cluster, kept, splits)
    finally:
        work.close()

    records = _record_table(std, cluster, kept)
    pairs = _all_pairs(det, prob, kept[kept["method"] == "manual"][["uid_l", "uid_r"]])
    timings["cluster"] = time.perf_counter() - t1
    return Resolution(
        records, pairs, model, prior_weight, report.trained, timings, figures, report, refused
    )


def _split_overrides(overrides: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(manual links, forced splits) as uid_l < uid_r frames from an overrides frame."""
    empty = pd.DataFrame({"uid_l": pd.Series(dtype=np.int64), "uid_r": pd.Series(dtype=np.int64)})
    if overrides is None or overrides.empty:
        return empty, empty.copy()
    a = overrides["uid_l"].to_numpy(dtype=np.int64)
    b = overrides["uid_r"].to_numpy(dtype=np.int64)
    frame = pd.DataFrame(
        {
            "uid_l": np.minimum(a, b),
            "uid_r": np.maximum(a, b),
            "decision": overrides["decision"].to_numpy(),
        }
    )
    frame = frame[frame["uid_l"] != frame["uid_r"]]
    pick = lambda d: (  # noqa: E731
        frame.loc[frame["decision"] == d, ["uid_l", "uid_r"]]
        .drop_duplicates()
        .sort_values(["uid_l", "uid_r"], ignore_index=True)
    )
    return pick("link"), pick("split")


def _record_table(std: pd.DataFrame, cluster: np.ndarray, kept: pd.DataFrame) -> pd.DataFrame:
    """One row per record (uid order): source_system, source_id, uid, cluster, and how the record
    joined its cluster (method, match_probability; see the package docstring), from the links
    the clustering kept (uid_l, uid_r, method, match_probability)."""
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

    def nodes(method: str) -> set:
        chosen = kept[kept["method"] == method]
        return set(chosen["uid_l"]) | set(chosen["uid_r"])

    accepted = kept[kept["method"] == "probabilistic"]
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
    for name in ("manual", "phone_last_name", "email"):  # the last one set wins
        method[uids.isin(nodes(name)).to_numpy() & (size > 1)] = name
    records["method"] = method
    prob_p = uids.map(best_p).to_numpy(dtype=float)
    records["match_probability"] = np.where(method == "probabilistic", prob_p, 1.0)
    return records


def _all_pairs(det: pd.DataFrame, prob: pd.DataFrame, manual: pd.DataFrame) -> pd.DataFrame:
    """Deterministic edges and applied manual links (probability 1.0) and scored probabilistic
    pairs in one frame, with every comparison's mw_/gamma_ column (missing ones NULL)."""
    det_pairs = det.assign(match_probability=1.0, match_weight=np.nan)
    manual_pairs = manual.assign(method="manual", match_probability=1.0, match_weight=np.nan)
    pairs = pd.concat([det_pairs, manual_pairs, prob], ignore_index=True)
    for name in COMPARISON_NAMES:
        col = f"mw_{name}"
        if col not in pairs.columns:
            pairs[col] = np.nan
        gcol = f"gamma_{name}"
        if gcol not in pairs.columns:
            pairs[gcol] = pd.array([pd.NA] * len(pairs), dtype="Int64")
    return pairs


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "uid_l": pd.Series(dtype=np.int64),
            "uid_r": pd.Series(dtype=np.int64),
            "method": pd.Series(dtype=object),
            "match_probability": pd.Series(dtype=float),
            "match_weight": pd.Series(dtype=float),
        }
    )


def _probabilistic_pairs(
    work: duckdb.DuckDBPyConnection,
    base: pd.DataFrame,
    pair_floor: float,
    min_train_records: int,
    timings: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, float, training.TrainingReport]:
    """Splink scores of the blocked pairs across deterministic clusters, above `pair_floor`,
    with the model and the training report."""
    from splink import DuckDBAPI, Linker

    t0 = time.perf_counter()
    db_api = DuckDBAPI(connection=work)
    records = db_api.register(base, table_name=training.MATCH_TABLE)
    counts = training.column_counts(work, [c for c in base.columns if c not in ("uid",)])
    report = training.TrainingReport()
    pairs_of = training.PairCounter(work)
    rules = training.prediction_rules(pairs_of, len(base), counts, report)
    training.field_notes(counts, report)
    train = len(base) >= min_train_records
    # EM warnings about comparison levels absent from a sample are expected here and would
    # only clutter `ccrm build` output; real errors still raise.
    linker = Linker(records, _splink_settings(train, rules), log_level=logging.ERROR)
    linker._settings_obj._probability_two_random_records_match = UNTRAINED_PRIOR
    if train:
        # Training on one thread: DuckDB's seeded sampling (u) repeats only single-threaded, and
        # the EM's sums over pairs add up in thread order; either made two builds of the same
        # data train different models. Training works on bounded samples, so this costs little.
        threads = work.execute("SELECT current_setting('threads')").fetchall()[0][0]
        work.execute("SET threads = 1")
        try:
            trained = training.train(linker, pairs_of, len(base), counts)
        finally:
            work.execute(f"SET threads = {int(threads)}")
        trained.blocking_rules, trained.notes = report.blocking_rules, report.notes + trained.notes
        report = trained
    else:
        report.notes.append(
            f"not trained: fewer than {min_train_records:,} records; the default parameters "
            "and prior are used"
        )
    timings["train"] = time.perf_counter() - t0
    model, prior_weight = _model_table(linker, report.trained)
    if len(base) < 2 or not rules:
        return _empty_pairs(), model, prior_weight, report

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
        return _empty_pairs(), model, prior_weight, report
    return prob, model, prior_weight, report


def _weight_sql(comparison: str, columns: list[str]) -> str:
    """Match weight (log2 Bayes factor) of one comparison, term-frequency adjustment included
    when the model used one."""
    if f"mw_tf_adj_{comparison}" in columns:
        return f"(mw_{comparison} + coalesce(mw_tf_adj_{comparison}, 0.0))"
    return f"mw_{comparison}"


# --- public API -------------------------------------------------------------------------------


def resolve_records(
    records: pd.DataFrame,
    right: pd.DataFrame | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    as_of: date | None = None,
    min_train_records: int = DEFAULT_MIN_TRAIN_RECORDS,
    *,
    link_only: bool = False,
) -> pd.DataFrame:
    """Resolve any set of source records into persons, or link two sets.

    `records` (and `right`) have src_customers columns; any of email, phone, birth date and the
    address fields may be missing entirely; without source_system/source_id the row number is
    the id and the source system is 'input' ('left' and 'right' when two sets are given).
    With `right`, both sets are resolved together; with `link_only=True` too, records of the
    same set are never linked to each other directly (each set is taken as already
    deduplicated): only links across the two sets are made, as record-linkage tools do.

    Returns one row per input record, in input order (`records`, then `right`):
    source_system, source_id, customer_id ('C' + 9 digits, numbered by each customer's first
    record), method and match_probability (see package docstring). `as_of` bounds valid dates
    (default: today).
    """
    if right is not None and not isinstance(right, pd.DataFrame):
        raise TypeError("right must be a DataFrame of records (pass threshold by name)")
    if link_only and right is None:
        raise ValueError("link_only needs two record sets: resolve_records(left, right, ...)")
    sets = [records] if right is None else [records, right]
    names = ["input"] if right is None else ["left", "right"]
    frames = []
    for frame, name in zip(sets, names, strict=True):
        frame = frame.reset_index(drop=True).copy()
        if "source_system" not in frame.columns:
            frame["source_system"] = name
        if "source_id" not in frame.columns:
            frame["source_id"] = [str(i) for i in range(len(frame))]
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    groups = np.zeros(len(combined), dtype=np.int64)
    if link_only:
        groups[len(frames[0]) :] = 2
        groups[: len(frames[0])] = 1
    std = standardise_records(combined, as_of or date.today())
    result = resolve_standardised(
        std, threshold, min_train_records=min_train_records, link_groups=groups
    )
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
