"""Choose which pairs to keep (or to caption) from a large pool, in bounded memory.

:func:`select_pairs` picks the ``n_select`` most diverse pairs of a pool of
candidate latents, greedily, without ever forming an ``N x N`` matrix: the
pool is read in row chunks (a :class:`numpy.memmap` larger than memory works)
and the state kept between picks is a few vectors of length ``N`` plus, for
the DPP, one ``d x d`` matrix.
"""

from numbers import Integral, Real

import numpy as np
import torch
from scipy import sparse
from sklearn.utils import check_random_state

from ._data import resolve_device

__all__ = ["select_pairs"]

_METHODS = ("kcenter", "dpp")


def _check_pool(Z, name):
    """A 2-D numeric array (memmaps stay memmaps: nothing is copied)."""
    if sparse.issparse(Z):
        raise TypeError(f"select_pairs does not accept a sparse {name}.")
    if not isinstance(Z, np.ndarray):
        Z = np.asarray(Z)
    if Z.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got dtype {Z.dtype}.")
    if Z.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got shape {Z.shape}."
        )
    if Z.shape[1] == 0:
        raise ValueError(f"{name} has 0 features.")
    return Z


def _check_int(value, name, low, high=None):
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}.")
    return int(value)


class _JointFeatures:
    """Row chunks of the joint features of the pool, made on the fly.

    Each modality is standardised (column means and standard deviations of
    the pool, from one streaming pass that also checks for NaN and
    infinity), its rows are L2-normalised, and the modalities are
    concatenated and divided by ``sqrt(n_modalities)``: every joint row has
    unit norm (unless a modality's row is constant) and each modality weighs
    the same whatever its width.
    """

    def __init__(self, pools, batch_size, device):
        self.pools = pools
        self.n = pools[0].shape[0]
        self.batch_size = batch_size
        self.device = device
        self.width = sum(Z.shape[1] for Z in pools)
        self.stats = [self._moments(Z, name) for Z, name in zip(pools, ("X", "y"))]
        self._cache = None
        if self.n <= batch_size:  # one chunk: build it once
            self._cache = self._chunk(0, self.n)

    def _moments(self, Z, name):
        """Column mean and 1 / std of ``Z`` (Chan et al.'s pairwise update)."""
        count, mean, m2 = 0, np.zeros(Z.shape[1]), np.zeros(Z.shape[1])
        for start in range(0, self.n, self.batch_size):
            block = np.asarray(Z[start : start + self.batch_size], dtype=np.float64)
            if not np.isfinite(block).all():
                raise ValueError(f"Input {name} contains NaN or infinity.")
            b_count, b_mean = block.shape[0], block.mean(axis=0)
            b_m2 = ((block - b_mean) ** 2).sum(axis=0)
            delta, total = b_mean - mean, count + b_count
            mean = mean + delta * (b_count / total)
            m2 = m2 + b_m2 + delta**2 * (count * b_count / total)
            count = total
        std = np.sqrt(m2 / count)
        std[~(std > np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0))] = 1.0
        return (
            torch.as_tensor(mean, dtype=torch.float32, device=self.device),
            torch.as_tensor(1.0 / std, dtype=torch.float32, device=self.device),
        )

    def _chunk(self, start, stop):
        parts = []
        for Z, (mean, scale) in zip(self.pools, self.stats):
            block = torch.from_numpy(np.array(Z[start:stop], dtype=np.float32))
            block = (block.to(self.device) - mean) * scale
            parts.append(torch.nn.functional.normalize(block, dim=1, eps=1e-30))
        return torch.cat(parts, dim=1) / np.sqrt(len(parts))

    def row(self, i):
        if self._cache is not None:
            return self._cache[i]
        return self._chunk(i, i + 1)[0]

    def chunks(self):
        """Yield ``(start, features)`` over the pool."""
        if self._cache is not None:
            yield 0, self._cache
            return
        for start in range(0, self.n, self.batch_size):
            yield start, self._chunk(start, min(start + self.batch_size, self.n))


def _pick(score, selected):
    """Append the index of the largest ``score`` (the first on ties) and mask
    it with ``-inf``, which no later update of the scores can raise."""
    index = int(torch.argmax(score))
    score[index] = -torch.inf
    selected.append(index)


def _kcenter(features, first, n_select):
    """Greedy farthest-point traversal (Gonzalez, 1985)."""
    n, dev = features.n, features.device
    min_dist = torch.full((n,), torch.inf, dtype=torch.float32, device=dev)
    min_dist[first] = -torch.inf
    selected = [first]
    while True:
        center = features.row(selected[-1])
        for start, F in features.chunks():
            dist = ((F - center) ** 2).sum(dim=1)
            chunk = min_dist[start : start + F.shape[0]]
            torch.minimum(chunk, dist, out=chunk)
        if len(selected) == n_select:
            return selected
        _pick(min_dist, selected)


def _dpp(features, first, n_select, ridge):
    """Greedy MAP of the DPP with kernel ``L = F F^T + ridge * I``.

    The gain of adding item ``i`` to the selected set ``S`` is its
    conditional variance ``L_ii - L_iS L_SS^-1 L_Si``, which the push-through
    identity turns into ``ridge * (1 + f_i^T (F_S^T F_S + ridge I)^-1 f_i)``:
    the greedy MAP of Chen, Zhang and Zhou (2018) run in feature space, with
    ``M^-1 = (F_S^T F_S + ridge I)^-1`` updated by Sherman-Morrison after each
    pick and the scores ``f_i^T M^-1 f_i`` by one pass over the pool.
    """
    n, d, dev = features.n, features.width, features.device
    M_inv = torch.eye(d, dtype=torch.float64, device=dev) / ridge
    score = torch.empty(n, dtype=torch.float64, device=dev)
    for start, F in features.chunks():
        score[start : start + F.shape[0]] = (F.double() ** 2).sum(dim=1) / ridge
    score[first] = -torch.inf
    selected = [first]
    while len(selected) < n_select:
        f = features.row(selected[-1]).double()
        g = M_inv @ f
        denom = 1.0 + f @ g
        M_inv -= torch.outer(g, g) / denom
        g32 = g.float()
        for start, F in features.chunks():
            proj = (F @ g32).double()
            score[start : start + F.shape[0]] -= proj**2 / denom
        _pick(score, selected)
    return selected


def select_pairs(
    X,
    y=None,
    *,
    n_select,
    method="kcenter",
    ridge=1.0,
    batch_size=16384,
    device="auto",
    random_state=None,
):
    """Pick the ``n_select`` most diverse pairs of a pool, in bounded memory.

    For users who must choose which of many candidate pairs to caption, label
    or keep.  Both methods work on the joint latents: each modality is
    standardised on the pool, its rows are L2-normalised, and the two are
    concatenated (divided by ``sqrt(2)``, so each modality weighs the same
    and every row has unit norm).  The first pair is drawn at random, then:

    * ``"kcenter"``: greedy k-center (farthest-point traversal), which adds
      the pair farthest from every pair chosen so far, covering the pool
      evenly, outliers included.
    * ``"dpp"``: the greedy MAP of a determinantal point process with kernel
      ``L = F F^T + ridge * I`` on the joint features ``F`` (Chen et al.,
      2018), which adds the pair that most increases ``det(L_S)``: the one
      least explained by the span of the pairs already chosen.  The
      ``ridge`` keeps selections larger than the feature width meaningful.

    No ``N x N`` matrix is formed: the pool is read in chunks of
    ``batch_size`` rows once per pick (a :class:`numpy.memmap` is read, never
    copied whole), and between picks only a few vectors of length ``N`` (and,
    for the DPP, one ``d x d`` matrix, ``d`` the joint width) are kept.  Time
    is ``O(n_select * N * d)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Latents of modality x of the candidate pairs; a memmap is fine.
    y : array-like of shape (n_samples, n_features_y), default=None
        The paired latents of modality y.  ``None`` selects on ``X`` alone.
    n_select : int
        Number of pairs to pick, between 1 and ``n_samples``.
    method : {"kcenter", "dpp"}, default="kcenter"
        The greedy criterion, see above.
    ridge : float, default=1.0
        The DPP kernel's ridge, in units of one row's squared norm (rows have
        unit norm): small values favour directions no chosen pair covers,
        large ones make the choice closer to random.  Ignored by
        ``"kcenter"``.
    batch_size : int, default=16384
        Rows per chunk.  A pool of at most ``batch_size`` rows has its joint
        features built once and kept; a larger one is rebuilt chunk by chunk
        at every pick.
    device : str or torch.device, default="auto"
        Where the distances and scores are computed (``"auto"``: CUDA when
        available).
    random_state : int, RandomState instance or None, default=None
        Draws the first pair.

    Returns
    -------
    indices : ndarray of shape (n_select,)
        Rows of the pool, in the order they were picked (a prefix is the
        selection for a smaller ``n_select``), all distinct.

    Raises
    ------
    ValueError
        For inputs that are not 2-D and numeric, contain NaN or infinity, or
        have different numbers of rows; for ``n_select`` out of range, an
        unknown ``method``, or a ridge that is not positive.

    See Also
    --------
    skfusemix.FuseMixAligner : Fit on the selected pairs.

    References
    ----------
    T. F. Gonzalez, "Clustering to minimize the maximum intercluster
    distance", Theoretical Computer Science, 1985.

    L. Chen, G. Zhang and H. Zhou, "Fast greedy MAP inference for
    determinantal point process to improve recommendation diversity",
    NeurIPS 2018.

    Examples
    --------
    Three tight clusters: the first three picks of k-center hit all three.

    >>> import numpy as np
    >>> from skfusemix.selection import select_pairs
    >>> rng = np.random.default_rng(0)
    >>> centers = np.eye(3) * 10
    >>> X = np.repeat(centers, 50, axis=0) + rng.normal(size=(150, 3))
    >>> y = X @ rng.normal(size=(3, 4))
    >>> picked = select_pairs(X, y, n_select=3, random_state=0)
    >>> sorted((picked // 50).tolist())
    [0, 1, 2]
    >>> select_pairs(X, y, n_select=5, method="dpp", random_state=0).shape
    (5,)
    """
    X = _check_pool(X, "X")
    pools = [X]
    if y is not None:
        y = _check_pool(y, "y")
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X and y have inconsistent numbers of samples: {X.shape[0]} "
                f"and {y.shape[0]}."
            )
        pools.append(y)
    n = X.shape[0]
    if n == 0:
        raise ValueError("The pool is empty (0 samples).")
    n_select = _check_int(n_select, "n_select", 1, n)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if isinstance(ridge, bool) or not isinstance(ridge, Real) or not ridge > 0:
        raise ValueError(f"ridge must be a positive number, got {ridge!r}.")
    batch_size = _check_int(batch_size, "batch_size", 1)
    device = resolve_device(device)
    first = int(check_random_state(random_state).randint(n))

    with torch.no_grad():
        features = _JointFeatures(pools, batch_size, device)
        if method == "kcenter":
            selected = _kcenter(features, first, n_select)
        else:
            selected = _dpp(features, first, n_select, float(ridge))
    return np.asarray(selected, dtype=np.intp)
