"""Budget Simulator (Conductor): what-if and optimized reallocation of the weekly media budget.

All numbers come from ccrm_core.conductor.budget over the MMM's response curves; this page only keeps the
proposed plan in session state and draws. Plans are spend per WEEK per channel.
The objective and the proposed plan (a saved scenario by name, or the plan itself) live in the
URL (st.query_params), so a copied link reproduces the view.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pandas as pd
import streamlit as st

from ccrm_core.conductor import attribution, budget, mmm
from ccrm_core.foundation import formatting, pipeline
from ccrm_core.foundation.rendering import markdown_text
from ccrm_core.foundation.validation import quoted
from ccrm_ui import auth, db, inputs, navigation, tables

OBJECTIVE_LABELS = {
    "revenue": "Revenue",
    "conversions": "Conversions",
    "profit": "Profit (revenue − spend)",
}
EDITOR_COLUMNS = {
    "channel": "Channel",
    "current": "Current / wk",
    "proposed": "Proposed / wk",
    "change": "Change",
    "min": "Min / wk",
    "max": "Max / wk",
    "locked": "Locked",
    "roi": "ROI at plan",
    "marginal_roi": "Marginal ROI",
}


def _sentence(text: str) -> str:
    """`text` with its first letter in capitals (str.capitalize would lower the rest)."""
    return text[:1].upper() + text[1:]


def _signed(value: float, decimals: int) -> str:
    """+1,234 style; rounding noise never shows as -0."""
    return f"{round(value, decimals) + 0.0:+,.{decimals}f}"


def _money(value: float, sign: bool = False) -> str:
    """Whole currency units per week ('€12,345', '+€120'); rounding noise never shows as -0."""
    return formatting.money(round(value) + 0.0, sign=sign, whole=True)


def _slider_key(channel: str) -> str:
    return f"budget_w_{channel}"


def _init_state(curves: pd.DataFrame) -> bool:
    """Start (or restart, when the channels change after a rebuild) from the current plan;
    True when it did."""
    channels = tuple(curves["channel"])
    if st.session_state.get("budget_channels") == channels:
        return False
    current = budget.current_plan(curves)
    st.session_state["budget_channels"] = channels
    st.session_state["budget_slider_max"] = {
        ch: budget.slider_ceiling(max(3.0 * v, sum(current.values()) * 0.25, 1.0))
        for ch, v in current.items()
    }
    st.session_state["budget_limits"] = {ch: {"min": None, "max": None} for ch in channels}
    st.session_state["budget_locked"] = []
    st.session_state["budget_editor_v"] = 0
    st.session_state["budget_flash"] = []
    st.session_state["budget_loaded"] = None  # (scenario name, its plan as plan_to_param)
    for ch, v in current.items():
        st.session_state[_slider_key(ch)] = float(v)
    return True


def _restore_link(curves: pd.DataFrame) -> list[str]:
    """URL -> objective and proposed plan (the first run of a session, as on the Command
    Center): `plan` (the plan itself) or `scenario` (a saved one by name). Returns warnings
    for what could not be applied; the current plan stays then."""
    url = st.query_params.to_dict()
    objective, problem = navigation.choice_from_params(
        url, "objective", list(OBJECTIVE_LABELS), "revenue"
    )
    warnings = [problem] if problem else []
    navigation.restore_widget("budget_objective", objective)
    name = url.get("scenario")
    if url.get("plan"):
        if name:
            warnings.append(f"scenario={quoted(name)} is left aside: the link's plan is shown")
        plan, notes = budget.plan_from_param(url["plan"], curves)
        warnings += notes
        if plan is not None:
            _set_plan(plan)
    elif name:
        if name in db.run(budget.list_scenarios)["name"].tolist():
            st.session_state["budget_load_name"] = name
            _load_scenario(curves, name)
        else:
            warnings.append(
                f"scenario={quoted(name)} is not a saved scenario; showing the current plan"
            )
    return warnings


def _link(objective: str, proposed: dict[str, float], current: dict[str, float]) -> dict:
    """Proposed plan and objective -> URL parameters (defaults left out): the loaded scenario's
    name while the plan is still that scenario's, else the plan when it is not the current."""
    link = {"objective": objective} if objective != "revenue" else {}
    encoded = budget.plan_to_param(proposed)
    loaded = st.session_state.get("budget_loaded")
    if loaded and loaded[1] == encoded:
        link["scenario"] = loaded[0]
    elif encoded != budget.plan_to_param(current):
        link["plan"] = encoded
    return link


def _proposed() -> dict[str, float]:
    return {
        ch: float(st.session_state[_slider_key(ch)]) for ch in st.session_state["budget_channels"]
    }


def _set_plan(plan: dict[str, float]) -> None:
    """Put a plan into the sliders (callbacks only: before the sliders are drawn)."""
    maxes = st.session_state["budget_slider_max"]
    for ch in st.session_state["budget_channels"]:
        value = float(plan.get(ch, 0.0))
        if value > maxes[ch]:
            maxes[ch] = budget.slider_ceiling(value * 1.25)
        st.session_state[_slider_key(ch)] = value
    st.session_state["budget_editor_v"] += 1


def _flash(kind: str, message: str) -> None:
    st.session_state["budget_flash"].append((kind, message))


def _apply_editor(key: str) -> None:
    """Table edits -> sliders (proposed), per-channel limits and locks."""
    edits = st.session_state.get(key, {}).get("edited_rows", {})
    channels = st.session_state["budget_channels"]
    plan = _proposed()
    limits = st.session_state["budget_limits"]
    locked = set(st.session_state["budget_locked"])
    for row, change in edits.items():
        ch = channels[int(row)]
        for column, value in change.items():
            if column == EDITOR_COLUMNS["proposed"] and value is not None:
                plan[ch] = max(float(value), 0.0)
            elif column == EDITOR_COLUMNS["min"]:
                limits[ch]["min"] = None if value is None else max(float(value), 0.0)
            elif column == EDITOR_COLUMNS["max"]:
                limits[ch]["max"] = None if value is None else max(float(value), 0.0)
            elif column == EDITOR_COLUMNS["locked"]:
                (locked.add if value else locked.discard)(ch)
    st.session_state["budget_locked"] = [ch for ch in channels if ch in locked]
    _set_plan(plan)


def _constraints(use_share: bool, share: tuple[int, int]) -> tuple[dict, dict]:
    """Bounds and locks for budget.optimize from the table and the share-of-current limit.

    A channel's own Min/Max in the table overrides the share limit on that side."""
    bounds: dict[str, budget.Bound] = {}
    lo_share, hi_share = (share[0] / 100.0, share[1] / 100.0) if use_share else (None, None)
    for ch, lim in st.session_state["budget_limits"].items():
        bounds[ch] = budget.Bound(
            min=lim["min"],
            max=lim["max"],
            min_share=lo_share if lim["min"] is None else None,
            max_share=hi_share if lim["max"] is None else None,
        )
    plan = _proposed()
    locked = {ch: plan[ch] for ch in st.session_state["budget_locked"]}
    return bounds, locked


def _optimize(curves, objective, total, use_share, share, use_roi, target_roi) -> None:
    bounds, locked = _constraints(use_share, share)
    before = budget.predict(curves, _proposed()).value(objective)
    try:
        result = budget.optimize(
            curves,
            total_budget=total,
            bounds=bounds,
            locked=locked,
            objective=objective,
            target_roi=target_roi if use_roi else None,
        )
    except budget.BudgetError as exc:
        _flash("error", f"Cannot optimize: {markdown_text(exc)}")
        return
    _set_plan(result.plan)
    after = result.value
    change = (after - before) / abs(before) if before else float("nan")
    label = OBJECTIVE_LABELS[objective].split(" (")[0].lower()
    _flash(
        "success",
        f"Optimized {label}: {after:,.0f} per week ({change:+.1%} against the plan before). "
        + (
            "SLSQP converged"
            if result.converged
            else f"SLSQP stopped: {markdown_text(result.message)}"
        )
        + f" after {result.iterations} iterations."
        + "".join(f" {markdown_text(n)}." for n in result.notes),
    )


def _reset(curves) -> None:
    _set_plan(budget.current_plan(curves))


def _save_scenario(objective, total, settings) -> None:
    name = st.session_state.get("budget_scenario_name", "")
    try:
        saved = db.write(
            budget.save_scenario,
            name,
            _proposed(),
            objective=objective,
            total_budget=total,
            settings={**settings, **budget.model_settings(db.cached(mmm.model_fit))},
        )
    except budget.BudgetError as exc:
        _flash("error", f"Scenario not saved: {markdown_text(exc)}")
        return
    except duckdb.Error as exc:
        _flash(
            "error",
            f"Scenario not saved: the database refused the write ({markdown_text(exc)}).",
        )
        return
    _flash("success", f"Saved scenario “{markdown_text(saved)}”.")


def _load_scenario(curves, name: str | None = None) -> None:
    name = name or st.session_state.get("budget_load_name")
    if not name:
        return
    try:
        scenario = db.run(budget.load_scenario, name)
    except budget.BudgetError as exc:
        _flash("error", markdown_text(exc))
        return
    plan, notes = budget.align_plan(curves, scenario.plan)
    refit = budget.model_change_note(scenario, db.cached(mmm.model_fit))
    _set_plan(plan)
    st.session_state["budget_loaded"] = (name, budget.plan_to_param(plan))
    _flash(
        "info",
        f"Loaded scenario “{markdown_text(name)}”."
        + "".join(f" {markdown_text(n.capitalize())}." for n in notes)
        + (f" {markdown_text(_sentence(refit))}." if refit else ""),
    )


def _delete_scenario() -> None:
    name = st.session_state.get("budget_load_name")
    if name:
        db.write(budget.delete_scenario, name)
        if (st.session_state.get("budget_loaded") or ("",))[0] == name:
            st.session_state["budget_loaded"] = None
        _flash("info", f"Deleted scenario “{markdown_text(name)}”.")


# ---------------------------------------------------------------------------------------------

user = auth.require_page(__file__)  # role check (ccrm_core.foundation.access)
st.title("Budget Simulator")
st.caption(
    "Move the weekly media budget between channels and see what the media mix model expects. "
    "All money is **per week**; outcomes are incremental (what the media adds) at steady state, "
    "with a 90% interval from the model's uncertainty."
)

try:
    raw_curves = db.cached(budget.load_curves)
except budget.BudgetError as exc:
    st.error(markdown_text(exc))
    st.stop()
if raw_curves is None or raw_curves.empty:
    if inputs.show_missing_inputs("budget_simulator", user):
        st.stop()
    st.info(
        db.missing_output("response curves", ["mmm"], "daily spend per channel and orders")
        + " This page reads the media mix model's table `mart_response_curves`."
    )
    st.stop()

model_fit = db.cached(mmm.model_fit)
st.caption(
    markdown_text(_sentence(model_fit.text()))
    + ". A rebuild refits the model, so the same plan can then bring other numbers."
)

if _init_state(raw_curves):
    navigation.show_link_warnings(_restore_link(raw_curves))
channels = list(raw_curves["channel"])
current = budget.current_plan(raw_curves)
current_total = sum(current.values())
for kind, message in st.session_state["budget_flash"]:
    getattr(st, kind)(message)
st.session_state["budget_flash"] = []

# --- settings -------------------------------------------------------------------------------
with st.container(border=True):
    c1, c2, c3, c4 = st.columns([1.1, 1.1, 1.6, 1.4])
    objective = c1.selectbox(
        "Objective",
        list(OBJECTIVE_LABELS),
        format_func=OBJECTIVE_LABELS.get,
        key="budget_objective",
        help="What Optimize maximises. Profit = incremental revenue − media spend.",
    )
    total = c2.number_input(
        "Total budget / week",
        min_value=0.0,
        value=float(round(current_total)),
        step=float(budget.slider_ceiling(current_total) / 100),
        format="%.0f",
        key="budget_total",
        help="Revenue and conversions spend all of it; profit and a target ROI treat it as a cap.",
    )
    use_share = c3.toggle(
        "Limit each channel to a share of its current spend",
        value=True,
        key="budget_use_share",
        help="Guards against moving far outside the spend the model has seen. A channel with "
        "no recent spend stays at 0 under this limit; give it a Max in the table to fund it. A "
        "channel's own Min/Max in the table overrides this on that side.",
    )
    share = c3.slider(
        "Share of current spend (%)",
        0,
        500,
        (50, 200),
        step=5,
        key="budget_share",
        disabled=not use_share,
        label_visibility="collapsed",
    )
    use_roi = c4.toggle(
        "Target ROI instead of a fixed total",
        key="budget_use_roi",
        help="Spend as much as keeps incremental revenue / spend at or above the target.",
    )
    target_roi = c4.number_input(
        "Target ROI",
        min_value=0.1,
        value=2.0,
        step=0.1,
        key="budget_target_roi",
        disabled=not use_roi,
        label_visibility="collapsed",
    )

    focus = db.cached(budget.segment_share_options)
    f1, f2, f3 = st.columns([1.1, 1.1, 3.0])
    use_focus = f1.toggle(
        "Segment focus",
        key="budget_use_focus",
        disabled=not focus["available"],
        help="Plan for chosen segments: each channel counts only the focus segments' part of its "
        "incremental revenue (from the reconciliation by segment on the Attribution page).",
    )
    curves = raw_curves
    focus_note = ""
    if not focus["available"]:
        f2.caption(f"Segment focus is unavailable: {focus['note']}.")
    elif use_focus:
        scheme = f2.selectbox(
            "Segment scheme",
            list(focus["schemes"]),
            format_func=attribution.scheme_label,
            key="budget_focus_scheme",
        )
        segments = f3.multiselect(
            "Focus segments",
            focus["schemes"][scheme],
            default=focus["schemes"][scheme],
            key=f"budget_focus_segments_{scheme}",
        )
        if segments:
            shares = db.cached(budget.segment_revenue_shares, scheme, tuple(segments))
            curves = budget.apply_segment_shares(raw_curves, shares)
            focus_note = (
                "Segment focus scales each channel's response curve by the focus segments' share "
                "of its incremental revenue (media mix model revenue split by "
                f"{markdown_text(attribution.MODEL_LABELS.get(focus['model'], 'attributed'))} "
                "attribution shares; TV and print by overall share): "
                + ", ".join(
                    f"{markdown_text(attribution.channel_label(r.channel))} {r.share:.0%}"
                    for r in shares.itertuples()
                )
                + "."
            )
        else:
            f3.caption("Pick at least one segment to focus on.")

    b1, b2, _ = st.columns([1, 1, 4])
    b1.button(
        "Optimize",
        type="primary",
        key="budget_optimize",
        on_click=_optimize,
        args=(curves, objective, total, use_share, share, use_roi, target_roi),
        help="SLSQP from the current plan; at most a second.",
    )
    b2.button("Reset to current", key="budget_reset", on_click=_reset, args=(raw_curves,))
if focus_note:
    st.caption(focus_note)

# --- allocation -----------------------------------------------------------------------------
proposed = _proposed()
now = budget.predict(curves, current)
new = budget.predict(curves, proposed)
revenue_label = "Focus-segment revenue" if curves is not raw_curves else "Revenue"

m = st.columns(5)
m[0].metric(
    "Spend / week", _money(new.spend), _money(new.spend - now.spend, True), delta_color="off"
)
m[1].metric(f"{revenue_label} / week", _money(new.revenue), _money(new.revenue - now.revenue, True))
m[2].metric(
    "Conversions / week", f"{new.conversions:,.1f}", _signed(new.conversions - now.conversions, 1)
)
m[3].metric("ROI", f"{new.roi:.2f}", _signed(new.roi - now.roi, 2))
m[4].metric("Profit / week", _money(new.profit), _money(new.profit - now.profit, True))
st.caption(
    f"{revenue_label} 90% interval: {new.revenue_low:,.0f} – {new.revenue_high:,.0f} per week "
    f"(current plan {now.revenue:,.0f}: {now.revenue_low:,.0f} – {now.revenue_high:,.0f}). "
    f"Proposed spend is {_money(new.spend - total, True)} against the total budget."
)

sliders, table = st.columns([2, 3])
with sliders:
    st.subheader("Proposed spend per week")
    maxes = st.session_state["budget_slider_max"]
    locked_now = set(st.session_state["budget_locked"])
    for ch in channels:
        st.slider(
            f"{markdown_text(ch)} (current {current[ch]:,.0f})"
            + (" · locked" if ch in locked_now else ""),
            min_value=0.0,
            max_value=float(maxes[ch]),
            step=float(maxes[ch] / 500),
            format="%.0f",
            key=_slider_key(ch),
        )

with table:
    st.subheader("Allocation and constraints")
    frame = new.channels.set_index("channel")
    limits = st.session_state["budget_limits"]
    editor = pd.DataFrame(
        {
            EDITOR_COLUMNS["channel"]: channels,
            EDITOR_COLUMNS["current"]: [current[ch] for ch in channels],
            EDITOR_COLUMNS["proposed"]: [proposed[ch] for ch in channels],
            EDITOR_COLUMNS["change"]: [
                (proposed[ch] - current[ch]) / current[ch] if current[ch] > 0 else None
                for ch in channels
            ],
            EDITOR_COLUMNS["min"]: [limits[ch]["min"] for ch in channels],
            EDITOR_COLUMNS["max"]: [limits[ch]["max"] for ch in channels],
            EDITOR_COLUMNS["locked"]: [ch in locked_now for ch in channels],
            EDITOR_COLUMNS["roi"]: frame.loc[channels, "roi"].to_numpy(),
            EDITOR_COLUMNS["marginal_roi"]: frame.loc[channels, "marginal_roi"].to_numpy(),
        }
    ).astype({EDITOR_COLUMNS["min"]: "float64", EDITOR_COLUMNS["max"]: "float64"})
    editor_key = f"budget_editor_{st.session_state['budget_editor_v']}"
    money = st.column_config.NumberColumn(format=tables.money_format(), min_value=0.0)
    st.data_editor(
        editor,
        key=editor_key,
        on_change=_apply_editor,
        args=(editor_key,),
        hide_index=True,
        num_rows="fixed",
        width="stretch",
        placeholder=tables.MISSING,
        disabled=[
            EDITOR_COLUMNS[c] for c in ("channel", "current", "change", "roi", "marginal_roi")
        ],
        column_config={
            EDITOR_COLUMNS["current"]: money,
            EDITOR_COLUMNS["proposed"]: money,
            EDITOR_COLUMNS["min"]: st.column_config.NumberColumn(
                format=tables.money_format(),
                min_value=0.0,
                help="Optimize keeps at least this (blank: none)",
            ),
            EDITOR_COLUMNS["max"]: st.column_config.NumberColumn(
                format=tables.money_format(),
                min_value=0.0,
                help="Optimize keeps at most this (blank: none)",
            ),
            EDITOR_COLUMNS["locked"]: st.column_config.CheckboxColumn(
                help="Optimize leaves this channel at its proposed spend"
            ),
            EDITOR_COLUMNS["change"]: st.column_config.NumberColumn(format="percent"),
            EDITOR_COLUMNS["roi"]: st.column_config.NumberColumn(
                format="%.2f", help="Incremental revenue per currency unit spent"
            ),
            EDITOR_COLUMNS["marginal_roi"]: st.column_config.NumberColumn(
                format="%.2f",
                help="Revenue the next currency unit adds; equal across unbound "
                "channels at the optimum",
            ),
        },
    )
    st.download_button(
        "Download the proposed plan (CSV)",
        data=budget.plan_csv(raw_curves, proposed),
        file_name="budget_plan.csv",
        mime="text/csv",
        key="budget_download",
    )

# --- response curves ------------------------------------------------------------------------
st.subheader("Response curves")
st.caption(
    "Steady-state incremental revenue per week against weekly spend (band: 90% interval). "
    "Grey circle: current spend; blue diamond: proposed. Titles give the marginal ROI at both."
)
st.plotly_chart(db.memo(budget.figure_response_curves, curves, current, proposed), width="stretch")

# --- waterfall and forecast -----------------------------------------------------------------
left, right = st.columns(2)
with left:
    st.subheader("What changes, by channel")
    fall = budget.waterfall(curves, current, proposed, objective)
    unit = {"revenue": f"{revenue_label.lower()} per week", "conversions": "conversions per week"}
    st.plotly_chart(
        db.memo(budget.figure_waterfall, fall, unit.get(objective, "profit per week")),
        width="stretch",
    )
with right:
    st.subheader("Forecast")
    weeks = st.slider("Weeks ahead", 4, 52, 13, key="budget_weeks")
    start = db.cached(pipeline.data_end_date) + timedelta(days=1)
    series = {
        "current plan": budget.forecast_totals(budget.forecast(curves, current, weeks, start)),
        "proposed plan": budget.forecast_totals(budget.forecast(curves, proposed, weeks, start)),
    }
    st.plotly_chart(db.memo(budget.figure_forecast, series), width="stretch")
    gain = series["proposed plan"]["revenue"].sum() - series["current plan"]["revenue"].sum()
    st.caption(
        f"Starts from each channel's adstock at the end of the data, so recent spend carries "
        f"over into the first weeks. Over {weeks} weeks the proposed plan adds "
        f"{gain:+,.0f} {revenue_label.lower()} against the current one."
    )

# --- scenarios ------------------------------------------------------------------------------
st.subheader("Scenarios")
writable = not db.read_only()
saved = db.run(budget.list_scenarios)  # uncached: saving does not change the data version
s1, s2 = st.columns([2, 3])
with s1:
    st.text_input(
        "Scenario name",
        max_chars=budget.SCENARIO_NAME_MAX,
        key="budget_scenario_name",
        placeholder="e.g. Q3 shift to search",
        disabled=not writable,
    )
    settings = {
        "objective": objective,
        "share_of_current": list(share) if use_share else None,
        "target_roi": target_roi if use_roi else None,
        "locked": st.session_state["budget_locked"],
        "limits": {ch: v for ch, v in st.session_state["budget_limits"].items() if any(v.values())},
    }
    st.button(
        "Save the proposed plan",
        key="budget_save",
        on_click=_save_scenario,
        args=(objective, total, settings),
        disabled=not writable,
    )
    if not writable:
        st.caption("The database is open read-only, so scenarios cannot be saved here.")
    if not saved.empty:
        st.selectbox("Saved scenario", saved["name"].tolist(), key="budget_load_name")
        l1, l2 = st.columns(2)
        l1.button(
            "Load into proposed", key="budget_load", on_click=_load_scenario, args=(raw_curves,)
        )
        l2.button("Delete", key="budget_delete", on_click=_delete_scenario, disabled=not writable)
with s2:
    if saved.empty:
        st.info("No saved scenarios yet: name the proposed plan and save it to compare later.")
    else:
        compare = st.multiselect(
            f"Compare with the current and proposed plans (up to {budget.MAX_COMPARED_SCENARIOS})",
            saved["name"].tolist(),
            max_selections=budget.MAX_COMPARED_SCENARIOS,
            key="budget_compare",
        )
        plans = {"current": current, "proposed": proposed}
        refits = []
        for name in compare:
            scenario = db.run(budget.load_scenario, name)
            plans[name] = budget.align_plan(raw_curves, scenario.plan)[0]
            note = budget.model_change_note(scenario, model_fit)
            if note:
                refits.append(markdown_text(_sentence(note)) + ".")
        for note in refits:
            st.caption(note)
        tables.show_table(
            budget.compare_plans(raw_curves, plans),
            hide_index=True,
            width="stretch",
            column_config={name: st.column_config.NumberColumn(format="%.2f") for name in plans},
        )
        st.plotly_chart(db.memo(budget.figure_allocation, plans), width="stretch")

navigation.keep_in_url(_link(objective, proposed, current))
