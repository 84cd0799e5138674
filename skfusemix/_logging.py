"""The library's one logger, ``logging.getLogger("skfusemix")``.

The library never prints (the command line does).  Messages go through this
logger; ``verbose`` arguments ask for them to be seen, so when the
application has not configured logging at all, :func:`verbose_logger` adds a
plain stderr handler at INFO level, once.
"""

import logging

logger = logging.getLogger("skfusemix")


def verbose_logger(verbose):
    """The ``skfusemix`` logger, made visible when ``verbose`` is truthy and
    the application configured no logging of its own."""
    if verbose and not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[skfusemix] %(message)s"))
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    return logger
