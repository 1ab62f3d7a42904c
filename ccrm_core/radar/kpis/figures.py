"""Figures of the command center (data in, go.Figure out): funnel, stage-to-stage rates,
cohort retention heatmap, journeys Sankey, distributions, the KPI forecast with its band and
the waterfalls of why a KPI changed. Hovers go through the formatting layer: money in the
configured currency, counts with thousands separators, shares as percentages, dates without a
time of day and code-like names (a channel 'paid_search') in words.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from ccrm_core.foundation import formatting
from ccrm_core.foundation.rendering import plotly_text
from ccrm_core.radar.kpis.drivers import DRIVER_KPIS, KpiDrivers
from ccrm_core.radar.kpis.queries import FUNNEL_STAGES
from ccrm_core.radar.kpis.tiles import format_value

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=320, template="plotly_white")
_ALERT_COLOUR = "#d62728"
_BAND_COLOUR = "rgba(31, 119, 180, 0.15)"


def _label(value: object) -> str:
    """A data value as a chart label: code-like names in words, escaped for Plotly."""
    return plotly_text(formatting.value_label(value))


def _value_template(field: str, unit: str, decimals: int | None = None) -> str:
    """Hover template of a KPI value of `unit` (see KpiTile.unit)."""
    if unit == "currency":
        return formatting.money_template(field, decimals)
    if unit == "ratio":
        return formatting.percent_template(field)
    return formatting.count_template(field, 1 if unit == "score" else (decimals or 0))


def figure_funnel(funnel: pd.DataFrame, segment: str | None = None) -> go.Figure:
    """Funnel for one row of `funnel_by_segment` (the first row when `segment` is None or has
    no row, e.g. a segment of today that nobody was in at the period start), each stage
    labelled with its count and its rate from the stage before."""
    fig = go.Figure()
    if funnel is None or funnel.empty:
        return fig.update_layout(title="Funnel: no data", **_LAYOUT)
    rows = funnel[funnel["segment"] == segment] if segment is not None else funnel.iloc[:0]
    row = rows.iloc[0] if not rows.empty else funnel.iloc[0]
    counts = [int(row[s]) for s in FUNNEL_STAGES]
    text = [f"{counts[0]:,}"] + [
        f"{c:,} ({c / p:.0%})" if p else f"{c:,}" for p, c in zip(counts, counts[1:], strict=False)
    ]
    fig.add_trace(
        go.Funnel(
            y=[s.capitalize() for s in FUNNEL_STAGES],
            x=counts,
            text=text,
            textinfo="text",
            marker=dict(color="#1f77b4"),
            hovertemplate="%{y}: %{x:,} customers, %{percentPrevious:.0%} of the stage before"
            "<extra></extra>",
        )
    )
    title = f"Funnel: {plotly_text(row['segment'])} (% of the stage before)"
    return fig.update_layout(title=title, **_LAYOUT)


def figure_funnel_rates(funnel: pd.DataFrame) -> go.Figure:
    """Heatmap of stage-to-stage conversion rates, one row per segment."""
    fig = go.Figure()
    if funnel is None or funnel.empty:
        return fig.update_layout(title="Stage-to-stage rates: no data", **_LAYOUT)
    stages = FUNNEL_STAGES[1:]
    z = funnel[[f"rate_{s}" for s in stages]].to_numpy(dtype=float)
    labels = [
        f"{plotly_text(s)} ({int(n):,})"
        for s, n in zip(funnel["segment"], funnel["reached"], strict=True)
    ]
    fig.add_trace(
        go.Heatmap(
            z=z,
            x=[f"{a} → {b}" for a, b in zip(FUNNEL_STAGES, stages, strict=False)],
            y=labels,
            text=[[("–" if not math.isfinite(v) else f"{v:.0%}") for v in r] for r in z],
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            showscale=False,
            hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    return fig.update_layout(
        title="Stage-to-stage rates by segment (reached in brackets)", **_LAYOUT
    )


def figure_cohort_heatmap(cohorts: pd.DataFrame) -> go.Figure:
    """Cohort retention heatmap: acquisition month (rows, newest at the bottom) x months since
    first purchase (columns, from 1), cell = share of the cohort that ordered that month."""
    fig = go.Figure()
    if cohorts is None or cohorts.empty:
        return fig.update_layout(title="Cohort retention: no data", **_LAYOUT)
    c = cohorts[cohorts["months_since"] >= 1]
    grid = c.pivot(index="cohort_month", columns="months_since", values="retention")
    sizes = cohorts[cohorts["months_since"] == 0].set_index("cohort_month")["cohort_customers"]
    grid = grid.reindex(sizes.index)
    ylabels = [f"{pd.Timestamp(m):%Y-%m} ({int(n):,})" for m, n in sizes.items()]
    z = grid.to_numpy(dtype=float)
    fig.add_trace(
        go.Heatmap(
            z=z,
            x=[int(x) for x in grid.columns],
            y=ylabels,
            text=[["" if not math.isfinite(v) else f"{v:.0%}" for v in r] for r in z],
            texttemplate="%{text}",
            textfont=dict(size=9),
            colorscale="Blues",
            zmin=0,
            showscale=False,
            hovertemplate="cohort %{y}<br>month %{x}: %{z:.1%} ordered<extra></extra>",
        )
    )
    fig.update_xaxes(title="months since first purchase", dtick=1)
    fig.update_yaxes(autorange="reversed", title=None)
    layout = {**_LAYOUT, "height": max(320, 18 * len(ylabels) + 90)}
    return fig.update_layout(title="Monthly cohort retention (cohort size)", **layout)


def figure_journey_sankey(paths: pd.DataFrame) -> go.Figure:
    """Sankey of the most common paths to a first purchase, aligned on the purchase (rightmost
    column); columns are steps before the purchase, link width = customers."""
    fig = go.Figure()
    if paths is None or paths.empty:
        return fig.update_layout(title="Journeys: no data", **_LAYOUT)
    steps = max(1, max(len(p) for p in paths["path"]))
    nodes: dict[tuple[int, str], int] = {}

    def node(pos: int, label: str) -> int:
        return nodes.setdefault((pos, label), len(nodes))

    links: dict[tuple[int, int], float] = {}
    for path, n in zip(paths["path"], paths["conversions"], strict=True):
        chain = list(path) or ["(no tracked touch)"]
        ids = [node(len(chain) - i, ch) for i, ch in enumerate(chain)] + [node(0, "Purchase")]
        for a, b in zip(ids, ids[1:], strict=False):
            links[(a, b)] = links.get((a, b), 0.0) + float(n)
    labels = [k[1] if k[1] in ("Purchase", "(no tracked touch)") else _label(k[1]) for k in nodes]
    xs = [0.01 + 0.98 * (steps - k[0]) / steps for k in nodes]
    ys = [0.0] * len(nodes)
    for pos in {k[0] for k in nodes}:
        members = [i for k, i in nodes.items() if k[0] == pos]
        for j, i in enumerate(members):
            ys[i] = 0.05 + 0.9 * (j + 0.5) / len(members)
    fig.add_trace(
        go.Sankey(
            arrangement="snap",
            node=dict(
                label=labels,
                x=xs,
                y=ys,
                pad=12,
                thickness=14,
                hovertemplate="%{label}: "
                + formatting.count_template("value")
                + " customers<extra></extra>",
            ),
            link=dict(
                source=[a for a, _ in links],
                target=[b for _, b in links],
                value=list(links.values()),
                hovertemplate="%{source.label} → %{target.label}: "
                + formatting.count_template("value")
                + " customers<extra></extra>",
            ),
        )
    )
    title = f"Top {len(paths)} paths to a first purchase (customers with a tracked touch)"
    return fig.update_layout(title=title, **_LAYOUT)


def figure_distribution(
    frame: pd.DataFrame, x: str, y: str, title: str, x_title: str, y_title: str = "customers"
) -> go.Figure:
    """Bar chart of a distribution (path lengths, days to convert); `y_title` names what the
    bars count."""
    fig = go.Figure()
    if frame is None or frame.empty:
        return fig.update_layout(title=plotly_text(f"{title}: no data"), **_LAYOUT)
    fig.add_trace(
        go.Bar(
            x=frame[x],
            y=frame[y],
            marker_color="#1f77b4",
            hovertemplate=plotly_text(f"{x_title}: ")
            + "%{x}<br>"
            + formatting.count_template("y")
            + plotly_text(f" {y_title}")
            + "<extra></extra>",
        )
    )
    fig.update_xaxes(title=plotly_text(x_title))
    fig.update_yaxes(title=plotly_text(y_title))
    return fig.update_layout(title=plotly_text(title), bargap=0.1, **_LAYOUT)


# Why a point is an alert (`fit_forecast`'s reason; 'moved with orders' from
# `alerts.revenue_with_orders`): legend label and marker.
ALERT_REASONS = {
    "outside band": ("alert: outside the band", "circle"),
    "sustained move": ("alert: a run of days that moved together", "diamond"),
    "moved with orders": ("alert: revenue moved with an orders alert", "square"),
}


def figure_forecast(
    forecast: pd.DataFrame,
    title: str,
    show_days: int | None = None,
    focus: tuple | None = None,
    focus_range: tuple | None = None,
    unit: str = "count",
) -> go.Figure:
    """Actual series, forecast, alert band, alerts (red, one legend entry per reason that
    occurs in the series) and the forecast horizon. A point outside the band is an alert by
    itself; the other alerts lie inside it and their legend entry says why (see `fit_forecast`).
    `show_days` zooms the x axis on the last days of history (plus the horizon); `focus`
    (first, last day) shades one alert's days and `focus_range` (first, last day) zooms on it
    instead. The whole series stays one double-click away. `unit` (a KpiTile unit: 'currency',
    'count') formats the hovers."""
    fig = go.Figure()
    if forecast is None or forecast.empty:
        return fig.update_layout(title=plotly_text(f"{title}: no data"), **_LAYOUT)
    f = forecast
    days = [formatting.date_text(pd.Timestamp(d)) for d in f["date"]]

    def value(field: str, decimals: int | None = None) -> str:
        return _value_template(field, unit, decimals)

    fig.add_trace(
        go.Scatter(
            x=f["date"], y=f["upper"], line=dict(width=0), hoverinfo="skip", showlegend=False
        )
    )
    fig.add_trace(
        go.Scatter(
            x=f["date"],
            y=f["lower"],
            line=dict(width=0),
            fill="tonexty",
            fillcolor=_BAND_COLOUR,
            name="alert band (a day outside it is an alert)",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=f["date"],
            y=f["expected"],
            line=dict(color="#1f77b4", dash="dot", width=1),
            name="forecast",
            customdata=list(zip(days, f["lower"], f["upper"], strict=True)),
            hovertemplate="%{customdata[0]}<br>Forecast "
            + value("y", 1 if unit == "count" else None)
            + "<br>Alert band "
            + value("customdata[1]", 1 if unit == "count" else None)
            + " to "
            + value("customdata[2]", 1 if unit == "count" else None)
            + "<extra></extra>",
        )
    )
    hist = f[~f["is_forecast"]]
    hist_days = [formatting.date_text(pd.Timestamp(d)) for d in hist["date"]]
    actual_hover = "%{customdata}<br>Actual " + value("y") + "<extra></extra>"
    fig.add_trace(
        go.Scatter(
            x=hist["date"],
            y=hist["actual"],
            line=dict(color="#333333", width=1),
            name="actual",
            customdata=hist_days,
            hovertemplate=actual_hover,
        )
    )
    alerts = hist[hist["is_alert"]]
    reasons = (
        alerts["reason"].fillna("outside band")
        if "reason" in alerts
        else pd.Series("outside band", index=alerts.index)
    )
    for reason, (label, symbol) in ALERT_REASONS.items():
        points = alerts[reasons == reason]
        if points.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=points["date"],
                y=points["actual"],
                mode="markers",
                marker=dict(color=_ALERT_COLOUR, size=8, symbol=symbol),
                name=label,
                customdata=[formatting.date_text(pd.Timestamp(d)) for d in points["date"]],
                hovertemplate="%{customdata}<br>"
                + plotly_text(label[:1].upper() + label[1:])
                + "<br>Actual "
                + value("y")
                + "<extra></extra>",
            )
        )
    if f["is_forecast"].any():
        fig.add_vrect(
            x0=f.loc[f["is_forecast"], "date"].min(),
            x1=f["date"].max(),
            fillcolor="rgba(0,0,0,0.04)",
            line_width=0,
        )
    if focus is not None:
        fig.add_vrect(
            x0=pd.Timestamp(focus[0]) - pd.Timedelta(hours=12),
            x1=pd.Timestamp(focus[1]) + pd.Timedelta(hours=12),
            fillcolor="rgba(214, 39, 40, 0.12)",
            line_width=0,
        )
    if focus_range is not None:
        fig.update_xaxes(range=[pd.Timestamp(focus_range[0]), pd.Timestamp(focus_range[1])])
    elif show_days and not hist.empty:
        last = pd.Timestamp(hist["date"].max())
        fig.update_xaxes(range=[last - pd.Timedelta(days=show_days), pd.Timestamp(f["date"].max())])
    fig.update_layout(title=plotly_text(title), legend=dict(orientation="h", y=-0.15), **_LAYOUT)
    return fig


# ---------------------------------------------------------------------------------------------
# Why a KPI changed: waterfalls whose bars start at zero, so a change is never drawn larger
# than it is against the level it changed from.


def _waterfall(
    start: tuple[str, float], steps: list[tuple[str, float]], end: tuple[str, float], unit: str
) -> go.Figure:
    labels = [start[0], *(s[0] for s in steps), end[0]]
    values = [start[1], *(s[1] for s in steps), end[1]]
    fig = go.Figure(
        go.Waterfall(
            x=labels,
            y=values,
            measure=["absolute", *["relative"] * len(steps), "total"],
            text=[  # steps signed, levels as they are
                ("+" if v >= 0 and 0 < i < len(values) - 1 else "") + format_value(v, unit)
                for i, v in enumerate(values)
            ],
            textposition="outside",
            connector=dict(line=dict(color="#999999", width=1)),
            increasing=dict(marker=dict(color="#2ca02c")),
            decreasing=dict(marker=dict(color=_ALERT_COLOUR)),
            totals=dict(marker=dict(color="#1f77b4")),
            hovertemplate="%{x}: %{text}<extra></extra>",
        )
    )
    fig.update_yaxes(rangemode="tozero")
    return fig


def figure_revenue_bridge(drivers: KpiDrivers | None) -> go.Figure:
    """Revenue in the comparison period, the orders effect, the order-value effect and revenue
    in the period (see `drivers.revenue_bridge`)."""
    effects = drivers.effects if drivers is not None else None
    if effects is None:
        return go.Figure().update_layout(title="Revenue bridge: no comparison", **_LAYOUT)
    fig = _waterfall(
        ("Before", drivers.before),
        [("Orders effect", effects[0]), ("Order-value effect", effects[1])],
        ("Now", drivers.now),
        "currency",
    )
    return fig.update_layout(
        title=f"Revenue: {drivers.comparison.label} to this period", showlegend=False, **_LAYOUT
    )


def figure_driver_contributions(
    drivers: KpiDrivers | None, group_label: str, top: int = 8
) -> go.Figure:
    """Each group's contribution to the change (largest first, the rest as one 'other' step)
    from the comparison period to the period; without a comparison, the period's value by
    group (bars from zero)."""
    if drivers is None or drivers.groups.empty:
        return go.Figure().update_layout(title="Breakdown: no data", **_LAYOUT)
    label, unit = DRIVER_KPIS[drivers.kpi]
    g = drivers.groups
    if drivers.before is None:
        fig = go.Figure(
            go.Bar(
                x=[_label(x) for x in g["group"]],
                y=g["now"],
                text=[format_value(v, unit) for v in g["now"]],
                marker_color="#1f77b4",
                hovertemplate="%{x}: %{text}<extra></extra>",
            )
        )
        fig.update_yaxes(rangemode="tozero")
        title = f"{label} by {group_label.lower()} (no comparison)"
        return fig.update_layout(title=plotly_text(title), **_LAYOUT)
    steps = [(_label(x), float(c)) for x, c in zip(g["group"], g["change"], strict=True)]
    if len(steps) > top:
        rest = sum(c for _, c in steps[top - 1 :])
        steps = [*steps[: top - 1], (f"{len(steps) - top + 1} others", rest)]
    fig = _waterfall(("Before", drivers.before), steps, ("Now", drivers.now), unit)
    title = f"{label}: contribution to the change by {group_label.lower()}"
    return fig.update_layout(title=plotly_text(title), showlegend=False, **_LAYOUT)
