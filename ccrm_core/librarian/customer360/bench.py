"""Benchmarks (`ccrm bench`): 200 varied searches, and the timeline of a busy customer."""

from __future__ import annotations

import re

import duckdb

from ccrm_core.foundation import store
from ccrm_core.librarian.customer360.lookup import search
from ccrm_core.librarian.customer360.timeline_page import timeline

# Query mix of the search benchmark: kind -> how many of the 200.
BENCH_QUERY_MIX = {
    "name": 40,
    "name_typo": 40,
    "name_prefix": 20,
    "phone": 30,
    "email": 20,
    "email_typo": 10,
    "customer_id": 20,
    "source_id": 10,
    "anonymous_id": 10,
}


def _typo(word: str, rng) -> str:
    """One random edit (delete, transpose, substitute) away from `word` (4+ letters)."""
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 1))
    edit = int(rng.integers(0, 3))
    if edit == 0:
        return word[:i] + word[i + 1 :]
    if edit == 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + "aeiouy"[int(rng.integers(0, 6))] + word[i + 1 :]


def _phone_format(e164: str, style: int) -> str:
    digits = re.sub(r"\D", "", e164)
    national = digits[-10:]
    area, mid, last = national[:3], national[3:6], national[6:]
    return [
        e164,
        national,
        f"({area}) {mid}-{last}",
        f"+1 {area}.{mid}.{last}",
        f"{mid}-{last}",
    ][style % 5]


def _bench_query(kind: str, row: tuple, rng) -> str:
    """One benchmark query of `kind` for a customers row (customer_id, first, last, email,
    phone)."""
    cid, first, last, email, phone = row
    if kind == "name":
        return f"{first} {last}"
    if kind == "name_typo":
        return f"{_typo(first.lower(), rng)} {_typo(last.lower(), rng)}"
    if kind == "name_prefix":
        return last[: int(rng.integers(3, 6))]
    if kind == "phone":
        return _phone_format(phone, int(rng.integers(0, 5)))
    if kind == "email":
        return email
    if kind == "email_typo":
        local, domain = email.split("@", 1)
        return _typo(local, rng) + "@" + domain
    return cid


def bench_queries(con: duckdb.DuckDBPyConnection, seed: int = 42) -> list[tuple[str, str, str]]:
    """(query, intended customer_id, kind) for the search benchmark, drawn from the data with
    a fixed seed: exact and typo'd names, name prefixes, phones in five formats, emails exact
    and typo'd, customer, source and anonymous ids (see BENCH_QUERY_MIX)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pool = con.execute(
        """
        SELECT customer_id, first_name, last_name, email, phone FROM customers
        WHERE first_name IS NOT NULL AND last_name IS NOT NULL
        USING SAMPLE reservoir(2000 ROWS) REPEATABLE (42)
        """
    ).fetchall()
    ids = con.execute(
        """
        SELECT customer_id, source_id, anonymous_id FROM identity_map
        WHERE customer_id IS NOT NULL
        USING SAMPLE reservoir(5000 ROWS) REPEATABLE (42)
        """
    ).fetchall()
    out: list[tuple[str, str, str]] = []

    def pick(rows, cond):
        for _ in range(200):
            row = rows[int(rng.integers(0, len(rows)))]
            if cond(row):
                return row
        return None

    for kind, count in BENCH_QUERY_MIX.items():
        for _ in range(count):
            if kind in ("source_id", "anonymous_id"):
                col = 1 if kind == "source_id" else 2
                row = pick(ids, lambda r, c=col: r[c] is not None)
                if row:
                    out.append((row[col], row[0], kind))
                continue
            row = pick(
                pool,
                {
                    "phone": lambda r: r[4] is not None,
                    "email": lambda r: r[3] is not None,
                    "email_typo": lambda r: r[3] is not None,
                }.get(kind, lambda r: True),
            )
            if row is None:
                continue
            query = _bench_query(kind, row, rng)
            out.append((query, row[0], kind))
    return out


def bench_search(ctx) -> tuple[int, dict]:
    """`ccrm bench` operation: 200 varied searches on the built database; figures: p50, p95 and
    max milliseconds per search, and the share of queries whose intended customer is first /
    in the top 5 (a prefix or a common name may rightly rank others first)."""
    import statistics
    import time

    con = store.connect_reader(ctx.db)
    try:
        queries = bench_queries(con)
        for q, _, _ in queries[:5]:  # warm the file cache the way a running app has it
            search(con, q)
        times, top1, top5 = [], 0, 0
        for q, cid, _ in queries:
            t0 = time.perf_counter()
            found = search(con, q, 20)["customer_id"].tolist()
            times.append((time.perf_counter() - t0) * 1000)
            top1 += bool(found) and found[0] == cid
            top5 += cid in found[:5]
    finally:
        con.close()
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]
    figures = {
        "queries": len(queries),
        "p50_ms": statistics.median(times),
        "p95_ms": p95,
        "max_ms": times[-1],
        "top1_share": top1 / len(queries),
        "top5_share": top5 / len(queries),
    }
    print(
        f"search: {len(queries)} queries, p50 {figures['p50_ms']:.1f} ms, p95 {p95:.1f} ms, "
        f"max {times[-1]:.1f} ms; intended customer first {figures['top1_share']:.0%}, "
        f"top 5 {figures['top5_share']:.0%}"
    )
    return len(queries), figures


def bench_timeline(ctx) -> tuple[int, dict]:
    """`ccrm bench` operation: the timeline of the customer whose event count is closest to
    1,000 (first page, a channel filter, and the chart rows), 20 times; figures: events of that
    customer, p50 and p95 milliseconds per timeline call."""
    import statistics
    import time

    con = store.connect_reader(ctx.db)
    try:
        cid, events = con.execute(
            """
            SELECT customer_id, count(*) AS n FROM customer_timeline
            GROUP BY customer_id ORDER BY abs(count(*) - 1000), customer_id LIMIT 1
            """
        ).fetchone()
        channel = con.execute(
            "SELECT channel FROM customer_timeline WHERE customer_id = ? "
            "GROUP BY channel ORDER BY count(*) DESC LIMIT 1",
            [cid],
        ).fetchone()[0]
        times = []
        for i in range(20):
            t0 = time.perf_counter()
            timeline(con, cid, channels=[channel] if i % 2 else None, page=1 + i % 3)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        con.close()
    times.sort()
    figures = {
        "customer_events": events,
        "p50_ms": statistics.median(times),
        "p95_ms": times[18],
    }
    print(
        f"timeline: customer {cid} with {events:,} rows, p50 {figures['p50_ms']:.1f} ms, "
        f"p95 {figures['p95_ms']:.1f} ms"
    )
    return events, figures
