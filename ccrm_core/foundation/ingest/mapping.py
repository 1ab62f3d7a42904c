"""Column mappings: how the columns of a file as a shop, CRM or ad platform exports it fill the
columns of one raw table of the data contract, written as a small TOML file.

```toml
name = "shopify_orders"           # how the mapping is saved and chosen (one printable line)
table = "orders"                  # the raw table it loads
source = "https://help.shopify.com/..."   # where its columns are documented (presets)
header = ["Name", "Email", ...]   # the header it was made for: files with it reuse the mapping
date_order = "YMD"                # how dates with slashes or dots are read: YMD, DMY or MDY
decimal = "."                     # the decimal mark of amounts: "." or ","
one_row_per = "Name"              # rows repeating this column's value fold into the first
skip_rows_starting = ["Total"]    # rows whose first field starts so are summaries, skipped
skip_rows_where_empty = ["CustomerID"]   # rows without a value there are skipped and counted

[cancellations]                   # rows that cancel a purchase: skipped and counted
column = "InvoiceNo"              # ... whose value here starts with one of `starting`
starting = ["C"]
negative = ["Quantity"]           # ... or whose amount in one of these columns is below zero

[columns]
order_id = "Name"                                 # a file column, as its header names it
revenue = "Total"                                 # amounts: currency signs, 1,234.50, 1.234,50
source_system = { constant = "shopify" }          # the same value on every row
source_id = { first_filled = ["Email", "Phone"], lower = true, hashed = true }  # SHA-256
source_id = { column = "CustomerID", whole_number = true }   # '17850.0' -> '17850'
first_name = { column = "Billing Name", take = "first_name" }   # or "last_name"
ts = { columns = ["Date", "Time"] }               # joined (date + time; `separator`: " ")
revenue = { sum_of_product = ["Quantity", "UnitPrice"] }   # per one_row_per key: sum of qty x price
event_type = { column = "Type", values = { EmailOpen = "open" } }  # recode values
```

File column names match in any case and spacing; a name ending in `*` matches any header that
starts with the rest (`Amount spent*` for `Amount spent (EUR)`). The mapping is applied before
the file is validated and loaded (`transform`), so every rule of ingest still holds.

Skipped rows are never silently lost: each is counted under one reason (the first that holds:
summary row, cancellation, an empty `skip_rows_where_empty` column), and the ingest report says
"N rows skipped: cancellation" with the first lines. Cancellations are dropped rather than loaded
as negative orders: an order is one purchase, and a negative one would count as a purchase in
RFM frequency and break the Gamma-Gamma spend model (which needs positive values); revenue is
therefore what was bought, before cancellations. Skipped rows are not rows read, so they never
count against the reject limit. Only rows with the header's number of fields are skipped as a
cancellation or for an empty column; a malformed row is rejected as such.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

from ccrm_core.foundation import store, validation
from ccrm_core.foundation.ingest.report import IngestError

NAME_MAX = 60  # characters in a mapping's name
CONSTANT_MAX = 80  # characters in a constant value
DATE_ORDERS = ("YMD", "DMY", "MDY")
DECIMALS = (".", ",")
DELIMITERS = (",", ";", "\t", "|")
TAKES = ("first_name", "last_name")
_TOP_KEYS = {
    "name",
    "table",
    "description",
    "source",
    "header",
    "date_order",
    "decimal",
    "delimiter",
    "one_row_per",
    "skip_rows_starting",
    "skip_rows_where_empty",
    "cancellations",
    "columns",
}
_FIELD_KEYS = {
    "column",
    "columns",
    "first_filled",
    "constant",
    "take",
    "lower",
    "values",
    "separator",
    "hashed",
    "sum_of_product",
    "whole_number",
}
_CANCELLATION_KEYS = {"column", "starting", "negative"}
SKIP_SUMMARY = "summary row"  # the reasons rows are skipped, as reports name them
SKIP_CANCELLATION = "cancellation"


def skip_empty_reason(column: str) -> str:
    """The reason a row without a value in file column `column` is skipped under."""
    return f"{column} empty"


class MappingError(IngestError):
    """A mapping that cannot be used: the message names the mapping, the key and what to do."""


@dataclass(frozen=True)
class Field:
    """How one contract column is filled: from one file column, several (joined with a space, or
    the first that is filled), or a constant; optionally the first or last name out of a full
    name, lower-cased, or recoded value by value."""

    sources: tuple[str, ...] = ()
    constant: str | None = None
    how: str = "copy"  # copy | join | first_filled | sum_product (of two columns, per key)
    take: str | None = None  # first_name | last_name (from a full name)
    lower: bool = False
    values: tuple[tuple[str, str], ...] = ()
    separator: str = " "  # between joined columns
    hashed: bool = False  # SHA-256 of the value (a key made of an e-mail shows no address)
    whole_number: bool = False  # an id saved as a number: '17850.0' -> '17850'

    def describe(self) -> str:
        """The file column(s) in the user's words, e.g. 'Created at', 'Date + Time'."""
        if self.constant is not None:
            return f"the constant {validation.quoted(self.constant)}"
        if self.how == "sum_product":
            a, b = (validation.quoted(s) for s in self.sources)
            return f"columns {a} × {b}, summed per row key"
        joiner = " + " if self.how == "join" else " or "
        text = joiner.join(validation.quoted(s) for s in self.sources)
        text = ("columns " if len(self.sources) > 1 else "column ") + text
        if self.take:
            text += f" ({self.take.replace('_', ' ')})"
        return text


@dataclass(frozen=True)
class Cancellations:
    """Which rows cancel a purchase (skipped and counted, never loaded): those whose `column`
    starts with one of `starting` (case ignored), or with an amount below zero in one of the
    `negative` columns."""

    column: str | None = None
    starting: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()

    def file_columns(self) -> set[str]:
        return ({self.column} if self.column else set()) | set(self.negative)


@dataclass(frozen=True)
class ColumnMapping:
    """A named mapping of a file's columns onto one raw table (see the module notes)."""

    name: str
    table: str
    columns: dict[str, Field]
    header: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    date_order: str = "YMD"
    decimal: str = "."
    delimiter: str | None = None  # None: detected from the header line
    one_row_per: str | None = None
    skip_rows_starting: tuple[str, ...] = ()
    skip_rows_where_empty: tuple[str, ...] = ()  # file columns a row must fill to be loaded
    cancellations: Cancellations | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def fingerprint(self) -> str | None:
        return header_fingerprint(self.header) if self.header else None

    def source_columns(self) -> dict[str, str]:
        """Contract column -> the file column(s) it comes from, as rejects name them."""
        return {target: f.describe() for target, f in self.columns.items()}

    def file_columns(self) -> set[str]:
        """Every file column the mapping reads (as written in the mapping)."""
        names = {s for f in self.columns.values() for s in f.sources}
        if self.one_row_per:
            names.add(self.one_row_per)
        names |= set(self.skip_rows_where_empty)
        if self.cancellations is not None:
            names |= self.cancellations.file_columns()
        return names


def normal_name(name: str) -> str:
    """A header name as names are compared: case, accents, spacing and punctuation ignored
    ('E-Mail' and 'e mail' compare equal; 'Prénom' and 'prenom' too)."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w*]+|_", " ", text).split())


def header_fingerprint(header: Sequence[str]) -> str:
    """SHA-256 of a header's names (compared as `normal_name`, in any order): files of the same
    shape share it, so a saved mapping is found for the next file like it."""
    names = sorted(normal_name(n) for n in header)
    return hashlib.sha256("\x1f".join(names).encode("utf-8")).hexdigest()


def find_column(header: Sequence[str], name: str) -> int | None:
    """Position of `name` in `header` (compared as `normal_name`; a trailing '*' matches any
    header starting with the rest), or None."""
    want = normal_name(name)
    normal = [normal_name(h) for h in header]
    if want.endswith("*"):
        stem = want[:-1].strip()
        return next((i for i, h in enumerate(normal) if h.startswith(stem)), None)
    return next((i for i, h in enumerate(normal) if h == want), None)


# ---------------------------------------------------------------------------------------------
# reading and writing TOML


def parse_mapping(text: str, where: str = "mapping") -> ColumnMapping:
    """A mapping from its TOML text; MappingError naming `where` (a file name) and the key for
    anything unknown, missing or of the wrong type."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{where}: is not valid TOML ({exc}); fix the file") from None
    return mapping_from_dict(data, where)


def mapping_from_dict(data: dict, where: str = "mapping") -> ColumnMapping:
    """A mapping from parsed TOML (see `parse_mapping`)."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise MappingError(
            f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(sorted(_TOP_KEYS))}"
        )
    name = _text(data, "name", where)
    name = validation.clean_name(name, f"{where}: name", NAME_MAX, MappingError)
    table = _text(data, "table", where)
    if table not in store.TABLES:
        raise MappingError(
            f"{where}: table {validation.quoted(table)} is not a raw table; choose one of "
            f"{', '.join(store.TABLES)}"
        )
    spec = store.TABLES[table]
    options = {
        "date_order": _choice(data, "date_order", DATE_ORDERS, "YMD", where),
        "decimal": _choice(data, "decimal", DECIMALS, ".", where),
        "delimiter": _choice(data, "delimiter", DELIMITERS, None, where),
    }
    raw_columns = data.get("columns")
    if not isinstance(raw_columns, dict) or not raw_columns:
        raise MappingError(f"{where}: [columns] is missing; map at least the required columns")
    columns = {}
    for target, value in raw_columns.items():
        if target not in spec.column_names:
            raise MappingError(
                f"{where}: columns.{target} is not a column of {table}; its columns are "
                f"{', '.join(spec.column_names)}"
            )
        columns[target] = _field(value, f"{where}: columns.{target}")
    missing = [c for c in spec.required_columns if c not in columns]
    if missing:
        raise MappingError(
            f"{where}: table {table} needs {', '.join(missing)}; map them to a file column or a "
            "constant"
        )
    header = data.get("header", [])
    if not isinstance(header, list) or not all(isinstance(h, str) for h in header):
        raise MappingError(f"{where}: header must be a list of column names")
    skip = data.get("skip_rows_starting", [])
    if not isinstance(skip, list) or not all(isinstance(s, str) and s.strip() for s in skip):
        raise MappingError(f"{where}: skip_rows_starting must be a list of non-empty texts")
    one_row_per = data.get("one_row_per")
    if one_row_per is not None and not (isinstance(one_row_per, str) and one_row_per.strip()):
        raise MappingError(f"{where}: one_row_per must be a file column name")
    for target, f in columns.items():
        if f.how != "sum_product":
            continue
        if not one_row_per:
            raise MappingError(
                f"{where}: columns.{target} sums per row key; set one_row_per to the column "
                "that names one record (e.g. the invoice number)"
            )
        if spec.column(target).type not in ("DOUBLE", "BIGINT"):
            raise MappingError(f"{where}: columns.{target} is not a number; sum_of_product fills "
                               "only number columns")  # fmt: skip
    empty = data.get("skip_rows_where_empty", [])
    if not isinstance(empty, list) or not all(isinstance(s, str) and s.strip() for s in empty):
        raise MappingError(f"{where}: skip_rows_where_empty must be a list of file column names")
    return ColumnMapping(
        name=name,
        table=table,
        columns=columns,
        header=tuple(header),
        description=_text(data, "description", where, ""),
        source=_text(data, "source", where, ""),
        one_row_per=one_row_per,
        skip_rows_starting=tuple(skip),
        skip_rows_where_empty=tuple(empty),
        cancellations=_cancellations(data.get("cancellations"), f"{where}: cancellations"),
        **options,
    )


def _cancellations(value: object, where: str) -> Cancellations | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MappingError(f"{where}: write a table such as {{ column = ..., starting = [...] }}")
    unknown = sorted(set(value) - _CANCELLATION_KEYS)
    if unknown:
        raise MappingError(
            f"{where}: unknown key {unknown[0]!r}; use {', '.join(sorted(_CANCELLATION_KEYS))}"
        )
    column = value.get("column")
    if column is not None:
        column = _source(column, where)
    starting = value.get("starting", [])
    if not isinstance(starting, list) or not all(
        isinstance(s, str) and s.strip() for s in starting
    ):
        raise MappingError(f"{where}.starting: write a list of non-empty texts")
    if bool(column) != bool(starting):
        raise MappingError(f"{where}: give column and starting together")
    negative = value.get("negative", [])
    if not isinstance(negative, list):
        raise MappingError(f"{where}.negative: write a list of file column names")
    negative = [_source(n, where) for n in negative]
    if not column and not negative:
        raise MappingError(f"{where}: give column and starting, or negative, or both")
    return Cancellations(column, tuple(starting), tuple(negative))


def _text(data: dict, key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise MappingError(f"{where}: {key} must be text" + ("" if key in data else " (missing)"))
    return value


def _choice(data: dict, key: str, choices: tuple, default, where: str):
    value = data.get(key, default)
    if value is not default and value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise MappingError(f"{where}: {key} is {validation.quoted(value)}; use one of {shown}")
    return value


def _field(value: object, where: str) -> Field:
    if isinstance(value, str):
        value = {"column": value}
    if not isinstance(value, dict):
        raise MappingError(f"{where}: write a column name, or a table such as {{ column = ... }}")
    unknown = sorted(set(value) - _FIELD_KEYS)
    if unknown:
        raise MappingError(
            f"{where}: unknown key {unknown[0]!r}; use {', '.join(sorted(_FIELD_KEYS))}"
        )
    given = [
        k for k in ("column", "columns", "first_filled", "constant", "sum_of_product") if k in value
    ]
    if len(given) != 1:
        raise MappingError(
            f"{where}: give exactly one of column, columns, first_filled, sum_of_product or "
            "constant"
        )
    kind = given[0]
    constant, sources, how = None, (), "copy"
    if kind == "constant":
        constant = validation.clean_name(
            value["constant"], f"{where}.constant", CONSTANT_MAX, MappingError
        )
    elif kind == "column":
        sources = (_source(value["column"], where),)
    else:
        names = value[kind]
        if not isinstance(names, list) or not names:
            raise MappingError(f"{where}.{kind}: write a list of file column names")
        sources = tuple(_source(n, where) for n in names)
        how = {"columns": "join", "first_filled": "first_filled"}.get(kind, "sum_product")
        if how == "sum_product" and len(sources) != 2:
            raise MappingError(f"{where}.sum_of_product: write two file columns, e.g. "
                               '["Quantity", "UnitPrice"]')  # fmt: skip
    take = value.get("take")
    if take is not None and take not in TAKES:
        raise MappingError(
            f"{where}.take is {validation.quoted(take)}; use first_name or last_name"
        )
    lower = value.get("lower", False)
    if not isinstance(lower, bool):
        raise MappingError(f"{where}.lower must be true or false")
    values = value.get("values", {})
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise MappingError(f"{where}.values: write a table of file value = contract value")
    separator = value.get("separator", " ")
    if not isinstance(separator, str) or len(separator) > 5 or not separator.isprintable():
        raise MappingError(f'{where}.separator: write up to 5 printable characters, e.g. ", "')
    hashed = value.get("hashed", False)
    if not isinstance(hashed, bool):
        raise MappingError(f"{where}.hashed must be true or false")
    whole_number = value.get("whole_number", False)
    if not isinstance(whole_number, bool):
        raise MappingError(f"{where}.whole_number must be true or false")
    return Field(
        sources, constant, how, take, lower, tuple(values.items()), separator, hashed, whole_number
    )


def _source(name: object, where: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise MappingError(f"{where}: a file column name must be non-empty text")
    return name


def mapping_to_toml(mapping: ColumnMapping) -> str:
    """The mapping as a TOML file (`parse_mapping` reads it back to an equal mapping)."""
    lines = [f"name = {_toml_str(mapping.name)}", f"table = {_toml_str(mapping.table)}"]
    if mapping.description:
        lines.append(f"description = {_toml_str(mapping.description)}")
    if mapping.source:
        lines.append(f"source = {_toml_str(mapping.source)}")
    if mapping.header:
        lines.append(f"header = {_toml_list(mapping.header)}")
    lines.append(f"date_order = {_toml_str(mapping.date_order)}")
    lines.append(f"decimal = {_toml_str(mapping.decimal)}")
    if mapping.delimiter is not None:
        lines.append(f"delimiter = {_toml_str(mapping.delimiter)}")
    if mapping.one_row_per:
        lines.append(f"one_row_per = {_toml_str(mapping.one_row_per)}")
    if mapping.skip_rows_starting:
        lines.append(f"skip_rows_starting = {_toml_list(mapping.skip_rows_starting)}")
    if mapping.skip_rows_where_empty:
        lines.append(f"skip_rows_where_empty = {_toml_list(mapping.skip_rows_where_empty)}")
    lines += ["", "[columns]"]
    for target, f in mapping.columns.items():
        lines.append(f"{target} = {_toml_field(f)}")
    c = mapping.cancellations
    if c is not None:
        lines += ["", "[cancellations]"]
        if c.column:
            lines.append(f"column = {_toml_str(c.column)}")
            lines.append(f"starting = {_toml_list(c.starting)}")
        if c.negative:
            lines.append(f"negative = {_toml_list(c.negative)}")
    return "\n".join(lines) + "\n"


def _toml_field(f: Field) -> str:
    if f.constant is not None:
        parts = [f"constant = {_toml_str(f.constant)}"]
    elif f.how == "copy":
        parts = [f"column = {_toml_str(f.sources[0])}"]
    else:
        key = {"join": "columns", "first_filled": "first_filled"}.get(f.how, "sum_of_product")
        parts = [f"{key} = {_toml_list(f.sources)}"]
    if f.take:
        parts.append(f"take = {_toml_str(f.take)}")
    if f.lower:
        parts.append("lower = true")
    if f.values:
        pairs = ", ".join(f"{_toml_str(k)} = {_toml_str(v)}" for k, v in f.values)
        parts.append(f"values = {{ {pairs} }}")
    if f.separator != " ":
        parts.append(f"separator = {_toml_str(f.separator)}")
    if f.hashed:
        parts.append("hashed = true")
    if f.whole_number:
        parts.append("whole_number = true")
    if len(parts) == 1 and f.how == "copy" and f.constant is None:
        return _toml_str(f.sources[0])
    return "{ " + ", ".join(parts) + " }"


def _toml_str(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters (DEL too) escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_toml_str(i) for i in items) + "]"


# ---------------------------------------------------------------------------------------------
# presets


def preset_names() -> list[str]:
    """The names of the mappings shipped with ccrm (`ccrm_core/foundation/ingest/presets/`)."""
    folder = resources.files("ccrm_core.foundation.ingest").joinpath("presets")
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def preset(name: str) -> ColumnMapping:
    """A shipped mapping by name; MappingError listing the presets for an unknown one."""
    if name not in preset_names():
        raise MappingError(
            f"no preset {validation.quoted(name)}; the presets are {', '.join(preset_names())}"
        )
    folder = resources.files("ccrm_core.foundation.ingest").joinpath("presets")
    return parse_mapping(folder.joinpath(f"{name}.toml").read_text("utf-8"), f"{name}.toml")


def presets() -> list[ColumnMapping]:
    """Every shipped mapping."""
    return [preset(n) for n in preset_names()]


def preset_example(name: str):
    """The example file of a preset (a Traversable: `.read_bytes()`, `.name`)."""
    folder = resources.files("ccrm_core.foundation.ingest").joinpath("presets", "examples")
    return next(p for p in folder.iterdir() if p.name.startswith(f"{name}."))
