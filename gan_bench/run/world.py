"""The processes of one run (torchrun) and the device each trains on.

World is the process group's facts (rank, size) and what ranks agree on; World() is one process and
every method is then a no-op. It sits in the run layer, below both the trainer and the metrics, which
share generation and feature extraction out over the ranks. Launched by `torchrun --nproc-per-node N
-m gan_bench run CONFIG` (WORLD_SIZE > 1), joined() starts the group (NCCL for CUDA tensors, gloo for
CPU ones). How the trainer keeps the ranks one computation is in train/distributed.py.
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as dist

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
        # Leave together: rank 0 still writes the run folder (grids, GIFs, summary) after the last step,
        # and a rank that tears gloo down while another still holds the group can abort at exit
        # (SIGABRT, "terminate called without an active exception"), which torchrun answers by stopping
        # rank 0 mid-write. Only on a normal exit: after an error a peer may never reach the barrier.
        with contextlib.suppress(Exception):
            dist.barrier()
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


def pick_device(name: str) -> torch.device:
    """train.device / --device (auto, cpu, cuda, cuda:N) as a torch device; CUDA asked for on a machine
    without it is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GanBenchError(f"device is {name!r} but no CUDA device is available; use auto or cpu")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """What a summary says the run trained on: the GPU's name, or the CPU model (and its bf16
    instructions, with which training runs 1.4 to 2.3 times as fast) and the threads the run used;
    times are only comparable on the same."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"


def cpu_model(cpuinfo: str | None = None) -> str:
    """ "Intel(R) Xeon(R) Processor with AMX", "AMD EPYC with AVX512-BF16", "AMD EPYC 7B13": the model
    name in /proc/cpuinfo (or `cpuinfo`, its text) where there is one (Linux), else what the platform
    module says; then the bf16 instructions train.fast uses (cpu_bf16), since two CPUs of one name
    can differ."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    bf16 = cpu_bf16()
    return f"{model} with {bf16}" if bf16 else model


def cpu_bf16() -> str | None:
    """The CPU's bf16 dot-product instructions, which oneDNN's convolutions and matmuls use with
    float32 accumulation: "AMX" (Intel's tiles, Sapphire Rapids and later), "AVX512-BF16" (AMD Zen 4
    and later, Intel Cooper Lake) or None. One answer for both the bf16 speed switch (train/speed.py) and
    the summary's device name, so the two cannot disagree; torch's own probes, since oneDNN is what
    has to find the instructions."""
    if _probe("_is_amx_tile_supported"):
        return "AMX"
    return "AVX512-BF16" if _probe("_is_avx512_bf16_supported") else None


def _probe(name: str) -> bool:
    probe = getattr(torch.cpu, name, None)  # private, hence the guard
    try:
        return bool(probe and probe())
    except Exception:  # a probe that fails means "not known to be there"
        return False
