"""classDCGAN: K independent convDCGAN pairs, one per class, trained in one batched step.

The K pairs are dcgan.ConvG/ConvD with groups=K: stacked along the channel axis and run as grouped
convolutions, so one kernel launch serves every pair; BatchNorm is per channel, hence per pair. Pair k
is, layer for layer, convDCGAN's G/D of the same width (same kernels, strides and channels per pair),
and pair_state_dict() exports it as a plain convdcgan state dict (the per-class checkpoint).

Batch layout (the trainer's per-class batches): B = b * K images ordered class-fastest, so
index i*K + k belongs to class k (y[i*K + k] == k). Reshaping (B, ...) to (b, K*...) then puts
class k's images in group k:
  G: z (B, nz) -> (b, K*nz, 1, 1) -> grouped G -> (b, K*C, H, W) -> (B, C, H, W)
  D: x (B, C, H, W) -> (b, K*C, H, W) -> grouped D -> (b, K, 1, 1) -> logits (B,)
The trainer multiplies the loss (a mean over B) by K, so pair k's gradient is the mean over its
own b images, exactly what an independently trained convDCGAN pair would get.
"""
from __future__ import annotations

import torch

from gan_bench.config import ModelConfig
from gan_bench.data.base import DataSpec
from gan_bench.models.base import GAN, MODELS
from gan_bench.models.dcgan import RESOLUTIONS, ConvD, ConvG


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


def export_pairs(gan: GAN) -> dict[str, dict]:
    """One checkpoint payload per class: {"G": ..., "D": ...} loadable into `convdcgan` built for one
    class, so a single pair can be shared or sampled without the other K - 1."""
    out = {}
    for k, name in enumerate(gan.spec.classes):
        sd = pair_state_dict(gan, k)
        split = {part: {key[len(part) + 1:]: t for key, t in sd.items() if key.startswith(part + ".")}
                 for part in ("G", "D")}
        out[name] = {**split, "class": name, "model": "convdcgan", "nz": gan.nz}
    return out


@MODELS.register("classdcgan", dcgan_init=True, per_class=True, resolutions=RESOLUTIONS, export_classes=export_pairs,
                 description="one independent convDCGAN pair per class, trained together (grouped convs)")
def classdcgan(spec: DataSpec, cfg: ModelConfig) -> GAN:
    kw = dict(width=cfg.width, channels=spec.channels, resolution=spec.resolution, groups=spec.num_classes)
    return GAN(ConvG(nz=cfg.nz, **kw), ConvD(**kw), nz=cfg.nz, spec=spec, conditional=False, per_class=True)
