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
