"""Adapting the matching model to the fields a record set holds: which blocking rules score
pairs, which blocks train the model, the prior, and notes that say what could not be trained and
which field would help.

Every choice is made from counts over the records (non-null values per match column, pairs per
rule), so the same records always give the same plan. Training itself (u by seeded random
sampling, m by expectation maximisation) runs single-threaded in `matching`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from ccrm_core.librarian.identity.model import (
    BLOCKING_RULES,
    COMPARISON_COLUMNS,
    COMPARISON_FIELDS,
    COMPARISONS,
    DETERMINISTIC_RECALL,
    EM_BLOCKING_RULES,
    EM_MAX_PAIRS,
    EM_MIN_PAIRS,
    FIELD_WORDS,
    M_FLOOR,
    MAX_PAIRS_PER_RECORD,
    PRIOR_RULES,
    SEED,
    U_MAX_PAIRS,
    U_MIN_COUNT_PER_LEVEL,
    Rule,
    rule_columns,
    rule_sql,
)

MATCH_TABLE = "ccrm_match_records"  # the table Splink reads (registered by matching)
# Every scoring and training rule also needs: records of different deterministic clusters
# (pairs inside one are linked already), allowed to link (records sharing a link group > 0 are
# never compared: link mode, and systems declared deduplicated).
PAIR_CONDITION = (
    "l.det_cluster <> r.det_cluster AND (l.link_group = 0 OR l.link_group <> r.link_group)"
)
LINK_CONDITION = "(l.link_group = 0 OR l.link_group <> r.link_group)"


@dataclass
class TrainingReport:
    """What the model was fitted on and what it could not learn (plain-language notes)."""

    trained: bool = False
    blocking_rules: list[str] = field(default_factory=list)  # descriptions of the rules scored
    training_blocks: list[str] = field(default_factory=list)  # descriptions of the EM blocks
    untrained: list[str] = field(default_factory=list)  # comparisons left at their defaults
    notes: list[str] = field(default_factory=list)


def describe_rule(rule: Rule) -> str:
    """A rule in words: 'same first name and last name', 'first and last name swapped'."""
    if rule == (("first_name", "last_name"), ("last_name", "first_name")):
        return "first and last name swapped"
    if all(left == right for left, right in rule):
        return "same " + " and ".join(FIELD_WORDS[left] for left, _ in rule)
    return " and ".join(
        f"{FIELD_WORDS[left]} = other's {FIELD_WORDS[right]}" for left, right in rule
    )


def column_counts(con: duckdb.DuckDBPyConnection, columns: list[str]) -> dict[str, int]:
    """Non-null values per match column of the match table."""
    selects = ", ".join(f"count({c})" for c in columns)
    row = con.execute(f"SELECT {selects} FROM {MATCH_TABLE}").fetchall()[0]  # noqa: S608 - ours
    return dict(zip(columns, (int(v) for v in row), strict=True))


def rule_pairs(con: duckdb.DuckDBPyConnection, rule: Rule) -> int:
    """Record pairs (unordered, distinct records) that agree on the rule, before the pair
    condition: a join of value counts, so it costs a group-by, not the pairs."""
    left = ", ".join(f"{lc} AS k{i}" for i, (lc, _) in enumerate(rule))
    right = ", ".join(f"{rc} AS k{i}" for i, (_, rc) in enumerate(rule))
    keys = ", ".join(f"k{i}" for i in range(len(rule)))
    not_null = " AND ".join(f"{c} IS NOT NULL" for c in rule_columns(rule))
    itself = " AND ".join(f"{lc} = {rc}" for lc, rc in rule)
    ordered, selves = con.execute(
        f"""
        WITH l AS (SELECT {left}, count(*) AS n FROM {MATCH_TABLE} WHERE {not_null} GROUP BY ALL),
        r AS (SELECT {right}, count(*) AS n FROM {MATCH_TABLE} WHERE {not_null} GROUP BY ALL)
        SELECT coalesce(sum(l.n * r.n), 0),
               (SELECT count(*) FROM {MATCH_TABLE} WHERE {not_null} AND {itself})
        FROM l JOIN r USING ({keys})
        """  # noqa: S608 - column names from the model module only
    ).fetchall()[0]
    return int((int(ordered) - int(selves)) // 2)


class PairCounter:
    """rule_pairs over one match table, each rule counted once (scoring, training and the
    prior share rules)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.seen: dict[Rule, int] = {}

    def __call__(self, rule: Rule) -> int:
        if rule not in self.seen:
            self.seen[rule] = rule_pairs(self.con, rule)
        return self.seen[rule]


def prediction_rules(
    pairs_of: PairCounter, records: int, counts: dict[str, int], report: TrainingReport
) -> list[str]:
    """SQL of the blocking rules to score with (see model.BLOCKING_RULES), in order."""
    budget = max(MAX_PAIRS_PER_RECORD * records, 100_000)
    chosen = []
    for rule in BLOCKING_RULES:
        if any(counts.get(c, 0) == 0 for c in rule_columns(rule)):
            continue
        pairs = pairs_of(rule)
        if pairs == 0:
            continue
        if pairs > budget:
            report.notes.append(
                f"blocking on '{describe_rule(rule)}' skipped: it pairs {pairs:,} records, over "
                f"the limit of {budget:,} (many records share a placeholder value?)"
            )
            continue
        chosen.append(f"({rule_sql(rule)}) AND {PAIR_CONDITION}")
        report.blocking_rules.append(describe_rule(rule))
    if not chosen:
        report.notes.append(
            "no blocking rule finds candidate pairs: records need at least two of first_name, "
            "last_name, birth_date, postal_code, address_line, phone to be compared"
        )
    return chosen


def _trains(rule: Rule) -> set[str]:
    """Comparisons a block on this rule estimates: those that read none of its columns."""
    used = set(rule_columns(rule))
    return {name for name, cols in COMPARISON_COLUMNS.items() if not used & set(cols)}


def training_blocks(
    pairs_of: PairCounter, counts: dict[str, int], report: TrainingReport
) -> list[Rule]:
    """The EM blocks to train on (see model.EM_BLOCKING_RULES); notes what stays untrained."""
    with_data = {
        name for name, cols in COMPARISON_COLUMNS.items() if any(counts.get(c, 0) for c in cols)
    }
    covered: set[str] = set()
    chosen: list[Rule] = []
    for rule in EM_BLOCKING_RULES:
        if covered >= with_data:
            break
        if any(counts.get(c, 0) == 0 for c in rule_columns(rule)):
            continue
        gain = (_trains(rule) & with_data) - covered
        if not gain or pairs_of(rule) < EM_MIN_PAIRS:
            continue
        chosen.append(rule)
        covered |= _trains(rule) & with_data
        report.training_blocks.append(describe_rule(rule))
    for name in sorted(with_data - covered, key=list(COMPARISON_COLUMNS).index):
        report.untrained.append(name)
        helpers = sorted(
            {f for other, f in COMPARISON_FIELDS.items() if other not in with_data}
            - {COMPARISON_FIELDS[name]}
        )
        hint = f" (adding {' or '.join(helpers)} would help)" if helpers else ""
        report.notes.append(
            f"{FIELD_WORDS[name]}: no training block has {EM_MIN_PAIRS}+ pairs, default "
            f"parameters used{hint}"
        )
    return chosen


def field_notes(counts: dict[str, int], report: TrainingReport) -> None:
    """Note each comparison whose fields hold no values (it is not compared) and the field
    that would feed it."""
    for name, cols in COMPARISON_COLUMNS.items():
        if not any(counts.get(c, 0) for c in cols):
            report.notes.append(
                f"{FIELD_WORDS[name]}: no values, not compared (adding "
                f"{COMPARISON_FIELDS[name]} would help)"
            )


def prior_pairs(pairs_of: PairCounter, counts: dict[str, int], records: int) -> int:
    """Distinct record pairs the PRIOR_RULES find (rules over empty or flooded columns
    skipped)."""
    budget = max(MAX_PAIRS_PER_RECORD * records, 100_000)
    selects = []
    for rule in PRIOR_RULES:
        if any(counts.get(c, 0) == 0 for c in rule_columns(rule)):
            continue
        if pairs_of(rule) > budget:
            continue
        pairs = "SELECT l.uid AS a, r.uid AS b FROM {t} l JOIN {t} r ON {on}"  # noqa: S608
        on = f"{rule_sql(rule)} AND l.uid < r.uid AND {LINK_CONDITION}"
        selects.append(pairs.format(t=MATCH_TABLE, on=on))
    if not selects:
        return 0
    union = " UNION ".join(selects)
    return int(pairs_of.con.execute(f"SELECT count(*) FROM ({union})").fetchall()[0][0])  # noqa: S608


def train(linker, pairs_of: PairCounter, records: int, counts: dict[str, int]):
    """Unsupervised training of `linker` (prior from near-certain pairs, u by sampling, m by
    EM on the chosen blocks); returns the TrainingReport. Without any usable block the model
    keeps its default parameters (report.trained False)."""
    report = TrainingReport()
    blocks = training_blocks(pairs_of, counts, report)
    if not blocks:
        report.notes.append(
            "not trained: no training block has enough pairs; the default parameters and prior "
            "are used"
        )
        return report
    total_pairs = records * (records - 1) / 2
    strong = prior_pairs(pairs_of, counts, records)
    if strong:
        prior = min(0.5, max(strong / DETERMINISTIC_RECALL / total_pairs, 1e-9))
        linker._settings_obj._probability_two_random_records_match = prior
    else:
        report.notes.append(
            "no near-certain pairs (same email, phone and last name, or full name with birth "
            "date or address) to estimate how often two records match: the default prior is "
            "used"
        )
    linker.training.estimate_u_using_random_sampling(
        max_pairs=min(U_MAX_PAIRS, total_pairs),
        seed=SEED,
        min_count_per_level=U_MIN_COUNT_PER_LEVEL,
    )
    for rule in blocks:
        linker.training.estimate_parameters_using_expectation_maximisation(
            f"({rule_sql(rule)}) AND {LINK_CONDITION}",
            estimate_without_term_frequencies=True,
            max_pairs=EM_MAX_PAIRS,
        )
    _bound_rare_levels(linker)
    report.trained = True
    return report


def _bound_rare_levels(linker) -> None:
    """Levels that sampling or EM never observed get their default m or u back (Splink would
    use 1e-6, a huge weight for a level that is merely rare); trained m values keep at least
    M_FLOOR."""
    from splink.internals.constants import LEVEL_NOT_OBSERVED_TEXT

    defaults = {(name, label): (m, u) for name, levels in COMPARISONS for label, _, m, u in levels}
    for comparison in linker._settings_obj.comparisons:
        for level in comparison._comparison_levels_excluding_null:
            m, u = defaults[(comparison.output_column_name, level.label_for_charts)]
            if level._m_probability == LEVEL_NOT_OBSERVED_TEXT:
                level.m_probability = m
            elif level.m_probability < M_FLOOR:
                level.m_probability = M_FLOOR
            if level._u_probability == LEVEL_NOT_OBSERVED_TEXT:
                level.u_probability = u
