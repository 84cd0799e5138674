"""The hubness correction folded into FuseMix's embeddings
(``csls_neighbors``): CSLS against the training pairs, computed here
directly; unit rows; what "auto" resolves to; one-sided mode; persistence
and edited files."""

import os

import numpy as np
import pytest
from helpers import FAST, edit_config, make_pairs
from safetensors.numpy import load_file, save_file

import skfusemix._hubness as hubness
from skfusemix import FuseMixAligner
from skfusemix._hubness import fold_csls, neighbour_similarity
from skfusemix._recipe import MAX_ANCHORS, PAPER_PARAMS, SMALL_DATA_LIMIT, auto_params
from skfusemix.metrics import retrieval_report


@pytest.fixture(scope="module")
def pairs():
    Zx, Zy = make_pairs(n=300, d_x=24, d_y=12)
    return Zx[:200], Zy[:200], Zx[200:], Zy[200:]


@pytest.fixture(scope="module")
def corrected(pairs):
    return FuseMixAligner(**FAST, csls_neighbors=5, random_state=0).fit(*pairs[:2])


@pytest.fixture(scope="module")
def uncorrected(pairs):
    # the same seed trains the same adapters: the correction draws nothing
    return FuseMixAligner(**FAST, csls_neighbors=0, random_state=0).fit(*pairs[:2])


def mean_top(Q, R, k):
    """Mean of the k largest dot products, by a full sort."""
    return np.sort(Q @ R.T, axis=1)[:, -k:].mean(axis=1)


def test_cross_modal_cosines_are_half_the_csls_similarity(
    pairs, corrected, uncorrected
):
    Zx, Zy, Qx, Qy = pairs
    Ex, Ey = corrected.transform(Qx), corrected.transform_y(Qy)
    Jx, Jy = uncorrected.transform(Qx), uncorrected.transform_y(Qy)
    assert Ex.shape == Ey.shape == (100, Jx.shape[1] + 4) and Ex.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Ex, axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(Ey, axis=1), 1, rtol=1e-5)
    # the references: the training pairs in the adapters' and CCA's joined
    # space, i.e. the uncorrected embeddings without their anchor columns
    width = uncorrected.n_components_ + uncorrected.cca_._n_features_out
    Rx = uncorrected.transform(Zx)[:, :width]
    Ry = uncorrected.transform_y(Zy)[:, :width]
    np.testing.assert_allclose(corrected.csls_reference_x_, Rx, atol=1e-6)
    np.testing.assert_allclose(corrected.csls_reference_y_, Ry, atol=1e-6)
    r_x = mean_top(Jx[:, :width], Ry, 5)  # r_Y(x): x near many training y's
    r_y = mean_top(Jy[:, :width], Rx, 5)
    expected = 0.5 * (Jx @ Jy.T - 0.5 * (r_x[:, None] + r_y[None, :]))
    np.testing.assert_allclose(Ex @ Ey.T, expected, atol=1e-5)
    # the first columns are the uncorrected embeddings, halved in cosine
    np.testing.assert_allclose(Ex[:, :-4] * np.sqrt(2), Jx, atol=1e-6)
    assert len(corrected.get_feature_names_out()) == Ex.shape[1]


def test_zero_neighbours_is_the_uncorrected_model(uncorrected, pairs):
    assert uncorrected.csls_neighbors_ == 0
    assert uncorrected.csls_reference_x_ is None
    assert uncorrected.csls_reference_y_ is None
    width = uncorrected.n_components_ + uncorrected.cca_._n_features_out + 200
    assert uncorrected.transform(pairs[2]).shape == (100, width)


def test_the_correction_demotes_a_hub():
    # four queries, four items; item 3 is a hub (cosine 0.5 to every query)
    # and beats item 0 (0.45) for query 0
    x = np.eye(4, 5, dtype=np.float32)
    y = np.array(
        [
            [0.45, 0, 0, 0, 0.89],
            [0, 0.95, 0, 0, 0.31],
            [0, 0, 0.95, 0, 0.31],
            [0.5, 0.5, 0.5, 0.5, 0],
        ],
        dtype=np.float32,
    )
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    np.testing.assert_array_equal((x @ y.T).argmax(axis=1), [3, 1, 2, 3])
    r_x = neighbour_similarity(x, y, 2)  # references: the pairs themselves
    r_y = neighbour_similarity(y, x, 2)
    Fx, Fy = fold_csls(x, r_x, "x"), fold_csls(y, r_y, "y")
    np.testing.assert_array_equal((Fx @ Fy.T).argmax(axis=1), [0, 1, 2, 3])
    np.testing.assert_array_equal((Fx @ Fy.T).argmax(axis=0), [0, 1, 2, 3])


def test_neighbour_similarity_in_chunks_and_with_few_references(monkeypatch):
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(10, 6)).astype(np.float32)
    R = rng.normal(size=(7, 6)).astype(np.float32)
    whole = neighbour_similarity(Q, R, 3)
    np.testing.assert_allclose(whole, mean_top(Q, R, 3), rtol=1e-5)
    monkeypatch.setattr(hubness, "_CHUNK", 3)
    np.testing.assert_array_equal(neighbour_similarity(Q, R, 3), whole)
    # more neighbours than references: all of them
    np.testing.assert_allclose(
        neighbour_similarity(Q, R, 50), (Q @ R.T).mean(1), rtol=1e-5
    )


def test_auto_depends_on_size_and_mode():
    assert auto_params(1000, 1280, 384)["csls_neighbors"] == 10
    assert auto_params(MAX_ANCHORS, 1280, 384)["csls_neighbors"] == 10
    assert auto_params(MAX_ANCHORS + 1, 1280, 384)["csls_neighbors"] == 0
    assert auto_params(SMALL_DATA_LIMIT + 1, 1280, 384)["csls_neighbors"] == 0
    assert PAPER_PARAMS["csls_neighbors"] == 0
    assert FuseMixAligner.small_data_params()["csls_neighbors"] == 10
    # with fixed_y: tests/test_one_sided.py::test_fixed_y_joins_nothing


@pytest.mark.parametrize("value", [-1, 2.5, "ten", None])
def test_bad_neighbours_are_rejected(value):
    Zx, Zy = make_pairs(n=60)
    with pytest.raises(ValueError, match="csls_neighbors"):
        FuseMixAligner(**FAST, csls_neighbors=value).fit(Zx, Zy)


def test_the_references_are_the_training_rows_and_capped(monkeypatch):
    import skfusemix.aligner as module

    monkeypatch.setattr(module, "MAX_ANCHORS", 50)  # an explicit k: capped
    Zx, Zy = make_pairs(n=200, d_x=12, d_y=8)
    aligner = FuseMixAligner(
        **FAST, anchor_weight=0, csls_neighbors=10, random_state=0
    ).fit(Zx, Zy)
    assert aligner.anchors_ is None
    assert aligner.csls_reference_x_.shape == (50, 16 + 8)
    rows = aligner.transform(Zx)[:, : 16 + 8] * np.sqrt(2)  # the joined part
    # each reference is one training row's embedding
    nearest = (aligner.csls_reference_x_ @ rows.T).max(axis=1)
    np.testing.assert_allclose(nearest, 1.0, atol=1e-5)


def test_the_correction_helps_retrieval_here(pairs, corrected, uncorrected):
    # not a guarantee (the docs report where it gains); a sanity check that
    # the sign of the correction is right on these pairs
    Qx, Qy = pairs[2:]

    def r1(aligner):
        report = retrieval_report(aligner.transform(Qx), aligner.transform_y(Qy))
        return report["x2y_R@1"] + report["y2x_R@1"]

    assert r1(corrected) >= r1(uncorrected)


def test_save_and_load_keep_the_references(pairs, corrected, tmp_path):
    path = corrected.save(tmp_path / "m")
    assert "csls.safetensors" in os.listdir(path)
    loaded = FuseMixAligner.load(path)
    assert loaded.csls_neighbors_ == 5 and loaded.get_params()["csls_neighbors"] == 5
    np.testing.assert_array_equal(loaded.csls_reference_x_, corrected.csls_reference_x_)
    np.testing.assert_array_equal(
        loaded.transform(pairs[2]), corrected.transform(pairs[2])
    )
    np.testing.assert_array_equal(
        loaded.transform_y(pairs[3]), corrected.transform_y(pairs[3])
    )


def test_saving_without_the_correction_removes_an_old_file(
    corrected, uncorrected, tmp_path
):
    path = corrected.save(tmp_path / "m")
    uncorrected.save(path)
    assert "csls.safetensors" not in os.listdir(path)
    assert FuseMixAligner.load(path).csls_reference_x_ is None


def _edit_references(path, edit):
    file = os.path.join(path, "csls.safetensors")
    arrays = load_file(file)
    edit(arrays)
    save_file(arrays, file)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda a: a.update(reference_x=a["reference_x"][:, :-1]), "shape"),
        (lambda a: a.update(reference_y=a["reference_y"][:-1]), "differ in shape"),
        (lambda a: a.pop("reference_y"), "missing arrays 'reference_y'"),
        (lambda a: a.update(extra=a["reference_x"]), "unknown arrays 'extra'"),
        (lambda a: a["reference_x"].__setitem__((0, 0), np.nan), "NaN"),
        (lambda a: a.update(reference_x=a["reference_x"].astype(np.float64)), "dtype"),
        (lambda a: a["reference_x"].__setitem__((0, 0), 0.5), "SHA-256"),
    ],
)
def test_edited_references_are_refused(corrected, tmp_path, edit, match):
    path = corrected.save(tmp_path / "m")
    _edit_references(path, edit)
    with pytest.raises(ValueError, match=match):
        FuseMixAligner.load(path)


def test_a_missing_file_or_entry_is_refused(corrected, tmp_path):
    path = corrected.save(tmp_path / "m")
    os.remove(os.path.join(path, "csls.safetensors"))
    with pytest.raises(FileNotFoundError):
        FuseMixAligner.load(path)
    path = corrected.save(tmp_path / "n")
    edit_config(path, lambda config: config.pop("csls"))
    with pytest.raises(ValueError, match="'csls' must name"):
        FuseMixAligner.load(path)


def test_files_from_before_the_correction_load_without_it(pairs, tmp_path):
    # anchors without a CCA: the same in the adapters' space as beside it
    uncorrected = FuseMixAligner(
        **FAST, csls_neighbors=0, cca_weight=0, random_state=0
    ).fit(*pairs[:2])
    path = uncorrected.save(tmp_path / "old")

    def older(config):  # as version 4 wrote it
        config["format_version"] = 4
        del config["params"]["csls_neighbors"], config["fitted"]["csls_neighbors_"]

    edit_config(path, older)
    loaded = FuseMixAligner.load(path)
    assert loaded.csls_neighbors_ == 0 and loaded.get_params()["csls_neighbors"] == 0
    np.testing.assert_array_equal(
        loaded.transform(pairs[2]), uncorrected.transform(pairs[2])
    )


def test_files_whose_anchors_sat_beside_a_cca_in_the_adapters_space_are_refused(
    uncorrected, tmp_path
):
    path = uncorrected.save(tmp_path / "old")
    assert uncorrected.anchor_weight_ > 0 and uncorrected.cca_weight_ > 0

    def older(config):  # version 5 measured the anchors in the adapters' space
        config["format_version"] = 5

    edit_config(path, older)
    with pytest.raises(ValueError, match="anchors were measured in the adapters"):
        FuseMixAligner.load(path)
