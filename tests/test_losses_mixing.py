"""The three torch concepts of FuseMix against independent computations."""

import math

import numpy as np
import pytest
import torch

from skfusemix.engine import _loop as _training
from skfusemix.engine._batches import DeviceBatches
from skfusemix.engine._plan import FitPlan
from skfusemix.engine.losses import TEMPERATURE_BOUNDS, SymmetricInfoNCE
from skfusemix.engine.mixing import fusemix, sample_lambdas
from skfusemix.engine.nn import Adapter, ResidualBlock, count_flops_per_row


def _numpy_clip_loss(sx, sy, temperature):
    logits = sx @ sy.T / temperature

    def xent(logits):
        logits = logits - logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -np.mean(np.diag(logp))

    return 0.5 * (xent(logits) + xent(logits.T))


@pytest.mark.parametrize("temperature", [0.07, 0.5, 1.0])
def test_symmetric_infonce_matches_numpy(temperature):
    rng = np.random.RandomState(0)
    sx = rng.normal(size=(12, 5))
    sy = rng.normal(size=(12, 5))
    sx /= np.linalg.norm(sx, axis=1, keepdims=True)
    sy /= np.linalg.norm(sy, axis=1, keepdims=True)
    loss = SymmetricInfoNCE(temperature)(torch.tensor(sx), torch.tensor(sy).double())
    assert float(loss.detach()) == pytest.approx(
        _numpy_clip_loss(sx, sy, temperature), rel=1e-6
    )


def test_infonce_is_asymmetric_in_its_arguments_only_through_both_directions():
    # Rows->columns and columns->rows both count: swapping modalities keeps the loss.
    rng = np.random.RandomState(1)
    sx = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(7, 3))), dim=1)
    sy = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(7, 3))), dim=1)
    loss_fn = SymmetricInfoNCE(0.1).double()
    assert float(loss_fn(sx, sy)) == pytest.approx(float(loss_fn(sy, sx)), rel=1e-12)


def test_temperature_learned_and_clamped():
    loss_fn = SymmetricInfoNCE(0.07, learn_temperature=True)
    assert loss_fn.log_temperature.requires_grad
    with torch.no_grad():
        loss_fn.log_temperature.fill_(math.log(5.0))
    loss_fn.clamp_()
    assert float(loss_fn.temperature) == pytest.approx(TEMPERATURE_BOUNDS[1], rel=1e-6)
    with torch.no_grad():
        loss_fn.log_temperature.fill_(math.log(1e-6))
    loss_fn.clamp_()
    assert float(loss_fn.temperature) == pytest.approx(TEMPERATURE_BOUNDS[0], rel=1e-6)


def test_fixed_temperature_is_not_clamped_nor_learned():
    loss_fn = SymmetricInfoNCE(2.0, learn_temperature=False)
    assert not loss_fn.log_temperature.requires_grad
    loss_fn.clamp_()
    assert float(loss_fn.temperature) == pytest.approx(2.0)


def test_fusemix_uses_one_coefficient_for_both_modalities():
    rng = np.random.RandomState(0)
    zx, zy = (
        torch.tensor(rng.normal(size=(8, 3))),
        torch.tensor(rng.normal(size=(8, 5))),
    )
    lam = 0.3
    mx, my = fusemix(zx, zy, torch.tensor(lam, dtype=torch.float64))
    np.testing.assert_allclose(mx, lam * zx[:4] + (1 - lam) * zx[4:], rtol=1e-12)
    np.testing.assert_allclose(my, lam * zy[:4] + (1 - lam) * zy[4:], rtol=1e-12)


def test_fusemix_with_lambda_one_is_the_first_half():
    zx, zy = torch.randn(6, 2), torch.randn(6, 3)
    mx, my = fusemix(zx, zy, 1.0)
    assert torch.equal(mx, zx[:3]) and torch.equal(my, zy[:3])


def test_fusemix_rejects_unpaired_or_odd_batches():
    with pytest.raises(ValueError, match="2B paired rows"):
        fusemix(torch.zeros(5, 2), torch.zeros(5, 2), 0.5)
    with pytest.raises(ValueError, match="2B paired rows"):
        fusemix(torch.zeros(4, 2), torch.zeros(6, 2), 0.5)


def test_sample_lambdas():
    rng = np.random.RandomState(0)
    lams = sample_lambdas(1.0, 20000, rng)
    assert lams.dtype == np.float32 and lams.min() >= 0 and lams.max() <= 1
    assert abs(lams.mean() - 0.5) < 0.01 and abs(lams.var() - 1 / 12) < 0.005  # Uniform
    small = sample_lambdas(0.1, 20000, np.random.RandomState(0))
    assert np.mean((small < 0.05) | (small > 0.95)) > 0.6  # U-shaped Beta(0.1, 0.1)
    np.testing.assert_array_equal(
        sample_lambdas(0.0, 5, rng), np.ones(5, dtype=np.float32)
    )


class _Recorder(torch.nn.Module):
    """Identity-ish adapter that records every batch it sees."""

    def __init__(self, dim):
        super().__init__()
        self.lin = torch.nn.Linear(dim, 4)
        self.seen = []

    def forward(self, z):
        self.seen.append(z.detach().clone())
        return self.lin(z)


def _record_training(alpha, n=16, batch_size=4, epochs=3):
    Zx = torch.eye(n)
    Zy = 2 * torch.eye(n)  # y row i = 2 * x row i: a mixed pair keeps that relation
    rec_x, rec_y = _Recorder(n), _Recorder(n)
    plan = FitPlan(
        n_samples=n,
        batch_size=batch_size,
        max_epochs=epochs,
        alpha=alpha,
        learning_rate=1e-3,
        weight_decay=0.0,
        warmup_steps=0,
        seed=0,
    )
    batches = DeviceBatches(Zx, Zy)
    result = _training.train(rec_x, rec_y, SymmetricInfoNCE(0.1), batches, plan)
    return rec_x.seen, rec_y.seen, result.n_steps


def test_training_mixes_both_modalities_with_the_same_coefficient():
    seen_x, seen_y, steps = _record_training(alpha=1.0)
    assert steps == 3 * (16 // 8) == len(seen_x)
    lams = []
    for bx, by in zip(seen_x, seen_y):
        assert bx.shape == (4, 16)
        torch.testing.assert_close(by, 2 * bx)  # same lam, same partner rows
        nonzero = (bx > 0).sum(dim=1)
        assert torch.all(nonzero <= 2)
        torch.testing.assert_close(bx.sum(dim=1), torch.ones(4))
        # one lam per step: every row holds lam (from half A) and 1 - lam (from half B)
        top = bx.max(dim=1).values
        lam = float(top[0])
        assert torch.allclose(top, torch.full_like(top, lam))
        lams.append(min(lam, 1 - lam))
    assert len(set(np.round(lams, 6))) > 1  # a fresh coefficient each step


def test_training_with_alpha_zero_sees_the_original_pairs():
    seen_x, seen_y, steps = _record_training(alpha=0.0)
    assert steps == 3 * (16 // 4)
    for bx, by in zip(seen_x, seen_y):
        torch.testing.assert_close(by, 2 * bx)
        assert torch.all((bx == 0) | (bx == 1))  # rows of the identity, unmixed
        assert torch.all(bx.sum(dim=1) == 1)
    # every pair is seen once per epoch
    epoch = torch.cat(seen_x[:4])
    assert torch.equal(epoch.sum(dim=0), torch.ones(16))


def test_residual_block_and_adapter_structure():
    block = ResidualBlock(8, expansion=3, dropout=0.0)
    assert block.fc1.out_features == 24 and block.fc2.out_features == 8
    z = torch.randn(5, 8)
    with torch.no_grad():
        block.fc2.weight.zero_()
        block.fc2.bias.zero_()
    torch.testing.assert_close(block(z), z)  # the skip connection
    adapter = Adapter(8, 3, n_layers=2, expansion=4)
    assert len(adapter.blocks) == 2 and adapter(z).shape == (5, 3)
    assert isinstance(adapter.norm, torch.nn.LayerNorm)
    assert Adapter(8, 3, n_layers=0)(z).shape == (5, 3)
    # 2 blocks of 2 * 8 * 32 weights, plus the 8 -> 3 projection, 2 FLOPs each
    assert count_flops_per_row(adapter) == 2 * (2 * 2 * 8 * 32 + 8 * 3)


def test_optimizer_does_not_decay_biases_norms_or_temperature():
    adapter = Adapter(4, 2, n_layers=1)
    loss_fn = SymmetricInfoNCE()
    opt = _training.build_optimizer([adapter, loss_fn], 1e-3, 0.1, torch.device("cpu"))
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    assert opt.param_groups[0]["weight_decay"] == 0.1
    assert opt.param_groups[1]["weight_decay"] == 0.0
    assert id(adapter.blocks[0].fc1.weight) in decayed
    assert id(adapter.proj.weight) in decayed
    for p in (
        adapter.blocks[0].fc1.bias,
        adapter.norm.weight,
        adapter.blocks[0].norm.weight,
        adapter.norm.bias,
        loss_fn.log_temperature,
    ):
        assert id(p) not in decayed
    n_params = sum(len(g["params"]) for g in opt.param_groups)
    assert n_params == len(list(adapter.parameters())) + 1


def test_warmup_cosine_schedule():
    f = _training.warmup_cosine(10, 110)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5)
    assert f(109) == pytest.approx(0.0, abs=1e-3)
    values = [f(s) for s in range(10, 110)]
    assert all(a >= b for a, b in zip(values, values[1:]))
