"""Black-box encoders: any function from a batch of inputs to embeddings.

A remote embedding API, or a model served elsewhere, is reached through a
function ``fn(batch) -> (len(batch), d)``.  :class:`CallableEncoder` sends the
inputs in batches, a bounded number at a time, retries transient failures
with exponential back-off and jitter, and puts the rows back in input order.
:func:`http_embedder` is such a function for a JSON embedding API, written
with the standard library only.
"""

import concurrent.futures
import contextlib
import http.client
import json
import logging
import numbers
import random
import threading
import urllib.error
import urllib.request
from types import SimpleNamespace

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_memory
from tqdm.auto import tqdm

from .._data import l2_normalize
from ..exceptions import EncoderRequestError, TransientEncoderError
from ._base import BaseEncoder, ProbedWidthMixin

__all__ = ["CallableEncoder", "http_embedder"]

logger = logging.getLogger(__name__)

#: longest wait between two attempts, whatever the back-off or Retry-After
_MAX_DELAY = 60.0


def _is_transient_status(status):
    return status in (408, 429) or 500 <= status <= 599


def is_transient(exc):
    """Whether a failed request is worth sending again."""
    if isinstance(exc, TransientEncoderError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, urllib.error.HTTPError):
        return _is_transient_status(exc.code)
    if isinstance(exc, urllib.error.URLError):
        return isinstance(exc.reason, TimeoutError | ConnectionError)
    if isinstance(exc, http.client.IncompleteRead):  # connection lost mid-answer
        return True
    # the HTTP errors of requests, httpx and API clients carry their status
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(status, int) and _is_transient_status(status)


def _short(item, width=40):
    text = repr(item)
    return text if len(text) <= width else text[: width - 3] + "..."


class CallableEncoder(ProbedWidthMixin, BaseEncoder):
    """Encode inputs with any function that embeds a batch: a black-box encoder.

    For encoders reachable only through an API (a hosted embedding service, a
    model served on another machine).  The inputs are cut into batches of
    ``batch_size``; up to ``max_concurrency`` batches are in flight at once
    (threads); a batch that fails with a transient error is sent again
    after an exponential back-off with jitter, up to ``max_retries`` times;
    a permanent error stops the call with an
    :class:`~skfusemix.exceptions.EncoderRequestError` naming the batch and
    the cause.  The rows come back in input order, each distinct input is
    requested once per call, and with ``memory=`` never again.

    Transient errors are :class:`~skfusemix.exceptions.TransientEncoderError`,
    ``TimeoutError``, ``ConnectionError`` (refused, reset or dropped
    connections), ``http.client.IncompleteRead`` and HTTP errors with status
    408, 429 or 5xx (:class:`urllib.error.HTTPError`, or any exception with
    a ``status_code``, as raised by ``requests``, ``httpx`` and most API
    clients).  Everything else is permanent, and so is an output that is not
    a finite ``(len(batch), d)`` numeric array with the same ``d`` for all
    batches.  A plain ``TypeError`` or ``ValueError`` raised by ``fn``
    (inputs it cannot take) is raised again as such, its message naming the
    batch.

    Parameters
    ----------
    fn : callable, default=None
        ``fn(batch)`` takes a list of inputs (up to ``batch_size``) and
        returns their embeddings as an array-like of shape
        ``(len(batch), d)`` (a NumPy array, a tensor, a list of lists), row
        ``i`` for ``batch[i]``.  Called from up to ``max_concurrency``
        threads at once, so it must be thread-safe.  With ``timeout`` set it
        is called as ``fn(batch, timeout=timeout)``.  Required: None raises
        a ValueError at fit or transform.
    identity : str, default=None
        What makes the latents: for an API, its URL, the model name and its
        version (e.g. ``"https://api.example.com/v1/embeddings
        text-embedding-3-small"``).  It is the cache key of ``memory=`` and
        the ``model`` recorded by :func:`encode_to_npy` (see
        :func:`latent_metadata`); change it whenever the service may return
        different embeddings.  The function itself is never hashed or
        pickled for this: a remote model cannot be fingerprinted.  None
        takes ``fn.identity`` (set by :func:`http_embedder`), and raises a
        ValueError when ``fn`` has none.
    batch_size : int, default=32
        Inputs per request.
    max_concurrency : int, default=4
        Most requests in flight at once.
    max_retries : int, default=5
        Attempts after the first one for a batch failing transiently; 0
        never retries.
    backoff : float, default=1.0
        Seconds before the first retry; each later retry waits twice as long
        as the one before, times a random factor in [0.5, 1) (jitter), at
        most 60 s.  A ``retry_after`` on the error (an HTTP
        ``Retry-After``) lengthens the wait.
    timeout : float, default=None
        Seconds a request may take, passed on as ``fn(batch, timeout=...)``:
        ``fn`` enforces it (a running Python call cannot be interrupted), and
        a ``TimeoutError`` it raises is retried.  None calls ``fn(batch)``.
    normalize : bool, default=False
        L2-normalise each latent.
    memory : str or joblib.Memory, default=None
        Per-input cache of the latents, keyed by ``identity``, ``normalize``
        and the input.  Batches finished before a failure are cached too, so
        a rerun requests only what is left.
    verbose : int, default=0
        Show a progress bar over the batches when positive.

    Attributes
    ----------
    n_features_out_ : int
        Width of the latents, set by :meth:`fit` (which encodes one input).

    See Also
    --------
    http_embedder : The function for a JSON embedding API over HTTP.
    encode_to_npy : Resumable encoding of a large dataset into a ``.npy`` file.
    skfusemix.exceptions.TransientEncoderError : Raise it to ask for a retry.

    Examples
    --------
    >>> from skfusemix.encoders import CallableEncoder
    >>> def embed(texts):  # stands for a request to an embedding service
    ...     return [[len(t), t.count("a"), t.count(" ")] for t in texts]
    >>> encoder = CallableEncoder(embed, identity="toy-embedder-v1", batch_size=2)
    >>> encoder.fit_transform(["a cat", "a dog", "banana"])
    array([[5., 2., 1.],
           [5., 1., 1.],
           [6., 3., 0.]], dtype=float32)
    >>> encoder.get_feature_names_out()
    array(['callableencoder0', 'callableencoder1', 'callableencoder2'],
          dtype=object)
    """

    _object_params = ("fn",)
    _parameter_constraints = {
        "fn": [None, callable],
        "identity": [None, str],
        "batch_size": BaseEncoder._parameter_constraints["batch_size"],
        "max_concurrency": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_retries": [Interval(numbers.Integral, 0, None, closed="left")],
        "backoff": [Interval(numbers.Real, 0, None, closed="left")],
        "timeout": [None, Interval(numbers.Real, 0, None, closed="neither")],
        "normalize": ["boolean"],
        "memory": BaseEncoder._parameter_constraints["memory"],
        "verbose": ["verbose"],
    }
    #: parameters left out of the metadata: ``identity`` stands for ``fn``
    _metadata_exclude = (
        "fn",
        "identity",
        "max_concurrency",
        "max_retries",
        "backoff",
        "timeout",
    )

    def __init__(
        self,
        fn=None,
        *,
        identity=None,
        batch_size=32,
        max_concurrency=4,
        max_retries=5,
        backoff=1.0,
        timeout=None,
        normalize=False,
        memory=None,
        verbose=0,
    ):
        self.fn = fn
        self.identity = identity
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout
        self.normalize = normalize
        self.memory = memory
        self.verbose = verbose

    # --------------------------------------------------------------- validation
    def _check_params(self):
        self._validate_params()
        check_memory(self.memory)
        if self.fn is None:
            raise ValueError(
                "CallableEncoder needs fn=: a function mapping a list of inputs to "
                "their embeddings, e.g. http_embedder(url, model=...)."
            )
        self._latent_identity()
        return self._resolve_device()

    def _latent_identity(self):
        identity = self.identity
        if identity is None:
            identity = getattr(self.fn, "identity", None)
        if not isinstance(identity, str) or not identity.strip():
            raise ValueError(
                "CallableEncoder needs identity=: a non-empty string naming what "
                "makes the latents (for an API: its URL, model name and version). "
                "It keys the cache and is recorded with the latents; fn has no "
                f"'identity' attribute to take it from (got {identity!r})."
            )
        return identity

    def _resolve_device(self):
        return torch.device("cpu")

    def _cache_description(self, device):
        return {
            "encoder": f"{type(self).__module__}.{type(self).__qualname__}",
            "identity": self._latent_identity(),
            "normalize": bool(self.normalize),
        }

    # ----------------------------------------------------------------- encoding
    def _encode_uncached(self, items, device):
        n, size = len(items), self.batch_size
        starts = list(range(0, n, size))
        stop = threading.Event()
        rng = random.Random()
        done = np.zeros(n, dtype=bool)
        futures, placed = {}, set()
        state = SimpleNamespace(out=None)

        def place(future):
            start, label = futures[future]
            Z = future.result()
            if Z is None:  # stopped by another batch's failure
                return
            if state.out is None:
                state.out = np.empty((n, Z.shape[1]), dtype=np.float32)
            elif Z.shape[1] != state.out.shape[1]:
                raise EncoderRequestError(
                    f"The encoder's function returned {Z.shape[1]} features for "
                    f"{label}, {state.out.shape[1]} for earlier batches."
                )
            state.out[start : start + len(Z)] = Z
            done[start : start + len(Z)] = True
            placed.add(future)

        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=min(self.max_concurrency, len(starts)),
            thread_name_prefix="skfusemix-encoder",
        )
        try:
            for b, start in enumerate(starts):
                batch = items[start : start + size]
                label = (
                    f"batch {b + 1} of {len(starts)} ({len(batch)} inputs, first "
                    f"{_short(batch[0])})"
                )
                future = pool.submit(self._run_batch, batch, label, stop, rng)
                futures[future] = (start, label)
            for future in tqdm(
                concurrent.futures.as_completed(futures),
                total=len(futures),
                disable=not self.verbose,
                desc=type(self).__name__,
                unit="batch",
                leave=False,
            ):
                place(future)
        except BaseException as exc:
            stop.set()  # wake up the retries waiting out their back-off
            pool.shutdown(wait=True, cancel_futures=True)
            # keep the batches that finished meanwhile: the caller caches them
            for future in futures:
                if future in placed or future.cancelled() or future.exception():
                    continue
                with contextlib.suppress(EncoderRequestError):
                    place(future)
            if placed:
                with contextlib.suppress(AttributeError):
                    exc.encoded = (done, state.out)
            raise
        pool.shutdown(wait=True)
        return state.out

    def _run_batch(self, batch, label, stop, rng):
        """Encode one batch, retrying transient failures; runs in a thread."""
        for attempt in range(self.max_retries + 1):
            if stop.is_set():
                return None
            try:
                if self.timeout is None:
                    result = self.fn(batch)
                else:
                    result = self.fn(batch, timeout=self.timeout)
            except Exception as exc:
                cause = f"{type(exc).__name__}: {exc}"
                if type(exc) in (TypeError, ValueError):  # inputs fn cannot take
                    raise type(exc)(
                        f"The encoder's function failed on {label}: {exc}"
                    ) from exc
                if not is_transient(exc):
                    raise EncoderRequestError(
                        f"The encoder's function failed on {label} with a permanent "
                        f"error (not retried): {cause}"
                    ) from exc
                if attempt == self.max_retries:
                    raise EncoderRequestError(
                        f"The encoder's function failed on {label} {attempt + 1} "
                        f"times with transient errors; the last: {cause}. Raise "
                        "max_retries or backoff to wait longer."
                    ) from exc
                delay = self._delay(attempt, exc, rng)
                logger.warning(
                    "%s on %s; retry %d of %d in %.2f s",
                    cause,
                    label,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                if stop.wait(delay):
                    return None
                continue
            return self._check_output(result, len(batch), label)
        return None  # pragma: no cover - the loop always returns or raises

    def _delay(self, attempt, exc, rng):
        delay = min(self.backoff * 2.0**attempt, _MAX_DELAY) * rng.uniform(0.5, 1.0)
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, numbers.Real) and retry_after > delay:
            delay = min(float(retry_after), _MAX_DELAY)
        return delay

    def _check_output(self, result, expected, label):
        if torch.is_tensor(result):
            result = result.detach().cpu().float().numpy()
        try:
            Z = np.asarray(result)
        except (TypeError, ValueError) as exc:
            raise EncoderRequestError(
                f"The encoder's function returned a {type(result).__name__} that is "
                f"not an array for {label}: {exc}"
            ) from None
        if Z.dtype.kind not in "biuf":
            raise EncoderRequestError(
                f"The encoder's function returned {Z.dtype} values for {label}; "
                "expected numbers."
            )
        if Z.ndim != 2 or Z.shape[0] != expected or Z.shape[1] == 0:
            raise EncoderRequestError(
                f"The encoder's function returned shape {Z.shape} for {label}; "
                f"expected ({expected}, n_features)."
            )
        with np.errstate(over="ignore"):  # too large for float32: inf, caught below
            Z = Z.astype(np.float32)
        bad = ~np.isfinite(Z).all(axis=1)
        if bad.any():
            raise EncoderRequestError(
                f"The encoder's function returned NaN or infinite values (or values "
                f"too large for float32) in {int(bad.sum())} rows of {label}, the "
                f"first at row {int(np.flatnonzero(bad)[0])} of the batch."
            )
        if self.normalize:
            Z = l2_normalize(Z).astype(np.float32, copy=False)
        return Z


class _JSONEmbeddingClient:
    """``fn(batch)`` for :class:`CallableEncoder`, posting JSON over HTTP.

    A plain object (no open connection, no lambda), so an encoder holding it
    pickles and travels to worker processes.
    """

    def __init__(self, url, model, headers, timeout):
        self.url = url
        self.model = model
        self.headers = headers
        self.timeout = timeout

    @property
    def identity(self):
        return self.url if self.model is None else f"{self.url} model={self.model}"

    def __repr__(self):
        # header values may hold credentials: never print them
        return (
            f"http_embedder({self.url!r}, model={self.model!r}, "
            f"headers={sorted(self.headers)!r}, timeout={self.timeout!r})"
        )

    def __call__(self, inputs, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        body = {"input": [_jsonable(x) for x in inputs]}
        if self.model is not None:
            body["model"] = self.model
        try:
            data = json.dumps(body).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise TypeError(f"The inputs cannot be sent as JSON: {exc}") from None
        headers = {"Content-Type": "application/json", **self.headers}
        request = urllib.request.Request(
            self.url, data=data, headers=headers, method="POST"
        )
        where = f"POST {self.url}"
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = _excerpt(exc.read() if exc.fp is not None else b"")
            message = f"{where}: HTTP {exc.code} {exc.reason}: {detail}"
            if _is_transient_status(exc.code):
                raise TransientEncoderError(
                    message, retry_after=_retry_after(exc.headers)
                ) from exc
            raise EncoderRequestError(message) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError | ConnectionError):
                raise TransientEncoderError(f"{where}: {exc.reason}") from exc
            raise EncoderRequestError(f"{where}: {exc.reason}") from exc
        except TimeoutError as exc:
            raise TransientEncoderError(
                f"{where}: no answer within {timeout} s"
            ) from exc
        except (ConnectionError, http.client.HTTPException) as exc:
            raise TransientEncoderError(
                f"{where}: connection lost ({type(exc).__name__}: {exc})"
            ) from exc
        return _parse_embeddings(raw, len(inputs), where)


def _jsonable(x):
    if isinstance(x, np.ndarray | np.generic):
        return x.tolist()
    return x


def _excerpt(raw, width=200):
    text = " ".join(raw.decode("utf-8", "replace").split()) if raw else ""
    return (text[:width] + "...") if len(text) > width else (text or "(no body)")


def _retry_after(headers):
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: wait the usual back-off
        return None


def _parse_embeddings(raw, n, where):
    try:
        payload = json.loads(raw)
    except ValueError:
        raise EncoderRequestError(
            f"{where}: the answer is not JSON: {_excerpt(raw)}"
        ) from None
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise EncoderRequestError(
            f"{where}: expected a JSON object with a 'data' list of "
            f'{{"index": i, "embedding": [...]}}; got {_excerpt(raw)}'
        )
    if len(data) != n:
        raise EncoderRequestError(
            f"{where}: {len(data)} embeddings in the answer for {n} inputs."
        )
    indices = [d.get("index", i) for i, d in enumerate(data)]
    if sorted(indices) != list(range(n)):
        raise EncoderRequestError(
            f"{where}: the answer's indices are not 0..{n - 1} once each: {indices}."
        )
    rows = [None] * n
    for i, d in zip(indices, data, strict=True):
        rows[i] = d.get("embedding")
    widths = {len(r) if isinstance(r, list) else None for r in rows}
    if len(widths) != 1 or None in widths:
        raise EncoderRequestError(
            f"{where}: the embeddings are not lists of one common length."
        )
    return np.asarray(rows, dtype=np.float64)


def http_embedder(url, *, model=None, headers=None, timeout=30.0):
    """A function embedding a batch through a JSON embedding API over HTTP.

    For :class:`CallableEncoder`.  Each call posts ``{"input": [...],
    "model": model}`` to ``url`` and reads back the OpenAI-style answer
    ``{"data": [{"index": i, "embedding": [...]}, ...]}``, putting the
    embeddings in the order of ``index``.  Uses only the standard library
    (:mod:`urllib.request`).  HTTP 408, 429 and 5xx answers, time-outs and
    refused, reset or dropped connections raise
    :class:`~skfusemix.exceptions.TransientEncoderError` (retried by the
    encoder, honouring ``Retry-After``); other HTTP errors and malformed
    answers raise :class:`~skfusemix.exceptions.EncoderRequestError`.

    Parameters
    ----------
    url : str
        The endpoint, ``http://`` or ``https://`` (e.g.
        ``"https://api.openai.com/v1/embeddings"``).
    model : str, default=None
        Sent as ``"model"``; left out of the request when None.
    headers : dict of str to str, default=None
        Extra request headers, e.g. ``{"Authorization": "Bearer ..."}``.
        They stay out of the identity and of the function's repr, but an
        encoder pickled with this function holds them.
    timeout : float, default=30.0
        Seconds to wait for the connection and for each read of the answer;
        ``CallableEncoder(timeout=...)`` overrides it.

    Returns
    -------
    fn : callable
        ``fn(inputs, timeout=None)`` returning a float64 array of shape
        ``(len(inputs), d)``; its ``identity`` attribute is ``"<url>
        model=<model>"`` (``"<url>"`` without a model), which
        :class:`CallableEncoder` records with the latents unless given
        another ``identity=``.  Picklable.

    See Also
    --------
    CallableEncoder : Batches, concurrency, retries and caching around it.

    Examples
    --------
    >>> from skfusemix.encoders import CallableEncoder, http_embedder, latent_metadata
    >>> embed = http_embedder("http://127.0.0.1:8080/v1/embeddings", model="bge-small")
    >>> embed.identity
    'http://127.0.0.1:8080/v1/embeddings model=bge-small'
    >>> encoder = CallableEncoder(embed, batch_size=64, max_concurrency=8)
    >>> latent_metadata(encoder)["model"]
    'http://127.0.0.1:8080/v1/embeddings model=bge-small'
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"url must be an http:// or https:// URL; got {url!r}.")
    if model is not None and not isinstance(model, str):
        raise TypeError(f"model must be a string or None; got {model!r}.")
    headers = {} if headers is None else dict(headers)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise TypeError("headers must map strings to strings.")
    if (
        not isinstance(timeout, numbers.Real)
        or isinstance(timeout, bool)
        or not timeout > 0
    ):
        raise ValueError(f"timeout must be a positive number; got {timeout!r}.")
    return _JSONEmbeddingClient(url, model, headers, float(timeout))
