"""The learning-curve benchmark's figure: one point per requested size, drawn
from the rows stored with the docs (benchmarks/RESULTS_data_efficiency.json)."""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
ROWS = ROOT / "benchmarks" / "RESULTS_data_efficiency.json"


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("data_efficiency")


def _row(method, n_train, size, value):
    return {"method": method, "n_train": n_train, "size": size, "mean R@1": value}


def test_all_pairs_is_one_point_at_the_mean_size(bench):
    # "all" differs between group splits; fixed sizes do not.
    rows = [
        _row("a", 100, 100, 0.1),
        _row("a", 100, 100, 0.3),
        _row("a", 3188, "all", 0.4),
        _row("a", 3212, "all", 0.6),
        _row("b", 100, 100, 9.0),
    ]
    sizes, means, sds = bench.curve_points(rows, "a")
    assert sizes == [100, 3200]
    np.testing.assert_allclose(means, [0.2, 0.5])
    np.testing.assert_allclose(sds, [0.1, 0.1])


def test_rows_without_a_size_key_group_by_their_pair_count(bench):
    rows = [_row("a", 50, None, 0.2), _row("a", 60, None, 0.4)]
    for r in rows:
        del r["size"]
    assert bench.curve_points(rows, "a")[0] == [50, 60]


def test_stored_rows_match_the_docs_table(bench):
    rows = json.loads(ROWS.read_text())
    openmoji = [r for r in rows if r["data"] == "openmoji"]
    sizes, means, _ = bench.curve_points(openmoji, bench.DEFAULTS)
    assert len(sizes) == 5 and sizes[:4] == [100, 250, 500, 1000]
    text = (ROOT / "docs" / "small_data.md").read_text()
    # The docs' OpenMoji row of the defaults, rounded as printed there.
    for m in means:
        assert f"{m:.3f}" in text


def test_rows_of_earlier_definitions_are_not_drawn(bench):
    rows = [_row("FuseMixAligner()", 100, 100, 0.1), _row("before: x", 100, 100, 0.2)]
    assert bench.drawn(rows) == rows[:1]
    stored = json.loads(ROWS.read_text())
    methods = {r["method"] for r in bench.drawn(stored)}
    assert bench.DEFAULTS in methods
    assert not any(m.startswith("before:") for m in methods)


def test_plot_only_redraws_the_figure(bench, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "curve.png"
    assert bench.main(["--plot-only", "--include", str(ROWS), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_methods_filter_keeps_the_labels_that_start_with_a_prefix(bench):
    every = [label for label, _ in bench.methods("mfeat", 500)]
    assert every[0] == bench.DEFAULTS and len(every) == len(set(every)) == 9
    chosen = bench.methods("mfeat", 500, ["FuseMixAligner()", "same, no mixing"])
    assert [label for label, _ in chosen] == [
        bench.DEFAULTS,
        "same, no mixing (alpha=0, equal steps)",
    ]
    # the ablations are what their labels say
    params = dict(bench.methods("mfeat", 500, ["same,"]))
    assert (
        params["same, without the hubness correction (csls_neighbors=0)"].csls_neighbors
        == 0
    )
    both = params[
        "same, without the correction and the anchors (csls_neighbors=0, "
        "anchor_weight=0)"
    ]
    assert (both.csls_neighbors, both.anchor_weight) == (0, 0)
    alone = params[
        "same, adapters alone (cca_weight=0, anchor_weight=0, csls_neighbors=0)"
    ]
    assert (alone.cca_weight, alone.anchor_weight, alone.csls_neighbors) == (0, 0, 0)
    no_mixing = params["same, no mixing (alpha=0, equal steps)"]
    # every join and the correction as the defaults have them
    assert no_mixing.alpha == 0.0
    assert (
        no_mixing.cca_weight,
        no_mixing.anchor_weight,
        no_mixing.csls_neighbors,
    ) == (
        "auto",
        "auto",
        "auto",
    )
    assert bench.methods("mfeat", 500, ["nothing"]) == []
