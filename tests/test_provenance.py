"""Model provenance: the 'data to … · model fitted …' line of the model pages, read from the
build log and the models' own output, on the tiny radar company (data end 2024-12-31)."""

from __future__ import annotations

from datetime import date, datetime

import radar_data

from ccrm_core.conductor import budget
from ccrm_core.foundation import pipeline, provenance, store
from ccrm_core.radar import kpis


def test_a_fit_is_the_latest_completed_run_of_its_stage(tmp_path):
    con = store.connect_writer(tmp_path / "p.duckdb")
    try:
        radar_data.write_company(con)
        before = kpis.forecast_fit(con)
        assert not before.fitted and before.text() == "model fit not on record"
        pipeline.build(con, stages=radar_data.RADAR_STAGES)
        first = kpis.forecast_fit(con)
        # the last day of history the forecasts read: the data end
        assert (first.data_end, first.run_id, first.stale) == (date(2024, 12, 31), 1, "")
        assert first.text().startswith("data to 31 Dec 2024 · model fitted ")
        assert first.text().endswith(", build 1")
        pipeline.build(con, stages=radar_data.RADAR_STAGES)
        assert kpis.forecast_fit(con).run_id == 2  # a rebuild refits: the line says so
        # an earlier stage run again alone leaves the forecasts out of date
        pipeline.build(con, stages=["daily_kpis"])
        stale = kpis.forecast_fit(con)
        assert stale.run_id == 2 and stale.stale == "an earlier stage ran again after it"
        assert "out of date: an earlier stage ran again after it; rebuild to refit" in stale.text()
    finally:
        con.close()


def test_without_a_data_end_of_its_own_a_fit_reads_the_last_day_of_data(tmp_path):
    con = store.connect_writer(tmp_path / "p.duckdb")
    try:
        radar_data.write_company(con)
        pipeline.build(con, stages=["daily_kpis"])
        fit = provenance.model_fit(con, "daily_kpis")
        assert fit.data_end == date(2024, 12, 31)  # o7, the last order
        assert provenance.model_fit(con, "mmm") == provenance.ModelFit("mmm")
    finally:
        con.close()


def test_a_scenario_saved_under_another_fit_says_so():
    fitted = provenance.ModelFit("mmm", date(2024, 12, 31), datetime(2025, 1, 2, 8, 30), 3)
    saved = budget.model_settings(fitted)
    assert saved == {"model_build": 3, "model_fitted": "2 Jan 2025 08:30, build 3"}
    same = budget.Scenario("Q3", {"tv": 1.0}, None, None, saved, None)
    assert budget.model_change_note(same, fitted) is None
    refit = provenance.ModelFit("mmm", date(2025, 3, 31), datetime(2025, 4, 2, 9, 0), 5)
    note = budget.model_change_note(same, refit)
    assert note == (
        "scenario 'Q3' was saved under the model fitted 2 Jan 2025 08:30, build 3; the model "
        "was refitted since (2 Apr 2025 09:00, build 5), so the same plan's numbers may differ "
        "from when it was saved"
    )
    older = budget.Scenario("old", {"tv": 1.0}, None, None, {}, None)
    assert "without a record of the model" in budget.model_change_note(older, refit)
    assert budget.model_change_note(older, provenance.ModelFit("mmm")) is None
