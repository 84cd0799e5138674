"""FuseMixAligner: the scikit-learn face of FuseMix training."""

import copy
import json
import numbers
import os
import warnings
from dataclasses import replace

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
    join_weighted,
    pair_groups,
    resolve_device,
    take,
)
from ._hubness import CSLS_COLUMNS, fold_csls, neighbour_similarity
from ._logging import logger, verbose_logger
from ._persistence import load_aligner, save_aligner
from ._recipe import (
    AUTO_PARAMS,
    MAX_ANCHORS,
    PAPER_PARAMS,
    SMALL_DATA_RECIPE,
    auto_params,
    check_n_layers,
)
from .base import AlignerMixin
from .baselines import ASIFAligner, CCAAligner
from .engine._batches import DeviceBatches, StreamBatches
from .engine._checkpoint import Checkpoint, data_digest, weights_digest
from .engine._distributed import fingerprint, process_group
from .engine._loop import Validation, train
from .engine._plan import FitPlan, _human, plan_fit_memory, rows_per_step
from .engine.losses import SigmoidLoss, StructureRegularizer, SymmetricInfoNCE
from .engine.nn import Adapter, FixedSpace, Standardize
from .exceptions import FitInterruptedWarning, TrainingDivergedError
from .metrics import scored_items

__all__ = ["FuseMixAligner"]

_FLOAT_DTYPES = (np.float32, np.float64, np.float16)
_STORAGE_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
_TRANSFORM_CHUNK = 8192


def _host_array(Z):
    """Validated latents (an array, a memmap or a tensor on any device) as
    a NumPy array in host memory."""
    if isinstance(Z, torch.Tensor):
        return Z.detach().cpu().numpy()
    return np.asarray(Z)


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

    Parameters marked "auto" are resolved in :meth:`fit` from the number of
    training pairs and the latent widths (the fitted values are the
    attributes of the same name ending in ``_``): up to 50,000 pairs the
    small-data recipe (two residual blocks of width 2x, 1x for latents wider
    than 640; a 256-d space, dropout 0.3, ``alpha=0.5``, 200 epochs of
    batches of 256, and the embeddings joined with those of a regularised
    CCA at weight 0.3 and, up to 8,192 pairs, with their similarities to
    the training pairs at weight 0.3, see ``cca_weight`` and
    ``anchor_weight``), above it the paper's
    architecture with batches that grow with the data.  The paper's exact
    recipe is ``FuseMixAligner(**FuseMixAligner.paper_params())``.

    Parameters
    ----------
    n_components : int or "auto", default="auto"
        Dimension of the shared space ("auto": 256 for small data, never
        wider than the wider input; 512 above 50,000 pairs).
    n_layers : int, tuple of (int, int) or "auto", default="auto"
        Residual blocks per adapter; a pair sets ``h_x`` and ``h_y``
        separately.  0 gives a linear adapter (LayerNorm then Linear).
        "auto": 2 for small data, 4 above.
    expansion : int or "auto", default="auto"
        Hidden width of a block is ``expansion`` times its input width
        ("auto": 2 for small data with latents up to 640 wide, 1 for wider
        ones; 4 above 50,000 pairs).
    dropout : float or "auto", default="auto"
        Dropout inside the blocks ("auto": 0.3 for small data, the paper's
        0.6 above).
    alpha : float or "auto", default="auto"
        Mixing coefficients are drawn from ``Beta(alpha, alpha)``;
        ``alpha=0`` turns mixing off (plain InfoNCE on the pairs).  "auto":
        0.5 for small data (chosen on validation splits), the paper's 1.0
        above.
    temperature : float, default=0.07
        Initial softmax temperature.
    learn_temperature : bool, default=True
        Learn the temperature (clamped to [0.001, 0.5]) or keep it fixed.
    batch_size : int or "auto", default="auto"
        Pairs in each contrastive loss.  With mixing each step draws
        ``2 * batch_size`` rows, so it is reduced to ``n_samples // 2``
        (``n_samples`` without mixing) with a warning when the data is
        smaller.  "auto": 256, at most ``n_samples // 8``, for small data;
        ``n_samples // 256`` up to the paper's 20,480 above.
    max_epochs : int or "auto", default="auto"
        Passes over the pairs.  An epoch is ``n_samples // (2 * batch_size)``
        steps with mixing, ``n_samples // batch_size`` without.  "auto": 200
        up to 3,200 pairs, then ``640_000 // n_samples`` (at least 50) up to
        50,000 pairs, 100 above.
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
        Hold out ``validation_fraction`` of the items (the pairs of one
        group, see ``fit``, stay together), score them (mean recall@1 both
        ways, as :meth:`score`) after every epoch, stop after
        ``n_iter_no_change`` epochs without an improvement of ``tol`` and
        keep the best weights.
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
    standardize : bool, default=True
        Standardise each modality's features (mean 0, variance 1, statistics
        of the latents passed to :meth:`fit`) as the adapters' first layer;
        the statistics are fitted buffers, saved with the weights.  With
        ``fixed_y``, y itself is left as it is: ``h_x`` predicts y's
        standardised features and maps them back to y's mean and scale as
        its last layer.
    loss : {"infonce", "sigmoid"}, default="infonce"
        The contrastive objective: CLIP's symmetric InfoNCE, or SigLIP's
        pairwise sigmoid loss (learned scale ``1 / temperature`` and bias).
        Either way the pairs of one group (``groups`` of :meth:`fit`) are
        positives of each other, never negatives.
    structure_weight : float, default=0.0
        Weight of the STRUCTURE regulariser (Groger et al., NeurIPS 2025):
        the Jensen-Shannon divergence between each batch's neighbourhood
        distributions in the input latents and in the shared space, for
        both modalities, ramped up linearly over the first 10% of the steps.
        0 turns it off.
    structure_levels : int, default=1
        Neighbourhood hops compared by STRUCTURE (powers of the batch's
        neighbourhood distribution).
    fixed_y : bool, default=False
        One-sided alignment: y's own latent space is the shared space.  Only
        ``h_x`` is trained; it maps X into y's space (``n_components_`` is
        y's width, so ``n_components`` must be "auto" or that width), and
        :meth:`transform_y` returns the L2-normalised y latents, unchanged in
        direction.  So ``transform(X)`` can be searched against vectors that
        the y encoder embedded long ago (an existing index), and several
        modalities aligned into the same y space can be compared with each
        other (see :class:`~skfusemix.AnchorBinding`).  y is not
        standardised and ``n_layers`` is one int (the blocks of ``h_x``).
    cca_weight : float in [0, 1) or "auto", default="auto"
        Join the adapters' embeddings with those of a
        :class:`~skfusemix.CCAAligner` fitted (in closed form, in seconds)
        on the same training pairs: :meth:`transform` and
        :meth:`transform_y` return ``[sqrt(1 - w) * S, sqrt(w) * C]``, still
        unit rows, whose cosine similarity is ``(1 - w) * cos_FuseMix + w *
        cos_CCA``.  The linear and the nonlinear aligner make different
        errors on small data, and the blend beat FuseMix alone on six of
        seven validation pairings (see the docs' small-data page).  The
        output is then ``n_components_ + cca_.n_components_out_`` wide.
        0 gives the adapters' embeddings alone (the FuseMix method as
        published).  "auto": 0.3 up to 50,000 pairs, 0 above, and always 0
        with ``fixed_y`` (which must return y's own space).
    anchor_weight : float in [0, 1) or "auto", default="auto"
        Join also the embeddings described by their similarities to the
        training pairs: ASIF's relative representation (an
        :class:`~skfusemix.ASIFAligner`, its defaults) computed in the
        adapters' and CCA's joined space (the output without anchor
        columns), whose anchors are that space's embeddings of the training
        pairs (8,192 of them drawn at random when there are more).
        A query and an item then also match when their nearest training
        pairs are the same.  With ``cca_weight``
        ``c`` and this weight ``a`` the output is ``[sqrt(1 - c - a) * S,
        sqrt(c) * C, sqrt(a) * A]``, whose cosine is ``(1 - c - a) *
        cos_FuseMix + c * cos_CCA + a * cos_anchors``, and it is
        ``anchors_.n_anchors_`` wider.  ``c + a`` must be below 1.  "auto":
        0.3 up to 8,192 training pairs (all of them anchors), 0 above and
        with ``fixed_y``; it gained
        +0.013 mean R@1 over the adapters and CCA alone on seven validation
        pairings and lost on none (see the docs' small-data page).
    csls_neighbors : int >= 0 or "auto", default="auto"
        Correct hubness with CSLS (cross-domain similarity local scaling,
        Conneau et al., ICLR 2018): an item close to many training pairs of
        the other modality is penalised, so that it is not retrieved for
        every query.  For ``x`` and ``y`` the model's similarity becomes
        ``cos(x, y) - (r_Y(x) + r_X(y)) / 2``, where ``r_Y(x)`` is the mean
        cosine of ``x`` to its ``csls_neighbors`` nearest y embeddings of
        the training pairs (the anchors' rows), measured in the adapters'
        and CCA's joined space (the anchor columns, themselves similarities
        to the training pairs, are left out of it).  The correction is
        folded into the embeddings: they keep unit rows, are 4 columns
        wider, and the cosine of an x and a y embedding is half that
        similarity (see the docs' small-data page); cosines within one
        modality are then those of the uncorrected embeddings halved, plus
        a near-constant offset.  0 turns it off.  "auto": 10 (the published
        k) up to 8,192 training pairs, 0 above and with ``fixed_y``; it
        gained +0.010 mean R@1 on seven validation pairings and lost on
        none.
    distributed : "auto" or bool, default="auto"
        Train one model with all the processes of an initialised
        :mod:`torch.distributed` process group (launched by ``torchrun``,
        Ray Train, ...): every process calls ``fit`` on the same data, takes
        its share of each global batch of ``batch_size`` pairs (which must
        then be a multiple of the number of processes; "auto" sizes are
        rounded down to one), the embeddings of the whole batch are gathered
        for the loss and the gradients summed, so the fit equals the
        single-process fit of the same batches (exactly so without dropout;
        each process draws its own dropout masks).  Rank 0 writes the
        checkpoints.  "auto": when a group of more than one process is
        initialised; ``True``: require one; ``False``: fit alone in each
        process (e.g. different models per process).  The latents must be
        held on the device (no streaming).

    Attributes
    ----------
    adapter_x_ : torch.nn.Module
        The fitted adapter ``h_x`` (in eval mode).
    adapter_y_ : torch.nn.Module
        The fitted adapter ``h_y`` (in eval mode); with ``fixed_y`` a
        :class:`~skfusemix.engine.nn.FixedSpace`, which has no parameters.
    temperature_ : float
        Temperature at the end of training.
    history_ : dict of list
        Per epoch: ``epoch``, ``loss``, ``temperature``, ``lr`` and ``time``
        (seconds since the start of training).
    n_components_ : int
        Dimension of the shared space used.
    n_layers_ : tuple of (int, int)
        Residual blocks of ``h_x`` and ``h_y`` (0 for ``h_y`` with
        ``fixed_y``).
    expansion_ : int
        Hidden-width factor of the blocks.
    dropout_ : float
        Dropout used.
    alpha_ : float
        Mixing parameter used.
    max_epochs_ : int
        Epoch budget used.
    cca_weight_ : float
        Weight of the CCA similarity used (``cca_weight`` resolved).
    cca_ : CCAAligner or None
        The CCA fitted on the training pairs when ``cca_weight_ > 0``, else
        None.
    anchor_weight_ : float
        Weight of the anchor similarity used (``anchor_weight`` resolved).
    anchors_ : ASIFAligner or None
        When ``anchor_weight_ > 0``: the ASIF aligner whose anchors are the
        embeddings of the training pairs (all of them, or 8,192 drawn at
        random) in the fitted adapters' and CCA's joined space; else None.
    csls_neighbors_ : int
        Neighbours of the hubness correction used (``csls_neighbors``
        resolved; 0: none).
    csls_reference_x_, csls_reference_y_ : ndarray of shape (n_reference, width) or None
        When ``csls_neighbors_ > 0``: the embeddings of the training pairs
        (the anchors' rows) in the adapters' and CCA's joined space (``width``
        is ``n_components_`` plus the CCA's components), against which ``r``
        of the other modality is measured; else None.
    batch_size_ : int
        Batch size used (``batch_size`` resolved and reduced to fit the
        data).
    n_iter_ : int
        Number of epochs run.
    n_iter_restored_ : int
        How many of them this fit restored from a checkpoint in
        ``checkpoint_dir`` instead of training them (all of them: a finished
        fit reused).
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
    >>> aligner = FuseMixAligner(max_epochs=40, random_state=0).fit(Zx, Zy)
    >>> aligner.n_components_, aligner.n_layers_, aligner.batch_size_
    (32, (2, 2), 25)
    >>> aligner.transform(Zx).shape  # 32 adapters + 24 CCA + 200 anchors + 4 CSLS
    (200, 260)
    >>> aligner.score(Zx, Zy) > 0.5
    True
    """

    _parameter_constraints = {
        "n_components": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "n_layers": [
            Interval(numbers.Integral, 0, None, closed="left"),
            tuple,
            list,
            StrOptions({"auto"}),
        ],
        "expansion": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left"), StrOptions({"auto"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"auto"})],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "learn_temperature": ["boolean"],
        "batch_size": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "max_epochs": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
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
        "standardize": ["boolean"],
        "loss": [StrOptions({"infonce", "sigmoid"})],
        "structure_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "structure_levels": [Interval(numbers.Integral, 1, None, closed="left")],
        "fixed_y": ["boolean"],
        "distributed": [StrOptions({"auto"}), "boolean"],
        "cca_weight": [
            Interval(numbers.Real, 0, 1, closed="left"),
            StrOptions({"auto"}),
        ],
        "anchor_weight": [
            Interval(numbers.Real, 0, 1, closed="left"),
            StrOptions({"auto"}),
        ],
        "csls_neighbors": [
            Interval(numbers.Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
    }

    def __init__(
        self,
        n_components="auto",
        *,
        n_layers="auto",
        expansion="auto",
        dropout="auto",
        alpha="auto",
        temperature=0.07,
        learn_temperature=True,
        batch_size="auto",
        max_epochs="auto",
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
        standardize=True,
        loss="infonce",
        structure_weight=0.0,
        structure_levels=1,
        fixed_y=False,
        distributed="auto",
        cca_weight="auto",
        anchor_weight="auto",
        csls_neighbors="auto",
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
        self.standardize = standardize
        self.loss = loss
        self.structure_weight = structure_weight
        self.structure_levels = structure_levels
        self.fixed_y = fixed_y
        self.distributed = distributed
        self.cca_weight = cca_weight
        self.anchor_weight = anchor_weight
        self.csls_neighbors = csls_neighbors

    @staticmethod
    def paper_params():
        """The FuseMix paper's public training recipe, exactly.

        Four residual blocks of width 4x, dropout 0.6, a 512-d space, 20,480
        mixed pairs per step (drawn from 40,960 rows), ``alpha=1``, AdamW with
        learning rate 1e-3 and weight decay 0.1, 100 warm-up steps then
        cosine decay, 500 epochs, temperature 0.07 (learned), and no
        standardisation: made for millions of pairs on a GPU.  Use it to
        reproduce the paper; the ``"auto"`` defaults do better on small data.

        Returns
        -------
        params : dict
            Keyword arguments for :class:`FuseMixAligner`.

        Examples
        --------
        >>> from skfusemix import FuseMixAligner
        >>> aligner = FuseMixAligner(**FuseMixAligner.paper_params())
        >>> aligner.n_layers, aligner.batch_size, aligner.max_epochs
        (4, 20480, 500)
        """
        return dict(PAPER_PARAMS)

    @staticmethod
    def small_data_params(n_samples=None):
        """The small-data recipe that ``"auto"`` resolves to up to 50,000
        pairs, as explicit values (to start a grid search from, or to pin
        them).

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
        (125, 2)
        >>> aligner = FuseMixAligner(**params, random_state=0)
        """
        params = dict(SMALL_DATA_RECIPE)
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
    def fit(self, X, y, groups=None):
        """Train the adapters on paired latents.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            Latents of modality x (float16/32/64, or integers).  Not modified.
        y : array-like or torch.Tensor of shape (n_samples, n_features_y)
            Latents of modality y; row ``i`` pairs with row ``i`` of ``X``.
            A 1-D ``y`` is one feature, as in :mod:`sklearn.cross_decomposition`.
            Not modified.
        groups : array-like of shape (n_samples,), default=None
            Item of each pair (e.g. the image of each caption): pairs of one
            group are positives of each other in the contrastive loss, never
            negatives, and stay on one side of the early-stopping split.  By
            default pairs that share an ``X`` row (an image and each of its
            captions) or a ``y`` row (a sentence and each of its recordings)
            are one item.  Reaches
            ``fit`` through :class:`~sklearn.model_selection.GridSearchCV`
            with scikit-learn's metadata routing
            (``FuseMixAligner().set_fit_request(groups=True)``).

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
        group = process_group(self.distributed)
        device = resolve_device(self.device)
        if group is not None:
            device = group.device(device)
        warm = self.warm_start and hasattr(self, "adapter_x_")
        X, y = self._check_pairs(X, y, warm)
        x_items = groups is None  # validation items then counted as score() counts them
        groups = self._check_groups(groups, X, y)
        stats = (
            check_input_scale(X, "X", warn=not self.standardize),
            # a fixed y space is the target as it is: its scale is not advice
            check_input_scale(y, "y", warn=not (self.standardize or self.fixed_y)),
        )
        seed = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        if group is not None:  # rank 0's seed: the same batches and mixing in all
            seed = int(group.broadcast(seed))
        train_idx, val_idx = self._validation_split(groups, seed)
        n_train = X.shape[0] if train_idx is None else len(train_idx)
        batch_size = self._resolve_recipe(n_train, X.shape[1], y.shape[1])
        if warm:
            self._check_warm_start()
        self.cca_ = self._fit_cca(X, y, train_idx)
        self.anchors_ = None
        self.csls_reference_x_ = self.csls_reference_y_ = None
        reference_rows = self._reference_rows(X, y, train_idx, seed)
        storage = _STORAGE_DTYPES[self.storage_dtype]
        plan = self._plan(X, y, device, storage, batch_size, n_train, val_idx, seed)
        if group is not None:
            plan = self._distributed_plan(
                group, plan, X, y, device, storage, n_train, val_idx, warm
            )
        cuda_devices = (
            [device.index if device.index is not None else torch.cuda.current_device()]
            if device.type == "cuda"
            else []
        )
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(seed)
            modules = self._initial_modules(warm, X.shape[1], y.shape[1], device, stats)
            checkpoint = None
            if self.checkpoint_dir is not None:
                checkpoint = Checkpoint(
                    self.checkpoint_dir,
                    self.checkpoint_every,
                    self._fit_identity(X, y, seed, device, modules),
                )
            validation = None
            if val_idx is not None:
                Xv, yv = take(X, val_idx), take(y, val_idx)
                joined = None
                if self.cca_ is not None:
                    joined = (
                        as_device_tensor(self.cca_.transform(_host_array(Xv)), device),
                        as_device_tensor(
                            self.cca_.transform_y(_host_array(yv)), device
                        ),
                        self.cca_weight_,
                    )
                # scored as score() counts items
                val_groups, swapped = (
                    scored_items(Xv, yv) if x_items else (groups[val_idx], False)
                )
                validation = Validation(
                    as_device_tensor(Xv, device),
                    as_device_tensor(yv, device),
                    val_groups,
                    joined=joined,
                    references=None
                    if reference_rows is None
                    else lambda ax, ay: self._references(reference_rows, ax, ay),
                    anchor_weight=self.anchor_weight_,
                    csls_neighbors=self.csls_neighbors_,
                    swapped=swapped,
                )
            batches = self._batches(
                X, y, groups, train_idx, device, storage, plan, seed
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
                    *modules,
                    batches,
                    plan,
                    validation=validation,
                    checkpoint=checkpoint,
                    regularizer=self._regularizer(),
                    distributed=group,
                )
            except TrainingDivergedError as exc:
                for module in modules:
                    module.eval()
                self._set_fitted(*modules, exc.result, device, warm)
                self._fit_references(reference_rows)
                raise
            finally:
                batches.close()
        self._set_fitted(*modules, result, device, warm)
        self._fit_references(reference_rows)
        if result.interrupted:
            warnings.warn(
                f"Training was interrupted (Ctrl-C) after {result.n_steps} steps, in "
                f"epoch {len(result.history['epoch'])} of {self.max_epochs_}; the "
                "estimator holds the weights reached (the best validation weights with "
                "early_stopping).",
                FitInterruptedWarning,
                stacklevel=2,
            )
        return self

    def _check_pairs(self, X, y, warm):
        """Validated latents of both modalities (``y`` through the
        ``y_transformer`` when given), paired row by row."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None: y is the paired modality, an array of shape (n_samples, n_features_y)."
            )
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
        if X.shape[0] < 2:
            raise ValueError(
                f"Found 1 sample (n_samples={X.shape[0]}), but {type(self).__name__} "
                "needs at least 2 pairs: contrastive learning needs negatives."
            )
        return X, y

    def _check_groups(self, groups, X, y):
        """Item codes ``0..n_items-1`` of the pairs: ``groups`` when given,
        else pairs that share an ``X`` row or a ``y`` row (``pair_groups``)."""
        if groups is None:
            return pair_groups(X, y)
        groups = np.asarray(groups)
        if groups.ndim != 1 or groups.shape[0] != X.shape[0]:
            raise ValueError(
                f"groups must be 1-D with one entry per pair ({X.shape[0]}), got shape "
                f"{groups.shape}."
            )
        if groups.dtype.kind == "f" and not np.isfinite(groups).all():
            raise ValueError("groups contains NaN or infinity.")
        return np.unique(groups, return_inverse=True)[1].reshape(-1)

    def _resolve_recipe(self, n_samples, n_features, n_features_y):
        """Set the fitted values of the size parameters: the given ones, or
        what ``"auto"`` resolves to for this data (see :meth:`paper_params`
        and the docs' small-data page)."""
        auto = auto_params(n_samples, n_features, n_features_y)
        resolved = {
            name: auto[name] if getattr(self, name) == "auto" else getattr(self, name)
            for name in AUTO_PARAMS
        }
        self.n_components_ = int(resolved["n_components"])
        self.n_layers_ = check_n_layers(resolved["n_layers"])
        if self.fixed_y:
            self._check_one_sided(n_features_y)
            self.n_components_ = n_features_y
            self.n_layers_ = (self.n_layers_[0], 0)
        self.expansion_ = int(resolved["expansion"])
        self.dropout_ = float(resolved["dropout"])
        self.alpha_ = float(resolved["alpha"])
        self.max_epochs_ = int(resolved["max_epochs"])
        self.cca_weight_ = 0.0 if self.fixed_y else float(resolved["cca_weight"])
        self.anchor_weight_ = 0.0 if self.fixed_y else float(resolved["anchor_weight"])
        self.csls_neighbors_ = 0 if self.fixed_y else int(resolved["csls_neighbors"])
        if self.cca_weight_ + self.anchor_weight_ >= 1:
            raise ValueError(
                "cca_weight + anchor_weight must be below 1 (the adapters' embeddings "
                f"keep the rest), got {self.cca_weight_} + {self.anchor_weight_}."
            )
        return resolved["batch_size"]

    def _fit_cca(self, X, y, train_idx):
        """The CCA whose embeddings are joined to the adapters'
        (``cca_weight_ > 0``), fitted on the training pairs; else None."""
        if self.cca_weight_ == 0:
            return None
        return self._training_cca(X, y, train_idx)

    def _training_cca(self, X, y, train_idx):
        """A CCA of the training pairs, as many components as the shared
        space has (at most)."""
        if train_idx is not None:
            X, y = take(X, train_idx), take(y, train_idx)
        X, y = _host_array(X), _host_array(y)
        width = min(self.n_components_, X.shape[1], y.shape[1])
        return CCAAligner(n_components=width).fit(X, y)

    def _reference_rows(self, X, y, train_idx, seed):
        """Host copies of the training pairs whose embeddings become the
        anchors (``anchor_weight_ > 0``) and the reference of the hubness
        correction (``csls_neighbors_ > 0``): all of them, or ``MAX_ANCHORS``
        drawn at random; else None."""
        if self.anchor_weight_ == 0 and self.csls_neighbors_ == 0:
            return None
        rows = np.arange(X.shape[0]) if train_idx is None else np.asarray(train_idx)
        if len(rows) > MAX_ANCHORS:
            rng = np.random.default_rng(seed)
            rows = np.sort(rng.choice(rows, MAX_ANCHORS, replace=False))
        return _host_array(take(X, rows)), _host_array(take(y, rows))

    def _fit_references(self, rows):
        """Set the anchors and the hubness correction's references from the
        fitted adapters (each when its weight or k is above 0)."""
        if rows is None:
            return
        self.anchors_, references = self._references(
            rows, self.adapter_x_, self.adapter_y_
        )
        if references is not None:
            self.csls_reference_x_, self.csls_reference_y_ = references

    def _references(self, rows, adapter_x, adapter_y):
        """What the reference ``rows`` give, each side embedded once by the
        adapters and joined with the CCA's embeddings of them (without
        anchor columns, see :meth:`_neighbour_space`): the ASIF aligner whose
        anchors they are (None when ``anchor_weight_`` is 0) and the hubness
        correction's references (None when ``csls_neighbors_`` is 0)."""
        training = adapter_x.training, adapter_y.training
        Tx, Ty = self._embed(adapter_x, rows[0]), self._embed(adapter_y, rows[1])
        adapter_x.train(training[0]), adapter_y.train(training[1])
        Qx = self._neighbour_space(Tx, rows[0], "transform")
        Qy = self._neighbour_space(Ty, rows[1], "transform_y")
        anchors = ASIFAligner().fit(Qx, Qy) if self.anchor_weight_ > 0 else None
        references = (Qx, Qy) if self.csls_neighbors_ > 0 else None
        return anchors, references

    def _check_one_sided(self, n_features_y):
        """Parameters that contradict ``fixed_y=True`` (y's space is the
        shared space and has no adapter)."""
        if self.n_components not in ("auto", n_features_y):
            raise ValueError(
                f"fixed_y=True aligns X into y's own {n_features_y}-d space, so "
                f"n_components must be 'auto' or {n_features_y}, got "
                f"{self.n_components!r}."
            )
        for name, what in (
            ("cca_weight", "a CCA space"),
            ("anchor_weight", "anchors"),
            ("csls_neighbors", "a hubness correction"),
        ):
            if getattr(self, name) not in ("auto", 0):
                raise ValueError(
                    "fixed_y=True returns y's own space from transform_y, so it cannot "
                    f"be joined with {what}: {name} must be 'auto' or 0, got "
                    f"{getattr(self, name)!r}."
                )
        if isinstance(self.n_layers, tuple | list):
            raise ValueError(
                "fixed_y=True trains no adapter h_y, so n_layers must be one int (the "
                f"blocks of h_x) or 'auto', got {self.n_layers!r}."
            )

    def _batches(self, X, y, groups, train_idx, device, storage, plan, seed):
        """The batch source of the training pairs, with their group codes
        (pairs of one group are positives of each other): latents copied to
        the device once, or streamed in windows (``plan.path``)."""
        if plan.path == "device":
            if train_idx is not None:
                X, y, groups = take(X, train_idx), take(y, train_idx), groups[train_idx]
            return DeviceBatches(
                as_device_tensor(X, device, storage),
                as_device_tensor(y, device, storage),
                groups=torch.as_tensor(groups, device=device),
            )
        keep = None
        if train_idx is not None:
            keep = np.zeros(X.shape[0], dtype=bool)
            keep[train_idx] = True
        return StreamBatches(
            X,
            y,
            device,
            storage,
            plan.window_rows,
            keep=keep,
            seed=seed,
            groups=groups,
        )

    def _plan(self, X, y, device, storage, batch_size, n_train, val_idx, seed):
        """The resolved fit (:class:`~skfusemix.engine._plan.FitPlan`): the
        batch size that fits the data, and device-resident or streamed
        latents from the memory budget (see
        :func:`skfusemix.engine._plan.plan_fit_memory`)."""
        batch_size = self._effective_batch_size(batch_size, n_train)
        mixing = self.alpha_ > 0
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
            n_components=self.n_components_,
            n_layers=self.n_layers_,
            expansion=self.expansion_,
            batch_size=batch_size,
            mixing=mixing,
            n_validation=0 if val_idx is None else len(val_idx),
            storage_bytes=storage.itemsize,
        )
        plan = FitPlan(
            n_samples=n_train,
            batch_size=batch_size,
            max_epochs=self.max_epochs_,
            alpha=self.alpha_,
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
            structure_weight=float(self.structure_weight),
        )
        # STRUCTURE's weight ramps up over the first 10% of the steps
        return replace(plan, structure_warmup=plan.total_steps // 10)

    def _distributed_plan(
        self, group, plan, X, y, device, storage, n_train, val_idx, warm
    ):
        """The plan of a fit shared by the processes of ``group``: a global
        batch that splits evenly over them, latents held on the device, and
        the same data, parameters and seed in every process."""
        auto = self.batch_size == "auto" or plan.batch_size != self.batch_size
        batch_size = group.check_batch_size(plan.batch_size, auto)
        if batch_size != plan.batch_size:
            plan = self._plan(
                X, y, device, storage, batch_size, n_train, val_idx, plan.seed
            )
        group.check_same(
            {
                "params": self._recipe_params(),  # the seed is rank 0's
                "plan": [plan.seed, plan.batch_size, plan.total_steps, warm],
                "data": fingerprint(X, y, take),
            }
        )
        if group.any(plan.path != "device"):  # each process sizes its own memory
            raise ValueError(
                "Training with torch.distributed holds the latents on each "
                "process' device, but they do not fit in the memory of some "
                f"process (max_memory={self.max_memory}); streaming is not supported "
                "with several processes.  Use storage_dtype='float16', a larger "
                "max_memory, or distributed=False."
            )
        return plan

    def _initial_modules(self, warm, d_x, d_y, device, stats):
        """Fresh adapters (with the standardisation statistics of the
        training latents) and loss, or (warm start) copies of the fitted ones
        with the current dropout and learn_temperature."""
        if warm:
            adapter_x = copy.deepcopy(self.adapter_x_).to(device)
            adapter_y = copy.deepcopy(self.adapter_y_).to(device)
            loss_fn = copy.deepcopy(self.loss_).to(device)
            for module in (*adapter_x.modules(), *adapter_y.modules()):
                if isinstance(module, torch.nn.Dropout):
                    module.p = self.dropout_
            loss_fn.log_temperature.requires_grad_(self.learn_temperature)
            return adapter_x, adapter_y, loss_fn
        adapter_x, adapter_y, loss_fn = self._build_modules(d_x, d_y)
        if self.standardize:
            # constant features: scale 1 (they carry no information)
            (mean_x, std_x), (mean_y, std_y) = stats
            std_x, std_y = (
                np.where(std_x > 0, std_x, 1.0),
                np.where(std_y > 0, std_y, 1.0),
            )
            adapter_x.standardize.set_(mean_x, std_x)
            if self.fixed_y:  # h_x predicts y's standardised coordinates
                adapter_x.unstandardize.set_(mean_y, std_y)
            else:
                adapter_y.standardize.set_(mean_y, std_y)
        if self.fixed_y and self.loss == "sigmoid":
            # The sigmoid loss is not shift-invariant: in a fixed space whose
            # vectors share an offset, every pair starts at a high cosine c
            # (|mean|^2 / (|mean|^2 + total variance), the expected cosine
            # of two random y rows), so the bias starts that much lower.
            mean_y, std_y = stats[1]
            c = float(np.sum(mean_y**2) / (np.sum(mean_y**2) + np.sum(std_y**2)))
            with torch.no_grad():
                loss_fn.bias.sub_(c / loss_fn.temperature)
        return adapter_x.to(device), adapter_y.to(device), loss_fn.to(device)

    def _build_modules(self, d_x, d_y, temperature=None):
        """The two adapters and the loss of the resolved recipe (fresh
        weights; :func:`~skfusemix._persistence.load_aligner` fills them)."""
        kwargs = {
            "expansion": self.expansion_,
            "dropout": self.dropout_,
            "standardize": self.standardize,
        }
        n_x, n_y = self.n_layers_
        objective = SigmoidLoss if self.loss == "sigmoid" else SymmetricInfoNCE
        unstandardize = self.fixed_y and self.standardize
        return (
            Adapter(
                d_x, self.n_components_, n_x, unstandardize=unstandardize, **kwargs
            ),
            FixedSpace()
            if self.fixed_y
            else Adapter(d_y, self.n_components_, n_y, **kwargs),
            objective(
                temperature=self.temperature if temperature is None else temperature,
                learn_temperature=self.learn_temperature,
            ),
        )

    def _regularizer(self):
        """The STRUCTURE regulariser, or None when its weight is 0."""
        if self.structure_weight == 0:
            return None
        return StructureRegularizer(
            temperature=self.temperature, levels=self.structure_levels
        )

    def _check_warm_start(self):
        if isinstance(self.adapter_y_, FixedSpace) != self.fixed_y:
            raise ValueError(
                f"warm_start=True cannot continue: the fitted aligner has "
                f"fixed_y={not self.fixed_y} but the parameters ask for "
                f"fixed_y={self.fixed_y}.  Set warm_start=False to train from scratch."
            )
        sides = [("x", self.adapter_x_, self.n_layers_[0])]
        if not self.fixed_y:
            sides.append(("y", self.adapter_y_, self.n_layers_[1]))
        for name, adapter, n_layers in sides:
            found = (
                adapter.proj.out_features,
                len(adapter.blocks),
                adapter.blocks[0].fc1.out_features // adapter.blocks[0].fc1.in_features
                if len(adapter.blocks)
                else self.expansion_,
                isinstance(adapter.standardize, Standardize),
            )
            wanted = (self.n_components_, n_layers, self.expansion_, self.standardize)
            if found != wanted:
                raise ValueError(
                    f"warm_start=True cannot continue: the fitted adapter h_{name} has "
                    f"(n_components, n_layers, expansion, standardize)={found} but the "
                    f"parameters ask for {wanted}.  Set warm_start=False to train from "
                    "scratch."
                )

    def _validation_split(self, groups, seed):
        """Train and validation row indices for early stopping; the pairs of
        one group (one item, several captions) stay on one side."""
        if not self.early_stopping:
            return None, None
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
            train_idx, val_idx = next(splitter.split(groups, groups=groups))
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

    def _recipe_params(self, *ignored):
        """The parameters that decide what a fit computes (not where it runs,
        what it says or where it saves; ``random_state`` apart, as the seed
        is checked on its own), ``y_transformer`` by its class name, leaving
        out ``ignored`` as well."""
        skip = {"verbose", "checkpoint_dir", "max_memory", "device", "random_state"}
        return {
            k: (type(v).__name__ if k == "y_transformer" and v is not None else v)
            for k, v in self.get_params(deep=False).items()
            if k not in skip and k not in ignored
        }

    def _fit_identity(self, X, y, seed, device, modules):
        """What must match for a checkpoint to be resumed by this fit."""
        params = self._recipe_params("checkpoint_every", "distributed")
        params["n_layers"] = list(self.n_layers_)
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
        self.n_iter_restored_ = result.restored_epochs
        self.device_ = device
        if "val_score" in result.history:
            self.validation_scores_ = list(result.history["val_score"])
            self.best_validation_score_ = result.best_score
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _effective_batch_size(self, batch_size, n):
        """``batch_size`` reduced to what ``n`` pairs allow (with a warning
        when the user asked for more)."""
        mixing = self.alpha_ > 0
        limit = max(n // rows_per_step(1, mixing), 1)
        if batch_size <= limit:
            return batch_size
        if self.batch_size != "auto":
            rows = (
                "2 * batch_size rows per step (mixing)"
                if mixing
                else "batch_size rows per step"
            )
            warnings.warn(
                f"batch_size={batch_size} is larger than the data allows ({n} pairs, "
                f"{rows}); using batch_size={limit}.",
                UserWarning,
                stacklevel=5,
            )
        return limit

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
        return (
            self.n_components_
            + sum(
                part._n_features_out
                for part in (
                    getattr(self, "cca_", None),
                    getattr(self, "anchors_", None),
                )
                if part is not None
            )
            + (CSLS_COLUMNS if getattr(self, "csls_neighbors_", 0) else 0)
        )

    def transform(self, X):
        """Embed modality x in the shared space.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            Latents of modality x.

        Returns
        -------
        Sx : ndarray of shape (n_samples, n_features_out)
            L2-normalised float32 embeddings: the adapters' ``n_components_``
            columns, then those of the joined CCA and anchors when their
            weights are above 0, then the 4 columns of the hubness
            correction when ``csls_neighbors_ > 0`` (see
            ``get_feature_names_out``).
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        return self._join(self._embed(self.adapter_x_, X), X, "transform")

    def transform_y(self, y):
        """Embed modality y in the shared space.

        Parameters
        ----------
        y : array-like or torch.Tensor of shape (n_samples, n_features_y)
            Latents of modality y, or raw inputs when ``y_transformer`` is set.

        Returns
        -------
        Sy : ndarray of shape (n_samples, n_features_out)
            L2-normalised float32 embeddings, columns as in :meth:`transform`;
            with ``fixed_y``, the y latents themselves, L2-normalised.
        """
        check_is_fitted(self)
        if hasattr(self, "y_transformer_"):
            y = self.y_transformer_.transform(y)
        y = self._check_y(y, reset=False)
        return self._join(self._embed(self.adapter_y_, y), y, "transform_y")

    def _embed(self, adapter, Z):
        device = self._inference_device()
        adapter.to(device).eval()
        out = np.empty((Z.shape[0], self.n_components_), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, Z.shape[0], _TRANSFORM_CHUNK):
                chunk = as_device_tensor(Z[start : start + _TRANSFORM_CHUNK], device)
                out[start : start + chunk.shape[0]] = (
                    F.normalize(adapter(chunk), dim=-1).cpu().numpy()
                )
        return out

    def _join(self, S, Z, method):
        """``S`` joined with the CCA embeddings of the same rows and with the
        anchor embeddings of both, weighted so that cosines add up as
        ``(1 - c - a) * cos_S + c * cos_CCA + a * cos_anchors`` (the anchors
        measured in the space of the first two); then the
        hubness correction folded in (``csls_neighbors_ > 0``)."""
        anchors = getattr(self, "anchors_", None)
        Q = self._neighbour_space(S, Z, method)
        J = Q
        if anchors is not None:
            J = join_weighted(
                [Q, getattr(anchors, method)(Q)],
                [1.0, self.anchor_weight_],
                dtype=np.float32,
            )
        k = getattr(self, "csls_neighbors_", 0)
        if not k:
            return J
        x_side = method == "transform"
        reference = self.csls_reference_y_ if x_side else self.csls_reference_x_
        r = neighbour_similarity(Q, reference, k, self._inference_device())
        return fold_csls(J, r, "x" if x_side else "y")

    def _neighbour_space(self, S, Z, method):
        """The joined embeddings without their anchor columns: ``S`` and the
        CCA embeddings of ``Z``, weighted ``1 - c - a`` and ``c`` (rows of
        norm ``sqrt(1 - a)``), where the anchors and the hubness correction
        measure similarities to the training pairs."""
        cca = getattr(self, "cca_", None)
        parts, weights = [S], [1 - self.cca_weight_ - self.anchor_weight_]
        if cca is not None:
            C = getattr(cca, method)(_host_array(Z))
            parts.append(C.astype(np.float32, copy=False))
            weights.append(self.cca_weight_)
        if weights == [1.0]:
            return S
        return join_weighted(parts, weights, dtype=np.float32)

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
