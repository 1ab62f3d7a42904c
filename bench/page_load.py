"""Server time per page run with many sessions at once (a benchmark, not a test).

Serves the app over a built database with CCRM_TIMING=1, then drives SESSIONS concurrent browser
sessions (Debian's chromium through Playwright, the test extras) that each visit every page and
switch the Command Center's period; reports, from the app's own timing log, the server time per
script run (p50, p95, max; per page), and the browser time per visit apart. The first visit of
each page fills the process's caches; `--warm` visits every page once before the measured round,
so the figures are for a warm cache.

    .venv/bin/python bench/page_load.py --db data/ccrm.duckdb [--sessions 20] [--warm]

Writes bench/results/page_load_<label>.json (label: --label, default the database's file stem).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ccrm_ui import navigation  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _url_path(entry) -> str:
    return "" if entry[4] else Path(entry[1]).stem


def _spread(values: list[float]) -> dict:
    if not values:
        return {"runs": 0}
    a = np.array(values)
    return {
        "runs": len(values),
        "p50_s": round(float(np.percentile(a, 50)), 3),
        "p95_s": round(float(np.percentile(a, 95)), 3),
        "max_s": round(float(a.max()), 3),
    }


async def _session(browser, base: str, index: int, visits: list[dict]) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(0)
    page = await context.new_page()
    pages = (
        navigation.PAGES[index % len(navigation.PAGES) :]
        + navigation.PAGES[: index % len(navigation.PAGES)]
    )
    try:
        for n, entry in enumerate(pages):
            started = time.monotonic()
            if n == 0:
                await page.goto(f"{base}/{_url_path(entry)}", wait_until="domcontentloaded")
            else:
                nav = page.locator("[data-testid='stSidebarNav'] a")
                await nav.filter(has_text=re.compile(rf"{re.escape(entry[2])}$")).first.click()
            await page.get_by_role("heading", name=entry[2]).first.wait_for(state="visible")
            await page.wait_for_selector(IDLE)
            visits.append({"page": entry[2], "seconds": time.monotonic() - started})
            if entry[2] == "Command Center":
                started = time.monotonic()
                await page.get_by_role("radio", name="90d").first.click()
                await page.get_by_text(re.compile(r"\(90 days;")).first.wait_for(state="visible")
                await page.wait_for_selector(IDLE)
                visits.append(
                    {"page": "Command Center (90d)", "seconds": time.monotonic() - started}
                )
    finally:
        await context.close()


async def _round(base: str, sessions: int) -> list[dict]:
    from playwright.async_api import async_playwright

    visits: list[dict] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            await asyncio.gather(*(_session(browser, base, i, visits) for i in range(sessions)))
        finally:
            await browser.close()
    return visits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a built database")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--warm", action="store_true", help="visit every page once first")
    parser.add_argument("--label", help="name of the results file (default: database stem)")
    args = parser.parse_args()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="ccrm-page-load-") as tmp:
        timing = Path(tmp) / "timing.jsonl"
        env = {**os.environ, "CCRM_DB": str(Path(args.db).resolve()), "CCRM_READ_ONLY": "1"}
        env |= {"CCRM_TIMING": "1", "CCRM_TIMING_FILE": str(timing)}
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
             str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                        if r.read().decode().strip() == "ok":
                            break
                except OSError:
                    pass
                if server.poll() is not None:
                    raise SystemExit("the app did not start")
                time.sleep(0.3)  # also when it answers but is not ready yet: no busy loop
            if args.warm:
                asyncio.run(_round(base, 1))
                timing.write_text("")  # measure the warm round only
            visits = asyncio.run(_round(base, args.sessions))
            runs = [json.loads(line) for line in timing.read_text().splitlines() if line]
        finally:
            server.terminate()
            server.wait(timeout=30)
    pages = list(dict.fromkeys(r["page"] for r in runs))
    figures = {
        "database": str(args.db),
        "sessions": args.sessions,
        "warm_cache": args.warm,
        "cpu_cores": os.cpu_count(),
        "server": {
            **_spread([r["seconds"] for r in runs]),
            "by_page": {p: _spread([r["seconds"] for r in runs if r["page"] == p]) for p in pages},
        },
        "browser": {
            **_spread([v["seconds"] for v in visits]),
            "by_page": {
                p: _spread([v["seconds"] for v in visits if v["page"] == p])
                for p in dict.fromkeys(v["page"] for v in visits)
            },
        },
    }
    out = ROOT / "bench" / "results" / f"page_load_{args.label or Path(args.db).stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
