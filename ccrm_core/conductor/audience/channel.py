"""The generic audience file: a segment's customers for one channel, hashed, with everyone who
may not be contacted on that channel left out (`ccrm export audience --destination generic`).
Google Ads and Meta files, with every identifier written the way each platform documents and
the ad-consent purposes applied, are made by `destinations` and `delivery`.

Export format (CSV or Parquet), one row per customer: customer_id, email_sha256 (SHA-256 hex of
the lower-cased, trimmed email), phone_sha256 (SHA-256 hex of the E.164 phone, e.g.
'+14155550123'; empty when the stored phone is not E.164).

A member is excluded, with the first reason that applies:
1. "opted out of <channel>": the latest consent for the channel is opt_out; "... on a linked
   record": a later opt-in exists, but another source record of the same customer opted out
   (opt-out wins across merged records, so a wrong merge can never re-open a channel);
2. "no consent recorded for <channel>": no consent row for the channel (only opt_in exports);
3. "over the <channel> frequency cap (N contacts in 7 / 30 days)": the contact policy
   (ccrm_core/conductor/contact_policy.toml, read through ccrm_core.conductor.decisioning) caps the channel and the
   customer got at least that many contacts on it in the 7 / 30 days up to the data end;
4. "no email or phone to match" (ad platforms), "no email" (email), "no phone" (sms,
   call_center): nothing to send to.

Every export goes through `export_audience`: the user's role must allow it
(marketer, analyst, admin) and it is written to the audit log. An admin may ask for clear text
(`--clear-text`, or the page's checkbox): the file then also holds plain `email` and `phone`.
CSV files go through foundation.csv_export, which prefixes text that a spreadsheet would run as
a formula with `'`: a clear-text E.164 phone is written '+14155550123 (strip a leading `'`
before matching); Parquet keeps values exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.foundation import audit, csv_export, privacy, store
from ccrm_core.foundation.access import User
from ccrm_core.radar import segments

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

# Which identifiers a channel needs to reach someone (any one of them suffices).
CHANNEL_IDENTIFIERS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "sms": ("phone",),
    "call_center": ("phone",),
    "paid_search": ("email", "phone"),
    "display": ("email", "phone"),
    "social": ("email", "phone"),
    "push": (),  # addressed by customer_id in the app
    "direct_mail": (),  # addressed by customer_id through the mail house
}
AUDIENCE_COLUMNS = ["customer_id", "email_sha256", "phone_sha256"]
EXPORT_SUFFIXES = (".csv", ".csv.gz", ".parquet")


@dataclass
class AudienceExport:
    """The audience (customer_id, email_sha256, phone_sha256) and why members were left out
    (exclusions: reason, customers; largest first)."""

    scheme: str
    segment: str
    channel: str
    members: int
    audience: pd.DataFrame
    exclusions: pd.DataFrame

    @property
    def excluded(self) -> int:
        return int(self.exclusions["customers"].sum()) if len(self.exclusions) else 0


def consentable_channels(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Channels with at least one consent record, in the contract's channel order."""
    if not store.table_exists(con, "consents"):
        return []
    found = {r[0] for r in con.execute("SELECT DISTINCT channel FROM consents").fetchall()}
    ordered = [c for c in store.ADDRESSABLE_CHANNELS if c in found]
    return ordered + sorted(found - set(ordered))


def resolve_segment(
    con: duckdb.DuckDBPyConnection, name: str, scheme: str | None = None
) -> tuple[str, str]:
    """(scheme, segment) for a segment name: a saved rule segment or a value of one of the
    scheme columns. Raises ValueError naming the candidates when it is unknown or ambiguous."""
    if not segments.mart_ready(con):
        raise ValueError("mart_customer does not exist yet; run `ccrm build` (segments stage)")
    schemes = [scheme] if scheme else [segments.SAVED_SCHEME, *segments.SCHEMES]
    found = [s for s in schemes if name in segments.segment_names(con, s)]
    if len(found) == 1:
        return found[0], name
    if not found:
        known = {s: segments.segment_names(con, s) for s in schemes}
        listing = "; ".join(f"{s}: {', '.join(v) or '(none)'}" for s, v in known.items())
        raise ValueError(f"no segment named {name!r}. Known segments — {listing}")
    raise ValueError(
        f"segment {name!r} exists in several schemes ({', '.join(found)}); pass --scheme"
    )


def _policy_suppressions(
    con: duckdb.DuckDBPyConnection, channel: str, customer_ids: pd.Series
) -> pd.Series:
    """Contact-policy reason per customer (None = not suppressed): at or over the channel's
    7-day or 30-day frequency cap. All None when the policy has no caps for the channel (ad
    platforms)."""
    from ccrm_core.conductor import decisioning

    none = pd.Series([None] * len(customer_ids), index=customer_ids.index, dtype=object)
    policy = decisioning.load_policy()
    rule = policy.channel(channel)
    if rule is None or len(customer_ids) == 0:
        return none
    end = con.execute(
        "SELECT greatest((SELECT max(ts) FROM orders), (SELECT max(ts) FROM events))"
    ).fetchall()[0][0]
    if end is None:
        return none
    day_after = end.date() + timedelta(days=1)
    touches = con.execute(
        """
        SELECT customer_id,
               count(*) FILTER (WHERE ts >= CAST(? AS DATE) - INTERVAL 7 DAY) AS t7,
               count(*) AS t30
        FROM customer_events
        WHERE channel = ? AND event_type IN (SELECT unnest(?::VARCHAR[]))
          AND ts >= CAST(? AS DATE) - INTERVAL 30 DAY AND ts < CAST(? AS DATE)
          AND customer_id IS NOT NULL
        GROUP BY customer_id
        """,
        [day_after, channel, list(policy.touch_event_types), day_after, day_after],
    ).df()
    merged = pd.DataFrame({"customer_id": customer_ids.to_numpy()}).merge(
        touches, on="customer_id", how="left"
    )
    t7 = merged["t7"].fillna(0).to_numpy()
    t30 = merged["t30"].fillna(0).to_numpy()
    reason = np.where(
        t7 >= rule.cap_7d,
        f"over the {channel} frequency cap ({rule.cap_7d} contacts in 7 days)",
        np.where(
            t30 >= rule.cap_30d,
            f"over the {channel} frequency cap ({rule.cap_30d} contacts in 30 days)",
            None,
        ),
    )
    return pd.Series(reason, index=customer_ids.index, dtype=object)


def _require_consentable(con: duckdb.DuckDBPyConnection, channel: str) -> None:
    """Raise ValueError, naming the choices, when the channel has no consent records."""
    channels = consentable_channels(con)
    if channel not in channels:
        raise ValueError(
            f"channel {channel!r} has no consent records; choose one of {', '.join(channels)}"
        )


def _segment_contacts(
    con: duckdb.DuckDBPyConnection, scheme: str, segment: str, channel: str
) -> pd.DataFrame:
    """One row per segment member, by customer_id: the channel's consent status, whether any
    linked source record opted out of it, and the golden email and phone."""
    cond, params = segments.segment_condition(con, scheme, segment)
    return con.execute(
        f"""
        WITH members AS (SELECT customer_id FROM mart_customer WHERE {cond}),
        consent AS (
            SELECT customer_id, status FROM customer_consents WHERE channel = ?
        ),
        linked_opt_out AS (
            -- opt-out wins across merged records: a later opt-in on another record of the
            -- same golden customer (or a false merge) never overrides an explicit opt-out
            SELECT m.customer_id, bool_or(c.status = 'opt_out') AS any_opt_out
            FROM consents c JOIN identity_map m
              ON m.source_system = c.source_system AND m.source_id = c.source_id
            WHERE c.channel = ?
            GROUP BY m.customer_id
        ),
        golden AS (
            SELECT customer_id,
                   arg_max(lower(trim(email)), updated_at) FILTER (
                       WHERE email IS NOT NULL AND trim(email) LIKE '%_@_%') AS email,
                   arg_max(trim(phone), updated_at) FILTER (
                       WHERE phone IS NOT NULL) AS phone
            FROM customers WHERE customer_id IN (SELECT customer_id FROM members)
            GROUP BY customer_id
        )
        SELECT m.customer_id, c.status, coalesce(o.any_opt_out, false) AS any_opt_out,
               g.email, g.phone
        FROM members m
        LEFT JOIN consent c USING (customer_id)
        LEFT JOIN linked_opt_out o USING (customer_id)
        LEFT JOIN golden g USING (customer_id)
        ORDER BY m.customer_id
        """,  # noqa: S608 - condition from segments.segment_condition; values are parameters
        [*params, channel, channel],
    ).df()


def _matchable_identifiers(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(email, phone) per member, None where missing; a phone that is not E.164 counts as none."""
    # object dtype with None for missing: pandas' string dtype would hand NaN to the hasher
    phone = frame["phone"].astype(object)
    phone = phone.where(frame["phone"].fillna("").str.match(E164).astype(bool), None)
    email = frame["email"].astype(object).where(frame["email"].notna(), None)
    return email, phone


def _consent_reasons(frame: pd.DataFrame, channel: str) -> pd.Series:
    """Consent reason per member (None = may be contacted): opted out (here or on a linked
    record), no consent recorded, or another status than opt_in."""
    status = frame["status"]
    reason = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    reason[status == "opt_out"] = f"opted out of {channel}"
    linked = reason.isna() & frame["any_opt_out"].astype(bool)
    reason[linked] = f"opted out of {channel} on a linked record"
    reason[reason.isna() & status.isna()] = f"no consent recorded for {channel}"
    other = reason.isna() & (status != "opt_in")
    reason[other] = [f"consent status {s!r} for {channel}" for s in status[other]]
    return reason


def _exclude_unreachable(
    reason: pd.Series, channel: str, email: pd.Series, phone: pd.Series
) -> None:
    """Give members still open (reason None) but without an identifier the channel needs the
    reason "no email" / "no phone" / "no email or phone to match" (in place)."""
    needs = CHANNEL_IDENTIFIERS.get(channel, ("email", "phone"))
    if not needs:
        return
    reachable = np.zeros(len(reason), dtype=bool)
    if "email" in needs:
        reachable |= email.notna().to_numpy()
    if "phone" in needs:
        reachable |= phone.notna().to_numpy()
    label = {("email",): "no email", ("phone",): "no phone"}.get(
        needs, "no email or phone to match"
    )
    reason[reason.isna() & ~reachable] = label


def _hashed_audience(
    frame: pd.DataFrame, email: pd.Series, phone: pd.Series, keep: np.ndarray, clear_text: bool
) -> pd.DataFrame:
    """The kept members with SHA-256 identifiers (AUDIENCE_COLUMNS), plus plain email and phone
    with `clear_text`."""
    audience = pd.DataFrame(
        {
            "customer_id": frame.loc[keep, "customer_id"].to_numpy(),
            "email_sha256": [privacy.sha256_hex(v) for v in email[keep]],
            "phone_sha256": [privacy.sha256_hex(v) for v in phone[keep]],
        },
        columns=AUDIENCE_COLUMNS,
    )
    if clear_text:
        audience["email"] = email[keep].to_numpy()
        audience["phone"] = phone[keep].to_numpy()
    return audience


def _exclusion_counts(excluded_reasons: pd.Series) -> pd.DataFrame:
    """Excluded members per reason (reason, customers), largest first, then by reason."""
    return (
        excluded_reasons.value_counts()
        .rename_axis("reason")
        .reset_index(name="customers")
        .sort_values(["customers", "reason"], ascending=[False, True])
        .reset_index(drop=True)
    )


def build_audience(
    con: duckdb.DuckDBPyConnection,
    scheme: str,
    segment: str,
    channel: str,
    clear_text: bool = False,
) -> AudienceExport:
    """The export for one segment and channel; see the module docstring for the rules.

    `clear_text=True` adds the plain `email` and `phone` columns. Only
    `export_audience` asks for it, after checking that the user is an admin and
    recording the export; everything else gets hashed identifiers only."""
    _require_consentable(con, channel)
    frame = _segment_contacts(con, scheme, segment, channel)
    email, phone = _matchable_identifiers(frame)
    # the first reason that applies wins: consent, then the contact policy, then reachability
    reason = _consent_reasons(frame, channel)
    open_ = reason.isna()
    reason[open_] = _policy_suppressions(con, channel, frame.loc[open_, "customer_id"])
    _exclude_unreachable(reason, channel, email, phone)
    keep = reason.isna().to_numpy()
    audience = _hashed_audience(frame, email, phone, keep, clear_text)
    exclusions = _exclusion_counts(reason[~keep])
    return AudienceExport(scheme, segment, channel, len(frame), audience, exclusions)


def audience_summary(
    con: duckdb.DuckDBPyConnection, scheme: str, segment: str, channel: str
) -> dict:
    """For the page: members, exported, excluded, and the exclusions by reason (records)."""
    export = build_audience(con, scheme, segment, channel)
    return {
        "members": export.members,
        "exported": len(export.audience),
        "excluded": export.excluded,
        "exclusions": export.exclusions,
        "audience": export.audience,
    }


def check_export_path(path: str | Path) -> Path:
    """`path` as a Path when an audience file may be written there (.csv, .csv.gz or .parquet
    in an existing, writable folder); raises csv_export.ExportFileError (a ValueError)."""
    return csv_export.check_output_path(path, EXPORT_SUFFIXES)


def write_audience(audience: pd.DataFrame, path: str | Path) -> Path:
    """Write the audience as CSV (.csv, .csv.gz; formula cells neutralised) or Parquet
    (.parquet), by the file's suffix, all or nothing. Raises csv_export.ExportFileError (a
    ValueError) with a one-line reason."""
    path = check_export_path(path)
    if path.name.lower().endswith(".parquet"):
        return csv_export.write_file(path, lambda fh: audience.to_parquet(fh, index=False))
    return csv_export.write_csv(audience, path)


def audience_csv(audience: pd.DataFrame) -> bytes:
    """The audience as CSV bytes (the page's download button; formula cells neutralised)."""
    return csv_export.csv_bytes(audience)


def export_audience(
    con: duckdb.DuckDBPyConnection,
    user: User | None,
    scheme: str,
    segment: str,
    channel: str,
    *,
    clear_text: bool = False,
    via: str = "app",
    out: str | Path | None = None,
) -> AudienceExport:
    """`build_audience` for a user who may export, recorded in the audit log.

    `clear_text=True` (admins: export_clear_text) adds the plain `email` and `phone` columns to
    the hashed ones, for a mail house or call centre that cannot match on hashes.

    With `out`, the file is written too (`write_audience`), and the audit row says what
    happened: a bad `out` (suffix, missing folder, a folder as the file) is refused before
    anything is read, with no audit row, since nothing left the database; a write that fails
    (disk full, no permission) is recorded as 'failed' with the reason, then raised; 'ok' with
    the row count is recorded only once the whole file is in place (and the file is removed
    again when that row cannot be written: an export that is not recorded does not happen)."""
    if out is not None:
        out = check_export_path(out)
    action = "export_clear_text" if clear_text else "export_audience"
    target = f"segment {segment} ({scheme}) on {channel}"
    started = audit.require(con, user, "export_audience", target, via)
    if clear_text:
        started = audit.require(con, user, "export_clear_text", target, via)
    export = build_audience(con, scheme, segment, channel, clear_text=clear_text)
    if out is not None:
        try:
            write_audience(export.audience, out)
        except csv_export.ExportFileError as exc:
            audit.record(
                con,
                user,
                action,
                target,
                0,
                via=via,
                status="failed",
                detail=str(exc),
                started_at=started,
            )
            raise
    try:
        audit.record(con, user, action, target, len(export.audience), via=via, started_at=started)
    except audit.AuditUnavailable:
        if out is not None:  # an export that cannot be recorded does not happen
            out.unlink(missing_ok=True)
        raise
    return export
