"""FuseMix: mixup in latent space with one coefficient for both modalities."""

import numpy as np
import torch

__all__ = ["fusemix", "positive_mask", "sample_lambdas"]


def sample_lambdas(alpha, n_steps, random_state):
    """Draw the mixing coefficients of a whole fit at once.

    Parameters
    ----------
    alpha : float
        ``lam ~ Beta(alpha, alpha)``; ``alpha=0`` turns mixing off (all ones).
    n_steps : int
        Number of optimiser steps (one coefficient each).
    random_state : numpy.random.RandomState
        Source of randomness.

    Returns
    -------
    lambdas : ndarray of shape (n_steps,), float32

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.engine.mixing import sample_lambdas
    >>> sample_lambdas(0.0, 3, np.random.RandomState(0))
    array([1., 1., 1.], dtype=float32)
    """
    if alpha == 0:
        return np.ones(n_steps, dtype=np.float32)
    return random_state.beta(alpha, alpha, size=n_steps).astype(np.float32)


def fusemix(zx, zy, lam):
    """Mix the two halves of a batch of pairs with ONE shared coefficient.

    ``zx`` and ``zy`` hold ``2B`` paired rows; halves A (first ``B`` rows) and
    B (last ``B`` rows) are mixed as ``lam * A + (1 - lam) * B`` in both
    modalities with the same ``lam``, so each mixed x row is still the
    positive partner of the mixed y row with the same index.

    Parameters
    ----------
    zx : torch.Tensor of shape (2B, d_x)
    zy : torch.Tensor of shape (2B, d_y)
    lam : float or 0-d torch.Tensor
        The shared coefficient in [0, 1].

    Returns
    -------
    mx : torch.Tensor of shape (B, d_x)
    my : torch.Tensor of shape (B, d_y)

    Examples
    --------
    >>> import torch
    >>> from skfusemix.engine.mixing import fusemix
    >>> mx, my = fusemix(torch.tensor([[0.0], [4.0]]), torch.tensor([[1.0], [3.0]]), 0.25)
    >>> mx.tolist(), my.tolist()
    ([[3.0]], [[2.5]])
    """
    half = zx.shape[0] // 2
    if zy.shape[0] != zx.shape[0] or 2 * half != zx.shape[0]:
        raise ValueError(
            f"fusemix needs 2B paired rows in both modalities, got {zx.shape[0]} and {zy.shape[0]}."
        )
    mx = torch.lerp(zx[half:], zx[:half], lam)
    my = torch.lerp(zy[half:], zy[:half], lam)
    return mx, my


def positive_mask(g, mixing=False, *, diagonal_as_none=True):
    """The positive pairs of a batch, from the item code of each row.

    Without mixing, rows ``i`` and ``j`` of the batch are positives when
    they share an item: ``g[i] == g[j]``.  With FuseMix the ``2B`` codes
    are those of the unmixed rows, halves A (first ``B``) and B (last
    ``B``), and mixed row ``i`` is ``lam * A_i + (1 - lam) * B_i`` in both
    modalities: mixed rows ``i`` and ``j`` are positives when they were
    mixed from the same two items in the same roles, ``gA_i == gA_j`` and
    ``gB_i == gB_j``.  The swapped case (``gA_i == gB_j`` and
    ``gB_i == gA_j``) is not counted: it mixes the same two items with
    weights ``lam`` and ``1 - lam`` exchanged, the same mixture only when
    ``lam = 0.5`` (an event of probability zero), and otherwise a point
    elsewhere on the segment between them, so a negative.

    Parameters
    ----------
    g : torch.Tensor of shape (n,), int64
        Item code of each gathered row (``n = 2B`` with mixing).
    mixing : bool, default=False
        The rows are mixed by :func:`fusemix` after gathering.
    diagonal_as_none : bool, default=True
        Return None when the only positives are the diagonal (every item of
        the batch is distinct), so the loss takes its plain path.  This
        costs one host sync; ``False`` always returns the mask and never
        syncs.

    Returns
    -------
    positives : torch.Tensor of shape (B, B), bool, or None
        ``positives[i, j]``: x row ``i`` and y row ``j`` of the (mixed)
        batch are a positive pair; the diagonal is always True.

    Examples
    --------
    >>> import torch
    >>> from skfusemix.engine.mixing import positive_mask
    >>> positive_mask(torch.tensor([7, 7, 3])).int().tolist()
    [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    >>> print(positive_mask(torch.tensor([7, 8, 3])))
    None

    Mixed from halves ``[7, 7]`` and ``[3, 4]``: mixtures 7/3 and 7/4 differ.

    >>> print(positive_mask(torch.tensor([7, 7, 3, 4]), mixing=True))
    None
    >>> positive_mask(torch.tensor([7, 7, 3, 3]), mixing=True).int().tolist()
    [[1, 1], [1, 1]]
    """
    if g.ndim != 1:
        raise ValueError(f"g must hold one code per row, got shape {tuple(g.shape)}.")
    if mixing:
        half = g.shape[0] // 2
        if 2 * half != g.shape[0]:
            raise ValueError(f"Mixing needs 2B rows' codes, got {g.shape[0]}.")
        ga, gb = g[:half], g[half:]
        mask = (ga[:, None] == ga[None, :]) & (gb[:, None] == gb[None, :])
    else:
        mask = g[:, None] == g[None, :]
    if diagonal_as_none and int(mask.sum()) == mask.shape[0]:
        return None
    return mask
