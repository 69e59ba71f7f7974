"""Peak memory of one run, not of the process: a suite trains its runs one after another in one
process, and the process's peak would carry the largest earlier run (or evaluation) into every
later run's summary.json."""
from __future__ import annotations

import sys
from typing import Any

import torch


def reset_peaks(device: torch.device) -> bool:
    """Count peaks from now on. The GPU's always can be reset; the CPU's (peak resident set size) on
    Linux 4.0 and later, by writing 5 to /proc/self/clear_refs. Returns whether the CPU's was."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:  # not Linux, or /proc read-only: the peak stays the process's
        return False


def peak_cpu_mb() -> float | None:
    """The peak resident set size in MiB since the last reset_peaks (or the process start)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # macOS counts bytes, Linux KiB


def peaks(device: torch.device, *, cpu_reset: bool) -> dict[str, Any]:
    """summary.json's memory fields: peak_cpu_mb (and whether it is this run's or the process's),
    and peak_gpu_mb on CUDA (bytes the caching allocator handed out, not the reserved pool)."""
    out: dict[str, Any] = {"peak_cpu_mb": peak_cpu_mb(), "peak_cpu_of": "run" if cpu_reset else "process"}
    if device.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out
