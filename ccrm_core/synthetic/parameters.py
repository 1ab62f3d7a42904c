"""Planted parameters of the synthetic company: the truth other modules must recover.

Changing one changes the data. Purchase rates are per week, adstock decay per day, money in
currency units (dollars); per-persona arrays follow PERSONAS, per-channel arrays
MEDIA_CHANNELS (or the 8 ADDRESSABLE channels + web where said). The underscored names are lookup
tables and daily/hourly shapes the generator derives from them.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from ccrm_core.foundation import store

DEFAULT_END_DATE = date(2026, 6, 30)
# Smallest accepted company (the CLI's limits). Below ~300 days the anomalies cannot be both in
# the last 12 months and clear of the first 90 days; they are then placed proportionally.
MIN_DAYS = 30
MIN_CUSTOMERS = 10

SYSTEMS = ("ecommerce", "loyalty", "call_center")
SYSTEM_PREFIX = ("EC", "LY", "CC")
PERSONAS = (
    "deal_hunters",
    "digital_natives",
    "traditionalists",
    "style_seekers",
    "busy_professionals",
)
PERSONA_SHARES = np.array([0.24, 0.20, 0.18, 0.18, 0.20])
CATEGORIES = ("apparel", "beauty", "electronics", "home", "grocery", "outdoor")
ORDER_CHANNELS = store.ORDER_CHANNELS  # web, app, store, call_center
MEDIA_CHANNELS = store.MEDIA_CHANNELS  # 8 addressable + tv, print
ADDRESSABLE = store.ADDRESSABLE_CHANNELS
EVENT_CHANNELS = store.EVENT_CHANNELS  # 8 addressable + web
EVENT_TYPES = store.EVENT_TYPES
CONSENT_CHANNELS = ("email", "sms", "push", "direct_mail", "call_center")
_CONSENT_IDX = np.array([ADDRESSABLE.index(c) for c in CONSENT_CHANNELS])
_WEB = EVENT_CHANNELS.index("web")
_ET = {t: i for i, t in enumerate(EVENT_TYPES)}
_CH = {c: i for i, c in enumerate(MEDIA_CHANNELS)}

# Source-system membership per persona (ecommerce, loyalty, call_center); at least one is forced.
SYSTEM_MEMBERSHIP = np.array(
    [
        [0.85, 0.50, 0.25],
        [0.95, 0.30, 0.15],
        [0.55, 0.60, 0.60],
        [0.80, 0.50, 0.25],
        [0.90, 0.35, 0.25],
    ]
)
WITHIN_SYSTEM_DUPLICATE_RATE = 0.03  # persons with a second record inside one system

# Touch multipliers per persona for [8 addressable channels in ADDRESSABLE order] + web visits;
# they drive event volume per channel and who responds to which channel's media.
PERSONA_CHANNEL_AFFINITY = np.array(
    [
        # email dm   sms  push  search disp social call  web
        [3.0, 0.5, 3.0, 0.3, 1.5, 0.5, 0.3, 0.2, 1.0],  # deal hunters
        [0.3, 0.05, 0.3, 3.5, 0.5, 1.2, 3.5, 0.05, 2.0],  # digital natives
        [0.4, 4.0, 0.1, 0.05, 0.2, 0.2, 0.05, 4.0, 0.3],  # traditionalists
        [1.0, 0.5, 0.3, 0.5, 0.3, 3.0, 3.0, 0.2, 1.2],  # style seekers
        [0.8, 0.2, 0.4, 1.5, 3.5, 0.4, 0.3, 0.4, 0.8],  # busy professionals
    ]
)
# Base touches per known person per week (at average spend) for the same 9 columns.
BASE_TOUCH_RATE = np.array([0.065, 0.012, 0.03, 0.035, 0.015, 0.035, 0.035, 0.008, 0.025])
# Response rates per persona: email open|send, email click|open, sms click|send, push open|send,
# display click|impression, social click|impression.
RESPONSE = {
    "email_open": np.array([0.35, 0.15, 0.15, 0.30, 0.25]),
    "email_click": np.array([0.25, 0.10, 0.08, 0.20, 0.15]),
    "sms_click": np.array([0.15, 0.08, 0.03, 0.08, 0.08]),
    "push_open": np.array([0.20, 0.35, 0.05, 0.20, 0.25]),
    "display_click": np.array([0.03, 0.05, 0.01, 0.04, 0.02]),
    "social_click": np.array([0.04, 0.08, 0.01, 0.10, 0.03]),
}
CATEGORY_PREFERENCE = np.array(
    [
        # apparel beauty electronics home grocery outdoor
        [0.08, 0.10, 0.07, 0.15, 0.55, 0.05],
        [0.15, 0.05, 0.65, 0.05, 0.03, 0.07],
        [0.04, 0.04, 0.04, 0.55, 0.25, 0.08],
        [0.55, 0.35, 0.03, 0.04, 0.01, 0.02],
        [0.08, 0.04, 0.20, 0.08, 0.15, 0.45],
    ]
)
ORDER_CHANNEL_PREFERENCE = np.array(
    [
        # web  app  store call_center
        [0.55, 0.20, 0.20, 0.05],
        [0.25, 0.70, 0.04, 0.01],
        [0.10, 0.02, 0.58, 0.30],
        [0.35, 0.25, 0.38, 0.02],
        [0.45, 0.45, 0.08, 0.02],
    ]
)
# Anonymous ids per person with an ecommerce record: P(any), mean extra ids beyond the first,
# and the share of device ids ('dv_') rather than cookies ('ck_').
ANON_ANY = np.array([0.80, 0.95, 0.40, 0.80, 0.85])
ANON_EXTRA = np.array([0.5, 1.2, 0.1, 0.6, 0.8])
ANON_DEVICE_SHARE = np.array([0.25, 0.60, 0.10, 0.30, 0.40])
PROSPECT_ID_SHARE = 0.30  # anonymous ids that never log in, relative to linked ids

# Buy-till-you-die (BG/NBD for counts, Gamma-Gamma for spend); rates per week.
BTYD_PARAMS = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5, "p": 6.0, "q": 4.0, "v": 37.5}
PRE_WINDOW_SHARE = 0.35  # persons acquired before the window (up to PRE_WINDOW_YEARS earlier)
PRE_WINDOW_YEARS = 3
ACQUISITION_GROWTH = 0.8  # in-window acquisition density grows linearly by this factor

# Media: per channel in MEDIA_CHANNELS order.
MEDIA_SHARE_OF_REVENUE = 0.35  # planted media-driven share of total revenue
MEDIA = {
    # share of media contribution, planted ROI, adstock decay, Hill slope, flight on/off (days),
    # cost per thousand impressions (sends, pieces, calls).
    "share": np.array([0.14, 0.08, 0.06, 0.05, 0.20, 0.07, 0.12, 0.06, 0.15, 0.07]),
    "roi": np.array([4.5, 0.8, 3.5, 5.0, 2.5, 0.6, 1.6, 1.2, 1.1, 0.7]),
    "decay": np.array([0.15, 0.40, 0.10, 0.10, 0.20, 0.30, 0.25, 0.20, 0.70, 0.60]),
    "slope": np.array([1.2, 1.8, 1.1, 1.3, 1.5, 2.0, 1.6, 1.4, 2.4, 2.0]),
    "on_days": np.array([10, 7, 5, 14, 60, 21, 18, 30, 21, 10]),
    "off_days": np.array([5, 21, 10, 7, 7, 14, 10, 15, 35, 20]),
    "cpm": np.array([2.0, 600.0, 8.0, 0.5, 25.0, 6.0, 9.0, 3000.0, 30.0, 15.0]),
}
MEDIA_ACQUISITION_SHARE = (
    0.08  # in-window acquisitions caused by media (search/display/social/tv/print)
)
_ACQ_CHANNELS = np.array([_CH[c] for c in ("paid_search", "display", "social", "tv", "print")])

# Collinear spend (off by default; `generate(collinear=(leader, follower))`): the follower's
# daily spend shape becomes the leader's times lognormal day-to-day noise of this sd, drawn from
# a stream of its own ([seed, COLLINEAR_STREAM]); its total spend stays as planted.
COLLINEAR_STREAM = 0xC011
COLLINEAR_NOISE = 0.10
# One lift test (a geo holdout's readout) on LIFT_TEST_CHANNEL: the channel's realised
# incremental revenue over LIFT_TEST_DAYS days ending LIFT_TEST_ENDS_BEFORE_END days before the
# end (a third of short windows), measured with a standard error of LIFT_TEST_RELATIVE_SE of the
# planted expected lift; the measurement noise comes from a stream of its own, so every other
# table is the same with or without it.
LIFT_TEST_STREAM = 0x11F7
LIFT_TEST_ID = "LIFT001"
LIFT_TEST_CHANNEL = "paid_search"
LIFT_TEST_DAYS = 28
LIFT_TEST_ENDS_BEFORE_END = 120
LIFT_TEST_RELATIVE_SE = 0.12

OPT_OUT_RATE = {"email": 0.18, "sms": 0.22, "push": 0.15, "direct_mail": 0.12, "call_center": 0.25}

# Advertising consent (store.AD_CONSENT_PURPOSES), drawn from a random stream of its own
# (seeded with [seed, AD_CONSENT_STREAM]) so that adding it left every other table unchanged.
AD_CONSENT_STREAM = 0xAD
# Persons asked under opt-in rules (EU GDPR, UK GDPR): no recorded opt_in means no ad platform.
AD_CONSENT_OPT_IN_COUNTRIES = ("GB", "DE", "FR")
AD_CONSENT_ASKED = 0.85  # share of persons with a recorded ad-consent choice (the rest: none)
AD_CONSENT_GRANTED = 0.65  # opt-in countries: P(ad_user_data granted)
AD_PERSONALIZATION_GRANTED = 0.80  # opt-in countries: P(ad_personalization | ad_user_data)
AD_CONSENT_OPT_OUT_ELSEWHERE = 0.06  # other countries: P(opt-out) per purpose

# Data-quality defects on src_customers: (column, defect, dimension, rate of all records).
DEFECT_RATES: tuple[tuple[str, str, str, float], ...] = (
    ("first_name", "missing", "completeness", 0.02),
    ("last_name", "missing", "completeness", 0.01),
    ("email", "missing", "completeness", 0.05),
    ("email", "malformed", "validity", 0.03),
    ("phone", "missing", "completeness", 0.08),
    ("phone", "impossible", "validity", 0.02),
    ("postal_code", "missing", "completeness", 0.03),
    ("birth_date", "future", "validity", 0.005),
    ("birth_date", "before_1900", "validity", 0.005),
    ("updated_at", "stale", "recency", 0.05),
)
STALE_YEARS = 3  # updated_at older than end_date minus 3 years is stale
IMPOSSIBLE_PHONES = ("123", "000-000-0000", "0000000", "1111111111", "12345", "999")
# Variations between a person's records (rates of non-primary records; names only on persons
# whose records may differ in the name, see SourceRecordSteps._identity_slots).
NAME_VARIATION_RATE = 0.70
EMAIL_CASE_RATE = 0.20
GMAIL_DOT_RATE = 0.30
MOVED_RATE = 0.10

EXPERIMENT_ID = "EXP001"
EXPERIMENT_SHARE = 0.20
EXPERIMENT_DAYS_BEFORE_END = 90
EXPERIMENT_WINDOW_DAYS = 30
EXPERIMENT_UPLIFT = 0.06  # P(extra order within the window) for treatment persons

# Planted activations (segment x ad platform exports with a stable holdout), from a random
# stream of their own ([seed, ACTIVATION_STREAM]) so that every draw of the other steps is the
# same with or without them. Each is exported ACTIVATION_DAYS_BEFORE_END days before the end (a
# sixth of short windows); for ACTIVATION_WINDOW_DAYS days after it, each sent (not held out)
# member makes one extra order with probability `uplift`. Members: the persons of the
# activation's personas who were customers (first purchase and primary record) at the export.
ACTIVATION_STREAM = 0xAC7
ACTIVATION_DAYS_BEFORE_END = 45
ACTIVATION_WINDOW_DAYS = 30
SAMPLE_ACTIVATION_ACTOR = "ccrm sample"
SAMPLE_ACTIVATIONS: tuple[dict, ...] = (
    {
        "name": "Deal hunters win-back on Meta",
        "scheme": "saved",
        "segment": "Deal hunters",
        "destination": "meta",
        "personas": ("deal_hunters",),
        "holdout": 0.30,
        "uplift": 0.12,
    },
    {
        "name": "Busy professionals on Google Ads",
        "scheme": "saved",
        "segment": "Busy professionals",
        "destination": "google_ads",
        "personas": ("busy_professionals",),
        "holdout": 0.20,
        "uplift": 0.03,
    },
)

ANOMALY_DROP = 0.60  # share of revenue removed on the anomaly sales channel
ANOMALY_DROP_DAYS = 4
ANOMALY_DROP_CHANNEL = "app"
ANOMALY_SPIKE_FACTOR = 4.0  # new customers on the spike day vs the usual day

_DAY_S = 86400
_HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 5, 5, 6, 5, 5, 5, 5, 6, 7, 8, 8, 6, 4, 2], float
)
_WEEKDAY_LIFT = np.array([0.05, 0.0, 0.05, 0.15, 0.5, 1.0, 0.8])  # Monday..Sunday
