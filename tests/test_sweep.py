"""`gan-bench sweep`: a tiny sweep end to end (trials as run folders, the report, the best config, --confirm),
a trial that cannot train, the pruner's stop, and a 2-worker sweep killed with kill -9 then rerun: every
trial counted once.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import yaml

from gan_bench import cli as gan_cli
from gan_bench.config import load_config
from gan_bench.run import RunFolder
from conftest import cli, cli_env, tiny_overrides, write_npz

pytestmark = pytest.mark.usefixtures("one_torch_thread")

def sweep_cli(*argv: str) -> int:
    return gan_cli.main(list(argv))


def write_sweep(tmp: Path, *, steps: int = 4, trials: int = 3, space: dict | None = None, **keys) -> Path:
    """t.yaml (the tiny config over 300 small images, half of them the test split that fd needs) and s.yaml,
    a sweep of it into ./sw."""
    npz = tmp / "tiny.npz"
    if not npz.exists():
        write_npz(npz, n_per_class=100)
    cfg = tiny_overrides(npz, checkpoint_every=3, device="cpu")
    cfg["data"]["test_fraction"] = 0.5
    cfg["eval"] = {"samples": 150}
    (tmp / "t.yaml").write_text(yaml.safe_dump(cfg))
    sweep = {"name": "s", "out": "sw", "configs": ["t.yaml"], "objective": "fd", "budget": {"steps": steps},
             "trials": trials, "space": space or {"train.lr_g": {"loguniform": [1e-4, 1e-3]},
                                                   "train.betas[0]": {"uniform": [0.0, 0.9]},
                                                   "train.loss": {"choice": ["bce", "hinge"]}}, **keys}
    (tmp / "s.yaml").write_text(yaml.safe_dump(sweep))
    return tmp / "s.yaml"


def study(tmp: Path, name: str = "s/t") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp / 'sw' / 'study.db'}")


def test_tiny_sweep_end_to_end_then_confirm(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_sweep(tmp_path)
    assert sweep_cli("sweep", "s.yaml") == 0
    trials = study(tmp_path).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    for t in trials:  # each trial an ordinary run folder holding its sampled values, its number in its name
        run = RunFolder(tmp_path / "sw" / "t" / f"trial-{t.number:04d}" / "seed0")
        cfg = run.read_config()
        assert cfg.name == f"t-t{t.number:04d}" and cfg.train.max_steps == 4
        assert cfg.train.lr_g == t.params["train.lr_g"] and cfg.train.loss == t.params["train.loss"]
        assert cfg.train.betas == [t.params["train.betas[0]"], 0.999]
        assert run.read_summary()["status"] == "completed" and run.read_summary()["steps"] == 4
        record = json.loads((run.path.parent / "trial.json").read_text())
        assert (record["trial"], record["state"], record["params"]) == (t.number, "COMPLETE", t.params)
        fd = [r["fd"] for r in run.records("eval") if r["step"] == 4]
        assert fd == [pytest.approx(t.value)]  # the objective is the run's own record at the budget
    report = tmp_path / "sw" / "report"
    for name in ("README.md", "best_of_k.png", "objective.png", "slice_t.png"):
        assert (report / name).stat().st_size > 0, name
    best = min(trials, key=lambda t: t.value)
    text = (tmp_path / "sw" / "best" / "t.yaml").read_text()
    assert text.startswith("# The best of 3 trials of sweep s (s.yaml) for t: fd")
    ready = load_config(tmp_path / "sw" / "best" / "t.yaml")  # a config `gan-bench run` takes as it is
    assert ready.train.lr_g == best.params["train.lr_g"] and ready.train.max_steps == 4
    assert f"trial {best.number}" in (report / "README.md").read_text()

    # the trials work with the other commands, and the same command again trains nothing more
    assert gan_cli.main(["sample", "sw/t/trial-0001/seed0", "-n", "2", "--out", "x.png"]) == 0
    capsys.readouterr()
    assert sweep_cli("sweep", "s.yaml") == 0
    assert len(study(tmp_path).get_trials()) == 3 and "trial 0:" not in capsys.readouterr().out

    assert sweep_cli("sweep", "s.yaml", "--confirm", "2") == 0
    for seed in (1, 2):  # fresh seeds: after the trials' seed 0
        run = RunFolder(tmp_path / "sw" / "confirm" / "t" / f"seed{seed}")
        assert run.read_config().train.seed == seed and run.read_config().train.lr_g == best.params["train.lr_g"]
    confirmed = (report / "confirmed.md").read_text()
    assert "bootstrap" in confirmed and "| t |" in confirmed.replace("  ", " ")


def test_a_config_that_cannot_train_is_a_failed_trial_and_the_sweep_goes_on(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_sweep(tmp_path, trials=2, space={"train.batch_size": {"choice": [100000]}})
    assert sweep_cli("sweep", "s.yaml") == 0
    trials = study(tmp_path).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL] * 2
    for t in trials:
        assert "train.batch_size=100000 is larger than the" in t.user_attrs["reason"]
        record = json.loads((tmp_path / "sw" / "t" / f"trial-{t.number:04d}" / "trial.json").read_text())
        assert record["state"] == "FAIL" and "larger than the" in record["reason"]
    assert not (tmp_path / "sw" / "report").exists()  # nothing completed: no report


def test_pruner_stops_a_run_as_a_shorter_completed_one(tmp_path: Path):
    from gan_bench.config import build_config
    from gan_bench.data import load_data
    from gan_bench.sweep.trial import train_or_resume

    write_sweep(tmp_path)
    d = yaml.safe_load((tmp_path / "t.yaml").read_text())
    cfg = build_config([d, {"train": {"max_steps": 8}, "eval": {"every_steps": 2}}], name="p")
    seen = []

    def on_eval(step: int):
        seen.append(step)
        return "pruned by the sweep's pruner (test)" if step == 4 else None

    run = RunFolder(tmp_path / "p")
    assert train_or_resume(cfg, run, load_data(cfg.data), on_eval=on_eval) == "pruned by the sweep's pruner (test)"
    summary = run.read_summary()
    assert seen == [2, 4] and summary["steps"] == 4 and summary["status"] == "completed"
    assert summary["reason"] == "pruned by the sweep's pruner (test)"
    # read back, not trained again: the folder says it was pruned
    assert train_or_resume(cfg, run, load_data(cfg.data), on_eval=on_eval) == "pruned by the sweep's pruner (test)"
    assert seen == [2, 4]


def _checkpointed_trials(sw: Path) -> list[Path]:
    return [p for p in sw.glob("t/trial-*/seed0") if (p / "checkpoints" / "last.pt").exists()
            and not (p / "summary.json").exists()]


def _stamp(path: Path) -> tuple[int, int]:
    return path.stat().st_ino, path.stat().st_mtime_ns


def test_kill_9_of_a_two_worker_sweep_then_rerun_counts_every_trial_once(tmp_path: Path):
    write_sweep(tmp_path, steps=30, trials=4)
    cmd = cli("sweep", "s.yaml", "--jobs", "2")
    p = subprocess.Popen(cmd, cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while p.poll() is None and time.monotonic() < deadline and not _checkpointed_trials(tmp_path / "sw"):
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)  # the command and both its workers, mid-trial
    p.communicate(timeout=60)
    assert p.returncode == -9, "the sweep ended before the kill; give its trials more steps"
    killed = {int(t.parent.name.split("-")[1]): _stamp(t / "config.yaml") for t in _checkpointed_trials(tmp_path / "sw")}
    assert killed and {t.state for t in study(tmp_path).get_trials() if t.number in killed} == {
        optuna.trial.TrialState.RUNNING}

    r = subprocess.run(cmd, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    trials = study(tmp_path).get_trials()
    latest = {}
    for t in trials:  # each slot: its first attempt's number (a retry names it in failed_trial)
        latest.setdefault(t.system_attrs.get("failed_trial", t.number), []).append(t)
    assert len(latest) == 4  # four trials, as the file says: the retries are not new ones
    for slot, attempts in latest.items():
        *before, last = sorted(attempts, key=lambda t: t.number)
        assert last.state == optuna.trial.TrialState.COMPLETE
        assert all(t.state == optuna.trial.TrialState.FAIL and "is gone" in t.user_attrs["reason"] for t in before)
        assert bool(before) or slot not in killed  # a trial killed mid-run was retried
        if slot in killed:  # from its checkpoint: a run started afresh writes a new config.yaml
            assert _stamp(tmp_path / "sw" / "t" / f"trial-{slot:04d}" / "seed0" / "config.yaml") == killed[slot]
        run = RunFolder(tmp_path / "sw" / "t" / f"trial-{slot:04d}" / "seed0")
        steps = [r["step"] for r in run.records("metrics")]
        assert steps == sorted(set(steps)) and steps[-1] == 30  # each step logged once
        assert run.read_config().train.lr_g == last.params["train.lr_g"] == attempts[0].params["train.lr_g"]
    assert sorted(p.name for p in (tmp_path / "sw" / "t").iterdir()) == [f"trial-{i:04d}" for i in sorted(latest)]
    assert (tmp_path / "sw" / "report" / "README.md").exists()


def test_pruned_trials_are_shorter_runs_and_the_report_names_them(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_sweep(tmp_path, steps=8, trials=4, pruner={"name": "median", "evaluations": 2, "startup_trials": 1},
                space={"train.lr_g": {"loguniform": [1e-5, 1e-1]}})
    assert sweep_cli("sweep", "s.yaml") == 0
    trials = study(tmp_path).get_trials()
    pruned = [t.number for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 4 and sorted(pruned + complete) == [0, 1, 2, 3] and 0 in complete  # trial 0: startup
    for t in trials:
        summary = RunFolder(tmp_path / "sw" / "t" / f"trial-{t.number:04d}" / "seed0").read_summary()
        assert (t.number in pruned) == (summary["steps"] == 4) and (summary["steps"] == 8) == (t.number in complete)
        assert (summary["reason"] or "").startswith("pruned by the sweep's pruner (median) at evaluation 1 of 2") \
            == (t.number in pruned)
    line = next(x for x in (tmp_path / "sw" / "report" / "README.md").read_text().splitlines() if "pruned" in x)
    assert f"{len(pruned)} pruned" in line and all(str(n) in line for n in pruned)
