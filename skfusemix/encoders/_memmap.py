"""Out-of-core encoding into a resumable ``.npy`` file with a metadata sidecar."""

import itertools
import json
import logging
import os

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator

from .._io import write_json
from ._distributed import encode_shards
from ._fingerprint import hash_item
from ._loading import model_name

__all__ = ["LatentFile", "encode_to_npy", "read_latent_metadata", "latent_metadata"]

logger = logging.getLogger(__name__)

_FORMAT = "skfusemix-latents"
_VERSION = 1
# parameters that describe how latents were made (others: speed or caching only)
_RUN_PARAMS = ("memory", "verbose", "batch_size", "device", "n_threads")


def _metadata_path(path):
    return os.fspath(path) + ".json"


def _progress_path(path):
    return os.fspath(path) + ".progress.json"


def latent_metadata(encoder):
    """What identifies the latents an encoder makes: its class, model and parameters.

    Parameters
    ----------
    encoder : estimator
        An encoder of :mod:`skfusemix.encoders` (or any transformer).

    Returns
    -------
    metadata : dict
        ``{"encoder": ..., "model": ..., "params": {...}}`` with JSON values;
        loaded objects are described by their class and name.

    See Also
    --------
    encode_to_npy : Writes this metadata beside the latents it encodes.

    Examples
    --------
    >>> from skfusemix.encoders import TextEncoder, latent_metadata
    >>> meta = latent_metadata(TextEncoder("sentence-transformers/all-MiniLM-L6-v2"))
    >>> meta["encoder"], meta["model"], meta["params"]["pooling"]
    ('TextEncoder', 'sentence-transformers/all-MiniLM-L6-v2', 'mean')
    """
    # an encoder may name more parameters that leave the latents unchanged
    # (``_metadata_exclude``) and describe its model itself (``_latent_identity``)
    skip = set(_RUN_PARAMS) | set(getattr(encoder, "_metadata_exclude", ()))
    params = {}
    for name, value in sorted(encoder.get_params(deep=False).items()):
        if name in skip:
            continue
        params[name] = _describe(value)
    if hasattr(encoder, "_latent_identity"):
        model = encoder._latent_identity()
    else:
        model = getattr(encoder, "model", getattr(encoder, "module", None))
    return {
        "encoder": type(encoder).__name__,
        "model": _describe(model),
        "params": params,
    }


def _describe(value):
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(
        v is None or isinstance(v, str | bool | int | float) for v in value
    ):
        return list(value)
    if isinstance(value, BaseEstimator):
        return type(value).__name__
    try:
        return model_name(value)
    except Exception:  # pragma: no cover - defensive
        return type(value).__qualname__


def read_latent_metadata(path, *, expected_encoder=None):
    """Read the metadata sidecar of a latent file written by :func:`encode_to_npy`.

    Parameters
    ----------
    path : str or path-like
        The ``.npy`` file (its sidecar is ``<path>.json``).
    expected_encoder : estimator, default=None
        When given, check that the file was written completely by an encoder
        with the same class, model and output-changing parameters, and raise a
        ValueError naming the differences otherwise.

    Returns
    -------
    metadata : dict
        ``encoder``, ``model``, ``params`` (pooling, normalize, ...),
        ``dtype``, ``shape``, ``n_samples``, ``complete`` and the library
        ``version``.

    Examples
    --------
    >>> import numpy as np, torch, tempfile, os
    >>> from skfusemix.encoders import TorchEncoder, encode_to_npy, read_latent_metadata
    >>> encoder = TorchEncoder(torch.nn.Linear(3, 2), pooling=None)
    >>> path = os.path.join(tempfile.mkdtemp(), "latents.npy")
    >>> Z = encode_to_npy(encoder, np.ones((10, 3)), path, chunk_size=4)
    >>> meta = read_latent_metadata(path, expected_encoder=encoder)
    >>> meta["shape"], meta["dtype"], meta["complete"]
    ([10, 2], 'float32', True)
    """
    meta_path = _metadata_path(path)
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"No metadata sidecar {meta_path!r}: {os.fspath(path)!r} was not written by "
            "encode_to_npy."
        ) from None
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{meta_path!r} is not a skfusemix latent metadata file.")
    if expected_encoder is not None:
        expected = json.loads(json.dumps(latent_metadata(expected_encoder)))
        diffs = _differences(expected, {k: meta.get(k) for k in expected})
        if diffs:
            raise ValueError(
                f"{os.fspath(path)!r} was not encoded by the expected encoder: "
                + "; ".join(diffs)
            )
        if not meta.get("complete"):
            raise ValueError(
                f"{os.fspath(path)!r} is incomplete ({meta.get('n_done', 0)} of "
                f"{meta['n_samples']} rows); rerun encode_to_npy to finish it."
            )
    return meta


def _differences(expected, found, prefix=""):
    diffs = []
    for key in sorted(set(expected) | set(found)):
        a, b = expected.get(key), found.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _differences(a, b, prefix + key + ".")
        elif a != b:
            diffs.append(f"{prefix}{key} is {b!r} in the file, expected {a!r}")
    return diffs


def _chunks(X, n, chunk_size, start, skip=()):
    """Yield ``(begin, items)`` chunks of X from row ``start``, leaving out
    the chunks whose index (``begin // chunk_size``) is in ``skip``."""
    if hasattr(X, "__getitem__") and not isinstance(X, dict):
        for begin in range(start, n, chunk_size):
            if begin // chunk_size not in skip:
                yield begin, X[begin : begin + chunk_size]
    else:
        it = iter(X)
        for _ in itertools.islice(it, start):  # consume what is already encoded
            pass
        for begin in range(start, n, chunk_size):
            chunk = list(itertools.islice(it, chunk_size))
            if begin // chunk_size not in skip:
                yield begin, chunk


def _checked_chunks(X, n, chunk_size, start, skip):
    for begin, chunk in _chunks(X, n, chunk_size, start, skip):
        expected = min(chunk_size, n - begin)
        if len(chunk) != expected:
            raise ValueError(
                f"X yielded {len(chunk)} inputs at row {begin}, expected {expected}: "
                "its length does not match n_samples."
            )
        yield begin, chunk


class _Progress:
    """The progress sidecar: ``n_done`` rows done from the start, plus the
    indices of the chunks done beyond them (``chunks_done``, present only
    when shards finished out of order)."""

    def __init__(self, path, n, chunk_size, n_done=0, chunks_done=()):
        self.path, self.n, self.chunk_size = path, n, chunk_size
        self.n_done, self.done = n_done, set(chunks_done)

    def add(self, begin):
        self.done.add(begin // self.chunk_size)
        while self.n_done < self.n and self.n_done // self.chunk_size in self.done:
            self.done.discard(self.n_done // self.chunk_size)
            self.n_done = min(self.n_done + self.chunk_size, self.n)
        state = {"n_done": self.n_done}
        if self.done:
            state["chunks_done"] = sorted(self.done)
        write_json(self.path, state, sync=True)


def _first_chunk_digest(X, n, chunk_size):
    _, chunk = next(_chunks(X, n, chunk_size, 0))
    h = hash_item(b"".join(hash_item(x) for x in chunk))
    return h.hex()


def encode_to_npy(
    encoder, X, path, *, chunk_size=1024, n_samples=None, overwrite=False, n_jobs=None
):
    """Encode a dataset larger than memory into a ``.npy`` file, resumably.

    Inputs are encoded ``chunk_size`` at a time with ``encoder.transform`` and
    written into ``path`` (opened with :func:`numpy.lib.format.open_memmap`).
    After each chunk is flushed to disk, a progress sidecar
    ``<path>.progress.json`` records the rows done; rerunning the same call
    after an interruption continues from there and produces a file
    byte-identical to an uninterrupted run.  A JSON sidecar ``<path>.json``
    records the encoder, model, output-changing parameters, dtype and shape;
    read it back with :func:`read_latent_metadata`.

    With ``n_jobs`` other than 1 the chunks are *shards* encoded by joblib
    workers: processes of this machine by default, the workers of a Dask or
    Ray cluster inside ``joblib.parallel_config(backend="dask")`` or
    ``backend="ray"`` -- the same switch that runs a scikit-learn search on a
    cluster.  Each worker process loads the encoder once and encodes on its
    own device (``device="auto"``: its GPU when it sees one); the driver
    writes every shard to its rows of ``path`` as it arrives and records it
    in the progress sidecar, so a killed worker or a killed driver loses at
    most the shards in flight and the rerun encodes only the others.  The
    result is byte-identical to a run in one process.  Pass raw inputs the
    workers can read themselves (file paths on storage they share, texts),
    and give the encoder a ``memory=`` folder on that storage to share its
    per-item cache between workers (an item repeated in two shards is then
    served from the cache in the second, with the value of the first
    shard's batch: equal to float rounding, not always byte for byte, in
    one process as on a cluster).

    Parameters
    ----------
    encoder : transformer
        An encoder of :mod:`skfusemix.encoders` (or any transformer returning
        2-D float arrays).
    X : sequence or iterable
        The raw inputs.  A sequence supporting ``len`` and slicing (a list of
        file paths, a lazy dataset) is read chunk by chunk; a plain iterable
        (a generator) needs ``n_samples`` and is consumed from the start when
        resuming.
    path : str or path-like
        The ``.npy`` file to write.
    chunk_size : int, default=1024
        Inputs per chunk (and per progress update).
    n_samples : int, default=None
        Number of inputs when ``X`` has no ``len``.
    overwrite : bool, default=False
        Start afresh even if ``path`` holds a finished or resumable encoding.
        Without it, an existing file from another encoder or dataset raises a
        FileExistsError.
    n_jobs : int, default=None
        Number of shards encoded at once.  ``None`` means 1 (in this
        process) unless in a :func:`joblib.parallel_config` context; ``-1``
        means all workers (with Ray's backend, pass ``-1``: its default is
        1).  Chunks are encoded in this process whenever it resolves to 1.

    Returns
    -------
    Z : numpy.memmap of shape (n_samples, n_features_out), dtype float32
        The latents, opened read-only.

    Examples
    --------
    >>> import numpy as np, torch, tempfile, os
    >>> from skfusemix.encoders import TorchEncoder, encode_to_npy
    >>> encoder = TorchEncoder(torch.nn.Linear(3, 2), pooling=None)
    >>> path = os.path.join(tempfile.mkdtemp(), "latents.npy")
    >>> encode_to_npy(encoder, np.ones((10, 3)), path, chunk_size=4).shape
    (10, 2)
    """
    if not isinstance(chunk_size, int | np.integer) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}.")
    if n_samples is None:
        if not hasattr(X, "__len__"):
            raise TypeError(
                "X has no len(); pass n_samples= for a generator or other iterable."
            )
        n_samples = len(X)
    elif hasattr(X, "__len__") and len(X) != n_samples:
        raise ValueError(f"n_samples={n_samples} but len(X) is {len(X)}.")
    n = int(n_samples)
    if n < 1:
        raise ValueError("Expected at least one input; got an empty input.")
    path = os.fspath(path)
    meta_path, progress_path = _metadata_path(path), _progress_path(path)
    identity = json.loads(json.dumps(latent_metadata(encoder)))
    first_digest = None
    if hasattr(X, "__getitem__") and not isinstance(X, dict):
        first_digest = _first_chunk_digest(X, n, chunk_size)
    reusable = None
    if not overwrite:
        reusable = _can_reuse(path, identity, n, chunk_size, first_digest)
        if reusable is None and os.path.exists(path):
            raise FileExistsError(
                f"{path!r} exists and is not an encoding of these inputs with this "
                "encoder and chunk_size; remove it or pass overwrite=True."
            )
    if reusable is not None and reusable.get("complete"):
        logger.info("%s is already complete", path)
        return np.load(path, mmap_mode="r")

    progress = _Progress(progress_path, n, chunk_size)
    out = None
    if reusable is not None:
        progress = _Progress(
            progress_path, n, chunk_size, reusable["n_done"], reusable["chunks_done"]
        )
        out = np.lib.format.open_memmap(path, mode="r+")
        logger.info(
            "Resuming %s: %d of %d rows done",
            path,
            progress.n_done + chunk_size * len(progress.done),
            n,
        )
    else:
        for stale in (path, meta_path, progress_path):
            if os.path.exists(stale):
                os.remove(stale)

    meta = dict(identity)
    meta.update(
        format=_FORMAT, version=_VERSION, n_samples=n, chunk_size=int(chunk_size)
    )
    try:
        from .._version import __version__

        meta["skfusemix_version"] = __version__
    except ImportError:  # pragma: no cover
        pass
    shards = _checked_chunks(X, n, chunk_size, progress.n_done, set(progress.done))
    if effective_n_jobs(n_jobs) == 1:
        results = ((begin, np.asarray(encoder.transform(c))) for begin, c in shards)
    else:
        results = encode_shards(encoder, shards, n_jobs)
    for begin, Z in results:
        expected = min(chunk_size, n - begin)
        if Z.ndim != 2 or Z.shape[0] != expected:
            raise ValueError(
                f"The encoder returned shape {Z.shape} for {expected} inputs."
            )
        if out is None:
            meta.update(dtype="float32", shape=[n, int(Z.shape[1])], complete=False)
            meta["first_chunk"] = first_digest
            write_json(meta_path, meta, sync=True)
            out = np.lib.format.open_memmap(
                path, mode="w+", dtype=np.float32, shape=(n, Z.shape[1])
            )
        elif Z.shape[1] != out.shape[1]:
            raise ValueError(
                f"The encoder returned {Z.shape[1]} features, the file holds "
                f"{out.shape[1]}."
            )
        out[begin : begin + expected] = Z
        out.flush()
        progress.add(begin)
    del out
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    meta["complete"] = True
    write_json(meta_path, meta, sync=True)
    if os.path.exists(progress_path):
        os.remove(progress_path)
    return np.load(path, mmap_mode="r")


def _can_reuse(path, identity, n, chunk_size, first_digest):
    """The sidecars of a finished or resumable encoding matching this call, or None."""
    meta_path, progress_path = _metadata_path(path), _progress_path(path)
    if not (os.path.exists(path) and os.path.exists(meta_path)):
        return None
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    same = (
        meta.get("format") == _FORMAT
        and all(meta.get(k) == v for k, v in identity.items())
        and meta.get("n_samples") == n
        and meta.get("chunk_size") == chunk_size
        and meta.get("first_chunk") == first_digest
    )
    if not same:
        return None
    if meta.get("complete"):
        return meta
    try:
        with open(progress_path, encoding="utf-8") as f:
            progress = json.load(f)
        n_done = int(progress.get("n_done", 0))
        chunks_done = [int(k) for k in progress.get("chunks_done", ())]
    except (OSError, ValueError, TypeError, AttributeError):
        n_done, chunks_done = 0, []
    n_chunks = -(-n // chunk_size)
    valid = 0 <= n_done <= n and (n_done % chunk_size == 0 or n_done == n)
    meta["n_done"] = n_done if valid else 0
    meta["chunks_done"] = [k for k in chunks_done if 0 <= k < n_chunks]
    return meta


class LatentFile:
    """A ``.npy`` file of latents that pickles as its path, for cluster searches.

    A scikit-learn search on a cluster (``joblib.parallel_config(backend=
    "dask")`` or ``"ray"``) sends the training data with every candidate
    fit; an array or memmap travels as its bytes each time (Ray), or once per
    search (Dask scatters large arguments).  A ``LatentFile`` travels as its
    path: each worker opens the file read-only as a memmap and reads only the
    rows of its folds, so the latents are never shipped, only shared.  The
    file must be on storage every worker sees at the same path.

    Indexing returns NumPy arrays (basic slices are memmap views, row
    indices are copies); ``numpy.asarray`` gives a view of the whole file.

    Parameters
    ----------
    path : str or path-like
        A 2-D ``.npy`` file, e.g. written by :func:`encode_to_npy`.

    Attributes
    ----------
    path : str
        The absolute path of the file.
    shape : tuple of int
        ``(n_samples, n_features)``.
    dtype : numpy.dtype
        The dtype of the file.

    See Also
    --------
    encode_to_npy : Writes latent files, resumably and on clusters.

    Examples
    --------
    >>> import numpy as np, os, pickle, tempfile
    >>> from skfusemix.encoders import LatentFile
    >>> path = os.path.join(tempfile.mkdtemp(), "z.npy")
    >>> np.save(path, np.arange(20000, dtype=np.float32).reshape(1000, 20))
    >>> Z = LatentFile(path)
    >>> Z.shape, len(pickle.dumps(Z)) < 1000
    ((1000, 20), True)
    >>> pickle.loads(pickle.dumps(Z))[[2, 0]][:, 0]
    array([40.,  0.], dtype=float32)
    """

    def __init__(self, path):
        self.path = os.path.abspath(os.fspath(path))
        self._open()

    def _open(self):
        self._array = np.load(self.path, mmap_mode="r")
        if self._array.ndim != 2:
            raise ValueError(
                f"{self.path!r} holds an array of shape {self._array.shape}; "
                "expected 2-D latents (n_samples, n_features)."
            )

    shape = property(lambda self: self._array.shape)
    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: 2)
    nbytes = property(lambda self: self._array.nbytes)

    def __len__(self):
        return self._array.shape[0]

    def __getitem__(self, key):
        return self._array[key]

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self._array, dtype=dtype)
        return np.asarray(self._array, dtype=dtype)

    def __getstate__(self):
        return {"path": self.path, "shape": self.shape, "dtype": self.dtype.str}

    def __setstate__(self, state):
        self.path = state["path"]
        self._open()
        if self.shape != tuple(state["shape"]) or self.dtype.str != state["dtype"]:
            raise ValueError(
                f"{self.path!r} changed since it was sent: it holds "
                f"{self.shape} {self.dtype}, the sender saw {tuple(state['shape'])} "
                f"{state['dtype']}."
            )

    def __repr__(self):
        return f"LatentFile({self.path!r}, shape={self.shape}, dtype={self.dtype})"
