import numpy as np
import pytest

from skfusemix import CCAAligner, FuseMixAligner
from skfusemix.datasets import make_paired_latents
from skfusemix.zero_shot import zero_shot_classify, zero_shot_scores


class _Fixed:
    """A 'fitted aligner' with known embeddings: identity maps."""

    n_features_in_ = 2

    def transform(self, X):
        X = np.asarray(X, dtype=float)
        return X / np.linalg.norm(X, axis=1, keepdims=True)

    transform_y = transform


def test_scores_are_cosines_and_argmax_picks_nearest_class():
    X = np.array([[1.0, 0.1], [0.1, 1.0], [-1.0, 0.0]])
    classes = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, -0.2]])
    scores = zero_shot_scores(_Fixed(), X, classes)
    expected = _Fixed().transform(X) @ _Fixed().transform(classes).T
    np.testing.assert_allclose(scores, expected)
    pred = zero_shot_classify(_Fixed(), X, classes, classes=["east", "north", "west"])
    assert pred.tolist() == ["east", "north", "west"]
    assert zero_shot_classify(_Fixed(), X, classes).tolist() == [0, 1, 2]


def test_classifies_held_out_rows_of_a_fitted_aligner_above_chance():
    # 4 classes: each class is a cluster of paired latents; the class
    # description is the y-latent of the cluster centre.
    rng = np.random.default_rng(0)
    Zx, Zy = make_paired_latents(800, 24, 16, n_components=4, noise=0.2, random_state=0)
    labels = rng.integers(0, 4, size=800)
    cx, cy = rng.normal(size=(4, 24)) * 3, rng.normal(size=(4, 16)) * 3
    Zx, Zy = Zx + cx[labels], Zy + cy[labels]
    model = CCAAligner(n_components=8).fit(Zx[:600], Zy[:600])
    pred = zero_shot_classify(model, Zx[600:], cy)
    assert (pred == labels[600:]).mean() > 0.9


def test_input_errors():
    with pytest.raises(TypeError, match="transform_y"):
        zero_shot_scores(object(), np.ones((2, 2)), np.ones((2, 2)))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        zero_shot_scores(FuseMixAligner(), np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="one label per row"):
        zero_shot_classify(_Fixed(), np.ones((2, 2)), np.ones((3, 2)), classes=["a"])
    with pytest.raises(ValueError, match="at least one class"):
        zero_shot_scores(_Fixed(), np.ones((2, 2)), np.ones((0, 2)))
