"""Frames step of the generator: the raw tables as DataFrames with the data contract's columns
(store.TABLES), built from the integer state of the run, then the ground truth.

Strings, categories, dates and timestamps are made here, once, with the arrow column builders.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ccrm_core.foundation import store
from ccrm_core.synthetic.columns import (
    _LS,
    _dates,
    _dictionary,
    _frame,
    _prefixed,
    _timestamps,
    _vocab,
)
from ccrm_core.synthetic.events import _anon_strings
from ccrm_core.synthetic.parameters import (
    _CONSENT_IDX,
    CATEGORIES,
    CONSENT_CHANNELS,
    EVENT_CHANNELS,
    EVENT_TYPES,
    EXPERIMENT_ID,
    LIFT_TEST_ID,
    MEDIA,
    MEDIA_CHANNELS,
    ORDER_CHANNELS,
    SYSTEMS,
)


class FrameSteps:
    """The raw tables (mixin of _Company)."""

    # -- assemble frames -----------------------------------------------------------------------
    def frames(self) -> dict[str, pd.DataFrame]:
        """{table: DataFrame} for the raw tables, then the ground-truth tables."""
        out: dict[str, pd.DataFrame] = {}
        out["src_customers"] = _frame(self.src)
        out["events"] = self._events_frame()
        out["orders"] = self._orders_frame()
        out["spend"] = self._spend_frame()
        out["consents"] = self._consents_frame()
        out["campaigns"] = self._campaigns_frame()
        out["experiments"] = self._experiments_frame()
        out["ad_consents"] = self._ad_consents_frame()
        out["lift_tests"] = self._lift_tests_frame()
        out.update(self.ground_truth())
        return out

    def _events_frame(self) -> pd.DataFrame:
        """events, in day order."""
        # Events first, releasing each integer column as soon as its arrow column exists: at
        # 1M persons this is the largest table (~25M rows) and sets the peak memory.
        ev = self.ev
        self.ev = None
        rec = ev.pop("record")
        columns = {"event_id": _prefixed("E", np.arange(1, rec.size + 1), 10)}
        columns["ts"] = _timestamps(ev.pop("sec"))
        columns["channel"] = _dictionary(ev.pop("channel"), EVENT_CHANNELS)
        columns["event_type"] = _dictionary(ev.pop("type"), EVENT_TYPES)
        columns["source_system"] = _dictionary(
            np.where(rec >= 0, self.rec_system[np.maximum(rec, 0)], -1), SYSTEMS
        )
        columns["source_id"] = self.record_ids(rec)
        del rec
        anon = ev.pop("anon")
        columns["anonymous_id"] = _anon_strings(self.anon_raw, self.anon_device, anon)
        del anon
        columns["campaign_id"] = _dictionary(ev.pop("campaign"), self.campaign_ids)
        value = ev.pop("value")
        columns["value"] = pa.array(value.astype(np.float64), mask=np.isnan(value))
        del value
        return _frame(columns)

    def _orders_frame(self) -> pd.DataFrame:
        """orders, in time order (ids follow it)."""
        rec = self.o_record
        return _frame(
            {
                "order_id": _prefixed("O", np.arange(1, rec.size + 1), 9),
                "ts": _timestamps(self.seconds(self.o_t)),
                "source_system": _dictionary(self.rec_system[rec], SYSTEMS),
                "source_id": self.record_ids(rec),
                "revenue": self.o_revenue,
                "channel": _dictionary(self.o_channel, ORDER_CHANNELS),
                "category": _dictionary(self.o_category, CATEGORIES),
            }
        )

    def _spend_frame(self) -> pd.DataFrame:
        """spend: one row per media channel and day, impressions from the channel's CPM with
        noise."""
        C, D = self.spend.shape
        ch = np.repeat(np.arange(C), D)
        day = np.tile(np.arange(D), C)
        impressions = np.round(
            self.spend.ravel() / MEDIA["cpm"][ch] * 1000 * self.rng.lognormal(0, 0.1, C * D)
        ).astype(np.int64)
        return _frame(
            {
                "date": _dates(self.start_day + day),
                "channel": _dictionary(ch, MEDIA_CHANNELS),
                "campaign_id": _dictionary(self.camp_of.ravel(), self.campaign_ids),
                "spend": self.spend.ravel(),
                "impressions": impressions,
            }
        )

    def _consents_frame(self) -> pd.DataFrame:
        """consents: one row per record and consentable channel (opted in at creation, or the
        opt-out on the record it was made on)."""
        R = self.R
        cc = np.tile(np.arange(len(CONSENT_CHANNELS)), R)
        rec = np.repeat(np.arange(R), len(CONSENT_CHANNELS))
        c_add = _CONSENT_IDX[cc]
        ts = self.rec_created[rec].copy()
        status = np.zeros(rec.size, dtype=np.int8)
        out_rec = self.optout_rec[self.rec_person[rec], c_add]
        is_out = out_rec == rec
        status[is_out] = 1
        ts[is_out] = self.t_out[self.rec_person[rec[is_out]], c_add[is_out]]
        return _frame(
            {
                "source_system": _dictionary(self.rec_system[rec], SYSTEMS),
                "source_id": self.record_ids(rec),
                "channel": _dictionary(cc, CONSENT_CHANNELS),
                "status": _dictionary(status, store.CONSENT_STATUSES),
                "ts": _timestamps(self.seconds(ts)),
            }
        )

    def _ad_consents_frame(self) -> pd.DataFrame:
        """ad_consents: for each asked person, one row per record and purpose (opted in at the
        record's creation, or the opt-out on the record it was made on)."""
        purposes = len(store.AD_CONSENT_PURPOSES)
        records = np.flatnonzero(self.ad_asked[self.rec_person])
        rec = np.repeat(records, purposes)
        k = np.tile(np.arange(purposes), records.size)
        person = self.rec_person[rec]
        ts = self.rec_created[rec].copy()
        is_out = self.ad_optout_rec[person, k] == rec
        ts[is_out] = self.ad_t_out[person[is_out], k[is_out]]
        return _frame(
            {
                "source_system": _dictionary(self.rec_system[rec], SYSTEMS),
                "source_id": self.record_ids(rec),
                "purpose": _dictionary(k, store.AD_CONSENT_PURPOSES),
                "status": _dictionary(is_out.astype(np.int8), store.CONSENT_STATUSES),
                "ts": _timestamps(self.seconds(ts)),
            }
        )

    def _lift_tests_frame(self) -> pd.DataFrame:
        """lift_tests: the planted lift test readout (incremental revenue), if any."""
        rows = self.lift_rows
        return _frame(
            {
                "test_id": _vocab([LIFT_TEST_ID] * len(rows)),
                "channel": _vocab([MEDIA_CHANNELS[r[0]] for r in rows]),
                "start_date": _dates(np.array([self.start_day + r[1] for r in rows], np.int64)),
                "end_date": _dates(np.array([self.start_day + r[2] for r in rows], np.int64)),
                "metric": _vocab(["revenue"] * len(rows)),
                "lift": np.array([r[3] for r in rows], dtype=np.float64),
                "standard_error": np.array([r[4] for r in rows], dtype=np.float64),
            }
        )

    def _campaigns_frame(self) -> pd.DataFrame:
        """campaigns, the A/B test's email last."""
        rows = self.campaign_rows
        return _frame(
            {
                "campaign_id": _vocab(self.campaign_ids),
                "name": _vocab([r[0] for r in rows]),
                "channel": _vocab([r[1] for r in rows]),
                "offer": pa.array([r[2] for r in rows], type=_LS),
                "start_date": _dates(np.array([self.start_day + r[3] for r in rows])),
                "end_date": _dates(np.array([self.start_day + r[4] for r in rows])),
            }
        )

    def _experiments_frame(self) -> pd.DataFrame:
        """experiments: one row per assigned person, on the primary record."""
        prim = self.primary_rec[self.exp_person]
        return _frame(
            {
                "experiment_id": _vocab([EXPERIMENT_ID] * prim.size),
                "source_system": _dictionary(self.rec_system[prim], SYSTEMS),
                "source_id": self.record_ids(prim),
                "arm": _dictionary(self.exp_arm, ("control", "treatment")),
                "assigned_at": _timestamps(
                    np.full(prim.size, self.seconds(np.array([self.exp_t]))[0])
                ),
            }
        )
