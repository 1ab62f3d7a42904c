"""`ccrm build`: a pipeline of named, idempotent stages.

Each stage is a function `run(con, ctx) -> int` (rows written) that reads raw tables and the
outputs of earlier stages and replaces its own output tables. The runner wraps every stage in one
transaction: a stage that fails is rolled back, so the previous outputs of every stage stay intact
and readers see each stage's tables before or after, never half-built. Every attempt is recorded in
`pipeline_runs` (stage, start, end, rows, status, error). A failure stops the build: later stages
are recorded as `skipped` so they never run on stale inputs.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import pandas as pd

from ccrm_core.foundation import store


@dataclass(frozen=True)
class Stage:
    name: str
    target: str  # "module:function"
    description: str
    settings: tuple[str, ...] = ()  # what `ccrm build --param STAGE.SETTING=...` may set

    def function(self) -> Callable[[duckdb.DuckDBPyConnection, BuildContext], int]:
        module, func = self.target.split(":")
        return getattr(importlib.import_module(module), func)


# Order matters: a stage may read the outputs of any stage above it.
STAGES: tuple[Stage, ...] = (
    # --- Librarian stages: standardise before identity, hygiene after it ---
    Stage(
        "standardise",
        "ccrm_core.librarian.standardise:standardise_stage",
        "standardised copies of contact fields: names, email, E.164 phone, postal codes, dates",
        settings=("default_country",),
    ),
    Stage(
        "identity",
        "ccrm_core.librarian.identity:identity_stage",
        "deterministic + probabilistic (Splink) links into customers (identity_map, customers)",
        settings=("threshold", "pair_floor", "min_train_records", "threads", "link_only_systems"),
    ),
    Stage(
        "sample_activations",
        "ccrm_core.synthetic.activations:sample_activations_stage",
        "the sample's planted activations recorded as exports (only on `ccrm sample` data; "
        "after identity, before the media mix model that reads them)",
    ),
    Stage(
        "hygiene",
        "ccrm_core.librarian.hygiene:hygiene_stage",
        "hygiene checks in five dimensions per table, field and source (hygiene_checks)",
        settings=("stale_days", "silent_days"),
    ),
    Stage(
        "daily_kpis",
        "ccrm_core.radar.kpis:daily_kpis_stage",
        "daily orders, revenue, active and new customers per sales channel and source system",
    ),
    # --- Radar stages: value, segments, KPIs ---
    Stage(
        "value",
        "ccrm_core.radar.value:value_stage",
        "RFM summary and scores, BG/NBD + Gamma-Gamma fits, 12-month CLV, holdout check",
        settings=("months", "monthly_discount_rate", "holdout_weeks"),
    ),
    Stage(
        "segments",
        "ccrm_core.radar.segments:segments_stage",
        "mart_customer: RFM segments, value tiers, needs-based segments, behaviour columns",
        settings=("k_min", "k_max", "seed"),
    ),
    Stage(
        "customer_kpis",
        "ccrm_core.radar.kpis:customer_kpis_stage",
        "per-customer KPI facts, segment membership, daily KPIs and active spells by segment",
        settings=("active_windows",),
    ),
    Stage(
        "radar_funnel",
        "ccrm_core.radar.kpis:radar_funnel_stage",
        "funnel by segment, monthly cohort retention, journeys to first purchase",
        settings=("journey_lookback_days", "loyal_min_orders"),
    ),
    Stage(
        "kpi_alerts",
        "ccrm_core.radar.kpis:kpi_alerts_stage",
        "daily and weekly KPI forecasts with prediction bands; points outside are alerts",
        settings=(
            "z",
            "knot_days",
            "weekly_harmonics",
            "yearly_harmonics",
            "horizon_days",
            "burn_in_days",
            "sustained_days",
            "run_z",
            "min_daily_orders",
        ),
    ),
    # --- Conductor stages: paths, attribution, mmm, reconcile ---
    Stage(
        "paths",
        "ccrm_core.conductor.journeys:paths_stage",
        "customer journeys of addressable touches before each order, per segment (mart_paths)",
        settings=("lookback_days", "max_touches", "touch_types"),
    ),
    Stage(
        "attribution",
        "ccrm_core.conductor.attribution:attribution_stage",
        "heuristic, Markov (orders 1-3) and Shapley attribution per segment (mart_attribution)",
        settings=("half_life", "markov_orders"),
    ),
    Stage(
        "mmm",
        "ccrm_core.conductor.mmm:mmm_stage",
        "media mix model: adstock + Hill per channel, ROI, response curves (mart_response_curves)",
        settings=("ridge", "bootstrap", "block_days", "seed", "trend_degree", "yearly_order"),
    ),
    Stage(
        "reconcile",
        "ccrm_core.conductor.attribution:reconcile_stage",
        "attribution vs media mix model per channel, calibration factors, experiment readout",
        settings=("model", "experiment_window_days"),
    ),
    # --- Customer 360 stages: search, timeline, propensity, next best action ---
    Stage(
        "search_index",
        "ccrm_core.librarian.customer360:search_index_stage",
        "normalised search keys (name words, email, phone digits, ids) for Customer 360 search",
    ),
    Stage(
        "customer_timeline",
        "ccrm_core.librarian.customer360:customer_timeline_stage",
        "every linked event and order per customer, time-sorted (customer_timeline)",
    ),
    Stage(
        "propensity",
        "ccrm_core.radar.propensity:propensity_stage",
        "buy-in-30-days and churn models on a time split; scores and holdout AUC",
    ),
    Stage(
        "nba",
        "ccrm_core.conductor.decisioning:nba_stage",
        "next best action per customer under the contact policy (mart_nba)",
        settings=("policy_path",),
    ),
)


_STAGE_SETTINGS = {s.name: s.settings for s in STAGES}


@dataclass
class BuildContext:
    """What every stage may read besides the database.

    `as_of` is the day the data ends (the last order or event), so results do not depend on the
    wall clock; `params` holds per-stage settings (e.g. {"paths": {"lookback_days": 30}}).
    """

    as_of: date
    run_id: int
    params: dict = field(default_factory=dict)

    def param(self, stage: str, name: str, default):
        """The setting `name` of `stage` as given to the build, else `default`. Every setting a
        stage reads is listed in its Stage.settings, so `--param` can refuse unknown ones."""
        if name not in _STAGE_SETTINGS.get(stage, ()):
            raise KeyError(f"stage {stage} reads setting {name!r}, which its Stage does not list")
        return self.params.get(stage, {}).get(name, default)


@dataclass
class StageResult:
    stage: str
    status: str  # ok, failed, skipped
    rows: int | None
    seconds: float
    error: str | None = None


class UnknownStageError(ValueError):
    pass


def parse_params(items: list[str]) -> dict:
    """Stage settings from `STAGE.NAME=VALUE` strings (as `ccrm build --param` takes them) into
    {"stage": {"name": value}}; values are read as int, float, true/false, else text."""
    params: dict[str, dict] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        stage, dot, name = key.strip().partition(".")
        if not sep or not dot or not stage or not name:
            raise ValueError(f"--param {item!r} is not STAGE.NAME=VALUE (e.g. mmm.bootstrap=50)")
        if stage not in stage_names():
            raise UnknownStageError(
                f"--param {item!r}: unknown stage {stage}; choose from: {', '.join(stage_names())}"
            )
        known = _STAGE_SETTINGS[stage]
        if name.strip() not in known:
            choices = f"its settings are: {', '.join(known)}" if known else "it has no settings"
            raise UnknownStageError(
                f"--param {item!r}: stage {stage} has no setting {name.strip()}; {choices}"
            )
        value: object = raw.strip()
        lowered = str(value).lower()
        if lowered in ("true", "false"):
            value = lowered == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    continue
        params.setdefault(stage, {})[name.strip()] = value
    return params


def stage_names() -> list[str]:
    return [s.name for s in STAGES]


def data_end_date(con: duckdb.DuckDBPyConnection) -> date:
    """The last day with an order or event; today for an empty database."""
    row = con.execute(
        "SELECT greatest((SELECT max(ts) FROM orders), (SELECT max(ts) FROM events))"
    ).fetchall()[0]
    return row[0].date() if row[0] is not None else date.today()


def replace_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> int:
    """Replace a pipeline output table with the contents of a DataFrame; returns its rows.

    A text column with no values at all (an empty source, a field no record fills) is stored as
    VARCHAR, not DuckDB's NULL type, so later stages can still apply text functions to it."""
    con.complete()  # finish any result a caller left open (duckdb 2 refuses register otherwise)
    empty_text = [c for c in frame.columns if frame[c].dtype == object and frame[c].isna().all()]
    if empty_text:
        frame = frame.astype(dict.fromkeys(empty_text, "str"))
    con.register("_ccrm_frame", frame)
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {store.quote_ident(name)} AS SELECT * FROM _ccrm_frame"  # noqa: S608 our table name
        )
    finally:
        con.unregister("_ccrm_frame")
    return len(frame)


def _record(con, run_id: int, stage: str, started: datetime, ended, rows, status, error) -> None:
    con.execute(
        "INSERT INTO pipeline_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
        [run_id, stage, started, ended, rows, status, error],
    )


def build(
    con: duckdb.DuckDBPyConnection,
    stages: list[str] | None = None,
    params: dict | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[StageResult]:
    """Run the named stages (all by default) in pipeline order; returns one result per stage.

    `progress(stage, index, total)` is called before each stage starts.
    """
    known = stage_names()
    wanted = stages or known
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise UnknownStageError(
            f"unknown stage {', '.join(unknown)}; choose from: {', '.join(known)}"
        )
    selected = [s for s in STAGES if s.name in wanted]
    run_id = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM pipeline_runs").fetchall()[0][0]
    ctx = BuildContext(as_of=data_end_date(con), run_id=run_id, params=params or {})
    results: list[StageResult] = []
    failed = False
    for index, stage in enumerate(selected):
        started = datetime.now()
        if failed:
            with store.transaction(con):
                _record(
                    con,
                    run_id,
                    stage.name,
                    started,
                    started,
                    None,
                    "skipped",
                    "an earlier stage failed",
                )
            results.append(StageResult(stage.name, "skipped", None, 0.0, "an earlier stage failed"))
            continue
        if progress:
            progress(stage.name, index, len(selected))
        t0 = time.perf_counter()
        cur = con.cursor()
        try:
            with store.transaction(cur):
                rows = int(stage.function()(cur, ctx) or 0)
                # the 'ok' row commits with the stage's tables: recorded after the COMMIT, a
                # crash in between left new outputs that the log said were never built
                _record(cur, run_id, stage.name, started, datetime.now(), rows, "ok", None)
        except Exception as exc:  # noqa: BLE001 - any stage error is reported, never half-applied
            message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            seconds = time.perf_counter() - t0
            with store.transaction(con):
                _record(con, run_id, stage.name, started, datetime.now(), None, "failed", message)
            results.append(StageResult(stage.name, "failed", None, seconds, message))
            failed = True
            continue
        finally:
            cur.close()
        seconds = time.perf_counter() - t0
        results.append(StageResult(stage.name, "ok", rows, seconds))
    if progress:
        progress("done", len(selected), len(selected))
    return results


def last_build(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The stages of the most recent build: stage, status, rows, seconds, error."""
    return con.execute(
        """
        SELECT run_id, stage, status, rows, started_at, ended_at,
               date_diff('millisecond', started_at, ended_at) / 1000.0 AS seconds, error
        FROM pipeline_runs
        WHERE run_id = (SELECT max(run_id) FROM pipeline_runs)
        ORDER BY started_at
        """
    ).df()


def completed_stages(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The stages that have completed at least once."""
    if not store.table_exists(con, "pipeline_runs"):
        return set()
    rows = con.execute("SELECT DISTINCT stage FROM pipeline_runs WHERE status = 'ok'").fetchall()
    return {r[0] for r in rows}


def build_needed(con: duckdb.DuckDBPyConnection) -> bool:
    """True unless every stage's outputs come from one consistent, complete build newer than
    the last ingest; `stale_stages` says which stages are out of date and why."""
    return bool(stale_stages(con))


def stale_stages(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """stage -> why it must run again, in pipeline order (empty when the build is up to date).

    A stage is stale when it never completed, when its latest attempt failed or was skipped,
    when it last completed before the last ingest ended (it read older raw data), or when it
    last started before an earlier stage last finished (it read that stage's older outputs:
    a build killed or failed halfway, or `--stage` run alone). So a build that stopped halfway
    is never taken for an up-to-date one."""
    if not store.table_exists(con, "pipeline_runs"):
        return {s.name: "never built" for s in STAGES}
    rows = con.execute(
        """
        SELECT stage, arg_max(status, (run_id, started_at)) AS last_status,
               max(started_at) FILTER (WHERE status = 'ok') AS ok_started,
               max(ended_at) FILTER (WHERE status = 'ok') AS ok_ended
        FROM pipeline_runs GROUP BY stage
        """
    ).fetchall()
    runs = {r[0]: r[1:] for r in rows}
    last_ingest = con.execute(
        "SELECT max(ended_at) FROM ingest_log WHERE status = 'loaded'"
    ).fetchall()[0][0]
    stale: dict[str, str] = {}
    upstream_ended = None  # when the latest completed run of an earlier stage finished
    for stage in STAGES:
        last_status, ok_started, ok_ended = runs.get(stage.name, (None, None, None))
        if ok_started is None:
            stale[stage.name] = "never completed"
        elif last_status != "ok":
            stale[stage.name] = f"its last run {last_status}"
        elif last_ingest is not None and ok_started < last_ingest:
            stale[stage.name] = "data was loaded after it last ran"
        elif upstream_ended is not None and ok_started < upstream_ended:
            stale[stage.name] = "an earlier stage ran again after it"
        if ok_ended is not None:
            upstream_ended = max(upstream_ended or ok_ended, ok_ended)
    return stale
