"""Warnings and errors raised by skfusemix: training, and black-box encoders."""

from sklearn.exceptions import ConvergenceWarning

__all__ = [
    "EncoderRequestError",
    "FitInterruptedWarning",
    "TrainingDivergedError",
    "TransientEncoderError",
]


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


class TransientEncoderError(Exception):
    """A request to a black-box encoder failed in a way worth retrying.

    Raise it from the function given to
    :class:`~skfusemix.encoders.CallableEncoder` for a failure that may go
    away (a busy or restarting service, a rate limit): the encoder waits and
    sends the batch again, with exponential back-off.  ``TimeoutError``,
    ``ConnectionError`` and HTTP errors with status 408, 429 or 5xx are
    retried as well; every other exception is permanent.

    Parameters
    ----------
    message : str
        What failed.
    retry_after : float, default=None
        Seconds the service asked to wait (an HTTP ``Retry-After`` header):
        the next attempt waits at least that long (at most 60 s).

    Examples
    --------
    >>> from skfusemix.exceptions import TransientEncoderError
    >>> err = TransientEncoderError("HTTP 429: too many requests", retry_after=2)
    >>> err.retry_after
    2
    """

    def __init__(self, message, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


class EncoderRequestError(RuntimeError):
    """A black-box encoder could not encode a batch.

    Raised by :class:`~skfusemix.encoders.CallableEncoder` on a permanent
    failure (an HTTP 4xx answer, an output of the wrong shape, NaN values) or
    once the retries of a transient one are spent.  The message names the
    batch (its number, size and first input) and the cause, which is also
    chained as ``__cause__``.  Batches finished before the failure are kept
    in the encoder's cache (``memory=``), and :func:`~skfusemix.encoders.encode_to_npy`
    resumes after the chunks it wrote.

    Parameters
    ----------
    message : str
        Which batch failed, and why.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.encoders import CallableEncoder
    >>> from skfusemix.exceptions import EncoderRequestError
    >>> def one_row_short(texts):
    ...     return np.ones((len(texts) - 1, 4))
    >>> try:
    ...     CallableEncoder(one_row_short, identity="broken").transform(["a", "b"])
    ... except EncoderRequestError as exc:
    ...     print(str(exc)[:60])
    The encoder's function returned shape (1, 4) for batch 1 of
    """
