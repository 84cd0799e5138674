"""FuseMixAligner.save / load: round trips, strictness, no code execution."""

import json
import os
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import FAST, make_pairs
from safetensors.torch import load_file, save_file

from skfusemix import FuseMixAligner
from skfusemix._persistence import FORMAT_VERSION


@pytest.fixture(scope="module")
def fitted():
    Zx, Zy = make_pairs(n=200)
    aligner = FuseMixAligner(**FAST, random_state=0).fit(Zx, Zy)
    return aligner, Zx, Zy


@pytest.fixture
def saved(fitted, tmp_path):
    aligner = fitted[0]
    return aligner.save(tmp_path / "model")


def _edit_config(path, edit):
    with open(path / "config.json") as f:
        config = json.load(f)
    edit(config)
    with open(path / "config.json", "w") as f:
        json.dump(config, f)


def _edit_tensors(path, edit):
    tensors = load_file(path / "model.safetensors")
    edit(tensors)
    save_file(tensors, path / "model.safetensors")


def test_round_trip_is_exact(fitted, saved):
    aligner, Zx, Zy = fitted
    # the adapters, the joined CCA and anchors ("auto") in their own folders,
    # and the hubness correction's references
    assert sorted(os.listdir(saved)) == [
        *("anchors", "cca", "config.json", "csls.safetensors", "model.safetensors")
    ]
    loaded = FuseMixAligner.load(saved, device="cpu")
    assert loaded.cca_weight_ == aligner.cca_weight_ == 0.3
    assert loaded.anchor_weight_ == aligner.anchor_weight_ == 0.3
    np.testing.assert_array_equal(loaded.transform(Zx), aligner.transform(Zx))
    np.testing.assert_array_equal(loaded.transform_y(Zy), aligner.transform_y(Zy))
    assert loaded.get_params() == aligner.get_params() | {"device": "cpu"}
    for name in (
        "n_features_in_",
        "n_features_y_in_",
        "temperature_",
        "batch_size_",
        "n_iter_",
        "t_",
        "history_",
        "validation_scores_",
    ):
        assert getattr(loaded, name) == getattr(aligner, name), name
    assert loaded.device_ == torch.device("cpu")
    assert not loaded.adapter_x_.training
    assert loaded.score(Zx, Zy) == aligner.score(Zx, Zy)
    with open(saved / "config.json") as f:
        config = json.load(f)
    assert config["format_version"] == FORMAT_VERSION
    assert config["skfusemix_version"]


def test_round_trip_keeps_feature_names_and_pair_n_layers(tmp_path):
    Zx, Zy = make_pairs(n=150)
    df = pd.DataFrame(Zx, columns=[f"f{i}" for i in range(Zx.shape[1])])
    aligner = FuseMixAligner(
        **dict(FAST, n_layers=(2, 0), max_epochs=1, alpha=0.0), random_state=1
    ).fit(df, Zy)
    loaded = FuseMixAligner.load(aligner.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.feature_names_in_, aligner.feature_names_in_)
    assert loaded.n_layers == (2, 0)
    np.testing.assert_array_equal(loaded.transform(df), aligner.transform(df))
    with pytest.raises(ValueError, match="feature names"):
        loaded.transform(df.rename(columns={"f0": "other"}))


def test_load_never_unpickles(saved, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("load must not unpickle")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    FuseMixAligner.load(saved)


def test_saved_aligner_can_warm_start(fitted, saved):
    aligner, Zx, Zy = fitted
    loaded = FuseMixAligner.load(saved).set_params(warm_start=True, max_epochs=2)
    loaded.fit(Zx, Zy)
    assert loaded.n_iter_ == aligner.n_iter_ + 2


# ------------------------------------------------------------ tampering
@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda t: t.update({"adapter_x.proj.weight": torch.zeros(3, 24)}),
            r"adapter_x.proj.weight has shape \(3, 24\), expected \(16, 24\)",
        ),
        (
            lambda t: t.pop("adapter_y.norm.bias"),
            "missing tensors 'adapter_y.norm.bias'",
        ),
        (lambda t: t.update({"evil": torch.zeros(1)}), "unknown tensors 'evil'"),
        (
            lambda t: t.update(
                {"adapter_x.proj.bias": torch.full((16,), float("nan"))}
            ),
            "NaN or infinite",
        ),
        (
            lambda t: t.update(
                {"adapter_x.proj.bias": torch.zeros(16, dtype=torch.int32)}
            ),
            "expected a float",
        ),
        (lambda t: t["adapter_x.proj.bias"].add_(1.0), "SHA-256 differs"),
        (
            lambda t: t.update({"loss.log_temperature": torch.tensor(0.0)}),
            "temperature_=.* but the tensors hold",
        ),
    ],
)
def test_tampered_tensors_are_refused(saved, edit, match):
    _edit_tensors(saved, edit)
    with pytest.raises(ValueError, match=match):
        FuseMixAligner.load(saved)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: c["fitted"].update(n_components_=8), "shape"),
        (lambda c: c["fitted"].update(n_layers_=[2, 2]), "missing tensors"),
        (lambda c: c["fitted"].update(n_layers_="many"), "n_layers_"),
        (lambda c: c["fitted"].update(dropout_=1.5), "dropout_"),
        (lambda c: c["fitted"].update(n_features_in_=5), "shape"),
        (lambda c: c["params"].update(backdoor=1), "unknown parameters"),
        (lambda c: c["params"].update(dropout=7), "dropout"),
        (lambda c: c["fitted"].update(t_=-1), "t_ must be an integer"),
        (lambda c: c["fitted"].update(temperature_="hot"), "temperature_"),
        (lambda c: c["fitted"]["history_"].update(loss=[1.0]), "same length"),
        (lambda c: c["fitted"].update(feature_names_in_=["a"]), "feature_names_in_"),
        # the joined parts' fitted values (this model has all three)
        *[
            (lambda c, v=v: c["fitted"].update(cca_weight_=v), "cca_weight_")
            for v in (-0.5, 1.0, "x", None)
        ],
        *[
            (lambda c, v=v: c["fitted"].update(anchor_weight_=v), "anchor_weight_")
            for v in (-0.5, 1.0, 0.9, "x", None)
        ],
        *[
            (lambda c, v=v: c["fitted"].update(csls_neighbors_=v), "csls_neighbors_")
            for v in (-1, 2.5, "10", True)
        ],
        (lambda c: c.update(format_version=FORMAT_VERSION + 1), "Upgrade skfusemix"),
        (lambda c: c.update(format="something.else"), "does not describe"),
        (lambda c: c.update(weights={"file": "../../etc/passwd"}), "must name"),
    ],
)
def test_edited_config_is_refused(saved, edit, match):
    _edit_config(saved, edit)
    with pytest.raises(ValueError, match=match):
        FuseMixAligner.load(saved)


def test_not_a_safetensors_file_or_json(saved):
    (saved / "model.safetensors").write_bytes(b"\x80\x04garbage pickle-ish bytes")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        FuseMixAligner.load(saved)
    (saved / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        FuseMixAligner.load(saved)


def test_missing_files(saved, tmp_path):
    with pytest.raises(FileNotFoundError):
        FuseMixAligner.load(tmp_path / "nothing")
    os.remove(saved / "model.safetensors")
    with pytest.raises(FileNotFoundError):
        FuseMixAligner.load(saved)


def test_weights_from_another_model_are_refused(fitted, tmp_path):
    aligner, Zx, Zy = fitted
    a = aligner.save(tmp_path / "a")
    other = FuseMixAligner(**FAST, random_state=1).fit(Zx, Zy)
    b = other.save(tmp_path / "b")
    shutil.copy(b / "model.safetensors", a / "model.safetensors")
    with pytest.raises(ValueError, match="do not belong together|SHA-256"):
        FuseMixAligner.load(a)


def test_unavailable_device_is_an_error_but_saved_cuda_falls_back(saved):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        FuseMixAligner.load(saved, device="cuda")
    _edit_config(saved, lambda c: c["params"].update(device="cuda"))
    loaded = FuseMixAligner.load(saved)  # trained on a GPU, opened on a laptop
    assert loaded.device_ == torch.device("cpu") and loaded.device == "cuda"


# ------------------------------------------------------- what is recorded
def test_y_transformer_is_not_saved_but_can_be_given_back(tmp_path):
    from sklearn.preprocessing import StandardScaler

    Zx, Zy = make_pairs(n=150)
    aligner = FuseMixAligner(
        **dict(FAST, max_epochs=1), y_transformer=StandardScaler(), random_state=0
    ).fit(Zx, Zy)
    with pytest.warns(UserWarning, match=r"y_transformer \(StandardScaler\)"):
        path = aligner.save(tmp_path / "m")
    loaded = FuseMixAligner.load(path)
    assert loaded.y_transformer is None
    with open(path / "config.json") as f:
        assert json.load(f)["unsaved_params"] == {"y_transformer": "StandardScaler"}
    loaded = FuseMixAligner.load(path, y_transformer=aligner.y_transformer_)
    loaded.y_transformer_ = aligner.y_transformer_
    np.testing.assert_array_equal(loaded.transform_y(Zy), aligner.transform_y(Zy))


def test_encoder_identities_are_recorded_and_checked(fitted, tmp_path):
    from skfusemix.encoders import TorchEncoder, encode_to_npy, read_latent_metadata

    aligner, Zx, Zy = fitted
    encoder_x = TorchEncoder(torch.nn.Linear(5, 24), pooling=None)
    latents = tmp_path / "zy.npy"
    encode_to_npy(
        TorchEncoder(torch.nn.Linear(3, 16), pooling=None), np.ones((4, 3)), latents
    )
    path = aligner.save(
        tmp_path / "m", encoders={"x": encoder_x, "y": read_latent_metadata(latents)}
    )
    loaded = FuseMixAligner.load(path, expected_encoders={"x": encoder_x})
    assert loaded.encoders_["x"]["encoder"] == "TorchEncoder"
    assert loaded.encoders_["y"]["shape"] == [4, 16]
    other = TorchEncoder(torch.nn.Linear(5, 24), pooling="mean")
    with pytest.raises(ValueError, match="different modality-x encoder"):
        FuseMixAligner.load(path, expected_encoders={"x": other})
    with pytest.raises(ValueError, match="width 16"):
        aligner.save(tmp_path / "bad", encoders={"x": read_latent_metadata(latents)})
    with pytest.raises(ValueError, match="'x' and/or 'y'"):
        aligner.save(tmp_path / "bad", encoders={"z": "clip"})


def test_save_needs_a_fitted_aligner(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        FuseMixAligner().save(tmp_path / "m")


def test_pickle_still_round_trips(fitted):
    aligner, Zx, _ = fitted
    clone = pickle.loads(pickle.dumps(aligner))
    np.testing.assert_array_equal(clone.transform(Zx), aligner.transform(Zx))
    assert clone.loss_ is not None
