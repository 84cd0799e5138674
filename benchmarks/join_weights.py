"""How much CCA and how much anchor similarity to join to FuseMix's
embeddings (``cca_weight``, ``anchor_weight``), and whether to fold in the
hubness correction (``csls_neighbors``), from one fit per split.

For each data set and seed, the group split of ``defaults_vs_baselines.py``
is used as it is (``--stage test``: train on the training part, score the
held-out pairs) or split again (``--stage validate``, the default: 80/20 of
the training part, seed 100 + seed, as its ``--stage validate``).  One
``FuseMixAligner(cca_weight=0, anchor_weight=0, csls_neighbors=0)`` is
fitted on the training
pairs, one ``CCAAligner`` (as many components as the adapters' space) on
the same pairs, and for each weight pair one ``ASIFAligner`` on the
joined embeddings of all the training pairs (the anchors, as
``anchor_weight="auto"`` uses them).
The adapters do not depend on either weight (neither join draws random
numbers), so every pair of weights ``(c, a)`` is scored from the same fits:
the joined embeddings ``[sqrt(1 - c - a) * S, sqrt(c) * C, sqrt(a) * A]``,
mean recall@1 both ways.  A third value ``k`` (``c,a,k``) folds in the
hubness correction with ``k`` neighbours as ``csls_neighbors=k`` does
(references: the training pairs' ``[sqrt(1 - c - a) * S, sqrt(c) * C]``).
The anchors are measured in that same space, as the library does
(``--anchors-in adapters``: in the adapters' space alone, as before).

``--baseline-csls`` also scores ``CCAAligner()`` (the baseline, its
defaults) without and with the same correction (k = 10, references: its
own embeddings of the training pairs), to show what the correction alone
gives a training-free aligner.

``--cache DIR`` keeps the adapters' embeddings of each split in
``DIR/{stage}-{data}-{seed}.npz`` and reuses them on the next run.

Run::

    python benchmarks/join_weights.py --data mfeat-pix-fou speech-names --json rows.json
    python benchmarks/join_weights.py --stage test --weights 0,0 0.3,0 0.3,0.3
    python benchmarks/join_weights.py --weights 0.3,0.3 0.3,0.3,10 --baseline-csls
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from defaults_vs_baselines import DATA, data_name, load, stage_split  # noqa: E402

from skfusemix import ASIFAligner, CCAAligner, FuseMixAligner  # noqa: E402
from skfusemix._data import join_weighted  # noqa: E402
from skfusemix._hubness import fold_csls, neighbour_similarity  # noqa: E402
from skfusemix.metrics import _mean_r1, paired_report  # noqa: E402

#: (cca_weight, anchor_weight) pairs scored by default.
WEIGHTS = [
    "0,0",
    "0.3,0",
    "0.5,0",
    "0.2,0.3",
    "0.3,0.2",
    "0.3,0.3",
    "0.4,0.3",
    "0.3,0.4",
]


def mean_r1(Sx, Sy, X, y):
    """Mean recall@1 both ways of the embeddings ``Sx``, ``Sy`` of the
    pairs ``(X, y)``, their items counted as ``score()`` counts them."""
    return _mean_r1(paired_report(Sx, Sy, X, y, (1,)))


def adapters_embeddings(Zx, Zy, train, test, seed, cache):
    """The adapters' embeddings of the training and the scored pairs, and the
    fit time (from ``cache`` when it holds them)."""
    if cache is not None and cache.exists():
        saved = np.load(cache)
        if np.array_equal(saved["train"], train) and np.array_equal(
            saved["test"], test
        ):
            return (
                (saved["Tx"], saved["Ty"]),
                (saved["Sx"], saved["Sy"]),
                float(saved["took"]),
            )
    start = time.perf_counter()
    fusemix = FuseMixAligner(
        cca_weight=0, anchor_weight=0, csls_neighbors=0, random_state=seed
    ).fit(Zx[train], Zy[train])
    took = time.perf_counter() - start
    T = fusemix.transform(Zx[train]), fusemix.transform_y(Zy[train])
    S = fusemix.transform(Zx[test]), fusemix.transform_y(Zy[test])
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache,
            train=train,
            test=test,
            Tx=T[0],
            Ty=T[1],
            Sx=S[0],
            Sy=S[1],
            n_components=fusemix.n_components_,
            took=took,
        )
    return T, S, took


def corrected(J, Q, reference, k, side):
    """``J`` with the hubness correction folded in: ``r`` of ``Q`` against
    the other modality's ``reference`` rows (``k`` = 0: ``J`` as it is)."""
    if not k:
        return J
    return fold_csls(J, neighbour_similarity(Q, reference, k), side)


def run(
    name, seeds, weights, stage, cache_dir, baseline_csls=False, anchors_in="joined"
):
    base, _, size = name.partition("@")
    Zx, Zy, groups = load(base)
    rows = []
    for seed in seeds:
        train, test = stage_split(groups, seed, stage, size or "all")
        cache = (
            None
            if cache_dir is None
            else Path(cache_dir) / f"{stage}-{name}-{seed}.npz"
        )
        T, S, took = adapters_embeddings(Zx, Zy, train, test, seed, cache)
        cca = CCAAligner(n_components=min(S[0].shape[1], Zx.shape[1], Zy.shape[1])).fit(
            Zx[train], Zy[train]
        )
        C = cca.transform(Zx[test]), cca.transform_y(Zy[test])
        Ct = cca.transform(Zx[train]), cca.transform_y(Zy[train])
        scored = Zx[test], Zy[test]
        for c, a, k in weights:
            w = [1 - c - a, c, a]
            # where the anchors and the correction measure similarities to the
            # training pairs: the adapters' and CCA's space, no anchor columns
            Q = [join_weighted([S[i], C[i]], w[:2]) for i in (0, 1)]
            R = [join_weighted([T[i], Ct[i]], w[:2]) for i in (0, 1)]
            if anchors_in == "adapters":  # as before format 6
                anchors = ASIFAligner().fit(*T)
                A = anchors.transform(S[0]), anchors.transform_y(S[1])
            else:
                anchors = ASIFAligner().fit(*R)
                A = anchors.transform(Q[0]), anchors.transform_y(Q[1])
            score = mean_r1(
                corrected(join_weighted([S[0], C[0], A[0]], w), Q[0], R[1], k, "x"),
                corrected(join_weighted([S[1], C[1], A[1]], w), Q[1], R[0], k, "y"),
                *scored,
            )
            rows.append(
                {
                    "data": name,
                    "seed": seed,
                    "cca_weight": c,
                    "anchor_weight": a,
                    "csls_neighbors": k,
                    "anchors in": anchors_in,
                    "mean R@1": score,
                    "n_train": len(train),
                    "fit s": took,
                    "stage": stage,
                }
            )
            print(
                f"{name:<17} seed {seed}  c={c:<4} a={a:<4} k={k:<3} "
                f"mean R@1 {score:.4f}",
                flush=True,
            )
        if baseline_csls:
            baseline = CCAAligner().fit(Zx[train], Zy[train])
            B = baseline.transform(Zx[test]), baseline.transform_y(Zy[test])
            Bt = baseline.transform(Zx[train]), baseline.transform_y(Zy[train])
            for k in (0, 10):
                score = mean_r1(
                    corrected(B[0], B[0], Bt[1], k, "x"),
                    corrected(B[1], B[1], Bt[0], k, "y"),
                    *scored,
                )
                rows.append(
                    {
                        "data": name,
                        "seed": seed,
                        "method": "CCAAligner()",
                        "csls_neighbors": k,
                        "mean R@1": score,
                        "n_train": len(train),
                        "stage": stage,
                    }
                )
                print(f"{name:<17} seed {seed}  CCAAligner() k={k:<3} {score:.4f}")
    return rows


def _key(row):
    """``(c, a, k)`` of a FuseMix row, ``("CCA", k)`` of a baseline row."""
    if "method" in row:
        return ("CCA", row.get("csls_neighbors", 0))
    return (
        row["cca_weight"],
        row.get("anchor_weight", 0.0),
        row.get("csls_neighbors", 0),
    )


def report(rows):
    names = list(dict.fromkeys(r["data"] for r in rows))
    keys = sorted({_key(r) for r in rows}, key=str)

    def score(n, key):
        return np.mean(
            [r["mean R@1"] for r in rows if r["data"] == n and _key(r) == key]
        )

    base = (0.0, 0.0, 0)
    has_base = all(any(_key(r) == base for r in rows if r["data"] == n) for n in names)
    print(f"\n{'c, a, k':<14}" + "".join(f"{n:>18}" for n in names) + "   mean gain")
    for key in keys:
        gains = [score(n, key) - score(n, base) if has_base else 0.0 for n in names]
        cells = [f"{score(n, key):.3f} ({g:+.3f})" for n, g in zip(names, gains)]
        print(
            f"{', '.join(str(v) for v in key):<14}"
            + "".join(f"{c:>18}" for c in cells)
            + (f"{np.mean(gains):+11.4f}" if has_base else "")
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=DATA, type=data_name)
    parser.add_argument("--stage", choices=["validate", "test"], default="validate")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument(
        "--weights",
        nargs="+",
        default=WEIGHTS,
        help="cca_weight,anchor_weight[,csls_neighbors] triples",
    )
    parser.add_argument(
        "--baseline-csls",
        action="store_true",
        help="also score CCAAligner() without and with the hubness correction",
    )
    parser.add_argument(
        "--anchors-in",
        choices=["joined", "adapters"],
        default="joined",
        help="the space of the anchors: the adapters' and CCA's (as the library "
        "since save format 6) or the adapters' alone (as before)",
    )
    parser.add_argument("--cache", help="folder keeping the adapters' embeddings")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", help="write all rows to this file")
    parser.add_argument(
        "--report-only", help="print the table of the rows in this JSON file"
    )
    args = parser.parse_args(argv)
    if args.report_only:
        report(json.loads(Path(args.report_only).read_text()))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = args.seeds or ([0, 1] if args.stage == "validate" else [0, 1, 2])
    weights = []
    for w in args.weights:
        c, a, *k = w.split(",")
        weights.append((float(c), float(a), int(k[0]) if k else 0))
    rows = []
    for name in args.data:
        rows += run(
            name,
            seeds,
            weights,
            args.stage,
            args.cache,
            args.baseline_csls,
            args.anchors_in,
        )
    report(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
