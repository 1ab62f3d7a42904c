"""Saved rule segments in the command center (scheme 'saved', segment = the saved name).

The built-in segments (RFM segment, value tier, needs segment) are built into the segment marts
by the customer_kpis and radar_funnel stages. A saved segment changes without a build (saving,
editing and deleting one do not touch the data version), so its rows of those marts are
computed when a view asks for them: today's members from its rules (parameterised SQL from
ccrm_core.radar.segments, never user text in SQL), then the marts' own SELECTs over those
members (`marts.over_segments`), so a saved segment and a built-in segment with the same
members give the same numbers. The rows are kept per database file, data version and the
segment's SQL and parameters (a redefined segment gets new rows), a few at a time.

Readers take the mart names through `segment_tables`: inside it, a mart name maps to the mart
with the saved segment's rows added (registered on that connection only).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import duckdb
import pyarrow as pa

from ccrm_core.foundation import pipeline, store
from ccrm_core.radar import segments
from ccrm_core.radar.kpis import marts
from ccrm_core.radar.kpis.filters import FilterOptions, existing_tables

SAVED = segments.SAVED_SCHEME
_MEMBERS = "_ccrm_saved_members"
_CACHE_SIZE = 8
_cache: OrderedDict[tuple, dict[str, pa.Table]] = OrderedDict()
_lock = threading.Lock()

# mart -> the SELECT that builds its rows from mart_kpi_segments (see marts)
_SELECTS = {
    "mart_kpi_daily": marts.KPI_DAILY_SELECT,
    "mart_kpi_reach": marts.KPI_REACH_SELECT,
    "mart_kpi_base": marts.KPI_BASE_SELECT,
    "mart_cohorts": marts.COHORTS_SELECT,
}
SLICE_MARTS = (
    "mart_kpi_segments",
    *_SELECTS,
    "mart_kpi_activity",
    "mart_funnel",
    "mart_journeys",
    "mart_journey_stats",
)


def saved_segment_names(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """Saved segments the command center can show: those whose rules apply to this data's
    mart_customer (a rule on a column a rebuild dropped is left out), by name."""
    if not store.table_exists(con, "mart_customer"):
        return ()
    saved = segments.saved_segments(con)
    names = []
    for name, rules, match in zip(saved["name"], saved["rules"], saved["match"], strict=True):
        try:
            segments.rules_where(con, rules, match)
        except segments.RuleError:
            continue
        names.append(name)
    return tuple(sorted(names, key=lambda n: (n.casefold(), n)))


def with_saved_segments(options: FilterOptions, names: tuple[str, ...]) -> FilterOptions:
    """`options` with the saved segments `names` after the built-in segments."""
    if not options.ready:
        return options
    built = tuple(s for s in options.segments if s[0] != SAVED)
    return replace(options, segments=built + tuple((SAVED, n) for n in names))


def _cache_key(con: duckdb.DuckDBPyConnection, name: str, cond: str, params: list) -> tuple | None:
    path = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    if not path or not path[0][0]:
        return None  # an in-memory database: nothing to tell two apart by
    return (path[0][0], store.data_version(con), name, cond, tuple(map(repr, params)))


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pa.Table:
    return con.sql(sql, params=params or None).to_arrow_table()


def _compute(con: duckdb.DuckDBPyConnection, name: str, cond: str, params: list) -> dict:
    present = existing_tables(con, SLICE_MARTS)
    as_of = pipeline.data_end_date(con)  # the build's as_of: the last order or event day
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_MEMBERS} AS "  # noqa: S608 our names; rules from rules_where
        "SELECT DISTINCT customer_id, CAST(? AS VARCHAR) AS scheme, CAST(? AS VARCHAR) AS segment "
        f"FROM mart_customer WHERE {cond or 'TRUE'}",
        [SAVED, name, *params],
    )
    out: dict[str, pa.Table] = {}
    try:
        if "mart_kpi_segments" in present:
            out["mart_kpi_segments"] = _arrow(con, f"SELECT * FROM {_MEMBERS}")  # noqa: S608
        for mart, select in _SELECTS.items():
            if mart in present:
                out[mart] = _arrow(con, marts.over_segments(select, _MEMBERS))
        if "mart_kpi_activity" in present:
            windows = [
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT window_days FROM mart_kpi_activity"
                ).fetchall()
            ]
            select = marts.over_segments(marts.KPI_ACTIVITY_SELECT, _MEMBERS)
            out["mart_kpi_activity"] = _arrow(con, select, [windows, as_of])
        if "mart_funnel" in present:
            out["mart_funnel"] = _funnel(con, as_of)
        if {"mart_journeys", "mart_journey_stats"} <= present:
            con.execute(marts.journeys_sql(_MEMBERS), [marts.JOURNEY_LOOKBACK_DAYS])
            try:
                for mart, select in (
                    ("mart_journeys", marts.JOURNEYS_BY_SEGMENT_SELECT),
                    ("mart_journey_stats", marts.JOURNEY_STATS_SELECT),
                ):
                    out[mart] = _arrow(con, marts.over_segments(select, _MEMBERS))
            finally:
                con.execute("DROP TABLE IF EXISTS _journeys")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_MEMBERS}")
    return out


def _funnel(con: duckdb.DuckDBPyConnection, as_of) -> pa.Table:
    """mart_funnel's rows for the members: today's membership, the built periods and loyalty
    threshold (the default for a mart built before it was stored)."""
    periods = [r[0] for r in con.execute("SELECT DISTINCT period_days FROM mart_funnel").fetchall()]
    has_loyal = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_name = 'mart_funnel' AND column_name = 'loyal_min_orders'"
    ).fetchall()[0][0]
    loyal = None
    if has_loyal:
        loyal = con.execute("SELECT max(loyal_min_orders) FROM mart_funnel").fetchall()[0][0]
    loyal = int(loyal) if loyal is not None else marts.LOYAL_MIN_ORDERS
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _funnel_segments AS "  # noqa: S608 our names
        "SELECT p.period_days, s.customer_id, s.scheme, s.segment, 'today' AS membership "
        f"FROM {_MEMBERS} s, (SELECT unnest(?::INTEGER[]) AS period_days) p",
        [periods],
    )
    try:
        return _arrow(con, marts.FUNNEL_SELECT, [as_of, as_of, as_of, loyal, loyal])
    finally:
        con.execute("DROP TABLE IF EXISTS _funnel_segments")


def saved_slice(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, pa.Table]:
    """The saved segment `name`'s rows of the segment marts (mart -> rows; only marts that
    exist), scheme 'saved'. Raises RuleError naming the segment when it is not saved or its
    rules no longer apply."""
    cond, params = segments.saved_segment_where(con, name)
    key = _cache_key(con, name, cond, params)
    if key is not None:
        with _lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    tables = _compute(con, name, cond, params)
    if key is not None:
        with _lock:
            _cache[key] = tables
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return tables


Tables = Callable[[str], str]  # mart name -> the SQL relation to read it from


def built_marts(mart: str) -> str:
    """`Tables` of a view of everyone or a built-in segment: the marts themselves."""
    return mart


@contextmanager
def segment_tables(
    con: duckdb.DuckDBPyConnection, scheme: str, segment: str | None
) -> Iterator[Tables]:
    """Yields `table(mart)`: the SQL relation to read `mart` from for a view of `scheme` /
    `segment`. The mart itself for everyone and built-in segments; for a saved segment, the
    mart with that segment's rows added (see `saved_slice`), on this connection only."""
    if scheme != SAVED or segment is None:
        yield built_marts
        return
    tables = saved_slice(con, segment)
    views: dict[str, str] = {}
    try:
        for mart, rows in tables.items():
            view = f"_ccrm_saved_{mart}"
            con.register(view, rows)
            views[mart] = view

        def table(mart: str) -> str:
            if mart not in views:
                return mart
            return f"(SELECT * FROM {mart} UNION ALL BY NAME SELECT * FROM {views[mart]})"  # noqa: S608 our names

        yield table
    finally:
        if views:
            con.complete()  # a caller's fetchone leaves its result open (duckdb 2)
        for view in views.values():
            con.unregister(view)
