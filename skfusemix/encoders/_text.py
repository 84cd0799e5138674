"""TextEncoder: Hugging Face text models as a scikit-learn transformer."""

import numbers

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from ._base import BaseEncoder, bundle, hf_output_dim, submodule
from ._loading import load_pretrained, load_processor, model_name
from ._pooling import pool

__all__ = ["TextEncoder"]


class TextEncoder(BaseEncoder):
    """Encode texts with a frozen Hugging Face text model.

    A stateless transformer: ``transform`` maps a list of strings to a float32
    array of latents, one row per text.  The model is loaded at first use
    (never in ``__init__``), is not a fitted attribute and is not pickled with
    the encoder.  Texts are tokenised once, sorted by token length and
    encoded in dynamically padded batches; rows come back in input order.

    Parameters
    ----------
    model : str or transformers.PreTrainedModel, \
            default="sentence-transformers/all-MiniLM-L6-v2"
        A Hugging Face hub id, a local directory written by
        ``save_pretrained``, or an already loaded model (then pass
        ``tokenizer`` too unless it can be loaded from the model's
        ``name_or_path``).  Encoder-decoder models use their encoder; two-tower
        models such as CLIP their text tower.  A loaded model is moved to ``device`` in place
        and run in eval mode (its own mode is restored afterwards).
    tokenizer : transformers.PreTrainedTokenizerBase, default=None
        The tokenizer, when it is not loaded from ``model``.
    pooling : {"mean", "cls", "last", "pooler"}, default="mean"
        ``"mean"``: average of the token states over the attention mask
        (sentence-transformers' default); ``"cls"``: the first token's state;
        ``"last"``: the last non-padding token (decoder-only embedding models);
        ``"pooler"``: the model's ``pooler_output``.
    normalize : bool, default=False
        L2-normalise each latent.
    max_length : int, default=None
        Truncate texts to this many tokens.  None: the tokenizer's
        ``model_max_length`` capped by the model's position embeddings.  Some
        sentence-transformers models were trained with a shorter window (256
        for all-MiniLM-L6-v2): pass it to reproduce their embeddings.
    batch_size : int, default=32
        Texts per forward pass.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    precision : {"auto", "fp32", "fp16", "bf16"}, default="auto"
        Autocast dtype on CUDA (``"auto"``: bf16 where supported, else fp16).
        The CPU always computes in float32.
    revision : str, default=None
        Hub revision (branch, tag or commit) of ``model``.
    memory : str or joblib.Memory, default=None
        Cache of the latents: a directory or a :class:`joblib.Memory`.  Each
        text's latent is stored under a key made of the model's identity and
        revision (content hash of a local directory, commit of a hub snapshot,
        weights hash of a loaded model), the parameters that change the
        output and the text itself, so repeated fits and any subset of the
        texts are served without running the model.
    verbose : int, default=0
        Show a progress bar over the batches when positive.

    See Also
    --------
    ImageEncoder, AudioEncoder, TorchEncoder, encode_to_npy

    Examples
    --------
    >>> from skfusemix.encoders import TextEncoder
    >>> encoder = TextEncoder("sentence-transformers/all-MiniLM-L6-v2", normalize=True)
    >>> Z = encoder.transform(["a photo of a cat", "a dog"])  # doctest: +SKIP
    >>> Z.shape  # doctest: +SKIP
    (2, 384)
    """

    _object_params = ("model", "tokenizer")

    def __init__(
        self,
        model="sentence-transformers/all-MiniLM-L6-v2",
        *,
        tokenizer=None,
        pooling="mean",
        normalize=False,
        max_length=None,
        batch_size=32,
        device="auto",
        precision="auto",
        revision=None,
        memory=None,
        verbose=0,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.revision = revision
        self.memory = memory
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    _parameter_constraints = {
        **BaseEncoder._parameter_constraints,
        "max_length": [None, Interval(numbers.Integral, 1, None, closed="left")],
    }

    def _check_inputs(self, X):
        return check_texts(X)

    def _load(self):
        from transformers import AutoModel, AutoTokenizer

        tokenizer = self.tokenizer
        if isinstance(self.model, str):
            model, loaded_tok = load_pretrained(
                self.model,
                self.revision,
                AutoModel.from_pretrained,
                None if tokenizer is not None else AutoTokenizer.from_pretrained,
                "text",
            )
            tokenizer = tokenizer if tokenizer is not None else loaded_tok
        elif isinstance(self.model, torch.nn.Module):
            model = self.model
            if tokenizer is None:
                source = getattr(model, "name_or_path", None)
                if not source:
                    raise ValueError(
                        f"No tokenizer for the loaded model {model_name(model)}: pass "
                        "tokenizer=AutoTokenizer.from_pretrained(...)."
                    )
                tokenizer = load_processor(
                    source, self.revision, AutoTokenizer.from_pretrained, "tokenizer"
                )
        else:
            raise TypeError(
                "model must be a Hugging Face hub id, a local directory or a loaded "
                f"torch.nn.Module; got {type(self.model).__name__}."
            )
        if not callable(tokenizer):
            raise TypeError(
                f"tokenizer must be a Hugging Face tokenizer; got {tokenizer!r}."
            )
        # padding positions are masked out, the pad id only has to be valid
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        return bundle(
            model=submodule(model, "text_model"), tokenizer=tokenizer, pad_id=pad
        )

    def _n_features_out(self):
        return hf_output_dim(self._get_loaded().model.config)

    def _max_length(self, bundle):
        if self.max_length is not None:
            return int(self.max_length)
        limits = []
        tml = getattr(bundle.tokenizer, "model_max_length", None)
        if isinstance(tml, int) and tml < 1_000_000:
            limits.append(tml)
        mpe = getattr(bundle.model.config, "max_position_embeddings", None)
        if isinstance(mpe, int):
            limits.append(mpe)
        return min(limits) if limits else None

    def _prepare(self, texts, bundle):
        max_length = self._max_length(bundle)
        names = [
            n
            for n in getattr(bundle.tokenizer, "model_input_names", ["input_ids"])
            if n != "attention_mask"
        ]
        enc = bundle.tokenizer(
            texts,
            truncation=max_length is not None,
            max_length=max_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids="token_type_ids" in names,
        )
        return {name: enc[name] for name in names if name in enc}

    def _lengths(self, prepared):
        return np.fromiter((len(ids) for ids in prepared["input_ids"]), dtype=np.intp)

    def _forward(self, bundle, prepared, idx, device):
        ids = prepared["input_ids"]
        width = max(len(ids[i]) for i in idx)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        inputs = {}
        for name, rows in prepared.items():
            fill = bundle.pad_id if name == "input_ids" else 0
            arr = np.full((len(idx), width), fill, dtype=np.int64)
            for r, i in enumerate(idx):
                arr[r, : len(rows[i])] = rows[i]
            inputs[name] = torch.from_numpy(arr).to(device)
        for r, i in enumerate(idx):
            mask[r, : len(ids[i])] = 1
        inputs["attention_mask"] = torch.from_numpy(mask).to(device)
        out = bundle.model(**inputs)
        return pool(
            out.last_hidden_state,
            self.pooling,
            mask=inputs["attention_mask"],
            pooler_output=getattr(out, "pooler_output", None),
        )


def check_texts(X):
    """Validate a collection of texts into a list of str (the input is not modified)."""
    if isinstance(X, str | bytes):
        raise TypeError(
            "Expected a list of strings, got a single string; wrap it in a list: "
            "[text]."
        )
    if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2:  # a one-column DataFrame
        if X.shape[1] != 1:
            raise ValueError(
                f"Expected a list of strings or one text column; got {X.shape[1]} columns."
            )
        X = X.iloc[:, 0]
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        elif X.ndim != 1:
            raise ValueError(
                f"Expected a 1-D collection of strings; got an array of shape {X.shape}."
            )
    try:
        texts = list(X)
    except TypeError:
        raise TypeError(
            f"Expected a list of strings; got {type(X).__name__}."
        ) from None
    if not texts:
        raise ValueError("Expected at least one text; got an empty input.")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(
                f"Expected a list of strings; item {i} is a {type(t).__name__}: {t!r:.60}."
            )
    return texts
