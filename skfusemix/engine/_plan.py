"""The plan of a fit, resolved once before training: the recipe, the step
arithmetic, and where the latents live (how much device memory the fit
needs, checked before training starts)."""

import os
from dataclasses import dataclass, field

import torch

_FLOAT = 4  # bytes: latents, weights and activations are float32


def rows_per_step(batch_size, mixing):
    """Rows one optimiser step gathers: FuseMix mixes two halves of
    ``2 * batch_size`` rows into ``batch_size`` pairs; without mixing a step
    takes ``batch_size`` rows."""
    return 2 * batch_size if mixing else batch_size


@dataclass(frozen=True)
class FitPlan:
    """Everything :func:`skfusemix.engine._loop.train` runs, resolved once
    in ``fit``: the optimisation recipe, the step arithmetic and the data
    path.

    Parameters
    ----------
    n_samples : int
        Training pairs (without the held-out validation pairs).
    batch_size : int
        Pairs per contrastive loss (already reduced to fit the data).
    max_epochs : int
        Passes over the pairs.
    alpha : float
        ``Beta(alpha, alpha)`` of the shared mixing coefficient; 0 disables
        mixing.
    learning_rate, weight_decay : float
        AdamW settings.
    warmup_steps : int
        Requested linear warm-up steps (see :attr:`warmup`).
    seed : int
        Seeds batch order, mixing coefficients and dropout.
    path : {"device", "stream"}, default="device"
        Latents held on the device or streamed.
    window_rows : int or None, default=None
        Rows of a streaming window.
    estimate : dict, default={}
        Memory estimate by component (see :func:`estimate_fit_memory`).
    n_iter_no_change : int, default=10
        Early stopping patience, in epochs.
    tol : float, default=1e-4
        Smallest validation improvement that counts.
    compile : bool, default=False
        Compile the adapters with :func:`torch.compile`.
    verbose : int, default=0
        0 silent, 1 a progress bar, 2 one log line per epoch.
    structure_weight : float, default=0.0
        Weight of the structure regulariser (0: off).
    structure_warmup : int, default=0
        Optimiser steps over which that weight ramps linearly from 0.

    Examples
    --------
    >>> from skfusemix.engine._plan import FitPlan
    >>> plan = FitPlan(n_samples=1000, batch_size=100, max_epochs=3, alpha=1.0,
    ...                learning_rate=1e-3, weight_decay=0.1, warmup_steps=100, seed=0)
    >>> plan.rows_per_step, plan.steps_per_epoch, plan.total_steps, plan.warmup
    (200, 5, 15, 1)
    """

    n_samples: int
    batch_size: int
    max_epochs: int
    alpha: float
    learning_rate: float
    weight_decay: float
    warmup_steps: int
    seed: int
    path: str = "device"
    window_rows: int | None = None
    estimate: dict = field(default_factory=dict)
    n_iter_no_change: int = 10
    tol: float = 1e-4
    compile: bool = False
    verbose: int = 0
    structure_weight: float = 0.0
    structure_warmup: int = 0

    @property
    def mixing(self):
        """Whether FuseMix mixes pairs (``alpha > 0``)."""
        return self.alpha > 0

    @property
    def rows_per_step(self):
        """Rows gathered per optimiser step (see :func:`rows_per_step`)."""
        return rows_per_step(self.batch_size, self.mixing)

    @property
    def steps_per_epoch(self):
        """Optimiser steps per epoch; the remainder rows are dropped so every
        loss sees the same number of negatives."""
        return self.n_samples // self.rows_per_step

    @property
    def total_steps(self):
        return self.steps_per_epoch * self.max_epochs

    @property
    def warmup(self):
        """Warm-up steps actually taken: at most 10% of all steps, so short
        fits still reach the peak rate."""
        return min(self.warmup_steps, self.total_steps // 10)


def _adapter_params(d, n_components, n_layers, expansion):
    h = expansion * d
    block = 2 * d + (d * h + h) + (h * d + d)  # LayerNorm, fc1, fc2
    return n_layers * block + 2 * d + d * n_components + n_components


def _adapter_activations(rows, d, n_components, n_layers, expansion):
    """Floats autograd keeps for one adapter's forward on ``rows`` rows."""
    h = expansion * d
    # per block: LN in/out, fc1 out, GELU out, dropout out (+ its mask), fc2 out
    block = rows * (3 * d + 3 * h) + rows * h // 4
    return n_layers * block + rows * (2 * d + 3 * n_components)


def estimate_fit_memory(
    n_samples,
    n_features,
    n_features_y,
    *,
    n_components,
    n_layers,
    expansion,
    batch_size,
    mixing=True,
    n_validation=0,
    storage_bytes=_FLOAT,
):
    """Bytes of device memory a FuseMix fit needs, by component.

    Parameters
    ----------
    n_samples, n_features, n_features_y : int
        Pairs and the widths of the two latent matrices.
    n_components, expansion : int
        As in :class:`~skfusemix.FuseMixAligner`.
    n_layers : tuple of (int, int)
        Residual blocks of ``h_x`` and ``h_y``.
    batch_size : int
        Pairs per contrastive loss (each step gathers twice as many rows
        when ``mixing``).
    mixing : bool, default=True
        FuseMix on (``alpha > 0``).
    n_validation : int, default=0
        Held-out pairs of early stopping (kept on the device in float32).
    storage_bytes : int, default=4
        Bytes per latent value on the device (2 for a half-precision
        ``storage_dtype``).

    Returns
    -------
    estimate : dict
        ``latents`` (training and validation), ``parameters`` (weights, gradients, AdamW moments and
        the two copies kept by the divergence guard and early stopping),
        ``activations`` (both adapters forward and backward on one batch),
        ``similarity`` (the ``batch_size x batch_size`` logits, their
        softmaxes and gradients) and ``total``, in bytes.

    Examples
    --------
    >>> from skfusemix.engine._plan import estimate_fit_memory
    >>> est = estimate_fit_memory(10_000, 768, 384, n_components=512,
    ...                           n_layers=(4, 4), expansion=4, batch_size=4096)
    >>> round(est["total"] / 2**20)  # MiB
    2368
    """
    widths = ((n_features, n_layers[0]), (n_features_y, n_layers[1]))
    params = sum(_adapter_params(d, n_components, L, expansion) for d, L in widths)
    rows = rows_per_step(batch_size, mixing)
    gathered = sum(d * (rows + (batch_size if mixing else 0)) for d, _ in widths)
    forward = sum(
        _adapter_activations(batch_size, d, n_components, L, expansion)
        for d, L in widths
    )
    widest = max(expansion * d for d, _ in widths)
    backward = 2 * batch_size * widest  # gradients of the widest layer in flight
    estimate = {
        "latents": storage_bytes * n_samples * (n_features + n_features_y)
        + _FLOAT * n_validation * (n_features + n_features_y),
        "parameters": _FLOAT * 6 * params,
        "activations": _FLOAT * (gathered + forward + backward),
        "similarity": _FLOAT * 6 * batch_size * batch_size,
    }
    estimate["total"] = sum(estimate.values())
    return estimate


def available_memory(device):
    """Bytes free for a fit on ``device``, or None when unknown.

    CUDA: free memory of the device plus what torch's caching allocator
    holds unused.  CPU: ``MemAvailable`` of ``/proc/meminfo``, else the
    free physical pages ``os.sysconf`` reports.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(
            device
        )
        return free + cached
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def plan_fit_memory(device, available=None, *, stream=None, **sizes):
    """Choose how a fit holds its latents, or fail early.

    Parameters
    ----------
    device : torch.device
        Training device.
    available : int or None, default=None
        Bytes the fit may use (default: :func:`available_memory`; unknown
        means no limit).
    stream : dict or None, default=None
        When the latents can be streamed: ``row_bytes`` (bytes of one pair
        as read from the inputs), ``storage_row_bytes`` (the same in the
        storage dtype) and ``min_window_rows`` (the smallest useful window).
    **sizes
        The arguments of :func:`estimate_fit_memory`.

    Returns
    -------
    plan : dict
        ``path`` (``"device"``: latents copied to the device once, or
        ``"stream"``), ``window_rows`` (streaming only) and ``estimate``
        (as :func:`estimate_fit_memory`, with the streaming buffers in place
        of the training latents when streaming).

    Raises
    ------
    ValueError
        When neither path fits, with a batch size that would.
    """
    if available is None:
        available = available_memory(device)
    estimate = estimate_fit_memory(**sizes)
    if available is None or estimate["total"] <= available:
        return {"path": "device", "estimate": estimate}
    plan = _stream_plan(device, available, stream, sizes)
    if plan is not None:
        return plan

    gib = _human
    parts = ", ".join(f"{k} {gib(v)}" for k, v in estimate.items() if k != "total")
    message = (
        f"This fit needs about {gib(estimate['total'])} of {device} memory ({parts}) "
        f"but only {gib(available)} is available"
        + (
            ", and streaming the latents in windows does not fit either."
            if stream
            else "."
        )
    )
    batch = sizes["batch_size"]

    def fits(b):
        smaller = dict(sizes, batch_size=b)
        return estimate_fit_memory(**smaller)["total"] <= available or (
            _stream_plan(device, available, _with_window(stream, sizes, b), smaller)
            is not None
        )

    while batch > 1 and not fits(batch):
        batch //= 2
    if fits(batch):
        message += f"  Use batch_size={batch} (or smaller), or free memory."
    else:
        message += "  Even batch_size=1 does not fit: " + (
            f"the latents alone need {gib(estimate['latents'])}; use fewer pairs, "
            "smaller latents or another device."
            if stream is None
            else "the adapters and optimiser state alone need "
            f"{gib(estimate['parameters'])}; use smaller adapters or another device."
        )
    message += "  Set max_memory to override the available amount."
    raise ValueError(message)


def _human(b):
    """Bytes as GiB, MiB or KiB, whichever reads best."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if b >= size / 10:
            return f"{b / size:.2f} {unit}"
    return f"{b / 2**10:.1f} KiB"


def _with_window(stream, sizes, batch_size):
    if stream is None:
        return None
    rows = rows_per_step(batch_size, sizes.get("mixing", True))
    return dict(stream, min_window_rows=2 * rows)


def _stream_plan(device, available, stream, sizes):
    """The largest streaming window the budget allows, or None."""
    if stream is None:
        return None
    from ._batches import stream_buffer_bytes

    estimate = estimate_fit_memory(**dict(sizes, n_samples=0))
    per_window = stream_buffer_bytes(
        1024, stream["row_bytes"], stream["storage_row_bytes"], device
    )
    window = int((available - estimate["total"]) * 1024 // per_window)
    window = min(window, sizes["n_samples"])
    if window < max(stream["min_window_rows"], 8):
        return None
    estimate["latents"] += stream_buffer_bytes(
        window, stream["row_bytes"], stream["storage_row_bytes"], device
    )
    estimate["total"] = sum(v for k, v in estimate.items() if k != "total")
    return {"path": "stream", "window_rows": window, "estimate": estimate}


def check_fit_memory(device, available=None, **sizes):
    """Raise a ValueError with a batch size that fits when the fit described
    by ``sizes`` (the arguments of :func:`estimate_fit_memory`) needs more
    than ``available`` bytes (default: :func:`available_memory`) with its
    latents on the device; return the estimate otherwise."""
    return plan_fit_memory(device, available, **sizes)["estimate"]
