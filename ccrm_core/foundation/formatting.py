"""One formatting layer for what the app shows: money, counts, percentages, dates, missing values
and plain-language column labels (no Streamlit here; `ccrm_ui.tables` turns this into table
settings).

- Money carries the currency set by `CCRM_CURRENCY` (an ISO 4217 code such as EUR, USD, GBP;
  unset: no symbol, as the data holds plain currency units), thousands separators and two
  decimals (none for currencies without minor units, e.g. JPY). An unknown code is named in
  `currency_problem()` and money is shown without a symbol.
- Counts have thousands separators and no decimals; percentages come from shares (0..1).
- A missing value (None, NaN, NaT) shows as `MISSING` ("—"), never as "None" or "nan".
- Dates show without a time of day when the time is midnight.
- Column labels come from `LABELS`, else from the name made readable: "first_order_at" ->
  "First order at", "clv" -> "CLV".
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import pandas as pd

MISSING = "—"
CURRENCY_VARIABLE = "CCRM_CURRENCY"


@dataclass(frozen=True)
class Currency:
    code: str  # ISO 4217, "" for plain currency units
    symbol: str  # written before the amount, "" for none
    decimals: int = 2


# Symbols written before the amount; a code with an ASCII symbol keeps a space ("CHF 12.00").
_CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("EUR", "€"),
        Currency("USD", "$"),
        Currency("GBP", "£"),
        Currency("JPY", "¥", 0),
        Currency("CNY", "CN¥"),
        Currency("INR", "₹"),
        Currency("CHF", "CHF "),
        Currency("CAD", "CA$"),
        Currency("AUD", "A$"),
        Currency("NZD", "NZ$"),
        Currency("SEK", "SEK "),
        Currency("NOK", "NOK "),
        Currency("DKK", "DKK "),
        Currency("PLN", "PLN "),
        Currency("CZK", "CZK "),
        Currency("BRL", "R$"),
        Currency("MXN", "MX$"),
        Currency("ZAR", "ZAR "),
        Currency("KRW", "₩", 0),
        Currency("SGD", "SGD "),
        Currency("HKD", "HK$"),
    )
}
NO_CURRENCY = Currency("", "")


def currency_setting(value: str | None) -> tuple[Currency, str | None]:
    """(currency, problem) for a `CCRM_CURRENCY` value: unset or empty -> no symbol; a known
    ISO code (any case, surrounding spaces ignored) -> its symbol; anything else -> no symbol
    and a message naming the variable, the value and the codes it knows."""
    code = (value or "").strip().upper()
    if not code:
        return NO_CURRENCY, None
    if code in _CURRENCIES:
        return _CURRENCIES[code], None
    shown = value if len(value or "") <= 20 else (value or "")[:19] + "…"
    return NO_CURRENCY, (
        f"{CURRENCY_VARIABLE}={shown!r} is not a currency code this app knows "
        f"({', '.join(sorted(_CURRENCIES))}); money is shown without a currency symbol"
    )


def currency() -> Currency:
    """The currency money is shown in, from the environment (see `currency_setting`)."""
    return currency_setting(os.environ.get(CURRENCY_VARIABLE))[0]


def currency_problem() -> str | None:
    """Why `CCRM_CURRENCY` could not be used, or None."""
    return currency_setting(os.environ.get(CURRENCY_VARIABLE))[1]


# ---------------------------------------------------------------------------------------------
# Values


def is_missing(value: object) -> bool:
    """None, NaN, NaT or pd.NA."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # list-like values are not missing
        return False


def _compact(value: float) -> str | None:
    a = abs(value)
    if a >= 1e9:
        return f"{value / 1e9:,.2f}B"
    if a >= 1e6:
        return f"{value / 1e6:,.2f}M"
    if a >= 1e4:
        return f"{value / 1e3:,.1f}k"
    return None


def number(value: object, decimals: int = 0, compact: bool = False) -> str:
    """A count or amount with thousands separators: '12,345', '3.5' (decimals=1), '12.3k'."""
    if is_missing(value):
        return MISSING
    x = float(value)  # type: ignore[arg-type]
    if not math.isfinite(x):
        return MISSING
    if compact and (short := _compact(x)) is not None:
        return short
    return f"{x:,.{decimals}f}"


def money(
    value: object,
    unit: Currency | None = None,
    compact: bool = False,
    sign: bool = False,
    whole: bool = False,
) -> str:
    """Money in `unit` (default: `currency()`): '€1,234.50', '-€12.00', '€12.3k' (compact),
    '+€5.00' (sign), '€1,235' (whole: no decimals, for large planned amounts)."""
    if is_missing(value):
        return MISSING
    x = float(value)  # type: ignore[arg-type]
    if not math.isfinite(x):
        return MISSING
    unit = unit or currency()
    decimals = 0 if whole else unit.decimals
    body = (compact and _compact(abs(x))) or f"{abs(x):,.{decimals}f}"
    prefix = "-" if x < 0 else ("+" if sign else "")
    return f"{prefix}{unit.symbol}{body}"


def money_template(field: str, decimals: int | None = None) -> str:
    """A Plotly hover/text template for a money field in the configured currency:
    money_template("y") -> '€%{y:,.2f}'. The symbol comes from code, never from data."""
    unit = currency()
    places = unit.decimals if decimals is None else decimals
    symbol = unit.symbol.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"{symbol}%{{{field}:,.{places}f}}"


def percent(value: object, decimals: int = 1, sign: bool = False) -> str:
    """A share (0..1) as a percentage: 0.125 -> '12.5%'."""
    if is_missing(value):
        return MISSING
    x = float(value)  # type: ignore[arg-type]
    if not math.isfinite(x):
        return MISSING
    return f"{x:{'+' if sign else ''}.{decimals}%}"


def date_text(value: object) -> str:
    """A date as '2025-03-31'; a timestamp with a time of day as '2025-03-31 14:05'."""
    if is_missing(value):
        return MISSING
    if isinstance(value, datetime | pd.Timestamp):
        ts = pd.Timestamp(value)
        if ts.hour == ts.minute == ts.second == 0 and ts.microsecond == 0:
            return f"{ts:%Y-%m-%d}"
        return f"{ts:%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return f"{value:%Y-%m-%d}"
    return str(value)


def text(value: object) -> str:
    """Any value as display text, `MISSING` for a missing one."""
    return MISSING if is_missing(value) else str(value)


# ---------------------------------------------------------------------------------------------
# Column labels and kinds

# Plain-language labels for column names the app shows; others get `readable_label`.
LABELS: dict[str, str] = {
    "aov": "Average order value",
    "avg_order_value": "Average order value",
    "clv": "Customer lifetime value",
    "clv_12m": "CLV (12 months)",
    "customer_id": "Customer",
    "source_system": "Source system",
    "source_id": "Source ID",
    "source_system_l": "Source system (left)",
    "source_id_l": "Source ID (left)",
    "source_system_r": "Source system (right)",
    "source_id_r": "Source ID (right)",
    "run_id": "Build",
    "ingest_id": "Ingest",
    "rows_rejected": "Rows rejected",
    "rows_loaded": "Rows loaded",
    "file_name": "File",
    "check_id": "Check",
    "total_rows": "Rows checked",
    "failed_rows": "Failed rows",
    "p_alive": "Chance still active",
    "roi": "ROI",
    "marginal_roi": "Marginal ROI",
    "kpi": "KPI",
    "n": "Count",
    "ts": "Time",
    "share_of_change": "Share of the change",
    "change_pct": "Change",
    "match_probability": "Match probability",
    "match_weight": "Match weight",
    "bayes_factor": "Bayes factor",
    "weekly_spend": "Weekly spend",
    "ci_low": "Interval low",
    "ci_high": "Interval high",
    "lift": "Lift",
    "mmm_revenue": "Media mix model revenue",
}

_ABBREVIATIONS = {
    "id": "ID",
    "ids": "IDs",
    "clv": "CLV",
    "roi": "ROI",
    "roas": "ROAS",
    "aov": "AOV",
    "kpi": "KPI",
    "rfm": "RFM",
    "mmm": "MMM",
    "nba": "NBA",
    "csv": "CSV",
    "pct": "%",
    "sms": "SMS",
    "url": "URL",
    "ci": "CI",
    "12m": "12 months",
}


def readable_label(name: str) -> str:
    """A column name as words: 'first_order_at' -> 'First order at', 'roi_ci' -> 'ROI CI'."""
    words = [w for w in re.split(r"[_\s]+", str(name).strip()) if w]
    if not words:
        return str(name)
    words = [_ABBREVIATIONS.get(w.lower(), w) for w in words]
    first = words[0]
    if first.islower():
        words[0] = first[:1].upper() + first[1:]
    return " ".join(words)


def label(name: object) -> str:
    """The plain-language label of a column (see `LABELS`)."""
    key = str(name)
    return LABELS.get(key) or LABELS.get(key.lower()) or readable_label(key)


_CODE_LIKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)+")


def value_label(value: object) -> str:
    """A code-like data value (lower case words joined by '_', such as the channel
    'paid_search') in words for a chart or hover ('Paid search', 'Direct mail'); any other value
    as it is ('email', 'Champions', names users typed), `MISSING` for a missing one."""
    if is_missing(value):
        return MISSING
    text_value = str(value)
    return readable_label(text_value) if _CODE_LIKE.fullmatch(text_value) else text_value


def count_template(field: str, decimals: int = 0) -> str:
    """A Plotly hover/text template for a count or amount with thousands separators:
    count_template("x") -> '%{x:,.0f}'."""
    return f"%{{{field}:,.{decimals}f}}"


def percent_template(field: str, decimals: int = 1) -> str:
    """A Plotly hover/text template for a share (0..1) as a percentage: '%{z:.1%}'."""
    return f"%{{{field}:.{decimals}%}}"


Kind = Literal["money", "percent", "count", "number", "date", "datetime", "text"]

# Column names that hold money (currency units) or shares (0..1), as whole words of the name.
_MONEY_WORDS = re.compile(
    r"(^|_)(revenue|spend|clv|aov|monetary|value|budget|cost|profit|price|contribution|"
    r"incremental|amount|sales)(_|$)"
)
_NOT_MONEY = re.compile(r"(^|_)(roi|roas|rate|share|pct|ratio|index|score|days|count|p|n)(_|$)")
_PERCENT_WORDS = re.compile(r"(^|_)(share|rate|pct|density|ratio)(_|$)")


def column_kind(name: object, series: pd.Series) -> Kind:
    """What a column holds, from its name and data: money, a share shown as a percentage, a
    count, another number, a date, a timestamp or text."""
    key = re.sub(r"[^a-z0-9]+", "_", str(name).lower())  # "Avg order value" -> avg_order_value
    if pd.api.types.is_bool_dtype(series):
        return "text"
    if pd.api.types.is_datetime64_any_dtype(series):
        values = series.dropna()
        if values.empty or bool((values == values.dt.normalize()).all()):
            return "date"
        return "datetime"
    if series.dtype == object:
        values = series.dropna()
        if not values.empty and values.map(lambda v: isinstance(v, date)).all():
            return "date"
        return "text"
    if not pd.api.types.is_numeric_dtype(series):
        return "text"
    if _PERCENT_WORDS.search(key) and not _MONEY_WORDS.search(key):
        return "percent"
    if _MONEY_WORDS.search(key) and not _NOT_MONEY.search(key):
        return "money"
    if pd.api.types.is_integer_dtype(series):
        return "count"
    values = series.dropna()
    if not values.empty and bool((values == values.round()).all()):
        return "count"
    return "number"


def format_cell(value: object, kind: Kind, unit: Currency | None = None) -> str:
    """One value as text for its column kind."""
    if kind == "money":
        return money(value, unit)
    if kind == "percent":
        return percent(value)
    if kind == "count":
        return number(value)
    if kind == "number":
        return number(value, 2)
    if kind in ("date", "datetime"):
        return date_text(value)
    return text(value)
