"""skfusemix.demo end to end on tiny stand-in data (the real encoders and
OpenMoji are exercised by the README's main command and the encoder tests)."""

import os

import numpy as np
import pytest
from sklearn.utils import Bunch

from skfusemix import CCAAligner, demo
from skfusemix.datasets import make_paired_latents

CATEGORIES = ["Animals & Nature", "Food & Drink", "Flags"]


class _TextEncoder:
    """Stands in for MiniLM: class names map to the y-latent of their class."""

    def __init__(self, centres):
        self.centres = centres

    def transform(self, texts):
        lower = [c.lower() for c in CATEGORIES]
        return np.stack([self.centres[lower.index(t)] for t in texts])


def _fake_openmoji(n=240, seed=0):
    rng = np.random.default_rng(seed)
    Zx, Zy = make_paired_latents(
        n, 24, 16, n_components=6, noise=0.3, random_state=seed
    )
    labels = rng.integers(0, 3, size=n)
    cx, cy = rng.normal(size=(3, 24)) * 2, rng.normal(size=(3, 16)) * 2
    Zx, Zy = Zx + cx[labels], Zy + cy[labels]
    categories = [CATEGORIES[c] for c in labels]
    categories[0] = None  # unknown category: left out of zero-shot
    data = Bunch(
        images=rng.integers(0, 255, size=(n, 6, 6, 3), dtype=np.uint8),
        texts=[f"emoji {i}" for i in range(n)],
        groups=np.arange(n) // 2,
        categories=categories,
        text_encoder=_TextEncoder(cy),
    )
    return Zx, Zy, data


@pytest.fixture
def fake_demo(monkeypatch):
    monkeypatch.setattr(demo, "encode_openmoji", lambda **kw: _fake_openmoji())
    fast = dict(n_components=16, max_epochs=60, batch_size=32)
    real_methods = demo.openmoji_methods

    def methods(**kw):
        out = real_methods(**kw)
        out[0][1].set_params(**fast)
        out[1][1].set_params(**fast)
        return out

    monkeypatch.setattr(demo, "openmoji_methods", methods)


def test_run_openmoji_demo_tables_and_figures(fake_demo, tmp_path):
    pytest.importorskip("matplotlib")
    result = demo.run_openmoji_demo(seed=0, out_dir=tmp_path, data_home=tmp_path)
    names = [r["method"] for r in result.retrieval]
    expected = ["FuseMix", "no mixing (alpha=0)", "CCA", "CSA", "Procrustes", "ASIF"]
    assert names == [*expected, "chance"]
    assert result.n_train + result.n_test == 240
    chance = result.retrieval[-1]
    assert chance["x2y_R@1"] == pytest.approx(1 / result.n_test)
    for row in result.retrieval[:-1]:
        assert set(demo.TABLE_COLUMNS) <= set(row)
        # Far above chance on structured data.
        assert row["x2y_R@1"] > 5 * chance["x2y_R@1"]
    zs = {r["method"]: r for r in result.zero_shot}
    assert {"FuseMix", "CCA", "majority class (no text)"} <= set(zs)
    assert "1-shot image centroids (no text)" in zs
    # Three well-separated classes: the aligned space names them.
    assert zs["CCA"]["balanced accuracy"] > 0.8
    assert zs["majority class (no text)"]["balanced accuracy"] == pytest.approx(1 / 3)
    assert len(result.figures) == 2
    for path in result.figures:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_run_openmoji_demo_second_run_reuses_the_fits(fake_demo, tmp_path):
    first = demo.run_openmoji_demo(seed=1, figures=False, data_home=tmp_path)
    assert first.figures == []
    assert not any(r.get("cached") for r in first.retrieval)
    second = demo.run_openmoji_demo(seed=1, figures=False, data_home=tmp_path)
    assert [r["cached"] for r in second.retrieval[:2]] == [True, True]
    for a, b in zip(first.retrieval, second.retrieval):
        assert a["x2y_R@1"] == b["x2y_R@1"] and a["y2x_R@5"] == b["y2x_R@5"]
    # "fit s" is what this call measured: a restore, not the first run's fit.
    for a, b in zip(first.retrieval[:2], second.retrieval[:2]):
        assert b["fit s"] < a["fit s"]


def test_demo_command_writes_under_the_data_home_and_says_cached(
    fake_demo, tmp_path, monkeypatch, capsys
):
    pytest.importorskip("matplotlib")
    from skfusemix.cli import main

    fitted = demo.openmoji_methods

    def quick(**kw):  # one short FuseMix fit and CCA: this test is about output
        fusemix, _, cca, *_ = fitted(**kw)
        fusemix[1].set_params(max_epochs=1)
        return [fusemix, cca]

    monkeypatch.setattr(demo, "openmoji_methods", quick)
    data_home, cwd = tmp_path / "data", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv("SKFUSEMIX_DATA", str(data_home))
    monkeypatch.chdir(cwd)
    assert main(["demo", "-v"]) == 0
    captured = capsys.readouterr()
    assert os.listdir(cwd) == []  # nothing written into the current folder
    figures = sorted(os.listdir(data_home / "demo"))
    assert figures == ["openmoji_recall_at_k.png", "openmoji_retrievals.png"]
    assert f"figures written to {data_home / 'demo'}" in captured.out
    assert "fitting FuseMix (1/2)" in captured.err  # progress on stderr
    assert "cached" not in captured.out

    out_dir = tmp_path / "figures"
    assert main(["demo", "--quiet", "--out-dir", str(out_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert sorted(os.listdir(out_dir)) == figures
    table = captured.out.split("Zero-shot")[0].splitlines()
    rows = {line.split("  ")[0]: line for line in table}
    assert rows["FuseMix"].rstrip().endswith("cached")
    assert rows["CCA"].split()[-1] != "cached"  # closed form: fitted again


def test_zero_shot_table_is_an_independent_recomputation():
    Zx, Zy, data = _fake_openmoji(n=200, seed=3)
    cca = CCAAligner(n_components=8).fit(Zx[:150], Zy[:150])
    labels = np.array([c or "Flags" for c in data.categories])
    class_y = data.text_encoder.centres
    rows = demo.zero_shot_table(
        [("CCA", cca)],
        Zx[150:],
        labels[150:],
        class_y,
        CATEGORIES,
        Zx[:150],
        labels[:150],
    )
    Sx = cca.transform(Zx[150:])
    Sc = cca.transform_y(class_y)
    pred = np.array(CATEGORIES)[(Sx @ Sc.T).argmax(1)]
    assert rows[0]["accuracy"] == pytest.approx((pred == labels[150:]).mean())


def test_retrieval_learning_curve_sizes_and_seeds():
    Zx, Zy = make_paired_latents(200, 12, 8, random_state=0)
    methods = [("CCA", CCAAligner(n_components=4))]
    rows = demo.retrieval_learning_curve(
        methods, Zx, Zy, train_sizes=[40, None], n_repeats=2
    )
    sizes_and_seeds = [(r["n_train"], r["seed"]) for r in rows]
    assert sizes_and_seeds == [(40, 0), (160, 0), (40, 1), (160, 1)]
    assert rows[1]["mean R@1"] > rows[0]["mean R@1"]
    with pytest.raises(ValueError, match="exceeds"):
        demo.retrieval_learning_curve(methods, Zx, Zy, train_sizes=[500], n_repeats=1)
