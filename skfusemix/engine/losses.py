"""Contrastive objectives.  Each loss is a module that owns its learnable
scalars (temperature, later a sigmoid bias), so swapping the objective is one
constructor call in the training loop."""

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SymmetricInfoNCE", "TEMPERATURE_BOUNDS"]

#: Range the learned temperature is clamped to after every optimiser step.
TEMPERATURE_BOUNDS = (0.001, 0.5)


class SymmetricInfoNCE(nn.Module):
    """CLIP's symmetric InfoNCE with a learnable, clamped temperature.

    For L2-normalised ``sx``, ``sy`` of shape ``(B, d)`` with row ``i`` of one
    paired with row ``i`` of the other, ``logits = sx @ sy.T / T`` and the
    loss is the mean of the cross-entropy over rows (x->y) and over columns
    (y->x), with the diagonal as targets.

    The temperature is stored as ``log T`` so that it stays positive; when
    learned, :meth:`clamp_` keeps it in ``TEMPERATURE_BOUNDS`` (call it after
    each optimiser step, as CLIP does with its logit scale).

    Parameters
    ----------
    temperature : float, default=0.07
        Initial temperature ``T``.
    learn_temperature : bool, default=True
        Learn ``T`` or keep it fixed.

    Examples
    --------
    >>> import torch
    >>> from skfusemix.engine.losses import SymmetricInfoNCE
    >>> s = torch.nn.functional.normalize(torch.eye(4), dim=1)
    >>> loss = SymmetricInfoNCE(temperature=0.1)(s, s)
    >>> round(float(loss), 4)
    0.0001
    """

    def __init__(self, temperature=0.07, learn_temperature=True):
        super().__init__()
        self.log_temperature = nn.Parameter(
            torch.tensor(math.log(temperature)), requires_grad=learn_temperature
        )

    @property
    def temperature(self):
        """The current temperature as a 0-d tensor (no host sync)."""
        return self.log_temperature.detach().exp()

    @torch.no_grad()
    def clamp_(self):
        """Clamp a learned temperature into ``TEMPERATURE_BOUNDS`` in place."""
        if self.log_temperature.requires_grad:
            lo, hi = TEMPERATURE_BOUNDS
            self.log_temperature.clamp_(math.log(lo), math.log(hi))

    def forward(self, sx, sy):
        logits = (sx @ sy.T) * torch.exp(-self.log_temperature)
        labels = torch.arange(logits.shape[0], device=logits.device)
        return 0.5 * (
            F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)
        )
