"""Activations: a named segment x destination whose exports are remembered, so each export can
say what changed since the last one (mirror sync), and a stable holdout that is never sent.

Tables (schema migration 4): `activations` (one row per activation: name, scheme, segment,
destination, holdout share, who created it), `activation_runs` (one row per export: members,
sent, held out, excluded, added, removed, the audit row) and `activation_members` (per export,
one row per eligible person: held out or sent, and the SHA-256 of every email and phone sent,
exactly as the destination hashes them).

Mirror sync: the platform's list should equal the latest full file. An export writes the full
file, and beside it `<name>.adds.csv` (the rows of the full file holding an email or phone that
the previous export did not send) and `<name>.removes.csv` (one row per hashed email or phone
the previous export sent and this one does not: people who left the segment, withdrew consent,
went over a cap or joined the holdout, and changed addresses). The first export's adds file is
the whole file and its removes file is empty. Removals are always hashed (what was kept).

Holdout: a share of the eligible people (0 .. 50 %) is withheld and recorded, so outcomes can be
compared later. Whether a customer is held out depends only on the activation's name and the
customer id (SHA-256 of both, read as a number in [0, 1)): the same person stays in or out on
every export, and the share is set once, when the activation is created. A person the first
export had keeps that export's choice (the test it started), whatever the hash says: the same
for exports the app made, and it keeps the split of activations recorded otherwise (the demo's
planted ones, drawn before customer ids existed).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ccrm_core.conductor.audience.destinations import (
    DestinationAudience,
    as_frame,
    removal_rows,
    upload_table,
)
from ccrm_core.foundation import store

HOLDOUT_MAX = 0.5  # at most half of the eligible people withheld
ACTIVATION_NAME_MAX = 80  # characters


@dataclass
class ActivationSync:
    """What one export of an activation changed: run number, people sent and held out, people
    added and removed since the previous run, and the adds / removes files' rows."""

    activation: str
    run: int
    holdout_share: float
    sent: int
    held_out: int
    added: int
    removed: int
    adds_table: pa.Table  # the files' rows as Arrow (what is written)
    removes_table: pa.Table
    members_table: pa.Table  # customer_id, held_out, email_keys, phone_keys: what is recorded

    @functools.cached_property
    def adds(self) -> pd.DataFrame:
        return as_frame(self.adds_table)

    @functools.cached_property
    def removes(self) -> pd.DataFrame:
        return as_frame(self.removes_table)

    @functools.cached_property
    def members(self) -> pd.DataFrame:
        table = self.members_table
        return pd.DataFrame(
            {
                "customer_id": pd.Series(table["customer_id"].to_pylist(), dtype=object),
                "held_out": table["held_out"].to_numpy(),
                "email_keys": table["email_keys"].to_pylist(),
                "phone_keys": table["phone_keys"].to_pylist(),
            }
        )


def parse_holdout(text: str | float | None) -> float:
    """'10%', '10', '0.1' or 0.1 -> 0.1 (a value above 1 is read as a percentage). ValueError
    with the accepted range otherwise."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return 0.0
    raw = str(text).strip()
    try:
        value = float(raw.rstrip("%").strip())
    except ValueError:
        raise ValueError(f"holdout {raw[:20]!r}: write a share such as 10% or 0.1") from None
    if raw.endswith("%") or value > 1:
        value /= 100.0
    if not 0.0 <= value <= HOLDOUT_MAX or not np.isfinite(value):
        raise ValueError(f"holdout {raw[:20]!r}: choose between 0% and {HOLDOUT_MAX:.0%}")
    return value


def check_activation_name(name: str) -> str:
    """The name, stripped, when it is 1..ACTIVATION_NAME_MAX printable characters."""
    name = (name or "").strip()
    if not name:
        raise ValueError("give the activation a name, e.g. 'Champions on Meta'")
    if len(name) > ACTIVATION_NAME_MAX:
        raise ValueError(f"activation names have at most {ACTIVATION_NAME_MAX} characters")
    if any(not ch.isprintable() for ch in name):
        raise ValueError("activation names cannot hold line breaks or control characters")
    return name


def holdout_position(activation: str, customer_ids: Iterable[str]) -> np.ndarray:
    """Per customer, a number in [0, 1) fixed by the activation's name and the customer id: the
    first 8 bytes of SHA-256('<activation>\\x1f<customer_id>') over 2**64."""
    out = []
    for customer_id in customer_ids:
        digest = hashlib.sha256(f"{activation}\x1f{customer_id}".encode()).digest()
        out.append(int.from_bytes(digest[:8], "big") / 2.0**64)
    return np.asarray(out, dtype=float)


def is_held_out(activation: str, customer_ids: Iterable[str], share: float) -> np.ndarray:
    """True for the customers the activation withholds (holdout_position < share)."""
    return holdout_position(activation, customer_ids) < share


def holdout_position_sql(activation: str, customer_id: str) -> str:
    """`holdout_position` in SQL, over the SQL expressions `activation` (e.g. a parameter) and
    `customer_id`: the first 16 hex digits of the SHA-256, as an unsigned 64-bit integer, over
    2**64 (the integer rounds to the nearest double, as in Python)."""
    digest = f"sha256({activation} || chr(31) || {customer_id})"
    return f"(CAST(CAST('0x' || {digest}[:16] AS UBIGINT) AS DOUBLE) / 18446744073709551616.0)"


def sync_paths(out) -> tuple:
    """The adds and removes files beside a full file: 'meta.csv' -> ('meta.adds.csv',
    'meta.removes.csv'); '.csv.gz' keeps its suffix."""
    name = out.name
    suffix = ".csv.gz" if name.lower().endswith(".csv.gz") else out.suffix
    stem = name[: len(name) - len(suffix)]
    return out.with_name(f"{stem}.adds{suffix}"), out.with_name(f"{stem}.removes{suffix}")


# -- reading --------------------------------------------------------------------------------------


def find_activation(con: duckdb.DuckDBPyConnection, name: str) -> dict | None:
    """The activation called `name` (activation_id, name, scheme, segment, destination,
    holdout_share, created_at, created_by), or None."""
    rows = con.execute("SELECT * FROM activations WHERE name = ?", [name]).df()
    return None if rows.empty else rows.iloc[0].to_dict()


def list_activations(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per activation, newest first: name, segment, scheme, destination, holdout_share,
    exports, last_export, last_sent, last_held_out, last_added, last_removed."""
    return con.execute(
        """
        WITH last AS (
            SELECT * FROM activation_runs
            QUALIFY row_number() OVER (PARTITION BY activation_id ORDER BY run DESC) = 1
        )
        SELECT a.name, a.segment, a.scheme, a.destination, a.holdout_share,
               coalesce(l.run, 0) AS exports, l.exported_at AS last_export,
               l.sent AS last_sent, l.held_out AS last_held_out,
               l.added AS last_added, l.removed AS last_removed
        FROM activations a LEFT JOIN last l USING (activation_id)
        ORDER BY a.activation_id DESC
        """
    ).df()


def activation_history(con: duckdb.DuckDBPyConnection, name: str) -> pd.DataFrame:
    """Every export of the activation called `name`, newest first: run, exported_at, actor,
    members, sent, held_out, excluded, added, removed."""
    return con.execute(
        """
        SELECT r.run, r.exported_at, r.actor, r.members, r.sent, r.held_out, r.excluded,
               r.added, r.removed
        FROM activation_runs r JOIN activations a USING (activation_id)
        WHERE a.name = ?
        ORDER BY r.run DESC
        """,
        [name],
    ).df()


def activation_members(con: duckdb.DuckDBPyConnection, name: str, run: int) -> pd.DataFrame:
    """The people of one export of an activation: customer_id, held_out, ordered by id."""
    return con.execute(
        """
        SELECT m.customer_id, m.held_out
        FROM activation_members m JOIN activations a USING (activation_id)
        WHERE a.name = ? AND m.run = ?
        ORDER BY m.customer_id
        """,
        [name, int(run)],
    ).df()


# Each eligible person of an export (`people` with its row order in `_row`; `first_run` the
# activation's first export): held out as in the first export for the people it had (a stable
# test), else by the activation's hash (the same for people the app exported first); the SHA-256
# of each email and phone. Parameters: activation name, holdout share.
_MEMBERS_SQL = f"""
SELECT p.customer_id,
       coalesce(f.held_out, {holdout_position_sql("?", "p.customer_id")} < ?) AS held_out,
       list_transform(p.emails, lambda v: sha256(v)) AS email_keys,
       list_transform(p.phones, lambda v: sha256(v)) AS phone_keys
FROM people p LEFT JOIN first_run f ON f.customer_id = p.customer_id
ORDER BY p._row
"""  # noqa: S608 - our own SQL; values are parameters


def _first_run_holdout(con: duckdb.DuckDBPyConnection, activation_id: int | None) -> pa.Table:
    """(customer_id, held_out) of the activation's first export; empty for a new activation."""
    if activation_id is None:
        return pa.table(
            {"customer_id": pa.array([], pa.string()), "held_out": pa.array([], pa.bool_())}
        )
    return con.sql(
        "SELECT customer_id, held_out FROM activation_members WHERE activation_id = ? "
        "AND run = (SELECT min(run) FROM activation_members WHERE activation_id = ?)",
        params=[int(activation_id), int(activation_id)],
    ).to_arrow_table()


def _previous_sent(con: duckdb.DuckDBPyConnection, activation_id: int | None) -> pa.Table:
    """customer_id, email_keys, phone_keys of the people the latest export sent, by customer_id
    (no rows for a new activation)."""
    keys = pa.list_(pa.string())
    if activation_id is None:
        schema = pa.schema(
            [("customer_id", pa.string()), ("email_keys", keys), ("phone_keys", keys)]
        )
        return schema.empty_table()
    return con.sql(
        """
        SELECT customer_id, email_keys, phone_keys FROM activation_members
        WHERE activation_id = ? AND NOT held_out
          AND run = (SELECT max(run) FROM activation_runs WHERE activation_id = ?)
        ORDER BY customer_id
        """,
        params=[int(activation_id), int(activation_id)],
    ).to_arrow_table()


# -- one export -----------------------------------------------------------------------------------

# A row of the full file is an add when it holds an email or phone the previous export did not
# send (`keyed`: the hashed rows with email_key, phone_key and their order `row`).
_ADDS_SQL = """
WITH old_email AS (SELECT DISTINCT unnest(email_keys) AS key FROM previous),
     old_phone AS (SELECT DISTINCT unnest(phone_keys) AS key FROM previous)
SELECT coalesce(email_key NOT IN (SELECT key FROM old_email), false)
       OR coalesce(phone_key NOT IN (SELECT key FROM old_phone), false) AS is_add
FROM keyed
ORDER BY row
"""
# Every hashed email and phone the previous export sent and this one does not, sorted, with the
# first previous person (by customer_id) who held it.
_GONE_SQL = """
WITH old AS (
    SELECT 'email' AS kind, unnest(email_keys) AS key, customer_id FROM previous
    UNION ALL
    SELECT 'phone', unnest(phone_keys), customer_id FROM previous
),
new AS (
    SELECT 'email' AS kind, unnest(email_keys) AS key FROM sent
    UNION ALL
    SELECT 'phone', unnest(phone_keys) FROM sent
)
SELECT kind, key, min(customer_id) AS owner
FROM old
WHERE NOT EXISTS (SELECT 1 FROM new WHERE new.kind = old.kind AND new.key = old.key)
GROUP BY kind, key
ORDER BY kind, key
"""


def plan_activation(
    con: duckdb.DuckDBPyConnection,
    audience: DestinationAudience,
    name: str,
    holdout: float | None,
    *,
    clear_text: bool = False,
) -> tuple[ActivationSync, pd.DataFrame, dict | None]:
    """The next export of activation `name` (created if new) for a built audience: the sync
    (holdout, adds and removes), the full file's rows, and the stored activation (None when new).
    Reads only; `record_run` writes it. ValueError when `name` belongs to another segment or
    destination, or asks for another holdout than the one it was created with."""
    name = check_activation_name(name)
    dest = audience.destination
    stored = find_activation(con, name)
    if stored is not None:
        same = (stored["scheme"], stored["segment"], stored["destination"])
        if same != (audience.scheme, audience.segment, dest.name):
            raise ValueError(
                f"activation {name!r} sends segment {stored['segment']} ({stored['scheme']}) "
                f"to {stored['destination']}; choose another name for this segment and "
                "destination"
            )
        if holdout is not None and abs(float(stored["holdout_share"]) - holdout) > 1e-12:
            raise ValueError(
                f"activation {name!r} holds out {float(stored['holdout_share']):.0%} (set when "
                "it was created, so that results stay comparable); leave the holdout out or "
                "create a new activation"
            )
        share = float(stored["holdout_share"])
        run = int(
            con.execute(
                "SELECT coalesce(max(run), 0) + 1 FROM activation_runs WHERE activation_id = ?",
                [int(stored["activation_id"])],
            ).fetchall()[0][0]
        )
    else:
        share, run = (holdout or 0.0), 1
    people = audience.table
    previous = _previous_sent(con, None if stored is None else stored["activation_id"])
    first = _first_run_holdout(con, None if stored is None else stored["activation_id"])
    with duckdb.connect() as local:  # in memory: Arrow tables in, Arrow tables out
        local.register("people", people.append_column("_row", pa.array(np.arange(people.num_rows))))
        local.register("first_run", first)
        members = local.sql(_MEMBERS_SQL, params=[name, share]).to_arrow_table()
        held = members["held_out"].to_numpy(zero_copy_only=False).astype(bool)
        sent_people, sent = _rows_where(people, ~held), _rows_where(members, ~held)
        keyed = upload_table(sent_people, dest, hashed=True, keys=True)
        keyed = keyed.append_column("row", pa.array(np.arange(keyed.num_rows, dtype=np.int64)))
        local.register("keyed", keyed)
        local.register("previous", previous)
        local.register("sent", sent)
        is_add = local.sql(_ADDS_SQL).to_arrow_table()["is_add"].to_numpy(zero_copy_only=False)
        gone = local.sql(_GONE_SQL).to_arrow_table()
    hashed_rows = keyed.select(list(dest.columns))
    rows = upload_table(sent_people, dest, hashed=False) if clear_text else hashed_rows
    gone_email = gone.filter(pc.equal(gone["kind"], "email"))
    gone_phone = gone.filter(pc.equal(gone["kind"], "phone"))
    removes = removal_rows(
        gone_email["key"].to_pylist(),
        gone_phone["key"].to_pylist(),
        [*gone_email["owner"].to_pylist(), *gone_phone["owner"].to_pylist()],
        dest,
    )
    before = set(previous["customer_id"].to_pylist())
    now = set(sent["customer_id"].to_pylist())
    sync = ActivationSync(
        activation=name,
        run=run,
        holdout_share=share,
        sent=sent.num_rows,
        held_out=int(held.sum()),
        added=len(now - before),
        removed=len(before - now),
        adds_table=_rows_where(rows, is_add.astype(bool)),
        removes_table=pa.Table.from_pandas(removes, preserve_index=False),
        members_table=members,
    )
    return sync, rows, stored


def _rows_where(table: pa.Table, mask: np.ndarray) -> pa.Table:
    """The rows of `table` where `mask` is True (the table itself when all are: no copy)."""
    return table if mask.all() else table.filter(pa.array(mask))


def record_run(
    cur: duckdb.DuckDBPyConnection,
    audience: DestinationAudience,
    sync: ActivationSync,
    stored: dict | None,
    actor: str,
    audit_id: int | None,
) -> int:
    """Write the activation (when new), its run and its members inside the caller's open
    transaction; returns the activation_id."""
    now = datetime.now()
    if stored is None:
        activation_id = cur.execute(
            "SELECT coalesce(max(activation_id), 0) + 1 FROM activations"
        ).fetchall()[0][0]
        cur.execute(
            "INSERT INTO activations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                activation_id,
                sync.activation,
                audience.scheme,
                audience.segment,
                audience.destination.name,
                sync.holdout_share,
                now,
                actor,
            ],
        )
    else:
        activation_id = int(stored["activation_id"])
    cur.execute(
        "INSERT INTO activation_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            activation_id,
            sync.run,
            now,
            actor,
            audience.members,
            sync.sent,
            sync.held_out,
            audience.excluded,
            sync.added,
            sync.removed,
            audit_id,
        ],
    )
    members = sync.members_table
    count = members.num_rows
    table = pa.table(
        {
            "activation_id": pa.array(np.full(count, activation_id, dtype=np.int64)),
            "run": pa.array(np.full(count, sync.run, dtype=np.int64)),
            "customer_id": members["customer_id"],
            "held_out": members["held_out"],
            "email_keys": members["email_keys"],
            "phone_keys": members["phone_keys"],
        }
    )
    view = "_ccrm_activation_members"
    cur.register(view, table)
    try:
        cur.execute(f"INSERT INTO activation_members SELECT * FROM {store.quote_ident(view)}")  # noqa: S608
    finally:
        cur.unregister(view)
    return int(activation_id)


def activation_ready(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the database has the activation tables (schema 4 or later)."""
    return store.table_exists(con, "activations")


_SAFE_FILE = re.compile(r"[^A-Za-z0-9._-]+")


def file_stem(*parts: str) -> str:
    """A file name stem from names users typed: letters, digits, '.', '_' and '-' only."""
    return _SAFE_FILE.sub("_", "_".join(parts)).strip("._")[:120] or "audience"
