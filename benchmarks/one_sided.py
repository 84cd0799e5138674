"""One-sided alignment (``fixed_y=True``) against the two-sided aligner, on
the same training pairs of real data, at several training sizes.

Both use their defaults otherwise.  Each data set is split by items (80% to
train, 20% held out, as in ``defaults_vs_baselines.py``); the training part
is cut to the first ``n`` items of a seeded shuffle for each size.  Scores on
the held-out pairs: recall@1 x -> y (query the y index with x, the
one-sided use), y -> x, and their mean (``score``).

Data: ``openmoji`` (EfficientNet-Lite0 image latents aligned INTO the
all-MiniLM-L6-v2 text space: the text index is the text encoder's own
vectors), and ``mfeat-pix-fou`` (pixel view into the Fourier view).

Run::

    python benchmarks/one_sided.py --sizes 500 1000 all --seeds 0 1 2 \\
        --json benchmarks/RESULTS_one_sided.json
"""

import argparse
import json
import time

import numpy as np
import torch
from defaults_vs_baselines import load, split, subset

from skfusemix import FuseMixAligner, retrieval_report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=["openmoji", "mfeat-pix-fou"])
    parser.add_argument("--sizes", nargs="+", default=["500", "1000", "all"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name in args.data:
        Zx, Zy, groups = load(name)
        for seed in args.seeds:
            train, test = split(groups, seed)
            for size in args.sizes:
                rows_train = subset(groups, train, size, seed)
                for method, params in (
                    ("two-sided", {}),
                    ("one-sided", {"fixed_y": True}),
                ):
                    start = time.perf_counter()
                    aligner = FuseMixAligner(**params, random_state=seed).fit(
                        Zx[rows_train], Zy[rows_train]
                    )
                    took = time.perf_counter() - start
                    report = retrieval_report(
                        aligner.transform(Zx[test]),
                        aligner.transform_y(Zy[test]),
                        groups=groups[test],
                        ks=(1, 10),
                    )
                    row = {
                        "data": name,
                        "seed": seed,
                        "size": size,
                        "n_train": len(rows_train),
                        "method": method,
                        "x2y_R@1": report["x2y_R@1"],
                        "y2x_R@1": report["y2x_R@1"],
                        "x2y_R@10": report["x2y_R@10"],
                        "mean R@1": (report["x2y_R@1"] + report["y2x_R@1"]) / 2,
                        "fit s": took,
                    }
                    rows.append(row)
                    print(
                        f"{name:<14} seed {seed} n={len(rows_train):>5} {method:<10} "
                        f"x->y R@1 {row['x2y_R@1']:.3f}  y->x {row['y2x_R@1']:.3f}  "
                        f"x->y R@10 {row['x2y_R@10']:.3f}  fit {took:6.1f} s",
                        flush=True,
                    )
                    if args.json:
                        with open(args.json, "w") as f:
                            json.dump(rows, f, indent=1)
    print("\nheld-out recall@1 (x->y / y->x), mean over seeds")
    for name in args.data:
        for size in args.sizes:
            cells = []
            for method in ("two-sided", "one-sided"):
                sel = [
                    r
                    for r in rows
                    if r["data"] == name and r["size"] == size and r["method"] == method
                ]
                x2y = np.mean([r["x2y_R@1"] for r in sel])
                y2x = np.mean([r["y2x_R@1"] for r in sel])
                cells.append(f"{method} {x2y:.3f} / {y2x:.3f}")
            n = int(np.mean([r["n_train"] for r in sel]))
            print(f"{name:<14} n~{n:>5}: " + "   ".join(cells))


if __name__ == "__main__":
    main()
