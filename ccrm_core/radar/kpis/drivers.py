"""Why a KPI changed: the change of an additive KPI (revenue, orders, new customers) between the
view's period and a comparison period (the previous period of equal length, or the same period
last year), split by sales channel, source system or segment, and revenue's change split into
an orders effect and an order-value effect. Read from mart_kpi_daily (day x segment x channel x
source system), so a breakdown is one aggregate over a small mart, never a scan of orders.

Revenue bridge (symmetric, or midpoint, split): revenue R = orders O x average order value A.
Between a comparison period (R0 = O0 x A0) and the period (R1 = O1 x A1)

    orders effect      = (O1 - O0) x (A0 + A1) / 2
    order-value effect = (A1 - A0) x (O0 + O1) / 2

and the two add up to R1 - R0 exactly, with no interaction term left over (the interaction is
shared half and half). When one of the periods has no orders it has no average order value:
then the whole change is the orders effect. The order-value effect is computed as the change
less the orders effect, so the two add up in floating point too.

Group contributions: each group's change (its value in the period less its value in the
comparison period). Sales channels and source systems partition orders, and the segments of a
scheme partition customers (customers in no segment of the scheme are one group, "(no segment)"),
so the contributions add up to the total change.

Coverage follows the tiles (`tiles.kpi_history_days`): a comparison period the data does not
cover gives no comparison, only the period's values and a note saying why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.radar.kpis.filters import _TILE_MARTS, FilterOptions, KpiFilters, missing_stages
from ccrm_core.radar.kpis.marts import ALL
from ccrm_core.radar.kpis.saved import SAVED, Tables, built_marts, segment_tables
from ccrm_core.radar.kpis.tiles import kpi_history_days, year_earlier
from ccrm_core.radar.segments import SCHEMES

DRIVER_KPIS = {  # key: (label, unit)
    "revenue": ("Revenue", "currency"),
    "orders": ("Orders", "count"),
    "new_customers": ("New customers", "count"),
}
COMPARISONS = {
    "previous": "the previous period",
    "year_ago": "the same period last year",
}
DIMENSION_LABELS = {"channel": "Sales channel", "source_system": "Source system"}
NO_SEGMENT = "(no segment)"
GROUP_COLUMNS = ["group", "before", "now", "change", "share_of_change"]


@dataclass(frozen=True)
class ComparisonPeriod:
    """The period a KPI is compared with: `start`..`end` (inclusive), and whether the data
    covers what the KPI reads for it (`need_from`: the first day of data it needs)."""

    key: str  # 'previous' or 'year_ago'
    start: date
    end: date
    covered: bool
    need_from: date
    data_start: date

    @property
    def label(self) -> str:
        return COMPARISONS[self.key]

    def note(self) -> str:
        """Why there is no comparison ('' when there is one)."""
        if self.covered:
            return ""
        return (
            f"no comparison with {self.label}: it needs data from {_day(self.need_from)}, "
            f"data starts {_day(self.data_start)}"
        )


def _day(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def comparison_period(
    f: KpiFilters, data_start: date, data_end: date, against: str = "previous", kpi: str = "revenue"
) -> ComparisonPeriod:
    """The comparison period of view `f` for KPI `kpi`: 'previous' = the days just before the
    period, of equal length; 'year_ago' = the period of equal length that ends on the same
    calendar day a year earlier."""
    if against not in COMPARISONS:
        raise ValueError(f"unknown comparison {against!r}; one of {', '.join(COMPARISONS)}")
    start, end, p = f.bounds(data_start, data_end)
    cmp_end = start - timedelta(days=1) if against == "previous" else year_earlier(end)
    need = cmp_end - timedelta(days=kpi_history_days(kpi, p, f.active_window) - 1)
    return ComparisonPeriod(
        key=against,
        start=cmp_end - timedelta(days=p - 1),
        end=cmp_end,
        covered=need >= data_start,
        need_from=need,
        data_start=data_start,
    )


def driver_dimensions(f: KpiFilters, options: FilterOptions) -> dict[str, str]:
    """What a change can be split by in view `f`: sales channel, source system and, for the
    everyone view, each built-in segment scheme of the data (key: label). A view of one
    segment has no split by segment: the marts hold one scheme per row. Saved segments may
    overlap, so they are no split."""
    dims = dict(DIMENSION_LABELS)
    if f.scheme == ALL:
        for scheme in dict.fromkeys(s for s, _ in options.segments if s != SAVED):
            dims[scheme] = "Segment: " + SCHEMES.get(scheme, scheme.replace("_", " "))
    return dims


def revenue_bridge(
    revenue_before: float, orders_before: float, revenue_now: float, orders_now: float
) -> tuple[float, float]:
    """(orders effect, order-value effect) of the change from `revenue_before` to
    `revenue_now` (currency units), the symmetric split of the module docstring: the two add
    up to the change. Without orders on either side the whole change is the orders effect."""
    change = revenue_now - revenue_before
    if not orders_before or not orders_now:
        return change, 0.0
    aov_before, aov_now = revenue_before / orders_before, revenue_now / orders_now
    orders_effect = (orders_now - orders_before) * (aov_before + aov_now) / 2
    return orders_effect, change - orders_effect


@dataclass(frozen=True)
class KpiDrivers:
    """The change of one KPI for a view, against one comparison period, split by one
    dimension. `before`, the effects and the groups' `before`/`change` are None/NaN when the
    data does not cover the comparison period."""

    kpi: str
    dimension: str
    start: date  # the view's period
    end: date
    comparison: ComparisonPeriod
    now: float
    before: float | None
    orders_now: float
    orders_before: float | None
    groups: pd.DataFrame  # GROUP_COLUMNS, largest |change| first (by `now` without comparison)
    note: str = ""  # why the period's own value is incomplete or there is no comparison

    @property
    def change(self) -> float | None:
        return None if self.before is None else self.now - self.before

    @property
    def effects(self) -> tuple[float, float] | None:
        """(orders effect, order-value effect) of a revenue change; None for another KPI or
        without a comparison."""
        if self.kpi != "revenue" or self.before is None or self.orders_before is None:
            return None
        return revenue_bridge(self.before, self.orders_before, self.now, self.orders_now)


def _grouped(
    con: duckdb.DuckDBPyConnection,
    f: KpiFilters,
    dimension: str,
    now: tuple[date, date],
    before: tuple[date, date],
    table: Tables = built_marts,
) -> pd.DataFrame:
    """Per group of `dimension`: revenue, orders, new_customers in `now` and in `before`
    (columns <measure>_now, <measure>_before), from mart_kpi_daily."""
    if dimension in DIMENSION_LABELS:
        group, scheme, segment = dimension, f.scheme, f.segment
    else:  # a segment scheme: the view is everyone (driver_dimensions)
        group, scheme, segment = "segment", dimension, None
    sums = [
        store.exact_sum(f"CASE WHEN {flag} THEN {measure} ELSE 0 END") + f" AS {measure}_{tag}"
        for measure in DRIVER_KPIS
        for flag, tag in (("in_now", "now"), ("in_before", "before"))
    ]
    # a day may be in both periods (a custom period longer than a year against a year ago)
    sql = f"""
        WITH d AS (
            SELECT {group} AS grp, date BETWEEN ? AND ? AS in_now,
                   date BETWEEN ? AND ? AS in_before, revenue, orders, new_customers
            FROM {table("mart_kpi_daily")}
            WHERE scheme = ? AND (segment = ? OR ? IS NULL) AND (channel = ? OR ? = 'all')
              AND (source_system = ? OR ? = 'all')
        )
        SELECT grp, {", ".join(sums)} FROM d WHERE in_now OR in_before
        GROUP BY grp ORDER BY grp
    """  # noqa: S608 our SQL: column names from this module
    params = [*now, *before, scheme, segment, segment, f.channel, f.channel]
    params += [f.source_system, f.source_system]
    return con.execute(sql, params).df()


def kpi_drivers(
    con: duckdb.DuckDBPyConnection,
    f: KpiFilters,
    kpi: str = "revenue",
    dimension: str = "channel",
    against: str = "previous",
) -> KpiDrivers | None:
    """Why KPI `kpi` (a key of DRIVER_KPIS) of view `f` changed against `against` (a key of
    COMPARISONS), split by `dimension` (a key of `driver_dimensions`). None before the
    customer_kpis stage ran or without orders."""
    if kpi not in DRIVER_KPIS:
        raise ValueError(f"no driver breakdown for {kpi!r}; one of {', '.join(DRIVER_KPIS)}")
    if missing_stages(con, _TILE_MARTS):
        return None
    data_start, data_end = con.execute("SELECT data_start, data_end FROM mart_kpi_meta").fetchone()
    if data_start is None:
        return None
    if dimension not in DIMENSION_LABELS and f.scheme != ALL:
        raise ValueError(f"a view of one segment has no split by {dimension!r}")
    start, end, p = f.bounds(data_start, data_end)
    cmp = comparison_period(f, data_start, data_end, against, kpi)
    with segment_tables(con, f.scheme, f.segment) as table:
        frame = _grouped(con, f, dimension, (start, end), (cmp.start, cmp.end), table)
    if dimension not in DIMENSION_LABELS:  # customers in no segment of the scheme
        everyone = _grouped(con, f, "channel", (start, end), (cmp.start, cmp.end))
        rest = {"grp": NO_SEGMENT}
        for column in frame.columns.drop("grp"):
            rest[column] = math.fsum(everyone[column]) - math.fsum(frame[column])
        if any(abs(v) > 1e-9 for k, v in rest.items() if k != "grp"):
            frame = pd.concat([frame, pd.DataFrame([rest])], ignore_index=True)
    now_col, before_col = f"{kpi}_now", f"{kpi}_before"
    now = math.fsum(frame[now_col])
    before = math.fsum(frame[before_col]) if cmp.covered else None
    groups = pd.DataFrame({"group": frame["grp"].astype(str), "now": frame[now_col]})
    if cmp.covered:
        groups["before"] = frame[before_col]
        groups["change"] = groups["now"] - groups["before"]
        total = now - before
        groups["share_of_change"] = groups["change"] / abs(total) if total else float("nan")
        order = groups["change"].abs()
    else:
        groups["before"] = groups["change"] = groups["share_of_change"] = float("nan")
        order = groups["now"].abs()
    groups = (
        groups.assign(_order=order)
        .sort_values(["_order", "group"], ascending=[False, True], kind="stable")
        .loc[lambda g: (g["now"] != 0) | (g["before"].fillna(0) != 0)][GROUP_COLUMNS]
        .reset_index(drop=True)
    )
    notes = []
    if end - timedelta(days=kpi_history_days(kpi, p, f.active_window) - 1) < data_start:
        notes.append(f"incomplete: the period needs data from before {_day(data_start)}")
    if not cmp.covered:
        notes.append(cmp.note())
    return KpiDrivers(
        kpi=kpi,
        dimension=dimension,
        start=start,
        end=end,
        comparison=cmp,
        now=now,
        before=before,
        orders_now=math.fsum(frame["orders_now"]),
        orders_before=math.fsum(frame["orders_before"]) if cmp.covered else None,
        groups=groups,
        note="; ".join(notes),
    )
