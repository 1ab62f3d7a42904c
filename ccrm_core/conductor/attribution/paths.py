"""Journeys as distinct paths laid out as flat arrays, the input every attribution model shares.

A journeys frame has columns `path` (list of channel names in touch order), `conversions`
(journeys that ended in an order), `nulls` (journeys that did not) and `value` (revenue of the
converting journeys, currency units); a row may be one journey or an aggregate of identical
ones (as in `mart_paths`). `prepare_paths` aggregates identical paths once, so the models' work
scales with the number of distinct paths; empty paths are left out and their totals kept.
"""

from __future__ import annotations

import ctypes
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


def _first_rows(codes: np.ndarray) -> np.ndarray:
    """The row where each code first occurs, for codes numbered in order of first occurrence
    (as `pd.factorize` numbers them): a row starts a new code when it exceeds every code
    before it."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.empty(len(codes), dtype=bool)
    new[0] = True
    np.greater(codes[1:], np.maximum.accumulate(codes)[:-1], out=new[1:])
    return np.flatnonzero(new)


def _object_pointers(objects: np.ndarray) -> np.ndarray:
    """The object pointers a contiguous object array holds, as integers: equal exactly when
    two elements are the same object. Read from the array's buffer (what `id` returns per
    element, without touching a million objects one Python call at a time)."""
    if len(objects) == 0:
        return np.zeros(0, dtype=np.intp)
    if objects.itemsize != ctypes.sizeof(ctypes.c_ssize_t):  # not numpy's layout of pointers
        return np.fromiter(map(id, objects), dtype=np.int64, count=len(objects))
    buffer = (ctypes.c_ssize_t * len(objects)).from_address(objects.ctypes.data)
    return np.ctypeslib.as_array(buffer).copy()


def _path_groups(column: pd.Series) -> tuple[np.ndarray, pa.StringArray]:
    """Group index per journey and the distinct paths as separator-joined strings, numbered in
    order of first occurrence.

    Rows that hold the same path object (journeys built in memory repeat their list objects)
    are joined once: objects are grouped by identity first (a hash of integers), and only the
    distinct objects are joined. Python lists join fastest in Python; numpy arrays (what DuckDB
    returns for VARCHAR[]) join fastest in Arrow. The joined keys are then grouped by hash."""
    objects = np.ascontiguousarray(column.to_numpy(dtype=object))
    object_group, _ = pd.factorize(_object_pointers(objects))
    distinct = objects[_first_rows(object_group)]
    first = next((p for p in distinct if p is not None), None)
    if first is None or isinstance(first, list | tuple):
        join = PATH_SEPARATOR.join
        keys = np.array([join(p) if p is not None else "" for p in distinct], dtype=object)
    else:
        lists = pa.array(distinct, type=pa.list_(pa.string()))
        keys = pc.fill_null(pc.binary_join(lists, PATH_SEPARATOR), "").to_numpy(
            zero_copy_only=False
        )
    key_group, uniques = pd.factorize(keys)
    return key_group[object_group], pa.array(uniques, pa.string())


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
    nonempty = pc.not_equal(uniques, "").to_numpy(zero_copy_only=False)
    unattributed_conv = float(conv[~nonempty].sum())
    unattributed_value = float(value[~nonempty].sum())
    keep = nonempty & ((conv + nulls) > 0)
    # split the kept paths into touches in Arrow, then number the channels in sorted order
    split = pc.split_pattern(uniques.filter(pa.array(keep)), PATH_SEPARATOR)
    length = pc.list_value_length(split).to_numpy(zero_copy_only=False).astype(np.int64)
    touches = pc.dictionary_encode(pc.list_flatten(split))
    names = np.asarray(touches.dictionary.to_pylist(), dtype=object)
    order = np.argsort(names, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    codes = rank[touches.indices.to_numpy(zero_copy_only=False)]
    channels = names[order]
    n_kept = len(length)
    path_index = np.repeat(np.arange(n_kept), length)
    starts = np.cumsum(length) - length
    position = np.arange(len(codes)) - np.repeat(starts, length)
    return PathSet(
        channels=np.asarray(channels, dtype=object),
        codes=codes,
        path_index=path_index,
        position=position,
        length=length,
        conversions=conv[keep],
        nulls=nulls[keep],
        value=value[keep],
        unattributed_conversions=unattributed_conv,
        unattributed_value=unattributed_value,
    )
