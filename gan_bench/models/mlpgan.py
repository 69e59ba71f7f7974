"""The DoodleGAN seed's fully connected GAN on flattened images (registered for the conv models' 28, 32
and 64 pixels so that the matrix compares like with like; any channels).

G: nz -> 256 -> 512 -> 1024 -> 2048 hidden units (LeakyReLU 0.2 between) -> H*W*C (Tanh),
reshaped to (B, C, H, W).
D: flatten -> 1024 -> 512 -> 256 (LeakyReLU 0.2 and Dropout 0.4 after each) -> one logit.
The hidden sizes scale with model.width: width * 4, 8, 16, 32 in G and width * 16, 8, 4 in D,
so the default width 64 is exactly the seed, and tests can use tiny widths.
"""
from __future__ import annotations

import torch
from torch import nn

from gan_bench.config import ModelConfig
from gan_bench.data.base import DataSpec
from gan_bench.models.base import GAN, MODELS
from gan_bench.models.dcgan import RESOLUTIONS


class MlpG(nn.Module):
    def __init__(self, *, nz: int, width: int, channels: int, resolution: int) -> None:
        super().__init__()
        hidden = [width * m for m in (4, 8, 16, 32)]  # 256, 512, 1024, 2048 at width 64
        layers: list[nn.Module] = []
        for a, b in zip([nz] + hidden, hidden):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, True)]
        layers += [nn.Linear(hidden[-1], channels * resolution * resolution), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.shape = (channels, resolution, resolution)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(len(z), *self.shape)  # (B, C, H, W)


class MlpD(nn.Module):
    def __init__(self, *, width: int, channels: int, resolution: int) -> None:
        super().__init__()
        hidden = [width * m for m in (16, 8, 4)]  # 1024, 512, 256 at width 64
        layers: list[nn.Module] = [nn.Flatten()]  # (B, C * H * W)
        for a, b in zip([channels * resolution * resolution] + hidden, hidden):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, True), nn.Dropout(0.4)]
        layers += [nn.Linear(hidden[-1], 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).flatten()


@MODELS.register("mlpgan", dcgan_init=True, conditional=False, resolutions=RESOLUTIONS,
                 description="DoodleGAN seed's fully connected GAN (2048-unit G, dropout D)")
def mlpgan(spec: DataSpec, cfg: ModelConfig) -> GAN:
    kw = dict(width=cfg.width, channels=spec.channels, resolution=spec.resolution)
    return GAN(MlpG(nz=cfg.nz, **kw), MlpD(**kw), nz=cfg.nz, spec=spec, conditional=False)
