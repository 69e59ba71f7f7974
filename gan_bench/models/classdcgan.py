"""classDCGAN: K independent convDCGAN pairs, one per class, trained in one batched step.

The K pairs are stacked along the channel axis and run as grouped convolutions (groups=K), so one
kernel launch serves every pair; BatchNorm is per channel, hence per pair. Pair k is, layer for
layer, convDCGAN's G/D of the same width (same kernels, strides and channels per pair), and
pair_state_dict() exports it as a plain convdcgan state dict (the per-class checkpoint).

Batch layout (the trainer's per-class batches): B = b * K images ordered class-fastest, so
index i*K + k belongs to class k (y[i*K + k] == k). Reshaping (B, ...) to (b, K*...) then puts
class k's images in group k:
  G: z (B, nz) -> (b, K*nz, 1, 1) -> grouped G -> (b, K*C, H, W) -> (B, C, H, W)
  D: x (B, C, H, W) -> (b, K*C, H, W) -> grouped D -> (b, K, 1, 1) -> logits (B,)
The trainer multiplies the loss (a mean over B) by K, so pair k's gradient is the mean over its
own b images, exactly what an independently trained convDCGAN pair would get.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gan_bench.config import ModelConfig
from gan_bench.data.base import DataSpec
from gan_bench.models.base import GAN, MODELS
from gan_bench.models.dcgan import RESOLUTIONS, plan


def check_layout(n: int, y: torch.Tensor | None, k: int) -> int:
    """b = n / K for a class-fastest batch of n; y itself is only checked on the CPU (no GPU sync)."""
    assert n % k == 0, f"classdcgan needs a batch of b * {k} class-fastest images, got {n}"
    if __debug__ and y is not None and y.device.type == "cpu":
        assert torch.equal(y, torch.arange(k).repeat(n // k)), "classdcgan needs y[i*K + k] == k"
    return n // k


class GroupedConvG(nn.Module):
    """K convDCGAN generators side by side; the layer indices in net match dcgan.ConvG's."""

    def __init__(self, *, nz: int, width: int, channels: int, resolution: int, num_classes: int) -> None:
        super().__init__()
        start, n = plan(resolution)
        k = self.k = num_classes
        ch = [width * 2 ** (n - i) for i in range(n)]  # channels per pair, as in ConvG
        layers: list[nn.Module] = [  # (b, K*nz, 1, 1) -> (b, K*ch0, start, start)
            nn.ConvTranspose2d(k * nz, k * ch[0], start, 1, 0, bias=False, groups=k),
            nn.BatchNorm2d(k * ch[0]), nn.ReLU(True)]
        for a, b in zip(ch, ch[1:]):  # each stage doubles H and W
            layers += [nn.ConvTranspose2d(k * a, k * b, 4, 2, 1, bias=False, groups=k),
                       nn.BatchNorm2d(k * b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(k * ch[-1], k * channels, 4, 2, 1, bias=False, groups=k), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        b = check_layout(len(z), y, self.k)
        out = self.net(z.reshape(b, -1, 1, 1))  # (b, K*C, H, W)
        return out.reshape(b * self.k, -1, *out.shape[2:])  # (B, C, H, W), class-fastest


class GroupedConvD(nn.Module):
    """K convDCGAN discriminators (no BN on the first layer) side by side; indices match dcgan.ConvD's."""

    def __init__(self, *, width: int, channels: int, resolution: int, num_classes: int) -> None:
        super().__init__()
        start, n = plan(resolution)
        k = self.k = num_classes
        ch = [width * 2 ** (n - i) for i in range(n)][::-1]  # channels per pair, as in ConvD
        layers: list[nn.Module] = [nn.Conv2d(k * channels, k * ch[0], 4, 2, 1, bias=False, groups=k),
                                   nn.LeakyReLU(0.2, True)]
        for a, b in zip(ch, ch[1:]):
            layers += [nn.Conv2d(k * a, k * b, 4, 2, 1, bias=False, groups=k),
                       nn.BatchNorm2d(k * b), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(k * ch[-1], k, start, 1, 0, bias=False, groups=k)]  # (b, K, 1, 1)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        b = check_layout(len(x), y, self.k)
        return self.net(x.reshape(b, -1, *x.shape[2:])).flatten()  # (B,), class-fastest


def pair_state_dict(gan: GAN, k: int) -> dict[str, torch.Tensor]:
    """Pair k of a classdcgan as a plain convdcgan state dict (keys G.net.*, D.net.*).

    Every grouped tensor stacks the K pairs along dim 0 (ConvTranspose2d weights: input channels,
    Conv2d weights: output channels, BatchNorm weights/buffers: channels), so pair k's tensor is
    chunk k of K; 0-dim buffers (num_batches_tracked) are shared. Load the result with
    convdcgan(spec_of_one_pair, cfg).load_state_dict(...).
    """
    if not 0 <= k < gan.num_classes:
        raise IndexError(f"pair {k} of a classdcgan with {gan.num_classes} pairs")
    return {name: (t.chunk(gan.num_classes)[k] if t.dim() else t).detach().clone()
            for name, t in gan.state_dict().items()}


@MODELS.register("classdcgan", conditional=False, per_class=True, needs_labels=True, resolutions=RESOLUTIONS,
                 description="one independent convDCGAN pair per class, trained together (grouped convs)")
def classdcgan(spec: DataSpec, cfg: ModelConfig) -> GAN:
    kw = dict(width=cfg.width, channels=spec.channels, resolution=spec.resolution, num_classes=spec.num_classes)
    return GAN(GroupedConvG(nz=cfg.nz, **kw), GroupedConvD(**kw), nz=cfg.nz, spec=spec,
               conditional=False, per_class=True)


def export_pairs(gan: GAN, folder: Path) -> list[Path]:
    """One checkpoint per class (<folder>/<class>.pt): {"G": ..., "D": ...} loadable into `convdcgan`
    built for one class, so a single pair can be shared or sampled without the other K - 1."""
    from gan_bench.run_folder import safe_name
    from gan_bench.train.checkpoint import save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, name in enumerate(gan.spec.classes):
        sd = pair_state_dict(gan, k)
        split = {part: {key[len(part) + 1:]: t for key, t in sd.items() if key.startswith(part + ".")} for part in ("G", "D")}
        path = folder / f"{safe_name(name)}.pt"
        save_checkpoint(path, {**split, "class": name, "model": "convdcgan", "nz": gan.nz})
        paths.append(path)
    return paths
