"""A real transaction log: the UCI "Online Retail" shape (one row per line item, customer id,
date, quantity, unit price; no names, no events) mapped by the online_retail preset gives orders
(revenue = sum of quantity x price per invoice, cancellations and rows without a customer
skipped and counted), then RFM, BG/NBD + Gamma-Gamma lifetime value and the Command Center."""

from __future__ import annotations

import csv
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import metric_value, page_file
from streamlit.testing.v1 import AppTest

from ccrm_core import cli
from ccrm_core.foundation import store
from ccrm_core.foundation.ingest import ingest_files
from ccrm_core.foundation.ingest.mapping import (
    MappingError,
    mapping_to_toml,
    parse_mapping,
    preset,
    preset_example,
)
from ccrm_core.foundation.ingest.names import ingest_limit
from ccrm_core.foundation.ingest.preview import preview_mapping
from ccrm_core.foundation.ingest.propose import propose
from ccrm_core.foundation.ingest.transform import read_sample
from ccrm_core.radar.kpis.tiles import _format_value

HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
          "CustomerID", "Country"]  # fmt: skip
# the example file, counted by hand: invoice -> (customer, revenue = sum of qty x price)
EXAMPLE_ORDERS = {
    "536365": ("17850", 6 * 2.55 + 6 * 3.39 + 8 * 2.75),  # 57.64, CustomerID written 17850.0
    "536366": ("17850", 6 * 1.85),
    "536367": ("13047", 32 * 1.69 + 6 * 2.1),
    "536370": ("12583", 24 * 3.75 + 3 * 18),
    "536381": ("15311", 12 * 2.95),
    "537126": ("17850", 6 * 4.25 + 2 * 7.65),
    "537240": ("13047", 4 * 5.95),
    "539101": ("12583", 2 * 11.95),
    "540418": ("17850", 12 * 1.25 + 12 * 1.45),
    "541200": ("15311", 6 * 3.75 + 6 * 3.75),
    "541201": ("14527", 12.75),
    "542010": ("13047", 3 * 4 * 3.75),
    "543020": ("17850", 12 * 1.95),
    "544100": ("12583", 100 * 0.72),
    "544900": ("14527", 24 * 0.55),
}
CANCELLED_LINES = [10, 12, 24, 25, 35]  # C invoices, and a negative quantity (line 25)
NO_CUSTOMER_LINES = [13, 14, 15, 20, 21, 33]


def _example(tmp_path: Path, name: str) -> Path:
    path = tmp_path / preset_example(name).name
    path.write_bytes(preset_example(name).read_bytes())
    return path


def _load(path: Path, mapping, db: str = ":memory:"):
    con = duckdb.connect(db)
    store.migrate(con)
    [report] = ingest_files(con, [path], mappings=[mapping])  # the default 1% reject limit
    return con, report


# --- the mapping options ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["online_retail", "online_retail_ii"])
def test_preset_reads_back_from_its_toml_and_names_its_source(name):
    p = preset(name)
    assert parse_mapping(mapping_to_toml(p), name) == p
    assert p.source.startswith("https://doi.org/10.24432/")
    assert p.cancellations is not None and p.skip_rows_where_empty
    assert p.columns["revenue"].how == "sum_product"


@pytest.mark.parametrize("name", ["online_retail", "online_retail_ii"])
def test_the_header_gets_the_preset_automatically(name, tmp_path):
    path = _example(tmp_path, name)
    proposal = propose(read_sample(path, path.name, ingest_limit()), path.name)
    assert (proposal.origin, proposal.mapping.name) == ("preset", name)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('revenue = { sum_of_product = ["Quantity", "UnitPrice"] }', "set one_row_per"),
        ('revenue = { sum_of_product = ["Quantity"] }', "write two file columns"),
    ],
)
def test_sum_of_product_needs_two_columns_and_a_row_key(toml, message):
    text = (
        'name = "x"\ntable = "orders"\n[columns]\norder_id = "InvoiceNo"\nts = "InvoiceDate"\n'
        'source_system = { constant = "s" }\nsource_id = "CustomerID"\n' + toml + "\n"
    )
    with pytest.raises(MappingError, match=message):
        parse_mapping(text)


def test_cancellations_need_a_rule():
    text = mapping_to_toml(preset("online_retail")).replace(
        'starting = ["C"]\nnegative = ["Quantity"]', ""
    )
    with pytest.raises(MappingError, match="cancellations: give column and starting together"):
        parse_mapping(text)


# --- the example file ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["online_retail", "online_retail_ii"])
def test_example_loads_one_order_per_invoice_with_summed_revenue(name, tmp_path):
    con, report = _load(_example(tmp_path, name), preset(name))
    assert report.ok, report.message
    assert (report.rows_loaded, report.rows_rejected) == (len(EXAMPLE_ORDERS), 0)
    # skipped rows are counted by reason and are not rows read: 11 of 35 skipped, yet loaded
    # under the 1% reject limit
    assert report.skipped == {
        "cancellation": 5,
        f"{preset(name).skip_rows_where_empty[0]} empty": 6,
    }
    assert report.rows_read == len(EXAMPLE_ORDERS)
    got = {
        k: (c, r)
        for k, c, r in con.execute("SELECT order_id, source_id, revenue FROM orders").fetchall()
    }
    assert got.keys() == EXAMPLE_ORDERS.keys()
    for invoice, (customer, revenue) in EXAMPLE_ORDERS.items():
        assert got[invoice][0] == customer
        assert got[invoice][1] == pytest.approx(revenue, abs=1e-9)
    assert con.execute("SELECT sum(revenue) FROM orders").fetchone()[0] == pytest.approx(647.07)
    ts = con.execute("SELECT ts FROM orders WHERE order_id = '536365'").fetchone()[0]
    assert ts.replace(year=2010) == datetime(2010, 12, 1, 8, 26)  # II is the year before
    assert con.execute("SELECT DISTINCT channel FROM orders").fetchall() == [("web",)]
    log = con.execute("SELECT message FROM ingest_log").fetchone()[0]
    assert "5 rows skipped: cancellation" in log and "6 rows skipped:" in log


def test_skipped_rows_are_reported_with_their_lines(tmp_path):
    _, report = _load(_example(tmp_path, "online_retail"), preset("online_retail"))
    text = " | ".join(report.warnings)
    lines = ", ".join(str(n) for n in CANCELLED_LINES)
    assert f"5 rows skipped: cancellation (lines {lines})" in text
    lines = ", ".join(str(n) for n in NO_CUSTOMER_LINES)
    assert f"6 rows skipped: CustomerID empty (lines {lines})" in text
    assert "9 row(s) repeating a InvoiceNo already read were folded" in text


def test_data_page_preview_states_the_skipped_rows(tmp_path):
    path = _example(tmp_path, "online_retail")
    preview = preview_mapping(path, preset("online_retail"), path.name, ingest_limit())
    assert not preview.refused
    assert preview.report.skipped["cancellation"] == 5
    assert any("rows skipped: CustomerID empty" in w for w in preview.report.warnings)


def test_an_amount_that_is_no_number_rejects_its_invoice_naming_the_columns(tmp_path):
    path = _example(tmp_path, "online_retail")
    text = path.read_text().replace("12,1/7/2011 11:04,1.45", "12,1/7/2011 11:04,unknown")
    path.write_text(text)
    con, report = _load(path, preset("online_retail"))
    assert report.rows_rejected == 1
    [reject] = report.rejects
    assert (reject.line, reject.column, reject.value) == (22, "revenue", "unknown")
    assert "'Quantity' × 'UnitPrice'" in report.located(reject).reason


# --- a whole company from a transaction log -------------------------------------------------------

DATA_END = date(2011, 6, 30)


def _transaction_log(path: Path) -> tuple[int, float]:
    """The example file plus 40 generated customers in the same shape, ending on DATA_END;
    returns (orders, revenue) as the loaded table must hold them."""
    rows = list(csv.reader(preset_example("online_retail").read_text().splitlines()))[1:]
    rng = random.Random(352)
    invoice = 560000
    for n in range(40):
        customer = str(12000 + n) + (".0" if n % 3 == 0 else "")
        day = date(2010, 12, 1) + timedelta(days=rng.randrange(0, 120))
        for _ in range(rng.randrange(1, 6)):
            if day > DATA_END:
                break
            invoice += 1
            stamp = (
                f"{day.month}/{day.day}/{day.year} {rng.randrange(8, 18)}:{rng.randrange(60):02d}"
            )
            for line in range(rng.randrange(1, 4)):
                qty, price = rng.randrange(1, 25), rng.choice([0.42, 0.85, 1.25, 2.55, 4.95])
                rows.append([str(invoice), f"2{line}000", "ITEM", str(qty), stamp, str(price),
                             customer, "United Kingdom"])  # fmt: skip
            if rng.random() < 0.2:  # a cancelled line of the invoice
                rows.append([f"C{invoice}", "20000", "ITEM", "-1", stamp, "0.85", customer, "UK"])
            if rng.random() < 0.3:  # a guest purchase, no customer
                rows.append([str(invoice + 100000), "M", "Manual", "1", stamp, "9.99", "", "UK"])
            day += timedelta(days=rng.randrange(7, 60))
    rows.append(["569999", "POST", "POSTAGE", "1", "6/30/2011 17:00", "40", "12000.0", "UK"])
    with path.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([HEADER, *rows])
    kept = [r for r in rows if r[6] and not r[0].startswith("C") and float(r[3]) >= 0]
    invoices = {r[0] for r in kept}
    return len(invoices), sum(float(r[3]) * float(r[5]) for r in kept)


@pytest.fixture(scope="module")
def retail_db(tmp_path_factory) -> tuple[Path, int, float]:
    folder = tmp_path_factory.mktemp("online_retail")
    log, db = folder / "Online Retail.csv", folder / "retail.duckdb"
    orders, revenue = _transaction_log(log)
    assert cli.main(["ingest", str(log), "--mapping", "online_retail", "--db", str(db)]) == 0
    assert cli.main(["build", "--db", str(db), "--param", "mmm.bootstrap=5"]) == 0
    return db, orders, revenue


def _query(db: Path, sql: str, params: list | None = None):
    con = store.connect_reader(db)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_planted_customer_has_the_hand_computed_rfm(retail_db):
    db, orders, revenue = retail_db
    assert _query(db, "SELECT count(*), sum(revenue) FROM orders")[0] == (
        orders,
        pytest.approx(revenue),
    )
    # 17850: invoices on 1 Dec 2010 (two), 5 Dec, 7 Jan 2011, 3 Feb 2011 (weeks of 7 days)
    [(frequency, recency, t, monetary, clv)] = _query(
        db,
        "SELECT v.frequency, v.recency, v.T, v.monetary_value, m.clv FROM customer_value v "
        "JOIN mart_customer m USING (customer_id) WHERE customer_id IN "
        "(SELECT customer_id FROM identity_map WHERE source_id = '17850')",
    )
    assert frequency == 3  # four purchase days, the first is no repeat
    assert recency == pytest.approx(64 / 7)  # 1 Dec 2010 -> 3 Feb 2011
    assert t == pytest.approx(211 / 7)  # 1 Dec 2010 -> 30 Jun 2011 (the data's last day)
    assert monetary == pytest.approx((40.80 + 32.40 + 23.40) / 3)  # repeat days' mean revenue
    assert clv is not None and clv > 0


def test_repeat_buyers_get_a_lifetime_value(retail_db):
    db, _, _ = retail_db
    [(repeaters, valued, fitted)] = _query(
        db,
        "SELECT count(*) FILTER (WHERE v.frequency > 0), "
        "count(*) FILTER (WHERE v.frequency > 0 AND m.clv > 0), "
        "(SELECT count(DISTINCT model) FROM value_model WHERE model IN ('bgnbd', 'gamma_gamma')) "
        "FROM customer_value v JOIN mart_customer m USING (customer_id)",
    )
    assert repeaters >= 3 and valued == repeaters and fitted == 2


def test_command_center_shows_the_hand_computed_orders_and_revenue(retail_db, monkeypatch):
    db, orders, revenue = retail_db
    monkeypatch.setenv("CCRM_DB", str(db))
    at = AppTest.from_file(page_file("command_center"), default_timeout=120)
    at.query_params["period"] = "365"  # 1 Jul 2010 - 30 Jun 2011: the whole log
    at.run()
    assert not at.exception, at.exception
    assert metric_value(at, "Orders") == _format_value(orders, "count")
    assert metric_value(at, "Revenue") == _format_value(revenue, "money")
