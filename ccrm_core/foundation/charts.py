"""Shared plotly figure builders: data in, go.Figure out (no Streamlit)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ccrm_core.foundation.rendering import plotly_text

STATUS_COLOURS = {"ok": "#2da44e", "failed": "#cf222e", "skipped": "#8c959f"}


def build_timings(runs: pd.DataFrame) -> go.Figure:
    """Horizontal bars: seconds per stage of one build, coloured by status."""
    fig = go.Figure(
        go.Bar(
            x=runs["seconds"].fillna(0),
            y=runs["stage"].map(plotly_text),
            orientation="h",
            marker_color=[STATUS_COLOURS.get(s, "#8c959f") for s in runs["status"]],
            hovertemplate="%{y}: %{x:.2f} s<extra></extra>",
        )
    )
    fig.update_layout(
        height=max(160, 28 * len(runs) + 60),
        margin=dict(l=10, r=10, t=10, b=30),
        xaxis_title="seconds",
        yaxis=dict(autorange="reversed"),
    )
    return fig
