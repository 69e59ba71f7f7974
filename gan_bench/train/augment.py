"""Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020), as a registry.

The same random transforms are applied to real and generated images before D, in the D step and in
the G step, and they are differentiable, so G learns through them: D sees more varied images without
G learning to produce augmented ones. The transforms follow mit-han-lab/data-efficient-gans
DiffAugment_pytorch.py for images in [-1, 1] (translation by up to 1/8 of the size with zero padding,
cutout of a half-size square, brightness, saturation and contrast).

train.diffaug names a policy: "color,translation,cutout" applies the three in that order. Random draws
follow the step's rule for torchrun (train/step.py): every rank draws for the global batch and keeps
its own rows, so N processes augment exactly as one would. Draws are float32 whatever the images'
precision, so the augmentation does not depend on the speed switches.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from gan_bench.registry import Registry


@dataclass(frozen=True)
class Draws:
    """Random tensors of a global batch of b * ranks rows, this rank's b rows."""

    b: int
    device: torch.device
    rank: int = 0
    ranks: int = 1

    def _own(self, t: torch.Tensor) -> torch.Tensor:
        return t[self.rank * self.b:(self.rank + 1) * self.b]

    def rand(self, *shape: int) -> torch.Tensor:
        """U[0, 1) of shape (b, *shape), float32."""
        return self._own(torch.rand(self.b * self.ranks, *shape, device=self.device))

    def randint(self, lo: int, hi: int, *shape: int) -> torch.Tensor:
        """Integers in [lo, hi) of shape (b, *shape)."""
        return self._own(torch.randint(lo, hi, (self.b * self.ranks, *shape), device=self.device))


@dataclass(frozen=True)
class AugmentInfo:
    description: str = ""


Augment = Callable[[torch.Tensor, Draws], torch.Tensor]  # (B, C, H, W) -> (B, C, H, W)
AUGMENTS: Registry[Augment, AugmentInfo] = Registry("augmentation", AugmentInfo)


def parse_policy(policy: str) -> tuple[str, ...]:
    """The names of a train.diffaug policy ("" -> none); an unknown name is a ConfigError listing the valid."""
    names = tuple(n.strip() for n in policy.split(",") if n.strip())
    for n in names:
        AUGMENTS.entry(n)
    return names


def resolve_policy(policy: str) -> tuple[Augment, ...]:
    """The functions of a train.diffaug policy, looked up once (the run plan's recipe holds them)."""
    return tuple(AUGMENTS.get(n) for n in parse_policy(policy))


def augment(x: torch.Tensor, policy: Sequence[str | Augment], *, rank: int = 0, ranks: int = 1) -> torch.Tensor:
    """x (B, C, H, W) in [-1, 1], rank's rows of a global batch, through each augmentation of policy
    (registered names, or the functions resolve_policy returned)."""
    if not policy:
        return x
    draws = Draws(len(x), x.device, rank, ranks)
    for fn in policy:
        x = (fn if callable(fn) else AUGMENTS.get(fn))(x, draws)
    return x


@AUGMENTS.register("color", description="random brightness, saturation and contrast per image")
def color(x: torch.Tensor, draws: Draws) -> torch.Tensor:
    x = x + (draws.rand(1, 1, 1).to(x.dtype) - 0.5)                               # brightness
    mean = x.mean(dim=1, keepdim=True)                                             # (a no-op on grey)
    x = (x - mean) * (draws.rand(1, 1, 1).to(x.dtype) * 2) + mean                  # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (draws.rand(1, 1, 1).to(x.dtype) + 0.5) + mean             # contrast


def _grid(b: int, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    return torch.meshgrid(torch.arange(b, device=device), torch.arange(h, device=device),
                          torch.arange(w, device=device), indexing="ij")


@AUGMENTS.register("translation", description="random shift by up to 1/8 of the size, zero padding")
def translation(x: torch.Tensor, draws: Draws) -> torch.Tensor:
    b, _, h, w = x.shape
    sx, sy = h // 8, w // 8
    tx, ty = draws.randint(-sx, sx + 1, 1, 1), draws.randint(-sy, sy + 1, 1, 1)  # (B, 1, 1)
    gb, gx, gy = _grid(b, h, w, x.device)
    gx = torch.clamp(gx + tx + 1, 0, h + 1)  # +1: into the 1-pixel zero border, which fills the gap
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    return F.pad(x, [1, 1, 1, 1])[gb, :, gx, gy].permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)


@AUGMENTS.register("cutout", description="a random half-size square set to zero")
def cutout(x: torch.Tensor, draws: Draws) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = h // 2, w // 2
    ox = draws.randint(0, h + (1 - ch % 2), 1, 1)  # the square's centre, (B, 1, 1)
    oy = draws.randint(0, w + (1 - cw % 2), 1, 1)
    gb, gx, gy = _grid(b, ch, cw, x.device)
    gx = torch.clamp(gx + ox - ch // 2, 0, h - 1)
    gy = torch.clamp(gy + oy - cw // 2, 0, w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)
