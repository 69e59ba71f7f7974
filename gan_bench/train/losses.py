"""The GAN losses the step can train with, as a registry (train.loss names one).

The step gives a loss D's logits on both sides of the batch, float32, through d_loss() and g_loss():
  D: real (B,), fake (B,), real_targets (B,), fake_targets (B,) -> () mean over the batch; targets in
     [0, 1], 1 = real
  G: real (B,) (D's logits on the real batch, no gradient), fake (B,) (D's logits on G(z)) -> ()
A loss is written in one of two forms:
  per side (the default)   d(logits, targets) scores one side, D's loss is d(real, real_targets) +
                           d(fake, fake_targets); g(fake) is G's. bce, hinge and lsgan; the step also
                           uses d alone for train.mismatch's real images with a wrong label.
  both sides (both_sides)  d(real, fake, real_targets, fake_targets) and g(real, fake) see both sides,
                           as a relativistic loss must (ragan: how much more real the real images look
                           than the fakes on average, Jolicoeur-Martineau 2018). The G step then runs D
                           on the real batch too.
D's targets carry the seeds' stabilisers: one-sided smoothing draws the real targets from
train.real_label_range and train.label_flip swaps a target t for 1 - t. A loss whose `soft_targets`
is False only knows the two sides (hinge): it takes flips but refuses smoothed targets.

Register your own with
    register_loss("wgan", soft_targets=False, description="...")(Loss(d=..., g=...))
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F

from gan_bench.registry import Entry, Registry

Tensor = torch.Tensor


class Loss(NamedTuple):
    """d: D's loss, g: G's loss, in the form both_sides says (see the module's docstring)."""

    d: Callable[..., Tensor]
    g: Callable[..., Tensor]
    both_sides: bool = False

    @property
    def arity(self) -> tuple[int, int]:
        """How many tensors d and g take: (2, 1) per side, (4, 2) with both sides."""
        return (4, 2) if self.both_sides else (2, 1)


@dataclass(frozen=True)
class LossInfo:
    """soft_targets: targets strictly between 0 and 1 mean something (label smoothing applies)."""

    soft_targets: bool = True
    description: str = ""


def _takes(fn: Callable, n: int) -> bool:
    """Whether fn can be called with n positional arguments (True when its signature cannot be read)."""
    try:
        inspect.signature(fn).bind(*range(n))
    except TypeError:
        return False
    except ValueError:  # no signature (some C functions): leave it to the plan's check
        return True
    return True


def _check_loss(entry: Entry) -> None:
    """At registration: a Loss whose functions take what the step will pass (a plugin's import fails
    with one line naming its file and line, not the first training step)."""
    loss = entry.obj
    if not isinstance(loss, Loss):
        raise TypeError(f"loss {entry.name!r}: register a Loss(d=..., g=...), got {type(loss).__name__}")
    n_d, n_g = loss.arity
    form = ("both sides: d(real, fake, real_targets, fake_targets), g(real, fake)" if loss.both_sides
            else "per side: d(logits, targets), g(fake_logits); both_sides=True for d(real, fake, ...)")
    for part, fn, n in (("d", loss.d, n_d), ("g", loss.g, n_g)):
        if not callable(fn) or not _takes(fn, n):
            got = getattr(fn, "__qualname__", type(fn).__name__)
            raise TypeError(f"loss {entry.name!r}: {part} must take {n} tensor(s), got {got}; the form is {form}")


LOSSES: Registry[Loss, LossInfo] = Registry("loss", LossInfo, on_register=_check_loss)


# ---- what the step computes with a loss -------------------------------------------------------------
# Per-class models (pairs = K, batches ordered class-fastest: row i*K + k is class k) get the mean of
# their pairs' losses, each pair's over its own images (the step backpropagates K times it, so each
# pair's gradient is its own). For a per-side loss that is the mean over the batch; a loss comparing
# the sides compares each pair's real and fake images with its own pair's only.

def d_loss(loss: Loss, real: Tensor, fake: Tensor, real_targets: Tensor, fake_targets: Tensor, *,
           pairs: int = 1) -> Tensor:
    """D's loss: logits and targets (B,) float32 -> ()."""
    if not loss.both_sides:
        return loss.d(real, real_targets) + loss.d(fake, fake_targets)
    if pairs == 1:
        return loss.d(real, fake, real_targets, fake_targets)
    return sum(loss.d(real[k::pairs], fake[k::pairs], real_targets[k::pairs], fake_targets[k::pairs])
               for k in range(pairs)) / pairs


def g_loss(loss: Loss, real: Optional[Tensor], fake: Tensor, *, pairs: int = 1) -> Tensor:
    """G's loss: logits (B,) float32 -> (); real (D's logits on the real batch) is read only when
    loss.both_sides (the step may pass None otherwise and skip D's pass over the real images)."""
    if not loss.both_sides:
        return loss.g(fake)
    if real is None:
        raise ValueError("a loss of both sides needs D's logits on the real images in the G step")
    if pairs == 1:
        return loss.g(real, fake)
    return sum(loss.g(real[k::pairs], fake[k::pairs]) for k in range(pairs)) / pairs


def side_loss(loss: Loss, logits: Tensor, targets: Tensor) -> Tensor:
    """One side's D loss (train.mismatch: real images with a wrong label, targets 0). A loss of both sides
    has none: the plan refuses train.mismatch with it."""
    if loss.both_sides:
        raise ValueError("a loss of both sides has no one-sided D loss")
    return loss.d(logits, targets)


# ---- the built-in losses ----------------------------------------------------------------------------

def _bce_g(logits: Tensor) -> Tensor:
    # non-saturating: G maximises log D(G(z)) instead of minimising log(1 - D(G(z)))
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


LOSSES.register("bce", description="the shared recipe: BCE from logits, non-saturating G loss")(
    Loss(d=F.binary_cross_entropy_with_logits, g=_bce_g))


def _hinge_d(logits: Tensor, targets: Tensor) -> Tensor:
    sign = 2 * targets - 1  # real +1, fake -1: relu(1 - D(x)) and relu(1 + D(G(z)))
    return F.relu(1 - sign * logits).mean()


LOSSES.register("hinge", soft_targets=False,
                description="hinge D loss, G loss -D(G(z)) (Lim & Ye 2017; SN-GAN, BigGAN)")(
    Loss(d=_hinge_d, g=lambda logits: -logits.mean()))


def _ls_d(logits: Tensor, targets: Tensor) -> Tensor:
    return 0.5 * (logits - targets).pow(2).mean()


LOSSES.register("lsgan", description="least squares, 0-1 coding (Mao et al. 2017)")(
    Loss(d=_ls_d, g=lambda logits: 0.5 * (logits - 1).pow(2).mean()))


def _ragan_d(real: Tensor, fake: Tensor, real_targets: Tensor, fake_targets: Tensor) -> Tensor:
    # sigmoid(C(x_r) - mean C(x_f)): how much more real a real image looks than the average fake, and
    # the reverse for a fake; BCE towards the targets (smoothing and flips apply as to bce)
    return (F.binary_cross_entropy_with_logits(real - fake.mean(), real_targets)
            + F.binary_cross_entropy_with_logits(fake - real.mean(), fake_targets))


def _ragan_g(real: Tensor, fake: Tensor) -> Tensor:
    # the same comparison with the roles swapped: G wants its images above the average real one and the
    # real ones below the average fake (the gradient flows through the fakes' logits in both terms)
    return (F.binary_cross_entropy_with_logits(fake - real.mean(), torch.ones_like(fake))
            + F.binary_cross_entropy_with_logits(real - fake.mean(), torch.zeros_like(real)))


LOSSES.register("ragan", description="relativistic average BCE (Jolicoeur-Martineau 2018; ESRGAN's D and G loss)")(
    Loss(d=_ragan_d, g=_ragan_g, both_sides=True))
