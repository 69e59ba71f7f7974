"""The recipe a step trains with, built once by the run plan (plan.py) and handed to every step.

Everything gan_step needs beyond the batch and the model: the loss object and the augmentation functions
(looked up once, never by name inside the loop), D's targets (smoothing, flips), the instance noise and its
decay, the matching-aware D, how many class pairs a step trains (and so how its losses scale), and where
the step runs (autocast dtype, this process's rank). A Recipe is frozen: the run's recipe cannot drift.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch

from gan_bench.config import TrainConfig
from gan_bench.train.augment import Augment, resolve_policy
from gan_bench.train.losses import LOSSES, Loss


@dataclass(frozen=True)
class Recipe:
    loss: Loss
    augments: tuple[Augment, ...] = ()             # DiffAugment's functions, in policy order
    real_label_range: tuple[float, float] = (1.0, 1.0)
    label_flip: float = 0.0
    mismatch: float = 0.0                          # weight of D's loss on real images with a wrong label
    instance_noise: float = 0.0
    instance_noise_steps: int = 0
    pairs: int = 1                                 # class pairs one step trains (classdcgan: K)
    amp_dtype: Optional[torch.dtype] = None        # the speed switches' autocast dtype (None: float32)
    rank: int = 0                                  # this process's shard of the global batch (torchrun)
    ranks: int = 1

    @classmethod
    def of(cls, train: TrainConfig) -> "Recipe":
        """The recipe of train's keys (names checked by the plan before this is built)."""
        return cls(loss=LOSSES.get(train.loss), augments=resolve_policy(train.diffaug),
                   real_label_range=tuple(train.real_label_range), label_flip=train.label_flip,
                   mismatch=train.mismatch, instance_noise=train.instance_noise,
                   instance_noise_steps=train.instance_noise_steps)

    def sigma(self, step: int) -> float:
        """Instance noise at `step` (steps done before this one): linear decay to zero over
        instance_noise_steps, or constant when that is 0."""
        s0, n = self.instance_noise, self.instance_noise_steps
        return s0 if n == 0 else s0 * max(0.0, 1.0 - step / n)

    def on(self, **where: object) -> "Recipe":
        """The same recipe with pairs, amp_dtype, rank or ranks set (plan.py binds them to the run)."""
        return dataclasses.replace(self, **where)
