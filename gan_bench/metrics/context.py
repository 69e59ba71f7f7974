"""What a metric is computed from: the GAN, the real data, the evaluation network, the samples.

Everything expensive (the evaluation network, generated images, features) is computed on first use
and shared by all metrics of one evaluation, so asking for several metrics costs no more than the
most expensive one and every metric sees the same generated images as when it is asked alone.

Under torchrun every rank evaluates together: the images are generated and embedded in the chunks
one process uses (CHUNK), rank r computing chunks r, r + W, ..., and every rank gathers them all
(World.map_chunks). Each image and feature is thus computed exactly as one process computes it, and
the metrics, computed by every rank from the gathered whole, are one process's numbers.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from gan_bench.data.base import ImageData, Splits, to_uint8
from gan_bench.errors import ConfigError
from gan_bench.metrics import classifier as C
from gan_bench.metrics.registry import NotApplicable
from gan_bench.models.base import GAN
from gan_bench.run.sampling import generate
from gan_bench.run.world import World

CHUNK = 500  # images per forward pass of G and of the evaluation network (classifier.features' batch)


def stderr_line(msg: str) -> None:
    print(msg, file=sys.stderr)




def generate_images(gan: GAN, *, per_class: int = 0, n: int = 0, seed: int, device: torch.device,
                    classes: Optional[Sequence[int]] = None, batch: int = CHUNK) -> ImageData:
    """Generated images as uint8 ImageData.

    Class-aware models: per_class images of each class in `classes` (default: all), labelled; the
    latents are drawn up front, so the images do not depend on `batch`. Per-class models always
    generate every class (their batches must hold all classes) and the unwanted ones are dropped.
    Unconditional models: n unlabelled images. Under torchrun the batches are shared out among the
    ranks and every rank returns all the images.
    """
    g = torch.Generator().manual_seed(seed)
    names = list(gan.spec.classes)
    world = World.current()
    if not gan.draws_class:
        z = torch.randn(n, gan.nz, generator=g)
        x = world.map_chunks(lambda zb: to_uint8(generate(gan, zb.to(device), None)), list(z.split(batch)))
        return ImageData(torch.cat(x), None, names)
    k = gan.num_classes
    wanted = list(range(k)) if classes is None else list(classes)
    ks = list(range(k)) if gan.per_class else wanted
    z = torch.randn(len(ks), per_class, gan.nz, generator=g)  # (classes, per class, nz)
    m = max(1, batch // len(ks))

    def chunk(j: int) -> tuple[torch.Tensor, torch.Tensor]:
        zb = z[:, j:j + m]                                   # (classes, b, nz), row-major by class
        yb = torch.tensor(ks).repeat_interleave(zb.shape[1])
        xb = to_uint8(generate(gan, zb.reshape(-1, gan.nz).to(device), yb.to(device)))
        keep = torch.isin(yb, torch.tensor(wanted))
        return xb[keep], yb[keep]

    xs, ys = zip(*world.map_chunks(chunk, list(range(0, per_class, m))))
    y = torch.cat(ys)
    order = torch.argsort(y, stable=True)  # class-major, so equal seeds give equal images per class
    return ImageData(torch.cat(xs)[order], y[order], names)


def sharded(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """torch.cat of fn over x in chunks of CHUNK rows, the chunks shared out among torchrun ranks.
    fn must not communicate (resolve lazy, collective things like ctx.classifier first): a rank may
    get no chunk at all and would never join it."""
    out = World.current().map_chunks(fn, list(x.split(CHUNK)))
    return torch.cat(out) if out else fn(x)


@dataclass
class EvalContext:
    """Inputs of one evaluation. `samples` generated images in all (per class: samples // K).

    `gan-bench score` gives two image sets instead of a generator: `images` (FAKE, scored in place of
    generated images; gan None) and `reference` (REAL, the reference of every metric in place of the
    test split or the training images). There are no real-data floors then (no held-out images)."""

    gan: Optional[GAN]
    splits: Splits
    samples: int
    seed: int = 0
    device: torch.device = torch.device("cpu")
    cache_dir: Optional[Path] = None            # evaluation networks; None: train, keep in memory
    inception_weights: Optional[Path] = None
    classifier_epochs: int = C.EPOCHS
    log: Callable[[str], None] = stderr_line
    shared: dict[str, Any] = field(default_factory=dict)  # results several metrics share
    images: Optional[ImageData] = None
    reference: Optional[ImageData] = None

    @property
    def draws_class(self) -> bool:
        return self.gan is not None and self.gan.draws_class

    @property
    def floors(self) -> bool:
        """Whether real-data floors are measured: held-out real images scored as if generated."""
        return self.reference is None

    @property
    def real(self) -> ImageData:
        """The reference images of the evaluation network's metrics: the test split (never seen by the
        network in training), or the REAL images of `gan-bench score`."""
        return self.splits.test if self.reference is None else self.reference

    @property
    def per_class(self) -> int:
        return self.samples // self.gan.num_classes if self.draws_class else 0

    @cached_property
    def classifier(self) -> C.Classifier:
        # The network's seed is fixed (not `seed`): every evaluation of a data set shares one network.
        # Under torchrun rank 0 trains (and caches) it first, then the other ranks load it.
        return World.current().main_first(lambda: C.train_classifier(
            self.splits, epochs=self.classifier_epochs, seed=C.Recipe.seed, device=self.device,
            cache_dir=self.cache_dir, log=self.log))

    @cached_property
    def fake(self) -> ImageData:
        """The generated images every metric uses: (samples, C, H, W) uint8, labelled if class-aware."""
        if self.images is not None:
            return self.images
        if self.draws_class and self.per_class < 1:
            raise ConfigError(f"--samples {self.samples} is fewer than the {self.gan.num_classes} classes; "
                              f"raise --samples")
        return generate_images(self.gan, per_class=self.per_class, n=self.samples, seed=self.seed,
                               device=self.device)

    @cached_property
    def real_features(self) -> torch.Tensor:
        """(N_test, FEATURE_DIM): the reference set is the real test split (`real`)."""
        clf = self.classifier  # every rank, before sharding: getting it may communicate, see sharded()
        return sharded(lambda b: C.features(clf, b), self.real.x)

    @cached_property
    def held_features(self) -> torch.Tensor:
        """(min(generated, N_train), FEATURE_DIM): a seeded subset of real training images, as many as
        the generated ones, scored in their place for the real-data floors: what a generator that drew
        real images would score at the same N (the network trained on them: it has seen these)."""
        clf, train = self.classifier, self.splits.train.x
        g = torch.Generator().manual_seed(self.seed)
        pick = torch.randperm(len(train), generator=g)[:len(self.fake)]
        return sharded(lambda b: C.features(clf, b), train[pick])

    @cached_property
    def fake_features(self) -> torch.Tensor:
        clf, x = self.classifier, self.fake.x
        return sharded(lambda b: C.features(clf, b), x)

    @cached_property
    def fake_predictions(self) -> torch.Tensor:
        clf, x = self.classifier, self.fake.x
        return sharded(lambda b: C.predict(clf, b), x)

    def need(self, metric: str, minimum: int, *, generated: int, real: int, what: str = "",
             split: str = "test") -> None:
        """Too few generated images: ConfigError (raise --samples). Too few real reference images:
        NotApplicable (the data's test split is too small; skipped when not asked for by name).
        `gan-bench score`: too few images in either set is a ConfigError (give more images)."""
        if self.reference is not None:
            for which, n in (("FAKE", generated), ("REAL", real)):
                if n < minimum:
                    raise ConfigError(f"{metric} needs at least {minimum} images{what} in each set, {which} has {n}; "
                                      f"give more images (or leave {metric} out of --metrics)")
            return
        if real < minimum:  # first: no --samples can fix a test split that is too small
            raise NotApplicable(f"{metric} needs at least {minimum} real {split} images{what}, the {split} split "
                                f"of {self.splits.name!r} has {real}; use a larger {split} split "
                                f"(data.test_fraction, data.path or data.test_path)")
        if generated < minimum:
            raise ConfigError(f"{metric} needs at least {minimum} generated images{what}, got {generated}; "
                              f"raise --samples (or eval.samples)")
