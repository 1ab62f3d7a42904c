"""Benchmark support for attribution: synthetic journeys and the `attribution_all` benchmark
(`ccrm bench --only attribution_all`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from ccrm_core.conductor.attribution.models import attribute_all
from ccrm_core.conductor.attribution.paths import prepare_paths


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
    # one list per pool path: slices of one flat list of names (segment bounds from the lengths)
    # (200,000 new lists hold no cycles: the cyclic garbage collector, which their allocation
    # would trigger again and again, is paused meanwhile)
    touches = names[flat].tolist()
    ends = np.cumsum(lengths)
    pool = np.empty(pool_size, dtype=object)
    with _gc_paused():
        pool[:] = list(
            map(touches.__getitem__, map(slice, (ends - lengths).tolist(), ends.tolist()))
        )
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
    Figures: generate_s (simulating the journeys and building their path lists), paths_s
    (aggregating identical paths), models_s (aggregation and the nine models, i.e. everything
    after generation), distinct_paths."""
    import time

    started = time.perf_counter()
    journeys = simulate_journeys(1_000_000, 10, seed=42)
    generated = time.perf_counter()
    paths = prepare_paths(journeys)  # aggregated once, shared by all nine models
    aggregated = time.perf_counter()
    attribute_all(paths)
    done = time.perf_counter()
    return len(journeys), {
        "generate_s": generated - started,
        "paths_s": aggregated - generated,
        "models_s": done - generated,
        "distinct_paths": float(len(paths.length)),
    }
