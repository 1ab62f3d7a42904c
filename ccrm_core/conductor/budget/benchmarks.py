"""Benchmarks of the budget module (`ccrm bench --only budget_whatif budget_optimize`), on
synthetic 12-channel curves; figures in milliseconds."""

from __future__ import annotations

import numpy as np

from ccrm_core.conductor.budget.charts import (
    figure_forecast,
    figure_response_curves,
    figure_waterfall,
)
from ccrm_core.conductor.budget.curves import current_plan, synthetic_curves
from ccrm_core.conductor.budget.optimizer import optimize
from ccrm_core.conductor.budget.whatif import (
    forecast,
    forecast_totals,
    plan_csv,
    predict,
    waterfall,
)


def _percentiles_ms(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000.0
    return {
        "median_ms": round(float(np.median(ms)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def bench_whatif(ctx: object, evaluations: int = 300) -> tuple[int, dict]:
    """Time what-if evaluations of random 12-channel plans: `predict` alone, and everything the
    page recomputes when a slider moves (two predictions, waterfall, two 13-week forecasts, CSV,
    and the three figures). Returns (evaluations, {predict_*, page_*} in milliseconds)."""
    import time

    curves = synthetic_curves(12, seed=42)
    current = current_plan(curves)
    rng = np.random.default_rng(0)
    plans = [
        {ch: v * f for (ch, v), f in zip(current.items(), rng.uniform(0.3, 2.0, 12), strict=True)}
        for _ in range(evaluations)
    ]
    predict(curves, plans[0])  # warm numpy/pandas code paths once
    t_predict, t_page = [], []
    for plan in plans:
        t0 = time.perf_counter()
        predict(curves, plan)
        t_predict.append(time.perf_counter() - t0)
    for plan in plans[: max(evaluations // 10, 10)]:
        t0 = time.perf_counter()
        predict(curves, current)
        predict(curves, plan)
        fall = waterfall(curves, current, plan)
        series = {
            "current": forecast_totals(forecast(curves, current, 13)),
            "proposed": forecast_totals(forecast(curves, plan, 13)),
        }
        plan_csv(curves, plan)
        figure_response_curves(curves, current, plan)
        figure_waterfall(fall)
        figure_forecast(series)
        t_page.append(time.perf_counter() - t0)
    figures = {f"predict_{k}": v for k, v in _percentiles_ms(t_predict).items()}
    figures |= {f"page_{k}": v for k, v in _percentiles_ms(t_page).items()}
    return evaluations, figures


def bench_optimize(ctx: object, runs: int = 20) -> tuple[int, dict]:
    """Time `optimize` on 12 synthetic channels: random totals (0.5-1.5x current) within 30-300%
    of current spend, revenue objective. Returns (runs, {median/p95/max ms, mean gain %})."""
    import time

    curves = synthetic_curves(12, seed=42)
    total = sum(current_plan(curves).values())
    rng = np.random.default_rng(1)
    seconds, gains = [], []
    for factor in rng.uniform(0.5, 1.5, runs):
        t0 = time.perf_counter()
        result = optimize(
            curves, total * factor, bounds={"*": {"min_share": 0.3, "max_share": 3.0}}
        )
        seconds.append(time.perf_counter() - t0)
        gains.append(result.value / result.start_value - 1.0)
    figures = _percentiles_ms(seconds) | {"mean_gain_pct": round(100 * float(np.mean(gains)), 2)}
    return runs, figures
