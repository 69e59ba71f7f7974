"""The model registry and what every model is: a G/D pair sized from the data set's description.

Contract every model follows (the trainer relies on nothing else):
  G(z (B, nz), y (B,) int64 or None) -> images (B, C, H, W) in [-1, 1]
  D(x (B, C, H, W), y (B,) or None)  -> logits (B,)
Registration meta: conditional (needs labels), per_class (one pair per class; batches hold the same
number of images of every class, ordered class-fastest), needs_labels (refused on unlabelled data like
conditional, without being conditional), resolutions (tuple of sizes it can build).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from gan_bench.config import ModelConfig
from gan_bench.data.base import DataSpec
from gan_bench.errors import ConfigError
from gan_bench.registry import Registry


class GAN(nn.Module):
    """A generator/discriminator pair plus what the trainer needs to know about it."""

    def __init__(self, G: nn.Module, D: nn.Module, *, nz: int, spec: DataSpec,
                 conditional: bool, per_class: bool = False) -> None:
        super().__init__()
        self.G, self.D = G, D
        self.nz, self.spec = nz, spec
        self.conditional, self.per_class = conditional, per_class

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes


MODELS: Registry[Callable[[DataSpec, ModelConfig], GAN]] = Registry("model")


def init_weights(module: nn.Module) -> None:
    """DCGAN init (Radford et al. 2015): conv/linear weights N(0, 0.02), BatchNorm weights N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def check_compatible(model_name: str, spec: DataSpec) -> None:
    """Refuse, before training, a model that cannot serve this data set; name the choices that can."""
    meta = MODELS.entry(model_name).meta
    ok = compatible_models(spec)
    problem = None
    if _needs_labels(meta) and not spec.labelled:
        problem = f"model {model_name!r} needs class labels but data set {spec.name!r} has no labels"
    elif spec.resolution not in meta.get("resolutions", ()):
        sizes = ", ".join(str(r) for r in meta["resolutions"])
        problem = (f"model {model_name!r} builds {sizes}-pixel images but data set {spec.name!r} is "
                   f"{spec.resolution}x{spec.resolution} (set data.resolution to resize it)")
    if problem:
        raise ConfigError(f"{problem}; models that fit: {', '.join(ok) or 'none'}")


def compatible_models(spec: DataSpec) -> list[str]:
    return [e.name for e in MODELS
            if spec.resolution in e.meta.get("resolutions", ()) and (spec.labelled or not _needs_labels(e.meta))]


def _needs_labels(meta: dict) -> bool:
    # conditional models read y; per-class ones (needs_labels) ignore it but batch by class
    return bool(meta.get("conditional") or meta.get("needs_labels"))


def build_model(cfg: ModelConfig, spec: DataSpec) -> GAN:
    check_compatible(cfg.name, spec)
    gan = MODELS.get(cfg.name)(spec, cfg)
    init_weights(gan)
    return gan


def one_hot(y: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    return nn.functional.one_hot(y, num_classes).to(dtype)
