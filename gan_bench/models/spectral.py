"""Spectral normalisation of D (Miyato et al. 2018), model.spectral_norm.

Every Conv2d, Linear and Embedding weight of D is divided by an estimate of its largest singular value
(torch's spectral_norm parametrization: one power iteration per forward in training mode), which
bounds how fast D's output can change with its input and keeps D's gradients to G informative.

D's BatchNorm layers are replaced by identities (their state-dict keys disappear; the other layers
keep their indices). SN-GAN's D has no BatchNorm, and StudioGAN drops it whenever SN is on: BN divides
each channel by a batch statistic, which undoes the per-layer bound SN sets, and it makes D's output
for one image depend on the rest of the batch. The convolutions stay bias-free as they were.

A grouped convolution (classdcgan: K discriminators side by side) is normalised group by group:
one sigma for the stacked weight would couple the K pairs that classdcgan keeps independent.
GroupedSpectralNorm stores its power-iteration vectors as K chunks along dim 0, so pair k's slice of
the state dict (classdcgan.pair_state_dict) is torch's spectral_norm state of one convdcgan D.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

POWER_ITERATIONS_AT_START = 15  # what torch's spectral_norm runs when it registers


class GroupedSpectralNorm(nn.Module):
    """Parametrization of a grouped Conv2d weight (K*o, i, kh, kw): group k's (o, i*kh*kw) matrix is
    divided by its own largest singular value, estimated as torch's spectral_norm does."""

    def __init__(self, weight: torch.Tensor, groups: int, *, n_power_iterations: int = 1,
                 eps: float = 1e-12) -> None:
        super().__init__()
        self.groups, self.n_power_iterations, self.eps = groups, n_power_iterations, eps
        mats = self._matrices(weight.detach())  # (K, o, n)
        k, o, n = mats.shape
        self.register_buffer("_u", F.normalize(mats.new_empty(k, o).normal_(0, 1), dim=1, eps=eps).flatten())
        self.register_buffer("_v", F.normalize(mats.new_empty(k, n).normal_(0, 1), dim=1, eps=eps).flatten())
        self._power_method(mats, POWER_ITERATIONS_AT_START)

    def _matrices(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.reshape(self.groups, weight.shape[0] // self.groups, -1)

    @torch.no_grad()
    def _power_method(self, mats: torch.Tensor, iterations: int) -> None:
        u, v = self._u.view(self.groups, -1), self._v.view(self.groups, -1)  # (K, o), (K, n): views
        for _ in range(iterations):
            u.copy_(F.normalize(torch.bmm(mats, v.unsqueeze(2)).squeeze(2), dim=1, eps=self.eps))
            v.copy_(F.normalize(torch.bmm(mats.transpose(1, 2), u.unsqueeze(2)).squeeze(2), dim=1, eps=self.eps))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        mats = self._matrices(weight)
        if self.training:
            self._power_method(mats.detach(), self.n_power_iterations)
        u, v = self._u.view(self.groups, -1).clone(), self._v.view(self.groups, -1).clone()
        sigma = torch.einsum("ko,kon,kn->k", u, mats, v)  # (K,): u_k^T W_k v_k
        return weight / sigma.repeat_interleave(weight.shape[0] // self.groups).view(-1, 1, 1, 1)


def spectral_norm_d(D: nn.Module) -> nn.Module:
    """D in place: BatchNorm layers -> Identity, then SN on every Conv2d, Linear and Embedding weight."""
    for parent in list(D.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, nn.Identity())
    for m in list(D.modules()):
        if isinstance(m, nn.Conv2d) and m.groups > 1:
            parametrize.register_parametrization(m, "weight", GroupedSpectralNorm(m.weight, m.groups))
        elif isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            spectral_norm(m)
    return D
