import numpy as np
import pytest


def make_pairs(n=300, d_x=24, d_y=16, d_shared=6, noise=0.05, seed=0):
    """Paired latents that share low-dimensional structure through different
    nonlinear maps, so that retrieval is learnable but not trivial."""
    rng = np.random.RandomState(seed)
    shared = rng.normal(size=(n, d_shared))
    Zx = np.tanh(shared @ rng.normal(size=(d_shared, d_x))) + noise * rng.normal(
        size=(n, d_x)
    )
    Zy = np.sin(0.5 * shared @ rng.normal(size=(d_shared, d_y))) + noise * rng.normal(
        size=(n, d_y)
    )
    return Zx.astype(np.float32), Zy.astype(np.float32)


@pytest.fixture
def pairs():
    return make_pairs()


#: Small, fast settings for functional tests (the defaults are the paper's).
FAST = dict(
    n_components=16, n_layers=1, expansion=2, dropout=0.0, batch_size=64, max_epochs=5
)
