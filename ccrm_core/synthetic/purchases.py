"""Behaviour steps of the generator: buy-till-you-die purchases (BG/NBD counts with seasonal
thinning, Gamma-Gamma order values), the KPI anomalies planted in them, the A/B test's extra
orders, and the final orders table with sales channel, category and record.

Time is float days since the window start; order values in currency units, rounded to cents.
"""

from __future__ import annotations

import numpy as np

from ccrm_core.synthetic.activations import ACTIVATION_ORDER_KIND
from ccrm_core.synthetic.draws import _choice_by_group, _hours
from ccrm_core.synthetic.parameters import (
    ADDRESSABLE,
    ANOMALY_DROP,
    ANOMALY_DROP_CHANNEL,
    ANOMALY_DROP_DAYS,
    ANOMALY_SPIKE_FACTOR,
    BTYD_PARAMS,
    CATEGORY_PREFERENCE,
    EXPERIMENT_SHARE,
    EXPERIMENT_UPLIFT,
    ORDER_CHANNEL_PREFERENCE,
    ORDER_CHANNELS,
)


class PurchaseSteps:
    """Purchases, experiment and orders (mixin of _Company)."""

    # -- buy till you die ----------------------------------------------------------------------
    def btyd(self, persons: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """BG/NBD with seasonal thinning for the given persons, from their acquisition to the
        window end. Returns (person, time of purchase, is_first) and sets their dropout time.

        Candidate purchases arrive at rate lambda / mean(acceptance) and are kept with the day's
        acceptance, so the long-run purchase rate is lambda. After each repeat purchase the person
        drops out with probability p (BG/NBD: no dropout at the first purchase).
        """
        rng = self.rng
        rate_day = self.lam[persons] / 7.0 / self.abar
        t = self.t0[persons].copy()
        out_p = [persons]
        out_t = [t.copy()]
        death = np.full(persons.size, np.inf)
        active = np.arange(persons.size)
        while active.size:
            t_next = t[active] + rng.exponential(1.0, active.size) / rate_day[active]
            keep = t_next < self.D
            active, t_next = active[keep], t_next[keep]
            t[active] = t_next
            bought = rng.random(active.size) < self.acc_at(t_next)
            buyers = active[bought]
            out_p.append(persons[buyers])
            out_t.append(t_next[bought])
            drop = rng.random(buyers.size) < self.pdrop[persons[buyers]]
            death[buyers[drop]] = t_next[bought][drop]
            alive = np.ones(active.size, dtype=bool)
            alive[np.flatnonzero(bought)[drop]] = False
            active = active[alive]
        self.death[persons] = death
        first = np.zeros(sum(len(x) for x in out_p), dtype=bool)
        first[: persons.size] = True
        return np.concatenate(out_p), np.concatenate(out_t), first

    def purchases(self) -> None:
        self.death = np.full(self.n, np.inf)
        person, t, first = self.btyd(np.arange(self.n))
        # The spike: move later organic acquisitions to one day so that day has ~4x the usual
        # new customers (measured on first purchases in the window, as the KPI mart counts them).
        self.spike_day = self._anomaly_days()
        in_win = t >= 0
        first_day = np.full(self.n, -1, dtype=np.int64)
        order = np.lexsort((t[in_win], person[in_win]))
        pw, tw = person[in_win][order], t[in_win][order]
        head = np.ones(pw.size, dtype=bool)
        head[1:] = pw[1:] != pw[:-1]
        first_day[pw[head]] = np.floor(tw[head]).astype(np.int64)
        counts = np.bincount(first_day[first_day >= 0], minlength=self.D)
        before = counts[max(self.spike_day - 28, 0) : self.spike_day]
        base = float(np.median(before)) if before.size else 1.0
        extra = max(3, int(round((ANOMALY_SPIKE_FACTOR - 1.0) * max(base, 1.0))))
        pool = np.flatnonzero((self.t0 > self.spike_day + 7) & (self.acq_source == -1))
        moved = np.sort(self.rng.permutation(pool)[:extra])
        self.t0[moved] = self.spike_day + _hours(self.rng, moved.size)
        self.acq_source[moved] = 99
        keep = ~np.isin(person, moved)
        p2, t2, f2 = self.btyd(moved)
        person = np.concatenate([person[keep], p2])
        t = np.concatenate([t[keep], t2])
        first = np.concatenate([first[keep], f2])
        in_win = t >= 0
        self.buy_person, self.buy_t, self.buy_first = person[in_win], t[in_win], first[in_win]
        # Repeat purchases keep their day (the thinning decided on it) but get a daytime clock
        # time, never before the acquisition on the same day.
        repeat = ~self.buy_first
        self.buy_t[repeat] = np.floor(self.buy_t[repeat]) + _hours(self.rng, int(repeat.sum()))
        self.buy_t = np.maximum(self.buy_t, self.t0[self.buy_person])

    def _anomaly_days(self) -> int:
        """Pick the spike day and the revenue-drop window: in the last 12 months, after day 90,
        at least 3 weeks apart and before the A/B test (proportionally in short windows)."""
        rng, D = self.rng, self.D
        lo = max(min(100, D // 4), D - 330)
        hi = max(D - self.exp_before_end - min(35, D // 10), lo + 2)
        spike = int(rng.integers(lo, hi))
        days = np.arange(lo, max(hi - ANOMALY_DROP_DAYS, lo + 1))
        for gap in (21, 7, 0):
            ok = (np.abs(days - spike) > gap) & (np.abs(days + ANOMALY_DROP_DAYS - 1 - spike) > gap)
            if ok.any():
                break
        candidates = days[ok] if ok.any() else days
        self.drop_start = int(candidates[int(rng.integers(0, candidates.size))])
        return spike

    # -- order values --------------------------------------------------------------------------
    def order_values(self, person: np.ndarray) -> np.ndarray:
        """Gamma-Gamma order value: z ~ Gamma(p, rate nu_person), in currency, rounded to cents."""
        z = self.rng.gamma(BTYD_PARAMS["p"], 1.0, person.size) / self.nu[person]
        return np.maximum(np.round(z, 2), 1.0)

    # -- the A/B test --------------------------------------------------------------------------
    def experiment(self) -> None:
        rng = self.rng
        self.exp_t = float(self.D - self.exp_before_end) + 9.0 / 24.0
        email = ADDRESSABLE.index("email")
        eligible = np.flatnonzero(
            (self.rec_created[self.primary_rec] < self.exp_t)
            & (self.t_out[:, email] > self.exp_t + 1)
        )
        k = min(int(round(EXPERIMENT_SHARE * self.n)), eligible.size)
        k -= k % 2
        chosen = np.sort(rng.permutation(eligible)[:k])
        arm = np.zeros(k, dtype=np.int8)
        arm[rng.permutation(k)[: k // 2]] = 1  # 1 = treatment
        self.exp_person, self.exp_arm = chosen, arm
        treated = chosen[arm == 1]
        self.exp_send_t = self.exp_t + rng.uniform(0.02, 0.12, treated.size)
        self.exp_treated = treated
        conv = treated[rng.random(treated.size) < EXPERIMENT_UPLIFT]
        self.xo_person = conv
        self.xo_t = self.exp_t + rng.uniform(0.3, self.exp_window - 0.3, conv.size)
        self.xo_revenue = self.order_values(conv)

    # -- orders --------------------------------------------------------------------------------
    def orders(self) -> None:
        rng = self.rng
        # kind: 0 organic BTYD, 1 media acquisition (first BTYD purchase), 2 media, 3 experiment,
        # 4 planted activation (added after the drop below)
        kind = np.concatenate(
            [
                np.where(self.buy_media >= 0, 1, 0),
                np.full(self.mo_person.size, 2),
                np.full(self.xo_person.size, 3),
            ]
        ).astype(np.int8)
        person = np.concatenate([self.buy_person, self.mo_person, self.xo_person])
        t = np.concatenate([self.buy_t, self.mo_t, self.xo_t])
        revenue = np.concatenate([self.buy_revenue, self.mo_revenue, self.xo_revenue])
        media = np.concatenate([self.buy_media, self.mo_channel, np.full(self.xo_person.size, -1)])
        first = np.concatenate(
            [self.buy_first, np.zeros(self.mo_person.size + self.xo_person.size, bool)]
        )
        persona = self.persona[person]
        channel = _choice_by_group(rng, persona, ORDER_CHANNEL_PREFERENCE)
        # The first purchase goes through the primary record's system.
        web_share = ORDER_CHANNEL_PREFERENCE[persona[first], 0] / ORDER_CHANNEL_PREFERENCE[
            persona[first], :2
        ].sum(axis=1)
        first_sys = self.primary_sys[person[first]]
        first_ch = np.select(
            [first_sys == 0, first_sys == 1],
            [np.where(rng.random(first.sum()) < web_share, 0, 1), 2],
            3,
        )
        channel[first] = first_ch
        category = _choice_by_group(rng, persona, CATEGORY_PREFERENCE)
        # Anomaly: remove ~60% of the revenue of one sales channel on 4 consecutive days
        # (acquisition purchases are kept so every person still starts with a purchase).
        ch_drop = ORDER_CHANNELS.index(ANOMALY_DROP_CHANNEL)
        day = np.floor(t).astype(np.int64)
        in_drop = (
            (channel == ch_drop)
            & (day >= self.drop_start)
            & (day < self.drop_start + ANOMALY_DROP_DAYS)
        )
        before = revenue[in_drop].sum()
        # Drop droppable orders in random order until 60% of the revenue is gone (exact up to
        # one order, so the planted magnitude does not depend on sampling noise at small N).
        droppable = rng.permutation(np.flatnonzero(in_drop & ~first))
        cum = np.cumsum(revenue[droppable])
        n_drop = int(np.searchsorted(cum, ANOMALY_DROP * before))
        if n_drop < cum.size and abs(cum[n_drop] - ANOMALY_DROP * before) < abs(
            (cum[n_drop - 1] if n_drop else 0.0) - ANOMALY_DROP * before
        ):
            n_drop += 1
        dropped = np.zeros(t.size, dtype=bool)
        dropped[droppable[:n_drop]] = True
        self.drop_magnitude = float(revenue[dropped].sum() / before) if before > 0 else 0.0
        keep = np.flatnonzero(~dropped)
        # The planted activations' orders join last (their draws come from a stream of their
        # own, so the draws above are the same with or without them); never dropped.
        extra = self.ao_person.size

        def _all(base: np.ndarray, more) -> np.ndarray:
            return np.concatenate([base[keep], np.broadcast_to(more, (extra,))])

        person = _all(person, self.ao_person)
        t = _all(t, self.ao_t)
        revenue = _all(revenue, self.ao_revenue)
        kind = _all(kind, np.int8(ACTIVATION_ORDER_KIND))
        media = _all(media, media.dtype.type(-1))
        channel = _all(channel, self.ao_channel.astype(channel.dtype))
        category = _all(category, self.ao_category.astype(category.dtype))
        # Sort by time; ids follow that order.
        order = np.argsort(t, kind="stable")
        self.o_person = person[order]
        self.o_t = t[order]
        self.o_revenue = revenue[order]
        self.o_kind = kind[order]
        self.o_media = media[order]
        self.o_channel = channel[order]
        self.o_category = category[order]
        sys_pref = np.array([0, 0, 1, 2])[self.o_channel]
        self.o_record = self.record_for(self.o_person, sys_pref, self.o_t)
