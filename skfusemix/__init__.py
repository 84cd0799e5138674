"""skfusemix: FuseMix multimodal alignment of frozen encoders, scikit-learn style.

The main entry point is :class:`FuseMixAligner`; retrieval metrics live in
:mod:`skfusemix.metrics`, classical baselines with the same API in
:mod:`skfusemix.baselines`, encoders in :mod:`skfusemix.encoders`.
"""

from .aligner import FuseMixAligner
from .baselines import ASIFAligner, CCAAligner, ProcrustesAligner
from .metrics import make_retrieval_scorer, retrieval_report

__version__ = "0.1.0.dev0"

__all__ = [
    "ASIFAligner",
    "CCAAligner",
    "FuseMixAligner",
    "ProcrustesAligner",
    "make_retrieval_scorer",
    "retrieval_report",
    "__version__",
]
