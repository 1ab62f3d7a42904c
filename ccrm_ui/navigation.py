"""The app's pages, by section (`app.py` builds st.navigation from this list), and the URL
state the pages share.

Each entry: (section, file, title, icon, default). List a page only once it works with real data.

URL state: a page's choices live in its query parameters, so a copied link reproduces the view.
On the first run of a session the URL seeds the widgets' state (`choice_from_params`,
`restore_widget`); a value the page does not know falls back to the default and is named in a
warning (`show_link_warnings`), never an exception; after the widgets are drawn the page writes
its choices back (`keep_in_url`), defaults left out so links stay short.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import streamlit as st

from ccrm_core.foundation import access
from ccrm_core.foundation.rendering import markdown_text
from ccrm_core.foundation.validation import quoted

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


APP_NAME = "Connected CRM"


def browser_title(page_title: str) -> str:
    """The browser tab's title on a page: the page first, so tabs stay told apart."""
    return f"{page_title} · {APP_NAME}"


def page_paths() -> list[str]:
    return [p[1] for p in PAGES]


# ---------------------------------------------------------------------------------------------
# URL state

_LISTED_CHOICES = 8  # a warning lists the choices when there are at most this many


def choice_from_params(
    params: Mapping[str, str], name: str, options: Sequence[str], default: str
) -> tuple[str, str | None]:
    """(value, warning) of query parameter `name`: its value when it is one of `options`, else
    `default` and a warning naming the value (quoted and shortened: a 100,000-character
    parameter must not fill the page); no warning when the parameter is absent or empty."""
    value = params.get(name)
    if not value:
        return default, None
    if value in options:
        return value, None
    if len(options) <= _LISTED_CHOICES:
        known = f"is not one of {', '.join(map(str, options))}"
    else:
        known = "is not in this data"
    return default, f"{name}={quoted(value)} {known}; using {default}"


def restore_widget(key: str, value: object) -> None:
    """Seed a widget's state from the URL on the first run of the session (later runs keep what
    the user chose: the URL follows the widgets, not the other way round)."""
    if key not in st.session_state:
        st.session_state[key] = value


def keep_in_url(params: Mapping[str, str]) -> None:
    """Make the page's query parameters exactly `params` (its non-default choices), writing
    only when they differ, so a rerun does not touch the browser history."""
    wanted = {k: str(v) for k, v in params.items()}
    if wanted != st.query_params.to_dict():
        st.query_params.from_dict(wanted)


def show_link_warnings(warnings: Sequence[str]) -> None:
    """One warning per part of the link that could not be applied."""
    for warning in warnings:
        st.warning(f"Link not fully applied: {markdown_text(warning)}.")
