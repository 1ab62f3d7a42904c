"""Segments: the `segments` build stage (mart_customer), value tiers, needs-based segments,
user-defined rule segments, and the per-segment views the Segment Explorer shows.

`schemes` names the segment schemes (columns of mart_customer, plus `saved` rule segments) and
cuts value tiers; `behaviour` computes the behaviour features per customer in SQL; `needs` fits
and names the needs-based k-means segments; `stage` is the `segments` build stage that writes
mart_customer and the needs model; `rules` turns structured rules into parameterised SQL and
saves them by name; `views` answers the Segment Explorer's membership and per-segment queries;
`figures` draws its charts; and `bench` is the `ccrm bench` segment_filter operation.
"""

from ccrm_core.radar.segments.behaviour import (
    ENGAGEMENT_TYPES,
    MAX_CATEGORIES,
    behaviour_features,
    top_categories,
)
from ccrm_core.radar.segments.bench import bench_segment_filter
from ccrm_core.radar.segments.figures import (
    figure_mix,
    figure_overlap,
    figure_scatter,
    figure_treemap,
)
from ccrm_core.radar.segments.needs import (
    SECONDARY_FEATURE_WEIGHT,
    SILHOUETTE_TOLERANCE,
    NeedsModel,
    feature_label,
    fit_needs_segments,
    needs_feature_matrix,
)
from ccrm_core.radar.segments.rules import (
    DATE_OPERATORS,
    NUMERIC_OPERATORS,
    SAVED_SEGMENTS_DDL,
    SEGMENT_NAME_MAX,
    TEXT_OPERATORS,
    Rule,
    RuleError,
    delete_segment,
    operators_for,
    rule_columns,
    rule_counts,
    rule_value_options,
    rules_where,
    save_segment,
    saved_segment_where,
    saved_segments,
)
from ccrm_core.radar.segments.schemes import (
    NO_ACTIVITY,
    NO_PURCHASE,
    SAVED_SCHEME,
    SCHEMES,
    VALUE_TIERS,
    value_tiers,
)
from ccrm_core.radar.segments.stage import MART_COLUMNS, segments_stage
from ccrm_core.radar.segments.views import (
    MIX_KINDS,
    available_schemes,
    base_totals,
    mart_ready,
    needs_segment_drivers,
    scatter_sample,
    segment_condition,
    segment_customers,
    segment_members,
    segment_mix,
    segment_names,
    segment_overlap,
    segment_profile,
)

__all__ = [
    "DATE_OPERATORS",
    "ENGAGEMENT_TYPES",
    "MART_COLUMNS",
    "MAX_CATEGORIES",
    "MIX_KINDS",
    "NO_ACTIVITY",
    "NO_PURCHASE",
    "NUMERIC_OPERATORS",
    "SAVED_SCHEME",
    "SAVED_SEGMENTS_DDL",
    "SCHEMES",
    "SECONDARY_FEATURE_WEIGHT",
    "SEGMENT_NAME_MAX",
    "SILHOUETTE_TOLERANCE",
    "TEXT_OPERATORS",
    "VALUE_TIERS",
    "NeedsModel",
    "Rule",
    "RuleError",
    "available_schemes",
    "base_totals",
    "behaviour_features",
    "bench_segment_filter",
    "delete_segment",
    "feature_label",
    "figure_mix",
    "figure_overlap",
    "figure_scatter",
    "figure_treemap",
    "fit_needs_segments",
    "mart_ready",
    "needs_feature_matrix",
    "needs_segment_drivers",
    "operators_for",
    "rule_columns",
    "rule_counts",
    "rule_value_options",
    "rules_where",
    "save_segment",
    "saved_segment_where",
    "saved_segments",
    "scatter_sample",
    "segment_condition",
    "segment_customers",
    "segment_members",
    "segment_mix",
    "segment_names",
    "segment_overlap",
    "segment_profile",
    "segments_stage",
    "top_categories",
    "value_tiers",
]
