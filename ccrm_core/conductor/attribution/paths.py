"""Journeys as distinct paths laid out as flat arrays, the input every attribution model shares.

A journeys frame has columns `path` (list of channel names in touch order), `conversions`
(journeys that ended in an order), `nulls` (journeys that did not) and `value` (revenue of the
converting journeys, currency units); a row may be one journey or an aggregate of identical
ones (as in `mart_paths`). `prepare_paths` aggregates identical paths once, so the models' work
scales with the number of distinct paths; empty paths are left out and their totals kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

PATH_SEPARATOR = "\x1f"  # cannot occur in a channel name from our vocabulary


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
