"""`ccrm sample`: a synthetic company with planted ground truth.

The generator plants what the other modules must recover and writes that truth next to the raw
data, so tests can measure recovery instead of eyeballing it:

- persons (the N "customers") with 1+ records in three source systems (ecommerce, loyalty,
  call_center), realistic variations between a person's records (typos, nicknames, email case and
  gmail dots, phone formats, moved addresses) and exact-count data-quality defects;
- anonymous cookies/devices whose visits precede a `login` event that links them to a record;
- five needs-based personas with distinct channel, category and sales-channel preferences;
- purchases from a buy-till-you-die process (BG/NBD counts, Gamma-Gamma spend) with weekly and
  yearly seasonality by thinning;
- daily media spend on 10 channels with geometric adstock and Hill saturation; the incremental
  revenue they cause is realised as real orders (and acquisitions) with a preceding touch;
- consents (opt-outs per channel), campaigns, one A/B test with a planted lift, and two KPI
  anomalies (a 4-day revenue drop on one sales channel, one day with ~4x new customers).

Grain and units: money in currency units (dollars), rates per week for purchase rates, days for
adstock, timestamps naive (no time zone) at second resolution. Everything is a function of
(customers, days, seed, end_date): no wall clock, no Python hash(); numpy PCG64 only.

Performance: everything is vectorised over persons, records, orders and events (loops run over
purchase index, channels, personas or countries, never over rows); strings are built at the end
with pyarrow kernels or fixed-width byte matrices.

Public API: `generate`, `write_sample`, `write_csv`, `build_sample_db`, plus the constants
`GROUND_TRUTH_TABLES` (ground-truth schemas) and the planted parameters (module `parameters`),
all re-exported here. The generation steps live in the modules beside this one (the package
docstring maps them); `generate` below runs them in order.

Ground truth (person_id is 1..N; one row per ...):
- ground_truth_identity: source record -> person_id.
- ground_truth_anonymous: anonymous id -> person_id (NULL: a visitor who never logs in).
- ground_truth_persons: person -> persona, acquisition time/source (organic, spike or the media
  channel), BG/NBD lambda (purchases/week) and p, Gamma-Gamma nu and p/nu (expected order value),
  dropout time (NULL = alive at the end), records, primary record, and the person's orders in the
  orders table by cause (btyd_orders incl. the acquisition purchase, media_orders,
  experiment_orders, activation_orders). Persons acquired before the window have purchases before it that are not
  in the data (their first purchase in the data is not their acquisition).
- ground_truth_defects / ground_truth_defect_rows: defect rates and the exact rows (src_customers).
  Completeness defects are NULLs; `stale` means updated_at < end_date minus 3 years; `future`
  means birth_date > end_date.
- ground_truth_variations: how duplicate (non-primary) records differ from the person.
- ground_truth_btyd: r, alpha, a, b (BG/NBD, weeks) and p, q, v (Gamma-Gamma).
- ground_truth_channels: per media channel the planted adstock decay (a_t = x_t + decay*a_{t-1},
  a = 0 before the first day, x = daily spend), Hill half-saturation K (currency/day of adstocked
  spend) and slope s, beta (currency/day at saturation: expected incremental revenue per day is
  beta * a^s / (a^s + K^s)), total spend, realised contribution, ROI, share, acquisitions.
- ground_truth_media_orders / ground_truth_contributions: which orders media caused (channel,
  whether it was the person's acquisition) and their revenue per day and channel; the
  contributions are exactly the revenue of those orders.
- ground_truth_consent: latest status per person and consentable channel.
- ground_truth_experiment: realised 30-day conversion rates per arm and their difference.
- ground_truth_activation / ground_truth_activation_members: the planted activations (segment x
  ad platform, holdout share, export time, window, planted uplift; sent members' conversion with
  and without the planted orders, true lift and incremental revenue per person) and their
  members (person, primary record, held out); see synthetic.activations. The build stage
  `sample_activations` records them as first exports once customers exist.
- ground_truth_anomalies: the app revenue drop (magnitude = share of that channel's revenue
  removed on those days) and the new-customer spike (magnitude = new customers that day / median
  of the 28 days before; channel NULL = all channels).
- ground_truth_sample: the arguments that produced the data.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date

import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.synthetic.company import _Company
from ccrm_core.synthetic.ground_truth import GROUND_TRUTH_TABLES
from ccrm_core.synthetic.media import lfilter_rows
from ccrm_core.synthetic.parameters import (
    ACQUISITION_GROWTH,
    ADDRESSABLE,
    ANOMALY_DROP,
    ANOMALY_DROP_CHANNEL,
    ANOMALY_DROP_DAYS,
    ANOMALY_SPIKE_FACTOR,
    ANON_ANY,
    ANON_DEVICE_SHARE,
    ANON_EXTRA,
    BASE_TOUCH_RATE,
    BTYD_PARAMS,
    CATEGORIES,
    CATEGORY_PREFERENCE,
    CONSENT_CHANNELS,
    DEFAULT_END_DATE,
    DEFECT_RATES,
    EMAIL_CASE_RATE,
    EVENT_CHANNELS,
    EVENT_TYPES,
    EXPERIMENT_DAYS_BEFORE_END,
    EXPERIMENT_ID,
    EXPERIMENT_SHARE,
    EXPERIMENT_UPLIFT,
    EXPERIMENT_WINDOW_DAYS,
    GMAIL_DOT_RATE,
    IMPOSSIBLE_PHONES,
    LIFT_TEST_CHANNEL,
    MEDIA,
    MEDIA_ACQUISITION_SHARE,
    MEDIA_CHANNELS,
    MEDIA_SHARE_OF_REVENUE,
    MIN_CUSTOMERS,
    MIN_DAYS,
    MOVED_RATE,
    NAME_VARIATION_RATE,
    OPT_OUT_RATE,
    ORDER_CHANNEL_PREFERENCE,
    ORDER_CHANNELS,
    PERSONA_CHANNEL_AFFINITY,
    PERSONA_SHARES,
    PERSONAS,
    PRE_WINDOW_SHARE,
    PRE_WINDOW_YEARS,
    PROSPECT_ID_SHARE,
    RESPONSE,
    STALE_YEARS,
    SYSTEM_MEMBERSHIP,
    SYSTEM_PREFIX,
    SYSTEMS,
    WITHIN_SYSTEM_DUPLICATE_RATE,
)
from ccrm_core.synthetic.writer import write_csv, write_sample

__all__ = [
    "ACQUISITION_GROWTH",
    "ADDRESSABLE",
    "ANOMALY_DROP",
    "ANOMALY_DROP_CHANNEL",
    "ANOMALY_DROP_DAYS",
    "ANOMALY_SPIKE_FACTOR",
    "ANON_ANY",
    "ANON_DEVICE_SHARE",
    "ANON_EXTRA",
    "BASE_TOUCH_RATE",
    "BTYD_PARAMS",
    "CATEGORIES",
    "CATEGORY_PREFERENCE",
    "CONSENT_CHANNELS",
    "DEFAULT_END_DATE",
    "DEFECT_RATES",
    "EMAIL_CASE_RATE",
    "EVENT_CHANNELS",
    "EVENT_TYPES",
    "EXPERIMENT_DAYS_BEFORE_END",
    "EXPERIMENT_ID",
    "EXPERIMENT_SHARE",
    "EXPERIMENT_UPLIFT",
    "EXPERIMENT_WINDOW_DAYS",
    "GMAIL_DOT_RATE",
    "GROUND_TRUTH_TABLES",
    "IMPOSSIBLE_PHONES",
    "MEDIA",
    "MEDIA_ACQUISITION_SHARE",
    "MEDIA_CHANNELS",
    "MEDIA_SHARE_OF_REVENUE",
    "MIN_CUSTOMERS",
    "MIN_DAYS",
    "MOVED_RATE",
    "NAME_VARIATION_RATE",
    "OPT_OUT_RATE",
    "ORDER_CHANNELS",
    "ORDER_CHANNEL_PREFERENCE",
    "PERSONAS",
    "PERSONA_CHANNEL_AFFINITY",
    "PERSONA_SHARES",
    "PRE_WINDOW_SHARE",
    "PRE_WINDOW_YEARS",
    "PROSPECT_ID_SHARE",
    "Progress",
    "RESPONSE",
    "STALE_YEARS",
    "SYSTEMS",
    "SYSTEM_MEMBERSHIP",
    "SYSTEM_PREFIX",
    "WITHIN_SYSTEM_DUPLICATE_RATE",
    "build_sample_db",
    "generate",
    "lfilter_rows",
    "write_csv",
    "write_sample",
]

Progress = Callable[[str, int, int], None]


def generate(
    customers: int,
    days: int = 730,
    seed: int = 42,
    end_date: date = DEFAULT_END_DATE,
    progress: Progress | None = None,
    collinear: tuple[str, str] | None = None,
    lift_test_channel: str | None = LIFT_TEST_CHANNEL,
    activations: bool = True,
) -> dict[str, pd.DataFrame]:
    """Generate a synthetic company: raw tables (store.TABLES columns) and ground-truth tables.

    `customers` is the number of persons (each with 1+ source records), `days` the window length
    ending on `end_date` (inclusive). Same arguments -> identical frames.
    `collinear` = (leader, follower) plants the follower channel's spend moving with the
    leader's (off by default; see parameters.COLLINEAR_NOISE). `lift_test_channel` gets one lift
    test readout in `lift_tests` (None: none); it changes no other table. `activations=False`
    plants no activation (no extra orders, empty activation truth); other draws are unchanged.
    Returns {table name: DataFrame}; raw tables use the contract's column names and order,
    ground-truth tables those of GROUND_TRUTH_TABLES.
    """
    steps = [
        ("persons", lambda c: c.persons()),
        (
            "media plan",
            lambda c: (
                c.media_plan(),
                c.add_experiment_campaign(),
                c.media_acquisitions(),
                c.primary_system(),
            ),
        ),
        ("purchases", lambda c: c.purchases()),
        ("records", lambda c: (c.records(), c.consents(), c.ad_consents())),
        ("media orders", lambda c: c.media_money()),
        ("experiment", lambda c: (c.experiment(), c.activations(), c.orders(), c.lift_test())),
        ("events", lambda c: c.events()),
        ("customer records", lambda c: c.variations_and_defects()),
    ]
    company = _Company(customers, days, seed, end_date, collinear, lift_test_channel, activations)
    total = len(steps) + 1
    for i, (name, step) in enumerate(steps):
        if progress:
            progress(name, i, total)
        step(company)
    if progress:
        progress("frames", len(steps), total)
    data = company.frames()
    if progress:
        progress("done", total, total)
    return data


def build_sample_db(
    path: str | os.PathLike | None,
    customers: int,
    days: int = 730,
    seed: int = 42,
    progress: Progress | None = None,
    csv_dir: str | os.PathLike | None = None,
    end_date: date = DEFAULT_END_DATE,
) -> dict[str, int]:
    """Generate a company and write it into the database at `path` (created and migrated if
    needed; see store.connect_writer), optionally also as CSVs; returns rows per table.

    `progress(step, index, total)` is called before each generation step and before writing.
    """
    data = generate(customers, days, seed, end_date, progress=progress)
    con = store.connect_writer(path)
    try:
        if progress:
            progress("writing database", 0, 1)
        written = write_sample(con, data)
    finally:
        con.close()
    if csv_dir is not None:
        if progress:
            progress("writing csv", 0, 1)
        write_csv(data, csv_dir)
    return written
