"""Reconciliation: bottom-up attribution against the top-down media mix model, and experiments.

`reconcile` puts attributed revenue beside the media mix model's incremental contribution per
channel (currency units over the fitted period); their ratio is the calibration factor that
scales attribution to top-down totals (`calibrate`). `experiment_readout` reads randomised
experiments (conversion within a window after assignment, treatment vs control). The `reconcile`
build stage stores them and the split by segment (`segment_split`); the readers and
`reconciliation_summary` serve the page.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.conductor.attribution.models import MODEL_LABELS, model_names
from ccrm_core.conductor.attribution.segment_split import SEGMENT_SPLIT_TABLE, segment_split
from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext, replace_table
from ccrm_core.foundation.rendering import markdown_text

RECONCILIATION_COLUMNS = [
    "channel",
    "addressable",
    "view",
    "attributed_conversions",
    "attributed_revenue",
    "incremental_revenue",
    "incremental_revenue_low",
    "incremental_revenue_high",
    "incremental_conversions",
    "calibration_factor",
    "attributed_share",
    "incremental_share",
]


def reconcile(
    bottom_up: pd.DataFrame,
    top_down: pd.DataFrame,
    revenue_per_conversion: float,
    addressable: Iterable[str] = store.ADDRESSABLE_CHANNELS,
) -> pd.DataFrame:
    """Per channel, bottom-up attribution beside top-down incremental contribution.

    bottom_up: DataFrame(channel, conversions, value) from one attribution model.
    top_down: DataFrame(channel, contribution[, contribution_low, contribution_high]) from the
    media mix model (incremental revenue over the fitted period, currency units).
    Returns RECONCILIATION_COLUMNS: `view` is 'both', 'top_down_only' (aggregate-only media such
    as tv, or addressable channels without tracked touches) or 'bottom_up_only' (touches but no
    spend); `calibration_factor` = incremental_revenue / attributed_revenue where both exist
    (NaN otherwise): below 1, attribution credits the channel with sales that would have happened
    anyway; above 1, the channel drives sales that its touches do not show.
    """
    addressable = set(addressable)
    bu = bottom_up.groupby("channel")[["conversions", "value"]].sum()
    td = top_down.set_index("channel")
    channels = list(td.index) + [c for c in bu.index if c not in td.index]
    out = pd.DataFrame({"channel": channels})
    out["addressable"] = out["channel"].isin(addressable)
    out["attributed_conversions"] = out["channel"].map(bu["conversions"])
    out["attributed_revenue"] = out["channel"].map(bu["value"])
    out["incremental_revenue"] = out["channel"].map(td["contribution"])
    for side in ("low", "high"):
        col = f"contribution_{side}"
        out[f"incremental_revenue_{side}"] = out["channel"].map(
            td[col] if col in td else td["contribution"]
        )
    has_bu = out["attributed_revenue"].fillna(0) > 0
    has_td = out["incremental_revenue"].notna()
    out["view"] = np.where(
        has_bu & has_td, "both", np.where(has_td, "top_down_only", "bottom_up_only")
    )
    out["incremental_conversions"] = (
        out["incremental_revenue"] / revenue_per_conversion
        if revenue_per_conversion > 0
        else np.nan
    )
    out["calibration_factor"] = np.where(
        out["view"] == "both",
        out["incremental_revenue"] / out["attributed_revenue"].where(has_bu),
        np.nan,
    )
    out["attributed_share"] = out["attributed_revenue"] / out["attributed_revenue"].sum()
    out["incremental_share"] = out["incremental_revenue"] / out["incremental_revenue"].sum()
    return out[RECONCILIATION_COLUMNS]


def calibrate(segment_attribution: pd.DataFrame, reconciliation: pd.DataFrame) -> pd.DataFrame:
    """Calibrated attribution: each segment's attributed conversions and revenue per channel
    times the channel's calibration factor within its scheme, I(c) / sum over the scheme's
    segments of A(s, c), so that per channel the segments of a scheme add up to the top-down
    total (bottom-up shares, top-down level). Attribution models run per segment see only that
    segment's journeys, so a scheme's attributed revenue per channel can differ a little from
    the all-customers figure; for scheme 'all' the factor is `reconcile`'s. Channels without a
    factor there (top-down or bottom-up only) keep NaN calibrated figures.
    Input: DataFrame(scheme, segment, channel, conversions, value)."""
    rec = reconciliation.set_index("channel")
    out = segment_attribution.rename(
        columns={"conversions": "attributed_conversions", "value": "attributed_revenue"}
    ).copy()
    scheme_total = out.groupby(["scheme", "channel"])["attributed_revenue"].transform("sum")
    known = out["channel"].map(rec["calibration_factor"]).notna() & (scheme_total > 0)
    out["calibration_factor"] = np.where(
        known,
        out["channel"].map(rec["incremental_revenue"]) / scheme_total.where(known, 1.0),
        np.nan,
    )
    out["calibrated_conversions"] = out["attributed_conversions"] * out["calibration_factor"]
    out["calibrated_revenue"] = out["attributed_revenue"] * out["calibration_factor"]
    return out


EXPERIMENT_SQL = f"""
WITH assigned AS (
    SELECT e.experiment_id, lower(e.arm) AS arm, m.customer_id, min(e.assigned_at) AS assigned_at
    FROM experiments e JOIN identity_map m
      ON m.source_system = e.source_system AND m.source_id = e.source_id
    GROUP BY ALL
),
outcome AS (
    SELECT a.experiment_id, a.arm, a.customer_id, count(o.order_id) > 0 AS converted,
           coalesce({store.exact_sum("o.revenue")}, 0) AS revenue
    FROM assigned a LEFT JOIN customer_orders o
      ON o.customer_id = a.customer_id AND o.ts > a.assigned_at
     AND o.ts <= a.assigned_at + to_days(CAST(? AS INTEGER))
    GROUP BY ALL
)
SELECT experiment_id, arm, count(*) AS customers, sum(CAST(converted AS INTEGER)) AS converters,
       {store.exact_sum("revenue")} AS revenue, min(a_min) AS first_assigned, max(a_max) AS last_assigned
FROM outcome JOIN (SELECT experiment_id, min(assigned_at) AS a_min, max(assigned_at) AS a_max
                   FROM assigned GROUP BY ALL) USING (experiment_id)
GROUP BY ALL ORDER BY experiment_id, arm
"""  # noqa: S608 our SQL; sums from store.exact_sum


def experiment_readout(con: duckdb.DuckDBPyConnection, window_days: int = 30) -> pd.DataFrame:
    """Per experiment: conversion within `window_days` after assignment, treatment vs control.

    Lift = treatment rate - control rate (absolute, per assigned customer); 95% Wald interval
    of the difference and two-sided z-test p-value (statsmodels); incremental conversions and
    revenue = lift x treated customers (revenue: difference in revenue per customer x treated).
    Empty when there is no experiment with both a control and a treatment arm."""
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    cols = [
        "experiment_id",
        "control_customers",
        "control_converters",
        "control_rate",
        "treatment_customers",
        "treatment_converters",
        "treatment_rate",
        "lift",
        "relative_lift",
        "lift_low",
        "lift_high",
        "p_value",
        "incremental_conversions",
        "incremental_revenue",
        "window_days",
        "first_assigned",
        "last_assigned",
    ]
    if not store.table_exists(con, "identity_map"):
        return pd.DataFrame(columns=[cols[0], "channel", *cols[1:]])
    arms = con.execute(EXPERIMENT_SQL, [int(window_days)]).df()
    # the experiments table has no channel; a campaign named after the experiment gives it
    channels = dict(
        con.execute(
            "SELECT e.experiment_id, any_value(c.channel) FROM (SELECT DISTINCT experiment_id "
            "FROM experiments) e JOIN campaigns c ON starts_with(c.name, e.experiment_id) "
            "GROUP BY ALL"
        ).fetchall()
    )
    rows = []
    for exp_id, group in arms.groupby("experiment_id", sort=True):
        by_arm = group.set_index("arm")
        if not {"control", "treatment"} <= set(by_arm.index):
            continue
        c, t = by_arm.loc["control"], by_arm.loc["treatment"]
        nc, nt = int(c["customers"]), int(t["customers"])
        xc, xt = int(c["converters"]), int(t["converters"])
        rc, rt = xc / nc, xt / nt
        if 0 < xc + xt < nc + nt:
            _, p_value = proportions_ztest([xt, xc], [nt, nc])
            low, high = confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff")
        else:
            p_value, low, high = 1.0, rt - rc, rt - rc
        rev_diff = float(t["revenue"]) / nt - float(c["revenue"]) / nc
        rows.append(
            [
                exp_id,
                nc,
                xc,
                rc,
                nt,
                xt,
                rt,
                rt - rc,
                (rt - rc) / rc if rc > 0 else np.nan,
                float(low),
                float(high),
                float(p_value),
                (rt - rc) * nt,
                rev_diff * nt,
                int(window_days),
                group["first_assigned"].min(),
                group["last_assigned"].max(),
            ]
        )
    out = pd.DataFrame(rows, columns=cols)
    out.insert(1, "channel", out["experiment_id"].map(channels))
    return out


def reconcile_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Build stage `reconcile`: writes mart_reconciliation (per channel, RECONCILIATION_COLUMNS
    plus model), mart_calibrated_attribution (scheme, segment, channel, model, attributed and
    calibrated conversions and revenue, calibration_factor), mart_segment_reconciliation (each
    channel's incremental revenue split by segment for every scheme, `segment_split`) and
    mart_experiment_readout."""
    model = str(ctx.param("reconcile", "model", "markov_1"))
    if model not in model_names():
        raise ValueError(f"reconcile.model {model!r} is unknown; choose from {model_names()}")
    attributed = con.execute(
        "SELECT scheme, segment, channel, conversions, value FROM mart_attribution WHERE model = ?",
        [model],
    ).df()
    overall = attributed[(attributed["scheme"] == "all") & (attributed["segment"] == "all")]
    top_down = con.execute(
        "SELECT channel, contribution, contribution_low, contribution_high FROM mart_mmm_channels"
    ).df()
    per_conversion = con.execute(
        "SELECT any_value(revenue_per_conversion) FROM mart_response_curves"
    ).fetchall()[0][0]
    table = reconcile(overall, top_down, float(per_conversion or 0.0)).assign(model=model)
    rows = replace_table(con, "mart_reconciliation", table)
    replace_table(
        con, "mart_calibrated_attribution", calibrate(attributed, table).assign(model=model)
    )
    replace_table(con, SEGMENT_SPLIT_TABLE, segment_split(attributed, table).assign(model=model))
    window = int(ctx.param("reconcile", "experiment_window_days", 30))
    replace_table(con, "mart_experiment_readout", experiment_readout(con, window))
    return rows


def load_reconciliation(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """mart_reconciliation, or None before the reconcile stage."""
    if not store.table_exists(con, "mart_reconciliation"):
        return None
    frame = con.execute(
        "SELECT * FROM mart_reconciliation ORDER BY incremental_revenue DESC NULLS LAST"
    ).df()
    return frame if len(frame) else None


def load_calibrated(
    con: duckdb.DuckDBPyConnection, scheme: str = "all", segment: str = "all"
) -> pd.DataFrame | None:
    if not store.table_exists(con, "mart_calibrated_attribution"):
        return None
    return con.execute(
        "SELECT channel, attributed_conversions, attributed_revenue, calibration_factor, "
        "calibrated_conversions, calibrated_revenue FROM mart_calibrated_attribution "
        "WHERE scheme = ? AND segment = ? ORDER BY calibrated_revenue DESC NULLS LAST",
        [scheme, segment],
    ).df()


def load_experiments(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    if not store.table_exists(con, "mart_experiment_readout"):
        return None
    return con.execute("SELECT * FROM mart_experiment_readout ORDER BY experiment_id").df()


def _money(x: float) -> str:
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:,.1f}M"
    if ax >= 1e3:
        return f"{x / 1e3:,.0f}k"
    return f"{x:,.0f}"


def reconciliation_summary(
    reconciliation: pd.DataFrame, experiments: pd.DataFrame | None = None
) -> str:
    """A plain-language paragraph generated from the reconciliation numbers (markdown; the
    channel names, model and experiment ids in it are escaped, so they show as plain text)."""
    if reconciliation is None or reconciliation.empty:
        return "No reconciliation yet: run the `reconcile` build stage."
    model = reconciliation["model"].iloc[0] if "model" in reconciliation else "attribution"
    label = markdown_text(MODEL_LABELS.get(model, model))
    both = reconciliation[reconciliation["view"] == "both"]
    top_only = reconciliation[reconciliation["view"] == "top_down_only"]
    parts = []
    if len(both):
        att, inc = both["attributed_revenue"].sum(), both["incremental_revenue"].sum()
        ratio = inc / att if att > 0 else float("nan")
        parts.append(
            f"Across the {len(both)} channels seen both ways, {label} attribution credits "
            f"{_money(att)} of revenue to touches; the media mix model finds {_money(inc)} that "
            f"the spend actually added (calibration factor {ratio:.2f})."
        )
        if ratio < 1:
            parts.append(
                "Attribution gives channels credit for sales that would have happened anyway; "
                "use the model's incremental figures for budget decisions."
            )
        ranked = both.assign(gap=both["attributed_revenue"] / both["incremental_revenue"])
        ranked = ranked.replace([np.inf, -np.inf], np.nan).dropna(subset=["gap"])
        if len(ranked):
            over = ranked.sort_values("gap", ascending=False).iloc[0]
            under = ranked.sort_values("gap").iloc[0]
            parts.append(
                f"The largest over-credit is **{markdown_text(over['channel'])}** (attribution "
                f"{over['gap']:.1f}x its incremental revenue)"
                + (
                    f"; the least is **{markdown_text(under['channel'])}** ({under['gap']:.1f}x)."
                    if under["channel"] != over["channel"]
                    else "."
                )
            )
    if len(top_only):
        inc = top_only["incremental_revenue"].sum()
        share = inc / reconciliation["incremental_revenue"].sum()
        parts.append(
            f"{', '.join(markdown_text(c) for c in top_only['channel'])} "
            f"{'is' if len(top_only) == 1 else 'are'} seen only top-down: {_money(inc)} of "
            f"incremental revenue ({share:.0%} of all media contribution) that attribution "
            "cannot see."
        )
    if experiments is not None and len(experiments):
        for e in experiments.itertuples():
            verdict = "a significant" if e.p_value < 0.05 else "no significant"
            parts.append(
                f"Experiment {markdown_text(e.experiment_id)}: treatment converted {e.treatment_rate:.1%} vs "
                f"{e.control_rate:.1%} in control within {e.window_days} days, lift "
                f"{e.lift * 100:+.1f} pp (95% CI {e.lift_low * 100:+.1f} to "
                f"{e.lift_high * 100:+.1f} pp, p = {e.p_value:.3f}): {verdict} effect, about "
                f"{e.incremental_conversions:,.0f} extra conversions."
            )
    return " ".join(parts)
