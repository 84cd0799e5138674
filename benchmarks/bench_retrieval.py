"""Retrieval evaluation at scale: blocked ranks and top-k against faiss-cpu.

On the same synthetic L2-normalised pairs (``Sy = normalise(Sx + noise)``,
row i of each side one pair) this times, in one process:

(a) ``retrieval_report`` -- the full rank of every query in both directions,
    in ``chunk_size x chunk_size`` blocks;
(b) ``topk_search`` -- the k best rows of ``Sy`` for every row of ``Sx``;
(c) faiss ``IndexFlatIP`` exact inner-product search for the same k, x->y
    (and y->x, to check the report's y->x recall);
(d) optionally (``--old``) the former NumPy implementation, which scored
    ``chunk_size x n`` similarities at a time.

It prints seconds, ratios ours/faiss, the peak RSS growth of each step (the
process's high-water mark reset before each), the similarity memory bound
of the former and the blocked code, and two checks: the fraction of top-k
indices equal to faiss's, and recall@k from our ranks against recall@k
computed from faiss's top-k lists.

faiss is optional and only needed here: ``pip install faiss-cpu``.

Run ``python benchmarks/bench_retrieval.py --threads 2`` (``--smoke`` for a
tiny run, ``--help`` for sizes).
"""

import argparse
import os
import resource
import sys
import time

import numpy as np
import torch

from skfusemix.metrics import retrieval_report, topk_search

OLD_CHUNK = 4096  # the former default: chunk_size queries x n gallery rows


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _measure(fn):
    """Run ``fn()``; return its result, wall seconds and peak RSS growth (MiB)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        before, field = _status_kib("VmRSS"), "VmHWM"
    except OSError:  # no reset: lifetime peak, an upper bound only
        before, field = None, None
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    if field is None:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    else:
        peak_mib = (_status_kib(field) - before) / 1024
    return result, seconds, peak_mib


def _old_ranks(Sx, Sy, chunk_size=OLD_CHUNK):
    """The NumPy ranks before the blocked rewrite (1:1 pairs: item i = row i)."""
    n = len(Sx)
    codes = np.arange(n)
    x2y = np.empty(n, dtype=np.int64)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        sim = Sx[start:stop] @ Sy.T
        positive = codes[None, :] == np.arange(start, stop)[:, None]
        best = np.where(positive, sim, -np.inf).max(axis=1)
        x2y[start:stop] = 1 + ((sim >= best[:, None]) & ~positive).sum(axis=1)
    y2x = np.empty(n, dtype=np.int64)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        sim = Sy[start:stop] @ Sx.T
        target = sim[np.arange(stop - start), codes[start:stop]]
        y2x[start:stop] = (sim >= target[:, None]).sum(axis=1)
    return x2y, y2x


def _import_faiss():
    try:
        import faiss
    except ImportError:
        sys.exit(
            "bench_retrieval.py compares against faiss, which is not installed: "
            "pip install faiss-cpu"
        )
    return faiss


def _faiss_search(faiss, gallery, queries, k):
    index = faiss.IndexFlatIP(gallery.shape[1])
    index.add(gallery)
    return index.search(queries, k)


def _normalise(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="pairs")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="default: the library's"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument(
        "--noise", type=float, default=0.25, help="per-component noise std"
    )
    parser.add_argument("--device", default="cpu", help="for our code; faiss: CPU")
    parser.add_argument("--old", action="store_true", help="also time the old code")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.dim = 3000, 64
    faiss = _import_faiss()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    Sx = _normalise(rng.standard_normal((args.n, args.dim), dtype=np.float32))
    noise = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    Sy = _normalise(Sx + args.noise * noise)
    n, k = args.n, args.k
    pairs = np.arange(n)  # 1:1 pairs: item i is row i
    kw = dict(chunk_size=args.chunk_size, device=args.device)
    load = os.getloadavg()[0]
    print(
        f"n={n} dim={args.dim} k={k} float32 threads={args.threads} "
        f"chunk_size={args.chunk_size or 'default'} device={args.device} "
        f"faiss={faiss.__version__} torch={torch.__version__} "
        f"load average before={load:.2f} on {os.cpu_count()} CPUs"
    )

    rows = []
    report, t_report, m_report = _measure(
        lambda: retrieval_report(Sx, Sy, groups=pairs, ks=(1, k), **kw)
    )
    rows.append(("(a) retrieval_report, both ways", t_report, m_report))
    (scores, indices), t_topk, m_topk = _measure(lambda: topk_search(Sx, Sy, k, **kw))
    rows.append((f"(b) topk_search k={k}, x->y", t_topk, m_topk))
    (f_scores, f_indices), t_faiss, m_faiss = _measure(
        lambda: _faiss_search(faiss, Sy, Sx, k)
    )
    rows.append((f"(c) faiss IndexFlatIP k={k}, x->y", t_faiss, m_faiss))
    (_, f_indices_y), t_faiss_y, m_faiss_y = _measure(
        lambda: _faiss_search(faiss, Sx, Sy, k)
    )
    rows.append((f"(c) faiss IndexFlatIP k={k}, y->x", t_faiss_y, m_faiss_y))
    if args.old:
        (old_x2y, old_y2x), t_old, m_old = _measure(lambda: _old_ranks(Sx, Sy))
        rows.append(("(d) former NumPy ranks, both ways", t_old, m_old))

    print(f"\n{'step':38s} {'seconds':>9s} {'peak RSS +MiB':>14s}")
    for name, seconds, mib in rows:
        print(f"{name:38s} {seconds:9.2f} {mib:14.0f}")
    print(
        f"\nratio topk_search / faiss (x->y):              {t_topk / t_faiss:.2f}\n"
        f"ratio retrieval_report / faiss (x->y + y->x):  "
        f"{t_report / (t_faiss + t_faiss_y):.2f}"
    )
    if args.old:
        print(f"ratio former NumPy ranks / retrieval_report:   {t_old / t_report:.2f}")

    chunk = args.chunk_size or (1024 if args.device == "cpu" else 8192)
    old_rows, chunk = min(OLD_CHUNK, n), min(chunk, n)
    old_bytes = old_rows * n * (4 + 1 + 4)  # sim, positive mask, np.where copy
    new_bytes = chunk * chunk * (4 + 1)  # sim block, comparison mask
    print(
        f"\nsimilarity memory bound: former {old_rows} x {n} x 9 B = "
        f"{old_bytes / 2**20:.0f} MiB (grows with n); blocked {chunk} x {chunk}"
        f" x 5 B = {new_bytes / 2**20:.0f} MiB (independent of n)"
    )

    same = np.mean(indices == f_indices)
    overlap = np.mean(
        [len(set(a) & set(b)) / k for a, b in zip(indices.tolist(), f_indices.tolist())]
    )
    faiss_x2y = np.mean((f_indices == pairs[:, None]).any(axis=1))
    faiss_y2x = np.mean((f_indices_y == pairs[:, None]).any(axis=1))
    print(
        f"\ntop-{k} indices equal to faiss's: {same:.6f} (as sets: {overlap:.6f}); "
        f"max |score - faiss score| = {np.abs(scores - f_scores).max():.2e}\n"
        f"x2y_R@{k}: ours {report[f'x2y_R@{k}']:.6f}  from faiss top-{k} "
        f"{faiss_x2y:.6f}\n"
        f"y2x_R@{k}: ours {report[f'y2x_R@{k}']:.6f}  from faiss top-{k} "
        f"{faiss_y2x:.6f}\n"
        f"x2y_R@1 = {report['x2y_R@1']:.4f}, y2x_R@1 = {report['y2x_R@1']:.4f}"
    )
    if args.old:
        old = {"x2y": np.mean(old_x2y <= k), "y2x": np.mean(old_y2x <= k)}
        print(
            f"former NumPy code: x2y_R@{k} {old['x2y']:.6f}, y2x_R@{k} {old['y2x']:.6f}"
        )
    print(f"load average after={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
