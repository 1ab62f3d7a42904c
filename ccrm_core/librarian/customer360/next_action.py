"""Why each channel did or did not win a customer's next best action, from what the `nba`
stage stored (p_buy, order_value, as_of) and the contact policy: consent, frequency caps, the
channel's offer and its expected value. One customer, a handful of rows: cheap at page time.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ccrm_core.conductor import decisioning

COLUMNS = ["channel", "expected_value", "outcome"]


def channel_outcomes(
    con: duckdb.DuckDBPyConnection, nba: dict, consents: pd.DataFrame, fatigue: pd.DataFrame
) -> pd.DataFrame:
    """One row per policy channel: channel, expected_value (currency units; p(buy 30d) x order
    value x response weight - contact cost, NaN without an offer), outcome (chosen, or why it
    lost: no consent, over a frequency cap, no offer running, a lower expected value)."""
    policy = decisioning.load_policy()
    consent = dict(zip(consents["channel"], consents["status"], strict=True))
    caps = fatigue.set_index("channel") if not fatigue.empty else pd.DataFrame()
    offers = decisioning.candidate_offers(con, pd.Timestamp(nba["as_of"]).date(), policy)
    offer_of = set(offers["channel"])
    p_buy = nba.get("p_buy")
    p_buy = 0.0 if p_buy is None or pd.isna(p_buy) else float(p_buy)
    rows = []
    for c in policy.channels:
        ev = p_buy * float(nba["order_value"]) * c.response_weight - c.cost
        t7 = int(caps.loc[c.channel, "touches_7d"]) if c.channel in caps.index else 0
        t30 = int(caps.loc[c.channel, "touches_30d"]) if c.channel in caps.index else 0
        if c.channel == nba.get("channel"):
            outcome = "chosen"
        elif consent.get(c.channel) != "opt_in":
            outcome = f"no consent ({consent.get(c.channel) or 'none on record'})"
        elif t7 >= c.cap_7d:
            outcome = f"over frequency cap ({t7} contacts in 7 days, cap {c.cap_7d})"
        elif t30 >= c.cap_30d:
            outcome = f"over frequency cap ({t30} contacts in 30 days, cap {c.cap_30d})"
        elif c.channel not in offer_of:
            outcome = "no offer running on this channel"
        elif nba.get("action") == "offer" and nba.get("expected_value") is not None:
            outcome = f"lower expected value ({ev:.2f} < {float(nba['expected_value']):.2f})"
        elif nba.get("action") == "offer":
            outcome = "not chosen"
        else:
            outcome = f"not used: the decision is {nba.get('action')} (see why above)"
        rows.append((c.channel, ev if c.channel in offer_of else float("nan"), outcome))
    return pd.DataFrame(rows, columns=COLUMNS)
