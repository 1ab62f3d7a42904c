"""Next best action: one decision per customer, with its reasons, under a contact policy.

The `nba` build stage writes `mart_nba`, one row per customer:
customer_id, action ('offer', 'soft_touch' or 'rest'), channel, campaign_id, campaign_name,
offer, expected_value (currency units; NULL unless action is 'offer'), p_buy (probability of a
purchase in the next 30 days), churn_risk, order_value (currency units), contact_cost,
reasons (VARCHAR[]: the deciding rule first, then the figures, then every suppressed channel),
as_of (the day the data ends).

Rules, in order (thresholds in `contact_policy.toml`, see that file for every key):
1. A channel is suppressed for a customer without an `opt_in` consent on it (no record counts
   as no consent), or at/over its 7-day or 30-day frequency cap. No action ever uses a
   suppressed channel.
2. Bought in the last `recent_purchase_days` days -> rest (no remarketing of what was just
   bought).
3. Probably lapsed (churn risk >= `lapsed_churn_risk`, or prob_alive < `lapsed_prob_alive`)
   and fatigued (>= `fatigue_touches_30d` contacts in 30 days) -> soft touch on the first
   unsuppressed `soft_touch_channels` channel, else rest.
4. Otherwise each unsuppressed channel with an offer (campaigns on that channel running on
   as_of; with `reuse_ended_campaigns`, else its latest campaign) is scored by expected value
   EV = p_buy x order_value x response_weight - cost; the highest EV wins (ties: channel order
   in the policy). No candidate, or best EV <= `min_expected_value` -> rest.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.foundation.pipeline import BuildContext, replace_table

DEFAULT_POLICY_FILE = "contact_policy.toml"
POLICY_ENV = "CCRM_CONTACT_POLICY"
ACTIONS = ("offer", "soft_touch", "rest")


class ContactPolicyError(ValueError):
    """The contact policy file is unreadable or holds a bad key or value."""


@dataclass(frozen=True)
class ChannelPolicy:
    channel: str
    cap_7d: int  # contacts in the last 7 days at or above which the channel is suppressed
    cap_30d: int  # same over 30 days
    cost: float  # currency units per contact
    response_weight: float  # relative effectiveness (1.0 = propensity as is)


@dataclass(frozen=True)
class ContactPolicy:
    recent_purchase_days: int
    lapsed_churn_risk: float
    lapsed_prob_alive: float
    fatigue_touches_30d: int
    soft_touch_channels: tuple[str, ...]
    touch_event_types: tuple[str, ...]
    min_expected_value: float
    order_value_prior_orders: float
    default_order_value: float
    reuse_ended_campaigns: bool
    channels: tuple[ChannelPolicy, ...]  # enabled channels, in order of preference
    source: str  # the file(s) it came from

    def channel(self, name: str) -> ChannelPolicy | None:
        return next((c for c in self.channels if c.channel == name), None)

    def frame(self) -> pd.DataFrame:
        """One row per enabled channel: channel, channel_rank, caps, cost, weight, soft_touch."""
        return pd.DataFrame(
            [
                {
                    "channel": c.channel,
                    "channel_rank": i,
                    "cap_7d": c.cap_7d,
                    "cap_30d": c.cap_30d,
                    "cost": c.cost,
                    "response_weight": c.response_weight,
                    "soft_touch": c.channel in self.soft_touch_channels,
                }
                for i, c in enumerate(self.channels)
            ]
        )


# key -> (kind, check, what the value must be); kind: int, float, bool, channels, words
_RULE_KEYS: dict[str, tuple[str, Any, str]] = {
    "recent_purchase_days": ("int", lambda v: v >= 0, "a whole number of days >= 0"),
    "lapsed_churn_risk": ("float", lambda v: 0 <= v <= 1, "a probability between 0 and 1"),
    "lapsed_prob_alive": ("float", lambda v: 0 <= v <= 1, "a probability between 0 and 1"),
    "fatigue_touches_30d": ("int", lambda v: v >= 1, "a whole number of contacts >= 1"),
    "soft_touch_channels": ("channels", None, "a list of channel names"),
    "touch_event_types": ("words", None, "a list of event types"),
    "min_expected_value": ("float", lambda v: True, "a number (currency units)"),
    "order_value_prior_orders": ("float", lambda v: v >= 0, "a number of orders >= 0"),
    "default_order_value": ("float", lambda v: v > 0, "a positive amount (currency units)"),
    "reuse_ended_campaigns": ("bool", None, "true or false"),
}
_CHANNEL_KEYS: dict[str, tuple[str, Any, str]] = {
    "enabled": ("bool", None, "true or false"),
    "cap_7d": ("int", lambda v: v >= 0, "a whole number of contacts >= 0"),
    "cap_30d": ("int", lambda v: v >= 0, "a whole number of contacts >= 0"),
    "cost": ("float", lambda v: v >= 0, "an amount >= 0 (currency units)"),
    "response_weight": ("float", lambda v: v >= 0, "a number >= 0"),
}


def _check(source: str, key: str, value: Any, spec: tuple[str, Any, str]) -> Any:
    kind, check, what = spec

    def bad() -> ContactPolicyError:
        return ContactPolicyError(
            f"contact policy {source}: key '{key}' must be {what} (got {value!r}); "
            "fix the value or delete the key to use the default"
        )

    if kind == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not check(value):
            raise bad()
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) or not check(value):
            raise bad()
        return float(value)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise bad()
    if kind == "channels":
        unknown = [v for v in value if v not in store.ADDRESSABLE_CHANNELS]
        if unknown:
            raise ContactPolicyError(
                f"contact policy {source}: key '{key}' names unknown channel {unknown[0]!r}; "
                f"choose from {', '.join(store.ADDRESSABLE_CHANNELS)}"
            )
    return tuple(value)


def _read(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ContactPolicyError(f"contact policy file {path} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ContactPolicyError(f"contact policy {path} is not valid TOML: {exc}") from exc


def _validate(doc: dict, source: str) -> dict:
    """Check every key of one policy document; returns {"rules": {...}, "channels": {...}}."""
    out: dict = {"rules": {}, "channels": {}}
    for section, body in doc.items():
        if section not in ("rules", "channels"):
            raise ContactPolicyError(
                f"contact policy {source}: unknown key '{section}'; the file has sections "
                "[rules] and [channels.<channel>]"
            )
        if not isinstance(body, dict):
            raise ContactPolicyError(f"contact policy {source}: key '{section}' must be a table")
    for key, value in doc.get("rules", {}).items():
        if key not in _RULE_KEYS:
            raise ContactPolicyError(
                f"contact policy {source}: unknown key 'rules.{key}'; "
                f"known keys: {', '.join(_RULE_KEYS)}"
            )
        out["rules"][key] = _check(source, f"rules.{key}", value, _RULE_KEYS[key])
    for channel, body in doc.get("channels", {}).items():
        if channel not in store.ADDRESSABLE_CHANNELS:
            raise ContactPolicyError(
                f"contact policy {source}: unknown key 'channels.{channel}' (not a channel); "
                f"choose from {', '.join(store.ADDRESSABLE_CHANNELS)}"
            )
        if not isinstance(body, dict):
            raise ContactPolicyError(
                f"contact policy {source}: key 'channels.{channel}' must be a table"
            )
        checked = {}
        for key, value in body.items():
            if key not in _CHANNEL_KEYS:
                raise ContactPolicyError(
                    f"contact policy {source}: unknown key 'channels.{channel}.{key}'; "
                    f"known keys: {', '.join(_CHANNEL_KEYS)}"
                )
            checked[key] = _check(source, f"channels.{channel}.{key}", value, _CHANNEL_KEYS[key])
        out["channels"][channel] = checked
    return out


def load_policy(path: str | os.PathLike | None = None) -> ContactPolicy:
    """The contact policy: the shipped defaults, overridden by `path` (or $CCRM_CONTACT_POLICY)
    when given. Raises ContactPolicyError naming the file and the bad key."""
    override = path or os.environ.get(POLICY_ENV)
    if not override:
        return parse_policy(None)
    return parse_policy(_read(Path(override)), str(override))


def parse_policy(overrides: dict | str | None, source: str = "policy text") -> ContactPolicy:
    """The shipped defaults overridden by a policy document (parsed TOML dict or TOML text)."""
    default_text = (
        resources.files("ccrm_core.conductor").joinpath(DEFAULT_POLICY_FILE).read_text("utf-8")
    )
    shipped = f"ccrm_core/conductor/{DEFAULT_POLICY_FILE}"
    try:
        defaults = _validate(tomllib.loads(default_text), shipped)
    except tomllib.TOMLDecodeError as exc:
        raise ContactPolicyError(f"contact policy {shipped}: {exc}") from exc
    sources = [shipped]
    rules = dict(defaults["rules"])
    channels = {k: dict(v) for k, v in defaults["channels"].items()}
    if isinstance(overrides, str):
        try:
            overrides = tomllib.loads(overrides)
        except tomllib.TOMLDecodeError as exc:
            raise ContactPolicyError(f"contact policy {source} is not valid TOML: {exc}") from exc
    if overrides:
        user = _validate(overrides, source)
        rules.update(user["rules"])
        for channel, body in user["channels"].items():
            channels.setdefault(channel, {}).update(body)
        sources.append(source)
    source = " + ".join(sources)
    missing = [k for k in _RULE_KEYS if k not in rules]
    if missing:
        raise ContactPolicyError(f"contact policy {source}: key 'rules.{missing[0]}' is missing")
    enabled = []
    for channel, body in channels.items():
        absent = [k for k in _CHANNEL_KEYS if k not in body]
        if absent:
            raise ContactPolicyError(
                f"contact policy {source}: key 'channels.{channel}.{absent[0]}' is missing"
            )
        if body["enabled"]:
            enabled.append(
                ChannelPolicy(
                    channel,
                    body["cap_7d"],
                    body["cap_30d"],
                    body["cost"],
                    body["response_weight"],
                )
            )
    return ContactPolicy(**rules, channels=tuple(enabled), source=source)


def fatigue_frame(touches: pd.DataFrame, policy: ContactPolicy) -> pd.DataFrame:
    """Contacts against caps per policy channel (plus any other channel with touches):
    channel, touches_7d, cap_7d, touches_30d, cap_30d, over_cap (bool)."""
    caps = pd.DataFrame(
        [(c.channel, c.cap_7d, c.cap_30d) for c in policy.channels],
        columns=["channel", "cap_7d", "cap_30d"],
    )
    extra = touches[~touches["channel"].isin(caps["channel"])]
    out = pd.concat([caps.merge(touches, on="channel", how="left"), extra], ignore_index=True)
    out[["touches_7d", "touches_30d"]] = (
        out[["touches_7d", "touches_30d"]].fillna(0).astype("int64")
    )
    out["over_cap"] = (out["touches_7d"] >= out["cap_7d"]) | (out["touches_30d"] >= out["cap_30d"])
    out["over_cap"] = out["over_cap"].fillna(False).astype(bool)
    return out[["channel", "touches_7d", "cap_7d", "touches_30d", "cap_30d", "over_cap"]]


# ---------------------------------------------------------------------------------------------
# The decision itself (pure over its inputs; the stage gathers them from the marts)

_DECIDE_SELECT = """
WITH grid AS (
    SELECT c.customer_id, p.channel, p.channel_rank, p.cap_7d, p.cap_30d, p.cost,
           p.response_weight, p.soft_touch,
           coalesce(k.consent, 'none') AS consent,
           coalesce(k.touches_7d, 0) AS t7, coalesce(k.touches_30d, 0) AS t30,
           o.campaign_id, o.campaign_name, o.offer, o.ended,
           coalesce(c.p_buy, 0) * c.order_value * p.response_weight - p.cost AS ev
    FROM _nba_customers c
    CROSS JOIN _nba_policy p
    LEFT JOIN _nba_contacts k ON k.customer_id = c.customer_id AND k.channel = p.channel
    LEFT JOIN _nba_offers o ON o.channel = p.channel
),
flagged AS (
    SELECT *,
           CASE WHEN consent <> 'opt_in'
                    THEN channel || ' suppressed: no consent ('
                         || CASE consent WHEN 'none' THEN 'none on record' ELSE consent END || ')'
                WHEN t7 >= cap_7d
                    THEN format('{} suppressed: over frequency cap ({} contacts in 7 days, cap {})',
                                channel, t7, cap_7d)
                WHEN t30 >= cap_30d
                    THEN format('{} suppressed: over frequency cap ({} contacts in 30 days, cap {})',
                                channel, t30, cap_30d)
           END AS suppression
    FROM grid
),
per_customer AS (
    SELECT customer_id,
           sum(t30) AS touches_30d,
           coalesce(list(suppression ORDER BY channel_rank)
                    FILTER (WHERE suppression IS NOT NULL), []) AS suppressions,
           list(channel ORDER BY channel_rank)
               FILTER (WHERE suppression IS NULL AND soft_touch) AS soft_channels
    FROM flagged GROUP BY customer_id
),
best AS (
    SELECT customer_id, channel, campaign_id, campaign_name, offer, ended, ev, cost,
           response_weight
    FROM flagged
    WHERE suppression IS NULL AND campaign_id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY ev DESC, channel_rank) = 1
),
state AS (
    SELECT c.*, pc.touches_30d, pc.suppressions, pc.soft_channels[1] AS soft_channel,
           b.channel AS best_channel, b.campaign_id, b.campaign_name, b.offer, b.ended,
           b.ev AS best_ev, b.cost AS best_cost, b.response_weight AS best_weight,
           (c.days_since_last_order IS NOT NULL
            AND c.days_since_last_order < $recent_days) AS recent,
           (coalesce(c.churn_risk >= $lapsed_churn, false)
            OR coalesce(c.prob_alive < $lapsed_alive, false)) AS lapsed,
           (pc.touches_30d >= $fatigue) AS fatigued
    FROM _nba_customers c JOIN per_customer pc USING (customer_id)
    LEFT JOIN best b USING (customer_id)
),
decided AS (
    SELECT *,
           CASE WHEN recent THEN 'rest'
                WHEN lapsed AND fatigued AND soft_channel IS NOT NULL THEN 'soft_touch'
                WHEN lapsed AND fatigued THEN 'rest'
                WHEN best_channel IS NULL THEN 'rest'
                WHEN best_ev <= $min_ev THEN 'rest'
                ELSE 'offer'
           END AS action
    FROM state
)
SELECT customer_id, action,
       CASE action WHEN 'offer' THEN best_channel WHEN 'soft_touch' THEN soft_channel END
           AS channel,
       CASE WHEN action = 'offer' THEN campaign_id END AS campaign_id,
       CASE WHEN action = 'offer' THEN campaign_name END AS campaign_name,
       CASE action WHEN 'offer' THEN offer WHEN 'soft_touch' THEN 'soft touch (no offer)' END
           AS offer,
       CASE WHEN action = 'offer' THEN round(best_ev, 4) END AS expected_value,
       p_buy, churn_risk, order_value,
       CASE WHEN action = 'offer' THEN best_cost END AS contact_cost,
       list_concat(
           [CASE
                WHEN recent THEN format(
                    'rest: bought {} day(s) ago, within the {}-day no-remarketing window',
                    CAST(days_since_last_order AS BIGINT), $recent_days)
                WHEN lapsed AND fatigued THEN format(
                    '{}: probably lapsed ({}) and fatigued ({} contacts in 30 days >= {})',
                    CASE WHEN soft_channel IS NULL
                         THEN 'rest (no consented soft-touch channel under its caps)'
                         ELSE 'soft touch on ' || soft_channel END,
                    CASE WHEN coalesce(churn_risk >= $lapsed_churn, false)
                         THEN format('churn risk {:.2f} >= {:.2f}', churn_risk, $lapsed_churn)
                         ELSE format('prob alive {:.2f} < {:.2f}', prob_alive, $lapsed_alive) END,
                    touches_30d, $fatigue)
                WHEN best_channel IS NULL
                    THEN 'rest: no channel with an offer is consented and under its caps'
                WHEN best_ev <= $min_ev THEN format(
                    'rest: best expected value {:.2f} on {} does not beat {:.2f}',
                    best_ev, best_channel, $min_ev)
                ELSE format(
                    'offer on {}: expected value {:.2f} = p(buy 30d) {:.3f} x order value {:.2f}'
                    ' x weight {:.2f} - cost {:.2f}, the highest of the allowed channels',
                    best_channel, best_ev, coalesce(p_buy, 0), order_value, best_weight,
                    best_cost)
            END,
            CASE WHEN action = 'offer' AND ended
                 THEN format('campaign {} has ended; reused as the latest {} offer',
                             campaign_id, best_channel) END,
            format('p(buy 30d) {}, churn risk {}, order value {:.2f}, {} contacts in 30 days',
                   coalesce(format('{:.3f}', p_buy), 'n/a'),
                   coalesce(format('{:.2f}', churn_risk), 'n/a'), order_value, touches_30d)
           ].list_filter(lambda x: x IS NOT NULL),
           suppressions) AS reasons"""

DECIDE_SQL = _DECIDE_SELECT + "\nFROM decided\nORDER BY customer_id\n"


def _policy_frame(policy: ContactPolicy) -> pd.DataFrame:
    """`policy.frame()`, typed even when no channel is enabled."""
    pol = policy.frame()
    if pol.empty:
        pol = pd.DataFrame(
            {
                "channel": pd.Series(dtype=str),
                "channel_rank": pd.Series(dtype="int64"),
                "cap_7d": pd.Series(dtype="int64"),
                "cap_30d": pd.Series(dtype="int64"),
                "cost": pd.Series(dtype=float),
                "response_weight": pd.Series(dtype=float),
                "soft_touch": pd.Series(dtype=bool),
            }
        )
    return pol


def _decide_params(policy: ContactPolicy) -> dict:
    return {
        "recent_days": policy.recent_purchase_days,
        "lapsed_churn": policy.lapsed_churn_risk,
        "lapsed_alive": policy.lapsed_prob_alive,
        "fatigue": policy.fatigue_touches_30d,
        "min_ev": policy.min_expected_value,
    }


def decide(
    con: duckdb.DuckDBPyConnection,
    customers: pd.DataFrame,
    contacts: pd.DataFrame,
    offers: pd.DataFrame,
    policy: ContactPolicy,
) -> pd.DataFrame:
    """One decision per customer (mart_nba columns without as_of).

    customers: customer_id, p_buy, churn_risk, prob_alive (NaN when unknown), order_value
    (currency units), days_since_last_order (NaN when never bought; 0 = bought on as_of).
    contacts: customer_id, channel, consent ('opt_in', 'opt_out' or NaN), touches_7d,
    touches_30d (contacts in the last 7 / 30 days); missing rows mean no consent, no contacts.
    offers: channel, campaign_id, campaign_name, offer, ended (bool): at most one per channel.
    `con` is any DuckDB connection (the work runs in SQL; nothing is written).
    """
    frames = {
        "_nba_customers": customers[
            [
                "customer_id",
                "p_buy",
                "churn_risk",
                "prob_alive",
                "order_value",
                "days_since_last_order",
            ]
        ].astype(
            {
                "p_buy": float,
                "churn_risk": float,
                "prob_alive": float,
                "order_value": float,
                "days_since_last_order": float,
            }
        ),
        "_nba_contacts": contacts[
            ["customer_id", "channel", "consent", "touches_7d", "touches_30d"]
        ].astype({"consent": object, "touches_7d": "int64", "touches_30d": "int64"}),
        "_nba_offers": offers[["channel", "campaign_id", "campaign_name", "offer", "ended"]].astype(
            {"campaign_id": object, "campaign_name": object, "offer": object}
        ),
        "_nba_policy": _policy_frame(policy),
    }
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        return con.execute(DECIDE_SQL, _decide_params(policy)).df()
    finally:
        for name in frames:
            con.unregister(name)


# ---------------------------------------------------------------------------------------------
# Gathering the inputs from the marts, and the stage

_OFFERS_SQL = """
SELECT channel, campaign_id, name AS campaign_name, offer,
       NOT (coalesce(end_date, DATE '9999-12-31') >= CAST(? AS DATE)) AS ended
FROM campaigns
WHERE channel IN (SELECT unnest(?::VARCHAR[]))
  AND coalesce(start_date, DATE '0001-01-01') <= CAST(? AS DATE)
  AND (? OR coalesce(end_date, DATE '9999-12-31') >= CAST(? AS DATE))
QUALIFY row_number() OVER (
    PARTITION BY channel ORDER BY ended, start_date DESC NULLS LAST, campaign_id) = 1
ORDER BY channel
"""


def _offers_params(as_of: date, policy: ContactPolicy) -> list:
    channels = [c.channel for c in policy.channels]
    return [as_of, channels, as_of, policy.reuse_ended_campaigns, as_of]


def candidate_offers(
    con: duckdb.DuckDBPyConnection, as_of: date, policy: ContactPolicy
) -> pd.DataFrame:
    """At most one campaign per policy channel: the most recently started one running on
    as_of; with `reuse_ended_campaigns`, else the most recently started one before as_of
    (ended = True). Columns: channel, campaign_id, campaign_name, offer, ended."""
    return con.execute(_OFFERS_SQL, _offers_params(as_of, policy)).df()


def _require_inputs(con: duckdb.DuckDBPyConnection) -> None:
    for needed, stage in (
        ("customer_timeline", "customer_timeline"),
        ("mart_propensity", "propensity"),
    ):
        if not store.table_exists(con, needed):
            raise RuntimeError(f"table {needed} is missing: run the {stage} stage before nba")


def _customers_query(
    con: duckdb.DuckDBPyConnection, as_of: date, policy: ContactPolicy
) -> tuple[str, list]:
    """SQL and parameters for the customers input, before the missing order values are
    filled in (see `_order_value_fill`)."""
    end = as_of + timedelta(days=1)
    prob_alive = "NULL::DOUBLE"
    join_value = ""
    if store.table_exists(con, "mart_customer") and "prob_alive" in {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'mart_customer'"
        ).fetchall()
    }:
        prob_alive = "v.prob_alive"
        join_value = "LEFT JOIN mart_customer v USING (customer_id)"
    sql = f"""
        WITH o AS (
            SELECT customer_id, count(*) AS orders, {store.exact_sum("value")} AS revenue, max(ts) AS last_order
            FROM customer_timeline
            WHERE kind = 'order' AND ts < CAST(? AS DATE)
            GROUP BY customer_id
        ),
        g AS (SELECT {store.exact_sum("revenue")} / nullif(sum(orders), 0) AS aov FROM o)
        SELECT c.customer_id, p.p_buy_30d AS p_buy, p.churn_risk, {prob_alive} AS prob_alive,
               CASE WHEN g.aov IS NULL THEN ?
                    ELSE (coalesce(o.revenue, 0) + ? * g.aov) / nullif(coalesce(o.orders, 0) + ?, 0)
               END AS order_value,
               date_diff('day', CAST(o.last_order AS DATE), CAST(? AS DATE))
                   AS days_since_last_order
        FROM customers c
        CROSS JOIN g
        LEFT JOIN o USING (customer_id)
        LEFT JOIN mart_propensity p USING (customer_id)
        {join_value}
        ORDER BY c.customer_id
        """  # noqa: S608 - fragments from this module
    params = [
        end,
        policy.default_order_value,
        policy.order_value_prior_orders,
        policy.order_value_prior_orders,
        as_of,
    ]
    return sql, params


def _order_value_fill(order_value: pd.Series, policy: ContactPolicy) -> float:
    """A customer with no orders and a zero prior has no average: the overall one stands in."""
    return order_value.mean() if order_value.notna().any() else policy.default_order_value


_CONTACTS_SQL = """
WITH t AS (
    SELECT customer_id, channel,
           count(*) FILTER (WHERE ts >= CAST(? AS DATE) - INTERVAL 7 DAY) AS touches_7d,
           count(*) AS touches_30d
    FROM customer_timeline
    WHERE kind = 'event' AND event_type IN (SELECT unnest(?::VARCHAR[]))
      AND ts >= CAST(? AS DATE) - INTERVAL 30 DAY AND ts < CAST(? AS DATE)
    GROUP BY customer_id, channel
)
SELECT coalesce(k.customer_id, t.customer_id) AS customer_id,
       coalesce(k.channel, t.channel) AS channel, k.status AS consent,
       coalesce(t.touches_7d, 0) AS touches_7d, coalesce(t.touches_30d, 0) AS touches_30d
FROM customer_consents k
FULL OUTER JOIN t ON t.customer_id = k.customer_id AND t.channel = k.channel
"""


def _contacts_params(as_of: date, policy: ContactPolicy) -> list:
    end = as_of + timedelta(days=1)
    return [end, list(policy.touch_event_types), end, end]


def decision_inputs(
    con: duckdb.DuckDBPyConnection, as_of: date, policy: ContactPolicy
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(customers, contacts) frames for `decide`, read from customers, customer_timeline,
    customer_consents, mart_propensity and (when built) mart_customer."""
    _require_inputs(con)
    customers = con.execute(*_customers_query(con, as_of, policy)).df()
    customers["order_value"] = customers["order_value"].fillna(
        _order_value_fill(customers["order_value"], policy)
    )
    contacts = con.execute(_CONTACTS_SQL, _contacts_params(as_of, policy)).df()
    return customers, contacts


# The stage keeps the inputs in DuckDB: the same values `decide` gets from its frames (a NaN
# there reads back as NULL, the day counts as DOUBLE), without sending a million rows and their
# lists of reasons through pandas and back.
_CUSTOMERS_TABLE_SQL = """
CREATE OR REPLACE TEMP TABLE _nba_customers AS
SELECT customer_id,
       CAST(CASE WHEN NOT isnan(p_buy) THEN p_buy END AS DOUBLE) AS p_buy,
       CAST(CASE WHEN NOT isnan(churn_risk) THEN churn_risk END AS DOUBLE) AS churn_risk,
       CAST(CASE WHEN NOT isnan(prob_alive) THEN prob_alive END AS DOUBLE) AS prob_alive,
       CAST(order_value AS DOUBLE) AS order_value,
       CAST(days_since_last_order AS DOUBLE) AS days_since_last_order
FROM ({query})
ORDER BY customer_id
"""


def _stage_inputs(con: duckdb.DuckDBPyConnection, as_of: date, policy: ContactPolicy) -> None:
    """Temp tables _nba_customers, _nba_contacts and _nba_offers for DECIDE_SQL."""
    sql, params = _customers_query(con, as_of, policy)
    con.execute(_CUSTOMERS_TABLE_SQL.format(query=sql), params)
    missing = "order_value IS NULL OR isnan(order_value)"
    if con.execute(f"SELECT count(*) FROM _nba_customers WHERE {missing}").fetchall()[0][0]:  # noqa: S608 - constant
        # the fill is pandas' mean over every row in customer order, for the same bits
        values = con.execute("SELECT order_value FROM _nba_customers ORDER BY customer_id").df()
        fill = _order_value_fill(values["order_value"], policy)
        con.execute(f"UPDATE _nba_customers SET order_value = ? WHERE {missing}", [fill])  # noqa: S608 - constant
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _nba_contacts AS {_CONTACTS_SQL}",  # noqa: S608 - constant
        _contacts_params(as_of, policy),
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _nba_offers AS {_OFFERS_SQL}",  # noqa: S608 - constant
        _offers_params(as_of, policy),
    )


def _write_decisions(con: duckdb.DuckDBPyConnection, as_of: date, policy: ContactPolicy) -> int:
    """Decide for every customer straight into mart_nba; returns its rows."""
    _require_inputs(con)
    _stage_inputs(con, as_of, policy)
    con.register("_nba_policy", _policy_frame(policy))
    con.execute(
        "CREATE OR REPLACE TABLE mart_nba AS "
        + _DECIDE_SELECT
        + ",\n       CAST($as_of AS DATE) AS as_of\nFROM decided\nORDER BY customer_id",
        {**_decide_params(policy), "as_of": as_of},
    )
    # cleanup on success only: after a failed statement the transaction is aborted and any
    # further statement would hide the real error (the rollback drops the temp tables anyway)
    con.unregister("_nba_policy")
    for name in ("_nba_customers", "_nba_contacts", "_nba_offers"):
        con.execute(f"DROP TABLE temp.{name}")
    return con.execute("SELECT count(*) FROM mart_nba").fetchall()[0][0]


def nba_stage(con: duckdb.DuckDBPyConnection, ctx: BuildContext) -> int:
    """Write mart_nba: one next best action per customer (see the module docstring)."""
    policy = load_policy(ctx.param("nba", "policy_path", None))
    rows = _write_decisions(con, ctx.as_of, policy)
    if rows:
        return rows
    # nothing to decide (no customers or no enabled channel): the frame path keeps the empty
    # mart's column types as replace_table gives them (text for the reasons and as_of)
    customers, contacts = decision_inputs(con, ctx.as_of, policy)
    offers = candidate_offers(con, ctx.as_of, policy)
    decisions = decide(con, customers, contacts, offers, policy)
    decisions["as_of"] = ctx.as_of
    return replace_table(con, "mart_nba", decisions)


def action_summary(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Customers per action and channel in mart_nba, with mean expected value."""
    if not store.table_exists(con, "mart_nba"):
        return pd.DataFrame(columns=["action", "channel", "customers", "mean_expected_value"])
    return con.execute(
        "SELECT action, channel, count(*) AS customers, avg(expected_value) AS mean_expected_value "
        "FROM mart_nba GROUP BY ALL ORDER BY customers DESC"
    ).df()
