"""Benchmark support for attribution: synthetic journeys and the `attribution_all` benchmark
(`ccrm bench --only attribution_all`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ccrm_core.conductor.attribution.models import attribute_all
from ccrm_core.conductor.attribution.paths import prepare_paths


def simulate_journeys(n: int, n_channels: int = 10, seed: int = 0) -> pd.DataFrame:
    """n synthetic journeys (one row each; path lists, conversions 0/1, nulls 1 - conversions,
    value) with skewed channel frequencies and geometric path lengths (mean ~2.5, max 12), for
    benchmarks and tests. Journeys repeat the same list objects, as real journeys repeat paths."""
    rng = np.random.default_rng(seed)
    names = np.array([f"channel_{i:02d}" for i in range(n_channels)], dtype=object)
    popularity = 1.0 / np.arange(1, n_channels + 1)
    pool_size = min(n, 200_000)
    lengths = np.minimum(rng.geometric(0.4, pool_size), 12)
    flat = rng.choice(n_channels, size=int(lengths.sum()), p=popularity / popularity.sum())
    pool = np.empty(pool_size, dtype=object)
    pool[:] = [list(p) for p in np.split(names[flat], np.cumsum(lengths)[:-1])]
    # Zipf-like reuse of the pool: common journeys are common
    pick = np.minimum(rng.zipf(1.3, n) - 1, pool_size - 1)
    pick = np.where(rng.random(n) < 0.5, pick, rng.integers(0, pool_size, n))
    conv = (rng.random(n) < 0.05 + 0.03 * np.minimum(lengths[pick], 5)).astype(float)
    return pd.DataFrame(
        {
            "path": pool[pick],
            "conversions": conv,
            "nulls": 1.0 - conv,
            "value": conv * np.round(rng.gamma(2.0, 40.0, n), 2),
        }
    )


def bench_attribution_all(ctx) -> tuple[int, dict]:
    """Bench: generate 1,000,000 journeys, then run all nine models on them (one call).
    Figures: models_s (the models alone, the <= 3 s target), distinct_paths."""
    import time

    journeys = simulate_journeys(1_000_000, 10, seed=42)
    started = time.perf_counter()
    attribute_all(journeys)
    models_s = time.perf_counter() - started
    distinct = len(prepare_paths(journeys).length)
    return len(journeys), {"models_s": models_s, "distinct_paths": float(distinct)}
