"""The anchors joined to FuseMix's embeddings (``anchor_weight``): ASIF's
relative representation in the adapters' and CCA's joined space, against
that space's embeddings of the training pairs.  Exact cosine blend, what "auto" resolves
to, one-sided mode, early stopping, the cap on anchors, persistence."""

import os
import shutil

import numpy as np
import pytest
from helpers import FAST, edit_config, make_pairs

from skfusemix import ASIFAligner, CCAAligner, FuseMixAligner
from skfusemix._data import row_groups
from skfusemix._recipe import MAX_ANCHORS, PAPER_PARAMS, SMALL_DATA_LIMIT, auto_params


@pytest.fixture(scope="module")
def pairs():
    return make_pairs(n=240, d_x=24, d_y=12)


@pytest.fixture(scope="module")
def joined(pairs):
    return FuseMixAligner(
        **FAST, csls_neighbors=0, cca_weight=0.2, anchor_weight=0.3, random_state=0
    ).fit(*pairs)


def test_cosines_are_the_weighted_sum_of_fusemix_cca_and_anchors(pairs, joined):
    Zx, Zy = pairs
    # the same seed trains the same adapters: neither join draws random numbers
    alone = FuseMixAligner(
        **FAST, csls_neighbors=0, cca_weight=0, anchor_weight=0, random_state=0
    ).fit(Zx, Zy)
    Sx, Sy = alone.transform(Zx), alone.transform_y(Zy)
    cca = CCAAligner(n_components=12).fit(Zx, Zy)
    Cx, Cy = cca.transform(Zx), cca.transform_y(Zy)
    # the anchors: the training pairs in the adapters' and CCA's space, the
    # two weighted as in the join (0.5 and 0.2, rows rescaled to unit norm)
    Qx = np.hstack([np.sqrt(5 / 7) * Sx, np.sqrt(2 / 7) * Cx])
    Qy = np.hstack([np.sqrt(5 / 7) * Sy, np.sqrt(2 / 7) * Cy])
    asif = ASIFAligner().fit(Qx, Qy)
    Ex, Ey = joined.transform(Zx), joined.transform_y(Zy)
    assert Ex.shape == Ey.shape == (240, 16 + 12 + 240) and Ex.dtype == np.float32
    assert joined.anchors_.n_anchors_ == 240
    expected = (
        0.5 * (Sx @ Sy.T)
        + 0.2 * (Cx @ Cy.T)
        + 0.3 * (asif.transform(Qx) @ asif.transform_y(Qy).T)
    )
    np.testing.assert_allclose(Ex @ Ey.T, expected, atol=1e-5)
    assert len(joined.get_feature_names_out()) == 268


def test_anchors_without_the_cca(pairs):
    Zx, Zy = pairs
    aligner = FuseMixAligner(
        **FAST, csls_neighbors=0, cca_weight=0, anchor_weight=0.4, random_state=0
    ).fit(Zx, Zy)
    assert aligner.cca_ is None and aligner.transform(Zx).shape == (240, 16 + 240)
    S = aligner._embed(aligner.adapter_x_, Zx.astype(np.float32))
    np.testing.assert_allclose(aligner.transform(Zx)[:, :16], np.sqrt(0.6) * S)


def test_zero_weight_leaves_the_previous_embeddings(pairs):
    Zx, Zy = pairs
    aligner = FuseMixAligner(
        **FAST, csls_neighbors=0, anchor_weight=0, random_state=0
    ).fit(Zx, Zy)
    assert aligner.anchors_ is None and aligner.anchor_weight_ == 0
    assert aligner.transform(Zx).shape == (240, 16 + 12)


def test_auto_weight_depends_on_size_and_mode():
    assert auto_params(1000, 1280, 384)["anchor_weight"] == 0.3
    # only while every training pair can be an anchor
    assert auto_params(MAX_ANCHORS, 1280, 384)["anchor_weight"] == 0.3
    assert auto_params(MAX_ANCHORS + 1, 1280, 384)["anchor_weight"] == 0.0
    assert auto_params(SMALL_DATA_LIMIT + 1, 1280, 384)["anchor_weight"] == 0.0
    assert PAPER_PARAMS["anchor_weight"] == 0.0
    # with fixed_y: tests/test_one_sided.py::test_fixed_y_joins_nothing


@pytest.mark.parametrize(
    "params, match",
    [
        ({"anchor_weight": 1.0}, "anchor_weight"),
        ({"anchor_weight": -0.1}, "anchor_weight"),
        ({"anchor_weight": "half"}, "anchor_weight"),
        ({"anchor_weight": 0.5, "cca_weight": 0.5}, "must be below 1"),
        ({"anchor_weight": 0.8}, "must be below 1"),  # with the "auto" CCA's 0.3
    ],
)
def test_bad_weights_are_rejected(params, match):
    Zx, Zy = make_pairs(n=60)
    with pytest.raises(ValueError, match=match):
        FuseMixAligner(**FAST, **params).fit(Zx, Zy)


def test_anchors_come_from_the_training_rows_and_early_stopping_scores_the_join(
    pairs,
):
    Zx, Zy = pairs
    aligner = FuseMixAligner(
        **{**FAST, "max_epochs": 4},
        early_stopping=True,
        validation_fraction=0.25,
        random_state=0,
    ).fit(Zx, Zy)
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    train, val = aligner._validation_split(row_groups(Zx), seed)
    assert aligner.anchors_.n_anchors_ == len(train)
    S = aligner._embed(aligner.adapter_x_, Zx[train].astype(np.float32))
    expected = aligner._neighbour_space(S, Zx[train], "transform")
    np.testing.assert_allclose(
        aligner.anchors_.anchors_x_,
        ASIFAligner().fit(expected, expected).anchors_x_,
        atol=1e-6,
    )
    # the validation score is the score of what transform returns
    assert aligner.score(Zx[val], Zy[val]) == pytest.approx(
        aligner.best_validation_score_, abs=1e-6
    )


def test_anchors_are_capped_and_drawn_from_the_training_rows(monkeypatch):
    import skfusemix.aligner as module

    monkeypatch.setattr(module, "MAX_ANCHORS", 50)  # explicit weight: capped
    Zx, Zy = make_pairs(n=200, d_x=12, d_y=8)
    aligner = FuseMixAligner(
        **FAST, csls_neighbors=0, anchor_weight=0.3, random_state=0
    ).fit(Zx, Zy)
    assert aligner.anchors_.n_anchors_ == 50
    assert aligner.transform(Zx).shape == (200, 16 + 8 + 50)
    again = FuseMixAligner(
        **FAST, csls_neighbors=0, anchor_weight=0.3, random_state=0
    ).fit(Zx, Zy)
    np.testing.assert_array_equal(aligner.transform(Zx), again.transform(Zx))


def test_save_and_load_keep_the_cca_and_the_anchors(pairs, joined, tmp_path):
    Zx, Zy = pairs
    path = joined.save(tmp_path / "m")
    loaded = FuseMixAligner.load(path)
    assert (loaded.cca_weight_, loaded.anchor_weight_) == (0.2, 0.3)
    assert loaded.get_params()["anchor_weight"] == 0.3
    np.testing.assert_array_equal(loaded.transform(Zx), joined.transform(Zx))
    np.testing.assert_array_equal(loaded.transform_y(Zy), joined.transform_y(Zy))


@pytest.mark.parametrize(
    "folder, foreign",
    [
        ("cca", lambda Zx, Zy: CCAAligner(n_components=5).fit(Zx[:, :5], Zy)),
        ("anchors", lambda Zx, Zy: ASIFAligner().fit(Zx, Zy)),  # on the latents
    ],
)
def test_a_joined_part_of_another_model_is_refused(
    pairs, joined, tmp_path, folder, foreign
):
    Zx, Zy = pairs
    path = joined.save(tmp_path / "m")
    shutil.rmtree(os.path.join(path, folder))
    foreign(Zx, Zy).save(os.path.join(path, folder))
    with pytest.raises(ValueError, match="do not belong together"):
        FuseMixAligner.load(path)
    shutil.rmtree(os.path.join(path, folder))
    with pytest.raises(FileNotFoundError):
        FuseMixAligner.load(path)


@pytest.mark.parametrize(
    "weight, part, version",
    [("cca_weight", "cca_", 2), ("anchor_weight", "anchors_", 3)],
)
def test_files_from_before_a_joined_part_load_without_it(
    pairs, tmp_path, weight, part, version
):
    Zx, Zy = pairs
    before = FuseMixAligner(**FAST, **{weight: 0}, random_state=0).fit(Zx, Zy)
    path = before.save(tmp_path / "old")

    def older(config):  # as written before the weight existed
        config["format_version"] = version
        del config["params"][weight], config["fitted"][weight + "_"]

    edit_config(path, older)
    loaded = FuseMixAligner.load(path)
    assert getattr(loaded, part) is None and loaded.get_params()[weight] == 0.0
    np.testing.assert_array_equal(loaded.transform(Zx), before.transform(Zx))
