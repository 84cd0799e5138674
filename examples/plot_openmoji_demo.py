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
print()
print(f"{'held-out recall':22s} {'image->name':>17s} {'name->image':>17s}")
print(f"{'':22s} {'R@1':>8s} {'R@10':>8s} {'R@1':>8s} {'R@10':>8s}")
for row in result.retrieval:
    print(
        f"{row['method'][:22]:22s} {row['x2y_R@1']:8.3f} {row['x2y_R@10']:8.3f} "
        f"{row['y2x_R@1']:8.3f} {row['y2x_R@10']:8.3f}"
    )

# %%
# Zero-shot classification
# ------------------------
# The held-out images are classified into the nine Unicode emoji categories
# ("Food & Drink", "Animals & Nature", ...) by the nearest embedded category
# *name*: no labelled image is used.  The references use no text.
print(f"{'method':34s} {'accuracy':>9s} {'balanced':>9s}")
for row in result.zero_shot:
    print(
        f"{row['method'][:34]:34s} {row['accuracy']:9.3f} "
        f"{row['balanced accuracy']:9.3f}"
    )

# %%
# Top-5 retrievals for held-out names, and recall@k of every method
# ------------------------------------------------------------------
# The two figures the demo writes, one below the other at their own size.
for path in result.figures:
    image = plt.imread(path)
    height, width = image.shape[:2]
    fig = plt.figure(figsize=(width / 100, height / 100))  # the PNG at its own size
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(image)
    ax.axis("off")
plt.show()

# sphinx_gallery_multi_image = "single"
# sphinx_gallery_thumbnail_number = 1
