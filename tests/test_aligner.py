"""FuseMixAligner: learning, the scikit-learn face, bad input, reproducibility."""

import pickle
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import CHECKS, FAST, make_pairs
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skfusemix import FuseMixAligner, make_retrieval_scorer, retrieval_report
from skfusemix._data import resolve_device


@parametrize_with_checks(
    [
        FuseMixAligner(**CHECKS, random_state=0),
        FuseMixAligner(  # one-sided: y's own space is the shared space
            **{**CHECKS, "n_components": "auto"}, random_state=0, fixed_y=True
        ),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ----------------------------------------------------------------- learning
def test_learns_held_out_pairs_far_above_chance():
    Zx, Zy = make_pairs(n=1200, seed=0)
    train, test = slice(0, 1000), slice(1000, None)
    aligner = FuseMixAligner(
        n_components=32,
        n_layers=2,
        dropout=0.1,
        batch_size=128,
        max_epochs=40,
        random_state=0,
    ).fit(Zx[train], Zy[train])
    loss = aligner.history_["loss"]
    assert loss[-1] < 0.5 * loss[0]
    report = retrieval_report(
        aligner.transform(Zx[test]), aligner.transform_y(Zy[test])
    )
    # chance R@1 is 1/200 = 0.005
    assert report["x2y_R@1"] > 0.5 and report["y2x_R@1"] > 0.5, report
    assert aligner.score(Zx[test], Zy[test]) == pytest.approx(
        0.5 * (report["x2y_R@1"] + report["y2x_R@1"])
    )


def test_fitted_attributes_and_history(pairs):
    Zx, Zy = pairs
    aligner = FuseMixAligner(**FAST, random_state=0).fit(Zx, Zy)
    assert aligner.n_features_in_ == 24 and aligner.n_features_y_in_ == 16
    assert aligner.batch_size_ == 64 and aligner.n_iter_ == 5
    assert aligner.t_ == 5 * (300 // 128)
    assert set(aligner.history_) == {"epoch", "loss", "temperature", "lr", "time"}
    assert all(len(v) == 5 for v in aligner.history_.values())
    assert aligner.temperature_ == pytest.approx(aligner.history_["temperature"][-1])
    assert aligner.temperature_ != pytest.approx(0.07)  # it was learned
    assert aligner.device_ == torch.device("cpu")
    Sx, Sy = aligner.transform(Zx), aligner.transform_y(Zy)
    # the adapters' 16-d space joined with a 16-d CCA ("auto" cca_weight) and
    # the similarities to the 300 training pairs ("auto" anchor_weight), then
    # the 4 columns of the hubness correction ("auto" csls_neighbors)
    assert aligner.cca_weight_ == 0.3 and aligner.cca_.n_components == 16
    assert aligner.anchor_weight_ == 0.3 and aligner.anchors_.n_anchors_ == 300
    assert aligner.csls_neighbors_ == 10
    assert aligner.csls_reference_x_.shape == aligner.csls_reference_y_.shape
    assert aligner.csls_reference_x_.shape == (300, 32)
    assert Sx.shape == Sy.shape == (300, 32 + 300 + 4) and Sx.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Sx, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(Sy, axis=1), 1.0, rtol=1e-5)
    assert not aligner.adapter_x_.training
    np.testing.assert_array_equal(
        aligner.get_feature_names_out(), [f"fusemixaligner{i}" for i in range(336)]
    )


def test_fixed_temperature_stays_fixed(pairs):
    aligner = FuseMixAligner(
        **FAST, temperature=0.2, learn_temperature=False, random_state=0
    )
    aligner.fit(*pairs)
    assert aligner.temperature_ == pytest.approx(0.2)
    assert np.allclose(aligner.history_["temperature"], 0.2)


def test_per_modality_depth(pairs):
    aligner = FuseMixAligner(**{**FAST, "n_layers": (2, 0)}, random_state=0).fit(*pairs)
    assert len(aligner.adapter_x_.blocks) == 2 and len(aligner.adapter_y_.blocks) == 0


# ------------------------------------------------------------ reproducibility
def test_same_random_state_same_embeddings(pairs):
    Zx, Zy = pairs
    params = {**FAST, "dropout": 0.3}
    a = FuseMixAligner(**params, random_state=7).fit(Zx, Zy)
    b = FuseMixAligner(**params, random_state=7).fit(Zx, Zy)
    c = FuseMixAligner(**params, random_state=8).fit(Zx, Zy)
    np.testing.assert_array_equal(a.transform(Zx), b.transform(Zx))
    np.testing.assert_array_equal(a.transform_y(Zy), b.transform_y(Zy))
    assert a.history_["loss"] == b.history_["loss"]
    assert not np.allclose(a.transform(Zx), c.transform(Zx))


def test_fit_leaves_global_torch_rng_alone(pairs):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    FuseMixAligner(**FAST, random_state=0).fit(*pairs)
    torch.testing.assert_close(torch.rand(3), expected)


# ------------------------------------------------------------- input kinds
def test_input_containers_agree_and_are_not_modified(pairs, tmp_path):
    Zx, Zy = pairs
    params = {**FAST, "random_state": 0}
    ref = FuseMixAligner(**params).fit(Zx, Zy).transform(Zx)

    path = tmp_path / "zx.npy"
    np.save(path, Zx)
    memmap = np.load(path, mmap_mode="r")  # read-only
    frame = pd.DataFrame(Zx, columns=[f"f{i}" for i in range(Zx.shape[1])])
    fortran = np.asfortranarray(Zx.astype(np.float64))
    tensor = torch.from_numpy(Zx.copy())
    for X in (memmap, frame, fortran, tensor):
        before = np.array(X, copy=True)
        emb = FuseMixAligner(**params).fit(X, Zy).transform(X)
        np.testing.assert_allclose(
            emb, ref, rtol=1e-5, atol=1e-6, err_msg=type(X).__name__
        )
        np.testing.assert_array_equal(np.asarray(X), before)
    half = FuseMixAligner(**params).fit(Zx.astype(np.float16), Zy.astype(np.float16))
    assert half.transform(Zx.astype(np.float16)).dtype == np.float32


def test_dataframe_feature_names(pairs):
    Zx, Zy = pairs
    frame = pd.DataFrame(Zx, columns=[f"f{i}" for i in range(Zx.shape[1])])
    aligner = FuseMixAligner(**FAST, random_state=0).fit(frame, Zy)
    np.testing.assert_array_equal(aligner.feature_names_in_, frame.columns)


def test_set_output_pandas(pairs):
    aligner = FuseMixAligner(**FAST, random_state=0).set_output(transform="pandas")
    out = aligner.fit(*pairs).transform(pairs[0])
    assert isinstance(out, pd.DataFrame) and list(out.columns)[:2] == [
        "fusemixaligner0",
        "fusemixaligner1",
    ]


def test_small_data_reduces_batch_size_with_a_warning(pairs):
    Zx, Zy = pairs
    with pytest.warns(
        UserWarning, match=r"batch_size=20480 is larger .* using batch_size=150"
    ):
        aligner = FuseMixAligner(**{**FAST, "batch_size": 20480}, random_state=0).fit(
            Zx, Zy
        )
    assert aligner.batch_size_ == 150 and aligner.t_ == 5
    with pytest.warns(UserWarning, match="using batch_size=300"):
        aligner = FuseMixAligner(**{**FAST, "batch_size": 20480, "alpha": 0}).fit(
            Zx, Zy
        )
    assert aligner.batch_size_ == 300


# ------------------------------------------------------------------ sklearn
def test_clone_and_set_params():
    aligner = FuseMixAligner(alpha=0.5, temperature=0.1)
    other = clone(aligner).set_params(alpha=0.0)
    assert other.alpha == 0.0 and aligner.alpha == 0.5 and other.temperature == 0.1
    assert not hasattr(other, "adapter_x_")


def test_grid_search_over_alpha_and_temperature_with_groups():
    # 60 "images", each with 3 captions: rows of an image stay in one fold
    rng = np.random.RandomState(0)
    Zx_img, _ = make_pairs(n=60, seed=1)
    Zx = np.repeat(Zx_img, 3, axis=0)
    Zy = np.repeat(make_pairs(n=60, seed=1)[1], 3, axis=0) + 0.05 * rng.normal(
        size=(180, 16)
    ).astype(np.float32)
    groups = np.repeat(np.arange(60), 3)
    search = GridSearchCV(
        FuseMixAligner(**dict(FAST, max_epochs=30), random_state=0),
        {"alpha": [0.0, 1.0], "temperature": [0.05, 0.2]},
        cv=GroupKFold(n_splits=3),
    )
    search.fit(Zx, Zy, groups=groups)
    assert set(search.cv_results_["param_alpha"]) == {0.0, 1.0}
    assert 0.0 <= search.best_score_ <= 1.0 and search.best_score_ > 0.1
    assert isinstance(search.best_estimator_, FuseMixAligner)

    multi = GridSearchCV(
        FuseMixAligner(**FAST, random_state=0),
        {"alpha": [0.0, 1.0]},
        cv=GroupKFold(n_splits=3),
        scoring={
            "rsum": make_retrieval_scorer("rsum"),
            "medr": make_retrieval_scorer("y2x_medr"),
        },
        refit="rsum",
    ).fit(Zx, Zy, groups=groups)
    assert multi.cv_results_["mean_test_rsum"].max() > 0.5
    assert np.all(multi.cv_results_["mean_test_medr"] <= -1)


def test_pipeline_with_standard_scaler(pairs):
    Zx, Zy = pairs
    aligner = FuseMixAligner(
        **{**FAST, "max_epochs": 30, "learning_rate": 3e-3}, random_state=0
    )
    pipe = Pipeline([("scale", StandardScaler()), ("align", aligner)])
    Sx = pipe.fit(Zx * 100 + 5, Zy).transform(Zx * 100 + 5)
    assert Sx.shape == (300, 16 + 16 + 300 + 4)  # adapters, CCA, anchors, CSLS
    assert pipe.score(Zx * 100 + 5, Zy) > 0.3  # chance: 1/300
    np.testing.assert_array_equal(pipe.get_feature_names_out()[:1], ["fusemixaligner0"])


def test_pickle_round_trip_holds_cpu_tensors_only(pairs):
    Zx, Zy = pairs
    aligner = FuseMixAligner(**FAST, random_state=0).fit(Zx, Zy)
    state = aligner.__getstate__()
    for name in ("adapter_x_", "adapter_y_"):
        assert all(p.device.type == "cpu" for p in state[name].parameters())
    assert isinstance(state["device_"], str)
    restored = pickle.loads(pickle.dumps(aligner))
    np.testing.assert_array_equal(restored.transform(Zx), aligner.transform(Zx))
    assert restored.device_ == torch.device("cpu")


def test_model_fitted_on_unavailable_device_transforms_on_cpu(pairs, monkeypatch):
    """A model saved from a CUDA fit (device='cuda') must load and run on a
    CPU-only machine: inference falls back to the CPU."""
    Zx, Zy = pairs
    aligner = FuseMixAligner(**FAST, random_state=0).fit(Zx, Zy)
    expected = aligner.transform(Zx)
    aligner.device = "cuda"  # as if it had been fitted there
    restored = pickle.loads(pickle.dumps(aligner))
    np.testing.assert_array_equal(restored.transform(Zx), expected)


# ---------------------------------------------------------------- bad input
def _fast():
    return FuseMixAligner(**FAST, random_state=0)


@pytest.mark.parametrize(
    "X, y, error, match",
    [
        (np.full((10, 3), np.nan), np.ones((10, 2)), ValueError, "NaN"),
        (np.ones((10, 3)), np.full((10, 2), np.inf), ValueError, "infinity"),
        (np.ones((10, 3)), np.ones((9, 2)), ValueError, "X has 10 rows and y has 9"),
        (np.ones(10), np.ones((10, 2)), ValueError, "Expected 2D array"),
        (np.ones((10, 3, 2)), np.ones((10, 2)), ValueError, "dim 3"),
        (np.ones((10, 3)), np.ones((10, 2, 2)), ValueError, "dim 3"),
        (np.ones((0, 3)), np.ones((0, 2)), ValueError, "0 sample"),
        (np.ones((1, 3)), np.ones((1, 2)), ValueError, "needs at least 2 pairs"),
        (np.array([["a", "b"], ["c", "d"]]), np.ones((2, 2)), ValueError, "convert"),
        (np.ones((10, 3)), None, ValueError, "requires y to be passed"),
        (np.ones((10, 3)), np.array([["a", "b"]] * 10), ValueError, "convert"),
        (np.ones((10, 3)) + 1j, np.ones((10, 2)), ValueError, "Complex"),
        (torch.full((10, 3), float("nan")), torch.ones(10, 2), ValueError, "NaN"),
        (torch.ones(10), torch.ones(10, 2), ValueError, "2-D X"),
    ],
)
@pytest.mark.parametrize("fixed_y", [False, True], ids=["two-sided", "one-sided"])
def test_bad_data_is_rejected_before_training(X, y, error, match, fixed_y, monkeypatch):
    import skfusemix.aligner as module

    def no_training(*args, **kwargs):
        raise AssertionError("training started on bad input")

    monkeypatch.setattr(module, "train", no_training)
    aligner = _fast()
    if fixed_y:
        aligner.set_params(fixed_y=True, n_components="auto")
    with pytest.raises(error, match=match):
        aligner.fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha": -1.0}, "'alpha' parameter"),
        ({"temperature": 0.0}, "'temperature' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"max_epochs": 0}, "'max_epochs' parameter"),
        ({"dropout": 1.0}, "'dropout' parameter"),
        ({"n_components": 0}, "'n_components' parameter"),
        ({"n_layers": (1, -1)}, "n_layers must be"),
        ({"n_layers": (1, 2, 3)}, "n_layers must be"),
        ({"learning_rate": -1e-3}, "'learning_rate' parameter"),
        ({"device": "tpu"}, "Unknown device|Unsupported device"),
        ({"device": 3}, "'device' parameter"),
    ],
)
def test_bad_parameters(params, match, pairs):
    with pytest.raises(ValueError, match=match):
        FuseMixAligner(**{**FAST, **params}).fit(*pairs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_requested_without_cuda(pairs):
    with pytest.raises(ValueError, match="CUDA is not available"):
        FuseMixAligner(**FAST, device="cuda").fit(*pairs)
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:1")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_not_fitted_and_wrong_width(pairs):
    Zx, Zy = pairs
    aligner = _fast()
    for method, data in (("transform", Zx), ("transform_y", Zy)):
        with pytest.raises(NotFittedError):
            getattr(aligner, method)(data)
    with pytest.raises(NotFittedError):
        aligner.score(Zx, Zy)
    aligner.fit(Zx, Zy)
    with pytest.raises(
        ValueError, match="X has 5 features, but FuseMixAligner is expecting 24"
    ):
        aligner.transform(Zx[:, :5])
    with pytest.raises(
        ValueError, match="y has 5 features, but FuseMixAligner is expecting 16"
    ):
        aligner.transform_y(Zy[:, :5])
    with pytest.raises(ValueError, match=re.escape("X has 5 features")):
        aligner.transform(torch.from_numpy(Zx[:, :5].copy()))


def test_one_dimensional_y_is_one_feature():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aligner = FuseMixAligner(**{**FAST, "batch_size": 10}).fit(X, X[:, 0])
    assert aligner.n_features_y_in_ == 1
    assert aligner.cca_.n_components == 1  # the joined CCA has one component
    # + 40 anchors + 4 columns of the hubness correction
    assert aligner.transform_y(X[:, 0]).shape == (40, 16 + 1 + 40 + 4)
