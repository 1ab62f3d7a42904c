"""Hostile text planted in a built demo database: markdown, HTML and bare links in every kind of
text the pages show (names, cities, campaign names, channel, segment and source names, source
and customer ids, alert messages, check descriptions, build errors, file names, saved segment
and scenario names), for tests/test_rendering_pages.py and the browser check.

Keys (channels, segments, source systems, ids) are rewritten the same way in every table, so the
data stays joined and the pages show them as usual; free text is overwritten in every row.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ccrm_core.conductor import budget
from ccrm_core.foundation import store
from ccrm_core.radar import segments

# Every construct that would become a link, an image or formatting if it were rendered: a
# markdown link and image, raw HTML (a link Plotly would draw, bold), markdown bold and a
# backtick, a bare URL and an e-mail address (GFM autolinks). `{tag}` says where it came from.
TEMPLATE = (
    '<a href="http://evil.example/{tag}">{tag}</a> [{tag}](http://evil.example/{tag}) '
    "![{tag}](http://evil.example/{tag}.png) <b>evil</b> **evil** `evil "
    "www.evil.example {tag}@evil.example"
)
# Names a user types are one line of at most 80 (segment) or 60 (scenario) characters.
SAVED_SEGMENT = '<a href="http://evil.example/s">seg</a> [s](http://evil.example/s) `evil'
SCENARIO = '<b>evil</b> [q](http://evil.example/q) <a href="//evil.ex">'

# Columns holding keys that pages group, filter and join on: each value v becomes hostile(v)
# everywhere, except the totals' "all" and the Markov chain's own states.
KEY_COLUMNS = {
    "channel",
    "top_channel",
    "first_order_channel",
    "component",
    "from_state",
    "to_state",
    "source_system",
    "source_system_l",
    "source_system_r",
    "first_order_source",
    "first_source",
    "source",
    "source_id",
    "source_id_l",
    "source_id_r",
    "customer_id",
    "campaign_id",
    "experiment_id",
    "segment",
    "rfm_segment",
    "value_tier",
    "needs_segment",
}
KEY_LIST_COLUMNS = {"path", "source_systems"}
KEPT_VALUES = ("all", "baseline", "start", "conversion", "null")

# Free text the pages show: overwritten with hostile(<table>.<column>) in every row.
_PERSON = ["first_name", "last_name", "email", "phone", "address_line", "city", "region"]
_PERSON += ["postal_code", "country"]
FREE_TEXT = {
    "customers": _PERSON,
    "src_customers": _PERSON,
    "std_customers": _PERSON,
    "search_customers": ["name", "email", "phone", "city"],
    "campaigns": ["name", "offer"],
    "mart_nba": ["campaign_name", "offer"],
    "orders": ["category"],
    "mart_customer": ["top_category"],
    "mart_kpi_alerts": ["message"],
    "hygiene_checks": ["description"],
    "needs_segment_centroids": ["label"],
    "identity_model": ["label"],
    "ingest_log": ["file_name", "message"],
    "ingest_rejects": ["file_name", "value", "reason"],
    "audit_log": ["actor", "target", "detail"],
}


def hostile(tag: str) -> str:
    return TEMPLATE.replace("{tag}", tag)


def _hostile_sql(expr: str) -> str:
    """SQL for hostile(<value of expr>)."""
    pieces = [("'" + p.replace("'", "''") + "'") for p in TEMPLATE.split("{tag}")]
    return f" || ({expr}) || ".join(pieces)


def _rewrite_keys(con, table: str, columns: dict[str, str]) -> None:
    kept = ", ".join(f"'{v}'" for v in KEPT_VALUES)
    replaced = []
    for column, kind in columns.items():
        col = store.quote_ident(column)
        if column in KEY_COLUMNS and "VARCHAR" in kind and "[]" not in kind:
            replaced.append(f"CASE WHEN {col} IN ({kept}) THEN {col} ELSE {_hostile_sql(col)} END")
        elif column in KEY_LIST_COLUMNS and kind == "VARCHAR[]":
            replaced.append(f"list_transform({col}, lambda x: {_hostile_sql('x')})")
        else:
            continue
        replaced[-1] += f" AS {col}"
    if replaced:
        name = store.quote_ident(table)
        con.execute(
            f"CREATE OR REPLACE TABLE {name} AS SELECT * REPLACE ({', '.join(replaced)}) "  # noqa: S608
            f"FROM {name}"
        )


def plant(path: Path) -> dict[str, str]:
    """Write hostile text into the built database at `path`; returns what the tests look up:
    the id of a customer with an offer as next best action (`customer_id`), the saved segment
    and the scenario name."""
    con = store.connect_writer(path)
    try:
        offer_customer = con.execute(
            "SELECT customer_id FROM mart_nba WHERE action = 'offer' ORDER BY customer_id LIMIT 1"
        ).fetchone()[0]
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
            ).fetchall()
        ]
        for table in tables:
            columns = dict(
                con.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = ?",
                    [table],
                ).fetchall()
            )
            _rewrite_keys(con, table, columns)
        for table, columns in FREE_TEXT.items():
            sets = ", ".join(f"{store.quote_ident(c)} = ?" for c in columns)
            con.execute(
                f"UPDATE {store.quote_ident(table)} SET {sets}",  # noqa: S608
                [hostile(f"{table}.{c}") for c in columns],
            )
        con.execute(
            "UPDATE mart_nba SET reasons = [?, ?]", [hostile("reason1"), hostile("reason2")]
        )
        con.execute(
            "UPDATE customer_timeline SET event_type = ? WHERE event_type = 'click'",
            [hostile("event_type")],
        )
        # a later build whose stage failed with a message quoting data
        con.execute(
            "INSERT INTO pipeline_runs SELECT max(run_id) + 1, 'hygiene', ?, ?, 0, 'failed', ? "
            "FROM pipeline_runs",
            [datetime.now(), datetime.now(), hostile("build_error")],
        )
        segments.save_segment(con, SAVED_SEGMENT, [segments.Rule("orders", ">=", 1)])
        curves = budget.load_curves(con)
        budget.save_scenario(con, SCENARIO, budget.current_plan(curves))
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {"customer_id": hostile(offer_customer), "saved_segment": SAVED_SEGMENT}
