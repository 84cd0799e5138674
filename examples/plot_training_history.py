"""
Training curves and recall@k curves
===================================

A fitted :class:`~skfusemix.FuseMixAligner` records, per epoch, its mean
loss and temperature in ``history_``;
:class:`~skfusemix.plotting.TrainingHistoryDisplay` draws them.
:class:`~skfusemix.plotting.RecallAtKDisplay` draws recall@k against k for
both retrieval directions (image->text solid, text->image dashed), and
several models share one axes through ``ax=``.  Here: FuseMix with and without
mixing, and CCA, on held-out synthetic latents with 5 captions per image.
"""

# %%
import matplotlib.pyplot as plt

from skfusemix import CCAAligner, FuseMixAligner
from skfusemix.datasets import make_paired_latents
from skfusemix.plotting import RecallAtKDisplay, TrainingHistoryDisplay

Zx, Zy, groups = make_paired_latents(
    n_samples=500, n_captions=5, noise=1.0, return_groups=True, random_state=0
)
train, test = groups < 400, groups >= 400

params = dict(
    n_components=32,
    n_layers=1,
    dropout=0.1,
    batch_size=256,
    max_epochs=15,
    learning_rate=3e-3,
    device="cpu",
    random_state=0,
)
fusemix = FuseMixAligner(alpha=1.0, **params).fit(Zx[train], Zy[train])
no_mixing = FuseMixAligner(alpha=0.0, **params).fit(Zx[train], Zy[train])
cca = CCAAligner().fit(Zx[train], Zy[train])

# %%
# Loss and temperature per epoch
# ------------------------------
# With mixing the loss stays higher: mixed pairs are harder positives.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
TrainingHistoryDisplay.from_estimator(fusemix, name="FuseMix (alpha=1)", ax=axes[0])
TrainingHistoryDisplay.from_estimator(no_mixing, name="no mixing (alpha=0)", ax=axes[1])
plt.show()

# %%
# Recall@k on held-out images
# ---------------------------
fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
for name, model in [("FuseMix", fusemix), ("no mixing", no_mixing), ("CCA", cca)]:
    display = RecallAtKDisplay.from_estimator(
        model, Zx[test], Zy[test], groups=groups[test], name=name, ax=ax, log_x=True
    )
    print(
        f"{name:10s} R@1 image->text {display.recall_x2y[0]:.3f}, "
        f"text->image {display.recall_y2x[0]:.3f}"
    )
ax.set_title("Held-out retrieval, 100 images x 5 captions")
plt.show()

# sphinx_gallery_thumbnail_number = 2
