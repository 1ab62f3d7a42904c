"""Hygiene charts for the Data Hygiene page: the table x field score heatmap and the score trend
per build (scores 0-100)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ccrm_core.foundation.rendering import plotly_text


def figure_field_heatmap(fields: pd.DataFrame) -> go.Figure:
    """Table x field heatmap of the mean check score (0-100; red low, green high)."""
    grid = fields.pivot(index="table_name", columns="column_name", values="score")
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[plotly_text(c) for c in grid.columns],
            y=[plotly_text(t) for t in grid.index],
            zmin=0,
            zmax=100,
            colorscale="RdYlGn",
            text=[[("" if pd.isna(v) else f"{v:.1f}") for v in row] for row in grid.to_numpy()],
            texttemplate="%{text}",
            hovertemplate="%{y}.%{x}: %{z:.1f}<extra></extra>",
            colorbar=dict(title="score"),
        )
    )
    fig.update_layout(
        height=160 + 45 * len(grid.index),
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(tickangle=-30, side="bottom"),
    )
    return fig


def figure_score_trend(trend: pd.DataFrame) -> go.Figure:
    """Score per build (x: run id) for the overall score and each dimension."""
    fig = go.Figure()
    for series, rows in trend.groupby("series", sort=False):
        fig.add_trace(
            go.Scatter(
                x=rows["run_id"],
                y=rows["score"],
                mode="lines+markers",
                name=plotly_text(series),
                line=dict(width=4 if series == "overall" else 1.5),
            )
        )
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=10, b=30),
        xaxis_title="build (run id)",
        yaxis_title="score (0-100)",
        xaxis=dict(tickmode="linear", dtick=1),
    )
    return fig
