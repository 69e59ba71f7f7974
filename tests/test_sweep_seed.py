"""A sweep's draws repeat: the file's `seed` (default 0) seeds each trial's sampler with the study and the
trial's number, for the random sampler and TPE alike; workers draw by the trial's number, so two workers never
draw the same values for their first trials; and a study made before the key existed continues."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from gan_bench.cli import main
from gan_bench.errors import ConfigError
from gan_bench.sweep import SweepFolder, load_sweep, prepare
from gan_bench.sweep.plan import fingerprint
from gan_bench.sweep.study import FINGERPRINT, locked, open_study, take_trial
from test_sweep import write_sweep

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_two_sweeps_of_one_file_in_two_folders_draw_the_same_values(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_sweep(tmp_path, steps=2, trials=2)
    params = {}
    for out in ("a", "b"):
        assert main(["sweep", "s.yaml", "--out", out]) == 0
        study = optuna.load_study(study_name="s/t", storage=f"sqlite:///{tmp_path / out / 'study.db'}")
        params[out] = [t.params for t in study.get_trials()]
    assert params["a"] == params["b"] and len(params["a"]) == 2 and params["a"][0] != params["a"][1]
    for i, p in enumerate(params["a"]):  # and the runs trained them
        cfg = yaml.safe_load((tmp_path / "b" / "t" / f"trial-{i:04d}" / "seed0" / "config.yaml").read_text())
        assert cfg["train"]["lr_g"] == p["train.lr_g"]


def _draws(tmp: Path, out: str, *, sampler: str = "random", seed: int | None = None, n: int = 3,
           workers: int = 1) -> list[dict]:
    """n trials' values of the sweep s.yaml into `out`, told a value computed from them (no training), taken in
    turn by `workers` workers (each its own study object and sampler, as each process has)."""
    keys = {"sampler": sampler, **({"seed": seed} if seed is not None else {})}
    write_sweep(tmp, trials=n, out=out, **keys)
    sweep = load_sweep(Path("s.yaml"))
    folder = SweepFolder(sweep.out_path)
    (base,), storage = prepare(sweep, folder, None)
    studies = [open_study(sweep, base, storage, where="") for _ in range(workers)]
    values = []
    for i in range(n):
        study = studies[i % workers]
        with locked(folder):
            trial = take_trial(study, n)
        drawn = {p.key: p.suggest(trial) for p in base.params}
        study.tell(trial, drawn["train.lr_g"] * 1e4 + drawn["train.betas[0]"])
        values.append(drawn)
    return values


@pytest.mark.parametrize("sampler, n", [("random", 4), ("tpe", 12)])  # TPE past its 10 random start-up trials
def test_draws_repeat_for_the_seed_and_differ_for_another(tmp_path: Path, monkeypatch, sampler: str, n: int):
    monkeypatch.chdir(tmp_path)
    a = _draws(tmp_path, "a", sampler=sampler, n=n)
    assert _draws(tmp_path, "b", sampler=sampler, n=n) == a
    assert _draws(tmp_path, "c", sampler=sampler, seed=0, n=n) == a  # 0 is the default
    other = _draws(tmp_path, "d", sampler=sampler, seed=1, n=n)
    assert all(x != y for x, y in zip(a, other))
    assert len({x["train.lr_g"] for x in a}) == n  # each trial its own draw


def test_workers_draw_by_the_trials_number_not_their_own_sequence(tmp_path: Path, monkeypatch):
    """Two workers seeded alike per process would both draw trial 0's values first; by the trial's number they
    draw what one worker would have."""
    monkeypatch.chdir(tmp_path)
    one = _draws(tmp_path, "one", n=4)
    assert _draws(tmp_path, "two", n=4, workers=2) == one
    assert len({x["train.lr_g"] for x in one}) == 4


def test_a_study_made_before_the_seed_key_continues_and_a_changed_seed_is_refused(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_sweep(tmp_path, trials=2)
    sweep = load_sweep(Path("s.yaml"))
    folder = SweepFolder(sweep.out_path)
    (base,), storage = prepare(sweep, folder, None)
    study = optuna.load_study(study_name="s/t", storage=storage)
    # what the code before the key wrote into the study: these keys, no seed
    old = {"config": {k: v for k, v in base.resolved.items() if k not in ("name", "out", "plugins")},
           "space": {p.key: p.as_dict() for p in base.params}, "objective": "fd", "budget": {"steps": 4},
           "seeds": [0], "sampler": "random", "pruner": None, "record": []}
    study.set_user_attr(FINGERPRINT, old)
    assert fingerprint(sweep, base) == old
    write_sweep(tmp_path, trials=2, seed=0)
    assert open_study(load_sweep(Path("s.yaml")), base, storage, where="sw") is not None
    write_sweep(tmp_path, trials=2, seed=5)
    with pytest.raises(ConfigError, match="seed was None, now 5"):
        open_study(load_sweep(Path("s.yaml")), base, storage, where="sw")
