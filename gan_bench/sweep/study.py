"""The sweep's Optuna studies: one per base config, in one storage that every worker shares.

Storage: SQLite in the sweep folder by default; --storage URL takes any database URL Optuna takes
(postgresql://..., mysql://...), or journal:PATH, Optuna's journal file on a shared file system (a
cluster without a database server: every `gan-bench sweep FILE --storage journal:PATH` started on its
nodes, an array job's tasks say, is one more worker).

How a study is never over- or under-counted (the point of an equal tuning budget):
- a trial "slot" is a trial's first attempt; its number names its folder (trial-0003). A worker takes a
  trial under the sweep folder's lock: Optuna's queue first (WAITING), else a new slot while fewer than
  `trials` slots exist, else nothing.
- a RUNNING trial whose worker is gone (its process is dead on this machine, or its heartbeat is older
  than GRACE_S) is failed and queued again with the same values by Optuna's
  RetryHeartbeatStaleTrialCallback, which keeps the first attempt's number; the retry resumes the
  trial's run folders from their checkpoints. A trial a worker saw interrupted (Ctrl-C, SIGTERM) is
  queued the same way at once. A trial that fails on its own (a config that cannot train) is a FAIL
  with its reason, counted, not retried.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Optional

import optuna
from optuna.trial import FrozenTrial, TrialState

from gan_bench.errors import ConfigError, GanBenchError
from gan_bench.metrics.registry import METRICS
from gan_bench.sweep.file import Sweep
from gan_bench.sweep.folder import SweepFolder
from gan_bench.sweep.plan import Base, changes, fingerprint

HEARTBEAT_S = 30.0       # a running trial's worker writes the time this often
GRACE_S = 150.0          # a heartbeat older than this on another machine: the worker is gone
MAX_RETRY = 3            # a trial whose worker dies this many times is left failed
FINAL = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
FINGERPRINT, REASON, WORKER, BEAT = "sweep", "reason", "worker", "heartbeat"
RESTORING = "restoring"    # a study's mark while records.py rebuilds it: one cut short is made again
UNRECORDED = "unrecorded"  # a trial's mark from records.py: a number whose attempt left no record, no slot's

optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep prints its own one line per trial
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_storage(url: Optional[str], folder: SweepFolder) -> optuna.storages.BaseStorage:
    """The storage of --storage URL (or journal:PATH), else SQLite in the sweep folder; one-line
    GanBenchError when it cannot be opened or written."""
    if url is not None and not url.strip():
        raise ConfigError("--storage is empty; leave it out (SQLite in the sweep folder) or give a database URL")
    try:
        if url and url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend

            path = Path(url[len("journal:"):])
            path.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        if url is None:
            folder.path.mkdir(parents=True, exist_ok=True)
        # SQLite: writers wait for each other's transactions (several workers) instead of failing at once
        kwargs = {"connect_args": {"timeout": 60}} if (url or folder.storage_url).startswith("sqlite") else {}
        return optuna.storages.RDBStorage(url or folder.storage_url, engine_kwargs=kwargs)
    except Exception as e:  # noqa: BLE001  SQLAlchemy's and the drivers' errors for a bad URL, host or file
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GanBenchError(f"cannot open the sweep's storage {url or folder.storage_url!r} ({reason[:200]}); "
                            f"check the URL, that the database is reachable and writable, and its driver is "
                            f"installed") from None


def study_name(sweep: Sweep, base: Base) -> str:
    return f"{sweep.name}/{base.name}"


def direction(sweep: Sweep) -> str:
    return "minimize" if METRICS.info(sweep.objective).lower_is_better else "maximize"  # the metric's record


# sweep.sampler -> the Optuna sampler it builds, from a seed (the sweep file's converter checked the name)
SAMPLERS = {
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
}


def trial_seed(seed: int, study: str, number: int) -> int:
    """The seed of trial `number`'s draws in study `study`: a hash, so neighbouring seeds, studies and trials
    draw unrelated values."""
    digest = hashlib.sha256(f"{seed}\0{study}\0{number}".encode()).digest()
    return int.from_bytes(digest[:4], "little")  # numpy's seeds are 32-bit


class TrialSeeded(optuna.samplers.BaseSampler):
    """Sampler `kind` seeded afresh for each trial from (the sweep's seed, the study, the trial's number).

    One seed per sampler would not do: every worker (--jobs, an array's tasks) builds its own sampler, so
    workers seeded alike would draw the same values for their first trials. Seeded by the trial's number,
    trial 3 draws the same values whichever worker takes it, and two sweeps of one file draw alike. TPE
    reads the study's finished trials too, so its draws repeat where the history does (one worker)."""

    def __init__(self, kind: str, seed: int, study: str) -> None:
        self.kind, self.seed, self.study = kind, seed, study
        self._current: Optional[tuple[int, optuna.samplers.BaseSampler]] = None

    def _for(self, trial: FrozenTrial) -> optuna.samplers.BaseSampler:
        if self._current is None or self._current[0] != trial.number:
            self._current = (trial.number, SAMPLERS[self.kind](trial_seed(self.seed, self.study, trial.number)))
        return self._current[1]

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]
                        ) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: Any) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._for(trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        pass  # Optuna asks for fresh randomness here; the seeds are the trials' own on purpose


def sampler(sweep: Sweep, name: str) -> optuna.samplers.BaseSampler:
    """The sampler of study `name`: the sweep's kind, its draws seeded by the sweep file's `seed`."""
    return TrialSeeded(sweep.sampler, sweep.seed, name)


# sweep.pruner.name -> the Optuna pruner it builds (the sweep file's converter checked the name)
PRUNERS = {
    "median": lambda p: optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=0),
    "hyperband": lambda p: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=p.evaluations),
}


def pruner(sweep: Sweep) -> optuna.pruners.BasePruner:
    p = sweep.pruner
    return optuna.pruners.NopPruner() if p is None else PRUNERS[p.name](p)


def open_study(sweep: Sweep, base: Base, storage: optuna.storages.BaseStorage, *, where: str,
               create: bool = True) -> Optional[optuna.Study]:
    """The study of one base config: made on the first run; on a rerun refused if the sweep changed what its
    trials measure. create=False: None where it does not exist yet."""
    name = study_name(sweep, base)
    exists = name in {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    if not exists and not create:
        return None
    if exists:  # loaded, not created again: a refused rerun leaves the database as it was
        study = optuna.load_study(storage=storage, study_name=name, sampler=sampler(sweep, name),
                                  pruner=pruner(sweep))
    else:
        study = optuna.create_study(storage=storage, study_name=name, direction=direction(sweep),
                                    load_if_exists=True, sampler=sampler(sweep, name), pruner=pruner(sweep))
    now = fingerprint(sweep, base)
    before = study.user_attrs.get(FINGERPRINT)
    if before is None:
        study.set_user_attr(FINGERPRINT, now)
    elif before != now:
        diff = changes(before, now)
        raise ConfigError(f"{sweep.file or sweep.name} changed since the study {name!r} in {where} began: "
                          f"{'; '.join(diff[:3])}{' ...' if len(diff) > 3 else ''}. Put it back to continue, or "
                          f"start a new study: a new `name:` (or --out) for the sweep")
    return study


# ---- slots: which trials count ---------------------------------------------------------------------------

def slot(t: FrozenTrial) -> int:
    """The number of a trial's first attempt (RetryHeartbeatStaleTrialCallback's failed_trial), else its own."""
    return int(t.system_attrs.get("failed_trial", t.number))


def slots(study: optuna.Study) -> dict[int, FrozenTrial]:
    """Each slot's latest attempt, by slot number."""
    latest: dict[int, FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.WAITING and "failed_trial" not in t.system_attrs:
            continue  # queued by hand (enqueue_trial): not a slot until taken
        if t.system_attrs.get(UNRECORDED):
            continue  # holds the number of an attempt a rebuilt study has no record of (records.planned)
        s = slot(t)
        if s not in latest or t.number > latest[s].number:
            latest[s] = t
    return latest


def counted(study: optuna.Study, trials: int) -> list[FrozenTrial]:
    """The first `trials` slots' latest attempts (a study a lowered `trials` left longer is cut)."""
    return [t for _, t in sorted(slots(study).items())][:trials]


def progress(study: optuna.Study, trials: int) -> dict[str, int]:
    """How many of the study's slots are complete, pruned, failed, running or still to start."""
    n = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
    for t in counted(study, trials):
        n[{TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
           TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}[t.state]] += 1
    n["waiting"] += max(0, trials - len(slots(study)))
    return n


@contextlib.contextmanager
def locked(folder: SweepFolder) -> Iterator[None]:
    """The sweep folder's lock (flock: released by the kernel when its holder dies, kill -9 included)."""
    folder.path.mkdir(parents=True, exist_ok=True)
    with open(folder.lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def take_trial(study: optuna.Study, trials: int) -> Optional[optuna.Trial]:
    """The next trial for this worker (call under `locked`): a queued retry first, else a new slot."""
    reconcile(study)
    latest = slots(study)
    queued = any(t.state == TrialState.WAITING for t in latest.values())
    if not queued and len(latest) >= trials:
        return None
    trial = study.ask()
    if REASON in trial.user_attrs:  # a retry carries its failed attempt's attributes: not its own reason
        trial.set_user_attr(REASON, None)
    trial.set_user_attr(WORKER, me())
    trial.set_user_attr(BEAT, time.time())
    return trial


def me() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _start_time(os.getpid())}


def _start_time(pid: int) -> Optional[str]:
    """When the process started (Linux: /proc/PID/stat field 22), so a reused pid is not taken for it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _gone(t: FrozenTrial, now: float) -> Optional[str]:
    """Why a RUNNING trial's worker is gone, or None while it may still be running."""
    w = t.user_attrs.get(WORKER) or {}
    if w.get("host") == socket.gethostname() and w.get("pid"):
        started = _start_time(int(w["pid"]))
        if started is None or (w.get("started") is not None and started != w["started"]):
            return f"its worker (pid {w['pid']}) is gone"
        return None
    beat = t.user_attrs.get(BEAT) or (t.datetime_start.timestamp() if t.datetime_start else now)
    if now - float(beat) > GRACE_S:
        return f"its worker ({w.get('host', '?')} pid {w.get('pid', '?')}) sent no heartbeat for {now - beat:.0f} s"
    return None


def reconcile(study: optuna.Study) -> list[int]:
    """Fail and requeue (same values, same slot) the running trials whose worker is gone; their numbers."""
    now = time.time()
    lost = [(t, why) for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            for why in [_gone(t, now)] if why]
    for t, why in lost:
        requeue(study, t, why)
    return [t.number for t, _ in lost]


def requeue(study: optuna.Study, t: FrozenTrial | optuna.Trial, why: str) -> None:
    """Fail trial t (its worker stopped: a kill, a lost node, a Ctrl-C) and queue it again, same values."""
    storage = study._storage  # the frozen trial's own attributes have no public setter
    trial_id = t._trial_id
    try:
        storage.set_trial_user_attr(trial_id, REASON, f"retried: {why}")
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
    except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError, ValueError):
        return  # finished meanwhile
    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(study, storage.get_trial(trial_id))


class Heartbeat:
    """While a trial runs, its time in the study every HEARTBEAT_S (what workers on other machines read)."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial, self.stop = trial, threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a missed beat is harmless; the next one comes
                self.trial.set_user_attr(BEAT, time.time())

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()
