"""Blocked retrieval ranks and top-k search against full-matrix computations.

The reference functions here build the whole similarity matrix with NumPy and
share no code with :mod:`skfusemix.metrics`.  Embeddings are small integers so
that every inner product is exact in float32 and float64: ties are frequent
and no result depends on the order in which a BLAS sums.
"""

import numpy as np
import pytest
import torch

from skfusemix import metrics
from skfusemix.metrics import retrieval_ranks, retrieval_report, topk_search


@pytest.fixture(autouse=True, scope="module")
def _two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    yield
    torch.set_num_threads(threads)


def _quantised(shape, rng, levels=2):
    return rng.integers(-levels, levels + 1, size=shape).astype(np.float64)


def _captions(n_items, per_item, dim, rng, shuffle=True):
    """Items with ``per_item`` captions each, rows in random order."""
    item = np.repeat(np.arange(n_items), per_item)
    if shuffle:
        item = rng.permutation(item)
    images = _quantised((n_items, dim), rng)
    Sx = images[item]
    Sy = np.clip(Sx + _quantised(Sx.shape, rng, levels=1), -2, 2)
    return Sx, Sy, item


def _reference_ranks(Sx, Sy, item, ahead=np.greater_equal):
    """Full matrix, items numbered by first appearance, pessimistic ties
    (``ahead=np.greater`` counts them optimistically instead)."""
    _, first = np.unique(item, return_index=True)
    first = np.sort(first)
    labels = item[first]
    images = Sx[first]
    S = images @ Sy.T  # (n_items, n)
    positive = item[None, :] == labels[:, None]
    best = np.where(positive, S, -np.inf).max(axis=1)
    x2y = 1 + np.sum(ahead(S, best[:, None]) & ~positive, axis=1)
    row_of_label = {label: row for row, label in enumerate(labels.tolist())}
    own = S[[row_of_label[label] for label in item.tolist()], np.arange(len(item))]
    y2x = 1 + np.sum(ahead(S, own[None, :]) & ~positive, axis=0)
    return x2y, y2x


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 50, 4096])
@pytest.mark.parametrize("per_item", [1, 5])
def test_blocked_ranks_equal_full_matrix(chunk_size, per_item):
    rng = np.random.default_rng(chunk_size * 10 + per_item)
    Sx, Sy, item = _captions(97 // per_item + 3, per_item, 6, rng)
    x2y, y2x = retrieval_ranks(Sx, Sy, groups=item, chunk_size=chunk_size)
    ref_x2y, ref_y2x = _reference_ranks(Sx, Sy, item)
    np.testing.assert_array_equal(x2y, ref_x2y)
    np.testing.assert_array_equal(y2x, ref_y2x)
    # ties are common here, so pessimistic counting matters
    optimistic = _reference_ranks(Sx, Sy, item, ahead=np.greater)
    assert np.any(optimistic[0] != x2y) and np.any(optimistic[1] != y2x)
    assert x2y.dtype == y2x.dtype == np.int64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identical_rows_are_one_item_and_tensor_input(dtype):
    rng = np.random.default_rng(0)
    Sx, Sy, item = _captions(40, 3, 5, rng)
    Sx, Sy = Sx.astype(dtype), Sy.astype(dtype)
    ref = _reference_ranks(Sx, Sy, item)
    Sx_before, Sy_before = Sx.copy(), Sy.copy()
    by_rows = retrieval_ranks(Sx, Sy, chunk_size=16)  # no groups: identical rows
    tx, ty = torch.from_numpy(Sx), torch.from_numpy(Sy)
    by_tensors = retrieval_ranks(tx, ty, groups=item, chunk_size=9, device="cpu")
    for got in (by_rows, by_tensors):
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(Sx, Sx_before)
    np.testing.assert_array_equal(Sy, Sy_before)
    assert torch.equal(tx, torch.from_numpy(Sx_before))


def test_collapsed_and_duplicated_captions_are_pessimistic():
    rng = np.random.default_rng(1)
    Sx = np.repeat(rng.normal(size=(30, 8)), 2, axis=0)
    Sy = Sx + rng.normal(size=Sx.shape)
    Sy[2::6] = Sy[0]  # a caption copied into other images: exact ties
    item = np.repeat(np.arange(30), 2)
    for chunk_size in (1, 4, 11, 100):
        x2y, y2x = retrieval_ranks(Sx, Sy, chunk_size=chunk_size)
        ref = _reference_ranks(Sx, Sy, item)
        np.testing.assert_array_equal(x2y, ref[0])
        np.testing.assert_array_equal(y2x, ref[1])
    # the copies tie exactly with caption 0, and those ties count against it
    optimistic = _reference_ranks(Sx, Sy, item, ahead=np.greater)
    assert np.any(optimistic[0] < x2y)
    report = retrieval_report(np.ones((6, 3)), np.ones((6, 3)), groups=np.arange(6))
    assert report["x2y_R@1"] == 0.0 and report["y2x_R@1"] == 0.0


def test_ranks_at_scale_stay_within_the_block_bound(monkeypatch):
    """n=20000 with chunk_size=1024: every block product is at most 1024 x 1024,
    and the ranks equal a full-row reference computed in slices."""
    rng = np.random.default_rng(2)
    n_items, per_item, chunk_size = 5000, 4, 1024
    Sx, Sy, item = _captions(n_items, per_item, 12, rng, shuffle=True)
    Sx, Sy = Sx.astype(np.float32), Sy.astype(np.float32)
    shapes = []
    block_scores = metrics._block_scores

    def recording(Q, G, out):
        shapes.append((Q.shape[0], G.shape[0], out.numel()))
        return block_scores(Q, G, out)

    monkeypatch.setattr(metrics, "_block_scores", recording)
    x2y, y2x = retrieval_ranks(Sx, Sy, groups=item, chunk_size=chunk_size)
    shapes = np.array(shapes)
    assert shapes[:, :2].max() == chunk_size and shapes[:, 2].max() <= chunk_size**2
    n_blocks = -(-n_items // chunk_size) * -(-len(Sy) // chunk_size)
    assert n_blocks <= len(shapes) < 2 * n_blocks  # one pass, plus positive blocks

    _, first = np.unique(item, return_index=True)
    first = np.sort(first)
    labels = item[first]
    row_of_label = np.empty(n_items, dtype=np.int64)
    row_of_label[labels] = np.arange(n_items)
    code = row_of_label[item]
    for start in range(0, n_items, 700):
        S = Sx[first[start : start + 700]] @ Sy.T
        positive = code[None, :] == np.arange(start, start + len(S))[:, None]
        best = np.where(positive, S, -np.inf).max(axis=1)
        expected = 1 + np.sum((S >= best[:, None]) & ~positive, axis=1)
        np.testing.assert_array_equal(x2y[start : start + 700], expected)
    for start in range(0, len(Sy), 3000):
        S = Sy[start : start + 3000] @ Sx[first].T
        own = S[np.arange(len(S)), code[start : start + 3000]]
        expected = np.sum(S >= own[:, None], axis=1)
        np.testing.assert_array_equal(y2x[start : start + 3000], expected)


@pytest.mark.parametrize("chunk_size", [1, 4, 13, 1000])
@pytest.mark.parametrize("k", [1, 5, 37])
def test_topk_search_equals_full_sort(chunk_size, k):
    rng = np.random.default_rng(k)
    queries = rng.normal(size=(29, 8)).astype(np.float32)
    gallery = rng.normal(size=(37, 8)).astype(np.float32)
    scores, indices = topk_search(queries, gallery, k=k, chunk_size=chunk_size)
    S = queries.astype(np.float64) @ gallery.T.astype(np.float64)
    order = np.argsort(-S, axis=1, kind="stable")[:, :k]
    assert scores.shape == indices.shape == (29, k)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    np.testing.assert_array_equal(indices, order)  # distinct scores: one order
    np.testing.assert_allclose(
        scores, np.take_along_axis(S, order, 1), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("chunk_size", [1, 6, 64])
def test_topk_search_with_ties(chunk_size):
    rng = np.random.default_rng(3)
    queries, gallery = _quantised((23, 3), rng), _quantised((61, 3), rng)
    k = 9
    scores, indices = topk_search(queries, gallery, k=k, chunk_size=chunk_size)
    S = queries @ gallery.T
    expected = -np.sort(-S, axis=1)[:, :k]
    assert scores.dtype == np.float64
    np.testing.assert_array_equal(scores, expected)  # exact: integer products
    np.testing.assert_array_equal(np.take_along_axis(S, indices, 1), scores)
    assert all(len(set(row)) == k for row in indices.tolist())


def test_topk_search_with_torch_input_and_recall_agree_with_ranks():
    rng = np.random.default_rng(4)
    Sx = rng.normal(size=(200, 16)).astype(np.float32)
    Sy = Sx + rng.normal(size=Sx.shape).astype(np.float32)
    _, indices = topk_search(torch.from_numpy(Sx), torch.from_numpy(Sy), k=5)
    x2y, _ = retrieval_ranks(Sx, Sy, groups=np.arange(200), chunk_size=33)
    hit = (indices == np.arange(200)[:, None]).any(axis=1)
    np.testing.assert_array_equal(hit, x2y <= 5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    rng = np.random.default_rng(5)
    Sx, Sy, item = _captions(300, 3, 8, rng)
    cpu = retrieval_ranks(Sx, Sy, groups=item, chunk_size=128, device="cpu")
    gpu = retrieval_ranks(
        torch.from_numpy(Sx).cuda(), Sy, groups=item, chunk_size=128, device="cuda"
    )
    for a, b in zip(cpu, gpu):
        np.testing.assert_array_equal(a, b)
    s_cpu, _ = topk_search(Sx, Sy, k=7, device="cpu")
    s_gpu, _ = topk_search(Sx, Sy, k=7, device="cuda")
    np.testing.assert_array_equal(s_cpu, s_gpu)


def test_bad_input():
    S = np.eye(4)
    with pytest.raises(ValueError, match="same space"):
        retrieval_ranks(S, S[:, :3])
    with pytest.raises(ValueError, match="same space"):
        topk_search(S, S[:, :3])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        retrieval_ranks(S, S[:3])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        retrieval_ranks(S, S, groups=np.arange(3))
    with pytest.raises(ValueError, match="groups must be 1-D"):
        retrieval_ranks(S, S, groups=np.zeros((4, 1)))
    bad = S.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        retrieval_ranks(bad, S)
    with pytest.raises(ValueError, match="NaN"):
        retrieval_ranks(torch.from_numpy(S), torch.from_numpy(bad))
    with pytest.raises(ValueError, match="NaN"):
        topk_search(S, bad)
    with pytest.raises(ValueError, match="2D"):
        retrieval_ranks(torch.ones(4), torch.ones(4))
    for chunk_size in (0, -1, 2.5, True, "64"):
        with pytest.raises(ValueError, match="chunk_size must be a positive"):
            retrieval_ranks(S, S, chunk_size=chunk_size)
        with pytest.raises(ValueError, match="chunk_size must be a positive"):
            topk_search(S, S, k=2, chunk_size=chunk_size)
    for k in (0, 5, 1.0, True):
        with pytest.raises(ValueError, match="k must be an integer"):
            topk_search(S, S, k=k)
    with pytest.raises(ValueError, match="Unknown device"):
        retrieval_report(S, S, device="no-such-device")
    # the default device and an explicit CPU agree
    assert retrieval_report(S, S, device="auto") == retrieval_report(
        S, S, device=torch.device("cpu"), chunk_size=1
    )
