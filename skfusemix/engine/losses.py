"""Training objectives.  Each loss is a module that owns its learnable
scalars (temperature, the sigmoid bias), so swapping the objective is one
constructor call in the training loop.

* :class:`SymmetricInfoNCE`: CLIP's symmetric InfoNCE, with several positives
  per row when given a positives mask.
* :class:`SigmoidLoss`: SigLIP's pairwise sigmoid loss.
* :class:`StructureRegularizer`: STRUCTURE's regulariser, which keeps each
  modality's neighbourhood structure of the input latents in the aligned
  space.

The two objectives share the call ``loss(sx, sy, positives=None)`` on
L2-normalised embeddings, where ``positives[i, j]`` says that row ``i`` of
``sx`` and row ``j`` of ``sy`` belong together (``None``: the diagonal).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "SigmoidLoss",
    "StructureRegularizer",
    "SymmetricInfoNCE",
    "TEMPERATURE_BOUNDS",
]

#: Range the learned temperature is clamped to after every optimiser step.
TEMPERATURE_BOUNDS = (0.001, 0.5)


class _LearnedTemperature(nn.Module):
    """A temperature stored as ``log T`` (so it stays positive), clamped into
    ``TEMPERATURE_BOUNDS`` by :meth:`clamp_` when learned."""

    def __init__(self, temperature, learn_temperature):
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


def _check_positives(positives, n_rows, n_cols):
    if positives.dtype != torch.bool or tuple(positives.shape) != (n_rows, n_cols):
        raise ValueError(
            f"positives must be a boolean mask of shape ({n_rows}, {n_cols}), got "
            f"{positives.dtype} of shape {tuple(positives.shape)}."
        )


class SymmetricInfoNCE(_LearnedTemperature):
    """CLIP's symmetric InfoNCE with a learnable, clamped temperature, and
    several positives per row when asked.

    For L2-normalised ``sx``, ``sy`` of shape ``(B, d)``,
    ``logits = sx @ sy.T / T``.  Without ``positives`` row ``i`` of one is
    paired with row ``i`` of the other and the loss is the mean of the
    cross-entropy over rows (x->y) and over columns (y->x), with the
    diagonal as targets.

    With a boolean mask ``positives`` (``positives[i, j]``: row ``i`` of
    ``sx`` and row ``j`` of ``sy`` are a positive pair, e.g. an image and
    each of its captions), each row's loss is

    ``loss_i = -log( sum_{j in P(i)} exp(l_ij) / sum_j exp(l_ij) )``,

    the log-sum-exp over all columns minus the one over the positives, and
    the same over columns; the loss is the mean of both directions.  This is
    the form of MIL-NCE (Miech et al., CVPR 2020) and UniCL (Yang et al.,
    CVPR 2022): positives are never negatives, and the model may spread the
    probability over a row's positives any way it likes (the sum sits
    inside the log).  Averaging ``-log p_ij`` over the positives instead
    (SupCon's "outside" form) would push every positive to the same
    probability, which is wrong for captions of unequal quality.  With the
    identity as mask the loss is the plain one.  Every row and every column
    of the mask needs at least one positive (the diagonal always is one in
    the masks of :func:`skfusemix.engine.mixing.positive_mask`); a row
    without one has an infinite loss.

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
    >>> loss_fn = SymmetricInfoNCE(temperature=0.1)
    >>> round(loss_fn(s, s).item(), 4)
    0.0001

    Rows 0 and 1 of ``x`` are two captions of one item: both columns 0 and
    1 are their positives.

    >>> x = torch.nn.functional.normalize(torch.tensor([[1., 0.], [1., 0.], [0., 1.]]), dim=1)
    >>> positives = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    >>> round(loss_fn(x, x).item(), 4), round(loss_fn(x, x, positives).item(), 4)
    (0.4621, 0.0)
    """

    def __init__(self, temperature=0.07, learn_temperature=True):
        super().__init__(temperature, learn_temperature)

    def forward(self, sx, sy, positives=None):
        logits = (sx @ sy.T) * torch.exp(-self.log_temperature)
        if positives is None:
            labels = torch.arange(logits.shape[0], device=logits.device)
            return 0.5 * (
                F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)
            )
        _check_positives(positives, *logits.shape)
        positive_logits = logits.masked_fill(~positives, -math.inf)
        rows = logits.logsumexp(dim=1) - positive_logits.logsumexp(dim=1)
        cols = logits.logsumexp(dim=0) - positive_logits.logsumexp(dim=0)
        return 0.5 * (rows.mean() + cols.mean())


class SigmoidLoss(_LearnedTemperature):
    """SigLIP's pairwise sigmoid loss with a learnable temperature and bias.

    From "Sigmoid Loss for Language Image Pre-Training" (Zhai et al., ICCV
    2023).  For L2-normalised ``sx``, ``sy`` of shape ``(B, d)`` every pair
    ``(i, j)`` is its own binary classification:

    ``loss = -(1/B) sum_ij log sigmoid(z_ij * (sx_i . sy_j / T + b))``

    with ``z_ij = +1`` for positive pairs (``positives[i, j]``, or the
    diagonal when ``positives`` is None) and ``-1`` otherwise.  No softmax
    couples the rows, so small batches cost less accuracy than with
    InfoNCE.  The temperature is stored as ``log T`` like
    :class:`SymmetricInfoNCE`'s (``temperature`` and :meth:`clamp_` work
    the same); the bias ``b`` is always learned and starts negative
    because most pairs of a batch are negatives (SigLIP's ``T = 0.1``,
    ``b = -10``).

    Parameters
    ----------
    temperature : float, default=0.1
        Initial temperature ``T``.
    bias : float, default=-10.0
        Initial bias ``b``.
    learn_temperature : bool, default=True
        Learn ``T`` or keep it fixed.

    Examples
    --------
    >>> import torch
    >>> from skfusemix.engine.losses import SigmoidLoss
    >>> s = torch.nn.functional.normalize(torch.eye(4), dim=1)
    >>> loss_fn = SigmoidLoss(temperature=0.1, bias=-5.0)
    >>> loss = loss_fn(s, s)  # 16 pairs, each at logit +5 or -5 on its side
    >>> round(loss.item(), 4), round(16 * -torch.nn.functional.logsigmoid(torch.tensor(5.0)).item() / 4, 4)
    (0.0269, 0.0269)
    >>> sorted(name for name, _ in loss_fn.named_parameters())
    ['bias', 'log_temperature']
    """

    def __init__(self, temperature=0.1, bias=-10.0, learn_temperature=True):
        super().__init__(temperature, learn_temperature)
        self.bias = nn.Parameter(torch.tensor(float(bias)))

    def forward(self, sx, sy, positives=None):
        logits = (sx @ sy.T) * torch.exp(-self.log_temperature) + self.bias
        if positives is None:
            positives = torch.eye(
                logits.shape[0], dtype=torch.bool, device=logits.device
            )
        else:
            _check_positives(positives, *logits.shape)
        signs = torch.where(positives, 1.0, -1.0).to(logits.dtype)
        return -F.logsigmoid(signs * logits).sum() / logits.shape[0]


def _wide(t):
    """float32 or float64: half precision upcast, float64 kept."""
    return t if t.dtype == torch.float64 else t.float()


def _neighbourhoods(z, temperature, levels):
    """Row distributions ``softmax(c c^T / T)`` of a batch and their powers
    ``1..levels``, where ``c`` are the L2-normalised rows minus their batch
    mean."""
    c = F.normalize(z, dim=-1)
    c = c - c.mean(dim=0, keepdim=True)
    p = F.softmax(c @ c.T / temperature, dim=-1)
    powers = [p]
    for _ in range(levels - 1):
        powers.append(powers[-1] @ p)
    return powers


def _js_divergence(p, q, eps):
    """Mean over rows of the Jensen-Shannon divergence of row distributions."""
    m = 0.5 * (p + q)
    log_m = (m + eps).log()
    kl_p = (p * ((p + eps).log() - log_m)).sum(dim=-1)
    kl_q = (q * ((q + eps).log() - log_m)).sum(dim=-1)
    return 0.5 * (kl_p + kl_q).mean()


class StructureRegularizer(nn.Module):
    """STRUCTURE: keep the neighbourhood structure of the input latents in
    the aligned space.

    From "With Limited Data for Multimodal Alignment, Let the STRUCTURE
    Guide You" (Groger, Wen, Le, Brbic, NeurIPS 2025).  For one modality's
    batch of input latents ``z`` (``(B, d_in)``) and their aligned
    embeddings ``s`` (``(B, d_out)``), each space gets per-row neighbourhood
    distributions ``P = softmax(c c^T / T)`` within the batch, where ``c``
    are the L2-normalised rows minus their batch mean (centring removes the
    common direction that makes all cosines of a frozen encoder's latents
    large).  As in the authors' code, the rows are normalised before
    centring and not again after, and each row keeps its
    self-similarity.  Level ``l`` compares ``P^l`` (matrix power: ``l``-hop
    neighbourhoods); the result is the mean over levels ``1..L`` of the
    mean over rows of the Jensen-Shannon divergence between the input's and
    the aligned space's row distributions (at most ``log 2``).  The authors'
    code evaluates its two KL terms from the mixture to each distribution;
    this is the Jensen-Shannon divergence itself (KL from each distribution
    to the mixture), bounded and zero exactly when the two agree.

    The input side is a fixed target: ``z`` is detached, gradients reach
    ``s`` only.  The module has no parameters; the training loop adds
    ``weight * 0.5 * (R(zx, sx) + R(zy, sy))`` to the contrastive loss.

    Parameters
    ----------
    temperature : float, default=0.07
        Softmax temperature of the neighbourhood distributions (the authors
        use their contrastive loss' initial temperature).
    levels : int, default=1
        Number of levels ``L`` (powers of ``P``).
    eps : float, default=1e-12
        Added inside the logarithms.

    Examples
    --------
    >>> import torch
    >>> from skfusemix.engine.losses import StructureRegularizer
    >>> z = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    >>> reg = StructureRegularizer(temperature=0.1, levels=2)
    >>> float(reg(z, z))  # the same geometry: nothing to penalise
    0.0
    >>> abs(float(reg(z, 3 * z))) < 1e-6  # scale does not change the geometry
    True
    >>> 0 < float(reg(z, torch.randn(16, 4))) < 0.6932  # at most log 2
    True
    """

    def __init__(self, temperature=0.07, levels=1, eps=1e-12):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}.")
        if int(levels) != levels or levels < 1:
            raise ValueError(f"levels must be an integer >= 1, got {levels!r}.")
        self.temperature, self.levels, self.eps = temperature, int(levels), eps

    def forward(self, z, s):
        if z.shape[0] != s.shape[0]:
            raise ValueError(
                f"z and s need the same rows, got {z.shape[0]} and {s.shape[0]}."
            )
        with torch.no_grad():
            target = _neighbourhoods(_wide(z), self.temperature, self.levels)
        aligned = _neighbourhoods(_wide(s), self.temperature, self.levels)
        return torch.stack(
            [_js_divergence(p, q, self.eps) for p, q in zip(target, aligned)]
        ).mean()
