"""How much CCA to join to FuseMix's embeddings (``cca_weight``), on
validation splits only.

For each data set and seed, the training part of the held-out split of
``defaults_vs_baselines.py`` is split again (80/20, seed 100 + seed, as its
``--stage validate``).  One ``FuseMixAligner(cca_weight=0)`` and one
``CCAAligner`` (as many components as the adapters' space) are fitted on the
inner training part; the adapters do not depend on the weight (the CCA draws
no random numbers), so every weight ``w`` is scored from the same two fits:
the joined embeddings ``[sqrt(1 - w) * S, sqrt(w) * C]`` on the validation
pairs, mean recall@1 both ways.

Run::

    python benchmarks/cca_weight.py --data mfeat-pix-fou speech-names --json rows.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from defaults_vs_baselines import DATA, MORE_DATA, load, split, subset  # noqa: E402

from skfusemix import CCAAligner, FuseMixAligner  # noqa: E402
from skfusemix._data import join_weighted, row_groups  # noqa: E402
from skfusemix.metrics import retrieval_report  # noqa: E402

WEIGHTS = [0.0, 0.3, 0.5, 0.7, 1.0]


def mean_r1(Sx, Sy, groups):
    report = retrieval_report(Sx, Sy, groups=groups, ks=(1,))
    return 0.5 * (report["x2y_R@1"] + report["y2x_R@1"])


def run(name, seeds, weights):
    base, _, size = name.partition("@")
    Zx, Zy, groups = load(base)
    rows = []
    for seed in seeds:
        train, _ = split(groups, seed)
        inner, val = split(groups[train], 100 + seed)
        train, val = train[inner], train[val]
        train = subset(groups, train, size or "all", seed)
        start = time.perf_counter()
        fusemix = FuseMixAligner(cca_weight=0, random_state=seed).fit(
            Zx[train], Zy[train]
        )
        took = time.perf_counter() - start
        cca = CCAAligner(
            n_components=min(fusemix.n_components_, Zx.shape[1], Zy.shape[1])
        ).fit(Zx[train], Zy[train])
        S = fusemix.transform(Zx[val]), fusemix.transform_y(Zy[val])
        C = cca.transform(Zx[val]), cca.transform_y(Zy[val])
        item = row_groups(Zx[val])
        for w in weights:
            score = mean_r1(
                join_weighted([S[0], C[0]], [1 - w, w]),
                join_weighted([S[1], C[1]], [1 - w, w]),
                item,
            )
            rows.append(
                {
                    "data": name,
                    "seed": seed,
                    "cca_weight": w,
                    "mean R@1": score,
                    "n_train": len(train),
                    "fit s": took,
                    "stage": "validate",
                }
            )
            print(f"{name:<17} seed {seed}  w={w:<4} mean R@1 {score:.4f}", flush=True)
    return rows


def report(rows):
    names = list(dict.fromkeys(r["data"] for r in rows))
    weights = sorted({r["cca_weight"] for r in rows})
    print(f"\n{'weight':<8}" + "".join(f"{n:>18}" for n in names) + "   mean gain")
    for w in weights:
        cells, gains = [], []
        for n in names:
            mine = [r for r in rows if r["data"] == n and r["cca_weight"] == w]
            zero = [r for r in rows if r["data"] == n and r["cca_weight"] == 0]
            score = np.mean([r["mean R@1"] for r in mine])
            gains.append(score - np.mean([r["mean R@1"] for r in zero]))
            cells.append(f"{score:.3f} ({gains[-1]:+.3f})")
        print(
            f"{w:<8}" + "".join(f"{c:>18}" for c in cells) + f"{np.mean(gains):+11.4f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=DATA, choices=DATA + MORE_DATA)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--weights", type=float, nargs="+", default=WEIGHTS)
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
    rows = []
    for name in args.data:
        rows += run(name, args.seeds, args.weights)
    report(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
