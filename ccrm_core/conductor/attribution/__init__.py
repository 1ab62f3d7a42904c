"""Multi-touch attribution over customer journeys, and its reconciliation with the media mix model.

Every model takes a DataFrame of journeys with columns
`path` (list of channel names in touch order), `conversions` (journeys that ended in an order),
`nulls` (journeys that did not) and `value` (revenue of the converting journeys, currency units)
and returns one row per channel with the attributed `conversions` and `value`.
A row may be one journey or an aggregate of identical journeys (as in `mart_paths`); every model
first aggregates identical paths, so its work scales with the number of *distinct* paths.
Journeys with an empty path (orders without an addressable touch) are not attributable and are
left out; `PathSet.unattributed_*` keeps their totals.

Models
- heuristic: first touch, last touch, linear, time decay (weight 2^(-k/half_life) for the touch k
  positions before the conversion; half-life in touches, because aggregated paths carry no
  timestamps), position based (40/20/40).
- markov(order=1..3): absorbing Markov chain over states = the last `order` channels; exact
  absorption probabilities by sparse LU solves; removal effect of channel c =
  1 - P(conversion | states containing c removed) / P(conversion); conversions and value are
  shared in proportion to removal effects.
- shapley: exact Shapley values over channel coalitions. The worth of a coalition S is the
  conversions (value) of journeys whose channel set is a subset of S; computed for all 2^n
  coalitions by bitmask counting and a subset-sum (zeta) transform, O(n 2^n).

Reconciliation (`reconcile`) puts bottom-up attributed revenue beside the media mix model's
top-down incremental contribution per channel; their ratio is the calibration factor that scales
attribution to top-down totals (`calibrate`). `segment_split` splits each channel's incremental
revenue across the segments of every scheme by their attributed shares (tv and print by each
segment's share of all attributed revenue).

Submodules: `paths` aggregates journeys into distinct paths (`PathSet`, `prepare_paths`);
`models` holds the heuristic, Markov and Shapley models and runs them all per segment; `stage`
is the `attribution` build stage and its readers; `reconcile` compares attribution with the
media mix model, reads out experiments and is the `reconcile` build stage; `segment_split`
splits it by segment and channel; `charts` draws the
page's figures; `benchmarks` simulates journeys and times the models.
"""

from ccrm_core.conductor.attribution.benchmarks import (
    bench_attribution_all,
    simulate_journeys,
)
from ccrm_core.conductor.attribution.charts import (
    CHANNEL_COLOURS,
    chart_model_comparison,
    chart_reconciliation,
    chart_removal_effects,
    chart_segment_split,
    chart_transition_heatmap,
)
from ccrm_core.conductor.attribution.models import (
    HEURISTIC_MODELS,
    MARKOV_ORDERS,
    MAX_SHAPLEY_CHANNELS,
    MODEL_LABELS,
    MarkovChain,
    attribute_all,
    attribute_by_segment,
    build_chain,
    heuristic,
    markov,
    model_names,
    shapley,
    transition_matrix,
)
from ccrm_core.conductor.attribution.paths import (
    PATH_SEPARATOR,
    PathSet,
    prepare_paths,
)
from ccrm_core.conductor.attribution.reconcile import (
    EXPERIMENT_SQL,
    RECONCILIATION_COLUMNS,
    calibrate,
    experiment_readout,
    load_calibrated,
    load_experiments,
    load_reconciliation,
    reconcile,
    reconcile_stage,
    reconciliation_summary,
)
from ccrm_core.conductor.attribution.segment_split import (
    SEGMENT_SPLIT_COLUMNS,
    SEGMENT_SPLIT_METHOD,
    channel_label,
    load_segment_split,
    scheme_label,
    segment_split,
    segment_split_money_columns,
    segment_split_schemes,
    segment_split_table,
)
from ccrm_core.conductor.attribution.stage import (
    attribution_stage,
    load_attribution,
    load_transitions,
    model_fit,
)

__all__ = [
    "CHANNEL_COLOURS",
    "EXPERIMENT_SQL",
    "HEURISTIC_MODELS",
    "MARKOV_ORDERS",
    "MAX_SHAPLEY_CHANNELS",
    "MODEL_LABELS",
    "MarkovChain",
    "PATH_SEPARATOR",
    "PathSet",
    "RECONCILIATION_COLUMNS",
    "SEGMENT_SPLIT_COLUMNS",
    "SEGMENT_SPLIT_METHOD",
    "attribute_all",
    "attribute_by_segment",
    "attribution_stage",
    "bench_attribution_all",
    "build_chain",
    "calibrate",
    "channel_label",
    "chart_model_comparison",
    "chart_reconciliation",
    "chart_removal_effects",
    "chart_segment_split",
    "chart_transition_heatmap",
    "experiment_readout",
    "heuristic",
    "load_attribution",
    "load_calibrated",
    "load_experiments",
    "load_reconciliation",
    "load_segment_split",
    "load_transitions",
    "markov",
    "model_fit",
    "model_names",
    "prepare_paths",
    "reconcile",
    "reconcile_stage",
    "reconciliation_summary",
    "scheme_label",
    "segment_split",
    "segment_split_money_columns",
    "segment_split_schemes",
    "segment_split_table",
    "shapley",
    "simulate_journeys",
    "transition_matrix",
]
