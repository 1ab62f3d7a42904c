"""Segment schemes and value tiers.

Schemes are columns of `mart_customer`: `rfm_segment` (named RFM cells, see ccrm_core.radar.value),
`value_tier` (lifetime value rank among buyers), `needs_segment` (behavioural clusters). A fourth
scheme, `saved`, holds the user's rule segments (see ccrm_core.radar.segments.rules).
Customers without an order are 'No purchase yet' in rfm_segment and value_tier; customers
without any event or order are 'No activity yet' in needs_segment.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SCHEMES: dict[str, str] = {
    "rfm_segment": "RFM segment",
    "value_tier": "Value tier",
    "needs_segment": "Needs segment",
}
SAVED_SCHEME = "saved"
NO_PURCHASE = "No purchase yet"
NO_ACTIVITY = "No activity yet"

# Value tiers: share of buyers (ranked by lifetime value) in each tier, top first.
VALUE_TIERS: tuple[tuple[str, float], ...] = (
    ("Platinum (top 1%)", 0.01),
    ("Gold (next 4%)", 0.04),
    ("Silver (next 15%)", 0.15),
    ("Bronze (rest)", 0.80),
)


# ---------------------------------------------------------------------------------------------
# Value tiers


def value_tiers(clv: pd.Series, tiers: Sequence[tuple[str, float]] = VALUE_TIERS) -> np.ndarray:
    """Tier name per customer from lifetime value: rank customers by CLV (ties broken by the
    order given, so callers sort by customer_id first) and cut at the cumulative tier shares.
    NaN CLV -> NO_PURCHASE."""
    values = pd.Series(np.asarray(clv, dtype=float))
    valid = values.notna()
    n = int(valid.sum())
    out = np.full(len(values), NO_PURCHASE, dtype=object)
    if n == 0:
        return out
    # position 0 = highest CLV; stable so equal CLVs keep their input order
    order = values[valid].rank(method="first", ascending=False).to_numpy() - 1
    bounds = np.cumsum([share for _, share in tiers])
    # a customer at rank i (0-based) belongs to the first tier whose cumulative share covers i+1
    tier_index = np.searchsorted(np.ceil(bounds * n - 1e-9), order + 1, side="left")
    tier_index = np.minimum(tier_index, len(tiers) - 1)
    names = np.array([name for name, _ in tiers], dtype=object)
    out[valid.to_numpy()] = names[tier_index]
    return out
