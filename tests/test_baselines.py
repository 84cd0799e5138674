"""Tests of the classical aligners in skfusemix.baselines."""

import numpy as np
import pytest
from scipy import linalg, sparse
from scipy.stats import ortho_group
from sklearn.base import clone
from sklearn.cross_decomposition import CCA
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from skfusemix.baselines import ASIFAligner, CCAAligner, CSAAligner, ProcrustesAligner
from skfusemix.datasets import make_paired_latents
from skfusemix.metrics import retrieval_report

ALIGNERS = [
    CCAAligner(),
    CSAAligner(),
    ProcrustesAligner(),
    ASIFAligner(random_state=0),
]


@parametrize_with_checks(ALIGNERS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def split():
    """1000 training and 500 held-out pairs of the synthetic generator."""
    Zx, Zy = make_paired_latents(
        1500, 64, 32, n_components=8, noise=0.5, random_state=0
    )
    return Zx[:1000], Zy[:1000], Zx[1000:], Zy[1000:]


# ------------------------------------------------------------------ common API


@pytest.mark.parametrize("aligner", ALIGNERS, ids=lambda a: type(a).__name__)
def test_shapes_and_unit_norm(aligner, split):
    Xtr, ytr, Xte, yte = split
    est = clone(aligner).fit(Xtr, ytr)
    Sx, Sy = est.transform(Xte), est.transform_y(yte)
    assert Sx.shape == Sy.shape == (500, est._n_features_out)
    assert Sx.dtype == Sy.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(Sx, axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(Sy, axis=1), 1.0)
    assert est.n_features_in_ == 64 and est.n_features_y_in_ == 32
    names = est.get_feature_names_out()
    assert len(names) == Sx.shape[1]
    assert names[0] == f"{type(est).__name__.lower()}0"
    # fit_transform is fit then transform of X.
    np.testing.assert_allclose(
        clone(aligner).fit_transform(Xtr, ytr), est.transform(Xtr)
    )


@pytest.mark.parametrize(
    "aligner, threshold",
    [
        # Chance is 1/500 = 0.002.  Measured: CCA 0.72, Procrustes 0.72, ASIF 0.52.
        (CCAAligner(n_components=8), 0.6),
        (ProcrustesAligner(n_components=8, whiten=True), 0.6),
        (ASIFAligner(k=64, p=4), 0.4),
    ],
    ids=lambda a: type(a).__name__ if not isinstance(a, float) else str(a),
)
def test_held_out_recall_far_above_chance(aligner, threshold, split):
    Xtr, ytr, Xte, yte = split
    est = clone(aligner).fit(Xtr, ytr)
    report = retrieval_report(est.transform(Xte), est.transform_y(yte))
    assert report["x2y_R@1"] > threshold
    assert report["y2x_R@1"] > threshold
    assert report["x2y_R@10"] > 0.9
    assert est.score(Xte, yte) == pytest.approx(
        (report["x2y_R@1"] + report["y2x_R@1"]) / 2
    )


@pytest.mark.parametrize("aligner", ALIGNERS, ids=lambda a: type(a).__name__)
def test_several_captions_per_item(aligner):
    Zx, Zy = make_paired_latents(
        300, 24, 12, n_components=4, noise=0.3, n_captions=5, random_state=1
    )
    est = clone(aligner).fit(Zx[:1000], Zy[:1000])  # the first 200 items
    report = retrieval_report(est.transform(Zx[1000:]), est.transform_y(Zy[1000:]))
    assert report["n_items"] == 100 and report["n_pairs"] == 500
    # Chance is about 0.01 both ways; measured 0.41 to 0.62.
    assert report["x2y_R@1"] > 0.3 and report["y2x_R@1"] > 0.3


@pytest.mark.parametrize("aligner", ALIGNERS, ids=lambda a: type(a).__name__)
def test_grid_search_over_baselines(aligner, split):
    Xtr, ytr, _, _ = split
    grid = {
        "CCAAligner": {"n_components": [4, 8]},
        "CSAAligner": {"n_components": [4, 8]},
        "ProcrustesAligner": {"whiten": [False, True]},
        "ASIFAligner": {"k": [8, 32]},
    }[type(aligner).__name__]
    search = GridSearchCV(clone(aligner), grid, cv=KFold(3)).fit(Xtr[:300], ytr[:300])
    assert 0.0 < search.best_score_ <= 1.0


# ---------------------------------------------------------------------- inputs


@pytest.mark.parametrize("aligner", ALIGNERS, ids=lambda a: type(a).__name__)
def test_bad_inputs(aligner):
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(20, 5)), rng.normal(size=(20, 3))
    est = clone(aligner)
    with pytest.raises(NotFittedError):
        est.transform(X)
    with pytest.raises(NotFittedError):
        est.transform_y(y)
    one = clone(aligner).fit(X, y[:, 0])  # a 1-D y is one feature
    assert one.n_features_y_in_ == 1 and one.transform_y(y[:, 0]).shape[0] == 20
    with pytest.raises(ValueError, match="dim 3|3-D|got shape"):
        clone(aligner).fit(X, y[:, :, None])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clone(aligner).fit(X, y[:-1])
    with pytest.raises(ValueError, match="requires y to be passed"):
        clone(aligner).fit(X, None)
    for bad in (X.copy(), y.copy()):
        bad[3, 1] = np.nan
        Xb, yb = (bad, y) if bad.shape == X.shape else (X, bad)
        with pytest.raises(ValueError, match="NaN"):
            clone(aligner).fit(Xb, yb)
    inf_object = y.astype(object)  # sklearn checks object arrays for NaN only
    inf_object[3, 1] = np.inf
    with pytest.raises(ValueError, match="Input y contains infinity"):
        clone(aligner).fit(X, inf_object)
    with pytest.raises(TypeError, match="sparse"):
        clone(aligner).fit(X, sparse.csr_matrix(y))
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        clone(aligner).fit(X[:1], y[:1])
    est.fit(X, y)
    with pytest.raises(ValueError, match="X has 4 features"):
        est.transform(X[:, :4])
    with pytest.raises(ValueError, match="y has 2 features"):
        est.transform_y(y[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        est.transform_y(np.full((2, 3), np.nan))


@pytest.mark.parametrize(
    "aligner",
    [
        CCAAligner(reg=-1.0),
        CCAAligner(n_components=0),
        ProcrustesAligner(n_components=1.5),
        ASIFAligner(k=0),
        ASIFAligner(p=0.0),
        ASIFAligner(n_anchors=-3),
    ],
    ids=repr,
)
def test_invalid_parameters(aligner):
    X, y = make_paired_latents(30, 6, 4, random_state=0)
    with pytest.raises(ValueError, match="parameter of"):
        aligner.fit(X, y)


@pytest.mark.parametrize(
    "aligner, limit",
    [(CCAAligner(n_components=5), 4), (ProcrustesAligner(n_components=5), 4)],
    ids=repr,
)
def test_too_many_components(aligner, limit):
    X, y = make_paired_latents(30, 6, 4, random_state=0)
    with pytest.raises(ValueError, match=f"= {limit}"):
        aligner.fit(X, y)


def test_float32_and_dataframe_inputs(split):
    pd = pytest.importorskip("pandas")
    Xtr, ytr, Xte, _ = split
    est = CCAAligner(n_components=8).fit(Xtr.astype(np.float32), ytr.astype(np.float32))
    ref = CCAAligner(n_components=8).fit(Xtr, ytr)
    np.testing.assert_allclose(est.transform(Xte), ref.transform(Xte), atol=1e-4)
    df = pd.DataFrame(Xtr, columns=[f"f{i}" for i in range(64)])
    est = CCAAligner(n_components=8).fit(df, ytr)
    assert list(est.feature_names_in_[:2]) == ["f0", "f1"]
    np.testing.assert_allclose(est.transform(df.iloc[:5]), ref.transform(Xtr[:5]))


# ------------------------------------------------------------------------- CCA


def test_cca_matches_sklearn_and_eigenproblem():
    rng = np.random.RandomState(0)
    latent = rng.normal(size=(200, 3))
    X = latent @ rng.normal(size=(3, 6)) + 0.5 * rng.normal(size=(200, 6))
    y = latent @ rng.normal(size=(3, 4)) + 0.5 * rng.normal(size=(200, 4))
    cca = CCAAligner(n_components=3, reg=0.0).fit(X, y)
    rho = cca.canonical_correlations_

    # The squared canonical correlations are the top eigenvalues of
    # Cxx^-1 Cxy Cyy^-1 Cyx.
    Xc, yc = X - X.mean(0), y - y.mean(0)
    Cxx, Cyy, Cxy = Xc.T @ Xc, yc.T @ yc, Xc.T @ yc
    evals = np.sort(
        linalg.eigvals(linalg.solve(Cxx, Cxy) @ linalg.solve(Cyy, Cxy.T)).real
    )
    np.testing.assert_allclose(rho**2, evals[::-1][:3], rtol=1e-10)

    # The training projections have exactly those correlations, and are
    # uncorrelated across components.
    U = ((X - cca.x_mean_) / cca.x_std_) @ cca.x_weights_
    V = ((y - cca.y_mean_) / cca.y_std_) @ cca.y_weights_
    C = np.corrcoef(U.T, V.T)
    np.testing.assert_allclose(np.diag(C[:3, 3:]), rho, rtol=1e-10)
    np.testing.assert_allclose(C[:3, :3], np.eye(3), atol=1e-10)

    # scikit-learn's iterative CCA finds the same correlations.
    Ux, Uy = CCA(n_components=3, max_iter=5000, tol=1e-12).fit(X, y).transform(X, y)
    sk_rho = [np.corrcoef(Ux[:, j], Uy[:, j])[0, 1] for j in range(3)]
    np.testing.assert_allclose(sk_rho, rho, rtol=1e-5)


def test_cca_regularisation_is_scale_free_and_shrinks():
    X, y = make_paired_latents(80, 40, 30, noise=0.5, random_state=0)  # d ~ n
    a = CCAAligner(n_components=4, reg=0.1, scale=False).fit(X, y)
    b = CCAAligner(n_components=4, reg=0.1, scale=False).fit(1000.0 * X, y)
    np.testing.assert_allclose(a.transform(X), b.transform(1000.0 * X), atol=1e-8)
    # With as many features as samples unregularised CCA finds (near) perfect
    # spurious correlations; the ridge shrinks them.
    rho0 = CCAAligner(n_components=4, reg=0.0).fit(X, y).canonical_correlations_
    rho1 = CCAAligner(n_components=4, reg=1.0).fit(X, y).canonical_correlations_
    assert rho0[0] > 0.99
    assert np.all(rho1 < rho0)


def test_cca_corr_power_weights_components(split):
    Xtr, ytr, Xte, _ = split
    plain = CCAAligner(n_components=8, corr_power=0.0).fit(Xtr, ytr)
    weighted = clone(plain).set_params(corr_power=2.0).fit(Xtr, ytr)
    raw = ((Xte - plain.x_mean_) / plain.x_std_) @ plain.x_weights_
    expected = raw * plain.canonical_correlations_**2
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(weighted.transform(Xte), expected)
    np.testing.assert_allclose(
        plain.transform(Xte), raw / np.linalg.norm(raw, axis=1, keepdims=True)
    )


# ------------------------------------------------------------------ Procrustes


@pytest.mark.parametrize("scale", [True, False])
def test_procrustes_recovers_an_exact_rotation(scale):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 16)) * np.linspace(1, 3, 16) + 5.0
    Q = ortho_group.rvs(16, random_state=0)
    y = 2.0 * X @ Q - 1.0  # rotated, scaled and shifted
    est = ProcrustesAligner(scale=scale).fit(X, y)
    assert est.score(X, y) == 1.0
    np.testing.assert_allclose(est.transform(X), est.transform_y(y), atol=1e-8)
    np.testing.assert_allclose(est.rotation_ @ est.rotation_.T, np.eye(16), atol=1e-10)


def test_procrustes_different_widths():
    # y is an isometric embedding of x in a wider space (d_y > d_x): PCA to
    # min(d_x, d_y) dimensions on each side, then the rotation, is exact.
    rng = np.random.RandomState(1)
    X = rng.normal(size=(200, 8)) * np.linspace(1, 4, 8)
    M = ortho_group.rvs(20, random_state=1)[:8]  # (8, 20), orthonormal rows
    y = X @ M
    est = ProcrustesAligner().fit(X, y)
    assert est.n_features_y_in_ == 20 and est.transform_y(y).shape == (200, 8)
    assert est.score(X, y) == 1.0
    np.testing.assert_allclose(est.transform(X), est.transform_y(y), atol=1e-8)


def test_procrustes_more_features_than_samples():
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(10, 30)), rng.normal(size=(10, 25))
    est = ProcrustesAligner().fit(X, y)
    assert est.transform(X).shape == (10, 10)


# ------------------------------------------------------------------------ ASIF


def _asif_reference(Z, mean, anchors, k, p):
    """Row-by-row ASIF, as in the paper, to check the vectorised one."""
    out = np.zeros((Z.shape[0], anchors.shape[0]))
    for i, z in enumerate(Z):
        z = (z - mean) / np.linalg.norm(z - mean)
        sims = anchors @ z
        top = np.argsort(-sims)[:k]
        out[i, top] = np.maximum(sims[top], 0) ** p
        out[i] /= np.linalg.norm(out[i])
    return out


def test_asif_sparsity_and_reference(split):
    Xtr, ytr, Xte, yte = split
    est = ASIFAligner(k=10, p=3.0).fit(Xtr, ytr)
    Sx, Sy = est.transform(Xte), est.transform_y(yte)
    assert Sx.shape == (500, 1000) and est.n_anchors_ == 1000
    assert np.all((Sx > 0).sum(axis=1) <= 10) and np.all((Sy > 0).sum(axis=1) <= 10)
    assert np.mean((Sx > 0).sum(axis=1) == 10) > 0.99
    assert Sx.min() >= 0 and Sy.min() >= 0
    np.testing.assert_allclose(
        Sx, _asif_reference(Xte, est.x_mean_, est.anchors_x_, 10, 3.0)
    )
    np.testing.assert_allclose(
        Sy, _asif_reference(yte, est.y_mean_, est.anchors_y_, 10, 3.0)
    )


def test_asif_anchors_map_to_their_own_coordinate(split):
    Xtr, ytr, _, _ = split
    est = ASIFAligner(n_anchors=200, k=5, random_state=0).fit(Xtr, ytr)
    assert est.anchor_indices_.shape == (200,)
    anchors = Xtr[est.anchor_indices_]
    assert np.array_equal(est.transform(anchors).argmax(axis=1), np.arange(200))
    anchors_y = ytr[est.anchor_indices_]
    assert np.array_equal(est.transform_y(anchors_y).argmax(axis=1), np.arange(200))
    # The anchors are drawn reproducibly, and differently for another seed.
    again = ASIFAligner(n_anchors=200, random_state=0).fit(Xtr, ytr)
    other = ASIFAligner(n_anchors=200, random_state=1).fit(Xtr, ytr)
    assert np.array_equal(est.anchor_indices_, again.anchor_indices_)
    assert not np.array_equal(est.anchor_indices_, other.anchor_indices_)


def test_asif_k_capped_and_centering():
    X, y = make_paired_latents(20, 6, 4, random_state=0)
    est = ASIFAligner(k=100).fit(X, y)
    assert est.transform(X).shape == (20, 20)
    raw = ASIFAligner(center=False).fit(X, y)
    np.testing.assert_array_equal(raw.x_mean_, np.zeros(6))
    assert not np.allclose(raw.transform(X), est.transform(X))
