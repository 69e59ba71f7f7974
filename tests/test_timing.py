"""Quality against time: the training clock, in-training evaluation by steps and seconds, the time budget,
and compare's curves, time-to-quality table and lever view (run folders written by hand)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import gan_bench.train.loop as loop_module
import gan_bench.train.schedule as schedule_module
from gan_bench.train.plan import make_plan
from gan_bench.cli import main
from gan_bench.config import build_config
from gan_bench.report.compare import compare
from gan_bench.report.levers import lever_markdown, lever_table
from gan_bench.report.records import load_runs
from gan_bench.report.timing import curve_groups, mean_curve, parse_targets, time_to_quality
from gan_bench.run import RunFolder
from gan_bench.run.files import read_jsonl
from gan_bench.run.world import World
from gan_bench.train.loop import train
from gan_bench.train.schedule import Schedule
from conftest import tiny_overrides

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _schedule(monkeypatch, **keys) -> tuple[Schedule, FakeClock]:
    clock = FakeClock()
    monkeypatch.setattr(schedule_module.time, "perf_counter", clock)
    sections: dict = {"eval": {}, "train": {}}
    for k, v in keys.items():
        section, key = k.split("__")
        sections[section][key] = v
    cfg = build_config([sections])
    return Schedule(make_plan(cfg), World(), prior_seconds=0.0, steps_per_epoch=10), clock


def test_eval_every_steps_and_epochs_and_the_last_step(monkeypatch):
    s, _ = _schedule(monkeypatch, eval__every_steps=4, eval__every=3)
    due = [step for step in range(1, 101) if s.eval_due(step, last=step == 100)]
    assert due == sorted({*range(4, 101, 4), 30, 60, 90, 100})


def test_no_evaluation_when_none_is_on(monkeypatch):
    s, _ = _schedule(monkeypatch)
    assert not any(s.eval_due(step, last=step == 100) for step in range(1, 101))


def test_eval_every_seconds_counts_training_seconds_only(monkeypatch):
    s, clock = _schedule(monkeypatch, eval__every_seconds=10.0)
    clock.now += 9.0
    assert not s.eval_due(1, last=False)
    clock.now += 1.5  # 10.5 s trained
    assert s.eval_due(2, last=False)
    with s.pause():   # an evaluation of 30 s: not training time
        clock.now += 30.0
    assert s.seconds() == pytest.approx(10.5)
    assert not s.eval_due(3, last=False)
    clock.now += 9.6  # 20.1 s trained
    assert s.eval_due(4, last=False)


def test_time_budget_and_a_resumed_clock(monkeypatch):
    s, clock = _schedule(monkeypatch, train__max_minutes=0.5)
    clock.now += 29.0
    assert not s.out_of_time()
    clock.now += 1.0
    assert s.out_of_time()
    cfg = build_config([{"train": {"max_minutes": 0.5}}])
    resumed = Schedule(make_plan(cfg), World(), prior_seconds=31.0, steps_per_epoch=10)
    assert resumed.out_of_time() and resumed.seconds() >= 31.0


def test_in_training_lines_record_seconds_and_images(tmp_path: Path, tiny_npz: Path, monkeypatch):
    calls = []

    def fake_in_training(gan, splits, cfg, run, step, g=None, at=None):
        calls.append((step, dict(at)))
        run.append("eval", {"metric": "fd", "step": step, **at, "checkpoint": "training", "fd": 10.0 / step})
        return {"fd": 10.0 / step}

    monkeypatch.setattr(loop_module, "in_training", fake_in_training)
    # 36 images at batch 8: 4 full batches an epoch, 2 epochs; every 3 steps and the last
    run = train(build_config([tiny_overrides(tiny_npz, epochs=2, checkpoint_every=100),
                              {"out": str(tmp_path), "eval": {"every_steps": 3}}], name="t"))
    assert [c[0] for c in calls] == [3, 6, 8]
    assert [c[1]["images_seen"] for c in calls] == [24, 48, 64]
    seconds = [c[1]["train_seconds"] for c in calls]
    assert seconds == sorted(seconds) and seconds[0] > 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["train_seconds"] >= seconds[-1] and summary["budget"] == "epochs"
    assert not summary["budget_reached"]


@pytest.mark.parametrize("metrics, best", [(["fd"], True), (["precision"], False)])
def test_best_checkpoint_follows_eval_primary_or_the_run_says_why_not(tmp_path: Path, tiny_npz: Path, monkeypatch,
                                                                       metrics, best):
    def fake_in_training(gan, splits, cfg, run, step, g=None, at=None):
        values = {m: 10.0 / step for m in cfg.eval.metrics}  # only what was asked for, as the real one
        run.append("eval", {"metric": cfg.eval.metrics[0], "step": step, **at, **values})
        return values

    monkeypatch.setattr(loop_module, "in_training", fake_in_training)
    run = train(build_config([tiny_overrides(tiny_npz, epochs=1, checkpoint_every=100),
                              {"out": str(tmp_path), "eval": {"every_steps": 2, "metrics": metrics}}], name="t"))
    assert (run / "checkpoints" / "best.pt").exists() == best
    warned = [e for e in read_jsonl(run / "events.jsonl") if e.get("kind") == "no_best_checkpoint"]
    summary = json.loads((run / "summary.json").read_text())
    assert ("no_best_checkpoint" in summary["warnings"]) == (not best) and len(warned) == (0 if best else 1)
    if warned:
        assert "eval.primary=fd is not in eval.metrics ['precision']" in warned[0]["message"]


def test_a_time_budget_ends_the_run_completed_with_its_last_step_kept(tmp_path: Path, tiny_npz: Path):
    over = tiny_overrides(tiny_npz, epochs=50, checkpoint_every=1000, max_minutes=1e-6)
    run = train(build_config([over, {"out": str(tmp_path)}], name="t"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["budget"] == "time" and summary["budget_reached"]
    assert summary["steps"] == 1 < summary["total_steps"]
    assert "train.max_minutes" in summary["reason"]
    folder = RunFolder(run)
    assert folder.has_checkpoint() and (run / "metrics.jsonl").read_text().count("\n") == 1
    assert list((run / "samples").glob("*.png"))  # the final grid, as at the end of any run
    assert summary["device"].startswith("cpu (") and "threads" in summary["device"]


# ---- reports ------------------------------------------------------------------------------------

def timed_run(root: Path, name: str, seed: int, *, model: str, curve: list[tuple[int, float, float]],
              metric: str = "cond_acc", config_extra: dict | None = None, img_per_sec: float = 100.0,
              device: str = "cpu (Test CPU, 2 threads)") -> Path:
    """A run folder whose eval.jsonl holds timed in-training lines: (step, seconds, value)."""
    run = root / name / f"seed{seed}"
    run.mkdir(parents=True)
    config = {"name": name, "data": {"name": "npz", "path": "x/quickdraw10_train.npz"}, "model": {"name": model},
              "train": {"seed": seed, **(config_extra or {})}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss_d": 1.0, "loss_g": 1.0, "d_x": .5, "d_g_z": .5})
                                       + "\n")
    steps = curve[-1][0]
    (run / "summary.json").write_text(json.dumps({
        "status": "completed", "name": name, "model": model, "seed": seed, "config_hash": f"{name}{seed}",
        "steps": steps, "train_seconds": curve[-1][1], "img_per_sec": img_per_sec,
        "device": device}))
    (run / "eval.jsonl").write_text("".join(
        json.dumps({"metric": metric, "step": st, "train_seconds": sec, "images_seen": st * 128,
                    "checkpoint": "training", metric: v}) + "\n" for st, sec, v in curve))
    return run


@pytest.fixture
def timed(tmp_path: Path) -> Path:
    root = tmp_path / "suite"
    for seed in range(3):
        d = 5.0 * seed  # seconds differ by seed, values do not
        timed_run(root, "quickdraw_cdcgan", seed, model="cdcgan",
                  curve=[(100, 60 + d, 0.3), (200, 120 + d, 0.6), (300, 180 + d, 0.7)])
        timed_run(root, "quickdraw_cdcgan+ema", seed, model="cdcgan", config_extra={"ema": 0.999},
                  curve=[(100, 62 + d, 0.5), (200, 124 + d, 0.85 + 0.01 * seed), (300, 186 + d, 0.9)])
        timed_run(root, "quickdraw_cdcgan+hinge", seed, model="cdcgan", config_extra={"loss": "hinge"},
                  curve=[(100, 61 + d, 0.2 + 0.1 * seed), (200, 121 + d, 0.5 + 0.1 * seed),
                         (300, 181 + d, 0.6 + 0.1 * seed)])
    return root


def test_time_to_quality_reads_the_first_evaluation_at_the_target(timed: Path):
    runs = load_runs(timed)
    table = time_to_quality(runs, "cond_acc", parse_targets(["cond_acc=0.8"])).set_index("model")
    assert table.loc["cdcgan+ema", "reached"] == 3
    assert table.loc["cdcgan+ema", "seconds_mean"] == pytest.approx(129.0)   # 124, 129, 134
    assert table.loc["cdcgan+ema", "steps_mean"] == 200
    assert table.loc["cdcgan", "reached"] == 0 and pd.isna(table.loc["cdcgan", "seconds_mean"])
    assert table.loc["cdcgan+hinge", "reached"] == 1  # only seed 2 gets to 0.8, at its last evaluation
    default = time_to_quality(runs, "cond_acc").set_index("model")  # the worst model's final mean: 0.7
    assert list(default["target"]) == pytest.approx([0.7] * 3)
    assert default.loc["cdcgan", "reached"] == 3 and default.loc["cdcgan", "seconds_mean"] == pytest.approx(185.0)


def test_mean_curve_interpolates_seeds_on_their_common_range():
    xs, mean, std = mean_curve([[(0.0, 0.0), (10.0, 1.0)], [(2.0, 0.2), (12.0, 1.0)]])
    assert list(xs) == [2.0, 10.0]
    assert mean[0] == pytest.approx((0.2 + 0.2) / 2) and mean[1] == pytest.approx((1.0 + 0.84) / 2)
    assert std[0] == pytest.approx(0.0)


def test_compare_writes_the_time_plot_the_table_and_the_lever_view(timed: Path, tmp_path: Path):
    out = tmp_path / "report"
    compare(results=timed, out=out, targets=["cond_acc=0.8"])
    ttq = (out / "time_to_quality.md").read_text()
    assert "cond_acc ≥ 0.8" in ttq and "not reached" in ttq and "(1 of 3 seeds)" in ttq
    assert "on cpu (Test CPU, 2 threads)" in ttq
    # every seed there (124 to 134 s); the others' seeds reach it later or not at all (181 s and more)
    assert "**cdcgan+ema**" in ttq
    assert (out / "quality_vs_time.png").stat().st_size > 10_000
    levers = (out / "levers.md").read_text()
    ema_row = next(line for line in levers.splitlines() if line.startswith("| +ema"))
    hinge_row = next(line for line in levers.splitlines() if line.startswith("| +hinge"))
    assert "▲" in ema_row           # +0.25 at step 200, every seed of it above every seed of the baseline
    assert "▲" not in hinge_row and "▼" not in hinge_row  # its mean is the baseline's: the interval holds zero
    assert "train.ema=0.999" in levers and "train.loss=hinge" in levers


def test_the_lever_view_compares_images_per_second_on_one_machine_only(tmp_path: Path):
    root = tmp_path / "suite"
    curve = [(100, 60.0, 0.5)]
    for seed in range(2):
        timed_run(root, "quickdraw_cdcgan", seed, model="cdcgan", curve=curve, img_per_sec=100.0 + seed)
        timed_run(root, "quickdraw_cdcgan+ema", seed, model="cdcgan", config_extra={"ema": 0.999}, curve=curve,
                  img_per_sec=50.0 + seed)
        timed_run(root, "quickdraw_cdcgan+hinge", seed, model="cdcgan", config_extra={"loss": "hinge"}, curve=curve,
                  img_per_sec=200.0 + seed, device="cpu (Other CPU, 1 threads)")
    table = lever_table(load_runs(root)).set_index(["variant", "metric"])
    assert table.loc[("+ema", "img_per_sec"), "delta"] == pytest.approx(-50.0)  # same machine: compared
    assert table.loc[("+ema", "img_per_sec"), "distinguishable"]
    hinge = table.loc[("+hinge", "img_per_sec")]
    assert pd.isna(hinge["delta"]) and pd.isna(hinge["distinguishable"]) and hinge["mean"] == pytest.approx(200.5)
    assert table.loc[("+hinge", "cond_acc"), "delta"] == pytest.approx(0.0)  # quality still compares
    md = lever_markdown(lever_table(load_runs(root)))
    assert "ran on another machine than their baseline" in md
    assert "| +hinge | 200.50 ± 0.71 |" in md and "| +ema | 50.50 ± 0.71 (-50 ▼) |" in md


def test_curves_and_throughput_bars_keep_two_machines_apart(tmp_path: Path):
    from gan_bench.report.compare import runs_table
    from gan_bench.report.plots import throughput_bars
    from gan_bench.report.records import machine_tags

    root = tmp_path / "suite"
    for seed in range(3):  # seed 2 ran on a second machine: its minutes are not the others'
        device = "cpu (Other CPU, 1 threads)" if seed == 2 else "cpu (Test CPU, 2 threads)"
        timed_run(root, "quickdraw_cdcgan", seed, model="cdcgan", curve=[(100, 60.0, 0.5)], img_per_sec=100.0,
                  device=device)
    runs = load_runs(root)
    g, tags = curve_groups(runs, "cond_acc")
    assert tags == {"cpu (Other CPU, 1 threads)": "m1", "cpu (Test CPU, 2 threads)": "m2"}
    assert {k: sorted(r.seed for r in rs) for k, rs in g.items()} == {("quickdraw", "cdcgan", "m1"): [2],
                                                                      ("quickdraw", "cdcgan", "m2"): [0, 1]}
    one = [r for r in runs if r.seed < 2]
    assert curve_groups(one, "cond_acc")[0].keys() == {("quickdraw", "cdcgan", "")}  # one machine: no tag
    assert machine_tags([None, "a", "a"]) == {}
    bars, _ = throughput_bars(runs_table(runs))
    assert list(bars["label"]) == ["quickdraw / cdcgan on m1", "quickdraw / cdcgan on m2"]
    assert list(bars["mean"]) == pytest.approx([100.0, 100.0])


def test_compare_target_errors_are_one_line(timed: Path, tmp_path: Path, capsys):
    for bad in ["cond_acc", "cond_acc=high", "nosuch=1"]:
        assert main(["compare", str(timed), "--out", str(tmp_path / "r"), "--target", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert "--target" in err and "\n" not in err
        assert not (tmp_path / "r").exists()


def test_the_gallery_shows_quality_against_time(timed: Path, tmp_path: Path):
    from gan_bench.report.gallery import build_gallery

    page = build_gallery(results=timed, out=tmp_path / "g").read_text()
    assert "overview/quality_vs_time.png" in page
    assert (tmp_path / "g" / "overview" / "quality_vs_time.png").stat().st_size > 10_000


PLUGIN = '''
from gan_bench.api import register_metric


@register_metric("tiny_gap", kind="custom", key="gap", better="lower")
def gap(ctx) -> dict:
    """Gap between the mean pixel of generated and real test images: cheap, and it moves as G trains."""
    return {"gap": abs(ctx.fake.x.float().mean() - ctx.splits.test.x.float().mean()).item() / 255}
'''


def test_a_tiny_suite_evaluated_in_training_gets_its_curves_and_time_table(tmp_path: Path, tiny_npz: Path,
                                                                          isolated_registries):
    """The whole path: the trainer's timed evaluations -> the suite's report -> plot and table."""
    from gan_bench.suite.executor import run_suite
    from gan_bench.suite.file import load_suite

    (tmp_path / "gap.py").write_text(PLUGIN)
    for model in ("cdcgan", "convdcgan"):
        (tmp_path / f"tiny_{model}.yaml").write_text(yaml.safe_dump(tiny_overrides(tiny_npz, model=model)))
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump({
        "name": "t", "out": str(tmp_path / "res"), "seeds": [0], "plugins": [str(tmp_path / "gap.py")],
        "set": ["train.epochs=2", "eval.every_steps=2", "eval.metrics=[tiny_gap]", "eval.samples=12"],
        "targets": ["gap=0.5"],
        "runs": [str(tmp_path / "tiny_cdcgan.yaml"), str(tmp_path / "tiny_convdcgan.yaml")]}))
    out = tmp_path / "res"
    run_suite(load_suite(tmp_path / "suite.yaml"), out=out, say=lambda _: None)
    lines = [json.loads(line) for line in (out / "tiny_cdcgan" / "seed0" / "eval.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4, 6, 8]
    assert all(line["train_seconds"] > 0 and line["images_seen"] == 8 * line["step"] for line in lines)
    report = out / "report"
    assert (report / "quality_vs_time.png").stat().st_size > 10_000
    ttq = (report / "time_to_quality.md").read_text()
    assert "gap ≤ 0.5" in ttq and "cdcgan" in ttq and "convdcgan" in ttq
    assert "overview/quality_vs_time.png" in (report / "gallery" / "index.html").read_text()


def test_a_dozen_curves_get_a_dozen_styles_and_their_legend_beside_the_panels(tmp_path: Path, monkeypatch):
    """A lever suite's dozen variants: ten colours alone would draw the 11th curve as the 1st, and a
    dozen legend lines inside an axis hide the curves."""
    from gan_bench.report import plots
    from gan_bench.report.timing import plot

    root = tmp_path / "suite"
    for i in range(12):
        timed_run(root, f"quickdraw_cdcgan+v{i:02d}", 0, model="cdcgan", curve=[(100, 60.0, 0.5), (200, 120.0, 0.6)])
    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (figures.append(fig), save(fig, path))[1])
    assert plot(load_runs(root), "cond_acc", tmp_path / "q.png").exists()
    left, right = figures[0].axes[:2]
    assert len(left.get_lines()) == 12
    assert len({(line.get_color(), line.get_linestyle()) for line in left.get_lines()}) == 12
    assert left.get_legend() is None and len(right.get_legend().get_texts()) == 12
