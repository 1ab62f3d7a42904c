"""Audiences: a segment's people, consent applied, in the files the channels and ad platforms
take, with value-based bids and named activations that remember every export.

Modules:
- `channel`: one channel's generic file (customer_id, email_sha256, phone_sha256), consent and
  contact-policy caps applied (`build_audience`, `export_audience`);
- `normalise`: how Google Ads and Meta want each identifier written before hashing (the Python
  reference), and `normalise_sql`: the same rules as DuckDB SQL, for whole audiences;
- `destinations`: Google Ads Customer Match and Meta Custom Audience files, every linked,
  consented identifier, ad-consent purposes and the EEA / UK / Swiss opt-in rule;
- `bids`: each segment's expected 12-month value per person and a bounded bid multiplier;
- `activations`: named segment x destination exports, mirror-sync adds and removes, holdout;
- `delivery`: `export_destination`, the audited, all-or-nothing export to a destination;
- `readout`: test and learn, each activation's sent members against its holdout (lift, 95%
  interval, p-value, incremental revenue), by segment and destination, and its chart;
- `power`: test design, the holdout share a segment needs for a lift, and the reverse.
"""

from ccrm_core.conductor.audience.activations import (
    ACTIVATION_NAME_MAX,
    HOLDOUT_MAX,
    ActivationSync,
    activation_history,
    activation_members,
    activation_ready,
    check_activation_name,
    file_stem,
    find_activation,
    holdout_position,
    is_held_out,
    list_activations,
    parse_holdout,
    sync_paths,
)
from ccrm_core.conductor.audience.bench import bench_destination_export
from ccrm_core.conductor.audience.bids import (
    BID_COLUMNS,
    BID_MULTIPLIER_MAX,
    BID_MULTIPLIER_MIN,
    bid_multiplier,
    bids_csv,
    segment_bids,
    write_bids,
)
from ccrm_core.conductor.audience.channel import (
    AUDIENCE_COLUMNS,
    CHANNEL_IDENTIFIERS,
    E164,
    EXPORT_SUFFIXES,
    AudienceExport,
    audience_csv,
    audience_summary,
    build_audience,
    check_export_path,
    consentable_channels,
    export_audience,
    resolve_segment,
    write_audience,
)
from ccrm_core.conductor.audience.delivery import (
    DESTINATION_SUFFIXES,
    DestinationExport,
    check_destination_path,
    export_destination,
)
from ccrm_core.conductor.audience.destinations import (
    AD_CONSENT_REGION,
    DESTINATIONS,
    EEA_COUNTRIES,
    GOOGLE_ADS,
    META,
    Destination,
    DestinationAudience,
    ad_consent_reasons,
    build_destination_audience,
    destination,
    destination_reach,
    in_consent_region,
    removal_rows,
    upload_rows,
    upload_table,
)
from ccrm_core.conductor.audience.power import (
    POWER_FORMULA,
    detectable_lift,
    holdout_share_needed,
)
from ccrm_core.conductor.audience.readout import (
    PERCENT_COLUMNS,
    READOUT_COLUMNS,
    OutcomeTile,
    activation_readout,
    arm_statistics,
    chart_activation_lift,
    exports_version,
    period_outcomes,
    readout_summary,
    readout_table,
    segment_activation_outcomes,
    summary_table,
)

__all__ = [
    "ACTIVATION_NAME_MAX", "AD_CONSENT_REGION", "AUDIENCE_COLUMNS", "BID_COLUMNS",
    "BID_MULTIPLIER_MAX", "BID_MULTIPLIER_MIN", "CHANNEL_IDENTIFIERS", "DESTINATIONS",
    "DESTINATION_SUFFIXES", "E164", "EEA_COUNTRIES", "EXPORT_SUFFIXES", "GOOGLE_ADS",
    "HOLDOUT_MAX", "META", "ActivationSync", "AudienceExport", "Destination",
    "DestinationAudience", "DestinationExport", "activation_history", "activation_members",
    "activation_ready", "ad_consent_reasons", "audience_csv", "audience_summary",
    "bench_destination_export", "bid_multiplier", "bids_csv", "build_audience",
    "build_destination_audience", "check_activation_name", "check_destination_path",
    "check_export_path", "consentable_channels", "destination", "destination_reach",
    "export_audience", "export_destination", "file_stem", "find_activation", "holdout_position",
    "in_consent_region", "is_held_out", "list_activations", "parse_holdout", "removal_rows",
    "resolve_segment", "segment_bids", "sync_paths", "upload_rows", "upload_table",
    "write_audience",
    "write_bids",
    "POWER_FORMULA", "PERCENT_COLUMNS", "READOUT_COLUMNS", "activation_readout",
    "arm_statistics", "chart_activation_lift", "detectable_lift", "holdout_share_needed",
    "OutcomeTile", "exports_version", "period_outcomes", "readout_summary", "readout_table", "segment_activation_outcomes", "summary_table",
]  # fmt: skip
