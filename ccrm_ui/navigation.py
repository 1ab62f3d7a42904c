"""The app's pages, by section. `app.py` builds st.navigation from this list.

Each entry: (section, file, title, icon, default). List a page only once it works with real data.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ccrm_core.foundation import access

PAGES: list[tuple[str, str, str, str, bool]] = [
    # --- Radar pages ---
    ("Radar", "app_pages/command_center.py", "Command Center", ":material/monitoring:", True),
    ("Radar", "app_pages/segment_explorer.py", "Segment Explorer", ":material/donut_small:", False),
    # --- Librarian pages ---
    ("Librarian", "app_pages/customer_360.py", "Customer 360", ":material/person_search:", False),
    (
        "Librarian",
        "app_pages/data_hygiene.py",
        "Data Hygiene",
        ":material/cleaning_services:",
        False,
    ),
    # --- Conductor pages ---
    ("Conductor", "app_pages/attribution.py", "Attribution", ":material/account_tree:", False),
    ("Conductor", "app_pages/budget_simulator.py", "Budget Simulator", ":material/savings:", False),
    # --- Data pages ---
    ("Data", "app_pages/data.py", "Data", ":material/database:", False),
]

SECTION_ORDER = ("Radar", "Librarian", "Conductor", "Data")


def visible_pages(user: access.User | None) -> list[tuple[str, str, str, str, bool]]:
    """The PAGES entries the user's role may open (ccrm_core.foundation.access, view_page:<file stem>)."""
    return [p for p in PAGES if access.allowed(user, f"view_page:{Path(p[1]).stem}")]


def build_pages(user: access.User | None) -> dict[str, list[st.Page]]:
    """st.navigation's sections, listing only the pages the user may open: a page left out
    cannot be reached by its URL either."""
    entries = visible_pages(user)
    has_default = any(p[4] for p in entries)
    sections: dict[str, list[st.Page]] = {s: [] for s in SECTION_ORDER}
    for i, (section, path, title, icon, default) in enumerate(entries):
        sections[section].append(
            st.Page(path, title=title, icon=icon, default=default or (not has_default and i == 0))
        )
    return {s: pages for s, pages in sections.items() if pages}


def page_paths() -> list[str]:
    return [p[1] for p in PAGES]
