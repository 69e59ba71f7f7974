"""The model registry and what every model is: a G/D pair sized from the data set's description.

Contract every model follows (the trainer relies on nothing else):
  G(z (B, nz), y (B,) int64 or None) -> images (B, C, H, W) in [-1, 1]
  D(x (B, C, H, W), y (B,) or None)  -> logits (B,)
What the package may ask about a model without building it is its ModelInfo, checked at registration.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from gan_bench.config import ModelConfig, check_options, register_names, register_options
from gan_bench.data.base import DataSpec
from gan_bench.errors import ConfigError
from gan_bench.registry import Entry, Registry


class GAN(nn.Module):
    """A generator/discriminator pair plus what the trainer needs to know about it."""

    def __init__(self, G: nn.Module, D: nn.Module, *, nz: int, spec: DataSpec,
                 conditional: bool, per_class: bool = False, averaged: bool = False) -> None:
        super().__init__()
        self.G, self.D = G, D
        self.nz, self.spec = nz, spec
        self.conditional, self.per_class = conditional, per_class
        self.averaged = averaged  # G holds the moving average of a run's G weights (train.ema)

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def draws_class(self) -> bool:
        """Can it be asked for an image of a chosen class (as ModelInfo.draws_class says of its record)?"""
        return bool(self.conditional or self.per_class)


@dataclass(frozen=True)
class ModelInfo:
    """A registered model's record.

    resolutions    image sizes it can build
    conditional    G and D read the label y (needs a labelled data set)
    per_class      one G/D pair per class; batches hold the same number of images of every class,
                   ordered class-fastest (needs a labelled data set)
    needs_labels   refused on unlabelled data without being conditional or per-class
    export_classes what a completed run also writes, one checkpoint per class: gan -> {class name:
                   payload}; the run folder writes each as checkpoints/classes/<class>.pt
    dcgan_init     re-initialise every weight as the DCGAN recipe does (N(0, 0.02), BatchNorm N(1, 0.02))
                   after the factory: the built-in DCGANs' choice; a plugin keeps its own initialisation
                   unless it asks for this
    options        a dataclass of the model's own config keys (option() fields), read as model.<key> in
                   YAML, checked like every key, and read by the factory as cfg.<key>; None: none
    description    one line for `gan-bench list`
    """

    resolutions: tuple[int, ...]
    conditional: bool = False
    per_class: bool = False
    needs_labels: bool = False
    export_classes: Optional[Callable[["GAN"], dict[str, dict[str, Any]]]] = None
    dcgan_init: bool = False
    options: Optional[type] = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.resolutions or not all(isinstance(r, int) and r > 0 for r in self.resolutions):
            raise TypeError(f"ModelInfo.resolutions must be positive integers, got {self.resolutions!r}")

    @property
    def draws_class(self) -> bool:
        """Can it be asked for an image of a chosen class (sampling by --label, cond_acc)?"""
        return self.conditional or self.per_class

    @property
    def labels_required(self) -> bool:
        return self.conditional or self.per_class or self.needs_labels


class Layers(nn.Sequential):
    """nn.Sequential with the G and D signature, (x, y) -> out, for a net that does not read the label."""

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x)


def _check_options(entry: Entry) -> None:
    check_options(ModelConfig, entry.name, entry.info.options)  # refused as it registers, not when a config reads it


MODELS: Registry[Callable[[DataSpec, ModelConfig], GAN], ModelInfo] = Registry("model", ModelInfo,
                                                                            on_register=_check_options)
register_names("model.name", "model", MODELS.names)  # an empty or unknown model.name lists these
register_options("model", lambda: {e.name: e.info.options for e in MODELS})  # model.<option> keys


def init_weights(module: nn.Module) -> None:
    """DCGAN init (Radford et al. 2015): conv/linear weights N(0, 0.02), BatchNorm weights N(1, 0.02).
    Class embeddings (a projection D's) get N(0, 0.02) too, so that their term starts at the scale of
    the logit layer's instead of torch's N(0, 1)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def check_compatible(model_name: str, spec: DataSpec) -> None:
    """Refuse, before training, a model that cannot serve this data set; name the choices that can."""
    info = MODELS.info(model_name)
    ok = compatible_models(spec)
    problem = None
    if info.labels_required and not spec.labelled:
        problem = f"model {model_name!r} needs class labels but data set {spec.name!r} has no labels"
    elif spec.resolution not in info.resolutions:
        sizes = ", ".join(str(r) for r in info.resolutions)
        problem = (f"model {model_name!r} builds {sizes}-pixel images but data set {spec.name!r} is "
                   f"{spec.resolution}x{spec.resolution} (set data.resolution to resize it)")
    if problem:
        raise ConfigError(f"{problem}; models that fit: {', '.join(ok) or 'none'}")


def compatible_models(spec: DataSpec) -> list[str]:
    return [e.name for e in MODELS
            if spec.resolution in e.info.resolutions and (spec.labelled or not e.info.labels_required)]


def one_hot(y: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    return nn.functional.one_hot(y, num_classes).to(dtype)
