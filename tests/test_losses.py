"""The loss registry (train/losses.py): each loss computes its paper's formula from D's logits, the
targets carry smoothing and flips where they apply, and gan_step trains with the loss it is named."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from gan_bench.config import ModelConfig, TrainConfig, build_config
from gan_bench.data.base import DataSpec
from gan_bench.errors import ConfigError
from gan_bench.models import build_model
from gan_bench.train.speed import SpeedSwitches, adam
from gan_bench.train.losses import LOSSES, Loss, d_loss, g_loss, side_loss
from gan_bench.train.plan import make_plan
from gan_bench.train.recipe import Recipe
from gan_bench.train.step import gan_step

LOGITS = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.5, 4.0])


def test_bce_is_the_shared_recipe():
    bce = LOSSES.get("bce")
    t = torch.tensor([1.0, 0.9, 0.7, 0.0, 0.0, 1.0])  # smoothed real and flipped targets
    p = torch.sigmoid(LOGITS)
    expected = -(t * p.log() + (1 - t) * (1 - p).log()).mean()
    torch.testing.assert_close(bce.d(LOGITS, t), expected)
    torch.testing.assert_close(bce.g(LOGITS), -p.log().mean())  # non-saturating: -log D(G(z))
    assert LOSSES.info("bce").soft_targets


def test_hinge_margins_and_flips():
    hinge = LOSSES.get("hinge")
    ones, zeros = torch.ones(6), torch.zeros(6)
    torch.testing.assert_close(hinge.d(LOGITS, ones), F.relu(1 - LOGITS).mean())   # real: max(0, 1 - D(x))
    torch.testing.assert_close(hinge.d(LOGITS, zeros), F.relu(1 + LOGITS).mean())  # fake: max(0, 1 + D(G(z)))
    flipped = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])  # a flipped target takes the other side's margin
    expected = torch.where(flipped > 0, F.relu(1 - LOGITS), F.relu(1 + LOGITS)).mean()
    torch.testing.assert_close(hinge.d(LOGITS, flipped), expected)
    torch.testing.assert_close(hinge.g(LOGITS), -LOGITS.mean())
    assert not LOSSES.info("hinge").soft_targets


def test_lsgan_is_mao_et_al_0_1_coding():
    ls = LOSSES.get("lsgan")
    t = torch.tensor([1.0, 0.8, 0.0, 0.0, 1.0, 0.2])
    torch.testing.assert_close(ls.d(LOGITS, t), 0.5 * ((LOGITS - t) ** 2).mean())
    torch.testing.assert_close(ls.g(LOGITS), 0.5 * ((LOGITS - 1) ** 2).mean())


def test_losses_are_an_extension_point():
    with pytest.raises(ValueError, match="already registered"):
        LOSSES.register("bce")(Loss(d=lambda x, t: x.mean(), g=lambda x: x.mean()))
    with pytest.raises(TypeError, match="LossInfo"):
        LOSSES.register("wgan", better="lower")
    with pytest.raises(ConfigError, match="unknown loss 'hnige'.*'hinge'"):
        make_plan(build_config([{"train": {"loss": "hnige"}}]))


def test_hinge_refuses_smoothed_targets_but_takes_flips():
    make_plan(build_config([{"train": {"loss": "hinge", "label_flip": 0.1}}]))
    with pytest.raises(ConfigError, match="only hard targets"):
        make_plan(build_config([{"train": {"loss": "hinge", "real_label_range": [0.8, 1.0]}}]))


@pytest.mark.parametrize("name", ["hinge", "lsgan"])
def test_gan_step_uses_the_named_loss(name: str):
    """One step by hand with the registry's functions equals gan_step with train.loss=name."""
    spec = DataSpec("s", 28, 1, 3, ["a", "b", "c"])
    torch.manual_seed(0)
    base = build_model(ModelConfig(name="cdcgan", width=4, nz=8), spec)
    x, y = torch.rand(6, 1, 28, 28) * 2 - 1, torch.arange(3).repeat(2)
    loss = LOSSES.get(name)

    gan = copy.deepcopy(base)
    opt_g, opt_d = (adam(m.parameters(), lr=1e-3, betas=(0.5, 0.999), speed=SpeedSwitches()) for m in (gan.G, gan.D))
    torch.manual_seed(1)
    out = gan_step(Recipe.of(TrainConfig(loss=name)), gan, opt_d, opt_g, x, y)

    ref = copy.deepcopy(base)
    ref_g, ref_d = (adam(m.parameters(), lr=1e-3, betas=(0.5, 0.999), speed=SpeedSwitches()) for m in (ref.G, ref.D))
    torch.manual_seed(1)
    z = torch.randn(6, 8)
    fake = ref.G(z, y)
    torch.empty(6).uniform_(1.0, 1.0)  # gan_step's draw of the real targets
    loss_d = loss.d(ref.D(x, y), torch.ones(6)) + loss.d(ref.D(fake.detach(), y), torch.zeros(6))
    ref_d.zero_grad(), loss_d.backward(), ref_d.step()
    loss_g = loss.g(ref.D(fake, y))
    ref_g.zero_grad(), loss_g.backward(), ref_g.step()

    assert out.loss_d.item() == pytest.approx(loss_d.item(), rel=1e-6)
    assert out.loss_g.item() == pytest.approx(loss_g.item(), rel=1e-6)
    for a, b in zip(gan.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_mismatch_shows_d_real_images_with_another_class_as_fakes():
    """train.mismatch: D's loss gains w * d(D(x, wrong), 0), every wrong label differing from the true one."""
    spec = DataSpec("s", 28, 1, 3, ["a", "b", "c"])
    torch.manual_seed(0)
    base = build_model(ModelConfig(name="cdcgan", width=4, nz=8), spec)
    x, y = torch.rand(60, 1, 28, 28) * 2 - 1, torch.arange(3).repeat(20)
    seen = []
    gan = copy.deepcopy(base)
    forward = gan.D.forward
    gan.D.forward = lambda images, labels: seen.append((images, labels)) or forward(images, labels)
    opt_g, opt_d = (adam(m.parameters(), lr=1e-3, betas=(0.5, 0.999), speed=SpeedSwitches()) for m in (gan.G, gan.D))
    torch.manual_seed(1)
    out = gan_step(Recipe.of(TrainConfig(mismatch=0.5)), gan, opt_d, opt_g, x, y)
    assert len(seen) == 4  # real, fake, real with wrong labels; then G's step
    images, wrong = seen[2]
    assert torch.equal(images, x) and bool((wrong != y).all()) and set(wrong.tolist()) == {0, 1, 2}

    ref = copy.deepcopy(base)
    torch.manual_seed(1)
    fake = ref.G(torch.randn(60, 8), y)
    torch.empty(60).uniform_(1.0, 1.0)
    bce = LOSSES.get("bce")
    expected = (bce.d(ref.D(x, y), torch.ones(60)) + bce.d(ref.D(fake.detach(), y), torch.zeros(60))
                + 0.5 * bce.d(ref.D(x, wrong), torch.zeros(60)))
    assert out.loss_d.item() == pytest.approx(expected.item(), rel=1e-6)


def test_mismatch_needs_a_model_that_reads_the_label():
    make_plan(build_config([{"train": {"mismatch": 1.0}}]))
    with pytest.raises(ConfigError, match="reads no label"):
        make_plan(build_config([{"model": {"name": "convdcgan"}, "train": {"mismatch": 1.0}}]))


# ---- both sides: the relativistic average loss, and how the step combines a loss's parts -------------

def _bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    return -(targets * p.log() + (1 - targets) * (1 - p).log()).mean()


def test_ragan_is_jolicoeur_martineau_relativistic_average_bce():
    ragan = LOSSES.get("ragan")
    real, fake = LOGITS, torch.tensor([0.5, -1.0, 2.0, -0.2, 0.1, -3.0])
    t_real, t_fake = torch.tensor([1.0, 0.9, 1.0, 0.0, 1.0, 1.0]), torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    # D~(x_r) = sigmoid(C(x_r) - E C(x_f)), D~(x_f) = sigmoid(C(x_f) - E C(x_r)) (the paper's RaSGAN)
    expected_d = _bce(real - fake.mean(), t_real) + _bce(fake - real.mean(), t_fake)
    torch.testing.assert_close(d_loss(ragan, real, fake, t_real, t_fake), expected_d)
    expected_g = _bce(fake - real.mean(), torch.ones(6)) + _bce(real - fake.mean(), torch.zeros(6))
    torch.testing.assert_close(g_loss(ragan, real, fake), expected_g)
    assert ragan.both_sides and LOSSES.info("ragan").soft_targets


def test_ragan_gives_g_a_gradient_through_the_fakes_in_both_terms():
    ragan = LOSSES.get("ragan")
    fake = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    g_loss(ragan, torch.tensor([1.0, 2.0, 0.0]), fake).backward()
    # a per-side loss would move each fake by its own term only; here every fake also shifts the real's
    # comparison, so the gradient is not the elementwise one of -log sigmoid(fake - mean real)
    alone = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    _bce(alone - 1.0, torch.ones(3)).backward()
    assert fake.grad is not None and not torch.allclose(fake.grad, alone.grad)


def test_a_loss_of_both_sides_compares_each_class_pair_with_its_own_images():
    """Per-class models (rows class-fastest): the mean of the pairs' losses, each over its own rows."""
    ragan, k = LOSSES.get("ragan"), 3
    real, fake = torch.randn(12), torch.randn(12)
    ones, zeros = torch.ones(12), torch.zeros(12)
    pairs = [d_loss(ragan, real[i::k], fake[i::k], ones[i::k], zeros[i::k]) for i in range(k)]
    torch.testing.assert_close(d_loss(ragan, real, fake, ones, zeros, pairs=k), sum(pairs) / k)
    assert not torch.allclose(d_loss(ragan, real, fake, ones, zeros, pairs=k), d_loss(ragan, real, fake, ones, zeros))
    gs = [g_loss(ragan, real[i::k], fake[i::k]) for i in range(k)]
    torch.testing.assert_close(g_loss(ragan, real, fake, pairs=k), sum(gs) / k)


@pytest.mark.parametrize("name", ["bce", "hinge", "lsgan"])
def test_a_per_side_loss_is_the_sum_of_its_sides_whatever_the_pairs(name: str):
    loss = LOSSES.get(name)
    real, fake, t = torch.randn(6), torch.randn(6), torch.ones(6)
    expected = loss.d(real, t) + loss.d(fake, torch.zeros(6))
    torch.testing.assert_close(d_loss(loss, real, fake, t, torch.zeros(6)), expected)
    torch.testing.assert_close(d_loss(loss, real, fake, t, torch.zeros(6), pairs=3), expected)
    torch.testing.assert_close(g_loss(loss, None, fake, pairs=3), loss.g(fake))  # G's pass reads no real logits
    torch.testing.assert_close(side_loss(loss, fake, torch.zeros(6)), loss.d(fake, torch.zeros(6)))


def test_a_loss_must_take_what_its_form_passes_as_it_registers():
    with pytest.raises(TypeError, match="loss 'rel': d must take 4 tensor"):
        LOSSES.register("rel")(Loss(d=lambda logits, t: logits.mean(), g=lambda r, f: f.mean(), both_sides=True))
    with pytest.raises(TypeError, match="loss 'one': g must take 1 tensor"):
        LOSSES.register("one")(Loss(d=lambda logits, t: logits.mean(), g=lambda r, f: f.mean()))
    with pytest.raises(ValueError, match="no one-sided D loss"):
        side_loss(LOSSES.get("ragan"), torch.zeros(2), torch.zeros(2))
    assert "rel" not in LOSSES and "one" not in LOSSES
