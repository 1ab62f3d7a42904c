"""Membership and per-segment views: which schemes are built, the members of a segment, and
the Segment Explorer's page queries (profile, mix, overlap, members, scatter sample, needs
drivers, base totals) over mart_customer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.radar.segments.rules import rule_columns, saved_segment_where, saved_segments
from ccrm_core.radar.segments.schemes import SAVED_SCHEME, SCHEMES


def available_schemes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The segment schemes (columns of mart_customer) built in this database, in SCHEMES order;
    empty before the `segments` stage has run. Other stages segment by these."""
    if not store.table_exists(con, "mart_customer"):
        return []
    cols = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'mart_customer' AND table_schema = 'main'"
        ).fetchall()
    }
    return [s for s in SCHEMES if s in cols]


def _check_scheme(scheme: str, allow_saved: bool = True) -> str:
    if scheme in SCHEMES or (allow_saved and scheme == SAVED_SCHEME):
        return scheme
    choices = list(SCHEMES) + ([SAVED_SCHEME] if allow_saved else [])
    raise ValueError(f"unknown segment scheme {scheme!r}; choose one of {', '.join(choices)}")


def segment_condition(
    con: duckdb.DuckDBPyConnection, scheme: str, segment: str
) -> tuple[str, list[Any]]:
    """WHERE condition selecting one segment of a scheme from mart_customer."""
    if _check_scheme(scheme) == SAVED_SCHEME:
        cond, params = saved_segment_where(con, segment)
        return cond or "TRUE", params
    return f"{store.quote_ident(scheme)} = ?", [segment]


def segment_members(con: duckdb.DuckDBPyConnection, scheme: str, segment: str) -> pd.DataFrame:
    """customer_id of every member of `segment` in `scheme` ('rfm_segment', 'value_tier',
    'needs_segment', or 'saved' for a saved rule segment), ordered by customer_id."""
    cond, params = segment_condition(con, scheme, segment)
    return con.execute(
        f"SELECT customer_id FROM mart_customer WHERE {cond} ORDER BY customer_id",  # noqa: S608
        params,
    ).df()


def mart_ready(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the segments stage has written mart_customer."""
    return store.table_exists(con, "mart_customer")


def segment_names(con: duckdb.DuckDBPyConnection, scheme: str) -> list[str]:
    """The segments of a scheme, largest first."""
    if _check_scheme(scheme) == SAVED_SCHEME:
        return list(saved_segments(con)["name"])
    col = store.quote_ident(scheme)
    rows = con.execute(
        f"SELECT {col} FROM mart_customer GROUP BY {col} ORDER BY count(*) DESC, {col}"  # noqa: S608
    ).fetchall()
    return [r[0] for r in rows]


_PROFILE_SELECT = """
    count(*) AS customers,
    coalesce(sum(revenue), 0) AS revenue,
    avg(clv) AS avg_clv,
    avg(prob_alive) AS avg_prob_alive,
    avg(orders) AS avg_orders,
    avg(CASE WHEN orders > 0 THEN revenue / orders END) AS avg_order_value,
    coalesce(sum(clv), 0) AS total_clv
"""


def segment_profile(con: duckdb.DuckDBPyConnection, scheme: str) -> pd.DataFrame:
    """One row per segment of `scheme`: customers, share (of all customers), revenue (currency,
    whole history), revenue_share, avg_clv (12-month discounted CLV), avg_prob_alive, avg_orders,
    avg_order_value, total_clv; largest first. For 'saved', one row per saved segment (they may
    overlap, so shares need not add up to 1)."""
    frame = _per_segment(con, scheme, _PROFILE_SELECT)
    if frame is None:
        return pd.DataFrame(
            columns=["segment", "customers", "share", "revenue", "revenue_share", "avg_clv"]
        )
    total, revenue = con.execute(
        "SELECT count(*), coalesce(sum(revenue), 0) FROM mart_customer"
    ).fetchall()[0]
    frame["share"] = frame["customers"] / total if total else 0.0
    frame["revenue_share"] = frame["revenue"] / revenue if revenue else 0.0
    frame = frame.sort_values(["customers", "segment"], ascending=[False, True])
    return frame.reset_index(drop=True)


def _per_segment(
    con: duckdb.DuckDBPyConnection, scheme: str, select: str, where: str = "TRUE"
) -> pd.DataFrame | None:
    """`SELECT <segment>, <select> FROM mart_customer WHERE <where>` for each segment of
    `scheme` (our SQL only): grouped by the scheme's column, or one branch per saved segment
    (saved segments may overlap). None when the saved scheme has no segments."""
    if _check_scheme(scheme) == SAVED_SCHEME:
        parts, params = [], []
        for name in segment_names(con, SAVED_SCHEME):
            cond, p = saved_segment_where(con, name)
            parts.append(
                f"SELECT ? AS segment, {select} FROM mart_customer "  # noqa: S608
                f"WHERE ({where}) AND ({cond or 'TRUE'})"
            )
            params += [name, *p]
        if not parts:
            return None
        return con.execute(" UNION ALL ".join(parts), params).df()
    col = store.quote_ident(scheme)
    return con.execute(
        f"SELECT {col} AS segment, {select} FROM mart_customer WHERE {where} GROUP BY {col}"  # noqa: S608
    ).df()


MIX_KINDS = {
    "channel": ("share_", "Events by channel"),
    "sales_channel": ("order_share_", "Orders by sales channel"),
    "category": ("cat_", "Orders by category"),
}


def segment_mix(con: duckdb.DuckDBPyConnection, scheme: str, kind: str) -> pd.DataFrame:
    """Mix per segment against the base (all customers with that behaviour): segment, item,
    share (mean share of an average member), base_share, index (share / base x 100).
    kind: 'channel' (events: touches and responses), 'sales_channel' (orders) or 'category'
    (orders)."""
    if kind not in MIX_KINDS:
        raise ValueError(f"unknown mix {kind!r}; choose one of {', '.join(MIX_KINDS)}")
    prefix = MIX_KINDS[kind][0]
    cols = [
        c
        for c in rule_columns(con)
        if c.startswith(prefix) and not (prefix == "share_" and c.startswith("order_share_"))
    ]
    if not cols:
        return pd.DataFrame(columns=["segment", "item", "share", "base_share", "index"])
    # customers without that behaviour (no engagements / no orders) do not dilute the mix
    has = "events > 0" if kind == "channel" else "orders > 0"
    avgs = ", ".join(f"avg({store.quote_ident(c)}) AS {store.quote_ident(c)}" for c in cols)
    wide = _per_segment(con, scheme, avgs, has)
    if wide is None:
        return pd.DataFrame(columns=["segment", "item", "share", "base_share", "index"])
    base = con.execute(f"SELECT {avgs} FROM mart_customer WHERE {has}").df().iloc[0]  # noqa: S608
    long = wide.melt(id_vars="segment", var_name="column", value_name="share")
    long["base_share"] = long["column"].map(base).astype(float)
    long["item"] = long["column"].str.removeprefix(prefix).str.replace("_", " ")
    long["index"] = np.where(
        long["base_share"] > 0, long["share"] / long["base_share"] * 100, np.nan
    )
    return long[["segment", "item", "share", "base_share", "index"]].reset_index(drop=True)


def _overlap_branches(
    con: duckdb.DuckDBPyConnection, scheme: str
) -> list[tuple[str, list[Any], str, list[Any]]]:
    """(segment expression, its parameters, condition, its parameters) per branch of a scheme:
    one branch grouped by the column for a column scheme, one per saved segment for 'saved'."""
    if _check_scheme(scheme) == SAVED_SCHEME:
        out = []
        for name in segment_names(con, SAVED_SCHEME):
            cond, params = saved_segment_where(con, name)
            out.append(("?", [name], cond or "TRUE", params))
        return out
    return [(store.quote_ident(scheme), [], "TRUE", [])]


def segment_overlap(con: duckdb.DuckDBPyConnection, scheme_a: str, scheme_b: str) -> pd.DataFrame:
    """Customers in each pair of segments of two schemes (column schemes or 'saved'):
    segment_a, segment_b, customers, share_of_a (share of segment_a's customers that are in
    segment_b). Saved segments may overlap, so a saved row's shares need not add up to 1."""
    columns = ["segment_a", "segment_b", "customers", "share_of_a"]
    rows_a, rows_b = _overlap_branches(con, scheme_a), _overlap_branches(con, scheme_b)
    if not rows_a or not rows_b:
        return pd.DataFrame(columns=columns)
    pairs, params = [], []
    for expr_a, pa, cond_a, ca in rows_a:
        for expr_b, pb, cond_b, cb in rows_b:
            pairs.append(
                f"SELECT {expr_a} AS segment_a, {expr_b} AS segment_b, count(*) AS customers "  # noqa: S608
                f"FROM mart_customer WHERE ({cond_a}) AND ({cond_b}) GROUP BY ALL"
            )
            params += [*pa, *pb, *ca, *cb]
    sizes, size_params = [], []
    for expr_a, pa, cond_a, ca in rows_a:
        sizes.append(
            f"SELECT {expr_a} AS segment_a, count(*) AS size FROM mart_customer "  # noqa: S608
            f"WHERE {cond_a} GROUP BY ALL"
        )
        size_params += [*pa, *ca]
    counts = con.execute(" UNION ALL ".join(pairs), params).df()
    size = con.execute(" UNION ALL ".join(sizes), size_params).df()
    out = counts.merge(size, on="segment_a", how="left")
    out["share_of_a"] = out["customers"] / out["size"].where(out["size"] > 0)
    out = out[out["customers"] > 0].sort_values(["segment_a", "segment_b"])
    return out[columns].reset_index(drop=True)


def segment_customers(
    con: duckdb.DuckDBPyConnection, scheme: str, segment: str, limit: int = 200
) -> pd.DataFrame:
    """Members of a segment, highest lifetime value first (at most `limit`), PII masked:
    customer_id, first_name, last_name, email (masked), city, orders, revenue, clv, prob_alive,
    rfm_segment, value_tier, needs_segment, link (Customer 360 deep link)."""
    from ccrm_core.foundation import privacy

    cond, params = segment_condition(con, scheme, segment)
    frame = con.execute(
        f"""
        WITH members AS (
            SELECT * FROM mart_customer WHERE {cond}
            ORDER BY clv DESC NULLS LAST, revenue DESC, customer_id LIMIT ?
        ),
        golden AS (
            SELECT customer_id, any_value(first_name) AS first_name,
                   any_value(last_name) AS last_name, any_value(email) AS email,
                   any_value(city) AS city
            FROM customers WHERE customer_id IN (SELECT customer_id FROM members)
            GROUP BY customer_id
        )
        SELECT m.customer_id, g.first_name, g.last_name, g.email, g.city, m.orders, m.revenue,
               m.clv, m.prob_alive, m.rfm_segment, m.value_tier, m.needs_segment
        FROM members m LEFT JOIN golden g USING (customer_id)
        ORDER BY m.clv DESC NULLS LAST, m.revenue DESC, m.customer_id
        """,  # noqa: S608 - condition from segment_condition, values are parameters
        [*params, int(limit)],
    ).df()
    for col in ("first_name", "last_name", "email", "city"):
        # None, not NaN, for missing values: the maskers would print 'n***' for NaN
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    frame = privacy.mask_frame(frame)
    frame["link"] = [
        "/customer_360?" + urlencode({"customer_id": str(cid)}) for cid in frame["customer_id"]
    ]
    return frame


def scatter_sample(con: duckdb.DuckDBPyConnection, scheme: str, n: int = 4000) -> pd.DataFrame:
    """A repeatable sample of at most n buyers (hash of customer_id): customer_id, frequency,
    monetary_value, clv, segment (the customer's segment in `scheme`, a column scheme)."""
    col = store.quote_ident(_check_scheme(scheme, allow_saved=False))
    return con.execute(
        f"""
        SELECT customer_id, frequency, monetary_value, orders, revenue, clv, {col} AS segment
        FROM mart_customer WHERE orders > 0
        ORDER BY hash(customer_id), customer_id LIMIT ?
        """,  # noqa: S608 - scheme checked against SCHEMES
        [int(n)],
    ).df()


def needs_segment_drivers(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """What distinguishes each needs segment: segment, label, z_score (top 3 per segment)."""
    if not store.table_exists(con, "needs_segment_centroids"):
        return pd.DataFrame(columns=["segment", "label", "z_score"])
    return con.execute(
        """
        SELECT segment, label, z_score FROM (
            SELECT *, row_number() OVER (PARTITION BY segment ORDER BY z_score DESC) AS rn
            FROM needs_segment_centroids
        ) WHERE rn <= 3 ORDER BY segment, z_score DESC
        """
    ).df()


def base_totals(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """All customers: customers, buyers, revenue, avg_clv, avg_prob_alive, total_clv."""
    customers, buyers, revenue, avg_clv, alive, total_clv = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE orders > 0), coalesce(sum(revenue), 0), "
        "avg(clv), avg(prob_alive), coalesce(sum(clv), 0) FROM mart_customer"
    ).fetchall()[0]
    return {
        "customers": int(customers),
        "buyers": int(buyers),
        "revenue": float(revenue),
        "avg_clv": float(avg_clv) if avg_clv is not None else float("nan"),
        "avg_prob_alive": float(alive) if alive is not None else float("nan"),
        "total_clv": float(total_clv),
    }
