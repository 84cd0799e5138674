"""AudioEncoder: Hugging Face speech models as a scikit-learn transformer."""

import math
import numbers
import os

import numpy as np
import torch
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseEncoder, bundle, hf_output_dim, submodule
from ._image import _load_model_and_processor
from ._pooling import pool

__all__ = ["AudioEncoder", "check_waveforms", "load_wav"]


class WaveformInputMixin:
    """Inputs of a speech encoder: 1-D waveforms (a list of clips of any
    length, or a 2-D array of clips of equal length)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True  # (n_clips, n_samples) of equal length
        return tags

    def _check_inputs(self, X):
        return check_waveforms(X)


class AudioEncoder(WaveformInputMixin, BaseEncoder):
    """Encode audio clips with a frozen Hugging Face speech model.

    A stateless transformer: ``transform`` maps a list of 1-D waveforms to a
    float32 array of latents, one row per clip.  The model and its feature
    extractor are loaded at first use and are not pickled with the encoder.
    Clips are sorted by length and padded per batch; the pooling covers only
    each clip's own frames, not the padding.

    Parameters
    ----------
    model : str or transformers.PreTrainedModel, default="openai/whisper-tiny"
        A Hugging Face hub id, a local directory written by
        ``save_pretrained``, or an already loaded model (then pass
        ``processor`` too unless it can be loaded from the model's
        ``name_or_path``).  Encoder-decoder models (Whisper) use their encoder.
        A loaded model is moved to ``device`` in place
        and run in eval mode (its own mode is restored afterwards).
    processor : transformers feature extractor, default=None
        The feature extractor (e.g. ``WhisperFeatureExtractor``,
        ``Wav2Vec2FeatureExtractor``), when it is not loaded from ``model``.
    sampling_rate : int, default=None
        Sampling rate of the waveforms; None means the feature extractor's
        (16 kHz for Whisper and wav2vec 2.0).  Waveforms are not resampled: a
        rate different from the feature extractor's raises a ValueError.
    pooling : {"mean", "cls", "last"}, default="mean"
        ``"mean"``: average of the encoder states over the clip's true length
        (Whisper pads every clip to 30 s; only the frames of the clip itself
        are averaged); ``"cls"``/``"last"``: the first/last valid frame.
    normalize : bool, default=False
        L2-normalise each latent.
    batch_size : int, default=8
        Clips per forward pass.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    precision : {"auto", "fp32", "fp16", "bf16"}, default="auto"
        Autocast dtype on CUDA (``"auto"``: bf16 where supported, else fp16).
        The CPU always computes in float32.
    revision : str, default=None
        Hub revision (branch, tag or commit) of ``model``.
    memory : str or joblib.Memory, default=None
        Per-clip cache of the latents, keyed by the model's identity, the
        output-changing parameters and the samples; see :class:`TextEncoder`.
    verbose : int, default=0
        Show a progress bar over the batches when positive.

    Notes
    -----
    Whisper's encoder sees at most 30 s: longer clips are truncated by the
    feature extractor.

    See Also
    --------
    TextEncoder, TorchEncoder

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.encoders import AudioEncoder
    >>> clips = [np.zeros(16000, dtype=np.float32), np.zeros(8000, dtype=np.float32)]
    >>> AudioEncoder("openai/whisper-tiny").transform(clips).shape  # doctest: +SKIP
    (2, 384)
    """

    _object_params = ("model", "processor")
    _poolings = ("mean", "cls", "last")

    def __init__(
        self,
        model="openai/whisper-tiny",
        *,
        processor=None,
        sampling_rate=None,
        pooling="mean",
        normalize=False,
        batch_size=8,
        device="auto",
        precision="auto",
        revision=None,
        memory=None,
        verbose=0,
    ):
        self.model = model
        self.processor = processor
        self.sampling_rate = sampling_rate
        self.pooling = pooling
        self.normalize = normalize
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.revision = revision
        self.memory = memory
        self.verbose = verbose

    _parameter_constraints = {
        **BaseEncoder._parameter_constraints,
        "sampling_rate": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "pooling": [StrOptions(set(_poolings))],
    }

    def _load(self):
        from transformers import AutoFeatureExtractor, AutoModel

        model, processor = _load_model_and_processor(
            self.model,
            self.processor,
            self.revision,
            AutoModel.from_pretrained,
            AutoFeatureExtractor.from_pretrained,
            "audio",
        )
        expected = getattr(processor, "sampling_rate", None)
        if (
            self.sampling_rate is not None
            and expected
            and self.sampling_rate != expected
        ):
            raise ValueError(
                f"sampling_rate={self.sampling_rate} but the model expects {expected} Hz "
                "audio; resample the waveforms first (e.g. with librosa or "
                "torchaudio)."
            )
        return bundle(model=submodule(model, "audio_model"), processor=processor)

    def _n_features_out(self):
        return hf_output_dim(self._get_loaded().model.config)

    def _lengths(self, clips):
        return np.fromiter((len(c) for c in clips), dtype=np.intp)

    def _forward(self, bundle, clips, idx, device):
        processor = bundle.processor
        model = bundle.model
        batch_clips = [clips[i] for i in idx]
        rate = self.sampling_rate or getattr(processor, "sampling_rate", None)
        wants_mask = bool(getattr(processor, "return_attention_mask", False))
        kwargs = {
            "sampling_rate": rate,
            "return_tensors": "pt",
            "return_attention_mask": True,
        }
        if type(processor).__name__.startswith("Whisper"):
            kwargs["padding"] = "max_length"  # the encoder only accepts 30 s windows
        else:
            kwargs["padding"] = "longest"
        features = processor(batch_clips, **kwargs)
        main = getattr(model, "main_input_name", None) or next(iter(features.keys()))
        inputs = {main: features[main].to(device)}
        mask = features.get("attention_mask")
        if mask is not None and wants_mask:
            inputs["attention_mask"] = mask.to(device)
        out = model(**inputs)
        hidden = out.last_hidden_state
        if mask is not None:
            in_lengths = mask.sum(dim=-1)
        else:
            in_lengths = torch.tensor([len(c) for c in batch_clips])
        lengths = None
        get_lengths = getattr(model, "_get_feat_extract_output_lengths", None)
        if get_lengths is not None:
            lengths = torch.as_tensor(get_lengths(in_lengths)).clamp(1, hidden.shape[1])
        elif hidden.shape[1] == in_lengths.max():
            lengths = in_lengths
        return pool(hidden, self.pooling, lengths=lengths)


def check_waveforms(X):
    """Validate waveforms into a list of finite 1-D float32 arrays (copies if converted)."""
    if not hasattr(X, "__iter__") and hasattr(X, "__array__"):
        X = np.asarray(X)
    if isinstance(X, np.ndarray) or torch.is_tensor(X):
        arr = X.numpy() if torch.is_tensor(X) else X
        if arr.ndim == 1:
            raise ValueError(
                "Expected a list of 1-D waveforms or a 2-D array (n_clips, n_samples); "
                "got a single 1-D array. Reshape your data: wrap one clip in a list, "
                "[clip], or use clip.reshape(1, -1)."
            )
        if arr.ndim != 2:
            raise ValueError(
                f"Expected a 2-D array (n_clips, n_samples); got shape {arr.shape}."
            )
        if arr.dtype.kind in "biufc":
            arr = check_array(arr, dtype=None, input_name="X")
        clips = list(arr)
    elif isinstance(X, str | bytes):
        raise TypeError("Expected a list of 1-D waveforms; got a string.")
    else:
        try:
            clips = list(X)
        except TypeError:
            raise TypeError(
                f"Expected a list of 1-D waveforms; got {type(X).__name__}."
            ) from None
    if not clips:
        raise ValueError("Expected at least one waveform; got an empty input.")
    out = []
    for i, clip in enumerate(clips):
        if torch.is_tensor(clip):
            clip = clip.detach().cpu().numpy()
        if isinstance(clip, str | bytes) or not hasattr(clip, "__len__"):
            raise TypeError(
                f"Waveform {i} is a {type(clip).__name__}; expected a 1-D array of samples."
            )
        if np.iscomplexobj(clip):
            raise ValueError(f"Complex data not supported: waveform {i} is complex.")
        try:
            arr = np.asarray(clip, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"Waveform {i} cannot be read as an array of float samples: {exc}"
            ) from None
        if arr.ndim != 1:
            raise ValueError(
                f"Waveform {i} has shape {arr.shape}; expected a 1-D (mono) array. "
                "Average stereo channels first."
            )
        if arr.size == 0:
            raise ValueError(f"Waveform {i} is empty.")
        if not np.isfinite(arr).all():
            raise ValueError(f"Waveform {i} contains NaN or infinite values.")
        out.append(arr)
    return out


def load_wav(paths, sampling_rate=16000):
    """Read audio files as mono float32 waveforms at one sampling rate.

    Reads WAV, FLAC, OGG and the other formats of libsndfile (through the
    ``soundfile`` package: ``pip install "skfusemix[speech]"``), averages
    the channels of multichannel files and resamples with a polyphase
    filter (:func:`scipy.signal.resample_poly`) when the file's rate
    differs.  The result is what the speech encoders take.

    Parameters
    ----------
    paths : sequence of str or path-like
        The audio files.  A single path must be wrapped in a list.
    sampling_rate : int, default=16000
        Sampling rate of the returned waveforms, in Hz (16,000 for Whisper
        and wav2vec 2.0).

    Returns
    -------
    waveforms : list of ndarray of shape (n_samples_i,), dtype float32
        One waveform per file, in order, with samples in [-1, 1] for integer
        PCM files.

    Raises
    ------
    FileNotFoundError
        If a file does not exist.
    ValueError
        If a file cannot be decoded as audio or holds no samples.
    ImportError
        If ``soundfile`` is not installed.

    See Also
    --------
    WhisperCT2Encoder, AudioEncoder : Encode the waveforms.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import soundfile as sf  # doctest: +SKIP
    >>> from skfusemix.encoders import load_wav
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> tone = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)
    >>> sf.write(path, np.stack([tone, tone], axis=1), 22050)  # doctest: +SKIP
    >>> [clip.shape for clip in load_wav([path])]  # doctest: +SKIP
    [(16000,)]
    """
    if isinstance(paths, str | bytes | os.PathLike):
        raise TypeError(
            f"Expected a list of file paths; got a single path {os.fsdecode(paths)!r}. "
            "Wrap it in a list: load_wav([path])."
        )
    if (
        not isinstance(sampling_rate, numbers.Integral)
        or isinstance(sampling_rate, bool)
        or sampling_rate < 1
    ):
        raise ValueError(
            f"sampling_rate must be a positive integer (Hz); got {sampling_rate!r}."
        )
    try:
        paths = list(paths)
    except TypeError:
        raise TypeError(
            f"Expected a list of file paths; got {type(paths).__name__}."
        ) from None
    try:
        import soundfile
    except ImportError as exc:
        raise ImportError(
            f"load_wav needs the 'soundfile' package ({exc}); install it with "
            'pip install "skfusemix[speech]".'
        ) from None
    from scipy.signal import resample_poly

    out = []
    for path in paths:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(
                f"Expected file paths (str or path-like); got a {type(path).__name__}."
            )
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No such audio file: {os.fspath(path)!r}.")
        try:
            data, rate = soundfile.read(path, dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.SoundFileError) as exc:
            raise ValueError(
                f"Cannot read {os.fspath(path)!r} as audio: {exc}"
            ) from None
        if data.shape[0] == 0:
            raise ValueError(f"The audio file {os.fspath(path)!r} holds no samples.")
        wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        if rate != sampling_rate:
            g = math.gcd(int(rate), int(sampling_rate))
            wave = resample_poly(wave, sampling_rate // g, rate // g)
        out.append(np.ascontiguousarray(wave, dtype=np.float32))
    return out
