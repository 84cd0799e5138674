"""Data efficiency: held-out recall against the number of training pairs.

``FuseMixAligner()`` with its defaults against four ablations (without the
hubness correction: ``csls_neighbors=0``; without it and the joined
anchors: ``anchor_weight=0`` too; the adapters alone, without the joined
CCA, anchors and correction: ``cca_weight=0, anchor_weight=0,
csls_neighbors=0``; no mixing at the same number of optimizer steps:
``alpha=0`` and half the epochs, every join and the correction kept) and the
training-free aligners (CCA, Procrustes and ASIF tuned on a validation
split, CSA with its defaults), on OpenMoji and UCI mfeat (pixels against
Fourier coefficients), averaged over three group-aware splits (seeds 0, 1,
2).  For every size a
random subset of the training pairs is used; the held-out pairs stay the same
within a seed.  Writes a JSON of all rows and the figure used in the docs.

Run::

    python benchmarks/data_efficiency.py --threads 2 \
        --out docs/images/data_efficiency.png --json rows.json

The rows behind the docs' figure are in ``RESULTS_data_efficiency.json``;
``--plot-only --include RESULTS_data_efficiency.json`` redraws it.  Rows of
earlier definitions of a method, kept there for the docs' comparisons, are
labelled ``before: ...`` and left out of the figure.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from small_data_recipe import CHOSEN, load  # noqa: E402

from skfusemix import (  # noqa: E402
    ASIFAligner,
    CCAAligner,
    CSAAligner,
    FuseMixAligner,
    ProcrustesAligner,
)
from skfusemix._recipe import auto_params  # noqa: E402
from skfusemix.demo import retrieval_learning_curve  # noqa: E402

#: The method whose curve is the headline (drawn solid).
DEFAULTS = "FuseMixAligner()"

#: Label prefix of rows measured with an earlier definition of a method (not
#: drawn).
PREVIOUS = "before: "

SIZES = {"openmoji": [100, 250, 500, 1000, None], "mfeat": [100, 250, 500, 1000, None]}


def methods(name, n_train, prefixes=None):
    """The defaults, their ablations and the training-free aligners for a
    fit on about ``n_train`` pairs (only those whose label starts with one
    of ``prefixes``, when given)."""
    # without mixing a step uses batch_size pairs, not 2 * batch_size: half
    # the epochs is the same number of optimizer steps
    epochs = auto_params(n_train, 1, 1)["max_epochs"]
    chosen = CHOSEN[name]
    every = [
        (DEFAULTS, FuseMixAligner()),
        (
            "same, without the hubness correction (csls_neighbors=0)",
            FuseMixAligner(csls_neighbors=0),
        ),
        (
            "same, without the correction and the anchors (csls_neighbors=0, "
            "anchor_weight=0)",
            FuseMixAligner(csls_neighbors=0, anchor_weight=0),
        ),
        (
            "same, adapters alone (cca_weight=0, anchor_weight=0, csls_neighbors=0)",
            FuseMixAligner(cca_weight=0, anchor_weight=0, csls_neighbors=0),
        ),
        (
            "same, no mixing (alpha=0, equal steps)",
            FuseMixAligner(alpha=0.0, max_epochs=max(1, epochs // 2)),
        ),
        ("CCA (tuned)", CCAAligner(**chosen["CCA"])),
        ("CSA", CSAAligner()),
        ("Procrustes (tuned)", ProcrustesAligner(**chosen["Procrustes"])),
        ("ASIF (tuned)", ASIFAligner(**chosen["ASIF"])),
    ]
    return [
        (label, method)
        for label, method in every
        if prefixes is None or label.startswith(tuple(prefixes))
    ]


def curve_points(rows, method):
    """Training sizes, mean and standard deviation of mean R@1 for one method.

    One point per requested size: "all pairs" differs by a few pairs between
    group splits, so it is placed at the mean number of pairs.
    """
    by_size = {}
    for r in rows:
        if r["method"] == method:
            by_size.setdefault(r.get("size", r["n_train"]), []).append(r)
    points = sorted(
        (float(np.mean([r["n_train"] for r in g])), [r["mean R@1"] for r in g])
        for g in by_size.values()
    )
    sizes = [n for n, _ in points]
    means = [float(np.mean(v)) for _, v in points]
    sds = [float(np.std(v)) for _, v in points]
    return sizes, means, sds


def drawn(rows):
    """The rows the figure draws: all but those of earlier definitions."""
    return [r for r in rows if not r["method"].startswith(PREVIOUS)]


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = drawn(rows)
    names = list(dict.fromkeys(r["data"] for r in rows))
    fig, axes = plt.subplots(
        1,
        len(names),
        figsize=(5.5 * len(names), 5.6),
        squeeze=False,
        layout="constrained",
    )
    for ax, name in zip(axes[0], names):
        data = [r for r in rows if r["data"] == name]
        for method in dict.fromkeys(r["method"] for r in data):
            sizes, means, sds = curve_points(data, method)
            style = (
                "-o"
                if method == DEFAULTS
                else ("--o" if method.startswith("same,") else ":s")
            )
            ax.errorbar(
                sizes, means, yerr=sds, fmt=style, capsize=3, label=method, ms=4
            )
        ax.set_xscale("log")
        ax.set_xlabel("training pairs")
        ax.set_ylabel("held-out mean R@1 (both directions)")
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
    # one legend for all panels, below them (the ablations' labels are long)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8)
    fig.savefig(path, dpi=100)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=["openmoji", "mfeat"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="data_efficiency.png")
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=int,
        default=None,
        help="training sizes (default: 100 250 500 1000 and all)",
    )
    parser.add_argument(
        "--include",
        nargs="*",
        default=[],
        help="JSON rows of earlier runs to add to the figure (e.g. the "
        "'all pairs' rows of small_data_recipe.py --json)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="fit only the methods whose names start with one of these "
        "(e.g. 'FuseMixAligner()' 'same, no mixing'); default: all",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--plot-only",
        action="store_true",
        help="only redraw the figure from the --include rows",
    )
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows = []
    for path in args.include:
        rows += json.loads(Path(path).read_text())
    for name in [] if args.plot_only else args.data:
        Zx, Zy, groups = load(name)
        for size in args.sizes or SIZES[name]:
            n_fit = int(0.8 * len(Zx)) if size is None else size
            part = retrieval_learning_curve(
                methods(name, n_fit, args.methods),
                Zx,
                Zy,
                groups,
                train_sizes=[size],
                n_repeats=args.repeats,
            )
            for row in part:
                row["data"] = name
                row["size"] = "all" if size is None else size
                print(
                    f"{name:9} n={row['n_train']:5d} seed={row['seed']} "
                    f"{row['method']:<30} mean R@1={row['mean R@1']:.3f} "
                    f"rsum={row['rsum']:.2f} fit={row['fit s']:.1f}s",
                    flush=True,
                )
            rows += part
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    plot(rows, args.out)
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
