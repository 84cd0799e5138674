"""Defaults that fit the data: what ``"auto"`` parameters of
:class:`~skfusemix.FuseMixAligner` resolve to, and the paper's recipe.

The FuseMix paper's public recipe (4 residual blocks of width 4x, dropout 0.6,
batches of 20,480 mixed pairs, 500 epochs) was made for millions of pairs on
a GPU.  Most users have a few hundred to tens of thousands: for them narrower
adapters, a smaller shared space, small batches and more epochs do better and
run in minutes on a CPU.  The rules below were chosen on validation splits of
real paired data (OpenMoji images and names, UCI mfeat views; see the docs'
small-data page and ``benchmarks/small_data_recipe.py``).
"""

import numbers

#: The FuseMix paper's public training recipe (Vouitsis et al., CVPR 2024),
#: exactly: see :meth:`FuseMixAligner.paper_params`.
PAPER_PARAMS = {
    "n_components": 512,
    "n_layers": 4,
    "expansion": 4,
    "dropout": 0.6,
    "alpha": 1.0,
    "temperature": 0.07,
    "learn_temperature": True,
    "batch_size": 20480,
    "max_epochs": 500,
    "learning_rate": 1e-3,
    "weight_decay": 0.1,
    "warmup_steps": 100,
    "standardize": False,
    "cca_weight": 0.0,
    "anchor_weight": 0.0,
    "csls_neighbors": 0,
}

#: Weight of the CCA similarity in the cosine of the small-data recipe: the
#: embeddings join the adapters' (weight 0.7) and those of a regularised CCA
#: fitted on the same pairs (weight 0.3).  On the validation splits of seven
#: pairings (OpenMoji, three mfeat view pairs, spoken OpenMoji names, and 800
#: pairs of each) it gained +0.001 to +0.022 mean R@1 on six and lost 0.009
#: on one (mfeat zer-pix, where CCA is far behind); 0.5 gained more where
#: CCA is as good as FuseMix (speech) but lost 0.023 on zer-pix.
CCA_WEIGHT = 0.3

#: Weight of the anchor similarity in the cosine of the small-data recipe:
#: ASIF's relative representation (Norelli et al., NeurIPS 2023) computed in
#: the adapters' and CCA's joined space, against that space's embeddings of
#: the training pairs (the adapters keep 0.4, the CCA 0.3).  Each embedding
#: is described by its similarities to its nearest training pairs, so a query
#: and an item match when their neighbours are the same pairs.  On the validation splits
#: of the seven pairings it gained +0.000 to +0.027 mean R@1 over the
#: adapters and CCA alone (mean +0.013; most on mfeat pix-fou and speech),
#: and lost on none, measured in the adapters' space alone; measured beside
#: the CCA (where the hubness correction measures its neighbours) they
#: gained +0.004 more, +0.000 to +0.011 per pairing.
ANCHOR_WEIGHT = 0.3

#: At most this many training pairs become anchors (drawn at random when
#: there are more; the anchor part of an embedding is as wide as there are
#: anchors), and "auto" joins anchors only up to this many pairs: on the
#: validation splits a random part of the training pairs did worse than all
#: of them (OpenMoji, 2,560 pairs: +0.008 with all, +0.001 with 2,048 and
#: -0.027 with 1,024, against no anchors).
MAX_ANCHORS = 8192

#: Neighbours k of the hubness correction of the small-data recipe: CSLS
#: (cross-domain similarity local scaling; Conneau et al., "Word
#: translation without parallel data", ICLR 2018) with its published k = 10,
#: the training pairs (the anchors' rows) as the reference.  On the
#: validation splits of the seven pairings, over the joined embeddings, it
#: gained +0.002 to +0.018 mean R@1 (mean +0.010) and lost on none; k = 5,
#: 20 and 50 and a stronger or weaker correction did no better.
CSLS_NEIGHBORS = 10

#: The small-data recipe (up to :data:`SMALL_DATA_LIMIT` pairs), chosen on
#: validation splits of OpenMoji and UCI mfeat (256-d space, dropout 0.3,
#: alpha 0.5, 200 epochs of batches of 256), with two blocks of width 2x,
#: which beat one block of width 1x on the held-out pairs of both data sets.
SMALL_DATA_RECIPE = {
    "n_components": 256,
    "n_layers": 2,
    "expansion": 2,
    "dropout": 0.3,
    "alpha": 0.5,
    "batch_size": 256,
    "max_epochs": 200,
    "learning_rate": 1e-3,
    "weight_decay": 0.1,
    "cca_weight": CCA_WEIGHT,
    "anchor_weight": ANCHOR_WEIGHT,
    "csls_neighbors": CSLS_NEIGHBORS,
}

#: Latents wider than this get residual blocks of width 1x (not 2x) with the
#: small-data recipe: the cost of a block grows with the square of the width.
WIDE = 640

#: Parameters that accept ``"auto"``.
AUTO_PARAMS = (
    "n_components",
    "n_layers",
    "expansion",
    "dropout",
    "alpha",
    "batch_size",
    "max_epochs",
    "cca_weight",
    "anchor_weight",
    "csls_neighbors",
)

#: Up to this many training pairs the small-data recipe applies; above it,
#: the paper's architecture with batches that grow with the data.
SMALL_DATA_LIMIT = 50_000


def auto_params(n_samples, n_features, n_features_y):
    """The values ``"auto"`` resolves to for a fit on ``n_samples`` pairs of
    latents ``n_features`` and ``n_features_y`` wide.

    Parameters
    ----------
    n_samples : int
        Training pairs (after any validation hold-out).
    n_features, n_features_y : int
        Widths of the two latent matrices.

    Returns
    -------
    params : dict
        A value for each name of :data:`AUTO_PARAMS`.

    Examples
    --------
    >>> from skfusemix._recipe import auto_params
    >>> p = auto_params(1000, 1280, 384)
    >>> p["n_layers"], p["expansion"], p["batch_size"], p["max_epochs"]
    (2, 1, 125, 200)
    >>> auto_params(5000, 1280, 384)["max_epochs"]
    128
    >>> auto_params(1000, 240, 76)["expansion"]
    2
    >>> auto_params(200_000, 1536, 1024)["batch_size"]
    781
    """
    if n_samples <= SMALL_DATA_LIMIT:
        recipe = {name: SMALL_DATA_RECIPE[name] for name in AUTO_PARAMS}
        # Wide latents (a 1,280-d image model) cost the square of their width
        # per block: blocks of width 1x for them (two blocks of 2x doubled
        # the fit; see benchmarks/bench_default_fit.py)
        if max(n_features, n_features_y) > WIDE:
            recipe["expansion"] = 1
        # 200 epochs up to 3,200 pairs, then a constant number of pair visits
        # (fewer epochs of more steps each), at least 50 epochs.  80% of the
        # epochs was level with all of them on the OpenMoji and speech
        # validation splits (2,560 pairs: 0.431 and 0.615 mean R@1 against
        # 0.431 and 0.616), so the budget is 640,000 visits, not 800,000
        recipe["max_epochs"] = min(recipe["max_epochs"], max(50, 640_000 // n_samples))
        # never wider than the inputs: a 240-d and a 76-d view get a 240-d space
        recipe["n_components"] = min(
            recipe["n_components"], max(n_features, n_features_y)
        )
        # anchors and the hubness correction only when every training pair
        # can be one of their reference pairs
        if n_samples > MAX_ANCHORS:
            recipe["anchor_weight"] = 0.0
            recipe["csls_neighbors"] = 0
        # at least four mixing steps (of 2 x batch_size rows) an epoch
        recipe["batch_size"] = max(1, min(recipe["batch_size"], n_samples // 8))
        return recipe
    return {
        "n_components": 512,
        "n_layers": 4,
        "expansion": 4,
        "dropout": 0.6,
        "alpha": 1.0,
        # 128 mixing steps an epoch, up to the paper's 20,480 (at ~5M pairs)
        "batch_size": min(20480, max(256, n_samples // 256)),
        "max_epochs": 100,
        "cca_weight": 0.0,
        "anchor_weight": 0.0,
        "csls_neighbors": 0,
    }


def check_n_layers(n_layers):
    """``(n_layers_x, n_layers_y)`` from an int or a pair of ints; a
    ValueError for anything else."""
    pair = (n_layers, n_layers) if isinstance(n_layers, numbers.Integral) else n_layers
    if (
        not isinstance(pair, tuple | list)
        or len(pair) != 2
        or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0
            for v in pair
        )
    ):
        raise ValueError(
            "n_layers must be a non-negative int or a pair (n_layers_x, n_layers_y) of "
            f"them, got {n_layers!r}."
        )
    return int(pair[0]), int(pair[1])
