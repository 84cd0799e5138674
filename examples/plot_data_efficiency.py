"""
Data efficiency: recall against the number of training pairs
=============================================================

The paper's central claim is that FuseMix makes good use of few pairs.  Here
the small-data recipe (:meth:`skfusemix.FuseMixAligner.small_data_params`) is
compared with the same adapters without mixing (``alpha=0``, same number of
optimizer steps) and with tuned CCA and ASIF on two real views of the UCI
handwritten digits (pixel averages against Fourier coefficients), for 100, 400
and 1,600 training pairs, one split.  The full study (OpenMoji and mfeat, five
sizes, three seeds) is on the docs' small-data page and in
``benchmarks/data_efficiency.py``.  About two minutes on 2 CPU cores.
"""

import matplotlib.pyplot as plt
import numpy as np

from skfusemix import ASIFAligner, CCAAligner, FuseMixAligner
from skfusemix.datasets import load_mfeat
from skfusemix.demo import retrieval_learning_curve

Zx, Zy = load_mfeat(return_X_y=True)
rows = []
for n in (100, 400, 1600):
    recipe = FuseMixAligner.small_data_params(n_samples=n)
    # without mixing a step sees batch_size pairs instead of 2 * batch_size:
    # half the epochs give the same number of optimizer steps
    no_mixing = {**recipe, "alpha": 0.0, "max_epochs": recipe["max_epochs"] // 2}
    methods = [
        ("FuseMix", FuseMixAligner(**recipe)),
        ("no mixing", FuseMixAligner(**no_mixing)),
        ("CCA", CCAAligner(reg=0.03, n_components=64)),
        ("ASIF", ASIFAligner(k=32, p=4)),
    ]
    rows += retrieval_learning_curve(methods, Zx, Zy, train_sizes=[n], n_repeats=1)

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for method in dict.fromkeys(r["method"] for r in rows):
    points = [(r["n_train"], r["mean R@1"]) for r in rows if r["method"] == method]
    ax.plot(*np.array(points).T, "-o", label=method)
    print(method, " ".join(f"n={n}: {v:.3f}" for n, v in points))
ax.set_xscale("log")
ax.set_xlabel("training pairs")
ax.set_ylabel("held-out mean R@1")
ax.set_title("UCI mfeat, pixels <-> Fourier coefficients (400 held-out pairs)")
ax.legend()
plt.show()
