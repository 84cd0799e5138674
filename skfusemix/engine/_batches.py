"""Where the training batches come from: device-resident latents, or latents
streamed from arrays larger than the memory budget.

Both sources yield, for one epoch, ``n // rows_per_step`` pairs of float32
row blocks ``(zx, zy)`` on the training device; :func:`skfusemix.engine._loop.train`
does not know which one it is fed.

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


class DeviceBatches:
    """Latents resident on the training device, gathered by index.

    Parameters
    ----------
    Zx, Zy : torch.Tensor of shape (n, d_x) and (n, d_y)
        Paired latents on the device, float32 or a half-precision storage
        dtype (upcast per batch).
    """

    path = "device"

    def __init__(self, Zx, Zy):
        self.Zx, self.Zy = Zx, Zy
        self.n = Zx.shape[0]
        self.device = Zx.device

    def describe(self):
        return (
            f"{self.n:,} pairs held on the device in {str(self.Zx.dtype)[6:]}, "
            "batches gathered by index"
        )

    def close(self):
        pass

    def epoch(self, epoch, rows_per_step, generator):
        """One epoch of ``(zx, zy)`` float32 batches: a device-side random
        permutation cut into ``n // rows_per_step`` batches (the remainder
        is dropped so every loss sees the same number of negatives)."""
        order = torch.randperm(self.n, device=self.device, generator=generator)
        for i in range(self.n // rows_per_step):
            idx = order[i * rows_per_step : (i + 1) * rows_per_step]
            yield self.Zx[idx].float(), self.Zy[idx].float()


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
    """

    path = "stream"

    def __init__(
        self, X, Y, device, storage_dtype, window_rows, *,
        chunks_per_window=8, keep=None, seed=0,
    ):  # fmt: skip
        self.readers = (RowReader(X), RowReader(Y))
        self.device, self.storage_dtype = device, storage_dtype
        n_rows = self.readers[0].n
        self.chunk_rows = max(1, window_rows // chunks_per_window)
        self.chunks_per_window = chunks_per_window
        self.n_chunks = -(-n_rows // self.chunk_rows)
        self.n_rows, self.keep, self.seed = n_rows, keep, seed
        self.n = n_rows if keep is None else int(np.count_nonzero(keep))
        self.window_rows = self.chunk_rows * chunks_per_window
        self._prefetch = None
        pin = device.type == "cuda"
        n_buffers = 2 if pin else 3
        self._buffers = [
            tuple(
                torch.empty(
                    self.window_rows + self._carry_room,
                    r.width,
                    dtype=r.dtype,
                    pin_memory=pin,
                )  # fmt: skip
                for r in self.readers
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
        """One epoch of ``(zx, zy)`` float32 batches, ``n // rows_per_step``
        of them, rows drawn without replacement."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n_chunks)
        windows = [
            order[i : i + self.chunks_per_window]
            for i in range(0, self.n_chunks, self.chunks_per_window)
        ]
        prefetch = self._prefetch = _Prefetcher(self, windows)
        carry = None
        try:
            for buffers, n_rows in prefetch:
                wx, wy = self._to_device(buffers, n_rows, carry)
                if self.device.type == "cuda":
                    prefetch.release(buffers)  # copies are queued; refill after them
                perm = torch.randperm(len(wx), device=self.device, generator=generator)
                n_full = len(wx) // rows_per_step
                for i in range(n_full):
                    idx = perm[i * rows_per_step : (i + 1) * rows_per_step]
                    yield wx[idx].float(), wy[idx].float()
                rest = perm[n_full * rows_per_step :]
                carry = (wx[rest], wy[rest])
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
            if self.device.type == "cuda" or buffer.dtype != self.storage_dtype:
                window = torch.empty(
                    c + n_rows, buffer.shape[1], dtype=self.storage_dtype,
                    device=self.device,
                )  # fmt: skip
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
            for reader, buffer in zip(self.readers, buffers):
                rows = reader.read(start, stop, buffer[room + filled :])
                if self.keep is not None:
                    kept = torch.from_numpy(np.flatnonzero(self.keep[start:stop]))
                    rows[: len(kept)] = rows[kept]
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
