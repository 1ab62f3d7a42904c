"""Bounds and locks of the budget optimizer: per-channel limits on weekly spend.

Limits are weekly spend per channel (currency units), absolute or as a share of the channel's
current weekly spend; a locked channel is held at one weekly spend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from ccrm_core.conductor.budget.curves import BudgetError, _params


class InfeasibleBudgetError(BudgetError):
    """The total budget, bounds, locks or target ROI contradict each other."""


@dataclass(frozen=True)
class Bound:
    """Limits on one channel's weekly spend: absolute (`min`, `max`, currency per week) and/or as
    a share of its current weekly spend (`min_share`, `max_share`, e.g. 0.5 and 2.0). Where both
    kinds are given the tighter one applies. A channel with no current spend gets max 0 from a
    share limit: give it an absolute `max` to let the optimizer fund it."""

    min: float | None = None
    max: float | None = None
    min_share: float | None = None
    max_share: float | None = None

    def limits(self, current: float) -> tuple[float, float]:
        lo, hi = 0.0, math.inf
        if self.min is not None:
            lo = max(lo, float(self.min))
        if self.min_share is not None:
            lo = max(lo, float(self.min_share) * current)
        if self.max is not None:
            hi = min(hi, float(self.max))
        if self.max_share is not None:
            hi = min(hi, float(self.max_share) * current)
        return lo, hi


BoundSpec = Bound | tuple[float | None, float | None] | Mapping[str, float | None]


def _as_bound(channel: str, spec: BoundSpec) -> Bound:
    if isinstance(spec, Bound):
        bound = spec
    elif isinstance(spec, Mapping):
        extra = set(spec) - {"min", "max", "min_share", "max_share"}
        if extra:
            raise BudgetError(
                f"bounds for {channel}: unknown key(s) {sorted(extra)}; use min, max (weekly "
                "spend) or min_share, max_share (share of current spend)"
            )
        bound = Bound(**spec)
    elif isinstance(spec, tuple | list) and len(spec) == 2:
        bound = Bound(min=spec[0], max=spec[1])
    else:
        raise BudgetError(f"bounds for {channel}: {spec!r} is not (min, max), a dict or a Bound")
    for name in ("min", "max", "min_share", "max_share"):
        v = getattr(bound, name)
        if v is not None and (not isinstance(v, int | float) or not v >= 0 or math.isnan(v)):
            raise BudgetError(f"bounds for {channel}: {name} = {v!r}; it must be a number >= 0")
    return bound


def resolve_bounds(
    curves: pd.DataFrame,
    bounds: Mapping[str, BoundSpec] | None = None,
    locked: Mapping[str, float] | Iterable[str] | None = None,
) -> pd.DataFrame:
    """Per channel weekly spend limits after bounds and locks: channel, current, min, max, locked.

    `bounds` maps channel -> Bound, (min, max) in weekly spend, or a dict of Bound's fields; the
    key "*" applies to every channel without its own entry. `locked` is a list of channels held at
    their current spend, or channel -> weekly spend. Raises BudgetError naming the channel for
    unknown channels, min > max, and a lock outside its channel's own bounds.
    """
    p = _params(curves)
    bounds = dict(bounds or {})
    default = _as_bound("*", bounds.pop("*")) if "*" in bounds else Bound()
    unknown = sorted(set(bounds) - set(p.channel))
    if unknown:
        raise BudgetError(
            f"bounds name channel(s) {', '.join(unknown)} that have no response curve; "
            f"known channels: {', '.join(p.channel)}"
        )
    if locked is None:
        locked = {}
    elif not isinstance(locked, Mapping):
        locked = {ch: p.current[p.index(ch)] if ch in p.channel else 0.0 for ch in locked}
    unknown = sorted(set(locked) - set(p.channel))
    if unknown:
        raise BudgetError(
            f"locked channel(s) {', '.join(unknown)} have no response curve; "
            f"known channels: {', '.join(p.channel)}"
        )
    rows = []
    for i, ch in enumerate(p.channel):
        lo, hi = _as_bound(ch, bounds.get(ch, default)).limits(p.current[i])
        if lo > hi:
            raise InfeasibleBudgetError(
                f"bounds for {ch}: minimum {lo:,.2f} is above maximum {hi:,.2f} per week; "
                "lower the minimum or raise the maximum"
            )
        is_locked = ch in locked
        if is_locked:
            value = float(locked[ch])
            if not math.isfinite(value) or value < 0:
                raise BudgetError(f"locked spend for {ch} is {value}; it must be a number >= 0")
            if ch in bounds and not (lo - 1e-9 <= value <= hi + 1e-9):
                raise InfeasibleBudgetError(
                    f"{ch} is locked at {value:,.2f} per week but its bounds allow "
                    f"{lo:,.2f} to {hi:,.2f}; unlock it or widen its bounds"
                )
            lo = hi = value
        rows.append(
            {"channel": ch, "current": p.current[i], "min": lo, "max": hi, "locked": is_locked}
        )
    return pd.DataFrame(rows)
