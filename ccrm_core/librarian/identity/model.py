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

METHODS = (
    "email",
    "phone_last_name",
    "manual",
    "probabilistic",
    "single_record",
    "no_customer_record",
    "login",
    "anonymous",
)

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
# First and last name swapped, each allowing a typo or a nickname that starts like the name.
SWAPPED_NAMES_SQL = (
    "jaro_winkler_similarity(first_name_l, last_name_r) >= 0.9 "
    "AND jaro_winkler_similarity(last_name_l, first_name_r) >= 0.9"
)
# Dates are compared as 'YYYY-MM-DD' text: same year, month and day exchanged (US and European
# orders mixed up).
DAY_MONTH_SWAPPED_SQL = (
    "substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4) "
    "AND substr(birth_date_l, 6, 2) = substr(birth_date_r, 9, 2) "
    "AND substr(birth_date_l, 9, 2) = substr(birth_date_r, 6, 2)"
)
# Least m a trained level keeps: a level EM saw (almost) never among matches would otherwise
# get a near-zero m and read as overwhelming evidence against a match.
M_FLOOR = 1e-4
# Levels whose m and u stay fixed at their defaults (never trained).
FIXED_LEVELS = (("last_name", "swapped with first name"),)
# Each comparison: (name, levels). A level: (label, sql_condition, default m, default u).
# The first level of each is the NULL level. Default m/u are used as-is for small inputs and as
# starting values for training; they are deliberately conservative.
COMPARISONS: tuple[tuple[str, tuple[tuple[str, str, float | None, float | None], ...]], ...] = (
    (
        "first_name",
        (
            ("missing", "first_name_l IS NULL OR first_name_r IS NULL", None, None),
            ("exact", "first_name_l = first_name_r", 0.78, 0.010),
            ("nickname", "first_name_canon_l = first_name_canon_r", 0.05, 0.0005),
            # first and last name swapped: all the evidence of the two names is weighed here
            ("swapped with last name", SWAPPED_NAMES_SQL, 0.02, 0.00001),
            (
                "similar (JW >= 0.9)",
                "jaro_winkler_similarity(first_name_l, first_name_r) >= 0.9",
                0.08,
                0.005,
            ),
            ("one typo", "damerau_levenshtein(first_name_l, first_name_r) <= 1", 0.02, 0.002),
            ("different", "ELSE", 0.05, 0.98249),
        ),
    ),
    (
        "last_name",
        (
            ("missing", "last_name_l IS NULL OR last_name_r IS NULL", None, None),
            ("exact", "last_name_l = last_name_r", 0.85, 0.005),
            # weight 0 (m = u, fixed): a swap counts once, under first_name
            ("swapped with first name", SWAPPED_NAMES_SQL, 0.01, 0.01),
            (
                "similar (JW >= 0.9)",
                "jaro_winkler_similarity(last_name_l, last_name_r) >= 0.9",
                0.08,
                0.005,
            ),
            ("one typo", "damerau_levenshtein(last_name_l, last_name_r) <= 1", 0.02, 0.002),
            ("different", "ELSE", 0.04, 0.978),
        ),
    ),
    (
        "birth_date",
        (
            ("missing", "birth_date_l IS NULL OR birth_date_r IS NULL", None, None),
            ("exact", "birth_date_l = birth_date_r", 0.90, 0.0005),
            ("one typo", "damerau_levenshtein(birth_date_l, birth_date_r) <= 1", 0.05, 0.01),
            ("day and month swapped", DAY_MONTH_SWAPPED_SQL, 0.02, 0.0005),
            ("different", "ELSE", 0.03, 0.989),
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

# A rule pairs records l and r that agree on every (left column, right column) of the rule:
# l.<left> = r.<right>. Rules name match columns (see matching._match_frame).
Rule = tuple[tuple[str, str], ...]


def same(*columns: str) -> Rule:
    """The rule "equal on each of these columns"."""
    return tuple((c, c) for c in columns)


def rule_sql(rule: Rule) -> str:
    """Splink SQL of a rule (l./r. aliases); column names from this module only."""
    return " AND ".join(f"l.{left} = r.{right}" for left, right in rule)


def rule_columns(rule: Rule) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for pair in rule for c in pair))


# Blocking: the record pairs Splink scores. A rule is used when every column it needs holds
# values (a rule over an empty column finds nothing) and it pairs at most
# MAX_PAIRS_PER_RECORD x records (a placeholder value shared by half the records would flood
# the scoring). Each rule also requires the two records to be in different deterministic
# clusters (pairs inside one are linked already) and allowed to link (link groups); later rules
# skip pairs an earlier rule found.
BLOCKING_RULES: tuple[Rule, ...] = (
    same("first_name_canon", "last_name"),
    same("last_name", "birth_date"),
    same("first_name_canon", "birth_date"),
    (("first_name", "last_name"), ("last_name", "first_name")),  # names swapped
    same("phone"),
    same("postal_code", "address_line"),
    same("postal_code", "last_name"),
    same("postal_code", "birth_date"),
    same("address_line", "city"),
)
MAX_PAIRS_PER_RECORD = 50

# Training (expectation maximisation) blocks, tried in this order. A block is used when its
# columns hold values, it yields at least EM_MIN_PAIRS pairs, and it trains a comparison no
# earlier block trained (EM estimates every comparison except those its rule reads); training
# stops once every comparison with data is trained. Blocks on a shared email key or phone come
# first: most of their pairs are true matches, which keeps EM's "match" class anchored on real
# duplicates; without them, name, birth date and address blocks do the same work.
EM_BLOCKING_RULES: tuple[Rule, ...] = (
    same("email_key"),
    same("phone"),
    same("first_name_canon", "last_name"),
    same("birth_date", "postal_code"),
    same("birth_date", "city"),
    same("postal_code", "address_line"),
    same("birth_date"),
)
EM_MIN_PAIRS = 100
# The match columns each comparison reads (a block that uses one of them cannot train it).
COMPARISON_COLUMNS: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name", "first_name_canon"),
    "last_name": ("last_name",),
    "birth_date": ("birth_date",),
    "email": ("email_key",),
    "phone": ("phone",),
    "address": ("address_line", "postal_code", "city"),
}
# The source fields that feed each comparison (named in training notes).
COMPARISON_FIELDS: dict[str, str] = {
    "first_name": "first names (first_name)",
    "last_name": "last names (last_name)",
    "birth_date": "birth dates (birth_date)",
    "email": "email addresses (email)",
    "phone": "phone numbers (phone)",
    "address": "addresses (address_line, postal_code, city)",
}
# Match columns and comparisons in the words the Data Hygiene page uses.
FIELD_WORDS: dict[str, str] = {
    "first_name": "first name",
    "first_name_canon": "first name",
    "last_name": "last name",
    "birth_date": "birth date",
    "email_key": "email",
    "email": "email",
    "phone": "phone",
    "postal_code": "postal code",
    "address_line": "address line",
    "address": "address",
    "city": "city",
}
# Pairs that almost certainly match, for the prior (how often two random records match): the
# pairs these rules find, taken as DETERMINISTIC_RECALL of all true pairs.
PRIOR_RULES: tuple[Rule, ...] = (
    same("email_key"),
    same("phone", "last_name"),
    same("first_name_canon", "last_name", "birth_date"),
    same("first_name_canon", "last_name", "postal_code", "address_line"),
)

RECORD_COLUMNS = tuple(store.TABLES["src_customers"].column_names)
