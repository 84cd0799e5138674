"""Pooling token, frame or pixel states into one vector per input."""

import torch

__all__ = ["pool"]


def pool(hidden, pooling, mask=None, lengths=None, pooler_output=None):
    """Pool ``hidden`` into a ``(batch, dim)`` float32 tensor.

    Parameters
    ----------
    hidden : torch.Tensor
        ``(batch, seq, dim)`` states (tokens, frames) or ``(batch, dim, h, w)``
        feature maps (convolutional image models).
    pooling : {"cls", "mean", "last", "pooler"} or None
        ``"cls"`` the first position, ``"mean"`` the average of the valid
        positions (all spatial positions of a feature map), ``"last"`` the last
        valid position, ``"pooler"`` the model's own pooled output, None a
        ``(batch, dim)`` output as is.
    mask : torch.Tensor of shape (batch, seq), default=None
        1 for valid positions, 0 for padding.
    lengths : torch.Tensor of shape (batch,), default=None
        Number of valid leading positions; used when ``mask`` is None.
    pooler_output : torch.Tensor, default=None
        The model's pooled output, for ``pooling="pooler"``.
    """
    if pooling == "pooler":
        if pooler_output is None:
            raise ValueError(
                "pooling='pooler' needs a model with a pooled output (pooler_output), "
                "and this model returns none; use pooling='cls', 'mean' or 'last'."
            )
        return pooler_output.float().flatten(1)
    if hidden.ndim == 2:
        if pooling not in (None, "mean"):
            raise ValueError(
                f"pooling={pooling!r} needs a sequence of states, but the model "
                "returns one vector per input; use pooling=None."
            )
        return hidden.float()
    if hidden.ndim == 4:
        if pooling != "mean":
            raise ValueError(
                f"pooling={pooling!r} is undefined for a (batch, channels, height, "
                "width) feature map; use pooling='mean' (global average pooling)"
                " or 'pooler'."
            )
        return hidden.float().mean(dim=(2, 3))
    if hidden.ndim != 3:
        raise ValueError(f"Cannot pool model output of shape {tuple(hidden.shape)}.")
    if pooling is None:
        raise ValueError(
            f"The model returns a sequence of states {tuple(hidden.shape)}; choose a "
            "pooling: 'cls', 'mean' or 'last'."
        )
    hidden = hidden.float()
    if mask is None and lengths is not None:
        positions = torch.arange(hidden.shape[1], device=hidden.device)
        mask = positions[None, :] < lengths.to(hidden.device)[:, None]
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        if mask is None:
            return hidden.mean(dim=1)
        m = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
    if pooling == "last":
        if mask is None:
            return hidden[:, -1]
        last = mask.to(torch.long).sum(dim=1).clamp(min=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"Unknown pooling {pooling!r}.")
