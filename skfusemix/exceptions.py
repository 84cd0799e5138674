"""Warnings and errors raised by skfusemix training."""

from sklearn.exceptions import ConvergenceWarning

__all__ = ["FitInterruptedWarning", "TrainingDivergedError"]


class FitInterruptedWarning(ConvergenceWarning):
    """Training was cut short (Ctrl-C): the estimator holds the state reached.

    A subclass of :class:`sklearn.exceptions.ConvergenceWarning` (hence of
    :class:`UserWarning`), so ``warnings.simplefilter("error",
    ConvergenceWarning)`` turns it into an error as well.

    Examples
    --------
    >>> import warnings
    >>> from sklearn.exceptions import ConvergenceWarning
    >>> from skfusemix.exceptions import FitInterruptedWarning
    >>> issubclass(FitInterruptedWarning, ConvergenceWarning)
    True
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", FitInterruptedWarning)
    ...     warnings.warn("stopped after 3 steps", FitInterruptedWarning)
    """


class TrainingDivergedError(FloatingPointError, ValueError):
    """The loss, a gradient or a weight became NaN or infinite.

    Raised by :meth:`FuseMixAligner.fit` after restoring the weights of the
    last epoch that ended with finite values, so the estimator is still
    usable; the message says what to change (learning rate, temperature,
    input scale).

    Parameters
    ----------
    message : str
        What diverged, when, and what to try.
    result : object, default=None
        The training record up to the last finite epoch.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix import FuseMixAligner
    >>> from skfusemix.exceptions import TrainingDivergedError
    >>> rng = np.random.RandomState(0)
    >>> Zx, Zy = rng.normal(size=(64, 4)), rng.normal(size=(64, 3))
    >>> aligner = FuseMixAligner(learning_rate=1e30, max_epochs=5, random_state=0)
    >>> try:
    ...     aligner.fit(Zx, Zy)
    ... except TrainingDivergedError as exc:
    ...     print("diverged; the estimator keeps finite weights:",
    ...           bool(np.isfinite(aligner.transform(Zx)).all()))
    diverged; the estimator keeps finite weights: True
    """

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result
