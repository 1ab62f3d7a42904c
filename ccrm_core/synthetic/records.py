"""Source records of the generator: each person's primary system, their records in the three
source systems (ecommerce, loyalty, call_center) with ids and creation times, consents (per
person and consentable channel: the opt-out time and the record it was made on), and advertising
consents (per person and purpose: asked or not, and the opt-out's time and record).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ccrm_core.synthetic import vocabulary as vocab
from ccrm_core.synthetic.columns import _digits, _fixed
from ccrm_core.synthetic.draws import _choice_rows
from ccrm_core.synthetic.parameters import (
    _ACQ_CHANNELS,
    _CONSENT_IDX,
    AD_CONSENT_ASKED,
    AD_CONSENT_GRANTED,
    AD_CONSENT_OPT_IN_COUNTRIES,
    AD_CONSENT_OPT_OUT_ELSEWHERE,
    AD_CONSENT_STREAM,
    AD_PERSONALIZATION_GRANTED,
    ADDRESSABLE,
    CONSENT_CHANNELS,
    OPT_OUT_RATE,
    ORDER_CHANNEL_PREFERENCE,
    SYSTEM_PREFIX,
    WITHIN_SYSTEM_DUPLICATE_RATE,
)


class RecordSteps:
    """Records and consents (mixin of _Company): one row per source record, sorted by person with
    the primary record first."""

    def primary_system(self) -> None:
        """The first record's system: the one the person first bought through."""
        w = ORDER_CHANNEL_PREFERENCE[self.persona]
        sys_w = np.stack([w[:, 0] + w[:, 1], w[:, 2], w[:, 3]], axis=1) + 0.02
        primary = _choice_rows(self.rng, sys_w * self.member)
        digital = np.isin(self.acq_source, _ACQ_CHANNELS[:3])
        primary[digital] = 0
        self.primary_sys = primary.astype(np.int8)

    # -- records -------------------------------------------------------------------------------
    def records(self) -> None:
        rng, n = self.rng, self.n
        rows_p, rows_s, rows_rank = [], [], []
        for s in range(3):
            m = self.member[:, s]
            p = np.flatnonzero(m)
            rows_p.append(p)
            rows_s.append(np.full(p.size, s))
            rows_rank.append(np.where(self.primary_sys[p] == s, 0, 1 + s))
        dup = np.flatnonzero(rng.random(n) < WITHIN_SYSTEM_DUPLICATE_RATE)
        dup_sys = _choice_rows(rng, self.member[dup].astype(float))
        rows_p.append(dup)
        rows_s.append(dup_sys)
        rows_rank.append(np.full(dup.size, 9))
        p = np.concatenate(rows_p)
        s = np.concatenate(rows_s).astype(np.int8)
        rank = np.concatenate(rows_rank)
        order = np.lexsort((rank, p))
        self.rec_person = p[order].astype(np.int64)
        self.rec_system = s[order]
        self.rec_primary = rank[order] == 0
        R = self.rec_person.size
        self.R = R
        self.n_rec = np.bincount(self.rec_person, minlength=n)
        self.rec_start = np.concatenate([[0], np.cumsum(self.n_rec)[:-1]])
        self.primary_rec = self.rec_start  # primary sorts first within each person
        t0 = self.t0[self.rec_person]
        created = t0 + rng.exponential(120.0, R) + rng.random(R)
        late = created > self.D - 1e-3
        created[late] = t0[late] + rng.random(late.sum()) * (self.D - t0[late])
        created[self.rec_primary] = (
            t0[self.rec_primary] - rng.uniform(1, 30, self.rec_primary.sum()) / 1440
        )
        self.rec_created = created
        # Earliest record per (person, system), -1 if none.
        self.rec_of = np.full((n, 3), -1, dtype=np.int64)
        for sys_i in range(3):
            idx = np.flatnonzero(self.rec_system == sys_i)
            idx = idx[np.lexsort((created[idx], self.rec_person[idx]))]
            head = np.ones(idx.size, dtype=bool)
            head[1:] = self.rec_person[idx[1:]] != self.rec_person[idx[:-1]]
            self.rec_of[self.rec_person[idx[head]], sys_i] = idx[head]
        self.rec_of[np.arange(n), self.primary_sys] = self.primary_rec
        # Record numbers: per system in order of creation, with small random gaps.
        number = np.zeros(R, dtype=np.int64)
        for sys_i in range(3):
            idx = np.flatnonzero(self.rec_system == sys_i)
            idx = idx[np.argsort(created[idx], kind="stable")]
            number[idx] = int(rng.integers(1000, 5000)) + np.cumsum(rng.integers(1, 4, idx.size))
        self.rec_number = number
        self.rec_ids = self.record_ids(np.arange(R))
        self.max_created = np.maximum.reduceat(created, self.rec_start)

    def record_ids(self, rec: np.ndarray) -> pa.Array:
        """Source ids ('EC00001234', 'LY...', 'CC...') of records; rec < 0 gives NULL."""
        rec = np.asarray(rec)
        valid = rec >= 0
        r = rec[valid] if not valid.all() else rec
        # Two-byte cells: the prefix is one uint16, the 8 digits four more (cheap gathers).
        heads = np.frombuffer("".join(SYSTEM_PREFIX).encode(), np.uint16)
        cells = np.empty((r.size, 5), dtype=np.uint16)
        cells[:, 0] = heads[self.rec_system[r]]
        cells[:, 1:] = np.ascontiguousarray(_digits(self.rec_number[r], 8)).view(np.uint16)
        return _fixed(cells.view(np.uint8), None if valid.all() else valid)

    def record_for(self, person: np.ndarray, system: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The person's record in the preferred system if it exists at time t, else primary."""
        rec = self.rec_of[person, system]
        ok = (rec >= 0) & (self.rec_created[np.maximum(rec, 0)] <= t)
        return np.where(ok, rec, self.primary_rec[person])

    # -- consents ------------------------------------------------------------------------------
    def consents(self) -> None:
        rng, n = self.rng, self.n
        self.t_out = np.full((n, len(ADDRESSABLE)), np.inf)
        self.optout_rec = np.full((n, len(ADDRESSABLE)), -1, dtype=np.int64)
        for cc, ch in enumerate(CONSENT_CHANNELS):
            c = _CONSENT_IDX[cc]
            out = np.flatnonzero(rng.random(n) < OPT_OUT_RATE[ch])
            lo = self.max_created[out]
            self.t_out[out, c] = lo + (self.D - lo) * rng.uniform(0.01, 1.0, out.size)
            pick = (rng.random(out.size) * self.n_rec[out]).astype(np.int64)
            self.optout_rec[out, c] = self.rec_start[out] + pick

    def ad_consents(self) -> None:
        """Advertising consent per person and purpose (store.AD_CONSENT_PURPOSES), from a random
        stream of its own: every other table is the same with or without it.

        A person is asked with AD_CONSENT_ASKED (else no row at all). In the opt-in countries
        (AD_CONSENT_OPT_IN_COUNTRIES) ad_user_data is granted with AD_CONSENT_GRANTED and
        ad_personalization only with it (AD_PERSONALIZATION_GRANTED); elsewhere each purpose is
        refused with AD_CONSENT_OPT_OUT_ELSEWHERE. A refusal is an opt-out on one of the
        person's records, as for channels; the other records keep their opt-in."""
        rng = np.random.Generator(np.random.PCG64([self.seed, AD_CONSENT_STREAM]))
        n = self.n
        self.ad_asked = rng.random(n) < AD_CONSENT_ASKED
        opt_in_country = np.isin(
            self.country, [vocab.COUNTRIES.index(c) for c in AD_CONSENT_OPT_IN_COUNTRIES]
        )
        user_data = rng.random(n) < AD_CONSENT_GRANTED
        personalization = user_data & (rng.random(n) < AD_PERSONALIZATION_GRANTED)
        elsewhere = rng.random((n, 2)) >= AD_CONSENT_OPT_OUT_ELSEWHERE
        granted = np.where(
            opt_in_country[:, None], np.stack([user_data, personalization], axis=1), elsewhere
        )
        self.ad_t_out = np.full((n, 2), np.inf)
        self.ad_optout_rec = np.full((n, 2), -1, dtype=np.int64)
        for k in range(2):
            out = np.flatnonzero(self.ad_asked & ~granted[:, k])
            lo = self.max_created[out]
            self.ad_t_out[out, k] = lo + (self.D - lo) * rng.uniform(0.01, 1.0, out.size)
            pick = (rng.random(out.size) * self.n_rec[out]).astype(np.int64)
            self.ad_optout_rec[out, k] = self.rec_start[out] + pick
