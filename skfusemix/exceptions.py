"""Warnings and errors raised by skfusemix training."""

from sklearn.exceptions import ConvergenceWarning

__all__ = ["FitInterruptedWarning", "TrainingDivergedError"]


class FitInterruptedWarning(ConvergenceWarning):
    """Training was cut short (Ctrl-C): the estimator holds the state reached.

    A subclass of :class:`sklearn.exceptions.ConvergenceWarning` (hence of
    :class:`UserWarning`), so ``warnings.simplefilter("error",
    ConvergenceWarning)`` turns it into an error as well.
    """


class TrainingDivergedError(FloatingPointError, ValueError):
    """The loss, a gradient or a weight became NaN or infinite.

    Raised by :meth:`FuseMixAligner.fit` after restoring the weights of the
    last epoch that ended with finite values, so the estimator is still
    usable; the message says what to change (learning rate, temperature,
    input scale).
    """

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result
