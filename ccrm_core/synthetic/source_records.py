"""Source-record step of the generator: the src_customers columns, one row per source record.

Non-primary records of a person differ from the person in planted ways (nicknames and typos,
email case and gmail dots, moved addresses; at most one identity signal per person, so matching
stays feasible), and exact counts of data-quality defects are planted on all records (DEFECT_RATES;
which rows is kept in self.defect for the ground truth). Phones and addresses are formatted per
country here.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ccrm_core.synthetic import vocabulary as vocab
from ccrm_core.synthetic.columns import (
    _assemble,
    _dates,
    _dictionary,
    _digits,
    _fixed,
    _int_str,
    _join,
    _null_where,
    _s,
    _select,
    _take,
    _template,
    _timestamps,
    _vocab,
)
from ccrm_core.synthetic.draws import _choice_by_group, _typo_variants
from ccrm_core.synthetic.parameters import (
    DEFECT_RATES,
    EMAIL_CASE_RATE,
    GMAIL_DOT_RATE,
    IMPOSSIBLE_PHONES,
    MOVED_RATE,
    NAME_VARIATION_RATE,
    SYSTEMS,
)

# Phone formats per country and number length; weights per source system (rows: ecommerce,
# loyalty, call_center). Postal-code letters of GB inward codes and Canadian codes.
_NANP_FORMATS = ("(ddd) ddd-dddd", "ddd.ddd.dddd", "+1 ddd ddd dddd", "dddddddddd", "ddd-ddd-dddd")
_NANP_FORMAT_W = np.array(
    [[0.2, 0.1, 0.4, 0.2, 0.1], [0.2, 0.3, 0.1, 0.1, 0.3], [0.6, 0.1, 0.1, 0.1, 0.1]]
)
_INTL_FORMAT_W = np.array([[0.3, 0.5, 0.2], [0.6, 0.2, 0.2], [0.6, 0.2, 0.2]])
_INTL_FORMATS = {
    ("GB", 10): ("0dddd dddddd", "+44 dddd dddddd", "0dddddddddd"),
    ("DE", 11): ("0ddd dddddddd", "+49 ddd dddddddd", "0ddddddddddd"),
    ("DE", 10): ("0ddd ddddddd", "+49 ddd ddddddd", "0dddddddddd"),
    ("FR", 9): ("0d dd dd dd dd", "+33 d dd dd dd dd", "0ddddddddd"),
}
_GB_INWARD = "ABDEFGHJLNPQRSTUWXYZ"
_CA_LETTERS = "ABCEGHJKLMNPRSTVWXYZ"


class SourceRecordSteps:
    """src_customers strings with variations and defects (mixin of _Company)."""

    def variations_and_defects(self) -> None:
        """Plant variations and defects on the records and build the src_customers columns
        (self.src); also sets self.variation_counts and self.defect for the ground truth."""
        nonprimary = ~self.rec_primary
        slot = self._identity_slots()
        first_idx, last_idx, namevar, nick, typo = self._name_variations(slot, nonprimary)
        case, sep, toggle, moved = self._contact_variations(nonprimary)
        self.variation_counts = {
            "nickname": int(nick.sum()),
            "name_typo": int(typo.sum()),
            "email_case": int((case > 0).sum()),
            "email_dots": int(toggle.sum()),
            "moved_address": int(moved.sum()),
            "duplicate_records": int(nonprimary.sum()),
        }
        self.defect = self._plant_defects(self._defect_eligibility(slot, namevar))
        # The columns, in the order their random draws are made.
        first_s = _null_where(
            self._defect_mask("first_name", "missing"), self.first_vocab.take(pa.array(first_idx))
        )
        last_s = _null_where(
            self._defect_mask("last_name", "missing"), self.last_vocab.take(pa.array(last_idx))
        )
        email = self._email_column(case, sep)
        phone = self._phone_column()
        line, city, region, postal = self._address_columns(moved)
        dob = self._birth_dates()
        updated = self._updated_times()
        person = self.rec_person
        self.src = {
            "source_system": _dictionary(self.rec_system, SYSTEMS),
            "source_id": self.rec_ids,
            "first_name": first_s,
            "last_name": last_s,
            "email": email,
            "phone": phone,
            "address_line": line,
            "city": city,
            "region": region,
            "postal_code": postal,
            "country": _dictionary(self.country[person], vocab.COUNTRIES),
            "birth_date": _dates(dob),
            "created_at": _timestamps(self.seconds(self.rec_created)),
            "updated_at": _timestamps(self.seconds(updated)),
        }

    # -- variations (non-primary records) ------------------------------------------------------
    def _identity_slots(self) -> np.ndarray:
        """Per record, the one identity signal its person's records may differ in."""
        # Each multi-record person may differ in at most ONE identity signal across records:
        # 1 email, 2 phone, 3 name (+birth date). Matching then always keeps two of
        # {same email modulo case/dots, same phone digits, same name + birth date/postal code}.
        slot_person = self.rng.integers(0, 4, self.n)
        return slot_person[self.rec_person]

    def _name_vocabularies(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Set self.first_vocab (first names, then each name's nicknames, then 3 typos per name)
        and self.last_vocab (last names, then 3 typos per name). Returns per first name the
        offset and count of its nicknames, and the number of nicknames."""
        n_first = len(vocab.FIRST_NAMES)
        nick_forms = [f for name in vocab.FIRST_NAMES for f in vocab.NICKNAMES.get(name, ())]
        nick_start = np.zeros(n_first, dtype=np.int64)
        nick_count = np.zeros(n_first, dtype=np.int64)
        pos = 0
        for i, name in enumerate(vocab.FIRST_NAMES):
            forms = vocab.NICKNAMES.get(name, ())
            nick_start[i], nick_count[i] = pos, len(forms)
            pos += len(forms)
        typo_first = _typo_variants(self.rng, vocab.FIRST_NAMES)
        typo_last = _typo_variants(self.rng, vocab.LAST_NAMES)
        self.first_vocab = _vocab(list(vocab.FIRST_NAMES) + nick_forms + typo_first)
        self.last_vocab = _vocab(list(vocab.LAST_NAMES) + typo_last)
        return nick_start, nick_count, len(nick_forms)

    def _name_variations(
        self, slot: np.ndarray, nonprimary: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Nicknames and typos on non-primary records whose person may differ in the name.
        Returns the first and last name per record (indices into the vocabularies) and the
        masks: name varied, nickname, typo."""
        rng, R = self.rng, self.R
        person = self.rec_person
        n_first = len(vocab.FIRST_NAMES)
        n_last = len(vocab.LAST_NAMES)
        nick_start, nick_count, n_nicknames = self._name_vocabularies()
        first_idx = self.first[person].astype(np.int64)
        last_idx = self.last[person].astype(np.int64)
        namevar = nonprimary & (slot == 3) & (rng.random(R) < NAME_VARIATION_RATE)
        has_nick = nick_count[first_idx] > 0
        nick = namevar & has_nick & (rng.random(R) < 0.6)
        typo = namevar & ~nick
        typo_on_first = typo & (rng.random(R) < 0.5)
        typo_on_last = typo & ~typo_on_first
        which = (rng.random(R) * np.maximum(nick_count[first_idx], 1)).astype(np.int64)
        first_idx = np.where(nick, n_first + nick_start[first_idx] + which, first_idx)
        v3 = rng.integers(0, 3, R)
        base_first = self.first[person].astype(np.int64)
        first_idx = np.where(typo_on_first, n_first + n_nicknames + base_first * 3 + v3, first_idx)
        last_idx = np.where(typo_on_last, n_last + last_idx * 3 + v3, last_idx)
        return first_idx, last_idx, namevar, nick, typo

    def _contact_variations(
        self, nonprimary: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Email case (0 as is, 1 upper, 2 capitalised), email separator per record with gmail
        dots toggled, the toggled mask, and the records of persons who moved."""
        rng, R = self.rng, self.R
        person = self.rec_person
        case = np.where(nonprimary & (rng.random(R) < EMAIL_CASE_RATE), rng.integers(1, 3, R), 0)
        sep = self.email_sep[person].copy()
        toggle = nonprimary & self.gmail[person] & (self.email_pattern[person] != 3) & (sep != 2)
        toggle &= rng.random(R) < GMAIL_DOT_RATE
        sep[toggle] = 1 - sep[toggle]  # '.' <-> ''
        moved = nonprimary & (rng.random(R) < MOVED_RATE)
        return case, sep, toggle, moved

    # -- defects (all records) -----------------------------------------------------------------
    def _defect_eligibility(
        self, slot: np.ndarray, namevar: np.ndarray
    ) -> dict[tuple[str, str], np.ndarray]:
        """(column, first defect of the column) -> records that may carry the column's defects:
        only where matching stays feasible."""
        single = (self.n_rec == 1)[self.rec_person]
        el_email = single | (slot == 1)
        el_phone = single | (slot == 2)
        el_name = single | (slot == 3)
        return {
            ("first_name", "missing"): el_name & ~namevar,
            ("last_name", "missing"): el_name & ~namevar,
            ("email", "missing"): el_email,
            ("phone", "missing"): el_phone,
            ("postal_code", "missing"): np.ones(self.R, bool),
            ("birth_date", "future"): el_name,
            ("updated_at", "stale"): self.rec_created < self.t_stale - 2.0,
        }

    def _plant_defects(
        self, eligible: dict[tuple[str, str], np.ndarray]
    ) -> dict[tuple[str, str], np.ndarray]:
        """(column, defect) -> sorted record indices: exact counts (rate of all records),
        disjoint within a column, and a record misses at most one of its names."""
        rng, R = self.rng, self.R
        defect = {}  # (column, defect) -> record indices
        taken_names = np.zeros(R, dtype=bool)
        for column in (
            "first_name",
            "last_name",
            "email",
            "phone",
            "postal_code",
            "birth_date",
            "updated_at",
        ):
            specs = [(d, rate) for col, d, _, rate in DEFECT_RATES if col == column]
            key = (column, specs[0][0])
            el = eligible[key].copy()
            if column in ("first_name", "last_name"):
                el &= ~taken_names
            pool = rng.permutation(np.flatnonzero(el))
            start = 0
            for d, rate in specs:
                k = min(int(round(rate * R)), pool.size - start)
                defect[(column, d)] = np.sort(pool[start : start + k])
                start += k
            if column in ("first_name", "last_name"):
                taken_names[defect[(column, "missing")]] = True
        return defect

    def _defect_mask(self, col: str, d: str) -> np.ndarray:
        """Per record, whether it carries defect d on column col."""
        m = np.zeros(self.R, dtype=bool)
        m[self.defect[(col, d)]] = True
        return m

    # -- columns -------------------------------------------------------------------------------
    def _email_column(self, case: np.ndarray, sep: np.ndarray) -> pa.Array:
        """Email per record: the person's address with the record's variations, malformed or
        missing where planted."""
        person = self.rec_person
        mal = self._defect_mask("email", "malformed")
        mal_kind = self.rng.integers(0, 3, self.R)  # 0 no domain, 1 space in local part, 2 no '@'
        sep = np.where(mal & (mal_kind == 1), 3, sep)
        local = self._email_local(person, sep)
        domain = _take(self.domains, self.email_domain[person])
        at = _select(mal & (mal_kind == 2), _s("."), _s("@"))
        dom = _select(mal & (mal_kind == 0), _s(""), domain)
        email = _join(local, at, dom)
        email = _select(case == 1, pc.utf8_upper(email), email)
        email = _select(case == 2, pc.utf8_capitalize(email), email)
        return _null_where(self._defect_mask("email", "missing"), email)

    def _phone_column(self) -> pa.Array:
        """Phone per record in a format typical of its system, impossible or missing where
        planted."""
        phone = self._phone_strings(self.rec_person)
        bad = self._defect_mask("phone", "impossible")
        phone = _select(
            bad,
            _take(IMPOSSIBLE_PHONES, self.rng.integers(0, len(IMPOSSIBLE_PHONES), self.R)),
            phone,
        )
        return _null_where(self._defect_mask("phone", "missing"), phone)

    def _address_columns(self, moved: np.ndarray) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
        """address_line, city, region, postal_code per record; moved records get a fresh address
        in the same country, postal codes are missing where planted."""
        person = self.rec_person
        comp = {k: v[person] for k, v in self.address.items()}
        moved_idx = np.flatnonzero(moved)
        if moved_idx.size:
            fresh = self._addresses(self.country[person[moved_idx]])
            for key_, vals in fresh.items():
                comp[key_][moved_idx] = vals
        line, city, region, postal = _address_strings(comp, self.country[person])
        postal = _null_where(self._defect_mask("postal_code", "missing"), postal)
        return line, city, region, postal

    def _birth_dates(self) -> np.ndarray:
        """Birth date per record (days since 1970-01-01): in the future or before 1900 where
        planted."""
        rng = self.rng
        dob = self.dob[self.rec_person].astype(np.int64)
        end_day = self.start_day + self.D - 1
        fut = self.defect[("birth_date", "future")]
        dob[fut] = end_day + rng.integers(1, 3650, fut.size)
        old = self.defect[("birth_date", "before_1900")]
        d1880 = (date(1880, 1, 1) - date(1970, 1, 1)).days
        d1900 = (date(1900, 1, 1) - date(1970, 1, 1)).days
        dob[old] = rng.integers(d1880, d1900, old.size)
        return dob

    def _updated_times(self) -> np.ndarray:
        """updated_at per record (generator days): >= created_at; stale ones older than the
        stale threshold."""
        rng, created = self.rng, self.rec_created
        lo = np.maximum(created, self.t_stale + 1.0)
        updated = lo + rng.random(self.R) * (self.D - lo)
        updated = np.where(created > self.D - 1e-3, created, updated)
        stale = self.defect[("updated_at", "stale")]
        updated[stale] = created[stale] + rng.random(stale.size) * (
            self.t_stale - 1.0 - created[stale]
        )
        return updated

    def _phone_strings(self, person: np.ndarray) -> pa.Array:
        rng = self.rng
        R = person.size
        country = self.country[person]
        length = self.phone_len[person]
        num = self.phone_num[person]
        system = self.rec_system
        pieces = []
        for ci, code in enumerate(vocab.COUNTRIES):
            for ln in np.unique(length[country == ci]):
                m = np.flatnonzero((country == ci) & (length == ln))
                formats = _NANP_FORMATS if code in ("US", "CA") else _INTL_FORMATS[(code, int(ln))]
                weights = _NANP_FORMAT_W if code in ("US", "CA") else _INTL_FORMAT_W
                fmt = _choice_by_group(rng, system[m], weights)
                digits = _digits(num[m], int(ln))
                for f, template in enumerate(formats):
                    sel = fmt == f
                    if sel.any():
                        pieces.append((m[sel], _template(template, digits[sel])))
        return _assemble(R, pieces)


def _address_strings(
    comp: dict[str, np.ndarray], country: np.ndarray
) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """address_line, city, region, postal_code from integer components (per-country formats)."""
    cities = vocab.CITIES
    city = comp["city"]
    n = city.size
    num = _int_str(comp["number"])
    en = _take(vocab.STREETS_EN, comp["street"] % len(vocab.STREETS_EN))
    de = _take(vocab.STREETS_DE, comp["street"] % len(vocab.STREETS_DE))
    fr = _take(vocab.STREETS_FR, comp["street"] % len(vocab.STREETS_FR))
    us_suf = _take(vocab.STREET_SUFFIXES_US, comp["suffix"] % len(vocab.STREET_SUFFIXES_US))
    gb_suf = _take(vocab.STREET_SUFFIXES_GB, comp["suffix"] % len(vocab.STREET_SUFFIXES_GB))
    apt = comp["apt"]
    us = _join(num, " ", en, " ", us_suf)
    us = _select(apt >= 0, _join(us, ", Apt ", _int_str(np.maximum(apt, 0))), us)
    code = np.array(vocab.COUNTRIES)[country]
    line = _select(code == "GB", _join(num, " ", en, " ", gb_suf), us)
    line = _select(code == "DE", _join(de, " ", num), line)
    line = _select(code == "FR", _join(num, " ", fr), line)
    city_s = _take([c[1] for c in cities], city)
    region_s = _take([c[2] for c in cities], city)
    # Postal codes: per-city prefix or outward code plus random digits/letters.
    outward_list = [o for c in cities for o in c[3].split()]
    outward_start = np.cumsum([0] + [len(c[3].split()) for c in cities])[:-1]
    outward = _take(outward_list, outward_start[city] + comp["outward"])
    prefix = _take([c[3].split()[0] for c in cities], city)
    a, b = comp["postal_a"], comp["postal_b"]
    us_post = _join(prefix, _fixed(_digits(a % 100, 2)))
    de_post = _join(prefix, _fixed(_digits(a % 1000, 3)))
    fr_post = us_post
    gb_in = np.empty((n, 3), dtype=np.uint8)
    gb_in[:, 0] = 48 + a % 10
    letters = np.frombuffer(_GB_INWARD.encode(), np.uint8)
    gb_in[:, 1] = letters[b % 20]
    gb_in[:, 2] = letters[(b // 20) % 20]
    gb_post = _join(outward, " ", _fixed(gb_in))
    ca_ld = np.empty((n, 3), dtype=np.uint8)
    ca_letters = np.frombuffer(_CA_LETTERS.encode(), np.uint8)
    ca_ld[:, 0] = 48 + a % 10
    ca_ld[:, 1] = ca_letters[b % 20]
    ca_ld[:, 2] = 48 + (a // 10) % 10
    ca_post = _join(outward, " ", _fixed(ca_ld))
    postal = _select(code == "GB", gb_post, us_post)
    postal = _select(code == "DE", de_post, postal)
    postal = _select(code == "FR", fr_post, postal)
    postal = _select(code == "CA", ca_post, postal)
    return line, city_s, region_s, postal
