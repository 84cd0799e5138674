"""FuseMixAligner: the scikit-learn face of FuseMix training."""

import copy
import json
import numbers
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.model_selection import GroupShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._data import (
    as_device_tensor,
    check_input_scale,
    check_out_of_core,
    check_tensor,
    dtype_bytes,
    resolve_device,
    row_groups,
    take,
)
from ._logging import logger, verbose_logger
from ._persistence import load_aligner, save_aligner
from .base import AlignerMixin
from .engine._batches import DeviceBatches, StreamBatches
from .engine._checkpoint import Checkpoint, data_digest, weights_digest
from .engine._loop import Validation, train
from .engine._plan import FitPlan, _human, plan_fit_memory, rows_per_step
from .engine.losses import SymmetricInfoNCE
from .engine.nn import Adapter
from .exceptions import FitInterruptedWarning, TrainingDivergedError

__all__ = ["FuseMixAligner"]

_FLOAT_DTYPES = (np.float32, np.float64, np.float16)
_STORAGE_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
_TRANSFORM_CHUNK = 8192


def _concat_histories(old, new, n_old):
    """Warm start: append this fit's epochs to the previous history,
    numbering them on; a key only one side has is padded with NaN."""
    out = {}
    for key in list(old) + [k for k in new if k not in old]:
        before = list(old.get(key, [float("nan")] * n_old))
        after = list(new.get(key, [float("nan")] * len(new["epoch"])))
        if key == "epoch":
            after = [n_old + e for e in after]
        out[key] = before + after
    return out


#: The small-data recipe (see :meth:`FuseMixAligner.small_data_params`).
_SMALL_DATA_RECIPE = {
    "n_components": 256,
    "n_layers": 1,
    "expansion": 1,
    "dropout": 0.3,
    "alpha": 0.5,
    "batch_size": 256,
    "max_epochs": 200,
    "learning_rate": 1e-3,
    "weight_decay": 0.1,
}


class FuseMixAligner(AlignerMixin, BaseEstimator):
    """Align two frozen encoders' latents in one space with FuseMix.

    Two fusion adapters, ``h_x`` for modality x and ``h_y`` for modality y,
    map precomputed latents into a shared ``n_components``-dimensional space.
    They are trained with the symmetric InfoNCE loss on pairs ``(X[i],
    y[i])``, augmented by FuseMix: each step draws ``2 * batch_size`` pairs,
    draws ONE coefficient ``lam ~ Beta(alpha, alpha)`` and trains on
    ``(lam * xA + (1 - lam) * xB, lam * yA + (1 - lam) * yB)``, which is still
    a positive pair because both modalities share ``lam`` (Vouitsis et al.,
    CVPR 2024).

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    n_components : int, default=512
        Dimension of the shared space.
    n_layers : int or tuple of (int, int), default=4
        Residual blocks per adapter; a pair sets ``h_x`` and ``h_y``
        separately.  0 gives a linear adapter (LayerNorm then Linear).
    expansion : int, default=4
        Hidden width of a block is ``expansion`` times its input width.
    dropout : float, default=0.6
        Dropout inside the blocks.  The paper's public recipe uses 0.6; it is
        a strong regulariser that suits the small datasets FuseMix targets.
    alpha : float, default=1.0
        Mixing coefficients are drawn from ``Beta(alpha, alpha)``;
        ``alpha=0`` turns mixing off (plain InfoNCE on the pairs).
    temperature : float, default=0.07
        Initial softmax temperature.
    learn_temperature : bool, default=True
        Learn the temperature (clamped to [0.001, 0.5]) or keep it fixed.
    batch_size : int, default=20480
        Pairs in each contrastive loss (the paper's value).  With mixing each
        step draws ``2 * batch_size`` rows, so it is reduced to
        ``n_samples // 2`` (``n_samples`` without mixing) with a warning when
        the data is smaller.
    max_epochs : int, default=100
        Passes over the pairs.  An epoch is ``n_samples // (2 * batch_size)``
        steps with mixing, ``n_samples // batch_size`` without.
    learning_rate : float, default=1e-3
        Peak AdamW learning rate.
    weight_decay : float, default=0.1
        AdamW weight decay on weight matrices (not on biases, LayerNorm
        weights or the temperature).
    warmup_steps : int, default=100
        Linear warm-up steps before cosine decay to 0, capped at 10% of all
        steps so that short fits still reach the peak rate.
    device : str or torch.device, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``,
        ``"cuda:1"``, or a :class:`torch.device`.  Training on CUDA uses
        bf16 autocast; on CPU, float32.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batch order, mixing coefficients and dropout.
        Pass an int for results that are identical run after run on CPU.
    verbose : int, default=0
        0 silent; 1 a progress bar with loss and temperature; 2 one log line
        per epoch (logger ``"skfusemix"``).
    y_transformer : transformer or None, default=None
        Encodes raw ``y`` (e.g. captions) into latents, in the spirit of
        :class:`~sklearn.compose.TransformedTargetRegressor`: a clone is
        fitted on ``y`` in :meth:`fit` and applied in :meth:`fit`,
        :meth:`transform_y` and :meth:`score`, so ``fit(images, captions)``
        works on raw inputs when ``X`` goes through an encoder in a
        :class:`~sklearn.pipeline.Pipeline`.  Give the encoder a ``memory``
        so that repeated fits (``GridSearchCV``) never encode a caption twice.
    warm_start : bool, default=False
        Continue training the fitted adapters (and temperature) instead of
        starting afresh; the architecture parameters must match.  The
        history and ``t_`` continue from the previous fit.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the items (identical ``X`` rows
        stay together), score them (mean recall@1 both ways, as
        :meth:`score`) after every epoch, stop after ``n_iter_no_change``
        epochs without an improvement of ``tol`` and keep the best weights.
    validation_fraction : float, default=0.1
        Fraction of the items held out for early stopping.
    n_iter_no_change : int, default=10
        Epochs without improvement before early stopping stops.
    tol : float, default=1e-4
        Smallest validation improvement that counts.
    checkpoint_dir : str or path-like, default=None
        Save the full training state (weights, optimiser, schedule, random
        states) there every ``checkpoint_every`` epochs; a fit with the same
        parameters, data and ``random_state`` resumes from it and reaches
        the same result as an uninterrupted fit (on CPU).
    checkpoint_every : int, default=1
        Epochs between checkpoints.
    max_memory : float, default=None
        Memory budget of the fit in bytes (default: the free memory of the
        device).  When the latents, stored in ``storage_dtype``, fit within
        it together with the training state, they are copied to the device
        once and batches are gathered by index; otherwise ``fit`` *streams*
        them (memmaps are read from their files): contiguous chunks in a
        shuffled order, rows shuffled within a window of chunks, read on a
        background thread, with the windows sized to the budget.  The path
        taken is in ``data_path_`` and in the verbose output.  A fit that
        does not fit either way fails before training with a batch size
        that would.
    storage_dtype : {"float32", "float16", "bfloat16"}, default="float32"
        Dtype in which the latents are kept on the device (and streamed);
        batches are upcast to float32 before mixing.  Half precision halves
        the memory of the latents (5M pairs of 1536-d and 1024-d latents:
        about 26 GB in float16).
    compile : bool, default=False
        Compile the adapters' training step with :func:`torch.compile`
        (worth it for long fits on a GPU; the first epoch pays the
        compilation, tens of seconds).

    Attributes
    ----------
    adapter_x_ : torch.nn.Module
        The fitted adapter ``h_x`` (in eval mode).
    adapter_y_ : torch.nn.Module
        The fitted adapter ``h_y`` (in eval mode).
    temperature_ : float
        Temperature at the end of training.
    history_ : dict of list
        Per epoch: ``epoch``, ``loss``, ``temperature``, ``lr`` and ``time``
        (seconds since the start of training).
    batch_size_ : int
        Batch size used (``batch_size`` reduced to fit the data).
    n_iter_ : int
        Number of epochs run.
    t_ : int
        Number of optimiser steps taken.
    device_ : torch.device
        Device the adapters were trained on.
    n_features_in_ : int
        Number of features of ``X`` (modality x) seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features of ``X`` when it is a DataFrame with string
        column names.
    n_features_y_in_ : int
        Number of features of ``y`` (modality y, after ``y_transformer``)
        seen during fit.
    y_transformer_ : transformer
        The fitted clone of ``y_transformer``; only when it is given.
    validation_scores_ : list of float or None
        Validation score after each epoch with ``early_stopping``, else None.
    best_validation_score_ : float or None
        Best validation score with ``early_stopping``, else None.
    data_path_ : {"device", "stream"}
        Whether the latents were held on the device or streamed.

    See Also
    --------
    skfusemix.metrics.retrieval_report : Recall@k both ways on embeddings.

    Notes
    -----
    ``fit(X, y)`` follows scikit-learn's signature on purpose: ``y`` is the
    paired modality, not a label.  So :class:`~sklearn.pipeline.Pipeline` and
    :class:`~sklearn.model_selection.GridSearchCV` work unchanged; keep all
    captions of an image in the same fold (``GroupKFold``).

    References
    ----------
    N. Vouitsis, Z. Liu, S. K. Gorti, V. Villecroze, J. C. Cresswell, G. Yu,
    G. Loaiza-Ganem and M. Volkovs. "Data-Efficient Multimodal Fusion on a
    Single GPU." CVPR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix import FuseMixAligner
    >>> rng = np.random.RandomState(0)
    >>> shared = rng.normal(size=(200, 8))
    >>> Zx = shared @ rng.normal(size=(8, 32))
    >>> Zy = shared @ rng.normal(size=(8, 24))
    >>> aligner = FuseMixAligner(n_components=16, n_layers=1, dropout=0.1,
    ...                          batch_size=50, max_epochs=40, random_state=0)
    >>> aligner.fit(Zx, Zy).transform(Zx).shape
    (200, 16)
    >>> aligner.score(Zx, Zy) > 0.5
    True
    """

    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_layers": [Interval(numbers.Integral, 0, None, closed="left"), tuple, list],
        "expansion": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "learn_temperature": ["boolean"],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "warmup_steps": [Interval(numbers.Integral, 0, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "y_transformer": [None, HasMethods(["fit", "transform"])],
        "warm_start": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "checkpoint_dir": [None, str, os.PathLike],
        "checkpoint_every": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_memory": [None, Interval(numbers.Real, 0, None, closed="neither")],
        "storage_dtype": [StrOptions({"float32", "float16", "bfloat16"})],
        "compile": ["boolean"],
    }

    def __init__(
        self,
        n_components=512,
        *,
        n_layers=4,
        expansion=4,
        dropout=0.6,
        alpha=1.0,
        temperature=0.07,
        learn_temperature=True,
        batch_size=20480,
        max_epochs=100,
        learning_rate=1e-3,
        weight_decay=0.1,
        warmup_steps=100,
        device="auto",
        random_state=None,
        verbose=0,
        y_transformer=None,
        warm_start=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        checkpoint_dir=None,
        checkpoint_every=1,
        max_memory=None,
        storage_dtype="float32",
        compile=False,
    ):
        self.n_components = n_components
        self.n_layers = n_layers
        self.expansion = expansion
        self.dropout = dropout
        self.alpha = alpha
        self.temperature = temperature
        self.learn_temperature = learn_temperature
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.y_transformer = y_transformer
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.max_memory = max_memory
        self.storage_dtype = storage_dtype
        self.compile = compile

    @staticmethod
    def small_data_params(n_samples=None):
        """Hyper-parameters of the small-data recipe.

        The paper's defaults (4-layer adapters, dropout 0.6, batches of
        20,480) were tuned for millions of pairs.  For a few hundred to tens of
        thousands of pairs, the recipe below was chosen on validation splits of
        the OpenMoji demo data and UCI mfeat (see the docs' small-data page,
        which reports held-out results against CCA, Procrustes and ASIF).
        Standardise the latents first (e.g. a
        :class:`~sklearn.preprocessing.StandardScaler` per modality).  Wider
        adapters (``n_layers=2, expansion=2``) did better on the held-out
        pairs of both data sets, at two to three times the fit time.

        Parameters
        ----------
        n_samples : int, default=None
            Number of training pairs, when known: the batch is capped so that
            an epoch has at least four mixing steps.

        Returns
        -------
        params : dict
            Keyword arguments for :class:`FuseMixAligner`; override any of
            them as usual (``FuseMixAligner(**{**params, "alpha": 0.0})``).

        Examples
        --------
        >>> from skfusemix import FuseMixAligner
        >>> params = FuseMixAligner.small_data_params(n_samples=1000)
        >>> params["batch_size"], params["n_layers"]
        (125, 1)
        >>> aligner = FuseMixAligner(**params, random_state=0)
        """
        params = dict(_SMALL_DATA_RECIPE)
        if n_samples is not None:
            if not isinstance(n_samples, numbers.Integral) or n_samples < 2:
                raise ValueError(
                    f"n_samples must be an integer >= 2, got {n_samples!r}."
                )
            params["batch_size"] = max(1, min(params["batch_size"], n_samples // 8))
        return params

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # embeddings are float32
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the adapters on paired latents.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            Latents of modality x (float16/32/64, or integers).  Not modified.
        y : array-like or torch.Tensor of shape (n_samples, n_features_y)
            Latents of modality y; row ``i`` pairs with row ``i`` of ``X``.
            A 1-D ``y`` is one feature, as in :mod:`sklearn.cross_decomposition`.
            Not modified.

        Returns
        -------
        self : FuseMixAligner
            The fitted estimator.

        Raises
        ------
        TrainingDivergedError
            When the loss or the weights became NaN or infinite; the
            estimator then holds the last finite weights (see
            :class:`~skfusemix.exceptions.TrainingDivergedError`).
        ValueError
            For bad input, inputs of overflowing scale, or a fit that needs
            more device memory than is available (with a batch size that
            fits).
        """
        n_layers_x, n_layers_y = self._check_n_layers()
        device = resolve_device(self.device)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None: y is the paired modality, an array of shape (n_samples, n_features_y)."
            )
        warm = self.warm_start and hasattr(self, "adapter_x_")
        X = self._check_X(X, reset=not warm, fitting=True)
        if self.y_transformer is not None:
            self.y_transformer_ = clone(self.y_transformer).fit(y)
            y = self.y_transformer_.transform(y)
        elif hasattr(self, "y_transformer_"):
            del self.y_transformer_
        y = self._check_y(y, reset=not warm, fitting=True)
        if X.shape[0] != y.shape[0]:
            raise ValueError(
                f"X and y must pair row by row, but X has {X.shape[0]} rows and y has "
                f"{y.shape[0]}."
            )
        n = X.shape[0]
        if n < 2:
            raise ValueError(
                f"Found 1 sample (n_samples={n}), but {type(self).__name__} needs at least "
                "2 pairs: contrastive learning needs negatives."
            )
        check_input_scale(X, "X")
        check_input_scale(y, "y")
        if warm:
            self._check_warm_start(n_layers_x, n_layers_y)
        seed = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        train_idx, val_idx = self._validation_split(X, seed)
        storage = _STORAGE_DTYPES[self.storage_dtype]
        plan = self._plan(X, y, device, storage, train_idx, val_idx, seed)
        cuda_devices = (
            [device.index if device.index is not None else torch.cuda.current_device()]
            if device.type == "cuda"
            else []
        )
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(seed)
            adapter_x, adapter_y, loss_fn = self._initial_modules(
                warm, X.shape[1], y.shape[1], n_layers_x, n_layers_y, device
            )
            checkpoint = None
            if self.checkpoint_dir is not None:
                checkpoint = Checkpoint(
                    self.checkpoint_dir,
                    self.checkpoint_every,
                    self._fit_identity(
                        X, y, seed, device, (adapter_x, adapter_y, loss_fn)
                    ),
                )
            validation = None
            if val_idx is not None:
                validation = Validation(
                    as_device_tensor(take(X, val_idx), device),
                    as_device_tensor(take(y, val_idx), device),
                    row_groups(take(X, val_idx)),
                )
            if plan.path == "device":
                if train_idx is not None:
                    X, y = take(X, train_idx), take(y, train_idx)
                batches = DeviceBatches(
                    as_device_tensor(X, device, storage),
                    as_device_tensor(y, device, storage),
                )
            else:
                keep = None
                if train_idx is not None:
                    keep = np.zeros(n, dtype=bool)
                    keep[train_idx] = True
                batches = StreamBatches(
                    X, y, device, storage, plan.window_rows, keep=keep, seed=seed
                )
            del X, y
            if self.verbose:
                verbose_logger(self.verbose)
                logger.info(
                    "FuseMix fit on %s: %s; about %s of memory.",
                    device,
                    batches.describe(),
                    _human(plan.estimate["total"]),
                )
            self.data_path_ = batches.path
            self.batch_size_ = plan.batch_size
            try:
                result = train(
                    adapter_x,
                    adapter_y,
                    loss_fn,
                    batches,
                    plan,
                    validation=validation,
                    checkpoint=checkpoint,
                )
            except TrainingDivergedError as exc:
                for module in (adapter_x, adapter_y, loss_fn):
                    module.eval()
                self._set_fitted(
                    adapter_x, adapter_y, loss_fn, exc.result, device, warm
                )
                raise
            finally:
                batches.close()
        self._set_fitted(adapter_x, adapter_y, loss_fn, result, device, warm)
        if result.interrupted:
            warnings.warn(
                f"Training was interrupted (Ctrl-C) after {result.n_steps} steps, in "
                f"epoch {len(result.history['epoch'])} of {self.max_epochs}; the "
                "estimator holds the weights reached (the best validation weights with "
                "early_stopping).",
                FitInterruptedWarning,
                stacklevel=2,
            )
        return self

    def _plan(self, X, y, device, storage, train_idx, val_idx, seed):
        """The resolved fit (:class:`~skfusemix.engine._plan.FitPlan`): the
        batch size that fits the data, and device-resident or streamed
        latents from the memory budget (see
        :func:`skfusemix.engine._plan.plan_fit_memory`)."""
        n_train = X.shape[0] if train_idx is None else len(train_idx)
        batch_size = self._effective_batch_size(n_train)
        mixing = self.alpha > 0
        on_device = any(
            isinstance(Z, torch.Tensor) and Z.device.type != "cpu" for Z in (X, y)
        )
        stream = None
        if not on_device:
            stream = {
                "row_bytes": dtype_bytes(X) * X.shape[1] + dtype_bytes(y) * y.shape[1],
                "storage_row_bytes": storage.itemsize * (X.shape[1] + y.shape[1]),
                "min_window_rows": 2 * rows_per_step(batch_size, mixing),
            }
        memory = plan_fit_memory(
            device,
            available=self.max_memory,
            stream=stream,
            n_samples=n_train,
            n_features=X.shape[1],
            n_features_y=y.shape[1],
            n_components=self.n_components,
            n_layers=self._check_n_layers(),
            expansion=self.expansion,
            batch_size=batch_size,
            mixing=mixing,
            n_validation=0 if val_idx is None else len(val_idx),
            storage_bytes=storage.itemsize,
        )
        return FitPlan(
            n_samples=n_train,
            batch_size=batch_size,
            max_epochs=self.max_epochs,
            alpha=self.alpha,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            warmup_steps=self.warmup_steps,
            seed=seed,
            path=memory["path"],
            window_rows=memory.get("window_rows"),
            estimate=memory["estimate"],
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            compile=self.compile,
            verbose=self.verbose,
        )

    def _initial_modules(self, warm, d_x, d_y, n_layers_x, n_layers_y, device):
        """Fresh adapters and loss, or (warm start) copies of the fitted ones
        with the current dropout and learn_temperature."""
        if warm:
            adapter_x = copy.deepcopy(self.adapter_x_).to(device)
            adapter_y = copy.deepcopy(self.adapter_y_).to(device)
            loss_fn = copy.deepcopy(self.loss_).to(device)
            for module in (*adapter_x.modules(), *adapter_y.modules()):
                if isinstance(module, torch.nn.Dropout):
                    module.p = self.dropout
            loss_fn.log_temperature.requires_grad_(self.learn_temperature)
            return adapter_x, adapter_y, loss_fn
        kwargs = {"expansion": self.expansion, "dropout": self.dropout}
        adapter_x = Adapter(d_x, self.n_components, n_layers_x, **kwargs).to(device)
        adapter_y = Adapter(d_y, self.n_components, n_layers_y, **kwargs).to(device)
        loss_fn = SymmetricInfoNCE(self.temperature, self.learn_temperature).to(device)
        return adapter_x, adapter_y, loss_fn

    def _check_warm_start(self, n_layers_x, n_layers_y):
        for name, adapter, n_layers in (
            ("x", self.adapter_x_, n_layers_x),
            ("y", self.adapter_y_, n_layers_y),
        ):
            found = (
                adapter.proj.out_features,
                len(adapter.blocks),
                adapter.blocks[0].fc1.out_features // adapter.blocks[0].fc1.in_features
                if len(adapter.blocks)
                else self.expansion,
            )
            wanted = (self.n_components, n_layers, self.expansion)
            if found != wanted:
                raise ValueError(
                    f"warm_start=True cannot continue: the fitted adapter h_{name} has "
                    f"(n_components, n_layers, expansion)={found} but the parameters "
                    f"ask for {wanted}.  Set warm_start=False to train from scratch."
                )

    def _validation_split(self, X, seed):
        """Train and validation row indices for early stopping; groups of
        identical X rows (one item, several captions) stay on one side."""
        if not self.early_stopping:
            return None, None
        groups = row_groups(X)
        n_groups = int(groups.max()) + 1
        if n_groups < 4:
            raise ValueError(
                f"early_stopping=True needs at least 4 distinct X items to hold some out "
                f"for validation; found {n_groups}."
            )
        splitter = GroupShuffleSplit(
            n_splits=1, test_size=self.validation_fraction, random_state=seed
        )
        try:
            train_idx, val_idx = next(splitter.split(X, groups=groups))
        except ValueError as exc:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} cannot split "
                f"{n_groups} items into a training and a validation set: {exc}"
            ) from None
        if len(val_idx) < 2 or len(train_idx) < 2:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves "
                f"{len(train_idx)} training and {len(val_idx)} validation pairs; both "
                "need at least 2."
            )
        return np.sort(train_idx), np.sort(val_idx)

    def _fit_identity(self, X, y, seed, device, modules):
        """What must match for a checkpoint to be resumed by this fit."""
        ignored = {
            "verbose",
            "checkpoint_dir",
            "checkpoint_every",
            "max_memory",
            "device",
        }
        params = {
            k: (type(v).__name__ if k == "y_transformer" and v is not None else v)
            for k, v in self.get_params(deep=False).items()
            if k not in ignored and k != "random_state"
        }
        params["n_layers"] = list(self._check_n_layers())
        return {
            "params": json.loads(json.dumps(params, default=str)),
            "seed": seed,
            "device": device.type,
            "data": data_digest(X, y),
            "initial_weights": weights_digest(modules),
        }

    def _set_fitted(self, adapter_x, adapter_y, loss_fn, result, device, warm):
        history = result.history
        if warm and hasattr(self, "history_"):
            history = _concat_histories(
                self.history_, history, len(self.history_["epoch"])
            )
            self.t_ += result.n_steps
        else:
            self.t_ = result.n_steps
        self.adapter_x_, self.adapter_y_, self.loss_ = adapter_x, adapter_y, loss_fn
        self.temperature_ = float(loss_fn.temperature)
        self.history_ = history
        self.n_iter_ = len(history["epoch"])
        self.device_ = device
        if "val_score" in result.history:
            self.validation_scores_ = list(result.history["val_score"])
            self.best_validation_score_ = result.best_score
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _check_n_layers(self):
        n_layers = self.n_layers
        pair = (
            (n_layers, n_layers)
            if isinstance(n_layers, numbers.Integral)
            else tuple(n_layers)
        )
        if len(pair) != 2 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0
            for v in pair
        ):
            raise ValueError(
                "n_layers must be a non-negative int or a pair (n_layers_x, n_layers_y) of "
                f"them, got {n_layers!r}."
            )
        return int(pair[0]), int(pair[1])

    def _effective_batch_size(self, n):
        limit = max(n // rows_per_step(1, self.alpha > 0), 1)
        if self.batch_size > limit:
            rows = (
                "2 * batch_size rows per step (mixing)"
                if self.alpha > 0
                else "batch_size rows per step"
            )
            warnings.warn(
                f"batch_size={self.batch_size} is larger than the data allows ({n} pairs, "
                f"{rows}); using batch_size={limit}.",
                UserWarning,
                stacklevel=5,
            )
            return limit
        return self.batch_size

    # --------------------------------------------------------- validation
    def _check_X(self, X, *, reset, fitting=False):
        if isinstance(X, torch.Tensor):
            X = check_tensor(X, "X")
            if reset:
                self.n_features_in_ = X.shape[1]
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            elif X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input."
                )
            return X
        if isinstance(X, np.memmap):  # not read into memory
            X = check_out_of_core(X, "X", finite=not fitting)
            if reset:
                self.n_features_in_ = X.shape[1]
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            elif X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input."
                )
            return X
        return validate_data(self, X, reset=reset, dtype=_FLOAT_DTYPES)

    def _check_y(self, y, *, reset, fitting=False):
        if isinstance(y, torch.Tensor):
            y = check_tensor(y, "y")
        elif isinstance(y, np.memmap):
            y = check_out_of_core(
                y.reshape(-1, 1) if y.ndim == 1 else y, "y", finite=not fitting
            )
        else:
            y = check_array(y, dtype=_FLOAT_DTYPES, ensure_2d=False, input_name="y")
            if y.ndim == 1:  # one feature, as in sklearn.cross_decomposition
                y = y.reshape(-1, 1)
            elif y.ndim != 2:
                raise ValueError(
                    f"y must be 2-D (n_samples, n_features_y), got shape {y.shape}."
                )
        if reset:
            self.n_features_y_in_ = y.shape[1]
        elif y.shape[1] != self.n_features_y_in_:
            raise ValueError(
                f"y has {y.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_y_in_} features as input."
            )
        return y

    # ---------------------------------------------------------- transform
    @property
    def _n_features_out(self):
        return self.n_components

    def transform(self, X):
        """Embed modality x in the shared space.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            Latents of modality x.

        Returns
        -------
        Sx : ndarray of shape (n_samples, n_components)
            L2-normalised float32 embeddings.
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        return self._embed(self.adapter_x_, X)

    def transform_y(self, y):
        """Embed modality y in the shared space.

        Parameters
        ----------
        y : array-like or torch.Tensor of shape (n_samples, n_features_y)
            Latents of modality y, or raw inputs when ``y_transformer`` is set.

        Returns
        -------
        Sy : ndarray of shape (n_samples, n_components)
            L2-normalised float32 embeddings.
        """
        check_is_fitted(self)
        if hasattr(self, "y_transformer_"):
            y = self.y_transformer_.transform(y)
        y = self._check_y(y, reset=False)
        return self._embed(self.adapter_y_, y)

    def _embed(self, adapter, Z):
        device = self._inference_device()
        adapter.to(device).eval()
        out = np.empty((Z.shape[0], self.n_components), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, Z.shape[0], _TRANSFORM_CHUNK):
                chunk = as_device_tensor(Z[start : start + _TRANSFORM_CHUNK], device)
                out[start : start + chunk.shape[0]] = (
                    F.normalize(adapter(chunk), dim=-1).cpu().numpy()
                )
        return out

    def _inference_device(self):
        """The fit device when present; CPU on a machine without it (e.g. a
        model trained on CUDA and unpickled on a laptop)."""
        try:
            return resolve_device(self.device)
        except ValueError:
            return torch.device("cpu")

    # -------------------------------------------------------- persistence
    def save(self, path, *, encoders=None):
        """Save the fitted aligner without pickle: a directory of safetensors
        weights and a JSON configuration.

        The directory holds ``model.safetensors`` (adapter weights and the
        learned temperature) and ``config.json`` (parameters, fitted
        attributes, the skfusemix and format versions, the encoders when
        given, and a checksum of the weights).  Reload it with
        :meth:`load`, which never executes code from the files.  Prefer this
        over pickle to share or archive a model; pickle/joblib stay right for
        scikit-learn workflows (a :class:`~sklearn.pipeline.Pipeline` or a
        grid search saved whole) between trusted parties.

        Parameters
        ----------
        path : str or path-like
            Directory to write (created when missing; the two files are
            replaced atomically).
        encoders : dict, default=None
            Identities of the encoders that made the latents, under ``"x"``
            and/or ``"y"``: an encoder of :mod:`skfusemix.encoders`, the
            metadata dict of :func:`~skfusemix.encoders.read_latent_metadata`,
            or a string.  Stored in ``config.json`` and exposed as
            ``encoders_`` after :meth:`load`.

        Returns
        -------
        path : str or path-like
            The directory written.

        Notes
        -----
        ``y_transformer`` (an object) and a ``RandomState`` ``random_state``
        are not stored: a warning names them and they load as ``None``; pass
        them back to :meth:`load`.
        """
        check_is_fitted(self)
        return save_aligner(self, path, encoders=encoders)

    @classmethod
    def load(cls, path, *, device=None, expected_encoders=None, **params):
        """Load an aligner written by :meth:`save`.

        Only JSON and safetensors are parsed (no pickle), and strictly: a
        file with missing, extra or reshaped tensors, a configuration that
        does not match the tensors, or a newer incompatible format version
        raises a ValueError and nothing is loaded.

        Parameters
        ----------
        path : str or path-like
            Directory written by :meth:`save`.
        device : str or torch.device, default=None
            Where to put the adapters (this also sets the ``device``
            parameter).  By default the saved ``device``, or CPU when this
            machine does not have it.
        expected_encoders : dict, default=None
            ``{"x": encoder, "y": encoder}`` to check against the encoders
            recorded at save time; a ValueError names the differences.
        **params
            Parameters to set on the loaded estimator, e.g. the
            ``y_transformer`` that could not be saved.

        Returns
        -------
        aligner : FuseMixAligner
            A fitted aligner.

        Examples
        --------
        >>> import numpy as np, tempfile
        >>> from skfusemix import FuseMixAligner
        >>> rng = np.random.RandomState(0)
        >>> Zx, Zy = rng.normal(size=(64, 8)), rng.normal(size=(64, 6))
        >>> aligner = FuseMixAligner(n_components=4, n_layers=1, batch_size=16,
        ...                          max_epochs=2, random_state=0).fit(Zx, Zy)
        >>> path = aligner.save(tempfile.mkdtemp() + "/aligner")
        >>> loaded = FuseMixAligner.load(path, device="cpu")
        >>> bool(np.array_equal(loaded.transform(Zx), aligner.transform(Zx)))
        True
        """
        return load_aligner(
            cls, path, device=device, expected_encoders=expected_encoders, **params
        )

    # ----------------------------------------------------------- pickling
    def __getstate__(self):
        state = super().__getstate__()
        for name in ("adapter_x_", "adapter_y_", "loss_"):
            module = state.get(name)
            if module is not None and any(
                p.device.type != "cpu" for p in module.parameters()
            ):
                state[name] = copy.deepcopy(module).cpu()
        if "device_" in state:
            state["device_"] = str(state["device_"])
        return state

    def __setstate__(self, state):
        if "device_" in state:
            state["device_"] = torch.device(state["device_"])
        super().__setstate__(state)
