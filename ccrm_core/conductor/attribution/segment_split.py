"""Reconciliation by media and segment: each channel's incremental revenue from the (calibrated)
media mix model split across the segments of every scheme by the segments' attributed shares.

For scheme S, segment s and channel c with attributed revenue A(s, c) (multi-touch credit of one
attribution model, `mart_attribution`) and media mix model incremental revenue I(c) over the
fitted period (`mart_reconciliation`, after lift-test calibration):

    I(s, c) = I(c) * A(s, c) / sum over segments t of S of A(t, c)

and the same for the 90% interval ends I_low(c), I_high(c). Per channel the segments of a scheme
add up to I(c) (to float rounding). Where a channel's attributed revenue in the scheme is positive
the cell equals the calibrated attribution A(s, c) * f_S(c) (`calibrate`), with
f_S(c) = I(c) / sum_t A(t, c) the channel's calibration factor within the scheme (attribution
runs per segment, so a scheme's sum can differ a little from the all-customers A(c)).

- A channel the scheme's attribution never credits (tv and print, seen only in aggregate spend;
  an addressable channel without tracked touches) is split by each segment's share of all its
  attributed revenue, sum over c' of A(s, c') / sum over t, c' of A(t, c'), flagged
  `split_basis = 'overall'` ("split by overall share").
- A segment with no attributed revenue for a channel (split basis 'attributed') gets 0 of it:
  attribution saw no touch of that channel convert there.
- Channels without a media mix model figure (touches but no spend) have nothing to split and
  are left out; a scheme with no attributed revenue at all is left out.

`segment_split` computes it, the `reconcile` stage stores it in `mart_segment_reconciliation`
(one row per scheme, segment and channel, sorted by scheme, segment, channel), and
`load_segment_split` / `segment_split_table` read it for the Attribution page and the Budget
Simulator's segment focus.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.foundation import formatting, store
from ccrm_core.radar.segments.schemes import SCHEMES

SEGMENT_SPLIT_TABLE = "mart_segment_reconciliation"
SEGMENT_SPLIT_COLUMNS = [
    "scheme",
    "segment",
    "channel",
    "addressable",
    "split_basis",
    "attributed_revenue",
    "segment_share",
    "calibration_factor",
    "incremental_revenue",
    "incremental_revenue_low",
    "incremental_revenue_high",
]
SPLIT_BASIS_LABELS = {
    "attributed": "by the segment's attributed revenue in the channel",
    "overall": "split by overall share",
}
SEGMENT_SPLIT_METHOD = (
    "Each channel's incremental revenue from the media mix model (after lift-test calibration) "
    "is split across the segments in proportion to the revenue attribution credits to the "
    "channel in each segment: incremental(segment, channel) = incremental(channel) × "
    "attributed(segment, channel) / attributed(all segments, channel). So the segments add up to "
    "the channel's total, and each cell is the segment's attributed revenue times the channel's "
    "calibration factor (incremental / attributed). TV and print, which attribution cannot see, "
    "are split by each segment's share of all attributed revenue (marked *); a segment with no "
    "attributed revenue in a channel gets none of it."
)
_CHANNEL_NAMES = {"tv": "TV", "sms": "SMS"}


def channel_label(channel: object) -> str:
    """A channel as users read it: 'direct_mail' -> 'Direct mail', 'tv' -> 'TV'."""
    key = str(channel)
    return _CHANNEL_NAMES.get(key.lower()) or formatting.readable_label(key)


def scheme_label(scheme: object) -> str:
    """A segment scheme as users read it: 'rfm_segment' -> 'RFM segment'."""
    key = str(scheme)
    return SCHEMES.get(key) or formatting.readable_label(key)


def segment_split(segment_attribution: pd.DataFrame, reconciliation: pd.DataFrame) -> pd.DataFrame:
    """The segment x channel split of the media mix model's incremental revenue (see the module
    docstring for the formula and the rules for tv, print and zero segments).

    segment_attribution: DataFrame(scheme, segment, channel, value) from one attribution model
    (rows of scheme 'all' are ignored: that is the per-channel reconciliation itself).
    reconciliation: `reconcile`'s output (channel, addressable, incremental_revenue[_low|_high],
    calibration_factor). Returns SEGMENT_SPLIT_COLUMNS sorted by scheme, segment, channel.
    """
    rec = reconciliation[reconciliation["incremental_revenue"].notna()].set_index("channel")
    rows: list[pd.DataFrame] = []
    att = segment_attribution[segment_attribution["scheme"] != "all"].assign(
        segment=lambda f: f["segment"].astype(str), value=lambda f: f["value"].fillna(0.0)
    )
    for scheme, part in att.groupby("scheme", sort=True):
        grid = part.pivot_table(
            index="segment", columns="channel", values="value", aggfunc="sum", fill_value=0.0
        ).sort_index()
        overall = grid.sum(axis=1)
        if not overall.sum() > 0:
            continue
        overall_share = overall / overall.sum()
        for channel in sorted(rec.index):
            column = grid[channel] if channel in grid.columns else None
            attributed = (
                column if column is not None else pd.Series(0.0, index=grid.index, dtype=float)
            )
            total = attributed.sum()
            basis = "attributed" if total > 0 else "overall"
            share = attributed / total if total > 0 else overall_share
            r = rec.loc[channel]
            factor = float(r["incremental_revenue"]) / total if total > 0 else np.nan
            rows.append(
                pd.DataFrame(
                    {
                        "scheme": str(scheme),
                        "segment": grid.index,
                        "channel": channel,
                        "addressable": bool(r["addressable"]),
                        "split_basis": basis,
                        "attributed_revenue": attributed.to_numpy(dtype=float),
                        "segment_share": share.to_numpy(dtype=float),
                        "calibration_factor": factor,
                        "incremental_revenue": float(r["incremental_revenue"]) * share.to_numpy(),
                        "incremental_revenue_low": float(r["incremental_revenue_low"])
                        * share.to_numpy(),
                        "incremental_revenue_high": float(r["incremental_revenue_high"])
                        * share.to_numpy(),
                    }
                )
            )
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in SEGMENT_SPLIT_COLUMNS})
    out = pd.concat(rows, ignore_index=True)
    return out.sort_values(["scheme", "segment", "channel"], kind="stable").reset_index(drop=True)[
        SEGMENT_SPLIT_COLUMNS
    ]


def _dtype(column: str) -> str:
    if column in ("scheme", "segment", "channel", "split_basis"):
        return "object"
    return "bool" if column == "addressable" else "float64"


def segment_split_schemes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The schemes the split covers (empty before the `reconcile` stage)."""
    if not store.table_exists(con, SEGMENT_SPLIT_TABLE):
        return []
    rows = con.execute(
        f"SELECT DISTINCT scheme FROM {SEGMENT_SPLIT_TABLE} ORDER BY scheme"  # noqa: S608 constant
    ).fetchall()
    return [r[0] for r in rows]


def load_segment_split(con: duckdb.DuckDBPyConnection, scheme: str) -> pd.DataFrame | None:
    """The stored split of one scheme (SEGMENT_SPLIT_COLUMNS plus model), or None when there is
    none (before the `reconcile` stage, or an unknown scheme)."""
    if not store.table_exists(con, SEGMENT_SPLIT_TABLE):
        return None
    frame = con.execute(
        f"SELECT * FROM {SEGMENT_SPLIT_TABLE} WHERE scheme = ? "  # noqa: S608 constant
        "ORDER BY segment, channel",
        [scheme],
    ).df()
    return frame if len(frame) else None


def split_orders(split: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Segments (largest incremental revenue first) and channels (largest first), names as
    tie-breaks, so the order is the same for the same data."""

    def ranked(key: str) -> list[str]:
        totals = split.groupby(key)["incremental_revenue"].sum()
        frame = pd.DataFrame({"name": totals.index.astype(str), "total": totals.to_numpy()})
        return frame.sort_values(["total", "name"], ascending=[False, True])["name"].tolist()

    return ranked("segment"), ranked("channel")


def channel_column(split: pd.DataFrame, channel: str) -> str:
    """The table/heatmap heading of a channel; '*' marks a channel split by overall share."""
    basis = split.loc[split["channel"] == channel, "split_basis"]
    overall = len(basis) and (basis == "overall").all()
    return channel_label(channel) + (" *" if overall else "")


def segment_split_table(split: pd.DataFrame) -> pd.DataFrame:
    """The split as users read it: one row per segment (largest first), one column per channel
    (incremental revenue, labelled as users see channels; '*' = split by overall share), then
    'All media' (the segment's incremental revenue), 'Attributed revenue' (its multi-touch credit
    over all channels) and 'Calibration factor' (incremental / attributed over the channels seen
    both ways: below 1, attribution over-credits the segment)."""
    segments, channels = split_orders(split)
    wide = split.pivot_table(
        index="segment", columns="channel", values="incremental_revenue", aggfunc="sum"
    ).reindex(index=segments, columns=channels)
    both = split[split["split_basis"] == "attributed"]
    inc_both = both.groupby("segment")["incremental_revenue"].sum().reindex(segments)
    att = split.groupby("segment")["attributed_revenue"].sum().reindex(segments)
    att_both = both.groupby("segment")["attributed_revenue"].sum().reindex(segments)
    out = pd.DataFrame({"Segment": segments})
    for channel in channels:
        out[channel_column(split, channel)] = wide[channel].to_numpy(dtype=float)
    out["All media"] = wide.sum(axis=1).to_numpy(dtype=float)
    out["Attributed revenue"] = att.to_numpy(dtype=float)
    out["Calibration factor"] = np.where(
        att_both.to_numpy(dtype=float) > 0,
        inc_both.to_numpy(dtype=float) / att_both.where(att_both > 0, 1.0).to_numpy(dtype=float),
        np.nan,
    )
    return out


def segment_split_money_columns(table: pd.DataFrame) -> list[str]:
    """The columns of `segment_split_table` that hold money (all but the segment and factor)."""
    return [c for c in table.columns if c not in ("Segment", "Calibration factor")]
