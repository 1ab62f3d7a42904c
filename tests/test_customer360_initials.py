"""Customer 360 search by initials: "e. brooks" finds the only E. Brooks among nine Brooks, built
through the real stages (standardise, identity, search_index) on hand-made records."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from ccrm_core.foundation import pipeline, store
from ccrm_core.librarian import customer360 as c360

BROOKS = ["Aaron", "Bella", "Carl", "Dana", "Emma", "Frank", "Grace", "Hugo", "Iris"]


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    """Read-only by convention."""
    c = store.connect_writer(tmp_path_factory.mktemp("initials") / "initials.duckdb")
    rows = [("crm", f"B{i}", f, "Brooks", date(1980, 1, i + 1)) for i, f in enumerate(BROOKS)]
    rows += [
        ("crm", "G1", "Mike", "Green", date(1970, 2, 2)),
        ("crm", "G2", "Sarah", "Green", date(1971, 3, 3)),
        ("crm", "G3", "Anna Maria", "Green", date(1972, 4, 4)),
    ]
    frame = pd.DataFrame(
        rows, columns=["source_system", "source_id", "first_name", "last_name", "birth_date"]
    )
    c.register("rows", frame)
    c.execute("INSERT INTO src_customers BY NAME SELECT * FROM rows")
    c.unregister("rows")
    results = pipeline.build(c, ["standardise", "identity", "search_index"])
    assert [r.status for r in results] == ["ok"] * 3, results
    yield c
    c.close()


def test_parse_query_keeps_initials_next_to_names():
    q = c360.parse_query("m. green")
    assert q.words == ("green",) and q.initials == ("m",)
    assert c360.parse_query("J R R Tolkien").initials == ("j", "r")
    assert c360.parse_query("e.").initials == ()  # an initial alone says too little
    assert c360.parse_query("e.").words == ()
    assert c360.parse_query("jon smith").initials == ()


def test_an_initial_finds_the_only_match_among_nine_brooks(con):
    res = c360.search(con, "e. brooks")
    assert len(res) == 9  # every Brooks is a candidate ...
    assert res.iloc[0]["name"] == "Emma Brooks"  # ... the E. Brooks first
    assert res.iloc[0]["score"] == 1.0  # brooks (1) and the initial (1), averaged
    assert (res.iloc[1:]["score"] == 0.5).all()  # brooks (1), no initial (0)
    # without the initial every Brooks scores the same
    assert set(c360.search(con, "brooks")["score"]) == {1.0}


def test_initials_match_first_names_only_and_every_first_name_word(con):
    assert c360.search(con, "m. green").iloc[0]["name"] == "Mike Green"
    assert c360.search(con, "s green").iloc[0]["name"] == "Sarah Green"
    assert c360.search(con, "m green").iloc[0]["name"] == "Mike Green"
    # a second first name counts: "Anna Maria" answers to a. and m.
    top_two = c360.search(con, "m. green").head(2)["name"].tolist()
    assert set(top_two) == {"Mike Green", "Anna Maria Green"}
    # g is the last name's initial, not a first name's: no Green is preferred
    assert set(c360.search(con, "g. green")["score"]) == {0.5}
