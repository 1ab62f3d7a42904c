"""Ground-truth step of the generator: what was planted, as tables next to the raw data, so
tests can measure recovery (GROUND_TRUTH_TABLES holds their schemas; the sample module's
docstring says what each holds). Media contributions, experiment rates and anomaly magnitudes
are measured on the final data, not taken from the plan.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from ccrm_core.foundation import store
from ccrm_core.synthetic import vocabulary as vocab
from ccrm_core.synthetic.columns import _dates, _dictionary, _frame, _prefixed, _timestamps
from ccrm_core.synthetic.events import _anon_strings
from ccrm_core.synthetic.parameters import (
    _CONSENT_IDX,
    ADDRESSABLE,
    ANOMALY_DROP_CHANNEL,
    ANOMALY_DROP_DAYS,
    BTYD_PARAMS,
    CONSENT_CHANNELS,
    DEFECT_RATES,
    EXPERIMENT_ID,
    EXPERIMENT_UPLIFT,
    MEDIA,
    MEDIA_CHANNELS,
    PERSONAS,
    SYSTEMS,
)

# Ground-truth tables: name -> ((column, DuckDB type), ...). Written by write_sample.
GROUND_TRUTH_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "ground_truth_identity": (
        ("source_system", "VARCHAR"),
        ("source_id", "VARCHAR"),
        ("person_id", "BIGINT"),
    ),
    "ground_truth_anonymous": (("anonymous_id", "VARCHAR"), ("person_id", "BIGINT")),
    "ground_truth_persons": (
        ("person_id", "BIGINT"),
        ("persona", "VARCHAR"),
        ("acquired_at", "TIMESTAMP"),
        ("purchase_rate", "DOUBLE"),
        ("dropout_prob", "DOUBLE"),
        ("spend_rate", "DOUBLE"),
        ("expected_order_value", "DOUBLE"),
        ("acquired_in_window", "BOOLEAN"),
        ("acquisition_source", "VARCHAR"),
        ("dropped_out_at", "TIMESTAMP"),
        ("country", "VARCHAR"),
        ("records", "INTEGER"),
        ("primary_source_system", "VARCHAR"),
        ("primary_source_id", "VARCHAR"),
        ("btyd_orders", "INTEGER"),
        ("media_orders", "INTEGER"),
        ("experiment_orders", "INTEGER"),
        ("activation_orders", "INTEGER"),
    ),
    "ground_truth_defects": (
        ("table_name", "VARCHAR"),
        ("column_name", "VARCHAR"),
        ("dimension", "VARCHAR"),
        ("defect", "VARCHAR"),
        ("planted_rows", "BIGINT"),
        ("total_rows", "BIGINT"),
        ("planted_rate", "DOUBLE"),
    ),
    "ground_truth_defect_rows": (
        ("table_name", "VARCHAR"),
        ("source_system", "VARCHAR"),
        ("source_id", "VARCHAR"),
        ("column_name", "VARCHAR"),
        ("defect", "VARCHAR"),
    ),
    "ground_truth_variations": (
        ("variation", "VARCHAR"),
        ("records", "BIGINT"),
        ("duplicate_records", "BIGINT"),
        ("rate", "DOUBLE"),
    ),
    "ground_truth_btyd": (("parameter", "VARCHAR"), ("value", "DOUBLE")),
    "ground_truth_channels": (
        ("channel", "VARCHAR"),
        ("addressable", "BOOLEAN"),
        ("adstock_decay", "DOUBLE"),
        ("hill_half_saturation", "DOUBLE"),
        ("hill_slope", "DOUBLE"),
        ("beta", "DOUBLE"),
        ("total_spend", "DOUBLE"),
        ("true_contribution", "DOUBLE"),
        ("true_roi", "DOUBLE"),
        ("true_share", "DOUBLE"),
        ("acquisitions", "BIGINT"),
    ),
    "ground_truth_media_orders": (
        ("order_id", "VARCHAR"),
        ("channel", "VARCHAR"),
        ("acquisition", "BOOLEAN"),
    ),
    "ground_truth_contributions": (
        ("date", "DATE"),
        ("channel", "VARCHAR"),
        ("contribution", "DOUBLE"),
    ),
    "ground_truth_consent": (
        ("person_id", "BIGINT"),
        ("channel", "VARCHAR"),
        ("status", "VARCHAR"),
    ),
    "ground_truth_experiment": (
        ("experiment_id", "VARCHAR"),
        ("control_rate", "DOUBLE"),
        ("treatment_rate", "DOUBLE"),
        ("true_lift", "DOUBLE"),
        ("window_days", "INTEGER"),
        ("assigned_at", "TIMESTAMP"),
        ("control_n", "BIGINT"),
        ("treatment_n", "BIGINT"),
        ("planted_uplift", "DOUBLE"),
    ),
    "ground_truth_anomalies": (
        ("kind", "VARCHAR"),
        ("channel", "VARCHAR"),
        ("start_date", "DATE"),
        ("end_date", "DATE"),
        ("magnitude", "DOUBLE"),
    ),
    "ground_truth_sample": (("parameter", "VARCHAR"), ("value", "VARCHAR")),
    # planted activations (synthetic.activations): one row per activation, then its members
    "ground_truth_activation": (
        ("activation", "VARCHAR"),
        ("scheme", "VARCHAR"),
        ("segment", "VARCHAR"),
        ("destination", "VARCHAR"),
        ("holdout_share", "DOUBLE"),
        ("exported_at", "TIMESTAMP"),
        ("window_days", "INTEGER"),
        ("members", "BIGINT"),
        ("treated", "BIGINT"),
        ("control", "BIGINT"),
        ("planted_uplift", "DOUBLE"),
        ("treated_conversion", "DOUBLE"),
        ("treated_conversion_without", "DOUBLE"),
        ("control_conversion", "DOUBLE"),
        ("true_lift", "DOUBLE"),
        ("activation_orders", "BIGINT"),
        ("true_incremental_revenue", "DOUBLE"),
        ("true_incremental_revenue_per_person", "DOUBLE"),
    ),
    "ground_truth_activation_members": (
        ("activation", "VARCHAR"),
        ("person_id", "BIGINT"),
        ("source_system", "VARCHAR"),
        ("source_id", "VARCHAR"),
        ("held_out", "BOOLEAN"),
    ),
    # per person and advertising purpose: opt_in, opt_out, or NULL (never asked)
    "ground_truth_ad_consent": (
        ("person_id", "BIGINT"),
        ("purpose", "VARCHAR"),
        ("status", "VARCHAR"),
    ),
}


class GroundTruthSteps:
    """The ground-truth tables (mixin of _Company)."""

    def ground_truth(self) -> dict[str, pd.DataFrame]:
        """{table: DataFrame} for every table of GROUND_TRUTH_TABLES, in its order."""
        gt: dict[str, pd.DataFrame] = {}
        gt["ground_truth_identity"] = _frame(
            {
                "source_system": _dictionary(self.rec_system, SYSTEMS),
                "source_id": self.rec_ids,
                "person_id": self.rec_person + 1,
            }
        )
        gt["ground_truth_anonymous"] = self._anonymous_truth()
        gt["ground_truth_persons"] = self._persons_truth()
        gt.update(self._defect_truth())
        dups = self.variation_counts["duplicate_records"]
        gt["ground_truth_variations"] = pd.DataFrame(
            [
                (k, v, dups, v / dups if dups else 0.0)
                for k, v in self.variation_counts.items()
                if k != "duplicate_records"
            ],
            columns=["variation", "records", "duplicate_records", "rate"],
        )
        b = BTYD_PARAMS
        gt["ground_truth_btyd"] = pd.DataFrame(
            {"parameter": list(b), "value": [float(v) for v in b.values()]}
        )
        gt.update(self._media_truth())
        gt["ground_truth_consent"] = self._consent_truth()
        gt["ground_truth_experiment"] = self._experiment_truth()
        gt["ground_truth_anomalies"] = self._anomaly_truth()
        gt["ground_truth_sample"] = pd.DataFrame(
            {
                "parameter": ["customers", "days", "seed", "start_date", "end_date", "generator"],
                "value": [
                    str(self.n),
                    str(self.D),
                    str(self.seed),
                    self.start.isoformat(),
                    self.end.isoformat(),
                    "ccrm_core.sample v1",
                ],
            }
        )
        gt["ground_truth_ad_consent"] = self._ad_consent_truth()
        gt.update(self._activation_truth())
        return gt

    def _anonymous_truth(self) -> pd.DataFrame:
        """Anonymous id -> person_id (NULL: a prospect who never logs in)."""
        owner = self.anon_owner
        frame = pd.DataFrame(
            {
                "anonymous_id": _anon_strings(
                    self.anon_raw, self.anon_device, np.arange(owner.size)
                ).to_pandas(),
                "person_id": pd.array(np.where(owner >= 0, owner + 1, 0), dtype="Int64"),
            }
        )
        frame.loc[owner < 0, "person_id"] = pd.NA
        return frame

    def _persons_truth(self) -> pd.DataFrame:
        """One row per person: persona, acquisition, BTYD parameters, records, orders by cause."""
        n = self.n
        # Per person order counts by kind (as they are in the orders table).
        counts = np.zeros((n, 5), dtype=np.int64)
        np.add.at(counts, (self.o_person, self.o_kind), 1)
        src_codes = np.where(
            self.acq_source == -1, 0, np.where(self.acq_source == 99, 1, 2 + self.acq_source)
        )
        source_vocab = ["organic", "spike", *MEDIA_CHANNELS]
        death = self.death
        alive = ~np.isfinite(death)
        prim = self.primary_rec
        b = BTYD_PARAMS
        return _frame(
            {
                "person_id": np.arange(1, n + 1),
                "persona": _dictionary(self.persona, PERSONAS),
                "acquired_at": _timestamps(self.seconds(self.t0)),
                "purchase_rate": self.lam,
                "dropout_prob": self.pdrop,
                "spend_rate": self.nu,
                "expected_order_value": b["p"] / self.nu,
                "acquired_in_window": self.t0 >= 0,
                "acquisition_source": _dictionary(src_codes, source_vocab),
                "dropped_out_at": _timestamps(
                    self.seconds(np.where(alive, 0.0, death)), null=alive
                ),
                "country": _dictionary(self.country, vocab.COUNTRIES),
                "records": self.n_rec.astype(np.int32),
                "primary_source_system": _dictionary(self.rec_system[prim], SYSTEMS),
                "primary_source_id": self.record_ids(prim),
                "btyd_orders": (counts[:, 0] + counts[:, 1]).astype(np.int32),
                "media_orders": counts[:, 2].astype(np.int32),
                "experiment_orders": counts[:, 3].astype(np.int32),
                "activation_orders": counts[:, 4].astype(np.int32),
            }
        )

    def _defect_truth(self) -> dict[str, pd.DataFrame]:
        """ground_truth_defects (planted rate per column and defect) and ground_truth_defect_rows
        (the exact src_customers rows)."""
        R = self.R
        gt: dict[str, pd.DataFrame] = {}
        rows, row_parts = [], []
        for column, d, dim, _rate in DEFECT_RATES:
            idx = self.defect[(column, d)]
            rows.append(("src_customers", column, dim, d, idx.size, R, idx.size / R))
            row_parts.append((idx, column, d))
        gt["ground_truth_defects"] = pd.DataFrame(
            rows, columns=[c for c, _ in GROUND_TRUTH_TABLES["ground_truth_defects"]]
        )
        all_idx = np.concatenate([p[0] for p in row_parts])
        columns = list(dict.fromkeys(p[1] for p in row_parts))
        defects = list(dict.fromkeys(p[2] for p in row_parts))
        col_code = np.concatenate([np.full(p[0].size, columns.index(p[1])) for p in row_parts])
        def_code = np.concatenate([np.full(p[0].size, defects.index(p[2])) for p in row_parts])
        gt["ground_truth_defect_rows"] = _frame(
            {
                "table_name": _dictionary(np.zeros(all_idx.size, np.int8), ["src_customers"]),
                "source_system": _dictionary(self.rec_system[all_idx], SYSTEMS),
                "source_id": self.record_ids(all_idx),
                "column_name": _dictionary(col_code, columns),
                "defect": _dictionary(def_code, defects),
            }
        )
        return gt

    def _media_truth(self) -> dict[str, pd.DataFrame]:
        """ground_truth_media_orders, ground_truth_channels and ground_truth_contributions, from
        the realised media-driven orders (revenue per channel and day, in currency)."""
        gt: dict[str, pd.DataFrame] = {}
        C, D = self.spend.shape
        contrib = np.zeros((C, D))
        m = self.o_media >= 0
        np.add.at(contrib, (self.o_media[m], self.day_index(self.o_t[m])), self.o_revenue[m])
        contrib = np.round(contrib, 2)
        total = contrib.sum(axis=1)
        acq = np.bincount(self.o_media[m & (self.o_kind == 1)], minlength=C)
        media_idx = np.flatnonzero(m)
        gt["ground_truth_media_orders"] = _frame(
            {
                "order_id": _prefixed("O", media_idx + 1, 9),
                "channel": _dictionary(self.o_media[media_idx], MEDIA_CHANNELS),
                "acquisition": self.o_kind[media_idx] == 1,
            }
        )
        spend_total = self.spend.sum(axis=1)
        gt["ground_truth_channels"] = pd.DataFrame(
            {
                "channel": list(MEDIA_CHANNELS),
                "addressable": [c in ADDRESSABLE for c in MEDIA_CHANNELS],
                "adstock_decay": MEDIA["decay"],
                "hill_half_saturation": self.half_saturation,
                "hill_slope": MEDIA["slope"],
                "beta": self.beta,
                "total_spend": spend_total,
                "true_contribution": total,
                "true_roi": np.divide(total, spend_total, out=np.zeros(C), where=spend_total > 0),
                "true_share": total / total.sum() if total.sum() > 0 else np.zeros(C),
                "acquisitions": acq,
            }
        )
        ch = np.repeat(np.arange(C), D)
        day = np.tile(np.arange(D), C)
        gt["ground_truth_contributions"] = _frame(
            {
                "date": _dates(self.start_day + day),
                "channel": _dictionary(ch, MEDIA_CHANNELS),
                "contribution": contrib.ravel(),
            }
        )
        return gt

    def _consent_truth(self) -> pd.DataFrame:
        """Latest consent status per person and consentable channel (opted-out persons' latest
        row is the opt-out)."""
        n = self.n
        pid = np.repeat(np.arange(n), len(CONSENT_CHANNELS))
        cc = np.tile(np.arange(len(CONSENT_CHANNELS)), n)
        status = np.isfinite(self.t_out[pid, _CONSENT_IDX[cc]]).astype(np.int8)
        return _frame(
            {
                "person_id": pid + 1,
                "channel": _dictionary(cc, CONSENT_CHANNELS),
                "status": _dictionary(status, store.CONSENT_STATUSES),
            }
        )

    def _ad_consent_truth(self) -> pd.DataFrame:
        """Advertising consent per person and purpose: opt_out when refused on any record,
        opt_in when asked and granted, NULL when never asked."""
        purposes = len(store.AD_CONSENT_PURPOSES)
        pid = np.repeat(np.arange(self.n), purposes)
        k = np.tile(np.arange(purposes), self.n)
        status = np.where(
            self.ad_asked[pid], np.isfinite(self.ad_t_out[pid, k]).astype(np.int8), -1
        )
        return _frame(
            {
                "person_id": pid + 1,
                "purpose": _dictionary(k, store.AD_CONSENT_PURPOSES),
                "status": _dictionary(status, store.CONSENT_STATUSES),
            }
        )

    def _experiment_truth(self) -> pd.DataFrame:
        """Realised 30-day conversion per arm from the final orders, and their difference."""
        n = self.n
        window_end = self.exp_t + self.exp_window
        in_win = (self.o_t > self.exp_t) & (self.o_t <= window_end)
        converted = np.zeros(n, dtype=bool)
        converted[self.o_person[in_win]] = True
        conv = converted[self.exp_person]
        rate_c = float(conv[self.exp_arm == 0].mean()) if (self.exp_arm == 0).any() else 0.0
        rate_t = float(conv[self.exp_arm == 1].mean()) if (self.exp_arm == 1).any() else 0.0
        return pd.DataFrame(
            {
                "experiment_id": [EXPERIMENT_ID],
                "control_rate": [rate_c],
                "treatment_rate": [rate_t],
                "true_lift": [rate_t - rate_c],
                "window_days": [self.exp_window],
                "assigned_at": pd.to_datetime(self.seconds(np.array([self.exp_t])), unit="s"),
                "control_n": [int((self.exp_arm == 0).sum())],
                "treatment_n": [int((self.exp_arm == 1).sum())],
                "planted_uplift": [EXPERIMENT_UPLIFT],
            }
        )

    def _anomaly_truth(self) -> pd.DataFrame:
        """The revenue drop and the new-customer spike, magnitudes measured on the final data."""
        n, D = self.n, self.D
        first_t = np.full(n, np.inf)
        np.minimum.at(first_t, self.o_person, self.o_t)
        has = np.isfinite(first_t)
        new_per_day = np.bincount(np.floor(first_t[has]).astype(np.int64), minlength=D)
        before = new_per_day[max(self.spike_day - 28, 0) : self.spike_day]
        base = float(np.median(before)) if before.size else 0.0
        spike_mag = (
            new_per_day[self.spike_day] / base if base > 0 else float(new_per_day[self.spike_day])
        )
        day0 = self.start
        return pd.DataFrame(
            {
                "kind": ["revenue_drop", "new_customer_spike"],
                "channel": [ANOMALY_DROP_CHANNEL, None],
                "start_date": pd.to_datetime(
                    [day0 + timedelta(days=self.drop_start), day0 + timedelta(days=self.spike_day)]
                ),
                "end_date": pd.to_datetime(
                    [
                        day0 + timedelta(days=self.drop_start + ANOMALY_DROP_DAYS - 1),
                        day0 + timedelta(days=self.spike_day),
                    ]
                ),
                "magnitude": [self.drop_magnitude, float(spike_mag)],
            }
        )
