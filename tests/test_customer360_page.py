"""Customer 360 page (AppTest): search -> pick -> profile; deep link; masking; no marts."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import page_file
from streamlit.testing.v1 import AppTest

from ccrm_core.foundation import store
from ccrm_core.foundation.rendering import markdown_text

PAGE = page_file("customer_360")


@pytest.fixture()
def app_db(demo_db_copy, monkeypatch):
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    return demo_db_copy


def _customer(db: Path) -> tuple[str, str, str, str]:
    """A customer with a first and last name, an email and orders: id, first, last, email."""
    con = store.connect_reader(db)
    try:
        return con.execute(
            """
            SELECT c.customer_id, c.first_name, c.last_name, c.email FROM customers c
            JOIN search_customers s USING (customer_id)
            WHERE c.first_name IS NOT NULL AND c.last_name IS NOT NULL AND c.email IS NOT NULL
              AND length(c.last_name) >= 5 AND s.orders > 0
            ORDER BY c.customer_id LIMIT 1
            """
        ).fetchone()
    finally:
        con.close()


def _texts(at: AppTest) -> str:
    parts = [h.value for h in at.header] + [m.value for m in at.markdown]
    parts += [c.value for c in at.caption] + [s.value for s in at.success]
    parts += [i.value for i in at.info] + [w.value for w in at.warning]
    return "\n".join(parts)


def test_search_pick_profile_shows_the_right_name(app_db):
    cid, first, last, email = _customer(app_db)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    # a typo in the last name still finds the customer
    typo = last[:2] + last[3] + last[2] + last[4:]
    at.text_input(key="c360_query").input(f"{first} {typo}").run()
    assert not at.exception
    options = at.selectbox(key="c360_pick").options
    assert any(cid in o for o in options)
    at.selectbox(key="c360_pick").select(cid).run()
    assert not at.exception
    assert at.query_params["customer_id"] == [cid] or at.query_params["customer_id"] == cid
    # names are masked by default (the header is markdown: the mask's stars are escaped); the id
    # in the caption names the customer
    assert at.header[0].value == markdown_text(f"{first[0]}*** {last[0]}***")
    assert cid in at.caption[1].value or any(cid in c.value for c in at.caption)
    texts = _texts(at)
    assert email not in texts and last not in texts  # masked by default
    assert "Expected value" in texts or "Rest" in texts or "Soft touch" in texts
    # the model tab shows the stored holdout AUC
    assert any("holdout_auc" in df.value.columns for df in at.dataframe)


def test_deep_link_opens_the_customer(app_db):
    cid, first, last, _ = _customer(app_db)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["customer_id"] = cid
    at.run()
    assert not at.exception
    assert at.header[0].value == markdown_text(f"{first[0]}*** {last[0]}***")  # masked
    at.toggle(key="c360_reveal").set_value(True).run()  # local mode runs as admin
    assert at.header[0].value == markdown_text(f"{first} {last}")
    unknown = AppTest.from_file(PAGE, default_timeout=120)
    unknown.query_params["customer_id"] = "NOPE-1"
    unknown.run()
    assert not unknown.exception
    assert f"No customer with id “{markdown_text('NOPE-1')}”" in unknown.error[0].value


def test_reveal_shows_the_email(app_db):
    cid, _, _, email = _customer(app_db)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["customer_id"] = cid
    at.run()
    golden = next(df.value for df in at.dataframe if "field" in df.value.columns)
    masked = golden.set_index("field").loc["email", "value"]
    assert masked != email and masked.endswith(email.split("@")[1]) and "***" in masked
    at.toggle(key="c360_reveal").set_value(True).run()
    golden = next(df.value for df in at.dataframe if "field" in df.value.columns)
    assert golden.set_index("field").loc["email", "value"] == email


def test_page_renders_without_customer360_marts(app_db):
    con = store.connect_writer(app_db)
    try:
        for table in (
            "search_keys",
            "search_vocab",
            "search_postings",
            "search_customers",
            "customer_timeline",
            "customer360_meta",
            "mart_propensity",
            "propensity_model",
            "mart_nba",
        ):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute("INSERT INTO ingest_log VALUES (999, 'x', 'x', now(), now(), 0, 0, 0, 'x', '')")
        cid = con.execute("SELECT min(customer_id) FROM customers").fetchone()[0]
    finally:
        con.close()
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["customer_id"] = cid
    at.run()
    assert not at.exception
    texts = _texts(at)
    assert "search_index" in texts and "`propensity`" in texts


def test_one_click_opens_and_results_read_apart_when_masked(app_db):
    cid, first, last, _ = _customer(app_db)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.text_input(key="c360_query").input(last).run()
    options = at.selectbox(key="c360_pick").options
    # masked labels: masked name · masked city · last order · id, never the clear name
    assert options and all(o.count(" · ") == 3 for o in options)
    assert all(last not in o for o in options)
    assert len(set(options)) == len(options)
    row = list(at.dataframe[0].value["customer_id"]).index(cid)
    at.session_state["c360_results"] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    assert not at.exception
    assert at.query_params["customer_id"] in ([cid], cid)
    assert at.header[0].value == markdown_text(f"{first[0]}*** {last[0]}***")
    outcomes = next(d.value for d in at.dataframe if "outcome" in d.value.columns)
    assert "chosen" in set(outcomes["outcome"]) or "Rest" in _texts(at)
    assert all(o for o in outcomes["outcome"])
    at.toggle(key="c360_reveal").set_value(True).run()  # local mode runs as admin
    assert any(first in o and last in o for o in at.selectbox(key="c360_pick").options)
