"""Next best action: the contact policy file, each decision rule on hand-made data, the stage."""

from __future__ import annotations

import re

import duckdb
import pandas as pd
import pytest

from ccrm_core.conductor import decisioning
from ccrm_core.conductor.decisioning import ContactPolicyError, decide, load_policy
from ccrm_core.foundation import store

# --- contact policy ----------------------------------------------------------------------------


def test_default_policy_loads_with_documented_values():
    p = load_policy()
    assert p.recent_purchase_days == 14 and p.fatigue_touches_30d == 4
    assert [c.channel for c in p.channels] == ["email", "sms", "push", "direct_mail", "call_center"]
    email = p.channel("email")
    assert (email.cap_7d, email.cap_30d, email.cost, email.response_weight) == (2, 6, 0.01, 1.0)
    assert p.touch_event_types == ("send", "call")


def test_every_key_in_the_shipped_file_is_documented():
    """Every rule key is set in the shipped file right under a comment explaining it, and every
    channel key is explained in the comment block above the channel tables."""
    from importlib import resources

    lines = (
        resources.files("ccrm_core.conductor")
        .joinpath("contact_policy.toml")
        .read_text()
        .splitlines()
    )
    for key in decisioning._RULE_KEYS:
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{key} = "))
        assert lines[at - 1].startswith("#"), f"rules.{key} has no comment above it"
    comments = [line for line in lines if line.startswith("#")]
    for key in decisioning._CHANNEL_KEYS:
        assert any(re.match(rf"#\s+(\w+, )*{key}\b", line) for line in comments), key


def write(tmp_path, text: str):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def test_override_file_merges_over_defaults(tmp_path):
    p = load_policy(
        write(tmp_path, "[rules]\nrecent_purchase_days = 7\n[channels.sms]\ncap_7d = 5\n")
    )
    assert p.recent_purchase_days == 7
    assert p.channel("sms").cap_7d == 5 and p.channel("sms").cap_30d == 3  # rest from defaults
    assert p.fatigue_touches_30d == 4
    off = load_policy(write(tmp_path, "[channels.call_center]\nenabled = false\n"))
    assert off.channel("call_center") is None


@pytest.mark.parametrize(
    "text, named",
    [
        ("[rules]\nrecent_purchse_days = 7\n", "'rules.recent_purchse_days'"),
        ("[rules]\nlapsed_churn_risk = 1.5\n", "'rules.lapsed_churn_risk'"),
        ("[rules]\nrecent_purchase_days = 'two weeks'\n", "'rules.recent_purchase_days'"),
        ("[rules]\nrecent_purchase_days = 7.5\n", "'rules.recent_purchase_days'"),
        ("[rules]\nreuse_ended_campaigns = 1\n", "'rules.reuse_ended_campaigns'"),
        ("[rules]\nsoft_touch_channels = ['pigeon']\n", "'rules.soft_touch_channels'"),
        ("[channels.email]\ncap_7d = -1\n", "'channels.email.cap_7d'"),
        ("[channels.email]\ncost = true\n", "'channels.email.cost'"),
        ("[channels.email]\ncolour = 'red'\n", "'channels.email.colour'"),
        ("[channels.tv]\ncap_7d = 1\n", "'channels.tv'"),
        ("[channels.web_push]\nenabled = true\n", "'channels.web_push'"),
        ("[limits]\nx = 1\n", "'limits'"),
    ],
)
def test_bad_policy_names_the_file_and_the_key(tmp_path, text, named):
    path = write(tmp_path, text)
    with pytest.raises(ContactPolicyError) as err:
        load_policy(path)
    assert named in str(err.value)
    assert str(path) in str(err.value)


def test_new_channel_must_be_complete(tmp_path):
    with pytest.raises(ContactPolicyError, match="'channels.paid_search.cap_30d' is missing"):
        load_policy(write(tmp_path, "[channels.paid_search]\nenabled = true\ncap_7d = 1\n"))


def test_unreadable_policy(tmp_path):
    with pytest.raises(ContactPolicyError, match="not valid TOML"):
        load_policy(write(tmp_path, "[rules\n"))
    with pytest.raises(ContactPolicyError, match="not found"):
        load_policy(tmp_path / "missing.toml")


# --- the rules, one by one, on hand-made inputs ----------------------------------------------

# The rule tests pin their own policy so that changing the shipped defaults cannot move them.
RULES_POLICY = """
[rules]
recent_purchase_days = 14
lapsed_churn_risk = 0.7
lapsed_prob_alive = 0.3
fatigue_touches_30d = 12
soft_touch_channels = ["email", "push"]
min_expected_value = 0.0
[channels.email]
cap_7d = 3
cap_30d = 8
cost = 0.01
response_weight = 1.0
[channels.sms]
cap_7d = 2
cap_30d = 4
cost = 0.05
response_weight = 1.1
[channels.push]
cap_7d = 3
cap_30d = 8
cost = 0.005
response_weight = 0.8
"""


RULES = decisioning.parse_policy(RULES_POLICY, "RULES_POLICY")

OFFERS = pd.DataFrame(
    [
        ("email", "CE", "Spring email", "10% off", False),
        ("sms", "CS", "Spring sms", "free shipping", False),
        ("push", "CP", "App push", "new arrivals", False),
    ],
    columns=["channel", "campaign_id", "campaign_name", "offer", "ended"],
)


def customer(cid="A", p_buy=0.2, churn=0.1, alive=None, value=100.0, days=60) -> dict:
    return {
        "customer_id": cid,
        "p_buy": p_buy,
        "churn_risk": churn,
        "prob_alive": alive,
        "order_value": value,
        "days_since_last_order": days,
    }


def contact(cid="A", channel="email", consent="opt_in", t7=0, t30=0) -> dict:
    return {
        "customer_id": cid,
        "channel": channel,
        "consent": consent,
        "touches_7d": t7,
        "touches_30d": t30,
    }


def run(customers, contacts, offers=OFFERS, policy=None) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        out = decide(
            con,
            pd.DataFrame(customers),
            pd.DataFrame(
                contacts,
                columns=["customer_id", "channel", "consent", "touches_7d", "touches_30d"],
            ),
            offers,
            policy or RULES,
        )
    finally:
        con.close()
    return out.set_index("customer_id")


def test_expected_value_picks_the_best_allowed_channel():
    # p 0.2 x value 100: email 20 x 1.0 - 0.01 = 19.99; sms 20 x 1.1 - 0.05 = 21.95;
    # push 20 x 0.8 - 0.005 = 15.995 -> sms
    d = run(
        [customer()],
        [contact(), contact(channel="sms"), contact(channel="push")],
    ).loc["A"]
    assert (d["action"], d["channel"], d["campaign_id"]) == ("offer", "sms", "CS")
    assert d["expected_value"] == pytest.approx(21.95)
    assert d["contact_cost"] == 0.05
    assert d["reasons"][0].startswith("offer on sms: expected value 21.95")


def test_no_consent_suppresses_the_channel():
    # sms would win on expected value, but the customer opted out of it; push has no record
    d = run([customer()], [contact(), contact(channel="sms", consent="opt_out")]).loc["A"]
    assert d["channel"] == "email" and d["expected_value"] == pytest.approx(19.99)
    assert "sms suppressed: no consent (opt_out)" in d["reasons"]
    assert "push suppressed: no consent (none on record)" in d["reasons"]
    nothing = run([customer()], []).loc["A"]
    assert nothing["action"] == "rest" and nothing["channel"] is None
    assert nothing["reasons"][0] == "rest: no channel with an offer is consented and under its caps"


def test_frequency_caps_7_and_30_days():
    # sms caps in RULES_POLICY: 2 in 7 days, 4 in 30 days
    at_7 = run([customer()], [contact(), contact(channel="sms", t7=2, t30=2)])
    assert at_7.loc["A", "channel"] == "email"
    assert (
        "sms suppressed: over frequency cap (2 contacts in 7 days, cap 2)"
        in at_7.loc["A", "reasons"]
    )
    at_30 = run([customer()], [contact(), contact(channel="sms", t7=1, t30=4)])
    assert at_30.loc["A", "channel"] == "email"
    assert any("4 contacts in 30 days, cap 4" in r for r in at_30.loc["A", "reasons"])
    under = run([customer()], [contact(), contact(channel="sms", t7=1, t30=3)])
    assert under.loc["A", "channel"] == "sms"


def test_recent_buyer_rests():
    # bought 13 days ago: inside the 14-day window (days 0..13); 14 days ago is outside
    d = run([customer("A", days=13), customer("B", days=14)], [contact("A"), contact("B")])
    assert d.loc["A", "action"] == "rest" and pd.isna(d.loc["A", "channel"])
    assert d.loc["A", "reasons"][0] == (
        "rest: bought 13 day(s) ago, within the 14-day no-remarketing window"
    )
    assert d.loc["B", "action"] == "offer"


def test_lapsed_and_fatigued_get_a_soft_touch_or_rest():
    busy = dict(t7=2, t30=6)  # email under its caps (3 / 8)
    # fatigue is summed over channels: 6 email + 6 push = 12 >= 12
    both = [contact("A", **busy), contact("A", channel="push", consent="opt_out", **busy)]
    lapsed = run([customer("A", churn=0.8)], both).loc["A"]
    assert (lapsed["action"], lapsed["channel"], lapsed["offer"]) == (
        "soft_touch",
        "email",
        "soft touch (no offer)",
    )
    assert lapsed["expected_value"] is None or pd.isna(lapsed["expected_value"])
    assert lapsed["reasons"][0] == (
        "soft touch on email: probably lapsed (churn risk 0.80 >= 0.70) and fatigued "
        "(12 contacts in 30 days >= 12)"
    )
    # lapsed by prob_alive (value mart) instead of churn risk
    by_alive = run([customer("A", churn=None, alive=0.1)], both).loc["A"]
    assert by_alive["action"] == "soft_touch"
    assert "prob alive 0.10 < 0.30" in by_alive["reasons"][0]
    # no soft-touch channel allowed (email opted out, push opted out): rest
    none_allowed = [
        contact("A", consent="opt_out", **busy),
        contact("A", channel="push", consent="opt_out", **busy),
        contact("A", channel="sms"),
    ]
    rest = run([customer("A", churn=0.8)], none_allowed).loc["A"]
    assert rest["action"] == "rest" and rest["channel"] is None
    assert rest["reasons"][0].startswith("rest (no consented soft-touch channel")
    # lapsed but not fatigued: a normal (win-back) offer
    fresh = run([customer("A", churn=0.8)], [contact("A", t30=1)]).loc["A"]
    assert fresh["action"] == "offer"
    # fatigued but not lapsed: a normal offer too
    loyal = run([customer("A", churn=0.2)], both).loc["A"]
    assert loyal["action"] == "offer" and loyal["channel"] == "email"


def test_low_expected_value_rests():
    # p 0.0001 x 50 x 1.0 - 0.01 = -0.005 <= 0
    d = run([customer(p_buy=0.0001, value=50.0)], [contact()]).loc["A"]
    assert d["action"] == "rest"
    assert d["reasons"][0] == "rest: best expected value -0.01 on email does not beat 0.00"


def test_channel_without_offer_is_not_a_candidate_and_ties_follow_policy_order():
    only_email = OFFERS[OFFERS["channel"] == "email"]
    d = run([customer()], [contact(), contact(channel="sms")], offers=only_email).loc["A"]
    assert d["channel"] == "email"


def test_one_decision_per_customer_and_consent_never_broken():
    customers = [customer(c, p_buy=p) for c, p in [("A", 0.3), ("B", 0.05), ("C", 0.5)]]
    contacts = [contact("A"), contact("B", channel="push"), contact("C", consent="opt_out")]
    d = run(customers, contacts)
    assert sorted(d.index) == ["A", "B", "C"]
    assert d.loc["A", "channel"] == "email" and d.loc["B", "channel"] == "push"
    assert d.loc["C", "action"] == "rest"


# --- the stage on generated data -------------------------------------------------------------


def test_nba_never_uses_a_channel_without_consent_on_generated_customers(demo_con):
    """Over every generated customer: an action's channel always has an opt_in consent."""
    total, actions = demo_con.execute(
        "SELECT count(*), count(*) FILTER (WHERE action <> 'rest') FROM mart_nba"
    ).fetchone()
    customers = demo_con.execute("SELECT count(*) FROM customers").fetchone()[0]
    assert total == customers  # one decision per customer
    assert actions > 0
    broken = demo_con.execute(
        """
        SELECT count(*) FROM mart_nba n
        LEFT JOIN customer_consents c ON c.customer_id = n.customer_id AND c.channel = n.channel
        WHERE n.action <> 'rest' AND coalesce(c.status, 'none') <> 'opt_in'
        """
    ).fetchone()[0]
    assert broken == 0
    assert store.table_exists(demo_con, "mart_nba")
