"""The training loop: device-resident latents, index-gathered batches, FuseMix,
symmetric InfoNCE, AdamW with warm-up and cosine decay.

Nothing in the step loop talks to the host: batch indices come from a device
generator, mixing coefficients are drawn for the whole fit up front and live
on the device, and per-step losses are summed on the device.  The host reads
them once per epoch when a progress display needs them, otherwise once at the
end of the fit.
"""

import math
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from ._logging import logger, verbose_logger
from .mixing import fusemix, sample_lambdas
from .nn import no_weight_decay


def build_optimizer(modules, learning_rate, weight_decay, device):
    """AdamW with weight decay on the weight matrices only.

    Biases, LayerNorm weights and scalar parameters such as the temperature
    are not decayed.
    """
    decay, no_decay = [], []
    for module in modules:
        for name, param in module.named_parameters():
            if param.requires_grad:
                (no_decay if no_weight_decay(name, param) else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=learning_rate, **extra)


def warmup_cosine(warmup_steps, total_steps):
    """Learning-rate multiplier: linear warm-up, then cosine decay to 0."""

    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def epoch_batches(n, rows_per_step, generator, device):
    """The batch sampler: one epoch of row indices, ``n // rows_per_step``
    batches of a device-side random permutation (the remainder is dropped so
    every contrastive loss sees the same number of negatives)."""
    order = torch.randperm(n, device=device, generator=generator)
    for i in range(n // rows_per_step):
        yield order[i * rows_per_step : (i + 1) * rows_per_step]


def train(
    adapter_x,
    adapter_y,
    loss_fn,
    Zx,
    Zy,
    *,
    batch_size,
    max_epochs,
    learning_rate,
    weight_decay,
    warmup_steps,
    alpha,
    seed,
    verbose=0,
):
    """Train the two adapters and the loss' scalars in place.

    Parameters
    ----------
    adapter_x, adapter_y : torch.nn.Module
        The fusion adapters, already on the device of ``Zx`` and ``Zy``.
    loss_fn : torch.nn.Module
        Called as ``loss_fn(sx, sy)`` on L2-normalised embeddings; may own
        learnable scalars and a ``clamp_()`` method run after each step.
    Zx, Zy : torch.Tensor of shape (n, d_x) and (n, d_y)
        Paired latents on the training device.
    batch_size : int
        Pairs per contrastive loss.  With mixing, each step gathers
        ``2 * batch_size`` rows and mixes its two halves.
    max_epochs : int
        Passes over the pairs.
    learning_rate, weight_decay : float
        AdamW settings.
    warmup_steps : int
        Linear warm-up steps, at most 10% of all steps.
    alpha : float
        ``Beta(alpha, alpha)`` of the shared mixing coefficient; 0 disables
        mixing.
    seed : int
        Seeds batch order, mixing coefficients and dropout.
    verbose : int, default=0
        0 silent, 1 a progress bar, 2 one log line per epoch.

    Returns
    -------
    history : dict of lists
        Per epoch: ``epoch``, ``loss`` (mean over its steps), ``temperature``
        (at its end), ``lr`` (at its end) and ``time`` (seconds since start).
    n_steps : int
        Optimiser steps taken.
    """
    device = Zx.device
    n = Zx.shape[0]
    mixing = alpha > 0
    rows_per_step = 2 * batch_size if mixing else batch_size
    steps_per_epoch = n // rows_per_step  # >= 1: batch_size was reduced to fit
    total_steps = steps_per_epoch * max_epochs
    warmup = min(warmup_steps, total_steps // 10)

    rng = np.random.RandomState(seed)
    lambdas = torch.from_numpy(sample_lambdas(alpha, total_steps, rng)).to(device)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(rng.randint(2**31 - 1)))

    modules = [adapter_x, adapter_y, loss_fn]
    optimizer = build_optimizer(modules, learning_rate, weight_decay, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(warmup, total_steps)
    )
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else nullcontext()
    )

    epoch_loss = torch.zeros(max_epochs, device=device)
    epoch_temperature = torch.zeros(max_epochs, device=device)
    epoch_lr, epoch_time = [], []
    for module in modules:
        module.train()
    progress = _Progress(verbose, max_epochs) if verbose else None
    start = time.perf_counter()
    step = 0
    for epoch in range(max_epochs):
        for idx in epoch_batches(n, rows_per_step, generator, device):
            zx, zy = Zx[idx], Zy[idx]
            if mixing:
                zx, zy = fusemix(zx, zy, lambdas[step])
            with autocast:
                sx = F.normalize(adapter_x(zx).float(), dim=-1)
                sy = F.normalize(adapter_y(zy).float(), dim=-1)
                loss = loss_fn(sx, sy)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_fn.clamp_()
            epoch_loss[epoch] += loss.detach()
            step += 1
        epoch_loss[epoch] /= steps_per_epoch
        epoch_temperature[epoch] = loss_fn.temperature
        epoch_lr.append(scheduler.get_last_lr()[0])
        epoch_time.append(time.perf_counter() - start)
        if progress is not None:
            progress(
                epoch, epoch_loss[epoch], epoch_temperature[epoch], step * batch_size
            )
    if progress is not None:
        progress.close()
    for module in modules:
        module.eval()

    history = {
        "epoch": list(range(1, max_epochs + 1)),
        "loss": epoch_loss.cpu().tolist(),
        "temperature": epoch_temperature.cpu().tolist(),
        "lr": epoch_lr,
        "time": epoch_time,
    }
    return history, step


class _Progress:
    """Epoch progress: a tqdm bar (verbose=1) or log lines (verbose>=2).

    Reading the loss is the only host sync of a fit, so it happens here, once
    an epoch, and only when something is displayed.
    """

    def __init__(self, verbose, max_epochs):
        self.max_epochs = max_epochs
        self.start = time.perf_counter()
        self.bar = None
        if verbose == 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=max_epochs, desc="FuseMix fit", unit="epoch", leave=False
            )
        else:  # verbose=2 asks for lines: show them even if logging is unconfigured
            verbose_logger(verbose)

    def __call__(self, epoch, loss, temperature, pairs_seen):
        loss, temperature = float(loss), float(temperature)
        elapsed = time.perf_counter() - self.start
        rate = pairs_seen / max(elapsed, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix(
                loss=f"{loss:.4f}", T=f"{temperature:.4f}", pairs_s=f"{rate:,.0f}"
            )
            self.bar.update(1)
        else:
            logger.info(
                "epoch %d/%d  loss %.4f  temperature %.4f  %.0f pairs/s  %.1fs",
                epoch + 1,
                self.max_epochs,
                loss,
                temperature,
                rate,
                elapsed,
            )

    def close(self):
        if self.bar is not None:
            self.bar.close()
