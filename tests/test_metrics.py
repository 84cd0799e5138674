"""Multi-positive retrieval metrics against a brute-force computation."""

import numpy as np
import pytest

from skfusemix.metrics import (
    make_retrieval_scorer,
    paired_report,
    retrieval_ranks,
    retrieval_report,
    scored_items,
)


def _brute_force(Sx, Sy, item_of_row, ks=(1, 5, 10)):
    """Independent computation: full sort per query, Python loops."""
    items = sorted(set(item_of_row))
    rep = {it: next(i for i, v in enumerate(item_of_row) if v == it) for it in items}
    x2y = []
    for it in items:
        scores = Sy @ Sx[rep[it]]
        order = sorted(range(len(scores)), key=lambda j: -scores[j])
        x2y.append(1 + next(pos for pos, j in enumerate(order) if item_of_row[j] == it))
    y2x = []
    for j in range(len(Sy)):
        scores = {it: float(Sx[rep[it]] @ Sy[j]) for it in items}
        order = sorted(items, key=lambda it: -scores[it])
        y2x.append(1 + order.index(item_of_row[j]))
    out = {}
    for k in ks:
        out[f"x2y_R@{k}"] = np.mean(np.array(x2y) <= k)
    for k in ks:
        out[f"y2x_R@{k}"] = np.mean(np.array(y2x) <= k)
    out["x2y_medr"] = np.median(x2y)
    out["y2x_medr"] = np.median(y2x)
    return out, np.array(x2y), np.array(y2x)


def _five_captions(n_images=40, dim=8, noise=0.9, seed=0):
    rng = np.random.RandomState(seed)
    images = rng.normal(size=(n_images, dim))
    Sx = np.repeat(images, 5, axis=0)  # the same image once per caption
    Sy = Sx + noise * rng.normal(size=Sx.shape)
    Sx /= np.linalg.norm(Sx, axis=1, keepdims=True)
    Sy /= np.linalg.norm(Sy, axis=1, keepdims=True)
    return Sx, Sy, np.repeat(np.arange(n_images), 5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_report_matches_brute_force_with_five_captions(seed):
    Sx, Sy, item = _five_captions(seed=seed)
    expected, x2y, y2x = _brute_force(Sx, Sy, list(item))
    report = retrieval_report(Sx, Sy)
    for key, value in expected.items():
        assert report[key] == pytest.approx(value), key
    assert report["n_items"] == 40 and report["n_pairs"] == 200
    assert report["rsum"] == pytest.approx(
        sum(v for k, v in expected.items() if "R@" in k)
    )
    got_x2y, got_y2x = retrieval_ranks(Sx, Sy)
    np.testing.assert_array_equal(got_x2y, x2y)
    np.testing.assert_array_equal(got_y2x, y2x)
    # recall is neither trivial nor zero on this data, so the check has teeth
    assert 0.05 < report["x2y_R@1"] < 0.95 and 0.05 < report["y2x_R@1"] < 0.95


def test_any_caption_counts_for_image_to_text():
    # image 0's first caption is far, its second is the best match: R@1 = 1
    Sx = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    Sy = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    report = retrieval_report(Sx, Sy, ks=(1,))
    assert report["x2y_R@1"] == 1.0
    assert report["y2x_R@1"] == pytest.approx(2 / 3)


def test_groups_override_identical_rows_and_chunking_is_exact():
    Sx, Sy, item = _five_captions(n_images=30, seed=3)
    # perturb rows so that they are no longer identical; groups still say which go together
    Sx_perturbed = Sx.copy()
    Sx_perturbed[1::5] += 1e-3
    a = retrieval_ranks(Sx_perturbed, Sy, groups=item, chunk_size=7)
    b = retrieval_ranks(Sx_perturbed, Sy, groups=item)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert a[0].shape == (30,)
    # without groups the perturbed rows become items of their own
    assert retrieval_ranks(Sx_perturbed, Sy)[0].shape == (60,)


def test_one_to_one_pairs_and_string_groups():
    rng = np.random.RandomState(0)
    S = rng.normal(size=(20, 4))
    S /= np.linalg.norm(S, axis=1, keepdims=True)
    report = retrieval_report(S, S)
    assert report["rsum"] == 6.0 and report["x2y_medr"] == 1.0
    groups = np.array([f"g{i}" for i in range(20)])
    assert retrieval_report(S, S, groups=groups) == report


def test_repeated_y_rows_are_the_items_when_x_does_not_repeat():
    """One sentence, several recordings: x rows distinct, y rows repeated.
    Counted by x rows, each copy of a sentence would tie with the others
    (pessimistic ties: x->y R@1 = 0); the paired report makes the repeated
    side the items and keeps x2y = x queries against y."""
    Sy = np.repeat(np.eye(4), 3, axis=0)  # 4 sentences, 3 recordings each
    Sx = Sy + 0.01 * np.random.RandomState(0).normal(size=Sy.shape)
    assert retrieval_report(Sx, Sy, ks=(1,))["x2y_R@1"] == 0.0
    groups, swapped = scored_items(Sx, Sy)
    assert swapped and len(np.unique(groups)) == 4
    report = paired_report(Sx, Sy, Sx, Sy, ks=(1,))
    assert report["x2y_R@1"] == report["y2x_R@1"] == 1.0
    # directions swapped back: x queries (12 recordings) against y
    Sx[0] = -Sx[0]  # one recording now retrieves a wrong sentence
    report = paired_report(Sx, Sy, Sx, Sy, ks=(1,))
    assert report["x2y_R@1"] == pytest.approx(11 / 12)
    assert report["n_pairs"] == 12 and report["n_items"] == 4
    # repeated x rows (captions of one image) keep the x items, unswapped
    assert scored_items(Sy, Sy)[1] is False


def test_collapsed_embeddings_get_no_credit():
    Sx = np.ones((10, 3))
    Sy = np.ones((10, 3))
    report = retrieval_report(Sx, Sy, groups=np.arange(10), ks=(1,))
    assert report["x2y_R@1"] == 0.0 and report["y2x_R@1"] == 0.0


def test_report_rejects_bad_input():
    S = np.eye(3)
    with pytest.raises(ValueError, match="same space"):
        retrieval_report(S, np.eye(3)[:, :2])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        retrieval_report(S, np.eye(4)[:3].T[:4])
    with pytest.raises(ValueError, match="NaN"):
        retrieval_report(np.full((3, 3), np.nan), S)
    with pytest.raises(ValueError, match="ks must be positive"):
        retrieval_report(S, S, ks=(0,))
    with pytest.raises(ValueError, match="groups must be 1-D"):
        retrieval_report(S, S, groups=np.zeros((3, 1)))


class _Identity:
    def transform(self, X):
        return np.asarray(X, dtype=float)

    def transform_y(self, y):
        return np.asarray(y, dtype=float)


def test_scorers():
    Sx, Sy, _ = _five_captions(seed=4)
    report = retrieval_report(Sx, Sy)
    est = _Identity()
    assert make_retrieval_scorer("rsum")(est, Sx, Sy) == pytest.approx(report["rsum"])
    assert make_retrieval_scorer("y2x_R@5")(est, Sx, Sy) == pytest.approx(
        report["y2x_R@5"]
    )
    assert make_retrieval_scorer("x2y_medr")(est, Sx, Sy) == -report["x2y_medr"]
    mean_r1 = 0.5 * (report["x2y_R@1"] + report["y2x_R@1"])
    assert make_retrieval_scorer("mean_R@1", ks=(5,))(est, Sx, Sy) == pytest.approx(
        mean_r1
    )
    with pytest.raises(ValueError, match="Unknown retrieval metric"):
        make_retrieval_scorer("R@3")
