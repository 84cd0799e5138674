"""Multi-positive InfoNCE, the sigmoid loss, the STRUCTURE regulariser, group
codes through the batch sources and the training loop, against direct
computations."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skfusemix.engine import _loop
from skfusemix.engine._batches import DeviceBatches, StreamBatches
from skfusemix.engine._plan import FitPlan
from skfusemix.engine.losses import (
    SigmoidLoss,
    StructureRegularizer,
    SymmetricInfoNCE,
)
from skfusemix.engine.mixing import fusemix, positive_mask

CPU = torch.device("cpu")


def _unit(rng, n, d):
    z = rng.normal(size=(n, d))
    return torch.tensor(z / np.linalg.norm(z, axis=1, keepdims=True))


def _random_mask(rng, n):
    mask = rng.rand(n, n) < 0.3
    np.fill_diagonal(mask, True)
    return torch.tensor(mask)


# ------------------------------------------------------------ InfoNCE
def _direct_multi_positive(sx, sy, mask, temperature):
    logits = (sx @ sy.T).numpy() / temperature
    mask = mask.numpy()
    n = len(logits)
    rows = [
        -math.log(
            sum(math.exp(logits[i, j]) for j in range(n) if mask[i, j])
            / sum(math.exp(logits[i, j]) for j in range(n))
        )
        for i in range(n)
    ]
    cols = [
        -math.log(
            sum(math.exp(logits[i, j]) for i in range(n) if mask[i, j])
            / sum(math.exp(logits[i, j]) for i in range(n))
        )
        for j in range(n)
    ]
    return 0.5 * (sum(rows) / n + sum(cols) / n)


@pytest.mark.parametrize("temperature", [0.05, 0.3])
def test_multi_positive_infonce_matches_a_direct_computation(temperature):
    rng = np.random.RandomState(0)
    sx, sy = _unit(rng, 9, 4), _unit(rng, 9, 4)
    mask = _random_mask(rng, 9)
    assert mask.sum() > 9  # some rows have several positives
    loss_fn = SymmetricInfoNCE(temperature).double()
    stored = loss_fn.temperature.item()  # log T was held in float32
    assert stored == pytest.approx(temperature, rel=1e-6)
    assert loss_fn(sx, sy, mask).item() == pytest.approx(
        _direct_multi_positive(sx, sy, mask, stored), rel=1e-12
    )


def test_infonce_without_mask_is_the_plain_loss_exactly():
    rng = np.random.RandomState(1)
    sx, sy = _unit(rng, 11, 5).float(), _unit(rng, 11, 5).float()
    loss_fn = SymmetricInfoNCE(0.07)
    logits = (sx @ sy.T) * torch.exp(-loss_fn.log_temperature)
    labels = torch.arange(11)
    old = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    assert torch.equal(loss_fn(sx, sy), old)
    assert torch.equal(loss_fn(sx, sy, None), old)


def test_infonce_identity_mask_equals_no_mask():
    rng = np.random.RandomState(2)
    sx, sy = _unit(rng, 10, 3), _unit(rng, 10, 3)
    loss_fn = SymmetricInfoNCE(0.1).double()
    eye = torch.eye(10, dtype=torch.bool)
    assert loss_fn(sx, sy, eye).item() == pytest.approx(
        loss_fn(sx, sy).item(), rel=1e-12
    )


def test_infonce_positives_are_not_negatives():
    # Two identical captions of one item: with the mask the loss can reach 0.
    s = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), dim=1)
    mask = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    loss_fn = SymmetricInfoNCE(0.01, learn_temperature=False)
    assert loss_fn(s, s, mask).item() < 1e-6
    # without it rows 0 and 1 each split their probability over two columns
    assert loss_fn(s, s).item() == pytest.approx(2 / 3 * math.log(2), rel=1e-4)


def test_losses_reject_a_bad_mask():
    s = torch.eye(3)
    for loss_fn in (SymmetricInfoNCE(), SigmoidLoss()):
        with pytest.raises(ValueError, match="boolean mask of shape"):
            loss_fn(s, s, torch.eye(3))
        with pytest.raises(ValueError, match="boolean mask of shape"):
            loss_fn(s, s, torch.eye(2, dtype=torch.bool))


# ------------------------------------------------------------ sigmoid
def _direct_sigmoid(sx, sy, mask, temperature, bias):
    n = len(sx)
    total = 0.0
    for i in range(n):
        for j in range(n):
            z = 1.0 if mask[i, j] else -1.0
            logit = float(sx[i] @ sy[j]) / temperature + bias
            total += -math.log(1.0 / (1.0 + math.exp(-z * logit)))
    return total / n


@pytest.mark.parametrize("with_mask", [False, True])
def test_sigmoid_loss_matches_a_double_loop(with_mask):
    rng = np.random.RandomState(3)
    sx, sy = _unit(rng, 7, 4), _unit(rng, 7, 4)
    mask = _random_mask(rng, 7) if with_mask else None
    loss_fn = SigmoidLoss(temperature=0.2, bias=-3.0).double()
    loss = loss_fn(sx, sy, mask)
    expected = _direct_sigmoid(
        sx,
        sy,
        torch.eye(7, dtype=torch.bool) if mask is None else mask,
        loss_fn.temperature.item(),  # log T was held in float32
        -3.0,
    )
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    assert loss_fn.bias.grad is not None and loss_fn.log_temperature.grad is not None


def test_sigmoid_loss_temperature_and_bias():
    loss_fn = SigmoidLoss()
    assert float(loss_fn.temperature) == pytest.approx(0.1)
    assert float(loss_fn.bias.detach()) == -10.0
    with torch.no_grad():
        loss_fn.log_temperature.fill_(math.log(9.0))
    loss_fn.clamp_()
    assert float(loss_fn.temperature) == pytest.approx(0.5)
    fixed = SigmoidLoss(learn_temperature=False)
    assert not fixed.log_temperature.requires_grad and fixed.bias.requires_grad


# ------------------------------------------------------------ positive masks
def _brute_force_mask(g, mixing):
    g = g.tolist()
    if not mixing:
        return torch.tensor([[a == b for b in g] for a in g])
    half = len(g) // 2
    pairs = list(zip(g[:half], g[half:]))
    return torch.tensor([[p == q for q in pairs] for p in pairs])


@pytest.mark.parametrize("mixing", [False, True])
def test_positive_mask_matches_brute_force(mixing):
    rng = np.random.RandomState(4)
    for _ in range(20):
        g = torch.tensor(rng.randint(0, 3, size=16))
        mask = positive_mask(g, mixing, diagonal_as_none=False)
        assert torch.equal(mask, _brute_force_mask(g, mixing))
        assert mask.diagonal().all()


def test_positive_mask_does_not_count_swapped_mixtures():
    # rows mixed from (a, b) and (b, a): the same items, other weights
    g = torch.tensor([1, 2, 2, 1])
    assert positive_mask(g, mixing=True) is None
    assert torch.equal(
        positive_mask(g, mixing=True, diagonal_as_none=False), torch.eye(2).bool()
    )


def test_positive_mask_is_none_when_every_item_is_distinct():
    g = torch.arange(8)
    assert positive_mask(g) is None and positive_mask(g, mixing=True) is None
    assert torch.equal(positive_mask(g, diagonal_as_none=False), torch.eye(8).bool())


def test_mixed_positives_are_exactly_the_identical_mixtures():
    # Features that depend on the item only: two mixed rows are the same
    # point exactly when the mask calls them positives (lam != 0.5).
    rng = np.random.RandomState(5)
    g = torch.tensor(rng.randint(0, 3, size=24))
    z = F.one_hot(g, 3).double()
    mixed, _ = fusemix(z, z, torch.tensor(0.3, dtype=torch.float64))
    same = (mixed[:, None, :] == mixed[None, :, :]).all(dim=-1)
    assert torch.equal(positive_mask(g, mixing=True, diagonal_as_none=False), same)


def test_positive_mask_rejects_bad_codes():
    with pytest.raises(ValueError, match="one code per row"):
        positive_mask(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="2B rows"):
        positive_mask(torch.arange(5), mixing=True)


# ------------------------------------------------------------ STRUCTURE
def _direct_structure(z, s, temperature, levels):
    def neighbourhoods(a):
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        a = a - a.mean(axis=0)
        logits = a @ a.T / temperature
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    p, q = neighbourhoods(z), neighbourhoods(s)
    total = 0.0
    for level in range(1, levels + 1):
        pl, ql = np.linalg.matrix_power(p, level), np.linalg.matrix_power(q, level)
        m = 0.5 * (pl + ql)
        js = 0.5 * (pl * np.log(pl / m)).sum(axis=1) + 0.5 * (ql * np.log(ql / m)).sum(
            axis=1
        )
        total += js.mean()
    return total / levels


@pytest.mark.parametrize("levels", [1, 3])
def test_structure_matches_a_direct_computation(levels):
    rng = np.random.RandomState(6)
    z, s = rng.normal(size=(10, 6)), rng.normal(size=(10, 3))
    reg = StructureRegularizer(temperature=0.5, levels=levels)
    value = reg(torch.tensor(z), torch.tensor(s))
    assert value.dtype == torch.float64
    assert value.item() == pytest.approx(_direct_structure(z, s, 0.5, levels), rel=1e-8)


def test_structure_is_zero_for_the_same_geometry_and_positive_otherwise():
    rng = np.random.RandomState(7)
    z = torch.tensor(rng.normal(size=(12, 5)), dtype=torch.float32)
    reg = StructureRegularizer(temperature=0.1)
    assert reg(z, z).item() == 0.0
    rotation = torch.linalg.qr(torch.tensor(rng.normal(size=(5, 5)))).Q.float()
    assert abs(reg(z, z @ rotation).item()) < 1e-5  # cosines are rotation-invariant
    other = torch.tensor(rng.normal(size=(12, 5)), dtype=torch.float32)
    assert 1e-3 < reg(z, other).item() <= math.log(2)


def test_structure_gradient_reaches_the_aligned_side_only():
    rng = np.random.RandomState(8)
    z = torch.tensor(rng.normal(size=(8, 4)), requires_grad=True)
    s = torch.tensor(rng.normal(size=(8, 3)), requires_grad=True)
    StructureRegularizer(temperature=0.2)(z, s).backward()
    assert z.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_structure_levels_change_the_value():
    rng = np.random.RandomState(9)
    z = torch.tensor(rng.normal(size=(12, 4)))
    s = torch.tensor(rng.normal(size=(12, 4)))
    one = StructureRegularizer(temperature=0.2, levels=1)(z, s).item()
    two = StructureRegularizer(temperature=0.2, levels=2)(z, s).item()
    assert abs(one - two) > 1e-4


def test_structure_rejects_bad_parameters():
    with pytest.raises(ValueError, match="levels"):
        StructureRegularizer(levels=0)
    with pytest.raises(ValueError, match="temperature"):
        StructureRegularizer(temperature=0.0)
    with pytest.raises(ValueError, match="same rows"):
        StructureRegularizer()(torch.zeros(3, 2), torch.zeros(4, 2))


# ------------------------------------------------------------ batches
def test_group_codes_follow_the_rows_through_both_sources():
    n = 203
    rows = np.arange(n, dtype=np.float32)[:, None].repeat(2, axis=1)
    codes = np.arange(n, dtype=np.int64)  # code = row index = feature
    keep = np.ones(n, dtype=bool)
    keep[::7] = False
    sources = [
        DeviceBatches(torch.from_numpy(rows), torch.from_numpy(2 * rows), codes),
        StreamBatches(rows, 2 * rows, CPU, torch.float32, 32, groups=codes),
        StreamBatches(rows, 2 * rows, CPU, torch.float32, 48, keep=keep, groups=codes),
        StreamBatches(rows, 2 * rows, CPU, torch.bfloat16, 40, groups=codes),
    ]
    for source in sources:
        assert not source.shared_groups
        for epoch in range(2):
            seen = []
            for zx, zy, g in source.epoch(epoch, 6, torch.Generator().manual_seed(0)):
                assert g.dtype == torch.int64
                # the codes of these rows (bfloat16 holds integers to 256 exactly)
                assert torch.equal(g, zx[:, 0].long())
                torch.testing.assert_close(zy, 2 * zx)
                seen.append(g)
            seen = torch.cat(seen)
            assert len(seen) == source.n // 6 * 6 and len(seen.unique()) == len(seen)
            if source.path == "stream" and source.keep is not None:
                assert keep[seen.numpy()].all()
        source.close()


def test_groups_are_validated():
    Z = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="one integer code per row"):
        DeviceBatches(Z, Z, np.zeros(4))
    with pytest.raises(ValueError, match="one integer code per row"):
        DeviceBatches(Z, Z, np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="one integer code per row"):
        StreamBatches(Z.numpy(), Z.numpy(), CPU, torch.float32, 4, groups=[0.5] * 4)
    codes = np.array([0, 0, 1, 2], dtype=np.int32)
    assert DeviceBatches(Z, Z, codes).shared_groups
    assert codes.dtype == np.int32  # input untouched
    assert not DeviceBatches(Z, Z, torch.arange(4)).shared_groups


# ------------------------------------------------------------ training
def _captions(n_items=16, per_item=3, seed=0):
    """Each x item with ``per_item`` y rows (captions): x rows repeat."""
    rng = np.random.RandomState(seed)
    items = rng.normal(size=(n_items, 6)).astype(np.float32)
    codes = np.repeat(np.arange(n_items), per_item)
    Zx = items[codes]
    Zy = (items @ rng.normal(size=(6, 5)))[codes] + 0.3 * rng.normal(
        size=(len(codes), 5)
    )
    return Zx, Zy.astype(np.float32), codes


def _plan(n, alpha=1.0, **kw):
    return FitPlan(
        n_samples=n,
        batch_size=8,
        max_epochs=3,
        alpha=alpha,
        learning_rate=1e-2,
        weight_decay=0.0,
        warmup_steps=0,
        seed=0,
        **kw,
    )


def _fit(batches, plan, loss_fn=None, regularizer=None):
    torch.manual_seed(0)
    hx, hy = torch.nn.Linear(6, 4), torch.nn.Linear(5, 4)
    loss_fn = loss_fn or SymmetricInfoNCE(0.1)
    result = _loop.train(hx, hy, loss_fn, batches, plan, regularizer=regularizer)
    weights = torch.cat(
        [p.detach().flatten() for m in (hx, hy) for p in m.parameters()]
    )
    return result, weights


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_training_with_groups_is_the_same_through_both_sources(alpha):
    # One window holding every row, one chunk: the streamed epoch is the
    # device epoch, so the codes, batches and fit must agree exactly.
    Zx, Zy, codes = _captions()
    n = len(codes)
    device = DeviceBatches(torch.from_numpy(Zx), torch.from_numpy(Zy), codes)
    stream = StreamBatches(
        Zx, Zy, CPU, torch.float32, n, chunks_per_window=1, groups=codes
    )
    assert device.shared_groups and stream.shared_groups
    for zx_d, zx_s in zip(
        device.epoch(0, 16, torch.Generator().manual_seed(3)),
        stream.epoch(0, 16, torch.Generator().manual_seed(3)),
    ):
        for a, b in zip(zx_d, zx_s):
            assert torch.equal(a, b)
    plan = _plan(n, alpha)
    (r_dev, w_dev), (r_str, w_str) = _fit(device, plan), _fit(stream, plan)
    assert r_dev.history["loss"] == r_str.history["loss"]
    assert torch.equal(w_dev, w_str)
    # the captions' positives change the fit
    plain = DeviceBatches(torch.from_numpy(Zx), torch.from_numpy(Zy))
    r_plain, w_plain = _fit(plain, plan)
    assert not torch.equal(w_plain, w_dev)
    stream.close()


class _RecordingLoss(SymmetricInfoNCE):
    def __init__(self):
        super().__init__(0.1)
        self.masks = []

    def forward(self, sx, sy, positives=None):
        self.masks.append(positives)
        return super().forward(sx, sy, positives)


class _RecordingLinear(torch.nn.Linear):
    def __init__(self, *args):
        super().__init__(*args)
        self.seen = []

    def forward(self, z):
        self.seen.append(z.detach().clone())
        return super().forward(z)


def test_training_positives_are_the_identical_mixtures():
    # x rows one-hot of their item: the loop's mask must mark exactly the
    # pairs of mixed rows that are the same point.
    codes = np.repeat(np.arange(6), 4)
    Z = torch.eye(6)[codes]
    batches = DeviceBatches(Z, Z, codes)
    loss_fn, hx, hy = _RecordingLoss(), _RecordingLinear(6, 3), _RecordingLinear(6, 3)
    _loop.train(hx, hy, loss_fn, batches, _plan(len(codes)))
    assert len(loss_fn.masks) == 3 and len(hx.seen) == 3
    for mask, mixed in zip(loss_fn.masks, hx.seen):
        same = (mixed[:, None, :] == mixed[None, :, :]).all(dim=-1)
        assert torch.equal(mask, same)


def test_distinct_groups_train_exactly_as_without_groups():
    Zx, Zy, _ = _captions(n_items=48, per_item=1)
    Zx, Zy = torch.from_numpy(Zx), torch.from_numpy(Zy)
    plan = _plan(48)
    _, with_codes = _fit(DeviceBatches(Zx, Zy, np.arange(48)), plan)
    _, without = _fit(DeviceBatches(Zx, Zy), plan)
    assert torch.equal(with_codes, without)


def test_training_with_structure_regularizer():
    Zx, Zy, _ = _captions(n_items=48, per_item=1)
    batches = DeviceBatches(torch.from_numpy(Zx), torch.from_numpy(Zy))
    reg = StructureRegularizer(temperature=0.1, levels=2)
    r_plain, w_plain = _fit(batches, _plan(48))
    r_reg, w_reg = _fit(
        batches, _plan(48, structure_weight=5.0, structure_warmup=3), regularizer=reg
    )
    assert not torch.equal(w_plain, w_reg)
    assert r_reg.history["loss"] != r_plain.history["loss"]
    # weight 0: the regulariser is not used at all
    _, w_zero = _fit(batches, _plan(48), regularizer=reg)
    assert torch.equal(w_zero, w_plain)
    with pytest.raises(ValueError, match="needs a regularizer"):
        _fit(batches, _plan(48, structure_weight=1.0))


def test_structure_weights_ramp():
    np.testing.assert_allclose(
        _loop.structure_weights(2.0, 4, 6), [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    )
    np.testing.assert_array_equal(_loop.structure_weights(3.0, 0, 3), [3.0] * 3)


def test_make_step_adds_the_weighted_regularizer():
    torch.manual_seed(0)
    hx, hy = torch.nn.Linear(4, 3), torch.nn.Linear(5, 3)
    loss_fn = SymmetricInfoNCE(0.1)
    reg = StructureRegularizer(temperature=0.2)
    opt = torch.optim.SGD([*hx.parameters(), *hy.parameters()], lr=0.0)
    step = _loop.make_step(hx, hy, loss_fn, opt, regularizer=reg)
    zx, zy = torch.randn(8, 4), torch.randn(8, 5)
    base = step(zx, zy)
    with torch.no_grad():
        sx, sy = F.normalize(hx(zx), dim=-1), F.normalize(hy(zy), dim=-1)
        expected = base + 0.7 * 0.5 * (reg(zx, sx) + reg(zy, sy))
    torch.testing.assert_close(step(zx, zy, reg_weight=0.7), expected)
    mask = torch.eye(8, dtype=torch.bool)
    mask[0, 1] = mask[1, 0] = True
    assert step(zx, zy, mask).item() != pytest.approx(base.item())
