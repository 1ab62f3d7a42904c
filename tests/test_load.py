"""Many users: 20 browser sessions at once, each visiting every page and
changing a filter, while a rebuild runs inside the app; no session sees an exception, and no
page shows half-built data.

Set-up: the app serves a private copy of the demo database into which extra orders were
ingested (not yet built), so the rebuild really changes the marts. One session presses Rebuild
on the Data page (the rebuild must run in the app's process: the app holds the database). As
soon as it runs, 20 sessions (Playwright contexts in one Debian chromium, driven by asyncio)
each open one page by URL and visit the others through the sidebar, starting at different pages,
and on the Command Center switch the period to 90 days. A page visit ends when the page's title
is shown and Streamlit reports the script finished; it fails on any `stException` element or
JavaScript page error.

Half-built data: meanwhile a checker session reloads the Segment Explorer and reads its five
headline numbers (customers, buyers, revenue, average CLV, average P(alive)), which all come from
`mart_customer`, the one table of the `segments` stage. Each read must equal the numbers before
the rebuild or the numbers after it, never a mix or anything in between; and the two must differ
(the extra orders change revenue), so the check can fail.

Figures are printed and written to test-artifacts/load_test.json, never asserted: browser time
per page visit (from the click to the finished page in chromium: mostly chromium rendering 20
pages on a small machine) and, apart, server time per page run (each script run's duration, as
the app logs it with CCRM_TIMING=1), p50/p95/max and p95 per page; visits during the rebuild;
consistency reads.

Waits adapt to the machine: no wait has a fixed limit. A watchdog fails the test only when
nothing moves for STALL_SECONDS: no page visit or read finished and the server used no CPU.

The same server (CCRM_MAX_UPLOAD_MB=0.05) also shows that the Data page refuses an upload over
the limit with a clear message and loads nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    STALL_SECONDS,
    cpu_seconds,
    require_chromium,
    streamlit_server,
)

from ccrm_core.foundation import ingest, store
from ccrm_ui import navigation

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / "test-artifacts" / "load_test.json"
SESSIONS = 20
EXTRA_ORDERS = 300
UPLOAD_LIMIT_MB = 0.05
ORDER_HEADER = "order_id,ts,source_system,source_id,revenue,channel,category\n"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
NO_LIMIT = 0  # Playwright waits without a time limit; the watchdog catches a stuck run
FILTER_PAGE = "Command Center"  # its Period control is switched to 90 days


def _url_path(entry) -> str:
    """URL path of a navigation entry: '' for the default page, else the file stem."""
    default_set = any(p[4] for p in navigation.PAGES)
    is_default = entry[4] or (not default_set and entry is navigation.PAGES[0])
    return "" if is_default else Path(entry[1]).stem


def _add_orders(db: Path, folder: Path) -> None:
    """Ingest EXTRA_ORDERS orders of 100-149 for existing source records, dated inside the
    data window, so the next build changes every customer-level mart (not built here)."""
    con = store.connect_writer(db)
    try:
        records = con.execute(
            "SELECT source_system, source_id FROM src_customers ORDER BY source_system, source_id"
        ).fetchall()
        last = con.execute("SELECT max(ts) FROM orders").fetchall()[0][0]
        step = max(1, len(records) // EXTRA_ORDERS)
        rows = [
            (f"LOAD{i:06d}", last - timedelta(days=i % 200), *records[i * step], 100 + i % 50)
            for i in range(EXTRA_ORDERS)
        ]
        path = folder / "orders_load_test.csv"
        with path.open("w") as fh:
            fh.write(ORDER_HEADER)
            for order_id, ts, system, source_id, revenue in rows:
                fh.write(f"{order_id},{ts:%Y-%m-%d %H:%M:%S},{system},{source_id},{revenue},web,\n")
        [report] = ingest.ingest_files(con, [path])
        assert report.status == "loaded" and report.rows_loaded == EXTRA_ORDERS, report.message
        con.execute("CHECKPOINT")
    finally:
        con.close()


@pytest.fixture(scope="module")
def load_server(demo_db, tmp_path_factory):
    """`streamlit run app.py` on a free loopback port over a private copy of the demo database
    with extra orders ingested; yields the base URL."""
    work = tmp_path_factory.mktemp("load")
    db = work / "load.duckdb"
    shutil.copy(demo_db, db)
    _add_orders(db, work)
    timing = work / "timing.jsonl"
    env = {
        # a small upload limit for test_upload_over_the_limit_is_refused_in_the_page
        "CCRM_MAX_UPLOAD_MB": str(UPLOAD_LIMIT_MB),
        "CCRM_TIMING": "1",  # the app logs each script run's server time ...
        "CCRM_TIMING_FILE": str(timing),  # ... here
    }
    with streamlit_server(db, work / "streamlit.log", env=env) as base:
        base.timing_file = timing
        yield base


# ---------------------------------------------------------------------------------------------
# Browser side (async Playwright: its sync API is not thread-safe, and 20 pages need concurrency)


class Run:
    """What the sessions observed (one event loop: no locking needed)."""

    def __init__(self) -> None:
        self.visits: list[dict] = []  # session, page, seconds, started (monotonic)
        self.problems: list[str] = []
        self.rebuild_started: float | None = None
        self.rebuild_ended: float | None = None
        self.reads: list[tuple[str, ...]] = []

    def progress(self) -> int:
        """How much has finished so far (grows while the sessions get somewhere)."""
        return len(self.visits) + len(self.reads) + (self.rebuild_ended is not None)


def _heading(page, title: str):
    return page.get_by_role("heading", name=re.compile(rf"^\s*{re.escape(title)}\s*$"))


async def _settle(page, title: str) -> None:
    """Wait until the page titled `title` is shown and its script has finished."""
    await _heading(page, title).first.wait_for(state="visible", timeout=NO_LIMIT)
    await page.wait_for_selector(IDLE, timeout=NO_LIMIT)


async def _check(page, errors: list[str], run: Run, who: str, what: str) -> None:
    exceptions = page.locator("[data-testid='stException']")
    if await exceptions.count():
        text = (await exceptions.first.inner_text())[:300]
        run.problems.append(f"{who} on {what}: exception {text}")
    if errors:
        run.problems.append(f"{who} on {what}: page errors {errors[:3]}")
        errors.clear()


async def _new_page(browser):
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(NO_LIMIT)  # under load a click may wait long
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


async def _user_session(browser, base: str, index: int, run: Run) -> None:
    """Visit every page (first by URL, then through the sidebar, starting at a different page
    per session) and switch the Command Center's period to 90 days."""
    who = f"session {index}"
    context, page, errors = await _new_page(browser)
    pages = (
        navigation.PAGES[index % len(navigation.PAGES) :]
        + navigation.PAGES[: index % len(navigation.PAGES)]
    )
    try:
        for n, entry in enumerate(pages):
            title = entry[2]
            started = time.monotonic()
            if n == 0:
                await page.goto(f"{base}/{_url_path(entry)}", wait_until="domcontentloaded")
            else:
                nav = page.locator("[data-testid='stSidebarNav'] a")
                await nav.filter(has_text=re.compile(rf"{re.escape(title)}$")).first.click()
            await _settle(page, title)
            run.visits.append(
                {"session": index, "page": title, "seconds": time.monotonic() - started,
                 "started": started}
            )  # fmt: skip
            await _check(page, errors, run, who, title)
            if title == FILTER_PAGE:
                started = time.monotonic()
                await page.get_by_role("radio", name="90d").first.click()
                await page.get_by_text(re.compile(r"\(90 days;")).first.wait_for(
                    state="visible", timeout=NO_LIMIT
                )
                await page.wait_for_selector(IDLE, timeout=NO_LIMIT)
                run.visits.append(
                    {"session": index, "page": f"{title} (period 90d)",
                     "seconds": time.monotonic() - started, "started": started}
                )  # fmt: skip
                await _check(page, errors, run, who, f"{title} after the filter change")
    except Exception as exc:  # noqa: BLE001 - a timeout or lost page is reported as a problem
        lines = " | ".join(str(exc).splitlines()[:3])  # Playwright's call log names the locator
        run.problems.append(f"{who}: {type(exc).__name__}: {lines[:400]}")
    finally:
        await context.close()


async def _read_headline(page, base: str) -> tuple[str, ...]:
    """The Segment Explorer's five headline numbers, freshly computed (a reload is a new
    session; its cached reads are keyed on the data version)."""
    entry = next(p for p in navigation.PAGES if p[2] == "Segment Explorer")
    await page.goto(f"{base}/{_url_path(entry)}", wait_until="domcontentloaded")
    await _settle(page, entry[2])
    values = page.locator("[data-testid='stMetricValue']")
    await values.nth(4).wait_for(state="visible", timeout=NO_LIMIT)
    return tuple([(await values.nth(i).inner_text()).strip() for i in range(5)])


async def _watchdog(pid: int, run: Run, work: asyncio.Future) -> None:
    """Cancel `work` when nothing has moved for STALL_SECONDS: no visit or read finished and the
    server used no CPU. A slow machine keeps moving, only slower, so it is never cut short."""
    seen, busy, moved = run.progress(), cpu_seconds(pid), time.monotonic()
    while not work.done():
        await asyncio.sleep(5)
        now_seen, now_busy = run.progress(), cpu_seconds(pid)
        if now_seen != seen or now_busy > busy + 0.05:
            seen, busy, moved = now_seen, now_busy, time.monotonic()
        elif time.monotonic() - moved > STALL_SECONDS:
            run.problems.append(
                f"stuck: nothing finished and the server used no CPU for {STALL_SECONDS} s "
                f"({len(run.visits)} visits done)"
            )
            work.cancel()
            return


def _server_times(path: Path) -> list[dict]:
    """The app's own record of each script run: page, seconds (server time), ended."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _spread(seconds: list[float]) -> dict:
    """p50, p95 and max of some durations, in seconds (None when there are none)."""
    if not seconds:
        return {"p50_s": None, "p95_s": None, "max_s": None}
    values = np.array(seconds)
    return {
        "p50_s": round(float(np.percentile(values, 50)), 3),
        "p95_s": round(float(np.percentile(values, 95)), 3),
        "max_s": round(float(values.max()), 3),
    }


async def _scenario(base: str, run: Run) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            checker, check_page, check_errors = await _new_page(browser)
            before = await _read_headline(check_page, base)
            run.reads.append(before)

            admin, data_page, data_errors = await _new_page(browser)
            entry = next(p for p in navigation.PAGES if p[2] == "Data")
            await data_page.goto(f"{base}/{_url_path(entry)}", wait_until="domcontentloaded")
            await _settle(data_page, "Data")
            finished = data_page.get_by_text(re.compile(r"Build (\d+) finished")).first
            build_no = int(re.search(r"Build (\d+)", await finished.inner_text()).group(1))
            await data_page.get_by_role("button", name="Rebuild", exact=True).click()
            await data_page.get_by_role("button", name="Rebuild now").click()  # the confirm step
            await data_page.locator("[data-testid='stProgress']").first.wait_for(
                state="visible", timeout=NO_LIMIT
            )
            run.rebuild_started = time.monotonic()

            async def rebuild_done() -> None:
                done = data_page.get_by_text(
                    re.compile(rf"Build {build_no + 1} finished|Stage \S+ failed")
                )
                await done.first.wait_for(state="visible", timeout=NO_LIMIT)
                run.rebuild_ended = time.monotonic()
                text = await done.first.inner_text()
                if "failed" in text:
                    run.problems.append(f"the rebuild failed: {text[:300]}")
                await _check(data_page, data_errors, run, "admin", "Data (rebuild)")

            async def keep_reading() -> None:
                while run.rebuild_ended is None:
                    run.reads.append(await _read_headline(check_page, base))
                    await _check(check_page, check_errors, run, "checker", "Segment Explorer")

            users = [_user_session(browser, base, i, run) for i in range(SESSIONS)]
            work = asyncio.gather(rebuild_done(), keep_reading(), *users)
            dog = asyncio.create_task(_watchdog(base.pid, run, work))
            try:
                await work
            except asyncio.CancelledError:
                pass  # the watchdog found the run stuck and said why in run.problems
            finally:
                dog.cancel()
            if run.problems and run.rebuild_ended is None:
                return
            after = await _read_headline(check_page, base)
            run.reads.append(after)
            await checker.close()
            await admin.close()
        finally:
            await browser.close()


@pytest.mark.timeout(3600)  # a backstop only: the watchdog fails a stuck run long before
def test_twenty_sessions_during_a_rebuild(load_server):
    require_chromium()
    run = Run()
    failure: list[BaseException] = []

    def drive() -> None:
        try:
            asyncio.run(_scenario(load_server, run))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread below
            failure.append(exc)

    # a thread of its own: the async API needs an event loop the pytest thread may not offer
    driver = threading.Thread(target=drive, name="load-test-driver")
    driver.start()
    driver.join()
    if failure:
        raise failure[0]

    during = [
        v
        for v in run.visits
        if run.rebuild_started is not None
        and run.rebuild_ended is not None
        and run.rebuild_started <= v["started"] <= run.rebuild_ended
    ]
    before, after = run.reads[0], run.reads[-1]
    visit_pages = list(dict.fromkeys(v["page"] for v in run.visits))
    server = _server_times(load_server.timing_file)
    # the Data page's run that performs the rebuild lasts as long as the build: page runs are
    # summarised without that page, which is reported on its own
    page_runs = [r["seconds"] for r in server if r["page"] != "Data"]
    figures = {
        "sessions": SESSIONS,
        "pages": len(navigation.PAGES),
        "cpu_cores": os.cpu_count(),
        "browser": {
            "what": "click or URL to finished page in chromium, per page visit",
            "page_visits": len(run.visits),
            **_spread([v["seconds"] for v in run.visits]),
            "p95_s_by_page": {
                name: _spread([v["seconds"] for v in run.visits if v["page"] == name])["p95_s"]
                for name in visit_pages
            },
        },
        "server": {
            "what": "server time per script run (CCRM_TIMING), pages other than Data",
            "page_runs": len(page_runs),
            **_spread(page_runs),
            "by_page": {
                name: {"runs": len(times), **_spread(times)}
                for name in dict.fromkeys(r["page"] for r in server)
                for times in [[r["seconds"] for r in server if r["page"] == name]]
            },
        },
        "visits_during_rebuild": len(during),
        "rebuild_s": round(run.rebuild_ended - run.rebuild_started, 1)
        if run.rebuild_ended and run.rebuild_started
        else None,
        "consistency_reads": len(run.reads),
        "reads_showing_before": sum(r == before for r in run.reads),
        "reads_showing_after": sum(r == after for r in run.reads),
        "headline_before": list(before),
        "headline_after": list(after),
    }
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(figures, indent=2) + "\n")
    print("\nload test: " + json.dumps(figures))

    assert not run.problems, run.problems[:10]
    # every session visited every page and changed the filter
    assert len(run.visits) == SESSIONS * (len(navigation.PAGES) + 1), len(run.visits)
    assert run.rebuild_ended is not None
    assert during, "no page visit overlapped the rebuild"
    # the app timed every run it served: at least one per page visit
    assert len(server) >= len(run.visits), (len(server), len(run.visits))
    assert {v["page"] for v in run.visits if "(" not in v["page"]} <= {r["page"] for r in server}
    # no half-built data: every read is the whole before or the whole after
    assert before != after, "the rebuild did not change the Segment Explorer's numbers"
    assert all(r in (before, after) for r in run.reads), sorted(set(run.reads))


def test_upload_over_the_limit_is_refused_in_the_page(load_server, browser, tmp_path):
    """The Data page checks CCRM_MAX_UPLOAD_MB (0.05 MB on this server) before writing or
    loading anything: an upload of 0.1 MB gets a one-line error naming file, size and limit."""
    big = tmp_path / "orders_too_big.csv"
    line = "o{},2024-01-01 00:00:00,shop,c1,1.0,web,\n"
    big.write_text(ORDER_HEADER + "".join(line.format(i) for i in range(2500)))
    size_mb = big.stat().st_size / 2**20
    assert size_mb > UPLOAD_LIMIT_MB
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        entry = next(p for p in navigation.PAGES if p[2] == "Data")
        page.goto(f"{load_server}/{_url_path(entry)}", wait_until="domcontentloaded")
        _heading(page, "Data").first.wait_for(state="visible", timeout=NO_LIMIT)
        page.wait_for_selector(IDLE, timeout=NO_LIMIT)
        page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(big)
        load = page.get_by_role("button", name="Load files")
        load.and_(page.locator(":enabled")).wait_for(timeout=NO_LIMIT)
        load.click()
        message = page.get_by_text(re.compile(r"above the upload limit")).first
        message.wait_for(state="visible", timeout=NO_LIMIT)
        page.wait_for_selector(IDLE, timeout=NO_LIMIT)
        assert message.inner_text().strip() == (
            f"orders_too_big.csv: is {size_mb:,.1f} MB, above the upload limit of "
            f"{UPLOAD_LIMIT_MB:g} MB (CCRM_MAX_UPLOAD_MB); split the file, or stop the app and "
            "load it with `ccrm ingest`"  # shown as text: a message is never read as markdown
        )
        assert page.get_by_text(re.compile(r"rows loaded")).count() == 0
        assert page.locator("[data-testid='stException']").count() == 0 and not errors
    finally:
        page.close()
