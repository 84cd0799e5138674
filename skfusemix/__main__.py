"""Command line: ``python -m skfusemix <command>`` (also the ``skfusemix`` script)."""

import argparse
import logging
import sys

__all__ = ["main"]


def _print_table(rows, columns):
    widths = [max(len(str(c)), *(len(_fmt(r[c])) for r in rows)) for c in columns]
    print(
        "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(columns, widths))
        )
    )
    for r in rows:
        print(
            "  ".join(
                _fmt(r[c]).rjust(w) if i else _fmt(r[c]).ljust(w)
                for i, (c, w) in enumerate(zip(columns, widths))
            )
        )


def _print_demo(result, table_columns, zero_shot_columns):
    print(result.description)
    print("\nHeld-out cross-modal retrieval (x = image, y = name):")
    _print_table(result.retrieval, table_columns)
    if any(r.get("cached") for r in result.retrieval):
        print("(fits restored from the previous run's checkpoints; 'fit s' is their "
              "original training time)")
    n = result.zero_shot_n_test
    print(f"\nZero-shot classification of the {n} held-out images into the "
          f"{result.n_classes} Unicode emoji categories, by nearest category name:")
    _print_table(result.zero_shot, zero_shot_columns)
    for path in result.figures:
        print(f"wrote {path}")


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _synthetic_demo(args):

    from . import (
        ASIFAligner,
        CCAAligner,
        FuseMixAligner,
        ProcrustesAligner,
    )
    from .datasets import make_paired_latents
    from .demo import TABLE_COLUMNS, compare_aligners

    n_items, n_captions, n_test = 2000, 5, 400
    Zx, Zy, groups = make_paired_latents(
        n_items, 256, 128, n_components=8, noise=1.0, n_captions=n_captions,
        return_groups=True, random_state=args.seed,
    )  # fmt: skip
    test = groups >= n_items - n_test
    print(
        f"Synthetic paired latents (skfusemix.datasets.make_paired_latents): {n_items} "
        f"'images' x {n_captions} 'captions', d_x=256, d_y=128; training on "
        f"{n_items - n_test} images, retrieval over {n_test} held-out images / "
        f"{n_test * n_captions} captions."
    )
    fast = dict(n_components=64, n_layers=2, dropout=0.1, batch_size=1024, max_epochs=25,
                learning_rate=3e-3, random_state=args.seed, verbose=args.verbose)  # fmt: skip
    methods = [
        ("FuseMix (alpha=1)", FuseMixAligner(alpha=1.0, **fast)),
        ("no mixing (alpha=0)", FuseMixAligner(alpha=0.0, **fast)),
        ("CCA", CCAAligner()),
        ("Procrustes", ProcrustesAligner()),
        ("ASIF", ASIFAligner()),
    ]
    rows = compare_aligners(methods, Zx[~test], Zy[~test], Zx[test], Zy[test])
    _print_table(rows, TABLE_COLUMNS)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="skfusemix",
        description="FuseMix: align frozen unimodal encoders into one space.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")
    demo = sub.add_parser(
        "demo",
        help="end-to-end demo: FuseMix against classical aligners, held-out retrieval",
        description="Encodes OpenMoji emoji images (EfficientNet-Lite0) and their names "
        "(all-MiniLM-L6-v2) once, then fits FuseMix (with and without mixing), CCA, "
        "Procrustes and ASIF and prints held-out retrieval. --synthetic uses synthetic "
        "paired latents with 5 captions per image instead (no extra packages).",
    )
    demo.add_argument(
        "--synthetic", action="store_true", help="synthetic paired latents"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument(
        "-v", "--verbose", action="count", default=0, help="show progress"
    )
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.synthetic:
            return _synthetic_demo(args)
        from .demo import TABLE_COLUMNS, ZERO_SHOT_COLUMNS, run_openmoji_demo

        result = run_openmoji_demo(seed=args.seed, verbose=args.verbose)
        _print_demo(result, TABLE_COLUMNS, ZERO_SHOT_COLUMNS)
        return 0
    except (ValueError, TypeError, ImportError, OSError) as exc:
        print(f"skfusemix {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
