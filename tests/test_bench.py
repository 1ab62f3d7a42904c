"""The bench machinery (not timings: no test asserts on wall time)."""

from __future__ import annotations

import json

import pytest

from ccrm_core import bench


def test_every_operation_names_an_importable_function():
    names = [op.name for op in bench.OPERATIONS]
    assert len(names) == len(set(names))
    for op in bench.OPERATIONS:
        assert callable(op.function()), op.name


def _tiny(ctx):
    return 7, {"p95_ms": 1.5}


def test_measure_once_runs_in_a_child_and_returns_rows_and_figures(tmp_path):
    ctx = bench.BenchContext("S", 10, tmp_path, tmp_path / "db", tmp_path, tmp_path)
    op = bench.Operation("tiny", "tests.test_bench:_tiny", "a tiny operation")
    rows, seconds, peak_mb, figures = bench._measure_once(op, ctx)
    assert rows == 7 and figures == {"p95_ms": 1.5}
    assert seconds >= 0 and peak_mb > 0


def _broken(ctx):
    raise ValueError("no data")


def test_a_failing_operation_is_reported_with_its_error(tmp_path):
    ctx = bench.BenchContext("S", 10, tmp_path, tmp_path / "db", tmp_path, tmp_path)
    op = bench.Operation("broken", "tests.test_bench:_broken", "fails")
    with pytest.raises(RuntimeError, match="broken: ValueError: no data"):
        bench._measure_once(op, ctx)


def test_results_are_saved_and_merged_by_operation(tmp_path):
    m1 = bench.Measurement("a", 10, 1.0, [1.0, 1.1, 0.9], 10.0, 100.0, "first", {})
    m2 = bench.Measurement("b", 20, 2.0, [2.0], 10.0, 50.0, "second", {"p95_ms": 3.0})
    bench.save("S", [m1], tmp_path)
    path = bench.save("S", [m2], tmp_path)
    saved = json.loads(path.read_text())
    assert saved["scale"] == "S" and saved["customers"] == 20_000
    assert [o["operation"] for o in saved["operations"]] == ["a", "b"]
    table = bench.format_table([m1, m2])
    assert "p95_ms=3" in table and table.count("\n") == 3


def test_unknown_scale_and_operation_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown scale 'X'"):
        bench.run_bench("X")
    with pytest.raises(ValueError, match="unknown operation nope"):
        bench.run_bench("S", only=["nope"], workdir=tmp_path)
