"""What a metric is computed from: the GAN, the real data, the evaluation network, the samples.

Everything expensive (the evaluation network, generated images, features) is computed on first use
and shared by all metrics of one evaluation, so asking for several metrics costs no more than the
most expensive one and every metric sees the same generated images as when it is asked alone.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from gan_bench.data.base import ImageData, Splits
from gan_bench.errors import ConfigError
from gan_bench.metrics import classifier as C
from gan_bench.metrics.registry import NotApplicable
from gan_bench.models.base import GAN


def stderr_line(msg: str) -> None:
    print(msg, file=sys.stderr)


def class_model(gan: GAN) -> bool:
    """Can this model be asked for an image of a given class?"""
    return bool(gan.conditional or gan.per_class)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [-1, 1] -> uint8 on the CPU, the quantisation a saved sample gets."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def generate_images(gan: GAN, *, per_class: int = 0, n: int = 0, seed: int, device: torch.device,
                    classes: Optional[Sequence[int]] = None, batch: int = 500) -> ImageData:
    """Generated images as uint8 ImageData.

    Class-aware models: per_class images of each class in `classes` (default: all), labelled; the
    latents are drawn up front, so the images do not depend on `batch`. Per-class models always
    generate every class (their batches must hold all classes) and the unwanted ones are dropped.
    Unconditional models: n unlabelled images.
    """
    from gan_bench.train.loop import generate  # lazy: the trainer may import this module

    g = torch.Generator().manual_seed(seed)
    names = list(gan.spec.classes)
    if not class_model(gan):
        z = torch.randn(n, gan.nz, generator=g)
        x = [to_uint8(generate(gan, zb.to(device), None)) for zb in z.split(batch)]
        return ImageData(torch.cat(x), None, names)
    k = gan.num_classes
    wanted = list(range(k)) if classes is None else list(classes)
    ks = list(range(k)) if gan.per_class else wanted
    z = torch.randn(len(ks), per_class, gan.nz, generator=g)  # (classes, per class, nz)
    m = max(1, batch // len(ks))
    xs, ys = [], []
    for j in range(0, per_class, m):
        zb = z[:, j:j + m]                                   # (classes, b, nz), row-major by class
        yb = torch.tensor(ks).repeat_interleave(zb.shape[1])
        xb = to_uint8(generate(gan, zb.reshape(-1, gan.nz).to(device), yb.to(device)))
        keep = torch.isin(yb, torch.tensor(wanted))
        xs.append(xb[keep]), ys.append(yb[keep])
    y = torch.cat(ys)
    order = torch.argsort(y, stable=True)  # class-major, so equal seeds give equal images per class
    return ImageData(torch.cat(xs)[order], y[order], names)


@dataclass
class EvalContext:
    """Inputs of one evaluation. `samples` generated images in all (per class: samples // K)."""

    gan: GAN
    splits: Splits
    samples: int
    seed: int = 0
    device: torch.device = torch.device("cpu")
    cache_dir: Optional[Path] = None            # evaluation networks; None: train, keep in memory
    inception_weights: Optional[Path] = None
    classifier_epochs: int = 2
    log: Callable[[str], None] = stderr_line
    shared: dict[str, Any] = field(default_factory=dict)  # results several metrics share

    @property
    def class_model(self) -> bool:
        return class_model(self.gan)

    @property
    def per_class(self) -> int:
        return self.samples // self.gan.num_classes if self.class_model else 0

    @cached_property
    def classifier(self) -> C.Classifier:
        # The network's seed is fixed (not `seed`): every evaluation of a data set shares one network.
        return C.train_classifier(self.splits, epochs=self.classifier_epochs, seed=C.Recipe.seed,
                                  device=self.device, cache_dir=self.cache_dir, log=self.log)

    @cached_property
    def fake(self) -> ImageData:
        """The generated images every metric uses: (samples, C, H, W) uint8, labelled if class-aware."""
        if self.class_model and self.per_class < 1:
            raise ConfigError(f"--samples {self.samples} is fewer than the {self.gan.num_classes} classes; "
                              f"raise --samples")
        return generate_images(self.gan, per_class=self.per_class, n=self.samples, seed=self.seed,
                               device=self.device)

    @cached_property
    def real_features(self) -> torch.Tensor:
        """(N_test, FEATURE_DIM): the reference set is the real test split."""
        return C.features(self.classifier, self.splits.test.x)

    @cached_property
    def fake_features(self) -> torch.Tensor:
        return C.features(self.classifier, self.fake.x)

    @cached_property
    def fake_predictions(self) -> torch.Tensor:
        return C.predict(self.classifier, self.fake.x)

    def need(self, metric: str, minimum: int, *, generated: int, real: int, what: str = "",
             split: str = "test") -> None:
        """Too few generated images: ConfigError (raise --samples). Too few real reference images:
        NotApplicable (the data's test split is too small; skipped when not asked for by name)."""
        if real < minimum:  # first: no --samples can fix a test split that is too small
            raise NotApplicable(f"{metric} needs at least {minimum} real {split} images{what}, the {split} split "
                                f"of {self.splits.name!r} has {real}; use a larger {split} split "
                                f"(data.test_fraction, data.path or data.test_path)")
        if generated < minimum:
            raise ConfigError(f"{metric} needs at least {minimum} generated images{what}, got {generated}; "
                              f"raise --samples (or eval.samples)")
