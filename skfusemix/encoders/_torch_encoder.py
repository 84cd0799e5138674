"""TorchEncoder: any torch.nn.Module plus a preprocessing callable."""

import numpy as np
import torch
from sklearn.utils._param_validation import StrOptions

from ._base import BaseEncoder, ProbedWidthMixin, bundle
from ._pooling import pool

__all__ = ["TorchEncoder"]


class TorchEncoder(ProbedWidthMixin, BaseEncoder):
    """Encode raw inputs with any frozen ``torch.nn.Module``.

    For models outside ``transformers`` (timm, torchvision, EfficientNet-Lite,
    ...).  Each input goes through ``preprocess`` into a tensor; equal-shaped
    tensors are stacked into batches and fed to the module; its output is
    pooled into one float32 row per input.

    Parameters
    ----------
    module : torch.nn.Module or callable, default=None
        The frozen model, or a zero-argument callable returning it (loaded
        lazily at first use and not pickled with the encoder; use a
        module-level function, not a lambda, if the encoder must be pickled).
        A module is moved to ``device`` in place
        and run in eval mode (its own mode is restored afterwards).
        Required: None raises a ValueError at fit or transform.
    preprocess : callable, default=None
        Maps one raw input (an image, a file path, ...) to an array or tensor;
        all inputs must give the same shape.  None: ``np.asarray(x, float32)``.
    method : str, default=None
        Name of the module's method to call instead of ``forward`` (e.g.
        ``"extract_features"``).
    pooling : {None, "mean", "cls", "last"}, default="mean"
        How the output becomes one vector per input: a ``(batch, dim)`` output
        is used as is whatever the pooling; ``(batch, channels, h, w)``
        feature maps take ``"mean"`` (global average pooling); ``(batch, seq,
        dim)`` sequences take ``"mean"``, ``"cls"`` (first) or ``"last"``.
        None accepts only ``(batch, dim)`` outputs.
    normalize : bool, default=False
        L2-normalise each latent.
    channels_last : bool, default=False
        Run 4-D image batches (and the module) in ``channels_last`` memory
        format; often much faster for convolutional networks on CPU.
    batch_size : int, default=32
        Inputs per forward pass.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    precision : {"auto", "fp32", "fp16", "bf16"}, default="auto"
        Autocast dtype on CUDA (``"auto"``: bf16 where supported, else fp16).
        The CPU always computes in float32.
    memory : str or joblib.Memory, default=None
        Per-input cache of the latents, keyed by a hash of the module's
        class, weights, ``preprocess``, the other output-changing parameters
        and the input (for a file path: the path, not the file's content).
    verbose : int, default=0
        Show a progress bar over the batches when positive.

    Attributes
    ----------
    n_features_out_ : int
        Width of the latents, set by :meth:`fit` (which encodes one input).

    See Also
    --------
    TextEncoder, ImageEncoder, AudioEncoder

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skfusemix.encoders import TorchEncoder
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    >>> def to_chw(image):
    ...     return np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
    >>> encoder = TorchEncoder(net, preprocess=to_chw, pooling="mean")
    >>> images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    >>> encoder.fit_transform(images).shape
    (5, 8)
    >>> encoder.get_feature_names_out()[:2]
    array(['torchencoder0', 'torchencoder1'], dtype=object)
    """

    _object_params = ("module", "preprocess")
    _poolings = (None, "mean", "cls", "last")
    _parameter_constraints = {
        **BaseEncoder._parameter_constraints,
        "preprocess": [None, callable],
        "method": [None, str],
        "channels_last": ["boolean"],
        "pooling": [None, StrOptions({"mean", "cls", "last"})],
    }
    _cache_exclude = BaseEncoder._cache_exclude + ("channels_last",)

    def __init__(
        self,
        module=None,
        *,
        preprocess=None,
        method=None,
        pooling="mean",
        normalize=False,
        channels_last=False,
        batch_size=32,
        device="auto",
        precision="auto",
        memory=None,
        verbose=0,
    ):
        self.module = module
        self.preprocess = preprocess
        self.method = method
        self.pooling = pooling
        self.normalize = normalize
        self.channels_last = channels_last
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.memory = memory
        self.verbose = verbose

    def _check_params(self):
        device = super()._check_params()
        if self.module is None or not callable(self.module):
            raise ValueError(
                "TorchEncoder needs module=: a torch.nn.Module or a callable returning "
                f"one; got {self.module!r}."
            )
        return device

    def _model_fingerprint(self):
        from ._fingerprint import fingerprint_object

        return fingerprint_object(self._get_loaded().model)

    def _cache_description(self, device):
        desc = super()._cache_description(device)
        if not isinstance(
            self.module, torch.nn.Module
        ):  # a factory: hash what it built
            desc["module"] = self._model_fingerprint()
        return desc

    def _load(self):
        module = self.module
        if not isinstance(module, torch.nn.Module):
            module = module()
            if not isinstance(module, torch.nn.Module):
                raise TypeError(
                    f"module() returned a {type(module).__name__}, not a torch.nn.Module."
                )
        if self.method is not None and not callable(getattr(module, self.method, None)):
            raise ValueError(f"The module has no method {self.method!r}.")
        return bundle(model=module, channels_last=None)

    def _get_loaded(self, device=None):
        loaded = super()._get_loaded(device)
        if device is not None and self.channels_last and loaded.channels_last is None:
            loaded.model.to(memory_format=torch.channels_last)
            loaded.channels_last = True
        return loaded

    def _preprocess_one(self, item):
        try:
            x = self.preprocess(item) if self.preprocess is not None else item
            if not torch.is_tensor(x):
                x = np.asarray(x)
                if np.iscomplexobj(x):
                    raise ValueError("complex values are not supported")
                x = torch.from_numpy(np.asarray(x, dtype=np.float32))
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"Cannot preprocess an input into a tensor: {exc}"
            ) from None
        if x.numel() == 0:
            raise ValueError(
                f"An input is empty once preprocessed: shape {tuple(x.shape)}."
            )
        if x.is_floating_point() and not torch.isfinite(x).all():
            raise ValueError("An input contains NaN or infinite values.")
        return x

    def _forward(self, bundle, items, idx, device):
        tensors = [self._preprocess_one(items[i]) for i in idx]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            raise ValueError(
                f"The preprocessed inputs have different shapes {sorted(shapes)}; "
                "preprocess must map every input to the same shape."
            )
        x = torch.stack(tensors).to(device)
        if x.is_floating_point() and x.dtype != torch.float32:
            x = x.float()
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        module = bundle.model
        fn = getattr(module, self.method) if self.method is not None else module
        out = fn(x)
        if isinstance(out, dict):
            out = out.get("last_hidden_state", next(iter(out.values())))
        elif isinstance(out, tuple | list):
            out = out[0]
        if not torch.is_tensor(out):
            raise TypeError(
                f"The module returned a {type(out).__name__}, not a tensor."
            )
        if out.ndim == 2:
            return out.float()
        return pool(out, self.pooling)
