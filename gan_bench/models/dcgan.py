"""convDCGAN (Radford et al. 2015) and the Quick, Draw! seed's conditional cDCGAN.

Both share one all-convolutional backbone. G projects (nz [+ K one-hot]) to a start x start map
with a transposed convolution whose kernel is the start size, then doubles the size with
k4 s2 p1 stages (BN + ReLU) up to the output (Tanh). D mirrors it with k4 s2 p1 convolutions
(LeakyReLU 0.2) and a final convolution with the start size as kernel giving one logit.
Start size: 7 for 28-pixel data (7 -> 14 -> 28, as in the seed), 4 for 32 and 64 pixels.
Channels at stage i (n stages): width * 2**(n - i), so width 64 gives the seed's 256 -> 128 at
28 pixels and the paper's 1024 -> 512 -> 256 -> 128 for the 5-layer 64-pixel G.

groups=K builds K such G (or D) side by side as grouped convolutions (classdcgan.py): every layer has K
times the channels and K groups, so pair k is, layer for layer, one convDCGAN of the same width.
"""
from __future__ import annotations

import torch
from torch import nn

from gan_bench.config import ModelConfig
from gan_bench.data.base import DataSpec
from gan_bench.models.base import GAN, MODELS, one_hot

RESOLUTIONS = (28, 32, 64)


def plan(resolution: int) -> tuple[int, int]:
    """(start size, number of k4 s2 upsampling stages) for a supported resolution."""
    start = 7 if resolution % 7 == 0 else 4
    n, size = 0, start
    while size < resolution:
        size, n = size * 2, n + 1
    assert size == resolution, resolution
    return start, n


class ConvG(nn.Module):
    """num_classes > 0: conditional (one-hot label appended to z). groups = K: K generators side by side,
    fed and returning class-fastest batches (classdcgan.py's layout)."""

    def __init__(self, *, nz: int, width: int, channels: int, resolution: int, num_classes: int = 0,
                 groups: int = 1) -> None:
        super().__init__()
        start, n = plan(resolution)
        k = self.groups = groups
        ch = [k * width * 2 ** (n - i) for i in range(n)]
        self.num_classes = num_classes
        layers: list[nn.Module] = [  # (B, nz+K, 1, 1) -> (B, ch0, start, start)
            nn.ConvTranspose2d(k * nz + num_classes, ch[0], start, 1, 0, bias=False, groups=k),
            nn.BatchNorm2d(ch[0]), nn.ReLU(True)]
        for a, b in zip(ch, ch[1:]):  # each stage doubles H and W
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False, groups=k), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ch[-1], k * channels, 4, 2, 1, bias=False, groups=k), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.groups > 1:  # (B, nz) class-fastest -> (b, K*nz, 1, 1) -> (b, K*C, H, W) -> (B, C, H, W)
            b = check_layout(len(z), y, self.groups)
            out = self.net(z.reshape(b, -1, 1, 1))
            return out.reshape(b * self.groups, -1, *out.shape[2:])
        if self.num_classes:
            z = torch.cat([z, one_hot(y, self.num_classes, z.dtype)], 1)
        return self.net(z[:, :, None, None])


class ConvD(nn.Module):
    """num_classes > 0: conditional, the label as constant planes beside the image, or with projection
    (Miyato & Koyama 2018) as a class embedding's inner product with the features the logit layer
    reads. groups = K: K discriminators side by side on class-fastest batches, one logit each."""

    def __init__(self, *, width: int, channels: int, resolution: int, num_classes: int = 0,
                 bn_first: bool = False, groups: int = 1, projection: bool = False) -> None:
        super().__init__()
        start, n = plan(resolution)
        k = self.groups = groups
        ch = [k * width * 2 ** (n - i) for i in range(n)][::-1]  # e.g. 128, 256 at 28 pixels
        self.num_classes = num_classes
        # projection: logit = psi(phi(x)) + <embed(y), phi(x)>, phi(x) the (ch, start, start) map the
        # last convolution (psi, a linear map of it) reads; so embed(y) is class y's own logit kernel
        self.embed = nn.Embedding(num_classes, ch[-1] * start * start) if projection and num_classes else None
        planes = num_classes if self.embed is None else 0
        layers: list[nn.Module] = [nn.Conv2d(k * channels + planes, ch[0], 4, 2, 1, bias=False, groups=k)]
        # The DCGAN paper leaves BN off D's first layer; the Quick, Draw! seed's cDCGAN has it.
        layers += [nn.BatchNorm2d(ch[0])] if bn_first else []
        layers += [nn.LeakyReLU(0.2, True)]
        for a, b in zip(ch, ch[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False, groups=k), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ch[-1], k, start, 1, 0, bias=False, groups=k)]  # (B, K, 1, 1): one logit per pair
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.groups > 1:  # (B, C, H, W) class-fastest -> (b, K*C, H, W) -> (b, K, 1, 1) -> (B,)
            b = check_layout(len(x), y, self.groups)
            return self.net(x.reshape(b, -1, *x.shape[2:])).flatten()
        if self.embed is not None:
            h = x
            for layer in self.net[:-1]:
                h = layer(h)                                  # phi(x): (B, ch, start, start)
            return self.net[-1](h).flatten() + (self.embed(y) * h.flatten(1)).sum(1)
        if self.num_classes:  # label as K constant planes, (B, K, H, W)
            planes = one_hot(y, self.num_classes, x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, planes], 1)
        return self.net(x).flatten()


def check_layout(n: int, y: torch.Tensor | None, k: int) -> int:
    """b = n / K for a class-fastest batch of n; y itself is only checked on the CPU (no GPU sync)."""
    assert n % k == 0, f"classdcgan needs a batch of b * {k} class-fastest images, got {n}"
    if __debug__ and y is not None and y.device.type == "cpu":
        assert torch.equal(y, torch.arange(k).repeat(n // k)), "classdcgan needs y[i*K + k] == k"
    return n // k


@MODELS.register("convdcgan", dcgan_init=True, conditional=False, resolutions=RESOLUTIONS,
                 description="DCGAN paper's all-convolutional pair (5-layer G at 64 px)")
def convdcgan(spec: DataSpec, cfg: ModelConfig) -> GAN:
    kw = dict(width=cfg.width, channels=spec.channels, resolution=spec.resolution)
    return GAN(ConvG(nz=cfg.nz, **kw), ConvD(**kw), nz=cfg.nz, spec=spec, conditional=False)


@MODELS.register("cdcgan", dcgan_init=True, conditional=True, resolutions=RESOLUTIONS,
                 description="conditional DCGAN of the Quick, Draw! seed (one-hot label on G and D inputs)")
def cdcgan(spec: DataSpec, cfg: ModelConfig) -> GAN:
    kw = dict(width=cfg.width, channels=spec.channels, resolution=spec.resolution, num_classes=spec.num_classes)
    D = ConvD(bn_first=True, projection=cfg.d_label == "projection", **kw)
    return GAN(ConvG(nz=cfg.nz, **kw), D, nz=cfg.nz, spec=spec, conditional=True)
