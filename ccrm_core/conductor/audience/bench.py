"""Benchmark (`ccrm bench`: destination_export): exporting half of the customers to each ad
platform, the way `ccrm export audience --destination ...` does."""

from __future__ import annotations

import shutil
import time


def bench_destination_export(ctx) -> tuple[int, dict]:
    """On a copy of the built database: save a rule segment of the customers at or above the
    median 12-month CLV (about half of the base; the target is a 500k-person segment at M), then
    export it to Google Ads and to Meta as a new activation (consent, caps, every identifier,
    normalising, hashing, the CSV file, the activation's members and the audit row). Rows: people
    in the segment. Figures: seconds and file rows per destination."""
    from ccrm_core.conductor.audience.delivery import export_destination
    from ccrm_core.foundation import access, store
    from ccrm_core.radar import segments

    work = ctx.fresh_db("destination_export")
    shutil.copy(ctx.db, work)
    con = store.connect_writer(work)
    figures: dict = {}
    try:
        median = con.execute("SELECT median(clv) FROM mart_customer").fetchall()[0][0] or 0.0
        members = segments.save_segment(con, "Bench half", [("clv", ">=", float(median))])
        user = access.local_user("bench@localhost")
        for destination in ("google_ads", "meta"):
            out = ctx.workdir / f"bench_{destination}.csv"
            t0 = time.perf_counter()
            export = export_destination(
                con, user, segments.SAVED_SCHEME, "Bench half", destination,
                activation=f"bench {destination}", holdout=0.1, via="cli", out=out,
            )  # fmt: skip
            figures[f"{destination}_s"] = round(time.perf_counter() - t0, 2)
            figures[f"{destination}_rows"] = export.table.num_rows
            figures[f"{destination}_sent"] = export.sent
    finally:
        con.close()
    figures["segment_people"] = int(members)
    return int(members), figures
