"""The data and device layer under the estimators: where the latents live
and how they are read and checked.

* :func:`resolve_device`: the one device resolver of the library.
* Validation of latents that are not NumPy arrays (torch tensors, memmaps
  read in chunks from their files), and the scale checks of ``fit``.
* :class:`RowReader`, :func:`scan` and :func:`gather`: bounded-memory reads
  of row ranges, ``pread`` from a memmap's file where possible.
* :func:`row_groups`: which rows are one item (identical rows), for the
  metrics; :func:`pair_groups`: which pairs are one item (identical rows
  of either side), for early stopping and multi-positive training.
* :func:`as_device_tensor` and :func:`take`: one copy of latents on a device.
"""

import hashlib
import math
import mmap
import os
import warnings

import numpy as np
import torch


def resolve_device(device):
    """Turn ``"auto"`` (or None), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a
    :class:`torch.device` into an available :class:`torch.device`.

    The one device resolver of the library: aligners, metrics and encoders
    all call it.

    Raises
    ------
    ValueError
        For an unknown device or one this machine does not have.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str | torch.device):
        raise TypeError(
            f"device must be 'auto', a device string such as 'cpu' or 'cuda:0', or a "
            f"torch.device; got {type(device).__name__}."
        )
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"Unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:<index>'."
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this "
                "machine; use device='auto' or 'cpu'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible."
            )
    elif dev.type != "cpu":
        raise ValueError(f"Unsupported device {device!r}: use 'auto', 'cpu' or 'cuda'.")
    return dev


def check_tensor(Z, name):
    """Validate a torch tensor of latents without leaving its device."""
    if Z.ndim != 2:
        raise ValueError(
            f"Expected a 2-D {name} of shape (n_samples, n_features), got shape {tuple(Z.shape)}."
        )
    if not (
        Z.dtype.is_floating_point
        or Z.dtype
        in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {Z.dtype}.")
    if Z.shape[0] == 0 or Z.shape[1] == 0:
        raise ValueError(
            f"Found array with shape {tuple(Z.shape)} for {name}: it must have at least 1 sample and 1 feature."
        )
    if Z.dtype.is_floating_point and not bool(torch.isfinite(Z).all()):
        raise ValueError(f"Input {name} contains NaN or infinity.")
    return Z.detach()


def as_device_tensor(Z, device, dtype=torch.float32):
    """One copy of validated latents on ``device`` in ``dtype``.

    Never aliases the caller's memory, so nothing the user passed can be
    modified by training.  A memmap is read from its file chunk by chunk.
    """
    if isinstance(Z, torch.Tensor):
        return Z.to(device=device, dtype=dtype, copy=True)
    if isinstance(Z, np.memmap):
        out = torch.empty(Z.shape, dtype=dtype, device=device)
        for start, rows in scan(Z):
            out[start : start + len(rows)] = rows
        return out
    return torch.tensor(np.asarray(Z), dtype=dtype, device=device)


def take(Z, rows):
    """Rows ``rows`` (sorted) of validated latents."""
    if isinstance(Z, torch.Tensor):
        return Z[torch.as_tensor(rows, device=Z.device)]
    if isinstance(Z, np.memmap):
        return gather(Z, rows)
    return Z[rows]


def dtype_bytes(Z):
    """Bytes per value of ``Z`` as it is streamed (integers as float32)."""
    if isinstance(Z, torch.Tensor):
        return Z.element_size() if Z.dtype.is_floating_point else 4
    dtype = np.dtype(Z.dtype)
    return dtype.itemsize if dtype.kind == "f" else 4


def check_out_of_core(Z, name, *, finite=True):
    """Validate a memmap without reading it into memory (a NaN check reads
    it once, in chunks, from the file)."""
    if Z.ndim != 2:
        raise ValueError(
            f"Expected a 2-D {name} of shape (n_samples, n_features), got shape {Z.shape}."
        )
    if Z.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {Z.dtype}.")
    if Z.shape[0] == 0 or Z.shape[1] == 0:
        raise ValueError(
            f"Found array with shape {Z.shape} for {name}: it must have at least 1 "
            "sample and 1 feature."
        )
    if finite and Z.dtype.kind == "f":
        for _, rows in scan(Z):
            if not bool(torch.isfinite(rows).all()):
                raise ValueError(f"Input {name} contains NaN or infinity.")
    return Z


#: Largest absolute input value accepted, and the one that draws a warning.
_OVERFLOW_SCALE, _LARGE_SCALE = 1e18, 1e4
#: Ratio of the widest to the narrowest per-feature range that draws a warning.
_RANGE_RATIO = 1e6


def check_input_scale(Z, name, chunk_rows=None, *, warn=True):
    """Refuse latents whose scale overflows float32 training, warn about
    scales that train badly, and return the per-feature mean and standard
    deviation.

    One pass over ``Z`` in row chunks (a memmap is read from its file), no
    copy of the whole matrix.  ``warn=False`` (the latents will be
    standardised) keeps only the warning about all-constant features.

    Returns
    -------
    mean, std : ndarray of shape (n_features,)
        Column statistics in float64 (``std`` is the population one).
    """
    lo, hi, mean, std = _column_stats(Z, chunk_rows)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ValueError(f"Input {name} contains NaN or infinity.")
    max_abs = float(max(np.abs(lo).max(), np.abs(hi).max()))
    if max_abs >= _OVERFLOW_SCALE:
        raise ValueError(
            f"{name} holds values up to {max_abs:.3g} in absolute value: training in "
            "float32 overflows at this scale.  Standardise the latents first (e.g. "
            "sklearn.preprocessing.StandardScaler)."
        )
    ranges = hi - lo
    advice = (
        "  Standardising the latents (standardize=True, the default) usually helps."
    )
    if not np.any(ranges > 0):
        warnings.warn(
            f"Every feature of {name} is constant: the adapters cannot tell its rows "
            "apart.",
            UserWarning,
            stacklevel=4,
        )
    elif warn and max_abs > _LARGE_SCALE:
        warnings.warn(
            f"{name} holds values up to {max_abs:.3g} in absolute value; the residual "
            "blocks of the adapters work best on inputs of order 1." + advice,
            UserWarning,
            stacklevel=4,
        )
    elif warn and ranges.max() > _RANGE_RATIO * ranges[ranges > 0].min():
        warnings.warn(
            f"The features of {name} have ranges from {ranges[ranges > 0].min():.3g} "
            f"to {ranges.max():.3g}: the narrow ones will barely be seen." + advice,
            UserWarning,
            stacklevel=4,
        )
    return mean, std


def _column_stats(Z, chunk_rows):
    """Per-feature min, max, mean and standard deviation of ``Z`` in one
    chunked pass (means and variances merged chunk by chunk, as in Chan,
    Golub and LeVeque's parallel algorithm; centred squares in the chunk's
    own dtype, sums in float64), all float64 NumPy arrays."""
    if isinstance(Z, torch.Tensor):
        step = chunk_rows or 65536
        chunks = (Z[i : i + step] for i in range(0, Z.shape[0], step))
    else:  # memmaps read from their files, other arrays sliced
        chunks = (rows for _, rows in scan(Z, chunk_rows))
    lo = hi = mean = m2 = None
    n = 0
    for chunk in chunks:
        if not chunk.dtype.is_floating_point:
            chunk = chunk.double()  # min and max are exact in any float dtype
        c_lo, c_hi = (t.double() for t in torch.aminmax(chunk, dim=0))
        c_n = chunk.shape[0]
        # sums accumulate in float64 without a float64 copy of the chunk
        c_mean = chunk.sum(dim=0, dtype=torch.float64) / c_n
        centred = chunk - c_mean.to(chunk.dtype)
        c_m2 = (centred * centred).sum(dim=0, dtype=torch.float64)
        del centred
        if mean is None:
            lo, hi, mean, m2 = c_lo, c_hi, c_mean, c_m2
        else:
            lo, hi = torch.minimum(lo, c_lo), torch.maximum(hi, c_hi)
            delta = c_mean - mean
            total = n + c_n
            mean = mean + delta * (c_n / total)
            m2 = m2 + c_m2 + delta**2 * (n * c_n / total)
        n += c_n
    std = (m2 / n).sqrt()
    return tuple(t.cpu().numpy() for t in (lo, hi, mean, std))


_NUMPY_TO_TORCH = {
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
}


class RowReader:
    """Read contiguous row ranges of a 2-D array into a buffer.

    A C-contiguous, file-backed :class:`numpy.memmap` (mode ``r``, ``r+`` or
    ``w+``) is read with ``os.preadv`` from its file: no page of the mapping
    is touched, so the resident memory stays that of the buffers.  Any other
    array-like (ndarray, memmap view with strides, CPU tensor, h5py/zarr
    dataset) is read by slicing.
    """

    def __init__(self, Z):
        self.Z = Z
        self.n, self.width = Z.shape
        if isinstance(Z, torch.Tensor):
            source = None
            floats = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
            self.dtype = Z.dtype if Z.dtype in floats else torch.float32
        else:
            source = np.dtype(getattr(Z, "dtype", np.float64))
            self.dtype = _NUMPY_TO_TORCH.get(source, torch.float32)
        self._fd, self._offset = None, 0
        layout = _file_layout(Z)
        if layout is not None and source in _NUMPY_TO_TORCH:
            path, self._offset = layout
            self._fd = os.open(path, os.O_RDONLY)
        self.row_bytes = self.width * torch.empty((), dtype=self.dtype).element_size()

    @property
    def direct(self):
        """Whether rows are read from the file with ``pread``."""
        return self._fd is not None

    def read(self, start, stop, out):
        """Copy rows ``[start, stop)`` into ``out[: stop - start]`` (a CPU
        tensor of :attr:`dtype`)."""
        rows = out[: stop - start]
        if self._fd is not None:
            view = memoryview(rows.numpy()).cast("B")
            position = self._offset + start * self.row_bytes
            done = 0
            while done < len(view):
                got = os.preadv(self._fd, [view[done:]], position + done)
                if got <= 0:
                    raise OSError(
                        f"Could not read rows {start}-{stop} of {self.Z.filename!r}: "
                        "the file is shorter than the array."
                    )
                done += got
        elif isinstance(self.Z, torch.Tensor):
            rows.copy_(self.Z[start:stop])
        else:
            rows.numpy()[...] = np.asarray(self.Z[start:stop])
        return rows

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()


def _file_layout(Z):
    """``(path, byte offset of row 0)`` of a C-contiguous, file-backed
    memmap whose file holds its current values, else None."""
    if not isinstance(Z, np.memmap) or getattr(Z, "_mmap", None) is None:
        return None
    if (
        Z.filename is None
        or Z.mode not in ("r", "r+", "w+")
        or not Z.flags.c_contiguous
    ):
        return None
    try:
        base = np.frombuffer(Z._mmap, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError):
        return None
    start = Z.offset - Z.offset % mmap.ALLOCATIONGRANULARITY
    return os.fspath(Z.filename), start + (Z.ctypes.data - base)


#: Bytes of one chunk of :func:`scan` (a few MiB: cheap, and sequential
#: enough for disks).
SCAN_BYTES = 8 * 2**20


def scan(Z, chunk_rows=None):
    """Yield ``(start, rows)`` over ``Z`` in float chunks read with
    :class:`RowReader` (bounded memory, no mapped pages kept resident);
    ``chunk_rows`` defaults to about :data:`SCAN_BYTES` per chunk."""
    reader = RowReader(Z)
    if chunk_rows is None:
        chunk_rows = max(1, SCAN_BYTES // reader.row_bytes)
    buffer = torch.empty(min(chunk_rows, reader.n), reader.width, dtype=reader.dtype)
    try:
        for start in range(0, reader.n, chunk_rows):
            stop = min(start + chunk_rows, reader.n)
            yield start, reader.read(start, stop, buffer)
    finally:
        reader.close()


def gather(Z, rows, chunk_rows=None):
    """Rows ``rows`` (sorted, unique) of ``Z`` as a float32 CPU tensor,
    read chunk by chunk."""
    rows = np.asarray(rows)
    out = torch.empty(len(rows), Z.shape[1], dtype=torch.float32)
    done = 0
    for start, block in scan(Z, chunk_rows):
        lo, hi = np.searchsorted(rows, [start, start + len(block)])
        if hi > lo:
            out[done : done + hi - lo] = block[torch.as_tensor(rows[lo:hi] - start)]
            done += hi - lo
    return out


def _projected_row_groups(Z, chunk_rows):
    projection = np.random.default_rng(0).standard_normal((Z.shape[1], 2))
    keys = np.empty((Z.shape[0], 2))
    if isinstance(Z, torch.Tensor):  # on its own device, in row chunks
        weights = torch.as_tensor(projection, device=Z.device)
        step = chunk_rows or 65536
        for start in range(0, Z.shape[0], step):
            rows = Z[start : start + step].double()
            keys[start : start + len(rows)] = (rows @ weights).cpu().numpy()
    else:
        weights = torch.from_numpy(projection)
        for start, rows in scan(Z, chunk_rows):
            keys[start : start + len(rows)] = (rows.double() @ weights).numpy()
    return np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)


#: Numeric matrices with more values than this are grouped by projections
#: (16 bytes a row) instead of a sort of their rows (a copy of the matrix).
_EXACT_GROUPING_LIMIT = 2**22


def row_groups(X, chunk_rows=None):
    """Item labels of the rows of ``X``: identical rows are one item.

    A :class:`numpy.memmap`, and any numeric matrix or tensor of more than
    ``2**22`` values, is read in chunks and its rows keyed by two random
    projections (distinct rows collide with probability ~0, and memory is
    16 bytes a row instead of a sorted copy of the rows; a tensor stays on
    its device).

    Works for numeric arrays (identical rows) and for sequences of raw inputs
    (identical strings, identical arrays such as images or waveforms).  Other
    objects (e.g. PIL images) are compared by identity.
    """
    if isinstance(X, np.memmap) or (
        isinstance(X, np.ndarray | torch.Tensor)
        and X.ndim == 2
        and (X.dtype != object if isinstance(X, np.ndarray) else True)
        and X.shape[0] * X.shape[1] > _EXACT_GROUPING_LIMIT
    ):
        return _projected_row_groups(X, chunk_rows)
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    if type(X).__module__.startswith("torch"):
        X = X.detach().cpu().numpy()
    if isinstance(X, np.ndarray) and X.dtype != object and X.ndim >= 1:
        rows = X.reshape(X.shape[0], -1)
        return np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1)
    keys = []
    for value in X:
        if isinstance(value, str):
            keys.append("s:" + value)
        elif isinstance(value, np.ndarray):
            digest = hashlib.sha1(np.ascontiguousarray(value).tobytes()).hexdigest()
            keys.append(f"a:{value.dtype}:{value.shape}:{digest}")
        else:
            keys.append(f"o:{id(value)}")
    return np.unique(np.asarray(keys), return_inverse=True)[1].reshape(-1)


def pair_groups(X, y):
    """Item codes ``0..n_items-1`` of the pairs ``(X[i], y[i])``: pairs that
    share an ``X`` row (an image and each of its captions) or a ``y`` row
    (a sentence and each of its recordings) are one item, and so, by
    transitivity, are all pairs linked through such rows.

    When no ``y`` row repeats, these are the codes of :func:`row_groups` of
    ``X`` exactly.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix._data import pair_groups
    >>> X = np.array([[0.0], [0.0], [1.0], [2.0]])  # rows 0, 1: one image
    >>> y = np.array([[5.0], [6.0], [7.0], [7.0]])  # rows 2, 3: one caption
    >>> pair_groups(X, y)
    array([0, 0, 1, 1])
    """
    gx, gy = row_groups(X), row_groups(y)
    n_x, n_y = int(gx.max()) + 1, int(gy.max()) + 1
    if n_y == len(gy):
        return gx
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    # a bipartite graph of the distinct X rows and the distinct y rows, one
    # edge per pair: its components are the items
    edges = coo_matrix(
        (np.ones(len(gx), dtype=np.int8), (gx, n_x + gy)), shape=(n_x + n_y,) * 2
    )
    _, labels = connected_components(edges, directed=False)
    return np.unique(labels[gx], return_inverse=True)[1].reshape(-1)


def join_weighted(parts, weights, dtype=None):
    """Unit-row embeddings ``parts`` of the same rows side by side, part
    ``i`` scaled by ``sqrt(weights[i])``: the cosine of two joined rows is
    ``sum_i weights[i] * cos_i``, and with weights summing to 1 the rows stay
    unit vectors.  The one place that joins aligners' spaces (an ensemble's
    members, the CCA and the anchors joined to FuseMix, and the same join
    on the training device for early stopping: torch tensors in, a tensor
    out, ``dtype`` ignored)."""
    if torch.is_tensor(parts[0]):
        return torch.cat([math.sqrt(w) * p for p, w in zip(parts, weights)], dim=1)
    return np.hstack(
        [np.sqrt(w) * np.asarray(p) for p, w in zip(parts, weights)], dtype=dtype
    )


def l2_normalize(S):
    """Rows of ``S`` (a float NumPy array) divided by their L2 norms; all-zero
    rows stay zero.  The one NumPy normaliser of the library."""
    S = np.asarray(S)
    if S.dtype.kind != "f":
        S = S.astype(np.float64)
    norms = np.linalg.norm(S, axis=1, keepdims=True)
    np.maximum(norms, np.finfo(S.dtype).tiny, out=norms)
    return S / norms
