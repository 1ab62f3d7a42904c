"""Identity resolution: source records and anonymous ids -> one customer_id per person.

Submodules: `model` holds the defaults, nickname table, Splink comparisons and the candidate
blocking and training rules; `training` picks the rules and training blocks that the fields
present allow, trains the model and notes what could not be trained; `matching` the
deterministic rules, Splink scoring, `resolve_records` (one record set, or two to link) and the
customer id helpers (`assign_stable_ids`); `clusters` the clustering with a steward's overrides
and each cluster's graph figures; `overrides` storing those decisions; `stage` the build stage
`identity_stage` and the SQL of the tables and views it writes; `results` the queries the Data
Hygiene page reads (summary, threshold curve, matched pairs, pair explanations, riskiest
clusters); `figures` its charts; `evaluation` pairwise precision and recall against planted
persons and a harder no-email, no-phone variant of a record set; `benchmark` the `ccrm bench`
operations of the Librarian stages. The public API is re-exported here.

Output contract (other stages and pages read only these):
- `identity_map` (source_system, source_id, anonymous_id, customer_id, method, match_probability):
  one row per source record (anonymous_id NULL) and one per anonymous id seen in `events`
  (source columns NULL; customer_id NULL while the id never logged in).
- `customers`: one golden record per customer (customer_id, the standardised src_customers
  fields, `<field>_source` provenance, source_records, source_systems, first_source).
- views `customer_orders`, `customer_events` (raw rows plus customer_id; anonymous events carry
  the customer of their linked cookie, NULL while unlinked) and `customer_consents`
  (customer_id, channel, status, ts: the latest permission per customer and channel).

Method (reads `std_customers` from the `standardise` stage):
1. Deterministic links: the same valid email (matching key: lower case, '+tag' and Gmail dots
   dropped); the same E.164 phone and last name. Records so linked form "deterministic
   clusters".
2. Probabilistic links (Splink, Fellegi-Sunter on DuckDB) between records of *different*
   deterministic clusters only. The blocking rules are those of `model.BLOCKING_RULES` whose
   columns hold values and that pair a bounded number of records (names; last or first name +
   birth date; swapped names; phone; postal code + address line, last name or birth date;
   address line + city). With at least `min_train_records` records the model is trained
   without labels: the prior from near-certain pairs (shared email key; phone + last name;
   full name + birth date; full name + address), u by random sampling, m by expectation
   maximisation on the first blocks of `model.EM_BLOCKING_RULES` that have enough pairs, until
   every comparison with data is trained (shared email key and phone when present, else full
   name and birth date + postal code, ...). A comparison no block can train keeps its default
   parameters, and the run's training notes name the field that would help; with no usable
   block at all, or fewer records, the whole model uses the documented default parameters and
   prior (`model.COMPARISONS`, UNTRAINED_PRIOR). A pair links when its match probability is at
   least the threshold (`identity.threshold`, default 0.95).
3. Customers are the connected components of all links and of a steward's manual links; a
   manual split (two records that are different persons) removes, from the cluster that would
   hold both, the weakest links that chained them (`clusters`). `identity_map.method` says how
   a record joined its customer: 'email', 'phone_last_name', 'manual', 'probabilistic', or
   'single_record' (or 'no_customer_record', below); match_probability is 1.0 for deterministic
   and manual links and single records, else the best probability among the record's accepted
   probabilistic links.
   Link groups: records of one link-only set (`resolve_records(left, right,
   link_only=True)`, or a source system named in `identity.link_only_systems`) are never
   linked to each other directly, only to records of other sets.
   A (source_system, source_id) that orders or events carry but no customer record has (a shop
   export loaded without its customer file) is a customer of its own, method
   'no_customer_record', with no golden fields: its orders and events still have a customer.
4. Anonymous ids: an id that logged in (`login` event carrying both ids) belongs to the customer
   it logged in as most often (ties: the latest login); method 'login'. Others: 'anonymous'.
5. Stable ids: a customer keeps the customer_id of the previous build's customer that gives it the
   most records (each old id goes to the new customer holding most of its records), so a
   customer whose records did not change keeps its id, and one that only gained new records too.
   New customers get new ids above the highest ever issued (`identity_runs.id_high_water`).

Survivorship of the golden record, per field: the most recent valid value (record `updated_at`,
latest first), ties and undated records by the most complete record (most non-null fields),
then source_system, source_id. The address (address_line, city, region, postal_code, country)
survives as one block from one record so lines and codes never mix. `created_at` is the
earliest, `updated_at` the latest of the records. `<field>_source` names the source system that
gave each field.

Pairwise predictions above `identity.pair_floor` (default 0.01) are kept in `identity_pairs`,
with each comparison's match weight, so the page can re-cluster at any threshold and explain a
match without re-running the model. `identity_clusters` holds, per customer of 2+ records, its
size, density and weakest link (see `clusters`), so a steward reviews the riskiest first.
"""

from ccrm_core.librarian.identity.benchmark import (
    bench_hygiene,
    bench_identity,
    bench_identity_without_contacts,
    bench_standardise,
)
from ccrm_core.librarian.identity.evaluation import pairwise_accuracy, records_without_contacts
from ccrm_core.librarian.identity.figures import (
    figure_cluster_sizes,
    figure_match_waterfall,
    figure_threshold_curve,
)
from ccrm_core.librarian.identity.matching import (
    Resolution,
    assign_stable_ids,
    format_customer_id,
    resolve_records,
    resolve_standardised,
)
from ccrm_core.librarian.identity.model import (
    BLOCKING_RULES,
    COMPARISON_NAMES,
    COMPARISONS,
    DEFAULT_MIN_TRAIN_RECORDS,
    DEFAULT_PAIR_FLOOR,
    DEFAULT_THRESHOLD,
    DETERMINISTIC_RECALL,
    EM_BLOCKING_RULES,
    EM_MAX_PAIRS,
    EM_MIN_PAIRS,
    METHODS,
    NICKNAMES,
    RECORD_COLUMNS,
    SEED,
    U_MAX_PAIRS,
    U_MIN_COUNT_PER_LEVEL,
    UNTRAINED_PRIOR,
)
from ccrm_core.librarian.identity.overrides import (
    DECISIONS,
    current_overrides,
    parse_record_key,
    record_override,
)
from ccrm_core.librarian.identity.results import (
    customer_records,
    customers_at_threshold,
    is_resolved,
    latest_run,
    matched_pairs,
    pair_explanation,
    pair_records,
    riskiest_clusters,
    summary,
    threshold_curve,
    training_notes,
)
from ccrm_core.librarian.identity.stage import (
    CUSTOMER_VIEWS_SQL,
    IDENTITY_MAP_SQL,
    IDENTITY_RUNS_SQL,
    identity_stage,
)
from ccrm_core.librarian.identity.training import TrainingReport

__all__ = [
    "BLOCKING_RULES",
    "DECISIONS",
    "EM_MIN_PAIRS",
    "TrainingReport",
    "bench_identity_without_contacts",
    "current_overrides",
    "customer_records",
    "pairwise_accuracy",
    "parse_record_key",
    "record_override",
    "records_without_contacts",
    "riskiest_clusters",
    "training_notes",
    "COMPARISONS",
    "COMPARISON_NAMES",
    "CUSTOMER_VIEWS_SQL",
    "DEFAULT_MIN_TRAIN_RECORDS",
    "DEFAULT_PAIR_FLOOR",
    "DEFAULT_THRESHOLD",
    "DETERMINISTIC_RECALL",
    "EM_BLOCKING_RULES",
    "EM_MAX_PAIRS",
    "IDENTITY_MAP_SQL",
    "IDENTITY_RUNS_SQL",
    "METHODS",
    "NICKNAMES",
    "RECORD_COLUMNS",
    "SEED",
    "UNTRAINED_PRIOR",
    "U_MAX_PAIRS",
    "U_MIN_COUNT_PER_LEVEL",
    "Resolution",
    "assign_stable_ids",
    "bench_hygiene",
    "bench_identity",
    "bench_standardise",
    "customers_at_threshold",
    "figure_cluster_sizes",
    "figure_match_waterfall",
    "figure_threshold_curve",
    "format_customer_id",
    "identity_stage",
    "is_resolved",
    "latest_run",
    "matched_pairs",
    "pair_explanation",
    "pair_records",
    "resolve_records",
    "resolve_standardised",
    "summary",
    "threshold_curve",
]
