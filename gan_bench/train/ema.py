"""G weight averaging (train.ema): an exponential moving average of G's weights, the G a run shows.

After every step, G_ema <- beta_t * G_ema + (1 - beta_t) * G. A fixed beta of 0.999 averages over the
last ~700 steps from the start, so for the first thousands of steps the average is mostly the early,
poor weights; StyleGAN2-ADA's ramp (ema_rampup) caps the average's half-life at a fraction of the
steps taken so far: beta_t = min(beta, 0.5 ** (1 / (rampup * t))) after t steps.

BatchNorm: G_ema's running statistics are recomputed for the averaged weights (torch.optim.swa_utils'
update_bn: cumulative means over a few batches of noise in train mode) whenever G_ema is about to be
used or saved, rather than copied or averaged from the raw G. The raw G's statistics describe the raw
G's activations; with other weights, the eval-mode G that draws every sample would normalise with
the wrong means and variances. Recomputing costs a few forward passes per snapshot, evaluation and
checkpoint, and it depends only on G_ema's weights, so a resumed run recomputes the same numbers.
Buffers other than BatchNorm's are copied from the raw G.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from gan_bench.models import GAN

BN_BATCHES = 8    # batches of noise the statistics are recomputed from (8 x 128 images by default)
BN_SEED = 54321   # their fixed noise: the statistics are a function of the weights alone


class GeneratorAverage:
    """The moving average of gan.G, kept beside it (never in DDP, never compiled, always in eval mode).

    view: a GAN with the averaged G and the run's D (averaged=True), for generate() and evaluation.
    """

    def __init__(self, gan: GAN, *, beta: float, rampup: float) -> None:
        self.beta, self.rampup = beta, rampup
        G = copy.deepcopy(gan.G).eval().requires_grad_(False)
        self.view = GAN(G, gan.D, nz=gan.nz, spec=gan.spec, conditional=gan.conditional,
                        per_class=gan.per_class, averaged=True)
        self.fresh = True  # its BatchNorm statistics match its weights

    @property
    def G(self) -> nn.Module:
        return self.view.G

    def beta_at(self, step: int) -> float:
        """beta after `step` steps (step >= 1): the half-life is at most rampup * step steps."""
        if self.rampup <= 0:
            return self.beta
        return min(self.beta, 0.5 ** (1.0 / (self.rampup * step)))

    @torch.no_grad()
    def update(self, G: nn.Module, step: int) -> None:
        """After step `step` of G (1 for the first): move the average towards G's weights."""
        ema, raw = list(self.G.parameters()), [p.detach() for p in G.parameters()]
        torch._foreach_lerp_(ema, raw, 1.0 - self.beta_at(step))  # ema += (1 - beta) * (raw - ema)
        self.fresh = False

    @torch.no_grad()
    def refresh(self, G: nn.Module, *, batch: int) -> None:
        """Recompute G_ema's BatchNorm statistics from batches of `batch` images (a multiple of K for
        per-class pairs), and copy G's other buffers, if the weights moved since the last time."""
        if self.fresh:
            return
        norms = [m for m in self.G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        in_norm = {id(b) for m in norms for b in m.buffers()}
        for mine, theirs in zip(self.G.buffers(), G.buffers()):
            if id(mine) not in in_norm:
                mine.copy_(theirs)
        if norms:
            momenta = [m.momentum for m in norms]
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # cumulative mean over the batches below
            g = torch.Generator().manual_seed(BN_SEED)
            device = next(self.G.parameters()).device
            k = self.view.num_classes
            # any dropout or noise layer of a user's G draws from the global RNG: leave the run's stream as it was
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                self.G.train()
                try:
                    for _ in range(BN_BATCHES):
                        z = torch.randn(batch, self.view.nz, generator=g).to(device)
                        # class-fastest labels: what per-class pairs need, balanced for conditional G
                        y = (torch.arange(k).repeat(math.ceil(batch / k))[:batch].to(device)
                             if self.view.conditional or self.view.per_class else None)
                        self.G(z, y)
                finally:
                    self.G.eval()
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
        self.fresh = True

    def state_dict(self) -> dict[str, Any]:
        return self.G.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state)
        self.fresh = True  # saved right after a refresh
