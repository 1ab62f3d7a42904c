"""AppTest for the Data page's column mapping: an export that is not in the contract's form gets
a proposed mapping, a preview of the rows as they would load and the predicted rejects, loads,
and is saved for the next file with the same columns."""

from __future__ import annotations

import pytest
from conftest import page_file
from streamlit.testing.v1 import AppTest

from ccrm_core.foundation import store
from ccrm_core.foundation.ingest import mapping

PAGE = page_file("data")
GERMAN_CUSTOMERS = (
    "Kundennummer;Vorname;Nachname;E-Mail;Geburtsdatum\n"
    "K001;Anna;Schmidt;anna@example.de;24.12.1980\n"
    "K002;Bernd;Müller;bernd@example.de;05.06.1975\n"
)


@pytest.fixture()
def new_db(tmp_path, monkeypatch):
    """A new user's database: the schema, nothing loaded (the app opens it before any page)."""
    path = tmp_path / "new.duckdb"
    store.connect_writer(path).close()
    monkeypatch.setenv("CCRM_DB", str(path))
    return path


def _upload(name: str, data: bytes) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    at.file_uploader[0].set_value([(name, data, "text/csv")])
    at.run()
    assert not at.exception, at.exception
    return at


def _texts(elements) -> str:
    return " ".join(str(e.value) for e in elements).replace("\\", "")


def test_shopify_orders_upload_is_mapped_previewed_loaded_and_saved(new_db):
    data = mapping.preset_example("shopify_orders").read_bytes()
    at = _upload("orders_export_1.csv", data)
    assert "preset shopify_orders" in _texts(at.info)
    assert "No rejects predicted: 16 rows would load into orders" in _texts(at.success)
    preview = at.dataframe[-1].value
    assert len(preview) == 16 and preview["order_id"].iloc[0] == "#1001"
    next(b for b in at.button if b.label == "Load files").click().run()
    assert not at.exception, at.exception
    shown = _texts(at.success)
    assert "orders_export_1.csv → orders: 16 rows loaded" in shown
    assert "Saved mapping shopify_orders" in shown
    con = store.connect_writer(new_db)
    try:
        assert con.execute("SELECT count(*) FROM orders").fetchone()[0] == 16
        assert con.execute("SELECT name FROM column_mappings").fetchall() == [("shopify_orders",)]
    finally:
        con.close()
    # the next export with the same columns uses the saved mapping, and says so
    again = _upload("orders_export_2.csv", data)
    assert "using saved mapping 'shopify_orders'" in _texts(again.info)


def test_an_unknown_export_gets_a_proposal_whose_date_order_the_user_confirms(new_db):
    at = _upload("kunden.csv", GERMAN_CUSTOMERS.encode())
    assert "suggested from the column names and values" in _texts(at.info)
    assert "day first" in _texts(at.info)
    assert at.selectbox(key=[k for k in _keys(at) if k.endswith("_table")][0]).value == (
        "src_customers"
    )
    dates = at.selectbox(key=[k for k in _keys(at) if k.endswith("_dates")][0])
    assert dates.value == "DMY"
    assert "No rejects predicted: 2 rows" in _texts(at.success)
    dates.select("MDY").run()  # 24.12.1980 is no month-first date: the preview says so
    assert not at.exception, at.exception
    assert "Would be refused" in _texts(at.error)
    assert "in your file: column 'Geburtsdatum'" in at.dataframe[-1].value["reason"].iloc[0]


def _keys(at: AppTest) -> list[str]:
    return [s.key for s in at.selectbox if s.key]
