"""Event steps of the generator: touches on the addressable channels with their response chains,
the touches before media-driven orders, web visits, unsubscribes, the A/B test's email, and
anonymous cookies and devices (linked by a login, or prospects who never log in).

Events are collected as integer codes in `_Events` and turned into strings once, in frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ccrm_core.synthetic.activations import ACTIVATION_ORDER_KIND
from ccrm_core.synthetic.columns import _HEX2, _fixed
from ccrm_core.synthetic.draws import _choice_by_group, _hours
from ccrm_core.synthetic.parameters import (
    _ACQ_CHANNELS,
    _CH,
    _CONSENT_IDX,
    _DAY_S,
    _ET,
    _WEB,
    ADDRESSABLE,
    ANON_ANY,
    ANON_DEVICE_SHARE,
    ANON_EXTRA,
    BASE_TOUCH_RATE,
    PERSONA_CHANNEL_AFFINITY,
    PERSONAS,
    PROSPECT_ID_SHARE,
    RESPONSE,
)

if TYPE_CHECKING:
    from ccrm_core.synthetic.company import _Company


class EventSteps:
    """Events and anonymous ids (mixin of _Company)."""

    # -- events --------------------------------------------------------------------------------
    def events(self) -> None:
        rng, n, D = self.rng, self.n, self.D
        ev = _Events(self)
        email = ADDRESSABLE.index("email")
        known_from = np.maximum(self.rec_created[self.primary_rec], 0.0)
        lo_day = np.ceil(known_from).astype(np.int64)
        # 1) Background touches on the 8 addressable channels, following the channel's spend
        #    (no touch on days without spend), only while the person is known and opted in.
        for c in range(len(ADDRESSABLE)):
            w = self.spend_shape[c]
            cum = np.concatenate([[0.0], np.cumsum(w)])
            hi_t = np.minimum(self.t_out[:, c], D)
            hi_day = np.floor(hi_t).astype(np.int64)  # exclusive
            hi_day = np.where(np.isinf(self.t_out[:, c]), D, hi_day)
            span = np.where(
                hi_day > lo_day, cum[np.clip(hi_day, 0, D)] - cum[np.clip(lo_day, 0, D)], 0.0
            )
            lam = BASE_TOUCH_RATE[c] / 7.0 * PERSONA_CHANNEL_AFFINITY[self.persona, c] * span
            counts = rng.poisson(lam)
            person = np.repeat(np.arange(n), counts)
            u = cum[lo_day[person]] + rng.random(person.size) * (
                cum[np.clip(hi_day[person], 0, D)] - cum[lo_day[person]]
            )
            day = np.clip(
                np.searchsorted(cum, u, side="right") - 1,
                lo_day[person],
                np.maximum(hi_day[person] - 1, lo_day[person]),
            )
            self._touch_chain(ev, c, person, day.astype(np.float64))
        # 2) Touches before media-driven orders (1-14 days before), same chain as above but the
        #    response always happens (the order proves it).
        for c in range(len(ADDRESSABLE)):
            m = self.mo_channel == c
            if m.any():
                self._response_touch(ev, c, self.mo_person[m], self.mo_touch[m])
        # 3) Known web visits while the person is a customer, on the ecommerce record if any.
        lam = (
            BASE_TOUCH_RATE[-1]
            / 7.0
            * PERSONA_CHANNEL_AFFINITY[self.persona, -1]
            * (D - known_from)
        )
        counts = rng.poisson(lam)
        person = np.repeat(np.arange(n), counts)
        t = known_from[person] + rng.random(person.size) * (D - known_from[person])
        rec = self.record_for(person, np.zeros(person.size, np.int64), t)
        ev.add(t, _WEB, _ET["visit"], record=rec, value=1 + rng.poisson(3.0, person.size))
        # 4) A visit shortly before many web/app orders (the order session).
        #    (the planted activations' orders draw nothing here: every draw stays as it was)
        base = self.o_kind != ACTIVATION_ORDER_KIND
        session = np.zeros(self.o_t.size, dtype=bool)
        session[base] = rng.random(int(base.sum())) < 0.5
        m = (self.o_channel <= 1) & session
        t = self.o_t[m] - rng.uniform(2, 60, m.sum()) / 1440
        ok = t >= 0
        ev.add(
            t[ok],
            _WEB,
            _ET["visit"],
            record=self.o_record[m][ok],
            value=1 + rng.poisson(4.0, ok.sum()),
        )
        # 5) Unsubscribes at the opt-out time (inside the window).
        for c in _CONSENT_IDX:
            m = (self.t_out[:, c] >= 0) & np.isfinite(self.t_out[:, c])
            t = self.t_out[m, c]
            ev.add(
                t,
                c,
                _ET["unsubscribe"],
                record=self.optout_rec[m, c],
                campaign=self.camp_of[c, self.day_index(t)],
            )
        # 6) The A/B test's treatment email.
        rec = self.primary_rec[self.exp_treated]
        ev.add(self.exp_send_t, email, _ET["send"], record=rec, campaign=self.exp_campaign)
        # 7) Anonymous cookies and devices, and prospects who never log in.
        self._anonymous(ev)
        self.ev = ev.finish()

    def _touch_chain(self, ev: _Events, c: int, person: np.ndarray, day: np.ndarray) -> None:
        """Background touches for channel c on given days with the channel's response chain."""
        rng = self.rng
        ch = ADDRESSABLE[c]
        persona = self.persona[person]
        if ch in ("email", "sms", "push", "direct_mail"):
            t = day + rng.uniform(8, 12, person.size) / 24
        elif ch == "call_center":
            t = day + rng.uniform(9, 18, person.size) / 24
        else:
            t = day + _hours(rng, person.size)
        rec = self.primary_rec[person]
        if ch == "call_center":
            rec = self.record_for(person, np.full(person.size, 2), t)
        camp = self.camp_of[c, self.day_index(t)]
        if ch == "email":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
            o = rng.random(person.size) < RESPONSE["email_open"][persona]
            to = t[o] + rng.uniform(0.01, 1.5, o.sum())
            ev.add(to, c, _ET["open"], record=rec[o], campaign=camp[o])
            k = rng.random(o.sum()) < RESPONSE["email_click"][persona[o]]
            ev.add(
                to[k] + rng.uniform(0.0005, 0.01, k.sum()),
                c,
                _ET["click"],
                record=rec[o][k],
                campaign=camp[o][k],
            )
        elif ch == "sms":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
            k = rng.random(person.size) < RESPONSE["sms_click"][persona]
            ev.add(
                t[k] + rng.uniform(0.001, 0.2, k.sum()),
                c,
                _ET["click"],
                record=rec[k],
                campaign=camp[k],
            )
        elif ch == "push":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
            o = rng.random(person.size) < RESPONSE["push_open"][persona]
            ev.add(
                t[o] + rng.uniform(0.001, 0.3, o.sum()),
                c,
                _ET["open"],
                record=rec[o],
                campaign=camp[o],
            )
        elif ch == "direct_mail":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
        elif ch == "paid_search":
            ev.add(t, c, _ET["click"], record=rec, campaign=camp)
        elif ch in ("display", "social"):
            ev.add(t, c, _ET["impression"], record=rec, campaign=camp)
            k = rng.random(person.size) < RESPONSE[f"{ch}_click"][persona]
            ev.add(
                t[k] + rng.uniform(0.0001, 0.01, k.sum()),
                c,
                _ET["click"],
                record=rec[k],
                campaign=camp[k],
            )
        else:  # call_center
            ev.add(
                t,
                c,
                _ET["call"],
                record=rec,
                campaign=camp,
                value=np.round(rng.gamma(2.0, 3.0, person.size), 1),
            )

    def _response_touch(self, ev: _Events, c: int, person: np.ndarray, t: np.ndarray) -> None:
        """The touch that preceded a media-driven order; the response steps always happen."""
        rng = self.rng
        ch = ADDRESSABLE[c]
        rec = self.primary_rec[person]
        if ch == "call_center":
            rec = self.record_for(person, np.full(person.size, 2), t)
        camp = self.camp_of[c, self.day_index(t)]
        step = rng.uniform(0.001, 0.01, person.size)
        if ch == "email":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
            ev.add(t + step, c, _ET["open"], record=rec, campaign=camp)
            ev.add(t + 2 * step, c, _ET["click"], record=rec, campaign=camp)
        elif ch == "sms":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
            ev.add(t + step, c, _ET["click"], record=rec, campaign=camp)
        elif ch == "push":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
            ev.add(t + step, c, _ET["open"], record=rec, campaign=camp)
        elif ch == "direct_mail":
            ev.add(t, c, _ET["send"], record=rec, campaign=camp)
        elif ch == "paid_search":
            ev.add(t, c, _ET["click"], record=rec, campaign=camp)
        elif ch in ("display", "social"):
            ev.add(t, c, _ET["impression"], record=rec, campaign=camp)
            ev.add(t + step, c, _ET["click"], record=rec, campaign=camp)
        else:
            ev.add(
                t,
                c,
                _ET["call"],
                record=rec,
                campaign=camp,
                value=np.round(rng.gamma(2.0, 3.0, person.size), 1),
            )

    def _anonymous(self, ev: _Events) -> None:
        rng, n, D = self.rng, self.n, self.D
        has_ec = self.rec_of[:, 0] >= 0
        persona = self.persona
        any_id = has_ec & (rng.random(n) < ANON_ANY[persona])
        digital_acq = np.isin(self.acq_source, _ACQ_CHANNELS[:3])
        any_id |= digital_acq  # their journey starts with an anonymous click
        k = np.where(any_id, 1 + rng.poisson(ANON_EXTRA[persona]), 0)
        owner = np.repeat(np.arange(n), k)
        first_of_owner = np.ones(owner.size, dtype=bool)
        first_of_owner[1:] = owner[1:] != owner[:-1]
        ec_rec = self.rec_of[owner, 0]
        ec_created = self.rec_created[ec_rec]
        # Login time: at acquisition for the first id of persons who started on ecommerce inside
        # the window, otherwise at a random time after the ecommerce record exists.
        lo = np.maximum(ec_created, 0.0)
        login = lo + rng.random(owner.size) * (D - lo)
        at_acq = first_of_owner & (self.primary_sys[owner] == 0) & (self.t0[owner] >= 0)
        login[at_acq] = ec_created[at_acq] + rng.random(at_acq.sum()) * (
            self.t0[owner][at_acq] - ec_created[at_acq]
        )
        login = np.minimum(login, D - 1e-4)
        n_linked = owner.size
        n_prospect = int(round(PROSPECT_ID_SHARE * n_linked))
        total = n_linked + n_prospect
        device = np.concatenate(
            [rng.random(n_linked) < ANON_DEVICE_SHARE[persona[owner]], rng.random(n_prospect) < 0.2]
        )
        self.anon_raw = _anon_raw(rng, total)
        self.anon_device = device
        self.anon_owner = np.concatenate([owner, np.full(n_prospect, -1)])
        ev.add(login, _WEB, _ET["login"], record=ec_rec, anon=np.arange(n_linked))
        # Pre-login visits and digital clicks within 21 days before the login.
        m = 1 + rng.poisson(1.0, n_linked)
        aid = np.repeat(np.arange(n_linked), m)
        t = login[aid] - rng.uniform(0.002, 21.0, aid.size)
        ok = t >= 0
        aid, t = aid[ok], t[ok]
        self._anon_events(ev, aid, t, persona[owner[aid]])
        # Media-acquired digital persons: the click on the acquiring channel before the login.
        dig = first_of_owner & digital_acq[owner]
        aid = np.flatnonzero(dig)
        c = self.acq_source[owner[aid]].astype(np.int64)
        lag = rng.uniform(1.0, 14.0, aid.size)
        t = login[aid] - np.minimum(lag, login[aid] * rng.uniform(0.1, 0.9, aid.size))
        ev.add(t, c, _ET["click"], anon=aid, campaign=self.camp_of[c, self.day_index(t)])
        # Prospects: visits and clicks anywhere in the window, never a login.
        m = 1 + rng.poisson(1.2, n_prospect)
        aid = n_linked + np.repeat(np.arange(n_prospect), m)
        t = rng.random(aid.size) * D
        self._anon_events(ev, aid, t, rng.integers(0, len(PERSONAS), aid.size).astype(np.int8))

    def _anon_events(
        self, ev: _Events, aid: np.ndarray, t: np.ndarray, persona: np.ndarray
    ) -> None:
        rng = self.rng
        click = rng.random(aid.size) < 0.25
        digital = np.array([_CH["paid_search"], _CH["display"], _CH["social"]])
        c = digital[_choice_by_group(rng, persona[click], PERSONA_CHANNEL_AFFINITY[:, digital])]
        tc = t[click]
        ev.add(tc, c, _ET["click"], anon=aid[click], campaign=self.camp_of[c, self.day_index(tc)])
        tv = t[~click]
        ev.add(tv, _WEB, _ET["visit"], anon=aid[~click], value=1 + rng.poisson(2.0, tv.size))


class _Events:
    """Collects event chunks as compact integer/float arrays; strings are built once at the end.

    Times are stored as epoch seconds. Records and anonymous ids are int32 indices (-1 = none),
    campaigns int16 indices (-1 = none), value float32 (NaN = NULL).
    """

    COLUMNS = (
        ("sec", np.int64),
        ("channel", np.int8),
        ("type", np.int8),
        ("record", np.int32),
        ("anon", np.int32),
        ("campaign", np.int16),
        ("value", np.float32),
    )

    def __init__(self, company: _Company) -> None:
        self.company = company
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, t, channel, etype, record=None, anon=None, campaign=None, value=None) -> None:
        """Add events at generator times t; responses that would fall after the window end
        (an open the day after the last day) are left out."""
        t = np.asarray(t, dtype=np.float64)
        inside = (t >= 0) & (t < self.company.D)
        if not inside.all():
            t = t[inside]
            record, anon, campaign, value = (
                x[inside] if x is not None and np.ndim(x) else x
                for x in (record, anon, campaign, value)
            )
            channel = channel[inside] if np.ndim(channel) else channel
        k = t.size
        if k == 0:
            return
        given = {
            "channel": channel,
            "type": etype,
            "record": record,
            "anon": anon,
            "campaign": campaign,
            "value": value,
        }
        fill = {"channel": 0, "type": 0, "record": -1, "anon": -1, "campaign": -1, "value": np.nan}
        part = {"sec": self.company.seconds(t)}
        for name, dtype in self.COLUMNS[1:]:
            x = given[name]
            if x is None:
                part[name] = np.full(k, fill[name], dtype=dtype)
            else:
                x = np.asarray(x)
                part[name] = np.full(k, x, dtype=dtype) if x.ndim == 0 else x.astype(dtype)
        self.parts.append(part)

    def finish(self) -> dict[str, np.ndarray]:
        """All events in day order (a stable radix sort on the day; within a day the order of
        generation), one column at a time to keep peak memory low."""
        day = np.concatenate(
            [(p["sec"] // _DAY_S - self.company.start_day).astype(np.int16) for p in self.parts]
        )
        order = np.argsort(day, kind="stable")
        del day
        out = {}
        for name, _ in self.COLUMNS:
            full = np.concatenate([p.pop(name) for p in self.parts])
            out[name] = full[order]
            del full
        self.parts = []
        return out


def _anon_raw(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique random 63-bit numbers behind the anonymous ids."""
    raw = rng.integers(0, np.iinfo(np.int64).max, n, dtype=np.int64)
    for _ in range(10):
        _, first = np.unique(raw, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        if not dup.any():
            break
        raw[dup] = rng.integers(0, np.iinfo(np.int64).max, dup.sum(), dtype=np.int64)
    return raw


def _anon_strings(raw: np.ndarray, device: np.ndarray, idx: np.ndarray) -> pa.Array:
    """'ck_' (cookie) or 'dv_' (device) + 16 hex digits for anonymous id indices (< 0: NULL)."""
    idx = np.asarray(idx)
    valid = idx >= 0
    i = idx[valid] if not valid.all() else idx
    n = i.size
    b = raw[i].astype(">u8").view(np.uint8).reshape(n, 8)
    mat = np.empty((n, 19), dtype=np.uint8)
    dev = device[i]
    mat[:, 0] = np.where(dev, ord("d"), ord("c"))
    mat[:, 1] = np.where(dev, ord("v"), ord("k"))
    mat[:, 2] = ord("_")
    mat[:, 3:] = _HEX2[b].reshape(n, 16)
    return _fixed(mat, None if valid.all() else valid)
