"""Zero-shot classification through an aligned space.

Once two modalities share a space, the paired modality can *name* classes: embed
one description of each class with ``transform_y`` (e.g. the text "food &
drink" through the text encoder) and give each x row (an image) the class
whose embedding is nearest.  No labelled x row is needed.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["zero_shot_classify", "zero_shot_scores"]


def zero_shot_scores(aligner, X, class_y):
    """Cosine similarity of each row of ``X`` to each class description.

    Parameters
    ----------
    aligner : fitted aligner
        Any skfusemix aligner (:class:`~skfusemix.FuseMixAligner` or a
        baseline), or any fitted object with ``transform`` and ``transform_y``
        returning L2-normalised rows.
    X : array-like of shape (n_samples, n_features)
        Modality x to classify (e.g. image latents).
    class_y : array-like of shape (n_classes, n_features_y)
        One description of each class in modality y (e.g. text latents of the
        class names), or raw inputs when the aligner has a ``y_transformer``.

    Returns
    -------
    scores : ndarray of shape (n_samples, n_classes)
        Cosine similarities in [-1, 1]; larger means closer.

    Examples
    --------
    >>> from skfusemix import CCAAligner
    >>> from skfusemix.datasets import make_paired_latents
    >>> from skfusemix.zero_shot import zero_shot_scores
    >>> Zx, Zy = make_paired_latents(200, 16, 12, random_state=0)
    >>> cca = CCAAligner(n_components=4).fit(Zx, Zy)
    >>> zero_shot_scores(cca, Zx[:5], Zy[:3]).shape
    (5, 3)
    """
    if not (hasattr(aligner, "transform") and hasattr(aligner, "transform_y")):
        raise TypeError(
            "aligner must have transform and transform_y (a skfusemix aligner), "
            f"got {type(aligner).__name__}."
        )
    if hasattr(aligner, "fit"):
        check_is_fitted(aligner)
    if len(class_y) < 1:
        raise ValueError("class_y must describe at least one class, got 0 rows.")
    Sx = np.asarray(aligner.transform(X), dtype=np.float64)
    Sc = np.asarray(aligner.transform_y(class_y), dtype=np.float64)
    return Sx @ Sc.T


def zero_shot_classify(aligner, X, class_y, *, classes=None):
    """Classify rows of ``X`` by their nearest class description.

    Parameters
    ----------
    aligner : fitted aligner
        See :func:`zero_shot_scores`.
    X : array-like of shape (n_samples, n_features)
        Modality x to classify (e.g. image latents).
    class_y : array-like of shape (n_classes, n_features_y)
        One description of each class in modality y (e.g. text latents of the
        class names).
    classes : array-like of shape (n_classes,), default=None
        Label of each class description.  By default the class index.

    Returns
    -------
    y_pred : ndarray of shape (n_samples,)
        The label of the nearest class description of each row.

    See Also
    --------
    zero_shot_scores : The similarities behind the prediction.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix import CCAAligner
    >>> from skfusemix.datasets import make_paired_latents
    >>> from skfusemix.zero_shot import zero_shot_classify
    >>> Zx, Zy = make_paired_latents(200, 16, 12, random_state=0)
    >>> cca = CCAAligner(n_components=4).fit(Zx, Zy)
    >>> zero_shot_classify(cca, Zx[:3], Zy[:3], classes=["a", "b", "c"])
    array(['a', 'b', 'c'], dtype='<U1')
    """
    if classes is not None:
        classes = np.asarray(classes)
        if classes.ndim != 1 or len(classes) != len(class_y):
            raise ValueError(
                f"classes must be 1-D with one label per row of class_y "
                f"({len(class_y)}), got shape {classes.shape}."
            )
    best = zero_shot_scores(aligner, X, class_y).argmax(axis=1)
    return best if classes is None else classes[best]
