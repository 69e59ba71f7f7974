"""linDCGAN: the DCGAN backbone with linear layers at the narrow ends of G and D.

G: a Linear layer maps z (nz) to start x start feature maps (BatchNorm1d + ReLU), then k4 s2 p1
transposed-convolution stages (BN + ReLU) double the size up to the output, and a final 3x3
convolution (padding 1) maps to the image channels (Tanh).
D: k4 s2 p1 convolution stages (LeakyReLU 0.2; BN on all but the first) halve the size down to
start x start, then the maps are flattened into a Linear layer giving one logit.
Start size and number of stages come from dcgan.plan(): 4 for 32 and 64 pixels, but 7 for
28 pixels (7 -> 14 -> 28), since 4 does not double to 28.
Channels follow convDCGAN's rule: width * 2**(n - i) at the map of size start * 2**i, so G's
maps go width * 2**n -> ... -> width, and D mirrors them (width * 2 -> ... -> width * 2**n).
Layers followed by BatchNorm carry no bias (BN's shift makes it redundant).
"""
from __future__ import annotations

import torch
from torch import nn

from gan_bench.config import ModelConfig
from gan_bench.data.base import DataSpec
from gan_bench.models.base import GAN, MODELS
from gan_bench.models.dcgan import RESOLUTIONS, plan


class LinG(nn.Module):
    def __init__(self, *, nz: int, width: int, channels: int, resolution: int) -> None:
        super().__init__()
        start, n = plan(resolution)
        ch = [width * 2 ** (n - i) for i in range(n + 1)]  # ch[i]: channels at size start * 2**i
        self.shape = (ch[0], start, start)
        self.project = nn.Sequential(  # (B, nz) -> (B, ch0 * start * start)
            nn.Linear(nz, ch[0] * start * start, bias=False), nn.BatchNorm1d(ch[0] * start * start), nn.ReLU(True))
        layers: list[nn.Module] = []
        for a, b in zip(ch, ch[1:]):  # each stage doubles H and W
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.Conv2d(ch[-1], channels, 3, 1, 1), nn.Tanh()]  # (B, C, H, W)
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.project(z).view(len(z), *self.shape))


class LinD(nn.Module):
    def __init__(self, *, width: int, channels: int, resolution: int) -> None:
        super().__init__()
        start, n = plan(resolution)
        ch = [width * 2 ** (n - i) for i in range(n)][::-1]  # e.g. 128, 256 at 28 pixels (width 64)
        layers: list[nn.Module] = [nn.Conv2d(channels, ch[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for a, b in zip(ch, ch[1:]):  # each stage halves H and W
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, True)]
        layers += [nn.Flatten(), nn.Linear(ch[-1] * start * start, 1)]  # (B, 1): one logit
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).flatten()


@MODELS.register("lindcgan", dcgan_init=True, conditional=False, resolutions=RESOLUTIONS,
                 description="DCGAN with a Linear projection in G and a Linear logit in D")
def lindcgan(spec: DataSpec, cfg: ModelConfig) -> GAN:
    kw = dict(width=cfg.width, channels=spec.channels, resolution=spec.resolution)
    return GAN(LinG(nz=cfg.nz, **kw), LinD(**kw), nz=cfg.nz, spec=spec, conditional=False)
