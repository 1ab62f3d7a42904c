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
`GROUND_TRUTH_TABLES` (ground-truth schemas) and the planted parameters below.

Ground truth (person_id is 1..N; one row per ...):
- ground_truth_identity: source record -> person_id.
- ground_truth_anonymous: anonymous id -> person_id (NULL: a visitor who never logs in).
- ground_truth_persons: person -> persona, acquisition time/source (organic, spike or the media
  channel), BG/NBD lambda (purchases/week) and p, Gamma-Gamma nu and p/nu (expected order value),
  dropout time (NULL = alive at the end), records, primary record, and the person's orders in the
  orders table by cause (btyd_orders incl. the acquisition purchase, media_orders,
  experiment_orders). Persons acquired before the window have purchases before it that are not
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
- ground_truth_anomalies: the app revenue drop (magnitude = share of that channel's revenue
  removed on those days) and the new-customer spike (magnitude = new customers that day / median
  of the 28 days before; channel NULL = all channels).
- ground_truth_sample: the arguments that produced the data.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.signal import lfilter

from ccrm_core.foundation import store
from ccrm_core.synthetic import vocabulary as vocab

__all__ = [
    "BTYD_PARAMS",
    "DEFECT_RATES",
    "GROUND_TRUTH_TABLES",
    "PERSONAS",
    "build_sample_db",
    "generate",
    "write_csv",
    "write_sample",
]

Progress = Callable[[str, int, int], None]

# ----------------------------------------------------------------------------------------------
# Planted parameters (the truth other modules must recover). Changing one changes the data.
# ----------------------------------------------------------------------------------------------
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

OPT_OUT_RATE = {"email": 0.18, "sms": 0.22, "push": 0.15, "direct_mail": 0.12, "call_center": 0.25}

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
# whose third identity signal may differ, see _Company._variations).
NAME_VARIATION_RATE = 0.70
EMAIL_CASE_RATE = 0.20
GMAIL_DOT_RATE = 0.30
MOVED_RATE = 0.10

EXPERIMENT_ID = "EXP001"
EXPERIMENT_SHARE = 0.20
EXPERIMENT_DAYS_BEFORE_END = 90
EXPERIMENT_WINDOW_DAYS = 30
EXPERIMENT_UPLIFT = 0.06  # P(extra order within the window) for treatment persons

ANOMALY_DROP = 0.60  # share of revenue removed on the anomaly sales channel
ANOMALY_DROP_DAYS = 4
ANOMALY_DROP_CHANNEL = "app"
ANOMALY_SPIKE_FACTOR = 4.0  # new customers on the spike day vs the usual day

# Ground-truth tables: name -> ((column, DuckDB type), ...). Written by write_sample.
GROUND_TRUTH_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "ground_truth_identity": (
        ("source_system", "VARCHAR"),
        ("source_id", "VARCHAR"),
        ("person_id", "BIGINT"),
    ),
    "ground_truth_anonymous": (("anonymous_id", "VARCHAR"), ("person_id", "BIGINT")),
    "ground_truth_persons": (
        ("person_id", "BIGINT"),
        ("persona", "VARCHAR"),
        ("acquired_at", "TIMESTAMP"),
        ("purchase_rate", "DOUBLE"),
        ("dropout_prob", "DOUBLE"),
        ("spend_rate", "DOUBLE"),
        ("expected_order_value", "DOUBLE"),
        ("acquired_in_window", "BOOLEAN"),
        ("acquisition_source", "VARCHAR"),
        ("dropped_out_at", "TIMESTAMP"),
        ("country", "VARCHAR"),
        ("records", "INTEGER"),
        ("primary_source_system", "VARCHAR"),
        ("primary_source_id", "VARCHAR"),
        ("btyd_orders", "INTEGER"),
        ("media_orders", "INTEGER"),
        ("experiment_orders", "INTEGER"),
    ),
    "ground_truth_defects": (
        ("table_name", "VARCHAR"),
        ("column_name", "VARCHAR"),
        ("dimension", "VARCHAR"),
        ("defect", "VARCHAR"),
        ("planted_rows", "BIGINT"),
        ("total_rows", "BIGINT"),
        ("planted_rate", "DOUBLE"),
    ),
    "ground_truth_defect_rows": (
        ("table_name", "VARCHAR"),
        ("source_system", "VARCHAR"),
        ("source_id", "VARCHAR"),
        ("column_name", "VARCHAR"),
        ("defect", "VARCHAR"),
    ),
    "ground_truth_variations": (
        ("variation", "VARCHAR"),
        ("records", "BIGINT"),
        ("duplicate_records", "BIGINT"),
        ("rate", "DOUBLE"),
    ),
    "ground_truth_btyd": (("parameter", "VARCHAR"), ("value", "DOUBLE")),
    "ground_truth_channels": (
        ("channel", "VARCHAR"),
        ("addressable", "BOOLEAN"),
        ("adstock_decay", "DOUBLE"),
        ("hill_half_saturation", "DOUBLE"),
        ("hill_slope", "DOUBLE"),
        ("beta", "DOUBLE"),
        ("total_spend", "DOUBLE"),
        ("true_contribution", "DOUBLE"),
        ("true_roi", "DOUBLE"),
        ("true_share", "DOUBLE"),
        ("acquisitions", "BIGINT"),
    ),
    "ground_truth_media_orders": (
        ("order_id", "VARCHAR"),
        ("channel", "VARCHAR"),
        ("acquisition", "BOOLEAN"),
    ),
    "ground_truth_contributions": (
        ("date", "DATE"),
        ("channel", "VARCHAR"),
        ("contribution", "DOUBLE"),
    ),
    "ground_truth_consent": (
        ("person_id", "BIGINT"),
        ("channel", "VARCHAR"),
        ("status", "VARCHAR"),
    ),
    "ground_truth_experiment": (
        ("experiment_id", "VARCHAR"),
        ("control_rate", "DOUBLE"),
        ("treatment_rate", "DOUBLE"),
        ("true_lift", "DOUBLE"),
        ("window_days", "INTEGER"),
        ("assigned_at", "TIMESTAMP"),
        ("control_n", "BIGINT"),
        ("treatment_n", "BIGINT"),
        ("planted_uplift", "DOUBLE"),
    ),
    "ground_truth_anomalies": (
        ("kind", "VARCHAR"),
        ("channel", "VARCHAR"),
        ("start_date", "DATE"),
        ("end_date", "DATE"),
        ("magnitude", "DOUBLE"),
    ),
    "ground_truth_sample": (("parameter", "VARCHAR"), ("value", "VARCHAR")),
}

_DAY_S = 86400
_HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 5, 5, 6, 5, 5, 5, 5, 6, 7, 8, 8, 6, 4, 2], float
)
_WEEKDAY_LIFT = np.array([0.05, 0.0, 0.05, 0.15, 0.5, 1.0, 0.8])  # Monday..Sunday

# Valid mobile number plans (checked with phonenumbers.is_valid_number): GB 07xxx prefixes,
# DE (prefix, subscriber digits), FR two-digit prefixes after the trunk 0.
_GB_PREFIXES = np.concatenate([np.arange(7400, 7600), np.arange(7800, 7900), np.arange(7940, 8000)])
_DE_PLANS = ((151, 8), (152, 8), (157, 8), (159, 8), (160, 7), (162, 7), (163, 7)) + tuple(
    (p, 8) for p in range(170, 180)
)
_FR_PREFIXES = np.array([60, 61, 62, 64, 65, 66, 67, 68, 73, 74, 75, 76, 77, 78, 79])
_NANP_FORMATS = ("(ddd) ddd-dddd", "ddd.ddd.dddd", "+1 ddd ddd dddd", "dddddddddd", "ddd-ddd-dddd")
_NANP_FORMAT_W = np.array(
    [[0.2, 0.1, 0.4, 0.2, 0.1], [0.2, 0.3, 0.1, 0.1, 0.3], [0.6, 0.1, 0.1, 0.1, 0.1]]
)
_INTL_FORMAT_W = np.array([[0.3, 0.5, 0.2], [0.6, 0.2, 0.2], [0.6, 0.2, 0.2]])
_INTL_FORMATS = {
    ("GB", 10): ("0dddd dddddd", "+44 dddd dddddd", "0dddddddddd"),
    ("DE", 11): ("0ddd dddddddd", "+49 ddd dddddddd", "0ddddddddddd"),
    ("DE", 10): ("0ddd ddddddd", "+49 ddd ddddddd", "0dddddddddd"),
    ("FR", 9): ("0d dd dd dd dd", "+33 d dd dd dd dd", "0ddddddddd"),
}
_GB_INWARD = "ABDEFGHJLNPQRSTUWXYZ"
_CA_LETTERS = "ABCEGHJKLMNPRSTVWXYZ"


# ----------------------------------------------------------------------------------------------
# String helpers (vectorised; pyarrow large_string everywhere)
# ----------------------------------------------------------------------------------------------
_LUT4 = np.frombuffer(b"".join(b"%04d" % i for i in range(10000)), dtype=np.uint32)  # 4 digits
_HEX2 = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint8).reshape(256, 2)
_LS = pa.large_string()


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 ASCII digits of non-negative integers, zero padded on the left."""
    v = np.asarray(values, dtype=np.int64).copy()
    chunks = -(-width // 4)
    out = np.empty((len(v), chunks), dtype=np.uint32)  # 4 ASCII bytes per uint32
    for j in range(chunks - 1, -1, -1):
        out[:, j] = _LUT4[v % 10000]
        v //= 10000
    return out.view(np.uint8).reshape(len(v), chunks * 4)[:, chunks * 4 - width :]


def _fixed(matrix: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """One string per row of an (n, w) uint8 byte matrix (zero copy into an arrow array).

    With `valid` (bool, length N >= n, n = valid.sum()), the matrix holds only the valid rows and
    the result has N rows, NULL where not valid (nulls take no bytes)."""
    mat = np.ascontiguousarray(matrix, dtype=np.uint8)
    n, w = mat.shape
    if valid is None:
        offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(mat))
    valid = np.asarray(valid, dtype=bool)
    offsets = np.zeros(valid.size + 1, dtype=np.int64)
    np.cumsum(valid * w, out=offsets[1:])
    bitmap = np.packbits(valid, bitorder="little")
    return pa.LargeStringArray.from_buffers(
        valid.size,
        pa.py_buffer(offsets),
        pa.py_buffer(mat),
        pa.py_buffer(bitmap),
        null_count=int(valid.size - valid.sum()),
    )


def _prefixed(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """'EC' + zero-padded number, e.g. _prefixed('EC', [12], 8) -> 'EC00000012'."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    mat = np.empty((len(numbers), len(head) + width), dtype=np.uint8)
    mat[:, : len(head)] = head
    mat[:, len(head) :] = _digits(numbers, width)
    return _fixed(mat)


def _template(template: str, digits: np.ndarray) -> pa.Array:
    """Fill the 'd' placeholders of a template, left to right, from an (n, k) digit matrix."""
    raw = template.encode()
    out = np.empty((digits.shape[0], len(raw)), dtype=np.uint8)
    out[:] = np.frombuffer(raw, dtype=np.uint8)
    positions = [i for i, ch in enumerate(template) if ch == "d"]
    out[:, positions] = digits
    return _fixed(out)


def _vocab(values) -> pa.Array:
    return pa.array(list(values), type=_LS)


def _take(values, idx: np.ndarray) -> pa.Array:
    """values[idx] as strings; idx < 0 gives NULL."""
    arr = values if isinstance(values, pa.Array) else _vocab(values)
    idx = np.asarray(idx)
    neg = idx < 0
    indices = pa.array(np.where(neg, 0, idx).astype(np.int64), mask=neg if neg.any() else None)
    return arr.take(indices)


def _s(value: str) -> pa.Scalar:
    return pa.scalar(value, type=_LS)


def _join(*parts) -> pa.Array:
    """Element-wise concatenation; any NULL part makes the result NULL."""
    args = [_s(p) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, _s(""))


def _int_str(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), _LS)


def _select(mask: np.ndarray, when_true, when_false) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), when_true, when_false)


def _null_where(mask: np.ndarray, arr: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), pa.scalar(None, arr.type), arr)


def _dictionary(codes: np.ndarray, labels) -> pa.DictionaryArray:
    """Categorical column: int codes into labels, code < 0 = NULL."""
    codes = np.asarray(codes)
    neg = codes < 0
    indices = pa.array(np.where(neg, 0, codes).astype(np.int32), mask=neg if neg.any() else None)
    return pa.DictionaryArray.from_arrays(indices, _vocab(labels))


def _timestamps(seconds: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    micros = np.asarray(seconds, dtype=np.int64) * 1_000_000
    return pa.array(micros, type=pa.timestamp("us"), mask=null)


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32), type=pa.date32())


def _frame(columns: dict[str, pa.Array | np.ndarray]) -> pd.DataFrame:
    """A DataFrame over arrow columns: strings -> str dtype, dictionaries -> category,
    dates/timestamps -> datetime64 (dates at midnight)."""
    return pa.table(columns).to_pandas(date_as_object=False)


# ----------------------------------------------------------------------------------------------
# Small numeric helpers
# ----------------------------------------------------------------------------------------------
def _choice_by_group(rng: np.random.Generator, groups: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Per row, draw a category from table[group] (rows of probabilities); loops over groups."""
    out = np.empty(len(groups), dtype=np.int16)
    u = rng.random(len(groups))
    cum = np.cumsum(table, axis=1)
    cum /= cum[:, -1:]
    for g in range(table.shape[0]):
        m = groups == g
        if m.any():
            out[m] = np.minimum(np.searchsorted(cum[g], u[m], side="right"), table.shape[1] - 1)
    return out


def _choice_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Per row of a (n, k) weight matrix (k small), draw a column proportional to its weights."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), weights.shape[1] - 1)


def _zipf(k: int, s: float = 0.9, shift: float = 8.0) -> np.ndarray:
    w = 1.0 / (np.arange(k) + shift) ** s
    return w / w.sum()


def _hours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Time of day in days (fraction) following a daytime-heavy hourly profile."""
    hour = rng.choice(24, n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    return (hour + rng.random(n)) / 24.0


def _ascii_lower(name: str) -> str:
    return "".join(ch for ch in name.lower() if "a" <= ch <= "z")


def _typo_variants(rng: np.random.Generator, names: tuple[str, ...], k: int = 3) -> list[str]:
    """k one-character edits per name (substitute, delete, transpose, double), never the first
    letter, never equal to the name. Loops over the vocabulary, not over rows."""
    keyboard = "qwertyuiopasdfghjklzxcvbnm"
    out: list[str] = []
    for name in names:
        made: list[str] = []
        attempts = 0
        while len(made) < k:
            attempts += 1
            if len(name) < 3 or attempts > 50:
                made.append(name + name[-1])
                continue
            i = int(rng.integers(1, len(name)))
            op = int(rng.integers(0, 4))
            if op == 0:
                ch = keyboard[int(rng.integers(0, len(keyboard)))]
                new = name[:i] + ch + name[i + 1 :]
            elif op == 1:
                new = name[:i] + name[i + 1 :]
            elif op == 2 and i < len(name) - 1:
                new = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
            else:
                new = name[:i] + name[i] + name[i:]
            if new != name and new not in made and new.strip() and new[0] == name[0]:
                made.append(new)
        out.extend(made)
    return out


# ----------------------------------------------------------------------------------------------
# The generator
# ----------------------------------------------------------------------------------------------
class _Company:
    """Holds the state of one generation run; each method plants one part of the truth.

    Time inside the generator is float days since the window start (00:00 of the first day);
    the window is [0, days). Persons acquired before the window have negative times.
    """

    def __init__(self, customers: int, days: int, seed: int, end_date: date) -> None:
        if customers < MIN_CUSTOMERS:
            raise ValueError(f"customers must be at least {MIN_CUSTOMERS} (got {customers})")
        if days < MIN_DAYS:
            raise ValueError(f"days must be at least {MIN_DAYS} (got {days})")
        self.n = int(customers)
        self.D = int(days)
        self.seed = int(seed)
        self.end = end_date
        self.start = end_date - timedelta(days=days - 1)
        self.start_day = (self.start - date(1970, 1, 1)).days
        self.rng = np.random.Generator(np.random.PCG64(seed))
        # The A/B test starts 90 days before the end (a third of short windows) and runs 30 days.
        self.exp_before_end = min(EXPERIMENT_DAYS_BEFORE_END, max(self.D // 3, 2))
        self.exp_window = min(EXPERIMENT_WINDOW_DAYS, self.exp_before_end - 1)
        try:
            stale = end_date.replace(year=end_date.year - STALE_YEARS)
        except ValueError:  # 29 February
            stale = end_date.replace(year=end_date.year - STALE_YEARS, day=28)
        self.t_stale = float((stale - self.start).days)
        # Seasonal acceptance a(day) in [0.7, 1] for every day the simulation can touch.
        self.acc_first = self.start_day - int(PRE_WINDOW_YEARS * 366) - 30
        eday = np.arange(self.acc_first, self.start_day + self.D + 2)
        self.acceptance = self._acceptance(eday)
        self.abar = float(self._acceptance(np.arange(0, 4 * 365 + 1)).mean())

    # -- calendar ------------------------------------------------------------------------------
    @staticmethod
    def _acceptance(epoch_days: np.ndarray) -> np.ndarray:
        """Purchase acceptance for thinning: weekends and November-December higher."""
        d = np.asarray(epoch_days, dtype=np.int64)
        weekday = (d + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        dates = d.astype("datetime64[D]")
        doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
        # Holiday season: ramps up through November, plateau to Christmas Eve, then back.
        yearly = 0.1 + 0.9 * np.clip((doy - 300.0) / 25.0, 0, 1) * np.clip(
            (362.0 - doy) / 5.0, 0, 1
        )
        return 0.7 + 0.3 * (0.5 * _WEEKDAY_LIFT[weekday] + 0.5 * yearly)

    def acc_at(self, t: np.ndarray) -> np.ndarray:
        return self.acceptance[np.floor(t).astype(np.int64) + (self.start_day - self.acc_first)]

    def seconds(self, t: np.ndarray) -> np.ndarray:
        """Generator time (days since window start) -> epoch seconds (int64)."""
        return np.round((np.asarray(t, dtype=np.float64) + self.start_day) * _DAY_S).astype(
            np.int64
        )

    def day_index(self, t: np.ndarray) -> np.ndarray:
        return np.clip(np.floor(t).astype(np.int64), 0, self.D - 1)

    # -- persons -------------------------------------------------------------------------------
    def persons(self) -> None:
        rng, n = self.rng, self.n
        self.persona = rng.choice(len(PERSONAS), n, p=PERSONA_SHARES).astype(np.int8)
        self.country = rng.choice(len(vocab.COUNTRIES), n, p=vocab.COUNTRY_SHARES).astype(np.int8)
        self.first = rng.choice(len(vocab.FIRST_NAMES), n, p=_zipf(len(vocab.FIRST_NAMES)))
        self.last = rng.choice(len(vocab.LAST_NAMES), n, p=_zipf(len(vocab.LAST_NAMES)))
        # Ages 18-88 (mean ~47) with no point mass: clipping a normal would pile thousands of
        # persons onto one birth date and make name + birth date collide across persons.
        age_years = 18.05 + 70.0 * rng.beta(2.2, 3.0, n)
        end_day = self.start_day + self.D - 1
        self.dob = (end_day - np.floor(age_years * 365.25)).astype(np.int32)
        self.address = self._addresses(self.country)
        self._phones()
        self._emails()
        # Acquisition: a share before the window, the rest over the window with growth and
        # seasonality. Media acquisitions and the spike are re-timed later.
        pre = rng.random(n) < PRE_WINDOW_SHARE
        t0 = np.empty(n)
        t0[pre] = -rng.random(pre.sum()) * PRE_WINDOW_YEARS * 365.25
        d = np.arange(self.D)
        w = (1.0 + ACQUISITION_GROWTH * d / self.D) * self.acc_at(d + 0.5)
        k = int((~pre).sum())
        t0[~pre] = rng.choice(self.D, k, p=w / w.sum()) + _hours(rng, k)
        self.t0 = t0
        self.acq_source = np.full(n, -1, dtype=np.int16)  # -1 organic, 99 spike, else channel
        # BTYD individual parameters.
        b = BTYD_PARAMS
        self.lam = rng.gamma(b["r"], 1.0 / b["alpha"], n)  # purchases per week
        self.lam = np.maximum(self.lam, 1e-9)
        self.pdrop = rng.beta(b["a"], b["b"], n)
        self.nu = rng.gamma(b["q"], 1.0 / b["v"], n)  # Gamma-Gamma spend rate
        # Source-system membership (>= 1 system).
        member = rng.random((n, 3)) < SYSTEM_MEMBERSHIP[self.persona]
        none = ~member.any(axis=1)
        forced = _choice_rows(rng, SYSTEM_MEMBERSHIP[self.persona[none]])
        member[np.flatnonzero(none), forced] = True
        self.member = member

    def _addresses(self, country: np.ndarray) -> dict[str, np.ndarray]:
        """Address components for rows of the given countries (integer codes only)."""
        rng = self.rng
        n = len(country)
        city = np.empty(n, dtype=np.int32)
        city_country = np.array([vocab.COUNTRIES.index(c[0]) for c in vocab.CITIES])
        for ci in range(len(vocab.COUNTRIES)):
            m = country == ci
            if m.any():
                options = np.flatnonzero(city_country == ci)
                city[m] = rng.choice(options, m.sum(), p=_zipf(len(options), 0.7, 3.0))
        outward_counts = np.array([len(c[3].split()) for c in vocab.CITIES])
        return {
            "city": city,
            "street": rng.integers(0, 1 << 30, n),
            "suffix": rng.integers(0, 1 << 30, n),
            "number": np.minimum(1 + np.floor(rng.lognormal(4.0, 1.3, n)), 9999).astype(np.int64),
            "apt": np.where(rng.random(n) < 0.15, rng.integers(1, 40, n), -1),
            "outward": (rng.random(n) * outward_counts[city]).astype(np.int64),
            "postal_a": rng.integers(0, 1000, n),
            "postal_b": rng.integers(0, 400, n),
        }

    def _phones(self) -> None:
        """Canonical national numbers, valid for each person's country, unique across persons."""
        rng, n = self.rng, self.n
        num = np.zeros(n, dtype=np.int64)
        length = np.zeros(n, dtype=np.int8)
        todo = np.arange(n)
        city_area = np.array([int(c[4]) if c[4] else 0 for c in vocab.CITIES])
        us_ca_areas = {
            ci: city_area[[vocab.COUNTRIES.index(c[0]) == ci for c in vocab.CITIES]]
            for ci in (0, 4)
        }
        for _ in range(100):
            if todo.size == 0:
                break
            c = self.country[todo]
            for ci, code in enumerate(vocab.COUNTRIES):
                m = c == ci
                k = int(m.sum())
                if not k:
                    continue
                idx = todo[m]
                if code in ("US", "CA"):
                    # 75% the area code of the home city, else any area code of the country.
                    home = city_area[self.address["city"][idx]]
                    other = rng.choice(us_ca_areas[ci], k)
                    area = np.where(rng.random(k) < 0.75, home, other)
                    exchange = rng.integers(200, 1000, k)
                    bad = (exchange % 100 == 11) | (exchange == 555)
                    exchange[bad] = 201 + rng.integers(0, 8, bad.sum()) * 100 + 20
                    num[idx] = area * 10_000_000 + exchange * 10_000 + rng.integers(0, 10000, k)
                    length[idx] = 10
                elif code == "GB":
                    num[idx] = rng.choice(_GB_PREFIXES, k) * 1_000_000 + rng.integers(0, 10**6, k)
                    length[idx] = 10
                elif code == "DE":
                    plan = rng.integers(0, len(_DE_PLANS), k)
                    prefix = np.array([p for p, _ in _DE_PLANS])[plan]
                    sub_len = np.array([s for _, s in _DE_PLANS])[plan]
                    num[idx] = prefix * 10**sub_len + (rng.random(k) * 10.0**sub_len).astype(
                        np.int64
                    )
                    length[idx] = 3 + sub_len
                else:  # FR
                    num[idx] = rng.choice(_FR_PREFIXES, k) * 10_000_000 + rng.integers(0, 10**7, k)
                    length[idx] = 9
            key = self.country.astype(np.int64) * 10**12 + num
            order = np.argsort(key, kind="stable")
            dup_sorted = np.zeros(n, dtype=bool)
            dup_sorted[1:] = key[order][1:] == key[order][:-1]
            todo = np.sort(order[dup_sorted])
        self.phone_num = num
        self.phone_len = length

    def _emails(self) -> None:
        """Email components per person; unique across persons even ignoring dots and case."""
        rng, n = self.rng, self.n
        self.first_lower = [_ascii_lower(x) for x in vocab.FIRST_NAMES]
        self.last_lower = [_ascii_lower(x) for x in vocab.LAST_NAMES]
        self.domains: list[str] = []
        dom = np.empty(n, dtype=np.int32)
        for ci, code in enumerate(vocab.COUNTRIES):
            m = self.country == ci
            names = [d for d, _ in vocab.EMAIL_DOMAINS[code]]
            p = np.array([w for _, w in vocab.EMAIL_DOMAINS[code]])
            base = len(self.domains)
            self.domains.extend(names)
            dom[m] = base + rng.choice(len(names), m.sum(), p=p / p.sum())
        self.email_domain = dom
        self.gmail = np.array([d == "gmail.com" for d in self.domains])[dom]
        # Patterns: 0 first<sep>last, 1 initial+last, 2 first<sep>last+yy, 3 first+digits.
        pattern = rng.choice(4, n, p=[0.50, 0.20, 0.20, 0.10])
        sep = rng.choice(3, n, p=[0.6, 0.3, 0.1])  # '.', '', '_'
        sep[(pattern == 1) | (pattern == 3)] = 1
        yy = (
            self.dob.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        ) % 100
        suffix = np.full(n, -1, dtype=np.int64)
        suffix[pattern == 2] = np.where(rng.random(n) < 0.6, yy + 100, rng.integers(10, 100, n))[
            pattern == 2
        ]
        suffix[pattern == 3] = rng.integers(1, 1000, n)[pattern == 3]
        self.email_pattern, self.email_sep, self.email_suffix = pattern, sep, suffix
        for _ in range(50):
            local = self._email_local(np.arange(n), sep=np.full(n, 1))
            key = _join(local, "@", _take(self.domains, dom))
            codes = key.dictionary_encode().indices.to_numpy()
            _, first_seen = np.unique(codes, return_index=True)
            dup = np.ones(n, dtype=bool)
            dup[first_seen] = False
            if not dup.any():
                break
            k = int(dup.sum())
            suffix[dup] = rng.integers(1000, 100000, k)
        self.email_suffix = suffix

    def _email_local(self, person: np.ndarray, sep: np.ndarray) -> pa.Array:
        """Local part for rows (person index, sep code 0 '.', 1 '', 2 '_', 3 ' ')."""
        pattern = self.email_pattern[person]
        initials = [x[:1] for x in self.first_lower]
        first_part = _select(
            pattern == 1,
            _take(initials, self.first[person]),
            _take(self.first_lower, self.first[person]),
        )
        last_part = _select(pattern == 3, _s(""), _take(self.last_lower, self.last[person]))
        suffix = self.email_suffix[person]
        # Year suffixes were stored as yy + 100 to keep a leading zero ('07').
        suffix_s = _select(
            suffix < 0,
            _s(""),
            _select(
                (suffix >= 100) & (suffix < 200),
                pc.utf8_slice_codeunits(_int_str(suffix), 1),
                _int_str(np.maximum(suffix, 0)),
            ),
        )
        local = _join(first_part, _take((".", "", "_", " "), sep), last_part, suffix_s)
        return local

    # -- media plan (shapes are scale free; money is scaled once organic revenue is known) -----
    def media_plan(self) -> None:
        rng, D = self.rng, self.D
        C = len(MEDIA_CHANNELS)
        shape = np.zeros((C, D))
        for c in range(C):
            x = np.zeros(D)
            day = int(rng.integers(0, MEDIA["off_days"][c])) if rng.random() < 0.5 else 0
            while day < D:
                on = max(2, int(rng.exponential(MEDIA["on_days"][c])))
                x[day : day + on] = rng.lognormal(0.0, 0.45)
                day += on + max(1, int(rng.exponential(MEDIA["off_days"][c])))
            x *= rng.lognormal(0.0, 0.25, D)
            if x.sum() <= 0:  # pathological short windows: keep the channel alive
                x[:] = 1.0
            shape[c] = x / x.mean()
        self.spend_shape = shape
        adstock = np.vstack([lfilter([1.0], [1.0, -MEDIA["decay"][c]], shape[c]) for c in range(C)])
        self.k_factor = rng.uniform(0.8, 1.25, C)
        half = self.k_factor * adstock.mean(axis=1)
        s = MEDIA["slope"][:, None]
        self.hill = adstock**s / (adstock**s + half[:, None] ** s)
        self.adstock_shape = adstock
        # Campaigns tile the window per channel, 3-6 each.
        rows = []
        camp_of = np.zeros((C, D), dtype=np.int32)
        step = max(1, min(30, D // 8))  # campaign boundaries on a monthly grid
        grid = np.arange(step, D - step + 1, step)
        for c, ch in enumerate(MEDIA_CHANNELS):
            k = int(rng.integers(3, 7))
            cuts = np.sort(rng.choice(grid, min(k - 1, grid.size), replace=False))
            bounds = [0, *cuts.tolist(), D]
            for j in range(len(bounds) - 1):
                cid = len(rows)
                camp_of[c, bounds[j] : bounds[j + 1]] = cid
                first_day = self.start + timedelta(days=bounds[j])
                theme = _season(first_day)
                brand = ch in ("tv", "print") and rng.random() < 0.6
                offer = None if brand else vocab.OFFERS[int(rng.integers(0, len(vocab.OFFERS)))]
                label = ch.replace("_", " ").title() if ch not in ("tv", "sms") else ch.upper()
                name = f"{label}: {'Brand' if brand else theme} {first_day.year}"
                name += f" - {offer}" if offer else ""
                rows.append((name, ch, offer, bounds[j], bounds[j + 1] - 1))
        self.campaign_rows = rows
        self.camp_of = camp_of

    def media_acquisitions(self) -> None:
        """Re-time a share of in-window acquisitions to media (search/display/social/tv/print):
        day drawn from the channel's planted response curve, digital ones need ecommerce."""
        rng = self.rng
        inwin = np.flatnonzero(self.t0 >= 0)
        k = int(round(MEDIA_ACQUISITION_SHARE * inwin.size))
        chosen = np.sort(rng.permutation(inwin)[:k])
        aff = PERSONA_CHANNEL_AFFINITY[self.persona[chosen]]
        w = np.empty((k, len(_ACQ_CHANNELS)))
        for j, c in enumerate(_ACQ_CHANNELS):
            pref = aff[:, c] if c < len(ADDRESSABLE) else np.ones(k)
            ok = self.member[chosen, 0] if c < len(ADDRESSABLE) else np.ones(k, bool)
            w[:, j] = MEDIA["share"][c] * pref * ok
        channel = _ACQ_CHANNELS[_choice_rows(rng, w)]
        day = np.empty(k, dtype=np.int64)
        for c in _ACQ_CHANNELS:
            m = channel == c
            p = self.hill[c] * MEDIA["share"][c]
            day[m] = rng.choice(self.D, m.sum(), p=p / p.sum())
        self.t0[chosen] = day + _hours(rng, k)
        self.acq_source[chosen] = channel

    def primary_system(self) -> None:
        """The first record's system: the one the person first bought through."""
        w = ORDER_CHANNEL_PREFERENCE[self.persona]
        sys_w = np.stack([w[:, 0] + w[:, 1], w[:, 2], w[:, 3]], axis=1) + 0.02
        primary = _choice_rows(self.rng, sys_w * self.member)
        digital = np.isin(self.acq_source, _ACQ_CHANNELS[:3])
        primary[digital] = 0
        self.primary_sys = primary.astype(np.int8)

    # -- buy till you die ----------------------------------------------------------------------
    def btyd(self, persons: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """BG/NBD with seasonal thinning for the given persons, from their acquisition to the
        window end. Returns (person, time of purchase, is_first) and sets their dropout time.

        Candidate purchases arrive at rate lambda / mean(acceptance) and are kept with the day's
        acceptance, so the long-run purchase rate is lambda. After each repeat purchase the person
        drops out with probability p (BG/NBD: no dropout at the first purchase).
        """
        rng = self.rng
        rate_day = self.lam[persons] / 7.0 / self.abar
        t = self.t0[persons].copy()
        out_p = [persons]
        out_t = [t.copy()]
        death = np.full(persons.size, np.inf)
        active = np.arange(persons.size)
        while active.size:
            t_next = t[active] + rng.exponential(1.0, active.size) / rate_day[active]
            keep = t_next < self.D
            active, t_next = active[keep], t_next[keep]
            t[active] = t_next
            bought = rng.random(active.size) < self.acc_at(t_next)
            buyers = active[bought]
            out_p.append(persons[buyers])
            out_t.append(t_next[bought])
            drop = rng.random(buyers.size) < self.pdrop[persons[buyers]]
            death[buyers[drop]] = t_next[bought][drop]
            alive = np.ones(active.size, dtype=bool)
            alive[np.flatnonzero(bought)[drop]] = False
            active = active[alive]
        self.death[persons] = death
        first = np.zeros(sum(len(x) for x in out_p), dtype=bool)
        first[: persons.size] = True
        return np.concatenate(out_p), np.concatenate(out_t), first

    def purchases(self) -> None:
        self.death = np.full(self.n, np.inf)
        person, t, first = self.btyd(np.arange(self.n))
        # The spike: move later organic acquisitions to one day so that day has ~4x the usual
        # new customers (measured on first purchases in the window, as the KPI mart counts them).
        self.spike_day = self._anomaly_days()
        in_win = t >= 0
        first_day = np.full(self.n, -1, dtype=np.int64)
        order = np.lexsort((t[in_win], person[in_win]))
        pw, tw = person[in_win][order], t[in_win][order]
        head = np.ones(pw.size, dtype=bool)
        head[1:] = pw[1:] != pw[:-1]
        first_day[pw[head]] = np.floor(tw[head]).astype(np.int64)
        counts = np.bincount(first_day[first_day >= 0], minlength=self.D)
        before = counts[max(self.spike_day - 28, 0) : self.spike_day]
        base = float(np.median(before)) if before.size else 1.0
        extra = max(3, int(round((ANOMALY_SPIKE_FACTOR - 1.0) * max(base, 1.0))))
        pool = np.flatnonzero((self.t0 > self.spike_day + 7) & (self.acq_source == -1))
        moved = np.sort(self.rng.permutation(pool)[:extra])
        self.t0[moved] = self.spike_day + _hours(self.rng, moved.size)
        self.acq_source[moved] = 99
        keep = ~np.isin(person, moved)
        p2, t2, f2 = self.btyd(moved)
        person = np.concatenate([person[keep], p2])
        t = np.concatenate([t[keep], t2])
        first = np.concatenate([first[keep], f2])
        in_win = t >= 0
        self.buy_person, self.buy_t, self.buy_first = person[in_win], t[in_win], first[in_win]
        # Repeat purchases keep their day (the thinning decided on it) but get a daytime clock
        # time, never before the acquisition on the same day.
        repeat = ~self.buy_first
        self.buy_t[repeat] = np.floor(self.buy_t[repeat]) + _hours(self.rng, int(repeat.sum()))
        self.buy_t = np.maximum(self.buy_t, self.t0[self.buy_person])

    def _anomaly_days(self) -> int:
        """Pick the spike day and the revenue-drop window: in the last 12 months, after day 90,
        at least 3 weeks apart and before the A/B test (proportionally in short windows)."""
        rng, D = self.rng, self.D
        lo = max(min(100, D // 4), D - 330)
        hi = max(D - self.exp_before_end - min(35, D // 10), lo + 2)
        spike = int(rng.integers(lo, hi))
        days = np.arange(lo, max(hi - ANOMALY_DROP_DAYS, lo + 1))
        for gap in (21, 7, 0):
            ok = (np.abs(days - spike) > gap) & (np.abs(days + ANOMALY_DROP_DAYS - 1 - spike) > gap)
            if ok.any():
                break
        candidates = days[ok] if ok.any() else days
        self.drop_start = int(candidates[int(rng.integers(0, candidates.size))])
        return spike

    # -- records -------------------------------------------------------------------------------
    def records(self) -> None:
        rng, n = self.rng, self.n
        rows_p, rows_s, rows_rank = [], [], []
        for s in range(3):
            m = self.member[:, s]
            p = np.flatnonzero(m)
            rows_p.append(p)
            rows_s.append(np.full(p.size, s))
            rows_rank.append(np.where(self.primary_sys[p] == s, 0, 1 + s))
        dup = np.flatnonzero(rng.random(n) < WITHIN_SYSTEM_DUPLICATE_RATE)
        dup_sys = _choice_rows(rng, self.member[dup].astype(float))
        rows_p.append(dup)
        rows_s.append(dup_sys)
        rows_rank.append(np.full(dup.size, 9))
        p = np.concatenate(rows_p)
        s = np.concatenate(rows_s).astype(np.int8)
        rank = np.concatenate(rows_rank)
        order = np.lexsort((rank, p))
        self.rec_person = p[order].astype(np.int64)
        self.rec_system = s[order]
        self.rec_primary = rank[order] == 0
        R = self.rec_person.size
        self.R = R
        self.n_rec = np.bincount(self.rec_person, minlength=n)
        self.rec_start = np.concatenate([[0], np.cumsum(self.n_rec)[:-1]])
        self.primary_rec = self.rec_start  # primary sorts first within each person
        t0 = self.t0[self.rec_person]
        created = t0 + rng.exponential(120.0, R) + rng.random(R)
        late = created > self.D - 1e-3
        created[late] = t0[late] + rng.random(late.sum()) * (self.D - t0[late])
        created[self.rec_primary] = (
            t0[self.rec_primary] - rng.uniform(1, 30, self.rec_primary.sum()) / 1440
        )
        self.rec_created = created
        # Earliest record per (person, system), -1 if none.
        self.rec_of = np.full((n, 3), -1, dtype=np.int64)
        for sys_i in range(3):
            idx = np.flatnonzero(self.rec_system == sys_i)
            idx = idx[np.lexsort((created[idx], self.rec_person[idx]))]
            head = np.ones(idx.size, dtype=bool)
            head[1:] = self.rec_person[idx[1:]] != self.rec_person[idx[:-1]]
            self.rec_of[self.rec_person[idx[head]], sys_i] = idx[head]
        self.rec_of[np.arange(n), self.primary_sys] = self.primary_rec
        # Record numbers: per system in order of creation, with small random gaps.
        number = np.zeros(R, dtype=np.int64)
        for sys_i in range(3):
            idx = np.flatnonzero(self.rec_system == sys_i)
            idx = idx[np.argsort(created[idx], kind="stable")]
            number[idx] = int(rng.integers(1000, 5000)) + np.cumsum(rng.integers(1, 4, idx.size))
        self.rec_number = number
        self.rec_ids = self.record_ids(np.arange(R))
        self.max_created = np.maximum.reduceat(created, self.rec_start)

    def record_ids(self, rec: np.ndarray) -> pa.Array:
        """Source ids ('EC00001234', 'LY...', 'CC...') of records; rec < 0 gives NULL."""
        rec = np.asarray(rec)
        valid = rec >= 0
        r = rec[valid] if not valid.all() else rec
        # Two-byte cells: the prefix is one uint16, the 8 digits four more (cheap gathers).
        heads = np.frombuffer("".join(SYSTEM_PREFIX).encode(), np.uint16)
        cells = np.empty((r.size, 5), dtype=np.uint16)
        cells[:, 0] = heads[self.rec_system[r]]
        cells[:, 1:] = np.ascontiguousarray(_digits(self.rec_number[r], 8)).view(np.uint16)
        return _fixed(cells.view(np.uint8), None if valid.all() else valid)

    def record_for(self, person: np.ndarray, system: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The person's record in the preferred system if it exists at time t, else primary."""
        rec = self.rec_of[person, system]
        ok = (rec >= 0) & (self.rec_created[np.maximum(rec, 0)] <= t)
        return np.where(ok, rec, self.primary_rec[person])

    # -- consents ------------------------------------------------------------------------------
    def consents(self) -> None:
        rng, n = self.rng, self.n
        self.t_out = np.full((n, len(ADDRESSABLE)), np.inf)
        self.optout_rec = np.full((n, len(ADDRESSABLE)), -1, dtype=np.int64)
        for cc, ch in enumerate(CONSENT_CHANNELS):
            c = _CONSENT_IDX[cc]
            out = np.flatnonzero(rng.random(n) < OPT_OUT_RATE[ch])
            lo = self.max_created[out]
            self.t_out[out, c] = lo + (self.D - lo) * rng.uniform(0.01, 1.0, out.size)
            pick = (rng.random(out.size) * self.n_rec[out]).astype(np.int64)
            self.optout_rec[out, c] = self.rec_start[out] + pick

    # -- money: scale media, realise incremental orders ----------------------------------------
    def order_values(self, person: np.ndarray) -> np.ndarray:
        """Gamma-Gamma order value: z ~ Gamma(p, rate nu_person), in currency, rounded to cents."""
        z = self.rng.gamma(BTYD_PARAMS["p"], 1.0, person.size) / self.nu[person]
        return np.maximum(np.round(z, 2), 1.0)

    def media_money(self) -> None:
        rng, D = self.rng, self.D
        C = len(MEDIA_CHANNELS)
        self.buy_revenue = self.order_values(self.buy_person)
        media_acq = (
            self.buy_first
            & (self.acq_source[self.buy_person] >= 0)
            & (self.acq_source[self.buy_person] < 99)
        )
        self.buy_media = np.where(media_acq, self.acq_source[self.buy_person], -1)
        organic = self.buy_revenue[~media_acq].sum()
        total_media = organic * MEDIA_SHARE_OF_REVENUE / (1.0 - MEDIA_SHARE_OF_REVENUE)
        target = MEDIA["share"] * total_media
        self.total_spend = target / MEDIA["roi"]
        spend = self.spend_shape / self.spend_shape.sum(axis=1, keepdims=True)
        self.spend = np.round(spend * self.total_spend[:, None], 2)
        self.beta = target / self.hill.sum(axis=1)
        self.half_saturation = self.k_factor * lfilter_rows(self.spend, MEDIA["decay"]).mean(axis=1)
        expected = self.beta[:, None] * self.hill  # planted incremental revenue per channel, day
        acq_rev = np.zeros((C, D))
        m = self.buy_media >= 0
        np.add.at(acq_rev, (self.buy_media[m], self.day_index(self.buy_t[m])), self.buy_revenue[m])
        aov = BTYD_PARAMS["p"] * BTYD_PARAMS["v"] / (BTYD_PARAMS["q"] - 1.0)
        counts = rng.poisson(np.maximum(expected - acq_rev, 0.0) / aov)
        ch, day = np.nonzero(counts)
        reps = counts[ch, day]
        ch = np.repeat(ch, reps)
        t = np.repeat(day, reps) + _hours(rng, ch.size)
        person, touch_t, ok = self._media_targets(ch, t)
        self.mo_channel, self.mo_t, self.mo_person, self.mo_touch = (
            ch[ok],
            t[ok],
            person[ok],
            touch_t[ok],
        )
        self.mo_revenue = self.order_values(self.mo_person)

    def _media_targets(
        self, ch: np.ndarray, t: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pick who places each media-driven order: alive, acquired before the touch, opted in on
        the channel; addressable channels prefer personas with affinity for the channel."""
        rng = self.rng
        k = ch.size
        person = np.full(k, -1, dtype=np.int64)
        lag = rng.uniform(1.0, 14.0, k)
        lag = np.where(t - lag < 0, t * rng.uniform(0.1, 0.9, k), lag)
        touch = t - lag
        members = np.argsort(self.persona, kind="stable")
        sizes = np.bincount(self.persona, minlength=len(PERSONAS))
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        w = PERSONA_SHARES[:, None] * PERSONA_CHANNEL_AFFINITY[:, : len(ADDRESSABLE)]
        table = np.hstack([w, np.tile(PERSONA_SHARES[:, None], (1, 2))]).T  # (C, personas)
        pending = np.arange(k)
        for _ in range(200):
            if pending.size == 0:
                break
            c = ch[pending]
            persona = _choice_by_group(rng, c, table * (sizes > 0))
            pick = members[
                offsets[persona] + (rng.random(pending.size) * sizes[persona]).astype(np.int64)
            ]
            tt = touch[pending]
            good = (self.t0[pick] <= tt) & (self.death[pick] > t[pending])
            addressable = c < len(ADDRESSABLE)
            cons = np.where(
                addressable, self.t_out[pick, np.minimum(c, len(ADDRESSABLE) - 1)], np.inf
            )
            good &= cons > tt
            person[pending[good]] = pick[good]
            pending = pending[~good]
        ok = person >= 0
        return np.maximum(person, 0), touch, ok

    # -- the A/B test --------------------------------------------------------------------------
    def experiment(self) -> None:
        rng = self.rng
        self.exp_t = float(self.D - self.exp_before_end) + 9.0 / 24.0
        email = ADDRESSABLE.index("email")
        eligible = np.flatnonzero(
            (self.rec_created[self.primary_rec] < self.exp_t)
            & (self.t_out[:, email] > self.exp_t + 1)
        )
        k = min(int(round(EXPERIMENT_SHARE * self.n)), eligible.size)
        k -= k % 2
        chosen = np.sort(rng.permutation(eligible)[:k])
        arm = np.zeros(k, dtype=np.int8)
        arm[rng.permutation(k)[: k // 2]] = 1  # 1 = treatment
        self.exp_person, self.exp_arm = chosen, arm
        treated = chosen[arm == 1]
        self.exp_send_t = self.exp_t + rng.uniform(0.02, 0.12, treated.size)
        self.exp_treated = treated
        conv = treated[rng.random(treated.size) < EXPERIMENT_UPLIFT]
        self.xo_person = conv
        self.xo_t = self.exp_t + rng.uniform(0.3, self.exp_window - 0.3, conv.size)
        self.xo_revenue = self.order_values(conv)

    # -- orders --------------------------------------------------------------------------------
    def orders(self) -> None:
        rng = self.rng
        # kind: 0 organic BTYD, 1 media acquisition (first BTYD purchase), 2 media, 3 experiment
        kind = np.concatenate(
            [
                np.where(self.buy_media >= 0, 1, 0),
                np.full(self.mo_person.size, 2),
                np.full(self.xo_person.size, 3),
            ]
        ).astype(np.int8)
        person = np.concatenate([self.buy_person, self.mo_person, self.xo_person])
        t = np.concatenate([self.buy_t, self.mo_t, self.xo_t])
        revenue = np.concatenate([self.buy_revenue, self.mo_revenue, self.xo_revenue])
        media = np.concatenate([self.buy_media, self.mo_channel, np.full(self.xo_person.size, -1)])
        first = np.concatenate(
            [self.buy_first, np.zeros(self.mo_person.size + self.xo_person.size, bool)]
        )
        persona = self.persona[person]
        channel = _choice_by_group(rng, persona, ORDER_CHANNEL_PREFERENCE)
        # The first purchase goes through the primary record's system.
        web_share = ORDER_CHANNEL_PREFERENCE[persona[first], 0] / ORDER_CHANNEL_PREFERENCE[
            persona[first], :2
        ].sum(axis=1)
        first_sys = self.primary_sys[person[first]]
        first_ch = np.select(
            [first_sys == 0, first_sys == 1],
            [np.where(rng.random(first.sum()) < web_share, 0, 1), 2],
            3,
        )
        channel[first] = first_ch
        category = _choice_by_group(rng, persona, CATEGORY_PREFERENCE)
        # Anomaly: remove ~60% of the revenue of one sales channel on 4 consecutive days
        # (acquisition purchases are kept so every person still starts with a purchase).
        ch_drop = ORDER_CHANNELS.index(ANOMALY_DROP_CHANNEL)
        day = np.floor(t).astype(np.int64)
        in_drop = (
            (channel == ch_drop)
            & (day >= self.drop_start)
            & (day < self.drop_start + ANOMALY_DROP_DAYS)
        )
        before = revenue[in_drop].sum()
        # Drop droppable orders in random order until 60% of the revenue is gone (exact up to
        # one order, so the planted magnitude does not depend on sampling noise at small N).
        droppable = rng.permutation(np.flatnonzero(in_drop & ~first))
        cum = np.cumsum(revenue[droppable])
        n_drop = int(np.searchsorted(cum, ANOMALY_DROP * before))
        if n_drop < cum.size and abs(cum[n_drop] - ANOMALY_DROP * before) < abs(
            (cum[n_drop - 1] if n_drop else 0.0) - ANOMALY_DROP * before
        ):
            n_drop += 1
        dropped = np.zeros(t.size, dtype=bool)
        dropped[droppable[:n_drop]] = True
        self.drop_magnitude = float(revenue[dropped].sum() / before) if before > 0 else 0.0
        keep = ~dropped
        # Sort by time; ids follow that order.
        order = np.flatnonzero(keep)[np.argsort(t[keep], kind="stable")]
        self.o_person = person[order]
        self.o_t = t[order]
        self.o_revenue = revenue[order]
        self.o_kind = kind[order]
        self.o_media = media[order]
        self.o_channel = channel[order]
        self.o_category = category[order]
        sys_pref = np.array([0, 0, 1, 2])[self.o_channel]
        self.o_record = self.record_for(self.o_person, sys_pref, self.o_t)

    # -- events --------------------------------------------------------------------------------
    def events(self) -> None:
        rng, n, D = self.rng, self.n, self.D
        ev = _Events(self)
        email = ADDRESSABLE.index("email")
        known_from = np.maximum(self.rec_created[self.primary_rec], 0.0)
        lo_day = np.ceil(known_from).astype(np.int64)
        # 1) Background touches on the 8 addressable channels, following the channel's spend
        #    (no touch on days without spend), only while the person is known and opted in.
        for c in range(len(ADDRESSABLE)):
            w = self.spend_shape[c]
            cum = np.concatenate([[0.0], np.cumsum(w)])
            hi_t = np.minimum(self.t_out[:, c], D)
            hi_day = np.floor(hi_t).astype(np.int64)  # exclusive
            hi_day = np.where(np.isinf(self.t_out[:, c]), D, hi_day)
            span = np.where(
                hi_day > lo_day, cum[np.clip(hi_day, 0, D)] - cum[np.clip(lo_day, 0, D)], 0.0
            )
            lam = BASE_TOUCH_RATE[c] / 7.0 * PERSONA_CHANNEL_AFFINITY[self.persona, c] * span
            counts = rng.poisson(lam)
            person = np.repeat(np.arange(n), counts)
            u = cum[lo_day[person]] + rng.random(person.size) * (
                cum[np.clip(hi_day[person], 0, D)] - cum[lo_day[person]]
            )
            day = np.clip(
                np.searchsorted(cum, u, side="right") - 1,
                lo_day[person],
                np.maximum(hi_day[person] - 1, lo_day[person]),
            )
            self._touch_chain(ev, c, person, day.astype(np.float64))
        # 2) Touches before media-driven orders (1-14 days before), same chain as above but the
        #    response always happens (the order proves it).
        for c in range(len(ADDRESSABLE)):
            m = self.mo_channel == c
            if m.any():
                self._response_touch(ev, c, self.mo_person[m], self.mo_touch[m])
        # 3) Known web visits while the person is a customer, on the ecommerce record if any.
        lam = (
            BASE_TOUCH_RATE[-1]
            / 7.0
            * PERSONA_CHANNEL_AFFINITY[self.persona, -1]
            * (D - known_from)
        )
        counts = rng.poisson(lam)
        person = np.repeat(np.arange(n), counts)
        t = known_from[person] + rng.random(person.size) * (D - known_from[person])
        rec = self.record_for(person, np.zeros(person.size, np.int64), t)
        ev.add(t, _WEB, _ET["visit"], record=rec, value=1 + rng.poisson(3.0, person.size))
        # 4) A visit shortly before many web/app orders (the order session).
        m = (self.o_channel <= 1) & (rng.random(self.o_t.size) < 0.5)
        t = self.o_t[m] - rng.uniform(2, 60, m.sum()) / 1440
        ok = t >= 0
        ev.add(
            t[ok],
            _WEB,
            _ET["visit"],
            record=self.o_record[m][ok],
            value=1 + rng.poisson(4.0, ok.sum()),
        )
        # 5) Unsubscribes at the opt-out time (inside the window).
        for c in _CONSENT_IDX:
            m = (self.t_out[:, c] >= 0) & np.isfinite(self.t_out[:, c])
            t = self.t_out[m, c]
            ev.add(
                t,
                c,
                _ET["unsubscribe"],
                record=self.optout_rec[m, c],
                campaign=self.camp_of[c, self.day_index(t)],
            )
        # 6) The A/B test's treatment email.
        rec = self.primary_rec[self.exp_treated]
        ev.add(self.exp_send_t, email, _ET["send"], record=rec, campaign=self.exp_campaign)
        # 7) Anonymous cookies and devices, and prospects who never log in.
        self._anonymous(ev)
        self.ev = ev.finish()

    def _touch_chain(self, ev: _Events, c: int, person: np.ndarray, day: np.ndarray) -> None:
        """Background touches for channel c on given days with the channel's response chain."""
        rng = self.rng
        ch = ADDRESSABLE[c]
        persona = self.persona[person]
        if ch in ("email", "sms", "push", "direct_mail"):
            t = day + rng.uniform(8, 12, person.size) / 24
        elif ch == "call_center":
            t = day + rng.uniform(9, 18, person.size) / 24
        else:
            t = day + _hours(rng, person.size)
        rec = self.primary_rec[person]
        if ch == "call_center":
            rec = self.record_for(person, np.full(person.size, 2), t)
        camp = self.camp_of[c, self.day_index(t)]
        if ch == "email":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
            o = rng.random(person.size) < RESPONSE["email_open"][persona]
            to = t[o] + rng.uniform(0.01, 1.5, o.sum())
            ev.add(to, c, _ET["open"], record=rec[o], campaign=camp[o])
            k = rng.random(o.sum()) < RESPONSE["email_click"][persona[o]]
            ev.add(
                to[k] + rng.uniform(0.0005, 0.01, k.sum()),
                c,
                _ET["click"],
                record=rec[o][k],
                campaign=camp[o][k],
            )
        elif ch == "sms":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
            k = rng.random(person.size) < RESPONSE["sms_click"][persona]
            ev.add(
                t[k] + rng.uniform(0.001, 0.2, k.sum()),
                c,
                _ET["click"],
                record=rec[k],
                campaign=camp[k],
            )
        elif ch == "push":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
            o = rng.random(person.size) < RESPONSE["push_open"][persona]
            ev.add(
                t[o] + rng.uniform(0.001, 0.3, o.sum()),
                c,
                _ET["open"],
                record=rec[o],
                campaign=camp[o],
            )
        elif ch == "direct_mail":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
        elif ch == "paid_search":
            ev.add(t, c, _ET["click"], record=rec, campaign=camp)
        elif ch in ("display", "social"):
            ev.add(t, c, _ET["impression"], record=rec, campaign=camp)
            k = rng.random(person.size) < RESPONSE[f"{ch}_click"][persona]
            ev.add(
                t[k] + rng.uniform(0.0001, 0.01, k.sum()),
                c,
                _ET["click"],
                record=rec[k],
                campaign=camp[k],
            )
        else:  # call_center
            ev.add(
                t,
                c,
                _ET["call"],
                record=rec,
                campaign=camp,
                value=np.round(rng.gamma(2.0, 3.0, person.size), 1),
            )

    def _response_touch(self, ev: _Events, c: int, person: np.ndarray, t: np.ndarray) -> None:
        """The touch that preceded a media-driven order; the response steps always happen."""
        rng = self.rng
        ch = ADDRESSABLE[c]
        rec = self.primary_rec[person]
        if ch == "call_center":
            rec = self.record_for(person, np.full(person.size, 2), t)
        camp = self.camp_of[c, self.day_index(t)]
        step = rng.uniform(0.001, 0.01, person.size)
        if ch == "email":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
            ev.add(t + step, c, _ET["open"], record=rec, campaign=camp)
            ev.add(t + 2 * step, c, _ET["click"], record=rec, campaign=camp)
        elif ch == "sms":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
            ev.add(t + step, c, _ET["click"], record=rec, campaign=camp)
        elif ch == "push":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
            ev.add(t + step, c, _ET["open"], record=rec, campaign=camp)
        elif ch == "direct_mail":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
        elif ch == "paid_search":
            ev.add(t, c, _ET["click"], record=rec, campaign=camp)
        elif ch in ("display", "social"):
            ev.add(t, c, _ET["impression"], record=rec, campaign=camp)
            ev.add(t + step, c, _ET["click"], record=rec, campaign=camp)
        else:
            ev.add(
                t,
                c,
                _ET["call"],
                record=rec,
                campaign=camp,
                value=np.round(rng.gamma(2.0, 3.0, person.size), 1),
            )

    def _anonymous(self, ev: _Events) -> None:
        rng, n, D = self.rng, self.n, self.D
        has_ec = self.rec_of[:, 0] >= 0
        persona = self.persona
        any_id = has_ec & (rng.random(n) < ANON_ANY[persona])
        digital_acq = np.isin(self.acq_source, _ACQ_CHANNELS[:3])
        any_id |= digital_acq  # their journey starts with an anonymous click
        k = np.where(any_id, 1 + rng.poisson(ANON_EXTRA[persona]), 0)
        owner = np.repeat(np.arange(n), k)
        first_of_owner = np.ones(owner.size, dtype=bool)
        first_of_owner[1:] = owner[1:] != owner[:-1]
        ec_rec = self.rec_of[owner, 0]
        ec_created = self.rec_created[ec_rec]
        # Login time: at acquisition for the first id of persons who started on ecommerce inside
        # the window, otherwise at a random time after the ecommerce record exists.
        lo = np.maximum(ec_created, 0.0)
        login = lo + rng.random(owner.size) * (D - lo)
        at_acq = first_of_owner & (self.primary_sys[owner] == 0) & (self.t0[owner] >= 0)
        login[at_acq] = ec_created[at_acq] + rng.random(at_acq.sum()) * (
            self.t0[owner][at_acq] - ec_created[at_acq]
        )
        login = np.minimum(login, D - 1e-4)
        n_linked = owner.size
        n_prospect = int(round(PROSPECT_ID_SHARE * n_linked))
        total = n_linked + n_prospect
        device = np.concatenate(
            [rng.random(n_linked) < ANON_DEVICE_SHARE[persona[owner]], rng.random(n_prospect) < 0.2]
        )
        self.anon_raw = _anon_raw(rng, total)
        self.anon_device = device
        self.anon_owner = np.concatenate([owner, np.full(n_prospect, -1)])
        ev.add(login, _WEB, _ET["login"], record=ec_rec, anon=np.arange(n_linked))
        # Pre-login visits and digital clicks within 21 days before the login.
        m = 1 + rng.poisson(1.0, n_linked)
        aid = np.repeat(np.arange(n_linked), m)
        t = login[aid] - rng.uniform(0.002, 21.0, aid.size)
        ok = t >= 0
        aid, t = aid[ok], t[ok]
        self._anon_events(ev, aid, t, persona[owner[aid]])
        # Media-acquired digital persons: the click on the acquiring channel before the login.
        dig = first_of_owner & digital_acq[owner]
        aid = np.flatnonzero(dig)
        c = self.acq_source[owner[aid]].astype(np.int64)
        lag = rng.uniform(1.0, 14.0, aid.size)
        t = login[aid] - np.minimum(lag, login[aid] * rng.uniform(0.1, 0.9, aid.size))
        ev.add(t, c, _ET["click"], anon=aid, campaign=self.camp_of[c, self.day_index(t)])
        # Prospects: visits and clicks anywhere in the window, never a login.
        m = 1 + rng.poisson(1.2, n_prospect)
        aid = n_linked + np.repeat(np.arange(n_prospect), m)
        t = rng.random(aid.size) * D
        self._anon_events(ev, aid, t, rng.integers(0, len(PERSONAS), aid.size).astype(np.int8))

    def _anon_events(
        self, ev: _Events, aid: np.ndarray, t: np.ndarray, persona: np.ndarray
    ) -> None:
        rng = self.rng
        click = rng.random(aid.size) < 0.25
        digital = np.array([_CH["paid_search"], _CH["display"], _CH["social"]])
        c = digital[_choice_by_group(rng, persona[click], PERSONA_CHANNEL_AFFINITY[:, digital])]
        tc = t[click]
        ev.add(tc, c, _ET["click"], anon=aid[click], campaign=self.camp_of[c, self.day_index(tc)])
        tv = t[~click]
        ev.add(tv, _WEB, _ET["visit"], anon=aid[~click], value=1 + rng.poisson(2.0, tv.size))

    # -- src_customers strings with variations and defects -------------------------------------
    def variations_and_defects(self) -> None:
        rng, R = self.rng, self.R
        person = self.rec_person
        nonprimary = ~self.rec_primary
        single = (self.n_rec == 1)[person]
        # Each multi-record person may differ in at most ONE identity signal across records:
        # 1 email, 2 phone, 3 name (+birth date). Matching then always keeps two of
        # {same email modulo case/dots, same phone digits, same name + birth date/postal code}.
        slot_person = rng.integers(0, 4, self.n)
        slot = slot_person[person]
        el_email = single | (slot == 1)
        el_phone = single | (slot == 2)
        el_name = single | (slot == 3)
        # Variations on non-primary records.
        n_first = len(vocab.FIRST_NAMES)
        n_last = len(vocab.LAST_NAMES)
        nick_forms = [f for name in vocab.FIRST_NAMES for f in vocab.NICKNAMES.get(name, ())]
        nick_start = np.zeros(n_first, dtype=np.int64)
        nick_count = np.zeros(n_first, dtype=np.int64)
        pos = 0
        for i, name in enumerate(vocab.FIRST_NAMES):
            forms = vocab.NICKNAMES.get(name, ())
            nick_start[i], nick_count[i] = pos, len(forms)
            pos += len(forms)
        typo_first = _typo_variants(rng, vocab.FIRST_NAMES)
        typo_last = _typo_variants(rng, vocab.LAST_NAMES)
        self.first_vocab = _vocab(list(vocab.FIRST_NAMES) + nick_forms + typo_first)
        self.last_vocab = _vocab(list(vocab.LAST_NAMES) + typo_last)
        first_idx = self.first[person].astype(np.int64)
        last_idx = self.last[person].astype(np.int64)
        namevar = nonprimary & (slot == 3) & (rng.random(R) < NAME_VARIATION_RATE)
        has_nick = nick_count[first_idx] > 0
        nick = namevar & has_nick & (rng.random(R) < 0.6)
        typo = namevar & ~nick
        typo_on_first = typo & (rng.random(R) < 0.5)
        typo_on_last = typo & ~typo_on_first
        which = (rng.random(R) * np.maximum(nick_count[first_idx], 1)).astype(np.int64)
        first_idx = np.where(nick, n_first + nick_start[first_idx] + which, first_idx)
        v3 = rng.integers(0, 3, R)
        base_first = self.first[person].astype(np.int64)
        first_idx = np.where(
            typo_on_first, n_first + len(nick_forms) + base_first * 3 + v3, first_idx
        )
        last_idx = np.where(typo_on_last, n_last + last_idx * 3 + v3, last_idx)
        case = np.where(nonprimary & (rng.random(R) < EMAIL_CASE_RATE), rng.integers(1, 3, R), 0)
        sep = self.email_sep[person].copy()
        toggle = nonprimary & self.gmail[person] & (self.email_pattern[person] != 3) & (sep != 2)
        toggle &= rng.random(R) < GMAIL_DOT_RATE
        sep[toggle] = 1 - sep[toggle]  # '.' <-> ''
        moved = nonprimary & (rng.random(R) < MOVED_RATE)
        self.variation_counts = {
            "nickname": int(nick.sum()),
            "name_typo": int(typo.sum()),
            "email_case": int((case > 0).sum()),
            "email_dots": int(toggle.sum()),
            "moved_address": int(moved.sum()),
            "duplicate_records": int(nonprimary.sum()),
        }
        # Defects: exact counts, disjoint within a column, only where matching stays feasible.
        created = self.rec_created
        eligible = {
            ("first_name", "missing"): el_name & ~namevar,
            ("last_name", "missing"): el_name & ~namevar,
            ("email", "missing"): el_email,
            ("phone", "missing"): el_phone,
            ("postal_code", "missing"): np.ones(R, bool),
            ("birth_date", "future"): el_name,
            ("updated_at", "stale"): created < self.t_stale - 2.0,
        }
        defect = {}  # (column, defect) -> record indices
        taken_names = np.zeros(R, dtype=bool)
        for column in (
            "first_name",
            "last_name",
            "email",
            "phone",
            "postal_code",
            "birth_date",
            "updated_at",
        ):
            specs = [(d, rate) for col, d, _, rate in DEFECT_RATES if col == column]
            key = (column, specs[0][0])
            el = eligible[key].copy()
            if column in ("first_name", "last_name"):
                el &= ~taken_names
            pool = rng.permutation(np.flatnonzero(el))
            start = 0
            for d, rate in specs:
                k = min(int(round(rate * R)), pool.size - start)
                defect[(column, d)] = np.sort(pool[start : start + k])
                start += k
            if column in ("first_name", "last_name"):
                taken_names[defect[(column, "missing")]] = True
        self.defect = defect

        def mask(col: str, d: str) -> np.ndarray:
            m = np.zeros(R, dtype=bool)
            m[defect[(col, d)]] = True
            return m

        # Names.
        first_s = _null_where(
            mask("first_name", "missing"), self.first_vocab.take(pa.array(first_idx))
        )
        last_s = _null_where(mask("last_name", "missing"), self.last_vocab.take(pa.array(last_idx)))
        # Email.
        mal = mask("email", "malformed")
        mal_kind = rng.integers(0, 3, R)  # 0 no domain, 1 space in local part, 2 no '@'
        sep = np.where(mal & (mal_kind == 1), 3, sep)
        local = self._email_local(person, sep)
        domain = _take(self.domains, self.email_domain[person])
        at = _select(mal & (mal_kind == 2), _s("."), _s("@"))
        dom = _select(mal & (mal_kind == 0), _s(""), domain)
        email = _join(local, at, dom)
        email = _select(case == 1, pc.utf8_upper(email), email)
        email = _select(case == 2, pc.utf8_capitalize(email), email)
        email = _null_where(mask("email", "missing"), email)
        # Phone.
        phone = self._phone_strings(person)
        bad = mask("phone", "impossible")
        phone = _select(
            bad, _take(IMPOSSIBLE_PHONES, rng.integers(0, len(IMPOSSIBLE_PHONES), R)), phone
        )
        phone = _null_where(mask("phone", "missing"), phone)
        # Address (moved records get a fresh address in the same country).
        comp = {k: v[person] for k, v in self.address.items()}
        moved_idx = np.flatnonzero(moved)
        if moved_idx.size:
            fresh = self._addresses(self.country[person[moved_idx]])
            for key_, vals in fresh.items():
                comp[key_][moved_idx] = vals
        line, city, region, postal = _address_strings(comp, self.country[person])
        postal = _null_where(mask("postal_code", "missing"), postal)
        # Birth date.
        dob = self.dob[person].astype(np.int64)
        end_day = self.start_day + self.D - 1
        fut = defect[("birth_date", "future")]
        dob[fut] = end_day + rng.integers(1, 3650, fut.size)
        old = defect[("birth_date", "before_1900")]
        d1880 = (date(1880, 1, 1) - date(1970, 1, 1)).days
        d1900 = (date(1900, 1, 1) - date(1970, 1, 1)).days
        dob[old] = rng.integers(d1880, d1900, old.size)
        # Timestamps: updated_at >= created_at; stale ones older than the stale threshold.
        lo = np.maximum(created, self.t_stale + 1.0)
        updated = lo + rng.random(R) * (self.D - lo)
        updated = np.where(created > self.D - 1e-3, created, updated)
        stale = defect[("updated_at", "stale")]
        updated[stale] = created[stale] + rng.random(stale.size) * (
            self.t_stale - 1.0 - created[stale]
        )
        self.src = {
            "source_system": _dictionary(self.rec_system, SYSTEMS),
            "source_id": self.rec_ids,
            "first_name": first_s,
            "last_name": last_s,
            "email": email,
            "phone": phone,
            "address_line": line,
            "city": city,
            "region": region,
            "postal_code": postal,
            "country": _dictionary(self.country[person], vocab.COUNTRIES),
            "birth_date": _dates(dob),
            "created_at": _timestamps(self.seconds(created)),
            "updated_at": _timestamps(self.seconds(updated)),
        }

    def _phone_strings(self, person: np.ndarray) -> pa.Array:
        rng = self.rng
        R = person.size
        country = self.country[person]
        length = self.phone_len[person]
        num = self.phone_num[person]
        system = self.rec_system
        pieces = []
        for ci, code in enumerate(vocab.COUNTRIES):
            for ln in np.unique(length[country == ci]):
                m = np.flatnonzero((country == ci) & (length == ln))
                formats = _NANP_FORMATS if code in ("US", "CA") else _INTL_FORMATS[(code, int(ln))]
                weights = _NANP_FORMAT_W if code in ("US", "CA") else _INTL_FORMAT_W
                fmt = _choice_by_group(rng, system[m], weights)
                digits = _digits(num[m], int(ln))
                for f, template in enumerate(formats):
                    sel = fmt == f
                    if sel.any():
                        pieces.append((m[sel], _template(template, digits[sel])))
        return _assemble(R, pieces)

    # -- assemble frames -----------------------------------------------------------------------
    def frames(self) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        out["src_customers"] = _frame(self.src)
        # Events first, releasing each integer column as soon as its arrow column exists: at
        # 1M persons this is the largest table (~25M rows) and sets the peak memory.
        ev = self.ev
        self.ev = None
        rec = ev.pop("record")
        columns = {"event_id": _prefixed("E", np.arange(1, rec.size + 1), 10)}
        columns["ts"] = _timestamps(ev.pop("sec"))
        columns["channel"] = _dictionary(ev.pop("channel"), EVENT_CHANNELS)
        columns["event_type"] = _dictionary(ev.pop("type"), EVENT_TYPES)
        columns["source_system"] = _dictionary(
            np.where(rec >= 0, self.rec_system[np.maximum(rec, 0)], -1), SYSTEMS
        )
        columns["source_id"] = self.record_ids(rec)
        del rec
        anon = ev.pop("anon")
        columns["anonymous_id"] = _anon_strings(self.anon_raw, self.anon_device, anon)
        del anon
        columns["campaign_id"] = _dictionary(ev.pop("campaign"), self.campaign_ids)
        value = ev.pop("value")
        columns["value"] = pa.array(value.astype(np.float64), mask=np.isnan(value))
        del value
        out["events"] = _frame(columns)
        del columns
        rec = self.o_record
        out["orders"] = _frame(
            {
                "order_id": _prefixed("O", np.arange(1, rec.size + 1), 9),
                "ts": _timestamps(self.seconds(self.o_t)),
                "source_system": _dictionary(self.rec_system[rec], SYSTEMS),
                "source_id": self.record_ids(rec),
                "revenue": self.o_revenue,
                "channel": _dictionary(self.o_channel, ORDER_CHANNELS),
                "category": _dictionary(self.o_category, CATEGORIES),
            }
        )
        C, D = self.spend.shape
        ch = np.repeat(np.arange(C), D)
        day = np.tile(np.arange(D), C)
        impressions = np.round(
            self.spend.ravel() / MEDIA["cpm"][ch] * 1000 * self.rng.lognormal(0, 0.1, C * D)
        ).astype(np.int64)
        out["spend"] = _frame(
            {
                "date": _dates(self.start_day + day),
                "channel": _dictionary(ch, MEDIA_CHANNELS),
                "campaign_id": _dictionary(self.camp_of.ravel(), self.campaign_ids),
                "spend": self.spend.ravel(),
                "impressions": impressions,
            }
        )
        # Consents: one row per record and consentable channel.
        R = self.R
        cc = np.tile(np.arange(len(CONSENT_CHANNELS)), R)
        rec = np.repeat(np.arange(R), len(CONSENT_CHANNELS))
        c_add = _CONSENT_IDX[cc]
        ts = self.rec_created[rec].copy()
        status = np.zeros(rec.size, dtype=np.int8)
        out_rec = self.optout_rec[self.rec_person[rec], c_add]
        is_out = out_rec == rec
        status[is_out] = 1
        ts[is_out] = self.t_out[self.rec_person[rec[is_out]], c_add[is_out]]
        out["consents"] = _frame(
            {
                "source_system": _dictionary(self.rec_system[rec], SYSTEMS),
                "source_id": self.record_ids(rec),
                "channel": _dictionary(cc, CONSENT_CHANNELS),
                "status": _dictionary(status, store.CONSENT_STATUSES),
                "ts": _timestamps(self.seconds(ts)),
            }
        )
        rows = self.campaign_rows
        out["campaigns"] = _frame(
            {
                "campaign_id": _vocab(self.campaign_ids),
                "name": _vocab([r[0] for r in rows]),
                "channel": _vocab([r[1] for r in rows]),
                "offer": pa.array([r[2] for r in rows], type=_LS),
                "start_date": _dates(np.array([self.start_day + r[3] for r in rows])),
                "end_date": _dates(np.array([self.start_day + r[4] for r in rows])),
            }
        )
        prim = self.primary_rec[self.exp_person]
        out["experiments"] = _frame(
            {
                "experiment_id": _vocab([EXPERIMENT_ID] * prim.size),
                "source_system": _dictionary(self.rec_system[prim], SYSTEMS),
                "source_id": self.record_ids(prim),
                "arm": _dictionary(self.exp_arm, ("control", "treatment")),
                "assigned_at": _timestamps(
                    np.full(prim.size, self.seconds(np.array([self.exp_t]))[0])
                ),
            }
        )
        out.update(self.ground_truth())
        return out

    def ground_truth(self) -> dict[str, pd.DataFrame]:
        gt: dict[str, pd.DataFrame] = {}
        n, R = self.n, self.R
        gt["ground_truth_identity"] = _frame(
            {
                "source_system": _dictionary(self.rec_system, SYSTEMS),
                "source_id": self.rec_ids,
                "person_id": self.rec_person + 1,
            }
        )
        owner = self.anon_owner
        gt["ground_truth_anonymous"] = pd.DataFrame(
            {
                "anonymous_id": _anon_strings(
                    self.anon_raw, self.anon_device, np.arange(owner.size)
                ).to_pandas(),
                "person_id": pd.array(np.where(owner >= 0, owner + 1, 0), dtype="Int64"),
            }
        )
        gt["ground_truth_anonymous"].loc[owner < 0, "person_id"] = pd.NA
        # Per person order counts by kind (as they are in the orders table).
        counts = np.zeros((n, 4), dtype=np.int64)
        np.add.at(counts, (self.o_person, self.o_kind), 1)
        src_codes = np.where(
            self.acq_source == -1, 0, np.where(self.acq_source == 99, 1, 2 + self.acq_source)
        )
        source_vocab = ["organic", "spike", *MEDIA_CHANNELS]
        death = self.death
        alive = ~np.isfinite(death)
        prim = self.primary_rec
        b = BTYD_PARAMS
        gt["ground_truth_persons"] = _frame(
            {
                "person_id": np.arange(1, n + 1),
                "persona": _dictionary(self.persona, PERSONAS),
                "acquired_at": _timestamps(self.seconds(self.t0)),
                "purchase_rate": self.lam,
                "dropout_prob": self.pdrop,
                "spend_rate": self.nu,
                "expected_order_value": b["p"] / self.nu,
                "acquired_in_window": self.t0 >= 0,
                "acquisition_source": _dictionary(src_codes, source_vocab),
                "dropped_out_at": _timestamps(
                    self.seconds(np.where(alive, 0.0, death)), null=alive
                ),
                "country": _dictionary(self.country, vocab.COUNTRIES),
                "records": self.n_rec.astype(np.int32),
                "primary_source_system": _dictionary(self.rec_system[prim], SYSTEMS),
                "primary_source_id": self.record_ids(prim),
                "btyd_orders": (counts[:, 0] + counts[:, 1]).astype(np.int32),
                "media_orders": counts[:, 2].astype(np.int32),
                "experiment_orders": counts[:, 3].astype(np.int32),
            }
        )
        # Defects.
        rows, row_parts = [], []
        for column, d, dim, _rate in DEFECT_RATES:
            idx = self.defect[(column, d)]
            rows.append(("src_customers", column, dim, d, idx.size, R, idx.size / R))
            row_parts.append((idx, column, d))
        gt["ground_truth_defects"] = pd.DataFrame(
            rows, columns=[c for c, _ in GROUND_TRUTH_TABLES["ground_truth_defects"]]
        )
        all_idx = np.concatenate([p[0] for p in row_parts])
        columns = list(dict.fromkeys(p[1] for p in row_parts))
        defects = list(dict.fromkeys(p[2] for p in row_parts))
        col_code = np.concatenate([np.full(p[0].size, columns.index(p[1])) for p in row_parts])
        def_code = np.concatenate([np.full(p[0].size, defects.index(p[2])) for p in row_parts])
        gt["ground_truth_defect_rows"] = _frame(
            {
                "table_name": _dictionary(np.zeros(all_idx.size, np.int8), ["src_customers"]),
                "source_system": _dictionary(self.rec_system[all_idx], SYSTEMS),
                "source_id": self.record_ids(all_idx),
                "column_name": _dictionary(col_code, columns),
                "defect": _dictionary(def_code, defects),
            }
        )
        dups = self.variation_counts["duplicate_records"]
        gt["ground_truth_variations"] = pd.DataFrame(
            [
                (k, v, dups, v / dups if dups else 0.0)
                for k, v in self.variation_counts.items()
                if k != "duplicate_records"
            ],
            columns=["variation", "records", "duplicate_records", "rate"],
        )
        gt["ground_truth_btyd"] = pd.DataFrame(
            {"parameter": list(b), "value": [float(v) for v in b.values()]}
        )
        # Media truth from realised orders.
        C, D = self.spend.shape
        contrib = np.zeros((C, D))
        m = self.o_media >= 0
        np.add.at(contrib, (self.o_media[m], self.day_index(self.o_t[m])), self.o_revenue[m])
        contrib = np.round(contrib, 2)
        total = contrib.sum(axis=1)
        acq = np.bincount(self.o_media[m & (self.o_kind == 1)], minlength=C)
        media_idx = np.flatnonzero(m)
        gt["ground_truth_media_orders"] = _frame(
            {
                "order_id": _prefixed("O", media_idx + 1, 9),
                "channel": _dictionary(self.o_media[media_idx], MEDIA_CHANNELS),
                "acquisition": self.o_kind[media_idx] == 1,
            }
        )
        spend_total = self.spend.sum(axis=1)
        gt["ground_truth_channels"] = pd.DataFrame(
            {
                "channel": list(MEDIA_CHANNELS),
                "addressable": [c in ADDRESSABLE for c in MEDIA_CHANNELS],
                "adstock_decay": MEDIA["decay"],
                "hill_half_saturation": self.half_saturation,
                "hill_slope": MEDIA["slope"],
                "beta": self.beta,
                "total_spend": spend_total,
                "true_contribution": total,
                "true_roi": np.divide(total, spend_total, out=np.zeros(C), where=spend_total > 0),
                "true_share": total / total.sum() if total.sum() > 0 else np.zeros(C),
                "acquisitions": acq,
            }
        )
        ch = np.repeat(np.arange(C), D)
        day = np.tile(np.arange(D), C)
        gt["ground_truth_contributions"] = _frame(
            {
                "date": _dates(self.start_day + day),
                "channel": _dictionary(ch, MEDIA_CHANNELS),
                "contribution": contrib.ravel(),
            }
        )
        # Consent truth: latest per person (opted-out persons' latest row is the opt-out).
        pid = np.repeat(np.arange(n), len(CONSENT_CHANNELS))
        cc = np.tile(np.arange(len(CONSENT_CHANNELS)), n)
        status = np.isfinite(self.t_out[pid, _CONSENT_IDX[cc]]).astype(np.int8)
        gt["ground_truth_consent"] = _frame(
            {
                "person_id": pid + 1,
                "channel": _dictionary(cc, CONSENT_CHANNELS),
                "status": _dictionary(status, store.CONSENT_STATUSES),
            }
        )
        # Experiment: realised 30-day conversion per arm from the final orders.
        window_end = self.exp_t + self.exp_window
        in_win = (self.o_t > self.exp_t) & (self.o_t <= window_end)
        converted = np.zeros(n, dtype=bool)
        converted[self.o_person[in_win]] = True
        conv = converted[self.exp_person]
        rate_c = float(conv[self.exp_arm == 0].mean()) if (self.exp_arm == 0).any() else 0.0
        rate_t = float(conv[self.exp_arm == 1].mean()) if (self.exp_arm == 1).any() else 0.0
        gt["ground_truth_experiment"] = pd.DataFrame(
            {
                "experiment_id": [EXPERIMENT_ID],
                "control_rate": [rate_c],
                "treatment_rate": [rate_t],
                "true_lift": [rate_t - rate_c],
                "window_days": [self.exp_window],
                "assigned_at": pd.to_datetime(self.seconds(np.array([self.exp_t])), unit="s"),
                "control_n": [int((self.exp_arm == 0).sum())],
                "treatment_n": [int((self.exp_arm == 1).sum())],
                "planted_uplift": [EXPERIMENT_UPLIFT],
            }
        )
        # Anomalies, magnitudes measured on the final data.
        first_t = np.full(n, np.inf)
        np.minimum.at(first_t, self.o_person, self.o_t)
        has = np.isfinite(first_t)
        new_per_day = np.bincount(np.floor(first_t[has]).astype(np.int64), minlength=D)
        before = new_per_day[max(self.spike_day - 28, 0) : self.spike_day]
        base = float(np.median(before)) if before.size else 0.0
        spike_mag = (
            new_per_day[self.spike_day] / base if base > 0 else float(new_per_day[self.spike_day])
        )
        day0 = self.start
        gt["ground_truth_anomalies"] = pd.DataFrame(
            {
                "kind": ["revenue_drop", "new_customer_spike"],
                "channel": [ANOMALY_DROP_CHANNEL, None],
                "start_date": pd.to_datetime(
                    [day0 + timedelta(days=self.drop_start), day0 + timedelta(days=self.spike_day)]
                ),
                "end_date": pd.to_datetime(
                    [
                        day0 + timedelta(days=self.drop_start + ANOMALY_DROP_DAYS - 1),
                        day0 + timedelta(days=self.spike_day),
                    ]
                ),
                "magnitude": [self.drop_magnitude, float(spike_mag)],
            }
        )
        gt["ground_truth_sample"] = pd.DataFrame(
            {
                "parameter": ["customers", "days", "seed", "start_date", "end_date", "generator"],
                "value": [
                    str(self.n),
                    str(self.D),
                    str(self.seed),
                    self.start.isoformat(),
                    self.end.isoformat(),
                    "ccrm_core.sample v1",
                ],
            }
        )
        return gt

    @property
    def campaign_ids(self) -> list[str]:
        return [f"CMP{i + 1:04d}" for i in range(len(self.campaign_rows))]

    def add_experiment_campaign(self) -> None:
        start = self.D - self.exp_before_end
        self.exp_campaign = len(self.campaign_rows)
        self.campaign_rows.append(
            (
                f"{EXPERIMENT_ID} test: 15% off next order",
                "email",
                "15% off next order",
                start,
                start + self.exp_window - 1,
            )
        )


def lfilter_rows(x: np.ndarray, decay: np.ndarray) -> np.ndarray:
    """Geometric adstock per row: a_t = x_t + decay * a_{t-1}, a_{-1} = 0 (days)."""
    return np.vstack([lfilter([1.0], [1.0, -decay[i]], x[i]) for i in range(x.shape[0])])


def _season(day: date) -> str:
    m = day.month
    if m in (11, 12):
        return "Holiday"
    if m in (1, 2):
        return "New Year"
    if m in (3, 4, 5):
        return "Spring"
    if m in (6, 7):
        return "Summer"
    if m == 8:
        return "Back to School"
    return "Autumn"


class _Events:
    """Collects event chunks as compact integer/float arrays; strings are built once at the end.

    Times are stored as epoch seconds. Records and anonymous ids are int32 indices (-1 = none),
    campaigns int16 indices (-1 = none), value float32 (NaN = NULL).
    """

    COLUMNS = (
        ("sec", np.int64),
        ("channel", np.int8),
        ("type", np.int8),
        ("record", np.int32),
        ("anon", np.int32),
        ("campaign", np.int16),
        ("value", np.float32),
    )

    def __init__(self, company: _Company) -> None:
        self.company = company
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, t, channel, etype, record=None, anon=None, campaign=None, value=None) -> None:
        """Add events at generator times t; responses that would fall after the window end
        (an open the day after the last day) are left out."""
        t = np.asarray(t, dtype=np.float64)
        inside = (t >= 0) & (t < self.company.D)
        if not inside.all():
            t = t[inside]
            record, anon, campaign, value = (
                x[inside] if x is not None and np.ndim(x) else x
                for x in (record, anon, campaign, value)
            )
            channel = channel[inside] if np.ndim(channel) else channel
        k = t.size
        if k == 0:
            return
        given = {
            "channel": channel,
            "type": etype,
            "record": record,
            "anon": anon,
            "campaign": campaign,
            "value": value,
        }
        fill = {"channel": 0, "type": 0, "record": -1, "anon": -1, "campaign": -1, "value": np.nan}
        part = {"sec": self.company.seconds(t)}
        for name, dtype in self.COLUMNS[1:]:
            x = given[name]
            if x is None:
                part[name] = np.full(k, fill[name], dtype=dtype)
            else:
                x = np.asarray(x)
                part[name] = np.full(k, x, dtype=dtype) if x.ndim == 0 else x.astype(dtype)
        self.parts.append(part)

    def finish(self) -> dict[str, np.ndarray]:
        """All events in day order (a stable radix sort on the day; within a day the order of
        generation), one column at a time to keep peak memory low."""
        day = np.concatenate(
            [(p["sec"] // _DAY_S - self.company.start_day).astype(np.int16) for p in self.parts]
        )
        order = np.argsort(day, kind="stable")
        del day
        out = {}
        for name, _ in self.COLUMNS:
            full = np.concatenate([p.pop(name) for p in self.parts])
            out[name] = full[order]
            del full
        self.parts = []
        return out


def _assemble(n: int, pieces: list[tuple[np.ndarray, pa.Array]]) -> pa.Array:
    """Scatter string pieces (row indices, values) into one array of n rows."""
    idx = np.concatenate([p[0] for p in pieces])
    arr = pa.concat_arrays([p[1].cast(_LS) for p in pieces])
    inverse = np.empty(n, dtype=np.int64)
    inverse[idx] = np.arange(idx.size)
    return arr.take(pa.array(inverse))


def _anon_raw(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique random 63-bit numbers behind the anonymous ids."""
    raw = rng.integers(0, np.iinfo(np.int64).max, n, dtype=np.int64)
    for _ in range(10):
        _, first = np.unique(raw, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        if not dup.any():
            break
        raw[dup] = rng.integers(0, np.iinfo(np.int64).max, dup.sum(), dtype=np.int64)
    return raw


def _anon_strings(raw: np.ndarray, device: np.ndarray, idx: np.ndarray) -> pa.Array:
    """'ck_' (cookie) or 'dv_' (device) + 16 hex digits for anonymous id indices (< 0: NULL)."""
    idx = np.asarray(idx)
    valid = idx >= 0
    i = idx[valid] if not valid.all() else idx
    n = i.size
    b = raw[i].astype(">u8").view(np.uint8).reshape(n, 8)
    mat = np.empty((n, 19), dtype=np.uint8)
    dev = device[i]
    mat[:, 0] = np.where(dev, ord("d"), ord("c"))
    mat[:, 1] = np.where(dev, ord("v"), ord("k"))
    mat[:, 2] = ord("_")
    mat[:, 3:] = _HEX2[b].reshape(n, 16)
    return _fixed(mat, None if valid.all() else valid)


def _address_strings(
    comp: dict[str, np.ndarray], country: np.ndarray
) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """address_line, city, region, postal_code from integer components (per-country formats)."""
    cities = vocab.CITIES
    city = comp["city"]
    n = city.size
    num = _int_str(comp["number"])
    en = _take(vocab.STREETS_EN, comp["street"] % len(vocab.STREETS_EN))
    de = _take(vocab.STREETS_DE, comp["street"] % len(vocab.STREETS_DE))
    fr = _take(vocab.STREETS_FR, comp["street"] % len(vocab.STREETS_FR))
    us_suf = _take(vocab.STREET_SUFFIXES_US, comp["suffix"] % len(vocab.STREET_SUFFIXES_US))
    gb_suf = _take(vocab.STREET_SUFFIXES_GB, comp["suffix"] % len(vocab.STREET_SUFFIXES_GB))
    apt = comp["apt"]
    us = _join(num, " ", en, " ", us_suf)
    us = _select(apt >= 0, _join(us, ", Apt ", _int_str(np.maximum(apt, 0))), us)
    code = np.array(vocab.COUNTRIES)[country]
    line = _select(code == "GB", _join(num, " ", en, " ", gb_suf), us)
    line = _select(code == "DE", _join(de, " ", num), line)
    line = _select(code == "FR", _join(num, " ", fr), line)
    city_s = _take([c[1] for c in cities], city)
    region_s = _take([c[2] for c in cities], city)
    # Postal codes: per-city prefix or outward code plus random digits/letters.
    outward_list = [o for c in cities for o in c[3].split()]
    outward_start = np.cumsum([0] + [len(c[3].split()) for c in cities])[:-1]
    outward = _take(outward_list, outward_start[city] + comp["outward"])
    prefix = _take([c[3].split()[0] for c in cities], city)
    a, b = comp["postal_a"], comp["postal_b"]
    us_post = _join(prefix, _fixed(_digits(a % 100, 2)))
    de_post = _join(prefix, _fixed(_digits(a % 1000, 3)))
    fr_post = us_post
    gb_in = np.empty((n, 3), dtype=np.uint8)
    gb_in[:, 0] = 48 + a % 10
    letters = np.frombuffer(_GB_INWARD.encode(), np.uint8)
    gb_in[:, 1] = letters[b % 20]
    gb_in[:, 2] = letters[(b // 20) % 20]
    gb_post = _join(outward, " ", _fixed(gb_in))
    ca_ld = np.empty((n, 3), dtype=np.uint8)
    ca_letters = np.frombuffer(_CA_LETTERS.encode(), np.uint8)
    ca_ld[:, 0] = 48 + a % 10
    ca_ld[:, 1] = ca_letters[b % 20]
    ca_ld[:, 2] = 48 + (a // 10) % 10
    ca_post = _join(outward, " ", _fixed(ca_ld))
    postal = _select(code == "GB", gb_post, us_post)
    postal = _select(code == "DE", de_post, postal)
    postal = _select(code == "FR", fr_post, postal)
    postal = _select(code == "CA", ca_post, postal)
    return line, city_s, region_s, postal


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------
def generate(
    customers: int,
    days: int = 730,
    seed: int = 42,
    end_date: date = DEFAULT_END_DATE,
    progress: Progress | None = None,
) -> dict[str, pd.DataFrame]:
    """Generate a synthetic company: raw tables (store.TABLES columns) and ground-truth tables.

    `customers` is the number of persons (each with 1+ source records), `days` the window length
    ending on `end_date` (inclusive). Same arguments -> identical frames.
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
        ("records", lambda c: (c.records(), c.consents())),
        ("media orders", lambda c: c.media_money()),
        ("experiment", lambda c: (c.experiment(), c.orders())),
        ("events", lambda c: c.events()),
        ("customer records", lambda c: c.variations_and_defects()),
    ]
    company = _Company(customers, days, seed, end_date)
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


def _select_sql(table: str, view: str) -> str:
    """SELECT that casts a registered frame to the contract's (or ground truth's) types."""
    if table in store.TABLES:
        cols = [(c.name, c.type) for c in store.TABLES[table].columns]
    else:
        cols = list(GROUND_TRUTH_TABLES[table])
    exprs = ", ".join(
        f"CAST({store.quote_ident(c)} AS {t}) AS {store.quote_ident(c)}" for c, t in cols
    )
    return f"SELECT {exprs} FROM {store.quote_ident(view)}"  # noqa: S608 - contract names only


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list:
    """Execute and fetch fully (duckdb 2.x: an unfetched result blocks the connection)."""
    return con.execute(sql, params or []).fetchall()


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def write_sample(con: duckdb.DuckDBPyConnection, data: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Replace the raw tables with the generated ones and (re)create the ground-truth tables,
    all in one transaction; returns rows written per table.

    The database must already be migrated (store.connect_writer does that). Raw tables are
    emptied and filled with INSERT ... SELECT (casts to the contract types); ground-truth tables
    are CREATE OR REPLACE. One ingest_log row per raw table records the load, so
    store.data_version changes and cached pages refresh. Call outside an open transaction.
    """
    missing = [t for t in store.RAW_TABLES if t not in data]
    if missing:
        raise ValueError(
            f"sample data lacks raw tables {', '.join(missing)}; pass generate()'s output"
        )
    written: dict[str, int] = {}
    params = {}
    if "ground_truth_sample" in data:
        params = dict(
            zip(
                data["ground_truth_sample"]["parameter"],
                data["ground_truth_sample"]["value"],
                strict=True,
            )
        )
    label = "ccrm sample --customers {} --days {} --seed {}".format(
        params.get("customers", "?"), params.get("days", "?"), params.get("seed", "?")
    )
    with store.transaction(con):
        next_id = _run(con, "SELECT coalesce(max(ingest_id), 0) + 1 FROM ingest_log")[0][0]
        for i, table in enumerate(store.RAW_TABLES):
            view = f"_ccrm_sample_{table}"
            started = datetime.now()
            con.register(view, _arrow(data[table]))
            try:
                _run(con, f"DELETE FROM {store.quote_ident(table)}")  # noqa: S608
                cols = ", ".join(store.quote_ident(c) for c in store.TABLES[table].column_names)
                _run(
                    con,
                    f"INSERT INTO {store.quote_ident(table)} ({cols}) {_select_sql(table, view)}",
                )  # noqa: S608
            finally:
                con.unregister(view)
            rows = len(data[table])
            written[table] = rows
            _run(
                con,
                "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, 0, 'loaded', ?)",
                [
                    next_id + i,
                    label,
                    table,
                    started,
                    datetime.now(),
                    rows,
                    rows,
                    "synthetic sample; replaced previous rows",
                ],
            )
        for table in GROUND_TRUTH_TABLES:
            if table not in data:
                continue
            view = f"_ccrm_sample_{table}"
            con.register(view, _arrow(data[table]))
            try:
                _run(
                    con,
                    f"CREATE OR REPLACE TABLE {store.quote_ident(table)} AS {_select_sql(table, view)}",
                )
            finally:
                con.unregister(view)
            written[table] = len(data[table])
    return written


def write_csv(data: dict[str, pd.DataFrame], directory: str | os.PathLike) -> list[Path]:
    """Write the raw tables as `<table>.csv` (UTF-8, comma, header row, ISO dates
    'YYYY-MM-DD' and timestamps 'YYYY-MM-DD HH:MM:SS', empty field = NULL), the format
    `ccrm ingest` reads. Each file is written to a temporary name and renamed into place."""
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    paths = []
    try:
        for table in store.RAW_TABLES:
            view = f"_ccrm_sample_{table}"
            con.register(view, _arrow(data[table]))
            path = out_dir / f"{table}.csv"
            tmp = out_dir / f".{table}.csv.tmp"
            # The path is ours (directory argument + contract table name); quote it as a literal.
            literal = "'" + str(tmp).replace("'", "''") + "'"
            _run(
                con,
                f"COPY ({_select_sql(table, view)}) TO {literal} "
                "(FORMAT csv, HEADER true, DELIMITER ',', DATEFORMAT '%Y-%m-%d', "
                "TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S')",
            )
            con.unregister(view)
            os.replace(tmp, path)
            paths.append(path)
    finally:
        con.close()
    return paths


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
