"""Property-based fuzzing of the aligners' inputs and parameters.

Every generated case must either fit and transform correctly or raise a
ValueError/TypeError, never anything else, and must leave the caller's data
unchanged.  Kept short for CI: few examples, tiny models, 1-2 epochs.
"""

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skfusemix import ASIFAligner, CCAAligner, FuseMixAligner, ProcrustesAligner

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

DTYPES = [
    "float16",
    "float32",
    "float64",
    "int32",
    "int64",
    "uint8",
    "bool",
    "object",
    "complex64",
    "str",
]
_COUNTER = itertools.count()
LAYOUTS = ["C", "F", "strided", "memmap", "DataFrame", "sparse", "list"]


@st.composite
def matrices(draw, n):
    d = draw(st.integers(1, 64))
    dtype = draw(st.sampled_from(DTYPES))
    layout = draw(st.sampled_from(LAYOUTS))
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))
    rng = np.random.RandomState(seed)
    Z = rng.normal(size=(n, 2 * d)) * scale
    if draw(st.integers(0, 9)) == 0:
        Z[rng.randint(n), rng.randint(2 * d)] = draw(st.sampled_from([np.nan, np.inf]))
    if dtype == "str":
        Z = Z.astype(str)
    elif dtype == "object":
        Z = Z.astype(object)
    elif dtype in ("int32", "int64", "uint8", "bool"):
        Z = np.nan_to_num(Z, posinf=0, neginf=0, nan=0).astype(dtype)
    else:
        Z = Z.astype(dtype)
    return Z, d, layout


def _layout(Z, d, layout, tmp_path):
    if layout == "strided":
        return Z[:, ::2]  # a non-contiguous view
    Z = np.ascontiguousarray(Z[:, :d])
    if layout == "F":
        return np.asfortranarray(Z)
    if layout == "memmap" and Z.dtype != object and Z.dtype.kind != "U":
        path = tmp_path / f"z{next(_COUNTER)}.dat"
        mm = np.memmap(path, dtype=Z.dtype, mode="w+", shape=Z.shape)
        mm[:] = Z
        mm.flush()
        return np.memmap(path, dtype=Z.dtype, mode="r+", shape=Z.shape)
    if layout == "DataFrame":
        return pd.DataFrame(Z, columns=[f"c{i}" for i in range(Z.shape[1])])
    if layout == "sparse" and Z.dtype.kind in "fiub" and Z.dtype != np.float16:
        return sp.csr_matrix(Z)
    if layout == "list":
        return Z.tolist()
    return Z


def _snapshot(Z):
    if isinstance(Z, pd.DataFrame):
        return Z.copy(deep=True)
    if sp.issparse(Z):
        return Z.copy()
    if isinstance(Z, list):
        return [list(row) for row in Z]
    return np.array(Z, copy=True)


def _unchanged(before, after):
    if isinstance(before, pd.DataFrame):
        pd.testing.assert_frame_equal(before, after)
    elif sp.issparse(before):  # NaN-safe and exact, like the dense case
        np.testing.assert_array_equal(before.toarray(), after.toarray())
    elif isinstance(before, list) or before.dtype == object:  # NaN-safe, exact
        assert repr(np.asarray(before).tolist()) == repr(np.asarray(after).tolist())
    else:
        np.testing.assert_array_equal(before, np.asarray(after))


def _check_case(estimator, X, y, n_out):
    """Fit + transform, or a ValueError/TypeError; inputs unchanged."""
    X0, y0 = _snapshot(X), _snapshot(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            estimator.fit(X, y)
        except (ValueError, TypeError) as exc:
            assert str(exc), "errors must say what is wrong"
            assert "Traceback" not in str(exc)
        else:
            Sx, Sy = estimator.transform(X), estimator.transform_y(y)
            n = len(X0) if not sp.issparse(X0) else X0.shape[0]
            assert Sx.shape == (n, n_out(estimator)) and Sy.shape == Sx.shape
            assert np.isfinite(Sx).all() and np.isfinite(Sy).all()
            assert np.all(np.linalg.norm(Sx, axis=1) <= 1 + 1e-4)
    _unchanged(X0, X)
    _unchanged(y0, y)


@FUZZ
@given(data=st.data())
def test_fuzz_fusemix_inputs(data, tmp_path):
    n = data.draw(st.integers(2, 200))
    X, dx, lx = data.draw(matrices(n))
    y, dy, ly = data.draw(matrices(n))
    X, y = _layout(X, dx, lx, tmp_path), _layout(y, dy, ly, tmp_path)
    fixed_y = data.draw(st.booleans())  # one-sided: y's own space
    aligner = FuseMixAligner(
        n_components="auto" if fixed_y else 4,
        n_layers=1,
        expansion=1,
        batch_size=32,
        max_epochs=1,
        random_state=0,
        device="cpu",
        fixed_y=fixed_y,
    )
    _check_case(aligner, X, y, lambda est: est._n_features_out)


PARAMS = {
    "n_components": st.one_of(st.integers(-2, 9), st.just(2.5), st.just("4")),
    "n_layers": st.one_of(
        st.integers(-1, 2),
        st.tuples(st.integers(0, 2), st.integers(-1, 2)),
        st.just((1,)),
    ),
    "expansion": st.integers(0, 3),
    "dropout": st.sampled_from([0.0, 0.5, 1.0, -0.1, float("nan")]),
    "alpha": st.sampled_from([0.0, 0.3, 1.0, 5.0, -1.0, float("inf")]),
    "temperature": st.sampled_from([1e-4, 0.07, 1.0, 0.0, -1.0]),
    "learn_temperature": st.sampled_from([True, False, "yes"]),
    "batch_size": st.integers(0, 300),
    "max_epochs": st.integers(0, 2),
    "learning_rate": st.sampled_from([1e-3, 1.0, 0.0, -1.0]),
    "weight_decay": st.sampled_from([0.0, 0.1, -0.1]),
    "warmup_steps": st.integers(-1, 5),
    "device": st.sampled_from(["cpu", "auto", "tpu", "cuda:7", 3]),
    "random_state": st.sampled_from([None, 0, 7, -1, "seed"]),
    "early_stopping": st.booleans(),
    "validation_fraction": st.sampled_from([0.1, 0.5, 0.0, 1.0]),
    "n_iter_no_change": st.integers(0, 3),
    "tol": st.sampled_from([0.0, 1e-4, -1.0]),
    "checkpoint_every": st.integers(0, 2),
    "max_memory": st.sampled_from([None, 1e12, 10.0, 0]),
    "warm_start": st.booleans(),
    "fixed_y": st.booleans(),
    "cca_weight": st.sampled_from(["auto", 0.0, 0.3, 0.99, 1.0, -0.1, float("nan")]),
    "anchor_weight": st.sampled_from(["auto", 0.0, 0.3, 0.7, 1.0, -0.1, float("nan")]),
}


@FUZZ
@given(data=st.data())
def test_fuzz_fusemix_parameters(data):
    params = {
        name: data.draw(strategy)
        for name, strategy in PARAMS.items()
        if data.draw(st.booleans())
    }
    n = data.draw(st.integers(2, 120))
    rng = np.random.RandomState(data.draw(st.integers(0, 1000)))
    X = rng.normal(size=(n, data.draw(st.integers(1, 12))))
    y = rng.normal(size=(n, data.draw(st.integers(1, 12)))).astype(np.float32)
    base = dict(n_components=4, n_layers=1, expansion=1, batch_size=32, max_epochs=1)
    aligner = FuseMixAligner(**{**base, **params})
    _check_case(aligner, X, y, lambda est: est._n_features_out)
    if hasattr(aligner, "adapter_x_"):  # a second fit (warm or not) also works
        _check_case(aligner, X, y, lambda est: est._n_features_out)


@pytest.mark.parametrize(
    "make",
    [
        lambda: CCAAligner(n_components=2),
        lambda: ProcrustesAligner(),
        lambda: ASIFAligner(k=4, random_state=0),
    ],
    ids=["cca", "procrustes", "asif"],
)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_fuzz_baselines(make, data, tmp_path):
    n = data.draw(st.integers(2, 150))
    X, dx, lx = data.draw(matrices(n))
    y, dy, ly = data.draw(matrices(n))
    X, y = _layout(X, dx, lx, tmp_path), _layout(y, dy, ly, tmp_path)
    _check_case(make(), X, y, lambda est: est.transform(X).shape[1])
