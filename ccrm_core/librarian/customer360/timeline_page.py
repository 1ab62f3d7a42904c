"""The timeline of one customer: events and orders, newest first, filtered and paged (reads
the `customer_timeline` table)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from ccrm_core.foundation import store

TIMELINE_COLUMNS = [
    "ts",
    "kind",
    "channel",
    "event_type",
    "campaign_id",
    "value",
    "source",
    "detail",
    "ref_id",
]
# The chart draws at most this many of the most recent filtered rows (the table pages all).
CHART_ROWS = 5000


@dataclass
class TimelinePage:
    """One page of a customer's timeline (newest first) plus what the filters can offer.

    `rows`: the page; `chart`: up to CHART_ROWS most recent rows under the same filters;
    `total`: rows under the filters; `channels`, `types`: all values present for the customer.
    """

    rows: pd.DataFrame
    chart: pd.DataFrame
    total: int
    page: int
    page_size: int
    channels: list[str]
    types: list[str]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def timeline(
    con: duckdb.DuckDBPyConnection,
    customer_id: str,
    channels: list[str] | tuple[str, ...] | None = None,
    types: list[str] | tuple[str, ...] | None = None,
    page: int = 1,
    page_size: int = 50,
) -> TimelinePage:
    """Events and orders of one customer, newest first, filtered by channel and event type
    (None = all; orders have event_type 'order'). Pages are 1-based. Needs customer_timeline."""
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1 (got {page_size})")
    empty = pd.DataFrame(columns=TIMELINE_COLUMNS)
    if not store.table_exists(con, "customer_timeline"):
        return TimelinePage(empty, empty, 0, 1, page_size, [], [])
    present = con.execute(
        "SELECT list(DISTINCT channel ORDER BY channel), "
        "list(DISTINCT event_type ORDER BY event_type) "
        "FROM customer_timeline WHERE customer_id = ?",
        [customer_id],
    ).fetchone()
    where = (
        "WHERE customer_id = ? AND (?::VARCHAR[] IS NULL OR list_contains(?, channel)) "
        "AND (?::VARCHAR[] IS NULL OR list_contains(?, event_type))"
    )
    ch = list(channels) if channels is not None else None
    ty = list(types) if types is not None else None
    filt = [customer_id, ch, ch, ty, ty]
    total = con.execute(
        f"SELECT count(*) FROM customer_timeline {where}",  # noqa: S608 fixed text
        filt,
    ).fetchone()[0]
    pages = max(1, -(-total // page_size))
    page = min(max(1, int(page)), pages)
    cols = ", ".join(TIMELINE_COLUMNS)
    rows = con.execute(
        f"SELECT {cols} FROM customer_timeline {where} "  # noqa: S608 our columns
        "ORDER BY ts DESC, ref_id LIMIT ? OFFSET ?",
        [*filt, page_size, (page - 1) * page_size],
    ).df()
    chart = con.execute(
        f"SELECT {cols} FROM customer_timeline {where} "  # noqa: S608 our columns
        f"ORDER BY ts DESC, ref_id LIMIT {CHART_ROWS}",
        filt,
    ).df()
    return TimelinePage(
        rows=rows,
        chart=chart,
        total=int(total),
        page=page,
        page_size=page_size,
        channels=list(present[0] or []),
        types=list(present[1] or []),
    )
