"""Sharing a CPU between trainings: the cores shared out among gan-bench runs, and passive OpenMP waiting.

Two trainings started side by side on a 2-core machine each ran 5 to 10 times slower than alone: each
process took every core's worth of OpenMP threads, four threads fought over two cores, and every
parallel region waited for a thread that was descheduled. Measured by benchmarks/shared_cpu.py (an AMD
EPYC, 2 cores, cdcgan 28 px batch 128; benchmarks/README.md): alone 668 img/s; two side by side at 2
threads each 136 img/s each with OpenMP's spinning wait and 27 with passive waiting; two sharing the
cores as below 279 each, close to half of alone. So:
- share(): while a process trains on the CPU it holds a claim (a locked file in a folder of the
  machine's temporary directory; the lock dies with the process, so a killed run leaves no live claim)
  and takes cores // (trainings holding a claim) threads, at least one and never more than it was given.
  A run started alone keeps its threads when a second starts; the second takes what is left.
- OMP_WAIT_POLICY=PASSIVE (set as gan_bench is imported, before torch loads OpenMP): with fewer threads
  than cores an idle thread sleeps instead of spinning against the other training's threads. Without the
  sharing it is worse than spinning (the 27 above), which is why both go together.
OMP_NUM_THREADS or OMP_WAIT_POLICY set by the user win. The thread count changes the order of float sums,
so a run's numbers depend on it in the last digits: summary.json's device names it, and a resumed run
takes the count its checkpoint recorded, so resuming stays bit for bit whatever else runs.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

FOLDER = "gan-bench-cpu"


def passive_waiting() -> None:
    """Idle OpenMP threads sleep (must run before torch is imported; the user's own setting is kept)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cores() -> int:
    """The CPUs this process may run on (a SLURM cpuset or taskset, not the whole node)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_for(others: int, cores_: Optional[int] = None) -> int:
    """Threads for one training beside `others` trainings: an even share of the cores, at least one."""
    return max(1, (cores_ or cores()) // (others + 1))


def _held(path: Path) -> bool:
    """Whether another live process holds the claim at path (its lock); a released one is removed."""
    import fcntl

    try:
        with open(path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken: nobody holds it any more
    except BlockingIOError:
        return True
    except OSError:
        return False
    try:
        path.unlink()
    except OSError:  # another user's file in a shared folder: leave it, it counts for nothing
        pass
    return False


def trainings(folder: Path) -> int:
    """How many claims in folder are held by live processes."""
    try:
        return sum(_held(p) for p in folder.iterdir() if p.name.endswith(".claim"))
    except OSError:
        return 0


@contextmanager
def share(*, threads: Optional[int] = None) -> Iterator[int]:
    """Hold a claim on this machine's CPU while training on it; yields the threads taken (torch's setting
    is restored on exit). threads: take exactly that many (a resumed run: its checkpoint's count), still
    holding a claim. With OMP_NUM_THREADS set, the threads as they are, and no claim."""
    import fcntl

    import torch

    before = torch.get_num_threads()
    if os.environ.get("OMP_NUM_THREADS"):
        yield before
        return
    folder, mine, lock = Path(tempfile.gettempdir()) / FOLDER, None, None
    others = 0
    try:  # a claim that cannot be made (a read-only or full temporary folder) shares nothing
        folder.mkdir(exist_ok=True)
        if folder.stat().st_uid == os.getuid():
            folder.chmod(0o1777)  # every user's trainings claim here (mkdir's mode is cut by the umask)
        mine = folder / f"{os.getpid()}-{id(folder)}.claim"
        lock = open(mine, "w")
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        others = trainings(folder) - 1  # after taking ours: two started together each count the other
    except OSError:
        if lock is not None:
            lock.close()
        mine, lock = None, None
    n = threads if threads else min(before, threads_for(others))
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
        if lock is not None:
            try:
                mine.unlink()
            except OSError:
                pass
            lock.close()


def claim() -> None:
    """For benchmarks/shared_cpu.py's child processes: a claim held until the process exits."""
    import atexit

    cm = share()
    cm.__enter__()
    atexit.register(cm.__exit__, None, None, None)
