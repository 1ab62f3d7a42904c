"""A page's notice when data it reads is not loaded: what is missing, in users' words, and a
link to the Data page where it is loaded (ccrm_core.foundation.inputs)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ccrm_core.foundation import access, inputs
from ccrm_ui import db

DATA_PAGE = Path(__file__).resolve().parent.parent / "app_pages" / "data.py"


def show_missing_inputs(view: str, user: access.User | None) -> list[str]:
    """Show an info naming the inputs `view` lacks and, for a user who may open it, a link to
    the Data page; returns the missing raw tables (empty: nothing shown)."""
    missing = db.cached(inputs.missing_inputs, view)
    if not missing:
        return missing
    may_load = access.allowed(user, "view_page:data")
    st.info(inputs.missing_inputs_message(view, missing, may_load))
    if may_load:
        # the same file st.navigation registers (app.py), so the link opens that page
        st.page_link(
            st.Page(DATA_PAGE, title="Data", icon=":material/database:"),
            label="Load data on the Data page",
            icon=":material/upload_file:",
        )
    return missing
