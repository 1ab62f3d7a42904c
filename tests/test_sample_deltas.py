"""Daily deltas (`ccrm sample --delta-days K --csv DIR`, synthetic.deltas): the base plus the
day files, loaded in order by `ccrm ingest`, are exactly the full company; the base holds nothing
after the cut and each day only its day; changed records change only email or address and keep
their key and person; same seed, same bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ccrm_core import cli
from ccrm_core.foundation import ingest, pipeline, store
from ccrm_core.synthetic import deltas, sample
from ccrm_core.synthetic.writer import _select_sql

CUSTOMERS, DAYS, SEED, K = 1500, 120, 11, 3
KEY = ["source_system", "source_id"]
ADDRESS = ["address_line", "city", "region", "postal_code"]


@pytest.fixture(scope="module")
def full() -> dict[str, pd.DataFrame]:
    """The whole company: DAYS + K days."""
    return sample.generate(CUSTOMERS, DAYS + K, SEED)


@pytest.fixture(scope="module")
def split(full) -> deltas.Deltas:
    return deltas.split_deltas(full, K)


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory) -> Path:
    """A folder with t.duckdb (the base, by `ccrm sample`) and the CSV files in csv/."""
    root = tmp_path_factory.mktemp("deltas")
    args = ["sample", "--customers", str(CUSTOMERS), "--days", str(DAYS), "--seed", str(SEED)]
    args += ["--delta-days", str(K), "--csv", str(root / "csv"), "--db", str(root / "t.duckdb")]
    assert cli.main(args) == 0
    return root


@pytest.fixture(scope="module")
def loaded(cli_out) -> Path:
    """The CLI's base database with every day folder ingested in order."""
    con = store.connect_writer(cli_out / "t.duckdb")
    try:
        for folder in sorted((cli_out / "csv").glob("day_*")):
            reports = ingest.ingest_files(con, sorted(folder.glob("*.csv")))
            assert all(r.status == "loaded" and r.rows_rejected == 0 for r in reports), reports
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return cli_out / "t.duckdb"


def test_base_plus_days_ingested_in_order_is_the_full_company(loaded, full):
    con = store.connect_writer(loaded)
    try:
        for table in store.RAW_TABLES:
            view = f"_full_{table}"
            con.register(view, full[table])
            expected = f"({_select_sql(table, view)})"
            stored = f"(SELECT * FROM {table})"  # noqa: S608 - contract names
            counts = tuple(
                con.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchall()[0][0]
                for a, b in ((expected, stored), (stored, expected))
            )
            rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]  # noqa: S608
            con.unregister(view)
            assert counts == (0, 0), table
            assert rows == len(full[table]), table
    finally:
        con.close()


def test_the_split_rebuilds_the_full_frames_with_upserts(split, full):
    """The same invariant on the frames, value by value, sorted by key."""
    for table in store.RAW_TABLES:
        key = list(store.TABLES[table].key)
        state = split.base[table]
        for _, tables in split.days:
            if table in tables:
                day = tables[table]
                stored = pd.MultiIndex.from_frame(state[key].astype(str))
                kept = ~stored.isin(pd.MultiIndex.from_frame(day[key].astype(str)))
                state = pd.concat([state[kept], day])
        got = state.sort_values(key).reset_index(drop=True)
        want = full[table].sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(got.astype(object), want.astype(object), check_dtype=False)


def test_the_split_leaves_the_company_unchanged(full):
    before = {t: pd.util.hash_pandas_object(f).sum() for t, f in full.items()}
    deltas.split_deltas(full, K)
    assert {t: pd.util.hash_pandas_object(f).sum() for t, f in full.items()} == before


def test_base_holds_nothing_after_the_cut_and_each_day_only_its_day(split):
    cut = pd.Timestamp(split.cut)
    assert split.cut == sample.DEFAULT_END_DATE - pd.Timedelta(days=K)
    for table in store.RAW_TABLES:
        col = store.TABLES[table].time_column
        times = [split.base[table][col]]
        if table == "src_customers":
            times.append(split.base[table]["created_at"])
        assert all((t.dt.normalize() <= cut).all() for t in times), table
    assert [d for d, _ in split.days] == [(cut + pd.Timedelta(days=i)).date() for i in (1, 2, 3)]
    for day, tables in split.days:
        for table, frame in tables.items():
            if table in store.TABLES:
                col = store.TABLES[table].time_column
                assert len(frame), table  # only tables with rows that day
                assert (frame[col].dt.normalize() == pd.Timestamp(day)).all(), (day, table)
                assert not frame.duplicated(list(store.TABLES[table].key)).any(), table


def test_changed_records_differ_in_email_or_address_only(split, full):
    base = split.base["src_customers"].set_index(KEY)
    truth = full["ground_truth_identity"].astype({"source_system": str}).set_index(KEY)
    seen = {"email": 0, "address": 0}
    for day, tables in split.days:
        why = tables["ground_truth_delta_records"]
        src = tables["src_customers"].astype({"source_system": str}).set_index(KEY)
        for change in seen:
            keys = pd.MultiIndex.from_frame(why.loc[why["change"] == change, KEY])
            seen[change] += len(keys)
            old, new = base.loc[keys], src.loc[keys]
            differ = old.ne(new) & ~(old.isna() & new.isna())
            changed_cols = ["email"] if change == "email" else ADDRESS
            other = [c for c in base.columns if c not in [*changed_cols, "updated_at"]]
            assert not differ[other].any().any(), (day, change)
            assert differ[changed_cols[0]].all() and differ["updated_at"].all(), (day, change)
            assert (old["updated_at"] < new["updated_at"]).all()
            assert (old["updated_at"] >= old["created_at"]).all()
            person = why.set_index(KEY).loc[keys, "person_id"]
            assert (person.to_numpy() == truth.loc[keys, "person_id"].to_numpy()).all()
    assert seen["email"] > 0 and seen["address"] > 0, seen


def test_day_truth_names_every_record_of_the_day(split, full):
    truth = full["ground_truth_identity"].astype({"source_system": str})
    known = set(map(tuple, split.base["src_customers"][KEY].astype(str).to_numpy()))
    counts = {}
    for day, tables in split.days:
        src = tables["src_customers"][KEY].astype(str)
        identity = tables["ground_truth_identity"]
        assert identity[KEY].equals(src.reset_index(drop=True))
        merged = identity.merge(truth, on=KEY, how="left", suffixes=("", "_full"))
        assert (merged["person_id"] == merged["person_id_full"]).all()
        why = tables["ground_truth_delta_records"]
        assert why[[*KEY, "person_id"]].equals(identity)
        assert set(why["change"]) <= set(deltas.CHANGES)
        is_new = why["change"].isin(["new_person", "new_record"]).to_numpy()
        in_before = np.array([k in known for k in map(tuple, why[KEY].to_numpy())])
        assert (in_before != is_new).all(), day  # new keys are new, the others were loaded
        known |= set(map(tuple, why[KEY].to_numpy()))
        counts[day] = why["change"].value_counts().to_dict()
    assert all(c.get("new_person", 0) > 0 and c.get("updated", 0) > 0 for c in counts.values())


def test_day_rows_name_records_already_loaded(split):
    known = split.base["src_customers"][KEY].astype(str)
    for table in ("events", "orders", "consents", "experiments", "ad_consents"):
        assert _unknown(split.base[table], known) == 0, table
    for _, tables in split.days:
        known = pd.concat([known, tables["src_customers"][KEY].astype(str)])
        for table in ("events", "orders", "consents", "experiments", "ad_consents"):
            if table in tables:
                assert _unknown(tables[table], known) == 0, table
    campaigns = set(split.base["campaigns"]["campaign_id"])
    for frame in [split.base["events"], split.base["spend"]]:
        assert set(frame["campaign_id"].dropna()) <= campaigns


def _unknown(frame: pd.DataFrame, known: pd.DataFrame) -> int:
    keys = frame[KEY].dropna().astype(str)
    return int((~pd.MultiIndex.from_frame(keys).isin(pd.MultiIndex.from_frame(known))).sum())


def test_same_seed_same_bytes(cli_out, tmp_path):
    again = deltas.generate_with_deltas(CUSTOMERS, DAYS, SEED, K)
    deltas.write_deltas(again, tmp_path)
    first = sorted(p.relative_to(cli_out / "csv") for p in (cli_out / "csv").rglob("*.csv"))
    second = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.csv"))
    assert first == second
    assert (
        Path("day_" + again.days[0][0].isoformat(), "truth", "ground_truth_identity.csv") in first
    )
    for rel in first:
        assert (cli_out / "csv" / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_delta_days_without_csv_is_one_line_error(tmp_path, capsys):
    args = ["sample", "--customers", "10", "--delta-days", "2", "--db", str(tmp_path / "t.db")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err == "error: --delta-days needs --csv DIR (the day files are written there)\n"
    assert not (tmp_path / "t.db").exists()


def test_the_pipeline_builds_base_plus_deltas(loaded, tmp_path):
    path = tmp_path / "b.duckdb"
    path.write_bytes(loaded.read_bytes())
    con = store.connect_writer(path)
    try:
        failed = [r for r in pipeline.build(con) if r.status != "ok"]
    finally:
        con.close()
    assert not failed, failed
