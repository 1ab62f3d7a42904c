"""Data Hygiene (Librarian): hygiene scores, checks and failing rows; identity resolution."""

from __future__ import annotations

import streamlit as st

from ccrm_core.foundation import access, audit, privacy
from ccrm_core.foundation.rendering import markdown_text
from ccrm_core.librarian import hygiene, identity
from ccrm_ui import auth, db, inputs, tables

user = auth.require_page(__file__)  # role check (ccrm_core.foundation.access)
st.title("Data Hygiene")
st.caption(
    "How clean the customer data is, per dimension and source system, and how source records "
    "resolve into customers. Names, emails and phones are shown masked."
)
inputs.show_missing_inputs("data_hygiene", user)


def _delta(now: float | None, before: float | None) -> str | None:
    if now is None or before is None:
        return None
    return f"{now - before:+.1f}"


# --- scores -----------------------------------------------------------------------------------
if not db.cached(hygiene.has_checks):
    st.info(db.missing_output("hygiene results", ["hygiene"], "customer records (src_customers)"))
else:
    scores = db.cached(hygiene.latest_scores)
    previous = scores["previous"] or {}
    st.subheader(f"Hygiene score (build {scores['run_id']})")
    cols = st.columns(1 + len(hygiene.DIMENSIONS))
    if scores["overall"] is None:
        st.info("No customer records were checked in this build.")
    cols[0].metric(
        "Overall",
        "n/a" if scores["overall"] is None else f"{scores['overall']:.1f}",
        _delta(scores["overall"], previous.get("overall")),
        help="Mean of the five dimension scores; change since the previous build.",
    )
    for col, dim in zip(cols[1:], hygiene.DIMENSIONS, strict=True):
        now = scores["by_dimension"].get(dim)
        col.metric(
            dim.capitalize(),
            "n/a" if now is None else f"{now:.1f}",
            _delta(now, previous.get("by_dimension", {}).get(dim)),
        )
    if scores["by_source"]:
        st.markdown("**By source system**")
        src_cols = st.columns(len(scores["by_source"]))
        for col, (source, value) in zip(src_cols, scores["by_source"].items(), strict=True):
            col.metric(
                markdown_text(source),
                f"{value:.1f}",
                _delta(value, previous.get("by_source", {}).get(source)),
            )
    with st.expander("How the score is computed"):
        st.markdown(
            "- **Check score** = 100 × (1 − failed rows / rows checked).\n"
            "- **Dimension score** = mean of its check scores (completeness, validity, "
            "consistency, uniqueness, recency).\n"
            "- **Overall** = mean of the dimension scores; a **source score** applies the same "
            "formula to one source system's rows.\n\n"
            "Every check counts equally, so one broken key is not drowned by many clean fields."
        )

    run_ids = db.cached(hygiene.runs)
    checks = db.cached(hygiene.checks_for_run, run_ids[-1])
    before = db.cached(hygiene.checks_for_run, run_ids[-2]) if len(run_ids) > 1 else None

    st.markdown("**Table × field** (mean check score, 0–100)")
    st.plotly_chart(
        db.memo(hygiene.figure_field_heatmap, hygiene.field_scores(checks)), width="stretch"
    )
    st.markdown("**Trend across builds**")
    st.plotly_chart(
        db.memo(hygiene.figure_score_trend, db.cached(hygiene.score_trend)), width="stretch"
    )

    st.subheader("Checks")
    table = hygiene.check_table(checks, before)
    tables.show_table(
        table.drop(columns=["check_id"]),
        hide_index=True,
        width="stretch",
        column_config={
            "score": st.column_config.ProgressColumn(
                "Score", min_value=0, max_value=100, format="%.1f"
            ),
            "change": st.column_config.NumberColumn("Change", format="%+.1f"),
            "failed_rows": st.column_config.NumberColumn("Failed rows", format="%,.0f"),
            "total_rows": st.column_config.NumberColumn("Rows checked", format="%,.0f"),
        },
    )
    failing = table[table["failed_rows"] > 0]
    if failing.empty:
        st.success("No check has failing rows.")
    elif not access.allowed(user, "view_records"):
        st.caption("Failing-row samples are not shown to your role (aggregates only).")
    else:
        labels = {
            r.check_id: f"{r.check_id} — {r.failed_rows:,} failing ({r.description})"
            for r in failing.itertuples()
        }
        check_id = st.selectbox(
            "Drill into a check", list(labels), format_func=labels.get, key="hygiene_check"
        )
        sample = db.cached(hygiene.failing_rows, check_id, None, 50)
        st.caption(f"First {len(sample)} of {markdown_text(labels[check_id].split(' — ')[1])}")
        tables.show_table(privacy.mask_frame(sample), hide_index=True, width="stretch")
        if access.allowed(user, "download_failing_rows") and st.button(
            "Prepare a download of all failing rows (CSV, masked)", key="hygiene_prepare"
        ):
            try:  # checked and written to the audit log in the core
                data = db.write(hygiene.download_failing_rows, user, check_id)
            except (access.AccessDenied, audit.AuditUnavailable) as exc:
                st.error(markdown_text(exc))
            else:
                st.session_state["hygiene_download"] = (check_id, data)
        prepared = st.session_state.get("hygiene_download")
        if prepared and prepared[0] == check_id:
            st.download_button(
                "Download all failing rows (CSV, masked)",
                data=prepared[1],
                file_name=f"hygiene_{check_id.replace('*', 'row')}.csv",
                mime="text/csv",
            )

# --- identity ---------------------------------------------------------------------------------
st.divider()
st.header("Identity resolution")
if not db.cached(identity.is_resolved):
    st.info(
        db.missing_output(
            "resolved customers", ["standardise", "identity"], "customer records (src_customers)"
        )
    )
    st.stop()

summary = db.cached(identity.summary)
run = db.cached(identity.latest_run)
m = st.columns(4)
m[0].metric("Source records", f"{summary['records']:,}")
m[1].metric("Customers", f"{summary['customers']:,}")
m[2].metric(
    "Duplicate records", f"{summary['duplicate_rate']:.1%}", help="1 − customers / source records"
)
linked_share = (
    summary["anonymous_linked"] / summary["anonymous_ids"] if summary["anonymous_ids"] else 0
)
m[3].metric(
    "Anonymous ids linked",
    f"{linked_share:.0%}",
    help=f"{summary['anonymous_linked']:,} of {summary['anonymous_ids']:,} cookies and devices "
    "linked to a customer by a login event.",
)

left, right = st.columns(2)
with left:
    st.markdown("**Match rate by method** (share of source records / of anonymous ids)")
    tables.show_table(
        summary["by_method"],
        hide_index=True,
        width="stretch",
        column_config={"share": st.column_config.NumberColumn("Share", format="percent")},
    )
with right:
    st.markdown("**Cluster sizes**")
    st.plotly_chart(
        db.memo(identity.figure_cluster_sizes, summary["cluster_sizes"]), width="stretch"
    )
st.markdown("**Duplicates found per source**")  # full width: five columns do not fit in half
tables.show_table(summary["by_source"], hide_index=True, width="stretch")

st.subheader("Match threshold")
st.caption(
    f"The build linked pairs with match probability ≥ {run['threshold']:.3f} (the identity "
    "match threshold setting). Move the slider to see how many customers another threshold would "
    "give, from the stored pairwise predictions (no re-run)."
)
curve = db.cached(identity.threshold_curve)
threshold = st.slider(
    "Match threshold",
    min_value=float(round(run["pair_floor"], 3)),
    max_value=1.0,
    value=float(run["threshold"]),
    step=0.005,
    format="%.3f",
    key="identity_threshold",
)
at = identity.customers_at_threshold(curve, threshold)
built = identity.customers_at_threshold(curve, float(run["threshold"]))
t1, t2 = st.columns([1, 3])
t1.metric("Customers at this threshold", f"{at:,}", f"{at - built:+,}", delta_color="off")
t2.plotly_chart(db.memo(identity.figure_threshold_curve, curve, threshold), width="stretch")

st.subheader("Why did a pair match?")
pairs = db.cached(identity.matched_pairs, threshold, 200)
if not access.allowed(user, "view_records"):
    st.caption("Matched record pairs are not shown to your role (aggregates only).")
elif pairs.empty:
    st.info("No probabilistic pair reaches this threshold; lower it to inspect pairs.")
else:
    options = {
        (int(p.uid_l), int(p.uid_r)): (
            f"{p.source_system_l}:{p.source_id_l} ↔ {p.source_system_r}:{p.source_id_r} "
            f"(p = {p.match_probability:.4f})"
        )
        for p in pairs.itertuples()
    }
    chosen = st.selectbox(
        "Matched pair (weakest first)", list(options), format_func=options.get, key="pair"
    )
    steps = db.cached(identity.pair_explanation, *chosen)
    w1, w2 = st.columns([3, 2])
    w1.plotly_chart(db.memo(identity.figure_match_waterfall, steps), width="stretch")
    w2.dataframe(steps, hide_index=True, width="stretch")
    records = db.cached(identity.pair_records, *chosen)
    shown = ["side", "source_system", "source_id", "first_name", "last_name", "email", "phone",
             "address_line", "city", "postal_code", "birth_date"]  # fmt: skip
    tables.show_table(privacy.mask_frame(records[shown]), hide_index=True, width="stretch")

notes = identity.training_notes(run)
with st.expander("How matching adapted to the fields in your data"):
    st.markdown(
        "Candidate pairs come from blocking rules on the fields your records fill; the model "
        "is trained on blocks where most pairs are the same person."
    )
    for label, text in (
        ("Blocking rules", run.get("blocking_rules")),
        ("Trained on", run.get("training_blocks")),
    ):
        if isinstance(text, str) and text:
            st.markdown(f"**{label}:** " + markdown_text(text))
    for note in notes:
        st.markdown("- " + markdown_text(note))
    if not notes:
        st.caption("Every compared field was trained on your data.")

# --- clusters to review and manual decisions ---------------------------------------------------
st.subheader("Customers to review")
st.caption(
    "Customers built from two or more source records, riskiest first: the lowest **weakest "
    "link** (the match probability at which the customer would split in two), then the lowest "
    "**density** (share of its record pairs linked directly), then the most records."
)
if not access.allowed(user, "view_records"):
    st.caption("Customer clusters are not shown to your role (aggregates only).")
    st.stop()
clusters = db.cached(identity.riskiest_clusters, 200)
if clusters.empty:
    st.info("No customer holds more than one source record.")
else:
    tables.show_table(
        clusters[["customer_id", "records", "links", "density", "weakest_link"]],
        hide_index=True,
        width="stretch",
        column_config={
            "customer_id": st.column_config.TextColumn("Customer"),
            "records": st.column_config.NumberColumn("Source records"),
            "links": st.column_config.NumberColumn("Direct links"),
            "density": st.column_config.NumberColumn("Density", format="percent"),
            "weakest_link": st.column_config.NumberColumn("Weakest link", format="%.4f"),
        },
    )
    review = {
        r.customer_id: f"{r.customer_id} — {r.records} records, weakest link {r.weakest_link:.4f}"
        for r in clusters.itertuples()
    }
    customer_id = st.selectbox(
        "Customer to review", list(review), format_func=review.get, key="review_customer"
    )
    row = clusters.set_index("customer_id").loc[customer_id]
    members = db.cached(identity.customer_records, customer_id)
    tables.show_table(privacy.mask_frame(members), hide_index=True, width="stretch")
    st.caption(
        f"Weakest link: {markdown_text(row['weakest_source_system_l'])}:"
        f"{markdown_text(row['weakest_source_id_l'])} ↔ "
        f"{markdown_text(row['weakest_source_system_r'])}:"
        f"{markdown_text(row['weakest_source_id_r'])} (p = {row['weakest_link']:.4f})."
    )

st.subheader("Manual decisions")
st.caption(
    "Force two source records apart (different people) or together (the same person). Each "
    "decision is written to the audit log and applied on every rebuild; customer ids stay: "
    "after a split, the part with most of the customer's records keeps the id."
)
DECISION_LABELS = {
    "split": "Different people (force apart)",
    "link": "Same person (force together)",
    "clear": "Undo an earlier decision (back to the matcher)",
}
if access.allowed(user, "override_identity"):
    suggested = (
        [f"{s}:{i}" for s, i in zip(members["source_system"], members["source_id"], strict=True)]
        if not clusters.empty
        else []
    )
    with st.form("identity_override"):
        decision = st.radio(
            "Decision", list(DECISION_LABELS), format_func=DECISION_LABELS.get, key="decision"
        )
        first = st.text_input(
            "First record (source system:source id)",
            value=suggested[0] if suggested else "",
            key="override_first",
        )
        second = st.text_input(
            "Second record (source system:source id)",
            value=suggested[1] if len(suggested) > 1 else "",
            key="override_second",
        )
        note = st.text_input("Why (optional)", key="override_note", max_chars=500)
        submitted = st.form_submit_button("Save decision", key="override_save")
    if submitted:
        try:
            override_id = db.write(
                identity.record_override,
                user,
                decision,
                identity.parse_record_key(first),
                identity.parse_record_key(second),
                note,
            )
        except (ValueError, access.AccessDenied, audit.AuditUnavailable) as exc:
            st.error(markdown_text(exc))
        else:
            st.success(
                f"Decision {override_id} saved; it takes effect at the next rebuild of the "
                "`identity` stage."
            )
else:
    st.caption("Your role cannot record identity decisions.")
decisions = db.run(identity.current_overrides)
if decisions.empty:
    st.caption("No manual decisions in force.")
else:
    shown = decisions.assign(
        decision=decisions["decision"].map(DECISION_LABELS),
        note=decisions["note"].map(privacy.mask_text),
    ).drop(columns=["override_id"])
    if not access.allowed(user, "view_audit_log"):  # who did what: admins only, as the log
        shown = shown.drop(columns=["actor"])
    tables.show_table(shown, hide_index=True, width="stretch")
