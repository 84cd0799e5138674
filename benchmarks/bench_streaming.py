"""Streaming fit against the in-memory fit on the same memmapped latents.

Writes synthetic paired latents to ``.npy`` files, then fits
``FuseMixAligner`` on the memmaps twice, each in a fresh subprocess: once
with no budget (the latents are copied to the device: the in-memory path)
and once with ``max_memory`` set to a fraction of the data (the streaming
path).  For each it prints the training throughput (pairs/s over the epochs
after the first), the growth of the peak resident memory during ``fit``
(the kernel's high-water mark, reset just before the fit) and, for the
streamed fit, that growth relative to the budget.  The ratio of the two
throughputs is the figure of merit: the same machine, data and model in one
run.  Small adapters make it a worst case for streaming (little compute to
hide the reads behind).

Run ``python benchmarks/bench_streaming.py`` (``--help`` for sizes);
``--smoke`` runs a tiny configuration in seconds.  Linux only (``/proc``).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

_CHILD = """
import json, os, sys, time
import numpy as np, torch
from skfusemix import FuseMixAligner
torch.set_num_threads({threads})
X = np.load({x!r}, mmap_mode="r"); Y = np.load({y!r}, mmap_mode="r")
kw = {kw!r}
FuseMixAligner(**dict(kw, max_epochs=1)).fit(X[:4096], Y[:4096])  # warm up


def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024


with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
start = time.perf_counter()
aligner = FuseMixAligner(**kw, max_memory={budget}).fit(X, Y)
wall = time.perf_counter() - start
times = aligner.history_["time"]
steps = aligner.t_ // len(times)
pairs = steps * aligner.batch_size_
print(json.dumps({{
    "path": aligner.data_path_, "wall": wall,
    "pairs_per_s": pairs * (len(times) - 1) / (times[-1] - times[0]),
    "growth": status("VmHWM") - before, "loss": aligner.history_["loss"][-1],
}}))
"""


def _write(path, n, d, seed):
    import numpy as np

    out = np.lib.format.open_memmap(path, "w+", np.float32, (n, d))
    rng = np.random.default_rng(seed)
    for i in range(0, n, 65536):
        out[i : i + 65536] = rng.standard_normal((min(65536, n - i), d), np.float32)
    out.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500_000, help="pairs")
    parser.add_argument("--dx", type=int, default=256)
    parser.add_argument("--dy", type=int, default=128)
    parser.add_argument(
        "--budget-fraction",
        type=float,
        default=0.25,
        help="max_memory of the streamed fit, as a fraction of the data",
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--n-components", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where to write the latents")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.dx, args.dy, args.epochs, args.batch_size = 100_000, 32, 16, 2, 256
        args.n_components = 16

    directory = args.dir or tempfile.mkdtemp(prefix="skfusemix-bench-")
    x, y = os.path.join(directory, "x.npy"), os.path.join(directory, "y.npy")
    _write(x, args.n, args.dx, 0)
    _write(y, args.n, args.dy, 1)
    data = 4 * args.n * (args.dx + args.dy)
    budget = int(args.budget_fraction * data)
    kw = dict(
        n_components=args.n_components,
        n_layers=1,
        expansion=2,
        dropout=0.1,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        random_state=0,
        device="cpu",
    )
    results = {}
    for name, limit in (("in-memory", None), ("streamed", budget)):
        script = _CHILD.format(threads=args.threads, x=x, y=y, kw=kw, budget=limit)
        run = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True
        )
        if run.returncode:
            sys.exit(f"the {name} fit failed:\n{run.stderr.strip().splitlines()[-1]}")
        results[name] = json.loads(run.stdout.strip().splitlines()[-1])

    mib = 2**20
    print(
        f"{args.n:,} pairs, {args.dx}+{args.dy}-d float32 = {data / mib:,.0f} MiB on "
        f"disk; budget of the streamed fit {budget / mib:,.0f} MiB; "
        f"{args.threads} threads; batch {args.batch_size}, {args.epochs} epochs"
    )
    print(f"{'fit':<10} {'path':<7} {'pairs/s':>10} {'peak growth':>12} {'wall':>7}")
    for name, r in results.items():
        print(
            f"{name:<10} {r['path']:<7} {r['pairs_per_s']:>10,.0f} "
            f"{r['growth'] / mib:>8,.0f} MiB {r['wall']:>6.1f}s"
        )
    ratio = results["streamed"]["pairs_per_s"] / results["in-memory"]["pairs_per_s"]
    print(f"streamed / in-memory throughput: {ratio:.2f}")
    print(
        f"streamed peak growth / budget: {results['streamed']['growth'] / budget:.2f}; "
        f"/ data: {results['streamed']['growth'] / data:.2f}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(results, data=data, budget=budget, ratio=ratio), f, indent=1)
    if args.dir is None:
        for path in (x, y):
            os.remove(path)
        os.rmdir(directory)


if __name__ == "__main__":
    main()
