"""Readers of the mmm marts (None before the `mmm` stage or when it ran on no spend) and the
page charts: contributions per period, ROI with intervals, actual vs fitted revenue per day.
Hovers go through the formatting layer: money in the configured currency with thousands
separators, dates without a time of day, channel names in words ('paid_search' -> 'Paid search').
"""

from __future__ import annotations

import duckdb
import pandas as pd
import plotly.graph_objects as go

from ccrm_core.foundation import formatting, provenance, store
from ccrm_core.foundation.rendering import plotly_text


def _label(value: object) -> str:
    """A channel or component name as a chart label: in words, escaped for Plotly."""
    return plotly_text(formatting.value_label(value))


def _days(dates) -> list[str]:
    return [formatting.date_text(pd.Timestamp(d)) for d in dates]


def _roi_hover(what: str) -> str:
    """Hover of an ROI bar whose customdata holds the interval's low and high ends."""
    return (
        "%{y}: %{x:,.2f} revenue per unit spend<br>90% interval "
        "%{customdata[0]:,.2f} to %{customdata[1]:,.2f}<extra>" + what + "</extra>"
    )


def _read(con: duckdb.DuckDBPyConnection, table: str, order: str = "") -> pd.DataFrame | None:
    if not store.table_exists(con, table):
        return None
    frame = con.execute(f"SELECT * FROM {store.quote_ident(table)} {order}").df()  # noqa: S608
    return frame if len(frame) else None  # an empty mart (no spend yet) reads as not built


def load_contributions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """mart_mmm_contributions (date, component, contribution); None before the mmm stage."""
    return _read(con, "mart_mmm_contributions", "ORDER BY date, component")


def load_fit(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    return _read(con, "mart_mmm_fit", "ORDER BY date")


def load_channels(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    return _read(con, "mart_mmm_channels", "ORDER BY contribution DESC")


def load_lift_tests_used(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """mart_mmm_lift_tests (every lift test with measured and modelled lift, used or not and
    why), or None before the mmm stage or without lift tests."""
    return _read(con, "mart_mmm_lift_tests", "ORDER BY test_id")


def calibration_table(channels: pd.DataFrame) -> pd.DataFrame:
    """Per channel: ROI from the data alone and calibrated by lift tests, each with its 90%
    interval, and how many lift tests the channel had (mart_mmm_channels columns)."""
    cols = ["channel", "roi_uncalibrated", "roi_uncalibrated_low", "roi_uncalibrated_high"]
    cols += ["roi", "roi_low", "roi_high", "lift_tests"]
    return channels[cols].sort_values("channel").reset_index(drop=True)


def chart_roi_calibration(channels: pd.DataFrame) -> go.Figure:
    """ROI per channel before (data alone) and after lift-test calibration, 90% intervals."""
    part = channels.sort_values("roi")
    fig = go.Figure()
    for label, col, colour in (
        ("before calibration", "roi_uncalibrated", "#aaaaaa"),
        ("after calibration", "roi", "#1f77b4"),
    ):
        fig.add_bar(
            x=part[col],
            y=part["channel"].map(_label),
            orientation="h",
            name=label,
            marker_color=colour,
            customdata=part[[f"{col}_low", f"{col}_high"]].to_numpy(),
            error_x=dict(
                type="data",
                symmetric=False,
                array=(part[f"{col}_high"] - part[col]).clip(lower=0),
                arrayminus=(part[col] - part[f"{col}_low"]).clip(lower=0),
            ),
            hovertemplate=_roi_hover(label),
        )
    fig.update_layout(
        barmode="group",
        height=max(260, 44 * len(part) + 80),
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis_title="ROI (revenue per unit spend)",
        legend=dict(orientation="h", y=-0.15),
    )
    return fig


def load_diagnostics(con: duckdb.DuckDBPyConnection) -> dict[str, float] | None:
    frame = _read(con, "mart_mmm_diagnostics")
    return None if frame is None else dict(zip(frame["metric"], frame["value"], strict=True))


def load_response_curves(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    return _read(con, "mart_response_curves", "ORDER BY channel")


def model_fit(con: duckdb.DuckDBPyConnection) -> provenance.ModelFit:
    """When the media mix model was fitted and the last day it read (the last day of
    mart_mmm_fit); the response curves and the budget simulator come from this fit."""
    data_end = None
    if store.table_exists(con, "mart_mmm_fit"):
        data_end = con.execute("SELECT max(date) FROM mart_mmm_fit").fetchall()[0][0]
    return provenance.model_fit(con, "mmm", data_end)


def chart_contributions(contributions: pd.DataFrame, freq: str = "W") -> go.Figure:
    """Stacked area: revenue per period by component (baseline at the bottom, then channels)."""
    from ccrm_core.conductor.attribution import CHANNEL_COLOURS

    frame = contributions.assign(date=pd.to_datetime(contributions["date"]))
    wide = (
        frame.pivot_table(index="date", columns="component", values="contribution", aggfunc="sum")
        .resample(freq)
        .sum()
    )
    fig = go.Figure()
    order = ["baseline"] + [c for c in wide.columns if c != "baseline"]
    period = "Week of " if freq == "W" else "Period "
    periods = _days(wide.index - pd.Timedelta(days=6) if freq == "W" else wide.index)
    for comp in order:
        if comp not in wide:
            continue
        name = _label(comp)
        fig.add_scatter(
            x=wide.index,
            y=wide[comp],
            name=name[:1].upper() + name[1:],
            stackgroup="one",
            mode="lines",
            line=dict(width=0.5, color=CHANNEL_COLOURS.get(comp)),
            customdata=periods,
            hovertemplate=period
            + "%{customdata}<br>%{fullData.name}: "
            + formatting.money_template("y", 0)
            + "<extra></extra>",
        )
    fig.update_layout(
        height=400,
        margin=dict(l=10, r=10, t=30, b=10),
        yaxis_title=f"revenue per {'week' if freq == 'W' else 'period'}",
        legend=dict(orientation="h", y=-0.15),
    )
    return fig


def chart_roi(channels: pd.DataFrame, measure: str = "roi") -> go.Figure:
    """ROI (or marginal ROI) per channel with its 90% bootstrap interval as error bars."""
    part = channels.sort_values(measure)
    fig = go.Figure(
        go.Bar(
            x=part[measure],
            y=part["channel"].map(_label),
            orientation="h",
            error_x=dict(
                type="data",
                symmetric=False,
                array=(part[f"{measure}_high"] - part[measure]).clip(lower=0),
                arrayminus=(part[measure] - part[f"{measure}_low"]).clip(lower=0),
            ),
            marker_color=["#1f77b4" if a else "#d62728" for a in part["addressable"]],
            customdata=part[[f"{measure}_low", f"{measure}_high"]].to_numpy(),
            hovertemplate=_roi_hover("ROI" if measure == "roi" else "Marginal ROI"),
        )
    )
    fig.add_vline(x=1.0, line_dash="dot", line_color="#888")
    fig.update_layout(
        height=max(240, 30 * len(part) + 60),
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis_title="ROI (revenue per unit spend)" if measure == "roi" else "marginal ROI",
    )
    return fig


def chart_fit(fit: pd.DataFrame) -> go.Figure:
    """Actual vs fitted daily revenue, and residuals on a second row."""
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.05
    )
    days = _days(fit["date"])

    def hover(what: str) -> str:
        return "%{customdata}<br>" + what + " " + formatting.money_template("y") + "<extra></extra>"

    fig.add_scatter(
        x=fit["date"],
        y=fit["actual"],
        name="actual",
        mode="lines",
        customdata=days,
        hovertemplate=hover("Actual revenue"),
        line=dict(color="#888", width=1),
        row=1,
        col=1,
    )
    fig.add_scatter(
        x=fit["date"],
        y=fit["fitted"],
        name="fitted",
        mode="lines",
        customdata=days,
        hovertemplate=hover("Fitted revenue"),
        line=dict(color="#1f77b4", width=1.5),
        row=1,
        col=1,
    )
    fig.add_scatter(
        x=fit["date"],
        y=fit["residual"],
        name="residual",
        mode="lines",
        customdata=days,
        hovertemplate=hover("Residual (actual - fitted)"),
        line=dict(color="#d62728", width=1),
        row=2,
        col=1,
    )
    fig.update_layout(
        height=420, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.12)
    )
    fig.update_yaxes(title_text="revenue/day", row=1, col=1)
    fig.update_yaxes(title_text="residual", row=2, col=1)
    return fig
