"""The speed switches of the step, chosen per device.

"Speed switch" is this file's word for what changes how fast a step runs, never what it computes
(a recipe change, such as a loss or G's average, is a "lever": report/levers.py, the *_levers suites).
The switches (channels_last, bf16 autocast, fused Adam, cudnn benchmark, torch.compile, asynchronous
logging) are chosen per device by SpeedSwitches.for_device(): all of them on CUDA (bf16 only on GPUs with
bf16 tensor cores; compile only if asked); on a CPU those measured to help there: channels_last
(oneDNN's NHWC convolutions), fused Adam and, on CPUs with bf16 instructions (AMX, AVX512-BF16), bf16
autocast. With every switch off (train.fast=false) the step is plain eager float32.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Optional, Sequence

import torch

from gan_bench.models import GAN
from gan_bench.run.world import cpu_bf16


def cpu_has_bf16() -> bool:
    """bf16 autocast pays on a CPU with bf16 instructions (run/world.cpu_bf16: AMX or AVX512-BF16).
    Measured on a 2-core Xeon with AMX, 2.1-2.3x float32's speed for the convolutional models, and on
    a 2-core AMD EPYC with AVX512-BF16 1.4x (the MLP) to 1.7x (convdcgan at 64 px), the speed tables
    of benchmarks/README.md. Without either, oneDNN emulates bf16, so it stays off."""
    return cpu_bf16() is not None


def cuda_has_bf16(device: torch.device) -> bool:
    """bf16 tensor cores: compute capability 8.0 and later (A100, RTX 30xx, H100 and newer). Older GPUs
    (T4, V100, P100, RTX 20xx: many notebook and teaching GPUs) emulate bf16, slower than float32, and
    torch.cuda.is_bf16_supported() still says yes on them (it counts emulation), hence the capability."""
    try:
        return torch.cuda.get_device_capability(device)[0] >= 8
    except Exception:  # no CUDA here: not known to help
        return False


@dataclass(frozen=True)
class SpeedSwitches:
    """Speed-ups of the step; each one can be switched off alone (the benchmark's speed table)."""

    channels_last: bool = False     # NHWC activations: tensor-core convolutions without transposes
    bf16: bool = False              # G and D under bf16 autocast; losses in float32 from the logits
    fused_adam: bool = False        # one kernel per optimiser step instead of one per parameter
    cudnn_benchmark: bool = False   # pick the fastest convolution algorithm for the fixed shapes
    compile: bool = False           # torch.compile G and D (mode below; reduce-overhead = CUDA graphs)
    compile_mode: str = "max-autotune-no-cudagraphs"
    async_log: bool = False         # logged scalars copied to the host without waiting for the device

    @classmethod
    def for_device(cls, device: torch.device, *, compile: bool = False) -> "SpeedSwitches":
        """Every switch on for CUDA (bf16 where the GPU has bf16 tensor cores; compile only if asked). On
        a CPU: channels_last, fused Adam (torch 2.4 has a CPU kernel) and bf16 where the CPU has bf16
        instructions;
        torch.compile measured within noise there (benchmarks/README.md) and compiling costs half a
        minute a run, so compile only if asked, in the default mode (autotuning on a CPU takes many
        minutes)."""
        if device.type == "cuda":
            return cls(channels_last=True, bf16=cuda_has_bf16(device), fused_adam=True, cudnn_benchmark=True,
                       compile=compile, async_log=True)
        if device.type == "cpu":
            return cls(channels_last=True, bf16=cpu_has_bf16(), fused_adam=torch.__version__ >= "2.4",
                       compile=compile, compile_mode="default")
        return cls()

    def record(self) -> dict[str, Any]:
        """The switches a run used, for its summary.json (compile_mode only when compiling)."""
        out: dict[str, Any] = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "compile_mode"}
        if self.compile:
            out["compile_mode"] = self.compile_mode
        return out

    @property
    def amp_dtype(self) -> Optional[torch.dtype]:
        return torch.bfloat16 if self.bf16 else None

    def without(self, name: str) -> "SpeedSwitches":
        return replace(self, **{name: False})

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch in the memory format the models were put in."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def layout(self, module: torch.nn.Module) -> torch.nn.Module:
        """A module's weights in the switches' memory format, in place."""
        return module.to(memory_format=torch.channels_last) if self.channels_last else module


def apply_speed(gan: GAN, speed: SpeedSwitches) -> GAN:
    """Put the model in the switches' memory format and compile it in place (state-dict keys unchanged)."""
    if speed.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    speed.layout(gan)
    if speed.compile:
        gan.G.compile(mode=speed.compile_mode)
        gan.D.compile(mode=speed.compile_mode)
    return gan


def adam(params: Iterable[torch.nn.Parameter], *, lr: float, betas: Sequence[float], speed: SpeedSwitches) -> torch.optim.Adam:
    """The trainer's Adam; fused (one kernel for all parameters) when the switch is on."""
    kw: dict[str, Any] = {"fused": True} if speed.fused_adam else {}
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), **kw)


def match_state_layout(opt: torch.optim.Optimizer) -> None:
    """Give loaded optimiser state its parameter's memory layout (a checkpoint saved contiguous and
    resumed channels_last, or the reverse): fused and foreach kernels walk the raw storage, so moments
    in another layout than their parameter would be updated element-misaligned."""
    for p, state in opt.state.items():
        for k, v in state.items():
            if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


class AsyncScalars:
    """Logged scalars without a host synchronisation in the loop.

    push() starts a non-blocking copy of the step's scalars into pinned host memory (CUDA) and
    returns at once; ready() hands back, in order, the records whose copy has finished (all of
    them with wait=True, at the end of a run). On a CPU the values are read at once.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self._pending: list[tuple[dict[str, Any], list[str], torch.Tensor, Any]] = []

    def push(self, record: dict[str, Any], **scalars: torch.Tensor) -> None:
        values = torch.stack([t.detach().float().reshape(()) for t in scalars.values()])  # (S,)
        if self.cuda:
            host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
            host.copy_(values, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:
            host, event = values, None
        self._pending.append((record, list(scalars), host, event))

    def ready(self, *, wait: bool = False) -> list[dict[str, Any]]:
        out = []
        while self._pending:
            record, names, host, event = self._pending[0]
            if event is not None and not (wait or event.query()):
                break
            if event is not None:
                event.synchronize()
            self._pending.pop(0)
            out.append({**record, **dict(zip(names, host.tolist()))})
        return out
