"""A mapping as a table a person edits (one row per contract column) and back: what the Data
page shows in its mapping editor. Kept here, apart from the page, so a test can check that an
edit gives the mapping it should.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.foundation.ingest.mapping import ColumnMapping, Field, MappingError

# how a contract column is filled, in the user's words (editor value -> Field.how / Field.take)
HOW = {
    "copy": "as it is",
    "join": "joined with the more columns",
    "first_filled": "first filled of these columns",
    "first_name": "first name out of a full name",
    "last_name": "last name out of a full name",
    "sum_product": "column × the more column, summed per row key (e.g. quantity × price)",
    "constant": "the constant",
}
MORE_SEPARATOR = " | "  # between the further file columns in the 'more columns' cell
EDITOR_COLUMNS = [
    "column",
    "required",
    "file_column",
    "how",
    "more_columns",
    "constant",
    "lower",
    "hashed",
]


def mapping_rows(mapping: ColumnMapping) -> pd.DataFrame:
    """One row per contract column of the mapping's table: column, required, file_column (''
    when unmapped), how (a key of HOW), more_columns (further file columns, ' | ' between),
    constant, lower, hashed."""
    rows = []
    for col in store.TABLES[mapping.table].columns:
        f = mapping.columns.get(col.name)
        row = {"column": col.name, "required": col.required, "file_column": "", "how": "copy",
               "more_columns": "", "constant": "", "lower": False, "hashed": False}  # fmt: skip
        if f is not None:
            if f.constant is not None:
                row.update(how="constant", constant=f.constant)
            else:
                row["file_column"] = f.sources[0]
                row["more_columns"] = MORE_SEPARATOR.join(f.sources[1:])
                row["how"] = f.take or f.how
            row["lower"] = f.lower
            row["hashed"] = f.hashed
        rows.append(row)
    return pd.DataFrame(rows, columns=EDITOR_COLUMNS)


def mapping_from_rows(rows: pd.DataFrame, base: ColumnMapping, **options: object) -> ColumnMapping:
    """The mapping the edited `rows` say, with `base`'s name, header and options (changed by
    `options`, e.g. date_order='DMY'); value recodings and separators of `base` are kept where a
    row still reads the same file columns. MappingError naming the column for an unusable row
    or a required column left unmapped."""
    columns: dict[str, Field] = {}
    for row in rows.to_dict("records"):
        target = row["column"]
        how = row.get("how") or "copy"
        file_column = (row.get("file_column") or "").strip()
        more = [m.strip() for m in (row.get("more_columns") or "").split("|") if m.strip()]
        constant = (row.get("constant") or "").strip()
        if how == "constant" or (constant and not file_column):
            if not constant:
                raise MappingError(f"{target}: type the constant value, or choose a file column")
            columns[target] = Field(constant=constant, lower=bool(row.get("lower")))
            continue
        if not file_column:
            continue
        sources = (file_column, *more)
        kind = how if how in ("join", "first_filled", "sum_product") else "copy"
        if kind == "sum_product" and (len(sources) != 2 or not base.one_row_per):
            raise MappingError(
                f"{target}: a sum per row key needs one more column (e.g. the price) and a "
                "mapping with one_row_per (the column naming one record, e.g. the invoice)"
            )
        if kind == "copy" and more:
            kind = "join"
        take = how if how in ("first_name", "last_name") else None
        old = base.columns.get(target)
        keep = old is not None and old.sources == sources
        columns[target] = Field(
            sources,
            None,
            kind,
            take,
            bool(row.get("lower")),
            old.values if keep else (),
            old.separator if keep else " ",
            bool(row.get("hashed")),
            old.whole_number if keep else False,
        )
    spec = store.TABLES[base.table]
    missing = [c for c in spec.required_columns if c not in columns]
    if missing:
        raise MappingError(
            f"choose a file column or a constant for {', '.join(missing)} (required in "
            f"{base.table})"
        )
    ordered = {c: columns[c] for c in spec.column_names if c in columns}
    return dataclasses.replace(base, columns=ordered, **options)
