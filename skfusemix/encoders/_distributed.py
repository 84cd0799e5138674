"""Shards of :func:`encode_to_npy` on joblib workers (loky, Dask, Ray).

The driver sends each worker the encoder pickled once per call (a ``bytes``
payload: joblib's Dask backend scatters it once, on Ray it goes to the
object store once) with a token, the digest of those bytes.  A worker
process unpickles it at its first shard and keeps it under that token, so
the model is loaded once per process and every later shard, and every later
call with the same encoder (a rerun after an interruption), reuses it.
"""

import contextlib
import hashlib
import itertools
import pickle
import threading
from collections import OrderedDict

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs

try:  # a dependency of joblib >= 1.5, vendored in older versions
    import cloudpickle
except ImportError:  # pragma: no cover
    from joblib.externals import cloudpickle

__all__ = ["encode_shards", "cluster_backend"]

# token -> encoder, in each worker process (the last few encoders only)
_WORKER_ENCODERS = OrderedDict()
_WORKER_LOCK = threading.Lock()
_KEEP = 2


def _worker_encoder(payload, token):
    with _WORKER_LOCK:
        encoder = _WORKER_ENCODERS.get(token)
        if encoder is not None:
            _WORKER_ENCODERS.move_to_end(token)
        else:
            if not isinstance(payload, bytes):  # a Ray object reference
                import ray

                payload = ray.get(payload)
            encoder = pickle.loads(payload)
            _WORKER_ENCODERS[token] = encoder
            while len(_WORKER_ENCODERS) > _KEEP:
                _WORKER_ENCODERS.popitem(last=False)
        return encoder


def _encode_shard(payload, token, begin, chunk):
    """Encode one shard in a worker process: ``(begin, latents)``."""
    encoder = _worker_encoder(payload, token)
    return begin, np.asarray(encoder.transform(chunk))


def _on_ray():
    from joblib.parallel import get_active_backend

    return type(get_active_backend()[0]).__module__.startswith("ray.")


def encode_shards(encoder, shards, n_jobs):
    """Yield ``(begin, latents)`` for each ``(begin, items)`` of ``shards``,
    encoded by ``n_jobs`` joblib workers, in the order they finish.

    Backends that cannot stream results (Ray's) get the shards in rounds of
    ``2 * n_jobs``: at most one round is in flight.
    """
    # cloudpickle: encoders around modules defined in a script or notebook
    payload = cloudpickle.dumps(encoder)
    token = hashlib.blake2b(payload, digest_size=16).hexdigest()
    if _on_ray():
        import ray

        payload = ray.put(payload)
    tasks = (
        delayed(_encode_shard)(payload, token, begin, items) for begin, items in shards
    )
    try:
        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    except ValueError:  # no streaming of results: rounds of bounded size
        size = 2 * max(1, effective_n_jobs(n_jobs))
        with Parallel(n_jobs=n_jobs) as parallel:  # one pool for all rounds
            while round_ := list(itertools.islice(tasks, size)):
                yield from parallel(round_)
    else:
        yield from parallel(tasks)


@contextlib.contextmanager
def cluster_backend(spec):
    """joblib's backend for a cluster named on the command line (None: none).

    ``dask`` starts a local Dask cluster (one single-threaded worker process
    per core), ``dask:ADDRESS`` connects to a Dask scheduler, ``ray`` starts
    or joins a local Ray instance and ``ray:ADDRESS`` connects to a Ray
    cluster (``ray:auto`` for the one this machine belongs to).
    """
    if spec is None:
        yield None
        return
    import joblib

    engine, _, address = spec.partition(":")
    if engine not in ("dask", "ray"):
        raise ValueError(
            f"Unknown cluster {spec!r}: use dask, dask:ADDRESS, ray or ray:ADDRESS."
        )
    try:
        if engine == "dask":
            from distributed import Client, LocalCluster
        else:
            import ray
            from ray.util.joblib import register_ray
    except ImportError as exc:
        raise ImportError(
            f"--cluster {engine} needs {exc.name}: pip install 'skfusemix[distributed]'"
        ) from exc
    if engine == "dask":
        if address:
            client = Client(address)
        else:
            client = Client(
                LocalCluster(
                    threads_per_worker=1, processes=True, dashboard_address=None
                )
            )
        try:
            with joblib.parallel_config(backend="dask"):
                yield client
        finally:
            client.close()
    else:
        started = not ray.is_initialized()
        if started:
            ray.init(address=address or None)
        register_ray()
        try:
            with joblib.parallel_config(backend="ray"):
                yield ray
        finally:
            if started:
                ray.shutdown()
