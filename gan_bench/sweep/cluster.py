"""`gan-bench sweep FILE --executor slurm --workers N`: the sweep's workers as one SLURM job array, through the
suite's slurm executor (submitit, its `--slurm KEY=VALUE,...` options and their checks, its record of jobs).

Each array task is one worker: the same `gan-bench sweep FILE --storage URL` a person would start on a node,
run in a child process the task watches over (as a suite's job does, suite/cluster_job.py), on a storage the
nodes share: Optuna's journal file in the sweep folder (journal.log) unless --storage names a database
server. SQLite is refused: its locks do not hold on the network file systems clusters share. On the
scheduler's time-limit or preemption signal the task stops the child the trainer's way (the trial in flight
writes a checkpoint and is queued again) and submitit requeues the task, which takes trials again.

The workers are on record in <sweep>/slurm/jobs.jsonl (one `worker-<k>` per task): the same command again
submits only the workers that are no longer queued or running, and none once every study has its trials.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from gan_bench.errors import GanBenchError
from gan_bench.suite.cluster_job import ChildJob, RunFailed, ignore_scheduler_signal, job_cpus, stop_child
from gan_bench.suite.executors import Context, executor_for
from gan_bench.suite.slurm import NAME, came_back
from gan_bench.suite.submitted import Ledger, Submission, job_states
from gan_bench.sweep.file import Sweep
from gan_bench.sweep.folder import SweepFolder
from gan_bench.sweep.worker import prepare, status, storage_of, wrap_up

EXIT_INTERRUPTED = {128 + signal.SIGTERM, 128 + signal.SIGINT, -signal.SIGTERM, -signal.SIGINT, -signal.SIGKILL}


def cluster_storage(storage_url: Optional[str], folder: SweepFolder) -> str:
    """The storage the nodes' workers share: --storage, else the journal file in the sweep folder. SQLite
    (given, or the folder's study.db) is a one-line GanBenchError."""
    if storage_url is not None and storage_url.strip().lower().startswith("sqlite"):
        raise GanBenchError(f"--executor slurm cannot use SQLite storage ({storage_url}): its file locks do not "
                            f"hold on the network file system the nodes share, and workers on several nodes "
                            f"would corrupt it; leave --storage out (a journal file in the sweep folder) or give "
                            f"journal:PATH or a database server's URL")
    url = storage_of(storage_url, folder)
    if url == folder.storage_url:
        raise GanBenchError(f"this sweep's studies are in {folder.path / folder.STUDY_DB} (SQLite), which workers "
                            f"on several nodes would corrupt (its file locks do not hold on a network file "
                            f"system); continue it on this machine (--jobs N), or start the cluster's sweep in a "
                            f"new `out` (--out)")
    return url or folder.journal_url


class SweepWorker(ChildJob):
    """What one array task runs: `gan-bench sweep ...` (argv) in a child, its output appended to log; picklable,
    and rebuilt as-is when submitit requeues it (it has a checkpoint method)."""

    def __init__(self, *, argv: list[str], cwd: str, log: str, stop_timeout_s: float = 60.0) -> None:
        self.argv, self.cwd, self.log, self.stop_timeout_s = argv, cwd, log, stop_timeout_s
        self._child: Optional[subprocess.Popen] = None

    def __repr__(self) -> str:
        return f"SweepWorker({self.log!r})"

    def __call__(self) -> str:
        """Take trials until none is left; returns "completed" or "interrupted", raises RunFailed."""
        os.chdir(self.cwd)  # the sweep file's and the configs' relative paths are the submitter's
        Path(self.log).parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(job_cpus()))
        with open(self.log, "a", buffering=1) as log:
            self._child = subprocess.Popen([sys.executable, "-m", "gan_bench", *self.argv], stdout=log,
                                           stderr=subprocess.STDOUT, env=env, preexec_fn=ignore_scheduler_signal)
            try:
                code = self._child.wait()
            except KeyboardInterrupt:  # the job is being cancelled: let the trial in flight write its checkpoint
                stop_child(self._child, self.stop_timeout_s)
                raise
            finally:
                self._child = None
        if code == 0:
            return "completed"
        if code in EXIT_INTERRUPTED:
            return "interrupted"
        raise RunFailed(f"{_last_line(Path(self.log)) or f'the worker exited with status {code}'} (log {self.log})")


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def submit_workers(sweep: Sweep, folder: SweepFolder, *, sweep_path: str, storage_url: Optional[str], workers: int,
                   options: Any, plugins: list[str], wait: bool = False,
                   say: Callable[[str], None] = print) -> dict[str, dict[str, int]]:
    """Check the sweep, make its studies, and submit the workers it still needs as one job array (options: the
    text of --slurm, or SlurmOptions); with wait (always with cluster=debug) wait for them and write the report.
    Returns each study's progress."""
    if workers < 1:
        raise GanBenchError(f"--workers must be at least 1 (the SLURM array's tasks), got {workers}")
    url = cluster_storage(storage_url, folder)
    executor = executor_for(NAME, options, Context(out=folder.path, name=sweep.name, say=say))
    debug = executor.o.cluster == "debug"
    new_folder = not folder.path.exists()
    built, storage = prepare(sweep, folder, url)
    progress = status(sweep, built, storage)
    if not any(p.get("waiting") or p.get("running") for p in progress.values()):
        return wrap_up(sweep, built, storage, folder, say=say)
    ledger = Ledger(folder.path)
    busy = _busy_workers(ledger)
    free = [k for k in range(workers) if f"worker-{k}" not in busy][:max(0, workers - len(busy))]
    if not free:
        say(f"sweep {sweep.name}: {len(busy)} worker(s) still queued or running ({', '.join(sorted(busy.values()))});"
            f" nothing submitted")
        return progress
    argv = ["sweep", sweep_path, "--out", str(folder.path.resolve()), "--storage", url,
            *[x for p in plugins for x in ("--plugin", p)]]
    stop_s = max(10, executor.o.signal_delay_s - 20)  # submitit still has to requeue after
    fns = [SweepWorker(argv=argv, cwd=os.getcwd(), log=str(folder.log_path(k).resolve()), stop_timeout_s=stop_s)
           for k in free]
    try:
        jobs = executor.submit(fns)
    except GanBenchError:
        if new_folder:  # nothing was submitted: leave the disk as it was
            shutil.rmtree(folder.path, ignore_errors=True)
        raise
    subs = [Submission(run=f"worker-{k}", job=str(j.job_id), executor=NAME, cluster=executor.o.cluster)
            for k, j in zip(free, jobs)]
    ledger.add(subs)
    for k, s in zip(free, subs):
        say(f"--> worker {k}: {s.cluster} job {s.job} (log {folder.log_path(k)})")
    say(f"sweep {sweep.name}: studies in {url}")
    if not (wait or debug):
        say(f"submitted {len(subs)} worker(s); `gan-bench sweep {sweep_path} --report` once they are done (this "
            f"command again submits workers only in place of those no longer queued or running)")
        return progress
    _wait(ledger, subs, jobs, debug=debug, say=say)
    return wrap_up(sweep, built, storage, folder, say=say)


def _busy_workers(ledger: Ledger) -> dict[str, str]:
    """worker-<k> -> its job id, for the workers on record whose job may still be queued or running."""
    latest = {run: s for run, s in ledger.latest().items() if run.startswith("worker-") and not s.ended}
    states = job_states(ledger, list(latest.values())) if latest else {}
    return {run: s.job for run, s in latest.items() if states.get(s.job) is not None and states[s.job].active}


def _wait(ledger: Ledger, subs: list[Submission], jobs: list[Any], *, debug: bool,
          say: Callable[[str], None]) -> None:
    """Until every worker's job has ended (the debug executor runs each here, now), each outcome on record.
    A Ctrl-C stops the waiting only: the workers go on."""
    seen: set[int] = set()
    while len(seen) < len(jobs):
        for i, (s, j) in enumerate(zip(subs, jobs)):
            if i in seen or (not debug and not j.done()):
                continue
            outcome, reason = came_back(j, debug=debug)
            ledger.settle(s.job, outcome, reason)
            seen.add(i)
            say(f"<-- {s.run}: " + (f"{outcome}" + (f": {reason}" if reason else "") if outcome
                                    else f"job {s.job} ended without a result (killed?)"))
        if len(seen) < len(jobs):
            time.sleep(10.0 if subs[0].cluster == "slurm" else 0.5)
