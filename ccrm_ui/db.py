"""One DuckDB connection per app process, a cursor per query, and cached core calls.

Streamlit runs each session on its own thread; a DuckDB connection must not be shared across
threads, so every call takes its own cursor on the process-wide connection. Reads (`cached`,
`run`) hold the store's commit gate shared and writes commit through it (`write`), so a page
never sees an upload or rebuild half committed (see ccrm_core.foundation.store).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import duckdb
import streamlit as st

from ccrm_core.foundation import pipeline, store
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


def run(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run core reading function `fn(con, ...)` uncached on a fresh cursor (lookups of things
    that change without a new data version: saved segments, scenarios, the audit log)."""
    with store.reading(), cursor() as cur:
        return fn(cur, *args, **kwargs)


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
