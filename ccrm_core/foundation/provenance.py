"""Where a stored model's numbers come from: the last day of data it read and when it was
fitted, as one line every model page shows ("data to 30 Jun 2026 · model fitted 2 Dec 2026
13:40, build 3"). A rebuild refits the models, and the same plan or view can then give other
numbers: this line is how a reader tells.

A fit is the latest completed run of the model's build stage in `pipeline_runs` (the wall-clock
end of that run; builds stay reproducible because nothing here is written). The data end is the
last day the model read: the model's own module knows it from its output and passes it in;
when it does not, it is the data end of the database as long as the stage is up to date (no
data loaded and no earlier stage rebuilt since it ran), else unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from ccrm_core.foundation import pipeline, store


@dataclass(frozen=True)
class ModelFit:
    """One model's provenance: its build stage, the last day of data it read, when and in which
    build it was fitted, and why it is out of date (empty when it is not)."""

    stage: str
    data_end: date | None = None
    fitted_at: datetime | None = None
    run_id: int | None = None
    stale: str = ""

    @property
    def fitted(self) -> bool:
        return self.fitted_at is not None

    def fitted_text(self) -> str:
        """'2 Dec 2026 13:40, build 3', or 'not on record' when no build of the stage completed
        (a table written by hand or by an older version)."""
        if self.fitted_at is None:
            return "not on record"
        return f"{self.fitted_at.day} {self.fitted_at:%b %Y %H:%M}, build {self.run_id}"

    def text(self) -> str:
        """'data to 30 Jun 2026 · model fitted 2 Dec 2026 13:40, build 3' (plus '· out of date:
        <why>' when the stage must run again). Plain text: no markup."""
        parts = []
        if self.data_end is not None:
            parts.append(f"data to {self.data_end.day} {self.data_end:%b %Y}")
        parts.append(
            f"model fitted {self.fitted_text()}" if self.fitted else "model fit not on record"
        )
        if self.stale:
            parts.append(f"out of date: {self.stale}; rebuild to refit")
        return " · ".join(parts)


def model_fit(con: duckdb.DuckDBPyConnection, stage: str, data_end: date | None = None) -> ModelFit:
    """The provenance of the model that build stage `stage` fits (see the module docstring);
    `data_end` is the last day of data the model read, when its module knows it."""
    if not store.table_exists(con, "pipeline_runs"):
        return ModelFit(stage, data_end)
    row = con.execute(
        "SELECT run_id, ended_at FROM pipeline_runs WHERE stage = ? AND status = 'ok' "
        "ORDER BY run_id DESC, ended_at DESC LIMIT 1",
        [stage],
    ).fetchall()
    if not row:
        return ModelFit(stage, data_end)
    run_id, ended_at = row[0]
    stale = pipeline.stale_stages(con).get(stage, "")
    if data_end is None and not stale:
        data_end = _last_data_day(con)
    return ModelFit(stage, data_end, ended_at, int(run_id), stale)


def _last_data_day(con: duckdb.DuckDBPyConnection) -> date | None:
    """The last day with an order or event (what a build reads up to); None without either."""
    if not (store.table_exists(con, "orders") and store.table_exists(con, "events")):
        return None
    row = con.execute(
        "SELECT greatest((SELECT max(ts) FROM orders), (SELECT max(ts) FROM events))"
    ).fetchall()[0]
    return row[0].date() if row[0] is not None else None
