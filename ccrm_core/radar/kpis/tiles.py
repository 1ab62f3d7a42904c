"""The command center's KPI tiles: for one view (`KpiFilters`), each KPI's value over the
period, its value over the previous period of equal length and a sparkline, read from the
customer_kpis marts (day grain; money in currency units). Also the value formatting the tiles
and alert messages share.

Coverage: a KPI measured on day d reads a span of days up to d (`_ViewSeries.history`): the
period for sums, the active window for active customers, and the period plus the active window
for KPIs that need to know who bought before the period (new customers, repeat rate, retention,
churn). When the data starts inside that span for the previous period, the tile shows no change
and says why (a previous period that starts on the first day of data would count every buyer as
new); sparkline points without the span are left out, and a current value without it says so.
The same rule decides the comparison with the same period last year (`year_earlier`): the
period of equal length ending on the same calendar day a year before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np

from ccrm_core.foundation import formatting, store
from ccrm_core.radar.kpis.filters import _TILE_MARTS, KpiFilters, missing_stages
from ccrm_core.radar.kpis.marts import ALL, activity_windows
from ccrm_core.radar.kpis.saved import Tables, built_marts, segment_tables


def _format_value(value: float | None, unit: str, compact: bool = False) -> str:
    """Display of a KPI value: counts and money with k/M (from 1,000 when `compact`), ratios as
    percent, scores with one decimal."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "score":
        return f"{value:.1f}"
    a = abs(value)
    if a >= 1e6:
        text = f"{value / 1e6:.2f}M"
    elif a >= 1e4:
        text = f"{value / 1e3:.1f}k"
    elif a >= 1e3 and compact:
        text = f"{value / 1e3:.1f}k"
    elif unit == "currency" and a < 1000:
        text = f"{value:,.2f}"
    else:
        text = f"{value:,.0f}"
    if unit == "currency":  # the symbol of CCRM_CURRENCY, after a minus sign
        symbol = formatting.currency().symbol
        text = f"-{symbol}{text[1:]}" if text.startswith("-") else f"{symbol}{text}"
    return text


format_value = _format_value


def format_change(change: float, unit: str) -> str:
    """A change of a KPI with its sign: '+86.25', '-1,234', '-10.0k'."""
    return ("+" if change >= 0 else "-") + _format_value(abs(change), unit)


@dataclass(frozen=True)
class KpiTile:
    """One KPI for the current view: value, value in the previous period of equal length and a
    sparkline (the KPI evaluated at evenly spaced past dates, oldest first)."""

    key: str
    label: str
    unit: str  # count, currency, ratio (0..1), score (0..100)
    value: float | None
    previous: float | None = None
    sparkline: tuple[float, ...] = ()
    help: str = ""
    higher_is_better: bool = True
    note: str = ""  # why a value or its change is missing or incomplete (shown on the tile)
    year_ago: float | None = None  # the same period last year, where the data covers it

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def change_pct(self) -> float | None:
        if self.change is None or not self.previous:
            return None
        return self.change / abs(self.previous)

    def delta_text(self) -> str | None:
        """'+1,234 (+5.0%)', or '+1.2 pp' for ratios; None when there is nothing to compare."""
        return _delta_text(self.value, self.previous, self.unit)

    def year_ago_text(self) -> str | None:
        """The change against the same period last year, as `delta_text`; None when the data
        does not cover that period or the KPI is a snapshot."""
        return _delta_text(self.value, self.year_ago, self.unit)

    @property
    def display(self) -> str:
        return _format_value(self.value, self.unit)


def _delta_text(value: float | None, base: float | None, unit: str) -> str | None:
    """'+1,234 (+5.0%)' from `base` to `value`, or '+1.2 pp' for ratios; None without both."""
    if value is None or base is None:
        return None
    c = value - base
    if not math.isfinite(c):
        return None
    if unit == "ratio":
        return f"{c * 100:+.1f} pp"
    if unit == "score":
        return f"{c:+.1f}"
    text = ("+" if c >= 0 else "-") + _format_value(abs(c), unit, compact=True)
    if base:  # whole percent from 10% on, so the tile's delta stays short
        pct = c / abs(base)
        text += f" ({pct:+.0%})" if abs(pct) >= 0.1 else f" ({pct:+.1%})"
    return text


def year_earlier(d: date) -> date:
    """The same calendar day a year before `d` (29 February: the 28th)."""
    try:
        return d.replace(year=d.year - 1)
    except ValueError:
        return d.replace(year=d.year - 1, day=28)


def kpi_history_days(key: str, period_days: int, active_window: int) -> int:
    """Days of data up to the day measured that KPI `key` reads: the period for sums, the active
    window for active customers, the period plus the active window for KPIs that need to know
    who bought before the period (see the module docstring)."""
    p, w = period_days, active_window
    return {
        "active_customers": w,
        "new_customers": p + w,
        "repeat_rate": p + w,
        "retention_rate": p + w,
        "churn_rate": p + w,
        "revenue_per_active": max(p, w),
    }.get(key, p)


def _slice_where(f: KpiFilters) -> tuple[str, list]:
    """WHERE clause for mart_kpi_daily's additive rows (base grain: no 'all' rows)."""
    return (
        "scheme = ? AND segment = ? AND (channel = ? OR ? = 'all') "
        "AND (source_system = ? OR ? = 'all')",
        [f.scheme, f.segment, f.channel, f.channel, f.source_system, f.source_system],
    )


class _Cum:
    """Cumulative sums of daily series over data_start..data_end for O(1) window sums."""

    def __init__(self, data_start: date, days: int):
        self.start = data_start
        self.days = days

    def index(self, d: date) -> int:
        return (d - self.start).days

    def at(self, cum: np.ndarray, d: date) -> float:
        """Cumulative value through day d (0 before the data starts)."""
        i = self.index(d)
        if i < 0:
            return 0.0
        return float(cum[min(i, len(cum) - 1)])

    def window(self, cum: np.ndarray, end: date, days: int) -> float:
        """Sum over the `days` days ending on `end` (inclusive)."""
        return self.at(cum, end) - self.at(cum, end - timedelta(days=days))


def _daily_arrays(
    con: duckdb.DuckDBPyConnection,
    f: KpiFilters,
    data_start: date,
    days: int,
    table: Tables = built_marts,
) -> dict[str, np.ndarray]:
    where, params = _slice_where(f)
    rows = con.execute(
        "SELECT date, sum(orders), sum(revenue), sum(new_customers) "  # noqa: S608 our where
        f"FROM {table('mart_kpi_daily')} WHERE {where} GROUP BY date",
        params,
    ).fetchall()
    out = {k: np.zeros(days) for k in ("orders", "revenue", "new_customers")}
    for d, orders, revenue, new in rows:
        i = (d - data_start).days
        if 0 <= i < days:
            out["orders"][i] = orders
            out["revenue"][i] = revenue
            out["new_customers"][i] = new
    return {k: np.cumsum(v) for k, v in out.items()}


def _activity_arrays(
    con: duckdb.DuckDBPyConnection,
    f: KpiFilters,
    windows: list[int],
    data_start: date,
    days: int,
    table: Tables = built_marts,
) -> dict[int, dict[str, np.ndarray]]:
    """Per window: cumulative started, first_in_slice, lapsed, and the active count per day."""
    rows = con.execute(
        "SELECT window_days, date, started, first_in_slice, lapsed "  # noqa: S608 our names
        f"FROM {table('mart_kpi_activity')} WHERE window_days IN (SELECT unnest(?::INTEGER[])) AND scheme = ? AND segment = ? "
        "AND channel = ? AND source_system = ?",
        [windows, f.scheme, f.segment, f.channel, f.source_system],
    ).fetchall()
    arrays = {w: {k: np.zeros(days) for k in ("started", "first", "lapsed")} for w in set(windows)}
    for w, d, started, first, lapsed in rows:
        i = (d - data_start).days
        if 0 <= i < days:
            a = arrays[w]
            a["started"][i] += started
            a["first"][i] += first
            a["lapsed"][i] += lapsed
    out = {}
    for w, a in arrays.items():
        c = {k: np.cumsum(v) for k, v in a.items()}
        c["active"] = c["started"] - c["lapsed"]  # a level, not a cumulative sum
        out[w] = c
    return out


def _buyers_direct(
    con: duckdb.DuckDBPyConnection,
    f: KpiFilters,
    start: date,
    end: date,
    table: Tables = built_marts,
) -> int:
    """Distinct customers with an order in [start, end] in the slice (custom periods only: the
    standard period lengths come from mart_kpi_activity). Reads mart_kpi_order_days, which is
    sorted by date, so only the period's row groups are scanned."""
    where = (
        "d.date BETWEEN ? AND ? AND (d.channel = ? OR ? = 'all') "
        "AND (d.source_system = ? OR ? = 'all')"
    )
    params = [start, end, f.channel, f.channel, f.source_system, f.source_system]
    if f.scheme == ALL:
        sql = f"SELECT count(DISTINCT d.customer_id) FROM mart_kpi_order_days d WHERE {where}"  # noqa: S608 our SQL
    else:
        sql = (
            "SELECT count(DISTINCT d.customer_id) FROM mart_kpi_order_days d "  # noqa: S608 our SQL
            f"WHERE {where} AND d.customer_id IN (SELECT customer_id FROM "
            f"{table('mart_kpi_segments')} WHERE scheme = ? AND segment = ?)"
        )
        params += [f.scheme, f.segment]
    return con.execute(sql, params).fetchone()[0]


def _average_clv(
    con: duckdb.DuckDBPyConnection, f: KpiFilters, table: Tables = built_marts
) -> float | None:
    has_clv = con.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'mart_customer' AND table_schema = 'main' AND column_name = 'clv'"
    ).fetchone()[0]
    if not has_clv:
        return None
    if f.scheme == ALL:
        row = con.execute("SELECT avg(clv) FROM mart_customer").fetchone()
    else:
        row = con.execute(
            f"SELECT avg(m.clv) FROM mart_customer m JOIN {table('mart_kpi_segments')} s "  # noqa: S608 our names
            "USING (customer_id) WHERE s.scheme = ? AND s.segment = ?",
            [f.scheme, f.segment],
        ).fetchone()
    return float(row[0]) if row[0] is not None else None


def hygiene_score(con: duckdb.DuckDBPyConnection) -> tuple[float | None, float | None]:
    """(latest, previous build's) overall data hygiene score, 0..100, from
    `hygiene.latest_scores`; (None, None) before the hygiene stage has run."""
    from ccrm_core.librarian import hygiene

    if not store.table_exists(con, "hygiene_checks"):
        return None, None
    scores = hygiene.latest_scores(con)
    if not isinstance(scores, Mapping) or scores.get("overall") is None:
        return None, None
    previous = scores.get("previous")
    prev = previous.get("overall") if isinstance(previous, Mapping) else None
    return float(scores["overall"]), (float(prev) if prev is not None else None)


def _spark_dates(end: date, period_days: int, earliest: date, points: int = 28) -> list[date]:
    """Evenly spaced evaluation dates over the last four periods, oldest first."""
    step = max(1, math.ceil(4 * period_days / points))
    out = [end - timedelta(days=step * k) for k in range(points)]
    return [d for d in reversed(out) if d >= earliest]


def _calendar(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """(first, last) order day of the tiles' calendar; None before customer_kpis ran."""
    if missing_stages(con, _TILE_MARTS):
        return None
    start, end = con.execute("SELECT data_start, data_end FROM mart_kpi_meta").fetchone()
    return None if start is None else (start, end)


def kpi_tiles(con: duckdb.DuckDBPyConnection, f: KpiFilters) -> list[KpiTile]:
    """Every KPI tile for the view `f` (see README "KPI definitions"). Empty list when the
    customer_kpis stage has not run."""
    calendar = _calendar(con)
    if calendar is None:
        return []
    with segment_tables(con, f.scheme, f.segment) as table:
        v = _view_series(con, f, *calendar, table=table)
        return [
            *_customer_tiles(v),
            *_sales_tiles(v),
            _clv_tile(con, f, table),
            _reach_tile(con, f, table),
            _hygiene_tile(con),
        ]


@dataclass(frozen=True)
class _ViewSeries:
    """The view's period (`p` days ending on `end`; the previous period ends on `prev_end`, the
    same period last year on `year_end`),
    its active window `w` (days), and the cumulative daily series of its slice over the tiles'
    calendar; each KPI is a method that evaluates it for the period ending on day `d`."""

    con: duckdb.DuckDBPyConnection
    f: KpiFilters
    cal: _Cum
    days: int  # length of the tiles' calendar
    p: int  # period length (days)
    w: int  # active window (days)
    end: date
    prev_end: date
    year_end: date
    daily: dict[str, np.ndarray]  # cumulative orders, revenue, new_customers per day
    act: dict[int, dict[str, np.ndarray]]  # per window: see _activity_arrays
    spark_sum: list[date]  # sparkline dates of period sums (each a whole period of data)
    spark_level: list[date]  # sparkline dates of levels (active customers, reach)
    table: Tables = built_marts  # where the slice's marts are read from (see segment_tables)

    def history(self, key: str) -> int:
        """Days of data up to the day measured that KPI `key` reads (see the module docstring)."""
        return kpi_history_days(key, self.p, self.w)

    def covered(self, key: str, d: date) -> bool:
        """Whether the data holds every day KPI `key` reads when measured on day `d`."""
        return d - timedelta(days=self.history(key) - 1) >= self.cal.start

    def window_sum(self, key: str, d: date) -> float:
        return self.cal.window(self.daily[key], d, self.p)

    def active(self, d: date, window: int | None = None) -> float:
        return self.cal.at(self.act[self.w if window is None else window]["active"], d)

    def aov(self, d: date):
        return _ratio(self.window_sum("revenue", d), self.window_sum("orders", d))

    def rev_per_active(self, d: date):
        return _ratio(self.window_sum("revenue", d), self.active(d))

    def lapsed(self, d: date) -> float:
        return self.cal.window(self.act[self.w]["lapsed"], d, self.p)

    def retention(self, d: date):
        base = self.active(d - timedelta(days=self.p))
        return None if not base else 1.0 - self.lapsed(d) / base

    def churn(self, d: date):
        base = self.active(d - timedelta(days=self.p))
        return None if not base else self.lapsed(d) / base

    def repeat(self, d: date):
        p = self.p
        if p in self.act:
            buyers = self.active(d, p)
        elif d in (self.end, self.prev_end, self.year_end):
            buyers = _buyers_direct(self.con, self.f, d - timedelta(days=p - 1), d, self.table)
        else:
            return None
        firsts = self.cal.window(self.act[self.w]["first"], d, p)
        return None if not buyers else 1.0 - firsts / buyers


def _view_series(
    con: duckdb.DuckDBPyConnection,
    f: KpiFilters,
    data_start: date,
    data_end: date,
    table: Tables = built_marts,
) -> _ViewSeries:
    """Read the cumulative daily series the tiles of view `f` need (data_start..data_end)."""
    start, end, p = f.bounds(data_start, data_end)
    days = (data_end - data_start).days + 1
    w = f.active_window
    windows = [w] + ([p] if p in activity_windows() and p != w else [])
    full_window = data_start + timedelta(days=p - 1)  # first end date with a whole period
    return _ViewSeries(
        con=con,
        f=f,
        cal=_Cum(data_start, days),
        days=days,
        p=p,
        w=w,
        end=end,
        prev_end=start - timedelta(days=1),
        year_end=year_earlier(end),
        daily=_daily_arrays(con, f, data_start, days, table),
        act=_activity_arrays(con, f, windows, data_start, days, table),
        spark_sum=_spark_dates(end, p, full_window),
        spark_level=_spark_dates(end, p, data_start),
        table=table,
    )


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _series(fn, dates) -> tuple[float, ...]:
    """A sparkline: `fn` at each of `dates`, days where it is undefined left out."""
    vals = [fn(d) for d in dates]
    return tuple(float(v) for v in vals if v is not None)


def _day(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def _tile(v: _ViewSeries, key: str, label: str, unit: str, fn, spark_dates, help: str, **kw):
    """KPI `key` evaluated by `fn(day)` at the period end, the previous period end and the
    sparkline dates, each only where the data covers what the KPI reads (`_ViewSeries.covered`);
    the tile's note says what is missing."""
    notes = []
    value = fn(v.end)
    if not v.covered(key, v.end):
        need = v.end - timedelta(days=v.history(key) - 1)
        notes.append(f"incomplete: needs data from {_day(need)}, data starts {_day(v.cal.start)}")
    previous = None
    if v.covered(key, v.prev_end):
        previous = fn(v.prev_end)
    else:
        need = v.prev_end - timedelta(days=v.history(key) - 1)
        notes.append(
            f"no comparison: the previous period needs data from {_day(need)}, "
            f"data starts {_day(v.cal.start)}"
        )
    year_ago = fn(v.year_end) if v.covered(key, v.year_end) else None
    spark = _series(fn, [d for d in spark_dates if v.covered(key, d)])
    return KpiTile(
        key,
        label,
        unit,
        value,
        previous,
        spark,
        help,
        note="; ".join(notes),
        year_ago=year_ago,
        **kw,
    )


def _customer_tiles(v: _ViewSeries) -> list[KpiTile]:
    """Active customers, new customers, repeat rate, retention and churn."""
    w, prev_end = v.w, v.prev_end
    spark_sum, spark_level = v.spark_sum, v.spark_level
    return [
        _tile(
            v,
            "active_customers",
            f"Active ({w}d)",
            "count",
            v.active,
            spark_level,
            f"Active customers: customers with an order in the {w} days up to the period end "
            f"(sales channel/source filters apply). Previous: at {prev_end}.",
        ),
        _tile(
            v,
            "new_customers",
            "New cust.",
            "count",
            lambda d: v.window_sum("new_customers", d),
            spark_sum,
            "New customers: customers whose first order ever falls in the period (on the "
            "filtered channel and source system of that first order). Needs the active window's "
            "days of data before the period: without them every returning buyer looks new.",
        ),
        _tile(
            v,
            "repeat_rate",
            "Repeat rate",
            "ratio",
            v.repeat,
            spark_sum,
            "Share of the period's buyers who had bought (in the filtered channel/source) "
            "before the period. Needs the active window's days of data before the period.",
        ),
        _tile(
            v,
            "retention_rate",
            "Retention",
            "ratio",
            v.retention,
            spark_sum,
            f"(E - N) / S: customers active ({w}d) at the period start who are still active at "
            "its end; E active at end, N spells started in the period, S active at start.",
        ),
        _tile(
            v,
            "churn_rate",
            "Churn",
            "ratio",
            v.churn,
            spark_sum,
            f"1 - retention: customers whose last order became older than {w} days during the "
            "period, over those active at its start.",
            higher_is_better=False,
        ),
    ]


def _sales_tiles(v: _ViewSeries) -> list[KpiTile]:
    """Revenue, orders, average order value and revenue per active customer."""
    w, spark_sum = v.w, v.spark_sum
    return [
        _tile(
            v,
            "revenue",
            "Revenue",
            "currency",
            lambda d: v.window_sum("revenue", d),
            spark_sum,
            "Order revenue in the period (currency units, net of discounts).",
        ),
        _tile(
            v,
            "orders",
            "Orders",
            "count",
            lambda d: v.window_sum("orders", d),
            spark_sum,
            "Orders placed in the period.",
        ),
        _tile(
            v,
            "aov",
            "Avg order",
            "currency",
            v.aov,
            spark_sum,
            "Average order value: revenue / orders in the period.",
        ),
        _tile(
            v,
            "revenue_per_active",
            "Rev / active",
            "currency",
            v.rev_per_active,
            spark_sum,
            f"Revenue per active customer: revenue in the period / active customers ({w}d) at "
            "its end.",
        ),
    ]


def _clv_tile(
    con: duckdb.DuckDBPyConnection, f: KpiFilters, table: Tables = built_marts
) -> KpiTile:
    clv = _average_clv(con, f, table)
    return KpiTile(
        "avg_clv",
        "Avg CLV",
        "currency",
        clv,
        help="Average lifetime value: mean predicted CLV (mart_customer.clv) of the segment "
        "today; a snapshot, so no change. Channel and source filters do not apply.",
        note="" if clv is not None else "run the value stage to see CLV",
    )


def _hygiene_tile(con: duckdb.DuckDBPyConnection) -> KpiTile:
    score, previous_score = hygiene_score(con)
    return KpiTile(
        "hygiene_score",
        "Hygiene",
        "score",
        score,
        previous_score,
        help="Data hygiene score: overall data quality (0-100) of the latest hygiene checks; "
        "the change "
        "is against the previous build, not the previous period.",
        note="" if score is not None else "run the hygiene stage to see it",
    )


def _reach_tile(con, f: KpiFilters, table: Tables = built_marts) -> KpiTile:
    """Contactable customers now. A snapshot: consents keep only each customer's latest status,
    so how many were contactable at an earlier date is unknown (counting the opt-ins given
    since then would be a different number from the one shown)."""
    row = con.execute(
        f"SELECT customers, contactable FROM {table('mart_kpi_base')} "  # noqa: S608 our names
        "WHERE scheme = ? AND segment = ? AND source_system = ?",
        [f.scheme, f.segment, f.source_system],
    ).fetchone()
    customers, now = (row[0], row[1]) if row else (0, 0)
    share = f" ({now / customers:.0%} of {customers:,} customers)" if customers else ""
    return KpiTile(
        "contactable_reach",
        "Reach",
        "count",
        float(now),
        help="Contactable reach: customers whose current consent is opt-in on at least one "
        "channel" + share + ". A snapshot, so no change: consents keep only the latest status. "
        "Sales-channel filter does not apply.",
    )
