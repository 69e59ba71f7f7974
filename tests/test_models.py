"""Tests of the model registry: the G/D contract for every model, compatibility checks, and that
classdcgan's grouped pairs are exactly independent convdcgan pairs (outputs and gradients)."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from gan_bench.config import ModelConfig
from gan_bench.data.base import DataSpec
from gan_bench.errors import ConfigError
from gan_bench.models import MODELS, build_model, check_compatible, compatible_models
from gan_bench.models.classdcgan import pair_state_dict

K = 3  # classes
B = 2 * K  # a class-fastest batch: y = 0, 1, 2, 0, 1, 2


def spec(resolution: int, channels: int, classes: int = K) -> DataSpec:
    return DataSpec("fake", resolution, channels, classes, [f"c{i}" for i in range(classes)])


def class_fastest(b: int = B) -> torch.Tensor:
    return torch.arange(K).repeat(b // K)


CASES = [(e.name, r, c) for e in MODELS for r in e.info.resolutions for c in (1, 3)]


@pytest.mark.parametrize("name,resolution,channels", CASES)
def test_contract(name: str, resolution: int, channels: int) -> None:
    torch.manual_seed(0)
    gan = build_model(ModelConfig(name=name, nz=16, width=8), spec(resolution, channels))
    y = class_fastest()
    x = gan.G(torch.randn(B, 16), y)
    assert x.shape == (B, channels, resolution, resolution)
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0
    logits = gan.D(x, y)
    assert logits.shape == (B,)
    F.binary_cross_entropy_with_logits(logits, torch.ones(B)).backward()
    for part in (gan.G, gan.D):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0


@pytest.mark.parametrize("name", ["classdcgan", "cdcgan"])
def test_labelled_models_refused_on_unlabelled_data(name: str) -> None:
    unlabelled = spec(28, 1, classes=0)
    with pytest.raises(ConfigError, match="needs class labels") as e:
        check_compatible(name, unlabelled)
    fits = str(e.value).split("models that fit:")[1]
    assert "convdcgan" in fits and "lindcgan" in fits and "mlpgan" in fits
    assert "classdcgan" not in fits and "cdcgan" not in fits.replace("convdcgan", "")
    assert name not in compatible_models(unlabelled) and name in compatible_models(spec(28, 1))


def test_mlpgan_width_64_is_the_seed() -> None:
    gan = build_model(ModelConfig(name="mlpgan", width=64), spec(28, 1))
    sizes = lambda m: [l.out_features for l in m.modules() if isinstance(l, torch.nn.Linear)]  # noqa: E731
    assert sizes(gan.G) == [256, 512, 1024, 2048, 28 * 28]
    assert sizes(gan.D) == [1024, 512, 256, 1]


def test_lindcgan_starts_at_7_for_28_pixels() -> None:
    gan = build_model(ModelConfig(name="lindcgan", width=8), spec(28, 1))
    assert gan.G.shape == (32, 7, 7)  # width * 2**2 maps of 7 x 7, doubled twice to 28
    assert isinstance(gan.G.net[-2], torch.nn.Conv2d) and gan.G.net[-2].kernel_size == (3, 3)
    assert isinstance(gan.D.net[-1], torch.nn.Linear) and gan.D.net[-1].in_features == 32 * 7 * 7


def test_classdcgan_checks_the_batch_layout() -> None:
    gan = build_model(ModelConfig(name="classdcgan", nz=8, width=4), spec(28, 1))
    with pytest.raises(AssertionError, match="class-fastest"):
        gan.G(torch.randn(B + 1, 8), None)
    with pytest.raises(AssertionError, match="y\\[i\\*K"):
        gan.D(torch.zeros(B, 1, 28, 28), torch.arange(K).repeat_interleave(2))  # class-major, not fastest


# ---- classdcgan pair k == an independent convdcgan ----------------------------------------------

def grouped_and_pairs(resolution: int, channels: int):
    """A classdcgan with non-trivial BN statistics, and each of its pairs loaded into a convdcgan."""
    torch.manual_seed(1)
    cfg = ModelConfig(name="classdcgan", nz=8, width=4)
    gan = build_model(cfg, spec(resolution, channels))
    with torch.no_grad():
        for w in gan.parameters():  # N(0, 0.02) at width 4 gives outputs near 0: too easy to match
            if w.dim() > 1:
                w.normal_(0.0, 0.15)
        # move BN running statistics away from their (0, 1) start
        gan.D(gan.G(torch.randn(4 * K, 8), class_fastest(4 * K)) * 0.5 + 0.1, None)
    pairs = []
    for k in range(K):
        single = MODELS.get("convdcgan")(spec(resolution, channels, classes=0), cfg)
        single.load_state_dict(pair_state_dict(gan, k))  # strict: same names, same shapes
        pairs.append(single)
    return gan, pairs


@pytest.mark.parametrize("resolution,channels", [(28, 1), (32, 3), (64, 1)])
def test_classdcgan_pairs_equal_convdcgan_outputs(resolution: int, channels: int) -> None:
    gan, pairs = grouped_and_pairs(resolution, channels)
    gan.eval()
    z, x = torch.randn(B, 8), torch.rand(B, channels, resolution, resolution) * 2 - 1
    with torch.no_grad():
        fake, logits = gan.G(z, class_fastest()), gan.D(x, class_fastest())
        for k, single in enumerate(pairs):
            single.eval()
            torch.testing.assert_close(single.G(z[k::K]), fake[k::K], rtol=0, atol=1e-5)
            torch.testing.assert_close(single.D(x[k::K]), logits[k::K], rtol=0, atol=1e-5)
    assert not torch.allclose(fake[0::K], fake[1::K], atol=1e-3), "pairs are independently initialised"


def _loss(gan, z: torch.Tensor, x: torch.Tensor, y) -> torch.Tensor:
    """A D loss on real images plus a loss through G, as the trainer computes them (train mode)."""
    d_real, d_fake = gan.D(x, y), gan.D(gan.G(z, y), y)
    return F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
        F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))


@pytest.mark.parametrize("resolution,channels", [(28, 1), (32, 3), (64, 1)])
def test_classdcgan_pair_gradients_equal_convdcgan(resolution: int, channels: int) -> None:
    gan, pairs = grouped_and_pairs(resolution, channels)
    z, x = torch.randn(2 * B, 8), torch.rand(2 * B, channels, resolution, resolution) * 2 - 1
    (_loss(gan, z, x, class_fastest(2 * B)) * K).backward()  # the trainer's per-class scaling
    grads = copy.deepcopy(gan)
    with torch.no_grad():  # the grads laid out as weights, so pair_state_dict slices them alike
        for g, p in zip(grads.parameters(), gan.parameters()):
            g.copy_(p.grad)
    for k, single in enumerate(pairs):
        _loss(single, z[k::K], x[k::K], None).backward()  # batch statistics of class k only
        expected = pair_state_dict(grads, k)
        for name, p in single.named_parameters():
            err = (expected[name] - p.grad).norm() / p.grad.norm()
            assert err < 1e-4, f"pair {k} {name}: relative error {err:.2e}"
