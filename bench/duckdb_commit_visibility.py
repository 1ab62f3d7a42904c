"""Reproduce the DuckDB behaviour behind store.transaction's commit gate (for an upstream report).

While one connection commits a transaction that deleted 500 rows and inserted 300,000, other
connections of the same process read the table in a loop, without the gate. A correct snapshot
shows 1,000 rows (before) or 300,500 (after). On DuckDB 1.5.6 and 2.0.0 this prints other counts,
for example 301,000 (the inserts, not yet the deletes), also for readers whose transaction began
before the commit.

    python bench/duckdb_commit_visibility.py [RUNS]
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

import duckdb


def one_run(folder: Path, optimistic: bool) -> set[int]:
    con = duckdb.connect(str(folder / "t.duckdb"))
    if not optimistic:
        con.execute("SET enable_optimistic_write = false")
    con.execute("CREATE TABLE t (id VARCHAR NOT NULL, value DOUBLE)")
    con.execute("INSERT INTO t SELECT 'e' || i, 1 FROM range(1000) r(i)")
    writer = con.cursor()
    writer.execute(
        "CREATE TEMP TABLE new_rows AS SELECT 'e' || i AS id, 2.0 AS value "
        "FROM range(500, 300500) r(i)"
    )
    writer.execute("BEGIN")
    writer.execute("DELETE FROM t WHERE id IN (SELECT id FROM new_rows)")
    writer.execute("INSERT INTO t SELECT * FROM new_rows")
    early = con.cursor()  # a snapshot taken before the commit starts
    early.execute("BEGIN")
    early.execute("SELECT count(*) FROM t").fetchall()
    late = con.cursor()
    commit = threading.Thread(target=lambda: writer.execute("COMMIT"))
    commit.start()
    seen = set()
    while commit.is_alive():
        seen.add(early.execute("SELECT count(*) FROM t").fetchall()[0][0])
        seen.add(late.execute("SELECT count(*) FROM t").fetchall()[0][0])
    commit.join()
    con.close()
    return seen - {1000, 300_500}


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"duckdb {duckdb.__version__}")
    for optimistic in (True, False):
        wrong = 0
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as folder:
                bad = one_run(Path(folder), optimistic)
            wrong += bool(bad)
            if bad:
                print(f"  optimistic writes {optimistic}: a reader saw {sorted(bad)} rows")
        print(f"optimistic writes {optimistic}: {wrong} of {runs} runs showed a half commit")


if __name__ == "__main__":
    main()
