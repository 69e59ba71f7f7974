"""Many processes through torchrun: the data-parallel GAN.

Launched by `torchrun --nproc-per-node N -m gan_bench run CONFIG` (WORLD_SIZE > 1), each process
joins one process group (NCCL for CUDA tensors, gloo for CPU ones) and trains one shard of every
global batch. Without torchrun, or with WORLD_SIZE=1, the world is World(): one process, every
method below a no-op, and the trainer runs exactly its single-process code.

How the ranks stay one computation (train/step.py, train/batches.py, train/loop.py):
  - every rank seeds the same RNGs and draws the same global random tensors (z, targets, flips,
    instance noise), keeping its own rows, so the ranks together compute the step of one process;
  - the batch in the config is the global one; rank r takes rows r*n .. (r+1)*n - 1 of it (whole
    class groups for per-class models); losses are shard means and DDP averages the gradients;
  - rank 0 alone writes the run folder; decisions that end the loop (a signal, a non-finite loss)
    are agreed on at every step, so no rank waits forever in a collective the others left.

The process group itself (World, joined) is in run/world.py, below the trainer and the metrics.
"""
from __future__ import annotations

import contextlib
import inspect
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from gan_bench.models.base import GAN
from gan_bench.run.world import World

# ---- the data-parallel GAN --------------------------------------------------------------------

def data_parallel(gan: nn.Module, world: World, *, sync_bn: bool) -> nn.Module:
    """The GAN the training step runs: G and D each in DistributedDataParallel, sharing parameters
    with `gan` (whose state dicts, the checkpoint's, stay those of one process). Dropout draws the
    global batch's mask (GlobalDropout); sync_bn: BatchNorm over the global batch (torch's
    SyncBatchNorm on GPUs, GlobalBatchNorm elsewhere). One process: gan itself, unchanged."""
    if not world.distributed:
        return gan
    device = next(gan.parameters()).device
    GlobalDropout.convert(gan, world)  # in place, like the BatchNorm layers below
    if sync_bn:  # in place: the same parameters, buffers and state-dict keys
        if device.type == "cuda":
            nn.SyncBatchNorm.convert_sync_batchnorm(gan)
        else:
            GlobalBatchNorm.convert(gan)

    def ddp(m: nn.Module) -> nn.Module:
        # synchronised statistics are equal on every rank already; otherwise rank 0's are broadcast
        return nn.parallel.DistributedDataParallel(m, device_ids=[device] if device.type == "cuda" else None,
                                                   **{_SYNC_BUFFERS: not sync_bn})

    return GAN(ddp(gan.G), ddp(gan.D), nz=gan.nz, spec=gan.spec, conditional=gan.conditional,
               per_class=gan.per_class)


# torch 2.14 renamed DDP's broadcast_buffers (the project supports torch >= 2.2)
_SYNC_BUFFERS = ("forward_sync_buffers" if "forward_sync_buffers" in
                 inspect.signature(nn.parallel.DistributedDataParallel).parameters else "broadcast_buffers")


def no_sync(module: nn.Module) -> contextlib.AbstractContextManager:
    """DDP's no_sync() for a wrapped module (gradients that are thrown away need no all-reduce)."""
    return module.no_sync() if isinstance(module, nn.parallel.DistributedDataParallel) else contextlib.nullcontext()


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the batch of all ranks, on any device (torch's SyncBatchNorm takes GPU tensors
    only). The mean, then the variance (two passes, as accurate as one process's BatchNorm) are
    all-reduced differentiably, so each rank's backward gets the gradient of the global batch."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (B, C, ...), got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dtype, x = x.dtype, x.float()  # statistics in float32 also under bf16 autocast (coarse bf16 sums)
        dims = [0, *range(2, x.dim())]            # all but the channel axis
        shape = [1, -1] + [1] * (x.dim() - 2)      # (1, C, 1, ...)
        count = torch.tensor([x.numel() // x.shape[1]], device=x.device, dtype=x.dtype)
        total = _AllReduce.apply(torch.cat([x.sum(dims), count]))  # (C + 1,) sums over every rank
        n = total[-1].detach()
        mean = total[:-1] / n
        centred = x - mean.view(shape)
        var_sum = _AllReduce.apply((centred * centred).sum(dims))  # (C,)
        y = centred * torch.rsqrt(var_sum / n + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:  # as BatchNorm: momentum average, unbiased variance
            self.num_batches_tracked.add_(1)
            m = 1.0 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
            with torch.no_grad():
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var_sum.detach() / (n - 1), alpha=m)
        return y.to(dtype)

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """Replace every BatchNorm layer under module, in place, keeping its parameters and buffers."""
        def swap(child: nn.modules.batchnorm._BatchNorm) -> "GlobalBatchNorm":
            new = cls(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            # the very tensors, as torch's convert_sync_batchnorm does: the optimiser holds the parameters
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            if child.track_running_stats:
                new.running_mean, new.running_var = child.running_mean, child.running_var
                new.num_batches_tracked = child.num_batches_tracked
            return new.train(child.training)

        return _replace(module, lambda c: isinstance(c, nn.modules.batchnorm._BatchNorm) and not isinstance(c, cls),
                        swap)


class _AllReduce(torch.autograd.Function):
    """Sum over ranks with a gradient: the gradient of a sum every rank sees is the sum of theirs.
    (torch.distributed.nn's is deprecated in torch 2.14, the functional one has no gradient in 2.2.)"""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalDropout(nn.Dropout):
    """Dropout keeping this rank's rows of the mask one process draws for the global batch: the same
    masks as one process, and the RNG advances as in one process (so the next z is the same too)."""

    def __init__(self, p: float, *, rank: int, ranks: int) -> None:
        super().__init__(p)
        self.rank, self.ranks = rank, ranks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        n = len(x)
        full = x.new_ones((n * self.ranks, *x.shape[1:]))  # F.dropout of ones: the mask, scaled by 1/(1-p)
        return x * nn.functional.dropout(full, self.p, True)[self.rank * n:(self.rank + 1) * n]

    @classmethod
    def convert(cls, module: nn.Module, world: World) -> nn.Module:
        """Replace every nn.Dropout under module, in place (dropout has no parameters or buffers)."""
        return _replace(module, lambda c: type(c) is nn.Dropout,
                        lambda c: cls(c.p, rank=world.rank, ranks=world.size).train(c.training))


def _replace(module: nn.Module, match: Callable[[nn.Module], bool],
             make: Callable[[Any], nn.Module]) -> nn.Module:
    """Replace, in place and at any depth, every submodule for which match() holds by make(it)."""
    for name, child in module.named_children():
        if match(child):
            module.add_module(name, make(child))
        else:
            _replace(child, match, make)
    return module
