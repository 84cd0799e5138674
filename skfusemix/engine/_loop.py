"""The training loop: batches from a batch source (device-resident latents
gathered by index, or latents streamed from larger-than-memory arrays, see
:mod:`skfusemix.engine._batches`), FuseMix, symmetric InfoNCE, AdamW with warm-up
and cosine decay; optionally several positives per item (from the batches'
item codes) and a structure regulariser.

Nothing in the step loop talks to the host: batch indices come from a device
generator, mixing coefficients are drawn (and regulariser weights computed) for the
whole fit up front and live on the device, positives masks are built on the
device from the batches' codes, and per-step losses are summed on the device.  The host syncs
once per epoch, to check that the loss and the weights are finite
(:class:`DivergenceGuard`), record the history, and, when asked, score the
validation pairs (:class:`EarlyStopping`) and write a checkpoint
(:mod:`skfusemix.engine._checkpoint`).  Ctrl-C stops after the current step.
"""

import math
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .._data import join_weighted
from .._hubness import fold_csls, neighbour_similarity
from .._logging import logger, verbose_logger
from ..exceptions import TrainingDivergedError
from ..metrics import _item_codes
from .mixing import fusemix, positive_mask, sample_lambdas
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
    # the fused kernel (one pass over all tensors) is several times faster
    # than the per-tensor loops on CPU too: ~5 ms against ~15-35 ms a step for
    # the small-data adapters of 1,280-d and 384-d latents
    extra = {"fused": True} if device.type in ("cuda", "cpu") else {}
    return torch.optim.AdamW(groups, lr=learning_rate, **extra)


def make_step(
    forward_x,
    forward_y,
    loss_fn,
    optimizer,
    schedule=None,
    regularizer=None,
    *,
    distributed=None,
):
    """The optimiser step of FuseMix training, as one function.

    The returned ``step(zx, zy, positives=None, reg_weight=None)`` embeds a
    batch of (already mixed) paired rows with both adapters (bf16 autocast
    on CUDA, float32 on CPU), L2-normalises them, computes the loss,
    back-propagates, steps AdamW and the schedule, clamps the loss'
    learnable scalars and returns the loss as a 0-d tensor on the device
    (no host sync).  The training loop and the benchmarks call this same
    function.

    The loss is ``loss_fn(sx, sy)``, or ``loss_fn(sx, sy, positives)`` with
    a positives mask (see :func:`skfusemix.engine.mixing.positive_mask`),
    plus ``reg_weight * 0.5 * (regularizer(zx, sx) + regularizer(zy, sy))``
    when a ``regularizer`` is given and the step gets a ``reg_weight`` (a
    float or a 0-d device tensor); ``zx`` and ``zy`` are the rows the
    adapters saw (mixed, with mixing).  The regulariser runs in float32,
    outside autocast.

    With a ``distributed`` process group
    (:class:`skfusemix.engine._distributed.ProcessGroup`) the step gets this
    process' share of the global batch: the embeddings (and, for the
    regulariser, the rows) of all processes are gathered, the loss is the
    global batch's, and the adapters' gradients are summed over the
    processes before the optimiser step.
    """
    device = next(loss_fn.parameters()).device
    shared = (
        None
        if distributed is None
        else [
            p for m in (forward_x, forward_y) for p in m.parameters() if p.requires_grad
        ]
    )
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else nullcontext()
    )

    def step(zx, zy, positives=None, reg_weight=None):
        with autocast:
            sx = F.normalize(forward_x(zx).float(), dim=-1)
            sy = F.normalize(forward_y(zy).float(), dim=-1)
            if distributed is not None:
                sx, sy = distributed.gather(sx), distributed.gather(sy)
            if positives is None:
                loss = loss_fn(sx, sy)
            else:
                loss = loss_fn(sx, sy, positives)
        if regularizer is not None and reg_weight is not None:
            if distributed is not None:
                zx, zy = distributed.gather(zx), distributed.gather(zy)
            loss = loss + reg_weight * 0.5 * (regularizer(zx, sx) + regularizer(zy, sy))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if distributed is not None:
            distributed.sum_gradients(shared)
        optimizer.step()
        if schedule is not None:
            schedule.step()
        loss_fn.clamp_()
        return loss.detach()

    return step


def structure_weights(weight, warmup, n_steps):
    """Weight of the regulariser at each step: ``weight * min(1, s / warmup)``
    for step ``s = 0, 1, ...`` (linear ramp from 0 over ``warmup`` steps, as
    STRUCTURE's authors ramp it; ``warmup=0``: the full weight from the
    start).

    Examples
    --------
    >>> from skfusemix.engine._loop import structure_weights
    >>> structure_weights(10.0, 4, 6).tolist()
    [0.0, 2.5, 5.0, 7.5, 10.0, 10.0]
    """
    ramp = np.minimum(1.0, np.arange(n_steps) / warmup) if warmup else 1.0
    return (weight * np.ones(n_steps) * ramp).astype(np.float32)


def warmup_cosine(warmup_steps, total_steps):
    """Learning-rate multiplier of step ``step``: linear warm-up, then cosine
    decay to 0 (the ``lr_lambda`` of the loop's
    :class:`~torch.optim.lr_scheduler.LambdaLR`)."""

    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train(
    adapter_x,
    adapter_y,
    loss_fn,
    batches,
    plan,
    *,
    validation=None,
    checkpoint=None,
    regularizer=None,
    distributed=None,
):
    """Train the two adapters and the loss' scalars in place.

    Parameters
    ----------
    adapter_x, adapter_y : torch.nn.Module
        The fusion adapters, already on ``batches.device``.
    loss_fn : torch.nn.Module
        Called as ``loss_fn(sx, sy)`` on L2-normalised embeddings, or
        ``loss_fn(sx, sy, positives)`` when the batches' item codes put
        several positives in a batch; may own learnable scalars and a
        ``clamp_()`` method run after each step.
    batches : DeviceBatches or StreamBatches
        The pairs: ``batches.n`` of them on ``batches.device``, and
        ``batches.epoch(epoch, rows_per_step, generator)`` yields one
        epoch of ``(zx, zy, g)``: float32 row blocks and their item codes
        (or None).  When some code is shared by several rows
        (``batches.shared_groups``), each step's positives mask is built
        from the codes (:func:`skfusemix.engine.mixing.positive_mask`,
        exact under mixing).
    plan : skfusemix.engine._plan.FitPlan
        The resolved fit: batch size and rows per step, epochs, AdamW and
        schedule settings, mixing, seed, early-stopping patience, compile,
        verbosity, and the regulariser's weight and warm-up.
    validation : Validation or None, default=None
        Held-out pairs scored after every epoch; turns on early stopping:
        stop after more than ``plan.n_iter_no_change`` epochs in a row whose
        validation score did not beat the best by ``plan.tol``.
    checkpoint : skfusemix.engine._checkpoint.Checkpoint or None, default=None
        Where to save the full training state every few epochs, and resume
        from when a matching checkpoint exists.
    regularizer : torch.nn.Module or None, default=None
        Added to the loss as ``w_s * 0.5 * (R(zx, sx) + R(zy, sy))`` (e.g.
        :class:`skfusemix.engine.losses.StructureRegularizer`) with the
        weight ``w_s`` of step ``s`` ramping from 0 to
        ``plan.structure_weight`` over ``plan.structure_warmup`` steps
        (:func:`structure_weights`); unused when that weight is 0.
    distributed : skfusemix.engine._distributed.ProcessGroup or None, default=None
        Train together with the other processes of a ``torch.distributed``
        group, each on its share of every global batch (device-resident
        batches only).  All processes must call ``train`` with the same
        modules, batches and plan; they then stay identical, agree on the
        divergence check, early stopping and interruption, and rank 0
        alone writes the checkpoint (which all of them read).

    Returns
    -------
    result : TrainResult
        ``history`` (per epoch: ``epoch``, ``loss``, ``temperature``, ``lr``,
        ``time``, and ``val_score`` with validation), ``n_steps``,
        ``interrupted`` and the early-stopping record.

    Raises
    ------
    TrainingDivergedError
        When the loss or the weights become non-finite; the modules are
        restored to the last epoch that ended finite and the error carries
        the :class:`TrainResult` up to there as ``result``.
    """
    device = batches.device
    shard = None
    if distributed is not None:
        if batches.path != "device":
            raise ValueError(
                "Training with torch.distributed needs the latents held on the "
                "device; streamed latents are not supported."
            )
        shard = (distributed.rank, distributed.world_size, 2 if plan.mixing else 1)
    rng = np.random.RandomState(plan.seed)
    lambdas = torch.from_numpy(sample_lambdas(plan.alpha, plan.total_steps, rng)).to(
        device
    )
    generator = torch.Generator(device=device)
    generator.manual_seed(int(rng.randint(2**31 - 1)))
    reg_weights = None
    if plan.structure_weight > 0:
        if regularizer is None:
            raise ValueError("plan.structure_weight > 0 needs a regularizer.")
        reg_weights = torch.from_numpy(
            structure_weights(
                plan.structure_weight, plan.structure_warmup, plan.total_steps
            )
        ).to(device)
    else:
        regularizer = None
    grouped = bool(getattr(batches, "shared_groups", False))

    modules = [adapter_x, adapter_y, loss_fn]
    optimizer = build_optimizer(modules, plan.learning_rate, plan.weight_decay, device)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(plan.warmup, plan.total_steps)
    )
    run = TrainResult(history=new_history(validation is not None))
    stopper = (
        EarlyStopping(modules, plan.n_iter_no_change, plan.tol)
        if validation is not None
        else None
    )
    guard = DivergenceGuard(modules, distributed)
    if checkpoint is not None:
        checkpoint.restore(run, modules, optimizer, generator, stopper)
        if distributed is not None and not distributed.same_int(run.n_steps):
            raise ValueError(
                f"The processes found different checkpoints in {checkpoint.directory!r}"
                " (rank 0 writes it, all processes read it): put checkpoint_dir on a "
                "file system that all of them share."
            )
    step = run.n_steps
    schedule.last_epoch = step  # the restored optimiser holds that step's rate
    epoch = run.restored_epochs = len(run.history["epoch"])

    for module in modules:
        module.train()
    forward_x, forward_y = (
        (
            torch.compile(adapter_x, dynamic=False),
            torch.compile(adapter_y, dynamic=False),
        )
        if plan.compile
        else (adapter_x, adapter_y)
    )
    train_step = make_step(
        forward_x,
        forward_y,
        loss_fn,
        optimizer,
        schedule,
        regularizer,
        distributed=distributed,
    )
    writer = distributed is None or distributed.is_writer
    progress = (
        _Progress(plan.verbose, plan.max_epochs) if plan.verbose and writer else None
    )
    start = time.perf_counter() - (run.history["time"] or [0.0])[-1]
    with _StopOnInterrupt() as interrupt:
        while epoch < plan.max_epochs and not run.finished:
            epoch_loss = torch.zeros((), device=device)
            done = 0
            if distributed is not None:
                distributed.seed_dropout(plan.seed, epoch, device)
            epoch_batches = (
                batches.epoch(epoch, plan.rows_per_step, generator)
                if shard is None
                else batches.epoch(epoch, plan.rows_per_step, generator, shard=shard)
            )
            try:
                for zx, zy, g in epoch_batches:
                    if distributed is not None and grouped:
                        g = distributed.gather_codes(g, plan.mixing)
                    if plan.mixing:
                        zx, zy = fusemix(zx, zy, lambdas[step])
                    positives = (
                        positive_mask(g, plan.mixing, diagonal_as_none=False)
                        if grouped
                        else None
                    )
                    reg_weight = None if reg_weights is None else reg_weights[step]
                    epoch_loss += train_step(zx, zy, positives, reg_weight)
                    step += 1
                    done += 1
                    if interrupt.requested and distributed is None:
                        raise KeyboardInterrupt
            except KeyboardInterrupt:
                if distributed is not None:  # a second Ctrl-C: no clean stop
                    raise
                run.interrupted = True
            if distributed is not None:  # all processes stop after the same epoch
                run.interrupted = distributed.any(interrupt.requested)
            if done == 0:
                break
            # The epoch's one host sync: finiteness of the loss and weights.
            mean_loss = epoch_loss / done
            if not guard.check(mean_loss):
                guard.restore()
                if progress is not None:
                    progress.close()
                raise TrainingDivergedError(
                    guard.message(
                        epoch, step - done, step, plan.learning_rate, loss_fn
                    ),
                    result=run,
                )
            guard.snapshot()
            run.n_steps = step
            _record(
                run.history, epoch, mean_loss, loss_fn, schedule.get_last_lr()[0], start
            )
            if stopper is not None:
                score = validation.score(adapter_x, adapter_y)
                if distributed is not None:  # the same in all; rank 0's decides
                    score = distributed.broadcast(score)
                run.history["val_score"].append(score)
                run.finished = stopper.update(score)
            epoch += 1
            if progress is not None:
                progress(
                    epoch - 1, mean_loss, loss_fn.temperature, step * plan.batch_size
                )
            if run.interrupted:
                break
            if checkpoint is not None and (
                epoch % checkpoint.every == 0
                or epoch == plan.max_epochs
                or run.finished
            ):
                if writer:
                    checkpoint.save(run, modules, optimizer, generator, stopper)
                if distributed is not None:
                    distributed.barrier()
    if progress is not None:
        progress.close()
    if stopper is not None:
        stopper.restore_best()
        run.best_score = stopper.best_score
    for module in modules:
        module.eval()
    return run


def new_history(validation):
    keys = ["epoch", "loss", "temperature", "lr", "time"]
    return {key: [] for key in keys + (["val_score"] if validation else [])}


def _record(history, epoch, mean_loss, loss_fn, next_lr, start):
    history["epoch"].append(epoch + 1)
    history["loss"].append(float(mean_loss))
    history["temperature"].append(float(loss_fn.temperature))
    history["lr"].append(next_lr)
    history["time"].append(time.perf_counter() - start)


@dataclass
class TrainResult:
    """What a call to :func:`train` reached (also what a checkpoint holds)."""

    history: dict
    n_steps: int = 0
    interrupted: bool = False
    finished: bool = False  # early stopping triggered
    best_score: float | None = None
    restored_epochs: int = 0  # epochs loaded from a checkpoint, not trained now


class _StopOnInterrupt:
    """Turn the first Ctrl-C during training into a request to stop after
    the current step; a second Ctrl-C raises KeyboardInterrupt at once (the
    loop still stops cleanly).  Only in the main thread, and only when
    SIGINT has Python's default handler (a user's own handler is left alone).
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class DivergenceGuard:
    """Notice NaN/inf in the loss or the weights once per epoch and keep the
    last finite weights to fall back on.

    The step loop only sums losses on the device; a non-finite gradient
    turns the weights non-finite through AdamW, so checking the epoch's loss
    sum and the weights at the end of the epoch catches both with one host
    sync.
    """

    def __init__(self, modules, distributed=None):
        self.params = [p for m in modules for p in m.parameters()]
        self.good = [p.detach().clone() for p in self.params]
        self.distributed = distributed
        self._reason = None

    def check(self, mean_loss):
        with torch.no_grad():
            flags = torch.stack(
                [torch.isfinite(mean_loss)]
                + [torch.isfinite(p).all() for p in self.params]
            )
            if self.distributed is not None:  # every process takes the same turn
                flags = self.distributed.all_true(flags)
            flags = flags.cpu()
        if bool(flags.all()):
            return True
        self._reason = (
            "the loss became NaN or infinite"
            if not bool(flags[0])
            else "the weights became NaN or infinite (a non-finite gradient)"
        )
        return False

    @torch.no_grad()
    def snapshot(self):
        torch._foreach_copy_(self.good, [p.detach() for p in self.params])

    @torch.no_grad()
    def restore(self):
        torch._foreach_copy_([p.data for p in self.params], self.good)

    def message(self, epoch, first_step, last_step, learning_rate, loss_fn):
        return (
            f"Training diverged: {self._reason} during epoch {epoch + 1} (optimiser "
            f"steps {first_step + 1}-{last_step}).  The weights from before that epoch "
            f"were restored and the estimator holds them.  Try a "
            f"lower learning_rate (it was {learning_rate:g}), a higher temperature "
            f"(it was {float(loss_fn.temperature):.4g} at the last good epoch) or "
            "standardising the inputs (e.g. sklearn.preprocessing.StandardScaler)."
        )


class EarlyStopping:
    """scikit-learn MLP style: keep the weights of the best validation score,
    stop after more than ``n_iter_no_change`` epochs without an improvement
    of at least ``tol``."""

    def __init__(self, modules, n_iter_no_change, tol):
        self.params = [p for m in modules for p in m.parameters()]
        self.best = [p.detach().clone() for p in self.params]
        self.n_iter_no_change, self.tol = n_iter_no_change, tol
        self.best_score = -math.inf
        self.no_improvement = 0

    @torch.no_grad()
    def update(self, score):
        self.no_improvement = (
            self.no_improvement + 1 if score < self.best_score + self.tol else 0
        )
        if score > self.best_score:
            self.best_score = score
            torch._foreach_copy_(self.best, [p.detach() for p in self.params])
        return self.no_improvement > self.n_iter_no_change

    @torch.no_grad()
    def restore_best(self):
        if self.best_score > -math.inf:
            torch._foreach_copy_([p.data for p in self.params], self.best)


class Validation:
    """Held-out pairs for early stopping, scored on the training device.

    The score is the estimator's :meth:`score`: mean of recall@1 x->y and
    y->x, where rows with the same ``groups`` code are one x item (see
    :func:`skfusemix.metrics.retrieval_report`), computed in chunks with one
    host sync.

    Parameters
    ----------
    Zx, Zy : torch.Tensor of shape (n_val, d_x) and (n_val, d_y)
        Validation latents on the training device.
    groups : ndarray of shape (n_val,)
        Item code of each row: of the x rows, or with ``swapped`` of the y
        rows.
    joined : tuple of (Cx, Cy, weight), default=None
        Fixed embeddings of the same rows (tensors on the training device,
        unit rows) joined to the adapters' ones at ``weight``, as the
        estimator's ``cca_weight`` joins its CCA.
    references : callable, default=None
        ``references(adapter_x, adapter_y)`` returns what the adapters'
        current embeddings of the reference pairs give, as the estimator
        builds them: ``(anchors, csls)``, an aligner (ASIF) whose
        ``transform`` and ``transform_y`` map embeddings in the space of the
        adapters' and the ``joined`` embeddings (weighted as in the join;
        NumPy) to the anchor ones, or None; and the hubness correction's
        reference embeddings of both modalities in that same space (NumPy),
        or None.  Called at every score, on the host.
    anchor_weight : float, default=0.0
        Weight of the anchor embeddings in the join, as the estimator's
        ``anchor_weight``.
    csls_neighbors : int, default=0
        Neighbours of the hubness correction folded in, as the estimator's
        ``csls_neighbors`` (0: none).
    swapped : bool, default=False
        ``groups`` are items of the y rows (no x row repeats, some y row
        does): scored with the modalities swapped, as
        :func:`skfusemix.metrics.paired_report` does.
    """

    def __init__(
        self,
        Zx,
        Zy,
        groups,
        joined=None,
        references=None,
        anchor_weight=0.0,
        csls_neighbors=0,
        swapped=False,
    ):
        codes, first = _item_codes(None, groups)
        first = torch.as_tensor(first, device=Zx.device)
        # one row per item on the side that repeats, every row on the other
        self.swapped = swapped
        self.Zx, self.Zy = (Zx, Zy[first]) if swapped else (Zx[first], Zy)
        self.codes = torch.as_tensor(codes, device=Zx.device)
        self.joined = None
        self.references = references
        self.csls_neighbors = csls_neighbors
        # the adapters' weight first, then each joined part's, as in the
        # estimator's transform
        self.weights = [1.0]
        if joined is not None:
            Cx, Cy, weight = joined
            self.joined = (Cx, Cy[first]) if swapped else (Cx[first], Cy)
            self.weights.append(weight)
        if anchor_weight > 0:
            self.weights.append(anchor_weight)
        self.weights[0] = 1 - sum(self.weights[1:])

    @torch.no_grad()
    def score(self, adapter_x, adapter_y):
        training = adapter_x.training
        adapter_x.eval(), adapter_y.eval()
        sx = _embed_chunks(adapter_x, self.Zx)
        sy = _embed_chunks(adapter_y, self.Zy)
        adapter_x.train(training), adapter_y.train(training)
        parts_x, parts_y = [sx], [sy]
        if self.joined is not None:
            parts_x.append(self.joined[0]), parts_y.append(self.joined[1])
        anchors = csls = None
        if self.references is not None:
            anchors, csls = self.references(adapter_x, adapter_y)
            # the adapters' and CCA's space, where the anchors and the hubness
            # correction measure similarities to the training pairs
            n = len(parts_x)
            Qx = join_weighted(parts_x, self.weights[:n])
            Qy = join_weighted(parts_y, self.weights[:n])
        if anchors is not None:
            for parts, Q, method in (
                (parts_x, Qx, "transform"),
                (parts_y, Qy, "transform_y"),
            ):
                a = getattr(anchors, method)(Q.cpu().numpy())
                parts.append(torch.as_tensor(a, dtype=Q.dtype, device=Q.device))
        Jx = join_weighted(parts_x, self.weights)
        Jy = join_weighted(parts_y, self.weights)
        if csls is not None:
            Jx, Jy = self._fold_csls(Qx, Qy, Jx, Jy, csls)
        if self.swapped:  # the mean of both directions: the same either way
            return mean_recall_at_1(Jy, Jx, self.codes)
        return mean_recall_at_1(Jx, Jy, self.codes)

    def _fold_csls(self, Qx, Qy, Jx, Jy, references):
        reference_x, reference_y = references
        k = self.csls_neighbors
        folded = []
        for Q, J, reference, side in (
            (Qx, Jx, reference_y, "x"),
            (Qy, Jy, reference_x, "y"),
        ):
            r = neighbour_similarity(Q.cpu().numpy(), reference, k, J.device)
            out = fold_csls(J.cpu().numpy(), r, side)
            folded.append(torch.as_tensor(out, dtype=J.dtype, device=J.device))
        return folded


def _embed_chunks(adapter, Z, chunk=8192):
    return torch.cat(
        [
            F.normalize(adapter(Z[i : i + chunk]).float(), dim=-1)
            for i in range(0, len(Z), chunk)
        ]
    )


def mean_recall_at_1(sx_items, sy, codes, chunk_elements=2**24):
    """Mean of recall@1 x->y and y->x on device embeddings, as
    :func:`skfusemix.metrics.retrieval_report` counts it (ties pessimistic).

    ``sx_items`` holds one row per x item, ``sy`` one row per pair and
    ``codes[j]`` the item of pair ``j``.
    """
    n_items, n = sx_items.shape[0], sy.shape[0]
    chunk = max(1, chunk_elements // max(n, 1))
    x2y_hits = torch.zeros((), device=sy.device)
    y2x_target = torch.zeros(n, device=sy.device)
    y2x_negative = torch.full((n,), -math.inf, device=sy.device)
    for start in range(0, n_items, chunk):
        stop = min(start + chunk, n_items)
        sim = sx_items[start:stop] @ sy.T
        positive = (
            codes[None, :] == torch.arange(start, stop, device=sy.device)[:, None]
        )
        best = sim.masked_fill(~positive, -math.inf).amax(dim=1)
        negative = sim.masked_fill(positive, -math.inf)
        x2y_hits += (negative.amax(dim=1) < best).sum()
        y2x_target += sim.masked_fill(~positive, 0.0).sum(dim=0)
        y2x_negative = torch.maximum(y2x_negative, negative.amax(dim=0))
    y2x_hits = (y2x_negative < y2x_target).sum()
    x2y, y2x = torch.stack([x2y_hits.long(), y2x_hits.long()]).tolist()
    return 0.5 * (x2y / n_items + y2x / n)


class _Progress:
    """Epoch progress: a tqdm bar (verbose=1) or log lines (verbose>=2),
    called after the epoch's one host sync (the divergence check)."""

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
