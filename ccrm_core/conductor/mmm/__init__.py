"""Media mix model: daily revenue on spend per channel (top-down, all media incl. tv and print).

Model (one row per day t, one term per media channel c):

    revenue_t = baseline_t + sum_c beta_c * h_c(a_c,t) + e_t
    a_c,t     = spend_c,t + theta_c * a_c,t-1            geometric adstock (theta in [0, 0.95])
    h(a)      = a^s / (a^s + K^s)                        Hill saturation (K in adstocked daily
                                                          spend, currency units; s = slope)
    baseline  = intercept + trend (polynomial in time) + day-of-week dummies
                + yearly Fourier terms (sin/cos, `yearly_order` pairs) + optional controls

beta_c is the most incremental revenue per day the channel can bring (at saturation).
At a steady daily spend x the adstock settles at x / (1 - theta), so the response curve the
budget simulator reads is revenue/day = beta * h(x / (1 - theta)).

Fitting: for given (theta, K, s) the model is linear; the baseline coefficients are free and the
media betas non-negative, solved exactly by projecting out the baseline (Frisch-Waugh) and
non-negative least squares. The nonlinear parameters are found by a coordinate search over a grid
per channel, then refined jointly with L-BFGS-B using the exact gradient of the profiled residual
sum of squares (variable projection). Uncertainty: moving-block bootstrap of days (blocks of
`block_days` consecutive days drawn with replacement, used as day weights in the loss while the
adstock runs over the full series), each replicate refitted from the point estimate; 90%
intervals are the 5th and 95th percentiles. Lift tests calibrate the fit as Gaussian likelihood
terms on a channel's modelled contribution over the test's days (see `fit`). ROI = incremental revenue / spend over the data; marginal ROI = the
slope of the response curve at the current daily spend (mean of the last 28 days).

Submodules: `transforms` holds adstock, saturation, the response curve and the baseline design;
`problem` the profiled least-squares problem with its bounds and search grids; `fit` `fit_mmm`,
the bootstrap and `MMMResult`; `stage` the inputs read from the database, the `mmm` build stage,
the `mart_response_curves` contract and the `mmm_fit` benchmark; `charts` the page readers of the
marts and their charts.
"""

from ccrm_core.conductor.mmm.charts import (
    calibration_table,
    chart_contributions,
    chart_fit,
    chart_roi,
    chart_roi_calibration,
    load_channels,
    load_contributions,
    load_diagnostics,
    load_fit,
    load_lift_tests_used,
    load_response_curves,
    model_fit,
)
from ccrm_core.conductor.mmm.fit import CURRENT_SPEND_DAYS, LIFT_TEST_COLUMNS, MMMResult, fit_mmm
from ccrm_core.conductor.mmm.problem import (
    DECAY_GRID,
    HALF_SATURATION_BOUNDS,
    HALF_SATURATION_GRID,
    MAX_DECAY,
    SLOPE_BOUNDS,
    SLOPE_GRID,
)
from ccrm_core.conductor.mmm.stage import (
    RESPONSE_CURVE_COLUMNS,
    bench_mmm_fit,
    channels_mart,
    load_inputs,
    load_lift_tests,
    mmm_stage,
    response_curves,
)
from ccrm_core.conductor.mmm.transforms import (
    baseline_design,
    geometric_adstock,
    hill,
    marginal_response,
    response,
)

__all__ = [
    "CURRENT_SPEND_DAYS",
    "DECAY_GRID",
    "HALF_SATURATION_BOUNDS",
    "HALF_SATURATION_GRID",
    "LIFT_TEST_COLUMNS",
    "MAX_DECAY",
    "RESPONSE_CURVE_COLUMNS",
    "SLOPE_BOUNDS",
    "SLOPE_GRID",
    "MMMResult",
    "baseline_design",
    "bench_mmm_fit",
    "calibration_table",
    "channels_mart",
    "chart_contributions",
    "chart_fit",
    "chart_roi",
    "chart_roi_calibration",
    "fit_mmm",
    "geometric_adstock",
    "hill",
    "load_channels",
    "load_contributions",
    "load_diagnostics",
    "load_fit",
    "load_inputs",
    "load_lift_tests",
    "load_lift_tests_used",
    "load_response_curves",
    "marginal_response",
    "mmm_stage",
    "model_fit",
    "response",
    "response_curves",
]
