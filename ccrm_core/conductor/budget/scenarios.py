"""Scenarios of the budget module: named plans stored in `budget_scenarios`, comparing them,
and a plan written into a link (`plan_to_param`, `plan_from_param`).

A stored plan is weekly spend per channel (currency units), one row per channel, with the
objective, total budget (per week) and settings it was saved with. Names are user text, stored
as data through parameters.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

import duckdb
import pandas as pd

from ccrm_core.conductor.budget.curves import BudgetError
from ccrm_core.conductor.budget.whatif import align_plan, predict
from ccrm_core.foundation import store, validation
from ccrm_core.foundation.provenance import ModelFit

SCENARIOS_TABLE = "budget_scenarios"
SCENARIO_NAME_MAX = 60
MAX_COMPARED_SCENARIOS = 4
PLAN_PARAM_MAX_SPEND = 1e12  # per week and channel: a link asking for more is not a plan
PLAN_PARAM_MAX_CHARS = 20_000


class ScenarioNameError(BudgetError):
    """A scenario name that cannot be stored (empty, too long, control characters)."""


SCENARIOS_DDL = f"""
CREATE TABLE IF NOT EXISTS {SCENARIOS_TABLE} (
    name          VARCHAR NOT NULL,   -- user text, stored as data (parameterised)
    channel       VARCHAR NOT NULL,
    weekly_spend  DOUBLE NOT NULL,    -- currency units per week
    objective     VARCHAR,
    total_budget  DOUBLE,             -- per week, as set when saved
    settings      VARCHAR,            -- JSON: constraints, segment focus, ...
    saved_at      TIMESTAMP NOT NULL
)
"""


def validate_scenario_name(name: str) -> str:
    """The name trimmed of surrounding spaces; ScenarioNameError when it is empty, longer than
    SCENARIO_NAME_MAX characters, or holds control or invisible formatting characters (the
    shared rule of `validation.clean_name`)."""
    return validation.clean_name(
        name, "scenario name", SCENARIO_NAME_MAX, ScenarioNameError, example="Q3 shift to search"
    )


def save_scenario(
    con: duckdb.DuckDBPyConnection,
    name: str,
    plan: Mapping[str, float],
    *,
    objective: str | None = None,
    total_budget: float | None = None,
    settings: Mapping | None = None,
) -> str:
    """Store a plan under a name (replacing a scenario of the same name) in one transaction;
    returns the cleaned name. Plans are weekly spend per channel."""
    clean = validate_scenario_name(name)
    rows = []
    for ch, v in plan.items():
        value = float(v)
        if not math.isfinite(value) or value < 0:
            raise BudgetError(f"scenario {clean!r}: spend for {ch} is {v!r}; it must be >= 0")
        rows.append(value)
    if not rows:
        raise BudgetError(f"scenario {clean!r} has no channels; nothing to save")
    settings_json = json.dumps(dict(settings or {}), sort_keys=True, default=str)
    with store.transaction(con):
        con.execute(SCENARIOS_DDL)
        con.execute(f"DELETE FROM {SCENARIOS_TABLE} WHERE name = ?", [clean])  # noqa: S608
        con.executemany(
            f"INSERT INTO {SCENARIOS_TABLE} VALUES (?, ?, ?, ?, ?, ?, current_timestamp)",  # noqa: S608
            [
                [clean, str(ch), value, objective, total_budget, settings_json]
                for ch, value in zip(plan, rows, strict=True)
            ],
        )
    return clean


def list_scenarios(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Saved scenarios, newest first: name, channels, weekly_spend (total), objective,
    total_budget, saved_at. Empty when none was saved yet."""
    if not store.table_exists(con, SCENARIOS_TABLE):
        return pd.DataFrame(
            columns=["name", "channels", "weekly_spend", "objective", "total_budget", "saved_at"]
        )
    return con.execute(
        f"""
        SELECT name, count(*) AS channels, sum(weekly_spend) AS weekly_spend,
               any_value(objective) AS objective, any_value(total_budget) AS total_budget,
               max(saved_at) AS saved_at
        FROM {SCENARIOS_TABLE} GROUP BY name ORDER BY saved_at DESC, name
        """  # noqa: S608 our table name
    ).df()


@dataclass(frozen=True)
class Scenario:
    name: str
    plan: dict[str, float]  # weekly spend per channel
    objective: str | None
    total_budget: float | None
    settings: dict
    saved_at: object


def load_scenario(con: duckdb.DuckDBPyConnection, name: str) -> Scenario:
    """A saved scenario by name; BudgetError naming the saved ones when there is none."""
    rows = []
    if store.table_exists(con, SCENARIOS_TABLE):
        rows = con.execute(
            f"SELECT channel, weekly_spend, objective, total_budget, settings, saved_at "  # noqa: S608
            f"FROM {SCENARIOS_TABLE} WHERE name = ? ORDER BY channel",
            [name],
        ).fetchall()
    if not rows:
        saved = list_scenarios(con)["name"].tolist()
        raise BudgetError(
            f"no saved scenario named {validation.quoted(name)}; "
            f"saved: {', '.join(saved) if saved else 'none'}"
        )
    _, _, objective, total, settings, saved_at = rows[0]
    return Scenario(
        name=name,
        plan={r[0]: float(r[1]) for r in rows},
        objective=objective,
        total_budget=None if total is None or pd.isna(total) else float(total),
        settings=json.loads(settings) if settings else {},
        saved_at=saved_at,
    )


def delete_scenario(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Delete a saved scenario; returns the rows removed (0 when there was none)."""
    if not store.table_exists(con, SCENARIOS_TABLE):
        return 0
    with store.transaction(con):
        removed = con.execute(
            f"DELETE FROM {SCENARIOS_TABLE} WHERE name = ?",  # noqa: S608 our table name
            [name],
        ).fetchall()[0][0]
    return int(removed)


def model_settings(fit: ModelFit) -> dict[str, object]:
    """The settings that record which fit of the media mix model a scenario was saved under
    (merge them into `save_scenario`'s settings)."""
    if fit.run_id is None:
        return {}
    return {"model_build": fit.run_id, "model_fitted": fit.fitted_text()}


def model_change_note(scenario: Scenario, fit: ModelFit) -> str | None:
    """A note when `scenario` was saved under another fit of the media mix model than `fit`,
    the one its numbers now come from (a rebuild refits the model, and the same plan can then
    bring other revenue); None when it is the same fit or nothing is known."""
    if fit.run_id is None:
        return None
    saved = scenario.settings.get("model_build")
    if saved == fit.run_id:
        return None
    if saved is None:
        return (
            f"scenario {validation.quoted(scenario.name)} was saved without a record of the "
            f"model it used; its numbers come from the model fitted {fit.fitted_text()}"
        )
    when = scenario.settings.get("model_fitted") or f"in build {saved}"
    return (
        f"scenario {validation.quoted(scenario.name)} was saved under the model fitted {when}; "
        f"the model was refitted since ({fit.fitted_text()}), so the same plan's numbers may "
        "differ from when it was saved"
    )


def compare_plans(curves: pd.DataFrame, plans: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Side by side comparison of named plans (at most MAX_COMPARED_SCENARIOS + 2 columns).

    One row per measure (weekly spend per channel, then spend, revenue with its 90% interval,
    conversions, ROI and profit, all per week in steady state), one column per plan.
    """
    columns = {}
    for label, plan in plans.items():
        aligned, _ = align_plan(curves, plan)
        pred = predict(curves, aligned)
        col = {f"spend: {ch}": v for ch, v in aligned.items()}
        col |= {
            "total spend": pred.spend,
            "revenue": pred.revenue,
            "revenue low (90%)": pred.revenue_low,
            "revenue high (90%)": pred.revenue_high,
            "conversions": pred.conversions,
            "ROI": pred.roi,
            "profit": pred.profit,
        }
        columns[label] = col
    frame = pd.DataFrame(columns)
    frame.index.name = "measure"
    return frame.reset_index()


# ---------------------------------------------------------------------------------------------
# A plan in a link


def plan_to_param(plan: Mapping[str, float]) -> str:
    """A plan as one URL query parameter value: 'channel:spend' per channel, comma-separated,
    spend per week to the cent (channel names percent-encoded, so ',' and ':' in a name stay
    inside it). Two plans that round to the same cents give the same text."""

    def amount(v: float) -> str:
        return f"{round(float(v), 2):.2f}".rstrip("0").rstrip(".")

    return ",".join(f"{quote(str(ch), safe='')}:{amount(v)}" for ch, v in plan.items())


def plan_from_param(text: str, curves: pd.DataFrame) -> tuple[dict[str, float] | None, list[str]]:
    """The plan of a link's `plan` parameter (as `plan_to_param` writes it) fitted to the
    current curves (`align_plan`: unknown channels dropped, missing ones at 0), and notes on
    what was changed. (None, [why]) when the text is not a plan: an item without
    'channel:spend', a spend that is not a number from 0 to PLAN_PARAM_MAX_SPEND, a channel
    named twice, or no channel of the curves; the page then keeps the current plan. User text
    in the notes is quoted and shortened."""

    def rejected(why: str) -> tuple[None, list[str]]:
        return None, [f"plan={validation.quoted(text)} {why}; showing the current plan"]

    if len(text) > PLAN_PARAM_MAX_CHARS:
        return rejected(f"is longer than {PLAN_PARAM_MAX_CHARS:,} characters")
    plan: dict[str, float] = {}
    for item in text.split(","):
        name, sep, number = item.rpartition(":")
        if not sep or not name:
            return rejected(f"has {validation.quoted(item, 30)}, not channel:weekly spend")
        channel = unquote(name)
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 <= value <= PLAN_PARAM_MAX_SPEND):
            return rejected(
                f"gives {validation.quoted(channel, 30)} the spend {validation.quoted(number, 20)}"
                f", not a number from 0 to {PLAN_PARAM_MAX_SPEND:,.0f}"
            )
        if channel in plan:
            return rejected(f"names {validation.quoted(channel, 30)} twice")
        plan[channel] = value
    channels = set(curves["channel"])
    if not channels & set(plan):
        return rejected("names no channel with a response curve")
    unknown = [validation.quoted(ch, 30) for ch in plan if ch not in channels]
    aligned, _ = align_plan(curves, plan)
    notes = []
    if unknown:
        shown = ", ".join(unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        notes.append(f"plan: dropped channel(s) without a response curve: {shown}")
    missing = [ch for ch in curves["channel"] if ch not in plan]
    if missing:
        notes.append(f"plan: set to 0 (not in the link): {', '.join(missing)}")
    return aligned, notes
