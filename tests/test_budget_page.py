"""Budget Simulator page through AppTest: renders, a slider moves the prediction, Optimize
improves the objective, scenarios save and compare, and the page explains missing curves."""

from __future__ import annotations

import pytest
import streamlit as st
from conftest import page_file
from streamlit.testing.v1 import AppTest

from ccrm_core.conductor import budget
from ccrm_core.foundation import pipeline, store

PAGE = page_file("budget_simulator")


@pytest.fixture(autouse=True)
def _fresh_cache():
    # db.cached keys on the data version, which is the same ("0/0:0") for every hand-made
    # database here; clear so one test's curves never answer for another's
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def _metric(at: AppTest, label: str) -> float:
    for m in at.metric:
        if m.label == label:
            return float(m.value.replace(",", ""))
    raise AssertionError(f"no metric {label!r}: {[m.label for m in at.metric]}")


@pytest.fixture()
def curves_db(tmp_path, monkeypatch):
    path = tmp_path / "budget.duckdb"
    con = store.connect_writer(path)
    try:
        pipeline.replace_table(con, "mart_response_curves", budget.synthetic_curves(10, seed=5))
    finally:
        con.close()
    monkeypatch.setenv("CCRM_DB", str(path))
    return path


def _run(timeout: float = 30) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=timeout)
    at.run()
    assert not at.exception, at.exception
    return at


def test_page_explains_missing_curves(tmp_path, monkeypatch):
    path = tmp_path / "empty.duckdb"
    store.connect_writer(path).close()
    monkeypatch.setenv("CCRM_DB", str(path))
    at = _run()  # nothing loaded: the page names the inputs it needs
    assert any("needs media spend and orders" in i.value for i in at.info)
    con = store.connect_writer(path)  # inputs loaded, the model not built yet
    con.execute("INSERT INTO spend VALUES ('2024-01-01', 'tv', NULL, 100.0, 1000)")
    con.execute(
        "INSERT INTO orders VALUES ('O1', '2024-01-01 10:00:00', 'shop', 'c1', 10.0, 'web', NULL)"
    )
    # as an ingest would, so that cached reads see the new data
    con.execute("INSERT INTO ingest_log VALUES (1, 'x', 'x', now(), now(), 0, 0, 0, 'x', '')")
    con.close()
    at = _run()
    assert any("`mmm` build stage" in i.value for i in at.info), [i.value for i in at.info]


def test_slider_changes_prediction_and_optimize_improves(curves_db):
    at = _run()
    curves = budget.synthetic_curves(10, seed=5)
    current = budget.current_plan(curves)
    expected = budget.predict(curves, current).revenue
    assert _metric(at, "Revenue / week") == pytest.approx(expected, abs=1.0)

    # what-if: raise tv by 50% -> the shown revenue is the model's for that plan
    at.slider(key="budget_w_tv").set_value(round(current["tv"] * 1.5)).run()
    assert not at.exception
    moved = budget.predict(curves, current | {"tv": round(current["tv"] * 1.5)}).revenue
    assert moved != pytest.approx(expected, abs=1.0)
    assert _metric(at, "Revenue / week") == pytest.approx(moved, abs=1.0)

    # Optimize at the current total within 50%-200% of current spend
    at.button(key="budget_optimize").click().run()
    assert not at.exception
    assert at.success and "Optimized revenue" in at.success[0].value
    optimized = _metric(at, "Revenue / week")
    assert optimized > expected
    plan = {ch: at.slider(key=f"budget_w_{ch}").value for ch in current}
    assert sum(plan.values()) == pytest.approx(sum(current.values()), rel=1e-3, abs=2.0)
    for ch, v in plan.items():
        assert 0.5 * current[ch] - 1e-6 <= v <= 2.0 * current[ch] + 1e-6
    reference = budget.optimize(
        curves,
        at.number_input(key="budget_total").value,
        bounds={"*": {"min_share": 0.5, "max_share": 2.0}},
    )
    assert optimized == pytest.approx(reference.value, rel=1e-3)


def test_infeasible_optimize_shows_the_conflict(curves_db):
    at = _run()
    at.number_input(key="budget_total").set_value(10.0).run()
    at.button(key="budget_optimize").click().run()
    assert not at.exception
    assert at.error and "below the sum of the channel minimums" in at.error[0].value


def test_scenarios_save_reject_and_compare(curves_db):
    at = _run()
    at.text_input(key="budget_scenario_name").input("bad\x07name").run()
    at.button(key="budget_save").click().run()
    assert at.error and "control or invisible character" in at.error[0].value
    at.text_input(key="budget_scenario_name").input("Plan A").run()
    at.button(key="budget_save").click().run()
    assert at.success and "Plan A" in at.success[0].value
    at.multiselect(key="budget_compare").set_value(["Plan A"]).run()
    assert not at.exception
    table = at.dataframe[-1].value
    assert "Plan A" in table.columns


def test_segment_focus_scales_curves_by_the_segments_share(curves_db):
    """Segment focus reads the reconciliation by media and segment: each channel's curve is
    scaled by the focus segments' share of its incremental revenue (tv by overall share)."""
    import pandas as pd

    from ccrm_core.conductor import attribution

    attributed = pd.DataFrame(
        {
            "scheme": "value_tier",
            "segment": ["high", "low", "high", "low"],
            "channel": ["email", "email", "display", "display"],
            "value": [800.0, 200.0, 100.0, 900.0],
        }
    )
    reconciliation = pd.DataFrame(
        {
            "channel": ["email", "display", "tv"],
            "addressable": [True, True, False],
            "incremental_revenue": [500.0, 300.0, 400.0],
            "incremental_revenue_low": [400.0, 200.0, 300.0],
            "incremental_revenue_high": [600.0, 400.0, 500.0],
            "calibration_factor": [0.5, 0.3, float("nan")],
        }
    )
    con = store.connect_writer(curves_db)
    try:
        split = attribution.segment_split(attributed, reconciliation).assign(model="markov_1")
        pipeline.replace_table(con.cursor(), "mart_segment_reconciliation", split)
    finally:
        con.close()
    at = _run()
    plain = _metric(at, "Revenue / week")
    at.toggle(key="budget_use_focus").set_value(True).run()
    assert not at.exception
    # all segments in focus: every share is 1, the plan's revenue is the whole
    assert _metric(at, "Focus-segment revenue / week") == pytest.approx(plain, abs=1.0)
    at.multiselect(key="budget_focus_segments_value_tier").set_value(["high"]).run()
    assert not at.exception
    assert any("share of its incremental revenue" in c.value for c in at.caption)
    curves = budget.synthetic_curves(10, seed=5)
    # high: email 800/1000, display 100/1000, tv by overall share 900/2000
    focused = curves.copy()
    for channel, share in {"email": 0.8, "display": 0.1, "tv": 0.45}.items():
        focused.loc[focused["channel"] == channel, ["beta", "beta_low", "beta_high"]] *= share
    expected = budget.predict(focused, budget.current_plan(curves)).revenue
    assert _metric(at, "Focus-segment revenue / week") == pytest.approx(expected, abs=1.0)
    assert expected != pytest.approx(plain, abs=1.0)


def test_page_on_the_demo_company(demo_db_copy, monkeypatch):
    """The MMM's own curves from the generated company: numbers match the core, Optimize helps."""
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    con = store.connect_reader(demo_db_copy)
    try:
        curves = budget.load_curves(con)
    finally:
        con.close()
    assert curves is not None and len(curves) >= 8
    at = _run(timeout=60)
    expected = budget.predict(curves, budget.current_plan(curves)).revenue
    assert _metric(at, "Revenue / week") == pytest.approx(expected, abs=1.0)
    at.button(key="budget_optimize").click().run()
    assert not at.exception
    assert at.success and "Optimized revenue" in at.success[0].value
    assert _metric(at, "Revenue / week") >= expected - 1.0


def _record_mmm_fit(path, run_id: int) -> None:
    con = store.connect_writer(path)
    try:
        con.execute(
            "INSERT INTO pipeline_runs VALUES (?, 'mmm', TIMESTAMP '2025-01-02 08:00', "
            "TIMESTAMP '2025-01-02 08:30' + to_days(CAST(? AS INTEGER)), 10, 'ok', NULL)",
            [run_id, run_id],
        )
    finally:
        con.close()


def test_the_page_says_when_the_model_was_fitted_and_a_refit_since_a_save(curves_db):
    _record_mmm_fit(curves_db, 1)
    at = _run()
    assert any("Model fitted 3 Jan 2025 08\\:30\\, build 1" in c.value for c in at.caption)
    at.text_input(key="budget_scenario_name").input("Plan A").run()
    at.button(key="budget_save").click().run()
    assert at.success and "Plan A" in at.success[0].value
    # a rebuild refits the model: loading the plan says its numbers come from another fit
    _record_mmm_fit(curves_db, 2)
    st.cache_data.clear()
    at = _run()
    assert any("build 2" in c.value for c in at.caption)
    at.selectbox(key="budget_load_name").set_value("Plan A").run()
    at.button(key="budget_load").click().run()
    assert not at.exception
    loaded = " ".join(i.value for i in at.info)
    assert "Loaded scenario" in loaded and "refitted since" in loaded and "build 1" in loaded


# --- the view in the URL ----------------------------------------------------------------------


def _open(query: dict) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _param(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def _link_warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if w.value.startswith("Link not fully applied")]


def test_a_link_opens_its_plan_and_objective(curves_db):
    curves = budget.synthetic_curves(10, seed=5)
    plan = {ch: round(v, 2) for ch, v in budget.current_plan(curves).items()}
    plan["tv"] = round(plan["tv"] * 1.5, 2)
    at = _open({"plan": budget.plan_to_param(plan), "objective": "profit"})
    assert _link_warnings(at) == []
    assert at.selectbox(key="budget_objective").value == "profit"
    assert at.slider(key="budget_w_tv").value == pytest.approx(plan["tv"])
    assert _metric(at, "Revenue / week") == pytest.approx(
        budget.predict(curves, plan).revenue, abs=1.0
    )
    assert _param(at, "plan") == budget.plan_to_param(plan)  # the link stays as it came


def test_changing_the_plan_or_objective_updates_the_link(curves_db):
    at = _open({})
    assert not at.query_params  # the current plan and revenue: nothing to say
    current = budget.current_plan(budget.synthetic_curves(10, seed=5))
    at.slider(key="budget_w_tv").set_value(round(current["tv"] * 2)).run()
    at.selectbox(key="budget_objective").set_value("conversions").run()
    assert _param(at, "objective") == "conversions"
    link = dict(item.rsplit(":", 1) for item in _param(at, "plan").split(","))
    assert float(link["tv"]) == round(current["tv"] * 2)
    assert float(link["email"]) == pytest.approx(current["email"], abs=0.005)
    at.button(key="budget_reset").click().run()
    assert "plan" not in at.query_params


def test_a_saved_scenario_opens_by_name_and_stays_named_until_the_plan_moves(curves_db):
    curves = budget.synthetic_curves(10, seed=5)
    plan = budget.current_plan(curves) | {"tv": 2000.0}
    con = store.connect_writer(curves_db)
    try:
        budget.save_scenario(con, "Plan A", plan)
    finally:
        con.close()
    at = _open({"scenario": "Plan A"})
    assert at.slider(key="budget_w_tv").value == 2000.0
    assert any(i.value.startswith("Loaded scenario “Plan A”") for i in at.info)
    assert at.selectbox(key="budget_load_name").value == "Plan A"
    assert _param(at, "scenario") == "Plan A" and "plan" not in at.query_params
    at.slider(key="budget_w_tv").set_value(2500.0).run()
    assert "scenario" not in at.query_params and "tv:2500" in _param(at, "plan")
    # loading it with the button names it again
    at.button(key="budget_load").click().run()
    assert _param(at, "scenario") == "Plan A" and "plan" not in at.query_params


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"objective": "<img src=x>"}, ["objective"]),
        ({"scenario": "Nope\x07[x](http://evil.example)"}, ["not a saved scenario"]),
        ({"plan": "tv:abc"}, ["not a number"]),
        ({"plan": "tv:1e400,email:5"}, ["not a number"]),
        ({"plan": "x" * 100_000}, ["longer than"]),
        ({"plan": "fax:5"}, ["no channel with a response curve"]),
        ({"plan": "tv:5", "scenario": "Plan A"}, ["left aside", "set to 0"]),
    ],
)
def test_a_bad_link_falls_back_with_a_note(curves_db, query, expected):
    at = _open(query)
    warnings = _link_warnings(at)
    assert len(warnings) == len(expected) and all(len(w) < 600 for w in warnings)
    for warning, text in zip(warnings, expected, strict=True):
        assert text in warning
    assert at.selectbox(key="budget_objective").value == "revenue"
    if "plan" in query and "tv:5" not in query["plan"]:  # the current plan stays
        current = budget.current_plan(budget.synthetic_curves(10, seed=5))
        assert at.slider(key="budget_w_tv").value == pytest.approx(current["tv"])
        assert not at.query_params
