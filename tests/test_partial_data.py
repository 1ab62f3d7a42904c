"""Partial data, full app: a company that loaded only some raw tables builds every stage, and
every page shows what its data allows and names what would light up the rest (AppTest)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import metric_value, page_file
from streamlit.testing.v1 import AppTest

from ccrm_core.foundation import inputs, pipeline, store
from ccrm_core.synthetic import sample
from ccrm_ui import navigation

EVENTS_AND_SPEND = "marketing events (clicks, opens, visits) and media spend"


@pytest.fixture(scope="module")
def company() -> dict:
    """A tiny generated company (raw tables only; no ground truth is written)."""
    frames = sample.generate(250, 400, 11)
    return {name: frames[name] for name in store.TABLES}


def _build(tmp_path_factory, company: dict, loaded: tuple[str, ...]) -> Path:
    """A database holding only the `loaded` raw tables of `company`, built by every stage."""
    path = tmp_path_factory.mktemp("partial") / f"{'_'.join(loaded)}.duckdb"
    con = store.connect_writer(path)
    try:
        for name in loaded:
            con.register("_frame", company[name])
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _frame")  # noqa: S608 contract names
            con.unregister("_frame")
        results = pipeline.build(con, params={"mmm": {"bootstrap": 5}})
        assert [(r.stage, r.status) for r in results] == [(s.name, "ok") for s in pipeline.STAGES]
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def customers_and_orders(tmp_path_factory, company) -> Path:
    return _build(tmp_path_factory, company, ("src_customers", "orders"))


@pytest.fixture(scope="module")
def orders_only(tmp_path_factory, company) -> Path:
    return _build(tmp_path_factory, company, ("orders",))


@pytest.fixture(scope="module")
def spend_only(tmp_path_factory, company) -> Path:
    return _build(tmp_path_factory, company, ("spend",))


@pytest.fixture(scope="module")
def spend_and_orders(tmp_path_factory, company) -> Path:
    return _build(tmp_path_factory, company, ("spend", "orders"))


def _open(db: Path, stem: str, monkeypatch, query: dict | None = None) -> AppTest:
    monkeypatch.setenv("CCRM_DB", str(db))
    at = AppTest.from_file(page_file(stem), default_timeout=120)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _notices(at: AppTest) -> str:
    return " ".join(str(m.value) for m in [*at.info, *at.warning])


def _links_to_data_page(at: AppTest) -> bool:
    return any(link.proto.page == "data" for link in at.get("page_link"))


def _scalar(db: Path, sql: str):
    # the app's kind of connection: the pages' process-wide one may already be open
    con = store.connect_app(db)
    try:
        return con.execute(sql).fetchall()[0][0]
    finally:
        con.close()


# --- core ---------------------------------------------------------------------------------------


def test_missing_inputs_names_them_in_users_words(customers_and_orders, spend_only):
    con = store.connect_app(customers_and_orders)
    try:
        missing = inputs.missing_inputs(con, "attribution")
    finally:
        con.close()
    assert missing == ["events", "spend"]
    assert inputs.missing_inputs_message("attribution", missing).startswith(
        f"Attribution needs {EVENTS_AND_SPEND}; load them on the Data page."
    )
    assert "ask an admin" in inputs.missing_inputs_message("attribution", missing, False)
    con = store.connect_app(spend_only)
    try:
        assert inputs.missing_inputs(con, "budget_simulator") == ["orders"]
    finally:
        con.close()


def test_orders_without_customer_records_make_one_customer_per_key(orders_only, company):
    orders = company["orders"]
    keys = orders[["source_system", "source_id"]].drop_duplicates()
    assert _scalar(orders_only, "SELECT count(*) FROM customers") == len(keys)
    assert _scalar(
        orders_only, "SELECT count(*) FROM identity_map WHERE method = 'no_customer_record'"
    ) == len(keys)
    # every order belongs to a customer: the KPIs count all the revenue
    assert _scalar(orders_only, "SELECT count(*) FROM customer_orders") == len(orders)
    assert _scalar(orders_only, "SELECT sum(orders) FROM mart_daily_kpis") == len(orders)


def test_marts_pages_read_exist_and_are_empty_without_their_inputs(spend_only, orders_only):
    # spend without orders: nothing for the media mix model to explain
    assert _scalar(spend_only, "SELECT count(*) FROM mart_response_curves") == 0
    assert _scalar(spend_only, "SELECT count(*) FROM mart_customer") == 0
    assert _scalar(orders_only, "SELECT count(*) FROM mart_response_curves") == 0
    assert _scalar(orders_only, "SELECT count(*) FROM mart_attribution") == 0


# --- customers and orders -----------------------------------------------------------------------


def test_customers_and_orders_light_up_the_radar_pages(customers_and_orders, monkeypatch):
    at = _open(customers_and_orders, "command_center", monkeypatch)
    orders = _scalar(customers_and_orders, "SELECT count(*) FROM orders")
    assert int(metric_value(at, "Orders").replace(",", "")) > 0
    assert orders > 0
    assert not any("No orders are loaded" in str(i.value) for i in at.info)

    at = _open(customers_and_orders, "segment_explorer", monkeypatch)
    assert (
        metric_value(at, "Customers")
        == f"{_scalar(customers_and_orders, 'SELECT count(*) FROM mart_customer'):,}"
    )

    cid = _scalar(
        customers_and_orders,
        "SELECT customer_id FROM customer_orders GROUP BY ALL ORDER BY count(*) DESC, 1 LIMIT 1",
    )
    at = _open(customers_and_orders, "customer_360", monkeypatch, {"customer_id": cid})
    assert at.dataframe, "the orders timeline is shown"

    at = _open(customers_and_orders, "data_hygiene", monkeypatch)
    assert metric_value(at, "Overall") != "n/a"


@pytest.mark.parametrize("stem", ["attribution", "budget_simulator"])
def test_customers_and_orders_conductor_pages_name_events_and_spend(
    customers_and_orders, monkeypatch, stem
):
    at = _open(customers_and_orders, stem, monkeypatch)
    shown = _notices(at)
    assert "media spend" in shown and "load " in shown and "Data page" in shown
    if stem == "attribution":
        assert f"Attribution needs {EVENTS_AND_SPEND}; load them on the Data page." in shown
    else:
        assert "The Budget Simulator needs media spend; load it on the Data page." in shown
    assert _links_to_data_page(at)


# --- orders only (no customer file) -------------------------------------------------------------


def test_orders_only_every_page_works(orders_only, monkeypatch):
    at = _open(orders_only, "command_center", monkeypatch)
    assert int(metric_value(at, "Orders").replace(",", "")) > 0
    at = _open(orders_only, "segment_explorer", monkeypatch)
    assert int(metric_value(at, "Customers").replace(",", "")) > 0
    cid = _scalar(orders_only, "SELECT min(customer_id) FROM customer_orders")
    _open(orders_only, "customer_360", monkeypatch, {"customer_id": cid})
    at = _open(orders_only, "data_hygiene", monkeypatch)
    assert "Data Hygiene needs customer records" in _notices(at) and _links_to_data_page(at)
    at = _open(orders_only, "attribution", monkeypatch)
    assert f"Attribution needs {EVENTS_AND_SPEND}" in _notices(at) and _links_to_data_page(at)
    at = _open(orders_only, "budget_simulator", monkeypatch)
    assert "needs media spend" in _notices(at) and _links_to_data_page(at)


# --- spend only, and spend with orders (no customers) ------------------------------------------


def test_spend_only_every_page_names_what_is_missing(spend_only, monkeypatch):
    at = _open(spend_only, "command_center", monkeypatch)
    assert "The Command Center needs orders" in _notices(at) and _links_to_data_page(at)
    at = _open(spend_only, "attribution", monkeypatch)
    assert "Attribution needs marketing events (clicks, opens, visits) and orders" in _notices(at)
    at = _open(spend_only, "budget_simulator", monkeypatch)
    assert "The Budget Simulator needs orders" in _notices(at) and _links_to_data_page(at)
    for stem in ("customer_360", "data_hygiene", "data"):
        at = _open(spend_only, stem, monkeypatch)
        assert re.search(r"[Nn]o |[Nn]othing|[Ss]earch for| needs ", _notices(at)) or stem == "data"


def test_spend_only_segment_explorer_works(spend_only, monkeypatch):
    at = _open(spend_only, "segment_explorer", monkeypatch)
    assert re.search(r"[Nn]o ", _notices(at))


def test_spend_and_orders_give_the_media_mix_model_and_budget(spend_and_orders, monkeypatch):
    assert _scalar(spend_and_orders, "SELECT count(*) FROM mart_response_curves") > 0
    at = _open(spend_and_orders, "budget_simulator", monkeypatch)
    assert "needs" not in _notices(at)
    at = _open(spend_and_orders, "attribution", monkeypatch)
    shown = _notices(at)
    assert "Attribution needs marketing events (clicks, opens, visits);" in shown
    assert metric_value(at, "R²") != "nan"


def test_the_data_page_is_a_listed_page():
    # the notice's link opens the page st.navigation registers
    assert "app_pages/data.py" in navigation.page_paths()
