"""Tables and plots from run folders written by hand in the trainer's layout (no training needed)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from gan_bench.cli import main
from gan_bench.errors import GanBenchError
from gan_bench.report.compare import compare, pivot_long, resolve_metric, runs_table
from gan_bench.report.format import mean_std, to_markdown
from gan_bench.report.records import display_names, eval_columns, load_runs


def fake_run(root: Path, name: str, seed: int, *, model: str, evals=(), status="completed",
             data=None, img_per_sec=100.0, config_hash=None, steps=20, levers=None) -> Path:
    """A run folder with the files the trainer writes (config.yaml, metrics.jsonl, summary.json)."""
    run = root / name / f"seed{seed}"
    (run / "samples").mkdir(parents=True)
    data = data or {"name": "npz", "path": f"../shared/data/{name.split('_')[0]}10_train.npz"}
    (run / "config.yaml").write_text(yaml.safe_dump({"name": name, "data": data, "model": {"name": model},
                                                     "train": {"seed": seed}}))
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({"step": s, "loss_d": 1.0 / s, "loss_g": 2.0 + s / 10, "d_x": 0.6, "d_g_z": 0.4}) + "\n"
        for s in range(2, steps + 1, 2)))
    (run / "summary.json").write_text(json.dumps({
        "status": status, "name": name, "dataset": data["name"], "model": model, "seed": seed,
        "config_hash": config_hash or f"{name}-{seed}", "steps": steps, "total_steps": steps,
        "train_seconds": 12.5, "img_per_sec": img_per_sec, "params_G": 1_234_567, "params_D": 45_678,
        "device": "cpu (x86_64, 2 threads)", "resolution": 28, "peak_cpu_mb": 700.0 + seed,
        **({"levers": levers} if levers else {})}))
    if evals:
        (run / "eval.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evals))
    return run


def fd(value: float, step: int = 20, checkpoint: str = "last") -> dict:
    return {"metric": "fd", "step": step, "checkpoint": checkpoint, "samples": 500, "fd": value}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    for seed, (a, b) in enumerate([(10.0, 30.0), (14.0, 34.0), (12.0, 38.0)]):
        fake_run(root, "quickdraw_cdcgan", seed, model="cdcgan",
                 evals=[fd(99.0), fd(a), {"metric": "kid", "step": 20, "kid_mean": a / 100, "kid_std": 0.01},
                        {"metric": "cond_acc", "step": 20, "cond_acc": 0.8, "per_class": {"cat": 0.7}},
                        fd(a + 1, checkpoint="best"), fd(50.0, step=10, checkpoint="training"),
                        fd(a, step=20, checkpoint="training")],
                 img_per_sec=100.0 + seed)
        fake_run(root, "quickdraw_mlpgan", seed, model="mlpgan", evals=[fd(b)], img_per_sec=400.0)
    fake_run(root, "mnist_convdcgan", 0, model="convdcgan", evals=[fd(5.0)])
    fake_run(root, "mnist_convdcgan", 1, model="convdcgan", evals=[fd(500.0)], status="interrupted")
    return root


def test_display_names_follow_the_config_naming_rule():
    npz = {"name": "npz", "path": "../shared/data/mnist_train.npz"}
    assert display_names({"name": "cifar10_convdcgan64", "model": {"name": "convdcgan"}, "data": {}}, {}) == \
        ("cifar10", "convdcgan64")
    assert display_names({"name": "my_experiment", "model": {"name": "cdcgan"}, "data": npz}, {}) == \
        ("mnist_train", "cdcgan")
    assert display_names({"name": "demo", "model": {"name": "cdcgan"}, "data": {"name": "shapes"}}, {}) == \
        ("shapes", "cdcgan")


def test_eval_lines_latest_wins_every_numeric_field_is_a_column():
    cols, curves = eval_columns([fd(9.0), fd(7.0), fd(8.0, checkpoint="best"), fd(20.0, step=5, checkpoint="training"),
                                 {"metric": "pr", "step": 1, "f1": 0.5, "flag": True, "note": "x"}])
    assert cols == {"fd": 7.0, "fd@best": 8.0, "f1": 0.5}
    assert [c["step"] for c in curves] == [5]


def test_runs_table_rows_columns_and_pivot_statistics(results: Path):
    runs = load_runs(results)
    df = runs_table(runs)
    assert len(df) == 8
    assert list(df.columns[:5]) == ["dataset", "model", "seed", "status", "steps"]
    assert {"fd", "fd@best", "kid_mean", "kid_std", "cond_acc", "img_per_sec", "wall_s", "params_G",
            "device"} <= set(df.columns)
    assert df.columns.get_loc("fd") < df.columns.get_loc("kid_mean") < df.columns.get_loc("img_per_sec")
    row = df[(df.model == "cdcgan") & (df.seed == 1)].iloc[0]
    assert (row.dataset, row.fd, row["fd@best"], row.run) == ("quickdraw", 14.0, 15.0, "quickdraw_cdcgan/seed1")
    assert row.peak_cpu_mb == 701.0 and pd.isna(row.peak_gpu_mb)  # a CPU run has no GPU peak
    assert resolve_metric(df, "kid") == "kid_mean"
    long = pivot_long(df, "fd").set_index(["dataset", "model"])
    # consistency: the pivot equals numpy's mean and sample std over the three seeds
    assert long.loc[("quickdraw", "cdcgan"), "mean"] == pytest.approx(np.mean([10, 14, 12]))
    assert long.loc[("quickdraw", "cdcgan"), "std"] == pytest.approx(np.std([10, 14, 12], ddof=1))
    assert long.loc[("quickdraw", "mlpgan"), "n"] == 3
    # the interrupted run is in the table but not in the statistics
    assert long.loc[("mnist", "convdcgan"), "n"] == 1 and long.loc[("mnist", "convdcgan"), "mean"] == 5.0


def test_compare_writes_markdown_csv_html_and_plots(results: Path, tmp_path: Path):
    out = tmp_path / "reports"
    files = compare(results=results, out=out, metric="fd")
    names = {f.name for f in files}
    assert {"runs.csv", "runs.md", "runs.html", "pivot_fd.csv", "pivot_fd.md", "pivot_fd.html",
            "losses.png", "throughput.png", "metrics_vs_step.png"} <= names
    back = pd.read_csv(out / "runs.csv")
    assert len(back) == 8 and back["fd"].notna().sum() == 8
    md = (out / "pivot_fd.md").read_text()
    assert "| quickdraw | **12.0 ± 2.0** |  | 34.0 ± 4.0 |" in md  # cdcgan best (lower FD) in bold
    assert "| mnist |  | 5 |  |" in md  # one completed seed: the mean alone
    assert "<b>12.0 ± 2.0</b>" in (out / "pivot_fd.html").read_text()
    assert "1.23M" in (out / "runs.md").read_text()
    for png in ("losses.png", "throughput.png", "metrics_vs_step.png"):
        assert Image.open(out / png).size[0] > 300


def test_metric_curves_plot_headline_numbers_only_one_series_per_run(tmp_path: Path):
    """kid_std, real_acc and the sample count are by-products of an evaluation, not quality curves."""
    from gan_bench.report.plots import metric_series

    root = tmp_path / "results"
    train = [{"metric": "kid", "step": s, "checkpoint": "training", "kid_mean": 1.0 / s, "kid_std": 0.1,
              "pr_images": 2000} for s in (10, 20)]
    train += [{"metric": "cond_acc", "step": 20, "checkpoint": "training", "cond_acc": 0.5, "real_acc": 0.95}]
    for seed in (0, 1):
        fake_run(root, "quickdraw_cdcgan", seed, model="cdcgan", evals=train + [fd(7.0)])
    series = metric_series(load_runs(root))
    assert set(series) == {"kid_mean", "cond_acc"}  # the final (checkpoint "last") fd is not a curve
    assert set(series["kid_mean"]) == {"quickdraw/cdcgan s0", "quickdraw/cdcgan s1"}
    assert series["kid_mean"]["quickdraw/cdcgan s0"] == [(10, 0.1), (20, 0.05)]


@pytest.mark.parametrize("values, log", [([15.0, 30.0, 1500.0], True), ([15.0, 30.0, 140.0], False),
                                         ([0.1, 0.9], False), ([0.0, 50.0], False), ([-1.0, 50.0], False),
                                         ([], False), ([float("nan"), 2.0, 40.0], True)])
def test_a_quality_axis_is_logarithmic_only_where_positive_curves_span_ten_times(values, log: bool):
    """A collapsed seed (MNIST fd ~1500 beside 15) flattens the other curves on a linear axis."""
    from gan_bench.report.plots import log_axis

    assert log_axis(values) is log


def test_compute_column_and_a_note_when_runs_mix_bf16_and_fp32(results: Path, tmp_path: Path):
    out = tmp_path / "reports"
    compare(results=results, out=out, metric="fd", plots=False)
    assert "Note:" not in (out / "pivot_fd.md").read_text()  # no levers recorded: nothing to warn about
    fake_run(results, "mnist_cdcgan", 0, model="cdcgan", evals=[fd(7.0)], levers={"bf16": True})
    fake_run(results, "mnist_mlpgan", 0, model="mlpgan", evals=[fd(9.0)], levers={"bf16": False})
    df = runs_table(load_runs(results))
    assert df.set_index("config").loc["mnist_cdcgan", "compute"] == "bf16"
    assert df.set_index("config").loc["mnist_mlpgan", "compute"] == "fp32"
    assert df["compute"].isna().sum() == 8  # summaries without levers: unknown, not guessed
    compare(results=results, out=out, metric="fd", plots=False)
    assert "bf16 and fp32" in (out / "pivot_fd.md").read_text() and "| compute |" in (out / "runs.md").read_text()


def test_repeated_config_counts_once_newest_wins(tmp_path: Path):
    old = fake_run(tmp_path / "r" / "a", "mnist_cdcgan", 0, model="cdcgan", evals=[fd(1.0)], config_hash="h")
    new = fake_run(tmp_path / "r" / "b", "mnist_cdcgan", 0, model="cdcgan", evals=[fd(2.0)], config_hash="h")
    os.utime(old / "summary.json", (1, 1))
    runs = load_runs(tmp_path / "r")
    assert [r.path for r in runs] == [new] and runs[0].evals["fd"] == 2.0
    assert len(load_runs(tmp_path / "r", latest_only=False)) == 2


def test_unknown_metric_and_empty_folder_are_one_line_errors(results: Path, tmp_path: Path):
    with pytest.raises(GanBenchError, match="no run has a value for metric 'fid'.*fd"):
        compare(results=results, out=tmp_path / "o", metric="fid")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanBenchError, match="no run folders"):
        compare(results=tmp_path / "empty", out=tmp_path / "o", metric="fd")


def test_mean_std_rounds_the_mean_to_the_spread():
    assert (mean_std(1.52234, 0.05074), mean_std(0.37871, 0.0209), mean_std(1234.5, 56.0)) == \
        ("1.522 ± 0.051", "0.379 ± 0.021", "1,234 ± 56")
    assert mean_std(3.0, None) == "3"


def test_markdown_escapes_pipes_and_leaves_missing_cells_empty():
    md = to_markdown(pd.DataFrame({"a": ["x|y", None], "b": [1.5, float("nan")]}))
    assert md.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 1.5 |", "|  |  |"]


def test_cli_compare_and_gallery(results: Path, tmp_path: Path, capsys):
    assert main(["compare", str(results), "--metric", "kid", "--out", str(tmp_path / "rep"), "--no-plots"]) == 0
    assert (tmp_path / "rep" / "pivot_kid_mean.md").exists() and not (tmp_path / "rep" / "losses.png").exists()
    assert main(["compare", str(results), "--metric", "nope", "--out", str(tmp_path / "rep")]) == 2
    assert "no run has a value for metric 'nope'" in capsys.readouterr().err
    assert main(["gallery", str(results), "--out", str(tmp_path / "gal")]) == 0
    assert (tmp_path / "gal" / "index.html").exists()


def test_class_gifs_follow_label_order_when_the_summary_lists_classes(tmp_path: Path):
    run = fake_run(tmp_path, "quickdraw_cdcgan", 0, model="cdcgan")
    (run / "gifs").mkdir()
    for stem in ("cat", "baseball_bat"):
        Image.new("L", (8, 8)).save(run / "gifs" / f"{stem}.gif")
    (r,) = load_runs(tmp_path)
    assert [c for c, _ in r.class_gifs()] == ["baseball bat", "cat"]  # no class list: alphabetical
    s = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**s, "classes": ["cat", "baseball bat"]}))
    (r,) = load_runs(tmp_path)
    assert [(c, p.name) for c, p in r.class_gifs()] == [("cat", "cat.gif"), ("baseball bat", "baseball_bat.gif")]


def test_a_target_of_a_data_set_without_runs_is_the_cli_error_not_the_suite_report_failing(results: Path,
                                                                                            tmp_path: Path):
    """A suite's targets may name a data set whose runs all failed: its report is still written."""
    files = compare(results=results, out=tmp_path / "suite", metric="fd", targets=["celeba:fd=40", "fd=50"])
    assert "pivot_fd.md" in {f.name for f in files}
    with pytest.raises(GanBenchError, match="no run under .* is of data set 'celeba'"):
        compare(results=results, out=tmp_path / "cli", metric="fd", targets=["celeba:fd=40"], check_targets=True)
    assert not (tmp_path / "cli").exists()


@pytest.mark.parametrize("name, ok", [("fd", True), ("kid", True), ("kid_mean", True), ("kid_std", True),
                                      ("fd@best", True), ("img_per_sec", True), ("fdd", False), ("std", False)])
def test_a_suite_metric_is_any_column_a_metric_or_the_summary_gives(name: str, ok: bool):
    from gan_bench.report.compare import check_metric_name

    if ok:
        check_metric_name(name)
    else:
        with pytest.raises(GanBenchError, match=f"--metric '{name}' is not a metric"):
            check_metric_name(name)


def _set_config(run: Path, **train) -> None:
    """Add train keys to a fake run's config.yaml (the summary's config_hash stays the fake's own)."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["train"].update(train)
    (run / "config.yaml").write_text(yaml.safe_dump(config))


def test_runs_that_differ_beyond_the_seed_are_separate_rows_named_by_what_differs(tmp_path: Path):
    """A 20-step run and a 200-step run of one model, both seed 0, are two experiments, not two seeds."""
    root = tmp_path / "r"
    for folder, steps, value in (("quick", 20, 193.0), ("long", 200, 12.0)):
        for seed in (0, 1):
            run = fake_run(root / folder, "mnist_cdcgan", seed, model="cdcgan", evals=[fd(value + seed)],
                           config_hash=f"{folder}{seed}", steps=steps)
            _set_config(run, max_steps=steps, progress=False)
            # where a run writes is no difference between experiments
            config = yaml.safe_load((run / "config.yaml").read_text())
            (run / "config.yaml").write_text(yaml.safe_dump({**config, "out": str(run)}))
    compare(results=root, out=tmp_path / "rep", metric="fd", plots=False)
    pivot = pd.read_csv(tmp_path / "rep" / "pivot_fd.csv").set_index("model")
    assert sorted(pivot.index) == ["cdcgan (train.max_steps=20)", "cdcgan (train.max_steps=200)"]
    assert list(pivot["n"]) == [2, 2]  # each budget's two seeds, never the four averaged
    assert pivot.loc["cdcgan (train.max_steps=200)", "mean"] == 12.5
    rank = (tmp_path / "rep" / "ranking_fd.md").read_text()
    assert "| cdcgan (train.max_steps=200) |" in rank


def test_experiment_labels_see_only_what_the_config_hash_sees():
    from gan_bench.report.experiments import labels, seedless_hash

    base = {"name": "mnist_cdcgan", "model": {"name": "cdcgan"}, "train": {"seed": 0, "lr_g": 2e-4}}
    other_seed = {**base, "train": {"seed": 3, "lr_g": 2e-4}, "out": "elsewhere"}
    assert seedless_hash(base) == seedless_hash(other_seed) and base["train"]["seed"] == 0  # not modified
    assert labels([base, other_seed]) == ["", ""]  # one experiment: no label
    # train.ema at its default is hashed like an absent key: no difference; lr_g differs
    faster = {**base, "train": {"seed": 1, "lr_g": 1e-3, "ema": 0.0}}
    assert labels([base, faster, other_seed]) == ["train.lr_g=0.0002", "train.lr_g=0.001", "train.lr_g=0.0002"]
    many = {**base, "model": {"name": "cdcgan", "ngf": 32, "ndf": 32}, "train": {"seed": 0, "lr_g": 1e-3,
                                                                                   "lr_d": 1e-3}}
    assert labels([base, many])[1] == "model.ndf=32, model.ngf=32, train.lr_d=0.001, +1 more"


def test_runs_a_report_cannot_read_are_named_on_stderr(results: Path, tmp_path: Path, capsys):
    loop = results / "quickdraw_mlpgan" / "seed2" / "summary.json"
    loop.unlink()
    loop.symlink_to(loop.name)  # a symlink to itself: opening it fails with "too many levels of links"
    assert main(["compare", str(results), "--metric", "fd", "--out", str(tmp_path / "rep"), "--no-plots"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"skipped run {loop.parent}: cannot open its summary.json")
    assert main(["gallery", str(results), "--out", str(tmp_path / "gal")]) == 0
    assert capsys.readouterr().err.strip().splitlines() == err
    lines = []
    assert len(load_runs(results, warn=lines.append)) == 7 and lines == err


@pytest.mark.parametrize("metric", [None, "fd"])
def test_a_suite_report_names_a_run_it_cannot_read_once(results: Path, metric, capsys):
    """A suite's report reads the runs for the metric, the tables and the gallery: one line, not three."""
    from gan_bench.report.suite import write_reports

    loop = results / "quickdraw_mlpgan" / "seed2" / "summary.json"
    loop.unlink()
    loop.symlink_to(loop.name)
    said = []
    write_reports(results, title="t", metric=metric, eval_metrics=["fd"], say=said.append)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"skipped run {loop.parent}: cannot open its summary.json")
    assert "pivot of fd" in said[0] and (results / "report" / "gallery" / "index.html").is_file()


def test_a_folder_that_cannot_be_listed_is_named(results: Path, tmp_path: Path, monkeypatch, capsys):
    closed = results / "quickdraw_mlpgan"
    real = os.scandir

    def scandir(path="."):  # what a folder without read permission does (root could read a chmod 0 one)
        if Path(path) == closed:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    lines = []
    runs = load_runs(results, warn=lines.append)
    assert lines == [f"skipped {closed}: cannot list the folder (Permission denied); its runs are not in the report"]
    assert {r.model for r in runs} == {"cdcgan", "convdcgan"}
    assert main(["compare", str(results), "--metric", "fd", "--out", str(tmp_path / "rep"), "--no-plots"]) == 0
    assert capsys.readouterr().err.strip().splitlines() == lines
