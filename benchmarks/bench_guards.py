"""Cost of the per-epoch divergence guard, as a ratio in one process.

Times ``FuseMixAligner.fit`` as shipped against the same fit with the guard
(finiteness check of loss and weights + copy of the last good weights, one
host sync per epoch) replaced by a no-op, round-robin, best of N.  Small
epochs (few steps) are the worst case for a per-epoch cost.

Run ``python benchmarks/bench_guards.py`` (``--help`` for sizes).
"""

import argparse
import time

import numpy as np
import torch

import skfusemix.engine._loop as training
from skfusemix import FuseMixAligner


class _NoGuard(training.DivergenceGuard):
    def check(self, mean_loss):
        return True

    def snapshot(self):
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(args.n, args.d)).astype(np.float32)
    Y = rng.normal(size=(args.n, args.d)).astype(np.float32)
    kw = dict(
        n_components=128,
        n_layers=2,
        dropout=0.1,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        random_state=0,
        device=args.device,
    )

    def fit():
        start = time.perf_counter()
        aligner = FuseMixAligner(**kw).fit(X, Y)
        if aligner.device_.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, aligner.t_

    guard = training.DivergenceGuard
    best = {"guarded": np.inf, "no guard": np.inf}
    for _ in range(args.repeats):
        training.DivergenceGuard = guard
        best["guarded"] = min(best["guarded"], fit()[0])
        training.DivergenceGuard = _NoGuard
        seconds, steps = fit()
        best["no guard"] = min(best["no guard"], seconds)
    training.DivergenceGuard = guard
    print(
        f"device={kw['device']} threads={torch.get_num_threads()} n={args.n} "
        f"d={args.d} batch={args.batch_size} epochs={args.epochs} "
        f"steps/epoch={steps // args.epochs}"
    )
    for name, seconds in best.items():
        print(f"{name:<10}{seconds:>8.3f} s{seconds / best['no guard']:>8.3f}x")


if __name__ == "__main__":
    main()
