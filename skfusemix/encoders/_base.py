"""What every encoder shares: parameters, batching, devices, caching, pickling."""

import contextlib
import json
import logging
import numbers
import os
import weakref
from types import SimpleNamespace

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_array, check_memory
from tqdm.auto import tqdm

from .._data import resolve_device
from ._cache import LatentStore
from ._fingerprint import fingerprint_object, hash_item
from ._loading import model_fingerprint

__all__ = ["BaseEncoder", "ProbedWidthMixin"]

logger = logging.getLogger(__name__)

_PRECISIONS = ("auto", "fp32", "fp16", "bf16")

# The model each encoder loaded, kept outside the estimator: it is not a
# parameter nor a fitted attribute, it is not pickled or cloned with the
# estimator, and it goes away with the estimator.
_LOADED_BY_ENCODER = weakref.WeakKeyDictionary()


class BaseEncoder(TransformerMixin, BaseEstimator):
    """Base class of the encoders: a stateless transformer over raw inputs.

    Subclasses define ``_check_inputs`` (validate raw inputs into a list),
    ``_load`` (return a namespace with at least ``model``), ``_forward``
    (encode one batch into a ``(batch, dim)`` tensor) and optionally
    ``_prepare`` (work done once on all inputs, e.g. tokenisation) and
    ``_lengths`` (input lengths, for length-sorted batches).
    """

    #: allowed values of ``pooling``
    _poolings = ("cls", "mean", "last", "pooler")
    #: checked by ``_validate_params`` (subclasses extend it)
    _parameter_constraints = {
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "normalize": ["boolean"],
        "precision": [StrOptions(set(_PRECISIONS))],
        "device": [str, torch.device],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "verbose": ["verbose"],
        "pooling": [StrOptions(set(_poolings))],
    }
    #: parameters holding loaded objects (fingerprinted, shared by ``clone``)
    _object_params = ("model",)
    #: parameters that never change the latents (left out of the cache key)
    _cache_exclude = ("memory", "verbose", "batch_size", "device")

    # ------------------------------------------------------------------ sklearn
    def fit(self, X, y=None):
        """Check the parameters and the inputs; there is nothing to learn.

        Parameters
        ----------
        X : sequence of raw inputs
            The inputs :meth:`transform` will encode.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The encoder itself.
        """
        self._check_params()
        self._check_inputs(_reject_sparse(X))
        return self

    def transform(self, X):
        """Encode raw inputs into latents.

        Parameters
        ----------
        X : sequence of raw inputs
            See the class documentation for the accepted inputs.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features_out), dtype float32
            One latent row per input, in input order.
        """
        self._check_params()
        items = self._check_inputs(_reject_sparse(X))
        return self._encode(items)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features: ``<classname><i>``.

        Parameters
        ----------
        input_features : None
            Ignored; raw inputs have no feature names.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``["textencoder0", "textencoder1", ...]`` for a TextEncoder.
        """
        prefix = type(self).__name__.lower()
        n = self._n_features_out()
        return np.asarray([f"{prefix}{i}" for i in range(n)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def __sklearn_clone__(self):
        # A loaded model passed as a parameter is shared by the clone, not
        # deep-copied: it is frozen, and GridSearchCV clones once per fit.
        params = self.get_params(deep=False)
        new = {}
        for name, value in params.items():
            if name in self._object_params and not isinstance(value, str | type(None)):
                new[name] = value
            else:
                new[name] = clone(value, safe=False)
        return type(self)(**new)

    # --------------------------------------------------------------- validation
    def _check_params(self):
        """Validate the parameters (``_parameter_constraints``, plus the
        checks that involve several of them); return the device."""
        self._validate_params()
        device = self._resolve_device()
        if device.type != "cuda" and self.precision in ("fp16", "bf16"):
            raise ValueError(
                f"precision={self.precision!r} (autocast) is only used on CUDA; on "
                f"{device.type} use precision='auto' or 'fp32'."
            )
        check_memory(self.memory)
        return device

    def _resolve_device(self):
        """The device ``device`` names (subclasses running another engine
        than PyTorch resolve ``"auto"`` their own way)."""
        return resolve_device(self.device)

    def _check_inputs(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ loading
    def _load(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _load_key(self):
        return tuple(
            (name, v if isinstance(v, str | type(None)) else id(v))
            for name, v in sorted(self.get_params(deep=False).items())
            if name in self._object_params or name == "revision"
        )

    def _get_loaded(self, device=None):
        """The loaded model (and processor), loading them at first use."""
        key = self._load_key()
        loaded = _LOADED_BY_ENCODER.get(self)
        if loaded is None or loaded[0] != key:
            loaded = (key, self._load())
            _LOADED_BY_ENCODER[self] = loaded
        bundle = loaded[1]
        if device is not None and isinstance(bundle.model, torch.nn.Module):
            bundle.model.to(device)
        return bundle

    # ------------------------------------------------------------------ caching
    def _precision_dtype(self, device):
        if device.type != "cuda" or self.precision == "fp32":
            return None
        if self.precision == "fp16":
            return torch.float16
        if self.precision == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16

    def _model_fingerprint(self):
        fp = model_fingerprint(self.model, getattr(self, "revision", None))
        if fp is None:  # a hub model not in the local cache yet: load it first
            self._get_loaded()
            fp = model_fingerprint(self.model, getattr(self, "revision", None))
            if fp is None:
                fp = fingerprint_object(self._get_loaded().model)
        return fp

    def _cache_description(self, device):
        desc = {
            "encoder": f"{type(self).__module__}.{type(self).__qualname__}",
            "device_type": device.type,
            "autocast": str(self._precision_dtype(device)),
        }
        for name, value in sorted(self.get_params(deep=False).items()):
            if name in self._cache_exclude:
                continue
            if name == "model":
                desc[name] = self._model_fingerprint()
            elif name in self._object_params:
                desc[name] = fingerprint_object(value)
            else:
                desc[name] = value if _is_jsonable(value) else repr(value)
        return desc

    def _store(self, device):
        memory = check_memory(self.memory)
        if memory.location is None:
            return None
        desc = self._cache_description(device)
        key = hash_item(json.dumps(desc, sort_keys=True)).hex()
        return LatentStore(memory.location, key, description=desc)

    # ----------------------------------------------------------------- encoding
    def _encode(self, items):
        device = self._resolve_device()
        digests = [hash_item(x) for x in items]
        index = {}
        inverse = np.empty(len(items), dtype=np.intp)
        first = []
        for i, d in enumerate(digests):
            j = index.get(d)
            if j is None:
                j = index[d] = len(first)
                first.append(i)
            inverse[i] = j
        unique = [digests[i] for i in first]
        store = self._store(device)
        if store is not None:
            values, found = store.lookup(unique)
        else:
            values, found = None, np.zeros(len(unique), dtype=bool)
        missing = np.flatnonzero(~found)
        logger.debug(
            "%s: %d inputs, %d distinct, %d cached",
            type(self).__name__,
            len(items),
            len(unique),
            int(found.sum()),
        )
        if len(missing):
            try:
                new = self._encode_uncached([items[first[j]] for j in missing], device)
            except BaseException as exc:
                # an encoder that failed part-way may attach what it finished as
                # ``exc.encoded = (done_mask, values)``: cache it for the rerun
                done = getattr(exc, "encoded", None)
                if store is not None and done is not None and done[0].any():
                    rows = np.flatnonzero(done[0])
                    store.add([unique[missing[j]] for j in rows], done[1][rows])
                raise
            if values is None:
                values = np.empty((len(unique), new.shape[1]), dtype=np.float32)
            values[missing] = new
            if store is not None:
                store.add([unique[j] for j in missing], new)
        return values[inverse]

    def _prepare(self, items, bundle):
        return items

    def _lengths(self, prepared):
        return None

    def _autocast(self, device):
        dtype = self._precision_dtype(device)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    def _encode_uncached(self, items, device):
        bundle = self._get_loaded(device)
        prepared = self._prepare(items, bundle)
        lengths = self._lengths(prepared)
        n = len(items)
        if lengths is None:
            order = np.arange(n)
        else:  # longest first: the peak memory shows up in the first batch
            order = np.argsort(-np.asarray(lengths), kind="stable")
        batches = [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        out = None
        progress = tqdm(
            batches,
            disable=not self.verbose,
            desc=type(self).__name__,
            unit="batch",
            leave=False,
        )
        with eval_mode(bundle.model), torch.inference_mode(), self._autocast(device):
            for idx in progress:
                emb = self._forward(bundle, prepared, idx, device).float()
                if self.normalize:
                    emb = torch.nn.functional.normalize(emb, dim=1)
                emb = emb.cpu().numpy()
                if out is None:
                    out = np.empty((n, emb.shape[1]), dtype=np.float32)
                out[idx] = emb
        return out


class ProbedWidthMixin:
    """Encoders whose latent width is known only by encoding: ``fit`` encodes
    the first input (cached with ``memory=``) and records ``n_features_out_``."""

    def fit(self, X, y=None):
        """Check the parameters and inputs, and record the latent width.

        Parameters
        ----------
        X : sequence of raw inputs
            The inputs :meth:`transform` will encode; the first one is
            encoded to find the width of the latents.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The encoder.
        """
        self._check_params()
        items = self._check_inputs(_reject_sparse(X))
        self.n_features_out_ = self._encode(items[:1]).shape[1]
        return self

    def _check_inputs(self, X):
        if isinstance(X, str | bytes):
            raise TypeError("Expected a sequence of inputs; got a single string.")
        if not hasattr(X, "__iter__") and hasattr(X, "__array__"):
            X = np.asarray(X)
        if isinstance(X, np.ndarray) and X.dtype.kind in "biufc":
            # rows of a numeric array are the inputs: the usual checks apply
            X = check_array(X, dtype=None, allow_nd=True, input_name="X")
        try:
            items = list(X)
        except TypeError:
            raise TypeError(
                f"Expected a sequence of inputs; got {type(X).__name__}."
            ) from None
        if not items:
            raise ValueError("Expected at least one input; got an empty input.")
        return items

    def _n_features_out(self):
        n = getattr(self, "n_features_out_", None)
        if n is None:
            raise NotFittedError(
                f"The width of a {type(self).__name__}'s latents is known after "
                "fit(X); call fit first."
            )
        return n


def _reject_sparse(X):
    import scipy.sparse

    if scipy.sparse.issparse(X):
        raise TypeError(
            "Sparse data was passed, but dense data is required: encoders take raw "
            "inputs (texts, images, waveforms) or dense arrays."
        )
    return X


@contextlib.contextmanager
def eval_mode(model):
    """Put ``model`` in eval mode and restore each submodule's mode afterwards
    (a model that is not a ``torch.nn.Module`` is left as it is)."""
    if not isinstance(model, torch.nn.Module):
        yield model
        return
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def _is_jsonable(value):
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def hf_output_dim(config):
    """Width of the hidden states of a Hugging Face model configuration."""
    for name in ("hidden_size", "d_model", "dim", "embed_dim", "n_embd"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    sizes = getattr(config, "hidden_sizes", None)
    if sizes:
        return int(sizes[-1])
    raise ValueError(
        f"Cannot tell the output width of a {type(config).__name__}; encode a few "
        "inputs and read the width of the result instead."
    )


def submodule(model, attribute):
    """The text or vision tower of a two-tower model (CLIP, SigLIP), else the model."""
    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        return model.get_encoder()
    sub = getattr(model, attribute, None)
    if isinstance(sub, torch.nn.Module) and hasattr(
        config, attribute.split("_")[0] + "_config"
    ):
        return sub
    return model


def bundle(**kwargs):
    """A namespace holding a loaded model and its preprocessor."""
    return SimpleNamespace(**kwargs)


def reuse_large_allocations():
    """Keep glibc from returning large freed blocks to the system.

    A convolutional encoder allocates and frees activation buffers of tens of
    MiB on every batch; by default glibc serves each from a fresh ``mmap``, so
    every batch pays the page faults again (measured: EfficientNet-Lite0 on 2
    CPU cores encodes 30 images/s, 47-52 with this).  Process-wide, so only
    the ``encode`` and ``demo`` commands and the demo's encoding call it.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 2**30)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 2**30)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc
        pass
