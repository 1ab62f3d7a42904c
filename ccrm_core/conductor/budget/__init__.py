"""Conductor: budget what-if, optimizer, forecast and scenarios over the MMM's response curves.

Units and grain (read this before using the numbers)
- A *plan* maps media channel -> spend per WEEK (currency units). Inside, a week's spend is spread
  evenly over its 7 days: daily spend x = w / 7.
- The response curves (table `mart_response_curves`, written by the `mmm` stage) are per DAY: at a
  steady daily spend x a channel adds incremental revenue per day
      c * beta * h(x / (1 - theta)),   h(a) = a^s / (a^s + K^s)
  with theta the geometric adstock decay, K the half saturation (adstocked daily spend), s the
  Hill slope, beta the most revenue per day the channel can add and c the calibration factor from
  the MMM/attribution reconciliation (1.0 without one).
- Outcomes are per WEEK: revenue = 7 x revenue per day; conversions = revenue / the channel's
  revenue per conversion; profit = incremental revenue - spend (before product margins);
  ROI = incremental revenue / spend; marginal ROI = revenue added by the next currency unit.
- Steady state (the default of `predict`, and what `optimize` maximises) is the weekly outcome
  once the adstock has settled at the plan's level. `forecast` (and `predict(..., weeks=N)`)
  instead follows the adstock day by day from its state at the end of the data (`last_adstock`):
  a_d = x + theta * a_(d-1), so the carryover of recent spend decays into the first weeks.
- Interval: the MMM's 90% interval of beta (beta_low, beta_high) is carried through the curve
  (the response is linear in beta; the shape parameters theta, K, s are held at their
  estimates), per channel. Totals combine the channel half-widths in quadrature, which assumes the
  channels' errors are independent (narrower than adding them, wider than a fully
  anti-correlated posterior).

Every function takes the curves as a DataFrame (`load_curves(con)`), so the maths is plain numpy
and testable without a database. Scenarios are stored in the table `budget_scenarios`.

Submodules: `curves` loads and checks the response curves and holds the curve maths shared by
the others; `whatif` predicts, forecasts and exports a plan (`predict`, `forecast`, `waterfall`,
`plan_csv`); `bounds` turns bounds and locks into per-channel limits; `optimizer` finds the best
plan under them (`optimize`); `segments` scales channels' curves to the focus segments' share
of their incremental revenue (segment focus); `scenarios` stores, loads and compares named plans and writes a plan into a
link; `charts` draws the simulator's figures; `benchmarks` times the what-if and the optimizer.
"""

from ccrm_core.conductor.budget.benchmarks import (
    bench_optimize,
    bench_whatif,
)
from ccrm_core.conductor.budget.bounds import (
    Bound,
    BoundSpec,
    InfeasibleBudgetError,
    resolve_bounds,
)
from ccrm_core.conductor.budget.charts import (
    CURRENT_COLOUR,
    DOWN_COLOUR,
    PROPOSED_COLOUR,
    UP_COLOUR,
    figure_allocation,
    figure_forecast,
    figure_response_curves,
    figure_waterfall,
    slider_ceiling,
)
from ccrm_core.conductor.budget.curves import (
    CURVE_COLUMNS,
    CURVES_TABLE,
    DAYS_PER_WEEK,
    REQUIRED_CURVE_COLUMNS,
    Z90,
    BudgetError,
    current_plan,
    load_curves,
    synthetic_curves,
    validate_curves,
)
from ccrm_core.conductor.budget.optimizer import (
    OptimizationResult,
    optimize,
)
from ccrm_core.conductor.budget.scenarios import (
    MAX_COMPARED_SCENARIOS,
    PLAN_PARAM_MAX_SPEND,
    SCENARIO_NAME_MAX,
    SCENARIOS_DDL,
    SCENARIOS_TABLE,
    Scenario,
    ScenarioNameError,
    compare_plans,
    delete_scenario,
    list_scenarios,
    load_scenario,
    model_change_note,
    model_settings,
    plan_from_param,
    plan_to_param,
    save_scenario,
    validate_scenario_name,
)
from ccrm_core.conductor.budget.segments import (
    ATTRIBUTION_PREFERENCE,
    apply_segment_shares,
    apply_value_weights,
    segment_focus_options,
    segment_revenue_shares,
    segment_share_options,
    segment_value_weights,
)
from ccrm_core.conductor.budget.whatif import (
    OBJECTIVES,
    Prediction,
    align_plan,
    forecast,
    forecast_totals,
    plan_csv,
    plan_table,
    plan_vector,
    predict,
    waterfall,
)

__all__ = [
    "ATTRIBUTION_PREFERENCE",
    "Bound",
    "BoundSpec",
    "BudgetError",
    "CURRENT_COLOUR",
    "CURVES_TABLE",
    "CURVE_COLUMNS",
    "DAYS_PER_WEEK",
    "DOWN_COLOUR",
    "InfeasibleBudgetError",
    "MAX_COMPARED_SCENARIOS",
    "OBJECTIVES",
    "OptimizationResult",
    "PLAN_PARAM_MAX_SPEND",
    "PROPOSED_COLOUR",
    "Prediction",
    "REQUIRED_CURVE_COLUMNS",
    "SCENARIOS_DDL",
    "SCENARIOS_TABLE",
    "SCENARIO_NAME_MAX",
    "Scenario",
    "ScenarioNameError",
    "UP_COLOUR",
    "Z90",
    "align_plan",
    "apply_segment_shares",
    "apply_value_weights",
    "bench_optimize",
    "bench_whatif",
    "compare_plans",
    "current_plan",
    "delete_scenario",
    "figure_allocation",
    "figure_forecast",
    "figure_response_curves",
    "figure_waterfall",
    "forecast",
    "forecast_totals",
    "list_scenarios",
    "load_curves",
    "load_scenario",
    "model_change_note",
    "model_settings",
    "optimize",
    "plan_csv",
    "plan_from_param",
    "plan_table",
    "plan_to_param",
    "plan_vector",
    "predict",
    "resolve_bounds",
    "save_scenario",
    "segment_focus_options",
    "segment_revenue_shares",
    "segment_share_options",
    "segment_value_weights",
    "slider_ceiling",
    "synthetic_curves",
    "validate_curves",
    "validate_scenario_name",
    "waterfall",
]
