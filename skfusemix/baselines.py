"""Classical, training-free aligners with the same API as FuseMixAligner.

They are the bar a learned aligner must clear: each fits in closed form (an
eigendecomposition, an SVD, or no fitting at all) and exposes
``fit(X, y)`` / ``transform(X)`` / ``transform_y(y)`` / ``score(X, y)``, so
they drop into the same pipelines, grid searches and retrieval reports as
:class:`skfusemix.FuseMixAligner`.

* :class:`CCAAligner` -- regularised canonical correlation analysis.
* :class:`CSAAligner` -- canonical similarity analysis: CCA scored by a
  correlation-weighted cosine (Li et al., ICLR 2025).
* :class:`ProcrustesAligner` -- PCA of each modality and an orthogonal
  Procrustes rotation of one onto the other.
* :class:`ASIFAligner` -- relative representations against a set of anchor
  pairs (Norelli et al., NeurIPS 2023).
"""

from numbers import Integral, Real

import numpy as np
from scipy import linalg, sparse
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import assert_all_finite, check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.extmath import svd_flip
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._data import l2_normalize
from .base import AlignerMixin

__all__ = ["ASIFAligner", "CCAAligner", "CSAAligner", "ProcrustesAligner"]


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def _validate_pair(estimator, X, y):
    """Validate paired training data: 2-D finite ``X`` and ``y``, same rows."""
    X, y = validate_data(
        estimator,
        X,
        y,
        multi_output=True,
        y_numeric=True,
        dtype=[np.float64, np.float32],
        ensure_min_samples=2,
    )
    if sparse.issparse(y):
        raise TypeError(f"{type(estimator).__name__} does not accept a sparse y.")
    # validate_data checks an object-dtype y for NaN only, before y_numeric
    # casts it to float: infinities would slip through.
    assert_all_finite(y, input_name="y")
    if y.ndim == 1:  # one feature, as in FuseMixAligner and sklearn.cross_decomposition
        y = y.reshape(-1, 1)
    estimator.n_features_y_in_ = y.shape[1]
    return X.astype(np.float64, copy=False), y.astype(np.float64, copy=False)


def _validate_y(estimator, y):
    """Validate modality y at transform time against the fitted width."""
    check_is_fitted(estimator)
    y = check_array(y, dtype=[np.float64, np.float32], input_name="y", ensure_2d=False)
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    elif y.ndim != 2:
        raise ValueError(
            f"y must be 2-D (n_samples, n_features_y), got shape {y.shape}."
        )
    if y.shape[1] != estimator.n_features_y_in_:
        raise ValueError(
            f"y has {y.shape[1]} features, but {type(estimator).__name__} is "
            f"expecting {estimator.n_features_y_in_} features as input for y."
        )
    return y.astype(np.float64, copy=False)


def _validate_X(estimator, X):
    check_is_fitted(estimator)
    X = validate_data(estimator, X, reset=False, dtype=[np.float64, np.float32])
    return X.astype(np.float64, copy=False)


def _standardize_params(Z, scale):
    """Column means and (optionally) standard deviations of ``Z``."""
    mean = Z.mean(axis=0)
    if not scale:
        return mean, np.ones(Z.shape[1])
    std = Z.std(axis=0, ddof=1) if Z.shape[0] > 1 else np.ones(Z.shape[1])
    std[~(std > np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0))] = 1.0
    return mean, std


def _inv_sqrt(C, reg):
    """``(C + reg * mean(diag(C)) * I) ** -1/2`` of a PSD matrix via eigh."""
    d = C.shape[0]
    ridge = reg * max(np.trace(C) / d, np.finfo(np.float64).tiny)
    evals, evecs = linalg.eigh(C + ridge * np.eye(d))
    # Without a ridge, directions of (numerically) zero variance are dropped
    # instead of being blown up to infinity.
    floor = max(evals.max(), 0.0) * d * np.finfo(np.float64).eps
    keep = evals > floor
    inv = np.zeros_like(evals)
    inv[keep] = 1.0 / np.sqrt(evals[keep])
    return (evecs * inv) @ evecs.T


def _check_n_components(n_components, X, y):
    """``n_components``, defaulting to and capped at ``min(d_x, d_y)``."""
    max_components = min(X.shape[1], y.shape[1])
    n_components = max_components if n_components is None else n_components
    if n_components > max_components:
        raise ValueError(
            f"n_components={n_components} must be <= min(n_features_x, "
            f"n_features_y) = {max_components}."
        )
    return n_components


class _CanonicalMixin:
    """Regularised CCA in closed form, shared by CCAAligner and CSAAligner."""

    def _set_canonical(self, X, y, n_components, reg, scale):
        """Set the standardisation, the canonical weights and correlations."""
        self.x_mean_, self.x_std_ = _standardize_params(X, scale)
        self.y_mean_, self.y_std_ = _standardize_params(y, scale)
        Xs = (X - self.x_mean_) / self.x_std_
        ys = (y - self.y_mean_) / self.y_std_
        n = X.shape[0]
        Cxx = Xs.T @ Xs / (n - 1)
        Cyy = ys.T @ ys / (n - 1)
        Cxy = Xs.T @ ys / (n - 1)
        Wx = _inv_sqrt(Cxx, reg)
        Wy = _inv_sqrt(Cyy, reg)
        U, rho, Vt = linalg.svd(Wx @ Cxy @ Wy, full_matrices=False)
        # Deterministic signs: the largest x loading of each component > 0.
        U, Vt = svd_flip(U[:, :n_components], Vt[:n_components])
        self.x_weights_ = Wx @ U
        self.y_weights_ = Wy @ Vt.T
        self.canonical_correlations_ = np.clip(rho[:n_components], 0.0, 1.0)
        self._n_features_out = n_components

    def _canonical_x(self, X):
        return ((X - self.x_mean_) / self.x_std_) @ self.x_weights_

    def _canonical_y(self, y):
        return ((y - self.y_mean_) / self.y_std_) @ self.y_weights_


class _TwoSidedMixin:
    """``transform``/``transform_y`` through the per-modality ``_embed``."""

    def transform(self, X):
        """Embed modality x into the shared space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Latents of modality x.

        Returns
        -------
        Sx : ndarray of shape (n_samples, n_components)
            L2-normalised embeddings.
        """
        return self._embed_x(_validate_X(self, X))

    def transform_y(self, y):
        """Embed modality y into the shared space.

        Parameters
        ----------
        y : array-like of shape (n_samples, n_features_y_in_)
            Latents of modality y.

        Returns
        -------
        Sy : ndarray of shape (n_samples, n_components)
            L2-normalised embeddings, comparable with those of
            :meth:`transform` by dot product.
        """
        return self._embed_y(_validate_y(self, y))


# --------------------------------------------------------------------------
# CCA
# --------------------------------------------------------------------------


class CCAAligner(_CanonicalMixin, _TwoSidedMixin, AlignerMixin, BaseEstimator):
    """Regularised canonical correlation analysis as a cross-modal aligner.

    Finds projections ``Ax`` and ``Ay`` that maximise the correlation between
    ``X @ Ax`` and ``y @ Ay``, component by component, and embeds each
    modality by its projection, L2-normalised.  Unlike
    :class:`sklearn.cross_decomposition.CCA` (NIPALS, one component at a
    time) it is solved in closed form: each covariance is whitened with a
    ridge, then one SVD of the whitened cross-covariance gives all
    components at once::

        Wx = (Cxx + reg * mean(diag(Cxx)) * I) ** -1/2      (likewise Wy)
        U, rho, Vt = svd(Wx @ Cxy @ Wy)
        Ax = Wx @ U[:, :k],   Ay = Wy @ Vt.T[:, :k]

    The ridge keeps the problem well posed when a modality has more
    features than samples and, like a shrinkage estimator, usually improves
    held-out retrieval.  Scaling component ``j`` by ``rho_j ** corr_power``
    before normalising (``corr_power > 0``) lets well-correlated directions
    dominate the cosine similarity, a known trick for retrieval with CCA
    embeddings (Gong et al., IJCV 2014).

    Parameters
    ----------
    n_components : int, default=None
        Dimension of the shared space.  ``None`` uses
        ``min(n_features_x, n_features_y)``; it cannot exceed that.
    reg : float, default=0.1
        Ridge added to each covariance, relative to its mean variance (so it
        does not depend on the scale of the data).  ``0`` is plain CCA.  The
        default, with ``corr_power=2``, gave the best held-out retrieval of
        a small grid on UCI Multiple Features and on synthetic latents;
        tune both for your data.
    scale : bool, default=True
        Whether to divide each feature by its standard deviation before the
        covariances are computed (features are always centred).
    corr_power : float, default=2.0
        Exponent of the canonical correlations that weight the components of
        both embeddings.  ``0`` weights all components equally.

    Attributes
    ----------
    x_weights_ : ndarray of shape (n_features_in_, n_components)
        Projection of the standardised modality x.
    y_weights_ : ndarray of shape (n_features_y_in_, n_components)
        Projection of the standardised modality y.
    canonical_correlations_ : ndarray of shape (n_components,)
        The (regularised) canonical correlations, in decreasing order.  With
        ``reg=0`` they are the correlations between the projections of the
        training data.
    x_mean_, x_std_ : ndarray of shape (n_features_in_,)
        Centring and scaling of modality x.
    y_mean_, y_std_ : ndarray of shape (n_features_y_in_,)
        Centring and scaling of modality y.
    n_features_in_ : int
        Number of features of modality x seen during :meth:`fit`.
    n_features_y_in_ : int
        Number of features of modality y seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features of ``X`` seen during :meth:`fit`, when they
        are all strings.

    See Also
    --------
    sklearn.cross_decomposition.CCA : Iterative CCA with the same components
        when ``reg=0``.
    ProcrustesAligner : A rotation between the principal subspaces.
    ASIFAligner : Relative representations, no fitting at all.

    References
    ----------
    H. Hotelling, "Relations between two sets of variates", Biometrika, 1936.

    Y. Gong, Q. Ke, M. Isard and S. Lazebnik, "A multi-view embedding space
    for modeling internet images, tags, and their semantics", IJCV, 2014.

    Examples
    --------
    >>> from skfusemix.baselines import CCAAligner
    >>> from skfusemix.datasets import make_paired_latents
    >>> Zx, Zy = make_paired_latents(n_samples=500, random_state=0)
    >>> cca = CCAAligner(n_components=8).fit(Zx[:400], Zy[:400])
    >>> cca.transform(Zx[400:]).shape
    (100, 8)
    >>> cca.score(Zx[400:], Zy[400:]) > 0.5
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "reg": [Interval(Real, 0, None, closed="left")],
        "scale": ["boolean"],
        "corr_power": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, n_components=None, *, reg=0.1, scale=True, corr_power=2.0):
        self.n_components = n_components
        self.reg = reg
        self.scale = scale
        self.corr_power = corr_power

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the canonical projections on the pairs ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latents of modality x.
        y : array-like of shape (n_samples, n_features_y)
            The paired latents of modality y; row ``i`` pairs with row ``i``
            of ``X``.

        Returns
        -------
        self : object
            The fitted aligner.
        """
        X, y = _validate_pair(self, X, y)
        n_components = _check_n_components(self.n_components, X, y)
        self._set_canonical(X, y, n_components, self.reg, self.scale)
        self._n_features_out = n_components
        return self

    def _weights(self):
        return self.canonical_correlations_**self.corr_power

    def _embed_x(self, X):
        return l2_normalize(self._canonical_x(X) * self._weights())

    def _embed_y(self, y):
        return l2_normalize(self._canonical_y(y) * self._weights())


# --------------------------------------------------------------------------
# CSA
# --------------------------------------------------------------------------


class CSAAligner(_CanonicalMixin, _TwoSidedMixin, AlignerMixin, BaseEstimator):
    """Canonical similarity analysis (CSA): CCA with a correlation-weighted cosine.

    CSA (Li, Chinchali and Topcu, ICLR 2025) maps two unimodal latents into
    one space without training: the canonical projections of regularised
    CCA (as in :class:`CCAAligner`) give ``u = Ax.T x`` and ``v = Ay.T y``,
    only the first ``s`` canonical dimensions are kept, and a pair is
    scored by the paper's weighted cosine similarity::

        sim(x, y) = sum_i w_i * u_i * v_i / (||u|| * ||v||),   w_i = rho_i ** corr_power

    where ``rho_i`` is the ``i``-th canonical correlation and the norms are
    those of the unweighted, truncated projections.  Well-correlated
    directions count more, and the dimensions beyond ``s`` (mostly noise on
    few pairs) not at all.

    :meth:`transform` and :meth:`transform_y` return unit rows whose dot
    product across modalities IS this similarity: each side is
    ``sqrt(w) * u / ||u||`` (of norm at most 1, since ``w_i <= 1``),
    completed to a unit vector by one extra coordinate, the last but one for
    x and the last for y.  Those two coordinates never meet in an x-y dot
    product, so the shared space has ``n_canonical_ + 2`` dimensions and
    cross-modal retrieval ranks exactly by ``sim``.  (Within one modality
    the completions do meet: the dot product of two x embeddings adds the
    product of their completions to the weighted similarity.)

    Unlike :class:`CCAAligner` with ``corr_power``, which L2-normalises the
    *weighted* projections (a cosine in the metric ``w``), CSA normalises
    the unweighted ones, so a row whose energy sits in weakly correlated
    directions gets a smaller similarity to everything.

    Parameters
    ----------
    n_components : int, default=None
        The number ``s`` of canonical dimensions that enter the similarity
        (the paper's main hyper-parameter).  ``None`` uses ``min(n_features_x,
        n_features_y)``; it cannot exceed that.
    reg : float, default=0.1
        Ridge added to each covariance, relative to its mean variance, as in
        :class:`CCAAligner`.  ``0`` is the paper's plain CCA, which overfits
        when a modality has nearly as many features as there are pairs.
    scale : bool, default=True
        Whether to divide each feature by its standard deviation before the
        covariances are computed (features are always centred).
    corr_power : float, default=1.0
        Exponent of the canonical correlations in the weights ``w``; ``1``
        is the paper's similarity, ``0`` a plain cosine of the truncated
        canonical projections.
    min_corr : float, default=0.0
        Canonical dimensions whose (regularised) correlation is below this
        threshold are dropped, on top of the ``n_components`` cap; the first
        one is always kept.

    Attributes
    ----------
    x_weights_ : ndarray of shape (n_features_in_, n_canonical_)
        Canonical projection of the standardised modality x.
    y_weights_ : ndarray of shape (n_features_y_in_, n_canonical_)
        Canonical projection of the standardised modality y.
    canonical_correlations_ : ndarray of shape (n_canonical_,)
        The (regularised) canonical correlations kept, in decreasing order.
    similarity_weights_ : ndarray of shape (n_canonical_,)
        ``canonical_correlations_ ** corr_power``, the weights ``w``.
    n_canonical_ : int
        Number of canonical dimensions in the similarity, ``s``.
    x_mean_, x_std_ : ndarray of shape (n_features_in_,)
        Centring and scaling of modality x.
    y_mean_, y_std_ : ndarray of shape (n_features_y_in_,)
        Centring and scaling of modality y.
    n_features_in_ : int
        Number of features of modality x seen during :meth:`fit`.
    n_features_y_in_ : int
        Number of features of modality y seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features of ``X`` seen during :meth:`fit`, when they
        are all strings.

    See Also
    --------
    CCAAligner : The same projections, cosine of the weighted projections.
    ASIFAligner : Relative representations, no fitting at all.

    References
    ----------
    P. Li, S. P. Chinchali and U. Topcu, "CSA: Data-efficient mapping of
    unimodal features to multimodal features", ICLR 2025.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.baselines import CSAAligner
    >>> from skfusemix.datasets import make_paired_latents
    >>> Zx, Zy = make_paired_latents(n_samples=500, random_state=0)
    >>> csa = CSAAligner(n_components=8).fit(Zx[:400], Zy[:400])
    >>> Sx, Sy = csa.transform(Zx[400:]), csa.transform_y(Zy[400:])
    >>> Sx.shape, bool(np.allclose(np.linalg.norm(Sx, axis=1), 1.0))
    ((100, 10), True)
    >>> csa.score(Zx[400:], Zy[400:]) > 0.5
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "reg": [Interval(Real, 0, None, closed="left")],
        "scale": ["boolean"],
        "corr_power": [Interval(Real, 0, None, closed="left")],
        "min_corr": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(
        self, n_components=None, *, reg=0.1, scale=True, corr_power=1.0, min_corr=0.0
    ):
        self.n_components = n_components
        self.reg = reg
        self.scale = scale
        self.corr_power = corr_power
        self.min_corr = min_corr

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the canonical projections and the similarity weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latents of modality x.
        y : array-like of shape (n_samples, n_features_y)
            The paired latents of modality y; row ``i`` pairs with row ``i``
            of ``X``.

        Returns
        -------
        self : object
            The fitted aligner.
        """
        X, y = _validate_pair(self, X, y)
        n_components = _check_n_components(self.n_components, X, y)
        self._set_canonical(X, y, n_components, self.reg, self.scale)
        # Correlations are sorted in decreasing order: the threshold truncates.
        s = max(1, int(np.sum(self.canonical_correlations_ >= self.min_corr)))
        self.x_weights_ = self.x_weights_[:, :s]
        self.y_weights_ = self.y_weights_[:, :s]
        self.canonical_correlations_ = self.canonical_correlations_[:s]
        self.similarity_weights_ = self.canonical_correlations_**self.corr_power
        self.n_canonical_ = s
        self._n_features_out = s + 2
        return self

    def _embed(self, U, side):
        """``sqrt(w) * U / ||U||`` completed to unit rows by coordinate ``side``."""
        E = l2_normalize(U) * np.sqrt(self.similarity_weights_)
        out = np.zeros((E.shape[0], E.shape[1] + 2))
        out[:, :-2] = E
        out[:, side] = np.sqrt(np.clip(1.0 - np.sum(E**2, axis=1), 0.0, None))
        return out

    def _embed_x(self, X):
        return self._embed(self._canonical_x(X), -2)

    def _embed_y(self, y):
        return self._embed(self._canonical_y(y), -1)


# --------------------------------------------------------------------------
# Procrustes
# --------------------------------------------------------------------------


def _pca_basis(Zc, n_components):
    """Top principal axes (columns) of centred ``Zc`` and their singular values.

    Through the eigendecomposition of the smaller Gram matrix, which is much
    faster than an SVD of ``Zc`` when ``n_samples >> n_features``.
    """
    n, d = Zc.shape
    if n >= d:
        evals, evecs = linalg.eigh(Zc.T @ Zc)
        order = np.argsort(evals)[::-1][:n_components]
        V, s = evecs[:, order], np.sqrt(np.maximum(evals[order], 0.0))
    else:
        _, s, Vt = linalg.svd(Zc, full_matrices=False)
        V, s = Vt[:n_components].T, s[:n_components]
    # Deterministic signs: the largest loading of each axis is positive.
    V, _ = svd_flip(np.array(V), None)
    return V, s


class ProcrustesAligner(_TwoSidedMixin, AlignerMixin, BaseEstimator):
    """PCA of each modality, then an orthogonal rotation of x onto y.

    Each modality is centred and divided by its root-mean-square row norm
    (one number per modality, so the geometry inside a modality is kept),
    then projected on its own top ``n_components`` principal axes.  Both now
    live in ``R^n_components``, whatever ``n_features_x`` and
    ``n_features_y`` were; the two PCA bases are unrelated, and the
    orthogonal matrix ``R`` minimising ``||Px @ R - Py||_F`` (orthogonal
    Procrustes, :func:`scipy.linalg.orthogonal_procrustes`) rotates x's
    coordinates onto y's.  Embeddings are ``Px @ R`` and ``Py``,
    L2-normalised.

    A rotation keeps distances, so this aligner cannot reweight directions
    the way CCA does; it fits well when the two modalities have similar
    geometry (e.g. two encoders of the same input, or embeddings related by
    an unknown rotation), and needs few pairs to do so.

    Parameters
    ----------
    n_components : int, default=None
        Dimension of the shared space, the number of principal axes kept in
        each modality.  ``None`` uses ``min(n_features_x, n_features_y,
        n_samples)``; it cannot exceed that.
    scale : bool, default=True
        Whether to divide each modality by its root-mean-square row norm
        after centring, so that neither dominates the rotation fit.
    whiten : bool, default=False
        Whether to divide each principal coordinate by its standard
        deviation before the rotation.  Whitening both sides turns the
        problem into one close to CCA.

    Attributes
    ----------
    x_components_ : ndarray of shape (n_features_in_, n_components)
        Principal axes of modality x (columns).
    y_components_ : ndarray of shape (n_features_y_in_, n_components)
        Principal axes of modality y.
    rotation_ : ndarray of shape (n_components, n_components)
        Orthogonal matrix mapping x's principal coordinates onto y's.
    x_mean_ : ndarray of shape (n_features_in_,)
        Mean of modality x.
    y_mean_ : ndarray of shape (n_features_y_in_,)
        Mean of modality y.
    x_scale_, y_scale_ : ndarray of shape (n_components,)
        Divisors of the principal coordinates of each modality: the RMS row
        norm (``scale=True``), or each coordinate's standard deviation
        (``whiten=True``), or ones.
    n_features_in_ : int
        Number of features of modality x seen during :meth:`fit`.
    n_features_y_in_ : int
        Number of features of modality y seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features of ``X`` seen during :meth:`fit`, when they
        are all strings.

    See Also
    --------
    CCAAligner : Maximises correlation instead of fitting a rotation.
    scipy.linalg.orthogonal_procrustes : The rotation fit.

    References
    ----------
    P. H. Schoenemann, "A generalized solution of the orthogonal Procrustes
    problem", Psychometrika, 1966.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> from skfusemix.baselines import ProcrustesAligner
    >>> rng = np.random.default_rng(0)
    >>> Zx = rng.standard_normal((200, 16))
    >>> Zy = Zx @ ortho_group.rvs(16, random_state=0)  # a hidden rotation
    >>> ProcrustesAligner().fit(Zx, Zy).score(Zx, Zy)
    1.0
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "scale": ["boolean"],
        "whiten": ["boolean"],
    }

    def __init__(self, n_components=None, *, scale=True, whiten=False):
        self.n_components = n_components
        self.scale = scale
        self.whiten = whiten

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit both principal subspaces and the rotation between them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latents of modality x.
        y : array-like of shape (n_samples, n_features_y)
            The paired latents of modality y; row ``i`` pairs with row ``i``
            of ``X``.

        Returns
        -------
        self : object
            The fitted aligner.
        """
        X, y = _validate_pair(self, X, y)
        n = X.shape[0]
        max_components = min(X.shape[1], y.shape[1], n)
        n_components = (
            max_components if self.n_components is None else self.n_components
        )
        if n_components > max_components:
            raise ValueError(
                f"n_components={n_components} must be <= min(n_features_x, "
                f"n_features_y, n_samples) = {max_components}."
            )
        self.x_mean_ = X.mean(axis=0)
        self.y_mean_ = y.mean(axis=0)
        Xc = X - self.x_mean_
        yc = y - self.y_mean_
        self.x_components_, sx = _pca_basis(Xc, n_components)
        self.y_components_, sy = _pca_basis(yc, n_components)
        self.x_scale_ = self._coordinate_scale(Xc, sx, n)
        self.y_scale_ = self._coordinate_scale(yc, sy, n)
        Px = Xc @ self.x_components_ / self.x_scale_
        Py = yc @ self.y_components_ / self.y_scale_
        self.rotation_, _ = linalg.orthogonal_procrustes(Px, Py)
        self._n_features_out = n_components
        return self

    def _coordinate_scale(self, Zc, singular_values, n):
        tiny = np.finfo(np.float64).tiny
        scale = np.ones_like(singular_values)
        if self.scale:
            scale *= max(np.sqrt((Zc**2).sum() / n), tiny)
        if self.whiten:
            std = singular_values / np.sqrt(max(n - 1, 1))
            scale = np.maximum(std, std.max(initial=0.0) * 1e-12 + tiny)
        return scale

    def _embed_x(self, X):
        Px = (X - self.x_mean_) @ self.x_components_ / self.x_scale_
        return l2_normalize(Px @ self.rotation_)

    def _embed_y(self, y):
        return l2_normalize((y - self.y_mean_) @ self.y_components_ / self.y_scale_)


# --------------------------------------------------------------------------
# ASIF
# --------------------------------------------------------------------------


def _relative(Z, anchors, k, p):
    """Sparse relative representation of unit rows ``Z`` against unit anchors.

    Cosine similarities to every anchor, only the ``k`` largest kept per row
    (negative ones clipped to zero), raised to the power ``p`` and
    L2-normalised.  Fully vectorised; memory is ``n * n_anchors`` floats.
    """
    sims = Z @ anchors.T
    n_anchors = anchors.shape[0]
    if k < n_anchors:
        # Zero everything below each row's k-th largest similarity; ties at
        # the threshold are broken by argpartition's order, so exactly k stay.
        drop = np.argpartition(sims, n_anchors - k - 1, axis=1)[:, : n_anchors - k]
        np.put_along_axis(sims, drop, 0.0, axis=1)
    np.maximum(sims, 0.0, out=sims)
    if p != 1:
        np.power(sims, p, out=sims)
    return l2_normalize(sims)


class ASIFAligner(_TwoSidedMixin, AlignerMixin, BaseEstimator):
    """Relative representations against anchor pairs: ASIF, with no training.

    ASIF (Norelli et al., 2023) turns two unimodal encoders into a multimodal
    model with no learning at all.  A set of ``n_anchors`` training pairs
    ``(ax_i, ay_i)`` is kept.  An x embedding is described by its cosine
    similarities to the x anchors, a y embedding by its similarities to the
    y anchors; since anchor ``i`` of x is paired with anchor ``i`` of y, the
    two descriptions live in the same ``n_anchors``-dimensional space.  Each
    description is made sparse (its ``k`` largest similarities are kept,
    negative ones clipped to zero), sharpened (raised to the power ``p``)
    and L2-normalised.

    Latents are centred on the anchors' mean (``center=True``) and
    L2-normalised before the similarities are computed: the latents of many
    encoders share a large common offset that would otherwise make every
    cosine similarity close to 1.

    Parameters
    ----------
    n_anchors : int, default=None
        Number of training pairs kept as anchors, drawn at random without
        replacement.  ``None`` keeps them all.  The shared space has
        ``n_anchors`` dimensions and transforms cost ``O(n * n_anchors *
        n_features)``.
    k : int, default=64
        Number of non-zero similarities kept per row; capped at the number
        of anchors.
    p : float, default=4.0
        Exponent applied to the kept similarities; larger values trust the
        nearest anchors more.
    center : bool, default=True
        Whether to subtract the anchors' mean from each modality before
        L2-normalising.
    random_state : int, RandomState instance or None, default=None
        Draws the anchors when ``n_anchors`` is smaller than the number of
        pairs.

    Attributes
    ----------
    anchors_x_ : ndarray of shape (n_anchors_, n_features_in_)
        The centred, L2-normalised x anchors.
    anchors_y_ : ndarray of shape (n_anchors_, n_features_y_in_)
        The centred, L2-normalised y anchors, row ``i`` paired with row ``i``
        of ``anchors_x_``.
    anchor_indices_ : ndarray of shape (n_anchors_,)
        Rows of the training data used as anchors.
    n_anchors_ : int
        Number of anchors, the width of the shared space.
    x_mean_ : ndarray of shape (n_features_in_,)
        Mean of the x anchors (zeros if ``center=False``).
    y_mean_ : ndarray of shape (n_features_y_in_,)
        Mean of the y anchors (zeros if ``center=False``).
    n_features_in_ : int
        Number of features of modality x seen during :meth:`fit`.
    n_features_y_in_ : int
        Number of features of modality y seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features of ``X`` seen during :meth:`fit`, when they
        are all strings.

    See Also
    --------
    CCAAligner : A linear map fitted on the pairs.

    References
    ----------
    A. Norelli, M. Fumero, V. Maiorca, L. Moschella, E. Rodola and
    F. Locatello, "ASIF: Coupled data turns unimodal models to multimodal
    without training", NeurIPS 2023.

    Examples
    --------
    >>> from skfusemix.baselines import ASIFAligner
    >>> from skfusemix.datasets import make_paired_latents
    >>> Zx, Zy = make_paired_latents(n_samples=600, random_state=0)
    >>> asif = ASIFAligner(k=32, p=4).fit(Zx[:500], Zy[:500])
    >>> Sx = asif.transform(Zx[500:])
    >>> Sx.shape, int((Sx[0] > 0).sum())
    ((100, 500), 32)
    >>> asif.score(Zx[500:], Zy[500:]) > 0.3
    True
    """

    _parameter_constraints: dict = {
        "n_anchors": [Interval(Integral, 1, None, closed="left"), None],
        "k": [Interval(Integral, 1, None, closed="left")],
        "p": [Interval(Real, 0, None, closed="neither")],
        "center": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, n_anchors=None, *, k=64, p=4.0, center=True, random_state=None):
        self.n_anchors = n_anchors
        self.k = k
        self.p = p
        self.center = center
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Store the (normalised) anchor pairs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latents of modality x.
        y : array-like of shape (n_samples, n_features_y)
            The paired latents of modality y; row ``i`` pairs with row ``i``
            of ``X``.

        Returns
        -------
        self : object
            The fitted aligner.
        """
        X, y = _validate_pair(self, X, y)
        n = X.shape[0]
        if self.n_anchors is None or self.n_anchors >= n:
            indices = np.arange(n)
        else:
            rng = check_random_state(self.random_state)
            indices = np.sort(rng.choice(n, size=self.n_anchors, replace=False))
        ax, ay = X[indices], y[indices]
        self.x_mean_ = ax.mean(axis=0) if self.center else np.zeros(X.shape[1])
        self.y_mean_ = ay.mean(axis=0) if self.center else np.zeros(y.shape[1])
        self.anchors_x_ = l2_normalize(ax - self.x_mean_)
        self.anchors_y_ = l2_normalize(ay - self.y_mean_)
        self.anchor_indices_ = indices
        self.n_anchors_ = indices.size
        self._n_features_out = self.n_anchors_
        return self

    def _embed_x(self, X):
        Z = l2_normalize(X - self.x_mean_)
        return _relative(Z, self.anchors_x_, min(self.k, self.n_anchors_), self.p)

    def _embed_y(self, y):
        Z = l2_normalize(y - self.y_mean_)
        return _relative(Z, self.anchors_y_, min(self.k, self.n_anchors_), self.p)
