"""Multi-process training with torch.distributed: two CPU processes over gloo
fit what one process fits on the same global batches."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from helpers import FAST, make_pairs

from skfusemix import FuseMixAligner
from skfusemix.engine._distributed import process_group, shard_rows
from skfusemix.engine._loop import make_step
from skfusemix.engine.losses import StructureRegularizer, SymmetricInfoNCE
from skfusemix.engine.mixing import fusemix, positive_mask
from skfusemix.engine.nn import Adapter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One launch of the processes runs every case in turn (importing torch twice
# is most of the test's time).  Each process records its checkpoint writes.
WORKER = textwrap.dedent(
    """
    import datetime, json, os, sys
    import numpy as np, torch, torch.distributed as dist
    torch.set_num_threads(1)
    from skfusemix import FuseMixAligner
    from skfusemix.engine._checkpoint import Checkpoint
    import skfusemix.engine._loop as loop
    fusemix = loop.fusemix
    sys.path.insert(0, os.path.join(os.getcwd(), "tests"))
    from test_ddp import fitted_arrays, one_step

    rank, world, tmp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    dist.init_process_group(
        "gloo", init_method="file://" + os.path.join(tmp, "rendezvous"), rank=rank,
        world_size=world, timeout=datetime.timedelta(seconds=60),
    )
    writes = []
    save = Checkpoint.save
    def recorded_save(self, *args, **kwargs):
        writes.append(rank)
        return save(self, *args, **kwargs)
    Checkpoint.save = recorded_save

    data = np.load(os.path.join(tmp, "data.npz"))
    with open(os.path.join(tmp, "cases.json")) as f:
        cases = json.load(f)
    out = {}
    for name, case in cases.items():
        X, Y = data[case.get("X", "X")], data[case.get("Y", "Y")]
        X = X + (1 if case.get("rank_data") and rank else 0)
        groups = data["groups"] if case.get("groups") else None
        model = FuseMixAligner(**case["params"])
        if case.get("poison") and rank == 1:  # NaN rows in this process only
            count = [0]
            def poisoned(zx, zy, lam):
                count[0] += 1
                mx, my = fusemix(zx, zy, lam)
                return (mx * float("nan"), my) if count[0] == case["poison"] else (mx, my)
            loop.fusemix = poisoned
        try:
            model.fit(X, Y, groups)
        except ValueError as exc:
            out[name + ".error"] = np.array(str(exc))
            out[name + ".n_iter"] = np.array(getattr(model, "n_iter_", -1))
            continue
        finally:
            loop.fusemix = fusemix
        out.update(fitted_arrays(model, name, X, Y))
        out[name + ".restored"] = np.array(model.n_iter_restored_)
    from skfusemix.engine._distributed import ProcessGroup
    for key, value in one_step(ProcessGroup()).items():
        out["step." + key] = value
    out["writes"] = np.array(writes, dtype=np.int64)
    np.savez(os.path.join(tmp, f"rank{rank}.npz"), **out)
    dist.destroy_process_group()
    """
)


def one_step(distributed=None):
    """Gradients (and loss) of one optimiser step of :func:`make_step` on a
    mixed batch with repeated items, alone or as one process of
    ``distributed``: plain SGD, so a gradient off by any factor shows."""
    torch.manual_seed(0)
    adapter_x, adapter_y = Adapter(16, 8, 1, 2), Adapter(12, 8, 1, 2)
    loss_fn = SymmetricInfoNCE(temperature=0.1)
    params = [*adapter_x.parameters(), *adapter_y.parameters(), loss_fn.log_temperature]
    step = make_step(
        adapter_x,
        adapter_y,
        loss_fn,
        torch.optim.SGD(params, lr=1.0),
        regularizer=StructureRegularizer(),
        distributed=distributed,
    )
    X, Y = (torch.from_numpy(Z) for Z in make_pairs(n=64, d_x=16, d_y=12))
    idx, g = torch.arange(64), torch.arange(64) // 4  # items of 4 rows
    if distributed is not None:
        idx = shard_rows(idx, distributed.rank, distributed.world_size, parts=2)
        g = distributed.gather_codes(g[idx], mixing=True)
    zx, zy = fusemix(X[idx], Y[idx], 0.3)
    positives = positive_mask(g, mixing=True, diagonal_as_none=False)
    loss = step(zx, zy, positives, reg_weight=0.5)
    named = {
        **{f"x.{k}": p for k, p in adapter_x.named_parameters()},
        **{f"y.{k}": p for k, p in adapter_y.named_parameters()},
        "log_temperature": loss_fn.log_temperature,
    }
    out = {f"grad.{k}": p.grad.numpy().copy() for k, p in named.items()}
    return out | {"loss": loss.numpy()}


def run_processes(tmp_path, cases, data, world_size=2):
    """Fit ``cases`` in ``world_size`` processes joined by gloo; return each
    process' outputs."""
    np.savez(tmp_path / "data.npz", **data)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(rank), str(world_size), str(tmp_path)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(world_size)
    ]
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=240)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log
    return [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(world_size)]


def fitted_arrays(model, name, X, Y):
    out = {}
    for side, adapter in (("x", model.adapter_x_), ("y", model.adapter_y_)):
        for key, value in adapter.state_dict().items():
            out[f"{name}.{side}.{key}"] = value.numpy()
    out[name + ".temperature"] = np.array(model.temperature_)
    out[name + ".loss"] = np.array(model.history_["loss"])
    out[name + ".tx"] = model.transform(X)
    out[name + ".ty"] = model.transform_y(Y)
    if model.validation_scores_ is not None:
        out[name + ".val"] = np.array(model.validation_scores_)
    return out


@pytest.mark.slow  # two processes importing torch: about 25 s on 2 cores
def test_two_processes_fit_the_single_process_model(tmp_path):
    X, Y = make_pairs(n=256, d_x=16, d_y=12)
    groups = np.repeat(np.arange(128), 2)  # two "captions" per item
    X_grouped = X[groups * 2]  # captions (Y) of one item differ, its X rows do not
    params = dict(FAST, batch_size=32, max_epochs=4, random_state=0, alpha=1.0)
    cases = {
        "mix": {
            "params": {**params, "checkpoint_dir": str(tmp_path / "ckpt")},
        },
        "resume": {  # the same fit again: every process reads rank 0's file
            "params": {**params, "checkpoint_dir": str(tmp_path / "ckpt")},
        },
        "grouped": {
            "params": {
                **params,
                "loss": "sigmoid",
                "early_stopping": True,
                "validation_fraction": 0.25,
                "structure_weight": 1.0,
            },
            "groups": True,
            "X": "X_grouped",
        },
        "dropout": {"params": {**params, "dropout": 0.3}},  # masks per process
        "diverge": {"params": params, "poison": 6},  # a step of epoch 2
        "odd_batch": {"params": {**params, "batch_size": 33}},
        "stream": {
            "params": {**params, "max_memory": 400_000},
            "X": "X_big",
            "Y": "Y_big",
        },
        "other_data": {"params": params, "rank_data": True},
    }
    X_big, Y_big = make_pairs(n=4096, d_x=16, d_y=12)  # streamed alone
    data = {"X": X, "Y": Y, "X_grouped": X_grouped, "groups": groups}
    data |= {"X_big": X_big, "Y_big": Y_big}
    ranks = run_processes(tmp_path, cases, data)

    single = {f"step.{k}": v for k, v in one_step().items()}
    single.update(fitted_arrays(FuseMixAligner(**params).fit(X, Y), "mix", X, Y))
    grouped = FuseMixAligner(**cases["grouped"]["params"]).fit(X_grouped, Y, groups)
    single.update(fitted_arrays(grouped, "grouped", X_grouped, Y))
    assert grouped.n_iter_ > 1

    for out in ranks:
        for key, expected in single.items():
            np.testing.assert_allclose(
                out[key], expected, rtol=1e-4, atol=2e-5, err_msg=key
            )
        for key in [k for k in single if k.startswith("mix.")]:  # resumed fit
            np.testing.assert_array_equal(
                out[key.replace("mix.", "resume.", 1)], out[key], err_msg=key
            )
        assert int(out["resume.restored"]) == params["max_epochs"]
        assert "multiple of 2" in str(out["odd_batch.error"])
        assert "diverged" in str(out["diverge.error"]) and "epoch 2" in str(
            out["diverge.error"]
        )
        assert int(out["diverge.n_iter"]) == 1
        assert "streaming is not supported" in str(out["stream.error"])
        assert "different data or parameters" in str(out["other_data.error"])
    # the processes hold the same model, bit for bit, also with dropout
    for key in [*single, *(k for k in ranks[0] if k.startswith("dropout."))]:
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)
    assert not np.allclose(ranks[0]["dropout.tx"], ranks[0]["mix.tx"], atol=1e-3)
    # rank 0 alone wrote the checkpoint, once per epoch of the first fit
    assert ranks[0]["writes"].tolist() == [0] * params["max_epochs"]
    assert ranks[1]["writes"].tolist() == []
    assert len(os.listdir(tmp_path / "ckpt")) == 1


def test_shards_make_up_the_global_batch():
    idx = torch.randperm(24, generator=torch.Generator().manual_seed(0))
    for parts in (1, 2):
        shards = [shard_rows(idx, r, 3, parts) for r in range(3)]
        # in rank order, each part's slices are that part of the global batch
        pieces = [s.view(parts, -1) for s in shards]
        joined = torch.cat([torch.cat([p[k] for p in pieces]) for k in range(parts)])
        assert torch.equal(joined, idx)
    with pytest.raises(ValueError, match="does not split"):
        shard_rows(torch.arange(10), 0, 3, parts=2)


def test_without_a_process_group_fit_trains_alone():
    assert not torch.distributed.is_initialized()
    assert process_group("auto") is None
    assert process_group(False) is None
    with pytest.raises(ValueError, match="distributed=True needs an initialised"):
        process_group(True)
    X, Y = make_pairs(n=128, d_x=16, d_y=12)
    with pytest.raises(ValueError, match="distributed=True needs an initialised"):
        FuseMixAligner(**FAST, distributed=True).fit(X, Y)
    with pytest.raises(ValueError, match="distributed"):
        FuseMixAligner(**FAST, distributed="yes").fit(X, Y)


@pytest.mark.slow  # two processes importing torch: about 30 s on 2 cores
def test_cli_fit_under_torchrun_saves_the_single_process_model(tmp_path):
    """``torchrun --nproc-per-node 2 -m skfusemix fit ...``: the processes join
    one gloo group, rank 0 saves, and the model is the one-process model."""
    X, Y = make_pairs(n=256, d_x=16, d_y=12)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    args = ["fit", "--x", str(tmp_path / "x.npy"), "--y", str(tmp_path / "y.npy")]
    args += ["--n-components", "8", "--n-layers", "1", "--batch-size", "32"]
    args += ["--max-epochs", "3", "--dropout", "0", "--quiet"]
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    launch += ["--standalone", "-m", "skfusemix"]
    run = subprocess.run(
        [*launch, *args, "--out", str(tmp_path / "two")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("saved the model") == 1  # rank 0 alone reports
    one = subprocess.run(
        [sys.executable, "-m", "skfusemix", *args, "--out", str(tmp_path / "one")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert one.returncode == 0, one.stderr
    two = FuseMixAligner.load(tmp_path / "two")
    single = FuseMixAligner.load(tmp_path / "one")
    np.testing.assert_allclose(two.transform(X), single.transform(X), atol=1e-5)
    np.testing.assert_allclose(two.transform_y(Y), single.transform_y(Y), atol=1e-5)
    np.testing.assert_allclose(two.history_["loss"], single.history_["loss"], rtol=1e-5)
