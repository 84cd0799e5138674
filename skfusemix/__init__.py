"""skfusemix: FuseMix multimodal alignment of frozen encoders, scikit-learn style.

The main entry point is :class:`FuseMixAligner`; retrieval metrics live in
:mod:`skfusemix.metrics`, classical baselines with the same API in
:mod:`skfusemix.baselines`, encoders in :mod:`skfusemix.encoders`, zero-shot
classification in :mod:`skfusemix.zero_shot`.
"""

from ._version import __version__
from .aligner import FuseMixAligner
from .baselines import ASIFAligner, CCAAligner, ProcrustesAligner
from .metrics import make_retrieval_scorer, retrieval_report
from .zero_shot import zero_shot_classify, zero_shot_scores

__all__ = [
    "ASIFAligner",
    "CCAAligner",
    "FuseMixAligner",
    "ProcrustesAligner",
    "make_retrieval_scorer",
    "retrieval_report",
    "zero_shot_classify",
    "zero_shot_scores",
    "__version__",
]
