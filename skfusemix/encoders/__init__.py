"""Frozen pretrained encoders as scikit-learn transformers over raw inputs.

FuseMix encodes each modality once with a frozen unimodal encoder and aligns
the latents with small adapters.  The encoders here turn raw inputs into
those latents:

- :class:`TextEncoder`: lists of strings, Hugging Face text models;
- :class:`ImageEncoder`: PIL images or ``(H, W, C)`` arrays, Hugging Face
  vision models;
- :class:`AudioEncoder`: 1-D waveforms, Hugging Face speech models (Whisper
  encoder, wav2vec 2.0, HuBERT, ...);
- :class:`WhisperCT2Encoder`: 1-D waveforms, Whisper encoders converted to
  CTranslate2 (a packaged tiny.en model works offline);
- :class:`TorchEncoder`: any ``torch.nn.Module`` plus a preprocessing
  callable;
- :class:`CallableEncoder`: any function embedding a batch, such as a
  remote embedding API (:func:`http_embedder`), with bounded concurrency and
  retries.

:func:`load_wav` reads audio files as mono waveforms at the rate the speech
encoders expect.

All are stateless (``fit`` only validates), load their model lazily, cache
latents per input with ``memory=`` and return float32 arrays.
:func:`encode_to_npy` encodes a dataset larger than memory into a resumable
``.npy`` file with a JSON metadata sidecar, read back by
:func:`read_latent_metadata`; it runs on a Dask or Ray cluster inside
``joblib.parallel_config``.  :class:`LatentFile` hands such a file to a
search on a cluster by its path.
"""

from ._audio import AudioEncoder, load_wav
from ._blackbox import CallableEncoder, http_embedder
from ._image import ImageEncoder
from ._memmap import LatentFile, encode_to_npy, latent_metadata, read_latent_metadata
from ._text import TextEncoder
from ._torch_encoder import TorchEncoder
from ._whisper_ct2 import WhisperCT2Encoder

__all__ = [
    "AudioEncoder",
    "CallableEncoder",
    "ImageEncoder",
    "LatentFile",
    "TextEncoder",
    "TorchEncoder",
    "WhisperCT2Encoder",
    "encode_to_npy",
    "http_embedder",
    "latent_metadata",
    "load_wav",
    "read_latent_metadata",
]
