"""Every table the app shows goes through `show_table`: plain-language headers, money in the
configured currency, counts with thousands separators, shares as percentages, dates without a
time of midnight and "—" for a missing value (ccrm_core.foundation.formatting).

A page may still pass its own `column_config` for a column (a progress bar, a help text, a
narrower format): its settings win, and the column keeps the plain label unless the page gives
one. A missing value shows as "—" (the grid's placeholder), numbers stay numbers so a column
still sorts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from ccrm_core.foundation import formatting

MISSING = formatting.MISSING


def money_format(unit: formatting.Currency | None = None) -> str:
    """The grid's printf format for money: '€%,.2f'."""
    unit = unit or formatting.currency()
    return f"{unit.symbol}%,.{unit.decimals}f"


def _number_config(kind: formatting.Kind, label: str) -> dict[str, Any]:
    if kind == "money":
        return st.column_config.NumberColumn(label, format=money_format())
    if kind == "percent":
        return st.column_config.NumberColumn(label, format="percent")
    if kind == "count":
        return st.column_config.NumberColumn(label, format="%,.0f")
    return st.column_config.NumberColumn(label, format="%,.2f")


def table_config(
    frame: pd.DataFrame, column_config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """st.dataframe's column_config for `frame`: see the module docstring."""
    given = dict(column_config or {})
    config: dict[str, Any] = {}
    for name in frame.columns:
        series = frame[name]
        kind = formatting.column_kind(name, series)
        own = given.pop(str(name), None)
        if isinstance(own, str):  # a label only
            own = {"label": own}
        label = (own or {}).get("label") or formatting.label(name)
        if kind == "text":
            base = st.column_config.Column(label)
        elif kind == "date":
            base = st.column_config.DateColumn(label, format="YYYY-MM-DD")
        elif kind == "datetime":
            base = st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm")
        else:
            base = _number_config(kind, label)
        merged = {**base, **(own or {}), "label": label}
        type_config = merged.get("type_config") or {}
        if kind == "money" and type_config.get("type") == "number":  # always in the currency
            merged["type_config"] = {**type_config, "format": money_format()}
        elif type_config and not type_config.get("format") and base.get("type_config"):
            merged["type_config"] = {**type_config, "format": base["type_config"].get("format")}
        config[str(name)] = merged
    config.update(given)  # settings for columns the frame does not have (e.g. the index)
    return config


_MISSING_WORDS = frozenset({"None", "nan", "NaN", "NaT", "<NA>"})


def _without_missing_words(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with text cells that spell a missing value ("None", "nan": a value that went
    through str()) made missing, so the grid shows "—" there too."""
    spelled = {
        c: frame[c].map(lambda v: isinstance(v, str) and v in _MISSING_WORDS)
        for c in frame.columns
        if frame[c].dtype == object
    }
    spelled = {c: hit for c, hit in spelled.items() if hit.any()}
    if not spelled:
        return frame
    out = frame.copy()
    for c, hit in spelled.items():
        out[c] = out[c].mask(hit, None)
    return out


def show_table(
    frame: pd.DataFrame, column_config: Mapping[str, Any] | None = None, **kwargs: Any
) -> Any:
    """st.dataframe over `frame` with the app's formats and labels (`table_config`) and "—" for
    a missing value; keyword arguments pass through (hide_index defaults to True, width to
    "stretch")."""
    config = table_config(frame, column_config)
    frame = _without_missing_words(frame)
    kwargs.setdefault("placeholder", MISSING)
    kwargs.setdefault("hide_index", True)
    kwargs.setdefault("width", "stretch")
    return st.dataframe(frame, column_config=config, **kwargs)
