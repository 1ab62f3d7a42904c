"""The Segment Explorer's export to an ad platform (Google Ads Customer Match, Meta Custom
Audience): who can be sent and why not, an optional named activation with a holdout, and the
files to download. Everything it decides comes from `ccrm_core.conductor.audience`.
"""

from __future__ import annotations

import streamlit as st

from ccrm_core.conductor import audience
from ccrm_core.foundation import access, audit
from ccrm_core.foundation.access import User
from ccrm_core.foundation.rendering import markdown_text
from ccrm_ui import db, tables

DESTINATION_LABELS = {
    "generic": "One channel (hashed file)",
    "google_ads": "Google Ads Customer Match",
    "meta": "Meta Custom Audience",
}
FILE_COLUMNS = {
    "google_ads": "Email, Phone (E.164), First Name, Last Name: SHA-256 of the values written as "
    "Google documents (lower-case; Gmail dots removed); Country and Zip in clear.",
    "meta": "EMAIL, PHONE (digits with country code), FN, LN, ZIP, CT, ST, COUNTRY, DOBY, GEN: "
    "SHA-256 of the values written as Meta documents; EXTERN_ID (customer id) and VALUE (12-month "
    "CLV) in clear.",
}


def destination_export(user: User, scheme: str, segment: str, destination: str, read) -> None:
    """The Google Ads / Meta export: who can be sent and why not, an optional activation with a
    holdout, and the files to download. `read(fn, *args)` runs a query the way the page caches."""
    built = read(audience.build_destination_audience, scheme, segment, destination)
    e1, e2, e3 = st.columns(3)
    e1.metric("Members", f"{built.members:,}")
    e2.metric("People who can be sent", f"{len(built.people):,}")
    e3.metric("Left out", f"{built.excluded:,}")
    if built.excluded:
        tables.show_table(
            built.exclusions.rename(columns={"reason": "Left out because", "customers": "People"}),
            hide_index=True,
            width="stretch",
        )
    st.caption(
        f"File columns: {FILE_COLUMNS[destination]} Every email and phone linked to a person is "
        "sent, one per row. People in the EEA, the UK or Switzerland need a recorded consent to "
        "ad_user_data and ad_personalization. Every export is written to the audit log."
    )
    a1, a2 = st.columns([2, 1])
    name = a1.text_input(
        "Remember as activation (optional)",
        max_chars=audience.ACTIVATION_NAME_MAX,
        help="A named activation remembers who was sent, so the next export also gives the "
        "people to add and remove since the last one.",
        key="activation_name",
    ).strip()
    stored = db.run(audience.find_activation, name) if name else None
    if stored is None:
        share = a2.slider(
            "Hold out (not sent, for measuring)",
            0,
            int(audience.HOLDOUT_MAX * 100),
            0,
            5,
            format="%d%%",
            disabled=not name,
            key="activation_holdout",
        )
    else:
        share = round(float(stored["holdout_share"]) * 100)
        a2.metric("Held out", f"{share}%")
    clear_text = access.allowed(user, "export_clear_text") and st.checkbox(
        "Clear text instead of hashes (admins only; recorded as such)",
        key="destination_clear_text",
    )
    request = (scheme, segment, destination, name, share, clear_text)
    if st.button(
        f"Prepare export of {len(built.people):,} people",
        disabled=len(built.people) == 0 or not access.allowed(user, "export_audience"),
        key="destination_prepare",
    ):
        try:
            export = db.write(
                audience.export_destination,
                user,
                scheme,
                segment,
                destination,
                activation=name or None,
                holdout=(share / 100.0) if name and stored is None else None,
                clear_text=clear_text,
            )
        except (access.AccessDenied, audit.AuditUnavailable, ValueError) as exc:
            st.error(markdown_text(exc))
        else:
            files = [("all", export.rows)]
            if export.sync is not None:
                files += [("adds", export.sync.adds), ("removes", export.sync.removes)]
            st.session_state["destination_files"] = (
                request,
                export.sync,
                [(kind, len(frame), audience.audience_csv(frame)) for kind, frame in files],
            )
    prepared = st.session_state.get("destination_files")
    if prepared and prepared[0] == request:
        sync = prepared[1]
        if sync is not None:
            st.success(
                markdown_text(
                    f"Export {sync.run} of activation {sync.activation}: {sync.sent:,} people "
                    f"sent, {sync.held_out:,} held out, {sync.added:,} added and "
                    f"{sync.removed:,} removed since the last export."
                )
            )
        stem = audience.file_stem(destination, segment, name)
        labels = {"all": "whole audience", "adds": "to add", "removes": "to remove"}
        for kind, rows, data in prepared[2]:
            st.download_button(
                f"Download {labels[kind]}: {rows:,} rows (CSV"
                + (", clear text)" if clear_text and kind != "removes" else ", hashed)"),
                data=data,
                file_name=f"{stem}{'' if kind == 'all' else '.' + kind}.csv",
                mime="text/csv",
                key=f"destination_download_{kind}",
            )
