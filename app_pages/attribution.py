"""Attribution (Conductor): which channel earns its budget — bottom-up multi-touch attribution,
the top-down media mix model, their reconciliation and the experiment readout.
The segment scheme, segment and model live in the URL (st.query_params), so a copied link
reproduces the view."""

from __future__ import annotations

import streamlit as st

from ccrm_core.conductor import attribution, journeys, mmm
from ccrm_core.foundation import formatting
from ccrm_core.foundation.rendering import markdown_text
from ccrm_ui import auth, db, inputs, navigation, tables, test_and_learn

# mart_reconciliation's `view` in words
VIEW_WORDS = {
    "both": "both views",
    "top_down_only": "media mix model only",
    "bottom_up_only": "attribution only",
}


def _sentence(text: str) -> str:
    """`text` with its first letter in capitals (str.capitalize would lower the rest)."""
    return text[:1].upper() + text[1:]


user = auth.require_page(__file__)  # role check (ccrm_core.foundation.access)
st.title("Attribution")
st.caption(
    "Bottom-up: who touched the customers who bought (journeys of addressable touches). "
    "Top-down: what the spend added to daily revenue (media mix model, all media incl. tv and "
    "print). Reconciliation puts the two side by side."
)
inputs.show_missing_inputs("attribution", user)

touch_tab, mmm_tab, rec_tab, learn_tab = st.tabs(
    ["Multi-touch attribution", "Media mix model", "Reconciliation & experiment", "Test and learn"]
)

# ---------------------------------------------------------------------------------------------
with touch_tab:
    segments = db.cached(journeys.segments)
    if segments.empty:
        st.info(
            db.missing_output(
                "journeys", ["paths", "attribution"], "events with touches and orders"
            )
        )
    else:
        schemes = list(dict.fromkeys(segments["scheme"]))

        def _segments_of(scheme: str) -> list[str]:
            return segments.loc[segments["scheme"] == scheme, "segment"].tolist()

        # URL -> widgets (first run of a session) -> URL, as on the Command Center
        url = st.query_params.to_dict()
        warnings: list[str] = []
        models = attribution.model_names()
        url_scheme, problem = navigation.choice_from_params(url, "scheme", schemes, schemes[0])
        warnings += [problem] if problem else []
        scheme_segments = _segments_of(url_scheme)
        url_segment, problem = navigation.choice_from_params(
            url, "segment", scheme_segments, scheme_segments[0]
        )
        warnings += [problem] if problem else []
        url_model, problem = navigation.choice_from_params(url, "model", models, "markov_1")
        warnings += [problem] if problem else []
        navigation.restore_widget("scheme", url_scheme)
        navigation.restore_widget("segment", url_segment)
        navigation.restore_widget("model", url_model)
        if st.session_state["scheme"] not in schemes:  # the data changed since
            st.session_state["scheme"] = schemes[0]
        if st.session_state["segment"] not in _segments_of(st.session_state["scheme"]):
            st.session_state["segment"] = _segments_of(st.session_state["scheme"])[0]
        navigation.show_link_warnings(warnings)

        c1, c2, c3 = st.columns([1, 1, 2])
        scheme = c1.selectbox(
            "Segment scheme", schemes, format_func=lambda s: s.replace("_", " "), key="scheme"
        )
        options = _segments_of(scheme)
        segment = c2.selectbox("Segment", options, key="segment")
        model = c3.selectbox(
            "Model",
            models,
            format_func=lambda m: attribution.MODEL_LABELS[m],
            key="model",
        )
        link = {"scheme": scheme, "segment": segment, "model": model}
        navigation.keep_in_url(
            {
                k: v
                for k, v in link.items()
                if v != {"scheme": schemes[0], "segment": options[0], "model": "markov_1"}[k]
            }
        )
        result = db.cached(attribution.load_attribution, scheme, segment)
        if result.empty:
            st.info("No attribution for this segment yet: run the `attribution` build stage.")
        else:
            chosen = result[result["model"] == model].sort_values("conversions", ascending=False)
            row = segments[(segments["scheme"] == scheme) & (segments["segment"] == segment)]
            converting = int(row["conversions"].sum())
            untracked = int(row["untracked"].sum())
            m1, m2, m3, m4 = st.columns(4)
            m1.metric(
                "Attributed conversions",
                f"{chosen['conversions'].sum():,.0f}",
                help="Orders with at least one tracked touch before them, credited to channels.",
            )
            m2.metric("Attributed revenue", formatting.money(chosen["value"].sum()))
            m3.metric(
                "Orders without a tracked touch",
                f"{untracked:,}",
                help="Converting journeys with no addressable touch in the lookback: no model can "
                "credit a channel, so they are not attributed. The media mix model (next tab) "
                "covers them top-down.",
            )
            m4.metric(
                "Journeys (converting / not)", f"{converting:,} / {int(row['nulls'].sum()):,}"
            )
            share = untracked / converting if converting else 0.0
            st.caption(
                f"Of {converting:,} converting journeys (one per order), "
                f"{converting - untracked:,} had a tracked touch and are attributed; {untracked:,} "
                f"({share:.0%}, revenue {float(row['untracked_value'].sum()):,.0f}) had none and "
                "are left out of every model below. "
                + markdown_text(_sentence(db.cached(attribution.model_fit).text()))
                + "."
            )
            st.subheader(f"{attribution.MODEL_LABELS[model]}: credit by channel")
            tables.show_table(
                chosen.drop(columns=["model"]).rename(
                    columns={
                        "channel": "Channel",
                        "conversions": "Conversions",
                        "value": "Revenue",
                        "removal_effect": "Removal effect",
                    }
                ),
                hide_index=True,
                width="stretch",
                column_config={
                    "Conversions": st.column_config.NumberColumn(format="%.1f"),
                    "Revenue": st.column_config.NumberColumn(format="%.0f"),
                    "Removal effect": st.column_config.NumberColumn(format="percent"),
                },
            )
            st.subheader("Model comparison")
            measure = st.radio(
                "Measure",
                ["conversions", "value"],
                horizontal=True,
                key="measure",
                format_func=lambda m: "conversions" if m == "conversions" else "revenue",
            )
            st.plotly_chart(
                db.memo(attribution.chart_model_comparison, result, measure=measure),
                width="stretch",
            )
            left, right = st.columns(2)
            with left:
                st.subheader("Removal effects (Markov)")
                order = st.radio("Markov order", [1, 2, 3], horizontal=True, key="order")
                st.plotly_chart(
                    db.memo(attribution.chart_removal_effects, result, f"markov_{order}"),
                    width="stretch",
                )
            with right:
                st.subheader("Transitions (first order)")
                transitions = db.cached(attribution.load_transitions, scheme, segment)
                st.plotly_chart(
                    db.memo(attribution.chart_transition_heatmap, transitions), width="stretch"
                )
            st.subheader("Top converting paths")
            tables.show_table(
                db.cached(journeys.top_paths, scheme, segment),
                hide_index=True,
                width="stretch",
                column_config={
                    "conversion_rate": st.column_config.NumberColumn(
                        "Conversion rate", format="percent"
                    ),
                    "value": st.column_config.NumberColumn("Revenue", format="%.0f"),
                },
            )

# ---------------------------------------------------------------------------------------------
with mmm_tab:
    channels = db.cached(mmm.load_channels)
    if channels is None:
        st.info(db.missing_output("media mix model", ["mmm"], "daily spend per channel and orders"))
    else:
        diag = db.cached(mmm.load_diagnostics) or {}
        st.caption(markdown_text(_sentence(db.cached(mmm.model_fit).text())) + ".")
        d1, d2, d3, d4 = st.columns(4)
        d1.metric("R²", f"{diag.get('r2', float('nan')):.2f}")
        d2.metric("MAPE", f"{diag.get('mape', float('nan')):.1%}")
        d3.metric("Media contribution", formatting.money(channels["contribution"].sum()))
        d4.metric("Bootstrap replicates", f"{diag.get('bootstrap_replicates', 0):.0f}")
        st.subheader("Revenue decomposition")
        st.plotly_chart(
            db.memo(mmm.chart_contributions, db.cached(mmm.load_contributions)), width="stretch"
        )
        left, right = st.columns(2)
        with left:
            st.subheader("ROI with 90% interval")
            st.plotly_chart(db.memo(mmm.chart_roi, channels, "roi"), width="stretch")
        with right:
            st.subheader("Marginal ROI at current spend")
            st.plotly_chart(db.memo(mmm.chart_roi, channels, "marginal_roi"), width="stretch")
        tables.show_table(
            channels[
                [
                    "channel",
                    "addressable",
                    "spend",
                    "contribution",
                    "share",
                    "roi",
                    "roi_low",
                    "roi_high",
                    "marginal_roi",
                    "marginal_roi_low",
                    "marginal_roi_high",
                ]
            ],
            hide_index=True,
            width="stretch",
            column_config={
                "spend": st.column_config.NumberColumn(format="%.0f"),
                "contribution": st.column_config.NumberColumn(format="%.0f"),
                "share": st.column_config.NumberColumn(format="percent"),
            },
        )
        if "roi_uncalibrated" in channels:
            st.subheader("ROI before and after calibration")
            lift_tests = db.cached(mmm.load_lift_tests_used)
            used = lift_tests[lift_tests["used"]] if lift_tests is not None else None
            if used is None or used.empty:
                st.caption("No lift test calibrates the model: before and after are the same.")
            st.plotly_chart(db.memo(mmm.chart_roi_calibration, channels), width="stretch")
            tables.show_table(mmm.calibration_table(channels), hide_index=True, width="stretch")
            st.subheader("Lift tests used")
            if lift_tests is None:
                st.caption("No lift tests loaded (the lift_tests file).")
            else:
                tables.show_table(lift_tests, hide_index=True, width="stretch")
        st.subheader("Fit diagnostics")
        st.caption(
            f"Durbin-Watson {diag.get('durbin_watson', float('nan')):.2f} (2 = no residual "
            f"autocorrelation); residual standard deviation "
            f"{diag.get('residual_sd', float('nan')):,.0f} per day."
        )
        st.plotly_chart(db.memo(mmm.chart_fit, db.cached(mmm.load_fit)), width="stretch")

# ---------------------------------------------------------------------------------------------
with rec_tab:
    recon = db.cached(attribution.load_reconciliation)
    if recon is None:
        st.info(
            db.missing_output(
                "reconciliation", ["attribution", "mmm", "reconcile"], "events, orders and spend"
            )
        )
    else:
        experiments = db.cached(attribution.load_experiments)
        st.markdown(attribution.reconciliation_summary(recon, experiments))
        st.plotly_chart(db.memo(attribution.chart_reconciliation, recon), width="stretch")
        tables.show_table(
            recon.drop(columns=["model"]).assign(
                channel=recon["channel"].map(formatting.value_label),
                view=recon["view"].map(VIEW_WORDS),
            ),
            hide_index=True,
            width="stretch",
            column_config={
                c: st.column_config.NumberColumn(format="%.0f")
                for c in (
                    "attributed_revenue",
                    "incremental_revenue",
                    "incremental_revenue_low",
                    "incremental_revenue_high",
                    "attributed_conversions",
                    "incremental_conversions",
                )
            }
            | {
                "calibration_factor": st.column_config.NumberColumn(format="%.2f"),
                "attributed_share": st.column_config.NumberColumn(format="percent"),
                "incremental_share": st.column_config.NumberColumn(format="percent"),
            },
        )
        st.subheader("Incremental revenue by segment and channel")
        split_schemes = db.cached(attribution.segment_split_schemes)
        if not split_schemes:
            st.info(
                "No split by segment yet: build the `segments`, `attribution`, `mmm` and "
                "`reconcile` stages."
            )
        else:
            split_scheme = st.selectbox(
                "Segment scheme",
                split_schemes,
                format_func=attribution.scheme_label,
                key="split_scheme",
            )
            split = db.cached(attribution.load_segment_split, split_scheme)
            st.caption(markdown_text(attribution.SEGMENT_SPLIT_METHOD))
            if split is None:
                st.info("No segment of this scheme has attributed revenue.")
            else:
                split_table = db.memo(attribution.segment_split_table, split)
                money_fmt = tables.money_format()
                tables.show_table(
                    split_table,
                    column_config={
                        c: st.column_config.NumberColumn(format=money_fmt)
                        for c in attribution.segment_split_money_columns(split_table)
                    }
                    | {"Calibration factor": st.column_config.NumberColumn(format="%.2f")},
                )
                st.plotly_chart(db.memo(attribution.chart_segment_split, split), width="stretch")
        st.subheader("Experiment readout")
        if experiments is None or experiments.empty:
            st.info("No experiment with a control and a treatment arm in the data.")
        else:
            tables.show_table(experiments, hide_index=True, width="stretch")

# ---------------------------------------------------------------------------------------------
with learn_tab:
    test_and_learn.render()
