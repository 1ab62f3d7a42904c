"""Optimizer of the budget module: the weekly plan that maximises revenue, conversions or profit.

Spend is per WEEK (currency units) per media channel; the objective is its steady-state weekly
value over the response curves (see `curves`). `optimize` takes per-channel limits from
`bounds.resolve_bounds` and solves for the free channels (neither locked nor pinned by their
bounds) with SLSQP on analytic gradients, the fixed channels adding a constant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult, minimize

from ccrm_core.conductor.budget.bounds import BoundSpec, InfeasibleBudgetError, resolve_bounds
from ccrm_core.conductor.budget.curves import (
    CURVES_TABLE,
    DAYS_PER_WEEK,
    BudgetError,
    _Params,
    _params,
    _select,
    _steady,
)
from ccrm_core.conductor.budget.whatif import _check_objective, plan_vector


def _list_amounts(frame: pd.DataFrame, col: str) -> str:
    shown = frame[frame[col] > 0]
    if shown.empty:
        return "none"
    return ", ".join(f"{r.channel} {getattr(r, col):,.0f}" for r in shown.itertuples())


@dataclass(frozen=True)
class OptimizationResult:
    """An optimized plan (channel -> weekly spend) and how it was found.

    `value`/`start_value`: the objective per week (steady state) at the plan and at the start
    (the current plan projected onto the constraints); `limits`: resolve_bounds' table plus
    columns plan, marginal_roi, at_min, at_max; `lagrange`: the marginal objective per currency
    unit shared by the unbound channels (NaN when no budget constraint binds).
    """

    plan: dict[str, float]
    start: dict[str, float]
    objective: str
    value: float
    start_value: float
    limits: pd.DataFrame
    converged: bool
    message: str
    iterations: int
    lagrange: float = float("nan")
    notes: list[str] = field(default_factory=list)


def _objective_weights(p: _Params, objective: str) -> np.ndarray:
    """Objective value per currency unit of revenue for each channel."""
    if objective == "conversions":
        bad = [ch for ch, r in zip(p.channel, p.rpc, strict=True) if not (r > 0)]
        if bad:
            raise BudgetError(
                f"objective conversions needs revenue_per_conversion > 0 for every channel; "
                f"missing for {', '.join(bad)} in {CURVES_TABLE} (rebuild the `mmm` stage, or "
                "optimize revenue)"
            )
        return 1.0 / p.rpc
    return np.ones(len(p.channel))


def _project_to_budget(x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, target: float) -> np.ndarray:
    """Scale a start point so that clip(t * x0, lo, hi) sums to `target` (bisection on t).

    Channels at 0 get a small seed so that the scaling can move them too."""
    seed = x0 + max(float(x0.mean()), 1.0) * 1e-3
    total = lambda t: float(np.clip(t * seed, lo, hi).sum())  # noqa: E731
    t_lo, t_hi = 0.0, 1.0
    while total(t_hi) < target and t_hi < 1e15:
        t_hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (t_lo + t_hi)
        if total(mid) < target:
            t_lo = mid
        else:
            t_hi = mid
    return np.clip(t_hi * seed, lo, hi)


def optimize(
    curves: pd.DataFrame,
    total_budget: float | None = None,
    bounds: Mapping[str, BoundSpec] | None = None,
    locked: Mapping[str, float] | Iterable[str] | None = None,
    objective: str = "revenue",
    target_roi: float | None = None,
    start: Mapping[str, float] | None = None,
) -> OptimizationResult:
    """The weekly plan that maximises the objective (steady state) under the constraints.

    - objective "revenue" or "conversions": the whole `total_budget` (per week) is spent;
      "profit" (incremental revenue - spend): `total_budget` is a cap, since a currency unit
      that returns less than itself is better not spent; with no total, only the bounds limit it.
    - `target_roi`: instead of a fixed total, spend as much as keeps the plan's ROI (incremental
      revenue / spend, all channels) at or above the target; `total_budget` then acts as a cap.
    - `bounds` and `locked`: see `resolve_bounds`.
    Solved with SLSQP on analytic gradients, starting from `start` (default: the current plan)
    projected onto the constraints. Raises InfeasibleBudgetError naming the conflict when the
    budget, bounds, locks and target ROI cannot all hold.
    """
    _check_objective(objective)
    p = _params(curves)
    limits = resolve_bounds(curves, bounds, locked)
    weights = _objective_weights(p, objective)
    profit_like = objective == "profit" or target_roi is not None
    total_budget = _checked_total_budget(limits, total_budget, objective, profit_like)
    target_roi = _checked_target_roi(target_roi)
    problem = _free_channel_problem(p, limits, weights, objective, total_budget, target_roi)
    start_plan = plan_vector(p, start) if start is not None else p.current.copy()
    x0 = problem.start_point(start_plan)
    start_value = problem.value(x0)
    single = _only_plan(problem)
    if single:
        return _single_plan_result(problem, limits, objective, x0, start_value, single)

    unit = _spend_unit(problem, x0)
    feasible, value, x, res = _best_solution(problem, x0, start_value, unit)
    notes = [] if target_roi is None else [_target_roi_note(problem, limits, x, unit)]
    if not feasible:
        raise BudgetError(
            f"the optimizer could not meet the budget ({res.message}); the plan it reached spends "
            f"{x.sum() + problem.fixed_spend:,.0f} per week. Try wider bounds or another start"
        )
    if value < start_value - 1e-9 * max(abs(start_value), 1.0):
        # SLSQP only ever improves on a feasible start; keep the start if it did not
        notes.append("the optimizer did not improve on the starting plan; kept the start")
        x, value = x0, start_value
    return _optimization_result(
        problem, limits, objective, (x0, start_value), (x, value), unit, res, notes
    )


def _free_mask(limits: pd.DataFrame) -> np.ndarray:
    """The channels the optimizer may move: neither locked nor pinned by min == max."""
    lo_all, hi_all = limits["min"].to_numpy(float), limits["max"].to_numpy(float)
    return ~limits["locked"].to_numpy(bool) & (hi_all > lo_all)


def _checked_total_budget(
    limits: pd.DataFrame, total_budget: float | None, objective: str, profit_like: bool
) -> float | None:
    """The total weekly budget as a float (None when there is none), after checking it against
    the locked spend, the channels' minimums and, when it must all be spent, their maximums."""
    if total_budget is None:
        if not profit_like:
            raise BudgetError(
                f"objective {objective} needs a total budget (or a target ROI); give total_budget"
            )
        return None
    total_budget = float(total_budget)
    if not math.isfinite(total_budget) or total_budget < 0:
        raise BudgetError(f"total budget is {total_budget}; it must be a number >= 0 per week")
    lo_all, hi_all = limits["min"].to_numpy(float), limits["max"].to_numpy(float)
    free = _free_mask(limits)
    fixed = ~free  # locked, or pinned by min == max
    fixed_spend = float(lo_all[fixed].sum())
    min_free, max_free = float(lo_all[free].sum()), float(hi_all[free].sum())
    locked_spend = float(lo_all[limits["locked"].to_numpy(bool)].sum())
    if locked_spend > total_budget * (1 + 1e-12) + 1e-9:
        raise InfeasibleBudgetError(
            f"locked spend {locked_spend:,.0f} per week "
            f"({_list_amounts(limits[limits['locked']], 'min')}) exceeds the total budget "
            f"{total_budget:,.0f}; raise the budget or unlock a channel"
        )
    if fixed_spend + min_free > total_budget * (1 + 1e-12) + 1e-9:
        raise InfeasibleBudgetError(
            f"the total budget {total_budget:,.0f} per week is below the sum of the channel "
            f"minimums {fixed_spend + min_free:,.0f} (locked or pinned: "
            f"{_list_amounts(limits[fixed], 'min')}; minimums: "
            f"{_list_amounts(limits[free], 'min')}); lower the minimums or raise the budget"
        )
    if not profit_like and fixed_spend + max_free < total_budget * (1 - 1e-12) - 1e-9:
        raise InfeasibleBudgetError(
            f"the total budget {total_budget:,.0f} per week is above the sum of the channel "
            f"maximums {fixed_spend + max_free:,.0f} (locked or pinned: "
            f"{_list_amounts(limits[fixed], 'min')}; maximums: "
            f"{_list_amounts(limits[free], 'max')}); raise the maximums, unlock channels or "
            "lower the budget"
        )
    return total_budget


def _checked_target_roi(target_roi: float | None) -> float | None:
    if target_roi is None:
        return None
    target_roi = float(target_roi)
    if not math.isfinite(target_roi) or target_roi <= 0:
        raise BudgetError(f"target ROI is {target_roi}; it must be a number > 0")
    return target_roi


@dataclass(frozen=True)
class _FreeChannelProblem:
    """The optimization over the free channels; the fixed ones (locked, or pinned by min ==
    max) hold their spend and add a constant. Spend is per week, values are per week."""

    p: _Params  # every channel
    sub: _Params  # the free channels
    idx: np.ndarray  # positions of the free channels in p
    lo: np.ndarray  # the free channels' weekly limits; hi is capped by what the budget leaves
    hi: np.ndarray
    x_fixed: np.ndarray  # every channel: its fixed spend, 0 for a free channel
    fixed_spend: float
    fixed_revenue: float
    fixed_value: float
    weights: np.ndarray  # the free channels' objective value per currency unit of revenue
    spend_cost: float  # 1 when spend counts against the objective (profit), else 0
    budget_free: float | None  # what the free channels must (or may) spend in all
    profit_like: bool  # the budget is a cap, not a total that must be spent
    target_roi: float | None

    @property
    def n_free(self) -> int:
        return len(self.idx)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The objective of the whole plan and its gradient in the free channels' spend."""
        g, dg = _steady(self.sub, x)
        value = (
            self.fixed_value
            + float(np.sum(self.weights * self.sub.beta * g))
            - self.spend_cost * (x.sum() + self.fixed_spend)
        )
        return value, self.weights * self.sub.beta * dg - self.spend_cost

    def value(self, x: np.ndarray) -> float:
        return self.value_and_grad(x)[0]

    def revenue(self, x: np.ndarray) -> float:
        """Revenue per week of the whole plan (fixed channels included)."""
        g, _ = _steady(self.sub, x)
        return self.fixed_revenue + float(np.sum(self.sub.beta * g))

    def start_point(self, start_plan: np.ndarray) -> np.ndarray:
        """The free channels' part of a plan, projected onto their limits and the budget."""
        x_start = start_plan[self.idx]
        if not self.profit_like and self.budget_free is not None:
            return _project_to_budget(x_start, self.lo, self.hi, self.budget_free)
        x0 = np.clip(x_start, self.lo, self.hi)
        if self.budget_free is not None and x0.sum() > self.budget_free:
            x0 = _project_to_budget(x_start, self.lo, self.hi, self.budget_free)
        return x0

    def full_plan(self, x: np.ndarray) -> np.ndarray:
        """Every channel's weekly spend: the fixed spend with the free channels set to x."""
        vec = self.x_fixed.copy()
        vec[self.idx] = x
        return vec

    def roi_gap(self, u: np.ndarray, unit: float) -> float:
        """How far the plan's ROI is above the target (scaled spend u; >= 0 when met)."""
        x = u * unit
        revenue = self.revenue(x)
        return (revenue - self.target_roi * (x.sum() + self.fixed_spend)) / (unit * self.n_free)

    def roi_gap_jac(self, u: np.ndarray, unit: float) -> np.ndarray:
        _, dg = _steady(self.sub, u * unit)
        return (self.sub.beta * dg - self.target_roi) / self.n_free

    def meets_constraints(self, x: np.ndarray, unit: float) -> bool:
        ok = True
        if self.budget_free is not None:
            gap = x.sum() - self.budget_free
            tol = 1e-6 * max(self.budget_free, 1.0)
            ok = gap <= tol if self.profit_like else abs(gap) <= tol
        if self.target_roi is not None:
            slack = -1e-6 * max(float(np.sum(self.sub.beta)), 1.0) / self.n_free
            ok = ok and self.roi_gap(x / unit, unit) >= slack
        return ok


def _free_channel_problem(
    p: _Params,
    limits: pd.DataFrame,
    weights: np.ndarray,
    objective: str,
    total_budget: float | None,
    target_roi: float | None,
) -> _FreeChannelProblem:
    """Split the channels into fixed and free ones and set up the free channels' problem."""
    lo_all, hi_all = limits["min"].to_numpy(float), limits["max"].to_numpy(float)
    free = _free_mask(limits)
    fixed = ~free  # locked, or pinned by min == max
    fixed_spend = float(lo_all[fixed].sum())
    min_free = float(lo_all[free].sum())
    x_fixed = np.where(fixed, lo_all, 0.0)
    idx = np.flatnonzero(free)
    lo, hi = lo_all[idx], hi_all[idx]
    budget_free = None if total_budget is None else total_budget - fixed_spend
    if budget_free is not None:
        # no free channel can take more than what is left once the others have their minimums
        # (never below its own minimum: a budget equal to the minimums' sum leaves exactly
        # them, and rounding must not turn that into an impossible range)
        hi = np.maximum(np.minimum(hi, budget_free - (min_free - lo)), lo)
    fixed_g, _ = _steady(p, x_fixed)
    return _FreeChannelProblem(
        p=p,
        sub=_select(p, idx),
        idx=idx,
        lo=lo,
        hi=hi,
        x_fixed=x_fixed,
        fixed_spend=fixed_spend,
        fixed_revenue=float((p.beta * fixed_g)[fixed].sum()),
        fixed_value=float((weights * p.beta * fixed_g)[fixed].sum()),
        weights=weights[idx],
        spend_cost=1.0 if objective == "profit" else 0.0,
        budget_free=budget_free,
        profit_like=objective == "profit" or target_roi is not None,
        target_roi=target_roi,
    )


def _only_plan(problem: _FreeChannelProblem) -> str | None:
    """Why the constraints leave exactly one plan (nothing to solve), or None."""
    if problem.n_free == 0:
        return "every channel is locked or pinned by its bounds"
    if np.all(problem.hi <= problem.lo):  # e.g. a total budget of 0
        return "the budget leaves no room: every channel stays at its minimum"
    return None


def _single_plan_result(
    problem: _FreeChannelProblem,
    limits: pd.DataFrame,
    objective: str,
    x: np.ndarray,
    value: float,
    message: str,
) -> OptimizationResult:
    """The result when the constraints allow one plan only (no channel is free, or the budget
    leaves the free ones no room): `x` is the free channels' spend, there is nothing to solve."""
    plan_vec = problem.full_plan(x)
    plan = dict(zip(problem.p.channel, map(float, plan_vec), strict=True))
    return OptimizationResult(
        plan=plan,
        start=plan,
        objective=objective,
        value=value,
        start_value=value,
        limits=_limits_table(problem.p, limits, plan_vec),
        converged=True,
        message=message,
        iterations=0,
        notes=[],
    )


def _spend_unit(problem: _FreeChannelProblem, x0: np.ndarray) -> float:
    """Weekly spend per solver unit, so that the variables are of order 1: SLSQP's tolerances
    are absolute."""
    hi = problem.hi
    unit = max(
        float(problem.budget_free or 0.0),
        float(x0.sum()),
        float(hi[np.isfinite(hi)].sum() or 0),
        1.0,
    )
    return max(unit / problem.n_free, 1e-9)


def _solver_constraints(problem: _FreeChannelProblem, unit: float) -> list[dict]:
    """SLSQP constraints in scaled spend: the budget (spent in full, or a cap) and target ROI."""
    constraints = []
    budget_free = problem.budget_free
    if budget_free is not None:
        ones = np.ones(problem.n_free)
        if problem.profit_like:
            constraints.append(
                {
                    "type": "ineq",
                    "fun": lambda u: (budget_free - u.sum() * unit) / unit,
                    "jac": lambda u: -ones,
                }
            )
        else:
            constraints.append(
                {
                    "type": "eq",
                    "fun": lambda u: (u.sum() * unit - budget_free) / unit,
                    "jac": lambda u: ones,
                }
            )
    if problem.target_roi is not None:
        constraints.append(
            {
                "type": "ineq",
                "fun": lambda u: problem.roi_gap(u, unit),
                "jac": lambda u: problem.roi_gap_jac(u, unit),
            }
        )
    return constraints


def _start_points(problem: _FreeChannelProblem, x0: np.ndarray) -> list[np.ndarray]:
    starts = [x0]
    sub = problem.sub
    if np.any(sub.s > 1.0):
        # S-shaped curves are flat near zero, so from the current plan SLSQP may never fund a
        # channel it starts without; a second start at each channel's half-saturation spend
        # (scaled to the budget) guards against that local optimum. The better plan wins.
        anchor = DAYS_PER_WEEK * sub.K * (1.0 - sub.theta)
        budget_free = problem.budget_free
        if budget_free is not None and (not problem.profit_like or anchor.sum() > budget_free):
            starts.append(_project_to_budget(anchor, problem.lo, problem.hi, budget_free))
        else:
            starts.append(np.clip(anchor, problem.lo, problem.hi))
    return starts


def _best_solution(
    problem: _FreeChannelProblem, x0: np.ndarray, start_value: float, unit: float
) -> tuple[bool, float, np.ndarray, OptimizeResult]:
    """SLSQP from each start point; returns (feasible, value, free channels' spend, solver
    result) of the best plan, a feasible plan beating any infeasible one."""
    fscale = max(
        abs(start_value),
        float(np.sum(problem.weights * problem.sub.beta)) * DAYS_PER_WEEK * 1e-3,
        1e-9,
    )

    def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = problem.value_and_grad(u * unit)
        return -v / fscale, -g * unit / fscale

    constraints = _solver_constraints(problem, unit)
    lo, hi = problem.lo, problem.hi
    scipy_bounds = [
        (l_ / unit, h_ / unit if math.isfinite(h_) else None) for l_, h_ in zip(lo, hi, strict=True)
    ]
    best = None
    for start_x in _start_points(problem, x0):
        res = minimize(
            fun,
            start_x / unit,
            jac=True,
            method="SLSQP",
            bounds=scipy_bounds,
            constraints=constraints,
            options={"ftol": 1e-12, "maxiter": 1000},
        )
        x = np.clip(res.x * unit, lo, hi)
        if problem.budget_free is not None and not problem.profit_like:
            x = _rebalance(x, lo, hi, problem.budget_free)
        candidate = (problem.meets_constraints(x, unit), problem.value(x), x, res)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best


def _target_roi_note(
    problem: _FreeChannelProblem, limits: pd.DataFrame, x: np.ndarray, unit: float
) -> str:
    """The plan's ROI beside the target; InfeasibleBudgetError when the plan falls short."""
    target_roi = problem.target_roi
    revenue = problem.revenue(x)
    spend = float(x.sum()) + problem.fixed_spend
    roi = revenue / spend if spend > 0 else float("inf")
    if spend <= 1e-9 * unit * problem.n_free:
        raise InfeasibleBudgetError(
            f"target ROI {target_roi:.2f} cannot be reached: no plan with spend above zero "
            f"returns that much (the best ROI any channel reaches on its curve is "
            f"{_best_roi(problem.sub):.2f}); lower the target ROI"
        )
    if roi < target_roi * (1 - 1e-6):
        raise InfeasibleBudgetError(
            f"target ROI {target_roi:.2f} cannot be reached: the best plan found returns "
            f"{roi:.2f} on {spend:,.0f} per week, and the minimums and locks force "
            f"{problem.fixed_spend + float(problem.lo.sum()):,.0f} of spend "
            f"({_list_amounts(limits[limits['min'] > 0], 'min')}); lower the target ROI or "
            "the minimums"
        )
    return f"ROI of the plan: {roi:.3f} (target {target_roi:.3f})"


def _optimization_result(
    problem: _FreeChannelProblem,
    limits: pd.DataFrame,
    objective: str,
    start: tuple[np.ndarray, float],
    solution: tuple[np.ndarray, float],
    unit: float,
    res: OptimizeResult,
    notes: list[str],
) -> OptimizationResult:
    """The result of a solved plan: `start` and `solution` are (free channels' spend, value)."""
    (x0, start_value), (x, value) = start, solution
    _, grad = problem.value_and_grad(x)
    interior = (x > problem.lo + 1e-6 * unit) & (x < problem.hi - 1e-6 * unit)
    lagrange = float(np.median(grad[interior])) if interior.any() else float("nan")
    plan_vec = problem.full_plan(x)
    channels = problem.p.channel
    return OptimizationResult(
        plan=dict(zip(channels, map(float, plan_vec), strict=True)),
        start=dict(zip(channels, map(float, problem.full_plan(x0)), strict=True)),
        objective=objective,
        value=float(value),
        start_value=float(start_value),
        limits=_limits_table(problem.p, limits, plan_vec),
        converged=bool(res.success),
        message=str(res.message),
        iterations=int(res.nit),
        lagrange=lagrange,
        notes=notes,
    )


def _best_roi(p: _Params) -> float:
    """The highest steady-state ROI (revenue / spend) any channel reaches, on a log grid of
    weekly spend from 1e-4 to 1e3 times its half saturation."""
    best = 0.0
    for i in range(len(p.channel)):
        scale = p.K[i] * DAYS_PER_WEEK * (1 - p.theta[i])
        w = scale * np.logspace(-4, 3, 400)
        g, _ = _steady(_select(p, [i]), w)
        best = max(best, float(np.max(p.beta[i] * g / w)))
    return best


def _rebalance(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, target: float) -> np.ndarray:
    """Spread the rounding gap left by clipping over channels with room, so the plan sums
    exactly to the budget (the gap is at most the solver's tolerance)."""
    for _ in range(5):
        gap = target - x.sum()
        if abs(gap) <= 1e-12 * max(target, 1.0):
            break
        room = (hi - x) if gap > 0 else (x - lo)
        room = np.where(np.isfinite(room), room, abs(gap))
        if room.sum() <= 0:
            break
        x = np.clip(x + np.sign(gap) * room / room.sum() * min(abs(gap), room.sum()), lo, hi)
    return x


def _limits_table(p: _Params, limits: pd.DataFrame, vec: np.ndarray) -> pd.DataFrame:
    """resolve_bounds' table plus the plan, its marginal ROI and which limits bind."""
    table = limits.copy()
    table["plan"] = vec
    _, dg = _steady(p, vec)
    table["marginal_roi"] = p.beta * dg
    tol = 1e-6 * max(float(vec.sum()), 1.0)
    table["at_min"] = ~table["locked"] & (vec <= table["min"] + tol)
    table["at_max"] = ~table["locked"] & (vec >= table["max"] - tol)
    return table
