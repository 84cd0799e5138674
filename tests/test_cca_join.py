"""The CCA joined to FuseMix's embeddings (``cca_weight``): exact cosine
blend, what "auto" resolves to, one-sided mode, early stopping, persistence,
and input kinds."""

import numpy as np
import pytest
import torch
from helpers import FAST, make_pairs
from sklearn.model_selection import GridSearchCV, KFold

from skfusemix import CCAAligner, FuseMixAligner
from skfusemix._recipe import PAPER_PARAMS, SMALL_DATA_LIMIT, auto_params


@pytest.fixture(scope="module")
def pairs():
    return make_pairs(n=240, d_x=24, d_y=12)


@pytest.fixture(scope="module")
def joined(pairs):
    return FuseMixAligner(
        **FAST, csls_neighbors=0, cca_weight=0.4, anchor_weight=0, random_state=0
    ).fit(*pairs)


def test_cosines_are_the_weighted_sum_of_fusemix_and_cca(pairs, joined):
    Zx, Zy = pairs
    # the same seed trains the same adapters: the CCA draws no random numbers
    alone = FuseMixAligner(
        **FAST, csls_neighbors=0, cca_weight=0, anchor_weight=0, random_state=0
    ).fit(Zx, Zy)
    cca = CCAAligner(n_components=12).fit(Zx, Zy)  # min(16, 24, 12) components
    Sx, Sy = joined.transform(Zx), joined.transform_y(Zy)
    assert Sx.shape == Sy.shape == (240, 16 + 12) and Sx.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Sx, axis=1), 1, rtol=1e-5)
    expected = 0.6 * (alone.transform(Zx) @ alone.transform_y(Zy).T) + 0.4 * (
        cca.transform(Zx) @ cca.transform_y(Zy).T
    )
    np.testing.assert_allclose(Sx @ Sy.T, expected, atol=1e-5)
    assert len(joined.get_feature_names_out()) == 28


def test_zero_weight_is_the_adapters_alone(pairs):
    aligner = FuseMixAligner(
        **FAST, csls_neighbors=0, cca_weight=0, anchor_weight=0, random_state=0
    ).fit(*pairs)
    assert aligner.cca_ is None and aligner.cca_weight_ == 0
    assert aligner.transform(pairs[0]).shape == (240, 16)


def test_auto_weight_depends_on_size_and_mode():
    assert auto_params(1000, 1280, 384)["cca_weight"] == 0.3
    assert auto_params(SMALL_DATA_LIMIT + 1, 1280, 384)["cca_weight"] == 0.0
    assert PAPER_PARAMS["cca_weight"] == 0.0
    assert FuseMixAligner.small_data_params()["cca_weight"] == 0.3
    # with fixed_y: tests/test_one_sided.py::test_fixed_y_joins_nothing


@pytest.mark.parametrize("weight", [1.0, -0.1, float("nan"), "half"])
def test_bad_weights_are_rejected(weight):
    Zx, Zy = make_pairs(n=60)
    with pytest.raises(ValueError, match="cca_weight"):
        FuseMixAligner(**FAST, cca_weight=weight).fit(Zx, Zy)


def test_cca_is_fitted_on_the_training_rows_and_early_stopping_scores_the_join(
    pairs,
):
    Zx, Zy = pairs
    aligner = FuseMixAligner(
        **{**FAST, "max_epochs": 4},
        early_stopping=True,
        validation_fraction=0.25,
        cca_weight=0.5,
        random_state=0,
    ).fit(Zx, Zy)
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    from skfusemix._data import row_groups

    train, val = aligner._validation_split(row_groups(Zx), seed)
    reference = CCAAligner(n_components=12).fit(Zx[train], Zy[train])
    np.testing.assert_allclose(aligner.cca_.x_weights_, reference.x_weights_)
    # the validation score is the score of what transform returns
    assert aligner.score(Zx[val], Zy[val]) == pytest.approx(
        aligner.best_validation_score_, abs=1e-6
    )


def test_tensor_and_memmap_inputs_give_the_same_embeddings(pairs, joined, tmp_path):
    Zx, Zy = pairs
    path = tmp_path / "x.npy"
    np.save(path, Zx.astype(np.float32))
    memmap = np.load(path, mmap_mode="r")
    expected = joined.transform(Zx.astype(np.float32))
    np.testing.assert_allclose(joined.transform(memmap), expected, atol=1e-6)
    tensor = torch.from_numpy(Zx.astype(np.float32))
    np.testing.assert_allclose(joined.transform(tensor), expected, atol=1e-6)
    Zy0 = Zy.copy()
    joined.transform_y(Zy)
    np.testing.assert_array_equal(Zy, Zy0)  # nothing the user passed is modified


def test_warm_start_refits_the_cca_on_the_new_data(pairs):
    Zx, Zy = pairs
    aligner = FuseMixAligner(**FAST, warm_start=True, random_state=0).fit(
        Zx[:120], Zy[:120]
    )
    first = aligner.cca_.x_weights_.copy()
    aligner.fit(Zx, Zy)
    reference = CCAAligner(n_components=12).fit(Zx, Zy)
    assert not np.allclose(aligner.cca_.x_weights_, first)
    np.testing.assert_allclose(aligner.cca_.x_weights_, reference.x_weights_)


def test_grid_search_over_the_weight(pairs):
    Zx, Zy = pairs
    search = GridSearchCV(
        FuseMixAligner(**FAST, random_state=0),
        {"cca_weight": [0.0, 0.5]},
        cv=KFold(2, shuffle=True, random_state=0),
    ).fit(Zx, Zy)
    assert search.best_params_["cca_weight"] in (0.0, 0.5)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
