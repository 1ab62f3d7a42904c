"""Identity charts for the Data Hygiene page (plotly figures from the `results` frames)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ccrm_core.foundation.rendering import plotly_text


def figure_match_waterfall(steps: pd.DataFrame) -> go.Figure:
    """Waterfall of match weights: prior, each comparison, and the total (bits of evidence)."""
    total = float(steps["match_weight"].sum())
    probability = 2**total / (1 + 2**total)
    fig = go.Figure(
        go.Waterfall(
            x=[*steps["step"].map(plotly_text), "match weight"],
            y=[*steps["match_weight"], total],
            measure=[*(["relative"] * len(steps)), "total"],
            text=[*(f"{w:+.1f}" for w in steps["match_weight"]), f"{total:.1f}"],
            hovertext=[
                *steps["level"].fillna("").map(plotly_text),
                f"match probability {probability:.4f}",
            ],
            hovertemplate="%{x}: %{y:+.2f}<br>%{hovertext}<extra></extra>",
            increasing=dict(marker_color="#2da44e"),
            decreasing=dict(marker_color="#cf222e"),
            totals=dict(marker_color="#0969da"),
        )
    )
    fig.update_layout(
        height=340,
        margin=dict(l=10, r=10, t=30, b=30),
        yaxis_title="match weight (log2 Bayes factor)",
        title=f"match probability {probability:.4f}",
    )
    return fig


def figure_threshold_curve(curve: pd.DataFrame, threshold: float) -> go.Figure:
    """Customers as a function of the match threshold, with the chosen threshold marked."""
    shown = curve[curve["threshold"] <= 1.0]
    fig = go.Figure(
        go.Scatter(
            x=shown["threshold"],
            y=shown["customers"],
            mode="lines",
            line_shape="hv",
            hovertemplate="threshold %{x:.3f}: %{y:,} customers<extra></extra>",
        )
    )
    fig.add_vline(x=threshold, line_dash="dash", line_color="#cf222e")
    fig.update_layout(
        height=260,
        margin=dict(l=10, r=10, t=10, b=30),
        xaxis_title="match threshold (probability)",
        yaxis_title="customers",
    )
    return fig


def figure_cluster_sizes(cluster_sizes: pd.DataFrame) -> go.Figure:
    """Bar chart: customers by number of source records."""
    fig = go.Figure(
        go.Bar(
            x=cluster_sizes["records_per_customer"].astype(str),
            y=cluster_sizes["customers"],
            hovertemplate="%{x} records: %{y:,} customers<extra></extra>",
        )
    )
    fig.update_layout(
        height=260,
        margin=dict(l=10, r=10, t=10, b=30),
        xaxis_title="source records per customer",
        yaxis_title="customers",
    )
    return fig
