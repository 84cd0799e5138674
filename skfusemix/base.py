"""What every aligner shares: the two-modality transform API and its score."""

from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin

from .metrics import _mean_r1, paired_report

__all__ = ["AlignerMixin"]


class AlignerMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """Mixin for estimators that map two paired modalities into one space.

    An aligner is fitted with ``fit(X, y)`` where ``X`` holds modality x and
    ``y`` the paired modality (row ``i`` of one pairs with row ``i`` of the
    other).  It embeds x with ``transform`` and y with ``transform_y``; both
    return L2-normalised rows of width ``n_components``.  This mixin provides
    :meth:`score` (mean recall@1 of both retrieval directions) so that
    :class:`~sklearn.model_selection.GridSearchCV` can compare any aligners,
    and the scikit-learn tags that say ``y`` is a required 2-D target.

    Subclasses set ``_n_features_out`` (the shared-space width) when fitted.

    Examples
    --------
    A minimal aligner that keeps the first two features of each modality:

    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator
    >>> from skfusemix.base import AlignerMixin
    >>> class FirstTwo(AlignerMixin, BaseEstimator):
    ...     def fit(self, X, y):
    ...         self._n_features_out = 2
    ...         return self
    ...     def transform(self, X):
    ...         S = np.asarray(X)[:, :2]
    ...         return S / np.linalg.norm(S, axis=1, keepdims=True)
    ...     transform_y = transform
    >>> Z = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, 5.0]])
    >>> FirstTwo().fit(Z, Z).score(Z, Z)
    1.0
    """

    def score(self, X, y):
        """Mean of recall@1 x->y and recall@1 y->x on the pairs ``(X, y)``.

        Identical rows of ``X`` (the same image once per caption) count as one
        item, and a query is a hit when any correct partner is ranked first,
        as in :func:`skfusemix.metrics.retrieval_report`.  When no row of
        ``X`` repeats but rows of ``y`` do (one sentence, several
        recordings), identical rows of ``y`` are the items instead.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Modality x.
        y : array-like of shape (n_samples, n_features_y)
            The paired modality y.

        Returns
        -------
        score : float
            ``(x2y_R@1 + y2x_R@1) / 2``, in [0, 1]; higher is better.
        """
        report = paired_report(self.transform(X), self.transform_y(y), X, y, (1,))
        return _mean_r1(report)

    def save(self, path):
        """Save the fitted aligner without pickle: a directory with
        ``model.safetensors`` (the fitted arrays) and ``config.json`` (the
        class, parameters, sizes and a checksum of the arrays).

        Reload it with :meth:`load` of the same class, or open any saved
        aligner with ``skfusemix evaluate``.  Implemented for
        :class:`~skfusemix.CCAAligner`, :class:`~skfusemix.ProcrustesAligner`
        and :class:`~skfusemix.ASIFAligner`;
        :meth:`skfusemix.FuseMixAligner.save` writes the same layout.

        Parameters
        ----------
        path : str or path-like
            Directory to write (created when missing; both files are replaced
            atomically).

        Returns
        -------
        path : str or path-like
            The directory written.

        Examples
        --------
        >>> import tempfile
        >>> from skfusemix import CCAAligner
        >>> from skfusemix.datasets import make_paired_latents
        >>> Zx, Zy = make_paired_latents(n_samples=200, random_state=0)
        >>> cca = CCAAligner(n_components=4).fit(Zx, Zy)
        >>> path = cca.save(tempfile.mkdtemp() + "/cca")
        >>> loaded = CCAAligner.load(path)
        >>> bool((loaded.transform(Zx) == cca.transform(Zx)).all())
        True
        """
        from sklearn.utils.validation import check_is_fitted

        from ._persistence import save_baseline

        check_is_fitted(self)
        return save_baseline(self, path)

    @classmethod
    def load(cls, path):
        """Load an aligner written by :meth:`save`.

        Only JSON and safetensors are read (never pickle), and strictly:
        another class's folder, missing, extra or reshaped arrays, a
        checksum that does not match, or an unknown format version raise a
        ValueError and nothing is loaded.

        Parameters
        ----------
        path : str or path-like
            Directory written by :meth:`save`.

        Returns
        -------
        aligner : estimator
            A fitted aligner of this class.

        Examples
        --------
        >>> import tempfile
        >>> from skfusemix import ProcrustesAligner
        >>> from skfusemix.datasets import make_paired_latents
        >>> Zx, Zy = make_paired_latents(n_samples=200, random_state=0)
        >>> path = ProcrustesAligner().fit(Zx, Zy).save(tempfile.mkdtemp() + "/p")
        >>> ProcrustesAligner.load(path).n_features_in_ == Zx.shape[1]
        True
        """
        from ._persistence import load_baseline

        return load_baseline(cls, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags
