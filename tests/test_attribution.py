"""Attribution models against hand-computed values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from ccrm_core.conductor import attribution


def _frame(rows):
    return pd.DataFrame(rows, columns=["path", "conversions", "nulls", "value"])


# Three converting paths (one of them an aggregate of 2 journeys) and a null-only path.
THREE = _frame(
    [
        (["A", "B", "D", "C"], 1, 0, 40.0),
        (["B"], 2, 0, 20.0),
        (["C", "A"], 1, 3, 10.0),
        (["A"], 0, 5, 0.0),
    ]
)

# Hand solutions: channel -> (conversions, value). See the test docstring for the working.
HAND = {
    "first_touch": {"A": (1, 40), "B": (2, 20), "C": (1, 10), "D": (0, 0)},
    "last_touch": {"A": (1, 10), "B": (2, 20), "C": (1, 40), "D": (0, 0)},
    "linear": {"A": (3 / 4, 15), "B": (9 / 4, 30), "C": (3 / 4, 15), "D": (1 / 4, 10)},
    "position_based": {"A": (0.9, 21), "B": (2.1, 24), "C": (0.9, 21), "D": (0.1, 4)},
    "time_decay": {
        "A": (11 / 15, 28 / 3),
        "B": (32 / 15, 76 / 3),
        "C": (13 / 15, 74 / 3),
        "D": (4 / 15, 32 / 3),
    },
}


@pytest.mark.parametrize("model", sorted(HAND))
def test_heuristics_by_hand(model):
    """linear: A-B-D-C gives 1/4 each; C-A 1/2 each; B keeps its 2.
    position_based: 4 touches -> .4 / .1 / .1 / .4; 2 touches -> .5 / .5.
    time_decay (half-life 1 touch): A-B-D-C weighs 1/8, 1/4, 1/2, 1 (/ 15/8) and C-A 1/2, 1
    (/ 3/2): A = 1/15 + 2/3 = 11/15, B = 2/15 + 2, C = 8/15 + 1/3, D = 4/15."""
    got = attribution.heuristic(THREE, model, half_life=1.0).set_index("channel")
    for channel, (conv, value) in HAND[model].items():
        assert got.loc[channel, "conversions"] == pytest.approx(conv)
        assert got.loc[channel, "value"] == pytest.approx(value)
    assert got["conversions"].sum() == pytest.approx(4)
    assert got["value"].sum() == pytest.approx(70)


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown heuristic model"):
        attribution.heuristic(THREE, "u_shaped")


def test_missing_columns_named():
    with pytest.raises(ValueError, match="nulls"):
        attribution.heuristic(pd.DataFrame({"path": [["A"]], "conversions": [1], "value": [1]}))


def test_markov_first_order_by_hand():
    """Paths A>B>A (converts) and B (null). Transitions: start->A 1/2, start->B 1/2,
    A->B 1/2, A->conv 1/2, B->A 1/2, B->null 1/2.
    x_A = 1/2 + x_B/2, x_B = x_A/2  =>  x_A = 2/3, x_B = 1/3, P(conv) = (2/3 + 1/3)/2 = 1/2.
    Without A: B only reaches null -> P = 0, removal effect 1.
    Without B: x_A = 1/2 -> P = 1/4, removal effect 1/2.
    Shares 1 : 1/2 -> A gets 2/3 of the conversion, B 1/3."""
    paths = _frame([(["A", "B", "A"], 1, 0, 30.0), (["B"], 0, 1, 0.0)])
    got = attribution.markov(paths, order=1).set_index("channel")
    assert got.loc["A", "removal_effect"] == pytest.approx(1.0)
    assert got.loc["B", "removal_effect"] == pytest.approx(0.5)
    assert got.loc["A", "conversions"] == pytest.approx(2 / 3)
    assert got.loc["B", "value"] == pytest.approx(10.0)


def test_markov_chain_solution_matches_hand_probabilities():
    """Paths A>B (conv), A (null), B (conv): start->A 2/3, start->B 1/3, A->B 1/2, A->null 1/2,
    B->conv 1. P(conv) = 2/3 * 1/2 + 1/3 = 2/3; without A: 1/3 (effect 1/2); without B: 0."""
    paths = _frame([(["A", "B"], 1, 0, 10.0), (["A"], 0, 1, 0.0), (["B"], 1, 0, 20.0)])
    got = attribution.markov(paths, order=1).set_index("channel")
    assert got["removal_effect"].to_dict() == pytest.approx({"A": 0.5, "B": 1.0})
    assert got["conversions"].to_dict() == pytest.approx({"A": 2 / 3, "B": 4 / 3})
    assert got["value"].sum() == pytest.approx(30.0)


def test_markov_second_order_by_hand():
    """Order 2 on A>B>A (conv) and B>A (null): states A, A>B, B>A, B. Chain:
    start->A 1/2, start->B 1/2, A->A>B, A>B->B>A, B->B>A, B>A->conv 1/2, B>A->null 1/2.
    P(conv) = 1/2. Removing A kills every path (effect 1). Removing B leaves start->A->(A>B
    removed) -> 0: effect 1. Equal shares."""
    paths = _frame([(["A", "B", "A"], 1, 0, 10.0), (["B", "A"], 0, 1, 0.0)])
    got = attribution.markov(paths, order=2).set_index("channel")
    assert got["removal_effect"].to_dict() == pytest.approx({"A": 1.0, "B": 1.0})
    assert got["conversions"].to_dict() == pytest.approx({"A": 0.5, "B": 0.5})
    # First order, for contrast: start->A 1/2, start->B 1/2, A->B 1/3, A->conv 1/3,
    # A->null 1/3, B->A 1. x_A = 1/3 + x_B/3, x_B = x_A -> x_A = 1/2, P = 1/2.
    # Without B: x_A = 1/3 -> P = 1/6, effect 2/3; without A: effect 1 -> A 3/5, B 2/5.
    first = attribution.markov(paths, order=1).set_index("channel")
    assert first["removal_effect"].to_dict() == pytest.approx({"A": 1.0, "B": 2 / 3})
    assert first["conversions"].to_dict() == pytest.approx({"A": 0.6, "B": 0.4})


def test_markov_is_deterministic_and_handles_numpy_paths():
    rng = np.random.default_rng(0)
    paths = _random_paths(rng, 3000, 6)
    a = attribution.markov(paths, order=3)
    as_arrays = paths.assign(path=[np.array(p, dtype=object) for p in paths["path"]])
    b = attribution.markov(as_arrays, order=3)
    pd.testing.assert_frame_equal(a, b)
    assert a["conversions"].sum() == pytest.approx(paths["conversions"].sum())


def _random_paths(rng, n, n_channels):
    names = [f"ch{i:02d}" for i in range(n_channels)]
    rows = []
    for _ in range(n):
        length = int(rng.integers(1, 5))
        path = [names[i] for i in rng.integers(0, n_channels, length)]
        conv = int(rng.random() < 0.3)
        rows.append((path, conv, 1 - conv, conv * float(rng.integers(10, 100))))
    return _frame(rows)


def _brute_force_shapley(paths: pd.DataFrame) -> dict[str, float]:
    """Average marginal contribution over every ordering of the channels."""
    channels = sorted({c for p in paths["path"] for c in p})
    sets = [(frozenset(p), c) for p, c in zip(paths["path"], paths["conversions"], strict=True)]

    def worth(coalition):
        return sum(c for s, c in sets if s <= coalition)

    phi = dict.fromkeys(channels, 0.0)
    for order in itertools.permutations(channels):
        seen = frozenset()
        for ch in order:
            phi[ch] += worth(seen | {ch}) - worth(seen)
            seen = seen | {ch}
    return {k: v / math.factorial(len(channels)) for k, v in phi.items()}


def test_shapley_matches_brute_force_over_orderings():
    rng = np.random.default_rng(1)
    paths = _random_paths(rng, 400, 5)
    got = attribution.shapley(paths).set_index("channel")["conversions"].to_dict()
    assert got == pytest.approx(_brute_force_shapley(paths))


def test_shapley_efficiency_with_14_channels():
    rng = np.random.default_rng(2)
    paths = _random_paths(rng, 5000, 14)
    got = attribution.shapley(paths)
    assert len(got) == 14
    assert got["conversions"].sum() == pytest.approx(paths["conversions"].sum())
    assert got["value"].sum() == pytest.approx(paths["value"].sum())


def test_shapley_symmetry():
    """X and Y always appear together, so they are interchangeable: equal credit."""
    paths = _frame(
        [
            (["X", "Y"], 4, 1, 40.0),
            (["Y", "X", "Z"], 2, 0, 30.0),
            (["Z"], 3, 2, 15.0),
            (["X", "W", "Y"], 1, 5, 5.0),
        ]
    )
    got = attribution.shapley(paths).set_index("channel")
    assert got.loc["X", "conversions"] == pytest.approx(got.loc["Y", "conversions"])
    assert got.loc["X", "value"] == pytest.approx(got.loc["Y", "value"])
    # and by hand: X = 4/2 + 2/3 + 1/3 = 3, Z = 2/3 + 3, W = 1/3
    assert got["conversions"].to_dict() == pytest.approx(
        {"W": 1 / 3, "X": 3.0, "Y": 3.0, "Z": 11 / 3}
    )


def test_shapley_refuses_too_many_channels():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="at most 20 channels"):
        attribution.shapley(_random_paths(rng, 2000, 22))


def test_attribute_all_and_by_segment():
    seg_a = THREE.assign(scheme="tier", segment="a")
    seg_b = _frame([(["D", "C"], 5, 1, 50.0), (["A"], 1, 9, 10.0)]).assign(
        scheme="tier", segment="b"
    )
    out = attribution.attribute_by_segment(pd.concat([seg_a, seg_b]))
    assert set(out["model"]) == set(attribution.model_names())
    totals = out.groupby(["segment", "model"])["conversions"].sum()
    assert totals.loc["a"].to_numpy() == pytest.approx(4.0)
    assert totals.loc["b"].to_numpy() == pytest.approx(6.0)
    last_b = out[(out["segment"] == "b") & (out["model"] == "last_touch")].set_index("channel")
    assert last_b["conversions"].to_dict() == {"A": 1.0, "C": 5.0, "D": 0.0}


def test_empty_paths_are_left_out_but_counted():
    paths = _frame([([], 3, 0, 30.0), (["A"], 1, 1, 5.0)])
    ps = attribution.prepare_paths(paths)
    assert ps.unattributed_conversions == 3 and ps.unattributed_value == 30
    out = attribution.attribute_all(paths)
    assert out.groupby("model")["conversions"].sum().to_numpy() == pytest.approx(1.0)


def test_reconcile_and_calibrate():
    bottom_up = pd.DataFrame(
        {
            "channel": ["email", "sms", "paid_search"],
            "conversions": [10, 5, 2],
            "value": [1000.0, 500.0, 200.0],
        }
    )
    top_down = pd.DataFrame(
        {"channel": ["email", "paid_search", "tv"], "contribution": [250.0, 400.0, 900.0]}
    )
    rec = attribution.reconcile(bottom_up, top_down, revenue_per_conversion=50.0).set_index(
        "channel"
    )
    assert rec.loc["email", "calibration_factor"] == pytest.approx(0.25)
    assert rec.loc["paid_search", "calibration_factor"] == pytest.approx(2.0)
    assert rec.loc["tv", "view"] == "top_down_only" and not rec.loc["tv", "addressable"]
    assert np.isnan(rec.loc["tv", "calibration_factor"])
    assert rec.loc["sms", "view"] == "bottom_up_only"
    assert rec.loc["tv", "incremental_conversions"] == pytest.approx(18.0)
    seg = pd.DataFrame(
        {
            "scheme": ["tier"] * 2,
            "segment": ["a", "b"],
            "channel": ["email"] * 2,
            "conversions": [6.0, 4.0],
            "value": [600.0, 400.0],
        }
    )
    cal = attribution.calibrate(seg, rec.reset_index())
    # segments keep their bottom-up shares and add up to the top-down total of the channel
    assert cal["calibrated_revenue"].tolist() == pytest.approx([150.0, 100.0])
    text = attribution.reconciliation_summary(rec.reset_index().assign(model="markov_1"))
    assert "tv is seen only top-down" in text and "email" in text


def _naive_path_set(paths: pd.DataFrame):
    """Distinct paths in order of first occurrence with summed counts, by plain Python."""
    sums: dict[tuple, list[float]] = {}
    for path, conv, nulls, value in paths[["path", "conversions", "nulls", "value"]].itertuples(
        index=False
    ):
        key = tuple(path) if path is not None else ()
        row = sums.setdefault(key, [0.0, 0.0, 0.0])
        row[0] += conv
        row[1] += nulls
        row[2] += value
    return {k: v for k, v in sums.items() if k and v[0] + v[1] > 0}


def test_prepare_paths_groups_by_content_whatever_the_path_objects():
    """Shared list objects (simulated journeys), one list per row, tuples, numpy arrays (DuckDB)
    and missing paths all group by content, in order of first occurrence."""
    rng = np.random.default_rng(4)
    base = _random_paths(rng, 600, 5)
    shared = list(base["path"].to_numpy(dtype=object)[rng.integers(0, 40, 3000)])
    shared[::97] = [None] * len(shared[::97])
    shared[::89] = [[] for _ in shared[::89]]
    frame = pd.DataFrame(
        {
            "path": pd.Series(shared, dtype=object),
            "conversions": rng.integers(0, 2, 3000).astype(float),
            "nulls": rng.integers(0, 2, 3000).astype(float),
            "value": rng.integers(0, 50, 3000).astype(float),
        }
    )
    expected = _naive_path_set(frame)
    variants = {
        "shared lists": frame,
        "a list per row": frame.assign(
            path=[None if p is None else list(p) for p in frame["path"]]
        ),
        "tuples": frame.assign(path=[None if p is None else tuple(p) for p in frame["path"]]),
        "numpy arrays": frame.assign(
            path=[None if p is None else np.array(p, dtype=object) for p in frame["path"]]
        ),
    }
    reference = None
    for name, variant in variants.items():
        ps = attribution.prepare_paths(variant)
        got_paths = [
            tuple(ps.channels[ps.codes[ps.path_index == i]]) for i in range(len(ps.length))
        ]
        assert got_paths == list(expected), name
        sums = np.array(list(expected.values()))
        assert np.array_equal(ps.conversions, sums[:, 0]), name
        assert np.array_equal(ps.nulls, sums[:, 1]), name
        assert np.array_equal(ps.value, sums[:, 2]), name
        assert list(ps.channels) == sorted(ps.channels), name
        assert np.array_equal(ps.position, np.concatenate([np.arange(n) for n in ps.length]))
        missing = frame["path"].map(lambda p: p is None or len(p) == 0)
        assert ps.unattributed_conversions == frame.loc[missing, "conversions"].sum(), name
        assert ps.unattributed_value == frame.loc[missing, "value"].sum(), name
        result = attribution.attribute_all(ps)
        if reference is None:
            reference = result
        pd.testing.assert_frame_equal(result, reference, check_exact=True)


def test_prepare_paths_of_nothing():
    ps = attribution.prepare_paths(_frame([]))
    assert ps.n_channels == 0 and len(ps.length) == 0 and len(ps.codes) == 0
    only_empty = attribution.prepare_paths(_frame([([], 2, 1, 9.0), (None, 1, 0, 1.0)]))
    assert len(only_empty.length) == 0
    assert only_empty.unattributed_conversions == 3 and only_empty.unattributed_value == 10


def test_markov_states_numbered_as_by_a_sort():
    """The lookup-table numbering of chain states equals numpy's sorted unique."""
    from ccrm_core.conductor.attribution.models import _distinct_keys

    rng = np.random.default_rng(5)
    for bound in (1, 7, 1331, 1 << 40):
        keys = rng.integers(0, bound, 5000) if bound < 1 << 40 else rng.integers(0, 9, 5000) << 36
        distinct, inverse = _distinct_keys(keys, bound)
        want_distinct, want_inverse = np.unique(keys, return_inverse=True)
        assert np.array_equal(distinct, want_distinct)
        assert np.array_equal(inverse, want_inverse)


def test_simulated_journeys_repeat_path_objects():
    """simulate_journeys (the benchmark's journeys): reproducible, paths of 1..12 touches,
    common journeys share one list object, as the docstring says."""
    a = attribution.simulate_journeys(5000, 6, seed=3)
    b = attribution.simulate_journeys(5000, 6, seed=3)
    pd.testing.assert_frame_equal(a, b)
    lengths = a["path"].map(len)
    assert lengths.between(1, 12).all()
    assert a["path"].map(id).nunique() < len(a)
    assert (a["nulls"] == 1 - a["conversions"]).all()
