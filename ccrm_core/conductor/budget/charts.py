"""Figures of the budget simulator (data in, go.Figure out) and the spend sliders' range.

Money on every axis is per WEEK (currency units): weekly spend against weekly incremental
revenue, steady state unless the figure is a forecast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ccrm_core.conductor.budget.curves import DAYS_PER_WEEK, _Params, _params, _select, _steady
from ccrm_core.conductor.budget.whatif import plan_vector
from ccrm_core.foundation.formatting import money_template
from ccrm_core.foundation.rendering import plotly_text

CURRENT_COLOUR = "#8c959f"
PROPOSED_COLOUR = "#0969da"
UP_COLOUR, DOWN_COLOUR = "#2da44e", "#cf222e"
# one colour per plan, in order (current, proposed, then saved scenarios)
PLAN_COLOURS = (CURRENT_COLOUR, PROPOSED_COLOUR, "#bf8700", "#8250df", "#1a7f37", "#cf222e")


def figure_response_curves(
    curves: pd.DataFrame,
    current: Mapping[str, float],
    proposed: Mapping[str, float],
    columns: int = 4,
) -> go.Figure:
    """One panel per channel: steady-state weekly revenue against weekly spend (with the 90%
    band), the current and proposed points, and the marginal ROI at both in the panel title."""
    p = _params(curves)
    cur, new = plan_vector(p, current), plan_vector(p, proposed)
    _, dcur = _steady(p, cur)
    _, dnew = _steady(p, new)
    titles = [
        f"{plotly_text(ch)}<br><sup>mROI {p.beta[i] * dcur[i]:.2f} → {p.beta[i] * dnew[i]:.2f}</sup>"
        for i, ch in enumerate(p.channel)
    ]
    layout, rows = _panel_grid(titles, columns)
    traces: list[dict] = []
    for i in range(len(p.channel)):
        traces += _channel_panel_traces(p, i, (cur, dcur), (new, dnew))
    layout |= _response_curves_frame(rows)
    return go.Figure({"data": traces, "layout": layout})


def _panel_grid(titles: list[str], columns: int) -> tuple[dict, int]:
    """Layout of one titled panel per channel, `columns` to a row: (layout dict, rows).

    The grid is laid out by hand (plain dicts, one Figure call): make_subplots plus add_trace
    and update_annotations made this figure most of a page refresh's time."""
    n = len(titles)
    rows = max(1, math.ceil(n / columns))
    hgap, vgap = 0.2 / columns, 0.3 / rows
    width, height = (1 - (columns - 1) * hgap) / columns, (1 - (rows - 1) * vgap) / rows
    layout: dict = {"annotations": []}
    for i in range(n):
        r, c = divmod(i, columns)
        x0, y1 = c * (width + hgap), 1 - r * (height + vgap)
        suffix = str(i + 1) if i else ""
        # domains must lie in [0, 1]; the last row and column can miss by a rounding error
        layout[f"xaxis{suffix}"] = {
            "domain": [max(x0, 0.0), min(x0 + width, 1.0)],
            "anchor": f"y{suffix}",
        }
        layout[f"yaxis{suffix}"] = {
            "domain": [max(y1 - height, 0.0), min(y1, 1.0)],
            "anchor": f"x{suffix}",
        }
        layout["annotations"].append(
            {
                "text": titles[i],
                "x": x0 + width / 2,
                "y": y1,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 14},
            }
        )
    return layout, rows


def _channel_panel_traces(
    p: _Params,
    i: int,
    current: tuple[np.ndarray, np.ndarray],
    proposed: tuple[np.ndarray, np.ndarray],
) -> list[dict]:
    """Channel i's panel: the 90% band, the response curve and the current and proposed points.

    `current` and `proposed` are (weekly spend, derivative factor dg) for every channel; the
    legend entries come from the first panel only."""
    (cur, dcur), (new, dnew) = current, proposed
    axes = {"xaxis": f"x{i + 1 if i else ''}", "yaxis": f"y{i + 1 if i else ''}"}
    # wide enough to show the saturation even for a channel with little or no spend
    half_weekly = DAYS_PER_WEEK * p.K[i] * (1.0 - p.theta[i])
    top = max(2.0 * max(cur[i], new[i], p.current[i]), 3.0 * half_weekly, 1.0)
    xs = np.linspace(0.0, top, 80)
    one = _select(p, [i])
    g, _ = _steady(one, xs)
    show = i == 0
    traces = [
        axes
        | {
            "type": "scatter",
            "x": np.concatenate([xs, xs[::-1]]),
            "y": np.concatenate([p.beta_high[i] * g, (p.beta_low[i] * g)[::-1]]),
            "fill": "toself",
            "fillcolor": "rgba(9,105,218,0.12)",
            "line": {"width": 0},
            "hoverinfo": "skip",
            "name": "90% interval",
            "legendgroup": "band",
            "showlegend": show,
        },
        axes
        | {
            "type": "scatter",
            "x": xs,
            "y": p.beta[i] * g,
            "line": {"color": PROPOSED_COLOUR, "width": 2},
            "name": "response",
            "legendgroup": "curve",
            "showlegend": show,
            "hovertemplate": f"Spend {money_template('x', 0)}/wk<br>Revenue "
            f"{money_template('y', 0)}/wk<extra></extra>",
        },
    ]
    for label, vec, deriv, colour, symbol in (
        ("current", cur, dcur, CURRENT_COLOUR, "circle"),
        ("proposed", new, dnew, PROPOSED_COLOUR, "diamond"),
    ):
        g_pt, _ = _steady(one, np.array([vec[i]]))
        traces.append(
            axes
            | {
                "type": "scatter",
                "x": [vec[i]],
                "y": [p.beta[i] * g_pt[0]],
                "mode": "markers",
                "marker": {
                    "color": colour,
                    "size": 11,
                    "symbol": symbol,
                    "line": {"width": 1},
                },
                "name": label,
                "legendgroup": label,
                "showlegend": show,
                "customdata": [[p.beta[i] * deriv[i]]],
                "hovertemplate": label
                + ": spend %{x:,.0f}/wk<br>revenue %{y:,.0f}/wk<br>"
                + "marginal ROI %{customdata[0]:.2f}<extra></extra>",
            }
        )
    return traces


def _response_curves_frame(rows: int) -> dict:
    """Height, margins and legend of the response-curve grid with `rows` rows of panels."""
    top_margin, bottom_margin, fig_height = 90, 30, 260 * rows + 60
    plot_height = fig_height - top_margin - bottom_margin
    return {
        "height": fig_height,
        "margin": {"l": 10, "r": 10, "t": top_margin, "b": bottom_margin},
        # above the first row's two-line panel titles (about 40 px)
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1 + 45 / plot_height, "x": 0},
    }


def figure_waterfall(frame: pd.DataFrame, label: str = "revenue per week") -> go.Figure:
    """Waterfall from the current total to the proposed one, one step per channel (`waterfall`)."""
    start, end = frame["current"].sum(), frame["proposed"].sum()
    steps = frame[frame["change"].abs() > 1e-9 * max(abs(start), 1.0)]
    fig = go.Figure(
        go.Waterfall(
            x=["Current", *steps["channel"].map(plotly_text), "Proposed"],
            measure=["absolute", *["relative"] * len(steps), "total"],
            y=[start, *steps["change"], end],
            increasing=dict(marker_color=UP_COLOUR),
            decreasing=dict(marker_color=DOWN_COLOUR),
            totals=dict(marker_color=PROPOSED_COLOUR),
            connector=dict(line=dict(color="#d0d7de")),
            hovertemplate="%{x}: %{y:,.0f}<extra></extra>",
        )
    )
    # the axis starts at zero: a cut axis draws a +21% change as four times the bar
    low = min(0.0, start, end, (start + steps["change"].cumsum()).min() if len(steps) else start)
    high = max(0.0, start, end, (start + steps["change"].cumsum()).max() if len(steps) else start)
    pad = max((high - low) * 0.08, 1e-9)
    fig.update_layout(
        height=360,
        margin=dict(l=10, r=10, t=10, b=30),
        yaxis=dict(
            title=plotly_text(label),
            range=[low - pad if low < 0 else 0.0, high + pad],
        ),
        showlegend=False,
    )
    return fig


def figure_forecast(series: Mapping[str, pd.DataFrame]) -> go.Figure:
    """Weekly revenue of each plan's forecast (`forecast_totals` frames); the 90% band is drawn
    for the last plan only (overlapping bands hide the lines they surround)."""
    fig = go.Figure()
    for k, (label, frame) in enumerate(series.items()):
        colour = PLAN_COLOURS[k % len(PLAN_COLOURS)]
        x = frame["week_start"] if "week_start" in frame else frame["week"]
        if k == len(series) - 1:
            fig.add_trace(
                go.Scatter(
                    x=list(x) + list(x)[::-1],
                    y=list(frame["revenue_high"]) + list(frame["revenue_low"])[::-1],
                    fill="toself",
                    fillcolor=_rgba(colour, 0.12),
                    line=dict(width=0),
                    hoverinfo="skip",
                    name=plotly_text(f"{label}: 90% interval"),
                )
            )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=frame["revenue"],
                name=plotly_text(label),
                mode="lines+markers",
                line=dict(color=colour, width=2),
                hovertemplate=f"%{{fullData.name}}: {money_template('y', 0)}<extra></extra>",
            )
        )
    fig.update_layout(
        height=360,
        margin=dict(l=10, r=10, t=40, b=30),
        yaxis_title="incremental revenue per week",
        xaxis_title="week starting" if any("week_start" in f for f in series.values()) else "week",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        hovermode="x unified",
    )
    return fig


def figure_allocation(plans: Mapping[str, Mapping[str, float]]) -> go.Figure:
    """Grouped bars of weekly spend per channel, one bar group per channel, one colour per plan."""
    fig = go.Figure()
    for k, (label, plan) in enumerate(plans.items()):
        fig.add_trace(
            go.Bar(
                x=[plotly_text(ch) for ch in plan],
                y=list(plan.values()),
                name=plotly_text(label),
                marker_color=PLAN_COLOURS[k % len(PLAN_COLOURS)],
                hovertemplate=f"%{{fullData.name}} %{{x}}: {money_template('y', 0)}/wk<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        height=320,
        margin=dict(l=10, r=10, t=10, b=30),
        yaxis_title="spend per week",
        legend=dict(orientation="h", y=1.1, x=0),
    )
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def slider_ceiling(value: float) -> float:
    """A round upper end for a spend slider: the next 1, 2, 2.5 or 5 x 10^k at or above value."""
    if not value > 0:
        return 100.0
    exp = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * exp >= value * (1 - 1e-12):
            return m * exp
    return 10.0 * exp
