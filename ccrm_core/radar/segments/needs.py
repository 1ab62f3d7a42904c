"""Needs-based segments: k-means on standard-scaled behaviour (channel, sales-channel and
category mix, engagement, tenure), k chosen by silhouette, segments named from what
distinguishes them and kept stable across builds (see fit_needs_segments).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

_FAMILY_LABELS = {
    "share_": "{} responders",
    "order_share_": "{} shoppers",
    "cat_": "{} buyers",
}
_NAMED = {
    "share_web": "Web browsers",
    "share_email": "Email-first",
    "share_sms": "SMS-first",
    "share_push": "App-push-first",
    "share_direct_mail": "Direct-mail-first",
    "share_call_center": "Phone-first",
    "share_paid_search": "Search-led",
    "share_display": "Display-reached",
    "share_social": "Social-first",
    "order_share_web": "web shoppers",
    "order_share_app": "app shoppers",
    "order_share_store": "store shoppers",
    "order_share_call_center": "phone orderers",
    "log_events_per_week": "Highly engaged",
    "click_rate": "Clickers",
    "tenure_weeks": "Long-standing",
    "log_orders_per_year": "Frequent buyers",
    "log_order_value": "Big-basket",
}
_NAMED_LOW = {
    "log_events_per_week": "Low engagement",
    "tenure_weeks": "Newcomers",
    "log_orders_per_year": "Occasional buyers",
    "log_order_value": "Small-basket",
}


def feature_label(feature: str, high: bool = True, category_names: dict | None = None) -> str:
    """A marketer's words for a feature being high (or low) in a segment."""
    if not high:
        return _NAMED_LOW.get(feature, f"Low {feature.replace('_', ' ')}")
    if feature in _NAMED:
        return _NAMED[feature]
    if feature.startswith("cat_"):
        name = (category_names or {}).get(feature, feature[4:].replace("_", " "))
        return f"{name[:1].upper()}{name[1:]} buyers"
    return feature.replace("_", " ").capitalize()


# Clustering weight per feature after standard scaling. The three mixes say what a customer
# needs; engagement level and tenure refine it but, at full weight, split segments along how
# long or how much people have been around rather than what they want (measured on generated
# data: ARI vs planted personas 0.81 with mixes at 1 and these at 0.3, 0.76 at weight 1).
SECONDARY_FEATURE_WEIGHT = {"log_events_per_week": 0.3, "tenure_weeks": 0.3}
SILHOUETTE_TOLERANCE = 0.005


def needs_feature_matrix(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The clustering inputs per customer and which customers are active (any event or order).

    Channel mix (share_*), sales-channel mix (order_share_*) and category mix (cat_*) are
    shares in [0, 1]; a customer without events (or without orders) gets the active customers'
    mean mix there, so missing behaviour does not form a segment of its own. Engagement is
    log(1 + engagements per week); tenure in weeks."""
    share_cols = [c for c in frame.columns if c.startswith("share_")]
    order_cols = [c for c in frame.columns if c.startswith("order_share_") or c.startswith("cat_")]
    evented = frame["events"].to_numpy() > 0
    ordered = frame[order_cols].notna().all(axis=1).to_numpy() if order_cols else ~evented & evented
    active = evented | ordered
    x = pd.DataFrame(index=frame.index)
    for col in share_cols:
        values = frame[col].astype(float).where(evented)
        x[col] = values.fillna(values[evented].mean() if evented.any() else 0.0)
    for col in order_cols:
        values = frame[col].astype(float)
        x[col] = values.fillna(values[ordered].mean() if ordered.any() else 0.0)
    x["log_events_per_week"] = np.log1p(frame["events_per_week"].astype(float))
    x["tenure_weeks"] = frame["tenure_weeks"].astype(float)
    keep = [c for c in x.columns if x.loc[active, c].std() > 1e-9] if active.any() else []
    return x[keep], active


@dataclass
class NeedsModel:
    """A fitted needs segmentation: chosen k, silhouette per k, and per segment its centroid in
    feature units with the z-scores (vs all active customers) that named it."""

    k: int
    silhouette: dict[int, float]
    centroids: pd.DataFrame  # index segment name, columns features (feature units)
    z_scores: pd.DataFrame  # same shape, (centroid - mean) / std
    carried_over: int  # segments whose name was kept from the previous build


def _stable_order(ids: pd.Series) -> np.ndarray:
    """A row order that depends only on the ids (not on input order): hash of each id."""
    return np.argsort(pd.util.hash_pandas_object(ids, index=False).to_numpy(), kind="stable")


def _auto_names(z: np.ndarray, features: list[str], category_names: dict) -> list[str]:
    """Name each segment from what distinguishes it: its highest z-score feature, plus the best
    feature of another family when it also stands out (z > 0.5); unique across segments."""

    def family(f: str) -> str:
        for prefix in ("order_share_", "share_", "cat_"):
            if f.startswith(prefix):
                return prefix
        return f

    names: list[str] = []
    for row in z:
        order = np.argsort(-row)
        top = order[0]
        if row[top] < 0.3:  # nothing stands out above average: name it by its deepest low
            low = int(np.argmin(row))
            first = feature_label(features[low], high=False, category_names=category_names)
        else:
            first = feature_label(features[top], category_names=category_names)
        second = None
        for j in order[1:]:
            if row[j] > 0.5 and family(features[j]) != family(features[top]):
                second = feature_label(features[j], category_names=category_names)
                break
        name = f"{first} · {second}" if second and row[top] >= 0.3 else first
        names.append(name)
    # make unique: add the next distinguishing feature
    for name in list(dict.fromkeys(names)):
        dupes = [j for j, n in enumerate(names) if n == name]
        if len(dupes) > 1:
            for j in dupes:
                extra = feature_label(features[np.argsort(-z[j])[2]], category_names=category_names)
                names[j] = f"{name} · {extra}"
    return _unique(names)


def _unique(names: list[str]) -> list[str]:
    """Numbers repeated names: 'A', 'A' -> 'A', 'A (2)'."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def fit_needs_segments(
    features: pd.DataFrame,
    ids: pd.Series,
    previous: pd.DataFrame | None = None,
    k_range: Sequence[int] = (4, 5, 6),
    fit_sample: int = 50_000,
    silhouette_sample: int = 4_000,
    seed: int = 0,
    category_names: dict | None = None,
) -> tuple[np.ndarray, NeedsModel]:
    """K-means needs segments on standard-scaled features; k from `k_range` by silhouette.

    Stability: the sample is chosen by a hash of the customer ids, seeds are fixed, and when
    `previous` centroids (segment x feature, feature units) exist, k-means is also started from
    them and new segments are matched to old ones (Hungarian assignment on scaled distance);
    a matched segment keeps its previous name. Returns segment name per row and the model.
    """
    # scikit-learn is imported before the thread limit: threadpoolctl limits only the OpenMP and
    # BLAS libraries already loaded, and one loaded later runs on every core
    import sklearn.cluster  # noqa: F401
    from threadpoolctl import threadpool_limits

    # One thread, always: k-means adds each thread's partial centre sums in the order threads
    # finish, so with two threads two builds of the same data differ in the last bits. The fit
    # runs on a sample of at most `fit_sample` customers, so one thread costs little (and on
    # small inputs it is faster: 0.4 s -> 0.02 s per k-means run on 3,000 customers).
    with threadpool_limits(limits=1):
        return _fit_needs_segments(
            features, ids, previous, k_range, fit_sample, silhouette_sample, seed, category_names
        )


def _fit_needs_segments(
    features, ids, previous, k_range, fit_sample, silhouette_sample, seed, category_names
):
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    n = len(features)
    if n < max(k_range) * 5:
        raise ValueError(
            f"needs segments need at least {max(k_range) * 5} active customers, got {n}"
        )
    cols = list(features.columns)
    scaler = StandardScaler().fit(features.to_numpy())
    weights = np.array([SECONDARY_FEATURE_WEIGHT.get(c, 1.0) for c in cols])
    xs = scaler.transform(features.to_numpy()) * weights
    order = _stable_order(ids.reset_index(drop=True))
    # samples in hash order: the same customers in the same order whatever the input order
    fit_idx = order[: min(fit_sample, n)]
    sil_idx = order[: min(silhouette_sample, n)]
    candidates: dict[int, KMeans] = {}
    scores: dict[int, float] = {}
    for k in k_range:
        km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(xs[fit_idx])
        candidates[k] = km
        scores[k] = float(silhouette_score(xs[sil_idx], km.predict(xs[sil_idx])))
    # the fewest segments whose silhouette is within SILHOUETTE_TOLERANCE of the best: fewer
    # segments are easier to act on, and such small differences are sampling noise
    top = max(scores.values())
    best_k = min(k for k in scores if scores[k] >= top - SILHOUETTE_TOLERANCE)
    chosen = candidates[best_k]
    prev_scaled = None
    if previous is not None and len(previous) and set(previous.columns) == set(cols):
        prev_scaled = scaler.transform(previous[cols].to_numpy()) * weights
        k_prev = len(previous)
        if k_prev in k_range:
            warm = KMeans(n_clusters=k_prev, init=prev_scaled, n_init=1, random_state=seed)
            warm.fit(xs[fit_idx])
            warm_score = float(silhouette_score(xs[sil_idx], warm.predict(xs[sil_idx])))
            # keep the previous segmentation unless another k is clearly better
            if warm_score >= scores[best_k] - 0.02:
                chosen, best_k = warm, k_prev
                scores[k_prev] = max(scores[k_prev], warm_score)
    labels = chosen.predict(xs)
    centres = chosen.cluster_centers_
    # order segments by size (largest first), ties by centroid coordinates: stable numbering
    sizes = np.bincount(labels, minlength=best_k)
    rank = sorted(range(best_k), key=lambda j: (-sizes[j], tuple(np.round(centres[j], 6))))
    remap = np.empty(best_k, dtype=int)
    remap[rank] = np.arange(best_k)
    labels = remap[labels]
    centres = centres[rank]
    z = centres / weights  # (centroid - mean) / std per feature, unweighted, for naming
    names = _auto_names(z, cols, category_names or {})
    carried = 0
    if prev_scaled is not None:
        cost = np.linalg.norm(centres[:, None, :] - prev_scaled[None, :, :], axis=2)
        rows, cols_ = linear_sum_assignment(cost)
        spread = np.median(
            np.linalg.norm(centres[:, None] - centres[None, :], axis=2)[~np.eye(best_k, dtype=bool)]
        )
        matched = {
            int(r): int(c) for r, c in zip(rows, cols_, strict=True) if cost[r, c] < spread / 2
        }
        kept = {previous.index[c] for c in matched.values()}
        for r in range(best_k):
            if r in matched:
                names[r] = previous.index[matched[r]]
            elif names[r] in kept:
                names[r] = f"{names[r]} (new)"
        carried = len(matched)
        names = _unique(names)
    centroids = pd.DataFrame(scaler.inverse_transform(z), index=names, columns=cols)
    z_frame = pd.DataFrame(z, index=names, columns=cols)
    model = NeedsModel(best_k, scores, centroids, z_frame, carried)
    return np.asarray(names, dtype=object)[labels], model
