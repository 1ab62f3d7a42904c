"""`ccrm bench --scale S|M`: whole operations timed at a named scale (medians of 3 runs).

Each operation runs in a forked child process so its peak memory (max RSS) is its own. The
fixture chain is: generate a company at the scale -> write it as CSV and Parquet -> ingest ->
build; later operations (search, fits, attribution, ...) run against the built database.
Results print as a table and go to `bench/results/<scale>.json`. Benchmarks are never tests.

Register an operation by adding an `Operation` to OPERATIONS under your anchor. Its function
takes a `BenchContext` and returns the number of rows it processed (for rows/s).
"""

from __future__ import annotations

import importlib
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

SCALES = {"S": 20_000, "M": 1_000_000}
BENCH_DAYS = 730
BENCH_SEED = 42


@dataclass
class BenchContext:
    scale: str
    customers: int
    workdir: Path
    db: Path  # built database (after the `build` operation)
    csv_dir: Path
    parquet_dir: Path
    extra: dict = field(default_factory=dict)

    def fresh_db(self, name: str) -> Path:
        """A path for a new, empty database inside the work directory."""
        path = self.workdir / f"{name}.duckdb"
        for suffix in ("", ".wal"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return path


@dataclass(frozen=True)
class Operation:
    """`target` names a function "module:function" (imported only when the operation runs) that
    takes a BenchContext and returns the rows it processed, or (rows, figures) where figures is a
    dict of extra numbers to report (e.g. {"p95_ms": 41.0}), kept from the median run."""

    name: str
    target: str
    description: str
    runs: int = 3

    def function(self) -> Callable[[BenchContext], int | tuple[int, dict]]:
        module, func = self.target.split(":")
        return getattr(importlib.import_module(module), func)


@dataclass
class Measurement:
    operation: str
    rows: int
    median_s: float
    runs_s: list[float]
    rows_per_s: float
    peak_mb: float
    description: str
    figures: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Foundation operations


def _generate(ctx: BenchContext) -> int:
    from ccrm_core.synthetic import sample

    data = sample.generate(ctx.customers, BENCH_DAYS, BENCH_SEED)
    return sum(len(data[t]) for t in data if not t.startswith("ground_truth"))


def _ingest(ctx: BenchContext, directory: Path, ext: str) -> int:
    from ccrm_core.foundation import ingest, store

    con = store.connect_writer(ctx.fresh_db(f"ingest_{ext}"))
    try:
        reports = ingest.ingest_files(con, [directory / f"events.{ext}"], table="events")
    finally:
        con.close()
    return sum(r.rows_loaded for r in reports)


def _ingest_csv(ctx: BenchContext) -> int:
    return _ingest(ctx, ctx.csv_dir, "csv")


def _ingest_parquet(ctx: BenchContext) -> int:
    return _ingest(ctx, ctx.parquet_dir, "parquet")


def _build(ctx: BenchContext) -> int:
    from ccrm_core.foundation import pipeline, store

    work = ctx.fresh_db("build")
    shutil.copy(ctx.workdir / "raw.duckdb", work)
    con = store.connect_writer(work)
    try:
        results = pipeline.build(con)
        failed = [r for r in results if r.status != "ok"]
        if failed:
            raise RuntimeError(f"build failed: {failed[0].stage}: {failed[0].error}")
        con.execute("CHECKPOINT")
        rows = con.execute("SELECT count(*) FROM src_customers").fetchall()[0][0]
    finally:
        con.close()
    shutil.copy(work, ctx.db)
    return rows


OPERATIONS: list[Operation] = [
    Operation(
        "generate", "ccrm_core.bench:_generate", "ccrm sample: generate the company (raw rows)"
    ),
    Operation(
        "ingest_csv", "ccrm_core.bench:_ingest_csv", "ccrm ingest events.csv into an empty db"
    ),
    Operation(
        "ingest_parquet",
        "ccrm_core.bench:_ingest_parquet",
        "ccrm ingest events.parquet into an empty db",
    ),
    Operation(
        "build", "ccrm_core.bench:_build", "ccrm build: every pipeline stage (source records)"
    ),
    # --- Librarian operations ---
    Operation(
        "identity_resolve",
        "ccrm_core.librarian.identity:bench_identity",
        "identity stage: deterministic + Splink matching of all source records (figures: "
        "precision, recall vs ground truth)",
    ),
    Operation(
        "identity_without_contacts",
        "ccrm_core.librarian.identity:bench_identity_without_contacts",
        "resolve_records on the source records with email and phone removed and harder "
        "duplicates (figures: precision, recall vs ground truth)",
    ),
    Operation(
        "standardise",
        "ccrm_core.librarian.identity:bench_standardise",
        "standardise stage: email-validator, phonenumbers E.164, postal codes (source records)",
    ),
    Operation(
        "hygiene_checks",
        "ccrm_core.librarian.identity:bench_hygiene",
        "hygiene stage: every check over every raw table (source records)",
    ),
    Operation(
        "search_p95",
        "ccrm_core.librarian.customer360:bench_search",
        "Customer 360 search: 200 varied queries (figures: p50/p95/max ms, intended-first share)",
    ),
    Operation(
        "timeline_1000_events",
        "ccrm_core.librarian.customer360:bench_timeline",
        "Customer 360 timeline of the customer nearest 1,000 events (figures: p50/p95 ms)",
    ),
    # --- Radar operations ---
    Operation(
        "value_fit",
        "ccrm_core.radar.value:bench_value_fit",
        "BG/NBD + Gamma-Gamma fits on every buyer's summary (figures: fit_s = fits alone)",
    ),
    Operation(
        "segment_filter",
        "ccrm_core.radar.segments:bench_segment_filter",
        "Segment Explorer: 40 live rule counts + scheme switches (figures: p50/p95 ms)",
    ),
    Operation(
        "command_center",
        "ccrm_core.radar.kpis:bench_command_center",
        "Command center: 5 full uncached page computations + cached reruns (figures: ms)",
    ),
    # --- Conductor operations ---
    Operation(
        "attribution_all",
        "ccrm_core.conductor.attribution:bench_attribution_all",
        "1M journeys: generate + path aggregation + all 9 attribution models (figures: "
        "generate_s, paths_s = aggregation, models_s = aggregation + models)",
    ),
    Operation(
        "mmm_fit",
        "ccrm_core.conductor.mmm:bench_mmm_fit",
        "media mix model fit, 2 years daily x 10 channels, 100 bootstrap replicates (days x ch)",
    ),
    Operation(
        "budget_whatif",
        "ccrm_core.conductor.budget:bench_whatif",
        "budget what-if: 300 plans on 12 channels (figures: ms per predict / page refresh)",
    ),
    Operation(
        "destination_export",
        "ccrm_core.conductor.audience:bench_destination_export",
        "export half the customers (CLV >= median) to Google Ads and Meta as activations "
        "(figures: seconds and file rows per destination)",
    ),
    Operation(
        "budget_optimize",
        "ccrm_core.conductor.budget:bench_optimize",
        "budget optimize: 20 SLSQP runs on 12 channels (figures: ms per run)",
    ),
]


# ---------------------------------------------------------------------------------------------


def _child(fn: Callable[[BenchContext], int], ctx: BenchContext, queue) -> None:
    try:
        t0 = time.perf_counter()
        result = fn(ctx)
        seconds = time.perf_counter() - t0
        rows, figures = result if isinstance(result, tuple) else (result, {})
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        queue.put(("ok", rows, seconds, peak_kb / 1024, figures))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}", 0.0, 0.0, {}))


def _measure_once(op: Operation, ctx: BenchContext) -> tuple[int, float, float, dict]:
    mp_ctx = mp.get_context("fork")
    queue = mp_ctx.Queue()
    proc = mp_ctx.Process(target=_child, args=(op.function(), ctx, queue))
    proc.start()
    status, rows, seconds, peak, figures = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"{op.name}: {rows}")
    return rows, seconds, peak, figures


def prepare(ctx: BenchContext, progress: Callable[[str], None] = print) -> None:
    """Generate the company once and lay out raw.duckdb, CSV and Parquet for the operations."""
    from ccrm_core.foundation import store
    from ccrm_core.synthetic import sample

    progress(f"preparing {ctx.customers:,} customers x {BENCH_DAYS} days (seed {BENCH_SEED})")
    data = sample.generate(ctx.customers, BENCH_DAYS, BENCH_SEED)
    # written under a temporary name and renamed last, so an interrupted preparation is redone
    partial = ctx.workdir / "raw.partial.duckdb"
    for leftover in (partial, Path(f"{partial}.wal")):
        leftover.unlink(missing_ok=True)
    con = store.connect_writer(partial)
    try:
        sample.write_sample(con, data)
        del data
        ctx.csv_dir.mkdir(parents=True, exist_ok=True)
        ctx.parquet_dir.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY events TO '{ctx.csv_dir / 'events.csv'}' (HEADER, DELIMITER ',')")
        con.execute(f"COPY events TO '{ctx.parquet_dir / 'events.parquet'}' (FORMAT parquet)")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    partial.rename(ctx.workdir / "raw.duckdb")


def run_bench(
    scale: str,
    only: list[str] | None = None,
    out_dir: Path = Path("bench/results"),
    workdir: Path | None = None,
    progress: Callable[[str], None] = print,
    runs: int | None = None,
) -> list[Measurement]:
    """Run the operations (all, or `only`) at `scale`; `runs` overrides each operation's number
    of runs (the median is reported, so 3 is the norm; 1 for a quick look at the slow ones)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    names = [op.name for op in OPERATIONS]
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ValueError(
                f"unknown operation {', '.join(unknown)}; choose from {', '.join(names)}"
            )
    base = Path(workdir or tempfile.mkdtemp(prefix=f"ccrm-bench-{scale}-"))
    base.mkdir(parents=True, exist_ok=True)
    ctx = BenchContext(
        scale=scale,
        customers=SCALES[scale],
        workdir=base,
        db=base / "built.duckdb",
        csv_dir=base / "csv",
        parquet_dir=base / "parquet",
    )
    if not (base / "raw.duckdb").exists():
        prepare(ctx, progress)
    measurements: list[Measurement] = []
    for op in OPERATIONS:
        # later operations need the built database even when only they were asked for
        wanted = not only or op.name in only
        if not wanted and not (op.name == "build" and not ctx.db.exists()):
            continue
        times, rows, peak, all_figures = [], 0, 0.0, []
        planned = (runs or op.runs) if wanted else 1
        for i in range(planned):
            progress(f"{op.name}: run {i + 1}/{planned}")
            rows, seconds, peak_i, figures = _measure_once(op, ctx)
            times.append(seconds)
            all_figures.append(figures)
            peak = max(peak, peak_i)
        if not wanted:
            continue
        median = statistics.median(times)
        median_run = sorted(range(len(times)), key=times.__getitem__)[len(times) // 2]
        measurements.append(
            Measurement(
                op.name,
                rows,
                median,
                times,
                rows / median if median else 0.0,
                peak,
                op.description,
                all_figures[median_run],
            )
        )
    save(scale, measurements, out_dir)
    return measurements


def save(scale: str, measurements: list[Measurement], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{scale}.json"
    previous = {}
    if path.exists():
        previous = {m["operation"]: m for m in json.loads(path.read_text()).get("operations", [])}
    for m in measurements:
        previous[m.operation] = asdict(m)
    path.write_text(
        json.dumps(
            {
                "scale": scale,
                "customers": SCALES[scale],
                "measured_at": datetime.now().isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "operations": list(previous.values()),
            },
            indent=2,
            default=str,
        )
    )
    return path


def format_table(measurements: list[Measurement]) -> str:
    header = f"{'operation':<26}{'rows':>14}{'median s':>11}{'rows/s':>14}{'peak MB':>10}  figures"
    lines = [header, "-" * len(header)]
    for m in measurements:
        figures = ", ".join(f"{k}={v:,.4g}" for k, v in m.figures.items())
        lines.append(
            f"{m.operation:<26}{m.rows:>14,}{m.median_s:>11.3f}{m.rows_per_s:>14,.0f}"
            f"{m.peak_mb:>10,.0f}  {figures}"
        )
    return "\n".join(lines)
