"""Customer 360: find a customer, see who they are, what they did, and what to do next.

Deep link: `?customer_id=...` opens that customer. Email and phone are masked unless revealed.
"""

from __future__ import annotations

import streamlit as st

from ccrm_core.conductor import decisioning
from ccrm_core.foundation import access, audit, formatting
from ccrm_core.foundation.rendering import markdown_text
from ccrm_core.librarian import customer360 as c360
from ccrm_ui import auth, db, tables

PAGE_SIZE = 25
MESSAGE_QUOTE = 60  # characters of a typed or linked value quoted back in a message
ACTION_LABELS = {"offer": "Offer", "soft_touch": "Soft touch", "rest": "Rest"}


def reveal_contact_details(user: access.User) -> bool:
    """The reveal switch, offered only to roles that may reveal PII (admins). Turning it on is
    checked and recorded in the core (ccrm_core.foundation.audit) for each customer and search shown."""
    if not access.allowed(user, "reveal_pii"):
        st.caption("Names, contact details and addresses are masked for your role.")
        return False
    return st.toggle(
        "Reveal names, contact details and addresses",
        value=False,
        key="c360_reveal",
        help="Personal data is masked by default; revealing it is a deliberate act, written "
        "to the audit log (who, when, which customer).",
    )


def _audited_reveal(what: str, fn, *args) -> bool:
    """Run an audit.reveal_* call once per session and `what`; False when it was refused."""
    done = st.session_state.setdefault("c360_revealed", set())
    if what in done:
        return True
    try:
        db.write(fn, user, *args)
    except (access.AccessDenied, audit.AuditUnavailable) as exc:
        st.error(markdown_text(exc))
        return False
    done.add(what)
    return True


def _pct(value) -> str:
    return formatting.percent(value, 0)


def _money(value) -> str:
    return formatting.money(value)


def _open_customer(customer_id: str | None) -> None:
    if customer_id:
        st.query_params["customer_id"] = customer_id
    else:
        st.query_params.pop("customer_id", None)


def _on_pick() -> None:
    _open_customer(st.session_state.get("c360_pick"))


user = auth.require_page(__file__)  # role check (ccrm_core.foundation.access)
st.title("Customer 360")
st.caption(
    "Search by name, email, phone, customer id, source id or cookie/device id; typos and "
    'formatting are tolerated ("jon smth", "+1 (415) 555-0100"). Pick a result to open the '
    "profile; the URL (`?customer_id=...`) links straight to it."
)

query = st.text_input(
    "Search customers",
    key="c360_query",
    placeholder="name, email, phone, customer id, source id or cookie id",
)
reveal = reveal_contact_details(user)

if not db.cached(c360.search_ready):
    st.info(
        "Search needs the `search_index` build stage: run `ccrm build` (or rebuild on the Data "
        "page). A customer id in the URL still opens its profile."
    )
elif query.strip():
    results = db.cached(c360.search, query.strip(), 20)
    if results.empty:
        st.warning(
            f"No customer matches “{markdown_text(query.strip(), MESSAGE_QUOTE)}”. Try fewer or "
            "different words."
        )
    else:
        revealed = reveal and _audited_reveal(
            f"search:{query.strip()}", audit.reveal_search, results
        )
        shown = c360.mask_results(db.run(c360.with_last_order, results), revealed)
        picked = tables.show_table(
            shown[[*c360.RESULT_COLUMNS, "last_order"]],
            hide_index=True,
            width="stretch",
            key="c360_results",
            on_select="rerun",
            selection_mode="single-row",
            column_config={
                "score": st.column_config.ProgressColumn(
                    "closeness", min_value=0.0, max_value=1.0, format="%.2f"
                ),
                "matched_field": "matched on",
                "matched_value": "matched value",
                "last_order": st.column_config.DateColumn("last order"),
            },
        )
        rows = picked.selection.rows if picked is not None else []
        if rows and rows[0] < len(shown):
            # one click on a result opens it; a later pick or link is not undone by it
            chosen = str(shown["customer_id"].iloc[rows[0]])
            if st.session_state.get("c360_opened_row") != (query.strip(), chosen):
                st.session_state["c360_opened_row"] = (query.strip(), chosen)
                _open_customer(chosen)
        labels = {r.customer_id: c360.result_label(r) for r in shown.itertuples()}
        st.selectbox(
            "Open customer",
            options=list(labels),
            index=None,
            format_func=labels.get,
            placeholder="Click a result above, or pick one here, to open the profile",
            key="c360_pick",
            on_change=_on_pick,
        )

customer_id = st.query_params.get("customer_id")
if not customer_id:
    st.info("Search for a customer above, or open a link with `?customer_id=...`.")
    st.stop()

profile = db.cached(c360.profile, customer_id)
if profile is None:
    st.error(
        f"No customer with id “{markdown_text(customer_id, MESSAGE_QUOTE)}” (URL parameter "
        "customer_id). Search for the customer above; ids change only when identity resolution "
        "merges or splits records."
    )
    st.stop()
revealed = reveal and _audited_reveal(f"customer:{customer_id}", audit.reveal_customer, customer_id)
profile = c360.mask_profile(profile, revealed)

st.divider()
st.header(markdown_text(profile.name))
city = profile.golden.set_index("field")["value"].get("city") if not profile.golden.empty else None
st.caption(
    f"{markdown_text(profile.customer_id)} · {markdown_text(city) if city else 'city unknown'} · "
    f"{len(profile.sources)} source "
    f"record(s) · {len(profile.identifiers)} cookie/device id(s)"
    + (f" · data as of {profile.as_of:%Y-%m-%d}" if profile.as_of else "")
)
if profile.missing:
    st.info(
        "Not built yet: " + ", ".join(f"`{m}`" for m in profile.missing) + " stage output. "
        "Run `ccrm build` to see everything; the rest of the profile is shown."
    )

value = profile.value or {}
prop = profile.propensity or {}
m = st.columns(6)
m[0].metric("Orders", formatting.number(value.get("orders")))
m[1].metric("Revenue", _money(value.get("revenue")))
m[2].metric("CLV", _money(value.get("clv")), help="Customer lifetime value (value stage)")
m[3].metric(
    "P(alive)",
    _pct(value.get("prob_alive")),
    help="Probability the customer is still active (BG/NBD)",
)
m[4].metric("P(buy 30d)", _pct(prop.get("p_buy_30d")), help="Propensity to buy in the next 30 days")
m[5].metric(
    "Churn risk",
    _pct(prop.get("churn_risk")),
    help="Past buyer: probability of no purchase in the next 90 days",
)

g = st.columns(3)
value_share = profile.percentiles.get("clv", profile.percentiles.get("revenue"))
value_basis = "CLV" if "clv" in profile.percentiles else "revenue"
g[0].plotly_chart(
    db.memo(c360.chart_gauge, value_share, f"Value ({value_basis} pct.)"),
    width="stretch",
    key="g_value",
)
g[1].plotly_chart(
    db.memo(c360.chart_gauge, prop.get("p_buy_30d"), "Buy in 30 days"),
    width="stretch",
    key="g_buy",
)
g[2].plotly_chart(
    db.memo(c360.chart_gauge, prop.get("churn_risk"), "Churn risk", good_high=False),
    width="stretch",
    key="g_churn",
)
if profile.segments:
    st.caption(
        "Segments: "
        + " · ".join(
            f"{markdown_text(k.replace('_', ' '))}: **{markdown_text(v)}**"
            for k, v in profile.segments.items()
            if v
        )
    )

tab_nba, tab_timeline, tab_profile, tab_consent, tab_ids, tab_model = st.tabs(
    ["Next best action", "Timeline", "Golden record", "Consents & fatigue", "Identifiers", "Model"]
)

with tab_nba:
    nba = profile.nba
    if nba is None:
        st.info("No decision yet: run the `nba` build stage (`ccrm build`).")
    else:
        label = markdown_text(ACTION_LABELS.get(nba["action"], nba["action"]))
        where = f" on **{markdown_text(nba['channel'])}**" if nba.get("channel") else ""
        offer = (
            f": {markdown_text(nba['campaign_name'])} ({markdown_text(nba['offer'])})"
            if nba.get("campaign_name")
            else ""
        )
        if nba["action"] == "offer":
            st.success(
                f"**{label}**{where}{offer} · expected value {_money(nba['expected_value'])}"
            )
        elif nba["action"] == "soft_touch":
            st.info(f"**{label}**{where} — no offer")
        else:
            st.warning(f"**{label}** — no contact now")
        st.markdown("**Why**")
        st.markdown("\n".join(f"- {markdown_text(r)}" for r in nba.get("reasons") or []))
        st.markdown("**Each channel**")
        tables.show_table(
            db.run(c360.channel_outcomes, nba, profile.consents, profile.fatigue),
            hide_index=True,
            width="stretch",
            key="c360_channel_outcomes",
            column_config={
                "channel": st.column_config.TextColumn("Channel"),
                "expected_value": st.column_config.NumberColumn("Expected value", format="%.2f"),
                "outcome": st.column_config.TextColumn("Chosen, or why not"),
            },
        )
        st.caption(
            "Expected value = p(buy in 30 days) × order value × channel weight − contact cost; "
            "channels without consent or over their frequency caps are never used. "
            f"Policy: {decisioning.DEFAULT_POLICY_FILE} (decided as of {nba.get('as_of')})."
        )

with tab_timeline:
    first = db.cached(c360.timeline, customer_id, None, None, 1, PAGE_SIZE)
    if first.total == 0 and not first.channels:
        st.info(
            "No events or orders for this customer (or the `customer_timeline` stage has not run)."
        )
    else:
        f1, f2, f3 = st.columns([2, 2, 1])
        channels = f1.multiselect("Channels", first.channels, key="c360_channels")
        types = f2.multiselect("Event types", first.types, key="c360_types")
        page_no = f3.number_input("Page", min_value=1, value=1, step=1, key="c360_page_no")
        tl = db.cached(
            c360.timeline,
            customer_id,
            tuple(channels) or None,
            tuple(types) or None,
            int(page_no),
            PAGE_SIZE,
        )
        st.plotly_chart(
            db.memo(c360.chart_timeline, tl.chart), width="stretch", key="timeline_chart"
        )
        st.caption(
            f"Page {tl.page} of {tl.pages} · {tl.total:,} row(s) under the filters, newest first"
            + (f" · chart shows the latest {len(tl.chart):,}" if len(tl.chart) < tl.total else "")
        )
        tables.show_table(tl.rows, hide_index=True, width="stretch")

with tab_profile:
    st.markdown("Golden record: each field's value and the source system it came from.")
    tables.show_table(profile.golden, hide_index=True, width="stretch")
    st.markdown(f"**Source records** ({len(profile.sources)})")
    tables.show_table(profile.sources, hide_index=True, width="stretch")

with tab_consent:
    left, right = st.columns(2)
    with left:
        st.markdown("**Consents** (latest per channel; no record = no consent)")
        if profile.consents.empty:
            st.caption("No consent on record for any channel.")
        else:
            tables.show_table(profile.consents, hide_index=True, width="stretch")
    with right:
        st.markdown("**Contact fatigue** (contacts in the last 7 / 30 days against the caps)")
        tables.show_table(
            profile.fatigue,
            hide_index=True,
            width="stretch",
            column_config={"over_cap": st.column_config.CheckboxColumn("over cap")},
        )

with tab_ids:
    st.markdown("Cookies and devices linked to this customer (by login or identity resolution).")
    if profile.identifiers.empty:
        st.caption("No cookie or device id linked.")
    else:
        tables.show_table(profile.identifiers, hide_index=True, width="stretch")
    st.caption(
        "Source ids: "
        + ", ".join(
            markdown_text(f"{s}:{i}")
            for s, i in zip(
                profile.sources["source_system"], profile.sources["source_id"], strict=True
            )
        )
    )

with tab_model:
    if profile.models is None or profile.models.empty:
        st.info("No propensity model yet: run the `propensity` build stage.")
    else:
        st.markdown(
            "Gradient-boosted trees (scikit-learn) on behaviour before a cutoff; **holdout AUC** "
            "is measured on a later, unseen window (time-based split)."
        )
        show = profile.models[
            [
                "target",
                "horizon_days",
                "train_cutoff",
                "holdout_cutoff",
                "train_rows",
                "holdout_rows",
                "holdout_base_rate",
                "holdout_auc",
            ]
        ]
        tables.show_table(show, hide_index=True, width="stretch")
