"""Which loaded data (raw tables) each view of the app reads, named in users' words, and which
of it is missing: a page with partial data says exactly what would light it up."""

from __future__ import annotations

import duckdb

from ccrm_core.foundation import store

# What each raw table is, as a person loading files calls it.
INPUT_LABELS: dict[str, str] = {
    "src_customers": "customer records (names, e-mails, addresses)",
    "orders": "orders",
    "events": "marketing events (clicks, opens, visits)",
    "spend": "media spend",
    "consents": "consents (who may be contacted on which channel)",
    "campaigns": "campaigns",
    "experiments": "experiment assignments",
}

# view -> (its name in a sentence, the raw tables it needs, what each part reads).
VIEW_INPUTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "attribution": (
        "Attribution",
        ("events", "spend", "orders"),
        "Multi-touch attribution credits the marketing events before each order; the media mix "
        "model explains daily revenue from orders by media spend.",
    ),
    "budget_simulator": (
        "The Budget Simulator",
        ("spend", "orders"),
        "It moves budget along the media mix model's response curves, fitted on media spend and "
        "the revenue from orders.",
    ),
    "command_center": (
        "The Command Center",
        ("orders",),
        "Its KPIs, cohorts and trends are counted from orders.",
    ),
    "data_hygiene": (
        "Data Hygiene",
        ("src_customers",),
        "Hygiene scores and identity resolution check customer records.",
    ),
}


def loaded_inputs(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The raw tables holding at least one row."""
    return {
        name
        for name in store.TABLES
        if con.execute(f"SELECT EXISTS (SELECT 1 FROM {store.quote_ident(name)})").fetchall()[0][0]  # noqa: S608 contract names
    }


def missing_inputs(con: duckdb.DuckDBPyConnection, view: str) -> list[str]:
    """The raw tables `view` (a VIEW_INPUTS key) needs that hold no rows, in its order."""
    loaded = loaded_inputs(con)
    return [t for t in VIEW_INPUTS[view][1] if t not in loaded]


def missing_inputs_message(view: str, missing: list[str], may_load: bool = True) -> str:
    """One plain sentence: what `view` needs of the `missing` inputs and where to load them,
    then what each part reads; `may_load` False (not an admin) asks for an admin instead."""
    title, _, reads = VIEW_INPUTS[view]
    labels = [INPUT_LABELS[t] for t in missing]
    needs = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
    them = "them" if len(labels) > 1 else "it"
    where = (
        f"load {them} on the Data page"
        if may_load
        else f"ask an admin to load {them} on the Data page"
    )
    return f"{title} needs {needs}; {where}. {reads}"
