"""Customer value: RFM summary and scores, BG/NBD and Gamma-Gamma fits, lifetime value.

Conventions (the "buy till you die" literature; Fader, Hardie & Lee 2005):
- A customer is *born* at their first purchase. Purchases are counted at most once per day
  (several orders on one day are one purchase whose revenue is their sum).
- `frequency` = repeat purchases (purchase days after the first), `recency` = age at the last
  purchase (last purchase day - first purchase day), `T` = age at the end of observation
  (observation end - first purchase day), all in time units (weeks of 7 days by default).
- `monetary_value` = mean revenue (currency units) of the repeat purchases; 0 without repeats.

Models:
- BG/NBD: while alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha) per time unit;
  after each purchase they drop out with probability p ~ Beta(a, b).
- Gamma-Gamma: a purchase's value is Gamma(p, nu) with nu ~ Gamma(q, v) per customer, so the
  mean spend of a customer with x repeats and mean m is E[M | x, m] = p (v + x m) / (p x + q - 1).
- Discounted lifetime value over H months (default 12), monthly discount rate d (default 1%):
  CLV = sum_{k=1..H} (E[Y(t_k)] - E[Y(t_{k-1})]) * E[M] / (1 + d)^k, t_k = k months in time units.

The `value` build stage stores one row per buying customer in `customer_value`, the fitted
parameters in `value_model` and a calibration/holdout check in `value_holdout`.

Submodules: `rfm` holds the RFM summary (pandas and DuckDB SQL), quintile scores and named
segments; `fits` the BG/NBD and Gamma-Gamma maximum-likelihood fits; `clv` the predictions from
them (P(alive), expected purchases and spend, lifetime value); `simulate` data from known
parameters for tests and benchmarks; `stage` the holdout check, the `value` build stage and the
`value_fit` benchmark; `charts` the page's readers of the stored fits and its holdout figure.
"""

from ccrm_core.radar.value.charts import figure_holdout, holdout_table, model_parameters
from ccrm_core.radar.value.clv import (
    customer_lifetime_value,
    expected_purchases,
    expected_purchases_new,
    expected_spend,
    probability_alive,
)
from ccrm_core.radar.value.fits import (
    BGNBDFit,
    GammaGammaFit,
    bgnbd_log_likelihood,
    fit_bgnbd,
    fit_gamma_gamma,
)
from ccrm_core.radar.value.rfm import (
    DAYS_PER_MONTH,
    RFM_SEGMENT_ORDER,
    RFM_SEGMENTS,
    RFM_SUMMARY_SQL,
    TIME_UNIT_DAYS,
    quintile_score,
    rfm_scores,
    rfm_segment_names,
    rfm_summary,
    rfm_summary_sql,
)
from ccrm_core.radar.value.simulate import simulate_bgnbd, simulate_gamma_gamma
from ccrm_core.radar.value.stage import bench_value_fit, holdout_check, value_stage

__all__ = [
    "DAYS_PER_MONTH",
    "RFM_SEGMENTS",
    "RFM_SEGMENT_ORDER",
    "RFM_SUMMARY_SQL",
    "TIME_UNIT_DAYS",
    "BGNBDFit",
    "GammaGammaFit",
    "bench_value_fit",
    "bgnbd_log_likelihood",
    "customer_lifetime_value",
    "expected_purchases",
    "expected_purchases_new",
    "expected_spend",
    "figure_holdout",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "holdout_check",
    "holdout_table",
    "model_parameters",
    "probability_alive",
    "quintile_score",
    "rfm_scores",
    "rfm_segment_names",
    "rfm_summary",
    "rfm_summary_sql",
    "simulate_bgnbd",
    "simulate_gamma_gamma",
    "value_stage",
]
