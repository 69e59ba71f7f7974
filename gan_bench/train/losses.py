"""The GAN losses the step can train with, as a registry (train.loss names one).

A loss is two functions of D's logits, both taking float32 and returning a () mean over the batch:
  d(logits (B,), targets (B,)) -> D's loss on one side of the batch; targets in [0, 1], 1 = real
                                  (the step calls it for the real and the fake images and adds them)
  g(logits (B,))               -> G's loss on D's logits of G(z)
D's targets carry the seeds' stabilisers: one-sided smoothing draws the real targets from
train.real_label_range and train.label_flip swaps a target t for 1 - t. A loss whose `soft_targets`
is False only knows the two sides (hinge): it takes flips but refuses smoothed targets.

Register your own with
    @LOSSES.register("wgan", soft_targets=False, description="...")  (on a Loss(d=..., g=...))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from gan_bench.registry import Registry


class Loss(NamedTuple):
    d: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g: Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LossInfo:
    """soft_targets: targets strictly between 0 and 1 mean something (label smoothing applies)."""

    soft_targets: bool = True
    description: str = ""


LOSSES: Registry[Loss, LossInfo] = Registry("loss", LossInfo)


def _bce_g(logits: torch.Tensor) -> torch.Tensor:
    # non-saturating: G maximises log D(G(z)) instead of minimising log(1 - D(G(z)))
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


LOSSES.register("bce", description="the shared recipe: BCE from logits, non-saturating G loss")(
    Loss(d=F.binary_cross_entropy_with_logits, g=_bce_g))


def _hinge_d(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    sign = 2 * targets - 1  # real +1, fake -1: relu(1 - D(x)) and relu(1 + D(G(z)))
    return F.relu(1 - sign * logits).mean()


LOSSES.register("hinge", soft_targets=False,
                description="hinge D loss, G loss -D(G(z)) (Lim & Ye 2017; SN-GAN, BigGAN)")(
    Loss(d=_hinge_d, g=lambda logits: -logits.mean()))


def _ls_d(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return 0.5 * (logits - targets).pow(2).mean()


LOSSES.register("lsgan", description="least squares, 0-1 coding (Mao et al. 2017)")(
    Loss(d=_ls_d, g=lambda logits: 0.5 * (logits - 1).pow(2).mean()))
