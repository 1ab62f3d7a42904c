"""How Google Ads and Meta want identifiers written before hashing: test vectors from the
platforms' documentation (the source is named on each), and the SHA-256 of the normalised text;
and the same rules in SQL (normalise_sql) against the Python reference on tricky values.

Hashes below are literals, not recomputed here, so a change in any normalisation rule or in the
hashing fails the test. Where a platform publishes the hash of an example value, the literal is
that published hash; otherwise it is SHA-256 of the documented normalised form.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from ccrm_core.conductor.audience import normalise as n
from ccrm_core.conductor.audience import normalise_sql as ns

# -- Google Ads Customer Match ------------------------------------------------------------------
# Source: Google Ads API, "Customer Match: normalize and hash user data" / enhanced conversions
# "Normalize and hash user-provided data": trim, lower-case, remove every '.' before the domain
# of gmail.com and googlemail.com addresses; phones in E.164 with '+' and the country code;
# OfflineUserAddressInfo: first name lower-cased with extra spaces removed, last name lower-case
# with no punctuation; country code ISO 3166-1 alpha-2 and postal code sent unhashed.
GOOGLE_VECTORS = [
    (n.google_email, " Test.User@Gmail.com ", "testuser@gmail.com"),
    (n.google_email, "Jane.Doe@GoogleMail.com", "janedoe@googlemail.com"),
    (n.google_email, "Jane.Doe@Example.com", "jane.doe@example.com"),  # dots kept elsewhere
    (n.google_email, "not-an-email", None),
    (n.google_phone, "+1 (800) 555-0100", "+18005550100"),
    (n.google_phone, "+44 20 7946 0958", "+442079460958"),
    (n.google_phone, "0044 20 7946 0958", "+442079460958"),  # international prefix 00
    (n.google_phone, "(800) 555-0100", None),  # no country code: cannot be E.164
    (n.google_first_name, "  Mary   Ann ", "mary ann"),
    (n.google_last_name, "O'Brien-Smith", "obriensmith"),
    (n.google_last_name, " Van  Dyke ", "van dyke"),
    (n.google_country, "us", "US"),
    (n.google_country, "USA", None),
]


@pytest.mark.parametrize(("fn", "raw", "want"), GOOGLE_VECTORS)
def test_google_normalisation(fn, raw, want):
    assert fn(raw) == want


def test_google_zip_is_clear_text_and_us_five_digits():
    assert n.google_zip("94043-1351", "US") == "94043"
    assert n.google_zip(" sw1a  1aa ", "GB") == "SW1A 1AA"
    assert n.google_zip("123", "US") is None


def test_published_hash_of_a_normalised_gmail_address():
    # TikTok's customer-file documentation publishes the SHA-256 of the normalised address
    # janedoe@gmail.com; Google's rules turn ' Jane.Doe@Gmail.com ' into exactly that address
    assert n.google_email(" Jane.Doe@Gmail.com ") == "janedoe@gmail.com"
    assert (
        n.sha256_hex(n.google_email(" Jane.Doe@Gmail.com "))
        == "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"
    )


def test_google_hashes_of_documented_examples():
    # SHA-256 of the normalised forms above (Google publishes the rule, not these digests)
    assert (
        n.sha256_hex(n.google_email(" Test.User@Gmail.com "))
        == "dae9c7c55697ba170d6b494c458649bd469af525520280d0dcfc98d74d13b17e"
    )
    assert (
        n.sha256_hex(n.google_phone("+1 (800) 555-0100"))
        == "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30"
    )


# -- Meta Custom Audiences ----------------------------------------------------------------------
# Source: Meta Marketing API, "Custom Audiences: hashing and normalizing data" (customer list
# keys EMAIL, PHONE, FN, LN, ZIP, CT, ST, COUNTRY, DOBY, GEN) and the Business SDK's
# CustomAudience.normalize_key: phone '+1 (616) 954-1234' -> '16169541234'; email trimmed and
# lower-cased; names lower-case without punctuation; city lower-case without spaces ('menlopark');
# state 2-letter lower-case; US zip the first 5 digits, UK area, district and sector; country
# 2-letter lower-case; year of birth YYYY; gender f / m.
META_VECTORS = [
    (n.meta_email, " John_Smith@Gmail.com ", "john_smith@gmail.com"),
    (n.meta_email, "Jane.Doe@gmail.com", "jane.doe@gmail.com"),  # Meta keeps Gmail dots
    (n.meta_phone, "+1 (616) 954-1234", "16169541234"),
    (n.meta_phone, "0044 20 7946 0958", "442079460958"),
    (n.meta_phone, "616-954-1234", None),  # without the country code
    (n.meta_name, "Mary", "mary"),
    (n.meta_name, "Mary-Ann O'Neil", "maryannoneil"),
    (n.meta_name, "José", "josé"),  # UTF-8 letters kept
    (n.meta_city, "Menlo Park", "menlopark"),
    (n.meta_state, "CA", "ca"),
    (n.meta_country, "US", "us"),
    (n.meta_gender, "Female", "f"),
    (n.meta_gender, "M", "m"),
    (n.meta_gender, "unknown", None),
]


@pytest.mark.parametrize(("fn", "raw", "want"), META_VECTORS)
def test_meta_normalisation(fn, raw, want):
    assert fn(raw) == want


def test_meta_zip_and_year_of_birth():
    assert n.meta_zip("94025-1234", "US") == "94025"
    assert n.meta_zip("SW1A 1AA", "GB") == "sw1a1"  # area, district and sector
    assert n.meta_zip("T3A 9J4", "CA") == "t3a9j4"
    assert n.meta_birth_year(date(1997, 2, 16)) == "1997"
    assert n.meta_birth_year("1997-02-16") == "1997"


def test_meta_published_phone_hash():
    # Meta Conversions API documentation, the example request's user_data.ph: the SHA-256 of
    # the normalised phone 12345678901 (a '+1 234 567 8901' written as Meta asks)
    assert n.meta_phone("+1 234 567 8901") == "12345678901"
    assert (
        n.sha256_hex(n.meta_phone("+1 234 567 8901"))
        == "254aa248acb47dd654ca3ea53f48c2c26d641d23d7e2e93a1ec56258df7674c4"
    )


def test_meta_hashes_of_documented_examples():
    # SHA-256 of the documented normalised forms
    assert (
        n.sha256_hex(n.meta_phone("+1 (616) 954-1234"))
        == "e49610c4fd8254dcc1ee420dcaabaa9e023d600ed513308cd6b7c236fd21f476"
    )
    assert (
        n.sha256_hex(n.meta_city("Menlo Park"))
        == "0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685"
    )
    assert (
        n.sha256_hex(n.meta_country("US"))
        == "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"
    )


def test_the_two_platforms_hash_the_same_phone_differently():
    # the old generic file hashed '+E.164' for every platform: Meta would never match it
    assert n.sha256_hex(n.google_phone("+16169541234")) != n.sha256_hex(
        n.meta_phone("+16169541234")
    )


def test_missing_values_are_none():
    for fn in (n.google_email, n.google_phone, n.meta_email, n.meta_phone, n.meta_name):
        assert fn(None) is None and fn("") is None and fn("   ") is None
    assert n.sha256_hex(None) is None


# -- the same rules in SQL (normalise_sql), for whole audiences -----------------------------------
# Tricky raw values: non-ASCII letters and white space, case and compatibility forms that
# differ between Unicode implementations, Gmail dots and +tags, phone formats, hostile text.
TRICKY_TEXT = [
    "José", "  Mary   Ann ", "O'Brien-Smith", " Van  Dyke ", "Ünal", "ÉLODIE", "straße", "ẞ",
    "İstanbul", "ΟΔΥΣΣΕΥΣ", "Σ", "ǅemal", "李小龍", "محمد", "नमस्ते", "e\u0301", "\u2126", "ﬁne",
    "Ⅻ", "½", "x²", "٣", "\u00a0Anna\u00a0", "\u2003Em", "Anna\u200bBelle", "\u212a",
    "Ａｎｎａ", "ᾼ", "\U0001d400", "😀", "a\x1cb", "a\x0bb", "\x1f", "x\x00y", "A\x7fB", "Zoë",
    "=cmd|' /C calc'!A0", "+1234", "-1+1", "@SUM(1+1)", "\tTab", "\rCR", "a\nb", 'Quo"te',
    "comma, name", "", "   ", "123", "Mc-Donald 3rd", "d'Artagnan", "-", "=", "@", "a_b",
]  # fmt: skip
TRICKY_EMAILS = [
    " Test.User@Gmail.com ", "Jane.Doe@GoogleMail.com", "j.d+tag@gmail.com", "a.b@GMAIL.COM",
    ".@gmail.com", "...@gmail.com", "x@y", "not-an-email", "a b@example.com", "=cmd@evil.com",
    "+a@b.co", "-x@b.co", "@x@b.co", "ÜSER@exämple.de", "İ@x.co", "a@b@c.com",
    "a\u00a0b@ex.com", "a\tb@x.com", "user@sub.gmail.com", "jane.doe+ads@googlemail.com",
    "a@b.c", "x@gmail.com.", "x@.com", "@gmail.com", "x@gmail..com", "a\x1cb@x.com",
    "ab@x.\u212aom",
]  # fmt: skip
TRICKY_PHONES = [
    "+1 (800) 555-0100", "+44 20 7946 0958", "0044 20 7946 0958", "(800) 555-0100", "+0 123",
    "+1-800-555-0100 ext 5", "+1.800.555.0100", "+1/800/555/0100", "++1800", "001800555010",
    "+123456", "+1234567", "+1234567890123456", "+123456789012345", "=1+2", "+", "00",
    "+\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", "+12345678\u00b2",
    "+1 800\u00a0555 0100", "0000123456789", "+14155550101", " +1\x1c8005550100", "-1 800 555",
    "@18005550100", "+0018005550100", "00+18005550100",
]  # fmt: skip
TRICKY_POSTAL = [
    "94043-1351", " sw1a  1aa ", '=HYPERLINK("x")', "-123", "+44", "SW1A1AA", "12 34", "ab-cd",
    "\t1", "1234", "SW1A 1AA", "sw1a 1", "A B C", "9404", "straße 1", "\u00a0123\u00a045",
    "T3A 9J4", "12345-6789-1",
]  # fmt: skip
TRICKY_COUNTRIES = ["US", " us", "gb", "GB", "DE", "USA", "=1", None, "", "Ch", "\u212aR"]


def _tricky_values() -> list:
    ascii_ = [chr(i) for i in range(1, 128)]
    around = [f"{c}a{c}b{c}" for c in ascii_] + [f"+1800{c}5550100" for c in ascii_]
    return [
        *TRICKY_TEXT, *TRICKY_EMAILS, *TRICKY_PHONES, *TRICKY_POSTAL, *ascii_, *around,
        *(f"{c}ab@x.co" for c in ascii_), None,
    ]  # fmt: skip


@pytest.mark.parametrize("rule", sorted(ns.RULES))
def test_sql_rules_equal_the_python_reference(rule):
    reference, sql = ns.RULES[rule]
    values = list(dict.fromkeys(_tricky_values()))
    two = sql.__code__.co_argcount == 2
    cases = [(v, c) for v in values for c in TRICKY_COUNTRIES] if two else [(v,) for v in values]
    con = duckdb.connect()
    con.register(
        "raw",
        pd.DataFrame(
            {
                "v": pd.Series([c[0] for c in cases], dtype=object),
                "c": pd.Series([c[-1] if two else None for c in cases], dtype=object),
            }
        ),
    )
    args = ("v", "c") if two else ("v",)
    with ns.python_rules(con):
        got = [
            row[0] for row in con.execute(f"SELECT {ns.rule_sql(rule, *args)} FROM raw").fetchall()
        ]
    want = [reference(*case) for case in cases]
    assert [(c, g, w) for c, g, w in zip(cases, got, want, strict=True) if g != w] == []
    assert any(w is not None for w in want)  # the values exercise the rule
    con.close()


def test_sql_birth_year_and_hash_equal_the_python_reference():
    con = duckdb.connect()
    days = [date(1, 1, 1), date(987, 6, 5), date(1997, 2, 16), date(9999, 12, 31)]
    got = [
        con.execute(f"SELECT {ns.birth_year_sql('?::DATE')}", [d]).fetchall()[0][0] for d in days
    ]
    assert got == [n.meta_birth_year(d) for d in days]
    texts = ["testuser@gmail.com", "josé", "李小龍", "+18005550100", "😀"]
    hashes = [con.execute("SELECT sha256(?)", [t]).fetchall()[0][0] for t in texts]
    assert hashes == [n.sha256_hex(t) for t in texts]
    con.close()


def test_python_rules_are_registered_only_inside_the_block():
    con = duckdb.connect()
    with ns.python_rules(con):
        assert con.execute(
            f"SELECT {ns.rule_sql('meta_name', chr(39) + 'José' + chr(39))}"
        ).fetchall() == [("josé",)]
    with pytest.raises(duckdb.Error):
        con.execute(f"SELECT {ns.rule_sql('meta_name', chr(39) + 'José' + chr(39))}").fetchall()
    con.close()
