"""Small random-draw helpers of the generator: per-group and per-row categorical draws, Zipf
weights, daytime clock times and one-character typos. Each draws from the generator passed in, in
a fixed order, so the data stays a function of the seed.
"""

from __future__ import annotations

import numpy as np

from ccrm_core.synthetic.parameters import _HOUR_WEIGHTS


def _choice_by_group(rng: np.random.Generator, groups: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Per row, draw a category from table[group] (rows of probabilities); loops over groups."""
    out = np.empty(len(groups), dtype=np.int16)
    u = rng.random(len(groups))
    cum = np.cumsum(table, axis=1)
    cum /= cum[:, -1:]
    for g in range(table.shape[0]):
        m = groups == g
        if m.any():
            out[m] = np.minimum(np.searchsorted(cum[g], u[m], side="right"), table.shape[1] - 1)
    return out


def _choice_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Per row of a (n, k) weight matrix (k small), draw a column proportional to its weights."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), weights.shape[1] - 1)


def _zipf(k: int, s: float = 0.9, shift: float = 8.0) -> np.ndarray:
    w = 1.0 / (np.arange(k) + shift) ** s
    return w / w.sum()


def _hours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Time of day in days (fraction) following a daytime-heavy hourly profile."""
    hour = rng.choice(24, n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    return (hour + rng.random(n)) / 24.0


def _typo_variants(rng: np.random.Generator, names: tuple[str, ...], k: int = 3) -> list[str]:
    """k one-character edits per name (substitute, delete, transpose, double), never the first
    letter, never equal to the name. Loops over the vocabulary, not over rows."""
    keyboard = "qwertyuiopasdfghjklzxcvbnm"
    out: list[str] = []
    for name in names:
        made: list[str] = []
        attempts = 0
        while len(made) < k:
            attempts += 1
            if len(name) < 3 or attempts > 50:
                made.append(name + name[-1])
                continue
            i = int(rng.integers(1, len(name)))
            op = int(rng.integers(0, 4))
            if op == 0:
                ch = keyboard[int(rng.integers(0, len(keyboard)))]
                new = name[:i] + ch + name[i + 1 :]
            elif op == 1:
                new = name[:i] + name[i + 1 :]
            elif op == 2 and i < len(name) - 1:
                new = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
            else:
                new = name[:i] + name[i] + name[i:]
            if new != name and new not in made and new.strip() and new[0] == name[0]:
                made.append(new)
        out.extend(made)
    return out
