"""D's model options: spectral normalisation (models/spectral.py) and the projection discriminator
(models/dcgan.py ConvD); both default off, and configs that leave them off keep their hash."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_bench.train.plan import make_plan
from gan_bench.config import ModelConfig, build_config
from gan_bench.data.base import DataSpec
from gan_bench.errors import ConfigError
from gan_bench.models import MODELS, build_model
from gan_bench.models.classdcgan import pair_state_dict
from gan_bench.models.spectral import GroupedSpectralNorm

K = 3
SPEC = DataSpec("s", 28, 1, K, ["a", "b", "c"])


def weights(D: nn.Module) -> list[tuple[nn.Module, torch.Tensor]]:
    """(layer, its normalised weight as a matrix per group) for every weight layer of D."""
    out = []
    for m in D.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            g = m.groups if isinstance(m, nn.Conv2d) else 1
            out.append((m, m.weight.reshape(g, m.weight.shape[0] // g, -1)))
    return out


@pytest.mark.parametrize("name", [e.name for e in MODELS])
def test_spectral_norm_makes_every_d_layer_1_lipschitz(name: str):
    torch.manual_seed(0)
    gan = build_model(ModelConfig(name=name, width=4, nz=8, spectral_norm=True), SPEC)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in gan.D.modules())
    assert any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in gan.G.modules()) or name == "mlpgan"
    x, y = torch.rand(6, 1, 28, 28) * 2 - 1, torch.arange(K).repeat(2)
    gan.D.train()
    with torch.no_grad():
        for _ in range(30):  # power iterations, one per forward
            gan.D(x, y)
    layers = weights(gan.D)
    assert layers and all(hasattr(m, "parametrizations") for m, _ in layers)
    for m, mats in layers:
        sigma = torch.linalg.matrix_norm(mats.detach(), ord=2)  # per group
        torch.testing.assert_close(sigma, torch.ones_like(sigma), rtol=0, atol=2e-3)


def test_grouped_spectral_norm_keeps_classdcgan_pairs_independent():
    torch.manual_seed(1)
    cfg = ModelConfig(name="classdcgan", width=4, nz=8, spectral_norm=True)
    gan = build_model(cfg, SPEC)
    assert isinstance(gan.D.net[0].parametrizations.weight[0], GroupedSpectralNorm)
    x, y = torch.rand(2 * K, 1, 28, 28) * 2 - 1, torch.arange(K).repeat(2)
    gan.D.train()
    for _ in range(3):
        gan.D(x, y)
    # a pair's logits do not depend on another pair's weights, even through the normalisation
    w = gan.D.net[2].parametrizations.weight.original
    (grad,) = torch.autograd.grad(gan.D(x, y)[0::K].sum(), w)
    o = w.shape[0] // K
    assert grad[:o].abs().sum() > 0 and torch.all(grad[o:] == 0)
    # and pair k's slice of the state dict is torch's spectral_norm state of one convdcgan D
    gan.eval()
    for k in range(K):
        single = build_model(ModelConfig(name="convdcgan", width=4, nz=8, spectral_norm=True),
                             DataSpec("s", 28, 1, 0, []))
        single.load_state_dict(pair_state_dict(gan, k))  # strict: same keys and shapes
        single.eval()
        with torch.no_grad():
            torch.testing.assert_close(single.D(x[k::K]), gan.D(x, y)[k::K], rtol=0, atol=1e-5)


def test_projection_adds_the_class_embedding_inner_product():
    torch.manual_seed(2)
    gan = build_model(ModelConfig(name="cdcgan", width=4, nz=8, d_label="projection"), SPEC)
    D = gan.D
    assert D.net[0].in_channels == 1  # the image only: no label planes
    x, y = torch.rand(6, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 2, 1, 0])
    D.eval()
    with torch.no_grad():
        phi = D.net[:-1](x)  # (B, 16, 7, 7): what the logit layer reads
        psi = D.net[-1](phi).flatten()
        expected = psi + (D.embed.weight[y] * phi.flatten(1)).sum(1)
        torch.testing.assert_close(D(x, y), expected)
        # the label moves the logit only through the embedding term
        other = (y + 1) % K
        torch.testing.assert_close(D(x, y) - D(x, other),
                                   ((D.embed.weight[y] - D.embed.weight[other]) * phi.flatten(1)).sum(1))
    assert D.embed.weight.std() < 0.05  # the DCGAN init, not torch's N(0, 1)


def test_projection_with_spectral_norm_normalises_the_embedding():
    gan = build_model(ModelConfig(name="cdcgan", width=4, nz=8, d_label="projection", spectral_norm=True), SPEC)
    assert hasattr(gan.D.embed, "parametrizations")


def test_d_label_is_checked():
    with pytest.raises(ConfigError, match="model.d_label: expected planes or projection"):
        build_config([{"model": {"d_label": "concat"}}])
    with pytest.raises(ConfigError, match="has no label input"):  # the run plan's check
        make_plan(build_config([{"model": {"name": "convdcgan", "d_label": "projection"}}]))


def test_new_keys_at_their_defaults_keep_the_hash():
    """Configs that existed before these keys hash as they did (their runs still resume)."""
    plain = build_config([], name="x")
    assert build_config([{"model": {"spectral_norm": False, "d_label": "planes"},
                          "train": {"ema": 0.0, "ema_rampup": 0.05, "diffaug": "", "loss": "bce"}}],
                        name="x").hash() == plain.hash()
    changed = [{"model": {"spectral_norm": True}}, {"model": {"d_label": "projection"}}, {"train": {"ema": 0.999}},
               {"train": {"ema": 0.999, "ema_rampup": 0.1}}, {"train": {"diffaug": "color"}}, {"train": {"loss": "hinge"}}]
    hashes = {build_config([d], name="x").hash() for d in changed}
    assert len(hashes) == len(changed) and plain.hash() not in hashes
