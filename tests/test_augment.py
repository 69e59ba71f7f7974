"""Differentiable augmentation (train/augment.py): each transform does what DiffAugment does, gradients
pass through, N ranks augment exactly as one process does, and the step applies it to D's inputs."""
from __future__ import annotations

import pytest
import torch

from gan_bench.config import build_config
from gan_bench.errors import ConfigError
from gan_bench.train import augment as aug
from gan_bench.train.augment import AUGMENTS, Draws, augment, parse_policy
from gan_bench.train.plan import make_plan


class Fixed(Draws):
    """Draws whose values a test chooses: rand -> `u`, randint -> `i` (broadcast to the shape asked)."""

    def __init__(self, b: int, *, u: float = 0.5, i: int = 0) -> None:
        super().__init__(b, torch.device("cpu"))
        object.__setattr__(self, "u", u), object.__setattr__(self, "i", i)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.full((self.b, *shape), self.u)

    def randint(self, lo: int, hi: int, *shape: int) -> torch.Tensor:
        assert lo <= self.i < hi
        return torch.full((self.b, *shape), self.i, dtype=torch.long)


def images(b: int = 4, c: int = 3, size: int = 16) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(b, c, size, size) * 2 - 1


def test_policy_names_are_checked():
    assert parse_policy("") == () and parse_policy(" color, cutout ") == ("color", "cutout")
    with pytest.raises(ConfigError, match="unknown augmentation 'trnslation'.*'translation'"):
        parse_policy("color,trnslation")
    with pytest.raises(ConfigError, match="unknown augmentation"):
        make_plan(build_config([{"train": {"diffaug": "flip"}}]))
    x = images()
    assert augment(x, ()) is x  # off: the very tensor, no draw


def test_translation_shifts_content_and_pads_with_zeros():
    x = images()
    same = aug.translation(x, Fixed(4, i=0))
    assert torch.equal(same, x)
    moved = aug.translation(x, Fixed(4, i=2))  # +2 rows and +2 columns: output[h, w] = input[h + 2, w + 2]
    assert torch.equal(moved[:, :, :-2, :-2], x[:, :, 2:, 2:])
    assert torch.all(moved[:, :, -2:, :] == 0) and torch.all(moved[:, :, :, -2:] == 0)
    with pytest.raises(AssertionError):  # the shift is at most 1/8 of the size
        aug.translation(x, Fixed(4, i=3))


def test_cutout_zeroes_one_half_size_square():
    x = images(size=16)
    out = aug.cutout(x, Fixed(4, i=8))  # centre (8, 8): rows and columns 4 .. 11
    mask = torch.ones(16, 16)
    mask[4:12, 4:12] = 0
    assert torch.equal(out, x * mask)


def test_color_is_brightness_saturation_contrast():
    x = images()
    # u = 0.5: brightness + 0, saturation x 1, contrast x 1: the identity
    torch.testing.assert_close(aug.color(x, Fixed(4, u=0.5)), x)
    out = aug.color(x, Fixed(4, u=0.75))  # + 0.25, saturation x 1.5, contrast x 1.25
    y = x + 0.25
    y = (y - y.mean(1, keepdim=True)) * 1.5 + y.mean(1, keepdim=True)
    y = (y - y.mean([1, 2, 3], keepdim=True)) * 1.25 + y.mean([1, 2, 3], keepdim=True)
    torch.testing.assert_close(out, y)


def test_gradients_pass_through_every_augmentation():
    x = images().requires_grad_(True)
    augment(x, tuple(AUGMENTS.names())).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("ranks", [2, 4])
def test_ranks_augment_their_rows_of_the_global_batch(ranks: int):
    """Each rank's rows, augmented with that rank's draws, are the rows of the global batch augmented at once."""
    x = images(b=8)
    policy = ("color", "translation", "cutout")
    torch.manual_seed(3)
    whole = augment(x, policy)
    n = len(x) // ranks
    for r in range(ranks):
        torch.manual_seed(3)
        part = augment(x[r * n:(r + 1) * n], policy, rank=r, ranks=ranks)
        torch.testing.assert_close(part, whole[r * n:(r + 1) * n], rtol=0, atol=1e-6)


def test_draws_do_not_depend_on_the_image_precision():
    x = images()
    torch.manual_seed(5)
    full = augment(x, ("color", "translation", "cutout"))
    torch.manual_seed(5)
    half = augment(x.bfloat16(), ("color", "translation", "cutout"))
    torch.testing.assert_close(half.float(), full, rtol=0, atol=0.05)


def test_the_step_augments_every_image_d_sees():
    from gan_bench.config import ModelConfig, TrainConfig
    from gan_bench.data.base import DataSpec
    from gan_bench.models import build_model
    from gan_bench.train.speed import SpeedSwitches, adam
    from gan_bench.train.recipe import Recipe
    from gan_bench.train.step import gan_step

    gan = build_model(ModelConfig(name="convdcgan", width=4, nz=8), DataSpec("s", 32, 3, 0, []))
    seen = []
    gan.D.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    opt_g, opt_d = (adam(m.parameters(), lr=1e-3, betas=(0.5, 0.999), speed=SpeedSwitches()) for m in (gan.G, gan.D))
    gan_step(Recipe.of(TrainConfig(diffaug="cutout")), gan, opt_d, opt_g, images(b=4, size=32), None)
    assert len(seen) == 3  # real, fake in the D step, fake in the G step
    for x in seen:  # every image has zeros in all channels: a 16 x 16 square, at least its quarter at a corner
        assert ((x == 0).all(1).flatten(1).sum(1) >= 8 * 8).all()
