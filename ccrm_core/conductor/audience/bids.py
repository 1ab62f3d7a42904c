"""Value-based bidding: what a person of each segment is expected to be worth over the next 12
months, and the bid multiplier a media buyer applies to that segment's audience.

Per segment of a scheme (one row each, largest first):
- customers: segment size;
- value_per_person: mean 12-month discounted CLV (mart_customer.clv, currency units); a customer
  without a CLV (no purchase yet, so no model) counts as 0;
- bid_multiplier: value_per_person / the mean over all customers (same rule), bounded to
  [BID_MULTIPLIER_MIN, BID_MULTIPLIER_MAX] and rounded to 2 decimals; 1.0 when the average is 0.
  The bounds keep one small, lucky segment from taking the budget (and a worthless one from
  being switched off by a bid of 0); both lie inside the range Google Ads accepts for bid
  adjustments (-90 % .. +900 %, i.e. 0.1 .. 10);
- bid_adjustment_pct: the same as the percentage Google Ads and most buying tools ask for
  ((multiplier - 1) x 100, e.g. 1.5 -> +50).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.foundation import csv_export
from ccrm_core.radar import segments

BID_MULTIPLIER_MIN = 0.5
BID_MULTIPLIER_MAX = 3.0
BID_COLUMNS = [
    "scheme",
    "segment",
    "customers",
    "value_per_person",
    "bid_multiplier",
    "bid_adjustment_pct",
]


def bid_multiplier(
    value_per_person: np.ndarray | float,
    average_value: float,
    lower: float = BID_MULTIPLIER_MIN,
    upper: float = BID_MULTIPLIER_MAX,
) -> np.ndarray:
    """value / average, bounded to [lower, upper], rounded to 2 decimals; 1.0 everywhere when
    the average is not positive."""
    if not 0.1 <= lower <= 1.0 <= upper <= 10.0:
        raise ValueError(
            f"bid multiplier bounds {lower} .. {upper}: use 0.1 <= lower <= 1 <= upper <= 10"
        )
    value = np.asarray(value_per_person, dtype=float)
    if not average_value or average_value <= 0 or not np.isfinite(average_value):
        return np.ones_like(value)
    return np.round(np.clip(value / average_value, lower, upper), 2)


def segment_bids(
    con: duckdb.DuckDBPyConnection,
    scheme: str,
    lower: float = BID_MULTIPLIER_MIN,
    upper: float = BID_MULTIPLIER_MAX,
) -> pd.DataFrame:
    """The bid file of `scheme` (BID_COLUMNS; see the module docstring), largest segment first."""
    if not segments.mart_ready(con):
        raise ValueError("mart_customer does not exist yet; run `ccrm build` (segments stage)")
    average = con.execute("SELECT avg(coalesce(clv, 0)) FROM mart_customer").fetchall()[0][0]
    rows = []
    for name in segments.segment_names(con, scheme):
        cond, params = segments.segment_condition(con, scheme, name)
        customers, value = con.execute(
            f"SELECT count(*), avg(coalesce(clv, 0)) FROM mart_customer WHERE {cond}",  # noqa: S608
            params,
        ).fetchall()[0]
        rows.append((name, int(customers), float(value or 0.0)))
    frame = pd.DataFrame(rows, columns=["segment", "customers", "value_per_person"])
    frame.insert(0, "scheme", scheme)
    multiplier = bid_multiplier(frame["value_per_person"].to_numpy(), average or 0.0, lower, upper)
    frame["value_per_person"] = frame["value_per_person"].round(2)
    frame["bid_multiplier"] = multiplier
    frame["bid_adjustment_pct"] = np.round((multiplier - 1.0) * 100.0, 0)
    frame = frame.sort_values(["customers", "segment"], ascending=[False, True])
    return frame.reset_index(drop=True)[BID_COLUMNS]


def bids_csv(bids: pd.DataFrame) -> bytes:
    """The bid file as CSV bytes (formula cells neutralised: segment names are user text)."""
    return csv_export.csv_bytes(bids)


def write_bids(bids: pd.DataFrame, path) -> None:
    """Write the bid file as CSV (.csv or .csv.gz), all or nothing; csv_export.ExportFileError
    with a one-line reason otherwise."""
    csv_export.write_csv(bids, path)
