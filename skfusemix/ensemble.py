"""Several fitted aligners used as one.

An :class:`AlignerEnsemble` fits each of its aligners on the same pairs and
embeds a row as the concatenation of the members' unit embeddings, member
``i`` scaled by ``sqrt(w_i)`` (weights summing to 1).  The rows stay unit
vectors, and the cosine of an x and a y embedding is exactly the weighted
mean of the members' cosines, so the ensemble ranks by the averaged
similarity while keeping the aligners' API (``transform``, ``transform_y``,
``score``, ``save``).  Averaging the similarities of models trained from
different seeds, or of a learned and a closed-form aligner, is the classic
way to trade fit time for accuracy (Lakshminarayanan, Pritzel and Blundell,
"Simple and scalable predictive uncertainty estimation using deep
ensembles", NeurIPS 2017).
"""

import numbers
import os

import numpy as np
from sklearn.base import clone
from sklearn.utils import Bunch, check_random_state
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from ._data import join_weighted
from ._persistence import read_composite, save_composite
from .base import AlignerMixin

__all__ = ["AlignerEnsemble", "seed_ensemble"]


class AlignerEnsemble(AlignerMixin, _BaseComposition):
    """Aligners fitted on the same pairs, ranking by their weighted mean
    similarity.

    Each aligner is cloned and fitted on ``(X, y)``.  :meth:`transform` and
    :meth:`transform_y` concatenate the members' L2-normalised embeddings,
    member ``i`` scaled by ``sqrt(weights_[i])``: the result has unit rows,
    and the dot product of an x and a y embedding is
    ``sum_i weights_[i] * cos_i(x, y)``, the weighted mean of the members'
    cross-modal cosines.

    Parameters
    ----------
    estimators : list of (str, estimator) tuples
        The aligners (anything with ``fit(X, y)``, ``transform`` and
        ``transform_y`` returning unit rows, such as
        :class:`~skfusemix.FuseMixAligner` and the aligners of
        :mod:`skfusemix.baselines`), each with a unique name.  Their
        parameters can be set as ``<name>__<parameter>``, as in a
        :class:`~sklearn.pipeline.Pipeline`.
    weights : array-like of shape (n_estimators,), default=None
        Non-negative weight of each member's similarity (normalised to sum
        to 1); None weights them equally.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted clones, in the order of ``estimators``.
    named_estimators_ : :class:`~sklearn.utils.Bunch`
        The fitted clones by name.
    weights_ : ndarray of shape (n_estimators,)
        The normalised weights.
    n_features_in_ : int
        Number of features of modality x seen during :meth:`fit`.
    n_features_y_in_ : int
        Number of features of modality y seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features of ``X`` seen during :meth:`fit`, when the
        members record them.

    See Also
    --------
    seed_ensemble : The same aligner from several random seeds.

    Examples
    --------
    A learned and a closed-form aligner, averaged:

    >>> from skfusemix import CCAAligner, FuseMixAligner
    >>> from skfusemix.datasets import make_paired_latents
    >>> from skfusemix.ensemble import AlignerEnsemble
    >>> Zx, Zy = make_paired_latents(n_samples=300, random_state=0)
    >>> ensemble = AlignerEnsemble(
    ...     [("fusemix", FuseMixAligner(max_epochs=5, random_state=0)),
    ...      ("cca", CCAAligner())],
    ... ).fit(Zx[:200], Zy[:200])
    >>> Sx = ensemble.transform(Zx[200:])
    >>> Sx.shape[1] == sum(m.transform(Zx[:1]).shape[1] for m in ensemble.estimators_)
    True
    >>> 0.0 <= ensemble.score(Zx[200:], Zy[200:]) <= 1.0
    True
    """

    def __init__(self, estimators, *, weights=None):
        self.estimators = estimators
        self.weights = weights

    def get_params(self, deep=True):
        """Parameters of the ensemble and, with ``deep``, of its members as
        ``<name>__<parameter>``."""
        return self._get_params("estimators", deep=deep)

    def set_params(self, **params):
        """Set parameters of the ensemble or of its members
        (``<name>__<parameter>``, or ``<name>`` to replace a member)."""
        self._set_params("estimators", **params)
        return self

    def _check_estimators(self):
        estimators = self.estimators
        if not isinstance(estimators, list | tuple) or not estimators:
            raise ValueError(
                "estimators must be a non-empty list of (name, estimator) tuples, "
                f"got {estimators!r}."
            )
        for item in estimators:
            if not (isinstance(item, tuple | list) and len(item) == 2):
                raise ValueError(
                    f"Each item of estimators must be a (name, estimator) tuple, got "
                    f"{item!r}."
                )
        names = [name for name, _ in estimators]
        self._validate_names(names)  # unique, no '__', not a parameter name
        for name, estimator in estimators:
            missing = [
                method
                for method in ("fit", "transform", "transform_y")
                if not callable(getattr(estimator, method, None))
            ]
            if missing:
                raise TypeError(
                    f"Estimator {name!r} ({type(estimator).__name__}) is not an "
                    f"aligner: it has no {', '.join(missing)} method."
                )
        return names

    def _check_weights(self, n):
        if self.weights is None:
            return np.full(n, 1.0 / n)
        try:
            weights = np.asarray(self.weights, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"weights must be numbers, got {self.weights!r}.") from None
        if weights.shape != (n,):
            raise ValueError(
                f"weights must hold one number per estimator ({n}), got shape "
                f"{weights.shape}."
            )
        if (
            not np.all(np.isfinite(weights))
            or np.any(weights < 0)
            or weights.sum() <= 0
        ):
            raise ValueError(
                f"weights must be finite, non-negative and not all zero, got "
                f"{weights.tolist()}."
            )
        return weights / weights.sum()

    def fit(self, X, y, groups=None):
        """Fit a clone of every aligner on the pairs ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latents of modality x.
        y : array-like of shape (n_samples, n_features_y)
            The paired latents of modality y.
        groups : array-like of shape (n_samples,), default=None
            Item of each pair, passed to the members whose ``fit`` takes
            ``groups`` (:meth:`FuseMixAligner.fit`); the others fit on the
            pairs as they are.

        Returns
        -------
        self : AlignerEnsemble
            The fitted ensemble.
        """
        names = self._check_estimators()
        weights = self._check_weights(len(names))
        fitted = []
        for _, estimator in self.estimators:
            estimator = clone(estimator)
            if groups is not None and has_fit_parameter(estimator, "groups"):
                estimator.fit(X, y, groups=groups)
            else:
                estimator.fit(X, y)
            fitted.append(estimator)
        self._set_fitted(names, fitted, weights)
        return self

    def _set_fitted(self, names, fitted, weights):
        self.estimators_ = fitted
        self.named_estimators_ = Bunch(**dict(zip(names, fitted)))
        self.weights_ = weights
        first = fitted[0]
        self.n_features_in_ = first.n_features_in_
        self.n_features_y_in_ = first.n_features_y_in_
        if hasattr(first, "feature_names_in_"):
            self.feature_names_in_ = first.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    @property
    def _n_features_out(self):
        """Width of the shared space: the members' widths added up."""
        return sum(int(m._n_features_out) for m in self.estimators_)

    def _join(self, parts):
        return join_weighted(parts, self.weights_)

    def transform(self, X):
        """Embed modality x: the members' embeddings, weighted and joined.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Latents of modality x.

        Returns
        -------
        Sx : ndarray of shape (n_samples, sum of the members' widths)
            Unit rows.
        """
        check_is_fitted(self)
        return self._join([m.transform(X) for m in self.estimators_])

    def transform_y(self, y):
        """Embed modality y: the members' embeddings, weighted and joined.

        Parameters
        ----------
        y : array-like of shape (n_samples, n_features_y_in_)
            Latents of modality y.

        Returns
        -------
        Sy : ndarray of shape (n_samples, sum of the members' widths)
            Unit rows, comparable with those of :meth:`transform` by dot
            product.
        """
        check_is_fitted(self)
        return self._join([m.transform_y(y) for m in self.estimators_])

    # -------------------------------------------------------- persistence
    def save(self, path):
        """Save the fitted ensemble without pickle: ``config.json`` (member
        names and weights) and each member's own ``save`` folder under
        ``path/<name>``.

        Parameters
        ----------
        path : str or path-like
            Directory to write (created if needed).

        Returns
        -------
        path : str or path-like
            The same ``path``.

        Raises
        ------
        ValueError
            If a member's name is not usable as a folder name (1-64 letters,
            digits, ``_``, ``-`` or ``.``).
        """
        check_is_fitted(self)
        return save_composite(
            path,
            type(self).__name__,
            list(self.named_estimators_.items()),
            "members",
            "member",
            weights=self.weights_.tolist(),
        )

    @classmethod
    def load(cls, path, *, device=None):
        """Load an ensemble written by :meth:`save` (each member by
        :func:`skfusemix.load_model` rules: JSON and safetensors, no pickle).

        Parameters
        ----------
        path : str or path-like
            Directory written by :meth:`save`.
        device : str or torch.device, default=None
            Device of the members that run on torch.

        Returns
        -------
        ensemble : AlignerEnsemble
            The fitted ensemble; its ``estimators`` are the loaded members.
        """
        from ._persistence import load_model

        config, names = read_composite(cls.__name__, path, "members", "member")
        weights = config.get("weights")
        members = [
            load_model(os.path.join(path, name), device=device) for name in names
        ]
        ensemble = cls(list(zip(names, members)), weights=weights)
        ensemble._set_fitted(names, members, ensemble._check_weights(len(names)))
        return ensemble


def seed_ensemble(estimator, n_estimators=3, *, random_state=None):
    """The same aligner fitted from ``n_estimators`` random seeds, as an
    :class:`AlignerEnsemble` of equal weights.

    Parameters
    ----------
    estimator : estimator
        An aligner with a ``random_state`` parameter, such as
        :class:`~skfusemix.FuseMixAligner`.
    n_estimators : int, default=3
        Number of members.
    random_state : int, RandomState instance or None, default=None
        Draws the members' seeds; an int gives the same seeds every time.

    Returns
    -------
    ensemble : AlignerEnsemble
        Unfitted; members named ``seed0``, ``seed1``, ...

    Examples
    --------
    >>> from skfusemix import FuseMixAligner
    >>> from skfusemix.ensemble import seed_ensemble
    >>> ensemble = seed_ensemble(FuseMixAligner(), 3, random_state=0)
    >>> [name for name, _ in ensemble.estimators]
    ['seed0', 'seed1', 'seed2']
    """
    if not isinstance(n_estimators, numbers.Integral) or n_estimators < 1:
        raise ValueError(f"n_estimators must be an int >= 1, got {n_estimators!r}.")
    if "random_state" not in estimator.get_params(deep=False):
        raise ValueError(
            f"{type(estimator).__name__} has no random_state parameter: members "
            "from several seeds would all be the same."
        )
    seeds = check_random_state(random_state).randint(
        np.iinfo(np.int32).max, size=n_estimators
    )
    return AlignerEnsemble(
        [
            (f"seed{i}", clone(estimator).set_params(random_state=int(seed)))
            for i, seed in enumerate(seeds)
        ]
    )
