"""One generation run of the synthetic company: its size, window, random generator and calendar.

`_Company` holds the state of the run; the steps that plant each part of the truth live in the
step modules it combines (people, media, records, purchases, events, source records, frames,
ground truth), each a mixin over the same state. `sample.generate` calls the steps in order.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from ccrm_core.synthetic.activations import ActivationSteps
from ccrm_core.synthetic.events import EventSteps
from ccrm_core.synthetic.frames import FrameSteps
from ccrm_core.synthetic.ground_truth import GroundTruthSteps
from ccrm_core.synthetic.media import MediaSteps
from ccrm_core.synthetic.parameters import (
    _DAY_S,
    _WEEKDAY_LIFT,
    EXPERIMENT_DAYS_BEFORE_END,
    EXPERIMENT_WINDOW_DAYS,
    MEDIA_CHANNELS,
    MIN_CUSTOMERS,
    MIN_DAYS,
    PRE_WINDOW_YEARS,
    SAMPLE_ACTIVATIONS,
    STALE_YEARS,
)
from ccrm_core.synthetic.people import PeopleSteps
from ccrm_core.synthetic.purchases import PurchaseSteps
from ccrm_core.synthetic.records import RecordSteps
from ccrm_core.synthetic.source_records import SourceRecordSteps


class _Company(
    PeopleSteps,
    MediaSteps,
    RecordSteps,
    PurchaseSteps,
    ActivationSteps,
    EventSteps,
    SourceRecordSteps,
    FrameSteps,
    GroundTruthSteps,
):
    """Holds the state of one generation run; each method plants one part of the truth.

    Time inside the generator is float days since the window start (00:00 of the first day);
    the window is [0, days). Persons acquired before the window have negative times.
    """

    def __init__(
        self,
        customers: int,
        days: int,
        seed: int,
        end_date: date,
        collinear: tuple[str, str] | None = None,
        lift_test_channel: str | None = None,
        activations: bool = True,
    ) -> None:
        if customers < MIN_CUSTOMERS:
            raise ValueError(f"customers must be at least {MIN_CUSTOMERS} (got {customers})")
        if days < MIN_DAYS:
            raise ValueError(f"days must be at least {MIN_DAYS} (got {days})")
        for channel in (*(collinear or ()), *([lift_test_channel] if lift_test_channel else [])):
            if channel not in MEDIA_CHANNELS:
                raise ValueError(f"unknown media channel {channel!r}; one of {MEDIA_CHANNELS}")
        if collinear is not None and (len(collinear) != 2 or collinear[0] == collinear[1]):
            raise ValueError(f"collinear takes two different channels, got {collinear!r}")
        self.collinear = tuple(collinear) if collinear is not None else None
        self.lift_test_channel = lift_test_channel
        self.activation_specs = SAMPLE_ACTIVATIONS if activations else ()
        self.n = int(customers)
        self.D = int(days)
        self.seed = int(seed)
        self.end = end_date
        self.start = end_date - timedelta(days=days - 1)
        self.start_day = (self.start - date(1970, 1, 1)).days
        self.rng = np.random.Generator(np.random.PCG64(seed))
        # The A/B test starts 90 days before the end (a third of short windows) and runs 30 days.
        self.exp_before_end = min(EXPERIMENT_DAYS_BEFORE_END, max(self.D // 3, 2))
        self.exp_window = min(EXPERIMENT_WINDOW_DAYS, self.exp_before_end - 1)
        try:
            stale = end_date.replace(year=end_date.year - STALE_YEARS)
        except ValueError:  # 29 February
            stale = end_date.replace(year=end_date.year - STALE_YEARS, day=28)
        self.t_stale = float((stale - self.start).days)
        # Seasonal acceptance a(day) in [0.7, 1] for every day the simulation can touch.
        self.acc_first = self.start_day - int(PRE_WINDOW_YEARS * 366) - 30
        eday = np.arange(self.acc_first, self.start_day + self.D + 2)
        self.acceptance = self._acceptance(eday)
        self.abar = float(self._acceptance(np.arange(0, 4 * 365 + 1)).mean())

    # -- calendar ------------------------------------------------------------------------------
    @staticmethod
    def _acceptance(epoch_days: np.ndarray) -> np.ndarray:
        """Purchase acceptance for thinning: weekends and November-December higher."""
        d = np.asarray(epoch_days, dtype=np.int64)
        weekday = (d + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        dates = d.astype("datetime64[D]")
        doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
        # Holiday season: ramps up through November, plateau to Christmas Eve, then back.
        yearly = 0.1 + 0.9 * np.clip((doy - 300.0) / 25.0, 0, 1) * np.clip(
            (362.0 - doy) / 5.0, 0, 1
        )
        return 0.7 + 0.3 * (0.5 * _WEEKDAY_LIFT[weekday] + 0.5 * yearly)

    def acc_at(self, t: np.ndarray) -> np.ndarray:
        return self.acceptance[np.floor(t).astype(np.int64) + (self.start_day - self.acc_first)]

    def seconds(self, t: np.ndarray) -> np.ndarray:
        """Generator time (days since window start) -> epoch seconds (int64)."""
        return np.round((np.asarray(t, dtype=np.float64) + self.start_day) * _DAY_S).astype(
            np.int64
        )

    def day_index(self, t: np.ndarray) -> np.ndarray:
        return np.clip(np.floor(t).astype(np.int64), 0, self.D - 1)
