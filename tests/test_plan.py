"""The run plan is the one place a config is checked: every bad `run` input of tests/test_bad_inputs.py is
refused by the plan alone (config read, plan made, data loaded and the plan resolved: no model trained,
nothing written) with the very line the CLI prints. And what the plan resolves is what the run uses."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan_bench.cli import _parser, main
from gan_bench.config import build_config, load_config
from gan_bench.data import load_data
from gan_bench.errors import GanBenchError
from gan_bench.train.plan import make_plan, preflight
from gan_bench.train.setup import build
from test_bad_inputs import CASES, _setup
from conftest import tiny_overrides

# `run` rows whose problem is not the config's but where the run folder is written (the folder itself, a full
# or read-only disk): the run folder's own checks, as it is made
NOT_THE_PLANS = ("output folder", "read-only", "full disk", "disk full")


def run_rows() -> dict:
    return {name: case[0] for name, case in CASES.items()
            if not any(w in name for w in NOT_THE_PLANS) and not getattr(case[0], "needs_runs", False)}


def plan_only(argv: list[str]) -> None:
    """What `gan-bench run` does before training, through the plan: read the config, make the plan, load the
    data and resolve the plan for the CPU."""
    a = _parser().parse_args(argv)
    from gan_bench import plugins

    plugins.load(a.plugin)
    cfg = load_config(a.config, a.set, plugins=a.plugin)
    if a.out:
        cfg.out = a.out
    make_plan(cfg)  # what the CLI asks before anything is read
    preflight(cfg, load_data(cfg.data))  # the plan, resolved for the CPU, and the plugins' contracts


@pytest.mark.parametrize("name", list(run_rows()))
def test_the_plan_refuses_each_bad_run_input_with_the_clis_line(name: str, tmp_path: Path, monkeypatch, capsys,
                                                                request, isolated_registries):
    setup = CASES[name][0]
    argv = _setup(setup, tmp_path, request)
    if argv[0] != "run" or "--resume" in argv:
        pytest.skip("not a `run` of a config (the table's other commands; --resume reads a run folder)")
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    line = capsys.readouterr().err.strip().removeprefix("gan-bench: error: ")
    isolated_registries  # the CLI's plugins are dropped between the two attempts by re-loading them
    try:
        plan_only(argv)
    except GanBenchError as e:
        assert str(e) == line
    except SystemExit:
        pytest.skip("an argument error: argparse's, before any config")
    else:
        pytest.fail(f"the plan accepted what the CLI refused: {line}")


def test_the_resolved_plan_is_what_the_run_trains_with(tiny_npz: Path):
    cfg = build_config([tiny_overrides(tiny_npz, "classdcgan", loss="hinge", diffaug="translation")])
    plan = make_plan(cfg)
    assert plan.spec is None and plan.recipe.pairs == 1  # not resolved: no data seen yet
    t = build(plan, device=torch.device("cpu"), folder=False)
    assert t.plan.spec.num_classes == 3 and t.plan.recipe.pairs == 3  # classdcgan: one pair per class
    from gan_bench.train.augment import AUGMENTS
    from gan_bench.train.losses import LOSSES

    assert t.plan.recipe.loss is LOSSES.get("hinge") and t.plan.recipe.augments == (AUGMENTS.get("translation"),)
    assert t.total == t.plan.budget.total_steps(t.source.steps_per_epoch) == 2 * t.source.steps_per_epoch


def test_max_steps_is_the_step_budget_whatever_the_epochs(tiny_npz: Path):
    """train.max_steps replaces the epochs as the bound: 60 steps asked, 60 planned (not the 2 epochs')."""
    cfg = build_config([tiny_overrides(tiny_npz, max_steps=60)])
    t = build(cfg, device=torch.device("cpu"), folder=False)
    assert t.source.steps_per_epoch * cfg.train.epochs < 60 == t.total


def test_dry_run_prints_the_config_and_the_plan(tiny_npz: Path, capsys, tmp_path: Path, monkeypatch):
    import yaml

    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(tiny_overrides(tiny_npz, max_steps=7)))
    assert main(["run", "t.yaml", "--set", "eval.every_steps=5", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out)["train"]["max_steps"] == 7  # the plan's lines are YAML comments
    assert "# plan: budget: 7 steps" in out and "# plan: evaluation: fd, kid, precision, recall" in out
    assert not any(tmp_path.glob("results*"))
