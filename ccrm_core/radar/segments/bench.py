"""Benchmark (`ccrm bench`: segment_filter): the Segment Explorer's filter and scheme changes."""

from __future__ import annotations

import numpy as np

from ccrm_core.foundation import store
from ccrm_core.radar.segments.rules import rule_counts
from ccrm_core.radar.segments.schemes import SCHEMES, VALUE_TIERS
from ccrm_core.radar.segments.views import segment_mix, segment_overlap, segment_profile


def bench_segment_filter(ctx) -> tuple[int, dict]:
    """What the Segment Explorer does when a filter or the scheme changes, on the built
    database: 40 rule-count queries with varying thresholds (the rule builder's live count) and
    a profile + mix per scheme. Figures: p50/p95/max ms of a rule count, p95 ms of a scheme
    switch (profile + channel mix + overlap)."""
    import time

    con = store.connect_reader(ctx.db)
    try:
        customers = con.execute("SELECT count(*) FROM mart_customer").fetchall()[0][0]
        tiers = [name for name, _ in VALUE_TIERS]
        rule_ms = []
        for i in range(40):
            rules = [
                ("value_tier", "in", tuple(tiers[: 1 + i % 3])),
                ("prob_alive", ">=", 0.2 + 0.015 * i),
                ("orders", ">=", 1 + i % 4),
            ]
            t0 = time.perf_counter()
            rule_counts(con, rules)
            rule_ms.append((time.perf_counter() - t0) * 1000)
        switch_ms = []
        for scheme in (*SCHEMES, *SCHEMES):
            t0 = time.perf_counter()
            segment_profile(con, scheme)
            segment_mix(con, scheme, "channel")
            segment_overlap(con, scheme, "value_tier")
            switch_ms.append((time.perf_counter() - t0) * 1000)
    finally:
        con.close()
    figures = {
        "rule_count_p50_ms": round(float(np.percentile(rule_ms, 50)), 1),
        "rule_count_p95_ms": round(float(np.percentile(rule_ms, 95)), 1),
        "rule_count_max_ms": round(max(rule_ms), 1),
        "scheme_switch_p95_ms": round(float(np.percentile(switch_ms, 95)), 1),
    }
    return int(customers), figures
