"""Where the training batches come from: device-resident latents, or latents
streamed from arrays larger than the memory budget.

Both sources yield, for one epoch, ``n // rows_per_step`` triples
``(zx, zy, g)``: float32 row blocks on the training device and the int64
item codes of those rows (rows sharing a code are positives of each other),
or ``g = None`` when the source has no codes;
:func:`skfusemix.engine._loop.train` does not know which source it is fed.

* :class:`DeviceBatches` holds ``Zx`` and ``Zy`` on the device (optionally in
  a half-precision ``storage_dtype``), draws a device-side permutation per
  epoch and gathers each batch by index, upcasting it to float32.
* :class:`StreamBatches` reads the arrays in large contiguous chunks, in a
  shuffled chunk order that changes every epoch, on a background thread
  (into pinned buffers on CUDA, copied without blocking), permutes the rows
  within a *window* of chunks on the device, and carries a window's
  leftover rows into the next one so an epoch has exactly as many steps as
  the in-memory path.  Memory stays bounded by a few windows.  A
  C-contiguous :class:`numpy.memmap` is read with ``pread`` from its file,
  so the mapping's pages never count in the process' resident memory.
"""

import queue
import threading

import numpy as np
import torch

from .._data import RowReader
from ._distributed import shard_rows


def _check_groups(groups, n):
    """Item codes as int64 (numpy or torch as given), one per row."""
    if groups is None:
        return None
    if isinstance(groups, torch.Tensor):
        codes = groups
        integral = not (
            codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool
        )
    else:
        codes = np.asarray(groups)
        integral = codes.dtype.kind in "iu"
    if not integral or codes.ndim != 1 or codes.shape[0] != n:
        raise ValueError(
            f"groups must hold one integer code per row ({n} rows), got "
            f"{codes.dtype} of shape {tuple(codes.shape)}."
        )
    if isinstance(codes, torch.Tensor):
        return codes.to(torch.int64)
    return codes.astype(np.int64, copy=False)


class DeviceBatches:
    """Latents resident on the training device, gathered by index.

    Parameters
    ----------
    Zx, Zy : torch.Tensor of shape (n, d_x) and (n, d_y)
        Paired latents on the device, float32 or a half-precision storage
        dtype (upcast per batch).
    groups : array-like or torch.Tensor of shape (n,), int, or None, default=None
        Item code of each pair: rows with the same code are positives of
        each other (an image and each of its captions).  Copied to the
        device as int64.

    Attributes
    ----------
    shared_groups : bool
        Some code belongs to more than one row (else the codes add nothing
        to the plain one-positive loss).
    """

    path = "device"

    def __init__(self, Zx, Zy, groups=None):
        self.Zx, self.Zy = Zx, Zy
        self.n = Zx.shape[0]
        self.device = Zx.device
        groups = _check_groups(groups, self.n)
        self.groups = (
            None
            if groups is None
            else torch.as_tensor(groups, dtype=torch.int64, device=self.device)
        )
        self.shared_groups = (
            self.groups is not None and len(torch.unique(self.groups)) < self.n
        )

    def describe(self):
        return (
            f"{self.n:,} pairs held on the device in {str(self.Zx.dtype)[6:]}, "
            "batches gathered by index"
        )

    def close(self):
        pass

    def epoch(self, epoch, rows_per_step, generator, shard=None):
        """One epoch of ``(zx, zy, g)`` batches (float32 rows and their codes,
        or None): a device-side random permutation cut into
        ``n // rows_per_step`` batches (the remainder is dropped so every
        loss sees the same number of negatives).  With ``shard=(rank,
        world_size, parts)`` only this process' rows of each batch are
        gathered (see :func:`skfusemix.engine._distributed.shard_rows`)."""
        order = torch.randperm(self.n, device=self.device, generator=generator)
        groups = self.groups
        for i in range(self.n // rows_per_step):
            idx = order[i * rows_per_step : (i + 1) * rows_per_step]
            if shard is not None:
                idx = shard_rows(idx, *shard)
            g = None if groups is None else groups[idx]
            yield self.Zx[idx].float(), self.Zy[idx].float(), g


def stream_buffer_bytes(window_rows, row_bytes, storage_row_bytes, device):
    """Memory the streaming path holds for windows of ``window_rows`` rows:
    host buffers of 1.5 windows each (a window and room for the previous
    window's leftover rows; three on CPU, where the buffer in use is the
    window, two pinned ones on CUDA) plus, on CUDA or when the storage
    dtype differs, two device windows (the one in use and the next)."""
    buffer_rows = window_rows + window_rows // 2
    host = (2 if device.type == "cuda" else 3) * buffer_rows * row_bytes
    converted = device.type == "cuda" or storage_row_bytes != row_bytes
    return host + (2 * buffer_rows * storage_row_bytes if converted else 0)


class StreamBatches:
    """Latents streamed from host arrays in shuffled chunks.

    Parameters
    ----------
    X, Y : array-like of shape (n, d_x) and (n, d_y)
        Paired latents; memmaps are read from their files.
    device : torch.device
        Training device.
    storage_dtype : torch.dtype
        Dtype of the windows on the device (batches are upcast to float32).
    window_rows : int
        Rows per window; rows are shuffled within a window.
    chunks_per_window : int, default=8
        Contiguous chunks per window; the chunk order is shuffled every
        epoch.
    keep : ndarray of bool of shape (n,) or None, default=None
        Rows to train on (the others are the early-stopping validation).
    seed : int, default=0
        Seeds the chunk order (with the epoch number, so a resumed fit
        reads the same order).
    groups : array-like of shape (n,), int, or None, default=None
        Item code of each row (of all ``n`` rows, like ``keep``): rows with
        the same code are positives of each other.  Held on the host as
        int64 and streamed with the rows.

    Attributes
    ----------
    shared_groups : bool
        Some code belongs to more than one training row.
    """

    path = "stream"

    def __init__(
        self,
        X,
        Y,
        device,
        storage_dtype,
        window_rows,
        *,
        chunks_per_window=8,
        keep=None,
        seed=0,
        groups=None,
    ):
        self.readers = (RowReader(X), RowReader(Y))
        self.device, self.storage_dtype = device, storage_dtype
        n_rows = self.readers[0].n
        self.groups = _check_groups(groups, n_rows)
        if isinstance(self.groups, torch.Tensor):
            self.groups = self.groups.cpu().numpy()
        kept = self.groups if keep is None or groups is None else self.groups[keep]
        self.shared_groups = kept is not None and len(np.unique(kept)) < len(kept)
        self.chunk_rows = max(1, window_rows // chunks_per_window)
        self.chunks_per_window = chunks_per_window
        self.n_chunks = -(-n_rows // self.chunk_rows)
        self.n_rows, self.keep, self.seed = n_rows, keep, seed
        self.n = n_rows if keep is None else int(np.count_nonzero(keep))
        self.window_rows = self.chunk_rows * chunks_per_window
        self._prefetch = None
        pin = device.type == "cuda"
        n_buffers = 2 if pin else 3
        rows = self.window_rows + self._carry_room
        self._buffers = [
            tuple(
                torch.empty(rows, r.width, dtype=r.dtype, pin_memory=pin)
                for r in self.readers
            )
            + (
                ()
                if self.groups is None
                else (torch.empty(rows, dtype=torch.int64, pin_memory=pin),)
            )
            for _ in range(n_buffers)
        ]

    @property
    def _carry_room(self):
        return self.window_rows // 2  # leftover rows of the previous window

    def describe(self):
        how = (
            "pread from the file" if all(r.direct for r in self.readers) else "slicing"
        )
        return (
            f"streaming {self.n:,} pairs in windows of {self.window_rows:,} rows "
            f"({self.chunks_per_window} shuffled chunks of {self.chunk_rows:,} rows, "
            f"{how}, prefetched on a thread)"
        )

    def epoch(self, epoch, rows_per_step, generator):
        """One epoch of ``(zx, zy, g)`` batches (float32 rows and their
        codes, or None), ``n // rows_per_step`` of them, rows drawn without
        replacement."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n_chunks)
        windows = [
            order[i : i + self.chunks_per_window]
            for i in range(0, self.n_chunks, self.chunks_per_window)
        ]
        prefetch = self._prefetch = _Prefetcher(self, windows)
        carry = None
        try:
            for buffers, n_rows in prefetch:
                window = self._to_device(buffers, n_rows, carry)
                wx, wy = window[:2]
                wg = window[2] if len(window) == 3 else None
                if self.device.type == "cuda":
                    prefetch.release(buffers)  # copies are queued; refill after them
                perm = torch.randperm(len(wx), device=self.device, generator=generator)
                n_full = len(wx) // rows_per_step
                for i in range(n_full):
                    idx = perm[i * rows_per_step : (i + 1) * rows_per_step]
                    g = None if wg is None else wg[idx]
                    yield wx[idx].float(), wy[idx].float(), g
                rest = perm[n_full * rows_per_step :]
                carry = tuple(w[rest] for w in window)
                if self.device.type != "cuda":
                    prefetch.release(buffers)
        finally:
            prefetch.close()

    def _to_device(self, buffers, n_rows, carry):
        c = 0 if carry is None else len(carry[0])
        room = self._carry_room
        if c > room:
            raise RuntimeError("window too small for the batch size")  # guarded in fit
        out = []
        for i, buffer in enumerate(buffers):
            dtype = self.storage_dtype if i < 2 else torch.int64  # rows, then codes
            if self.device.type == "cuda" or buffer.dtype != dtype:
                window = torch.empty(
                    (c + n_rows,) + tuple(buffer.shape[1:]),
                    dtype=dtype,
                    device=self.device,
                )
                window[c:].copy_(buffer[room : room + n_rows], non_blocking=True)
            else:  # CPU: the buffer is the window; the carry goes just before it
                window = buffer[room - c : room + n_rows]
            if c:
                window[:c] = carry[i]
            out.append(window)
        return out

    def fill(self, buffers, chunks):
        """Read ``chunks`` into ``buffers`` after the carry room; return the
        number of rows kept."""
        room, filled = self._carry_room, 0
        for chunk in np.sort(chunks):  # sorted: sequential reads within a window
            start = int(chunk) * self.chunk_rows
            stop = min(start + self.chunk_rows, self.n_rows)
            kept = (
                None
                if self.keep is None
                else torch.from_numpy(np.flatnonzero(self.keep[start:stop]))
            )
            for reader, buffer in zip(self.readers, buffers):
                rows = reader.read(start, stop, buffer[room + filled :])
                if kept is not None:
                    rows[: len(kept)] = rows[kept]
            if self.groups is not None:
                codes = torch.from_numpy(self.groups[start:stop])
                if kept is not None:
                    codes = codes[kept]
                buffers[2][room + filled : room + filled + len(codes)] = codes
            filled += (
                stop - start
                if self.keep is None
                else int(np.count_nonzero(self.keep[start:stop]))
            )
        return filled

    def close(self):
        """Stop the reading thread (an epoch cut short by an exception may
        still be prefetching) and close the files."""
        if self._prefetch is not None:
            self._prefetch.close()
        for reader in self.readers:
            reader.close()
        self._buffers = []


class _Prefetcher:
    """Fill window buffers on a background thread, one window ahead."""

    def __init__(self, source, windows):
        self.source = source
        self.ready = queue.Queue(maxsize=1)
        self.free = queue.Queue()
        for buffers in source._buffers:
            self.free.put((buffers, None))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(windows,), daemon=True)
        self.thread.start()

    def _get(self, q):
        while not self.stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

    def _put(self, q, item):
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self, windows):
        try:
            for chunks in windows:
                got = self._get(self.free)
                if got is None:
                    return
                buffers, event = got
                if event is not None:
                    event.synchronize()  # the device copy out of this buffer is done
                n_rows = self.source.fill(buffers, chunks)
                self._put(self.ready, (buffers, n_rows))
            self._put(self.ready, None)
        except BaseException as exc:  # re-raised in the training thread
            self._put(self.ready, exc)

    def __iter__(self):
        while True:
            item = self._get(self.ready)
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def release(self, buffers):
        event = None
        if self.source.device.type == "cuda":
            event = torch.cuda.Event()
            event.record()
        self.free.put((buffers, event))

    def close(self):
        self.stop.set()
        self.thread.join()
