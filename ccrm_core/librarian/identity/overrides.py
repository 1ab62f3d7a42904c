"""A data steward's manual identity decisions: two source records are one person ('link'), are
two persons ('split'), or go back to the matcher ('clear').

Decisions are stored in `identity_overrides` (one row per decision, never updated, so the
history stays), checked (`access` action override_identity) and audited in the same
transaction. Every identity build applies the latest decision per record pair (see
`clusters` for how a split is enforced); a decision about a record that no longer exists is
skipped and counted. Customer ids stay stable: after a split the part holding most of the
customer's records keeps its id.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from ccrm_core.foundation import audit, store
from ccrm_core.foundation.access import User

DECISIONS = ("link", "split", "clear")
MAX_NOTE = 500
RecordKey = tuple[str, str]  # (source_system, source_id)


def parse_record_key(text: str) -> RecordKey:
    """'SYSTEM:ID' -> (system, id); the id may itself hold ':'."""
    system, sep, source_id = (text or "").strip().partition(":")
    if not sep or not system or not source_id:
        raise ValueError(f"{text!r} is not a record key: write SOURCE_SYSTEM:SOURCE_ID")
    return system, source_id


def _exists(cur: duckdb.DuckDBPyConnection, key: RecordKey) -> bool:
    return bool(
        cur.execute(
            "SELECT count(*) FROM src_customers WHERE source_system = ? AND source_id = ?",
            list(key),
        ).fetchall()[0][0]
    )


def record_override(
    con: duckdb.DuckDBPyConnection,
    user: User | None,
    decision: str,
    first: RecordKey,
    second: RecordKey,
    note: str | None = None,
    *,
    via: str = "app",
) -> int:
    """Store one decision about two source records (applied at the next identity build);
    returns its override_id. Raises AccessDenied unless the user may override identities,
    ValueError for an unknown decision, the same record twice or a record not in
    src_customers; AuditUnavailable on a read-only database (nothing is stored)."""
    if decision not in DECISIONS:
        raise ValueError(f"decision {decision!r}: choose one of {', '.join(DECISIONS)}")
    left, right = sorted([tuple(first), tuple(second)])
    if left == right:
        raise ValueError("choose two different records")
    target = f"{decision} {left[0]}:{left[1]} + {right[0]}:{right[1]}"[:300]
    started = audit.require(con, user, "override_identity", target, via)
    cur = con.cursor()
    try:
        for key in (left, right):
            if not _exists(cur, key):
                raise ValueError(f"no customer record {key[0]}:{key[1]} in src_customers")
        try:
            with store.transaction(cur):
                override_id = cur.execute(
                    "SELECT coalesce(max(override_id), 0) + 1 FROM identity_overrides"
                ).fetchall()[0][0]
                cur.execute(
                    "INSERT INTO identity_overrides VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        override_id,
                        datetime.now(),
                        user.label if user else "anonymous",
                        decision,
                        *left,
                        *right,
                        (note or "").strip()[:MAX_NOTE] or None,
                    ],
                )
                audit.record_in_transaction(
                    cur, user, "override_identity", target, 1, via=via, started_at=started
                )
        except duckdb.Error as exc:
            raise audit.AuditUnavailable(
                f"cannot store the decision ({str(exc).splitlines()[0][:160]}); open the "
                "database read-write to record identity overrides"
            ) from exc
    finally:
        cur.close()
    return int(override_id)


def current_overrides(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The decisions in force: the latest per record pair, 'clear' ones left out. Columns:
    override_id, decided_at, actor, decision, source_system_l, source_id_l, source_system_r,
    source_id_r, note; newest first."""
    if not store.table_exists(con, "identity_overrides"):
        return pd.DataFrame(
            columns=[
                "override_id", "decided_at", "actor", "decision", "source_system_l",
                "source_id_l", "source_system_r", "source_id_r", "note",
            ]
        )  # fmt: skip
    return con.execute(
        """
        SELECT * FROM (
            SELECT * FROM identity_overrides
            QUALIFY row_number() OVER (
                PARTITION BY source_system_l, source_id_l, source_system_r, source_id_r
                ORDER BY override_id DESC) = 1
        )
        WHERE decision <> 'clear'
        ORDER BY override_id DESC
        """
    ).df()


def overrides_for_build(
    con: duckdb.DuckDBPyConnection, records: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """The decisions in force as record numbers of `records` (source_system, source_id in uid
    order): (frame uid_l, uid_r, decision 'link'/'split', in override order; decisions whose
    records are gone)."""
    current = current_overrides(con).sort_values("override_id", kind="stable")
    uid = pd.Series(
        np.arange(len(records), dtype=np.int64),
        index=pd.MultiIndex.from_arrays(
            [records["source_system"].to_numpy(), records["source_id"].to_numpy()]
        ),
    )
    left = pd.MultiIndex.from_arrays(
        [current["source_system_l"].to_numpy(), current["source_id_l"].to_numpy()]
    )
    right = pd.MultiIndex.from_arrays(
        [current["source_system_r"].to_numpy(), current["source_id_r"].to_numpy()]
    )
    uid_l = uid.reindex(left).to_numpy()
    uid_r = uid.reindex(right).to_numpy()
    found = ~(np.isnan(uid_l.astype(float)) | np.isnan(uid_r.astype(float)))
    out = pd.DataFrame(
        {
            "uid_l": uid_l[found].astype(np.int64),
            "uid_r": uid_r[found].astype(np.int64),
            "decision": current["decision"].to_numpy()[found],
        }
    )
    return out, int((~found).sum())
