"""Column mappings: presets load their example files, proposals from names and values, the
transformations, and every ingest rule still holding for a mapped file (rejects on the original
file's line and column, all-or-nothing, size limit, audit, hostile names and values)."""

from __future__ import annotations

import gzip
import tomllib

import pandas as pd
import pytest
from conftest import ccrm

from ccrm_core.foundation import access, audit, ingest, store
from ccrm_core.foundation.ingest import editing, mapping, mapping_store
from ccrm_core.foundation.ingest.propose import contract_table, detect_date_order, profile_column
from ccrm_core.foundation.ingest.transform import parse_amounts, parse_dates

EXAMPLES = {
    "shopify_orders": ("orders", 16),
    "shopify_customers": ("src_customers", 8),
    "salesforce_contacts": ("src_customers", 6),
    "google_ads_campaigns": ("spend", 28),
    "meta_ads_campaigns": ("spend", 28),
    "eloqua_email_activity": ("events", 16),
    "online_retail": ("orders", 15),  # 35 line items: cancellations and guests skipped
    "online_retail_ii": ("orders", 15),
}
ADMIN = access.local_user("admin@example.com")


@pytest.fixture()
def con():
    c = store.connect_writer(":memory:")
    yield c
    c.close()


def _example(name: str, tmp_path):
    target = tmp_path / mapping.preset_example(name).name
    target.write_bytes(mapping.preset_example(name).read_bytes())
    return target


def _load(con, path, m, **kwargs) -> ingest.IngestReport:
    return ingest.ingest_files(con, [path], mappings=[m], **kwargs)[0]


def _rejects(con) -> list[tuple]:
    return con.execute(
        "SELECT line, column_name, value, reason FROM ingest_rejects ORDER BY line, column_name"
    ).fetchall()


# ---------------------------------------------------------------------------------------------
# presets


def test_every_preset_names_its_source_and_has_an_example():
    assert set(mapping.preset_names()) == set(EXAMPLES)
    for name in mapping.preset_names():
        p = mapping.preset(name)
        assert p.source.startswith("https://"), name
        assert p.header and p.file_columns() - {"Impr*", "Amount spent*"} <= set(p.header)
        assert mapping.parse_mapping(mapping.mapping_to_toml(p)) == p  # TOML round trip


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_preset_example_loads_without_rejects(con, tmp_path, name):
    table, rows = EXAMPLES[name]
    report = _load(con, _example(name, tmp_path), mapping.preset(name))
    assert report.ok, report.message
    assert (report.table, report.rows_loaded, report.rows_rejected) == (table, rows, 0)
    assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_preset_is_proposed_for_its_example(tmp_path, name):
    path = _example(name, tmp_path)
    proposal = ingest.propose(ingest.read_sample(path, path.name, ingest.ingest_limit()), "x.csv")
    assert proposal.origin == "preset" and proposal.mapping.columns == mapping.preset(name).columns


def test_shopify_orders_one_order_per_name_linked_to_its_customer(con, tmp_path):
    _load(con, _example("shopify_customers", tmp_path), mapping.preset("shopify_customers"))
    report = _load(con, _example("shopify_orders", tmp_path), mapping.preset("shopify_orders"))
    # line items after an order's first row fold into it; the order's Total is on its first row
    assert report.rows_read == 16 and any("folded" in w for w in report.warnings)
    first = con.execute(
        "SELECT revenue, ts, channel FROM orders WHERE order_id = '#1001'"
    ).fetchone()
    assert first == (57.87, pd.Timestamp("2025-03-01 09:00:00"), "web")  # offset -0500 dropped
    assert con.execute("SELECT count(*) FROM orders WHERE channel = 'store'").fetchone()[0] == 4
    # every order's customer is a loaded Shopify customer (the e-mail, lower-cased and hashed)
    orphans = con.execute(
        "SELECT count(*) FROM orders o ANTI JOIN src_customers c USING (source_system, source_id)"
    ).fetchone()[0]
    assert orphans == 0
    ids = [r[0] for r in con.execute("SELECT source_id FROM orders").fetchall()]
    assert all(i.startswith("sha256:") and "@" not in i for i in ids)


def test_google_ads_report_titles_and_totals_are_skipped(con, tmp_path):
    report = _load(
        con, _example("google_ads_campaigns", tmp_path), mapping.preset("google_ads_campaigns")
    )
    assert any("summary row" in w for w in report.warnings)
    assert any("above the header" in w for w in report.warnings)
    spend, impressions = con.execute("SELECT sum(spend), sum(impressions) FROM spend").fetchone()
    assert impressions > 50_000 and spend == pytest.approx(impressions * 0.041, rel=1e-3)


# ---------------------------------------------------------------------------------------------
# proposals and transformations

GERMAN_CUSTOMERS = (
    "Kundennummer;Vorname;Nachname;E-Mail;Telefon;Straße;PLZ;Ort;Geburtsdatum;Erstellt am\n"
    "K001;Anna;Schmidt;anna@example.de;+49 30 1234567;Hauptstr. 1;10115;Berlin;24.12.1980;03.01.2024\n"
    "K002;Bernd;Müller;bernd@example.de;+49 40 7654321;Ring 2;20095;Hamburg;05.06.1975;15.02.2024\n"
)
FRENCH_ORDERS = (
    "Numéro de commande,Date de commande,Heure,Nom complet,Courriel,Montant\n"
    'C1,13/01/2025,10:15,Chloé Martin,chloe@example.fr,"1 234,50 €"\n'
    'C2,14/01/2025,11:00,"Dupont, Jean",jean@example.fr,"99,90 €"\n'
)


def _propose(tmp_path, name: str, text: str, table: str | None = None) -> ingest.Proposal:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return ingest.propose(ingest.read_sample(path, name, ingest.ingest_limit()), name, table)


def test_german_customer_export_is_proposed_from_names_and_values(con, tmp_path):
    proposal = _propose(tmp_path, "kunden.csv", GERMAN_CUSTOMERS)
    m = proposal.mapping
    assert (m.table, m.delimiter, m.date_order) == ("src_customers", ";", "DMY")
    assert {t: f.sources for t, f in m.columns.items() if f.sources} == {
        "source_id": ("Kundennummer",),
        "first_name": ("Vorname",),
        "last_name": ("Nachname",),
        "email": ("E-Mail",),
        "phone": ("Telefon",),
        "address_line": ("Straße",),
        "city": ("Ort",),
        "postal_code": ("PLZ",),
        "birth_date": ("Geburtsdatum",),
        "created_at": ("Erstellt am",),
    }
    assert m.columns["source_system"].constant == "import"
    assert any("24.12.1980" in n and "day" in n for n in proposal.notes)
    report = _load(con, tmp_path / "kunden.csv", m)
    assert report.ok and report.rows_loaded == 2
    assert (
        con.execute("SELECT birth_date FROM src_customers WHERE source_id = 'K001'").fetchone()[0]
        == pd.Timestamp("1980-12-24").date()
    )


def test_french_orders_split_name_combine_date_and_time_decimal_comma(con, tmp_path):
    proposal = _propose(tmp_path, "commandes.csv", FRENCH_ORDERS, table="orders")
    m = proposal.mapping
    assert m.columns["order_id"].sources == ("Numéro de commande",)
    assert m.columns["ts"].sources == ("Date de commande", "Heure")
    assert m.columns["revenue"].sources == ("Montant",) and m.decimal == ","
    assert m.columns["source_id"].hashed  # the e-mail stands for the customer id
    report = _load(con, tmp_path / "commandes.csv", m)
    assert report.ok, report.message
    rows = con.execute("SELECT order_id, ts, revenue FROM orders ORDER BY order_id").fetchall()
    assert rows == [
        ("C1", pd.Timestamp("2025-01-13 10:15:00"), 1234.5),
        ("C2", pd.Timestamp("2025-01-14 11:00:00"), 99.9),
    ]
    customers = _propose(tmp_path, "clients.csv", FRENCH_ORDERS, table="src_customers").mapping
    assert customers.columns["first_name"].take == "first_name"
    _load(con, tmp_path / "clients.csv", customers)
    names = con.execute("SELECT first_name, last_name FROM src_customers ORDER BY 1").fetchall()
    assert names == [("Chloé", "Martin"), ("Jean", "Dupont")]  # 'Dupont, Jean' is last, first


def test_spanish_and_dutch_headers_are_understood(tmp_path):
    spanish = _propose(
        tmp_path, "pedidos.csv", "Pedido,Fecha,Id cliente,Importe\nP1,2025-01-02,C1,10.50\n"
    )
    assert spanish.mapping.table == "orders"
    assert spanish.mapping.columns["source_id"].sources == ("Id cliente",)
    dutch = _propose(
        tmp_path,
        "klanten.csv",
        "Klantnummer,Voornaam,Achternaam,E-mailadres,Woonplaats\nK1,Jan,Jansen,jan@example.nl,Utrecht\n",
    )
    assert dutch.mapping.table == "src_customers"
    assert dutch.mapping.columns["last_name"].sources == ("Achternaam",)
    assert dutch.mapping.columns["email"].sources == ("E-mailadres",)


def test_values_tell_day_first_from_month_first():
    assert detect_date_order(pd.Series(["03/04/2024", "25/04/2024"]))[0] == "DMY"
    assert detect_date_order(pd.Series(["03/04/2024", "04/25/2024"]))[0] == "MDY"
    order, evidence = detect_date_order(pd.Series(["03/04/2024"]))
    assert order == "MDY" and "confirm" in evidence
    assert profile_column(["a@example.com", "b@example.org"]).kind == "email"
    assert profile_column(["+49 30 1234567", "(415) 555-0100"]).kind == "phone"
    assert profile_column(["€1,234.50", "$99.00"]).kind == "amount"


def test_amounts_and_dates_convert_and_others_stay_as_written():
    amounts = pd.Series(["€1,234.56", "(12.00)", "12.50-", "CHF 1'234.50", "abc", "1e3"])
    assert parse_amounts(amounts, ".").tolist()[:4] == [1234.56, -12.0, -12.5, 1234.5]
    assert pd.isna(parse_amounts(amounts, ".")[4]) and parse_amounts(amounts, ".")[5] == 1000
    assert parse_amounts(pd.Series(["1.234,56 €"]), ",")[0] == 1234.56
    dates = parse_dates(
        pd.Series(["3/14/2024, 10:05 AM", "05-01-2024", "2024-01-05T10:00Z"]), "MDY"
    )
    assert dates.tolist() == [
        pd.Timestamp("2024-03-14 10:05"),
        pd.Timestamp("2024-05-01"),
        pd.Timestamp("2024-01-05 10:00"),
    ]


def test_a_file_in_the_contract_form_needs_no_mapping():
    header = store.TABLES["orders"].column_names
    assert contract_table(header, "orders_2025.csv") == "orders"
    assert contract_table(["Name", "Total"], "orders_export_1.csv") is None


# ---------------------------------------------------------------------------------------------
# every ingest rule still applies to a mapped file

ORDERS_MAPPING = """
name = "test orders"
table = "orders"
date_order = "DMY"
decimal = ","
[columns]
order_id = "Bestellnummer"
ts = "Bestelldatum"
source_system = { constant = "shop" }
source_id = "Kunde"
revenue = "Betrag"
"""


def test_rejects_name_the_original_line_and_column(con, tmp_path):
    path = tmp_path / "bestellungen.csv"
    lines = [
        "Bestellnummer;Notiz;Bestelldatum;Kunde;Betrag",
        'B1;"eine Notiz\nüber zwei Zeilen";01.02.2025;K1;10,00',  # lines 2-3
        "",  # a blank line 4
        "B2;;31.02.2025;K2;11,00",  # line 5: no such day
        "B3;;01.02.2025;K3;zehn",  # line 6: no amount
        "B4;;01.02.2025;K4",  # line 7: a field missing
    ] + [f"B{i};;01.02.2025;K{i};1,00" for i in range(5, 300)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    m = ingest.parse_mapping(ORDERS_MAPPING)
    report = _load(con, path, m, max_reject_rate=0.05)
    assert report.ok and report.rows_rejected == 3 and report.rows_loaded == 296
    found = _rejects(con)
    assert [(r[0], r[1], r[2]) for r in found] == [
        (5, "ts", "31.02.2025"),
        (6, "revenue", "zehn"),
        (7, "revenue", None),
    ]
    assert "in your file: column 'Bestelldatum'" in found[0][3]
    assert "in your file: column 'Betrag'" in found[1][3]
    assert "fewer fields" in found[2][3]


def test_a_mapped_file_loads_whole_or_changes_nothing(con, tmp_path):
    path = tmp_path / "bestellungen.csv"
    path.write_text(
        "Bestellnummer;Bestelldatum;Kunde;Betrag\nB1;01.02.2025;K1;1,00\nB1;02.02.2025;K1;2,00\n",
        encoding="utf-8",
    )
    report = _load(con, path, ingest.parse_mapping(ORDERS_MAPPING))
    assert report.status == "refused" and "duplicate key" in report.message
    assert "lines 2 and 3" in report.message
    assert con.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    # above the reject limit: refused whole
    path.write_text(
        "Bestellnummer;Bestelldatum;Kunde;Betrag\nB1;01.02.2025;K1;x\nB2;01.02.2025;K1;1\n",
        encoding="utf-8",
    )
    report = _load(con, path, ingest.parse_mapping(ORDERS_MAPPING))
    assert report.status == "refused" and "above the 1% limit" in report.message
    assert con.execute("SELECT count(*) FROM orders").fetchone()[0] == 0


def test_a_file_lacking_a_mapped_column_is_refused_and_audited(con, tmp_path):
    path = tmp_path / "orders_export.csv"
    path.write_text("Name,Email\n#1,a@example.com\n", encoding="utf-8")
    [report] = audit.ingest_files(
        con, ADMIN, [path], via="cli", mappings=[mapping.preset("shopify_orders")]
    )
    assert report.status == "refused" and "Created at" in report.message
    status, action = con.execute("SELECT status, action FROM audit_log").fetchone()
    assert (status, action) == ("failed", "ingest")
    assert con.execute("SELECT status FROM ingest_log").fetchone()[0] == "refused"


def test_size_limit_applies_to_the_file_as_uploaded(con, tmp_path):
    path = tmp_path / "bestellungen.csv.gz"
    body = "Bestellnummer;Bestelldatum;Kunde;Betrag\n" + "".join(
        f"B{i};01.02.2025;K{i};1,00\n" for i in range(40_000)
    )
    path.write_bytes(gzip.compress(body.encode()))
    report = _load(
        con, path, ingest.parse_mapping(ORDERS_MAPPING), size_limit=ingest.upload_limit(0.5)
    )
    assert report.status == "refused" and "unzips to at least" in report.message


def test_hostile_values_stay_data_and_hostile_headers_round_trip(con, tmp_path):
    header = ['id"; DROP TABLE orders; --', "When\u202e", "Amount [x](http://evil.example)", "Who"]
    path = tmp_path / "hostile.csv"
    path.write_text(
        ",".join(f'"{h.replace(chr(34), chr(34) * 2)}"' for h in header)
        + "\n=cmd|' /C calc'!A0,2025-01-02,5,@SUM(1)\n",
        encoding="utf-8",
    )
    m = mapping.ColumnMapping(
        "hostile \u00e9",
        "orders",
        {
            "order_id": mapping.Field((header[0],)),
            "ts": mapping.Field((header[1],)),
            "source_system": mapping.Field(constant="shop"),
            "source_id": mapping.Field((header[3],)),
            "revenue": mapping.Field((header[2],)),
        },
        header=tuple(header),
    )
    assert mapping.parse_mapping(mapping.mapping_to_toml(m)) == m
    report = _load(con, path, m)
    assert report.ok, report.message
    assert con.execute("SELECT order_id, source_id FROM orders").fetchone() == (
        "=cmd|' /C calc'!A0",
        "@SUM(1)",
    )
    with pytest.raises(ingest.MappingError, match="control or invisible"):
        mapping.parse_mapping(
            'name = "x"\ntable = "orders"\n[columns]\norder_id = "a"\nts = "b"\n'
            'source_system = { constant = "shop\\nify" }\nsource_id = "c"\nrevenue = "d"\n'
        )


def test_mapping_files_name_what_is_wrong():
    bad = {
        'name = "x"\ntable = "nope"\n[columns]\n': "not a raw table",
        'name = "x"\ntable = "orders"\n[columns]\norder_id = "a"\n': "needs ts",
        'name = "x"\ntable = "orders"\ncolour = 1\n[columns]\n': "unknown key 'colour'",
        'name = "x"\ntable = "orders"\ndate_order = "XYZ"\n[columns]\norder_id = "a"\n': "date_order",
        'name = "x"\ntable = "orders"\n[columns]\nwho = "a"\n': "not a column of orders",
        "name = [": "not valid TOML",
    }
    for text, message in bad.items():
        with pytest.raises(ingest.MappingError, match=message):
            mapping.parse_mapping(text)


def test_parquet_rows_are_named_as_lines_after_a_header(con, tmp_path):
    path = tmp_path / "export.parquet"
    frame = pd.DataFrame(
        {"Bestellnummer": ["B1", "B2"], "Bestelldatum": ["01.02.2025", "kein Datum"],
         "Kunde": ["K1", "K2"], "Betrag": [1.5, 2.0]}
    )  # fmt: skip
    frame.to_parquet(path)
    report = _load(con, path, ingest.parse_mapping(ORDERS_MAPPING), max_reject_rate=0.6)
    assert report.ok and report.rows_loaded == 1
    assert _rejects(con)[0][:3] == (3, "ts", "kein Datum")  # row 2 of the file, line 3


# ---------------------------------------------------------------------------------------------
# saving, finding and editing


def test_saved_mapping_is_found_again_by_header_in_any_order_and_case(con, tmp_path):
    m = dataclasses_replace(mapping.preset("meta_ads_campaigns"), name="Meta 🇪🇺 daily")
    mapping_store.save_mapping(con, ADMIN, m)
    header = [h.upper() for h in reversed(m.header)]
    found = ingest.mapping_for_header(con, header)
    assert found is not None and found.name == "Meta 🇪🇺 daily" and found.columns == m.columns
    assert ingest.mapping_for_header(con, ["Day", "Cost"]) is None
    assert ingest.resolve_mapping(con, "Meta 🇪🇺 daily") == found
    assert ingest.resolve_mapping(con, "shopify_orders") == mapping.preset("shopify_orders")
    with pytest.raises(access.AccessDenied):
        mapping_store.save_mapping(con, access.User("m@example.com", "M", "marketer"), m)
    with pytest.raises(ingest.MappingError, match="control or invisible"):
        mapping_store.save_mapping(con, ADMIN, dataclasses_replace(m, name="bad\x1b[31m"))


def test_migration_5_adds_the_saved_mappings_table(tmp_path):
    con = store.connect_writer(tmp_path / "new.duckdb")
    try:
        assert store.table_exists(con, "column_mappings")
        versions = [v for (v,) in con.execute("SELECT version FROM schema_version").fetchall()]
        assert 5 in versions and max(versions) == store.SCHEMA_VERSION
    finally:
        con.close()


def test_editor_rows_give_back_the_mapping_and_edits_apply():
    m = mapping.preset("shopify_customers")
    rows = editing.mapping_rows(m)
    assert editing.mapping_from_rows(rows, m) == m
    rows.loc[rows["column"] == "source_system", "constant"] = "shop_eu"
    rows.loc[rows["column"] == "first_name", ["file_column", "how"]] = ["Last Name", "copy"]
    edited = editing.mapping_from_rows(rows, m, date_order="DMY")
    assert edited.columns["source_system"].constant == "shop_eu"
    assert edited.columns["first_name"].sources == ("Last Name",) and edited.date_order == "DMY"
    rows.loc[rows["column"] == "source_id", ["file_column", "how"]] = ["", "copy"]
    with pytest.raises(ingest.MappingError, match="source_id"):
        editing.mapping_from_rows(rows, m)


def test_preview_predicts_the_rejects_the_load_gives(con, tmp_path):
    path = tmp_path / "bestellungen.csv"
    path.write_text(
        "Bestellnummer;Bestelldatum;Kunde;Betrag\n"
        + "".join(f"B{i};01.02.2025;K{i};1,00\n" for i in range(50))
        + "B99;99.99.2025;K1;1,00\n",
        encoding="utf-8",
    )
    m = ingest.parse_mapping(ORDERS_MAPPING)
    preview = ingest.preview_mapping(path, m, path.name, ingest.upload_limit(), 0.05)
    assert not preview.refused and len(preview.rows) == 20
    assert preview.rejects[["column", "values", "first_line"]].values.tolist() == [["ts", 1, 52]]
    strict = ingest.preview_mapping(path, m, path.name, ingest.upload_limit(), 0.01)
    assert strict.refused and "above the 1.0% limit" in strict.reason
    report = _load(con, path, m, max_reject_rate=0.05)
    assert [r[:2] for r in _rejects(con)] == [(52, "ts")] and report.rows_loaded == 50


# ---------------------------------------------------------------------------------------------
# command line


def test_cli_ingest_with_a_preset_saves_it_and_reuses_it_for_the_next_file(tmp_path):
    db = tmp_path / "cli.duckdb"
    first = _example("shopify_orders", tmp_path)
    proc = ccrm("ingest", str(first), "--mapping", "shopify_orders", "--save-mapping", "shop",
                "--db", str(db))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "16 rows loaded" in proc.stdout and "saved mapping 'shop'" in proc.stdout
    again = tmp_path / "orders_export_2.csv"
    again.write_bytes(first.read_bytes())
    proc = ccrm("ingest", str(again), "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "using saved mapping 'shop'" in proc.stdout and "16 replaced" in proc.stdout
    proc = ccrm(
        "ingest", str(again), "--mapping", "shopify_orders", "--table", "spend", "--db", str(db)
    )
    assert proc.returncode == 2 and "contradicts" in proc.stderr
    proc = ccrm("ingest", str(again), "--mapping", "no_such", "--db", str(db))
    assert proc.returncode == 2 and "no mapping 'no_such'" in proc.stderr


def test_cli_proposes_a_mapping_file_that_then_loads(tmp_path):
    source = tmp_path / "kunden.csv"
    source.write_text(GERMAN_CUSTOMERS, encoding="utf-8")
    out = tmp_path / "kunden.toml"
    proc = ccrm("ingest", str(source), "--propose-mapping", str(out))
    assert proc.returncode == 0, proc.stderr
    assert tomllib.loads(out.read_text())["table"] == "src_customers"
    proc = ccrm("ingest", str(source), "--mapping", str(out), "--db", str(tmp_path / "k.duckdb"))
    assert proc.returncode == 0 and "2 rows loaded" in proc.stdout, proc.stderr


def dataclasses_replace(m, **changes):
    import dataclasses

    return dataclasses.replace(m, **changes)


def test_the_readme_example_mapping_loads_its_file(con, tmp_path):
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("An example mapping file", 1)[1]
    text = section.split("```toml\n", 1)[1].split("```", 1)[0]
    m = ingest.parse_mapping(text, "README.md")
    path = tmp_path / "bestellungen.csv"
    path.write_text(
        "Bestellnummer;Bestelldatum;Uhrzeit;Kundennummer;Betrag;Kanal\n"
        "B1;24.12.2024;10:15;K001;1.234,50 €;Online\n"
        "B2;25.12.2024;11:00;K002;99,90 €;Filiale\n",
        encoding="utf-8",
    )
    report = _load(con, path, m)
    assert report.ok, report.message
    assert con.execute("SELECT revenue, channel, ts FROM orders ORDER BY 1").fetchall() == [
        (99.9, "store", pd.Timestamp("2024-12-25 11:00")),
        (1234.5, "web", pd.Timestamp("2024-12-24 10:15")),
    ]
