"""Multi-touch attribution over customer journeys, and its reconciliation with the media mix model.

Every model takes a DataFrame of journeys with columns
`path` (list of channel names in touch order), `conversions` (journeys that ended in an order),
`nulls` (journeys that did not) and `value` (revenue of the converting journeys, currency units)
and returns one row per channel with the attributed `conversions` and `value`.
A row may be one journey or an aggregate of identical journeys (as in `mart_paths`); every model
first aggregates identical paths, so its work scales with the number of *distinct* paths.
Journeys with an empty path (orders without an addressable touch) are not attributable and are
left out; `PathSet.unattributed_*` keeps their totals.

Models
- heuristic: first touch, last touch, linear, time decay (weight 2^(-k/half_life) for the touch k
  positions before the conversion; half-life in touches, because aggregated paths carry no
  timestamps), position based (40/20/40).
- markov(order=1..3): absorbing Markov chain over states = the last `order` channels; exact
  absorption probabilities by sparse LU solves; removal effect of channel c =
  1 - P(conversion | states containing c removed) / P(conversion); conversions and value are
  shared in proportion to removal effects.
- shapley: exact Shapley values over channel coalitions. The worth of a coalition S is the
  conversions (value) of journeys whose channel set is a subset of S; computed for all 2^n
  coalitions by bitmask counting and a subset-sum (zeta) transform, O(n 2^n).

Reconciliation (`reconcile`) puts bottom-up attributed revenue beside the media mix model's
top-down incremental contribution per channel; their ratio is the calibration factor that scales
attribution to top-down totals (`calibrate`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext, replace_table

HEURISTIC_MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
MARKOV_ORDERS = (1, 2, 3)
MAX_SHAPLEY_CHANNELS = 20  # 2^20 coalitions x 2 measures of float64 = 16 MB
PATH_SEPARATOR = "\x1f"  # cannot occur in a channel name from our vocabulary


def model_names() -> list[str]:
    """All model names in display order (as stored in mart_attribution.model)."""
    return [*HEURISTIC_MODELS, *(f"markov_{k}" for k in MARKOV_ORDERS), "shapley"]


MODEL_LABELS = {
    "first_touch": "First touch",
    "last_touch": "Last touch",
    "linear": "Linear",
    "time_decay": "Time decay",
    "position_based": "Position based (40/20/40)",
    "markov_1": "Markov (order 1)",
    "markov_2": "Markov (order 2)",
    "markov_3": "Markov (order 3)",
    "shapley": "Shapley",
}


# ---------------------------------------------------------------------------------------------
# Distinct paths as flat arrays


@dataclass
class PathSet:
    """Distinct non-empty paths as flat arrays (path-major order).

    `codes[f]` is the channel code of flat touch f, `path_index[f]` its distinct path and
    `position[f]` its place in that path (0 = first touch). Per distinct path: `length`,
    `conversions`, `nulls`, `value`.
    """

    channels: np.ndarray
    codes: np.ndarray
    path_index: np.ndarray
    position: np.ndarray
    length: np.ndarray
    conversions: np.ndarray
    nulls: np.ndarray
    value: np.ndarray
    unattributed_conversions: float = 0.0
    unattributed_value: float = 0.0

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def last_flat(self) -> np.ndarray:
        """Flat index of the last touch of every distinct path."""
        return np.cumsum(self.length) - 1

    @property
    def first_flat(self) -> np.ndarray:
        return np.cumsum(self.length) - self.length


def _check_columns(paths: pd.DataFrame) -> None:
    missing = [c for c in ("path", "conversions", "nulls", "value") if c not in paths.columns]
    if missing:
        raise ValueError(
            f"journeys frame lacks column(s) {', '.join(missing)}; expected columns path "
            "(list of channels), conversions, nulls, value (see mart_paths)"
        )


def _path_groups(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Group index per journey and the distinct paths as separator-joined strings.

    Python lists join fastest in Python; numpy arrays (what DuckDB returns for VARCHAR[])
    join fastest in Arrow. Arrow's dictionary encoding then groups the keys in C++."""
    first = next((p for p in column if p is not None), None)
    if first is None or isinstance(first, list | tuple):
        # rows that hold the same list object (common when journeys are built in memory) are
        # joined once
        objects = column.to_numpy(dtype=object)
        object_ids = np.fromiter(map(id, objects), dtype=np.int64, count=len(objects))
        _, first_row, inverse = np.unique(object_ids, return_index=True, return_inverse=True)
        joined = pa.array(
            [PATH_SEPARATOR.join(p) if p is not None else "" for p in objects[first_row]],
            pa.string(),
        )
        keys = joined.take(pa.array(inverse))
    else:
        lists = pa.array(column, type=pa.list_(pa.string()))
        keys = pc.fill_null(pc.binary_join(lists, PATH_SEPARATOR), "")
    encoded = pc.dictionary_encode(keys)
    return (
        encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        np.asarray(encoded.dictionary.to_pylist(), dtype=object),
    )


def prepare_paths(paths: pd.DataFrame | PathSet) -> PathSet:
    """Aggregate identical paths and lay them out as flat arrays (see PathSet)."""
    if isinstance(paths, PathSet):
        return paths
    _check_columns(paths)
    group, uniques = _path_groups(paths["path"])
    n = len(uniques)
    conv = np.bincount(group, weights=paths["conversions"].to_numpy(float), minlength=n)
    nulls = np.bincount(group, weights=paths["nulls"].to_numpy(float), minlength=n)
    value = np.bincount(group, weights=paths["value"].to_numpy(float), minlength=n)
    if np.any(conv < 0) or np.any(nulls < 0):
        raise ValueError("journeys frame has negative conversions or nulls; counts must be >= 0")
    nonempty = np.array([u != "" for u in uniques], dtype=bool)
    unattributed_conv = float(conv[~nonempty].sum())
    unattributed_value = float(value[~nonempty].sum())
    keep = nonempty & ((conv + nulls) > 0)
    split = [u.split(PATH_SEPARATOR) for u in uniques[keep]]
    length = np.fromiter((len(s) for s in split), dtype=np.int64, count=len(split))
    flat = np.fromiter((c for s in split for c in s), dtype=object, count=int(length.sum()))
    codes, channels = pd.factorize(flat, sort=True)
    path_index = np.repeat(np.arange(len(split)), length)
    starts = np.cumsum(length) - length
    position = np.arange(len(flat)) - np.repeat(starts, length)
    return PathSet(
        channels=np.asarray(channels, dtype=object),
        codes=codes.astype(np.int64),
        path_index=path_index,
        position=position,
        length=length,
        conversions=conv[keep],
        nulls=nulls[keep],
        value=value[keep],
        unattributed_conversions=unattributed_conv,
        unattributed_value=unattributed_value,
    )


def _credit_frame(ps: PathSet, weights: np.ndarray) -> pd.DataFrame:
    """Per channel: sum over touches of weight x path conversions (and x path value).

    `weights[f]` is the share of its path's conversion credited to flat touch f (sums to 1 per
    path)."""
    conv = np.bincount(
        ps.codes, weights=weights * ps.conversions[ps.path_index], minlength=ps.n_channels
    )
    value = np.bincount(
        ps.codes, weights=weights * ps.value[ps.path_index], minlength=ps.n_channels
    )
    return pd.DataFrame({"channel": ps.channels, "conversions": conv, "value": value})


def heuristic(
    paths: pd.DataFrame | PathSet, model: str = "last_touch", half_life: float = 2.0
) -> pd.DataFrame:
    """Rule-based attribution: DataFrame(channel, conversions, value).

    model: first_touch | last_touch | linear | time_decay | position_based.
    time_decay: a touch k positions before the conversion (k = 0 for the last) weighs
    2^(-k / half_life) (half_life in touches, > 0), weights normalised per path.
    position_based: 40% first, 40% last, 20% shared by the middle touches; a two-touch path
    splits 50/50 and a one-touch path gives 100% to its touch.
    """
    ps = prepare_paths(paths)
    length = ps.length[ps.path_index]
    pos = ps.position
    if model == "first_touch":
        w = (pos == 0).astype(float)
    elif model == "last_touch":
        w = (pos == length - 1).astype(float)
    elif model == "linear":
        w = 1.0 / length
    elif model == "time_decay":
        if not half_life > 0:
            raise ValueError(f"half_life must be > 0 touches, got {half_life}")
        raw = np.exp2(-(length - 1 - pos) / half_life)
        w = raw / np.bincount(ps.path_index, weights=raw)[ps.path_index]
    elif model == "position_based":
        ends = (pos == 0) | (pos == length - 1)
        middle = np.maximum(length - 2, 1)
        w = np.where(
            length == 1,
            1.0,
            np.where(length == 2, 0.5, np.where(ends, 0.4, 0.2 / middle)),
        )
    else:
        raise ValueError(f"unknown heuristic model {model!r}; choose from {HEURISTIC_MODELS}")
    return _credit_frame(ps, w)


# ---------------------------------------------------------------------------------------------
# Markov chains


@dataclass
class MarkovChain:
    """An absorbing chain: transient states 0..S-1 are channel histories, S is `start`;
    `counts` (S+1 x S+3, sparse) holds transition counts into transient states, conversion
    (column S+1) and null (column S+2). `state_channels[s]` is the set of channel codes in s."""

    order: int
    state_labels: list[str]
    state_masks: np.ndarray  # bitmask of channel codes per transient state (object for >62)
    contains: sp.csr_matrix  # S x C boolean: state s contains channel c
    counts: sp.csr_matrix

    @property
    def n_states(self) -> int:
        return len(self.state_labels)


def _state_keys(ps: PathSet, order: int) -> np.ndarray:
    """An integer key per flat touch naming its state: the last `order` channels (padded)."""
    base = ps.n_channels + 1
    if base**order >= 2**62:
        raise ValueError(f"too many channels ({ps.n_channels}) for a Markov chain of order {order}")
    key = np.zeros(len(ps.codes), dtype=np.int64)
    shifted_codes = ps.codes + 1  # 0 = no channel (history shorter than the order)
    for j in range(order):
        digit = np.zeros_like(shifted_codes)
        if j == 0:
            digit = shifted_codes
        else:
            digit[j:] = shifted_codes[:-j]
            digit[ps.position < j] = 0
        key = key * base + digit
    return key


def build_chain(paths: pd.DataFrame | PathSet, order: int = 1) -> MarkovChain:
    """The transition counts of the order-k chain over channel histories (sparse)."""
    if order not in MARKOV_ORDERS:
        raise ValueError(f"Markov order must be one of {MARKOV_ORDERS}, got {order}")
    ps = prepare_paths(paths)
    base = ps.n_channels + 1
    keys = _state_keys(ps, order)
    state_keys, state_of = np.unique(keys, return_inverse=True)
    n_states = len(state_keys)
    start, conv_col, null_col = n_states, n_states + 1, n_states + 2
    total = ps.conversions + ps.nulls
    first, last = ps.first_flat, ps.last_flat
    inner = np.ones(len(ps.codes), dtype=bool)
    inner[last] = False
    src = np.concatenate(
        [np.full(len(first), start), state_of[inner], state_of[last], state_of[last]]
    )
    dst = np.concatenate(
        [
            state_of[first],
            state_of[np.flatnonzero(inner) + 1],
            np.full(len(last), conv_col),
            np.full(len(last), null_col),
        ]
    )
    weight = np.concatenate([total, total[ps.path_index[inner]], ps.conversions, ps.nulls]).astype(
        float
    )
    counts = sp.csr_matrix((weight, (src, dst)), shape=(n_states + 1, n_states + 3))
    # decode state keys: digit j (from the least significant) is the channel j steps back
    digits = np.stack([(state_keys // base**j) % base for j in range(order)], axis=1)
    rows = np.repeat(np.arange(n_states), order)
    cols = digits.ravel() - 1
    ok = cols >= 0
    contains = sp.csr_matrix(
        (np.ones(ok.sum(), dtype=bool), (rows[ok], cols[ok])), shape=(n_states, ps.n_channels)
    )
    labels = [" > ".join(str(ps.channels[d - 1]) for d in reversed(row) if d > 0) for row in digits]
    return MarkovChain(order, labels, digits, contains, counts)


def _conversion_probability(q: sp.csr_matrix, r: np.ndarray, keep: np.ndarray, start: int) -> float:
    """P(absorbed in conversion | start) with transient states outside `keep` sent to null."""
    idx = np.flatnonzero(keep)
    sub = q[idx][:, idx]
    a = (sp.identity(len(idx), format="csc") - sub).tocsc()
    x = splu(a).solve(r[idx])
    return float(x[np.searchsorted(idx, start)])


def markov(paths: pd.DataFrame | PathSet, order: int = 1) -> pd.DataFrame:
    """Markov-chain attribution: DataFrame(channel, removal_effect, conversions, value).

    Exact: absorption probabilities solve (I - Q) x = r on the transient states (sparse LU),
    once for the full chain and once per channel with every state containing it removed
    (transitions into a removed state end in null). Conversions and value of the journeys are
    shared in proportion to the removal effects.
    """
    ps = prepare_paths(paths)
    chain = build_chain(ps, order)
    n = chain.n_states
    counts = chain.counts
    out = np.asarray(counts.sum(axis=1)).ravel()
    inv = np.divide(1.0, out, out=np.zeros_like(out), where=out > 0)
    probs = sp.diags(inv) @ counts
    q = probs[:, : n + 1].tocsr()
    r = np.asarray(probs[:, n + 1].todense()).ravel()
    keep_all = np.ones(n + 1, dtype=bool)
    base_p = _conversion_probability(q, r, keep_all, n)
    contains = chain.contains.tocsc()
    removal = np.zeros(ps.n_channels)
    for c in range(ps.n_channels):
        keep = keep_all.copy()
        keep[contains[:, c].indices] = False
        p_c = _conversion_probability(q, r, keep, n) if base_p > 0 else 0.0
        removal[c] = 1.0 - p_c / base_p if base_p > 0 else 0.0
    removal = np.clip(removal, 0.0, None)
    share = removal / removal.sum() if removal.sum() > 0 else np.zeros_like(removal)
    return pd.DataFrame(
        {
            "channel": ps.channels,
            "removal_effect": removal,
            "conversions": share * ps.conversions.sum(),
            "value": share * ps.value.sum(),
        }
    )


def transition_matrix(paths: pd.DataFrame | PathSet) -> pd.DataFrame:
    """First-order transition probabilities, long form: from_state, to_state, probability,
    count. States are channels plus `start`, `conversion` and `null`."""
    ps = prepare_paths(paths)
    chain = build_chain(ps, 1)
    names = [*chain.state_labels, "start", "conversion", "null"]
    coo = chain.counts.tocoo()
    frame = pd.DataFrame(
        {
            "from_state": [names[i] for i in coo.row],
            "to_state": [names[j] for j in coo.col],
            "count": coo.data,
        }
    )
    frame = frame.groupby(["from_state", "to_state"], as_index=False)["count"].sum()
    frame["probability"] = frame["count"] / frame.groupby("from_state")["count"].transform("sum")
    return frame


# ---------------------------------------------------------------------------------------------
# Shapley


def _channel_masks(ps: PathSet) -> np.ndarray:
    bits = np.left_shift(np.int64(1), ps.codes)
    return np.bitwise_or.reduceat(bits, ps.first_flat) if len(bits) else np.zeros(0, np.int64)


def shapley(paths: pd.DataFrame | PathSet) -> pd.DataFrame:
    """Exact Shapley attribution: DataFrame(channel, conversions, value).

    Worth of a coalition S: the conversions (value) of journeys whose set of channels is a
    subset of S. Journeys are counted per exact channel set (bitmask), summed over subsets for
    all 2^n coalitions (zeta transform), and each channel gets
    phi_i = sum over S not containing i of |S|!(n-|S|-1)!/n! * (v(S + i) - v(S)).
    Efficient (the values sum to the total) and symmetric. Feasible up to 20 channels.
    """
    ps = prepare_paths(paths)
    n = ps.n_channels
    if n > MAX_SHAPLEY_CHANNELS:
        raise ValueError(
            f"exact Shapley needs at most {MAX_SHAPLEY_CHANNELS} channels, got {n}; "
            "group rare channels together first"
        )
    if n == 0:
        return pd.DataFrame({"channel": [], "conversions": [], "value": []})
    size = 1 << n
    masks = _channel_masks(ps)
    worth = np.stack(
        [
            np.bincount(masks, weights=ps.conversions, minlength=size),
            np.bincount(masks, weights=ps.value, minlength=size),
        ],
        axis=1,
    )
    for i in range(n):  # subset sums: worth[S] = sum over T subset of S of count[T]
        view = worth.reshape(-1, 2, 1 << i, 2)
        view[:, 1] += view[:, 0]
    popcount = np.zeros(size, dtype=np.int64)
    for i in range(n):
        popcount += (np.arange(size) >> i) & 1
    coef = np.array(
        [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)]
    )
    phi = np.zeros((n, 2))
    for i in range(n):
        view = worth.reshape(-1, 2, 1 << i, 2)
        pc = popcount.reshape(-1, 2, 1 << i)[:, 0]
        marginal = view[:, 1] - view[:, 0]
        phi[i] = (coef[pc][..., None] * marginal).sum(axis=(0, 1))
    return pd.DataFrame({"channel": ps.channels, "conversions": phi[:, 0], "value": phi[:, 1]})


# ---------------------------------------------------------------------------------------------
# All models, by segment


def attribute_all(
    paths: pd.DataFrame | PathSet,
    half_life: float = 2.0,
    markov_orders: Sequence[int] = MARKOV_ORDERS,
) -> pd.DataFrame:
    """Every model on one set of journeys: DataFrame(model, channel, conversions, value,
    removal_effect) — removal_effect is NaN except for Markov models. Paths are aggregated
    once and shared by all models."""
    ps = prepare_paths(paths)
    frames = []
    if ps.n_channels == 0:
        return pd.DataFrame(columns=["model", "channel", "conversions", "value", "removal_effect"])
    for model in HEURISTIC_MODELS:
        frames.append(heuristic(ps, model, half_life).assign(model=model))
    for k in markov_orders:
        frames.append(markov(ps, k).assign(model=f"markov_{k}"))
    frames.append(shapley(ps).assign(model="shapley"))
    out = pd.concat(frames, ignore_index=True)
    if "removal_effect" not in out:
        out["removal_effect"] = np.nan
    return out[["model", "channel", "conversions", "value", "removal_effect"]]


def attribute_by_segment(
    paths: pd.DataFrame,
    half_life: float = 2.0,
    markov_orders: Sequence[int] = MARKOV_ORDERS,
) -> pd.DataFrame:
    """`attribute_all` per (scheme, segment) of a mart_paths-shaped frame: DataFrame(scheme,
    segment, model, channel, conversions, value, removal_effect)."""
    frames = []
    for (scheme, segment), group in paths.groupby(["scheme", "segment"], sort=True):
        result = attribute_all(group, half_life, markov_orders)
        if len(result):
            frames.append(result.assign(scheme=scheme, segment=segment))
    cols = ["scheme", "segment", "model", "channel", "conversions", "value", "removal_effect"]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)[cols]


# ---------------------------------------------------------------------------------------------
# Build stage and readers


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


# ---------------------------------------------------------------------------------------------
# Charts (data in, figure out)

CHANNEL_COLOURS = {
    "email": "#1f77b4",
    "direct_mail": "#8c564b",
    "sms": "#2ca02c",
    "push": "#17becf",
    "paid_search": "#ff7f0e",
    "display": "#9467bd",
    "social": "#e377c2",
    "call_center": "#7f7f7f",
    "tv": "#d62728",
    "print": "#bcbd22",
    "baseline": "#c7c7c7",
}


def chart_model_comparison(
    attribution: pd.DataFrame, models: Sequence[str] | None = None, measure: str = "conversions"
) -> go.Figure:
    """Grouped bars: attributed conversions (or value) per channel, one bar group per model."""
    models = list(models or model_names())
    fig = go.Figure()
    for model in models:
        part = attribution[attribution["model"] == model]
        fig.add_bar(x=part["channel"], y=part[measure], name=MODEL_LABELS.get(model, model))
    fig.update_layout(
        barmode="group",
        height=380,
        margin=dict(l=10, r=10, t=30, b=10),
        yaxis_title="attributed conversions" if measure == "conversions" else "attributed revenue",
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def chart_removal_effects(attribution: pd.DataFrame, model: str = "markov_1") -> go.Figure:
    """Horizontal bars: removal effect per channel (share of conversions lost without it)."""
    part = attribution[attribution["model"] == model].sort_values("removal_effect")
    fig = go.Figure(
        go.Bar(
            x=part["removal_effect"],
            y=part["channel"],
            orientation="h",
            marker_color=[CHANNEL_COLOURS.get(c, "#636efa") for c in part["channel"]],
            hovertemplate="%{y}: %{x:.1%} of conversions lost<extra></extra>",
        )
    )
    fig.update_layout(
        height=max(220, 30 * len(part) + 60),
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis=dict(title="removal effect", tickformat=".0%"),
    )
    return fig


def chart_transition_heatmap(transitions: pd.DataFrame) -> go.Figure:
    """Heatmap of first-order transition probabilities (rows: from, columns: to)."""
    if transitions.empty:
        return go.Figure()
    grid = transitions.pivot_table(
        index="from_state", columns="to_state", values="probability", aggfunc="sum", fill_value=0
    )
    channels = sorted(
        s for s in set(grid.index) | set(grid.columns) if s not in ("start", "conversion", "null")
    )
    rows = ["start", *[c for c in channels if c in grid.index]]
    cols = [*[c for c in channels if c in grid.columns], "conversion", "null"]
    grid = grid.reindex(index=rows, columns=cols, fill_value=0)
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=cols,
            y=rows,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            text=np.round(grid.to_numpy(), 2),
            texttemplate="%{text}",
            hovertemplate="%{y} → %{x}: %{z:.1%}<extra></extra>",
        )
    )
    fig.update_layout(
        height=420,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis_title="to",
        yaxis=dict(title="from", autorange="reversed"),
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Reconciliation: bottom-up attribution vs top-down media mix model, and experiments

RECONCILIATION_COLUMNS = [
    "channel",
    "addressable",
    "view",
    "attributed_conversions",
    "attributed_revenue",
    "incremental_revenue",
    "incremental_revenue_low",
    "incremental_revenue_high",
    "incremental_conversions",
    "calibration_factor",
    "attributed_share",
    "incremental_share",
]


def reconcile(
    bottom_up: pd.DataFrame,
    top_down: pd.DataFrame,
    revenue_per_conversion: float,
    addressable: Iterable[str] = store.ADDRESSABLE_CHANNELS,
) -> pd.DataFrame:
    """Per channel, bottom-up attribution beside top-down incremental contribution.

    bottom_up: DataFrame(channel, conversions, value) from one attribution model.
    top_down: DataFrame(channel, contribution[, contribution_low, contribution_high]) from the
    media mix model (incremental revenue over the fitted period, currency units).
    Returns RECONCILIATION_COLUMNS: `view` is 'both', 'top_down_only' (aggregate-only media such
    as tv, or addressable channels without tracked touches) or 'bottom_up_only' (touches but no
    spend); `calibration_factor` = incremental_revenue / attributed_revenue where both exist
    (NaN otherwise): below 1, attribution credits the channel with sales that would have happened
    anyway; above 1, the channel drives sales that its touches do not show.
    """
    addressable = set(addressable)
    bu = bottom_up.groupby("channel")[["conversions", "value"]].sum()
    td = top_down.set_index("channel")
    channels = list(td.index) + [c for c in bu.index if c not in td.index]
    out = pd.DataFrame({"channel": channels})
    out["addressable"] = out["channel"].isin(addressable)
    out["attributed_conversions"] = out["channel"].map(bu["conversions"])
    out["attributed_revenue"] = out["channel"].map(bu["value"])
    out["incremental_revenue"] = out["channel"].map(td["contribution"])
    for side in ("low", "high"):
        col = f"contribution_{side}"
        out[f"incremental_revenue_{side}"] = out["channel"].map(
            td[col] if col in td else td["contribution"]
        )
    has_bu = out["attributed_revenue"].fillna(0) > 0
    has_td = out["incremental_revenue"].notna()
    out["view"] = np.where(
        has_bu & has_td, "both", np.where(has_td, "top_down_only", "bottom_up_only")
    )
    out["incremental_conversions"] = (
        out["incremental_revenue"] / revenue_per_conversion
        if revenue_per_conversion > 0
        else np.nan
    )
    out["calibration_factor"] = np.where(
        out["view"] == "both",
        out["incremental_revenue"] / out["attributed_revenue"].where(has_bu),
        np.nan,
    )
    out["attributed_share"] = out["attributed_revenue"] / out["attributed_revenue"].sum()
    out["incremental_share"] = out["incremental_revenue"] / out["incremental_revenue"].sum()
    return out[RECONCILIATION_COLUMNS]


def calibrate(segment_attribution: pd.DataFrame, reconciliation: pd.DataFrame) -> pd.DataFrame:
    """Calibrated attribution: each segment's attributed conversions and revenue per channel
    times the channel's calibration factor, so that per channel the segments of a scheme add up
    to the top-down total (bottom-up shares, top-down level). Channels without a factor keep
    NaN calibrated figures. Input: DataFrame(scheme, segment, channel, conversions, value)."""
    factor = reconciliation.set_index("channel")["calibration_factor"]
    out = segment_attribution.rename(
        columns={"conversions": "attributed_conversions", "value": "attributed_revenue"}
    ).copy()
    out["calibration_factor"] = out["channel"].map(factor)
    out["calibrated_conversions"] = out["attributed_conversions"] * out["calibration_factor"]
    out["calibrated_revenue"] = out["attributed_revenue"] * out["calibration_factor"]
    return out


EXPERIMENT_SQL = f"""
WITH assigned AS (
    SELECT e.experiment_id, lower(e.arm) AS arm, m.customer_id, min(e.assigned_at) AS assigned_at
    FROM experiments e JOIN identity_map m
      ON m.source_system = e.source_system AND m.source_id = e.source_id
    GROUP BY ALL
),
outcome AS (
    SELECT a.experiment_id, a.arm, a.customer_id, count(o.order_id) > 0 AS converted,
           coalesce({store.exact_sum("o.revenue")}, 0) AS revenue
    FROM assigned a LEFT JOIN customer_orders o
      ON o.customer_id = a.customer_id AND o.ts > a.assigned_at
     AND o.ts <= a.assigned_at + to_days(CAST(? AS INTEGER))
    GROUP BY ALL
)
SELECT experiment_id, arm, count(*) AS customers, sum(CAST(converted AS INTEGER)) AS converters,
       {store.exact_sum("revenue")} AS revenue, min(a_min) AS first_assigned, max(a_max) AS last_assigned
FROM outcome JOIN (SELECT experiment_id, min(assigned_at) AS a_min, max(assigned_at) AS a_max
                   FROM assigned GROUP BY ALL) USING (experiment_id)
GROUP BY ALL ORDER BY experiment_id, arm
"""  # noqa: S608 our SQL; sums from store.exact_sum


def experiment_readout(con: duckdb.DuckDBPyConnection, window_days: int = 30) -> pd.DataFrame:
    """Per experiment: conversion within `window_days` after assignment, treatment vs control.

    Lift = treatment rate - control rate (absolute, per assigned customer); 95% Wald interval
    of the difference and two-sided z-test p-value (statsmodels); incremental conversions and
    revenue = lift x treated customers (revenue: difference in revenue per customer x treated).
    Empty when there is no experiment with both a control and a treatment arm."""
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    cols = [
        "experiment_id",
        "control_customers",
        "control_converters",
        "control_rate",
        "treatment_customers",
        "treatment_converters",
        "treatment_rate",
        "lift",
        "relative_lift",
        "lift_low",
        "lift_high",
        "p_value",
        "incremental_conversions",
        "incremental_revenue",
        "window_days",
        "first_assigned",
        "last_assigned",
    ]
    if not store.table_exists(con, "identity_map"):
        return pd.DataFrame(columns=[cols[0], "channel", *cols[1:]])
    arms = con.execute(EXPERIMENT_SQL, [int(window_days)]).df()
    # the experiments table has no channel; a campaign named after the experiment gives it
    channels = dict(
        con.execute(
            "SELECT e.experiment_id, any_value(c.channel) FROM (SELECT DISTINCT experiment_id "
            "FROM experiments) e JOIN campaigns c ON starts_with(c.name, e.experiment_id) "
            "GROUP BY ALL"
        ).fetchall()
    )
    rows = []
    for exp_id, group in arms.groupby("experiment_id", sort=True):
        by_arm = group.set_index("arm")
        if not {"control", "treatment"} <= set(by_arm.index):
            continue
        c, t = by_arm.loc["control"], by_arm.loc["treatment"]
        nc, nt = int(c["customers"]), int(t["customers"])
        xc, xt = int(c["converters"]), int(t["converters"])
        rc, rt = xc / nc, xt / nt
        if 0 < xc + xt < nc + nt:
            _, p_value = proportions_ztest([xt, xc], [nt, nc])
            low, high = confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff")
        else:
            p_value, low, high = 1.0, rt - rc, rt - rc
        rev_diff = float(t["revenue"]) / nt - float(c["revenue"]) / nc
        rows.append(
            [
                exp_id,
                nc,
                xc,
                rc,
                nt,
                xt,
                rt,
                rt - rc,
                (rt - rc) / rc if rc > 0 else np.nan,
                float(low),
                float(high),
                float(p_value),
                (rt - rc) * nt,
                rev_diff * nt,
                int(window_days),
                group["first_assigned"].min(),
                group["last_assigned"].max(),
            ]
        )
    out = pd.DataFrame(rows, columns=cols)
    out.insert(1, "channel", out["experiment_id"].map(channels))
    return out


def reconcile_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Build stage `reconcile`: writes mart_reconciliation (per channel, RECONCILIATION_COLUMNS
    plus model), mart_calibrated_attribution (scheme, segment, channel, model, attributed and
    calibrated conversions and revenue, calibration_factor) and mart_experiment_readout."""
    model = str(ctx.param("reconcile", "model", "markov_1"))
    if model not in model_names():
        raise ValueError(f"reconcile.model {model!r} is unknown; choose from {model_names()}")
    attributed = con.execute(
        "SELECT scheme, segment, channel, conversions, value FROM mart_attribution WHERE model = ?",
        [model],
    ).df()
    overall = attributed[(attributed["scheme"] == "all") & (attributed["segment"] == "all")]
    top_down = con.execute(
        "SELECT channel, contribution, contribution_low, contribution_high FROM mart_mmm_channels"
    ).df()
    per_conversion = con.execute(
        "SELECT any_value(revenue_per_conversion) FROM mart_response_curves"
    ).fetchall()[0][0]
    table = reconcile(overall, top_down, float(per_conversion or 0.0)).assign(model=model)
    rows = replace_table(con, "mart_reconciliation", table)
    replace_table(
        con, "mart_calibrated_attribution", calibrate(attributed, table).assign(model=model)
    )
    window = int(ctx.param("reconcile", "experiment_window_days", 30))
    replace_table(con, "mart_experiment_readout", experiment_readout(con, window))
    return rows


def load_reconciliation(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """mart_reconciliation, or None before the reconcile stage."""
    if not store.table_exists(con, "mart_reconciliation"):
        return None
    frame = con.execute(
        "SELECT * FROM mart_reconciliation ORDER BY incremental_revenue DESC NULLS LAST"
    ).df()
    return frame if len(frame) else None


def load_calibrated(
    con: duckdb.DuckDBPyConnection, scheme: str = "all", segment: str = "all"
) -> pd.DataFrame | None:
    if not store.table_exists(con, "mart_calibrated_attribution"):
        return None
    return con.execute(
        "SELECT channel, attributed_conversions, attributed_revenue, calibration_factor, "
        "calibrated_conversions, calibrated_revenue FROM mart_calibrated_attribution "
        "WHERE scheme = ? AND segment = ? ORDER BY calibrated_revenue DESC NULLS LAST",
        [scheme, segment],
    ).df()


def load_experiments(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    if not store.table_exists(con, "mart_experiment_readout"):
        return None
    return con.execute("SELECT * FROM mart_experiment_readout ORDER BY experiment_id").df()


def _money(x: float) -> str:
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:,.1f}M"
    if ax >= 1e3:
        return f"{x / 1e3:,.0f}k"
    return f"{x:,.0f}"


def reconciliation_summary(
    reconciliation: pd.DataFrame, experiments: pd.DataFrame | None = None
) -> str:
    """A plain-language paragraph generated from the reconciliation numbers (markdown)."""
    if reconciliation is None or reconciliation.empty:
        return "No reconciliation yet: run the `reconcile` build stage."
    model = reconciliation["model"].iloc[0] if "model" in reconciliation else "attribution"
    label = MODEL_LABELS.get(model, model)
    both = reconciliation[reconciliation["view"] == "both"]
    top_only = reconciliation[reconciliation["view"] == "top_down_only"]
    parts = []
    if len(both):
        att, inc = both["attributed_revenue"].sum(), both["incremental_revenue"].sum()
        ratio = inc / att if att > 0 else float("nan")
        parts.append(
            f"Across the {len(both)} channels seen both ways, {label} attribution credits "
            f"{_money(att)} of revenue to touches; the media mix model finds {_money(inc)} that "
            f"the spend actually added (calibration factor {ratio:.2f})."
        )
        if ratio < 1:
            parts.append(
                "Attribution gives channels credit for sales that would have happened anyway; "
                "use the model's incremental figures for budget decisions."
            )
        ranked = both.assign(gap=both["attributed_revenue"] / both["incremental_revenue"])
        ranked = ranked.replace([np.inf, -np.inf], np.nan).dropna(subset=["gap"])
        if len(ranked):
            over = ranked.sort_values("gap", ascending=False).iloc[0]
            under = ranked.sort_values("gap").iloc[0]
            parts.append(
                f"The largest over-credit is **{over['channel']}** (attribution "
                f"{over['gap']:.1f}x its incremental revenue)"
                + (
                    f"; the least is **{under['channel']}** ({under['gap']:.1f}x)."
                    if under["channel"] != over["channel"]
                    else "."
                )
            )
    if len(top_only):
        inc = top_only["incremental_revenue"].sum()
        share = inc / reconciliation["incremental_revenue"].sum()
        parts.append(
            f"{', '.join(top_only['channel'])} "
            f"{'is' if len(top_only) == 1 else 'are'} seen only top-down: {_money(inc)} of "
            f"incremental revenue ({share:.0%} of all media contribution) that attribution "
            "cannot see."
        )
    if experiments is not None and len(experiments):
        for e in experiments.itertuples():
            verdict = "a significant" if e.p_value < 0.05 else "no significant"
            parts.append(
                f"Experiment {e.experiment_id}: treatment converted {e.treatment_rate:.1%} vs "
                f"{e.control_rate:.1%} in control within {e.window_days} days, lift "
                f"{e.lift * 100:+.1f} pp (95% CI {e.lift_low * 100:+.1f} to "
                f"{e.lift_high * 100:+.1f} pp, p = {e.p_value:.3f}): {verdict} effect, about "
                f"{e.incremental_conversions:,.0f} extra conversions."
            )
    return " ".join(parts)


def chart_reconciliation(reconciliation: pd.DataFrame) -> go.Figure:
    """Grouped bars per channel: attributed revenue (bottom-up) vs incremental revenue
    (top-down, with its 90% interval)."""
    r = reconciliation.sort_values("incremental_revenue", ascending=False)
    fig = go.Figure()
    fig.add_bar(
        x=r["channel"],
        y=r["attributed_revenue"],
        name="attributed (bottom-up)",
        marker_color="#ff7f0e",
    )
    fig.add_bar(
        x=r["channel"],
        y=r["incremental_revenue"],
        name="incremental (media mix model)",
        marker_color="#1f77b4",
        error_y=dict(
            type="data",
            symmetric=False,
            array=(r["incremental_revenue_high"] - r["incremental_revenue"]).clip(lower=0),
            arrayminus=(r["incremental_revenue"] - r["incremental_revenue_low"]).clip(lower=0),
        ),
    )
    fig.update_layout(
        barmode="group",
        height=380,
        margin=dict(l=10, r=10, t=30, b=10),
        yaxis_title="revenue over the period",
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Benchmark support


def simulate_journeys(n: int, n_channels: int = 10, seed: int = 0) -> pd.DataFrame:
    """n synthetic journeys (one row each; path lists, conversions 0/1, nulls 1 - conversions,
    value) with skewed channel frequencies and geometric path lengths (mean ~2.5, max 12), for
    benchmarks and tests. Journeys repeat the same list objects, as real journeys repeat paths."""
    rng = np.random.default_rng(seed)
    names = np.array([f"channel_{i:02d}" for i in range(n_channels)], dtype=object)
    popularity = 1.0 / np.arange(1, n_channels + 1)
    pool_size = min(n, 200_000)
    lengths = np.minimum(rng.geometric(0.4, pool_size), 12)
    flat = rng.choice(n_channels, size=int(lengths.sum()), p=popularity / popularity.sum())
    pool = np.empty(pool_size, dtype=object)
    pool[:] = [list(p) for p in np.split(names[flat], np.cumsum(lengths)[:-1])]
    # Zipf-like reuse of the pool: common journeys are common
    pick = np.minimum(rng.zipf(1.3, n) - 1, pool_size - 1)
    pick = np.where(rng.random(n) < 0.5, pick, rng.integers(0, pool_size, n))
    conv = (rng.random(n) < 0.05 + 0.03 * np.minimum(lengths[pick], 5)).astype(float)
    return pd.DataFrame(
        {
            "path": pool[pick],
            "conversions": conv,
            "nulls": 1.0 - conv,
            "value": conv * np.round(rng.gamma(2.0, 40.0, n), 2),
        }
    )


def bench_attribution_all(ctx) -> tuple[int, dict]:
    """Bench: generate 1,000,000 journeys, then run all nine models on them (one call).
    Figures: models_s (the models alone, the <= 3 s target), distinct_paths."""
    import time

    journeys = simulate_journeys(1_000_000, 10, seed=42)
    started = time.perf_counter()
    attribute_all(journeys)
    models_s = time.perf_counter() - started
    distinct = len(prepare_paths(journeys).length)
    return len(journeys), {"models_s": models_s, "distinct_paths": float(distinct)}
