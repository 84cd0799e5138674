"""Tests of skfusemix.encoders with tiny randomly initialised models (offline)."""

import pickle

import numpy as np
import pytest
import torch
from helpers import save_tiny_bert, save_tiny_whisper
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skfusemix.encoders import (
    AudioEncoder,
    ImageEncoder,
    TextEncoder,
    TorchEncoder,
)
from skfusemix.encoders._base import _LOADED_BY_ENCODER

WORDS = (
    "a the cat dog sat on mat red blue green runs fast slow big small house tree "
    "bird sings in morning light over river quiet town"
).split()

TEXTS = [
    "a cat",
    "the big red dog sat on the mat in the morning light",
    "tree",
    "a small bird sings over the quiet river",
    "",
    "green house",
    "the dog runs fast",
    "blue blue blue",
    "a cat",  # a duplicate
    "unknown words here",
]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), WORDS)


@pytest.fixture(scope="module")
def bert_loaded(bert_dir):
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(bert_dir), AutoTokenizer.from_pretrained(bert_dir)


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=16,
        patch_size=8,
        hidden_size=12,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=24,
    )
    processor = ViTImageProcessor(size={"height": 16, "width": 16})
    path = tmp_path_factory.mktemp("tiny-vit")
    ViTModel(config).save_pretrained(path)
    processor.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    # 1-second windows instead of 30 s keep the test fast
    return save_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"))


@pytest.fixture(scope="module")
def wav2vec2_dir(tmp_path_factory):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        vocab_size=8,
        hidden_size=12,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=24,
        conv_dim=(8, 8),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_conv_pos_embeddings=4,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True, do_normalize=True)
    path = tmp_path_factory.mktemp("tiny-wav2vec2")
    Wav2Vec2Model(config).save_pretrained(path)
    extractor.save_pretrained(path)
    return str(path)


def _images(n, size=20, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (size, size + i % 3, 3), dtype=np.uint8) for i in range(n)
    ]


def _clips(n, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal(1600 + 700 * i).astype(np.float32) * 0.1 for i in range(n)
    ]


def _count_forwards(model):
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    return calls


# --------------------------------------------------------------------- text


def test_text_shape_dtype_and_input_order(bert_dir):
    encoder = TextEncoder(bert_dir, batch_size=3)
    Z = encoder.fit_transform(TEXTS)
    assert Z.shape == (len(TEXTS), 16)
    assert Z.dtype == np.float32
    # one text at a time: no sorting, no padding; rows must match in order
    one_by_one = np.vstack([encoder.transform([t]) for t in TEXTS])
    np.testing.assert_allclose(Z, one_by_one, atol=1e-5)
    np.testing.assert_array_equal(Z[0], Z[8])  # the duplicate text
    assert not np.allclose(Z[0], Z[1])


@pytest.mark.parametrize("batch_size", [1, 2, 4, 64])
def test_text_batch_size_invariance(bert_dir, batch_size):
    Z = TextEncoder(bert_dir, batch_size=batch_size).transform(TEXTS)
    Z_ref = TextEncoder(bert_dir, batch_size=5).transform(TEXTS)
    np.testing.assert_allclose(Z, Z_ref, atol=1e-5)


def test_text_poolings_match_manual_computation(bert_dir, bert_loaded):
    model, tokenizer = bert_loaded
    texts = TEXTS[:4]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    hidden = out.last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    n_tokens = batch["attention_mask"].sum(1)
    expected = {
        "mean": (hidden * mask).sum(1) / mask.sum(1),
        "cls": hidden[:, 0],
        "last": hidden[torch.arange(len(texts)), n_tokens - 1],
        "pooler": out.pooler_output,
    }
    results = {}
    for pooling, want in expected.items():
        Z = TextEncoder(bert_dir, pooling=pooling, batch_size=2).transform(texts)
        np.testing.assert_allclose(Z, want.numpy(), atol=1e-5, err_msg=pooling)
        results[pooling] = Z
    assert not np.allclose(results["mean"], results["cls"])


def test_text_normalize(bert_dir):
    Z = TextEncoder(bert_dir).transform(TEXTS)
    Zn = TextEncoder(bert_dir, normalize=True).transform(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(Zn, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        Zn, Z / np.linalg.norm(Z, axis=1, keepdims=True), atol=1e-6
    )


def test_text_max_length_truncates(bert_dir):
    long_text = " ".join(["cat"] * 40)
    short = TextEncoder(bert_dir, max_length=5).transform([long_text, "cat cat cat"])
    # [CLS] cat cat cat [SEP]: both texts are the same 5 tokens once truncated
    np.testing.assert_allclose(short[0], short[1], atol=1e-6)
    # default: the tokenizer's model_max_length (32), no error on long text
    assert TextEncoder(bert_dir).transform([long_text]).shape == (1, 16)


def test_text_loaded_model_and_tokenizer(bert_dir, bert_loaded):
    model, tokenizer = bert_loaded
    Z_dir = TextEncoder(bert_dir).transform(TEXTS)
    Z_obj = TextEncoder(model, tokenizer=tokenizer).transform(TEXTS)
    np.testing.assert_allclose(Z_dir, Z_obj, atol=1e-6)
    # the tokenizer is found from the model's name_or_path when not given
    Z_auto = TextEncoder(model).transform(TEXTS)
    np.testing.assert_allclose(Z_dir, Z_auto, atol=1e-6)


def test_text_accepts_array_series_and_column(bert_dir):
    encoder = TextEncoder(bert_dir)
    Z = encoder.transform(TEXTS)
    np.testing.assert_allclose(encoder.transform(np.array(TEXTS)), Z, atol=1e-6)
    np.testing.assert_allclose(
        encoder.transform(np.array(TEXTS, dtype=object)[:, None]), Z, atol=1e-6
    )
    np.testing.assert_allclose(encoder.transform(tuple(TEXTS)), Z, atol=1e-6)


@pytest.mark.parametrize(
    "bad, error, match",
    [
        ("a single string", TypeError, "single string"),
        ([], ValueError, "empty"),
        (["ok", 3], TypeError, "item 1 is a int"),
        (["ok", None], TypeError, "item 1 is a NoneType"),
        (42, TypeError, "list of strings"),
        (np.array([["a", "b"], ["c", "d"]]), ValueError, "shape"),
    ],
)
def test_text_bad_inputs(bert_dir, bad, error, match):
    with pytest.raises(error, match=match):
        TextEncoder(bert_dir).transform(bad)
    with pytest.raises(error, match=match):
        TextEncoder(bert_dir).fit(bad)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"pooling": "max"}, "pooling"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"max_length": 0}, "max_length"),
        ({"precision": "int8"}, "precision"),
        ({"precision": "bf16", "device": "cpu"}, "only used on CUDA"),
        ({"device": "tpu9"}, "Unknown device"),
    ],
)
def test_bad_params_raise_value_error(bert_dir, params, match):
    encoder = TextEncoder(bert_dir, **params)
    with pytest.raises(ValueError, match=match):
        encoder.transform(["a cat"])


def test_bad_model_types(bert_dir):
    with pytest.raises(TypeError, match="normalize"):
        TextEncoder(bert_dir, normalize="yes").transform(["cat"])
    with pytest.raises(TypeError, match="model must be"):
        TextEncoder(model=3.5).transform(["cat"])


def test_input_not_modified(bert_dir, vit_dir, wav2vec2_dir):
    texts = list(TEXTS)
    TextEncoder(bert_dir).transform(texts)
    assert texts == TEXTS
    images = _images(3)
    copies = [im.copy() for im in images]
    ImageEncoder(vit_dir).transform(images)
    for a, b in zip(images, copies):
        np.testing.assert_array_equal(a, b)
    clips = [c.astype(np.float64) for c in _clips(2)]
    copies = [c.copy() for c in clips]
    AudioEncoder(wav2vec2_dir).transform(clips)
    for a, b in zip(clips, copies):
        np.testing.assert_array_equal(a, b)


def test_missing_local_directory_gives_clear_error(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(OSError, match="does not exist") as info:
        TextEncoder(missing).transform(["a cat"])
    assert missing in str(info.value)


def test_missing_hub_model_gives_clear_error(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    name = "skfusemix-tests/no-such-model"
    with pytest.raises(OSError) as info:
        TextEncoder(name).transform(["a cat"])
    message = str(info.value)
    assert name in message
    assert "local directory" in message and "HF_HOME" in message
    # no chained Hugging Face traceback
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_init_stores_params_only_and_loads_lazily(tmp_path):
    # a missing model is no error until the model is needed
    encoder = TextEncoder(str(tmp_path / "absent"), pooling="cls", batch_size=7)
    assert encoder.get_params()["pooling"] == "cls"
    assert encoder.__dict__ == encoder.get_params()
    assert encoder not in _LOADED_BY_ENCODER
    assert encoder.__sklearn_tags__().requires_fit is False
    assert encoder.__sklearn_tags__().input_tags.string is True


def test_get_feature_names_out(bert_dir, vit_dir):
    names = TextEncoder(bert_dir).get_feature_names_out()
    assert list(names[:2]) == ["textencoder0", "textencoder1"] and len(names) == 16
    assert len(ImageEncoder(vit_dir).get_feature_names_out()) == 12


def test_pickle_drops_the_loaded_model(bert_dir):
    encoder = TextEncoder(bert_dir, pooling="cls")
    Z = encoder.transform(TEXTS)
    assert encoder in _LOADED_BY_ENCODER  # loaded, but not held in the estimator
    assert encoder.__dict__ == encoder.get_params()
    blob = pickle.dumps(encoder)
    assert len(blob) < 5_000  # the weights are not in the pickle
    restored = pickle.loads(blob)
    assert restored not in _LOADED_BY_ENCODER
    np.testing.assert_allclose(restored.transform(TEXTS), Z, atol=1e-6)


def test_pickle_keeps_a_model_passed_as_a_parameter(bert_loaded):
    model, tokenizer = bert_loaded
    encoder = TextEncoder(model, tokenizer=tokenizer)
    Z = encoder.transform(TEXTS[:3])
    restored = pickle.loads(pickle.dumps(encoder))
    np.testing.assert_allclose(restored.transform(TEXTS[:3]), Z, atol=1e-6)


def test_pipeline_and_clone(bert_dir, bert_loaded):
    pipe = make_pipeline(TextEncoder(bert_dir, normalize=True), StandardScaler())
    Z = pipe.fit_transform(TEXTS)
    assert Z.shape == (len(TEXTS), 16)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-5)
    cloned = clone(pipe)
    np.testing.assert_allclose(cloned.fit_transform(TEXTS), Z, atol=1e-5)
    assert list(pipe.get_feature_names_out()[:1]) == ["textencoder0"]
    # a loaded model is shared by clones, not deep-copied
    model, tokenizer = bert_loaded
    encoder = TextEncoder(model, tokenizer=tokenizer, pooling="cls")
    twin = clone(encoder)
    assert twin.model is model and twin.tokenizer is tokenizer
    assert twin.get_params()["pooling"] == "cls"
    twin.set_params(pooling="mean")
    assert encoder.pooling == "cls"


def test_set_params_model_reloads(bert_dir, vit_dir, tmp_path):
    other = save_tiny_bert(tmp_path / "other-bert", WORDS, width=8, layers=1, seed=1)
    encoder = TextEncoder(bert_dir)
    assert encoder.transform(["a cat"]).shape == (1, 16)
    encoder.set_params(model=other)
    assert encoder.transform(["a cat"]).shape == (1, 8)


# -------------------------------------------------------------------- cache


def test_cache_second_call_does_not_run_the_model(bert_loaded, tmp_path):
    model, tokenizer = bert_loaded
    calls = _count_forwards(model)
    encoder = TextEncoder(
        model, tokenizer=tokenizer, batch_size=4, memory=str(tmp_path)
    )
    Z = encoder.transform(TEXTS)
    n_first = len(calls)
    assert n_first == 3  # 9 distinct texts, batches of 4
    # same inputs, a clone (as GridSearchCV does), a subset in another order
    np.testing.assert_array_equal(clone(encoder).transform(TEXTS), Z)
    np.testing.assert_array_equal(encoder.transform(TEXTS[5:1:-1]), Z[5:1:-1])
    assert len(calls) == n_first
    # a new text runs the model once, on that text only
    Z_new = encoder.transform([*TEXTS[:3], "red bird"])
    assert len(calls) == n_first + 1
    np.testing.assert_array_equal(Z_new[:3], Z[:3])
    uncached = TextEncoder(model, tokenizer=tokenizer).transform(["red bird"])
    np.testing.assert_allclose(Z_new[3], uncached[0], atol=1e-6)


def test_cache_key_depends_on_params_and_weights(bert_dir, bert_loaded, tmp_path):
    from joblib import Memory

    memory = Memory(str(tmp_path), verbose=0)
    model, tokenizer = bert_loaded
    calls = _count_forwards(model)
    TextEncoder(model, tokenizer=tokenizer, memory=memory).transform(TEXTS[:2])
    TextEncoder(model, tokenizer=tokenizer, memory=memory, pooling="cls").transform(
        TEXTS[:2]
    )
    assert len(calls) == 2  # another pooling is another cache entry
    # batch_size, verbose and device do not change the latents: cache hit
    TextEncoder(
        model, tokenizer=tokenizer, memory=memory, batch_size=1, verbose=1
    ).transform(TEXTS[:2])
    assert len(calls) == 2
    # changing a weight in place changes the model's identity
    with torch.no_grad():
        model.pooler.dense.bias.add_(1.0)
    try:
        TextEncoder(model, tokenizer=tokenizer, memory=memory).transform(TEXTS[:2])
        assert len(calls) == 3
    finally:
        with torch.no_grad():
            model.pooler.dense.bias.sub_(1.0)


def test_cache_with_directory_model_and_joblib_memory(bert_dir, tmp_path):
    from joblib import Memory

    encoder = TextEncoder(bert_dir, memory=Memory(str(tmp_path), verbose=0))
    Z = encoder.transform(TEXTS)
    calls = _count_forwards(encoder._get_loaded().model)
    np.testing.assert_array_equal(encoder.transform(TEXTS[::-1]), Z[::-1])
    assert calls == []
    # memory=None (the default) and Memory(None) cache nothing
    assert TextEncoder(bert_dir, memory=Memory(None)).transform(TEXTS).shape == Z.shape


def test_cache_memory_must_be_valid(bert_dir):
    with pytest.raises(ValueError, match="memory"):
        TextEncoder(bert_dir, memory=3).transform(["cat"])


def test_verbose_progress_bar(bert_dir, capsys):
    TextEncoder(bert_dir, verbose=0).transform(TEXTS)
    assert capsys.readouterr().err == ""
    TextEncoder(bert_dir, verbose=1, batch_size=2).transform(TEXTS)
    assert "TextEncoder" in capsys.readouterr().err


# -------------------------------------------------------------------- image


def test_image_encoder_shapes_poolings_and_formats(vit_dir):
    from PIL import Image

    images = _images(5)
    encoder = ImageEncoder(vit_dir, batch_size=2)
    Z = encoder.fit_transform(images)
    assert Z.shape == (5, 12) and Z.dtype == np.float32
    one_by_one = np.vstack([encoder.transform([im]) for im in images])
    np.testing.assert_allclose(Z, one_by_one, atol=1e-5)
    # PIL images, grey and RGBA arrays are accepted
    pil = [Image.fromarray(im) for im in images]
    np.testing.assert_allclose(encoder.transform(pil), Z, atol=1e-5)
    grey = images[0][:, :, 0]
    Z_grey = encoder.transform(
        [grey, grey[:, :, None], np.repeat(grey[:, :, None], 3, 2)]
    )
    np.testing.assert_allclose(Z_grey[0], Z_grey[2], atol=1e-6)
    np.testing.assert_allclose(Z_grey[1], Z_grey[2], atol=1e-6)
    rgba = np.concatenate([images[0], np.full((20, 20, 1), 255, np.uint8)], axis=2)
    np.testing.assert_allclose(encoder.transform([rgba])[0], Z[0], atol=1e-5)
    # a 4-D array is a batch of images
    batch = np.stack([images[0], images[3]])
    np.testing.assert_allclose(encoder.transform(batch), Z[[0, 3]], atol=1e-5)
    for pooling in ("mean", "pooler"):
        Zp = ImageEncoder(vit_dir, pooling=pooling).transform(images)
        assert Zp.shape == (5, 12) and not np.allclose(Zp, Z)
    Zn = ImageEncoder(vit_dir, normalize=True).transform(images)
    np.testing.assert_allclose(np.linalg.norm(Zn, axis=1), 1, atol=1e-6)


@pytest.mark.parametrize(
    "bad, error, match",
    [
        ([np.zeros((8, 8, 5), np.uint8)], ValueError, "shape"),
        ([np.zeros((4, 8, 8, 3), np.uint8)], ValueError, "shape"),
        ([np.zeros(8, np.uint8)], ValueError, "shape"),
        (np.zeros((8, 8), np.uint8), ValueError, "shape"),
        ([], ValueError, "empty"),
        (["no-such-cat.png"], FileNotFoundError, "no such file"),
        ([3], TypeError, "PIL image"),
        ([np.full((8, 8, 3), np.nan)], ValueError, "NaN"),
    ],
)
def test_image_bad_inputs(vit_dir, bad, error, match):
    with pytest.raises(error, match=match):
        ImageEncoder(vit_dir).transform(bad)


def test_image_file_paths_are_opened(vit_dir, tmp_path):
    from PIL import Image

    images = _images(3)
    paths = []
    for i, im in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(im).save(paths[-1])
    encoder = ImageEncoder(vit_dir)
    np.testing.assert_allclose(
        encoder.transform([str(p) for p in paths]), encoder.transform(images), atol=1e-6
    )
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read"):
        encoder.transform([paths[0], tmp_path / "bad.png"])


def test_image_pooling_options(vit_dir):
    with pytest.raises(ValueError, match="pooling"):
        ImageEncoder(vit_dir, pooling="last").transform(_images(1))


# -------------------------------------------------------------------- audio


def test_whisper_mean_respects_true_length(whisper_dir):
    clips = _clips(4)
    encoder = AudioEncoder(whisper_dir, batch_size=3)
    Z = encoder.fit_transform(clips)
    assert Z.shape == (4, 12) and Z.dtype == np.float32
    one_by_one = np.vstack([encoder.transform([c]) for c in clips])
    np.testing.assert_allclose(Z, one_by_one, atol=1e-5)
    # manual: mean of the encoder states of the clip's own frames only
    from transformers import WhisperFeatureExtractor, WhisperModel

    model = WhisperModel.from_pretrained(whisper_dir).get_encoder().eval()
    fe = WhisperFeatureExtractor.from_pretrained(whisper_dir)
    feats = fe(clips[0], sampling_rate=16000, return_tensors="pt", padding="max_length")
    with torch.no_grad():
        hidden = model(feats["input_features"]).last_hidden_state[0]
    n_frames = len(clips[0]) // fe.hop_length  # frames of the clip itself
    n_states = (n_frames - 1) // 2 + 1
    np.testing.assert_allclose(Z[0], hidden[:n_states].mean(0).numpy(), atol=1e-5)
    assert not np.allclose(Z[0], hidden.mean(0).numpy(), atol=1e-4)


def test_wav2vec2_length_sorted_batches_and_true_length(wav2vec2_dir):
    clips = _clips(5)
    encoder = AudioEncoder(wav2vec2_dir, batch_size=2)
    Z = encoder.transform(clips)
    assert Z.shape == (5, 12)
    one_by_one = np.vstack([encoder.transform([c]) for c in clips])
    np.testing.assert_allclose(Z, one_by_one, atol=1e-4)
    # a 2-D array of equal-length clips
    same = np.stack([c[:1600] for c in clips])
    np.testing.assert_allclose(
        encoder.transform(same), encoder.transform(list(same)), atol=1e-6
    )
    for pooling in ("cls", "last"):
        assert AudioEncoder(wav2vec2_dir, pooling=pooling).transform(clips).shape == (
            5,
            12,
        )


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.zeros(100, np.float32), ValueError, "single 1-D"),
        ([np.zeros((2, 100), np.float32)], ValueError, "1-D"),
        ([np.zeros(0, np.float32)], ValueError, "empty"),
        ([np.array([0.0, np.nan] * 500)], ValueError, "NaN"),
        ([], ValueError, "empty"),
        (["clip.wav"], TypeError, "1-D array"),
    ],
)
def test_audio_bad_inputs(wav2vec2_dir, bad, error, match):
    with pytest.raises(error, match=match):
        AudioEncoder(wav2vec2_dir).transform(bad)


def test_audio_sampling_rate_mismatch(wav2vec2_dir):
    with pytest.raises(ValueError, match="resample"):
        AudioEncoder(wav2vec2_dir, sampling_rate=8000).transform(_clips(1))


# -------------------------------------------------------------------- torch


class _SpatialNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3)

    def forward(self, x):
        return torch.relu(self.conv(x))

    def features_seq(self, x):
        return self.forward(x).flatten(2).transpose(1, 2)  # (n, h*w, 6)


def _to_chw(image):
    return np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0


def _make_net():
    torch.manual_seed(0)
    return _SpatialNet()


def test_torch_encoder_pooling_methods_and_factory():
    images = [im[:, :20] for im in _images(6)]
    net = _make_net()
    encoder = TorchEncoder(net, preprocess=_to_chw, batch_size=4)
    Z = encoder.fit_transform(images)
    assert Z.shape == (6, 6) and encoder.n_features_out_ == 6
    x = torch.stack([torch.from_numpy(_to_chw(im)) for im in images])
    with torch.no_grad():
        expected = net(x).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(Z, expected, atol=1e-6)
    Zc = TorchEncoder(net, preprocess=_to_chw, channels_last=True).transform(images)
    np.testing.assert_allclose(Zc, Z, atol=1e-5)
    Zs = TorchEncoder(net, preprocess=_to_chw, method="features_seq").transform(images)
    np.testing.assert_allclose(Zs, Z, atol=1e-6)  # mean over positions either way
    Zl = TorchEncoder(
        net, preprocess=_to_chw, method="features_seq", pooling="last"
    ).transform(images)
    np.testing.assert_allclose(
        Zl, net(x).flatten(2)[:, :, -1].detach().numpy(), atol=1e-6
    )
    lazy = TorchEncoder(_make_net, preprocess=_to_chw)
    np.testing.assert_allclose(lazy.transform(images), Z, atol=1e-6)
    blob = pickle.dumps(lazy)
    assert b"_SpatialNet" not in blob  # the module the factory built is not pickled
    restored = pickle.loads(blob)
    assert restored not in _LOADED_BY_ENCODER
    np.testing.assert_allclose(restored.transform(images), Z, atol=1e-6)
    names = encoder.get_feature_names_out()
    assert list(names) == [f"torchencoder{i}" for i in range(6)]


def test_torch_encoder_errors():
    images = _images(2)
    with pytest.raises(ValueError, match="needs module"):
        TorchEncoder().transform(images)
    with pytest.raises(ValueError, match="different shapes"):
        TorchEncoder(_make_net(), preprocess=_to_chw).transform(images)
    with pytest.raises(ValueError, match="no method"):
        TorchEncoder(_make_net(), preprocess=_to_chw, method="nope").transform(images)
    with pytest.raises(ValueError, match="feature map"):
        TorchEncoder(_make_net(), preprocess=_to_chw, pooling="cls").transform(
            [images[0]]
        )
    with pytest.raises(ValueError, match="empty"):
        TorchEncoder(_make_net()).transform([])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="fit"):
        TorchEncoder(_make_net()).get_feature_names_out()


def test_torch_encoder_cache_uses_weights_and_preprocess(tmp_path):
    images = [im[:, :20] for im in _images(4)]
    net = _make_net()
    calls = _count_forwards(net)
    encoder = TorchEncoder(net, preprocess=_to_chw, memory=str(tmp_path))
    Z = encoder.transform(images)
    assert len(calls) == 1
    np.testing.assert_array_equal(encoder.transform(images[::-1]), Z[::-1])
    assert len(calls) == 1

    def _scaled(image):
        return _to_chw(image) * 2

    TorchEncoder(net, preprocess=_scaled, memory=str(tmp_path)).transform(images)
    assert len(calls) == 2


def test_hub_id_loads_offline_from_the_hub_cache(bert_dir, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub.constants

    from skfusemix.encoders._loading import model_fingerprint

    repo = tmp_path / "models--skfusemix-tests--tiny-bert"
    commits = ["0123456789abcdef0123456789abcdef01234567", "f" * 40]
    for commit in commits:
        shutil.copytree(bert_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commits[0])
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    name = "skfusemix-tests/tiny-bert"
    Z = TextEncoder(name).transform(TEXTS)
    np.testing.assert_allclose(Z, TextEncoder(bert_dir).transform(TEXTS), atol=1e-6)
    # the cache key of a hub model is its id and the commit of its snapshot
    assert model_fingerprint(name, None) == f"hub:{name}@{commits[0]}"
    (repo / "refs" / "main").write_text(commits[1])
    assert model_fingerprint(name, None) == f"hub:{name}@{commits[1]}"
    assert model_fingerprint(name, commits[0]) == f"hub:{name}@{commits[0]}"


def test_grid_search_encodes_each_text_once(bert_loaded, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    model, tokenizer = bert_loaded
    encoded = []
    model.register_forward_hook(
        lambda m, args, kwargs, out: encoded.append(len(out[0])), with_kwargs=True
    )
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(1, 9))) for _ in range(40)]
    y = np.arange(40) % 2
    pipe = make_pipeline(
        TextEncoder(model, tokenizer=tokenizer, memory=str(tmp_path)),
        LogisticRegression(),
    )
    search = GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0, 10.0]}, cv=3)
    search.fit(texts, y)
    assert sum(encoded) == len(set(texts))  # 9 fits and 9 scorings, one encoding
    search.predict(texts[:5])
    assert sum(encoded) == len(set(texts))


def test_cache_survives_deleted_and_corrupt_shards(bert_loaded, tmp_path):
    import shutil

    model, tokenizer = bert_loaded
    encoded = []
    model.register_forward_hook(
        lambda m, args, kwargs, out: encoded.append(len(out[0])), with_kwargs=True
    )
    encoder = TextEncoder(model, tokenizer=tokenizer, memory=str(tmp_path / "c"))
    Z = encoder.transform(TEXTS[:4])
    shutil.rmtree(tmp_path / "c")  # the cache is cleared between two calls
    np.testing.assert_allclose(encoder.transform(TEXTS[:4]), Z, atol=1e-6)
    assert sum(encoded) == 8
    (key_dir,) = (tmp_path / "c" / "skfusemix_encoders").iterdir()
    for keys in key_dir.glob("*.keys.npy"):
        keys.write_bytes(b"garbage")
    np.testing.assert_allclose(clone(encoder).transform(TEXTS[:4]), Z, atol=1e-6)
    assert sum(encoded) == 12  # unreadable shards are misses, not errors


def test_device_resolution(bert_dir):
    from skfusemix._data import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(TypeError, match="device must be"):
        resolve_device(3)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            TextEncoder(bert_dir, device="cuda").transform(["a cat"])
    Z = TextEncoder(bert_dir, device=torch.device("cpu")).transform(["a cat"])
    np.testing.assert_allclose(
        Z, TextEncoder(bert_dir, device="cpu").transform(["a cat"])
    )
