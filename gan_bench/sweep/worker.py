"""Running a sweep: checks, then workers that take trials from the shared studies until every config's
study has its trials, then the report.

A worker is this process (--jobs 1) or one of N child processes (--jobs N); any other process running
the same sweep on the same storage is one more (--executor slurm's array tasks: cluster.py). Each worker
loads each data set once and goes through the configs in order, so N workers finish one config's
study before the next.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable, Optional

from optuna.trial import FrozenTrial

from gan_bench.atomic import cannot_write_under
from gan_bench.errors import GanBenchError, Interrupted
from gan_bench.plugins import load as load_plugins
from gan_bench.sweep.file import Sweep
from gan_bench.sweep.folder import SweepFolder
from gan_bench.sweep.plan import Base, DataCache, bases, check_sweep
from gan_bench.sweep.report import write_report
from gan_bench.sweep.records import planned, restore
from gan_bench.sweep.study import RESTORING, locked, open_storage, open_study, progress, slots, take_trial
from gan_bench.sweep.trial import run_trial


def prepare(sweep: Sweep, folder: SweepFolder, storage_url: Optional[str], *,
            data: Optional[DataCache] = None) -> tuple[list[Base], Any]:
    """Every check of the sweep and its storage; nothing is written until they pass. Then the studies
    are made (or reopened, refused if the sweep file changed under them); a study the storage lacks whose
    trials are in the folder (a clone of a published sweep) is rebuilt from their records (records.py).
    Returns (bases, storage)."""
    built = check_sweep(sweep, data=data)
    url = storage_of(storage_url, folder)
    where = storage_url or str(folder.path / (folder.JOURNAL if url == folder.journal_url else folder.STUDY_DB))
    problem = cannot_write_under(folder.path)  # the trials' run folders go there, whatever the storage
    if problem:
        raise GanBenchError(f"cannot create the sweep folder {str(folder)!r} ({problem}); choose another `out` "
                            f"or --out")
    # no storage yet (none in the folder, or a --storage file not made yet): records are checked before it is
    storage = open_storage(url, folder) if _exists(url) else None
    plans: dict[str, list[FrozenTrial]] = {}
    records = 0
    for b in built:  # every existing study checked before a new one is made: a refusal leaves nothing new
        numbers = folder.trial_numbers(b.name)  # read before the study: a worker records a trial it has taken
        study = open_study(sweep, b, storage, where=where, create=False) if storage else None
        if numbers and (study is None or _unfinished(study)):
            plans[b.name] = planned(sweep, b, folder)  # a clone of a published sweep: its study from its records
            records += len(numbers)
        elif numbers:
            _not_behind(study, numbers, folder.path / b.name, where)
    storage = storage or open_storage(url, folder)
    with locked(folder):  # another process on the folder rebuilds it first, or waits and finds it rebuilt
        for b in built:
            study = open_study(sweep, b, storage, where=where)
            if b.name in plans and _unfinished(study):
                restore(sweep, b, storage, plans[b.name], where=where)
    if plans:
        print(f"sweep {sweep.name}: studies rebuilt from {records} trial records in {folder}; continuing",
              file=sys.stderr)
    return built, storage


def storage_of(storage_url: Optional[str], folder: SweepFolder) -> Optional[str]:
    """--storage, else the storage the sweep folder already has (study.db or journal.log), else None (SQLite
    in the folder, made on the first run)."""
    return storage_url if storage_url is not None else folder.stored()


def _exists(url: Optional[str]) -> bool:
    """Whether storage url may hold studies already: not None, nor a SQLite or journal file that is not there."""
    for prefix in ("sqlite:///", "journal:"):
        if url is not None and url.startswith(prefix) and url[len(prefix):] not in ("", ":memory:"):
            return Path(url[len(prefix):]).exists()
    return url is not None


def _unfinished(study: Any) -> bool:
    """A study that records may be rebuilt into: made with no trial yet, or a rebuild cut short."""
    return not study.get_trials(deepcopy=False) or bool(study.user_attrs.get(RESTORING))


def _not_behind(study: Any, numbers: list[int], where_trials: Any, where: str) -> None:
    """Refuse a study that lacks trials the folder holds (a storage left behind while the sweep went on from its
    records elsewhere): its next trial would take the number, and the folder, of one of them."""
    missing = sorted(set(numbers) - set(slots(study)))
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise GanBenchError(f"{where_trials} holds trial {missing[0]}{more} that the study {study.study_name!r} in "
                            f"{where} does not have (the sweep went on from its records elsewhere); move {where} "
                            f"aside to continue from the records, or give a new `out`")


def work(sweep: Sweep, built: list[Base], storage: Any, folder: SweepFolder, *,
         data: Optional[DataCache] = None, say: Callable[[str], None] = print) -> dict[str, int]:
    """Take and run trials until no study has one left for this worker; counts of final states."""
    data = data or DataCache()
    counts: dict[str, int] = {}
    for b in built:
        study = open_study(sweep, b, storage, where=str(folder))
        while True:
            with locked(folder):
                trial = take_trial(study, sweep.trials)
            if trial is None:
                break
            state = run_trial(sweep, b, study, trial, folder, data, say=say)
            counts[state] = counts.get(state, 0) + 1
    return counts


def run_sweep(sweep: Sweep, *, folder: SweepFolder, storage_url: Optional[str] = None, jobs: int = 1,
              report: bool = True, say: Callable[[str], None] = print) -> dict[str, dict[str, int]]:
    """Check, then run the sweep with `jobs` workers here, then (report) write its report once every study
    has its trials; returns each study's progress (complete, pruned, failed, running, waiting)."""
    if jobs < 1:
        raise GanBenchError(f"--jobs must be at least 1, got {jobs}")
    data = DataCache()
    built, storage = prepare(sweep, folder, storage_url, data=data)
    say(f"sweep {sweep.name}: {len(built)} configs x {sweep.trials} trials, {sweep.sampler} sampler (seed "
        f"{sweep.seed}), objective {sweep.objective} at {sweep.budget.text()}; studies in "
        f"{storage_of(storage_url, folder) or folder.storage_url}")
    if jobs == 1:
        work(sweep, built, storage, folder, data=data, say=say)
    else:
        _parallel(sweep, folder, storage_url, jobs, say)
    return wrap_up(sweep, built, storage, folder, report=report, say=say)


def wrap_up(sweep: Sweep, built: list[Base], storage: Any, folder: SweepFolder, *, report: bool = True,
            say: Callable[[str], None] = print) -> dict[str, dict[str, int]]:
    """After the workers: each study's progress, and (report) the report once every study has its trials."""
    progress = status(sweep, built, storage)
    left = [n for n, p in progress.items() if p.get("running") or p.get("waiting")]
    if left:
        say(f"sweep: {', '.join(left)} still have trials running elsewhere or to run; the report comes when they are "
            f"done (or now: --report)")
    elif report and not any(p.get("complete") for p in progress.values()):
        say(f"sweep: no trial completed, so there is no report; the reasons are in {folder}/*/trial-*/trial.json")
    elif report:
        write_report(sweep, built, storage, folder, say=say)
    return progress


def status(sweep: Sweep, built: list[Base], storage: Any) -> dict[str, dict[str, int]]:
    out = {}
    for b in built:
        study = open_study(sweep, b, storage, where="", create=False)
        out[b.name] = progress(study, sweep.trials) if study else {"waiting": sweep.trials}
    return out


def _child(sweep: Sweep, folder: str, storage_url: Optional[str], k: int, threads: int) -> None:
    """A --jobs worker (spawned): its output goes to logs/worker-<k>.log in the sweep folder."""
    import torch

    torch.set_num_threads(threads)
    f = SweepFolder(folder)
    f.log_path(k).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout = sys.stderr = open(f.log_path(k), "a", buffering=1)
    load_plugins(sweep.plugins)
    try:
        work(sweep, bases(sweep), open_storage(storage_of(storage_url, f), f), f)
    except (Interrupted, KeyboardInterrupt):
        sys.exit(3)
    except GanBenchError as e:
        print(f"gan-bench: error: {e}")
        sys.exit(2)


def _parallel(sweep: Sweep, folder: SweepFolder, storage_url: Optional[str], jobs: int,
              say: Callable[[str], None]) -> None:
    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    running = {}
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        for k in range(jobs):
            p = ctx.Process(target=_child, args=(sweep, str(folder.path), storage_url, k, threads))
            p.start()
            running[p.sentinel] = (p, k)
            say(f"--> worker {k} (pid {p.pid}, log {folder.log_path(k)})")
        while running:
            for sentinel in wait(list(running)):
                p, k = running.pop(sentinel)
                p.join()
                say(f"<-- worker {k} done" if p.exitcode == 0 else f"<-- worker {k} exit {p.exitcode}; see "
                    f"{folder.log_path(k)}")
    except KeyboardInterrupt:
        for p, _ in running.values():  # each checkpoints its run and queues its trial again
            p.terminate()
        for p, _ in running.values():
            p.join()
        raise Interrupted(signal.SIGINT, folder.path) from None
    finally:
        signal.signal(signal.SIGTERM, old)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
