"""Many processes through torchrun: the process group, the data-parallel GAN, what ranks agree on.

Launched by `torchrun --nproc-per-node N -m gan_bench run CONFIG` (WORLD_SIZE > 1), each process
joins one process group (NCCL for CUDA tensors, gloo for CPU ones) and trains one shard of every
global batch. Without torchrun, or with WORLD_SIZE=1, the world is World(): one process, every
method below a no-op, and the trainer runs exactly its single-process code.

How the ranks stay one computation (train/fast.py, train/batches.py, train/loop.py):
  - every rank seeds the same RNGs and draws the same global random tensors (z, targets, flips,
    instance noise), keeping its own rows, so the ranks together compute the step of one process;
  - the batch in the config is the global one; rank r takes rows r*n .. (r+1)*n - 1 of it (whole
    class groups for per-class models); losses are shard means and DDP averages the gradients;
  - rank 0 alone writes the run folder; decisions that end the loop (a signal, a non-finite loss)
    are agreed on at every step, so no rank waits forever in a collective the others left.
"""
from __future__ import annotations

import contextlib
import inspect
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from gan_bench.errors import ConfigError, GanBenchError

T = TypeVar("T")
TIMEOUT_ENV = "GAN_BENCH_DIST_TIMEOUT"   # seconds a collective may wait for another rank
DEFAULT_TIMEOUT_S = 1800.0               # long enough for rank 0 to train an evaluation network
# what gloo and NCCL say when a peer process died or stopped answering
_PEER_LOST = ("connection closed by peer", "connection reset by peer", "connection refused", "broken pipe",
              "timed out", "timeout")


class PeerLost(GanBenchError):
    """Another rank died or hung: this rank stops instead of waiting (torchrun ends the job)."""


@dataclass(frozen=True)
class World:
    """The processes training one run: rank 0 .. size - 1; World() is one process."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run folder."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @classmethod
    def current(cls) -> "World":
        """The world of the process group this process is in (none: one process)."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    def broadcast(self, obj: T) -> T:
        """Rank 0's obj on every rank (any picklable object; it travels through gloo on the CPU)."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def on_main(self, fn: Callable[[], T]) -> T:
        """fn() run by rank 0 alone (creating the run folder, reading a checkpoint); every rank gets its
        result, or raises the GanBenchError it raised, so a bad path fails every rank with one line."""
        if not self.distributed:
            return fn()
        result, error = self.broadcast(self._main_try(fn))
        if error is not None:
            raise error
        return result

    def main_first(self, fn: Callable[[], T]) -> T:
        """fn() on rank 0, then on the others: rank 0 fills a cache (an evaluation network) that the
        others load, instead of every rank training it at once."""
        if not self.distributed:
            return fn()
        result, error = self._main_try(fn)
        error = self.broadcast(error)  # the other ranks wait here for rank 0
        if error is not None:
            raise error
        return result if self.is_main else fn()

    def _main_try(self, fn: Callable[[], T]) -> tuple[Any, Any]:
        """(fn(), None) or (None, the GanBenchError it raised) on rank 0; (None, None) elsewhere."""
        if not self.is_main:
            return None, None
        try:
            return fn(), None
        except GanBenchError as e:
            return None, e

    def agree(self, healthy: bool, stopping: bool) -> tuple[bool, bool]:
        """(every rank healthy, some rank stopping): one CPU all-reduce, so all ranks leave together."""
        if not self.distributed:
            return healthy, stopping
        flags = torch.tensor([int(not healthy), int(stopping)])
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return not flags[0].item(), bool(flags[1].item())

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of t (shard means of equal shards -> the global mean), on t's device."""
        if not self.distributed:
            return t
        t = t.clone()
        dist.all_reduce(t)
        return t / self.size

    def map_chunks(self, fn: Callable[[Any], T], chunks: list[Any]) -> list[T]:
        """[fn(c) for c in chunks], sharded: rank r computes chunks r, r + size, ... and every rank gets
        every result, in order. Each chunk is computed as one process would compute it, so the results
        are those of one process; results must be picklable (CPU tensors). fn must not communicate:
        a rank with fewer chunks (or none) would not join its collectives."""
        mine = [fn(c) for c in chunks[self.rank::self.size]]
        if not self.distributed:
            return mine
        parts: list[Any] = [None] * self.size
        dist.all_gather_object(parts, mine)
        return [parts[i % self.size][i // self.size] for i in range(len(chunks))]


def _timeout() -> timedelta:
    raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise GanBenchError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds > 0, e.g. 600")
    return timedelta(seconds=seconds)


@contextlib.contextmanager
def joined(device: torch.device) -> Iterator[tuple[World, torch.device]]:
    """This process's world and device. Under torchrun (WORLD_SIZE > 1) the process group is started
    here and ended on leaving (unless the caller started one); each rank takes the GPU of its
    LOCAL_RANK when `device` is CUDA. Otherwise (World(), device)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1 or dist.is_initialized():
        world = World.current()
        yield world, _rank_device(device) if world.distributed else device
        return
    device = _rank_device(device)
    try:
        if device.type == "cuda":  # NCCL for the gradients, gloo for CPU messages (run folder, stop flags)
            dist.init_process_group("cpu:gloo,cuda:nccl", timeout=_timeout(), device_id=device)
        else:
            dist.init_process_group("gloo", timeout=_timeout())
    except (RuntimeError, ValueError) as e:
        raise GanBenchError(f"could not join the other torchrun processes ({first_line(e)}); check "
                            f"--nnodes, --rdzv-endpoint and that every node can reach it") from None
    try:
        yield World.current(), device
    finally:
        with contextlib.suppress(Exception):  # a lost peer can make the teardown fail; we exit anyway
            dist.destroy_process_group()


def _rank_device(device: torch.device) -> torch.device:
    """cuda:LOCAL_RANK for a CUDA run under torchrun; a CPU device unchanged."""
    if device.type != "cuda":
        return device
    if device.index is not None:
        raise ConfigError(f"train.device is {device}, but under torchrun each process takes the GPU of its "
                          f"LOCAL_RANK; set train.device to auto or cuda")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if local >= torch.cuda.device_count():
        raise GanBenchError(f"LOCAL_RANK {local} but this node sees {torch.cuda.device_count()} GPU(s); "
                            f"give torchrun --nproc-per-node at most the number of GPUs")
    torch.cuda.set_device(local)
    return torch.device("cuda", local)


def peer_lost(e: BaseException) -> bool:
    """Is e what a collective raises when another rank died or timed out?"""
    return isinstance(e, getattr(dist, "DistError", ())) or (
        isinstance(e, RuntimeError) and any(m in str(e).lower() for m in _PEER_LOST))


def first_line(e: BaseException) -> str:
    """The gist of a backend error: its first sentence, without gloo's [source.cc:123] prefix."""
    line = (str(e).strip().splitlines() or [type(e).__name__])[0]
    line = re.sub(r"^\[[^\]]*\]\s*", "", line)
    return line.split(". ")[0][:200]


# ---- the data-parallel GAN --------------------------------------------------------------------

def data_parallel(gan: nn.Module, world: World, *, sync_bn: bool) -> nn.Module:
    """The GAN the training step runs: G and D each in DistributedDataParallel, sharing parameters
    with `gan` (whose state dicts, the checkpoint's, stay those of one process). Dropout draws the
    global batch's mask (GlobalDropout); sync_bn: BatchNorm over the global batch (torch's
    SyncBatchNorm on GPUs, GlobalBatchNorm elsewhere). One process: gan itself, unchanged."""
    if not world.distributed:
        return gan
    from gan_bench.models.base import GAN

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
