"""Plugins are user code: each registry's contract, checked once on a tiny batch before a run writes anything.

The run plan (plan.py) calls these; each runs a plugin once and reports a broken contract in one
PluginError line naming the plugin's file and line, what it returned and what was expected, as
pytest reports a broken plugin hook. An exception raised inside a plugin is "<what>: plug.py:12 raised
ValueError: <message>" (plugins.plugin_call; GAN_BENCH_DEBUG=1 prints the traceback too).

The contracts of data sets and metrics live beside their registries, since load_data() and evaluate()
check every result there, whatever command runs them; this module gathers them for the plan:
  data set       check_dataset       (data/contract.py, run by load_data)
  model          check_model         (models/contract.py)
  metric value   check_metric_value  (metrics/contract.py, run by evaluate before a line is appended)
  loss           check_loss          below
  augmentation   check_augment       below
  tracker        check_tracker       below (and trackers.check_trackers)
Each check leaves the caller's random numbers as they were.
"""
from __future__ import annotations

from typing import Callable

import torch

from gan_bench.data.contract import check_dataset
from gan_bench.metrics.contract import check_metric_value
from gan_bench.models.contract import check_model, make_model
from gan_bench.plugins import broken, describe, plugin_call
from gan_bench.train.augment import AUGMENTS, Augment, Draws
from gan_bench.train.losses import Loss, d_loss, g_loss
from gan_bench.train.trackers import check_tracker

__all__ = ["check_dataset", "check_model", "make_model", "check_metric_value", "check_loss", "check_augment",
           "check_augments", "check_tracker"]

AUGMENT = "fn(x (B, C, H, W) float, draws: Draws) -> the same shape, dtype and device"


def check_loss(loss: object, *, name: str, device: torch.device | str = "cpu", pairs: int = 1) -> None:
    """Loss `name` on tiny logits: D's and G's losses (as the step computes them, d_loss and g_loss) must
    be finite () tensors, D's must reach D's logits and G's the fakes' (a loss that detaches them trains
    nothing)."""
    what = f"loss {name!r}"
    if not isinstance(loss, Loss):
        raise broken(what, loss, describe(loss), "a Loss(d=..., g=...) (from gan_bench import Loss)")
    with torch.random.fork_rng(devices=[]):
        g = torch.Generator().manual_seed(0)
        n = 2 * pairs
        real, fake = (torch.randn(n, generator=g).to(device) for _ in range(2))
        ones, zeros = torch.ones(n, device=device), torch.zeros(n, device=device)
        real.requires_grad_(True), fake.requires_grad_(True)
        if not loss.both_sides:  # each side's value first: two Nones would fail in the step's sum
            for logits, targets in ((real, ones), (fake.detach(), zeros)):
                with plugin_call(f"{what}: d", loss.d, expects=_form(loss, "d")):
                    side = loss.d(logits, targets)
                _scalar(side, what + ": d", loss.d, n)
        with plugin_call(f"{what}: d", loss.d, expects=_form(loss, "d")):
            out_d = d_loss(loss, real, fake.detach(), ones, zeros, pairs=pairs)
        _scalar(out_d, what + ": d", loss.d, n)
        if not out_d.requires_grad:
            raise broken(what + ": d", loss.d, "a loss with no gradient to D's logits",
                         "a function of the logits (do not detach them or call .item())")
        with plugin_call(f"{what}: g", loss.g, expects=_form(loss, "g")):
            out_g = g_loss(loss, real if loss.both_sides else None, fake, pairs=pairs)
        _scalar(out_g, what + ": g", loss.g, n)
        if not out_g.requires_grad:
            raise broken(what + ": g", loss.g, "a loss with no gradient to the fakes' logits",
                         "a function of the logits (do not detach them or call .item())")


def _form(loss: Loss, part: str) -> str:
    if loss.both_sides:
        return "d(real, fake, real_targets, fake_targets) -> ()" if part == "d" else "g(real, fake) -> ()"
    return "d(logits (B,), targets (B,)) -> ()" if part == "d" else "g(fake_logits (B,)) -> ()"


def _scalar(out: object, what: str, fn: Callable, n: int) -> None:
    expected = f"a finite () tensor, the mean over the batch (the logits were ({n},) float32)"
    if not isinstance(out, torch.Tensor) or out.dim() != 0 or not out.is_floating_point():
        raise broken(what, fn, describe(out), expected + (": take .mean()" if isinstance(out, torch.Tensor) else ""))
    if not torch.isfinite(out):
        raise broken(what, fn, f"{out.item()}", expected)


def check_augment(fn: Augment, x: torch.Tensor, *, name: str) -> torch.Tensor:
    """Augmentation `name` on the images x (B, C, H, W) float in [-1, 1] (a real batch, or G's): what it
    returns must have x's shape, dtype and device (D reads it as it read x), be finite, and pass the
    gradient back to x (G learns through it: an augmentation that detaches its input trains no G)."""
    what = f"augmentation {name!r}"
    x = x.detach().clone().requires_grad_(True)  # as G's images come: with a gradient to pass back
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        with plugin_call(what, fn, expects=AUGMENT):
            out = fn(x, Draws(len(x), x.device))
    expected = f"a {str(x.dtype).replace('torch.', '')} tensor of shape {tuple(x.shape)} on {x.device}, as it was given"
    if (not isinstance(out, torch.Tensor) or out.shape != x.shape or out.dtype != x.dtype
            or out.device != x.device):
        got = describe(out) + (f" on {out.device}" if isinstance(out, torch.Tensor) else "")
        raise broken(what, fn, got, expected)
    if not torch.isfinite(out).all():
        raise broken(what, fn, f"{int((~torch.isfinite(out)).sum())} NaN or infinite values", expected + ", finite")
    if not out.requires_grad:
        raise broken(what, fn, "images with no gradient to its input", "a function of x that passes the gradient "
                     "back (G learns through it: do not detach x or leave torch)")
    return out.detach()


def check_augments(policy: str, x: torch.Tensor) -> None:
    """Each augmentation of a train.diffaug policy ("a,b") on x, in turn (one's output is the next's input)."""
    for n in (n.strip() for n in policy.split(",") if n.strip()):
        x = check_augment(AUGMENTS.get(n), x, name=n)
