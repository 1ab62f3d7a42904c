"""Arrow column builders of the generator: vectorised strings (pyarrow large_string everywhere,
fixed-width byte matrices for ids and digits), categories, dates, timestamps, and the DataFrames
over them. No randomness here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_LUT4 = np.frombuffer(b"".join(b"%04d" % i for i in range(10000)), dtype=np.uint32)  # 4 digits
_HEX2 = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint8).reshape(256, 2)
_LS = pa.large_string()


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 ASCII digits of non-negative integers, zero padded on the left."""
    v = np.asarray(values, dtype=np.int64).copy()
    chunks = -(-width // 4)
    out = np.empty((len(v), chunks), dtype=np.uint32)  # 4 ASCII bytes per uint32
    for j in range(chunks - 1, -1, -1):
        out[:, j] = _LUT4[v % 10000]
        v //= 10000
    return out.view(np.uint8).reshape(len(v), chunks * 4)[:, chunks * 4 - width :]


def _fixed(matrix: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """One string per row of an (n, w) uint8 byte matrix (zero copy into an arrow array).

    With `valid` (bool, length N >= n, n = valid.sum()), the matrix holds only the valid rows and
    the result has N rows, NULL where not valid (nulls take no bytes)."""
    mat = np.ascontiguousarray(matrix, dtype=np.uint8)
    n, w = mat.shape
    if valid is None:
        offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(mat))
    valid = np.asarray(valid, dtype=bool)
    offsets = np.zeros(valid.size + 1, dtype=np.int64)
    np.cumsum(valid * w, out=offsets[1:])
    bitmap = np.packbits(valid, bitorder="little")
    return pa.LargeStringArray.from_buffers(
        valid.size,
        pa.py_buffer(offsets),
        pa.py_buffer(mat),
        pa.py_buffer(bitmap),
        null_count=int(valid.size - valid.sum()),
    )


def _prefixed(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """'EC' + zero-padded number, e.g. _prefixed('EC', [12], 8) -> 'EC00000012'."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    mat = np.empty((len(numbers), len(head) + width), dtype=np.uint8)
    mat[:, : len(head)] = head
    mat[:, len(head) :] = _digits(numbers, width)
    return _fixed(mat)


def _template(template: str, digits: np.ndarray) -> pa.Array:
    """Fill the 'd' placeholders of a template, left to right, from an (n, k) digit matrix."""
    raw = template.encode()
    out = np.empty((digits.shape[0], len(raw)), dtype=np.uint8)
    out[:] = np.frombuffer(raw, dtype=np.uint8)
    positions = [i for i, ch in enumerate(template) if ch == "d"]
    out[:, positions] = digits
    return _fixed(out)


def _vocab(values) -> pa.Array:
    return pa.array(list(values), type=_LS)


def _take(values, idx: np.ndarray) -> pa.Array:
    """values[idx] as strings; idx < 0 gives NULL."""
    arr = values if isinstance(values, pa.Array) else _vocab(values)
    idx = np.asarray(idx)
    neg = idx < 0
    indices = pa.array(np.where(neg, 0, idx).astype(np.int64), mask=neg if neg.any() else None)
    return arr.take(indices)


def _s(value: str) -> pa.Scalar:
    return pa.scalar(value, type=_LS)


def _join(*parts) -> pa.Array:
    """Element-wise concatenation; any NULL part makes the result NULL."""
    args = [_s(p) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, _s(""))


def _int_str(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), _LS)


def _select(mask: np.ndarray, when_true, when_false) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), when_true, when_false)


def _null_where(mask: np.ndarray, arr: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), pa.scalar(None, arr.type), arr)


def _dictionary(codes: np.ndarray, labels) -> pa.DictionaryArray:
    """Categorical column: int codes into labels, code < 0 = NULL."""
    codes = np.asarray(codes)
    neg = codes < 0
    indices = pa.array(np.where(neg, 0, codes).astype(np.int32), mask=neg if neg.any() else None)
    return pa.DictionaryArray.from_arrays(indices, _vocab(labels))


def _timestamps(seconds: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    micros = np.asarray(seconds, dtype=np.int64) * 1_000_000
    return pa.array(micros, type=pa.timestamp("us"), mask=null)


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32), type=pa.date32())


def _frame(columns: dict[str, pa.Array | np.ndarray]) -> pd.DataFrame:
    """A DataFrame over arrow columns: strings -> str dtype, dictionaries -> category,
    dates/timestamps -> datetime64 (dates at midnight)."""
    return pa.table(columns).to_pandas(date_as_object=False)


def _assemble(n: int, pieces: list[tuple[np.ndarray, pa.Array]]) -> pa.Array:
    """Scatter string pieces (row indices, values) into one array of n rows."""
    idx = np.concatenate([p[0] for p in pieces])
    arr = pa.concat_arrays([p[1].cast(_LS) for p in pieces])
    inverse = np.empty(n, dtype=np.int64)
    inverse[idx] = np.arange(idx.size)
    return arr.take(pa.array(inverse))
