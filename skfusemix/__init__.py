"""skfusemix: FuseMix multimodal alignment of frozen encoders, scikit-learn style.

The main entry point is :class:`FuseMixAligner`; retrieval metrics live in
:mod:`skfusemix.metrics`, classical baselines with the same API in
:mod:`skfusemix.baselines`, encoders in :mod:`skfusemix.encoders`, zero-shot
classification in :mod:`skfusemix.zero_shot`.

The public names are imported on first use (PEP 562), so that
``import skfusemix.cli`` (the command line's ``--help``) does not pay for
importing torch and scikit-learn.
"""

import importlib

from ._version import __version__

#: Public name -> the submodule that defines it.
_LAZY = {
    "FuseMixAligner": "aligner",
    "AnchorBinding": "binding",
    "AlignerEnsemble": "ensemble",
    "seed_ensemble": "ensemble",
    "ASIFAligner": "baselines",
    "CCAAligner": "baselines",
    "ProcrustesAligner": "baselines",
    "CSAAligner": "baselines",
    "make_retrieval_scorer": "metrics",
    "retrieval_report": "metrics",
    "zero_shot_classify": "zero_shot",
    "zero_shot_scores": "zero_shot",
}

_SUBMODULES = {
    "aligner",
    "base",
    "baselines",
    "binding",
    "cli",
    "datasets",
    "demo",
    "encoders",
    "ensemble",
    "exceptions",
    "engine",
    "metrics",
    "plotting",
    "selection",
    "zero_shot",
}

__all__ = [
    "ASIFAligner",
    "AlignerEnsemble",
    "AnchorBinding",
    "CCAAligner",
    "CSAAligner",
    "FuseMixAligner",
    "ProcrustesAligner",
    "make_retrieval_scorer",
    "retrieval_report",
    "seed_ensemble",
    "zero_shot_classify",
    "zero_shot_scores",
    "__version__",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
