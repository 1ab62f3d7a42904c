"""Attribution charts (data in, figure out): model comparison, removal effects, transition
heatmap, attribution against the media mix model and its split by segment. Revenue is in
currency units."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ccrm_core.conductor.attribution.models import MODEL_LABELS, model_names
from ccrm_core.conductor.attribution.segment_split import (
    channel_column,
    segment_split_table,
    split_orders,
)
from ccrm_core.foundation import formatting
from ccrm_core.foundation.rendering import plotly_text

CHANNEL_COLOURS = {
    "email": "#1f77b4",
    "direct_mail": "#8c564b",
    "sms": "#2ca02c",
    "push": "#17becf",
    "paid_search": "#ff7f0e",
    "display": "#9467bd",
    "social": "#e377c2",
    "call_center": "#7f7f7f",
    "tv": "#d62728",
    "print": "#bcbd22",
    "baseline": "#c7c7c7",
}


def chart_model_comparison(
    attribution: pd.DataFrame, models: Sequence[str] | None = None, measure: str = "conversions"
) -> go.Figure:
    """Grouped bars: attributed conversions (or value) per channel, one bar group per model."""
    models = list(models or model_names())
    fig = go.Figure()
    for model in models:
        part = attribution[attribution["model"] == model]
        fig.add_bar(
            x=part["channel"].map(plotly_text),
            y=part[measure],
            name=plotly_text(MODEL_LABELS.get(model, model)),
        )
    fig.update_layout(
        barmode="group",
        height=380,
        margin=dict(l=10, r=10, t=30, b=10),
        yaxis_title="attributed conversions" if measure == "conversions" else "attributed revenue",
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def chart_removal_effects(attribution: pd.DataFrame, model: str = "markov_1") -> go.Figure:
    """Horizontal bars: removal effect per channel (share of conversions lost without it)."""
    part = attribution[attribution["model"] == model].sort_values("removal_effect")
    fig = go.Figure(
        go.Bar(
            x=part["removal_effect"],
            y=part["channel"].map(plotly_text),
            orientation="h",
            marker_color=[CHANNEL_COLOURS.get(c, "#636efa") for c in part["channel"]],
            hovertemplate="%{y}: %{x:.1%} of conversions lost<extra></extra>",
        )
    )
    fig.update_layout(
        height=max(220, 30 * len(part) + 60),
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis=dict(title="removal effect", tickformat=".0%"),
    )
    return fig


def chart_transition_heatmap(transitions: pd.DataFrame) -> go.Figure:
    """Heatmap of first-order transition probabilities (rows: from, columns: to)."""
    if transitions.empty:
        return go.Figure()
    grid = transitions.pivot_table(
        index="from_state", columns="to_state", values="probability", aggfunc="sum", fill_value=0
    )
    channels = sorted(
        s for s in set(grid.index) | set(grid.columns) if s not in ("start", "conversion", "null")
    )
    rows = ["start", *[c for c in channels if c in grid.index]]
    cols = [*[c for c in channels if c in grid.columns], "conversion", "null"]
    grid = grid.reindex(index=rows, columns=cols, fill_value=0)
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[plotly_text(c) for c in cols],
            y=[plotly_text(r) for r in rows],
            colorscale="Blues",
            zmin=0,
            zmax=1,
            text=np.round(grid.to_numpy(), 2),
            texttemplate="%{text}",
            hovertemplate="%{y} → %{x}: %{z:.1%}<extra></extra>",
        )
    )
    fig.update_layout(
        height=420,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis_title="to",
        yaxis=dict(title="from", autorange="reversed"),
    )
    return fig


def chart_reconciliation(reconciliation: pd.DataFrame) -> go.Figure:
    """Grouped bars per channel: attributed revenue (bottom-up) vs incremental revenue
    (top-down, with its 90% interval)."""
    r = reconciliation.sort_values("incremental_revenue", ascending=False)
    fig = go.Figure()
    fig.add_bar(
        x=r["channel"].map(lambda c: plotly_text(formatting.value_label(c))),
        y=r["attributed_revenue"],
        name="attributed (bottom-up)",
        marker_color="#ff7f0e",
    )
    fig.add_bar(
        x=r["channel"].map(lambda c: plotly_text(formatting.value_label(c))),
        y=r["incremental_revenue"],
        name="incremental (media mix model)",
        marker_color="#1f77b4",
        error_y=dict(
            type="data",
            symmetric=False,
            array=(r["incremental_revenue_high"] - r["incremental_revenue"]).clip(lower=0),
            arrayminus=(r["incremental_revenue"] - r["incremental_revenue_low"]).clip(lower=0),
        ),
    )
    fig.update_layout(
        barmode="group",
        height=380,
        margin=dict(l=10, r=10, t=30, b=10),
        yaxis_title="revenue over the period",
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def chart_segment_split(split: pd.DataFrame) -> go.Figure:
    """Heatmap of the media mix model's incremental revenue split by segment (rows, largest
    first) and channel (columns, largest first; '*' = split by overall share), from
    `segment_split` rows of one scheme. Cells show money; hover adds the segment's share of the
    channel and its attributed revenue."""
    if split is None or split.empty:
        return go.Figure()
    segments, channels = split_orders(split)
    by_cell = split.set_index(["segment", "channel"])
    table = segment_split_table(split).set_index("Segment")
    z = table[[channel_column(split, c) for c in channels]].to_numpy(dtype=float)
    share = np.array(
        [[by_cell.loc[(s, c), "segment_share"] for c in channels] for s in segments], dtype=float
    )
    attributed = np.array(
        [[by_cell.loc[(s, c), "attributed_revenue"] for c in channels] for s in segments],
        dtype=float,
    )
    cell_text = [[formatting.money(v, compact=True, whole=True) for v in row] for row in z]
    hover = np.dstack(
        [
            [[formatting.money(v, whole=True) for v in row] for row in z],
            [[formatting.percent(v) for v in row] for row in share],
            [[formatting.money(v, whole=True) for v in row] for row in attributed],
        ]
    )
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[plotly_text(channel_column(split, c)) for c in channels],
            y=[plotly_text(s) for s in segments],
            colorscale="Blues",
            zmin=0,
            text=cell_text,
            texttemplate="%{text}",
            customdata=hover,
            hovertemplate="%{y} · %{x}<br>incremental revenue %{customdata[0]} "
            "(%{customdata[1]} of the channel)<br>attributed revenue %{customdata[2]}"
            "<extra></extra>",
            colorbar=dict(title="incremental<br>revenue"),
        )
    )
    fig.update_layout(
        height=max(260, 34 * len(segments) + 120),
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis_title="channel",
        yaxis=dict(title="segment", autorange="reversed"),
    )
    return fig
