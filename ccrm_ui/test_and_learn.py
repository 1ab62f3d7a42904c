"""The Attribution page's "Test and learn" tab: each activation's sent members against its
holdout (readout table, lift chart, by segment and by ad platform) and the test-design power
calculator. Every number comes from `ccrm_core.conductor.audience` (readout, power)."""

from __future__ import annotations

import math

import streamlit as st

from ccrm_core.conductor import audience
from ccrm_ui import db, tables

MODES = ("Holdout share needed", "Smallest detectable lift")


def _percent_config(columns) -> dict:
    return {
        c: st.column_config.NumberColumn(format="percent")
        for c in audience.PERCENT_COLUMNS
        if c in columns
    } | {
        c: st.column_config.NumberColumn(format="%.4f")
        for c in ("p_value", "revenue_p_value")
        if c in columns
    }


def render() -> None:
    st.caption(
        "Each activation's first export is a test: the people sent to the ad platform against "
        "the holdout that was withheld. Conversion (at least one order) and revenue per person "
        "in the days after the export; lift = treated minus holdout conversion."
    )
    days = int(
        st.number_input(
            "Days after export", min_value=1, max_value=365, value=30, step=1, key="tl_days"
        )
    )
    readout = db.cached_with(audience.exports_version, audience.activation_readout, days)
    if readout.empty:
        st.info(
            "No activation yet. Create one in Segment Explorer: export a segment to Google Ads "
            "or Meta, give the activation a name and a holdout (10% to 20% is usual); its "
            "results show here once orders after the export are loaded."
        )
    else:
        _readout(readout)
    st.divider()
    _power_calculator(readout)


def _readout(readout) -> None:
    shown = audience.readout_table(readout)
    tables.show_table(shown, column_config=_percent_config(shown.columns))
    measured = readout["lift"].notna()
    if measured.any():
        c1, c2 = st.columns(2)
        c1.plotly_chart(db.memo(audience.chart_activation_lift, readout, "lift"), width="stretch")
        c2.plotly_chart(
            db.memo(audience.chart_activation_lift, readout, "revenue"), width="stretch"
        )
    else:
        st.caption("No activation has a holdout with outcomes yet: nothing to compare.")
    for by, title in (("segment", "By segment"), ("destination", "By ad platform")):
        st.subheader(title)
        summary = audience.summary_table(audience.readout_summary(readout, by))
        if summary.empty:
            st.caption("No activation with a holdout and outcomes yet.")
        else:
            tables.show_table(summary, column_config=_percent_config(summary.columns))
    st.caption(
        "Interval: 95%, normal approximation for the difference of two proportions (Wald); "
        "p-value: two-sided z-test with the pooled conversion. Revenue per person: Welch's "
        "t interval. Groups combine their activations weighted by people sent."
    )


def _default_lift(size: int, baseline: float) -> float:
    """A first lift to try: what a 20% holdout detects, rounded up to half a point (at least 2
    points)."""
    try:
        return max(2.0, math.ceil(audience.detectable_lift(size, baseline, 0.2) * 200) / 2)
    except ValueError:
        return 2.0


def _power_calculator(readout) -> None:
    st.subheader("Test design: power calculator")
    size, baseline = 10_000, 0.05
    with_holdout = readout[readout["control"].gt(0)] if not readout.empty else readout
    if not with_holdout.empty:
        names = with_holdout["activation"].tolist()
        name = st.selectbox(
            "Start from activation", names, key="tl_activation",
            help="Segment size from its first export, baseline conversion from its holdout.",
        )  # fmt: skip
        row = with_holdout[with_holdout["activation"] == name].iloc[0]
        size = int(row["members"])
        if row["control_conversion"] > 0:
            baseline = float(row["control_conversion"])
    mode = st.radio("Calculate", MODES, horizontal=True, key="tl_mode")
    c1, c2, c3 = st.columns(3)
    n = c1.number_input("Segment size (people)", min_value=4, value=size, step=100, key="tl_size")
    p0 = c2.number_input(
        "Baseline conversion (%)", min_value=0.01, max_value=99.99,
        value=round(baseline * 100, 2), step=0.5, key="tl_baseline",
    )  # fmt: skip
    try:
        if mode == MODES[0]:
            lift = c3.number_input(
                "Minimum detectable lift (points)", min_value=0.01, max_value=99.0,
                value=_default_lift(size, baseline), step=0.5, key="tl_lift",
            )  # fmt: skip
            share = audience.holdout_share_needed(n, p0 / 100, lift / 100)
            st.metric("Holdout share needed", f"{share:.1%}")
            st.caption(
                f"Hold out {share * n:,.0f} of {n:,.0f} people to detect a lift of {lift:.2f} "
                "points with 80% power at the 5% level (two-sided)."
            )
        else:
            holdout = c3.number_input(
                "Holdout share (%)", min_value=1.0, max_value=50.0, value=20.0, step=1.0,
                key="tl_holdout",
            )  # fmt: skip
            lift = audience.detectable_lift(n, p0 / 100, holdout / 100)
            st.metric("Smallest detectable lift", f"{lift * 100:.2f} points")
            st.caption(
                f"With {holdout:.0f}% held out ({holdout / 100 * n:,.0f} people), a lift of "
                f"{lift * 100:.2f} points or more is found with 80% power at the 5% level."
            )
    except ValueError as exc:
        st.warning(str(exc)[:1].upper() + str(exc)[1:])
    st.markdown(
        "Two-sided test of two proportions, normal approximation: a segment of $N$ people, a "
        "share $h$ held out, baseline conversion $p_0$ and lift $d$ are detected with power "
        r"$1-\beta$ at level $\alpha$ (here 5% and 80%) when"
    )
    st.latex(audience.POWER_FORMULA)
