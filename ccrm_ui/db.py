"""One DuckDB connection per app process, a cursor per query, and cached core calls.

Streamlit runs each session on its own thread; a DuckDB connection must not be shared across
threads, so every call takes its own cursor on the process-wide connection. Reads (`cached`,
`run`) hold the store's commit gate shared and writes commit through it (`write`), so a page
never sees an upload or rebuild half committed (see ccrm_core.foundation.store).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import streamlit as st

from ccrm_core.foundation import formatting, pipeline, store
from ccrm_core.foundation.rendering import markdown_text


@st.cache_resource(show_spinner=False)
def _connection(path: str) -> duckdb.DuckDBPyConnection:
    return store.connect_app(path)


def database_path() -> str:
    return str(store.database_path())


def connection() -> duckdb.DuckDBPyConnection:
    """The process-wide connection; stops the page with a clear message if the file is busy."""
    try:
        return _connection(database_path())
    except store.DatabaseBusyError as exc:
        st.error(markdown_text(exc))
        st.stop()
    except Exception as exc:  # noqa: BLE001 - any open failure is shown, never a traceback
        st.error(
            f"Could not open the database {markdown_text(database_path())}: {markdown_text(exc)}"
        )
        st.stop()


@contextmanager
def cursor():
    cur = connection().cursor()
    try:
        yield cur
    finally:
        cur.close()


def data_version() -> str:
    with store.reading(), cursor() as cur:
        return store.data_version(cur)


@st.cache_data(show_spinner=False, max_entries=512, ttl=3600)
def _run_cached(
    _fn: Callable, name: str, database: str, version: str, args: tuple, kwargs: tuple
) -> Any:
    with store.reading(), cursor() as cur:
        return _fn(cur, *args, **dict(kwargs))


def cached(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run core function `fn(con, *args, **kwargs)` once per data version and arguments.

    The cache key is the function's qualified name, the database file, the data version (it
    changes with every ingest and build) and the arguments, so results never outlive the data
    they came from.
    """
    name = f"{fn.__module__}.{fn.__qualname__}"
    key_args = (name, database_path(), data_version(), args, tuple(sorted(kwargs.items())))
    return _run_cached(fn, *key_args)


def cached_with(marker: Callable, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """`cached`, for results that also change without a new data version: the cache key holds
    `marker(con)` too, a cheap reading function that changes when they do (e.g. the number of
    audience exports), read uncached on each call."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    version = f"{data_version()}|{run(marker)}"
    key_args = (name, database_path(), version, args, tuple(sorted(kwargs.items())))
    return _run_cached(fn, *key_args)


def run(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run core reading function `fn(con, ...)` uncached on a fresh cursor (lookups of things
    that change without a new data version: saved segments, scenarios, the audit log)."""
    with store.reading(), cursor() as cur:
        return fn(cur, *args, **kwargs)


def _fingerprint(obj: Any, h: Any) -> None:
    """Feed `obj`'s full content (every row of a frame, not a sample) into the hash `h`."""
    if isinstance(obj, pd.DataFrame):
        h.update(b"F" + repr((list(map(str, obj.columns)), list(map(str, obj.dtypes)))).encode())
        h.update(pd.util.hash_pandas_object(obj, index=True).to_numpy().tobytes())
    elif isinstance(obj, pd.Series):
        h.update(b"S" + repr((str(obj.name), str(obj.dtype))).encode())
        h.update(pd.util.hash_pandas_object(obj, index=True).to_numpy().tobytes())
    elif isinstance(obj, np.ndarray):
        h.update(b"A" + repr((obj.dtype.str, obj.shape)).encode() + obj.tobytes())
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{type(obj).__name__}{len(obj)}".encode())
        for item in obj:
            _fingerprint(item, h)
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k, v in obj.items():
            _fingerprint(k, h)
            _fingerprint(v, h)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        h.update(f"C{type(obj).__module__}.{type(obj).__qualname__}".encode())
        for field in dataclasses.fields(obj):
            _fingerprint(field.name, h)
            _fingerprint(getattr(obj, field.name), h)
    elif obj is None or isinstance(obj, (str, int, float, bool)):
        h.update(f"P{type(obj).__name__}:{obj!r}".encode())
    else:
        h.update(b"O" + pickle.dumps(obj, protocol=5))


@st.cache_resource(show_spinner=False)
def _memo_store() -> dict:
    return {"lock": threading.Lock(), "entries": OrderedDict()}


MEMO_ENTRIES = 256


def memo(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` for a pure function of its arguments (a chart or a derived table
    built from what `cached` returned), built once per process for the same argument content.

    The key hashes every argument in full (frames row by row), the function's qualified name and
    the currency setting (charts and tables format money with it), so a result never outlives the
    data it was built from. The result is kept as is, not copied, and shared by every session:
    never change it in place (st.plotly_chart and tables.show_table do not).
    """
    h = hashlib.blake2b(digest_size=20)
    try:
        _fingerprint(
            (f"{fn.__module__}.{fn.__qualname__}", os.environ.get(formatting.CURRENCY_VARIABLE),
             args, tuple(sorted(kwargs.items()))),
            h,
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - an argument that cannot be hashed: build it, uncached
        return fn(*args, **kwargs)
    key = h.digest()
    memo_store = _memo_store()
    with memo_store["lock"]:
        entries = memo_store["entries"]
        if key in entries:
            entries.move_to_end(key)
            return entries[key]
    result = fn(*args, **kwargs)
    with memo_store["lock"]:
        entries[key] = result
        while len(entries) > MEMO_ENTRIES:
            entries.popitem(last=False)
    return result


def write(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run core function `fn(con, ...)` that writes (it commits through store.transaction)."""
    with cursor() as cur:
        return fn(cur, *args, **kwargs)


def read_only() -> bool:
    with cursor() as cur:
        return store.is_read_only(cur)


def missing_output(what: str, stages: list[str], inputs: str) -> str:
    """Why a page has no `what` to show: the build stages to run when they never completed, or,
    when they did, that the data they read was missing (`inputs`: what to load)."""
    todo = [s for s in stages if s not in cached(pipeline.completed_stages)]
    if todo:
        names = " and ".join(f"`{s}`" for s in todo)
        command = " ".join(f"--stage {s}" for s in todo)
        return (
            f"No {what} yet. Run the {names} build stage{'s' if len(todo) > 1 else ''} "
            f"(`ccrm build {command}`, or **Rebuild** on the Data page)."
        )
    return f"No {what}: the last build had no data for it. Load {inputs}, then rebuild."


@st.cache_resource(show_spinner=False)
def _write_locks() -> dict:
    return {"lock": threading.Lock(), "holder": None}


@contextmanager
def write_lock(what: str):
    """One write (upload or rebuild) at a time per app process; others get a clear message."""
    locks = _write_locks()
    if not locks["lock"].acquire(blocking=False):
        st.warning(
            f"Another {locks['holder'] or 'write'} is running in this app right now; "
            "try again when it has finished."
        )
        st.stop()
    locks["holder"] = what
    try:
        yield
    finally:
        locks["holder"] = None
        locks["lock"].release()
