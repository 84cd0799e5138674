"""Tests of CSAAligner (canonical similarity analysis) in skfusemix.baselines;
the API checks every baseline shares (scikit-learn's, shapes, captions, bad
inputs) run on it in test_baselines.py."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cross_decomposition import CCA

from skfusemix.baselines import CCAAligner, CSAAligner
from skfusemix.datasets import make_paired_latents
from skfusemix.metrics import retrieval_report


@pytest.fixture(scope="module")
def split():
    """1000 training and 500 held-out pairs of the synthetic generator."""
    Zx, Zy = make_paired_latents(
        1500, 64, 32, n_components=8, noise=0.5, random_state=0
    )
    return Zx[:1000], Zy[:1000], Zx[1000:], Zy[1000:]


def _paper_similarity(Ux, Uy, rho, s):
    """The paper's weighted cosine: sum_i rho_i u_i v_i / (||u_1:s|| ||v_1:s||)."""
    Ux, Uy, rho = Ux[:, :s], Uy[:, :s], rho[:s]
    Ux = Ux / np.linalg.norm(Ux, axis=1, keepdims=True)
    Uy = Uy / np.linalg.norm(Uy, axis=1, keepdims=True)
    return (Ux * rho) @ Uy.T


def test_dot_product_is_the_paper_similarity():
    """Against an independent CCA (scikit-learn's iterative one, reg=0).

    Canonical variates are defined up to a sign and a scale per component:
    the sign flips u_i and v_i together, leaving u_i * v_i unchanged, and the
    scale is CCA's usual one, unit variance on the training pairs (the
    convention of the paper's code), which scikit-learn does not use.
    """
    rng = np.random.RandomState(0)
    latent = rng.normal(size=(300, 4))
    X = latent @ rng.normal(size=(4, 7)) + 0.7 * rng.normal(size=(300, 7))
    y = latent @ rng.normal(size=(4, 5)) + 0.7 * rng.normal(size=(300, 5))
    Xtr, ytr, Xte, yte = X[:200], y[:200], X[200:], y[200:]

    csa = CSAAligner(n_components=3, reg=0.0).fit(Xtr, ytr)
    sk = CCA(n_components=5, max_iter=5000, tol=1e-14).fit(Xtr, ytr)
    Utr, Vtr = sk.transform(Xtr, ytr)
    sx, sy = Utr.std(axis=0, ddof=1), Vtr.std(axis=0, ddof=1)
    # As in the paper's code: the correlation of each pair of projections.
    rho = np.array([np.corrcoef(Utr[:, j], Vtr[:, j])[0, 1] for j in range(5)])
    Ux, Uy = sk.transform(Xte, yte)
    Ux, Uy = Ux / sx, Uy / sy
    expected = _paper_similarity(Ux, Uy, rho, 3)

    Sx, Sy = csa.transform(Xte), csa.transform_y(yte)
    np.testing.assert_allclose(Sx @ Sy.T, expected, atol=1e-5)
    np.testing.assert_allclose(csa.canonical_correlations_, rho[:3], rtol=1e-5)
    # Unit rows of width s + 2; the completions sit in separate coordinates.
    assert Sx.shape == (100, 5) and csa.n_canonical_ == 3
    np.testing.assert_allclose(np.linalg.norm(Sx, axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(Sy, axis=1), 1.0)
    assert np.all(Sx[:, -1] == 0) and np.all(Sy[:, -2] == 0)
    assert np.all(Sx[:, -2] > 0) and np.all(Sy[:, -1] > 0)


def test_corr_power_and_threshold(split):
    Xtr, ytr, Xte, yte = split
    base = CSAAligner(n_components=16).fit(Xtr, ytr)
    rho = base.canonical_correlations_
    assert rho.shape == (16,) and np.all(np.diff(rho) <= 0)
    # The projections are CCAAligner's (same regularised CCA).
    cca = CCAAligner(n_components=16).fit(Xtr, ytr)
    np.testing.assert_array_equal(base.x_weights_, cca.x_weights_)
    np.testing.assert_array_equal(base.y_weights_, cca.y_weights_)

    Ux = ((Xte - cca.x_mean_) / cca.x_std_) @ cca.x_weights_
    Uy = ((yte - cca.y_mean_) / cca.y_std_) @ cca.y_weights_
    for power in (0.0, 1.0, 3.0):
        est = clone(base).set_params(corr_power=power).fit(Xtr, ytr)
        np.testing.assert_allclose(est.similarity_weights_, rho**power)
        sim = est.transform(Xte) @ est.transform_y(yte).T
        np.testing.assert_allclose(sim, _paper_similarity(Ux, Uy, rho**power, 16))

    # min_corr drops the weakly correlated tail (correlations are sorted).
    threshold = (rho[5] + rho[6]) / 2
    cut = clone(base).set_params(min_corr=threshold).fit(Xtr, ytr)
    assert cut.n_canonical_ == 6 and cut.transform(Xte).shape == (500, 8)
    np.testing.assert_array_equal(cut.canonical_correlations_, rho[:6])
    sim = cut.transform(Xte) @ cut.transform_y(yte).T
    np.testing.assert_allclose(sim, _paper_similarity(Ux, Uy, rho, 6))
    # A threshold above every correlation still keeps the first dimension.
    assert clone(base).set_params(min_corr=1.0).fit(Xtr, ytr).n_canonical_ == 1


def test_differs_from_cca_weighting(split):
    """CSA normalises the unweighted projections, CCAAligner the weighted ones:
    same directions and weights, different similarities."""
    Xtr, ytr, Xte, yte = split
    csa = CSAAligner(n_components=16, corr_power=2.0).fit(Xtr, ytr)
    cca = CCAAligner(n_components=16, corr_power=1.0).fit(Xtr, ytr)
    a = csa.transform(Xte[:50]) @ csa.transform_y(yte[:50]).T
    b = cca.transform(Xte[:50]) @ cca.transform_y(yte[:50]).T
    assert np.abs(a - b).max() > 0.05
    assert np.all(np.abs(a) <= 1.0 + 1e-12)


def test_held_out_recall_far_above_chance(split):
    Xtr, ytr, Xte, yte = split
    est = CSAAligner(n_components=8).fit(Xtr, ytr)
    report = retrieval_report(est.transform(Xte), est.transform_y(yte))
    # Chance is 1/500 = 0.002.  Measured: 0.75 and 0.73 (CCAAligner: 0.77, 0.75).
    assert report["x2y_R@1"] > 0.6 and report["y2x_R@1"] > 0.6
    assert est.score(Xte, yte) == pytest.approx(
        (report["x2y_R@1"] + report["y2x_R@1"]) / 2
    )


@pytest.mark.parametrize(
    "aligner",
    [
        CSAAligner(reg=-1.0),
        CSAAligner(n_components=0),
        CSAAligner(corr_power=-1.0),
        CSAAligner(min_corr=1.5),
        CSAAligner(min_corr=-0.1),
    ],
    ids=repr,
)
def test_invalid_parameters(aligner):
    X, y = make_paired_latents(30, 6, 4, random_state=0)
    with pytest.raises(ValueError, match="parameter of"):
        aligner.fit(X, y)
    with pytest.raises(ValueError, match="= 4"):
        CSAAligner(n_components=5).fit(X, y)
