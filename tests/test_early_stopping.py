"""Early stopping: group-aware validation split, best weights, records."""

import numpy as np
import pytest
import torch
from helpers import make_pairs
from sklearn.utils import check_random_state

from skfusemix import FuseMixAligner, retrieval_report
from skfusemix._data import pair_groups, row_groups
from skfusemix.engine._loop import mean_recall_at_1
from skfusemix.metrics import scored_items

KW = dict(
    n_components=8, n_layers=1, expansion=2, dropout=0.1, batch_size=32, random_state=0
)


def _captions(n_images=80, per_image=3, seed=0):
    """Each X row repeated once per caption, as in Flickr30K/COCO."""
    Zx, Zy = make_pairs(n=n_images * per_image, seed=seed)
    Zx = np.repeat(Zx[:n_images], per_image, axis=0)
    return Zx, Zy


def test_stops_early_and_restores_the_best_weights():
    Zx, Zy = make_pairs(n=240)
    aligner = FuseMixAligner(
        **KW, max_epochs=200, early_stopping=True, n_iter_no_change=2, tol=0.05
    ).fit(Zx, Zy)
    assert aligner.n_iter_ < 200
    scores = aligner.validation_scores_
    assert len(scores) == aligner.n_iter_ == len(aligner.history_["val_score"])
    assert aligner.best_validation_score_ == max(scores)
    # stopped after more than n_iter_no_change epochs without a tol improvement
    best_at = int(np.argmax(scores))
    assert aligner.n_iter_ - 1 - best_at >= 2 or max(scores[-3:]) < scores[-4] + 0.05
    # the final weights score the validation rows at the best score
    seed = int(check_random_state(0).randint(np.iinfo(np.int32).max))
    _, val = aligner._validation_split(row_groups(Zx), seed)
    assert aligner.score(Zx[val], Zy[val]) == pytest.approx(
        aligner.best_validation_score_, abs=1e-6
    )


def test_with_repeated_y_rows_the_validation_score_is_score():
    """Several recordings of one sentence (y repeats): the early-stopping
    score counts the sentences as items, as score() does, and the split
    keeps a sentence's recordings together."""
    Zy, Zx = _captions()
    aligner = FuseMixAligner(
        **KW, max_epochs=3, early_stopping=True, validation_fraction=0.25
    ).fit(Zx, Zy)
    seed = int(check_random_state(0).randint(np.iinfo(np.int32).max))
    train, val = aligner._validation_split(pair_groups(Zx, Zy), seed)
    assert not {Zy[i].tobytes() for i in train} & {Zy[i].tobytes() for i in val}
    assert aligner.score(Zx[val], Zy[val]) == pytest.approx(
        aligner.best_validation_score_, abs=1e-6
    )
    assert scored_items(Zx[val], Zy[val])[1]  # the swapped count was the one used


def test_validation_split_keeps_an_items_captions_together():
    Zx, Zy = _captions()
    aligner = FuseMixAligner(**KW, early_stopping=True, validation_fraction=0.25)
    train, val = aligner._validation_split(row_groups(Zx), seed=3)
    train_items = {Zx[i].tobytes() for i in train}
    val_items = {Zx[i].tobytes() for i in val}
    assert not train_items & val_items
    assert len(val_items) == 20 and len(val) == 60
    aligner.set_params(max_epochs=2).fit(Zx, Zy)
    assert len(aligner.validation_scores_) == 2


def test_without_early_stopping_nothing_is_held_out():
    Zx, Zy = make_pairs(n=200)
    aligner = FuseMixAligner(**KW, max_epochs=2).fit(Zx, Zy)
    assert aligner.validation_scores_ is None and aligner.best_validation_score_ is None
    assert "val_score" not in aligner.history_
    assert aligner.t_ == 2 * (200 // 64)  # all rows used for training


def test_too_few_items_for_a_validation_set():
    Zx, Zy = _captions(n_images=3)
    with pytest.raises(ValueError, match="at least 4 distinct X items"):
        FuseMixAligner(**KW, early_stopping=True).fit(Zx, Zy)
    Zx, Zy = make_pairs(n=10)
    with pytest.raises(ValueError, match="validation pairs"):
        FuseMixAligner(**KW, early_stopping=True, validation_fraction=0.01).fit(Zx, Zy)


@pytest.mark.parametrize("seed", range(4))
def test_device_recall_matches_retrieval_report(seed):
    rng = np.random.RandomState(seed)
    n_items, per = 30, 1 + seed % 3
    Sx = rng.normal(size=(n_items, 6)).astype(np.float32)
    Sx = np.repeat(Sx / np.linalg.norm(Sx, axis=1, keepdims=True), per, axis=0)
    Sy = (Sx + 0.8 * rng.normal(size=Sx.shape)).astype(np.float32)
    Sy /= np.linalg.norm(Sy, axis=1, keepdims=True)
    report = retrieval_report(Sx, Sy, ks=(1,))
    codes = np.repeat(np.arange(n_items), per)
    got = mean_recall_at_1(
        torch.from_numpy(Sx[::per].copy()),
        torch.from_numpy(Sy),
        torch.from_numpy(codes),
        chunk_elements=50,
    )
    assert got == pytest.approx(0.5 * (report["x2y_R@1"] + report["y2x_R@1"]))


def test_device_recall_counts_ties_pessimistically():
    S = torch.ones(5, 3) / 3**0.5  # a collapsed model
    assert mean_recall_at_1(S, S, torch.arange(5)) == 0.0
