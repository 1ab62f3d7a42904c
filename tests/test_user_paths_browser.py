"""Real browser: each kind of user walks their usual path through the app, step by step.

- executive: picks a period, opens why revenue changed, opens the newest alert on its trend;
- marketer: builds a rule segment, saves it, exports it for an ad platform; searches a customer
  and opens the profile with one click;
- analyst: changes the attribution model, optimizes the budget, saves the plan as a scenario;
- admin: uploads a file that replaces rows (sees how many, confirms), then rebuilds (confirms).

Every step leaves a screenshot in test-artifacts/screenshots/path_<user>_<n>_<step>.png and is
checked for what the user came for (a number, a link, a saved row), never for how long it took:
each wait is for the page to say it has finished (the test's own timeout stops a run that
never does). The walk runs on its own server over a copy of the demo database.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import streamlit_server

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
NO_LIMIT = 0  # Playwright waits without a time limit


@pytest.fixture(scope="module")
def walk_app(demo_db, tmp_path_factory):
    work = tmp_path_factory.mktemp("walk")
    db = work / "walk.duckdb"
    shutil.copy(demo_db, db)
    with streamlit_server(db, work / "streamlit.log") as base:
        yield base, db, work


class Walk:
    """One user's browser tab: opens pages, drives widgets, waits for the app, screenshots."""

    def __init__(self, browser, base: str, user: str):
        self.base, self.user, self.step = base, user, 0
        self.page = browser.new_page(viewport={"width": 1440, "height": 900})
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def settle(self) -> None:
        """Wait for the script to finish the run a click started (and for late elements)."""
        self.page.wait_for_timeout(250)
        self.page.wait_for_selector(IDLE, timeout=NO_LIMIT)
        self.page.wait_for_timeout(250)
        self.page.wait_for_selector(IDLE, timeout=NO_LIMIT)

    def open(self, path: str) -> None:
        self.page.goto(f"{self.base}/{path}", wait_until="domcontentloaded")
        self.page.wait_for_selector(IDLE, timeout=NO_LIMIT)
        self.settle()

    def shot(self, name: str, at=None) -> None:
        """Screenshot the step (scrolled to the locator `at`, if given) and check that nothing
        failed on the way."""
        self.step += 1
        if at is not None:
            at.first.scroll_into_view_if_needed()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"path_{self.user}_{self.step}_{name}.png"))
        exceptions = self.page.locator("[data-testid='stException']")
        assert exceptions.count() == 0, exceptions.first.inner_text()
        assert not self.errors, self.errors

    def widget(self, testid: str, label: str):
        return (
            self.page.locator(f"[data-testid='{testid}']")
            .filter(has=self.page.get_by_text(label, exact=True))
            .first
        )

    def pick(self, label: str, option: str) -> None:
        """Choose `option` in the selectbox labelled `label`."""
        box = self.page.get_by_role("combobox", name=label, exact=True).first
        box.click()
        box.fill(option)  # the list filters to what is typed: the option is then in view
        self.page.get_by_role("option", name=option, exact=True).first.click()
        self.settle()

    def segment(self, label: str, option: str) -> None:
        """Press `option` in the segmented control labelled `label`."""
        group = self.widget("stButtonGroup", label)
        group.locator("button").filter(has_text=re.compile(f"^{re.escape(option)}$")).click()

    def click(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).first.click()
        self.settle()

    def tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name, exact=True).first.click()
        self.page.wait_for_timeout(300)

    def close(self) -> None:
        self.page.close()


def test_executive_period_why_and_alert(walk_app, browser):
    base, _, _ = walk_app
    walk = Walk(browser, base, "executive")
    try:
        walk.open("")
        walk.shot("command_center")
        walk.segment("Period", "365d")
        walk.page.wait_for_function("() => location.search.includes('period=365')")
        walk.settle()
        assert walk.page.get_by_text(re.compile(r"\(365 days; data to ")).first.is_visible()
        walk.shot("period_365_days")

        walk.page.get_by_text("Why did it change?", exact=False).first.click()
        walk.settle()
        why = walk.page.get_by_text(re.compile(r"orders effect|order-value effect", re.I))
        why.first.wait_for(timeout=NO_LIMIT)
        walk.shot("why_revenue_changed", at=why)

        walk.click("Show it on the trend")
        walk.page.wait_for_function("() => location.search.includes('alert=')")
        walk.settle()
        assert walk.page.get_by_text("Showing the alert").first.is_visible()
        walk.shot("alert_on_trend", at=walk.page.get_by_text("Showing the alert"))
    finally:
        walk.close()


def test_marketer_rule_save_export_and_profile(walk_app, browser):
    base, _, _ = walk_app
    walk = Walk(browser, base, "marketer")
    page = walk.page
    try:
        walk.open("segment_explorer")
        walk.tab("Rule builder")
        page.get_by_text("Matching customers").first.wait_for(timeout=NO_LIMIT)
        matching = walk.widget("stMetric", "Matching customers").locator(
            "[data-testid='stMetricValue']"
        )
        members = int(matching.inner_text().replace(",", ""))
        assert members > 0
        name = walk.widget("stTextInput", "Save as").locator("input")
        name.fill("Walk: loyal high value")
        name.press("Enter")
        walk.settle()
        walk.shot("rule_built")
        walk.click("Save segment")
        page.get_by_text(re.compile(r"Saved Walk: loyal high value \(")).first.wait_for(
            timeout=NO_LIMIT
        )
        assert page.get_by_text(f"Saved Walk: loyal high value ({members:,} customers)").count()
        walk.shot("segment_saved", at=page.get_by_text("Saved Walk: loyal high value ("))

        walk.pick("Segment scheme", "Saved rule segments")
        walk.tab("Drill-down & export")
        page.get_by_text("Send to", exact=True).first.wait_for(timeout=NO_LIMIT)
        page.get_by_text("Google Ads Customer Match", exact=True).first.click()
        walk.settle()
        activation = walk.widget("stTextInput", "Remember as activation (optional)")
        activation.locator("input").fill("Walk activation")
        activation.locator("input").press("Enter")
        walk.settle()
        slider = walk.widget("stSlider", "Hold out (not sent, for measuring)")
        slider.get_by_role("slider").focus()
        page.keyboard.press("ArrowRight")  # one step: 5 %
        page.keyboard.press("ArrowRight")  # 10 %
        walk.settle()
        walk.shot("export_planned", at=slider)
        page.get_by_role("button", name=re.compile(r"^Prepare export of [\d,]+ people$")).click()
        walk.settle()
        done = page.get_by_text(re.compile(r"Export 1 of activation Walk activation: "))
        done.first.wait_for(timeout=NO_LIMIT)
        sent, held = (
            int(x.replace(",", ""))
            for x in re.search(
                r"([\d,]+) people sent, ([\d,]+) held out", done.first.inner_text()
            ).groups()
        )
        assert sent > 0 and 0 < held < sent  # a 10 % holdout of the eligible people
        with page.expect_download() as download:
            page.get_by_role("button", name=re.compile(r"^Download whole audience: ")).click()
        lines = Path(download.value.path()).read_text().splitlines()
        assert lines[0].startswith("Email,") or "Email" in lines[0]
        assert len(lines) > sent  # a header and at least one row per person sent
        walk.shot("export_downloaded", at=done)

        walk.open("customer_360")
        query = walk.widget("stTextInput", "Search customers").locator("input")
        query.fill("Smith")
        query.press("Enter")
        walk.settle()
        grid = page.locator(".st-key-c360_results [data-testid='stDataFrame']").first
        grid.wait_for(timeout=NO_LIMIT)
        walk.shot("search_results")
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 18, box["y"] + 52)  # the first result's selection box
        page.wait_for_function("() => location.search.includes('customer_id=')")
        walk.settle()
        page.get_by_role("tab", name="Next best action").first.wait_for(timeout=NO_LIMIT)
        walk.shot("profile_opened")
    finally:
        walk.close()


def test_analyst_attribution_model_budget_optimize_and_scenario(walk_app, browser):
    base, _, _ = walk_app
    walk = Walk(browser, base, "analyst")
    page = walk.page
    try:
        walk.open("attribution")
        walk.shot("attribution")
        walk.pick("Model", "Shapley")
        page.wait_for_function("() => location.search.includes('model=shapley')")
        walk.settle()
        walk.shot("model_shapley")

        walk.open("budget_simulator")
        revenue = walk.widget("stMetric", "Revenue / week").locator("[data-testid='stMetricValue']")
        before = revenue.inner_text()
        walk.shot("budget_current_plan")
        walk.click("Optimize")
        done = page.get_by_text(re.compile(r"^Optimized .*: [\d,]+ per week \([+-][\d.]+% against"))
        done.first.wait_for(timeout=NO_LIMIT)
        change = float(re.search(r"\(([+-][\d.]+)% against", done.first.inner_text()).group(1))
        assert change >= 0  # the optimizer never proposes a worse plan than the one it started from
        walk.shot("budget_optimized", at=done)

        name = walk.widget("stTextInput", "Scenario name").locator("input")
        name.fill("Walk: optimized plan")
        name.press("Enter")
        walk.settle()
        walk.click("Save the proposed plan")
        page.get_by_text("Saved scenario “Walk: optimized plan”.").first.wait_for(timeout=NO_LIMIT)
        saved = page.get_by_role("combobox", name="Saved scenario", exact=True)
        assert saved.input_value() == "Walk: optimized plan"
        walk.shot("scenario_saved", at=saved)
        assert before  # the current plan's revenue was on screen before optimizing
    finally:
        walk.close()


def test_admin_upload_with_confirm_then_rebuild(walk_app, browser, tmp_path):
    base, _, _ = walk_app
    walk = Walk(browser, base, "admin")
    page = walk.page
    try:
        walk.open("data")
        walk.shot("data_page")
        # two campaigns that are loaded already (new names) and one new campaign
        csv = tmp_path / "campaigns.csv"
        csv.write_text(
            "campaign_id,name,channel,offer,start_date,end_date\n"
            "CMP0001,Renamed by the walk,email,,,\n"
            "CMP0002,Renamed again,sms,,,\n"
            "WALK1,A new campaign,email,,,\n"
        )
        page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(csv))
        walk.settle()
        walk.click("Load files")
        ask = page.get_by_text("campaigns.csv replaces 2 existing rows of ")
        ask.first.wait_for(timeout=NO_LIMIT)
        assert page.get_by_text("(and adds 1 new)", exact=False).count()
        walk.shot("replace_asks_to_confirm", at=ask)
        walk.click("Replace 2 rows")
        loaded = page.get_by_text(
            re.compile(r"campaigns: 3 rows loaded \(2 replaced\), 0 rejected")
        )
        loaded.first.wait_for(timeout=NO_LIMIT)
        walk.shot("replaced_after_confirm", at=loaded)

        page.get_by_role("button", name="Rebuild", exact=True).first.click()
        walk.settle()
        confirm = page.get_by_text(re.compile(r"^Rebuild all \d+ stages, in order: "))
        confirm.first.wait_for(timeout=NO_LIMIT)
        walk.shot("rebuild_asks_to_confirm", at=confirm)
        walk.click("Rebuild now")
        built = page.get_by_text(re.compile(r"^Built \d+ stages in "))
        built.first.wait_for(timeout=NO_LIMIT)
        walk.shot("rebuilt", at=built)
    finally:
        walk.close()
