"""Tests of skfusemix.ensemble: AlignerEnsemble and seed_ensemble."""

import json
import os

import numpy as np
import pytest
import sklearn
from helpers import CHECKS
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from skfusemix import (
    AlignerEnsemble,
    CCAAligner,
    FuseMixAligner,
    ProcrustesAligner,
    seed_ensemble,
)
from skfusemix._persistence import load_model
from skfusemix.base import AlignerMixin
from skfusemix.datasets import make_paired_latents


@parametrize_with_checks(
    [
        AlignerEnsemble(
            [
                ("cca", CCAAligner()),
                ("fusemix", FuseMixAligner(**CHECKS, random_state=0)),
            ]
        ),
        AlignerEnsemble(
            [("a", ProcrustesAligner()), ("b", CCAAligner())], weights=[2.0, 1.0]
        ),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def data():
    Zx, Zy = make_paired_latents(500, 48, 24, n_components=6, noise=0.5, random_state=0)
    return Zx[:400], Zy[:400], Zx[400:], Zy[400:]


def test_similarity_is_the_weighted_mean_of_the_members(data):
    Xtr, ytr, Xte, yte = data
    ensemble = AlignerEnsemble(
        [("cca", CCAAligner()), ("procrustes", ProcrustesAligner())], weights=[3, 1]
    ).fit(Xtr, ytr)
    Sx, Sy = ensemble.transform(Xte), ensemble.transform_y(yte)
    np.testing.assert_allclose(np.linalg.norm(Sx, axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(Sy, axis=1), 1.0)
    cca, procrustes = ensemble.estimators_
    expected = 0.75 * cca.transform(Xte) @ cca.transform_y(yte).T
    expected += 0.25 * procrustes.transform(Xte) @ procrustes.transform_y(yte).T
    np.testing.assert_allclose(Sx @ Sy.T, expected, atol=1e-12)
    np.testing.assert_allclose(ensemble.weights_, [0.75, 0.25])
    assert Sx.shape[1] == cca._n_features_out + procrustes._n_features_out
    assert len(ensemble.get_feature_names_out()) == Sx.shape[1]
    assert ensemble.named_estimators_.cca is cca


def test_members_are_fitted_clones(data):
    Xtr, ytr, _, _ = data
    cca = CCAAligner()
    ensemble = AlignerEnsemble([("cca", cca)]).fit(Xtr, ytr)
    assert not hasattr(cca, "x_weights_")  # the given estimator stays unfitted
    assert ensemble.estimators_[0] is not cca


def test_a_single_member_ranks_as_that_member(data):
    Xtr, ytr, Xte, yte = data
    ensemble = AlignerEnsemble([("cca", CCAAligner())]).fit(Xtr, ytr)
    alone = CCAAligner().fit(Xtr, ytr)
    np.testing.assert_allclose(ensemble.transform(Xte), alone.transform(Xte))
    assert ensemble.score(Xte, yte) == alone.score(Xte, yte)


def test_seed_ensemble_draws_distinct_reproducible_seeds():
    a = seed_ensemble(FuseMixAligner(), 4, random_state=0)
    b = seed_ensemble(FuseMixAligner(), 4, random_state=0)
    seeds = [est.random_state for _, est in a.estimators]
    assert len(set(seeds)) == 4
    assert seeds == [est.random_state for _, est in b.estimators]
    assert [name for name, _ in a.estimators] == ["seed0", "seed1", "seed2", "seed3"]


def test_seed_ensemble_members_differ_and_averaging_helps(data):
    Xtr, ytr, Xte, yte = data
    ensemble = seed_ensemble(
        FuseMixAligner(max_epochs=30, batch_size=64), 3, random_state=0
    ).fit(Xtr, ytr)
    Sx = [m.transform(Xte) for m in ensemble.estimators_]
    assert not np.allclose(Sx[0], Sx[1])
    members = [m.score(Xte, yte) for m in ensemble.estimators_]
    # averaging the similarities never ranks below the worst member here
    assert ensemble.score(Xte, yte) >= min(members)


class GroupsRecorder(AlignerMixin, BaseEstimator):
    """An aligner that records the groups its fit got."""

    def fit(self, X, y, groups=None):
        self.groups_seen_ = None if groups is None else np.asarray(groups).copy()
        self.n_features_in_, self.n_features_y_in_ = X.shape[1], y.shape[1]
        self._n_features_out = 2
        return self

    def transform(self, X):
        S = np.asarray(X, dtype=np.float64)[:, :2] + 1e-3
        return S / np.linalg.norm(S, axis=1, keepdims=True)

    transform_y = transform


def test_groups_reach_the_members_that_take_them(data):
    Xtr, ytr, _, _ = data
    groups = np.arange(len(Xtr)) // 2
    ensemble = AlignerEnsemble(
        [("recorder", GroupsRecorder()), ("cca", CCAAligner())]
    ).fit(Xtr, ytr, groups=groups)
    np.testing.assert_array_equal(ensemble.estimators_[0].groups_seen_, groups)
    # and through a grid search over a member's parameter (metadata routing)
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            AlignerEnsemble(
                [("recorder", GroupsRecorder()), ("cca", CCAAligner())]
            ).set_fit_request(groups=True),
            {"cca__reg": [0.1, 1.0]},
            cv=GroupKFold(2),
        ).fit(Xtr, ytr, groups=groups)
    assert search.best_params_["cca__reg"] in (0.1, 1.0)
    np.testing.assert_array_equal(
        search.best_estimator_.estimators_[0].groups_seen_, groups
    )


def test_grid_search_over_weights(data):
    Xtr, ytr, _, _ = data
    search = GridSearchCV(
        AlignerEnsemble([("cca", CCAAligner()), ("procrustes", ProcrustesAligner())]),
        {"weights": [[1, 0], [1, 1], [0, 1]]},
        cv=2,
    ).fit(Xtr, ytr)
    assert len(search.cv_results_["mean_test_score"]) == 3


def test_save_load_round_trip(tmp_path, data):
    Xtr, ytr, Xte, yte = data
    ensemble = AlignerEnsemble(
        [("fusemix", FuseMixAligner(**CHECKS, random_state=0)), ("cca", CCAAligner())],
        weights=[2, 1],
    ).fit(Xtr, ytr)
    path = ensemble.save(tmp_path / "ensemble")
    for loaded in (AlignerEnsemble.load(path), load_model(path)):
        assert isinstance(loaded, AlignerEnsemble)
        np.testing.assert_allclose(loaded.weights_, ensemble.weights_)
        np.testing.assert_allclose(
            loaded.transform(Xte), ensemble.transform(Xte), atol=1e-6
        )
        np.testing.assert_allclose(
            loaded.transform_y(yte), ensemble.transform_y(yte), atol=1e-6
        )
        assert isinstance(loaded.named_estimators_.fusemix, FuseMixAligner)


def test_save_refuses_names_that_are_not_folder_names(tmp_path, data):
    Xtr, ytr, _, _ = data
    ensemble = AlignerEnsemble([("../cca", CCAAligner())]).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="not a valid name"):
        ensemble.save(tmp_path / "ensemble")
    assert not os.path.exists(tmp_path / "cca")


def test_load_refuses_a_tampered_member_name(tmp_path, data):
    Xtr, ytr, _, _ = data
    path = AlignerEnsemble([("cca", CCAAligner())]).fit(Xtr, ytr).save(tmp_path / "e")
    config_path = os.path.join(path, "config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["members"] = ["../../etc"]
    with open(config_path, "w") as f:
        json.dump(config, f)
    with pytest.raises(ValueError, match="not a valid name"):
        AlignerEnsemble.load(path)


@pytest.mark.parametrize(
    "estimators, weights, error, match",
    [
        ([], None, ValueError, "non-empty list"),
        ("cca", None, ValueError, "non-empty list"),
        ([CCAAligner()], None, ValueError, r"\(name, estimator\) tuple"),
        ([("a", CCAAligner()), ("a", CCAAligner())], None, ValueError, "unique"),
        ([("a", object())], None, TypeError, "not an aligner"),
        ([("a", CCAAligner())], [1, 2], ValueError, "one number per estimator"),
        ([("a", CCAAligner())], [-1], ValueError, "non-negative"),
        ([("a", CCAAligner())], [np.nan], ValueError, "finite"),
        ([("a", CCAAligner())], ["x"], TypeError, "must be numbers"),
    ],
)
def test_bad_parameters_are_named(data, estimators, weights, error, match):
    Xtr, ytr, _, _ = data
    with pytest.raises(error, match=match):
        AlignerEnsemble(estimators, weights=weights).fit(Xtr, ytr)


def test_bad_input_reaches_the_user_as_the_members_error(data):
    Xtr, ytr, _, _ = data
    ensemble = AlignerEnsemble([("cca", CCAAligner())])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        ensemble.fit(Xtr, ytr[:-1])
    X_nan = Xtr.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clone(ensemble).fit(X_nan, ytr)
    assert not np.isnan(Xtr).any()  # nothing the user passed is modified


def test_not_fitted():
    with pytest.raises(NotFittedError):
        AlignerEnsemble([("cca", CCAAligner())]).transform(np.zeros((2, 3)))


def test_seed_ensemble_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_estimators"):
        seed_ensemble(FuseMixAligner(), 0)
    with pytest.raises(ValueError, match="no random_state"):
        seed_ensemble(CCAAligner(), 3)
