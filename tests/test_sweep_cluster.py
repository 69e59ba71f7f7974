"""`gan-bench sweep FILE --executor slurm --workers N`: the workers as one job array through the suite's SLURM
executor, sharing a journal file in the sweep folder.

The submission runs for real against stand-ins of SLURM's commands (conftest.fake_slurm): one array, each task
the sweep command on the journal, and a rerun that submits only in place of workers no longer queued or
running. The workers themselves run through submitit's local executor (real processes), and a worker's
checkpoint hook (the scheduler's time limit) queues its trial again for the requeued worker. The bad inputs
(--workers 0, SQLite storage, --slurm keys) are rows of tests/test_bad_inputs.py.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import optuna
import pytest

from gan_bench.cli import main
from gan_bench.run import RunFolder
from gan_bench.suite.submitted import Ledger
from conftest import ROOT, fake_slurm
from test_sweep import write_sweep

submitit = pytest.importorskip("submitit", reason="the slurm extra (pip install -e '.[slurm]') is not installed")
from submitit.core.utils import DelayedSubmission  # noqa: E402

from gan_bench.sweep.cluster import SweepWorker  # noqa: E402
from gan_bench.sweep.study import counted, slot  # noqa: E402


@pytest.fixture
def here(tmp_path: Path, monkeypatch) -> Path:
    """tmp_path as the folder the sweep runs from; the workers' processes import this checkout, one thread."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path


def test_workers_are_one_array_of_the_sweep_command_on_a_journal_and_a_rerun_fills_only_gaps(
        here: Path, monkeypatch, capsys):
    bin_ = fake_slurm(here / "bin")
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    write_sweep(here)
    args = ["sweep", "s.yaml", "--executor", "slurm", "--workers", "3", "--slurm", "partition=cpu,cpus_per_task=4"]
    assert main(args) == 0
    assert "submitted 3 worker(s)" in capsys.readouterr().out
    (script,) = (bin_ / "submitted").iterdir()  # one job array, not three jobs
    text = script.read_text()
    assert "#SBATCH --array=0-2%3\n" in text and "#SBATCH --cpus-per-task=4\n" in text, text
    assert "#SBATCH --partition=cpu\n" in text and "#SBATCH --job-name=gan-bench-s\n" in text

    sw = here / "sw"
    journal = f"journal:{sw.resolve() / 'journal.log'}"
    assert (sw / "journal.log").exists() and not (sw / "study.db").exists()  # the studies made before submitting
    assert optuna.load_study(study_name="s/t", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sw / "journal.log")))).trials == []
    latest = Ledger(sw).latest()
    assert sorted(latest) == ["worker-0", "worker-1", "worker-2"]
    assert sorted(s.job for s in latest.values()) == ["4242_0", "4242_1", "4242_2"]
    worker = DelayedSubmission.load(sw / "slurm" / "4242_1" / "4242_1_submitted.pkl").function
    assert isinstance(worker, SweepWorker) and worker.cwd == str(here)
    assert worker.argv == ["sweep", "s.yaml", "--out", str(sw.resolve()), "--storage", journal]
    assert worker.log == str(sw.resolve() / "logs" / "worker-1.log")

    # sacct: worker 0 running, 1 pending, 2 failed: the same command submits one worker, in place of 2
    (bin_ / "sacct.txt").write_text("4242_0|RUNNING|n1\n4242_1|PENDING|\n4242_2|FAILED|n3\n")
    assert main(args) == 0
    assert "submitted 1 worker(s)" in capsys.readouterr().out
    assert "--array" not in (bin_ / "submitted" / "1.sh").read_text()
    assert Ledger(sw).latest()["worker-2"].job == "4243"
    # all three queued or running: nothing more
    (bin_ / "sacct.txt").write_text("4242_0|RUNNING|n1\n4242_1|RUNNING|n2\n4243|RUNNING|n3\n")
    assert main(args) == 0
    assert "3 worker(s) still queued or running" in capsys.readouterr().out
    assert len(list((bin_ / "submitted").iterdir())) == 2


def test_two_workers_of_submitits_local_executor_complete_a_study_counting_each_trial_once(here: Path):
    write_sweep(here, steps=2, trials=4)
    assert main(["sweep", "s.yaml", "--executor", "slurm", "--workers", "2", "--slurm", "cluster=local",
                 "--wait"]) == 0
    sw = here / "sw"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(sw / "journal.log")))
    trials = optuna.load_study(study_name="s/t", storage=storage).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]  # four trials as the file says: none taken twice
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for t in trials:  # each an ordinary run trained once to the budget, with the values the study holds
        run = RunFolder(sw / "t" / f"trial-{t.number:04d}" / "seed0")
        steps = [r["step"] for r in run.records("metrics")]
        assert steps == sorted(set(steps)) and run.read_summary()["steps"] == 2
        assert run.read_config().train.lr_g == t.params["train.lr_g"]
    assert sorted(p.name for p in (sw / "t").iterdir()) == [f"trial-{i:04d}" for i in range(4)]
    pids = {t.user_attrs["worker"]["pid"] for t in trials}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids  # the workers' processes trained, not this one
    latest = Ledger(sw).latest()
    assert sorted(latest) == ["worker-0", "worker-1"]
    assert all(s.ended and s.outcome == "completed" for s in latest.values()), latest
    assert (sw / "logs" / "worker-0.log").exists() and (sw / "logs" / "worker-1.log").exists()
    assert (sw / "report" / "README.md").exists()


def test_a_worker_whose_sweep_fails_hands_back_the_reason(here: Path):
    """The child's one-line error (a sweep file changed under its study, say) is the job's reason."""
    log = here / "w.log"
    worker = SweepWorker(argv=["sweep", "missing.yaml"], cwd=str(here), log=str(log))
    with pytest.raises(Exception) as e:
        worker()
    assert type(e.value).__name__ == "RunFailed" and "'missing.yaml' not found" in str(e.value)
    assert str(log) in str(e.value)  # the log named for the rest
    assert "'missing.yaml' not found" in log.read_text()


def test_the_schedulers_checkpoint_signal_queues_the_trial_again_and_the_requeued_worker_resumes_it(here: Path):
    """What submitit does on a time limit or preemption, by hand: the task's checkpoint hook (here from another
    thread, as the signal handler interrupts the task's wait) stops the worker mid-trial; the trial is queued
    again with its checkpoint; the requeued worker (the same object, called again) finishes the study."""
    write_sweep(here, steps=150, trials=2)  # steps to spare after the first checkpoint, where the stop comes
    sw = here / "sw"
    worker = SweepWorker(argv=["sweep", "s.yaml", "--storage", f"journal:{sw.resolve() / 'journal.log'}"],
                         cwd=str(here), log=str(sw / "logs" / "worker-0.log"), stop_timeout_s=60)
    thread = threading.Thread(target=worker)
    thread.start()
    run = sw / "t" / "trial-0000" / "seed0"
    deadline = time.monotonic() + 240
    while not (run / "checkpoints" / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    requeued = worker.checkpoint()
    thread.join(timeout=120)
    assert isinstance(requeued, DelayedSubmission) and requeued.function is worker
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(sw / "journal.log")))
    (first,) = optuna.load_study(study_name="s/t", storage=storage).get_trials()[:1]
    assert first.state == optuna.trial.TrialState.FAIL and "interrupted" in first.user_attrs["reason"]
    assert RunFolder(run).read_summary()["status"] == "interrupted" and (run / "checkpoints" / "last.pt").exists()
    stamp = (run / "config.yaml").stat().st_mtime_ns

    assert requeued.function() == "completed"
    study = optuna.load_study(study_name="s/t", storage=storage)
    kept = counted(study, 2)  # two trials, as the file says: slot 0 (its retry, trial 1) and slot 2
    assert [slot(t) for t in kept] == [0, 2] and [t.number for t in kept] == [1, 2]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in kept) and len(study.trials) == 3
    assert sorted(p.name for p in (sw / "t").iterdir()) == ["trial-0000", "trial-0002"]
    assert (run / "config.yaml").stat().st_mtime_ns == stamp  # resumed from its checkpoint, not started afresh
    steps = [r["step"] for r in RunFolder(run).records("metrics")]
    assert steps == sorted(set(steps)) and steps[-1] == 150  # each step logged once
