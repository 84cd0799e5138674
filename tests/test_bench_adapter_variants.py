"""The rejected adapter variants' benchmark: the CCA start is the CCA, the
whitening whitens, and ``--set`` values parse."""

import numpy as np
import pytest
from helpers import load_benchmark

from skfusemix import CCAAligner
from skfusemix.datasets import make_paired_latents


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("adapter_variants")


def test_cca_start_is_the_cca_map_before_training(bench):
    Zx, Zy = make_paired_latents(400, 12, 10, random_state=0)
    aligner = bench.CCAInitAligner(
        n_components=8,
        cca_weight=0,
        anchor_weight=0,
        csls_neighbors=0,
        max_epochs=1,
        learning_rate=1e-12,
        dropout=0.0,
        random_state=0,
    ).fit(Zx, Zy)
    cca = CCAAligner(n_components=8).fit(Zx, Zy)
    # before any real step the x adapter is its standardisation, LayerNorm
    # and the CCA's map (n_components = the CCA's width: no other rows)
    z = (Zx - Zx.mean(0)) / Zx.std(0)
    z = (z - z.mean(1, keepdims=True)) / z.std(1, keepdims=True)
    expected = z @ (cca.x_weights_ * cca.canonical_correlations_**2)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(aligner.transform(Zx), expected, atol=1e-4)
    blocks = aligner.adapter_x_.blocks
    assert all(float(b.fc2.weight.detach().abs().max()) < 1e-6 for b in blocks)


def test_whitened_inputs_have_identity_covariance(bench):
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(2000, 5)) @ rng.normal(size=(5, 5))
    whitener = bench.Whitened(None, shrinkage=0.0)._whitener(Z)
    W = bench.Whitened._apply(whitener, Z)
    np.testing.assert_allclose(np.cov(W, rowvar=False), np.eye(5), atol=1e-3)


def test_set_values_parse(bench):
    assert bench.parse_value("0.5") == 0.5
    assert bench.parse_value("False") is False
    assert bench.parse_value("true") is True
    assert bench.parse_value("sigmoid") == "sigmoid"
