"""PII masks and hashes."""

from __future__ import annotations

import hashlib
import math

import pandas as pd

from ccrm_core.foundation import privacy


def test_masks_keep_just_enough_to_recognise():
    assert privacy.mask_email("jane.doe@example.com") == "j***@example.com"
    assert privacy.mask_email("broken-address") == "b***"
    assert privacy.mask_phone("+1 (415) 555-0123") == "***-***-0123"
    assert privacy.mask_phone("12") == "***"
    assert privacy.mask_name("Jane") == "J***"
    assert privacy.mask_value("postal_code", "94110") == "***"
    assert privacy.mask_value("revenue", 12.5) == 12.5


def test_missing_values_stay_missing():
    for missing in (None, math.nan, pd.NA):
        assert privacy.mask_email(missing) is None
        assert privacy.mask_phone(missing) is None
        assert privacy.mask_name(missing) is None
        assert privacy.mask_value("email", missing) is None
        assert privacy.sha256_hex(missing) is None
    assert privacy.mask_email("") == ""


def test_mask_frame_masks_only_pii_columns():
    frame = pd.DataFrame(
        {"customer_id": ["C1", "C2"], "email": ["ann@x.com", None], "first_name": ["Ann", "Bo"]}
    )
    masked = privacy.mask_frame(frame)
    assert masked["customer_id"].tolist() == ["C1", "C2"]
    assert masked["email"].tolist()[0] == "a***@x.com" and masked["email"].isna().tolist()[1]
    assert masked["first_name"].tolist() == ["A***", "B***"]
    assert frame["email"].tolist()[0] == "ann@x.com"  # the input is not changed


def test_hash_is_sha256_of_the_normalised_value():
    expected = hashlib.sha256(b"ann@example.com").hexdigest()
    assert privacy.sha256_hex("ann@example.com") == expected
