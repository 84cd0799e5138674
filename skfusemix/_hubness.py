"""Hubness correction folded into unit embeddings: CSLS.

In a shared space learned from few pairs some items ("hubs") are close to
many queries and are retrieved for all of them.  CSLS (cross-domain
similarity local scaling; Conneau et al., "Word translation without
parallel data", ICLR 2018) scores a pair ``(x, y)`` by

    ``csls(x, y) = 2 cos(x, y) - r_X(y) - r_Y(x)``

where ``r_X(y)`` is the mean cosine of ``y`` to its ``k`` nearest x
embeddings of a reference set (here the training pairs) and ``r_Y(x)`` that
of ``x`` to its ``k`` nearest y embeddings: an item near everything is
penalised.  Both terms are per-row, so the score folds into the embeddings
themselves (:func:`fold_csls`), which stay unit rows and keep working with
any code that ranks by dot products or cosines.
"""

import numpy as np
import torch

#: Query rows per block product in :func:`neighbour_similarity`.
_CHUNK = 2048

#: Columns that :func:`fold_csls` adds to each embedding.
CSLS_COLUMNS = 4


def neighbour_similarity(Q, bank, k, device=None):
    """Mean of the ``k`` largest dot products of each row of ``Q`` with the
    rows of ``bank``: ``r`` of CSLS.

    Parameters
    ----------
    Q : ndarray of shape (n_samples, n_features)
        The rows to measure.
    bank : ndarray of shape (n_reference, n_features)
        The reference rows (the other modality's embeddings of the training
        pairs).
    k : int
        Neighbours averaged (at most ``n_reference``).
    device : torch.device, default=None
        Where to compute (CPU by default).

    Returns
    -------
    r : ndarray of shape (n_samples,)
        float32.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix._hubness import neighbour_similarity
    >>> bank = np.eye(3, dtype=np.float32)
    >>> neighbour_similarity(np.array([[1.0, 0.5, 0.0]]), bank, 2)
    array([0.75], dtype=float32)
    """
    device = torch.device("cpu") if device is None else device
    bank = torch.as_tensor(np.asarray(bank, dtype=np.float32), device=device)
    k = min(int(k), bank.shape[0])
    Q = np.asarray(Q, dtype=np.float32)
    r = np.empty(Q.shape[0], dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, Q.shape[0], _CHUNK):
            chunk = torch.as_tensor(Q[start : start + _CHUNK], device=device)
            top = torch.topk(chunk @ bank.T, k, dim=1).values
            r[start : start + chunk.shape[0]] = top.mean(dim=1).cpu().numpy()
    return r


def fold_csls(J, r, side):
    """Unit embeddings ``J`` of one modality and their ``r`` folded into
    unit rows whose cross-modal dot product is half the CSLS score.

    With ``x' = [J_x / sqrt(2), 1/2, -r_x / 2, sqrt(1 - r_x^2) / 2, 0]`` and
    ``y' = [J_y / sqrt(2), -r_y / 2, 1/2, 0, sqrt(1 - r_y^2) / 2]``,
    ``x' . y' = (cos(x, y) - (r_x + r_y) / 2) / 2``: CSLS up to a factor
    (which no ranking sees), and every row has norm 1 (``|r| <= 1``).
    Within one modality the dot products are those of ``J`` halved plus a
    near-constant offset.

    Parameters
    ----------
    J : ndarray of shape (n_samples, n_features)
        Unit rows of one modality.
    r : ndarray of shape (n_samples,)
        Their :func:`neighbour_similarity` to the other modality's reference
        rows (clipped to [-1, 1]).
    side : {"x", "y"}
        Which modality ``J`` is: the two get mirrored columns.

    Returns
    -------
    folded : ndarray of shape (n_samples, n_features + 4)
        float32 unit rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix._hubness import fold_csls
    >>> x = fold_csls(np.array([[1.0, 0.0]]), np.array([0.2]), "x")
    >>> y = fold_csls(np.array([[0.6, 0.8]]), np.array([0.4]), "y")
    >>> round(float((x @ y.T)[0, 0]), 6)  # (0.6 - (0.2 + 0.4) / 2) / 2
    0.15
    """
    J = np.asarray(J, dtype=np.float32)
    r = np.clip(np.asarray(r, dtype=np.float32), -1.0, 1.0)
    half = np.full_like(r, 0.5)
    pad = 0.5 * np.sqrt(1.0 - r**2)
    zero = np.zeros_like(r)
    extra = (half, -0.5 * r, pad, zero) if side == "x" else (-0.5 * r, half, zero, pad)
    return np.hstack([J / np.sqrt(np.float32(2.0)), np.stack(extra, axis=1)])
