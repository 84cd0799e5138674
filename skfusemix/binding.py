"""Several modalities bound through one anchor space.

Each modality is aligned *one-sidedly* into the frozen latent space of an
anchor modality (``FuseMixAligner(fixed_y=True)``: images -> text space,
speech -> text space, ...).  All of them then live in the anchor's own space,
so any two can be compared, including two that never saw a pair of each
other: the emergent alignment of ImageBind (Girdhar et al., CVPR 2023), here
with frozen encoders and small adapters.
"""

import os

import numpy as np
from sklearn.utils.validation import check_array, check_is_fitted

from ._data import l2_normalize
from ._persistence import check_member_name, read_composite, save_composite
from .aligner import FuseMixAligner

__all__ = ["AnchorBinding"]


class AnchorBinding:
    """Modalities aligned into one anchor space, used together.

    Holds one fitted one-sided :class:`~skfusemix.FuseMixAligner` per
    modality (``fixed_y=True``, all fitted on latents of the same anchor
    encoder) and embeds any modality, the anchor included, into the anchor's
    own space.  Embeddings are L2-normalised, so a dot product is a cosine
    similarity, and vectors the anchor encoder embedded long ago (an existing
    index) can be searched directly.

    Parameters
    ----------
    aligners : dict of str to FuseMixAligner
        Modality name -> a fitted aligner with ``fixed_y=True`` whose ``y``
        was the anchor's latents.  All must share the anchor width.
    anchor : str, default="anchor"
        Name of the anchor modality, whose latents go in unchanged (only
        L2-normalised).

    Attributes
    ----------
    modalities : list of str
        The anchor, then the aligned modalities in the order given.
    n_components : int
        Width of the anchor space.

    See Also
    --------
    FuseMixAligner : ``fixed_y=True`` aligns one modality into another's
        space.

    Notes
    -----
    Two modalities that were each paired only with the anchor (images with
    captions, speech with transcripts) are compared through it:
    ``similarity("speech", S, "image", I)`` needs no speech-image pair.
    This works as far as both adapters land on the same regions of the
    anchor space, so it is usually weaker than an aligner trained on direct
    pairs; the docs' one-sided alignment page measures by how much.

    References
    ----------
    R. Girdhar, A. El-Nouby, Z. Liu, M. Singh, K. V. Alwala, A. Joulin and
    I. Misra. "ImageBind: One Embedding Space To Bind Them All." CVPR 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix import AnchorBinding, FuseMixAligner, retrieval_report
    >>> rng = np.random.RandomState(0)
    >>> content = rng.normal(size=(700, 4))
    >>> text = content @ rng.normal(size=(4, 16))
    >>> image = np.tanh(content @ rng.normal(size=(4, 24)))
    >>> speech = np.tanh(0.5 * content @ rng.normal(size=(4, 12)))
    >>> params = dict(fixed_y=True, max_epochs=40, random_state=0)
    >>> binding = AnchorBinding(
    ...     {  # images and speech are each paired with text only
    ...         "image": FuseMixAligner(**params).fit(image[:300], text[:300]),
    ...         "speech": FuseMixAligner(**params).fit(speech[300:600], text[300:600]),
    ...     },
    ...     anchor="text",
    ... )
    >>> binding.modalities, binding.n_components
    (['text', 'image', 'speech'], 16)
    >>> report = retrieval_report(
    ...     binding.embed("speech", speech[600:]), binding.embed("image", image[600:])
    ... )
    >>> report["x2y_R@10"] > 0.3  # speech -> image, never paired; chance 0.1
    True
    """

    def __init__(self, aligners, anchor="anchor"):
        check_member_name(anchor, "anchor")
        if not isinstance(aligners, dict) or not aligners:
            raise TypeError(
                "aligners must be a non-empty dict mapping modality names to fitted "
                f"FuseMixAligner(fixed_y=True) objects, got {type(aligners).__name__}."
            )
        width = None
        for name, aligner in aligners.items():
            check_member_name(name, "modality")
            if name == anchor:
                raise ValueError(
                    f"{name!r} is the anchor; the anchor needs no aligner."
                )
            if not isinstance(aligner, FuseMixAligner):
                raise TypeError(
                    f"aligners[{name!r}] must be a FuseMixAligner, got "
                    f"{type(aligner).__name__}."
                )
            check_is_fitted(aligner)
            if not aligner.fixed_y:
                raise ValueError(
                    f"aligners[{name!r}] was fitted with fixed_y=False: its shared space "
                    "is its own, not the anchor's.  Fit it with fixed_y=True on "
                    "(modality latents, anchor latents) pairs."
                )
            if width is not None and aligner.n_features_y_in_ != width:
                raise ValueError(
                    f"aligners[{name!r}] was fitted on anchor latents of width "
                    f"{aligner.n_features_y_in_}, the others on width {width}: they were "
                    "made by different anchor encoders."
                )
            width = aligner.n_features_y_in_
        self.aligners = dict(aligners)
        self.anchor = anchor

    @property
    def modalities(self):
        return [self.anchor, *self.aligners]

    @property
    def n_components(self):
        return next(iter(self.aligners.values())).n_features_y_in_

    def __getitem__(self, modality):
        """The aligner of ``modality``."""
        self._check_modality(modality)
        if modality == self.anchor:
            raise KeyError(f"{modality!r} is the anchor; it has no aligner.")
        return self.aligners[modality]

    def __repr__(self):
        return (
            f"{type(self).__name__}(anchor={self.anchor!r}, "
            f"modalities={list(self.aligners)})"
        )

    def _check_modality(self, modality):
        if modality not in self.modalities:
            raise KeyError(
                f"Unknown modality {modality!r}; this binding has {self.modalities}."
            )

    def embed(self, modality, Z):
        """Embed latents of ``modality`` in the anchor space.

        Parameters
        ----------
        modality : str
            One of :attr:`modalities`.
        Z : array-like or torch.Tensor of shape (n_samples, n_features)
            Latents of that modality's encoder (the anchor's: any vectors of
            the anchor encoder, e.g. an existing index).

        Returns
        -------
        S : ndarray of shape (n_samples, n_components)
            L2-normalised float32 embeddings in the anchor space.
        """
        self._check_modality(modality)
        if modality != self.anchor:
            return self.aligners[modality].transform(Z)
        Z = check_array(Z, dtype=(np.float32, np.float64), input_name="Z")
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"Z has {Z.shape[1]} features, but the anchor space of this binding "
                f"has {self.n_components}."
            )
        return l2_normalize(Z).astype(np.float32, copy=False)

    def similarity(self, query_modality, Q, key_modality, K):
        """Cosine similarities between two modalities in the anchor space.

        Parameters
        ----------
        query_modality, key_modality : str
            Modalities of ``Q`` and ``K`` (any two of :attr:`modalities`).
        Q : array-like of shape (n_queries, n_features_query)
            Query latents.
        K : array-like of shape (n_keys, n_features_key)
            Key latents.

        Returns
        -------
        S : ndarray of shape (n_queries, n_keys)
            ``S[i, j]`` is the cosine similarity of query ``i`` and key
            ``j``; rank the keys of a query with ``np.argsort(-S[i])``.
        """
        return self.embed(query_modality, Q) @ self.embed(key_modality, K).T

    # -------------------------------------------------------- persistence
    def save(self, path):
        """Save the binding without pickle: ``config.json`` naming the anchor
        and the modalities, and one :meth:`FuseMixAligner.save` folder per
        modality under ``path/<modality>``.

        Parameters
        ----------
        path : str or path-like
            Directory to write (created if needed).

        Returns
        -------
        path : str or path-like
            The same ``path``.
        """
        return save_composite(
            path,
            type(self).__name__,
            list(self.aligners.items()),
            "modalities",
            "modality",
            anchor=self.anchor,
        )

    @classmethod
    def load(cls, path, *, device=None):
        """Load a binding written by :meth:`save` (strictly: every aligner is
        checked as :meth:`FuseMixAligner.load` does, no pickle).

        Parameters
        ----------
        path : str or path-like
            Directory written by :meth:`save`.
        device : str or torch.device, default=None
            Device of the adapters (default: the saved one, or CPU).

        Returns
        -------
        binding : AnchorBinding
            The loaded binding.
        """
        config, names = read_composite(cls.__name__, path, "modalities", "modality")
        anchor = config.get("anchor")
        aligners = {
            name: FuseMixAligner.load(os.path.join(path, name), device=device)
            for name in names
        }
        return cls(aligners, anchor=anchor)
