"""Standardisation of contact fields: hand-checked values."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from ccrm_core.librarian import standardise as s


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("jane@example", None),  # no TLD
        ("jane@@example.com", None),
        ("", None),
        (None, None),
        ("a b@example.com", None),
    ],
)
def test_normalise_email(raw, expected):
    assert s.normalise_email(raw) == expected


def test_email_match_key_drops_plus_tag_and_gmail_dots():
    assert s.email_match_key("j.doe+shop@gmail.com") == "jdoe@gmail.com"
    assert s.email_match_key("j.doe@googlemail.com") == "jdoe@gmail.com"
    # Dots matter outside Gmail.
    assert s.email_match_key("j.doe+x@yahoo.com") == "j.doe@yahoo.com"
    assert s.email_match_key(None) is None


@pytest.mark.parametrize(
    "raw, country, expected",
    [
        ("(415) 555-0123", "US", "+14155550123"),
        ("415.555.0123", None, "+14155550123"),  # default country US
        ("+1 415 555 0123", "GB", "+14155550123"),  # explicit + wins over country
        ("020 7946 0958", "GB", "+442079460958"),
        ("030 901820", "DE", "+4930901820"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("12345", "US", None),
        ("not a phone", "US", None),
        ("", "US", None),
    ],
)
def test_to_e164(raw, country, expected):
    assert s.to_e164(raw, country) == expected


@pytest.mark.parametrize(
    "raw, country, expected",
    [
        ("2134", "US", "02134"),  # leading zero lost by a spreadsheet
        ("94103-1234", "US", "94103-1234"),
        ("9410", "US", "09410"),
        ("ABCDE", "US", None),
        ("sw1a1aa", "GB", "SW1A 1AA"),
        ("EC1A 1BB", "GB", "EC1A 1BB"),
        ("12345", "GB", None),
        ("m5v3l9", "CA", "M5V 3L9"),
        ("4109", "DE", "04109"),
        ("75001", "FR", "75001"),
        ("123", "FR", "00123"),
        (None, "US", None),
    ],
)
def test_normalise_postal(raw, country, expected):
    assert s.normalise_postal(raw, country) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  jane ", "Jane"),
        ("MARY  ANN", "Mary Ann"),
        ("o'brien", "O'Brien"),
        ("McDonald", "McDonald"),
        ("jOHN", "John"),
        ("   ", None),
    ],
)
def test_normalise_name(raw, expected):
    assert s.normalise_name(raw) == expected


def test_region_codes_upper_case():
    assert s.normalise_region("il") == "IL"
    assert s.normalise_region("scotland") == "Scotland"


def test_date_status():
    low, high = date(2000, 1, 1), date(2020, 1, 1)
    assert s.date_status(None, low, high) == "missing"
    assert s.date_status(date(2010, 5, 5), low, high) == "valid"
    assert s.date_status(datetime(2021, 1, 1, 5), low, high) == "invalid"
    assert s.date_status(date(1999, 12, 31), low, high) == "invalid"


def test_standardise_records_statuses_and_raw_untouched():
    raw = pd.DataFrame(
        {
            "source_system": ["a", "a", "b"],
            "source_id": ["1", "2", "3"],
            "first_name": [" jane ", "John", None],
            "email": ["Jane@Example.com", "bad@@x", "john@example.com"],
            "phone": ["(415) 555-0123", "123", "+14155550124"],
            "postal_code": ["2134", "XYZ", None],
            "country": ["us", "US", None],
            "birth_date": [date(1980, 1, 1), date(2030, 1, 1), None],
            "updated_at": [datetime(2024, 1, 1), datetime(1900, 1, 1), datetime(2025, 6, 1)],
        }
    )
    before = raw.copy()
    out = s.standardise_records(raw, as_of=date(2024, 12, 31))
    pd.testing.assert_frame_equal(raw, before)  # raw values are never overwritten
    assert list(out["first_name"]) == ["Jane", "John", None]
    assert list(out["email"]) == ["jane@example.com", None, "john@example.com"]
    assert list(out["email_status"]) == ["valid", "invalid", "valid"]
    assert list(out["email_std_syntax"]) == [False, True, True]
    assert list(out["phone"]) == ["+14155550123", None, "+14155550124"]
    assert list(out["phone_status"]) == ["valid", "invalid", "valid"]
    assert list(out["phone_std_syntax"]) == [False, True, True]
    assert list(out["postal_code"]) == ["02134", None, None]
    assert list(out["postal_code_status"]) == ["valid", "invalid", "missing"]
    assert list(out["country"]) == ["US", "US", None]
    assert list(out["birth_date_status"]) == ["valid", "invalid", "missing"]
    # 2025-06-01 is after the data end (+1 day): invalid; 1900 is before 1990: invalid.
    assert list(out["updated_at_status"]) == ["valid", "invalid", "invalid"]
    assert out["updated_at"].isna().tolist() == [False, True, True]
    # Columns absent from the input (last_name, address_line, ...) come back empty.
    assert out["last_name"].isna().all() and out["address_line"].isna().all()


# --- fast paths and parallel runs: the same results as the plain per-value functions ---------


def _email_variants() -> list[str]:
    import random

    rnd = random.Random(11)
    seeds = [
        "jane.doe@example.com",
        "j_o'neil+shop@mail.co.uk",
        "x@a-b.com",
        "a@1.com",
        "a@b.test",
        "a@b.local",
        "a@ab--c.com",
        "a@xn--bcher-kva.com",
        "a@b.c1",
        "a@b.123",
        "a@b-.com",
        "a@-b.com",
        "a..b@c.com",
        ".a@b.com",
        "a.@b.com",
        "a@b",
        "a@b.c-",
        "a@b..com",
        "a" * 70 + "@b.com",
        "a@" + "b" * 64 + ".com",
        "a@" + ("b" * 60 + ".") * 5 + "com",
        "a" * 240 + "@bb.com",
        "info@b.com",
        '"a b"@c.com',
        "a@[1.2.3.4]",
        "é@b.com",
    ]
    alphabet = "abz09.-_+@'!#$%&*/=?^`{|}~ xAZé\"<>[](),"
    out = list(seeds)
    for seed in seeds:
        for _ in range(40):
            chars = list(seed)
            for _ in range(rnd.randint(1, 3)):
                pos = rnd.randrange(len(chars) + 1)
                op = rnd.random()
                if op < 0.4:
                    chars.insert(pos, rnd.choice(alphabet))
                elif chars:
                    pos = min(pos, len(chars) - 1)
                    if op < 0.7:
                        chars[pos] = rnd.choice(alphabet)
                    else:
                        del chars[pos]
            out.append("".join(chars))
    return out


def test_plain_email_fast_path_agrees_with_email_validator():
    from email_validator import EmailNotValidError, validate_email

    accepted = 0
    for text in _email_variants():
        if not s._plain_email_ok(text):
            continue
        accepted += 1
        try:
            checked = validate_email(text, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            checked = None
        assert checked == text, text
    assert accepted > 100  # the fast path is exercised


def test_nanp_fast_path_agrees_with_parse():
    import random

    rnd = random.Random(5)
    regions = ["US", "CA", "GB", "DE", "FR", "AG", "ZZ", None]
    digits = ["4155550123", "2125550199", "9055550123", "8005550100", "9005550100"]
    digits += ["".join(rnd.choice("0123456789") for _ in range(10)) for _ in range(400)]
    for d in digits:
        for key in (d, "+1" + d, "1" + d, "+" + d, d[:9], "+1" + d + "1", "+1" + d[:9] + "x"):
            for region in regions:
                assert s._to_e164_fast(key, region) == s.to_e164(key, region), (key, region)


def _varied_records(n: int = 3000) -> pd.DataFrame:
    import random

    rnd = random.Random(3)
    phones = [
        "(415) 555-0123",
        "415.555.0123",
        "+1 415 555 0124",
        "020 7946 0958",
        "12345",
        "030 901820",
        "06 12 34 56 78",
        "1-800-FLOWERS",
        "",
        None,
        "+44 7460 275631",
    ]
    emails = [
        "Jane@Example.com",
        "bad@@x",
        "john@example.com",
        " a.b+c@gmail.com ",
        "",
        None,
        "x@y.test",
        "é@b.com",
        "info@Shop.co.uk",
    ]
    rows = []
    for i in range(n):
        rows.append(
            {
                "source_system": rnd.choice(["a", "b"]),
                "source_id": str(i),
                "first_name": rnd.choice([" jane ", "JOHN", "o'brien", None, "  "]),
                "last_name": rnd.choice(["McDonald", "smith", None]),
                "email": rnd.choice(emails) if rnd.random() < 0.5 else f"p{i}@mail.com",
                "phone": rnd.choice(phones)
                if rnd.random() < 0.5
                else f"{rnd.randint(200, 999)}-555-{rnd.randint(0, 9999):04d}",
                "postal_code": rnd.choice(["2134", "sw1a1aa", "XYZ", None, "75001"]),
                "country": rnd.choice(["us", "GB", "CA", "de", "FR", None]),
                "birth_date": rnd.choice([date(1980, 1, 1), date(2030, 1, 1), None]),
                "updated_at": rnd.choice([datetime(2024, 1, 1, 5), datetime(1900, 1, 1), None]),
            }
        )
    return pd.DataFrame(rows)


def test_parallel_run_matches_serial_run(monkeypatch):
    # as in `ccrm build`: one Python thread, so the slow rules go to worker processes
    monkeypatch.setattr(s.threading, "active_count", lambda: 1)
    pending = s._Pending(s.normalise_name, [("jane",)] * 50, min_parallel=2)
    assert (pending.pool is not None) == (s._workers() > 1)
    assert pending.result() == ["Jane"] * 50
    raw = _varied_records()
    serial = s._standardise(raw, date(2024, 12, 31), min_parallel=10**9)
    parallel = s._standardise(raw, date(2024, 12, 31), min_parallel=2)
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)
    assert s._apply_all(s.normalise_name, [("jane",)] * 50, min_parallel=2) == ["Jane"] * 50


def test_no_worker_processes_beside_other_threads(monkeypatch):
    """In the app's server (other Python threads) nothing is forked: the work runs in place."""
    monkeypatch.setattr(s.threading, "active_count", lambda: 3)
    pending = s._Pending(s.normalise_name, [("jane",)] * 50, min_parallel=2)
    assert pending.pool is None and pending.result() == ["Jane"] * 50


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_datetime_columns_read_like_python_objects(unit):
    raw = _varied_records(200)
    for name in ("birth_date", "updated_at"):
        raw[name] = pd.to_datetime(raw[name]).astype(f"datetime64[{unit}]")
    as_objects = raw.copy()
    for name in ("birth_date", "updated_at"):
        as_objects[name] = raw[name].astype(object).where(raw[name].notna(), None)
    expected = s.standardise_records(as_objects, date(2024, 12, 31))
    pd.testing.assert_frame_equal(s.standardise_records(raw, date(2024, 12, 31)), expected)
    # All missing: the same as before too (pandas picks the unit then).
    raw["updated_at"] = pd.Series(pd.NaT, index=raw.index).astype(f"datetime64[{unit}]")
    as_objects["updated_at"] = None
    pd.testing.assert_frame_equal(
        s.standardise_records(raw, date(2024, 12, 31)),
        s.standardise_records(as_objects, date(2024, 12, 31)),
    )


def test_blank_check_matches_blank_to_none():
    for value in [
        None,
        float("nan"),
        "",
        " ",
        "\t\n",
        "\u00a0",
        "\u2003",
        "\x1c",
        "a",
        " a ",
        "\u200b",
    ]:
        assert s._is_blank(value) == (s._blank_to_none(value) is None), repr(value)


def test_us_validity_check_agrees_with_phonenumbers():
    import random

    import phonenumbers

    rnd = random.Random(8)
    nationals = [str(rnd.randint(2_000_000_000, 9_999_999_999)) for _ in range(3000)]
    nationals += [
        f"{a}{rnd.randint(2_000_000, 9_999_999)}"
        for a in (212, 415, 800, 900, 905, 876)
        for _ in range(200)
    ]
    for national in nationals:
        number = phonenumbers.PhoneNumber(country_code=1, national_number=int(national))
        expected = phonenumbers.is_valid_number_for_region(number, "US")
        assert s._valid_for_us(national) == expected, national
