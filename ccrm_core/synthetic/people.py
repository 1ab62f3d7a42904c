"""Step 1 of the generator: persons, with persona, country, name, birth date, home address, a
phone number valid for the country, an email address, acquisition time, BTYD parameters and
source-system membership. Only integer codes here; strings are built with the source records.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ccrm_core.synthetic import vocabulary as vocab
from ccrm_core.synthetic.columns import _int_str, _join, _s, _select, _take
from ccrm_core.synthetic.draws import _choice_rows, _hours, _zipf
from ccrm_core.synthetic.parameters import (
    ACQUISITION_GROWTH,
    BTYD_PARAMS,
    PERSONA_SHARES,
    PERSONAS,
    PRE_WINDOW_SHARE,
    PRE_WINDOW_YEARS,
    SYSTEM_MEMBERSHIP,
)

# Valid mobile number plans (checked with phonenumbers.is_valid_number): GB 07xxx prefixes,
# DE (prefix, subscriber digits), FR two-digit prefixes after the trunk 0.
_GB_PREFIXES = np.concatenate([np.arange(7400, 7600), np.arange(7800, 7900), np.arange(7940, 8000)])
_DE_PLANS = ((151, 8), (152, 8), (157, 8), (159, 8), (160, 7), (162, 7), (163, 7)) + tuple(
    (p, 8) for p in range(170, 180)
)
_FR_PREFIXES = np.array([60, 61, 62, 64, 65, 66, 67, 68, 73, 74, 75, 76, 77, 78, 79])


def _ascii_lower(name: str) -> str:
    return "".join(ch for ch in name.lower() if "a" <= ch <= "z")


class PeopleSteps:
    """Persons of the company (mixin of _Company): one row per person, index 0..n-1."""

    def persons(self) -> None:
        rng, n = self.rng, self.n
        self.persona = rng.choice(len(PERSONAS), n, p=PERSONA_SHARES).astype(np.int8)
        self.country = rng.choice(len(vocab.COUNTRIES), n, p=vocab.COUNTRY_SHARES).astype(np.int8)
        self.first = rng.choice(len(vocab.FIRST_NAMES), n, p=_zipf(len(vocab.FIRST_NAMES)))
        self.last = rng.choice(len(vocab.LAST_NAMES), n, p=_zipf(len(vocab.LAST_NAMES)))
        # Ages 18-88 (mean ~47) with no point mass: clipping a normal would pile thousands of
        # persons onto one birth date and make name + birth date collide across persons.
        age_years = 18.05 + 70.0 * rng.beta(2.2, 3.0, n)
        end_day = self.start_day + self.D - 1
        self.dob = (end_day - np.floor(age_years * 365.25)).astype(np.int32)
        self.address = self._addresses(self.country)
        self._phones()
        self._emails()
        # Acquisition: a share before the window, the rest over the window with growth and
        # seasonality. Media acquisitions and the spike are re-timed later.
        pre = rng.random(n) < PRE_WINDOW_SHARE
        t0 = np.empty(n)
        t0[pre] = -rng.random(pre.sum()) * PRE_WINDOW_YEARS * 365.25
        d = np.arange(self.D)
        w = (1.0 + ACQUISITION_GROWTH * d / self.D) * self.acc_at(d + 0.5)
        k = int((~pre).sum())
        t0[~pre] = rng.choice(self.D, k, p=w / w.sum()) + _hours(rng, k)
        self.t0 = t0
        self.acq_source = np.full(n, -1, dtype=np.int16)  # -1 organic, 99 spike, else channel
        # BTYD individual parameters.
        b = BTYD_PARAMS
        self.lam = rng.gamma(b["r"], 1.0 / b["alpha"], n)  # purchases per week
        self.lam = np.maximum(self.lam, 1e-9)
        self.pdrop = rng.beta(b["a"], b["b"], n)
        self.nu = rng.gamma(b["q"], 1.0 / b["v"], n)  # Gamma-Gamma spend rate
        # Source-system membership (>= 1 system).
        member = rng.random((n, 3)) < SYSTEM_MEMBERSHIP[self.persona]
        none = ~member.any(axis=1)
        forced = _choice_rows(rng, SYSTEM_MEMBERSHIP[self.persona[none]])
        member[np.flatnonzero(none), forced] = True
        self.member = member

    def _addresses(self, country: np.ndarray) -> dict[str, np.ndarray]:
        """Address components for rows of the given countries (integer codes only)."""
        rng = self.rng
        n = len(country)
        city = np.empty(n, dtype=np.int32)
        city_country = np.array([vocab.COUNTRIES.index(c[0]) for c in vocab.CITIES])
        for ci in range(len(vocab.COUNTRIES)):
            m = country == ci
            if m.any():
                options = np.flatnonzero(city_country == ci)
                city[m] = rng.choice(options, m.sum(), p=_zipf(len(options), 0.7, 3.0))
        outward_counts = np.array([len(c[3].split()) for c in vocab.CITIES])
        return {
            "city": city,
            "street": rng.integers(0, 1 << 30, n),
            "suffix": rng.integers(0, 1 << 30, n),
            "number": np.minimum(1 + np.floor(rng.lognormal(4.0, 1.3, n)), 9999).astype(np.int64),
            "apt": np.where(rng.random(n) < 0.15, rng.integers(1, 40, n), -1),
            "outward": (rng.random(n) * outward_counts[city]).astype(np.int64),
            "postal_a": rng.integers(0, 1000, n),
            "postal_b": rng.integers(0, 400, n),
        }

    def _phones(self) -> None:
        """Canonical national numbers, valid for each person's country, unique across persons."""
        rng, n = self.rng, self.n
        num = np.zeros(n, dtype=np.int64)
        length = np.zeros(n, dtype=np.int8)
        todo = np.arange(n)
        city_area = np.array([int(c[4]) if c[4] else 0 for c in vocab.CITIES])
        us_ca_areas = {
            ci: city_area[[vocab.COUNTRIES.index(c[0]) == ci for c in vocab.CITIES]]
            for ci in (0, 4)
        }
        for _ in range(100):
            if todo.size == 0:
                break
            c = self.country[todo]
            for ci, code in enumerate(vocab.COUNTRIES):
                m = c == ci
                k = int(m.sum())
                if not k:
                    continue
                idx = todo[m]
                if code in ("US", "CA"):
                    # 75% the area code of the home city, else any area code of the country.
                    home = city_area[self.address["city"][idx]]
                    other = rng.choice(us_ca_areas[ci], k)
                    area = np.where(rng.random(k) < 0.75, home, other)
                    exchange = rng.integers(200, 1000, k)
                    bad = (exchange % 100 == 11) | (exchange == 555)
                    exchange[bad] = 201 + rng.integers(0, 8, bad.sum()) * 100 + 20
                    num[idx] = area * 10_000_000 + exchange * 10_000 + rng.integers(0, 10000, k)
                    length[idx] = 10
                elif code == "GB":
                    num[idx] = rng.choice(_GB_PREFIXES, k) * 1_000_000 + rng.integers(0, 10**6, k)
                    length[idx] = 10
                elif code == "DE":
                    plan = rng.integers(0, len(_DE_PLANS), k)
                    prefix = np.array([p for p, _ in _DE_PLANS])[plan]
                    sub_len = np.array([s for _, s in _DE_PLANS])[plan]
                    num[idx] = prefix * 10**sub_len + (rng.random(k) * 10.0**sub_len).astype(
                        np.int64
                    )
                    length[idx] = 3 + sub_len
                else:  # FR
                    num[idx] = rng.choice(_FR_PREFIXES, k) * 10_000_000 + rng.integers(0, 10**7, k)
                    length[idx] = 9
            key = self.country.astype(np.int64) * 10**12 + num
            order = np.argsort(key, kind="stable")
            dup_sorted = np.zeros(n, dtype=bool)
            dup_sorted[1:] = key[order][1:] == key[order][:-1]
            todo = np.sort(order[dup_sorted])
        self.phone_num = num
        self.phone_len = length

    def _emails(self) -> None:
        """Email components per person; unique across persons even ignoring dots and case."""
        rng, n = self.rng, self.n
        self.first_lower = [_ascii_lower(x) for x in vocab.FIRST_NAMES]
        self.last_lower = [_ascii_lower(x) for x in vocab.LAST_NAMES]
        self.domains: list[str] = []
        dom = np.empty(n, dtype=np.int32)
        for ci, code in enumerate(vocab.COUNTRIES):
            m = self.country == ci
            names = [d for d, _ in vocab.EMAIL_DOMAINS[code]]
            p = np.array([w for _, w in vocab.EMAIL_DOMAINS[code]])
            base = len(self.domains)
            self.domains.extend(names)
            dom[m] = base + rng.choice(len(names), m.sum(), p=p / p.sum())
        self.email_domain = dom
        self.gmail = np.array([d == "gmail.com" for d in self.domains])[dom]
        # Patterns: 0 first<sep>last, 1 initial+last, 2 first<sep>last+yy, 3 first+digits.
        pattern = rng.choice(4, n, p=[0.50, 0.20, 0.20, 0.10])
        sep = rng.choice(3, n, p=[0.6, 0.3, 0.1])  # '.', '', '_'
        sep[(pattern == 1) | (pattern == 3)] = 1
        yy = (
            self.dob.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        ) % 100
        suffix = np.full(n, -1, dtype=np.int64)
        suffix[pattern == 2] = np.where(rng.random(n) < 0.6, yy + 100, rng.integers(10, 100, n))[
            pattern == 2
        ]
        suffix[pattern == 3] = rng.integers(1, 1000, n)[pattern == 3]
        self.email_pattern, self.email_sep, self.email_suffix = pattern, sep, suffix
        for _ in range(50):
            local = self._email_local(np.arange(n), sep=np.full(n, 1))
            key = _join(local, "@", _take(self.domains, dom))
            codes = key.dictionary_encode().indices.to_numpy()
            _, first_seen = np.unique(codes, return_index=True)
            dup = np.ones(n, dtype=bool)
            dup[first_seen] = False
            if not dup.any():
                break
            k = int(dup.sum())
            suffix[dup] = rng.integers(1000, 100000, k)
        self.email_suffix = suffix

    def _email_local(self, person: np.ndarray, sep: np.ndarray) -> pa.Array:
        """Local part for rows (person index, sep code 0 '.', 1 '', 2 '_', 3 ' ')."""
        pattern = self.email_pattern[person]
        initials = [x[:1] for x in self.first_lower]
        first_part = _select(
            pattern == 1,
            _take(initials, self.first[person]),
            _take(self.first_lower, self.first[person]),
        )
        last_part = _select(pattern == 3, _s(""), _take(self.last_lower, self.last[person]))
        suffix = self.email_suffix[person]
        # Year suffixes were stored as yy + 100 to keep a leading zero ('07').
        suffix_s = _select(
            suffix < 0,
            _s(""),
            _select(
                (suffix >= 100) & (suffix < 200),
                pc.utf8_slice_codeunits(_int_str(suffix), 1),
                _int_str(np.maximum(suffix, 0)),
            ),
        )
        local = _join(first_part, _take((".", "", "_", " "), sep), last_part, suffix_s)
        return local
