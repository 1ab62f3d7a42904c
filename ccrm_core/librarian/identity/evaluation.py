"""Measuring identity resolution against planted persons: pairwise precision and recall, and a
harder variant of any record set with planted truth (no e-mail, no phone, heavier corruption of
the duplicates), as sources such as loyalty cards, store sign-ups or purchased lists look.

`records_without_contacts` drops email and phone, keeps each person's first record as it is
and changes every further record ("duplicate") with the rates of HARD_VARIANT_RATES: at most one
change to the name (a one-letter typo in the first or last name, first and last name swapped,
or a nickname), at most one of a move to another record's address or a missing or mistyped
birth date (day and month swapped, or a day off), and independently a missing postal code;
a duplicate whose name, or address and birth date, the source already changed gets no further
change there. So
each duplicate keeps two of name, birth date and address recognisable, as the generator keeps
two of email, phone and name: matching stays feasible, but no single field can be trusted. The
result depends only on the input and the seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ccrm_core.librarian.identity.model import NICKNAMES

# Per duplicate record: the chance of each change. Name changes exclude each other (their
# rates sum to at most 1), and so do the address and birth date changes.
NAME_CHANGES: dict[str, float] = {
    "first_name_typo": 0.15,
    "last_name_typo": 0.15,
    "names_swapped": 0.10,
    "nickname": 0.10,
}
ADDRESS_OR_BIRTH_CHANGES: dict[str, float] = {
    "moved": 0.25,
    "birth_date_missing": 0.15,
    "birth_date_typo": 0.05,
}
POSTAL_CODE_MISSING = 0.05
HARD_VARIANT_RATES: dict[str, float] = {
    **NAME_CHANGES,
    **ADDRESS_OR_BIRTH_CHANGES,
    "postal_code_missing": POSTAL_CODE_MISSING,
}
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# canonical first name -> its nicknames (first one used), from the matcher's table
_NICKS_OF: dict[str, list[str]] = {}
for _nick, _name in NICKNAMES.items():
    _NICKS_OF.setdefault(_name, []).append(_nick)


def pairwise_accuracy(customer_ids: pd.Series, persons: pd.Series) -> dict:
    """Pairwise precision and recall of a clustering against the planted persons (one value per
    record in both series, same order): a record pair is predicted when both records have the
    same customer id, true when they belong to the same person.

    Returns {precision, recall, predicted_pairs, true_pairs, found_pairs}; precision is 1.0
    when nothing is predicted, recall 1.0 when nothing is to be found."""
    frame = pd.DataFrame({"c": customer_ids.to_numpy(), "p": persons.to_numpy()})

    def pairs(sizes: pd.Series) -> int:
        n = sizes.to_numpy(dtype=np.int64)
        return int((n * (n - 1) // 2).sum())

    found = pairs(frame.groupby(["c", "p"]).size())
    predicted = pairs(frame.groupby("c").size())
    true = pairs(frame.groupby("p").size())
    return {
        "precision": found / predicted if predicted else 1.0,
        "recall": found / true if true else 1.0,
        "predicted_pairs": predicted,
        "true_pairs": true,
        "found_pairs": found,
    }


def _typo(rng: np.random.Generator, text: str) -> str:
    """One edit (substitute, delete, transpose or double a letter), never the first letter."""
    if not isinstance(text, str) or len(text) < 3:
        return text
    i = int(rng.integers(1, len(text)))
    op = int(rng.integers(0, 4))
    if op == 0:
        letter = _LETTERS[int(rng.integers(0, len(_LETTERS)))]
        new = text[:i] + (letter.upper() if text[i].isupper() else letter) + text[i + 1 :]
    elif op == 1:
        new = text[:i] + text[i + 1 :]
    elif op == 2 and i < len(text) - 1:
        new = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    else:
        new = text[:i] + text[i] + text[i:]
    return new if new != text else text[:i] + text[i:] + text[-1]


def _date_typo(rng: np.random.Generator, value) -> object:
    """Day and month swapped when both are valid as the other, else one day off."""
    if value is None or pd.isna(value):
        return value
    day = pd.Timestamp(value)
    if day.day <= 12 and day.day != day.month:
        return pd.Timestamp(day.year, day.day, day.month)
    return day + pd.Timedelta(days=1 if rng.random() < 0.5 else -1)


def _exclusive(
    rng: np.random.Generator, n: int, changes: list[tuple[str, float]], eligible: np.ndarray
) -> dict[str, np.ndarray]:
    """Per change, which rows get it: at most one of `changes` per row, each with its rate."""
    edges = np.cumsum([rate for _, rate in changes])
    if edges[-1] > 1.0 + 1e-12:
        raise ValueError(f"rates of {[c for c, _ in changes]} add up to more than 1")
    u = rng.random(n)
    lower = np.concatenate([[0.0], edges[:-1]])
    return {
        name: eligible & (u >= lo) & (u < hi)
        for (name, _), lo, hi in zip(changes, lower, edges, strict=True)
    }


def records_without_contacts(
    records: pd.DataFrame,
    persons: pd.Series,
    seed: int = 15,
    rates: dict[str, float] | None = None,
) -> pd.DataFrame:
    """The records (src_customers columns) without email and phone, every duplicate record
    corrupted as described in the module docstring. `persons`: the planted person per record
    (same order). Rows keep their order and ids."""
    rates = {**HARD_VARIANT_RATES, **(rates or {})}
    rng = np.random.default_rng(seed)
    out = records.drop(columns=[c for c in ("email", "phone") if c in records.columns])
    out = out.reset_index(drop=True).copy()
    person = pd.Series(persons.to_numpy()).reset_index(drop=True)
    duplicate = person.duplicated().to_numpy()
    n = len(out)
    # Changes the source already holds count: a duplicate whose name (or address or birth
    # date) already differs from its person's first record gets no further change there.
    first_of = (
        out.groupby(person.to_numpy(), sort=False).head(1).set_index(person[~duplicate].to_numpy())
    )

    def differs(columns: list[str]) -> np.ndarray:
        cols = [c for c in columns if c in out]
        mine = out[cols].astype(str).apply(lambda col: col.str.lower())
        theirs = first_of.loc[person.to_numpy(), cols].astype(str)
        theirs = theirs.apply(lambda col: col.str.lower()).set_axis(out.index)
        return (mine != theirs).any(axis=1).to_numpy()

    name_ok = duplicate & ~differs(["first_name", "last_name"])
    other_ok = duplicate & ~differs(["address_line", "postal_code", "birth_date"])
    draws = _exclusive(rng, n, [(k, rates[k]) for k in NAME_CHANGES], name_ok)
    draws |= _exclusive(rng, n, [(k, rates[k]) for k in ADDRESS_OR_BIRTH_CHANGES], other_ok)
    draws["postal_code_missing"] = (rng.random(n) < rates["postal_code_missing"]) & duplicate
    address_cols = [
        c for c in ("address_line", "city", "region", "postal_code", "country") if c in out
    ]
    movers = np.flatnonzero(draws["moved"])
    donors = rng.integers(0, n, len(movers))  # another record's address (another person's)
    for col in address_cols:
        values = out[col].to_numpy(dtype=object).copy()
        values[movers] = out[col].to_numpy(dtype=object)[donors]
        out[col] = values
    first = out["first_name"].to_numpy(dtype=object).copy()
    last = out["last_name"].to_numpy(dtype=object).copy()
    for i in np.flatnonzero(draws["nickname"]):
        nicks = _NICKS_OF.get(str(first[i]).lower()) if isinstance(first[i], str) else None
        if nicks:
            first[i] = nicks[0].capitalize()
    for i in np.flatnonzero(draws["first_name_typo"]):
        first[i] = _typo(rng, first[i])
    for i in np.flatnonzero(draws["last_name_typo"]):
        last[i] = _typo(rng, last[i])
    swap = draws["names_swapped"]
    first[swap], last[swap] = last[swap], first[swap].copy()
    out["first_name"], out["last_name"] = first, last
    if "birth_date" in out:
        birth = out["birth_date"].to_numpy(dtype=object).copy()
        for i in np.flatnonzero(draws["birth_date_typo"]):
            birth[i] = _date_typo(rng, birth[i])
        birth[draws["birth_date_missing"]] = None
        dated = pd.api.types.is_datetime64_any_dtype(out["birth_date"])
        out["birth_date"] = pd.to_datetime(pd.Series(birth), errors="coerce") if dated else birth
    if "postal_code" in out:
        postal = out["postal_code"].to_numpy(dtype=object).copy()
        postal[draws["postal_code_missing"]] = None
        out["postal_code"] = postal
    return out


def accuracy_without_contacts(customers: int, seed: int = 42, days: int = 730) -> dict:
    """Resolve the no-email, no-phone variant of a generated company (`customers` persons,
    `seed`) and score it against the planted persons: pairwise_accuracy's figures plus
    records and seconds (resolution alone)."""
    import time

    from ccrm_core.librarian.identity.matching import resolve_records
    from ccrm_core.synthetic import sample

    data = sample.generate(customers, days, seed)
    truth = data["src_customers"].merge(
        data["ground_truth_identity"], on=["source_system", "source_id"], how="left"
    )
    hard = records_without_contacts(truth.drop(columns="person_id"), truth["person_id"])
    started = time.perf_counter()
    resolved = resolve_records(hard, as_of=sample.DEFAULT_END_DATE)
    seconds = time.perf_counter() - started
    figures = pairwise_accuracy(resolved["customer_id"], truth["person_id"])
    return {**figures, "records": len(hard), "seconds": seconds}
