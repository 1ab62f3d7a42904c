"""The Data page's column mapping form: for an uploaded file that is not in the contract's form,
the mapping to use (saved for its header, a preset, or proposed from names and values), an
editor of it, the first rows as they would load and the predicted rejects, and a name to save
it under. Everything it decides comes from `ccrm_core.foundation.ingest`.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from ccrm_core.foundation import store
from ccrm_core.foundation.ingest import (
    IngestError,
    MappingError,
    editing,
    mapping_for_header,
    mapping_to_toml,
    parse_mapping,
    preview_mapping,
    read_sample,
    saved_mappings,
)
from ccrm_core.foundation.ingest.mapping import (
    DATE_ORDERS,
    DECIMALS,
    ColumnMapping,
    preset,
    preset_names,
)
from ccrm_core.foundation.ingest.names import SizeLimit
from ccrm_core.foundation.ingest.propose import contract_table, propose
from ccrm_core.foundation.rendering import markdown_text
from ccrm_ui import db, tables

AUTO = "(suggested)"


@dataclass
class MappedUpload:
    """An upload with the mapping the user confirmed and the name to save it under (None: not
    saved); `mapping` None: the file is in the contract's form."""

    path: Path
    mapping: ColumnMapping | None = None
    save_as: str | None = None
    refused: bool = False  # the preview says the load would refuse the file


def upload_path(file, name: str) -> Path:
    """The upload's bytes in a folder of this session (one folder per upload, named after its
    id, so two uploads with the same name never meet); written once."""
    folder = st.session_state.get("_ccrm_upload_dir")
    if folder is None:
        folder = st.session_state["_ccrm_upload_dir"] = tempfile.TemporaryDirectory(
            prefix="ccrm-upload-"
        )
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "_", str(file.file_id))[:80]
    path = Path(folder.name) / safe_id / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.getbuffer())
    return path


def mapping_form(
    file, path: Path, limit: SizeLimit, table_choice: str | None, max_reject_rate: float
) -> MappedUpload:
    """The mapping form of one upload (nothing when it is in the contract's form)."""
    shown = file.name
    try:
        sample = read_sample(path, shown, limit)
    except IngestError:
        return MappedUpload(path)  # the load refuses it and says why
    if contract_table(sample.header, shown, table_choice) is not None:
        return MappedUpload(path)
    key = f"map_{file.file_id}"
    st.markdown(f"**Columns of {markdown_text(shown)}**")
    base, origin_note = _starting_mapping(file, sample, key, table_choice)
    if base is None:
        return MappedUpload(path)
    st.info(markdown_text(origin_note))
    tables = list(store.TABLES)
    table = st.selectbox(
        "Table this file fills", tables, index=tables.index(base.table), key=f"{key}_table"
    )
    if table != base.table:
        base = propose(sample, shown, table).mapping
    edited = st.data_editor(
        editing.mapping_rows(base),
        key=f"{key}_editor_{table}_{base.name}",
        hide_index=True,
        width="stretch",
        disabled=["column", "required"],
        column_config={
            "column": st.column_config.TextColumn("Contract column"),
            "required": st.column_config.CheckboxColumn("Required"),
            "file_column": st.column_config.SelectboxColumn(
                "From file column", options=["", *sample.header]
            ),
            "how": st.column_config.SelectboxColumn(
                "How", options=list(editing.HOW), help=_how_help()
            ),
            "more_columns": st.column_config.TextColumn(
                "More file columns", help="further file columns, separated by |"
            ),
            "constant": st.column_config.TextColumn("Constant"),
            "lower": st.column_config.CheckboxColumn("Lower-case"),
            "hashed": st.column_config.CheckboxColumn(
                "Hash", help="SHA-256 of the value: a key made of an e-mail shows no address"
            ),
        },
    )
    left, middle, right = st.columns(3)
    date_order = left.selectbox(
        "Dates read as",
        DATE_ORDERS,
        index=DATE_ORDERS.index(base.date_order),
        key=f"{key}_dates",
        help="YMD: 2025-03-04; DMY: 04/03/2025 (day first); MDY: 03/04/2025 (month first)",
    )
    decimal = middle.selectbox(
        "Decimal mark",
        DECIMALS,
        index=DECIMALS.index(base.decimal),
        key=f"{key}_decimal",
        help="'.': 1,234.50; ',': 1.234,50",
    )
    fold = right.selectbox(
        "One row per",
        ["(every row)", *sample.header],
        index=1 + sample.header.index(base.one_row_per) if base.one_row_per in sample.header else 0,
        key=f"{key}_fold",
        help="rows repeating this column's value fold into the first (line items of an order)",
    )
    try:
        confirmed = editing.mapping_from_rows(
            edited,
            base,
            date_order=date_order,
            decimal=decimal,
            one_row_per=None if fold == "(every row)" else fold,
            header=tuple(sample.header),
        )
    except MappingError as exc:
        st.error(markdown_text(exc))
        return MappedUpload(path, refused=True)
    refused = _preview(path, shown, confirmed, limit, max_reject_rate, key)
    save_as = _save_controls(confirmed, key)
    return MappedUpload(path, confirmed, save_as, refused)


def _starting_mapping(file, sample, key: str, table_choice: str | None):
    """The mapping the form starts from and a sentence saying where it came from."""
    saved_names = db.run(saved_mappings)["name"].tolist()
    options = [AUTO, *preset_names(), *saved_names]
    choice = st.selectbox("Start from", options, key=f"{key}_start")
    imported = st.file_uploader(
        "Or import a mapping file (.toml)", type=["toml"], key=f"{key}_toml"
    )
    if imported is not None:
        try:
            found = parse_mapping(imported.getvalue().decode("utf-8"), imported.name)
        except (MappingError, UnicodeDecodeError) as exc:
            st.error(markdown_text(exc))
            return None, ""
        return found, f"using the imported mapping {found.name!r}"
    if choice in saved_names and choice != AUTO:
        return db.run(_saved, choice), f"using saved mapping {choice!r}"
    if choice != AUTO:
        return preset(choice), f"using preset {choice!r}"
    saved = db.run(mapping_for_header, sample.header)
    if saved is not None and (table_choice is None or saved.table == table_choice):
        return saved, f"using saved mapping {saved.name!r} (made for files with this header)"
    proposal = propose(sample, file.name, table_choice)
    note = (
        "suggested from the column names and values: " if proposal.origin == "proposed" else ""
    ) + "; ".join(proposal.notes)
    return proposal.mapping, note


def _saved(con, name: str):
    from ccrm_core.foundation.ingest.mapping_store import saved_mapping

    return saved_mapping(con, name)


def _how_help() -> str:
    return "; ".join(f"{k}: {v}" for k, v in editing.HOW.items())


def _preview(path, shown, confirmed, limit, max_reject_rate, key) -> bool:
    """Show the first rows as they would load and the predicted rejects; True when the load
    would refuse the file."""
    cache = st.session_state.setdefault("_ccrm_previews", {})  # upload -> its latest preview
    signature = (mapping_to_toml(confirmed), max_reject_rate)
    if key not in cache or cache[key][0] != signature:
        cache[key] = (signature, preview_mapping(path, confirmed, shown, limit, max_reject_rate))
    preview = cache[key][1]
    report = preview.report
    st.caption("First rows as they would load (names, e-mails and phones masked)")
    tables.show_table(preview.rows, hide_index=True, width="stretch")
    if preview.refused:
        st.error("Would be refused: " + markdown_text(preview.reason))
    elif report.rows_rejected:
        st.warning(
            f"{report.rows_rejected:,} of {report.rows_read:,} rows would be rejected; "
            f"{report.rows_read - report.rows_rejected:,} would load into "
            f"{markdown_text(confirmed.table)}."
        )
    else:
        st.success(
            f"No rejects predicted: {report.rows_read:,} rows would load into "
            f"{markdown_text(confirmed.table)}."
        )
    if not preview.rejects.empty:
        tables.show_table(preview.rejects, hide_index=True, width="stretch")
    for warning in report.warnings:
        st.caption(markdown_text(warning))
    return preview.refused


def _save_controls(confirmed, key: str) -> str | None:
    """Name to save the mapping under on load (None: not saved), and its TOML download."""
    left, right = st.columns([3, 2])
    save = left.checkbox(
        "Save this mapping for the next file with these columns", value=True, key=f"{key}_save"
    )
    name = left.text_input("Mapping name", value=confirmed.name, key=f"{key}_name")
    right.download_button(
        "Download mapping (TOML)",
        mapping_to_toml(confirmed),
        file_name=re.sub(r"[^A-Za-z0-9_-]+", "_", confirmed.name).strip("_")[:60] + ".toml",
        mime="application/toml",
        key=f"{key}_download",
    )
    return name if save else None
