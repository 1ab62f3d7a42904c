"""The `segments` build stage: writes mart_customer, needs_segment_centroids and
needs_segment_model, and makes sure the saved_segments table exists.

mart_customer grain: one row per customer in the golden `customers` table. Customers without an
order keep orders = 0, revenue = 0, NULL model columns, rfm_segment and value_tier
'No purchase yet'.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext, replace_table
from ccrm_core.radar.segments.behaviour import _slug, behaviour_features, top_categories
from ccrm_core.radar.segments.needs import feature_label, fit_needs_segments, needs_feature_matrix
from ccrm_core.radar.segments.rules import SAVED_SEGMENTS_DDL
from ccrm_core.radar.segments.schemes import NO_ACTIVITY, NO_PURCHASE, value_tiers

MART_COLUMNS = (
    "customer_id", "orders", "revenue", "first_order_date", "last_order_date", "frequency",
    "recency", "T", "monetary_value", "r_score", "f_score", "m_score", "rfm_segment",
    "expected_purchases_12m", "prob_alive", "clv", "value_tier", "needs_segment",
)  # fmt: skip


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
