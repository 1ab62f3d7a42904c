"""What every page shows is formatted (AppTest): no raw None/NaN/NaT, no snake_case header or
axis title, money in the configured currency (CCRM_CURRENCY), numbers with a display format.

Each page runs over the demo company with CCRM_CURRENCY=EUR; then every table header (its
column_config label, else the column name), every cell, every metric, caption and markdown
text and every chart's axis and legend titles are checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import streamlit as st
from conftest import page_file
from streamlit.testing.v1 import AppTest

from ccrm_core.foundation import formatting
from ccrm_core.radar.segments import figures
from ccrm_ui import navigation, tables

SNAKE_CASE = re.compile(r"^[a-z]+(_[a-z0-9]+)+$")
RAW_MISSING = re.compile(r"(?<![\w.])(None|nan|NaN|NaT|<NA>)(?![\w])")
RAW_MISSING_CELLS = {"None", "nan", "NaN", "NaT", "<NA>", "null"}
# Headers and metric labels that name an amount of money.
MONEY_HEADER = re.compile(
    r"\b(revenue|spend|clv|customer lifetime value|order value|budget|profit|contribution)\b",
    re.IGNORECASE,
)
NOT_MONEY_HEADER = re.compile(r"\b(roi|share|rate|%|per \w+ of spend|index|orders)\b", re.I)
EURO = "€"

PAGES = [
    "command_center",
    "segment_explorer",
    "customer_360",
    "data_hygiene",
    "attribution",
    "budget_simulator",
    "data",
]


def _nodes(node) -> Iterator:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _nodes(child)


def table_problems(at: AppTest) -> list[str]:
    problems = []
    for i, table in enumerate(at.dataframe):
        frame: pd.DataFrame = table.value
        config = json.loads(table.proto.columns or "{}")
        for name in frame.columns:
            own = config.get(str(name), {})
            header = own.get("label") or str(name)
            where = f"table {i} column {header!r}"
            if own.get("hidden"):
                continue
            if SNAKE_CASE.match(header):
                problems.append(f"{where}: snake_case header")
            series = frame[name]
            if series.isna().any() and table.proto.placeholder != formatting.MISSING:
                problems.append(f"{where}: missing values shown raw")
            if series.dtype == object:
                raw = sorted({v for v in series if isinstance(v, str) and v in RAW_MISSING_CELLS})
                if raw:
                    problems.append(f"{where}: cells {raw}")
            if pd.api.types.is_float_dtype(series) or pd.api.types.is_integer_dtype(series):
                fmt = own.get("type_config", {}).get("format")
                if not fmt:
                    problems.append(f"{where}: number without a display format")
                elif MONEY_HEADER.search(header) and not NOT_MONEY_HEADER.search(header):
                    if EURO not in fmt and fmt != "euro":
                        problems.append(f"{where}: money without the currency ({fmt})")
            if pd.api.types.is_datetime64_any_dtype(series):
                fmt = own.get("type_config", {}).get("format")
                if not fmt:
                    problems.append(f"{where}: date without a display format")
    return problems


def text_problems(at: AppTest) -> list[str]:
    problems = []
    for node in _nodes(at._tree):
        kind = getattr(node, "type", "")
        texts: list[tuple[str, str]] = []
        if kind in ("markdown", "caption", "title", "header", "subheader", "info", "warning"):
            texts.append((kind, node.value))
        elif kind == "metric":
            texts += [(f"metric {p}", getattr(node, p) or "") for p in ("label", "value", "delta")]
            if MONEY_HEADER.search(node.label) and not NOT_MONEY_HEADER.search(node.label):
                if re.search(r"\d", node.value) and EURO not in node.value:
                    problems.append(f"metric {node.label!r}: money without the currency")
        for where, text in texts:
            if RAW_MISSING.search(str(text)):
                problems.append(f"{where}: raw missing value in {str(text)[:200]!r}")
            if re.search(r"\b[a-z]+(_[a-z0-9]+)+\b", str(text)) and kind == "metric":
                problems.append(f"{where}: snake_case in {text!r}")
    return problems


def figure_problems(at: AppTest) -> list[str]:
    problems = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        layout = spec.get("layout", {})
        titles = []
        for key, axis in layout.items():
            if key.startswith(("xaxis", "yaxis")) or key == "legend":
                title = (axis or {}).get("title")
                titles.append(title.get("text") if isinstance(title, dict) else title)
        for trace in spec.get("data", []):
            for hover in [trace.get("hovertemplate")] + list(trace.get("texttemplate") or []):
                if isinstance(hover, str) and RAW_MISSING.search(hover):
                    problems.append(f"figure hover {hover[:120]!r}")
        for title in titles:
            if isinstance(title, str) and SNAKE_CASE.match(title):
                problems.append(f"figure axis title {title!r}")
    return problems


def display_problems(at: AppTest) -> list[str]:
    return (
        [f"exception: {e.value}" for e in at.exception]
        + table_problems(at)
        + text_problems(at)
        + figure_problems(at)
    )


@pytest.fixture()
def company(demo_db_copy, monkeypatch):
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    monkeypatch.setenv("CCRM_CURRENCY", "EUR")
    return demo_db_copy


def _customer_id(path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return str(con.execute("SELECT min(customer_id) FROM customers").fetchone()[0])
    finally:
        con.close()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_formatted_values_and_plain_labels(company, page):
    at = AppTest.from_file(page_file(page), default_timeout=300)
    if page == "customer_360":
        at.query_params["customer_id"] = _customer_id(company)
    at.run()
    problems = display_problems(at)
    assert not problems, "\n".join(problems)
    assert at.dataframe, "the page must show at least one table, so the check is not empty"
    if page == "command_center":  # only the open section runs: check the others too
        for section in ("Funnel", "Cohorts", "Journeys"):
            at.session_state["cc_section"] = section
            at.run()
            problems = display_problems(at)
            assert not problems, f"{section}: " + "\n".join(problems)


def test_formatting_helpers():
    eur = formatting.currency_setting("eur")[0]
    assert formatting.money(1234.5, eur) == "€1,234.50"
    assert formatting.money(-12, eur) == "-€12.00"
    assert formatting.money(None, eur) == formatting.MISSING == "—"
    assert formatting.money(12_345, eur, compact=True) == "€12.3k"
    assert formatting.money(5, formatting.currency_setting("JPY")[0]) == "¥5"
    assert formatting.money(5, formatting.NO_CURRENCY) == "5.00"
    assert formatting.number(1234567) == "1,234,567"
    assert formatting.number(float("nan")) == "—"
    assert formatting.percent(0.125) == "12.5%"
    assert formatting.date_text(pd.Timestamp("2025-03-31 00:00:00")) == "2025-03-31"
    assert formatting.date_text(pd.Timestamp("2025-03-31 14:05:09")) == "2025-03-31 14:05"
    assert formatting.date_text(pd.NaT) == "—"
    assert formatting.label("first_order_at") == "First order at"
    assert formatting.label("clv") == "Customer lifetime value"
    assert formatting.label("roi_ci_low") == "ROI CI low"


def test_an_unknown_currency_is_named_and_money_shows_without_a_symbol():
    unit, problem = formatting.currency_setting("EURO")
    assert unit == formatting.NO_CURRENCY
    assert problem is not None and "CCRM_CURRENCY='EURO'" in problem
    assert formatting.currency_setting(None) == (formatting.NO_CURRENCY, None)
    assert formatting.currency_setting(" usd ")[0].symbol == "$"


def test_table_config_labels_and_formats_every_column(monkeypatch):
    monkeypatch.setenv("CCRM_CURRENCY", "EUR")
    frame = pd.DataFrame(
        {
            "source_system": ["crm"],
            "revenue": [1234.5],
            "Avg order value": [12.5],
            "conversion_rate": [0.25],
            "orders": [3],
            "first_order_at": [pd.Timestamp("2025-01-01")],
        }
    )
    config = tables.table_config(
        frame, {"Avg order value": st.column_config.NumberColumn(format="%.2f")}
    )
    assert config["source_system"]["label"] == "Source system"
    assert config["revenue"]["type_config"]["format"] == "€%,.2f"
    assert config["Avg order value"]["type_config"]["format"] == "€%,.2f"  # money wins
    assert config["conversion_rate"]["type_config"]["format"] == "percent"
    assert config["orders"]["type_config"]["format"] == "%,.0f"
    assert config["first_order_at"]["type_config"]["format"] == "YYYY-MM-DD"


def test_segment_figures_name_the_root_and_keep_the_index_scale_non_negative():
    profile = pd.DataFrame(
        {
            "segment": ["a", "b"],
            "customers": [3, 4],
            "revenue": [10.0, 20.0],
            "avg_clv": [1.0, None],
            "share": [0.4, 0.6],
        }
    )
    treemap = figures.figure_treemap(profile, "RFM").data[0]
    assert list(treemap.labels) == ["RFM", "a", "b"] and list(treemap.parents)[0] == ""
    mix = pd.DataFrame(
        {"segment": ["a", "a"], "item": ["x", "y"], "index": [20.0, 400.0], "share": [0.1, 0.9]}
    )
    heatmap = figures.figure_mix(mix).data[0]
    assert (heatmap.zmin, heatmap.zmid, heatmap.zmax) == (0, 100, 200)


def test_every_page_has_its_own_browser_title():
    titles = {navigation.browser_title(title) for _, _, title, _, _ in navigation.PAGES}
    assert len(titles) == len(navigation.PAGES)
    assert navigation.browser_title("Data") == "Data · Connected CRM"


def test_an_unknown_currency_is_named_on_the_page(demo_db_copy, monkeypatch):
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    monkeypatch.setenv("CCRM_CURRENCY", "EURO")
    at = AppTest.from_file(str(Path(page_file("data")).parent.parent / "app.py")).run()
    assert not at.exception
    assert any("CCRM\\_CURRENCY\\=\\'EURO\\'" in w.value for w in at.warning)
