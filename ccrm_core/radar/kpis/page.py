"""The command center page's data for one view, the same calls the page makes (one per
section), and the bench that times them (`ccrm bench --only command_center`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import duckdb
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.radar.kpis.drivers import KpiDrivers, kpi_drivers
from ccrm_core.radar.kpis.filters import FilterOptions, KpiFilters, filter_options
from ccrm_core.radar.kpis.marts import ALL
from ccrm_core.radar.kpis.queries import (
    alerts_near_period,
    cohort_retention,
    first_purchase_paths,
    first_purchase_summary,
    funnel_by_segment,
    funnel_scheme,
    kpi_alerts,
    kpi_forecast,
    monitored_channels,
    path_length_distribution,
    time_to_convert_distribution,
)
from ccrm_core.radar.kpis.saved import SAVED, saved_segment_names, with_saved_segments
from ccrm_core.radar.kpis.tiles import KpiTile, kpi_tiles


@dataclass
class CommandCenterView:
    """Everything the command center page shows for one view (for benches and tests)."""

    filters: KpiFilters
    options: FilterOptions
    tiles: list[KpiTile] = field(default_factory=list)
    funnel: pd.DataFrame | None = None
    cohorts: pd.DataFrame | None = None
    paths: pd.DataFrame | None = None
    first_purchases: dict | None = None  # customers, tracked, untracked (first_purchase_summary)
    path_lengths: pd.DataFrame | None = None
    time_to_convert: pd.DataFrame | None = None
    forecast: pd.DataFrame | None = None
    alerts: pd.DataFrame | None = None  # every alert, newest first
    period_alerts: pd.DataFrame | None = None  # those in or just before the period, with age
    drivers: KpiDrivers | None = None  # why revenue changed, by sales channel (the panel's default)


def command_center(
    con: duckdb.DuckDBPyConnection,
    filters: KpiFilters | None = None,
    metric: str = "revenue",
    grain: str = "day",
) -> CommandCenterView:
    """The whole page's data for a view, the same calls the page makes (one per section)."""
    f = filters or KpiFilters()
    opts = with_saved_segments(filter_options(con), saved_segment_names(con))
    view = CommandCenterView(f, opts)
    if not opts.ready:
        return view
    first, last, p = f.bounds(opts.data_start, opts.data_end)
    trend_channel = f.channel if f.channel in monitored_channels(con) else ALL
    view.tiles = kpi_tiles(con, f)
    view.funnel = funnel_by_segment(
        con, p, funnel_scheme(f, opts), f.segment if f.scheme == SAVED else None
    )
    view.cohorts = cohort_retention(con, f.scheme, f.segment)
    view.paths = first_purchase_paths(con, f.scheme, f.segment)
    view.first_purchases = first_purchase_summary(con, f.scheme, f.segment)
    view.path_lengths = path_length_distribution(con, f.scheme, f.segment)
    view.time_to_convert = time_to_convert_distribution(con, f.scheme, f.segment)
    view.forecast = kpi_forecast(con, metric, trend_channel, grain)
    view.alerts = kpi_alerts(con, limit=None)
    view.period_alerts = alerts_near_period(view.alerts, first, last, opts.data_end)
    view.drivers = kpi_drivers(con, f)
    return view


# ---------------------------------------------------------------------------------------------
# Bench (`ccrm bench --only command_center`)


def _page_calls(f: KpiFilters, view: CommandCenterView) -> list:
    """The cached results one page run reads (one st.cache_data entry each)."""
    return [
        view.options,
        view.tiles,
        view.alerts,
        view.forecast,
        view.funnel,
        view.cohorts,
        view.paths,
        view.first_purchases,
        view.path_lengths,
        view.time_to_convert,
        view.drivers,
        ["all"],  # monitored_channels
    ]


def bench_command_center(ctx) -> tuple[int, dict]:
    """Full uncached page computations for several views (first one on a cold connection),
    then the cached rerun: per cached call, the data-version query the cache key needs plus
    unpickling the stored result (what st.cache_data does on a hit).
    Figures: uncached_cold_ms, uncached_p50_ms, uncached_max_ms, cached_p50_ms."""
    import pickle
    import statistics
    import time

    con = store.connect_reader(ctx.db)
    try:
        opts = filter_options(con)
        seg = opts.segments[0] if opts.segments else (ALL, ALL)
        views = [
            KpiFilters(),
            KpiFilters(period="7"),
            KpiFilters(period="365", channel=opts.channels[0] if opts.channels else ALL),
            KpiFilters(period="90", scheme=seg[0], segment=seg[1], active_window=90),
            KpiFilters(
                period="custom",
                start=opts.data_end - timedelta(days=44),
                end=opts.data_end - timedelta(days=5),
            ),
        ]
        uncached, blobs = [], []
        for f in views:
            t0 = time.perf_counter()
            view = command_center(con, f)
            uncached.append((time.perf_counter() - t0) * 1000)
            blobs.append([pickle.dumps(r) for r in _page_calls(f, view)])
        cached = []
        for _ in range(5):
            for page in blobs:
                t0 = time.perf_counter()
                for blob in page:
                    store.data_version(con)
                    pickle.loads(blob)
                cached.append((time.perf_counter() - t0) * 1000)
        customers = con.execute("SELECT count(*) FROM mart_customer_kpis").fetchone()[0]
    finally:
        con.close()
    return customers, {
        "uncached_cold_ms": round(uncached[0], 1),
        "uncached_p50_ms": round(statistics.median(uncached[1:]), 1),
        "uncached_max_ms": round(max(uncached[1:]), 1),
        "cached_p50_ms": round(statistics.median(cached), 2),
    }
