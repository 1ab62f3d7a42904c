"""Customer 360 figures (data in, go.Figure out): the timeline scatter and the gauges."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ccrm_core.foundation.rendering import plotly_text

_KIND_SYMBOLS = {"order": "diamond", "event": "circle"}


def chart_timeline(rows: pd.DataFrame) -> go.Figure:
    """Scatter of a customer's events (circles) and orders (diamonds, sized by revenue) in time,
    one row per channel; hover shows type, campaign and value."""
    fig = go.Figure()
    if rows.empty:
        fig.update_layout(height=200, margin=dict(l=10, r=10, t=10, b=30))
        return fig
    for event_type, part in rows.groupby("event_type", sort=True):
        is_order = event_type == "order"
        size = (
            (8 + 12 * (part["value"].fillna(0) / max(rows["value"].max() or 1, 1))).tolist()
            if is_order
            else 8
        )
        hover = part[["campaign_id", "value"]].assign(
            campaign_id=part["campaign_id"].map(plotly_text, na_action="ignore")
        )
        fig.add_trace(
            go.Scatter(
                x=part["ts"],
                y=part["channel"].map(plotly_text, na_action="ignore"),
                mode="markers",
                name=plotly_text(event_type),
                marker=dict(symbol="diamond" if is_order else "circle", size=size, opacity=0.75),
                customdata=hover.astype(object).fillna("").values,
                hovertemplate=(
                    "%{x|%Y-%m-%d %H:%M}<br>%{y} · %{fullData.name}<br>"
                    "campaign %{customdata[0]}<br>value %{customdata[1]}<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        height=max(220, 40 * rows["channel"].nunique() + 120),
        margin=dict(l=10, r=10, t=10, b=30),
        legend=dict(orientation="h", y=-0.25),
        yaxis=dict(categoryorder="category ascending"),
    )
    return fig


def chart_gauge(
    value: float | None,
    title: str,
    maximum: float = 1.0,
    bands: tuple[float, float] = (0.33, 0.66),
    good_high: bool = True,
    number_format: str = ".0%",
) -> go.Figure:
    """A gauge 0..maximum with three coloured bands (green/amber/red by direction of 'good')."""
    colours = ["#cf222e", "#d4a72c", "#2da44e"]
    if not good_high:
        colours = colours[::-1]
    lo, hi = bands[0] * maximum, bands[1] * maximum
    fig = go.Figure(
        go.Indicator(
            mode="gauge+number",
            value=value if value is not None else 0,
            number=dict(valueformat=number_format),
            title=dict(text=plotly_text(title if value is not None else f"{title} (not built)")),
            gauge=dict(
                axis=dict(
                    range=[0, maximum],
                    tickformat=number_format,
                    tickvals=[0, maximum / 2, maximum],
                ),
                bar=dict(color="#24292f"),
                steps=[
                    dict(range=[0, lo], color=colours[0]),
                    dict(range=[lo, hi], color=colours[1]),
                    dict(range=[hi, maximum], color=colours[2]),
                ],
            ),
        )
    )
    fig.update_layout(height=210, margin=dict(l=35, r=35, t=50, b=10))
    return fig
