"""Does training on ``k`` selected pairs beat training on ``k`` random pairs?

For each data set and seed, one group-aware split holds out 20% of the groups
as test pairs; the other 80% is the pool.  From the pool, ``k`` pairs are
taken at random, by greedy k-center and by the greedy k-DPP of
:func:`skfusemix.selection.select_pairs` (the selection sees the latents
only, never which pairs are test pairs).  On each set of ``k`` pairs, a
StandardScaler per modality is fitted, then

* FuseMix with the small-data recipe, ``FuseMixAligner.small_data_params(k)``
  (``--epochs`` overrides its 200 epochs to fit the CPU budget), and
* ``CCAAligner()`` with its defaults,

and both are scored by mean R@1 (both directions) on the same held-out pairs.

Data: UCI mfeat (pixels vs Fourier coefficients, and profile correlations vs
Karhunen-Loeve coefficients) and the OpenMoji demo latents (EfficientNet-Lite0
images vs MiniLM names, grouped by emoji), the latter only when its encoder
cache exists (``--data openmoji`` encodes it otherwise, which takes minutes).

Run::

    python benchmarks/bench_selection.py --epochs 50 --json benchmarks/RESULTS_selection.json

``RESULTS_selection.json`` was made so, with 50 FuseMix epochs instead of the
recipe's 200 (CPU budget), one torch thread on 2 shared cores: mfeat 5
minutes for both view pairs, OpenMoji 16 minutes.  Selecting 1,000 of the
3,201 OpenMoji pool pairs took 7 s (k-center) and 13 s (DPP).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import GroupShuffleSplit
from sklearn.preprocessing import StandardScaler

from skfusemix import CCAAligner, FuseMixAligner
from skfusemix.selection import select_pairs

SELECTIONS = ("random", "kcenter", "dpp")


def load(name):
    if name == "openmoji":
        from skfusemix.demo import encode_openmoji

        Zx, Zy, data = encode_openmoji()
        return Zx, Zy, np.asarray(data.groups)
    from skfusemix.datasets import load_mfeat

    view_x, view_y = name.split("-")[1:]
    Zx, Zy = load_mfeat(view_x, view_y, return_X_y=True)
    return Zx, Zy, np.arange(len(Zx))


def openmoji_cached():
    from skfusemix.datasets import get_data_home

    cache = get_data_home() / "encoder-cache"
    return cache.is_dir() and any(p.is_file() for p in cache.rglob("*"))


def choose(kind, Xp, yp, k, seed):
    if kind == "random":
        return np.random.default_rng(seed).choice(len(Xp), size=k, replace=False)
    return select_pairs(Xp, yp, n_select=k, method=kind, random_state=seed)


def evaluate(method, Xtr, ytr, Xte, yte):
    sx, sy = StandardScaler().fit(Xtr), StandardScaler().fit(ytr)
    method.fit(sx.transform(Xtr), sy.transform(ytr))
    return method.score(sx.transform(Xte), sy.transform(yte))


def run(name, ks, seeds, epochs, rows, out):
    X, y, groups = load(name)
    for seed in seeds:
        split = GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=seed)
        pool, test = next(split.split(X, groups=groups))
        Xp, yp = X[pool], y[pool]
        for k in ks:
            for kind in SELECTIONS:
                start = time.perf_counter()
                chosen = choose(kind, Xp, yp, k, seed)
                select_s = time.perf_counter() - start
                params = FuseMixAligner.small_data_params(n_samples=k)
                if epochs is not None:
                    params["max_epochs"] = epochs
                methods = {
                    "FuseMix": FuseMixAligner(**params, random_state=seed),
                    "CCA": CCAAligner(),
                }
                for method, est in methods.items():
                    start = time.perf_counter()
                    score = evaluate(est, Xp[chosen], yp[chosen], X[test], y[test])
                    rows.append(
                        dict(
                            data=name,
                            seed=seed,
                            k=k,
                            selection=kind,
                            method=method,
                            mean_r1=score,
                            n_pool=len(pool),
                            n_test=len(test),
                            select_s=select_s,
                            fit_s=time.perf_counter() - start,
                            epochs=params["max_epochs"],
                        )
                    )
                    print(
                        f"{name:14s} seed {seed} k {k:5d} {kind:8s} {method:8s} "
                        f"mean R@1 {score:.3f}",
                        flush=True,
                    )
            if out:
                Path(out).write_text(json.dumps(rows, indent=1, default=float))


def report(rows):
    print(
        "\nmean R@1 on held-out pairs, mean (sd) over seeds; "
        "delta = selection - random, per seed then averaged"
    )
    keys = sorted({(r["data"], r["method"], r["k"]) for r in rows})
    print(
        f"{'data':14s} {'method':8s} {'k':>5s}  "
        + "".join(f"{s:>16s}" for s in SELECTIONS)
        + f"{'d kcenter':>12s}{'d dpp':>10s}"
    )
    for data, method, k in keys:
        sel = {
            s: {
                r["seed"]: r["mean_r1"]
                for r in rows
                if (r["data"], r["method"], r["k"], r["selection"])
                == (data, method, k, s)
            }
            for s in SELECTIONS
        }
        cells = "".join(
            f"{np.mean(list(v.values())):>9.3f} ({np.std(list(v.values())):.3f})"
            for v in sel.values()
        )
        deltas = [
            np.mean([sel[s][seed] - sel["random"][seed] for seed in sel["random"]])
            for s in ("kcenter", "dpp")
        ]
        print(
            f"{data:14s} {method:8s} {k:>5d}  {cells}"
            f"{deltas[0]:>+12.3f}{deltas[1]:>+10.3f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", nargs="+", default=["mfeat-pix-fou", "mfeat-fac-kar", "openmoji"]
    )
    parser.add_argument("--k", nargs="+", type=int, default=[250, 500, 1000])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="FuseMix epochs (default: the recipe's 200)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the rows to this file as they come")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.data:
        if name == "openmoji" and not openmoji_cached():
            print(
                "openmoji: no encoder cache under the data home, skipped "
                "(encoding takes minutes; run the demo once)"
            )
            continue
        run(name, args.k, args.seeds, args.epochs, rows, args.json)
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
