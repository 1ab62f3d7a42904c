"""Real-browser tests: every page in the navigation renders with the demo data, no exception.

A full-page screenshot per page goes to test-artifacts/screenshots/<page>.png.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ccrm_ui import navigation

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def _url_path(entry) -> str:
    default_set = any(p[4] for p in navigation.PAGES)
    is_default = entry[4] or (not default_set and entry is navigation.PAGES[0])
    return "" if is_default else Path(entry[1]).stem


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_selector(IDLE, timeout=120_000)
    # charts and data frames render after the script finishes
    page.wait_for_timeout(1500)
    page.wait_for_selector(IDLE, timeout=120_000)
    return page, errors


@pytest.mark.parametrize("entry", navigation.PAGES, ids=[Path(p[1]).stem for p in navigation.PAGES])
def test_page_renders_in_a_real_browser(app_server, browser, entry):
    base, _ = app_server
    page, errors = open_page(browser, f"{base}/{_url_path(entry)}")
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        stem = Path(entry[1]).stem
        # what an executive sees at a glance on a 1400x900 screen, then the whole page
        page.screenshot(path=str(SCREENSHOTS / f"{stem}.png"))
        height = page.evaluate(
            "() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight"
        )
        page.set_viewport_size({"width": 1400, "height": max(900, min(int(height), 12000))})
        page.wait_for_timeout(800)
        page.screenshot(path=str(SCREENSHOTS / f"{stem}_full.png"))
        exceptions = page.locator("[data-testid='stException']")
        assert exceptions.count() == 0, exceptions.first.inner_text()
        assert not errors, errors
        # the page's own title is shown
        assert page.get_by_role("heading", name=entry[2]).first.is_visible()
    finally:
        page.close()


def test_cli_ingest_while_the_app_is_open_fails_clearly_and_changes_nothing(
    app_server, browser, tmp_path
):
    """The app holds the database read-write; a command-line writer must refuse cleanly."""
    base, db = app_server
    page, _ = open_page(browser, f"{base}/data")  # makes sure the app has opened the database
    page.close()
    csv = tmp_path / "campaigns.csv"
    csv.write_text("campaign_id,name,channel,offer,start_date,end_date\nX1,Test,email,,,\n")
    proc = subprocess.run(
        [sys.executable, "-m", "ccrm_core.cli", "ingest", str(csv), "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3
    assert "in use by another process" in proc.stderr
    assert proc.stderr.count("\n") == 1  # one line, no traceback
    # the app still works and still shows the data it had
    page, errors = open_page(browser, f"{base}/data")
    try:
        assert page.locator("[data-testid='stException']").count() == 0 and not errors
        assert page.get_by_role("heading", name="What is loaded").first.is_visible()
    finally:
        page.close()


def test_clicking_an_alert_opens_the_trend_on_it(browser, tmp_path):
    """A row picked in the Command Center's alert table puts its series and days in the view and
    the link (the callback only a browser can fire)."""
    import radar_data
    from conftest import streamlit_server

    from ccrm_core.foundation import store

    db = radar_data.build_company(tmp_path / "radar.duckdb")
    con = store.connect_writer(db)
    try:
        con.execute("DELETE FROM mart_kpi_alerts")
        con.execute(
            "INSERT INTO mart_kpi_alerts VALUES ('week', 'new_customers', 'all', "
            "DATE '2024-08-05', DATE '2024-08-11', 1, 'drop', 1, 4, -3, -0.75, 5, "
            "'New customers fell in August')"
        )
    finally:
        con.close()
    with streamlit_server(db, tmp_path / "streamlit.log") as base:
        page, errors = open_page(browser, f"{base}/")
        try:
            page.set_viewport_size({"width": 1400, "height": 2400})
            grid = page.locator(".st-key-cc_alert_table_0 [data-testid='stDataFrame']").first
            box = grid.bounding_box()
            page.mouse.click(box["x"] + 18, box["y"] + 52)  # the first row's selection box
            page.wait_for_function("() => location.search.includes('alert=')", timeout=60_000)
            page.wait_for_selector(IDLE, timeout=120_000)
            assert "alert=week%3Anew_customers%3A2024-08-11%3Aall" in page.url
            assert "metric=new_customers" in page.url and "grain=week" in page.url
            assert page.get_by_text("Showing the alert (weekly series)").first.is_visible()
            assert page.locator("[data-testid='stException']").count() == 0 and not errors
        finally:
            page.close()
