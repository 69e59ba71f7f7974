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
from gan_bench.train.losses import LOSSES, Loss
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
