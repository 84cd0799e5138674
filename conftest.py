"""Doctests of the library: plots draw off screen and figures are closed after each."""

import pytest

try:
    import matplotlib
except ImportError:  # plotting doctests need the `plot` extra
    matplotlib = None
else:
    matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    if matplotlib is not None:
        import matplotlib.pyplot as plt

        plt.close("all")
