"""skfusemix.demo end to end on tiny stand-in data (the real encoders and
OpenMoji are exercised by the README's main command and the encoder tests)."""

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
    assert names == ["FuseMix", "no mixing (alpha=0)", "CCA", "Procrustes", "ASIF",
                     "chance"]  # fmt: skip
    assert result.n_train + result.n_test == 240
    chance = result.retrieval[-1]
    assert chance["x2y_R@1"] == pytest.approx(1 / result.n_test)
    for row in result.retrieval[:-1]:
        assert set(demo.TABLE_COLUMNS) <= set(row)
        # Far above chance on structured data.
        assert row["x2y_R@1"] > 5 * chance["x2y_R@1"]
    zs = {r["method"]: r for r in result.zero_shot}
    assert set(zs) >= {"FuseMix", "CCA", "majority class (no text)",
                       "1-shot image centroids (no text)"}  # fmt: skip
    # Three well-separated classes: the aligned space names them.
    assert zs["CCA"]["balanced accuracy"] > 0.8
    assert zs["majority class (no text)"]["balanced accuracy"] == pytest.approx(1 / 3)
    assert len(result.figures) == 2
    for path in result.figures:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_run_openmoji_demo_second_run_reuses_the_fits(fake_demo, tmp_path):
    first = demo.run_openmoji_demo(seed=1, out_dir=None, data_home=tmp_path)
    assert first.figures == []
    assert not any(r.get("cached") for r in first.retrieval)
    second = demo.run_openmoji_demo(seed=1, out_dir=None, data_home=tmp_path)
    assert [r["cached"] for r in second.retrieval[:2]] == [True, True]
    for a, b in zip(first.retrieval, second.retrieval):
        assert a["x2y_R@1"] == b["x2y_R@1"] and a["y2x_R@5"] == b["y2x_R@5"]
        assert a["fit s"] == pytest.approx(b["fit s"], rel=0.5) or b["cached"] is False


def test_zero_shot_table_is_an_independent_recomputation():
    Zx, Zy, data = _fake_openmoji(n=200, seed=3)
    cca = CCAAligner(n_components=8).fit(Zx[:150], Zy[:150])
    labels = np.array([c or "Flags" for c in data.categories])
    class_y = data.text_encoder.centres
    rows = demo.zero_shot_table([("CCA", cca)], Zx[150:], labels[150:], class_y,
                                CATEGORIES, Zx[:150], labels[:150])  # fmt: skip
    Sx = cca.transform(Zx[150:])
    Sc = cca.transform_y(class_y)
    pred = np.array(CATEGORIES)[(Sx @ Sc.T).argmax(1)]
    assert rows[0]["accuracy"] == pytest.approx((pred == labels[150:]).mean())


def test_retrieval_learning_curve_sizes_and_seeds():
    Zx, Zy = make_paired_latents(200, 12, 8, random_state=0)
    rows = demo.retrieval_learning_curve(
        [("CCA", CCAAligner(n_components=4))], Zx, Zy, train_sizes=[40, None],
        n_repeats=2,
    )  # fmt: skip
    assert [(r["n_train"], r["seed"]) for r in rows] == [(40, 0), (160, 0), (40, 1),
                                                          (160, 1)]  # fmt: skip
    assert rows[1]["mean R@1"] > rows[0]["mean R@1"]
    with pytest.raises(ValueError, match="exceeds"):
        demo.retrieval_learning_curve([("CCA", CCAAligner())], Zx, Zy,
                                      train_sizes=[500], n_repeats=1)  # fmt: skip
