"""Command center: the executive home page (Radar).

KPI tiles with change against the previous period (and the same period last year) and
sparklines, why a KPI changed (by sales channel, source system and segment; revenue's orders and
order-value effects), the alerts in or just before the period with their age, then tabs for
trends and alerts (an alert opens the trend on its series and days), the funnel by segment,
cohort retention and journeys to a first purchase.
Every filter lives in the URL (st.query_params), so a copied link reproduces the view.
"""

from __future__ import annotations

from datetime import date
from functools import partial

import pandas as pd
import streamlit as st

from ccrm_core.conductor import audience
from ccrm_core.foundation import formatting
from ccrm_core.foundation.rendering import markdown_text
from ccrm_core.foundation.validation import quoted
from ccrm_core.radar import kpis
from ccrm_ui import auth, db, inputs, navigation, tables

PERIODS = [str(p) for p in kpis.STANDARD_PERIODS] + ["custom"]
METRIC_KEYS = list(kpis.METRICS)
GRAINS = ["day", "week"]
WHY_KPIS = list(kpis.DRIVER_KPIS)
AGAINST = {"previous": "Previous period", "year_ago": "Same period last year"}
SECTIONS = ("Trends & alerts", "Funnel", "Cohorts", "Journeys")
TILE_WIDTH = 160  # px: two tiles and their gap fit a 375 px phone screen


def _sentence(text: str) -> str:
    """`text` with its first letter in capitals (str.capitalize would lower the rest)."""
    return text[:1].upper() + text[1:]


def _alerts_count(n: int) -> str:
    return f"{n:,} alert{'s' if n != 1 else ''}"


def _focus_alert(key: str, metric: str, grain: str) -> None:
    """Open the trend on one alert: its series (metric, grain, channel) and days."""
    st.session_state["cc_section"] = SECTIONS[0]
    st.session_state["cc_alert"] = key
    st.session_state["cc_metric"] = metric
    st.session_state["cc_grain"] = grain


def _pick_alert(table_key: str, rows: list[tuple[str, str, str]]) -> None:
    """A row picked in the alert table (`rows`: key, metric, grain per row) opens its trend."""
    picked = st.session_state[table_key]["selection"]["rows"]
    if picked:
        _focus_alert(*rows[picked[0]])


def _clear_focus() -> None:
    st.session_state["cc_alert"] = None
    st.session_state["cc_alert_table_v"] = st.session_state.get("cc_alert_table_v", 0) + 1


def _show_drivers(d: kpis.KpiDrivers | None, split_label: str) -> None:
    """The breakdown of one KPI's change: a sentence with the numbers, the waterfalls and the
    table of groups."""
    if d is None or (d.groups.empty and d.now == 0 and not d.before):
        st.info("Nothing to break down: no orders in this view and its comparison period.")
        return
    label, unit = kpis.DRIVER_KPIS[d.kpi]
    value = partial(kpis.format_value, unit=unit)
    change = partial(kpis.format_change, unit=unit)
    cmp = d.comparison
    period = f"{d.start:%d %b %Y} - {d.end:%d %b %Y}"
    if d.before is None:
        st.markdown(f"**{label} {value(d.now)}** in {period}.")
    else:
        text = (
            f"**{label} {change(d.change)}**: {value(d.before)} in "
            f"{cmp.start:%d %b %Y} - {cmp.end:%d %b %Y} ({cmp.label}), {value(d.now)} in {period}."
        )
        if d.effects is not None:
            orders_effect, value_effect = d.effects
            aov = [
                kpis.format_value(r / o, "currency") if o else "none"
                for r, o in ((d.before, d.orders_before), (d.now, d.orders_now))
            ]
            text += (
                f" Orders effect **{change(orders_effect)}** ({d.orders_before:,.0f} → "
                f"{d.orders_now:,.0f} orders), order-value effect **{change(value_effect)}** "
                f"(average order {aov[0]} → {aov[1]})."
            )
        if not d.groups.empty and d.change:
            top = d.groups.iloc[0]
            text += (
                f" Moved most: **{markdown_text(formatting.value_label(top['group']))}** "
                f"({change(top['change'])}, "
                f"{top['share_of_change']:.0%} of the change)."
            )
        st.markdown(text)
    if d.note:
        st.caption(_sentence(d.note) + ".")
    charts = st.columns(2) if d.effects is not None else [st.container()]
    if d.effects is not None:
        with charts[0]:
            st.plotly_chart(db.memo(kpis.figure_revenue_bridge, d), width="stretch")
    with charts[-1]:
        st.plotly_chart(db.memo(kpis.figure_driver_contributions, d, split_label), width="stretch")
    money = tables.money_format() if unit == "currency" else "%,.0f"
    tables.show_table(
        d.groups.assign(group=d.groups["group"].map(formatting.value_label)).rename(
            columns={"group": split_label}
        ),
        hide_index=True,
        width="stretch",
        key="cc_drivers_table",
        column_config={
            "before": st.column_config.NumberColumn("Before", format=money),
            "now": st.column_config.NumberColumn("Now", format=money),
            "change": st.column_config.NumberColumn("Change", format=money),
            "share_of_change": st.column_config.NumberColumn(
                "Share of the change", format="percent"
            ),
        },
    )
    st.caption(
        "Each group's change is its value now less its value before; the changes add up to the "
        "total, largest first. "
        + (
            "Orders effect = change in orders × the mean of the two periods' average order "
            "values; order-value effect = change in average order value × the mean of the two "
            "periods' orders. The two add up to the revenue change exactly (a symmetric split: "
            "no interaction term is left over). "
            if d.kpi == "revenue"
            else ""
        )
        + (
            "Segments are today's membership, with their history."
            if d.dimension not in ("channel", "source_system")
            else ""
        )
    )


user = auth.require_page(__file__)  # role check (ccrm_core.foundation.access)
st.markdown("#### Command Center")
# saved segments run uncached: saving, editing or deleting one does not change the data version
options: kpis.FilterOptions = kpis.with_saved_segments(
    db.cached(kpis.filter_options), db.run(kpis.saved_segment_names)
)
if not options.ready:
    if options.missing:
        st.info(db.missing_output("KPI marts", list(options.missing), "orders"))
    else:
        st.info("No orders are loaded, so there are no KPIs yet.")
        if not inputs.show_missing_inputs("command_center", user):
            st.info("Load orders, then rebuild.")
    st.stop()

# ---- filters: URL -> widgets (first run of a session) -> URL ---------------------------------
url = st.query_params.to_dict()
from_url, warnings = kpis.filters_from_params(url, options)
alerts: pd.DataFrame = db.cached(kpis.kpi_alerts, None, None)
choices = {  # key: (URL parameter, choices, default)
    "cc_metric": ("metric", METRIC_KEYS, "revenue"),
    "cc_grain": ("grain", GRAINS, "day"),
    "cc_why": ("why", WHY_KPIS, "revenue"),
    "cc_vs": ("vs", list(AGAINST), "previous"),
    "cc_by": ("by", list(kpis.driver_dimensions(from_url, options)), "channel"),
}
chosen: dict[str, str] = {}
for key, (param, allowed, default) in choices.items():
    chosen[key], problem = navigation.choice_from_params(url, param, allowed, default)
    warnings += [problem] if problem else []
url_alert = kpis.find_alert(alerts, url.get("alert"))
if url_alert is not None:  # the alert's own series
    chosen["cc_metric"], chosen["cc_grain"] = url_alert["metric"], url_alert["grain"]
elif url.get("alert"):
    warnings.append(
        f"alert={quoted(url['alert'])} is not an alert of this data; showing the whole trend"
    )
defaults = {
    "cc_period": from_url.period,
    "cc_dates": (
        from_url.bounds(options.data_start, options.data_end)[:2]
        if from_url.period == "custom"
        else (options.data_end.replace(day=1), options.data_end)
    ),
    "cc_segment": f"{from_url.scheme}:{from_url.segment}",
    "cc_channel": from_url.channel,
    "cc_source": from_url.source_system,
    "cc_window": from_url.active_window,
    **chosen,
    "cc_alert": kpis.alert_key(url_alert) if url_alert is not None else None,
}
for key, value in defaults.items():
    navigation.restore_widget(key, value)

segment_choices = ["all:all"] + [f"{s}:{v}" for s, v in options.segments]
if st.session_state["cc_segment"] not in segment_choices:
    gone_scheme, _, gone = st.session_state["cc_segment"].partition(":")
    if gone_scheme == kpis.SAVED:  # deleted or renamed on the Segment Explorer since
        st.info(
            markdown_text(f"There is no saved segment {quoted(gone)} any more")
            + ": showing all customers."
        )
    st.session_state["cc_segment"] = "all:all"

cols = st.columns([3.9, 2.5, 1.6, 1.6, 1.6])
with cols[0]:
    period = st.segmented_control(
        "Period",
        PERIODS,
        key="cc_period",
        format_func=lambda p: f"{p}d" if p != "custom" else "Custom",
    )
period = period or "30"  # a click on the selected option clears it: keep the default
with cols[1]:
    segment = st.selectbox(
        "Segment",
        segment_choices,
        key="cc_segment",
        format_func=lambda s: kpis.segment_label(*s.split(":", 1)),
        help="Today's members of a segment, with their history. Saved: the rule segments "
        "saved on the Segment Explorer.",
    )
with cols[2]:
    channel = st.selectbox(
        "Sales channel", ["all", *options.channels], key="cc_channel", help="Where orders were"
    )
with cols[3]:
    source = st.selectbox("Source system", ["all", *options.source_systems], key="cc_source")
with cols[4]:
    window = st.selectbox(
        "Active window",
        list(kpis.ACTIVE_WINDOWS),
        key="cc_window",
        format_func=lambda w: f"{w} days",
        help="An active customer ordered in this many days up to the day measured.",
    )
picked = None
if period == "custom":
    picked = st.date_input(
        "Custom period (from - to)",
        key="cc_dates",
        min_value=options.data_start,
        max_value=options.data_end,
        width=300,
    )

start = end = None
if period == "custom":
    if isinstance(picked, tuple | list) and len(picked) == 2:
        start, end = picked
    else:  # the date picker is half-way through a range: keep the last full one
        start, end = defaults["cc_dates"]
scheme, _, segment_name = segment.partition(":")
# a saved segment's rows are kept by ccrm_core (keyed by its rules), not by st.cache_data: its
# definition can change without a new data version
segment_call = db.run if scheme == kpis.SAVED else db.cached
filters = kpis.KpiFilters(
    period=period,
    start=start if isinstance(start, date) else None,
    end=end if isinstance(end, date) else None,
    scheme=scheme,
    segment=segment_name,
    channel=channel,
    source_system=source,
    active_window=int(window),
)
dimensions = kpis.driver_dimensions(filters, options)
if st.session_state["cc_by"] not in dimensions:  # a segment view has no split by segment
    st.session_state["cc_by"] = "channel"
focus = kpis.find_alert(alerts, st.session_state["cc_alert"])
if focus is not None and (focus["metric"], focus["grain"]) != (
    st.session_state["cc_metric"],
    st.session_state["cc_grain"],
):
    focus = None  # another KPI or grain was chosen since: the whole trend
if focus is None:
    st.session_state["cc_alert"] = None
params = kpis.filters_to_params(filters)
for key, (param, _, default) in choices.items():
    if st.session_state[key] not in (default, None):
        params[param] = st.session_state[key]
if focus is not None:
    params["alert"] = st.session_state["cc_alert"]
navigation.keep_in_url(params)
navigation.show_link_warnings(warnings)

first, last, days = filters.bounds(options.data_start, options.data_end)
st.caption(
    f"**{first:%d %b %Y} - {last:%d %b %Y}** ({days} days; data to {options.data_end:%d %b %Y}),"
    f" compared with the {days} days before (and, under a tile, with the same {days} days a "
    "year earlier where the data covers them). Sparklines: the same KPI over the last four "
    "periods."
)

# ---- tiles ------------------------------------------------------------------------------------
tiles: list[kpis.KpiTile] = segment_call(kpis.kpi_tiles, filters)
# a note that several tiles share (e.g. no comparison: the data starts too late) is said once,
# above them, with the tiles it concerns; a tile's own note stays under it
shared_notes: dict[str, list[str]] = {}
for tile in tiles:
    if tile.note:
        shared_notes.setdefault(tile.note, []).append(tile.label)
shared_notes = {note: labels for note, labels in shared_notes.items() if len(labels) > 1}
for note, labels in shared_notes.items():
    st.caption(f"{_sentence(note)} ({', '.join(labels)}).")
# A wrapping row of fixed-width tiles: as many to a row as fit, two on a phone (columns
# would stack one tile per row there).
with st.container(horizontal=True, gap="small", key="cc_tiles"):
    for tile in tiles:
        with st.container(width=TILE_WIDTH):
            st.metric(
                tile.label,
                tile.display,
                delta=tile.delta_text(),
                delta_color="normal" if tile.higher_is_better else "inverse",
                help=tile.help,
                border=True,
                chart_data=list(tile.sparkline) if len(tile.sparkline) > 1 else None,
                chart_type="line",
            )
            if tile.note and tile.note not in shared_notes:
                st.caption(_sentence(tile.note))
            if tile.year_ago_text():
                st.caption(f"vs last year: {tile.year_ago_text()}")

# ---- closed loop: what the activations of this period earned ----------------------------------
loop_scheme = None if scheme == "all" else scheme
outcomes, loop_note = db.cached_with(  # an export changes them, not the data version
    audience.exports_version,
    audience.period_outcomes,
    first,
    last,
    30,
    loop_scheme,
    segment_name if loop_scheme else None,
)
st.markdown("**Activations: what the segments sent to ad platforms earned**")
st.caption(markdown_text(loop_note))
if outcomes:
    with st.container(horizontal=True, gap="small", key="cc_outcomes"):
        for tile in outcomes[:6]:
            with st.container(width=2 * TILE_WIDTH):
                st.metric(
                    tile.label,
                    tile.value,
                    delta=tile.delta,
                    delta_color="normal",
                    border=True,
                    help="Lift in conversion: the share of sent people who ordered in the "
                    "window less the share of held-out people who did; the change is the "
                    "incremental revenue (per sent person x people sent).",
                )
                st.caption(markdown_text(tile.caption))

with st.expander(
    "Why did it change? Revenue, orders and new customers by what moved them",
    expanded="why" in url or "by" in url or "vs" in url,
    icon=":material/query_stats:",
):
    w1, w2, w3 = st.columns([2.4, 2.8, 2])
    with w1:
        why = st.segmented_control(
            "KPI", WHY_KPIS, key="cc_why", format_func=lambda k: kpis.DRIVER_KPIS[k][0]
        )
    with w2:
        against = st.segmented_control(
            "Compared with", list(AGAINST), key="cc_vs", format_func=AGAINST.get
        )
    with w3:
        split = st.selectbox("Split by", list(dimensions), key="cc_by", format_func=dimensions.get)
    breakdown = segment_call(
        kpis.kpi_drivers, filters, why or "revenue", split, against or "previous"
    )
    _show_drivers(breakdown, dimensions[split])

if not alerts.empty:
    near = kpis.alerts_near_period(alerts, first, last, options.data_end)
    if near.empty:
        latest_age = (
            pd.Timestamp(options.data_end) - pd.to_datetime(alerts["end_date"]).max()
        ).days
        st.caption(
            f"No alert in this period or the {kpis.ALERT_NEAR_DAYS} days before it; the latest "
            f"ended {kpis.alert_age(latest_age)} "
            f"({_alerts_count(len(alerts))} in the history: see *Trends & alerts*)."
        )
    else:
        newest = near.iloc[0]
        grain_label = kpis.GRAIN_LABELS.get(newest["grain"], "")
        st.warning(
            f"**{_alerts_count(len(near))} in this period or the "
            f"{kpis.ALERT_NEAR_DAYS} days before it.** Newest ({grain_label} series, ended "
            f"{kpis.alert_age(int(newest['age_days']))}): {markdown_text(newest['message'])}. "
            f"{_alerts_count(len(alerts))} in the history: see *Trends & alerts*.",
            icon=":material/notifications_active:",
        )
        st.button(
            "Show it on the trend",
            key="cc_show_alert",
            on_click=_focus_alert,
            args=(kpis.alert_key(newest), newest["metric"], newest["grain"]),
            help="Opens the trend below on this alert's series and days.",
        )

# ---- sections ---------------------------------------------------------------------------------
# Only the open section runs (lazy tabs): each holds charts that cost the browser time.
trends, funnel_tab, cohorts_tab, journeys_tab = st.tabs(
    list(SECTIONS), key="cc_section", on_change="rerun"
)

if trends.open:
    with trends:
        monitored = db.cached(kpis.monitored_channels)
        if not monitored:
            st.info(
                db.missing_output("forecasts", ["kpi_alerts"], "at least a few weeks of orders")
            )
        else:
            c1, c2, c3 = st.columns([2.6, 1.3, 4])
            with c1:
                metric = st.segmented_control(
                    "KPI",
                    METRIC_KEYS,
                    key="cc_metric",
                    format_func=lambda m: kpis.METRICS[m][0],
                )
            with c2:
                grain = st.segmented_control(
                    "Grain",
                    GRAINS,
                    key="cc_grain",
                    format_func=lambda g: kpis.GRAIN_LABELS[g],
                )
            metric, grain = metric or "revenue", grain or "day"
            if focus is not None:
                trend_channel = focus["channel"]
            else:
                trend_channel = channel if channel in monitored else "all"
            with c3:
                if focus is not None or trend_channel == channel:
                    note = ""
                else:
                    note = (
                        f" Channel {markdown_text(channel)} is too thin to monitor; showing all "
                        "channels."
                    )
                settings = kpis.ForecastSettings()
                st.caption(
                    "Forecast: robust regression with trend, weekly and yearly seasonality. Band: "
                    f"quasi-Poisson interval at {settings.z} sd, wide on purpose (thousands of "
                    "points are checked each build; a 3-sd band would raise dozens of false "
                    "alerts): a day outside it is an alert. Red points inside it are alerts too: "
                    f"runs of {', '.join(map(str, settings.sustained_days))} days whose total is "
                    f"beyond {settings.run_z} sd, or revenue that moved with an orders alert. "
                    "All customers (segment and source filters do not apply)." + note
                )
                st.caption(markdown_text(_sentence(db.cached(kpis.forecast_fit).text())))
            forecast = db.cached(kpis.kpi_forecast, metric, trend_channel, grain)
            label = kpis.METRICS[metric][0] + (
                "" if trend_channel == "all" else f" - {formatting.value_label(trend_channel)}"
            )
            if focus is not None:
                f1, f2 = st.columns([5, 1.2])
                f1.info(
                    f"Showing the alert ({kpis.GRAIN_LABELS[grain]} series): "
                    f"{markdown_text(focus['message'])}.",
                    icon=":material/center_focus_strong:",
                )
                f2.button("Show the whole trend", key="cc_clear_alert", on_click=_clear_focus)
                title = f"{label}, {kpis.GRAIN_LABELS[grain]}: the alert (shaded)"
            elif grain == "day":
                title = f"{label}, daily (last 6 months; double-click for all)"
            else:
                title = f"{label}, weekly"
            st.plotly_chart(
                db.memo(
                    kpis.figure_forecast,
                    forecast,
                    title,
                    show_days=182 if grain == "day" else None,
                    focus=(focus["start_date"], focus["end_date"]) if focus is not None else None,
                    focus_range=kpis.alert_window(focus) if focus is not None else None,
                    unit=kpis.METRICS[metric][1],
                ),
                width="stretch",
            )
            if alerts.empty:
                st.success("No alerts: every point is inside its band.")
            else:
                shown = alerts.assign(
                    kpi=alerts["metric"].map(lambda m: kpis.METRICS[m][0]),
                    change=alerts["change_pct"],
                    age=(
                        pd.Timestamp(options.data_end) - pd.to_datetime(alerts["end_date"])
                    ).dt.days,
                    grain=alerts["grain"].map(kpis.GRAIN_LABELS),
                )[
                    [
                        "end_date",
                        "age",
                        "start_date",
                        "kpi",
                        "channel",
                        "grain",
                        "direction",
                        "change",
                        "message",
                    ]
                ]
                table_key = f"cc_alert_table_{st.session_state.get('cc_alert_table_v', 0)}"
                rows = [
                    (kpis.alert_key(a), a["metric"], a["grain"]) for a in alerts.to_dict("records")
                ]
                st.caption("Pick an alert to open the trend on its series and days.")
                tables.show_table(
                    shown,
                    hide_index=True,
                    width="stretch",
                    height=240,
                    key=table_key,
                    on_select=partial(_pick_alert, table_key, rows),
                    selection_mode="single-row",
                    column_config={
                        "end_date": st.column_config.DateColumn("Until"),
                        "age": st.column_config.NumberColumn(
                            "Age (days)", help="Days from the alert's last day to the data end"
                        ),
                        "start_date": st.column_config.DateColumn("From"),
                        "kpi": "KPI",
                        "change": st.column_config.NumberColumn("vs forecast", format="percent"),
                        "message": st.column_config.TextColumn("What moved", width="large"),
                    },
                )

if funnel_tab.open:
    with funnel_tab:
        funnel = segment_call(
            kpis.funnel_by_segment,
            days,
            kpis.funnel_scheme(filters, options),
            segment_name if scheme == kpis.SAVED else None,
        )
        if funnel.empty:
            st.info(db.missing_output("funnel", ["radar_funnel"], "events and orders"))
        else:
            left, right = st.columns([2, 3])
            chosen = segment_name if scheme != "all" else None
            with left:
                st.plotly_chart(db.memo(kpis.figure_funnel, funnel, chosen), width="stretch")
            with right:
                st.plotly_chart(db.memo(kpis.figure_funnel_rates, funnel), width="stretch")
            membership = set(funnel["membership"]) - {"everyone"}
            if membership == {"period_start"}:
                who = (
                    "Segments are each customer's segment on the day before the period (recomputed "
                    "from the orders up to that day), so what happens in the period does not decide "
                    "the segment. "
                )
            elif membership:
                who = (
                    "Segments are today's: they are decided partly by the orders of this very "
                    "period, so a segment of recent buyers converts well by definition. "
                )
            else:
                who = ""
            if chosen and chosen not in set(funnel["segment"]):
                who += (
                    f"Nobody was in {markdown_text(chosen)} at the period start: showing everyone. "
                )
            st.caption(
                f"Last {kpis.funnel_period(days)} days to the data end. {who}**Reached**: any event "
                "(send, impression, visit, ...); **engaged**: opened, clicked or visited; "
                "**converted**: engaged and ordered; **repeat**: converted with 2+ lifetime orders; "
                f"**loyal**: repeat with {kpis.LOYAL_MIN_ORDERS}+ lifetime orders. Each stage is a "
                "subset of the one before."
            )

if cohorts_tab.open:
    with cohorts_tab:
        cohorts = segment_call(kpis.cohort_retention, scheme, segment_name)
        if cohorts.empty:
            st.info(db.missing_output("cohorts", ["radar_funnel"], "orders"))
        else:
            st.plotly_chart(db.memo(kpis.figure_cohort_heatmap, cohorts), width="stretch")
            st.caption(
                "Cohort = month of the first order. Cell = share of the cohort that ordered in that "
                "month after its first; the latest month may be partial."
            )

if journeys_tab.open:
    with journeys_tab:
        summary = segment_call(kpis.first_purchase_summary, scheme, segment_name)
        paths = segment_call(kpis.first_purchase_paths, scheme, segment_name)
        lookback = kpis.JOURNEY_LOOKBACK_DAYS
        if summary["customers"] == 0:
            st.info(
                db.missing_output(
                    "journeys to a first purchase", ["radar_funnel"], "events and orders"
                )
            )
        else:
            untracked_share = summary["untracked"] / summary["customers"]
            st.caption(
                f"**{summary['customers']:,} customers** made a first purchase: "
                f"**{summary['tracked']:,}** with a tracked touch (impression, send, open, click, "
                f"visit or call) in the {lookback} days before it, **{summary['untracked']:,}** "
                f"({untracked_share:.0%}) without one. Those have no path and are left out of the "
                "charts below; their first touch may predate the data or the lookback, or come from "
                "a channel that is not tracked per customer (tv, print, an anonymous visit)."
            )
            if paths.empty:
                st.info("No first purchase in this segment had a tracked touch before it.")
            else:
                st.plotly_chart(db.memo(kpis.figure_journey_sankey, paths), width="stretch")
                a, b = st.columns(2)
                with a:
                    lengths = segment_call(kpis.path_length_distribution, scheme, segment_name)
                    st.plotly_chart(
                        db.memo(
                            kpis.figure_distribution,
                            lengths,
                            "path_length",
                            "customers",
                            "Path length",
                            "channel steps",
                        ),
                        width="stretch",
                    )
                with b:
                    ttc = segment_call(kpis.time_to_convert_distribution, scheme, segment_name)
                    st.plotly_chart(
                        db.memo(
                            kpis.figure_distribution,
                            ttc,
                            "days_to_convert",
                            "customers",
                            "Time to convert",
                            "days from first touch to first order",
                        ),
                        width="stretch",
                    )
                st.caption(
                    f"Each customer's first order and the channels touched in the {lookback} days "
                    "before it, repeats in a row collapsed; the last four steps shown. Segments are "
                    "today's. Attribution (Conductor) uses every order, not just the first."
                )
