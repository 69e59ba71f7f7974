"""The trainer's D+G step as one function.

gan_step() is the step the trainer's loop (loop.py) takes, so a benchmark can time the bare step on
synthetic inputs and a test can check it against the trainer. What it computes is the run plan's
Recipe (recipe.py: the loss object and augmentations built once); the speed switches around it are in
speed.py.
"""
from __future__ import annotations

import contextlib
from typing import NamedTuple, Optional

import torch
from gan_bench.models import GAN
from gan_bench.train.augment import augment
from gan_bench.train.distributed import no_sync
from gan_bench.train.losses import d_loss, g_loss, side_loss
from gan_bench.train.recipe import Recipe


class StepOutput(NamedTuple):
    """What the trainer logs: the losses (means over the batch, whatever the number of pairs) and logits."""

    loss_d: torch.Tensor   # () D loss
    loss_g: torch.Tensor   # () G loss
    d_real: torch.Tensor   # (B,) D logits on real images
    d_fake: torch.Tensor   # (B,) D logits on G(z), before D's update


def noisy(x: torch.Tensor, sigma: float, *, rank: int = 0, ranks: int = 1) -> torch.Tensor:
    """Instance noise: x + N(0, sigma^2) (no draw at all when sigma is 0). x is rank's rows of a global
    batch of len(x) * ranks: the noise is rank's rows of the global draw, in x's memory layout."""
    if sigma <= 0:
        return x
    if ranks == 1:
        return x + sigma * torch.randn_like(x)
    full = x.new_empty((len(x) * ranks, *x.shape[1:]))
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        full = full.contiguous(memory_format=torch.channels_last)
    return x + sigma * torch.randn_like(full)[rank * len(x):(rank + 1) * len(x)]


def gan_step(recipe: Recipe, gan: GAN, opt_d: torch.optim.Optimizer, opt_g: torch.optim.Optimizer,
             x: torch.Tensor, y: Optional[torch.Tensor], *, step: int = 0) -> StepOutput:
    """One D update then one G update on a batch x (B, C, H, W) in [-1, 1] with labels y (B,) or None,
    as the run plan's recipe (recipe.py) says; `step`: the steps trained before this one (the instance
    noise decays with it).

    D's targets: real -> U[recipe.real_label_range], fake -> 0, each flipped with probability
    label_flip. The recipe's augmentations (DiffAugment) apply to every image D sees (real and fake, D
    and G steps), before the instance noise. mismatch > 0 (conditional models): D also sees the real
    images with a wrong label, drawn uniformly from the other classes, as fakes, its loss on them
    weighted by mismatch (the matching-aware D of Reed et al. 2016): D must read the label to tell
    them from the real pairs, so G is pushed towards its class, not only towards real-looking images.
    Per-class models train recipe.pairs = K pairs at once: the backward pass takes K times the mean
    loss, so each pair's gradient is its own; the losses returned are the means. recipe.amp_dtype
    (bf16 where the speed switches say so) runs G and D under autocast; the losses are always computed
    in float32 from the logits. No value is read back to the host, so on CUDA the step never waits for
    the device.

    Data-parallel (train/distributed.py): x and y are rank's rows of a global batch of len(x) * ranks,
    and gan's G and D are in DDP. Every rank draws the global random tensors and keeps its rows, so
    the ranks together take the step of one process; the losses are this rank's shard means (a loss of
    both sides, such as ragan, compares each image with the mean of the other side over this rank's shard,
    so under torchrun it is not exactly one process's loss).
    """
    r = recipe
    b, device, ranks = len(x), x.device, r.ranks
    own = slice(r.rank * b, (r.rank + 1) * b)  # this rank's rows of every global draw
    sigma = r.sigma(step)
    amp = torch.autocast(device.type, dtype=r.amp_dtype) if r.amp_dtype is not None else contextlib.nullcontext()

    def d_input(images: torch.Tensor) -> torch.Tensor:  # what D sees of a batch: augmented, then noised
        return noisy(augment(images, r.augments, rank=r.rank, ranks=ranks), sigma, rank=r.rank, ranks=ranks)

    # ---- D step: real -> smoothed targets, fake -> 0, optional flips ----------------------------
    z = torch.randn(b * ranks, gan.nz, device=device)[own]
    with amp:
        fake = gan.G(z, y)
    t_real = torch.empty(b * ranks, device=device).uniform_(*r.real_label_range)[own]
    t_fake = torch.zeros(b, device=device)
    if r.label_flip > 0:
        flip = torch.rand(b * ranks, device=device)[own] < r.label_flip
        t_real, t_fake = torch.where(flip, 1 - t_real, t_real), torch.where(flip, 1 - t_fake, t_fake)
    with amp:
        d_real = gan.D(d_input(x), y)
        d_fake = gan.D(d_input(fake.detach()), y)
    loss_d = d_loss(r.loss, d_real.float(), d_fake.float(), t_real, t_fake, pairs=r.pairs)
    if r.mismatch > 0:
        k = gan.num_classes  # another class for every row: y + 1..K-1 (mod K), a global draw
        wrong = (y + torch.randint(1, k, (b * ranks,), device=device)[own]) % k
        with amp:
            d_wrong = gan.D(d_input(x), wrong)
        loss_d = loss_d + r.mismatch * side_loss(r.loss, d_wrong.float(), torch.zeros(b, device=device))
    opt_d.zero_grad(set_to_none=True)
    # per-class pairs: K times the mean, the sum of the pairs' mean losses, so each pair's gradient is its own
    (loss_d * r.pairs).backward()
    opt_d.step()
    # ---- G step -----------------------------------------------------------------------------------
    # D's gradients from this backward are thrown away (opt_d zeroes them): no all-reduce under DDP
    with amp, no_sync(gan.D):
        d_gen = gan.D(d_input(fake), y)
        with torch.no_grad():  # a relativistic loss compares G's images with the real ones as D sees them now
            d_now = gan.D(d_input(x), y) if r.loss.both_sides else None
    loss_g = g_loss(r.loss, None if d_now is None else d_now.float(), d_gen.float(), pairs=r.pairs)
    opt_g.zero_grad(set_to_none=True)
    (loss_g * r.pairs).backward()
    opt_g.step()
    return StepOutput(loss_d.detach(), loss_g.detach(), d_real, d_fake)
