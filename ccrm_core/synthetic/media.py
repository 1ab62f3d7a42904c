"""Media steps of the generator: the daily spend plan per channel (flights, adstock, Hill
saturation), the campaigns that tile it, acquisitions re-timed to media, and the money: spend
scaled to a planted share of revenue and the incremental orders the spend causes.

Grain: per media channel (MEDIA_CHANNELS order) and day of the window; money in currency units,
adstock decay per day.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from scipy.signal import lfilter

from ccrm_core.synthetic import vocabulary as vocab
from ccrm_core.synthetic.draws import _choice_by_group, _choice_rows, _hours
from ccrm_core.synthetic.parameters import (
    _ACQ_CHANNELS,
    ADDRESSABLE,
    BTYD_PARAMS,
    COLLINEAR_NOISE,
    COLLINEAR_STREAM,
    EXPERIMENT_ID,
    LIFT_TEST_DAYS,
    LIFT_TEST_ENDS_BEFORE_END,
    LIFT_TEST_RELATIVE_SE,
    LIFT_TEST_STREAM,
    MEDIA,
    MEDIA_ACQUISITION_SHARE,
    MEDIA_CHANNELS,
    MEDIA_SHARE_OF_REVENUE,
    PERSONA_CHANNEL_AFFINITY,
    PERSONA_SHARES,
    PERSONAS,
)


class MediaSteps:
    """Media plan, campaigns and media-driven orders (mixin of _Company)."""

    # -- media plan (shapes are scale free; money is scaled once organic revenue is known) -----
    def media_plan(self) -> None:
        rng, D = self.rng, self.D
        C = len(MEDIA_CHANNELS)
        shape = np.zeros((C, D))
        for c in range(C):
            x = np.zeros(D)
            day = int(rng.integers(0, MEDIA["off_days"][c])) if rng.random() < 0.5 else 0
            while day < D:
                on = max(2, int(rng.exponential(MEDIA["on_days"][c])))
                x[day : day + on] = rng.lognormal(0.0, 0.45)
                day += on + max(1, int(rng.exponential(MEDIA["off_days"][c])))
            x *= rng.lognormal(0.0, 0.25, D)
            if x.sum() <= 0:  # pathological short windows: keep the channel alive
                x[:] = 1.0
            shape[c] = x / x.mean()
        if self.collinear is not None:
            self._plant_collinear(shape)
        self.spend_shape = shape
        adstock = np.vstack([lfilter([1.0], [1.0, -MEDIA["decay"][c]], shape[c]) for c in range(C)])
        self.k_factor = rng.uniform(0.8, 1.25, C)
        half = self.k_factor * adstock.mean(axis=1)
        s = MEDIA["slope"][:, None]
        self.hill = adstock**s / (adstock**s + half[:, None] ** s)
        self.adstock_shape = adstock
        # Campaigns tile the window per channel, 3-6 each.
        rows = []
        camp_of = np.zeros((C, D), dtype=np.int32)
        step = max(1, min(30, D // 8))  # campaign boundaries on a monthly grid
        grid = np.arange(step, D - step + 1, step)
        for c, ch in enumerate(MEDIA_CHANNELS):
            k = int(rng.integers(3, 7))
            cuts = np.sort(rng.choice(grid, min(k - 1, grid.size), replace=False))
            bounds = [0, *cuts.tolist(), D]
            for j in range(len(bounds) - 1):
                cid = len(rows)
                camp_of[c, bounds[j] : bounds[j + 1]] = cid
                first_day = self.start + timedelta(days=bounds[j])
                theme = _season(first_day)
                brand = ch in ("tv", "print") and rng.random() < 0.6
                offer = None if brand else vocab.OFFERS[int(rng.integers(0, len(vocab.OFFERS)))]
                label = ch.replace("_", " ").title() if ch not in ("tv", "sms") else ch.upper()
                name = f"{label}: {'Brand' if brand else theme} {first_day.year}"
                name += f" - {offer}" if offer else ""
                rows.append((name, ch, offer, bounds[j], bounds[j + 1] - 1))
        self.campaign_rows = rows
        self.camp_of = camp_of

    def _plant_collinear(self, shape: np.ndarray) -> None:
        """The follower channel's spend moves with the leader's: same flights, same day-to-day
        swings up to lognormal noise (COLLINEAR_NOISE), from a stream of its own."""
        leader, follower = (MEDIA_CHANNELS.index(c) for c in self.collinear)
        rng = np.random.Generator(np.random.PCG64([self.seed, COLLINEAR_STREAM]))
        x = shape[leader] * rng.lognormal(0.0, COLLINEAR_NOISE, self.D)
        shape[follower] = x / x.mean()

    def lift_test(self) -> None:
        """One lift test on `lift_test_channel` from the planted truth: the revenue of the
        orders the channel caused on the test's days, plus Gaussian measurement noise whose sd
        (the reported standard error) is LIFT_TEST_RELATIVE_SE of the planted expected lift
        (beta x Hill summed over the window). Its own random stream."""
        self.lift_rows = []
        if self.lift_test_channel is None:
            return
        c = MEDIA_CHANNELS.index(self.lift_test_channel)
        length = min(LIFT_TEST_DAYS, max(7, self.D // 4))
        end = self.D - min(LIFT_TEST_ENDS_BEFORE_END, max(self.D // 3, 1))
        start = max(0, end - length + 1)
        caused = (self.o_media == c) & (self.day_index(self.o_t) >= start)
        caused &= self.day_index(self.o_t) <= end
        realised = float(np.round(self.o_revenue[caused].sum(), 2))
        expected = float(self.beta[c] * self.hill[c, start : end + 1].sum())
        se = round(max(LIFT_TEST_RELATIVE_SE * expected, 1.0), 2)
        rng = np.random.Generator(np.random.PCG64([self.seed, LIFT_TEST_STREAM]))
        measured = round(realised + se * float(rng.standard_normal()), 2)
        self.lift_rows.append((c, start, end, measured, se, realised))

    def media_acquisitions(self) -> None:
        """Re-time a share of in-window acquisitions to media (search/display/social/tv/print):
        day drawn from the channel's planted response curve, digital ones need ecommerce."""
        rng = self.rng
        inwin = np.flatnonzero(self.t0 >= 0)
        k = int(round(MEDIA_ACQUISITION_SHARE * inwin.size))
        chosen = np.sort(rng.permutation(inwin)[:k])
        aff = PERSONA_CHANNEL_AFFINITY[self.persona[chosen]]
        w = np.empty((k, len(_ACQ_CHANNELS)))
        for j, c in enumerate(_ACQ_CHANNELS):
            pref = aff[:, c] if c < len(ADDRESSABLE) else np.ones(k)
            ok = self.member[chosen, 0] if c < len(ADDRESSABLE) else np.ones(k, bool)
            w[:, j] = MEDIA["share"][c] * pref * ok
        channel = _ACQ_CHANNELS[_choice_rows(rng, w)]
        day = np.empty(k, dtype=np.int64)
        for c in _ACQ_CHANNELS:
            m = channel == c
            p = self.hill[c] * MEDIA["share"][c]
            day[m] = rng.choice(self.D, m.sum(), p=p / p.sum())
        self.t0[chosen] = day + _hours(rng, k)
        self.acq_source[chosen] = channel

    # -- campaigns (the A/B test's email is the last one) --------------------------------------
    @property
    def campaign_ids(self) -> list[str]:
        return [f"CMP{i + 1:04d}" for i in range(len(self.campaign_rows))]

    def add_experiment_campaign(self) -> None:
        start = self.D - self.exp_before_end
        self.exp_campaign = len(self.campaign_rows)
        self.campaign_rows.append(
            (
                f"{EXPERIMENT_ID} test: 15% off next order",
                "email",
                "15% off next order",
                start,
                start + self.exp_window - 1,
            )
        )

    # -- money: scale media, realise incremental orders ----------------------------------------
    def media_money(self) -> None:
        rng, D = self.rng, self.D
        C = len(MEDIA_CHANNELS)
        self.buy_revenue = self.order_values(self.buy_person)
        media_acq = (
            self.buy_first
            & (self.acq_source[self.buy_person] >= 0)
            & (self.acq_source[self.buy_person] < 99)
        )
        self.buy_media = np.where(media_acq, self.acq_source[self.buy_person], -1)
        organic = self.buy_revenue[~media_acq].sum()
        total_media = organic * MEDIA_SHARE_OF_REVENUE / (1.0 - MEDIA_SHARE_OF_REVENUE)
        target = MEDIA["share"] * total_media
        self.total_spend = target / MEDIA["roi"]
        spend = self.spend_shape / self.spend_shape.sum(axis=1, keepdims=True)
        self.spend = np.round(spend * self.total_spend[:, None], 2)
        self.beta = target / self.hill.sum(axis=1)
        self.half_saturation = self.k_factor * lfilter_rows(self.spend, MEDIA["decay"]).mean(axis=1)
        expected = self.beta[:, None] * self.hill  # planted incremental revenue per channel, day
        acq_rev = np.zeros((C, D))
        m = self.buy_media >= 0
        np.add.at(acq_rev, (self.buy_media[m], self.day_index(self.buy_t[m])), self.buy_revenue[m])
        aov = BTYD_PARAMS["p"] * BTYD_PARAMS["v"] / (BTYD_PARAMS["q"] - 1.0)
        counts = rng.poisson(np.maximum(expected - acq_rev, 0.0) / aov)
        ch, day = np.nonzero(counts)
        reps = counts[ch, day]
        ch = np.repeat(ch, reps)
        t = np.repeat(day, reps) + _hours(rng, ch.size)
        person, touch_t, ok = self._media_targets(ch, t)
        self.mo_channel, self.mo_t, self.mo_person, self.mo_touch = (
            ch[ok],
            t[ok],
            person[ok],
            touch_t[ok],
        )
        self.mo_revenue = self.order_values(self.mo_person)

    def _media_targets(
        self, ch: np.ndarray, t: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pick who places each media-driven order: alive, acquired before the touch, opted in on
        the channel; addressable channels prefer personas with affinity for the channel."""
        rng = self.rng
        k = ch.size
        person = np.full(k, -1, dtype=np.int64)
        lag = rng.uniform(1.0, 14.0, k)
        lag = np.where(t - lag < 0, t * rng.uniform(0.1, 0.9, k), lag)
        touch = t - lag
        members = np.argsort(self.persona, kind="stable")
        sizes = np.bincount(self.persona, minlength=len(PERSONAS))
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        w = PERSONA_SHARES[:, None] * PERSONA_CHANNEL_AFFINITY[:, : len(ADDRESSABLE)]
        table = np.hstack([w, np.tile(PERSONA_SHARES[:, None], (1, 2))]).T  # (C, personas)
        pending = np.arange(k)
        for _ in range(200):
            if pending.size == 0:
                break
            c = ch[pending]
            persona = _choice_by_group(rng, c, table * (sizes > 0))
            pick = members[
                offsets[persona] + (rng.random(pending.size) * sizes[persona]).astype(np.int64)
            ]
            tt = touch[pending]
            good = (self.t0[pick] <= tt) & (self.death[pick] > t[pending])
            addressable = c < len(ADDRESSABLE)
            cons = np.where(
                addressable, self.t_out[pick, np.minimum(c, len(ADDRESSABLE) - 1)], np.inf
            )
            good &= cons > tt
            person[pending[good]] = pick[good]
            pending = pending[~good]
        ok = person >= 0
        return np.maximum(person, 0), touch, ok


def lfilter_rows(x: np.ndarray, decay: np.ndarray) -> np.ndarray:
    """Geometric adstock per row: a_t = x_t + decay * a_{t-1}, a_{-1} = 0 (days)."""
    return np.vstack([lfilter([1.0], [1.0, -decay[i]], x[i]) for i in range(x.shape[0])])


def _season(day: date) -> str:
    m = day.month
    if m in (11, 12):
        return "Holiday"
    if m in (1, 2):
        return "New Year"
    if m in (3, 4, 5):
        return "Spring"
    if m in (6, 7):
        return "Summer"
    if m == 8:
        return "Back to School"
    return "Autumn"
