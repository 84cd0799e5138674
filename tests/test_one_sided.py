"""One-sided alignment (fixed_y=True) and AnchorBinding: X is aligned into
y's own space, which no adapter changes."""

import json
import os

import numpy as np
import pytest
import torch
from helpers import FAST, StepCounter, make_pairs, same_weights
from safetensors.torch import load_file, save_file
from sklearn.model_selection import GridSearchCV

from skfusemix import AnchorBinding, FuseMixAligner, retrieval_report
from skfusemix._data import l2_normalize
from skfusemix.cli import main
from skfusemix.engine.nn import FixedSpace

ONE_SIDED = {k: v for k, v in FAST.items() if k != "n_components"} | {
    "fixed_y": True,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def data():
    Zx, Zy = make_pairs(n=400, seed=1)
    return Zx, Zy + 2.0  # an offset: the y vectors all point one way, and stay so


@pytest.fixture(scope="module")
def fitted(data):
    Zx, Zy = data
    return FuseMixAligner(**(ONE_SIDED | {"max_epochs": 40})).fit(Zx[:300], Zy[:300])


def _index(Zy):
    """An index of y vectors built beforehand, without skfusemix's aligner."""
    return l2_normalize(Zy).astype(np.float32)


def test_y_space_is_kept_and_only_h_x_is_trained(data, fitted):
    Zx, Zy = data
    assert fitted.n_components_ == Zy.shape[1] == 16
    assert fitted.n_layers_ == (1, 0)
    assert isinstance(fitted.adapter_y_, FixedSpace)
    assert list(fitted.adapter_y_.parameters()) == []
    np.testing.assert_allclose(fitted.transform_y(Zy), _index(Zy), rtol=0, atol=1e-6)
    assert fitted.transform(Zx).shape == (400, 16)
    # the y latents were not standardised or otherwise changed
    assert fitted.transform_y(Zy[:5]).dtype == np.float32


def test_x_is_searchable_against_an_existing_y_index(data, fitted):
    Zx, Zy = data
    held_out = retrieval_report(fitted.transform(Zx[300:]), _index(Zy[300:]), ks=(1,))
    assert held_out["x2y_R@1"] > 0.1  # chance: 0.01
    assert fitted.score(Zx[300:], Zy[300:]) > 0.1


def test_n_components_may_only_restate_y_width(data):
    Zx, Zy = data
    FuseMixAligner(**ONE_SIDED, n_components=16).fit(Zx, Zy)
    with pytest.raises(ValueError, match="n_components must be 'auto' or 16, got 8"):
        FuseMixAligner(**ONE_SIDED, n_components=8).fit(Zx, Zy)
    with pytest.raises(ValueError, match="n_layers must be one int"):
        FuseMixAligner(**(ONE_SIDED | {"n_layers": (1, 2)})).fit(Zx, Zy)


@pytest.mark.parametrize(
    "params, learns",
    [
        ({"loss": "sigmoid"}, True),
        ({"structure_weight": 1.0}, True),
        ({"alpha": 0.0}, True),
        ({"storage_dtype": "float16"}, True),
        # stops after a few epochs; checked to run and record its scores
        ({"early_stopping": True, "n_iter_no_change": 2}, False),
        # no standardisation: an offset target is hard to reach (see
        # test_standardisation_makes_an_offset_target_as_easy_as_a_centred_one)
        ({"standardize": False}, False),
    ],
    ids=lambda p: (
        ",".join(f"{k}={v}" for k, v in p.items()) if isinstance(p, dict) else ""
    ),
)
def test_objectives_and_options_work_one_sided(data, params, learns):
    Zx, Zy = data
    aligner = FuseMixAligner(**(ONE_SIDED | {"max_epochs": 30} | params)).fit(Zx, Zy)
    assert np.isfinite(aligner.history_["loss"]).all()
    np.testing.assert_allclose(aligner.transform_y(Zy), _index(Zy), atol=1e-6)
    if learns:
        assert aligner.score(Zx, Zy) > 0.04  # chance: 0.0025
    if "early_stopping" in params:
        assert np.isfinite(aligner.validation_scores_).all()


@pytest.mark.parametrize("loss", ["infonce", "sigmoid"])
def test_standardisation_makes_an_offset_target_as_easy_as_a_centred_one(loss):
    """h_x predicts y's standardised features and maps them back (and the
    sigmoid loss's bias starts below the target's common cosine), so
    shifting every y vector by the same offset (an anisotropic text space)
    costs little; without it the one-sided fit barely learns."""
    Zx, Zy = make_pairs(n=400, seed=1)
    params = ONE_SIDED | {"max_epochs": 40, "loss": loss}
    centred = FuseMixAligner(**params).fit(Zx, Zy).score(Zx, Zy)
    shifted = FuseMixAligner(**params).fit(Zx, Zy + 2.0).score(Zx, Zy + 2.0)
    raw = FuseMixAligner(**params, standardize=False).fit(Zx, Zy + 2.0)
    assert shifted > 0.5 * centred > 0.05
    assert raw.score(Zx, Zy + 2.0) < 0.5 * shifted


def test_multi_positive_groups(data):
    Zx, Zy = data
    groups = np.arange(len(Zx)) // 2  # two x rows per item
    aligner = FuseMixAligner(**(ONE_SIDED | {"max_epochs": 30})).fit(
        Zx, Zy, groups=groups
    )
    assert aligner.score(Zx, Zy) > 0.02


def test_streamed_fit_is_one_sided_too():
    Zx, Zy = make_pairs(n=3000, seed=1)
    params = ONE_SIDED | {"max_epochs": 4, "max_memory": 600_000}
    aligner = FuseMixAligner(**params).fit(Zx, Zy + 2.0)
    assert aligner.data_path_ == "stream"
    np.testing.assert_allclose(
        aligner.transform_y(Zy + 2.0), _index(Zy + 2.0), atol=1e-6
    )
    assert aligner.score(Zx, Zy + 2.0) > 0.005  # chance: 0.0003


def test_grid_search(data):
    Zx, Zy = data
    search = GridSearchCV(
        FuseMixAligner(**ONE_SIDED), {"alpha": [0.0, 0.5]}, cv=2, error_score="raise"
    ).fit(Zx, Zy)
    assert search.best_estimator_.fixed_y
    assert isinstance(search.best_estimator_.adapter_y_, FixedSpace)


def test_warm_start_refuses_a_change_of_mode(data):
    Zx, Zy = data
    aligner = FuseMixAligner(**ONE_SIDED, warm_start=True).fit(Zx, Zy)
    aligner.fit(Zx, Zy)  # same mode: continues
    assert aligner.n_iter_ == 2 * FAST["max_epochs"]
    aligner.set_params(fixed_y=False, n_components=16)
    with pytest.raises(ValueError, match="fixed_y=True but the parameters ask"):
        aligner.fit(Zx, Zy)


def test_checkpointed_fit_resumes_to_the_uninterrupted_result(
    data, tmp_path, monkeypatch
):
    Zx, Zy = data
    params = ONE_SIDED | {"dropout": 0.2, "max_epochs": 4}
    reference = FuseMixAligner(**params).fit(Zx, Zy)
    counter = StepCounter(monkeypatch, fail_at=2 * (400 // 128) + 1)  # in epoch 3
    with pytest.raises(RuntimeError, match="killed"):
        FuseMixAligner(**params, checkpoint_dir=tmp_path).fit(Zx, Zy)
    counter.n, counter.fail_at = 0, None
    resumed = FuseMixAligner(**params, checkpoint_dir=tmp_path).fit(Zx, Zy)
    assert resumed.n_iter_restored_ == 2
    assert counter.n == 2 * (400 // 128)  # epochs 3 and 4 only
    assert same_weights(resumed, reference)
    assert resumed.history_["loss"] == reference.history_["loss"]


# ------------------------------------------------------------ save / load
def test_save_load_round_trip(data, fitted, tmp_path):
    Zx, Zy = data
    path = fitted.save(tmp_path / "m")
    loaded = FuseMixAligner.load(path)
    assert loaded.fixed_y and isinstance(loaded.adapter_y_, FixedSpace)
    np.testing.assert_array_equal(loaded.transform(Zx), fitted.transform(Zx))
    np.testing.assert_array_equal(loaded.transform_y(Zy), fitted.transform_y(Zy))
    assert not any(
        k.startswith("adapter_y.") for k in load_file(path / "model.safetensors")
    )


def test_tampered_one_sided_files_are_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "m")
    with open(path / "config.json") as f:
        config = json.load(f)
    config["params"]["fixed_y"] = False
    with open(path / "config.json", "w") as f:
        json.dump(config, f)
    with pytest.raises(ValueError, match="missing tensors 'adapter_y"):
        FuseMixAligner.load(path)
    path = fitted.save(tmp_path / "m2")
    tensors = load_file(path / "model.safetensors")
    tensors["adapter_y.proj.weight"] = torch.zeros(16, 16)
    save_file(tensors, path / "model.safetensors")
    with pytest.raises(ValueError, match="unknown tensors 'adapter_y.proj.weight'"):
        FuseMixAligner.load(path)


def test_cli_fit_fixed_y(data, tmp_path, capsys):
    Zx, Zy = data
    np.save(tmp_path / "x.npy", Zx)
    np.save(tmp_path / "y.npy", Zy)
    out = tmp_path / "model"
    argv = ["fit", "--x", str(tmp_path / "x.npy"), "--y", str(tmp_path / "y.npy")]
    assert main([*argv, "--out", str(out), "--fixed-y", "--max-epochs", "3"]) == 0
    loaded = FuseMixAligner.load(out)
    assert loaded.fixed_y and loaded.n_components_ == Zy.shape[1]
    assert (
        main(
            [*argv, "--out", str(tmp_path / "bad"), "--fixed-y", "--n-components", "4"]
        )
        == 1
    )
    assert "n_components must be 'auto' or 16" in capsys.readouterr().err


# ---------------------------------------------------------- AnchorBinding
@pytest.fixture(scope="module")
def binding(data):
    Zx, Zy = data
    params = ONE_SIDED | {"max_epochs": 20}
    image = FuseMixAligner(**params).fit(Zx[:200], Zy[:200])
    speech = FuseMixAligner(**params).fit(
        np.tanh(Zx[200:] @ np.eye(24)[:, :12]), Zy[200:]
    )
    return AnchorBinding({"image": image, "speech": speech}, anchor="text")


def test_binding_embeds_every_modality_into_the_anchor_space(data, binding):
    Zx, Zy = data
    assert binding.modalities == ["text", "image", "speech"]
    assert binding.n_components == 16
    np.testing.assert_allclose(binding.embed("text", Zy), _index(Zy), atol=1e-6)
    np.testing.assert_array_equal(
        binding.embed("image", Zx), binding["image"].transform(Zx)
    )
    speech = np.tanh(Zx @ np.eye(24)[:, :12])
    S = binding.similarity("speech", speech[:7], "image", Zx[:9])
    assert S.shape == (7, 9) and np.all(np.abs(S) <= 1 + 1e-6)
    np.testing.assert_allclose(
        S, binding.embed("speech", speech[:7]) @ binding.embed("image", Zx[:9]).T
    )


def test_binding_validates_what_it_holds(data, fitted):
    Zx, Zy = data
    two_sided = FuseMixAligner(**FAST).fit(Zx, Zy)
    with pytest.raises(ValueError, match="fitted with fixed_y=False"):
        AnchorBinding({"image": two_sided})
    other_width = FuseMixAligner(**ONE_SIDED).fit(Zx, Zy[:, :8])
    with pytest.raises(ValueError, match="width 8, the others on width 16"):
        AnchorBinding({"image": fitted, "speech": other_width})
    with pytest.raises(ValueError, match="is the anchor"):
        AnchorBinding({"text": fitted}, anchor="text")
    with pytest.raises(ValueError, match="not a valid name"):
        AnchorBinding({"../evil": fitted})
    with pytest.raises(TypeError, match="must be a FuseMixAligner"):
        AnchorBinding({"image": "model"})
    with pytest.raises(TypeError, match="non-empty dict"):
        AnchorBinding({})
    binding = AnchorBinding({"image": fitted}, anchor="text")
    with pytest.raises(KeyError, match="Unknown modality 'video'"):
        binding.embed("video", Zx)
    with pytest.raises(ValueError, match="Z has 24 features, but the anchor space"):
        binding.embed("text", Zx)


def test_binding_save_load(data, binding, tmp_path):
    Zx, Zy = data
    path = binding.save(tmp_path / "b")
    assert sorted(os.listdir(path)) == ["config.json", "image", "speech"]
    loaded = AnchorBinding.load(path)
    assert loaded.modalities == binding.modalities
    np.testing.assert_array_equal(loaded.embed("image", Zx), binding.embed("image", Zx))
    with open(path / "config.json") as f:
        config = json.load(f)
    config["modalities"] = ["image", "../../etc"]
    with open(path / "config.json", "w") as f:
        json.dump(config, f)
    with pytest.raises(ValueError, match="not a valid name"):
        AnchorBinding.load(path)
    with pytest.raises(ValueError, match="holds a saved AnchorBinding"):
        FuseMixAligner.load(path)


def test_fixed_y_joins_nothing():
    # "auto" leaves out the CCA, the anchors and the hubness correction: y's
    # own space is returned as it is, and x is embedded into it alone
    Zx, Zy = make_pairs(n=120, d_x=10, d_y=8)
    one_sided = FuseMixAligner(
        **{**FAST, "n_components": "auto"}, fixed_y=True, random_state=0
    ).fit(Zx, Zy)
    assert (one_sided.cca_weight_, one_sided.anchor_weight_) == (0, 0)
    assert one_sided.csls_neighbors_ == 0
    assert one_sided.cca_ is one_sided.anchors_ is one_sided.csls_reference_x_ is None
    assert one_sided.transform(Zx).shape == (120, 8)
    np.testing.assert_allclose(
        one_sided.transform_y(Zy), l2_normalize(Zy), rtol=1e-5, atol=1e-7
    )


@pytest.mark.parametrize(
    "param, value",
    [("cca_weight", 0.3), ("anchor_weight", 0.3), ("csls_neighbors", 10)],
)
def test_fixed_y_refuses_an_explicit_join(param, value):
    Zx, Zy = make_pairs(n=60, d_x=10, d_y=8)
    with pytest.raises(ValueError, match=f"fixed_y=True .* {param} must be"):
        FuseMixAligner(
            **{**FAST, "n_components": "auto"}, fixed_y=True, **{param: value}
        ).fit(Zx, Zy)
