"""Real browser: hostile data and URL parameters never become a link or an image.

The app runs over the demo database with hostile text planted everywhere (tests/hostile_data.py).
Each page opened here, with hostile URL parameters where it reads them, must draw the planted text
(as text) and hold no element that links to or loads from the planted host: no `a[href]`,
`img[src]` or SVG `xlink:href` (Plotly draws `<a href>` in a label as an SVG link) pointing
there. Selectbox options are checked with their list open: Streamlit shows them as plain text.
"""

from __future__ import annotations

import shutil
from urllib.parse import urlencode

import hostile_data
import pytest
from conftest import streamlit_server
from hostile_data import hostile
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.browser

HOST = "evil."  # every planted link and image points to evil.example or evil.ex

# Elements that link to or load from the planted host, and whether the planted text is shown.
FIND = """host => ({
  links: [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
      .filter(a => ['href', 'src', 'xlink:href', 'srcset', 'action'].includes(a.name)
                   && a.value.includes(host))
      .map(a => `<${e.tagName.toLowerCase()} ${a.name}="${a.value}">`)),
  shown: document.documentElement.textContent.includes(host + 'example'),
  exceptions: document.querySelectorAll("[data-testid='stException']").length,
})"""
SHOWN = "host => document.documentElement.textContent.includes(host + 'example')"
# The script has run and drawn the page, and Plotly has drawn every chart (charts render after
# the script finishes).
READY = """() => document.querySelector("[data-testid='stApp'][data-test-script-state='notRunning']")
  && document.querySelector("[data-testid='stMain'] [data-testid='stElementContainer']")
  && [...document.querySelectorAll("[data-testid='stPlotlyChart']")]
       .every(c => c.querySelector('.main-svg'))"""


@pytest.fixture(scope="module")
def hostile_app(demo_db, tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile_app")
    db = work / "hostile.duckdb"
    shutil.copy(demo_db, db)
    planted = hostile_data.plant(db)
    with streamlit_server(db, work / "streamlit.log") as base:
        yield base, planted


def visit(browser, url: str, open_selectbox: str | None = None) -> dict:
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        page.wait_for_function(READY, timeout=120_000)
        try:  # the planted text shows once the page has drawn its data
            page.wait_for_function(SHOWN, arg=HOST, timeout=60_000)
        except PlaywrightTimeout:
            pass  # reported below as shown: false
        if open_selectbox:
            page.get_by_role("combobox", name=open_selectbox, exact=True).first.click()
            page.wait_for_selector("[role='option']", timeout=60_000)
        found = page.evaluate(FIND, HOST)
        found["errors"] = errors
        return found
    finally:
        page.close()


def test_hostile_url_parameters_and_data_show_as_text(hostile_app, browser):
    base, planted = hostile_app
    visits = {
        "command center, hostile link": (
            "/?" + urlencode({k: hostile(f"url-{k}") for k in ("period", "segment", "channel")}),
            "Segment",
        ),
        "customer 360, unknown hostile id": (
            "/customer_360?" + urlencode({"customer_id": hostile("url-id") + "`"}),
            None,
        ),
        "customer 360, hostile profile": (
            "/customer_360?" + urlencode({"customer_id": planted["customer_id"]}),
            None,
        ),
        "attribution": ("/attribution?" + urlencode({"model": hostile("url-model")}), None),
        "budget simulator": (
            "/budget_simulator?" + urlencode({"plan": hostile("url-plan")}),
            None,
        ),
        "data hygiene": ("/data_hygiene", None),
    }
    problems = {}
    for name, (path, selectbox) in visits.items():
        found = visit(browser, base + path, selectbox)
        if found["links"] or not found["shown"] or found["exceptions"] or found["errors"]:
            problems[name] = found
    assert problems == {}
