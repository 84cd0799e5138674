"""From raw inputs to aligned embeddings: encoders around FuseMixAligner."""

import numpy as np
import pytest
import test_encoders
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline

from skfusemix import FuseMixAligner
from skfusemix.encoders import TextEncoder

WORDS = test_encoders.WORDS
bert_dir = test_encoders.bert_dir  # the shared tiny-BERT fixture


def _raw_pairs(n_items=30, n_captions=2, seed=0):
    """x: numeric 'images' determined by a random word pair; y: captions that
    name those words (several captions per item, shuffled word order)."""
    rng = np.random.RandomState(seed)
    words = [w for w in WORDS if w.isalpha()][:12]
    table = rng.normal(size=(len(words), 8))
    X, y, groups = [], [], []
    for item in range(n_items):
        a, b = rng.choice(len(words), size=2, replace=False)
        for c in range(n_captions):
            X.append(table[a] + table[b])
            y.append(
                f"{words[a]} {words[b]}" if c % 2 == 0 else f"{words[b]} {words[a]}"
            )
            groups.append(item)
    return np.array(X, dtype=np.float32), y, np.array(groups)


FAST = dict(
    n_components=8, n_layers=1, expansion=2, dropout=0.0, batch_size=16, max_epochs=5
)


def test_y_transformer_encodes_raw_y_in_fit_transform_y_and_score(bert_dir, tmp_path):
    X, captions, _ = _raw_pairs()
    encoder = TextEncoder(bert_dir, memory=str(tmp_path))
    aligner = FuseMixAligner(**FAST, y_transformer=encoder, random_state=0).fit(
        X, captions
    )
    assert aligner.y_transformer_ is not encoder and aligner.n_features_y_in_ == 16
    Sy = aligner.transform_y(captions)
    assert Sy.shape == (60, 8 + 8 + 60 + 4)  # adapters, CCA, 60 anchors, CSLS
    np.testing.assert_allclose(np.linalg.norm(Sy, axis=1), 1, rtol=1e-5)
    latents = encoder.fit(captions).transform(captions)
    plain = FuseMixAligner(**FAST, random_state=0).fit(X, latents)
    np.testing.assert_allclose(plain.transform_y(latents), Sy, rtol=1e-5, atol=1e-6)
    assert 0 <= aligner.score(X, captions) <= 1


def test_raw_to_raw_pipeline_and_grid_search_encode_each_input_once(
    bert_dir, tmp_path, monkeypatch
):
    import skfusemix.encoders._base as base

    encoded = []
    original = base.BaseEncoder._encode_uncached

    def counting(self, items, device):
        encoded.extend(items)
        return original(self, items, device)

    monkeypatch.setattr(base.BaseEncoder, "_encode_uncached", counting)
    X, captions, groups = _raw_pairs()
    encoder = TextEncoder(bert_dir, memory=str(tmp_path / "cache"))
    pipe = make_pipeline(
        "passthrough", FuseMixAligner(**FAST, y_transformer=encoder, random_state=0)
    )
    search = GridSearchCV(
        pipe, {"fusemixaligner__alpha": [0.0, 1.0]}, cv=GroupKFold(n_splits=2)
    ).fit(X, captions, groups=groups)
    assert 0 <= search.best_score_ <= 1
    assert search.best_estimator_.transform(X).shape == (60, 8 + 8 + 60 + 4)
    # 4 fits, 4 test scores and the refit: each distinct caption encoded once
    assert sorted(encoded) == sorted(set(captions))


def test_y_transformer_must_transform():
    X = np.random.RandomState(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match="'y_transformer' parameter"):
        FuseMixAligner(**FAST, y_transformer=object()).fit(X, X)
