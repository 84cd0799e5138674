"""Wall time of a default fit: ``FuseMixAligner().fit`` on 5,000 pairs of
1,280-d and 384-d latents (an EfficientNet image model and a MiniLM text
model), the size the small-data defaults are made for; the target is at most
3 minutes on 2 CPU cores.  It also times the CCA and the anchors that the
defaults join to the embeddings, fitted alone.

Run ``python benchmarks/bench_default_fit.py [--threads 2] [--n 5000]``.
"""

import argparse
import time

import numpy as np
import torch

from skfusemix import CCAAligner, FuseMixAligner


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--d-x", type=int, default=1280)
    parser.add_argument("--d-y", type=int, default=384)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((args.n, 64), dtype=np.float32)
    Zx = shared @ rng.standard_normal((64, args.d_x), dtype=np.float32)
    Zy = shared @ rng.standard_normal((64, args.d_y), dtype=np.float32)
    Zx += rng.standard_normal(Zx.shape, dtype=np.float32)
    Zy += rng.standard_normal(Zy.shape, dtype=np.float32)
    start = time.perf_counter()
    aligner = FuseMixAligner(random_state=0).fit(Zx, Zy)
    took = time.perf_counter() - start
    print(
        f"FuseMixAligner().fit on {args.n:,} pairs ({args.d_x}-d, {args.d_y}-d), "
        f"{args.threads} threads: {took:.1f} s  (n_layers_={aligner.n_layers_}, "
        f"expansion_={aligner.expansion_}, batch_size_={aligner.batch_size_}, "
        f"max_epochs_={aligner.max_epochs_}, {aligner.t_} steps)"
    )
    # the part of it spent on the joined CCA (cca_weight), fitted alone
    start = time.perf_counter()
    CCAAligner(n_components=aligner.cca_.n_components).fit(Zx, Zy)
    print(f"  of which the joined CCA: about {time.perf_counter() - start:.1f} s")
    # and the anchors (anchor_weight) and the hubness correction's
    # references (csls_neighbors): the adapters' embeddings of the training
    # pairs, the ASIF fit on them and their CCA-joined space
    start = time.perf_counter()
    aligner._references((Zx, Zy), aligner.adapter_x_, aligner.adapter_y_)
    print(
        "  of which the anchors and the hubness correction's references: about "
        f"{time.perf_counter() - start:.1f} s"
    )
    # and one transform of the 5,000 training rows, for scale
    start = time.perf_counter()
    aligner.transform(Zx)
    print(f"transform of {args.n:,} rows of X: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
