"""Checkpoints, resuming a killed fit, warm_start, Ctrl-C, divergence, scale."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from helpers import StepCounter, make_pairs, same_weights

import skfusemix.engine._loop as training
from skfusemix import FuseMixAligner
from skfusemix._persistence import read_safetensors
from skfusemix.exceptions import FitInterruptedWarning, TrainingDivergedError

TINY = dict(
    n_components=8,
    n_layers=1,
    expansion=2,
    dropout=0.2,
    batch_size=32,
    max_epochs=6,
    random_state=0,
)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data():
    return make_pairs(n=200)


@pytest.fixture(scope="module")
def reference(data):
    return FuseMixAligner(**TINY).fit(*data)


# ----------------------------------------------------------- checkpoints
def test_killed_fit_resumes_to_the_uninterrupted_result(
    data, reference, tmp_path, monkeypatch
):
    steps_per_epoch = 200 // 64
    counter = StepCounter(monkeypatch, fail_at=4 * steps_per_epoch + 2)
    with pytest.raises(RuntimeError, match="killed"):
        FuseMixAligner(**TINY, checkpoint_dir=tmp_path, checkpoint_every=2).fit(*data)
    (ckpt,) = os.listdir(tmp_path)
    counter.n, counter.fail_at = 0, None
    resumed = FuseMixAligner(**TINY, checkpoint_dir=tmp_path, checkpoint_every=2).fit(
        *data
    )
    assert counter.n == 2 * steps_per_epoch  # resumed after epoch 4 of 6
    assert same_weights(resumed, reference)
    assert resumed.history_["loss"] == reference.history_["loss"]
    assert resumed.t_ == reference.t_ and resumed.n_iter_ == 6
    # The finished fit's checkpoint is kept: rerunning it trains nothing.
    counter.n = 0
    again = FuseMixAligner(**TINY, checkpoint_dir=tmp_path).fit(*data)
    assert counter.n == 0 and same_weights(again, reference)


def test_checkpoint_is_pickle_free_and_complete(data, tmp_path):
    FuseMixAligner(**TINY, checkpoint_dir=tmp_path, early_stopping=True).fit(*data)
    (name,) = os.listdir(tmp_path)
    tensors, header = read_safetensors(tmp_path / name)
    meta = json.loads(header["skfusemix"])
    assert meta["format"] == "skfusemix.checkpoint"
    assert tensors["rng.batches"].dtype == torch.uint8
    assert tensors["rng.torch"].dtype == torch.uint8
    assert any(k.startswith("optimizer.") and k.endswith("exp_avg_sq") for k in tensors)
    assert any(k.startswith("early_stopping.best.") for k in tensors)
    assert len(meta["history"]["val_score"]) == len(meta["history"]["epoch"])


def test_early_stopping_fit_resumes_exactly(data, tmp_path, monkeypatch):
    kw = dict(TINY, max_epochs=8, early_stopping=True, n_iter_no_change=2)
    reference = FuseMixAligner(**kw).fit(*data)
    steps_per_epoch = 180 // 64
    StepCounter(monkeypatch, fail_at=3 * steps_per_epoch + 1)
    with pytest.raises(RuntimeError):
        FuseMixAligner(**kw, checkpoint_dir=tmp_path).fit(*data)
    monkeypatch.undo()
    resumed = FuseMixAligner(**kw, checkpoint_dir=tmp_path).fit(*data)
    assert same_weights(resumed, reference)
    assert resumed.validation_scores_ == reference.validation_scores_
    assert resumed.best_validation_score_ == reference.best_validation_score_


def test_other_data_or_parameters_get_their_own_checkpoint(data, tmp_path):
    Zx, Zy = data
    FuseMixAligner(**TINY, checkpoint_dir=tmp_path).fit(Zx, Zy)
    FuseMixAligner(**TINY, checkpoint_dir=tmp_path).fit(Zx[:150], Zy[:150])
    FuseMixAligner(**dict(TINY, alpha=0.5), checkpoint_dir=tmp_path).fit(Zx, Zy)
    assert len(os.listdir(tmp_path)) == 3


def test_a_corrupt_checkpoint_is_an_error_not_a_silent_restart(data, tmp_path):
    FuseMixAligner(**TINY, checkpoint_dir=tmp_path).fit(*data)
    (name,) = os.listdir(tmp_path)
    (tmp_path / name).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        FuseMixAligner(**TINY, checkpoint_dir=tmp_path).fit(*data)


_KILL_SCRIPT = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from helpers import StepCounter, make_pairs, same_weights
from skfusemix import FuseMixAligner
import time, torch
import skfusemix.engine._loop as training
torch.set_num_threads({threads})  # the parent's: the same float rounding
Zx, Zy = make_pairs(n=100)
original = training.fusemix
def slow(*args):  # make sure the parent kills it mid-way
    time.sleep(0.05)
    return original(*args)
training.fusemix = slow
FuseMixAligner(**{kw!r}, checkpoint_dir={ckpt!r}).fit(Zx, Zy)
"""


def test_sigkilled_subprocess_fit_resumes_to_the_same_result(tmp_path):
    data = make_pairs(n=100)  # one step per epoch
    kw = dict(TINY, max_epochs=30)
    script = _KILL_SCRIPT.format(
        tests=os.path.join(ROOT, "tests"),
        kw=kw,
        ckpt=str(tmp_path),
        threads=torch.get_num_threads(),
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120

        def saved():  # a whole checkpoint, not the temporary file of one
            return any(n.endswith(".safetensors") for n in os.listdir(tmp_path))

        while not saved() and time.monotonic() < deadline:
            assert proc.poll() is None, "the fit ended before it could be killed"
            time.sleep(0.05)
        time.sleep(0.2)
        proc.kill()  # SIGKILL: no cleanup, no warning, like a lost machine
    finally:
        proc.wait()
    (name,) = [n for n in os.listdir(tmp_path) if n.endswith(".safetensors")]
    done = len(
        json.loads(read_safetensors(tmp_path / name)[1]["skfusemix"])["history"][
            "epoch"
        ]
    )
    assert 1 <= done < 30
    resumed = FuseMixAligner(**kw, checkpoint_dir=tmp_path).fit(*data)
    reference = FuseMixAligner(**kw).fit(*data)
    assert same_weights(resumed, reference)


# ------------------------------------------------------------ warm start
def test_warm_start_continues_from_the_fitted_state(data, reference):
    aligner = FuseMixAligner(**TINY, warm_start=True).fit(*data)
    before = {k: v.clone() for k, v in aligner.adapter_x_.state_dict().items()}
    aligner.set_params(max_epochs=3).fit(*data)
    assert aligner.n_iter_ == 9 and aligner.history_["epoch"] == list(range(1, 10))
    assert aligner.t_ == reference.t_ + 3 * (200 // 64)
    assert len(aligner.history_["loss"]) == 9
    assert aligner.history_["loss"][:6] == reference.history_["loss"]
    # it started from the fitted weights, not from a fresh initialisation
    fresh = FuseMixAligner(**dict(TINY, max_epochs=3)).fit(*data)
    assert not same_weights(aligner, fresh)
    assert any(
        not torch.equal(before[k], v)
        for k, v in aligner.adapter_x_.state_dict().items()
    )


def test_warm_start_false_refits_from_scratch(data, reference):
    aligner = FuseMixAligner(**TINY).fit(*data).fit(*data)
    assert same_weights(aligner, reference) and aligner.n_iter_ == 6


def test_warm_start_refuses_other_shapes(data):
    Zx, Zy = data
    aligner = FuseMixAligner(**TINY, warm_start=True).fit(Zx, Zy)
    with pytest.raises(ValueError, match="features"):
        aligner.fit(Zx[:, :5], Zy)
    with pytest.raises(ValueError, match="warm_start=True cannot continue"):
        aligner.set_params(n_components=4).fit(Zx, Zy)


# ------------------------------------------------------------- Ctrl-C
def test_keyboard_interrupt_inside_the_loop_stops_cleanly(data, monkeypatch):
    counter = StepCounter(monkeypatch, fail_at=8, exc=KeyboardInterrupt())
    aligner = FuseMixAligner(**TINY)
    with pytest.warns(FitInterruptedWarning, match="interrupted"):
        aligner.fit(*data)
    assert counter.n == 8
    assert aligner.t_ == 7  # the interrupted step never reached the optimiser
    assert (
        aligner.n_iter_ == 3 and len(aligner.history_["loss"]) == 3
    )  # 2 full + partial
    Sx = aligner.transform(data[0])
    assert np.isfinite(Sx).all() and 0 <= aligner.score(*data) <= 1


_SIGINT_SCRIPT = """
import signal, sys, json, warnings
import numpy as np
# Python's own Ctrl-C handling, as in a terminal, even when the tests were
# started in the background (a shell without job control starts background
# jobs with SIGINT ignored, and children inherit that)
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tests!r})
from helpers import StepCounter, make_pairs, same_weights
import skfusemix.engine._loop as training
from skfusemix import FuseMixAligner
Zx, Zy = make_pairs(n=200)
original = training.fusemix
count = [0]
def announce(*args):
    count[0] += 1
    if count[0] == 5:
        print("TRAINING", flush=True)
    return original(*args)
training.fusemix = announce
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    aligner = FuseMixAligner(**{kw!r}).fit(Zx, Zy)
print(json.dumps({{
    "n_iter": aligner.n_iter_, "t": aligner.t_,
    "warned": [str(w.category.__name__) for w in caught],
    "score": aligner.score(Zx, Zy),
}}), flush=True)
"""


def test_sigint_to_a_subprocess_fit_stops_it_cleanly():
    kw = dict(TINY, max_epochs=100000)
    script = _SIGINT_SCRIPT.format(tests=os.path.join(ROOT, "tests"), kw=kw)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "TRAINING"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            # A second Ctrl-C must stop it at once.
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert "FitInterruptedWarning" in result["warned"]
    assert 1 <= result["n_iter"] < 100000 and result["t"] >= 4
    assert 0 <= result["score"] <= 1


# ------------------------------------------------------------ divergence
def test_huge_learning_rate_diverges_with_advice_and_keeps_good_weights(data):
    Zx, Zy = data
    aligner = FuseMixAligner(**dict(TINY, learning_rate=1e12, max_epochs=4))
    with pytest.raises(TrainingDivergedError, match="learning_rate") as info:
        aligner.fit(Zx * 100, Zy)
    assert isinstance(info.value, FloatingPointError) and isinstance(
        info.value, ValueError
    )
    assert "temperature" in str(info.value) and "StandardScaler" in str(info.value)
    assert len(aligner.history_["loss"]) == aligner.n_iter_ < 4
    assert np.isfinite(aligner.history_["loss"]).all()
    for module in (aligner.adapter_x_, aligner.adapter_y_, aligner.loss_):
        assert all(torch.isfinite(p).all() for p in module.parameters())
    assert np.isfinite(aligner.transform(Zx)).all()


def test_nan_loss_mid_fit_restores_the_previous_epoch(data, monkeypatch):
    original = training.fusemix
    count = [0]

    def poisoned(zx, zy, lam):
        count[0] += 1
        mx, my = original(zx, zy, lam)
        if count[0] == 2 * (200 // 64) + 2:  # a step of epoch 3
            mx = mx * float("nan")
        return mx, my

    monkeypatch.setattr(training, "fusemix", poisoned)
    aligner = FuseMixAligner(**TINY)
    with pytest.raises(TrainingDivergedError, match="loss became NaN.*epoch 3"):
        aligner.fit(*data)
    assert aligner.n_iter_ == 2 and aligner.t_ == 2 * (200 // 64)
    monkeypatch.undo()
    two_epochs = FuseMixAligner(**TINY).set_params(max_epochs=6)
    # The restored weights are those at the end of epoch 2 of the same fit:
    # reproduce them with a checkpoint-free fit interrupted after epoch 2.
    counter = StepCounter(
        monkeypatch, fail_at=2 * (200 // 64) + 1, exc=KeyboardInterrupt()
    )
    with pytest.warns(FitInterruptedWarning):
        two_epochs.fit(*data)
    assert counter.n == 2 * (200 // 64) + 1
    assert same_weights(aligner, two_epochs)


# ---------------------------------------------------------- input scale
@pytest.mark.parametrize(
    "transform, match",
    [
        (lambda Z: Z * 1e6, "values up to .* in absolute value"),
        (lambda Z: Z * np.logspace(-8, 0, Z.shape[1]), "ranges from"),
        (lambda Z: np.ones_like(Z), "constant"),
    ],
)
def test_bad_input_scales_warn(data, transform, match):
    Zx, Zy = data
    with pytest.warns(UserWarning, match=match):
        FuseMixAligner(**dict(TINY, max_epochs=1, standardize=False)).fit(
            transform(Zx.astype(np.float64)), Zy
        )


def test_overflowing_input_scale_is_an_error(data):
    Zx, Zy = data
    with pytest.raises(ValueError, match="overflows"):
        FuseMixAligner(**TINY).fit(Zx, Zy.astype(np.float64) * 1e20)


def test_well_scaled_inputs_do_not_warn(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FuseMixAligner(**dict(TINY, max_epochs=1)).fit(*data)
