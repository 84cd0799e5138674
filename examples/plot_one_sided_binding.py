"""
One-sided alignment: images and speech into a frozen text space
================================================================

Most users already have vectors from an encoder they cannot change: a text
index, a generator conditioned on text embeddings.  ``fixed_y=True`` trains
only the x adapter and maps X *into y's own space*, so those vectors stay
valid.  Here, on real data offline:

1. OpenMoji images are aligned into the frozen all-MiniLM-L6-v2 text space
   and queried against an index of all emoji names built beforehand with
   the text encoder alone;
2. the same names, spoken by espeak-ng and encoded by Whisper tiny.en, are
   aligned into the same text space;
3. an :class:`~skfusemix.AnchorBinding` holds both, and speech retrieves
   images although **no speech-image pair was used in training**.  It is
   compared with chance and with a two-sided aligner trained on
   speech-image pairs directly.

Needs the ``demo`` and ``speech`` extras and the ``espeak-ng`` program
(``apt-get install espeak-ng``).  A first run synthesises and encodes about
1,900 clips (a few minutes on 2 CPU cores); everything is cached.
"""

# %%
# The data: one image, one name and one spoken name per emoji
# ------------------------------------------------------------
# The emoji without skin-tone variants (one image per name).  Items are
# split 80/20: the held-out emoji are never seen in training, in any
# modality.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import ShuffleSplit
from sklearn.preprocessing import normalize

from skfusemix import AnchorBinding, FuseMixAligner, retrieval_report
from skfusemix.datasets import load_spoken_openmoji
from skfusemix.demo import encode_openmoji

Z_image_all, Z_text_all, data = encode_openmoji()
speech = load_spoken_openmoji(
    include_skin_tones=False, voices=("en-us",), speeds=(160,)
)
row_of_name = {name: i for i, name in enumerate(data.texts)}
rows = np.array([row_of_name[name] for name in speech.texts])  # one per emoji
Z_image, Z_text = Z_image_all[rows], Z_text_all[rows]
Z_speech = speech.latents[np.argsort(speech.item)]  # one clip per emoji, same order
names = np.asarray(speech.texts)
n = len(names)
train, test = next(ShuffleSplit(1, test_size=0.2, random_state=0).split(names))
print(f"{n} emoji: {len(train)} to train, {len(test)} held out")
print(
    f"latents: image {Z_image.shape[1]}-d, text {Z_text.shape[1]}-d, "
    f"speech {Z_speech.shape[1]}-d"
)

# %%
# The text index, built beforehand
# --------------------------------
# An index of every emoji name, embedded once by the text encoder and
# L2-normalised.  Nothing below re-embeds it: one-sided aligners map their
# queries into this space.
text_index = normalize(Z_text)

# %%
# Images into the text space
# --------------------------
# Only the image adapter is trained (on the training emoji's image-name
# pairs).  Held-out images then query the index of all names.
image_to_text = FuseMixAligner(fixed_y=True, random_state=0).fit(
    Z_image[train], Z_text[train]
)
scores = image_to_text.transform(Z_image[test]) @ text_index.T
rank = (scores > scores[np.arange(len(test)), test][:, None]).sum(axis=1)
for k in (1, 10):
    print(
        f"held-out image -> its name among all {n} names: R@{k} "
        f"{np.mean(rank < k):.3f} (chance {k / n:.4f})"
    )

# %%
# Speech into the same text space, and the binding
# ------------------------------------------------
# The speech adapter is trained on (spoken name, name) pairs only.
speech_to_text = FuseMixAligner(fixed_y=True, random_state=0).fit(
    Z_speech[train], Z_text[train]
)
binding = AnchorBinding(
    {"image": image_to_text, "speech": speech_to_text}, anchor="text"
)
print(binding)

# %%
# Speech -> image, with no speech-image pair
# ------------------------------------------
# Held-out spoken names retrieve held-out images through the text space.
# The reference is a two-sided aligner trained on speech-image pairs of the
# same training emoji: what direct pairs would buy.
ks = (1, 5, 10, 20, 50)
bound = retrieval_report(
    binding.embed("speech", Z_speech[test]),
    binding.embed("image", Z_image[test]),
    ks=ks,
)
direct = FuseMixAligner(random_state=0).fit(Z_speech[train], Z_image[train])
paired = retrieval_report(
    direct.transform(Z_speech[test]), direct.transform_y(Z_image[test]), ks=ks
)
chance = {k: k / len(test) for k in ks}
print(f"speech -> image among {len(test)} held-out emoji")
print(f"{'':<34}" + "".join(f"{'R@' + str(k):>8}" for k in ks))
for label, recall in (
    ("binding (no speech-image pairs)", {k: bound[f"x2y_R@{k}"] for k in ks}),
    ("two-sided on speech-image pairs", {k: paired[f"x2y_R@{k}"] for k in ks}),
    ("chance", chance),
):
    print(f"{label:<34}" + "".join(f"{recall[k]:>8.3f}" for k in ks))

# %%
# The figure: recall@k of speech -> image.
fig, ax = plt.subplots(figsize=(6.4, 4))
ax.plot(
    ks,
    [bound[f"x2y_R@{k}"] for k in ks],
    "o-",
    label="through the text space (no speech-image pairs)",
)
ax.plot(
    ks,
    [paired[f"x2y_R@{k}"] for k in ks],
    "s--",
    label="two-sided, trained on speech-image pairs",
)
ax.plot(ks, [chance[k] for k in ks], ":", color="grey", label="chance")
ax.set_xscale("log")
ax.set_xticks(ks, [str(k) for k in ks])
ax.set_xlabel("k")
ax.set_ylabel("recall@k, spoken name -> emoji image")
ax.set_title(f"Speech -> image on {len(test)} held-out emoji")
ax.legend(loc="upper left", fontsize=9)
fig.tight_layout()
plt.show()

# %%
# Saving the binding writes one pickle-free folder per modality.
import tempfile  # noqa: E402

with tempfile.TemporaryDirectory() as folder:
    loaded = AnchorBinding.load(binding.save(folder))
    same = np.array_equal(
        loaded.embed("speech", Z_speech[test]), binding.embed("speech", Z_speech[test])
    )
    print(f"saved and loaded: {loaded.modalities}, identical embeddings: {same}")
