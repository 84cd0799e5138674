"""encode_to_npy and model search on Dask and Ray clusters (local, 2 workers).

One cluster of each engine per module (starting one takes seconds).  Needs
the ``distributed`` extra: ``pip install "skfusemix[distributed]"``.
"""

import json
import os
import pickle
import signal
import sys

import joblib
import numpy as np
import pytest
import torch
from helpers import FAST, make_pairs, save_tiny_bert

from skfusemix import FuseMixAligner
from skfusemix.encoders import (
    LatentFile,
    TextEncoder,
    TorchEncoder,
    encode_to_npy,
    read_latent_metadata,
)

distributed = pytest.importorskip(
    "distributed",
    reason="dask.distributed is not installed (pip install 'skfusemix[distributed]')",
)
cloudpickle = pytest.importorskip("cloudpickle")

WORDS = "a the cat dog sat on mat red blue green runs fast slow big small".split()
# 90 texts, 15 shards of 6
TEXTS = [
    " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(i % 9)) for i in range(90)
]
CHUNK = 6

# the classes of this module travel by value (the workers cannot import it)
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    # LocalCluster sets OMP_NUM_THREADS=1 (and MKL_..., OPENBLAS_...) in this
    # process' environment for its workers; later tests' subprocesses must not
    # inherit it (a subprocess fit on 1 thread rounds differently)
    saved_environ = dict(os.environ)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()
    os.environ.clear()
    os.environ.update(saved_environ)


@pytest.fixture(scope="module")
def ray_backend():
    ray = pytest.importorskip(
        "ray", reason="Ray is not installed (pip install 'skfusemix[distributed]')"
    )
    from ray.util.joblib import register_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    register_ray()
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), WORDS)


@pytest.fixture(scope="module")
def reference(bert_dir, tmp_path_factory):
    """The single-process encoding: its bytes are the target."""
    path = tmp_path_factory.mktemp("ref") / "z.npy"
    encode_to_npy(TextEncoder(bert_dir), TEXTS, path, chunk_size=CHUNK)
    return path.read_bytes()


class Interrupt(Exception):
    pass


class StopAt:
    """Texts that fail when the driver slices shard ``stop`` (a driver dying
    while shards are in flight)."""

    def __init__(self, stop=None):
        self.stop = stop

    def __len__(self):
        return len(TEXTS)

    def __getitem__(self, index):
        if self.stop is not None and index.start == self.stop * CHUNK:
            raise Interrupt(f"driver stopped at shard {self.stop}")
        return TEXTS[index]


def stop_after(monkeypatch, k):
    """Make the driver stop (raise Interrupt) once it has written k shards
    (never with k=None); return the list of the rows of the shards written."""
    from skfusemix.encoders import _memmap

    monkeypatch.undo()
    add, written = _memmap._Progress.add, []

    def add_then_stop(self, begin):
        add(self, begin)
        written.append(begin)
        if len(written) == k:
            raise Interrupt(f"driver stopped after {k} shards")

    monkeypatch.setattr(_memmap._Progress, "add", add_then_stop)
    return written


def _progress(path):
    with open(str(path) + ".progress.json") as f:
        return json.load(f)


def _rows_done(path):
    state = _progress(path)
    return state["n_done"] + CHUNK * len(state.get("chunks_done", []))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*tasks have been successfully executed")
def test_dask_encoding_is_byte_identical_and_resumes(
    client, bert_dir, reference, tmp_path, monkeypatch
):
    encoder = TextEncoder(bert_dir)
    path = tmp_path / "z.npy"
    with joblib.parallel_config(backend="dask"):
        encode_to_npy(encoder, TEXTS, path, chunk_size=CHUNK)
    assert path.read_bytes() == reference
    assert read_latent_metadata(path, expected_encoder=encoder)["complete"]

    # the driver dies right after writing its 5th shard, others in flight:
    # the shards written stay done, the rerun encodes the rest
    path = tmp_path / "resumed.npy"
    stop_after(monkeypatch, 5)
    with joblib.parallel_config(backend="dask"), pytest.raises(Interrupt):
        encode_to_npy(encoder, TEXTS, path, chunk_size=CHUNK)
    assert _rows_done(path) == 5 * CHUNK
    assert not read_latent_metadata(path)["complete"]
    written = stop_after(monkeypatch, None)
    with joblib.parallel_config(backend="dask"):
        encode_to_npy(encoder, TEXTS, path, chunk_size=CHUNK)
    assert len(written) == 15 - 5  # only the shards not written before
    assert path.read_bytes() == reference
    assert not os.path.exists(str(path) + ".progress.json")


def test_out_of_order_progress_resumes_in_one_process(
    bert_dir, reference, tmp_path, monkeypatch
):
    # a sidecar left by a cluster run: shards 0-1, 4 and 7 done, the others not
    path = tmp_path / "z.npy"
    with pytest.raises(Interrupt):
        encode_to_npy(TextEncoder(bert_dir), StopAt(8), path, chunk_size=CHUNK)
    Z = np.load(path, mmap_mode="r+")
    for k in (2, 3, 5, 6):
        Z[k * CHUNK : (k + 1) * CHUNK] = 0
    Z.flush()
    del Z
    with open(str(path) + ".progress.json", "w") as f:
        json.dump({"n_done": 2 * CHUNK, "chunks_done": [4, 7]}, f)
    shards = []
    transform = TextEncoder.transform

    def recording(self, X):
        shards.append(next(k for k in range(15) if TEXTS[k * CHUNK :][: len(X)] == X))
        return transform(self, X)

    monkeypatch.setattr(TextEncoder, "transform", recording)
    encode_to_npy(TextEncoder(bert_dir), TEXTS, path, chunk_size=CHUNK)
    assert shards == [2, 3, 5, 6, *range(8, 15)]
    assert path.read_bytes() == reference


class _KillOnce(torch.nn.Module):
    """A linear encoder whose worker process dies at the first shard that
    contains row ``row`` (once: a marker file remembers it)."""

    def __init__(self, marker, row):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(4, 3)
        self.marker, self.row = marker, row

    def forward(self, x):
        if (x[:, 0] == self.row).any() and not os.path.exists(self.marker):
            with open(self.marker, "w") as f:
                f.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return torch.tanh(self.linear(x))


def _rows(n=60):
    X = np.random.default_rng(0).standard_normal((n, 4)).astype(np.float32)
    X[:, 0] = np.arange(n)  # the row number, seen by the module
    return X


def test_dask_survives_a_killed_worker(client, tmp_path):
    X = _rows()
    marker = tmp_path / "killed"
    encoder = TorchEncoder(_KillOnce(str(marker), row=31), pooling=None, device="cpu")
    expected = tmp_path / "reference.npy"
    encode_to_npy(
        TorchEncoder(_KillOnce(str(marker), row=-1), pooling=None, device="cpu"),
        X,
        expected,
        chunk_size=5,
    )
    before = set(client.run(os.getpid).values())
    path = tmp_path / "z.npy"
    with joblib.parallel_config(backend="dask"):
        encode_to_npy(encoder, X, path, chunk_size=5)
    killed = int(marker.read_text())
    assert killed in before  # a worker process really died mid-run
    client.wait_for_workers(2, timeout=60)
    assert killed not in set(client.run(os.getpid).values())
    assert path.read_bytes() == expected.read_bytes()


@pytest.mark.slow
def test_cache_is_shared_by_the_workers(client, bert_dir, tmp_path, monkeypatch):
    # distinct texts: a text repeated in two shards would be served from the
    # cache in the second, with the value of the first shard's batch (equal
    # to float rounding, not byte for byte)
    texts = list(dict.fromkeys(TEXTS))
    reference = tmp_path / "reference.npy"
    encode_to_npy(TextEncoder(bert_dir), texts, reference, chunk_size=CHUNK)
    cache = tmp_path / "cache"
    path = tmp_path / "z.npy"
    with joblib.parallel_config(backend="dask"):
        encode_to_npy(
            TextEncoder(bert_dir, memory=str(cache)), texts, path, chunk_size=CHUNK
        )
    assert path.read_bytes() == reference.read_bytes()

    # the workers' cache shards serve this process: nothing is encoded again
    def refuse(self, items, device):
        raise AssertionError(f"{len(items)} items were not in the cache")

    monkeypatch.setattr(TextEncoder, "_encode_uncached", refuse)
    Z = TextEncoder(bert_dir, memory=str(cache)).transform(texts)
    np.testing.assert_array_equal(Z, np.load(path))


class _LoadLog(TextEncoder):
    """A TextEncoder that appends its process id to ``log`` at each load."""

    def __init__(self, model, log=None):
        super().__init__(model)
        self.log = log

    def _load(self):
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")
        return super()._load()


@pytest.mark.slow
def test_encoder_is_loaded_once_per_worker_process(client, bert_dir, tmp_path):
    log = tmp_path / "loads.txt"
    with joblib.parallel_config(backend="dask"):
        encode_to_npy(
            _LoadLog(bert_dir, str(log)), TEXTS, tmp_path / "z.npy", chunk_size=3
        )
    pids = log.read_text().split()
    workers = {str(pid) for pid in client.run(os.getpid).values()}
    # 30 shards on 2 worker processes, one load in each process that took some
    assert 1 <= len(pids) <= 2 and len(set(pids)) == len(pids)
    assert set(pids) <= workers


@pytest.mark.slow
def test_cli_encode_on_a_dask_scheduler(client, bert_dir, reference, tmp_path, capsys):
    from skfusemix.cli import main

    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS))
    out = tmp_path / "z.npy"
    address = client.scheduler.address
    argv = ["encode", str(texts), str(out), "--model", bert_dir, "-q"]
    assert (
        main([*argv, "--chunk-size", str(CHUNK), "--cluster", f"dask:{address}"]) == 0
    )
    assert out.read_bytes() == reference
    assert main([*argv, "--overwrite", "--cluster", "spark"]) == 1
    assert "Unknown cluster 'spark'" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_resumes_after_a_killed_worker(ray_backend, tmp_path):
    # Ray's pool does not replace a dead worker: the call fails, the shards
    # done are kept, and the rerun encodes only the others
    X = _rows()
    marker = tmp_path / "killed"
    expected = tmp_path / "reference.npy"
    encode_to_npy(
        TorchEncoder(_KillOnce(str(marker), row=-1), pooling=None),
        X,
        expected,
        chunk_size=5,
    )
    encoder = TorchEncoder(_KillOnce(str(marker), row=31), pooling=None)
    path = tmp_path / "z.npy"
    with joblib.parallel_config(backend="ray"), pytest.raises(Exception, match="died"):
        encode_to_npy(encoder, X, path, chunk_size=5, n_jobs=-1)
    assert marker.exists()
    assert 0 < _progress(path)["n_done"] < 30  # the shards before row 31 only
    with joblib.parallel_config(backend="ray"):
        encode_to_npy(encoder, X, path, chunk_size=5, n_jobs=-1)
    assert path.read_bytes() == expected.read_bytes()


# ----------------------------------------------------------------- search
GRID = {"n_components": [4, 16], "batch_size": [16, 24]}


def _search(X, Y, backend, n_jobs=None):
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(
        FuseMixAligner(**{**FAST, "max_epochs": 5}, device="cpu", random_state=0),
        GRID,
        cv=2,
        n_jobs=n_jobs,
    )
    with joblib.parallel_config(backend=backend):
        search.fit(X, Y)
    return search


@pytest.fixture(scope="module")
def latent_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("latents")
    Zx, Zy = make_pairs(120)
    np.save(folder / "x.npy", Zx)
    np.save(folder / "y.npy", Zy)
    return folder / "x.npy", folder / "y.npy"


@pytest.fixture(scope="module")
def sequential(latent_files):
    X, Y = (np.load(p) for p in latent_files)
    return _search(X, Y, "sequential")


def _same_search(a, b):
    assert len(set(b.cv_results_["mean_test_score"])) > 1  # a real choice
    assert a.best_params_ == b.best_params_
    np.testing.assert_allclose(
        a.cv_results_["mean_test_score"], b.cv_results_["mean_test_score"], rtol=1e-6
    )


def test_latent_file_pickles_as_its_path(latent_files, tmp_path):
    X = LatentFile(latent_files[0])
    assert len(pickle.dumps(X)) < 1000 and X.nbytes > 10_000
    again = pickle.loads(pickle.dumps(X))
    np.testing.assert_array_equal(again[[3, 1, 2]], np.load(latent_files[0])[[3, 1, 2]])
    assert np.asarray(X).shape == X.shape == (120, 24) and len(X) == 120

    path = tmp_path / "z.npy"
    np.save(path, np.zeros((5, 3), np.float32))
    sent = pickle.dumps(LatentFile(path))
    np.save(path, np.zeros((6, 3), np.float32))  # changed before it arrived
    with pytest.raises(ValueError, match="changed since it was sent"):
        pickle.loads(sent)
    np.save(path, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="expected 2-D latents"):
        LatentFile(path)


@pytest.mark.slow
def test_dask_search_equals_sequential(client, latent_files, sequential):
    X, Y = (np.load(p) for p in latent_files)
    _same_search(_search(X, Y, "dask"), sequential)
    # files on shared storage travel as their paths
    X, Y = (LatentFile(p) for p in latent_files)
    _same_search(_search(X, Y, "dask"), sequential)


@pytest.mark.slow
def test_ray_search_equals_sequential(ray_backend, latent_files, sequential):
    X, Y = (LatentFile(p) for p in latent_files)
    _same_search(_search(X, Y, "ray", n_jobs=-1), sequential)
