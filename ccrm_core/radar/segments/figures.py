"""Segment Explorer figures (data in, go.Figure out): treemap, scatter, overlap and mix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ccrm_core.foundation import formatting
from ccrm_core.foundation.rendering import plotly_text


def figure_treemap(profile: pd.DataFrame, scheme_label: str = "All customers") -> go.Figure:
    """Treemap: area = customers per segment, colour = average lifetime value. The scheme is
    the root node (without one, Plotly draws an unnamed root as "-----" in the path bar)."""
    n = len(profile)
    clv = profile["avg_clv"].fillna(0).to_numpy(dtype=float)
    symbol = plotly_text(formatting.currency().symbol)
    fig = go.Figure(
        go.Treemap(
            ids=["root", *[f"segment-{i}" for i in range(n)]],
            labels=[plotly_text(scheme_label), *profile["segment"].map(plotly_text)],
            parents=["", *["root"] * n],
            values=[0, *profile["customers"]],
            marker=dict(
                colors=[float(clv.mean()) if n else 0.0, *clv],
                colorscale="Blues",
                showscale=True,
                colorbar=dict(title="Average CLV"),
            ),
            customdata=np.vstack(
                [
                    [[profile["revenue"].sum(), float(clv.mean()) if n else 0.0, 1.0]],
                    np.stack([profile["revenue"], clv, profile["share"]], axis=-1).reshape(n, 3),
                ]
            ),
            hovertemplate="<b>%{label}</b><br>%{value:,} customers (%{customdata[2]:.1%})"
            f"<br>Revenue {symbol}%{{customdata[0]:,.0f}}<br>Average CLV "
            f"{symbol}%{{customdata[1]:,.2f}}<extra></extra>",
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
                name=plotly_text(segment),
                marker=dict(size=5, opacity=0.6),
                text=part["customer_id"].map(plotly_text),
                hovertemplate=f"%{{text}}<br>%{{x}} repeats, {formatting.money_template('y')} "
                "per repeat<extra></extra>",
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
            x=[plotly_text(b) for b in pivot.columns],
            y=[plotly_text(a) for a in pivot.index],
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
        xaxis_title=plotly_text(label_b),
        yaxis_title=plotly_text(label_a),
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
            x=[plotly_text(item) for item in pivot.columns],
            y=[plotly_text(s) for s in pivot.index],
            colorscale="RdBu",
            # an index cannot be negative: 0 (none) .. 100 (like the base) .. 200 and above
            zmin=0,
            zmax=200,
            zmid=100,
            customdata=share.to_numpy(),
            text=[[f"{v:.0f}" if v == v else "" for v in row] for row in pivot.to_numpy()],
            texttemplate="%{text}",
            hovertemplate="%{y}, %{x}: share %{customdata:.1%}, index %{z:.0f}<extra></extra>",
            colorbar=dict(title="Index (100 = like all customers)"),
        )
    )
    fig.update_layout(height=max(280, 40 * len(pivot) + 120), margin=dict(l=10, r=10, t=10, b=10))
    return fig
