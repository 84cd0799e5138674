"""Defaults that fit the data: "auto" parameters, standardisation inside the
estimator, the paper's recipe, and groups through fit and GridSearchCV."""

import numpy as np
import pytest
import sklearn
from helpers import make_pairs
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.preprocessing import StandardScaler

from skfusemix import FuseMixAligner
from skfusemix._data import pair_groups
from skfusemix._recipe import PAPER_PARAMS, SMALL_DATA_LIMIT, auto_params

FEW = dict(max_epochs=3, random_state=0)


def test_auto_resolves_from_the_data_and_is_kept_as_fitted_attributes():
    Zx, Zy = make_pairs(n=400, d_x=24, d_y=16)
    aligner = FuseMixAligner(**FEW).fit(Zx, Zy)
    assert aligner.get_params()["n_layers"] == "auto"  # parameters untouched
    expected = auto_params(400, 24, 16)
    assert aligner.n_components_ == expected["n_components"] == 24  # <= input width
    assert aligner.n_layers_ == (2, 2)
    assert aligner.expansion_ == 2 and aligner.dropout_ == 0.3
    assert aligner.alpha_ == 0.5 and aligner.max_epochs_ == 3
    assert aligner.batch_size_ == 400 // 8
    assert aligner.cca_weight_ == expected["cca_weight"] == 0.3
    assert aligner.cca_.n_components == 16  # min(n_components_, 24, 16)
    assert aligner.anchor_weight_ == expected["anchor_weight"] == 0.3
    assert aligner.anchors_.n_anchors_ == 400  # every training pair
    assert aligner.csls_neighbors_ == expected["csls_neighbors"] == 10
    assert aligner.transform(Zx).shape == (400, 24 + 16 + 400 + 4)
    assert len(aligner.adapter_x_.blocks) == 2


def test_auto_switches_to_the_paper_architecture_for_large_data():
    small = auto_params(SMALL_DATA_LIMIT, 1280, 384)
    large = auto_params(SMALL_DATA_LIMIT + 1, 1280, 384)
    assert (small["n_layers"], small["expansion"], small["n_components"]) == (2, 1, 256)
    assert small["max_epochs"] == 50 and auto_params(3200, 8, 8)["max_epochs"] == 200
    assert auto_params(4000, 8, 8)["max_epochs"] == 160  # 640,000 pair visits
    assert auto_params(SMALL_DATA_LIMIT, 240, 76)["expansion"] == 2
    assert (large["n_layers"], large["expansion"], large["n_components"]) == (4, 4, 512)
    assert auto_params(10_000_000, 1536, 1024)["batch_size"] == 20480
    assert auto_params(100, 8, 8)["batch_size"] == 12


def test_explicit_values_override_auto():
    Zx, Zy = make_pairs(n=200)
    aligner = FuseMixAligner(n_components=8, n_layers=(0, 1), alpha=0.0, **FEW)
    aligner.fit(Zx, Zy)
    assert aligner.n_components_ == 8 and aligner.n_layers_ == (0, 1)
    assert aligner.alpha_ == 0.0
    with pytest.raises(ValueError, match="n_layers"):
        FuseMixAligner(n_layers=(1, 2, 3), **FEW).fit(Zx, Zy)


def test_paper_params_are_the_public_recipe():
    params = FuseMixAligner.paper_params()
    assert params == PAPER_PARAMS
    assert params["batch_size"] == 20480 and params["max_epochs"] == 500
    assert (params["n_layers"], params["expansion"], params["dropout"]) == (4, 4, 0.6)
    assert params["standardize"] is False
    FuseMixAligner(**params)._validate_params()
    params["alpha"] = 0.1  # a copy: the recipe itself is unchanged
    assert FuseMixAligner.paper_params()["alpha"] == 1.0


def test_standardize_inside_equals_standardizing_outside():
    Zx, Zy = make_pairs(n=300)
    Zx = 40.0 * Zx + 7.0  # a scale the adapters do not like
    inside = FuseMixAligner(**FEW).fit(Zx, Zy)
    sx, sy = StandardScaler().fit(Zx), StandardScaler().fit(Zy)
    outside = FuseMixAligner(standardize=False, **FEW).fit(
        sx.transform(Zx), sy.transform(Zy)
    )
    np.testing.assert_allclose(
        inside.transform(Zx), outside.transform(sx.transform(Zx)), atol=2e-4
    )
    np.testing.assert_allclose(
        inside.adapter_x_.standardize.mean.numpy(), sx.mean_, rtol=1e-5
    )


def test_standardize_keeps_constant_features_finite():
    Zx, Zy = make_pairs(n=200)
    Zx = Zx.copy()
    Zx[:, 0] = 3.0
    aligner = FuseMixAligner(**FEW).fit(Zx, Zy)
    assert np.isfinite(aligner.transform(Zx)).all()
    assert float(aligner.adapter_x_.standardize.scale[0]) == 1.0


def test_no_scale_warning_when_standardizing():
    Zx, Zy = make_pairs(n=200)
    with pytest.warns(UserWarning, match="absolute value"):
        FuseMixAligner(standardize=False, **FEW).fit(1e5 * Zx, Zy)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FuseMixAligner(**FEW).fit(1e5 * Zx, Zy)


def test_save_load_keeps_resolved_values_and_standardization(tmp_path):
    Zx, Zy = make_pairs(n=300)
    aligner = FuseMixAligner(**FEW).fit(50 * Zx + 3, Zy)
    loaded = FuseMixAligner.load(aligner.save(tmp_path / "m"), device="cpu")
    for name in ("n_components_", "n_layers_", "expansion_", "dropout_", "alpha_"):
        assert getattr(loaded, name) == getattr(aligner, name)
    np.testing.assert_array_equal(
        loaded.transform(50 * Zx + 3), aligner.transform(50 * Zx + 3)
    )
    np.testing.assert_array_equal(
        loaded.adapter_x_.standardize.scale, aligner.adapter_x_.standardize.scale
    )


def test_groups_are_validated():
    Zx, Zy = make_pairs(n=100)
    with pytest.raises(ValueError, match="groups must be 1-D"):
        FuseMixAligner(**FEW).fit(Zx, Zy, groups=np.arange(99))
    with pytest.raises(ValueError, match="NaN"):
        FuseMixAligner(**FEW).fit(Zx, Zy, groups=np.full(100, np.nan))


def test_groups_keep_items_together_in_the_early_stopping_split():
    Zx, Zy = make_pairs(n=240)
    groups = np.repeat(np.arange(60), 4)
    aligner = FuseMixAligner(
        early_stopping=True, validation_fraction=0.25, max_epochs=2, random_state=0
    ).fit(Zx, Zy, groups=groups)
    assert aligner.batch_size_ == int(240 * 0.75) // 8


def test_groups_reach_fit_through_grid_search_with_metadata_routing():
    Zx, Zy = make_pairs(n=200)
    groups = np.repeat(np.arange(100), 2)
    seen = []

    class Recording(FuseMixAligner):
        def fit(self, X, y, groups=None):
            seen.append(None if groups is None else np.asarray(groups).copy())
            return super().fit(X, y, groups=groups)

    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            Recording(**FEW).set_fit_request(groups=True),
            {"alpha": [0.0, 0.5]},
            cv=GroupKFold(n_splits=2),
        ).fit(Zx, Zy, groups=groups)
    assert search.best_params_["alpha"] in (0.0, 0.5)
    assert len(seen) == 2 * 2 + 1 and all(g is not None for g in seen)
    # each fold's fit saw whole groups: every group has both of its rows
    assert all(np.all(np.unique(g, return_counts=True)[1] == 2) for g in seen)


def test_groups_make_captions_of_one_item_positives(monkeypatch):
    """With several captions per image, the training loss gets a positives
    mask (captions of one image are never negatives of each other)."""
    import skfusemix.engine._loop as loop

    Zx, Zy = make_pairs(n=120)
    Zx = np.repeat(Zx[:40], 3, axis=0)  # 40 images, 3 captions each
    seen = []
    original = loop.make_step

    def recording_make_step(*args, **kwargs):
        step = original(*args, **kwargs)

        def wrapped(zx, zy, positives=None, reg_weight=None):
            seen.append(positives)
            return step(zx, zy, positives=positives, reg_weight=reg_weight)

        return wrapped

    monkeypatch.setattr(loop, "make_step", recording_make_step)
    FuseMixAligner(alpha=0.0, batch_size=30, **FEW).fit(Zx, Zy)
    assert seen and all(p is not None for p in seen)
    assert all(bool(p.diagonal().all()) for p in seen)
    assert any(int(p.sum()) > p.shape[0] for p in seen)  # off-diagonal positives
    seen.clear()
    # the other way round: one sentence, three recordings (y repeats)
    FuseMixAligner(alpha=0.0, batch_size=30, **FEW).fit(Zy[:120], Zx)
    assert seen and all(p is not None for p in seen)
    assert any(int(p.sum()) > p.shape[0] for p in seen)
    seen.clear()
    FuseMixAligner(alpha=0.0, batch_size=30, **FEW).fit(*make_pairs(n=120))
    assert seen and all(p is None for p in seen)  # one caption each: plain InfoNCE


def test_default_groups_are_the_items_linked_by_either_side():
    """Without groups, pairs that share an X row or a y row are one item: the
    fit equals one given those groups explicitly, whichever side repeats."""
    Zx, Zy = make_pairs(n=120)
    X = np.repeat(Zx[:40], 3, axis=0)
    y = Zy[:120].copy()
    y[1::3] = y[2::3]  # two captions of each image are the same text...
    y[3] = y[0]  # ...and images 0 and 1 share a caption: one item
    items = np.repeat(np.arange(40), 3)
    items[3:6] = 0
    codes = pair_groups(X, y)
    # the same partition: as many distinct (code, item) pairs as items
    assert len(np.unique(codes)) == len(np.unique(np.c_[codes, items], axis=0)) == 39
    for a, b in ((X, y), (y, X)):
        default = FuseMixAligner(**FEW).fit(a, b)
        explicit = FuseMixAligner(**FEW).fit(a, b, groups=items)
        np.testing.assert_array_equal(default.transform(a), explicit.transform(a))
        np.testing.assert_array_equal(
            default.history_["loss"], explicit.history_["loss"]
        )


@pytest.mark.parametrize(
    "params", [{"loss": "sigmoid"}, {"structure_weight": 5.0, "structure_levels": 2}]
)
def test_objectives_train_save_and_load(params, tmp_path):
    Zx, Zy = make_pairs(n=200)
    aligner = FuseMixAligner(**params, **FEW).fit(Zx, Zy)
    assert np.isfinite(aligner.history_["loss"]).all()
    loaded = FuseMixAligner.load(aligner.save(tmp_path / "m"), device="cpu")
    assert type(loaded.loss_) is type(aligner.loss_)
    np.testing.assert_array_equal(loaded.transform(Zx), aligner.transform(Zx))
    plain = FuseMixAligner(**FEW).fit(Zx, Zy)
    assert not np.allclose(plain.history_["loss"], aligner.history_["loss"])


def test_bad_objective_parameters():
    Zx, Zy = make_pairs(n=50)
    for params in (
        {"loss": "hinge"},
        {"structure_weight": -1},
        {"structure_levels": 0},
    ):
        with pytest.raises(ValueError, match=next(iter(params))):
            FuseMixAligner(**params, **FEW).fit(Zx, Zy)
