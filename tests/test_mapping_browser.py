"""Real browser: a new user goes from their own shop exports to a working Command Center and
Segment Explorer without editing a file.

The app serves an empty database. On the Data page the user uploads a Shopify customers export
and a Shopify orders export as Shopify writes them (one row per line item, totals on the first
row of each order), accepts the proposed mappings (the presets, shown with the rows as they
would load), loads, rebuilds, and sees the KPI tiles on the Command Center and the segments on
the Segment Explorer. Waits have no fixed limit: each waits for the page to say it has finished
(the test's own timeout stops a run that never does).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import streamlit_server

from ccrm_core.foundation import store
from ccrm_core.foundation.ingest import mapping

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
NO_LIMIT = 0  # Playwright waits without a time limit


@pytest.fixture(scope="module")
def new_user_app(tmp_path_factory):
    work = tmp_path_factory.mktemp("new_user")
    db = work / "new.duckdb"
    store.connect_writer(db).close()
    with streamlit_server(db, work / "streamlit.log") as base:
        yield base, db, work


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(IDLE, timeout=NO_LIMIT)
    return page, errors


def _no_exception(page, errors) -> None:
    exceptions = page.locator("[data-testid='stException']")
    assert exceptions.count() == 0, exceptions.first.inner_text()
    assert not errors, errors


def test_shopify_exports_to_kpi_tiles_in_the_browser(new_user_app, browser):
    base, db, work = new_user_app
    files = []
    for name, upload_as in (
        ("shopify_customers", "customers_export.csv"),
        ("shopify_orders", "orders_export_1.csv"),
    ):
        path = work / upload_as
        path.write_bytes(mapping.preset_example(name).read_bytes())
        files.append(path)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page, errors = _open(browser, f"{base}/data")
    try:
        page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(files)
        # each file gets its proposed mapping and a preview of the rows as they would load
        for table, rows in (("src_customers", 8), ("orders", 16)):
            page.get_by_text(f"No rejects predicted: {rows} rows would load into {table}").wait_for(
                timeout=NO_LIMIT
            )
        page.wait_for_selector(IDLE, timeout=NO_LIMIT)
        assert page.get_by_text(re.compile(r"preset shopify_orders")).count() == 1
        _no_exception(page, errors)
        page.screenshot(path=str(SCREENSHOTS / "data_mapping.png"), full_page=True)
        page.get_by_role("button", name="Load files").click()
        page.get_by_text("orders_export_1.csv → orders: 16 rows loaded").wait_for(timeout=NO_LIMIT)
        page.get_by_text("customers_export.csv → src_customers: 8 rows loaded").wait_for(
            timeout=NO_LIMIT
        )
        page.wait_for_selector(IDLE, timeout=NO_LIMIT)
        _no_exception(page, errors)
        page.get_by_role("button", name="Rebuild", exact=True).click()
        page.get_by_role("button", name="Rebuild now").click()  # the confirm step
        page.get_by_text(re.compile(r"^Build \d+ finished")).wait_for(timeout=NO_LIMIT)
        page.wait_for_selector(IDLE, timeout=NO_LIMIT)
        _no_exception(page, errors)
    finally:
        page.close()

    page, errors = _open(browser, f"{base}/")
    try:
        tiles = page.locator("[data-testid='stMetric']")
        tiles.first.wait_for(timeout=NO_LIMIT)
        page.wait_for_selector(IDLE, timeout=NO_LIMIT)
        orders = tiles.filter(has=page.get_by_text("Orders", exact=True)).first
        value = orders.locator("[data-testid='stMetricValue']").inner_text().strip()
        assert int(value.replace(",", "")) > 0, value
        revenue = tiles.filter(has=page.get_by_text("Revenue", exact=True)).first
        assert revenue.locator("[data-testid='stMetricValue']").inner_text().strip() != "–"
        _no_exception(page, errors)
        page.screenshot(path=str(SCREENSHOTS / "command_center_own_data.png"), full_page=True)
    finally:
        page.close()

    page, errors = _open(browser, f"{base}/segment_explorer")
    try:
        page.get_by_role("heading", name="Segment Explorer").first.wait_for(timeout=NO_LIMIT)
        page.wait_for_selector(IDLE, timeout=NO_LIMIT)
        _no_exception(page, errors)
        page.screenshot(path=str(SCREENSHOTS / "segment_explorer_own_data.png"), full_page=True)
    finally:
        page.close()
