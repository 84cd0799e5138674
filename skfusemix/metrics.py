"""Cross-modal retrieval metrics with several positives per item.

Retrieval datasets pair one item of modality x (an image) with several items
of modality y (its captions).  The protocol implemented here is the usual one
of image-caption retrieval (e.g. on Flickr30K and COCO):

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

import numbers
import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_array

from ._data import resolve_device, row_groups

__all__ = [
    "make_retrieval_scorer",
    "retrieval_ranks",
    "retrieval_report",
    "topk_search",
]


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


def _check_chunk_size(chunk_size, device):
    """``None``: 1024 on the CPU (the fastest of 512..4096 with 2 threads in
    ``benchmarks/bench_retrieval.py``), 8192 on a GPU."""
    if chunk_size is None:
        return 1024 if device.type == "cpu" else 8192
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, numbers.Integral)
        or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
    return int(chunk_size)


def _as_tensor(X, name):
    """A validated 2-D float32/float64 tensor viewing ``X`` where possible.

    Numpy input goes through :func:`~sklearn.utils.validation.check_array`
    (integers become float32, NaN and infinity are refused) and is shared, not
    copied; tensors stay on their device.  ``X`` itself is never written.
    """
    if isinstance(X, torch.Tensor):
        X = X.detach()
        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2D array for {name}, got shape {tuple(X.shape)}."
            )
        if X.shape[0] < 1:
            raise ValueError(f"{name} has 0 samples; at least 1 is required.")
        if X.dtype not in (torch.float32, torch.float64):
            X = X.to(torch.float32)
        if not bool(torch.isfinite(X).all()):
            raise ValueError(f"Input {name} contains NaN or infinity.")
        return X
    X = check_array(X, dtype=(np.float32, np.float64), order="C", input_name=name)
    with warnings.catch_warnings():  # read-only input (a memmap): never written
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(X)


def _paired_tensors(A, B, names):
    """Validate two embedding matrices of one space, cast to a common dtype."""
    A, B = _as_tensor(A, names[0]), _as_tensor(B, names[1])
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must live in the same space: {names[0]} has "
            f"{A.shape[1]} columns, {names[1]} has {B.shape[1]}."
        )
    dtype = torch.promote_types(A.dtype, B.dtype)
    return A.to(dtype), B.to(dtype)


def _block_scores(Q, G, out):
    """``Q @ G.T`` written into the flat buffer ``out``.

    Every similarity is computed here, from the same operand slices into the
    same buffer, so the passes of :func:`retrieval_ranks` see bitwise-identical
    blocks and ties are counted consistently.  Peak memory is ``out``:
    ``chunk_size ** 2`` similarities.
    """
    view = out[: Q.shape[0] * G.shape[0]].view(Q.shape[0], G.shape[0])
    return torch.mm(Q, G.T, out=view)


def _count(mask, dim):
    """``mask.sum(dim)``, summed in a narrow integer type (several times faster
    on the CPU than the default int64 accumulation of a bool sum)."""
    narrow = mask.shape[dim] <= torch.iinfo(torch.int16).max
    return mask.view(torch.uint8).sum(
        dim=dim, dtype=torch.int16 if narrow else torch.int32
    )


def _blocks(n, size):
    return [(start, min(start + size, n)) for start in range(0, n, size)]


@torch.no_grad()
def _ranks(items, Sy, codes, codes_host, chunk_size):
    """Both rank vectors from one blocked pass over ``items @ Sy.T``.

    Pass 1 visits only the blocks that hold a positive pair ``(codes[j], j)``
    and reads each caption's own score ``own[j]`` out of them; the best
    positive of item ``i`` is the segment max of ``own`` over its captions.
    Pass 2 visits every block once and counts, per item, the captions scoring
    >= its best positive and, per caption, the items scoring >= its own
    score.  Only counts stay on the device; the host reads them once.
    """
    device, dtype = Sy.device, Sy.dtype
    n_items, n = items.shape[0], Sy.shape[0]
    item_blocks, row_blocks = _blocks(n_items, chunk_size), _blocks(n, chunk_size)
    out = torch.empty(
        min(chunk_size, n_items) * min(chunk_size, n), dtype=dtype, device=device
    )
    mask = torch.empty(out.shape, dtype=torch.bool, device=device)
    columns = torch.arange(min(chunk_size, n), device=device)

    # Pass 1: own[j] = <items[codes[j]], Sy[j]>, taken from the block products.
    own = torch.zeros(n, dtype=dtype, device=device)
    pairs = np.unique(
        (codes_host // chunk_size) * len(row_blocks) + np.arange(n) // chunk_size
    )
    for pair in pairs.tolist():
        item_block, row_block = divmod(pair, len(row_blocks))
        (a, b), (c, d) = item_blocks[item_block], row_blocks[row_block]
        sim = _block_scores(items[a:b], Sy[c:d], out)
        row = codes[c:d] - a
        inside = (row >= 0) & (row < b - a)
        picked = sim[row.clamp(0, b - a - 1), columns[: d - c]]
        own[c:d] = torch.where(inside, picked, own[c:d])
    best = torch.full((n_items,), -torch.inf, dtype=dtype, device=device)
    best.scatter_reduce_(0, codes, own, reduce="amax")
    n_tied = torch.zeros(n_items, dtype=torch.int64, device=device)
    n_tied.scatter_add_(0, codes, (own == best[codes]).long())

    # Pass 2: every block once, counting in both directions.
    x2y = torch.zeros(n_items, dtype=torch.int64, device=device)
    y2x = torch.zeros(n, dtype=torch.int64, device=device)
    for a, b in item_blocks:
        query, threshold = items[a:b], best[a:b, None]
        for c, d in row_blocks:
            sim = _block_scores(query, Sy[c:d], out)
            ge = mask[: sim.numel()].view(sim.shape)
            x2y[a:b] += _count(torch.ge(sim, threshold, out=ge), dim=1)
            y2x[c:d] += _count(torch.ge(sim, own[None, c:d], out=ge), dim=0)
    # x -> y: negatives >= the best positive; the positives tied with it are
    # among the counted, remove them.  y -> x: the count includes the own item.
    x2y += 1 - n_tied
    return torch.cat([x2y, y2x]).cpu().numpy()


def retrieval_ranks(Sx, Sy, *, groups=None, chunk_size=None, device=None):
    """Rank of the first correct partner of every query, in both directions.

    The similarities ``Sx @ Sy.T`` are computed in blocks of ``chunk_size``
    rows of each side (on the GPU when there is one) and only counts are
    kept, so memory is bounded by ``chunk_size ** 2`` similarities whatever
    the number of samples.

    Parameters
    ----------
    Sx : array-like or torch.Tensor of shape (n_samples, n_components)
        Embeddings of modality x, row ``i`` paired with row ``i`` of ``Sy``.
    Sy : array-like or torch.Tensor of shape (n_samples, n_components)
        Embeddings of modality y.
    groups : array-like of shape (n_samples,), default=None
        Item label of each pair.  Rows with the same label are the same item
        of modality x.  By default identical rows of ``Sx`` form one item.
    chunk_size : int, default=None
        Rows of each side per block product; bounds memory to
        ``chunk_size ** 2`` similarities.  ``None``: 1024 on the CPU (4 MiB
        of float32 similarities), 8192 on a GPU (256 MiB).
    device : str or torch.device, default=None
        Where to compute.  ``None`` or ``"auto"``: CUDA when available, else
        the CPU.  float64 input is computed in float64 (as exact as the
        former NumPy implementation), float32 in float32.

    Returns
    -------
    x2y_ranks : ndarray of shape (n_items,)
        1-based rank of the best-ranked partner of each x item among all rows
        of ``Sy``.  Ties are pessimistic: a negative scoring equal to the best
        positive ranks ahead of it.
    y2x_ranks : ndarray of shape (n_samples,)
        1-based rank of each y row's item among the ``n_items`` x items,
        counting every item that scores at least as high (itself included).

    See Also
    --------
    retrieval_report : Recall@k and median ranks from these ranks.
    topk_search : The k best gallery rows of each query.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.metrics import retrieval_ranks
    >>> S = np.eye(3)
    >>> retrieval_ranks(S, S)
    (array([1, 1, 1]), array([1, 1, 1]))
    """
    Sx, Sy = _paired_tensors(Sx, Sy, ("Sx", "Sy"))
    if Sx.shape[0] != Sy.shape[0]:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"[{Sx.shape[0]}, {Sy.shape[0]}]"
        )
    if groups is not None:
        groups = np.asarray(groups)
        if groups.ndim != 1:
            raise ValueError(f"groups must be 1-D, got shape {groups.shape}.")
        if groups.shape[0] != Sx.shape[0]:
            raise ValueError(
                "Found input variables with inconsistent numbers of samples: "
                f"[{Sx.shape[0]}, {groups.shape[0]}] (Sx and groups)"
            )
    device = resolve_device(device)
    chunk_size = _check_chunk_size(chunk_size, device)

    codes, first = _item_codes(Sx.cpu().numpy() if groups is None else None, groups)
    if len(first) == len(Sx) and np.array_equal(first, np.arange(len(first))):
        items = Sx.to(device)  # every row its own item, in order: no copy
    else:
        items = Sx.index_select(0, torch.as_tensor(first, device=Sx.device))
        items = items.to(device)
    ranks = _ranks(
        items,
        Sy.to(device),
        torch.as_tensor(codes, device=device),
        codes,
        chunk_size,
    )
    return ranks[: items.shape[0]], ranks[items.shape[0] :]


@torch.no_grad()
def topk_search(queries, gallery, k=10, *, chunk_size=None, device=None):
    """Exact maximum inner-product search, in bounded memory.

    The gallery is scored ``chunk_size`` rows at a time against
    ``chunk_size`` queries at a time; the ``k`` best of each block are merged
    into a running top-k, so memory is bounded by ``chunk_size ** 2``
    similarities however large the gallery.

    Parameters
    ----------
    queries : array-like or torch.Tensor of shape (n_queries, n_components)
        Query embeddings (e.g. L2-normalised, so scores are cosines).
    gallery : array-like or torch.Tensor of shape (n_gallery, n_components)
        Embeddings searched.
    k : int, default=10
        Number of neighbours returned per query, at most ``n_gallery``.
    chunk_size : int, default=None
        Rows of each side per block product; bounds memory to
        ``chunk_size ** 2`` similarities.  ``None``: 1024 on the CPU, 8192
        on a GPU.
    device : str or torch.device, default=None
        Where to compute.  ``None`` or ``"auto"``: CUDA when available, else
        the CPU.

    Returns
    -------
    scores : ndarray of shape (n_queries, k)
        Inner products of the ``k`` best gallery rows, in descending order,
        in the dtype of the inputs (float32 or float64).
    indices : ndarray of shape (n_queries, k)
        Their row indices in ``gallery``.  Equal scores come in no
        particular order.

    See Also
    --------
    retrieval_ranks : Ranks of the correct partners, without top-k lists.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.metrics import topk_search
    >>> gallery = np.eye(4, dtype=np.float32)
    >>> queries = np.array([[0.1, 0.9, 0.0, 0.3]], dtype=np.float32)
    >>> scores, indices = topk_search(queries, gallery, k=2)
    >>> indices
    array([[1, 3]])
    >>> scores
    array([[0.9, 0.3]], dtype=float32)
    """
    queries, gallery = _paired_tensors(queries, gallery, ("queries", "gallery"))
    n_queries, n_gallery = queries.shape[0], gallery.shape[0]
    if (
        isinstance(k, bool)
        or not isinstance(k, numbers.Integral)
        or not 1 <= k <= n_gallery
    ):
        raise ValueError(
            f"k must be an integer in [1, n_gallery={n_gallery}], got {k!r}."
        )
    device = resolve_device(device)
    chunk_size = _check_chunk_size(chunk_size, device)
    queries, gallery = queries.to(device), gallery.to(device)

    out = torch.empty(
        min(chunk_size, n_queries) * min(chunk_size, n_gallery),
        dtype=queries.dtype,
        device=device,
    )
    scores = torch.empty((n_queries, k), dtype=queries.dtype, device=device)
    indices = torch.empty((n_queries, k), dtype=torch.int64, device=device)
    for a, b in _blocks(n_queries, chunk_size):
        best = queries.new_empty((b - a, 0))
        where = indices.new_empty((b - a, 0))
        for c, d in _blocks(n_gallery, chunk_size):
            sim = _block_scores(queries[a:b], gallery[c:d], out)
            block_best, block_where = sim.topk(min(k, d - c), dim=1)
            best, pick = torch.cat([best, block_best], dim=1).topk(
                min(k, best.shape[1] + d - c), dim=1
            )
            where = torch.cat([where, block_where + c], dim=1).gather(1, pick)
        scores[a:b], indices[a:b] = best, where
    return scores.cpu().numpy(), indices.cpu().numpy()


def retrieval_report(
    Sx, Sy, *, groups=None, ks=(1, 5, 10), chunk_size=None, device=None
):
    """Recall@k both ways, their sum and the median ranks.

    Parameters
    ----------
    Sx : array-like or torch.Tensor of shape (n_samples, n_components)
        Embeddings of modality x (e.g. images), L2-normalised.
    Sy : array-like or torch.Tensor of shape (n_samples, n_components)
        Embeddings of modality y (e.g. captions); row ``i`` pairs with row
        ``i`` of ``Sx``.
    groups : array-like of shape (n_samples,), default=None
        Which rows are the same x item.  By default identical rows of ``Sx``
        are one item (the same image repeated once per caption).
    ks : tuple of int, default=(1, 5, 10)
        The cut-offs k of recall@k.
    chunk_size : int, default=None
        Rows of each side per block product; memory is bounded by
        ``chunk_size ** 2`` similarities (see :func:`retrieval_ranks`).
    device : str or torch.device, default=None
        Where to compute.  ``None`` or ``"auto"``: CUDA when available, else
        the CPU.

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
    x2y, y2x = retrieval_ranks(
        Sx, Sy, groups=groups, chunk_size=chunk_size, device=device
    )
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


def scored_items(X, y):
    """The items of a paired evaluation of ``X`` and ``y``.

    Identical rows of ``X`` are one item (the same image once per caption).
    When no row of ``X`` repeats but some row of ``y`` does (one sentence,
    several recordings), identical rows of ``y`` are the items instead, and
    the evaluation runs with the two modalities swapped: counted by ``X``
    rows, each copy of a sentence would tie with the others.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Modality x (latents, embeddings or raw items).
    y : array-like of shape (n_samples, n_features_y)
        The paired modality y.

    Returns
    -------
    groups : ndarray of shape (n_samples,)
        Item code of each pair.
    swapped : bool
        True when ``groups`` are items of ``y`` rows.

    See Also
    --------
    paired_report : The report counted with these items.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.metrics import scored_items
    >>> X = np.array([[0.0], [1.0], [2.0]])
    >>> y = np.array([[5.0], [5.0], [6.0]])  # one sentence, two recordings
    >>> scored_items(X, y)
    (array([0, 0, 1]), True)
    """
    groups = row_groups(X)
    if int(groups.max()) + 1 == len(groups):
        groups_y = row_groups(y)
        if int(groups_y.max()) + 1 < len(groups_y):
            return groups_y, True
    return groups, False


def paired_report(Sx, Sy, X, y, ks=(1, 5, 10), groups=None):
    """:func:`retrieval_report` of the embeddings of the pairs ``(X, y)``,
    its items as :func:`scored_items` finds them (or ``groups``, when
    given, as :func:`retrieval_report` takes them).

    With the modalities swapped the directions are swapped back: ``x2y``
    is always x queries against y.  This is what ``score`` of every aligner
    and :func:`make_retrieval_scorer` compute.

    Parameters
    ----------
    Sx, Sy : array-like of shape (n_samples, n_components)
        Embeddings of ``X`` and ``y``, row by row.
    X, y : array-like of shape (n_samples, ...)
        The inputs they embed (only their repeated rows are used).
    ks : tuple of int, default=(1, 5, 10)
        The recall cut-offs.
    groups : array-like of shape (n_samples,), default=None
        Item of each pair; None: found from the repeated rows.

    Returns
    -------
    report : dict
        As :func:`retrieval_report`.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.metrics import paired_report
    >>> Sy = np.repeat(np.eye(2), 2, axis=0)  # two sentences, two recordings each
    >>> Sx = Sy + [[0.1, 0], [0, 0.1], [0.1, 0], [0, 0.1]]
    >>> report = paired_report(Sx, Sy, Sx, Sy, ks=(1,))
    >>> report["x2y_R@1"], report["y2x_R@1"]
    (1.0, 1.0)
    """
    swapped = False
    if groups is None:
        groups, swapped = scored_items(X, y)
    if not swapped:
        return retrieval_report(Sx, Sy, groups=groups, ks=ks)
    report = retrieval_report(Sy, Sx, groups=groups, ks=ks)
    back = {"x2y": "y2x", "y2x": "x2y"}
    return {
        back.get(key[:3], key[:3]) + key[3:]: value for key, value in report.items()
    }


def make_retrieval_scorer(metric="rsum", *, ks=(1, 5, 10)):
    """Build a scorer for :class:`~sklearn.model_selection.GridSearchCV`.

    The scorer embeds ``X`` with ``estimator.transform`` and ``y`` with
    ``estimator.transform_y``, treats identical rows of ``X`` as one item
    (identical rows of ``y`` when only ``y`` repeats) and returns one value
    of :func:`retrieval_report`.  Median ranks are negated
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
        report = paired_report(
            estimator.transform(X), estimator.transform_y(y), X, y, report_ks
        )
        if metric == "mean_R@1":
            return _mean_r1(report)
        if metric.endswith("medr"):
            return -report[metric]
        return report[metric]

    scorer.__name__ = f"retrieval_scorer_{metric}"
    return scorer
