"""Segment Explorer (Radar): who the customers are, what they are worth, and audiences to act on.

Schemes: RFM segments, value tiers (12-month discounted CLV), needs-based segments, and the
user's saved rule segments. Every number comes from ccrm_core.radar.segments / value / audience.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from ccrm_core.conductor import audience
from ccrm_core.foundation import access, audit, formatting, provenance
from ccrm_core.foundation.rendering import markdown_text
from ccrm_core.radar import segments, value
from ccrm_ui import audience_export, auth, db, navigation, tables

user = auth.require_page(__file__)  # role check (ccrm_core.foundation.access)
st.title("Segment Explorer")
st.caption(
    "Who the customers are and what they are worth: RFM segments, value tiers from the "
    "12-month discounted lifetime value (BG/NBD x Gamma-Gamma), needs-based segments from "
    "behaviour, and your own rule segments. Export an audience for a channel, consent applied."
)

if not db.cached(segments.mart_ready):
    st.info(
        db.missing_output(
            "customer segments (mart_customer)", ["value", "segments"], "customers and orders"
        )
    )
    st.stop()


money = formatting.money


base = db.cached(segments.base_totals)
m1, m2, m3, m4, m5 = st.columns(5)
m1.metric("Customers", f"{base['customers']:,}")
m2.metric("Buyers", f"{base['buyers']:,}")
m3.metric("Revenue (all time)", money(base["revenue"]))
m4.metric("Avg CLV (12 months)", money(base["avg_clv"]))
m5.metric("Avg P(alive)", f"{base['avg_prob_alive']:.0%}")

saved = db.run(segments.saved_segments)  # uncached: saving does not change the data version
scheme_options = list(segments.SCHEMES) + ([segments.SAVED_SCHEME] if len(saved) else [])
scheme_labels = {**segments.SCHEMES, segments.SAVED_SCHEME: "Saved rule segments"}

# URL -> widgets (first run of a session) -> URL, as on the Command Center and Attribution
url = st.query_params.to_dict()
link_warnings: list[str] = []
url_scheme, problem = navigation.choice_from_params(url, "scheme", scheme_options, "rfm_segment")
link_warnings += [problem] if problem else []
navigation.restore_widget("scheme", url_scheme)
if st.session_state["scheme"] not in scheme_options:  # a saved segment scheme emptied since
    st.session_state["scheme"] = "rfm_segment"
scheme = st.selectbox("Segment scheme", scheme_options, format_func=scheme_labels.get, key="scheme")


def read(fn, *args):
    """Cached per data version, except for saved segments: saving one does not change the data
    version, so anything that reads saved_segments runs uncached."""
    return db.run(fn, *args) if scheme == segments.SAVED_SCHEME else db.cached(fn, *args)


def saved_segment_manager(saved) -> None:
    """The saved segments in words, and renaming, editing and deleting one (each audited)."""
    if not len(saved):
        return
    st.subheader("Saved segments")
    tables.show_table(
        saved[["name", "sentence", "customers", "updated_at"]],
        hide_index=True,
        width="stretch",
        key="saved_table",
        column_config={
            "name": st.column_config.TextColumn("Segment"),
            "sentence": st.column_config.TextColumn("Rule"),
            "customers": st.column_config.NumberColumn("Customers when saved", format="localized"),
            "updated_at": st.column_config.DatetimeColumn("Last saved"),
        },
    )
    chosen = st.selectbox("Saved segment", list(saved["name"]), key="saved_pick")
    row = saved[saved["name"] == chosen].iloc[0]
    disabled = db.read_only() or not access.allowed(user, "save_segment")
    m1, m2, m3, m4 = st.columns([3, 1, 1, 1])
    new_name = m1.text_input(
        "New name", max_chars=segments.SEGMENT_NAME_MAX, key="saved_new_name"
    ).strip()
    if m2.button("Rename", disabled=disabled or not new_name, key="saved_rename"):
        try:
            db.write(segments.rename_segment, chosen, new_name, user=user)
        except (segments.RuleError, access.AccessDenied, audit.AuditUnavailable) as exc:
            st.error(markdown_text(exc))
        else:
            st.session_state["segment_saved"] = f"Renamed to {markdown_text(new_name)}."
            st.session_state.pop("saved_pick", None)
            st.rerun()
    if m3.button("Edit", disabled=disabled, key="saved_edit", help="Open in the rule builder"):
        st.session_state["rule_load"] = {
            "name": chosen,
            "match": row["match"],
            "rules": list(row["rules"]),
        }
        st.rerun()
    if m4.button("Delete", disabled=disabled, key="saved_delete"):
        st.session_state["saved_delete_pending"] = chosen
    if st.session_state.get("saved_delete_pending") == chosen:
        st.warning(f"Delete the saved segment {markdown_text(chosen)}? This cannot be undone.")
        if st.button("Yes, delete it", key="saved_delete_yes"):
            try:
                db.write(segments.delete_segment, chosen, user=user)
            except (access.AccessDenied, audit.AuditUnavailable) as exc:
                st.error(markdown_text(exc))
            else:
                st.session_state.pop("saved_delete_pending", None)
                st.session_state.pop("saved_pick", None)
                st.session_state["segment_saved"] = f"Deleted {markdown_text(chosen)}."
                st.rerun()


profile = read(segments.segment_profile, scheme)
segment_options = list(profile["segment"])
if segment_options:
    url_segment, problem = navigation.choice_from_params(
        url, "segment", segment_options, segment_options[0]
    )
    link_warnings += [problem] if problem else []
    navigation.restore_widget("drill_segment", url_segment)
    if st.session_state["drill_segment"] not in segment_options:
        st.session_state["drill_segment"] = segment_options[0]
navigation.show_link_warnings(link_warnings)
fits = [db.cached(provenance.model_fit, "segments"), db.cached(provenance.model_fit, "value")]
st.caption(markdown_text(f"Segments: {fits[0].text()}. Lifetime value (CLV): {fits[1].text()}."))
seg_tab, overlap_tab, drill_tab, rule_tab, model_tab, bids_tab = st.tabs(
    [
        "Segments",
        "Overlap",
        "Drill-down & export",
        "Rule builder",
        "Model check",
        "Bids & activations",
    ]
)

# ---------------------------------------------------------------------------------------------
with seg_tab:
    tables.show_table(
        profile.round({"revenue": 0})[
            [
                "segment",
                "customers",
                "share",
                "revenue",
                "revenue_share",
                "avg_clv",
                "avg_prob_alive",
                "avg_orders",
                "avg_order_value",
            ]
        ].rename(
            columns={
                "segment": "Segment",
                "customers": "Customers",
                "share": "Share",
                "revenue": "Revenue",
                "revenue_share": "Revenue share",
                "avg_clv": "Avg CLV",
                "avg_prob_alive": "Avg P(alive)",
                "avg_orders": "Avg orders",
                "avg_order_value": "Avg order value",
            }
        ),
        hide_index=True,
        width="stretch",
        key="profile_table",
        column_config={
            "Customers": st.column_config.NumberColumn(format="localized"),
            "Share": st.column_config.NumberColumn(format="percent"),
            "Revenue": st.column_config.NumberColumn(format="localized"),
            "Revenue share": st.column_config.NumberColumn(format="percent"),
            "Avg CLV": st.column_config.NumberColumn(format="%.2f"),
            "Avg P(alive)": st.column_config.NumberColumn(format="percent"),
            "Avg orders": st.column_config.NumberColumn(format="%.2f"),
            "Avg order value": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    left, right = st.columns(2)
    with left:
        st.subheader("Size and value")
        st.plotly_chart(
            db.memo(segments.figure_treemap, profile, scheme_labels[scheme]), width="stretch"
        )
    with right:
        st.subheader("Frequency vs monetary value")
        if scheme == segments.SAVED_SCHEME:
            st.info("Saved segments may overlap; pick a column scheme for the scatter.")
        else:
            st.plotly_chart(
                db.memo(segments.figure_scatter, db.cached(segments.scatter_sample, scheme)),
                width="stretch",
            )
    st.subheader("Mix against the base")
    kind = st.radio(
        "Mix",
        list(segments.MIX_KINDS),
        format_func=lambda k: segments.MIX_KINDS[k][1],
        horizontal=True,
        key="mix_kind",
    )
    mix = read(segments.segment_mix, scheme, kind)
    if mix.empty:
        st.info("No behaviour of this kind in mart_customer.")
    else:
        st.caption(
            "Index = the segment's average share / the base's average share x 100 "
            "(100 = like everyone; the base is every customer with that behaviour)."
        )
        st.plotly_chart(db.memo(segments.figure_mix, mix), width="stretch")
    if scheme == "needs_segment":
        st.subheader("What distinguishes each needs segment")
        drivers = db.cached(segments.needs_segment_drivers)
        tables.show_table(
            drivers.rename(
                columns={
                    "segment": "Segment",
                    "label": "Feature",
                    "z_score": "Std. devs above mean",
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={"Std. devs above mean": st.column_config.NumberColumn(format="%.2f")},
        )

# ---------------------------------------------------------------------------------------------
with overlap_tab:
    c1, c2 = st.columns(2)
    column_schemes = scheme_options
    scheme_a = c1.selectbox("Rows", column_schemes, format_func=scheme_labels.get, key="overlap_a")
    scheme_b = c2.selectbox(
        "Columns", column_schemes, index=1, format_func=scheme_labels.get, key="overlap_b"
    )
    overlap_read = db.run if segments.SAVED_SCHEME in (scheme_a, scheme_b) else db.cached
    overlap = overlap_read(segments.segment_overlap, scheme_a, scheme_b)
    st.caption(
        "Share of each row segment's customers that fall in each column segment"
        + (
            " (saved segments may overlap, so a row need not add up to 100%)."
            if overlap_read is db.run
            else "."
        )
    )
    st.plotly_chart(
        db.memo(segments.figure_overlap, overlap, scheme_labels[scheme_a], scheme_labels[scheme_b]),
        width="stretch",
    )

# ---------------------------------------------------------------------------------------------
with drill_tab:
    names = list(profile["segment"])
    if not names:
        st.info("No segments in this scheme yet.")
    else:
        segment = st.selectbox("Segment", names, key="drill_segment")
        navigation.keep_in_url(
            {
                k: v
                for k, v in {"scheme": scheme, "segment": segment}.items()
                if v != {"scheme": "rfm_segment", "segment": names[0]}[k]
            }
        )
        row = profile[profile["segment"] == segment].iloc[0]
        d1, d2, d3, d4 = st.columns(4)
        d1.metric("Customers in segment", f"{int(row['customers']):,}")
        d2.metric("Segment revenue", money(row["revenue"]))
        d3.metric("Segment avg CLV", money(row["avg_clv"]))
        d4.metric("Segment avg P(alive)", formatting.percent(row["avg_prob_alive"], 0))
        customers = read(segments.segment_customers, scheme, segment, 200)
        st.caption(
            f"Top {len(customers):,} customers by lifetime value; names and emails masked. "
            "Open one in Customer 360 with the link."
        )
        tables.show_table(
            customers.round({"revenue": 0}),
            hide_index=True,
            width="stretch",
            column_order=[
                "link",
                "first_name",
                "last_name",
                "email",
                "city",
                "orders",
                "revenue",
                "clv",
                "prob_alive",
                "rfm_segment",
                "value_tier",
                "needs_segment",
            ],
            column_config={
                "link": st.column_config.LinkColumn("Customer", display_text=r"customer_id=(.*)$"),
                "first_name": st.column_config.TextColumn("First name"),
                "last_name": st.column_config.TextColumn("Last name"),
                "email": st.column_config.TextColumn("Email"),
                "city": st.column_config.TextColumn("City"),
                "orders": st.column_config.NumberColumn("Orders"),
                "revenue": st.column_config.NumberColumn("Revenue", format="localized"),
                "clv": st.column_config.NumberColumn("CLV (12 m)", format="%.2f"),
                "prob_alive": st.column_config.NumberColumn("P(alive)", format="percent"),
                "rfm_segment": st.column_config.TextColumn("RFM segment"),
                "value_tier": st.column_config.TextColumn("Value tier"),
                "needs_segment": st.column_config.TextColumn("Needs segment"),
            },
        )

        st.subheader("Export an audience")
        destination = st.radio(
            "Send to",
            list(audience_export.DESTINATION_LABELS),
            format_func=audience_export.DESTINATION_LABELS.get,
            horizontal=True,
            key="export_destination",
        )
        if destination != "generic":
            audience_export.destination_export(user, scheme, segment, destination, read)
        else:
            channels = db.cached(audience.consentable_channels)
            if not channels:
                st.info("No consent records are loaded, so no channel can be exported.")
            else:
                channel = st.selectbox("Channel", channels, key="export_channel")
                summary = read(audience.audience_summary, scheme, segment, channel)
                e1, e2, e3 = st.columns(3)
                e1.metric("Members", f"{summary['members']:,}")
                e2.metric("Exportable", f"{summary['exported']:,}")
                e3.metric("Excluded", f"{summary['excluded']:,}")
                if summary["excluded"]:
                    tables.show_table(
                        summary["exclusions"].rename(
                            columns={"reason": "Excluded because", "customers": "Customers"}
                        ),
                        hide_index=True,
                        width="stretch",
                    )
                st.caption(
                    "File columns: customer_id, email_sha256 (SHA-256 of the lower-cased, trimmed "
                    "email), phone_sha256 (SHA-256 of the E.164 phone). Every export is written to "
                    "the audit log."
                )
                clear_text = access.allowed(user, "export_clear_text") and st.checkbox(
                    "Include clear-text email and phone (admins only; recorded as such)",
                    key="export_clear_text",
                )
                request = (scheme, segment, channel, clear_text)
                if st.button(
                    f"Prepare export of {summary['exported']:,} customers",
                    disabled=summary["exported"] == 0
                    or not access.allowed(user, "export_audience"),
                    key="export_prepare",
                ):
                    try:
                        export = db.write(
                            audience.export_audience,
                            user,
                            scheme,
                            segment,
                            channel,
                            clear_text=clear_text,
                        )
                    except (access.AccessDenied, audit.AuditUnavailable, ValueError) as exc:
                        st.error(markdown_text(exc))
                    else:
                        st.session_state["export_file"] = (
                            request,
                            audience.audience_csv(export.audience),
                        )
                prepared = st.session_state.get("export_file")
                if prepared and prepared[0] == request:
                    st.download_button(
                        f"Download {summary['exported']:,} customers (CSV"
                        + (", clear text)" if clear_text else ", hashed)"),
                        data=prepared[1],
                        file_name=f"audience_{channel}_{segment}.csv".replace(" ", "_"),
                        mime="text/csv",
                        key="download",
                    )

# ---------------------------------------------------------------------------------------------
with rule_tab:
    st.caption(
        "Describe customers with up to four conditions; counts update as you edit. Type "
        "percentages as percent (80 for 80 %). Save the result by name to use it as a segment "
        "(and export it)."
    )
    columns = db.cached(segments.rule_columns)
    names_ = ["(none)"] + [c for c in columns if c != "customer_id"]
    defaults = ["value_tier", "prob_alive", "(none)", "(none)"]
    loading = st.session_state.pop("rule_load", None)  # a saved segment opened for editing
    if loading is not None:
        for key in [k for k in st.session_state if str(k).startswith("rule_")]:
            del st.session_state[key]
        st.session_state["rule_name"] = loading["name"]
        st.session_state["rule_match"] = loading["match"]
        for i in range(4):
            st.session_state[f"rule_col_{i}"] = "(none)"
        for i, r in enumerate(loading["rules"][:4]):
            col, op, val = r["column"], r["operator"], r.get("value")
            if col not in columns:
                continue
            st.session_state[f"rule_col_{i}"] = col
            st.session_state[f"rule_op_{col}_{i}"] = op
            shown = segments.typed_value(col, val) if not isinstance(val, list) else val
            if op == "between" and isinstance(val, list) and columns[col] == "number":
                st.session_state[f"rule_lo_{col}_{i}"] = float(segments.typed_value(col, val[0]))
                st.session_state[f"rule_hi_{col}_{i}"] = float(segments.typed_value(col, val[1]))
            elif op in ("in", "not in"):
                st.session_state[f"rule_val_{col}_{op}_{i}"] = list(val or [])
            elif columns[col] == "number" and val is not None:
                st.session_state[f"rule_val_{col}_{op}_{i}"] = float(shown)
            elif columns[col] == "text" and val is not None:
                st.session_state[f"rule_val_{col}_{op}_{i}"] = val
    rules: list[tuple] = []
    for i in range(4):
        c1, c2, c3 = st.columns([2, 1, 2])
        default = defaults[i] if defaults[i] in names_ else "(none)"
        if f"rule_col_{i}" not in st.session_state:
            st.session_state[f"rule_col_{i}"] = default
        column = c1.selectbox(
            f"Field {i + 1}",
            names_,
            format_func=lambda c: c if c == "(none)" else segments.field_label(c),
            key=f"rule_col_{i}",
        )
        if column == "(none)":
            continue
        kind = columns[column]
        field = segments.RULE_FIELDS.get(column)
        unit = f" ({field.unit})" if field and field.unit and not field.percent else ""
        unit = " (%)" if field and field.percent else unit
        ops = list(segments.operators_for(kind))
        op_default = {"value_tier": "in", "prob_alive": ">="}.get(column, ops[0])
        if f"rule_op_{column}_{i}" not in st.session_state:
            st.session_state[f"rule_op_{column}_{i}"] = op_default
        op = c2.selectbox(
            f"Condition {i + 1}",
            ops,
            format_func=lambda o, k=kind: segments.operator_words(k, o),
            key=f"rule_op_{column}_{i}",
        )
        val = None
        if op in ("is null", "is not null"):
            pass
        elif kind == "text":
            options = db.cached(segments.rule_value_options, column)
            if op in ("in", "not in"):
                pick_default = options[:1] if column != "value_tier" else options[-2:]
                val = tuple(
                    c3.multiselect(
                        f"Values {i + 1}",
                        options,
                        default=[p for p in pick_default if p in options]
                        if f"rule_val_{column}_{op}_{i}" not in st.session_state
                        else None,
                        key=f"rule_val_{column}_{op}_{i}",
                    )
                )
            elif options:
                val = c3.selectbox(f"Value {i + 1}", options, key=f"rule_val_{column}_{op}_{i}")
            else:
                val = c3.text_input(f"Value {i + 1}", key=f"rule_val_{column}_{op}_{i}")
        elif kind == "date":
            if op == "between":
                val = tuple(
                    str(d)
                    for d in c3.date_input(
                        f"Dates {i + 1}",
                        value=(dt.date.today() - dt.timedelta(days=365), dt.date.today()),
                        key=f"rule_val_{column}_{op}_{i}",
                    )
                )
            else:
                val = str(c3.date_input(f"Date {i + 1}", key=f"rule_val_{column}_{op}_{i}"))
        elif op == "between":
            lo = c3.number_input(f"From {i + 1}{unit}", value=0.0, key=f"rule_lo_{column}_{i}")
            hi = c3.number_input(f"To {i + 1}{unit}", value=100.0, key=f"rule_hi_{column}_{i}")
            val = segments.stored_value(column, (lo, hi))
        else:
            seed = (
                {}
                if f"rule_val_{column}_{op}_{i}" in st.session_state
                else {"value": 50.0 if column == "prob_alive" else 1.0}
            )
            typed = c3.number_input(
                f"Value {i + 1}{unit}", key=f"rule_val_{column}_{op}_{i}", **seed
            )
            val = segments.stored_value(column, typed)
        rules.append((column, op, val))
    match = st.radio(
        "Match",
        ["all", "any"],
        horizontal=True,
        key="rule_match",
        format_func=segments.MATCH_WORDS.get,
    )
    try:
        counts = db.cached(segments.rule_counts, tuple(rules), match)
    except segments.RuleError as exc:
        counts = None
        st.warning(markdown_text(exc))
    if counts is not None:
        st.markdown(markdown_text(segments.rule_sentence(rules, match, columns)))
        r1, r2, r3, r4 = st.columns(4)
        r1.metric("Matching customers", f"{counts['customers']:,}")
        r2.metric("Share of customers", f"{counts['share']:.1%}")
        r3.metric("Their revenue", money(counts["revenue"]))
        r4.metric("Their avg CLV", money(counts["avg_clv"]))
        read_only = db.read_only()
        may_save = access.allowed(user, "save_segment")
        s1, s2 = st.columns([3, 1])
        name = s1.text_input(
            "Save as",
            placeholder="e.g. High-value at risk",
            max_chars=segments.SEGMENT_NAME_MAX,
            key="rule_name",
        ).strip()
        request = (name, tuple(rules), match)

        def save(replace: bool) -> None:
            try:
                n = db.write(segments.save_segment, name, rules, match, user=user, replace=replace)
            except segments.SegmentExists:
                st.session_state["rule_replace"] = request
            except (segments.RuleError, access.AccessDenied, audit.AuditUnavailable) as exc:
                st.error(markdown_text(exc))
            else:
                st.session_state.pop("rule_replace", None)
                st.session_state["segment_saved"] = (
                    f"Saved {markdown_text(name)} ({n:,} customers): choose 'Saved rule "
                    "segments' as the scheme to explore or export it."
                )
                st.rerun()  # so the scheme list above offers the saved segments at once

        if s2.button(
            "Save segment",
            disabled=read_only or not may_save or not name or not rules,
            key="rule_save",
            help="The app was opened read-only" if read_only else None,
        ):
            save(replace=False)
        if st.session_state.get("rule_replace") == request:
            st.warning(
                f"A segment named {markdown_text(name)} is saved already. Replace it with "
                "these rules?"
            )
            b1, b2 = st.columns(2)
            if b1.button("Replace it", key="rule_replace_yes"):
                save(replace=True)
            if b2.button("Keep the saved one", key="rule_replace_no"):
                st.session_state.pop("rule_replace", None)
                st.rerun()
        if "segment_saved" in st.session_state:
            st.success(st.session_state.pop("segment_saved"))
    saved_segment_manager(saved)

# ---------------------------------------------------------------------------------------------
with model_tab:
    params = db.cached(value.model_parameters)
    holdout = db.cached(value.holdout_table)
    if params.empty:
        st.info(db.missing_output("model fits", ["value"], "orders (repeat buyers are fitted)"))
    else:
        metrics = params[params["model"] == "holdout"].set_index("parameter")["value"]
        if len(metrics):
            h1, h2, h3 = st.columns(3)
            h1.metric("Holdout purchases: predicted", f"{metrics['predicted_total']:,.0f}")
            h2.metric("Holdout purchases: actual", f"{metrics['actual_total']:,.0f}")
            h3.metric("Relative error", f"{metrics['relative_error']:+.1%}")
            st.caption(
                f"BG/NBD fitted on the data up to {metrics['holdout_units']:.0f} weeks before "
                "the end, then asked how many repeat purchases each customer makes in those "
                "weeks; bars compare the mean per customer by purchases in the calibration "
                "period."
            )
            st.plotly_chart(db.memo(value.figure_holdout, holdout), width="stretch")
        fits = params[params["model"] != "holdout"]
        tables.show_table(
            fits.rename(
                columns={
                    "model": "Model",
                    "fitted_on": "Fitted on",
                    "parameter": "Parameter",
                    "value": "Estimate",
                    "std_error": "Std. error",
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={
                "Estimate": st.column_config.NumberColumn(format="%.4f"),
                "Std. error": st.column_config.NumberColumn(format="%.4f"),
            },
        )

# ---------------------------------------------------------------------------------------------
with bids_tab:
    st.subheader("Value-based bids")
    st.caption(
        "Per segment: the expected 12-month value of one person (average discounted CLV; no "
        "purchase yet counts as 0) and a bid multiplier, that value relative to the average "
        f"customer, kept between {audience.BID_MULTIPLIER_MIN:g}x and "
        f"{audience.BID_MULTIPLIER_MAX:g}x. Reach: people each platform may receive "
        "(consent, ad consent in the EEA, UK and Switzerland, caps, an email or phone)."
    )
    bids = read(audience.segment_bids, scheme)
    reach = read(audience.destination_reach, scheme)
    table = bids.merge(reach, on="segment", how="left")
    tables.show_table(
        table[
            [
                "segment",
                "customers",
                "value_per_person",
                "bid_multiplier",
                "bid_adjustment_pct",
                "reach_google_ads",
                "reach_meta",
            ]
        ],
        hide_index=True,
        width="stretch",
        key="bids_table",
        column_config={
            "segment": st.column_config.TextColumn("Segment"),
            "customers": st.column_config.NumberColumn("Customers", format="localized"),
            "value_per_person": st.column_config.NumberColumn(
                "Expected value per person (12 m)", format="%.2f"
            ),
            "bid_multiplier": st.column_config.NumberColumn("Bid multiplier", format="%.2fx"),
            "bid_adjustment_pct": st.column_config.NumberColumn("Bid adjustment", format="%+.0f%%"),
            "reach_google_ads": st.column_config.NumberColumn(
                "Reach on Google Ads", format="localized"
            ),
            "reach_meta": st.column_config.NumberColumn("Reach on Meta", format="localized"),
        },
    )
    st.download_button(
        f"Download bids for {len(bids):,} segments (CSV)",
        data=audience.bids_csv(bids),
        file_name=f"bids_{scheme}.csv",
        mime="text/csv",
        key="bids_download",
    )
    st.subheader("Activations")
    activations = db.run(audience.list_activations)
    if activations.empty:
        st.info(
            "No activations yet. Name one when you export to Google Ads or Meta (Drill-down & "
            "export) and each export is remembered, with the people to add and remove."
        )
    else:
        tables.show_table(
            activations.assign(
                destination=activations["destination"].map(audience_export.DESTINATION_LABELS)
            ).rename(columns={"name": "activation"}),  # an activation's name, not a person's
            hide_index=True,
            width="stretch",
            key="activations_table",
            column_config={
                "activation": st.column_config.TextColumn("Activation"),
                "segment": st.column_config.TextColumn("Segment"),
                "scheme": st.column_config.TextColumn("Scheme"),
                "destination": st.column_config.TextColumn("Sent to"),
                "holdout_share": st.column_config.NumberColumn("Held out", format="percent"),
                "exports": st.column_config.NumberColumn("Exports"),
                "last_export": st.column_config.DatetimeColumn("Last export"),
                "last_sent": st.column_config.NumberColumn("Last sent", format="localized"),
                "last_held_out": st.column_config.NumberColumn("Last held out"),
                "last_added": st.column_config.NumberColumn("Last added"),
                "last_removed": st.column_config.NumberColumn("Last removed"),
            },
        )
        chosen = st.selectbox("History of", list(activations["name"]), key="activation_history")
        tables.show_table(
            db.run(audience.activation_history, chosen),
            hide_index=True,
            width="stretch",
            key="activation_history_table",
            column_config={
                "run": st.column_config.NumberColumn("Export"),
                "exported_at": st.column_config.DatetimeColumn("When"),
                "actor": st.column_config.TextColumn("By"),
                "members": st.column_config.NumberColumn("Members", format="localized"),
                "sent": st.column_config.NumberColumn("Sent", format="localized"),
                "held_out": st.column_config.NumberColumn("Held out", format="localized"),
                "excluded": st.column_config.NumberColumn("Left out", format="localized"),
                "added": st.column_config.NumberColumn("Added", format="localized"),
                "removed": st.column_config.NumberColumn("Removed", format="localized"),
            },
        )
