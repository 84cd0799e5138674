"""Training one model with several processes (``torch.distributed``).

When a process group is initialised (``torchrun``, Ray Train, or any launcher
that calls :func:`torch.distributed.init_process_group`), every process runs
the same ``fit`` on the same data with the same seed, so all of them draw the
same permutation of the pairs and the same mixing coefficients.  Each step,
process ``r`` of ``W`` takes the ``r``-th ``1/W`` of the global batch (with
mixing, the ``r``-th slice of each half, so its rows mix into the ``r``-th
slice of the mixed batch), embeds them, and all-gathers the embeddings of the
whole batch; the loss is the one of the global batch, computed identically
in every process.  A process' own rows in the gathered batch are its own
tensors, so the gradient reaching its adapters is the part of the global
gradient that flows through its rows; summing the adapters' gradients over
the processes gives the gradient of the single-process step exactly (up to
float rounding).  The loss' own scalars (temperature, bias) get their full
gradient in every process and are not reduced.  The weights therefore stay
identical in all processes, step after step.
"""

import hashlib
import json
import os

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["ProcessGroup", "process_group", "shard_rows"]


def shard_rows(idx, rank, world_size, parts):
    """Process ``rank``'s rows of a global batch: the ``rank``-th of
    ``world_size`` equal slices of each of the batch's ``parts`` equal parts
    (2 with mixing, so that a process' halves A and B mix into its slice of
    the mixed batch; 1 without).

    Examples
    --------
    >>> import torch
    >>> from skfusemix.engine._distributed import shard_rows
    >>> idx = torch.arange(8)
    >>> shard_rows(idx, 1, 2, parts=2).tolist()  # halves [0..3] and [4..7]
    [2, 3, 6, 7]
    >>> shard_rows(idx, 0, 4, parts=1).tolist()
    [0, 1]
    """
    n = idx.shape[0] // (parts * world_size)
    if n * parts * world_size != idx.shape[0]:
        raise ValueError(
            f"A batch of {idx.shape[0]} rows does not split into {parts} parts of "
            f"{world_size} equal slices."
        )
    return idx.view(parts, world_size, n)[:, rank].reshape(-1)


def process_group(distributed):
    """The :class:`ProcessGroup` to train with, or None to train alone.

    ``distributed`` is the estimator's parameter: ``"auto"`` uses the
    default process group when :mod:`torch.distributed` is initialised with
    more than one process, ``True`` requires it to be initialised, ``False``
    never uses it.
    """
    if distributed is False:
        return None
    initialised = dist.is_available() and dist.is_initialized()
    if not initialised:
        if distributed is True:
            raise ValueError(
                "distributed=True needs an initialised torch.distributed process "
                "group (launch with torchrun or call "
                "torch.distributed.init_process_group first)."
            )
        return None
    if dist.get_world_size() == 1:
        return None
    return ProcessGroup()


class ProcessGroup:
    """The processes of the default ``torch.distributed`` group, training one
    model together (see the module docstring for the arithmetic)."""

    def __init__(self):
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.backend = dist.get_backend()
        self.training_device = torch.device("cpu")

    @property
    def is_writer(self):
        """Whether this process writes files shared by all (rank 0)."""
        return self.rank == 0

    def device(self, device):
        """The device of this process: ``cuda`` without an index becomes
        ``cuda:LOCAL_RANK`` (set by torchrun and Ray Train) when the machine
        has that device, else the current CUDA device."""
        if device.type == "cuda" and device.index is None:
            local = os.environ.get("LOCAL_RANK")
            if local is not None and int(local) < torch.cuda.device_count():
                device = torch.device("cuda", int(local))
            else:
                device = torch.device("cuda", torch.cuda.current_device())
        self.training_device = device
        return device

    def check_batch_size(self, batch_size, auto):
        """The global batch size, a multiple of the number of processes:
        ``auto`` sizes are rounded down, a user's size that is not raises."""
        if batch_size % self.world_size == 0:
            return batch_size
        if auto:
            return max(self.world_size, batch_size - batch_size % self.world_size)
        raise ValueError(
            f"batch_size={batch_size} does not split over {self.world_size} "
            "processes: with torch.distributed every process takes an equal share "
            f"of each batch, so batch_size must be a multiple of {self.world_size}."
        )

    def check_same(self, what):
        """Raise ValueError in every process unless ``what`` (a JSON-able
        description of the fit) is the same in all of them."""
        text = json.dumps(what, sort_keys=True, default=str).encode()
        code = int.from_bytes(hashlib.sha256(text).digest()[:7], "little")
        values = torch.tensor([code, -code], dtype=torch.int64)
        values = self._on_device(values)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        if int(values[0]) != -int(values[1]):
            raise ValueError(
                f"The {self.world_size} processes of the torch.distributed group "
                "called fit with different data or parameters; every process must "
                "fit the same pairs with the same parameters (it trains on its share "
                "of each batch).  Pass distributed=False to fit separate models in "
                "each process."
            )

    def _on_device(self, tensor):
        # NCCL reduces CUDA tensors only
        return tensor.to(self.training_device) if self.backend == "nccl" else tensor

    def gather(self, t):
        """Rows of ``t`` from all processes, in rank order; the gradient
        reaches this process' own rows (the others are constants here)."""
        chunks = [torch.empty_like(t) for _ in range(self.world_size)]
        dist.all_gather(chunks, t.detach().contiguous())
        chunks[self.rank] = t
        return torch.cat(chunks)

    def gather_codes(self, g, mixing):
        """Item codes of the global batch from this process' ``g``: with
        mixing, halves A and B are gathered separately so the result is
        ``[A of all processes, B of all processes]``, as the single-process
        batch has them."""
        if not mixing:
            return self.gather(g)
        half = g.shape[0] // 2
        return torch.cat([self.gather(g[:half]), self.gather(g[half:])])

    def sum_gradients(self, params):
        """Sum the gradients of ``params`` over the processes, in one
        all-reduce."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for p, g in zip(params, grads):
            n = g.numel()
            p.grad = flat[offset : offset + n].view_as(p)
            offset += n

    def all_true(self, flags):
        """Element-wise AND of a boolean tensor over the processes."""
        values = flags.to(torch.int32)
        dist.all_reduce(values, op=dist.ReduceOp.MIN)
        return values.bool()

    def any(self, flag):
        """Whether ``flag`` is true in any process."""
        value = self._on_device(torch.tensor([int(bool(flag))], dtype=torch.int32))
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def broadcast(self, value):
        """Rank 0's float ``value``, in every process."""
        tensor = self._on_device(torch.tensor([value], dtype=torch.float64))
        dist.broadcast(tensor, src=0)
        return float(tensor.item())

    def same_int(self, value):
        """Whether the int ``value`` is the same in every process."""
        values = self._on_device(torch.tensor([value, -value], dtype=torch.int64))
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return int(values[0]) == -int(values[1])

    def barrier(self):
        """Wait for all processes (a tiny all-reduce, so NCCL uses the
        training device)."""
        self.any(False)

    def seed_dropout(self, seed, epoch, device):
        """Seed torch's generator of ``device`` (CPU or a CUDA device) with
        (``seed``, ``epoch``, rank): every process draws its own dropout
        masks, and a resumed fit draws the same ones again."""
        state = np.random.SeedSequence([seed, epoch, self.rank]).generate_state(2)
        value = int(state[0]) << 32 | int(state[1])
        if device.type == "cuda":
            index = device.index
            if index is None:
                index = torch.cuda.current_device()
            torch.cuda.default_generators[index].manual_seed(value)
        else:
            torch.default_generator.manual_seed(value)


def fingerprint(X, y, take, n_rows=64):
    """Shapes and a few evenly spaced rows of the latents, to check that all
    processes fit the same data without reading all of it."""
    n = X.shape[0]
    rows = np.unique(np.linspace(0, n - 1, num=min(n, n_rows)).astype(np.int64))
    digest = hashlib.sha256()
    for Z in (X, y):
        sample = take(Z, rows)
        if isinstance(sample, torch.Tensor):
            sample = sample.float().cpu().numpy()
        digest.update(repr(tuple(Z.shape)).encode())
        digest.update(np.ascontiguousarray(sample, dtype=np.float32).tobytes())
    return digest.hexdigest()
