"""A sweep continued from its committed records alone (a clone on another machine: no study.db, no journal,
no checkpoints): its study is rebuilt into the real storage with Optuna's numbers as they were, so finished
trials are not trained again, new trials take numbers (folders, seeded draws) past every existing one, and a
trial that was in flight is trained again under its own number."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest

from conftest import make_sweep_studies
from gan_bench.cli import main
from gan_bench.sweep import SweepFolder, load_sweep, prepare
from gan_bench.sweep.plan import bases
from gan_bench.sweep.study import (RESTORING, counted, locked, open_study, progress, sampler, slots, study_name,
                                   take_trial)
from test_sweep import write_sweep
from test_sweep_records import drop_what_git_ignores, git_repo

pytestmark = pytest.mark.usefixtures("one_torch_thread")
VALUES = {"train.lr_g": 2e-4, "train.betas[0]": 0.5, "train.loss": "bce"}


def _files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _draws(sweep_file: Path, n: int) -> list[dict]:
    """The values the sweep's seeded sampler draws for trials 0..n-1 of its first config (a study in memory)."""
    sweep = load_sweep(sweep_file)
    b = bases(sweep)[0]
    name = study_name(sweep, b)
    study = optuna.create_study(study_name=name, sampler=sampler(sweep, name))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append({p.key: p.suggest(trial) for p in b.params})
        study.tell(trial, 0.0)
    return out


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to read the .gitignore rules")
def test_a_sweep_goes_on_from_what_git_keeps(tmp_path: Path, monkeypatch, capsys):
    git_repo(tmp_path, monkeypatch)
    write_sweep(tmp_path, trials=2, out="results/sweeps/s")
    assert main(["sweep", "s.yaml"]) == 0
    sw = tmp_path / "results" / "sweeps" / "s"
    drop_what_git_ignores(tmp_path)  # a clone on another machine
    assert not (sw / "study.db").exists()
    first = _files(sw / "t")

    write_sweep(tmp_path, trials=4, out="results/sweeps/s")  # raising `trials` is allowed
    capsys.readouterr()
    assert main(["sweep", "s.yaml"]) == 0
    out, err = capsys.readouterr()
    assert "sweep s: studies rebuilt from 2 trial records in results/sweeps/s; continuing" in err
    assert "t trial 0:" not in out and "t trial 1:" not in out  # trained no more
    assert {p: p.read_bytes() for p in first} == first  # the first trials' records untouched
    assert not list(sw.glob("t/trial-000[01]/seed0/checkpoints/*"))
    folder = SweepFolder(sw)
    assert folder.trial_numbers("t") == [0, 1, 2, 3]
    records = [folder.read_trial("t", n) for n in range(4)]
    assert [(r["state"], r["attempts"]) for r in records] == [("COMPLETE", [n]) for n in range(4)]
    assert [r["params"] for r in records] == _draws(tmp_path / "s.yaml", 4)  # as one uninterrupted sweep draws
    report = (sw / "report" / "README.md").read_text()
    assert "4 of 4 trials complete, 0 pruned, 0 failed, 0 still to run." in report

    # the study it went on in and the one rebuilt in memory for --report give the same report
    drop_what_git_ignores(tmp_path)
    assert main(["sweep", "s.yaml", "--report"]) == 0
    assert (sw / "report" / "README.md").read_text() == report
    # and so does the SLURM path, rebuilding into its journal file: every trial is done, no worker is submitted
    drop_what_git_ignores(tmp_path)
    (sw / "report" / "README.md").unlink()
    assert main(["sweep", "s.yaml", "--executor", "slurm", "--slurm", "cluster=debug"]) == 0
    assert (sw / "journal.log").exists() and (sw / "report" / "README.md").read_text() == report
    assert not (sw / "logs").exists()


def test_a_trial_in_flight_when_its_records_were_taken_is_trained_again_under_its_number(tmp_path: Path,
                                                                                       monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_sweep(tmp_path, trials=2)
    assert main(["sweep", "s.yaml"]) == 0
    sw, folder = tmp_path / "sw", SweepFolder(tmp_path / "sw")
    # trial 1 as committed mid-training: RUNNING, its run without summary or checkpoint; no study.db
    (sw / "study.db").unlink()
    record = folder.read_trial("t", 1)
    folder.write_trial("t", 1, {k: v for k, v in record.items() if k != "value"} | {"state": "RUNNING"})
    run = folder.trial_run("t", 1, 0)
    (run.path / "summary.json").unlink()
    shutil.rmtree(run.path / "checkpoints")
    trial0 = _files(sw / "t" / "trial-0000")

    capsys.readouterr()
    assert main(["sweep", "s.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.count("t trial 1:") == 1 and "t trial 0:" not in out
    again = folder.read_trial("t", 1)
    assert again["state"] == "COMPLETE" and again["params"] == record["params"]
    assert again["attempts"] == [1, 2]  # the retry queued after the numbers on record
    assert run.read_summary()["status"] == "completed"
    assert _files(sw / "t" / "trial-0000") == trial0 and folder.trial_numbers("t") == [0, 1]
    study = optuna.load_study(study_name="s/t", storage=folder.storage_url)
    assert [t.number for t in counted(study, 2)] == [0, 2] and progress(study, 2)["complete"] == 2


def _record(tmp: Path, number: int, attempts: list[int], state: str, **keys) -> None:
    d = tmp / "sw" / "t" / f"trial-{number:04d}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "trial.json").write_text(json.dumps({"trial": number, "attempts": attempts, "objective": "fd",
                                              "budget": {"steps": 4}, "state": state, "params": VALUES, **keys}))


@pytest.mark.parametrize("storage", [None, "journal"])
def test_a_retried_slot_rebuilt_puts_the_next_trial_past_its_last_attempt(tmp_path: Path, monkeypatch, storage):
    monkeypatch.chdir(tmp_path)
    write_sweep(tmp_path, trials=4)
    _record(tmp_path, 0, [0], "PRUNED", reason="pruned")
    _record(tmp_path, 1, [1, 3], "FAIL", reason="no good")  # its worker died once; nothing names number 2
    sweep, folder = load_sweep(Path("s.yaml")), SweepFolder(tmp_path / "sw")
    url = f"journal:{tmp_path / 'sw' / 'journal.log'}" if storage else None
    built, store = prepare(sweep, folder, url)
    study = open_study(sweep, built[0], store, where="")
    assert [t.number for t in study.get_trials()] == [0, 1, 2, 3]
    assert sorted(slots(study)) == [0, 1] and slots(study)[1].number == 3  # number 2 is no trial of the study
    assert progress(study, 4) == {"complete": 0, "pruned": 1, "failed": 1, "running": 0, "waiting": 2}
    assert slots(study)[1].user_attrs["reason"] == "no good"
    with locked(folder):
        assert take_trial(study, 4).number == 4


def test_a_rebuild_cut_short_is_made_again(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_sweep(tmp_path, trials=4)
    make_sweep_studies(tmp_path)  # the study, empty
    url = SweepFolder(tmp_path / "sw").storage_url
    study = optuna.load_study(study_name="s/t", storage=url)
    study.set_user_attr(RESTORING, True)  # as a rebuild killed after its first trial leaves it
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    _record(tmp_path, 0, [0], "FAIL", reason="no good")
    _record(tmp_path, 2, [2], "RUNNING")

    make_sweep_studies(tmp_path)
    study = optuna.load_study(study_name="s/t", storage=url)
    assert [t.state.name for t in study.get_trials()] == ["FAIL", "FAIL", "FAIL", "WAITING"]
    assert sorted(slots(study)) == [0, 2] and slots(study)[2].number == 3 and study.user_attrs[RESTORING] is False


def test_a_rebuilt_trial_has_reported_to_the_pruner_what_its_first_run_evaluated(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_sweep(tmp_path, trials=4, pruner={"name": "median", "evaluations": 2, "startup_trials": 1})
    _record(tmp_path, 0, [0], "PRUNED", reason="pruned")
    lines = [{"metric": "fd", "checkpoint": "training", "step": s, "fd": v} for s, v in ((2, 9.0), (4, float("nan")))]
    (tmp_path / "sw" / "t" / "trial-0000" / "seed0").mkdir()
    (tmp_path / "sw" / "t" / "trial-0000" / "seed0" / "eval.jsonl").write_text("".join(json.dumps(x) + "\n"
                                                                                        for x in lines))
    make_sweep_studies(tmp_path)
    study = optuna.load_study(study_name="s/t", storage=SweepFolder(tmp_path / "sw").storage_url)
    assert study.trials[0].intermediate_values == {1: 9.0}  # as trial.py's hook numbers them, NaN not reported
