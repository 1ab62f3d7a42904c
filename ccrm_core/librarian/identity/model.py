"""The matching model of identity resolution: defaults, training bounds, the nickname table, the
Splink comparisons (levels with default m and u probabilities) and the blocking rules.

Probabilities are per record pair; the default m/u values are used as-is for small record sets and
as starting values for training.
"""

from __future__ import annotations

from ccrm_core.foundation import store

DEFAULT_THRESHOLD = 0.95
DEFAULT_PAIR_FLOOR = 0.01
DEFAULT_MIN_TRAIN_RECORDS = 2000
# Bounds that keep training time flat as data grows (pairs sampled for u, pairs for each EM).
U_MAX_PAIRS = 5e5
U_MIN_COUNT_PER_LEVEL = 100  # stop sampling early once every level was seen this often
EM_MAX_PAIRS = 1e6
# Share of all true duplicate pairs the deterministic rules are assumed to find; sets the prior.
DETERMINISTIC_RECALL = 0.7
SEED = 42
# Prior match probability of two random records when there is too little data to train: low on
# purpose, so small record sets link only on strong evidence (names alone never suffice).
UNTRAINED_PRIOR = 1e-4

METHODS = ("email", "phone_last_name", "probabilistic", "single_record", "login", "anonymous")

# Nicknames -> canonical first name (lower case). Used only to compare first names.
NICKNAMES: dict[str, str] = {
    nick: name
    for name, nicks in {
        "robert": "bob bobby rob robbie bert",
        "william": "bill billy will willie liam",
        "richard": "rick ricky dick rich richie",
        "james": "jim jimmy jamie",
        "john": "jack johnny jon",
        "joseph": "joe joey",
        "michael": "mike mikey mick",
        "thomas": "tom tommy",
        "charles": "charlie chuck chas",
        "christopher": "chris kit",
        "daniel": "dan danny",
        "matthew": "matt matty",
        "anthony": "tony",
        "andrew": "andy drew",
        "edward": "ed eddie ted ned",
        "david": "dave davy",
        "joshua": "josh",
        "benjamin": "ben benny",
        "samuel": "sam sammy",
        "alexander": "alex al",
        "nicholas": "nick nicky",
        "jonathan": "jon jonny",
        "timothy": "tim timmy",
        "patrick": "pat paddy",
        "peter": "pete",
        "gregory": "greg",
        "kenneth": "ken kenny",
        "ronald": "ron ronnie",
        "donald": "don donnie",
        "lawrence": "larry",
        "gerald": "gerry jerry",
        "raymond": "ray",
        "frederick": "fred freddie",
        "elizabeth": "liz beth betty lizzie eliza libby",
        "margaret": "maggie meg peggy",
        "katherine": "kate katie kathy kat",
        "catherine": "cathy cate",
        "jennifer": "jen jenny",
        "patricia": "pat patty trish",
        "susan": "sue susie",
        "deborah": "deb debbie",
        "rebecca": "becky becca",
        "victoria": "vicky tori",
        "christine": "chris chrissy",
        "jessica": "jess jessie",
        "abigail": "abby",
        "samantha": "sam sammie",
        "alexandra": "alex lexi",
        "barbara": "barb babs",
        "dorothy": "dot dottie",
        "kimberly": "kim",
        "pamela": "pam",
        "cynthia": "cindy",
        "amanda": "mandy",
        "melissa": "mel missy",
        "stephanie": "steph",
        "nancy": "nan",
        "theresa": "tess terri",
        "steven": "steve stevie stephen",
        "christina": "tina chrissy",
        "jacqueline": "jackie",
        "theodore": "theo teddy",
        "zachary": "zach zack",
        "nathaniel": "nate nat",
        "douglas": "doug",
        "jeffrey": "jeff",
        "jacob": "jake",
        "gabriel": "gabe",
        "vincent": "vince vinny",
        "leonard": "len lenny",
        "eleanor": "nora elle",
        "judith": "judy",
        "frances": "fran frankie",
        "francis": "frank",
        "josephine": "josie jo",
        "kathleen": "kathy kat",
        "harold": "harry hal",
        "walter": "walt",
        "philip": "phil",
        "russell": "russ",
        "eugene": "gene",
        "isabella": "bella izzy",
        "olivia": "liv livvy",
        "madison": "maddie",
        "virginia": "ginny",
        "albert": "al bert",
        "johannes": "hannes",
        "gwendolyn": "gwen",
        "debra": "debbie deb",
        "alastair": "ali",
        "callum": "cal",
    }.items()
    for nick in nicks.split()
}

# --- the comparison model -------------------------------------------------------------------
# Each comparison: (name, levels). A level: (label, sql_condition, default m, default u).
# The first level of each is the NULL level. Default m/u are used as-is for small inputs and as
# starting values for training; they are deliberately conservative.
COMPARISONS: tuple[tuple[str, tuple[tuple[str, str, float | None, float | None], ...]], ...] = (
    (
        "first_name",
        (
            ("missing", "first_name_l IS NULL OR first_name_r IS NULL", None, None),
            ("exact", "first_name_l = first_name_r", 0.80, 0.010),
            ("nickname", "first_name_canon_l = first_name_canon_r", 0.05, 0.0005),
            (
                "similar (JW >= 0.9)",
                "jaro_winkler_similarity(first_name_l, first_name_r) >= 0.9",
                0.10,
                0.005,
            ),
            ("different", "ELSE", 0.05, 0.9845),
        ),
    ),
    (
        "last_name",
        (
            ("missing", "last_name_l IS NULL OR last_name_r IS NULL", None, None),
            ("exact", "last_name_l = last_name_r", 0.85, 0.005),
            (
                "similar (JW >= 0.9)",
                "jaro_winkler_similarity(last_name_l, last_name_r) >= 0.9",
                0.10,
                0.005,
            ),
            ("different", "ELSE", 0.05, 0.99),
        ),
    ),
    (
        "birth_date",
        (
            ("missing", "birth_date_l IS NULL OR birth_date_r IS NULL", None, None),
            ("exact", "birth_date_l = birth_date_r", 0.90, 0.0005),
            ("one typo", "damerau_levenshtein(birth_date_l, birth_date_r) <= 1", 0.05, 0.01),
            ("different", "ELSE", 0.05, 0.9895),
        ),
    ),
    (
        # Only exact agreement counts: user names are built from names, so "same user name at
        # another provider" or "similar address" mostly repeats the name evidence (measured:
        # every false merge on generated data came from such levels).
        "email",
        (
            ("missing", "email_key_l IS NULL OR email_key_r IS NULL", None, None),
            ("exact", "email_key_l = email_key_r", 0.70, 0.0001),
            ("different", "ELSE", 0.30, 0.9999),
        ),
    ),
    (
        "phone",
        (
            ("missing", "phone_l IS NULL OR phone_r IS NULL", None, None),
            ("exact", "phone_l = phone_r", 0.70, 0.0001),
            ("one digit off", "damerau_levenshtein(phone_l, phone_r) <= 1", 0.05, 0.0005),
            ("different", "ELSE", 0.25, 0.9994),
        ),
    ),
    (
        "address",
        (
            (
                "missing",
                "(address_line_l IS NULL OR address_line_r IS NULL) "
                "AND (postal_code_l IS NULL OR postal_code_r IS NULL)",
                None,
                None,
            ),
            (
                "same line and postal code",
                "address_line_l = address_line_r AND postal_code_l = postal_code_r",
                0.60,
                0.0005,
            ),
            (
                "similar line (JW >= 0.9)",
                "jaro_winkler_similarity(address_line_l, address_line_r) >= 0.9",
                0.10,
                0.001,
            ),
            ("same postal code", "postal_code_l = postal_code_r", 0.05, 0.005),
            ("same city", "city_l = city_r", 0.05, 0.05),
            ("different", "ELSE", 0.20, 0.9435),
        ),
    ),
)
COMPARISON_NAMES = tuple(name for name, _ in COMPARISONS)

# Pairs Splink scores: each blocking rule also requires the two records to be in different
# deterministic clusters (pairs inside one are linked already).
BLOCKING_RULES = (
    "l.first_name_canon = r.first_name_canon AND l.last_name = r.last_name",
    "l.last_name = r.last_name AND l.birth_date = r.birth_date",
    "l.first_name_canon = r.first_name_canon AND l.birth_date = r.birth_date",
    "l.phone = r.phone",
    "l.postal_code = r.postal_code AND l.address_line = r.address_line",
)
# EM runs on blocks where most pairs are true matches (shared email key; shared phone), which
# keeps the "match" class of EM anchored on real duplicates; each block estimates the m values
# of every comparison except its own.
EM_BLOCKING_RULES = ("l.email_key = r.email_key", "l.phone = r.phone")

RECORD_COLUMNS = tuple(store.TABLES["src_customers"].column_names)
