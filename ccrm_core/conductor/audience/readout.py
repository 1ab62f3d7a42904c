"""Test and learn: what each activation did, measured against its withheld holdout.

For each activation, its first export (run 1) is the start: its members are the people of the
test, sent (treated) or held out (control, never in any file). For `days` days after the
export (orders with start < ts <= start + days, and no later than the data's last day), per arm:

- conversion rate p = people with at least one order / people;
- lift = p_treated - p_control (absolute, share points) and relative lift = lift / p_control;
  95% interval lift +- 1.96 * sqrt(p_t (1 - p_t) / n_t + p_c (1 - p_c) / n_c) (Wald, normal
  approximation for a difference of proportions, as statsmodels' confint_proportions_2indep
  'wald'); p-value two-sided from the pooled z-test z = lift / sqrt(p (1 - p) (1/n_t + 1/n_c)),
  p = pooled conversion (statsmodels' proportions_ztest);
- revenue per person r = window revenue / people (people without an order count as 0);
  incremental revenue per person = r_treated - r_control with a Welch interval
  +- t(0.975, df) * sqrt(s_t^2 / n_t + s_c^2 / n_c) (s^2: the sample variance of revenue per
  person, df: Welch-Satterthwaite) and its two-sided Welch t-test p-value;
- incremental revenue = incremental revenue per person * treated people (interval likewise);
  extra orders = (orders per person treated - control) * treated people.

An activation without a holdout (share 0) has nothing to compare with: its row says so and has
no lift. A window that runs past the data is cut at the data's last day and flagged
(window_complete False, days_observed). Everything is a function of the tables and the
arguments: money sums are exact (store.exact_sum), rows sorted by export time and name.

Summaries by segment or destination (`readout_summary`) combine the activations' own estimates,
weighted by treated people (a stratified estimate: each activation is compared only with its own
holdout), with normal intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from ccrm_core.foundation import formatting, store
from ccrm_core.foundation.rendering import plotly_text

Z95 = float(stats.norm.ppf(0.975))
DEFAULT_WINDOW_DAYS = 30
DEFAULT_PERIOD_DAYS = 90

READOUT_COLUMNS = [
    "activation",
    "scheme",
    "segment",
    "destination",
    "holdout_share",
    "exported_at",
    "window_days",
    "days_observed",
    "window_complete",
    "members",
    "treated",
    "control",
    "treated_converters",
    "control_converters",
    "treated_conversion",
    "control_conversion",
    "lift",
    "relative_lift",
    "ci_low",
    "ci_high",
    "p_value",
    "lift_se",
    "treated_orders_per_person",
    "control_orders_per_person",
    "extra_orders",
    "treated_revenue_per_person",
    "control_revenue_per_person",
    "incremental_revenue_per_person",
    "incremental_revenue_per_person_low",
    "incremental_revenue_per_person_high",
    "revenue_p_value",
    "revenue_se",
    "incremental_revenue",
    "incremental_revenue_low",
    "incremental_revenue_high",
    "note",
]
# What only a holdout gives (missing for an activation without one).
_COMPARISONS = [
    c
    for c in READOUT_COLUMNS[READOUT_COLUMNS.index("control_conversion") : -1]
    if not c.startswith("treated_")
]
# Columns that hold shares (0..1) the page shows as percentages.
PERCENT_COLUMNS = (
    "holdout_share",
    "treated_conversion",
    "control_conversion",
    "lift",
    "relative_lift",
    "ci_low",
    "ci_high",
)
SUMMARY_COLUMNS = [
    "activations",
    "treated",
    "control",
    "lift",
    "ci_low",
    "ci_high",
    "p_value",
    "incremental_revenue_per_person",
    "incremental_revenue_per_person_low",
    "incremental_revenue_per_person_high",
    "incremental_revenue",
    "incremental_revenue_low",
    "incremental_revenue_high",
]

# Per activation and arm: people, converters, orders, revenue and the sum of squared revenue per
# person in the window after the first export (parameters: days, end of the data).
_ARMS_SQL = f"""
WITH first_run AS (
    SELECT activation_id, run, exported_at FROM activation_runs
    QUALIFY row_number() OVER (PARTITION BY activation_id ORDER BY run) = 1
),
people AS (
    SELECT m.activation_id, m.customer_id, bool_or(m.held_out) AS held_out, f.exported_at
    FROM activation_members m JOIN first_run f USING (activation_id, run)
    GROUP BY ALL
),
outcome AS (
    SELECT p.activation_id, p.held_out, p.customer_id, count(o.order_id) AS orders,
           coalesce({store.exact_sum("o.revenue")}, 0) AS revenue
    FROM people p LEFT JOIN customer_orders o
      ON o.customer_id = p.customer_id AND o.ts > p.exported_at
     AND o.ts <= p.exported_at + to_days(CAST(? AS INTEGER)) AND o.ts < ?
    GROUP BY ALL
)
SELECT activation_id, held_out, count(*) AS people,
       sum(CAST(orders > 0 AS BIGINT)) AS converters, sum(orders) AS orders,
       {store.exact_sum("revenue")} AS revenue, {store.exact_sum("revenue * revenue")} AS revenue_sq
FROM outcome
GROUP BY ALL
ORDER BY activation_id, held_out
"""  # noqa: S608 - our SQL; sums from store.exact_sum


def _data_end(con: duckdb.DuckDBPyConnection) -> date:
    """The last day with an order (today when there is none)."""
    row = con.execute("SELECT CAST(max(ts) AS DATE) FROM customer_orders").fetchall()
    return row[0][0] if row and row[0][0] is not None else date.today()


def _as_of_end(con: duckdb.DuckDBPyConnection, as_of: date | datetime | None) -> datetime:
    """The end (exclusive) of the observed data: midnight after `as_of` (default: the last day
    with an order)."""
    day = _data_end(con) if as_of is None else as_of
    if isinstance(day, datetime):
        day = day.date()
    return datetime.combine(day, datetime.min.time()) + timedelta(days=1)


def _ready(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the activation tables and the customers' orders (identity stage) exist."""
    return store.table_exists(con, "activations") and store.table_exists(con, "customer_orders")


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def arm_statistics(
    n_t, x_t, orders_t, rev_t, revsq_t, n_c, x_c, orders_c, rev_c, revsq_c
) -> dict[str, np.ndarray]:
    """The readout's statistics from per-arm sums (arrays, one entry per test): people n,
    converters x, orders, revenue and the sum of squared revenue per person, treated (_t) and
    control (_c). See the module docstring for the formulas."""
    n_t, n_c = np.asarray(n_t, dtype=float), np.asarray(n_c, dtype=float)
    x_t, x_c = np.asarray(x_t, dtype=float), np.asarray(x_c, dtype=float)
    p_t, p_c = _safe_div(x_t, n_t), _safe_div(x_c, n_c)
    lift = p_t - p_c
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
        pooled = (x_t + x_c) / (n_t + n_c)
        se0 = np.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
        ok = (n_t > 0) & (n_c > 0)
        se = np.where(ok & (se > 0), se, np.nan)
        z = np.where(ok & (se0 > 0), lift / se0, np.nan)
        p_value = 2 * stats.norm.sf(np.abs(z))
        # revenue per person: Welch
        m_t, m_c = _safe_div(rev_t, n_t), _safe_div(rev_c, n_c)
        var_t = np.maximum(np.asarray(revsq_t, float) - n_t * m_t**2, 0) / (n_t - 1)
        var_c = np.maximum(np.asarray(revsq_c, float) - n_c * m_c**2, 0) / (n_c - 1)
        var_t = np.where(n_t > 1, var_t, np.nan)
        var_c = np.where(n_c > 1, var_c, np.nan)
        rse = np.sqrt(var_t / n_t + var_c / n_c)
        rse = np.where(rse > 0, rse, np.nan)
        df = rse**4 / ((var_t / n_t) ** 2 / (n_t - 1) + (var_c / n_c) ** 2 / (n_c - 1))
        t_crit = stats.t.ppf(0.975, df)
        diff = m_t - m_c
        rev_p = 2 * stats.t.sf(np.abs(diff / rse), df)
    return {
        "treated_conversion": p_t,
        "control_conversion": p_c,
        "lift": lift,
        "relative_lift": _safe_div(lift, p_c),
        "ci_low": lift - Z95 * se,
        "ci_high": lift + Z95 * se,
        "p_value": p_value,
        "lift_se": se,
        "treated_orders_per_person": _safe_div(orders_t, n_t),
        "control_orders_per_person": _safe_div(orders_c, n_c),
        "treated_revenue_per_person": m_t,
        "control_revenue_per_person": m_c,
        "incremental_revenue_per_person": diff,
        "incremental_revenue_per_person_low": diff - t_crit * rse,
        "incremental_revenue_per_person_high": diff + t_crit * rse,
        "revenue_p_value": rev_p,
        "revenue_se": rse,
    }


def exports_version(con: duckdb.DuckDBPyConnection) -> str:
    """Changes whenever an activation is created, exported or deleted (a cache key for the
    readouts, which an export changes without a new data version)."""
    if not _ready(con):
        return "none"
    [(activations, runs, last)] = con.execute(
        "SELECT (SELECT count(*) FROM activations), count(*), max(exported_at) FROM activation_runs"
    ).fetchall()
    return f"{activations}:{runs}:{last}"


def activation_readout(
    con: duckdb.DuckDBPyConnection,
    days: int = DEFAULT_WINDOW_DAYS,
    as_of: date | datetime | None = None,
) -> pd.DataFrame:
    """One row per activation with an export (READOUT_COLUMNS), oldest export first: members
    of its first export, treated (sent) against control (held out), conversion, orders and
    revenue in the `days` days after the export, as of `as_of` (default: the last day with an
    order). See the module docstring for the formulas. Empty before any export."""
    days = int(days)
    if days < 1:
        raise ValueError(f"days after the export must be at least 1 (got {days})")
    if not _ready(con):
        return pd.DataFrame(columns=READOUT_COLUMNS)
    end = _as_of_end(con, as_of)
    acts = con.execute(
        """
        SELECT a.activation_id, a.name AS activation, a.scheme, a.segment, a.destination,
               a.holdout_share, r.exported_at, r.members
        FROM activations a JOIN activation_runs r USING (activation_id)
        WHERE r.run = (SELECT min(run) FROM activation_runs x
                       WHERE x.activation_id = a.activation_id)
        ORDER BY r.exported_at, a.name
        """
    ).df()
    if acts.empty:
        return pd.DataFrame(columns=READOUT_COLUMNS)
    arms = con.execute(_ARMS_SQL, [days, end]).df()
    sums = ["people", "converters", "orders", "revenue", "revenue_sq"]
    wide = {}
    for held, tag in ((False, "t"), (True, "c")):
        part = arms[arms["held_out"] == held].set_index("activation_id")[sums]
        wide[tag] = part.reindex(acts["activation_id"]).fillna(0)
    t, c = wide["t"], wide["c"]
    s = arm_statistics(
        t["people"], t["converters"], t["orders"], t["revenue"], t["revenue_sq"],
        c["people"], c["converters"], c["orders"], c["revenue"], c["revenue_sq"],
    )  # fmt: skip
    out = acts.drop(columns=["activation_id"]).copy()
    out["exported_at"] = pd.to_datetime(out["exported_at"])
    start = out["exported_at"]
    observed = ((pd.Timestamp(end) - start).dt.total_seconds() / 86400).clip(0, days)
    out["window_days"] = days
    out["days_observed"] = np.floor(observed.to_numpy()).astype(np.int64)
    out["window_complete"] = (start + pd.Timedelta(days=days) < pd.Timestamp(end)).to_numpy()
    out["members"] = out["members"].astype(np.int64)
    out["treated"] = t["people"].to_numpy().astype(np.int64)
    out["control"] = c["people"].to_numpy().astype(np.int64)
    out["treated_converters"] = t["converters"].to_numpy().astype(np.int64)
    out["control_converters"] = c["converters"].to_numpy().astype(np.int64)
    for name, values in s.items():
        out[name] = np.asarray(values, dtype=float)
    treated = out["treated"].to_numpy(dtype=float)
    out["extra_orders"] = (
        out["treated_orders_per_person"] - out["control_orders_per_person"]
    ) * treated
    for suffix in ("", "_low", "_high"):
        out[f"incremental_revenue{suffix}"] = (
            out[f"incremental_revenue_per_person{suffix}"] * treated
        )
    no_holdout = out["control"] == 0
    out.loc[no_holdout, _COMPARISONS] = np.nan
    out["note"] = [
        _note(h, ctl, obs, complete, days)
        for h, ctl, obs, complete in zip(
            out["holdout_share"],
            out["control"],
            out["days_observed"],
            out["window_complete"],
            strict=True,
        )
    ]
    return out[READOUT_COLUMNS].reset_index(drop=True)


def _note(share: float, control: int, observed: int, complete: bool, days: int) -> str:
    if share <= 0:
        return "No holdout: nothing to compare with, so no lift"
    if control == 0:
        return "Nobody was held out on the first export: no lift"
    if observed <= 0:
        return "No data after the export yet"
    if not complete:
        return f"Window not complete: {observed} of {days} days observed"
    return ""


def readout_summary(readout: pd.DataFrame, by: str = "segment") -> pd.DataFrame:
    """The readout combined by `by` ('segment' (with its scheme) or 'destination'): per group,
    the activations with a holdout, their treated-weighted lift and incremental revenue per
    person with 95% normal intervals from the activations' standard errors, and the summed
    incremental revenue. Activations without a holdout or without data are left out."""
    keys = {"segment": ["scheme", "segment"], "destination": ["destination"]}.get(by)
    if keys is None:
        raise ValueError(f"summarise by 'segment' or 'destination', not {by!r}")
    usable = readout[readout["control"].gt(0) & readout["lift_se"].notna()].copy()
    if usable.empty:
        return pd.DataFrame(columns=[*keys, *SUMMARY_COLUMNS])
    rows = []
    for group, part in usable.groupby(keys, sort=True):
        n = part["treated"].to_numpy(dtype=float)
        w = n / n.sum()
        lift = float((w * part["lift"]).sum())
        se = float(np.sqrt((w**2 * part["lift_se"] ** 2).sum()))
        rpp = part["incremental_revenue_per_person"].to_numpy(dtype=float)
        rse = part["revenue_se"].to_numpy(dtype=float)
        total = float((n * rpp).sum())
        total_se = float(np.sqrt(np.nansum((n * rse) ** 2)))
        per = total / n.sum()
        per_se = total_se / n.sum()
        group = group if isinstance(group, tuple) else (group,)
        if len(part) == 1:  # one activation: its own figures (pooled z-test, Welch interval)
            one = part.iloc[0]
            rows.append([*group, 1, int(one["treated"]), int(one["control"]),
                         *(float(one[c]) for c in SUMMARY_COLUMNS[3:])])  # fmt: skip
            continue
        rows.append(
            [
                *group,
                len(part),
                int(part["treated"].sum()),
                int(part["control"].sum()),
                lift,
                lift - Z95 * se,
                lift + Z95 * se,
                float(2 * stats.norm.sf(abs(lift / se))) if se > 0 else np.nan,
                per,
                per - Z95 * per_se,
                per + Z95 * per_se,
                total,
                total - Z95 * total_se,
                total + Z95 * total_se,
            ]
        )
    return pd.DataFrame(rows, columns=[*keys, *SUMMARY_COLUMNS])


_SCHEME_LABELS = {"saved": "Saved segment", "rfm_segment": "RFM segment",
                  "value_tier": "Value tier", "needs_segment": "Needs segment"}  # fmt: skip
READOUT_TABLE_COLUMNS = [
    "activation", "segment", "destination", "exported_at", "days_observed", "treated",
    "control", "treated_conversion", "control_conversion", "lift", "ci_low", "ci_high",
    "p_value", "incremental_revenue_per_person", "incremental_revenue_per_person_low",
    "incremental_revenue_per_person_high", "incremental_revenue", "note",
]  # fmt: skip


def _words(frame: pd.DataFrame) -> pd.DataFrame:
    """Destinations and schemes in users' words (Meta Custom Audience, Saved segment)."""
    from ccrm_core.conductor.audience.destinations import DESTINATIONS

    out = frame.copy()
    if "destination" in out:
        labels = {k: d.label for k, d in DESTINATIONS.items()}
        out["destination"] = out["destination"].map(lambda v: labels.get(v, v))
    if "scheme" in out:
        out["scheme"] = out["scheme"].map(lambda v: _SCHEME_LABELS.get(v, v))
    return out


def readout_table(readout: pd.DataFrame) -> pd.DataFrame:
    """The readout as the page shows it: READOUT_TABLE_COLUMNS, destinations in words."""
    return _words(readout[READOUT_TABLE_COLUMNS])


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """A `readout_summary` as the page shows it: destinations and schemes in words."""
    return _words(summary)


def segment_activation_outcomes(
    con: duckdb.DuckDBPyConnection,
    days: int = DEFAULT_WINDOW_DAYS,
    as_of: date | datetime | None = None,
    period_days: int = DEFAULT_PERIOD_DAYS,
) -> pd.DataFrame:
    """Per (scheme, segment): the activations whose first export falls in the `period_days`
    days up to `as_of` (default: the last day with an order), newest first, with their measured
    lift, interval, p-value and incremental revenue over `days` days after the export; `latest`
    marks the newest per segment. Columns: scheme, segment, activation, destination,
    exported_at, window_complete, days_observed, treated, control, lift, ci_low, ci_high,
    p_value, incremental_revenue, incremental_revenue_low, incremental_revenue_high, note,
    latest."""
    cols = [
        "scheme", "segment", "activation", "destination", "exported_at", "window_complete",
        "days_observed", "treated", "control", "lift", "ci_low", "ci_high", "p_value",
        "incremental_revenue", "incremental_revenue_low", "incremental_revenue_high", "note",
    ]  # fmt: skip
    readout = activation_readout(con, days, as_of)
    if readout.empty:
        return pd.DataFrame(columns=[*cols, "latest"])
    end = pd.Timestamp(_as_of_end(con, as_of))
    since = end - pd.Timedelta(days=int(period_days))
    recent = readout[(readout["exported_at"] >= since) & (readout["exported_at"] < end)]
    recent = recent.sort_values(
        ["scheme", "segment", "exported_at", "activation"], ascending=[True, True, False, True]
    )[cols]
    recent = recent.reset_index(drop=True)
    recent["latest"] = ~recent.duplicated(["scheme", "segment"])
    return recent


@dataclass(frozen=True)
class OutcomeTile:
    """One activation's measured outcome as the Command Center shows it beside the KPI tiles:
    `label` the activation's name, `value` the lift in conversion (percentage points, or why
    there is none), `delta` the incremental revenue (None without a holdout), `caption` who was
    sent where and when, the 95% interval, the p-value and whether the window is complete."""

    scheme: str
    segment: str
    label: str
    value: str
    delta: str | None
    caption: str


def period_outcomes(
    con: duckdb.DuckDBPyConnection,
    first: date,
    last: date,
    days: int = DEFAULT_WINDOW_DAYS,
    scheme: str | None = None,
    segment: str | None = None,
) -> tuple[list[OutcomeTile], str]:
    """The newest activation per segment whose first export falls between `first` and `last`
    (inclusive), measured `days` days after its export with the orders up to `last`, as
    OutcomeTiles (newest export first); only the segment (scheme, segment) when given. The
    second value says what is shown, or why nothing is: no activation yet, or none in the
    period with the newest one's export day."""
    period_days = (pd.Timestamp(last) - pd.Timestamp(first)).days + 1
    end_of_last = datetime.combine(last, datetime.max.time())
    outcomes = segment_activation_outcomes(con, days, end_of_last, period_days)
    if scheme is not None and segment is not None:
        outcomes = outcomes[(outcomes["scheme"] == scheme) & (outcomes["segment"] == segment)]
    outcomes = outcomes[outcomes["latest"].astype(bool)].sort_values(
        ["exported_at", "activation"], ascending=[False, True]
    )
    if outcomes.empty:
        every = activation_readout(con, days, end_of_last)
        if scheme is not None and segment is not None:
            every = every[(every["scheme"] == scheme) & (every["segment"] == segment)]
        every = every[every["exported_at"] <= pd.Timestamp(end_of_last)]
        if every.empty:
            return [], (
                "No activation measured yet: export a segment to Google Ads or Meta with a "
                "holdout (Segment Explorer) to see here what it earned."
            )
        newest = every.sort_values("exported_at").iloc[-1]
        return [], (
            f"No activation was sent in this period; the newest, {newest['activation']}, was "
            f"sent on {formatting.date_text(pd.Timestamp(newest['exported_at']).date())}: choose a longer period, "
            "or see Attribution, Test and learn."
        )
    tiles = [_outcome_tile(row) for row in outcomes.to_dict("records")]
    return tiles, (
        f"Newest activation per segment sent in this period, measured over the {days} days "
        "after its export (sent people against the held-out ones; Attribution, Test and learn "
        "has the details)."
    )


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _outcome_tile(row: dict) -> OutcomeTile:
    from ccrm_core.conductor.audience.destinations import DESTINATIONS
    from ccrm_core.radar.kpis.filters import segment_label

    where = (
        DESTINATIONS[row["destination"]].label
        if row["destination"] in DESTINATIONS
        else (formatting.value_label(row["destination"]))
    )
    sent = (
        f"{segment_label(row['scheme'], row['segment'])} · {where} · sent "
        f"{formatting.date_text(pd.Timestamp(row['exported_at']).date())} to "
        f"{int(row['treated']):,} people, "
        f"{int(row['control']):,} held out"
    )
    if formatting.is_missing(row["lift"]):
        return OutcomeTile(
            row["scheme"], row["segment"], row["activation"], "not measured", None,
            f"{sent}. {row['note']}",
        )  # fmt: skip
    points = 100.0 * float(row["lift"])
    interval = (
        f"95% interval {100.0 * float(row['ci_low']):+.1f} to {100.0 * float(row['ci_high']):+.1f}"
        f" points, {_p_text(float(row['p_value']))}"
    )
    note = f" {row['note']}" if row["note"] else ""
    return OutcomeTile(
        scheme=row["scheme"],
        segment=row["segment"],
        label=row["activation"],
        value=f"{points:+.1f} pts",
        delta=f"{formatting.money(float(row['incremental_revenue']), sign=True, whole=True)} "
        "revenue",
        caption=f"{sent}. Lift in conversion; {interval}.{note}",
    )


def chart_activation_lift(readout: pd.DataFrame, measure: str = "lift") -> go.Figure:
    """Per activation with a holdout, the lift in conversion (measure 'lift', share points) or
    the incremental revenue per person ('revenue', currency) with its 95% interval, and a line
    at zero (no effect)."""
    if measure == "lift":
        col, low, high = "lift", "ci_low", "ci_high"
        title, axis = "Lift in conversion with 95% interval", "Lift (percentage points)"
        scale, hover = 100.0, "%{y}: %{x:+.1f} points (%{customdata})<extra></extra>"
    elif measure == "revenue":
        col = "incremental_revenue_per_person"
        low, high = f"{col}_low", f"{col}_high"
        title = "Incremental revenue per person with 95% interval"
        axis = "Incremental revenue per person"
        scale = 1.0
        hover = f"%{{y}}: {formatting.money_template('x')} (%{{customdata}})<extra></extra>"
    else:
        raise ValueError(f"measure is 'lift' or 'revenue', not {measure!r}")
    data = readout[readout[col].notna()]
    names = [plotly_text(n) for n in data["activation"]]
    fig = go.Figure()
    interval = [
        f"{lo * scale:,.2f} to {hi * scale:,.2f}"
        for lo, hi in zip(data[low], data[high], strict=True)
    ]
    fig.add_trace(
        go.Scatter(
            x=data[col] * scale,
            y=names,
            mode="markers",
            marker={"size": 11, "color": "#1f77b4"},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": (data[high] - data[col]) * scale,
                "arrayminus": (data[col] - data[low]) * scale,
                "thickness": 2,
            },
            customdata=interval,
            hovertemplate=hover,
            name="Estimate",
        )
    )
    fig.add_vline(x=0, line_dash="dash", line_color="#7f7f7f")
    fig.update_layout(
        title=title,
        xaxis_title=axis,
        yaxis={"autorange": "reversed"},
        height=max(240, 70 + 50 * len(data)),
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
        showlegend=False,
    )
    return fig
