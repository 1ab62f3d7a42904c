"""Data: what is loaded, the last build, ingest rejects, file upload and rebuild."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from ccrm_core.foundation import access, audit, charts, ingest, pipeline, privacy, store
from ccrm_core.foundation.rendering import markdown_text
from ccrm_ui import auth, column_mapping, db, tables

ERROR_QUOTE = 500  # characters of a stored build error shown in a message

user = auth.require_page(__file__)  # role check (ccrm_core.foundation.access)
st.title("Data")
st.caption(f"Database: {markdown_text(db.database_path())}")

summary = pd.DataFrame(db.cached(store.table_summary))
loaded, built = st.columns([3, 2])
with loaded:
    st.subheader("What is loaded")
    if summary["rows"].sum() == 0:
        st.info(
            "Nothing is loaded yet. Upload CSV or Parquet files below (see `sample_data/` for the "
            "format), or create a demo company with `ccrm sample`."
        )
    tables.show_table(
        summary.rename(
            columns={
                "table": "Table",
                "rows": "Rows",
                "first": "From",
                "last": "To",
                "about": "What",
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={"Rows": st.column_config.NumberColumn(format="localized")},
    )

with built:
    st.subheader("Last build")
    runs = db.cached(pipeline.last_build)
    if runs.empty:
        st.info("No build yet. Press **Rebuild** below, or run `ccrm build`.")
    else:
        failed = runs[runs["status"] == "failed"]
        when = runs["ended_at"].max()
        if failed.empty and (runs["status"] == "ok").all():
            st.success(f"Build {int(runs['run_id'].iloc[0])} finished {when:%Y-%m-%d %H:%M}")
        else:
            first = failed.iloc[0] if not failed.empty else runs.iloc[0]
            st.error(
                f"Stage **{markdown_text(first['stage'])}** failed: "
                f"{markdown_text(first['error'], ERROR_QUOTE)}. "
                "The previous outputs of every stage are intact."
            )
        st.plotly_chart(db.memo(charts.build_timings, runs), width="stretch")
        tables.show_table(
            runs[["stage", "status", "rows", "seconds", "error"]],
            hide_index=True,
            width="stretch",
        )

st.divider()
upload_col, rebuild_col = st.columns([3, 2])
FROM_NAME = "(from file name)"
PENDING_UPLOAD = "_data_pending_upload"  # an upload that replaces rows, awaiting its confirm
REBUILD_RESULT = "data_rebuild_result"  # the last rebuild's outcome, shown once after it
PENDING_REBUILD = "_data_pending_rebuild"  # the stages of a rebuild awaiting its confirm


def _accepted_uploads(files, limit: ingest.SizeLimit) -> list:
    """(file, name to store it under) of the uploads within the size limit and with a usable
    name; each other one gets its error (before anything is written: hostile input)."""
    accepted = []
    for f in files:
        try:
            ingest.check_upload_size(f.name, f.size, limit.mb)
            accepted.append((f, ingest.upload_file_name(f.name)))
        except ingest.IngestError as exc:
            st.error(markdown_text(exc))
    return accepted


def _copies(tmp: str, accepted: list) -> list[Path]:
    """The uploads written into `tmp`, keeping the user's file name (it names the table), each
    in a folder of its own: two uploads with the same name must not overwrite each other."""
    paths = []
    for number, (f, name) in enumerate(accepted):
        path = Path(tmp) / str(number) / name
        path.parent.mkdir()
        path.write_bytes(f.getbuffer())
        paths.append(path)
    return paths


def _replacements(accepted: list, limit: ingest.SizeLimit, table, rate: float) -> list:
    """What loading the accepted uploads would replace, counted without writing anything."""
    with tempfile.TemporaryDirectory(prefix="ccrm-upload-") as tmp:
        return db.run(
            ingest.replacements,
            _copies(tmp, accepted),
            table=table,
            max_reject_rate=rate,
            source_names=[f.name for f, _ in accepted],
            size_limit=limit,
            mappings=[
                mapped[f.file_id].mapping if f.file_id in mapped else None for f, _ in accepted
            ],
        )


def _load_uploads(accepted: list, limit: ingest.SizeLimit, table, rate: float) -> None:
    bar = st.progress(0.0, text="starting")
    with tempfile.TemporaryDirectory(prefix="ccrm-upload-") as tmp, db.write_lock("ingest"):
        reports = db.write(
            audit.ingest_files,  # checks the role and writes the audit log
            user,
            _copies(tmp, accepted),
            table=table,
            max_reject_rate=rate,
            progress=lambda frac, msg: bar.progress(
                min(max(frac, 0.0), 1.0), text=markdown_text(msg)
            ),
            source_names=[f.name for f, _ in accepted],
            size_limit=limit,  # on the unzipped bytes too (a gzip bomb)
            mappings=[
                mapped[f.file_id].mapping if f.file_id in mapped else None for f, _ in accepted
            ],
        )
    bar.empty()
    for r in reports:
        for w in r.warnings:
            st.warning(f"{markdown_text(r.file)}: {markdown_text(w)}")
        if r.status == "loaded":
            st.success(
                f"{markdown_text(r.file)} → {markdown_text(r.table)}: "
                f"{r.rows_loaded:,} rows loaded "
                f"({r.rows_replaced:,} replaced), {r.rows_rejected:,} rejected."
            )
        else:
            st.error(markdown_text(r.message))
    for (f, _), r in zip(accepted, reports, strict=True):
        upload = mapped.get(f.file_id)
        if r.ok and upload is not None and upload.mapping is not None and upload.save_as:
            try:
                named = dataclasses.replace(upload.mapping, name=upload.save_as)
                db.write(ingest.save_mapping, user, named)
                st.success(
                    f"Saved mapping {markdown_text(upload.save_as)}: the next file with "
                    "these columns uses it."
                )
            except ingest.MappingError as exc:
                st.error(markdown_text(exc))
    st.info("Press **Rebuild** to refresh the marts with the new data.")


def _answer(flag: str, answer: str) -> None:
    """A confirm step's button callback: the answer is read on the rerun it starts."""
    if st.session_state.get(flag) is not None:
        st.session_state[flag]["answer"] = answer


def _confirm(pending: str, label: str, yes: tuple[str, str], cancel_key: str) -> None:
    """The two buttons of a question kept under `pending`: `label` (key, answer) and Cancel."""
    left, right = st.columns(2)
    left.button(label, type="primary", key=yes[0], on_click=_answer, args=(pending, yes[1]))
    right.button("Cancel", key=cancel_key, on_click=_answer, args=(pending, "cancel"))


with upload_col:
    st.subheader("Upload files")
    try:
        form_limit = ingest.upload_limit()
    except ingest.IngestError:
        form_limit = None  # Load files names the bad setting
    server_mb = st.get_option("server.maxUploadSize")
    limit_mb = server_mb if form_limit is None else min(server_mb, form_limit.mb)
    st.caption(
        f"CSV (also .csv.gz) or Parquet, one raw table per file, up to {limit_mb:g} MB each "
        "(also once unzipped; CCRM_MAX_UPLOAD_MB sets the limit, `ccrm ingest` loads larger "
        "files). The table is taken from the file name (e.g. `orders_2025.csv`) unless you "
        "choose it. Rows that do not parse are rejected with their line and reason; a file with "
        "more rejects than the limit, a missing required column, or duplicate keys is refused "
        "whole and changes nothing. A row whose key is already loaded replaces the loaded row: "
        "you are asked to confirm first. A file exported from a shop, CRM or ad platform gets a "
        "column mapping first: check it, see the rows as they would load, then load."
    )
    writable = not db.read_only()
    files = st.file_uploader(
        "Files",
        type=["csv", "gz", "parquet"],
        accept_multiple_files=True,
        disabled=not writable,
        # the widget states and enforces the app's limit when it is below Streamlit's own
        max_upload_size=math.ceil(limit_mb) if math.ceil(limit_mb) < server_mb else None,
    )
    table_choice = st.selectbox("Table", [FROM_NAME, *store.TABLES], disabled=not writable)
    max_reject = st.number_input(
        "Refuse a file when more than this share of rows is rejected (%)",
        min_value=0.0,
        max_value=100.0,
        value=1.0,
        step=0.5,
        disabled=not writable,
    )
    if not writable:
        st.warning(
            "The app opened the database read-only (CCRM_READ_ONLY=1 or a read-only file): "
            "uploads and rebuilds are off."
        )
    mapped: dict[str, column_mapping.MappedUpload] = {}
    if files and writable:
        for f in files if form_limit is not None else []:
            try:
                ingest.check_upload_size(f.name, f.size, form_limit.mb)
                clean = ingest.upload_file_name(f.name)
            except ingest.IngestError:
                continue  # Load files says why
            mapped[f.file_id] = column_mapping.mapping_form(
                f,
                column_mapping.upload_path(f, clean),
                form_limit,
                None if table_choice == FROM_NAME else table_choice,
                max_reject / 100,
            )
    target = None if table_choice == FROM_NAME else table_choice
    # what the confirm answers: the same files, table, reject share and mappings
    upload = (
        tuple(f.file_id for f in files or []),
        table_choice,
        max_reject,
        tuple(repr(m.mapping) for m in mapped.values()),
    )
    pending = st.session_state.get(PENDING_UPLOAD)
    if pending is not None and (pending["upload"] != upload or not writable):
        pending = st.session_state[PENDING_UPLOAD] = None  # the upload changed: ask again
    load = st.button("Load files", type="primary", disabled=not (files and writable))
    if pending is not None and pending["answer"] == "cancel":
        st.session_state[PENDING_UPLOAD] = None
        st.info("Upload cancelled: nothing was loaded.")
    elif load or (pending is not None and pending["answer"] == "replace"):
        st.session_state[PENDING_UPLOAD] = None
        try:
            limit = ingest.upload_limit()  # a bad CCRM_MAX_UPLOAD_MB is named, nothing loads
        except ingest.IngestError as exc:
            st.error(markdown_text(exc))
            st.stop()
        accepted = _accepted_uploads(files, limit)
        counts = _replacements(accepted, limit, target, max_reject / 100) if load else []
        if any(c.replaced for c in counts):  # confirmed first; a load that only adds goes on
            st.session_state[PENDING_UPLOAD] = {"upload": upload, "counts": counts, "answer": ""}
        else:
            _load_uploads(accepted, limit, target, max_reject / 100)
    pending = st.session_state.get(PENDING_UPLOAD)
    if pending is not None and not pending["answer"]:
        replaced = sum(c.replaced for c in pending["counts"])
        st.warning(
            "  \n".join(markdown_text(c.sentence()) for c in pending["counts"] if c.replaced)
            + "  \nThe file's version of each of these rows replaces the loaded one; loaded "
            "rows the file does not mention are kept. Nothing changes until you confirm."
        )
        _confirm(
            PENDING_UPLOAD,
            f"Replace {replaced:,} rows" if replaced != 1 else "Replace 1 row",
            ("data_replace_rows", "replace"),
            "data_replace_cancel",
        )

with rebuild_col:
    st.subheader("Rebuild")
    st.caption(
        "Runs every pipeline stage in order; each stage commits on its own, so pages keep "
        "showing the previous results until a stage has finished."
    )
    stage = st.selectbox("Stages", ["all stages", *pipeline.stage_names()])
    rebuild = st.session_state.get(PENDING_REBUILD)
    if rebuild is not None and (rebuild["stage"] != stage or not writable):
        rebuild = st.session_state[PENDING_REBUILD] = None  # another choice: ask again
    if REBUILD_RESULT in st.session_state:
        kind, text = st.session_state.pop(REBUILD_RESULT)
        (st.error if kind == "error" else st.success)(text)
    if st.button("Rebuild", disabled=not writable):
        rebuild = st.session_state[PENDING_REBUILD] = {"stage": stage, "answer": ""}
    if rebuild is not None and rebuild["answer"] == "cancel":
        st.session_state[PENDING_REBUILD] = None
        st.info("Rebuild cancelled: nothing was built.")
    elif rebuild is not None and rebuild["answer"] == "now":
        st.session_state[PENDING_REBUILD] = None
        bar = st.progress(0.0, text="starting")

        def show(stage_name: str, index: int, total: int) -> None:
            text = "done" if stage_name == "done" else f"{stage_name} ({index + 1}/{total})"
            bar.progress(index / total if total else 1.0, text=text)

        with db.write_lock("rebuild"):
            results = db.write(  # checks the role and writes the audit log
                audit.build, user, None if stage == "all stages" else [stage], progress=show
            )
        bar.empty()
        failed = [r for r in results if r.status == "failed"]
        # shown after the rerun below (which refreshes every cached number on the page)
        st.session_state[REBUILD_RESULT] = (
            (
                "error",
                f"Stage {markdown_text(failed[0].stage)} failed: "
                f"{markdown_text(failed[0].error, ERROR_QUOTE)}",
            )
            if failed
            else (
                "success",
                f"Built {len(results)} stages in {sum(r.seconds for r in results):.1f} s",
            )
        )
        st.rerun()
    elif rebuild is not None:
        stages = (
            pipeline.STAGES
            if stage == "all stages"
            else [s for s in pipeline.STAGES if s.name == stage]
        )
        names = {s.name for s in stages}
        took = (
            runs.loc[runs["stage"].isin(names), "seconds"].sum()
            if not runs.empty and names <= set(runs["stage"])
            else None
        )
        st.warning(
            (
                f"Rebuild all {len(stages)} stages, in order: "
                + ", ".join(markdown_text(s.name) for s in stages)
                + ". This recomputes customers, hygiene checks, KPIs, values, segments, journeys, "
                "attribution, the media mix model and next best actions from the loaded data."
                if len(stages) > 1
                else f"Rebuild the stage {markdown_text(stages[0].name)}: "
                f"{markdown_text(stages[0].description)}. "
                "Later stages keep their results until they are rebuilt."
            )
            + " Pages keep showing the previous results until each stage has finished"
            + (f"; the last build of these stages took {took:,.0f} s." if took else ".")
        )
        _confirm(PENDING_REBUILD, "Rebuild now", ("data_rebuild_now", "now"), "data_rebuild_cancel")


def _reveal_rejects(con, who: access.User, target: str, rows: int) -> None:
    started = audit.require(con, who, "reveal_pii", target, "app")
    audit.record(con, who, "reveal_pii", target, rows, started_at=started)


def _rejects_in_clear(ingest_id: int, rejects: pd.DataFrame) -> bool:
    """Whether the rejected values are shown as the file held them: to roles that may reveal
    personal data (admins), who need the value to fix the file; showing personal values is
    recorded in the audit log once per session and ingest. Others see personal values masked."""
    if not access.allowed(user, "reveal_pii"):
        st.caption("Rejected values of personal fields are masked for your role.")
        return False
    personal = rejects["column_name"].isin(privacy.PII_COLUMNS) & rejects["value"].notna()
    done = st.session_state.setdefault("_data_revealed_rejects", set())
    if personal.any() and ingest_id not in done:
        try:
            db.write(
                _reveal_rejects, user, f"rejected values of ingest {ingest_id}", int(personal.sum())
            )
        except (access.AccessDenied, audit.AuditUnavailable) as exc:
            st.caption(f"Rejected values of personal fields stay masked: {markdown_text(exc)}")
            return False
        done.add(ingest_id)
    st.caption(
        "Rejected values are shown as the file held them, personal data included (shown to "
        "admins only; written to the audit log)."
    )
    return True


st.divider()
st.subheader("Ingest history and rejected rows")
history = db.cached(ingest.ingest_history)
if history.empty:
    st.caption("No files ingested through `ccrm ingest` or this page yet.")
else:
    tables.show_table(  # the counts and status first, the long message last
        history,
        column_order=["ingest_id", "file_name", "table_name", "status", "rows_read",
                      "rows_loaded", "rows_rejected", "started_at", "ended_at", "message"],
        column_config={
            "ingest_id": st.column_config.NumberColumn("Ingest", format="%d", width="small"),
            "file_name": st.column_config.TextColumn("File", width="medium"),
            "table_name": st.column_config.TextColumn("Table", width="small"),
            "status": st.column_config.TextColumn("Status", width="small"),
            "started_at": st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm"),
            "ended_at": st.column_config.DatetimeColumn("Ended", format="YYYY-MM-DD HH:mm"),
            "message": st.column_config.TextColumn("Message", width="large"),
        },
    )  # fmt: skip
    with_rejects = history[history["rows_rejected"].fillna(0) > 0]
    if with_rejects.empty:
        st.caption("No rejected rows.")
    else:
        choice = st.selectbox(
            "Show rejected rows of",
            with_rejects["ingest_id"].tolist(),
            format_func=lambda i: (
                f"#{i} {history.set_index('ingest_id').at[i, 'file_name']} "
                f"({int(history.set_index('ingest_id').at[i, 'rows_rejected']):,} rejected)"
            ),
        )
        page_size = 50
        total = db.cached(ingest.rejected_value_count, int(choice))
        page = st.number_input(
            "Page", min_value=1, max_value=max(1, -(-total // page_size)), value=1, step=1
        )
        rejects = db.cached(ingest.rejected_rows, int(choice), page_size, (page - 1) * page_size)
        if not _rejects_in_clear(int(choice), rejects):
            rejects["value"] = [
                privacy.mask_value(c, v)
                for c, v in zip(rejects["column_name"], rejects["value"], strict=True)
            ]
        tables.show_table(rejects, hide_index=True, width="stretch")

# --- audit log: who revealed, exported, ingested or rebuilt what; admins only ---
st.divider()
st.subheader("Audit log")
try:
    entries = db.run(audit.audit_entries, user, 500)  # uncached: an export changes no data version
except access.AccessDenied:
    st.caption("The audit log is shown to admins only.")
else:
    st.caption(
        "Every PII reveal, export, ingest and rebuild, from this app and from the `ccrm` command "
        "line, newest first (the latest 500). Refused attempts are listed with status refused."
    )
    if entries.empty:
        st.caption("Nothing recorded yet.")
    else:
        tables.show_table(
            entries.drop(columns=["audit_id"]),
            hide_index=True,
            width="stretch",
            column_config={"rows": st.column_config.NumberColumn(format="localized")},
        )
