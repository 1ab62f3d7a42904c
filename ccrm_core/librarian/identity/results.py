"""Reading identity results for the Data Hygiene page: panel figures, the customers-vs-threshold
curve re-clustered from stored pairs (no model re-run), matched pairs, and why a pair matched.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.librarian.identity.clusters import components as _components
from ccrm_core.librarian.identity.model import COMPARISON_NAMES


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


def riskiest_clusters(con: duckdb.DuckDBPyConnection, limit: int = 200) -> pd.DataFrame:
    """Customers of 2+ source records, the ones most worth a steward's review first: weakest
    link lowest first, then lowest density, then most records (ties: customer id). Columns:
    customer_id, records, links, density, weakest_link (match probability at which the
    customer would first split), weakest_uid_l, weakest_uid_r and the source keys of those
    two records. Empty before a build that writes identity_clusters."""
    if not store.table_exists(con, "identity_clusters"):
        return pd.DataFrame(
            columns=[
                "customer_id", "records", "links", "density", "weakest_link", "weakest_uid_l",
                "weakest_uid_r", "weakest_source_system_l", "weakest_source_id_l",
                "weakest_source_system_r", "weakest_source_id_r",
            ]
        )  # fmt: skip
    return con.execute(
        """
        SELECT * FROM identity_clusters
        ORDER BY weakest_link, density, records DESC, customer_id
        LIMIT ?
        """,
        [int(limit)],
    ).df()


def customer_records(con: duckdb.DuckDBPyConnection, customer_id: str) -> pd.DataFrame:
    """The standardised source records of one customer, with how each joined it (method,
    match_probability), ordered by source system and id."""
    return con.execute(
        """
        SELECT s.source_system, s.source_id, m.method, m.match_probability,
               s.first_name, s.last_name, s.email, s.phone, s.address_line, s.city,
               s.postal_code, s.birth_date
        FROM identity_map m JOIN std_customers s USING (source_system, source_id)
        WHERE m.customer_id = ? AND m.anonymous_id IS NULL
        ORDER BY s.source_system, s.source_id
        """,
        [str(customer_id)],
    ).df()


def training_notes(run: dict) -> list[str]:
    """The latest build's notes on how the model adapted to the fields present (empty when
    everything could be trained), from a `latest_run` row."""
    text = run.get("training_notes")
    if not isinstance(text, str) or not text:
        return []
    return text.splitlines()


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
