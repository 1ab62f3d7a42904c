"""Ad-platform exports over the whole generated company (tests/conftest.py demo_db): nobody who
refused, nobody in the EEA / UK / Switzerland without both ad opt-ins, nobody opted out of the
destination's channel or over its caps, and no email that is not a consented identifier of a
person in the file; plus the command line and the generator's advertising consents."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO_CUSTOMERS, DEMO_DAYS, DEMO_SEED, ccrm

from ccrm_core.conductor import audience
from ccrm_core.conductor.audience import normalise
from ccrm_core.foundation import store
from ccrm_core.radar import segments
from ccrm_core.synthetic import sample

REGION = sorted(audience.AD_CONSENT_REGION)


@pytest.fixture()
def capped(tmp_path, monkeypatch):
    """Caps on social (Meta) and paid_search (Google) that bite: impressions and clicks count."""
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[rules]\ntouch_event_types = ["send", "call", "impression", "click"]\n'
        "[channels.social]\nenabled = true\ncap_7d = 2\ncap_30d = 4\ncost = 0.01\n"
        "response_weight = 1.0\n"
        "[channels.paid_search]\nenabled = true\ncap_7d = 2\ncap_30d = 4\ncost = 0.5\n"
        "response_weight = 1.0\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("CCRM_CONTACT_POLICY", str(policy))


def _customer_facts(con) -> pd.DataFrame:
    """Per customer, worked out here in SQL independently of the export code: any ad opt-out,
    whether the consent region applies, whether some record has both ad opt-ins, channel
    opt-outs, and social / paid_search touches in the last 7 and 30 days."""
    return (
        con.execute(
            """
        WITH rec AS (
            SELECT m.customer_id, m.source_system, m.source_id
            FROM identity_map m WHERE m.source_id IS NOT NULL
        ),
        ad AS (
            SELECT r.customer_id, r.source_system, r.source_id,
                   count(*) FILTER (WHERE a.status = 'opt_out') AS outs,
                   count(*) FILTER (WHERE a.status = 'opt_in') AS ins
            FROM rec r LEFT JOIN ad_consents a USING (source_system, source_id)
            GROUP BY ALL
        ),
        countries AS (
            SELECT r.customer_id, list(s.country) FILTER (WHERE s.country IS NOT NULL) AS cs
            FROM rec r JOIN std_customers s USING (source_system, source_id)
            GROUP BY ALL
        ),
        ends AS (SELECT greatest((SELECT max(ts) FROM orders), (SELECT max(ts) FROM events))
                        ::DATE + 1 AS day_after),
        touches AS (
            SELECT customer_id, channel,
                   count(*) FILTER (WHERE ts >= day_after - INTERVAL 7 DAY) AS t7,
                   count(*) AS t30
            FROM customer_events, ends
            WHERE channel IN ('social', 'paid_search')
              AND event_type IN ('send', 'call', 'impression', 'click')
              AND ts >= day_after - INTERVAL 30 DAY AND ts < day_after
            GROUP BY ALL
        )
        SELECT c.customer_id,
               (SELECT sum(outs) FROM ad WHERE ad.customer_id = c.customer_id) > 0 AS refused,
               coalesce((SELECT max(ins) FROM ad WHERE ad.customer_id = c.customer_id), 0) = 2
                   AS both_in,
               c.country IS NULL AND coalesce(len(k.cs), 0) = 0
                   OR list_contains(?::VARCHAR[], c.country)
                   OR len(list_intersect(coalesce(k.cs, []), ?::VARCHAR[])) > 0 AS region,
               EXISTS (SELECT 1 FROM consents x JOIN rec r USING (source_system, source_id)
                       WHERE r.customer_id = c.customer_id AND x.channel = 'social'
                         AND x.status = 'opt_out') AS social_out,
               coalesce(ts.t7, 0) AS social_t7, coalesce(ts.t30, 0) AS social_t30,
               coalesce(tp.t7, 0) AS search_t7, coalesce(tp.t30, 0) AS search_t30
        FROM customers c
        LEFT JOIN countries k USING (customer_id)
        LEFT JOIN touches ts ON ts.customer_id = c.customer_id AND ts.channel = 'social'
        LEFT JOIN touches tp ON tp.customer_id = c.customer_id AND tp.channel = 'paid_search'
        """,
            [REGION, REGION],
        )
        .df()
        .set_index("customer_id")
    )


def _consented_email_hashes(con, dest: str) -> pd.DataFrame:
    """customer_id, hash: every valid email of a linked record, as the destination hashes it,
    with whether that record holds both ad opt-ins."""
    frame = con.execute(
        """
        SELECT m.customer_id, s.email,
               (SELECT count(*) FROM ad_consents a WHERE a.source_system = m.source_system
                  AND a.source_id = m.source_id AND a.status = 'opt_in') = 2 AS both_in
        FROM identity_map m JOIN std_customers s USING (source_system, source_id)
        WHERE s.email_status = 'valid'
        """
    ).df()
    fn = normalise.google_email if dest == "google_ads" else normalise.meta_email
    frame["hash"] = [normalise.sha256_hex(fn(e)) for e in frame["email"]]
    return frame


def test_no_export_leaks_over_the_whole_company(demo_db_copy, capped):
    con = store.connect_writer(demo_db_copy)
    try:
        facts = _customer_facts(con)
        reasons_seen: dict[str, int] = {}
        for dest, channel, t7, t30 in (
            ("google_ads", "paid_search", "search_t7", "search_t30"),
            ("meta", "social", "social_t7", "social_t30"),
        ):
            emails = _consented_email_hashes(con, dest)
            for segment in segments.segment_names(con, "rfm_segment"):
                built = audience.build_destination_audience(con, "rfm_segment", segment, dest)
                sent = facts.loc[list(built.people["customer_id"])]
                assert built.members == len(sent) + built.excluded
                assert not sent["refused"].any(), (dest, segment)
                assert sent.loc[sent["region"], "both_in"].all(), (dest, segment)
                if dest == "meta":
                    assert not sent["social_out"].any()
                assert (sent[t7] < 2).all() and (sent[t30] < 4).all(), (dest, segment, channel)
                # every email in the file is a linked record's, consented where it must be
                rows = audience.upload_rows(built.people, built.destination)
                email_col = built.destination.email_column
                mine = emails[emails["customer_id"].isin(sent.index)]
                region_ids = set(sent.index[sent["region"]])
                allowed = mine[~mine["customer_id"].isin(region_ids) | mine["both_in"]]
                assert set(rows[email_col].dropna()) <= set(allowed["hash"]), (dest, segment)
                for reason, n in zip(
                    built.exclusions["reason"], built.exclusions["customers"], strict=True
                ):
                    reasons_seen[reason] = reasons_seen.get(reason, 0) + int(n)
        # the generated company exercises every rule (so the checks above can fail)
        for key in (
            "opted out of ad_user_data",
            "opted out of ad_personalization",
            "no ad_user_data consent (EEA, UK or Switzerland)",
            "over the social frequency cap",
            "over the paid_search frequency cap",
        ):
            assert any(r.startswith(key) for r in reasons_seen), (key, reasons_seen)
    finally:
        con.close()


def test_ccrm_export_audience_to_meta_with_activation_and_bids(demo_db_copy, tmp_path):
    out = tmp_path / "champions_meta.csv"
    args = [
        "export", "audience", "--db", str(demo_db_copy), "--segment", "Champions",
        "--destination", "meta", "--activation", "Champions on Meta", "--holdout", "10%",
        "--out", str(out),
    ]  # fmt: skip
    first = ccrm(*args)
    assert first.returncode == 0, first.stderr
    assert "activation Champions on Meta, export 1" in first.stdout
    second = ccrm(*args[:-4], "--out", str(out))  # same activation, holdout kept
    assert second.returncode == 0, second.stderr
    assert "export 2" in second.stdout and "0 people added and 0 removed" in second.stdout
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(written.columns) == list(audience.META.columns)
    assert written["EMAIL"].str.fullmatch(r"([0-9a-f]{64})?").all()
    con = store.connect_reader(demo_db_copy)
    try:
        history = audience.activation_history(con, "Champions on Meta")
        log = con.execute(
            "SELECT action, via, status FROM audit_log ORDER BY audit_id DESC LIMIT 2"
        ).fetchall()
    finally:
        con.close()
    assert list(history["run"]) == [2, 1] and history["held_out"].iloc[0] > 0
    assert log == [("export_audience", "cli", "ok")] * 2
    # refusals name what to do
    bad = ccrm("export", "audience", "--db", str(demo_db_copy), "--segment", "Champions",
               "--destination", "generic", "--out", str(tmp_path / "x.csv"))  # fmt: skip
    assert bad.returncode != 0 and "--channel is required" in bad.stderr
    bids = tmp_path / "bids.csv"
    done = ccrm("export", "bids", "--db", str(demo_db_copy), "--scheme", "value_tier",
                "--out", str(bids))  # fmt: skip
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(bids)
    assert list(frame.columns) == audience.BID_COLUMNS
    assert frame["bid_multiplier"].between(0.5, 3.0).all()
    assert frame.sort_values("value_per_person")["bid_multiplier"].is_monotonic_increasing


def test_generator_ad_consents_use_their_own_stream_and_match_the_truth():
    from ccrm_core.synthetic.company import _Company

    company = _Company(DEMO_CUSTOMERS, DEMO_DAYS, DEMO_SEED, sample.DEFAULT_END_DATE)
    company.persons()
    company.media_plan()
    company.add_experiment_campaign()
    company.media_acquisitions()
    company.primary_system()
    company.purchases()
    company.records()
    company.consents()
    state = company.rng.bit_generator.state
    company.ad_consents()
    assert company.rng.bit_generator.state == state  # the main stream is untouched
    data = sample.generate(600, 365, 3)
    rows, truth = data["ad_consents"], data["ground_truth_ad_consent"]
    identity = data["ground_truth_identity"]
    persons = data["ground_truth_persons"].set_index("person_id")
    merged = rows.merge(identity, on=["source_system", "source_id"])
    observed = (
        merged.assign(out=merged["status"].astype(str) == "opt_out")
        .groupby(["person_id", merged["purpose"].astype(str)])["out"]
        .any()
    )
    t = truth.dropna(subset=["status"])
    t = t.assign(purpose=t["purpose"].astype(str)).set_index(["person_id", "purpose"])
    want = t["status"].astype(str) == "opt_out"
    pd.testing.assert_series_equal(
        observed.sort_index(), want.sort_index(), check_names=False, check_index_type=False
    )
    never_asked = set(truth.loc[truth["status"].isna(), "person_id"])
    assert never_asked and not never_asked & set(merged["person_id"])
    # opt-in countries: ad_personalization only with ad_user_data
    eu = persons.index[persons["country"].astype(str).isin(["GB", "DE", "FR"])]
    wide = truth[truth["person_id"].isin(eu)].pivot(
        index="person_id", columns="purpose", values="status"
    )
    wide = wide.dropna()
    granted_p = wide["ad_personalization"].astype(str) == "opt_in"
    assert (wide.loc[granted_p, "ad_user_data"].astype(str) == "opt_in").all()
    assert 0 < np.mean(wide["ad_user_data"].astype(str) == "opt_out") < 1
    assert sys.version_info >= (3, 11)
