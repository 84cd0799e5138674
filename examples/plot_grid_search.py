"""
Choosing alpha and temperature with GridSearchCV
================================================

:class:`~skfusemix.FuseMixAligner` is a scikit-learn estimator, so its
hyper-parameters are chosen like any other's.  Two things matter for
retrieval data:

* **several captions per image**: the rows of one image must stay in the same
  fold, or the model is scored on images it was trained on.
  :class:`~sklearn.model_selection.GroupKFold` with ``groups`` (the image of
  each row) does that;
* **the score**: the default ``score`` is the mean recall@1 of both
  directions; :func:`~skfusemix.metrics.make_retrieval_scorer` gives others,
  here ``rsum`` (recall@1, 5 and 10 of both directions, summed).

``alpha`` sets FuseMix's ``Beta(alpha, alpha)`` mixing (0 turns it off) and
``temperature`` the initial softmax temperature of the InfoNCE loss.
"""

# %%
# Synthetic latents with 3 captions per image
# -------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, GroupKFold

from skfusemix import FuseMixAligner, make_retrieval_scorer, retrieval_report
from skfusemix.datasets import make_paired_latents

Zx, Zy, groups = make_paired_latents(
    n_samples=400, n_captions=3, noise=1.0, return_groups=True, random_state=0
)
train, test = groups < 300, groups >= 300  # whole images held out

# %%
# The search
# ----------
# A small, fast aligner; every fit of the grid sees two thirds of the training
# images and is scored on the other third.
aligner = FuseMixAligner(
    n_components=32,
    n_layers=1,
    dropout=0.1,
    batch_size=128,
    max_epochs=8,
    learning_rate=3e-3,
    device="cpu",
    random_state=0,
)
param_grid = {"alpha": [0.0, 1.0], "temperature": [0.03, 0.1]}
search = GridSearchCV(
    aligner,
    param_grid,
    cv=GroupKFold(n_splits=3),
    scoring=make_retrieval_scorer("rsum"),
    n_jobs=1,
)
search.fit(Zx[train], Zy[train], groups=groups[train])
print("best parameters:", search.best_params_)
print(f"best cross-validated rsum: {search.best_score_:.3f} (max 6)")

# %%
# The grid's scores
# -----------------
scores = search.cv_results_["mean_test_score"].reshape(
    len(param_grid["alpha"]), len(param_grid["temperature"])
)
fig, ax = plt.subplots(figsize=(4.8, 3.6), layout="constrained")
image = ax.imshow(scores, cmap="viridis")
ax.set_xticks(range(len(param_grid["temperature"])), param_grid["temperature"])
ax.set_yticks(range(len(param_grid["alpha"])), param_grid["alpha"])
ax.set_xlabel("temperature")
ax.set_ylabel("alpha")
for (i, j), value in np.ndenumerate(scores):
    ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="w")
fig.colorbar(image, label="mean rsum over 3 folds")
ax.set_title("GridSearchCV, GroupKFold(3)")
plt.show()

# %%
# The refitted best model on held-out images
# ------------------------------------------
# ``search`` refits the best parameters on all training rows.
best = search.best_estimator_
report = retrieval_report(best.transform(Zx[test]), best.transform_y(Zy[test]))
print({k: round(v, 3) for k, v in report.items() if "R@" in k or k == "rsum"})
