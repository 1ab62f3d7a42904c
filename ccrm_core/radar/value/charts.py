"""Readers and figures for the page: the stored fits and holdout check (written by the `value`
stage) and the predicted vs actual holdout chart (mean purchases per customer)."""

from __future__ import annotations

import duckdb
import pandas as pd
import plotly.graph_objects as go

from ccrm_core.foundation import store
from ccrm_core.radar.value.stage import HOLDOUT_COLUMNS


def model_parameters(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The stored fits: model, fitted_on, parameter, value, std_error (empty before a build)."""
    if not store.table_exists(con, "value_model"):
        return pd.DataFrame(columns=["model", "fitted_on", "parameter", "value", "std_error"])
    return con.execute(
        "SELECT model, fitted_on, parameter, value, std_error FROM value_model "
        "ORDER BY model, fitted_on, parameter"
    ).df()


def holdout_table(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The stored holdout check per calibration frequency bucket (empty before a build)."""
    if not store.table_exists(con, "value_holdout"):
        return pd.DataFrame(columns=HOLDOUT_COLUMNS)
    return con.execute("SELECT * FROM value_holdout ORDER BY calibration_frequency").df()


def figure_holdout(holdout: pd.DataFrame) -> go.Figure:
    """Bars: mean predicted vs actual repeat purchases in the holdout, per calibration frequency."""
    labels = [
        f"{int(b)}+" if i == len(holdout) - 1 and len(holdout) > 1 else str(int(b))
        for i, b in enumerate(holdout["calibration_frequency"])
    ]
    fig = go.Figure(
        [
            go.Bar(name="predicted", x=labels, y=holdout["predicted_purchases"]),
            go.Bar(name="actual", x=labels, y=holdout["actual_purchases"]),
        ]
    )
    fig.update_layout(
        barmode="group",
        xaxis_title="repeat purchases in the calibration period",
        yaxis_title="mean purchases per customer in the holdout",
        margin=dict(l=10, r=10, t=30, b=10),
        height=320,
    )
    return fig
