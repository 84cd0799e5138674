"""GPU check: the paper's FuseMix configuration, its throughput against the
card's bf16 peak, and a loop in the public code's style as a ratio.

Trains the paper's configuration (4-layer adapters with expansion 4 on
1536-d and 1024-d latents, 512-d shared space, 20,480 mixed pairs per step,
i.e. 40,960 rows gathered and mixed in halves, dropout as in
``FuseMixAligner``) on synthetic latents kept on the GPU in float16, and
prints one line per loop:

* step time (ms), achieved TFLOP/s and its fraction of the card's dense bf16
  peak (table below, or ``--peak-tflops``);
* peak GPU memory (``torch.cuda.max_memory_allocated`` after a reset, the
  resident latents included);
* the projected time of the paper's recipe, 500 epochs over 5M pairs, at
  ``5M // (2 * batch)`` steps per epoch (the library's convention: with
  mixing an epoch is ``n // (2 * batch_size)`` steps);
* for the public-code-style loop, its step time over ours.

Loops:

``FuseMixAligner.fit``
    The estimator itself (``storage_dtype="float16"`` and ``compile`` when
    it has those parameters), timed from ``history_["time"]``: one epoch is
    ``--steps`` steps, the first epoch (warm-up, compilation) is left out.
``direct loop``
    The same step written out (gather by index, FuseMix with one shared
    lambda, bf16 autocast forward, F.normalize, symmetric InfoNCE, backward,
    fused AdamW), timed with CUDA events and no host sync inside the timed
    steps.  Runs with ``--mode direct``/``both``, or when the estimator
    route fails.
``public-style DataLoader``
    The public FuseMix code's data path: latents as a dict of per-row
    tensors in host RAM, a Dataset returning a dict per row (with the
    public feature processor's ``x + 0 * rand_like(x)``), ``DataLoader``
    with ``shuffle``, default collation, pinned memory, 40,960 rows per
    batch split into halves for mixing, ``.cuda()`` per batch, then the
    same model step as the direct loop (bf16, compiled when ours is: the
    ratio measures the data path only; the public code also trains in
    fp32, which would widen it).  Its dataset is capped at
    ``--baseline-rows`` (default 200,000, about 2 GB of host RAM).

FLOPs are counted analytically (matmuls only, the usual MFU convention):
``3 * [2 * B * (P_x + P_y) + 2 * B^2 * n]`` per step, with
``P = n_layers * 2 * expansion * d^2 + d * n`` the multiply-adds of one
adapter per row, ``B`` mixed pairs per step and ``n`` the shared width;
training = forward + backward = 3x forward.  For the paper's configuration that
is 14.85 TFLOP per step: 40% of a 989 TFLOP/s card is 37.5 ms per step, and
the recipe's 500 x 122 = 61,000 steps then take 0.64 h.

Run on a CUDA machine::

    python benchmarks/bench_gpu.py --json gpu.json
    python benchmarks/bench_gpu.py --mode both --no-compile

``--smoke`` runs the same code paths on CPU, fp32, tiny sizes, in seconds
(``tests/test_bench_gpu.py``).
"""

import argparse
import json
import math
import os
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.dataloader import default_collate

from skfusemix import FuseMixAligner
from skfusemix.engine._loop import build_optimizer, make_step
from skfusemix.engine.losses import SymmetricInfoNCE
from skfusemix.engine.mixing import fusemix
from skfusemix.engine.nn import Adapter

#: Dense bf16 tensor-core peaks (TFLOP/s, no sparsity), matched in order
#: against torch.cuda.get_device_name: more specific names first.
BF16_PEAK_TFLOPS = [
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H200 NVL", 835.0),
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100", 989.0),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A10G", None),  # not published: pass --peak-tflops
    ("A10", 125.0),
    ("4090", 165.0),
]

PAPER = dict(
    d_x=1536,
    d_y=1024,
    n_components=512,
    n_layers=4,
    expansion=4,
    batch_size=20480,
    steps=20,
    epochs=2,
    warmup=3,
    baseline_rows=200_000,
    baseline_steps=8,
    workers="0,4",
)
SMOKE = dict(
    d_x=48,
    d_y=32,
    n_components=16,
    n_layers=4,
    expansion=4,
    batch_size=64,
    steps=4,
    epochs=2,
    warmup=1,
    baseline_rows=1024,
    baseline_steps=3,
    workers="0,2",
)


def adapter_macs_per_row(d, n_components, n_layers, expansion):
    """Multiply-adds of one adapter's Linear layers for one row."""
    return n_layers * 2 * expansion * d * d + d * n_components


def step_flops(cfg):
    """Training FLOPs of one step: 3x the forward matmuls (adapters on the B
    mixed rows, plus the B x B logits)."""
    B, n = cfg["batch_size"], cfg["n_components"]
    p = sum(
        adapter_macs_per_row(d, n, cfg["n_layers"], cfg["expansion"])
        for d in (cfg["d_x"], cfg["d_y"])
    )
    return 3 * (2 * B * p + 2 * B * B * n)


def linear_macs(module):
    return sum(
        m.in_features * m.out_features
        for m in module.modules()
        if isinstance(m, torch.nn.Linear)
    )


def bf16_peak(device, override):
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAK_TFLOPS if key in name), None)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device):
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device):
    if device.type != "cuda":
        return None
    sync(device)
    return torch.cuda.max_memory_allocated(device)


# ---------------------------------------------------------------- our loops
def estimator_loop(cfg, args, Zx, Zy, device, dropout):
    """FuseMixAligner.fit; seconds per step over the epochs after the first."""
    params = FuseMixAligner().get_params()
    extra = {}
    if "storage_dtype" in params:
        extra["storage_dtype"] = args.storage_dtype
    if "compile" in params:
        extra["compile"] = args.compile
    aligner = FuseMixAligner(
        n_components=cfg["n_components"],
        n_layers=cfg["n_layers"],
        expansion=cfg["expansion"],
        dropout=dropout,
        batch_size=cfg["batch_size"],
        max_epochs=1 + cfg["epochs"],
        device=device,
        random_state=0,
        **extra,
    )
    reset_peak(device)
    aligner.fit(Zx, Zy)
    mem = peak_memory(device)
    steps_per_epoch = Zx.shape[0] // (2 * aligner.batch_size_)
    times = np.asarray(aligner.history_["time"], dtype=np.float64)
    step_s = (times[-1] - times[0]) / (steps_per_epoch * (len(times) - 1))
    info = {"params": extra, "data_path": getattr(aligner, "data_path_", None)}
    return step_s, mem, info


def make_model(cfg, device, dropout, compile_):
    torch.manual_seed(0)
    kw = {"expansion": cfg["expansion"], "dropout": dropout}
    hx = Adapter(cfg["d_x"], cfg["n_components"], cfg["n_layers"], **kw).to(device)
    hy = Adapter(cfg["d_y"], cfg["n_components"], cfg["n_layers"], **kw).to(device)
    loss_fn = SymmetricInfoNCE().to(device)
    opt = build_optimizer((hx, hy, loss_fn), 1e-3, 0.1, device)
    if compile_:
        torch._dynamo.reset()  # no cache entries left from the estimator's fit
        fx, fy = torch.compile(hx), torch.compile(hy)
    else:
        fx, fy = hx, hy
    train_step = make_step(fx, fy, loss_fn, opt)

    def step(zx, zy, lam):
        """One FuseMix step on 2B float32 rows (the library's own step);
        returns the loss (on device)."""
        return train_step(*fusemix(zx, zy, lam))

    return step


def index_batches(n, rows, generator, device):
    """Device-side permutations cut into batches, epoch after epoch."""
    while True:
        order = torch.randperm(n, device=device, generator=generator)
        for i in range(n // rows):
            yield order[i * rows : (i + 1) * rows]


def direct_loop(cfg, Zx, Zy, device, step):
    """The library's step written out; seconds per step, no host sync
    between the two CUDA events."""
    rows = 2 * cfg["batch_size"]
    warmup, steps = cfg["warmup"], cfg["steps"]
    generator = torch.Generator(device=device)
    generator.manual_seed(0)
    lambdas = torch.from_numpy(
        np.random.RandomState(0).beta(1.0, 1.0, warmup + steps).astype(np.float32)
    ).to(device)
    batches = index_batches(Zx.shape[0], rows, generator, device)
    total = torch.zeros((), device=device)

    def run(i):
        idx = next(batches)
        return step(Zx[idx].float(), Zy[idx].float(), lambdas[i])

    reset_peak(device)
    for i in range(warmup):  # compilation, cuBLAS heuristics, allocator
        total += run(i)
    sync(device)
    if device.type == "cuda":
        start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
        start.record()
        for i in range(warmup, warmup + steps):
            total += run(i)
        end.record()
        end.synchronize()
        seconds = start.elapsed_time(end) / 1e3
    else:
        t0 = time.perf_counter()
        for i in range(warmup, warmup + steps):
            total += run(i)
        seconds = time.perf_counter() - t0
    assert math.isfinite(float(total)), "the direct loop's loss is not finite"
    return seconds / steps, peak_memory(device)


# ------------------------------------------------- the public code's style
class PerRowPairs(Dataset):
    """Latents as the public code keeps them: ``{str(i): tensor}`` per
    modality, each row its own tensor, a dict per item."""

    def __init__(self, vis_feats, text_feats):
        self.vis_feats, self.text_feats = vis_feats, text_feats

    def __len__(self):
        return len(self.vis_feats)

    def __getitem__(self, index):
        vis, text = self.vis_feats[str(index)], self.text_feats[str(index)]
        # its "feat_train" processor with noise_std=0: x + 0 * uniform noise
        vis = vis + 0.0 * torch.rand_like(vis)
        text = text + 0.0 * torch.rand_like(text)
        return {"vis_embed": vis, "text_embed": text, "instance_id": str(index)}


def public_style_dataset(cfg, rows):
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(rows, cfg["d_x"], generator=gen)
    Y = torch.randn(rows, cfg["d_y"], generator=gen)
    vis = {str(i): X[i].clone() for i in range(rows)}
    text = {str(i): Y[i].clone() for i in range(rows)}
    return PerRowPairs(vis, text)


def public_style_loop(cfg, dataset, num_workers, device, step):
    """Seconds per step of DataLoader + default collate + .to(device) + the
    same step; wall clock, after one warm-up step."""
    loader = DataLoader(
        dataset,
        batch_size=2 * cfg["batch_size"],
        shuffle=True,
        drop_last=True,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=device.type == "cuda",
        collate_fn=default_collate,
    )
    rng = np.random.RandomState(0)

    def batches():
        while True:
            yield from loader

    it = batches()

    def run():
        batch = next(it)
        zx = batch["vis_embed"].to(device, non_blocking=True)
        zy = batch["text_embed"].to(device, non_blocking=True)
        return step(zx, zy, float(rng.beta(1.0, 1.0)))

    run()  # workers start, first batch
    sync(device)
    t0 = time.perf_counter()
    total = torch.zeros((), device=device)
    for _ in range(cfg["baseline_steps"]):
        total += run()
    sync(device)
    seconds = time.perf_counter() - t0
    assert math.isfinite(float(total)), "the public-style loop's loss is not finite"
    it.close()  # the loader's iterator goes, its workers shut down
    return seconds / cfg["baseline_steps"]


# --------------------------------------------------------------- reporting
def figures(step_s, flops, peak, mem, projection):
    tflops = flops / step_s / 1e12
    return {
        "step_time_s": step_s,
        "tflops": tflops,
        "fraction_of_peak": None if peak is None else tflops / peak,
        "peak_memory_bytes": mem,
        "projected_hours": step_s * projection["total_steps"] / 3600,
    }


def print_row(name, fig, ratio=None):
    frac = fig.get("fraction_of_peak")
    mem = fig.get("peak_memory_bytes")
    print(
        f"{name:<30}{1e3 * fig['step_time_s']:>10.2f}{fig['tflops']:>10.3g}"
        f"{'-' if frac is None else f'{100 * frac:.1f}%':>9}"
        f"{'-' if mem is None else f'{mem / 2**30:.1f}':>10}"
        f"{fig['projected_hours']:>10.2f}{'-' if ratio is None else f'{ratio:.1f}x':>9}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CPU, fp32, tiny sizes: the same code paths in seconds",
    )
    parser.add_argument(
        "--mode",
        choices=["auto", "estimator", "direct", "both"],
        default="auto",
        help="our loop: the estimator (auto falls back to the direct "
        "loop if it fails), the direct loop, or both",
    )
    parser.add_argument("--steps", type=int, help="timed steps (= steps per epoch)")
    parser.add_argument("--epochs", type=int, help="timed estimator epochs")
    parser.add_argument("--baseline-steps", type=int)
    parser.add_argument(
        "--baseline-rows", type=int, help="rows of the public-style dataset (host RAM)"
    )
    parser.add_argument("--workers", help="DataLoader num_workers to try, e.g. 0,4")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the adapters (CUDA default)",
    )
    parser.add_argument("--storage-dtype", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--peak-tflops", type=float, help="override the bf16 peak")
    parser.add_argument("--recipe-epochs", type=int, default=500)
    parser.add_argument("--recipe-pairs", type=int, default=5_000_000)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    cfg = dict(SMOKE if args.smoke else PAPER)
    for key in ("steps", "epochs", "baseline_steps", "baseline_rows", "workers"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    workers = [int(w) for w in str(cfg["workers"]).split(",") if w != ""]
    if args.smoke:
        device = torch.device("cpu")
        torch.set_num_threads(1)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        parser.error("no CUDA device: run with --smoke for the CPU check")
    cuda = device.type == "cuda"
    args.compile = cuda if args.compile is None else args.compile
    args.storage_dtype = args.storage_dtype or ("float16" if cuda else "float32")
    dropout = FuseMixAligner.paper_params()["dropout"]
    peak = bf16_peak(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if cuda else "cpu (smoke)"

    flops = step_flops(cfg)
    with torch.device("meta"):
        kw = dict(n_layers=cfg["n_layers"], expansion=cfg["expansion"])
        macs = [
            linear_macs(Adapter(d, cfg["n_components"], **kw))
            for d in (cfg["d_x"], cfg["d_y"])
        ]
    B, n = cfg["batch_size"], cfg["n_components"]
    assert flops == 3 * (2 * B * sum(macs) + 2 * B * B * n), "formula != modules"
    rows_per_step = 2 * B
    projection = {
        "epochs": args.recipe_epochs,
        "pairs": args.recipe_pairs,
        "rows_per_step": rows_per_step,
        "steps_per_epoch": args.recipe_pairs // rows_per_step,
        "total_steps": args.recipe_epochs * (args.recipe_pairs // rows_per_step),
    }

    # Synthetic latents on the device, stored as the library would store them.
    N = rows_per_step * cfg["steps"]
    storage = getattr(torch, args.storage_dtype)
    gen = torch.Generator(device=device).manual_seed(0)
    Zx = torch.randn(N, cfg["d_x"], device=device, dtype=storage, generator=gen)
    Zy = torch.randn(N, cfg["d_y"], device=device, dtype=storage, generator=gen)
    latents_bytes = Zx.nbytes + Zy.nbytes

    print(
        f"device: {name}   bf16 peak: {'unknown' if peak is None else f'{peak:g} TFLOP/s'}"
        f"   torch {torch.__version__}"
    )
    print(
        f"config: d_x={cfg['d_x']} d_y={cfg['d_y']} n_components={n} "
        f"n_layers={cfg['n_layers']} expansion={cfg['expansion']} dropout={dropout} "
        f"batch={B} mixed pairs/step ({rows_per_step} rows gathered) "
        f"latents={N} rows in {args.storage_dtype} ({latents_bytes / 2**30:.2f} GiB) "
        f"compile={args.compile}"
    )
    print(
        f"FLOP/step = 3 * [2*B*(P_x + P_y) + 2*B^2*n], P = n_layers*2*expansion*d^2"
        f" + d*n = 3 * [2*{B}*({macs[0]:,} + {macs[1]:,}) + 2*{B}^2*{n}]"
        f" = {flops / 1e12:.4g} TFLOP (matmuls only)"
    )
    print(
        f"projection: {projection['epochs']} epochs x {projection['pairs']:,} pairs"
        f" = {projection['total_steps']:,} steps of {rows_per_step} rows"
    )

    result = {
        "device": name,
        "smoke": args.smoke,
        "torch": torch.__version__,
        "config": {
            **cfg,
            "dropout": dropout,
            "storage_dtype": args.storage_dtype,
            "compile": args.compile,
            "latent_rows": N,
            "latents_bytes": latents_bytes,
        },
        "flops_per_step": flops,
        "adapter_macs_per_row": macs,
        "flops_formula": "3 * (2*B*(P_x+P_y) + 2*B*B*n), "
        "P = n_layers*2*expansion*d*d + d*n",
        "peak_tflops": peak,
        "projection": projection,
    }
    rows = []
    ours = None
    if args.mode in ("auto", "estimator", "both"):
        try:
            step_s, mem, info = estimator_loop(cfg, args, Zx, Zy, device, dropout)
        except Exception as exc:  # report it, fall back to the direct loop
            if args.mode == "estimator":
                raise
            result["estimator"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(
                f"estimator route failed ({result['estimator']['error']}); "
                "timing the direct loop instead"
            )
        else:
            fig = {**figures(step_s, flops, peak, mem, projection), **info}
            result["estimator"] = ours = fig
            rows.append(("FuseMixAligner.fit", fig))
    step = None
    if args.mode in ("direct", "both") or ours is None:
        step = make_model(cfg, device, dropout, args.compile)
        step_s, mem = direct_loop(cfg, Zx, Zy, device, step)
        fig = figures(step_s, flops, peak, mem, projection)
        result["direct"] = fig
        ours = ours or fig
        rows.append(("direct loop", fig))
    result["ours"] = ours

    result["baseline"] = []
    if not args.no_baseline and workers:
        del Zx, Zy
        if cuda:
            torch.cuda.empty_cache()
        step = step or make_model(cfg, device, dropout, args.compile)
        dataset = public_style_dataset(cfg, cfg["baseline_rows"])
        for w in workers:
            step_s = public_style_loop(cfg, dataset, w, device, step)
            fig = figures(step_s, flops, peak, None, projection)
            fig.update(
                num_workers=w,
                rows=cfg["baseline_rows"],
                ratio_to_ours=step_s / ours["step_time_s"],
            )
            result["baseline"].append(fig)
            rows.append((f"public-style DataLoader w={w}", fig))

    print(
        f"\n{'loop':<30}{'step ms':>10}{'TFLOP/s':>10}{'% peak':>9}{'mem GiB':>10}"
        f"{'proj. h':>10}{'vs ours':>9}"
    )
    for label, fig in rows:
        print_row(label, fig, fig.get("ratio_to_ours"))
    if result["baseline"]:
        print(
            f"(public-style loop: {cfg['baseline_rows']:,} rows in host RAM, "
            f"{cfg['baseline_steps']} timed steps; memory not measured)"
        )
    if cuda:
        print(
            f"(peak memory includes this script's {latents_bytes / 2**30:.2f} GiB of "
            "latents; the estimator holds a copy of its own on top)"
        )
    frac, hours = ours["fraction_of_peak"], ours["projected_hours"]
    result["goal"] = {
        "fraction_of_peak_at_least_0.4": None if frac is None else bool(frac >= 0.4),
        "recipe_under_1h": bool(hours < 1.0),
    }
    verdict = "n/a" if frac is None else ("yes" if frac >= 0.4 else "no")
    print(
        f"goal: >= 40% of bf16 peak: {verdict};  {projection['epochs']} epochs x "
        f"{projection['pairs']:,} pairs under 1 h: {'yes' if hours < 1 else 'no'} "
        f"({hours:.2f} h)"
    )
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=str)
    return result


if __name__ == "__main__":
    main()
