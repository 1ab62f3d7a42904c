"""What every chart hover must look like (see ccrm_core.foundation.formatting): a template of
ours (never Plotly's default of raw numbers and column names), no snake_case names, no dates with
a time of midnight, and money in the configured currency."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go

SNAKE_CASE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")


def _strings(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in np.asarray(value, dtype=object).ravel() if isinstance(v, str)]


def hover_texts(trace) -> tuple[list[str], list[str]]:
    """(hover templates, the texts they show: customdata, text, labels, the trace name)."""
    spec = trace.to_plotly_json()
    templates = [spec.get("hovertemplate")]
    shown = _strings(spec.get("customdata")) + _strings(spec.get("text")) + [spec.get("name")]
    for part in ("node", "link"):  # a Sankey's hovers
        if part in spec:
            templates.append(spec[part].get("hovertemplate"))
            shown += _strings(spec[part].get("label")) + _strings(spec[part].get("customdata"))
    return [t for t in templates if t], [s for s in shown if s]


def hover_problems(fig: go.Figure, money: set[int] = frozenset(), symbol: str = "€") -> list:
    """Problems of `fig`'s hovers; traces whose index is in `money` must show `symbol`."""
    problems = []
    for i, trace in enumerate(fig.data):
        if trace.to_plotly_json().get("hoverinfo") == "skip":
            continue
        templates, shown = hover_texts(trace)
        if not templates:
            problems.append(f"trace {i} ({trace.type}): Plotly's default hover")
        for text in templates + shown:
            if "00:00:00" in text:
                problems.append(f"trace {i}: a date with a time of midnight in {text!r}")
            if SNAKE_CASE.search(text):
                problems.append(f"trace {i}: snake_case in {text!r}")
        if i in money and not any(symbol in t for t in templates + shown):
            problems.append(f"trace {i}: money without {symbol!r}: {templates}")
    return problems
