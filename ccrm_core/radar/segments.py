"""Segments: the `segments` build stage (mart_customer), value tiers, needs-based segments,
user-defined rule segments, and the per-segment views the Segment Explorer shows.

Schemes are columns of `mart_customer`: `rfm_segment` (named RFM cells, see ccrm_core.radar.value),
`value_tier` (lifetime value rank among buyers), `needs_segment` (behavioural clusters). A fourth
scheme, `saved`, holds the user's rule segments from table `saved_segments`: structured filters
(column, operator, value) on mart_customer columns, turned into parameterised SQL here; a rule is
never SQL text.

mart_customer grain: one row per customer in the golden `customers` table. Customers without an
order keep orders = 0, revenue = 0, NULL model columns, rfm_segment and value_tier
'No purchase yet'.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ccrm_core.foundation import store, validation
from ccrm_core.foundation.pipeline import BuildContext, replace_table

SCHEMES: dict[str, str] = {
    "rfm_segment": "RFM segment",
    "value_tier": "Value tier",
    "needs_segment": "Needs segment",
}
SAVED_SCHEME = "saved"
NO_PURCHASE = "No purchase yet"
NO_ACTIVITY = "No activity yet"

# Value tiers: share of buyers (ranked by lifetime value) in each tier, top first.
VALUE_TIERS: tuple[tuple[str, float], ...] = (
    ("Platinum (top 1%)", 0.01),
    ("Gold (next 4%)", 0.04),
    ("Silver (next 15%)", 0.15),
    ("Bronze (rest)", 0.80),
)

ENGAGEMENT_TYPES = ("open", "click", "visit", "call", "login")
MAX_CATEGORIES = 12  # category share columns kept in mart_customer (the rest count as "other")
SEGMENT_NAME_MAX = 80  # characters in a saved segment's name


# ---------------------------------------------------------------------------------------------
# Value tiers


def value_tiers(clv: pd.Series, tiers: Sequence[tuple[str, float]] = VALUE_TIERS) -> np.ndarray:
    """Tier name per customer from lifetime value: rank customers by CLV (ties broken by the
    order given, so callers sort by customer_id first) and cut at the cumulative tier shares.
    NaN CLV -> NO_PURCHASE."""
    values = pd.Series(np.asarray(clv, dtype=float))
    valid = values.notna()
    n = int(valid.sum())
    out = np.full(len(values), NO_PURCHASE, dtype=object)
    if n == 0:
        return out
    # position 0 = highest CLV; stable so equal CLVs keep their input order
    order = values[valid].rank(method="first", ascending=False).to_numpy() - 1
    bounds = np.cumsum([share for _, share in tiers])
    # a customer at rank i (0-based) belongs to the first tier whose cumulative share covers i+1
    tier_index = np.searchsorted(np.ceil(bounds * n - 1e-9), order + 1, side="left")
    tier_index = np.minimum(tier_index, len(tiers) - 1)
    names = np.array([name for name, _ in tiers], dtype=object)
    out[valid.to_numpy()] = names[tier_index]
    return out


# ---------------------------------------------------------------------------------------------
# Behaviour features (SQL, scales to millions of customers)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "none"


def top_categories(con: duckdb.DuckDBPyConnection, limit: int = MAX_CATEGORIES) -> list[str]:
    """The most frequent order categories (by orders), at most `limit`."""
    rows = con.execute(
        "SELECT category FROM customer_orders WHERE category IS NOT NULL "
        "GROUP BY category ORDER BY count(*) DESC, category LIMIT ?",
        [limit],
    ).fetchall()
    return [r[0] for r in rows]


def behaviour_features(con: duckdb.DuckDBPyConnection, as_of) -> pd.DataFrame:
    """Per customer (every customer_id in `customers`, ordered by it), behaviour up to `as_of`:

    - events, engagements (opens, clicks, visits, calls, logins), click_rate (clicks per send or
      impression), events_per_week (engagements per week of tenure), tenure_weeks (weeks from
      first seen: record created, first event or first order), days_since_last_event;
    - share_<channel>: share of the customer's events (touches and responses) on each event
      channel (0 without events): the channel mix a customer lives in;
    - order_share_<channel>: share of orders per sales channel (NULL without orders);
    - cat_<category>: share of orders per category, top MAX_CATEGORIES categories (NULL without
      orders); top_channel (most engaged event channel), top_category (most ordered category).
    """
    ev_cols: list[tuple[str, str]] = []  # (column, SQL expression over the per-channel rows)
    ev_params: list[Any] = []
    for ch in store.EVENT_CHANNELS:
        ev_cols.append(
            (
                f"share_{_slug(ch)}",
                "coalesce(sum(CASE WHEN channel = ? THEN events END) / nullif(sum(events), 0), 0)",
            )
        )
        ev_params.append(ch)
    od_cols: list[tuple[str, str]] = []
    od_params: list[Any] = []
    for ch in store.ORDER_CHANNELS:
        od_cols.append(
            (f"order_share_{_slug(ch)}", "avg(CASE WHEN channel = ? THEN 1.0 ELSE 0.0 END)")
        )
        od_params.append(ch)
    used: set[str] = set()
    for cat in top_categories(con):
        col = f"cat_{_slug(cat)}"
        while col in used:
            col += "_x"
        used.add(col)
        od_cols.append((col, "avg(CASE WHEN category = ? THEN 1.0 ELSE 0.0 END)"))
        od_params.append(cat)

    def select_list(cols: list[tuple[str, str]]) -> str:
        return "".join(f", {expr} AS {store.quote_ident(col)}" for col, expr in cols)

    engagement_list = ", ".join(f"'{t}'" for t in ENGAGEMENT_TYPES)  # our constants
    sql = f"""
        WITH per_channel AS (
            SELECT customer_id, channel,
                   count(*) AS events,
                   count(*) FILTER (WHERE event_type IN ({engagement_list})) AS engagements,
                   count(*) FILTER (WHERE event_type = 'click') AS clicks,
                   count(*) FILTER (WHERE event_type IN ('send', 'impression')) AS reached,
                   min(ts) AS first_ts, max(ts) AS last_ts
            FROM customer_events
            WHERE customer_id IS NOT NULL AND CAST(ts AS DATE) <= CAST(? AS DATE)
            GROUP BY customer_id, channel
        ),
        ev AS (
            SELECT customer_id, sum(events) AS events, sum(engagements) AS engagements,
                   sum(clicks) AS clicks, sum(reached) AS reached,
                   min(first_ts) AS first_event, max(last_ts) AS last_event,
                   -- ties broken by name: a plain arg_max/mode picks whichever row a thread
                   -- saw first, so two builds of the same data could disagree
                   CASE WHEN sum(engagements) > 0 THEN arg_max(channel, row(engagements, channel))
                   END AS top_channel
                   {select_list(ev_cols)}
            FROM per_channel GROUP BY customer_id
        ),
        od AS (
            SELECT customer_id, min(ts) AS first_order_ts,
                   mode(category ORDER BY category) AS top_category
                   {select_list(od_cols)}
            FROM customer_orders
            WHERE CAST(ts AS DATE) <= CAST(? AS DATE)
            GROUP BY customer_id
        ),
        c AS (
            SELECT customer_id, min(created_at) AS created_at FROM customers GROUP BY customer_id
        )
        SELECT c.customer_id,
               CAST(coalesce(ev.events, 0) AS BIGINT) AS events,
               CAST(coalesce(ev.engagements, 0) AS BIGINT) AS engagements,
               coalesce(ev.clicks / nullif(ev.reached, 0), 0) AS click_rate,
               greatest(date_diff('day',
                   CAST(least(c.created_at, ev.first_event, od.first_order_ts) AS DATE),
                   CAST(? AS DATE)), 0) / 7.0 AS tenure_weeks,
               date_diff('day', CAST(ev.last_event AS DATE), CAST(? AS DATE))
                   AS days_since_last_event,
               ev.top_channel, od.top_category
               {"".join(f", coalesce(ev.{store.quote_ident(c_)}, 0) AS {store.quote_ident(c_)}" for c_, _ in ev_cols)}
               {"".join(f", od.{store.quote_ident(c_)}" for c_, _ in od_cols)}
        FROM c
        LEFT JOIN ev ON ev.customer_id = c.customer_id
        LEFT JOIN od ON od.customer_id = c.customer_id
        ORDER BY c.customer_id
    """  # noqa: S608 - identifiers come from our vocabularies and slugs; values are parameters
    frame = con.execute(sql, [as_of, *ev_params, *od_params, as_of, as_of, as_of]).df()
    frame["tenure_weeks"] = frame["tenure_weeks"].fillna(0.0)
    frame["events_per_week"] = frame["engagements"] / frame["tenure_weeks"].clip(lower=1.0)
    return frame


# ---------------------------------------------------------------------------------------------
# Needs-based segments (k-means on scaled behaviour)

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


# ---------------------------------------------------------------------------------------------
# The `segments` build stage

MART_COLUMNS = (
    "customer_id", "orders", "revenue", "first_order_date", "last_order_date", "frequency",
    "recency", "T", "monetary_value", "r_score", "f_score", "m_score", "rfm_segment",
    "expected_purchases_12m", "prob_alive", "clv", "value_tier", "needs_segment",
)  # fmt: skip

SAVED_SEGMENTS_DDL = """
CREATE TABLE IF NOT EXISTS saved_segments (
    name        VARCHAR NOT NULL,   -- the user's name for the segment (unique)
    definition  VARCHAR NOT NULL,   -- JSON: {"match": "all"|"any", "rules": [{column, operator, value}]}
    customers   BIGINT,             -- members when saved
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
)
"""


def _previous_centroids(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    if not store.table_exists(con, "needs_segment_centroids"):
        return None
    long = con.execute("SELECT segment, feature, value FROM needs_segment_centroids").df()
    if long.empty:
        return None
    return long.pivot(index="segment", columns="feature", values="value")


def segments_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Write `mart_customer` (one row per customer: value, RFM, tiers, needs segment and
    behaviour columns), `needs_segment_centroids` (segment, feature, label, value, z_score) and
    `needs_segment_model` (k, silhouette, chosen). Reads `customer_value` from the value stage.

    Settings (ctx.params["segments"]): k_min (4), k_max (6), seed (0).
    """
    if not store.table_exists(con, "customer_value"):
        raise RuntimeError("table customer_value is missing; run the `value` stage first")
    # read the previous build's centroids first: every later statement completes its result
    # before replace_table registers a frame (duckdb 2 refuses while a result is unfinished)
    previous = _previous_centroids(con)
    k_min = int(ctx.param("segments", "k_min", 4))
    k_max = int(ctx.param("segments", "k_max", 6))
    seed = int(ctx.param("segments", "seed", 0))
    behaviour = behaviour_features(con, ctx.as_of)
    value = con.execute("SELECT * FROM customer_value").df()
    mart = behaviour.merge(value, on="customer_id", how="left", validate="one_to_one")
    mart = mart.sort_values("customer_id", kind="stable").reset_index(drop=True)
    mart["orders"] = mart["orders"].fillna(0).astype("int64")
    mart["revenue"] = mart["revenue"].fillna(0.0)
    mart["rfm_segment"] = mart["rfm_segment"].fillna(NO_PURCHASE)
    mart["value_tier"] = value_tiers(mart["clv"].where(mart["orders"] > 0))

    categories = {f"cat_{_slug(c)}": c for c in top_categories(con)}
    x, active = needs_feature_matrix(mart)
    mart["needs_segment"] = NO_ACTIVITY
    centroid_rows: list[dict] = []
    model_rows: list[dict] = []
    if active.sum() >= k_max * 5 and x.shape[1] >= 2:
        names, model = fit_needs_segments(
            x[active],
            mart.loc[active, "customer_id"],
            previous=previous,
            k_range=tuple(range(k_min, k_max + 1)),
            seed=seed,
            category_names=categories,
        )
        mart.loc[active, "needs_segment"] = names
        for segment in model.centroids.index:
            for feature in model.centroids.columns:
                centroid_rows.append(
                    {
                        "segment": segment,
                        "feature": feature,
                        "label": feature_label(feature, category_names=categories),
                        "value": float(model.centroids.loc[segment, feature]),
                        "z_score": float(model.z_scores.loc[segment, feature]),
                    }
                )
        model_rows = [
            {"k": k, "silhouette": s, "chosen": k == model.k} for k, s in model.silhouette.items()
        ]
    ordered = list(MART_COLUMNS) + [c for c in mart.columns if c not in MART_COLUMNS]
    replace_table(con, "mart_customer", mart[ordered])
    replace_table(
        con,
        "needs_segment_centroids",
        pd.DataFrame(centroid_rows, columns=["segment", "feature", "label", "value", "z_score"]),
    )
    replace_table(
        con, "needs_segment_model", pd.DataFrame(model_rows, columns=["k", "silhouette", "chosen"])
    )
    con.execute(SAVED_SEGMENTS_DDL)
    return len(mart)


# ---------------------------------------------------------------------------------------------
# Rule segments: structured filters on mart_customer, saved by name

NUMERIC_OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "between", "is null", "is not null")
TEXT_OPERATORS = ("=", "!=", "in", "not in", "contains", "is null", "is not null")
DATE_OPERATORS = ("=", ">", ">=", "<", "<=", "between", "is null", "is not null")
_COMPARE = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


class RuleError(ValueError):
    """A rule that cannot be applied; the message names the rule, column, value and the fix."""


@dataclass(frozen=True)
class Rule:
    """One filter: `column` (a mart_customer column), `operator` (see *_OPERATORS for its
    type), `value` (a number, text or date; a list for in / not in; [low, high] for between)."""

    column: str
    operator: str
    value: Any = None


def rule_columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """mart_customer columns a rule may use -> kind ('number', 'text' or 'date')."""
    if not store.table_exists(con, "mart_customer"):
        return {}
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'mart_customer' AND table_schema = 'main' ORDER BY ordinal_position"
    ).fetchall()
    out = {}
    for name, dtype in rows:
        d = dtype.upper()
        if d in ("VARCHAR", "TEXT") or d.startswith("VARCHAR"):
            out[name] = "text"
        elif d.startswith(("DATE", "TIMESTAMP")):
            out[name] = "date"
        elif d in ("BOOLEAN",):
            continue
        else:
            out[name] = "number"
    return out


def rule_value_options(con: duckdb.DuckDBPyConnection, column: str, limit: int = 100) -> list:
    """Distinct values of a text column of mart_customer (most common first), for pick lists;
    [] for other columns or when it has more than `limit` distinct values."""
    columns = rule_columns(con)
    if columns.get(column) != "text":
        return []
    col = store.quote_ident(next(c for c in columns if c == column))
    rows = con.execute(
        f"SELECT {col} FROM mart_customer WHERE {col} IS NOT NULL "  # noqa: S608 - checked name
        f"GROUP BY {col} ORDER BY count(*) DESC, {col} LIMIT ?",
        [limit + 1],
    ).fetchall()
    return [] if len(rows) > limit else [r[0] for r in rows]


def operators_for(kind: str) -> tuple[str, ...]:
    return {"number": NUMERIC_OPERATORS, "text": TEXT_OPERATORS, "date": DATE_OPERATORS}[kind]


def _coerce(kind: str, value: Any, where: str) -> Any:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        raise RuleError(f"{where}: a value is missing; type one in")
    if kind == "number":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise RuleError(
                f"{where}: {validation.quoted(value)} is not a number; type a number"
            ) from None
        if not math.isfinite(number):
            raise RuleError(f"{where}: {validation.quoted(value)} is not a finite number")
        return number
    if kind == "date":
        try:
            return pd.Timestamp(value).date()
        except (TypeError, ValueError):
            raise RuleError(
                f"{where}: {validation.quoted(value)} is not a date; use YYYY-MM-DD"
            ) from None
    return str(value)


def _as_rule(raw: Rule | dict | Sequence) -> Rule:
    """A Rule from a Rule, a dict, or a (column, operator, value) tuple (hashable, so pages can
    cache on it)."""
    if isinstance(raw, Rule):
        return raw
    if isinstance(raw, dict):
        return Rule(**raw)
    return Rule(*raw)


def rules_where(
    con: duckdb.DuckDBPyConnection, rules: Sequence[Rule | dict], match: str = "all"
) -> tuple[str, list[Any]]:
    """A parameterised WHERE condition for the rules (joined by AND for match='all', OR for
    'any'); '' matches everyone. Column names are checked against mart_customer and written
    from that list; values always travel as parameters."""
    if match not in ("all", "any"):
        raise RuleError(f"match must be 'all' or 'any' (got {validation.quoted(match)})")
    columns = rule_columns(con)
    parts: list[str] = []
    params: list[Any] = []
    for i, raw in enumerate(rules, start=1):
        rule = _as_rule(raw)
        # column and operator are user text until checked: messages quote them escaped
        where = f"rule {i} ({validation.label(rule.column)} {validation.label(rule.operator)})"
        if rule.column not in columns:
            raise RuleError(
                f"{where}: column {validation.quoted(rule.column)} is not in mart_customer; "
                f"choose one of {', '.join(columns) or '(none: run the segments stage)'}"
            )
        kind = columns[rule.column]
        if rule.operator not in operators_for(kind):
            raise RuleError(
                f"{where}: operator {validation.quoted(rule.operator)} does not apply to a "
                f"{kind} column; use one of {', '.join(operators_for(kind))}"
            )
        col = store.quote_ident(next(c for c in columns if c == rule.column))
        op = rule.operator
        if op == "is null":
            parts.append(f"{col} IS NULL")
        elif op == "is not null":
            parts.append(f"{col} IS NOT NULL")
        elif op in _COMPARE:
            parts.append(f"{col} {_COMPARE[op]} ?")
            params.append(_coerce(kind, rule.value, where))
        elif op == "between":
            if not isinstance(rule.value, list | tuple) or len(rule.value) != 2:
                raise RuleError(f"{where}: between needs two values [low, high]")
            parts.append(f"{col} BETWEEN ? AND ?")
            params += [_coerce(kind, v, where) for v in rule.value]
        elif op in ("in", "not in"):
            values = rule.value if isinstance(rule.value, list | tuple) else [rule.value]
            values = [_coerce(kind, v, where) for v in values]
            if not values:
                raise RuleError(f"{where}: choose at least one value")
            marks = ", ".join("?" for _ in values)
            parts.append(f"{col} {'NOT IN' if op == 'not in' else 'IN'} ({marks})")
            params += values
        elif op == "contains":
            parts.append(f"contains(lower({col}), lower(?))")
            params.append(_coerce(kind, rule.value, where))
    joiner = " AND " if match == "all" else " OR "
    return (joiner.join(f"({p})" for p in parts), params)


def rule_counts(
    con: duckdb.DuckDBPyConnection, rules: Sequence[Rule | dict], match: str = "all"
) -> dict[str, float]:
    """Live counts for a rule set: customers, share of all customers, revenue, average CLV and
    average probability alive of the matching customers."""
    cond, params = rules_where(con, rules, match)
    where = f"WHERE {cond}" if cond else ""
    customers, revenue, avg_clv, avg_alive, total = con.execute(
        "SELECT count(*), coalesce(sum(revenue), 0), avg(clv), avg(prob_alive), "  # noqa: S608
        f"(SELECT count(*) FROM mart_customer) FROM mart_customer {where}",
        params,
    ).fetchall()[0]
    return {
        "customers": int(customers),
        "share": customers / total if total else 0.0,
        "revenue": float(revenue),
        "avg_clv": float(avg_clv) if avg_clv is not None else float("nan"),
        "avg_prob_alive": float(avg_alive) if avg_alive is not None else float("nan"),
    }


def _definition(rules: Sequence[Rule | dict], match: str) -> str:
    items = [asdict(_as_rule(r)) for r in rules]
    for item in items:  # dates to text so the definition is JSON
        if isinstance(item.get("value"), list | tuple):
            item["value"] = [str(v) if hasattr(v, "isoformat") else v for v in item["value"]]
        elif hasattr(item.get("value"), "isoformat"):
            item["value"] = str(item["value"])
    return json.dumps({"match": match, "rules": items}, sort_keys=True)


def save_segment(
    con: duckdb.DuckDBPyConnection, name: str, rules: Sequence[Rule | dict], match: str = "all"
) -> int:
    """Save (or replace) a rule segment under `name`; returns its current member count. The rules
    are validated first, so a saved segment always applies."""
    name = validation.clean_name(
        name, "segment name", SEGMENT_NAME_MAX, RuleError, example="High-value at risk"
    )
    if not rules:
        raise RuleError(f"segment {validation.quoted(name)} has no rules; add at least one")
    customers = rule_counts(con, rules, match)["customers"]
    now = datetime.now()
    with store.transaction(con):
        con.execute(SAVED_SEGMENTS_DDL)
        # a segment saved again keeps the day it was first created
        created = con.execute(
            "SELECT min(created_at) FROM saved_segments WHERE name = ?", [name]
        ).fetchall()[0][0]
        con.execute("DELETE FROM saved_segments WHERE name = ?", [name])
        con.execute(
            "INSERT INTO saved_segments VALUES (?, ?, ?, ?, ?)",
            [name, _definition(rules, match), customers, created or now, now],
        )
    return customers


def delete_segment(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Delete a saved segment; returns whether it existed."""
    if not store.table_exists(con, "saved_segments"):
        return False
    with store.transaction(con):
        removed = con.execute("DELETE FROM saved_segments WHERE name = ?", [name]).fetchall()[0][0]
    return bool(removed)


def saved_segments(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Saved rule segments: name, match, rules (list of dicts), customers (when saved),
    updated_at; newest first."""
    if not store.table_exists(con, "saved_segments"):
        return pd.DataFrame(columns=["name", "match", "rules", "customers", "updated_at"])
    frame = con.execute(
        "SELECT name, definition, customers, updated_at FROM saved_segments "
        "ORDER BY updated_at DESC, name"
    ).df()
    parsed = [json.loads(d) for d in frame["definition"]]
    frame["match"] = [p.get("match", "all") for p in parsed]
    frame["rules"] = [p.get("rules", []) for p in parsed]
    return frame[["name", "match", "rules", "customers", "updated_at"]]


def saved_segment_where(con: duckdb.DuckDBPyConnection, name: str) -> tuple[str, list[Any]]:
    """The WHERE condition of a saved segment (raises RuleError naming it when missing)."""
    saved = saved_segments(con)
    row = saved[saved["name"] == name]
    if row.empty:
        raise RuleError(
            f"no saved segment named {validation.quoted(name)}; "
            f"saved: {', '.join(saved['name']) or '(none)'}"
        )
    return rules_where(con, row["rules"].iloc[0], row["match"].iloc[0])


# ---------------------------------------------------------------------------------------------
# Membership and per-segment views


def available_schemes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The segment schemes (columns of mart_customer) built in this database, in SCHEMES order;
    empty before the `segments` stage has run. Other stages segment by these."""
    if not store.table_exists(con, "mart_customer"):
        return []
    cols = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'mart_customer' AND table_schema = 'main'"
        ).fetchall()
    }
    return [s for s in SCHEMES if s in cols]


def _check_scheme(scheme: str, allow_saved: bool = True) -> str:
    if scheme in SCHEMES or (allow_saved and scheme == SAVED_SCHEME):
        return scheme
    choices = list(SCHEMES) + ([SAVED_SCHEME] if allow_saved else [])
    raise ValueError(f"unknown segment scheme {scheme!r}; choose one of {', '.join(choices)}")


def segment_condition(
    con: duckdb.DuckDBPyConnection, scheme: str, segment: str
) -> tuple[str, list[Any]]:
    """WHERE condition selecting one segment of a scheme from mart_customer."""
    if _check_scheme(scheme) == SAVED_SCHEME:
        cond, params = saved_segment_where(con, segment)
        return cond or "TRUE", params
    return f"{store.quote_ident(scheme)} = ?", [segment]


def segment_members(con: duckdb.DuckDBPyConnection, scheme: str, segment: str) -> pd.DataFrame:
    """customer_id of every member of `segment` in `scheme` ('rfm_segment', 'value_tier',
    'needs_segment', or 'saved' for a saved rule segment), ordered by customer_id."""
    cond, params = segment_condition(con, scheme, segment)
    return con.execute(
        f"SELECT customer_id FROM mart_customer WHERE {cond} ORDER BY customer_id",  # noqa: S608
        params,
    ).df()


def mart_ready(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the segments stage has written mart_customer."""
    return store.table_exists(con, "mart_customer")


def segment_names(con: duckdb.DuckDBPyConnection, scheme: str) -> list[str]:
    """The segments of a scheme, largest first."""
    if _check_scheme(scheme) == SAVED_SCHEME:
        return list(saved_segments(con)["name"])
    col = store.quote_ident(scheme)
    rows = con.execute(
        f"SELECT {col} FROM mart_customer GROUP BY {col} ORDER BY count(*) DESC, {col}"  # noqa: S608
    ).fetchall()
    return [r[0] for r in rows]


_PROFILE_SELECT = """
    count(*) AS customers,
    coalesce(sum(revenue), 0) AS revenue,
    avg(clv) AS avg_clv,
    avg(prob_alive) AS avg_prob_alive,
    avg(orders) AS avg_orders,
    avg(CASE WHEN orders > 0 THEN revenue / orders END) AS avg_order_value,
    coalesce(sum(clv), 0) AS total_clv
"""


def segment_profile(con: duckdb.DuckDBPyConnection, scheme: str) -> pd.DataFrame:
    """One row per segment of `scheme`: customers, share (of all customers), revenue (currency,
    whole history), revenue_share, avg_clv (12-month discounted CLV), avg_prob_alive, avg_orders,
    avg_order_value, total_clv; largest first. For 'saved', one row per saved segment (they may
    overlap, so shares need not add up to 1)."""
    frame = _per_segment(con, scheme, _PROFILE_SELECT)
    if frame is None:
        return pd.DataFrame(
            columns=["segment", "customers", "share", "revenue", "revenue_share", "avg_clv"]
        )
    total, revenue = con.execute(
        "SELECT count(*), coalesce(sum(revenue), 0) FROM mart_customer"
    ).fetchall()[0]
    frame["share"] = frame["customers"] / total if total else 0.0
    frame["revenue_share"] = frame["revenue"] / revenue if revenue else 0.0
    frame = frame.sort_values(["customers", "segment"], ascending=[False, True])
    return frame.reset_index(drop=True)


def _per_segment(
    con: duckdb.DuckDBPyConnection, scheme: str, select: str, where: str = "TRUE"
) -> pd.DataFrame | None:
    """`SELECT <segment>, <select> FROM mart_customer WHERE <where>` for each segment of
    `scheme` (our SQL only): grouped by the scheme's column, or one branch per saved segment
    (saved segments may overlap). None when the saved scheme has no segments."""
    if _check_scheme(scheme) == SAVED_SCHEME:
        parts, params = [], []
        for name in segment_names(con, SAVED_SCHEME):
            cond, p = saved_segment_where(con, name)
            parts.append(
                f"SELECT ? AS segment, {select} FROM mart_customer "  # noqa: S608
                f"WHERE ({where}) AND ({cond or 'TRUE'})"
            )
            params += [name, *p]
        if not parts:
            return None
        return con.execute(" UNION ALL ".join(parts), params).df()
    col = store.quote_ident(scheme)
    return con.execute(
        f"SELECT {col} AS segment, {select} FROM mart_customer WHERE {where} GROUP BY {col}"  # noqa: S608
    ).df()


MIX_KINDS = {
    "channel": ("share_", "Events by channel"),
    "sales_channel": ("order_share_", "Orders by sales channel"),
    "category": ("cat_", "Orders by category"),
}


def segment_mix(con: duckdb.DuckDBPyConnection, scheme: str, kind: str) -> pd.DataFrame:
    """Mix per segment against the base (all customers with that behaviour): segment, item,
    share (mean share of an average member), base_share, index (share / base x 100).
    kind: 'channel' (events: touches and responses), 'sales_channel' (orders) or 'category'
    (orders)."""
    if kind not in MIX_KINDS:
        raise ValueError(f"unknown mix {kind!r}; choose one of {', '.join(MIX_KINDS)}")
    prefix = MIX_KINDS[kind][0]
    cols = [
        c
        for c in rule_columns(con)
        if c.startswith(prefix) and not (prefix == "share_" and c.startswith("order_share_"))
    ]
    if not cols:
        return pd.DataFrame(columns=["segment", "item", "share", "base_share", "index"])
    # customers without that behaviour (no engagements / no orders) do not dilute the mix
    has = "events > 0" if kind == "channel" else "orders > 0"
    avgs = ", ".join(f"avg({store.quote_ident(c)}) AS {store.quote_ident(c)}" for c in cols)
    wide = _per_segment(con, scheme, avgs, has)
    if wide is None:
        return pd.DataFrame(columns=["segment", "item", "share", "base_share", "index"])
    base = con.execute(f"SELECT {avgs} FROM mart_customer WHERE {has}").df().iloc[0]  # noqa: S608
    long = wide.melt(id_vars="segment", var_name="column", value_name="share")
    long["base_share"] = long["column"].map(base).astype(float)
    long["item"] = long["column"].str.removeprefix(prefix).str.replace("_", " ")
    long["index"] = np.where(
        long["base_share"] > 0, long["share"] / long["base_share"] * 100, np.nan
    )
    return long[["segment", "item", "share", "base_share", "index"]].reset_index(drop=True)


def segment_overlap(con: duckdb.DuckDBPyConnection, scheme_a: str, scheme_b: str) -> pd.DataFrame:
    """Customers in each pair of segments of two column schemes: segment_a, segment_b,
    customers, share_of_a (share of segment_a's customers that are in segment_b)."""
    a = store.quote_ident(_check_scheme(scheme_a, allow_saved=False))
    b = store.quote_ident(_check_scheme(scheme_b, allow_saved=False))
    return con.execute(
        f"""
        SELECT {a} AS segment_a, {b} AS segment_b, count(*) AS customers,
               count(*) / sum(count(*)) OVER (PARTITION BY {a}) AS share_of_a
        FROM mart_customer GROUP BY {a}, {b} ORDER BY {a}, {b}
        """  # noqa: S608 - scheme names checked against SCHEMES
    ).df()


def segment_customers(
    con: duckdb.DuckDBPyConnection, scheme: str, segment: str, limit: int = 200
) -> pd.DataFrame:
    """Members of a segment, highest lifetime value first (at most `limit`), PII masked:
    customer_id, first_name, last_name, email (masked), city, orders, revenue, clv, prob_alive,
    rfm_segment, value_tier, needs_segment, link (Customer 360 deep link)."""
    from ccrm_core.foundation import privacy

    cond, params = segment_condition(con, scheme, segment)
    frame = con.execute(
        f"""
        WITH members AS (
            SELECT * FROM mart_customer WHERE {cond}
            ORDER BY clv DESC NULLS LAST, revenue DESC, customer_id LIMIT ?
        ),
        golden AS (
            SELECT customer_id, any_value(first_name) AS first_name,
                   any_value(last_name) AS last_name, any_value(email) AS email,
                   any_value(city) AS city
            FROM customers WHERE customer_id IN (SELECT customer_id FROM members)
            GROUP BY customer_id
        )
        SELECT m.customer_id, g.first_name, g.last_name, g.email, g.city, m.orders, m.revenue,
               m.clv, m.prob_alive, m.rfm_segment, m.value_tier, m.needs_segment
        FROM members m LEFT JOIN golden g USING (customer_id)
        ORDER BY m.clv DESC NULLS LAST, m.revenue DESC, m.customer_id
        """,  # noqa: S608 - condition from segment_condition, values are parameters
        [*params, int(limit)],
    ).df()
    for col in ("first_name", "last_name", "email", "city"):
        # None, not NaN, for missing values: the maskers would print 'n***' for NaN
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    frame = privacy.mask_frame(frame)
    frame["link"] = "/customer_360?customer_id=" + frame["customer_id"].astype(str)
    return frame


def scatter_sample(con: duckdb.DuckDBPyConnection, scheme: str, n: int = 4000) -> pd.DataFrame:
    """A repeatable sample of at most n buyers (hash of customer_id): customer_id, frequency,
    monetary_value, clv, segment (the customer's segment in `scheme`, a column scheme)."""
    col = store.quote_ident(_check_scheme(scheme, allow_saved=False))
    return con.execute(
        f"""
        SELECT customer_id, frequency, monetary_value, orders, revenue, clv, {col} AS segment
        FROM mart_customer WHERE orders > 0
        ORDER BY hash(customer_id), customer_id LIMIT ?
        """,  # noqa: S608 - scheme checked against SCHEMES
        [int(n)],
    ).df()


def needs_segment_drivers(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """What distinguishes each needs segment: segment, label, z_score (top 3 per segment)."""
    if not store.table_exists(con, "needs_segment_centroids"):
        return pd.DataFrame(columns=["segment", "label", "z_score"])
    return con.execute(
        """
        SELECT segment, label, z_score FROM (
            SELECT *, row_number() OVER (PARTITION BY segment ORDER BY z_score DESC) AS rn
            FROM needs_segment_centroids
        ) WHERE rn <= 3 ORDER BY segment, z_score DESC
        """
    ).df()


def base_totals(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """All customers: customers, buyers, revenue, avg_clv, avg_prob_alive, total_clv."""
    customers, buyers, revenue, avg_clv, alive, total_clv = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE orders > 0), coalesce(sum(revenue), 0), "
        "avg(clv), avg(prob_alive), coalesce(sum(clv), 0) FROM mart_customer"
    ).fetchall()[0]
    return {
        "customers": int(customers),
        "buyers": int(buyers),
        "revenue": float(revenue),
        "avg_clv": float(avg_clv) if avg_clv is not None else float("nan"),
        "avg_prob_alive": float(alive) if alive is not None else float("nan"),
        "total_clv": float(total_clv),
    }


# ---------------------------------------------------------------------------------------------
# Figures (data in, go.Figure out)


def figure_treemap(profile: pd.DataFrame, scheme_label: str = "All customers") -> go.Figure:
    """Treemap: area = customers per segment, colour = average lifetime value."""
    fig = go.Figure(
        go.Treemap(
            labels=profile["segment"],
            parents=[scheme_label] * len(profile),
            values=profile["customers"],
            marker=dict(
                colors=profile["avg_clv"].fillna(0),
                colorscale="Blues",
                showscale=True,
                colorbar=dict(title="avg CLV"),
            ),
            customdata=np.stack(
                [profile["revenue"], profile["avg_clv"].fillna(0), profile["share"]], axis=-1
            ),
            hovertemplate="<b>%{label}</b><br>%{value:,} customers (%{customdata[2]:.1%})"
            "<br>revenue %{customdata[0]:,.0f}<br>avg CLV %{customdata[1]:,.2f}<extra></extra>",
            branchvalues="remainder",
        )
    )
    fig.update_layout(margin=dict(l=0, r=0, t=10, b=0), height=380)
    return fig


def figure_scatter(sample: pd.DataFrame) -> go.Figure:
    """Repeat purchases (frequency) vs mean repeat spend (monetary value), by segment."""
    fig = go.Figure()
    for segment, part in sample.groupby("segment", sort=True):
        fig.add_trace(
            go.Scattergl(
                x=part["frequency"],
                y=part["monetary_value"],
                mode="markers",
                name=str(segment),
                marker=dict(size=5, opacity=0.6),
                text=part["customer_id"],
                hovertemplate="%{text}<br>%{x} repeats, %{y:,.2f} per repeat<extra></extra>",
            )
        )
    fig.update_layout(
        xaxis_title="repeat purchases (frequency)",
        yaxis_title="mean repeat spend",
        height=380,
        margin=dict(l=10, r=10, t=10, b=10),
        legend=dict(font=dict(size=10)),
    )
    return fig


def figure_overlap(overlap: pd.DataFrame, label_a: str, label_b: str) -> go.Figure:
    """Heatmap: share of each segment of scheme A (rows) falling in each segment of B."""
    pivot = overlap.pivot(index="segment_a", columns="segment_b", values="share_of_a").fillna(0)
    counts = overlap.pivot(index="segment_a", columns="segment_b", values="customers").fillna(0)
    fig = go.Figure(
        go.Heatmap(
            z=pivot.to_numpy(),
            x=list(pivot.columns),
            y=list(pivot.index),
            colorscale="Blues",
            zmin=0,
            zmax=1,
            customdata=counts.to_numpy(),
            text=[[f"{v:.0%}" for v in row] for row in pivot.to_numpy()],
            texttemplate="%{text}",
            hovertemplate="%{y} → %{x}: %{customdata:,} customers (%{z:.1%})<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis_title=label_b,
        yaxis_title=label_a,
        height=max(300, 40 * len(pivot) + 120),
        margin=dict(l=10, r=10, t=10, b=10),
    )
    return fig


def figure_mix(mix: pd.DataFrame) -> go.Figure:
    """Heatmap of the mix index (segment share / base share x 100; 100 = like the base)."""
    pivot = mix.pivot(index="segment", columns="item", values="index")
    share = mix.pivot(index="segment", columns="item", values="share")
    fig = go.Figure(
        go.Heatmap(
            z=pivot.to_numpy(),
            x=list(pivot.columns),
            y=list(pivot.index),
            colorscale="RdBu",
            zmid=100,
            customdata=share.to_numpy(),
            text=[[f"{v:.0f}" if v == v else "" for v in row] for row in pivot.to_numpy()],
            texttemplate="%{text}",
            hovertemplate="%{y}, %{x}: share %{customdata:.1%}, index %{z:.0f}<extra></extra>",
            colorbar=dict(title="index"),
        )
    )
    fig.update_layout(height=max(280, 40 * len(pivot) + 120), margin=dict(l=10, r=10, t=10, b=10))
    return fig


# ---------------------------------------------------------------------------------------------
# Benchmark (ccrm bench: segment_filter)


def bench_segment_filter(ctx) -> tuple[int, dict]:
    """What the Segment Explorer does when a filter or the scheme changes, on the built
    database: 40 rule-count queries with varying thresholds (the rule builder's live count) and
    a profile + mix per scheme. Figures: p50/p95/max ms of a rule count, p95 ms of a scheme
    switch (profile + channel mix + overlap)."""
    import time

    con = store.connect_reader(ctx.db)
    try:
        customers = con.execute("SELECT count(*) FROM mart_customer").fetchall()[0][0]
        tiers = [name for name, _ in VALUE_TIERS]
        rule_ms = []
        for i in range(40):
            rules = [
                ("value_tier", "in", tuple(tiers[: 1 + i % 3])),
                ("prob_alive", ">=", 0.2 + 0.015 * i),
                ("orders", ">=", 1 + i % 4),
            ]
            t0 = time.perf_counter()
            rule_counts(con, rules)
            rule_ms.append((time.perf_counter() - t0) * 1000)
        switch_ms = []
        for scheme in (*SCHEMES, *SCHEMES):
            t0 = time.perf_counter()
            segment_profile(con, scheme)
            segment_mix(con, scheme, "channel")
            segment_overlap(con, scheme, "value_tier")
            switch_ms.append((time.perf_counter() - t0) * 1000)
    finally:
        con.close()
    figures = {
        "rule_count_p50_ms": round(float(np.percentile(rule_ms, 50)), 1),
        "rule_count_p95_ms": round(float(np.percentile(rule_ms, 95)), 1),
        "rule_count_max_ms": round(max(rule_ms), 1),
        "scheme_switch_p95_ms": round(float(np.percentile(switch_ms, 95)), 1),
    }
    return int(customers), figures
