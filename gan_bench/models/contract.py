"""A model's contract (models/base.py), checked once on a tiny batch before anything is written.

A factory is fn(spec: DataSpec, cfg: ModelConfig) -> GAN, its G and D torch modules with weights to
train; G(z (B, nz) float32, y (B,) int64 or None) returns images (B, C, H, W) float32 in [-1, 1] for any
B, through which the gradient reaches G's weights; D(x (B, C, H, W), y) returns logits (B,) through which
the gradient reaches D's weights and x (G learns through D). What a model that breaks it returned,
against what was expected, is one PluginError line naming its file and line. The check leaves the
model's state (BatchNorm statistics, spectral norm's vectors) and the caller's random numbers
as they were, so a checked run trains as an unchecked one would.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from gan_bench.data.base import DataSpec
from gan_bench.models.base import GAN, MODELS
from gan_bench.plugins import broken, describe, plugin_call

FACTORY = "fn(spec: DataSpec, cfg: ModelConfig) -> GAN"
G_CALL = "G.forward(z (B, nz), y (B,) int64 or None) -> images (B, C, H, W)"
D_CALL = "D.forward(x (B, C, H, W), y (B,) int64 or None) -> logits (B,)"
SLACK = 1e-3  # how far past [-1, 1] G's images may stray (tanh in float32 stays inside)


def make_model(name: str, spec: DataSpec, cfg) -> GAN:
    """The registered factory's GAN, called as gan-bench calls it, its type checked (a plugin's exception
    or wrong signature is one line)."""
    factory = MODELS.get(name)
    with plugin_call(f"model {name!r}", factory, expects=FACTORY):
        gan = factory(spec, cfg)
    check_type(gan, spec, name=name, nz=cfg.nz, factory=factory)
    return gan


def check_type(gan: object, spec: DataSpec, *, name: str, nz: Optional[int] = None,
               factory: Optional[Callable] = None) -> None:
    """What a factory returned: a GAN for this data set, as its ModelInfo describes it."""
    what = f"model {name!r}"
    if not isinstance(gan, GAN):
        raise broken(what, factory, describe(gan), "a GAN: GAN(G, D, nz=cfg.nz, spec=spec, conditional=...) "
                                                   "(from gan_bench import GAN)")
    for part in ("G", "D"):
        net = getattr(gan, part)
        if not isinstance(net, torch.nn.Module):
            raise broken(what, factory, f"a GAN whose {part} is {describe(net)}",
                         f"{part} a torch.nn.Module (its forward is what gan-bench calls; gan_bench.Layers wraps "
                         f"nn.Sequential)")
        if not any(p.requires_grad for p in net.parameters()):
            raise broken(what, factory, f"a GAN whose {part} has no weights to train",
                         f"{part} with parameters (nn.Linear, nn.Conv2d, ...) that require grad")
    if not isinstance(gan.spec, DataSpec):
        raise broken(what, factory, f"GAN(spec={describe(gan.spec)})",
                     "spec=spec, the DataSpec the factory was given")
    info = MODELS.info(name) if name in MODELS else None
    if nz is not None and gan.nz != nz:
        raise broken(what, factory, f"GAN(nz={gan.nz!r})", f"nz={nz} (model.nz): pass nz=cfg.nz and size G by it")
    if (gan.spec.resolution, gan.spec.channels, gan.spec.classes) != (spec.resolution, spec.channels, spec.classes):
        raise broken(what, factory, f"a GAN for {gan.spec.resolution}px {gan.spec.channels}-channel images of "
                     f"{gan.spec.num_classes} classes", f"spec=spec, the data set it was given ({spec.resolution}px, "
                     f"{spec.channels} channels, {spec.num_classes} classes)")
    if info is not None and (gan.conditional, gan.per_class) != (info.conditional, info.per_class):
        raise broken(what, factory, f"GAN(conditional={gan.conditional}, per_class={gan.per_class})",
                     f"conditional={info.conditional}, per_class={info.per_class}, as register_model said")


def check_model(gan: object, spec: DataSpec, nz: Optional[int] = None, device: Optional[torch.device] = None, *,
                name: str, factory: Optional[Callable] = None, real: Optional[torch.Tensor] = None) -> None:
    """The factory's result (check_type), then G on two latent vectors per class and D on two real images
    (`real`, (n, C, H, W) in [-1, 1]; random ones when None), with the labels the trainer passes: per-class
    models take K * 2 images ordered class-fastest; labelled data gives every model y, and unconditional
    models are also drawn with y None, as the sample grids are. The gradient of D's logits must reach D's
    weights and its input, and that of G's images G's weights. Then G and D once more on three per
    class: a model must take any batch size (grids and evaluations draw others). On gan's device (or
    `device`)."""
    check_type(gan, spec, name=name, nz=nz, factory=factory)
    assert isinstance(gan, GAN)
    if device is None:
        device = next((p.device for p in gan.parameters()), torch.device("cpu"))
    device = torch.device(device)
    k = max(spec.num_classes, 1)
    saved = {n: t.detach().clone() for n, t in gan.named_buffers()}
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            g = torch.Generator(device=device).manual_seed(0)
            for per_class in (2, 3):
                b = per_class * k if gan.per_class else per_class
                y = torch.arange(k, device=device).repeat(per_class) if gan.per_class else (
                    torch.arange(b, device=device) % k if spec.labelled else None)
                z = torch.randn(b, gan.nz, generator=g, device=device)
                with torch.set_grad_enabled(per_class == 2):  # the gradient once, on the first batch
                    images = _g(gan, z, y, spec, name=name)
                    if per_class == 2:
                        _reaches(images, gan.G, f"model {name!r}: G(z, {'y' if y is not None else 'None'})",
                                 "images whose gradient reaches G's weights (do not detach them or leave torch)")
                    if y is not None and not (gan.conditional or gan.per_class):
                        _g(gan, z, None, spec, name=name)  # the sample grids' call
                    x = real[:b].to(device).float().clone() if real is not None and len(real) >= b else (
                        torch.rand(images.shape, generator=g, device=device) * 2 - 1)
                    x.requires_grad_(per_class == 2)
                    logits = _d(gan, x, y, name=name)
                    if per_class == 2:
                        what = f"model {name!r}: D(x, {'y' if y is not None else 'None'})"
                        _reaches(logits, gan.D, what, "logits whose gradient reaches D's weights (do not detach them)")
                        (dx,) = torch.autograd.grad(logits.sum(), x, allow_unused=True)
                        if dx is None:
                            raise broken(what, gan.D, "logits with no gradient to its input x",
                                         "logits computed from x: G learns through D's gradient to x (do not detach x)")
    finally:
        buffers = dict(gan.named_buffers())
        for n, t in saved.items():
            buffers[n].copy_(t)


def _reaches(out: torch.Tensor, net: torch.nn.Module, what: str, expected: str) -> None:
    """The gradient of out reaches net's weights."""
    if not out.requires_grad:
        raise broken(what, net, "a tensor with no gradient to the model's weights", expected)


def _g(gan: GAN, z: torch.Tensor, y: Optional[torch.Tensor], spec: DataSpec, *, name: str) -> torch.Tensor:
    b = len(z)
    what = f"model {name!r}: G(z, {'y' if y is not None else 'None'})"
    with plugin_call(what, gan.G, expects=G_CALL):
        out = gan.G(z, y)
    want = (b, spec.channels, spec.resolution, spec.resolution)
    expected = f"a float32 tensor of shape {want} in [-1, 1] (data set {spec.name!r}; z was ({b}, {gan.nz}))"
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want or out.dtype != torch.float32:
        raise broken(what, gan.G, describe(out), expected)
    if not torch.isfinite(out).all():
        raise broken(what, gan.G, f"{int((~torch.isfinite(out)).sum())} NaN or infinite values", expected)
    lo, hi = out.min().item(), out.max().item()
    if lo < -1 - SLACK or hi > 1 + SLACK:
        raise broken(what, gan.G, f"values in [{lo:.3g}, {hi:.3g}]", f"{expected}: end G with tanh")
    return out


def _d(gan: GAN, x: torch.Tensor, y: Optional[torch.Tensor], *, name: str) -> torch.Tensor:
    what = f"model {name!r}: D(x, {'y' if y is not None else 'None'})"
    with plugin_call(what, gan.D, expects=D_CALL):
        out = gan.D(x, y)
    expected = f"one logit per image, a float tensor of shape ({len(x)},) (x was {tuple(x.shape)})"
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(x),) or not out.is_floating_point():
        hint = (": flatten it (.flatten() or .view(-1))" if isinstance(out, torch.Tensor) and out.numel() == len(x)
                and out.dim() != 1 else "")
        raise broken(what, gan.D, describe(out), expected + hint)
    if not torch.isfinite(out).all():
        raise broken(what, gan.D, f"{int((~torch.isfinite(out)).sum())} NaN or infinite logits", expected)
    return out
