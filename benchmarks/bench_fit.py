"""Fit throughput of FuseMixAligner against plain PyTorch loops, as ratios.

Four ways to run the same FuseMix training (same adapters, loss, optimiser,
batch size and number of steps) on the same synthetic latents:

* ``compute-only``: one pre-gathered batch reused every step: the cost of the
  model alone, the floor any loop pays;
* ``FuseMixAligner.fit``: the library, including input validation, the copy
  to the device and the epoch bookkeeping;
* ``tensor-gather loop``: a hand-written loop that indexes one tensor per step;
* ``DataLoader loop``: ``TensorDataset`` + ``DataLoader(shuffle=True)`` with
  default collation, the usual PyTorch way (the public FuseMix code goes
  further and stores each row as its own tensor in a dict).

Run ``python benchmarks/bench_fit.py`` (``--help`` for sizes).  Everything is
timed in the same process, so compare the ratios, not the absolute numbers.
"""

import argparse
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from skfusemix import FuseMixAligner
from skfusemix.engine._loop import build_optimizer, make_step
from skfusemix.engine.losses import SymmetricInfoNCE
from skfusemix.engine.mixing import fusemix
from skfusemix.engine.nn import Adapter, count_flops_per_row


def _model(args, device):
    torch.manual_seed(0)
    kw = {"n_layers": args.n_layers, "expansion": args.expansion, "dropout": 0.1}
    hx = Adapter(args.d_x, args.n_components, **kw).to(device)
    hy = Adapter(args.d_y, args.n_components, **kw).to(device)
    loss_fn = SymmetricInfoNCE().to(device)
    opt = build_optimizer([hx, hy, loss_fn], 1e-3, 0.1, device)
    return hx, hy, loss_fn, opt, make_step(hx, hy, loss_fn, opt)


def _step(model, zx, zy, lam):
    """The library's own training step on a FuseMix-mixed batch."""
    return model[-1](*fusemix(zx, zy, lam))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def compute_only(args, Zx, Zy, device):
    model = _model(args, device)
    rows = 2 * args.batch_size
    zx, zy = Zx[:rows].to(device), Zy[:rows].to(device)
    lam = torch.tensor(0.5, device=device)
    _step(model, zx, zy, lam)  # warm-up
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        _step(model, zx, zy, lam)
    _sync(device)
    return time.perf_counter() - start


def tensor_gather_loop(args, Zx, Zy, device):
    model = _model(args, device)
    Zx_d, Zy_d = Zx.to(device), Zy.to(device)
    rows = 2 * args.batch_size
    rng = np.random.RandomState(0)
    _sync(device)
    start = time.perf_counter()
    done = 0
    while done < args.steps:
        order = torch.randperm(len(Zx_d), device=device)
        for i in range(len(Zx_d) // rows):
            if done == args.steps:
                break
            idx = order[i * rows : (i + 1) * rows]
            lam = float(rng.beta(1.0, 1.0))
            _step(model, Zx_d[idx], Zy_d[idx], lam)
            done += 1
    _sync(device)
    return time.perf_counter() - start


def dataloader_loop(args, Zx, Zy, device):
    model = _model(args, device)
    rows = 2 * args.batch_size
    loader = DataLoader(
        TensorDataset(Zx, Zy), batch_size=rows, shuffle=True, drop_last=True
    )
    rng = np.random.RandomState(0)
    _sync(device)
    start = time.perf_counter()
    done = 0
    while done < args.steps:
        for zx, zy in loader:
            if done == args.steps:
                break
            zx, zy = zx.to(device, non_blocking=True), zy.to(device, non_blocking=True)
            _step(model, zx, zy, float(rng.beta(1.0, 1.0)))
            done += 1
    _sync(device)
    return time.perf_counter() - start


def library_fit(args, Zx_np, Zy_np, device):
    steps_per_epoch = len(Zx_np) // (2 * args.batch_size)
    epochs = max(1, args.steps // steps_per_epoch)
    aligner = FuseMixAligner(
        n_components=args.n_components,
        n_layers=args.n_layers,
        expansion=args.expansion,
        dropout=0.1,
        batch_size=args.batch_size,
        max_epochs=epochs,
        device=device,
        random_state=0,
    )
    start = time.perf_counter()
    aligner.fit(Zx_np, Zy_np)
    _sync(device)
    return time.perf_counter() - start, aligner.t_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16384, help="number of pairs")
    parser.add_argument("--d-x", type=int, default=256)
    parser.add_argument("--d-y", type=int, default=192)
    parser.add_argument("--n-components", type=int, default=128)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--expansion", type=int, default=4)
    parser.add_argument(
        "--batch-size", type=int, default=512, help="mixed pairs per step"
    )
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )

    rng = np.random.RandomState(0)
    Zx_np = rng.normal(size=(args.n, args.d_x)).astype(np.float32)
    Zy_np = rng.normal(size=(args.n, args.d_y)).astype(np.float32)
    Zx, Zy = torch.from_numpy(Zx_np), torch.from_numpy(Zy_np)
    args.steps -= args.steps % (args.n // (2 * args.batch_size)) or 0

    flops = (
        3
        * args.batch_size
        * sum(
            count_flops_per_row(
                Adapter(d, args.n_components, args.n_layers, args.expansion)
            )
            for d in (args.d_x, args.d_y)
        )
    )
    print(
        f"device={device}  torch threads={torch.get_num_threads()}  n={args.n}  "
        f"d_x={args.d_x} d_y={args.d_y}  n_layers={args.n_layers}  batch={args.batch_size}  "
        f"steps={args.steps}  ~{flops / 1e9:.1f} GFLOP/step"
    )

    loops = [
        ("compute-only", lambda: compute_only(args, Zx, Zy, device)),
        ("FuseMixAligner.fit", lambda: library_fit(args, Zx_np, Zy_np, device)[0]),
        ("tensor-gather loop", lambda: tensor_gather_loop(args, Zx, Zy, device)),
        ("DataLoader loop", lambda: dataloader_loop(args, Zx, Zy, device)),
    ]
    # Round-robin repeats, best of each: background load hits every loop alike.
    results = {name: float("inf") for name, _ in loops}
    for _ in range(args.repeats):
        for name, fn in loops:
            results[name] = min(results[name], fn())
    base = results["FuseMixAligner.fit"]
    print(f"{'loop':<22}{'seconds':>9}{'pairs/s':>12}{'GFLOP/s':>10}{'time / fit':>12}")
    for name, seconds in results.items():
        pairs = args.steps * args.batch_size / seconds
        gflops = args.steps * flops / seconds / 1e9
        print(
            f"{name:<22}{seconds:>9.2f}{pairs:>12,.0f}{gflops:>10.1f}{seconds / base:>12.2f}"
        )


if __name__ == "__main__":
    main()
