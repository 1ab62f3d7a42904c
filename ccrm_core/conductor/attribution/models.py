"""Attribution models over distinct paths: heuristics, Markov chains and Shapley values.

Each model takes a journeys frame (or a `PathSet`, see `paths`) and returns one row per channel
with the attributed `conversions` and `value` (currency units); the package docstring describes
the models. `attribute_all` runs every model on one set of journeys, `attribute_by_segment`
does so per (scheme, segment) of a mart_paths-shaped frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from ccrm_core.conductor.attribution.paths import PathSet, prepare_paths

HEURISTIC_MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
MARKOV_ORDERS = (1, 2, 3)
MAX_SHAPLEY_CHANNELS = 20  # 2^20 coalitions x 2 measures of float64 = 16 MB


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
# Heuristics


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


def _distinct_keys(keys: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(keys, return_inverse=True)` for keys in [0, bound): by a lookup table of
    `bound` entries instead of a sort when the table is small (as for most chains)."""
    if bound > max(4 * len(keys), 1 << 16):
        return np.unique(keys, return_inverse=True)
    present = np.zeros(bound, dtype=bool)
    present[keys] = True
    distinct = np.flatnonzero(present)
    slot = np.zeros(bound, dtype=np.int64)
    slot[distinct] = np.arange(len(distinct))
    return distinct, slot[keys]


def build_chain(paths: pd.DataFrame | PathSet, order: int = 1) -> MarkovChain:
    """The transition counts of the order-k chain over channel histories (sparse)."""
    if order not in MARKOV_ORDERS:
        raise ValueError(f"Markov order must be one of {MARKOV_ORDERS}, got {order}")
    ps = prepare_paths(paths)
    base = ps.n_channels + 1
    keys = _state_keys(ps, order)
    state_keys, state_of = _distinct_keys(keys, base**order)
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
