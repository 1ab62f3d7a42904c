"""The `attribution` build stage and the page's readers of what it stores.

mart_attribution holds one row per (scheme, segment, model, channel): attributed conversions and
value (currency units, over the journeys of mart_paths) and the Markov removal effect;
mart_markov_transitions the first-order transition probabilities per (scheme, segment).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ccrm_core.conductor.attribution.models import (
    MARKOV_ORDERS,
    attribute_by_segment,
    transition_matrix,
)
from ccrm_core.conductor.attribution.paths import prepare_paths
from ccrm_core.foundation import provenance, store
from ccrm_core.foundation.pipeline import BuildContext, replace_table


def attribution_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Build stage `attribution`: every model per scheme and segment of mart_paths.

    Writes mart_attribution(scheme, segment, model, channel, conversions, value,
    removal_effect) and mart_markov_transitions(scheme, segment, from_state, to_state, count,
    probability) (first order, for the heatmap)."""
    # in key order: the models add up paths in the order they come
    paths = con.execute("SELECT * FROM mart_paths ORDER BY scheme, segment, path").df()
    half_life = float(ctx.param("attribution", "half_life", 2.0))
    orders = tuple(ctx.param("attribution", "markov_orders", MARKOV_ORDERS))
    result = attribute_by_segment(paths, half_life, orders)
    rows = replace_table(con, "mart_attribution", result)
    transitions = []
    for (scheme, segment), group in paths.groupby(["scheme", "segment"], sort=True):
        ps = prepare_paths(group)
        if ps.n_channels:
            transitions.append(transition_matrix(ps).assign(scheme=scheme, segment=segment))
    cols = ["scheme", "segment", "from_state", "to_state", "count", "probability"]
    frame = (
        pd.concat(transitions, ignore_index=True)[cols]
        if transitions
        else pd.DataFrame(
            {
                c: pd.Series(dtype="float64" if c in ("count", "probability") else "object")
                for c in cols
            }
        )
    )
    replace_table(con, "mart_markov_transitions", frame)
    return rows


def model_fit(con: duckdb.DuckDBPyConnection) -> provenance.ModelFit:
    """When the attribution models were last run over the journeys, and the last day of data
    those journeys cover (known while the paths and attribution stages are up to date)."""
    return provenance.model_fit(con, "attribution")


def load_attribution(
    con: duckdb.DuckDBPyConnection, scheme: str = "all", segment: str = "all"
) -> pd.DataFrame:
    """mart_attribution rows of one segment: model, channel, conversions, value,
    removal_effect."""
    if not store.table_exists(con, "mart_attribution"):
        return pd.DataFrame(columns=["model", "channel", "conversions", "value", "removal_effect"])
    return con.execute(
        "SELECT model, channel, conversions, value, removal_effect FROM mart_attribution "
        "WHERE scheme = ? AND segment = ? ORDER BY model, channel",
        [scheme, segment],
    ).df()


def load_transitions(
    con: duckdb.DuckDBPyConnection, scheme: str = "all", segment: str = "all"
) -> pd.DataFrame:
    """First-order transition probabilities of one segment (long form)."""
    if not store.table_exists(con, "mart_markov_transitions"):
        return pd.DataFrame(columns=["from_state", "to_state", "count", "probability"])
    return con.execute(
        "SELECT from_state, to_state, count, probability FROM mart_markov_transitions "
        "WHERE scheme = ? AND segment = ? AND count > 0",
        [scheme, segment],
    ).df()
