"""Multi-process training with torch.distributed: steps/s with 1 and with N
processes, and the difference between their models.

The script launches itself with ``torchrun`` (``python -m
torch.distributed.run``) once per process count, each process with one
thread and the gloo backend (CPU).  Every process fits the same
``FuseMixAligner`` on the same synthetic latents (same seed, dropout 0); with
N processes each one embeds its 1/N of every global batch, the embeddings are
all-gathered and the loss is the global batch's.  Rank 0 reports the
training steps per second (the fit's own training-loop time, without
imports, data generation and the copy to the device) and saves the embeddings
of the first rows, and the driver prints the speed-up and the largest
absolute difference between the N-process and the 1-process embeddings.

Run ``python benchmarks/bench_ddp.py`` (``--help`` for sizes).  On a GPU
machine, ``--backend nccl --device cuda`` with one process per GPU.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def _params(args):
    return dict(
        n_components=args.n_components,
        n_layers=args.n_layers,
        expansion=args.expansion,
        dropout=0.0,
        alpha=1.0,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        warmup_steps=2,
        random_state=0,
        device=args.device,
    )


def _data(args):
    rng = np.random.RandomState(0)
    shared = rng.normal(size=(args.pairs, 16))
    X = np.tanh(shared @ rng.normal(size=(16, args.d_x))).astype(np.float32)
    Y = np.sin(shared @ rng.normal(size=(16, args.d_y))).astype(np.float32)
    return X, Y


def worker(args):
    """One process of the torchrun job (env:// rendezvous)."""
    import torch
    import torch.distributed as dist

    from skfusemix import FuseMixAligner

    torch.set_num_threads(args.threads)
    dist.init_process_group(args.backend)
    if args.device == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    X, Y = _data(args)
    model = FuseMixAligner(**_params(args)).fit(X, Y)
    seconds = model.history_["time"][-1]
    # the first epoch pays one-off costs (allocations, first collectives)
    per_epoch = np.diff([0.0] + model.history_["time"])
    if dist.get_rank() == 0:
        result = {
            "processes": dist.get_world_size(),
            "steps": model.t_,
            "seconds": seconds,
            "steps_per_s": model.t_ / seconds,
            "steps_per_s_after_first_epoch": (model.t_ - model.t_ // args.epochs)
            / per_epoch[1:].sum(),
            "loss": model.history_["loss"],
        }
        with open(
            os.path.join(args.out, f"result-{result['processes']}.json"), "w"
        ) as f:
            json.dump(result, f)
        np.save(
            os.path.join(args.out, f"embedding-{result['processes']}.npy"),
            model.transform(X[:512]),
        )
    dist.destroy_process_group()


def launch(args, processes, out):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        os.path.abspath(__file__),
        "--worker",
        "--out",
        out,
    ] + [
        f"--{k.replace('_', '-')}={v}"
        for k, v in vars(args).items()
        if k not in ("worker", "out", "processes")
    ]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=path)
    subprocess.run(command, check=True, env=env)
    with open(os.path.join(out, f"result-{processes}.json")) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=16384)
    parser.add_argument("--d-x", type=int, default=768)
    parser.add_argument("--d-y", type=int, default=512)
    parser.add_argument("--n-components", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--expansion", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="per process")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--backend", default="gloo")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    with tempfile.TemporaryDirectory() as out:
        one = launch(args, 1, out)
        many = launch(args, args.processes, out)
        diff = np.abs(
            np.load(os.path.join(out, f"embedding-{args.processes}.npy"))
            - np.load(os.path.join(out, "embedding-1.npy"))
        ).max()
    loss_diff = np.abs(np.subtract(one["loss"], many["loss"])).max()
    print(
        f"{args.pairs:,} pairs, {args.d_x}/{args.d_y}-d, global batch {args.batch_size} "
        f"(mixed from {2 * args.batch_size} rows), {one['steps']} steps, "
        f"{args.threads} thread(s) per process, {args.backend} on {args.device}"
    )
    for r in (one, many):
        print(
            f"{r['processes']} process(es): {r['steps_per_s']:.2f} steps/s "
            f"({r['steps_per_s_after_first_epoch']:.2f} after the first epoch)"
        )
    print(
        f"speed-up {args.processes} vs 1: {many['steps_per_s'] / one['steps_per_s']:.2f}x "
        f"({many['steps_per_s_after_first_epoch'] / one['steps_per_s_after_first_epoch']:.2f}x "
        "after the first epoch)"
    )
    print(
        f"max |embedding difference| {diff:.2e}, max |loss difference| {loss_diff:.2e}"
    )


if __name__ == "__main__":
    main()
