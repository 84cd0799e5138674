"""FuseMix: mixup in latent space with one coefficient for both modalities."""

import numpy as np
import torch

__all__ = ["fusemix", "sample_lambdas"]


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
