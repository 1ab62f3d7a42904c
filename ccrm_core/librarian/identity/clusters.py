"""Clusters from links: connected components with a data steward's manual overrides, and the
graph figures that say how well each cluster holds together.

Links are record pairs (uid_l < uid_r) with a probability: deterministic links and manual links
count as 1.0. A forced split ("these two records are different persons") is a cannot-link
constraint, and so is a link group (records of one deduplicated set: a cluster holds at most one
of them, which makes linking two such sets one-to-one). A cluster that would break a constraint
is rebuilt link by link, strongest first (manual links, then deterministic, then by
probability; ties by uids), skipping any link that would break it; so the weakest links that
chained the records are the ones dropped. A manual link that would break one is not applied
either.

Cluster figures (the graph metrics Splink reports, over the links the clustering kept):
- size: records in the cluster;
- density: linked pairs / all pairs of its records, where the linked pairs are every pair of
  records sharing an email key or a phone and last name (groups over MAX_CLIQUE records count
  as a star), every accepted probabilistic pair and every manual link;
- weakest link: the match probability at which the cluster would first fall apart, i.e. the
  lowest link on the strongest chain that holds it together (the bottleneck of its maximum
  spanning tree), and that link's two records.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

MANUAL_RANK = 3  # manual links first, then deterministic (2), then probabilistic (1)
MAX_CLIQUE = 100


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
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


def _find(parent: dict[int, int], x: int) -> int:
    root = x
    while parent.get(root, root) != root:
        root = parent[root]
    while parent.get(x, x) != root:  # path compression
        parent[x], x = root, parent[x]
    return root


def _needs_rebuild(
    labels: np.ndarray, splits: pd.DataFrame, groups: np.ndarray | None
) -> np.ndarray:
    """Labels of the components that break a constraint: they hold both records of a forced
    split, or two records of one link group."""
    split_l, split_r = splits["uid_l"].to_numpy(), splits["uid_r"].to_numpy()
    broken = [labels[split_l][labels[split_l] == labels[split_r]]]
    if groups is not None and (groups > 0).any():
        grouped = np.flatnonzero(groups > 0)
        pairs = pd.DataFrame({"label": labels[grouped], "group": groups[grouped]})
        broken.append(pairs.loc[pairs.duplicated(), "label"].to_numpy())
    return np.unique(np.concatenate(broken)) if broken else np.zeros(0, dtype=np.int64)


def cluster_with_overrides(
    n: int, links: pd.DataFrame, splits: pd.DataFrame, groups: np.ndarray | None = None
) -> tuple[np.ndarray, pd.DataFrame, list[tuple[int, int]]]:
    """Cluster label per record (smallest member uid) from `links` (uid_l, uid_r,
    match_probability, rank: 3 manual, 2 deterministic, 1 probabilistic) under the forced
    splits (`splits`: uid_l, uid_r) and the link groups (`groups`, per record: a cluster holds
    at most one record of each group > 0, so linking two deduplicated sets is one-to-one, the
    strongest link first). Returns (labels, the links kept, the manual links refused because
    they would break a constraint)."""
    labels = components(n, links["uid_l"].to_numpy(), links["uid_r"].to_numpy())
    broken = _needs_rebuild(labels, splits, groups)
    if len(broken) == 0:
        return labels, links, []
    in_broken = np.isin(labels[links["uid_l"].to_numpy()], broken)
    keep = links[~in_broken]
    todo = links[in_broken].sort_values(
        ["rank", "match_probability", "uid_l", "uid_r"],
        ascending=[False, False, True, True],
        kind="stable",
    )
    apart: dict[int, set[int]] = {}
    for a, b in zip(splits["uid_l"].tolist(), splits["uid_r"].tolist(), strict=True):
        apart.setdefault(a, set()).add(b)
        apart.setdefault(b, set()).add(a)

    def start(x: int) -> tuple[set[int], set[int]]:
        """(split records, link groups) of a record on its own."""
        held = {int(groups[x])} if groups is not None and groups[x] > 0 else set()
        return ({x} if x in apart else set()), held

    parent: dict[int, int] = {}
    state: dict[int, tuple[set[int], set[int]]] = {}  # root -> (split records, groups held)
    kept_rows, refused = [], []
    for row, a, b, rank in zip(
        range(len(todo)),
        todo["uid_l"].tolist(),
        todo["uid_r"].tolist(),
        todo["rank"].tolist(),
        strict=True,
    ):
        ra, rb = _find(parent, a), _find(parent, b)
        if ra == rb:
            kept_rows.append(row)
            continue
        (ma, ga), (mb, gb) = state.get(ra) or start(a), state.get(rb) or start(b)
        if ga & gb or any(apart[x] & mb for x in ma):
            if rank == MANUAL_RANK:
                refused.append((a, b))
            continue
        root, child = min(ra, rb), max(ra, rb)
        parent[child] = root
        state[root] = (ma | mb, ga | gb)
        state.pop(child, None)
        kept_rows.append(row)
    kept = pd.concat([keep, todo.iloc[kept_rows]], ignore_index=True)
    kept = kept.sort_values(["uid_l", "uid_r"], kind="stable", ignore_index=True)
    labels = components(n, kept["uid_l"].to_numpy(), kept["uid_r"].to_numpy())
    return labels, kept, refused


def _key_pairs(work: duckdb.DuckDBPyConnection, records: pd.DataFrame) -> pd.DataFrame:
    """Every pair (uid_l < uid_r) of records sharing an email key, or a phone and last name,
    that may link (link groups), in groups of at most MAX_CLIQUE records."""
    work.register("cluster_records", records)
    try:
        return work.execute(
            f"""
            WITH keyed AS (
                SELECT uid, link_group, 'e' || email_key AS k FROM cluster_records
                WHERE email_key IS NOT NULL
                UNION ALL
                SELECT uid, link_group, 'p' || phone || '|' || last_name FROM cluster_records
                WHERE phone IS NOT NULL AND last_name IS NOT NULL
            ),
            small AS (
                SELECT * FROM keyed
                QUALIFY count(*) OVER (PARTITION BY k) BETWEEN 2 AND {MAX_CLIQUE}
            )
            SELECT DISTINCT a.uid AS uid_l, b.uid AS uid_r
            FROM small a JOIN small b
              ON a.k = b.k AND a.uid < b.uid
             AND (a.link_group = 0 OR a.link_group <> b.link_group)
            """  # noqa: S608 - a numeric constant of this module
        ).df()
    finally:
        work.unregister("cluster_records")


def cluster_figures(
    work: duckdb.DuckDBPyConnection,
    records: pd.DataFrame,
    labels: np.ndarray,
    kept: pd.DataFrame,
    splits: pd.DataFrame,
) -> pd.DataFrame:
    """Per cluster of 2+ records (see the module docstring): cluster (label), size, links,
    density, weakest_link (probability), weakest_uid_l, weakest_uid_r. `records`: the match
    frame (uid, link_group, email_key, phone, last_name)."""
    n = len(labels)
    size = np.bincount(labels, minlength=n) if n else np.zeros(0, dtype=np.int64)
    columns = ["cluster", "size", "links", "density", "weakest_link"]
    columns += ["weakest_uid_l", "weakest_uid_r"]
    if n == 0 or (size < 2).all():
        return pd.DataFrame({c: pd.Series(dtype=np.int64) for c in columns}).astype(
            {"density": float, "weakest_link": float}
        )
    key_pairs = _key_pairs(work, records[["uid", "link_group", "email_key", "phone", "last_name"]])
    pairs = pd.concat([kept[["uid_l", "uid_r"]], key_pairs], ignore_index=True)
    pairs = pairs.drop_duplicates(ignore_index=True)
    if not splits.empty:
        forbidden = set(zip(splits["uid_l"].tolist(), splits["uid_r"].tolist(), strict=True))
        mask = [
            (a, b) not in forbidden
            for a, b in zip(pairs["uid_l"].tolist(), pairs["uid_r"].tolist(), strict=True)
        ]
        pairs = pairs[np.array(mask, dtype=bool)]
    same = labels[pairs["uid_l"].to_numpy()] == labels[pairs["uid_r"].to_numpy()]
    links = np.bincount(labels[pairs["uid_l"].to_numpy()[same]], minlength=n)

    # Maximum spanning tree = minimum spanning tree on cost 2 - p (every cost positive).
    best = kept.groupby(["uid_l", "uid_r"], as_index=False)["match_probability"].max()
    cost = 2.0 - best["match_probability"].to_numpy(dtype=float)
    tree = minimum_spanning_tree(
        coo_matrix((cost, (best["uid_l"].to_numpy(), best["uid_r"].to_numpy())), shape=(n, n))
    ).tocoo()
    edges = pd.DataFrame(
        {"uid_l": np.minimum(tree.row, tree.col), "uid_r": np.maximum(tree.row, tree.col)}
    )
    edges = edges.merge(best.rename(columns={"match_probability": "p"}), on=["uid_l", "uid_r"])
    edges["cluster"] = labels[edges["uid_l"].to_numpy()]
    weakest = edges.sort_values(["cluster", "p", "uid_l", "uid_r"], kind="stable").drop_duplicates(
        "cluster"
    )
    clusters = np.flatnonzero((size >= 2) & (np.arange(n) == labels))
    out = pd.DataFrame({"cluster": clusters.astype(np.int64)})
    out["size"] = size[clusters].astype(np.int64)
    out["links"] = links[clusters].astype(np.int64)
    out["density"] = out["links"] / (out["size"] * (out["size"] - 1) / 2)
    out = out.merge(
        weakest.rename(
            columns={"p": "weakest_link", "uid_l": "weakest_uid_l", "uid_r": "weakest_uid_r"}
        ),
        on="cluster",
        how="left",
    )
    out["weakest_link"] = out["weakest_link"].clip(upper=1.0)
    return out[columns]
