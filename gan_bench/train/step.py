"""The trainer's D+G step as one function.

gan_step() is the step the trainer's loop (loop.py) takes, so a benchmark can time the bare step on
synthetic inputs and a test can check it against the trainer. The speed levers around it are in
levers.py.
"""
from __future__ import annotations

import contextlib
from typing import NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F

from gan_bench.models import GAN
from gan_bench.train.distributed import no_sync


class StepOutput(NamedTuple):
    """What the trainer logs: losses (scaled by the number of pairs, as the step used them) and logits."""

    loss_d: torch.Tensor   # () D loss * pairs
    loss_g: torch.Tensor   # () G loss * pairs
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


def gan_step(gan: GAN, opt_d: torch.optim.Optimizer, opt_g: torch.optim.Optimizer, x: torch.Tensor,
             y: Optional[torch.Tensor], *, sigma: float = 0.0, real_label_range: Sequence[float] = (1.0, 1.0),
             label_flip: float = 0.0, amp_dtype: Optional[torch.dtype] = None, rank: int = 0,
             ranks: int = 1) -> StepOutput:
    """One D update then one G update on a batch x (B, C, H, W) in [-1, 1] with labels y (B,) or None.

    D: BCE with logits, real -> U[real_label_range] targets, fake -> 0, each target flipped with
    probability label_flip; G: the non-saturating loss. Per-class models (gan.per_class) get both
    losses multiplied by K so each pair's gradient is its own. amp_dtype (CUDA: torch.bfloat16) runs
    G and D under autocast; the losses are always computed in float32 from the logits. No value is
    read back to the host, so on CUDA the step never waits for the device.

    Data-parallel (train/distributed.py): x and y are rank's rows of a global batch of len(x) * ranks,
    and gan's G and D are in DDP. Every rank draws the global random tensors and keeps its rows, so
    the ranks together take the step of one process; the losses are this rank's shard means.
    """
    b, device = len(x), x.device
    own = slice(rank * b, (rank + 1) * b)  # this rank's rows of every global draw
    per_pair = gan.num_classes if gan.per_class else 1
    amp = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
           else contextlib.nullcontext())
    # ---- D step: real -> smoothed targets, fake -> 0, optional flips ----------------------------
    z = torch.randn(b * ranks, gan.nz, device=device)[own]
    with amp:
        fake = gan.G(z, y)
    t_real = torch.empty(b * ranks, device=device).uniform_(*real_label_range)[own]
    t_fake = torch.zeros(b, device=device)
    if label_flip > 0:
        flip = torch.rand(b * ranks, device=device)[own] < label_flip
        t_real, t_fake = torch.where(flip, 1 - t_real, t_real), torch.where(flip, 1 - t_fake, t_fake)
    with amp:
        d_real = gan.D(noisy(x, sigma, rank=rank, ranks=ranks), y)
        d_fake = gan.D(noisy(fake.detach(), sigma, rank=rank, ranks=ranks), y)
    # per-class pairs: sum of the pairs' mean losses, so each pair's gradient is its own
    loss_d = (F.binary_cross_entropy_with_logits(d_real.float(), t_real)
              + F.binary_cross_entropy_with_logits(d_fake.float(), t_fake)) * per_pair
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    # ---- G step: non-saturating loss --------------------------------------------------------------
    # D's gradients from this backward are thrown away (opt_d zeroes them): no all-reduce under DDP
    with amp, no_sync(gan.D):
        d_gen = gan.D(noisy(fake, sigma, rank=rank, ranks=ranks), y)
    loss_g = F.binary_cross_entropy_with_logits(d_gen.float(), torch.ones_like(d_gen, dtype=torch.float32)) * per_pair
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return StepOutput(loss_d, loss_g, d_real, d_fake)
