"""ImageEncoder: Hugging Face vision models as a scikit-learn transformer."""

import os

import numpy as np
import torch
from sklearn.utils._param_validation import StrOptions

from ._base import BaseEncoder, bundle, hf_output_dim, submodule
from ._loading import load_pretrained, load_processor, model_name
from ._pooling import pool

__all__ = ["ImageEncoder", "check_images"]


class ImageEncoder(BaseEncoder):
    """Encode images with a frozen Hugging Face vision model.

    A stateless transformer: ``transform`` maps a list of images to a float32
    array of latents, one row per image.  The model and its image processor
    are loaded at first use and are not pickled with the encoder.

    Parameters
    ----------
    model : str or transformers.PreTrainedModel, default="facebook/dinov2-small"
        A Hugging Face hub id, a local directory written by
        ``save_pretrained``, or an already loaded model (then pass
        ``processor`` too unless it can be loaded from the model's
        ``name_or_path``).  Two-tower models such as CLIP use their vision
        tower.  A loaded model is moved to ``device`` in place
        and run in eval mode (its own mode is restored afterwards).
    processor : transformers image processor, default=None
        The image processor (resizing, normalisation), when it is not loaded
        from ``model``.
    pooling : {"cls", "mean", "pooler"}, default="cls"
        ``"cls"``: the class token (ViT, DINOv2; FuseMix's choice);
        ``"mean"``: the average of the patch tokens, or global average pooling
        of a convolutional feature map; ``"pooler"``: the model's
        ``pooler_output`` (e.g. CLIP's post-layernorm class token, a CNN's
        pooled features).
    normalize : bool, default=False
        L2-normalise each latent.
    batch_size : int, default=32
        Images per forward pass.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    precision : {"auto", "fp32", "fp16", "bf16"}, default="auto"
        Autocast dtype on CUDA (``"auto"``: bf16 where supported, else fp16).
        The CPU always computes in float32.
    revision : str, default=None
        Hub revision (branch, tag or commit) of ``model``.
    memory : str or joblib.Memory, default=None
        Per-image cache of the latents, keyed by the model's identity, the
        output-changing parameters and the pixels; see :class:`TextEncoder`.
    verbose : int, default=0
        Show a progress bar over the batches when positive.

    Notes
    -----
    Images are PIL images (converted to RGB), image file paths (opened at
    ``transform``, so that :func:`encode_to_npy` reads a large collection one
    chunk at a time) or arrays of shape ``(H, W, 3)`` (``(H, W)``, ``(H, W,
    1)`` grey and ``(H, W, 4)`` RGBA are turned into RGB copies), uint8 in
    [0, 255] as the processors expect; a 4-D array is a batch of such images.
    The cache keys images by their pixels, whatever their source.

    See Also
    --------
    TextEncoder, TorchEncoder

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.encoders import ImageEncoder
    >>> images = np.zeros((2, 224, 224, 3), dtype=np.uint8)
    >>> encoder = ImageEncoder("facebook/dinov2-small")
    >>> encoder.transform(images).shape  # doctest: +SKIP
    (2, 384)
    """

    _object_params = ("model", "processor")
    _poolings = ("cls", "mean", "pooler")
    _parameter_constraints = {
        **BaseEncoder._parameter_constraints,
        "pooling": [StrOptions(set(_poolings))],
    }

    def __init__(
        self,
        model="facebook/dinov2-small",
        *,
        processor=None,
        pooling="cls",
        normalize=False,
        batch_size=32,
        device="auto",
        precision="auto",
        revision=None,
        memory=None,
        verbose=0,
    ):
        self.model = model
        self.processor = processor
        self.pooling = pooling
        self.normalize = normalize
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.revision = revision
        self.memory = memory
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    def _check_inputs(self, X):
        return check_images(X)

    def _load(self):
        from transformers import AutoImageProcessor, AutoModel

        model, processor = _load_model_and_processor(
            self.model,
            self.processor,
            self.revision,
            AutoModel.from_pretrained,
            AutoImageProcessor.from_pretrained,
            "image",
        )
        return bundle(model=submodule(model, "vision_model"), processor=processor)

    def _n_features_out(self):
        config = self._get_loaded().model.config
        if self.pooling == "pooler" and getattr(config, "pooler_output_size", None):
            return int(config.pooler_output_size)
        return hf_output_dim(config)

    def _forward(self, bundle, images, idx, device):
        batch = bundle.processor(
            images=[images[i] for i in idx],
            return_tensors="pt",
            input_data_format="channels_last",
        )
        inputs = {k: v.to(device) for k, v in batch.items() if torch.is_tensor(v)}
        out = bundle.model(**inputs)
        return pool(
            out.last_hidden_state,
            self.pooling,
            pooler_output=getattr(out, "pooler_output", None),
        )


def _load_model_and_processor(
    model, processor, revision, model_loader, processor_loader, what
):
    """Shared by the image and audio encoders: resolve ``(model, processor)``."""
    if isinstance(model, str):
        loaded, loaded_proc = load_pretrained(
            model,
            revision,
            model_loader,
            None if processor is not None else processor_loader,
            what,
        )
        return loaded, processor if processor is not None else loaded_proc
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            "model must be a Hugging Face hub id, a local directory or a loaded "
            f"torch.nn.Module; got {type(model).__name__}."
        )
    if processor is None:
        source = getattr(model, "name_or_path", None)
        if not source:
            raise ValueError(
                f"No processor for the loaded model {model_name(model)}: pass "
                f"processor=... (e.g. {processor_loader.__self__.__name__}"
                ".from_pretrained(...))."
            )
        processor = load_processor(
            source, revision, processor_loader, what + " processor"
        )
    return model, processor


def _to_rgb_array(image, i):
    arr = image
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"Image {i} has shape {image.shape}; expected (H, W, 3) (or (H, W), "
            "(H, W, 1), (H, W, 4)) with channels last."
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"Image {i} is empty: shape {image.shape}.")
    if not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"Image {i} has dtype {arr.dtype}; expected uint8 or float.")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError(f"Image {i} contains NaN or infinite values.")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return arr


def _open_image(path, i):
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Image {i}: no such file {os.fspath(path)!r}."
        ) from None
    except OSError as exc:
        raise ValueError(
            f"Image {i}: cannot read {os.fspath(path)!r} as an image: {exc}"
        ) from None


def check_images(X):
    """Validate images into a list of RGB PIL images or (H, W, 3) arrays.

    File paths are opened (and decoded) here.  The caller's images are never
    modified; converted images are copies.
    """
    if isinstance(X, np.ndarray):
        if X.ndim not in (3, 4):
            raise ValueError(
                f"Expected a list of images or an array of shape (n, H, W[, C]); got an "
                f"array of shape {X.shape}."
            )
        images = list(X)
    elif isinstance(X, str | bytes) or type(X).__module__.startswith("PIL."):
        raise TypeError("Expected a list of images; wrap a single image in a list.")
    else:
        try:
            images = list(X)
        except TypeError:
            raise TypeError(
                f"Expected a list of images; got {type(X).__name__}."
            ) from None
    if not images:
        raise ValueError("Expected at least one image; got an empty input.")
    out = []
    for i, image in enumerate(images):
        if isinstance(image, str | os.PathLike):
            image = _open_image(image, i)
        if type(image).__module__.startswith("PIL."):
            out.append(image if image.mode == "RGB" else image.convert("RGB"))
        elif isinstance(image, np.ndarray) or torch.is_tensor(image):
            arr = image.numpy() if torch.is_tensor(image) else image
            out.append(_to_rgb_array(arr, i))
        else:
            raise TypeError(
                f"Image {i} is a {type(image).__name__}; expected a PIL image, an "
                "(H, W, C) array or an image file path."
            )
    return out
