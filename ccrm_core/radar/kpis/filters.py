"""What the command center may read and show: which marts exist (and which stage builds a
missing one), the filter options of this database, the view's filters (`KpiFilters`: a period
in days and a slice of customers) and their URL query parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from ccrm_core.foundation.validation import quoted
from ccrm_core.radar.kpis.marts import (
    ACTIVE_WINDOWS,
    ALL,
    DEFAULT_ACTIVE_WINDOW,
    SEGMENT_SCHEMES,
    STANDARD_PERIODS,
)
from ccrm_core.radar.segments import SAVED_SCHEME, SCHEMES

STAGE_OF_MART = {
    "mart_kpi_meta": "customer_kpis",
    "mart_kpi_daily": "customer_kpis",
    "mart_kpi_activity": "customer_kpis",
    "mart_kpi_reach": "customer_kpis",
    "mart_kpi_base": "customer_kpis",
    "mart_kpi_order_days": "customer_kpis",
    "mart_funnel": "radar_funnel",
    "mart_cohorts": "radar_funnel",
    "mart_journeys": "radar_funnel",
    "mart_journey_stats": "radar_funnel",
    "mart_kpi_forecast": "kpi_alerts",
    "mart_kpi_alerts": "kpi_alerts",
}


def existing_tables(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> set[str]:
    """Which of `names` exist as tables or views (one catalog query, not one per name)."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_name IN (SELECT unnest(?::VARCHAR[]))",
        [list(names)],
    ).fetchall()
    return {r[0] for r in rows}


def missing_stages(con: duckdb.DuckDBPyConnection, marts: tuple[str, ...]) -> list[str]:
    """Build stages to run so that `marts` exist (empty when all exist)."""
    present = existing_tables(con, marts)
    return list(dict.fromkeys(STAGE_OF_MART[m] for m in marts if m not in present))


_TILE_MARTS = (
    "mart_kpi_meta",
    "mart_kpi_daily",
    "mart_kpi_activity",
    "mart_kpi_base",
    "mart_kpi_order_days",
    "mart_kpi_reach",
)


@dataclass(frozen=True)
class FilterOptions:
    """What the filters may choose from in this database."""

    data_start: date | None
    data_end: date | None
    channels: tuple[str, ...] = ()
    source_systems: tuple[str, ...] = ()
    # (scheme, segment), without ('all', 'all'); saved segments ('saved', name) last, added by
    # `saved.with_saved_segments` (they change without a build)
    segments: tuple[tuple[str, str], ...] = ()
    missing: tuple[str, ...] = ()  # stages to run before the tiles can show

    @property
    def ready(self) -> bool:
        return not self.missing and self.data_end is not None


def filter_options(con: duckdb.DuckDBPyConnection) -> FilterOptions:
    """Channels, source systems, segments and the data's date range, from the marts."""
    missing = tuple(missing_stages(con, _TILE_MARTS))
    if missing:
        return FilterOptions(None, None, missing=missing)
    start, end = con.execute("SELECT data_start, data_end FROM mart_kpi_meta").fetchone()
    if start is None:
        end = None  # no orders yet: nothing to show
    dims = con.execute(
        "SELECT DISTINCT channel, source_system FROM mart_kpi_daily WHERE scheme = 'all'"
    ).fetchall()
    segments = con.execute(
        "SELECT DISTINCT scheme, segment FROM mart_kpi_base WHERE scheme <> 'all' "
        "ORDER BY scheme, segment"
    ).fetchall()
    order = {s: i for i, s in enumerate(SEGMENT_SCHEMES)}
    segments.sort(key=lambda r: (order.get(r[0], 99), r[0], r[1]))
    return FilterOptions(
        data_start=start,
        data_end=end,
        channels=tuple(sorted({c for c, _ in dims})),
        source_systems=tuple(sorted({s for _, s in dims})),
        segments=tuple((a, b) for a, b in segments),
    )


def segment_label(scheme: str, segment: str) -> str:
    """A segment choice in words: 'Everyone', 'RFM segment: Champions', 'Saved: <name>'."""
    if scheme == ALL:
        return "Everyone"
    if scheme == SAVED_SCHEME:
        return f"Saved: {segment}"
    return f"{SCHEMES.get(scheme, scheme.replace('_', ' '))}: {segment}"


@dataclass(frozen=True)
class KpiFilters:
    """The command center's view: a period and a slice of customers.

    `period` is '7', '30', '90', '365' (days up to the data end) or 'custom' (`start`..`end`,
    inclusive). `scheme`/`segment` pick today's members of a segment ('all'/'all' = everyone;
    'saved'/name = a saved rule segment);
    `channel` is a sales channel, `source_system` the system that took the order;
    `active_window` (days) defines an active customer.
    """

    period: str = "30"
    start: date | None = None
    end: date | None = None
    scheme: str = ALL
    segment: str = ALL
    channel: str = ALL
    source_system: str = ALL
    active_window: int = DEFAULT_ACTIVE_WINDOW

    def bounds(self, data_start: date, data_end: date) -> tuple[date, date, int]:
        """(first day, last day, days) of the current period, clamped to the data."""
        if self.period == "custom" and self.start and self.end:
            start, end = sorted((self.start, self.end))
            end = min(max(end, data_start), data_end)
            start = min(max(start, data_start), end)
        else:
            days = int(self.period) if str(self.period).isdigit() else 30
            end = data_end
            start = end - timedelta(days=days - 1)
        return start, end, (end - start).days + 1


def filters_to_params(f: KpiFilters) -> dict[str, str]:
    """URL query parameters for a view (defaults left out, so links stay short)."""
    d = KpiFilters()
    out: dict[str, str] = {}
    if f.period != d.period:
        out["period"] = f.period
    if f.period == "custom":
        if f.start:
            out["start"] = f.start.isoformat()
        if f.end:
            out["end"] = f.end.isoformat()
    if (f.scheme, f.segment) != (ALL, ALL):
        out["segment"] = f"{f.scheme}:{f.segment}"
    if f.channel != ALL:
        out["channel"] = f.channel
    if f.source_system != ALL:
        out["source"] = f.source_system
    if f.active_window != d.active_window:
        out["window"] = str(f.active_window)
    return out


def _parse_date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def filters_from_params(
    params: Mapping[str, str], options: FilterOptions
) -> tuple[KpiFilters, list[str]]:
    """A view from URL query parameters; unknown values fall back to the default and are named
    in the returned warnings, quoted and shortened (a link from another database must not break
    the page, and a 100,000-character parameter must not fill it)."""
    warnings: list[str] = []
    kw: dict = {}
    period = params.get("period")
    if period:
        if period in {str(p) for p in STANDARD_PERIODS}:
            kw["period"] = period
        elif period == "custom":
            start, end = _parse_date(params.get("start")), _parse_date(params.get("end"))
            if start and end:
                kw.update(period="custom", start=start, end=end)
            else:
                got = {k: quoted(params.get(k, "")) for k in ("start", "end")}
                warnings.append(
                    "period=custom needs start and end as YYYY-MM-DD "
                    f"(got start={got['start']}, end={got['end']}); showing the last 30 days"
                )
        else:
            warnings.append(
                f"period={quoted(period)} is not one of 7, 30, 90, 365, custom; using 30"
            )
    segment = params.get("segment")
    if segment:
        scheme, _, name = segment.partition(":")
        if (scheme, name) in options.segments:
            kw.update(scheme=scheme, segment=name)
        elif scheme == SAVED_SCHEME:
            warnings.append(
                f"segment={quoted(segment)}: there is no saved segment {quoted(name)} (deleted or "
                "renamed since the link was made); showing all customers"
            )
        else:
            warnings.append(f"segment={quoted(segment)} is not in this data; showing all customers")
    for key, attr, choices in (
        ("channel", "channel", options.channels),
        ("source", "source_system", options.source_systems),
    ):
        value = params.get(key)
        if value and value != ALL:
            if value in choices:
                kw[attr] = value
            else:
                warnings.append(f"{key}={quoted(value)} is not in this data; showing all")
    window = params.get("window")
    if window:
        if window in {str(w) for w in ACTIVE_WINDOWS}:
            kw["active_window"] = int(window)
        else:
            warnings.append(
                f"window={quoted(window)} is not one of {', '.join(map(str, ACTIVE_WINDOWS))}; "
                f"using {DEFAULT_ACTIVE_WINDOW}"
            )
    return KpiFilters(**kw), warnings
