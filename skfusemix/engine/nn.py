"""Torch modules of the fusion adapters (Vouitsis et al., CVPR 2024, and the
paper's public code): residual MLP blocks, an optional fixed standardisation
layer, and the adapter that maps one encoder's latents into the shared space."""

import torch
from torch import nn

__all__ = [
    "Adapter",
    "FixedSpace",
    "ResidualBlock",
    "Standardize",
    "count_flops_per_row",
    "no_weight_decay",
]


class Standardize(nn.Module):
    """Fixed per-feature standardisation ``(z - mean) / scale``, or its
    inverse ``z * scale + mean``.

    The statistics are buffers (saved with the weights, never trained), set
    once from the training latents with :meth:`set_`.

    Parameters
    ----------
    dim : int
        Number of features.
    inverse : bool, default=False
        Map standardised values back to the original scale instead.

    Examples
    --------
    >>> import torch
    >>> from skfusemix.engine.nn import Standardize
    >>> std = Standardize(2)
    >>> std.set_(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0]))
    >>> std(torch.tensor([[3.0, 6.0]]))
    tensor([[1., 1.]])
    """

    def __init__(self, dim, inverse=False):
        super().__init__()
        self.inverse = inverse
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    @torch.no_grad()
    def set_(self, mean, scale):
        """Set the statistics (``scale`` must be positive)."""
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
        self.scale.copy_(torch.as_tensor(scale, dtype=self.scale.dtype))

    def forward(self, z):
        if self.inverse:
            return z * self.scale + self.mean
        return (z - self.mean) / self.scale

    def extra_repr(self):
        return "inverse=True" if self.inverse else ""


class ResidualBlock(nn.Module):
    """Pre-norm inverted-bottleneck MLP with a skip connection.

    ``z + Linear(h -> d)(Dropout(GELU(Linear(d -> h)(LayerNorm(z)))))`` with
    ``h = expansion * d``.

    Parameters
    ----------
    dim : int
        Width ``d`` of the input and output.
    expansion : int, default=4
        Hidden width is ``expansion * dim``.
    dropout : float, default=0.0
        Dropout probability after the activation.

    Examples
    --------
    >>> import torch
    >>> from skfusemix.engine.nn import ResidualBlock
    >>> ResidualBlock(8)(torch.zeros(2, 8)).shape
    torch.Size([2, 8])
    """

    def __init__(self, dim, expansion=4, dropout=0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, expansion * dim)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(expansion * dim, dim)

    def forward(self, z):
        return z + self.fc2(self.drop(self.act(self.fc1(self.norm(z)))))


class Adapter(nn.Module):
    """Fusion adapter: ``[Standardize] -> [ResidualBlock] * n_layers ->
    LayerNorm -> Linear [-> inverse Standardize]``.

    Maps latents of one frozen encoder (width ``in_dim``) into the shared
    space (width ``out_dim``).  The output is *not* normalised; the loss and
    :meth:`FuseMixAligner.transform` L2-normalise it.

    Parameters
    ----------
    in_dim : int
        Width of the encoder latents.
    out_dim : int
        Width of the shared space.
    n_layers : int, default=4
        Number of residual blocks.
    expansion : int, default=4
        Hidden width of a block is ``expansion * in_dim``.
    dropout : float, default=0.0
        Dropout inside the blocks.
    standardize : bool, default=False
        Start with a :class:`Standardize` layer (attribute ``standardize``)
        whose statistics the caller sets; else the input goes in as it is.
    unstandardize : bool, default=False
        End with an inverse :class:`Standardize` layer (attribute
        ``unstandardize``, statistics set by the caller): the adapter then
        predicts standardised coordinates of a fixed target space and
        returns them on that space's own scale and offset.  One-sided
        alignment uses it, so that a target space whose vectors all point
        one way (a common offset) is as easy to reach as a centred one.

    Examples
    --------
    >>> import torch
    >>> from skfusemix.engine.nn import Adapter
    >>> Adapter(16, 4, n_layers=2)(torch.zeros(3, 16)).shape
    torch.Size([3, 4])
    """

    def __init__(
        self,
        in_dim,
        out_dim,
        n_layers=4,
        expansion=4,
        dropout=0.0,
        standardize=False,
        unstandardize=False,
    ):
        super().__init__()
        self.standardize = Standardize(in_dim) if standardize else nn.Identity()
        self.blocks = nn.Sequential(
            *(ResidualBlock(in_dim, expansion, dropout) for _ in range(n_layers))
        )
        self.norm = nn.LayerNorm(in_dim)
        self.proj = nn.Linear(in_dim, out_dim)
        self.unstandardize = (
            Standardize(out_dim, inverse=True) if unstandardize else nn.Identity()
        )

    def forward(self, z):
        z = self.proj(self.norm(self.blocks(self.standardize(z))))
        return self.unstandardize(z)


class FixedSpace(nn.Module):
    """The frozen side of one-sided alignment: the target encoder's own
    space, with no parameters.

    Returns its input unchanged; the loss and
    :meth:`~skfusemix.FuseMixAligner.transform_y` L2-normalise it, so the
    direction of every target latent is kept and vectors embedded by the
    target encoder long ago (an existing index) stay valid.

    Examples
    --------
    >>> import torch
    >>> from skfusemix.engine.nn import FixedSpace
    >>> z = torch.randn(3, 5)
    >>> bool(torch.equal(FixedSpace()(z), z)), len(list(FixedSpace().parameters()))
    (True, 0)
    """

    def forward(self, z):
        return z


def no_weight_decay(name, param):
    """True for parameters AdamW must not decay: biases, norms, scalars.

    Parameters
    ----------
    name : str
        The parameter's name, as in ``module.named_parameters()``.
    param : torch.Tensor
        The parameter.

    Returns
    -------
    exempt : bool
        True for biases and for parameters of fewer than two dimensions
        (LayerNorm weights, the temperature).

    Examples
    --------
    >>> from skfusemix.engine.nn import Adapter, no_weight_decay
    >>> adapter = Adapter(8, 4, n_layers=1)
    >>> sorted({no_weight_decay(n, p) for n, p in adapter.named_parameters()})
    [False, True]
    >>> [n for n, p in adapter.named_parameters() if not no_weight_decay(n, p)][:2]
    ['blocks.0.fc1.weight', 'blocks.0.fc2.weight']
    """
    return param.ndim < 2 or name.endswith(".bias")


def count_flops_per_row(module):
    """FLOPs (2 x multiply-adds) of the linear layers in one forward pass of
    ``module`` for one input row; a training step costs about 3x this.

    Parameters
    ----------
    module : torch.nn.Module
        Any module; only its :class:`torch.nn.Linear` layers are counted.

    Returns
    -------
    flops : int
        Floating-point operations per input row.

    Examples
    --------
    >>> import torch
    >>> from skfusemix.engine.nn import count_flops_per_row
    >>> count_flops_per_row(torch.nn.Linear(10, 4))
    80
    """
    return 2 * sum(
        m.in_features * m.out_features
        for m in module.modules()
        if isinstance(m, nn.Linear)
    )
