"""Proposing a mapping for a file nobody has mapped yet: which raw table it holds and which of
its columns fill which contract column, from the header's names (synonyms in English, German,
French, Spanish and Dutch; case, accents, spaces and punctuation ignored) and from the values
(dates, e-mails, phones, amounts, ids). Day-first or month-first dates and the decimal mark are
read from the values, with the evidence, for the user to confirm.

A preset whose columns the file has, or a saved mapping made for the same header, comes first
(`ingest.mapping_store.mapping_for_header`); the proposal is only a starting point the user
confirms or edits before anything loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.foundation.ingest.mapping import (
    ColumnMapping,
    Field,
    find_column,
    normal_name,
    presets,
)
from ccrm_core.foundation.ingest.names import TABLE_ALIASES, infer_table
from ccrm_core.foundation.ingest.report import IngestError
from ccrm_core.foundation.ingest.transform import FileSample, parse_amounts, parse_dates

# contract column -> header names that mean it (compared as mapping.normal_name)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "source_id": (
        "source id", "customer id", "customerid", "customer number", "customer no", "client id",
        "contact id", "contactid", "member id", "user id", "kunden id", "kundennummer", "kunden nr",
        "kundennr", "id client", "numero client", "identifiant client", "id cliente",
        "numero de cliente", "klantnummer", "klant id", "klantid", "relatienummer",
    ),
    "source_system": ("source system", "quellsystem", "systeme source", "sistema origen", "bronsysteem"),
    "first_name": (
        "first name", "firstname", "given name", "forename", "vorname", "prenom", "nombre",
        "voornaam", "nome",
    ),
    "last_name": (
        "last name", "lastname", "surname", "family name", "nachname", "familienname", "nom",
        "nom de famille", "apellido", "apellidos", "achternaam", "cognome",
    ),
    "email": (
        "email", "e mail", "email address", "e mail address", "mail", "e mail adresse",
        "emailadresse", "courriel", "adresse e mail", "adresse mail", "correo",
        "correo electronico", "e mailadres", "emailadres",
    ),
    "phone": (
        "phone", "phone number", "telephone", "tel", "mobile", "mobile phone", "cell", "telefon",
        "telefonnummer", "handy", "mobil", "portable", "telephone portable", "telefono", "movil",
        "telefoon", "telefoonnummer", "mobiel",
    ),
    "address_line": (
        "address", "address line", "address1", "address 1", "street", "street address",
        "adresse", "strasse", "anschrift", "direccion", "calle", "adres", "straat",
    ),
    "city": ("city", "town", "ort", "stadt", "ville", "ciudad", "localidad", "plaats", "woonplaats"),
    "region": (
        "region", "state", "province", "state province", "province code", "bundesland",
        "provincia", "estado", "provincie", "departement",
    ),
    "postal_code": (
        "postal code", "zip", "zip code", "postcode", "post code", "plz", "postleitzahl",
        "code postal", "codigo postal", "cp",
    ),
    "country": ("country", "country code", "land", "pays", "pais", "landcode"),
    "birth_date": (
        "birth date", "birthdate", "date of birth", "dob", "birthday", "geburtsdatum",
        "geburtstag", "date de naissance", "fecha de nacimiento", "geboortedatum",
    ),
    "created_at": (
        "created", "created at", "created date", "creation date", "signup date",
        "registration date", "erstellt", "erstellt am", "angelegt am", "date de creation",
        "fecha de creacion", "fecha alta", "aangemaakt", "aanmaakdatum",
    ),
    "updated_at": (
        "updated", "updated at", "last modified", "last modified date", "modified", "geandert",
        "geandert am", "aktualisiert", "date de modification", "fecha de modificacion",
        "gewijzigd",
    ),
    "order_id": (
        "order id", "order number", "order no", "order", "order nr", "bestellnummer",
        "bestell nr", "bestellung", "auftragsnummer", "numero de commande", "commande",
        "numero de pedido", "pedido", "id pedido", "bestelnummer", "ordernummer",
        "invoice number", "rechnungsnummer", "transaction id",
    ),
    "ts": (
        "timestamp", "date", "datetime", "time", "order date", "event time", "activity date",
        "occurred at", "bestelldatum", "datum", "zeitpunkt", "date de commande", "fecha",
        "fecha de pedido", "besteldatum", "orderdatum", "created at",
    ),
    "revenue": (
        "revenue", "total", "amount", "order total", "total price", "sales", "umsatz", "betrag",
        "gesamtbetrag", "summe", "montant", "montant total", "total ttc", "chiffre d affaires",
        "importe", "total pedido", "ventas", "bedrag", "totaal", "omzet",
    ),
    "channel": ("channel", "kanal", "canal", "kanaal", "sales channel", "vertriebskanal"),
    "category": (
        "category", "kategorie", "categorie", "categoria", "product category", "warengruppe",
        "product type",
    ),
    "event_id": ("event id", "activity id", "activityid", "ereignis id", "id evenement"),
    "event_type": (
        "event type", "event", "activity type", "activitytype", "action", "ereignistyp", "aktion",
        "type d evenement", "tipo de evento", "accion", "gebeurtenis",
    ),
    "anonymous_id": ("anonymous id", "cookie id", "device id", "visitor id", "cookie"),
    "campaign_id": (
        "campaign id", "campaignid", "campaign", "kampagne", "kampagnen id", "campagne",
        "id campagne", "campana", "id campana", "campagne id", "utm campaign",
    ),
    "value": ("value", "wert", "valeur", "valor", "waarde"),
    "date": ("date", "day", "tag", "datum", "jour", "fecha", "dia", "dag", "reporting starts", "week"),
    "spend": (
        "spend", "cost", "amount spent", "kosten", "ausgaben", "cout", "couts", "depenses",
        "coste", "gasto", "gastos", "uitgaven",
    ),
    "impressions": ("impressions", "impr", "impressionen", "impresiones", "vertoningen"),
    "status": ("status", "consent", "opt in", "einwilligung", "consentement", "consentimiento", "toestemming"),
    "name": ("campaign name", "name", "kampagnenname", "nom de campagne", "nombre de campana"),
    "offer": ("offer", "angebot", "offre", "oferta", "aanbod"),
    "start_date": ("start date", "start", "startdatum", "date de debut", "fecha de inicio"),
    "end_date": ("end date", "end", "enddatum", "date de fin", "fecha de fin", "einddatum"),
    "experiment_id": ("experiment id", "experiment", "test id", "test"),
    "arm": ("arm", "variant", "group", "variante", "gruppe", "groupe", "grupo", "groep"),
    "assigned_at": ("assigned at", "assigned", "assignment date", "zugewiesen"),
    "purpose": ("purpose", "zweck", "finalite", "finalidad", "doel"),
}  # fmt: skip
FULL_NAME = (
    "name", "full name", "customer name", "billing name", "contact name", "nom complet",
    "vollstandiger name", "kundenname", "nombre completo", "volledige naam", "naam",
)  # fmt: skip
TIME_NAMES = ("time", "uhrzeit", "zeit", "heure", "hora", "tijd")
# words in a file name that name the system that exported it (the constant source_system);
# any other file gets "import", so a shop's customers and orders files still link
_SYSTEM_WORDS = {
    "shopify", "woocommerce", "magento", "shopware", "bigcommerce", "salesforce", "hubspot",
    "dynamics", "pipedrive", "zoho", "mailchimp", "klaviyo", "eloqua", "marketo", "braze",
    "brevo", "sendinblue", "stripe", "square", "lightspeed",
}  # fmt: skip
_CHANNEL_WORDS = {
    "google": "paid_search", "adwords": "paid_search", "bing": "paid_search",
    "meta": "social", "facebook": "social", "instagram": "social", "tiktok": "social",
    "linkedin": "social", "email": "email", "newsletter": "email", "sms": "sms",
}  # fmt: skip

_EMAIL = r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}"
_PHONE = r"\+?[\d\s().\-/]{7,20}"
_ENOUGH = 0.8  # share of filled values that must look like a kind for the column to be that kind


@dataclass
class ColumnProfile:
    """What a file column's values look like: kind ('email', 'phone', 'date', 'datetime',
    'amount', 'id', 'text', 'empty'), and for dates and amounts the order or mark they read in."""

    kind: str
    filled: float  # share of sample values that are not blank
    date_order: str | None = None
    decimal: str | None = None
    evidence: str = ""


@dataclass
class Proposal:
    """A proposed mapping and why: per contract column the score of its choice, notes for the
    user (date order evidence, decimal mark, constants guessed), and where it came from."""

    mapping: ColumnMapping
    origin: str  # 'preset', 'saved' or 'proposed'
    notes: list[str] = field(default_factory=list)
    table_scores: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# values


def profile_column(values: list[str]) -> ColumnProfile:
    """What a column's sample values look like (see ColumnProfile)."""
    s = pd.Series([v.strip() for v in values], dtype=object)
    filled = s[s.ne("")]
    share = len(filled) / max(len(s), 1)
    if filled.empty:
        return ColumnProfile("empty", 0.0)

    def most(mask: pd.Series) -> bool:
        return bool(mask.mean() >= _ENOUGH)

    if most(filled.str.fullmatch(_EMAIL)):
        return ColumnProfile("email", share)
    order, evidence = detect_date_order(filled)
    dates = parse_dates(filled, order)
    if most(dates.notna()) and not most(filled.str.fullmatch(r"\d{1,7}")):
        timed = bool((dates.dropna().dt.floor("D") != dates.dropna()).any())
        return ColumnProfile("datetime" if timed else "date", share, order, evidence=evidence)
    digits = filled.str.count(r"\d")
    if most(filled.str.fullmatch(_PHONE) & digits.between(7, 15)) and most(
        filled.str.contains(r"[\s+()\-/]")
    ):
        return ColumnProfile("phone", share)
    decimal, evidence = detect_decimal(filled)
    if most(parse_amounts(filled, decimal).notna()):
        whole = filled.str.fullmatch(r"\d+")
        if most(whole) and filled.nunique() == len(filled) and len(filled) > 3:
            return ColumnProfile("id", share)
        return ColumnProfile("amount", share, decimal=decimal, evidence=evidence)
    if filled.nunique() == len(filled) and most(filled.str.contains(r"\d")):
        return ColumnProfile("id", share)
    return ColumnProfile("text", share)


def detect_date_order(values: pd.Series) -> tuple[str, str]:
    """('YMD' | 'DMY' | 'MDY', the evidence in words) from dates written with / . or -."""
    parts = values.str.extract(r"^\s*(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{2,4})")
    parts = parts.dropna().astype(int)
    if parts.empty or (parts[0] > 31).all():
        return "YMD", "dates are written year first"
    first_big = parts[parts[0] > 12]
    second_big = parts[parts[1] > 12]
    if len(first_big) and not len(second_big):
        example = values[first_big.index[0]]
        return "DMY", f"day first: {example.strip()!r} can only be day-month-year"
    if len(second_big) and not len(first_big):
        example = values[second_big.index[0]]
        return "MDY", f"month first: {example.strip()!r} can only be month-day-year"
    if values.str.contains(r"^\s*\d{1,2}\.\d{1,2}\.\d{2,4}", regex=True).any():
        return "DMY", "dates with dots are read day first (no value tells); please confirm"
    return "MDY", "no value tells day-first from month-first; month first assumed, please confirm"


def detect_decimal(values: pd.Series) -> tuple[str, str]:
    """('.' | ',', the evidence) from amounts whose last mark has one or two digits after it."""
    comma = values.str.contains(r",\d{1,2}\s*\D*$", regex=True).sum()
    dot = values.str.contains(r"\.\d{1,2}\s*\D*$", regex=True).sum()
    if comma > dot:
        return ",", "amounts have a decimal comma (1.234,50)"
    return ".", "amounts have a decimal point (1,234.50)" if dot else ""


# ---------------------------------------------------------------------------------------------
# names


def name_score(header_name: str, target: str) -> float:
    """How strongly a header name means a contract column: 1 the column's own name or an exact
    synonym, 0.7 a synonym as the name's first or last words, else 0."""
    name = normal_name(header_name)
    if not name or (target in ("first_name", "last_name") and name in FULL_NAME):
        return 0.0  # a full name is split, not taken for one part
    synonyms = (normal_name(target), *SYNONYMS.get(target, ()))
    if name in synonyms or name.replace(" ", "") in synonyms:
        return 1.0
    words = f" {name} "
    for syn in synonyms:
        if len(syn) >= 3 and (words.startswith(f" {syn} ") or words.endswith(f" {syn} ")):
            return 0.7
    return 0.0


_FITS = {
    "DATE": {"date", "datetime"},
    "TIMESTAMP": {"date", "datetime"},
    "DOUBLE": {"amount", "id"},
    "BIGINT": {"amount", "id"},
}


def value_fit(target: store.Column, profile: ColumnProfile) -> float:
    """1 when the values suit the contract column, 0.5 when they may, 0 when they cannot."""
    if profile.kind == "empty":
        return 0.5
    wanted = _FITS.get(target.type)
    if wanted is not None:
        return 1.0 if profile.kind in wanted else 0.0
    if target.name == "email":
        return 1.0 if profile.kind == "email" else 0.0
    if target.name == "phone":
        return 1.0 if profile.kind == "phone" else 0.2
    if profile.kind in ("date", "datetime", "amount") and target.name not in ("source_id",):
        return 0.2
    return 0.8


# ---------------------------------------------------------------------------------------------
# proposing


def propose(sample: FileSample, file_name: str, table: str | None = None) -> Proposal:
    """The best preset for the file's header, else a mapping proposed from names and values;
    `table` forces the table (a preset for another table is then not used)."""
    for p in presets():
        if (table is None or p.table == table) and _preset_fits(p, sample.header):
            notes = [f"the file looks like this export: {p.description} (preset {p.name})"]
            mapping = ColumnMapping(**{**p.__dict__, "header": tuple(sample.header)})
            return Proposal(mapping, "preset", notes)
    profiles = [profile_column([r[i] if i < len(r) else "" for r in sample.rows])
                for i in range(len(sample.header))]  # fmt: skip
    scores = {t: _table_score(t, sample.header, profiles, file_name) for t in store.TABLES}
    chosen = table or max(scores, key=lambda t: scores[t])
    mapping, notes = _propose_for_table(chosen, sample, profiles, file_name)
    return Proposal(mapping, "proposed", notes, scores)


def _preset_fits(p: ColumnMapping, header: list[str]) -> bool:
    """The file has every column the preset reads, and most of the preset's documented header."""
    if any(find_column(header, c) is None for c in p.file_columns()):
        return False
    known = [h for h in p.header if find_column(header, h) is not None]
    return len(known) >= 0.6 * len(p.header)


def _best_column(
    target: store.Column, header: list[str], profiles: list[ColumnProfile], taken: set[int]
) -> tuple[int | None, float]:
    best, score = None, 0.0
    for i, h in enumerate(header):
        if i in taken:
            continue
        by_name = name_score(h, target.name)
        if not by_name:
            continue
        s = 0.7 * by_name + 0.3 * value_fit(target, profiles[i])
        if value_fit(target, profiles[i]) == 0.0:
            s *= 0.3
        if s > score:
            best, score = i, s
    return best, score


def _table_score(
    table: str, header: list[str], profiles: list[ColumnProfile], file_name: str
) -> float:
    spec = store.TABLES[table]
    taken: set[int] = set()
    required = optional = 0.0
    for col in spec.columns:
        at, s = _best_column(col, header, profiles, taken)
        if at is not None:
            taken.add(at)
        if col.required:
            # a constant can stand for these; a missing key cannot
            required += max(s, 0.4 if col.name in ("source_system", "channel") else 0.0)
        else:
            optional += s
    score = required / max(len(spec.required_columns), 1) + 0.15 * optional / len(spec.columns)
    stem = normal_name(Path(file_name).stem)
    names = {table: table, **{a: t for a, t in TABLE_ALIASES.items() if t == table}}
    if any(n.replace("_", " ") in stem for n in names) or (table == "spend" and "ads" in stem):
        score += 0.2
    return round(score, 3)


def _propose_for_table(
    table: str, sample: FileSample, profiles: list[ColumnProfile], file_name: str
) -> tuple[ColumnMapping, list[str]]:
    spec = store.TABLES[table]
    header = sample.header
    taken: set[int] = set()
    columns: dict[str, Field] = {}
    notes: list[str] = []
    # strongest matches first, so a weak match cannot take a column a strong one needs
    candidates = []
    for col in spec.columns:
        at, s = _best_column(col, header, profiles, set())
        if at is not None and s >= 0.45:
            candidates.append((s, col, at))
    for s, col, at in sorted(candidates, key=lambda c: -c[0]):
        if col.name in columns:
            continue
        at, s = _best_column(col, header, profiles, taken)
        if at is None or s < 0.45:
            continue
        taken.add(at)
        columns[col.name] = Field((header[at],))
    _full_name(spec, header, profiles, taken, columns, notes)
    _date_and_time(spec, header, profiles, taken, columns, notes)
    _constants(spec, header, profiles, columns, notes, file_name)
    date_order, decimal = _orders(columns, header, profiles, spec, notes)
    ordered = {c: columns[c] for c in spec.column_names if c in columns}
    missing = [c for c in spec.required_columns if c not in ordered]
    if missing:
        notes.append(f"choose a file column or a constant for {', '.join(missing)}")
    name = f"{Path(file_name).stem[:40] or 'file'} to {table}"
    mapping = ColumnMapping(
        name=name,
        table=table,
        columns=ordered,
        header=tuple(header),
        date_order=date_order,
        decimal=decimal,
        delimiter=sample.delimiter if sample.kind == "csv" else None,
    )
    return mapping, notes


def _full_name(spec, header, profiles, taken, columns, notes) -> None:
    if "first_name" not in spec.column_names or "first_name" in columns or "last_name" in columns:
        return
    for i, h in enumerate(header):
        if i not in taken and normal_name(h) in FULL_NAME and profiles[i].kind == "text":
            columns["first_name"] = Field((h,), take="first_name")
            columns["last_name"] = Field((h,), take="last_name")
            taken.add(i)
            notes.append(f"{h!r} holds full names: split into first and last name")
            return


def _date_and_time(spec, header, profiles, taken, columns, notes) -> None:
    for col in spec.columns:
        f = columns.get(col.name)
        if col.type != "TIMESTAMP" or f is None or len(f.sources) != 1:
            continue
        at = header.index(f.sources[0])
        if profiles[at].kind != "date":
            continue
        for i, h in enumerate(header):
            if i not in taken and normal_name(h) in TIME_NAMES:
                columns[col.name] = Field((f.sources[0], h), how="join")
                taken.add(i)
                notes.append(f"{col.name}: date {f.sources[0]!r} and time {h!r} combined")
                return


def _constants(spec, header, profiles, columns, notes, file_name) -> None:
    words = [w for w in normal_name(Path(file_name).stem).split() if not w.isdigit()]
    if "source_system" in spec.column_names and "source_system" not in columns:
        system = next((w for w in words if w in _SYSTEM_WORDS), "import")
        columns["source_system"] = Field(constant=system)
        notes.append(
            f"source_system is the constant {system!r}: name the system the file comes from, "
            "the same for all its files"
        )
    if "source_id" in spec.column_names and "source_id" not in columns:
        email = next((h for h, p in zip(header, profiles, strict=True) if p.kind == "email"), None)
        if email is not None:
            columns["source_id"] = Field((email,), lower=True, hashed=True)
            notes.append(
                f"no customer id column: the e-mail {email!r} stands for it (lower-cased and "
                "hashed, so the id shows no address)"
            )
    if (
        "channel" in spec.column_names
        and "channel" not in columns
        and spec.column("channel").required
    ):
        channel = next((_CHANNEL_WORDS[w] for w in words if w in _CHANNEL_WORDS), None)
        if channel is not None:
            columns["channel"] = Field(constant=channel)
            notes.append(f"channel is the constant {channel!r} (from the file name); check it")


def _orders(columns, header, profiles, spec, notes) -> tuple[str, str]:
    date_order, decimal = "YMD", "."
    for col in spec.columns:
        f = columns.get(col.name)
        if f is None or not f.sources:
            continue
        p = profiles[header.index(f.sources[0])]
        if col.type in ("DATE", "TIMESTAMP") and p.date_order and date_order == "YMD":
            date_order = p.date_order
            if p.evidence:
                notes.append(f"dates: {p.evidence}")
        if col.type in ("DOUBLE", "BIGINT") and p.decimal == ",":
            decimal = ","
            notes.append(f"{col.name}: {p.evidence}")
    return date_order, decimal


def contract_table(header: list[str], file_name: str, table: str | None = None) -> str | None:
    """The raw table a file already in the contract's form holds (its header has the table's
    required columns by name; the table is `table`, else the one its file name points to);
    None when the file needs a mapping."""
    if table is None:
        try:
            table = infer_table(file_name)
        except IngestError:
            return None
    names = {h.strip().lower() for h in header}
    return table if all(c in names for c in store.TABLES[table].required_columns) else None
