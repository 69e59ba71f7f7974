"""Sharing a CPU between trainings: passive OpenMP waiting, and the cores shared out among gan-bench runs.

Two trainings started side by side on a 2-core machine each ran about 10x slower than alone (a training
at 329 img/s alone ran at 32 img/s beside another): each process took every core's worth of OpenMP
threads, and OpenMP's idle threads spin-wait for the next parallel region, so four busy-waiting threads
fought over two cores and every barrier waited for a thread that was descheduled. Two things fix it
(measured by benchmarks/shared_cpu.py, figures in benchmarks/README.md):
- OMP_WAIT_POLICY=PASSIVE (set as gan_bench is imported, before torch loads OpenMP; a value the user
  set is kept): an idle thread sleeps instead of spinning.
- share(): while a process trains on the CPU it holds a claim (a file named by its pid in a folder of
  the machine's temporary directory) and takes cores // (trainings holding a claim) threads, at least
  one and never more than it had; a claim of a process that is gone is ignored. OMP_NUM_THREADS set by
  the user wins. A training that started alone keeps its threads when a second one starts: the second
  takes what is left, and passive waiting keeps the first from spinning against it.
Nothing here reads or changes what a step computes: the thread count is recorded in summary.json's
device ("cpu (..., N threads)").
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

CLAIMS = Path(tempfile.gettempdir()) / "gan-bench-cpu"


def passive_waiting() -> None:
    """Idle OpenMP threads sleep (must run before torch is imported; the user's own setting is kept)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def trainings() -> list[int]:
    """The pids of the processes training on this machine's CPU now (their claims; stale ones dropped)."""
    pids = []
    try:
        entries = list(CLAIMS.iterdir())
    except OSError:
        return []
    for p in entries:
        if p.name.isdigit() and _alive(int(p.name)):
            pids.append(int(p.name))
        elif p.name.isdigit():
            p.unlink(missing_ok=True)
    return pids


def threads_for(others: int, cores: Optional[int] = None) -> int:
    """Threads for one training beside `others` trainings: an even share of the cores, at least one."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // (others + 1))


@contextmanager
def share() -> Iterator[int]:
    """Hold a claim on this machine's CPU while training on it; yields the threads taken (the torch
    setting is restored on exit). With OMP_NUM_THREADS set, that many, and no claim."""
    import torch

    before = torch.get_num_threads()
    if os.environ.get("OMP_NUM_THREADS"):
        yield before
        return
    mine = CLAIMS / str(os.getpid())
    try:
        CLAIMS.mkdir(mode=0o1777, exist_ok=True)
        mine.touch()  # first, so two trainings started together each count the other
        others = [p for p in trainings() if p != os.getpid()]
    except OSError:  # a temporary directory that cannot be written: share nothing, train as before
        others, mine = [], None
    n = min(before, threads_for(len(others)))  # never more than the process was given (torch.set_num_threads)
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
        if mine is not None:
            mine.unlink(missing_ok=True)


def claim() -> None:
    """For benchmarks/shared_cpu.py's child processes: passive waiting, and a claim held until exit."""
    import atexit

    passive_waiting()
    cm = share()
    cm.__enter__()
    atexit.register(cm.__exit__, None, None, None)
