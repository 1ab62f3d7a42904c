"""Daily deltas: the synthetic company as a base load plus one file set per day.

Why: a real warehouse is loaded once and then fed every day with that day's new activity and
new or changed source records. To test daily loads (and, later, incremental builds against a
full rebuild) the generator makes ONE company over `days + delta_days` days and cuts it at
`cut = end_date - delta_days`, so the last days follow from the same people, purchases and media.

Split rules (period 0 = the base, everything on or before the cut date; period d = the d-th day
after it; every row lands in the period of its time column):
- events, orders: `ts`; spend: `date`; experiments: `assigned_at`; lift_tests: `end_date` (a
  readout is known when the test ends, store.TABLES' time column).
- campaigns: `start_date`, or earlier when an event or spend row of an earlier period names the
  campaign (a campaign is loaded no later than its first use).
- consents, ad_consents: `ts`. An opt-out after its record's creation period replaces the opt-in
  the record got at creation: that opt-in (ts = the record's created_at) is loaded in the
  creation period, the opt-out in its own, under the same key.
- src_customers: a record is first loaded in the period of its `created_at`. A record whose
  `updated_at` falls in a later period is loaded twice: an earlier version in its creation
  period (updated_at drawn between created_at and the end of that period, never before the
  stale threshold) and the final version in the period of its updated_at. Most such records
  differ only in updated_at (change `updated`: the source re-exported it); about CHANGE_RATE of
  the base's records per day are instead CHANGED: the base holds an older email (same local
  part, another mailbox provider) or an older address (another record's address in the same
  country: the person moved), and the day holds the final version.
Nothing else changes, so applying the base and then the days in order with `ccrm ingest`'s
upsert (a stored key is replaced, a new key added) gives exactly the full company's raw tables.

Ground truth: the base gets the full company's ground-truth tables; they describe the END state
(the last day included), so for the base they are a superset (records, orders and persons of
the delta days, end-state consents, final defects). Its ground_truth_sample gains `delta_days`
and `cut_date`. Each day gets `ground_truth_identity` (source record -> person_id) for every
record in its src_customers file and `ground_truth_delta_records` saying why it is there
(`new_person`: the person's first record; `new_record`: another record of a person already
known, e.g. from another system; `email`, `address`: changed; `updated`: only updated_at).

Randomness: the choices above use their own PCG64 stream seeded from (seed, DELTA_STREAM), so
the company's draws, and `generate`'s output, are unchanged; same arguments -> same files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ccrm_core.foundation import store
from ccrm_core.synthetic.ground_truth import GROUND_TRUTH_TABLES
from ccrm_core.synthetic.parameters import DEFAULT_END_DATE, STALE_YEARS
from ccrm_core.synthetic.writer import write_csv

DELTA_STREAM = 0xDE17A5  # second seed word of the deltas' own random stream
CHANGE_RATE = 0.001  # changed (email or address) records per day, share of the base's records
EMAIL_SHARE = 0.5  # of the changed records, the share whose email changed (else: moved)
OLD_EMAIL_DOMAINS = ("aol.com", "hotmail.com", "yahoo.com", "outlook.com", "mail.com")
CHANGES = ("new_person", "new_record", "email", "address", "updated")
DELTA_TRUTH_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "ground_truth_identity": GROUND_TRUTH_TABLES["ground_truth_identity"],
    "ground_truth_delta_records": (
        ("source_system", "VARCHAR"),
        ("source_id", "VARCHAR"),
        ("person_id", "BIGINT"),
        ("change", "VARCHAR"),
    ),
}
_ADDRESS = ("address_line", "city", "region", "postal_code")
_SRC_KEY = ["source_system", "source_id"]
_DAY_S = pd.Timedelta(days=1) - pd.Timedelta(seconds=1)


@dataclass(frozen=True)
class Deltas:
    """A company split at `cut`: `base` (raw + ground-truth tables) and, per day after the cut,
    (date, tables): the raw tables with rows that day plus DELTA_TRUTH_TABLES."""

    cut: date
    base: dict[str, pd.DataFrame]
    days: list[tuple[date, dict[str, pd.DataFrame]]]


def generate_with_deltas(
    customers: int,
    days: int,
    seed: int,
    delta_days: int,
    end_date: date = DEFAULT_END_DATE,
) -> Deltas:
    """Generate one company over days + delta_days ending on end_date and split it: a base of
    `days` days and `delta_days` day files after it (see the module docstring)."""
    from ccrm_core.synthetic import sample

    return split_deltas(sample.generate(customers, days + delta_days, seed, end_date), delta_days)


def split_deltas(data: dict[str, pd.DataFrame], delta_days: int) -> Deltas:
    """Split `generate`'s output into a base and `delta_days` daily deltas (module docstring).

    end_date and seed are read from data['ground_truth_sample'], so the split is a function of
    the company alone."""
    params = dict(
        zip(*(data["ground_truth_sample"][c] for c in ("parameter", "value")), strict=True)
    )
    end = pd.Timestamp(params["end_date"])
    if not 1 <= delta_days < int(params["days"]):
        raise ValueError(f"delta_days must be 1 .. days - 1 (got {delta_days})")
    cut = end - pd.Timedelta(days=delta_days)
    rng = np.random.Generator(np.random.PCG64([int(params["seed"]), DELTA_STREAM]))
    src, consents, ad_consents = _versioned_records(data, cut, delta_days, rng)
    rows = {
        "src_customers": src,
        "consents": consents,
        "ad_consents": ad_consents,
        **{t: _by_time(data[t], col, cut, delta_days) for t, col in _SIMPLE.items()},
    }
    rows["campaigns"] = _campaigns(data["campaigns"], rows, cut, delta_days)
    base = _base(data, rows, delta_days, cut)
    out = []
    for d in range(1, delta_days + 1):
        day = {t: _in_period(rows[t], d) for t in store.RAW_TABLES}
        day = {t: f for t, f in day.items() if len(f)}
        day.update(_day_truth(rows["src_customers"], d))
        out.append(((cut + pd.Timedelta(days=d)).date(), day))
    return Deltas(cut.date(), base, out)


def _base(
    data: dict[str, pd.DataFrame], rows: dict[str, pd.DataFrame], k: int, cut: pd.Timestamp
) -> dict[str, pd.DataFrame]:
    """The base: period 0 of the raw tables and the full (end-state) ground truth, whose
    ground_truth_sample also says delta_days and cut_date."""
    base = {t: _in_period(rows[t], 0) for t in store.RAW_TABLES}
    base.update({t: data[t] for t in data if t not in store.RAW_TABLES})
    split = pd.DataFrame(
        {"parameter": ["delta_days", "cut_date"], "value": [str(k), str(cut.date())]}
    )
    base["ground_truth_sample"] = pd.concat([data["ground_truth_sample"], split], ignore_index=True)
    return base


_SIMPLE = {
    "events": "ts",
    "orders": "ts",
    "spend": "date",
    "experiments": "assigned_at",
    "lift_tests": "end_date",
}


def _period(ts: pd.Series, cut: pd.Timestamp, k: int) -> np.ndarray:
    """0 for times on or before the cut date, else days after it (1..k)."""
    days = (ts.dt.normalize() - cut).dt.days.to_numpy()
    return np.clip(days, 0, k).astype(np.int64)


def _by_time(frame: pd.DataFrame, col: str, cut: pd.Timestamp, k: int) -> pd.DataFrame:
    """The table's rows, each in the period of its time column."""
    return frame.assign(_period=_period(frame[col], cut, k))


def _in_period(rows: pd.DataFrame, d: int) -> pd.DataFrame:
    """The rows loaded in period d, without the helper columns, in generator order."""
    helpers = [c for c in rows.columns if c.startswith("_")]
    return rows.loc[rows["_period"].to_numpy() == d].drop(columns=helpers).reset_index(drop=True)


def _campaigns(
    frame: pd.DataFrame, rows: dict[str, pd.DataFrame], cut: pd.Timestamp, k: int
) -> pd.DataFrame:
    """campaigns in the period of their start, or of their first use by events or spend if
    that is earlier: no row ever names a campaign that is not loaded yet."""
    uses = pd.concat(
        [
            rows[t][["campaign_id", "_period"]].astype({"campaign_id": str})
            for t in ("events", "spend")
        ]
    )
    first_use = uses.dropna().groupby("campaign_id")["_period"].min()
    start = _period(frame["start_date"], cut, k)
    used = frame["campaign_id"].map(first_use).fillna(k).to_numpy(dtype=np.int64)
    return frame.assign(_period=np.minimum(start, used))


# -- source records and their consents --------------------------------------------------------


def _versioned_records(
    data: dict[str, pd.DataFrame], cut: pd.Timestamp, k: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """src_customers, consents and ad_consents rows with their periods, earlier versions
    included (each right before its final version). src_customers rows also carry `_person`
    and `_change` (a CHANGES code) for the day truth."""
    src = data["src_customers"].reset_index(drop=True)
    person = _person_of(src, data["ground_truth_identity"])
    created = _period(src["created_at"], cut, k)
    final = _period(src["updated_at"], cut, k)
    redone = np.flatnonzero(final > created)
    earlier = src.iloc[redone].copy()
    earlier["updated_at"] = _earlier_updates(src.iloc[redone], created[redone], cut, k, rng)
    kind = _choose_changes(created, final, redone, rng)
    kind = _change_emails(earlier, kind, rng)
    kind = _move(earlier, src, kind, rng)
    newness = np.where(_is_first(src, person), 0, 1)
    final_change = newness.copy()
    final_change[redone] = kind
    rows = pd.concat(
        [
            earlier.assign(
                _period=created[redone], _person=person[redone], _change=newness[redone]
            ),
            src.assign(_period=final, _person=person, _change=final_change),
        ]
    ).sort_index(kind="stable")
    created_at = src[[*_SRC_KEY, "created_at"]]
    return (
        rows,
        _versioned_consents(data["consents"], created_at, cut, k),
        _versioned_consents(data["ad_consents"], created_at, cut, k),
    )


def _person_of(src: pd.DataFrame, identity: pd.DataFrame) -> np.ndarray:
    """person_id per src_customers row, from the ground truth."""
    keys = src[_SRC_KEY].astype(str)
    truth = identity.astype({"source_system": str, "source_id": str})
    return keys.merge(truth, how="left", on=_SRC_KEY)["person_id"].to_numpy(dtype=np.int64)


def _is_first(src: pd.DataFrame, person: np.ndarray) -> np.ndarray:
    """Whether the record is its person's first (earliest created_at)."""
    created = src["created_at"]
    return (created == created.groupby(person).transform("min")).to_numpy()


def _earlier_updates(
    records: pd.DataFrame, period: np.ndarray, cut: pd.Timestamp, k: int, rng: np.random.Generator
) -> np.ndarray:
    """updated_at of a record's earlier version: uniform between its created_at and the end of
    its creation period, at whole seconds, but not within STALE_YEARS of the end date (that
    would plant a `stale` defect that the end state and its truth lack)."""
    created = records["created_at"].to_numpy()
    end = (cut + pd.to_timedelta(period, unit="D") + _DAY_S).to_numpy()
    end_date = cut + pd.Timedelta(days=k)
    floor = (end_date - pd.DateOffset(years=STALE_YEARS) + pd.Timedelta(days=1)).to_datetime64()
    lo = np.minimum(np.maximum(created, floor), end)
    span = (end - lo).astype("timedelta64[us]").astype(np.float64)
    t = lo + (span * rng.random(len(records))).astype("timedelta64[us]")
    return t.astype("datetime64[s]").astype(created.dtype)


def _choose_changes(
    created: np.ndarray, final: np.ndarray, redone: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """CHANGES code per re-loaded record: per day, max(1, CHANGE_RATE x base records) of the
    base's records updated that day get an email (2) or address (3) change, the rest of the
    re-loaded records only a new updated_at (4). Records created after the cut only get 4."""
    quota = max(1, round(CHANGE_RATE * int((created == 0).sum())))
    pick, email = rng.random(redone.size), rng.random(redone.size) < EMAIL_SHARE
    day = np.where(created[redone] == 0, final[redone], -1)
    order = np.lexsort((pick, day))
    sorted_day = day[order]
    rank = np.arange(order.size) - np.searchsorted(sorted_day, sorted_day, side="left")
    chosen = np.zeros(redone.size, dtype=bool)
    chosen[order] = (rank < quota) & (sorted_day > 0)
    return np.where(chosen, np.where(email, 2, 3), 4)


def _change_emails(earlier: pd.DataFrame, kind: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give the email-changed records an older email in `earlier` (same local part at another
    provider from OLD_EMAIL_DOMAINS); a record without a usable email only gets updated (4)."""
    parts = earlier["email"].str.rpartition("@")
    usable = (parts[1] == "@").to_numpy(dtype=bool) & (parts[0] != "").to_numpy(dtype=bool)
    draw = rng.integers(0, len(OLD_EMAIL_DOMAINS), kind.size)
    domains = np.array(OLD_EMAIL_DOMAINS, dtype=object)
    same = domains[draw] == parts[2].str.lower().to_numpy(dtype=object)
    old = domains[(draw + same) % len(OLD_EMAIL_DOMAINS)]
    mask = (kind == 2) & usable
    earlier.loc[earlier.index[mask], "email"] = (
        parts[0].to_numpy(dtype=object)[mask] + "@" + old[mask]
    )
    return np.where((kind == 2) & ~usable, 4, kind)


def _move(
    earlier: pd.DataFrame, src: pd.DataFrame, kind: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Give the moved records an older address in `earlier`: a random complete address of
    another record in the same country; a record whose draw gives its own address line, or
    without an address, only gets updated (4)."""
    complete = np.flatnonzero(src[list(_ADDRESS)].notna().all(axis=1).to_numpy())
    country = src["country"].astype(str).to_numpy()
    donors = complete[np.argsort(country[complete], kind="stable")]
    donor_country = country[donors]
    mine = earlier["country"].astype(str).to_numpy()
    lo = np.searchsorted(donor_country, mine, side="left")
    n = np.searchsorted(donor_country, mine, side="right") - lo
    pick = donors[np.minimum(lo + (rng.random(kind.size) * n).astype(np.int64), donors.size - 1)]
    line = earlier["address_line"].to_numpy(dtype=object)
    ok = (
        (kind == 3)
        & (n > 0)
        & pd.notna(line)
        & (src["address_line"].to_numpy(dtype=object)[pick] != line)
    )
    for col in _ADDRESS:
        earlier.loc[earlier.index[ok], col] = src[col].to_numpy(dtype=object)[pick[ok]]
    return np.where((kind == 3) & ~ok, 4, kind)


def _versioned_consents(
    frame: pd.DataFrame, created_at: pd.DataFrame, cut: pd.Timestamp, k: int
) -> pd.DataFrame:
    """Consent rows in the period of their ts; an opt-out of a later period than its record's
    creation is preceded by the opt-in the record had (ts = created_at, creation period)."""
    created = (
        frame[_SRC_KEY]
        .astype(str)
        .merge(created_at.astype({"source_system": str}), how="left", on=_SRC_KEY)["created_at"]
    )
    first = _period(created, cut, k)
    final = _period(frame["ts"], cut, k)
    redone = np.flatnonzero((frame["status"].astype(str).to_numpy() == "opt_out") & (first < final))
    earlier = frame.iloc[redone].copy()
    earlier["status"] = "opt_in"
    earlier["ts"] = created.to_numpy()[redone]
    return pd.concat(
        [earlier.assign(_period=first[redone]), frame.assign(_period=final)]
    ).sort_index(kind="stable")


def _day_truth(src_rows: pd.DataFrame, d: int) -> dict[str, pd.DataFrame]:
    """The day's truth: identity and why each src_customers record of the day is there."""
    rows = src_rows.loc[src_rows["_period"].to_numpy() == d]
    keys = rows[_SRC_KEY].astype(str).reset_index(drop=True)
    person = rows["_person"].to_numpy(dtype=np.int64)
    change = np.array(CHANGES, dtype=object)[rows["_change"].to_numpy()]
    return {
        "ground_truth_identity": keys.assign(person_id=person),
        "ground_truth_delta_records": keys.assign(person_id=person, change=change),
    }


# -- files ------------------------------------------------------------------------------------


def write_deltas(deltas: Deltas, directory: str | os.PathLike) -> dict[str, dict[str, int]]:
    """Write DIR/base/<table>.csv (every raw table) and, per day, DIR/day_YYYY-MM-DD/<table>.csv
    (the raw tables with rows that day) with the day's truth under its truth/ folder, so that
    `ccrm ingest DIR/day_.../*.csv` loads the raw files only. Returns rows per folder and file."""
    out = Path(directory)
    write_csv(deltas.base, out / "base")
    written = {"base": {t: len(deltas.base[t]) for t in store.RAW_TABLES}}
    for day, tables in deltas.days:
        folder = out / f"day_{day.isoformat()}"
        raw = {t: f for t, f in tables.items() if t in store.TABLES}
        truth = {t: f for t, f in tables.items() if t in DELTA_TRUTH_TABLES}
        _write_frames(raw, folder)
        _write_frames(truth, folder / "truth")
        written[folder.name] = {t: len(f) for t, f in tables.items()}
    return written


def _columns(table: str) -> list[tuple[str, str]]:
    if table in store.TABLES:
        return [(c.name, c.type) for c in store.TABLES[table].columns]
    return list(DELTA_TRUTH_TABLES[table])


def _write_frames(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    """`<table>.csv` per frame, in writer.write_csv's format (contract types, ISO times)."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        for table, frame in frames.items():
            view = f"_ccrm_delta_{table}"
            con.register(view, pa.Table.from_pandas(frame, preserve_index=False))
            exprs = ", ".join(
                f"CAST({store.quote_ident(c)} AS {t}) AS {store.quote_ident(c)}"
                for c, t in _columns(table)
            )
            tmp, path = folder / f".{table}.csv.tmp", folder / f"{table}.csv"
            literal = "'" + str(tmp).replace("'", "''") + "'"
            con.execute(
                f"COPY (SELECT {exprs} FROM {view}) TO {literal} "  # noqa: S608 - our names
                "(FORMAT csv, HEADER true, DELIMITER ',', DATEFORMAT '%Y-%m-%d', "
                "TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S')"
            ).fetchall()
            con.unregister(view)
            os.replace(tmp, path)
    finally:
        con.close()
