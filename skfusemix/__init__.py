"""skfusemix: FuseMix multimodal alignment of frozen encoders, scikit-learn style.

The main entry point is :class:`FuseMixAligner`; retrieval metrics live in
:mod:`skfusemix.metrics`.
"""

from .aligner import FuseMixAligner
from .metrics import make_retrieval_scorer, retrieval_report

__version__ = "0.1.0.dev0"

__all__ = ["FuseMixAligner", "make_retrieval_scorer", "retrieval_report", "__version__"]
