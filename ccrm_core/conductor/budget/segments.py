"""Segment focus of the budget module: response curves for chosen segments.

The Budget Simulator's segment focus uses segment-level curves (`segment_revenue_shares`,
`apply_segment_shares`): the reconciliation by media and segment (`mart_segment_reconciliation`,
stage `reconcile`) splits each channel's incremental revenue across the segments of a scheme,
and each channel's response curve is scaled by the focus segments' share of it, so the optimizer
plans for the revenue those segments bring.

The older lifetime-value weighting (`segment_value_weights`, `apply_value_weights`) reads
`mart_attribution` (attributed conversions per channel and segment, stage `attribution`) and
`mart_customer` (CLV per customer, stage `value`) and scales the addressable channels' curves by
the lifetime value they convert.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.conductor.attribution.segment_split import SEGMENT_SPLIT_TABLE
from ccrm_core.conductor.budget.curves import BudgetError
from ccrm_core.foundation import store

# attribution model used for segment focus unless one is chosen (first one present wins)
ATTRIBUTION_PREFERENCE = ("markov_1", "markov", "shapley", "markov_2", "linear")


def segment_focus_options(con: duckdb.DuckDBPyConnection) -> dict:
    """What the segment focus can offer: {"available": bool, "note": str, "schemes": {scheme:
    [segments]}, "models": [attribution models]}.

    Needs `mart_attribution` (segment-level attribution, stage `attribution`) and `mart_customer`
    (CLV and segment columns, stage `value`); a scheme is offered when it is a column of
    mart_customer and has rows in mart_attribution.
    """
    missing = [t for t in ("mart_attribution", "mart_customer") if not store.table_exists(con, t)]
    if missing:
        return {
            "available": False,
            "note": f"needs {' and '.join(missing)}: run the `attribution` and `value` build "
            "stages",
            "schemes": {},
            "models": [],
        }
    customer_cols = set(
        con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'mart_customer'"
        )
        .df()["column_name"]
        .tolist()
    )
    if "clv" not in customer_cols:
        return {
            "available": False,
            "note": "mart_customer has no clv column: run the `value` build stage",
            "schemes": {},
            "models": [],
        }
    rows = con.execute(
        "SELECT DISTINCT scheme, segment FROM mart_attribution "
        "WHERE scheme <> 'all' AND segment IS NOT NULL ORDER BY scheme, segment"
    ).fetchall()
    schemes: dict[str, list[str]] = {}
    for scheme, segment in rows:
        if scheme in customer_cols:
            schemes.setdefault(scheme, []).append(str(segment))
    models = [
        r[0]
        for r in con.execute("SELECT DISTINCT model FROM mart_attribution ORDER BY 1").fetchall()
    ]
    if not schemes:
        return {
            "available": False,
            "note": "mart_attribution has no segment-level rows for a segment column of "
            "mart_customer: rebuild the `attribution` stage",
            "schemes": {},
            "models": models,
        }
    return {"available": True, "note": "", "schemes": schemes, "models": models}


def segment_value_weights(
    con: duckdb.DuckDBPyConnection,
    scheme: str,
    segments: Iterable[str] | None = None,
    model: str | None = None,
) -> pd.DataFrame:
    """Per addressable channel, how much customer lifetime value its conversions bring.

    For channel c with attributed conversions n(c, g) in segment g (mart_attribution, one
    attribution `model`) and mean CLV v(g) of the segment's customers (mart_customer):
        V(c) = sum over focus segments g of n(c, g) * v(g)  /  sum over all g of n(c, g)
        weight(c) = V(c) / V(all addressable channels pooled)
    so weight > 1 means the channel converts more (focus-segment) lifetime value per conversion
    than the average addressable channel. With no `segments` every segment is in focus.
    Returns channel, conversions, focus_conversions, clv_per_conversion, weight.
    `scheme` must be one of segment_focus_options' schemes (it names a mart_customer column).
    """
    options = segment_focus_options(con)
    if not options["available"]:
        raise BudgetError(f"segment focus is unavailable: {options['note']}")
    if scheme not in options["schemes"]:
        raise BudgetError(
            f"segment scheme {scheme!r} is unknown; choose from {', '.join(options['schemes'])}"
        )
    models = options["models"]
    if model is None:
        model = next((m for m in ATTRIBUTION_PREFERENCE if m in models), models[0])
    elif model not in models:
        raise BudgetError(
            f"attribution model {model!r} is unknown; choose from {', '.join(models)}"
        )
    # scheme is checked against mart_customer's own column names above, never raw user text
    clv = con.execute(
        f"SELECT CAST({store.quote_ident(scheme)} AS VARCHAR) AS segment, avg(clv) AS clv "  # noqa: S608
        "FROM mart_customer GROUP BY 1"
    ).df()
    attributed = con.execute(
        "SELECT channel, CAST(segment AS VARCHAR) AS segment, sum(conversions) AS conversions "
        "FROM mart_attribution WHERE scheme = ? AND model = ? GROUP BY 1, 2",
        [scheme, model],
    ).df()
    frame = attributed.merge(clv, on="segment", how="left")
    frame["clv"] = frame["clv"].fillna(0.0)
    focus = set(options["schemes"][scheme] if segments is None else map(str, segments))
    frame["in_focus"] = frame["segment"].isin(focus)
    frame["focus_value"] = np.where(frame["in_focus"], frame["conversions"] * frame["clv"], 0.0)
    frame["focus_conversions"] = np.where(frame["in_focus"], frame["conversions"], 0.0)
    per = frame.groupby("channel", as_index=False)[
        ["conversions", "focus_conversions", "focus_value"]
    ].sum()
    per = per[per["channel"].isin(store.ADDRESSABLE_CHANNELS) & (per["conversions"] > 0)]
    pooled = per["focus_value"].sum() / per["conversions"].sum() if len(per) else 0.0
    per["clv_per_conversion"] = per["focus_value"] / per["conversions"]
    per["weight"] = per["clv_per_conversion"] / pooled if pooled > 0 else 1.0
    return per[
        ["channel", "conversions", "focus_conversions", "clv_per_conversion", "weight"]
    ].reset_index(drop=True)


def apply_value_weights(curves: pd.DataFrame, weights: pd.DataFrame) -> pd.DataFrame:
    """Curves whose addressable channels' revenue counts at their lifetime-value weight.

    beta, beta_low and beta_high of each addressable channel in `weights` are multiplied by its
    weight (column value_weight); channels without a weight (aggregate media such as tv and print,
    which attribution cannot see per segment, or addressable channels without attributed
    conversions) keep weight 1. The objective then reads as value-weighted revenue.
    """
    out = curves.copy()
    w = dict(zip(weights["channel"], weights["weight"], strict=True))
    out["value_weight"] = [
        float(w.get(ch, 1.0)) if addressable else 1.0
        for ch, addressable in zip(out["channel"], out["addressable"], strict=True)
    ]
    for col in ("beta", "beta_low", "beta_high"):
        out[col] = out[col] * out["value_weight"]
    return out


# ---------------------------------------------------------------------------------------------
# segment-level curves from the reconciliation by media and segment


def segment_share_options(con: duckdb.DuckDBPyConnection) -> dict:
    """What the segment focus can offer: {"available": bool, "note": str, "schemes": {scheme:
    [segments, largest incremental revenue first]}, "model": attribution model of the split}.
    Segments the split gives no incremental revenue are not offered (nothing to plan for)."""
    if not store.table_exists(con, SEGMENT_SPLIT_TABLE):
        return {
            "available": False,
            "note": "it needs incremental revenue split by segment: run the `attribution`, "
            "`mmm` and `reconcile` build stages",
            "schemes": {},
            "model": None,
        }
    rows = con.execute(
        "SELECT scheme, segment, sum(incremental_revenue) AS revenue, any_value(model) "  # noqa: S608
        f"FROM {SEGMENT_SPLIT_TABLE} GROUP BY scheme, segment "
        "HAVING sum(incremental_revenue) > 0 ORDER BY scheme, revenue DESC, segment"
    ).fetchall()
    schemes: dict[str, list[str]] = {}
    for scheme, segment, _, _ in rows:
        schemes.setdefault(str(scheme), []).append(str(segment))
    if not schemes:
        return {
            "available": False,
            "note": "no segment has incremental revenue: rebuild the `reconcile` stage after "
            "`attribution` and `mmm`",
            "schemes": {},
            "model": None,
        }
    return {"available": True, "note": "", "schemes": schemes, "model": rows[0][3]}


def segment_revenue_shares(
    con: duckdb.DuckDBPyConnection, scheme: str, segments: Iterable[str] | None = None
) -> pd.DataFrame:
    """Per channel, the focus segments' share of its incremental revenue.

    From the reconciliation by media and segment, I(s, c) = I(c) * A(s, c) / sum_t A(t, c)
    (tv and print, and channels attribution never credits, by each segment's share of all
    attributed revenue):
        share(c) = sum over focus segments s of I(s, c) / I(c)
    so share(c) * (channel c's response curve) is the focus segments' curve. With no `segments`
    every segment is in focus and every share is 1. Returns channel, split_basis ('attributed'
    or 'overall'), incremental_revenue, focus_revenue, share; channels in the split's order.
    """
    options = segment_share_options(con)
    if not options["available"]:
        raise BudgetError(f"segment focus is unavailable: {options['note']}")
    if scheme not in options["schemes"]:
        raise BudgetError(
            f"segment scheme {scheme!r} is unknown; choose from {', '.join(options['schemes'])}"
        )
    split = con.execute(
        "SELECT segment, channel, split_basis, segment_share, incremental_revenue "  # noqa: S608
        f"FROM {SEGMENT_SPLIT_TABLE} WHERE scheme = ? ORDER BY channel, segment",
        [scheme],
    ).df()
    if segments is None:
        focus = set(split["segment"].astype(str))
    else:
        focus = set(map(str, segments))
        unknown = sorted(focus - set(split["segment"].astype(str)))
        if unknown:
            raise BudgetError(f"segment {unknown[0]!r} is not in scheme {scheme!r}")
    split["in_focus"] = split["segment"].astype(str).isin(focus)
    split["focus_share"] = np.where(split["in_focus"], split["segment_share"], 0.0)
    split["focus_revenue"] = np.where(split["in_focus"], split["incremental_revenue"], 0.0)
    out = split.groupby("channel", as_index=False, sort=True).agg(
        split_basis=("split_basis", "first"),
        incremental_revenue=("incremental_revenue", "sum"),
        focus_revenue=("focus_revenue", "sum"),
        share=("focus_share", "sum"),
    )
    return out[["channel", "split_basis", "incremental_revenue", "focus_revenue", "share"]]


def apply_segment_shares(curves: pd.DataFrame, shares: pd.DataFrame) -> pd.DataFrame:
    """The focus segments' response curves: beta, beta_low and beta_high of every channel in
    `shares` multiplied by its share (column segment_share), so predicted revenue, conversions
    and the optimizer's objective count only the revenue the focus segments bring. A channel
    the split does not cover keeps share 1 (no information to split it)."""
    out = curves.copy()
    share = dict(zip(shares["channel"], shares["share"], strict=True))
    out["segment_share"] = [float(share.get(ch, 1.0)) for ch in out["channel"]]
    for col in ("beta", "beta_low", "beta_high"):
        out[col] = out[col] * out["segment_share"]
    return out
