"""Shared test helpers (imported by the tests; fixtures live in conftest)."""

import importlib.util
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name):
    """The script ``benchmarks/{name}.py`` as a fresh module (its ``main``
    is not run)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_pairs(n=300, d_x=24, d_y=16, d_shared=6, noise=0.05, seed=0):
    """Paired latents that share low-dimensional structure through different
    nonlinear maps, so that retrieval is learnable but not trivial."""
    rng = np.random.RandomState(seed)
    shared = rng.normal(size=(n, d_shared))
    Zx = np.tanh(shared @ rng.normal(size=(d_shared, d_x))) + noise * rng.normal(
        size=(n, d_x)
    )
    Zy = np.sin(0.5 * shared @ rng.normal(size=(d_shared, d_y))) + noise * rng.normal(
        size=(n, d_y)
    )
    return Zx.astype(np.float32), Zy.astype(np.float32)


def same_weights(a, b):
    """Two fitted FuseMixAligners hold bit-identical adapters and loss."""
    import torch

    for name in ("adapter_x_", "adapter_y_", "loss_"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        if sa.keys() != sb.keys() or not all(torch.equal(sa[k], sb[k]) for k in sa):
            return False
    return True


class StepCounter:
    """Count optimiser steps through the training loop's fusemix call (with
    ``monkeypatch``); raise ``exc`` (default ``RuntimeError("killed")``) at
    step ``fail_at``."""

    def __init__(self, monkeypatch, fail_at=None, exc=None):
        import skfusemix.engine._loop as training

        self.n, self.fail_at = 0, fail_at
        self.exc = RuntimeError("killed") if exc is None else exc
        original = training.fusemix

        def counting(*args):
            self.n += 1
            if self.n == self.fail_at:
                raise self.exc
            return original(*args)

        monkeypatch.setattr(training, "fusemix", counting)


#: Small, fast settings for functional tests (the defaults are the paper's).
FAST = dict(
    n_components=16, n_layers=1, expansion=2, dropout=0.0, batch_size=64, max_epochs=5
)

#: Settings small enough for scikit-learn's estimator checks (tiny data).
CHECKS = dict(n_components=4, n_layers=1, expansion=2, batch_size=16, max_epochs=3)


def save_tiny_whisper(path, width=12, mel_bins=16):
    """Save a randomly initialised one-layer Whisper and its feature extractor
    (1-second windows: 100 mel frames, 50 encoder positions) to ``path``."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        suppress_tokens=None,
        begin_suppress_tokens=None,
        num_mel_bins=mel_bins,
        d_model=width,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=2 * width,
        decoder_ffn_dim=2 * width,
        max_source_positions=50,
        max_target_positions=16,
    )
    WhisperModel(config).save_pretrained(path)
    WhisperFeatureExtractor(feature_size=mel_bins, chunk_length=1).save_pretrained(path)
    return str(path)


_NO_FEATURE_COUNT = (
    "raw-input encoder: the inputs are items (waveforms of any length, images, "
    "paths), not vectors with a fixed number of features, so n_features_in_ is not "
    "defined and a different row width is not an error"
)


def raw_input_expected_failed_checks(estimator):
    """The scikit-learn checks a raw-input encoder fails by design."""
    return {
        "check_n_features_in": _NO_FEATURE_COUNT,
        "check_n_features_in_after_fitting": _NO_FEATURE_COUNT,
    }


def tiny_tokenizer(words):
    """A word-level BERT tokenizer over ``words`` (lower-cased, whitespace split)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=32,
    )


def save_tiny_bert(path, words, width=16, layers=2, seed=0):
    """Save a randomly initialised BERT (seeded) and a word-level tokenizer
    over ``words`` to ``path``; return the path as a str."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer(words)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * width,
        max_position_embeddings=32,
    )
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


#: Every public module: its __all__ is documented (docstrings with examples,
#: entries in docs/api.rst).
PUBLIC_MODULES = [
    "skfusemix",
    "skfusemix.base",
    "skfusemix.metrics",
    "skfusemix.baselines",
    "skfusemix.binding",
    "skfusemix.ensemble",
    "skfusemix.encoders",
    "skfusemix.datasets",
    "skfusemix.plotting",
    "skfusemix.selection",
    "skfusemix.zero_shot",
    "skfusemix.exceptions",
    "skfusemix.engine.losses",
    "skfusemix.engine.mixing",
    "skfusemix.engine.nn",
]


def edit_config(path, edit):
    """Apply ``edit(config)`` to the ``config.json`` of a saved model folder
    (what an older version wrote, or a hand-edited file)."""
    import json
    import os

    file = os.path.join(path, "config.json")
    with open(file) as f:
        config = json.load(f)
    edit(config)
    with open(file, "w") as f:
        json.dump(config, f)
