"""
The end-to-end demo: emoji images and their names
=================================================

Two frozen encoders that never saw each other -- an ImageNet EfficientNet-Lite0
for the OpenMoji drawings and all-MiniLM-L6-v2 for their Unicode names, both
shipped inside PyPI packages -- are aligned by FuseMix on about 3,200 pairs and
compared with CCA, orthogonal Procrustes and ASIF on 752 held-out pairs (split
by emoji group).  This is what ``python -m skfusemix demo`` runs.

The first run renders and encodes the images once (about three minutes on 2
CPU cores); the latents and the finished fits are cached, so later runs take
seconds.  Needs ``pip install "skfusemix[demo]"``.
"""

# %%
# Fit, evaluate and draw
# ----------------------
import tempfile

import matplotlib.pyplot as plt

from skfusemix.demo import run_openmoji_demo

out_dir = tempfile.mkdtemp()
result = run_openmoji_demo(seed=0, out_dir=out_dir)
print(result.description)
for row in result.retrieval:
    print(f"{row['method']:22s} image->name R@1 {row['x2y_R@1']:.3f}  "
          f"name->image R@1 {row['y2x_R@1']:.3f}  R@10 {row['x2y_R@10']:.3f} / "
          f"{row['y2x_R@10']:.3f}")  # fmt: skip

# %%
# Zero-shot classification
# ------------------------
# The held-out images are classified into the nine Unicode emoji categories
# ("Food & Drink", "Animals & Nature", ...) by the nearest embedded category
# *name*: no labelled image is used.  The references use no text.
for row in result.zero_shot:
    print(f"{row['method']:34s} accuracy {row['accuracy']:.3f}  "
          f"balanced {row['balanced accuracy']:.3f}")  # fmt: skip

# %%
# Top-5 retrievals for held-out names, and recall@k of every method
# ------------------------------------------------------------------
for path in result.figures:
    image = plt.imread(path)
    height, width = image.shape[:2]
    fig = plt.figure(figsize=(width / 100, height / 100))  # the PNG at its own size
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(image)
    ax.axis("off")
plt.show()
