"""pytest-benchmark: a training step per model and resolution, sampling, evaluation features.

    pytest benchmarks/                       # timings (CPU: a few minutes)
    pytest benchmarks/ --benchmark-disable   # each body once, as a check that they run

Sizes are CPU-sized: every model at every resolution at width 16 (batch 64; classdcgan 8 images of
each of 10 classes), plus the seed's cdcgan at its real size (width 64, batch 128, 28 px).
Inputs are synthetic and already on the device: these time the computation, not the data path
(benchmarks/bench.py compares whole loops). Steps run with the trainer's speed for the CPU
(channels_last, and bf16 where the CPU has AMX: gan_bench/train/speed.py).
"""
from __future__ import annotations

import pytest
import torch

from gan_bench.config import ModelConfig, TrainConfig
from gan_bench.data.base import DataSpec
from gan_bench.models import MODELS, build_model
from gan_bench.train.speed import SpeedSwitches, adam, apply_speed
from gan_bench.train.recipe import Recipe
from gan_bench.train.step import gan_step
from gan_bench.run.sampling import generate

torch.set_num_threads(2)  # the machine's cores; the same setting bench.py uses
CLASSES = 10
SPEED = SpeedSwitches.for_device(torch.device("cpu"))  # what train() uses on this machine


def spec(resolution: int, classes: int = CLASSES) -> DataSpec:
    channels = 1 if resolution == 28 else 3  # doodles and digits are grey; CIFAR-10 and CelebA are RGB
    return DataSpec("bench", resolution, channels, classes, [f"c{i}" for i in range(classes)])


def step_inputs(name: str, resolution: int, *, width: int, batch: int, per_class_batch: int):
    torch.manual_seed(0)
    s = spec(resolution)
    gan = apply_speed(build_model(ModelConfig(name=name, width=width), s).train(), SPEED)
    opt_g = adam(gan.G.parameters(), lr=2e-4, betas=(0.5, 0.999), speed=SPEED)
    opt_d = adam(gan.D.parameters(), lr=2e-4, betas=(0.5, 0.999), speed=SPEED)
    n = per_class_batch * CLASSES if gan.per_class else batch
    x = torch.rand(n, s.channels, resolution, resolution) * 2 - 1
    y = torch.arange(CLASSES).repeat(n // CLASSES) if gan.per_class else torch.randint(0, CLASSES, (n,))
    recipe = Recipe.of(TrainConfig()).on(amp_dtype=SPEED.amp_dtype, pairs=CLASSES if gan.per_class else 1)
    return recipe, gan, opt_d, opt_g, SPEED.input(x), y


CASES = [(e.name, r) for e in MODELS for r in e.info.resolutions]


@pytest.mark.parametrize("name,resolution", CASES)
def test_train_step(benchmark, name: str, resolution: int):
    inputs = step_inputs(name, resolution, width=16, batch=64, per_class_batch=8)
    out = benchmark.pedantic(gan_step, args=inputs, rounds=5, warmup_rounds=1)
    assert torch.isfinite(out.loss_d) and torch.isfinite(out.loss_g)


def test_train_step_seed_cdcgan(benchmark):
    """The step bench.py's comparison trains: cdcgan, width 64, batch 128, 28 px, 10 classes."""
    inputs = step_inputs("cdcgan", 28, width=64, batch=128, per_class_batch=0)
    out = benchmark.pedantic(gan_step, args=inputs, rounds=5, warmup_rounds=1)
    assert torch.isfinite(out.loss_d)


@pytest.mark.parametrize("name", [e.name for e in MODELS])
def test_sample_64(benchmark, name: str):
    """64 images (8 classes x 8 for class-aware models) from a default-width G in eval mode, 28 px."""
    torch.manual_seed(0)
    gan = build_model(ModelConfig(name=name), spec(28, classes=8))
    z, y = torch.randn(64, gan.nz), torch.arange(8).repeat_interleave(8)  # row-major, as the grid
    images = benchmark(generate, gan, z, y)
    assert images.shape == (64, 1, 28, 28)


@pytest.mark.parametrize("resolution", [28, 32, 64])
def test_eval_features_10k(benchmark, resolution: int):
    """Features of the domain evaluation network for 10,000 uint8 images (target: under 30 s on a CPU;
    with --benchmark-disable only 1,000, since that run only checks the body works)."""
    classifier = pytest.importorskip("gan_bench.metrics.classifier",
                                     reason="gan_bench/metrics/classifier.py (the evaluation network) is missing")
    s = spec(resolution)
    torch.manual_seed(0)
    net = classifier.EvalNet(channels=s.channels, resolution=resolution, num_outputs=CLASSES,
                             width=classifier.Recipe().width)
    clf = classifier.Classifier(net.eval(), "bench", {}, torch.device("cpu"))
    n = 1_000 if benchmark.disabled else 10_000
    x = torch.randint(0, 256, (n, s.channels, resolution, resolution), dtype=torch.uint8)
    feats = benchmark.pedantic(classifier.features, args=(clf, x), rounds=3, warmup_rounds=0)
    assert feats.shape == (n, classifier.FEATURE_DIM) and torch.isfinite(feats).all()
