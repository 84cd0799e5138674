"""Cross-modal retrieval metrics with several positives per item.

Retrieval datasets pair one item of modality x (an image) with several items
of modality y (its captions).  The protocol implemented here (DESIGN.md §3):

* **x -> y** (image -> text): one query per *item*; its rank is the rank of
  the best-ranked caption that belongs to it.
* **y -> x** (text -> image): one query per caption; the gallery holds one
  embedding per item and the rank is the rank of the caption's item.

Rows of ``Sx`` that are identical (the same image repeated once per caption)
are one item; an explicit ``groups`` array overrides that.  Ties are counted
pessimistically (a negative scoring *equal* to the best positive ranks ahead
of it), so a collapsed model that maps everything to one point scores zero
instead of perfect recall.
"""

import hashlib
import numbers

import numpy as np
from sklearn.utils.validation import check_array, check_consistent_length

__all__ = ["make_retrieval_scorer", "retrieval_ranks", "retrieval_report"]


def _item_codes(Sx, groups):
    """Map each row to an item code in ``[0, n_items)``; return codes and one
    representative row index per item (its first row)."""
    if groups is None:
        _, first, codes = np.unique(Sx, axis=0, return_index=True, return_inverse=True)
    else:
        groups = np.asarray(groups)
        if groups.ndim != 1:
            raise ValueError(f"groups must be 1-D, got shape {groups.shape}.")
        _, first, codes = np.unique(groups, return_index=True, return_inverse=True)
    codes = codes.reshape(-1)
    # Re-number items in order of first appearance so item i is stable.
    order = np.argsort(first, kind="stable")
    remap = np.empty_like(order)
    remap[order] = np.arange(order.size)
    return remap[codes], first[order]


def retrieval_ranks(Sx, Sy, *, groups=None, chunk_size=4096):
    """Rank of the first correct partner of every query, in both directions.

    Parameters
    ----------
    Sx : array-like of shape (n_samples, n_components)
        Embeddings of modality x, row ``i`` paired with row ``i`` of ``Sy``.
    Sy : array-like of shape (n_samples, n_components)
        Embeddings of modality y.
    groups : array-like of shape (n_samples,), default=None
        Item label of each pair.  Rows with the same label are the same item
        of modality x.  By default identical rows of ``Sx`` form one item.
    chunk_size : int, default=4096
        Queries scored per matrix product; bounds memory to
        ``chunk_size * n_samples`` similarities.

    Returns
    -------
    x2y_ranks : ndarray of shape (n_items,)
        1-based rank of the best-ranked partner of each x item among all rows
        of ``Sy``.
    y2x_ranks : ndarray of shape (n_samples,)
        1-based rank of each y row's item among the ``n_items`` x items.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.metrics import retrieval_ranks
    >>> S = np.eye(3)
    >>> retrieval_ranks(S, S)
    (array([1, 1, 1]), array([1, 1, 1]))
    """
    Sx = check_array(Sx, dtype=(np.float32, np.float64), input_name="Sx")
    Sy = check_array(Sy, dtype=(np.float32, np.float64), input_name="Sy")
    check_consistent_length(Sx, Sy)
    if Sx.shape[1] != Sy.shape[1]:
        raise ValueError(
            f"Sx and Sy must live in the same space: Sx has {Sx.shape[1]} "
            f"columns, Sy has {Sy.shape[1]}."
        )
    if groups is not None:
        check_consistent_length(Sx, groups)
    if not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}.")

    codes, first = _item_codes(Sx, groups)
    items = Sx[first]
    n_items = items.shape[0]

    # x -> y: one query per item, gallery = all y rows.
    x2y = np.empty(n_items, dtype=np.int64)
    for start in range(0, n_items, chunk_size):
        stop = min(start + chunk_size, n_items)
        sim = items[start:stop] @ Sy.T
        positive = codes[None, :] == np.arange(start, stop)[:, None]
        best = np.where(positive, sim, -np.inf).max(axis=1)
        x2y[start:stop] = 1 + ((sim >= best[:, None]) & ~positive).sum(axis=1)

    # y -> x: one query per y row, gallery = one embedding per item.
    n = Sy.shape[0]
    y2x = np.empty(n, dtype=np.int64)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        sim = Sy[start:stop] @ items.T
        own = codes[start:stop]
        target = sim[np.arange(stop - start), own]
        y2x[start:stop] = (sim >= target[:, None]).sum(axis=1)  # includes itself
    return x2y, y2x


def retrieval_report(Sx, Sy, *, groups=None, ks=(1, 5, 10)):
    """Recall@k both ways, their sum and the median ranks.

    Parameters
    ----------
    Sx : array-like of shape (n_samples, n_components)
        Embeddings of modality x (e.g. images), L2-normalised.
    Sy : array-like of shape (n_samples, n_components)
        Embeddings of modality y (e.g. captions); row ``i`` pairs with row
        ``i`` of ``Sx``.
    groups : array-like of shape (n_samples,), default=None
        Which rows are the same x item.  By default identical rows of ``Sx``
        are one item (the same image repeated once per caption).
    ks : tuple of int, default=(1, 5, 10)
        The cut-offs k of recall@k.

    Returns
    -------
    report : dict
        ``x2y_R@k`` and ``y2x_R@k`` (fractions in [0, 1]) for each k,
        ``rsum`` (the sum of all those recalls), ``x2y_medr`` and
        ``y2x_medr`` (median 1-based rank), ``n_items`` and ``n_pairs``.

    See Also
    --------
    retrieval_ranks : The per-query ranks behind the report.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.metrics import retrieval_report
    >>> Sx = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # image 0 has 2 captions
    >>> Sy = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9]])
    >>> report = retrieval_report(Sx, Sy, ks=(1,))
    >>> report["x2y_R@1"], report["y2x_R@1"]
    (1.0, 0.6666666666666666)
    """
    ks = tuple(ks)
    if not ks or not all(isinstance(k, numbers.Integral) and k >= 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {ks!r}.")
    x2y, y2x = retrieval_ranks(Sx, Sy, groups=groups)
    report = {}
    for k in ks:
        report[f"x2y_R@{k}"] = float(np.mean(x2y <= k))
    for k in ks:
        report[f"y2x_R@{k}"] = float(np.mean(y2x <= k))
    report["rsum"] = float(sum(v for key, v in report.items() if "_R@" in key))
    report["x2y_medr"] = float(np.median(x2y))
    report["y2x_medr"] = float(np.median(y2x))
    report["n_items"] = int(x2y.size)
    report["n_pairs"] = int(y2x.size)
    return report


def _mean_r1(report):
    return 0.5 * (report["x2y_R@1"] + report["y2x_R@1"])


def make_retrieval_scorer(metric="rsum", *, ks=(1, 5, 10)):
    """Build a scorer for :class:`~sklearn.model_selection.GridSearchCV`.

    The scorer embeds ``X`` with ``estimator.transform`` and ``y`` with
    ``estimator.transform_y``, treats identical rows of ``X`` as one item and
    returns one value of :func:`retrieval_report`.  Median ranks are negated
    so that greater is always better, as scikit-learn expects.

    Parameters
    ----------
    metric : str, default="rsum"
        ``"rsum"``, ``"mean_R@1"``, any ``"x2y_R@k"`` / ``"y2x_R@k"`` with k
        in ``ks``, ``"x2y_medr"`` or ``"y2x_medr"``.
    ks : tuple of int, default=(1, 5, 10)
        The recall cut-offs computed.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``.

    Examples
    --------
    >>> from skfusemix.metrics import make_retrieval_scorer
    >>> scorer = make_retrieval_scorer("rsum")
    >>> callable(scorer)
    True
    """
    ks = tuple(ks)
    valid = {"rsum", "mean_R@1", "x2y_medr", "y2x_medr"}
    valid |= {f"{d}_R@{k}" for d in ("x2y", "y2x") for k in ks}
    if metric not in valid:
        raise ValueError(
            f"Unknown retrieval metric {metric!r}; choose one of {sorted(valid)}."
        )
    report_ks = ks if metric != "mean_R@1" else tuple(sorted(set(ks) | {1}))

    def scorer(estimator, X, y):
        report = retrieval_report(
            estimator.transform(X),
            estimator.transform_y(y),
            groups=_row_groups(X),
            ks=report_ks,
        )
        if metric == "mean_R@1":
            return _mean_r1(report)
        if metric.endswith("medr"):
            return -report[metric]
        return report[metric]

    scorer.__name__ = f"retrieval_scorer_{metric}"
    return scorer


def _row_groups(X):
    """Item labels of the rows of raw ``X``: identical rows are one item.

    Works for numeric arrays (identical rows) and for sequences of raw inputs
    (identical strings, identical arrays such as images or waveforms).  Other
    objects (e.g. PIL images) are compared by identity.
    """
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    if type(X).__module__.startswith("torch"):
        X = X.detach().cpu().numpy()
    if isinstance(X, np.ndarray) and X.dtype != object and X.ndim >= 1:
        rows = X.reshape(X.shape[0], -1)
        return np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1)
    keys = []
    for value in X:
        if isinstance(value, str):
            keys.append("s:" + value)
        elif isinstance(value, np.ndarray):
            digest = hashlib.sha1(np.ascontiguousarray(value).tobytes()).hexdigest()
            keys.append(f"a:{value.dtype}:{value.shape}:{digest}")
        else:
            keys.append(f"o:{id(value)}")
    return np.unique(np.asarray(keys), return_inverse=True)[1].reshape(-1)
