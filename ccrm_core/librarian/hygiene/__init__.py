"""Data hygiene: checks per table and field in five dimensions, kept per build, and a 0-100 score.

Submodules: `checks` holds the dimensions, the relations checks count rows in and every check;
`stage` the build stage `hygiene_stage` and `run_checks`; `scores` reading the kept results
(scores, trend, field heatmap data, the check table); `failing` the rows that fail a check (sample,
masked CSV, audited download); `figures` the page's charts. The public API is re-exported here.

Dimensions and what fails a row:
- completeness: the field is NULL or blank.
- validity: the value is not valid (email syntax, phone number for its country, postal code for
  its country, dates in range, channel / event_type / status in the allowed sets, amounts >= 0).
- consistency: the raw value is not written in the standard form (email lower case, phone in
  E.164, names trimmed and capitalised); a record disagrees with its resolved customer's golden
  value (conflicting values across sources); a row points at a source record that does not
  exist.
- uniqueness: a natural key repeats; a source record is a duplicate of a person already held
  (every record of a resolved customer except its earliest one).
- recency: a record's `updated_at` is older than `hygiene.stale_days` (default 1095, three years) before the
  data end; a source system's newest event is older than `hygiene.silent_days` (default 7).

Scores (all 0-100, higher is cleaner):
    check score      s_c = 100 * (1 - failed_rows_c / total_rows_c)   (checks with rows only)
    dimension score  S_d = mean of s_c over the checks of dimension d
    overall score    S   = mean of S_d over the dimensions that have checks
    source score         the same overall formula over the rows of one source system
Each check counts equally inside its dimension and each dimension equally in the overall score,
so a rare but serious problem (a broken key) is not drowned by many clean fields.

`hygiene_checks` keeps every build (grain: run x check x source_system, with 'all' rows for the
whole table), so scores can be compared across builds.
"""

from ccrm_core.librarian.hygiene.checks import (
    ALL_SOURCES,
    CHECKS,
    CHECKS_BY_ID,
    DEFAULT_SILENT_DAYS,
    DEFAULT_STALE_DAYS,
    DIMENSIONS,
    RELATIONS,
    Check,
)
from ccrm_core.librarian.hygiene.failing import (
    download_failing_rows,
    failing_rows,
    failing_rows_csv,
)
from ccrm_core.librarian.hygiene.figures import figure_field_heatmap, figure_score_trend
from ccrm_core.librarian.hygiene.scores import (
    check_table,
    checks_for_run,
    field_scores,
    has_checks,
    latest_scores,
    runs,
    score_checks,
    score_trend,
)
from ccrm_core.librarian.hygiene.stage import HYGIENE_CHECKS_SQL, hygiene_stage, run_checks

__all__ = [
    "ALL_SOURCES",
    "CHECKS",
    "CHECKS_BY_ID",
    "DEFAULT_SILENT_DAYS",
    "DEFAULT_STALE_DAYS",
    "DIMENSIONS",
    "HYGIENE_CHECKS_SQL",
    "RELATIONS",
    "Check",
    "check_table",
    "checks_for_run",
    "download_failing_rows",
    "failing_rows",
    "failing_rows_csv",
    "field_scores",
    "figure_field_heatmap",
    "figure_score_trend",
    "has_checks",
    "hygiene_stage",
    "latest_scores",
    "run_checks",
    "runs",
    "score_checks",
    "score_trend",
]
