"""Batches drawn on the training device from uint8 tensors held in memory (no DataLoader needed).

The data set is held on the training device when it fits beside training (on a GPU, at most half of
the memory free at start-up); otherwise it stays in host memory and each batch is gathered there and
copied over asynchronously from pinned memory: slower, but a data set too large for the GPU (CelebA
at 128 px is 10 GB as uint8) trains instead of failing with an out-of-memory error.

Each epoch's order comes from a generator seeded by (seed, epoch[, class]), so a run resumed in the
middle of an epoch draws exactly the batches an uninterrupted run would. Under torchrun every rank
computes the same order and takes its own rows of each global batch: the ranks' shards of an epoch
are disjoint and together are the epoch of one process, whatever the number of processes.
"""
from __future__ import annotations

from typing import Optional

import torch

from gan_bench.data.base import ImageData, from_uint8


def fits_on_device(nbytes: int, device: torch.device, *, share: float = 0.5) -> bool:
    """Whether nbytes of data leave room for training on device: at most `share` of its free memory
    (a CPU's data is in host memory anyway)."""
    if device.type != "cuda":
        return True
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= share * free


def _perm(n: int, seed: int, *key: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(hash((seed, *key)) & 0x7FFF_FFFF_FFFF_FFFF)
    return torch.randperm(n, generator=g)


class BatchSource:
    """Mixed batches (any class), or per-class batches for one-pair-per-class models:
    batch_size images of every class, laid out class-fastest (index i*K + k is class k).

    batch_size is the global batch; rank of ranks (torchrun) gets rows rank*n .. (rank+1)*n - 1 of it,
    n = batch / ranks, which for per-class batches is whole groups of K (one image of each class)."""

    def __init__(self, data: ImageData, *, batch_size: int, seed: int, per_class: bool, device: torch.device,
                 rank: int = 0, ranks: int = 1, resident: Optional[bool] = None):
        self.nbytes = data.x.numel() * data.x.element_size()
        # resident: the data on `device` (None: if it fits beside training); else batches travel to it
        self.resident = fits_on_device(self.nbytes, device) if resident is None else resident
        home = device if self.resident else torch.device("cpu")
        self.x = data.x.to(home)  # (N, C, H, W) uint8 stays uint8, on the device when resident
        self.y = None if data.y is None else data.y.to(home)
        self.seed, self.per_class, self.device = seed, per_class, device
        # the run plan checked the batch against the data, the classes and the processes (train/plan.py); a
        # run resumed from before that check trained the batches its data gave, and still does
        self.batch_size = batch_size if per_class else min(batch_size, len(data))
        if per_class:
            self.class_index = [(data.y == c).nonzero().flatten() for c in range(data.num_classes)]
            # one epoch = each pair sees its largest class once
            self.steps_per_epoch = max(1, -(-max(len(i) for i in self.class_index) // batch_size))
        else:
            # drop the last partial batch: BatchNorm statistics of a tiny batch are noise
            self.steps_per_epoch = max(1, len(data) // self.batch_size)
        self.rank, self.ranks = rank, ranks
        self._cache: tuple[int, torch.Tensor] | None = None

    @property
    def global_batch_images(self) -> int:
        """Images in one global batch, all ranks (batch_size of every class for per-class batches)."""
        return self.batch_size * (len(self.class_index) if self.per_class else 1)

    def _epoch_index(self, epoch: int) -> torch.Tensor:
        if self._cache is None or self._cache[0] != epoch:
            if self.per_class:
                b, s = self.batch_size, self.steps_per_epoch
                cols = []
                for c, idx in enumerate(self.class_index):  # wrap around smaller classes
                    p = _perm(len(idx), self.seed, epoch, c)
                    cols.append(idx[p.repeat(-(-b * s // len(idx)))[: b * s]])
                order = torch.stack(cols, 1).reshape(-1)  # (steps * b * K,), class-fastest
            else:
                order = _perm(len(self.x), self.seed, epoch)
            self._cache = (epoch, order.to(self.x.device))  # indices live where the data does
        return self._cache[1]

    def batch(self, epoch: int, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This rank's rows of batch i of an epoch: images in [-1, 1] as float32 (B, C, H, W), labels (B,)."""
        order = self._epoch_index(epoch)
        k = len(self.class_index) if self.per_class else 1
        idx = order[i * self.batch_size * k:(i + 1) * self.batch_size * k]  # the global batch
        n = len(idx) // self.ranks
        idx = idx[self.rank * n:(self.rank + 1) * n]
        x, y = self.x[idx], None if self.y is None else self.y[idx]
        if not self.resident:  # gathered in host memory: pinned, so the copy does not block
            pin = self.device.type == "cuda"
            x = (x.pin_memory() if pin else x).to(self.device, non_blocking=pin)
            y = None if y is None else (y.pin_memory() if pin else y).to(self.device, non_blocking=pin)
        return from_uint8(x), y
